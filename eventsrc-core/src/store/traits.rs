use std::future::Future;

use crate::{
    EventId, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent, StreamId, StreamVersion,
    Tenant, Timestamp,
};

use crate::backend::StoredEvent;

/// An append-only log of events, grouped in streams.
///
/// A borrowed or shared store is a store too: `&S` and `Arc<S>` implement this trait (and
/// [`SnapshotStore`], [`CheckpointStore`], [`ParkedStore`] and [`Leases`]) by handing every
/// call to the store behind the pointer, so a [`Repository`](crate::Repository) or a
/// [`Runner`](crate::Runner) can borrow one instead of taking a clone.
///
/// ```
/// use eventsrc::{ExpectedVersion, MemoryStore, NewEvent, Repository, StreamId};
/// use eventsrc::prelude::*;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = MemoryStore::new();
/// let borrowed = Repository::new(&store);
/// let stream = StreamId::new("cart", 42)?;
/// borrowed.store().append(&stream, ExpectedVersion::NoStream, vec![NewEvent::raw("ItemAdded", 1, "{}")]).await?;
/// assert_eq!(store.stream_version(&stream).await?.get(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait EventStore: Send + Sync {
    /// The tenant this handle reads and writes. An owned handle gives a handle on another
    /// tenant with [`Tenants::with_tenant`].
    fn tenant(&self) -> &Tenant;

    /// Appends `events` to `stream` atomically, after checking `expected` against the stream's
    /// current version: all are stored, in order, or none is.
    ///
    /// Appending events whose ids are all already stored in this stream with the same content is
    /// idempotent: nothing is written and the original result is returned, whatever `expected`
    /// says (a retried request). An id already stored with other content is
    /// [`StoreError::DuplicateEventId`]. Backends decide this with
    /// [`backend::already_stored`](crate::backend::already_stored), the rule written once.
    fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// Appends to several streams in one transaction: a decision across streams
    /// ([`Repository::decide`](crate::Repository::decide)).
    ///
    /// Every part's expected version is checked against its stream, and then every part is
    /// stored, or none is. The first part whose check fails is the error
    /// ([`StoreError::WrongExpectedVersion`] naming its stream). The events of all parts share
    /// one commit: they get consecutive global positions in the order of the parts, and one
    /// `recorded_at`, and a reader of the log sees all of them or none. The result holds one
    /// [`AppendResult`] per part, in the same order.
    ///
    /// A part without events only checks its stream: its expected version is checked with the
    /// others and nothing is stored in it, so a decision that read a stream without changing it
    /// still fails if another writer changed that stream meanwhile. Its result has the version
    /// it was checked at as `stream_version` (and `first_version` one past it) and
    /// [`GlobalPosition::START`] as `position`.
    ///
    /// The rules of [`append`](EventStore::append) hold for each part with events (an id twice
    /// in the whole batch is [`StoreError::InvalidAppend`]), and a stream may appear in only one
    /// part. Appending again a batch whose parts with events are all stored, each in its stream
    /// with the same content, is idempotent: nothing is written, nothing is checked, and each
    /// such part's original result comes back with
    /// [`already_stored`](AppendResult::already_stored) set (a part without events then reports
    /// `StreamVersion::NONE`, since it was not checked). A batch whose parts all lack events
    /// checks them and stores nothing; an empty list stores nothing and returns an empty list.
    /// Backends check the batch with [`backend::check_appends`](crate::backend::check_appends)
    /// and settle a retry with
    /// [`backend::already_stored_parts`](crate::backend::already_stored_parts).
    ///
    /// ```
    /// use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StoreError, StreamId};
    /// use eventsrc::store::StreamAppend;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let store = MemoryStore::new();
    /// let (user, email) = (StreamId::new("user", 7)?, StreamId::new("email", "ada@example.com")?);
    /// let claim = |expected| vec![
    ///     StreamAppend::new(user.clone(), expected, vec![NewEvent::raw("UserRegistered", 1, "{}")]),
    ///     StreamAppend::new(email.clone(), ExpectedVersion::NoStream, vec![NewEvent::raw("EmailClaimed", 1, "{}")]),
    /// ];
    /// let stored = store.append_streams(claim(ExpectedVersion::NoStream)).await?;
    /// assert_eq!(stored.len(), 2);
    /// assert_eq!(stored[0].position.commit, stored[1].position.commit);
    ///
    /// // The e-mail stream exists now, so a second claim stores nothing, not even the user part.
    /// let again = store.append_streams(claim(ExpectedVersion::Any)).await;
    /// assert!(matches!(again, Err(StoreError::WrongExpectedVersion { stream, .. }) if stream == email));
    /// assert_eq!(store.stream_version(&user).await?.get(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> impl Future<Output = Result<Vec<AppendResult>, StoreError>> + Send;

    /// The stored events of this handle's tenant with these ids, in the order of `ids`. An id
    /// that is not stored, or stored by another tenant, is left out. Idempotent commands use it
    /// to find what a command with the same key already committed.
    fn read_events(
        &self,
        ids: &[EventId],
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Reads events of one stream, as [`ReadStream`] bounds them. A missing stream reads as empty.
    fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Calls `visit` with each event of a stream read, in order, stopping at its first error.
    ///
    /// This is how aggregates are loaded: backends override it to hand out events borrowed
    /// from their own buffers, so a load decodes each payload in place instead of building an
    /// owned [`RecordedEvent`] per event. The default reads with
    /// [`read_stream`](EventStore::read_stream).
    fn visit_stream<F, E>(
        &self,
        stream: &StreamId,
        read: ReadStream,
        mut visit: F,
    ) -> impl Future<Output = Result<(), E>> + Send
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        async move {
            for record in &self.read_stream(stream, read).await? {
                visit(record.as_stored())?;
            }
            Ok(())
        }
    }

    /// Reads the global log after a position, in position order, never skipping an event that a
    /// later read could return before one it already returned.
    fn read_all(
        &self,
        read: ReadAll,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The stream's current version (`StreamVersion::NONE` when it has no events).
    fn stream_version(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<StreamVersion, StoreError>> + Send;

    /// The highest version of `stream` that a truncation or a soft delete removed from the
    /// log into the archive ([`Lifecycle`](crate::store::Lifecycle)), if any.
    ///
    /// Loads ask it only when the first event they read is not the version they expected, to
    /// tell history truncated on purpose ([`LoadError::Truncated`](crate::LoadError::Truncated))
    /// from lost events ([`LoadError::Gap`](crate::LoadError::Gap)). The default, for a store
    /// that never removes events, is `None`.
    fn archived_through(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<StreamVersion>, StoreError>> + Send {
        let _ = stream;
        async { Ok(None) }
    }

    /// The position of the last event a reader of this tenant's log can see now
    /// (`GlobalPosition::START` when there is none): the head against which lag is measured.
    fn head_position(&self) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send;

    /// A signal that moves after events are appended, so that live readers
    /// ([`Subscription`](crate::Subscription)) wake at once instead of polling.
    ///
    /// The value is only a counter: several appends may wake a reader once, and a reader must
    /// always read the log to learn what is new. `Ok(None)` (the default) means the backend
    /// cannot tell; readers then poll. A signal is a hint, never the only way to learn of an
    /// append: readers also poll at a slower pace, so a missed wake-up delays, never loses.
    fn append_signal(
        &self,
    ) -> impl Future<Output = Result<Option<AppendSignal>, StoreError>> + Send {
        async { Ok(None) }
    }
}

/// A store handle that gives handles on the same storage for other tenants: every backend's
/// store type, and `Arc<S>` of one.
///
/// This is apart from [`EventStore`] because only an owned handle can make another: `&S` is an
/// [`EventStore`] (and so a [`Repository`](crate::Repository) or a [`Runner`](crate::Runner)
/// can borrow a store), but a borrow of one tenant's handle has no handle of its own to give
/// for another tenant. Scope the store first, then borrow or share the new handle.
///
/// ```
/// use std::sync::Arc;
/// use eventsrc::{EventStore, MemoryStore, Tenant, Tenants};
///
/// let store = MemoryStore::new();
/// let acme = store.with_tenant(Tenant::new("acme"));
/// assert_eq!(acme.tenant().as_str(), "acme");
///
/// let shared = Arc::new(store);
/// let globex: Arc<MemoryStore> = shared.with_tenant(Tenant::new("globex"));
/// assert_eq!(globex.tenant().as_str(), "globex");
/// assert_eq!(shared.tenant(), &Tenant::default());
/// ```
pub trait Tenants: EventStore + Sized {
    /// A handle on the same storage scoped to `tenant`: it sees only that tenant's streams,
    /// log, snapshots, checkpoints, parked events and leases.
    #[must_use]
    fn with_tenant(&self, tenant: Tenant) -> Self;
}

/// See [`EventStore::append_signal`]: a `tokio::sync::watch` receiver of an append counter.
/// It works on any executor; only waiting with a timeout needs tokio's timer.
pub type AppendSignal = tokio::sync::watch::Receiver<u64>;

/// One stream's part of an append across streams ([`EventStore::append_streams`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// The stream appended to.
    pub stream: StreamId,
    /// What its version must be.
    pub expected: ExpectedVersion,
    /// The events to append to it, in order; none to only check its version.
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    /// A part appending `events` to `stream` if its version is `expected`.
    pub fn new(stream: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self {
            stream,
            expected,
            events,
        }
    }
}

/// What an append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The version of the first appended event.
    pub first_version: StreamVersion,
    /// The stream's version after the append: the version of the last appended event.
    pub stream_version: StreamVersion,
    /// The global position of the last appended event.
    pub position: GlobalPosition,
    /// When the events were recorded.
    pub recorded_at: Timestamp,
    /// `true` when every event was already stored (an idempotent retry) and nothing was written.
    pub already_stored: bool,
}

