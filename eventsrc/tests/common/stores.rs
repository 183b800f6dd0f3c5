//! Fresh stores for tests that run on every backend: a SQLite file in a directory of its own,
//! and a PostgreSQL schema of its own on the server `EVENTSRC_POSTGRES_URL` names (without one,
//! the test prints `EVENTSRC-POSTGRES-SKIPPED` and passes; `.ci/run` fails on that marker).

use std::io::Write;
use std::path::PathBuf;

use eventsrc::Store;

/// A fresh directory for a SQLite file, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", eventsrc::EventId::new()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The URL of `events.db` in the directory.
    pub(crate) fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("events.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The URL of a fresh schema of the test server, or `None` after printing the skip marker.
pub(crate) fn postgres_url(test: &str) -> Option<String> {
    let server = match std::env::var("EVENTSRC_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => return skip(test, "set EVENTSRC_POSTGRES_URL"),
    };
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let random = eventsrc::EventId::new().0.simple().to_string();
    // Named as eventsrc-postgres's tests name theirs, whose support code sweeps old ones.
    let schema = format!("eventsrc_test_{seconds}_{}", &random[random.len() - 12..]);
    let separator = if server.contains('?') { '&' } else { '?' };
    Some(format!("{server}{separator}schema={schema}"))
}

/// A store on a fresh schema of the test server, and its URL, or `None` after printing the
/// skip marker (no server configured, or none answering).
pub(crate) async fn postgres(test: &str) -> Option<(Store, String)> {
    let url = postgres_url(test)?;
    match Store::open(&url).await {
        Ok(store) => Some((store, url)),
        Err(error) => skip(test, &format!("the server did not answer ({error})")),
    }
}

/// Prints the skip marker for `test` and returns `None`.
pub(crate) fn skip<T>(test: &str, why: &str) -> Option<T> {
    let line = format!(
        "\nEVENTSRC-POSTGRES-SKIPPED: `{test}` did not run: {why} \
         (e.g. EVENTSRC_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test)\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

/// Drops the schema of a PostgreSQL store made by [`postgres`].
pub(crate) async fn drop_schema(store: &Store) {
    let Store::Postgres(pg) = store else {
        panic!("expected a PostgreSQL store, got {store}");
    };
    pg.pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            pg.schema()
        ))
        .await
        .unwrap();
}
