//! [`Runner`]: drives a consumer from its checkpoint through the log, then live.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::Instrument;

use crate::backend::{Leases, wait_for_lease};
use crate::runner::{Consumer, Progress};
use crate::subscription::{Batch, Lag, Start};
use crate::telemetry::record as meter;
use crate::{EventStore, GlobalPosition, ProgressWatch, RunError, Subscription};

/// Drives a [`Consumer`] from its checkpoint through the log, then live.
pub struct Runner<S, C> {
    subscription: Subscription<S>,
    consumer: C,
    checkpoint: Option<GlobalPosition>,
    loaded: bool,
    /// The batch read while the consumer handled the one before.
    prefetched: Option<Batch>,
    progress: watch::Sender<Progress>,
    /// When the lag in events was last read for the metrics (at most once a second).
    lag_read: Option<Instant>,
}

impl<S, C: std::fmt::Debug> std::fmt::Debug for Runner<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("consumer", &self.consumer)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

impl<S: EventStore, C: Consumer> Runner<S, C> {
    /// A runner reading `store`'s log (its tenant's) into `consumer`, from the beginning when
    /// the consumer has no checkpoint.
    pub fn new(store: S, consumer: C) -> Self {
        let mut subscription = Subscription::new(store, Start::Beginning);
        if let Some(types) = consumer.event_types() {
            subscription = subscription.event_types(types);
        }
        Self {
            subscription,
            consumer,
            checkpoint: None,
            loaded: false,
            prefetched: None,
            progress: watch::Sender::new(Progress::default()),
            lag_read: None,
        }
    }

    /// Where to start when the consumer has no checkpoint (default: the beginning).
    #[must_use]
    pub fn start(mut self, start: Start) -> Self {
        self.subscription.set_start(start);
        self
    }

    /// At most `size` events per batch, and so per transaction of a SQL read model
    /// (default 500).
    #[must_use]
    pub fn batch_size(mut self, size: usize) -> Self {
        self.subscription.set_batch_size(size);
        self
    }

    /// Lets the runner start (or stand) behind events truncated into the archive, skipping
    /// them, instead of stopping with [`StoreError::Truncated`](crate::StoreError::Truncated):
    /// for a consumer that does not need the removed history.
    #[must_use]
    pub fn allow_truncated(mut self) -> Self {
        self.subscription.set_allow_truncated();
        self
    }

