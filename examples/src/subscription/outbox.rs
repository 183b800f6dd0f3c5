//! The outbox: where the [`Notifications`](super::reactors::Notifications) reactor's effects are
//! performed. An [`Outbox`] turns each [`Notification`] into a [`Message`] and hands it to the
//! mail provider; what the provider accepted stays in the outbox, in process memory, to be
//! queried (a real one would be a table that a mailer drains).
//!
//! A [`Reactions`](eventsrc::Reactions) runner performs effects at least once: after a
//! crash, or when a reactor is run again over old events, the same event comes again. The
//! outbox keys each message by the event's id and the kind of message, so a repeated delivery
//! finds its message already there and sends nothing ([`Outbox::repeats`] counts them).
//!
//! A confirmation names only the subscription; the outbox reads the subscriber's address from
//! the subscription through a [`Repository`], as it was at the activation
//! ([`Repository::load_at`] the event's stream version), so a replay weeks later writes the
//! message it would have written then, whatever happened to the subscription since.
//!
//! [`Outbox::begin_outage`] and [`Outbox::end_outage`] take the mail provider down and bring it
//! back; [`Outbox::fail_next`] makes it refuse only the next few messages (a blip). The runner
//! retries a refused message with backoff: a blip shorter than the retries goes unnoticed, an
//! outage longer than them parks the event with its error, and the reactor goes on with later
//! events. [`Reactions::replay_parked`] sends a parked event once the provider is back.
//!
//! Run durably, the reactor keeps its checkpoint in the store: a new runner over it (a restart)
//! goes on where the last one stopped and sends nothing twice.
//!
//! ```
//! use std::time::Duration;
//!
//! use eventsrc::{Reactions, Runner};
//! use eventsrc::runner::Retry;
//! use eventsrc::{MemoryStore, Metadata, Repository};
//! use eventsrc_examples::subscription::outbox::Outbox;
//! use eventsrc_examples::subscription::reactors::Notifications;
//! use eventsrc_examples::subscription::{Activate, Create, SubscriptionId};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let store = MemoryStore::new();
//! let repository = Repository::new(store.clone());
//! let subscription = SubscriptionId(12);
//! let create = Create { subscription, email: "ada@example.com".into(), plan: "monthly".into() };
//! repository.send(create, Metadata::new()).await?;
//! let activate = Activate { subscription, payment_key: "sub_66123".into() };
//! repository.send(activate, Metadata::new()).await?;
//!
//! let outbox = Outbox::new(store.clone());
//! let retry = Retry { attempts: 3, delay: Duration::from_millis(10), ..Retry::default() };
//! let reactions = Reactions::new(Notifications, outbox.clone(), store.clone()).retry(retry);
//! let mut runner = Runner::new(store.clone(), reactions);
//! runner.catch_up().await?;
//!
//! let sent: Vec<String> =
//!     outbox.messages().into_iter().map(|m| format!("{}: {}", m.to, m.subject)).collect();
//! assert_eq!(sent, [
//!     "creator@example.com: New subscriber: ada@example.com on the monthly plan",
//!     "ada@example.com: Your monthly subscription is active",
//! ]);
//!
//! // A restart: a new runner reads the checkpoint from the store and finds nothing new.
//! let reactions = Reactions::new(Notifications, outbox.clone(), store.clone());
//! Runner::new(store, reactions).catch_up().await?;
//! assert_eq!(outbox.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In process (a synchronous dispatcher): no stored checkpoint, and a runner that starts at the end
//! of the log reacts only to what happens after it started.
//!
//! ```
//! use eventsrc::{Reactions, Runner};
//! use eventsrc::subscription::Start;
//! use eventsrc::{MemoryStore, Metadata, Repository};
//! use eventsrc_examples::subscription::outbox::Outbox;
//! use eventsrc_examples::subscription::reactors::Notifications;
//! use eventsrc_examples::subscription::{Activate, Create, SubscriptionId};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let store = MemoryStore::new();
//! let repository = Repository::new(store.clone());
//! let subscription = SubscriptionId(12);
//! let create = Create { subscription, email: "ada@example.com".into(), plan: "monthly".into() };
//! repository.send(create, Metadata::new()).await?; // before the runner starts: not notified
//!
//! let outbox = Outbox::new(store.clone());
//! let reactions = Reactions::new(Notifications, outbox.clone(), store.clone()).in_process();
//! let mut runner = Runner::new(store.clone(), reactions).start(Start::End);
//! runner.catch_up().await?;
//! let activate = Activate { subscription, payment_key: "sub_66123".into() };
//! repository.send(activate, Metadata::new()).await?;
//! runner.catch_up().await?;
//!
//! let sent: Vec<String> = outbox.messages().into_iter().map(|m| m.subject).collect();
//! assert_eq!(sent, ["Your monthly subscription is active"]);
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Reactions::replay_parked`]: eventsrc::Reactions::replay_parked

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use eventsrc::runner::Perform;
use eventsrc::{EventId, EventStore, GlobalPosition, LoadError, RecordedEvent, Repository};

use super::reactors::Notification;
use super::{Subscription, SubscriptionId};

/// Which message a [`Notification`] became; with the event's id, the key of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// To the creator: someone subscribed.
    NewSubscriber,
    /// To the subscriber: the subscription is active.
    SubscriptionConfirmation,
}

impl MessageKind {
    /// The kind of message `notification` becomes.
    pub fn of(notification: &Notification) -> Self {
        match notification {
            Notification::NewSubscriber { .. } => Self::NewSubscriber,
            Notification::SubscriptionConfirmation { .. } => Self::SubscriptionConfirmation,
        }
    }
}

/// `new_subscriber`, `subscription_confirmation`: the names a Rails mailer would give them.
impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NewSubscriber => "new_subscriber",
            Self::SubscriptionConfirmation => "subscription_confirmation",
        })
    }
}

/// A message the mail provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The event it was sent for; with `kind`, the message's key.
    pub event_id: EventId,
    /// What it says.
    pub kind: MessageKind,
    /// Where that event is in the log.
    pub position: GlobalPosition,
    /// The subscription it is about.
    pub subscription: SubscriptionId,
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
}

/// Why the outbox could not write a message. The runner retries, then parks the event.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The mail provider is down ([`Outbox::begin_outage`], [`Outbox::fail_next`]).
    #[error("the mail provider is down: `{kind}` for subscription {subscription} not sent")]
    ProviderDown {
        /// The message refused.
        kind: MessageKind,
        /// The subscription it is about.
        subscription: SubscriptionId,
    },
    /// The subscription to confirm has no e-mail address: it was never created.
    #[error("subscription {0} has no e-mail address to confirm it to: it was never created")]
    NoAddress(SubscriptionId),
    /// The subscription could not be loaded to find the subscriber's address.
    #[error("could not load subscription {subscription}: {source}")]
    Load {
        /// The subscription.
        subscription: SubscriptionId,
        /// What loading said.
        #[source]
        source: LoadError,
    },
}

/// The messages written, and the mail provider's simulated health.
#[derive(Debug, Default)]
struct Log {
    messages: Vec<Message>,
    repeats: u64,
    refusals: u64,
    down: bool,
    fail_next: u32,
}

impl Log {
    fn holds(&self, event_id: EventId, kind: MessageKind) -> bool {
        self.messages
            .iter()
            .any(|m| m.event_id == event_id && m.kind == kind)
    }
}

/// The performer of [`Notification`]s: an outbox of messages, one per event and kind of
/// message, in process memory. Clones share the outbox, so a test or a demo keeps a clone to
/// query while a runner owns another.
#[derive(Debug, Clone)]
pub struct Outbox<S> {
    repository: Repository<S>,
    creator: String,
    log: Arc<Mutex<Log>>,
}

impl<S: EventStore> Outbox<S> {
    /// Where new-subscriber notifications go unless [`with_creator`](Self::with_creator) says.
    pub const DEFAULT_CREATOR: &'static str = "creator@example.com";

    /// An empty outbox reading subscriptions from `store`, with the provider up.
    pub fn new(store: S) -> Self {
        Self {
            repository: Repository::new(store),
            creator: Self::DEFAULT_CREATOR.to_owned(),
            log: Arc::default(),
        }
    }

    /// Sends new-subscriber notifications to `address`.
    pub fn with_creator(mut self, address: impl Into<String>) -> Self {
        self.creator = address.into();
        self
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        // A panic elsewhere while holding the lock leaves the log consistent: every change is
        // one push or one counter.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every message, in the order the provider accepted them.
    pub fn messages(&self) -> Vec<Message> {
        self.log().messages.clone()
    }

    /// The messages sent to `address`.
    pub fn to(&self, address: &str) -> Vec<Message> {
        self.filtered(|m| m.to == address)
    }

    /// The messages about `subscription`.
    pub fn about(&self, subscription: SubscriptionId) -> Vec<Message> {
        self.filtered(|m| m.subscription == subscription)
    }

    /// The messages sent for the event `event_id`.
    pub fn for_event(&self, event_id: EventId) -> Vec<Message> {
        self.filtered(|m| m.event_id == event_id)
    }

    fn filtered(&self, keep: impl Fn(&Message) -> bool) -> Vec<Message> {
        self.log()
            .messages
            .iter()
            .filter(|m| keep(m))
            .cloned()
            .collect()
    }

    /// How many messages it holds.
    pub fn len(&self) -> usize {
        self.log().messages.len()
    }

    /// Whether it holds no message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many deliveries found their message already written, and sent nothing: the
    /// at-least-once runner's repeats.
    pub fn repeats(&self) -> u64 {
        self.log().repeats
    }

    /// How many messages the provider refused (each try counts).
    pub fn refusals(&self) -> u64 {
        self.log().refusals
    }

    /// Takes the mail provider down: every message is refused until
    /// [`end_outage`](Self::end_outage).
    pub fn begin_outage(&self) {
        self.log().down = true;
    }

    /// Brings the mail provider back; also cancels [`fail_next`](Self::fail_next).
    pub fn end_outage(&self) {
        let mut log = self.log();
        log.down = false;
        log.fail_next = 0;
    }

    /// Whether the provider is down now (an outage, or refusals left from
    /// [`fail_next`](Self::fail_next)).
    pub fn is_down(&self) -> bool {
        let log = self.log();
        log.down || log.fail_next > 0
    }

    /// Makes the provider refuse the next `tries` messages, then accept again: a blip that
    /// retries ride out when it is shorter than they are.
    pub fn fail_next(&self, tries: u32) {
        self.log().fail_next = tries;
    }

    /// The message `notification` becomes for `record`: recipient and subject.
    async fn compose(
        &self,
        notification: Notification,
        record: &RecordedEvent,
    ) -> Result<Message, OutboxError> {
        let kind = MessageKind::of(&notification);
        let subscription = notification.subscription();
        let (to, subject) = match notification {
            Notification::NewSubscriber { email, plan, .. } => (
                self.creator.clone(),
                format!("New subscriber: {email} on the {plan} plan"),
            ),
            Notification::SubscriptionConfirmation { .. } => {
                let subscriber = self.subscriber(subscription, record).await?;
                let subject = format!("Your {} subscription is active", subscriber.plan());
                (subscriber.email().to_owned(), subject)
            }
        };
        Ok(Message {
            event_id: record.event_id,
            kind,
            position: record.global_position,
            subscription,
            to,
            subject,
        })
    }

    /// The subscription as it was at `record`, the event a notification was decided for (which
    /// [`Notifications`](super::reactors::Notifications) reads from that subscription's stream).
    async fn subscriber(
        &self,
        subscription: SubscriptionId,
        record: &RecordedEvent,
    ) -> Result<Subscription, OutboxError> {
        let loaded = self
            .repository
            .load_at::<Subscription>(&subscription, record.stream_version)
            .await
            .map_err(|source| OutboxError::Load {
                subscription,
                source,
            })?;
        // `Created` is what gives a subscription its address; a stream without one (written
        // around the commands) leaves it empty.
        if loaded.state.email().is_empty() {
            return Err(OutboxError::NoAddress(subscription));
        }
        Ok(loaded.state)
    }

    /// Hands `message` to the provider: written, unless the provider refuses it or it is
    /// already there.
    fn send(&self, message: Message) -> Result<(), OutboxError> {
        let mut log = self.log();
        if log.holds(message.event_id, message.kind) {
            log.repeats += 1;
            return Ok(());
        }
        if log.down || log.fail_next > 0 {
            log.fail_next = log.fail_next.saturating_sub(1);
            log.refusals += 1;
            return Err(OutboxError::ProviderDown {
                kind: message.kind,
                subscription: message.subscription,
            });
        }
        log.messages.push(message);
        Ok(())
    }
}

impl<S: EventStore> Perform<Notification> for Outbox<S> {
    type Error = OutboxError;

    async fn perform(
        &self,
        notification: Notification,
        record: &RecordedEvent,
    ) -> Result<(), OutboxError> {
        let kind = MessageKind::of(&notification);
        // A repeat needs neither the subscription nor the provider.
        {
            let mut log = self.log();
            if log.holds(record.event_id, kind) {
                log.repeats += 1;
                return Ok(());
            }
        }
        let message = self.compose(notification, record).await?;
        self.send(message)
    }
}
