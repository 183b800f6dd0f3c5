//! The consumers a projection runs as: [`InMemory`] and [`Checkpointed`], sharing their model
//! through a [`ReadModel`].

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::backend::stored_types;
use crate::runner::consumer::{check_fence, load_checkpoint, save_checkpoint};
use crate::runner::{Consumer, fold};
use crate::{CheckpointStore, GlobalPosition, Projection, RecordedEvent, RunError};

/// A read model shared between its runner and the code that queries it.
#[derive(Debug)]
pub struct ReadModel<P>(Arc<RwLock<P>>);

impl<P> Clone for ReadModel<P> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<P> ReadModel<P> {
    /// Shares `model`.
    pub fn new(model: P) -> Self {
        Self(Arc::new(RwLock::new(model)))
    }

    /// Reads the model; the runner waits while the guard lives, so keep it short.
    pub fn read(&self) -> RwLockReadGuard<'_, P> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, P> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A [`Projection`] kept in memory with its checkpoint beside it: rebuilt from the log on
/// every start, exactly once within the process.
#[derive(Debug)]
pub struct InMemory<P> {
    model: ReadModel<P>,
    checkpoint: Option<GlobalPosition>,
}

impl<P: Projection> InMemory<P> {
    /// The projection, starting from the beginning of the log.
    pub fn new(projection: P) -> Self {
        Self {
            model: ReadModel::new(projection),
            checkpoint: None,
        }
    }

    /// A handle to query the model while the runner updates it.
    pub fn model(&self) -> ReadModel<P> {
        self.model.clone()
    }
}

impl<P: Projection + Sync> Consumer for InMemory<P> {
    fn name(&self) -> &str {
        P::NAME
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        stored_types::<P::Event>(P::UNKNOWN_EVENTS)
    }

    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        Ok(self.checkpoint)
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        check_fence(P::NAME, from, self.checkpoint)?;
        fold(&mut *self.model.write(), events)?;
        self.checkpoint = Some(through);
        Ok(())
    }
}

/// A [`Projection`] that stores its read model itself (a search index, another database),
/// with its checkpoint in a [`CheckpointStore`], saved after each batch: at least once, so
/// `apply` must be idempotent.
#[derive(Debug)]
pub struct Checkpointed<P, C> {
    model: ReadModel<P>,
    checkpoints: C,
}

impl<P: Projection, C: CheckpointStore> Checkpointed<P, C> {
    /// The projection, with its checkpoint kept in `checkpoints` under [`Projection::NAME`].
    pub fn new(projection: P, checkpoints: C) -> Self {
        Self {
            model: ReadModel::new(projection),
            checkpoints,
        }
    }

    /// A handle to the projection.
    pub fn model(&self) -> ReadModel<P> {
        self.model.clone()
    }
}

impl<P: Projection + Sync, C: CheckpointStore> Consumer for Checkpointed<P, C> {
    fn name(&self) -> &str {
        P::NAME
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        stored_types::<P::Event>(P::UNKNOWN_EVENTS)
    }

    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        load_checkpoint(&self.checkpoints, P::NAME).await
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        check_fence(P::NAME, from, self.checkpoint().await?)?;
        fold(&mut *self.model.write(), events)?;
        save_checkpoint(&self.checkpoints, P::NAME, through).await
    }
}
