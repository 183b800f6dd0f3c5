//! The read side on PostgreSQL: the append signal, parked events, read models whose rows and
//! checkpoint commit together (and fence a runner that fell behind), read-your-writes from
//! another node, inline projections, and the schema upgrade that brought them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventsrc::Reactor;
use eventsrc::Tenants;
use eventsrc::backend::{ParkedEvent, ParkedStore};
use eventsrc::runner::{Consumer, Perform, Retry};
use eventsrc::store::ReadAll;
use eventsrc::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent,
    RecordedEvent, StoreError, StreamId, StreamVersion, Tenant, Timestamp,
};
use eventsrc::{Reactions, RunError, Runner, SwitchReadModel, wait_for_checkpoint};
use eventsrc_postgres::{PgEventStore, PgReadModel, SCHEMA_VERSION};
use support::TestSchema;
use support::read_model::{Applied, Noted, note};

const DEADLINE: Duration = Duration::from_secs(30);

fn stream(id: u32) -> StreamId {
    StreamId::new("noted", id).unwrap()
}

/// Every event of `store`'s log.
async fn log(store: &PgEventStore) -> Vec<RecordedEvent> {
    store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_append_signal_moves_on_appends_from_any_node() {
    let Some(schema) = TestSchema::new("the_append_signal_moves_on_appends").await else {
        return;
    };
    let (reader, writer) = (schema.store().await, schema.store().await);
    let mut signal = reader
        .append_signal()
        .await
        .unwrap()
        .expect("PostgreSQL signals appends");
    signal.borrow_and_update();
    note(&writer, &stream(1), 1).await;
    tokio::time::timeout(DEADLINE, signal.changed())
        .await
        .expect("another node's append wakes the reader")
        .unwrap();
    schema.drop().await;
}

fn parked(reactor: &str, event: &RecordedEvent, attempts: u32) -> ParkedEvent {
    ParkedEvent {
        reactor: reactor.to_owned(),
        event: event.clone(),
        error: format!("failed {attempts} times"),
        attempts,
        // Microseconds, as PostgreSQL keeps them.
        parked_at: Timestamp::from_micros(Timestamp::now().as_micros()),
    }
}

#[tokio::test]
async fn parked_events_are_kept_whole_in_global_order_per_tenant_and_reactor() {
    let Some(schema) = TestSchema::new("parked_events_are_kept_whole").await else {
        return;
    };
    let store = schema.store().await;
    for n in 0..3 {
        let event = NewEvent::from_event(&Noted { n }, Metadata::new().with_actor("ada")).unwrap();
        store
            .append(&stream(n as u32), ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
    let events = log(&store).await;
    // Parked out of order; listed in global order.
    let (first, third) = (
        parked("mailer", &events[0], 1),
        parked("mailer", &events[2], 5),
    );
    store.park(third.clone()).await.unwrap();
    store.park(first.clone()).await.unwrap();
    store.park(parked("auditor", &events[1], 1)).await.unwrap();
    let listed = store.parked("mailer").await.unwrap();
    assert_eq!(listed, [first, third]);
    assert_eq!(listed[0].event, events[0], "the whole event comes back");

    // Parking again replaces the entry.
    let again = parked("mailer", &events[0], 6);
    store.park(again.clone()).await.unwrap();
    assert_eq!(store.parked("mailer").await.unwrap()[0], again);

    // Another tenant sees none of it.
    let acme = store.with_tenant(Tenant::new("acme"));
    assert!(acme.parked("mailer").await.unwrap().is_empty());
    assert!(!acme.unpark("mailer", events[0].event_id).await.unwrap());

    assert!(store.unpark("mailer", events[0].event_id).await.unwrap());
    assert!(!store.unpark("mailer", events[0].event_id).await.unwrap());
    assert_eq!(store.parked("mailer").await.unwrap().len(), 1);
    assert_eq!(store.parked("auditor").await.unwrap().len(), 1);
    schema.drop().await;
}

/// Decides one effect per event.
struct Echo;

impl Reactor for Echo {
    const NAME: &'static str = "echo";
    type Event = Noted;
    type Effect = u64;
    type Error = std::convert::Infallible;

    fn react(&mut self, event: Noted, _: &RecordedEvent) -> Result<Vec<u64>, Self::Error> {
        Ok(vec![event.n])
    }
}

/// Fails on event 1 until fixed.
#[derive(Default, Clone)]
struct Flaky {
    fixed: Arc<AtomicBool>,
}

impl Perform<u64> for Flaky {
    type Error = std::io::Error;

    async fn perform(&self, n: u64, _: &RecordedEvent) -> Result<(), Self::Error> {
        if n == 1 && !self.fixed.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("the mail server is down"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_reactor_parks_to_postgres_and_replays_after_a_fix() {
    let Some(schema) = TestSchema::new("a_reactor_parks_to_postgres").await else {
        return;
    };
    let store = schema.store().await;
    for n in 0..3 {
        note(&store, &stream(1), n).await;
    }
    let flaky = Flaky::default();
    let reactions = Reactions::new(Echo, flaky.clone(), store.clone()).retry(Retry::never());
    let mut runner = Runner::new(store.clone(), reactions);
    runner.catch_up().await.unwrap();
    let mut reactions = runner.into_consumer();
    let parked = reactions.parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].event.decode::<Noted>().unwrap(), Noted { n: 1 });
    assert!(
        parked[0].error.contains("the mail server is down"),
        "{}",
        parked[0].error
    );
    // The reactor went on past it.
    assert_eq!(
        store.load_checkpoint("echo").await.unwrap(),
        Some(log(&store).await[2].global_position)
    );

    let failed = reactions.replay_parked().await.unwrap();
    assert_eq!(failed.failed, [parked[0].event.event_id]);
    assert_eq!(reactions.parked().await.unwrap()[0].attempts, 2);
    flaky.fixed.store(true, Ordering::SeqCst);
    let replayed = reactions.replay_parked().await.unwrap();
    assert_eq!(replayed.succeeded, [parked[0].event.event_id]);
    assert!(reactions.parked().await.unwrap().is_empty());
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_fences_a_runner_whose_checkpoint_moved_and_applies_nothing() {
    let Some(schema) = TestSchema::new("a_read_model_fences_a_runner").await else {
        return;
    };
    let store = schema.store().await;
    for n in 0..4 {
        note(&store, &stream(1), n).await;
    }
    let events = log(&store).await;
    let (first, rest) = events.split_at(2);
    let (through_first, through_rest) = (first[1].global_position, rest[1].global_position);
    let projection = Applied::in_schema(&schema.name);
    // Two nodes' read models of the same name, each on its own handle.
    let mut a = PgReadModel::new(projection.clone(), store.clone());
    let mut b = PgReadModel::new(projection.clone(), schema.store().await);
    assert_eq!(a.checkpoint().await.unwrap(), None);

    a.handle(None, first, through_first).await.unwrap();
    match b.handle(None, first, through_first).await {
        Err(RunError::Fenced {
            consumer,
            expected: None,
            actual: Some(actual),
        }) => {
            assert_eq!(consumer, "applied");
            assert_eq!(actual, through_first);
        }
        other => panic!("expected the stale runner to be fenced, got {other:?}"),
    }
    assert_eq!(b.checkpoint().await.unwrap(), Some(through_first));

    // Both handle the next batch at once: the checkpoint row's lock lets one through, and the
    // other then sees the checkpoint it moved.
    let from = Some(through_first);
    let rest_a = rest.to_vec();
    let racing_a = tokio::spawn(async move { a.handle(from, &rest_a, through_rest).await });
    let rest_b = rest.to_vec();
    let racing_b = tokio::spawn(async move { b.handle(from, &rest_b, through_rest).await });
    let results = [racing_a.await.unwrap(), racing_b.await.unwrap()];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().any(
            |r| matches!(r, Err(RunError::Fenced { actual, .. }) if *actual == Some(through_rest))
        ),
        "{results:?}"
    );
    assert_eq!(
        projection.tally(&store).await,
        (4, 0),
        "every event applied once"
    );
    assert_eq!(
        store.load_checkpoint("applied").await.unwrap(),
        Some(through_rest)
    );
    schema.drop().await;
}

#[tokio::test]
async fn a_failing_apply_rolls_the_batch_back_with_its_checkpoint_and_names_the_event() {
    let Some(schema) = TestSchema::new("a_failing_apply_rolls_the_batch_back").await else {
        return;
    };
    let store = schema.store().await;
    for n in 0..4 {
        note(&store, &stream(1), n).await;
    }
    let events = log(&store).await;
    let projection = Applied {
        refuse: Some(2),
        ..Applied::in_schema(&schema.name)
    };
    let mut runner = Runner::new(
        store.clone(),
        PgReadModel::new(projection.clone(), store.clone()),
    );
    match runner.catch_up().await {
        Err(RunError::Handle {
            consumer, event_id, ..
        }) => {
            assert_eq!(consumer, "applied");
            assert_eq!(event_id, events[2].event_id);
        }
        other => panic!("expected the refused event's error, got {other:?}"),
    }
    assert_eq!(
        projection.tally(&store).await,
        (0, 0),
        "the batch was rolled back"
    );
    assert_eq!(store.load_checkpoint("applied").await.unwrap(), None);

    // Rebuilt under another name into other tables, with the bug fixed.
    let fixed = Applied {
        table: format!("\"{}\".applied_v2", schema.name),
        refuse: None,
    };
    let model = PgReadModel::new(fixed.clone(), store.clone()).named("applied_v2");
    let mut runner = Runner::new(store.clone(), model).batch_size(3);
    runner.catch_up().await.unwrap();
    assert_eq!(fixed.tally(&store).await, (4, 0));
    assert_eq!(
        store.load_checkpoint("applied_v2").await.unwrap(),
        Some(events[3].global_position)
    );
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reads_its_own_writes_from_a_read_model_run_by_another_node() {
    let Some(schema) = TestSchema::new("a_node_reads_its_own_writes").await else {
        return;
    };
    let projection = Applied::in_schema(&schema.name);
    // Node A runs the read model.
    let runner_node = schema.store().await;
    let runner = Runner::new(
        runner_node.clone(),
        PgReadModel::new(projection.clone(), runner_node.clone()),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        stopped.await.ok();
    }));

    // Node B writes, waits for the read model's checkpoint, and reads its write.
    let node = schema.store().await;
    for n in 0..5 {
        let event = NewEvent::from_event(&Noted { n }, Metadata::new()).unwrap();
        let id = event.event_id;
        let appended = node
            .append(&stream(n as u32), ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
        wait_for_checkpoint(
            &node,
            "applied",
            appended.position,
            DEADLINE,
            Duration::from_millis(5),
        )
        .await
        .unwrap();
        assert_eq!(
            projection.applied(&node, id).await,
            1,
            "event {n} is visible"
        );
    }
    let error = wait_for_checkpoint(
        &node,
        "applied",
        GlobalPosition::new(u64::MAX >> 1, 0),
        Duration::from_millis(50),
        Duration::from_millis(10),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, RunError::Timeout { .. }), "{error:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inline_projections_commit_with_the_append_or_not_at_all() {
    let Some(schema) = TestSchema::new("inline_projections_commit_with_the_append").await else {
        return;
    };
    let plain = schema.store().await;
    let projection = Applied::in_schema(&schema.name);
    let store = plain.with_inline(projection.clone()).await.unwrap();
    assert!(format!("{store:?}").contains("applied"));

    // A batch, then a single event: readable as soon as the append returns.
    let batch: Vec<NewEvent> = (0..3)
        .map(|n| NewEvent::from_event(&Noted { n }, Metadata::new()).unwrap())
        .collect();
    let ids: Vec<EventId> = batch.iter().map(|e| e.event_id).collect();
    store
        .append(&stream(1), ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    for id in &ids {
        assert_eq!(projection.applied(&plain, *id).await, 1);
    }
    let single = note(&store, &stream(1), 3).await;
    assert_eq!(single.stream_version, StreamVersion(4));
    assert_eq!(projection.tally(&plain).await, (4, 0));

    // A retry of a stored batch stores nothing and applies nothing again.
    let retried = store
        .append(&stream(1), ExpectedVersion::NoStream, batch)
        .await
        .unwrap();
    assert!(retried.already_stored);
    assert_eq!(projection.tally(&plain).await, (4, 0));
    // A failed expectation is the usual error.
    let conflict = store
        .append(
            &stream(1),
            ExpectedVersion::NoStream,
            vec![NewEvent::from_event(&Noted { n: 9 }, Metadata::new()).unwrap()],
        )
        .await;
    assert!(
        matches!(conflict, Err(StoreError::WrongExpectedVersion { .. })),
        "{conflict:?}"
    );

    // A failing projection fails the append, which stores nothing.
    let refusing = plain
        .with_inline(Applied {
            refuse: Some(7),
            ..projection.clone()
        })
        .await
        .unwrap();
    let fine = NewEvent::from_event(&Noted { n: 6 }, Metadata::new()).unwrap();
    let refused = NewEvent::from_event(&Noted { n: 7 }, Metadata::new()).unwrap();
    let (refused_id, refused_type) = (refused.event_id, refused.event_type.to_string());
    let head = plain.head_position().await.unwrap();
    let error = refusing
        .append(&stream(2), ExpectedVersion::Any, vec![fine, refused])
        .await
        .unwrap_err();
    let StoreError::Refused {
        stream: refused_stream,
        event_type,
        projection: refused_by,
        source,
    } = &error
    else {
        panic!("a refusal, not a retryable failure: {error:?}")
    };
    assert_eq!(refused_by, "applied");
    assert_eq!(refused_stream, &stream(2));
    assert_eq!(event_type, &refused_type);
    assert!(
        matches!(**source, RunError::Handle { event_id, .. } if event_id == refused_id),
        "{source:?}"
    );
    assert!(
        error.to_string().contains(&refused_id.to_string()),
        "{error}"
    );
    assert_eq!(
        plain.stream_version(&stream(2)).await.unwrap(),
        StreamVersion::NONE
    );
    assert_eq!(plain.head_position().await.unwrap(), head, "nothing stored");
    assert_eq!(
        projection.tally(&plain).await,
        (4, 0),
        "the event before the refused one was not applied either"
    );

    // Writers racing on one stream: each race is run again in a new transaction.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    note(&store, &stream(3), 100 + w * 10 + i).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(
        plain.stream_version(&stream(3)).await.unwrap(),
        StreamVersion(40)
    );
    assert_eq!(projection.tally(&plain).await, (44, 0));
    // Appends through a plain handle do not touch it.
    note(&plain, &stream(4), 200).await;
    assert_eq!(projection.tally(&plain).await, (44, 0));
    schema.drop().await;
}

#[tokio::test]
async fn a_version_1_schema_is_upgraded_keeping_its_checkpoints() {
    let Some(schema) = TestSchema::new("a_version_1_schema_is_upgraded").await else {
        return;
    };
    let store = schema.store().await;
    let position = note(&store, &stream(1), 1).await.position;
    store.save_checkpoint("old", position).await.unwrap();
    drop(store);
    // Back to what version 1 made.
    schema
        .client
        .batch_execute(&format!(
            "DROP TABLE {parked}; DROP TABLE {documents}; DROP TABLE {document_index}; \
             DROP TABLE {archived_events}; DROP TABLE {truncations}; \
             ALTER TABLE {checkpoints} DROP CONSTRAINT checkpoints_position_whole, \
                 DROP COLUMN generation, \
                 ALTER COLUMN commit_id SET NOT NULL, ALTER COLUMN sequence SET NOT NULL; \
             ALTER TABLE {events} REPLICA IDENTITY DEFAULT, \
                 ADD CONSTRAINT events_pkey PRIMARY KEY (position); \
             DELETE FROM {migrations} WHERE version > 1",
            parked = schema.table("parked"),
            documents = schema.table("documents"),
            document_index = schema.table("document_index"),
            archived_events = schema.table("archived_events"),
            truncations = schema.table("truncations"),
            checkpoints = schema.table("checkpoints"),
            events = schema.table("events"),
            migrations = schema.table("migrations"),
        ))
        .await
        .unwrap();

    let store = schema.store().await;
    let version: i32 = schema
        .client
        .query_one(
            &format!("SELECT max(version) FROM {}", schema.table("migrations")),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
    // Version 5 dropped the events' primary key and identifies rows by stream and version.
    let (constraints, identity): (i64, String) = {
        let row = schema
            .client
            .query_one(
                "SELECT (SELECT count(*) FROM pg_constraint WHERE conrelid = c.oid \
                     AND contype = 'p'), c.relreplident::text \
                 FROM pg_class c WHERE c.oid = $1::text::regclass",
                &[&schema.table("events")],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((constraints, identity.as_str()), (0, "i"));
    // Appends go on after the upgrade, after the old event.
    let later = note(&store, &stream(1), 2).await;
    assert_eq!(later.stream_version, StreamVersion(2));
    assert!(later.position > position);
    assert_eq!(store.load_checkpoint("old").await.unwrap(), Some(position));
    let event = &log(&store).await[0];
    store.park(parked("mailer", event, 1)).await.unwrap();
    assert_eq!(store.parked("mailer").await.unwrap().len(), 1);
    drop(store);
    schema.drop().await;
}

/// A single-event append at an exact version carries the store's notification in its own
/// statement when it runs alone, or at most once a millisecond when appends run side by side;
/// the others, and every append of another kind, are covered by the notifier's task. Each
/// round starts with the reader idle and must wake it for all its appends, whichever way they
/// are announced: one exact append alone, one at `Any`, a batch of two, four writers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_append_wakes_an_idle_live_reader() {
    let Some(schema) = TestSchema::new("every_kind_of_append_wakes").await else {
        return;
    };
    let store = schema.store().await;
    let projection = Applied::in_schema(&schema.name);
    // A poll interval far beyond the deadline: only notifications can wake it in time.
    let runner = Runner::new(
        store.clone(),
        PgReadModel::new(projection.clone(), store.clone()),
    )
    .poll_interval(Duration::from_secs(600));
    let progress = runner.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        stopped.await.ok();
    }));
    let writer = schema.store().await;
    let noted = |n: u64| NewEvent::from_event(&Noted { n }, Metadata::new()).unwrap();
    let mut appended = 0;
    for round in 0..12_u32 {
        let on = stream(round);
        let newest = match round % 4 {
            // Alone, at an exact version: carried by its own statement.
            0 => {
                appended += 1;
                let done = writer.append(&on, ExpectedVersion::NoStream, vec![noted(0)]);
                done.await.unwrap().position
            }
            // Never carried: announced by the task.
            1 => {
                appended += 1;
                note(&writer, &on, 0).await.position
            }
            2 => {
                appended += 2;
                let batch = vec![noted(0), noted(1)];
                let done = writer.append(&on, ExpectedVersion::NoStream, batch);
                done.await.unwrap().position
            }
            // Side by side: some carried, the others covered by the task or a later claim.
            _ => {
                appended += 4 * 3;
                let writers: Vec<_> = (0..4)
                    .map(|w| {
                        let (writer, on) = (writer.clone(), stream(round * 10 + w));
                        tokio::spawn(async move {
                            let mut last = GlobalPosition::START;
                            for version in 0..3 {
                                let event =
                                    NewEvent::from_event(&Noted { n: version }, Metadata::new())
                                        .unwrap();
                                let expected = ExpectedVersion::at(StreamVersion(version));
                                let done = writer.append(&on, expected, vec![event]);
                                last = done.await.unwrap().position;
                            }
                            last
                        })
                    })
                    .collect();
                let mut newest = GlobalPosition::START;
                for writer in writers {
                    newest = newest.max(writer.await.unwrap());
                }
                newest
            }
        };
        progress
            .wait_for(newest, DEADLINE)
            .await
            .unwrap_or_else(|error| panic!("round {round} was not announced: {error}"));
    }
    assert_eq!(projection.tally(&store).await, (appended, 0));
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    schema.drop().await;
}

/// `Applied`, writing each batch with one statement; refusing a number fails the batch at
/// that event.
#[derive(Clone)]
struct AppliedInBatches(Applied);

impl eventsrc_postgres::PgProjection for AppliedInBatches {
    const NAME: &'static str = "applied_in_batches";
    type Event = Noted;
    type Error = std::io::Error;

    async fn setup(
        &mut self,
        tx: &eventsrc_postgres::deadpool_postgres::Transaction<'_>,
    ) -> Result<(), Self::Error> {
        self.0.setup(tx).await
    }

    async fn apply(
        &mut self,
        tx: &eventsrc_postgres::deadpool_postgres::Transaction<'_>,
        event: Noted,
        record: &RecordedEvent,
    ) -> Result<(), Self::Error> {
        self.0.apply(tx, event, record).await
    }

    async fn apply_batch(
        &mut self,
        tx: &eventsrc_postgres::deadpool_postgres::Transaction<'_>,
        events: Vec<(Noted, &RecordedEvent)>,
    ) -> Result<(), eventsrc_postgres::BatchError<Self::Error>> {
        if let Some(at) = events.iter().position(|(e, _)| Some(e.n) == self.0.refuse) {
            let refused =
                std::io::Error::other(format!("refusing event number {}", events[at].0.n));
            return Err(eventsrc_postgres::BatchError::at(at, refused));
        }
        let ids: Vec<eventsrc::Uuid> = events.iter().map(|(_, r)| r.event_id.0).collect();
        let numbers: Vec<i64> = events.iter().map(|(e, _)| e.n as i64).collect();
        let sql = format!(
            "INSERT INTO {} AS t (event_id, n, applied) \
             SELECT id, n, 1 FROM unnest($1::uuid[], $2::int8[]) AS b(id, n) \
             ON CONFLICT (event_id) DO UPDATE SET applied = t.applied + 1",
            self.0.table
        );
        let statement = tx
            .prepare_cached(&sql)
            .await
            .map_err(std::io::Error::other)?;
        tx.execute(&statement, &[&ids, &numbers])
            .await
            .map_err(std::io::Error::other)?;
        Ok(())
    }
}

#[tokio::test]
async fn a_projection_applies_whole_batches_in_one_statement_and_names_a_refused_event() {
    let Some(schema) = TestSchema::new("applies_whole_batches").await else {
        return;
    };
    let store = schema.store().await;
    for n in 0..7 {
        note(&store, &stream(1), n).await;
    }
    let events = log(&store).await;
    let refusing = AppliedInBatches(Applied {
        refuse: Some(5),
        ..Applied::in_schema(&schema.name)
    });
    let mut runner = Runner::new(
        store.clone(),
        PgReadModel::new(refusing.clone(), store.clone()),
    )
    .batch_size(3);
    match runner.catch_up().await {
        Err(RunError::Handle { event_id, .. }) => assert_eq!(event_id, events[5].event_id),
        other => panic!("expected event 5's error, got {other:?}"),
    }
    // Batches of three: events 0 to 2 committed, the batch holding event 5 rolled back.
    assert_eq!(refusing.0.tally(&store).await, (3, 0));

    let fixed = AppliedInBatches(Applied::in_schema(&schema.name));
    let mut runner = Runner::new(
        store.clone(),
        PgReadModel::new(fixed.clone(), store.clone()),
    )
    .batch_size(3);
    runner.catch_up().await.unwrap();
    assert_eq!(fixed.0.tally(&store).await, (7, 0), "every event once");
    schema.drop().await;
}

#[tokio::test]
async fn a_rebuilt_read_model_is_switched_in_with_its_checkpoint_in_one_transaction() {
    let Some(schema) = TestSchema::new("a_rebuilt_read_model_is_switched_in").await else {
        return;
    };
    let store = schema.store().await;
    for n in 0..5 {
        note(&store, &stream(1), n).await;
    }
    let live = Applied::in_schema(&schema.name);
    // The live model's runner, left running (old code) across the switch.
    let mut old = Runner::new(store.clone(), PgReadModel::new(live.clone(), store.clone()));
    old.catch_up().await.unwrap();
    note(&store, &stream(1), 5).await;

    // Version 2 is built beside the live model, with its progress shown batch by batch.
    let rebuilt = Applied {
        table: format!("\"{}\".applied_new", schema.name),
        refuse: None,
    };
    let model = PgReadModel::new(rebuilt.clone(), store.clone()).named("applied_rebuild");
    let mut runner = Runner::new(store.clone(), model).batch_size(2);
    let mut progress = runner.progress();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while progress.changed().await {
            seen.push(progress.get().handled);
        }
        seen
    });
    runner.catch_up().await.unwrap();
    drop(runner);
    let seen = watcher.await.unwrap();
    assert_eq!(seen.last(), Some(&6), "progress by batch: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {seen:?}"
    );
    assert_eq!(
        live.tally(&store).await,
        (5, 0),
        "the live model kept serving"
    );

    let refused = store
        .switch_read_model("nothing_built", "applied", "SELECT 1")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::NotBuilt { rebuilt, live } if rebuilt == "nothing_built" && live == "applied"),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("never built"), "{refused}");

    let swap = format!(
        "DROP TABLE \"{0}\".applied; ALTER TABLE \"{0}\".applied_new RENAME TO applied",
        schema.name
    );
    let at = store
        .switch_read_model("applied_rebuild", "applied", &swap)
        .await
        .unwrap();
    assert_eq!(at, log(&store).await[5].global_position);
    assert_eq!(store.load_checkpoint("applied").await.unwrap(), Some(at));
    assert_eq!(
        store.load_checkpoint("applied_rebuild").await.unwrap(),
        None
    );
    assert_eq!(
        live.tally(&store).await,
        (6, 0),
        "the rebuilt rows, now live"
    );

    // The old runner stops at its next batch instead of writing into the new tables.
    note(&store, &stream(1), 6).await;
    match old.step().await {
        Err(RunError::Switched {
            started: 0,
            found: 1,
            ..
        }) => {}
        other => panic!("expected Switched, got {other:?}"),
    }
    assert_eq!(
        live.tally(&store).await,
        (6, 0),
        "the old runner wrote nothing"
    );

    // The live name goes on from the switched checkpoint: only new events, once each.
    Runner::new(store.clone(), PgReadModel::new(live.clone(), store.clone()))
        .catch_up()
        .await
        .unwrap();
    assert_eq!(live.tally(&store).await, (7, 0));
    schema.drop().await;
}

