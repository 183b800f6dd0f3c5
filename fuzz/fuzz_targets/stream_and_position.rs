//! The small text forms a store and its clients exchange: `StreamId` (parsed, and built from a
//! category and an id), `GlobalPosition` (the consistency token), `Timestamp` (RFC 3339) and
//! `Metadata` (the JSON stored beside every event).
//!
//! The input is read as text for every parser; its first bytes are also read as numbers for
//! the values built from parts. Nothing may panic, and what the documentation promises is
//! asserted: a stream splits into the category and id it was built from, positions and
//! timestamps read back what they print, metadata reads back what it writes.
#![no_main]

use eventsrc::{GlobalPosition, Metadata, StreamId, Timestamp};
use libfuzzer_sys::fuzz_target;

fn check_stream(text: &str) {
    match text.parse::<StreamId>() {
        Ok(stream) => {
            assert_eq!(stream.as_str(), text);
            assert_eq!(stream.to_string(), text);
            assert!(!stream.category().is_empty() && !stream.category().contains('-'));
            assert!(!stream.id().is_empty());
            assert_eq!(format!("{}-{}", stream.category(), stream.id()), text);
            let json = serde_json::to_string(&stream).expect("a stream id is a JSON string");
            let back: StreamId = serde_json::from_str(&json).expect("it reads back");
            assert_eq!(back, stream);
        }
        Err(error) => {
            assert_eq!(error.value, text);
            let json = serde_json::to_string(text).expect("text is a JSON string");
            assert!(serde_json::from_str::<StreamId>(&json).is_err());
        }
    }
    // Built from parts: the category is what comes before a `|` (or the whole text), the id
    // what comes after.
    let (category, id) = text.split_once('|').unwrap_or((text, ""));
    if let Ok(stream) = StreamId::new(category, id) {
        assert_eq!(
            (stream.category(), stream.id()),
            (category, id),
            "StreamId::new({category:?}, {id:?})"
        );
    }
}

fn check_position(text: &str, commit: u64, sequence: u64) {
    if let Ok(position) = text.parse::<GlobalPosition>() {
        assert_eq!(position.to_string().parse::<GlobalPosition>(), Ok(position));
    }
    let position = GlobalPosition::new(commit, sequence);
    assert_eq!(position.to_string().parse::<GlobalPosition>(), Ok(position));
}

/// The first and last instants whose text `Timestamp` reads back: the years -9999 to 9999.
const FIRST_TEXT: i64 = -377_705_116_800_000_000;
const LAST_TEXT: i64 = 253_402_300_799_999_999;

fn check_timestamp(text: &str, micros: i64) {
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        let shown = timestamp.to_string();
        assert_eq!(
            shown.parse::<Timestamp>(),
            Ok(timestamp),
            "{text:?} shown as {shown:?}"
        );
    }
    let timestamp = Timestamp::from_micros(micros);
    let shown = timestamp.to_string();
    let parsed = shown.parse::<Timestamp>();
    if (FIRST_TEXT..=LAST_TEXT).contains(&micros) {
        assert_eq!(parsed, Ok(timestamp), "{micros} shown as {shown:?}");
    } else {
        assert!(
            parsed.is_err(),
            "{micros} shown as {shown:?} read as {parsed:?}"
        );
    }
    if let Ok(instant) = jiff::Timestamp::try_from(timestamp) {
        assert_eq!(Timestamp::from(instant), timestamp);
    }
}

fn check_metadata(data: &[u8]) {
    let Ok(metadata) = serde_json::from_slice::<Metadata>(data) else {
        return;
    };
    let json = serde_json::to_string(&metadata).expect("metadata is JSON");
    let back: Metadata =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
    assert_eq!(back, metadata, "{json}");
    assert_eq!(metadata.is_empty(), json == "{}");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let number = |at: usize| {
        data.get(at..at + 8)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map_or(0, u64::from_le_bytes)
    };
    check_stream(&text);
    check_position(&text, number(0), number(8));
    check_timestamp(&text, i64::from_le_bytes(number(16).to_le_bytes()));
    check_metadata(data);
});
