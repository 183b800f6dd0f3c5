//! The in-memory backend: every storage trait, no persistence.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use crate::store::{
    AppendResult, CheckpointSummary, Direction, Inspect, ListStreams, ReadAll, ReadStream,
    Snapshot, StoredTypeCount, StreamAppend, StreamSummary,
};

use crate::backend::{
    AppendSignal, DocumentCommit, DocumentStore, DocumentWrite, Lease, Leases, LocalLeases,
    ParkedEvent, ParkedStore, Select, StoredCopy, already_stored, already_stored_parts,
    check_appends, check_batch,
};

use crate::StoreError;
use crate::backend::{StoredEvent, record_append};
use crate::store::lifecycle::{
    Deleted, Deletion, Lifecycle, STREAM_DELETED, STREAM_TOMBSTONED, Truncated, check_expected,
    marker_payload,
};
use crate::time::{Clock, SystemClock};
use crate::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent,
    RecordedEvent, SnapshotStore, StreamId, StreamVersion, Tenant, Tenants, Timestamp,
};

/// An event store, snapshot store and checkpoint store in process memory.
///
/// Payloads are kept as the JSON text a database would keep, so code tested against it
/// exercises encoding and decoding exactly as it will in production. Clones and
/// [`with_tenant`](Tenants::with_tenant) handles share the same data.
///
/// ```
/// use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StreamId, Tenants};
/// use eventsrc::store::ReadStream;
///
/// # tokio_test();
/// # fn tokio_test() { tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let stream = StreamId::new("cart", "42")?;
/// let added = NewEvent::raw("ItemAdded", 1, r#"{"sku":"apple"}"#);
/// let result = store.append(&stream, ExpectedVersion::NoStream, vec![added]).await?;
/// assert_eq!(result.stream_version.get(), 1);
///
/// let events = store.read_stream(&stream, ReadStream::forward()).await?;
/// assert_eq!(&*events[0].event_type, "ItemAdded");
///
/// // Another tenant sees nothing of it.
/// let other = store.with_tenant("acme".into());
/// assert!(other.read_stream(&stream, ReadStream::forward()).await?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap() }
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<RwLock<Log>>,
    clock: Arc<dyn Clock>,
    tenant: Tenant,
    /// Where this handle's tenant's log sits in `Log::logs`, once an append of this handle
    /// has found it: appends then skip hashing the tenant's name.
    slot: OnceLock<usize>,
    live: Arc<Live>,
}

/// What live readers and runners share besides the log: the append signal and the leases.
struct Live {
    appended: tokio::sync::watch::Sender<u64>,
    leases: LocalLeases,
}

impl Live {
    /// Moves the append signal, if anyone holds it. A reader that subscribes after this looks
    /// finds the append in the log: it subscribes before it reads, and the append was stored
    /// (under the write lock its read waits for) before the look.
    fn signal(&self) {
        if self.appended.receiver_count() > 0 {
            self.appended.send_modify(|count| *count += 1);
        }
    }
}

impl Default for Live {
    fn default() -> Self {
        Self {
            appended: tokio::sync::watch::Sender::new(0),
            leases: LocalLeases::default(),
        }
    }
}

#[derive(Default)]
struct Log {
    /// Every event of every tenant; an event's sequence number is its index plus one.
    events: Records,
    /// Where each event id is stored (index into `events`).
    ids: HashMap<EventId, usize, BuildHasherDefault<crate::stream::IdHasher>>,
    /// Where each tenant's log sits in `logs`; a log never moves once made.
    tenants: HashMap<Tenant, usize>,
    logs: Vec<TenantLog>,
}

/// An event as this store keeps it: the `NewEvent`'s parts moved in, so an append copies no
/// payload and allocates no name. `RecordedEvent`s are built only when a caller asks for owned
/// records; loads visit these in place. What consecutive records of a stream have in common
/// sits behind [`Shared`], so that a record is 112 bytes, not 264.
struct Record {
    event_id: EventId,
    stream_version: StreamVersion,
    global_position: GlobalPosition,
    event_type: Cow<'static, str>,
    payload: String,
    recorded_at: Timestamp,
    schema_version: u32,
    shared: Arc<Shared>,
}

