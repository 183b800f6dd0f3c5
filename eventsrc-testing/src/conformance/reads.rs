//! Reading one stream: forwards, backwards, bounded, missing, long; and handles that share it.

use eventsrc_core::{
    EventStore, ExpectedVersion, GlobalPosition, StoreError, StreamId, StreamVersion, Timestamp,
};

use eventsrc_core::store::ReadStream;

use eventsrc_core::backend::StoredEvent;

use super::StoreUnderTest;
use super::sample::{self, append, events, fresh_tenant, read, version, versions};

/// Reads `stream` (whose event at version `v` has the payload `{"n":v}`) with each bound and
/// compares the versions returned with the expected ones.
async fn check_reads<S: EventStore>(store: &S, stream: &StreamId, cases: &[(ReadStream, &[u64])]) {
    for (bounds, expected) in cases {
        let events = read(store, stream, *bounds).await;
        assert_eq!(
            versions(&events),
            *expected,
            "versions read with {bounds:?}"
        );
        for event in &events {
            let payload = format!(r#"{{"n":{}}}"#, event.stream_version);
            assert_eq!(
                *event.payload, payload,
                "the event at version {}",
                event.stream_version
            );
            assert_eq!(
                &event.stream, stream,
                "the stream of an event read with {bounds:?}"
            );
        }
    }
}

/// Forward reads start at `from` (inclusive; `NONE` means the start), stop after `limit`, and
/// return nothing past the end.
pub async fn reads_a_stream_forward_from_a_version_with_a_limit<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    append(&store, &s, ExpectedVersion::NoStream, events("Noted", 5)).await;
    let forward = ReadStream::forward;
    let from = |v: u64| ReadStream::forward().from(StreamVersion(v));
    check_reads(
        &store,
        &s,
        &[
            (forward(), &[1, 2, 3, 4, 5]),
            (from(3), &[3, 4, 5]),
            (forward().limit(2), &[1, 2]),
            (from(2).limit(3), &[2, 3, 4]),
            (from(5).limit(10), &[5]),
            (from(0), &[1, 2, 3, 4, 5]),
            (from(6), &[]),
            (from(u64::MAX), &[]),
            (forward().limit(0), &[]),
            (forward().limit(usize::MAX), &[1, 2, 3, 4, 5]),
        ],
    )
    .await;
}

/// Backward reads start at `from` (inclusive; past the end means the last event; `NONE` means
/// nothing), go down to version 1, and stop after `limit`.
pub async fn reads_a_stream_backward_from_a_version_with_a_limit<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    append(&store, &s, ExpectedVersion::NoStream, events("Noted", 5)).await;
    let backward = ReadStream::backward;
    let from = |v: u64| ReadStream::backward().from(StreamVersion(v));
    check_reads(
        &store,
        &s,
        &[
            (backward(), &[5, 4, 3, 2, 1]),
            (from(3), &[3, 2, 1]),
            (backward().limit(2), &[5, 4]),
            (from(4).limit(2), &[4, 3]),
            (from(1), &[1]),
            (from(9).limit(2), &[5, 4]),
            (from(u64::MAX), &[5, 4, 3, 2, 1]),
            (from(0), &[]),
            (backward().limit(0), &[]),
            (backward().limit(usize::MAX), &[5, 4, 3, 2, 1]),
        ],
    )
    .await;
}

/// A stream that was never appended to reads as empty, in every direction and bound, and has
/// version `NONE`: no error, even beside streams whose names start with its name.
pub async fn a_missing_stream_reads_as_empty_at_version_none<S: StoreUnderTest>(store: S) {
    for name in ["note-10", "note-1/a"] {
        append(
            &store,
            &sample::stream(name),
            ExpectedVersion::Any,
            events("Noted", 3),
        )
        .await;
    }
    let missing = sample::stream("note-1");
    let from = StreamVersion(2);
    check_reads(
        &store,
        &missing,
        &[
            (ReadStream::forward(), &[]),
            (ReadStream::backward(), &[]),
            (ReadStream::forward().from(from), &[]),
            (ReadStream::backward().from(from).limit(5), &[]),
        ],
    )
    .await;
    assert_eq!(
        version(&store, &missing).await,
        StreamVersion::NONE,
        "version of `note-1`"
    );
}

