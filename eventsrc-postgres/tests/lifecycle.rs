//! Deleting and truncating streams on PostgreSQL, beyond the conformance cases: what a
//! tombstone leaves in the tables, removals racing appends on the same stream, the marker
//! through inline projections and NOTIFY, and a schema upgraded from the version before
//! `archived_events`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use eventsrc::store::{
    Deletion, Lifecycle, ReadAll, ReadStream, STREAM_DELETED, STREAM_TOMBSTONED, StreamAppend,
    StreamDeleted, StreamTombstoned,
};
use eventsrc::{
    EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent, SnapshotStore,
    StoreError, StreamId, StreamVersion,
};
use eventsrc_postgres::deadpool_postgres::Transaction;
use eventsrc_postgres::{PgEventStore, PgProjection, SCHEMA_VERSION, schema};
use support::{TestSchema, until};

/// How long a test waits for an outcome before it fails.
const WAIT: Duration = Duration::from_secs(10);

fn cart(id: u32) -> StreamId {
    StreamId::new("cart", id).unwrap()
}

/// An event whose payload carries `word`, so that a query can look for it in any table.
fn carrying(word: &str) -> NewEvent {
    NewEvent::raw("ItemAdded", 1, format!(r#"{{"sku":"{word}"}}"#))
}

/// `n` events [`carrying`] `word`.
fn batch(word: &str, n: u32) -> Vec<NewEvent> {
    (0..n).map(|_| carrying(word)).collect()
}

/// How many rows of every table of the schema mention `word`, by table (only those that do).
async fn mentions(test: &TestSchema, word: &str) -> BTreeMap<String, i64> {
    let tables: Vec<String> = test
        .client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
            &[&test.name],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        tables.iter().any(|table| table == "archived_events"),
        "{tables:?}"
    );
    let mut found = BTreeMap::new();
    for table in tables {
        // A row cast to text holds every column: payloads, metadata, snapshots alike.
        let count: i64 = test
            .client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} AS r WHERE strpos(r::text, $1) > 0",
                    test.table(&format!("\"{table}\""))
                ),
                &[&word],
            )
            .await
            .unwrap()
            .get(0);
        if count > 0 {
            found.insert(table, count);
        }
    }
    found
}

