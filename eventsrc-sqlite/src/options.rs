//! How to open a store ([`SqliteOptions`], [`Durability`]), and what goes wrong opening
//! ([`OpenError`]).

use std::sync::Arc;

use eventsrc_core::StoreError;
use eventsrc_core::time::{Clock, SystemClock};

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged append survives a power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a crash of the application; a power loss or OS crash may
    /// lose the most recent commits (the file stays consistent). Faster single appends.
    Normal,
}

/// How to open a store.
#[derive(Clone)]
#[must_use = "options do nothing until passed to `SqliteEventStore::open_with`"]
pub struct SqliteOptions {
    pub(crate) durability: Durability,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) migrate: bool,
}

impl std::fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("durability", &self.durability)
            .field("migrate", &self.migrate)
            .finish_non_exhaustive()
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            clock: Arc::new(SystemClock),
            migrate: true,
        }
    }
}

impl SqliteOptions {
    /// The durability of commits (default [`Durability::Full`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Where `recorded_at` comes from (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Whether opening creates the schema in a new database and migrates an older one
    /// (default `true`).
    ///
    /// `false` is for a team that manages its DDL itself: opening then reads the schema
    /// version and nothing else, and fails with [`OpenError::SchemaNotCurrent`] unless it is
    /// this build's ([`SCHEMA_VERSION`](crate::SCHEMA_VERSION)); a missing file is not
    /// created, and a database found wanting is left as it was. The schema is made beforehand
    /// by running the SQL of [`schema::ddl`](crate::schema::ddl) (`eventsrc schema`) or by
    /// [`SqliteEventStore::migrate`](crate::SqliteEventStore::migrate) (`eventsrc migrate`).
    /// A schema written by a newer build is [`OpenError::NewerSchema`] either way. A store
    /// URL says it with `?migrate=false`.
    ///
    /// ```
    /// use eventsrc_sqlite::rusqlite::Connection;
    /// use eventsrc_sqlite::{SqliteEventStore, SqliteOptions, schema};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let path = std::env::temp_dir().join(format!("eventsrc-doc-ddl-{}.db", std::process::id()));
    /// # eventsrc_sqlite::remove_database(&path)?;
    /// // The DBA's part, once.
    /// Connection::open(&path)?.execute_batch(&format!("BEGIN; {} COMMIT;", schema::ddl()))?;
    ///
    /// // The application's, on every start.
    /// let store = SqliteEventStore::open_with(&path, SqliteOptions::default().migrate(false)).await?;
    /// # drop(store);
    /// # eventsrc_sqlite::remove_database(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }
}

/// Opening a database failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file was written by a newer eventsrc-sqlite.
    #[error(
        "the database has schema version {found}, written by a newer eventsrc-sqlite; this build reads up to version {supported}"
    )]
    NewerSchema {
        /// The file's schema version.
        found: u32,
        /// The newest this build knows.
        supported: u32,
    },
    /// The store was opened without migrating ([`SqliteOptions::migrate(false)`](SqliteOptions::migrate),
    /// `?migrate=false`) and the database's schema is older than this build's, or missing
    /// (`found` 0, a missing file too). Nothing was changed: migrate it
    /// ([`SqliteEventStore::migrate`](crate::SqliteEventStore::migrate), `eventsrc migrate`),
    /// or, for a new database, run the SQL of [`schema::ddl`](crate::schema::ddl).
    #[error("{}", not_current(*found, *expected))]
    SchemaNotCurrent {
        /// The database's schema version: 0 without the schema.
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// SQLite refused (not a database, no permission, ...).
    #[error("cannot open the SQLite database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread could not start.
    #[error("cannot start the SQLite writer thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// What [`OpenError::SchemaNotCurrent`] says: what was found, and what to do.
fn not_current(found: u32, expected: u32) -> String {
    let opened =
        "the store was opened with `migrate(false)` (`?migrate=false`), so nothing was changed";
    let migrate = "run the migrations (`eventsrc migrate --store <URL>`)";
    if found == 0 {
        format!(
            "the database has no eventsrc schema (this build needs version {expected}) and {opened}: \
             {migrate}, or apply the DDL that `eventsrc schema` prints"
        )
    } else {
        format!(
            "the database has schema version {found}, older than this build's {expected}, and \
             {opened}: {migrate}"
        )
    }
}

impl From<OpenError> for StoreError {
    fn from(error: OpenError) -> Self {
        StoreError::backend(error)
    }
}
