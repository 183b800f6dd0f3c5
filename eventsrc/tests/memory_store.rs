//! Behaviour of `MemoryStore` as an `EventStore`, `SnapshotStore` and `CheckpointStore`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{raw_events, stream, versions};
use eventsrc::Tenants;
use eventsrc::store::{AppendResult, ReadAll, ReadStream, Snapshot};
use eventsrc::time::ManualClock;
use eventsrc::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, MemoryStore, Metadata,
    NewEvent, SnapshotStore, StoreError, StreamId, StreamVersion, Tenant, Timestamp,
};
use uuid::Uuid;

/// A store with `n` events in `stream`.
async fn store_with(stream: &StreamId, n: usize) -> MemoryStore {
    let store = MemoryStore::new();
    store
        .append(stream, ExpectedVersion::NoStream, raw_events("Noted", n))
        .await
        .unwrap();
    store
}

#[track_caller]
fn assert_conflict(
    result: Result<AppendResult, StoreError>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: StreamVersion,
) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(&s, stream);
            assert_eq!(e, expected);
            assert_eq!(a, actual);
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Expected versions

#[tokio::test]
async fn any_appends_to_a_missing_and_to_an_existing_stream() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let first = store
        .append(&s, ExpectedVersion::Any, raw_events("Noted", 1))
        .await
        .unwrap();
    assert_eq!(first.stream_version, StreamVersion(1));
    let second = store
        .append(&s, ExpectedVersion::Any, raw_events("Noted", 2))
        .await
        .unwrap();
    assert_eq!(second.first_version, StreamVersion(2));
    assert_eq!(second.stream_version, StreamVersion(3));
    assert_eq!(store.stream_version(&s).await.unwrap(), StreamVersion(3));
}

#[tokio::test]
async fn no_stream_succeeds_on_a_missing_stream_and_conflicts_on_an_existing_one() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let first = store
        .append(&s, ExpectedVersion::NoStream, raw_events("Noted", 2))
        .await
        .unwrap();
    assert_eq!(first.stream_version, StreamVersion(2));

    let again = store
        .append(&s, ExpectedVersion::NoStream, raw_events("Noted", 1))
        .await;
    assert_conflict(again, &s, ExpectedVersion::NoStream, StreamVersion(2));
}

#[tokio::test]
async fn stream_exists_succeeds_on_an_existing_stream_and_conflicts_on_a_missing_one() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let missing = store
        .append(&s, ExpectedVersion::StreamExists, raw_events("Noted", 1))
        .await;
    assert_conflict(
        missing,
        &s,
        ExpectedVersion::StreamExists,
        StreamVersion::NONE,
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), StreamVersion::NONE);

    store
        .append(&s, ExpectedVersion::NoStream, raw_events("Noted", 1))
        .await
        .unwrap();
    let existing = store
        .append(&s, ExpectedVersion::StreamExists, raw_events("Noted", 1))
        .await
        .unwrap();
    assert_eq!(existing.stream_version, StreamVersion(2));
}

#[tokio::test]
async fn exact_succeeds_at_the_current_version_and_conflicts_below_and_above_it() {
    let s = stream("note-1");
    let store = store_with(&s, 3).await;

    for wrong in [1, 2, 4, 10] {
        let expected = ExpectedVersion::Exact(StreamVersion(wrong));
        let result = store.append(&s, expected, raw_events("Noted", 1)).await;
        assert_conflict(result, &s, expected, StreamVersion(3));
    }

    let appended = store
        .append(
            &s,
            ExpectedVersion::Exact(StreamVersion(3)),
            raw_events("Noted", 1),
        )
        .await
        .unwrap();
    assert_eq!(appended.first_version, StreamVersion(4));
    assert_eq!(appended.stream_version, StreamVersion(4));
}

#[tokio::test]
async fn exact_none_succeeds_on_a_missing_stream_and_conflicts_on_an_existing_one() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let expected = ExpectedVersion::Exact(StreamVersion::NONE);
    let first = store
        .append(&s, expected, raw_events("Noted", 1))
        .await
        .unwrap();
    assert_eq!(first.stream_version, StreamVersion(1));

    let again = store.append(&s, expected, raw_events("Noted", 1)).await;
    assert_conflict(again, &s, expected, StreamVersion(1));
}

