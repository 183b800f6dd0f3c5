//! Appending: one statement, one round trip, on a pooled connection in autocommit (or, for a
//! handle with inline projections, inside the transaction that also applies them).
//!
//! The statement reads the stream's version, checks the expectation in SQL, inserts the whole
//! batch from arrays (a single event from plain parameters) and returns what it did,
//! atomically. Concurrent writers to one stream race
//! on the `(tenant, stream, stream_version)` unique index: the loser's statement fails with a
//! unique violation, and is run again so that it reads the winner's version (and then either
//! appends after it or reports the conflict, as its expectation says). A unique violation on
//! the event id means the batch may be a retry of one already stored: that is checked against
//! the stored rows, with the same rules as the other backends.
//!
//! An append across streams ([`append_streams`]) is one explicit transaction: it first takes a
//! transaction-level advisory lock per stream, in the order of the locks' keys, so that two
//! such appends over the same streams queue behind one another instead of deadlocking on
//! each other's rows; then one statement reads every part's version, checks every
//! expectation and inserts every part's events only if all of them hold. The locks order
//! appends across streams among themselves; against single appends (which take no lock, to
//! stay one statement) the unique index still decides, and the transaction runs again after a
//! lost race, as a single append does.
//!
//! Deleted streams ([`Lifecycle`](eventsrc_core::store::Lifecycle)) cost the usual append
//! nothing. A tombstone's marker sits at [`StreamVersion::TOMBSTONE`] (`i64::MAX`), and every
//! accepted range stops below it ([`accepted_range`]), so the version the statement already
//! reads refuses a tombstoned stream, whatever the expectation, and no batch can overflow
//! `bigint` or land on the tombstone's version. Only when a statement inserted nothing does
//! the writer look further: the tombstone, a retry, and last the type of the stream's last
//! event ([`check_expected`]). A soft-deleted stream started again (`NoStream`) then runs again
//! expecting its marker's exact version, so that the unique index still settles the race.

