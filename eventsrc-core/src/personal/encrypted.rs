//! [`Encrypted`]: a store that seals personal fields on the way in and opens them on the way
//! out.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::keys::{KeyError, KeyStore};
use super::seal::{self, Cipher, Ciphers};
use crate::backend::{
    AppendSignal, DocumentCommit, DocumentStore, DocumentWrite, Lease, Leases, ParkedEvent,
    ParkedStore, Select, StoredCopy, already_stored, already_stored_parts,
};
use crate::store::{
    AppendResult, CheckpointSummary, Deleted, Deletion, Inspect, Lifecycle, ListStreams, ReadAll,
    ReadStream, Snapshot, StoredTypeCount, StreamAppend, StreamSummary, Truncated,
};
use crate::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent,
    SnapshotStore, StoreError, StreamId, StreamVersion, SwitchReadModel, Tenant, Tenants,
};

/// The key of a sealed snapshot's bytes (also a part of its associated data).
const SNAPSHOT: &str = "$personal_snapshot";

/// A store whose events keep their personal fields sealed: crypto-shredding.
///
/// Wrap any store (memory, SQLite, PostgreSQL, [`Store`](crate)) and a [`KeyStore`]; use the
/// wrapper wherever the store went (a [`Repository`](crate::Repository), a
/// [`Runner`](crate::Runner), a [`Subscription`](crate::Subscription)). It implements every
/// storage contract the store does.
///
/// - **Appends** seal each field marked `#[event(personal)]` (of the event type and schema
///   version being appended) under the key of the subject its `#[event(subject)]` field names,
///   made on first use. The field is stored as
///   `{"$personal": "<base64 key id, nonce, ciphertext>", "subject": "<subject>"}`; the rest of
///   the payload, the metadata and the subject field stay as they were. Use a subject id that
///   is not personal data itself (a user id, not an e-mail address).
/// - **Reads** (loads, [`read_stream`](EventStore::read_stream),
///   [`read_all`](EventStore::read_all) and so subscriptions and runners,
///   [`read_events`](EventStore::read_events), parked events) open every sealed field. A field
///   whose subject was [forgotten](Self::forget) reads as **JSON `null`**: the redacted value.
///   That is why the derive requires personal fields to be `Option<T>`: a forgotten field
///   decodes as `None`, the rest of the event as it was, and aggregates still fold.
/// - **Snapshots** of a stream that carries sealed fields are sealed too, under the key of
///   every subject the stream carries (one layer per subject). Once one of them is forgotten
///   the snapshot no longer opens and reads as absent: the aggregate folds from its events,
///   with the forgotten fields `null`, and the next snapshot is taken from that state. While
///   a subject of the stream is forgotten, no new snapshot of the stream is saved.
/// - **Tampering** (a sealed field changed, or moved to another event, field or stream) is
///   [`StoreError::Corrupt`] naming the stream, version, position and event id, never a panic.
///
/// What it does not reach: read models. A projection that copies a personal field into its
/// own rows keeps the plaintext there; make it forget too (see the [module](super) docs).
///
/// ```
/// use eventsrc::personal::{Encrypted, MemoryKeyStore};
/// use eventsrc::store::ReadStream;
/// use eventsrc::{Event, EventStore, ExpectedVersion, MemoryStore, NewEvent, Metadata, StreamId};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
/// struct Joined {
///     #[event(subject)]
///     user: String,
///     #[event(personal)]
///     email: Option<String>,
///     plan: String,
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = Encrypted::new(MemoryStore::new(), MemoryKeyStore::new());
/// let stream = StreamId::new("user", 7)?;
/// let joined = Joined { user: "u-7".into(), email: Some("ada@example.com".into()), plan: "pro".into() };
/// store.append(&stream, ExpectedVersion::NoStream, vec![NewEvent::from_event(&joined, Metadata::new())?]).await?;
///
/// // Stored sealed; read back open.
/// let raw = store.inner().read_stream(&stream, ReadStream::forward()).await?;
/// assert!(!raw[0].payload.contains("ada@example.com"));
/// let read = store.read_stream(&stream, ReadStream::forward()).await?;
/// assert_eq!(read[0].decode::<Joined>()?, joined);
///
/// // Forgotten: the field reads as `null`, the rest of the event as it was.
/// assert!(store.forget("u-7").await?);
/// let read = store.read_stream(&stream, ReadStream::forward()).await?;
/// let forgotten = read[0].decode::<Joined>()?;
/// assert_eq!((forgotten.email, forgotten.plan.as_str()), (None, "pro"));
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Encrypted<S, K: ?Sized> {
    store: S,
    keys: Arc<K>,
}

