//! The conformance suite catches broken stores: each flaw below, planted in a wrapper around
//! the memory store, must make the cases named beside it fail.

#![cfg(feature = "conformance")]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use eventsrc::Tenants;
use eventsrc::store::{
    AppendResult, CheckpointSummary, Deleted, Deletion, Direction, EventFilter, Inspect, Lifecycle,
    ListStreams, ReadAll, ReadStream, Snapshot, StoredTypeCount, StreamAppend, StreamSummary,
    Truncated,
};

use eventsrc::backend::{
    AppendSignal, DocumentCommit, DocumentStore, DocumentWrite, Lease, Leases, LocalLeases,
    ParkedEvent, ParkedStore, Select, StoredEvent,
};

use eventsrc::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, MemoryStore, NewEvent,
    RecordedEvent, SnapshotStore, StoreError, StreamId, StreamVersion, Tenant, Timestamp,
};
use eventsrc_testing::conformance as suite;

/// One way to get a store wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    IgnoresExpectedVersion,
    ChecksThenActs,
    ReportsAWrongActualVersion,
    ChecksExpectedVersionBeforeRetries,
    ForgetsAlreadyStored,
    NotAtomic,
    AcceptsEmptyBatches,
    ReadsBackwardAsForward,
    IgnoresStreamLimits,
    StopsVisitsLate,
    VisitsIgnoringBounds,
    ReadsAllInclusively,
    IgnoresFilters,
    LimitsBeforeFiltering,
    HidesInFlightEvents,
    HeadStaysAtStart,
    SharesTenants,
    FoldsCase,
    NormalisesPayloads,
    DropsMetadataExtras,
    TruncatesPayloads,
    KeepsMilliseconds,
    SnapshotsLastWriteWins,
    SnapshotsKeepTheFirstOfAVersion,
    ForgetsCheckpointsAtStart,
    SignalNeverMoves,
    ParksInArrivalOrder,
    ParksForEveryTenant,
    LeasesEveryone,
    KeepsLeasesForever,
    DocumentsIgnoreTheCheckpoint,
    DocumentsShareTenants,
    PartsOneByOne,
    SkipsCheckParts,
    FindsNoEventsById,
    SortsListingsCaseInsensitively,
    ListsStreamsFromAfterInclusively,
    IgnoresTheStreamCategory,
    SortsSchemaVersionsAsText,
    ArchivesNothing,
    ReadsPastTruncation,
    AppendsToTombstones,
}

/// A lease the `KeepsLeasesForever` flaw never releases, and the sender its holder watches.
type Leaked = (Lease, tokio::sync::watch::Sender<bool>);

/// The memory store with one flaw.
#[derive(Clone)]
struct Flawed {
    inner: MemoryStore,
    flaw: Flaw,
    snapshots: Arc<Mutex<HashMap<(Tenant, StreamId), Snapshot>>>,
    still: Arc<tokio::sync::watch::Sender<u64>>,
    arrivals: Arc<Mutex<Vec<ParkedEvent>>>,
    leaked: Arc<Mutex<Vec<Leaked>>>,
}

impl Flawed {
    fn new(flaw: Flaw) -> Self {
        Self {
            inner: MemoryStore::new(),
            flaw,
            snapshots: Arc::default(),
            still: Arc::new(tokio::sync::watch::Sender::new(0)),
            arrivals: Arc::default(),
            leaked: Arc::default(),
        }
    }

    fn stream(&self, stream: &StreamId) -> StreamId {
        match self.flaw {
            Flaw::FoldsCase => stream.as_str().to_lowercase().parse().unwrap(),
            _ => stream.clone(),
        }
    }

    fn time(&self, time: Timestamp) -> Timestamp {
        match self.flaw {
            Flaw::KeepsMilliseconds => Timestamp::from_micros(time.as_micros() / 1000 * 1000),
            _ => time,
        }
    }