    /// How often to look at the log when the store sends no append signal (default 500 ms);
    /// also how often a follower tries to take the lease.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.subscription.set_poll_interval(interval);
        self
    }

    /// The consumer.
    pub fn consumer(&self) -> &C {
        &self.consumer
    }

    /// The consumer, when the runner is done with it.
    pub fn into_consumer(self) -> C {
        self.consumer
    }

    /// A watch on the runner's progress: read-your-writes waits, progress displays.
    pub fn progress(&self) -> ProgressWatch {
        ProgressWatch::new(self.consumer.name().to_owned(), self.progress.subscribe())
    }

    /// How far behind the log the consumer is.
    pub async fn lag(&mut self) -> Result<Lag, RunError> {
        self.load().await?;
        let name = self.consumer.name();
        self.subscription
            .lag()
            .await
            .map_err(|e| RunError::store(name, e))
    }

    /// Reads the checkpoint, once, and puts the subscription there.
    async fn load(&mut self) -> Result<(), RunError> {
        if !self.loaded {
            self.checkpoint = self.consumer.checkpoint().await?;
            self.prefetched = None;
            // Without a checkpoint the subscription stays where it starts (or where it
            // resolved "the end" to).
            if let Some(position) = self.checkpoint {
                self.subscription.seek(position);
            }
            self.loaded = true;
            self.progress.send_modify(|p| p.position = self.checkpoint);
        }
        Ok(())
    }

    /// The next batch: the one read ahead, or a fresh read, waiting for new events if `wait`.
    async fn next(&mut self, wait: bool) -> Result<Batch, RunError> {
        if let Some(batch) = self.prefetched.take() {
            return Ok(batch);
        }
        let read = if wait {
            self.subscription.next_batch().await
        } else {
            self.subscription.poll_batch().await
        };
        read.map_err(|e| RunError::store(self.consumer.name(), e))
    }

    /// Hands one batch to the consumer and moves the checkpoint. When the batch was full
    /// (more is waiting), the next one is read while the consumer works, so a catch-up or a
    /// rebuild overlaps reading the log with writing the read model.
    async fn handle(&mut self, batch: Batch) -> Result<(), RunError> {
        if batch.events.is_empty() && Some(batch.through) == self.checkpoint {
            let caught_up = self.progress.send_if_modified(|p| {
                let changed = p.caught_up != batch.caught_up;
                p.caught_up = batch.caught_up;
                changed
            }) && batch.caught_up;
            if caught_up {
                self.lag_read = None;
                meter::lag(self.consumer.name(), Some(0), None);
            }
            return Ok(());
        }
        let span = tracing::debug_span!(
            "eventsrc.batch",
            consumer = self.consumer.name(),
            tenant = %self.subscription.store().tenant(),
            events = batch.events.len(),
            after = %batch.after,
            through = %batch.through,
        );
        let Self {
            consumer,
            subscription,
            checkpoint,
            ..
        } = self;
        let handling = async {
            let started = Instant::now();
            let handled = consumer
                .handle(*checkpoint, &batch.events, batch.through)
                .instrument(span)
                .await;
            (handled, started.elapsed())
        };
        let (handled, ahead) = if batch.caught_up {
            (handling.await, None)
        } else {
            let (handled, ahead) = tokio::join!(handling, subscription.poll_batch());
            (handled, Some(ahead))
        };
        let (handled, took) = handled;
        if let Err(error) = handled {
            // Read the batch again next time, from the checkpoint the store has.
            self.subscription.seek(batch.after);
            self.loaded = false;
            return Err(error);
        }
        self.checkpoint = Some(batch.through);
        meter::batch(self.consumer.name(), batch.events.len(), took);
        self.record_lag(&batch).await;
        self.progress.send_modify(|p| {
            p.position = Some(batch.through);
            p.handled += batch.events.len() as u64;
            p.caught_up = batch.caught_up;
        });
        if let Some(ahead) = ahead {
            let ahead = ahead.map_err(|e| RunError::store(self.consumer.name(), e))?;
            // An empty read ahead says only "nothing new then": read again when asked.
            if !ahead.events.is_empty() {
                self.prefetched = Some(ahead);
            }
        }
        Ok(())
    }

    /// Sets the lag gauges after `batch`: zero when it caught up; otherwise the age of its
    /// newest event, and the events behind as the store counts them, read at most once a
    /// second (a query of its own). A failed read leaves the gauge as it was.
    async fn record_lag(&mut self, batch: &Batch) {
        let name = self.consumer.name();
        if batch.caught_up {
            self.lag_read = None;
            meter::lag(name, Some(0), None);
            return;
        }
        let newest = batch.events.last().map(|event| event.recorded_at);
        if self
            .lag_read
            .is_some_and(|read| read.elapsed() < Duration::from_secs(1))
        {
            meter::lag(name, None, newest);
            return;
        }
        self.lag_read = Some(Instant::now());
        let behind = self.subscription.lag().await.ok().map(|lag| lag.events);
        meter::lag(name, behind, newest);
    }

    /// Handles the next batch if there is one, without waiting; `true` if the checkpoint moved.
    pub async fn step(&mut self) -> Result<bool, RunError> {
        self.load().await?;
        let before = self.checkpoint;
        let batch = self.next(false).await?;
        self.handle(batch).await?;
        Ok(self.checkpoint != before)
    }

    /// Handles everything in the log as it is now, batch by batch, and returns: tests,
    /// rebuilds, one-shot jobs. Each batch's progress shows on [`progress`](Self::progress).
    pub async fn catch_up(&mut self) -> Result<Progress, RunError> {
        self.catch_up_with(|_| {}).await
    }

    /// [`catch_up`](Self::catch_up), calling `on_batch` with the progress after each batch
    /// that moved the checkpoint: a rebuild's progress display.
    pub async fn catch_up_with(
        &mut self,
        mut on_batch: impl FnMut(&Progress),
    ) -> Result<Progress, RunError> {
        self.load().await?;
        let name = self.consumer.name();
        let head = self
            .subscription
            .store()
            .head_position()
            .await
            .map_err(|e| RunError::store(name, e))?;
        loop {
            let moved = self.step().await?;
            let progress = *self.progress.borrow();
            if moved {
                on_batch(&progress);
            }
            let at_head = progress.position.is_some_and(|p| p >= head);
            if at_head || (!moved && progress.caught_up) {
                return Ok(progress);
            }
        }
    }

    /// Runs until `shutdown` resolves: catches up, then follows the log live. Returns the
    /// consumer when stopped; on an error, the checkpoint stays at the last handled batch.
    ///
    /// Stopping is graceful: a batch being handled when `shutdown` resolves is finished, its
    /// checkpoint included, so an at-least-once consumer repeats nothing after a planned stop.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<C, RunError> {
        let shutdown = std::pin::pin!(shutdown);
        self.follow(shutdown).await?;
        Ok(self.consumer)
    }

    /// Runs on whichever node holds the consumer's lease: waits for the lease (trying every
    /// poll interval), runs while it holds, and goes back to waiting if it is lost. Stops
    /// when `shutdown` resolves.
    ///
    /// The store failing (a database restarting, a connection lost), or a broker a relay
    /// publishes to not answering ([`RunError::Unavailable`]), does not stop it: the
    /// node logs the error, lets the lease go, and tries again after the poll interval, from
    /// the stored checkpoint. The consumer's own errors (a bug on an event, an undecodable
    /// event) stop it and are returned: a leader that failed on an event would fail again.
    pub async fn run_as_leader<L: Leases>(
        mut self,
        leases: &L,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<C, RunError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let poll = self.subscription.poll_interval_value();
        loop {
            let name = self.consumer.name().to_owned();
            let Some(mut lease) = wait_for_lease(leases, &name, poll, shutdown.as_mut()).await
            else {
                return Ok(self.consumer);
            };
            tracing::info!(consumer = %name, "took the lease");
            meter::leadership(&name, "acquired");
            // Another node may have moved the checkpoint while this one waited.
            self.loaded = false;
            let transient = tokio::select! {
                biased;
                () = lease.lost() => {
                    tracing::warn!(consumer = %name, "lost the lease");
                    meter::leadership(&name, "lost");
                    false
                }
                result = self.follow(shutdown.as_mut()) => match result {
                    Ok(()) => return Ok(self.consumer),
                    Err(RunError::Fenced { .. }) => {
                        tracing::warn!(consumer = %name, "fenced: another node moved the checkpoint");
                        meter::leadership(&name, "fenced");
                        false
                    }
                    Err(error @ RunError::Store { .. }) => {
                        tracing::warn!(consumer = %name, %error, "the store failed; letting the lease go");
                        meter::leadership(&name, "store_failed");
                        true
                    }
                    Err(error @ RunError::Unavailable { .. }) => {
                        tracing::warn!(consumer = %name, %error, "a service it writes to does not answer; letting the lease go");
                        meter::leadership(&name, "unavailable");
                        true
                    }
                    Err(other) => return Err(other),
                },
            };
            drop(lease);
            if transient {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(self.consumer),
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
    }

    /// Catches up, then handles batches as they come, until `shutdown` resolves: between
    /// batches, never in the middle of one. `Ok(())` means stopped.
    async fn follow<F: Future<Output = ()>>(
        &mut self,
        mut shutdown: std::pin::Pin<&mut F>,
    ) -> Result<(), RunError> {
        loop {
            let batch = tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(()),
                batch = async {
                    self.load().await?;
                    // After a full batch, look once more without waiting: an empty read then
                    // says the runner caught up (its progress and lag gauges show it) before
                    // it waits for new events.
                    let wait = self.progress.borrow().caught_up;
                    self.next(wait).await
                } => batch?,
            };
            self.handle(batch).await?;
        }
    }
}
