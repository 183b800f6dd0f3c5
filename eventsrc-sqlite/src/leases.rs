//! Leadership among runners ([`Leases`]) on a SQLite file, across processes.
//!
//! A lease on a file-backed store is an exclusive OS file lock (`File::try_lock`: `flock` on
//! Unix, `LockFileEx` on Windows) on a file of its own, in a directory beside the database
//! (`events.db-leases/` for `events.db`). The lock belongs to an open file, so the operating
//! system releases it when the file is closed, whatever closes it: the lease dropped, the
//! process exiting, or the process killed (`kill -9` included), with no timeout to wait out
//! and no clock to trust. A lease row with a heartbeat would have to wait out a dead holder's
//! expiry, and a live holder stalled past that expiry (a long pause, a suspended laptop)
//! would lead beside its successor until it noticed. The lock reaches exactly as far as
//! SQLite's own locks do: processes of one machine (WAL mode already needs shared memory, so
//! a database on a network share is not supported either way).
//!
//! Lock files are never deleted, because deleting one while another process is about to lock
//! it would let two holders lock two different files of the same name. A held lease checks
//! every [`WATCH`] that its file is still the one at its path: if someone removed or replaced
//! it (the directory cleaned up under a running application), another process could lock the
//! new file, so the lease reports itself lost ([`Lease::lost`]). Files are opened
//! close-on-exec (as `std` opens every file), so a child process does not inherit a lock.
//! Runners also fence every read
//! model batch with its checkpoint under SQLite's write lock, so even then no batch is applied
//! twice.
//!
//! Within a process, leases are first taken in memory ([`LocalLeases`], shared by every store
//! of the process open on the same file), so a name held here is refused without touching
//! the disk. An in-memory database is private to its process, and so are its leases.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use eventsrc_core::backend::{Lease, Leases, LocalLeases};
use eventsrc_core::{StoreError, Tenant};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::SqliteEventStore;

/// How often a held lease checks that its lock file is still in place.
pub(crate) const WATCH: Duration = Duration::from_secs(1);

/// The leases of a store: locked files beside a database file, or memory for an in-memory
/// database.
#[derive(Debug, Clone)]
pub(crate) enum StoreLeases {
    /// An in-memory database: leases among the runners of this process.
    InMemory(LocalLeases),
    /// A database file: leases among every process on the machine.
    File(FileLeases),
}

/// Leases of one database file: held in memory for this process, and locked on disk for
/// the others.
#[derive(Debug, Clone)]
pub(crate) struct FileLeases {
    local: LocalLeases,
    /// The directory of the lock files.
    dir: PathBuf,
}

/// The leases of every file this process opened, by canonical path. An entry is a few bytes
/// and lives as long as the process.
fn files() -> &'static Mutex<HashMap<PathBuf, LocalLeases>> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, LocalLeases>>> = OnceLock::new();
    FILES.get_or_init(Mutex::default)
}

/// The leases of the database file at `path` (which exists by now): shared in memory by
/// every store of this process open on it, and locked in `<file>-leases/` beside it.
pub(crate) fn of_file(path: &Path) -> StoreLeases {
    // Canonical, so that two processes opening the file through different paths (relative,
    // through a link) lock the same files.
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let dir = dir_of(&key);
    let local = files()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone();
    StoreLeases::File(FileLeases { local, dir })
}

/// The leases directory beside the database file at `path`: `<file>-leases/`.
pub(crate) fn dir_of(path: &Path) -> PathBuf {
    let mut dir = path.as_os_str().to_owned();
    dir.push("-leases");
    PathBuf::from(dir)
}

/// The name a lease of `tenant` is held under: the tenant prefixed by its length, so that no
/// two (tenant, name) pairs spell the same text.
fn scoped(tenant: &Tenant, name: &str) -> String {
    let tenant = tenant.as_str();
    format!("{}:{tenant}/{name}", tenant.len())
}

/// Lease names longer than this (once escaped) are shortened to a prefix and a hash, to stay
/// well within file name limits.
const LONGEST_FILE_NAME: usize = 120;

/// The lock file name of the scoped lease `name`: lowercase ASCII letters, digits, `-` and
/// `_` as they are, every other byte as `%XX`, so that distinct names give distinct files even
/// on a file system that ignores case. A long name keeps a prefix and gains a 128-bit hash of
/// the whole.
fn file_name(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len() + 5);
    for byte in name.bytes() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => escaped.push(char::from(byte)),
            _ => escaped.push_str(&format!("%{byte:02X}")),
        }
    }
    if escaped.len() > LONGEST_FILE_NAME {
        // Cut at a character boundary: the escaped text is ASCII.
        escaped.truncate(LONGEST_FILE_NAME - 40);
        escaped.push_str(&format!("~{:032x}", fnv1a_128(name.as_bytes())));
    }
    escaped.push_str(".lock");
    escaped
}

