//! What only the SQLite backend has: a file that outlives the process, a versioned schema,
//! rows that can be corrupted behind its back, and group commit under concurrent writers.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Count, Counter, TempDir, stream};
use eventsrc::Tenants;
use eventsrc::{
    EventStore, ExpectedVersion, LoadError, Metadata, NewEvent, Repository, StoreError,
    StreamVersion,
};

use eventsrc::store::{AppendResult, ReadAll, ReadStream, StreamAppend};
use eventsrc_sqlite::{Durability, OpenError, SqliteEventStore, SqliteOptions};

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Waker};
use std::time::Duration;

/// Long enough never to be reached by a passing test, short enough to fail a hung one.
const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_reopened_file_continues_its_history() {
    let dir = TempDir::new("reopen");
    {
        let repository = Repository::new(SqliteEventStore::open(dir.file()).await.unwrap());
        repository
            .send(Count { counter: 1, by: 2 }, Metadata::new())
            .await
            .unwrap();
    }
    let repository = Repository::new(SqliteEventStore::open(dir.file()).await.unwrap());
    let committed = repository
        .send(Count { counter: 1, by: 3 }, Metadata::new())
        .await
        .unwrap();
    assert_eq!(committed.stream_version, StreamVersion(2));
    assert_eq!(repository.load::<Counter>(&1).await.unwrap().state.total, 5);
}

#[tokio::test]
async fn a_file_from_a_newer_schema_is_refused() {
    let dir = TempDir::new("newer");
    drop(SqliteEventStore::open(dir.file()).await.unwrap());
    let conn = rusqlite::Connection::open(dir.file()).unwrap();
    conn.pragma_update(None, "user_version", eventsrc_sqlite::SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match SqliteEventStore::open(dir.file()).await {
        Err(OpenError::NewerSchema { found, supported }) => {
            assert_eq!(
                (found, supported),
                (
                    eventsrc_sqlite::SCHEMA_VERSION + 1,
                    eventsrc_sqlite::SCHEMA_VERSION
                )
            );
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = TempDir::new("garbage");
    std::fs::write(
        dir.file(),
        b"this is not a database, just some bytes long enough to look like a header",
    )
    .unwrap();
    assert!(matches!(
        SqliteEventStore::open(dir.file()).await,
        Err(OpenError::Sqlite(_))
    ));
}

#[tokio::test]
async fn corrupt_rows_are_typed_errors_naming_the_event() {
    let dir = TempDir::new("corrupt");
    let store = SqliteEventStore::open(dir.file()).await.unwrap();
    let repository = Repository::new(store.clone());
    repository
        .send(Count { counter: 7, by: 1 }, Metadata::new())
        .await
        .unwrap();
    let second = repository
        .send(Count { counter: 7, by: 1 }, Metadata::new())
        .await
        .unwrap();

    let conn = rusqlite::Connection::open(dir.file()).unwrap();
    conn.execute(
        "UPDATE events SET payload = '{\"by\": ' WHERE stream_version = 2",
        [],
    )
    .unwrap();
    let error = repository.load::<Counter>(&7).await.unwrap_err();
    let LoadError::Decode(error) = error else {
        panic!("expected a decode error, got {error:?}")
    };
    assert_eq!(error.event_id, second.event_ids[0]);
    assert_eq!(error.stream, stream(7));
    assert_eq!(error.stream_version, StreamVersion(2));
    let message = error.to_string();
    assert!(message.contains("`Counted` schema version 1"), "{message}");

    conn.execute(
        "UPDATE events SET event_type = 'Vanished' WHERE stream_version = 2",
        [],
    )
    .unwrap();
    let error = repository.load::<Counter>(&7).await.unwrap_err();
    assert!(
        error.to_string().contains("unknown event type `Vanished`"),
        "{error}"
    );

    conn.execute("UPDATE events SET schema_version = 9, event_type = 'Counted', payload = '{\"by\":1}' WHERE stream_version = 2", []).unwrap();
    let error = repository.load::<Counter>(&7).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("schema version 9, newer than this code's version 1"),
        "{error}"
    );

    conn.execute(
        "UPDATE events SET event_id = x'0102' WHERE stream_version = 2",
        [],
    )
    .unwrap();
    let error = store
        .read_stream(&stream(7), ReadStream::forward())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { stream: Some(s), version: Some(StreamVersion(2)), position, .. }
            if *s == stream(7) && *position == second.global_position),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("column `event_id` holds 2 bytes, not 16"),
        "{error}"
    );
}

