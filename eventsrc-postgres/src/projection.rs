//! Read models kept in PostgreSQL tables: [`PgProjection`], the SQL counterpart of
//! [`eventsrc::Projection`](eventsrc_core::Projection). A [`PgReadModel`](crate::PgReadModel) runs one from the
//! log with its checkpoint in the same transaction; [`PgEventStore::with_inline`] applies one
//! inside every append.
//!
//! [`PgEventStore::with_inline`]: crate::PgEventStore::with_inline

use std::future::Future;

use deadpool_postgres::Transaction;
use eventsrc_core::RunError;
use eventsrc_core::backend::decode;
use eventsrc_core::runner::BatchError;
use eventsrc_core::runner::UnknownEvents;
use eventsrc_core::{Event, RecordedEvent};

/// Folds events into tables of the store's database, inside the transaction that also moves
/// its checkpoint: each batch's rows and checkpoint commit together or not at all, so every
/// event is applied exactly once, even when a crash or two nodes overlapping would otherwise
/// replay it. `apply` may therefore add to counters; it need not be idempotent.
///
/// The transaction is `deadpool_postgres`'s: it dereferences to
/// [`tokio_postgres::Transaction`], and adds
/// [`prepare_cached`](deadpool_postgres::Transaction::prepare_cached), which prepares a
/// statement once per pooled connection instead of once per event.
///
/// Unqualified table names (`items_sold`) are tables in the store's schema: the store puts its
/// schema first in the `search_path` of its connections (see
/// [`PgEventStore::client`](crate::PgEventStore::client)), so the same projection on stores of
/// two schemas keeps two sets of tables. Qualify a name (`public.items_sold`) to put it
/// elsewhere.
///
/// The value itself holds configuration (table names), not state: the state is in the tables.
/// To rebuild, point a new value at new tables and run it under a new name
/// ([`PgReadModel::named`](crate::PgReadModel::named)); when it has caught up, switch it in
/// for the live one with
/// [`SwitchReadModel::switch_read_model`](eventsrc_core::SwitchReadModel::switch_read_model).
///
/// ```no_run
/// use eventsrc::{Event, RecordedEvent};
/// use eventsrc_postgres::deadpool_postgres::Transaction;
/// use eventsrc_postgres::PgProjection;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct ItemAdded { sku: String, quantity: u32 }
///
/// #[derive(Event, Debug)]
/// enum Sold { ItemAdded(ItemAdded) }
///
/// /// Items sold per SKU, in a table.
/// #[derive(Clone)]
/// struct ItemsSold { table: String }
///
/// impl PgProjection for ItemsSold {
///     const NAME: &'static str = "items_sold";
///     type Event = Sold;
///     type Error = eventsrc_postgres::tokio_postgres::Error;
///
///     async fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
///         let sql = format!(
///             "CREATE TABLE IF NOT EXISTS {} (sku text PRIMARY KEY, quantity bigint NOT NULL)",
///             self.table
///         );
///         tx.batch_execute(&sql).await
///     }
///
///     async fn apply(
///         &mut self,
///         tx: &Transaction<'_>,
///         event: Sold,
///         _: &RecordedEvent,
///     ) -> Result<(), Self::Error> {
///         let Sold::ItemAdded(added) = event;
///         let sql = format!(
///             "INSERT INTO {} AS t (sku, quantity) VALUES ($1, $2) \
///              ON CONFLICT (sku) DO UPDATE SET quantity = t.quantity + excluded.quantity",
///             self.table
///         );
///         let statement = tx.prepare_cached(&sql).await?;
///         tx.execute(&statement, &[&added.sku, &i64::from(added.quantity)]).await?;
///         Ok(())
///     }
/// }
/// ```
pub trait PgProjection: Send + 'static {
    /// The name its checkpoint (and its lease, under
    /// [`Runner::run_as_leader`](eventsrc_core::Runner::run_as_leader)) is kept under,
    /// unless [`PgReadModel::named`](crate::PgReadModel::named) says otherwise.
    const NAME: &'static str;
    /// What to do with events `Event` does not know.
    const UNKNOWN_EVENTS: UnknownEvents = UnknownEvents::Skip;
    /// The events it reads.
    type Event: Event;
    /// What setting up or applying can fail with (usually [`tokio_postgres::Error`]).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Creates its tables if they do not exist (`CREATE TABLE IF NOT EXISTS ...`), before the
    /// first batch. Several nodes may set up at once: each does so in turn, under a lock.
    /// The default does nothing (tables made by your own migrations).
    fn setup(
        &mut self,
        tx: &Transaction<'_>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = tx;
        async { Ok(()) }
    }

    /// Applies one event inside `tx`; `record` carries its stream, positions, metadata and
    /// time. An error rolls the whole batch back, checkpoint included.
    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: Self::Event,
        record: &RecordedEvent,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Applies a batch inside `tx`, in log order: the events this projection reads, decoded,
    /// each with its record. The default calls [`apply`](Self::apply) for each, one round trip
    /// per event. Override it to write a batch in a few statements (one
    /// `INSERT ... SELECT ... FROM unnest($1::text[], ...)` per table): one round trip per
    /// batch, which is what makes a rebuild fast. An error rolls the batch back, checkpoint
    /// included; [`BatchError::at`] says which event it was, if known.
    fn apply_batch(
        &mut self,
        tx: &Transaction<'_>,
        events: Vec<(Self::Event, &RecordedEvent)>,
    ) -> impl Future<Output = Result<(), BatchError<Self::Error>>> + Send {
        async move {
            for (at, (event, record)) in events.into_iter().enumerate() {
                self.apply(tx, event, record)
                    .await
                    .map_err(|error| BatchError::at(at, error))?;
            }
            Ok(())
        }
    }
}

