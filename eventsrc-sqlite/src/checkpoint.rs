//! Checkpoint rows: one statement each, shared by the `CheckpointStore`, SQL read models,
//! inline projections and read model switches, so that all of them read and write one table.

use eventsrc_core::{GlobalPosition, Tenant};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A checkpoint row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    /// Everything up to here is handled.
    pub position: GlobalPosition,
    /// Bumped each time a rebuilt read model is switched in under this name.
    pub generation: i64,
}

/// The checkpoint of `name`, if it has one.
pub(crate) fn load(
    conn: &Connection,
    tenant: &Tenant,
    name: &str,
) -> rusqlite::Result<Option<Stored>> {
    conn.prepare_cached(
        "SELECT commit_seq, sequence, generation FROM checkpoints WHERE tenant = ?1 AND subscriber = ?2",
    )?
    .query_row(params![tenant.as_str(), name], |r| {
        Ok(Stored {
            position: position(r)?,
            generation: r.get(2)?,
        })
    })
    .optional()
}

/// The position of a checkpoint row whose first two columns are `commit_seq, sequence`: stored
/// bit for bit, so u64 → i64 → u64 is the identity.
pub(crate) fn position(row: &Row<'_>) -> rusqlite::Result<GlobalPosition> {
    Ok(GlobalPosition::new(
        row.get::<_, i64>(0)? as u64,
        row.get::<_, i64>(1)? as u64,
    ))
}

/// Moves the checkpoint of `name` to `position`, keeping its generation.
pub(crate) fn save(
    conn: &Connection,
    tenant: &Tenant,
    name: &str,
    position: GlobalPosition,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (tenant, subscriber, commit_seq, sequence) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (tenant, subscriber) DO UPDATE SET commit_seq = excluded.commit_seq, sequence = excluded.sequence",
    )?
    .execute(params![
        tenant.as_str(),
        name,
        position.commit as i64,
        position.sequence as i64
    ])
    .map(drop)
}

/// Writes the whole row of `name`: position and generation.
pub(crate) fn replace(
    conn: &Connection,
    tenant: &Tenant,
    name: &str,
    stored: Stored,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (tenant, subscriber, commit_seq, sequence, generation) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (tenant, subscriber) DO UPDATE SET commit_seq = excluded.commit_seq, \
         sequence = excluded.sequence, generation = excluded.generation",
    )?
    .execute(params![
        tenant.as_str(),
        name,
        stored.position.commit as i64,
        stored.position.sequence as i64,
        stored.generation
    ])
    .map(drop)
}

/// Removes the checkpoint of `name`.
pub(crate) fn delete(conn: &Connection, tenant: &Tenant, name: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM checkpoints WHERE tenant = ?1 AND subscriber = ?2")?
        .execute(params![tenant.as_str(), name])
        .map(drop)
}