impl<S: Clone, K: ?Sized> Clone for Encrypted<S, K> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            keys: Arc::clone(&self.keys),
        }
    }
}

impl<S: fmt::Debug, K: ?Sized> fmt::Debug for Encrypted<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encrypted")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<S, K: KeyStore> Encrypted<S, K> {
    /// `store`, sealing personal fields under the keys of `keys`.
    pub fn new(store: S, keys: K) -> Self {
        Self::with_keys(store, Arc::new(keys))
    }
}

impl<S, K: KeyStore + ?Sized> Encrypted<S, K> {
    /// `store` with shared keys: several stores (tenants, nodes) over one key store, or an
    /// `Arc<dyn KeyStore>` chosen at run time.
    pub fn with_keys(store: S, keys: Arc<K>) -> Self {
        Self { store, keys }
    }

    /// The store inside, which reads the sealed form: what an attacker with the database but
    /// not the keys sees.
    pub fn inner(&self) -> &S {
        &self.store
    }

    /// The key store.
    pub fn keys(&self) -> &Arc<K> {
        &self.keys
    }
}

impl<S: EventStore, K: KeyStore + ?Sized> Encrypted<S, K> {
    /// Forgets `subject` in this handle's tenant: deletes its key, so that its personal fields
    /// read as `null` on every read path from now on, wherever they were sealed, and its
    /// sealed snapshots read as absent. `false` if it had no key.
    ///
    /// Irreversible by design: there is no way back to the data. An event appended later for
    /// the same subject gets a new key; what was sealed under the old one stays unreadable.
    /// Read models that copied personal fields forget separately (see the [module](super)
    /// docs).
    pub async fn forget(&self, subject: &str) -> Result<bool, KeyError> {
        self.keys.forget(self.store.tenant(), subject).await
    }

    /// The ciphers of `subjects`' keys, `None` for a forgotten one; `create` makes the missing
    /// ones (an append) instead.
    async fn keys_of(
        &self,
        tenant: &Tenant,
        subjects: &[String],
        create: bool,
    ) -> Result<Ciphers, StoreError> {
        let mut keys = HashMap::with_capacity(subjects.len());
        for subject in subjects {
            let key = if create {
                self.keys.key_or_create(tenant, subject).await.map(Some)
            } else {
                self.keys.key(tenant, subject).await
            };
            let key = key.map_err(StoreError::backend)?;
            keys.insert(subject.clone(), key.as_ref().map(Cipher::new));
        }
        Ok(keys)
    }

