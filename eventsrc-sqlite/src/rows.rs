//! Reading rows: SQL for the queries, and rows turned into records (or borrowed views).

use std::sync::Arc;

use eventsrc_core::store::{Direction, ReadAll, ReadStream};

use eventsrc_core::StoreError;
use eventsrc_core::backend::StoredEvent;
use eventsrc_core::{
    EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, StreamVersion, Tenant, Timestamp,
    Uuid,
};
use rusqlite::{Connection, Row, params_from_iter, types::Value};

use crate::backend;

/// The columns every event query selects, in this order (the parked table has them too).
pub const COLUMNS: &str = "position, commit_seq, stream, stream_version, event_id, event_type, \
                       schema_version, payload, metadata, recorded_at";

/// The columns a visit needs: what folding an aggregate reads, nothing more (each column costs
/// about as much to extract as a payload decode saves).
const VISIT_COLUMNS: &str = "stream_version, event_type, schema_version, payload";

/// One stream read as SQL and parameters.
pub fn stream_query(tenant: &Tenant, stream: &StreamId, read: ReadStream) -> (String, Vec<Value>) {
    stream_query_of(COLUMNS, tenant, stream, read)
}

/// One stream read for a visit: only the columns a [`StoredEvent`] holds.
pub fn visit_query(tenant: &Tenant, stream: &StreamId, read: ReadStream) -> (String, Vec<Value>) {
    stream_query_of(VISIT_COLUMNS, tenant, stream, read)
}

fn stream_query_of(
    columns: &str,
    tenant: &Tenant,
    stream: &StreamId,
    read: ReadStream,
) -> (String, Vec<Value>) {
    let (op, order) = match read.direction {
        Direction::Forward => (">=", "ASC"),
        Direction::Backward => ("<=", "DESC"),
    };
    let from = match (read.direction, read.from) {
        // Versions beyond i64 cannot be stored; clamping keeps "from past the end" empty
        // forwards and everything backwards.
        (_, Some(version)) => version.get().min(i64::MAX as u64) as i64,
        (Direction::Forward, None) => 1,
        (Direction::Backward, None) => i64::MAX,
    };
    let limit = read.limit.map_or(-1, |n| n.min(i64::MAX as usize) as i64);
    let sql = format!(
        "SELECT {columns} FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version {op} ?3 \
         ORDER BY stream_version {order} LIMIT ?4"
    );
    let params = vec![
        Value::Text(tenant.as_str().to_owned()),
        Value::Text(stream.as_str().to_owned()),
        Value::Integer(from),
        Value::Integer(limit),
    ];
    (sql, params)
}

/// A read of the global log as SQL and parameters.
pub fn all_query(tenant: &Tenant, read: &ReadAll) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {COLUMNS} FROM events WHERE tenant = ?1 AND position > ?2");
    let mut params = vec![
        Value::Text(tenant.as_str().to_owned()),
        // Commit order is position order in a single-writer store.
        Value::Integer(read.after.sequence.min(i64::MAX as u64) as i64),
    ];
    for (column, values) in [
        ("event_type", &read.filter.event_types),
        ("category", &read.filter.categories),
    ] {
        if values.is_empty() {
            continue;
        }
        let first = params.len() + 1;
        let marks: Vec<String> = (first..first + values.len())
            .map(|i| format!("?{i}"))
            .collect();
        sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
        params.extend(values.iter().map(|v| Value::Text(v.clone())));
    }
    sql.push_str(&format!(" ORDER BY position LIMIT ?{}", params.len() + 1));
    params.push(Value::Integer(read.limit.min(i64::MAX as usize) as i64));
    (sql, params)
}

/// Runs an event query and builds owned records. `stream` short-cuts parsing when every row
/// belongs to one known stream.
pub fn query_records(
    conn: &Connection,
    tenant: &Tenant,
    known: Option<&StreamId>,
    (sql, params): (String, Vec<Value>),
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
pub struct RecordReader<'t> {
    tenant: &'t Tenant,
    last_stream: Option<StreamId>,
    last_type: Option<Arc<str>>,
}

impl<'t> RecordReader<'t> {
    /// Records of `tenant`; `known` short-cuts parsing when every row belongs to that stream.
    pub fn new(tenant: &'t Tenant, known: Option<&StreamId>) -> Self {
        Self {
            tenant,
            last_stream: known.cloned(),
            last_type: None,
        }
    }

    /// The record in `row`.
    pub fn read(&mut self, row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
        let head = Head::read(row)?;
        let stream = stream_of(row, head.position, &mut self.last_stream)?;
        let metadata = metadata_of(row, head.position)?;
        Ok(RecordedEvent {
            event_id: head.event_id,
            stream,
            stream_version: head.stream_version,
            global_position: head.position,
            tenant: self.tenant.clone(),
            event_type: shared_name(text(row, 5, head.position)?, &mut self.last_type),
            schema_version: head.schema_version,
            payload: Arc::from(text(row, 7, head.position)?),
            metadata,
            recorded_at: head.recorded_at,
        })
    }
}

