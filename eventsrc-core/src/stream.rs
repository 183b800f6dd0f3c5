//! Where an event lives: its stream, its place in the stream and in the global log, its tenant.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The name of one stream of events: an aggregate type and an aggregate id, written
/// `category-id` (for example `lead-1410`).
///
/// The category is everything before the first `-`; the id is everything after it and may hold
/// further `-` or `/` for hierarchical ids (`lead-1410/notes`). Streams are cheap to clone.
///
/// ```
/// use eventsrc::StreamId;
///
/// let stream = StreamId::new("lead", "1410")?;
/// assert_eq!(stream.as_str(), "lead-1410");
/// assert_eq!(stream.category(), "lead");
/// assert_eq!(stream.id(), "1410");
///
/// let nested: StreamId = "school-7/class-3".parse()?;
/// assert_eq!(nested.category(), "school");
/// assert_eq!(nested.id(), "7/class-3");
/// # Ok::<(), eventsrc::InvalidStreamId>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(Arc<str>);

/// A stream name that does not have the form `category-id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream id `{value}`: {reason}")]
pub struct InvalidStreamId {
    /// The rejected text.
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl StreamId {
    /// The longest stream name accepted, in bytes.
    pub const MAX_LEN: usize = 512;

    /// Builds `category-id`. The category must be non-empty and free of `-`; the id non-empty.
    ///
    /// A `-` in the category is an error: the stream would read back with a shorter category
    /// (the text before its first `-`) and a longer id than were given.
    pub fn new(category: &str, id: impl fmt::Display) -> Result<Self, InvalidStreamId> {
        let value = format!("{category}-{id}");
        if category.contains('-') {
            return Err(InvalidStreamId {
                value,
                reason: "the category holds a `-`, which would end it early: a category is \
                         the text before the first `-`",
            });
        }
        Self::parse(value)
    }

    fn parse(value: String) -> Result<Self, InvalidStreamId> {
        let reason = match value.find('-') {
            _ if value.len() > Self::MAX_LEN => Some("longer than 512 bytes"),
            _ if value.chars().any(char::is_control) => Some("contains a control character"),
            None => Some("write it as `category-id`, e.g. `lead-1410`"),
            Some(0) => Some("the category before `-` is empty"),
            Some(split) if split + 1 == value.len() => Some("the id after `-` is empty"),
            Some(_) => None,
        };
        match reason {
            Some(reason) => Err(InvalidStreamId { value, reason }),
            None => Ok(Self(value.into())),
        }
    }

    /// The whole name, `category-id`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The aggregate type: the part before the first `-`.
    pub fn category(&self) -> &str {
        self.0
            .split_once('-')
            .map_or(&self.0, |(category, _)| category)
    }

    /// The aggregate id: the part after the first `-`.
    pub fn id(&self) -> &str {
        self.0.split_once('-').map_or("", |(_, id)| id)
    }
}

impl FromStr for StreamId {
    type Err = InvalidStreamId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.to_owned())
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", &*self.0)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(value).map_err(serde::de::Error::custom)
    }
}

/// The 1-based position of an event inside its stream; a stream's version is the version of its
/// last event, and `StreamVersion::NONE` (0) means the stream has no events.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct StreamVersion(pub u64);

impl StreamVersion {
    /// The version of a stream that has no events.
    pub const NONE: Self = Self(0);
    /// The version of a stream's first event.
    pub const FIRST: Self = Self(1);
    /// The version of a tombstoned stream's marker ([`Deletion::Tombstone`]): the largest a
    /// stored version can be (`i64::MAX`, so that SQL backends store it), so that no append
    /// can follow it.
    ///
    /// [`Deletion::Tombstone`]: crate::store::Deletion::Tombstone
    pub const TOMBSTONE: Self = Self(i64::MAX as u64);

