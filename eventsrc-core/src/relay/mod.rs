//! Publishing the log to a message broker, and reading it back: the contract every broker
//! crate (`eventsrc-nats`, `eventsrc-amqp`) implements, and the parts they share.
//!
//! A [`Relay`] is a [`Consumer`]: a [`Runner`](crate::Runner) feeds it the global log (or the
//! event types it asks for), it hands each batch to a [`Publisher`] and saves its checkpoint
//! only after the broker confirmed every message. Run it with
//! [`run_as_leader`](crate::Runner::run_as_leader) so one node publishes. After a crash it
//! publishes the events since its checkpoint again, with the same event ids: the broker (NATS
//! JetStream's `Nats-Msg-Id`) or the consumer (AMQP's `message_id`) drops the copies.
//!
//! What goes out for each event:
//! - the subject (NATS) or routing key (AMQP), from a [`Subjects`] template, by default
//!   `events.{tenant}.{category}.{event_type}`;
//! - the headers of [`headers`]: event id, type, schema version, stream, version, position,
//!   tenant, recording time, correlation and causation ids, and the whole metadata as JSON;
//! - the payload: the stored JSON, byte for byte.
//!
//! [`incoming`] turns such a message back into a [`RecordedEvent`], so that a service on the
//! other side runs its projections and reactors on remote events as on its own.
//!
//! A publish the broker refuses (no stream takes the subject, a message too large) is retried
//! as [`Retry`] says, then parked like a reactor's event and replayed with
//! [`Relay::replay_parked`]. A broker that does not answer parks nothing: the relay keeps
//! trying, and after [`Relay::unavailable_for`] gives the batch up with
//! [`RunError::Unavailable`], which a leader treats as passing (it lets its lease go and
//! starts again from the checkpoint). [`Runner::run`](crate::Runner::run) stops on it, as on a
//! store error.
//!
//! # Order
//!
//! Events go out in log order, so each stream's events in version order. An outage keeps that
//! order: the relay sends every message after the first unanswered one again, in order. A refusal does not: a message the broker refused
//! and then took (on a retry, or replayed from parking) arrives after the later events of its
//! stream that were published meanwhile. Consumers that need a stream's events in order check
//! the stream version header.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{ParkedEvent, ParkedStore};
use crate::runner::Consumer;
use crate::runner::consumer::{check_fence, load_checkpoint, save_checkpoint};
use crate::runner::reactions::{Replayed, Retry, settle_replay};
use crate::telemetry::record as meter;
use crate::{CheckpointStore, EventId, GlobalPosition, RecordedEvent, RunError, Timestamp};

pub mod headers;
mod incoming;
mod subjects;

pub use incoming::{IncomingError, incoming};
pub use subjects::{InvalidSubjects, Subjects};

/// One event to publish: the record and the subject (routing key) it goes to.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The event as stored.
    pub record: &'a RecordedEvent,
    /// Where it goes: a NATS subject, an AMQP routing key.
    pub subject: &'a str,
}

/// Why a broker did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The broker refused this message (no stream takes its subject, it is too large, it was
    /// returned as unroutable): retried as the relay's [`Retry`] says, then parked.
    Refused,
    /// The broker did not answer (connection lost, timed out, restarting): retried until it
    /// answers, never parked.
    Unavailable,
}

/// A message a broker did not take, and why.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct PublishError {
    /// Refused or unavailable.
    pub failure: Failure,
    /// What the broker or its client said.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl PublishError {
    /// The broker refused the message.
    pub fn refused(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            failure: Failure::Refused,
            source: source.into(),
        }
    }

    /// The broker did not answer.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            failure: Failure::Unavailable,
            source: source.into(),
        }
    }
}

