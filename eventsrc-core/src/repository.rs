//! The write side's front door: load aggregates, execute commands, retry conflicts.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;
use uuid::Uuid;

use crate::store::{NoSnapshots, ReadStream, Snapshot};

use crate::StoreError;
use crate::options::{CommandIds, CommandOptions, LOOKUP};
use crate::store::{STREAM_DELETED, STREAM_TOMBSTONED};
use crate::telemetry::record as meter;
use crate::time::{Clock, SystemClock, at_time};
use crate::{
    Aggregate, AggregateCache, AggregateCommand, Command, EncodeError, EventId, EventStore,
    ExpectedVersion, GlobalPosition, Handle, InvalidStreamId, Metadata, NewEvent,
    RecordDecodeError, RecordedEvent, SnapshotStore, StreamId, StreamVersion, Timestamp,
    ValidationError,
};

/// Loads aggregates from an [`EventStore`] and executes commands against them.
///
/// One repository serves every aggregate type. [`execute`](Repository::execute) runs the command
/// flow (see ARCHITECTURE.md, "Bird's-eye view"): validate the command, load the state (snapshot
/// plus newer events), decide, append with the expected version, and on a conflict catch up with
/// the events appended meanwhile and decide again, at most
/// [`max_retries`](Repository::with_max_retries) times.
///
/// ```
/// # use eventsrc::{Aggregate, Command, Decision, Handle, DecodeError, EncodeError, Event};
/// # #[derive(Debug, PartialEq)] struct Added(u32);
/// # impl Event for Added {
/// #     fn event_type(&self) -> &'static str { "Added" }
/// #     fn schema_version(&self) -> u32 { 1 }
/// #     fn encode(&self) -> Result<String, EncodeError> { Ok(self.0.to_string()) }
/// #     fn decode(t: &str, v: u32, p: &str) -> Result<Self, DecodeError> {
/// #         DecodeError::check("Added", 1, t, v)?;
/// #         serde_json::from_str(p).map(Added).map_err(|e| DecodeError::malformed(t, v, e))
/// #     }
/// # }
/// # #[derive(Default)] struct Counter { total: u32 }
/// # #[derive(Debug, thiserror::Error)] #[error("too many")] struct TooMany;
/// # impl Aggregate for Counter {
/// #     const TYPE: &'static str = "counter";
/// #     type Id = String; type Event = Added; type Error = TooMany;
/// #     fn apply(&mut self, e: &Added) { self.total += e.0 }
/// # }
/// # struct Add(u32);
/// # impl Command for Add {}
/// # impl Handle<Add> for Counter {
/// #     fn handle(&self, c: &Add) -> Decision<Self> { Ok(vec![Added(c.0)]) }
/// # }
/// use eventsrc::{MemoryStore, Metadata, Repository};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let repository = Repository::new(MemoryStore::new());
/// let id = "computers-sold".to_string();
/// let committed = repository.execute::<Counter, _>(&id, Add(3), Metadata::new()).await?;
/// assert_eq!(committed.stream_version.get(), 1);
/// repository.execute::<Counter, _>(&id, Add(4), Metadata::new()).await?;
///
/// let counter = repository.load::<Counter>(&id).await?;
/// assert_eq!(counter.state.total, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Repository<S, N = NoSnapshots> {
    store: S,
    snapshots: N,
    max_retries: u32,
    clock: Arc<dyn Clock>,
    cache: Option<AggregateCache>,
}

impl<S: fmt::Debug, N: fmt::Debug> fmt::Debug for Repository<S, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("store", &self.store)
            .field("snapshots", &self.snapshots)
            .field("max_retries", &self.max_retries)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// An aggregate's state and the stream version it includes.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The version of the last event applied (`StreamVersion::NONE` for a new aggregate).
    pub version: StreamVersion,
}

/// What [`Repository::execute`] committed: the client's consistency token (as in Atlassian's
/// identity service: send it back for a conditional write, or wait for a read model to reach it).
#[derive(Debug, Clone, PartialEq)]
pub struct Committed<E> {
    /// The aggregate's stream.
    pub stream: StreamId,
    /// The id given to this command; every event's causation id.
    pub command_id: Uuid,
    /// The events appended, in order; empty for a no-op.
    pub events: Vec<E>,
    /// Their ids, in the same order.
    pub event_ids: Vec<EventId>,
    /// The stream's version after the command.
    pub stream_version: StreamVersion,
    /// The global position of the last event appended; `None` for a no-op.
    pub global_position: Option<GlobalPosition>,
    /// How many times the command was decided (1 unless a conflict forced a retry; 0 for a
    /// replay).
    pub attempts: u32,
    /// `true` when the command had an idempotency key whose first run was already committed:
    /// nothing was decided or appended now, and this is the first run's result, read back.
    pub replayed: bool,
}

impl<E> Committed<E> {
    /// Whether the command changed nothing (the state already held).
    pub fn is_noop(&self) -> bool {
        self.events.is_empty()
    }
}

