//! Reading rows: the SQL of every read, and rows turned into records (or borrowed views).
//!
//! Reads of the global log stop at the *horizon*: the oldest transaction still in flight when
//! the statement's snapshot was taken (`pg_snapshot_xmin(pg_current_snapshot())`). Every
//! transaction below it has finished, so every event it will ever hold is visible now, and an
//! event committed later belongs to a transaction at or above it, ordered after everything
//! returned: a reader paging by `(transaction_id, position)` never skips an event that commits
//! after a later-numbered one. (A `bigserial` position is drawn when the row is inserted, not
//! when its transaction commits, so positions alone become visible out of order.)

use std::sync::Arc;

use eventsrc_core::store::{Direction, ReadAll, ReadStream};

use eventsrc_core::StoreError;
use eventsrc_core::backend::{StoredEvent, locate_record};
use eventsrc_core::{
    EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, StreamVersion, Tenant, Timestamp,
    Uuid,
};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};

use crate::backend;

/// The columns every event query selects, in this order. The `json` columns come as they are:
/// their wire form is their text, which [`Text`] reads (a `::text` cast would have the server
/// print each value and parse it again as text: about 55 ns of server time per value).
const COLUMNS: &str = "position, transaction_id, stream, stream_version, event_id, event_type, \
                       schema_version, payload, metadata, recorded_at";

/// The columns a visit needs: what folding an aggregate reads, nothing more.
const VISIT_COLUMNS: &str = "stream_version, event_type, schema_version, payload";

/// The horizon of the statement's snapshot, as a one-row CTE named `horizon`.
const HORIZON: &str = "horizon AS MATERIALIZED ( \
                           SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)";

/// The planner settings a log page runs under, in a transaction of its own (`SET LOCAL`): no
/// sort, no bitmap scan, no sequential scan, so that the page is the ordered scan of the log
/// index `(tenant, transaction_id, position)`, stopping after the limit. Without them, on a
/// table whose statistics are missing or stale (a bulk import, autovacuum behind), PostgreSQL
/// can estimate a few hundred rows for the tenant's log, fetch all of them with a bitmap scan
/// and sort them: a page of the first million events then took hundreds of milliseconds
/// instead of a few. With good statistics the ordered scan is the plan chosen anyway.
pub(crate) const PIN_LOG_PLAN: &str = "SET LOCAL enable_sort = off; \
     SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off";

/// The event-type and category filters of a log read, on parameters `$types` and
/// `$categories` (empty arrays admit everything), for a table aliased `alias`.
fn filters(alias: &str, types: u8, categories: u8) -> String {
    format!(
        "(cardinality(${types}::text[]) = 0 OR {alias}.event_type = ANY(${types}::text[])) \
         AND (cardinality(${categories}::text[]) = 0 OR {alias}.category = ANY(${categories}::text[]))"
    )
}

/// The SQL of every read, with the schema name filled in once.
pub(crate) struct ReadSql {
    pub forward: String,
    pub backward: String,
    pub visit_forward: String,
    pub visit_backward: String,
    /// One event of a stream, in full: `$1` tenant, `$2` stream, `$3` version.
    pub one: String,
    /// The events of `$1` tenant with the ids `$2`, in the order of the ids (an id not stored,
    /// or stored by another tenant, gives no row).
    pub by_id: String,
    /// A log page: the events below the horizon after a position, and nothing else, so that
    /// the page is a plain ordered index scan (a join bringing the horizon into every row
    /// cost the server a third more per row). Runs after [`all_horizon`](Self::all_horizon)
    /// in one repeatable-read transaction, so both see one snapshot and so one horizon.
    /// `$1` tenant, `$2..$3` after (commit, sequence), `$4` limit. For a read with no filter.
    pub all: String,
    /// [`all`](Self::all) with the event-type and category filters, `$5` types and `$6`
    /// categories. A read with no filter runs the plain statement instead: a prepared
    /// statement's generic plan cannot see that the filter arrays are empty and tests both
    /// against every row, which cost the server a fifth more per page of the log.
    pub all_filtered: String,
    /// The horizon of a log page and the newest transaction whose matching events it holds
    /// back, then the position of the tenant's last truncated event (`NULL`s for none): `$1`
    /// tenant, `$2..$3` after, `$4` types, `$5` categories.
    pub all_horizon: String,
    /// The archived events of `$1` tenant's stream `$2`, in version order.
    pub archive: String,
    /// The position of `$1` tenant's last truncated event: no row for none.
    pub truncated: String,
    /// The highest archived version of `$1` tenant's stream `$2`: no row for none.
    pub archived_through: String,
    pub head: String,
    pub lag: String,
    pub stream_version: String,
    /// Opens a log page's transaction, read-only and repeatable-read (one snapshot for the
    /// horizon and the page), with [`PIN_LOG_PLAN`]: one simple query.
    pub begin_page: String,
}

