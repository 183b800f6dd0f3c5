//! What only the PostgreSQL backend has: a schema that outlives the process and is migrated by
//! several nodes at once, rows that can be corrupted behind its back, connections that die,
//! LISTEN/NOTIFY, and readers held back behind transactions in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use eventsrc::Tenants;
use eventsrc::{
    EventStore, ExpectedVersion, GlobalPosition, LoadError, Metadata, NewEvent, Repository,
    StoreError, StreamVersion,
};

use eventsrc::store::{ReadAll, ReadStream};
use eventsrc_postgres::{ConnectError, Lag, PgEventStore, SCHEMA_VERSION};
use support::counter::{Count, Counter, stream};
use support::{TestSchema, until};

/// How long a test waits for an outcome before it fails.
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_reconnected_store_continues_its_history() {
    let Some(schema) = TestSchema::new("a_reconnected_store_continues_its_history").await else {
        return;
    };
    {
        let repository = Repository::new(schema.store().await);
        repository
            .send(Count { counter: 1, by: 2 }, Metadata::new())
            .await
            .unwrap();
    }
    // A second node, this one not notifying listeners: same data, same behaviour.
    let repository = Repository::new(schema.store_with(schema.options().notify(false)).await);
    let committed = repository
        .send(Count { counter: 1, by: 3 }, Metadata::new())
        .await
        .unwrap();
    assert_eq!(committed.stream_version, StreamVersion(2));
    assert_eq!(repository.load::<Counter>(&1).await.unwrap().state.total, 5);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_the_schema_once() {
    let Some(schema) = TestSchema::new("nodes_starting_at_once_migrate_the_schema_once").await
    else {
        return;
    };
    let nodes: Vec<_> = (0..8)
        .map(|_| {
            let (url, options) = (schema.url.clone(), schema.options());
            tokio::spawn(async move { PgEventStore::connect_with(&url, options).await })
        })
        .collect();
    for node in nodes {
        node.await.unwrap().expect("every node connects");
    }
    let versions: Vec<i32> = schema
        .client
        .query(
            &format!(
                "SELECT version FROM {} ORDER BY version",
                schema.table("migrations")
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    schema.drop().await;
}

#[tokio::test]
async fn a_schema_from_a_newer_version_is_refused() {
    let Some(schema) = TestSchema::new("a_schema_from_a_newer_version_is_refused").await else {
        return;
    };
    drop(schema.store().await);
    schema
        .client
        .execute(
            &format!(
                "INSERT INTO {} (version) VALUES ($1)",
                schema.table("migrations")
            ),
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    match PgEventStore::connect_with(&schema.url, schema.options()).await {
        Err(error @ ConnectError::NewerSchema { .. }) => {
            let message = error.to_string();
            assert!(message.contains(&schema.name), "{message}");
            assert!(
                message.contains(&format!("version {}", SCHEMA_VERSION + 1)),
                "{message}"
            );
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    schema.drop().await;
}

#[tokio::test]
async fn corrupt_rows_are_typed_errors_naming_the_event() {
    let Some(schema) = TestSchema::new("corrupt_rows_are_typed_errors_naming_the_event").await
    else {
        return;
    };
    let store = schema.store().await;
    let repository = Repository::new(store.clone());
    repository
        .send(Count { counter: 7, by: 1 }, Metadata::new())
        .await
        .unwrap();
    let second = repository
        .send(Count { counter: 7, by: 1 }, Metadata::new())
        .await
        .unwrap();
    let corrupt = |set: &str| {
        format!(
            "UPDATE {} SET {set} WHERE stream_version = 2",
            schema.table("events")
        )
    };

    let decode_error = |error: LoadError| match error {
        LoadError::Decode(error) => error,
        other => panic!("expected a decode error, got {other:?}"),
    };
    schema
        .client
        .execute(&corrupt(r#"payload = '{"by": "one"}'"#), &[])
        .await
        .unwrap();
    let error = decode_error(repository.load::<Counter>(&7).await.unwrap_err());
    assert_eq!(error.event_id, second.event_ids[0]);
    assert_eq!(error.stream, stream(7));
    assert_eq!(error.stream_version, StreamVersion(2));
    assert_eq!(Some(error.global_position), second.global_position);
    let message = error.to_string();
    for part in [
        second.event_ids[0].to_string(),
        "`counter-7` stream version 2".to_owned(),
        format!("position {}", error.global_position),
        "`Counted` schema version 1".to_owned(),
    ] {
        assert!(message.contains(&part), "{message} should name {part}");
    }

    schema
        .client
        .execute(
            &corrupt(r#"event_type = 'Vanished', payload = '{"by":1}'"#),
            &[],
        )
        .await
        .unwrap();
    let error = decode_error(repository.load::<Counter>(&7).await.unwrap_err());
    assert_eq!(error.event_id, second.event_ids[0]);
    assert!(
        error.to_string().contains("unknown event type `Vanished`"),
        "{error}"
    );

    schema
        .client
        .execute(&corrupt("event_type = 'Counted', schema_version = 9"), &[])
        .await
        .unwrap();
    let error = decode_error(repository.load::<Counter>(&7).await.unwrap_err());
    assert_eq!(error.stream_version, StreamVersion(2));
    assert!(
        error
            .to_string()
            .contains("schema version 9, newer than this code's version 1"),
        "{error}"
    );

    // Rows no event can be read from are the store's own errors, naming where they are.
    schema
        .client
        .execute(&corrupt("schema_version = -1"), &[])
        .await
        .unwrap();
    let error = store
        .read_stream(&stream(7), ReadStream::forward())
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Corrupt { position, .. } if position == second.global_position),
        "{error:?}"
    );
    assert!(error.to_string().contains("schema version -1"), "{error}");
    let error = repository.load::<Counter>(&7).await.unwrap_err();
    let position = second.global_position.unwrap();
    assert!(
        error.to_string().contains(&format!(
            "stream `counter-7`, version 2, position {position}"
        )),
        "{error}"
    );

    schema
        .client
        .execute(
            &corrupt(r#"schema_version = 1, metadata = '"not an object"'"#),
            &[],
        )
        .await
        .unwrap();
    let error = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Corrupt { .. }) && error.to_string().contains("metadata"),
        "{error:?}"
    );
    schema.drop().await;
}

#[tokio::test]
async fn a_payload_that_is_not_json_is_an_invalid_append_naming_the_event() {
    let Some(schema) = TestSchema::new("a_payload_that_is_not_json_is_an_invalid_append").await
    else {
        return;
    };
    let store = schema.store().await;
    let good = NewEvent::raw("Counted", 1, r#"{"by":1}"#);
    let bad = NewEvent::raw("Counted", 1, "{by: 1}");
    let bad_id = bad.event_id;
    match store
        .append(&stream(1), ExpectedVersion::Any, vec![good, bad])
        .await
    {
        Err(StoreError::InvalidAppend { stream: s, reason }) => {
            assert_eq!(s, stream(1));
            assert!(reason.contains(&bad_id.to_string()), "{reason}");
        }
        other => panic!("expected an invalid append, got {other:?}"),
    }
    // Alone, an event goes through the single-event statement: the same answer.
    let bad = NewEvent::raw("Counted", 1, "{by: 1}");
    let bad_id = bad.event_id;
    match store
        .append(&stream(1), ExpectedVersion::Any, vec![bad])
        .await
    {
        Err(StoreError::InvalidAppend { stream: s, reason }) => {
            assert_eq!(s, stream(1));
            assert!(reason.contains(&bad_id.to_string()), "{reason}");
        }
        other => panic!("expected an invalid append, got {other:?}"),
    }
    assert_eq!(
        store.stream_version(&stream(1)).await.unwrap(),
        StreamVersion::NONE
    );
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connections_fail_cleanly_and_the_pool_recovers() {
    let Some(schema) = TestSchema::new("lost_connections_fail_cleanly_and_the_pool_recovers").await
    else {
        return;
    };
    // One connection: the next operation errors or succeeds, the one after succeeds.
    let single = schema.store_with(schema.options().pool_size(1)).await;
    kill_then_use(&schema, &single, 1).await;
    drop(single);
    // Four: each dead connection fails at most one operation.
    let pooled = schema.store_with(schema.options().pool_size(4)).await;
    kill_then_use(&schema, &pooled, 4).await;
    let events = pooled
        .read_stream(&stream(1), ReadStream::forward())
        .await
        .unwrap();
    assert!(
        events.len() >= 2,
        "events appended around the kills are stored"
    );
    drop(pooled);
    schema.drop().await;
}

/// Fills the pool with `connections` connections, terminates their backends, then appends
/// `connections + 1` times: each append succeeds or fails with a backend error, at most one
/// per dead connection, and the store works afterwards.
async fn kill_then_use(schema: &TestSchema, store: &PgEventStore, connections: usize) {
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        held.push(store.pool().get().await.expect("a pooled connection"));
    }
    drop(held);
    let killed: i64 = schema
        .client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, connections as i64, "backends terminated");
    until("the terminated backends to exit", WAIT, || async {
        let left: i64 = schema
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&schema.name],
            )
            .await
            .unwrap()
            .get(0);
        left == 0
    })
    .await;
    let mut failed = 0;
    for n in 0..=connections {
        let event = NewEvent::raw("Counted", 1, r#"{"by":1}"#);
        match store
            .append(&stream(1), ExpectedVersion::Any, vec![event])
            .await
        {
            Ok(_) => {}
            Err(StoreError::Backend(error)) if failed < connections => {
                println!("append {n} after the kill failed cleanly: {error}");
                failed += 1;
            }
            Err(other) => panic!("append {n} after the kill: {other:?}"),
        }
    }
    let version = store.stream_version(&stream(1)).await.unwrap();
    assert!(version >= StreamVersion(1), "the pool works again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_wake_listeners_even_after_the_listener_reconnects() {
    let Some(schema) = TestSchema::new("appends_wake_listeners").await else {
        return;
    };
    let store = schema.store().await;
    let mut woken = store.notifications().await.unwrap();
    woken.borrow_and_update();
    let tenant = store.with_tenant("acme".into());
    tenant
        .append(
            &stream(1),
            ExpectedVersion::Any,
            vec![NewEvent::raw("Counted", 1, "{}")],
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken.changed())
        .await
        .expect("an append wakes the listener")
        .unwrap();

    // Kill the LISTEN connection; it comes back by itself, and appends wake listeners again.
    let killed: i64 = schema
        .client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND query LIKE 'LISTEN%'",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "the LISTEN connection");
    let client = &schema.client;
    until("the listener to reconnect", WAIT, || async {
        let listening: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND query LIKE 'LISTEN%'",
                &[&schema.name],
            )
            .await
            .unwrap()
            .get(0);
        listening == 1
    })
    .await;
    woken.borrow_and_update();
    store
        .append(
            &stream(2),
            ExpectedVersion::Any,
            vec![NewEvent::raw("Counted", 1, "{}")],
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken.changed())
        .await
        .expect("an append wakes the reconnected listener")
        .unwrap();
    drop(store);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_stop_below_a_transaction_in_flight_and_lag_says_so() {
    let Some(schema) = TestSchema::new("readers_stop_below_a_transaction_in_flight").await else {
        return;
    };
    let store = schema
        .store_with(schema.options().horizon_wait(Duration::ZERO))
        .await;
    let first = store
        .append(
            &stream(1),
            ExpectedVersion::Any,
            vec![NewEvent::raw("Counted", 1, "{}")],
        )
        .await
        .unwrap();
    until("the first event to be readable", WAIT, || async {
        store.head_position().await.unwrap() == first.position
    })
    .await;

    // A transaction that has written (so it has an id) and stays open holds the horizon.
    let open = support::raw_client(&schema.url).await;
    open.batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .await
        .unwrap();
    let later: Vec<NewEvent> = (0..3).map(|_| NewEvent::raw("Counted", 1, "{}")).collect();
    store
        .append(&stream(2), ExpectedVersion::Any, later)
        .await
        .unwrap();
    assert_eq!(
        store.lag(first.position).await.unwrap(),
        Lag {
            readable: 0,
            held_back: 3
        }
    );
    assert!(
        store
            .read_all(ReadAll::after(first.position))
            .await
            .unwrap()
            .is_empty(),
        "events committed after a transaction in flight are held back"
    );
    assert_eq!(store.head_position().await.unwrap(), first.position);
    // Stream reads are not held back: a stream's own order needs no horizon.
    assert_eq!(
        store.stream_version(&stream(2)).await.unwrap(),
        StreamVersion(3)
    );

    open.batch_execute("COMMIT").await.unwrap();
    until("the held-back events to become readable", WAIT, || async {
        store.lag(first.position).await.unwrap().readable == 3
    })
    .await;
    let page = store
        .read_all(ReadAll::after(first.position))
        .await
        .unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(store.lag(page[2].global_position).await.unwrap().total(), 0);

    // A read held back waits its horizon wait, then returns what lies below the horizon.
    let patient = schema
        .store_with(schema.options().horizon_wait(Duration::from_millis(200)))
        .await;
    open.batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .await
        .unwrap();
    let last = store
        .append(
            &stream(3),
            ExpectedVersion::Any,
            vec![NewEvent::raw("Counted", 1, "{}")],
        )
        .await
        .unwrap();
    let after = page[2].global_position;
    let started = Instant::now();
    assert!(
        patient
            .read_all(ReadAll::after(after))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    // A longer wait returns what committed before the read began, once the transaction
    // holding it back finishes.
    let waiting = schema
        .store_with(schema.options().horizon_wait(Duration::from_secs(30)))
        .await;
    let read = tokio::spawn(async move { waiting.read_all(ReadAll::after(after)).await });
    open.batch_execute("COMMIT").await.unwrap();
    let read = read.await.unwrap().unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].global_position, last.position);
    schema.drop().await;
}
