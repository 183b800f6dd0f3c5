//! [`Inspect`]: what an operator asks of a store that the application never does — which
//! streams exist, which event types and schema versions are stored, where every consumer
//! stands, and what every reactor parked.

use std::future::Future;

use crate::backend::ParkedEvent;
use crate::{GlobalPosition, StoreError, StreamId, StreamVersion, Timestamp};

/// A page of the streams of a tenant, in the byte order of their names ([`Inspect::streams`]).
///
/// ```
/// use eventsrc::store::ListStreams;
///
/// let first_page = ListStreams::new().category("cart").limit(50);
/// assert_eq!(first_page.limit, 50);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListStreams {
    /// Only streams of this category (the part of the name before the first `-`).
    pub category: Option<String>,
    /// Only streams whose full name sorts after this one (bytewise): the last name of the
    /// previous page.
    pub after: Option<String>,
    /// At most this many streams.
    pub limit: usize,
}

impl ListStreams {
    /// The first 100 streams of every category.
    pub fn new() -> Self {
        Self {
            category: None,
            after: None,
            limit: 100,
        }
    }

    /// Only streams of `category`.
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Only streams whose name sorts after `stream` (the last one of the previous page).
    pub fn after(mut self, stream: impl Into<String>) -> Self {
        self.after = Some(stream.into());
        self
    }

    /// At most `limit` streams.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

impl Default for ListStreams {
    fn default() -> Self {
        Self::new()
    }
}

/// One stream, as [`Inspect::streams`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSummary {
    /// The stream.
    pub stream: StreamId,
    /// Its version: the version of its newest event.
    pub version: StreamVersion,
    /// When its newest event was recorded.
    pub last_recorded_at: Timestamp,
}

impl StreamSummary {
    /// A summary from its parts (for backend authors).
    pub fn new(stream: StreamId, version: StreamVersion, last_recorded_at: Timestamp) -> Self {
        Self {
            stream,
            version,
            last_recorded_at,
        }
    }
}

/// One stored event type at one schema version, and how many events of the tenant have it
/// ([`Inspect::event_types`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct StoredTypeCount {
    /// The stored name.
    pub event_type: String,
    /// The schema version the payloads were written at.
    pub schema_version: u32,
    /// How many events have this name and version.
    pub events: u64,
}

impl StoredTypeCount {
    /// A count from its parts (for backend authors).
    pub fn new(event_type: impl Into<String>, schema_version: u32, events: u64) -> Self {
        Self {
            event_type: event_type.into(),
            schema_version,
            events,
        }
    }
}

/// A consumer's checkpoint ([`Inspect::checkpoints`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointSummary {
    /// The consumer's name: a projection's, a read model's or a reactor's `NAME`.
    pub consumer: String,
    /// The last position it finished with; `None` for a read model that registered itself but
    /// has not finished a batch yet.
    pub position: Option<GlobalPosition>,
}

impl CheckpointSummary {
    /// A checkpoint from its parts (for backend authors).
    pub fn new(consumer: impl Into<String>, position: Option<GlobalPosition>) -> Self {
        Self {
            consumer: consumer.into(),
            position,
        }
    }
}

/// What an operator asks of a store and an application never does: the questions of the
/// `eventsrc` command line and the event browser. Every question is asked of the handle's
/// tenant and sees nothing of another.
///
/// One contract on every backend (memory, SQLite, PostgreSQL, and [`Store`](crate) whatever it
/// opened), proven by `eventsrc-testing`'s conformance cases `inspect_*`. These reads are for
/// people and scripts, not for the hot path: [`event_types`](Self::event_types) reads every
/// event of the tenant.
///
/// ```
/// use eventsrc::store::{Inspect, ListStreams};
/// use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StreamId};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = MemoryStore::new();
/// let cart = StreamId::new("cart", 42)?;
/// store.append(&cart, ExpectedVersion::NoStream, vec![NewEvent::raw("ItemAdded", 2, "{}")]).await?;
///
/// let streams = store.streams(ListStreams::new().category("cart")).await?;
/// assert_eq!(streams[0].stream, cart);
/// assert_eq!(streams[0].version.get(), 1);
/// let types = store.event_types().await?;
/// assert_eq!((types[0].event_type.as_str(), types[0].schema_version, types[0].events), ("ItemAdded", 2, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Inspect: Send + Sync {
    /// The streams that have events, in bytewise order of their names, filtered and paged as
    /// `list` says.
    fn streams(
        &self,
        list: ListStreams,
    ) -> impl Future<Output = Result<Vec<StreamSummary>, StoreError>> + Send;

    /// Every distinct (event type, schema version) stored, with its count, ordered by type and
    /// then version. Reads every event of the tenant.
    fn event_types(&self) -> impl Future<Output = Result<Vec<StoredTypeCount>, StoreError>> + Send;

    /// Every consumer's checkpoint, ordered by name.
    fn checkpoints(
        &self,
    ) -> impl Future<Output = Result<Vec<CheckpointSummary>, StoreError>> + Send;

    /// Every parked event of every reactor, ordered by reactor and then by position.
    fn all_parked(&self) -> impl Future<Output = Result<Vec<ParkedEvent>, StoreError>> + Send;
}