    fn deliver(&self, mut event: RecordedEvent) -> RecordedEvent {
        event.recorded_at = self.time(event.recorded_at);
        match self.flaw {
            Flaw::NormalisesPayloads => {
                let value: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
                event.payload = value.to_string().into();
            }
            Flaw::DropsMetadataExtras => event.metadata.extra.clear(),
            _ => {}
        }
        event
    }

    async fn append_flawed(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        mut events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let inner = &self.inner;
        let conflict = |actual| StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual,
        };
        match self.flaw {
            Flaw::IgnoresExpectedVersion => {
                inner.append(stream, ExpectedVersion::Any, events).await
            }
            Flaw::AppendsToTombstones => match inner.append(stream, expected, events).await {
                Err(StoreError::Tombstoned { .. }) => Err(conflict(StreamVersion::TOMBSTONE)),
                other => other,
            },
            Flaw::ChecksThenActs | Flaw::ChecksExpectedVersionBeforeRetries => {
                let current = inner.stream_version(stream).await?;
                if !expected.accepts(current) {
                    return Err(conflict(current));
                }
                tokio::task::yield_now().await;
                inner.append(stream, ExpectedVersion::Any, events).await
            }
            Flaw::ReportsAWrongActualVersion => {
                match inner.append(stream, expected, events).await {
                    Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                        Err(conflict(actual.advance(1)))
                    }
                    other => other,
                }
            }
            Flaw::ForgetsAlreadyStored => {
                let appended = inner.append(stream, expected, events).await?;
                Ok(AppendResult {
                    already_stored: false,
                    ..appended
                })
            }
            Flaw::NotAtomic if events.len() > 1 => {
                let last = events.split_off(events.len() - 1);
                let first = inner.append(stream, expected, events).await?;
                let rest = inner.append(stream, ExpectedVersion::Any, last).await?;
                Ok(AppendResult {
                    first_version: first.first_version,
                    ..rest
                })
            }
            Flaw::AcceptsEmptyBatches if events.is_empty() => {
                let current = inner.stream_version(stream).await?;
                Ok(AppendResult {
                    first_version: current.advance(1),
                    stream_version: current,
                    position: inner.head_position().await?,
                    recorded_at: Timestamp::now(),
                    already_stored: false,
                })
            }
            Flaw::TruncatesPayloads => {
                for event in &mut events {
                    let mut end = event.payload.len().min(64 * 1024);
                    while !event.payload.is_char_boundary(end) {
                        end -= 1;
                    }
                    event.payload.truncate(end);
                }
                inner.append(stream, expected, events).await
            }
            _ => inner.append(stream, expected, events).await,
        }
    }
}

impl Tenants for Flawed {
    fn with_tenant(&self, tenant: Tenant) -> Self {
        match self.flaw {
            Flaw::SharesTenants => self.clone(),
            _ => Self {
                inner: self.inner.with_tenant(tenant),
                ..self.clone()
            },
        }
    }
}