#[tokio::test]
async fn two_stores_on_two_schemas_keep_their_own_rows_of_one_read_model() {
    let (Some(first), Some(second)) = (
        TestSchema::new("two_stores_on_two_schemas_keep_their_own_rows").await,
        TestSchema::new("two_stores_on_two_schemas_keep_their_own_rows").await,
    ) else {
        return;
    };
    // The same read model on both, its tables unqualified.
    let unqualified = |table: &str| Applied {
        table: table.to_owned(),
        refuse: None,
    };
    for (schema, events) in [(&first, 2), (&second, 3)] {
        let store = schema.store().await;
        let inline = store
            .with_inline(unqualified("applied_inline"))
            .await
            .unwrap();
        for n in 0..events {
            note(&inline, &stream(1), n).await;
        }
        Runner::new(
            store.clone(),
            PgReadModel::new(unqualified("applied"), store.clone()),
        )
        .catch_up()
        .await
        .unwrap();
        // Queries through the store's connections read its own schema too.
        assert_eq!(
            unqualified("applied").tally(&store).await,
            (events as i64, 0)
        );
    }
    for (schema, events) in [(&first, 2i64), (&second, 3)] {
        for table in ["applied", "applied_inline"] {
            let rows: i64 = schema
                .client
                .query_one(
                    &format!("SELECT count(*) FROM {}", schema.table(table)),
                    &[],
                )
                .await
                .unwrap_or_else(|e| panic!("{table} in {}: {e}", schema.name))
                .get(0);
            assert_eq!(rows, events, "{table} in {}", schema.name);
        }
    }
    first.drop().await;
    second.drop().await;
}

