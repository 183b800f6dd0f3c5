//! Decisions across streams: a command decided against several aggregates at once, whose
//! events are appended to all their streams in one transaction.

use std::future::Future;

use tracing::Instrument;
use uuid::Uuid;

use crate::options::{CommandIds, CommandOptions};
use crate::repository::{command_span, encode_batch, record_answer};
use crate::store::StreamAppend;
use crate::telemetry::record as meter;
use crate::time::at_time;
use crate::{
    Aggregate, Command, EncodeError, EventId, EventStore, ExecuteError, ExpectedVersion,
    GlobalPosition, InvalidStreamId, LoadError, Loaded, Metadata, NewEvent, RecordedEvent,
    Repository, SnapshotStore, StoreError, StreamId, StreamVersion,
};

/// A command decided against several aggregates at once: its events go to all their streams
/// in one transaction, each stream's version checked ([`Repository::decide`]).
///
/// This is how a rule that spans aggregates holds without compensation. A unique e-mail
/// address: signing up reads the user and the address's own small aggregate (who holds it),
/// and appends `UserRegistered` to the one and `EmailClaimed` to the other together. Two
/// sign-ups racing for one address both expect the address's stream where they read it; the
/// store lets exactly one commit, and the other, decided again, finds the address taken.
///
/// The aggregates are a tuple (two to four), their ids a tuple of their ids, and the decision
/// a tuple of event lists, one per aggregate, in the same order. An aggregate that gets no
/// events is still checked: if another writer changed it since it was read, the decision is
/// made again (or fails, see [`Repository::decide`]).
///
/// ```
/// # use eventsrc::{Aggregate, Command, DecodeError, EncodeError, Event};
/// # macro_rules! unit_event { ($name:ident) => {
/// #   #[derive(Debug, Clone, PartialEq)] struct $name(String);
/// #   impl Event for $name {
/// #     fn event_type(&self) -> &'static str { stringify!($name) }
/// #     fn schema_version(&self) -> u32 { 1 }
/// #     fn encode(&self) -> Result<String, EncodeError> { Ok(serde_json::to_string(&self.0).unwrap()) }
/// #     fn decode(t: &str, v: u32, p: &str) -> Result<Self, DecodeError> {
/// #         DecodeError::check(stringify!($name), 1, t, v)?;
/// #         serde_json::from_str(p).map($name).map_err(|e| DecodeError::malformed(t, v, e))
/// #     }
/// #   }
/// # } }
/// # unit_event!(Registered);
/// # unit_event!(Claimed);
/// # #[derive(Debug, thiserror::Error)] #[error("never")] struct Never;
/// #[derive(Default)]
/// struct User { email: Option<String> }
/// # impl Aggregate for User {
/// #     const TYPE: &'static str = "user";
/// #     type Id = u32; type Event = Registered; type Error = Never;
/// #     fn apply(&mut self, e: &Registered) { self.email = Some(e.0.clone()) }
/// # }
///
/// /// Who holds an e-mail address: one small stream per address.
/// #[derive(Default)]
/// struct EmailOwner { taken: bool }
/// # impl Aggregate for EmailOwner {
/// #     const TYPE: &'static str = "email";
/// #     type Id = String; type Event = Claimed; type Error = Never;
/// #     fn apply(&mut self, _: &Claimed) { self.taken = true }
/// # }
///
/// #[derive(Debug, thiserror::Error)]
/// enum SignUpError {
///     #[error("this user exists")]
///     Exists,
///     #[error("{0} is taken")]
///     EmailTaken(String),
/// }
///
/// struct SignUp { user: u32, email: String }
/// impl Command for SignUp {}
///
/// impl eventsrc::Decide for SignUp {
///     type Aggregates = (User, EmailOwner);
///     type Error = SignUpError;
///
///     fn ids(&self) -> (u32, String) {
///         (self.user, self.email.clone())
///     }
///
///     fn decide(&self, (user, owner): &(User, EmailOwner)) -> Result<(Vec<Registered>, Vec<Claimed>), SignUpError> {
///         if user.email.is_some() {
///             return Err(SignUpError::Exists);
///         }
///         if owner.taken {
///             return Err(SignUpError::EmailTaken(self.email.clone()));
///         }
///         let user_id = self.user.to_string();
///         Ok((vec![Registered(self.email.clone())], vec![Claimed(user_id)]))
///     }
/// }
///
/// use eventsrc::{ExecuteError, MemoryStore, Metadata, Repository};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let repository = Repository::new(MemoryStore::new());
/// let ada = SignUp { user: 1, email: "ada@example.com".into() };
/// let committed = repository.decide(ada, Metadata::new()).await?;
/// assert_eq!(committed.streams.len(), 2);
///
/// let copycat = SignUp { user: 2, email: "ada@example.com".into() };
/// let refused = repository.decide(copycat, Metadata::new()).await;
/// assert!(matches!(refused, Err(ExecuteError::Rejected(SignUpError::EmailTaken(_)))));
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Decide: Command {
    /// The aggregates the command reads, as a tuple: `(User, EmailOwner)`.
    type Aggregates: Aggregates;
    /// The domain error the decision returns.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Which instance of each aggregate, as a tuple of their ids in the same order.
    fn ids(&self) -> <Self::Aggregates as Aggregates>::Ids;

    /// Decides against the aggregates' current states: a list of events per aggregate, in the
    /// tuple's order (empty lists everywhere: a no-op), or the domain error. No I/O: called
    /// again with newer states when another writer got in first.
    fn decide(&self, states: &Self::Aggregates) -> Decided<Self>;
}

