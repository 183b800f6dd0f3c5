//! Recording: the calls the library makes where each metric moves.

use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram};

use super::names::*;
use crate::repository::ExecuteError;
use crate::{StoreError, Timestamp};

/// Records one append by `backend` (its name: `memory`, `sqlite`, `postgres`) of `events`
/// events, started at `started`, which returned `result`: `Ok(true)` when every event was
/// already stored (an idempotent retry), `Ok(false)` when it committed. An append to several
/// streams at once counts once, with the events of all its parts. Every backend calls it as
/// its appends return, so that the metrics of [`telemetry`](crate::telemetry) are the same
/// on all of them.
pub fn append(
    backend: &'static str,
    events: usize,
    started: Instant,
    result: Result<bool, &StoreError>,
) {
    let outcome = match result {
        Ok(true) => "already_stored",
        Ok(false) => "committed",
        Err(StoreError::WrongExpectedVersion { .. }) => "conflict",
        Err(StoreError::DuplicateEventId { .. }) => "duplicate",
        Err(_) => "error",
    };
    counter!(APPENDS, "backend" => backend, "outcome" => outcome).increment(1);
    if matches!(result, Ok(false)) {
        counter!(APPENDED_EVENTS, "backend" => backend).increment(events as u64);
    }
    histogram!(APPEND_SECONDS, "backend" => backend).record(started.elapsed());
}

/// What a committed command reports: whether it was a replay, how many events it decided and
/// how many times it decided.
pub(crate) struct CommandDone {
    pub replayed: bool,
    pub events: usize,
    pub attempts: u32,
}

/// Records one command named `command`, started at `started`.
pub(crate) fn command<E>(
    command: &'static str,
    started: Instant,
    result: Result<CommandDone, &ExecuteError<E>>,
) {
    let (outcome, attempts) = outcome(result);
    counter!(COMMANDS, "command" => command, "outcome" => outcome).increment(1);
    if attempts > 1 {
        counter!(COMMAND_RETRIES, "command" => command).increment(u64::from(attempts - 1));
    }
    histogram!(COMMAND_SECONDS, "command" => command).record(started.elapsed());
}

/// A command's outcome, as the metrics and its span name it, and how many times it decided.
pub(crate) fn outcome<E>(result: Result<CommandDone, &ExecuteError<E>>) -> (&'static str, u32) {
    match result {
        Ok(done) if done.replayed => ("replayed", 1),
        Ok(done) if done.events == 0 => ("no_op", done.attempts),
        Ok(done) => ("committed", done.attempts),
        Err(ExecuteError::Invalid(_)) => ("invalid", 1),
        Err(ExecuteError::Rejected(_)) => ("refused", 1),
        Err(ExecuteError::Stale { .. }) => ("stale", 1),
        Err(ExecuteError::Conflict { attempts, .. }) => ("conflict", *attempts),
        Err(ExecuteError::KeyReused { .. }) => ("key_reused", 1),
        Err(_) => ("error", 1),
    }
}

/// Records a read of aggregate `aggregate` from the store, from a snapshot or not, folding
/// `events` events.
pub(crate) fn load(aggregate: &'static str, snapshot: bool, events: u64) {
    let snapshot = if snapshot { "hit" } else { "miss" };
    counter!(LOADS, "aggregate" => aggregate, "snapshot" => snapshot).increment(1);
    counter!(LOAD_EVENTS, "aggregate" => aggregate).increment(events);
}

/// Records a look into the aggregate cache.
pub(crate) fn cache(aggregate: &'static str, hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    counter!(CACHE, "aggregate" => aggregate, "outcome" => outcome).increment(1);
}

/// Records a batch of `events` events that `consumer` handled in `took`.
pub(crate) fn batch(consumer: &str, events: usize, took: Duration) {
    let consumer = consumer.to_owned();
    counter!(RUNNER_BATCHES, "consumer" => consumer.clone()).increment(1);
    counter!(RUNNER_EVENTS, "consumer" => consumer.clone()).increment(events as u64);
    histogram!(RUNNER_BATCH_SECONDS, "consumer" => consumer).record(took);
}

/// Sets `consumer`'s lag: `events` behind (`None`: not read this time, the gauge keeps its
/// value), the newest event handled recorded at `newest` (`None`: caught up).
pub(crate) fn lag(consumer: &str, events: Option<u64>, newest: Option<Timestamp>) {
    let seconds = newest.map_or(0.0, |at| Timestamp::now().since(at).as_secs_f64());
    if let Some(events) = events {
        gauge!(RUNNER_LAG_EVENTS, "consumer" => consumer.to_owned()).set(events as f64);
    }
    gauge!(RUNNER_LAG_SECONDS, "consumer" => consumer.to_owned()).set(seconds);
}

/// Records an event `consumer` parked.
pub(crate) fn parked(consumer: &str) {
    counter!(REACTOR_PARKED, "consumer" => consumer.to_owned()).increment(1);
}

/// Records a parked event of `consumer` that succeeded on a replay.
pub(crate) fn unparked(consumer: &str) {
    counter!(REACTOR_UNPARKED, "consumer" => consumer.to_owned()).increment(1);
}

/// Records a change of leadership of `consumer`: `acquired`, `lost`, `fenced`, `store_failed`.
pub(crate) fn leadership(consumer: &str, change: &'static str) {
    counter!(RUNNER_LEADERSHIP, "consumer" => consumer.to_owned(), "change" => change).increment(1);
}