/// How many rows of `table` hold `stream` of the default tenant.
async fn rows_of(test: &TestSchema, table: &str, stream: &StreamId) -> i64 {
    test.client
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE tenant = 'default' AND stream = $1",
                test.table(table)
            ),
            &[&stream.as_str()],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_tombstone_leaves_no_removed_payload_in_any_table() {
    let Some(test) = TestSchema::new("a_tombstone_leaves_no_removed_payload_in_any_table").await
    else {
        return;
    };
    let store = test.store().await;
    let (doomed, bystander) = (cart(1), cart(2));
    let secret = format!("secret-{}", EventId::new().0.simple());
    let kept = format!("kept-{}", EventId::new().0.simple());
    store
        .append(&doomed, ExpectedVersion::NoStream, batch(&secret, 4))
        .await
        .unwrap();
    store
        .append(&bystander, ExpectedVersion::NoStream, vec![carrying(&kept)])
        .await
        .unwrap();
    // Every place a removed event can be: truncated into the archive, soft-deleted into it,
    // still in the log after a restart, and a snapshot.
    store
        .truncate_before(&doomed, StreamVersion(3))
        .await
        .unwrap();
    store
        .delete_stream(&doomed, ExpectedVersion::Any, Deletion::Soft)
        .await
        .unwrap();
    store
        .append(&doomed, ExpectedVersion::NoStream, batch(&secret, 2))
        .await
        .unwrap();
    store
        .save_snapshot(eventsrc::store::Snapshot {
            stream: doomed.clone(),
            version: StreamVersion(7),
            state_version: 1,
            payload: format!(r#"{{"last":"{secret}"}}"#),
            taken_at: eventsrc::Timestamp::from_micros(1_700_000_000_000_000),
        })
        .await
        .unwrap();
    let before = mentions(&test, &secret).await;
    assert_eq!(
        (before.get("events"), before.get("archived_events")),
        (Some(&2), Some(&4)),
        "the test puts the secret where it means to: {before:?}"
    );

    let tombstone = store
        .delete_stream(
            &doomed,
            ExpectedVersion::Exact(StreamVersion(7)),
            Deletion::Tombstone,
        )
        .await
        .unwrap();
    assert_eq!(
        (tombstone.version, tombstone.removed),
        (StreamVersion::TOMBSTONE, 3)
    );
    assert_eq!(
        mentions(&test, &secret).await,
        BTreeMap::new(),
        "a removed payload is left somewhere"
    );
    // Straight from the two tables of events: only the marker is left of the stream.
    assert_eq!(rows_of(&test, "events", &doomed).await, 1);
    assert_eq!(rows_of(&test, "archived_events", &doomed).await, 0);
    let marker = test
        .client
        .query_one(
            &format!(
                "SELECT event_type, stream_version, payload::text FROM {} \
                 WHERE tenant = 'default' AND stream = $1",
                test.table("events")
            ),
            &[&doomed.as_str()],
        )
        .await
        .unwrap();
    let (kind, version, payload): (String, i64, String) =
        (marker.get(0), marker.get(1), marker.get(2));
    assert_eq!(
        (kind.as_str(), version, payload.as_str()),
        (STREAM_TOMBSTONED, i64::MAX, r#"{"through":7}"#)
    );
    // Refused from the version alone, batches too (their versions would pass `bigint`).
    let refused = store
        .append(&doomed, ExpectedVersion::Any, batch("late", 3))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Tombstoned { .. })),
        "{refused:?}"
    );
    let parts = vec![
        StreamAppend::new(
            doomed.clone(),
            ExpectedVersion::StreamExists,
            batch("late", 2),
        ),
        StreamAppend::new(cart(5), ExpectedVersion::Any, vec![]),
    ];
    let refused = store.append_streams(parts).await;
    assert!(
        matches!(refused, Err(StoreError::Tombstoned { .. })),
        "{refused:?}"
    );
    assert_eq!(rows_of(&test, "events", &doomed).await, 1);
    // The bystander keeps everything.
    assert_eq!(mentions(&test, &kept).await.get("events"), Some(&1));
    test.drop().await;
}

/// What one appender did: the events each successful append stored, by its result, and the
/// errors of the others.
#[derive(Default)]
struct Appended {
    stored: Vec<(Vec<EventId>, StreamVersion, StreamVersion)>,
    refused: Vec<StoreError>,
}

