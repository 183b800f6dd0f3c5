//! What the RabbitMQ tests share: the broker's URL, unique names, queues, and draining them.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use eventsrc_amqp::lapin::options::{
    BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use eventsrc_amqp::lapin::types::{AMQPValue, FieldTable};
use eventsrc_amqp::lapin::{Channel, Connection, ConnectionProperties, message::Delivery};
use eventsrc_core::runner::Retry;

/// The broker: `EVENTSRC_AMQP_URL`, else the local RabbitMQ.
pub fn url() -> String {
    std::env::var("EVENTSRC_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// `prefix` with a suffix no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!("eventsrc-test-{prefix}-{}", eventsrc_core::EventId::new())
}

pub fn quick() -> Retry {
    Retry {
        attempts: 2,
        delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

/// A connection and channel of the test's own; fails (never skips) without a broker.
pub async fn connect() -> (Connection, Channel) {
    let url = url();
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!("RabbitMQ is not reachable at {url} (set EVENTSRC_AMQP_URL): {e}")
        });
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// A durable topic exchange of the test's own, and the relay's publisher to it.
pub async fn topic_exchange() -> (String, eventsrc_amqp::Exchange) {
    let name = unique("exchange");
    let exchange = eventsrc_amqp::Exchange::connect(&url(), &name)
        .await
        .unwrap()
        .declare_topic()
        .await
        .unwrap();
    (name, exchange)
}

/// A durable queue (so it survives the broker's application restarting) bound to `exchange`
/// with `pattern`; the broker deletes it ten minutes after its last use, should a test fail
/// before deleting it.
pub async fn bound_queue(channel: &Channel, exchange: &str, pattern: &str) -> String {
    let queue = unique("queue");
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(600_000));
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.into(),
            pattern.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    queue
}

/// Every message in `queue` now, in order, taking them off it.
pub async fn drain(channel: &Channel, queue: &str) -> Vec<Delivery> {
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        taken.push(message.delivery);
    }
    taken
}

pub async fn delete(channel: &Channel, exchange: &str, queues: &[&str]) {
    for queue in queues {
        let _ = channel
            .queue_delete((*queue).into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = channel
        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await;
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
