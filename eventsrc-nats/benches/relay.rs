//! The JetStream relay beside NATS's own client publishing the same messages: events/s
//! published with batches of 1 and 100, and the latency from an append to a subscriber
//! receiving the message (p50, p99), in one run against the same server. Prints two tables.
//!
//! Run with: `cargo bench -p eventsrc-nats` (a NATS server with JetStream at
//! `EVENTSRC_NATS_URL`, by default `nats://127.0.0.1:4222`). `EVENTSRC_BENCH_SCALE=0.1` shrinks
//! the workloads for a quick look.
//!
//! - raw: `async_nats` JetStream publishes, each message with the same headers, payload and
//!   `Nats-Msg-Id` as the relay's; batch 1 awaits each acknowledgement before the next publish,
//!   batch 100 sends 100 and then awaits their acknowledgements.
//! - relay: `Relay` + `Runner::catch_up` over events already stored, the runner's batch size 1
//!   or 100, on the memory store and on an SQLite file (durable commits).
//! - latency: events appended one at a time, 2 ms apart, with the relay running live; a core
//!   NATS subscription on the subject notes when each arrives. Raw: the same, with the
//!   publisher's own publish in place of an append.

// A failed step is a failed run, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use eventsrc::nats::JetStream;
use eventsrc::relay::{Relay, Subjects, headers, message_id};
use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, Runner, Store, StreamId};
use futures_util::StreamExt;

fn scale(n: usize) -> usize {
    let factor: f64 = std::env::var("EVENTSRC_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * factor) as usize).max(10)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", eventsrc::EventId::new().0.simple())
}

