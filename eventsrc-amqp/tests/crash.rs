//! Crash safety: the relay runs in a child process over an SQLite file and is killed (SIGKILL)
//! twenty times at random moments, batches in flight, while more events are appended; each
//! time it starts again from its checkpoint. Once it finishes, the queue holds every event,
//! exactly once after dropping copies by `message_id`, and each stream's first deliveries in
//! stream-version order.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bound_queue, connect, delete, drain, runtime, topic_exchange, unique, url};
use eventsrc_amqp::Exchange;
use eventsrc_core::relay::Relay;
use eventsrc_core::store::ReadAll;
use eventsrc_core::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, Runner,
    StreamId,
};
use eventsrc_sqlite::SqliteEventStore;

/// In a child process: the SQLite file the relay reads.
const RELAY_DB: &str = "EVENTSRC_AMQP_TEST_RELAY_DB";
/// In a child process: the exchange it publishes to.
const RELAY_EXCHANGE: &str = "EVENTSRC_AMQP_TEST_RELAY_EXCHANGE";
/// In a child process: catch up and exit, rather than run until killed.
const RELAY_FINISH: &str = "EVENTSRC_AMQP_TEST_RELAY_FINISH";

const RELAY: &str = "crash-relay";
const TEST: &str =
    "a_relay_killed_at_random_moments_publishes_every_event_once_after_dropping_copies";
const STREAMS: usize = 200;
const DEADLINE: Duration = Duration::from_secs(60);

/// The relay role, when this process is a child: runs until killed, or catches up and exits.
fn as_relay() -> bool {
    let Some(db) = std::env::var_os(RELAY_DB) else {
        return false;
    };
    let exchange = std::env::var(RELAY_EXCHANGE).unwrap();
    let finish = std::env::var_os(RELAY_FINISH).is_some();
    runtime().block_on(async {
        let store = SqliteEventStore::open(&db).await.unwrap();
        let exchange = Exchange::connect(&url(), &exchange).await.unwrap();
        let relay = Relay::new(RELAY, exchange, store.clone());
        let mut runner = Runner::new(store, relay)
            .batch_size(100)
            .poll_interval(Duration::from_millis(20));
        if finish {
            runner.catch_up().await.unwrap();
        } else {
            runner.run(std::future::pending()).await.unwrap();
        }
    });
    true
}

fn spawn(db: &Path, exchange: &str, finish: bool) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([TEST, "--exact", "--test-threads=1"])
        .env(RELAY_DB, db)
        .env(RELAY_EXCHANGE, exchange)
        .stdout(Stdio::null());
    if finish {
        command.env(RELAY_FINISH, "1");
    }
    command.spawn().unwrap()
}

/// A small xorshift generator: random enough for kill delays, no dependency.
struct Random(u64);

impl Random {
    fn new() -> Self {
        Self((EventId::new().0.as_u128() as u64) | 1)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Appends `rounds` of five events to each of `streams` (a stream per index, round-robin).
async fn append(store: &SqliteEventStore, streams: std::ops::Range<usize>, pause: Duration) {
    for s in streams {
        let stream: StreamId = format!("account-{}", s % STREAMS).parse().unwrap();
        let events = (0..5)
            .map(|n| NewEvent::raw("account.credited", 1, format!(r#"{{"n":{n}}}"#)))
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .unwrap();
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

struct Killed(Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        // A failed test must not leave a relay behind.
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_relay_killed_at_random_moments_publishes_every_event_once_after_dropping_copies() {
    if as_relay() {
        return;
    }
    runtime().block_on(async {
        let dir: PathBuf = std::env::temp_dir().join(unique("crash"));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("events.db");
        let store = SqliteEventStore::open(&db).await.unwrap();
        // 2,000 events in 200 streams before the relay starts.
        append(&store, 0..400, Duration::ZERO).await;

        let (_connection, channel) = connect().await;
        let (name, _declared) = topic_exchange().await;
        let queue = bound_queue(&channel, &name, "#").await;

        // 500 more while the relay is killed and started again.
        let appending = tokio::spawn({
            let store = store.clone();
            async move { append(&store, 400..500, Duration::from_millis(25)).await }
        });
        let mut random = Random::new();
        let mut mid_log = 0;
        for _ in 0..20 {
            let mut child = Killed(Some(spawn(&db, &name, false)));
            tokio::time::sleep(Duration::from_millis(30 + random.below(300))).await;
            let relay = child.0.as_mut().unwrap();
            relay.kill().unwrap();
            relay.wait().unwrap();
            child.0 = None;
            let checkpoint = store.load_checkpoint(RELAY).await.unwrap();
            if checkpoint < Some(store.head_position().await.unwrap()) {
                mid_log += 1;
            }
        }
        appending.await.unwrap();

        let mut last = Killed(Some(spawn(&db, &name, true)));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = last.0.as_mut().unwrap().try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the last relay did not finish"
            );
            // Waiting for another process's exit: nothing to block on with a timeout in std.
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        last.0 = None;
        assert!(status.success(), "the last relay failed: {status}");
        let head = store.head_position().await.unwrap();
        assert_eq!(store.load_checkpoint(RELAY).await.unwrap(), Some(head));

        let stored = store
            .read_all(ReadAll::after(GlobalPosition::START).limit(100_000))
            .await
            .unwrap();
        assert_eq!(stored.len(), 2_500);
        let delivered = drain(&channel, &queue).await;
        let mut seen = HashSet::new();
        let mut versions: HashMap<String, u64> = HashMap::new();
        for message in &delivered {
            let id = message
                .properties
                .message_id()
                .as_ref()
                .unwrap()
                .to_string();
            if !seen.insert(id) {
                continue;
            }
            let event = eventsrc_amqp::incoming(message).unwrap();
            let version = versions.entry(event.stream.to_string()).or_default();
            assert_eq!(
                event.stream_version.0,
                *version + 1,
                "the first deliveries of `{}` are in version order",
                event.stream
            );
            *version += 1;
        }
        let expected: HashSet<String> = stored.iter().map(|r| r.event_id.to_string()).collect();
        assert_eq!(seen, expected, "every event arrived, and nothing else");
        println!(
            "published {} messages for {} events: {} duplicates dropped; {} of 20 kills mid-log",
            delivered.len(),
            stored.len(),
            delivered.len() - seen.len(),
            mid_log
        );
        delete(&channel, &name, &[&queue]).await;
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
