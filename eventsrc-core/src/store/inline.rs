//! The contract of inline projections: read models a store updates inside each append's own
//! transaction.

use std::future::Future;
use std::sync::Arc;

use crate::{EventStore, RunError};

/// A store that applies a projection of type `P` inside the transaction of each append, so
/// that its read model commits with the events or not at all: an inline projection.
///
/// `P` is the backend's own kind of SQL projection (`eventsrc_sqlite::SqliteProjection`,
/// `eventsrc_postgres::PgProjection`), since it writes with the backend's transaction. What
/// [`with_inline`](Self::with_inline) promises is the same on every backend that implements
/// this trait, and `eventsrc-testing`'s `conformance::inline` checks it:
///
/// - **Set up first.** The projection's `setup` runs before `with_inline` returns.
/// - **Applied in the append's transaction.** Every append through the returned handle (and
///   its clones) that stores events applies the projection to them, in log order, before it
///   commits: a query issued after the append returns sees them. No checkpoint, no runner
///   and no waiting are involved.
/// - **A refusal fails the append.** When the projection fails on an event (its `apply`
///   returns an error, or the event cannot be decoded for it), the append fails with
///   [`StoreError::Refused`](crate::StoreError::Refused) naming the projection, the stream and
///   the event, and nothing of it is stored: neither its events nor the read model's rows.
///   A store failing meanwhile is [`StoreError::Backend`](crate::StoreError::Backend) as usual.
/// - **A retry applies nothing again.** An idempotent retry of a stored batch
///   ([`AppendResult::already_stored`](crate::store::AppendResult::already_stored)) stores
///   nothing and applies nothing.
/// - **Only from now on.** Events stored before the registration are not applied: to build
///   the read model over them, run the same projection as a checkpointed read model with
///   [`Runner::catch_up`](crate::Runner::catch_up) first, into the same tables, then register
///   it inline before the next append. An event appended between the two is missed: stop
///   the writers meanwhile, or use a backend's catch-up registration where it has one.
/// - **Only through the returned handle.** Appends through handles that do not carry the
///   registration are not promised to apply it: give the returned handle to every writer.
///
/// Left to each backend, and documented there: whether other handles apply it too, whether
/// a handle for another tenant made from the returned one
/// ([`with_tenant`](crate::Tenants::with_tenant)) applies it to that tenant's appends, and
/// what registering a second projection of the same name does.
///
/// What a backend may add beyond this is documented on its implementation and named apart,
/// never behind the same method: SQLite, whose appends all go through one writer thread,
/// applies a registration to every handle of the tenant, and offers
/// `SqliteEventStore::catch_up_inline`, which catches up from a checkpoint and keeps that
/// checkpoint in every append's transaction. PostgreSQL offers no such thing: a checkpoint
/// row updated by every append would be locked until each commit, so concurrent writers
/// would wait for one another.
///
/// ```
/// use eventsrc::{EventStore, ExpectedVersion, InlineProjections, NewEvent, RunError, StoreError, StreamId};
///
/// /// Registers `sold` on any store that keeps inline projections of its kind, then appends:
/// /// the read model has the event as soon as the append returns.
/// async fn sell<S, P>(store: &S, sold: P, sale: NewEvent) -> Result<S, Box<dyn std::error::Error>>
/// where
///     S: InlineProjections<P>,
/// {
///     let selling = store.with_inline(sold).await?;
///     match selling.append(&StreamId::new("cart", 1)?, ExpectedVersion::Any, vec![sale]).await {
///         Ok(_) => Ok(selling),
///         // Not retryable: the projection refuses this event every time.
///         Err(refused @ StoreError::Refused { .. }) => Err(refused.into()),
///         Err(other) => Err(other.into()),
///     }
/// }
/// ```
pub trait InlineProjections<P>: EventStore + Sized {
    /// A handle on the same storage and tenant whose appends apply `projection` inside their
    /// own transaction, as the [trait](InlineProjections) describes; `projection`'s `setup`
    /// has run when it returns. Fails with the [`RunError`] of the setup, naming the
    /// projection, or of a registration the backend refuses (documented on the backend).
    fn with_inline(&self, projection: P) -> impl Future<Output = Result<Self, RunError>> + Send;
}

/// A shared store's registration: the same, on a new `Arc` (`&S` has no such impl, as it
/// has no [`Tenants`](crate::Tenants) one).
impl<P: Send, S: InlineProjections<P>> InlineProjections<P> for Arc<S> {
    async fn with_inline(&self, projection: P) -> Result<Self, RunError> {
        (**self).with_inline(projection).await.map(Arc::new)
    }
}
