//! A small hand-written test domain (no macros), and a store wrapper that loses races on purpose.
//!
//! - `Lead`: a sales lead with four event types, commands that can produce several events, do
//!   nothing, be rejected with a typed error, or fail validation on several fields, and a
//!   declared conflict (a follow-up is incompatible with a status change made meanwhile).
//! - `Tally`: a counter whose state is snapshotted as JSON every 2 events.
//! - `ConflictingStore`: delegates to an inner store, but before each of its first N appends it
//!   really appends a foreign event to the stream, so the append conflicts and a retry must catch up.
//! - `GappedStore`: delegates to an inner store, but its stream reads leave out some versions.

// Each test binary uses a different part of this module.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use eventsrc::{
    Aggregate, Command, Decision, DecodeError, EncodeError, Event, EventId, EventStore,
    ExpectedVersion, GlobalPosition, Handle, NewEvent, RecordedEvent, StoreError, StreamId,
    StreamVersion, Tenant, ValidationError,
};

use eventsrc::store::{AppendResult, ReadAll, ReadStream, SnapshotFormat, StreamAppend};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Lead: events

/// Where a lead stands in the sales funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    #[default]
    New,
    Contacted,
    Converted,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Opened {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Renamed {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatusChanged {
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FollowupSet {
    pub on: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeadEvent {
    Opened(Opened),
    Renamed(Renamed),
    StatusChanged(StatusChanged),
    FollowupSet(FollowupSet),
}

pub(crate) const OPENED: &str = "lead.opened";
pub(crate) const RENAMED: &str = "lead.renamed";
pub(crate) const STATUS_CHANGED: &str = "lead.status_changed";
pub(crate) const FOLLOWUP_SET: &str = "lead.followup_set";

fn encode_json<T: Serialize>(event_type: &'static str, value: &T) -> Result<String, EncodeError> {
    serde_json::to_string(value).map_err(|e| EncodeError::new(event_type, e))
}

/// Checks the version of a single-version event type and reads its payload.
fn decode_json<T: DeserializeOwned>(
    name: &str,
    event_type: &str,
    version: u32,
    payload: &str,
) -> Result<T, DecodeError> {
    DecodeError::check(name, 1, event_type, version)?;
    serde_json::from_str(payload).map_err(|e| DecodeError::malformed(event_type, version, e))
}

impl Event for LeadEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Opened(_) => OPENED,
            Self::Renamed(_) => RENAMED,
            Self::StatusChanged(_) => STATUS_CHANGED,
            Self::FollowupSet(_) => FOLLOWUP_SET,
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn encode(&self) -> Result<String, EncodeError> {
        let name = self.event_type();
        match self {
            Self::Opened(e) => encode_json(name, e),
            Self::Renamed(e) => encode_json(name, e),
            Self::StatusChanged(e) => encode_json(name, e),
            Self::FollowupSet(e) => encode_json(name, e),
        }
    }

    fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
        let (t, v, p) = (event_type, version, payload);
        match event_type {
            OPENED => decode_json(OPENED, t, v, p).map(Self::Opened),
            RENAMED => decode_json(RENAMED, t, v, p).map(Self::Renamed),
            STATUS_CHANGED => decode_json(STATUS_CHANGED, t, v, p).map(Self::StatusChanged),
            FOLLOWUP_SET => decode_json(FOLLOWUP_SET, t, v, p).map(Self::FollowupSet),
            other => Err(DecodeError::unknown(other, version)),
        }
    }
}

impl LeadEvent {
    pub(crate) fn opened(name: &str) -> Self {
        Self::Opened(Opened { name: name.into() })
    }

    pub(crate) fn renamed(name: &str) -> Self {
        Self::Renamed(Renamed { name: name.into() })
    }

    pub(crate) fn status(status: Status) -> Self {
        Self::StatusChanged(StatusChanged { status })
    }

    pub(crate) fn followup(on: &str) -> Self {
        Self::FollowupSet(FollowupSet { on: on.into() })
    }

    /// This event as a raw `NewEvent` with a fresh id and empty metadata.
    pub(crate) fn to_new(&self) -> NewEvent {
        NewEvent::from_event(self, eventsrc::Metadata::new()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Lead: the aggregate

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Lead {
    pub opened: bool,
    pub name: String,
    pub status: Status,
    pub followup: Option<String>,
    pub renames: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LeadError {
    #[error("lead is already open")]
    AlreadyOpen,
    #[error("lead is not open")]
    NotOpen,
    #[error("lead is {0:?}; no follow-up can be set")]
    Finished(Status),
}

impl Aggregate for Lead {
    const TYPE: &'static str = "lead";
    type Id = u32;
    type Event = LeadEvent;
    type Error = LeadError;

    fn apply(&mut self, event: &LeadEvent) {
        match event {
            LeadEvent::Opened(e) => {
                self.opened = true;
                self.name = e.name.clone();
            }
            LeadEvent::Renamed(e) => {
                self.name = e.name.clone();
                self.renames += 1;
            }
            LeadEvent::StatusChanged(e) => self.status = e.status,
            LeadEvent::FollowupSet(e) => self.followup = Some(e.on.clone()),
        }
    }

    /// A follow-up decided against one status must not land after a status change it never saw.
    fn conflicts(ours: &LeadEvent, theirs: &LeadEvent) -> bool {
        matches!(
            (ours, theirs),
            (LeadEvent::FollowupSet(_), LeadEvent::StatusChanged(_))
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Lead: commands

/// Opens a lead; with `contact_on`, also sets the first follow-up (two events).
pub(crate) struct OpenLead {
    pub name: String,
    pub contact_on: Option<String>,
}

impl OpenLead {
    pub(crate) fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            contact_on: None,
        }
    }
}

impl Command for OpenLead {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut errors = ValidationError::new();
        if self.name.trim().is_empty() {
            errors.push("name", "must not be empty");
        }
        errors.into_result()
    }
}

impl Handle<OpenLead> for Lead {
    fn handle(&self, command: &OpenLead) -> Decision<Self> {
        if self.opened {
            return Err(LeadError::AlreadyOpen);
        }
        let mut events = vec![LeadEvent::opened(&command.name)];
        if let Some(on) = &command.contact_on {
            events.push(LeadEvent::followup(on));
        }
        Ok(events)
    }
}

/// Renames a lead; renaming to the current name is a no-op.
pub(crate) struct Rename {
    pub name: String,
}

impl Command for Rename {}

impl Handle<Rename> for Lead {
    fn handle(&self, command: &Rename) -> Decision<Self> {
        if !self.opened {
            return Err(LeadError::NotOpen);
        }
        if self.name == command.name {
            return Ok(vec![]);
        }
        Ok(vec![LeadEvent::renamed(&command.name)])
    }
}

/// Moves the lead to another status; the current status again is a no-op.
pub(crate) struct ChangeStatus(pub Status);

impl Command for ChangeStatus {}

impl Handle<ChangeStatus> for Lead {
    fn handle(&self, command: &ChangeStatus) -> Decision<Self> {
        if !self.opened {
            return Err(LeadError::NotOpen);
        }
        if self.status == command.0 {
            return Ok(vec![]);
        }
        Ok(vec![LeadEvent::status(command.0)])
    }
}

/// Sets the next follow-up: `on` must look like `YYYY-MM-DD`, `note` be at most 20 characters,
/// and `by` name someone.
pub(crate) struct SetFollowup {
    pub on: String,
    pub note: String,
    pub by: String,
}

impl SetFollowup {
    pub(crate) fn on(on: &str) -> Self {
        Self {
            on: on.into(),
            note: "call back".into(),
            by: "rep-7".into(),
        }
    }
}

impl Command for SetFollowup {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut errors = ValidationError::new();
        let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        let parts: Vec<&str> = self.on.split('-').collect();
        let is_date = matches!(parts.as_slice(), [y, m, d]
            if y.len() == 4 && m.len() == 2 && d.len() == 2 && digits(y) && digits(m) && digits(d));
        if !is_date {
            errors.push("on", "must be a date written YYYY-MM-DD");
        }
        if self.note.chars().count() > 20 {
            errors.push("note", "must be at most 20 characters");
        }
        if self.by.trim().is_empty() {
            errors.push("by", "must not be empty");
        }
        errors.into_result()
    }
}

impl Handle<SetFollowup> for Lead {
    fn handle(&self, command: &SetFollowup) -> Decision<Self> {
        if !self.opened {
            return Err(LeadError::NotOpen);
        }
        if matches!(self.status, Status::Converted | Status::Closed) {
            return Err(LeadError::Finished(self.status));
        }
        Ok(vec![LeadEvent::followup(&command.on)])
    }
}

// ---------------------------------------------------------------------------------------------
// Tally: a snapshotted counter

pub(crate) const ADDED: &str = "tally.added";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Added {
    pub amount: i64,
}

impl Event for Added {
    fn event_type(&self) -> &'static str {
        ADDED
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn encode(&self) -> Result<String, EncodeError> {
        encode_json(ADDED, self)
    }

    fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
        decode_json(ADDED, event_type, version, payload)
    }
}

/// The sum of every amount added, and how many events made it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub total: i64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nothing to add")]
pub(crate) struct NothingToAdd;

impl Aggregate for Tally {
    const TYPE: &'static str = "tally";
    const SNAPSHOT: Option<SnapshotFormat<Self>> = Some(SnapshotFormat::json(1).every(2));
    type Id = String;
    type Event = Added;
    type Error = NothingToAdd;

    fn apply(&mut self, event: &Added) {
        self.total += event.amount;
        self.count += 1;
    }
}

/// Adds each amount as its own event.
pub(crate) struct Add(pub Vec<i64>);

impl Command for Add {}

impl Handle<Add> for Tally {
    fn handle(&self, command: &Add) -> Decision<Self> {
        if command.0.is_empty() {
            return Err(NothingToAdd);
        }
        Ok(command.0.iter().map(|&amount| Added { amount }).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// ConflictingStore

/// Delegates everything to `inner`, except that each of its first `failures` appends is preceded
/// by a real append of `foreign` (with a fresh id, `ExpectedVersion::Any`) to the same stream, so
/// the inner store itself reports `WrongExpectedVersion` and a retry must catch up with `foreign`.
#[derive(Clone)]
pub(crate) struct ConflictingStore<S> {
    inner: S,
    foreign: NewEvent,
    failures: u32,
    attempts: Arc<AtomicU32>,
    injected: Arc<AtomicU32>,
}

impl<S: EventStore> ConflictingStore<S> {
    pub(crate) fn new(inner: S, failures: u32, foreign: NewEvent) -> Self {
        Self {
            inner,
            foreign,
            failures,
            attempts: Arc::default(),
            injected: Arc::default(),
        }
    }

    /// A store on which every append conflicts.
    pub(crate) fn always(inner: S, foreign: NewEvent) -> Self {
        Self::new(inner, u32::MAX, foreign)
    }

    /// How many appends were attempted through this wrapper.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::SeqCst)
    }

    /// How many foreign events were appended to cause a conflict.
    pub(crate) fn injected(&self) -> u32 {
        self.injected.load(Ordering::SeqCst)
    }

    pub(crate) fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: EventStore> EventStore for ConflictingStore<S> {
    fn tenant(&self) -> &Tenant {
        self.inner.tenant()
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if attempt <= self.failures {
            let foreign = self.foreign.clone().with_id(EventId::new());
            self.inner
                .append(stream, ExpectedVersion::Any, vec![foreign])
                .await?;
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.append(stream, expected, events).await
    }

    /// Like `append`: the foreign event goes to the first part's stream.
    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(first) = appends.first()
            && attempt <= self.failures
        {
            let foreign = self.foreign.clone().with_id(EventId::new());
            self.inner
                .append(&first.stream, ExpectedVersion::Any, vec![foreign])
                .await?;
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.append_streams(appends).await
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_events(ids).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, read).await
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(read).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        self.inner.head_position().await
    }
}

// ---------------------------------------------------------------------------------------------
// GappedStore

/// Delegates everything to `inner`, except that stream reads leave out the events at the
/// `lost` versions: a store that lost events, as loads must notice. (Visits go through
/// `read_stream`, the trait's default.)
#[derive(Clone)]
pub(crate) struct GappedStore<S> {
    inner: S,
    lost: Vec<StreamVersion>,
}

impl<S: EventStore> GappedStore<S> {
    pub(crate) fn new(inner: S, lost: impl IntoIterator<Item = u64>) -> Self {
        Self {
            inner,
            lost: lost.into_iter().map(StreamVersion).collect(),
        }
    }
}

impl<S: EventStore> EventStore for GappedStore<S> {
    fn tenant(&self) -> &Tenant {
        self.inner.tenant()
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.inner.append_streams(appends).await
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_events(ids).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_stream(stream, read).await?;
        events.retain(|e| !self.lost.contains(&e.stream_version));
        Ok(events)
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(read).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        self.inner.head_position().await
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

pub(crate) fn stream(name: &str) -> StreamId {
    name.parse().unwrap()
}

/// `n` raw events named `event_type` with payloads `{"n":1}`, `{"n":2}`, ...
pub(crate) fn raw_events(event_type: &'static str, n: usize) -> Vec<NewEvent> {
    (1..=n)
        .map(|i| NewEvent::raw(event_type, 1, format!(r#"{{"n":{i}}}"#)))
        .collect()
}

pub(crate) fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.stream_version.get()).collect()
}
