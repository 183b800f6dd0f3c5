//! How to connect ([`PgOptions`]), and what goes wrong connecting ([`ConnectError`]).

use std::time::Duration;

use eventsrc_core::StoreError;

use crate::url::UrlError;

/// How to connect: the schema, the pool, and how readers wait.
#[derive(Debug, Clone)]
#[must_use = "options do nothing until passed to `PgEventStore::connect_with`"]
pub struct PgOptions {
    /// `None`: not set, so the URL's or the default.
    pub(crate) schema: Option<String>,
    pub(crate) pool_size: usize,
    pub(crate) application_name: String,
    pub(crate) notify: bool,
    pub(crate) horizon_wait: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) pool_timeout: Duration,
    pub(crate) migrate: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: None,
            pool_size: 16,
            application_name: "eventsrc".to_owned(),
            notify: true,
            horizon_wait: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            pool_timeout: Duration::from_secs(30),
            migrate: true,
        }
    }
}

/// The schema of a store whose options and URL name none.
pub(crate) const DEFAULT_SCHEMA: &str = "eventsrc";

impl PgOptions {
    /// The schema these options name, or the default.
    pub(crate) fn schema_name(&self) -> &str {
        self.schema.as_deref().unwrap_or(DEFAULT_SCHEMA)
    }

    /// These options with what `url` says of the store: its schema, if any (the same one, or
    /// a conflict), and `migrate=false`.
    pub(crate) fn with_url(mut self, url: &crate::PgUrl) -> Result<Self, ConnectError> {
        self.migrate &= url.migrate();
        match (url.schema(), &self.schema) {
            (Some(named), Some(given)) if named != given => Err(ConnectError::SchemaConflict {
                url: named.to_owned(),
                options: given.clone(),
            }),
            (Some(named), _) => {
                self.schema = Some(named.to_owned());
                Ok(self)
            }
            (None, _) => Ok(self),
        }
    }

    /// The PostgreSQL schema holding the tables (default `eventsrc`), created if missing.
    /// Lower-case ASCII letters, digits and `_`, not starting with a digit, at most 63 bytes.
    /// Stores on different schemas of one database are fully separate, their read models'
    /// tables included (see [`PgEventStore::client`](crate::PgEventStore::client)).
    ///
    /// A URL may name the schema too (`?schema=name`, see [`PgUrl`](crate::PgUrl)). Naming
    /// it in both places is fine when they agree; when they differ, connecting fails with
    /// [`ConnectError::SchemaConflict`] rather than picking one: a store opened on the wrong
    /// schema looks like an empty or foreign store, and which of the two a deployment meant
    /// is not something the code can know.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = Some(name.into());
        self
    }

    /// The most connections the pool opens (default 16). The LISTEN connection of
    /// [`PgEventStore::notifications`](crate::PgEventStore::notifications) comes on top.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// The `application_name` the connections report in `pg_stat_activity` (default
    /// `eventsrc`).
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Whether appends `NOTIFY` the schema's channel (default on), which is what wakes
    /// [`PgEventStore::notifications`](crate::PgEventStore::notifications) in every process.
    /// A single-event append at an exact version (what a command makes) carries the
    /// notification in its own statement whenever it runs alone, and at most once a
    /// millisecond while the store's appends overlap; a background task covers every other
    /// append, one notification for all that commit within a millisecond, so appends never
    /// wait for it. Off: readers in other processes poll.
    pub fn notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// How long `read_all` and `head_position` wait for transactions still in flight when
    /// events committed after them are held back (default 1 s); zero never waits.
    ///
    /// A reader of the log never passes a transaction still in flight (see
    /// [`PgEventStore::lag`](crate::PgEventStore::lag)). Appends are short, so waiting a moment lets a read return
    /// everything committed before it began, including events held back by another writer's
    /// append still finishing. A transaction open for longer (a long batch job writing to the
    /// same cluster) holds readers back only until this wait runs out each time: they return
    /// what lies below it and come back later.
    pub fn horizon_wait(mut self, wait: Duration) -> Self {
        self.horizon_wait = wait;
        self
    }

    /// How long opening one connection may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an operation waits for a free pooled connection (default 30 s).
    pub fn pool_timeout(mut self, timeout: Duration) -> Self {
        self.pool_timeout = timeout;
        self
    }

    /// Whether connecting creates the schema if missing and migrates an older one (default
    /// `true`), under an advisory lock so that nodes starting at once migrate in turn.
    ///
    /// `false` is for a team that manages its DDL itself: connecting then reads the schema
    /// version and nothing else, and fails with [`ConnectError::SchemaNotCurrent`] unless it
    /// is this build's ([`SCHEMA_VERSION`](crate::SCHEMA_VERSION)); a missing schema is not
    /// created, and one found wanting is left as it was, so the application's role needs no
    /// right to create or alter tables. The schema is made beforehand by running the SQL of
    /// [`schema::ddl`](crate::schema::ddl) (`eventsrc schema`) or by
    /// [`PgEventStore::migrate`](crate::PgEventStore::migrate) (`eventsrc migrate`). A schema
    /// written by a newer build is [`ConnectError::NewerSchema`] either way.
    ///
    /// A URL says it with `?migrate=false` (see [`PgUrl`](crate::PgUrl)); when either the
    /// URL or these options say `false`, connecting does not migrate.
    ///
    /// ```no_run
    /// use eventsrc_postgres::{PgEventStore, PgOptions};
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PgEventStore::connect_with(
    ///     "postgres://app@db.internal/app",
    ///     PgOptions::default().schema("orders").migrate(false),
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }
}

/// Connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The connection URL does not parse, or its `schema` parameter names a schema this
    /// backend refuses.
    #[error(transparent)]
    InvalidUrl(#[from] UrlError),
    /// The URL's `schema` parameter and [`PgOptions::schema`] name different schemas.
    #[error(
        "the URL names schema `{url}` and `PgOptions::schema` names `{options}`: name the schema in one of them, or the same in both"
    )]
    SchemaConflict {
        /// The schema the URL names.
        url: String,
        /// The schema the options name.
        options: String,
    },
    /// The schema name is not one this backend accepts.
    #[error("invalid schema name `{name}`: {reason}")]
    InvalidSchema {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The server is older than PostgreSQL 13.
    #[error(
        "PostgreSQL server version {version} is too old: eventsrc-postgres needs 13 or newer (`pg_current_xact_id`)"
    )]
    UnsupportedServer {
        /// `server_version_num`.
        version: i32,
    },
    /// The schema was written by a newer eventsrc-postgres.
    #[error(
        "schema `{schema}` has version {found}, written by a newer eventsrc-postgres; this build reads up to version {supported}"
    )]
    NewerSchema {
        /// The schema.
        schema: String,
        /// Its version.
        found: i32,
        /// The newest this build knows.
        supported: i32,
    },
    /// The store was connected without migrating ([`PgOptions::migrate(false)`](PgOptions::migrate),
    /// `?migrate=false`) and the schema is older than this build's, or missing (`found` 0).
    /// Nothing was changed: migrate it ([`PgEventStore::migrate`](crate::PgEventStore::migrate),
    /// `eventsrc migrate`), or, for a new schema, run the SQL of
    /// [`schema::ddl`](crate::schema::ddl).
    #[error("{}", not_current(schema, *found, *expected))]
    SchemaNotCurrent {
        /// The schema.
        schema: String,
        /// Its version: 0 when it has no eventsrc tables (or does not exist).
        found: i32,
        /// This build's.
        expected: i32,
    },
    /// The pool gave no connection in time, or was closed. A connection PostgreSQL refused
    /// is [`Postgres`](Self::Postgres).
    #[error("cannot get a PostgreSQL connection: {0}")]
    Pool(#[source] deadpool_postgres::PoolError),
    /// The pool could not be built.
    #[error("cannot build the PostgreSQL connection pool: {0}")]
    PoolBuild(#[source] deadpool_postgres::BuildError),
    /// PostgreSQL refused or could not be reached (no server on the port, no such database,
    /// authentication, permissions, ...). The message carries the cause: the server's own
    /// message (`FATAL: database "app" does not exist`) or the operating system's
    /// (`Connection refused`); the driver's error stays the [`source`](std::error::Error::source).
    #[error("PostgreSQL failed: {}", Cause(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

/// What [`ConnectError::SchemaNotCurrent`] says: what was found, and what to do.
fn not_current(schema: &str, found: i32, expected: i32) -> String {
    let opened =
        "the store was connected with `migrate(false)` (`?migrate=false`), so nothing was changed";
    let migrate = "run the migrations (`eventsrc migrate --store <URL>`)";
    if found == 0 {
        format!(
            "schema `{schema}` has no eventsrc tables (this build needs version {expected}) and \
             {opened}: {migrate}, or apply the DDL that `eventsrc schema` prints"
        )
    } else {
        format!(
            "schema `{schema}` has version {found}, older than this build's {expected}, and \
             {opened}: {migrate}"
        )
    }
}

impl From<deadpool_postgres::PoolError> for ConnectError {
    /// A connection the server refused is the driver's error; the pool's own failures
    /// (timeouts, closed) stay the pool's.
    fn from(error: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::{HookError, PoolError};
        match error {
            PoolError::Backend(error) | PoolError::PostCreateHook(HookError::Backend(error)) => {
                Self::Postgres(error)
            }
            other => Self::Pool(other),
        }
    }
}

/// A driver error with its causes: the server's message in place of the driver's "db error",
/// or the driver's words followed by each cause (`error connecting to server: Connection
/// refused (os error 111)`).
pub(crate) struct Cause<'a>(pub &'a tokio_postgres::Error);

impl std::fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(db) = self.0.as_db_error() {
            return write!(f, "{db}");
        }
        write!(f, "{}", self.0)?;
        let mut cause = std::error::Error::source(self.0);
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl From<ConnectError> for StoreError {
    fn from(error: ConnectError) -> Self {
        StoreError::backend(error)
    }
}

/// Refuses schema names this backend does not accept: they go into SQL and a channel name.
pub(crate) fn check_schema_name(name: &str) -> Result<(), ConnectError> {
    match schema_name_problem(name) {
        Some(reason) => Err(ConnectError::InvalidSchema {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// What is wrong with a schema name, if anything.
pub(crate) fn schema_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 63 {
        Some("PostgreSQL names are at most 63 bytes")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some("it starts with a digit")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Some("use lower-case ASCII letters, digits and `_`")
    } else if name.starts_with("pg_") {
        Some("names starting with `pg_` are reserved by PostgreSQL")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        for good in ["eventsrc", "orders_2", "_x"] {
            assert!(check_schema_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Orders", "2x", "a-b", "pg_x", "a\"b", &"x".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
