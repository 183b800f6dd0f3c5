//! The database schema, versioned in a table of its own: created and migrated on connect, or
//! managed outside the store.
//!
//! Every node of an application connects with the same schema name, and several may start at
//! once: each migrates inside one transaction holding a transaction-level advisory lock derived
//! from the schema name, so they migrate in turn and the later ones find the work done.
//! Migrations only ever add; a schema written by a newer build is refused, not misread.
//!
//! A team that manages its DDL itself connects with
//! [`PgOptions::migrate(false)`](crate::PgOptions::migrate) (or `?migrate=false` in the URL):
//! the store then only reads the version, and refuses a schema that is not [`CURRENT`] with
//! [`ConnectError::SchemaNotCurrent`], changing nothing. The schema is made beforehand, either
//! by running the SQL of [`ddl`] (what `eventsrc schema` prints), or by
//! [`PgEventStore::migrate`](crate::PgEventStore::migrate) (what `eventsrc migrate` runs),
//! which applies the migrations of [`migrate`] and says what it did ([`Migrated`]).

use std::fmt;

use tokio_postgres::{Client, NoTls};

use crate::{ConnectError, PgEventStore, PgOptions, PgUrl, options};

/// The schema version this build writes.
pub const CURRENT: i32 = 6;

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
    // 5 → 6: stream lifecycle (`Lifecycle`). Events a soft delete or a truncation removes
    // move to `archived_events`, whole (position, transaction and id kept) and stamped with
    // when they moved; a stream's versions are never reused, so its key is the stream's.
    // `truncations` keeps, per tenant, the position of the last event truncation removed: a
    // log page checks it by primary key, so that a reader behind it is told instead of
    // silently skipping events.
    r#"
    CREATE TABLE {schema}.archived_events (
        position        bigint      NOT NULL,
        transaction_id  bigint      NOT NULL,
        tenant          text        NOT NULL,
        stream          text        NOT NULL,
        category        text        NOT NULL,
        stream_version  bigint      NOT NULL,
        event_id        uuid        NOT NULL,
        event_type      text        NOT NULL,
        schema_version  bigint      NOT NULL,
        payload         json        NOT NULL,
        metadata        json,
        recorded_at     timestamptz NOT NULL,
        archived_at     timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, stream, stream_version)
    );
    CREATE TABLE {schema}.truncations (
        tenant          text        PRIMARY KEY,
        -- u64 positions, stored bit for bit in signed columns, as checkpoints store them.
        commit_id       bigint      NOT NULL,
        sequence        bigint      NOT NULL
    );
    "#,
];

/// What a migration did: the schema's version before it, and after.
///
/// Its [`Display`](fmt::Display) says it in words: `created the schema at version 6`,
/// `migrated the schema from version 3 to version 6`, `the schema is at version 6 already`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migrated {
    /// The version found: 0 for a schema without the store's tables (or no schema at all).
    pub from: i32,
    /// The version now: [`CURRENT`].
    pub to: i32,
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

/// `name` as an SQL identifier: in double quotes, as every statement of the store writes it.
/// Names are checked ([`options::check_schema_name`]) before they are quoted, so no quote can be
/// in them.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// The SQL that creates the schema `schema` (the bare name, as given to
/// [`PgOptions::schema`](crate::PgOptions::schema); quoted here as the store quotes it) at
/// this build's version ([`CURRENT`]): the schema itself, the version table
/// (`migrations`), and every migration in turn with the row recording it, as connecting
/// runs them, so that the schema is the one a store would have created.
///
/// For a team that manages its DDL itself: run it once, in one transaction
/// (`psql --single-transaction -f`), as a role allowed to create the tables; then connect
/// the application with [`PgOptions::migrate(false)`](crate::PgOptions::migrate), as a role
/// that needs only to read and write them. `eventsrc schema` prints it. It creates the schema
/// if missing (so a DBA may create it first, with its owner and grants) and fails on one that
/// already has the tables. The name is not checked here:
/// [`PgEventStore::connect`](crate::PgEventStore::connect) refuses the names it does not
/// accept (lower-case ASCII letters, digits and `_`).
///
/// ```
/// use eventsrc_postgres::{SCHEMA_VERSION, schema};
///
/// let sql = schema::ddl("orders");
/// assert!(sql.contains(r#"CREATE SCHEMA IF NOT EXISTS "orders";"#));
/// assert!(sql.contains(r#"CREATE TABLE "orders".events ("#));
/// assert!(sql.contains(&format!(r#"INSERT INTO "orders".migrations (version) VALUES ({SCHEMA_VERSION});"#)));
/// ```
pub fn ddl(schema: &str) -> String {
    ddl_up_to(schema, CURRENT)
}

