//! Reading rows: SQL for the queries, and rows turned into records (or borrowed views).

use std::sync::Arc;

use eventsrc_core::store::{Direction, ReadAll, ReadStream};

use eventsrc_core::StoreError;
use eventsrc_core::backend::{StoredEvent, locate_record};
use eventsrc_core::{
    EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, StreamVersion, Tenant, Timestamp,
    Uuid,
};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::backend;

pub(crate) use crate::statements::COLUMNS;
use crate::statements::{self as sql, Sql};

/// One stream read as SQL and parameters.
pub(crate) fn stream_query(
    tenant: &Tenant,
    stream: &StreamId,
    read: ReadStream,
) -> (Sql, Vec<Value>) {
    stream_query_of(false, tenant, stream, read)
}

/// One stream read for a visit: only the columns a [`StoredEvent`] holds.
pub(crate) fn visit_query(
    tenant: &Tenant,
    stream: &StreamId,
    read: ReadStream,
) -> (Sql, Vec<Value>) {
    stream_query_of(true, tenant, stream, read)
}

fn stream_query_of(
    visit: bool,
    tenant: &Tenant,
    stream: &StreamId,
    read: ReadStream,
) -> (Sql, Vec<Value>) {
    let statement = match (read.direction, visit) {
        (Direction::Forward, false) => sql::STREAM_FORWARD,
        (Direction::Backward, false) => sql::STREAM_BACKWARD,
        (Direction::Forward, true) => sql::VISIT_FORWARD,
        (Direction::Backward, true) => sql::VISIT_BACKWARD,
    };
    let from = match (read.direction, read.from) {
        // Versions beyond i64 cannot be stored; clamping keeps "from past the end" empty
        // forwards and everything backwards.
        (_, Some(version)) => version.get().min(i64::MAX as u64) as i64,
        (Direction::Forward, None) => 1,
        (Direction::Backward, None) => i64::MAX,
    };
    let limit = read.limit.map_or(-1, |n| n.min(i64::MAX as usize) as i64);
    let params = vec![
        Value::Text(tenant.as_str().to_owned()),
        Value::Text(stream.as_str().to_owned()),
        Value::Integer(from),
        Value::Integer(limit),
    ];
    (Sql::Borrowed(statement), params)
}

/// A read of the global log as SQL and parameters.
pub(crate) fn all_query(tenant: &Tenant, read: &ReadAll) -> (Sql, Vec<Value>) {
    let filter = &read.filter;
    let sql = sql::read_all_filtered(filter.event_types.len(), filter.categories.len());
    let mut params = vec![
        Value::Text(tenant.as_str().to_owned()),
        // Commit order is position order in a single-writer store.
        Value::Integer(read.after.sequence.min(i64::MAX as u64) as i64),
    ];
    params.extend(filter.event_types.iter().map(|v| Value::Text(v.clone())));
    params.extend(filter.categories.iter().map(|v| Value::Text(v.clone())));
    params.push(Value::Integer(read.limit.min(i64::MAX as usize) as i64));
    (sql, params)
}

/// Runs an event query and builds owned records. `stream` short-cuts parsing when every row
/// belongs to one known stream.
pub(crate) fn query_records(
    conn: &Connection,
    tenant: &Tenant,
    known: Option<&StreamId>,
    (sql, params): (Sql, Vec<Value>),
    capacity: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut statement = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = statement.query(params_from_iter(params)).map_err(backend)?;
    let mut records = Vec::with_capacity(capacity);
    let mut reader = RecordReader::new(tenant, known);
    while let Some(row) = rows.next().map_err(backend)? {
        records.push(reader.read(row)?);
    }
    Ok(records)
}

/// Builds records from rows whose first columns are [`COLUMNS`], sharing the stream and type
/// name of consecutive rows that repeat them.
///
/// A row that cannot be read is [`StoreError::Corrupt`], naming its stream, version and
/// position as far as they can be read and the column at fault.
pub(crate) struct RecordReader<'t> {
    tenant: &'t Tenant,
    last_stream: Option<StreamId>,
    last_type: Option<Arc<str>>,
}

