//! SQL read models: projections whose read model is tables in the store's own database,
//! written in the same transaction as their checkpoint.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use eventsrc_core::RunError;
use eventsrc_core::backend::{decode, stored_types};
use eventsrc_core::runner::UnknownEvents;
use eventsrc_core::runner::{BatchError, Consumer};
use eventsrc_core::{Event, GlobalPosition, RecordedEvent, StoreError, Tenant};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::{SqliteEventStore, backend, checkpoint};

/// An error of any kind, boxed: what user code run on the database may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A projection into SQL tables of the store's database (a sales-leads CRM's LeadSearch, an
/// identity service's `users` query view).
///
/// [`setup`](Self::setup) creates its tables; [`apply`](Self::apply) folds one event with
/// SQL. Both run on the store's writer thread inside a transaction that the caller owns:
/// [`SqliteReadModel`] applies a whole batch and moves the checkpoint in one transaction
/// (exactly once), and [`SqliteEventStore::with_inline`] applies each append inside the
/// append's own transaction. Keep the read model in the tables, not in fields of `self`: a
/// failed transaction rolls back the tables, never the fields.
///
/// Name tables after a field rather than a constant, so that the same type can be rebuilt into
/// new tables beside the live ones (see [`SqliteEventStore::switch_read_model`]).
///
/// ```
/// use eventsrc::{Event, RecordedEvent};
/// use eventsrc_sqlite::SqliteProjection;
/// use eventsrc_sqlite::rusqlite::{Transaction, params};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Serialize, Deserialize, Debug)]
/// struct UserRegistered { email: String }
///
/// #[derive(Event, Serialize, Deserialize, Debug)]
/// struct EmailChanged { email: String }
///
/// #[derive(Event, Debug)]
/// enum UserEvent { Registered(UserRegistered), EmailChanged(EmailChanged) }
///
/// /// An identity service's `users` query view: a user's current e-mail, by user id.
/// struct Users { table: &'static str }
///
/// impl SqliteProjection for Users {
///     const NAME: &'static str = "users";
///     type Event = UserEvent;
///     type Error = eventsrc_sqlite::rusqlite::Error;
///
///     fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
///         tx.execute_batch(&format!(
///             "CREATE TABLE IF NOT EXISTS {} (id TEXT PRIMARY KEY, email TEXT NOT NULL)",
///             self.table
///         ))
///     }
///
///     fn apply(&mut self, tx: &Transaction<'_>, event: UserEvent, record: &RecordedEvent)
///         -> Result<(), Self::Error>
///     {
///         let (UserEvent::Registered(UserRegistered { email })
///             | UserEvent::EmailChanged(EmailChanged { email })) = event;
///         // "Set" semantics: applying an event twice leaves the same row.
///         let sql = format!(
///             "INSERT INTO {} (id, email) VALUES (?1, ?2) \
///              ON CONFLICT (id) DO UPDATE SET email = excluded.email",
///             self.table
///         );
///         tx.prepare_cached(&sql)?.execute(params![record.stream.id(), email])?;
///         Ok(())
///     }
/// }
/// ```
pub trait SqliteProjection: Send + 'static {
    /// The name its checkpoint is kept under, unless [`SqliteReadModel::named`] or
    /// [`SqliteEventStore::catch_up_inline_named`] gives another (a rebuild's).
    const NAME: &'static str;
    /// What to do with events `Event` does not know.
    const UNKNOWN_EVENTS: UnknownEvents = UnknownEvents::Skip;
    /// The events it reads.
    type Event: Event;
    /// What setting up and applying can fail with (usually `rusqlite::Error`).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Creates its tables and indexes (`CREATE TABLE IF NOT EXISTS`); runs once per runner
    /// or registration, before the first event.
    fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error>;

    /// Folds one event into the tables; `record` carries its stream, positions, tenant,
    /// metadata and time. Do not commit or roll back: the caller owns the transaction.
    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: Self::Event,
        record: &RecordedEvent,
    ) -> Result<(), Self::Error>;

    /// Folds a batch into the tables, in log order: the events this projection reads,
    /// decoded, each with its record. The default calls [`apply`](Self::apply) for each.
    /// Override it to write a batch with fewer statements (sum in memory, then one upsert per
    /// key): a rebuild then costs a statement per key and batch rather than per event. An
    /// error rolls the batch back, checkpoint included; [`BatchError::at`] says which event it
    /// was, if known.
    fn apply_batch(
        &mut self,
        tx: &Transaction<'_>,
        events: Vec<(Self::Event, &RecordedEvent)>,
    ) -> Result<(), BatchError<Self::Error>> {
        for (at, (event, record)) in events.into_iter().enumerate() {
            self.apply(tx, event, record)
                .map_err(|error| BatchError::at(at, error))?;
        }
        Ok(())
    }
}

