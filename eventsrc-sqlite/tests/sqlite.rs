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

use eventsrc::store::{ReadAll, ReadStream};
use eventsrc_sqlite::{Durability, OpenError, SqliteEventStore, SqliteOptions};

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