    /// Seals the personal fields of `events`; returns the original payloads of the events it
    /// changed, for comparing a retried batch (empty when it changed none). `create` makes missing keys (an append); without
    /// it a missing key's fields are stored as `null` (an event parked again after forget).
    async fn seal_events(
        &self,
        stream: &StreamId,
        events: &mut [NewEvent],
        create: bool,
    ) -> Result<Vec<Option<String>>, StoreError> {
        let tenant = self.store.tenant();
        let invalid = |reason: String| StoreError::InvalidAppend {
            stream: stream.clone(),
            reason,
        };
        // Parse the payloads that have personal fields, and note their subjects: nothing is
        // allocated for a batch without any.
        let mut plans = Vec::new();
        let mut subjects: Vec<String> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let Some(registration) =
                crate::registry::personal(&event.event_type, event.schema_version)
            else {
                continue;
            };
            let payload: Map<String, Value> =
                serde_json::from_str(&event.payload).map_err(|e| {
                    invalid(format!(
                        "event {} is not a JSON object: {e}",
                        event.event_id
                    ))
                })?;
            let subject = seal::subject_of(registration, &payload)
                .map_err(|e| invalid(format!("event {}: {e}", event.event_id)))?;
            let Some(subject) = subject else {
                let unsealed = registration
                    .fields
                    .iter()
                    .find(|field| payload.get(**field).is_some_and(|v| !v.is_null()));
                if let Some(field) = unsealed {
                    return Err(invalid(format!(
                        "event {} has personal field `{field}` but its subject field `{}` is empty: name the data subject",
                        event.event_id, registration.subject
                    )));
                }
                continue;
            };
            if !subjects.contains(&subject) {
                subjects.push(subject.clone());
            }
            plans.push((index, registration, payload, subject));
        }
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        let mut originals = vec![None; events.len()];
        let keys = self.keys_of(tenant, &subjects, create).await?;
        let scope = [tenant.as_str(), stream.as_str()];
        for (index, registration, mut payload, subject) in plans {
            let event = &mut events[index];
            match keys.get(&subject).and_then(Option::as_ref) {
                Some(key) => seal::seal_fields(registration, &mut payload, key, &subject, &scope)
                    .map_err(|e| invalid(format!("event {}: {e}", event.event_id)))?,
                None => {
                    for field in registration.fields {
                        if let Some(value) = payload.get_mut(*field) {
                            *value = Value::Null;
                        }
                    }
                }
            }
            let sealed = serde_json::to_string(&payload).map_err(StoreError::backend)?;
            originals[index] = Some(std::mem::replace(&mut event.payload, sealed));
        }
        Ok(originals)
    }

    /// Opens the sealed fields of `records` in place.
    async fn open_records(&self, records: &mut [RecordedEvent]) -> Result<(), StoreError> {
        // Only the payloads that hold a sealed field are parsed, kept and written back: nothing
        // is allocated for records without any.
        let mut sealed = Vec::new();
        let mut subjects = Vec::new();
        for (index, record) in records.iter().enumerate() {
            if let Some(payload) = seal::sealed_payload(&record.payload, &mut subjects) {
                sealed.push((index, payload));
            }
        }
        if sealed.is_empty() {
            return Ok(());
        }
        let keys = self.keys_of(self.store.tenant(), &subjects, false).await?;
        for (index, mut payload) in sealed {
            let record = &mut records[index];
            let scope = [record.tenant.as_str(), record.stream.as_str()];
            seal::open_fields(&mut payload, &keys, &scope).map_err(|reason| {
                StoreError::Corrupt {
                    stream: Some(record.stream.clone()),
                    version: Some(record.stream_version),
                    position: Some(record.global_position),
                    reason: format!("event {}: {reason}", record.event_id),
                }
            })?;
            let opened = serde_json::to_string(&payload).map_err(StoreError::backend)?;
            record.payload = Arc::from(opened);
        }
        Ok(())
    }

    /// `records` with their sealed fields open.
    async fn opened(
        &self,
        records: Result<Vec<RecordedEvent>, StoreError>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut records = records?;
        self.open_records(&mut records).await?;
        Ok(records)
    }

    /// [`already_stored`]'s answer for a batch (or a part of one) the store refused as a
    /// duplicate, compared as it was before sealing with its stored copies opened (a retry:
    /// sealing picked new nonces, so the store itself cannot tell). `Ok(None)` when it is no
    /// retry: the store's refusal stands. A failed read is its own error.
    ///
    /// `originals` as [`seal_events`](Self::seal_events) returned them: a part that sealed
    /// nothing, beside a sealed one in [`append_streams`](EventStore::append_streams), is
    /// compared as it is.
    async fn retried(
        &self,
        stream: &StreamId,
        mut plain: Vec<NewEvent>,
        originals: &[Option<String>],
    ) -> Result<Option<AppendResult>, StoreError> {
        let ids: Vec<EventId> = plain.iter().map(|e| e.event_id).collect();
        let stored = self.opened(self.store.read_events(&ids).await).await?;
        for (event, original) in plain.iter_mut().zip(originals) {
            if let Some(original) = original {
                // Opened payloads are written back through `serde_json`, so compare alike.
                let value: Value = serde_json::from_str(original).map_err(StoreError::backend)?;
                event.payload = value.to_string();
            }
        }
        let by_id: HashMap<EventId, &RecordedEvent> =
            stored.iter().map(|r| (r.event_id, r)).collect();
        let copies = plain
            .iter()
            .map(|e| by_id.get(&e.event_id).map(|r| StoredCopy::of(r)));
        Ok(already_stored(self.store.tenant(), stream, &plain, copies).unwrap_or(None))
    }
}