/// A broker client that publishes events with confirmation: what a broker crate implements
/// for [`Relay`].
pub trait Publisher: Send + Sync {
    /// Publishes `messages`, in order, and waits until the broker confirmed or refused each.
    /// Returns one result per message, in the same order. An implementation sends them all
    /// before it waits (pipelined), so that a batch costs about one round trip.
    ///
    /// The relay sends every message after the first one reported
    /// [unavailable](PublishError::unavailable) again, after it, whatever was reported of
    /// them: so each stream's order holds through an outage, and an implementation need not
    /// wait for, or even send, the rest of a batch once one message went unanswered.
    fn publish(
        &self,
        messages: &[Outgoing<'_>],
    ) -> impl Future<Output = Vec<Result<(), PublishError>>> + Send;
}

impl<P: Publisher + ?Sized> Publisher for Arc<P> {
    fn publish(
        &self,
        messages: &[Outgoing<'_>],
    ) -> impl Future<Output = Vec<Result<(), PublishError>>> + Send {
        (**self).publish(messages)
    }
}

/// Which events a relay publishes, beyond the event types the store filters by.
#[derive(Clone)]
enum Filter {
    All,
    Categories(Vec<String>),
    With(Arc<dyn Fn(&RecordedEvent) -> bool + Send + Sync>),
}

impl Filter {
    fn keeps(&self, record: &RecordedEvent) -> bool {
        match self {
            Filter::All => true,
            Filter::Categories(categories) => {
                categories.iter().any(|c| c == record.stream.category())
            }
            Filter::With(keep) => keep(record),
        }
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::All => f.write_str("All"),
            Filter::Categories(c) => f.debug_tuple("Categories").field(c).finish(),
            Filter::With(_) => f.write_str("With(..)"),
        }
    }
}

/// Publishes the log to a broker as a [`Consumer`]: checkpointed after the broker confirmed,
/// leased when run with [`run_as_leader`](crate::Runner::run_as_leader), parking what the
/// broker keeps refusing. See the [module docs](self).
///
/// ```
/// # use std::time::Duration;
/// use eventsrc::relay::{Outgoing, PublishError, Publisher, Relay, Subjects};
/// use eventsrc::{EventStore, MemoryStore, Runner};
///
/// /// A broker that takes everything (a real one is `eventsrc::nats::JetStream`).
/// struct Accepting;
///
/// impl Publisher for Accepting {
///     async fn publish(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), PublishError>> {
///         messages.iter().map(|m| { println!("{}", m.subject); Ok(()) }).collect()
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let relay = Relay::new("to-broker", Accepting, store.clone())
///     .subjects(Subjects::template("crm.{category}.{event_type}")?)
///     .categories(["lead"]);
/// let mut runner = Runner::new(store, relay);
/// runner.catch_up().await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Relay<P, St> {
    name: String,
    publisher: P,
    store: St,
    subjects: Subjects,
    event_types: Option<Vec<&'static str>>,
    filter: Filter,
    retry: Retry,
    unavailable_for: Duration,
}

impl<P, St> fmt::Debug for Relay<P, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("name", &self.name)
            .field("subjects", &self.subjects)
            .field("event_types", &self.event_types)
            .field("filter", &self.filter)
            .field("retry", &self.retry)
            .field("unavailable_for", &self.unavailable_for)
            .finish_non_exhaustive()
    }
}

impl<P: Publisher, St: CheckpointStore + ParkedStore> Relay<P, St> {
    /// A relay named `name` (its checkpoint, lease and parked events are kept under it, in
    /// `store`) publishing every event through `publisher` to
    /// [`Subjects::default`].
    pub fn new(name: impl Into<String>, publisher: P, store: St) -> Self {
        Self {
            name: name.into(),
            publisher,
            store,
            subjects: Subjects::default(),
            event_types: None,
            filter: Filter::All,
            retry: Retry::default(),
            unavailable_for: Duration::from_secs(30),
        }
    }

    /// Where each event goes (default: `events.{tenant}.{category}.{event_type}`).
    #[must_use]
    pub fn subjects(mut self, subjects: Subjects) -> Self {
        self.subjects = subjects;
        self
    }

    /// Publishes only these stored event types; the store reads only them.
    #[must_use]
    pub fn event_types(mut self, types: impl IntoIterator<Item = &'static str>) -> Self {
        self.event_types = Some(types.into_iter().collect());
        self
    }

    /// Publishes only the events of streams in these categories (`lead` for `lead-1410`).
    #[must_use]
    pub fn categories<I, S>(mut self, categories: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.filter = Filter::Categories(categories.into_iter().map(Into::into).collect());
        self
    }

    /// Publishes only the events `keep` says yes to. Replaces [`categories`](Self::categories).
    #[must_use]
    pub fn filter(mut self, keep: impl Fn(&RecordedEvent) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Filter::With(Arc::new(keep));
        self
    }

    /// How a refused message is retried before it is parked (default: [`Retry::default`]).
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// How long a batch waits for a broker that does not answer before the relay gives it up
    /// with [`RunError::Unavailable`] (default: 30 s). Nothing is parked or checkpointed then.
    #[must_use]
    pub fn unavailable_for(mut self, wait: Duration) -> Self {
        self.unavailable_for = wait;
        self
    }

    /// The relay's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The publisher.
    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// The events the broker kept refusing, oldest first.
    pub async fn parked(&self) -> Result<Vec<ParkedEvent>, RunError> {
        self.store
            .parked(&self.name)
            .await
            .map_err(|e| RunError::store(&self.name, e))
    }