/// Loading an aggregate failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The aggregate id does not make a valid stream name.
    #[error(transparent)]
    Stream(#[from] InvalidStreamId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be decoded; the error names it.
    #[error(transparent)]
    Decode(#[from] RecordDecodeError),
    /// The stream's events do not follow one another: a version is missing (or repeated), so
    /// folding on would build a state from part of the history. Only a store that lost
    /// events, or a backend that reads them out of order, gives this.
    ///
    /// ```
    /// use eventsrc::{LoadError, StreamId, StreamVersion};
    ///
    /// let error = LoadError::Gap {
    ///     stream: StreamId::new("cart", 7)?,
    ///     expected: StreamVersion(2),
    ///     found: StreamVersion(5),
    /// };
    /// assert_eq!(
    ///     error.to_string(),
    ///     "`cart-7` holds version 5 where version 2 should come next: the store lost \
    ///      events of this stream (or returned them out of order); restore them before \
    ///      loading it"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[error(
        "`{stream}` holds version {found} where version {expected} should come next: the store \
         lost events of this stream (or returned them out of order); restore them before \
         loading it"
    )]
    Gap {
        /// The stream folded.
        stream: StreamId,
        /// The version that should have come next.
        expected: StreamVersion,
        /// The version the store returned instead.
        found: StreamVersion,
    },
    /// The load needs events that were truncated into the archive
    /// ([`Lifecycle::truncate_before`](crate::store::Lifecycle::truncate_before)): the
    /// stream keeps its events from `kept_from` on, and no snapshot covers the ones before.
    ///
    /// ```
    /// use eventsrc::{LoadError, StreamId, StreamVersion};
    ///
    /// let error = LoadError::Truncated {
    ///     stream: StreamId::new("cart", 7)?,
    ///     needed: StreamVersion(1),
    ///     kept_from: StreamVersion(40),
    /// };
    /// assert_eq!(
    ///     error.to_string(),
    ///     "loading `cart-7` needs version 1, but the stream keeps its events from version 40 \
    ///      on: the ones before were truncated into the archive; load from a snapshot that \
    ///      covers them, or read them from the archive"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[error(
        "loading `{stream}` needs version {needed}, but the stream keeps its events from \
         version {kept_from} on: the ones before were truncated into the archive; load from a \
         snapshot that covers them, or read them from the archive"
    )]
    Truncated {
        /// The stream loaded.
        stream: StreamId,
        /// The first version the load needed.
        needed: StreamVersion,
        /// The first version still in the log.
        kept_from: StreamVersion,
    },
}

/// Executing a command failed. `E` is the aggregate's domain error.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E> {
    /// The command's attributes are invalid; nothing was loaded.
    #[error(transparent)]
    Invalid(ValidationError),
    /// The aggregate rejected the command.
    #[error("command rejected: {0}")]
    Rejected(E),
    /// Other writers kept changing the stream, or changed it in a way the aggregate declares
    /// incompatible with this command's events.
    #[error(
        "conflict on `{stream}`: decided at version {expected}, found version {actual} after {attempts} attempt(s){}",
        if *incompatible { " (the events appended meanwhile conflict with this command)" } else { "" }
    )]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// The version the last decision was based on.
        expected: StreamVersion,
        /// The version found at the last append.
        actual: StreamVersion,
        /// How many times the command was decided.
        attempts: u32,
        /// `true` when [`Aggregate::conflicts`] declared the events incompatible (no retry was
        /// tried); `false` when the retries ran out.
        incompatible: bool,
    },
    /// The command expected the stream at the version the client last saw
    /// ([`CommandOptions::expect_version`]), and it is at another: the client decided on state
    /// that is gone. Never retried; the client reads again and decides anew (HTTP `412
    /// Precondition Failed`).
    #[error(
        "`{stream}` is at version {actual}, but the command expected version {expected}: read it again and decide anew"
    )]
    Stale {
        /// The stream.
        stream: StreamId,
        /// The version the client expected.
        expected: StreamVersion,
        /// The stream's version.
        actual: StreamVersion,
    },
    /// The idempotency key ([`CommandOptions::idempotency_key`]) was used before for another
    /// command: another command type, other streams, or another fingerprint. Nothing was
    /// decided; use a new key for a new command.
    #[error(
        "idempotency key `{key}` was already used for another command (its events are in `{stream}`); use a new key for a new command"
    )]
    KeyReused {
        /// The key.
        key: String,
        /// A stream the key's first command appended to.
        stream: StreamId,
    },
    /// An event could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Loading the aggregate failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Appending failed for a reason other than a conflict.
    #[error(transparent)]
    Store(StoreError),
}

impl<E> From<StoreError> for ExecuteError<E> {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl<S: EventStore> Repository<S> {
    /// A repository over `store`, without snapshots, retrying conflicts 3 times.
    pub fn new(store: S) -> Self {
        Self {
            store,
            snapshots: NoSnapshots,
            max_retries: Self::DEFAULT_MAX_RETRIES,
            clock: Arc::new(SystemClock),
            cache: None,
        }
    }
}

impl<S: EventStore, N: SnapshotStore> Repository<S, N> {
    /// How many times a conflicted command is decided again unless told otherwise.
    pub const DEFAULT_MAX_RETRIES: u32 = 3;

    /// Loads and saves snapshots of aggregates that declare a
    /// [`SnapshotFormat`](crate::store::SnapshotFormat) in `snapshots`.
    #[must_use]
    pub fn with_snapshots<M: SnapshotStore>(self, snapshots: M) -> Repository<S, M> {
        Repository {
            store: self.store,
            snapshots,
            max_retries: self.max_retries,
            clock: self.clock,
            cache: self.cache,
        }
    }