/// [`Applied`] with an index on `n`, named after its table as PostgreSQL names the primary
/// key's.
#[derive(Debug, Clone)]
struct Indexed {
    schema: String,
    table: &'static str,
}

impl Indexed {
    fn inner(&self) -> Applied {
        Applied {
            table: format!("\"{}\".{}", self.schema, self.table),
            refuse: None,
        }
    }
}

impl eventsrc_postgres::PgProjection for Indexed {
    const NAME: &'static str = "applied";
    type Event = Noted;
    type Error = std::io::Error;

    async fn setup(
        &mut self,
        tx: &eventsrc_postgres::deadpool_postgres::Transaction<'_>,
    ) -> Result<(), Self::Error> {
        self.inner().setup(tx).await?;
        tx.batch_execute(&format!(
            "CREATE INDEX IF NOT EXISTS {0}_n ON \"{1}\".{0} (n)",
            self.table, self.schema
        ))
        .await
        .map_err(std::io::Error::other)
    }

    async fn apply(
        &mut self,
        tx: &eventsrc_postgres::deadpool_postgres::Transaction<'_>,
        event: Noted,
        record: &RecordedEvent,
    ) -> Result<(), Self::Error> {
        self.inner().apply(tx, event, record).await
    }
}

/// The names of the indexes on `table` in `schema`, sorted.
async fn indexes(schema: &TestSchema, table: &str) -> Vec<String> {
    schema
        .client
        .query(
            "SELECT indexname::text FROM pg_indexes \
             WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname",
            &[&schema.name, &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn the_switch_contract_holds_in_the_code_every_sql_backend_runs() {
    let Some(schema) = TestSchema::new("the_switch_contract_holds").await else {
        return;
    };
    let store = schema.store().await;
    let execute = |sql: &'static str| {
        let store = store.clone();
        async move {
            store
                .client()
                .await
                .unwrap()
                .batch_execute(sql)
                .await
                .unwrap()
        }
    };
    let index_names = |table: &'static str| {
        let (client, name) = (&schema.client, schema.name.clone());
        async move {
            client
                .query(
                    "SELECT indexname::text FROM pg_indexes \
                     WHERE schemaname = $1 AND tablename = $2 AND indexname NOT LIKE '%\\_pkey' \
                     ORDER BY indexname",
                    &[&name, &table],
                )
                .await
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect::<Vec<String>>()
        }
    };
    eventsrc_testing::switch::switch_contract(&store, execute, index_names).await;
}

#[tokio::test]
async fn a_switched_table_keeps_its_index_names_across_rebuilds() {
    let Some(schema) = TestSchema::new("a_switched_table_keeps_its_index_names").await else {
        return;
    };
    let store = schema.store().await;
    let live = Indexed {
        schema: schema.name.clone(),
        table: "applied",
    };
    let rebuilt = Indexed {
        table: "applied_new",
        ..live.clone()
    };
    note(&store, &stream(1), 0).await;
    Runner::new(store.clone(), PgReadModel::new(live.clone(), store.clone()))
        .catch_up()
        .await
        .unwrap();
    assert_eq!(
        indexes(&schema, "applied").await,
        ["applied_n", "applied_pkey"]
    );
    let swap = format!(
        "DROP TABLE \"{0}\".applied; ALTER TABLE \"{0}\".applied_new RENAME TO applied",
        schema.name
    );
    for cycle in 1..=2 {
        note(&store, &stream(1), cycle).await;
        let model = PgReadModel::new(rebuilt.clone(), store.clone()).named("applied_rebuild");
        Runner::new(store.clone(), model).catch_up().await.unwrap();
        assert_eq!(
            indexes(&schema, "applied_new").await,
            ["applied_new_n", "applied_new_pkey"],
            "cycle {cycle}: the rebuild's setup made its indexes"
        );
        store
            .switch_read_model("applied_rebuild", "applied", &swap)
            .await
            .unwrap();
        assert_eq!(
            indexes(&schema, "applied").await,
            ["applied_n", "applied_pkey"],
            "cycle {cycle}: the indexes follow the table's name"
        );
        assert_eq!(
            live.inner().tally(&store).await,
            (cycle as i64 + 1, 0),
            "cycle {cycle}"
        );
    }
    schema.drop().await;
}