/// What a [`Decide`] command's decision returns: events per aggregate, or its error.
pub type Decided<C> =
    Result<<<C as Decide>::Aggregates as Aggregates>::Events, <C as Decide>::Error>;

/// A tuple of two to four [`Aggregate`]s that a [`Decide`] command reads; implemented for
/// `(A, B)`, `(A, B, C)` and `(A, B, C, D)`. Its methods are the repository's; call
/// [`Repository::decide`] instead.
pub trait Aggregates: Default + Send + Sync + Sized + 'static {
    /// The tuple of the aggregates' ids.
    type Ids: Send + Sync;
    /// The tuple of a decision's event lists, one `Vec` per aggregate.
    type Events: Default + Send + Sync;

    /// The aggregates' streams, in the tuple's order.
    fn streams(ids: &Self::Ids) -> Result<Vec<StreamId>, InvalidStreamId>;

    /// How many events each list holds, in the tuple's order.
    fn counts(events: &Self::Events) -> Vec<usize>;

    /// Applies each list of `events` to its aggregate, in the tuple's order: what a test
    /// fixture does with given events and with a decision's output.
    fn apply_all(&mut self, events: &Self::Events);

    #[doc(hidden)]
    fn load<S: EventStore, N: SnapshotStore>(
        repository: &Repository<S, N>,
        streams: &[StreamId],
    ) -> impl Future<Output = Result<(Self, Vec<StreamVersion>), LoadError>> + Send;

    #[doc(hidden)]
    fn forget_cached<S: EventStore, N: SnapshotStore>(
        repository: &Repository<S, N>,
        streams: &[StreamId],
    );

    #[doc(hidden)]
    fn catch_up<S: EventStore, N: SnapshotStore>(
        &mut self,
        repository: &Repository<S, N>,
        streams: &[StreamId],
        versions: &mut [StreamVersion],
        ours: &Self::Events,
    ) -> impl Future<Output = Result<bool, LoadError>> + Send;

    #[doc(hidden)]
    fn encode(
        events: &Self::Events,
        metadata: &Metadata,
        ids: &CommandIds,
    ) -> Result<Vec<Vec<NewEvent>>, EncodeError>;

    #[doc(hidden)]
    fn decode(
        records: &[RecordedEvent],
        streams: &[StreamId],
    ) -> Result<Self::Events, crate::RecordDecodeError>;
}

