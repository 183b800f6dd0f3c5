use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use crate::{Projection, Reactor};

use crate::runner::UnknownEvents;

use crate::Subscription;
use crate::backend::decode_for;
use crate::backend::{Leases, ParkedEvent, ParkedStore};
use crate::subscription::{Batch, Lag, Start};
use crate::{
    CheckpointStore, EventId, EventStore, GlobalPosition, RecordDecodeError, RecordedEvent,
    StoreError, StreamId, StreamVersion, Timestamp,
};

/// What a [`Runner`] drives: something that handles batches of the log and keeps a
/// checkpoint. Backends implement it for read models kept in their own database, so that the
/// model and the checkpoint commit together.
pub trait Consumer: Send {
    /// The name its checkpoint is kept under; also its lease's name.
    fn name(&self) -> &str;

    /// The stored event types it reads, or `None` for all of them. The runner asks the store
    /// for only these.
    fn event_types(&self) -> Option<Vec<&'static str>>;

    /// Where it got to, or `None` if it never handled anything.
    fn checkpoint(
        &mut self,
    ) -> impl Future<Output = Result<Option<GlobalPosition>, RunError>> + Send;

    /// Handles `events` (possibly none, when a filter left them out) and records `through` as
    /// the checkpoint. `from` is the checkpoint the batch follows: a consumer whose stored
    /// checkpoint is elsewhere must refuse the batch with [`RunError::Fenced`], because another
    /// runner got there first.
    fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> impl Future<Output = Result<(), RunError>> + Send;
}

/// What running a projection or reactor can fail with. Every variant names the consumer, and
/// the event where there is one.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store failed.
    #[error("`{consumer}`: {source}")]
    Store {
        /// The projection or reactor.
        consumer: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// An event could not be decoded (unknown to a consumer that fails on unknown events,
    /// malformed, from the future).
    #[error("`{consumer}`: {source}")]
    Decode {
        /// The projection or reactor.
        consumer: String,
        /// What could not be read, naming the event and its stream.
        #[source]
        source: Box<RecordDecodeError>,
    },
    /// The consumer's own code failed on an event.
    #[error(
        "`{consumer}` failed on event {event_id} (`{event_type}`, `{stream}` version {stream_version}, position {position}): {source}"
    )]
    Handle {
        /// The projection or reactor.
        consumer: String,
        /// The event.
        event_id: EventId,
        /// Its type.
        event_type: String,
        /// Its stream.
        stream: StreamId,
        /// Its version in the stream.
        stream_version: StreamVersion,
        /// Its global position.
        position: GlobalPosition,
        /// What the consumer said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stored checkpoint is not where this runner left it: another runner handled these
    /// events. Nothing was applied.
    #[error(
        "`{consumer}` expected its checkpoint at {} but it is at {}: another runner has moved it",
        show(*.expected), show(*.actual)
    )]
    Fenced {
        /// The projection or reactor.
        consumer: String,
        /// Where this runner left it.
        expected: Option<GlobalPosition>,
        /// Where it is.
        actual: Option<GlobalPosition>,
    },
    /// The read model was switched to a rebuilt one (its tables swapped, its checkpoint moved)
    /// after this runner started: its code is the old model's, so it stops rather than write
    /// into the new tables. Start a runner of the rebuilt projection.
    #[error(
        "`{consumer}` was switched to a rebuilt read model (generation {found}) after this runner started on generation {started}: start a runner of the rebuilt projection"
    )]
    Switched {
        /// The read model.
        consumer: String,
        /// The generation this runner started on.
        started: i64,
        /// The generation stored now.
        found: i64,
    },
    /// A read-your-writes wait ran out of time.
    #[error("`{consumer}` did not reach position {position} within {timeout:?} (it is at {})", show(*.reached))]
    Timeout {
        /// The projection or reactor.
        consumer: String,
        /// The position waited for.
        position: GlobalPosition,
        /// Where it got to.
        reached: Option<GlobalPosition>,
        /// How long the wait was.
        timeout: Duration,
    },
}

fn show(position: Option<GlobalPosition>) -> String {
    position.map_or_else(|| "the start".to_owned(), |p| p.to_string())
}