/// Each stream holds only its own events, even among streams whose names extend it or differ
/// from it only in case.
pub async fn a_stream_holds_only_its_own_events<S: StoreUnderTest>(store: S) {
    let appends = [
        ("note-1", 2),
        ("note-10", 3),
        ("Note-1", 1),
        ("note-1/a", 4),
        ("note-1", 1),
    ];
    for (name, n) in appends {
        append(
            &store,
            &sample::stream(name),
            ExpectedVersion::Any,
            events("Noted", n),
        )
        .await;
    }
    let expected: [(&str, &[u64]); 4] = [
        ("note-1", &[1, 2, 3]),
        ("note-10", &[1, 2, 3]),
        ("Note-1", &[1]),
        ("note-1/a", &[1, 2, 3, 4]),
    ];
    for (name, versions_of) in expected {
        let s = sample::stream(name);
        let events = read(&store, &s, ReadStream::forward()).await;
        assert_eq!(versions(&events), versions_of, "versions of `{name}`");
        assert!(
            events.iter().all(|e| e.stream == s),
            "`{name}` holds {events:#?}"
        );
        let last = versions_of.len() as u64;
        assert_eq!(
            version(&store, &s).await,
            StreamVersion(last),
            "version of `{name}`"
        );
    }
    let note_1 = read(&store, &sample::stream("note-1"), ReadStream::forward()).await;
    let payloads: Vec<&str> = note_1.iter().map(|e| &*e.payload).collect();
    assert_eq!(
        payloads,
        [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":1}"#],
        "payloads of `note-1`"
    );
}

/// A stream of 10,000 events (appended 1,000 at a time) reads whole in pages of 1,000, forwards
/// and backwards, and the log reads whole in pages of `ReadAll::DEFAULT_LIMIT`.
pub async fn a_ten_thousand_event_stream_reads_in_pages<S: StoreUnderTest>(store: S) {
    const PAGE: usize = 1_000;
    const TOTAL: u64 = 10_000;
    let s = sample::stream("ledger-1");
    let mut appended = Vec::new();
    for batch in 0..TOTAL / PAGE as u64 {
        let new = events("Booked", PAGE);
        appended.extend(new.iter().map(|e| e.event_id));
        let expected = ExpectedVersion::Exact(StreamVersion(batch * PAGE as u64));
        append(&store, &s, expected, new).await;
    }

    let mut forward = Vec::new();
    for first in (1..=TOTAL).step_by(PAGE) {
        let bounds = ReadStream::forward().from(StreamVersion(first)).limit(PAGE);
        let page = read(&store, &s, bounds).await;
        assert_eq!(page.len(), PAGE, "a forward page with {bounds:?}");
        forward.extend(page);
    }
    assert_eq!(sample::ids(&forward), appended, "the forward pages, joined");
    assert_eq!(
        versions(&forward),
        (1..=TOTAL).collect::<Vec<_>>(),
        "versions, forward"
    );
    let past = ReadStream::forward()
        .from(StreamVersion(TOTAL + 1))
        .limit(PAGE);
    assert!(
        read(&store, &s, past).await.is_empty(),
        "a page past the end"
    );

    let mut backward = Vec::new();
    for (i, last) in (PAGE as u64..=TOTAL).rev().step_by(PAGE).enumerate() {
        let bounds = match i {
            0 => ReadStream::backward().limit(PAGE),
            _ => ReadStream::backward().from(StreamVersion(last)).limit(PAGE),
        };
        let page = read(&store, &s, bounds).await;
        assert_eq!(page.len(), PAGE, "a backward page with {bounds:?}");
        backward.extend(page);
    }
    backward.reverse();
    assert_eq!(backward, forward, "the backward pages, joined and reversed");

    let log = sample::whole_log(&store).await;
    assert_eq!(
        sample::ids(&log),
        appended,
        "the log, read in default-sized pages"
    );
}

/// Clones and `with_tenant` handles are handles on the same storage: what one writes, another
/// of the same tenant reads, and going back to the first tenant finds its data.
pub async fn clones_and_tenant_handles_share_the_storage<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let clone = store.clone();
    append(&clone, &s, ExpectedVersion::NoStream, events("Noted", 1)).await;
    append(
        &store,
        &s,
        ExpectedVersion::Exact(StreamVersion(1)),
        events("Noted", 1),
    )
    .await;
    assert_eq!(
        version(&store, &s).await,
        StreamVersion(2),
        "the original's view"
    );
    assert_eq!(
        version(&clone, &s).await,
        StreamVersion(2),
        "the clone's view"
    );

    let other = store.with_tenant(fresh_tenant("other"));
    let back = other.with_tenant(store.tenant().clone());
    assert_eq!(
        back.tenant(),
        store.tenant(),
        "a handle back on the first tenant"
    );
    assert_ne!(other.tenant(), store.tenant(), "a handle on another tenant");
    let through_back = read(&back, &s, ReadStream::forward()).await;
    let through_store = read(&store, &s, ReadStream::forward()).await;
    assert_eq!(
        through_back, through_store,
        "the stream read back on the first tenant"
    );
    assert_eq!(
        sample::head(&back).await,
        sample::head(&store).await,
        "head_position"
    );

    let snapshot = eventsrc_core::store::Snapshot {
        stream: s.clone(),
        version: StreamVersion(2),
        state_version: 1,
        payload: r#"{"notes":2}"#.into(),
        taken_at: Timestamp::from_micros(1_700_000_000_000_000),
    };
    let saved = clone.save_snapshot(snapshot.clone()).await;
    saved.expect("save_snapshot through a clone");
    let loaded = back.load_snapshot(&s).await.expect("load_snapshot");
    assert_eq!(loaded, Some(snapshot), "a snapshot saved by a clone");
    let position = GlobalPosition::new(1, 2);
    let saved = back.save_checkpoint("report", position).await;
    saved.expect("save_checkpoint through a tenant handle");
    let loaded = clone
        .load_checkpoint("report")
        .await
        .expect("load_checkpoint");
    assert_eq!(
        loaded,
        Some(position),
        "a checkpoint saved through a tenant handle"
    );
}

