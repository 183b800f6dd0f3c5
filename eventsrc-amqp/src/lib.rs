//! Publishes the eventsrc log to RabbitMQ: [`Exchange`], a
//! [`Publisher`](eventsrc_core::relay::Publisher) for the
//! [`Relay`](eventsrc_core::relay::Relay), over AMQP 0.9.1 with publisher confirms.
//!
//! The relay is a consumer of the log: it hands each batch to the exchange, which sends every
//! message and then waits for the broker's confirms, and it saves its checkpoint only once all
//! were confirmed. After a crash it publishes again what it had not checkpointed, with the
//! same `message_id` (the event id), so a consumer drops the copies by it. A message the
//! broker cannot route is returned (`mandatory`), retried, then parked; a broker that does not
//! answer is waited for, and the exchange connects again by itself.
//!
//! ```no_run
//! use eventsrc_amqp::Exchange;
//! use eventsrc_core::relay::{Relay, Subjects};
//! use eventsrc_core::{MemoryStore, Runner};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! // A durable topic exchange: subscribers bind queues with `events.*.lead.#` and the like.
//! let exchange = Exchange::connect("amqp://guest:guest@127.0.0.1:5672/%2f", "crm-events")
//!     .await?
//!     .declare_topic()
//!     .await?;
//! let relay = Relay::new("to-rabbitmq", exchange, store.clone())
//!     .subjects(Subjects::template("events.{tenant}.{category}.{event_type}")?);
//! let mut runner = Runner::new(store, relay);
//! runner.catch_up().await?;
//! # Ok(())
//! # }
//! ```
//!
//! On the other side, [`incoming`] reads a delivery back into the
//! [`RecordedEvent`] it carries, for a service to run its
//! projections and reactors on.

mod error;
mod publish;

pub use error::AmqpError;
pub use publish::{CONTENT_TYPE, Exchange};

/// The AMQP client this crate is built on, for [`Exchange::new`]'s channel and for consumers.
pub use lapin;

use eventsrc_core::RecordedEvent;
use eventsrc_core::relay::IncomingError;
use lapin::BasicProperties;
use lapin::types::AMQPValue;

/// The value of the header `name` of a message's properties, when it is there as a string
/// (the relay sends every header as a long string).
pub fn header<'a>(properties: &'a BasicProperties, name: &str) -> Option<&'a str> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
        AMQPValue::ShortString(value) => Some(value.as_str()),
        _ => None,
    }
}

/// Reads a message the relay published back into the event it carries: its headers and its
/// body, as [`eventsrc_core::relay::incoming`] does.
pub fn incoming(delivery: &lapin::message::Delivery) -> Result<RecordedEvent, IncomingError> {
    eventsrc_core::relay::incoming(|name| header(&delivery.properties, name), &delivery.data)
}
