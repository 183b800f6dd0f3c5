//! [`Lifecycle`]: deleting and truncating streams, each in one `IMMEDIATE` transaction on the
//! writer thread, as an append is.
//!
//! Removed events move with `INSERT INTO archived_events SELECT ...` and `DELETE` (a
//! tombstone only deletes, and drops the stream's archive too). A deletion's marker is a row
//! of the log like any event: a new id, a commit of its own, inline projections applied to it
//! in its transaction, and the append signal moved after its commit.
//!
//! Positions are never reused although rows leave the log: the writer numbers a commit from
//! the log's highest position, and every removal leaves a higher one in place (a deletion's
//! marker comes after what it removed; a truncation keeps the stream's last event).
//!
//! A truncation records the last position it removed in `truncations`, one row per tenant;
//! every page of the log (and an inline projection's catch-up) looks it up by primary key and
//! fails with [`StoreError::Truncated`] when the reader is behind it.

use eventsrc_core::store::ReadAll;
use eventsrc_core::store::lifecycle::{
    Deleted, Deletion, Lifecycle, STREAM_DELETED, STREAM_TOMBSTONED, Truncated, marker_payload,
};
use eventsrc_core::{
    EventId, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent, StoreError, StreamId,
    StreamVersion, Tenant, Timestamp,
};
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::inline::{self, InlineProjections};
use crate::{SqliteEventStore, backend, closed, rows, statements, writer};

/// A removal for the writer thread, with where to answer it.
pub(crate) enum Removal {
    /// [`Lifecycle::delete_stream`].
    Delete {
        tenant: Tenant,
        stream: StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
        reply: oneshot::Sender<Result<Deleted, StoreError>>,
    },
    /// [`Lifecycle::truncate_before`].
    Truncate {
        tenant: Tenant,
        stream: StreamId,
        before: StreamVersion,
        reply: oneshot::Sender<Result<Truncated, StoreError>>,
    },
}

impl Removal {
    /// Runs the removal in a transaction of its own on the writer's connection, at `now`,
    /// calls `appended` once a marker is committed, then answers.
    pub(crate) fn run(
        self,
        conn: &mut Connection,
        inline: &mut InlineProjections,
        now: Timestamp,
        appended: impl FnOnce(),
    ) {
        match self {
            Self::Delete {
                tenant,
                stream,
                expected,
                deletion,
                reply,
            } => {
                let deleted = in_transaction(conn, |tx| {
                    delete(tx, inline, &tenant, &stream, expected, deletion, now)
                });
                if matches!(&deleted, Ok(deleted) if !deleted.already_deleted) {
                    appended();
                }
                let _ = reply.send(deleted);
            }
            Self::Truncate {
                tenant,
                stream,
                before,
                reply,
            } => {
                let truncated =
                    in_transaction(conn, |tx| truncate(tx, &tenant, &stream, before, now));
                let _ = reply.send(truncated);
            }
        }
    }
}

