//! [`PgKeyStore`]: the data subjects' keys of crypto-shredding in a PostgreSQL table (feature
//! `encryption`).

use deadpool_postgres::Pool;
use eventsrc_core::Tenant;
use eventsrc_core::personal::{KeyError, KeyFuture, KeyStore, SubjectKey};

use crate::PgEventStore;

/// The keys of crypto-shredding ([`eventsrc::personal`](eventsrc_core::personal)) in a
/// PostgreSQL table of their own, `eventsrc_subject_keys`, in a schema of your choice (the
/// store's, or better one that only the application's key role can read), created when the key
/// store is made.
///
/// **Forgetting and dead tuples.** A forget is a `DELETE`: the row is gone for every reader at
/// once, but PostgreSQL keeps its dead tuple (the key's bytes) in the table's pages until
/// `VACUUM` reclaims them, and in the WAL and its archive until they are recycled. Run
/// `VACUUM eventsrc_subject_keys` after forgetting (autovacuum gets to it eventually), and
/// expire backups and WAL archives as your retention rules say.
///
/// ```no_run
/// use eventsrc::personal::Encrypted;
/// use eventsrc::postgres::{PgEventStore, PgKeyStore};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let events = PgEventStore::connect("postgres://app@db/app").await?;
/// let keys = PgKeyStore::for_store(&events).await?;
/// let store = Encrypted::new(events, keys);
/// store.forget("user-7").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgKeyStore {
    pool: Pool,
    select: String,
    insert: String,
    delete: String,
}

impl std::fmt::Debug for PgKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgKeyStore")
            .field("select", &self.select)
            .finish_non_exhaustive()
    }
}

impl PgKeyStore {
    /// Keys in the store's own schema, through the store's pool.
    pub async fn for_store(store: &PgEventStore) -> Result<Self, KeyError> {
        Self::new(store.pool().clone(), store.schema()).await
    }

    /// Keys in `schema` (created if missing) through `pool`; creates the key table.
    ///
    /// `schema` is checked as a store's schema is (lower-case ASCII letters, digits and `_`,
    /// at most 63 bytes, no `pg_` prefix): a name that is not one is a [`KeyError::Backend`]
    /// holding [`ConnectError::InvalidSchema`](crate::ConnectError::InvalidSchema), and nothing
    /// is sent to the server.
    pub async fn new(pool: Pool, schema: &str) -> Result<Self, KeyError> {
        // The name goes into SQL text, quoted: only a checked name cannot break out of it.
        crate::options::check_schema_name(schema).map_err(KeyError::backend)?;
        let mut client = pool.get().await.map_err(KeyError::backend)?;
        // Nodes starting together would race on `IF NOT EXISTS` (PostgreSQL checks it before
        // it locks the catalog): one creates the table at a time, under a transaction-level
        // advisory lock on the schema's name, as migrations are run. A failure drops the
        // transaction, which rolls it back: no failed transaction is left on the pooled
        // connection.
        let tx = client.transaction().await.map_err(KeyError::backend)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('eventsrc_subject_keys:' || $1))",
            &[&schema],
        )
        .await
        .map_err(KeyError::backend)?;
        tx.batch_execute(&Self::ddl(schema))
            .await
            .map_err(KeyError::backend)?;
        tx.commit().await.map_err(KeyError::backend)?;
        let table = format!("{}.eventsrc_subject_keys", crate::schema::quote(schema));
        Ok(Self {
            pool,
            select: format!(
                "SELECT key_id, secret FROM {table} WHERE tenant = $1 AND subject = $2"
            ),
            insert: format!(
                "INSERT INTO {table} (tenant, subject, key_id, secret) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, subject) DO NOTHING"
            ),
            delete: format!("DELETE FROM {table} WHERE tenant = $1 AND subject = $2"),
        })
    }

    /// The DDL of the key table in `schema`, which [`new`](Self::new) runs itself: for teams
    /// that manage their schema themselves. Idempotent (`IF NOT EXISTS`).
    ///
    /// ```
    /// let ddl = eventsrc::postgres::PgKeyStore::ddl("billing");
    /// assert!(ddl.contains("CREATE TABLE IF NOT EXISTS \"billing\".eventsrc_subject_keys"));
    /// ```
    pub fn ddl(schema: &str) -> String {
        let schema = crate::schema::quote(schema);
        format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.eventsrc_subject_keys (
                 tenant TEXT NOT NULL,
                 subject TEXT NOT NULL,
                 key_id BIGINT NOT NULL,
                 secret BYTEA NOT NULL CHECK (octet_length(secret) = 32),
                 PRIMARY KEY (tenant, subject)
             );"
        )
    }

    async fn select(
        &self,
        client: &deadpool_postgres::Client,
        tenant: &str,
        subject: &str,
    ) -> Result<Option<SubjectKey>, KeyError> {
        let statement = client
            .prepare_cached(&self.select)
            .await
            .map_err(KeyError::backend)?;
        let row = client
            .query_opt(&statement, &[&tenant, &subject])
            .await
            .map_err(KeyError::backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let corrupt = |reason: String| KeyError::Corrupt {
            subject: subject.to_owned(),
            reason,
        };
        let id: i64 = row.try_get(0).map_err(|e| corrupt(e.to_string()))?;
        let secret: Vec<u8> = row.try_get(1).map_err(|e| corrupt(e.to_string()))?;
        let secret: [u8; 32] = secret.try_into().map_err(|bytes: Vec<u8>| {
            corrupt(format!("the secret is {} bytes, not 32", bytes.len()))
        })?;
        Ok(Some(SubjectKey::from_parts(id as u64, secret)))
    }
}

impl KeyStore for PgKeyStore {
    fn key<'a>(
        &'a self,
        tenant: &'a Tenant,
        subject: &'a str,
    ) -> KeyFuture<'a, Option<SubjectKey>> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(KeyError::backend)?;
            self.select(&client, tenant.as_str(), subject).await
        })
    }

    fn key_or_create<'a>(
        &'a self,
        tenant: &'a Tenant,
        subject: &'a str,
    ) -> KeyFuture<'a, SubjectKey> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(KeyError::backend)?;
            if let Some(key) = self.select(&client, tenant.as_str(), subject).await? {
                return Ok(key);
            }
            let new = SubjectKey::generate();
            // Another node may have made one meanwhile: theirs wins, and is read back.
            let statement = client
                .prepare_cached(&self.insert)
                .await
                .map_err(KeyError::backend)?;
            client
                .execute(
                    &statement,
                    &[
                        &tenant.as_str(),
                        &subject,
                        &(new.id() as i64),
                        &&new.secret()[..],
                    ],
                )
                .await
                .map_err(KeyError::backend)?;
            self.select(&client, tenant.as_str(), subject)
                .await?
                .ok_or_else(|| KeyError::Corrupt {
                    subject: subject.to_owned(),
                    reason: "the key was stored but does not read back".to_owned(),
                })
        })
    }

    fn forget<'a>(&'a self, tenant: &'a Tenant, subject: &'a str) -> KeyFuture<'a, bool> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(KeyError::backend)?;
            let deleted = client
                .execute(self.delete.as_str(), &[&tenant.as_str(), &subject])
                .await
                .map_err(KeyError::backend)?;
            Ok(deleted > 0)
        })
    }
}