/// What consecutive records of one stream share: the stream, its tenant, and their metadata.
/// An event whose metadata equals that of the stream's event before it (every event of a
/// repository's batch, and every event of a stream appended without metadata) shares that
/// event's; one whose metadata differs starts another.
struct Shared {
    stream: StreamId,
    tenant: Tenant,
    metadata: Metadata,
}

impl Record {
    fn as_stored(&self) -> StoredEvent<'_> {
        StoredEvent {
            stream: &self.shared.stream,
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
        }
    }

    fn to_recorded(&self) -> RecordedEvent {
        let shared = &*self.shared;
        RecordedEvent {
            event_id: self.event_id,
            stream: shared.stream.clone(),
            stream_version: self.stream_version,
            global_position: self.global_position,
            tenant: shared.tenant.clone(),
            event_type: self.event_type.as_ref().into(),
            schema_version: self.schema_version,
            payload: self.payload.as_str().into(),
            metadata: shared.metadata.clone(),
            recorded_at: self.recorded_at,
        }
    }

    fn as_copy(&self) -> StoredCopy<'_> {
        let shared = &*self.shared;
        StoredCopy {
            tenant: shared.tenant.as_str(),
            stream: shared.stream.as_str(),
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
            metadata: &shared.metadata,
            position: self.global_position,
            recorded_at: self.recorded_at,
        }
    }
}

/// Records in fixed-size chunks, so that growing the log never moves what is stored.
#[derive(Default)]
struct Records(Vec<Vec<Record>>);

impl Records {
    const CHUNK: usize = 4096;

    fn len(&self) -> usize {
        self.0
            .last()
            .map_or(0, |last| (self.0.len() - 1) * Self::CHUNK + last.len())
    }

    fn push(&mut self, record: Record) {
        match self.0.last_mut() {
            Some(last) if last.len() < Self::CHUNK => last.push(record),
            _ => {
                let mut chunk = Vec::with_capacity(Self::CHUNK);
                chunk.push(record);
                self.0.push(chunk);
            }
        }
    }
}

impl std::ops::Index<usize> for Records {
    type Output = Record;
    fn index(&self, index: usize) -> &Record {
        &self.0[index / Self::CHUNK][index % Self::CHUNK]
    }
}

impl std::ops::IndexMut<usize> for Records {
    fn index_mut(&mut self, index: usize) -> &mut Record {
        &mut self.0[index / Self::CHUNK][index % Self::CHUNK]
    }
}

#[derive(Default)]
struct TenantLog {
    /// Whose log this is.
    tenant: Tenant,
    /// Indexes into `Log::events`, in order.
    all: Vec<usize>,
    streams: HashMap<StreamId, StreamLog>,
    snapshots: HashMap<StreamId, Snapshot>,
    checkpoints: HashMap<String, GlobalPosition>,
    parked: HashMap<String, Vec<ParkedEvent>>,
    /// Each document view's documents, by id.
    documents: HashMap<String, BTreeMap<String, StoredDocument>>,
    /// Events removed by a soft delete or a truncation, by stream, in version order.
    archive: HashMap<StreamId, Vec<RecordedEvent>>,
    /// The position of the last event truncation removed.
    truncated_through: GlobalPosition,
}

/// One stream's events still in the log: indexes into `Log::events`, in version order, after
/// the `cut` versions that were removed (a tombstone's marker sits right after a cut of
/// `StreamVersion::TOMBSTONE - 1`).
#[derive(Default)]
struct StreamLog {
    cut: u64,
    indexes: Vec<usize>,
}

impl StreamLog {
    /// The stream's version: that of its last event.
    fn version(&self) -> u64 {
        self.cut + self.indexes.len() as u64
    }
}

/// A document as a view's batch wrote it.
struct StoredDocument {
    body: String,
    index: Vec<(String, String)>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("tenant", &self.tenant)
            .field("events", &self.read().events.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store on the system clock, for the default tenant.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty store that stamps `recorded_at` from `clock` (a [`ManualClock`](crate::time::ManualClock)
    /// in tests of time travel).
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            shared: Arc::default(),
            clock: Arc::new(clock),
            tenant: Tenant::default(),
            slot: OnceLock::new(),
            live: Arc::default(),
        }
    }

