//! Inline projections: SQL read models updated inside the transaction of every append.
//!
//! They live on the writer thread. A new one first catches up from its checkpoint, one page
//! per turn of the writer loop, so appends keep flowing meanwhile (they skip it; the catch-up
//! reads their events from the log later). The page that reaches the head makes it live: no
//! append can land between that page and the switch, both being on the writer thread. From
//! then on each append of its tenant applies it inside the append's own transaction or
//! savepoint and moves its checkpoint there; a failing projection fails that append alone.

use std::sync::Arc;

use eventsrc_core::runner::Progress;

use eventsrc_core::RunError;

use eventsrc_core::backend::{decode, inline_refusal, stored_types};
use eventsrc_core::store::EventFilter;
use eventsrc_core::store::ReadAll;
use eventsrc_core::{
    GlobalPosition, NewEvent, RecordedEvent, StoreError, StreamId, StreamVersion, Tenant, Timestamp,
};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::projection::{self, ReadModelError, SqliteProjection};
use crate::{SqliteEventStore, backend, checkpoint, closed, rows, writer};

/// Events per catch-up transaction: the longest an append waits behind a registration.
const PAGE: usize = 1000;

/// A projection as the writer thread drives it, its event type erased.
trait Inline: Send {
    fn setup(&mut self, name: &str, tx: &Transaction<'_>) -> Result<(), ReadModelError>;

    /// Decodes and applies one event (skipped if the projection skips its type).
    fn apply(
        &mut self,
        name: &str,
        tx: &Transaction<'_>,
        record: &RecordedEvent,
    ) -> Result<(), RunError>;
}

impl<P: SqliteProjection> Inline for P {
    fn setup(&mut self, name: &str, tx: &Transaction<'_>) -> Result<(), ReadModelError> {
        projection::run_setup(self, name, tx)
    }

    fn apply(
        &mut self,
        name: &str,
        tx: &Transaction<'_>,
        record: &RecordedEvent,
    ) -> Result<(), RunError> {
        match decode::<P::Event>(name, record, P::UNKNOWN_EVENTS)? {
            Some(event) => projection::apply(self, name, tx, event, record),
            None => Ok(()),
        }
    }
}

/// One registered projection.
pub struct Slot {
    tenant: Tenant,
    name: String,
    filter: EventFilter,
    projection: Box<dyn Inline>,
    /// `Some` until it has caught up; answered then.
    catching_up: Option<CatchUp>,
}

struct CatchUp {
    progress: Progress,
    reply: oneshot::Sender<Result<Progress, RunError>>,
}

impl Slot {
    fn fail(self, error: RunError) {
        if let Some(catch_up) = self.catching_up {
            let _ = catch_up.reply.send(Err(error));
        }
    }
}

/// The inline projections of every tenant, owned by the writer thread.
#[derive(Default)]
pub struct InlineProjections {
    slots: Vec<Slot>,
}

impl InlineProjections {
    /// Registers `slot`, setting up its tables; it starts catching up on the next turns.
    pub fn add(&mut self, conn: &mut Connection, mut slot: Slot) {
        if self
            .slots
            .iter()
            .any(|s| s.tenant == slot.tenant && s.name == slot.name)
        {
            let error = ReadModelError::AlreadyInline {
                name: slot.name.clone(),
                tenant: slot.tenant.clone(),
            };
            let error = RunError::store(&slot.name, StoreError::backend(error));
            return slot.fail(error);
        }
        let set_up = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            slot.projection
                .setup(&slot.name, &tx)
                .map_err(StoreError::backend)?;
            tx.commit().map_err(backend)
        })();
        match set_up {
            Ok(()) => self.slots.push(slot),
            Err(error) => {
                let error = RunError::store(&slot.name, error);
                slot.fail(error);
            }
        }
    }

    /// Whether a projection is still catching up (the writer then keeps turning while idle).
    pub fn catching_up(&self) -> bool {
        self.slots.iter().any(|s| s.catching_up.is_some())
    }

    /// One page of catch-up for the first projection that needs it; answers its registration
    /// once it is live, or drops it with the error if it fails.
    pub fn step(&mut self, conn: &mut Connection) {
        let Some(index) = self.slots.iter().position(|s| s.catching_up.is_some()) else {
            return;
        };
        let slot = &mut self.slots[index];
        match catch_up_page(conn, slot) {
            Ok(false) => {}
            Ok(true) => {
                if let Some(catch_up) = slot.catching_up.take() {
                    tracing::info!(projection = %slot.name, tenant = %slot.tenant, handled = catch_up.progress.handled, "inline projection caught up; now live");
                    let _ = catch_up.reply.send(Ok(catch_up.progress));
                }
            }
            Err(error) => {
                tracing::error!(projection = %slot.name, %error, "inline projection failed to catch up; removed");
                self.slots.remove(index).fail(error);
            }
        }
    }

    /// Whether any live projection follows `tenant`'s appends.
    pub fn follows(&self, tenant: &Tenant) -> bool {
        self.slots
            .iter()
            .any(|s| s.catching_up.is_none() && s.tenant == *tenant)
    }

    /// Applies the live projections of the records' tenant to one append's records (in the
    /// append's transaction) and moves their checkpoints to its last event.
    pub fn apply_append(
        &mut self,
        tx: &Transaction<'_>,
        tenant: &Tenant,
        stream: &StreamId,
        records: &[RecordedEvent],
    ) -> Result<(), StoreError> {
        let Some(last) = records.last() else {
            return Ok(());
        };
        let live = self
            .slots
            .iter_mut()
            .filter(|s| s.catching_up.is_none() && s.tenant == *tenant);
        for Slot {
            name,
            filter,
            projection,
            ..
        } in live
        {
            let wanted = |r: &&RecordedEvent| filter.matches(r.stream.category(), &r.event_type);
            for record in records.iter().filter(wanted) {
                projection
                    .apply(name, tx, record)
                    .map_err(|error| inline_refusal(stream, error))?;
            }
            checkpoint::save(tx, tenant, name, last.global_position).map_err(backend)?;
        }
        Ok(())
    }
}

