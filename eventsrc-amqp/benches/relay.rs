//! The RabbitMQ relay beside lapin publishing the same messages with publisher confirms:
//! events/s with batches of 1 and 100, and the latency from an append to a consumer receiving
//! the message (p50, p99), in one run against the same broker. Prints two tables.
//!
//! Run with: `cargo bench -p eventsrc-amqp` (RabbitMQ at `EVENTSRC_AMQP_URL`, by default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). `EVENTSRC_BENCH_SCALE=0.1` shrinks the workloads.
//!
//! - raw: `lapin` `basic_publish` with `mandatory`, the same properties, headers and body as
//!   the relay's, on a channel in confirm mode; batch 1 awaits each confirm before the next
//!   publish, batch 100 sends 100 and then awaits their confirms.
//! - relay: `Relay` + `Runner::catch_up` over events already stored, the runner's batch size 1
//!   or 100, on the memory store and on an SQLite file (durable commits).
//! - latency: events appended one at a time, 2 ms apart, with the relay running live; a
//!   consumer on a queue bound to the exchange notes when each arrives. Raw: the same, with a
//!   publish (and its confirm) in place of the append.

// A failed step is a failed run, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use eventsrc::amqp::Exchange;
use eventsrc::amqp::lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use eventsrc::amqp::lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use eventsrc::amqp::lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
};
use eventsrc::relay::{Relay, Subjects, headers, message_id};
use eventsrc::store::ReadAll;
use eventsrc::{
    EventStore, ExpectedVersion, GlobalPosition, MemoryStore, NewEvent, RecordedEvent, Runner,
    Store, StreamId,
};
use futures_util::StreamExt;