#[tokio::test]
async fn a_conflicting_append_writes_nothing() {
    let s = stream("note-1");
    let store = store_with(&s, 2).await;
    let head = store.head_position().await.unwrap();

    let result = store
        .append(&s, ExpectedVersion::NoStream, raw_events("Noted", 3))
        .await;
    assert_conflict(result, &s, ExpectedVersion::NoStream, StreamVersion(2));

    assert_eq!(store.len(), 2);
    assert_eq!(store.stream_version(&s).await.unwrap(), StreamVersion(2));
    assert_eq!(store.head_position().await.unwrap(), head);
}

// ---------------------------------------------------------------------------------------------
// What an append returns

#[tokio::test]
async fn an_append_reports_its_versions_and_the_position_of_its_last_event() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let first = store
        .append(&s, ExpectedVersion::NoStream, raw_events("Noted", 3))
        .await
        .unwrap();
    assert_eq!(first.first_version, StreamVersion(1));
    assert_eq!(first.stream_version, StreamVersion(3));
    assert!(!first.already_stored);

    let events = store.read_stream(&s, ReadStream::forward()).await.unwrap();
    assert_eq!(versions(&events), [1, 2, 3]);
    assert_eq!(first.position, events[2].global_position);
    assert_eq!(store.head_position().await.unwrap(), first.position);

    let second = store
        .append(
            &s,
            ExpectedVersion::Exact(StreamVersion(3)),
            raw_events("Noted", 2),
        )
        .await
        .unwrap();
    assert_eq!(second.first_version, StreamVersion(4));
    assert_eq!(second.stream_version, StreamVersion(5));
    assert!(second.position > first.position);
}

