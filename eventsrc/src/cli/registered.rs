//! What an application registers with [`Cli`](super::Cli): its reactors (for `replay`) and its
//! read models' rebuilds (for `rebuild` and `switch`), with their types erased so that one
//! command line holds any number of them.

use std::future::Future;
use std::pin::Pin;

use crate::relay::{Publisher, Relay};
use crate::runner::{Consumer, Perform, Progress, Replayed};
use crate::{Reactions, Reactor, RunError, Runner, Store};

/// A future of the command line, boxed so that entries of different types fit one list.
pub(super) type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A reactor or relay whose parked events `replay` tries again.
pub(super) struct Replay {
    /// The reactor's `NAME`, or the relay's name.
    pub(super) name: String,
    run: Box<dyn Fn(Store) -> Boxed<'static, Result<Replayed, RunError>> + Send + Sync>,
}

impl Replay {
    pub(super) fn new<R, F>(
        make: impl Fn(Store) -> Reactions<R, F, Store> + Send + Sync + 'static,
    ) -> Self
    where
        R: Reactor + Sync + 'static,
        F: Perform<R::Effect> + 'static,
    {
        Self {
            name: R::NAME.to_owned(),
            run: Box::new(move |store| {
                let mut reactions = make(store);
                Box::pin(async move { reactions.replay_parked().await })
            }),
        }
    }

    /// A relay named `name`, which `make` builds on the store the command line opened.
    pub(super) fn relay<P: Publisher + 'static>(
        name: String,
        make: impl Fn(Store) -> Relay<P, Store> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            run: Box::new(move |store| {
                let mut relay = make(store);
                Box::pin(async move { relay.replay_parked().await })
            }),
        }
    }

    /// Tries every parked event of the reactor again, on `store`.
    pub(super) fn replay(&self, store: Store) -> Boxed<'static, Result<Replayed, RunError>> {
        (self.run)(store)
    }
}

/// A read model that `rebuild` builds beside the live one and `switch` puts in its place.
pub(super) struct Rebuild {
    /// The live read model's checkpoint name.
    pub(super) live: String,
    /// The SQL that replaces the live tables with the rebuilt ones.
    pub(super) swap: String,
    /// The rebuilt consumer's checkpoint name, asked of a consumer built on the store.
    name: Box<dyn Fn(Store) -> String + Send + Sync>,
    run: Box<RunRebuild>,
}

/// Catches a rebuilt read model up on a store, reporting each batch to a watcher.
type RunRebuild =
    dyn Fn(Store, Watcher) -> Boxed<'static, Result<Progress, RunError>> + Send + Sync;

/// Called with the progress after each batch of a rebuild.
pub(super) type Watcher = Box<dyn FnMut(&Progress) + Send>;

impl Rebuild {
    pub(super) fn new<C>(
        live: String,
        swap: String,
        make: impl Fn(Store) -> C + Send + Sync + 'static,
    ) -> Self
    where
        C: Consumer + 'static,
    {
        let make = std::sync::Arc::new(make);
        let named = std::sync::Arc::clone(&make);
        Self {
            live,
            swap,
            name: Box::new(move |store| named(store).name().to_owned()),
            run: Box::new(move |store, mut watch| {
                let consumer = make(store.clone());
                Box::pin(async move {
                    let mut runner = Runner::new(store, consumer);
                    runner.catch_up_with(|progress| watch(progress)).await
                })
            }),
        }
    }

    /// The checkpoint name the rebuilt read model runs under.
    pub(super) fn rebuilt(&self, store: Store) -> String {
        (self.name)(store)
    }

    /// Catches the rebuilt read model up with the log on `store`, calling `watch` after each
    /// batch.
    pub(super) fn catch_up(
        &self,
        store: Store,
        watch: Watcher,
    ) -> Boxed<'static, Result<Progress, RunError>> {
        (self.run)(store, watch)
    }
}
