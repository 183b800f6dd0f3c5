//! Many nodes, one read model: leases as session advisory locks, handed over when a holder
//! dies, and a read model that every event reaches exactly once across the handover. Each
//! "node" is a store handle of its own (its own pool and connections).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eventsrc::backend::Leases;
use eventsrc::{RunError, Runner};
use eventsrc::{StreamId, Tenant, Tenants};
use eventsrc_postgres::{PgEventStore, PgReadModel};
use support::read_model::{Applied, note};
use support::{TestSchema, until};

const DEADLINE: Duration = Duration::from_secs(30);

/// The backends of the sessions of the application `$1` that hold a lease: an advisory lock,
/// on a connection whose last statement was a lease's (pooled connections take
/// transaction-level advisory locks too, setting up a read model).
const LEASE_SESSIONS: &str = "SELECT l.pid FROM pg_locks l \
     JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1 \
       AND (a.query LIKE 'SELECT pg_try_advisory_lock%' OR a.query = 'SELECT 1')";

/// Terminates the backends of `schema`'s lease sessions. Returns how many.
async fn terminate_lease_sessions(schema: &TestSchema) -> i64 {
    schema
        .client
        .query_one(
            &format!("SELECT count(pg_terminate_backend(pid)) FROM ({LEASE_SESSIONS}) s"),
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_exclusive_across_handles_and_freed_when_dropped() {
    let Some(schema) = TestSchema::new("leases_are_exclusive_across_handles").await else {
        return;
    };
    let (a, b) = (schema.store().await, schema.store().await);
    let lease = a.try_acquire("projector").await.unwrap().expect("free");
    assert!(lease.is_held());
    assert!(b.try_acquire("projector").await.unwrap().is_none());
    // A lease is a session's: another try from the same handle is another session.
    assert!(a.try_acquire("projector").await.unwrap().is_none());
    // Other names, and the same name of another tenant, are other leases.
    let other = b
        .try_acquire("mailer")
        .await
        .unwrap()
        .expect("another name");
    let acme = b
        .with_tenant(Tenant::new("acme"))
        .try_acquire("projector")
        .await
        .unwrap()
        .expect("another tenant");

    // A follower's kept session dies between tries: the next try is still an answer.
    let killed: i64 = schema
        .client
        .query_one(
            "SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a \
             WHERE a.application_name = $1 AND a.query LIKE '%pg_try_advisory_lock%' \
               AND NOT EXISTS (SELECT 1 FROM pg_locks l \
                               WHERE l.pid = a.pid AND l.locktype = 'advisory')",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the followers' kept sessions");
    assert!(b.try_acquire("projector").await.unwrap().is_none());

    drop(lease);
    until("the dropped lease to be free", DEADLINE, || async {
        b.try_acquire("projector").await.unwrap().is_some()
    })
    .await;
    drop((other, acme));
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_lost_when_its_session_is_terminated() {
    let Some(schema) = TestSchema::new("a_lease_is_lost_when_its_session_is_terminated").await
    else {
        return;
    };
    let (a, b) = (schema.store().await, schema.store().await);
    let mut lease = a.try_acquire("projector").await.unwrap().expect("free");
    assert!(b.try_acquire("projector").await.unwrap().is_none());

    assert_eq!(terminate_lease_sessions(&schema).await, 1);
    tokio::time::timeout(DEADLINE, lease.lost())
        .await
        .expect("the holder learns that its lease is lost");
    assert!(!lease.is_held());
    until("another node to take the lease", DEADLINE, || async {
        b.try_acquire("projector").await.unwrap().is_some()
    })
    .await;
    drop(lease);
    schema.drop().await;
}

/// One node of the test: a runner of the read model on a store handle of its own, following
/// the lease, and a watch on its progress.
struct Node {
    store: PgEventStore,
    task: tokio::task::JoinHandle<Result<PgReadModel<Applied>, RunError>>,
    progress: eventsrc::ProgressWatch,
}

impl Node {
    async fn start(schema: &TestSchema) -> Self {
        let store = schema.store().await;
        let model = PgReadModel::new(Applied::in_schema(&schema.name), store.clone());
        let runner = Runner::new(store.clone(), model)
            .batch_size(16)
            .poll_interval(Duration::from_millis(50));
        let progress = runner.progress();
        let leases = store.clone();
        let task = tokio::spawn(async move {
            runner
                .run_as_leader(&leases, std::future::pending::<()>())
                .await
        });
        Self {
            store,
            task,
            progress,
        }
    }

    fn handled(&self) -> u64 {
        self.progress.get().handled
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lease_passes_to_a_follower_and_every_event_is_applied_exactly_once() {
    const EVENTS: u64 = 300;
    let Some(schema) = TestSchema::new("the_lease_passes_to_a_follower").await else {
        return;
    };
    let nodes = [Node::start(&schema).await, Node::start(&schema).await];

    // A writer on a third handle appends one event at a time, paced so that the stream is
    // still being written when the leader is stopped.
    let writer = schema.store().await;
    let written = Arc::new(AtomicU64::new(0));
    let writing = {
        let (writer, written) = (writer.clone(), written.clone());
        tokio::spawn(async move {
            let mut last = None;
            let mut pace = tokio::time::interval(Duration::from_millis(4));
            for n in 0..EVENTS {
                pace.tick().await;
                let stream = StreamId::new("noted", n % 7).unwrap();
                last = Some(note(&writer, &stream, n).await.position);
                written.store(n + 1, Ordering::SeqCst);
            }
            last.unwrap()
        })
    };

    until(
        "a leader to apply a quarter of the events",
        DEADLINE,
        || async { nodes.iter().any(|node| node.handled() >= EVENTS / 4) },
    )
    .await;
    let [first, second] = nodes;
    let (leader, follower) = if first.handled() > 0 {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(follower.handled(), 0, "only the lease holder runs");
    assert!(
        written.load(Ordering::SeqCst) < EVENTS,
        "the leader must stop mid-stream"
    );
    // The leader's node dies: its runner, lease and connections go with it.
    leader.task.abort();
    assert!(leader.task.await.unwrap_err().is_cancelled());
    drop(leader.store);

    let last = writing.await.unwrap();
    follower
        .progress
        .wait_for(last, DEADLINE)
        .await
        .expect("the follower takes over and catches up");
    assert!(follower.handled() > 0, "the follower ran");

    let model = Applied::in_schema(&schema.name);
    let (rows, not_once) = model.tally(&writer).await;
    assert_eq!(rows, EVENTS as i64, "every event was applied");
    assert_eq!(not_once, 0, "no event was applied twice");
    follower.task.abort();
    drop(follower.store);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_session_is_cut_keeps_running_yet_applies_nothing_twice() {
    const EVENTS: u64 = 200;
    let Some(schema) = TestSchema::new("a_leader_whose_session_is_cut").await else {
        return;
    };
    let nodes = [Node::start(&schema).await, Node::start(&schema).await];
    let writer = schema.store().await;
    let writing = {
        let writer = writer.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut pace = tokio::time::interval(Duration::from_millis(4));
            for n in 0..EVENTS {
                pace.tick().await;
                let stream = StreamId::new("noted", n % 5).unwrap();
                last = Some(note(&writer, &stream, n).await.position);
            }
            last.unwrap()
        })
    };
    until(
        "a leader to apply a quarter of the events",
        DEADLINE,
        || async { nodes.iter().any(|node| node.handled() >= EVENTS / 4) },
    )
    .await;
    // Cut the leader's lease session, several times: each time it notices, stops, and both
    // nodes race for the lease again, the old leader perhaps mid-batch.
    for _ in 0..3 {
        let cut = lease_holder(&schema)
            .await
            .expect("a leader holds the lease");
        assert_eq!(terminate_lease_sessions(&schema).await, 1);
        until("another session to hold the lease", DEADLINE, || async {
            lease_holder(&schema).await.is_some_and(|pid| pid != cut)
        })
        .await;
    }

    let last = writing.await.unwrap();
    eventsrc::wait_for_checkpoint(
        &writer,
        "applied",
        last,
        DEADLINE,
        Duration::from_millis(10),
    )
    .await
    .expect("the read model reaches the last event");
    let (rows, not_once) = Applied::in_schema(&schema.name).tally(&writer).await;
    assert_eq!(rows, EVENTS as i64, "every event was applied");
    assert_eq!(not_once, 0, "no event was applied twice");
    for node in nodes {
        node.task.abort();
    }
    schema.drop().await;
}

/// The backend of `schema`'s session holding an advisory lock now, if any.
async fn lease_holder(schema: &TestSchema) -> Option<i32> {
    schema
        .client
        .query_opt(LEASE_SESSIONS, &[&schema.name])
        .await
        .unwrap()
        .map(|row| row.get(0))
}