impl EventStore for Flawed {
    fn tenant(&self) -> &Tenant {
        self.inner.tenant()
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let stream = self.stream(stream);
        let mut appended = self.append_flawed(&stream, expected, events).await?;
        appended.recorded_at = self.time(appended.recorded_at);
        Ok(appended)
    }

    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        match self.flaw {
            Flaw::PartsOneByOne => {
                let mut results = Vec::new();
                for part in appends {
                    results.push(
                        self.append(&part.stream, part.expected, part.events)
                            .await?,
                    );
                }
                Ok(results)
            }
            Flaw::SkipsCheckParts => {
                let parts: Vec<StreamAppend> = appends
                    .into_iter()
                    .filter(|p| !p.events.is_empty())
                    .collect();
                self.inner.append_streams(parts).await
            }
            _ => self.inner.append_streams(appends).await,
        }
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        match self.flaw {
            Flaw::FindsNoEventsById => Ok(Vec::new()),
            _ => self.inner.read_events(ids).await,
        }
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        mut read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match self.flaw {
            Flaw::ReadsBackwardAsForward => read.direction = Direction::Forward,
            Flaw::IgnoresStreamLimits => read.limit = None,
            _ => {}
        }
        let events = self.inner.read_stream(&self.stream(stream), read).await?;
        Ok(events.into_iter().map(|e| self.deliver(e)).collect())
    }

    async fn visit_stream<F, E>(
        &self,
        stream: &StreamId,
        read: ReadStream,
        mut visit: F,
    ) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        let read = match self.flaw {
            Flaw::VisitsIgnoringBounds => ReadStream::forward(),
            _ => read,
        };
        let mut first_error = None;
        for event in &self.read_stream(stream, read).await? {
            match visit(event.as_stored()) {
                Err(error) if self.flaw == Flaw::StopsVisitsLate => {
                    first_error.get_or_insert(error);
                }
                Err(error) => return Err(error),
                Ok(()) => {}
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn read_all(&self, mut read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.flaw == Flaw::ReadsPastTruncation {
            read = read.allow_truncated();
        }
        let mut events = match self.flaw {
            Flaw::ReadsAllInclusively => {
                let everything = ReadAll::after(GlobalPosition::START).limit(usize::MAX);
                let everything = ReadAll {
                    filter: read.filter.clone(),
                    ..everything
                };
                let events = self.inner.read_all(everything).await?.into_iter();
                let at_or_after = events.filter(|e| e.global_position >= read.after);
                at_or_after.take(read.limit).collect()
            }
            Flaw::IgnoresFilters => {
                let unfiltered = ReadAll {
                    filter: EventFilter::default(),
                    ..read
                };
                self.inner.read_all(unfiltered).await?
            }
            Flaw::LimitsBeforeFiltering => {
                let filter = read.filter.clone();
                let unfiltered = ReadAll {
                    filter: EventFilter::default(),
                    ..read
                };
                let events = self.inner.read_all(unfiltered).await?.into_iter();
                let matching =
                    |e: &RecordedEvent| filter.matches(e.stream.category(), &e.event_type);
                events.filter(matching).collect()
            }
            _ => self.inner.read_all(read).await?,
        };
        let head = self.inner.head_position().await?;
        let reaches_head = events.last().is_some_and(|e| e.global_position == head);
        if self.flaw == Flaw::HidesInFlightEvents && reaches_head && events.len() >= 2 {
            events.remove(events.len() - 2);
        }
        Ok(events.into_iter().map(|e| self.deliver(e)).collect())
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        self.inner.stream_version(&self.stream(stream)).await
    }

    async fn archived_through(
        &self,
        stream: &StreamId,
    ) -> Result<Option<StreamVersion>, StoreError> {
        self.inner.archived_through(stream).await
    }

    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        match self.flaw {
            Flaw::HeadStaysAtStart => Ok(GlobalPosition::START),
            _ => self.inner.head_position().await,
        }
    }

    async fn append_signal(&self) -> Result<Option<AppendSignal>, StoreError> {
        match self.flaw {
            Flaw::SignalNeverMoves => Ok(Some(self.still.subscribe())),
            _ => self.inner.append_signal().await,
        }
    }
}

impl ParkedStore for Flawed {
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError> {
        match self.flaw {
            Flaw::ParksInArrivalOrder => {
                let mut list = self.arrivals.lock().unwrap();
                list.retain(|p| {
                    p.event.event_id != parked.event.event_id || p.reactor != parked.reactor
                });
                list.push(parked);
                Ok(())
            }
            Flaw::ParksForEveryTenant => {
                self.inner.with_tenant(Tenant::default()).park(parked).await
            }
            _ => self.inner.park(parked).await,
        }
    }

    async fn parked(&self, reactor: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        match self.flaw {
            Flaw::ParksInArrivalOrder => {
                let list = self.arrivals.lock().unwrap();
                Ok(list
                    .iter()
                    .filter(|p| p.reactor == reactor)
                    .cloned()
                    .collect())
            }
            Flaw::ParksForEveryTenant => {
                self.inner
                    .with_tenant(Tenant::default())
                    .parked(reactor)
                    .await
            }
            _ => self.inner.parked(reactor).await,
        }
    }

