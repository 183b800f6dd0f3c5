use std::time::Duration;

use crate::backend::AppendSignal;
use crate::store::{EventFilter, ReadAll};
use crate::{EventStore, GlobalPosition, RecordedEvent, StoreError};

/// Where a subscription starts when there is no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// From the first event of the log.
    #[default]
    Beginning,
    /// After the last event stored when the subscription first reads: only new events.
    End,
    /// After this position (a checkpoint).
    After(GlobalPosition),
}

/// Events read by a subscription, and how far the log has been read.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The position the batch was read after: where to go back to if it is not handled.
    pub after: GlobalPosition,
    /// The events, in commit order; at most the batch size. Empty when the log moved on
    /// only with events the filter leaves out.
    pub events: Vec<RecordedEvent>,
    /// The position read through: a consumer that handled `events` stores this as its
    /// checkpoint. Past the last event when a filter skipped later ones.
    pub through: GlobalPosition,
    /// Whether the subscription has caught up with the log as it was when this batch was read.
    pub caught_up: bool,
}

/// How far a subscription is behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Where the subscription is.
    pub position: GlobalPosition,
    /// The newest readable event.
    pub head: GlobalPosition,
    /// Events between the two, counted by sequence number: exact on the memory and SQLite
    /// stores; on PostgreSQL an upper bound (rolled-back appends leave holes in the sequence).
    pub events: u64,
}

impl Lag {
    /// The lag between `position` and `head`.
    pub fn between(position: GlobalPosition, head: GlobalPosition) -> Self {
        Self {
            position,
            head,
            events: head.sequence.saturating_sub(position.sequence),
        }
    }
}

/// Reads the global log from a position: catch-up in bounded batches, then live.
///
/// Backpressure comes from the shape: the consumer asks for the next batch when it is ready,
/// and a batch holds at most [`batch_size`](Self::batch_size) events, so nothing is buffered
/// beyond one batch however far behind the subscription is.
#[derive(Debug)]
pub struct Subscription<S> {
    store: S,
    start: Start,
    position: Option<GlobalPosition>,
    batch_size: usize,
    poll_interval: Duration,
    filter: EventFilter,
    signal: Option<AppendSignal>,
    signal_asked: bool,
    allow_truncated: bool,
}

impl<S: EventStore> Subscription<S> {
    /// Default events per batch.
    pub const DEFAULT_BATCH_SIZE: usize = 500;
    /// Default pause between looks at the log when the store sends no signal, and the longest
    /// wait for one when it does.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

    /// A subscription to `store`'s log (its tenant's) from `start`.
    pub fn new(store: S, start: Start) -> Self {
        let mut subscription = Self {
            store,
            position: None,
            start,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            filter: EventFilter::default(),
            signal: None,
            signal_asked: false,
            allow_truncated: false,
        };
        subscription.reset();
        subscription
    }

    /// At most `size` events per batch (at least 1).
    #[must_use]
    pub fn batch_size(mut self, size: usize) -> Self {
        self.set_batch_size(size);
        self
    }