/// FNV-1a, 128 bits: a hash every build computes the same, unlike `std`'s hashers, since
/// processes of different builds must agree on lock file names.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes.iter().fold(OFFSET, |hash, &byte| {
        (hash ^ u128::from(byte)).wrapping_mul(PRIME)
    })
}

/// A lease could not be tried: its lock file could not be created, opened or locked.
#[derive(Debug, thiserror::Error)]
#[error("cannot lock `{}` for the lease `{name}`: {source}", path.display())]
struct LockFileError {
    name: String,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl FileLeases {
    async fn try_acquire(&self, name: String) -> Result<Option<Lease>, StoreError> {
        let Some(local) = self.local.try_acquire_now(&name) else {
            return Ok(None);
        };
        let path = self.dir.join(file_name(&name));
        let dir = self.dir.clone();
        let locked = tokio::task::spawn_blocking(move || {
            let failed = |source| LockFileError {
                name,
                path: path.clone(),
                source,
            };
            lock(&dir, &path)
                .map(|locked| locked.map(|(file, identity)| (file, identity, path.clone())))
                .map_err(failed)
        })
        .await
        .map_err(StoreError::backend)?
        .map_err(StoreError::backend)?;
        let Some((file, identity, path)) = locked else {
            return Ok(None);
        };
        let (held, receiver) = watch::channel(true);
        let watcher = tokio::spawn(watch_file(identity, path, held));
        Ok(Some(Lease::new(
            receiver,
            Release {
                _file: file,
                _local: local,
                watcher: watcher.abort_handle(),
            },
        )))
    }
}

/// Locks the file at `path` (creating it and `dir` as needed): the locked file and what it
/// is, or `None` if another holder has it locked.
fn lock(dir: &Path, path: &Path) -> std::io::Result<Option<(File, Identity)>> {
    std::fs::create_dir_all(dir)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    // Someone may have removed the file between our open and our lock, and another process
    // locked a new one since: then this lock excludes nobody.
    let identity = Identity::of(&file.metadata()?);
    Ok(identity.still_at(path).then_some((file, identity)))
}

/// What tells one file from another at the same path: device and inode on Unix. Elsewhere
/// (Windows) `std` offers no stable file identity, so only a removed file is noticed, not one
/// replaced by another of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity(Option<(u64, u64)>);

impl Identity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self(Some((metadata.dev(), metadata.ino())))
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            Self(None)
        }
    }

    /// Whether the file at `path` is still this one (not removed, not replaced).
    fn still_at(self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|there| there.is_file() && Self::of(&there) == self)
    }
}

/// Says when the file at the lease's path is no longer the locked one. It holds no file: the
/// lease's [`Release`] does, so that dropping the lease unlocks at once, whether or not the
/// runtime gets to run this task again.
async fn watch_file(identity: Identity, path: PathBuf, held: watch::Sender<bool>) {
    let mut tick = tokio::time::interval(WATCH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !identity.still_at(&path) {
            tracing::warn!(lock = %path.display(), "the lease's lock file was removed or replaced; the lease is lost");
            held.send_replace(false);
            return;
        }
    }
}

/// Releases a lease when dropped: closes (and so unlocks) the lock file, frees the name in
/// this process and stops the watcher.
struct Release {
    _file: File,
    _local: Lease,
    watcher: AbortHandle,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// Leases per tenant: a name taken through one tenant's handle is free in another's. On a
/// database file, a lease excludes every process of the machine that opens the same file,
/// and is released when dropped or when its process ends, however it ends (see the crate
/// docs). In memory, leases are this process's alone, like the database.
///
/// ```
/// use eventsrc::Tenants;
/// use eventsrc::backend::Leases;
/// use eventsrc_sqlite::SqliteEventStore;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = SqliteEventStore::open_temporary().await?;
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
        let scoped = scoped(&self.tenant, name);
        match &self.shared.leases {
            StoreLeases::InMemory(local) => Ok(local.try_acquire_now(&scoped)),
            StoreLeases::File(file) => file.try_acquire(scoped).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_names_keep_names_apart_whatever_their_case_or_length() {
        assert_eq!(file_name("0:/users"), "0%3A%2Fusers.lock");
        assert_ne!(file_name("0:/Users"), file_name("0:/users"));
        assert_ne!(
            scoped(&Tenant::new("a/b"), "c"),
            scoped(&Tenant::new("a"), "b/c")
        );
        let long = "x".repeat(500);
        let longer = format!("{long}y");
        assert!(file_name(&long).len() <= LONGEST_FILE_NAME + ".lock".len());
        assert_ne!(file_name(&long), file_name(&longer));
        assert!(file_name(&"é".repeat(100)).is_ascii());
    }
}