#[tokio::test]
async fn concurrent_appends_commit_in_groups_with_one_winner_per_version() {
    let dir = TempDir::new("group");
    let store = SqliteEventStore::open_with(
        dir.file(),
        SqliteOptions::default().durability(Durability::Normal),
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for writer in 0..8u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = 0;
            for _ in 0..20 {
                let version = store.stream_version(&stream(1)).await.unwrap();
                let event = NewEvent::raw("Counted", 1, format!("{{\"by\":{writer}}}"));
                match store
                    .append(&stream(1), ExpectedVersion::at(version), vec![event])
                    .await
                {
                    Ok(_) => won += 1,
                    Err(StoreError::WrongExpectedVersion { .. }) => {}
                    Err(other) => panic!("{other}"),
                }
                // Other streams interleave in the same groups.
                let other = NewEvent::raw("Counted", 1, "{\"by\":1}");
                store
                    .append(&stream(100 + writer), ExpectedVersion::Any, vec![other])
                    .await
                    .unwrap();
            }
            won
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += task.await.unwrap();
    }
    let events = store
        .read_stream(&stream(1), ReadStream::forward())
        .await
        .unwrap();
    assert_eq!(events.len(), won);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.stream_version, StreamVersion(i as u64 + 1));
    }
    let all = store
        .read_all(ReadAll::after(eventsrc::GlobalPosition::START).limit(10_000))
        .await
        .unwrap();
    assert_eq!(all.len(), won + 8 * 20);
    assert!(
        all.windows(2)
            .all(|w| w[0].global_position < w[1].global_position)
    );
}

#[tokio::test]
async fn a_temporary_database_is_deleted_with_its_last_handle() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let file = store.path().unwrap().to_owned();
    store
        .append(
            &stream(1),
            ExpectedVersion::Any,
            vec![NewEvent::raw("Counted", 1, "{}")],
        )
        .await
        .unwrap();
    let other = store.with_tenant("acme".into());
    drop(store);
    assert!(file.exists(), "a handle is still open");
    drop(other);
    assert!(!file.exists() && !file.parent().unwrap().exists());
}

/// Polls `future` once, which sends its request to the writer thread, and checks that it
/// waits for the answer.
fn sent<F: Future>(mut future: Pin<Box<F>>) -> Pin<Box<F>> {
    let pending = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending();
    assert!(
        pending,
        "the writer thread is busy: nothing can be answered yet"
    );
    future
}

