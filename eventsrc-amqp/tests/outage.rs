//! A broker outage while the relay runs: the broker closes every connection (twice), then its
//! application stops and starts again. The relay reports the messages it could not send
//! unavailable, connects again by itself, parks nothing, and publishes every event.
//!
//! Alone in its own test binary: it closes every connection to the broker and stops it for a
//! while, which would fail any other test using the broker at the same time. Cargo runs test
//! binaries one after another.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{bound_queue, connect, delete, drain, quick, runtime, topic_exchange};
use eventsrc_amqp::Exchange;
use eventsrc_core::relay::{Failure, Outgoing, PublishError, Publisher, Relay};
use eventsrc_core::store::ReadAll;
use eventsrc_core::{
    EventStore, ExpectedVersion, GlobalPosition, MemoryStore, NewEvent, ProgressWatch, Runner,
    StreamId,
};

const DEADLINE: Duration = Duration::from_secs(60);

/// The exchange, counting the messages it reported unavailable.
struct Counting {
    exchange: Exchange,
    unavailable: AtomicUsize,
}

impl Publisher for Counting {
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), PublishError>> {
        let results = self.exchange.publish(messages).await;
        let down = results
            .iter()
            .filter(|r| matches!(r, Err(e) if e.failure == Failure::Unavailable))
            .count();
        self.unavailable.fetch_add(down, Ordering::SeqCst);
        results
    }
}

fn rabbitmqctl(args: &[&str]) {
    let output = Command::new("rabbitmqctl").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts the broker's application again when dropped, so that a failing test does not leave
/// it stopped.
struct Stopped;

impl Stopped {
    fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        Self
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
    }
}

/// Waits, with the deadline, until the relay has handled events past where it is now.
async fn moves_on(progress: &ProgressWatch) {
    let handled = progress.get().handled;
    let mut watch = progress.clone();
    tokio::time::timeout(DEADLINE, async {
        while progress.get().handled <= handled {
            assert!(watch.changed().await, "the relay stopped");
        }
    })
    .await
    .expect("the relay did not move on");
}

#[test]
fn a_broker_outage_mid_run_loses_nothing_parks_nothing_and_the_relay_finishes() {
    runtime().block_on(async {
        let (name, exchange) = topic_exchange().await;
        let queue = {
            let (_connection, channel) = connect().await;
            bound_queue(&channel, &name, "#").await
        };
        let publisher = Arc::new(Counting {
            exchange,
            unavailable: AtomicUsize::new(0),
        });
        let store = MemoryStore::new();
        let relay = Relay::new("through-outage", publisher.clone(), store.clone())
            .retry(quick())
            .unavailable_for(Duration::from_secs(120));
        let runner = Runner::new(store.clone(), relay)
            .batch_size(50)
            .poll_interval(Duration::from_millis(20));
        let progress = runner.progress();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(runner.run(async {
            let _ = stopped.await;
        }));

        // Events keep coming, five at a time, all through the outage (at most 4,000 appends).
        let appending = Arc::new(AtomicBool::new(true));
        let appender = tokio::spawn({
            let store = store.clone();
            let appending = appending.clone();
            async move {
                for n in 0..4_000 {
                    if !appending.load(Ordering::SeqCst) {
                        break;
                    }
                    let stream: StreamId = format!("account-{}", n % 50).parse().unwrap();
                    let events = (0..5)
                        .map(|_| NewEvent::raw("account.credited", 1, "{}"))
                        .collect();
                    store
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });

        moves_on(&progress).await;
        for _ in 0..2 {
            tokio::task::spawn_blocking(|| rabbitmqctl(&["close_all_connections", "test"]))
                .await
                .unwrap();
            moves_on(&progress).await;
        }

        let before = publisher.unavailable.load(Ordering::SeqCst);
        let stopped_app = tokio::task::spawn_blocking(Stopped::stop).await.unwrap();
        // The relay hits the stopped broker.
        tokio::time::timeout(DEADLINE, async {
            while publisher.unavailable.load(Ordering::SeqCst) == before {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the relay never found the broker down");
        tokio::task::spawn_blocking(move || drop(stopped_app))
            .await
            .unwrap();
        moves_on(&progress).await;

        appending.store(false, Ordering::SeqCst);
        appender.await.unwrap();
        let head = store.head_position().await.unwrap();
        progress.wait_for(head, DEADLINE).await.unwrap();
        stop.send(()).unwrap();
        let relay = running.await.unwrap().unwrap();
        assert!(relay.parked().await.unwrap().is_empty(), "nothing parked");

        let stored = store
            .read_all(ReadAll::after(GlobalPosition::START).limit(100_000))
            .await
            .unwrap();
        let (_connection, channel) = connect().await;
        let delivered = drain(&channel, &queue).await;
        let ids: HashSet<String> = delivered
            .iter()
            .map(|m| m.properties.message_id().as_ref().unwrap().to_string())
            .collect();
        let expected: HashSet<String> = stored.iter().map(|r| r.event_id.to_string()).collect();
        assert_eq!(ids, expected, "every event arrived, and nothing else");
        println!(
            "published {} messages for {} events: {} duplicates dropped; {} reported unavailable",
            delivered.len(),
            stored.len(),
            delivered.len() - ids.len(),
            publisher.unavailable.load(Ordering::SeqCst)
        );
        delete(&channel, &name, &[&queue]).await;
    });
}
