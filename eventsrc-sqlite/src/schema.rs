//! The database schema, versioned with `PRAGMA user_version`: created and migrated on open, or
//! managed outside the store.
//!
//! By default, opening a store creates the schema in a new file and migrates an older one.
//! A team that manages its DDL itself opens with
//! [`SqliteOptions::migrate(false)`](crate::SqliteOptions::migrate) (or `?migrate=false` in a
//! store URL): the store then only reads the version, and refuses a schema that is not
//! [`CURRENT`] with [`OpenError::SchemaNotCurrent`], changing nothing. The schema is made
//! beforehand, either by running the SQL of [`ddl`] (what `eventsrc schema` prints), or by
//! [`SqliteEventStore::migrate`](crate::SqliteEventStore::migrate) (what `eventsrc migrate`
//! runs), which applies the migrations of [`migrate`] and says what it did ([`Migrated`]).

use std::fmt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::{OpenError, SqliteEventStore};

/// The schema version this build writes.
pub const CURRENT: u32 = 4;

/// Migration `i` takes the schema from version `i` to `i + 1`. Never edit a shipped entry:
/// append a new one.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: events, snapshots, checkpoints.
    "
    CREATE TABLE events (
        position        INTEGER PRIMARY KEY,
        commit_seq      INTEGER NOT NULL,
        tenant          TEXT    NOT NULL,
        stream          TEXT    NOT NULL,
        category        TEXT    NOT NULL,
        stream_version  INTEGER NOT NULL,
        event_id        BLOB    NOT NULL UNIQUE,
        event_type      TEXT    NOT NULL,
        schema_version  INTEGER NOT NULL,
        payload         TEXT    NOT NULL,
        metadata        TEXT,
        recorded_at     INTEGER NOT NULL,
        UNIQUE (tenant, stream, stream_version)
    );
    CREATE INDEX events_by_tenant ON events (tenant, position);
    CREATE TABLE snapshots (
        tenant          TEXT    NOT NULL,
        stream          TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        state_version   INTEGER NOT NULL,
        payload         TEXT    NOT NULL,
        taken_at        INTEGER NOT NULL,
        PRIMARY KEY (tenant, stream)
    ) WITHOUT ROWID;
    CREATE TABLE checkpoints (
        tenant          TEXT    NOT NULL,
        subscriber      TEXT    NOT NULL,
        commit_seq      INTEGER NOT NULL,
        sequence        INTEGER NOT NULL,
        PRIMARY KEY (tenant, subscriber)
    ) WITHOUT ROWID;
    ",
    // 1 → 2: events reactors parked, each kept whole so that it can be replayed; a generation
    // on checkpoints, bumped when a rebuilt read model is switched in under a live name, so
    // that a runner started before the switch cannot write into the new tables.
    "
    CREATE TABLE parked (
        tenant          TEXT    NOT NULL,
        reactor         TEXT    NOT NULL,
        event_id        BLOB    NOT NULL,
        position        INTEGER NOT NULL,
        commit_seq      INTEGER NOT NULL,
        stream          TEXT    NOT NULL,
        stream_version  INTEGER NOT NULL,
        event_type      TEXT    NOT NULL,
        schema_version  INTEGER NOT NULL,
        payload         TEXT    NOT NULL,
        metadata        TEXT,
        recorded_at     INTEGER NOT NULL,
        error           TEXT    NOT NULL,
        attempts        INTEGER NOT NULL,
        parked_at       INTEGER NOT NULL,
        PRIMARY KEY (tenant, reactor, event_id)
    );
    CREATE INDEX parked_in_order ON parked (tenant, reactor, position);
    ALTER TABLE checkpoints ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
    ",
    // 2 → 3: document views' documents, and their indexed values, one row per value (an
    // array field gives one per element), found by (view, field, value) and replaced by id.
    "
    CREATE TABLE documents (
        tenant          TEXT    NOT NULL,
        view            TEXT    NOT NULL,
        id              TEXT    NOT NULL,
        body            TEXT    NOT NULL,
        PRIMARY KEY (tenant, view, id)
    ) WITHOUT ROWID;
    CREATE TABLE document_index (
        tenant          TEXT    NOT NULL,
        view            TEXT    NOT NULL,
        field           TEXT    NOT NULL,
        value           TEXT    NOT NULL,
        id              TEXT    NOT NULL,
        PRIMARY KEY (tenant, view, field, value, id)
    ) WITHOUT ROWID;
    CREATE INDEX document_index_by_id ON document_index (tenant, view, id);
    ",
    // 3 → 4: events moved out of the log by a soft delete or a truncation, kept whole (with
    // when they were moved) so that they can be read back in version order; and, per tenant,
    // the position of the last event truncation removed, which readers of the log behind it
    // check. Event ids are not unique here: once removed, a batch may be appended again.
    "
    CREATE TABLE archived_events (
        position        INTEGER PRIMARY KEY,
        commit_seq      INTEGER NOT NULL,
        tenant          TEXT    NOT NULL,
        stream          TEXT    NOT NULL,
        category        TEXT    NOT NULL,
        stream_version  INTEGER NOT NULL,
        event_id        BLOB    NOT NULL,
        event_type      TEXT    NOT NULL,
        schema_version  INTEGER NOT NULL,
        payload         TEXT    NOT NULL,
        metadata        TEXT,
        recorded_at     INTEGER NOT NULL,
        archived_at     INTEGER NOT NULL,
        UNIQUE (tenant, stream, stream_version)
    );
    CREATE TABLE truncations (
        tenant          TEXT    NOT NULL PRIMARY KEY,
        commit_seq      INTEGER NOT NULL,
        position        INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
];