macro_rules! tuple_aggregates {
    ($($a:ident $i:tt),+) => {
        impl<$($a: Aggregate),+> Aggregates for ($($a,)+) {
            type Ids = ($($a::Id,)+);
            type Events = ($(Vec<$a::Event>,)+);

            fn streams(ids: &Self::Ids) -> Result<Vec<StreamId>, InvalidStreamId> {
                Ok(vec![$($a::stream_id(&ids.$i)?),+])
            }

            fn counts(events: &Self::Events) -> Vec<usize> {
                vec![$(events.$i.len()),+]
            }

            fn apply_all(&mut self, events: &Self::Events) {
                $(
                    for event in &events.$i {
                        self.$i.apply(event);
                    }
                )+
            }

            async fn load<S: EventStore, N: SnapshotStore>(
                repository: &Repository<S, N>,
                streams: &[StreamId],
            ) -> Result<(Self, Vec<StreamVersion>), LoadError> {
                let mut versions = Vec::with_capacity(streams.len());
                let states = ($(
                    {
                        let loaded = repository.load_stream::<$a>(&streams[$i], None).await?;
                        versions.push(loaded.version);
                        loaded.state
                    },
                )+);
                Ok((states, versions))
            }

            fn forget_cached<S: EventStore, N: SnapshotStore>(
                repository: &Repository<S, N>,
                streams: &[StreamId],
            ) {
                $(repository.forget_cached::<$a>(&streams[$i]);)+
            }

            async fn catch_up<S: EventStore, N: SnapshotStore>(
                &mut self,
                repository: &Repository<S, N>,
                streams: &[StreamId],
                versions: &mut [StreamVersion],
                ours: &Self::Events,
            ) -> Result<bool, LoadError> {
                let mut incompatible = false;
                $(
                    let mut loaded = Loaded {
                        state: std::mem::take(&mut self.$i),
                        version: versions[$i],
                    };
                    let caught = repository.catch_up(&streams[$i], &mut loaded, &ours.$i).await;
                    self.$i = loaded.state;
                    versions[$i] = loaded.version;
                    incompatible |= caught?;
                )+
                Ok(incompatible)
            }

            fn encode(
                events: &Self::Events,
                metadata: &Metadata,
                ids: &CommandIds,
            ) -> Result<Vec<Vec<NewEvent>>, EncodeError> {
                let mut first = 0;
                let mut parts = Vec::new();
                $(
                    parts.push(encode_batch(&events.$i, metadata, ids, first)?);
                    first += events.$i.len();
                )+
                let _ = first;
                Ok(parts)
            }

            fn decode(
                records: &[RecordedEvent],
                streams: &[StreamId],
            ) -> Result<Self::Events, crate::RecordDecodeError> {
                let mut events = Self::Events::default();
                for record in records {
                    match streams.iter().position(|s| *s == record.stream) {
                        $(Some($i) => events.$i.push(record.decode()?),)+
                        // `first_run` admits only records of these streams.
                        _ => {}
                    }
                }
                Ok(events)
            }
        }
    };
}

tuple_aggregates!(A 0, B 1);
tuple_aggregates!(A 0, B 1, C 2);
tuple_aggregates!(A 0, B 1, C 2, D 3);

/// What [`Repository::decide`] committed across streams.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedAcross<E> {
    /// The id given to this command; every event's causation id.
    pub command_id: Uuid,
    /// The events appended, one list per aggregate in the tuple's order.
    pub events: E,
    /// Each aggregate's stream, in the tuple's order, with its version after the command and
    /// the ids of the events appended to it.
    pub streams: Vec<StreamCommit>,
    /// The global position of the last event appended; `None` for a no-op.
    pub global_position: Option<GlobalPosition>,
    /// How many times the command was decided (0 for a replay).
    pub attempts: u32,
    /// `true` when this is an idempotent command's first run, read back (see
    /// [`Committed::replayed`](crate::Committed::replayed)).
    pub replayed: bool,
}

impl<E> CommittedAcross<E> {
    /// Whether the command changed nothing.
    pub fn is_noop(&self) -> bool {
        self.streams.iter().all(|s| s.event_ids.is_empty())
    }

    /// The part of the commit on `stream`, if the command read it.
    pub fn stream(&self, stream: &StreamId) -> Option<&StreamCommit> {
        self.streams.iter().find(|s| s.stream == *stream)
    }
}

