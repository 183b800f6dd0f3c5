//! Many writers at once: one winner per version on a shared stream, every event landing on
//! distinct streams, and a reader tailing the log that never skips an event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use eventsrc_core::{
    EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent, StoreError,
    StreamId, StreamVersion,
};

use eventsrc_core::store::{ReadAll, ReadStream};
use tokio::sync::Barrier;
use tokio::task::JoinHandle;

use super::sample::{self, read, version};
use super::{StoreUnderTest, expect};

/// Concurrent writers per case.
const TASKS: usize = 8;
/// Appends per writer.
const APPENDS: usize = 25;

/// Waits for a spawned task, re-raising its panic, with the task's own message, here.
async fn join<T>(task: JoinHandle<T>) -> T {
    match task.await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("a task of the case did not finish: {error}"),
    }
}

/// Appends `event` alone with an `Exact` expectation, taking each conflict's actual version as
/// the next expectation, until it lands; returns the version it landed at.
async fn append_until_it_lands<S: EventStore>(
    store: &S,
    stream: &StreamId,
    event: &NewEvent,
) -> StreamVersion {
    let mut current = version(store, stream).await;
    // Each conflict means another append won a version, so there cannot be more than all of them.
    for _ in 0..=TASKS * APPENDS {
        // Let other appenders run between reading a version and appending after it, so that
        // expectations go stale even on a store whose futures never wait (the memory store).
        tokio::task::yield_now().await;
        let expected = ExpectedVersion::Exact(current);
        match store.append(stream, expected, vec![event.clone()]).await {
            Ok(appended) => {
                let next = current.advance(1);
                assert_eq!(
                    (appended.first_version, appended.stream_version),
                    (next, next),
                    "an append expecting {expected} that succeeded must land at {next}"
                );
                assert!(
                    !appended.already_stored,
                    "a new event reported already_stored"
                );
                return appended.stream_version;
            }
            Err(StoreError::WrongExpectedVersion {
                stream: at,
                expected: said,
                actual,
            }) => {
                assert_eq!(
                    (&at, said),
                    (stream, expected),
                    "the conflict's stream and expectation"
                );
                assert!(
                    actual > current,
                    "a conflict expecting {expected} must report the later version that won it, \
                     got {actual}"
                );
                current = actual;
            }
            Err(other) => panic!(
                "a concurrent append expecting {expected} failed with {other:?}; it must either \
                 succeed or fail with WrongExpectedVersion"
            ),
        }
    }
    panic!("an append to `{stream}` conflicted more often than the case appends events")
}

/// 8 tasks append 25 events each to one stream, each append expecting the version it last saw
/// and retrying on conflict: every version from 1 to 200 has exactly one winner, and the stream
/// holds each winning event once, at the version its append reported.
pub async fn concurrent_appends_to_one_stream_have_one_winner_per_version<S: StoreUnderTest>(
    store: S,
) {
    let s = sample::stream("counter-1");
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, s, start) = (store.clone(), s.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let mut won = Vec::with_capacity(APPENDS);
                for n in 0..APPENDS {
                    let event =
                        NewEvent::raw("Counted", 1, format!(r#"{{"task":{task},"n":{n}}}"#));
                    won.push((
                        append_until_it_lands(&store, &s, &event).await,
                        event.event_id,
                    ));
                }
                won
            })
        })
        .collect();

    let mut winners: BTreeMap<u64, EventId> = BTreeMap::new();
    for task in tasks {
        for (version, id) in join(task).await {
            if let Some(other) = winners.insert(version.get(), id) {
                panic!("version {version} was won by two appends: events {other} and {id}");
            }
        }
    }
    let total = (TASKS * APPENDS) as u64;
    let won: Vec<u64> = winners.keys().copied().collect();
    assert_eq!(
        won,
        (1..=total).collect::<Vec<_>>(),
        "the versions won, without gaps"
    );

    let recorded = read(&store, &s, ReadStream::forward()).await;
    let stored: Vec<(u64, EventId)> = recorded
        .iter()
        .map(|e| (e.stream_version.get(), e.event_id))
        .collect();
    let reported: Vec<(u64, EventId)> = winners.into_iter().collect();
    assert_eq!(
        stored, reported,
        "(version, event id) stored versus reported by the appends"
    );
    assert_eq!(
        version(&store, &s).await,
        StreamVersion(total),
        "the stream's version"
    );
    expect::increasing_positions(&recorded, "the shared stream");
}

