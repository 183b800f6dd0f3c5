//! Inline projections: read models updated inside the append's own transaction
//! ([`PgEventStore::with_inline`]), the contract of
//! [`InlineProjections`](eventsrc_core::InlineProjections).
//!
//! A handle with inline projections appends in an explicit transaction: the usual append
//! statement, a read of the rows it inserted (their positions), each projection's `apply`,
//! then `COMMIT`. A handle without any keeps the one-statement autocommit append: nothing on
//! that path changes. An append across streams is a transaction anyway: its events, all
//! parts' together, are read back and applied before its `COMMIT`.
//!
//! No catch-up and no checkpoint, unlike SQLite's `catch_up_inline`. A checkpoint row updated
//! by every append would be locked from the update to the commit, so concurrent writers would
//! wait for one another's commits: the serial writer this backend exists to avoid. Keeping
//! one without that (an insert-only table of applied positions, compacted later) would still
//! not make it true: the registration lives in a process, not in the database, so appends
//! from a node or a tool without the projection land between the positions it applied, and
//! a checkpoint built from those would claim events it never saw. Catching up at
//! registration has the same hole, and would need every append of every node to wait on a
//! lock while it runs. So the read model is built over the past by a
//! [`PgReadModel`](crate::PgReadModel) run, and kept by the appends of the handles that
//! carry it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::Transaction;
use eventsrc_core::RunError;
use eventsrc_core::StoreError;
use eventsrc_core::backend::inline_refusal;
use eventsrc_core::store::{AppendResult, StreamAppend};
use eventsrc_core::{EventId, ExpectedVersion, NewEvent, RecordedEvent, StreamId};

use crate::projection::{PgProjection, apply_all};
use crate::writer::{self, Attempt};
use crate::{PgEventStore, backend, rows};

/// A boxed future of [`Apply::apply`].
type Applying<'a> = Pin<Box<dyn Future<Output = Result<(), RunError>> + Send + 'a>>;

/// One inline projection, its type erased so that a handle can carry several.
pub(crate) trait Apply: Send + Sync {
    /// Its name, for errors and `Debug`.
    fn name(&self) -> &str;

    /// Applies the records of one append inside its transaction.
    fn apply<'a>(&'a self, tx: &'a Transaction<'a>, records: &'a [RecordedEvent]) -> Applying<'a>;
}

/// A projection applied inline: each append applies a clone of it (the value is
/// configuration; the state is in its tables), so appends through one handle run in parallel.
pub(crate) struct Inline<P> {
    pub projection: P,
    pub name: String,
}

impl<P: PgProjection + Clone + Sync> Apply for Inline<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(&'a self, tx: &'a Transaction<'a>, records: &'a [RecordedEvent]) -> Applying<'a> {
        Box::pin(async move {
            let mut projection = self.projection.clone();
            apply_all(&mut projection, &self.name, tx, records).await
        })
    }
}