/// One stream of a [`CommittedAcross`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCommit {
    /// The stream.
    pub stream: StreamId,
    /// Its version after the command. For a stream that got no events: the version the
    /// decision read and the append checked, or `StreamVersion::NONE` in a replay (which
    /// checks nothing).
    pub stream_version: StreamVersion,
    /// The ids of the events appended to it, in order.
    pub event_ids: Vec<EventId>,
}

impl<S: EventStore, N: SnapshotStore> Repository<S, N> {
    /// Validates `command`, loads every aggregate it names, decides, and appends each
    /// aggregate's events to its stream in one transaction
    /// ([`EventStore::append_streams`]), every stream's version checked, those that get no
    /// events included. `options` is [`Metadata`] or [`CommandOptions`].
    ///
    /// A conflict on any stream catches every aggregate up and decides again, at most
    /// `max_retries` times, stopping at once when an aggregate declares the new events
    /// [incompatible](Aggregate::conflicts) with its decided ones. With
    /// [`CommandOptions::expect_version`], the first aggregate must be at that version, and
    /// the command is never decided twice: a conflict on any stream is
    /// [`ExecuteError::Stale`] naming that stream. With [`CommandOptions::idempotency_key`], a
    /// retry returns the first run's result.
    ///
    /// See [`Decide`] for an example.
    pub async fn decide<C: Decide>(
        &self,
        command: C,
        options: impl Into<CommandOptions>,
    ) -> Result<CommittedAcross<<C::Aggregates as Aggregates>::Events>, ExecuteError<C::Error>>
    {
        let (name, started) = (command.name(), std::time::Instant::now());
        let result = async {
            let options = options.into();
            command.validate().map_err(ExecuteError::Invalid)?;
            let streams = C::Aggregates::streams(&command.ids()).map_err(LoadError::from)?;
            let refs: Vec<&StreamId> = streams.iter().collect();
            let tenant = self.store().tenant();
            let ids = CommandIds::new(&options, tenant, command.name(), &refs);
            let span = command_span(&streams[0], command.name(), tenant, &ids, &options);
            let result = self
                .decide_in(&command, streams, &ids, &options)
                .instrument(span.clone())
                .await;
            let done = result.as_ref().map(|committed| meter::CommandDone {
                replayed: committed.replayed,
                events: usize::from(!committed.is_noop()),
                attempts: committed.attempts,
            });
            let version = result
                .as_ref()
                .ok()
                .and_then(|c| c.streams.first().map(|s| s.stream_version));
            let position = result.as_ref().ok().and_then(|c| c.global_position);
            record_answer(&span, done, version, position);
            result
        }
        .await;
        let done = result.as_ref().map(|committed| meter::CommandDone {
            replayed: committed.replayed,
            events: usize::from(!committed.is_noop()),
            attempts: committed.attempts,
        });
        meter::command(name, started, done);
        result
    }

