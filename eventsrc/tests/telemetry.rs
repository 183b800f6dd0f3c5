//! Every metric of `eventsrc::telemetry` moves, on the memory store, an SQLite file and
//! PostgreSQL (with `EVENTSRC_POSTGRES_URL`; without it the PostgreSQL run prints
//! `EVENTSRC-POSTGRES-SKIPPED` and passes): commands of each outcome, appends, loads and
//! snapshots, the aggregate cache, runner batches and lag, parking and leadership.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Add, ConflictingStore, Lead, OpenLead, Rename, Tally};
use eventsrc::backend::LocalLeases;
use eventsrc::runner::{Perform, Retry};
use eventsrc::telemetry::names;
use eventsrc::{
    AggregateCache, CommandOptions, EventStore, ExpectedVersion, InMemory, Metadata, NewEvent,
    Projection, Reactions, Reactor, RecordedEvent, Repository, Runner, Store, StreamId,
    StreamVersion,
};
use eventsrc_testing::MetricsRecorder;

#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Refused;

/// Counts the tallies' events.
#[derive(Default)]
struct Counted(u64);

impl Projection for Counted {
    const NAME: &'static str = "counted";
    type Event = common::Added;
    type Error = Refused;
    fn apply(&mut self, _: common::Added, _: &RecordedEvent) -> Result<(), Refused> {
        self.0 += 1;
        Ok(())
    }
}

/// Reacts to every tally event with one effect, which fails while `failing` is set.
struct Echo;

impl Reactor for Echo {
    const NAME: &'static str = "echo";
    type Event = common::Added;
    type Effect = i64;
    type Error = Refused;
    fn react(&mut self, event: common::Added, _: &RecordedEvent) -> Result<Vec<i64>, Refused> {
        Ok(vec![event.amount])
    }
}

#[derive(Clone, Default)]
struct Flaky {
    failing: Arc<AtomicBool>,
    done: Arc<Mutex<Vec<i64>>>,
}

impl Perform<i64> for Flaky {
    type Error = Refused;
    async fn perform(&self, amount: i64, _: &RecordedEvent) -> Result<(), Refused> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Refused);
        }
        self.done.lock().unwrap().push(amount);
        Ok(())
    }
}

fn keyed(key: &str) -> CommandOptions {
    CommandOptions::from(Metadata::new()).idempotency_key(key)
}