    /// How many events the store holds, across all tenants.
    pub fn len(&self) -> usize {
        self.read().events.len()
    }

    /// Whether the store holds no events at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while the lock is held cannot leave the log half-written: every check runs before
    // the first mutation. So a poisoned lock still guards consistent data and is used as is.
    fn read(&self) -> RwLockReadGuard<'_, Log> {
        self.shared.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Log> {
        self.shared.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn append_now(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        check_batch(stream, &events)?;
        let mut log = self.write();
        if let Some(done) = log.already_stored(&self.tenant, stream, &events)? {
            return Ok(done);
        }
        let recorded_at = self.clock.now();
        let tenant = log.slot(&self.tenant, &self.slot);
        log.store(tenant, stream, expected, events, recorded_at)
    }

    /// [`EventStore::append_streams`] under one write lock: every check runs before the first
    /// part is stored.
    fn append_parts_now(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        check_appends(&appends)?;
        if appends.is_empty() {
            return Ok(Vec::new());
        }
        let mut log = self.write();
        let answers = appends
            .iter()
            .map(|part| log.already_stored(&self.tenant, &part.stream, &part.events))
            .collect();
        if let Some(done) = already_stored_parts(answers, &appends)? {
            return Ok(done);
        }
        let mut currents = Vec::with_capacity(appends.len());
        for part in &appends {
            let current = log.stream_len(&self.tenant, &part.stream);
            let last_type = log
                .last(&self.tenant, &part.stream)
                .map(|last| &*last.event_type);
            check_expected(
                &part.stream,
                part.expected,
                StreamVersion(current),
                last_type,
            )?;
            currents.push(current);
        }
        let recorded_at = self.clock.now();
        let commit = log.events.len() as u64 + 1;
        let tenant = log.slot(&self.tenant, &self.slot);
        appends
            .into_iter()
            .zip(currents)
            .map(|(part, current)| {
                if part.events.is_empty() {
                    return Ok(AppendResult {
                        first_version: StreamVersion(current + 1),
                        stream_version: StreamVersion(current),
                        position: GlobalPosition::START,
                        recorded_at,
                        already_stored: false,
                    });
                }
                // Checked above; every part of the request goes in as one commit.
                log.store_in(
                    tenant,
                    &part.stream,
                    part.expected,
                    part.events,
                    commit,
                    recorded_at,
                )
            })
            .collect()
    }

    /// Calls `each` with the events of a stream read, under the read lock.
    fn with_stream<E>(
        &self,
        stream: &StreamId,
        read: ReadStream,
        mut each: impl FnMut(&Record) -> Result<(), E>,
    ) -> Result<(), E> {
        let log = self.read();
        let Some(kept) = log.tenant(&self.tenant).and_then(|t| t.streams.get(stream)) else {
            return Ok(());
        };
        // Stream versions are 1-based and dense after the cut, so version v sits at
        // indexes[v - 1 - cut].
        let (cut, indexes) = (kept.cut, &kept.indexes);
        let limit = read.limit.unwrap_or(usize::MAX);
        let mut visit = |&i: &usize| each(&log.events[i]);
        match read.direction {
            Direction::Forward => {
                let start = read.from.map_or(0, |v| {
                    v.get().saturating_sub(1).saturating_sub(cut) as usize
                });
                indexes
                    .iter()
                    .skip(start)
                    .take(limit)
                    .try_for_each(&mut visit)
            }
            Direction::Backward => {
                let end = read.from.map_or(indexes.len(), |v| {
                    (v.get().saturating_sub(cut) as usize).min(indexes.len())
                });
                indexes[..end]
                    .iter()
                    .rev()
                    .take(limit)
                    .try_for_each(&mut visit)
            }
        }
    }

    fn read_all_now(&self, read: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.read();
        let Some(tenant_log) = log.tenant(&self.tenant) else {
            return Ok(Vec::new());
        };
        if let Some(behind) = read.behind(tenant_log.truncated_through) {
            return Err(behind);
        }
        // Sequence numbers are index + 1 and commit order equals sequence order here.
        let start = tenant_log
            .all
            .partition_point(|&i| log.events[i].global_position <= read.after);
        Ok(tenant_log.all[start..]
            .iter()
            .map(|&i| &log.events[i])
            .filter(|e| {
                read.filter
                    .matches(e.shared.stream.category(), &e.event_type)
            })
            .take(read.limit)
            .map(Record::to_recorded)
            .collect())
    }
}

impl Log {
    /// What `tenant` has stored, if anything.
    fn tenant(&self, tenant: &Tenant) -> Option<&TenantLog> {
        self.tenants.get(tenant).map(|&slot| &self.logs[slot])
    }

