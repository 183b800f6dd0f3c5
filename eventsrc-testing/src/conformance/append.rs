//! Appending and reading back: what a record holds, what an append reports, and the
//! expected-version check.

use eventsrc_core::{
    ExpectedVersion, GlobalPosition, Metadata, NewEvent, StreamVersion, Timestamp, Uuid,
};

use eventsrc_core::store::ReadStream;

use super::sample::{self, append, events, observe, read, version, versions};
use super::{StoreUnderTest, expect};

/// Every field of a recorded event holds what was appended or what the store assigned, and the
/// global log returns the very same records.
pub async fn append_records_every_field<S: StoreUnderTest>(store: S) {
    let s = sample::stream("lead-1410");
    let metadata = Metadata::new()
        .with_correlation_id(Uuid::now_v7())
        .with_causation_id(Uuid::now_v7())
        .with_actor("sales-rep-7")
        .with("channel", "phone");
    let batch = vec![
        NewEvent::raw("lead.opened", 1, r#"{"name":"Stefan Ivanov"}"#).with_metadata(metadata),
        NewEvent::raw("lead.contacted", 3, r#"{"via":"phone","attempt":2}"#),
    ];
    let before = Timestamp::now();
    let appended = append(&store, &s, ExpectedVersion::NoStream, batch.clone()).await;
    let after = Timestamp::now();

    let recorded = read(&store, &s, ReadStream::forward()).await;
    assert_eq!(
        recorded.len(),
        2,
        "reading back a 2-event append: {recorded:#?}"
    );
    for (i, (event, new)) in recorded.iter().zip(&batch).enumerate() {
        let at = format!("event #{} of the append", i + 1);
        assert_eq!(event.event_id, new.event_id, "{at}: event_id");
        assert_eq!(event.stream, s, "{at}: stream");
        assert_eq!(
            event.stream_version.get(),
            i as u64 + 1,
            "{at}: stream_version"
        );
        assert_eq!(&event.tenant, store.tenant(), "{at}: tenant");
        assert_eq!(*event.event_type, *new.event_type, "{at}: event_type");
        assert_eq!(
            event.schema_version, new.schema_version,
            "{at}: schema_version"
        );
        assert_eq!(*event.payload, *new.payload, "{at}: payload");
        assert_eq!(event.metadata, new.metadata, "{at}: metadata");
        assert_eq!(event.recorded_at, appended.recorded_at, "{at}: recorded_at");
        assert!(event.same_content(new), "{at}: same_content");
    }
    assert!(
        GlobalPosition::START < recorded[0].global_position
            && recorded[0].global_position < recorded[1].global_position,
        "positions must lie after START and increase: {} then {}",
        recorded[0].global_position,
        recorded[1].global_position
    );
    assert_eq!(
        recorded[1].global_position, appended.position,
        "the append reports its last event's position"
    );
    expect::near(appended.recorded_at, before, after, "recorded_at");
    assert_eq!(
        sample::whole_log(&store).await,
        recorded,
        "read_all returns the same records as read_stream"
    );
}

/// An append reports the version of its first and last events and the last one's position;
/// the next append continues from there.
pub async fn an_append_reports_its_versions_and_last_position<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let first = append(&store, &s, ExpectedVersion::NoStream, events("Noted", 3)).await;
    assert_eq!(
        (
            first.first_version,
            first.stream_version,
            first.already_stored
        ),
        (StreamVersion(1), StreamVersion(3), false),
        "first append of 3 events: (first_version, stream_version, already_stored)"
    );
    let recorded = read(&store, &s, ReadStream::forward()).await;
    assert_eq!(
        versions(&recorded),
        [1, 2, 3],
        "versions after the first append"
    );
    assert_eq!(
        first.position, recorded[2].global_position,
        "first append's position"
    );

    let expected = ExpectedVersion::Exact(StreamVersion(3));
    let second = append(&store, &s, expected, events("Noted", 2)).await;
    assert_eq!(
        (
            second.first_version,
            second.stream_version,
            second.already_stored
        ),
        (StreamVersion(4), StreamVersion(5), false),
        "second append of 2 events: (first_version, stream_version, already_stored)"
    );
    assert!(
        second.position > first.position,
        "a later append has a later position: {} then {}",
        first.position,
        second.position
    );
    assert_eq!(
        version(&store, &s).await,
        StreamVersion(5),
        "stream_version"
    );
    assert_eq!(sample::head(&store).await, second.position, "head_position");
}

/// The events of one append share the commit part of their positions and one `recorded_at`,
/// and their sequences increase; another append has another commit.
pub async fn a_batch_shares_one_commit_and_one_timestamp<S: StoreUnderTest>(store: S) {
    let lone = append(
        &store,
        &sample::stream("note-1"),
        ExpectedVersion::Any,
        events("Noted", 1),
    )
    .await;
    let s = sample::stream("note-2");
    let batch = append(&store, &s, ExpectedVersion::Any, events("Noted", 3)).await;
    let recorded = read(&store, &s, ReadStream::forward()).await;
    assert_eq!(recorded.len(), 3, "the batch reads back whole");

    let commit = recorded[0].global_position.commit;
    for event in &recorded {
        assert_eq!(
            event.global_position.commit, commit,
            "every event of one append has the same commit: {recorded:#?}"
        );
        assert_eq!(
            event.recorded_at, batch.recorded_at,
            "every event of one append has the append's recorded_at"
        );
    }
    assert!(
        recorded
            .windows(2)
            .all(|w| w[0].global_position.sequence < w[1].global_position.sequence),
        "sequences increase within a batch: {:?}",
        recorded
            .iter()
            .map(|e| e.global_position)
            .collect::<Vec<_>>()
    );
    assert_ne!(
        lone.position.commit, commit,
        "two appends are two commits ({} and {})",
        lone.position, recorded[0].global_position
    );
}

/// `Any` appends to a stream whether or not it exists.
pub async fn expected_any_appends_to_missing_and_existing_streams<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let first = append(&store, &s, ExpectedVersion::Any, events("Noted", 1)).await;
    assert_eq!(
        first.stream_version,
        StreamVersion(1),
        "Any on a missing stream"
    );
    let second = append(&store, &s, ExpectedVersion::Any, events("Noted", 2)).await;
    assert_eq!(
        (second.first_version, second.stream_version),
        (StreamVersion(2), StreamVersion(3)),
        "Any on an existing stream"
    );
    assert_eq!(
        version(&store, &s).await,
        StreamVersion(3),
        "stream_version"
    );
}