/// Appends to `stream` until `stop` says so or the stream is tombstoned: batches of one or
/// two events, expecting `Any`, the version just read, or `NoStream` (which starts a
/// soft-deleted stream again), and every fourth across streams.
async fn keep_appending(
    store: PgEventStore,
    stream: StreamId,
    task: u32,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Appended {
    let mut done = Appended::default();
    for n in 0u32.. {
        if *stop.borrow() {
            break;
        }
        let events = batch("raced", 1 + n % 2);
        let ids: Vec<EventId> = events.iter().map(|e| e.event_id).collect();
        let expected = match (n + task) % 3 {
            0 => ExpectedVersion::Any,
            1 => ExpectedVersion::Exact(store.stream_version(&stream).await.unwrap()),
            _ => ExpectedVersion::NoStream,
        };
        let result = if n % 4 == 3 {
            let other = cart(1000 + task * 1000 + n);
            let parts = vec![
                StreamAppend::new(stream.clone(), expected, events),
                StreamAppend::new(other, ExpectedVersion::NoStream, vec![carrying("other")]),
            ];
            store.append_streams(parts).await.map(|results| results[0])
        } else {
            store.append(&stream, expected, events).await
        };
        match result {
            Ok(appended) => {
                assert!(!appended.already_stored);
                done.stored
                    .push((ids, appended.first_version, appended.stream_version));
            }
            Err(StoreError::Tombstoned { .. }) => {
                done.refused.push(StoreError::Tombstoned {
                    stream: stream.clone(),
                });
                break;
            }
            Err(error @ StoreError::WrongExpectedVersion { .. }) => done.refused.push(error),
            Err(error) => panic!("an append racing removals failed otherwise: {error:?}"),
        }
    }
    done
}

/// Four tasks [`keep_appending`] to `stream` until `stop` says so (or the stream is
/// tombstoned).
fn appenders(
    store: &PgEventStore,
    stream: &StreamId,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Appended>> {
    (0..4)
        .map(|task| {
            tokio::spawn(keep_appending(
                store.clone(),
                stream.clone(),
                task,
                stop.clone(),
            ))
        })
        .collect()
}

/// Every stored event of `stream`, archived and still in the log, by version; fails on a
/// version held twice.
async fn every_version(store: &PgEventStore, stream: &StreamId) -> BTreeMap<u64, RecordedEvent> {
    let archived = store.read_archive(stream).await.unwrap();
    let live = store
        .read_stream(stream, ReadStream::forward())
        .await
        .unwrap();
    let mut all = BTreeMap::new();
    for event in archived.into_iter().chain(live) {
        let version = event.stream_version.get();
        if let Some(twice) = all.insert(version, event) {
            panic!("version {version} is stored twice: {twice:?}");
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soft_deletes_racing_appends_on_one_stream_end_consistent() {
    let Some(test) =
        TestSchema::new("soft_deletes_racing_appends_on_one_stream_end_consistent").await
    else {
        return;
    };
    let store = test.store().await;
    let stream = cart(7);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let appenders = appenders(&store, &stream, &stopped);
    let mut deletions = Vec::new();
    for round in 1..=4u64 {
        let reached = store.stream_version(&stream).await.unwrap().get() + 10;
        until("appends between deletions", WAIT, || async {
            store.stream_version(&stream).await.unwrap().get() >= reached
        })
        .await;
        // Each way a deletion is asked for: any version, and the version just read (which a
        // racing append may make stale).
        let expected = match round % 2 {
            0 => ExpectedVersion::Any,
            _ => ExpectedVersion::Exact(store.stream_version(&stream).await.unwrap()),
        };
        match store.delete_stream(&stream, expected, Deletion::Soft).await {
            Ok(deleted) => deletions.push(deleted),
            Err(StoreError::WrongExpectedVersion { .. }) => {}
            Err(error) => panic!("a deletion racing appends failed otherwise: {error:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(true).unwrap();
    let mut appended = Vec::new();
    for appender in appenders {
        appended.push(appender.await.unwrap());
    }
    assert!(!deletions.is_empty(), "no deletion went through");

    let all = every_version(&store, &stream).await;
    let newest = store.stream_version(&stream).await.unwrap().get();
    assert_eq!(
        all.keys().copied().collect::<Vec<_>>(),
        (1..=newest).collect::<Vec<_>>(),
        "versions are dense from the first, archived or not"
    );
    // Every successful append is stored once, where it said; no other event is.
    let mut expected_ids = BTreeSet::new();
    for (ids, first, last) in appended.iter().flat_map(|a| &a.stored) {
        assert_eq!(
            last.get() - first.get() + 1,
            ids.len() as u64,
            "an append's versions"
        );
        for (id, version) in ids.iter().zip(first.get()..) {
            let stored = &all[&version];
            assert_eq!(stored.event_id, *id, "the event stored at {version}");
            expected_ids.insert(*id);
        }
    }
    for deleted in &deletions {
        let marker = &all[&deleted.version.get()];
        assert_eq!(marker.event_type.as_ref(), STREAM_DELETED);
        assert_eq!(marker.global_position, deleted.position);
        let through: StreamDeleted = marker.decode().unwrap();
        assert_eq!(through.through.get() + 1, deleted.version.get());
        expected_ids.insert(marker.event_id);
    }
    let stored_ids: BTreeSet<EventId> = all.values().map(|e| e.event_id).collect();
    assert_eq!(stored_ids, expected_ids, "no event lost, none extra");
    assert_eq!(all.len(), stored_ids.len(), "no event stored twice");
    // Whatever is still in the log starts at the last marker and is dense after it.
    let last = deletions.last().unwrap();
    let live = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    assert_eq!(live[0].stream_version, last.version);
    assert_eq!(live[0].event_type.as_ref(), STREAM_DELETED);
    for (event, version) in live.iter().zip(last.version.get()..) {
        assert_eq!(event.stream_version.get(), version);
    }
    // Everything before it went to the archive, the markers of earlier deletions too.
    let archived = store.read_archive(&stream).await.unwrap();
    assert_eq!(archived.len() as u64, last.version.get() - 1);
    test.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tombstone_racing_appends_on_one_stream_ends_them_all() {
    let Some(test) =
        TestSchema::new("a_tombstone_racing_appends_on_one_stream_ends_them_all").await
    else {
        return;
    };
    let store = test.store().await;
    let stream = cart(9);
    let (_stop, never) = tokio::sync::watch::channel(false);
    let appenders = appenders(&store, &stream, &never);
    until("appends before the tombstone", WAIT, || async {
        store.stream_version(&stream).await.unwrap().get() >= 30
    })
    .await;
    let tombstone = store
        .delete_stream(&stream, ExpectedVersion::Any, Deletion::Tombstone)
        .await
        .unwrap();
    let mut appended = Vec::new();
    for appender in appenders {
        // Each appender stops at its first `Tombstoned`.
        appended.push(
            tokio::time::timeout(WAIT, appender)
                .await
                .expect("an appender went on after the tombstone")
                .unwrap(),
        );
    }
    let marker: StreamTombstoned = {
        let live = store
            .read_stream(&stream, ReadStream::forward())
            .await
            .unwrap();
        assert_eq!(live.len(), 1, "only the tombstone is left: {live:?}");
        assert_eq!(live[0].stream_version, StreamVersion::TOMBSTONE);
        assert_eq!(live[0].global_position, tombstone.position);
        live[0].decode().unwrap()
    };
    assert_eq!(rows_of(&test, "events", &stream).await, 1);
    assert_eq!(rows_of(&test, "archived_events", &stream).await, 0);
    // Every append that succeeded came before the tombstone and was removed by it: their
    // versions are exactly those it says it removed, none after.
    let mut versions: Vec<u64> = appended
        .iter()
        .flat_map(|a| &a.stored)
        .flat_map(|(_, first, last)| first.get()..=last.get())
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=marker.through.get()).collect::<Vec<_>>());
    assert_eq!(tombstone.removed, marker.through.get());
    for done in &appended {
        assert!(
            matches!(done.refused.last(), Some(StoreError::Tombstoned { .. })),
            "every appender ended on the tombstone"
        );
    }
    test.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_behind_an_open_writer_gives_up_and_leaves_appends_going() {
    let Some(test) = TestSchema::new("a_removal_behind_an_open_writer_gives_up").await else {
        return;
    };
    let store = test.store().await;
    let (stream, other) = (cart(1), cart(2));
    store
        .append(&stream, ExpectedVersion::NoStream, vec![carrying("a")])
        .await
        .unwrap();
    // A transaction writing events left open, as a forgotten session would: its lock is
    // what matters (taken without writing, so that it holds no reader of the log back, which
    // an open transaction id would, for every test on the server).
    test.client
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {} IN ROW EXCLUSIVE MODE",
            test.table("events")
        ))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let deleting = {
        let store = store.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            store
                .delete_stream(&stream, ExpectedVersion::Any, Deletion::Soft)
                .await
        })
    };
    // An append while the removal waits for its lock queues behind it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let appending = {
        let (store, other) = (store.clone(), other.clone());
        tokio::spawn(async move {
            store
                .append(&other, ExpectedVersion::NoStream, vec![carrying("b")])
                .await
        })
    };
    let refused = tokio::time::timeout(WAIT, deleting).await.unwrap().unwrap();
    match refused {
        Err(StoreError::Backend(error)) => {
            assert!(error.to_string().contains("waited"), "{error}");
        }
        other => panic!("expected the lock to be given up, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        store.stream_version(&stream).await.unwrap(),
        StreamVersion(1)
    );
    // Once it gave up, the append queued behind it goes on.
    tokio::time::timeout(WAIT, appending)
        .await
        .expect("the append stayed behind the removal that gave up")
        .unwrap()
        .unwrap();
    test.client.batch_execute("ROLLBACK").await.unwrap();
    let deleted = store
        .delete_stream(&stream, ExpectedVersion::Any, Deletion::Soft)
        .await
        .unwrap();
    assert_eq!(deleted.version, StreamVersion(2));
    test.drop().await;
}

/// An inline read model of deletion markers: stream, marker version and what it removed.
#[derive(Clone)]
struct Deletions {
    table: String,
    refuse: bool,
}

impl PgProjection for Deletions {
    const NAME: &'static str = "deletions";
    type Event = StreamDeleted;
    type Error = std::io::Error;

    async fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (stream text, version bigint, through bigint)",
            self.table
        ))
        .await
        .map_err(std::io::Error::other)
    }

    async fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: StreamDeleted,
        record: &RecordedEvent,
    ) -> Result<(), Self::Error> {
        if self.refuse {
            return Err(std::io::Error::other("this read model refuses deletions"));
        }
        tx.execute(
            &format!("INSERT INTO {} VALUES ($1, $2, $3)", self.table),
            &[
                &record.stream.as_str(),
                &(record.stream_version.get() as i64),
                &(event.through.get() as i64),
            ],
        )
        .await
        .map(drop)
        .map_err(std::io::Error::other)
    }
}

