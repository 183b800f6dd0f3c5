//! The database schema, versioned with `PRAGMA user_version` and migrated on open.

use rusqlite::{Connection, TransactionBehavior};

use crate::OpenError;

/// The schema version this build writes.
pub const CURRENT: u32 = 3;

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
];

/// Brings the schema to [`CURRENT`], refusing a file written by a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    // IMMEDIATE takes the write lock first, so two processes opening one file migrate in turn
    // and the second sees the first one's version.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: u32 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > CURRENT {
        return Err(OpenError::NewerSchema {
            found,
            supported: CURRENT,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tracing::info!(
            from = version,
            to = version + 1,
            "migrated the eventsrc schema"
        );
    }
    tx.pragma_update(None, "user_version", CURRENT)?;
    tx.commit()?;
    Ok(())
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
        let parked: i64 = conn
            .query_row("SELECT COUNT(*) FROM parked", [], |r| r.get(0))
            .unwrap();
        assert_eq!(parked, 0);
        let documents: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM documents) + (SELECT COUNT(*) FROM document_index)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(documents, 0);
        // Opening again is a no-op.
        migrate(&mut conn).unwrap();
    }
}
