//! [`PgReadModel`]: a [`PgProjection`] as a [`Consumer`] of a
//! [`Runner`](eventsrc_core::Runner), its tables and checkpoint moved in one transaction.

use std::collections::HashSet;

use eventsrc_core::runner::Consumer;

use eventsrc_core::{RunError, StoreError, SwitchReadModel};

use eventsrc_core::backend::stored_types;
use eventsrc_core::{GlobalPosition, RecordedEvent};

use crate::projection::{PgProjection, apply_all, setup};
use crate::{PgEventStore, backend, checkpoint};

/// A [`PgProjection`] run from the log into its tables, each batch in one transaction that
/// locks the checkpoint row (`SELECT ... FOR UPDATE`), checks it against where the runner
/// left it, applies every event and moves the checkpoint. Exactly once: a batch whose
/// checkpoint moved meanwhile (another node's runner got there first) is refused with
/// [`RunError::Fenced`] and applies nothing, and two nodes handling the same batch at once
/// take the lock in turn, so the second sees the first's checkpoint and is fenced.
///
/// Run it with [`Runner::run_as_leader`](eventsrc_core::Runner::run_as_leader) on every
/// node, with the store as the [`Leases`](eventsrc_core::backend::Leases): one node runs it, the others
/// take over when it dies. Query the tables through [`PgEventStore::client`].
///
/// ```no_run
/// use std::time::Duration;
/// use eventsrc::{Runner, wait_for_checkpoint};
/// use eventsrc::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use eventsrc_postgres::{PgEventStore, PgProjection, PgReadModel};
/// # use eventsrc::{Event, RecordedEvent};
/// # use eventsrc_postgres::deadpool_postgres::Transaction;
/// # #[derive(Event, serde::Serialize, serde::Deserialize, Debug)]
/// # struct ItemAdded { sku: String }
/// # struct ItemsSold;
/// # impl PgProjection for ItemsSold {
/// #     const NAME: &'static str = "items_sold";
/// #     type Event = ItemAdded;
/// #     type Error = eventsrc_postgres::tokio_postgres::Error;
/// #     async fn apply(&mut self, _: &Transaction<'_>, _: ItemAdded, _: &RecordedEvent) -> Result<(), Self::Error> { Ok(()) }
/// # }
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgEventStore::connect("postgres://app@db.internal/app").await?;
/// let model = PgReadModel::new(ItemsSold, store.clone());
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let leases = store.clone();
/// let node = tokio::spawn(async move {
///     Runner::new(leases.clone(), model)
///         .run_as_leader(&leases, async { stopped.await.ok(); })
///         .await
/// });
///
/// // Read-your-writes on any node, wherever the runner is: wait for its checkpoint.
/// let cart = StreamId::new("cart", 1)?;
/// let added = NewEvent::raw("ItemAdded", 1, r#"{"sku":"laptop"}"#);
/// let appended = store.append(&cart, ExpectedVersion::Any, vec![added]).await?;
/// wait_for_checkpoint(&store, "items_sold", appended.position,
///     Duration::from_secs(5), Duration::from_millis(20)).await?;
/// // The tables now include the append.
/// stop.send(()).ok();
/// node.await??;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PgReadModel<P> {
    store: PgEventStore,
    projection: P,
    name: String,
    set_up: bool,
    /// The read model's generation when this runner first read its checkpoint; a switch
    /// bumps it.
    generation: Option<i64>,
}

impl<P: PgProjection> PgReadModel<P> {
    /// `projection`, with its tables and checkpoint in `store`'s database, under
    /// [`PgProjection::NAME`] and `store`'s tenant.
    pub fn new(projection: P, store: PgEventStore) -> Self {
        Self {
            store,
            projection,
            name: P::NAME.to_owned(),
            set_up: false,
            generation: None,
        }
    }

    /// Keeps the checkpoint (and takes the lease) under `name` instead of
    /// [`PgProjection::NAME`]: a rebuild into new tables runs from the start of the log under
    /// a new name, beside the current one, switched in later with
    /// [`SwitchReadModel::switch_read_model`].
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// The store its tables and checkpoint are in.
    pub fn store(&self) -> &PgEventStore {
        &self.store
    }