impl RunError {
    /// A store error of `consumer`.
    pub fn store(consumer: &str, source: StoreError) -> Self {
        Self::Store {
            consumer: consumer.to_owned(),
            source,
        }
    }

    /// An event `consumer` could not decode.
    pub fn decode(consumer: &str, source: RecordDecodeError) -> Self {
        Self::Decode {
            consumer: consumer.to_owned(),
            source: Box::new(source),
        }
    }

    /// `consumer` was switched to a rebuilt read model: it started on generation `started`,
    /// and `found` is stored now.
    pub fn switched(consumer: &str, started: i64, found: i64) -> Self {
        Self::Switched {
            consumer: consumer.to_owned(),
            started,
            found,
        }
    }

    /// `consumer`'s own failure on `event`.
    pub fn handle(
        consumer: &str,
        event: &RecordedEvent,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Handle {
            consumer: consumer.to_owned(),
            event_id: event.event_id,
            event_type: event.event_type.to_string(),
            stream: event.stream.clone(),
            stream_version: event.stream_version,
            position: event.global_position,
            source: source.into(),
        }
    }

    /// The checkpoint of `consumer` moved under it.
    pub fn fenced(
        consumer: &str,
        expected: Option<GlobalPosition>,
        actual: Option<GlobalPosition>,
    ) -> Self {
        Self::Fenced {
            consumer: consumer.to_owned(),
            expected,
            actual,
        }
    }
}

/// The event types a consumer of `E` asks the store for: none to filter by when it must see
/// unknown events to fail on them, or when `E` cannot say.
pub fn stored_types<E: crate::Event>(unknown: UnknownEvents) -> Option<Vec<&'static str>> {
    match unknown {
        UnknownEvents::Skip => E::stored_types(),
        UnknownEvents::Fail => None,
    }
}

/// Decodes `record` for `consumer`, whose events are `E`: `Ok(None)` when `E` does not know its
/// type and `unknown` says skip; an error naming the consumer and the event otherwise.
pub fn decode<E: crate::Event>(
    consumer: &str,
    record: &RecordedEvent,
    unknown: UnknownEvents,
) -> Result<Option<E>, RunError> {
    decode_for::<E>(record, unknown).map_err(|source| RunError::decode(consumer, source))
}

/// Folds `events` into `projection`, decoding each for it and skipping the types it does not
/// know (if it says so). Errors name the projection and the event.
pub fn fold<P: Projection>(projection: &mut P, events: &[RecordedEvent]) -> Result<(), RunError> {
    for record in events {
        if let Some(event) = decode::<P::Event>(P::NAME, record, P::UNKNOWN_EVENTS)? {
            projection
                .apply(event, record)
                .map_err(|error| RunError::handle(P::NAME, record, error))?;
        }
    }
    Ok(())
}

/// A failed batch of a SQL read model (`apply_batch` of the SQLite and PostgreSQL projection
/// traits): the error, and the index of the event it failed on when the projection knows it
/// (`?` on the projection's own error gives `None`, and the runner's error then names the
/// batch's first event).
#[derive(Debug)]
pub struct BatchError<E> {
    /// The event's index in the batch, if known.
    pub at: Option<usize>,
    /// What failed.
    pub error: E,
}

impl<E> BatchError<E> {
    /// `error`, on the batch's event number `index` (from 0).
    pub fn at(index: usize, error: E) -> Self {
        Self {
            at: Some(index),
            error,
        }
    }
}

impl<E> From<E> for BatchError<E> {
    fn from(error: E) -> Self {
        Self { at: None, error }
    }
}

/// A read model shared between its runner and the code that queries it.
#[derive(Debug)]
pub struct ReadModel<P>(Arc<RwLock<P>>);

impl<P> Clone for ReadModel<P> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<P> ReadModel<P> {
    /// Shares `model`.
    pub fn new(model: P) -> Self {
        Self(Arc::new(RwLock::new(model)))
    }

    /// Reads the model; the runner waits while the guard lives, so keep it short.
    pub fn read(&self) -> RwLockReadGuard<'_, P> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, P> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A [`Projection`] kept in memory with its checkpoint beside it: rebuilt from the log on
/// every start, exactly once within the process.
#[derive(Debug)]
pub struct InMemory<P> {
    model: ReadModel<P>,
    checkpoint: Option<GlobalPosition>,
}

impl<P: Projection> InMemory<P> {
    /// The projection, starting from the beginning of the log.
    pub fn new(projection: P) -> Self {
        Self {
            model: ReadModel::new(projection),
            checkpoint: None,
        }
    }