/// Appends `n` events over 100 streams, one event per append.
async fn fill<S: EventStore>(store: &S, n: usize) {
    for i in 0..n {
        let stream = StreamId::new("cart", i % 100).unwrap();
        let event = NewEvent::raw(
            "cart.item_added",
            1,
            format!(r#"{{"sku":"sku-{i}","quantity":2,"price_cents":1999}}"#),
        );
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
}

/// A JetStream stream of its own for one measurement.
async fn stream(nats: &JetStream, name: &str) -> String {
    nats.ensure_stream(name, &[&format!("{name}.>")], Duration::from_secs(120))
        .await
        .unwrap();
    name.to_owned()
}

/// Raw publishes of the messages the relay would send for `records`, `batch` in flight.
async fn raw_rate(nats: &JetStream, n: usize, batch: usize) -> f64 {
    let name = stream(nats, &unique("RAW")).await;
    let store = MemoryStore::new();
    fill(&store, n).await;
    let records = store
        .read_all(eventsrc::store::ReadAll::after(eventsrc::GlobalPosition::START).limit(n))
        .await
        .unwrap();
    let subject = format!("{name}.cart");
    let started = Instant::now();
    for chunk in records.chunks(batch) {
        let mut acks = Vec::with_capacity(chunk.len());
        for record in chunk {
            let mut publish = async_nats::jetstream::message::PublishMessage::build()
                .payload(record.payload.as_bytes().to_vec().into())
                .message_id(message_id(record.event_id));
            for (header, value) in headers::headers(record) {
                publish = publish.header(header, value.as_str());
            }
            acks.push(
                nats.context()
                    .send_publish(subject.clone(), publish)
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    nats.context().delete_stream(&name).await.unwrap();
    rate
}

/// The relay over `store` (already holding `n` events), the runner's batch `batch`.
async fn relay_rate<
    S: EventStore + eventsrc::CheckpointStore + eventsrc::backend::ParkedStore + Clone,
>(
    nats: &JetStream,
    store: S,
    n: usize,
    batch: usize,
) -> f64 {
    let name = stream(nats, &unique("RELAY")).await;
    let relay = Relay::new(unique("relay"), nats.clone(), store.clone())
        .subjects(Subjects::template(&format!("{name}.{{category}}")).unwrap());
    let mut runner = Runner::new(store, relay).batch_size(batch);
    let started = Instant::now();
    let progress = runner.catch_up().await.unwrap();
    let rate = progress.handled as f64 / started.elapsed().as_secs_f64();
    assert_eq!(progress.handled as usize, n);
    nats.context().delete_stream(&name).await.unwrap();
    rate
}

/// p50 and p99 of `latencies`.
fn percentiles(mut latencies: Vec<Duration>) -> (Duration, Duration) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (at(0.50), at(0.99))
}

/// Latency from a raw publish to a core subscriber.
async fn raw_latency(
    nats: &JetStream,
    client: &async_nats::Client,
    n: usize,
) -> (Duration, Duration) {
    let name = stream(nats, &unique("RAWLAT")).await;
    let subject = format!("{name}.cart");
    let mut subscriber = client.subscribe(subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let sent = Instant::now();
        let ack = nats
            .context()
            .publish(subject.clone(), format!(r#"{{"i":{i}}}"#).into())
            .await
            .unwrap();
        subscriber.next().await.unwrap();
        latencies.push(sent.elapsed());
        ack.await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    nats.context().delete_stream(&name).await.unwrap();
    percentiles(latencies)
}

/// Latency from an append to a core subscriber, the relay running live.
async fn relay_latency(
    nats: &JetStream,
    client: &async_nats::Client,
    store: Store,
    n: usize,
) -> (Duration, Duration) {
    let name = stream(nats, &unique("RELAYLAT")).await;
    let mut subscriber = client.subscribe(format!("{name}.>")).await.unwrap();
    client.flush().await.unwrap();
    let relay = Relay::new(unique("relay"), nats.clone(), store.clone())
        .subjects(Subjects::template(&format!("{name}.{{category}}")).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(
        Runner::new(store.clone(), relay)
            .start(eventsrc::subscription::Start::End)
            .run(async {
                let _ = stopped.await;
            }),
    );
    // Let it reach the end of the log before timing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(n);
    let stream_id = StreamId::new("cart", "latency").unwrap();
    for i in 0..n {
        let event = NewEvent::raw("cart.item_added", 1, format!(r#"{{"i":{i}}}"#));
        let sent = Instant::now();
        store
            .append(&stream_id, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
        subscriber.next().await.unwrap();
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    nats.context().delete_stream(&name).await.unwrap();
    percentiles(latencies)
}

fn rate(r: f64) -> String {
    format!("{:>9.0}/s", r)
}

fn ms(d: Duration) -> String {
    format!("{:>7.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("EVENTSRC_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let nats = JetStream::connect(&url)
        .await
        .expect("a NATS server with JetStream");
    let client = async_nats::connect(&url).await.unwrap();
    let small = scale(2_000);
    let large = scale(20_000);
    let dir = std::env::temp_dir().join(unique("eventsrc-nats-bench"));
    std::fs::create_dir_all(&dir).unwrap();

    println!(
        "Publishing to NATS JetStream at {url} ({small} events at batch 1, {large} at batch 100)"
    );
    println!("| publisher | batch 1 | batch 100 |");
    println!("|---|---:|---:|");
    let raw = (
        raw_rate(&nats, small, 1).await,
        raw_rate(&nats, large, 100).await,
    );
    println!(
        "| async-nats JetStream publish (raw) | {} | {} |",
        rate(raw.0),
        rate(raw.1)
    );
    let memory = MemoryStore::new();
    fill(&memory, large).await;
    let memory_small = MemoryStore::new();
    fill(&memory_small, small).await;
    let on_memory = (
        relay_rate(&nats, memory_small, small, 1).await,
        relay_rate(&nats, memory, large, 100).await,
    );
    println!(
        "| eventsrc relay, memory store | {} ({:.2}x) | {} ({:.2}x) |",
        rate(on_memory.0),
        on_memory.0 / raw.0,
        rate(on_memory.1),
        on_memory.1 / raw.1
    );
    let sqlite = Store::open(&format!("sqlite://{}", dir.join("large.db").display()))
        .await
        .unwrap();
    fill(&sqlite, large).await;
    let sqlite_small = Store::open(&format!("sqlite://{}", dir.join("small.db").display()))
        .await
        .unwrap();
    fill(&sqlite_small, small).await;
    let on_sqlite = (
        relay_rate(&nats, sqlite_small, small, 1).await,
        relay_rate(&nats, sqlite, large, 100).await,
    );
    println!(
        "| eventsrc relay, SQLite file | {} ({:.2}x) | {} ({:.2}x) |",
        rate(on_sqlite.0),
        on_sqlite.0 / raw.0,
        rate(on_sqlite.1),
        on_sqlite.1 / raw.1
    );

    let n = scale(1_000);
    println!("\nLatency to a subscriber ({n} messages, one at a time)");
    println!("| path | p50 | p99 |");
    println!("|---|---:|---:|");
    let (p50, p99) = raw_latency(&nats, &client, n).await;
    println!(
        "| async-nats publish → subscriber (raw) | {} | {} |",
        ms(p50),
        ms(p99)
    );
    let memory = Store::open("memory:").await.unwrap();
    let (p50, p99) = relay_latency(&nats, &client, memory, n).await;
    println!(
        "| append → relay → subscriber, memory store | {} | {} |",
        ms(p50),
        ms(p99)
    );
    let sqlite = Store::open(&format!("sqlite://{}", dir.join("latency.db").display()))
        .await
        .unwrap();
    let (p50, p99) = relay_latency(&nats, &client, sqlite, n).await;
    println!(
        "| append → relay → subscriber, SQLite file | {} | {} |",
        ms(p50),
        ms(p99)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