#[tokio::test]
async fn a_marker_goes_through_inline_projections_and_wakes_listeners() {
    let Some(test) =
        TestSchema::new("a_marker_goes_through_inline_projections_and_wakes_listeners").await
    else {
        return;
    };
    let plain = test.store().await;
    let table = test.table("deletions");
    let refusing = plain
        .with_inline(Deletions {
            table: table.clone(),
            refuse: true,
        })
        .await
        .unwrap();
    let store = plain
        .with_inline(Deletions {
            table: table.clone(),
            refuse: false,
        })
        .await
        .unwrap();
    let stream = cart(3);
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![carrying("a"), carrying("b")],
        )
        .await
        .unwrap();

    // A read model refusing the marker refuses the deletion, which then removes nothing.
    let refused = refusing
        .delete_stream(&stream, ExpectedVersion::Any, Deletion::Soft)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Refused { .. })),
        "{refused:?}"
    );
    assert_eq!(
        plain.stream_version(&stream).await.unwrap(),
        StreamVersion(2)
    );
    assert_eq!(plain.read_archive(&stream).await.unwrap(), []);

    let mut woken = plain.notifications().await.unwrap();
    woken.borrow_and_update();
    let deleted = store
        .delete_stream(&stream, ExpectedVersion::Any, Deletion::Soft)
        .await
        .unwrap();
    let row = test
        .client
        .query_one(
            &format!("SELECT stream, version, through FROM {table}"),
            &[],
        )
        .await
        .unwrap();
    let (name, version, through): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (name.as_str(), version, through),
        (stream.as_str(), deleted.version.get() as i64, 2),
        "the marker was applied in the deletion's transaction"
    );
    tokio::time::timeout(WAIT, woken.changed())
        .await
        .expect("no notification after the deletion")
        .unwrap();
    // A retried deletion writes nothing, so applies nothing.
    let again = store
        .delete_stream(&stream, ExpectedVersion::Any, Deletion::Soft)
        .await
        .unwrap();
    assert!(again.already_deleted);
    let rows: i64 = test
        .client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    test.drop().await;
}

