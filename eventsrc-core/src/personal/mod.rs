//! Crypto-shredding: personal data in events that can be forgotten (feature `encryption`).
//!
//! An event log is append-only, but a data subject may ask to be forgotten (the GDPR's right
//! to erasure). Crypto-shredding squares the two: each subject's personal data is stored
//! encrypted under a key of that subject's own, and forgetting the subject deletes the key.
//! The events stay in the log, versions and positions stay dense, and the personal fields
//! become unreadable everywhere at once: in the log, in backups, in copies.
//!
//! 1. **Mark the fields.** `#[event(personal)]` on each field holding personal data (an
//!    `Option<T>`: it reads as `None` once forgotten) and `#[event(subject)]` on the one
//!    field naming whose data it is (an id that is not personal data itself: a user id, not an
//!    e-mail address). The derive registers them per stored name and schema version
//!    ([`registry::personal`](crate::registry::personal)).
//! 2. **Wrap the store** in [`Encrypted`] with a [`KeyStore`]: [`MemoryKeyStore`], the SQLite
//!    and PostgreSQL key stores (`eventsrc::sqlite::SqliteKeyStore`,
//!    `eventsrc::postgres::PgKeyStore`), or your own over a KMS (see [`KeyStore`]). Use the
//!    wrapper wherever the store went.
//! 3. **Forget** with [`Encrypted::forget`]. From then on the subject's personal fields read
//!    as JSON `null` on every read path (loads, subscriptions and runners, reads by id,
//!    parked events), the rest of each event as it was; aggregates fold as before; the
//!    stream's sealed snapshots read as absent.
//!
//! **The redacted value is `null`**, a field's JSON replaced whole: a personal field is
//! `Option<T>` (the derive refuses any other type), so a forgotten one decodes as `None`.
//!
//! **Read models forget on their own.** A projection that copies personal fields into its rows
//! (an SQL table, a document) keeps plaintext there, out of the key's reach. Make forgetting
//! an event of your domain, appended right after [`Encrypted::forget`] (e.g. `UserForgotten
//! { user }` in the user's stream, with no personal fields), and have every read model that
//! holds personal data delete or blank that subject's rows when it sees it. A rebuild from
//! the log reads the forgotten fields as `null`, so it never brings them back. Parked events
//! are sealed again before they are stored, and read open.
//!
//! **Memory forgets too.** A repository's [`AggregateCache`](crate::AggregateCache) keeps
//! folded states, plaintext included: [`clear`](crate::AggregateCache::clear) it after
//! forgetting (on every node), or the subject's states keep the data until they are evicted.
//!
//! ```
//! use eventsrc::personal::{Encrypted, MemoryKeyStore};
//! use eventsrc::{aggregate, Event, MemoryStore, Metadata, Repository, StreamId};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
//! struct SignedUp {
//!     #[event(subject)]
//!     user: u64,
//!     #[event(personal)]
//!     name: Option<String>,
//!     plan: String,
//! }
//!
//! #[derive(Default, Debug)]
//! struct User { name: Option<String>, plan: String }
//!
//! #[aggregate(id = u64)]
//! impl User {
//!     fn on_registered(&mut self, e: &SignedUp) {
//!         self.name = e.name.clone();
//!         self.plan = e.plan.clone();
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = Encrypted::new(MemoryStore::new(), MemoryKeyStore::new());
//! let stream = StreamId::new("user", 7)?;
//! let registered = SignedUp { user: 7, name: Some("Ada Lovelace".into()), plan: "pro".into() };
//! eventsrc::EventStore::append(&store, &stream, eventsrc::ExpectedVersion::NoStream,
//!     vec![eventsrc::NewEvent::from_event(&registered, Metadata::new())?]).await?;
//!
//! let repository = Repository::new(store.clone());
//! assert_eq!(repository.load::<User>(&7).await?.state.name.as_deref(), Some("Ada Lovelace"));
//!
//! store.forget("7").await?;
//! let user = repository.load::<User>(&7).await?.state;
//! assert_eq!((user.name, user.plan.as_str()), (None, "pro"));
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod encrypted;
mod keys;
mod seal;

pub use encrypted::Encrypted;
pub use keys::{KeyError, KeyFuture, KeyStore, MemoryKeyStore, SubjectKey};
