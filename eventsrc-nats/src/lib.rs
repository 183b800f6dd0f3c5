//! NATS JetStream for eventsrc: a relay that publishes the event log to a JetStream stream,
//! and [`Inbound`], which feeds a stream's events to local projections and reactors.
//!
//! The relay is eventsrc's [`Relay`](eventsrc_core::relay::Relay) with [`JetStream`] as its
//! publisher: a runner consumer, checkpointed after the server acknowledged each message, run
//! on one node with [`run_as_leader`](eventsrc_core::Runner::run_as_leader). Every message has
//! `Nats-Msg-Id` set to the event id, so the server drops the copies a restarted relay
//! publishes again within the stream's duplicate window; beyond the window, the relay's
//! checkpoint keeps it from going back further than its last unconfirmed batch.
//!
//! ```no_run
//! use std::time::Duration;
//! use eventsrc::nats::{Inbound, JetStream};
//! use eventsrc::relay::{Relay, Subjects};
//! use eventsrc::{Checkpointed, MemoryStore, Runner, Store};
//! # #[derive(Debug, serde::Serialize, serde::Deserialize, eventsrc::Event)]
//! # #[event(name = "lead.opened")]
//! # struct LeadOpened { name: String }
//! # #[derive(Default)] struct Leads(u64);
//! # impl eventsrc::Projection for Leads {
//! #     const NAME: &'static str = "leads";
//! #     type Event = LeadOpened;
//! #     type Error = std::convert::Infallible;
//! #     fn apply(&mut self, _: LeadOpened, _: &eventsrc::RecordedEvent) -> Result<(), Self::Error> {
//! #         self.0 += 1;
//! #         Ok(())
//! #     }
//! # }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // One service publishes its log to the stream `CRM`, on the node that holds the lease...
//! let store = Store::open("sqlite://crm.db").await?;
//! let nats = JetStream::connect("nats://127.0.0.1:4222").await?;
//! nats.ensure_stream("CRM", &["crm.>"], Duration::from_secs(600)).await?;
//! let relay = Relay::new("crm-to-nats", nats.clone(), store.clone())
//!     .subjects(Subjects::template("crm.{category}.{event_type}")?);
//! let leases = store.clone();
//! tokio::spawn(async move {
//!     Runner::new(store.clone(), relay).run_as_leader(&leases, std::future::pending()).await
//! });
//!
//! // ...and another service runs a projection on the leads' events.
//! let local = MemoryStore::new();
//! let leads = Checkpointed::new(Leads::default(), local);
//! let inbound = Inbound::durable(nats.context(), "CRM", "reporting", Some("crm.lead.>"), leads)
//!     .await?;
//! inbound.run(std::future::pending::<()>()).await?;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod inbound;
mod publish;

pub use error::NatsError;
pub use inbound::{Inbound, InboundError};
pub use publish::JetStream;

/// The NATS client crate this one is built on, for its types in this API (a JetStream
/// [`Context`](async_nats::jetstream::Context), stream and consumer configurations).
pub use async_nats;