    /// Decides a conflicted command again at most `retries` times (0: never retry).
    #[must_use]
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Reads the time from `clock`: what handlers see as [`now`](crate::time::now) while deciding,
    /// and when snapshots are taken.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Keeps aggregates' decided state in `cache` between commands, so that a command on a
    /// known aggregate decides at once and appends, without reading its stream: see
    /// [`AggregateCache`] for why a decision is never wrong for it, on one node or many.
    /// Loads ([`load`](Repository::load) and the like) always read the store.
    #[must_use]
    pub fn with_cache(mut self, cache: AggregateCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The aggregate cache, if the repository has one.
    pub fn cache(&self) -> Option<&AggregateCache> {
        self.cache.as_ref()
    }

    /// Drops `A`'s cached state of `stream` (after an append that did not go through the
    /// cache, such as a decision across streams).
    pub(crate) fn forget_cached<A: Aggregate>(&self, stream: &StreamId) {
        if let Some(cache) = &self.cache {
            cache.forget::<A>(self.store.tenant(), stream);
        }
    }

    /// The time handlers see while deciding.
    pub(crate) fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }

    /// How many times a conflicted command is decided again.
    pub(crate) fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The event store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The snapshot store.
    pub fn snapshots(&self) -> &N {
        &self.snapshots
    }

    /// The aggregate's current state: its latest usable snapshot, then every event after it.
    pub async fn load<A: Aggregate>(&self, id: &A::Id) -> Result<Loaded<A>, LoadError> {
        let stream = A::stream_id(id)?;
        self.load_stream(&stream, None).await
    }

    /// The aggregate as it was at `version` (time travel by version): every event up to and
    /// including that one. A version past the end gives the current state.
    pub async fn load_at<A: Aggregate>(
        &self,
        id: &A::Id,
        version: StreamVersion,
    ) -> Result<Loaded<A>, LoadError> {
        let stream = A::stream_id(id)?;
        self.load_stream(&stream, Some(version)).await
    }

    /// The aggregate as it was at `time` (time travel by clock): every event recorded at or
    /// before it. Snapshots are not used, since one may include later events.
    pub async fn load_at_time<A: Aggregate>(
        &self,
        id: &A::Id,
        time: Timestamp,
    ) -> Result<Loaded<A>, LoadError> {
        let stream = A::stream_id(id)?;
        let records = self
            .store
            .read_stream(&stream, ReadStream::forward())
            .await?;
        let mut loaded = Loaded {
            state: A::default(),
            version: StreamVersion::NONE,
        };
        for (i, record) in records
            .iter()
            .take_while(|r| r.recorded_at <= time)
            .enumerate()
        {
            let next = match next(&stream, loaded.version, record.as_stored()) {
                Err(gap) if i == 0 => return Err(self.truncated_or(gap).await),
                next => next?,
            };
            if next == Next::Apply {
                loaded.state.apply(&record.decode()?);
            } else {
                loaded.state = A::default();
            }
            loaded.version = record.stream_version;
        }
        Ok(loaded)
    }

    /// Takes a snapshot of the aggregate now, whatever its policy says. Returns the version
    /// saved, or `None` when the aggregate declares no [`SnapshotFormat`](crate::store::SnapshotFormat)
    /// or has no events.
    pub async fn snapshot<A: Aggregate>(
        &self,
        id: &A::Id,
    ) -> Result<Option<StreamVersion>, LoadError> {
        let stream = A::stream_id(id)?;
        let loaded = self.load_stream::<A>(&stream, None).await?;
        self.save_snapshot(&stream, &loaded).await
    }

