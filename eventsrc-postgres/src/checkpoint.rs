//! Checkpoints ([`CheckpointStore`]), and the statements a read model's batch moves its
//! checkpoint with, inside its own transaction.
//!
//! A row whose position is `NULL` means "no checkpoint yet": a read model inserts one before
//! its first batch so that there is a row to lock (`SELECT ... FOR UPDATE`), and it reads as
//! `None` like a missing row.

use eventsrc_core::StoreError;
use eventsrc_core::{CheckpointStore, GlobalPosition};

use crate::{PgEventStore, backend};

/// The SQL of checkpoints, with the schema filled in once.
pub(crate) struct CheckpointSql {
    load: String,
    save: String,
    /// Locks a read model's row and reads it (position, generation): `$1` tenant, `$2`
    /// subscriber.
    pub lock: String,
    /// Reads a read model's row without locking it (position, generation).
    pub read: String,
    /// Moves a row to `$3`, `$4` and bumps its generation: a switch.
    pub switch: String,
    /// Inserts a row without a position, if there is none.
    pub create: String,
    /// Moves a locked row: `$3`, `$4` the position.
    pub advance: String,
    /// Removes a row: `$1` tenant, `$2` subscriber.
    pub delete: String,
}

impl CheckpointSql {
    pub(crate) fn new(schema: &str) -> Self {
        Self {
            load: format!(
                "SELECT commit_id, sequence FROM {schema}.checkpoints \
                 WHERE tenant = $1 AND subscriber = $2"
            ),
            save: format!(
                "INSERT INTO {schema}.checkpoints (tenant, subscriber, commit_id, sequence) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, subscriber) DO UPDATE \
                 SET commit_id = excluded.commit_id, sequence = excluded.sequence"
            ),
            lock: format!(
                "SELECT commit_id, sequence, generation FROM {schema}.checkpoints \
                 WHERE tenant = $1 AND subscriber = $2 FOR UPDATE"
            ),
            read: format!(
                "SELECT commit_id, sequence, generation FROM {schema}.checkpoints \
                 WHERE tenant = $1 AND subscriber = $2"
            ),
            switch: format!(
                "UPDATE {schema}.checkpoints \
                 SET commit_id = $3, sequence = $4, generation = generation + 1 \
                 WHERE tenant = $1 AND subscriber = $2"
            ),
            create: format!(
                "INSERT INTO {schema}.checkpoints (tenant, subscriber) VALUES ($1, $2) \
                 ON CONFLICT (tenant, subscriber) DO NOTHING"
            ),
            advance: format!(
                "UPDATE {schema}.checkpoints SET commit_id = $3, sequence = $4 \
                 WHERE tenant = $1 AND subscriber = $2"
            ),
            delete: format!(
                "DELETE FROM {schema}.checkpoints WHERE tenant = $1 AND subscriber = $2"
            ),
        }
    }
}

/// A position as the two columns it is stored in: bit for bit, so u64 → i64 → u64 is the
/// identity.
pub(crate) fn columns(position: GlobalPosition) -> (i64, i64) {
    (position.commit as i64, position.sequence as i64)
}

/// A `lock` or `read` row as (position, generation); no row reads as no position at
/// generation 0.
pub(crate) fn state(
    row: Option<&tokio_postgres::Row>,
) -> Result<(Option<GlobalPosition>, i64), tokio_postgres::Error> {
    match row {
        Some(row) => Ok((position(row)?, generation(row)?)),
        None => Ok((None, 0)),
    }
}

/// Locks a read model's checkpoint row inside `tx`, creating it (without a position) first if
/// there is none, and returns it. Another node doing the same at once waits on the insert and
/// then locks the same row.
pub(crate) async fn lock_or_create(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &CheckpointSql,
    tenant: &str,
    name: &str,
) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
    let lock = tx.prepare_cached(&sql.lock).await?;
    if let Some(row) = tx.query_opt(&lock, &[&tenant, &name]).await? {
        return Ok(Some(row));
    }
    tx.execute(&sql.create, &[&tenant, &name]).await?;
    tx.query_opt(&lock, &[&tenant, &name]).await
}

/// A `lock` or `read` row's generation.
pub(crate) fn generation(row: &tokio_postgres::Row) -> Result<i64, tokio_postgres::Error> {
    row.try_get(2)
}

/// A checkpoint row's position: `None` for a row inserted only to be locked.
pub(crate) fn position(
    row: &tokio_postgres::Row,
) -> Result<Option<GlobalPosition>, tokio_postgres::Error> {
    let commit: Option<i64> = row.try_get(0)?;
    let sequence: Option<i64> = row.try_get(1)?;
    Ok(commit
        .zip(sequence)
        .map(|(commit, sequence)| GlobalPosition::new(commit as u64, sequence as u64)))
}

impl CheckpointStore for PgEventStore {
    async fn load_checkpoint(
        &self,
        subscriber: &str,
    ) -> Result<Option<GlobalPosition>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.checkpoint.load)
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&statement, &[&self.tenant.as_str(), &subscriber])
            .await
            .map_err(backend)?;
        match row {
            Some(row) => position(&row).map_err(backend),
            None => Ok(None),
        }
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        position: GlobalPosition,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.checkpoint.save)
            .await
            .map_err(backend)?;
        let (commit, sequence) = columns(position);
        client
            .execute(
                &statement,
                &[&self.tenant.as_str(), &subscriber, &commit, &sequence],
            )
            .await
            .map(drop)
            .map_err(backend)
    }
}
