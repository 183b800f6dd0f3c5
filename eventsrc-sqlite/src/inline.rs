//! Inline projections: SQL read models updated inside the transaction of every append.
//!
//! A leaf the writer thread calls: the writer owns the requests (registering one is a
//! `writer::Request::AddInline`) and hands this module the projections to keep, the appends
//! to apply them to and the turns to catch up in; nothing here knows of the writer.
//!
//! They live on the writer thread, in one of two kinds. One registered by
//! [`with_inline`](crate::SqliteEventStore::with_inline) (not checkpointed) is live as
//! soon as its tables are set up: the appends after it apply it, and it keeps no checkpoint,
//! which is the contract of `eventsrc_core::InlineProjections`. One registered by
//! [`catch_up_inline`](crate::SqliteEventStore::catch_up_inline) first catches up from its
//! checkpoint, one page per turn of the writer loop, so appends keep flowing meanwhile (they
//! skip it; the catch-up reads their events from the log later). The page that reaches the
//! head makes it live: no append can land between that page and the switch, both being on
//! the writer thread. From then on each append of its tenant applies it inside the append's
//! own transaction or savepoint and moves its checkpoint there. Either kind failing fails
//! that append alone.

use std::sync::Arc;

use eventsrc_core::runner::Progress;

use eventsrc_core::RunError;

use eventsrc_core::backend::{decode, inline_refusal};
use eventsrc_core::store::EventFilter;
use eventsrc_core::store::ReadAll;
use eventsrc_core::{
    GlobalPosition, NewEvent, RecordedEvent, StoreError, StreamId, StreamVersion, Tenant, Timestamp,
};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::projection::{self, ReadModelError, SqliteProjection};
use crate::{backend, checkpoint, lifecycle, rows};

/// Events per catch-up transaction: the longest an append waits behind a registration.
const PAGE: usize = 1000;

/// A projection as the writer thread drives it, its event type erased.
pub(crate) trait Inline: Send {
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
pub(crate) struct Slot {
    tenant: Tenant,
    name: String,
    filter: EventFilter,
    projection: Box<dyn Inline>,
    /// `Some` until it has caught up; answered then.
    catching_up: Option<CatchUp>,
    /// Whether it catches up from its checkpoint and each append moves that checkpoint in its
    /// own transaction; if not, it is live once set up and keeps no checkpoint.
    checkpointed: bool,
}

struct CatchUp {
    progress: Progress,
    reply: Reply,
}

/// Where a registration is answered: with how far the catch-up got, once it is live.
pub(crate) type Reply = oneshot::Sender<Result<Progress, RunError>>;

impl Slot {
    /// A projection of `tenant`'s events under `name`, reading the events `filter` admits; a
    /// `checkpointed` one catches up first, then `reply` is answered.
    pub(crate) fn new(
        tenant: Tenant,
        name: String,
        filter: EventFilter,
        projection: Box<dyn Inline>,
        checkpointed: bool,
        reply: Reply,
    ) -> Self {
        Self {
            tenant,
            name,
            filter,
            projection,
            checkpointed,
            catching_up: Some(CatchUp {
                progress: Progress::default(),
                reply,
            }),
        }
    }

    fn fail(self, error: RunError) {
        if let Some(catch_up) = self.catching_up {
            let _ = catch_up.reply.send(Err(error));
        }
    }
}

/// The inline projections of every tenant, owned by the writer thread.
#[derive(Default)]
pub(crate) struct InlineProjections {
    slots: Vec<Slot>,
}

impl InlineProjections {
    /// Registers `slot`, setting up its tables; a checkpointed one starts catching up on the
    /// next turns, any other is live at once (and answered).
    pub(crate) fn add(&mut self, conn: &mut Connection, mut slot: Slot) {
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
            Ok(()) if !slot.checkpointed => {
                if let Some(catch_up) = slot.catching_up.take() {
                    let live = Progress {
                        caught_up: true,
                        ..catch_up.progress
                    };
                    let _ = catch_up.reply.send(Ok(live));
                }
                tracing::info!(projection = %slot.name, tenant = %slot.tenant, "inline projection set up; live from the next append");
                self.slots.push(slot);
            }
            Ok(()) => self.slots.push(slot),
            Err(error) => {
                let error = RunError::store(&slot.name, error);
                slot.fail(error);
            }
        }
    }