impl<'t> RecordReader<'t> {
    /// Records of `tenant`; `known` short-cuts parsing when every row belongs to that stream.
    pub(crate) fn new(tenant: &'t Tenant, known: Option<&StreamId>) -> Self {
        Self {
            tenant,
            last_stream: known.cloned(),
            last_type: None,
        }
    }

    /// The record in `row`.
    pub(crate) fn read(&mut self, row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
        // First what locates the row, so that any other fault can name it.
        let position = position_of(row, 0, 1);
        let stream = stream_of(row, 2, &mut self.last_stream);
        let version = version_of(row, 3);
        let (position, stream, version) = locate_record(position, stream, version)?;
        let corrupt = |reason: String| StoreError::Corrupt {
            stream: Some(stream.clone()),
            version: Some(version),
            position: Some(position),
            reason,
        };
        let event_id = event_id_of(row, 4).map_err(corrupt)?;
        let event_type = text(row, 5).map_err(corrupt)?;
        let schema_version = schema_version_of(row, 6).map_err(corrupt)?;
        let payload = text(row, 7).map_err(corrupt)?;
        let metadata = metadata_of(row, 8).map_err(corrupt)?;
        let recorded_at = int(row, 9).map_err(corrupt)?;
        Ok(RecordedEvent {
            event_id,
            stream,
            stream_version: version,
            global_position: position,
            tenant: self.tenant.clone(),
            event_type: shared_name(event_type, &mut self.last_type),
            schema_version,
            payload: Arc::from(payload),
            metadata,
            recorded_at: Timestamp::from_micros(recorded_at),
        })
    }
}

/// The error of the stored event at `position` (the rowid), read again in full: a query that
/// met it read too few columns to name it. `fallback` is that query's own reason, for a row
/// that reads cleanly the second time (changed meanwhile).
fn corrupt_at(
    conn: &Connection,
    tenant: &Tenant,
    stream: Option<&StreamId>,
    position: Option<i64>,
    fallback: String,
) -> StoreError {
    let unlocated = |reason: String| StoreError::Corrupt {
        stream: stream.cloned(),
        version: None,
        position: None,
        reason,
    };
    let Some(position) = position else {
        return unlocated(fallback);
    };
    let query = (
        Sql::Borrowed(sql::BY_POSITION),
        vec![Value::Integer(position)],
    );
    match query_records(conn, tenant, stream, query, 1) {
        Err(error) => error,
        Ok(_) => unlocated(format!("{fallback} (the row read cleanly when read again)")),
    }
}

/// The position of the tenant's last event (`GlobalPosition::START` when there is none): the
/// head of its log. A last event whose position does not read is its
/// [`StoreError::Corrupt`].
pub(crate) fn head(conn: &Connection, tenant: &Tenant) -> Result<GlobalPosition, StoreError> {
    let last = conn
        .prepare_cached(sql::HEAD)
        .and_then(|mut s| {
            s.query_row([tenant.as_str()], |r| {
                Ok((r.get::<_, i64>(0)?, position_of(r, 0, 1)))
            })
            .optional()
        })
        .map_err(backend)?;
    match last {
        None => Ok(GlobalPosition::START),
        Some((_, Ok(position))) => Ok(position),
        Some((rowid, Err(reason))) => Err(corrupt_at(conn, tenant, None, Some(rowid), reason)),
    }
}

/// The stream's current version: its highest, `StreamVersion::NONE` when it has no events.
///
/// An append needs it, so a highest version that is not a positive integer (a row whose
/// version reads as text, a blob, a real number, zero or less) fails with that row's
/// [`StoreError::Corrupt`]: the next version cannot be known without it. Corrupt rows below
/// the highest version, and corrupt columns other than the version, do not stop an append.
pub(crate) fn current_version(
    conn: &Connection,
    tenant: &Tenant,
    stream: &StreamId,
) -> Result<StreamVersion, StoreError> {
    let highest = bound(conn, sql::CURRENT_VERSION, tenant, stream, 0)?;
    if let Some(version) = highest {
        return Ok(StreamVersion(version));
    }
    // The highest version is not one: find the row that holds it.
    let query = (
        Sql::Borrowed(sql::BAD_VERSION),
        vec![
            Value::Text(tenant.as_str().to_owned()),
            Value::Text(stream.as_str().to_owned()),
        ],
    );
    match query_records(conn, tenant, Some(stream), query, 1) {
        Err(error) => Err(error),
        Ok(_) => Err(StoreError::Corrupt {
            stream: Some(stream.clone()),
            version: None,
            position: None,
            reason: "the stream's highest version is not a positive integer".to_owned(),
        }),
    }
}