    /// What `tenant` has stored, if anything, to change.
    fn tenant_if_any_mut(&mut self, tenant: &Tenant) -> Option<&mut TenantLog> {
        let slot = *self.tenants.get(tenant)?;
        Some(&mut self.logs[slot])
    }

    /// Where `tenant`'s log sits in `logs`, made empty on its first write: `cached` if a
    /// handle already found it, else looked up and kept there.
    fn slot(&mut self, tenant: &Tenant, cached: &OnceLock<usize>) -> usize {
        if let Some(&slot) = cached.get() {
            return slot;
        }
        let next = self.logs.len();
        let slot = *self.tenants.entry(tenant.clone()).or_insert(next);
        if slot == next {
            self.logs.push(TenantLog {
                tenant: tenant.clone(),
                ..TenantLog::default()
            });
        }
        // Another thread of the same handle may have set it meanwhile, to the same slot.
        let _ = cached.set(slot);
        slot
    }

    /// What `tenant` has stored, made empty on its first write.
    fn tenant_mut(&mut self, tenant: &Tenant) -> &mut TenantLog {
        let slot = self.slot(tenant, &OnceLock::new());
        &mut self.logs[slot]
    }

    /// The documents of `tenant`'s `view`, if it has any.
    fn documents(&self, tenant: &Tenant, view: &str) -> Option<&BTreeMap<String, StoredDocument>> {
        self.tenant(tenant).and_then(|t| t.documents.get(view))
    }

    /// Removes the first `count` events still in `stream` of the tenant at `slot` from the
    /// log, moving them to its archive if `archive`; returns the position of the last one
    /// removed.
    fn remove(
        &mut self,
        slot: usize,
        stream: &StreamId,
        count: usize,
        archive: bool,
    ) -> GlobalPosition {
        let Log {
            events, ids, logs, ..
        } = self;
        let tenant_log = &mut logs[slot];
        let Some(kept) = tenant_log.streams.get_mut(stream) else {
            return GlobalPosition::START;
        };
        let count = count.min(kept.indexes.len());
        let removed: Vec<usize> = kept.indexes.drain(..count).collect();
        kept.cut += count as u64;
        let mut last = GlobalPosition::START;
        for &index in &removed {
            let record = &mut events[index];
            if archive {
                tenant_log
                    .archive
                    .entry(stream.clone())
                    .or_default()
                    .push(record.to_recorded());
            }
            ids.remove(&record.event_id);
            last = last.max(record.global_position);
            // The record stays (positions are indexes), but without its payload.
            record.payload = String::new();
        }
        // Both lists are in position order.
        tenant_log
            .all
            .retain(|index| removed.binary_search(index).is_err());
        last
    }

    /// How many events `tenant`'s `stream` holds: its version.
    fn stream_len(&self, tenant: &Tenant, stream: &StreamId) -> u64 {
        self.tenant(tenant)
            .and_then(|t| t.streams.get(stream))
            .map_or(0, StreamLog::version)
    }

    /// `tenant`'s `stream`'s last event still in the log, if it has one.
    fn last(&self, tenant: &Tenant, stream: &StreamId) -> Option<&Record> {
        let kept = self.tenant(tenant)?.streams.get(stream)?;
        Some(&self.events[*kept.indexes.last()?])
    }

    /// Stores `events` at the end of `tenant`'s `stream` in a commit of their own if its
    /// version is one `expected` accepts; the batch and its idempotency are checked. `slot`
    /// is where the tenant's log sits ([`slot`](Self::slot)).
    fn store(
        &mut self,
        slot: usize,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        recorded_at: Timestamp,
    ) -> Result<AppendResult, StoreError> {
        let commit = self.events.len() as u64 + 1;
        self.store_in(slot, stream, expected, events, commit, recorded_at)
    }

