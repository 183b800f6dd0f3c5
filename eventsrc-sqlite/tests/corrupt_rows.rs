//! Rows damaged behind the store's back with raw SQL. A row of the wrong shape is a typed
//! error naming its stream, version, position and column on every read; appends that do not
//! need the row go on; a retry that needs it names it; and once the row is repaired nothing
//! is missing. A deleted row is a gap that loads refuse to fold over.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Count, Counter, counted, stream};
use eventsrc::store::{ReadAll, ReadStream, StreamAppend};
use eventsrc::{
    EventStore, ExecuteError, ExpectedVersion, GlobalPosition, LoadError, Metadata, Repository,
    StoreError, StreamVersion,
};
use eventsrc::{RecordedEvent, Timestamp};
use eventsrc_sqlite::SqliteEventStore;
use rusqlite::Connection;

/// One way to damage the second event of a stream.
struct Damage {
    column: &'static str,
    /// The SQL literal written over the column.
    value: &'static str,
    /// What the error's reason says.
    reason: &'static str,
    /// Whether the row's version still reads (not when the version itself is damaged).
    version_reads: bool,
    /// Whether the row's position still reads.
    position_reads: bool,
}

impl Damage {
    const fn of(column: &'static str, value: &'static str, reason: &'static str) -> Self {
        Self {
            column,
            value,
            reason,
            version_reads: true,
            position_reads: true,
        }
    }

    /// Whether a load, which reads only version, type, schema version and payload, meets it.
    fn seen_by_loads(&self) -> bool {
        matches!(
            self.column,
            "stream_version" | "event_type" | "schema_version" | "payload"
        )
    }
}

const DAMAGES: &[Damage] = &[
    Damage::of(
        "payload",
        "x'00ff'",
        "column `payload` holds a blob, not text",
    ),
    Damage::of(
        "event_type",
        "x'41'",
        "column `event_type` holds a blob, not text",
    ),
    Damage::of(
        "schema_version",
        "'one'",
        "column `schema_version` holds text, not an integer",
    ),
    Damage::of(
        "schema_version",
        "-3",
        "column `schema_version` holds -3, outside 0..=4294967295",
    ),
    Damage::of(
        "metadata",
        "'not json'",
        "column `metadata` is not a JSON object of metadata",
    ),
    Damage::of(
        "metadata",
        "x'7b7d'",
        "column `metadata` holds a blob, not JSON text",
    ),
    Damage::of(
        "event_id",
        "'not an id'",
        "column `event_id` holds text, not a 16-byte blob",
    ),
    Damage::of(
        "recorded_at",
        "'yesterday'",
        "column `recorded_at` holds text, not an integer",
    ),
    Damage {
        position_reads: false,
        ..Damage::of(
            "commit_seq",
            "'late'",
            "column `commit_seq` holds text, not an integer",
        )
    },
    Damage {
        version_reads: false,
        ..Damage::of(
            "stream_version",
            "'two'",
            "column `stream_version` holds text, not an integer",
        )
    },
];

/// Checks that `error` is the corrupt-row error of `damage` done to `second`.
#[track_caller]
fn assert_names(error: &StoreError, damage: &Damage, second: &RecordedEvent, during: &str) {
    let StoreError::Corrupt {
        stream,
        version,
        position,
        reason,
    } = error
    else {
        panic!(
            "{during} after damaging `{}`: expected Corrupt, got {error:?}",
            damage.column
        );
    };
    let at = format!("{during}, `{}` = {}", damage.column, damage.value);
    assert_eq!(stream.as_ref(), Some(&second.stream), "{at}: stream");
    assert_eq!(
        *version,
        damage.version_reads.then_some(second.stream_version),
        "{at}: version"
    );
    assert_eq!(
        *position,
        damage.position_reads.then_some(second.global_position),
        "{at}: position"
    );
    assert!(reason.contains(damage.reason), "{at}: {reason}");
    let message = error.to_string();
    assert!(!message.contains(" 0:0"), "{at}: {message}");
    if !damage.position_reads {
        assert!(message.contains("position unreadable"), "{at}: {message}");
    }
    if !damage.version_reads {
        assert!(message.contains("version unreadable"), "{at}: {message}");
    }
}