/// Applies the next page of the log to `slot` in one transaction; `true` once it reached the
/// head.
fn catch_up_page(conn: &mut Connection, slot: &mut Slot) -> Result<bool, RunError> {
    let name = slot.name.clone();
    let store_error = |e| RunError::store(&name, backend(e));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    let stored = checkpoint::load(&tx, &slot.tenant, &slot.name).map_err(store_error)?;
    let after = stored.map_or(GlobalPosition::START, |s| s.position);
    let head = checkpoint::head(&tx, &slot.tenant).map_err(store_error)?;
    let read = ReadAll {
        after,
        limit: PAGE,
        filter: slot.filter.clone(),
    };
    let query = rows::all_query(&slot.tenant, &read);
    let records = rows::query_records(&tx, &slot.tenant, None, query, PAGE)
        .map_err(|e| RunError::store(&name, e))?;
    for record in &records {
        slot.projection.apply(&slot.name, &tx, record)?;
    }
    let live = records.len() < PAGE;
    // With a filter, a short page means nothing else up to the head concerns it.
    let through = match records.last() {
        Some(last) if live => last.global_position.max(head),
        Some(last) => last.global_position,
        None => head.max(after),
    };
    if through > after {
        checkpoint::save(&tx, &slot.tenant, &slot.name, through).map_err(store_error)?;
    }
    tx.commit().map_err(store_error)?;
    if let Some(catch_up) = &mut slot.catching_up {
        catch_up.progress.handled += records.len() as u64;
        if through > after || stored.is_some() {
            catch_up.progress.position = Some(through);
        }
        catch_up.progress.caught_up = live;
    }
    Ok(live)
}

/// The records one append stores, as inline projections see them.
pub fn records(
    tenant: &Tenant,
    stream: &StreamId,
    events: &[NewEvent],
    first_version: i64,
    first_position: i64,
    recorded_at: Timestamp,
) -> Vec<RecordedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(offset, event)| RecordedEvent {
            event_id: event.event_id,
            stream: stream.clone(),
            stream_version: StreamVersion((first_version + offset as i64) as u64),
            global_position: GlobalPosition::new(
                first_position as u64,
                (first_position + offset as i64) as u64,
            ),
            tenant: tenant.clone(),
            event_type: Arc::from(event.event_type.as_ref()),
            schema_version: event.schema_version,
            payload: Arc::from(event.payload.as_str()),
            metadata: event.metadata.clone(),
            recorded_at,
        })
        .collect()
}