impl ReadSql {
    pub(crate) fn new(schema: &str) -> Self {
        // $1 tenant, $2 stream, $3 first version, $4 limit (NULL: all).
        let stream = |columns: &str, op: &str, order: &str| {
            format!(
                "SELECT {columns} FROM {schema}.events \
                 WHERE tenant = $1 AND stream = $2 AND stream_version {op} $3 \
                 ORDER BY stream_version {order} LIMIT $4"
            )
        };
        // $1 tenant, $2..$3 after (commit, sequence), $4 limit, then what `filters` adds.
        let page = |filters: &str| {
            format!(
                "SELECT {COLUMNS} FROM {schema}.events e \
                 WHERE e.tenant = $1 AND (e.transaction_id, e.position) > ($2, $3) \
                   AND e.transaction_id < ( \
                       SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint) \
                   {filters} \
                 ORDER BY e.transaction_id, e.position LIMIT $4"
            )
        };
        Self {
            forward: stream(COLUMNS, ">=", "ASC"),
            backward: stream(COLUMNS, "<=", "DESC"),
            visit_forward: stream(VISIT_COLUMNS, ">=", "ASC"),
            visit_backward: stream(VISIT_COLUMNS, "<=", "DESC"),
            one: format!(
                "SELECT {COLUMNS} FROM {schema}.events \
                 WHERE tenant = $1 AND stream = $2 AND stream_version = $3"
            ),
            // The ids' own column is `wanted.id`, so that every column of COLUMNS is the event's.
            by_id: format!(
                "SELECT {COLUMNS} FROM unnest($2::uuid[]) WITH ORDINALITY AS wanted(id, n) \
                 JOIN {schema}.events ON event_id = wanted.id \
                 WHERE tenant = $1 \
                 ORDER BY wanted.n"
            ),
            // The horizon is an init plan, evaluated once: in the page's repeatable-read
            // transaction it is the one `all_horizon` reports.
            all: page(""),
            all_filtered: page(&format!("AND {}", filters("e", 5, 6))),
            // The truncation is a primary-key lookup riding on the horizon's row, in the
            // page's snapshot: no statement or round trip of its own, and the page statement
            // is left as it was.
            all_horizon: format!(
                "WITH {HORIZON} \
                 SELECT h.xmin, ( \
                     SELECT max(x.transaction_id) FROM {schema}.events x \
                     WHERE x.tenant = $1 AND x.transaction_id >= h.xmin \
                       AND (x.transaction_id, x.position) > ($2, $3) AND {held_filters}), \
                     t.commit_id, t.sequence \
                 FROM horizon h LEFT JOIN {schema}.truncations t ON t.tenant = $1",
                held_filters = filters("x", 4, 5),
            ),
            archive: format!(
                "SELECT {COLUMNS} FROM {schema}.archived_events \
                 WHERE tenant = $1 AND stream = $2 ORDER BY stream_version"
            ),
            archived_through: format!(
                "SELECT stream_version FROM {schema}.archived_events \
                 WHERE tenant = $1 AND stream = $2 ORDER BY stream_version DESC LIMIT 1"
            ),
            truncated: format!(
                "SELECT commit_id, sequence FROM {schema}.truncations WHERE tenant = $1"
            ),
            head: format!(
                "WITH {HORIZON} \
                 SELECT h.xmin, \
                     (SELECT max(x.transaction_id) FROM {schema}.events x \
                      WHERE x.tenant = $1 AND x.transaction_id >= h.xmin), \
                     last.transaction_id, last.position \
                 FROM horizon h \
                 LEFT JOIN LATERAL ( \
                     SELECT transaction_id, position FROM {schema}.events \
                     WHERE tenant = $1 AND transaction_id < h.xmin \
                     ORDER BY transaction_id DESC, position DESC LIMIT 1 \
                 ) last ON true"
            ),
            lag: format!(
                "WITH {HORIZON} \
                 SELECT count(*) FILTER (WHERE e.transaction_id < h.xmin), \
                        count(*) FILTER (WHERE e.transaction_id >= h.xmin) \
                 FROM horizon h JOIN {schema}.events e \
                   ON e.tenant = $1 AND (e.transaction_id, e.position) > ($2, $3)"
            ),
            begin_page: format!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {PIN_LOG_PLAN}"),
            // Not `MAX`: see the append statements' `newest`, for the same reason.
            stream_version: format!(
                "SELECT COALESCE((SELECT stream_version FROM {schema}.events \
                 WHERE tenant = $1 AND stream = $2 ORDER BY stream_version DESC LIMIT 1), 0)"
            ),
        }
    }
}