/// Which way a stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    #[default]
    Forward,
    /// Newest first.
    Backward,
}

/// Bounds of a stream read: direction, first version and how many events at most.
///
/// ```
/// use eventsrc::store::ReadStream;
/// use eventsrc::StreamVersion;
///
/// let page = ReadStream::forward().from(StreamVersion(101)).limit(100);
/// assert_eq!(page.from, Some(StreamVersion(101)));
/// assert_eq!(page.limit, Some(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use = "bounds do nothing until passed to `read_stream` or `visit_stream`"]
pub struct ReadStream {
    /// Forward or backward.
    pub direction: Direction,
    /// The first version to return (inclusive); `None` means the stream's first event going
    /// forward and its last going backward.
    pub from: Option<StreamVersion>,
    /// At most this many events; `None` means all.
    pub limit: Option<usize>,
}

impl ReadStream {
    /// The whole stream, oldest first.
    pub fn forward() -> Self {
        Self::default()
    }

    /// The whole stream, newest first.
    pub fn backward() -> Self {
        Self {
            direction: Direction::Backward,
            ..Self::default()
        }
    }

    /// Starts at `version` (inclusive).
    pub fn from(mut self, version: StreamVersion) -> Self {
        self.from = Some(version);
        self
    }

    /// Returns at most `limit` events.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether `version` lies inside these bounds' starting point (ignoring the limit).
    pub fn admits(&self, version: StreamVersion) -> bool {
        match (self.direction, self.from) {
            (_, None) => true,
            (Direction::Forward, Some(from)) => version >= from,
            (Direction::Backward, Some(from)) => version <= from,
        }
    }
}

