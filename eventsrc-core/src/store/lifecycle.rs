//! [`Lifecycle`]: deleting streams and truncating their history, the ways an append-only log
//! lets go of events.
//!
//! Every removal keeps the guarantees of the log: global positions and stream versions are
//! never reused, checkpoints stay valid, and nothing disappears without a trace.
//!
//! - **Soft delete** ([`Deletion::Soft`]) appends a [`STREAM_DELETED`] marker to the stream
//!   and moves the stream's events to the archive. The stream reads as deleted: a load folds
//!   nothing before the marker and starts from the aggregate's initial state. It can start
//!   again: an append with [`ExpectedVersion::NoStream`] (or the marker's version) is
//!   accepted, and its events continue the stream's numbering after the marker, as
//!   EventStoreDB does.
//! - **Tombstone** ([`Deletion::Tombstone`]) appends a [`STREAM_TOMBSTONED`] marker at
//!   [`StreamVersion::TOMBSTONE`] and removes the stream's events for good: they are not
//!   archived, and what earlier removals archived of the stream and the copies reactors parked
//!   go too. Any later append to the stream is [`StoreError::Tombstoned`], and so is a
//!   load.
//! - **Truncation** ([`Lifecycle::truncate_before`]) moves a stream's events before a version
//!   to the archive, keeping the rest. A load that needs the removed events (no snapshot at
//!   or after the cut) fails with [`LoadError::Truncated`](crate::LoadError::Truncated); a
//!   reader of the log that is still behind a removed event fails with
//!   [`StoreError::Truncated`] unless it asked to skip them ([`ReadAll::allow_truncated`]).
//!   [`Retention`] truncates every stream of a category to a count or an age, never past
//!   what its snapshot covers.
//!
//! The two markers are events of the log like any other: subscriptions, read models and
//! reactors see them (decode them as [`StreamDeleted`] and [`StreamTombstoned`]) and react,
//! e.g. by deleting the read model's rows of that stream. Removed events are not in the log,
//! so a reader does not get them; the marker tells it what went.
//!
//! Idempotency ([`EventStore::append`]'s retried batches) covers the events still in the log:
//! once a batch's events are removed, appending it again stores it again.
//!
//! ```
//! use eventsrc::store::{Deletion, Lifecycle, ReadStream};
//! use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StoreError, StreamId, StreamVersion};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = MemoryStore::new();
//! let cart = StreamId::new("cart", 7)?;
//! let added = || vec![NewEvent::raw("ItemAdded", 1, "{}"), NewEvent::raw("ItemAdded", 1, "{}")];
//! store.append(&cart, ExpectedVersion::NoStream, added()).await?;
//!
//! // Soft delete: the events go to the archive, a marker stays, and the stream may start again.
//! let deleted = store.delete_stream(&cart, ExpectedVersion::Any, Deletion::Soft).await?;
//! assert_eq!((deleted.version, deleted.removed), (StreamVersion(3), 2));
//! assert_eq!(store.read_archive(&cart).await?.len(), 2);
//! let again = store.append(&cart, ExpectedVersion::NoStream, added()).await?;
//! assert_eq!(again.first_version, StreamVersion(4));
//!
//! // Tombstone: gone for good, and no append is accepted any more.
//! store.delete_stream(&cart, ExpectedVersion::Any, Deletion::Tombstone).await?;
//! let refused = store.append(&cart, ExpectedVersion::Any, added()).await;
//! assert!(matches!(refused, Err(StoreError::Tombstoned { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::{
    DecodeError, EncodeError, Event, EventStore, EventType, ExpectedVersion, GlobalPosition,
    RecordedEvent, StoreError, StreamId, StreamVersion, Timestamp,
};

#[cfg(doc)]
use crate::store::ReadAll;

/// The stored name of the marker a soft delete appends: [`StreamDeleted`].
pub const STREAM_DELETED: &str = "$StreamDeleted";

/// The stored name of the marker a tombstone appends: [`StreamTombstoned`].
pub const STREAM_TOMBSTONED: &str = "$StreamTombstoned";