/// Runs `job` in an `IMMEDIATE` transaction, committed if it succeeds (rolled back, when
/// dropped, if not).
fn in_transaction<T>(
    conn: &mut Connection,
    job: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let done = job(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(done)
}

/// [`Lifecycle::delete_stream`]'s work inside its transaction.
fn delete(
    tx: &Transaction<'_>,
    inline: &mut InlineProjections,
    tenant: &Tenant,
    stream: &StreamId,
    expected: ExpectedVersion,
    deletion: Deletion,
    now: Timestamp,
) -> Result<Deleted, StoreError> {
    let current = rows::current_version(tx, tenant, stream)?;
    let last = rows::last_event(tx, tenant, stream, current)?;
    let (last_position, last_type) = match &last {
        Some((position, kind)) => (*position, Some(kind.as_str())),
        None => (GlobalPosition::START, None),
    };
    let tombstoned = current == StreamVersion::TOMBSTONE || last_type == Some(STREAM_TOMBSTONED);
    // A deletion already done the same way is a retry, whatever `expected` says.
    match deletion {
        Deletion::Tombstone if tombstoned => {
            return Ok(Deleted::new(current, last_position, 0, true));
        }
        Deletion::Soft if tombstoned => {
            return Err(StoreError::Tombstoned {
                stream: stream.clone(),
            });
        }
        Deletion::Soft if last_type == Some(STREAM_DELETED) => {
            return Ok(Deleted::new(current, last_position, 0, true));
        }
        Deletion::Soft | Deletion::Tombstone => {}
    }
    if !expected.accepts(current) {
        return Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual: current,
        });
    }
    // Read before anything is removed: the stream's last event may hold the log's highest
    // position, and the marker must come after it.
    let position = writer::last_position(tx).map_err(backend)? + 1;
    let (kind, version, removed) = match deletion {
        Deletion::Soft => {
            let next = current.advance(1);
            // The marker of a soft delete must stay below the tombstone's version, or the
            // stream would read as tombstoned.
            if next >= StreamVersion::TOMBSTONE {
                return Err(StoreError::InvalidAppend {
                    stream: stream.clone(),
                    reason: format!(
                        "the stream is at version {current}, the highest a soft delete's marker can follow; tombstone it instead"
                    ),
                });
            }
            let archived = archive(tx, tenant, stream, current, now)?;
            (STREAM_DELETED, next, archived)
        }
        Deletion::Tombstone => {
            // Gone for good: neither the events nor what was archived before stay, nor the
            // copies reactors parked.
            delete_rows(tx, statements::DROP_ARCHIVE, tenant, stream)?;
            delete_rows(tx, DROP_PARKED, tenant, stream)?;
            let removed = remove(tx, tenant, stream, current)?;
            (STREAM_TOMBSTONED, StreamVersion::TOMBSTONE, removed)
        }
    };
    delete_rows(tx, DROP_SNAPSHOT, tenant, stream)?;

    let marker = NewEvent::raw(kind, 1, marker_payload(current));
    let stored = version.get() as i64;
    tx.prepare_cached(statements::INSERT)
        .and_then(|mut s| {
            s.execute(params![
                position,
                position,
                tenant.as_str(),
                stream.as_str(),
                stream.category(),
                stored,
                EventId::new().0.as_bytes(),
                kind,
                marker.schema_version,
                marker.payload,
                Option::<String>::None,
                now.as_micros(),
            ])
        })
        .map_err(backend)?;
    let at = GlobalPosition::new(position as u64, position as u64);
    if inline.follows(tenant) {
        // An appended event goes through the inline projections in its transaction; the
        // marker does too, so that a read model can drop the stream's rows with it.
        let records: Vec<RecordedEvent> = inline::records(
            tenant,
            stream,
            std::slice::from_ref(&marker),
            stored,
            at,
            now,
        )
        .collect();
        inline.apply_append(tx, tenant, &records)?;
    }
    Ok(Deleted::new(version, at, removed, false))
}

/// [`Lifecycle::truncate_before`]'s work inside its transaction.
fn truncate(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    stream: &StreamId,
    before: StreamVersion,
    now: Timestamp,
) -> Result<Truncated, StoreError> {
    let current = rows::current_version(tx, tenant, stream)?;
    if before > current {
        return Err(StoreError::InvalidAppend {
            stream: stream.clone(),
            reason: format!(
                "cannot truncate before version {before}: the stream is at version {current}, and its last event stays; delete the stream instead"
            ),
        });
    }
    if current == StreamVersion::TOMBSTONE {
        // Nothing of a tombstoned stream is archived: its marker is all there is.
        return Ok(Truncated::new(0, current));
    }
    let kept_from = rows::first_version(tx, tenant, stream)?;
    if before <= kept_from {
        return Ok(Truncated::new(0, kept_from));
    }
    let through = StreamVersion(before.get() - 1);
    let Some(last) = rows::last_through(tx, tenant, stream, through)? else {
        return Ok(Truncated::new(0, kept_from));
    };
    let archived = archive(tx, tenant, stream, through, now)?;
    tx.prepare_cached(statements::RECORD_TRUNCATION)
        .and_then(|mut s| {
            s.execute(params![
                tenant.as_str(),
                last.commit as i64,
                last.sequence as i64
            ])
        })
        .map_err(backend)?;
    Ok(Truncated::new(archived, before))
}

