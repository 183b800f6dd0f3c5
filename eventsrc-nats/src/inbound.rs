//! [`Inbound`]: a durable JetStream consumer feeding remote events to a local [`Consumer`].

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{AckKind, Context, Message};
use eventsrc_core::backend::{Leases, wait_for_lease};
use eventsrc_core::relay::{IncomingError, incoming};
use eventsrc_core::runner::Consumer;
use eventsrc_core::{GlobalPosition, RecordedEvent, RunError};
use futures_util::StreamExt;

use crate::NatsError;

/// What feeding remote events can fail with.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// NATS failed: fetching, acknowledging, finding the consumer.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// A message is not an event a relay published. It is not acknowledged: it stays in the
    /// stream, and the next run stops on it again (unless told to
    /// [skip](Inbound::skip_malformed) such messages).
    #[error("stream `{stream}` message {sequence} on `{subject}`: {source}")]
    Malformed {
        /// The JetStream stream.
        stream: String,
        /// The message's sequence number in it.
        sequence: u64,
        /// Its subject.
        subject: String,
        /// What is wrong with it, naming the event when the message says which.
        #[source]
        source: Box<IncomingError>,
    },
    /// The local consumer failed (its store, or its own code on an event).
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Feeds the events of a JetStream stream, as a relay published them, to a [`Consumer`]
/// (a projection's runner consumer, a reactor's [`Reactions`](eventsrc_core::Reactions), a
/// SQL read model) through a durable pull consumer with explicit acknowledgements.
///
/// The consumer's checkpoint is the stream sequence of the last message it handled (as
/// `GlobalPosition { commit: sequence, sequence }`), saved with the batch as the consumer
/// saves any checkpoint. Messages are acknowledged after the batch was handled; a message
/// delivered again (the acknowledgement was lost, the process died) is at or before the
/// checkpoint and is acknowledged without being handled again. A read model that commits its
/// checkpoint with its rows, such as the SQLite and PostgreSQL ones, so sees each remote
/// event exactly once.
///
/// The events keep their origin's ids, streams, versions, positions, metadata and payloads;
/// they decode (and upcast) as they would from the origin's store.
pub struct Inbound<C> {
    stream: String,
    durable: String,
    filter: String,
    found: async_nats::jetstream::stream::Stream,
    /// Whether the durable consumer was brought to the checkpoint since this process (or,
    /// under a lease, this term as leader) began.
    aligned: bool,
    consumer: async_nats::jetstream::consumer::Consumer<pull::Config>,
    target: C,
    batch_size: usize,
    wait: Duration,
    skip_malformed: bool,
}

impl<C> std::fmt::Debug for Inbound<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("stream", &self.stream)
            .field("batch_size", &self.batch_size)
            .field("wait", &self.wait)
            .field("skip_malformed", &self.skip_malformed)
            .finish_non_exhaustive()
    }
}

impl<C: Consumer> Inbound<C> {
    /// Feeds `target` from the JetStream stream `stream` through the durable consumer
    /// `durable`, which is created if it does not exist. `filter` narrows it to one subject
    /// (`events.*.lead.>`), or to every subject when `None`.
    ///
    /// The target's checkpoint decides where delivery starts. Before its first batch (and
    /// under a lease, each time it takes the lease), when the durable consumer is not
    /// where the checkpoint is (messages a crashed process fetched are still waiting for their
    /// acknowledgement, the target's store was reset, the filter changed), it is made again,
    /// delivering from the message after the checkpoint: nothing is skipped, and the server's
    /// acknowledgement state never runs ahead of what the target handled. Run one `Inbound`
    /// per durable consumer (on one node, under a lease, as a runner is).
    pub async fn durable(
        context: &Context,
        stream: &str,
        durable: &str,
        filter: Option<&str>,
        target: C,
    ) -> Result<Self, InboundError> {
        let found = context
            .get_stream(stream)
            .await
            .map_err(|e| NatsError::new(format!("finding the JetStream stream `{stream}`"), e))?;
        let config = config(durable, filter.unwrap_or_default(), 0);
        let consumer = found
            .get_or_create_consumer(durable, config)
            .await
            .map_err(|e| NatsError::new(doing(stream, durable, "creating"), e))?;
        let inbound = Self {
            stream: stream.to_owned(),
            durable: durable.to_owned(),
            filter: filter.unwrap_or_default().to_owned(),
            found,
            consumer,
            target,
            batch_size: 500,
            wait: Duration::from_millis(500),
            skip_malformed: false,
            aligned: false,
        };
        Ok(inbound)
    }

