//! [`SqliteKeyStore`]: the data subjects' keys of crypto-shredding in a SQLite table
//! (feature `encryption`).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use eventsrc_core::Tenant;
use eventsrc_core::personal::{KeyError, KeyFuture, KeyStore, SubjectKey};
use rusqlite::{Connection, OptionalExtension, params};

/// The key table's DDL: [`SqliteKeyStore::ddl`].
const DDL: &str = "CREATE TABLE IF NOT EXISTS eventsrc_subject_keys (
    tenant TEXT NOT NULL,
    subject TEXT NOT NULL,
    key_id INTEGER NOT NULL,
    secret BLOB NOT NULL CHECK (length(secret) = 32),
    PRIMARY KEY (tenant, subject)
)";

/// The keys of crypto-shredding ([`eventsrc::personal`](eventsrc_core::personal)) in a SQLite
/// table of their own, `eventsrc_subject_keys`, created when the key store opens. It keeps its
/// own connection: open it on the store's file (one file to back up, and to lose together) or,
/// better, on another file kept apart from the events.
///
/// **Forgetting really removes the key.** The connection runs with `PRAGMA secure_delete =
/// ON`, so SQLite overwrites a deleted key's bytes with zeros in the page instead of leaving
/// them in free space; in WAL mode a forget then checkpoints with `TRUNCATE`, so the write-ahead
/// log that held the key's pages is emptied (when a reader holds an old snapshot of the
/// database open, the checkpoint cannot finish and the log is truncated at a later forget or
/// checkpoint). Backups taken before the forget still hold the key: expire them.
///
/// ```
/// use eventsrc::personal::{Encrypted, KeyStore};
/// use eventsrc::sqlite::{SqliteEventStore, SqliteKeyStore};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let events = SqliteEventStore::open_temporary().await?;
/// let keys = SqliteKeyStore::open_in_memory().await?;
/// let store = Encrypted::new(events, keys);
/// let key = store.keys().key_or_create(&Default::default(), "user-7").await?;
/// assert_eq!(store.keys().key(&Default::default(), "user-7").await?, Some(key));
/// assert!(store.forget("user-7").await?);
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SqliteKeyStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteKeyStore {
    /// Opens (creating if missing) the database at `path` and its key table.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref().to_owned();
        Self::opened(move || Connection::open(path)).await
    }

    /// Keys in a private in-memory database: gone with the key store.
    pub async fn open_in_memory() -> Result<Self, KeyError> {
        Self::opened(Connection::open_in_memory).await
    }

    async fn opened(
        open: impl FnOnce() -> rusqlite::Result<Connection> + Send + 'static,
    ) -> Result<Self, KeyError> {
        let conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
            let conn = open()?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "secure_delete", "ON")?;
            conn.execute_batch(DDL)?;
            Ok(conn)
        })
        .await
        .map_err(KeyError::backend)?
        .map_err(KeyError::backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The DDL of the key table, which [`open`](Self::open) runs itself: for teams that
    /// manage their schema themselves. Idempotent (`IF NOT EXISTS`).
    ///
    /// ```
    /// let ddl = eventsrc::sqlite::SqliteKeyStore::ddl();
    /// assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS eventsrc_subject_keys"));
    /// ```
    pub fn ddl() -> &'static str {
        DDL
    }

    /// Runs `job` on the connection: in place on a multi-threaded runtime (as the store's
    /// reads do), else on the blocking pool.
    fn run<'a, T: Send + 'static>(
        &'a self,
        job: impl FnOnce(&Connection) -> Result<T, KeyError> + Send + 'static,
    ) -> KeyFuture<'a, T> {
        let conn = Arc::clone(&self.conn);
        let locked = move || job(&conn.lock().unwrap_or_else(PoisonError::into_inner));
        Box::pin(async move {
            if crate::may_block_in_place() {
                tokio::task::block_in_place(locked)
            } else {
                tokio::task::spawn_blocking(locked)
                    .await
                    .map_err(KeyError::backend)?
            }
        })
    }
}

fn select(conn: &Connection, tenant: &str, subject: &str) -> Result<Option<SubjectKey>, KeyError> {
    let row = conn
        .prepare_cached(
            "SELECT key_id, secret FROM eventsrc_subject_keys WHERE tenant = ?1 AND subject = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![tenant, subject], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
                })
                .optional()
        })
        .map_err(KeyError::backend)?;
    let Some((id, secret)) = row else {
        return Ok(None);
    };
    let secret: [u8; 32] = secret
        .try_into()
        .map_err(|bytes: Vec<u8>| KeyError::Corrupt {
            subject: subject.to_owned(),
            reason: format!("the secret is {} bytes, not 32", bytes.len()),
        })?;
    Ok(Some(SubjectKey::from_parts(id as u64, secret)))
}

impl KeyStore for SqliteKeyStore {
    fn key<'a>(
        &'a self,
        tenant: &'a Tenant,
        subject: &'a str,
    ) -> KeyFuture<'a, Option<SubjectKey>> {
        let (tenant, subject) = (tenant.as_str().to_owned(), subject.to_owned());
        self.run(move |conn| select(conn, &tenant, &subject))
    }

    fn key_or_create<'a>(
        &'a self,
        tenant: &'a Tenant,
        subject: &'a str,
    ) -> KeyFuture<'a, SubjectKey> {
        let (tenant, subject) = (tenant.as_str().to_owned(), subject.to_owned());
        self.run(move |conn| {
            if let Some(key) = select(conn, &tenant, &subject)? {
                return Ok(key);
            }
            let new = SubjectKey::generate();
            // Another process may have made one meanwhile: theirs wins, and is read back.
            conn.prepare_cached(
                "INSERT INTO eventsrc_subject_keys (tenant, subject, key_id, secret) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, subject) DO NOTHING",
            )
            .and_then(|mut statement| {
                statement.execute(params![tenant, subject, new.id() as i64, &new.secret()[..]])
            })
            .map_err(KeyError::backend)?;
            select(conn, &tenant, &subject)?.ok_or_else(|| KeyError::Corrupt {
                subject: subject.clone(),
                reason: "the key was stored but does not read back".to_owned(),
            })
        })
    }

    fn forget<'a>(&'a self, tenant: &'a Tenant, subject: &'a str) -> KeyFuture<'a, bool> {
        let (tenant, subject) = (tenant.as_str().to_owned(), subject.to_owned());
        self.run(move |conn| {
            let deleted = conn
                .execute(
                    "DELETE FROM eventsrc_subject_keys WHERE tenant = ?1 AND subject = ?2",
                    params![tenant, subject],
                )
                .map_err(KeyError::backend)?;
            // In WAL mode, move the zeroed pages into the file and empty the log, which still
            // holds the pages that had the key. (A no-op in the other journal modes.)
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |row| row.get(0))
                .map_err(KeyError::backend)?;
            if mode.eq_ignore_ascii_case("wal") {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .map_err(KeyError::backend)?;
            }
            Ok(deleted > 0)
        })
    }
}