    /// Runs [`PgProjection::setup`] now, if it has not run yet (a runner does it before its
    /// first batch): call it to create the tables before anything queries them.
    pub async fn setup(&mut self) -> Result<(), RunError> {
        if !self.set_up {
            setup(&mut self.projection, &self.name, &self.store).await?;
            self.set_up = true;
        }
        Ok(())
    }
}

impl<P: PgProjection> Consumer for PgReadModel<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        stored_types::<P::Event>(P::UNKNOWN_EVENTS)
    }

    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        self.setup().await?;
        let name = self.name.as_str();
        let failed = |error: tokio_postgres::Error| RunError::store(name, backend(error));
        let client = self
            .store
            .client()
            .await
            .map_err(|e| RunError::store(name, e))?;
        let read = client
            .prepare_cached(&self.store.shared.sql.checkpoint.read)
            .await
            .map_err(failed)?;
        let row = client
            .query_opt(&read, &[&self.store.tenant.as_str(), &name])
            .await
            .map_err(failed)?;
        let (position, found) = checkpoint::state(row.as_ref()).map_err(failed)?;
        match self.generation {
            Some(started) if started != found => Err(RunError::switched(name, started, found)),
            _ => {
                self.generation = Some(found);
                Ok(position)
            }
        }
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        self.setup().await?;
        let Self {
            store,
            projection,
            name,
            generation,
            ..
        } = self;
        let name = name.as_str();
        let failed = |error: tokio_postgres::Error| RunError::store(name, backend(error));
        let sql = &store.shared.sql.checkpoint;
        let tenant = store.tenant.as_str();
        let mut client = store.client().await.map_err(|e| RunError::store(name, e))?;
        let tx = client.transaction().await.map_err(failed)?;
        let locked = checkpoint::lock_or_create(&tx, sql, tenant, name)
            .await
            .map_err(failed)?;
        let (stored, found) = checkpoint::state(locked.as_ref()).map_err(failed)?;
        let started = *generation.get_or_insert(found);
        if found != started {
            tx.rollback().await.map_err(failed)?;
            return Err(RunError::switched(name, started, found));
        }
        if stored != from {
            tx.rollback().await.map_err(failed)?;
            return Err(RunError::fenced(name, from, stored));
        }
        apply_all(projection, name, &tx, events).await?;
        let (commit, sequence) = checkpoint::columns(through);
        let advance = tx.prepare_cached(&sql.advance).await.map_err(failed)?;
        tx.execute(&advance, &[&tenant, &name, &commit, &sequence])
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)
    }
}

/// See [`SwitchReadModel`] for the contract, the same on every SQL backend. Here the switch
/// is one transaction that locks both checkpoint rows (`SELECT ... FOR UPDATE`), so a batch of
/// the live read model in flight on any node commits first and its runner is fenced on the
/// next; indexes and the sequences a renamed table owns are renamed in place.
///
/// ```no_run
/// use eventsrc::SwitchReadModel;
///
/// # async fn switch(store: eventsrc_postgres::PgEventStore) -> Result<(), eventsrc::StoreError> {
/// store
///     .switch_read_model("users_rebuild", "users", "DROP TABLE users; ALTER TABLE users_new RENAME TO users")
///     .await?;
/// # Ok(()) }
/// ```
impl SwitchReadModel for PgEventStore {
    async fn switch_read_model(
        &self,
        rebuilt: &str,
        live: &str,
        swap: &str,
    ) -> Result<GlobalPosition, StoreError> {
        let sql = &self.shared.sql.checkpoint;
        let tenant = self.tenant.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let lock = tx.prepare_cached(&sql.lock).await.map_err(backend)?;
        let locked = tx
            .query_opt(&lock, &[&tenant, &rebuilt])
            .await
            .map_err(backend)?;
        let (position, _) = checkpoint::state(locked.as_ref()).map_err(backend)?;
        let Some(position) = position else {
            return Err(StoreError::NotBuilt {
                rebuilt: rebuilt.to_owned(),
                live: live.to_owned(),
            });
        };
        // The live row, locked too, so that a batch of the live model in flight finishes
        // first (and its runner is fenced on the next).
        let live_row = checkpoint::lock_or_create(&tx, sql, tenant, live)
            .await
            .map_err(backend)?;
        let (_, generation) = checkpoint::state(live_row.as_ref()).map_err(backend)?;
        let before = tables(&tx).await.map_err(backend)?;
        tx.batch_execute(swap).await.map_err(backend)?;
        rename_companions(&tx, &before).await.map_err(backend)?;
        let (commit, sequence) = checkpoint::columns(position);
        tx.execute(&sql.switch, &[&tenant, &live, &commit, &sequence])
            .await
            .map_err(backend)?;
        if rebuilt != live {
            tx.execute(&sql.delete, &[&tenant, &rebuilt])
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        let generation = generation + 1;
        tracing::info!(rebuilt, live, %position, generation, "switched in a rebuilt read model");
        Ok(position)
    }
}

/// Every table outside PostgreSQL's own schemas: (oid, schema, name).
async fn tables(
    tx: &deadpool_postgres::Transaction<'_>,
) -> Result<Vec<(u32, String, String)>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%'",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect()
}

