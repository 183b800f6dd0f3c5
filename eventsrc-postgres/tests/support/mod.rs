//! What every PostgreSQL test needs: the server's URL (or a loud skip without it), and a
//! schema of its own, so that tests run in parallel on one database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventsrc_postgres::{PgEventStore, PgOptions};
use tokio_postgres::NoTls;

pub(crate) mod counter;
pub(crate) mod read_model;

/// The environment variable naming the test server.
pub(crate) const URL_VAR: &str = "EVENTSRC_POSTGRES_URL";

/// CI greps the test output for this and fails when it is there.
pub(crate) const SKIP_MARKER: &str = "EVENTSRC-POSTGRES-SKIPPED";

/// Test schemas are named `eventsrc_test_<unix seconds>_<random>`; those older than this are
/// leftovers of runs that panicked before dropping theirs, and are swept.
const STALE: Duration = Duration::from_secs(3600);

/// The server's URL, or `None` after printing the skip marker for `test`. The line goes
/// straight to the process's stderr, past the test harness's capture, so that it shows
/// (and CI sees it) even when the test passes.
pub(crate) fn url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // One write of one whole line, so that it is not torn by the harness's output.
            let line = format!(
                "\n{SKIP_MARKER}: `{test}` did not run: set {URL_VAR} \
                 (e.g. postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL tests\n"
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
    }
}

/// A schema of one test, and a plain connection for the SQL a test runs behind the store's
/// back.
pub(crate) struct TestSchema {
    pub url: String,
    pub name: String,
    pub client: tokio_postgres::Client,
}

impl TestSchema {
    /// A fresh schema name (nothing created yet) and a raw connection; `None` (after the skip
    /// marker) without a server.
    pub(crate) async fn new(test: &str) -> Option<Self> {
        let url = url(test)?;
        let client = raw_client(&url).await;
        sweep_stale(&client).await;
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let random = eventsrc::EventId::new().0.simple().to_string();
        let name = format!("eventsrc_test_{seconds}_{}", &random[random.len() - 12..]);
        Some(Self { url, name, client })
    }

    /// A fresh schema as [`new`](Self::new) makes it, for a caller that has already checked
    /// that the server is configured (the conformance suite's `skip_if`).
    pub(crate) async fn fresh() -> Self {
        Self::new("the conformance suite")
            .await
            .unwrap_or_else(|| panic!("{URL_VAR} was set when the test began, and is not now"))
    }

    /// Options for a store on this schema, named after it in `pg_stat_activity`.
    pub(crate) fn options(&self) -> PgOptions {
        PgOptions::default()
            .schema(&self.name)
            .application_name(&self.name)
    }

    /// A store on this schema with [`options`](Self::options).
    pub(crate) async fn store(&self) -> PgEventStore {
        self.store_with(self.options()).await
    }

    /// A store on this schema with `options`.
    pub(crate) async fn store_with(&self, options: PgOptions) -> PgEventStore {
        PgEventStore::connect_with(&self.url, options)
            .await
            .expect("connecting to the test database")
    }

    /// `table` qualified with this schema.
    pub(crate) fn table(&self, table: &str) -> String {
        format!("\"{}\".{table}", self.name)
    }

    /// Drops the schema and everything in it.
    pub(crate) async fn drop(self) {
        self.client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
            .await
            .expect("dropping the test schema");
    }
}

/// Drops `store`'s schema and everything in it, through the store's own pool.
pub(crate) async fn drop_schema(store: &PgEventStore) {
    store
        .pool()
        .get()
        .await
        .expect("a connection to drop the test schema")
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            store.schema()
        ))
        .await
        .expect("dropping the test schema");
}

/// A plain connection, driven on this runtime.
pub(crate) async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connecting to the test database");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Drops test schemas left behind by runs more than [`STALE`] ago.
async fn sweep_stale(client: &tokio_postgres::Client) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rows = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'eventsrc\\_test\\_%'",
            &[],
        )
        .await
        .expect("listing test schemas");
    for row in rows {
        let name: String = row.get(0);
        let created = name.split('_').nth(2).and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|created| now.saturating_sub(created) > STALE.as_secs()) {
            // Another run may sweep it at the same moment; either drop is fine.
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await;
        }
    }
}

/// Waits for `condition` to hold, checking every few milliseconds, failing after `within`.
pub(crate) async fn until<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