    /// A handle to query the model while the runner updates it.
    pub fn model(&self) -> ReadModel<P> {
        self.model.clone()
    }
}

impl<P: Projection + Sync> Consumer for InMemory<P> {
    fn name(&self) -> &str {
        P::NAME
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        stored_types::<P::Event>(P::UNKNOWN_EVENTS)
    }

    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        Ok(self.checkpoint)
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        if from != self.checkpoint {
            return Err(RunError::fenced(P::NAME, from, self.checkpoint));
        }
        fold(&mut *self.model.write(), events)?;
        self.checkpoint = Some(through);
        Ok(())
    }
}

/// A [`Projection`] that stores its read model itself (a search index, another database),
/// with its checkpoint in a [`CheckpointStore`], saved after each batch: at least once, so
/// `apply` must be idempotent.
#[derive(Debug)]
pub struct Checkpointed<P, C> {
    model: ReadModel<P>,
    checkpoints: C,
}

impl<P: Projection, C: CheckpointStore> Checkpointed<P, C> {
    /// The projection, with its checkpoint kept in `checkpoints` under [`Projection::NAME`].
    pub fn new(projection: P, checkpoints: C) -> Self {
        Self {
            model: ReadModel::new(projection),
            checkpoints,
        }
    }

    /// A handle to the projection.
    pub fn model(&self) -> ReadModel<P> {
        self.model.clone()
    }
}

impl<P: Projection + Sync, C: CheckpointStore> Consumer for Checkpointed<P, C> {
    fn name(&self) -> &str {
        P::NAME
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        stored_types::<P::Event>(P::UNKNOWN_EVENTS)
    }

    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        self.checkpoints
            .load_checkpoint(P::NAME)
            .await
            .map_err(|e| RunError::store(P::NAME, e))
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        let stored = self.checkpoint().await?;
        if stored != from {
            return Err(RunError::fenced(P::NAME, from, stored));
        }
        fold(&mut *self.model.write(), events)?;
        self.checkpoints
            .save_checkpoint(P::NAME, through)
            .await
            .map_err(|e| RunError::store(P::NAME, e))
    }
}

/// How far a runner has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// The checkpoint: every event up to here is handled.
    pub position: Option<GlobalPosition>,
    /// Events handled since the runner started.
    pub handled: u64,
    /// Whether the last read found the runner caught up with the log.
    pub caught_up: bool,
}

/// Watches a runner's [`Progress`], for read-your-writes waits and progress displays.
#[derive(Debug, Clone)]
pub struct ProgressWatch {
    name: String,
    progress: watch::Receiver<Progress>,
}

impl ProgressWatch {
    /// The latest progress.
    pub fn get(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Waits until the runner has handled everything up to `position` (the position
    /// [`Committed`](crate::Committed) or an append returned), at most `timeout`. `None` (a
    /// command that changed nothing) has nothing to wait for.
    pub async fn wait_for(
        &self,
        position: impl Into<Option<GlobalPosition>>,
        timeout: Duration,
    ) -> Result<(), RunError> {
        let Some(position) = position.into() else {
            return Ok(());
        };
        let mut progress = self.progress.clone();
        let reached = |p: &Progress| p.position.is_some_and(|at| at >= position);
        let waited = tokio::time::timeout(timeout, progress.wait_for(reached)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            // Timed out, or the runner is gone.
            _ => Err(RunError::Timeout {
                consumer: self.name.clone(),
                position,
                reached: self.get().position,
                timeout,
            }),
        }
    }

    /// Waits for the next change of progress (for progress displays); `false` once the runner
    /// is gone.
    pub async fn changed(&mut self) -> bool {
        self.progress.changed().await.is_ok()
    }
}

/// Waits until the checkpoint `name` in `checkpoints` reaches `position`: read-your-writes
/// across nodes, where the runner is elsewhere. Looks every `poll` until `timeout`.
pub async fn wait_for_checkpoint<C: CheckpointStore>(
    checkpoints: &C,
    name: &str,
    position: GlobalPosition,
    timeout: Duration,
    poll: Duration,
) -> Result<(), RunError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let reached = checkpoints
            .load_checkpoint(name)
            .await
            .map_err(|e| RunError::store(name, e))?;
        if reached.is_some_and(|at| at >= position) {
            return Ok(());
        }
        if tokio::time::Instant::now() + poll > deadline {
            return Err(RunError::Timeout {
                consumer: name.to_owned(),
                position,
                reached,
                timeout,
            });
        }
        tokio::time::sleep(poll).await;
    }
}