/// A [`SqliteProjection`] as a [`Consumer`] for [`eventsrc::Runner`](eventsrc_core::Runner): each batch is
/// one transaction on the store's writer thread that checks the checkpoint, applies every
/// event and moves the checkpoint, so the read model is updated exactly once even across
/// crashes and restarts.
///
/// The checkpoint lives in the store's checkpoint table under [`name`](Consumer::name) and the
/// store handle's tenant: give the runner the same handle. A batch whose starting checkpoint
/// is not the stored one is refused with [`RunError::Fenced`] before anything is applied.
///
/// ```
/// # use eventsrc::{Event, RecordedEvent};
/// # use eventsrc_sqlite::SqliteProjection;
/// # use eventsrc_sqlite::rusqlite::{Transaction, params};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug)]
/// # struct UserRegistered { email: String }
/// # struct Users;
/// # impl SqliteProjection for Users {
/// #     const NAME: &'static str = "users";
/// #     type Event = UserRegistered;
/// #     type Error = eventsrc_sqlite::rusqlite::Error;
/// #     fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
/// #         tx.execute_batch("CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT)")
/// #     }
/// #     fn apply(&mut self, tx: &Transaction<'_>, e: UserRegistered, r: &RecordedEvent) -> Result<(), Self::Error> {
/// #         tx.execute("INSERT OR REPLACE INTO users VALUES (?1, ?2)", params![r.stream.id(), e.email]).map(drop)
/// #     }
/// # }
/// use eventsrc::Runner;
/// use eventsrc::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
/// use eventsrc_sqlite::{SqliteEventStore, SqliteReadModel};
/// use std::time::Duration;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = SqliteEventStore::open_temporary().await?;
/// let runner = Runner::new(store.clone(), SqliteReadModel::new(Users, store.clone()));
/// let progress = runner.progress();
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let task = tokio::spawn(runner.run(async { stopped.await.ok(); }));
///
/// let user = StreamId::new("user", "ada")?;
/// let registered = NewEvent::from_event(&UserRegistered { email: "ada@example.com".into() }, Metadata::new())?;
/// let appended = store.append(&user, ExpectedVersion::NoStream, vec![registered]).await?;
///
/// // Read-your-writes: wait for the read model, then query it.
/// progress.wait_for(appended.position, Duration::from_secs(5)).await?;
/// let email: String = store
///     .read_with(|db| db.query_row("SELECT email FROM users WHERE id = 'ada'", [], |r| r.get(0)))
///     .await?;
/// assert_eq!(email, "ada@example.com");
/// stop.send(()).ok();
/// task.await??;
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteReadModel<P> {
    projection: Arc<Mutex<P>>,
    store: SqliteEventStore,
    name: String,
    /// The checkpoint's generation when this runner first read it (a switch bumps it); `None`
    /// until then, which is also until the tables are set up.
    generation: Option<i64>,
}

impl<P> std::fmt::Debug for SqliteReadModel<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReadModel")
            .field("name", &self.name)
            .field("tenant", &self.store.tenant)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<P: SqliteProjection> SqliteReadModel<P> {
    /// `projection`, with its tables in `store`'s database and its checkpoint under
    /// [`SqliteProjection::NAME`] for `store`'s tenant.
    pub fn new(projection: P, store: SqliteEventStore) -> Self {
        Self {
            projection: Arc::new(Mutex::new(projection)),
            store,
            name: P::NAME.to_owned(),
            generation: None,
        }
    }

    /// Keeps the checkpoint under `name` instead: a rebuild beside the live read model
    /// (`"users_rebuild"` writing into `users_new`), switched in later with
    /// [`SqliteEventStore::switch_read_model`].
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Runs `job` on the writer thread, as this consumer.
    async fn on_writer<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, RunError> + Send + 'static,
    ) -> Result<T, RunError> {
        self.store
            .on_writer(move |conn| Ok(job(conn)))
            .await
            .map_err(|e| RunError::store(&self.name, e))?
    }
}

impl<P: SqliteProjection> Consumer for SqliteReadModel<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        stored_types::<P::Event>(P::UNKNOWN_EVENTS)
    }

    /// Reads the checkpoint, setting up the tables first (once).
    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        let setup = self
            .generation
            .is_none()
            .then(|| Arc::clone(&self.projection));
        let (tenant, name) = (self.store.tenant.clone(), self.name.clone());
        let stored = self
            .on_writer(move |conn| {
                let store_error = |e| RunError::store(&name, backend(e));
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(store_error)?;
                if let Some(projection) = setup {
                    run_setup(&mut *lock(&projection), &name, &tx)
                        .map_err(|e| RunError::store(&name, StoreError::backend(e)))?;
                }
                let stored = checkpoint::load(&tx, &tenant, &name).map_err(store_error)?;
                tx.commit().map_err(store_error)?;
                Ok(stored)
            })
            .await?;
        let found = stored.map_or(0, |s| s.generation);
        match self.generation {
            Some(started) if started != found => {
                return Err(RunError::switched(&self.name, started, found));
            }
            _ => self.generation = Some(found),
        }
        Ok(stored.map(|s| s.position))
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        let generation = match self.generation {
            Some(generation) => generation,
            None => {
                self.checkpoint().await?;
                self.generation.unwrap_or_default()
            }
        };
        // Decoding here, on the caller's thread, keeps the writer thread free for appends.
        let mut decoded = Vec::with_capacity(events.len());
        for record in events {
            if let Some(event) = decode::<P::Event>(&self.name, record, P::UNKNOWN_EVENTS)? {
                decoded.push((event, record.clone()));
            }
        }
        let projection = Arc::clone(&self.projection);
        let (tenant, name) = (self.store.tenant.clone(), self.name.clone());
        self.on_writer(move |conn| {
            let store_error = |e| RunError::store(&name, backend(e));
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            let stored = checkpoint::load(&tx, &tenant, &name).map_err(store_error)?;
            let found = stored.map_or(0, |s| s.generation);
            if found != generation {
                return Err(RunError::switched(&name, generation, found));
            }
            let at = stored.map(|s| s.position);
            if at != from {
                return Err(RunError::fenced(&name, from, at));
            }
            let mut projection = lock(&projection);
            apply_batch(&mut *projection, &name, &tx, decoded)?;
            checkpoint::save(&tx, &tenant, &name, through).map_err(store_error)?;
            tx.commit().map_err(store_error)
        })
        .await
    }
}