    /// [`store`](Self::store) in `commit`: the version check and the append share one lookup
    /// of the stream, and none of the tenant.
    fn store_in(
        &mut self,
        slot: usize,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        commit: u64,
        recorded_at: Timestamp,
    ) -> Result<AppendResult, StoreError> {
        let Log {
            events: records,
            ids,
            logs,
            ..
        } = self;
        let tenant_log = &mut logs[slot];
        let tenant = &tenant_log.tenant;
        let kept = tenant_log.streams.entry(stream.clone()).or_default();
        let current = kept.version();
        let last_type = kept.indexes.last().map(|&i| &*records[i].event_type);
        let refused = check_expected(stream, expected, StreamVersion(current), last_type).err();
        if let Some(error) = refused {
            if current == 0 {
                // The entry was made for this append: leave no trace of it.
                tenant_log.streams.remove(stream);
            }
            return Err(error);
        }
        let count = events.len() as u64;
        let indexes = &mut kept.indexes;
        indexes.reserve(events.len());
        tenant_log.all.reserve(events.len());
        ids.reserve(events.len());
        // The stream's last record shares its stream, tenant and metadata with the first of
        // these if their metadata is equal.
        let mut shared: Option<Arc<Shared>> =
            indexes.last().map(|&i| Arc::clone(&records[i].shared));
        for (offset, new) in events.into_iter().enumerate() {
            let index = records.len();
            ids.insert(new.event_id, index);
            indexes.push(index);
            tenant_log.all.push(index);
            // Consecutive events with equal metadata share it, with the stream and tenant,
            // instead of a copy each.
            let shared = match &shared {
                Some(last) if last.metadata == new.metadata => Arc::clone(last),
                _ => Arc::clone(shared.insert(Arc::new(Shared {
                    stream: stream.clone(),
                    tenant: tenant.clone(),
                    metadata: new.metadata,
                }))),
            };
            records.push(Record {
                event_id: new.event_id,
                stream_version: StreamVersion(current + offset as u64 + 1),
                global_position: GlobalPosition::new(commit, index as u64 + 1),
                event_type: new.event_type,
                payload: new.payload,
                recorded_at,
                schema_version: new.schema_version,
                shared,
            });
        }
        Ok(AppendResult {
            first_version: StreamVersion(current + 1),
            stream_version: StreamVersion(current + count),
            position: GlobalPosition::new(commit, records.len() as u64),
            recorded_at,
            already_stored: false,
        })
    }

    /// [`already_stored`]'s answer for a batch, given the stored copies of its ids.
    fn already_stored(
        &self,
        tenant: &Tenant,
        stream: &StreamId,
        events: &[NewEvent],
    ) -> Result<Option<AppendResult>, StoreError> {
        let copies = events.iter().map(|new| {
            self.ids
                .get(&new.event_id)
                .map(|&index| self.events[index].as_copy())
        });
        already_stored(tenant, stream, events, copies)
    }
}

impl Tenants for MemoryStore {
    fn with_tenant(&self, tenant: Tenant) -> Self {
        Self {
            tenant,
            slot: OnceLock::new(),
            ..self.clone()
        }
    }
}

impl EventStore for MemoryStore {
    fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let (started, count) = (Instant::now(), events.len());
        let result = self.append_now(stream, expected, events);
        record_append(
            "memory",
            count,
            started,
            result.as_ref().map(|r| r.already_stored),
        );
        let result = result?;
        if !result.already_stored {
            self.live.signal();
        }
        Ok(result)
    }

    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let stored_any = appends.iter().any(|part| !part.events.is_empty());
        let started = Instant::now();
        let count = appends.iter().map(|part| part.events.len()).sum();
        let results = self.append_parts_now(appends);
        let stored = |results: &Vec<AppendResult>| results.iter().all(|r| r.already_stored);
        record_append("memory", count, started, results.as_ref().map(stored));
        let results = results?;
        if stored_any && results.iter().any(|r| !r.already_stored) {
            self.live.signal();
        }
        Ok(results)
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.read();
        Ok(ids
            .iter()
            .filter_map(|id| log.ids.get(id).map(|&index| &log.events[index]))
            .filter(|record| record.shared.tenant == self.tenant)
            .map(Record::to_recorded)
            .collect())
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::with_capacity(read.limit.unwrap_or(0).min(1024));
        self.with_stream(stream, read, |event| {
            events.push(event.to_recorded());
            Ok::<(), StoreError>(())
        })?;
        Ok(events)
    }

    async fn visit_stream<F, E>(
        &self,
        stream: &StreamId,
        read: ReadStream,
        mut visit: F,
    ) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        // No copies: the visitor sees the stored records themselves, under the read lock.
        self.with_stream(stream, read, |event| visit(event.as_stored()))
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all_now(&read)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        let log = self.read();
        Ok(StreamVersion(log.stream_len(&self.tenant, stream)))
    }

    async fn archived_through(
        &self,
        stream: &StreamId,
    ) -> Result<Option<StreamVersion>, StoreError> {
        let log = self.read();
        let archived = log.tenant(&self.tenant).and_then(|t| t.archive.get(stream));
        Ok(archived
            .and_then(|events| events.last())
            .map(|last| last.stream_version))
    }

    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        let log = self.read();
        let last = log.tenant(&self.tenant).and_then(|t| t.all.last());
        Ok(last.map_or(GlobalPosition::START, |&i| log.events[i].global_position))
    }

    async fn append_signal(&self) -> Result<Option<AppendSignal>, StoreError> {
        Ok(Some(self.live.appended.subscribe()))
    }
}