/// Applies `records` to `projection` inside `tx`: each decoded for it (skipping the types it
/// does not know, if it says so), in order, stopping at the first error, which names
/// `consumer` and the event.
pub(crate) async fn apply_all<P: PgProjection>(
    projection: &mut P,
    consumer: &str,
    tx: &Transaction<'_>,
    records: &[RecordedEvent],
) -> Result<(), RunError> {
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        if let Some(event) = decode::<P::Event>(consumer, record, P::UNKNOWN_EVENTS)? {
            events.push((event, record));
        }
    }
    let Some(&(_, first)) = events.first() else {
        return Ok(());
    };
    let applied: Vec<&RecordedEvent> = events.iter().map(|(_, record)| *record).collect();
    projection.apply_batch(tx, events).await.map_err(|failed| {
        let record = failed
            .at
            .and_then(|i| applied.get(i).copied())
            .unwrap_or(first);
        RunError::handle(consumer, record, failed.error)
    })
}

/// Sets `projection` up in a transaction of its own, taking a lock named after `consumer`
/// first so that nodes starting at once do not race on creating the same tables.
pub(crate) async fn setup<P: PgProjection>(
    projection: &mut P,
    consumer: &str,
    store: &crate::PgEventStore,
) -> Result<(), RunError> {
    let failed = |error: tokio_postgres::Error| RunError::store(consumer, crate::backend(error));
    let mut client = store
        .client()
        .await
        .map_err(|e| RunError::store(consumer, e))?;
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&format!(
            "eventsrc read model setup {} {consumer}",
            store.schema()
        )],
    )
    .await
    .map_err(failed)?;
    projection.setup(&tx).await.map_err(|error| {
        RunError::store(
            consumer,
            eventsrc_core::StoreError::backend(SetupError(Box::new(error))),
        )
    })?;
    tx.commit().await.map_err(failed)
}

/// A projection's own setup failed.
#[derive(Debug, thiserror::Error)]
#[error("setting up the read model's tables failed: {0}")]
struct SetupError(#[source] Box<dyn std::error::Error + Send + Sync>);
