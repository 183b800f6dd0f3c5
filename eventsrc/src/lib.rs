#![doc = include_str!("../../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use eventsrc_core::*;

mod open;

/// The `eventsrc` command line as a library (the `cli` feature).
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;

#[cfg(feature = "postgres")]
pub use open::PostgresUrl;
pub use open::{OpenStoreError, Store, StoreUrl};

/// The embedded default backend: an event store, read models and leases in one SQLite file
/// (the `sqlite` feature, on by default).
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[doc(inline)]
pub use eventsrc_sqlite as sqlite;

/// The scale-out backend: an event store and read models in a PostgreSQL schema shared by many
/// application nodes (the `postgres` feature).
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[doc(inline)]
pub use eventsrc_postgres as postgres;

/// NATS JetStream: a [`Relay`](crate::relay::Relay) publisher and [`Inbound`](nats::Inbound),
/// which feeds a JetStream stream's events to projections and reactors (the `nats` feature).
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
#[doc(inline)]
pub use eventsrc_nats as nats;

/// RabbitMQ: a [`Relay`](crate::relay::Relay) publisher to an exchange, with publisher confirms
/// (the `amqp` feature).
#[cfg(feature = "amqp")]
#[cfg_attr(docsrs, doc(cfg(feature = "amqp")))]
#[doc(inline)]
pub use eventsrc_amqp as amqp;

/// The traits an application implements or calls methods of, and the macros, for a glob
/// import: `use eventsrc::prelude::*;`.
pub mod prelude {
    pub use eventsrc_core::prelude::*;
    pub use eventsrc_macros::{Event, aggregate, command};
}

/// Derives [`Event`](trait@Event) for an event struct, or for an enum whose variants are events.
///
/// On a struct it also implements [`EventType`] (the stored name and version as constants) and
/// [`Versioned`] (reading older stored versions), and registers the event in the
/// [`registry`]. The struct must implement serde's `Serialize` and `Deserialize`; its JSON is
/// the stored payload.
///
/// | attribute | meaning |
/// |---|---|
/// | `name = "..."` | the stored name (default: the type or variant name) |
/// | `version = n` | the current schema version (default 1) |
/// | `aliases = ["...", ...]` | older stored names still decoded as this event |
/// | `upcast_from = Old` | typed step: `Old` reads the previous versions, `From<Old>` converts |
/// | `upcast_json = f` or `[f, g]` | JSON steps ending at `version`; each `fn(Value) -> Value` (or `Result<Value, E>`) takes version k to k + 1 |
/// | `superseded_by = Current` | marks an old shape kept only for upcasting; not registered |
/// | `crate = path` | where `eventsrc` is, if renamed or re-exported |
///
/// On the fields of an event struct, for crypto-shredding (`eventsrc::personal`,
/// feature `encryption`):
///
/// | attribute | meaning |
/// |---|---|
/// | `#[event(personal)]` | the field holds personal data: sealed under its subject's key, `null` once the subject is forgotten (so it must be an `Option<T>`) |
/// | `#[event(subject)]` | the one field naming whose personal data the event holds (a string or number that is not personal itself) |
///
/// Payloads at the current version decode straight into the type; older ones walk the chain.
/// A unit struct (`struct CheckedOut;`) is stored as `{}` and reads from any payload. Fields of
/// named enum variants are serialized by reference, so a generic `skip_serializing_if` helper
/// sees `&&T`: write it for the reference, or make the event a struct.
/// A version newer than the code, an unknown name, or JSON that does not fit is a
/// [`DecodeError`], never a panic.
///
/// Mistakes are compile errors at the attribute or type: a struct without serde's derives, an
/// `upcast_from` shape of the wrong version, and two variants of one enum stored under the same
/// name or alias (which would decode as the wrong variant).
///
/// ```
/// use eventsrc::{Event, EventType};
/// use serde::{Deserialize, Serialize};
///
/// /// Version 1 stored one `contact` string.
/// #[derive(Event, Serialize, Deserialize)]
/// #[event(superseded_by = ContactChanged)]
/// struct ContactChangedV1 { contact: String }
///
/// #[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
/// #[event(name = "lead.contact_changed", version = 2, upcast_from = ContactChangedV1,
///         aliases = ["ContactInformationChanged"])]
/// struct ContactChanged { email: String, phone: Option<String> }
///
/// impl From<ContactChangedV1> for ContactChanged {
///     fn from(old: ContactChangedV1) -> Self { Self { email: old.contact, phone: None } }
/// }
///
/// assert_eq!(<ContactChanged as EventType>::NAME, "lead.contact_changed");
/// let stored_v1 = r#"{"contact":"stefan@example.com"}"#;
/// let current = ContactChanged::decode("ContactInformationChanged", 1, stored_v1)?;
/// assert_eq!(current, ContactChanged { email: "stefan@example.com".into(), phone: None });
/// assert!(ContactChanged::decode("lead.contact_changed", 3, "{}").is_err()); // from the future
///
/// // An enum of events: variants wrap event structs, or carry their own fields.
/// fn default_quantity(mut v: serde_json::Value) -> serde_json::Value {
///     v["quantity"] = 1.into();
///     v
/// }
///
/// #[derive(Event, Debug, PartialEq)]
/// enum CartEvent {
///     #[event(name = "cart.item_added", version = 2, upcast_json = default_quantity)]
///     ItemAdded { sku: String, quantity: u32 },
///     CheckedOut,
///     Contact(ContactChanged),
/// }
///
/// let added = CartEvent::decode("cart.item_added", 1, r#"{"sku":"laptop"}"#)?;
/// assert_eq!(added, CartEvent::ItemAdded { sku: "laptop".into(), quantity: 1 });
/// assert_eq!(added.encode()?, r#"{"sku":"laptop","quantity":1}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use eventsrc_macros::Event;

