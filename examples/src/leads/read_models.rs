//! The leads' read models: one stream, many read models. Next to the current lead (the
//! aggregate, loaded from its events), the same events are projected into
//!
//! - [`LeadSearch`]: every e-mail address and phone number a lead ever had, so that a search
//!   by an old address still finds the lead;
//! - [`StatusLog`]: every status change with the status it left, when and by whom, for the
//!   business's analysis ([`StatusLog::transitions`]: how often leads went from each status to
//!   each other).
//!
//! Both are [`SqliteProjection`]s: SQLite tables, each batch of events applied in the same
//! transaction that moves the read model's checkpoint, so a runner stopped anywhere (a crash
//! included) continues where it committed and never applies an event twice. Both are also
//! idempotent on their own, upserts keyed by the event's lead and stream version, so that a
//! second runner replaying the log into the same tables changes nothing.
//!
//! # Where the tables live
//!
//! [`LeadReadModels`] puts them on whichever store the demo runs ([`LeadReadModels::for_store`]):
//!
//! | the log | the read model tables and their checkpoints | across runs |
//! |---|---|---|
//! | SQLite (`sqlite://file.db`, `sqlite::memory:`) | the same database ([`Placement::LogDatabase`]) | continue from their checkpoints |
//! | `memory:` or `postgres://` | a SQLite database in memory beside the log ([`Placement::Beside`]) | built from the whole log on every run |
//!
//! A [`SqliteReadModel`] keeps its checkpoint in the database of its tables, not in the log's
//! store: the runner reads events from one store and commits the model and its checkpoint in the
//! other, together. For PostgreSQL a SQLite *file* beside the schema would keep the read models
//! across runs too, but the two would have to be thrown away together (a file whose checkpoint
//! is ahead of a dropped and recreated schema would skip its events); a database in memory
//! cannot get out of step, which makes it the honest choice for a demo. A production system
//! would project into the log's own database (`eventsrc-postgres` has its own SQL read models).
//!
//! ```
//! use eventsrc::{MemoryStore, Metadata, Repository};
//! use eventsrc_examples::leads::read_models::{LeadReadModels, LeadSearch, StatusLog};
//! use eventsrc_examples::leads::{ChangeContactInformation, InitializeLead, LeadId};
//! use eventsrc_sqlite::SqliteEventStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! // The log in memory, the read models in SQLite beside it.
//! let log = MemoryStore::new();
//! let read_models = LeadReadModels::beside(log.clone(), SqliteEventStore::open_in_memory().await?);
//!
//! let repository = Repository::new(log);
//! let lead = LeadId(1410);
//! repository.send(InitializeLead { id: lead }, Metadata::new()).await?;
//! let contact = ChangeContactInformation {
//!     lead,
//!     email: "s.ivanov@example.com".into(),
//!     phone: "03-27243457".into(),
//! };
//! repository.send(contact, Metadata::new()).await?;
//!
//! read_models.catch_up().await?;
//! let tables = read_models.tables();
//! assert_eq!(LeadSearch::find(tables, "03-27243457").await?, [lead]);
//! assert_eq!(StatusLog::history(tables, lead).await?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod demo;
mod search;
mod search_view;
mod status_log;

use std::time::Duration;

use eventsrc::runner::Progress;

use eventsrc::{Aggregate, CheckpointStore, EventStore, GlobalPosition, RecordedEvent, StreamId};
use eventsrc::{ProgressWatch, RunError, Runner, SwitchReadModel};
use eventsrc_sqlite::rusqlite::{self, Row};
use eventsrc_sqlite::{OpenError, SqliteEventStore, SqliteProjection, SqliteReadModel};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use demo::{Projected, print_read_models, tell_rebuild, tell_with_read_models};
pub use search::{Contact, ContactKind, LeadSearch, LeadSearchEvent};
pub use search_view::{LeadContacts, LeadSearchView, SeenContact};
pub use status_log::{StatusChange, StatusLog, StatusLogEvent, Transition};

use super::{Lead, LeadId};
use eventsrc::Store;

/// Why a lead read model could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum LeadProjectionError {
    /// SQLite refused a statement.
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// The event is not in a lead's stream, so there is no lead to file it under.
    #[error("`{stream}` is not a lead's stream: expected `lead-<number>`")]
    NotALead {
        /// The event's stream.
        stream: StreamId,
    },
}

/// The lead whose stream `record` is in (`lead-1410`).
fn lead_of(record: &RecordedEvent) -> Result<LeadId, LeadProjectionError> {
    let stream = &record.stream;
    match stream.id().parse() {
        Ok(id) if stream.category() == Lead::TYPE => Ok(LeadId(id)),
        _ => Err(LeadProjectionError::NotALead {
            stream: stream.clone(),
        }),
    }
}

