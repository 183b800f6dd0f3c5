//! Events: the [`Event`] trait, the records a store keeps, and what goes wrong decoding them.

use std::borrow::Cow;
use std::sync::Arc;

use crate::{EventId, GlobalPosition, Metadata, StreamId, StreamVersion, Tenant, Timestamp};

/// A domain event (or a set of them, as an enum) that can be stored and read back.
///
/// The stored form is a name, a schema version and a JSON payload. The name is not the Rust path,
/// so renaming a type never breaks stored data. `decode` receives the version a payload was
/// written with and upcasts older versions to the current shape; a version newer than the code,
/// an unknown name or a payload that does not fit is a [`DecodeError`], never a panic.
///
/// `#[derive(Event)]` writes this impl; writing it by hand is always possible:
///
/// ```
/// use eventsrc::{DecodeError, EncodeError, Event};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct NameChanged { name: String }
///
/// impl Event for NameChanged {
///     fn event_type(&self) -> &'static str { "NameChanged" }
///     fn schema_version(&self) -> u32 { 1 }
///     fn encode(&self) -> Result<String, EncodeError> {
///         serde_json::to_string(self).map_err(|e| EncodeError::new(self.event_type(), e))
///     }
///     fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
///         DecodeError::check("NameChanged", 1, event_type, version)?;
///         serde_json::from_str(payload).map_err(|e| DecodeError::malformed(event_type, version, e))
///     }
/// }
///
/// let event = NameChanged { name: "Stefan Ivanov".into() };
/// let payload = event.encode()?;
/// assert_eq!(NameChanged::decode("NameChanged", 1, &payload)?, event);
/// assert!(matches!(
///     NameChanged::decode("NameChanged", 2, &payload),
///     Err(DecodeError::FutureVersion { .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Event: Sized + Send + Sync + 'static {
    /// The stored name of this event (for an enum, of this variant).
    fn event_type(&self) -> &'static str;

    /// The schema version this value is written with.
    fn schema_version(&self) -> u32;

    /// The JSON payload.
    fn encode(&self) -> Result<String, EncodeError>;

    /// Reads a stored payload written as `event_type` at `schema_version`, upcasting older
    /// versions to the current type.
    fn decode(event_type: &str, schema_version: u32, payload: &str) -> Result<Self, DecodeError>;

    /// The stored names this type reads: its names and aliases (an enum's, all its variants').
    /// Subscriptions use it to read only those from the store. `None`, the default for
    /// hand-written impls, means "cannot say": consumers then read every event.
    fn stored_types() -> Option<Vec<&'static str>> {
        None
    }
}

/// One event type with a fixed stored name: what `#[derive(Event)]` implements for a struct.
///
/// Lets code name an event type's stored name and version without a value, e.g. to filter a
/// subscription or to list an aggregate's events.
pub trait EventType: Event {
    /// The stored name.
    const NAME: &'static str;
    /// The current schema version.
    const VERSION: u32;
    /// Older names still decoded as this event.
    const ALIASES: &'static [&'static str] = &[];
}

/// One schema version of an event's payload that reads itself from older stored versions.
///
/// `#[derive(Event)]` implements it for every event struct, including the old shapes kept under
/// their own names (`#[event(superseded_by = ...)]`), which is how a typed upcast chain
/// v1 → v2 → v3 is walked: each version reads the one before it and converts with `From`.
pub trait Versioned: Sized {
    /// The schema version this type is.
    const VERSION: u32;
    /// The oldest stored version it can be upcast from.
    const OLDEST: u32;

    /// Reads a payload stored at `version` (at most `VERSION`) as this type.
    fn from_version(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError>;
}

/// An event could not be turned into JSON (a map with non-string keys, a failing `Serialize`).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode event `{event_type}`: {source}")]
pub struct EncodeError {
    /// The event's stored name.
    pub event_type: &'static str,
    /// What serde_json reported.
    #[source]
    pub source: serde_json::Error,
}

impl EncodeError {
    /// Wraps a serde_json error for the event named `event_type`.
    pub fn new(event_type: &'static str, source: serde_json::Error) -> Self {
        Self { event_type, source }
    }
}

/// A stored payload could not be read as the current event type.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No event type of this set has that name (nor that alias).
    #[error("unknown event type `{event_type}` (schema version {version})")]
    UnknownType {
        /// The stored name.
        event_type: String,
        /// The stored version.
        version: u32,
    },
    /// The payload was written by newer code than this.
    #[error(
        "event `{event_type}` has schema version {version}, newer than this code's version {current}"
    )]
    FutureVersion {
        /// The stored name.
        event_type: String,
        /// The stored version.
        version: u32,
        /// The newest version this code knows.
        current: u32,
    },
    /// The payload is not valid JSON or does not fit the type of its version.
    #[error("event `{event_type}` schema version {version} does not fit its type: {source}")]
    Malformed {
        /// The stored name.
        event_type: String,
        /// The stored version.
        version: u32,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// An upcaster refused a payload.
    #[error("event `{event_type}` cannot be upcast from schema version {version}: {reason}")]
    Upcast {
        /// The stored name.
        event_type: String,
        /// The version the upcast started from.
        version: u32,
        /// Why the upcaster refused.
        reason: String,
    },
}

impl DecodeError {
    /// Checks a stored name and version against a single event type named `name` at version
    /// `current`, for hand-written [`Event::decode`] impls without upcasting.
    pub fn check(name: &str, current: u32, event_type: &str, version: u32) -> Result<(), Self> {
        if event_type != name {
            Err(Self::unknown(event_type, version))
        } else if version > current {
            Err(Self::future(event_type, version, current))
        } else {
            Ok(())
        }
    }