    async fn decide_in<C: Decide>(
        &self,
        command: &C,
        streams: Vec<StreamId>,
        ids: &CommandIds,
        options: &CommandOptions,
    ) -> Result<CommittedAcross<<C::Aggregates as Aggregates>::Events>, ExecuteError<C::Error>>
    {
        if let Some(replay) = self.replay_across::<C>(&streams, ids).await? {
            return Ok(replay);
        }
        let (mut states, mut versions) = C::Aggregates::load(self, &streams).await?;
        if let Some(expected) = options.expected
            && versions[0] != expected
        {
            return Err(ExecuteError::Stale {
                stream: streams[0].clone(),
                expected,
                actual: versions[0],
            });
        }
        let metadata = ids.metadata(&options.metadata);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let decided = at_time(self.clock_now(), || command.decide(&states));
            let events = decided.map_err(ExecuteError::Rejected)?;
            let counts = C::Aggregates::counts(&events);
            let mut committed = CommittedAcross {
                command_id: ids.command_id,
                events,
                streams: streams
                    .iter()
                    .zip(&versions)
                    .map(|(stream, version)| StreamCommit {
                        stream: stream.clone(),
                        stream_version: *version,
                        event_ids: Vec::new(),
                    })
                    .collect(),
                global_position: None,
                attempts,
                replayed: false,
            };
            if counts.iter().all(|n| *n == 0) {
                return Ok(committed);
            }
            let parts = C::Aggregates::encode(&committed.events, &metadata, ids)?;
            for (commit, part) in committed.streams.iter_mut().zip(&parts) {
                commit.event_ids = part.iter().map(|e| e.event_id).collect();
            }
            let appends = streams
                .iter()
                .zip(&versions)
                .zip(parts)
                .map(|((stream, version), events)| {
                    StreamAppend::new(stream.clone(), ExpectedVersion::at(*version), events)
                })
                .collect();
            let span = tracing::debug_span!(
                "eventsrc.append",
                stream = %streams[0],
                streams = streams.len(),
                tenant = %self.store().tenant(),
            );
            let appended = self.store().append_streams(appends).instrument(span).await;
            // Whatever the outcome, a cached state of these streams may now be behind.
            C::Aggregates::forget_cached(self, &streams);
            match appended {
                Ok(results) if results.iter().any(|r| r.already_stored) => {
                    if let Some(replay) = self.replay_across::<C>(&streams, ids).await? {
                        return Ok(replay);
                    }
                    return Err(ExecuteError::Store(StoreError::backend(Lost(
                        "the store took the append for a retry, but its events cannot be read back",
                    ))));
                }
                Ok(results) => {
                    for (commit, result) in committed.streams.iter_mut().zip(&results) {
                        commit.stream_version = result.stream_version;
                    }
                    committed.global_position = results
                        .iter()
                        .zip(&counts)
                        .filter(|(_, n)| **n > 0)
                        .map(|(r, _)| r.position)
                        .max();
                    return Ok(committed);
                }
                Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
                    if let Some(replay) = self.replay_across::<C>(&streams, ids).await? {
                        return Ok(replay);
                    }
                    if let Some(expected) = options.expected {
                        let at = streams.iter().position(|s| *s == stream).unwrap_or(0);
                        return Err(ExecuteError::Stale {
                            expected: if at == 0 { expected } else { versions[at] },
                            stream,
                            actual,
                        });
                    }
                    let decided_at = versions.clone();
                    let incompatible = states
                        .catch_up(self, &streams, &mut versions, &committed.events)
                        .await?;
                    if incompatible || attempts > self.max_retries() {
                        let at = streams.iter().position(|s| *s == stream).unwrap_or(0);
                        return Err(ExecuteError::Conflict {
                            actual: actual.max(versions[at]),
                            expected: decided_at[at],
                            stream,
                            attempts,
                            incompatible,
                        });
                    }
                    tracing::debug!(%stream, %actual, attempts, "append across streams conflicted; deciding again");
                }
                Err(error @ StoreError::DuplicateEventId { .. }) => {
                    return match self.replay_across::<C>(&streams, ids).await? {
                        Some(replay) => Ok(replay),
                        None => Err(ExecuteError::Store(error)),
                    };
                }
                Err(other) => return Err(ExecuteError::Store(other)),
            }
        }
    }

    /// The first run of a keyed decision, read back, if it committed.
    async fn replay_across<C: Decide>(
        &self,
        streams: &[StreamId],
        ids: &CommandIds,
    ) -> Result<
        Option<CommittedAcross<<C::Aggregates as Aggregates>::Events>>,
        ExecuteError<C::Error>,
    > {
        let Some(records) = self.first_run(ids, streams).await? else {
            return Ok(None);
        };
        let events = C::Aggregates::decode(&records, streams).map_err(LoadError::from)?;
        let commits = streams
            .iter()
            .map(|stream| {
                let mine: Vec<&RecordedEvent> =
                    records.iter().filter(|r| r.stream == *stream).collect();
                StreamCommit {
                    stream: stream.clone(),
                    stream_version: mine
                        .last()
                        .map_or(StreamVersion::NONE, |r| r.stream_version),
                    event_ids: mine.iter().map(|r| r.event_id).collect(),
                }
            })
            .collect();
        Ok(Some(CommittedAcross {
            command_id: ids.command_id,
            events,
            streams: commits,
            global_position: records.last().map(|r| r.global_position),
            attempts: 0,
            replayed: true,
        }))
    }
}

/// A store that answered an append as a retry but holds none of its events.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Lost(&'static str);