    /// Validates `command`, decides it against the aggregate `id` and appends the events, with
    /// the options' metadata stamped on each (causation: the command's id; correlation: as
    /// given, else the command's id). `options` is [`Metadata`] or [`CommandOptions`].
    ///
    /// A conflicting append catches up with the events appended meanwhile and decides again, at
    /// most `max_retries` times; if the aggregate declares the new events
    /// [incompatible](Aggregate::conflicts) with the decided ones it stops at once. An empty
    /// decision is a no-op: nothing is appended.
    ///
    /// With [`CommandOptions::expect_version`] the command is conditional (no retry: a moved
    /// stream is [`ExecuteError::Stale`]); with [`CommandOptions::idempotency_key`] it is
    /// idempotent (a retry after a lost answer returns the first run's result).
    ///
    /// ```
    /// # use eventsrc::{Aggregate, Command, Decision, Handle, DecodeError, EncodeError, Event};
    /// # #[derive(Debug, PartialEq)] struct Renamed(String);
    /// # impl Event for Renamed {
    /// #     fn event_type(&self) -> &'static str { "Renamed" }
    /// #     fn schema_version(&self) -> u32 { 1 }
    /// #     fn encode(&self) -> Result<String, EncodeError> { Ok(serde_json::to_string(&self.0).unwrap()) }
    /// #     fn decode(t: &str, v: u32, p: &str) -> Result<Self, DecodeError> {
    /// #         DecodeError::check("Renamed", 1, t, v)?;
    /// #         serde_json::from_str(p).map(Renamed).map_err(|e| DecodeError::malformed(t, v, e))
    /// #     }
    /// # }
    /// # #[derive(Default)] struct User { name: String }
    /// # #[derive(Debug, thiserror::Error)] #[error("never")] struct Never;
    /// # impl Aggregate for User {
    /// #     const TYPE: &'static str = "user";
    /// #     type Id = u32; type Event = Renamed; type Error = Never;
    /// #     fn apply(&mut self, e: &Renamed) { self.name = e.0.clone() }
    /// # }
    /// # struct Rename(String);
    /// # impl Command for Rename {}
    /// # impl Handle<Rename> for User {
    /// #     fn handle(&self, c: &Rename) -> Decision<Self> { Ok(vec![Renamed(c.0.clone())]) }
    /// # }
    /// use eventsrc::{CommandOptions, ExecuteError, MemoryStore, Metadata, Repository, StreamVersion};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let repository = Repository::new(MemoryStore::new());
    /// let create = CommandOptions::new().expect_version(StreamVersion::NONE);
    /// let first = repository.execute::<User, _>(&7, Rename("Ada".into()), create).await?;
    ///
    /// // A client that read version 1 renames; one that still holds version 0 is told so.
    /// let token = CommandOptions::new().expect_version(first.stream_version);
    /// repository.execute::<User, _>(&7, Rename("Ada L.".into()), token.clone()).await?;
    /// let stale = repository.execute::<User, _>(&7, Rename("Ada B.".into()), token).await;
    /// assert!(matches!(stale, Err(ExecuteError::Stale { actual: StreamVersion(2), .. })));
    ///
    /// // A retried request with the same key appends nothing and returns the first answer.
    /// let keyed = || CommandOptions::from(Metadata::new()).idempotency_key("req-81");
    /// let once = repository.execute::<User, _>(&7, Rename("Ada K.".into()), keyed()).await?;
    /// let again = repository.execute::<User, _>(&7, Rename("Ada K.".into()), keyed()).await?;
    /// assert!(again.replayed && again.event_ids == once.event_ids);
    /// assert_eq!(repository.load::<User>(&7).await?.version, StreamVersion(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn execute<A, C>(
        &self,
        id: &A::Id,
        command: C,
        options: impl Into<CommandOptions>,
    ) -> Result<Committed<A::Event>, ExecuteError<A::Error>>
    where
        A: Handle<C>,
        C: Command,
    {
        let (name, started) = (command.name(), Instant::now());
        let result = async {
            // The command's own rules first: an id field they refuse (an address holding a
            // control character) is `Invalid`, naming the field, before it is made a stream
            // name.
            command.validate().map_err(ExecuteError::Invalid)?;
            let stream = A::stream_id(id).map_err(LoadError::from)?;
            self.execute_on::<A, C>(stream, command, options.into())
                .await
        }
        .await;
        record_command(name, started, &result);
        result
    }

    /// [`execute`](Repository::execute) for a command that names its aggregate and carries its
    /// id (`#[command(aggregate = ...)]`).
    pub async fn send<C>(
        &self,
        command: C,
        options: impl Into<CommandOptions>,
    ) -> Result<Committed<AggregateEvent<C>>, ExecuteError<AggregateError<C>>>
    where
        C: AggregateCommand,
        C::Aggregate: Handle<C>,
    {
        let (name, started) = (command.name(), Instant::now());
        let result = async {
            command.validate().map_err(ExecuteError::Invalid)?;
            let stream =
                C::Aggregate::stream_id(command.aggregate_id()).map_err(LoadError::from)?;
            self.execute_on::<C::Aggregate, C>(stream, command, options.into())
                .await
        }
        .await;
        record_command(name, started, &result);
        result
    }

    async fn execute_on<A, C>(
        &self,
        stream: StreamId,
        command: C,
        options: CommandOptions,
    ) -> Result<Committed<A::Event>, ExecuteError<A::Error>>
    where
        A: Handle<C>,
        C: Command,
    {
        let tenant = self.store.tenant();
        let ids = CommandIds::new(&options, tenant, command.name(), &[&stream]);
        let span = command_span(&stream, command.name(), tenant, &ids, &options);
        let result = self
            .execute_in::<A, C>(stream, &ids, &command, &options)
            .instrument(span.clone())
            .await;
        let answer = result.as_ref().ok();
        record_answer(
            &span,
            command_done(&result),
            answer.map(|c| c.stream_version),
            answer.and_then(|c| c.global_position),
        );
        result
    }