impl<S: EventStore, K: KeyStore + ?Sized> EventStore for Encrypted<S, K> {
    fn tenant(&self) -> &Tenant {
        self.store.tenant()
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        mut events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let originals = self.seal_events(stream, &mut events, true).await?;
        // Kept only for a batch that was sealed: a retry of it needs opening to compare.
        let sealed = originals
            .iter()
            .any(Option::is_some)
            .then(|| events.clone());
        match (self.store.append(stream, expected, events).await, sealed) {
            (Err(refused @ StoreError::DuplicateEventId { .. }), Some(sealed)) => self
                .retried(stream, sealed, &originals)
                .await?
                .ok_or(refused),
            (other, _) => other,
        }
    }

    async fn append_streams(
        &self,
        mut appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let mut originals = Vec::with_capacity(appends.len());
        for part in &mut appends {
            originals.push(
                self.seal_events(&part.stream, &mut part.events, true)
                    .await?,
            );
        }
        // Kept only for a batch that was sealed: a retry of it needs opening to compare.
        let sealed = originals
            .iter()
            .flatten()
            .any(Option::is_some)
            .then(|| appends.clone());
        match (self.store.append_streams(appends).await, sealed) {
            (Err(refused @ StoreError::DuplicateEventId { .. }), Some(sealed)) => {
                // A retry of the whole batch: every part with events stored, settled by the
                // stores' own rule (a part without events answers `None`).
                let mut answers = Vec::with_capacity(sealed.len());
                for (part, originals) in sealed.iter().zip(&originals) {
                    answers.push(if part.events.is_empty() {
                        Ok(None)
                    } else {
                        self.retried(&part.stream, part.events.clone(), originals)
                            .await
                    });
                }
                match already_stored_parts(answers, &sealed) {
                    Ok(Some(results)) => Ok(results),
                    _ => Err(refused),
                }
            }
            (other, _) => other,
        }
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.opened(self.store.read_events(ids).await).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.opened(self.store.read_stream(stream, read).await)
            .await
    }

    // `visit_stream` is the trait's default, over `read_stream`: keys are fetched
    // asynchronously, so the events are read whole and opened first.

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.opened(self.store.read_all(read).await).await
    }

    fn stream_version(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<StreamVersion, StoreError>> + Send {
        self.store.stream_version(stream)
    }

    fn archived_through(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<StreamVersion>, StoreError>> + Send {
        self.store.archived_through(stream)
    }

    fn head_position(&self) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send {
        self.store.head_position()
    }

    fn append_signal(
        &self,
    ) -> impl Future<Output = Result<Option<AppendSignal>, StoreError>> + Send {
        self.store.append_signal()
    }
}

impl<S: Tenants, K: KeyStore + ?Sized> Tenants for Encrypted<S, K> {
    fn with_tenant(&self, tenant: Tenant) -> Self {
        Self {
            store: self.store.with_tenant(tenant),
            keys: Arc::clone(&self.keys),
        }
    }
}

/// A sealed snapshot as stored: its subjects, and the state sealed once per subject.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedSnapshot {
    #[serde(rename = "$personal_snapshot")]
    sealed: String,
    subjects: Vec<String>,
}

impl SealedSnapshot {
    fn read(payload: &str) -> Option<Self> {
        if !payload.starts_with("{\"$personal_snapshot\"") {
            return None;
        }
        serde_json::from_str(payload).ok()
    }
}

fn snapshot_scope<'a>(tenant: &'a Tenant, stream: &'a StreamId, version: &'a str) -> [&'a str; 4] {
    [tenant.as_str(), stream.as_str(), SNAPSHOT, version]
}