#[tokio::test]
async fn a_truncation_stops_readers_behind_it_and_its_cut_never_moves_back() {
    let Some(test) = TestSchema::new("a_truncation_stops_readers_behind_it").await else {
        return;
    };
    let store = test.store().await;
    let (a, b) = (cart(1), cart(2));
    for stream in [&a, &b] {
        store
            .append(stream, ExpectedVersion::NoStream, batch("x", 3))
            .await
            .unwrap();
    }
    // A reader part of the way: it has read the first event of `a`.
    let first = store
        .read_all(ReadAll::after(GlobalPosition::START).limit(1))
        .await
        .unwrap()[0]
        .global_position;
    store.truncate_before(&b, StreamVersion(2)).await.unwrap();
    let b1 = store.read_archive(&b).await.unwrap()[0].global_position;
    assert_eq!(store.truncated_through().await.unwrap(), b1);
    match store.read_all(ReadAll::after(first)).await {
        Err(StoreError::Truncated { after, through }) => assert_eq!((after, through), (first, b1)),
        other => panic!("a page behind the cut: expected Truncated, got {other:?}"),
    }
    // Truncating events earlier in the log leaves the cut where it is.
    let truncated = store.truncate_before(&a, StreamVersion(3)).await.unwrap();
    assert_eq!(truncated.archived, 2);
    assert_eq!(store.truncated_through().await.unwrap(), b1);
    let rest = store.read_all(ReadAll::after(b1)).await.unwrap();
    let rest: Vec<(String, u64)> = rest
        .iter()
        .map(|e| (e.stream.to_string(), e.stream_version.get()))
        .collect();
    assert_eq!(
        rest,
        [("cart-2".to_owned(), 2), ("cart-2".to_owned(), 3),],
        "a reader past the cut reads on"
    );
    test.drop().await;
}