    /// Publishes every parked event again, once each (after the broker was fixed, say): those
    /// the broker takes are unparked, the others stay parked with the new error.
    pub async fn replay_parked(&mut self) -> Result<Replayed, RunError> {
        let mut replayed = Replayed::default();
        for parked in self.parked().await? {
            let subject = self.subjects.subject(&parked.event);
            let outgoing = [Outgoing {
                record: &parked.event,
                subject: &subject,
            }];
            let outcome = match self.publisher.publish(&outgoing).await.pop() {
                Some(Ok(())) => Ok(()),
                Some(Err(error)) => Err(format!("publishing to `{subject}`: {error}")),
                None => Err("the publisher returned no result".to_owned()),
            };
            settle_replay(&self.store, &self.name, parked, outcome, &mut replayed).await?;
        }
        Ok(replayed)
    }

    async fn park(&self, parked: ParkedEvent) -> Result<(), RunError> {
        self.store
            .park(parked)
            .await
            .map_err(|e| RunError::store(&self.name, e))
    }

    /// Publishes `events` until the broker took each or refused it past the retry policy
    /// (then it is parked). Gives up with [`RunError::Unavailable`] when the broker does not
    /// answer for longer than `unavailable_for`.
    async fn publish_all(&self, events: &[&RecordedEvent]) -> Result<(), RunError> {
        let subjects: Vec<String> = events.iter().map(|r| self.subjects.subject(r)).collect();
        // Indexes into `events` still to publish, in log order, and each one's refusals.
        let mut pending: Vec<usize> = (0..events.len()).collect();
        let mut refusals = vec![0u32; events.len()];
        let mut unavailable_since: Option<Instant> = None;
        let mut pause_number = 0;
        while !pending.is_empty() {
            let outgoing: Vec<Outgoing<'_>> = pending
                .iter()
                .map(|&i| Outgoing {
                    record: events[i],
                    subject: &subjects[i],
                })
                .collect();
            let results = self.publisher.publish(&outgoing).await;
            // Everything after the first message the broker did not answer for is sent again
            // after it, whatever the broker said of it: an outage never reorders a stream.
            let first_lost = results
                .iter()
                .position(|r| r.as_ref().is_err_and(|e| e.failure == Failure::Unavailable));
            let mut again = Vec::new();
            let mut last_unavailable = None;
            for (n, &i) in pending.iter().enumerate() {
                if first_lost.is_some_and(|first| n > first) {
                    again.push(i);
                    continue;
                }
                let error = match results.get(n) {
                    Some(Ok(())) => continue,
                    Some(Err(error)) => error,
                    None => {
                        return Err(RunError::unavailable(
                            &self.name,
                            format!(
                                "the publisher returned {} results for {} messages",
                                results.len(),
                                pending.len()
                            ),
                        ));
                    }
                };
                let record = events[i];
                match error.failure {
                    Failure::Unavailable => {
                        last_unavailable = Some(error.to_string());
                        again.push(i);
                    }
                    Failure::Refused => {
                        refusals[i] += 1;
                        if refusals[i] >= self.retry.attempts.max(1) {
                            tracing::error!(relay = %self.name, event_id = %record.event_id, subject = %subjects[i], %error, "parking event");
                            meter::parked(&self.name);
                            self.park(ParkedEvent {
                                reactor: self.name.clone(),
                                event: record.clone(),
                                error: format!("publishing to `{}`: {error}", subjects[i]),
                                attempts: refusals[i],
                                parked_at: Timestamp::now(),
                            })
                            .await?;
                        } else {
                            tracing::warn!(relay = %self.name, event_id = %record.event_id, subject = %subjects[i], %error, "the broker refused an event; retrying");
                            again.push(i);
                        }
                    }
                }
            }
            if again.is_empty() {
                return Ok(());
            }
            if let Some(error) = last_unavailable {
                let since = *unavailable_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.unavailable_for {
                    return Err(RunError::unavailable(&self.name, error));
                }
                tracing::warn!(relay = %self.name, %error, "the broker does not answer; trying again");
            } else {
                unavailable_since = None;
            }
            pause_number += 1;
            tokio::time::sleep(self.retry.delay_after(pause_number)).await;
            pending = again;
        }
        Ok(())
    }
}

impl<P: Publisher, St: CheckpointStore + ParkedStore> Consumer for Relay<P, St> {
    fn name(&self) -> &str {
        &self.name
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        self.event_types.clone()
    }

    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        load_checkpoint(&self.store, &self.name).await
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        let stored = load_checkpoint(&self.store, &self.name).await?;
        check_fence(&self.name, from, stored)?;
        let kept: Vec<&RecordedEvent> = events.iter().filter(|r| self.filter.keeps(r)).collect();
        if !kept.is_empty() {
            self.publish_all(&kept).await?;
        }
        save_checkpoint(&self.store, &self.name, through).await
    }
}

/// The id the broker de-duplicates a message by: the event id, as text.
pub fn message_id(event_id: EventId) -> String {
    event_id.to_string()
}