/// A stream read's parameters after the tenant and stream: first version and limit.
pub(crate) fn stream_bounds(read: ReadStream) -> (i64, Option<i64>) {
    let from = match (read.direction, read.from) {
        (_, Some(version)) => i64::try_from(version.get()).unwrap_or(i64::MAX),
        (Direction::Forward, None) => 1,
        (Direction::Backward, None) => i64::MAX,
    };
    let limit = read.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    (from, limit)
}

/// A position as the two signed columns it is compared with.
pub(crate) fn position_params(position: GlobalPosition) -> (i64, i64) {
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    (signed(position.commit), signed(position.sequence))
}

/// A log read's limit as SQL wants it.
pub(crate) fn limit_param(read: &ReadAll) -> i64 {
    i64::try_from(read.limit).unwrap_or(i64::MAX)
}

/// The error of a stored record whose stream, version and position were read but which is
/// corrupt otherwise.
pub(crate) fn corrupt(record: &RecordedEvent, reason: String) -> StoreError {
    StoreError::Corrupt {
        stream: Some(record.stream.clone()),
        version: Some(record.stream_version),
        position: Some(record.global_position),
        reason,
    }
}

/// Why a column cannot be read, naming it.
fn column_error(row: &Row, column: usize, error: impl std::fmt::Display) -> String {
    let name = row.columns().get(column).map_or("?", |c| c.name());
    format!("column `{name}`: {error}")
}

/// A column read as `T`, or a reason naming it.
pub(crate) fn get<'r, T: FromSql<'r>>(row: &'r Row, column: usize) -> Result<T, String> {
    row.try_get(column)
        .map_err(|error| column_error(row, column, error))
}

/// A text or `json` column as its bytes, not yet checked to be UTF-8: for comparing with what
/// the row before it held (a stream or event type repeated row after row is checked once),
/// and for [`text`].
///
/// A `json` value's binary wire form is its text, in the client encoding (UTF-8 for this
/// driver), so payloads and metadata are read without a cast; `jsonb`'s is not (a version
/// byte first), and is not accepted. `&str`'s own [`FromSql`] compares the column's type name
/// with the three `ltree` types before reading every value (a sixth of the decoding of a log
/// row); the columns read here are known, so that check is skipped.
struct Text<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Text<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON
        )
    }
}

/// A text column's bytes, unchecked; `NULL` is an error.
fn text_bytes(row: &Row, column: usize) -> Result<&[u8], String> {
    Ok(get::<Text<'_>>(row, column)?.0)
}

/// `bytes` of a text column as `&str`, or a reason naming the column.
fn utf8<'r>(row: &Row, column: usize, bytes: &'r [u8]) -> Result<&'r str, String> {
    std::str::from_utf8(bytes).map_err(|error| column_error(row, column, error))
}

/// A text column that may be `NULL`.
pub(crate) fn optional_text(row: &Row, column: usize) -> Result<Option<&str>, String> {
    get::<Option<Text<'_>>>(row, column)?
        .map(|text| utf8(row, column, text.0))
        .transpose()
}

/// A text column that may not be `NULL`.
pub(crate) fn text(row: &Row, column: usize) -> Result<&str, String> {
    utf8(row, column, text_bytes(row, column)?)
}

/// A positive `bigint` column.
pub(crate) fn positive(row: &Row, column: usize) -> Result<u64, String> {
    match get::<i64>(row, column)? {
        n if n >= 1 => Ok(n as u64),
        n => Err(column_error(
            row,
            column,
            format_args!("{n} is not positive"),
        )),
    }
}

/// The position from its sequence and transaction columns.
fn position_of(row: &Row, sequence: usize, commit: usize) -> Result<GlobalPosition, String> {
    match (positive(row, commit), positive(row, sequence)) {
        (Ok(commit), Ok(sequence)) => Ok(GlobalPosition::new(commit, sequence)),
        (Err(reason), Ok(_)) | (Ok(_), Err(reason)) => Err(reason),
        (Err(commit), Err(sequence)) => Err(format!("{sequence}; {commit}")),
    }
}