/// The rows of one stream read, packed for visiting: versions in one vector, every type name
/// and payload in one string. Built on a blocking thread, visited on the caller's.
#[derive(Default)]
pub struct Compact {
    rows: Vec<(StreamVersion, u32, [usize; 3])>,
    text: String,
}

/// Reads one visit row: stream version, event type, schema version, payload.
fn visit_row<'r>(row: &'r Row<'_>) -> Result<(StreamVersion, &'r str, u32, &'r str), StoreError> {
    let int = |column: usize| {
        row.get_ref(column)
            .and_then(|v| Ok(v.as_i64()?))
            .map_err(backend)
    };
    let version = int(0)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        position: GlobalPosition::START,
        reason,
    };
    let schema_version = u32::try_from(int(2)?).map_err(|_| {
        corrupt(format!(
            "stream version {version}: schema version out of range"
        ))
    })?;
    let text = |column: usize| {
        row.get_ref(column)
            .map_err(backend)?
            .as_str()
            .map_err(|e| corrupt(format!("stream version {version}, column {column}: {e}")))
    };
    if version < 1 {
        return Err(corrupt(format!("stream version {version}")));
    }
    Ok((
        StreamVersion(version as u64),
        text(1)?,
        schema_version,
        text(3)?,
    ))
}

/// Runs a visit query into a [`Compact`].
pub fn query_compact(
    conn: &Connection,
    (sql, params): (String, Vec<Value>),
) -> Result<Compact, StoreError> {
    let mut statement = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = statement.query(params_from_iter(params)).map_err(backend)?;
    let mut compact = Compact::default();
    while let Some(row) = rows.next().map_err(backend)? {
        let (version, event_type, schema_version, payload) = visit_row(row)?;
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
pub fn visit_rows<E: From<StoreError>>(
    conn: &Connection,
    stream: &StreamId,
    (sql, params): (String, Vec<Value>),
    mut visit: impl FnMut(StoredEvent<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut statement = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = statement.query(params_from_iter(params)).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        let (stream_version, event_type, schema_version, payload) = visit_row(row)?;
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
    pub fn visit<E>(
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

/// The fixed-size columns of an event row.
#[derive(Clone, Copy)]
struct Head {
    position: GlobalPosition,
    stream_version: StreamVersion,
    event_id: EventId,
    schema_version: u32,
    recorded_at: Timestamp,
}

impl Head {
    fn read(row: &Row<'_>) -> Result<Self, StoreError> {
        let int = |column: usize| {
            row.get_ref(column)
                .map_err(backend)?
                .as_i64()
                .map_err(StoreError::backend)
        };
        let sequence = int(0)?;
        let commit = int(1)?;
        let position = GlobalPosition::new(commit as u64, sequence as u64);
        let corrupt = |reason: String| StoreError::Corrupt { position, reason };
        let stream_version = int(3)?;
        let id = row
            .get_ref(4)
            .map_err(backend)?
            .as_blob()
            .map_err(|e| corrupt(format!("event_id: {e}")))?;
        let id: [u8; 16] = id
            .try_into()
            .map_err(|_| corrupt(format!("event_id has {} bytes, not 16", id.len())))?;
        let schema_version = int(6)?;
        let recorded_at = int(9)?;
        if stream_version < 1 || !(0..=i64::from(u32::MAX)).contains(&schema_version) {
            return Err(corrupt(format!(
                "stream version {stream_version}, schema version {schema_version}"
            )));
        }
        Ok(Self {
            position,
            stream_version: StreamVersion(stream_version as u64),
            event_id: EventId(Uuid::from_bytes(id)),
            schema_version: schema_version as u32,
            recorded_at: Timestamp::from_micros(recorded_at),
        })
    }
}

fn text<'r>(
    row: &'r Row<'_>,
    column: usize,
    position: GlobalPosition,
) -> Result<&'r str, StoreError> {
    row.get_ref(column)
        .map_err(backend)?
        .as_str()
        .map_err(|e| StoreError::Corrupt {
            position,
            reason: format!("column {column}: {e}"),
        })
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
fn stream_of(
    row: &Row<'_>,
    position: GlobalPosition,
    last: &mut Option<StreamId>,
) -> Result<StreamId, StoreError> {
    let name = text(row, 2, position)?;
    if let Some(stream) = last.as_ref().filter(|s| s.as_str() == name) {
        return Ok(stream.clone());
    }
    let stream: StreamId = name.parse().map_err(|e| StoreError::Corrupt {
        position,
        reason: format!("{e}"),
    })?;
    *last = Some(stream.clone());
    Ok(stream)
}

fn metadata_of(row: &Row<'_>, position: GlobalPosition) -> Result<Metadata, StoreError> {
    match row.get_ref(8).map_err(backend)?.as_str_or_null() {
        Ok(None) => Ok(Metadata::default()),
        Ok(Some(json)) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
            position,
            reason: format!("metadata: {e}"),
        }),
        Err(e) => Err(StoreError::Corrupt {
            position,
            reason: format!("metadata: {e}"),
        }),
    }
}
