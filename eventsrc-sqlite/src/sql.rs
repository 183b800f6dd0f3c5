//! Your own SQL on the store's database: querying read models, changing tables, switching a
//! rebuilt read model in, registering inline projections.

use eventsrc_core::backend::stored_types;
use eventsrc_core::runner::Progress;
use eventsrc_core::store::EventFilter;
use eventsrc_core::{RunError, StoreError};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::projection::{BoxError, SqliteProjection, guarded};
use crate::{SqliteEventStore, backend, closed, writer};

impl SqliteEventStore {
    /// Runs `query` on a connection that reads, inside one read transaction (so every
    /// statement sees the same snapshot), off the caller's runtime: the way to query SQL read
    /// models. A file's pooled read-only connections never wait for the writer; an in-memory
    /// database lends its writer's connection, switched to `query_only` for the call.
    ///
    /// `query` may fail with any error (usually `rusqlite::Error`), which comes back inside
    /// [`StoreError::Backend`]. Read models are not scoped by tenant: filter by the tenant
    /// your projection stored if you keep several in one table.
    ///
    /// ```
    /// use eventsrc_sqlite::SqliteEventStore;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store = SqliteEventStore::open_in_memory().await?;
    /// store.write_with(|tx| tx.execute_batch("CREATE TABLE totals (n INTEGER); INSERT INTO totals VALUES (42)")).await?;
    /// let n: i64 = store.read_with(|db| db.query_row("SELECT n FROM totals", [], |r| r.get(0))).await?;
    /// assert_eq!(n, 42);
    /// // Reads cannot write.
    /// assert!(store.read_with(|db| db.execute("DELETE FROM totals", [])).await.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read_with<T, E, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        E: Into<BoxError>,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let lent = self.shared.readers.is_none();
        self.read(move |conn| {
            if lent {
                conn.pragma_update(None, "query_only", true)
                    .map_err(backend)?;
            }
            let queried = conn.unchecked_transaction().map_err(backend).map(|tx| {
                let result = guarded(|| query(&tx));
                // Dropping the transaction ends it (a rollback, with nothing to undo).
                drop(tx);
                result
            });
            if lent {
                conn.pragma_update(None, "query_only", false)
                    .map_err(backend)?;
            }
            match queried? {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(StoreError::Backend(error.into())),
                Err(panicked) => Err(StoreError::backend(panicked)),
            }
        })
        .await
    }

    /// Runs `job` in one `IMMEDIATE` transaction on the writer thread, after the appends sent
    /// before it and before those sent after: committed if it returns `Ok`, rolled back if it
    /// fails (its error comes back inside [`StoreError::Backend`]) or panics. For changing read
    /// model tables by hand: migrations of a read model, a switch (see
    /// [`SwitchReadModel`](eventsrc_core::SwitchReadModel)). Appends wait while it runs: keep it
    /// short.
    ///
    /// ```
    /// use eventsrc_sqlite::SqliteEventStore;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store = SqliteEventStore::open_in_memory().await?;
    /// let inserted = store
    ///     .write_with(|tx| {
    ///         tx.execute_batch("CREATE TABLE notes (text TEXT)")?;
    ///         tx.execute("INSERT INTO notes VALUES ('hello')", [])
    ///     })
    ///     .await?;
    /// assert_eq!(inserted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn write_with<T, E, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        E: Into<BoxError>,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.on_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let value = job(&tx).map_err(|error| StoreError::Backend(error.into()))?;
            tx.commit().map_err(backend)?;
            Ok(value)
        })
        .await
    }
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
    /// it fails on fails with [`StoreError::Refused`], naming it and the event, and stores
    /// nothing. Registrations last as long as the store (all its handles): register again
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
        let request = writer::AddInline {
            tenant: self.tenant.clone(),
            name: name.clone(),
            filter,
            projection: Box::new(projection),
            reply,
        };
        let gone = || RunError::store(&name, closed());
        self.shared
            .writer
            .send(writer::Request::AddInline(request))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}
