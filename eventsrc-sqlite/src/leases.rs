//! Leadership among the runners of one process.
//!
//! An embedded database file belongs to one application process: SQLite has no sessions to
//! hang a lease on that would end when another process dies. So leases are held in memory,
//! shared by every store this process opens on the same file (two `open` calls of one path
//! compete for the same names). Runners of another process on the same file are not excluded
//! by them; their checkpoints still fence each other, since every read model batch checks its
//! checkpoint under SQLite's write lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use eventsrc_core::backend::{Lease, Leases, LocalLeases};

use eventsrc_core::StoreError;

use crate::SqliteEventStore;

/// The leases of every file this process opened, by canonical path. An entry is a few bytes
/// and lives as long as the process.
fn files() -> &'static Mutex<HashMap<PathBuf, LocalLeases>> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, LocalLeases>>> = OnceLock::new();
    FILES.get_or_init(Mutex::default)
}

/// The leases shared by every store of this process open on `path` (which exists by now).
pub fn of_file(path: &Path) -> LocalLeases {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    files()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone()
}

/// Leases among the runners of this process, per tenant: a name taken through one tenant's
/// handle is free in another's. See the crate docs: an embedded file is one application
/// process.
///
/// ```
/// use eventsrc::Tenants;
/// use eventsrc::backend::Leases;
/// use eventsrc_sqlite::SqliteEventStore;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = SqliteEventStore::open_in_memory().await?;
/// let lease = store.try_acquire("users").await?.expect("free");
/// assert!(store.try_acquire("users").await?.is_none()); // held
/// assert!(store.with_tenant("acme".into()).try_acquire("users").await?.is_some());
/// drop(lease);
/// assert!(store.try_acquire("users").await?.is_some()); // released
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl Leases for SqliteEventStore {
    async fn try_acquire(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let scoped = format!("{}/{name}", self.tenant);
        Ok(self.shared.leases.try_acquire_now(&scoped))
    }
}