use deadpool_postgres::{GenericClient, Transaction};
use eventsrc_core::backend::{
    StoredCopy, already_stored, already_stored_parts, encode_metadata, encode_one_metadata,
};
use eventsrc_core::store::lifecycle::{STREAM_DELETED, check_expected, may_restart};
use eventsrc_core::store::{AppendResult, StreamAppend};
use eventsrc_core::{
    ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent, StoreError, StreamId, StreamVersion,
    Tenant, Timestamp, Uuid,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::rows::{Micros, RecordReader};
use crate::{PgEventStore, backend, inline};

/// How many times an append runs again after losing a race on a stream version to another
/// writer. Each lost race means another append landed, so this bounds only pathological
/// contention on one stream.
pub(crate) const MAX_RACES: usize = 1000;

/// The SQL of an append, with the schema filled in once.
pub(crate) struct WriteSql {
    append: String,
    append_one: String,
    append_exact: String,
    append_exact_notify: String,
    already_stored: String,
    append_parts: String,
    last_type: String,
    /// What the name of a stream's lock starts with: the lock is this schema's.
    lock_prefix: String,
}

impl WriteSql {
    pub(crate) fn new(schema: &str) -> Self {
        Self {
            append: append_sql(schema),
            append_one: append_one_sql(schema),
            append_exact: append_exact_sql(schema),
            append_exact_notify: format!(
                "{}, pg_notify($10, '') IS NULL",
                append_exact_sql(schema)
            ),
            already_stored: already_stored_sql(schema),
            append_parts: append_parts_sql(schema),
            last_type: format!(
                "SELECT event_type FROM {schema}.events \
                 WHERE tenant = $1 AND stream = $2 AND stream_version = $3"
            ),
            lock_prefix: format!("eventsrc stream {schema} "),
        }
    }

    /// The statement of an append of several events.
    pub(crate) fn append_sql(&self) -> &str {
        &self.append
    }

    /// The statement of an append of one event.
    pub(crate) fn append_one_sql(&self) -> &str {
        &self.append_one
    }

    /// The statement of an append of one event at an exact expected version.
    pub(crate) fn append_exact_sql(&self) -> &str {
        &self.append_exact
    }

    /// The name of the lock an append across streams takes on `tenant`'s `stream`, hashed by
    /// PostgreSQL into its key. The tenant is prefixed by its length, so that no two (tenant,
    /// stream) pairs spell the same name.
    fn lock_name(&self, tenant: &Tenant, stream: &StreamId) -> String {
        let tenant = tenant.as_str();
        format!("{}{}:{tenant} {stream}", self.lock_prefix, tenant.len())
    }
}

/// The newest version of stream `$2` of tenant `$1` (0 for none), as an expression. Written as
/// the first row of the stream's versions in descending order rather than as `MAX`, so that
/// the only cheap plan is the backward scan of the `(tenant, stream, stream_version)` index:
/// planned without statistics (a new table, or a prepared statement's generic plan made while
/// the table was small and kept as it grew), `MAX` could be an aggregate over every event of
/// the tenant read through the log index.
fn newest(schema: &str) -> String {
    format!(
        "COALESCE((SELECT stream_version FROM {schema}.events \
             WHERE tenant = $1 AND stream = $2 ORDER BY stream_version DESC LIMIT 1), 0)"
    )
}

/// The append statement. Parameters: `$1` tenant, `$2` stream, `$3` category, `$4..$5` the
/// accepted range of the current version, and `$6..$10` the batch as arrays (ids, types,
/// schema versions, payloads, metadata).
fn append_sql(schema: &str) -> String {
    let newest = newest(schema);
    format!(
        "WITH current AS ( \
             SELECT {newest} AS version \
         ), inserted AS ( \
             INSERT INTO {schema}.events (tenant, stream, category, stream_version, event_id, \
                 event_type, schema_version, payload, metadata) \
             SELECT $1, $2, $3, current.version + batch.n, batch.event_id, batch.event_type, \
                 batch.schema_version, batch.payload::json, batch.metadata::json \
             FROM current, unnest($6::uuid[], $7::text[], $8::bigint[], $9::text[], $10::text[]) \
                 WITH ORDINALITY AS batch(event_id, event_type, schema_version, payload, metadata, n) \
             WHERE current.version BETWEEN $4 AND $5 \
             ORDER BY batch.n \
             RETURNING position, transaction_id, recorded_at \
         ) \
         SELECT current.version, \
             (SELECT count(*) FROM inserted), \
             (SELECT max(position) FROM inserted), \
             (SELECT max(transaction_id) FROM inserted), \
             (SELECT max(recorded_at) FROM inserted) \
         FROM current"
    )
}

/// The append statement for a batch of one event, the usual case (a command deciding one
/// event): the same parameters, with `$6..$10` the event's id, type, schema version, payload and
/// metadata instead of arrays. Without the arrays to encode, unnest and aggregate, a durable
/// single-event append measured 10% faster (PostgreSQL 15, one client). The one row carries
/// the current version, then the inserted event's position, transaction id and recorded_at
/// (`NULL` when the expectation failed).
fn append_one_sql(schema: &str) -> String {
    let newest = newest(schema);
    format!(
        "WITH current AS ( \
             SELECT {newest} AS version \
         ), inserted AS ( \
             INSERT INTO {schema}.events (tenant, stream, category, stream_version, event_id, \
                 event_type, schema_version, payload, metadata) \
             SELECT $1, $2, $3, current.version + 1, $6::uuid, $7::text, $8::bigint, \
                 $9::text::json, $10::text::json \
             FROM current \
             WHERE current.version BETWEEN $4 AND $5 \
             RETURNING position, transaction_id, recorded_at \
         ) \
         SELECT current.version, inserted.position, inserted.transaction_id, \
             inserted.recorded_at \
         FROM current LEFT JOIN inserted ON true"
    )
}

/// The statement of the most common append of all, one event at an exact expected version
/// `$4` (`NoStream` is version 0), tried first: a plain `INSERT … SELECT` of the event at
/// version `$4 + 1`, kept only when the stream's newest version is `$4`, returning the event's
/// position, transaction id and recorded_at. The same check as the general statement's and
/// the same race, settled by the `(tenant, stream, stream_version)` unique index; only the
/// statement is plainer (no CTE, no join back to the version read, no row when the
/// expectation fails). No row, or a unique violation (another writer took the version first,
/// or the id is stored), leaves the append to the general statement, which reads the version
/// it reports and settles retries.
///
/// Parameters: `$1` tenant, `$2` stream, `$3` category, `$4` the expected version, `$5..$9`
/// the event's id, type, schema version, payload and metadata.
fn append_exact_sql(schema: &str) -> String {
    let newest = newest(schema);
    format!(
        "INSERT INTO {schema}.events (tenant, stream, category, stream_version, event_id, \
             event_type, schema_version, payload, metadata) \
         SELECT $1, $2, $3, $4::bigint + 1, $5::uuid, $6::text, $7::bigint, $8::text::json, \
             $9::text::json \
         WHERE {newest} = $4::bigint \
         RETURNING position, transaction_id, recorded_at"
    )
}

/// Looks up the stored rows of a batch's ids, one row per id in batch order (all columns
/// `NULL` where the id is not stored): the tenant, then the columns every event read selects.
fn already_stored_sql(schema: &str) -> String {
    format!(
        "SELECT e.tenant, e.position, e.transaction_id, e.stream, e.stream_version, \
             e.event_id, e.event_type, e.schema_version, e.payload, e.metadata, \
             e.recorded_at \
         FROM unnest($1::uuid[]) WITH ORDINALITY AS wanted(event_id, n) \
         LEFT JOIN {schema}.events e ON e.event_id = wanted.event_id \
         ORDER BY wanted.n"
    )
}

/// Takes the transaction-level advisory locks named by `$1`, one per distinct key, in the
/// order of the keys: every append across streams takes its locks in that one order, so two
/// of them wait for one another and never each hold a lock the other wants. (The subquery's
/// `ORDER BY` is what orders the calls; it keeps the subquery from being flattened away.)
const LOCK_STREAMS_SQL: &str = "SELECT pg_advisory_xact_lock(sorted.key) FROM ( \
         SELECT DISTINCT hashtextextended(name, 0) AS key FROM unnest($1::text[]) AS name \
         ORDER BY key \
     ) sorted";

/// The statement of an append across streams: every part's version, checked against every
/// part's expectation, and every part's events inserted only when all hold, in part order.
/// Parameters: `$1` tenant; per part `$2` stream, `$3` category, `$4..$5` the accepted range
/// of its version; per event (all parts' events, in order) `$6` its part (1-based), `$7` its
/// place in its part (1-based), then `$8..$12` ids, types, schema versions, payloads and
/// metadata. One row per part, in part order: its current version, then how many events of it
/// were inserted and the newest position and transaction id among them (`NULL` when nothing
/// was inserted), and their recorded_at (the transaction's time, which it defaults to, for a
/// part that inserted nothing). A part without events only has its version checked.
fn append_parts_sql(schema: &str) -> String {
    format!(
        "WITH parts AS MATERIALIZED ( \
             SELECT p.n, p.stream, p.category, p.low, p.high, \
                 COALESCE((SELECT e.stream_version FROM {schema}.events e \
                  WHERE e.tenant = $1 AND e.stream = p.stream \
                  ORDER BY e.stream_version DESC LIMIT 1), 0) AS version \
             FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
                 WITH ORDINALITY AS p(stream, category, low, high, n) \
         ), inserted AS ( \
             INSERT INTO {schema}.events (tenant, stream, category, stream_version, event_id, \
                 event_type, schema_version, payload, metadata) \
             SELECT $1, parts.stream, parts.category, parts.version + batch.place, \
                 batch.event_id, batch.event_type, batch.schema_version, batch.payload::json, \
                 batch.metadata::json \
             FROM unnest($6::bigint[], $7::bigint[], $8::uuid[], $9::text[], $10::bigint[], \
                     $11::text[], $12::text[]) \
                 WITH ORDINALITY AS batch(part, place, event_id, event_type, schema_version, \
                     payload, metadata, n) \
             JOIN parts ON parts.n = batch.part \
             WHERE NOT EXISTS ( \
                 SELECT 1 FROM parts stale WHERE stale.version NOT BETWEEN stale.low AND stale.high \
             ) \
             ORDER BY batch.n \
             RETURNING stream, position, transaction_id, recorded_at \
         ) \
         SELECT parts.version, done.count, done.last, done.commit, \
             COALESCE(done.recorded_at, now()) \
         FROM parts LEFT JOIN ( \
             SELECT stream, count(*) AS count, max(position) AS last, \
                 max(transaction_id) AS commit, max(recorded_at) AS recorded_at \
             FROM inserted GROUP BY stream \
         ) done ON done.stream = parts.stream \
         ORDER BY parts.n"
    )
}

