//! The headers a relay puts on every message, and [`headers`], which makes them from a record.
//!
//! Brokers with properties of their own carry some of these twice: AMQP's `message_id` and
//! `type`, NATS's `Nats-Msg-Id` (all the event id or type). The headers here are the ones
//! [`incoming`](super::incoming) reads back.

use crate::RecordedEvent;

/// The event id (a UUID).
pub const EVENT_ID: &str = "Eventsrc-Event-Id";
/// The stored event type name (`lead.opened`).
pub const EVENT_TYPE: &str = "Eventsrc-Event-Type";
/// The schema version the payload was written with.
pub const SCHEMA_VERSION: &str = "Eventsrc-Schema-Version";
/// The stream (`lead-1410`).
pub const STREAM: &str = "Eventsrc-Stream";
/// The event's 1-based version in its stream.
pub const STREAM_VERSION: &str = "Eventsrc-Stream-Version";
/// Its position in the store's global log, `commit:sequence`.
pub const POSITION: &str = "Eventsrc-Position";
/// The tenant that wrote it.
pub const TENANT: &str = "Eventsrc-Tenant";
/// When the store recorded it, RFC 3339 in UTC.
pub const RECORDED_AT: &str = "Eventsrc-Recorded-At";
/// The correlation id, when the event has one.
pub const CORRELATION_ID: &str = "Eventsrc-Correlation-Id";
/// The causation id, when the event has one.
pub const CAUSATION_ID: &str = "Eventsrc-Causation-Id";
/// All of the event's metadata as JSON (actor, idempotency, free key/values), when it has any.
pub const METADATA: &str = "Eventsrc-Metadata";

/// The headers of `record`'s message, in the order above; the optional ones only when set.
///
/// ```
/// # use eventsrc::relay::headers::{self, headers};
/// # fn check(record: &eventsrc::RecordedEvent) {
/// let sent = headers(record);
/// assert_eq!(sent[0], (headers::EVENT_ID, record.event_id.to_string()));
/// # }
/// ```
pub fn headers(record: &RecordedEvent) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (EVENT_ID, record.event_id.to_string()),
        (EVENT_TYPE, record.event_type.to_string()),
        (SCHEMA_VERSION, record.schema_version.to_string()),
        (STREAM, record.stream.to_string()),
        (STREAM_VERSION, record.stream_version.0.to_string()),
        (POSITION, record.global_position.to_string()),
        (TENANT, record.tenant.to_string()),
        (RECORDED_AT, record.recorded_at.to_string()),
    ];
    let metadata = &record.metadata;
    if let Some(id) = metadata.correlation_id {
        headers.push((CORRELATION_ID, id.to_string()));
    }
    if let Some(id) = metadata.causation_id {
        headers.push((CAUSATION_ID, id.to_string()));
    }
    let has_more =
        metadata.actor.is_some() || metadata.idempotency.is_some() || !metadata.extra.is_empty();
    if has_more {
        // Compact JSON escapes every control character, so the value is one line.
        if let Ok(json) = serde_json::to_string(metadata) {
            headers.push((METADATA, json));
        }
    }
    headers
}
