//! The single writer: one thread owns the write connection and commits appends in groups.
//!
//! Appends that arrive while a commit is in progress wait in the channel; the next transaction
//! takes all of them (up to [`MAX_GROUP`]), each inside its own savepoint, and one `COMMIT`
//! (one fsync with `synchronous=FULL`) makes them all durable. A request that fails (a version
//! conflict, an inline projection refusing an event) rolls back its savepoint only; its
//! neighbours commit. Every caller is answered only after the commit that holds its events, so
//! a reply of success means durable; then the append counter moves, waking live readers.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};

use eventsrc_core::store::{AppendResult, EventFilter};

use eventsrc_core::StoreError;

use eventsrc_core::backend::{StoredCopy, already_stored, encode_metadata};
use eventsrc_core::time::Clock;
use eventsrc_core::{
    ExpectedVersion, GlobalPosition, NewEvent, StreamId, StreamVersion, Tenant, Timestamp,
};
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior, params};
use tokio::sync::{oneshot, watch};

use crate::inline::{self, Inline, InlineProjections, Slot};
use crate::{backend, rows};

/// The most appends one transaction takes.
const MAX_GROUP: usize = 256;

/// Work for the writer thread.
pub(crate) enum Request {
    /// Append events to a stream.
    Append(Append),
    /// Run something else on the write connection (snapshots, checkpoints, read model
    /// batches, `write_with`; every read of an in-memory database, which has no second
    /// connection).
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Register an inline projection; it is answered once it has caught up.
    AddInline(AddInline),
}

/// An inline projection to register, and where to answer once it has caught up.
pub(crate) struct AddInline {
    pub tenant: Tenant,
    pub name: String,
    pub filter: EventFilter,
    pub projection: Box<dyn Inline>,
    /// Whether it catches up from its checkpoint and keeps it (else it is live from the next
    /// append, without one).
    pub checkpointed: bool,
    pub reply: inline::Reply,
}