/// One append: where, what is expected, and the batch.
pub(crate) struct Append<'a> {
    pub tenant: &'a Tenant,
    pub stream: &'a StreamId,
    pub expected: ExpectedVersion,
    pub events: &'a [NewEvent],
}

/// The batch as the statement binds it: one event's values, or the arrays the batch statement
/// unnests. Payloads are borrowed, not copied.
enum Batch<'a> {
    One {
        id: Uuid,
        event_type: &'a str,
        schema_version: i64,
        payload: &'a str,
        metadata: Option<String>,
    },
    Many(Columns<'a>),
}

impl<'a> Batch<'a> {
    fn of(events: &'a [NewEvent]) -> Result<Self, StoreError> {
        Ok(match events {
            [event] => Batch::One {
                id: event.event_id.0,
                event_type: &event.event_type,
                schema_version: i64::from(event.schema_version),
                payload: &event.payload,
                metadata: encode_one_metadata(&event.metadata)?,
            },
            events => Batch::Many(Columns::of(events)?),
        })
    }
}

/// The batch as the arrays the statement unnests.
struct Columns<'a> {
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i64>,
    payloads: Vec<&'a str>,
    metadata: Vec<Option<String>>,
}

impl<'a> Columns<'a> {
    fn of(events: &'a [NewEvent]) -> Result<Self, StoreError> {
        let mut columns = Columns {
            ids: Vec::with_capacity(events.len()),
            types: Vec::with_capacity(events.len()),
            schema_versions: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
            metadata: encode_metadata(events)?,
        };
        columns.push_events(events);
        Ok(columns)
    }

    /// The columns of the events of every part, one after the other.
    fn of_parts(appends: &'a [StreamAppend]) -> Result<Self, StoreError> {
        let count = appends.iter().map(|part| part.events.len()).sum();
        let mut columns = Columns {
            ids: Vec::with_capacity(count),
            types: Vec::with_capacity(count),
            schema_versions: Vec::with_capacity(count),
            payloads: Vec::with_capacity(count),
            metadata: Vec::with_capacity(count),
        };
        for part in appends {
            columns.metadata.extend(encode_metadata(&part.events)?);
            columns.push_events(&part.events);
        }
        Ok(columns)
    }

    /// Adds every column but the metadata, which is encoded a run at a time.
    fn push_events(&mut self, events: &'a [NewEvent]) {
        for event in events {
            self.ids.push(event.event_id.0);
            self.types.push(&event.event_type);
            self.schema_versions.push(i64::from(event.schema_version));
            self.payloads.push(&event.payload);
        }
    }
}

/// The range of current versions `expected` accepts for a batch of `count` events, as the
/// statement's `$4` and `$5`.
///
/// The range ends where the batch's last version would still be below
/// [`StreamVersion::TOMBSTONE`]: `current + count` then never overflows `bigint`, no event but
/// a tombstone's marker is stored at its version, and a tombstoned stream (at `i64::MAX`) is
/// outside every range, `Any` included, so the statement inserts nothing into it and reports
/// the version that says why. Ranges are parameters: the statements and their plans are the
/// same as without the cap.
fn accepted_range(expected: ExpectedVersion, count: usize) -> (i64, i64) {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let last = (i64::MAX - 1).saturating_sub(count);
    let (low, high) = match expected {
        ExpectedVersion::Any => (0, i64::MAX),
        ExpectedVersion::NoStream => (0, 0),
        ExpectedVersion::StreamExists => (1, i64::MAX),
        // A version beyond i64 is never a stream's: an empty range.
        ExpectedVersion::Exact(version) => match i64::try_from(version.get()) {
            Ok(version) => (version, version),
            Err(_) => (1, 0),
        },
    };
    (low, high.min(last))
}

/// The range of a batch of `count` events run again at exactly `version` (a soft-deleted
/// stream's marker): that version, under the same cap.
fn exact_range(version: i64, count: usize) -> (i64, i64) {
    let (_, cap) = accepted_range(ExpectedVersion::Any, count);
    (version, version.min(cap))
}

