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
}

impl std::fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            clock: Arc::new(SystemClock),
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
    /// SQLite refused (not a database, no permission, ...).
    #[error("cannot open the SQLite database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread could not start.
    #[error("cannot start the SQLite writer thread: {0}")]
    Thread(#[from] std::io::Error),
}

impl From<OpenError> for StoreError {
    fn from(error: OpenError) -> Self {
        StoreError::backend(error)
    }
}
