//! When events were recorded: never earlier than what was appended before them, close to now,
//! and, for stores that read time in this process, exactly between the instants around the append.

use eventsrc_core::{ExpectedVersion, Timestamp};

use eventsrc_core::store::ReadStream;

use super::sample::{self, append, events, read, whole_log};
use super::{StoreUnderTest, expect};

/// Along 12 appends made one after another to three streams, `recorded_at` never decreases,
/// neither in what the appends report nor in the log, and every value lies near the time of
/// the test (within `CLOCK_SKEW`, for databases whose clock is not this process's).
pub async fn recorded_at_never_decreases_in_append_order<S: StoreUnderTest>(store: S) {
    let streams = ["note-1", "note-2", "note-3"].map(sample::stream);
    let start = Timestamp::now();
    let mut reported = Vec::new();
    for n in 0..12 {
        let s = &streams[n % streams.len()];
        let appended = append(&store, s, ExpectedVersion::Any, events("Noted", n % 2 + 1)).await;
        reported.push(appended.recorded_at);
    }
    let end = Timestamp::now();

    if let Some(pair) = reported.windows(2).find(|pair| pair[0] > pair[1]) {
        panic!(
            "recorded_at went back from {} to {} between two appends",
            pair[0], pair[1]
        );
    }
    let log = whole_log(&store).await;
    if let Some(pair) = log
        .windows(2)
        .find(|pair| pair[0].recorded_at > pair[1].recorded_at)
    {
        panic!(
            "recorded_at went back along the log: {} at {} then {} at {}",
            pair[0].recorded_at,
            pair[0].global_position,
            pair[1].recorded_at,
            pair[1].global_position
        );
    }
    for event in &log {
        expect::near(event.recorded_at, start, end, "an event's recorded_at");
    }
}

/// For a store that reads time in this process, `recorded_at` lies between `Timestamp::now()`
/// read just before and just after the append, to the microsecond, and reads back the same.
pub async fn recorded_at_comes_from_the_local_clock<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    for n in 1..=5 {
        let before = Timestamp::now();
        let appended = append(&store, &s, ExpectedVersion::Any, events("Noted", n)).await;
        let after = Timestamp::now();
        assert!(
            before <= appended.recorded_at && appended.recorded_at <= after,
            "recorded_at {} is outside the append, made between {before} and {after}",
            appended.recorded_at
        );
    }
    let recorded = read(&store, &s, ReadStream::forward()).await;
    let reported = recorded.iter().map(|e| e.recorded_at);
    if let Some(pair) = reported.clone().zip(reported.skip(1)).find(|(a, b)| a > b) {
        panic!(
            "recorded_at went back from {} to {} along the stream",
            pair.0, pair.1
        );
    }
}