/// After a swap, renames the indexes and owned sequences of each table the swap renamed:
/// `<old table>_rest` becomes `<new table>_rest`. A name another renamed index gives up is
/// free for the next pass, so the order of the tables does not matter. Two catalog queries
/// whatever the number of tables (their companions, and the names taken in their schemas);
/// the passes then run on those, one statement per rename.
async fn rename_companions(
    tx: &deadpool_postgres::Transaction<'_>,
    before: &[(u32, String, String)],
) -> Result<(), tokio_postgres::Error> {
    let after = tables(tx).await?;
    // (oid, schema, old name, new name) of each table the swap renamed.
    let renamed: Vec<(u32, &str, &str, &str)> = after
        .iter()
        .filter_map(|(oid, schema, name)| {
            let (_, _, old) = before.iter().find(|(o, _, n)| o == oid && n != name)?;
            Some((*oid, schema.as_str(), old.as_str(), name.as_str()))
        })
        .collect();
    if renamed.is_empty() {
        return Ok(());
    }
    let oids: Vec<u32> = renamed.iter().map(|(oid, ..)| *oid).collect();
    let schemas: Vec<&str> = renamed.iter().map(|(_, schema, ..)| *schema).collect();
    let companions = tx
        .query(
            "SELECT i.indrelid, c.relname::text, c.relkind::text FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = ANY($1::oid[]) AND c.relkind IN ('i', 'I') \
             UNION \
             SELECT d.refobjid, c.relname::text, c.relkind::text FROM pg_depend d \
             JOIN pg_class c ON c.oid = d.objid \
             WHERE d.refobjid = ANY($1::oid[]) AND d.classid = 'pg_class'::regclass \
               AND d.deptype IN ('a', 'i') AND c.relkind IN ('i', 'I', 'S')",
            &[&oids],
        )
        .await?;
    let mut taken: HashSet<(String, String)> = tx
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = ANY($1::text[])",
            &[&schemas],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?;
    // (schema, table, companion, kind, wanted name)
    let mut pending: Vec<(&str, &str, String, String, String)> = Vec::new();
    for row in companions {
        let oid: u32 = row.try_get(0)?;
        let companion: String = row.try_get(1)?;
        let kind: String = row.try_get(2)?;
        let Some((_, schema, old, name)) = renamed.iter().find(|(o, ..)| *o == oid) else {
            continue;
        };
        if let Some(rest) = companion.strip_prefix(&format!("{old}_")) {
            let wanted = format!("{name}_{rest}");
            pending.push((schema, name, companion, kind, wanted));
        }
    }
    loop {
        let mut kept = Vec::new();
        let before = pending.len();
        for (schema, table, companion, kind, wanted) in pending {
            let key = (schema.to_owned(), wanted);
            if taken.contains(&key) || key.1.len() > 63 {
                kept.push((schema, table, companion, kind, key.1));
                continue;
            }
            let what = if kind == "S" { "SEQUENCE" } else { "INDEX" };
            tx.batch_execute(&format!(
                "ALTER {what} {} RENAME TO {}",
                quote(schema, &companion),
                quote_ident(&key.1)
            ))
            .await?;
            taken.remove(&(schema.to_owned(), companion));
            taken.insert(key);
        }
        pending = kept;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    for (schema, table, companion, _, wanted) in pending {
        tracing::warn!(
            schema = %schema,
            table = %table,
            kept = %companion,
            wanted = %wanted,
            "a switched read model's index or sequence keeps its name: the new one is taken or too long"
        );
    }
    Ok(())
}

/// `name` as an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema`.`name` as a qualified SQL identifier.
fn quote(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}