/// What a visit shows of an event, owned so visits and reads can be compared.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    stream: StreamId,
    stream_version: StreamVersion,
    event_type: String,
    schema_version: u32,
    payload: String,
}

impl From<StoredEvent<'_>> for Seen {
    fn from(event: StoredEvent<'_>) -> Self {
        Self {
            stream: event.stream.clone(),
            stream_version: event.stream_version,
            event_type: event.event_type.to_owned(),
            schema_version: event.schema_version,
            payload: event.payload.to_owned(),
        }
    }
}

/// Why a visit stopped: the store failed, or the visitor said stop.
#[derive(Debug)]
enum Stopped {
    Store(StoreError),
    ByVisitor,
}

impl From<StoreError> for Stopped {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// `visit_stream` (which backends override to lend events from their own buffers) hands the
/// visitor exactly the events `read_stream` returns, for every bound, and stops at the
/// visitor's first error, returning it.
pub async fn visit_stream_agrees_with_read_stream<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    append(&store, &s, ExpectedVersion::NoStream, events("Noted", 5)).await;
    append(
        &store,
        &sample::stream("note-2"),
        ExpectedVersion::Any,
        events("Noted", 2),
    )
    .await;
    let from = StreamVersion;
    for (stream, bounds) in [
        (&s, ReadStream::forward()),
        (&s, ReadStream::backward()),
        (&s, ReadStream::forward().from(from(2)).limit(2)),
        (&s, ReadStream::backward().from(from(4)).limit(3)),
        (&s, ReadStream::backward().from(from(9))),
        (&s, ReadStream::forward().from(from(6))),
        (&s, ReadStream::forward().limit(0)),
        (&sample::stream("note-3"), ReadStream::forward()),
    ] {
        let read = read(&store, stream, bounds).await;
        let expected: Vec<Seen> = read.iter().map(|e| e.as_stored().into()).collect();
        let mut seen = Vec::new();
        let visited: Result<(), Stopped> = store
            .visit_stream(stream, bounds, |event| {
                seen.push(Seen::from(event));
                Ok(())
            })
            .await;
        match visited {
            Ok(()) => {}
            Err(Stopped::Store(error)) => {
                panic!("visit_stream of `{stream}` with {bounds:?} failed: {error:?}")
            }
            Err(Stopped::ByVisitor) => panic!("visit_stream made up a visitor's error"),
        }
        assert_eq!(
            seen, expected,
            "visit_stream versus read_stream of `{stream}`, {bounds:?}"
        );
    }

    let mut visits = 0;
    let stopped = store
        .visit_stream(&s, ReadStream::forward(), |_| {
            visits += 1;
            if visits == 2 {
                Err(Stopped::ByVisitor)
            } else {
                Ok(())
            }
        })
        .await;
    assert!(
        matches!(stopped, Err(Stopped::ByVisitor)),
        "a visit stopped by its visitor returns the visitor's error, got {stopped:?}"
    );
    assert_eq!(
        visits, 2,
        "the visitor is not called again after its first error"
    );
}
