//! The JetStream relay killed with SIGKILL 20 times at random moments, batches in flight,
//! while events are appended: afterwards the JetStream stream holds every event exactly once
//! (the server drops the copies a restarted relay publishes again, by `Nats-Msg-Id`), each
//! stream's events in order.
//!
//! The relay runs in a child process (this test binary again, told by an environment
//! variable), over an SQLite file, so that its checkpoint survives the kill.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventsrc::nats::JetStream;
use eventsrc::relay::{Relay, Subjects};
use eventsrc::store::ReadAll;
use eventsrc::{CheckpointStore, EventStore, GlobalPosition, Runner, Store};
use support::{
    Random, TempDir, append_many, check_exactly_once_in_order, connect, nats_url, read_all, run,
    unique, wait_until,
};

const CHILD_DB: &str = "EVENTSRC_NATS_CRASH_DB";
const CHILD_STREAM: &str = "EVENTSRC_NATS_CRASH_STREAM";
const RELAY: &str = "crash-relay";
const KILLS: usize = 20;

/// The child's part: run the relay until killed.
async fn relay(db: &str, name: &str) {
    let store = Store::open(&format!("sqlite://{db}")).await.unwrap();
    let nats = JetStream::connect(&nats_url()).await.unwrap();
    let relay = Relay::new(RELAY, nats, store.clone())
        .subjects(Subjects::template(&format!("{name}.{{category}}")).unwrap());
    Runner::new(store, relay)
        .batch_size(40)
        .poll_interval(Duration::from_millis(5))
        .run(std::future::pending())
        .await
        .unwrap();
}

fn spawn_relay(db: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "the_relay_killed_20_times_publishes_every_event_exactly_once_in_order",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD_DB, db)
        .env(CHILD_STREAM, name)
        .spawn()
        .unwrap()
}

#[test]
fn the_relay_killed_20_times_publishes_every_event_exactly_once_in_order() {
    if let (Ok(db), Ok(name)) = (std::env::var(CHILD_DB), std::env::var(CHILD_STREAM)) {
        run(relay(&db, &name));
        return;
    }
    run(async {
        let nats = connect().await;
        let name = unique("CRASH");
        nats.ensure_stream(&name, &[&format!("{name}.>")], Duration::from_secs(300))
            .await
            .unwrap();
        let dir = TempDir::new("eventsrc-nats-crash");
        let db = dir.0.join("events.db").display().to_string();
        let store = Store::open(&format!("sqlite://{db}")).await.unwrap();
        append_many(&store, 50, 20).await;

        // More events arrive all the while the relay is killed and restarted.
        let killing = Arc::new(AtomicBool::new(true));
        let appender = {
            let store = store.clone();
            let killing = killing.clone();
            tokio::spawn(async move {
                let mut rounds = 0;
                while killing.load(Ordering::Relaxed) {
                    append_many(&store, 50, 1).await;
                    rounds += 1;
                    // Spreads the appends over the kills (pacing, not waiting for an outcome).
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                rounds
            })
        };
        let mut random = Random::seeded();
        let mut checkpoints = Vec::new();
        for _ in 0..KILLS {
            let mut child = spawn_relay(&db, &name);
            tokio::time::sleep(Duration::from_millis(random.between(30, 400))).await;
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            checkpoints.push(store.load_checkpoint(RELAY).await.unwrap());
        }
        killing.store(false, Ordering::Relaxed);
        let rounds = appender.await.unwrap();
        let head = store.head_position().await.unwrap();
        let moved = checkpoints.windows(2).filter(|w| w[0] != w[1]).count();
        println!("checkpoints after each kill: {checkpoints:?}; head {head}");
        assert!(
            moved >= KILLS / 2,
            "the relay made progress between most kills: {checkpoints:?}"
        );

        // Once more, to the end.
        let mut child = spawn_relay(&db, &name);
        wait_until(
            "the relay reaches the head",
            Duration::from_secs(120),
            || {
                let store = store.clone();
                async move { store.load_checkpoint(RELAY).await.unwrap() == Some(head) }
            },
        )
        .await;
        child.kill().unwrap();
        child.wait().unwrap();

        let stored = store
            .read_all(ReadAll::after(GlobalPosition::START).limit(100_000))
            .await
            .unwrap();
        assert_eq!(stored.len(), 50 * 20 + rounds * 50);
        let received = read_all(&nats, &name).await;
        check_exactly_once_in_order(&received, &stored);
        println!(
            "{} events published exactly once across {KILLS} kills",
            received.len()
        );
    });
}