impl SqliteEventStore {
    /// Registers an inline projection for this handle's tenant under
    /// [`SqliteProjection::NAME`]: see [`add_inline_named`](Self::add_inline_named).
    pub async fn add_inline<P: SqliteProjection>(
        &self,
        projection: P,
    ) -> Result<Progress, RunError> {
        self.add_inline_named(P::NAME, projection).await
    }

    /// Registers an inline projection for this handle's tenant: its tables are updated inside
    /// the transaction of every append, so a query right after an append sees it (no
    /// read-your-writes wait), at the price of the append's latency.
    ///
    /// It sets up its tables and catches up from its checkpoint (`name`) to the head of the
    /// log on the writer thread, a page of events per transaction between appends; this
    /// returns once it has, with how far it got. From then on, every append of this tenant
    /// applies it in the append's own transaction and moves its checkpoint there: an append
    /// it fails on fails with [`StoreError::Refused`], naming it
    /// and the event, and stores nothing. Registrations last as long as the store (all its handles): register again
    /// after each open. A failing catch-up unregisters it and returns the error; dropping
    /// this future does not cancel the registration.
    ///
    /// ```
    /// # use eventsrc::{Event, RecordedEvent};
    /// # use eventsrc_sqlite::SqliteProjection;
    /// # use eventsrc_sqlite::rusqlite::{Transaction, params};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Event, Serialize, Deserialize, Debug)]
    /// # struct ItemAdded { sku: String }
    /// /// Items sold per SKU (a sales report), kept in step with every append.
    /// struct Sold;
    ///
    /// impl SqliteProjection for Sold {
    ///     const NAME: &'static str = "sold";
    ///     type Event = ItemAdded;
    ///     type Error = eventsrc_sqlite::rusqlite::Error;
    ///     fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
    ///         tx.execute_batch("CREATE TABLE IF NOT EXISTS sold (sku TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    ///     }
    ///     fn apply(&mut self, tx: &Transaction<'_>, added: ItemAdded, _: &RecordedEvent) -> Result<(), Self::Error> {
    ///         tx.prepare_cached("INSERT INTO sold VALUES (?1, 1) ON CONFLICT (sku) DO UPDATE SET n = n + 1")?
    ///             .execute(params![added.sku])
    ///             .map(drop)
    ///     }
    /// }
    ///
    /// use eventsrc::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
    /// use eventsrc_sqlite::SqliteEventStore;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store = SqliteEventStore::open_in_memory().await?;
    /// store.add_inline(Sold).await?;
    /// let cart = StreamId::new("cart", 1)?;
    /// let added = NewEvent::from_event(&ItemAdded { sku: "laptop".into() }, Metadata::new())?;
    /// store.append(&cart, ExpectedVersion::Any, vec![added]).await?;
    /// // Already there: same transaction as the append.
    /// let n: i64 = store.read_with(|db| db.query_row("SELECT n FROM sold WHERE sku = 'laptop'", [], |r| r.get(0))).await?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn add_inline_named<P: SqliteProjection>(
        &self,
        name: impl Into<String>,
        projection: P,
    ) -> Result<Progress, RunError> {
        let name = name.into();
        let filter = EventFilter {
            event_types: stored_types::<P::Event>(P::UNKNOWN_EVENTS)
                .unwrap_or_default()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            categories: Vec::new(),
        };
        let (reply, answer) = oneshot::channel();
        let slot = Slot {
            tenant: self.tenant.clone(),
            name: name.clone(),
            filter,
            projection: Box::new(projection),
            catching_up: Some(CatchUp {
                progress: Progress::default(),
                reply,
            }),
        };
        let gone = || RunError::store(&name, closed());
        self.shared
            .writer
            .send(writer::Request::AddInline(slot))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_number_an_append_from_its_first_version_and_position() {
        let stream = StreamId::new("cart", 1).unwrap();
        let events = [
            NewEvent::raw("A", 1, "{}"),
            NewEvent::raw("B", 2, "{\"x\":1}"),
        ];
        let records = records(
            &Tenant::default(),
            &stream,
            &events,
            4,
            10,
            Timestamp::from_micros(7),
        );
        assert_eq!(records[1].stream_version, StreamVersion(5));
        assert_eq!(records[1].global_position, GlobalPosition::new(10, 11));
        assert_eq!(&*records[1].payload, "{\"x\":1}");
        assert_eq!(records[0].event_id, events[0].event_id);
    }
}