/// How a stream is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deletion {
    /// The stream's events move to the archive and a [`STREAM_DELETED`] marker is appended;
    /// the stream may start again (see the [module](self) docs).
    Soft,
    /// The stream's events are removed for good and a [`STREAM_TOMBSTONED`] marker is
    /// appended at [`StreamVersion::TOMBSTONE`]; no append is ever accepted again.
    Tombstone,
}

/// What [`Lifecycle::delete_stream`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deleted {
    /// The marker's version in the stream ([`StreamVersion::TOMBSTONE`] for a tombstone).
    pub version: StreamVersion,
    /// The marker's position in the log.
    pub position: GlobalPosition,
    /// How many events were removed (archived by a soft delete, dropped by a tombstone).
    pub removed: u64,
    /// Whether the stream was already deleted this way, so that nothing was written: a
    /// retried deletion.
    pub already_deleted: bool,
}

impl Deleted {
    /// A deletion's result, for backends.
    pub fn new(
        version: StreamVersion,
        position: GlobalPosition,
        removed: u64,
        already_deleted: bool,
    ) -> Self {
        Self {
            version,
            position,
            removed,
            already_deleted,
        }
    }
}

/// What [`Lifecycle::truncate_before`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Truncated {
    /// How many events moved to the archive (0 when the stream was already cut there).
    pub archived: u64,
    /// The stream's first version still in the log.
    pub kept_from: StreamVersion,
}

impl Truncated {
    /// A truncation's result, for backends.
    pub fn new(archived: u64, kept_from: StreamVersion) -> Self {
        Self {
            archived,
            kept_from,
        }
    }
}

/// Removing events from the log: deleting streams, truncating their history, and reading
/// back what was archived. Every backend implements it; `eventsrc-testing`'s conformance
/// suite proves it. See the [module](self) docs for what each removal means.
pub trait Lifecycle: EventStore {
    /// Deletes `stream` if its version is one `expected` accepts: appends the marker of
    /// `deletion` and removes the events before it, in one transaction, and drops the
    /// stream's snapshot.
    ///
    /// A stream already deleted the same way is left as it is and its marker reported with
    /// [`already_deleted`](Deleted::already_deleted) (whatever `expected` says): a retried
    /// deletion. Soft-deleting a tombstoned stream is [`StoreError::Tombstoned`]; a stream
    /// without events can be deleted too (a tombstone then reserves its name).
    fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
    ) -> impl Future<Output = Result<Deleted, StoreError>> + Send;

    /// Moves `stream`'s events before `version` to the archive, in one transaction, and
    /// records that readers of the log behind the last of them would miss events
    /// ([`StoreError::Truncated`]).
    ///
    /// Truncating where the stream is already cut moves nothing. `version` may be at most
    /// the stream's version: the last event always stays, so that its version (and the
    /// version check of the next append) is kept; remove everything with
    /// [`delete_stream`](Lifecycle::delete_stream) instead
    /// ([`StoreError::InvalidAppend`] otherwise).
    fn truncate_before(
        &self,
        stream: &StreamId,
        version: StreamVersion,
    ) -> impl Future<Output = Result<Truncated, StoreError>> + Send;

    /// The archived events of `stream`, soft-deleted or truncated, in version order: read
    /// them back to audit, export (as JSON lines, with `serde_json`), or restore by hand.
    fn read_archive(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The position of the last event truncation removed from this tenant's log
    /// ([`GlobalPosition::START`] if none): a reader of the log after an earlier position
    /// would miss events.
    fn truncated_through(&self) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send;
}

/// The marker of a soft delete ([`STREAM_DELETED`]), as subscribers decode it.
///
/// ```
/// use eventsrc::Event;
/// use eventsrc::store::StreamDeleted;
/// use eventsrc::StreamVersion;
///
/// let marker = StreamDeleted { through: StreamVersion(4) };
/// let payload = marker.encode()?;
/// assert_eq!(payload, r#"{"through":4}"#);
/// assert_eq!(StreamDeleted::decode("$StreamDeleted", 1, &payload)?, marker);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDeleted {
    /// The version of the last event the deletion removed (the marker's own version minus
    /// one).
    pub through: StreamVersion,
}

