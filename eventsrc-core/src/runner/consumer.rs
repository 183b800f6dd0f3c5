//! What a runner drives: the [`Consumer`] trait, and the decoding and folding every consumer
//! shares.

use std::future::Future;

use crate::backend::decode_for;
use crate::runner::UnknownEvents;
use crate::{CheckpointStore, GlobalPosition, Projection, RecordedEvent, RunError};

/// What a [`Runner`](crate::Runner) drives: something that handles batches of the log and keeps a
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

/// `consumer`'s checkpoint as `store` keeps it; a store error names the consumer.
pub(crate) async fn load_checkpoint(
    store: &impl CheckpointStore,
    consumer: &str,
) -> Result<Option<GlobalPosition>, RunError> {
    store
        .load_checkpoint(consumer)
        .await
        .map_err(|e| RunError::store(consumer, e))
}

/// Records `through` as `consumer`'s checkpoint in `store`; a store error names the consumer.
pub(crate) async fn save_checkpoint(
    store: &impl CheckpointStore,
    consumer: &str,
    through: GlobalPosition,
) -> Result<(), RunError> {
    store
        .save_checkpoint(consumer, through)
        .await
        .map_err(|e| RunError::store(consumer, e))
}

/// Refuses a batch of `consumer` that follows the checkpoint `from` when the checkpoint is at
/// `stored`: another runner moved it ([`RunError::Fenced`]).
pub(crate) fn check_fence(
    consumer: &str,
    from: Option<GlobalPosition>,
    stored: Option<GlobalPosition>,
) -> Result<(), RunError> {
    if stored == from {
        Ok(())
    } else {
        Err(RunError::fenced(consumer, from, stored))
    }
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
