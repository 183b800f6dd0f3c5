//! [`Lifecycle`]: deleting streams and truncating them into `archived_events`, each in one
//! transaction.
//!
//! **Why a table lock.** Appends take no lock (one statement, autocommit): their only guard
//! is the `(tenant, stream, stream_version)` unique index, on the version they read. That is
//! not enough against a removal. A tombstone's marker sits at `i64::MAX`, not at the version
//! an append racing it would take, so the append's insert would not collide with it and its
//! event would outlive the tombstone; and a deleted row frees its version, so a statement that
//! read the stream before the removal could take that version again. So a removal first
//! takes `SHARE ROW EXCLUSIVE` on `events`: it waits for every transaction writing events to
//! end and holds new writers back until it commits. A writer's statement takes its snapshot
//! only once it holds its own lock on the table, so it then sees the removal and its marker,
//! and its version check refuses (or, with `Any`, appends after the marker): never both
//! applied against a stale view. The lock is self-exclusive, so removals also run one at a
//! time. Readers are not held back (they take `ACCESS SHARE`).
//!
//! The price is a pause of every writer of the schema while the removal holds the lock (three
//! round trips: the lock with the stream read again under it, the removal with its marker,
//! the commit), and the wait for writers already in flight. Hence the lock is taken only when
//! there is work, and only once every statement is prepared:
//! the checks that write nothing (a retried deletion, a stale expectation, a truncation with
//! nothing to move) are answered from a first read without it, and a removal waiting more
//! than [`LOCK_TIMEOUT`] for the lock (a transaction writing events left open) gives up rather
//! than hold every append back behind it.
//!
//! **The marker** is inserted like an appended event: its position and transaction id are the
//! column defaults every append uses, so log readers, who stop below the oldest transaction
//! still in flight, see it once the removal commits and never skip it; inline projections
//! apply it in the removal's transaction; live readers are woken as after an append.