/// The marker of a tombstone ([`STREAM_TOMBSTONED`]), as subscribers decode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTombstoned {
    /// The stream's version before it was tombstoned: the last event removed.
    pub through: StreamVersion,
}

macro_rules! marker_event {
    ($type:ident, $name:ident) => {
        impl Event for $type {
            fn event_type(&self) -> &'static str {
                $name
            }

            fn schema_version(&self) -> u32 {
                1
            }

            fn encode(&self) -> Result<String, EncodeError> {
                serde_json::to_string(self).map_err(|e| EncodeError::new($name, e))
            }

            fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
                DecodeError::check($name, 1, event_type, version)?;
                serde_json::from_str(payload)
                    .map_err(|e| DecodeError::malformed(event_type, version, e))
            }

            fn stored_types() -> Option<Vec<&'static str>> {
                Some(vec![$name])
            }
        }

        impl EventType for $type {
            const NAME: &'static str = $name;
            const VERSION: u32 = 1;
        }
    };
}

marker_event!(StreamDeleted, STREAM_DELETED);
marker_event!(StreamTombstoned, STREAM_TOMBSTONED);

/// The payload of a marker removing the events through `through`: what backends store.
pub fn marker_payload(through: StreamVersion) -> String {
    format!(r#"{{"through":{}}}"#, through.get())
}

/// The version check of an append to `stream`, at `current` and whose last event is of type
/// `last_type`, for backends: `Ok` when `expected` accepts it, [`StoreError::Tombstoned`] for
/// a tombstoned stream (whatever `expected` says), and [`StoreError::WrongExpectedVersion`]
/// otherwise. A soft-deleted stream with nothing after its marker accepts
/// [`ExpectedVersion::NoStream`] (and `Exact(NONE)`) as well as its marker's version: it
/// starts again.
///
/// `last_type` matters only when the plain check fails and `expected` [may
/// restart](may_restart) a stream, or for a tombstone told by its type: a backend reads it only
/// then, so that the common append pays nothing for deletions.
pub fn check_expected(
    stream: &StreamId,
    expected: ExpectedVersion,
    current: StreamVersion,
    last_type: Option<&str>,
) -> Result<(), StoreError> {
    if current == StreamVersion::TOMBSTONE || last_type == Some(STREAM_TOMBSTONED) {
        return Err(StoreError::Tombstoned {
            stream: stream.clone(),
        });
    }
    if expected.accepts(current) || (last_type == Some(STREAM_DELETED) && may_restart(expected)) {
        return Ok(());
    }
    Err(StoreError::WrongExpectedVersion {
        stream: stream.clone(),
        expected,
        actual: current,
    })
}

/// Whether `expected` may start a soft-deleted stream again ([`check_expected`]): only these
/// expectations need the type of the stream's last event when their plain check fails.
pub fn may_restart(expected: ExpectedVersion) -> bool {
    matches!(
        expected,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(StreamVersion::NONE)
    )
}

/// Which streams of a category [`Retention`] keeps how much of.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// The category (aggregate type) whose streams are truncated.
    pub category: String,
    /// Keep at least this many of each stream's last events.
    pub keep_last: Option<u64>,
    /// Keep every event recorded after this instant.
    pub keep_since: Option<Timestamp>,
    /// Cut only what the stream's snapshot covers (on by default), so that aggregates still
    /// load; off, a stream without a snapshot is truncated too and no longer loads.
    pub require_snapshot: bool,
}

impl Retention {
    /// A policy for the streams of `category` that keeps everything until
    /// [`keep_last`](Self::keep_last) or [`keep_since`](Self::keep_since) says otherwise.
    pub fn category(category: impl Into<String>) -> Self {
        Self {
            category: category.into(),
            keep_last: None,
            keep_since: None,
            require_snapshot: true,
        }
    }

    /// Keeps each stream's last `count` events (at least 1).
    pub fn keep_last(mut self, count: u64) -> Self {
        self.keep_last = Some(count.max(1));
        self
    }