/// Drives a [`Consumer`] from its checkpoint through the log, then live.
pub struct Runner<S, C> {
    subscription: Subscription<S>,
    consumer: C,
    checkpoint: Option<GlobalPosition>,
    loaded: bool,
    /// The batch read while the consumer handled the one before.
    prefetched: Option<Batch>,
    progress: watch::Sender<Progress>,
}

impl<S, C: std::fmt::Debug> std::fmt::Debug for Runner<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("consumer", &self.consumer)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

impl<S: EventStore, C: Consumer> Runner<S, C> {
    /// A runner reading `store`'s log (its tenant's) into `consumer`, from the beginning when
    /// the consumer has no checkpoint.
    pub fn new(store: S, consumer: C) -> Self {
        let mut subscription = Subscription::new(store, Start::Beginning);
        if let Some(types) = consumer.event_types() {
            subscription = subscription.event_types(types);
        }
        Self {
            subscription,
            consumer,
            checkpoint: None,
            loaded: false,
            prefetched: None,
            progress: watch::Sender::new(Progress::default()),
        }
    }

    /// Where to start when the consumer has no checkpoint (default: the beginning).
    pub fn start(mut self, start: Start) -> Self {
        self.subscription.set_start(start);
        self
    }

    /// At most `size` events per batch, and so per transaction of a SQL read model
    /// (default 500).
    pub fn batch_size(mut self, size: usize) -> Self {
        self.subscription.set_batch_size(size);
        self
    }

