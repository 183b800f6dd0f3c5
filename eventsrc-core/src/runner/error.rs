//! [`RunError`]: what running a projection or reactor can fail with.

use std::time::Duration;

use crate::{
    EventId, GlobalPosition, RecordDecodeError, RecordedEvent, StoreError, StreamId, StreamVersion,
};

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
    /// A service the consumer writes to (a message broker) did not answer for longer than the
    /// consumer waits. Nothing of the batch was checkpointed; a
    /// [leader](crate::Runner::run_as_leader) lets its lease go and tries again from the
    /// checkpoint, as when the store fails.
    #[error("`{consumer}`: unavailable: {source}")]
    Unavailable {
        /// The consumer (a relay).
        consumer: String,
        /// The last error the service's client gave.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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

    /// A service `consumer` writes to did not answer.
    pub fn unavailable(
        consumer: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Unavailable {
            consumer: consumer.to_owned(),
            source: source.into(),
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