/// Bounds and filter of a read of the global log.
///
/// ```
/// use eventsrc::GlobalPosition;
/// use eventsrc::store::ReadAll;
///
/// let read = ReadAll::after(GlobalPosition::START).limit(500).event_types(["StatusChanged"]);
/// assert_eq!(read.limit, 500);
/// assert!(read.filter.matches("lead", "StatusChanged"));
/// assert!(!read.filter.matches("lead", "NameChanged"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a read does nothing until passed to `read_all`"]
pub struct ReadAll {
    /// Return events strictly after this position.
    pub after: GlobalPosition,
    /// At most this many events.
    pub limit: usize,
    /// Which events to return.
    pub filter: EventFilter,
    /// Whether the read may start behind events truncated into the archive, skipping them
    /// (off: such a read is [`StoreError::Truncated`]).
    pub allow_truncated: bool,
}

impl ReadAll {
    /// The default page size.
    pub const DEFAULT_LIMIT: usize = 1000;

    /// Events after `position`, all types, in pages of [`ReadAll::DEFAULT_LIMIT`].
    pub fn after(position: GlobalPosition) -> Self {
        Self {
            after: position,
            limit: Self::DEFAULT_LIMIT,
            filter: EventFilter::default(),
            allow_truncated: false,
        }
    }

    /// Lets the read start behind events truncated into the archive, skipping them, instead
    /// of failing with [`StoreError::Truncated`]: for a reader that knows it does not need
    /// the removed history (a new read model of recent events only).
    pub fn allow_truncated(mut self) -> Self {
        self.allow_truncated = true;
        self
    }

    /// The [`StoreError::Truncated`] this read fails with when the log was truncated through
    /// `through`, for backends: `None` when the read is not behind the cut or allows it.
    pub fn behind(&self, through: GlobalPosition) -> Option<StoreError> {
        (!self.allow_truncated && self.after < through).then_some(StoreError::Truncated {
            after: self.after,
            through,
        })
    }

    /// Returns at most `limit` events.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Only events with one of these stored names.
    pub fn event_types<I: IntoIterator<Item = S>, S: Into<String>>(mut self, types: I) -> Self {
        self.filter.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Only events of streams in one of these categories (aggregate types).
    pub fn categories<I: IntoIterator<Item = S>, S: Into<String>>(mut self, categories: I) -> Self {
        self.filter.categories = categories.into_iter().map(Into::into).collect();
        self
    }
}

/// Which events a read of the global log returns; an empty list admits everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use = "a filter does nothing until it is part of a `ReadAll`"]
pub struct EventFilter {
    /// Stored event names to admit; empty: all.
    pub event_types: Vec<String>,
    /// Stream categories to admit; empty: all.
    pub categories: Vec<String>,
}

impl EventFilter {
    /// Whether an event of `event_type` in a stream of `category` passes.
    pub fn matches(&self, category: &str, event_type: &str) -> bool {
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && (self.categories.is_empty() || self.categories.iter().any(|c| c == category))
    }
}

/// A saved aggregate state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The aggregate's stream.
    pub stream: StreamId,
    /// The stream version the state includes.
    pub version: StreamVersion,
    /// The version of the state's own shape (see [`SnapshotFormat`](crate::store::SnapshotFormat)).
    pub state_version: u32,
    /// The encoded state.
    pub payload: String,
    /// When it was taken.
    pub taken_at: Timestamp,
}