    async fn execute_in<A, C>(
        &self,
        stream: StreamId,
        ids: &CommandIds,
        command: &C,
        options: &CommandOptions,
    ) -> Result<Committed<A::Event>, ExecuteError<A::Error>>
    where
        A: Handle<C>,
        C: Command,
    {
        if let Some(replay) = self.replay::<A>(&stream, ids).await? {
            return Ok(replay);
        }
        // State from the cache may be behind the store (another node, another repository):
        // `unverified` until an append at its version succeeds or a read brings it up to date.
        let (mut loaded, mut unverified) = match self.take_cached::<A>(&stream) {
            Some(loaded) => (loaded, true),
            None => (self.load_stream::<A>(&stream, None).await?, false),
        };
        if let Some(expected) = options.expected
            && loaded.version != expected
        {
            if unverified {
                self.catch_up(&stream, &mut loaded, &[]).await?;
                unverified = false;
            }
            if loaded.version != expected {
                // The state is the store's: the next command need not read it again.
                let actual = loaded.version;
                self.keep_cached(&stream, loaded);
                return Err(ExecuteError::Stale {
                    stream,
                    expected,
                    actual,
                });
            }
        }
        let metadata = ids.metadata(&options.metadata);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let decided = at_time(self.clock.now(), || loaded.state.handle(command));
            if unverified && !matches!(&decided, Ok(events) if !events.is_empty()) {
                // A refusal or a no-op is answered without an append, so nothing would catch
                // cached state that is gone: read what the stream holds beyond it first.
                let cached_at = loaded.version;
                self.catch_up(&stream, &mut loaded, &[]).await?;
                unverified = false;
                if loaded.version != cached_at {
                    if let Some(expected) = options.expected {
                        let actual = loaded.version;
                        self.keep_cached(&stream, loaded);
                        return Err(ExecuteError::Stale {
                            stream,
                            expected,
                            actual,
                        });
                    }
                    // Decided on state that was gone: that decision does not count.
                    attempts -= 1;
                    continue;
                }
            }
            let events = match decided {
                Ok(events) => events,
                Err(error) => {
                    self.keep_cached(&stream, loaded);
                    return Err(ExecuteError::Rejected(error));
                }
            };
            let mut committed = Committed {
                stream: stream.clone(),
                command_id: ids.command_id,
                events,
                event_ids: Vec::new(),
                stream_version: loaded.version,
                global_position: None,
                attempts,
                replayed: false,
            };
            if committed.events.is_empty() {
                self.keep_cached(&stream, loaded);
                return Ok(committed);
            }
            let batch = encode_batch(&committed.events, &metadata, ids, 0)?;
            committed.event_ids = batch.iter().map(|e| e.event_id).collect();
            let expected = ExpectedVersion::at(loaded.version);
            let span = tracing::debug_span!(
                "eventsrc.append",
                stream = %stream,
                tenant = %self.store.tenant(),
                %expected,
                events = batch.len(),
                event_type = batch[0].event_type.as_ref(),
            );
            match self
                .store
                .append(&stream, expected, batch)
                .instrument(span)
                .await
            {
                Ok(appended) if appended.already_stored => {
                    // A run with the same key stored these very events first.
                    if let Some(replay) = self.replay::<A>(&stream, ids).await? {
                        return Ok(replay);
                    }
                    committed.stream_version = appended.stream_version;
                    committed.global_position = Some(appended.position);
                    committed.replayed = true;
                    return Ok(committed);
                }
                Ok(appended) => {
                    committed.stream_version = appended.stream_version;
                    committed.global_position = Some(appended.position);
                    self.after_commit(&stream, loaded, &committed.events, appended.stream_version)
                        .await;
                    return Ok(committed);
                }
                Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                    if let Some(replay) = self.replay::<A>(&stream, ids).await? {
                        return Ok(replay);
                    }
                    if let Some(expected) = options.expected {
                        return Err(ExecuteError::Stale {
                            stream,
                            expected,
                            actual,
                        });
                    }
                    if unverified {
                        // The cached state was behind: read what it missed, as a load would
                        // have, and decide again. Not a conflict with a concurrent writer.
                        // A store behind the cached state (a cache shared by two stores)
                        // cannot be caught up with: read the aggregate afresh.
                        if actual < loaded.version {
                            loaded = self.load_stream::<A>(&stream, None).await?;
                        } else {
                            self.catch_up(&stream, &mut loaded, &[]).await?;
                        }
                        unverified = false;
                        attempts -= 1;
                        tracing::debug!(%actual, "cached state was behind the store; deciding again");
                        continue;
                    }
                    let decided_at = loaded.version;
                    let incompatible = self
                        .catch_up(&stream, &mut loaded, &committed.events)
                        .await?;
                    if incompatible || attempts > self.max_retries {
                        return Err(ExecuteError::Conflict {
                            stream,
                            expected: decided_at,
                            actual: actual.max(loaded.version),
                            attempts,
                            incompatible,
                        });
                    }
                    tracing::debug!(%decided_at, %actual, attempts, "append conflicted; deciding again");
                }
                Err(error @ StoreError::DuplicateEventId { .. }) => {
                    // A run with the same key stored other content first (it decided on
                    // another state, or at another time): its result is the answer.
                    return match self.replay::<A>(&stream, ids).await? {
                        Some(replay) => Ok(replay),
                        None => Err(ExecuteError::Store(error)),
                    };
                }
                Err(other) => return Err(ExecuteError::Store(other)),
            }
        }
    }

    /// Takes `A`'s cached state of `stream` out of the cache, if the repository has one and
    /// holds it.
    fn take_cached<A: Aggregate>(&self, stream: &StreamId) -> Option<Loaded<A>> {
        let taken = self.cache.as_ref()?.take(self.store.tenant(), stream);
        meter::cache(A::TYPE, taken.is_some());
        taken
    }

    /// Gives state taken with [`take_cached`](Self::take_cached) (or loaded) back to the cache.
    fn keep_cached<A: Aggregate>(&self, stream: &StreamId, loaded: Loaded<A>) {
        if let Some(cache) = &self.cache {
            cache.put(self.store.tenant(), stream, loaded);
        }
    }

    /// The first run of a command with an idempotency key, if it committed: its result read
    /// back, or [`ExecuteError::KeyReused`] if the key's events belong to another command.
    /// `None` at once for a command without a key.
    async fn replay<A: Aggregate>(
        &self,
        stream: &StreamId,
        ids: &CommandIds,
    ) -> Result<Option<Committed<A::Event>>, ExecuteError<A::Error>> {
        let Some(records) = self.first_run(ids, std::slice::from_ref(stream)).await? else {
            return Ok(None);
        };
        let events = records
            .iter()
            .map(RecordedEvent::decode)
            .collect::<Result<Vec<A::Event>, _>>()
            .map_err(LoadError::from)?;
        let last = records.last();
        Ok(Some(Committed {
            stream: stream.clone(),
            command_id: ids.command_id,
            events,
            event_ids: records.iter().map(|r| r.event_id).collect(),
            stream_version: last.map_or(StreamVersion::NONE, |r| r.stream_version),
            global_position: last.map(|r| r.global_position),
            attempts: 0,
            replayed: true,
        }))
    }

    /// The events the first run of a keyed command stored, in order: `None` when the command
    /// has no key or its first run stored nothing. A first run of another command (another
    /// fingerprint, or events outside `streams`) is [`ExecuteError::KeyReused`].
    pub(crate) async fn first_run<E>(
        &self,
        ids: &CommandIds,
        streams: &[StreamId],
    ) -> Result<Option<Vec<RecordedEvent>>, ExecuteError<E>> {
        let Some(stamp) = ids.stamp() else {
            return Ok(None);
        };
        let mut found: Vec<RecordedEvent> = Vec::new();
        loop {
            let asked: Vec<EventId> = (found.len()..found.len() + LOOKUP)
                .map(|index| ids.event_id(index))
                .collect();
            let page = self.store.read_events(&asked).await?;
            let run = page
                .iter()
                .zip(&asked)
                .take_while(|(record, id)| record.event_id == **id)
                .count();
            found.extend(page.into_iter().take(run));
            if run < LOOKUP {
                break;
            }
        }
        let Some(first) = found.first() else {
            return Ok(None);
        };
        let same_command = first.metadata.idempotency.as_ref() == Some(stamp)
            && found.iter().all(|record| streams.contains(&record.stream));
        if !same_command {
            return Err(ExecuteError::KeyReused {
                key: stamp.key.clone(),
                stream: first.stream.clone(),
            });
        }
        Ok(Some(found))
    }

    /// Applies the events appended after `loaded.version`; returns whether any of them conflicts
    /// with one of `ours`.
    pub(crate) async fn catch_up<A: Aggregate>(
        &self,
        stream: &StreamId,
        loaded: &mut Loaded<A>,
        ours: &[A::Event],
    ) -> Result<bool, LoadError> {
        let read = ReadStream::forward().from(loaded.version.advance(1));
        let mut incompatible = false;
        self.fold(stream, loaded, read, |theirs| {
            incompatible |= ours.iter().any(|event| A::conflicts(event, theirs));
        })
        .await?;
        Ok(incompatible)
    }

    pub(crate) async fn load_stream<A: Aggregate>(
        &self,
        stream: &StreamId,
        up_to: Option<StreamVersion>,
    ) -> Result<Loaded<A>, LoadError> {
        let span = load_span(A::TYPE, stream, self.store.tenant());
        let read = async {
            let mut loaded = self.load_snapshot::<A>(stream, up_to).await?;
            let snapshot = loaded.version;
            let from = loaded.version.advance(1);
            let mut read = ReadStream::forward().from(from);
            match up_to {
                Some(last) if last < from => {}
                Some(last) => {
                    read = read.limit((last.get() - from.get() + 1) as usize);
                    self.fold(stream, &mut loaded, read, |_| {}).await?;
                }
                None => self.fold(stream, &mut loaded, read, |_| {}).await?,
            }
            Ok::<_, LoadError>((loaded, snapshot))
        };
        let (loaded, snapshot) = read.instrument(span.clone()).await?;
        let (from_snapshot, folded) = (
            snapshot != StreamVersion::NONE,
            loaded.version.get() - snapshot.get(),
        );
        meter::load(A::TYPE, from_snapshot, folded);
        span.record("version", loaded.version.get());
        span.record("events", folded);
        span.record("snapshot", from_snapshot);
        Ok(loaded)
    }

    /// Applies the events of `stream` that `read` selects to `loaded`, checking that each
    /// follows the one before ([`follows`]); `each` sees every event before it is applied.
    async fn fold<A: Aggregate>(
        &self,
        stream: &StreamId,
        loaded: &mut Loaded<A>,
        read: ReadStream,
        mut each: impl FnMut(&A::Event) + Send,
    ) -> Result<(), LoadError> {
        let mut first = true;
        let visited = self
            .store
            .visit_stream(stream, read, |stored| {
                let at_first = std::mem::replace(&mut first, false);
                let next = next(stream, loaded.version, stored).map_err(|gap| match at_first {
                    true => Fold::First(gap),
                    false => Fold::Load(gap),
                })?;
                if next == Next::Restart {
                    loaded.state = A::default();
                    loaded.version = stored.stream_version;
                    return Ok(());
                }
                let event: A::Event = stored.decode().map_err(|e| Fold::at(&stored, e))?;
                each(&event);
                loaded.state.apply(&event);
                loaded.version = stored.stream_version;
                Ok(())
            })
            .await;
        self.name_undecodable(stream, visited).await
    }

    /// Turns a fold's failure into a [`LoadError`]. A decode failure reads its one record again
    /// (loads read only the columns folding needs) so the error names the event's id and
    /// position.
    async fn name_undecodable(
        &self,
        stream: &StreamId,
        visited: Result<(), Fold>,
    ) -> Result<(), LoadError> {
        let (version, source) = match visited {
            Ok(()) => return Ok(()),
            Err(Fold::Load(error)) => return Err(error),
            Err(Fold::First(error)) => return Err(self.truncated_or(error).await),
            Err(Fold::Decode { version, source }) => (version, source),
        };
        let again = self
            .store
            .read_stream(stream, ReadStream::forward().from(version).limit(1))
            .await?;
        match again.first() {
            Some(record) => Err(RecordDecodeError::new(record, source).into()),
            // The record vanished between the two reads: only a store that lost data does that.
            None => Err(StoreError::Corrupt {
                stream: Some(stream.clone()),
                version: Some(version),
                position: None,
                reason: format!(
                    "the event failed to decode ({source}), then could not be read again"
                ),
            }
            .into()),
        }
    }

    /// A load's `error` at the first event it read: [`LoadError::Truncated`] when that event
    /// is not the one expected because the versions before it were archived, else `error`.
    async fn truncated_or(&self, error: LoadError) -> LoadError {
        let LoadError::Gap {
            stream,
            expected,
            found,
        } = &error
        else {
            return error;
        };
        match self.store.archived_through(stream).await {
            Ok(Some(through)) if through >= *expected && found > expected => LoadError::Truncated {
                stream: stream.clone(),
                needed: *expected,
                kept_from: *found,
            },
            Ok(_) => error,
            Err(store) => store.into(),
        }
    }

    /// The latest snapshot usable for a load up to `up_to`, or the empty state. A snapshot of
    /// another state version, or one that no longer decodes, is ignored: the events rebuild it.
    async fn load_snapshot<A: Aggregate>(
        &self,
        stream: &StreamId,
        up_to: Option<StreamVersion>,
    ) -> Result<Loaded<A>, LoadError> {
        let empty = Loaded {
            state: A::default(),
            version: StreamVersion::NONE,
        };
        let Some(format) = A::SNAPSHOT else {
            return Ok(empty);
        };
        let Some(snapshot) = self.snapshots.load_snapshot(stream).await? else {
            return Ok(empty);
        };
        if snapshot.state_version != format.state_version
            || up_to.is_some_and(|last| snapshot.version > last)
        {
            return Ok(empty);
        }
        match (format.decode)(&snapshot.payload) {
            Ok(state) => Ok(Loaded {
                state,
                version: snapshot.version,
            }),
            Err(error) => {
                tracing::warn!(%stream, version = %snapshot.version, %error, "ignoring undecodable snapshot");
                Ok(empty)
            }
        }
    }

    /// After a commit: folds the committed `events` into the state they were decided on,
    /// snapshots it when the policy asks for it, and keeps it in the cache. A failed snapshot
    /// is logged, not returned: the events are committed and a snapshot is only a cache.
    /// `stored_at` is the stream's version after the append, as the store reported it.
    async fn after_commit<A: Aggregate>(
        &self,
        stream: &StreamId,
        mut loaded: Loaded<A>,
        events: &[A::Event],
        stored_at: StreamVersion,
    ) {
        let every = A::SNAPSHOT
            .and_then(|format| format.every)
            .filter(|n| *n > 0);
        let cached = A::CACHE && self.cache.is_some();
        if every.is_none() && !cached {
            return;
        }
        let before = loaded.version;
        for event in events {
            loaded.state.apply(event);
        }
        loaded.version = loaded.version.advance(events.len() as u64);
        if loaded.version != stored_at {
            // The store numbered the events otherwise than the state expects: read it again.
            return;
        }
        if let Some(every) = every
            && loaded.version.get() / every != before.get() / every
            && let Err(error) = self.save_snapshot(stream, &loaded).await
        {
            tracing::warn!(%stream, %error, "snapshot not saved");
        }
        self.keep_cached(stream, loaded);
    }

    async fn save_snapshot<A: Aggregate>(
        &self,
        stream: &StreamId,
        loaded: &Loaded<A>,
    ) -> Result<Option<StreamVersion>, LoadError> {
        let Some(format) = A::SNAPSHOT else {
            return Ok(None);
        };
        if loaded.version == StreamVersion::NONE {
            return Ok(None);
        }
        let payload = match (format.encode)(&loaded.state) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::warn!(%stream, %error, "state does not encode; no snapshot taken");
                return Ok(None);
            }
        };
        let snapshot = Snapshot {
            stream: stream.clone(),
            version: loaded.version,
            state_version: format.state_version,
            payload,
            taken_at: self.clock.now(),
        };
        self.snapshots.save_snapshot(snapshot).await?;
        Ok(Some(loaded.version))
    }
}