    /// The version `n` events later (saturating).
    #[must_use]
    pub const fn advance(self, n: u64) -> Self {
        Self(self.0.saturating_add(n))
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for StreamVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A point in the store's global log. Readers of the log see events in increasing
/// `GlobalPosition` order and never skip one, even one that commits after a reader has passed
/// later positions (the invariant "the global log is gap-free for readers" in ARCHITECTURE.md).
///
/// A position has two parts, compared in order: the `commit` the event was written in and its
/// `sequence` number, unique across the store. Single-writer stores (memory, SQLite) use the
/// sequence of a batch's first event as its commit; PostgreSQL uses the writing transaction's id,
/// which is what lets a reader stop below transactions still in flight instead of skipping them.
/// Positions are the client's consistency token: `Display` and `FromStr` agree
/// (`"17:42"`), so a position can travel in an HTTP header and come back.
///
/// ```
/// use eventsrc::GlobalPosition;
///
/// let token = GlobalPosition::new(17, 42);
/// let parsed: GlobalPosition = token.to_string().parse().unwrap();
/// assert_eq!(parsed, token);
/// assert!(GlobalPosition::START < token);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct GlobalPosition {
    /// The commit (batch or transaction) the event was written in.
    pub commit: u64,
    /// The event's store-wide sequence number.
    pub sequence: u64,
}

impl GlobalPosition {
    /// Before the first event: reading the log after `START` reads it all.
    pub const START: Self = Self::new(0, 0);

    /// A position from its two parts.
    pub const fn new(commit: u64, sequence: u64) -> Self {
        Self { commit, sequence }
    }
}

impl fmt::Display for GlobalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.commit, self.sequence)
    }
}

/// Text that is not a `commit:sequence` position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid global position `{0}`: write it as `commit:sequence`, e.g. `17:42`")]
pub struct InvalidPosition(pub String);

impl FromStr for GlobalPosition {
    type Err = InvalidPosition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPosition(s.to_owned());
        let (commit, sequence) = s.split_once(':').ok_or_else(invalid)?;
        Ok(Self::new(
            commit.parse().map_err(|_| invalid())?,
            sequence.parse().map_err(|_| invalid())?,
        ))
    }
}

/// A unique event id; new ids are UUID v7, so they sort roughly by creation time.
///
/// Appending an event whose id is already stored is idempotent when the content is the same,
/// and an error when it differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A fresh UUID v7: the current Unix time in milliseconds, then 74 random bits.
    ///
    /// The random bits come from a per-thread SplitMix64 generator seeded once from the
    /// operating system's randomness (through std's `RandomState`), instead of a system call per
    /// id: appends make an id per event, and the call cost 4x the rest of an in-memory append.
    /// Ids need uniqueness, not secrecy, and independent 64-bit seeds per thread give that.
    pub fn new() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (high, low) = IDS.with(|state| {
            let (a, next) = splitmix64(state.get());
            let (b, next) = splitmix64(next);
            state.set(next);
            (a, b)
        });
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&high.to_le_bytes());
        random[8..].copy_from_slice(&low.to_le_bytes()[..2]);
        Self(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }
}

/// Hashes event ids by folding their bytes with a multiply: v7 ids end in 74 random bits, so
/// SipHash's protection against chosen keys buys nothing here and cost a fifth of an append.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517C_C1B7_2722_0A95);
        }
    }
}

thread_local! {
    static IDS: std::cell::Cell<u64> = std::cell::Cell::new({
        use std::hash::{BuildHasher, Hasher};
        // RandomState's keys are drawn from the OS once per thread; hashing nothing reveals a
        // function of them, which is all a seed needs.
        std::collections::hash_map::RandomState::new().build_hasher().finish()
    });
}

/// One step of SplitMix64: the output and the next state.
fn splitmix64(state: u64) -> (u64, u64) {
    let next = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = next;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31), next)
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Uuid> for EventId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

/// An isolation scope. Every store handle belongs to one tenant and never sees another tenant's
/// streams, events, snapshots or checkpoints.
///
/// ```
/// use eventsrc::Tenant;
/// assert_eq!(Tenant::default().as_str(), "default");
/// assert_eq!(Tenant::new("acme").as_str(), "acme");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// The name of the tenant a store handle uses unless told otherwise.
    pub const DEFAULT: &'static str = "default";

    /// A tenant by name.
    pub fn new(name: impl AsRef<str>) -> Self {
        Self(name.as_ref().into())
    }

    /// The tenant's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Self::new(Self::DEFAULT)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({:?})", &*self.0)
    }
}