/// Keeps the latest snapshot of each stream.
pub trait SnapshotStore: Send + Sync {
    /// The latest snapshot of `stream`, if any.
    fn load_snapshot(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;

    /// Stores `snapshot`, replacing any older one of the same stream. A snapshot older than the
    /// stored one (a lower version) is ignored.
    fn save_snapshot(
        &self,
        snapshot: Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Switches a read model rebuilt beside the live one into its place: what the SQL backends
/// offer, whose read models are tables in the store's own database (SQLite's
/// `SqliteEventStore`, PostgreSQL's `PgEventStore`). The contract is the same on both, so the
/// same rebuild code switches on either: the swap is SQL text, and the usual swap
/// (`DROP TABLE users; ALTER TABLE users_new RENAME TO users`) is the same text in both
/// dialects.
///
/// The recipe (the `users_new` rebuild of an identity service's `users` view): while a runner
/// keeps `users` serving, run the same projection type writing into `users_new` under another
/// checkpoint name (`users_rebuild`), with [`Runner::catch_up`](crate::Runner::catch_up),
/// watching [`Runner::progress`](crate::Runner::progress). Then stop the live runner, call
/// [`switch_read_model`](Self::switch_read_model), and start a runner of the rebuilt projection
/// under the live name: it continues from where the rebuild got to.
///
/// ```
/// use eventsrc::{GlobalPosition, StoreError, SwitchReadModel};
///
/// /// The last step of a `users` rebuild, written once for every SQL backend.
/// async fn finish_rebuild(store: &impl SwitchReadModel) -> Result<GlobalPosition, StoreError> {
///     let swap = "DROP TABLE users; ALTER TABLE users_new RENAME TO users";
///     // `StoreError::NotBuilt` if `users_rebuild` never ran; nothing changed then.
///     store.switch_read_model("users_rebuild", "users", swap).await
/// }
/// ```
///
/// `SqliteEventStore`'s implementation shows a switch run; `&S` and `Arc<S>` implement the
/// trait too, by handing the call to the store behind the pointer.
pub trait SwitchReadModel: Send + Sync {
    /// Switches the read model whose checkpoint is `rebuilt` in for the one whose checkpoint
    /// is `live`, in one transaction, for the handle's tenant:
    ///
    /// 1. If `rebuilt` has no checkpoint (it was never built), refuses with
    ///    [`StoreError::NotBuilt`], changing nothing.
    /// 2. Waits for a batch of the live read model in flight to commit.
    /// 3. Runs `swap`, SQL statements separated by `;`, which replace the live tables with the
    ///    rebuilt ones. Unqualified names are the store's tables: the main database's on
    ///    SQLite, the store's schema's on PostgreSQL.
    /// 4. Renames the indexes of every table the swap renamed (below).
    /// 5. Moves `live`'s checkpoint to where `rebuilt`'s is, bumps `live`'s generation, and
    ///    removes `rebuilt`'s checkpoint.
    ///
    /// Returns the position `live` now stands at. If any step fails (the swap's SQL included,
    /// as [`StoreError::Backend`]), nothing changes.
    ///
    /// **The generation fence.** A runner of the old projection left running stops with
    /// [`RunError::Switched`](crate::RunError::Switched) at its next batch instead of writing
    /// into the new tables; start runners of the rebuilt projection under the live name.
    /// `rebuilt` equal to `live` runs `swap` as an in-place migration of the live tables and
    /// bumps the generation, keeping the position: runners of the old code stop.
    ///
    /// **Indexes follow their table's new name.** For each table the swap renamed, an index
    /// whose name is the old table's name followed by `_` gets the new table's name in its
    /// place: renaming `users_new` to `users` renames its index `users_new_email` to
    /// `users_email`. So a rebuild's `setup` can use the live one's statements with only the
    /// table name changed, and the next rebuild's `CREATE INDEX IF NOT EXISTS users_new_email`
    /// creates its index instead of finding the name taken and skipping it. An index whose new
    /// name is already taken keeps its name, with a warning (`tracing`). Name indexes after
    /// their table to get this; other names are left alone. PostgreSQL renames the index in
    /// place (and a sequence the table owns, the same way, and an index name too long for it
    /// is kept, with a warning); SQLite has no way to rename an index, so it creates it again
    /// under the new name: that takes time in proportion to the table, and appends wait for
    /// it.
    fn switch_read_model(
        &self,
        rebuilt: &str,
        live: &str,
        swap: &str,
    ) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send;
}

/// Keeps each subscriber's position in the global log.
pub trait CheckpointStore: Send + Sync {
    /// The last position `subscriber` finished with, if it ever saved one.
    fn load_checkpoint(
        &self,
        subscriber: &str,
    ) -> impl Future<Output = Result<Option<GlobalPosition>, StoreError>> + Send;

    /// Records that `subscriber` finished with everything up to `position`.
    fn save_checkpoint(
        &self,
        subscriber: &str,
        position: GlobalPosition,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// An event a reactor gave up on after its retries, kept with the error so that it can be
/// listed, fixed and replayed ([`ParkedStore`]). The reactor went on past it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedEvent {
    /// The reactor that parked it.
    pub reactor: String,
    /// The event, as it was read from the log.
    pub event: RecordedEvent,
    /// The last error, as text.
    pub error: String,
    /// How many times it was tried.
    pub attempts: u32,
    /// When it was parked (or parked again after a failed replay).
    pub parked_at: Timestamp,
}

/// Keeps the events reactors parked: durable where the backend is, per tenant.
pub trait ParkedStore: Send + Sync {
    /// Parks an event, replacing an earlier entry for the same reactor and event id.
    fn park(&self, parked: ParkedEvent) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The events `reactor` parked, in global order.
    fn parked(
        &self,
        reactor: &str,
    ) -> impl Future<Output = Result<Vec<ParkedEvent>, StoreError>> + Send;

    /// Removes a parked event (after a successful replay); `false` if it was not parked.
    fn unpark(
        &self,
        reactor: &str,
        event_id: EventId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Leadership among the nodes sharing a store: at most one holder of a name at a time, so that
/// each projection and durable reactor runs on exactly one node.
///
/// A lease lasts until it is dropped or its holder dies (on PostgreSQL, until the session that
/// holds the advisory lock ends); then another node's [`try_acquire`](Leases::try_acquire)
/// succeeds. Runners also fence their writes with the checkpoint, so a node that lost its
/// lease without knowing cannot apply a batch twice.
pub trait Leases: Send + Sync {
    /// Takes the lease on `name` if nobody holds it; `Ok(None)` if another holder does.
    fn try_acquire(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;
}

/// Waits until this node holds the lease on `name`, asking every `poll`; `None` if `shutdown`
/// resolved first. A failure to ask is logged and asked again. What a leader's loop runs
/// before each term: [`Runner::run_as_leader`](crate::Runner::run_as_leader), and a broker
/// crate's inbound consumer.
pub async fn wait_for_lease<L: Leases + ?Sized, F: Future<Output = ()>>(
    leases: &L,
    name: &str,
    poll: std::time::Duration,
    mut shutdown: std::pin::Pin<&mut F>,
) -> Option<Lease> {
    loop {
        match leases.try_acquire(name).await {
            Ok(Some(lease)) => return Some(lease),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(consumer = %name, %error, "cannot ask for the lease; trying again");
            }
        }
        tokio::select! {
            biased;
            () = shutdown.as_mut() => return None,
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// A held lease ([`Leases`]); dropping it releases it.
pub struct Lease {
    held: tokio::sync::watch::Receiver<bool>,
    _guard: Box<dyn std::any::Any + Send + Sync>,
}

impl Lease {
    /// A lease that holds while `held` is `true` and is released when `guard` is dropped.
    /// For backend authors: `held` turns `false` when the lease is lost (a connection died).
    pub fn new(
        held: tokio::sync::watch::Receiver<bool>,
        guard: impl std::any::Any + Send + Sync,
    ) -> Self {
        Self {
            held,
            _guard: Box::new(guard),
        }
    }

    /// Whether the lease still holds, as far as this node knows.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Resolves when the lease is lost.
    pub async fn lost(&mut self) {
        let _ = self.held.wait_for(|held| !held).await;
    }
}

/// Leases within one process: a set of held names. [`MemoryStore`](crate::MemoryStore) uses it,
/// and so can any backend whose runners all live in one process (an embedded database file).
#[derive(Debug, Clone, Default)]
pub struct LocalLeases {
    held: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl LocalLeases {
    /// Takes the lease on `name` if it is free.
    pub fn try_acquire_now(&self, name: &str) -> Option<Lease> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !held.insert(name.to_owned()) {
            return None;
        }
        let (sender, receiver) = tokio::sync::watch::channel(true);
        let release = Release {
            held: std::sync::Arc::clone(&self.held),
            name: name.to_owned(),
            _sender: sender,
        };
        Some(Lease::new(receiver, release))
    }
}

impl Leases for LocalLeases {
    async fn try_acquire(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        Ok(self.try_acquire_now(name))
    }
}

/// Frees a [`LocalLeases`] name when its lease is dropped.
struct Release {
    held: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    name: String,
    _sender: tokio::sync::watch::Sender<bool>,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.name);
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("held", &self.is_held())
            .finish_non_exhaustive()
    }
}

/// A snapshot store that keeps nothing: the default of a [`Repository`](crate::Repository).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSnapshots;

impl SnapshotStore for NoSnapshots {
    async fn load_snapshot(&self, _: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        Ok(None)
    }

    async fn save_snapshot(&self, _: Snapshot) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Rejects batches no store may accept: empty, or with one event id twice. Every backend calls
/// it first, so all of them answer these the same way ([`StoreError::InvalidAppend`]).
pub fn check_batch(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidAppend {
        stream: stream.clone(),
        reason,
    };
    if events.is_empty() {
        return Err(invalid("an append needs at least one event".to_owned()));
    }
    // Small batches (the common case: one command's events) compare pairs instead of
    // allocating a set; both ways name the first event whose id an earlier one already has.
    let twice = if events.len() <= SMALL_BATCH {
        let repeats =
            |(i, e): &(usize, &NewEvent)| events[..*i].iter().any(|p| p.event_id == e.event_id);
        events.iter().enumerate().find(repeats).map(|(_, e)| e)
    } else {
        let mut seen: std::collections::HashSet<
            _,
            std::hash::BuildHasherDefault<crate::stream::IdHasher>,
        > = std::collections::HashSet::with_capacity_and_hasher(events.len(), Default::default());
        events.iter().find(|e| !seen.insert(e.event_id))
    };
    match twice {
        Some(twice) => Err(invalid(format!(
            "event id {} appears twice in one batch",
            twice.event_id
        ))),
        None => Ok(()),
    }
}

/// The stored JSON of each event's metadata, `None` where it is empty. A run of events with equal
/// metadata (one command's events always share theirs) is serialized once: backends call this
/// instead of encoding per event.
pub fn encode_metadata(events: &[NewEvent]) -> Result<Vec<Option<String>>, StoreError> {
    let mut encoded: Vec<Option<String>> = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let same_as_previous = i > 0 && events[i - 1].metadata == event.metadata;
        let json = match encoded.last() {
            Some(previous) if same_as_previous => previous.clone(),
            _ => encode_one_metadata(&event.metadata)?,
        };
        encoded.push(json);
    }
    Ok(encoded)
}

/// The stored JSON of one event's metadata, `None` when it is empty: for a single event (a
/// one-event append, a parked event), without [`encode_metadata`]'s `Vec`.
pub fn encode_one_metadata(metadata: &crate::Metadata) -> Result<Option<String>, StoreError> {
    if metadata.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(metadata)
        .map(Some)
        .map_err(StoreError::backend)
}

/// Up to this many events, [`check_batch`] looks for a repeated id pairwise.
const SMALL_BATCH: usize = 16;

/// What a storage operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The optimistic concurrency check failed.
    #[error("`{stream}` is at version {actual}, but the append expected {expected}")]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's actual version.
        actual: StreamVersion,
    },
    /// An event id is already stored with other content (or in another stream).
    #[error("event {event_id} appended to `{stream}` is already stored with other content")]
    DuplicateEventId {
        /// The id.
        event_id: EventId,
        /// The stream the new event was appended to.
        stream: StreamId,
    },
    /// The append itself is malformed (no events, an id twice in one batch, ...).
    #[error("invalid append to `{stream}`: {reason}")]
    InvalidAppend {
        /// The stream appended to.
        stream: StreamId,
        /// What is wrong.
        reason: String,
    },
    /// A stored record cannot be read as an event: a column of the wrong type, a version or
    /// position out of range, metadata that is not a JSON object. (Not a payload that fails to
    /// decode into an event type: that is a [`RecordDecodeError`](crate::RecordDecodeError).)
    ///
    /// It names the record by what could still be read of it; a part that could not is `None`
    /// and prints as unreadable, never as a made-up value.
    ///
    /// Every read that meets the record fails with it (a load only when the record's damage
    /// is in a column a load reads). An append fails with it only when it needs the record:
    /// when the record holds the stream's highest version and that version is unreadable (the
    /// next version cannot be known), or when the record holds one of the append's event ids
    /// and must be compared as a possible retry. Other appends to the stream go on; once the
    /// record is repaired, nothing is missing.
    ///
    /// ```
    /// use eventsrc::{GlobalPosition, StoreError, StreamId, StreamVersion};
    ///
    /// let error = StoreError::Corrupt {
    ///     stream: Some(StreamId::new("cart", 7)?),
    ///     version: Some(StreamVersion(2)),
    ///     position: None,
    ///     reason: "column `commit_seq` holds text, not an integer".into(),
    /// };
    /// assert_eq!(
    ///     error.to_string(),
    ///     "corrupt stored event (stream `cart-7`, version 2, position unreadable): column \
    ///      `commit_seq` holds text, not an integer; repair or remove the stored record"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[error(
        "corrupt stored event ({}): {reason}; repair or remove the stored record",
        RecordLocation { stream, version, position }
    )]
    Corrupt {
        /// The record's stream; `None` when its stream name is unreadable.
        stream: Option<StreamId>,
        /// The record's version in its stream; `None` when unreadable.
        version: Option<StreamVersion>,
        /// The record's position in the global log; `None` when unreadable.
        position: Option<GlobalPosition>,
        /// What is wrong, naming the column.
        reason: String,
    },
    /// A projection applied inside the append's own transaction (an inline projection) failed
    /// on one of the appended events, so the append stored nothing.
    ///
    /// Not retryable: the same append meets the same projection code and is refused again.
    /// Fix the projection (or the events) first. Every backend with inline projections
    /// reports a refusal this way; a store failing meanwhile (a connection lost) stays
    /// [`StoreError::Backend`].
    #[error(
        "the inline projection `{projection}` refused the `{event_type}` event appended to `{stream}`, so nothing of the append was stored (retrying fails the same way: fix the projection or the event): {source}"
    )]
    Refused {
        /// The stream appended to.
        stream: StreamId,
        /// The stored type of the event the projection failed on.
        event_type: String,
        /// The projection.
        projection: String,
        /// What failed, naming the event: [`RunError::Handle`](crate::RunError::Handle) (the
        /// projection's own error) or [`RunError::Decode`](crate::RunError::Decode).
        #[source]
        source: Box<crate::RunError>,
    },
    /// A rebuilt read model was to be switched in for the live one, but it was never built:
    /// it has no checkpoint. Nothing changed. Not retryable until the rebuild has run.
    #[error(
        "cannot switch `{rebuilt}` in for `{live}`: `{rebuilt}` has no checkpoint, so it was never built; run it with `Runner::catch_up` first"
    )]
    NotBuilt {
        /// The rebuilt read model's checkpoint name.
        rebuilt: String,
        /// The live read model's.
        live: String,
    },
    /// The stream was tombstoned ([`Deletion::Tombstone`](crate::store::Deletion)): it was
    /// deleted for good, and nothing can be appended to it or loaded from it any more.
    #[error(
        "`{stream}` was deleted for good (tombstoned): nothing can be appended to it or loaded from it; use another stream"
    )]
    Tombstoned {
        /// The stream.
        stream: StreamId,
    },
    /// A read of the log after `after` would miss events that truncation moved to the
    /// archive (the last of them at `through`): the reader is behind the cut. Read what it
    /// needs from the archive ([`Lifecycle::read_archive`](crate::store::Lifecycle::read_archive)),
    /// or skip the removed events knowingly with
    /// [`ReadAll::allow_truncated`](crate::store::ReadAll::allow_truncated)
    /// ([`Runner::allow_truncated`](crate::Runner::allow_truncated) for a runner).
    #[error(
        "reading the log after position {after} would miss events truncated into the archive (up to position {through}); read them from the archive, or allow the reader to skip truncated events"
    )]
    Truncated {
        /// Where the read started.
        after: GlobalPosition,
        /// The position of the last event truncated.
        through: GlobalPosition,
    },
    /// The backend failed (connection lost, disk full, ...); the operation may be retried.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The location of a stored row as a backend read it: its position, stream and version, or