/// The position and stored type of `stream`'s event at `version` (its last one, for the
/// callers), `None` if there is none. A row whose position or type does not read is its
/// [`StoreError::Corrupt`]: a deletion and a restart after one depend on both.
pub(crate) fn last_event(
    conn: &Connection,
    tenant: &Tenant,
    stream: &StreamId,
    version: StreamVersion,
) -> Result<Option<(GlobalPosition, String)>, StoreError> {
    if version == StreamVersion::NONE {
        return Ok(None);
    }
    located(conn, sql::LAST_EVENT, tenant, stream, version, |row| {
        Ok((position_of(row, 0, 1)?, text(row, 2)?.to_owned()))
    })
}

/// The one row `query` finds of `tenant`'s `stream` by `version` (parameters: tenant, stream,
/// version), read by `read`; `None` if there is none. A row that does not read is its
/// [`StoreError::Corrupt`], found again by its position (the first column).
fn located<T>(
    conn: &Connection,
    query: &str,
    tenant: &Tenant,
    stream: &StreamId,
    version: StreamVersion,
    read: impl FnOnce(&Row<'_>) -> Result<T, String>,
) -> Result<Option<T>, StoreError> {
    let mut lookup = conn.prepare_cached(query).map_err(backend)?;
    let stored = version.get().min(i64::MAX as u64) as i64;
    let mut rows = lookup
        .query(params![tenant.as_str(), stream.as_str(), stored])
        .map_err(backend)?;
    let Some(row) = rows.next().map_err(backend)? else {
        return Ok(None);
    };
    read(row)
        .map(Some)
        .map_err(|reason| corrupt_at(conn, tenant, Some(stream), int(row, 0).ok(), reason))
}

/// The one version `query` (an aggregate over the rows of `tenant`'s `stream`, in the log or
/// the archive) selects: `empty` when there are none, `None` for a value that is not a
/// positive integer.
fn bound(
    conn: &Connection,
    query: &str,
    tenant: &Tenant,
    stream: &StreamId,
    empty: u64,
) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached(query)
        .and_then(|mut s| {
            s.query_row(params![tenant.as_str(), stream.as_str()], |r| {
                Ok(match r.get_ref(0)? {
                    ValueRef::Null => Some(empty),
                    ValueRef::Integer(version) if version >= 1 => Some(version as u64),
                    _ => None,
                })
            })
        })
        .map_err(backend)
}

/// `stream`'s lowest version still in the log, `StreamVersion::FIRST` when it has no events
/// (where a first event would go). One that is not a positive integer is
/// [`StoreError::Corrupt`]: a truncation cannot know what it would move.
pub(crate) fn first_version(
    conn: &Connection,
    tenant: &Tenant,
    stream: &StreamId,
) -> Result<StreamVersion, StoreError> {
    let lowest = bound(conn, sql::FIRST_VERSION, tenant, stream, 1)?;
    lowest
        .map(StreamVersion)
        .ok_or_else(|| StoreError::Corrupt {
            stream: Some(stream.clone()),
            version: None,
            position: None,
            reason: "the stream's lowest version is not a positive integer".to_owned(),
        })
}

/// The position of `stream`'s last event up to `version`, `None` if it has none there. One
/// that does not read is that row's [`StoreError::Corrupt`].
pub(crate) fn last_through(
    conn: &Connection,
    tenant: &Tenant,
    stream: &StreamId,
    version: StreamVersion,
) -> Result<Option<GlobalPosition>, StoreError> {
    located(conn, sql::LAST_THROUGH, tenant, stream, version, |row| {
        position_of(row, 0, 1)
    })
}