/// What a migration did: the schema's version before it, and after.
///
/// Its [`Display`](fmt::Display) says it in words: `created the schema at version 4`,
/// `migrated the schema from version 1 to version 4`, `the schema is at version 4 already`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migrated {
    /// The version found: 0 for a database without the schema.
    pub from: u32,
    /// The version now: [`CURRENT`].
    pub to: u32,
}

impl Migrated {
    /// Whether a migration ran, `from` being older than `to`.
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

impl fmt::Display for Migrated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { from, to } = *self;
        match from {
            _ if from == to => write!(f, "the schema is at version {to} already"),
            0 => write!(f, "created the schema at version {to}"),
            _ => write!(f, "migrated the schema from version {from} to version {to}"),
        }
    }
}

/// The SQL that creates the schema of this build ([`CURRENT`]) in an empty database, and
/// records its version (`PRAGMA user_version`): every migration in turn, as opening a new
/// file runs them, so that the database is the one a store would have created.
///
/// For a team that manages its DDL itself: run it once, in one transaction, on the new
/// database (it creates the tables, so it fails on one that has them), then open the store
/// with [`SqliteOptions::migrate(false)`](crate::SqliteOptions::migrate). `eventsrc schema`
/// prints it.
///
/// ```
/// use eventsrc_sqlite::rusqlite::Connection;
/// use eventsrc_sqlite::{SCHEMA_VERSION, schema};
///
/// let sql = schema::ddl();
/// assert!(sql.contains("CREATE TABLE events"));
/// assert!(sql.contains(&format!("PRAGMA user_version = {SCHEMA_VERSION};")));
///
/// let conn = Connection::open_in_memory()?;
/// conn.execute_batch(&format!("BEGIN; {sql} COMMIT;"))?;
/// let version: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
/// assert_eq!(version, SCHEMA_VERSION);
/// # Ok::<(), eventsrc_sqlite::rusqlite::Error>(())
/// ```
pub fn ddl() -> String {
    ddl_up_to(CURRENT)
}

/// The SQL of the first `version` migrations (at most [`CURRENT`]), recording `version`: for
/// tests that make an older schema. Not part of the API.
#[doc(hidden)]
pub fn ddl_up_to(version: u32) -> String {
    let version = version.min(CURRENT);
    let mut sql = format!(
        "-- The eventsrc-sqlite schema, version {version}, created from nothing: what opening a \
         new database creates.\n\
         -- Run it once, in one transaction, on an empty database; the store then opens it with \
         migrate(false).\n"
    );
    for from in 0..version {
        sql.push_str(&format!(
            "\n-- Version {}.\n{}\n",
            from + 1,
            migration(from)
        ));
    }
    sql.push('\n');
    sql.push_str(&set_version(version));
    sql.push('\n');
    sql
}

/// The SQL of the migration from `version` to the next, as [`migrate`] runs it and [`ddl`]
/// prints it: the entry of [`MIGRATIONS`] without its indentation.
fn migration(version: u32) -> String {
    let lines: Vec<&str> = MIGRATIONS[version as usize]
        .trim()
        .lines()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect();
    lines.join("\n")
}

/// The statement that records the schema's version.
fn set_version(version: u32) -> String {
    format!("PRAGMA user_version = {version};")
}

/// The schema version of the database `conn` is open on: 0 without the schema.
fn version(conn: &Connection) -> Result<u32, OpenError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the schema of the database `conn` is open on to [`CURRENT`], creating it in an
/// empty database, and says from which version. A database written by a newer build is
/// refused ([`OpenError::NewerSchema`]), and so is one already in a transaction.
///
/// This is what opening a store runs (unless [`SqliteOptions::migrate`] says not to); with a
/// path rather than a connection, [`SqliteEventStore::migrate`] opens the file for it. The
/// migrations run in one `IMMEDIATE` transaction: two processes migrating one file migrate in
/// turn, and the second finds the work done.
///
/// [`SqliteOptions::migrate`]: crate::SqliteOptions::migrate
///
/// ```
/// use eventsrc_sqlite::rusqlite::Connection;
/// use eventsrc_sqlite::{SCHEMA_VERSION, schema};
///
/// let mut conn = Connection::open_in_memory()?;
/// let migrated = schema::migrate(&mut conn)?;
/// assert_eq!((migrated.from, migrated.to), (0, SCHEMA_VERSION));
/// assert!(!schema::migrate(&mut conn)?.changed());
/// # Ok::<(), eventsrc_sqlite::OpenError>(())
/// ```
pub fn migrate(conn: &mut Connection) -> Result<Migrated, OpenError> {
    // IMMEDIATE takes the write lock first, so two processes opening one file migrate in turn
    // and the second sees the first one's version.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = version(&tx)?;
    if found > CURRENT {
        return Err(OpenError::NewerSchema {
            found,
            supported: CURRENT,
        });
    }
    for version in found..CURRENT {
        tx.execute_batch(&migration(version))?;
        tracing::info!(
            from = version,
            to = version + 1,
            "migrated the eventsrc schema"
        );
    }
    if found < CURRENT {
        tx.execute_batch(&set_version(CURRENT))?;
    }
    tx.commit()?;
    Ok(Migrated {
        from: found,
        to: CURRENT,
    })
}