impl SnapshotStore for MemoryStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let log = self.read();
        Ok(log
            .tenant(&self.tenant)
            .and_then(|t| t.snapshots.get(stream))
            .cloned())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut log = self.write();
        let snapshots = &mut log.tenant_mut(&self.tenant).snapshots;
        match snapshots.get(&snapshot.stream) {
            Some(stored) if stored.version > snapshot.version => {}
            _ => {
                snapshots.insert(snapshot.stream.clone(), snapshot);
            }
        }
        Ok(())
    }
}

impl CheckpointStore for MemoryStore {
    async fn load_checkpoint(
        &self,
        subscriber: &str,
    ) -> Result<Option<GlobalPosition>, StoreError> {
        let log = self.read();
        Ok(log
            .tenant(&self.tenant)
            .and_then(|t| t.checkpoints.get(subscriber))
            .copied())
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        position: GlobalPosition,
    ) -> Result<(), StoreError> {
        let mut log = self.write();
        let tenant_log = log.tenant_mut(&self.tenant);
        tenant_log
            .checkpoints
            .insert(subscriber.to_owned(), position);
        Ok(())
    }
}

impl Lifecycle for MemoryStore {
    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
    ) -> Result<Deleted, StoreError> {
        let deleted = self.delete_now(stream, expected, deletion)?;
        if !deleted.already_deleted {
            self.live.signal();
        }
        Ok(deleted)
    }

    async fn truncate_before(
        &self,
        stream: &StreamId,
        version: StreamVersion,
    ) -> Result<Truncated, StoreError> {
        let mut log = self.write();
        let current = StreamVersion(log.stream_len(&self.tenant, stream));
        if version > current {
            return Err(StoreError::InvalidAppend {
                stream: stream.clone(),
                reason: format!(
                    "cannot truncate before version {version}: the stream is at version {current}, and its last event stays; delete the stream instead"
                ),
            });
        }
        let Some(slot) = log.tenants.get(&self.tenant).copied() else {
            return Ok(Truncated::new(0, version.max(StreamVersion::FIRST)));
        };
        let cut = log.logs[slot]
            .streams
            .get(stream)
            .map_or(0, |kept| kept.cut);
        let count = version.get().saturating_sub(1).saturating_sub(cut);
        if count == 0 || current == StreamVersion::TOMBSTONE {
            return Ok(Truncated::new(0, StreamVersion(cut + 1)));
        }
        let last = log.remove(slot, stream, count as usize, true);
        let tenant_log = &mut log.logs[slot];
        tenant_log.truncated_through = tenant_log.truncated_through.max(last);
        Ok(Truncated::new(count, version))
    }

    async fn read_archive(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.read();
        Ok(log
            .tenant(&self.tenant)
            .and_then(|t| t.archive.get(stream))
            .cloned()
            .unwrap_or_default())
    }

    async fn truncated_through(&self) -> Result<GlobalPosition, StoreError> {
        let log = self.read();
        Ok(log
            .tenant(&self.tenant)
            .map_or(GlobalPosition::START, |t| t.truncated_through))
    }
}