/// 8 tasks append 25 events each to a stream of their own at the same time: every append
/// succeeds at the version it expects, and the log holds every event once, in strictly
/// increasing positions, each at the position its append reported.
pub async fn concurrent_appends_to_many_streams_all_land<S: StoreUnderTest>(store: S) {
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, start) = (store.clone(), start.clone());
            let s = sample::stream(&format!("counter-{task}"));
            tokio::spawn(async move {
                start.wait().await;
                let mut landed = Vec::with_capacity(APPENDS);
                for n in 0..APPENDS as u64 {
                    let event = NewEvent::raw("Counted", 1, format!(r#"{{"n":{n}}}"#));
                    let expected = ExpectedVersion::Exact(StreamVersion(n));
                    let appended = sample::append(&store, &s, expected, vec![event.clone()]).await;
                    assert_eq!(
                        appended.stream_version,
                        StreamVersion(n + 1),
                        "`{s}`'s append"
                    );
                    landed.push((event.event_id, appended.position));
                }
                (s, landed)
            })
        })
        .collect();

    let mut positions: BTreeMap<EventId, GlobalPosition> = BTreeMap::new();
    for task in tasks {
        let (s, landed) = join(task).await;
        let recorded = read(&store, &s, ReadStream::forward()).await;
        let ids: Vec<EventId> = landed.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            sample::ids(&recorded),
            ids,
            "the events of `{s}`, in append order"
        );
        positions.extend(landed);
    }
    let log = sample::whole_log(&store).await;
    expect::increasing_positions(&log, "the log after concurrent appends");
    let logged: BTreeMap<EventId, GlobalPosition> = log
        .iter()
        .map(|e| (e.event_id, e.global_position))
        .collect();
    assert_eq!(log.len(), TASKS * APPENDS, "events in the log");
    assert_eq!(
        logged, positions,
        "(event id, position) in the log versus reported"
    );
    let last = log.last().map(|e| e.global_position);
    assert_eq!(Some(sample::head(&store).await), last, "head_position");
}

/// While 4 tasks append batches of 1 to 3 events, a reader pages through the log, each page
/// after the last position it saw. It must never see a position go backwards, and once the
/// writers are done and it has caught up, it must have seen exactly the whole log: an event
/// committed after a later-numbered one was read is not skipped.
pub async fn a_reader_tailing_concurrent_appends_misses_nothing<S: StoreUnderTest>(store: S) {
    const WRITERS: usize = 4;
    let done = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(tail(store.clone(), done.clone()));
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, start) = (store.clone(), start.clone());
            let s = sample::stream(&format!("tail-{writer}"));
            tokio::spawn(async move {
                start.wait().await;
                for n in 0..APPENDS {
                    let batch = sample::events("Tailed", n % 3 + 1);
                    sample::append(&store, &s, ExpectedVersion::Any, batch).await;
                }
            })
        })
        .collect();
    for writer in writers {
        join(writer).await;
    }
    done.store(true, Ordering::SeqCst);
    let seen = join(reader).await;

    let log = sample::whole_log(&store).await;
    let per_writer: usize = (0..APPENDS).map(|n| n % 3 + 1).sum();
    assert_eq!(log.len(), WRITERS * per_writer, "events in the log");
    assert_eq!(
        sample::ids(&seen),
        sample::ids(&log),
        "the tailing reader saw {} events, the log holds {}: a reader skipped events that \
         committed late",
        seen.len(),
        log.len()
    );
}

/// Reads the log in pages of 7 after the last position seen until `done` was set before a read
/// that came back empty; checks that every page lies strictly after the previous one.
async fn tail<S: EventStore>(store: S, done: Arc<AtomicBool>) -> Vec<RecordedEvent> {
    let mut seen: Vec<RecordedEvent> = Vec::new();
    loop {
        let finished = done.load(Ordering::SeqCst);
        let after = seen
            .last()
            .map_or(GlobalPosition::START, |e| e.global_position);
        let page = sample::read_all(&store, ReadAll::after(after).limit(7)).await;
        if page.is_empty() {
            if finished {
                return seen;
            }
            tokio::task::yield_now().await;
            continue;
        }
        assert!(
            page[0].global_position > after,
            "read_all after {after} returned an event at {}",
            page[0].global_position
        );
        expect::increasing_positions(&page, "a page of the tailing reader");
        seen.extend(page);
    }
}