/// [`StoreError::Corrupt`] naming whichever of them could be read and why the others could
/// not. Backends read these three first, so that any later fault of the row can name it.
///
/// ```
/// use eventsrc::backend::locate_record;
/// use eventsrc::{GlobalPosition, StoreError, StreamId, StreamVersion};
///
/// let stream = StreamId::new("cart", 7)?;
/// let located = locate_record(Ok(GlobalPosition::new(1, 0)), Ok(stream.clone()), Ok(StreamVersion(2)));
/// assert!(located.is_ok());
///
/// let broken = locate_record(Err("column `commit_seq` holds text".into()), Ok(stream), Ok(StreamVersion(2)));
/// let Err(StoreError::Corrupt { position, version, reason, .. }) = broken else { panic!() };
/// assert_eq!((position, version), (None, Some(StreamVersion(2))));
/// assert_eq!(reason, "column `commit_seq` holds text");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn locate_record(
    position: Result<GlobalPosition, String>,
    stream: Result<StreamId, String>,
    version: Result<StreamVersion, String>,
) -> Result<(GlobalPosition, StreamId, StreamVersion), StoreError> {
    match (position, stream, version) {
        (Ok(position), Ok(stream), Ok(version)) => Ok((position, stream, version)),
        (position, stream, version) => {
            let reason = [
                position.as_ref().err(),
                stream.as_ref().err(),
                version.as_ref().err(),
            ]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("; ");
            Err(StoreError::Corrupt {
                stream: stream.ok(),
                version: version.ok(),
                position: position.ok(),
                reason,
            })
        }
    }
}