    /// Makes the durable consumer again from the target's checkpoint unless it is there.
    async fn align(&mut self) -> Result<(), InboundError> {
        let (stream, durable) = (self.stream.as_str(), self.durable.as_str());
        let done = self.target.checkpoint().await?.map_or(0, |p| p.sequence);
        let info = self
            .consumer
            .info()
            .await
            .map_err(|e| NatsError::new(doing(stream, durable, "reading"), e))?;
        let consistent = info.num_ack_pending == 0
            && info.ack_floor.stream_sequence == done
            && info.config.filter_subject == self.filter;
        self.aligned = true;
        if consistent {
            return Ok(());
        }
        tracing::info!(
            stream,
            durable,
            checkpoint = done,
            acknowledged = info.ack_floor.stream_sequence,
            pending = info.num_ack_pending,
            "making the durable consumer again from the checkpoint"
        );
        self.found
            .delete_consumer(durable)
            .await
            .map_err(|e| NatsError::new(doing(stream, durable, "deleting"), e))?;
        self.consumer = self
            .found
            .create_consumer(config(durable, &self.filter, done))
            .await
            .map_err(|e| NatsError::new(doing(stream, durable, "creating"), e))?;
        Ok(())
    }

    /// The most messages handled as one batch (default: 500).
    #[must_use]
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// How long a fetch waits for messages when there are none (default: 500 ms): also how
    /// long [`run`](Self::run) may take to notice it should stop.
    #[must_use]
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Terminates messages that are not events a relay published (logging each) instead of
    /// stopping on them with [`InboundError::Malformed`]. They are never delivered again.
    #[must_use]
    pub fn skip_malformed(mut self, skip: bool) -> Self {
        self.skip_malformed = skip;
        self
    }

    /// The local consumer.
    pub fn consumer(&self) -> &C {
        &self.target
    }

    /// The stream sequence of the last message the consumer handled (its checkpoint), or
    /// `None` before the first.
    pub async fn checkpoint(&mut self) -> Result<Option<u64>, InboundError> {
        Ok(self.target.checkpoint().await?.map(|p| p.sequence))
    }

    /// The local consumer, once done.
    pub fn into_consumer(self) -> C {
        self.target
    }

    /// Fetches one batch (waiting up to [`wait`](Self::wait) for a first message), hands it
    /// to the consumer and acknowledges it. Returns how many messages it took, handled or
    /// skipped as already handled: 0 when there were none.
    pub async fn step(&mut self) -> Result<usize, InboundError> {
        if !self.aligned {
            self.align().await?;
        }
        let mut fetched = self
            .consumer
            .fetch()
            .max_messages(self.batch_size)
            .expires(self.wait)
            .messages()
            .await
            .map_err(|e| self.nats_error("fetching from", e))?;
        // Each message with its stream sequence, read once.
        let mut messages = Vec::new();
        while let Some(message) = fetched.next().await {
            let message = message.map_err(|e| self.nats_error("fetching from", e))?;
            messages.push((sequence_of(&message, &self.stream)?, message));
        }
        if messages.is_empty() {
            return Ok(0);
        }
        let checkpoint = self.target.checkpoint().await?;
        let done = checkpoint.map_or(0, |p| p.sequence);
        let mut events: Vec<RecordedEvent> = Vec::with_capacity(messages.len());
        let mut through = None;
        let mut skipped = Vec::new();
        for (sequence, message) in &messages {
            let sequence = *sequence;
            if sequence <= done {
                continue;
            }
            let header = |name: &str| {
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(async_nats::HeaderValue::as_str)
            };
            match incoming(header, &message.payload) {
                Ok(event) => events.push(event),
                Err(source) if self.skip_malformed => {
                    tracing::error!(stream = %self.stream, sequence, subject = %message.subject, error = %source, "terminating a message that is not an event");
                    skipped.push(message);
                }
                Err(source) => {
                    // Whatever came before it in this batch is still handled and acknowledged;
                    // it and the rest are given back, to be delivered again at once.
                    if let Some(through) = through {
                        self.handle(checkpoint, &events, through, &messages).await?;
                        self.ack_through(&messages, through.sequence).await?;
                    }
                    self.give_back(&messages, through.map_or(0, |t| t.sequence))
                        .await;
                    return Err(InboundError::Malformed {
                        stream: self.stream.clone(),
                        sequence,
                        subject: message.subject.to_string(),
                        source: Box::new(source),
                    });
                }
            }
            through = Some(GlobalPosition::new(sequence, sequence));
        }
        if let Some(through) = through {
            self.handle(checkpoint, &events, through, &messages).await?;
        }
        for message in skipped {
            message
                .ack_with(AckKind::Term)
                .await
                .map_err(|e| self.nats_error("terminating a message of", e))?;
        }
        self.ack_through(&messages, u64::MAX).await?;
        Ok(messages.len())
    }

