//! Aggregates and the commands they decide.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Event, InvalidStreamId, StreamId};

/// A consistency boundary whose state is a fold over its own stream of events.
///
/// The state starts as `Default` and changes only in [`apply`](Aggregate::apply); commands are
/// decided against it by [`Handle`] impls, which return events and do no I/O.
///
/// ```
/// use eventsrc::{Aggregate, Command, Decision, Handle};
/// # use eventsrc::{DecodeError, EncodeError, Event};
/// # #[derive(Debug)] struct Opened;
/// # impl Event for Opened {
/// #     fn event_type(&self) -> &'static str { "Opened" }
/// #     fn schema_version(&self) -> u32 { 1 }
/// #     fn encode(&self) -> Result<String, EncodeError> { Ok("{}".into()) }
/// #     fn decode(t: &str, v: u32, _: &str) -> Result<Self, DecodeError> {
/// #         DecodeError::check("Opened", 1, t, v).map(|()| Opened)
/// #     }
/// # }
///
/// #[derive(Default)]
/// struct Account { open: bool }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the account is already open")]
/// struct AlreadyOpen;
///
/// impl Aggregate for Account {
///     const TYPE: &'static str = "account";
///     type Id = u64;
///     type Event = Opened;
///     type Error = AlreadyOpen;
///     fn apply(&mut self, _: &Opened) { self.open = true; }
/// }
///
/// struct Open;
/// impl Command for Open {}
///
/// impl Handle<Open> for Account {
///     fn handle(&self, _: &Open) -> Decision<Self> {
///         if self.open { Err(AlreadyOpen) } else { Ok(vec![Opened]) }
///     }
/// }
///
/// let mut account = Account::default();
/// let events = account.handle(&Open).unwrap();
/// events.iter().for_each(|e| account.apply(e));
/// assert!(account.handle(&Open).is_err());
/// assert_eq!(Account::stream_id(&7).unwrap().as_str(), "account-7");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregate",
    label = "not an aggregate",
    note = "add `#[aggregate]` to an `impl {Self}` block of event handlers, or implement `eventsrc::Aggregate` by hand"
)]
pub trait Aggregate: Default + Send + Sync + 'static {
    /// The stored aggregate type: the category of its streams (`lead` in `lead-1410`). Must not
    /// contain `-`.
    const TYPE: &'static str;

    /// Snapshot support: `None` (the default) never snapshots; `Some(SnapshotFormat::json(1))`
    /// lets a repository with a snapshot store save and load this state as JSON.
    const SNAPSHOT: Option<SnapshotFormat<Self>> = None;

    /// Whether a repository with an [`AggregateCache`](crate::AggregateCache) keeps this
    /// aggregate's state between commands (the default, `true`). Turn it off
    /// (`#[aggregate(cache = false)]`) for an aggregate whose state is large and seldom
    /// commanded twice, so that it does not take the place of hotter ones.
    const CACHE: bool = true;

    /// The aggregate's id; its `Display` form is the id part of the stream name.
    type Id: fmt::Display + Send + Sync;

    /// The events of this aggregate (usually an enum with one variant per event type).
    type Event: Event;

    /// The domain error its commands return.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Folds one event into the state. Must not fail: an event is a fact.
    fn apply(&mut self, event: &Self::Event);

    /// Whether an event this aggregate decided (`ours`) must be rejected because `theirs` was
    /// appended to the stream in the meantime ("optimistic concurrency on steroids").
    ///
    /// The default, `false`, lets the repository decide the command again against the new state;
    /// returning `true` for a pair turns that race into a conflict error for the caller, e.g.
    /// setting a follow-up on a lead whose status changed meanwhile.
    fn conflicts(ours: &Self::Event, theirs: &Self::Event) -> bool {
        let _ = (ours, theirs);
        false
    }

    /// The stream of the aggregate with this id: `TYPE-id`.
    fn stream_id(id: &Self::Id) -> Result<StreamId, InvalidStreamId> {
        StreamId::new(Self::TYPE, id)
    }
}