    async fn unpark(&self, reactor: &str, event_id: eventsrc::EventId) -> Result<bool, StoreError> {
        match self.flaw {
            Flaw::ParksInArrivalOrder => {
                let mut list = self.arrivals.lock().unwrap();
                let before = list.len();
                list.retain(|p| p.event.event_id != event_id || p.reactor != reactor);
                Ok(list.len() < before)
            }
            Flaw::ParksForEveryTenant => {
                self.inner
                    .with_tenant(Tenant::default())
                    .unpark(reactor, event_id)
                    .await
            }
            _ => self.inner.unpark(reactor, event_id).await,
        }
    }
}

impl Leases for Flawed {
    async fn try_acquire(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        match self.flaw {
            Flaw::LeasesEveryone => Ok(LocalLeases::default().try_acquire_now(name)),
            Flaw::KeepsLeasesForever => {
                let lease = self.inner.try_acquire(name).await?;
                // Leaked: dropping the returned lease releases nothing.
                Ok(lease.map(|lease| {
                    let (held, receiver) = tokio::sync::watch::channel(true);
                    self.leaked.lock().unwrap().push((lease, held));
                    Lease::new(receiver, ())
                }))
            }
            _ => self.inner.try_acquire(name).await,
        }
    }
}

impl SnapshotStore for Flawed {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        match self.flaw {
            Flaw::SnapshotsLastWriteWins | Flaw::SnapshotsKeepTheFirstOfAVersion => {
                let key = (self.tenant().clone(), stream.clone());
                Ok(self.snapshots.lock().unwrap().get(&key).cloned())
            }
            _ => self.inner.load_snapshot(stream).await,
        }
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let replaces = |kept: &Snapshot| match self.flaw {
            Flaw::SnapshotsLastWriteWins => true,
            Flaw::SnapshotsKeepTheFirstOfAVersion => kept.version < snapshot.version,
            _ => unreachable!("only the snapshot flaws keep their own snapshots"),
        };
        match self.flaw {
            Flaw::SnapshotsLastWriteWins | Flaw::SnapshotsKeepTheFirstOfAVersion => {
                let key = (self.tenant().clone(), snapshot.stream.clone());
                let mut snapshots = self.snapshots.lock().unwrap();
                if snapshots.get(&key).is_none_or(replaces) {
                    snapshots.insert(key, snapshot);
                }
                Ok(())
            }
            _ => self.inner.save_snapshot(snapshot).await,
        }
    }
}

impl CheckpointStore for Flawed {
    async fn load_checkpoint(
        &self,
        subscriber: &str,
    ) -> Result<Option<GlobalPosition>, StoreError> {
        let loaded = self.inner.load_checkpoint(subscriber).await?;
        match self.flaw {
            Flaw::ForgetsCheckpointsAtStart => Ok(loaded.filter(|p| *p != GlobalPosition::START)),
            _ => Ok(loaded),
        }
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        position: GlobalPosition,
    ) -> Result<(), StoreError> {
        self.inner.save_checkpoint(subscriber, position).await
    }
}

impl Flawed {
    /// The store documents go to: the default tenant's, for the flaw that shares them.
    fn documents(&self) -> MemoryStore {
        match self.flaw {
            Flaw::DocumentsShareTenants => self.inner.with_tenant(Tenant::default()),
            _ => self.inner.clone(),
        }
    }
}

impl DocumentStore for Flawed {
    async fn load_documents(
        &self,
        view: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.documents().load_documents(view, ids).await
    }

    async fn query_documents(
        &self,
        view: &str,
        select: Select<'_>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.documents().query_documents(view, select).await
    }

    async fn commit_documents(
        &self,
        view: &str,
        from: Option<GlobalPosition>,
        through: GlobalPosition,
        writes: Vec<DocumentWrite>,
    ) -> Result<DocumentCommit, StoreError> {
        let store = self.documents();
        let from = match self.flaw {
            // Commits from wherever the checkpoint is: a stale runner writes.
            Flaw::DocumentsIgnoreTheCheckpoint => store.load_checkpoint(view).await?,
            _ => from,
        };
        store.commit_documents(view, from, through, writes).await
    }
}