/// Makes an `impl` block of event handlers an [`Aggregate`].
///
/// Every `fn` in the block is a handler, `fn name(&mut self, event: &SomeEvent)`, one per event
/// type. The macro generates the aggregate's event enum, `{Type}Event`, with one variant per
/// handler named after the event type, `From` impls into it, apply dispatch, and the aggregate's
/// registration. The type must implement `Default` (the state before any event). Two handled
/// event types with the same stored name or alias are a compile error naming both.
///
/// | attribute | meaning |
/// |---|---|
/// | `id = Type` | the aggregate's id type (required); its `Display` is the stream id |
/// | `error = Type` | the domain error of its commands (default `Infallible`) |
/// | `name = "..."` | the stored aggregate type, the stream category (default: snake case of the type) |
/// | `event = Enum` | use a hand-written enum instead; an event of it without a handler is a compile error |
/// | `vis = pub(crate)` | visibility of the generated enum (default `pub`) |
/// | `snapshot = n` | snapshot the state as JSON, state schema version `n` (needs serde) |
/// | `snapshot_every = n` | take a snapshot every `n` events (with `snapshot`) |
/// | `cache = false` | never keep this aggregate in an [`AggregateCache`] (see [`Aggregate::CACHE`]) |
/// | `conflicts = f` | `fn(&Event, &Event) -> bool`: see [`Aggregate::conflicts`] |
/// | `crate = path` | where `eventsrc` is |
///
/// ```
/// use eventsrc::{aggregate, Aggregate, Event};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// struct ItemAdded { sku: String }
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// struct CheckedOut;
///
/// #[derive(Default)]
/// struct Cart { items: Vec<String>, checked_out: bool }
///
/// #[aggregate(id = u64)]
/// impl Cart {
///     fn on_item_added(&mut self, event: &ItemAdded) { self.items.push(event.sku.clone()); }
///     fn on_checked_out(&mut self, _: &CheckedOut) { self.checked_out = true; }
/// }
///
/// let mut cart = Cart::default();
/// cart.apply(&ItemAdded { sku: "laptop".into() }.into());
/// cart.apply(&CartEvent::CheckedOut(CheckedOut));
/// assert_eq!((cart.items.len(), cart.checked_out), (1, true));
/// assert_eq!(Cart::TYPE, "cart");
/// ```
pub use eventsrc_macros::aggregate;

