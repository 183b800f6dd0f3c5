//! The repository's aggregate cache: decided state kept in memory between commands.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::{Aggregate, Loaded, StreamId, Tenant};

/// An in-process cache of aggregates' decided state, so that a command on a known aggregate
/// skips the load: it decides on the state its last command left and appends at that version,
/// one round trip in all.
///
/// Give it to a repository with [`Repository::with_cache`](crate::Repository::with_cache).
/// Entries are keyed by aggregate type, tenant and stream, so one cache may serve repositories
/// of several tenants. It holds at most `capacity` aggregates and evicts the least useful
/// (S3-FIFO: aggregates commanded once are dropped before those commanded again and again), so
/// its memory is `capacity` times the size of a state. Clones share the entries.
///
/// The cache never makes a decision wrong, on one node or many:
///
/// - an append from cached state expects the cached version, so if another node (or another
///   repository) wrote meanwhile, the store refuses it; the command then reads the events it
///   missed, as a load would, and decides again. A stale entry costs one catch-up.
/// - a command that the cached state rejects, or finds already done (a no-op), is checked
///   against the store before the answer is given: a refusal is never based on state that is
///   gone.
/// - a conditional command ([`CommandOptions::expect_version`](crate::CommandOptions)) whose
///   token is not the cached version reads the stream before judging it stale.
/// - an entry is taken out while its command runs and put back only after the append
///   succeeded or the store was read (a refusal, a no-op, a stale token); after a conflict, a
///   store error, or an append whose outcome is unknown, the aggregate is read again next
///   time.
///
/// A cache serves one store: share it among repositories over the same database (of any
/// tenants), not between databases.
///
/// Aggregates opt out with `#[aggregate(cache = false)]` ([`Aggregate::CACHE`]).
///
/// ```
/// use eventsrc::{AggregateCache, MemoryStore, Metadata, Repository, command, aggregate, Decision, Event};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct Deposited { cents: u64 }
/// # #[derive(Default, Debug)]
/// # struct Account { balance: u64 }
/// # #[aggregate(id = u64)]
/// # impl Account {
/// #     fn on_deposited(&mut self, e: &Deposited) { self.balance += e.cents }
/// # }
/// # #[command(aggregate = Account, handler = Account::deposit)]
/// # struct Deposit { #[id] account: u64, cents: u64 }
/// # impl Account {
/// #     fn deposit(&self, c: &Deposit) -> Decision<Self> { Ok(vec![Deposited { cents: c.cents }.into()]) }
/// # }
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let cache = AggregateCache::new(10_000);
/// let repository = Repository::new(MemoryStore::new()).with_cache(cache.clone());
///
/// repository.send(Deposit { account: 7, cents: 500 }, Metadata::new()).await?;
/// // The second command decides on the state the first one left: no read of the stream.
/// repository.send(Deposit { account: 7, cents: 250 }, Metadata::new()).await?;
/// assert_eq!(cache.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AggregateCache {
    entries: Arc<quick_cache::sync::Cache<Key, Slot>>,
}

/// An aggregate's entry: the state, absent while a command holds it.
type Slot = Arc<Mutex<Option<Box<dyn Any + Send>>>>;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    aggregate: TypeId,
    tenant: Tenant,
    stream: StreamId,
}

impl AggregateCache {
    /// A cache holding at most `capacity` aggregates (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Arc::new(quick_cache::sync::Cache::new(capacity.max(1))),
        }
    }

    /// How many aggregates it holds now (an aggregate whose command is running is counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no aggregate.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most aggregates it holds.
    pub fn capacity(&self) -> u64 {
        self.entries.capacity()
    }

    /// Forgets every aggregate: the next command on each reads it from the store.
    pub fn clear(&self) {
        self.entries.clear();
    }

    /// Takes `A`'s state of `stream` out, if held: the command that took it owns it until it
    /// gives it back with [`put`](Self::put). Another command on the same aggregate meanwhile
    /// finds nothing and reads the store.
    pub(crate) fn take<A: Aggregate>(
        &self,
        tenant: &Tenant,
        stream: &StreamId,
    ) -> Option<Loaded<A>> {
        if !A::CACHE {
            return None;
        }
        let slot = self.entries.get(&Key::of::<A>(tenant, stream))?;
        let state = slot.lock().ok()?.take()?;
        state.downcast::<Loaded<A>>().ok().map(|loaded| *loaded)
    }

    /// Holds `loaded` as `A`'s state of `stream`, unless the entry holds a newer version
    /// (two commands of this process on one aggregate may finish in either order).
    pub(crate) fn put<A: Aggregate>(&self, tenant: &Tenant, stream: &StreamId, loaded: Loaded<A>) {
        if !A::CACHE {
            return;
        }
        let key = Key::of::<A>(tenant, stream);
        if let Some(slot) = self.entries.get(&key)
            && let Ok(mut held) = slot.lock()
        {
            let newer = held
                .as_ref()
                .and_then(|state| state.downcast_ref::<Loaded<A>>())
                .is_some_and(|held| held.version > loaded.version);
            if !newer {
                *held = Some(Box::new(loaded));
            }
            return;
        }
        let slot: Slot = Arc::new(Mutex::new(Some(Box::new(loaded))));
        self.entries.insert(key, slot);
    }

    /// Drops `A`'s state of `stream`.
    pub(crate) fn forget<A: Aggregate>(&self, tenant: &Tenant, stream: &StreamId) {
        if A::CACHE {
            self.entries.remove(&Key::of::<A>(tenant, stream));
        }
    }
}

impl Key {
    fn of<A: Aggregate>(tenant: &Tenant, stream: &StreamId) -> Self {
        Self {
            aggregate: TypeId::of::<A>(),
            tenant: tenant.clone(),
            stream: stream.clone(),
        }
    }
}

impl fmt::Debug for AggregateCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregateCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}
