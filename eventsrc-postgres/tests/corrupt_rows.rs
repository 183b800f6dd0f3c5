//! Rows damaged behind the store's back with raw SQL. PostgreSQL keeps every column's type,
//! so the damage is a value out of range or JSON of the wrong shape; each is a typed error
//! naming the row's stream, version, position and column, appends go on (they need only the
//! stream's highest version), a retry that needs the row names it, and once the row is
//! repaired nothing is missing. A deleted row is a gap that loads refuse to fold over.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use eventsrc::store::{ReadAll, ReadStream};
use eventsrc::{
    EventStore, ExecuteError, ExpectedVersion, GlobalPosition, LoadError, Metadata, NewEvent,
    RecordedEvent, Repository, StoreError, StreamVersion,
};
use support::TestSchema;
use support::counter::{Count, Counted, Counter, stream};

fn counted(by: u32) -> NewEvent {
    NewEvent::from_event(&Counted { by }, Metadata::new().with_actor("ada")).unwrap()
}

/// What a read answers once the second event of the stream is damaged.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Answer {
    /// The corrupt-row error naming it.
    Named,
    /// Every other event, as if the row were not there (it lies outside the read's bounds).
    Without,
    /// Every event: the read does not look at what is damaged.
    Clean,
}

/// One way to damage the second event of a stream.
struct Damage {
    column: &'static str,
    /// The SQL literal written over the column.
    value: &'static str,
    /// What the error's reason says.
    reason: &'static str,
    version_reads: bool,
    position_reads: bool,
    read_stream: Answer,
    read_all: Answer,
    /// `Without` here means the load meets the gap the row leaves.
    load: Answer,
}

const DAMAGES: &[Damage] = &[
    Damage {
        column: "schema_version",
        value: "-3",
        reason: "column `schema_version`: schema version -3 is outside 0..=4294967295",
        version_reads: true,
        position_reads: true,
        read_stream: Answer::Named,
        read_all: Answer::Named,
        load: Answer::Named,
    },
    Damage {
        column: "schema_version",
        value: "5000000000",
        reason: "column `schema_version`: schema version 5000000000 is outside",
        version_reads: true,
        position_reads: true,
        read_stream: Answer::Named,
        read_all: Answer::Named,
        load: Answer::Named,
    },
    Damage {
        column: "metadata",
        value: r#"'"not an object"'"#,
        reason: "column `metadata`: not a JSON object of metadata",
        version_reads: true,
        position_reads: true,
        read_stream: Answer::Named,
        read_all: Answer::Named,
        load: Answer::Clean,
    },
    Damage {
        column: "metadata",
        value: "'[1, 2]'",
        reason: "column `metadata`: not a JSON object of metadata",
        version_reads: true,
        position_reads: true,
        read_stream: Answer::Named,
        read_all: Answer::Named,
        load: Answer::Clean,
    },
    // Stream reads start at version 1: the row drops out of them, and loads see the gap.
    Damage {
        column: "stream_version",
        value: "0",
        reason: "column `stream_version`: 0 is not positive",
        version_reads: false,
        position_reads: true,
        read_stream: Answer::Without,
        read_all: Answer::Named,
        load: Answer::Without,
    },
    // Log reads start after position 0:0: the row drops out of them.
    Damage {
        column: "transaction_id",
        value: "-1",
        reason: "column `transaction_id`: -1 is not positive",
        version_reads: true,
        position_reads: false,
        read_stream: Answer::Named,
        read_all: Answer::Without,
        load: Answer::Clean,
    },
];

/// Checks that `error` is the corrupt-row error of `damage` done to `second`.
#[track_caller]
fn assert_names(error: &StoreError, damage: &Damage, second: &RecordedEvent, during: &str) {
    let at = format!("{during}, `{}` = {}", damage.column, damage.value);
    let StoreError::Corrupt {
        stream,
        version,
        position,
        reason,
    } = error
    else {
        panic!("{at}: expected Corrupt, got {error:?}");
    };
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
}