use deadpool_postgres::{GenericClient, Transaction};
use eventsrc_core::store::lifecycle::{
    Deleted, Deletion, Lifecycle, STREAM_DELETED, STREAM_TOMBSTONED, Truncated, marker_payload,
};
use eventsrc_core::{
    EventId, ExpectedVersion, GlobalPosition, RecordedEvent, StoreError, StreamId, StreamVersion,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::rows;
use crate::writer::{self, Attempt};
use crate::{PgEventStore, backend, inline};

/// How long a removal waits for its lock on `events` before it gives up
/// ([`StoreError::Backend`], nothing removed): while it waits, new appends queue behind it.
pub(crate) const LOCK_TIMEOUT: &str = "5s";

/// How many times a removal runs again after PostgreSQL resolved a deadlock or a
/// serialization failure by failing it.
const MAX_TRIES: usize = 10;

/// The columns an event and its archived copy share, in this order.
const EVENT_COLUMNS: &str = "position, transaction_id, tenant, stream, category, \
     stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at";

/// The SQL of deletions and truncations, with the schema filled in once.
pub(crate) struct LifecycleSql {
    /// The removal's lock on `events` (see the module docs), with its timeout.
    lock: String,
    /// The newest event of `$1` tenant's stream `$2`: version, type, transaction id, position.
    last: String,
    /// The newest and oldest versions of `$1` tenant's stream `$2` (0 and 1 for none).
    bounds: String,
    /// Moves every event of the stream to the archive; the count.
    archive_stream: String,
    /// Deletes every event of the stream and its archive; the count of events.
    forget_stream: String,
    /// Inserts a marker: `$1` tenant, `$2` stream, `$3` category, `$4` version, `$5` id,
    /// `$6` type, `$7` payload; returns the position and transaction id.
    marker: String,
    /// Drops the stream's snapshot.
    drop_snapshot: String,
    /// Moves the stream's events before version `$3` to the archive and records the last
    /// one's position as the tenant's truncation, unless an earlier one was later; the count,
    /// and that position.
    truncate: String,
}

impl LifecycleSql {
    pub(crate) fn new(schema: &str) -> Self {
        // The stream's first version in `order`: its newest (`DESC`) or oldest (`ASC`).
        let first_in = |order: &str| {
            format!(
                "SELECT stream_version FROM {schema}.events \
                 WHERE tenant = $1 AND stream = $2 ORDER BY stream_version {order} LIMIT 1"
            )
        };
        // Moved rows keep every column; `archived_at` is the moving transaction's time.
        let archive = format!(
            "archived AS ( \
                 INSERT INTO {schema}.archived_events ({EVENT_COLUMNS}) \
                 SELECT {EVENT_COLUMNS} FROM removed \
             )"
        );
        Self {
            lock: format!(
                "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; \
                 LOCK TABLE {schema}.events IN SHARE ROW EXCLUSIVE MODE"
            ),
            last: format!(
                "SELECT stream_version, event_type, transaction_id, position \
                 FROM {schema}.events \
                 WHERE tenant = $1 AND stream = $2 ORDER BY stream_version DESC LIMIT 1"
            ),
            bounds: format!(
                "SELECT COALESCE(({}), 0), COALESCE(({}), 1)",
                first_in("DESC"),
                first_in("ASC")
            ),
            archive_stream: format!(
                "WITH removed AS ( \
                     DELETE FROM {schema}.events WHERE tenant = $1 AND stream = $2 \
                     RETURNING {EVENT_COLUMNS} \
                 ), {archive} \
                 SELECT count(*) FROM removed"
            ),
            forget_stream: format!(
                "WITH removed AS ( \
                     DELETE FROM {schema}.events WHERE tenant = $1 AND stream = $2 \
                     RETURNING 1 \
                 ), forgotten AS ( \
                     DELETE FROM {schema}.archived_events WHERE tenant = $1 AND stream = $2 \
                 ), unparked AS ( \
                     DELETE FROM {schema}.parked WHERE tenant = $1 AND stream = $2 \
                 ) \
                 SELECT count(*) FROM removed"
            ),
            marker: format!(
                "INSERT INTO {schema}.events (tenant, stream, category, stream_version, \
                     event_id, event_type, schema_version, payload) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7::text::json) \
                 RETURNING position, transaction_id"
            ),
            drop_snapshot: format!(
                "DELETE FROM {schema}.snapshots WHERE tenant = $1 AND stream = $2"
            ),
            truncate: format!(
                "WITH removed AS ( \
                     DELETE FROM {schema}.events \
                     WHERE tenant = $1 AND stream = $2 AND stream_version < $3 \
                     RETURNING {EVENT_COLUMNS} \
                 ), {archive}, last AS ( \
                     SELECT transaction_id, position FROM removed \
                     ORDER BY transaction_id DESC, position DESC LIMIT 1 \
                 ), cut AS ( \
                     INSERT INTO {schema}.truncations AS t (tenant, commit_id, sequence) \
                     SELECT $1, transaction_id, position FROM last \
                     ON CONFLICT (tenant) DO UPDATE \
                     SET commit_id = excluded.commit_id, sequence = excluded.sequence \
                     WHERE (t.commit_id, t.sequence) < (excluded.commit_id, excluded.sequence) \
                 ) \
                 SELECT (SELECT count(*) FROM removed), \
                     (SELECT transaction_id FROM last), (SELECT position FROM last)"
            ),
        }
    }
}

/// Why a removal's transaction stopped before its commit.
enum Stop {
    /// PostgreSQL failed it to resolve a deadlock or a serialization failure: run again.
    Raced,
    /// The answer: nothing was written, and the transaction is rolled back.
    Failed(StoreError),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Failed(error)
    }
}

/// A failed statement of a removal of `stream`: a race to run again, the lock not had in
/// time, or the backend's error.
fn stopped(stream: &StreamId, error: tokio_postgres::Error) -> Stop {
    if let Some(Attempt::<()>::Raced) = writer::lost(&error) {
        return Stop::Raced;
    }
    match error.as_db_error() {
        Some(db) if *db.code() == SqlState::LOCK_NOT_AVAILABLE => {
            Stop::Failed(StoreError::backend(std::io::Error::other(format!(
                "removing events of `{stream}` waited {LOCK_TIMEOUT} for its lock on the events \
                 table, which a transaction writing events still holds back; nothing was \
                 removed, and it may be tried again"
            ))))
        }
        _ => Stop::Failed(backend(error)),
    }
}

/// The newest event of a stream, as [`LifecycleSql::last`] reads it.
struct Last {
    version: StreamVersion,
    event_type: String,
    position: GlobalPosition,
}

impl Last {
    fn read(row: &Row) -> Result<Self, StoreError> {
        let version: i64 = row.try_get(0).map_err(backend)?;
        let event_type: String = row.try_get(1).map_err(backend)?;
        let commit: i64 = row.try_get(2).map_err(backend)?;
        let sequence: i64 = row.try_get(3).map_err(backend)?;
        Ok(Self {
            version: StreamVersion(version.max(0) as u64),
            event_type,
            position: GlobalPosition::new(commit.max(0) as u64, sequence.max(0) as u64),
        })
    }
}