/// Moves `stream`'s events up to `through` to the archive, stamped `now`; returns how many.
fn archive(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    stream: &StreamId,
    through: StreamVersion,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let stored = through.get() as i64;
    tx.prepare_cached(statements::ARCHIVE)
        .and_then(|mut s| {
            s.execute(params![
                tenant.as_str(),
                stream.as_str(),
                stored,
                now.as_micros()
            ])
        })
        .map_err(backend)?;
    remove(tx, tenant, stream, through)
}

/// The copies reactors parked of a stream, dropped with it by a tombstone: tenant, stream.
const DROP_PARKED: &str = "DELETE FROM parked WHERE tenant = ?1 AND stream = ?2";

/// A stream's snapshot, dropped by every deletion: tenant, stream.
const DROP_SNAPSHOT: &str = "DELETE FROM snapshots WHERE tenant = ?1 AND stream = ?2";

/// Runs `statement`, a `DELETE` of `stream`'s rows in some table (parameters: tenant, stream).
fn delete_rows(
    tx: &Transaction<'_>,
    statement: &str,
    tenant: &Tenant,
    stream: &StreamId,
) -> Result<(), StoreError> {
    tx.prepare_cached(statement)
        .and_then(|mut s| s.execute(params![tenant.as_str(), stream.as_str()]))
        .map_err(backend)?;
    Ok(())
}

/// Removes `stream`'s events up to `through` from the log; returns how many.
fn remove(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    stream: &StreamId,
    through: StreamVersion,
) -> Result<u64, StoreError> {
    let stored = through.get() as i64;
    let removed = tx
        .prepare_cached(statements::REMOVE)
        .and_then(|mut s| s.execute(params![tenant.as_str(), stream.as_str(), stored]))
        .map_err(backend)?;
    Ok(removed as u64)
}

/// Fails a read of `tenant`'s log that is behind its truncation position, unless the read
/// allows it: one lookup of the `truncations` primary key.
pub(crate) fn check_behind(
    conn: &Connection,
    tenant: &Tenant,
    read: &ReadAll,
) -> Result<(), StoreError> {
    if read.allow_truncated {
        return Ok(());
    }
    match read.behind(rows::truncated_through(conn, tenant)?) {
        Some(behind) => Err(behind),
        None => Ok(()),
    }
}

impl SqliteEventStore {
    /// Sends a removal to the writer thread and waits for its answer.
    async fn remove<T>(
        &self,
        removal: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Removal,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .writer
            .send(writer::Request::Remove(removal(reply)))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// Deletions and truncations run on the writer thread, each in one transaction after the
/// appends sent before it; archived events and the truncation position are read on a reader
/// connection.
impl Lifecycle for SqliteEventStore {
    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
    ) -> Result<Deleted, StoreError> {
        let (tenant, stream) = (self.tenant.clone(), stream.clone());
        self.remove(|reply| Removal::Delete {
            tenant,
            stream,
            expected,
            deletion,
            reply,
        })
        .await
    }

    async fn truncate_before(
        &self,
        stream: &StreamId,
        version: StreamVersion,
    ) -> Result<Truncated, StoreError> {
        let (tenant, stream) = (self.tenant.clone(), stream.clone());
        self.remove(|reply| Removal::Truncate {
            tenant,
            stream,
            before: version,
            reply,
        })
        .await
    }

    async fn read_archive(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        let (tenant, stream) = (self.tenant.clone(), stream.clone());
        self.read(move |conn| rows::archived(conn, &tenant, &stream))
            .await
    }

    async fn truncated_through(&self) -> Result<GlobalPosition, StoreError> {
        let tenant = self.tenant.clone();
        self.read(move |conn| rows::truncated_through(conn, &tenant))
            .await
    }
}