/// `streaming`: whether loads fold rows straight from SQLite's buffers (a multi-threaded
/// runtime) rather than from a copy read whole first.
async fn damaged_rows_are_named_and_nothing_is_lost(streaming: bool) {
    for damage in DAMAGES {
        let store = SqliteEventStore::open_temporary().await.unwrap();
        let repository = Repository::new(store.clone());
        let appended = [counted(1), counted(2), counted(4)];
        for event in &appended {
            store
                .append(&stream(7), ExpectedVersion::Any, vec![event.clone()])
                .await
                .unwrap();
        }
        store
            .append(&stream(8), ExpectedVersion::Any, vec![counted(10)])
            .await
            .unwrap();
        let before = store
            .read_stream(&stream(7), ReadStream::forward())
            .await
            .unwrap();
        let second = before[1].clone();
        let at = format!("`{}` = {}", damage.column, damage.value);

        let conn = Connection::open(store.path().unwrap()).unwrap();
        let row = second.global_position.sequence as i64;
        let original: String = conn
            .query_row(
                &format!(
                    "SELECT quote({}) FROM events WHERE position = ?1",
                    damage.column
                ),
                [row],
                |r| r.get(0),
            )
            .unwrap();
        let set = |value: &str| {
            conn.execute(
                &format!(
                    "UPDATE events SET {} = {value} WHERE position = ?1",
                    damage.column
                ),
                [row],
            )
            .unwrap();
        };
        set(damage.value);

        // Every read that meets the row names it.
        let read = store
            .read_stream(&stream(7), ReadStream::forward())
            .await
            .unwrap_err();
        assert_names(&read, damage, &second, "read_stream");
        let all = store
            .read_all(ReadAll::after(GlobalPosition::START))
            .await
            .unwrap_err();
        assert_names(&all, damage, &second, "read_all");
        match repository.load::<Counter>(&7).await {
            // A version that is text sorts after every number: a load that folds rows as they
            // stream in meets the gap it leaves before the row itself.
            Err(LoadError::Gap {
                expected, found, ..
            }) if streaming && damage.column == "stream_version" => {
                assert_eq!((expected, found), (StreamVersion(2), StreamVersion(3)));
            }
            Err(LoadError::Store(error)) if damage.seen_by_loads() => {
                assert_names(&error, damage, &second, "a load");
            }
            Ok(loaded) if !damage.seen_by_loads() => assert_eq!(loaded.state.total, 7, "{at}"),
            other => panic!("{at}: unexpected load {other:?}"),
        }

        // An append that does not need the row goes on; one that does (the row holds the
        // stream's highest version) is refused naming it.
        let next = counted(8);
        let appended_next = store
            .append(&stream(7), ExpectedVersion::Any, vec![next.clone()])
            .await;
        match (&appended_next, damage.column) {
            (Err(error), "stream_version") => assert_names(error, damage, &second, "an append"),
            (Ok(result), _) => assert_eq!(result.stream_version, StreamVersion(4), "{at}"),
            (Err(error), _) => panic!("{at}: append failed: {error:?}"),
        }
        // A retry of the damaged event needs its stored copy to compare with.
        let retry = store
            .append(
                &stream(7),
                ExpectedVersion::Exact(StreamVersion(1)),
                vec![appended[1].clone()],
            )
            .await
            .unwrap_err();
        match damage.column {
            // The damaged id no longer matches: nothing of the batch is stored.
            "event_id" => assert!(
                matches!(retry, StoreError::WrongExpectedVersion { .. }),
                "{at}: {retry:?}"
            ),
            _ => assert_names(&retry, damage, &second, "a retried append"),
        }
        // So does a retry across streams: the fresh part before it goes back with it.
        let across = store
            .append_streams(vec![
                StreamAppend::new(stream(9), ExpectedVersion::NoStream, vec![counted(16)]),
                StreamAppend::new(
                    stream(7),
                    ExpectedVersion::Exact(StreamVersion(1)),
                    vec![appended[1].clone()],
                ),
            ])
            .await
            .unwrap_err();
        match damage.column {
            "event_id" => assert!(
                matches!(&across, StoreError::WrongExpectedVersion { stream: s, .. } if *s == stream(7)),
                "{at}: {across:?}"
            ),
            _ => assert_names(&across, damage, &second, "a retried append across streams"),
        }
        assert_eq!(
            store.stream_version(&stream(9)).await.unwrap(),
            StreamVersion::NONE,
            "{at}"
        );
        // Reading it by id names it; with its id damaged, it is no longer found by it.
        let by_id = store
            .read_events(&[second.event_id, appended[0].event_id])
            .await;
        match (damage.column, by_id) {
            ("event_id", Ok(found)) => assert_eq!(found, before[..1], "{at}"),
            (_, Err(error)) => assert_names(&error, damage, &second, "read_events"),
            (_, Ok(found)) => panic!("{at}: read {} events by id", found.len()),
        }

        // Another stream never notices.
        assert_eq!(
            store
                .read_stream(&stream(8), ReadStream::forward())
                .await
                .unwrap()
                .len(),
            1,
            "{at}"
        );

        // Repaired, the row reads as before and nothing is missing.
        set(&original);
        if appended_next.is_err() {
            store
                .append(
                    &stream(7),
                    ExpectedVersion::Exact(StreamVersion(3)),
                    vec![next.clone()],
                )
                .await
                .unwrap();
        }
        let after = store
            .read_stream(&stream(7), ReadStream::forward())
            .await
            .unwrap();
        assert_eq!(after[..3], before[..], "{at}");
        assert_eq!(after.len(), 4, "{at}");
        assert_eq!(after[3].event_id, next.event_id, "{at}");
        let log = store
            .read_all(ReadAll::after(GlobalPosition::START))
            .await
            .unwrap();
        assert_eq!(log.len(), 5, "{at}");
        let by_id = store
            .read_events(&[second.event_id, appended[0].event_id])
            .await
            .unwrap();
        assert_eq!(by_id, [second.clone(), before[0].clone()], "{at}");
        assert_eq!(
            repository.load::<Counter>(&7).await.unwrap().state.total,
            15
        );
    }
}