/// The position of the last event truncation removed from `tenant`'s log
/// (`GlobalPosition::START` if none): one lookup of the `truncations` primary key. A row that
/// does not read as a position is [`StoreError::Corrupt`], since the readers it guards could
/// not tell whether they miss events.
pub(crate) fn truncated_through(
    conn: &Connection,
    tenant: &Tenant,
) -> Result<GlobalPosition, StoreError> {
    let mut lookup = conn
        .prepare_cached(sql::TRUNCATED_THROUGH)
        .map_err(backend)?;
    let mut rows = lookup.query([tenant.as_str()]).map_err(backend)?;
    let Some(row) = rows.next().map_err(backend)? else {
        return Ok(GlobalPosition::START);
    };
    position_of(row, 0, 1).map_err(|reason| StoreError::Corrupt {
        stream: None,
        version: None,
        position: None,
        reason: format!("the truncation position of tenant `{tenant}`: {reason}"),
    })
}

/// `stream`'s archived events, in version order, read as the log's rows are: a row that does
/// not read as an event is its [`StoreError::Corrupt`].
pub(crate) fn archived(
    conn: &Connection,
    tenant: &Tenant,
    stream: &StreamId,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let query = (
        Sql::Borrowed(sql::READ_ARCHIVE),
        vec![
            Value::Text(tenant.as_str().to_owned()),
            Value::Text(stream.as_str().to_owned()),
        ],
    );
    query_records(conn, tenant, Some(stream), query, 0)
}

/// The highest archived version of `stream`, `None` if nothing of it is archived: one
/// descent of the archive's `(tenant, stream, stream_version)` index. A highest version that
/// is not a positive integer is [`StoreError::Corrupt`].
pub(crate) fn archived_through(
    conn: &Connection,
    tenant: &Tenant,
    stream: &StreamId,
) -> Result<Option<StreamVersion>, StoreError> {
    // Nothing archived reads as version 0, which no event holds.
    match bound(conn, sql::ARCHIVED_THROUGH, tenant, stream, 0)? {
        Some(0) => Ok(None),
        Some(version) => Ok(Some(StreamVersion(version))),
        None => Err(StoreError::Corrupt {
            stream: Some(stream.clone()),
            version: None,
            position: None,
            reason: "the stream's highest archived version is not a positive integer".to_owned(),
        }),
    }
}

/// The stored copies of a batch's event ids, one per event in batch order (`None` where the
/// id is not stored), each with the tenant it is stored under: what
/// [`already_stored`](eventsrc_core::backend::already_stored) compares. Only rows before
/// position `before` count, so that an append can leave out the rows it inserted itself. A
/// stored copy that cannot be read is its [`StoreError::Corrupt`]: a retry cannot be told
/// from a reused id without it.
pub(crate) fn stored_copies(
    conn: &Connection,
    ids: impl IntoIterator<Item = EventId>,
    before: i64,
) -> Result<Vec<Option<RecordedEvent>>, StoreError> {
    let mut lookup = conn.prepare_cached(sql::STORED_COPY).map_err(backend)?;
    let mut copies = Vec::new();
    for id in ids {
        let mut rows = lookup
            .query(params![id.0.as_bytes(), before])
            .map_err(backend)?;
        let copy = match rows.next().map_err(backend)? {
            None => None,
            Some(row) => {
                let tenant =
                    text(row, 10)
                        .map(Tenant::from)
                        .map_err(|reason| StoreError::Corrupt {
                            stream: None,
                            version: None,
                            position: position_of(row, 0, 1).ok(),
                            reason,
                        })?;
                Some(RecordReader::new(&tenant, None).read(row)?)
            }
        };
        copies.push(copy);
    }
    Ok(copies)
}

/// The events of `tenant` with these ids, in the order of `ids`: an id not stored, or
/// stored by another tenant, is left out. Each id is one lookup in the `event_id` index.
pub(crate) fn events_by_id(
    conn: &Connection,
    tenant: &Tenant,
    ids: &[EventId],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut lookup = conn.prepare_cached(sql::BY_ID).map_err(backend)?;
    let mut reader = RecordReader::new(tenant, None);
    let mut records = Vec::with_capacity(ids.len().min(4096));
    for id in ids {
        let mut rows = lookup
            .query(params![id.0.as_bytes(), tenant.as_str()])
            .map_err(backend)?;
        if let Some(row) = rows.next().map_err(backend)? {
            records.push(reader.read(row)?);
        }
    }
    Ok(records)
}