/// Makes a struct a [`Command`] aimed at an aggregate: attribute validation, the aggregate's
/// id ([`AggregateCommand`], so [`Repository::send`] can route it), and optionally the handler.
///
/// | attribute | meaning |
/// |---|---|
/// | `aggregate = Type` | the aggregate it targets (this or `aggregates`) |
/// | `handler = path` | `fn(&Aggregate, &Self) -> Decision<Aggregate>` to implement [`Handle`] with |
/// | `aggregates = (A, B)` | a decision across two to four aggregates' streams: implements [`Decide`] |
/// | `error = Type` | with `aggregates`: the domain error of the decision (required) |
/// | `handler = path` | with `aggregates`: `fn(&Self, &(A, B)) -> Decided<Self>` (required) |
/// | `validate = path` | `fn(&Self, &mut ValidationError)`: a check across fields, run after the field rules |
/// | `crate = path` | where `eventsrc` is |
///
/// Fields: `#[id]` marks the one field holding the aggregate's id (with `aggregates`, one field
/// per aggregate, in the tuple's order; their values are cloned); `#[validate(...)]` adds
/// checks run before anything is loaded, all reported together in a [`ValidationError`]:
/// - `non_empty`: strings (more than whitespace), collections, options;
/// - `range(min = .., max = ..)`: numbers, bounds inclusive, literals or constants; an absent
///   `Option` passes;
/// - `with = path`: `fn(&FieldType) -> bool`, or `-> Result<(), E>` whose error text becomes the
///   message;
/// - `message = ...`: a string (or string constant) replacing the rule's message.
///
/// ```
/// # use eventsrc::{aggregate, Event};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct ItemAdded { sku: String, quantity: u32 }
/// # #[derive(Default)] struct Cart { items: u32 }
/// # #[aggregate(id = u64)]
/// # impl Cart { fn on_item_added(&mut self, e: &ItemAdded) { self.items += e.quantity; } }
/// use eventsrc::{command, Command, Decision, MemoryStore, Metadata, Repository};
///
/// #[command(aggregate = Cart, handler = Cart::add_item)]
/// struct AddItem {
///     #[id]
///     cart: u64,
///     #[validate(non_empty)]
///     sku: String,
///     #[validate(range(min = 1, max = 99), message = "must be 1 to 99")]
///     quantity: u32,
/// }
///
/// impl Cart {
///     fn add_item(&self, command: &AddItem) -> Decision<Self> {
///         Ok(vec![ItemAdded { sku: command.sku.clone(), quantity: command.quantity }.into()])
///     }
/// }
///
/// let invalid = AddItem { cart: 1, sku: " ".into(), quantity: 0 }.validate().unwrap_err();
/// assert_eq!(invalid.to_string(), "invalid command: `sku` must not be empty; `quantity` must be 1 to 99");
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let repository = Repository::new(MemoryStore::new());
/// repository.send(AddItem { cart: 7, sku: "laptop".into(), quantity: 2 }, Metadata::new()).await?;
/// assert_eq!(repository.load::<Cart>(&7).await?.state.items, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A decision across streams: a unique e-mail address, held by a small aggregate of its own,
/// claimed in the same transaction that registers the user ([`Repository::decide`]).
///
/// ```
/// # use eventsrc::{aggregate, Event};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct Registered { email: String }
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct Claimed { user: u32 }
/// # #[derive(Default)] struct User { email: Option<String> }
/// # #[aggregate(id = u32)]
/// # impl User { fn on_registered(&mut self, e: &Registered) { self.email = Some(e.email.clone()); } }
/// # #[derive(Default)] struct EmailOwner { holder: Option<u32> }
/// # #[aggregate(name = "email", id = String)]
/// # impl EmailOwner { fn on_claimed(&mut self, e: &Claimed) { self.holder = Some(e.user); } }
/// use eventsrc::{command, Decided, ExecuteError, MemoryStore, Metadata, Repository};
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the address is taken")]
/// struct Taken;
///
/// #[command(aggregates = (User, EmailOwner), error = Taken, handler = sign_up)]
/// struct SignUp {
///     #[id]
///     user: u32,
///     #[id]
///     email: String,
/// }
///
/// fn sign_up(command: &SignUp, (_, owner): &(User, EmailOwner)) -> Decided<SignUp> {
///     if owner.holder.is_some() {
///         return Err(Taken);
///     }
///     let registered = Registered { email: command.email.clone() };
///     Ok((vec![registered.into()], vec![Claimed { user: command.user }.into()]))
/// }
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let repository = Repository::new(MemoryStore::new());
/// let ada = |user| SignUp { user, email: "ada@example.com".into() };
/// repository.decide(ada(1), Metadata::new()).await?;
/// let second = repository.decide(ada(2), Metadata::new()).await;
/// assert!(matches!(second, Err(ExecuteError::Rejected(Taken))));
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use eventsrc_macros::command;