/// A name as a case-insensitive collation orders it.
fn folded(name: &str) -> String {
    name.to_lowercase()
}

impl Lifecycle for Flawed {
    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
    ) -> Result<Deleted, StoreError> {
        self.inner.delete_stream(stream, expected, deletion).await
    }

    async fn truncate_before(
        &self,
        stream: &StreamId,
        version: StreamVersion,
    ) -> Result<Truncated, StoreError> {
        self.inner.truncate_before(stream, version).await
    }

    async fn read_archive(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        match self.flaw {
            Flaw::ArchivesNothing => Ok(Vec::new()),
            _ => self.inner.read_archive(stream).await,
        }
    }

    async fn truncated_through(&self) -> Result<GlobalPosition, StoreError> {
        self.inner.truncated_through().await
    }
}

impl Inspect for Flawed {
    async fn streams(&self, mut list: ListStreams) -> Result<Vec<StreamSummary>, StoreError> {
        let mut every = ListStreams::new().limit(usize::MAX);
        every.category = list.category.clone();
        let after = list.after.clone();
        match self.flaw {
            Flaw::SortsListingsCaseInsensitively => {
                let mut streams = self.inner.streams(every).await?;
                streams.sort_by_key(|s| folded(s.stream.as_str()));
                let after = after.as_deref().map(folded);
                streams.retain(|s| {
                    after
                        .as_ref()
                        .is_none_or(|a| folded(s.stream.as_str()) > *a)
                });
                streams.truncate(list.limit);
                Ok(streams)
            }
            Flaw::ListsStreamsFromAfterInclusively => {
                let mut streams = self.inner.streams(every).await?;
                streams.retain(|s| after.as_deref().is_none_or(|a| s.stream.as_str() >= a));
                streams.truncate(list.limit);
                Ok(streams)
            }
            Flaw::IgnoresTheStreamCategory => {
                list.category = None;
                self.inner.streams(list).await
            }
            _ => self.inner.streams(list).await,
        }
    }