/// What a deletion does to a stream whose newest event is `last`, as the contract says (and
/// the memory store does): `Ok(None)` to delete it, `Ok(Some(_))` for a retried deletion that
/// writes nothing, or the error that refuses it.
fn decide(
    stream: &StreamId,
    expected: ExpectedVersion,
    deletion: Deletion,
    last: Option<&Last>,
) -> Result<Option<Deleted>, StoreError> {
    let current = last.map_or(StreamVersion::NONE, |last| last.version);
    if let Some(last) = last {
        match (deletion, last.event_type.as_str()) {
            (Deletion::Tombstone, STREAM_TOMBSTONED) | (Deletion::Soft, STREAM_DELETED) => {
                return Ok(Some(Deleted::new(last.version, last.position, 0, true)));
            }
            (Deletion::Soft, STREAM_TOMBSTONED) => {
                return Err(StoreError::Tombstoned {
                    stream: stream.clone(),
                });
            }
            _ => {}
        }
    }
    match expected.accepts(current) {
        true => Ok(None),
        false => Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual: current,
        }),
    }
}

impl PgEventStore {
    /// The newest event of `stream`, read on `client`.
    async fn last_event(
        &self,
        client: &impl GenericClient,
        stream: &StreamId,
    ) -> Result<Option<Last>, Stop> {
        let statement = client
            .prepare_cached(&self.shared.sql.lifecycle.last)
            .await
            .map_err(|error| stopped(stream, error))?;
        let row = client
            .query_opt(&statement, &[&self.tenant.as_str(), &stream.as_str()])
            .await
            .map_err(|error| stopped(stream, error))?;
        Ok(row.as_ref().map(Last::read).transpose()?)
    }

    /// The newest and oldest versions of `stream` (0 and 1 when it has no events), read in
    /// `tx`.
    async fn bounds(
        &self,
        tx: &Transaction<'_>,
        stream: &StreamId,
    ) -> Result<(StreamVersion, StreamVersion), Stop> {
        let fail = |error| stopped(stream, error);
        let statement = tx
            .prepare_cached(&self.shared.sql.lifecycle.bounds)
            .await
            .map_err(fail)?;
        let row = tx
            .query_one(&statement, &[&self.tenant.as_str(), &stream.as_str()])
            .await
            .map_err(fail)?;
        let newest: i64 = row.try_get(0).map_err(backend)?;
        let oldest: i64 = row.try_get(1).map_err(backend)?;
        Ok((
            StreamVersion(newest.max(0) as u64),
            StreamVersion(oldest.max(1) as u64),
        ))
    }

    /// Takes the removal's lock on `events` in `tx` (see the module docs) and runs `read`
    /// under it, in one round trip: `read`'s statement follows the lock on the wire, so it
    /// sees every write committed before the lock. `read`'s statement must already be
    /// prepared on the connection, so that it is sent without waiting.
    async fn locked<T>(
        &self,
        tx: &Transaction<'_>,
        stream: &StreamId,
        read: impl Future<Output = Result<T, Stop>>,
    ) -> Result<T, Stop> {
        let (locked, read) =
            futures_util::future::join(tx.batch_execute(&self.shared.sql.lifecycle.lock), read)
                .await;
        // A failed lock fails the read too (the transaction is aborted): its own error is the
        // one to report.
        locked.map_err(|error| stopped(stream, error))?;
        read
    }