    /// Hands `events` to the target; if it fails, gives the batch back first.
    async fn handle(
        &mut self,
        checkpoint: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
        messages: &[(u64, Message)],
    ) -> Result<(), InboundError> {
        if let Err(error) = self.target.handle(checkpoint, events, through).await {
            self.give_back(messages, 0).await;
            return Err(error.into());
        }
        Ok(())
    }

    /// Negatively acknowledges the messages after stream sequence `after`, so that the server
    /// delivers them again at once rather than after the acknowledgement wait. Best effort:
    /// if it fails, they come back after the wait, and the checkpoint still orders them.
    async fn give_back(&self, messages: &[(u64, Message)], after: u64) {
        for (sequence, message) in messages {
            if *sequence > after {
                let _ = message.ack_with(AckKind::Nak(None)).await;
            }
        }
    }

    /// Acknowledges the messages up to stream sequence `last`.
    async fn ack_through(
        &self,
        messages: &[(u64, Message)],
        last: u64,
    ) -> Result<(), InboundError> {
        for (sequence, message) in messages {
            if *sequence > last {
                break;
            }
            message
                .ack()
                .await
                .map_err(|e| self.nats_error("acknowledging a message of", e))?;
        }
        Ok(())
    }

    /// Handles batches until the stream has no message waiting.
    pub async fn catch_up(&mut self) -> Result<(), InboundError> {
        while self.step().await? > 0 {}
        Ok(())
    }

    /// Handles batches as they come until `shutdown` resolves (checked between batches), then
    /// returns the consumer.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<C, InboundError> {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // Between batches only: a batch is handled and acknowledged whole.
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(self.target),
                () = std::future::ready(()) => {}
            }
            self.step().await?;
        }
    }

    /// Runs on whichever node holds the lease named after the target consumer: waits for it
    /// (trying every [`wait`](Self::wait)), brings the durable consumer to the checkpoint
    /// (another node may have moved it), and handles batches while it holds the lease. NATS or
    /// the store failing lets the lease go and tries again; a malformed message or the
    /// target's own error stops it. Returns the target when `shutdown` resolves.
    pub async fn run_as_leader<L: Leases>(
        mut self,
        leases: &L,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<C, InboundError> {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let name = self.target.name().to_owned();
            let Some(mut lease) = wait_for_lease(leases, &name, self.wait, shutdown.as_mut()).await
            else {
                return Ok(self.target);
            };
            // Another node may have led since: start from the checkpoint as it is now.
            self.aligned = false;
            let outcome = async {
                loop {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => return Ok(true),
                        () = std::future::ready(()) => {}
                    }
                    self.step().await?;
                }
            };
            let outcome: Result<bool, InboundError> = tokio::select! {
                biased;
                () = lease.lost() => Ok(false),
                outcome = outcome => outcome,
            };
            drop(lease);
            match outcome {
                Ok(true) => return Ok(self.target),
                Ok(false) => tracing::warn!(consumer = %name, "lost the lease"),
                Err(
                    error @ (InboundError::Nats(_) | InboundError::Run(RunError::Store { .. })),
                ) => {
                    tracing::warn!(consumer = %name, %error, "letting the lease go; trying again");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => return Ok(self.target),
                        () = tokio::time::sleep(self.wait) => {}
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn nats_error(
        &self,
        doing: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> InboundError {
        InboundError::Nats(NatsError::new(
            format!("{doing} the JetStream stream `{}`", self.stream),
            source,
        ))
    }
}

/// The stream sequence of a JetStream message.
fn sequence_of(message: &Message, stream: &str) -> Result<u64, InboundError> {
    message.info().map(|i| i.stream_sequence).map_err(|e| {
        InboundError::Nats(NatsError::new(
            format!("reading the reply subject of a message of the JetStream stream `{stream}`"),
            e,
        ))
    })
}

/// What a NATS error about the durable consumer says it was doing.
fn doing(stream: &str, durable: &str, what: &str) -> String {
    format!("{what} the consumer `{durable}` of the JetStream stream `{stream}`")
}

/// The durable consumer's configuration, delivering from the message after stream sequence
/// `done` (from the start when 0).
fn config(durable: &str, filter: &str, done: u64) -> pull::Config {
    pull::Config {
        durable_name: Some(durable.to_owned()),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: match done {
            0 => DeliverPolicy::All,
            done => DeliverPolicy::ByStartSequence {
                start_sequence: done + 1,
            },
        },
        filter_subject: filter.to_owned(),
        ..pull::Config::default()
    }
}