impl<S: EventStore + SnapshotStore, K: KeyStore + ?Sized> Encrypted<S, K> {
    /// The subjects whose sealed fields `stream` carries up to `through`, from the stored
    /// snapshot's list and the events after it; `None` when the stored snapshot is newer.
    async fn subjects_through(
        &self,
        stream: &StreamId,
        through: StreamVersion,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let previous = self.store.load_snapshot(stream).await?;
        let (mut subjects, from) = match &previous {
            Some(previous) if previous.version > through => return Ok(None),
            Some(previous) => (
                SealedSnapshot::read(&previous.payload)
                    .map(|sealed| sealed.subjects)
                    .unwrap_or_default(),
                previous.version.0 + 1,
            ),
            None => (Vec::new(), 1),
        };
        if from <= through.0 {
            let count = usize::try_from(through.0 - from + 1).unwrap_or(usize::MAX);
            let read = ReadStream::forward().from(StreamVersion(from)).limit(count);
            for record in self.store.read_stream(stream, read).await? {
                seal::sealed_payload(&record.payload, &mut subjects);
            }
        }
        subjects.sort();
        Ok(Some(subjects))
    }
}

impl<S: EventStore + SnapshotStore, K: KeyStore + ?Sized> SnapshotStore for Encrypted<S, K> {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let Some(mut snapshot) = self.store.load_snapshot(stream).await? else {
            return Ok(None);
        };
        let Some(sealed) = SealedSnapshot::read(&snapshot.payload) else {
            return Ok(Some(snapshot));
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            stream: Some(stream.clone()),
            version: Some(snapshot.version),
            position: None,
            reason: format!("sealed snapshot: {reason}"),
        };
        let tenant = self.store.tenant();
        let version = snapshot.version.to_string();
        let mut bytes = seal::from_text(&sealed.sealed).map_err(corrupt)?;
        let keys = self.keys_of(tenant, &sealed.subjects, false).await?;
        for subject in sealed.subjects.iter().rev() {
            let aad = seal::associated_data(
                &[&snapshot_scope(tenant, stream, &version)[..], &[subject]].concat(),
            );
            let key = keys.get(subject).and_then(Option::as_ref);
            match seal::open(key, &aad, &bytes).map_err(corrupt)? {
                Some(inner) => bytes = inner,
                // A subject of the state was forgotten: the snapshot is gone with it.
                None => return Ok(None),
            }
        }
        snapshot.payload = String::from_utf8(bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(snapshot))
    }

    async fn save_snapshot(&self, mut snapshot: Snapshot) -> Result<(), StoreError> {
        let Some(subjects) = self
            .subjects_through(&snapshot.stream, snapshot.version)
            .await?
        else {
            return Ok(());
        };
        if subjects.is_empty() {
            return self.store.save_snapshot(snapshot).await;
        }
        let tenant = self.store.tenant();
        let keys = self.keys_of(tenant, &subjects, false).await?;
        let version = snapshot.version.to_string();
        let mut bytes = snapshot.payload.into_bytes();
        for subject in &subjects {
            // A forgotten subject: the state may still hold what it forgot; keep none.
            let Some(key) = keys.get(subject).and_then(Option::as_ref) else {
                return Ok(());
            };
            let aad = seal::associated_data(
                &[
                    &snapshot_scope(tenant, &snapshot.stream, &version)[..],
                    &[subject],
                ]
                .concat(),
            );
            bytes = seal::seal(key, &aad, &bytes);
        }
        let sealed = SealedSnapshot {
            sealed: seal::to_text(&bytes),
            subjects,
        };
        snapshot.payload = serde_json::to_string(&sealed).map_err(StoreError::backend)?;
        self.store.save_snapshot(snapshot).await
    }
}

impl<S: EventStore + ParkedStore, K: KeyStore + ?Sized> ParkedStore for Encrypted<S, K> {
    async fn park(&self, mut parked: ParkedEvent) -> Result<(), StoreError> {
        // The event was read open: seal it again before it is stored.
        let record = &parked.event;
        let mut new = [NewEvent {
            event_id: record.event_id,
            event_type: record.event_type.to_string().into(),
            schema_version: record.schema_version,
            payload: record.payload.to_string(),
            metadata: crate::Metadata::default(),
        }];
        let originals = self.seal_events(&record.stream, &mut new, false).await?;
        if originals.first().is_some_and(Option::is_some) {
            let [event] = new;
            parked.event.payload = Arc::from(event.payload);
        }
        self.store.park(parked).await
    }