    /// One try of [`Lifecycle::delete_stream`] in `tx`: the deletion, ready to commit, or
    /// what stopped it.
    async fn delete_in(
        &self,
        tx: &Transaction<'_>,
        stream: &StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
    ) -> Result<Result<Deleted, Deleted>, Stop> {
        // First without the lock: a retry or a refusal writes nothing, and holds no appends.
        let last = self.last_event(tx, stream).await?;
        if let Some(unchanged) = decide(stream, expected, deletion, last.as_ref())? {
            return Ok(Err(unchanged));
        }
        let sql = &self.shared.sql.lifecycle;
        let fail = |error| stopped(stream, error);
        let remove = match deletion {
            Deletion::Soft => &sql.archive_stream,
            Deletion::Tombstone => &sql.forget_stream,
        };
        // Prepared before the lock, so that no preparing round trip holds appends back.
        let (remove, marker, drop_snapshot) = futures_util::future::try_join3(
            tx.prepare_cached(remove),
            tx.prepare_cached(&sql.marker),
            tx.prepare_cached(&sql.drop_snapshot),
        )
        .await
        .map_err(fail)?;
        // Again under the lock: now no writer can change the stream until the commit.
        let last = self.locked(tx, stream, self.last_event(tx, stream)).await?;
        if let Some(unchanged) = decide(stream, expected, deletion, last.as_ref())? {
            return Ok(Err(unchanged));
        }
        let current = last.map_or(StreamVersion::NONE, |last| last.version);
        if deletion == Deletion::Soft && current.advance(1) >= StreamVersion::TOMBSTONE {
            // Only a stream written behind the store's back gets here (appends stop below).
            return Err(Stop::Failed(StoreError::InvalidAppend {
                stream: stream.clone(),
                reason: format!(
                    "the stream is at version {current}: its marker would take version {}, \
                     which only a tombstone's marker takes",
                    StreamVersion::TOMBSTONE
                ),
            }));
        }
        let (kind, version) = match deletion {
            Deletion::Soft => (STREAM_DELETED, current.advance(1)),
            Deletion::Tombstone => (STREAM_TOMBSTONED, StreamVersion::TOMBSTONE),
        };
        let id = EventId::new();
        let (tenant, name, category) = (self.tenant.as_str(), stream.as_str(), stream.category());
        let signed = i64::try_from(version.get()).unwrap_or(i64::MAX);
        let payload = marker_payload(current);
        let key: [&(dyn ToSql + Sync); 2] = [&tenant, &name];
        let values: [&(dyn ToSql + Sync); 7] =
            [&tenant, &name, &category, &signed, &id.0, &kind, &payload];
        // One round trip, in this order on the wire: the stream's events go before the marker
        // takes its version after them.
        let (removed, inserted, dropped) = futures_util::future::join3(
            tx.query_one(&remove, &key),
            tx.query_one(&marker, &values),
            tx.execute(&drop_snapshot, &key),
        )
        .await;
        // After a failure the later statements fail too (the transaction is aborted): the
        // first error is the one to report.
        let (removed, inserted) = match (removed, inserted, dropped) {
            (Ok(removed), Ok(inserted), Ok(_)) => (removed, inserted),
            (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                return Err(fail(error));
            }
        };
        let removed: i64 = removed.try_get(0).map_err(backend)?;
        let sequence: i64 = inserted.try_get(0).map_err(backend)?;
        let commit: i64 = inserted.try_get(1).map_err(backend)?;
        if !self.inline.is_empty() {
            // The marker is an event of the log like any other: read models kept inline
            // see it in the same transaction, as they see an append's events.
            let records = self.events_by_id(tx, &[id]).await?;
            inline::apply(self, tx, stream, &records).await?;
        }
        let position = GlobalPosition::new(commit.max(0) as u64, sequence.max(0) as u64);
        tracing::debug!(%stream, ?deletion, removed, %position, "deleted a stream");
        Ok(Ok(Deleted::new(
            version,
            position,
            removed.max(0) as u64,
            false,
        )))
    }

    /// One try of [`Lifecycle::truncate_before`] in `tx`: `Ok(Ok(_))` when it moved events
    /// (to commit), `Ok(Err(_))` when it moved nothing.
    async fn truncate_in(
        &self,
        tx: &Transaction<'_>,
        stream: &StreamId,
        version: StreamVersion,
    ) -> Result<Result<Truncated, Truncated>, Stop> {
        let sql = &self.shared.sql.lifecycle;
        let fail = |error| stopped(stream, error);
        let (tenant, name) = (self.tenant.as_str(), stream.as_str());
        // First without the lock: a cut past the stream, or one with nothing to move (the
        // usual answer to a retention policy run again), holds no appends.
        let (current, oldest) = self.bounds(tx, stream).await?;
        if let Some(answer) = nothing_to_move(stream, version, current, oldest)? {
            return Ok(Err(answer));
        }
        let truncate = tx.prepare_cached(&sql.truncate).await.map_err(fail)?;
        let (current, oldest) = self.locked(tx, stream, self.bounds(tx, stream)).await?;
        if let Some(answer) = nothing_to_move(stream, version, current, oldest)? {
            return Ok(Err(answer));
        }
        let before = i64::try_from(version.get()).unwrap_or(i64::MAX);
        let row = tx
            .query_one(&truncate, &[&tenant, &name, &before])
            .await
            .map_err(fail)?;
        let moved: i64 = row.try_get(0).map_err(backend)?;
        Ok(Ok(Truncated::new(moved.max(0) as u64, version)))
    }
}

impl PgEventStore {
    /// [`EventStore::archived_through`](eventsrc_core::EventStore::archived_through): the
    /// highest archived version of `stream`, read backward through the archive's key.
    pub(crate) async fn archived_version(
        &self,
        stream: &StreamId,
    ) -> Result<Option<StreamVersion>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.read.archived_through)
            .await
            .map_err(backend)?;
        let Some(row) = client
            .query_opt(&statement, &[&self.tenant.as_str(), &stream.as_str()])
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        match rows::positive(&row, 0) {
            Ok(version) => Ok(Some(StreamVersion(version))),
            Err(reason) => Err(StoreError::Corrupt {
                stream: Some(stream.clone()),
                version: None,
                position: None,
                reason: format!("an archived event of the stream: {reason}"),
            }),
        }
    }
}