/// The SQL of the first `version` migrations (at most [`CURRENT`]) in `schema`, recording
/// each: for tests that make an older schema. Not part of the API.
#[doc(hidden)]
pub fn ddl_up_to(schema: &str, version: i32) -> String {
    let (quoted, version) = (quote(schema), version.clamp(0, CURRENT));
    let mut sql = format!(
        "-- The eventsrc-postgres schema {quoted}, version {version}, created from nothing: what \
         connecting to a new schema creates.\n\
         -- Run it once, in one transaction (psql --single-transaction -f); the store then \
         connects to it with migrate(false).\n\n{}\n",
        version_table(&quoted)
    );
    for from in 0..version {
        sql.push_str(&format!(
            "\n-- Version {}.\n{}\n",
            from + 1,
            migration(&quoted, from)
        ));
    }
    sql
}

/// The schema and its version table, created if missing.
fn version_table(quoted: &str) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};\n\
         CREATE TABLE IF NOT EXISTS {quoted}.migrations (\n    \
             version integer PRIMARY KEY,\n    \
             applied_at timestamptz NOT NULL DEFAULT now()\n\
         );"
    )
}

/// The SQL of the migration from `version` to the next in the schema `quoted`, with the row
/// that records it, as [`migrate`] runs it and [`ddl`] prints it: the entry of
/// [`MIGRATIONS`] without its indentation.
fn migration(quoted: &str, version: i32) -> String {
    let lines: Vec<&str> = MIGRATIONS[version as usize]
        .trim()
        .lines()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect();
    format!(
        "{}\nINSERT INTO {quoted}.migrations (version) VALUES ({});",
        lines.join("\n").replace("{schema}", quoted),
        version + 1
    )
}

/// Refuses a server older than [`MIN_SERVER_VERSION`].
async fn check_server(client: &Client) -> Result<(), ConnectError> {
    let server: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?
        .try_get(0)?;
    if server < MIN_SERVER_VERSION {
        return Err(ConnectError::UnsupportedServer { version: server });
    }
    Ok(())
}

/// Creates the schema `schema` if needed and brings it to [`CURRENT`], and says from which
/// version. `schema` is the bare name (as given to
/// [`PgOptions::schema`](crate::PgOptions::schema)), checked and quoted here. A schema written
/// by a newer build is refused ([`ConnectError::NewerSchema`]), and so is a server older than
/// PostgreSQL 13 and a client already in a transaction.
///
/// This is what connecting runs (unless [`PgOptions::migrate`](crate::PgOptions::migrate)
/// says not to), on a client of your own: one connected through the TLS connector of your
/// choice, say. [`PgEventStore::migrate`] connects one for you, without TLS. The migrations
/// run in one transaction holding an advisory lock derived from the schema's name, so that
/// nodes and tools migrating at once migrate in turn, and the later ones find the work done.
///
/// ```no_run
/// use eventsrc_postgres::{schema, tokio_postgres};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let (mut client, connection) =
///     tokio_postgres::connect("host=db.internal user=owner dbname=app", tokio_postgres::NoTls)
///         .await?;
/// tokio::spawn(connection);
/// let migrated = schema::migrate(&mut client, "orders").await?;
/// println!("{migrated}"); // created the schema at version 6
/// # Ok(()) }
/// ```
pub async fn migrate(client: &mut Client, schema: &str) -> Result<Migrated, ConnectError> {
    options::check_schema_name(schema)?;
    let quoted = quote(schema);
    check_server(client).await?;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('eventsrc migrations ' || $1, 0))",
        &[&schema],
    )
    .await?;
    tx.batch_execute(&version_table(&quoted)).await?;
    let found: i32 = tx
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {quoted}.migrations"),
            &[],
        )
        .await?
        .try_get(0)?;
    if found > CURRENT {
        return Err(ConnectError::NewerSchema {
            schema: schema.to_owned(),
            found,
            supported: CURRENT,
        });
    }
    for version in found..CURRENT {
        tx.batch_execute(&migration(&quoted, version)).await?;
        tracing::info!(
            schema,
            from = version,
            to = version + 1,
            "migrated the eventsrc schema"
        );
    }
    tx.commit().await?;
    Ok(Migrated {
        from: found,
        to: CURRENT,
    })
}

