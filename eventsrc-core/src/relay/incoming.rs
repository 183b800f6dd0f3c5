//! [`incoming`]: a message a relay published, read back as a [`RecordedEvent`].

use std::str::FromStr;

use super::headers;
use crate::{
    EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, StreamVersion, Tenant, Timestamp,
    Uuid,
};

/// A message that is not an event as a relay publishes it: a header missing or malformed, or
/// a payload that is not JSON. Names the event and its stream when the message says them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", describe(.event_id.as_deref(), .stream.as_deref()))]
pub struct IncomingError {
    /// The message's event id header, as sent, if it had one.
    pub event_id: Option<String>,
    /// The message's stream header, as sent, if it had one.
    pub stream: Option<String>,
    /// What is wrong, naming the header.
    pub problem: String,
}

fn describe(event_id: Option<&str>, stream: Option<&str>) -> String {
    match (event_id, stream) {
        (Some(id), Some(stream)) => format!("message of event {id} in `{stream}`"),
        (Some(id), None) => format!("message of event {id}"),
        (None, Some(stream)) => format!("message of an event in `{stream}`"),
        (None, None) => "message".to_owned(),
    }
}

/// Reads a message a [`Relay`](super::Relay) published back into the event it carries:
/// `header` looks a header up by name, `payload` is the message body.
///
/// Every header of [`headers`](super::headers) but the optional ones must be there and
/// well-formed, and the payload must be JSON; otherwise the error names the event and the
/// header. The payload is kept as sent, so the event decodes (and upcasts) as it would from
/// the store it came from.
pub fn incoming<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    payload: &[u8],
) -> Result<RecordedEvent, IncomingError> {
    let fail = |problem: String| IncomingError {
        event_id: header(headers::EVENT_ID).map(str::to_owned),
        stream: header(headers::STREAM).map(str::to_owned),
        problem,
    };
    let required =
        |name: &'static str| header(name).ok_or_else(|| fail(format!("it has no `{name}` header")));
    fn parsed<T: FromStr>(
        name: &'static str,
        value: &str,
        fail: &dyn Fn(String) -> IncomingError,
    ) -> Result<T, IncomingError>
    where
        T::Err: std::fmt::Display,
    {
        value
            .parse()
            .map_err(|e| fail(format!("its `{name}` header `{value}` is invalid: {e}")))
    }
    let event_id: Uuid = parsed(headers::EVENT_ID, required(headers::EVENT_ID)?, &fail)?;
    let event_type = required(headers::EVENT_TYPE)?;
    if event_type.is_empty() {
        return Err(fail(format!(
            "its `{}` header is empty",
            headers::EVENT_TYPE
        )));
    }
    let schema_version: u32 = parsed(
        headers::SCHEMA_VERSION,
        required(headers::SCHEMA_VERSION)?,
        &fail,
    )?;
    let stream: StreamId = parsed(headers::STREAM, required(headers::STREAM)?, &fail)?;
    let stream_version: u64 = parsed(
        headers::STREAM_VERSION,
        required(headers::STREAM_VERSION)?,
        &fail,
    )?;
    if stream_version == 0 {
        return Err(fail(format!(
            "its `{}` header is 0; versions start at 1",
            headers::STREAM_VERSION
        )));
    }
    let global_position: GlobalPosition =
        parsed(headers::POSITION, required(headers::POSITION)?, &fail)?;
    let tenant = Tenant::new(required(headers::TENANT)?);
    let recorded_at: Timestamp =
        parsed(headers::RECORDED_AT, required(headers::RECORDED_AT)?, &fail)?;
    let mut metadata = match header(headers::METADATA) {
        Some(json) => serde_json::from_str::<Metadata>(json).map_err(|e| {
            fail(format!(
                "its `{}` header is not metadata JSON: {e}",
                headers::METADATA
            ))
        })?,
        None => Metadata::new(),
    };
    if let Some(id) = header(headers::CORRELATION_ID) {
        metadata.correlation_id = Some(parsed(headers::CORRELATION_ID, id, &fail)?);
    }
    if let Some(id) = header(headers::CAUSATION_ID) {
        metadata.causation_id = Some(parsed(headers::CAUSATION_ID, id, &fail)?);
    }
    let payload =
        std::str::from_utf8(payload).map_err(|e| fail(format!("its payload is not UTF-8: {e}")))?;
    serde_json::from_str::<serde::de::IgnoredAny>(payload)
        .map_err(|e| fail(format!("its payload is not JSON: {e}")))?;
    Ok(RecordedEvent {
        event_id: EventId(event_id),
        stream,
        stream_version: StreamVersion(stream_version),
        global_position,
        tenant,
        event_type: event_type.into(),
        schema_version,
        payload: payload.into(),
        metadata,
        recorded_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::headers::headers as headers_of;

    fn record() -> RecordedEvent {
        RecordedEvent {
            event_id: EventId::new(),
            stream: "lead-7".parse().unwrap(),
            stream_version: StreamVersion(3),
            global_position: GlobalPosition::new(12, 40),
            tenant: Tenant::new("acme"),
            event_type: "lead.opened".into(),
            schema_version: 2,
            payload: r#"{"name":"Grace"}"#.into(),
            metadata: Metadata::new()
                .with_correlation_id(Uuid::from_u128(1))
                .with_causation_id(Uuid::from_u128(2))
                .with_actor("ops"),
            recorded_at: Timestamp::from_micros(1_700_000_000_123_456),
        }
    }

    fn read(
        sent: &[(&'static str, String)],
        payload: &[u8],
    ) -> Result<RecordedEvent, IncomingError> {
        incoming(
            |name| {
                sent.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.as_str())
            },
            payload,
        )
    }

    #[test]
    fn a_published_event_reads_back_the_same() {
        let record = record();
        let back = read(&headers_of(&record), record.payload.as_bytes()).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn a_missing_or_bad_header_is_named_with_the_event() {
        let record = record();
        let mut sent = headers_of(&record);
        sent.retain(|(n, _)| *n != headers::STREAM_VERSION);
        let error = read(&sent, b"{}").unwrap_err();
        assert_eq!(error.event_id, Some(record.event_id.to_string()));
        assert_eq!(error.stream.as_deref(), Some("lead-7"));
        assert!(error.problem.contains("Eventsrc-Stream-Version"), "{error}");
        assert!(
            error.to_string().contains(&record.event_id.to_string()),
            "{error}"
        );

        let mut sent = headers_of(&record);
        sent[2].1 = "two".to_owned();
        let error = read(&sent, b"{}").unwrap_err();
        assert!(
            error
                .problem
                .contains("`Eventsrc-Schema-Version` header `two`"),
            "{error}"
        );
    }

    #[test]
    fn a_payload_that_is_not_json_is_refused() {
        let record = record();
        let error = read(&headers_of(&record), b"{not json").unwrap_err();
        assert!(error.problem.contains("not JSON"), "{error}");
        let error = read(&headers_of(&record), &[0xff, 0xfe]).unwrap_err();
        assert!(error.problem.contains("not UTF-8"), "{error}");
    }

    #[test]
    fn a_message_with_no_headers_says_so() {
        let error = incoming(|_| None, b"{}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "message: it has no `Eventsrc-Event-Id` header"
        );
    }
}