#[tokio::test]
async fn the_events_of_one_batch_share_a_commit_and_have_increasing_sequences() {
    let store = MemoryStore::new();
    store
        .append(
            &stream("note-1"),
            ExpectedVersion::Any,
            raw_events("Noted", 1),
        )
        .await
        .unwrap();
    store
        .append(
            &stream("note-2"),
            ExpectedVersion::Any,
            raw_events("Noted", 3),
        )
        .await
        .unwrap();
    let events = store
        .read_stream(&stream("note-2"), ReadStream::forward())
        .await
        .unwrap();
    let commit = events[0].global_position.commit;
    assert!(events.iter().all(|e| e.global_position.commit == commit));
    assert!(
        events
            .windows(2)
            .all(|w| w[0].global_position.sequence < w[1].global_position.sequence)
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotency by event id

#[tokio::test]
async fn re_appending_the_same_events_is_idempotent_even_with_a_stale_expected_version() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let batch = raw_events("Noted", 2);
    let original = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    store
        .append(&s, ExpectedVersion::Any, raw_events("Noted", 1))
        .await
        .unwrap();

    // The client retries the first request: NoStream is stale by now, but nothing conflicts.
    let retried = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert!(retried.already_stored);
    assert_eq!(
        retried,
        AppendResult {
            already_stored: true,
            ..original
        }
    );
    assert_eq!(store.len(), 3);
    assert_eq!(store.stream_version(&s).await.unwrap(), StreamVersion(3));

    // So does an exact expectation, right or wrong.
    let exact = store
        .append(&s, ExpectedVersion::Exact(StreamVersion(7)), batch)
        .await
        .unwrap();
    assert!(exact.already_stored);
    assert_eq!(exact.position, original.position);
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn re_appending_one_event_returns_its_original_place() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let event = NewEvent::raw("Noted", 1, "{}");
    store
        .append(&s, ExpectedVersion::Any, raw_events("Noted", 2))
        .await
        .unwrap();
    let original = store
        .append(&s, ExpectedVersion::Any, vec![event.clone()])
        .await
        .unwrap();
    assert_eq!(original.stream_version, StreamVersion(3));

    let retried = store
        .append(&s, ExpectedVersion::Any, vec![event])
        .await
        .unwrap();
    assert!(retried.already_stored);
    assert_eq!(retried.first_version, StreamVersion(3));
    assert_eq!(retried.stream_version, StreamVersion(3));
    assert_eq!(retried.position, original.position);
    assert_eq!(retried.recorded_at, original.recorded_at);
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn the_same_id_with_other_content_is_a_duplicate() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let id = EventId::new();
    store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![NewEvent::raw("Noted", 1, r#"{"n":1}"#).with_id(id)],
        )
        .await
        .unwrap();

    let other_content = [
        NewEvent::raw("Noted", 1, r#"{"n":2}"#),
        NewEvent::raw("Other", 1, r#"{"n":1}"#),
        NewEvent::raw("Noted", 2, r#"{"n":1}"#),
        NewEvent::raw("Noted", 1, r#"{"n":1}"#).with_metadata(Metadata::new().with_actor("x")),
    ];
    for event in other_content {
        let result = store
            .append(&s, ExpectedVersion::Any, vec![event.with_id(id)])
            .await;
        match result {
            Err(StoreError::DuplicateEventId {
                event_id,
                stream: at,
            }) => {
                assert_eq!(event_id, id);
                assert_eq!(at, s);
            }
            other => panic!("expected DuplicateEventId, got {other:?}"),
        }
    }
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn the_same_id_in_another_stream_is_a_duplicate() {
    let store = MemoryStore::new();
    let event = NewEvent::raw("Noted", 1, "{}");
    store
        .append(&stream("note-1"), ExpectedVersion::Any, vec![event.clone()])
        .await
        .unwrap();
    let result = store
        .append(&stream("note-2"), ExpectedVersion::Any, vec![event.clone()])
        .await;
    assert!(
        matches!(result, Err(StoreError::DuplicateEventId { event_id, .. }) if event_id == event.event_id),
        "{result:?}"
    );
    assert!(
        store
            .read_stream(&stream("note-2"), ReadStream::forward())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_batch_mixing_stored_and_new_ids_fails_and_writes_nothing() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let stored = NewEvent::raw("Noted", 1, "{}");
    store
        .append(&s, ExpectedVersion::Any, vec![stored.clone()])
        .await
        .unwrap();

    let new_first = vec![NewEvent::raw("Noted", 1, "{}"), stored.clone()];
    let stored_first = vec![stored.clone(), NewEvent::raw("Noted", 1, "{}")];
    for batch in [new_first, stored_first] {
        let result = store.append(&s, ExpectedVersion::Any, batch).await;
        assert!(
            matches!(result, Err(StoreError::DuplicateEventId { .. })),
            "{result:?}"
        );
        assert_eq!(store.len(), 1);
        assert_eq!(store.stream_version(&s).await.unwrap(), StreamVersion(1));
    }
}

#[tokio::test]
async fn an_id_twice_in_one_batch_is_invalid_and_writes_nothing() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let twice = NewEvent::raw("Noted", 1, "{}");
    let batch = vec![
        NewEvent::raw("Noted", 1, "{}"),
        twice.clone(),
        twice.clone(),
    ];
    let result = store.append(&s, ExpectedVersion::Any, batch).await;
    match result {
        Err(StoreError::InvalidAppend { stream: at, reason }) => {
            assert_eq!(at, s);
            assert!(reason.contains(&twice.event_id.to_string()), "{reason}");
        }
        other => panic!("expected InvalidAppend, got {other:?}"),
    }
    assert!(store.is_empty());
    assert_eq!(store.stream_version(&s).await.unwrap(), StreamVersion::NONE);
}

#[tokio::test]
async fn an_empty_batch_is_invalid() {
    let store = MemoryStore::new();
    let s = stream("note-1");
    let result = store.append(&s, ExpectedVersion::Any, vec![]).await;
    assert!(
        matches!(&result, Err(StoreError::InvalidAppend { stream: at, .. }) if *at == s),
        "{result:?}"
    );
    assert!(store.is_empty());
    assert_eq!(store.head_position().await.unwrap(), GlobalPosition::START);
}

// ---------------------------------------------------------------------------------------------
// Tenants

#[tokio::test]
async fn tenants_do_not_see_each_others_events() {
    let default = MemoryStore::new();
    let acme = default.with_tenant(Tenant::new("acme"));
    assert_eq!(default.tenant(), &Tenant::default());
    assert_eq!(acme.tenant().as_str(), "acme");

    let shared_name = stream("lead-1");
    default
        .append(
            &shared_name,
            ExpectedVersion::NoStream,
            raw_events("Noted", 2),
        )
        .await
        .unwrap();
    // The same stream name in another tenant is another stream: it does not exist there yet.
    let in_acme = acme
        .append(
            &shared_name,
            ExpectedVersion::NoStream,
            raw_events("Noted", 1),
        )
        .await
        .unwrap();
    assert_eq!(in_acme.stream_version, StreamVersion(1));
    acme.append(
        &stream("invoice-9"),
        ExpectedVersion::NoStream,
        raw_events("Billed", 1),
    )
    .await
    .unwrap();

    assert_eq!(
        default.stream_version(&shared_name).await.unwrap(),
        StreamVersion(2)
    );
    assert_eq!(
        acme.stream_version(&shared_name).await.unwrap(),
        StreamVersion(1)
    );
    assert_eq!(
        default.stream_version(&stream("invoice-9")).await.unwrap(),
        StreamVersion::NONE
    );
    assert!(
        default
            .read_stream(&stream("invoice-9"), ReadStream::forward())
            .await
            .unwrap()
            .is_empty()
    );

    let default_all = default
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    let acme_all = acme
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    assert_eq!(default_all.len(), 2);
    assert_eq!(acme_all.len(), 2);
    assert!(default_all.iter().all(|e| e.tenant == Tenant::default()));
    assert!(acme_all.iter().all(|e| e.tenant.as_str() == "acme"));
    assert_eq!(
        default.head_position().await.unwrap(),
        default_all[1].global_position
    );
    assert_eq!(
        acme.head_position().await.unwrap(),
        acme_all[1].global_position
    );

    // A third tenant sees nothing at all.
    let empty = default.with_tenant(Tenant::new("globex"));
    assert!(
        empty
            .read_all(ReadAll::after(GlobalPosition::START))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(empty.head_position().await.unwrap(), GlobalPosition::START);
    assert_eq!(default.len(), 4, "len counts every tenant");
}

#[tokio::test]
async fn tenants_do_not_see_each_others_snapshots_or_checkpoints() {
    let default = MemoryStore::new();
    let acme = default.with_tenant("acme".into());
    let s = stream("lead-1");

    default
        .save_snapshot(snapshot(&s, 3, r#"{"who":"default"}"#))
        .await
        .unwrap();
    assert!(acme.load_snapshot(&s).await.unwrap().is_none());
    acme.save_snapshot(snapshot(&s, 1, r#"{"who":"acme"}"#))
        .await
        .unwrap();
    assert_eq!(
        default.load_snapshot(&s).await.unwrap().unwrap().payload,
        r#"{"who":"default"}"#
    );
    assert_eq!(
        acme.load_snapshot(&s).await.unwrap().unwrap().payload,
        r#"{"who":"acme"}"#
    );

    acme.save_checkpoint("report", GlobalPosition::new(5, 5))
        .await
        .unwrap();
    assert_eq!(default.load_checkpoint("report").await.unwrap(), None);
    default
        .save_checkpoint("report", GlobalPosition::new(2, 2))
        .await
        .unwrap();
    assert_eq!(
        acme.load_checkpoint("report").await.unwrap(),
        Some(GlobalPosition::new(5, 5))
    );
    assert_eq!(
        default.load_checkpoint("report").await.unwrap(),
        Some(GlobalPosition::new(2, 2))
    );
}

// ---------------------------------------------------------------------------------------------
// Reading a stream

#[tokio::test]
async fn reads_a_stream_forward_from_a_version_with_a_limit() {
    let s = stream("note-1");
    let store = store_with(&s, 5).await;
    let read = |r| store.read_stream(&s, r);

    assert_eq!(
        versions(&read(ReadStream::forward()).await.unwrap()),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        versions(
            &read(ReadStream::forward().from(StreamVersion(3)))
                .await
                .unwrap()
        ),
        [3, 4, 5]
    );
    assert_eq!(
        versions(&read(ReadStream::forward().limit(2)).await.unwrap()),
        [1, 2]
    );
    assert_eq!(
        versions(
            &read(ReadStream::forward().from(StreamVersion(2)).limit(3))
                .await
                .unwrap()
        ),
        [2, 3, 4]
    );
    assert_eq!(
        versions(
            &read(ReadStream::forward().from(StreamVersion(5)).limit(10))
                .await
                .unwrap()
        ),
        [5]
    );
    assert!(
        read(ReadStream::forward().from(StreamVersion(6)))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        read(ReadStream::forward().limit(0))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn reads_a_stream_backward_from_a_version_with_a_limit() {
    let s = stream("note-1");
    let store = store_with(&s, 5).await;
    let read = |r| store.read_stream(&s, r);

    assert_eq!(
        versions(&read(ReadStream::backward()).await.unwrap()),
        [5, 4, 3, 2, 1]
    );
    assert_eq!(
        versions(
            &read(ReadStream::backward().from(StreamVersion(3)))
                .await
                .unwrap()
        ),
        [3, 2, 1]
    );
    assert_eq!(
        versions(&read(ReadStream::backward().limit(2)).await.unwrap()),
        [5, 4]
    );
    assert_eq!(
        versions(
            &read(ReadStream::backward().from(StreamVersion(4)).limit(2))
                .await
                .unwrap()
        ),
        [4, 3]
    );
    // Past the end going backward: from the last event.
    assert_eq!(
        versions(
            &read(ReadStream::backward().from(StreamVersion(9)).limit(2))
                .await
                .unwrap()
        ),
        [5, 4]
    );
    assert!(
        read(ReadStream::backward().limit(0))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_missing_stream_reads_as_empty() {
    let store = store_with(&stream("note-1"), 3).await;
    let missing = stream("note-2");
    for read in [
        ReadStream::forward(),
        ReadStream::backward(),
        ReadStream::forward().from(StreamVersion(2)),
        ReadStream::backward().from(StreamVersion(2)),
    ] {
        assert!(store.read_stream(&missing, read).await.unwrap().is_empty());
    }
    assert_eq!(
        store.stream_version(&missing).await.unwrap(),
        StreamVersion::NONE
    );
}

#[tokio::test]
async fn a_stream_holds_only_its_own_events() {
    let store = MemoryStore::new();
    for (name, n) in [("note-1", 2), ("note-2", 3), ("note-1", 1)] {
        store
            .append(&stream(name), ExpectedVersion::Any, raw_events("Noted", n))
            .await
            .unwrap();
    }
    let one = store
        .read_stream(&stream("note-1"), ReadStream::forward())
        .await
        .unwrap();
    assert_eq!(versions(&one), [1, 2, 3]);
    assert!(one.iter().all(|e| e.stream == stream("note-1")));
    let payloads: Vec<&str> = one.iter().map(|e| &*e.payload).collect();
    assert_eq!(payloads, [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":1}"#]);
}

// ---------------------------------------------------------------------------------------------
// Reading the global log

/// Three streams in two categories, interleaved: lead-1 (Opened, Renamed), invoice-7 (Billed),
/// lead-2 (Opened), lead-1 (StatusChanged), invoice-7 (Paid, Billed).
async fn interleaved() -> (MemoryStore, Vec<AppendResult>) {
    let store = MemoryStore::new();
    let mut results = Vec::new();
    let batches: [(&str, &[&'static str]); 5] = [
        ("lead-1", &["Opened", "Renamed"]),
        ("invoice-7", &["Billed"]),
        ("lead-2", &["Opened"]),
        ("lead-1", &["StatusChanged"]),
        ("invoice-7", &["Paid", "Billed"]),
    ];
    for (name, types) in batches {
        let events = types.iter().map(|t| NewEvent::raw(*t, 1, "{}")).collect();
        results.push(
            store
                .append(&stream(name), ExpectedVersion::Any, events)
                .await
                .unwrap(),
        );
    }
    (store, results)
}

fn summary(events: &[eventsrc::RecordedEvent]) -> Vec<(String, u64, String)> {
    events
        .iter()
        .map(|e| {
            (
                e.stream.to_string(),
                e.stream_version.get(),
                e.event_type.to_string(),
            )
        })
        .collect()
}

fn row(stream: &str, version: u64, event_type: &str) -> (String, u64, String) {
    (stream.into(), version, event_type.into())
}

#[tokio::test]
async fn read_all_returns_every_stream_in_commit_order_with_increasing_positions() {
    let (store, results) = interleaved().await;
    let all = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    assert_eq!(
        summary(&all),
        [
            row("lead-1", 1, "Opened"),
            row("lead-1", 2, "Renamed"),
            row("invoice-7", 1, "Billed"),
            row("lead-2", 1, "Opened"),
            row("lead-1", 3, "StatusChanged"),
            row("invoice-7", 2, "Paid"),
            row("invoice-7", 3, "Billed"),
        ]
    );
    assert!(
        all.windows(2)
            .all(|w| w[0].global_position < w[1].global_position)
    );
    assert!(all[0].global_position > GlobalPosition::START);
    // Each append reported the position of its last event.
    let last_of_each_batch = [1, 2, 3, 4, 6].map(|i| all[i].global_position);
    assert_eq!(
        results.iter().map(|r| r.position).collect::<Vec<_>>(),
        last_of_each_batch
    );
    assert_eq!(store.head_position().await.unwrap(), all[6].global_position);
}

#[tokio::test]
async fn read_all_starts_strictly_after_a_position_and_pages_with_a_limit() {
    let (store, _) = interleaved().await;
    let all = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();

    let rest = store
        .read_all(ReadAll::after(all[2].global_position))
        .await
        .unwrap();
    assert_eq!(summary(&rest), summary(&all[3..]));

    let page = store
        .read_all(ReadAll::after(all[1].global_position).limit(2))
        .await
        .unwrap();
    assert_eq!(summary(&page), summary(&all[2..4]));

    // Paging through with the last position seen reads everything exactly once.
    let mut after = GlobalPosition::START;
    let mut paged = Vec::new();
    loop {
        let page = store
            .read_all(ReadAll::after(after).limit(3))
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.global_position;
        paged.extend(page);
    }
    assert_eq!(paged, all);

    let head = store.head_position().await.unwrap();
    assert!(
        store
            .read_all(ReadAll::after(head))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .read_all(ReadAll::after(GlobalPosition::START).limit(0))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn read_all_filters_by_event_type() {
    let (store, _) = interleaved().await;
    let opened_or_billed = store
        .read_all(ReadAll::after(GlobalPosition::START).event_types(["Opened", "Billed"]))
        .await
        .unwrap();
    assert_eq!(
        summary(&opened_or_billed),
        [
            row("lead-1", 1, "Opened"),
            row("invoice-7", 1, "Billed"),
            row("lead-2", 1, "Opened"),
            row("invoice-7", 3, "Billed"),
        ]
    );
    // The limit counts matching events, not scanned ones.
    let two = store
        .read_all(
            ReadAll::after(GlobalPosition::START)
                .event_types(["Billed"])
                .limit(2),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&two),
        [row("invoice-7", 1, "Billed"), row("invoice-7", 3, "Billed")]
    );
    let none = store
        .read_all(ReadAll::after(GlobalPosition::START).event_types(["Nothing"]))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn read_all_filters_by_category() {
    let (store, _) = interleaved().await;
    let leads = store
        .read_all(ReadAll::after(GlobalPosition::START).categories(["lead"]))
        .await
        .unwrap();
    assert_eq!(
        summary(&leads),
        [
            row("lead-1", 1, "Opened"),
            row("lead-1", 2, "Renamed"),
            row("lead-2", 1, "Opened"),
            row("lead-1", 3, "StatusChanged"),
        ]
    );

    let lead_openings_after_first = store
        .read_all(
            ReadAll::after(leads[0].global_position)
                .categories(["lead"])
                .event_types(["Opened"]),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&lead_openings_after_first),
        [row("lead-2", 1, "Opened")]
    );

    let both = store
        .read_all(ReadAll::after(GlobalPosition::START).categories(["lead", "invoice"]))
        .await
        .unwrap();
    assert_eq!(both.len(), 7);
    // A category is the whole part before the first `-`, not a prefix.
    let prefix = store
        .read_all(ReadAll::after(GlobalPosition::START).categories(["lea"]))
        .await
        .unwrap();
    assert!(prefix.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Snapshots and checkpoints

fn snapshot(stream: &StreamId, version: u64, payload: &str) -> Snapshot {
    Snapshot {
        stream: stream.clone(),
        version: StreamVersion(version),
        state_version: 1,
        payload: payload.into(),
        taken_at: Timestamp::from_micros(1_000),
    }
}

#[tokio::test]
async fn saves_loads_and_replaces_snapshots_ignoring_older_ones() {
    let store = MemoryStore::new();
    let s = stream("lead-1");
    assert_eq!(store.load_snapshot(&s).await.unwrap(), None);

    let v3 = snapshot(&s, 3, r#"{"v":3}"#);
    store.save_snapshot(v3.clone()).await.unwrap();
    assert_eq!(store.load_snapshot(&s).await.unwrap(), Some(v3));

    let v5 = Snapshot {
        state_version: 2,
        ..snapshot(&s, 5, r#"{"v":5}"#)
    };
    store.save_snapshot(v5.clone()).await.unwrap();
    assert_eq!(store.load_snapshot(&s).await.unwrap(), Some(v5.clone()));

    store
        .save_snapshot(snapshot(&s, 4, r#"{"v":4}"#))
        .await
        .unwrap();
    assert_eq!(
        store.load_snapshot(&s).await.unwrap(),
        Some(v5),
        "an older snapshot is ignored"
    );

    // Snapshots are per stream.
    assert_eq!(store.load_snapshot(&stream("lead-2")).await.unwrap(), None);
}

#[tokio::test]
async fn saves_and_loads_checkpoints_per_subscriber() {
    let store = MemoryStore::new();
    assert_eq!(store.load_checkpoint("report").await.unwrap(), None);

    store
        .save_checkpoint("report", GlobalPosition::new(3, 4))
        .await
        .unwrap();
    store
        .save_checkpoint("mailer", GlobalPosition::new(1, 1))
        .await
        .unwrap();
    assert_eq!(
        store.load_checkpoint("report").await.unwrap(),
        Some(GlobalPosition::new(3, 4))
    );
    assert_eq!(
        store.load_checkpoint("mailer").await.unwrap(),
        Some(GlobalPosition::new(1, 1))
    );

    store
        .save_checkpoint("report", GlobalPosition::new(9, 9))
        .await
        .unwrap();
    assert_eq!(
        store.load_checkpoint("report").await.unwrap(),
        Some(GlobalPosition::new(9, 9))
    );

    // A clone shares the data.
    let clone = store.clone();
    assert_eq!(
        clone.load_checkpoint("mailer").await.unwrap(),
        Some(GlobalPosition::new(1, 1))
    );
}

// ---------------------------------------------------------------------------------------------
// What is recorded

#[tokio::test]
async fn recorded_at_comes_from_the_store_clock() {
    let start = Timestamp::from_micros(1_700_000_000_000_000);
    let clock = ManualClock::new(start);
    let store = MemoryStore::with_clock(clock.clone());
    let s = stream("note-1");

    let first = store
        .append(&s, ExpectedVersion::Any, raw_events("Noted", 2))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(90));
    let second = store
        .append(&s, ExpectedVersion::Any, raw_events("Noted", 1))
        .await
        .unwrap();

    assert_eq!(first.recorded_at, start);
    assert_eq!(second.recorded_at, start + Duration::from_secs(90));
    let events = store.read_stream(&s, ReadStream::forward()).await.unwrap();
    let times: Vec<Timestamp> = events.iter().map(|e| e.recorded_at).collect();
    assert_eq!(times, [start, start, second.recorded_at]);
}

#[tokio::test]
async fn every_field_of_an_event_round_trips() {
    let store = MemoryStore::new().with_tenant("acme".into());
    let s = stream("lead-1410/notes");
    let correlation = Uuid::now_v7();
    let causation = Uuid::now_v7();
    let metadata = Metadata::new()
        .with_correlation_id(correlation)
        .with_causation_id(causation)
        .with_actor("sales-rep-7")
        .with("channel", "phone")
        .with("attempt", 3)
        .with(
            "tags",
            serde_json::json!({"hot": true, "sources": ["fair", "web"]}),
        );
    let new = NewEvent::raw("lead.note_added", 4, r#"{"text":"called, \"busy\" ✓"}"#)
        .with_metadata(metadata.clone());

    let appended = store
        .append(&s, ExpectedVersion::NoStream, vec![new.clone()])
        .await
        .unwrap();
    let events = store.read_stream(&s, ReadStream::forward()).await.unwrap();
    let [event] = events.as_slice() else {
        panic!("one event expected, got {events:?}")
    };
    assert_eq!(event.event_id, new.event_id);
    assert_eq!(event.stream, s);
    assert_eq!(event.stream.category(), "lead");
    assert_eq!(event.stream_version, StreamVersion(1));
    assert_eq!(event.global_position, appended.position);
    assert_eq!(event.tenant.as_str(), "acme");
    assert_eq!(&*event.event_type, "lead.note_added");
    assert_eq!(event.schema_version, 4);
    assert_eq!(&*event.payload, r#"{"text":"called, \"busy\" ✓"}"#);
    assert_eq!(event.metadata, metadata);
    assert_eq!(event.metadata.correlation_id, Some(correlation));
    assert_eq!(event.metadata.causation_id, Some(causation));
    assert_eq!(event.metadata.actor.as_deref(), Some("sales-rep-7"));
    assert_eq!(
        event.metadata.get("tags"),
        Some(&serde_json::json!({"hot": true, "sources": ["fair", "web"]}))
    );
    assert_eq!(event.recorded_at, appended.recorded_at);
    assert!(event.same_content(&new));

    // The global log returns the same record.
    let all = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    assert_eq!(all, events);
}

/// Records of one batch share what they have in common; an event whose metadata differs from
/// the one before it keeps its own, in every read and in the idempotency check of a retry.
#[tokio::test]
async fn each_event_of_a_batch_keeps_its_own_metadata() {
    let store = MemoryStore::new();
    let cart = stream("cart-1");
    let actors = ["ada", "ada", "grace", "ada"];
    let batch: Vec<NewEvent> = actors
        .iter()
        .map(|actor| {
            NewEvent::raw("Noted", 1, "{}").with_metadata(Metadata::new().with_actor(*actor))
        })
        .collect();
    store
        .append(&cart, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let read = store
        .read_stream(&cart, ReadStream::forward())
        .await
        .unwrap();
    let stored: Vec<_> = read.iter().map(|e| e.metadata.actor.as_deref()).collect();
    assert_eq!(stored, actors.map(Some));
    let all = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    let stored: Vec<_> = all.iter().map(|e| e.metadata.actor.as_deref()).collect();
    assert_eq!(stored, actors.map(Some));

    // The same batch again is a retry; with one event's metadata changed it is not.
    let retried = store
        .append(&cart, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert!(retried.already_stored);
    let mut changed = batch;
    changed[2].metadata = Metadata::new().with_actor("ada");
    assert!(
        store
            .append(&cart, ExpectedVersion::NoStream, changed)
            .await
            .is_err()
    );

    // A later append whose first event's metadata equals the stream's last event's, then one
    // whose metadata differs: each event still reads back with its own.
    let later: Vec<NewEvent> = ["ada", "alan"]
        .iter()
        .map(|actor| {
            NewEvent::raw("Noted", 1, "{}").with_metadata(Metadata::new().with_actor(*actor))
        })
        .collect();
    store
        .append(&cart, ExpectedVersion::Any, later)
        .await
        .unwrap();
    store
        .append(&cart, ExpectedVersion::Any, raw_events("Noted", 1))
        .await
        .unwrap();
    let read = store
        .read_stream(&cart, ReadStream::forward())
        .await
        .unwrap();
    let stored: Vec<_> = read.iter().map(|e| e.metadata.actor.as_deref()).collect();
    assert_eq!(
        stored,
        [
            Some("ada"),
            Some("ada"),
            Some("grace"),
            Some("ada"),
            Some("ada"),
            Some("alan"),
            None
        ]
    );
}

/// A conflicting first append leaves no stream behind, and the append signal moves for a
/// reader that holds it even though appends made before it subscribed moved nothing.
#[tokio::test]
async fn a_refused_append_leaves_no_stream_and_the_signal_moves_for_its_holder() {
    let store = MemoryStore::new();
    let cart = stream("cart-2");
    store
        .append(&cart, ExpectedVersion::NoStream, raw_events("Noted", 1))
        .await
        .unwrap();
    let missing = stream("cart-3");
    let refused = store
        .append(
            &missing,
            ExpectedVersion::StreamExists,
            raw_events("Noted", 1),
        )
        .await;
    assert!(refused.is_err());
    assert_eq!(
        store.stream_version(&missing).await.unwrap(),
        StreamVersion::NONE
    );
    store
        .append(&missing, ExpectedVersion::NoStream, raw_events("Noted", 1))
        .await
        .unwrap();

    let mut signal = store.append_signal().await.unwrap().unwrap();
    assert!(!signal.has_changed().unwrap());
    store
        .append(&cart, ExpectedVersion::Any, raw_events("Noted", 1))
        .await
        .unwrap();
    assert!(signal.has_changed().unwrap());
    signal.borrow_and_update();
    assert!(!signal.has_changed().unwrap());
}

/// A handle made for another tenant from one that has appended (and so knows where its
/// tenant's log is) appends to its own tenant's log, and so do clones of either.
#[tokio::test]
async fn a_tenant_handle_from_a_handle_that_appended_appends_to_its_own_log() {
    let store = MemoryStore::new();
    let cart = stream("cart-7");
    store
        .append(&cart, ExpectedVersion::NoStream, raw_events("Noted", 2))
        .await
        .unwrap();
    let acme = store.with_tenant(Tenant::new("acme"));
    let appended = acme
        .append(&cart, ExpectedVersion::NoStream, raw_events("Noted", 1))
        .await
        .unwrap();
    assert_eq!(appended.stream_version, StreamVersion(1));
    let back = acme.with_tenant(Tenant::default());
    let appended = back
        .clone()
        .append(
            &cart,
            ExpectedVersion::Exact(StreamVersion(2)),
            raw_events("Noted", 1),
        )
        .await
        .unwrap();
    assert_eq!(appended.stream_version, StreamVersion(3));
    assert_eq!(acme.stream_version(&cart).await.unwrap(), StreamVersion(1));
    assert_eq!(store.stream_version(&cart).await.unwrap(), StreamVersion(3));
    let all = acme
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].tenant.as_str(), "acme");
}