/// Refuses the database `conn` is open on unless its schema is [`CURRENT`], reading only.
pub(crate) fn check(conn: &Connection) -> Result<(), OpenError> {
    let found = version(conn)?;
    if found > CURRENT {
        Err(OpenError::NewerSchema {
            found,
            supported: CURRENT,
        })
    } else if found < CURRENT {
        Err(OpenError::SchemaNotCurrent {
            found,
            expected: CURRENT,
        })
    } else {
        Ok(())
    }
}

/// Opens the database file at `path` for a store that does not migrate: neither creating the
/// file nor writing to it, and only if its schema is [`CURRENT`] (a missing file has none).
pub(crate) fn open_current(path: &Path) -> Result<Connection, OpenError> {
    let flags = OpenFlags::default().difference(OpenFlags::SQLITE_OPEN_CREATE);
    let conn = match Connection::open_with_flags(path, flags) {
        Ok(conn) => conn,
        Err(_) if !path.exists() => {
            return Err(OpenError::SchemaNotCurrent {
                found: 0,
                expected: CURRENT,
            });
        }
        Err(error) => return Err(error.into()),
    };
    // Waits, as every connection of a store does, for a process holding the file's lock.
    crate::tune(&conn)?;
    check(&conn)?;
    Ok(conn)
}

/// Migrates an in-memory database, or only checks it when the store does not migrate.
pub(crate) fn prepare(conn: &mut Connection, migrate: bool) -> Result<(), OpenError> {
    match migrate {
        true => self::migrate(conn).map(drop),
        false => check(conn),
    }
}

impl SqliteEventStore {
    /// Brings the schema of the database file at `path` to this build's ([`CURRENT`]),
    /// creating the file (not its directory) and the schema if missing, and says what it did:
    /// the explicit migration, for stores opened with
    /// [`SqliteOptions::migrate(false)`](crate::SqliteOptions::migrate). `eventsrc migrate`
    /// runs it. The file is closed when it returns; stores open on it meanwhile are not
    /// disturbed (the migrations only add, in one transaction).
    ///
    /// A file written by a newer build is refused ([`OpenError::NewerSchema`]).
    ///
    /// ```
    /// use eventsrc_sqlite::{OpenError, SCHEMA_VERSION, SqliteEventStore, SqliteOptions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let path = std::env::temp_dir().join(format!("eventsrc-doc-migrate-{}.db", std::process::id()));
    /// # eventsrc_sqlite::remove_database(&path)?;
    /// let unmigrated = SqliteOptions::default().migrate(false);
    /// let refused = SqliteEventStore::open_with(&path, unmigrated.clone()).await;
    /// assert!(matches!(refused, Err(OpenError::SchemaNotCurrent { found: 0, .. })));
    ///
    /// let migrated = SqliteEventStore::migrate(&path).await?;
    /// assert_eq!((migrated.from, migrated.to), (0, SCHEMA_VERSION));
    /// let store = SqliteEventStore::open_with(&path, unmigrated).await?;
    /// # drop(store);
    /// # eventsrc_sqlite::remove_database(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn migrate(path: impl AsRef<Path>) -> Result<Migrated, OpenError> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = Connection::open(&path)?;
            crate::tune(&conn)?;
            migrate(&mut conn)
        })
        .await
        .map_err(|e| OpenError::Thread(std::io::Error::other(e)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_has_a_migration() {
        assert_eq!(MIGRATIONS.len(), CURRENT as usize);
    }

    /// A file written at version 1 (events and a checkpoint, no parked table) opens at the
    /// current version with its rows intact.
    #[test]
    fn a_version_1_file_migrates_forward_keeping_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO checkpoints (tenant, subscriber, commit_seq, sequence) \
             VALUES ('default', 'users', 3, 4)",
            [],
        )
        .unwrap();

        migrate(&mut conn).unwrap();

        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, CURRENT);
        let checkpoint: (i64, i64, i64) = conn
            .query_row(
                "SELECT commit_seq, sequence, generation FROM checkpoints WHERE subscriber = 'users'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(checkpoint, (3, 4, 0));
        // The tables of the later versions are there, and empty.
        for table in [
            "parked",
            "documents",
            "document_index",
            "archived_events",
            "truncations",
        ] {
            let rows: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, 0, "{table}");
        }
        // Opening again is a no-op.
        migrate(&mut conn).unwrap();
    }
}
