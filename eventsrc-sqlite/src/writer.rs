//! The single writer: one thread owns the write connection and commits appends in groups.
//!
//! Appends that arrive while a commit is in progress wait in the channel; the next transaction
//! takes all of them (up to [`MAX_GROUP`]), each inside its own savepoint, and one `COMMIT`
//! (one fsync with `synchronous=FULL`) makes them all durable. A request that fails (a version
//! conflict) rolls back its savepoint only; its neighbours commit. Every caller is answered
//! only after the commit that holds its events, so a reply of success means durable.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use eventsrc::store::{AppendResult, StoreError, encode_metadata};
use eventsrc::{
    Clock, ExpectedVersion, GlobalPosition, Metadata, NewEvent, StreamId, StreamVersion, Tenant,
    Timestamp,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::backend;

/// The most appends one transaction takes.
const MAX_GROUP: usize = 256;

/// Work for the writer thread.
pub enum Request {
    /// Append events to a stream.
    Append(Append),
    /// Run something else on the write connection (snapshots, checkpoints; every read of an
    /// in-memory database, which has no second connection).
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// One append and where to answer it.
pub struct Append {
    pub tenant: Tenant,
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// Starts the writer thread on `conn`; it ends when every sender is dropped.
pub fn spawn(conn: Connection, clock: Arc<dyn Clock>) -> std::io::Result<Sender<Request>> {
    let (sender, receiver) = channel();
    std::thread::Builder::new()
        .name("eventsrc-sqlite-writer".into())
        .spawn(move || run(conn, &receiver, &*clock))?;
    Ok(sender)
}

fn run(mut conn: Connection, receiver: &Receiver<Request>, clock: &dyn Clock) {
    let mut group: Vec<Append> = Vec::new();
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Append(append) => {
                    group.push(append);
                    if group.len() >= MAX_GROUP {
                        commit_group(&mut conn, &mut group, clock);
                    }
                }
                Request::Run(job) => {
                    // Keep the order callers saw: appends sent before this job commit first.
                    commit_group(&mut conn, &mut group, clock);
                    job(&mut conn);
                }
            }
            next = receiver.try_recv().ok();
        }
        commit_group(&mut conn, &mut group, clock);
    }
}

/// What one append did inside the group's transaction.
enum Outcome {
    /// Rows were inserted; `count` positions were used.
    Appended(AppendResult, i64),
    /// Every event was already stored: nothing to keep.
    AlreadyStored(AppendResult),
}

impl Outcome {
    fn into_result(self) -> AppendResult {
        match self {
            Self::Appended(result, _) | Self::AlreadyStored(result) => result,
        }
    }
}

fn commit_group(conn: &mut Connection, group: &mut Vec<Append>, clock: &dyn Clock) {
    if group.is_empty() {
        return;
    }
    let appends = std::mem::take(group);
    let recorded_at = clock.now();
    let committed = (|| -> rusqlite::Result<Vec<Result<AppendResult, StoreError>>> {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Cached: parsing it again cost a few microseconds on every commit.
        let last: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
            .query_row([], |r| r.get(0))?;
        let mut next_position = last + 1;
        if let [only] = appends.as_slice() {
            // Alone in its transaction, an append needs no savepoint: the transaction itself
            // commits or rolls back (two statements fewer on every single-writer commit).
            let result = append_one(&tx, only, next_position, recorded_at);
            if matches!(result, Ok(Outcome::Appended(..))) {
                tx.commit()?;
            }
            return Ok(vec![result.map(Outcome::into_result)]);
        }
        let mut results = Vec::with_capacity(appends.len());
        for append in &appends {
            let savepoint = tx.savepoint()?;
            match append_one(&savepoint, append, next_position, recorded_at) {
                Ok(Outcome::Appended(result, used)) => {
                    savepoint.commit()?;
                    next_position += used;
                    results.push(Ok(result));
                }
                // Dropping a savepoint rolls it back.
                Ok(Outcome::AlreadyStored(result)) => results.push(Ok(result)),
                Err(error) => results.push(Err(error)),
            }
        }
        tx.commit()?;
        Ok(results)
    })();
    match committed {
        Ok(results) => {
            for (append, result) in appends.into_iter().zip(results) {
                let _ = append.reply.send(result);
            }
        }
        Err(error) => {
            tracing::error!(%error, appends = appends.len(), "commit failed; nothing of the group is stored");
            let message = error.to_string();
            for append in appends {
                let _ = append
                    .reply
                    .send(Err(StoreError::backend(CommitFailed(message.clone()))));
            }
        }
    }
}

/// The group's transaction failed as a whole; none of its appends is stored.
#[derive(Debug, thiserror::Error)]
#[error("commit failed, nothing stored: {0}")]
struct CommitFailed(String);

