//! Subscriptions: the global log from a position, caught up in bounded batches, then live.
//!
//! A [`Subscription`](crate::Subscription) reads [`EventStore::read_all`](crate::EventStore::read_all) pages in commit order (gap-free on every
//! backend: see the PostgreSQL crate for how) and, once caught up, waits for the store's
//! [`append_signal`](crate::EventStore::append_signal), polling as a fallback. It keeps no
//! checkpoint of its own: a consumer handles a [`Batch`] and then stores
//! [`Batch::through`] wherever its read model lives, so delivery is at-least-once and the
//! checkpoint only moves after the handler succeeded. The runners in [`crate::runner`] do
//! exactly that.
//!
//! ```
//! use eventsrc::subscription::Start;
//! use eventsrc::Subscription;
//! use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StreamId};
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let store = MemoryStore::new();
//! let cart = StreamId::new("cart", "1")?;
//! store.append(&cart, ExpectedVersion::Any, vec![NewEvent::raw("ItemAdded", 1, "{}")]).await?;
//!
//! let mut subscription = Subscription::new(store.clone(), Start::Beginning).batch_size(100);
//! let batch = subscription.next_batch().await?; // catches up: the one stored event
//! assert_eq!(batch.events.len(), 1);
//!
//! // Live: the next batch waits for the next append.
//! let writer = store.clone();
//! tokio::spawn(async move {
//!     writer.append(&cart, ExpectedVersion::Any, vec![NewEvent::raw("CheckedOut", 1, "{}")]).await
//! });
//! let batch = subscription.next_batch().await?;
//! assert_eq!(&*batch.events[0].event_type, "CheckedOut");
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Subscription`]: crate::Subscription
//! [`EventStore::read_all`]: crate::EventStore::read_all
//! [`EventStore`]: crate::EventStore

pub(crate) mod reader;

pub use self::reader::{Batch, Lag, Start};
