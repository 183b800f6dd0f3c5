//! The database schema, versioned in a table of its own and migrated on connect.
//!
//! Every node of an application connects with the same schema name, and several may start at
//! once: each migrates inside one transaction holding a transaction-level advisory lock derived
//! from the schema name, so they migrate in turn and the later ones find the work done.
//! Migrations only ever add; a schema written by a newer build is refused, not misread.

use tokio_postgres::Client;

use crate::ConnectError;

/// The schema version this build writes.
pub const CURRENT: i32 = 5;

/// The oldest server this backend runs on: `pg_current_xact_id` and `pg_current_snapshot`
/// arrived in PostgreSQL 13.
const MIN_SERVER_VERSION: i32 = 13_00_00;

/// Migration `i` takes the schema from version `i` to `i + 1`; `{schema}` stands for the quoted
/// schema name. Never edit a shipped entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: events, snapshots, checkpoints.
    r#"
    CREATE TABLE {schema}.events (
        position        bigserial   PRIMARY KEY,
        -- The writing transaction: readers stop below the oldest transaction still in flight,
        -- so an event committed late is never skipped (a position is drawn at insert, not commit).
        transaction_id  bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
        tenant          text        NOT NULL,
        stream          text        NOT NULL,
        category        text        NOT NULL,
        stream_version  bigint      NOT NULL,
        event_id        uuid        NOT NULL,
        event_type      text        NOT NULL,
        -- bigint, not int: schema versions are u32.
        schema_version  bigint      NOT NULL,
        -- json, not jsonb: json keeps the text exactly as appended (key order, spacing, number
        -- spelling), which idempotent retries compare, and reading it back as text measured
        -- 1.6x faster than jsonb.
        payload         json        NOT NULL,
        metadata        json,
        recorded_at     timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT events_event_id_unique UNIQUE (event_id),
        CONSTRAINT events_stream_version_unique UNIQUE (tenant, stream, stream_version)
    );
    CREATE INDEX events_log ON {schema}.events (tenant, transaction_id, position);
    CREATE TABLE {schema}.snapshots (
        tenant          text        NOT NULL,
        stream          text        NOT NULL,
        version         bigint      NOT NULL,
        state_version   bigint      NOT NULL,
        payload         text        NOT NULL,
        taken_at        timestamptz NOT NULL,
        PRIMARY KEY (tenant, stream)
    );
    CREATE TABLE {schema}.checkpoints (
        tenant          text        NOT NULL,
        subscriber      text        NOT NULL,
        -- u64 positions, stored bit for bit in signed columns.
        commit_id       bigint      NOT NULL,
        sequence        bigint      NOT NULL,
        PRIMARY KEY (tenant, subscriber)
    );
    "#,
    // 1 → 2: parked events; a checkpoint row without a position, which a read model inserts
    // so that it can lock the row before its first batch (`FOR UPDATE` needs a row).
    r#"
    ALTER TABLE {schema}.checkpoints
        ALTER COLUMN commit_id DROP NOT NULL,
        ALTER COLUMN sequence DROP NOT NULL,
        ADD CONSTRAINT checkpoints_position_whole
            CHECK ((commit_id IS NULL) = (sequence IS NULL));
    CREATE TABLE {schema}.parked (
        tenant          text        NOT NULL,
        reactor         text        NOT NULL,
        event_id        uuid        NOT NULL,
        -- The whole recorded event, so that it can be replayed without the log.
        event_tenant    text        NOT NULL,
        stream          text        NOT NULL,
        stream_version  bigint      NOT NULL,
        commit_id       bigint      NOT NULL,
        sequence        bigint      NOT NULL,
        event_type      text        NOT NULL,
        schema_version  bigint      NOT NULL,
        -- text, not json: the payload exactly as it was read.
        payload         text        NOT NULL,
        metadata        text,
        recorded_at     timestamptz NOT NULL,
        error           text        NOT NULL,
        attempts        bigint      NOT NULL,
        parked_at       timestamptz NOT NULL,
        PRIMARY KEY (tenant, reactor, event_id)
    );
    CREATE INDEX parked_log ON {schema}.parked (tenant, reactor, commit_id, sequence);
    "#,
    // 2 → 3: a read model's generation, bumped when a rebuilt model is switched in, so that a
    // runner of the old model stops instead of writing into the new tables.
    r#"
    ALTER TABLE {schema}.checkpoints ADD COLUMN generation bigint NOT NULL DEFAULT 0;
    "#,
    // 3 → 4: document views' documents, and their indexed values, one row per value (an
    // array field gives one per element). Ids collate as "C", byte for byte, so that order and
    // prefixes are those of the other backends whatever the database's collation.
    r#"
    CREATE TABLE {schema}.documents (
        tenant          text        NOT NULL,
        view            text        NOT NULL,
        id              text        COLLATE "C" NOT NULL,
        body            jsonb       NOT NULL,
        PRIMARY KEY (tenant, view, id)
    );
    CREATE TABLE {schema}.document_index (
        tenant          text        NOT NULL,
        view            text        NOT NULL,
        field           text        NOT NULL,
        value           text        COLLATE "C" NOT NULL,
        id              text        COLLATE "C" NOT NULL,
        PRIMARY KEY (tenant, view, field, value, id)
    );
    CREATE INDEX document_index_by_id ON {schema}.document_index (tenant, view, id);
    "#,
    // 4 → 5: the events' primary key goes. No statement looks an event up by its position
    // alone (the log is read through `events_log`, streams through their unique version index,
    // retries through the id's), the sequence alone draws positions, and the index cost every
    // append a B-tree insert, 11% of its WAL (66 of 579 bytes). Logical replication of updates
    // and deletes, which needs a replica identity, identifies a row by its stream and version.
    r#"
    ALTER TABLE {schema}.events DROP CONSTRAINT events_pkey;
    ALTER TABLE {schema}.events REPLICA IDENTITY USING INDEX events_stream_version_unique;
    "#,
];

