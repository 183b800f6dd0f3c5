//! A reactor as a consumer: [`Reactions`] performs its effects through [`Perform`], retrying as
//! [`Retry`] says and parking what keeps failing.

use std::future::Future;
use std::time::Duration;

use crate::backend::{ParkedEvent, ParkedStore, decode, stored_types};
use crate::runner::Consumer;
use crate::runner::consumer::{check_fence, load_checkpoint, save_checkpoint};
use tracing::Instrument;

use crate::telemetry::record as meter;
use crate::{
    CheckpointStore, EventId, GlobalPosition, Reactor, RecordedEvent, RunError, Timestamp,
};

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
#[must_use = "a retry policy does nothing until given to `Reactions::retry`"]
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

/// Records how replaying `parked` went for the reactor or relay `name`: unparked and counted
/// as succeeded, or parked again with the new error and one more attempt.
pub(crate) async fn settle_replay<St: ParkedStore>(
    store: &St,
    name: &str,
    mut parked: ParkedEvent,
    outcome: Result<(), String>,
    replayed: &mut Replayed,
) -> Result<(), RunError> {
    let event_id = parked.event.event_id;
    match outcome {
        Ok(()) => {
            store
                .unpark(name, event_id)
                .await
                .map_err(|e| RunError::store(name, e))?;
            meter::unparked(name);
            replayed.succeeded.push(event_id);
        }
        Err(error) => {
            parked.error = error;
            parked.attempts += 1;
            parked.parked_at = Timestamp::now();
            store
                .park(parked)
                .await
                .map_err(|e| RunError::store(name, e))?;
            replayed.failed.push(event_id);
        }
    }
    Ok(())
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
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Keeps the checkpoint in memory only (an in-process dispatcher): after a
    /// restart, the runner starts where [`Runner::start`](crate::Runner::start) says, usually
    /// [`Start::End`](crate::subscription::Start::End).
    /// Parked events are still stored.
    #[must_use]
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
        for parked in self.parked().await? {
            let outcome = self
                .react_once(&parked.event)
                .await
                .map_err(|e| e.to_string());
            settle_replay(&self.store, R::NAME, parked, outcome, &mut replayed).await?;
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
        let span = event_span(R::NAME, record);
        self.react_retrying(record).instrument(span).await
    }

    async fn react_retrying(&mut self, record: &RecordedEvent) -> Result<(), RunError> {
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
                meter::parked(R::NAME);
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
        load_checkpoint(&self.store, R::NAME).await
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        check_fence(R::NAME, from, self.checkpoint().await?)?;
        for record in events {
            self.react(record).await?;
        }
        self.checkpoint = Some(through);
        if self.durable {
            save_checkpoint(&self.store, R::NAME, through).await?;
        }
        Ok(())
    }
}

/// The span of one event a reactor handles: a command its effects execute (with metadata
/// [`caused_by`](crate::Metadata::caused_by) the event) runs inside it and carries the same
/// correlation id, so a trace follows a command's effects through reactors.
fn event_span(consumer: &str, record: &RecordedEvent) -> tracing::Span {
    let span = tracing::debug_span!(
        "eventsrc.react",
        consumer,
        stream = %record.stream,
        tenant = %record.tenant,
        event_type = &*record.event_type,
        event_id = %record.event_id,
        global_position = %record.global_position,
        correlation_id = tracing::field::Empty,
        causation_id = tracing::field::Empty,
    );
    if let Some(id) = record.metadata.correlation_id {
        span.record("correlation_id", tracing::field::display(id));
    }
    if let Some(id) = record.metadata.causation_id {
        span.record("causation_id", tracing::field::display(id));
    }
    span
}