fn append_one(
    conn: &Connection,
    append: &Append,
    first_position: i64,
    recorded_at: Timestamp,
) -> Result<Outcome, StoreError> {
    let Append {
        tenant,
        stream,
        expected,
        events,
        ..
    } = append;
    let current: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE tenant = ?1 AND stream = ?2",
        )
        .and_then(|mut s| s.query_row(params![tenant.as_str(), stream.as_str()], |r| r.get(0)))
        .map_err(backend)?;
    if !expected.accepts(StreamVersion(current as u64)) {
        // A retry of an append that did commit is not a conflict.
        if let Some(done) = already_stored(conn, append)? {
            return Ok(Outcome::AlreadyStored(done));
        }
        return Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected: *expected,
            actual: StreamVersion(current as u64),
        });
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (position, commit_seq, tenant, stream, category, stream_version, \
             event_id, event_type, schema_version, payload, metadata, recorded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(backend)?;
    let metadata = encode_metadata(events)?;
    for ((offset, event), metadata) in events.iter().enumerate().zip(metadata) {
        let offset = offset as i64;
        let inserted = insert.execute(params![
            first_position + offset,
            first_position,
            tenant.as_str(),
            stream.as_str(),
            stream.category(),
            current + offset + 1,
            event.event_id.0.as_bytes(),
            event.event_type.as_ref(),
            event.schema_version,
            event.payload,
            metadata,
            recorded_at.as_micros(),
        ]);
        match inserted {
            Ok(_) => {}
            Err(error) if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                // Only the event id can collide: the stream version was checked under the
                // write lock. Either the whole batch is a retry, or an id is reused.
                return match already_stored(conn, append)? {
                    Some(done) => Ok(Outcome::AlreadyStored(done)),
                    None => Err(StoreError::DuplicateEventId {
                        event_id: event.event_id,
                        stream: stream.clone(),
                    }),
                };
            }
            Err(error) => return Err(backend(error)),
        }
    }
    let count = events.len() as i64;
    Ok(Outcome::Appended(
        AppendResult {
            first_version: StreamVersion((current + 1) as u64),
            stream_version: StreamVersion((current + count) as u64),
            position: GlobalPosition::new(
                first_position as u64,
                (first_position + count - 1) as u64,
            ),
            recorded_at,
            already_stored: false,
        },
        count,
    ))
}

/// `Some(result)` when every event of the append is already stored in this tenant and stream,
/// in order and with the same content (an idempotent retry); `None` when none is stored; an
/// error when some are, or any differs.
fn already_stored(conn: &Connection, append: &Append) -> Result<Option<AppendResult>, StoreError> {
    let mut lookup = conn
        .prepare_cached(
            "SELECT tenant, stream, stream_version, event_type, schema_version, payload, metadata, \
             position, commit_seq, recorded_at FROM events WHERE event_id = ?1",
        )
        .map_err(backend)?;
    let mut stored = Vec::with_capacity(append.events.len());
    for event in &append.events {
        let row = lookup
            .query_row([event.event_id.0.as_bytes()], |row| {
                let metadata = match row.get_ref(6)?.as_str_or_null()? {
                    None => Some(Metadata::default()),
                    Some(json) => serde_json::from_str::<Metadata>(json).ok(),
                };
                let same = row.get_ref(0)?.as_str()? == append.tenant.as_str()
                    && row.get_ref(1)?.as_str()? == append.stream.as_str()
                    && row.get_ref(3)?.as_str()? == event.event_type
                    && row.get::<_, i64>(4)? == i64::from(event.schema_version)
                    && row.get_ref(5)?.as_str()? == event.payload
                    && metadata.as_ref() == Some(&event.metadata);
                let version = StreamVersion(row.get::<_, i64>(2)? as u64);
                let position =
                    GlobalPosition::new(row.get::<_, i64>(8)? as u64, row.get::<_, i64>(7)? as u64);
                let recorded_at = Timestamp::from_micros(row.get(9)?);
                Ok((same, version, position, recorded_at))
            })
            .optional()
            .map_err(backend)?;
        stored.push(row);
    }
    let Some(first) = stored.iter().position(Option::is_some) else {
        return Ok(None);
    };
    let duplicate = |index: usize| StoreError::DuplicateEventId {
        event_id: append.events[index].event_id,
        stream: append.stream.clone(),
    };
    // A retry is the whole batch, stored in this stream, in order, with the same content.
    let mut previous: Option<StreamVersion> = None;
    for (index, row) in stored.iter().enumerate() {
        match row {
            None => return Err(duplicate(first)),
            Some((false, ..)) => return Err(duplicate(index)),
            Some((true, version, ..)) if previous.is_some_and(|p| p.advance(1) != *version) => {
                return Err(duplicate(index));
            }
            Some((true, version, ..)) => previous = Some(*version),
        }
    }
    let first_version = stored.first().and_then(|r| r.as_ref()).map(|r| r.1);
    let last = stored.last().and_then(|r| r.as_ref());
    match (first_version, last) {
        (Some(first_version), Some((_, version, position, recorded_at))) => {
            Ok(Some(AppendResult {
                first_version,
                stream_version: *version,
                position: *position,
                recorded_at: *recorded_at,
                already_stored: true,
            }))
        }
        _ => Err(duplicate(first)),
    }
}