/// Settles an append of `count` events (or a part of one) whose range did not hold `current`,
/// after the retry check: `Ok(version)` when the stream is soft-deleted and `expected` starts
/// it again, to run again at exactly its marker's version (so that the unique index settles a
/// race with another writer, as for any append); otherwise the error to report:
/// [`StoreError::Tombstoned`], [`StoreError::InvalidAppend`] when only the cap below the
/// tombstone refuses the batch (the [`exact_range`] of that run would hold nothing), or
/// [`StoreError::WrongExpectedVersion`] naming the caller's own expectation.
///
/// The tombstone is told by the version alone; the last event's type is read, on `client`,
/// only for an expectation that may restart a stream, and the common conflict (`Exact` of a
/// stale version) pays nothing more.
pub(crate) async fn refusal(
    client: &impl GenericClient,
    sql: &WriteSql,
    tenant: &Tenant,
    stream: &StreamId,
    expected: ExpectedVersion,
    current: u64,
    count: usize,
) -> Result<i64, StoreError> {
    let version = StreamVersion(current);
    let signed = i64::try_from(current).unwrap_or(i64::MAX);
    let tombstone = version == StreamVersion::TOMBSTONE;
    let last_type: Option<String> = match may_restart(expected) && current > 0 && !tombstone {
        false => None,
        true => {
            let statement = client
                .prepare_cached(&sql.last_type)
                .await
                .map_err(backend)?;
            client
                .query_opt(&statement, &[&tenant.as_str(), &stream.as_str(), &signed])
                .await
                .map_err(backend)?
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(backend)?
        }
    };
    check_expected(stream, expected, version, last_type.as_deref())?;
    let (low, high) = exact_range(signed, count);
    if last_type.as_deref() == Some(STREAM_DELETED) && low <= high {
        return Ok(signed);
    }
    // Accepted, yet outside the range: only the cap below the tombstone refuses that.
    Err(StoreError::InvalidAppend {
        stream: stream.clone(),
        reason: format!(
            "the stream is at version {current}: the batch would reach version {}, which \
             only a tombstone's marker takes",
            StreamVersion::TOMBSTONE
        ),
    })
}

/// What one run of the statement answered, or why it must run again.
pub(crate) enum Attempt<T = AppendResult> {
    Done(T),
    /// Another writer took a version first: run again.
    Raced,
    /// An event id is already stored: the batch may be a retry of one that landed, which
    /// [`stored`] tells. In a transaction, the statement's failure aborted it: roll back
    /// first.
    Collided,
    /// These parts (by index; 0 for a single append) found their stream soft-deleted, and
    /// their expectation starts it again: run again, each expecting exactly the version given
    /// (its marker's).
    Restart(Vec<(usize, i64)>),
}

/// Runs the append on `client` in autocommit (a pooled connection: the plainer single-event
/// statement tried first may fail on a unique index, which would abort a transaction), running
/// it again after each lost race.
///
/// With `notify` (the store's channel, when its notifier let this append carry the next
/// notification), the plainer single-event statement also notifies the channel, in its own
/// transaction, so readers are woken by the commit itself. Answers whether it did: the general
/// statement never notifies.
pub(crate) async fn append(
    client: &impl GenericClient,
    sql: &WriteSql,
    append: &Append<'_>,
    notify: Option<&str>,
) -> Result<(AppendResult, bool), StoreError> {
    if let Some(done) = append_exact(client, sql, append, notify).await? {
        return Ok((done, notify.is_some()));
    }
    let prepared = Prepared::new(client, sql, append.events).await?;
    let mut at = None;
    for _ in 0..MAX_RACES {
        match prepared.attempt(client, sql, append, at).await? {
            Attempt::Done(result) => return Ok((result, false)),
            Attempt::Raced => {}
            Attempt::Restart(parts) => at = parts.first().map(|&(_, version)| version),
            Attempt::Collided => {
                if let Some(done) = stored(client, sql, append).await? {
                    return Ok((done, false));
                }
                // The row that collided is gone again: try afresh.
            }
        }
    }
    Err(gave_up(append))
}

/// The first try of a single event at an exact expected version, in autocommit only (a unique
/// violation would abort an enclosing transaction): `Some` when it is appended, `None` when
/// the append is of another kind or this try could not settle it (the expectation failed, a
/// race was lost, the id is stored), for the general statement to settle. With `notify`, the
/// statement notifies that channel when it inserts the event (`pg_notify` in its `RETURNING`,
/// so only a row inserted notifies).
async fn append_exact(
    client: &impl GenericClient,
    sql: &WriteSql,
    append: &Append<'_>,
    notify: Option<&str>,
) -> Result<Option<AppendResult>, StoreError> {
    let [event] = append.events else {
        return Ok(None);
    };
    let expected = match append.expected {
        ExpectedVersion::NoStream => 0,
        // Below the cap of `accepted_range`: the event's version stays below the tombstone's.
        ExpectedVersion::Exact(version) => match i64::try_from(version.get()) {
            Ok(version) if version < i64::MAX - 1 => version,
            _ => return Ok(None),
        },
        ExpectedVersion::Any | ExpectedVersion::StreamExists => return Ok(None),
    };
    let text = match notify {
        Some(_) => &sql.append_exact_notify,
        None => &sql.append_exact,
    };
    let statement = client.prepare_cached(text).await.map_err(backend)?;
    let metadata = encode_one_metadata(&event.metadata)?;
    let params: [&(dyn ToSql + Sync); 10] = [
        &append.tenant.as_str(),
        &append.stream.as_str(),
        &append.stream.category(),
        &expected,
        &event.event_id.0,
        &&*event.event_type,
        &i64::from(event.schema_version),
        &&*event.payload,
        &metadata,
        &notify.unwrap_or_default(),
    ];
    let params = match notify {
        Some(_) => &params[..],
        None => &params[..9],
    };
    let row = match client.query_opt(&statement, params).await {
        Ok(Some(row)) => row,
        Ok(None) => return Ok(None),
        Err(error) => {
            return match lost::<()>(&error) {
                Some(_) => Ok(None),
                None => Err(refused_value(error, &[(append.stream, append.events)])),
            };
        }
    };
    let sequence: i64 = row.try_get(0).map_err(backend)?;
    let commit: i64 = row.try_get(1).map_err(backend)?;
    let recorded_at: Micros = row.try_get(2).map_err(backend)?;
    let version = StreamVersion(expected as u64 + 1);
    Ok(Some(AppendResult {
        first_version: version,
        stream_version: version,
        position: GlobalPosition::new(commit.max(0) as u64, sequence.max(0) as u64),
        recorded_at: Timestamp::from(recorded_at),
        already_stored: false,
    }))
}

/// The error of an append that lost [`MAX_RACES`] races in a row.
pub(crate) fn gave_up(append: &Append<'_>) -> StoreError {
    StoreError::backend(std::io::Error::other(format!(
        "gave up appending to `{}` after losing {MAX_RACES} races for its next version",
        append.stream
    )))
}

