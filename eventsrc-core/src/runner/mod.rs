//! Runners: projections and reactors fed from the log, with checkpoints, live updates,
//! read-your-writes, leadership among nodes, and retries that park what keeps failing.
//!
//! A [`Runner`](crate::Runner) drives a [`Consumer`]: it reads the consumer's checkpoint, subscribes from
//! there ([`Subscription`](crate::Subscription)), hands it each batch and records how far it got. What a consumer
//! does with a batch, and where its checkpoint lives, is the consumer's:
//!
//! | consumer | read model | checkpoint | effect |
//! |---|---|---|---|
//! | [`InMemory`](crate::InMemory) | a [`Projection`](crate::Projection) in memory | beside it, in memory | exactly once per process |
//! | [`Checkpointed`](crate::Checkpointed) | a [`Projection`](crate::Projection) that stores itself | a [`CheckpointStore`](crate::CheckpointStore) | at least once |
//! | [`Reactions`](crate::Reactions) | a [`Reactor`](crate::Reactor)'s effects, via [`Perform`] | a [`CheckpointStore`](crate::CheckpointStore) | at least once, retried, parked |
//! | SQL backends' projections | tables in the database | same transaction | exactly once |
//! | [`Documents`](crate::Documents) | a [`DocumentView`](crate::DocumentView)'s JSON documents, on any store | same commit | exactly once (memory: per process) |
//!
//! At-least-once means: the checkpoint moves only after the consumer handled the batch, so
//! after a crash the events since the last checkpoint are handled again. A projection's `apply`
//! must then be idempotent (set values, do not add to them), and a reactor's effects must
//! tolerate a repeat (an outbox keyed by event id).
//!
//! ```
//! use eventsrc::Projection;
//! use eventsrc::{InMemory, Runner};
//! use eventsrc::{Event, EventStore, ExpectedVersion, MemoryStore, NewEvent, RecordedEvent, StreamId};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
//! # struct ItemAdded { sku: String }
//!
//! #[derive(Event, Debug)]
//! enum Sold { ItemAdded(ItemAdded) }
//!
//! #[derive(Default)]
//! struct ItemsSold { count: u64 }
//!
//! impl Projection for ItemsSold {
//!     const NAME: &'static str = "items_sold";
//!     type Event = Sold;
//!     type Error = std::convert::Infallible;
//!     fn apply(&mut self, _: Sold, _: &RecordedEvent) -> Result<(), Self::Error> {
//!         self.count += 1;
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let store = MemoryStore::new();
//! let target = InMemory::new(ItemsSold::default());
//! let model = target.model();
//! let runner = Runner::new(store.clone(), target);
//! let progress = runner.progress();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let task = tokio::spawn(runner.run(async { stopped.await.ok(); }));
//!
//! let cart = StreamId::new("cart", "1")?;
//! let added = NewEvent::from_event(&ItemAdded { sku: "laptop".into() }, Default::default())?;
//! let appended = store.append(&cart, ExpectedVersion::Any, vec![added]).await?;
//!
//! // Read-your-writes: wait until the read model has seen the append.
//! progress.wait_for(appended.position, std::time::Duration::from_secs(5)).await?;
//! assert_eq!(model.read().count, 1);
//! stop.send(()).ok();
//! task.await??;
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Runner`]: crate::Runner
//! [`Subscription`]: crate::Subscription
//! [`InMemory`]: crate::InMemory
//! [`Checkpointed`]: crate::Checkpointed
//! [`Reactions`]: crate::Reactions
//! [`Projection`]: crate::Projection
//! [`Reactor`]: crate::Reactor
//! [`CheckpointStore`]: crate::CheckpointStore

pub(crate) mod consumer;
pub(crate) mod consumers;
pub(crate) mod error;
pub(crate) mod progress;
pub(crate) mod reactions;
pub(crate) mod run;

pub use self::consumer::{BatchError, Consumer, fold};
pub use self::progress::Progress;
pub use self::reactions::{Perform, Replayed, Retry};
pub use crate::projection::UnknownEvents;