fn scale(n: usize) -> usize {
    let factor: f64 = std::env::var("EVENTSRC_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * factor) as usize).max(10)
}

fn unique(prefix: &str) -> String {
    format!(
        "eventsrc-bench-{prefix}-{}",
        eventsrc::EventId::new().0.simple()
    )
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

/// A topic exchange and a queue bound to all of it, of their own for one measurement.
async fn exchange_and_queue(channel: &Channel) -> (String, String) {
    let exchange = unique("exchange");
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = unique("queue");
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (exchange, queue)
}

async fn remove(channel: &Channel, exchange: &str, queue: &str) {
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    channel
        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

/// The properties the relay sets, built here by hand.
fn properties(record: &RecordedEvent) -> BasicProperties {
    let mut table = FieldTable::default();
    for (name, value) in headers::headers(record) {
        table.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    }
    BasicProperties::default()
        .with_message_id(message_id(record.event_id).into())
        .with_type(ShortString::from(record.event_type.to_string()))
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(table)
}

/// Raw publishes of the messages the relay would send, `batch` in flight.
async fn raw_rate(connection: &Connection, n: usize, batch: usize) -> f64 {
    let admin = connection.create_channel().await.unwrap();
    let (exchange, queue) = exchange_and_queue(&admin).await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let store = MemoryStore::new();
    fill(&store, n).await;
    let records = store
        .read_all(ReadAll::after(GlobalPosition::START).limit(n))
        .await
        .unwrap();
    let started = Instant::now();
    for chunk in records.chunks(batch) {
        let mut confirms = Vec::with_capacity(chunk.len());
        for record in chunk {
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    "cart".into(),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    record.payload.as_bytes(),
                    properties(record),
                )
                .await
                .unwrap();
            confirms.push(confirm);
        }
        for confirm in confirms {
            assert!(confirm.await.unwrap().is_ack());
        }
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    remove(&admin, &exchange, &queue).await;
    rate
}

/// The relay over `store` (already holding `n` events), the runner's batch `batch`.
async fn relay_rate<S>(url: &str, connection: &Connection, store: S, n: usize, batch: usize) -> f64
where
    S: EventStore + eventsrc::CheckpointStore + eventsrc::backend::ParkedStore + Clone,
{
    let admin = connection.create_channel().await.unwrap();
    let (exchange, queue) = exchange_and_queue(&admin).await;
    let publisher = Exchange::connect(url, &exchange).await.unwrap();
    let relay = Relay::new(unique("relay"), publisher, store.clone())
        .subjects(Subjects::template("{category}").unwrap());
    let mut runner = Runner::new(store, relay).batch_size(batch);
    let started = Instant::now();
    let progress = runner.catch_up().await.unwrap();
    let rate = progress.handled as f64 / started.elapsed().as_secs_f64();
    assert_eq!(progress.handled as usize, n);
    remove(&admin, &exchange, &queue).await;
    rate
}

fn percentiles(mut latencies: Vec<Duration>) -> (Duration, Duration) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (at(0.50), at(0.99))
}

async fn consumer(channel: &Channel, queue: &str) -> eventsrc::amqp::lapin::Consumer {
    channel
        .basic_consume(
            queue.into(),
            unique("consumer").as_str().into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
}

/// Latency from a raw publish to a consumer.
async fn raw_latency(connection: &Connection, n: usize) -> (Duration, Duration) {
    let admin = connection.create_channel().await.unwrap();
    let (exchange, queue) = exchange_and_queue(&admin).await;
    let mut deliveries = consumer(&admin, &queue).await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let sent = Instant::now();
        let confirm = channel
            .basic_publish(
                exchange.as_str().into(),
                "cart".into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                format!(r#"{{"i":{i}}}"#).as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
        deliveries.next().await.unwrap().unwrap();
        latencies.push(sent.elapsed());
        confirm.await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(deliveries);
    remove(&admin, &exchange, &queue).await;
    percentiles(latencies)
}

/// Latency from an append to a consumer, the relay running live.
async fn relay_latency(
    url: &str,
    connection: &Connection,
    store: Store,
    n: usize,
) -> (Duration, Duration) {
    let admin = connection.create_channel().await.unwrap();
    let (exchange, queue) = exchange_and_queue(&admin).await;
    let mut deliveries = consumer(&admin, &queue).await;
    let publisher = Exchange::connect(url, &exchange).await.unwrap();
    let relay = Relay::new(unique("relay"), publisher, store.clone())
        .subjects(Subjects::template("{category}").unwrap());
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
    let stream = StreamId::new("cart", "latency").unwrap();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let event = NewEvent::raw("cart.item_added", 1, format!(r#"{{"i":{i}}}"#));
        let sent = Instant::now();
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
        deliveries.next().await.unwrap().unwrap();
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    drop(deliveries);
    remove(&admin, &exchange, &queue).await;
    percentiles(latencies)
}

fn rate(r: f64) -> String {
    format!("{r:>9.0}/s")
}

fn ms(d: Duration) -> String {
    format!("{:>7.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("EVENTSRC_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .expect("RabbitMQ");
    let small = scale(2_000);
    let large = scale(20_000);
    let dir = std::env::temp_dir().join(unique("eventsrc-amqp-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = |name: &str| format!("sqlite://{}", dir.join(name).display());

    println!("Publishing to RabbitMQ ({small} events at batch 1, {large} at batch 100)");
    println!("| publisher | batch 1 | batch 100 |");
    println!("|---|---:|---:|");
    let raw = (
        raw_rate(&connection, small, 1).await,
        raw_rate(&connection, large, 100).await,
    );
    println!(
        "| lapin publish with confirms (raw) | {} | {} |",
        rate(raw.0),
        rate(raw.1)
    );
    let (memory_small, memory) = (MemoryStore::new(), MemoryStore::new());
    fill(&memory_small, small).await;
    fill(&memory, large).await;
    let on_memory = (
        relay_rate(&url, &connection, memory_small, small, 1).await,
        relay_rate(&url, &connection, memory, large, 100).await,
    );
    println!(
        "| eventsrc relay, memory store | {} ({:.2}x) | {} ({:.2}x) |",
        rate(on_memory.0),
        on_memory.0 / raw.0,
        rate(on_memory.1),
        on_memory.1 / raw.1
    );
    let sqlite_small = Store::open(&sqlite("small.db")).await.unwrap();
    fill(&sqlite_small, small).await;
    let sqlite_large = Store::open(&sqlite("large.db")).await.unwrap();
    fill(&sqlite_large, large).await;
    let on_sqlite = (
        relay_rate(&url, &connection, sqlite_small, small, 1).await,
        relay_rate(&url, &connection, sqlite_large, large, 100).await,
    );
    println!(
        "| eventsrc relay, SQLite file | {} ({:.2}x) | {} ({:.2}x) |",
        rate(on_sqlite.0),
        on_sqlite.0 / raw.0,
        rate(on_sqlite.1),
        on_sqlite.1 / raw.1
    );

    let n = scale(1_000);
    println!("\nLatency to a consumer ({n} messages, one at a time)");
    println!("| path | p50 | p99 |");
    println!("|---|---:|---:|");
    let (p50, p99) = raw_latency(&connection, n).await;
    println!(
        "| lapin publish → consumer (raw) | {} | {} |",
        ms(p50),
        ms(p99)
    );
    let memory = Store::open("memory:").await.unwrap();
    let (p50, p99) = relay_latency(&url, &connection, memory, n).await;
    println!(
        "| append → relay → consumer, memory store | {} | {} |",
        ms(p50),
        ms(p99)
    );
    let file = Store::open(&sqlite("latency.db")).await.unwrap();
    let (p50, p99) = relay_latency(&url, &connection, file, n).await;
    println!(
        "| append → relay → consumer, SQLite file | {} | {} |",
        ms(p50),
        ms(p99)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