/// What an append to `stream` reports when an inline projection failed inside its transaction
/// with `error`: a [`StoreError::Refused`] when the projection refused an event (its code
/// failed, or the event could not be decoded for it), or the store's own error when the store
/// failed meanwhile.
/// For backend authors, so that every backend reports a refusal the same way.
///
/// ```
/// use eventsrc::backend::inline_refusal;
/// use eventsrc::store::ReadStream;
/// use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, RunError, StoreError, StreamId};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let (store, cart) = (MemoryStore::new(), StreamId::new("cart", 7)?);
/// store.append(&cart, ExpectedVersion::Any, vec![NewEvent::raw("ItemAdded", 1, "{}")]).await?;
/// let records = store.read_stream(&cart, ReadStream::forward()).await?;
/// let failed = RunError::handle("sold", &records[0], "the sku is blank");
/// match inline_refusal(&cart, failed) {
///     StoreError::Refused { projection, event_type, .. } => {
///         assert_eq!((projection.as_str(), event_type.as_str()), ("sold", "ItemAdded"));
///     }
///     other => panic!("{other}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inline_refusal(stream: &StreamId, error: crate::RunError) -> StoreError {
    use crate::{DecodeError, RunError};
    let error = match error {
        RunError::Store { source, .. } => return source,
        other => other,
    };
    let (projection, event_type) = match &error {
        RunError::Handle {
            consumer,
            event_type,
            ..
        } => (consumer.clone(), event_type.clone()),
        RunError::Decode { consumer, source } => {
            let event_type = match &source.source {
                DecodeError::UnknownType { event_type, .. }
                | DecodeError::FutureVersion { event_type, .. }
                | DecodeError::Malformed { event_type, .. }
                | DecodeError::Upcast { event_type, .. } => event_type.clone(),
            };
            (consumer.clone(), event_type)
        }
        _ => return StoreError::backend(error),
    };
    StoreError::Refused {
        stream: stream.clone(),
        event_type,
        projection,
        source: Box::new(error),
    }
}