/// The answer of a truncation of `stream` before `version` that moves nothing, its newest and
/// oldest versions being `current` and `oldest`: `Ok(None)` when it moves events.
fn nothing_to_move(
    stream: &StreamId,
    version: StreamVersion,
    current: StreamVersion,
    oldest: StreamVersion,
) -> Result<Option<Truncated>, StoreError> {
    if version > current {
        return Err(StoreError::InvalidAppend {
            stream: stream.clone(),
            reason: format!(
                "cannot truncate before version {version}: the stream is at version {current}, \
                 and its last event stays; delete the stream instead"
            ),
        });
    }
    // Cut at or before its oldest event, the stream keeps everything (a tombstoned stream
    // holds only its marker, so this answers it too).
    Ok((version <= oldest).then(|| Truncated::new(0, oldest)))
}

/// Ends the transaction of one try of a removal of `stream` by what the try said: commits
/// what it wrote (`Ok(Ok(_))`), rolls back what wrote nothing (`Ok(Err(_))`), and answers with
/// the result and whether it was written; `None` to try again (PostgreSQL failed the try, or
/// its commit, to resolve a deadlock or a serialization failure).
async fn finish<T>(
    tx: Transaction<'_>,
    stream: &StreamId,
    tried: Result<Result<T, T>, Stop>,
) -> Result<Option<(T, bool)>, StoreError> {
    match tried {
        Ok(Ok(done)) => match tx.commit().await {
            Ok(()) => Ok(Some((done, true))),
            Err(error) => match stopped(stream, error) {
                Stop::Raced => Ok(None),
                Stop::Failed(error) => Err(error),
            },
        },
        Ok(Err(unchanged)) => {
            tx.rollback().await.map_err(backend)?;
            Ok(Some((unchanged, false)))
        }
        Err(Stop::Raced) => {
            tx.rollback().await.map_err(backend)?;
            Ok(None)
        }
        // Dropping the transaction rolls it back.
        Err(Stop::Failed(error)) => Err(error),
    }
}

/// The error of a removal of `stream` failed [`MAX_TRIES`] times by PostgreSQL.
fn gave_up(stream: &StreamId) -> StoreError {
    StoreError::backend(std::io::Error::other(format!(
        "gave up removing events of `{stream}` after PostgreSQL failed it {MAX_TRIES} times \
         to resolve deadlocks or serialization failures"
    )))
}

/// Deletions and truncations, each one transaction; see the module docs for how they meet
/// concurrent appends.
impl Lifecycle for PgEventStore {
    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
    ) -> Result<Deleted, StoreError> {
        let mut client = self.client().await?;
        for _ in 0..MAX_TRIES {
            let tx = client.transaction().await.map_err(backend)?;
            let tried = self.delete_in(&tx, stream, expected, deletion).await;
            if let Some((deleted, wrote)) = finish(tx, stream, tried).await? {
                if wrote {
                    // The marker was appended: wake live readers as an append does.
                    self.appended();
                }
                return Ok(deleted);
            }
        }
        Err(gave_up(stream))
    }

    async fn truncate_before(
        &self,
        stream: &StreamId,
        version: StreamVersion,
    ) -> Result<Truncated, StoreError> {
        let mut client = self.client().await?;
        for _ in 0..MAX_TRIES {
            let tx = client.transaction().await.map_err(backend)?;
            let tried = self.truncate_in(&tx, stream, version).await;
            if let Some((truncated, _)) = finish(tx, stream, tried).await? {
                return Ok(truncated);
            }
        }
        Err(gave_up(stream))
    }

    async fn read_archive(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.read.archive)
            .await
            .map_err(backend)?;
        let found = client
            .query(&statement, &[&self.tenant.as_str(), &stream.as_str()])
            .await
            .map_err(backend)?;
        rows::records(&found, 0, &self.tenant, Some(stream))
    }

    async fn truncated_through(&self) -> Result<GlobalPosition, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.read.truncated)
            .await
            .map_err(backend)?;
        let found = client
            .query_opt(&statement, &[&self.tenant.as_str()])
            .await
            .map_err(backend)?;
        match found {
            Some(row) => rows::truncated(&row, 0),
            None => Ok(GlobalPosition::START),
        }
    }
}
