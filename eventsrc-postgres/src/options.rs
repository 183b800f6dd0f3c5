//! How to connect ([`PgOptions`]), and what goes wrong connecting ([`ConnectError`]).

use std::time::Duration;

use eventsrc_core::StoreError;

/// How to connect: the schema, the pool, and how readers wait.
#[derive(Debug, Clone)]
#[must_use = "options do nothing until passed to `PgEventStore::connect_with`"]
pub struct PgOptions {
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) application_name: String,
    pub(crate) notify: bool,
    pub(crate) horizon_wait: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) pool_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: "eventsrc".to_owned(),
            pool_size: 16,
            application_name: "eventsrc".to_owned(),
            notify: true,
            horizon_wait: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            pool_timeout: Duration::from_secs(30),
        }
    }
}

impl PgOptions {
    /// The PostgreSQL schema holding the tables (default `eventsrc`), created if missing.
    /// Lower-case ASCII letters, digits and `_`, not starting with a digit, at most 63 bytes.
    /// Stores on different schemas of one database are fully separate.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
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
    /// [`PgEventStore::notifications`](crate::PgEventStore::notifications) in every process. A background task sends the
    /// notification after the append commits, one for all appends that commit while it is
    /// sending or within a millisecond of the previous notification, so appends never wait
    /// for it. Off: readers in other processes poll.
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
}

/// Connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The connection URL does not parse.
    #[error("invalid PostgreSQL connection URL: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
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
    /// The pool could not be built or give a connection.
    #[error("cannot get a PostgreSQL connection: {0}")]
    Pool(String),
    /// PostgreSQL refused (unreachable, authentication, permissions, ...).
    #[error("PostgreSQL failed: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

impl From<ConnectError> for StoreError {
    fn from(error: ConnectError) -> Self {
        StoreError::backend(error)
    }
}

/// Refuses schema names this backend does not accept: they go into SQL and a channel name.
pub(crate) fn check_schema_name(name: &str) -> Result<(), ConnectError> {
    let reason = if name.is_empty() {
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
    };
    match reason {
        Some(reason) => Err(ConnectError::InvalidSchema {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
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