/// One append and where to answer it.
pub(crate) struct Append {
    pub tenant: Tenant,
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// What the writer thread owns.
struct Writer {
    conn: Connection,
    clock: Arc<dyn Clock>,
    /// Counts group commits that stored events: the append signal.
    appended: Arc<watch::Sender<u64>>,
    inline: InlineProjections,
    group: Vec<Append>,
}

/// Starts the writer thread on `conn`; it ends when every sender is dropped.
pub(crate) fn spawn(
    conn: Connection,
    clock: Arc<dyn Clock>,
    appended: Arc<watch::Sender<u64>>,
) -> std::io::Result<Sender<Request>> {
    let (sender, receiver) = channel();
    let writer = Writer {
        conn,
        clock,
        appended,
        inline: InlineProjections::default(),
        group: Vec::new(),
    };
    std::thread::Builder::new()
        .name("eventsrc-sqlite-writer".into())
        .spawn(move || writer.run(&receiver))?;
    Ok(sender)
}

impl Writer {
    fn run(mut self, receiver: &Receiver<Request>) {
        loop {
            // While an inline projection catches up, the writer does not sleep on the channel:
            // it takes what has arrived, then one more page of catch-up.
            let first = if self.inline.catching_up() {
                match receiver.try_recv() {
                    Ok(request) => Some(request),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            } else {
                match receiver.recv() {
                    Ok(request) => Some(request),
                    Err(_) => return,
                }
            };
            // At most a group's worth of requests per turn, so that a catch-up page gets its
            // turn under a steady stream of appends.
            let mut next = first;
            let mut served = 0;
            while let Some(request) = next.take() {
                self.serve(request);
                served += 1;
                if served < MAX_GROUP {
                    next = receiver.try_recv().ok();
                }
            }
            self.commit_group();
            self.inline.step(&mut self.conn);
        }
    }

    fn serve(&mut self, request: Request) {
        match request {
            // `run` serves at most MAX_GROUP requests before it commits the group.
            Request::Append(append) => self.group.push(append),
            Request::Run(job) => {
                // Keep the order callers saw: appends sent before this job commit first.
                self.commit_group();
                job(&mut self.conn);
            }
            Request::AddInline(AddInline {
                tenant,
                name,
                filter,
                projection,
                checkpointed,
                reply,
            }) => {
                self.commit_group();
                let slot = Slot::new(tenant, name, filter, projection, checkpointed, reply);
                self.inline.add(&mut self.conn, slot);
            }
        }
    }

    fn commit_group(&mut self) {
        if self.group.is_empty() {
            return;
        }
        let appends = std::mem::take(&mut self.group);
        let recorded_at = self.clock.now();
        match commit(&mut self.conn, &mut self.inline, &appends, recorded_at) {
            Ok(results) => {
                let stored = results
                    .iter()
                    .any(|r| r.as_ref().is_ok_and(|r| !r.already_stored));
                if stored {
                    // After the commit, so that a reader woken by it sees the events; before
                    // the replies, so that an appender finds it moved.
                    self.appended
                        .send_modify(|count| *count = count.wrapping_add(1));
                }
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
}

/// Commits `appends` in one transaction, each in its own savepoint, and returns each one's
/// result.
fn commit(
    conn: &mut Connection,
    inline: &mut InlineProjections,
    appends: &[Append],
    recorded_at: Timestamp,
) -> rusqlite::Result<Vec<Result<AppendResult, StoreError>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Cached: parsing it again cost a few microseconds on every commit.
    let last: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
        .query_row([], |r| r.get(0))?;
    let mut next_position = last + 1;
    if let [only] = appends {
        // Alone in its transaction, an append needs no savepoint: the transaction itself
        // commits or rolls back (two statements fewer on every single-writer commit).
        let result = append_one(&tx, inline, only, next_position, recorded_at);
        if matches!(result, Ok(Outcome::Appended(..))) {
            tx.commit()?;
        }
        return Ok(vec![result.map(Outcome::into_result)]);
    }
    let mut results = Vec::with_capacity(appends.len());
    for append in appends {
        // Savepoints by hand rather than rusqlite's `Savepoint`, so that inline projections
        // get the transaction itself.
        tx.prepare_cached("SAVEPOINT append")?.execute([])?;
        match append_one(&tx, inline, append, next_position, recorded_at) {
            Ok(Outcome::Appended(result, used)) => {
                tx.prepare_cached("RELEASE append")?.execute([])?;
                next_position += used;
                results.push(Ok(result));
            }
            other => {
                tx.prepare_cached("ROLLBACK TO append")?.execute([])?;
                tx.prepare_cached("RELEASE append")?.execute([])?;
                results.push(other.map(Outcome::into_result));
            }
        }
    }
    tx.commit()?;
    Ok(results)
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

/// The group's transaction failed as a whole; none of its appends is stored.
#[derive(Debug, thiserror::Error)]
#[error("commit failed, nothing stored: {0}")]
struct CommitFailed(String);

fn append_one(
    conn: &Transaction<'_>,
    inline: &mut InlineProjections,
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
    // A corrupt row that holds the stream's highest version fails the append (naming it):
    // the next version cannot be known without it. Other corrupt rows do not matter here.
    let current_version = rows::current_version(conn, tenant, stream)?;
    if !expected.accepts(current_version) {
        // A retry of an append that did commit is not a conflict.
        if let Some(done) = retried(conn, append)? {
            return Ok(Outcome::AlreadyStored(done));
        }
        return Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected: *expected,
            actual: current_version,
        });
    }
    // Stored versions are positive i64s, so this converts back losslessly.
    let current = current_version.get() as i64;
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
                return match retried(conn, append)? {
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
    if inline.follows(tenant) {
        let records = inline::records(
            tenant,
            stream,
            events,
            current + 1,
            first_position,
            recorded_at,
        );
        inline.apply_append(conn, tenant, stream, &records)?;
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

/// `Some(result)` when the append is a retry of one already stored; `None` when none of its
/// ids is stored; [`StoreError::DuplicateEventId`] otherwise (the rule all backends share).
fn retried(conn: &Connection, append: &Append) -> Result<Option<AppendResult>, StoreError> {
    let copies = rows::stored_copies(conn, append.events.iter().map(|e| e.event_id))?;
    let copies = copies.iter().map(|copy| copy.as_ref().map(StoredCopy::of));
    already_stored(&append.tenant, &append.stream, &append.events, copies)
}
