//! The read side's two kinds of event consumers: [`Projection`]s fold events into a read model;
//! [`Reactor`]s decide side effects.
//!
//! Both read typed events: `Self::Event` is usually an enum deriving `Event` whose variants
//! wrap event types of any aggregates, so one projection can follow leads and carts at once.
//! A stored event whose type the enum does not know is skipped or is an error, as
//! [`UnknownEvents`] says. Runners (subscriptions with checkpoints) feed them in global order.

use crate::{DecodeError, Event, RecordDecodeError, RecordedEvent};

/// What a consumer does with a stored event whose type its `Event` enum does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownEvents {
    /// Skip it: the consumer only cares about some event types (the usual case).
    Skip,
    /// Stop with an error: every event of the log must be understood.
    Fail,
}

/// Folds events into a read model (a sales-leads CRM's search by every e-mail and phone,
/// student progress reports).
///
/// `apply` must be idempotent where the runner is at-least-once: replaying an event it already
/// applied must leave the model as it was. "Set" events (`UserEmailSet { email }` rather than
/// a delta) make that natural.
///
/// ```
/// use eventsrc::Projection;
/// use eventsrc::{Event, RecordedEvent};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct ItemAdded { sku: String, quantity: u32 }
///
/// #[derive(Event, Debug)]
/// enum Sold { ItemAdded(ItemAdded) }
///
/// /// "Total computers sold": a counter as a fold.
/// #[derive(Default)]
/// struct ComputersSold { total: u64 }
///
/// impl Projection for ComputersSold {
///     const NAME: &'static str = "computers_sold";
///     type Event = Sold;
///     type Error = std::convert::Infallible;
///     fn apply(&mut self, event: Sold, _: &RecordedEvent) -> Result<(), Self::Error> {
///         let Sold::ItemAdded(added) = event;
///         if added.sku.starts_with("computer") { self.total += u64::from(added.quantity); }
///         Ok(())
///     }
/// }
/// ```
pub trait Projection: Send + 'static {
    /// The name its checkpoint is kept under; change it to rebuild from scratch.
    const NAME: &'static str;
    /// What to do with events `Event` does not know.
    const UNKNOWN_EVENTS: UnknownEvents = UnknownEvents::Skip;
    /// The events it reads.
    type Event: Event;
    /// What applying can fail with (a read model's storage, usually).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Folds one event; `record` carries its stream, positions, metadata and time.
    fn apply(&mut self, event: Self::Event, record: &RecordedEvent) -> Result<(), Self::Error>;
}

/// Decides the side effects of events (a dispatcher's work: send e-mails, notify, issue
/// commands). Effects are returned as data and performed by the runner after commit, so a
/// reactor is as testable as a command handler.
///
/// ```
/// use eventsrc::Reactor;
/// use eventsrc::{Event, RecordedEvent};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct Activated { email: String }
///
/// #[derive(Event, Debug)]
/// enum Watched { Activated(Activated) }
///
/// #[derive(Debug, PartialEq)]
/// enum Email { Welcome { to: String } }
///
/// struct Mailer;
///
/// impl Reactor for Mailer {
///     const NAME: &'static str = "mailer";
///     type Event = Watched;
///     type Effect = Email;
///     type Error = std::convert::Infallible;
///     fn react(&mut self, event: Watched, _: &RecordedEvent) -> Result<Vec<Email>, Self::Error> {
///         let Watched::Activated(activated) = event;
///         Ok(vec![Email::Welcome { to: activated.email }])
///     }
/// }
/// ```
pub trait Reactor: Send + 'static {
    /// The name its checkpoint (and parked events) are kept under.
    const NAME: &'static str;
    /// What to do with events `Event` does not know.
    const UNKNOWN_EVENTS: UnknownEvents = UnknownEvents::Skip;
    /// The events it reacts to.
    type Event: Event;
    /// The side effects it decides (commands to send, messages to deliver).
    type Effect: Send + 'static;
    /// What deciding can fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides the effects of one event.
    fn react(
        &mut self,
        event: Self::Event,
        record: &RecordedEvent,
    ) -> Result<Vec<Self::Effect>, Self::Error>;
}

/// Decodes `record` for a consumer: `Ok(None)` when its type is unknown to `E` and `policy`
/// says skip.
pub fn decode_for<E: Event>(
    record: &RecordedEvent,
    policy: UnknownEvents,
) -> Result<Option<E>, RecordDecodeError> {
    match record.decode::<E>() {
        Ok(event) => Ok(Some(event)),
        Err(RecordDecodeError {
            source: DecodeError::UnknownType { .. },
            ..
        }) if policy == UnknownEvents::Skip => Ok(None),
        Err(error) => Err(error),
    }
}