/// Creates the schema if needed and brings it to [`CURRENT`], refusing one written by a newer
/// build. `name` is the bare schema name, `quoted` the same as an SQL identifier.
pub(crate) async fn migrate(
    client: &mut Client,
    name: &str,
    quoted: &str,
) -> Result<(), ConnectError> {
    let server: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?
        .try_get(0)?;
    if server < MIN_SERVER_VERSION {
        return Err(ConnectError::UnsupportedServer { version: server });
    }
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('eventsrc migrations ' || $1, 0))",
        &[&name],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted}; \
         CREATE TABLE IF NOT EXISTS {quoted}.migrations ( \
             version integer PRIMARY KEY, \
             applied_at timestamptz NOT NULL DEFAULT now())"
    ))
    .await?;
    let found: i32 = tx
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {quoted}.migrations"),
            &[],
        )
        .await?
        .try_get(0)?;
    if found > CURRENT {
        return Err(ConnectError::NewerSchema {
            schema: name.to_owned(),
            found,
            supported: CURRENT,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(&sql.replace("{schema}", quoted)).await?;
        let to = version as i32 + 1;
        tx.execute(
            &format!("INSERT INTO {quoted}.migrations (version) VALUES ($1)"),
            &[&to],
        )
        .await?;
        tracing::info!(
            schema = name,
            from = version,
            to,
            "migrated the eventsrc schema"
        );
    }
    tx.commit().await?;
    Ok(())
}

/// The hook that puts the store's schema first in the `search_path` of every pooled
/// connection, ahead of the connection's own path (usually `"$user", public`), so that the
/// unqualified tables of read models (created, written and queried on pooled connections) live
/// in the store's schema: stores on different schemas of one database never share a read
/// model's table, while names in `public` (functions, extensions, tables of your own) still
/// resolve. The store's own statements name their schema and do not depend on it. One
/// statement per new connection, in the simple protocol; `quoted` is the quoted schema name,
/// whose characters were checked.
pub(crate) fn search_path_hook(quoted: &str) -> deadpool_postgres::Hook {
    let sql = format!(
        "SELECT set_config('search_path', \
             CASE current_setting('search_path') WHEN '' THEN '{quoted}' \
             ELSE '{quoted}, ' || current_setting('search_path') END, false)"
    );
    deadpool_postgres::Hook::async_fn(move |client, _| {
        let sql = sql.clone();
        Box::pin(async move {
            client
                .simple_query(&sql)
                .await
                .map(drop)
                .map_err(deadpool_postgres::HookError::Backend)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_has_a_migration() {
        assert_eq!(MIGRATIONS.len(), CURRENT as usize);
    }
}