    async fn parked(&self, reactor: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        let parked = self.store.parked(reactor).await?;
        self.open_parked(parked).await
    }

    fn unpark(
        &self,
        reactor: &str,
        event_id: EventId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.unpark(reactor, event_id)
    }
}

impl<S: EventStore, K: KeyStore + ?Sized> Encrypted<S, K> {
    async fn open_parked(
        &self,
        mut parked: Vec<ParkedEvent>,
    ) -> Result<Vec<ParkedEvent>, StoreError> {
        let mut records: Vec<RecordedEvent> = parked.iter().map(|p| p.event.clone()).collect();
        self.open_records(&mut records).await?;
        for (entry, record) in parked.iter_mut().zip(records) {
            entry.event = record;
        }
        Ok(parked)
    }
}

impl<S: EventStore + Inspect, K: KeyStore + ?Sized> Inspect for Encrypted<S, K> {
    fn streams(
        &self,
        list: ListStreams,
    ) -> impl Future<Output = Result<Vec<StreamSummary>, StoreError>> + Send {
        self.store.streams(list)
    }

    fn event_types(&self) -> impl Future<Output = Result<Vec<StoredTypeCount>, StoreError>> + Send {
        self.store.event_types()
    }

    fn checkpoints(
        &self,
    ) -> impl Future<Output = Result<Vec<CheckpointSummary>, StoreError>> + Send {
        self.store.checkpoints()
    }

    async fn all_parked(&self) -> Result<Vec<ParkedEvent>, StoreError> {
        let parked = self.store.all_parked().await?;
        self.open_parked(parked).await
    }
}

/// Deleting and truncating go to the store inside; the archive reads open, like the log.
impl<S: EventStore + Lifecycle, K: KeyStore + ?Sized> Lifecycle for Encrypted<S, K> {
    fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
    ) -> impl Future<Output = Result<Deleted, StoreError>> + Send {
        self.store.delete_stream(stream, expected, deletion)
    }

    fn truncate_before(
        &self,
        stream: &StreamId,
        version: StreamVersion,
    ) -> impl Future<Output = Result<Truncated, StoreError>> + Send {
        self.store.truncate_before(stream, version)
    }

    async fn read_archive(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        self.opened(self.store.read_archive(stream).await).await
    }

    fn truncated_through(&self) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send {
        self.store.truncated_through()
    }
}

impl<S: CheckpointStore, K: KeyStore + ?Sized> CheckpointStore for Encrypted<S, K> {
    fn load_checkpoint(
        &self,
        subscriber: &str,
    ) -> impl Future<Output = Result<Option<GlobalPosition>, StoreError>> + Send {
        self.store.load_checkpoint(subscriber)
    }

    fn save_checkpoint(
        &self,
        subscriber: &str,
        position: GlobalPosition,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.save_checkpoint(subscriber, position)
    }
}

impl<S: Leases, K: KeyStore + ?Sized> Leases for Encrypted<S, K> {
    fn try_acquire(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send {
        self.store.try_acquire(name)
    }
}

impl<S: SwitchReadModel, K: KeyStore + ?Sized> SwitchReadModel for Encrypted<S, K> {
    fn switch_read_model(
        &self,
        rebuilt: &str,
        live: &str,
        swap: &str,
    ) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send {
        self.store.switch_read_model(rebuilt, live, swap)
    }
}

/// Documents are a read model: written as their view makes them (see the [module](super) docs
/// for how a read model forgets).
impl<S: DocumentStore, K: KeyStore + ?Sized> DocumentStore for Encrypted<S, K> {
    fn load_documents(
        &self,
        view: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send {
        self.store.load_documents(view, ids)
    }

    fn query_documents(
        &self,
        view: &str,
        select: Select<'_>,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send {
        self.store.query_documents(view, select)
    }

    fn commit_documents(
        &self,
        view: &str,
        from: Option<GlobalPosition>,
        through: GlobalPosition,
        writes: Vec<DocumentWrite>,
    ) -> impl Future<Output = Result<DocumentCommit, StoreError>> + Send {
        self.store.commit_documents(view, from, through, writes)
    }
}