/// A schema version column: a `bigint` in the range of `u32`.
pub(crate) fn schema_version_of(row: &Row, column: usize) -> Result<u32, String> {
    let version: i64 = get(row, column)?;
    u32::try_from(version).map_err(|_| {
        column_error(
            row,
            column,
            format_args!("schema version {version} is outside 0..={}", u32::MAX),
        )
    })
}

/// A `timestamptz` read straight from its binary form (microseconds since 2000-01-01, the only
/// form since PostgreSQL 10) into a [`Timestamp`], without the round trip through
/// `SystemTime` (a measurable share of a log scan's decoding).
#[derive(Debug, Clone, Copy)]
pub struct Micros(i64);

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl<'a> FromSql<'a> for Micros {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let bytes: [u8; 8] = raw
            .try_into()
            .map_err(|_| format!("a timestamptz of {} bytes, not 8", raw.len()))?;
        Ok(Self(
            i64::from_be_bytes(bytes).saturating_add(POSTGRES_EPOCH_MICROS),
        ))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

impl From<Micros> for Timestamp {
    fn from(micros: Micros) -> Self {
        Timestamp::from_micros(micros.0)
    }
}

/// Owned records from event rows whose columns start at `base`. `known` short-cuts parsing
/// when every row belongs to one stream.
pub(crate) fn records(
    rows: &[Row],
    base: usize,
    tenant: &Tenant,
    known: Option<&StreamId>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut reader = RecordReader::new(tenant, known);
    rows.iter().map(|row| reader.read(row, base)).collect()
}

/// Turns event rows into owned records one at a time (as they stream in), sharing the stream
/// and event type of the previous row when they are the same: reads of one stream, and runs
/// of one stream or type in the log, parse and allocate them once.
pub(crate) struct RecordReader<'t> {
    tenant: &'t Tenant,
    last_stream: Option<StreamId>,
    last_type: Option<Arc<str>>,
}

impl<'t> RecordReader<'t> {
    pub(crate) fn new(tenant: &'t Tenant, known: Option<&StreamId>) -> Self {
        Self {
            tenant,
            last_stream: known.cloned(),
            last_type: None,
        }
    }

    /// The record of `row`, whose event columns start at `base`. A row that cannot be read
    /// is [`StoreError::Corrupt`], naming its stream, version and position as far as they
    /// can be read and the column at fault.
    pub(crate) fn read(&mut self, row: &Row, base: usize) -> Result<RecordedEvent, StoreError> {
        // First what locates the row, so that any other fault can name it.
        let position = position_of(row, base, base + 1);
        let stream = stream_of(row, base + 2, &mut self.last_stream);
        let version = positive(row, base + 3).map(StreamVersion);
        let (position, stream, version) = locate_record(position, stream, version)?;
        let corrupt = |reason: String| StoreError::Corrupt {
            stream: Some(stream.clone()),
            version: Some(version),
            position: Some(position),
            reason,
        };
        let event_id: Uuid = get(row, base + 4).map_err(corrupt)?;
        let event_type = self.event_type(row, base + 5).map_err(corrupt)?;
        let schema_version = schema_version_of(row, base + 6).map_err(corrupt)?;
        let payload = text(row, base + 7).map_err(corrupt)?;
        let metadata = match optional_text(row, base + 8).map_err(corrupt)? {
            None => Metadata::default(),
            Some(json) => serde_json::from_str(json).map_err(|e| {
                corrupt(column_error(
                    row,
                    base + 8,
                    format_args!("not a JSON object of metadata: {e}"),
                ))
            })?,
        };
        let recorded_at: Micros = get(row, base + 9).map_err(corrupt)?;
        Ok(RecordedEvent {
            event_id: EventId(event_id),
            stream,
            stream_version: version,
            global_position: position,
            tenant: self.tenant.clone(),
            event_type,
            schema_version,
            payload: Arc::from(payload),
            metadata,
            recorded_at: recorded_at.into(),
        })
    }

    /// The row's event type, the previous row's when its bytes are the same (checked as UTF-8
    /// only when they are not).
    fn event_type(&mut self, row: &Row, column: usize) -> Result<Arc<str>, String> {
        let bytes = text_bytes(row, column)?;
        if let Some(shared) = self.last_type.as_ref().filter(|t| t.as_bytes() == bytes) {
            return Ok(Arc::clone(shared));
        }
        let name: Arc<str> = Arc::from(utf8(row, column, bytes)?);
        Ok(Arc::clone(self.last_type.insert(name)))
    }
}

