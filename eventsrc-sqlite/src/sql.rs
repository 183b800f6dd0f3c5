//! Your own SQL on the store's database: querying read models, changing tables, switching a
//! rebuilt read model in, registering inline projections.

use eventsrc_core::backend::stored_types;
use eventsrc_core::runner::Progress;
use eventsrc_core::store::EventFilter;
use eventsrc_core::{InlineProjections, RunError, StoreError};
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
    /// A handle whose appends apply `projection` inside their own transaction, the contract
    /// of [`InlineProjections`] (which this implements):
    /// its tables are set up first; every append of this tenant from then on applies it
    /// before committing, so a query right after the append sees it (no read-your-writes
    /// wait), at the price of the append's latency; an append it fails on fails with
    /// [`StoreError::Refused`], naming it and the event, and stores nothing; a retry of a
    /// stored batch applies nothing again. Events stored before are not applied, and no
    /// checkpoint is kept: to build the read model over them, run the projection as a
    /// [`SqliteReadModel`](crate::SqliteReadModel) first, or register it with
    /// [`catch_up_inline`](Self::catch_up_inline) instead.
    ///
    /// On SQLite every append goes through the store's one writer thread, so the
    /// registration covers every handle of this tenant, not only the one returned: the
    /// contract promises the returned handle only, so give that one to your writers and the
    /// same code runs on PostgreSQL. A handle for another tenant, even one made from the
    /// returned handle, does not apply it. Registrations last as long as the store (all its
    /// handles): register again after each open. A second registration under the same
    /// [`NAME`](SqliteProjection::NAME) for the tenant is refused with
    /// [`ReadModelError::AlreadyInline`](crate::ReadModelError::AlreadyInline). Dropping
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
    /// let store = store.with_inline(Sold).await?;
    /// let cart = StreamId::new("cart", 1)?;
    /// let added = NewEvent::from_event(&ItemAdded { sku: "laptop".into() }, Metadata::new())?;
    /// store.append(&cart, ExpectedVersion::Any, vec![added]).await?;
    /// // Already there: same transaction as the append.
    /// let n: i64 = store.read_with(|db| db.query_row("SELECT n FROM sold WHERE sku = 'laptop'", [], |r| r.get(0))).await?;
    /// assert_eq!(n, 1);
    /// // No checkpoint: nothing resumes it; it is applied by the appends themselves.
    /// # use eventsrc::CheckpointStore;
    /// assert_eq!(store.load_checkpoint("sold").await?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn with_inline<P: SqliteProjection>(&self, projection: P) -> Result<Self, RunError> {
        self.register_inline(P::NAME.to_owned(), projection, false)
            .await?;
        Ok(self.clone())
    }

    /// Registers an inline projection that catches up from its checkpoint, under
    /// [`SqliteProjection::NAME`]: see [`catch_up_inline_named`](Self::catch_up_inline_named).
    pub async fn catch_up_inline<P: SqliteProjection>(
        &self,
        projection: P,
    ) -> Result<Progress, RunError> {
        self.catch_up_inline_named(P::NAME, projection).await
    }

    /// Registers an inline projection for this handle's tenant that first catches up from
    /// its checkpoint (`name`) and then keeps that checkpoint in every append's transaction:
    /// [`with_inline`](Self::with_inline) plus the past and a checkpoint, which only SQLite
    /// offers.
    ///
    /// It sets up its tables and catches up from its checkpoint to the head of the log on the
    /// writer thread, a page of events per transaction between appends (appends meanwhile
    /// skip it; the catch-up reads their events from the log); this returns once it has,
    /// with how far it got. From then on, every append of this tenant applies it in the
    /// append's own transaction and moves its checkpoint there, so a restart registering it
    /// again resumes where the last append left it, and a
    /// [`SqliteReadModel`](crate::SqliteReadModel) of the same name could take over. An
    /// append it fails on fails with [`StoreError::Refused`], naming it and the event, and
    /// stores nothing. A failing catch-up unregisters it and returns the error. As with
    /// [`with_inline`](Self::with_inline), the registration covers every handle of the
    /// tenant and lasts as long as the store; dropping this future does not cancel it.
    /// Appends from another process that opened the same file do not apply it, and the next
    /// append here moves its checkpoint past their events: use it where one process writes
    /// the file.
    ///
    /// PostgreSQL has no counterpart: there appends commit concurrently, and a checkpoint
    /// row moved by each would make them wait for one another's commits.
    ///
    /// ```
    /// # use eventsrc::{Event, RecordedEvent};
    /// # use eventsrc_sqlite::SqliteProjection;
    /// # use eventsrc_sqlite::rusqlite::{Transaction, params};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Event, Serialize, Deserialize, Debug)]
    /// # struct ItemAdded { sku: String }
    /// # struct Sold;
    /// # impl SqliteProjection for Sold {
    /// #     const NAME: &'static str = "sold";
    /// #     type Event = ItemAdded;
    /// #     type Error = eventsrc_sqlite::rusqlite::Error;
    /// #     fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
    /// #         tx.execute_batch("CREATE TABLE IF NOT EXISTS sold (sku TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    /// #     }
    /// #     fn apply(&mut self, tx: &Transaction<'_>, added: ItemAdded, _: &RecordedEvent) -> Result<(), Self::Error> {
    /// #         tx.prepare_cached("INSERT INTO sold VALUES (?1, 1) ON CONFLICT (sku) DO UPDATE SET n = n + 1")?
    /// #             .execute(params![added.sku])
    /// #             .map(drop)
    /// #     }
    /// # }
    /// use eventsrc::{CheckpointStore, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
    /// use eventsrc_sqlite::SqliteEventStore;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store = SqliteEventStore::open_in_memory().await?;
    /// let cart = StreamId::new("cart", 1)?;
    /// let sale = || NewEvent::from_event(&ItemAdded { sku: "laptop".into() }, Metadata::new());
    /// // Stored before the registration: the catch-up applies it.
    /// store.append(&cart, ExpectedVersion::Any, vec![sale()?]).await?;
    /// let progress = store.catch_up_inline(Sold).await?;
    /// assert_eq!((progress.handled, progress.caught_up), (1, true));
    /// let appended = store.append(&cart, ExpectedVersion::Any, vec![sale()?]).await?;
    /// let n: i64 = store.read_with(|db| db.query_row("SELECT n FROM sold WHERE sku = 'laptop'", [], |r| r.get(0))).await?;
    /// assert_eq!(n, 2);
    /// // The append moved the checkpoint in its own transaction.
    /// assert_eq!(store.load_checkpoint("sold").await?, Some(appended.position));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn catch_up_inline_named<P: SqliteProjection>(
        &self,
        name: impl Into<String>,
        projection: P,
    ) -> Result<Progress, RunError> {
        self.register_inline(name.into(), projection, true).await
    }

    /// Sends the registration of `projection` under `name` to the writer thread and waits
    /// for its answer: a `checkpointed` one catches up from its checkpoint and keeps it,
    /// any other is live from the next append.
    async fn register_inline<P: SqliteProjection>(
        &self,
        name: String,
        projection: P,
        checkpointed: bool,
    ) -> Result<Progress, RunError> {
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
            checkpointed,
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

/// The contract every backend's inline projections keep: see [`SqliteEventStore::with_inline`]
/// for what SQLite adds (the registration covers every handle of the tenant).
impl<P: SqliteProjection> InlineProjections<P> for SqliteEventStore {
    async fn with_inline(&self, projection: P) -> Result<Self, RunError> {
        SqliteEventStore::with_inline(self, projection).await
    }
}
