//! A subscriptions service with notification reactors, after Silas Baronda's talk on event sourcing
//! in Rails, where a backer subscribes to a creator, pays through a payment provider, and may stop.
//!
//! A [`Subscription`] is a fold over three events, [`Created`], [`Activated`] (with the payment
//! provider's key) and [`Deactivated`], stored under namespaced names (`subscription.activated`) so
//! that other domains may have a `Created` of their own. The commands do what Rails command objects
//! do: validate their attributes (presence, the Rails `validates :stripe_key, presence: true`),
//! validate against the current state, and build the event, or nothing when the state already holds
//! (a no-op):
//!
//! - [`Create`]: `email` and `plan` must be present; creating it again with the same attributes
//!   is a no-op, with others it is rejected;
//! - [`Activate`]: `payment_key` must be present; activating an active subscription with the
//!   same key is a no-op, with another key it is rejected (deactivate it first);
//! - [`Deactivate`]: a subscription that is not active stays as it is (a no-op).
//!
//! The event-driven half, reactions, is in [`reactors`] (the dispatcher: which event sends which
//! e-mail, decided as data) and [`outbox`] (the performer: messages written once per event, with a
//! mail provider that can be taken down to show retries and parking).
//!
//! ```
//! use eventsrc::{Aggregate, Command, Handle};
//! use eventsrc_examples::subscription::{Activate, Create, Subscription, SubscriptionId};
//!
//! let id = SubscriptionId(12);
//! let blank = Create { subscription: id, email: "".into(), plan: " ".into() };
//! assert_eq!(
//!     blank.validate().unwrap_err().to_string(),
//!     "invalid command: `email` can't be blank; `plan` can't be blank"
//! );
//!
//! let create = Create { subscription: id, email: "ada@example.com".into(), plan: "monthly".into() };
//! let activate = Activate { subscription: id, payment_key: "sub_66123".into() };
//! let mut subscription = Subscription::default();
//! for event in subscription.handle(&create)? {
//!     subscription.apply(&event);
//! }
//! for event in subscription.handle(&activate)? {
//!     subscription.apply(&event);
//! }
//! assert!(subscription.is_active());
//! assert_eq!(subscription.handle(&activate)?, vec![]); // a no-op
//! # Ok::<(), eventsrc_examples::subscription::SubscriptionError>(())
//! ```

pub mod outbox;
pub mod reactors;

use std::fmt;

use eventsrc::{Decision, Event, aggregate, command};
use serde::{Deserialize, Serialize};

/// A subscription's id (`12` in the demo); its stream is `subscription-12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriptionId(pub u64);

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// Created, never paid for.
    Pending,
    /// Paid for, with a payment key.
    Active,
    /// Deactivated; may be activated again.
    Inactive,
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Inactive => "inactive",
        })
    }
}

/// The subscription was created: `{"email":"ada@example.com","plan":"monthly"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "subscription.created")]
pub struct Created {
    /// The subscriber's e-mail address.
    pub email: String,
    /// The plan subscribed to.
    pub plan: String,
}

/// The subscription was paid for: `{"payment_key":"sub_66123"}`. Payloads that name the key
/// `stripe_key` read as well.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "subscription.activated")]
pub struct Activated {
    /// The payment provider's key for the recurring payment.
    #[serde(alias = "stripe_key")]
    pub payment_key: String,
}

/// The subscription stopped: `{}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "subscription.deactivated")]
pub struct Deactivated {}

/// A subscription's current state, kept current by applying its events.
///
/// `Subscription::default()` is one that does not exist yet; [`Create`] creates it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    status: Option<SubscriptionStatus>,
    email: String,
    plan: String,
    payment_key: Option<String>,
}

#[aggregate(id = SubscriptionId, error = SubscriptionError)]
impl Subscription {
    fn on_created(&mut self, event: &Created) {
        self.status = Some(SubscriptionStatus::Pending);
        self.email.clone_from(&event.email);
        self.plan.clone_from(&event.plan);
    }