    /// Whether a projection is still catching up (the writer then keeps turning while idle).
    pub(crate) fn catching_up(&self) -> bool {
        self.slots.iter().any(|s| s.catching_up.is_some())
    }

    /// One page of catch-up for the first projection that needs it; answers its registration
    /// once it is live, or drops it with the error if it fails.
    pub(crate) fn step(&mut self, conn: &mut Connection) {
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
    pub(crate) fn follows(&self, tenant: &Tenant) -> bool {
        self.slots
            .iter()
            .any(|s| s.catching_up.is_none() && s.tenant == *tenant)
    }

    /// Applies the live projections of the records' tenant to one append's records, every
    /// part's in order (in the append's transaction), and moves the checkpoints of the
    /// checkpointed ones to its last event. A refusal names the stream of the event refused.
    pub(crate) fn apply_append(
        &mut self,
        tx: &Transaction<'_>,
        tenant: &Tenant,
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
            checkpointed,
            ..
        } in live
        {
            let wanted = |r: &&RecordedEvent| filter.matches(r.stream.category(), &r.event_type);
            for record in records.iter().filter(wanted) {
                projection
                    .apply(name, tx, record)
                    .map_err(|error| inline_refusal(&record.stream, error))?;
            }
            if *checkpointed {
                checkpoint::save(tx, tenant, name, last.global_position).map_err(backend)?;
            }
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
    let head = rows::head(&tx, &slot.tenant).map_err(|e| RunError::store(&name, e))?;
    let read = ReadAll {
        after,
        limit: PAGE,
        filter: slot.filter.clone(),
        allow_truncated: false,
    };
    // A projection behind a truncation would skip the archived events without a word: it
    // stops with the typed error instead, as a runner does.
    lifecycle::check_behind(&tx, &slot.tenant, &read).map_err(|e| RunError::store(&name, e))?;
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

/// The records one part of an append stores, as inline projections see them: from
/// `first_version` in its stream and position `first` in the log, the sequence rising and the
/// commit shared.
pub(crate) fn records<'a>(
    tenant: &'a Tenant,
    stream: &'a StreamId,
    events: &'a [NewEvent],
    first_version: i64,
    first: GlobalPosition,
    recorded_at: Timestamp,
) -> impl Iterator<Item = RecordedEvent> + 'a {
    events
        .iter()
        .enumerate()
        .map(move |(offset, event)| RecordedEvent {
            event_id: event.event_id,
            stream: stream.clone(),
            stream_version: StreamVersion((first_version + offset as i64) as u64),
            global_position: GlobalPosition::new(first.commit, first.sequence + offset as u64),
            tenant: tenant.clone(),
            event_type: Arc::from(event.event_type.as_ref()),
            schema_version: event.schema_version,
            payload: Arc::from(event.payload.as_str()),
            metadata: event.metadata.clone(),
            recorded_at,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_number_a_part_from_its_first_version_and_position_in_its_commit() {
        let stream = StreamId::new("cart", 1).unwrap();
        let events = [
            NewEvent::raw("A", 1, "{}"),
            NewEvent::raw("B", 2, "{\"x\":1}"),
        ];
        let tenant = Tenant::default();
        let records: Vec<_> = records(
            &tenant,
            &stream,
            &events,
            4,
            GlobalPosition::new(8, 10),
            Timestamp::from_micros(7),
        )
        .collect();
        assert_eq!(records[1].stream_version, StreamVersion(5));
        assert_eq!(records[1].global_position, GlobalPosition::new(8, 11));
        assert_eq!(&*records[1].payload, "{\"x\":1}");
        assert_eq!(records[0].event_id, events[0].event_id);
    }
}