/// What a fold does with a stored event of `stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Apply it: it comes right after the last one.
    Apply,
    /// Start again from the initial state: it is a soft delete's marker.
    Restart,
}

/// What a fold does with `stored`, read after the event at `previous` (the snapshot's
/// version, or `StreamVersion::NONE` before the first event). Every fold of a stream calls
/// it, so that a store that lost an event fails the load instead of handing out a state built
/// from part of the history, and a tombstoned stream does not load. (A gap at the first event
/// read may be a truncation: the fold asks the store, [`Repository::truncated_or`].)
fn next(
    stream: &StreamId,
    previous: StreamVersion,
    stored: crate::backend::StoredEvent<'_>,
) -> Result<Next, LoadError> {
    let (expected, found) = (previous.advance(1), stored.stream_version);
    match stored.event_type {
        STREAM_TOMBSTONED => Err(StoreError::Tombstoned {
            stream: stream.clone(),
        }
        .into()),
        STREAM_DELETED => Ok(Next::Restart),
        _ if found == expected => Ok(Next::Apply),
        _ => Err(LoadError::Gap {
            stream: stream.clone(),
            expected,
            found,
        }),
    }
}

/// Why folding a stream stopped.
enum Fold {
    Load(LoadError),
    /// The first event read did not follow: lost, or truncated on purpose.
    First(LoadError),
    Decode {
        version: StreamVersion,
        source: crate::DecodeError,
    },
}

