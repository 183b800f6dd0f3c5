//! A second writer on demand, for specs and demos of what happens when two commands race.
//!
//! Real races depend on timing; demos and tests need them on cue. [`RacingStore`] wraps any
//! [`EventStore`]: events queued with [`RacingStore::race`] are appended by "someone else" right
//! before this handle's next append, so that append finds the stream moved on, exactly as if
//! another application node had committed between the load and the append.

use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use eventsrc_core::backend::{AppendSignal, StoredEvent};
use eventsrc_core::store::{AppendResult, ReadAll, ReadStream, StreamAppend};
use eventsrc_core::{
    EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent, StoreError,
    StreamId, StreamVersion, Tenant, Tenants,
};

/// An [`EventStore`] that lets a simulated concurrent writer slip events in before the next
/// append. Clones share the queue; with nothing queued it behaves exactly like the store inside,
/// its append signal included. The store inside may be borrowed: `RacingStore::new(&store)`.
///
/// ```
/// use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StoreError, StreamId};
/// use eventsrc_testing::RacingStore;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = RacingStore::new(MemoryStore::new());
/// let stream = StreamId::new("lead", "1410")?;
/// store.race(stream.clone(), vec![NewEvent::raw("StatusChanged", 1, r#"{"status":"Closed"}"#)]);
///
/// let ours = NewEvent::raw("NameChanged", 1, r#"{"name":"Stefan Ivanov"}"#);
/// let result = store.append(&stream, ExpectedVersion::NoStream, vec![ours]).await;
/// assert!(matches!(result, Err(StoreError::WrongExpectedVersion { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RacingStore<S> {
    inner: S,
    queued: Arc<Mutex<Vec<Racer>>>,
    reads: Arc<AtomicU64>,
}

/// A batch of events another writer appends to a stream.
type Racer = (StreamId, Vec<NewEvent>);

impl<S: EventStore> RacingStore<S> {
    /// Wraps `inner`, with nothing queued.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            queued: Arc::default(),
            reads: Arc::default(),
        }
    }

    /// How many times a stream was read through this handle and its clones
    /// ([`EventStore::read_stream`] and [`EventStore::visit_stream`] calls): what a spec counts
    /// to show that a command read its aggregate, or did not.
    pub fn stream_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The store inside.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Queues `events` to be appended to `stream` (whatever its version) just before the next
    /// append through this handle or its clones (an append across streams included).
    pub fn race(&self, stream: StreamId, events: Vec<NewEvent>) {
        self.lock().push((stream, events));
    }

    /// Appends what is queued, as the other writer.
    async fn run_queued(&self) -> Result<(), StoreError> {
        let queued = mem::take(&mut *self.lock());
        for (racing_stream, racing_events) in queued {
            self.inner
                .append(&racing_stream, ExpectedVersion::Any, racing_events)
                .await?;
        }
        Ok(())
    }

    // The queue is a plain list that no panic can leave half-updated, so a poisoned lock is
    // still safe to use.
    fn lock(&self) -> MutexGuard<'_, Vec<Racer>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle on another tenant, with a queue of its own.
impl<S: Tenants> Tenants for RacingStore<S> {
    fn with_tenant(&self, tenant: Tenant) -> Self {
        Self::new(self.inner.with_tenant(tenant))
    }
}

impl<S: EventStore> EventStore for RacingStore<S> {
    fn tenant(&self) -> &Tenant {
        self.inner.tenant()
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.run_queued().await?;
        self.inner.append(stream, expected, events).await
    }

    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.run_queued().await?;
        self.inner.append_streams(appends).await
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_events(ids).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read_stream(stream, read).await
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
        self.reads.fetch_add(1, Ordering::Relaxed);
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