impl From<&str> for Tenant {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

/// What an append expects of the stream's current version: the optimistic concurrency check.
///
/// ```
/// use eventsrc::{ExpectedVersion, StreamVersion};
///
/// assert!(ExpectedVersion::NoStream.accepts(StreamVersion::NONE));
/// assert!(!ExpectedVersion::StreamExists.accepts(StreamVersion::NONE));
/// assert!(ExpectedVersion::Exact(StreamVersion(3)).accepts(StreamVersion(3)));
/// assert!(!ExpectedVersion::Exact(StreamVersion(3)).accepts(StreamVersion(4)));
/// assert!(ExpectedVersion::Any.accepts(StreamVersion(9)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version (`Exact(StreamVersion::NONE)` is
    /// the same as `NoStream`).
    Exact(StreamVersion),
}

impl ExpectedVersion {
    /// The expectation "the stream is where I last saw it": `NoStream` for version 0, else
    /// `Exact(version)`.
    pub const fn at(version: StreamVersion) -> Self {
        if version.0 == 0 {
            Self::NoStream
        } else {
            Self::Exact(version)
        }
    }

    /// Whether a stream at `current` satisfies this expectation.
    pub const fn accepts(self, current: StreamVersion) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => current.0 == 0,
            Self::StreamExists => current.0 > 0,
            Self::Exact(version) => current.0 == version.0,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(version) => write!(f, "version {version}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap; the lint guards data from stores and users
mod tests {
    use super::*;

    #[test]
    fn stream_ids_split_at_the_first_dash() {
        let stream = StreamId::new("lead", "a-b/c").unwrap();
        assert_eq!(stream.category(), "lead");
        assert_eq!(stream.id(), "a-b/c");
    }

    #[test]
    fn a_category_holding_a_dash_is_refused_by_new() {
        // Accepted, `lead-x` + `1` would read back as category `lead` and id `x-1`; and with an
        // empty id, `lead-x` + `` would slip past the empty-id check as id `x`.
        for (category, id) in [("lead-x", "1"), ("lead-x", ""), ("-", "1")] {
            let err = StreamId::new(category, id).unwrap_err();
            assert_eq!(err.value, format!("{category}-{id}"));
            assert!(err.reason.contains("category holds a `-`"), "{err}");
        }
        // A `-` in the id is the hierarchical form, and fine.
        let stream = StreamId::new("lead", "x-1").unwrap();
        assert_eq!((stream.category(), stream.id()), ("lead", "x-1"));
    }

    #[test]
    fn malformed_stream_ids_are_rejected_with_a_reason() {
        for bad in ["lead", "-1", "lead-", "", "le\nad-1"] {
            let err = bad.parse::<StreamId>().unwrap_err();
            assert_eq!(err.value, bad);
        }
        assert!(StreamId::new("a", "x".repeat(600)).is_err());
    }

    #[test]
    fn stream_ids_reject_bad_json() {
        assert!(serde_json::from_str::<StreamId>("\"nodash\"").is_err());
        let ok: StreamId = serde_json::from_str("\"cart-9\"").unwrap();
        assert_eq!(ok.as_str(), "cart-9");
    }

    #[test]
    fn positions_order_by_commit_then_sequence() {
        assert!(GlobalPosition::new(1, 9) < GlobalPosition::new(2, 3));
        assert!(GlobalPosition::new(2, 3) < GlobalPosition::new(2, 4));
        assert!("12".parse::<GlobalPosition>().is_err());
        assert!("a:1".parse::<GlobalPosition>().is_err());
    }

    #[test]
    fn event_ids_are_v7_distinct_and_carry_the_time() {
        let ids: std::collections::HashSet<EventId> = (0..10_000).map(|_| EventId::new()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = EventId::new();
        assert_eq!(id.0.get_version_num(), 7);
        let (seconds, _) = id.0.get_timestamp().expect("v7 carries a time").to_unix();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(seconds) < 5, "{seconds} vs {now}");
        let other_thread = std::thread::spawn(EventId::new).join().unwrap();
        assert_ne!(other_thread, id);
    }

    #[test]
    fn expected_version_at_zero_is_no_stream() {
        assert_eq!(
            ExpectedVersion::at(StreamVersion::NONE),
            ExpectedVersion::NoStream
        );
        assert_eq!(
            ExpectedVersion::at(StreamVersion(2)),
            ExpectedVersion::Exact(StreamVersion(2))
        );
    }
}
