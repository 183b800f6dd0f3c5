//! The single writer: one thread owns the write connection and commits appends in groups.
//!
//! Appends that arrive while a commit is in progress wait in the channel; the next transaction
//! takes all of them (up to [`MAX_GROUP`]), each inside its own savepoint, and one `COMMIT`
//! (one fsync with `synchronous=FULL`) makes them all durable. A request that fails (a version
//! conflict, an inline projection refusing an event) rolls back its savepoint only; its
//! neighbours commit. A request appending to several streams is one request with one
//! savepoint: all its parts are stored, or none. Every caller is answered only after the
//! commit that holds its events, so a reply of success means durable; then the append counter
//! moves, waking live readers.

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};

use eventsrc_core::store::{AppendResult, EventFilter, StreamAppend};

use eventsrc_core::StoreError;

use eventsrc_core::backend::{StoredCopy, already_stored, already_stored_parts, encode_metadata};
use eventsrc_core::store::lifecycle::{check_expected, may_restart};
use eventsrc_core::time::Clock;
use eventsrc_core::{GlobalPosition, StreamVersion, Tenant, Timestamp};
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior, params};
use tokio::sync::{oneshot, watch};

use crate::inline::{self, Inline, InlineProjections, Slot};
use crate::lifecycle::Removal;
use crate::{backend, rows, statements};

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
    /// Delete or truncate a stream, in a transaction of its own: a deletion's marker is
    /// appended as an event is (inline projections apply it, live readers wake).
    Remove(Removal),
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

/// One append request of a tenant: its parts are stored together, in one savepoint, or not
/// at all.
pub(crate) struct Append {
    pub tenant: Tenant,
    pub parts: Parts,
}

/// The streams a request appends to, and where to answer it.
pub(crate) enum Parts {
    /// `EventStore::append`: one stream, answered with its result alone.
    One(
        StreamAppend,
        oneshot::Sender<Result<AppendResult, StoreError>>,
    ),
    /// `EventStore::append_streams`: several streams (at least one, each once), answered with
    /// one result per part, in order.
    Many(
        Vec<StreamAppend>,
        oneshot::Sender<Result<Vec<AppendResult>, StoreError>>,
    ),
}

impl Append {
    /// The request's parts, in order.
    fn parts(&self) -> &[StreamAppend] {
        match &self.parts {
            Parts::One(part, _) => std::slice::from_ref(part),
            Parts::Many(parts, _) => parts,
        }
    }

    /// Answers the caller with one result per part, or the request's error.
    fn answer(self, answer: Result<&[AppendResult], StoreError>) {
        match self.parts {
            Parts::One(part, reply) => {
                let answer = answer.and_then(|results| match results {
                    [only] => Ok(*only),
                    // Never: a request gets one result per part.
                    _ => Err(StoreError::backend(std::io::Error::other(format!(
                        "the append to `{}` got {} results, not one",
                        part.stream,
                        results.len()
                    )))),
                });
                let _ = reply.send(answer);
            }
            Parts::Many(_, reply) => {
                let _ = reply.send(answer.map(<[AppendResult]>::to_vec));
            }
        }
    }
}

/// What the writer thread owns.
struct Writer {
    conn: Connection,
    clock: Arc<dyn Clock>,
    /// Counts group commits that stored events: the append signal.
    appended: Arc<watch::Sender<u64>>,
    inline: InlineProjections,
    group: Vec<Append>,
    /// The results of the group's parts, each request's a range of them: kept across groups,
    /// so that answering an append allocates nothing.
    results: Vec<AppendResult>,
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
        results: Vec::new(),
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
            Request::Remove(removal) => {
                self.commit_group();
                // As after a group commit: the signal moves after the marker's commit and
                // before the reply.
                let now = self.clock.now();
                removal.run(&mut self.conn, &mut self.inline, now, || {
                    signal(&self.appended)
                });
            }
        }
    }

    fn commit_group(&mut self) {
        if self.group.is_empty() {
            return;
        }
        let appends = std::mem::take(&mut self.group);
        let recorded_at = self.clock.now();
        self.results.clear();
        let committed = commit(
            &mut self.conn,
            &mut self.inline,
            &appends,
            recorded_at,
            &mut self.results,
        );
        match committed {
            Ok(outcomes) => {
                // A request of parts without events checks versions and stores nothing.
                let stored = outcomes.iter().any(
                    |outcome| matches!(outcome, Ok(Outcome::Appended { used, .. }) if *used > 0),
                );
                if stored {
                    // After the commit, so that a reader woken by it sees the events; before
                    // the replies, so that an appender finds it moved.
                    signal(&self.appended);
                }
                for (append, outcome) in appends.into_iter().zip(outcomes) {
                    let results = outcome
                        .map(|outcome| self.results.get(outcome.results()).unwrap_or_default());
                    append.answer(results);
                }
            }
            Err(error) => {
                tracing::error!(%error, appends = appends.len(), "commit failed; nothing of the group is stored");
                let message = error.to_string();
                for append in appends {
                    append.answer(Err(StoreError::backend(CommitFailed(message.clone()))));
                }
            }
        }
    }
}