impl Fold {
    fn at(stored: &crate::backend::StoredEvent<'_>, source: crate::DecodeError) -> Self {
        Self::Decode {
            version: stored.stream_version,
            source,
        }
    }
}

impl From<StoreError> for Fold {
    fn from(error: StoreError) -> Self {
        Self::Load(error.into())
    }
}

impl From<LoadError> for Fold {
    fn from(error: LoadError) -> Self {
        Self::Load(error)
    }
}

/// The event type of a command's aggregate.
pub type AggregateEvent<C> = <<C as AggregateCommand>::Aggregate as Aggregate>::Event;
/// The error type of a command's aggregate.
pub type AggregateError<C> = <<C as AggregateCommand>::Aggregate as Aggregate>::Error;

/// The events of one decision, encoded with `metadata`, their ids derived from `ids` when the
/// command has a key (`first` is the index of the first event among all the command's events).
pub(crate) fn encode_batch<E: crate::Event>(
    events: &[E],
    metadata: &Metadata,
    ids: &CommandIds,
    first: usize,
) -> Result<Vec<NewEvent>, EncodeError> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let new = NewEvent::from_event(event, metadata.clone())?;
            Ok(match ids.stamp() {
                Some(_) => new.with_id(ids.event_id(first + i)),
                None => new,
            })
        })
        .collect()
}