/// What the read side of this backend can fail with, besides SQLite itself. It reaches
/// callers inside [`StoreError::Backend`] (and so inside [`RunError::Store`]); find it with
/// [`ReadModelError::find`].
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// The projection's [`setup`](SqliteProjection::setup) failed.
    #[error("`{name}` could not set up its tables: {source}")]
    Setup {
        /// The read model.
        name: String,
        /// What the projection said.
        #[source]
        source: BoxError,
    },
    /// An inline projection of this name is already registered for this tenant.
    #[error("an inline projection `{name}` is already registered for tenant `{tenant}`")]
    AlreadyInline {
        /// The projection's name.
        name: String,
        /// The tenant.
        tenant: Tenant,
    },
    /// Code run on the database (a projection, a `read_with` or `write_with` closure)
    /// panicked; its transaction was rolled back and the store carries on.
    #[error("code run on the database panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
}

impl ReadModelError {
    /// The `ReadModelError` inside a store error, if that is what it is.
    pub fn find(error: &StoreError) -> Option<&Self> {
        match error {
            StoreError::Backend(source) => source.downcast_ref(),
            _ => None,
        }
    }
}

pub(crate) fn lock<P>(projection: &Mutex<P>) -> MutexGuard<'_, P> {
    // A projection that panicked was caught (see `guarded`) and its transaction rolled back;
    // its fields are as the panic left them, which the trait tells implementors not to rely on.
    projection.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Applies one event, a panic included among the errors that name it.
pub(crate) fn apply<P: SqliteProjection>(
    projection: &mut P,
    name: &str,
    tx: &Transaction<'_>,
    event: P::Event,
    record: &RecordedEvent,
) -> Result<(), RunError> {
    match guarded(|| projection.apply(tx, event, record)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(RunError::handle(name, record, error)),
        Err(panicked) => Err(RunError::handle(name, record, panicked)),
    }
}

/// Applies a decoded batch with [`SqliteProjection::apply_batch`]; an error or a panic names
/// the event it happened on (the batch's first when the projection cannot say).
pub(crate) fn apply_batch<P: SqliteProjection>(
    projection: &mut P,
    name: &str,
    tx: &Transaction<'_>,
    decoded: Vec<(P::Event, RecordedEvent)>,
) -> Result<(), RunError> {
    let (events, records): (Vec<P::Event>, Vec<RecordedEvent>) = decoded.into_iter().unzip();
    let Some(first) = records.first() else {
        return Ok(());
    };
    let batch = events.into_iter().zip(&records).collect();
    match guarded(|| projection.apply_batch(tx, batch)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(failed)) => {
            let record = failed.at.and_then(|i| records.get(i)).unwrap_or(first);
            Err(RunError::handle(name, record, failed.error))
        }
        Err(panicked) => Err(RunError::handle(name, first, panicked)),
    }
}

/// Runs a projection's setup, a panic included among its errors.
pub(crate) fn run_setup<P: SqliteProjection>(
    projection: &mut P,
    name: &str,
    tx: &Transaction<'_>,
) -> Result<(), ReadModelError> {
    let source: BoxError = match guarded(|| projection.setup(tx)) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(error)) => Box::new(error),
        Err(panicked) => Box::new(panicked),
    };
    Err(ReadModelError::Setup {
        name: name.to_owned(),
        source,
    })
}

/// Runs user code on the writer thread without letting a panic take the thread down: the
/// writer serves every handle of the store, so one projection's bug must not stop appends.
pub(crate) fn guarded<T>(code: impl FnOnce() -> T) -> Result<T, ReadModelError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(code)).map_err(|panic| {
        let message = if let Some(text) = panic.downcast_ref::<&str>() {
            (*text).to_owned()
        } else if let Some(text) = panic.downcast_ref::<String>() {
            text.clone()
        } else {
            "a panic without a message".to_owned()
        };
        ReadModelError::Panicked { message }
    })
}