#[tokio::test]
async fn damaged_rows_are_named_and_nothing_is_lost() {
    let Some(schema) = TestSchema::new("damaged_rows_are_named_and_nothing_is_lost").await else {
        return;
    };
    let store = schema.store().await;
    let repository = Repository::new(store.clone());
    for (case, damage) in DAMAGES.iter().enumerate() {
        // A stream of its own per case, so that the log holds every earlier case's events.
        let id = 100 + case as u32;
        let appended = [counted(1), counted(2), counted(4)];
        for event in &appended {
            store
                .append(&stream(id), ExpectedVersion::Any, vec![event.clone()])
                .await
                .unwrap();
        }
        let before = store
            .read_stream(&stream(id), ReadStream::forward())
            .await
            .unwrap();
        let log_before = store
            .read_all(ReadAll::after(GlobalPosition::START))
            .await
            .unwrap();
        let second = before[1].clone();
        let at = format!("`{}` = {}", damage.column, damage.value);

        let row = second.global_position.sequence as i64;
        let original: String = schema
            .client
            .query_one(
                &format!(
                    "SELECT quote_nullable({}::text) FROM {} WHERE position = $1",
                    damage.column,
                    schema.table("events")
                ),
                &[&row],
            )
            .await
            .unwrap()
            .get(0);
        let set = |value: &str| {
            let sql = format!(
                "UPDATE {} SET {} = {value} WHERE position = $1",
                schema.table("events"),
                damage.column
            );
            let client = &schema.client;
            async move { client.execute(&sql, &[&row]).await.unwrap() }
        };
        assert_eq!(set(damage.value).await, 1, "{at}");

        let without_second: Vec<RecordedEvent> = before
            .iter()
            .filter(|e| e.event_id != second.event_id)
            .cloned()
            .collect();
        let read = store.read_stream(&stream(id), ReadStream::forward()).await;
        match (damage.read_stream, read) {
            (Answer::Named, Err(error)) => assert_names(&error, damage, &second, "read_stream"),
            (Answer::Without, Ok(read)) => assert_eq!(read, without_second, "{at}"),
            (_, other) => panic!("{at}: unexpected read_stream {other:?}"),
        }
        let all = store.read_all(ReadAll::after(GlobalPosition::START)).await;
        match (damage.read_all, all) {
            (Answer::Named, Err(error)) => assert_names(&error, damage, &second, "read_all"),
            (Answer::Without, Ok(all)) => {
                let expected: Vec<_> = log_before
                    .iter()
                    .filter(|e| e.event_id != second.event_id)
                    .cloned()
                    .collect();
                assert_eq!(all, expected, "{at}");
            }
            (_, other) => panic!("{at}: unexpected read_all {other:?}"),
        }
        match (damage.load, repository.load::<Counter>(&id).await) {
            (Answer::Named, Err(LoadError::Store(error))) => {
                assert_names(&error, damage, &second, "a load");
            }
            (
                Answer::Without,
                Err(LoadError::Gap {
                    stream: s,
                    expected,
                    found,
                }),
            ) => {
                assert_eq!(s, stream(id), "{at}");
                assert_eq!(
                    (expected, found),
                    (StreamVersion(2), StreamVersion(3)),
                    "{at}"
                );
            }
            (Answer::Clean, Ok(loaded)) => assert_eq!(loaded.state.total, 7, "{at}"),
            (_, other) => panic!("{at}: unexpected load {other:?}"),
        }

        // Appends need only the stream's highest version: they go on.
        let next = counted(8);
        let appended_next = store
            .append(&stream(id), ExpectedVersion::Any, vec![next.clone()])
            .await
            .unwrap();
        assert_eq!(appended_next.stream_version, StreamVersion(4), "{at}");
        // A retry of the damaged event needs its stored copy to compare with.
        let retry = store
            .append(
                &stream(id),
                ExpectedVersion::Exact(StreamVersion(1)),
                vec![appended[1].clone()],
            )
            .await
            .unwrap_err();
        assert_names(&retry, damage, &second, "a retried append");

        // Repaired, the row reads as before and nothing is missing.
        set(&original).await;
        let after = store
            .read_stream(&stream(id), ReadStream::forward())
            .await
            .unwrap();
        assert_eq!(after[..3], before[..], "{at}");
        assert_eq!(after.len(), 4, "{at}");
        assert_eq!(after[3].event_id, next.event_id, "{at}");
        let log = store
            .read_all(ReadAll::after(GlobalPosition::START))
            .await
            .unwrap();
        assert_eq!(log[..log_before.len()], log_before[..], "{at}");
        assert_eq!(log.len(), log_before.len() + 1, "{at}");
        assert_eq!(
            repository.load::<Counter>(&id).await.unwrap().state.total,
            15,
            "{at}"
        );
    }
    schema.drop().await;
}

#[tokio::test]
async fn a_deleted_row_is_a_gap_that_loads_refuse() {
    let Some(schema) = TestSchema::new("a_deleted_row_is_a_gap_that_loads_refuse").await else {
        return;
    };
    let store = schema.store().await;
    let repository = Repository::new(store.clone());
    for by in [1, 2, 4] {
        repository
            .send(Count { counter: 7, by }, Metadata::new())
            .await
            .unwrap();
    }
    schema
        .client
        .execute(
            &format!(
                "DELETE FROM {} WHERE stream_version = 2",
                schema.table("events")
            ),
            &[],
        )
        .await
        .unwrap();
    match repository.load::<Counter>(&7).await {
        Err(LoadError::Gap {
            stream: s,
            expected,
            found,
        }) => {
            assert_eq!(s, stream(7));
            assert_eq!((expected, found), (StreamVersion(2), StreamVersion(3)));
        }
        other => panic!("expected a gap, got {other:?}"),
    }
    match repository
        .send(Count { counter: 7, by: 1 }, Metadata::new())
        .await
    {
        Err(ExecuteError::Load(LoadError::Gap { expected, .. })) => {
            assert_eq!(expected, StreamVersion(2));
        }
        other => panic!("expected a gap, got {other:?}"),
    }
    schema.drop().await;
}