/// Appends every part of `appends` (checked with
/// [`check_appends`](eventsrc_core::backend::check_appends); a part without events only has
/// its version checked, under its stream's lock like the others) to `store` in one transaction,
/// applying the store's inline projections to all their events inside it; runs it again
/// after each lost race. Each run: `BEGIN`, the streams' locks and the append statement
/// (sent together, one round trip; the statement's snapshot is taken once the locks are
/// held, so it sees every append across these streams that committed before), then `COMMIT`.
pub(crate) async fn append_streams(
    store: &PgEventStore,
    appends: &[StreamAppend],
) -> Result<Vec<AppendResult>, StoreError> {
    let (sql, tenant) = (&store.shared.sql.writer, &store.tenant);
    let mut parts = Parts::of(sql, tenant, appends)?;
    let mut client = store.client().await?;
    let statements = PartStatements {
        lock: client
            .prepare_cached(LOCK_STREAMS_SQL)
            .await
            .map_err(backend)?,
        insert: client
            .prepare_cached(&sql.append_parts)
            .await
            .map_err(backend)?,
    };
    for _ in 0..MAX_RACES {
        let tx = client.transaction().await.map_err(backend)?;
        match parts
            .attempt(&tx, sql, &statements, tenant, appends)
            .await?
        {
            Attempt::Done(results) if results.iter().all(|r| r.already_stored) => {
                // A retry: nothing to write, nothing to apply.
                tx.rollback().await.map_err(backend)?;
                return Ok(results);
            }
            Attempt::Done(results) => {
                if !store.inline.is_empty() {
                    inline::apply_parts(store, &tx, appends).await?;
                }
                match tx.commit().await {
                    Ok(()) => return Ok(results),
                    // Serializable isolation (a database default) may refuse the commit.
                    Err(error) => match lost::<()>(&error) {
                        Some(Attempt::Raced) => {}
                        _ => return Err(backend(error)),
                    },
                }
            }
            Attempt::Raced => tx.rollback().await.map_err(backend)?,
            Attempt::Restart(restarts) => {
                tx.rollback().await.map_err(backend)?;
                parts.restart(&restarts, appends);
            }
            Attempt::Collided => {
                // The failed statement aborted the transaction: look outside it.
                tx.rollback().await.map_err(backend)?;
                if let Some(done) = stored_parts(&client, sql, tenant, appends).await? {
                    return Ok(done);
                }
            }
        }
    }
    Err(StoreError::backend(std::io::Error::other(format!(
        "gave up appending across {} streams (the first `{}`) after losing {MAX_RACES} races \
         for their next versions",
        appends.len(),
        appends.first().map_or("", |part| part.stream.as_str()),
    ))))
}

/// The two statements of an append across streams, prepared on its connection.
struct PartStatements {
    lock: Statement,
    insert: Statement,
}

/// An append across streams bound for its statements: the names of the streams' locks, each
/// part's stream, category and accepted versions, and every event's part, place and columns.
struct Parts<'a> {
    locks: Vec<String>,
    streams: Vec<&'a str>,
    categories: Vec<&'a str>,
    lows: Vec<i64>,
    highs: Vec<i64>,
    part_of: Vec<i64>,
    place: Vec<i64>,
    columns: Columns<'a>,
}

impl<'a> Parts<'a> {
    fn of(
        sql: &WriteSql,
        tenant: &Tenant,
        appends: &'a [StreamAppend],
    ) -> Result<Self, StoreError> {
        let count = appends.iter().map(|part| part.events.len()).sum();
        let mut parts = Parts {
            locks: Vec::with_capacity(appends.len()),
            streams: Vec::with_capacity(appends.len()),
            categories: Vec::with_capacity(appends.len()),
            lows: Vec::with_capacity(appends.len()),
            highs: Vec::with_capacity(appends.len()),
            part_of: Vec::with_capacity(count),
            place: Vec::with_capacity(count),
            columns: Columns::of_parts(appends)?,
        };
        for (n, part) in (1_i64..).zip(appends) {
            let (low, high) = accepted_range(part.expected, part.events.len());
            parts.locks.push(sql.lock_name(tenant, &part.stream));
            parts.streams.push(part.stream.as_str());
            parts.categories.push(part.stream.category());
            parts.lows.push(low);
            parts.highs.push(high);
            parts
                .part_of
                .extend(std::iter::repeat_n(n, part.events.len()));
            parts.place.extend((1_i64..).take(part.events.len()));
        }
        Ok(parts)
    }

    /// Makes the parts of `restarts` (of `appends`) run at exactly the version each is given.
    fn restart(&mut self, restarts: &[(usize, i64)], appends: &[StreamAppend]) {
        for &(part, version) in restarts {
            if let (Some(low), Some(high), Some(append)) = (
                self.lows.get_mut(part),
                self.highs.get_mut(part),
                appends.get(part),
            ) {
                (*low, *high) = exact_range(version, append.events.len());
            }
        }
    }

    /// Whether part `part`'s range holds `current`: what the statement checked.
    fn holds(&self, part: usize, current: u64) -> bool {
        match (
            self.lows.get(part),
            self.highs.get(part),
            i64::try_from(current),
        ) {
            (Some(low), Some(high), Ok(current)) => (*low..=*high).contains(&current),
            _ => false,
        }
    }