    /// Keeps every event recorded at or after `since`.
    pub fn keep_since(mut self, since: Timestamp) -> Self {
        self.keep_since = Some(since);
        self
    }

    /// Whether a cut must stay within what the stream's snapshot covers (the default).
    pub fn require_snapshot(mut self, require: bool) -> Self {
        self.require_snapshot = require;
        self
    }
}

/// What [`apply_retention`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Streams of the category looked at.
    pub streams: u64,
    /// Streams truncated.
    pub truncated: u64,
    /// Events moved to the archive.
    pub archived: u64,
    /// Streams the policy would have cut further, but whose snapshot did not allow it.
    pub held_by_snapshot: u64,
}

/// Truncates every stream of `policy`'s category to what it keeps, one stream at a time, and
/// says what it did. Each cut is one [`Lifecycle::truncate_before`]; a stream appended to
/// meanwhile keeps its new events (a cut never passes a stream's last event).
///
/// ```
/// use eventsrc::store::{apply_retention, Lifecycle, Retention, Snapshot};
/// use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, SnapshotStore, StreamId, StreamVersion, Timestamp};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = MemoryStore::new();
/// let cart = StreamId::new("cart", 7)?;
/// let events = (0..10).map(|_| NewEvent::raw("ItemAdded", 1, "{}")).collect();
/// store.append(&cart, ExpectedVersion::NoStream, events).await?;
///
/// // Nothing is cut before a snapshot covers it ...
/// let report = apply_retention(&store, &store, &Retention::category("cart").keep_last(3)).await?;
/// assert_eq!((report.truncated, report.held_by_snapshot), (0, 1));
///
/// // ... and then only what it covers.
/// let taken_at = Timestamp::from_micros(0);
/// let snapshot = Snapshot { stream: cart.clone(), version: StreamVersion(6), state_version: 1, payload: "{}".into(), taken_at };
/// store.save_snapshot(snapshot).await?;
/// let report = apply_retention(&store, &store, &Retention::category("cart").keep_last(3)).await?;
/// assert_eq!((report.truncated, report.archived), (1, 6));
/// assert_eq!(store.read_archive(&cart).await?.len(), 6);
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn apply_retention<S, N>(
    store: &S,
    snapshots: &N,
    policy: &Retention,
) -> Result<RetentionReport, StoreError>
where
    S: Lifecycle + crate::store::Inspect,
    N: crate::SnapshotStore,
{
    use crate::store::{ListStreams, ReadStream};

    let mut report = RetentionReport::default();
    let mut after: Option<String> = None;
    loop {
        let mut list = ListStreams::new().category(policy.category.clone());
        if let Some(after) = &after {
            list = list.after(after.clone());
        }
        let page = store.streams(list).await?;
        let Some(last) = page.last() else {
            return Ok(report);
        };
        after = Some(last.stream.as_str().to_owned());
        for summary in &page {
            report.streams += 1;
            let current = summary.version;
            if current == StreamVersion::TOMBSTONE || current == StreamVersion::NONE {
                continue;
            }
            let mut cuts = Vec::new();
            if let Some(keep) = policy.keep_last {
                cuts.push(StreamVersion(current.get().saturating_sub(keep) + 1));
            }
            if let Some(since) = policy.keep_since {
                let events = store
                    .read_stream(&summary.stream, ReadStream::forward())
                    .await?;
                let first_kept = events
                    .iter()
                    .find(|event| event.recorded_at >= since)
                    .map_or(current, |event| event.stream_version);
                cuts.push(first_kept);
            }
            let Some(mut cut) = cuts.into_iter().min() else {
                continue;
            };
            if policy.require_snapshot {
                let covered = snapshots
                    .load_snapshot(&summary.stream)
                    .await?
                    .map_or(StreamVersion(1), |snapshot| snapshot.version.advance(1));
                if covered < cut {
                    cut = covered;
                    report.held_by_snapshot += 1;
                }
            }
            if cut <= StreamVersion(1) {
                continue;
            }
            let truncated = store.truncate_before(&summary.stream, cut).await?;
            if truncated.archived > 0 {
                report.truncated += 1;
                report.archived += truncated.archived;
            }
        }
    }
}