/// The rows of one stream read, packed for visiting: versions in one vector, every type name
/// and payload in one string. Built on a blocking thread, visited on the caller's.
#[derive(Default)]
pub(crate) struct Compact {
    rows: Vec<(StreamVersion, u32, [usize; 3])>,
    text: String,
}

/// A visit row (the columns of [`sql::VISIT_FORWARD`]) as a visit hands it out: stream version, event type,
/// schema version, payload.
type VisitRow<'r> = (StreamVersion, &'r str, u32, &'r str);

/// Reads one visit row, or says why not with the row's position (its rowid), so that the
/// caller can read it again in full to name it.
fn visit_row<'r>(row: &'r Row<'_>) -> Result<VisitRow<'r>, (Option<i64>, String)> {
    fn read<'r>(row: &'r Row<'_>) -> Result<VisitRow<'r>, String> {
        Ok((
            version_of(row, 1)?,
            text(row, 2)?,
            schema_version_of(row, 3)?,
            text(row, 4)?,
        ))
    }
    read(row).map_err(|reason| (int(row, 0).ok(), reason))
}

/// Runs a visit query into a [`Compact`].
pub(crate) fn query_compact(
    conn: &Connection,
    tenant: &Tenant,
    stream: &StreamId,
    (sql, params): (Sql, Vec<Value>),
) -> Result<Compact, StoreError> {
    let mut statement = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = statement.query(params_from_iter(params)).map_err(backend)?;
    let mut compact = Compact::default();
    while let Some(row) = rows.next().map_err(backend)? {
        let (version, event_type, schema_version, payload) =
            visit_row(row).map_err(|(position, reason)| {
                corrupt_at(conn, tenant, Some(stream), position, reason)
            })?;
        let start = compact.text.len();
        compact.text.push_str(event_type);
        let type_end = compact.text.len();
        compact.text.push_str(payload);
        compact.rows.push((
            version,
            schema_version,
            [start, type_end, compact.text.len()],
        ));
    }
    Ok(compact)
}

/// Runs a visit query and hands each row to `visit` as a view borrowed from SQLite's own row
/// buffer: no copy at all.
pub(crate) fn visit_rows<E: From<StoreError>>(
    conn: &Connection,
    tenant: &Tenant,
    stream: &StreamId,
    (sql, params): (Sql, Vec<Value>),
    mut visit: impl FnMut(StoredEvent<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut statement = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = statement.query(params_from_iter(params)).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        let (stream_version, event_type, schema_version, payload) =
            visit_row(row).map_err(|(position, reason)| {
                corrupt_at(conn, tenant, Some(stream), position, reason)
            })?;
        visit(StoredEvent {
            stream,
            stream_version,
            event_type,
            schema_version,
            payload,
        })?;
    }
    Ok(())
}

impl Compact {
    /// Hands each event to `visit`, in order, stopping at its first error.
    pub(crate) fn visit<E>(
        &self,
        stream: &StreamId,
        mut visit: impl FnMut(StoredEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        for (stream_version, schema_version, [start, type_end, end]) in &self.rows {
            visit(StoredEvent {
                stream,
                stream_version: *stream_version,
                event_type: &self.text[*start..*type_end],
                schema_version: *schema_version,
                payload: &self.text[*type_end..*end],
            })?;
        }
        Ok(())
    }
}

/// The name of a row's column, for a reason.
fn name<'r>(row: &'r Row<'_>, column: usize) -> &'r str {
    row.as_ref().column_name(column).unwrap_or("?")
}

/// What a stored value is, for a reason: "holds {kind}, not ...".
fn kind(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "null",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    }
}

/// The value of a column, or a reason naming it.
fn value<'r>(row: &'r Row<'_>, column: usize) -> Result<ValueRef<'r>, String> {
    row.get_ref(column)
        .map_err(|e| format!("column `{}`: {e}", name(row, column)))
}