/// `name` as an SQL identifier, in double quotes: table names come from a field.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An unsigned number as SQLite's signed integer (ids and versions stay far below 2^63).
fn to_sql_int(n: u64) -> rusqlite::Result<i64> {
    i64::try_from(n).map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
}

/// Column `index` of `row`, a non-negative integer.
fn from_sql_int(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(index)?;
    u64::try_from(n).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Integer,
            Box::new(error),
        )
    })
}

/// Where the read model tables are, relative to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the log's own SQLite database: they continue from their checkpoints on every run.
    LogDatabase,
    /// In a SQLite database of their own, beside a log on another backend (or another file).
    Beside,
}

/// One value per read model: [`LeadSearch`]'s and [`StatusLog`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByReadModel<T> {
    /// [`LeadSearch`]'s.
    pub lead_search: T,
    /// [`StatusLog`]'s.
    pub status_log: T,
}

/// The leads' two read models, reading the log `S` into SQLite tables: their runners, their
/// checkpoints, a live follower for read-your-writes, and a rebuild of [`LeadSearch`] beside the
/// live table (see the [module](self) docs for where the tables live).
#[derive(Debug, Clone)]
pub struct LeadReadModels<S> {
    log: S,
    tables: SqliteEventStore,
    placement: Placement,
}

impl LeadReadModels<Store> {
    /// The read models of the demo's store: in its own database when it is SQLite, else in a
    /// SQLite database in memory beside it.
    pub async fn for_store(log: Store) -> Result<Self, OpenError> {
        match &log {
            Store::Sqlite(sqlite) => {
                let tables = sqlite.clone();
                Ok(Self {
                    log,
                    tables,
                    placement: Placement::LogDatabase,
                })
            }
            _ => {
                let tables = SqliteEventStore::open_in_memory().await?;
                Ok(Self::beside(log, tables))
            }
        }
    }
}

impl LeadReadModels<SqliteEventStore> {
    /// The read models in `store`'s own database, reading its log.
    pub fn in_log_database(store: SqliteEventStore) -> Self {
        Self {
            log: store.clone(),
            tables: store,
            placement: Placement::LogDatabase,
        }
    }
}

impl<S> LeadReadModels<S>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    /// The read models in `tables`, a SQLite database of their own (with their checkpoints),
    /// reading the log of `log`.
    pub fn beside(log: S, tables: SqliteEventStore) -> Self {
        Self {
            log,
            tables,
            placement: Placement::Beside,
        }
    }

    /// The store whose log they read.
    pub fn log(&self) -> &S {
        &self.log
    }

    /// The database holding their tables and checkpoints: query it with
    /// [`LeadSearch::find`], [`StatusLog::history`] and the like.
    pub fn tables(&self) -> &SqliteEventStore {
        &self.tables
    }

    /// Where the tables are.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// A runner of [`LeadSearch`] into its live table, from its checkpoint.
    pub fn lead_search(&self) -> Runner<S, SqliteReadModel<LeadSearch>> {
        let read_model = SqliteReadModel::new(LeadSearch::new(), self.tables.clone());
        Runner::new(self.log.clone(), read_model)
    }

    /// A runner of [`StatusLog`] into its live table, from its checkpoint.
    pub fn status_log(&self) -> Runner<S, SqliteReadModel<StatusLog>> {
        let read_model = SqliteReadModel::new(StatusLog::new(), self.tables.clone());
        Runner::new(self.log.clone(), read_model)
    }

    /// Where each read model's checkpoint stands (`None`: it never ran here).
    pub async fn checkpoints(&self) -> Result<ByReadModel<Option<GlobalPosition>>, RunError> {
        let load = |name: &'static str| async move {
            self.tables
                .load_checkpoint(name)
                .await
                .map_err(|error| RunError::store(name, error))
        };
        Ok(ByReadModel {
            lead_search: load(LeadSearch::NAME).await?,
            status_log: load(StatusLog::NAME).await?,
        })
    }

    /// Brings both read models up to the log as it is now, and returns.
    pub async fn catch_up(&self) -> Result<ByReadModel<Progress>, RunError> {
        Ok(ByReadModel {
            lead_search: self.lead_search().catch_up().await?,
            status_log: self.status_log().catch_up().await?,
        })
    }

    /// Starts both runners on tasks of the current tokio runtime (call it inside one): they
    /// catch up, then follow the log as it grows, until [`Following::stop`] (or until the
    /// `Following` is dropped).
    pub fn follow(&self) -> Following {
        let (stop, stopped) = watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                // A dropped `Following` stops the runners as well as `stop` does.
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let lead_search = self.lead_search();
        let status_log = self.status_log();
        let progress = ByReadModel {
            lead_search: lead_search.progress(),
            status_log: status_log.progress(),
        };
        let (lead_search_stopped, status_log_stopped) = (until_stopped(), until_stopped());
        let lead_search =
            tokio::spawn(async move { lead_search.run(lead_search_stopped).await.map(drop) });
        let status_log =
            tokio::spawn(async move { status_log.run(status_log_stopped).await.map(drop) });
        Following {
            progress,
            stop,
            tasks: ByReadModel {
                lead_search,
                status_log,
            },
        }
    }

    /// Rebuilds [`LeadSearch`] from the whole log into `lead_search_new`, beside the live
    /// table, under the checkpoint `lead_search_rebuild`, `batch_size` events per transaction,
    /// calling `on_batch` with the progress after each; then switches it in
    /// ([`SwitchReadModel::switch_read_model`]): in one transaction the rebuilt table takes
    /// the live one's place and its checkpoint becomes `lead_search`'s.
    ///
    /// The live table serves queries, whole, until the switch. Stop a live runner of
    /// `lead_search` first ([`Following::stop`]): one left running stops at its next batch
    /// rather than write into the rebuilt table. A rebuild cut short resumes from its own
    /// checkpoint on the next call.
    pub async fn rebuild_lead_search(
        &self,
        batch_size: usize,
        mut on_batch: impl FnMut(&Progress),
    ) -> Result<Rebuilt, RunError> {
        let projection = LeadSearch::in_table(REBUILD_TABLE);
        let read_model = SqliteReadModel::new(projection, self.tables.clone()).named(REBUILD_NAME);
        let mut runner = Runner::new(self.log.clone(), read_model).batch_size(batch_size);
        let mut batches = 0;
        let done = runner
            .catch_up_with(|progress| {
                batches += 1;
                on_batch(progress);
            })
            .await?;
        let events = done.handled;
        let position = self
            .tables
            .switch_read_model(
                REBUILD_NAME,
                LeadSearch::NAME,
                &LeadSearch::swap_sql(REBUILD_TABLE, LeadSearch::TABLE),
            )
            .await
            .map_err(|error| RunError::store(LeadSearch::NAME, error))?;
        Ok(Rebuilt {
            batches,
            events,
            position,
        })
    }
}