/// Holds the writer thread in a `write_with` job until the returned sender is used (or
/// dropped): every request sent meanwhile waits, and the next turn of the writer takes them
/// all into one transaction.
async fn hold_the_writer(store: &SqliteEventStore) -> mpsc::Sender<()> {
    let (release, released) = mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let store = store.clone();
    tokio::spawn(async move {
        store
            .write_with(move |_| {
                let _ = started.send(());
                // Waiting on the test, with a deadline: a failed test does not hang the writer.
                let _ = released.recv_timeout(DEADLINE);
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    });
    tokio::time::timeout(DEADLINE, running)
        .await
        .expect("the job starts within the deadline")
        .unwrap();
    release
}

fn part(id: u32, expected: ExpectedVersion, events: usize) -> StreamAppend {
    let events = (0..events)
        .map(|_| NewEvent::raw("Counted", 1, "{\"by\":1}"))
        .collect();
    StreamAppend::new(stream(id), expected, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_across_streams_conflicting_in_a_group_leaves_its_neighbours_committed() {
    for store in [
        SqliteEventStore::open_temporary().await.unwrap(),
        SqliteEventStore::open_in_memory().await.unwrap(),
    ] {
        store
            .append(
                &stream(1),
                ExpectedVersion::NoStream,
                vec![NewEvent::raw("Counted", 1, "{\"by\":1}")],
            )
            .await
            .unwrap();
        let head = store.head_position().await.unwrap();

        let release = hold_the_writer(&store).await;
        let single = |id| {
            let part = part(id, ExpectedVersion::Any, 1);
            let store = store.clone();
            Box::pin(async move { store.append(&part.stream, part.expected, part.events).await })
        };
        let across = |parts: Vec<StreamAppend>| {
            let store = store.clone();
            Box::pin(async move { store.append_streams(parts).await })
        };
        let before = sent(single(10));
        // Its first part goes in before the second finds stream 1 at version 1: the whole
        // request rolls back to its savepoint.
        let stale = sent(across(vec![
            part(20, ExpectedVersion::NoStream, 2),
            part(1, ExpectedVersion::NoStream, 1),
        ]));
        let between = sent(single(11));
        let fresh = sent(across(vec![
            part(30, ExpectedVersion::NoStream, 2),
            part(31, ExpectedVersion::NoStream, 1),
        ]));
        let after = sent(single(12));
        release.send(()).unwrap();

        let before: AppendResult = before.await.unwrap();
        match stale.await {
            Err(StoreError::WrongExpectedVersion {
                stream: named,
                actual,
                ..
            }) => assert_eq!((named, actual), (stream(1), StreamVersion(1))),
            other => panic!("expected a conflict on counter-1, got {other:?}"),
        }
        let between = between.await.unwrap();
        let fresh = fresh.await.unwrap();
        let after = after.await.unwrap();

        // One group: one transaction, one `recorded_at`; the failed request took no position.
        for result in [&between, &fresh[0], &fresh[1], &after] {
            assert_eq!(result.recorded_at, before.recorded_at, "one group");
        }
        assert_eq!(before.position.sequence, head.sequence + 1);
        assert_eq!(between.position.sequence, before.position.sequence + 1);
        assert_eq!(
            (fresh[0].position, fresh[1].position),
            (
                eventsrc::GlobalPosition::new(
                    between.position.sequence + 1,
                    between.position.sequence + 2
                ),
                eventsrc::GlobalPosition::new(
                    between.position.sequence + 1,
                    between.position.sequence + 3
                )
            ),
            "the parts share the commit of their first event"
        );
        assert_eq!(after.position.sequence, fresh[1].position.sequence + 1);

        assert_eq!(
            store.stream_version(&stream(20)).await.unwrap(),
            StreamVersion::NONE,
            "nothing of the stale request is stored"
        );
        let log = store
            .read_all(ReadAll::after(head).limit(100))
            .await
            .unwrap();
        let streams: Vec<String> = log.iter().map(|e| e.stream.to_string()).collect();
        assert_eq!(
            streams,
            [
                "counter-10",
                "counter-11",
                "counter-30",
                "counter-30",
                "counter-31",
                "counter-12"
            ]
        );
        assert_eq!(log[2].global_position.commit, log[4].global_position.commit);
    }
}

#[tokio::test]
async fn an_append_across_streams_is_in_the_file_after_a_restart_and_its_retry_stores_nothing() {
    let dir = TempDir::new("across-reopen");
    let parts = vec![
        part(1, ExpectedVersion::NoStream, 1),
        part(2, ExpectedVersion::NoStream, 2),
    ];
    let stored = {
        let store = SqliteEventStore::open(dir.file()).await.unwrap();
        store.append_streams(parts.clone()).await.unwrap()
    };
    // A caller that never saw the answer (its process ended) retries after the restart.
    let store = SqliteEventStore::open(dir.file()).await.unwrap();
    let log = store
        .read_all(ReadAll::after(eventsrc::GlobalPosition::START))
        .await
        .unwrap();
    assert_eq!(log.len(), 3, "every part is in the file");
    assert!(
        log.iter()
            .all(|e| e.global_position.commit == stored[0].position.commit)
    );
    assert_eq!(log[2].global_position, stored[1].position);

    let mut signal = store.append_signal().await.unwrap().unwrap();
    signal.mark_unchanged();
    let again = store.append_streams(parts).await.unwrap();
    for (retried, original) in again.iter().zip(&stored) {
        assert_eq!(
            *retried,
            AppendResult {
                already_stored: true,
                ..*original
            }
        );
    }
    assert_eq!(again.len(), 2);
    assert_eq!(
        store
            .read_all(ReadAll::after(eventsrc::GlobalPosition::START))
            .await
            .unwrap()
            .len(),
        3,
        "the retry stored nothing"
    );
    assert!(
        !signal.has_changed().unwrap(),
        "a retry does not move the signal"
    );
}
