//! What the cases append, and the store calls they make: each call that must succeed panics
//! with the operation and the store's error when it does not.

use eventsrc_core::store::{AppendResult, ReadAll, ReadStream};

use eventsrc_core::{
    EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent, StreamId,
    StreamVersion, Tenant,
};

/// A stream id spelled out by a case.
pub(super) fn stream(name: &str) -> StreamId {
    name.parse()
        .unwrap_or_else(|error| panic!("the suite's own stream id is invalid: {error}"))
}

/// `n` events named `event_type` with payloads `{"n":1}`, `{"n":2}`, ..., each with a fresh id.
pub(super) fn events(event_type: &'static str, n: usize) -> Vec<NewEvent> {
    (1..=n)
        .map(|i| NewEvent::raw(event_type, 1, format!(r#"{{"n":{i}}}"#)))
        .collect()
}

/// A tenant that no other case, nor another run of this one, has used.
pub(super) fn fresh_tenant(label: &str) -> Tenant {
    Tenant::new(format!("conformance-{label}-{}", EventId::new()))
}

/// Appends, which must succeed.
pub(super) async fn append<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendResult {
    let count = events.len();
    match store.append(stream, expected, events).await {
        Ok(result) => result,
        Err(error) => panic!(
            "appending {count} event(s) to `{stream}` (tenant `{}`) expecting {expected} failed: \
             {error:?}",
            store.tenant()
        ),
    }
}

/// Reads a stream, which must succeed.
pub(super) async fn read<S: EventStore>(
    store: &S,
    stream: &StreamId,
    read: ReadStream,
) -> Vec<RecordedEvent> {
    match store.read_stream(stream, read).await {
        Ok(events) => events,
        Err(error) => panic!("reading `{stream}` with {read:?} failed: {error:?}"),
    }
}

/// Reads one page of the tenant's log, which must succeed.
pub(super) async fn read_all<S: EventStore>(store: &S, read: ReadAll) -> Vec<RecordedEvent> {
    let description = format!("{read:?}");
    match store.read_all(read).await {
        Ok(events) => events,
        Err(error) => panic!("read_all with {description} failed: {error:?}"),
    }
}

/// The tenant's whole log, read page by page, each page starting after the last event seen.
pub(super) async fn whole_log<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let mut log: Vec<RecordedEvent> = Vec::new();
    loop {
        let after = log
            .last()
            .map_or(GlobalPosition::START, |e| e.global_position);
        let page = read_all(store, ReadAll::after(after)).await;
        if page.is_empty() {
            return log;
        }
        log.extend(page);
    }
}

/// The stream's version, which must be readable.
pub(super) async fn version<S: EventStore>(store: &S, stream: &StreamId) -> StreamVersion {
    match store.stream_version(stream).await {
        Ok(version) => version,
        Err(error) => panic!("stream_version of `{stream}` failed: {error:?}"),
    }
}

/// The tenant's head position, which must be readable.
pub(super) async fn head<S: EventStore>(store: &S) -> GlobalPosition {
    match store.head_position().await {
        Ok(position) => position,
        Err(error) => panic!("head_position failed: {error:?}"),
    }
}

/// The stream versions of `events`, in order.
pub(super) fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.stream_version.get()).collect()
}

/// The ids of `events`, in order.
pub(super) fn ids(events: &[RecordedEvent]) -> Vec<EventId> {
    events.iter().map(|e| e.event_id).collect()
}

/// `(stream, version, event type)` of each event: enough to compare orders readably.
pub(super) fn summary(events: &[RecordedEvent]) -> Vec<(String, u64, String)> {
    events
        .iter()
        .map(|e| {
            let (stream, version) = (e.stream.to_string(), e.stream_version.get());
            (stream, version, e.event_type.to_string())
        })
        .collect()
}

/// One row of a [`summary`].
pub(super) fn row(stream: &str, version: u64, event_type: &str) -> (String, u64, String) {
    (stream.to_owned(), version, event_type.to_owned())
}

/// Everything a reader can see of one stream and of the tenant's log, to compare before and
/// after an operation that must change nothing.
#[derive(Debug, PartialEq)]
pub(super) struct Observed {
    version: StreamVersion,
    stream: Vec<RecordedEvent>,
    log: Vec<RecordedEvent>,
    head: GlobalPosition,
}

/// What a reader sees of `stream` and of the log now.
pub(super) async fn observe<S: EventStore>(store: &S, stream: &StreamId) -> Observed {
    Observed {
        version: version(store, stream).await,
        stream: read(store, stream, ReadStream::forward()).await,
        log: whole_log(store).await,
        head: head(store).await,
    }
}
