//! Deleting and truncating streams on SQLite, beyond the conformance cases: the archive is in
//! the file, an older schema migrates to one that can delete, a tombstone leaves no removed
//! payload in any table, a marker goes through inline projections like an appended event, an
//! inline projection catching up behind a truncation stops with the typed error, and no
//! append or marker passes the tombstone's version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TempDir, counted, stream};
use eventsrc::store::{
    Deletion, Lifecycle, ReadAll, ReadStream, STREAM_DELETED, STREAM_TOMBSTONED, StreamDeleted,
};
use eventsrc::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent,
    RunError, StoreError, StreamVersion, Tenant, Tenants,
};
use eventsrc_sqlite::rusqlite::{self, Connection, Transaction, params};
use eventsrc_sqlite::{SCHEMA_VERSION, SqliteEventStore, SqliteProjection, schema};

/// Every event of the log, read knowingly past any truncation.
async fn whole_log(store: &SqliteEventStore) -> Vec<RecordedEvent> {
    store
        .read_all(ReadAll::after(GlobalPosition::START).allow_truncated())
        .await
        .unwrap()
}

async fn read(store: &SqliteEventStore, id: u32) -> Vec<RecordedEvent> {
    store
        .read_stream(&stream(id), ReadStream::forward())
        .await
        .unwrap()
}

fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.stream_version.get()).collect()
}

/// Counter 1 with two events, at versions 1 and 2: where most cases start.
async fn two_events(store: &SqliteEventStore) {
    store
        .append(
            &stream(1),
            ExpectedVersion::NoStream,
            vec![counted(1), counted(2)],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_archive_and_the_truncation_survive_closing_and_reopening_the_file() {
    let dir = TempDir::new("lifecycle-reopen");
    let store = SqliteEventStore::open(dir.file()).await.unwrap();
    let (deleted, cut) = (stream(1), stream(2));
    let three = || vec![counted(1), counted(2), counted(3)];
    store
        .append(&deleted, ExpectedVersion::NoStream, three())
        .await
        .unwrap();
    store
        .append(&cut, ExpectedVersion::NoStream, three())
        .await
        .unwrap();
    store
        .delete_stream(
            &deleted,
            ExpectedVersion::Exact(StreamVersion(3)),
            Deletion::Soft,
        )
        .await
        .unwrap();
    store.truncate_before(&cut, StreamVersion(3)).await.unwrap();
    let archives = (
        store.read_archive(&deleted).await.unwrap(),
        store.read_archive(&cut).await.unwrap(),
    );
    assert_eq!((archives.0.len(), archives.1.len()), (3, 2));
    let through = store.truncated_through().await.unwrap();
    assert_eq!(through, archives.1[1].global_position);
    drop(store);

    let store = SqliteEventStore::open(dir.file()).await.unwrap();
    let reopened = (
        store.read_archive(&deleted).await.unwrap(),
        store.read_archive(&cut).await.unwrap(),
    );
    assert_eq!(reopened, archives, "the archive is in the file");
    assert_eq!(store.truncated_through().await.unwrap(), through);
    match store.read_all(ReadAll::after(GlobalPosition::START)).await {
        Err(StoreError::Truncated { through: at, .. }) => assert_eq!(at, through),
        other => panic!("a reader behind the cut after reopening: {other:?}"),
    }
    assert_eq!(versions(&read(&store, 2).await), [3]);
    let again = store
        .append(&deleted, ExpectedVersion::NoStream, vec![counted(4)])
        .await
        .unwrap();
    assert_eq!(
        again.first_version,
        StreamVersion(5),
        "the stream starts again after its marker"
    );
}

#[tokio::test]
async fn a_version_3_database_migrates_keeping_its_events_and_deletes() {
    let dir = TempDir::new("lifecycle-v3");
    let ids: Vec<EventId> = (0..3).map(|_| EventId::new()).collect();
    {
        let conn = Connection::open(dir.file()).unwrap();
        conn.execute_batch(&format!("BEGIN;\n{}\nCOMMIT;", schema::ddl_up_to(3)))
            .unwrap();
        // Rows as a version-3 store wrote them: counter-1 at versions 1 and 2, counter-2 at 1.
        let rows = [
            (1, "counter-1", 1),
            (2, "counter-1", 2),
            (3, "counter-2", 1),
        ];
        for ((position, stream, version), id) in rows.into_iter().zip(&ids) {
            conn.execute(
                "INSERT INTO events (position, commit_seq, tenant, stream, category, \
                 stream_version, event_id, event_type, schema_version, payload, metadata, \
                 recorded_at) \
                 VALUES (?1, ?1, 'default', ?2, 'counter', ?3, ?4, 'Counted', 1, ?5, NULL, ?6)",
                params![
                    position,
                    stream,
                    version,
                    id.0.as_bytes(),
                    format!(r#"{{"by":{position}}}"#),
                    1_700_000_000_000_000_i64 + position,
                ],
            )
            .unwrap();
        }
    }

    let migrated = SqliteEventStore::migrate(dir.file()).await.unwrap();
    assert_eq!((migrated.from, migrated.to), (3, SCHEMA_VERSION));
    let store = SqliteEventStore::open(dir.file()).await.unwrap();
    let before = read(&store, 1).await;
    assert_eq!(versions(&before), [1, 2], "the events are kept");
    assert_eq!(before[1].event_id, ids[1]);
    assert_eq!(
        store.truncated_through().await.unwrap(),
        GlobalPosition::START
    );
    assert_eq!(
        store
            .read_all(ReadAll::after(GlobalPosition::START))
            .await
            .unwrap()
            .len(),
        3
    );

    let deleted = store
        .delete_stream(
            &stream(1),
            ExpectedVersion::Exact(StreamVersion(2)),
            Deletion::Soft,
        )
        .await
        .unwrap();
    assert_eq!((deleted.version, deleted.removed), (StreamVersion(3), 2));
    assert_eq!(
        deleted.position,
        GlobalPosition::new(4, 4),
        "the marker follows the migrated rows"
    );
    assert_eq!(store.read_archive(&stream(1)).await.unwrap(), before);
    let tombstone = store
        .delete_stream(&stream(2), ExpectedVersion::Any, Deletion::Tombstone)
        .await
        .unwrap();
    assert_eq!(tombstone.version, StreamVersion::TOMBSTONE);
    let refused = store
        .append(&stream(2), ExpectedVersion::Any, vec![counted(1)])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Tombstoned { .. })),
        "{refused:?}"
    );
}

