//! SQL read models: projections whose read model is tables in the store's own database,
//! written in the same transaction as their checkpoint.

use std::sync::{Mutex, MutexGuard, PoisonError};

use eventsrc_core::RunError;
use eventsrc_core::runner::BatchError;
use eventsrc_core::runner::UnknownEvents;
use eventsrc_core::{Event, RecordedEvent, StoreError, Tenant};
use rusqlite::Transaction;

#[cfg(doc)]
use crate::{SqliteEventStore, SqliteReadModel};

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
/// new tables beside the live ones (see [`SwitchReadModel::switch_read_model`](eventsrc_core::SwitchReadModel::switch_read_model)).
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
