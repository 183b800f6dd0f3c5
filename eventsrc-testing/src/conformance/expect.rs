//! Assertions on what a store answered, each naming the case's context on failure.

use std::time::Duration;

use eventsrc_core::store::AppendResult;

use eventsrc_core::{
    EventId, ExpectedVersion, RecordedEvent, StoreError, StreamId, StreamVersion, Timestamp,
};

use super::sample::Observed;

/// How far a database's clock may be from this process's clock.
pub(super) const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The append failed with `WrongExpectedVersion` carrying these fields.
pub(super) fn conflict(
    result: Result<AppendResult, StoreError>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: StreamVersion,
    context: &str,
) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            stream: at,
            expected: said,
            actual: was,
        }) => {
            assert_eq!(&at, stream, "{context}: the conflict's stream");
            assert_eq!(said, expected, "{context}: the conflict's expected version");
            assert_eq!(was, actual, "{context}: the conflict's actual version");
        }
        other => panic!(
            "{context}: expected WrongExpectedVersion {{ stream: {stream}, expected: {expected:?}, \
             actual: {actual} }}, got {other:?}"
        ),
    }
}

/// The append failed with `DuplicateEventId` naming this id and the stream appended to.
pub(super) fn duplicate(
    result: Result<AppendResult, StoreError>,
    event_id: EventId,
    stream: &StreamId,
    context: &str,
) {
    match result {
        Err(StoreError::DuplicateEventId {
            event_id: id,
            stream: at,
        }) => {
            assert_eq!(id, event_id, "{context}: the duplicate's event id");
            assert_eq!(&at, stream, "{context}: the duplicate's stream");
        }
        other => panic!(
            "{context}: expected DuplicateEventId {{ event_id: {event_id}, stream: {stream} }}, \
             got {other:?}"
        ),
    }
}

/// The append failed with `InvalidAppend` for this stream; returns the reason.
pub(super) fn invalid(
    result: Result<AppendResult, StoreError>,
    stream: &StreamId,
    context: &str,
) -> String {
    match result {
        Err(StoreError::InvalidAppend { stream: at, reason }) => {
            assert_eq!(&at, stream, "{context}: the invalid append's stream");
            assert!(
                !reason.trim().is_empty(),
                "{context}: InvalidAppend must say what is wrong"
            );
            reason
        }
        other => panic!("{context}: expected InvalidAppend for `{stream}`, got {other:?}"),
    }
}

/// Global positions strictly increase along `events`.
pub(super) fn increasing_positions(events: &[RecordedEvent], context: &str) {
    if let Some(pair) = events
        .windows(2)
        .find(|pair| pair[0].global_position >= pair[1].global_position)
    {
        panic!(
            "{context}: global positions must strictly increase, but {} (`{}` v{}) is followed by \
             {} (`{}` v{})",
            pair[0].global_position,
            pair[0].stream,
            pair[0].stream_version,
            pair[1].global_position,
            pair[1].stream,
            pair[1].stream_version
        );
    }
}

/// Nothing a reader can see changed.
pub(super) fn unchanged(before: &Observed, after: &Observed, context: &str) {
    assert_eq!(
        before, after,
        "{context}: the stream, its version, the log or the head position changed"
    );
}

/// `recorded` lies within [`CLOCK_SKEW`] of the instants read before and after the append.
pub(super) fn near(recorded: Timestamp, before: Timestamp, after: Timestamp, context: &str) {
    assert!(
        recorded >= before - CLOCK_SKEW && recorded <= after + CLOCK_SKEW,
        "{context}: recorded_at {recorded} is more than {CLOCK_SKEW:?} away from the append, \
         made between {before} and {after}"
    );
}

/// `actual` is exactly `expected`; a mismatch is shown by lengths and the first difference,
/// not by printing two large texts whole.
pub(super) fn same_text(actual: &str, expected: &str, context: &str) {
    if actual == expected {
        return;
    }
    let at = actual
        .char_indices()
        .zip(expected.chars())
        .find(|((_, a), e)| a != e)
        .map_or(actual.len().min(expected.len()), |((i, _), _)| i);
    let excerpt =
        |text: &str| -> String { text.get(at..).unwrap_or("").chars().take(40).collect() };
    panic!(
        "{context}: the text differs from byte {at} on (lengths: {} stored, {} appended)\n  \
         stored:   {:?}\n  appended: {:?}",
        actual.len(),
        expected.len(),
        excerpt(actual),
        excerpt(expected)
    );
}