    /// How often to look at the log when the store sends no append signal (default 500 ms);
    /// also how often a follower tries to take the lease.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.subscription.set_poll_interval(interval);
        self
    }

    /// The consumer.
    pub fn consumer(&self) -> &C {
        &self.consumer
    }

    /// The consumer, when the runner is done with it.
    pub fn into_consumer(self) -> C {
        self.consumer
    }

    /// A watch on the runner's progress: read-your-writes waits, progress displays.
    pub fn progress(&self) -> ProgressWatch {
        ProgressWatch {
            name: self.consumer.name().to_owned(),
            progress: self.progress.subscribe(),
        }
    }

    /// How far behind the log the consumer is.
    pub async fn lag(&mut self) -> Result<Lag, RunError> {
        self.load().await?;
        let name = self.consumer.name();
        self.subscription
            .lag()
            .await
            .map_err(|e| RunError::store(name, e))
    }

    /// Reads the checkpoint, once, and puts the subscription there.
    async fn load(&mut self) -> Result<(), RunError> {
        if !self.loaded {
            self.checkpoint = self.consumer.checkpoint().await?;
            self.prefetched = None;
            // Without a checkpoint the subscription stays where it starts (or where it
            // resolved "the end" to).
            if let Some(position) = self.checkpoint {
                self.subscription.seek(position);
            }
            self.loaded = true;
            self.progress.send_modify(|p| p.position = self.checkpoint);
        }
        Ok(())
    }

    /// The next batch: the one read ahead, or a fresh read, waiting for new events if `wait`.
    async fn next(&mut self, wait: bool) -> Result<Batch, RunError> {
        if let Some(batch) = self.prefetched.take() {
            return Ok(batch);
        }
        let read = if wait {
            self.subscription.next_batch().await
        } else {
            self.subscription.poll_batch().await
        };
        read.map_err(|e| RunError::store(self.consumer.name(), e))
    }

    /// Hands one batch to the consumer and moves the checkpoint. When the batch was full
    /// (more is waiting), the next one is read while the consumer works, so a catch-up or a
    /// rebuild overlaps reading the log with writing the read model.
    async fn handle(&mut self, batch: Batch) -> Result<(), RunError> {
        if batch.events.is_empty() && Some(batch.through) == self.checkpoint {
            self.progress.send_if_modified(|p| {
                let changed = p.caught_up != batch.caught_up;
                p.caught_up = batch.caught_up;
                changed
            });
            return Ok(());
        }
        let span = tracing::debug_span!(
            "eventsrc.batch",
            consumer = self.consumer.name(),
            events = batch.events.len(),
            through = %batch.through,
        );
        let Self {
            consumer,
            subscription,
            checkpoint,
            ..
        } = self;
        let handling = consumer
            .handle(*checkpoint, &batch.events, batch.through)
            .instrument(span);
        let (handled, ahead) = if batch.caught_up {
            (handling.await, None)
        } else {
            let (handled, ahead) = tokio::join!(handling, subscription.poll_batch());
            (handled, Some(ahead))
        };
        if let Err(error) = handled {
            // Read the batch again next time, from the checkpoint the store has.
            self.subscription.seek(batch.after);
            self.loaded = false;
            return Err(error);
        }
        self.checkpoint = Some(batch.through);
        self.progress.send_modify(|p| {
            p.position = Some(batch.through);
            p.handled += batch.events.len() as u64;
            p.caught_up = batch.caught_up;
        });
        if let Some(ahead) = ahead {
            let ahead = ahead.map_err(|e| RunError::store(self.consumer.name(), e))?;
            // An empty read ahead says only "nothing new then": read again when asked.
            if !ahead.events.is_empty() {
                self.prefetched = Some(ahead);
            }
        }
        Ok(())
    }

    /// Handles the next batch if there is one, without waiting; `true` if the checkpoint moved.
    pub async fn step(&mut self) -> Result<bool, RunError> {
        self.load().await?;
        let before = self.checkpoint;
        let batch = self.next(false).await?;
        self.handle(batch).await?;
        Ok(self.checkpoint != before)
    }

    /// Handles everything in the log as it is now, batch by batch, and returns: tests,
    /// rebuilds, one-shot jobs. Each batch's progress shows on [`progress`](Self::progress).
    pub async fn catch_up(&mut self) -> Result<Progress, RunError> {
        self.catch_up_with(|_| {}).await
    }

    /// [`catch_up`](Self::catch_up), calling `on_batch` with the progress after each batch
    /// that moved the checkpoint: a rebuild's progress display.
    pub async fn catch_up_with(
        &mut self,
        mut on_batch: impl FnMut(&Progress),
    ) -> Result<Progress, RunError> {
        self.load().await?;
        let name = self.consumer.name();
        let head = self
            .subscription
            .store()
            .head_position()
            .await
            .map_err(|e| RunError::store(name, e))?;
        loop {
            let moved = self.step().await?;
            let progress = *self.progress.borrow();
            if moved {
                on_batch(&progress);
            }
            let at_head = progress.position.is_some_and(|p| p >= head);
            if at_head || (!moved && progress.caught_up) {
                return Ok(progress);
            }
        }
    }

    /// Runs until `shutdown` resolves: catches up, then follows the log live. Returns the
    /// consumer when stopped; on an error, the checkpoint stays at the last handled batch.
    ///
    /// Stopping is graceful: a batch being handled when `shutdown` resolves is finished, its
    /// checkpoint included, so an at-least-once consumer repeats nothing after a planned stop.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<C, RunError> {
        let shutdown = std::pin::pin!(shutdown);
        self.follow(shutdown).await?;
        Ok(self.consumer)
    }

    /// Runs on whichever node holds the consumer's lease: waits for the lease (trying every
    /// poll interval), runs while it holds, and goes back to waiting if it is lost. Stops
    /// when `shutdown` resolves.
    ///
    /// The store failing (a database restarting, a connection lost) does not stop it: the
    /// node logs the error, lets the lease go, and tries again after the poll interval, from
    /// the stored checkpoint. The consumer's own errors (a bug on an event, an undecodable
    /// event) stop it and are returned: a leader that failed on an event would fail again.
    pub async fn run_as_leader<L: Leases>(
        mut self,
        leases: &L,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<C, RunError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let poll = self.subscription.poll_interval_value();
        loop {
            let name = self.consumer.name().to_owned();
            let lease = match leases.try_acquire(&name).await {
                Ok(Some(lease)) => Some(lease),
                Ok(None) => None,
                Err(error) => {
                    tracing::warn!(consumer = %name, %error, "cannot ask for the lease; trying again");
                    None
                }
            };
            let Some(mut lease) = lease else {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(self.consumer),
                    () = tokio::time::sleep(poll) => continue,
                }
            };
            tracing::info!(consumer = %name, "took the lease");
            // Another node may have moved the checkpoint while this one waited.
            self.loaded = false;
            let transient = tokio::select! {
                biased;
                () = lease.lost() => {
                    tracing::warn!(consumer = %name, "lost the lease");
                    false
                }
                result = self.follow(shutdown.as_mut()) => match result {
                    Ok(()) => return Ok(self.consumer),
                    Err(RunError::Fenced { .. }) => {
                        tracing::warn!(consumer = %name, "fenced: another node moved the checkpoint");
                        false
                    }
                    Err(error @ RunError::Store { .. }) => {
                        tracing::warn!(consumer = %name, %error, "the store failed; letting the lease go");
                        true
                    }
                    Err(other) => return Err(other),
                },
            };
            drop(lease);
            if transient {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(self.consumer),
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
    }

    /// Catches up, then handles batches as they come, until `shutdown` resolves: between
    /// batches, never in the middle of one. `Ok(())` means stopped.
    async fn follow<F: Future<Output = ()>>(
        &mut self,
        mut shutdown: std::pin::Pin<&mut F>,
    ) -> Result<(), RunError> {
        loop {
            let batch = tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(()),
                batch = async {
                    self.load().await?;
                    self.next(true).await
                } => batch?,
            };
            self.handle(batch).await?;
        }
    }
}