// Loads visit rows straight from SQLite's buffers on a multi-threaded runtime and through a
// packed copy otherwise: both paths name a damaged row the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_rows_are_named_and_nothing_is_lost_on_a_multi_threaded_runtime() {
    damaged_rows_are_named_and_nothing_is_lost(true).await;
}

#[tokio::test]
async fn damaged_rows_are_named_and_nothing_is_lost_on_a_current_thread_runtime() {
    damaged_rows_are_named_and_nothing_is_lost(false).await;
}

/// A deleted row leaves a gap in its stream's versions: every fold of the stream refuses it
/// instead of building a state from part of the history.
#[tokio::test]
async fn a_deleted_row_is_a_gap_that_loads_refuse() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let repository = Repository::new(store.clone());
    for by in [1, 2, 4] {
        repository
            .send(Count { counter: 7, by }, Metadata::new())
            .await
            .unwrap();
    }
    let conn = Connection::open(store.path().unwrap()).unwrap();
    conn.execute("DELETE FROM events WHERE stream_version = 2", [])
        .unwrap();
    let gap = |error: LoadError| match error {
        LoadError::Gap {
            stream: s,
            expected,
            found,
        } => {
            assert_eq!(s, stream(7));
            (expected, found)
        }
        other => panic!("expected a gap, got {other:?}"),
    };
    let missing_second = (StreamVersion(2), StreamVersion(3));
    assert_eq!(
        gap(repository.load::<Counter>(&7).await.unwrap_err()),
        missing_second
    );
    assert_eq!(
        gap(repository
            .load_at::<Counter>(&7, StreamVersion(3))
            .await
            .unwrap_err()),
        missing_second
    );
    assert_eq!(
        gap(repository
            .load_at_time::<Counter>(&7, Timestamp::now())
            .await
            .unwrap_err()),
        missing_second
    );
    // Up to the gap, the history is whole.
    let first = repository
        .load_at::<Counter>(&7, StreamVersion(1))
        .await
        .unwrap();
    assert_eq!(first.state.total, 1);
    // A command is not decided on part of the history.
    match repository
        .send(Count { counter: 7, by: 1 }, Metadata::new())
        .await
    {
        Err(ExecuteError::Load(error)) => assert_eq!(gap(error), missing_second),
        other => panic!("expected a gap, got {other:?}"),
    }

    // The first event gone: the stream starts too late.
    conn.execute("DELETE FROM events WHERE stream_version = 1", [])
        .unwrap();
    let error = repository.load::<Counter>(&7).await.unwrap_err();
    let message = error.to_string();
    assert_eq!(gap(error), (StreamVersion(1), StreamVersion(3)));
    assert!(
        message.contains("`counter-7` holds version 3 where version 1 should come next"),
        "{message}"
    );
}

/// The head of the log is the last event's position: when it does not read, the error names
/// the event it belongs to.
#[tokio::test]
async fn a_last_event_whose_position_does_not_read_is_named_by_the_head() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    for by in [1, 2] {
        store
            .append(&stream(7), ExpectedVersion::Any, vec![counted(by)])
            .await
            .unwrap();
    }
    let conn = Connection::open(store.path().unwrap()).unwrap();
    conn.execute(
        "UPDATE events SET commit_seq = 'late' WHERE stream_version = 2",
        [],
    )
    .unwrap();
    match store.head_position().await {
        Err(StoreError::Corrupt {
            stream: s,
            version,
            position,
            reason,
        }) => {
            assert_eq!(s, Some(stream(7)));
            assert_eq!(version, Some(StreamVersion(2)));
            assert_eq!(position, None);
            assert!(
                reason.contains("column `commit_seq` holds text, not an integer"),
                "{reason}"
            );
        }
        other => panic!("expected a corrupt row, got {other:?}"),
    }
    conn.execute(
        "UPDATE events SET commit_seq = position WHERE stream_version = 2",
        [],
    )
    .unwrap();
    assert_eq!(
        store.head_position().await.unwrap(),
        GlobalPosition::new(2, 2)
    );
}