    async fn event_types(&self) -> Result<Vec<StoredTypeCount>, StoreError> {
        let mut types = self.inner.event_types().await?;
        match self.flaw {
            Flaw::SortsListingsCaseInsensitively => {
                types.sort_by_key(|t| (folded(&t.event_type), t.schema_version));
            }
            Flaw::SortsSchemaVersionsAsText => {
                types.sort_by_key(|t| (t.event_type.clone(), t.schema_version.to_string()));
            }
            _ => {}
        }
        Ok(types)
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointSummary>, StoreError> {
        let mut checkpoints = self.inner.checkpoints().await?;
        if self.flaw == Flaw::SortsListingsCaseInsensitively {
            checkpoints.sort_by_key(|c| folded(&c.consumer));
        }
        Ok(checkpoints)
    }

    async fn all_parked(&self) -> Result<Vec<ParkedEvent>, StoreError> {
        match self.flaw {
            Flaw::ParksInArrivalOrder => {
                let mut list = self.arrivals.lock().unwrap().clone();
                list.sort_by(|a, b| a.reactor.cmp(&b.reactor));
                Ok(list)
            }
            Flaw::ParksForEveryTenant => {
                self.inner.with_tenant(Tenant::default()).all_parked().await
            }
            Flaw::SortsListingsCaseInsensitively => {
                let mut list = self.inner.all_parked().await?;
                list.sort_by_key(|p| folded(&p.reactor));
                Ok(list)
            }
            _ => self.inner.all_parked().await,
        }
    }
}

/// Whether running `case` panics.
async fn fails(case: impl Future<Output = ()> + Send + 'static) -> bool {
    tokio::spawn(case)
        .await
        .is_err_and(|error| error.is_panic())
}

/// For each case named, runs it against a store with `flaw` and lists the cases that passed.
macro_rules! escapes {
    ($flaw:expr => $($case:ident),+ $(,)?) => {{
        let mut escaped = Vec::new();
        $(
            if !fails(suite::$case(Flawed::new($flaw))).await {
                escaped.push(format!("{:?} is not caught by `{}`", $flaw, stringify!($case)));
            }
        )+
        escaped
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_planted_flaw_fails_the_cases_meant_to_catch_it() {
    // The flawed stores panic on purpose, in spawned tasks whose output is not captured.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let escaped = [
        escapes!(Flaw::IgnoresExpectedVersion =>
            expected_no_stream_succeeds_once_then_conflicts,
            expected_stream_exists_conflicts_then_succeeds,
            expected_exact_succeeds_only_at_the_current_version,
            expected_exact_none_behaves_as_no_stream,
            a_conflicting_append_writes_nothing,
            the_same_stream_name_in_two_tenants_is_two_streams,
            concurrent_appends_to_one_stream_have_one_winner_per_version),
        escapes!(Flaw::ChecksThenActs =>
            concurrent_appends_to_one_stream_have_one_winner_per_version),
        escapes!(Flaw::ReportsAWrongActualVersion =>
            expected_no_stream_succeeds_once_then_conflicts,
            expected_exact_succeeds_only_at_the_current_version,
            concurrent_appends_to_one_stream_have_one_winner_per_version),
        escapes!(Flaw::ChecksExpectedVersionBeforeRetries =>
            re_appending_a_stored_batch_is_idempotent,
            re_appending_an_earlier_batch_returns_its_original_place),
        escapes!(Flaw::ForgetsAlreadyStored =>
            re_appending_a_stored_batch_is_idempotent,
            re_appending_an_earlier_batch_returns_its_original_place,
            payloads_round_trip_byte_for_byte),
        escapes!(Flaw::NotAtomic =>
            a_batch_failing_at_its_last_event_writes_nothing,
            a_batch_mixing_stored_and_new_ids_is_a_duplicate,
            a_batch_shares_one_commit_and_one_timestamp,
            an_id_twice_in_one_batch_is_invalid),
        escapes!(Flaw::AcceptsEmptyBatches => an_empty_batch_is_invalid),
        escapes!(Flaw::ReadsBackwardAsForward =>
            reads_a_stream_backward_from_a_version_with_a_limit,
            a_ten_thousand_event_stream_reads_in_pages),
        escapes!(Flaw::IgnoresStreamLimits =>
            reads_a_stream_forward_from_a_version_with_a_limit,
            reads_a_stream_backward_from_a_version_with_a_limit,
            a_ten_thousand_event_stream_reads_in_pages),
        escapes!(Flaw::StopsVisitsLate => visit_stream_agrees_with_read_stream),
        escapes!(Flaw::VisitsIgnoringBounds => visit_stream_agrees_with_read_stream),
        escapes!(Flaw::ArchivesNothing =>
            a_soft_delete_archives_the_stream_and_leaves_a_marker,
            truncation_archives_the_events_before_a_version),
        escapes!(Flaw::ReadsPastTruncation => a_reader_behind_a_truncation_gets_a_typed_error),
        escapes!(Flaw::AppendsToTombstones => a_tombstoned_stream_refuses_every_append),
        escapes!(Flaw::ReadsAllInclusively =>
            read_all_pages_strictly_after_a_position,
            read_all_filters_by_category,
            a_reader_tailing_concurrent_appends_misses_nothing),
        escapes!(Flaw::IgnoresFilters =>
            read_all_filters_by_event_type,
            read_all_filters_by_category,
            tenants_do_not_see_each_others_events),
        escapes!(Flaw::LimitsBeforeFiltering => read_all_filters_by_event_type),
        escapes!(Flaw::HidesInFlightEvents =>
            a_reader_tailing_concurrent_appends_misses_nothing,
            read_all_returns_every_stream_in_commit_order),
        escapes!(Flaw::HeadStaysAtStart =>
            head_position_is_the_last_visible_event,
            an_append_reports_its_versions_and_last_position,
            tenants_do_not_see_each_others_events),
        escapes!(Flaw::SharesTenants =>
            tenants_do_not_see_each_others_events,
            the_same_stream_name_in_two_tenants_is_two_streams,
            tenants_do_not_see_each_others_snapshots_or_checkpoints,
            clones_and_tenant_handles_share_the_storage,
            head_position_is_the_last_visible_event,
            inspect_lists_streams_in_byte_order_page_by_page,
            inspect_counts_event_types_per_schema_version,
            inspect_lists_checkpoints_in_name_order,
            inspect_lists_every_parked_event_by_reactor),
        escapes!(Flaw::FoldsCase => a_stream_holds_only_its_own_events),
        escapes!(Flaw::NormalisesPayloads => payloads_round_trip_byte_for_byte),
        escapes!(Flaw::DropsMetadataExtras =>
            metadata_round_trips,
            append_records_every_field),
        escapes!(Flaw::TruncatesPayloads => a_one_mebibyte_payload_round_trips),
        escapes!(Flaw::KeepsMilliseconds => recorded_at_comes_from_the_local_clock),
        escapes!(Flaw::SnapshotsLastWriteWins => snapshots_are_saved_loaded_and_replaced),
        escapes!(Flaw::SnapshotsKeepTheFirstOfAVersion => snapshots_are_saved_loaded_and_replaced),
        escapes!(Flaw::ForgetsCheckpointsAtStart =>
            checkpoints_are_saved_loaded_and_overwritten_per_subscriber),
        escapes!(Flaw::ParksInArrivalOrder =>
            parked_events_are_listed_replaced_and_removed,
            inspect_lists_every_parked_event_by_reactor),
        escapes!(Flaw::ParksForEveryTenant =>
            parked_events_belong_to_their_tenant,
            inspect_lists_every_parked_event_by_reactor),
        escapes!(Flaw::LeasesEveryone => a_lease_is_exclusive_until_dropped),
        escapes!(Flaw::DocumentsIgnoreTheCheckpoint =>
            documents_commit_with_their_checkpoint_and_a_moved_checkpoint_fences),
        escapes!(Flaw::DocumentsShareTenants => documents_belong_to_their_view_and_tenant),
        escapes!(Flaw::PartsOneByOne =>
            an_append_across_streams_stores_every_part_in_one_commit,
            an_append_across_streams_with_one_stale_part_stores_nothing),
        escapes!(Flaw::SkipsCheckParts =>
            a_part_without_events_only_checks_its_stream),
        escapes!(Flaw::FindsNoEventsById =>
            read_events_returns_stored_events_in_the_order_asked,
            a_key_reused_for_another_command_is_refused),
        escapes!(Flaw::SortsListingsCaseInsensitively =>
            inspect_lists_streams_in_byte_order_page_by_page,
            inspect_counts_event_types_per_schema_version,
            inspect_lists_checkpoints_in_name_order,
            inspect_lists_every_parked_event_by_reactor),
        escapes!(Flaw::ListsStreamsFromAfterInclusively =>
            inspect_lists_streams_in_byte_order_page_by_page),
        escapes!(Flaw::IgnoresTheStreamCategory =>
            inspect_lists_streams_in_byte_order_page_by_page),
        escapes!(Flaw::SortsSchemaVersionsAsText =>
            inspect_counts_event_types_per_schema_version),
    ]
    .concat();
    std::panic::set_hook(report);
    assert!(
        escaped.is_empty(),
        "flaws the suite missed:\n{}",
        escaped.join("\n")
    );
}

/// The flaws caught only when a wait runs out of time, on a paused clock: tokio moves it to
/// the next timer whenever every task is idle, so the suite's deadlines pass at once.
#[tokio::test(start_paused = true)]
async fn flaws_caught_by_a_deadline_fail_their_cases() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let escaped = [
        escapes!(Flaw::SignalNeverMoves => the_append_signal_moves_after_an_append),
        escapes!(Flaw::KeepsLeasesForever =>
            a_lease_is_exclusive_until_dropped,
            a_follower_takes_over_when_the_leader_stops),
    ]
    .concat();
    std::panic::set_hook(report);
    assert!(escaped.is_empty(), "{escaped:#?}");
}