    /// An unknown event type.
    pub fn unknown(event_type: &str, version: u32) -> Self {
        Self::UnknownType {
            event_type: event_type.to_owned(),
            version,
        }
    }

    /// A payload written by newer code than this (`current` is the newest version known here).
    pub fn future(event_type: &str, version: u32, current: u32) -> Self {
        Self::FutureVersion {
            event_type: event_type.to_owned(),
            version,
            current,
        }
    }

    /// A payload that does not fit.
    pub fn malformed(event_type: &str, version: u32, source: serde_json::Error) -> Self {
        Self::Malformed {
            event_type: event_type.to_owned(),
            version,
            source,
        }
    }
}

/// An event ready to append: everything but what the store assigns (versions, position, time).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id; appending the same id twice with the same content is a no-op.
    pub event_id: EventId,
    /// The stored name.
    pub event_type: Cow<'static, str>,
    /// The version the payload is written with.
    pub schema_version: u32,
    /// The JSON payload.
    pub payload: String,
    /// Correlation, causation, actor and free key/values.
    pub metadata: Metadata,
}

impl NewEvent {
    /// Encodes `event` with a fresh id.
    pub fn from_event<E: Event>(event: &E, metadata: Metadata) -> Result<Self, EncodeError> {
        Ok(Self {
            event_id: EventId::new(),
            event_type: Cow::Borrowed(event.event_type()),
            schema_version: event.schema_version(),
            payload: event.encode()?,
            metadata,
        })
    }

    /// An event from raw parts with a fresh id (for tools and tests that have no Rust type).
    pub fn raw(
        event_type: impl Into<Cow<'static, str>>,
        schema_version: u32,
        payload: impl Into<String>,
    ) -> Self {
        Self {
            event_id: EventId::new(),
            event_type: event_type.into(),
            schema_version,
            payload: payload.into(),
            metadata: Metadata::default(),
        }
    }

    /// Replaces the id (for idempotent retries with a known id).
    #[must_use]
    pub fn with_id(mut self, event_id: EventId) -> Self {
        self.event_id = event_id;
        self
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as stored: every column a backend keeps for it, from its id to the time it was
/// recorded. Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Unique id.
    pub event_id: EventId,
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its 1-based place in the stream.
    pub stream_version: StreamVersion,
    /// Its place in the store's global log.
    pub global_position: GlobalPosition,
    /// The tenant that wrote it.
    pub tenant: Tenant,
    /// The stored name.
    pub event_type: Arc<str>,
    /// The version the payload was written with.
    pub schema_version: u32,
    /// The JSON payload.
    pub payload: Arc<str>,
    /// Correlation, causation, actor and free key/values.
    pub metadata: Metadata,
    /// When the store recorded it (UTC).
    pub recorded_at: Timestamp,
}

impl RecordedEvent {
    /// Decodes the payload into `E`, upcasting as needed; the error names this record.
    pub fn decode<E: Event>(&self) -> Result<E, RecordDecodeError> {
        E::decode(&self.event_type, self.schema_version, &self.payload)
            .map_err(|source| RecordDecodeError::new(self, source))
    }

    /// This record as a borrowed [`StoredEvent`].
    pub fn as_stored(&self) -> StoredEvent<'_> {
        StoredEvent {
            stream: &self.stream,
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
        }
    }

    /// Whether `new` carries the same content as this record (same id, name, version, payload
    /// and metadata): the test for an idempotent re-append.
    pub fn same_content(&self, new: &NewEvent) -> bool {
        self.event_id == new.event_id
            && *self.event_type == *new.event_type
            && self.schema_version == new.schema_version
            && *self.payload == *new.payload
            && self.metadata == new.metadata
    }
}

/// A stored event borrowed from a store's own buffer (rows, pages, memory), holding only what
/// folding an aggregate needs: what
/// [`EventStore::visit_stream`](crate::EventStore::visit_stream) hands out, so that a load
/// decodes each payload where it lies and reads no column it does not use. (A decode error is
/// rare; the repository then reads that one record again to name its id and position.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEvent<'a> {
    /// The stream it belongs to.
    pub stream: &'a StreamId,
    /// Its 1-based place in the stream.
    pub stream_version: StreamVersion,
    /// The stored name.
    pub event_type: &'a str,
    /// The version the payload was written with.
    pub schema_version: u32,
    /// The JSON payload.
    pub payload: &'a str,
}

impl StoredEvent<'_> {
    /// Decodes the payload into `E`, upcasting as needed.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        E::decode(self.event_type, self.schema_version, self.payload)
    }
}

/// A stored event that could not be decoded, with everything needed to find it.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decode event {event_id} at `{stream}` stream version {stream_version} (position {global_position}): {source}"
)]
pub struct RecordDecodeError {
    /// The event's id.
    pub event_id: EventId,
    /// Its stream.
    pub stream: StreamId,
    /// Its version in the stream.
    pub stream_version: StreamVersion,
    /// Its place in the global log.
    pub global_position: GlobalPosition,
    /// What went wrong; names the event type and schema version.
    #[source]
    pub source: DecodeError,
}

impl RecordDecodeError {
    /// Attaches `record`'s identity to a decode error.
    pub fn new(record: &RecordedEvent, source: DecodeError) -> Self {
        Self {
            event_id: record.event_id,
            stream: record.stream.clone(),
            stream_version: record.stream_version,
            global_position: record.global_position,
            source,
        }
    }
}