impl MemoryStore {
    /// [`Lifecycle::delete_stream`] under one write lock.
    fn delete_now(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
    ) -> Result<Deleted, StoreError> {
        let mut log = self.write();
        let current = StreamVersion(log.stream_len(&self.tenant, stream));
        let last = log
            .last(&self.tenant, stream)
            .map(|last| (&*last.event_type, last.global_position));
        match (deletion, last) {
            (Deletion::Tombstone, Some((STREAM_TOMBSTONED, position)))
            | (Deletion::Soft, Some((STREAM_DELETED, position))) => {
                return Ok(Deleted::new(current, position, 0, true));
            }
            (Deletion::Soft, Some((STREAM_TOMBSTONED, _))) => {
                return Err(StoreError::Tombstoned {
                    stream: stream.clone(),
                });
            }
            _ => {}
        }
        if !expected.accepts(current) {
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual: current,
            });
        }
        let recorded_at = self.clock.now();
        let slot = log.slot(&self.tenant, &self.slot);
        let removed = log.logs[slot]
            .streams
            .get(stream)
            .map_or(0, |kept| kept.indexes.len());
        log.remove(slot, stream, removed, deletion == Deletion::Soft);
        let (kind, cut) = match deletion {
            Deletion::Soft => (STREAM_DELETED, current.get()),
            Deletion::Tombstone => (STREAM_TOMBSTONED, StreamVersion::TOMBSTONE.get() - 1),
        };
        log.logs[slot]
            .streams
            .entry(stream.clone())
            .or_default()
            .cut = cut;
        log.logs[slot].snapshots.remove(stream);
        if deletion == Deletion::Tombstone {
            // Gone for good: what earlier soft deletes or truncations archived goes too.
            log.logs[slot].archive.remove(stream);
            for parked in log.logs[slot].parked.values_mut() {
                parked.retain(|p| &p.event.stream != stream);
            }
        }
        let marker = NewEvent::raw(kind, 1, marker_payload(current));
        let stored = log.store(
            slot,
            stream,
            ExpectedVersion::Any,
            vec![marker],
            recorded_at,
        )?;
        Ok(Deleted::new(
            stored.stream_version,
            stored.position,
            removed as u64,
            false,
        ))
    }
}

impl Inspect for MemoryStore {
    async fn streams(&self, list: ListStreams) -> Result<Vec<StreamSummary>, StoreError> {
        let log = self.read();
        let Some(tenant) = log.tenant(&self.tenant) else {
            return Ok(Vec::new());
        };
        let mut streams: Vec<StreamSummary> = tenant
            .streams
            .iter()
            .filter(|(stream, _)| {
                list.category
                    .as_deref()
                    .is_none_or(|category| stream.category() == category)
                    && list
                        .after
                        .as_deref()
                        .is_none_or(|after| stream.as_str() > after)
            })
            .filter_map(|(stream, kept)| {
                let newest = &log.events[*kept.indexes.last()?];
                Some(StreamSummary::new(
                    stream.clone(),
                    newest.stream_version,
                    newest.recorded_at,
                ))
            })
            .collect();
        streams.sort_unstable_by(|a, b| a.stream.as_str().cmp(b.stream.as_str()));
        streams.truncate(list.limit);
        Ok(streams)
    }

    async fn event_types(&self) -> Result<Vec<StoredTypeCount>, StoreError> {
        let log = self.read();
        let mut counts: BTreeMap<(&str, u32), u64> = BTreeMap::new();
        for &index in log.tenant(&self.tenant).map_or(&[][..], |t| &t.all) {
            let record = &log.events[index];
            *counts
                .entry((&record.event_type, record.schema_version))
                .or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((name, version), events)| StoredTypeCount::new(name, version, events))
            .collect())
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointSummary>, StoreError> {
        let log = self.read();
        let mut checkpoints: Vec<CheckpointSummary> = log
            .tenant(&self.tenant)
            .map(|t| {
                t.checkpoints
                    .iter()
                    .map(|(name, position)| CheckpointSummary::new(name, Some(*position)))
                    .collect()
            })
            .unwrap_or_default();
        checkpoints.sort_unstable_by(|a, b| a.consumer.cmp(&b.consumer));
        Ok(checkpoints)
    }

