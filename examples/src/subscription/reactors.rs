//! The reactors: what happens when a subscription's events happen. In a Rails app, a
//! `Dispatcher` maps event types to reactors that send e-mail; here:
//!
//! | event | Rails reactor (mailer call) | effect decided here |
//! |---|---|---|
//! | [`Created`] | `NewSubscriberNotification` (`CreatorMailer.queue_new_subscriber`) | [`Notification::NewSubscriber`], to the creator |
//! | [`Activated`] | `SubscriptionConfirmation` (`SubscriberMailer.confirm_subscription`) | [`Notification::SubscriptionConfirmation`], to the subscriber |
//! | [`Deactivated`](super::Deactivated) | none | none: not read at all |
//!
//! (A dispatcher could hang both reactors on `Activated`; here the creator hears of a subscriber as
//! soon as the subscription is created, paid for or not. Moving it is one arm of the match.)
//!
//! [`Notifications`] is that dispatch table as one [`Reactor`]: its `react` matches on the event
//! type and returns the effects as data. It sends nothing itself, so a spec checks it as it
//! checks a command handler, event in and effects out (`eventsrc_testing::ReactorFixture`).
//! Performing the effects is the job of the [`Outbox`](super::outbox::Outbox), which a
//! [`Reactions`](eventsrc::Reactions) runner calls after the events are committed,
//! retrying and parking what keeps failing.
//!
//! An effect carries what its event says, and the subscription's id. [`Activated`] does not say the
//! subscriber's e-mail address, so a confirmation carries only the id (as
//! `SubscriberMailer.confirm_subscription` takes only `subscription_id:`); the outbox reads the
//! address from the subscription as it was at that event (see [`Outbox`](super::outbox::Outbox)).
//! The reactor therefore keeps no state: one started from the end of the log (an in-process
//! dispatcher) never saw the `Created` of an older subscription, and does not need to.
//!
//! ```
//! use eventsrc::Event;
//! use eventsrc_examples::subscription::reactors::{Notification, NotificationEvent, Notifications};
//! use eventsrc_examples::subscription::{Activated, Deactivated, SubscriptionId};
//! use eventsrc_testing::ReactorFixture;
//!
//! ReactorFixture::new(Notifications)
//!     .when("subscription-12", Activated { payment_key: "sub_66123".into() })
//!     .then_effects([Notification::SubscriptionConfirmation { subscription: SubscriptionId(12) }])
//!     .when("subscription-12", Deactivated {})
//!     .then_no_effects();
//!
//! // A runner asks the store for these types only: deactivations are never read.
//! assert_eq!(
//!     NotificationEvent::stored_types(),
//!     Some(vec!["subscription.created", "subscription.activated"])
//! );
//! ```

use eventsrc::Reactor;
use eventsrc::{Aggregate, Event, RecordedEvent, StreamId};

use super::{Activated, Created, Subscription, SubscriptionId};

/// The events [`Notifications`] reacts to: the subscription's events that send mail.
///
/// [`Deactivated`](super::Deactivated) is left out, so a runner does not read it from the store
/// and a fixture given one decides nothing: the reactor skips the event types it does not know.
#[derive(Event, Debug, Clone, PartialEq, Eq)]
pub enum NotificationEvent {
    /// A subscription was created: tell the creator about the new subscriber.
    Created(Created),
    /// A subscription was activated: confirm it to the subscriber.
    Activated(Activated),
}

/// A message to send, as decided by [`Notifications`]: data, not a send.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Notification {
    /// Tell the creator that someone subscribed (a Rails app's
    /// `CreatorMailer.queue_new_subscriber`). Carries what [`Created`] says.
    NewSubscriber {
        /// The new subscription.
        subscription: SubscriptionId,
        /// The subscriber's e-mail address.
        email: String,
        /// The plan subscribed to.
        plan: String,
    },
    /// Confirm to the subscriber that the subscription is active (a Rails app's
    /// `SubscriberMailer.confirm_subscription`). [`Activated`] does not carry the subscriber's
    /// address: the outbox reads it from the subscription.
    SubscriptionConfirmation {
        /// The activated subscription.
        subscription: SubscriptionId,
    },
}

impl Notification {
    /// The subscription the message is about.
    pub fn subscription(&self) -> SubscriptionId {
        match self {
            Self::NewSubscriber { subscription, .. }
            | Self::SubscriptionConfirmation { subscription } => *subscription,
        }
    }
}

/// Why [`Notifications`] could not react to an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The event is not in a subscription's stream, so there is nobody to notify.
    #[error("`{stream}` is not a subscription's stream: expected `subscription-<number>`")]
    NotASubscription {
        /// The event's stream.
        stream: StreamId,
    },
}

/// The dispatcher for subscriptions: a confirmation to the subscriber when a subscription is
/// activated, a new-subscriber notification to the creator when one is created. Stateless; its
/// checkpoint and parked events are kept under `subscription_notifications`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notifications;

impl Reactor for Notifications {
    const NAME: &'static str = "subscription_notifications";
    type Event = NotificationEvent;
    type Effect = Notification;
    type Error = NotificationError;

    fn react(
        &mut self,
        event: NotificationEvent,
        record: &RecordedEvent,
    ) -> Result<Vec<Notification>, NotificationError> {
        let subscription = subscription_of(&record.stream)?;
        let effect = match event {
            NotificationEvent::Created(created) => Notification::NewSubscriber {
                subscription,
                email: created.email,
                plan: created.plan,
            },
            NotificationEvent::Activated(_) => {
                Notification::SubscriptionConfirmation { subscription }
            }
        };
        Ok(vec![effect])
    }
}

/// The subscription whose stream is `stream` (`subscription-12`).
fn subscription_of(stream: &StreamId) -> Result<SubscriptionId, NotificationError> {
    match stream.id().parse() {
        Ok(id) if stream.category() == Subscription::TYPE => Ok(SubscriptionId(id)),
        _ => Err(NotificationError::NotASubscription {
            stream: stream.clone(),
        }),
    }
}
