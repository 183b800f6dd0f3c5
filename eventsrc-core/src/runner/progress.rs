//! How far a runner has got, and waiting for it: [`Progress`], [`ProgressWatch`] and
//! [`wait_for_checkpoint`].

use std::time::Duration;

use tokio::sync::watch;

use crate::runner::consumer::load_checkpoint;
use crate::{CheckpointStore, GlobalPosition, RunError};

/// How far a runner has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// The checkpoint: every event up to here is handled.
    pub position: Option<GlobalPosition>,
    /// Events handled since the runner started.
    pub handled: u64,
    /// Whether the last read found the runner caught up with the log.
    pub caught_up: bool,
}

/// Watches a runner's [`Progress`], for read-your-writes waits and progress displays.
#[derive(Debug, Clone)]
pub struct ProgressWatch {
    name: String,
    progress: watch::Receiver<Progress>,
}

impl ProgressWatch {
    /// A watch on the progress of the runner of `name`.
    pub(super) fn new(name: String, progress: watch::Receiver<Progress>) -> Self {
        Self { name, progress }
    }

    /// The latest progress.
    pub fn get(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Waits until the runner has handled everything up to `position` (the position
    /// [`Committed`](crate::Committed) or an append returned), at most `timeout`. `None` (a
    /// command that changed nothing) has nothing to wait for.
    pub async fn wait_for(
        &self,
        position: impl Into<Option<GlobalPosition>>,
        timeout: Duration,
    ) -> Result<(), RunError> {
        let Some(position) = position.into() else {
            return Ok(());
        };
        let mut progress = self.progress.clone();
        let reached = |p: &Progress| p.position.is_some_and(|at| at >= position);
        let waited = tokio::time::timeout(timeout, progress.wait_for(reached)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            // Timed out, or the runner is gone.
            _ => Err(RunError::Timeout {
                consumer: self.name.clone(),
                position,
                reached: self.get().position,
                timeout,
            }),
        }
    }

    /// Waits for the next change of progress (for progress displays); `false` once the runner
    /// is gone.
    pub async fn changed(&mut self) -> bool {
        self.progress.changed().await.is_ok()
    }
}

/// Waits until the checkpoint `name` in `checkpoints` reaches `position`: read-your-writes
/// across nodes, where the runner is elsewhere. Looks every `poll` until `timeout`.
pub async fn wait_for_checkpoint<C: CheckpointStore>(
    checkpoints: &C,
    name: &str,
    position: GlobalPosition,
    timeout: Duration,
    poll: Duration,
) -> Result<(), RunError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let reached = load_checkpoint(checkpoints, name).await?;
        if reached.is_some_and(|at| at >= position) {
            return Ok(());
        }
        if tokio::time::Instant::now() + poll > deadline {
            return Err(RunError::Timeout {
                consumer: name.to_owned(),
                position,
                reached,
                timeout,
            });
        }
        tokio::time::sleep(poll).await;
    }
}