    /// How often to look at the log when no signal comes.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.set_poll_interval(interval);
        self
    }

    pub(crate) fn set_batch_size(&mut self, size: usize) {
        self.batch_size = size.max(1);
    }

    /// Skips events truncated into the archive instead of failing with
    /// [`StoreError::Truncated`](crate::StoreError::Truncated) when the subscription is
    /// behind them ([`ReadAll::allow_truncated`](crate::store::ReadAll::allow_truncated)).
    #[must_use]
    pub fn allow_truncated(mut self) -> Self {
        self.allow_truncated = true;
        self
    }

    pub(crate) fn set_allow_truncated(&mut self) {
        self.allow_truncated = true;
    }

    pub(crate) fn set_poll_interval(&mut self, interval: Duration) {
        self.poll_interval = interval;
    }

    pub(crate) fn poll_interval_value(&self) -> Duration {
        self.poll_interval
    }

    pub(crate) fn set_start(&mut self, start: Start) {
        self.start = start;
        self.reset();
    }

    /// Back to where the subscription starts.
    pub(crate) fn reset(&mut self) {
        self.position = match self.start {
            Start::Beginning => Some(GlobalPosition::START),
            Start::After(position) => Some(position),
            Start::End => None,
        };
    }

    /// Only these event types (stored names) are delivered; `through` still moves past the
    /// others, so the checkpoint keeps up with the log.
    #[must_use]
    pub fn event_types<I: IntoIterator<Item = T>, T: Into<String>>(mut self, types: I) -> Self {
        self.filter.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Only events of streams in these categories (stream types) are delivered.
    #[must_use]
    pub fn categories<I: IntoIterator<Item = T>, T: Into<String>>(mut self, categories: I) -> Self {
        self.filter.categories = categories.into_iter().map(Into::into).collect();
        self
    }

    /// The store it reads.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Where it starts when it has not read yet.
    pub fn start(&self) -> Start {
        self.start
    }

    /// The position read through so far (`None` before a subscription from the end first read).
    pub fn position(&self) -> Option<GlobalPosition> {
        self.position
    }

    /// Moves the subscription to `position` (a consumer going back to its checkpoint after a
    /// failed batch, for instance).
    pub fn seek(&mut self, position: GlobalPosition) {
        self.position = Some(position);
    }

    /// How far behind the log it is.
    pub async fn lag(&self) -> Result<Lag, StoreError> {
        let head = self.store.head_position().await?;
        Ok(Lag::between(self.position.unwrap_or(head), head))
    }

    /// The next batch, waiting for new events when caught up. Never returns an empty batch
    /// whose `through` did not move.
    pub async fn next_batch(&mut self) -> Result<Batch, StoreError> {
        loop {
            // Take the signal's current value before reading, so that an append landing
            // between the read and the wait still wakes the wait.
            self.ensure_signal().await?;
            if let Some(signal) = &mut self.signal {
                signal.borrow_and_update();
            }
            let from = self.position;
            let batch = self.poll_batch().await?;
            if !batch.events.is_empty() || Some(batch.through) != from {
                return Ok(batch);
            }
            self.wait().await;
        }
    }

    /// The next batch without waiting: empty, with `through` unchanged, when there is nothing
    /// new.
    pub async fn poll_batch(&mut self) -> Result<Batch, StoreError> {
        let position = match self.position {
            Some(position) => position,
            None => {
                let head = self.store.head_position().await?;
                self.position = Some(head);
                head
            }
        };
        let filtered = !self.filter.event_types.is_empty() || !self.filter.categories.is_empty();
        // With a filter, a short page says nothing of the events left out after its last one:
        // the head read *before* the page is a position every later read includes, so the
        // subscription may move up to it.
        let head = if filtered {
            Some(self.store.head_position().await?)
        } else {
            None
        };
        let read = ReadAll {
            after: position,
            limit: self.batch_size,
            filter: self.filter.clone(),
            allow_truncated: self.allow_truncated,
        };
        let events = self.store.read_all(read).await?;
        let caught_up = events.len() < self.batch_size;
        let last = events.last().map(|e| e.global_position);
        let through = match (last, head) {
            (Some(last), Some(head)) if caught_up => last.max(head),
            (Some(last), _) => last,
            (None, Some(head)) => head.max(position),
            (None, None) => position,
        };
        self.position = Some(through);
        Ok(Batch {
            after: position,
            events,
            through,
            caught_up,
        })
    }

    async fn ensure_signal(&mut self) -> Result<(), StoreError> {
        if !self.signal_asked {
            self.signal = self.store.append_signal().await?;
            self.signal_asked = true;
        }
        Ok(())
    }

    /// Waits for the signal, or one poll interval, whichever comes first.
    async fn wait(&mut self) {
        match &mut self.signal {
            Some(signal) => {
                if let Ok(Err(_closed)) =
                    tokio::time::timeout(self.poll_interval, signal.changed()).await
                {
                    // The store's signal is gone; fall back to polling.
                    self.signal = None;
                }
            }
            None => tokio::time::sleep(self.poll_interval).await,
        }
    }
}
