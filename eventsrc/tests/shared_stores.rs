//! Borrowed (`&S`) and shared (`Arc<S>`) stores are stores: repositories, runners and reactors
//! take them, and every call reaches the store behind the pointer, the calls with default
//! bodies (`visit_stream`, `append_signal`) included.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use common::{Add, Lead, LeadEvent, OpenLead, Rename, Tally};
use eventsrc::backend::{AppendSignal, Lease, Leases, ParkedStore, StoredEvent};
use eventsrc::runner::{Perform, Retry};
use eventsrc::store::{AppendResult, ReadAll, ReadStream, StreamAppend};
use eventsrc::{
    Aggregate, Changes, CheckpointStore, Checkpointed, DocumentReader, DocumentView, Documents,
    Event, EventId, EventStore, ExpectedVersion, GlobalPosition, InMemory, MemoryStore, Metadata,
    NewEvent, Projection, Reactions, Reactor, RecordedEvent, Repository, Runner, SnapshotStore,
    StoreError, StreamId, StreamVersion, Tenant, Tenants,
};

const ID: u32 = 1410;

/// Opens lead `ID` as "Ada" and renames it "Ada Lovelace" through `repository`.
async fn open_and_rename<S: EventStore>(repository: &Repository<S>) {
    repository
        .execute::<Lead, _>(&ID, OpenLead::named("Ada"), Metadata::new())
        .await
        .unwrap();
    let rename = Rename {
        name: "Ada Lovelace".into(),
    };
    repository
        .execute::<Lead, _>(&ID, rename, Metadata::new())
        .await
        .unwrap();
}