/// A row of a visit read that cannot be visited: its stream version as stored (with the
/// tenant and stream, the key to read it again in full) and why.
#[derive(Debug)]
pub(crate) struct Unvisitable {
    pub version: Option<i64>,
    pub reason: String,
}

/// Hands each row of a visit read ([`VISIT_COLUMNS`]) to `visit` as a [`StoredEvent`]
/// borrowing the row's own buffers (no copy per event), in order, stopping at its first error.
///
/// A row that cannot be visited stops it with `Ok(Err(..))`: the visit reads too few columns
/// to name the row, so the caller reads it again in full ([`ReadSql::one`]) for its
/// [`StoreError::Corrupt`].
pub(crate) fn visit<E>(
    rows: &[Row],
    stream: &StreamId,
    mut visit: impl FnMut(StoredEvent<'_>) -> Result<(), E>,
) -> Result<Result<(), Unvisitable>, E> {
    fn read(row: &Row) -> Result<(StreamVersion, &str, u32, &str), String> {
        Ok((
            StreamVersion(positive(row, 0)?),
            text(row, 1)?,
            schema_version_of(row, 2)?,
            text(row, 3)?,
        ))
    }
    for row in rows {
        let (stream_version, event_type, schema_version, payload) = match read(row) {
            Ok(read) => read,
            Err(reason) => {
                let version = row.try_get::<_, i64>(0).ok();
                return Ok(Err(Unvisitable { version, reason }));
            }
        };
        visit(StoredEvent {
            stream,
            stream_version,
            event_type,
            schema_version,
            payload,
        })?;
    }
    Ok(Ok(()))
}

/// The row's stream, reusing the previous row's when the text is the same.
pub(crate) fn stream_of(
    row: &Row,
    column: usize,
    last: &mut Option<StreamId>,
) -> Result<StreamId, String> {
    let bytes = text_bytes(row, column)?;
    if let Some(stream) = last.as_ref().filter(|s| s.as_str().as_bytes() == bytes) {
        return Ok(stream.clone());
    }
    let name = utf8(row, column, bytes)?;
    let stream: StreamId = name.parse().map_err(|e| column_error(row, column, e))?;
    *last = Some(stream.clone());
    Ok(stream)
}

/// The position of the last truncated event from the columns `base` and `base + 1` (commit
/// and sequence, `NULL` for none): [`GlobalPosition::START`] when nothing was truncated.
pub(crate) fn truncated(row: &Row, base: usize) -> Result<GlobalPosition, StoreError> {
    let commit: Option<i64> = row.try_get(base).map_err(backend)?;
    let sequence: Option<i64> = row.try_get(base + 1).map_err(backend)?;
    Ok(match (commit, sequence) {
        // Stored bit for bit, as checkpoints store positions.
        (Some(commit), Some(sequence)) => GlobalPosition::new(commit as u64, sequence as u64),
        _ => GlobalPosition::START,
    })
}

/// The first two columns of a log page's horizon statement or the head query: the horizon and the newest transaction
/// held back behind it, if any.
pub(crate) fn horizon(row: &Row) -> Result<(i64, Option<i64>), StoreError> {
    let xmin: i64 = row.try_get(0).map_err(backend)?;
    let held: Option<i64> = row.try_get(1).map_err(backend)?;
    Ok((xmin, held))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn timestamps_read_as_microseconds_agree_with_system_time() {
        // 2023-11-14T22:13:20.123456Z, and a moment before 2000 (negative on the wire).
        for unix_micros in [1_700_000_000_123_456_i64, 915_148_800_000_001] {
            let wire = (unix_micros - POSTGRES_EPOCH_MICROS).to_be_bytes();
            let ours = Micros::from_sql(&Type::TIMESTAMPTZ, &wire)
                .map(Timestamp::from)
                .ok();
            let theirs = SystemTime::from_sql(&Type::TIMESTAMPTZ, &wire)
                .map(Timestamp::from)
                .ok();
            assert_eq!(ours, theirs);
            assert_eq!(
                ours,
                Some(Timestamp::from(
                    SystemTime::UNIX_EPOCH + Duration::from_micros(unix_micros as u64)
                ))
            );
        }
        assert!(Micros::from_sql(&Type::TIMESTAMPTZ, &[0; 4]).is_err());
        assert!(Micros::accepts(&Type::TIMESTAMPTZ) && !Micros::accepts(&Type::TIMESTAMP));
    }
}