    fn on_activated(&mut self, event: &Activated) {
        self.status = Some(SubscriptionStatus::Active);
        self.payment_key = Some(event.payment_key.clone());
    }

    fn on_deactivated(&mut self, _: &Deactivated) {
        self.status = Some(SubscriptionStatus::Inactive);
    }
}

impl Subscription {
    /// The status, once created.
    pub fn status(&self) -> Option<SubscriptionStatus> {
        self.status
    }

    /// Whether the subscription is active.
    pub fn is_active(&self) -> bool {
        self.status == Some(SubscriptionStatus::Active)
    }

    /// The subscriber's e-mail address (empty until created).
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The plan (empty until created).
    pub fn plan(&self) -> &str {
        &self.plan
    }

    /// The payment key of the latest activation, kept after deactivation.
    pub fn payment_key(&self) -> Option<&str> {
        self.payment_key.as_deref()
    }

    fn existing(&self) -> Result<SubscriptionStatus, SubscriptionError> {
        self.status.ok_or(SubscriptionError::NotFound)
    }
}

/// Why a subscription refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// A command other than `Create` for a subscription that does not exist.
    #[error("no such subscription: send `Create` first")]
    NotFound,
    /// `Create` with other attributes than the existing subscription's.
    #[error("the subscription already exists, for {email} on plan `{plan}`")]
    AlreadyExists {
        /// The existing subscription's e-mail address.
        email: String,
        /// The existing subscription's plan.
        plan: String,
    },
    /// `Activate` with another key than the one the subscription is active with.
    #[error("the subscription is already active with another payment key: deactivate it first")]
    ActiveWithAnotherKey,
}

/// Creates a subscription, pending until activated.
#[command(aggregate = Subscription, handler = Subscription::create)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    /// The new subscription's id.
    #[id]
    pub subscription: SubscriptionId,
    /// The subscriber's e-mail address: present.
    #[validate(non_empty, message = "can't be blank")]
    pub email: String,
    /// The plan: present.
    #[validate(non_empty, message = "can't be blank")]
    pub plan: String,
}

/// Activates the subscription with the payment provider's key.
#[command(aggregate = Subscription, handler = Subscription::activate)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activate {
    /// The subscription.
    #[id]
    pub subscription: SubscriptionId,
    /// The payment provider's key: present.
    #[validate(non_empty, message = "can't be blank")]
    pub payment_key: String,
}

/// Deactivates the subscription.
#[command(aggregate = Subscription, handler = Subscription::deactivate)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivate {
    /// The subscription.
    #[id]
    pub subscription: SubscriptionId,
}

// The commands' handlers: state in, events out, no I/O.
impl Subscription {
    fn create(&self, command: &Create) -> Decision<Self> {
        let (email, plan) = (command.email.trim(), command.plan.trim());
        if self.status.is_none() {
            let (email, plan) = (email.into(), plan.into());
            return Ok(vec![Created { email, plan }.into()]);
        }
        if self.email == email && self.plan == plan {
            return Ok(vec![]);
        }
        Err(SubscriptionError::AlreadyExists {
            email: self.email.clone(),
            plan: self.plan.clone(),
        })
    }

    fn activate(&self, command: &Activate) -> Decision<Self> {
        let key = command.payment_key.trim();
        match self.existing()? {
            SubscriptionStatus::Active if self.payment_key() == Some(key) => Ok(vec![]),
            SubscriptionStatus::Active => Err(SubscriptionError::ActiveWithAnotherKey),
            SubscriptionStatus::Pending | SubscriptionStatus::Inactive => {
                let payment_key = key.into();
                Ok(vec![Activated { payment_key }.into()])
            }
        }
    }

    fn deactivate(&self, _: &Deactivate) -> Decision<Self> {
        match self.existing()? {
            SubscriptionStatus::Active => Ok(vec![Deactivated {}.into()]),
            SubscriptionStatus::Pending | SubscriptionStatus::Inactive => Ok(vec![]),
        }
    }
}