/// How many rows of `table` hold `needle` in their payload.
async fn holding(store: &SqliteEventStore, table: &'static str, needle: &'static str) -> i64 {
    store
        .read_with(move |db| {
            db.query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE instr(payload, ?1) > 0"),
                [needle],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .unwrap()
}

fn secret(n: u32) -> NewEvent {
    NewEvent::raw("Noted", 1, format!(r#"{{"secret":"gone-{n}"}}"#))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tombstone_leaves_none_of_the_removed_payloads_in_either_table() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let (doomed, bystander) = (stream(1), stream(2));
    // Archived by a soft delete, then by a truncation, then still in the log: every place a
    // removed payload could stay.
    store
        .append(
            &doomed,
            ExpectedVersion::NoStream,
            vec![secret(1), secret(2)],
        )
        .await
        .unwrap();
    store
        .delete_stream(&doomed, ExpectedVersion::Any, Deletion::Soft)
        .await
        .unwrap();
    store
        .append(
            &doomed,
            ExpectedVersion::NoStream,
            vec![secret(3), secret(4), secret(5)],
        )
        .await
        .unwrap();
    store
        .truncate_before(&doomed, StreamVersion(5))
        .await
        .unwrap();
    let kept = || NewEvent::raw("Noted", 1, r#"{"secret":"kept"}"#);
    store
        .append(&bystander, ExpectedVersion::NoStream, vec![kept(), kept()])
        .await
        .unwrap();
    store
        .truncate_before(&bystander, StreamVersion(2))
        .await
        .unwrap();
    assert_eq!(holding(&store, "archived_events", "gone-").await, 3);
    assert_eq!(holding(&store, "events", "gone-").await, 2);

    let tombstone = store
        .delete_stream(
            &doomed,
            ExpectedVersion::Exact(StreamVersion(6)),
            Deletion::Tombstone,
        )
        .await
        .unwrap();
    assert_eq!(tombstone.removed, 2, "the events still in the log");
    assert_eq!(holding(&store, "events", "gone-").await, 0);
    assert_eq!(holding(&store, "archived_events", "gone-").await, 0);
    let rows: Vec<(String, i64, String)> = store
        .read_with(|db| {
            let mut rows = db.prepare(
                "SELECT event_type, stream_version, payload FROM events WHERE stream = 'counter-1'",
            )?;
            rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
    assert_eq!(
        rows,
        [(
            STREAM_TOMBSTONED.to_owned(),
            i64::MAX,
            r#"{"through":6}"#.to_owned()
        )],
        "only the tombstone is left of the stream"
    );
    // The query finds what is there: another stream's payloads, archived and in the log.
    assert_eq!(holding(&store, "archived_events", "kept").await, 1);
    assert_eq!(holding(&store, "events", "kept").await, 1);
}

/// Keeps the soft deletes it is shown in `deletions (stream, through)`; refuses them if
/// `refuse`.
#[derive(Debug, Clone)]
struct Deletions {
    refuse: bool,
}

#[derive(Debug, thiserror::Error)]
enum DeletionsError {
    #[error("refusing the deletion of `{0}`")]
    Refused(String),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

impl SqliteProjection for Deletions {
    const NAME: &'static str = "deletions";
    type Event = StreamDeleted;
    type Error = DeletionsError;

    fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), DeletionsError> {
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS deletions (tenant TEXT NOT NULL, stream TEXT NOT NULL, \
             through INTEGER NOT NULL)",
        )?;
        Ok(())
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: StreamDeleted,
        record: &RecordedEvent,
    ) -> Result<(), DeletionsError> {
        if self.refuse {
            return Err(DeletionsError::Refused(record.stream.to_string()));
        }
        tx.execute(
            "INSERT INTO deletions VALUES (?1, ?2, ?3)",
            params![
                record.tenant.as_str(),
                record.stream.as_str(),
                event.through.get() as i64
            ],
        )?;
        Ok(())
    }
}

/// The soft deletes the `deletions` read model kept.
async fn deletions(store: &SqliteEventStore) -> Vec<(String, String, i64)> {
    store
        .read_with(|db| {
            let mut rows =
                db.prepare("SELECT tenant, stream, through FROM deletions ORDER BY rowid")?;
            rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, rusqlite::Error>>()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_marker_goes_through_inline_projections_in_the_deletions_transaction() {
    let store = SqliteEventStore::open_in_memory()
        .await
        .unwrap()
        .with_inline(Deletions { refuse: false })
        .await
        .unwrap();
    two_events(&store).await;
    let deleted = store
        .delete_stream(&stream(1), ExpectedVersion::Any, Deletion::Soft)
        .await
        .unwrap();
    assert_eq!(
        deletions(&store).await,
        [("default".to_owned(), "counter-1".to_owned(), 2)],
        "the projection saw the marker"
    );
    let again = store
        .delete_stream(&stream(1), ExpectedVersion::Any, Deletion::Soft)
        .await
        .unwrap();
    assert!(again.already_deleted);
    assert_eq!(
        deletions(&store).await.len(),
        1,
        "a retried delete applies nothing"
    );
    assert_eq!(deleted.position, again.position);

    // A projection refusing the marker fails the deletion, which then changes nothing.
    let refusing = store
        .with_tenant(Tenant::new("refusing"))
        .with_inline(Deletions { refuse: true })
        .await
        .unwrap();
    refusing
        .append(&stream(1), ExpectedVersion::NoStream, vec![counted(1)])
        .await
        .unwrap();
    let refused = refusing
        .delete_stream(&stream(1), ExpectedVersion::Any, Deletion::Soft)
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let kept = refusing
        .read_stream(&stream(1), ReadStream::forward())
        .await
        .unwrap();
    assert_eq!(versions(&kept), [1], "nothing was removed");
    assert_eq!(refusing.read_archive(&stream(1)).await.unwrap(), []);
}

#[tokio::test]
async fn a_deletion_wakes_live_readers_and_a_truncation_does_not() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    two_events(&store).await;
    let mut signal = store.append_signal().await.unwrap().unwrap();
    signal.borrow_and_update();
    store
        .truncate_before(&stream(1), StreamVersion(2))
        .await
        .unwrap();
    assert!(
        !signal.has_changed().unwrap(),
        "a truncation stores no event"
    );
    store
        .delete_stream(&stream(1), ExpectedVersion::Any, Deletion::Soft)
        .await
        .unwrap();
    assert!(signal.has_changed().unwrap(), "the marker wakes readers");
    let log = whole_log(&store).await;
    assert_eq!(log.last().unwrap().event_type.as_ref(), STREAM_DELETED);
}

#[tokio::test]
async fn an_inline_projection_catching_up_behind_a_truncation_stops_with_the_typed_error() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    two_events(&store).await;
    store
        .append(&stream(2), ExpectedVersion::NoStream, vec![counted(3)])
        .await
        .unwrap();
    store
        .append(
            &stream(1),
            ExpectedVersion::Exact(StreamVersion(2)),
            vec![counted(4)],
        )
        .await
        .unwrap();
    store
        .truncate_before(&stream(1), StreamVersion(3))
        .await
        .unwrap();
    let through = store.truncated_through().await.unwrap();

    let behind = store.catch_up_inline(Deletions { refuse: false }).await;
    match behind {
        Err(RunError::Store {
            source: StoreError::Truncated { after, through: at },
            ..
        }) => assert_eq!((after, at), (GlobalPosition::START, through)),
        other => panic!("a catch-up behind the cut: expected Truncated, got {other:?}"),
    }

    // From a checkpoint at the cut, nothing is missed: it catches up.
    store
        .save_checkpoint("past-the-cut", through)
        .await
        .unwrap();
    let progress = store
        .catch_up_inline_named("past-the-cut", Deletions { refuse: false })
        .await
        .unwrap();
    assert!(progress.caught_up);
    let head = store.head_position().await.unwrap();
    assert_eq!(progress.position, Some(head), "it read on to the head");
}

#[tokio::test]
async fn no_append_or_marker_passes_the_tombstones_version() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    store
        .append(&stream(1), ExpectedVersion::NoStream, vec![counted(1)])
        .await
        .unwrap();
    // A stream one version short of the tombstone's, as no real stream gets.
    store
        .write_with(|tx| {
            tx.execute(
                "UPDATE events SET stream_version = ?1 WHERE stream = 'counter-1'",
                [i64::MAX - 1],
            )
        })
        .await
        .unwrap();
    let full = StreamVersion::TOMBSTONE.get() - 1;
    let appended = store
        .append(&stream(1), ExpectedVersion::Any, vec![counted(2)])
        .await;
    assert!(
        matches!(&appended, Err(StoreError::InvalidAppend { .. })),
        "{appended:?}"
    );
    let soft = store
        .delete_stream(&stream(1), ExpectedVersion::Any, Deletion::Soft)
        .await;
    assert!(
        matches!(&soft, Err(StoreError::InvalidAppend { .. })),
        "{soft:?}"
    );
    assert_eq!(
        store.stream_version(&stream(1)).await.unwrap(),
        StreamVersion(full),
        "nothing was stored"
    );
    let tombstone = store
        .delete_stream(
            &stream(1),
            ExpectedVersion::Exact(StreamVersion(full)),
            Deletion::Tombstone,
        )
        .await
        .unwrap();
    assert_eq!(
        (tombstone.version, tombstone.removed),
        (StreamVersion::TOMBSTONE, 1)
    );
}

#[tokio::test]
async fn damaged_archive_and_truncation_rows_are_corrupt_errors() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    two_events(&store).await;
    store
        .truncate_before(&stream(1), StreamVersion(2))
        .await
        .unwrap();
    store
        .write_with(|tx| {
            tx.execute_batch(
                "UPDATE archived_events SET payload = X'00'; \
                 UPDATE truncations SET position = 'somewhere'",
            )
        })
        .await
        .unwrap();
    match store.read_archive(&stream(1)).await {
        Err(StoreError::Corrupt {
            stream, version, ..
        }) => assert_eq!(
            (stream, version),
            (Some(common::stream(1)), Some(StreamVersion(1)))
        ),
        other => panic!("a payload stored as a blob: expected Corrupt, got {other:?}"),
    }
    for read in [
        store.truncated_through().await.map(drop),
        store
            .read_all(ReadAll::after(GlobalPosition::START))
            .await
            .map(drop),
    ] {
        assert!(matches!(read, Err(StoreError::Corrupt { .. })), "{read:?}");
    }
}