/// Performs a reactor's effects: sends the e-mail, writes the outbox row, issues the command.
pub trait Perform<E>: Send + Sync {
    /// What performing can fail with; the runner retries, then parks the event.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Performs one effect decided for `record`.
    fn perform(
        &self,
        effect: E,
        record: &RecordedEvent,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How a reactor retries an event before parking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The pause after the first failure; each further pause doubles, up to `max_delay`.
    pub delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
}

impl Default for Retry {
    /// Five tries, pausing 100 ms, 200 ms, 400 ms, 800 ms.
    fn default() -> Self {
        Self {
            attempts: 5,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// No retries: park on the first failure.
    pub fn never() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The pause after failed try number `attempt` (1 for the first).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// What replaying parked events did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Replayed {
    /// Events whose effects succeeded this time; they are no longer parked.
    pub succeeded: Vec<EventId>,
    /// Events that failed again; they stay parked with the new error.
    pub failed: Vec<EventId>,
}

/// A [`Reactor`] as a [`Consumer`]: decides effects for each event, performs them, retries with
/// backoff, and parks an event that keeps failing (with its error) so that the reactor goes on.
/// Its checkpoint and parked list are kept in `store`: durable on a durable backend.
///
/// Effects are at least once: after a crash, the events since the last checkpoint are
/// reacted to again, and a retry performs all of an event's effects again. Make effects
/// idempotent (an outbox keyed by event id), or check with the record's event id.
#[derive(Debug)]
pub struct Reactions<R, F, St> {
    reactor: R,
    perform: F,
    store: St,
    retry: Retry,
    durable: bool,
    checkpoint: Option<GlobalPosition>,
}

impl<R, F, St> Reactions<R, F, St>
where
    R: Reactor + Sync,
    F: Perform<R::Effect>,
    St: CheckpointStore + ParkedStore,
{
    /// `reactor`'s decisions performed by `perform`, with its checkpoint and parked events in
    /// `store` under [`Reactor::NAME`].
    pub fn new(reactor: R, perform: F, store: St) -> Self {
        Self {
            reactor,
            perform,
            store,
            retry: Retry::default(),
            durable: true,
            checkpoint: None,
        }
    }

    /// The retry policy (default: [`Retry::default`]).
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Keeps the checkpoint in memory only (a synchronous, in-process dispatcher): after a
    /// restart, the runner starts where [`Runner::start`] says, usually [`Start::End`].
    /// Parked events are still stored.
    pub fn in_process(mut self) -> Self {
        self.durable = false;
        self
    }

    /// The reactor.
    pub fn reactor(&self) -> &R {
        &self.reactor
    }

    /// The effect performer.
    pub fn performer(&self) -> &F {
        &self.perform
    }

    /// The events this reactor parked, oldest first.
    pub async fn parked(&self) -> Result<Vec<ParkedEvent>, RunError> {
        self.store
            .parked(R::NAME)
            .await
            .map_err(|e| RunError::store(R::NAME, e))
    }

    /// Tries every parked event again, once each (after a fix, say): those that succeed are
    /// unparked, those that fail stay parked with their new error.
    pub async fn replay_parked(&mut self) -> Result<Replayed, RunError> {
        let mut replayed = Replayed::default();
        for mut parked in self.parked().await? {
            let event_id = parked.event.event_id;
            match self.react_once(&parked.event).await {
                Ok(()) => {
                    self.store
                        .unpark(R::NAME, event_id)
                        .await
                        .map_err(|e| RunError::store(R::NAME, e))?;
                    replayed.succeeded.push(event_id);
                }
                Err(error) => {
                    parked.error = error.to_string();
                    parked.attempts += 1;
                    parked.parked_at = Timestamp::now();
                    self.park(parked).await?;
                    replayed.failed.push(event_id);
                }
            }
        }
        Ok(replayed)
    }

    async fn park(&self, parked: ParkedEvent) -> Result<(), RunError> {
        self.store
            .park(parked)
            .await
            .map_err(|e| RunError::store(R::NAME, e))
    }

    /// Decides and performs the effects of one event, once.
    async fn react_once(&mut self, record: &RecordedEvent) -> Result<(), RunError> {
        let Some(event) = decode::<R::Event>(R::NAME, record, R::UNKNOWN_EVENTS)? else {
            return Ok(());
        };
        let effects = self
            .reactor
            .react(event, record)
            .map_err(|error| RunError::handle(R::NAME, record, error))?;
        for effect in effects {
            self.perform
                .perform(effect, record)
                .await
                .map_err(|error| RunError::handle(R::NAME, record, error))?;
        }
        Ok(())
    }

    /// Reacts to one event with retries; parks it when they run out. Only the store failing
    /// to park stops the reactor.
    async fn react(&mut self, record: &RecordedEvent) -> Result<(), RunError> {
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            let error = match self.react_once(record).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            // A payload that cannot be decoded will not decode on the next try either.
            let hopeless = matches!(error, RunError::Decode { .. });
            if attempt >= attempts || hopeless {
                tracing::error!(reactor = R::NAME, event_id = %record.event_id, %error, attempts = attempt, "parking event");
                return self
                    .park(ParkedEvent {
                        reactor: R::NAME.to_owned(),
                        event: record.clone(),
                        error: error.to_string(),
                        attempts: attempt,
                        parked_at: Timestamp::now(),
                    })
                    .await;
            }
            tracing::warn!(reactor = R::NAME, event_id = %record.event_id, %error, attempt, "retrying event");
            tokio::time::sleep(self.retry.delay_after(attempt)).await;
            attempt += 1;
        }
    }
}

impl<R, F, St> Consumer for Reactions<R, F, St>
where
    R: Reactor + Sync,
    F: Perform<R::Effect>,
    St: CheckpointStore + ParkedStore,
{
    fn name(&self) -> &str {
        R::NAME
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        // A reactor that fails on unknown events parks them rather than stopping, so it reads
        // every event only in that case.
        stored_types::<R::Event>(R::UNKNOWN_EVENTS)
    }

    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        if !self.durable {
            return Ok(self.checkpoint);
        }
        self.store
            .load_checkpoint(R::NAME)
            .await
            .map_err(|e| RunError::store(R::NAME, e))
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        let stored = self.checkpoint().await?;
        if stored != from {
            return Err(RunError::fenced(R::NAME, from, stored));
        }
        for record in events {
            self.react(record).await?;
        }
        self.checkpoint = Some(through);
        if self.durable {
            self.store
                .save_checkpoint(R::NAME, through)
                .await
                .map_err(|e| RunError::store(R::NAME, e))?;
        }
        Ok(())
    }
}