/// The table a rebuild of [`LeadSearch`] writes before it is switched in.
pub const REBUILD_TABLE: &str = "lead_search_new";

/// The checkpoint a rebuild of [`LeadSearch`] keeps until it is switched in.
pub const REBUILD_NAME: &str = "lead_search_rebuild";

/// How long [`tell_with_read_models`] waits for the read models to see the story's last
/// append: far longer than they take, short enough to end a demo that hangs.
pub const WAIT: Duration = Duration::from_secs(10);

/// What [`LeadReadModels::rebuild_lead_search`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// Batches (transactions) it took.
    pub batches: u64,
    /// Events it applied.
    pub events: u64,
    /// Where `lead_search`'s checkpoint stands after the switch.
    pub position: GlobalPosition,
}

/// Both read models' runners, following the log live ([`LeadReadModels::follow`]).
#[derive(Debug)]
pub struct Following {
    progress: ByReadModel<ProgressWatch>,
    stop: watch::Sender<bool>,
    tasks: ByReadModel<JoinHandle<RunnerOutcome>>,
}

type RunnerOutcome = Result<(), RunError>;

impl Following {
    /// Where each runner has got.
    pub fn progress(&self) -> ByReadModel<Progress> {
        ByReadModel {
            lead_search: self.progress.lead_search.get(),
            status_log: self.progress.status_log.get(),
        }
    }

    /// Read-your-writes: waits until both read models have handled everything up to
    /// `position` (a command's [`Committed::global_position`](eventsrc::Committed), the log's
    /// head), each at most `timeout`. `None` (a no-op command) has nothing to wait for.
    pub async fn wait_for(
        &self,
        position: impl Into<Option<GlobalPosition>>,
        timeout: Duration,
    ) -> Result<(), RunError> {
        let position = position.into();
        self.progress
            .lead_search
            .wait_for(position, timeout)
            .await?;
        self.progress.status_log.wait_for(position, timeout).await
    }

    /// Stops both runners after the batch each is on, and returns where they got. A runner
    /// that failed returns its error.
    pub async fn stop(self) -> Result<ByReadModel<Progress>, RunError> {
        // Both runners may have stopped already, on an error; then there is nobody to tell.
        let _ = self.stop.send(true);
        let joined = |name: &'static str| {
            move |result: Result<RunnerOutcome, tokio::task::JoinError>| {
                result
                    .map_err(|error| RunError::store(name, eventsrc::StoreError::backend(error)))?
            }
        };
        let Self {
            progress, tasks, ..
        } = self;
        joined(LeadSearch::NAME)(tasks.lead_search.await)?;
        joined(StatusLog::NAME)(tasks.status_log.await)?;
        // The watches keep the last progress their runners sent.
        Ok(ByReadModel {
            lead_search: progress.lead_search.get(),
            status_log: progress.status_log.get(),
        })
    }
}