/// The span of one command's run.
pub(crate) fn command_span(
    stream: &StreamId,
    name: &str,
    tenant: &crate::Tenant,
    ids: &CommandIds,
    options: &CommandOptions,
) -> tracing::Span {
    let span = tracing::info_span!(
        "eventsrc.command",
        command = name,
        stream = %stream,
        tenant = %tenant,
        command_id = %ids.command_id,
        correlation_id = %options.metadata.correlation_id.unwrap_or(ids.command_id),
        causation_id = tracing::field::Empty,
        expected_version = tracing::field::Empty,
        idempotency_key = tracing::field::Empty,
        outcome = tracing::field::Empty,
        attempts = tracing::field::Empty,
        stream_version = tracing::field::Empty,
        global_position = tracing::field::Empty,
    );
    if let Some(cause) = options.metadata.causation_id {
        span.record("causation_id", tracing::field::display(cause));
    }
    if let Some(expected) = options.expected {
        span.record("expected_version", expected.get());
    }
    if let Some(key) = &options.key {
        span.record("idempotency_key", key.as_str());
    }
    span
}

/// Records a command's answer on its span: the outcome (as in the metrics), and for a
/// command that committed, its attempts, stream version and global position.
pub(crate) fn record_answer<E>(
    span: &tracing::Span,
    done: Result<meter::CommandDone, &ExecuteError<E>>,
    stream_version: Option<StreamVersion>,
    position: Option<GlobalPosition>,
) {
    let (outcome, attempts) = meter::outcome(done);
    span.record("outcome", outcome);
    span.record("attempts", attempts);
    if let Some(version) = stream_version {
        span.record("stream_version", version.get());
    }
    if let Some(position) = position {
        span.record("global_position", tracing::field::display(position));
    }
}

/// The span of a read of an aggregate from the store (by a load or a command); its version,
/// the events folded and whether a snapshot was used are recorded when it is read.
fn load_span(aggregate: &'static str, stream: &StreamId, tenant: &crate::Tenant) -> tracing::Span {
    tracing::debug_span!(
        "eventsrc.load",
        aggregate,
        stream = %stream,
        tenant = %tenant,
        version = tracing::field::Empty,
        events = tracing::field::Empty,
        snapshot = tracing::field::Empty,
    )
}

/// What a command's result says for the metrics and its span.
fn command_done<Ev, E>(
    result: &Result<Committed<Ev>, ExecuteError<E>>,
) -> Result<meter::CommandDone, &ExecuteError<E>> {
    result.as_ref().map(|committed| meter::CommandDone {
        replayed: committed.replayed,
        events: committed.events.len(),
        attempts: committed.attempts,
    })
}

/// Records a command's outcome in [`telemetry`](crate::telemetry).
fn record_command<Ev, E>(
    name: &'static str,
    started: Instant,
    result: &Result<Committed<Ev>, ExecuteError<E>>,
) {
    meter::command(name, started, command_done(result));
}