    /// One run inside `tx`: the locks, then the statement. A failed expectation is settled
    /// here, inside the transaction (still holding the locks): a retry of an append that
    /// landed, or the first failing part's [`StoreError::WrongExpectedVersion`].
    async fn attempt(
        &self,
        tx: &Transaction<'_>,
        sql: &WriteSql,
        statements: &PartStatements,
        tenant: &Tenant,
        appends: &[StreamAppend],
    ) -> Result<Attempt<Vec<AppendResult>>, StoreError> {
        let tenant_name = tenant.as_str();
        let columns = &self.columns;
        let params: [&(dyn ToSql + Sync); 12] = [
            &tenant_name,
            &self.streams,
            &self.categories,
            &self.lows,
            &self.highs,
            &self.part_of,
            &self.place,
            &columns.ids,
            &columns.types,
            &columns.schema_versions,
            &columns.payloads,
            &columns.metadata,
        ];
        // Pipelined: PostgreSQL runs the statement once the lock statement has returned.
        let (locked, inserted) = futures_util::future::join(
            tx.execute(&statements.lock, &[&self.locks]),
            tx.query(&statements.insert, &params),
        )
        .await;
        // A failed lock statement fails the other one too (the transaction is aborted): its
        // own error is the one to report.
        let rows = match locked.and(inserted) {
            Ok(rows) => rows,
            Err(error) => {
                return match lost(&error) {
                    Some(lost) => Ok(lost),
                    None => {
                        let parts: Vec<(&StreamId, &[NewEvent])> = appends
                            .iter()
                            .map(|part| (&part.stream, part.events.as_slice()))
                            .collect();
                        Err(refused_value(error, &parts))
                    }
                };
            }
        };
        let outcomes = rows
            .iter()
            .map(Outcome::read_part)
            .collect::<Result<Vec<_>, _>>()?;
        if outcomes.len() != appends.len() {
            return Err(StoreError::backend(std::io::Error::other(format!(
                "an append across {} streams answered for {} of them",
                appends.len(),
                outcomes.len()
            ))));
        }
        // The statement inserted everything or nothing, as the same ranges decided.
        let held = |(part, outcome): (usize, &Outcome)| self.holds(part, outcome.current);
        if !outcomes.iter().enumerate().all(held) {
            return settle_stale(tx, sql, tenant, appends, &outcomes, self).await;
        }
        appends
            .iter()
            .zip(&outcomes)
            .map(|(part, outcome)| {
                let count = part.events.len() as u64;
                if outcome.inserted != count {
                    return Err(StoreError::backend(std::io::Error::other(format!(
                        "appending {count} events to `{}` across streams inserted {} rows",
                        part.stream, outcome.inserted
                    ))));
                }
                Ok(AppendResult {
                    first_version: StreamVersion(outcome.current + 1),
                    stream_version: StreamVersion(outcome.current + count),
                    // A part without events has no position of its own.
                    position: if count == 0 {
                        GlobalPosition::START
                    } else {
                        outcome.position
                    },
                    recorded_at: outcome.recorded_at,
                    already_stored: false,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Attempt::Done)
    }
}

/// Settles an append across streams that inserted nothing because a part's range did not
/// hold its stream's version, inside its transaction (still holding the locks): a retry of one
/// that landed (every part stored), a duplicate id, the first failing part's error
/// ([`refusal`]: a tombstone, or a stale expectation), or, when every failing part only found
/// its stream soft-deleted and may start it again, a run again at their markers' versions.
async fn settle_stale(
    tx: &Transaction<'_>,
    sql: &WriteSql,
    tenant: &Tenant,
    appends: &[StreamAppend],
    outcomes: &[Outcome],
    parts: &Parts<'_>,
) -> Result<Attempt<Vec<AppendResult>>, StoreError> {
    // A tombstone is told by the version alone, before anything else is read, when it is
    // the first part to fail (the one whose error an append reports).
    let first_failed = appends
        .iter()
        .zip(outcomes)
        .enumerate()
        .find(|(n, (_, outcome))| !parts.holds(*n, outcome.current));
    if let Some((_, (part, outcome))) = first_failed
        && StreamVersion(outcome.current) == StreamVersion::TOMBSTONE
    {
        return Err(StoreError::Tombstoned {
            stream: part.stream.clone(),
        });
    }
    if let Some(done) = stored_parts(tx, sql, tenant, appends).await? {
        return Ok(Attempt::Done(done));
    }
    let mut restarts = Vec::new();
    for (n, (part, outcome)) in appends.iter().zip(outcomes).enumerate() {
        if parts.holds(n, outcome.current) {
            continue;
        }
        let version = refusal(
            tx,
            sql,
            tenant,
            &part.stream,
            part.expected,
            outcome.current,
            part.events.len(),
        )
        .await?;
        restarts.push((n, version));
    }
    match restarts.is_empty() {
        false => Ok(Attempt::Restart(restarts)),
        // Only called when a part failed its check.
        true => Err(StoreError::backend(std::io::Error::other(format!(
            "an append across {} streams was settled as stale with every expectation held",
            appends.len()
        )))),
    }
}

/// A batch bound for the append statement, and that statement, prepared on a connection.
pub(crate) struct Prepared<'a> {
    batch: Batch<'a>,
    statement: Statement,
}

impl<'a> Prepared<'a> {
    pub(crate) async fn new(
        client: &impl GenericClient,
        sql: &WriteSql,
        events: &'a [NewEvent],
    ) -> Result<Self, StoreError> {
        let batch = Batch::of(events)?;
        let text = match batch {
            Batch::One { .. } => &sql.append_one,
            Batch::Many(_) => &sql.append,
        };
        let statement = client.prepare_cached(text).await.map_err(backend)?;
        Ok(Self { batch, statement })
    }

    /// Runs the statement once on `client` (the connection it was prepared on, or a
    /// transaction on it): with the range of the append's expectation, or at exactly `at`
    /// after an [`Attempt::Restart`].
    pub(crate) async fn attempt(
        &self,
        client: &impl GenericClient,
        sql: &WriteSql,
        append: &Append<'_>,
        at: Option<i64>,
    ) -> Result<Attempt, StoreError> {
        attempt(client, &self.statement, sql, append, &self.batch, at).await
    }
}

async fn attempt(
    client: &impl GenericClient,
    statement: &Statement,
    sql: &WriteSql,
    append: &Append<'_>,
    batch: &Batch<'_>,
    at: Option<i64>,
) -> Result<Attempt, StoreError> {
    let (low, high) = match at {
        Some(version) => exact_range(version, append.events.len()),
        None => accepted_range(append.expected, append.events.len()),
    };
    let (tenant, stream, category) = (
        append.tenant.as_str(),
        append.stream.as_str(),
        append.stream.category(),
    );
    let params: [&(dyn ToSql + Sync); 10] = match batch {
        Batch::One {
            id,
            event_type,
            schema_version,
            payload,
            metadata,
        } => [
            &tenant,
            &stream,
            &category,
            &low,
            &high,
            id,
            event_type,
            schema_version,
            payload,
            metadata,
        ],
        Batch::Many(columns) => [
            &tenant,
            &stream,
            &category,
            &low,
            &high,
            &columns.ids,
            &columns.types,
            &columns.schema_versions,
            &columns.payloads,
            &columns.metadata,
        ],
    };
    let row = match client.query_one(statement, &params).await {
        Ok(row) => row,
        Err(error) => {
            return match lost(&error) {
                Some(lost) => Ok(lost),
                None => Err(refused_value(error, &[(append.stream, append.events)])),
            };
        }
    };
    let outcome = match batch {
        Batch::One { .. } => Outcome::read_one(&row)?,
        Batch::Many(_) => Outcome::read(&row)?,
    };
    if outcome.inserted == 0 {
        // The range did not hold the version. A tombstone says so by its version alone;
        // otherwise this may be a retry of an append that did land, or a soft-deleted stream
        // started again.
        if StreamVersion(outcome.current) == StreamVersion::TOMBSTONE {
            return Err(StoreError::Tombstoned {
                stream: append.stream.clone(),
            });
        }
        if let Some(done) = stored(client, sql, append).await? {
            return Ok(Attempt::Done(done));
        }
        let version = refusal(
            client,
            sql,
            append.tenant,
            append.stream,
            append.expected,
            outcome.current,
            append.events.len(),
        )
        .await?;
        return Ok(Attempt::Restart(vec![(0, version)]));
    }
    let count = append.events.len() as u64;
    if outcome.inserted != count {
        return Err(StoreError::backend(std::io::Error::other(format!(
            "appending {count} events to `{}` inserted {} rows",
            append.stream, outcome.inserted
        ))));
    }
    Ok(Attempt::Done(AppendResult {
        first_version: StreamVersion(outcome.current + 1),
        stream_version: StreamVersion(outcome.current + count),
        position: outcome.position,
        recorded_at: outcome.recorded_at,
        already_stored: false,
    }))
}

/// Whether `error` means the statement lost to another writer, and how: a version taken
/// first (or a deadlock or serialization failure, which PostgreSQL resolves by failing one of
/// the transactions) is a race to run again; an event id taken is a possible retry. `None`:
/// the statement failed otherwise.
pub(crate) fn lost<T>(error: &tokio_postgres::Error) -> Option<Attempt<T>> {
    let db = error.as_db_error()?;
    let code = db.code();
    if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE {
        return Some(Attempt::Raced);
    }
    if *code != SqlState::UNIQUE_VIOLATION {
        return None;
    }
    match db.constraint() {
        Some("events_stream_version_unique") => Some(Attempt::Raced),
        Some("events_event_id_unique") => Some(Attempt::Collided),
        _ => None,
    }
}

/// A payload the `json` column refuses is the caller's mistake: say which event it is, and the
/// stream it was appended to, among `parts` (found again here, on this rare path, rather than
/// checked on every append). Other errors are the backend's.
fn refused_value(error: tokio_postgres::Error, parts: &[(&StreamId, &[NewEvent])]) -> StoreError {
    let Some(db) = error
        .as_db_error()
        .filter(|db| *db.code() == SqlState::INVALID_TEXT_REPRESENTATION)
    else {
        return backend(error);
    };
    let culprit = parts.iter().find_map(|&(stream, events)| {
        events
            .iter()
            .find(|e| serde_json::from_str::<serde_json::Value>(&e.payload).is_err())
            .map(|event| (stream, event))
    });
    let (stream, reason) = match (culprit, parts.first()) {
        (Some((stream, event)), _) => (
            stream,
            format!(
                "the payload of event {} (`{}`) is not JSON: {}",
                event.event_id,
                event.event_type,
                db.message()
            ),
        ),
        (None, Some(&(stream, _))) => (
            stream,
            format!("PostgreSQL refused a value: {}", db.message()),
        ),
        (None, None) => return backend(error),
    };
    StoreError::InvalidAppend {
        stream: stream.clone(),
        reason,
    }
}

/// The statement's one row.
struct Outcome {
    current: u64,
    inserted: u64,
    position: GlobalPosition,
    recorded_at: Timestamp,
}

impl Outcome {
    /// The batch statement's row: current version, rows inserted, then the newest position,
    /// transaction id and recorded_at among them.
    fn read(row: &Row) -> Result<Self, StoreError> {
        let current: i64 = row.try_get(0).map_err(backend)?;
        let inserted: i64 = row.try_get(1).map_err(backend)?;
        let sequence: Option<i64> = row.try_get(2).map_err(backend)?;
        let commit: Option<i64> = row.try_get(3).map_err(backend)?;
        let recorded_at: Option<Micros> = row.try_get(4).map_err(backend)?;
        Ok(Self {
            current: current.max(0) as u64,
            inserted: inserted.max(0) as u64,
            position: GlobalPosition::new(
                commit.unwrap_or(0).max(0) as u64,
                sequence.unwrap_or(0).max(0) as u64,
            ),
            recorded_at: recorded_at.map_or(Timestamp::UNIX_EPOCH, Timestamp::from),
        })
    }

    /// A row of the statement across streams: the part's current version, then how many of
    /// its events were inserted and the newest position, transaction id and recorded_at among
    /// them.
    fn read_part(row: &Row) -> Result<Self, StoreError> {
        let current: i64 = row.try_get(0).map_err(backend)?;
        let inserted: Option<i64> = row.try_get(1).map_err(backend)?;
        let sequence: Option<i64> = row.try_get(2).map_err(backend)?;
        let commit: Option<i64> = row.try_get(3).map_err(backend)?;
        let recorded_at: Option<Micros> = row.try_get(4).map_err(backend)?;
        Ok(Self {
            current: current.max(0) as u64,
            inserted: inserted.unwrap_or(0).max(0) as u64,
            position: GlobalPosition::new(
                commit.unwrap_or(0).max(0) as u64,
                sequence.unwrap_or(0).max(0) as u64,
            ),
            recorded_at: recorded_at.map_or(Timestamp::UNIX_EPOCH, Timestamp::from),
        })
    }

    /// The single-event statement's row: current version, then the inserted event's position,
    /// transaction id and recorded_at, `NULL` when nothing was inserted.
    fn read_one(row: &Row) -> Result<Self, StoreError> {
        let current: i64 = row.try_get(0).map_err(backend)?;
        let sequence: Option<i64> = row.try_get(1).map_err(backend)?;
        let commit: Option<i64> = row.try_get(2).map_err(backend)?;
        let recorded_at: Option<Micros> = row.try_get(3).map_err(backend)?;
        Ok(Self {
            current: current.max(0) as u64,
            inserted: u64::from(sequence.is_some()),
            position: GlobalPosition::new(
                commit.unwrap_or(0).max(0) as u64,
                sequence.unwrap_or(0).max(0) as u64,
            ),
            recorded_at: recorded_at.map_or(Timestamp::UNIX_EPOCH, Timestamp::from),
        })
    }
}

/// `Some(result)` when the append is a retry of one already stored, in this tenant and
/// stream, in order, with the same content; `None` when none of its ids is stored;
/// [`StoreError::DuplicateEventId`] otherwise (the rule all backends share,
/// [`already_stored`]). A stored copy that cannot be read is its [`StoreError::Corrupt`].
pub(crate) async fn stored(
    client: &impl GenericClient,
    sql: &WriteSql,
    append: &Append<'_>,
) -> Result<Option<AppendResult>, StoreError> {
    let ids: Vec<Uuid> = append.events.iter().map(|e| e.event_id.0).collect();
    let copies = stored_copies(client, sql, &ids).await?;
    let copies = copies.iter().map(|copy| copy.as_ref().map(StoredCopy::of));
    already_stored(append.tenant, append.stream, append.events, copies)
}

/// [`stored`] for an append across streams: every part's answer from one lookup of all their
/// ids, settled together ([`already_stored_parts`]).
async fn stored_parts(
    client: &impl GenericClient,
    sql: &WriteSql,
    tenant: &Tenant,
    appends: &[StreamAppend],
) -> Result<Option<Vec<AppendResult>>, StoreError> {
    let ids: Vec<Uuid> = appends
        .iter()
        .flat_map(|part| &part.events)
        .map(|e| e.event_id.0)
        .collect();
    if ids.is_empty() {
        // Only checks: nothing can have been stored.
        return Ok(None);
    }
    let copies = stored_copies(client, sql, &ids).await?;
    let mut rest = copies.as_slice();
    let answers = appends
        .iter()
        .map(|part| {
            let (own, after) = rest.split_at(part.events.len().min(rest.len()));
            rest = after;
            let own = own.iter().map(|copy| copy.as_ref().map(StoredCopy::of));
            already_stored(tenant, &part.stream, &part.events, own)
        })
        .collect();
    already_stored_parts(answers, appends)
}

/// The stored record of each of `ids`, in order, `None` where it is not stored.
async fn stored_copies(
    client: &impl GenericClient,
    sql: &WriteSql,
    ids: &[Uuid],
) -> Result<Vec<Option<RecordedEvent>>, StoreError> {
    // Prepared only here: a fresh batch, the usual case, never needs it.
    let statement = client
        .prepare_cached(&sql.already_stored)
        .await
        .map_err(backend)?;
    let rows = client.query(&statement, &[&ids]).await.map_err(backend)?;
    let mut copies = Vec::with_capacity(rows.len());
    for row in &rows {
        let tenant: Option<&str> = row.try_get(0).map_err(backend)?;
        copies.push(match tenant {
            None => None,
            Some(tenant) => Some(RecordReader::new(&Tenant::new(tenant), None).read(row, 1)?),
        });
    }
    Ok(copies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_become_ranges_of_accepted_versions() {
        let accepts = |expected, version: i64| {
            let (low, high) = accepted_range(expected, 1);
            (low..=high).contains(&version)
        };
        for version in [0, 1, 7, i64::MAX - 2] {
            assert!(accepts(ExpectedVersion::Any, version));
            assert_eq!(
                accepts(ExpectedVersion::NoStream, version),
                ExpectedVersion::NoStream.accepts(StreamVersion(version as u64))
            );
            assert_eq!(accepts(ExpectedVersion::StreamExists, version), version > 0);
            assert_eq!(
                accepts(ExpectedVersion::Exact(StreamVersion(7)), version),
                version == 7
            );
        }
        // A version beyond i64 accepts no stored version.
        let (low, high) = accepted_range(ExpectedVersion::Exact(StreamVersion(u64::MAX)), 1);
        assert!(low > high, "{low}..={high}");
    }

    #[test]
    fn no_range_holds_a_tombstone_or_lets_a_batch_reach_its_version() {
        let tombstone = StreamVersion::TOMBSTONE.get() as i64;
        for expected in [
            ExpectedVersion::Any,
            ExpectedVersion::StreamExists,
            ExpectedVersion::Exact(StreamVersion::TOMBSTONE),
            ExpectedVersion::Exact(StreamVersion(StreamVersion::TOMBSTONE.get() - 1)),
        ] {
            for count in [0, 1, 3, usize::MAX] {
                let (low, high) = accepted_range(expected, count);
                assert!(!(low..=high).contains(&tombstone), "{expected} {count}");
                if low <= high {
                    let count = i64::try_from(count).unwrap_or(i64::MAX);
                    assert!(high.checked_add(count).is_some_and(|last| last < tombstone));
                }
            }
        }
        assert_eq!(accepted_range(ExpectedVersion::Any, 2), (0, i64::MAX - 3));
    }
}