async fn lead_events(store: &impl EventStore) -> Vec<RecordedEvent> {
    let stream = Lead::stream_id(&ID).unwrap();
    store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repository_runs_on_a_shared_memory_store() {
    let store = Arc::new(MemoryStore::new());
    let repository: Repository<Arc<MemoryStore>> = Repository::new(Arc::clone(&store));
    open_and_rename(&repository).await;

    let loaded = repository.load::<Lead>(&ID).await.unwrap();
    assert_eq!(loaded.version, StreamVersion(2));
    assert_eq!(loaded.state.name, "Ada Lovelace");
    // The events are in the store behind the pointer, not in a copy of it.
    assert_eq!(lead_events(&*store).await.len(), 2);

    // A shared store scopes by scoping the store inside: same storage, another tenant.
    let acme: Arc<MemoryStore> = store.with_tenant(Tenant::new("acme"));
    assert_eq!(acme.tenant().as_str(), "acme");
    assert!(lead_events(&acme).await.is_empty());
    let back = acme.with_tenant(Tenant::default());
    assert_eq!(lead_events(&back).await.len(), 2);
}

#[tokio::test]
async fn a_repository_borrows_its_store_and_its_snapshot_store() {
    let store = MemoryStore::new();
    let repository = Repository::new(&store).with_snapshots(&store);
    let id = "sold".to_owned();
    for amount in [1, 2] {
        repository
            .execute::<Tally, _>(&id, Add(vec![amount]), Metadata::new())
            .await
            .unwrap();
    }
    // A tally is snapshotted every two events: the snapshot is in the borrowed store.
    let stream = Tally::stream_id(&id).unwrap();
    let snapshot = store.load_snapshot(&stream).await.unwrap().unwrap();
    assert_eq!(snapshot.version, StreamVersion(2));
    assert_eq!(
        repository.load::<Tally>(&id).await.unwrap().version,
        StreamVersion(2)
    );
}

/// Counts the leads' events it applied.
#[derive(Default)]
struct LeadEvents {
    applied: u32,
}

impl Projection for LeadEvents {
    const NAME: &'static str = "lead_events";
    type Event = LeadEvent;
    type Error = std::convert::Infallible;
    fn apply(&mut self, _: LeadEvent, _: &RecordedEvent) -> Result<(), Self::Error> {
        self.applied += 1;
        Ok(())
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_runner_reads_a_borrowed_sqlite_store_and_keeps_its_checkpoint_there() {
    let store = eventsrc::sqlite::SqliteEventStore::open_in_memory()
        .await
        .unwrap();
    open_and_rename(&Repository::new(&store)).await;

    let mut runner = Runner::new(&store, Checkpointed::new(LeadEvents::default(), &store));
    let model = runner.consumer().model();
    let progress = runner.catch_up().await.unwrap();
    assert_eq!(model.read().applied, 2);
    let head = store.head_position().await.unwrap();
    assert_eq!(progress.position, Some(head));
    assert_eq!(
        store.load_checkpoint(LeadEvents::NAME).await.unwrap(),
        Some(head)
    );
}

#[tokio::test]
async fn a_runner_reads_a_borrowed_memory_store() {
    let store = MemoryStore::new();
    open_and_rename(&Repository::new(&store)).await;
    let mut runner = Runner::new(&store, InMemory::new(LeadEvents::default()));
    let model = runner.consumer().model();
    runner.catch_up().await.unwrap();
    assert_eq!(model.read().applied, 2);
}

/// Refuses every lead event, so that each one is parked.
struct Refuser;

#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Refused;

impl Reactor for Refuser {
    const NAME: &'static str = "refuser";
    type Event = LeadEvent;
    type Effect = ();
    type Error = Refused;
    fn react(&mut self, _: LeadEvent, _: &RecordedEvent) -> Result<Vec<()>, Refused> {
        Err(Refused)
    }
}

/// Performs nothing: the reactor never gets as far as an effect.
struct NoEffects;

impl Perform<()> for NoEffects {
    type Error = Refused;
    async fn perform(&self, (): (), _: &RecordedEvent) -> Result<(), Refused> {
        Ok(())
    }
}

#[tokio::test]
async fn a_reactor_parks_and_checkpoints_in_a_shared_store() {
    let store = Arc::new(MemoryStore::new());
    open_and_rename(&Repository::new(Arc::clone(&store))).await;
    let reactions = Reactions::new(Refuser, NoEffects, Arc::clone(&store)).retry(Retry::never());
    let mut runner = Runner::new(Arc::clone(&store), reactions);
    runner.catch_up().await.unwrap();

    let parked = store.parked(Refuser::NAME).await.unwrap();
    assert_eq!(parked.len(), 2);
    assert!(parked.iter().all(|p| p.error.contains("refused")));
    let head = store.head_position().await.unwrap();
    assert_eq!(
        store.load_checkpoint(Refuser::NAME).await.unwrap(),
        Some(head)
    );
}

/// Asks `leases` (its own impl: a pointer's, here) for the lease on `name`.
async fn acquire<L: Leases>(leases: L, name: &str) -> Option<Lease> {
    leases.try_acquire(name).await.unwrap()
}

#[tokio::test]
async fn a_lease_taken_through_a_pointer_holds_for_the_store_behind_it() {
    let store = MemoryStore::new();
    let shared = Arc::new(store.clone());
    let lease = acquire(&store, "lead_events").await;
    assert!(lease.is_some());
    assert!(acquire(Arc::clone(&shared), "lead_events").await.is_none());
    drop(lease);
    assert!(acquire(&shared, "lead_events").await.is_some());
}

/// A store that loads only by visiting: its `read_stream` fails, so a load through a pointer
/// that fell back on the default `visit_stream` (which reads with `read_stream`) fails too.
/// Its append signal is the memory store's, where the default would have none.
struct VisitsOnly {
    inner: MemoryStore,
}

impl EventStore for VisitsOnly {
    fn tenant(&self) -> &Tenant {
        self.inner.tenant()
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.inner.append_streams(appends).await
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_events(ids).await
    }

    async fn read_stream(
        &self,
        _: &StreamId,
        _: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(StoreError::backend(std::io::Error::other(
            "this store loads by visiting",
        )))
    }

    async fn visit_stream<F, E>(
        &self,
        stream: &StreamId,
        read: ReadStream,
        visit: F,
    ) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        self.inner.visit_stream(stream, read, visit).await
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(read).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        self.inner.head_position().await
    }

    async fn append_signal(&self) -> Result<Option<AppendSignal>, StoreError> {
        self.inner.append_signal().await
    }
}

/// Loads lead `ID` through `store`'s own `visit_stream`, and waits on its append signal.
async fn visits_and_signals<S: EventStore>(store: S) {
    let stream = Lead::stream_id(&ID).unwrap();
    let mut visited = Vec::new();
    store
        .visit_stream(&stream, ReadStream::forward(), |event| {
            visited.push(event.stream_version);
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let version = store.stream_version(&stream).await.unwrap();
    assert!(version.get() >= 2);
    assert_eq!(
        visited,
        (1..=version.get()).map(StreamVersion).collect::<Vec<_>>()
    );
    assert!(
        store
            .read_stream(&stream, ReadStream::forward())
            .await
            .is_err()
    );

    let loaded = Repository::new(&store).load::<Lead>(&ID).await.unwrap();
    assert_eq!(loaded.version, version);

    let mut signal = store
        .append_signal()
        .await
        .unwrap()
        .expect("the memory store's append signal, not the default's none");
    let before = *signal.borrow_and_update();
    // A name the lead has not had yet, so that the rename appends.
    let more = Rename {
        name: format!("Ada, version {}", version.get() + 1),
    };
    Repository::new(&store)
        .execute::<Lead, _>(&ID, more, Metadata::new())
        .await
        .unwrap();
    assert!(signal.has_changed().unwrap());
    assert_ne!(*signal.borrow_and_update(), before);
}

#[tokio::test]
async fn a_shared_or_borrowed_store_passes_on_visit_stream_and_append_signal() {
    let inner = MemoryStore::new();
    open_and_rename(&Repository::new(&inner)).await;
    let store = VisitsOnly { inner };
    visits_and_signals(&store).await;
    visits_and_signals(Arc::new(store)).await;
}

/// A document view's documents, noted by stream id.
struct Notes;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Noted {
    text: String,
}

impl DocumentView for Notes {
    const NAME: &'static str = "notes";
    type Event = Noted;
    type Document = String;
    type Error = std::convert::Infallible;

    fn apply(
        &self,
        event: Noted,
        record: &RecordedEvent,
        docs: &mut Changes<String>,
    ) -> Result<(), Self::Error> {
        docs.put(record.stream.id(), event.text);
        Ok(())
    }
}

#[tokio::test]
async fn a_document_view_runs_on_a_shared_store_and_reads_through_a_borrowed_one() {
    let store = Arc::new(MemoryStore::new());
    let note = StreamId::new("note", 1).unwrap();
    let noted = NewEvent::from_event(
        &Noted {
            text: "hello".into(),
        },
        Default::default(),
    )
    .unwrap();
    store
        .append(&note, ExpectedVersion::Any, vec![noted])
        .await
        .unwrap();

    Runner::new(
        Arc::clone(&store),
        Documents::new(Arc::clone(&store), Notes),
    )
    .catch_up()
    .await
    .unwrap();

    let notes = DocumentReader::<_, Notes>::new(&*store);
    assert_eq!(notes.get("1").await.unwrap().as_deref(), Some("hello"));
    // The documents were committed to the store behind the pointer, with the checkpoint.
    let direct = DocumentReader::<_, Notes>::new((*store).clone());
    assert_eq!(direct.get("1").await.unwrap().as_deref(), Some("hello"));
}