/// An integer column, or a reason naming it.
pub(crate) fn int(row: &Row<'_>, column: usize) -> Result<i64, String> {
    match value(row, column)? {
        ValueRef::Integer(n) => Ok(n),
        other => Err(format!(
            "column `{}` holds {}, not an integer",
            name(row, column),
            kind(other)
        )),
    }
}

/// A text column, or a reason naming it.
pub(crate) fn text<'r>(row: &'r Row<'_>, column: usize) -> Result<&'r str, String> {
    match value(row, column)? {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map_err(|e| format!("column `{}` is not UTF-8: {e}", name(row, column))),
        other => Err(format!(
            "column `{}` holds {}, not text",
            name(row, column),
            kind(other)
        )),
    }
}

/// A positive integer column.
fn positive(row: &Row<'_>, column: usize) -> Result<u64, String> {
    match int(row, column)? {
        n if n >= 1 => Ok(n as u64),
        n => Err(format!(
            "column `{}` holds {n}, which is not positive",
            name(row, column)
        )),
    }
}

/// The position from its sequence and commit columns.
fn position_of(row: &Row<'_>, sequence: usize, commit: usize) -> Result<GlobalPosition, String> {
    let sequence = positive(row, sequence);
    let commit = positive(row, commit);
    match (commit, sequence) {
        (Ok(commit), Ok(sequence)) => Ok(GlobalPosition::new(commit, sequence)),
        (Err(reason), Ok(_)) | (Ok(_), Err(reason)) => Err(reason),
        (Err(commit), Err(sequence)) => Err(format!("{sequence}; {commit}")),
    }
}

/// A stream version column: a positive integer.
pub(crate) fn version_of(row: &Row<'_>, column: usize) -> Result<StreamVersion, String> {
    positive(row, column).map(StreamVersion)
}

/// A schema version column: an integer in the range of `u32`.
pub(crate) fn schema_version_of(row: &Row<'_>, column: usize) -> Result<u32, String> {
    let version = int(row, column)?;
    u32::try_from(version).map_err(|_| {
        format!(
            "column `{}` holds {version}, outside 0..={}",
            name(row, column),
            u32::MAX
        )
    })
}

fn event_id_of(row: &Row<'_>, column: usize) -> Result<EventId, String> {
    match value(row, column)? {
        ValueRef::Blob(bytes) => <[u8; 16]>::try_from(bytes)
            .map(|id| EventId(Uuid::from_bytes(id)))
            .map_err(|_| {
                format!(
                    "column `{}` holds {} bytes, not 16",
                    name(row, column),
                    bytes.len()
                )
            }),
        other => Err(format!(
            "column `{}` holds {}, not a 16-byte blob",
            name(row, column),
            kind(other)
        )),
    }
}

/// The row's event type, sharing the previous row's allocation when the name is the same.
fn shared_name(name: &str, last: &mut Option<Arc<str>>) -> Arc<str> {
    match last {
        Some(shared) if **shared == *name => Arc::clone(shared),
        _ => {
            let shared: Arc<str> = Arc::from(name);
            *last = Some(Arc::clone(&shared));
            shared
        }
    }
}

/// The row's stream, reusing the previous row's when the text is the same (reads of one stream,
/// or runs of one stream in the global log, parse it once).
pub(crate) fn stream_of(
    row: &Row<'_>,
    column: usize,
    last: &mut Option<StreamId>,
) -> Result<StreamId, String> {
    let name = text(row, column)?;
    if let Some(stream) = last.as_ref().filter(|s| s.as_str() == name) {
        return Ok(stream.clone());
    }
    let stream: StreamId = name.parse().map_err(|e| format!("column `stream`: {e}"))?;
    *last = Some(stream.clone());
    Ok(stream)
}

fn metadata_of(row: &Row<'_>, column: usize) -> Result<Metadata, String> {
    match value(row, column)? {
        ValueRef::Null => Ok(Metadata::default()),
        ValueRef::Text(_) => serde_json::from_str(text(row, column)?).map_err(|e| {
            format!(
                "column `{}` is not a JSON object of metadata: {e}",
                name(row, column)
            )
        }),
        other => Err(format!(
            "column `{}` holds {}, not JSON text",
            name(row, column),
            kind(other)
        )),
    }
}