    async fn all_parked(&self) -> Result<Vec<ParkedEvent>, StoreError> {
        let log = self.read();
        let Some(tenant) = log.tenant(&self.tenant) else {
            return Ok(Vec::new());
        };
        let mut reactors: Vec<&String> = tenant.parked.keys().collect();
        reactors.sort_unstable();
        Ok(reactors
            .into_iter()
            .flat_map(|reactor| tenant.parked[reactor].iter().cloned())
            .collect())
    }
}

impl ParkedStore for MemoryStore {
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError> {
        let mut log = self.write();
        let tenant_log = log.tenant_mut(&self.tenant);
        let list = tenant_log.parked.entry(parked.reactor.clone()).or_default();
        list.retain(|p| p.event.event_id != parked.event.event_id);
        let at = list.partition_point(|p| p.event.global_position < parked.event.global_position);
        list.insert(at, parked);
        Ok(())
    }

    async fn parked(&self, reactor: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        let log = self.read();
        Ok(log
            .tenant(&self.tenant)
            .and_then(|t| t.parked.get(reactor))
            .cloned()
            .unwrap_or_default())
    }

    async fn unpark(&self, reactor: &str, event_id: EventId) -> Result<bool, StoreError> {
        let mut log = self.write();
        let Some(list) = log
            .tenant_if_any_mut(&self.tenant)
            .and_then(|t| t.parked.get_mut(reactor))
        else {
            return Ok(false);
        };
        let before = list.len();
        list.retain(|p| p.event.event_id != event_id);
        Ok(list.len() < before)
    }
}

/// Leases among the runners of this process that share the store (clones and tenant handles),
/// per tenant.
impl Leases for MemoryStore {
    async fn try_acquire(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        Ok(self
            .live
            .leases
            .try_acquire_now(&format!("{}/{name}", self.tenant)))
    }
}

/// Documents of each view in memory: a batch's writes and the checkpoint move under one write
/// lock, after the checkpoint is checked, so a view is updated exactly once within the process.
impl DocumentStore for MemoryStore {
    async fn load_documents(
        &self,
        view: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let log = self.read();
        let Some(documents) = log.documents(&self.tenant, view) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .filter_map(|id| documents.get(id).map(|d| (id.clone(), d.body.clone())))
            .collect())
    }

    async fn query_documents(
        &self,
        view: &str,
        select: Select<'_>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let log = self.read();
        let Some(documents) = log.documents(&self.tenant, view) else {
            return Ok(Vec::new());
        };
        let row = |(id, d): (&String, &StoredDocument)| (id.clone(), d.body.clone());
        Ok(match select {
            Select::Prefix(prefix) => documents
                .range::<str, _>((
                    std::ops::Bound::Included(prefix),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(id, _)| id.starts_with(prefix))
                .map(row)
                .collect(),
            Select::Index { field, value } => documents
                .iter()
                .filter(|(_, d)| d.index.iter().any(|(f, v)| f == field && v == value))
                .map(row)
                .collect(),
        })
    }

    async fn commit_documents(
        &self,
        view: &str,
        from: Option<GlobalPosition>,
        through: GlobalPosition,
        writes: Vec<DocumentWrite>,
    ) -> Result<DocumentCommit, StoreError> {
        let mut log = self.write();
        let tenant_log = log.tenant_mut(&self.tenant);
        let stored = tenant_log.checkpoints.get(view).copied();
        if stored != from {
            return Ok(DocumentCommit::Fenced { stored });
        }
        let documents = tenant_log.documents.entry(view.to_owned()).or_default();
        for write in writes {
            match write.body {
                Some(body) => {
                    let index = write.index;
                    documents.insert(write.id, StoredDocument { body, index });
                }
                None => {
                    documents.remove(&write.id);
                }
            }
        }
        tenant_log.checkpoints.insert(view.to_owned(), through);
        Ok(DocumentCommit::Committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the store keeps per event besides the payload's bytes: what the events of an
    /// append have in common sits behind one pointer, so a record stays small.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_record_takes_112_bytes() {
        assert_eq!(std::mem::size_of::<Record>(), 112);
    }
}