/// Opens the store at `url` (whose backend reports as `backend`) and drives every metric
/// through it, recorded by a recorder of its own, then checks each one. `false`, with
/// nothing checked, when the store does not open and `skip` says so.
fn every_metric_moves(url: &str, backend: &str, cleanup: Option<&str>) -> bool {
    let metrics = MetricsRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opened = metrics.run(|| {
        runtime.block_on(async {
            let store = Store::open(url).await?;
            drive(store.clone()).await;
            if let Some(schema) = cleanup {
                drop_schema(&store, schema).await;
            }
            Ok::<_, eventsrc::OpenStoreError>(())
        })
    });
    if let Err(error) = opened {
        assert!(cleanup.is_some(), "{url} does not open: {error}");
        skip(
            "every_metric_moves_on_postgres",
            &format!("the server did not answer ({error})"),
        );
        return false;
    }

    let command = |name: &str, outcome: &str| {
        metrics.counter(names::COMMANDS, &[("command", name), ("outcome", outcome)])
    };
    assert_eq!(
        command("Add", "committed"),
        4,
        "{:#?}",
        metrics.series(names::COMMANDS)
    );
    assert_eq!(command("Add", "refused"), 1);
    assert_eq!(command("Add", "stale"), 1);
    assert_eq!(command("Add", "replayed"), 1);
    assert_eq!(command("OpenLead", "invalid"), 1);
    assert_eq!(command("OpenLead", "committed"), 1);
    assert_eq!(command("Rename", "no_op"), 1);
    assert_eq!(
        metrics.counter(names::COMMAND_RETRIES, &[("command", "Add")]),
        1,
        "the conflicting store made one command decide twice"
    );
    assert_eq!(
        metrics
            .histogram(names::COMMAND_SECONDS, &[("command", "Add")])
            .len(),
        7
    );

    let append = |outcome: &str| {
        metrics.counter(
            names::APPENDS,
            &[("backend", backend), ("outcome", outcome)],
        )
    };
    // Six commands committed; the conflicting store appended one foreign event first.
    assert_eq!(
        append("committed"),
        6 + 1,
        "{:#?}",
        metrics.series(names::APPENDS)
    );
    assert_eq!(append("conflict"), 1);
    assert_eq!(
        append("already_stored"),
        1,
        "the raw retry of a stored batch"
    );
    assert_eq!(
        metrics.counter(names::APPENDED_EVENTS, &[("backend", backend)]),
        // Tallies: 1 + 2 + 1 + 1 + 1 events, a lead: 1, the foreign event: 1.
        8
    );
    assert_eq!(
        metrics
            .histogram(names::APPEND_SECONDS, &[("backend", backend)])
            .len() as u64,
        metrics.counter_sum(names::APPENDS, &[("backend", backend)])
    );

    let loads = |snapshot: &str| {
        metrics.counter(
            names::LOADS,
            &[("aggregate", "tally"), ("snapshot", snapshot)],
        )
    };
    assert!(loads("miss") >= 1, "{:#?}", metrics.series(names::LOADS));
    assert_eq!(loads("hit"), 1, "the load after the snapshot was taken");
    // The lead: read for its first command (nothing yet), then loaded with its one event.
    let lead = |snapshot: &str| {
        metrics.counter(
            names::LOADS,
            &[("aggregate", "lead"), ("snapshot", snapshot)],
        )
    };
    assert_eq!((lead("miss"), lead("hit")), (2, 0));
    assert_eq!(
        metrics.counter(names::LOAD_EVENTS, &[("aggregate", "lead")]),
        1
    );
    let cache = |outcome: &str| {
        metrics.counter(
            names::CACHE,
            &[("aggregate", "tally"), ("outcome", outcome)],
        )
    };
    assert_eq!(cache("miss"), 1, "{:#?}", metrics.series(names::CACHE));
    assert!(cache("hit") >= 2);

    let consumer = [("consumer", "counted")];
    assert!(metrics.counter(names::RUNNER_BATCHES, &consumer) >= 3);
    assert!(metrics.counter(names::RUNNER_EVENTS, &consumer) >= 7);
    assert_eq!(
        metrics
            .histogram(names::RUNNER_BATCH_SECONDS, &consumer)
            .len() as u64,
        metrics.counter(names::RUNNER_BATCHES, &consumer)
    );
    assert_eq!(
        metrics.gauge(names::RUNNER_LAG_EVENTS, &consumer),
        Some(0.0),
        "caught up at the end"
    );
    assert_eq!(
        metrics.gauge(names::RUNNER_LAG_SECONDS, &consumer),
        Some(0.0)
    );
    let echo = [("consumer", "echo")];
    assert_eq!(metrics.counter(names::REACTOR_PARKED, &echo), 7);
    assert_eq!(metrics.counter(names::REACTOR_UNPARKED, &echo), 7);
    let leader = |change: &str| {
        metrics.counter(
            names::RUNNER_LEADERSHIP,
            &[("consumer", "counted"), ("change", change)],
        )
    };
    assert_eq!(leader("acquired"), 1);

    // Nothing in the table was left out, and nothing is recorded that the table lacks.
    let recorded: BTreeSet<String> = metrics.names().into_iter().collect();
    let documented: BTreeSet<String> = names::ALL.iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(recorded, documented);
    true
}