/// Refuses the schema `name` (quoted `quoted`) unless it is at [`CURRENT`], reading only.
async fn check(client: &Client, name: &str, quoted: &str) -> Result<(), ConnectError> {
    check_server(client).await?;
    let versioned: bool = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_tables \
             WHERE schemaname = $1 AND tablename = 'migrations')",
            &[&name],
        )
        .await?
        .try_get(0)?;
    let found: i32 = match versioned {
        false => 0,
        true => client
            .query_one(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {quoted}.migrations"),
                &[],
            )
            .await?
            .try_get(0)?,
    };
    if found > CURRENT {
        Err(ConnectError::NewerSchema {
            schema: name.to_owned(),
            found,
            supported: CURRENT,
        })
    } else if found < CURRENT {
        Err(ConnectError::SchemaNotCurrent {
            schema: name.to_owned(),
            found,
            expected: CURRENT,
        })
    } else {
        Ok(())
    }
}

/// What connecting does to the schema `name` (quoted `quoted`): migrates it, or only checks it
/// when the store does not migrate.
pub(crate) async fn prepare(
    client: &mut Client,
    name: &str,
    quoted: &str,
    migrate: bool,
) -> Result<(), ConnectError> {
    match migrate {
        true => self::migrate(client, name).await.map(drop),
        false => check(client, name, quoted).await,
    }
}

impl PgEventStore {
    /// Creates the schema if missing and brings it to this build's version ([`CURRENT`]),
    /// on one connection of its own to the database `url` names, without TLS, and says what it
    /// did: the explicit migration, for stores connected with
    /// [`PgOptions::migrate(false)`](crate::PgOptions::migrate). `eventsrc migrate` runs it.
    ///
    /// The schema is the one `url` or `options` names (they must agree, as in
    /// [`connect_url`](Self::connect_url)), else `eventsrc`; of `options`, the application
    /// name and connect timeout are used too, and whether to migrate is not (this call is the
    /// migration). Stores connected to the schema meanwhile are not disturbed (the
    /// migrations only add, in one transaction). Through TLS, connect a client yourself and
    /// call [`schema::migrate`](migrate).
    ///
    /// ```no_run
    /// use eventsrc_postgres::{PgEventStore, PgOptions};
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// // The deployment's step, as a role allowed to create tables.
    /// let owner = "postgres://owner@db.internal/app?schema=orders".parse()?;
    /// let migrated = PgEventStore::migrate(&owner, PgOptions::default()).await?;
    /// println!("{migrated}");
    ///
    /// // The application's, as a role that only reads and writes.
    /// let store = PgEventStore::connect("postgres://app@db.internal/app?schema=orders&migrate=false").await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrate(url: &PgUrl, options: PgOptions) -> Result<Migrated, ConnectError> {
        let options = options.with_url(url)?;
        let mut config = url.config().clone();
        config
            .application_name(&options.application_name)
            .connect_timeout(options.connect_timeout);
        let (mut client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        let migrated = migrate(&mut client, options.schema_name()).await;
        drop(client);
        // The connection ends once the client is gone; how it ended says nothing more.
        let _ = driver.await;
        migrated
    }
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