#[tokio::test]
async fn a_schema_upgraded_from_the_previous_version_keeps_its_events_and_deletes() {
    let Some(test) = TestSchema::new("a_schema_upgraded_from_the_previous_version").await else {
        return;
    };
    let previous = SCHEMA_VERSION - 1;
    test.client
        .batch_execute(&format!(
            "BEGIN;\n{}\nCOMMIT;",
            schema::ddl_up_to(&test.name, previous)
        ))
        .await
        .unwrap();
    // Events as a build of the previous version wrote them: three streams of three.
    let events = test.table("events");
    test.client
        .batch_execute(&format!(
            "INSERT INTO {events} (tenant, stream, category, stream_version, event_id, \
                 event_type, schema_version, payload) \
             SELECT 'default', 'cart-' || s, 'cart', v, \
                 ('00000000-0000-4000-8000-' || lpad(to_hex(s * 10 + v), 12, '0'))::uuid, \
                 'ItemAdded', 1, '{{\"sku\":\"old\"}}' \
             FROM generate_series(1, 3) AS s, generate_series(1, 3) AS v"
        ))
        .await
        .unwrap();

    // Connecting migrates it.
    let store = test.store().await;
    let versions: Vec<i32> = test
        .client
        .query(
            &format!(
                "SELECT version FROM {} ORDER BY version",
                test.table("migrations")
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let log = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    assert_eq!(log.len(), 9, "every event of the old schema is read");
    assert_eq!(
        store.truncated_through().await.unwrap(),
        GlobalPosition::START
    );

    let one = cart(1);
    let old = store
        .read_stream(&one, ReadStream::forward())
        .await
        .unwrap();
    let deleted = store
        .delete_stream(
            &one,
            ExpectedVersion::Exact(StreamVersion(3)),
            Deletion::Soft,
        )
        .await
        .unwrap();
    assert_eq!((deleted.version, deleted.removed), (StreamVersion(4), 3));
    assert_eq!(store.read_archive(&one).await.unwrap(), old);
    let restarted = store
        .append(&one, ExpectedVersion::NoStream, vec![carrying("new")])
        .await
        .unwrap();
    assert_eq!(restarted.first_version, StreamVersion(5));

    let two = cart(2);
    store
        .delete_stream(&two, ExpectedVersion::Any, Deletion::Tombstone)
        .await
        .unwrap();
    let refused = store
        .append(&two, ExpectedVersion::Any, vec![carrying("late")])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Tombstoned { .. })),
        "{refused:?}"
    );

    let three = cart(3);
    let cut = store
        .truncate_before(&three, StreamVersion(3))
        .await
        .unwrap();
    assert_eq!(cut.archived, 2);
    assert!(matches!(
        store.read_all(ReadAll::after(GlobalPosition::START)).await,
        Err(StoreError::Truncated { .. })
    ));
    test.drop().await;
}