/// How an aggregate's state is written to and read from a snapshot.
///
/// `state_version` is the version of the state's own shape: bump it when the struct changes and
/// old snapshots are ignored (the state is rebuilt from events) instead of being misread.
pub struct SnapshotFormat<A> {
    /// The version of the state's shape.
    pub state_version: u32,
    /// Take a snapshot whenever the stream version crosses a multiple of this; `None` means only
    /// by hand.
    pub every: Option<u64>,
    /// State to JSON.
    pub encode: fn(&A) -> Result<String, serde_json::Error>,
    /// JSON to state.
    pub decode: fn(&str) -> Result<A, serde_json::Error>,
}

impl<A> std::fmt::Debug for SnapshotFormat<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFormat")
            .field("state_version", &self.state_version)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl<A: Serialize + DeserializeOwned> SnapshotFormat<A> {
    /// Snapshots the state with serde_json, at shape version `state_version`.
    pub const fn json(state_version: u32) -> Self {
        Self {
            state_version,
            every: None,
            encode: encode_json::<A>,
            decode: decode_json::<A>,
        }
    }
}

impl<A> SnapshotFormat<A> {
    /// Takes a snapshot automatically every `events` events.
    #[must_use]
    pub const fn every(mut self, events: u64) -> Self {
        self.every = Some(events);
        self
    }
}

fn encode_json<A: Serialize>(state: &A) -> Result<String, serde_json::Error> {
    serde_json::to_string(state)
}

fn decode_json<A: DeserializeOwned>(json: &str) -> Result<A, serde_json::Error> {
    serde_json::from_str(json)
}

/// A request to change an aggregate. `validate` checks the command's own attributes before any
/// state is loaded (presence, ranges); the default accepts everything.
pub trait Command: Send + Sync {
    /// Checks the command's attributes, reporting every failing field at once.
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }

    /// The command's name for logs and traces (default: the type's name without its path).
    fn name(&self) -> &'static str {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base)
    }
}

/// A command that names its aggregate and carries the aggregate's id, so that
/// [`Repository::send`](crate::Repository::send) can route it without being told.
/// `#[command(aggregate = ...)]` with an `#[id]` field implements it.
pub trait AggregateCommand: Command + Sized {
    /// The aggregate the command targets.
    type Aggregate: Aggregate;

    /// The id of the targeted aggregate.
    fn aggregate_id(&self) -> &<Self::Aggregate as Aggregate>::Id;
}

/// The outcome of deciding a command: events to append (an empty list is a no-op: the state
/// already holds), or the aggregate's typed error.
pub type Decision<A> = Result<Vec<<A as Aggregate>::Event>, <A as Aggregate>::Error>;

/// Decides command `C` against the aggregate's current state. No I/O: state in, events out.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no handler for the command `{C}`",
    label = "no `Handle<{C}>` impl",
    note = "write `impl eventsrc::Handle<{C}> for {Self} {{ fn handle(&self, command: &{C}) -> eventsrc::Decision<Self> {{ ... }} }}`, or name a method with `#[command(handler = ...)]`"
)]
pub trait Handle<C: Command>: Aggregate {
    /// Decides `command`. Called again (with the newer state) when an append conflicts.
    fn handle(&self, command: &C) -> Decision<Self>;
}

/// A command whose attributes failed validation; lists every failing field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationError {
    /// Each failing field with its message, in declaration order.
    pub fields: Vec<FieldError>,
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ValidationError {
    /// No failures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a failure of `field`.
    pub fn push(&mut self, field: &'static str, message: impl Into<String>) {
        self.fields.push(FieldError {
            field,
            message: message.into(),
        });
    }

    /// `Ok(())` when nothing failed, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Self> {
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid command: ")?;
        for (i, failure) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "`{}` {}", failure.field, failure.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}