async fn drive(store: Store) {
    let cache = AggregateCache::new(100);
    let repository = Repository::new(store.clone())
        .with_snapshots(store.clone())
        .with_cache(cache.clone());
    let tally = "t1".to_owned();
    let add = |amounts: Vec<i64>, options: CommandOptions| {
        let repository = &repository;
        let tally = &tally;
        async move {
            repository
                .execute::<Tally, _>(tally, Add(amounts), options)
                .await
        }
    };
    // A miss, then hits; two events reach the snapshot policy (every 2).
    add(vec![1], Metadata::new().into()).await.unwrap();
    add(vec![2, 3], Metadata::new().into()).await.unwrap();
    add(vec![], Metadata::new().into()).await.unwrap_err();
    let stale = CommandOptions::from(Metadata::new()).expect_version(StreamVersion(1));
    add(vec![4], stale).await.unwrap_err();
    add(vec![5], keyed("k")).await.unwrap();
    assert!(add(vec![5], keyed("k")).await.unwrap().replayed);

    repository
        .execute::<Lead, _>(&1, OpenLead::named(""), Metadata::new())
        .await
        .unwrap_err();
    repository
        .execute::<Lead, _>(&1, OpenLead::named("Ada"), Metadata::new())
        .await
        .unwrap();
    let same = Rename { name: "Ada".into() };
    let no_op = repository
        .execute::<Lead, _>(&1, same, Metadata::new())
        .await
        .unwrap();
    assert!(no_op.events.is_empty());

    // One conflict, then a retry that commits.
    let foreign = NewEvent::raw("tally.added", 1, r#"{"amount":100}"#);
    let racing = Repository::new(ConflictingStore::new(store.clone(), 1, foreign));
    racing
        .execute::<Tally, _>(&"t2".to_owned(), Add(vec![6]), Metadata::new())
        .await
        .unwrap();

    // A load from the snapshot taken at version 2 (a repository without a cache reads).
    Repository::new(store.clone())
        .with_snapshots(store.clone())
        .load::<Tally>(&tally)
        .await
        .unwrap();

    let lead = repository.load::<Lead>(&1).await.unwrap();
    assert_eq!(lead.version, StreamVersion(1));

    // A retried raw append of a stored batch.
    let stream = StreamId::new("tally", "t3").unwrap();
    let event = NewEvent::raw("tally.added", 1, r#"{"amount":7}"#);
    for _ in 0..2 {
        store
            .append(&stream, ExpectedVersion::Any, vec![event.clone()])
            .await
            .unwrap();
    }

    // A runner in batches of 3 (behind, then caught up with a part batch), run as leader
    // until it has it all.
    let leases = LocalLeases::default();
    let target = InMemory::new(Counted::default());
    let model = target.model();
    let runner = Runner::new(store.clone(), target)
        .batch_size(3)
        .poll_interval(Duration::from_millis(5));
    let progress = runner.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let leader = tokio::spawn(async move {
        runner
            .run_as_leader(&leases, async {
                stopped.await.ok();
            })
            .await
    });
    tokio::time::timeout(Duration::from_secs(20), async {
        while model.read().0 < 7 || !progress.get().caught_up {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the runner handled {} of the 7 tally events, progress {:?}",
            model.read().0,
            progress.get()
        )
    });
    stop.send(()).unwrap();
    leader.await.unwrap().unwrap();

    // A reactor whose effects fail: every event parked, then replayed once fixed.
    let flaky = Flaky::default();
    flaky.failing.store(true, Ordering::SeqCst);
    let no_retries = Retry {
        attempts: 1,
        delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    };
    let reactions = Reactions::new(Echo, flaky.clone(), store.clone()).retry(no_retries);
    let mut runner = Runner::new(store.clone(), reactions);
    runner.catch_up().await.unwrap();
    flaky.failing.store(false, Ordering::SeqCst);
    let replayed = runner.into_consumer().replay_parked().await.unwrap();
    assert_eq!(replayed.succeeded.len(), 7);
}

#[test]
fn every_metric_moves_on_the_memory_store() {
    assert!(every_metric_moves("memory:", "memory", None));
}

#[test]
fn every_metric_moves_on_an_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("eventsrc-telemetry-{}", eventsrc::EventId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("events.db").display());
    assert!(every_metric_moves(&url, "sqlite", None));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_metric_moves_on_postgres() {
    let server = match std::env::var("EVENTSRC_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            return skip(
                "every_metric_moves_on_postgres",
                "set EVENTSRC_POSTGRES_URL",
            );
        }
    };
    let random = eventsrc::EventId::new().0.simple().to_string();
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Named as eventsrc-postgres's tests name theirs, whose support code sweeps old ones.
    let schema = format!("eventsrc_test_{seconds}_{}", &random[random.len() - 12..]);
    let separator = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{separator}schema={schema}");
    every_metric_moves(&url, "postgres", Some(&schema));
}

async fn drop_schema(store: &Store, schema: &str) {
    let Store::Postgres(pg) = store else {
        panic!("expected a PostgreSQL store, got {store}");
    };
    pg.pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

fn skip(test: &str, why: &str) {
    let line = format!(
        "\nEVENTSRC-POSTGRES-SKIPPED: `{test}` did not run: {why} \
         (e.g. EVENTSRC_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test)\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}