/// Moves the append signal: a commit stored events.
fn signal(appended: &watch::Sender<u64>) {
    appended.send_modify(|count| *count = count.wrapping_add(1));
}

/// The highest position of the whole log (0 when it is empty), which the next commit
/// follows: read in every transaction that stores events, appends' and a deletion's marker's.
pub(crate) fn last_position(conn: &Connection) -> rusqlite::Result<i64> {
    // Cached: parsing it again cost a few microseconds on every commit.
    conn.prepare_cached(statements::LAST_POSITION)?
        .query_row([], |r| r.get(0))
}

/// Commits `appends` in one transaction, each request in its own savepoint, and returns each
/// one's outcome; their results go to `results`.
fn commit(
    conn: &mut Connection,
    inline: &mut InlineProjections,
    appends: &[Append],
    recorded_at: Timestamp,
    results: &mut Vec<AppendResult>,
) -> rusqlite::Result<Vec<Result<Outcome, StoreError>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut next_position = last_position(&tx)? + 1;
    if let [only] = appends {
        // Alone in its transaction, a request needs no savepoint: the transaction itself
        // commits or rolls back (two statements fewer on every single-writer commit).
        let outcome = append_request(&tx, inline, only, next_position, recorded_at, results);
        if matches!(outcome, Ok(Outcome::Appended { .. })) {
            tx.commit()?;
        }
        return Ok(vec![outcome]);
    }
    let mut outcomes = Vec::with_capacity(appends.len());
    for append in appends {
        // Savepoints by hand rather than rusqlite's `Savepoint`, so that inline projections
        // get the transaction itself.
        tx.prepare_cached("SAVEPOINT append")?.execute([])?;
        let outcome = append_request(&tx, inline, append, next_position, recorded_at, results);
        if let Ok(Outcome::Appended { used, .. }) = &outcome {
            tx.prepare_cached("RELEASE append")?.execute([])?;
            next_position += used;
        } else {
            tx.prepare_cached("ROLLBACK TO append")?.execute([])?;
            tx.prepare_cached("RELEASE append")?.execute([])?;
        }
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// What one request did inside the group's transaction; its results (one per part) are a
/// range of the group's.
enum Outcome {
    /// Every part passed its check and its rows were inserted; `used` positions were taken
    /// (none when every part only checked its stream).
    Appended { results: Range<usize>, used: i64 },
    /// Every event of every part was already stored: nothing to keep.
    AlreadyStored(Range<usize>),
}

impl Outcome {
    fn results(&self) -> Range<usize> {
        match self {
            Self::Appended { results, .. } | Self::AlreadyStored(results) => results.clone(),
        }
    }
}

/// The group's transaction failed as a whole; none of its appends is stored.
#[derive(Debug, thiserror::Error)]
#[error("commit failed, nothing stored: {0}")]
struct CommitFailed(String);

/// Stores one request's parts from `first_position` on and applies the inline projections to
/// them, in the caller's transaction or savepoint, which the caller rolls back unless the
/// outcome is [`Outcome::Appended`]. Pushes one result per part to `results` on success, none
/// on an error.
fn append_request(
    tx: &Transaction<'_>,
    inline: &mut InlineProjections,
    append: &Append,
    first_position: i64,
    recorded_at: Timestamp,
    results: &mut Vec<AppendResult>,
) -> Result<Outcome, StoreError> {
    let start = results.len();
    let outcome = store_parts(
        tx,
        inline,
        &append.tenant,
        append.parts(),
        first_position,
        recorded_at,
        results,
    );
    if outcome.is_err() {
        results.truncate(start);
    }
    outcome
}

/// [`append_request`]'s work. Each part's version is checked just before its rows go in:
/// the parts name distinct streams, so one part's rows never change another's version.
fn store_parts(
    tx: &Transaction<'_>,
    inline: &mut InlineProjections,
    tenant: &Tenant,
    parts: &[StreamAppend],
    first_position: i64,
    recorded_at: Timestamp,
    results: &mut Vec<AppendResult>,
) -> Result<Outcome, StoreError> {
    let start = results.len();
    // One commit for the whole request: every part's events carry its first position.
    let commit = first_position;
    let mut next_position = first_position;
    let follows = inline.follows(tenant);
    let mut records = Vec::new();
    // A request that turns out to be a retry answers with the stored results instead.
    let retry = |results: &mut Vec<AppendResult>, done: Vec<AppendResult>| {
        results.truncate(start);
        results.extend(done);
        Outcome::AlreadyStored(start..results.len())
    };
    for StreamAppend {
        stream,
        expected,
        events,
    } in parts
    {
        // A corrupt row that holds the stream's highest version fails the append (naming
        // it): the next version cannot be known without it. Other corrupt rows do not matter
        // here.
        let current_version = rows::current_version(tx, tenant, stream)?;
        // A tombstone's marker holds the highest version a row can, so the version just read
        // tells a tombstoned stream: the common append pays no query for deletions.
        if current_version == StreamVersion::TOMBSTONE || !expected.accepts(current_version) {
            // A retry of a request that did commit is not a conflict.
            if let Some(done) = retried(tx, tenant, parts, first_position)? {
                return Ok(retry(results, done));
            }
            // Only now, and only for an expectation that may start a soft-deleted stream
            // again, the last event's type.
            let last_type = match current_version {
                StreamVersion::TOMBSTONE => None,
                _ if !may_restart(*expected) => None,
                version => rows::last_event(tx, tenant, stream, version)?.map(|(_, kind)| kind),
            };
            check_expected(stream, *expected, current_version, last_type.as_deref())?;
        }
        // Stored versions are positive i64s, so this converts back losslessly.
        let current = current_version.get() as i64;
        if events.is_empty() {
            // A part without events only checks its stream's version.
            results.push(AppendResult {
                first_version: current_version.advance(1),
                stream_version: current_version,
                position: GlobalPosition::START,
                recorded_at,
                already_stored: false,
            });
            continue;
        }
        let count = events.len() as i64;
        // Versions stay below the tombstone's: a stream reaching it would read as tombstoned
        // (and one past it would overflow).
        let room = (StreamVersion::TOMBSTONE.get() as i64).saturating_sub(current);
        if count >= room {
            return Err(StoreError::InvalidAppend {
                stream: stream.clone(),
                reason: format!(
                    "the stream is at version {current_version}, and {count} more events would \
                     reach version {}, which only a tombstone's marker holds",
                    StreamVersion::TOMBSTONE
                ),
            });
        }
        let mut insert = tx.prepare_cached(statements::INSERT).map_err(backend)?;
        let metadata = encode_metadata(events)?;
        for ((offset, event), metadata) in events.iter().enumerate().zip(metadata) {
            let offset = offset as i64;
            let inserted = insert.execute(params![
                next_position + offset,
                commit,
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
                    // write lock. Either the whole request is a retry, or an id is reused.
                    return match retried(tx, tenant, parts, first_position)? {
                        Some(done) => Ok(retry(results, done)),
                        None => Err(StoreError::DuplicateEventId {
                            event_id: event.event_id,
                            stream: stream.clone(),
                        }),
                    };
                }
                Err(error) => return Err(backend(error)),
            }
        }
        if follows {
            let first = GlobalPosition::new(commit as u64, next_position as u64);
            records.extend(inline::records(
                tenant,
                stream,
                events,
                current + 1,
                first,
                recorded_at,
            ));
        }
        results.push(AppendResult {
            first_version: StreamVersion((current + 1) as u64),
            stream_version: StreamVersion((current + count) as u64),
            position: GlobalPosition::new(commit as u64, (next_position + count - 1) as u64),
            recorded_at,
            already_stored: false,
        });
        next_position += count;
    }
    if follows {
        inline.apply_append(tx, tenant, &records)?;
    }
    Ok(Outcome::Appended {
        results: start..results.len(),
        used: next_position - first_position,
    })
}

/// `Some(results)` when the request is a retry of one already stored, one result per part;
/// `None` when none of its ids is stored; [`StoreError::DuplicateEventId`] otherwise (the rules
/// all backends share). Only rows before `first_position` count: those the request itself
/// inserted so far are not stored copies.
fn retried(
    conn: &Connection,
    tenant: &Tenant,
    parts: &[StreamAppend],
    first_position: i64,
) -> Result<Option<Vec<AppendResult>>, StoreError> {
    let answers = parts
        .iter()
        .map(|part| {
            let ids = part.events.iter().map(|e| e.event_id);
            let copies = rows::stored_copies(conn, ids, first_position)?;
            let copies = copies.iter().map(|copy| copy.as_ref().map(StoredCopy::of));
            already_stored(tenant, &part.stream, &part.events, copies)
        })
        .collect();
    already_stored_parts(answers, parts)
}