/// Appends `events` and applies them to `store`'s inline projections, in one transaction.
/// An idempotent retry (every event already stored) applies nothing again.
pub(crate) async fn append(
    store: &PgEventStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendResult, StoreError> {
    let sql = &store.shared.sql;
    let append = writer::Append {
        tenant: &store.tenant,
        stream,
        expected,
        events,
    };
    let mut client = store.client().await?;
    let prepared = writer::Prepared::new(&client, &sql.writer, events).await?;
    let mut at = None;
    for _ in 0..writer::MAX_RACES {
        let tx = client.transaction().await.map_err(backend)?;
        match prepared.attempt(&tx, &sql.writer, &append, at).await? {
            Attempt::Done(result) if result.already_stored => {
                tx.rollback().await.map_err(backend)?;
                return Ok(result);
            }
            Attempt::Done(result) => {
                let records = inserted(store, &tx, stream, &result, events.len()).await?;
                apply(store, &tx, stream, &records).await?;
                tx.commit().await.map_err(backend)?;
                return Ok(result);
            }
            Attempt::Raced => tx.rollback().await.map_err(backend)?,
            Attempt::Restart(parts) => {
                // A soft-deleted stream started again: run again at its marker's version.
                tx.rollback().await.map_err(backend)?;
                at = parts.first().map(|&(_, version)| version);
            }
            Attempt::Collided => {
                // The failed statement aborted the transaction: look outside it.
                tx.rollback().await.map_err(backend)?;
                if let Some(done) = writer::stored(&client, &sql.writer, &append).await? {
                    return Ok(done);
                }
            }
        }
    }
    Err(writer::gave_up(&append))
}

/// Applies `records`, all of `stream` (an append's events, or a deletion's marker), to
/// `store`'s inline projections inside `tx`; a refusal is [`inline_refusal`] of `stream`.
pub(crate) async fn apply(
    store: &PgEventStore,
    tx: &Transaction<'_>,
    stream: &StreamId,
    records: &[RecordedEvent],
) -> Result<(), StoreError> {
    for projection in store.inline.iter() {
        projection
            .apply(tx, records)
            .await
            .map_err(|error| inline_refusal(stream, error))?;
    }
    Ok(())
}

/// Applies the events an append across streams (`appends`) just inserted to `store`'s inline
/// projections, inside its transaction: each projection gets them all at once, in log order
/// (the parts' order), as it gets a single append's. A refusal names the stream of the event
/// refused.
pub(crate) async fn apply_parts(
    store: &PgEventStore,
    tx: &Transaction<'_>,
    appends: &[StreamAppend],
) -> Result<(), StoreError> {
    let ids: Vec<EventId> = appends
        .iter()
        .flat_map(|part| &part.events)
        .map(|event| event.event_id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let records = store.events_by_id(tx, &ids).await?;
    for projection in store.inline.iter() {
        if let Err(error) = projection.apply(tx, &records).await {
            let stream = match &error {
                RunError::Handle { stream, .. } => Some(stream.clone()),
                RunError::Decode { source, .. } => Some(source.stream.clone()),
                _ => appends.first().map(|part| part.stream.clone()),
            };
            return Err(match stream {
                Some(stream) => inline_refusal(&stream, error),
                None => StoreError::backend(error),
            });
        }
    }
    Ok(())
}

/// The records the append just inserted, read back inside its transaction for their
/// positions (concurrent appends draw positions from one sequence, so a batch's need not be
/// consecutive).
async fn inserted(
    store: &PgEventStore,
    tx: &Transaction<'_>,
    stream: &StreamId,
    result: &AppendResult,
    count: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let statement = tx
        .prepare_cached(&store.shared.sql.read.forward)
        .await
        .map_err(backend)?;
    let from = result.first_version.get() as i64;
    let limit = Some(count as i64);
    let found = tx
        .query(
            &statement,
            &[&store.tenant.as_str(), &stream.as_str(), &from, &limit],
        )
        .await
        .map_err(backend)?;
    rows::records(&found, 0, &store.tenant, Some(stream))
}

impl PgEventStore {
    /// A handle whose appends also apply `projection`, in the same transaction: the read
    /// model is never behind the log, and a failing `apply` fails the append with
    /// [`StoreError::Refused`] (naming the projection and the event; not retryable), storing
    /// nothing. Runs [`PgProjection::setup`] first.
    ///
    /// Opt-in per handle: appends through this handle (and its clones and
    /// [`with_tenant`](eventsrc_core::Tenants::with_tenant) handles) run `BEGIN`, the append statement,
    /// a read of the inserted rows, each inline projection's `apply`, then `COMMIT`; other
    /// handles keep the one-statement autocommit append. Only appends through handles that
    /// carry the projection update it, so give it to every writer's handle; to build it over
    /// events already stored, run it as a [`PgReadModel`](crate::PgReadModel) into its tables first. Each append
    /// applies a clone of `projection`, so appends through one handle run concurrently.
    /// Each call adds one: registering a projection twice on a handle applies it twice.
    /// Read-your-writes holds as soon as the append returns.
    ///
    /// This is [`InlineProjections::with_inline`](eventsrc_core::InlineProjections::with_inline),
    /// which this store implements: the same contract as SQLite's, checked on both by the
    /// same test. No checkpoint is written and nothing catches up (SQLite, with one writer
    /// thread, offers both under another name, `catch_up_inline`). Here a checkpoint row
    /// updated by every append would be locked until each commit, making concurrent writers
    /// wait for one another's commits; and the registration lives in this process, not in
    /// the database, so appends from a node without it would slip between the positions a
    /// checkpoint claimed.
    ///
    /// ```no_run
    /// # use eventsrc::{Event, RecordedEvent};
    /// # use eventsrc_postgres::deadpool_postgres::Transaction;
    /// # use eventsrc_postgres::{PgEventStore, PgProjection};
    /// # #[derive(Event, serde::Serialize, serde::Deserialize, Debug)]
    /// # struct ItemAdded { sku: String }
    /// # #[derive(Clone)] struct ItemsSold;
    /// # impl PgProjection for ItemsSold {
    /// #     const NAME: &'static str = "items_sold";
    /// #     type Event = ItemAdded;
    /// #     type Error = eventsrc_postgres::tokio_postgres::Error;
    /// #     async fn apply(&mut self, _: &Transaction<'_>, _: ItemAdded, _: &RecordedEvent) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PgEventStore::connect("postgres://app@db.internal/app").await?;
    /// let store = store.with_inline(ItemsSold).await?;
    /// // Every append through `store` now updates the items_sold tables as it commits.
    /// # Ok(()) }
    /// ```
    pub async fn with_inline<P>(&self, projection: P) -> Result<Self, eventsrc_core::RunError>
    where
        P: PgProjection + Clone + Sync,
    {
        let mut projection = projection;
        crate::projection::setup(&mut projection, P::NAME, self).await?;
        let mut inline: Vec<Arc<dyn Apply>> = self.inline.iter().cloned().collect();
        inline.push(Arc::new(Inline {
            projection,
            name: P::NAME.to_owned(),
        }));
        Ok(Self {
            shared: Arc::clone(&self.shared),
            tenant: self.tenant.clone(),
            inline: inline.into(),
        })
    }
}

/// The contract every backend's inline projections keep: see [`PgEventStore::with_inline`].
impl<P> eventsrc_core::InlineProjections<P> for PgEventStore
where
    P: PgProjection + Clone + Sync,
{
    async fn with_inline(&self, projection: P) -> Result<Self, RunError> {
        PgEventStore::with_inline(self, projection).await
    }
}