/// `NoStream` succeeds on a missing stream and conflicts once it has events.
pub async fn expected_no_stream_succeeds_once_then_conflicts<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let first = append(&store, &s, ExpectedVersion::NoStream, events("Noted", 2)).await;
    assert_eq!(
        first.stream_version,
        StreamVersion(2),
        "NoStream on a missing stream"
    );
    let again = store
        .append(&s, ExpectedVersion::NoStream, events("Noted", 1))
        .await;
    let context = "NoStream on a stream at version 2";
    expect::conflict(
        again,
        &s,
        ExpectedVersion::NoStream,
        StreamVersion(2),
        context,
    );
}

/// `StreamExists` conflicts on a missing stream (leaving it missing) and succeeds once it exists.
pub async fn expected_stream_exists_conflicts_then_succeeds<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let missing = store
        .append(&s, ExpectedVersion::StreamExists, events("Noted", 1))
        .await;
    let context = "StreamExists on a missing stream";
    expect::conflict(
        missing,
        &s,
        ExpectedVersion::StreamExists,
        StreamVersion::NONE,
        context,
    );
    assert_eq!(
        version(&store, &s).await,
        StreamVersion::NONE,
        "{context}: version"
    );

    append(&store, &s, ExpectedVersion::NoStream, events("Noted", 1)).await;
    let existing = append(
        &store,
        &s,
        ExpectedVersion::StreamExists,
        events("Noted", 1),
    )
    .await;
    assert_eq!(
        existing.stream_version,
        StreamVersion(2),
        "StreamExists on an existing stream"
    );
}

/// `Exact(n)` succeeds only at version `n`, and conflicts below and above it with the stream's
/// actual version.
pub async fn expected_exact_succeeds_only_at_the_current_version<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    append(&store, &s, ExpectedVersion::NoStream, events("Noted", 3)).await;
    for wrong in [1, 2, 4, 10] {
        let expected = ExpectedVersion::Exact(StreamVersion(wrong));
        let result = store.append(&s, expected, events("Noted", 1)).await;
        let context = format!("Exact({wrong}) on a stream at version 3");
        expect::conflict(result, &s, expected, StreamVersion(3), &context);
    }
    let right = append(
        &store,
        &s,
        ExpectedVersion::Exact(StreamVersion(3)),
        events("Noted", 1),
    );
    let appended = right.await;
    assert_eq!(
        (appended.first_version, appended.stream_version),
        (StreamVersion(4), StreamVersion(4)),
        "Exact(3) on a stream at version 3"
    );
}

/// `Exact(StreamVersion::NONE)` is `NoStream`: it creates a stream, then conflicts.
pub async fn expected_exact_none_behaves_as_no_stream<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let expected = ExpectedVersion::Exact(StreamVersion::NONE);
    let first = append(&store, &s, expected, events("Noted", 1)).await;
    assert_eq!(
        first.stream_version,
        StreamVersion(1),
        "Exact(0) on a missing stream"
    );
    let again = store.append(&s, expected, events("Noted", 1)).await;
    expect::conflict(
        again,
        &s,
        expected,
        StreamVersion(1),
        "Exact(0) on a stream at version 1",
    );
}

/// An append that conflicts leaves the stream, the log and the head position as they were.
pub async fn a_conflicting_append_writes_nothing<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    append(&store, &s, ExpectedVersion::NoStream, events("Noted", 2)).await;
    let before = observe(&store, &s).await;
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(StreamVersion(1)),
        ExpectedVersion::Exact(StreamVersion(5)),
    ] {
        let result = store.append(&s, expected, events("Noted", 3)).await;
        let context = format!("appending 3 events expecting {expected} at version 2");
        expect::conflict(result, &s, expected, StreamVersion(2), &context);
        expect::unchanged(&before, &observe(&store, &s).await, &context);
    }
}