/// Where a corrupt record is, as far as it could be read: the prefix of
/// [`StoreError::Corrupt`]'s message.
struct RecordLocation<'a> {
    stream: &'a Option<StreamId>,
    version: &'a Option<StreamVersion>,
    position: &'a Option<GlobalPosition>,
}

impl std::fmt::Display for RecordLocation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.stream {
            Some(stream) => write!(f, "stream `{stream}`")?,
            None => f.write_str("stream unreadable")?,
        }
        match self.version {
            Some(version) => write!(f, ", version {version}")?,
            None => f.write_str(", version unreadable")?,
        }
        match self.position {
            Some(position) => write!(f, ", position {position}"),
            None => f.write_str(", position unreadable"),
        }
    }
}

impl StoreError {
    /// Wraps a backend's own error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }

    /// [`StoreError::Corrupt`] for a row that holds no event (a stream's summary, a count),
    /// with the reason, and its stream when that part of the row reads.
    pub fn corrupt_row(stream: Option<StreamId>, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            stream,
            version: None,
            position: None,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamId;

    fn batch(len: usize) -> Vec<NewEvent> {
        (0..len).map(|_| NewEvent::raw("Noted", 1, "{}")).collect()
    }

    /// Both ways of finding a repeated id (pairwise up to `SMALL_BATCH`, a hash set above)
    /// name the same event: the first one whose id an earlier event already has.
    #[test]
    fn a_repeated_id_is_found_the_same_way_in_small_and_large_batches() {
        let stream = StreamId::new("cart", 1).unwrap();
        assert!(check_batch(&stream, &[]).is_err());
        for len in [1, 2, SMALL_BATCH, SMALL_BATCH + 1, 3 * SMALL_BATCH] {
            assert!(
                check_batch(&stream, &batch(len)).is_ok(),
                "{len} distinct ids"
            );
        }
        for len in [4, SMALL_BATCH, SMALL_BATCH + 1, 3 * SMALL_BATCH] {
            // The ids of events 1 and 0 come back, in that order, as the last two: the error
            // names event 1's.
            let mut events = batch(len - 2);
            let (first, second) = (events[0].clone(), events[1].clone());
            events.extend([second.clone(), first]);
            assert_eq!(events.len(), len);
            match check_batch(&stream, &events) {
                Err(StoreError::InvalidAppend { reason, .. }) => {
                    assert!(reason.contains(&second.event_id.to_string()), "{reason}");
                }
                other => panic!("{len}: expected an invalid append, got {other:?}"),
            }
        }
    }

    #[test]
    fn metadata_is_encoded_per_run_and_empty_metadata_is_none() {
        let by = |actor: &str| crate::Metadata::new().with_actor(actor);
        let events = [
            NewEvent::raw("A", 1, "{}").with_metadata(by("ada")),
            NewEvent::raw("B", 1, "{}").with_metadata(by("ada")),
            NewEvent::raw("C", 1, "{}"),
            NewEvent::raw("D", 1, "{}").with_metadata(by("bob")),
        ];
        let encoded = encode_metadata(&events).unwrap();
        let ada = Some(r#"{"actor":"ada"}"#.to_owned());
        assert_eq!(
            encoded,
            [
                ada.clone(),
                ada,
                None,
                Some(r#"{"actor":"bob"}"#.to_owned())
            ]
        );
    }
}
