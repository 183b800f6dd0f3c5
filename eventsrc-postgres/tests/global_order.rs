//! The bigserial trap, sprung on purpose: eight writers append while some of their
//! transactions stay open for a random while after inserting, so transactions commit out of
//! position order; a reader tails the log the whole time. It must see every committed event
//! exactly once, in strictly increasing position order, never going back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use eventsrc::{EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, StreamId};

use eventsrc::store::ReadAll;
use eventsrc_postgres::PgEventStore;
use support::TestSchema;

const WRITERS: usize = 8;
const APPENDS: usize = 24;
/// The longest a held transaction stays open after its insert.
const HOLD: Duration = Duration::from_millis(50);
/// How long the reader may take to catch up once everything is committed.
const DEADLINE: Duration = Duration::from_secs(60);

/// One append as a writer saw it: its events, its transaction, and when it returned relative
/// to the other appends.
struct Landed {
    ids: Vec<EventId>,
    commit: u64,
    returned: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_tailing_out_of_order_commits_never_skips_an_event() {
    let Some(schema) = TestSchema::new("a_reader_tailing_out_of_order_commits").await else {
        return;
    };
    let writer = schema.store().await;
    // The reader never waits at the horizon: its correctness rests on the horizon alone.
    let reader = schema
        .store_with(schema.options().horizon_wait(Duration::ZERO))
        .await;
    let total: usize = (0..APPENDS).map(batch_size).sum::<usize>() * WRITERS;

    let done = Arc::new(AtomicBool::new(false));
    let tail = tokio::spawn(tail(reader, total, done.clone()));
    let naive = tokio::spawn(tail_by_position_alone(
        schema.url.clone(),
        schema.name.clone(),
        done.clone(),
    ));
    let returned = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write(writer.clone(), w, returned.clone())))
        .collect();
    let mut landed = Vec::new();
    for writer in writers {
        landed.extend(writer.await.expect("a writer panicked"));
    }
    done.store(true, Ordering::SeqCst);
    let seen = tail.await.expect("the reader panicked");
    let naive_seen = naive.await.expect("the naive reader panicked");

    // The test proves something only if commits did land out of position order.
    let inversions = inversions(&landed);
    assert!(
        inversions > 0,
        "no transaction committed after a later one: the test did not spring the trap"
    );
    let appended: Vec<EventId> = landed.iter().flat_map(|l| l.ids.iter().copied()).collect();
    assert_eq!(appended.len(), total);
    let seen_ids: Vec<EventId> = seen.iter().map(|(id, _)| *id).collect();
    let unique: HashSet<EventId> = seen_ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seen_ids.len(),
        "the reader saw an event twice"
    );
    assert_eq!(
        unique,
        appended.iter().copied().collect::<HashSet<_>>(),
        "the reader saw {} of {} events",
        seen.len(),
        total
    );
    let log: Vec<EventId> = whole_log(&writer).await;
    assert_eq!(seen_ids, log, "the reader's order is the log's order");
    let missed = appended
        .iter()
        .filter(|id| !naive_seen.contains(id))
        .count();
    println!(
        "{inversions} pairs of appends committed out of transaction order; \
         a reader paging by position alone missed {missed} of {total} events"
    );
    schema.drop().await;
}

fn batch_size(n: usize) -> usize {
    n % 3 + 1
}

/// Appends `APPENDS` batches to the writer's own stream, every other one in a transaction held
/// open for a random time after its insert.
async fn write(store: PgEventStore, writer: usize, returned: Arc<AtomicUsize>) -> Vec<Landed> {
    let stream = StreamId::new("order", writer).unwrap();
    let mut landed = Vec::with_capacity(APPENDS);
    for n in 0..APPENDS {
        let events: Vec<NewEvent> = (0..batch_size(n))
            .map(|i| {
                NewEvent::raw(
                    "Placed",
                    1,
                    format!(r#"{{"writer":{writer},"n":{n},"i":{i}}}"#),
                )
            })
            .collect();
        let ids = events.iter().map(|e| e.event_id).collect();
        let result = if (writer + n).is_multiple_of(2) {
            store
                .__append_holding_transaction(&stream, events, HOLD)
                .await
        } else {
            store.append(&stream, ExpectedVersion::Any, events).await
        };
        let result = result.unwrap_or_else(|e| panic!("writer {writer}, append {n}: {e}"));
        landed.push(Landed {
            ids,
            commit: result.position.commit,
            returned: returned.fetch_add(1, Ordering::SeqCst),
        });
    }
    landed
}

/// Pairs of appends where the one in the older transaction returned (committed) after the one
/// in the newer transaction.
fn inversions(landed: &[Landed]) -> usize {
    let mut count = 0;
    for a in landed {
        for b in landed {
            if a.commit < b.commit && a.returned > b.returned {
                count += 1;
            }
        }
    }
    count
}

/// Tails the log in pages of 10 after the last position seen, until the writers are done and
/// it has seen `total` events, checking that every page lies strictly after the last.
async fn tail(
    store: PgEventStore,
    total: usize,
    done: Arc<AtomicBool>,
) -> Vec<(EventId, GlobalPosition)> {
    let mut seen: Vec<(EventId, GlobalPosition)> = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let after = seen.last().map_or(GlobalPosition::START, |(_, p)| *p);
        let page = store
            .read_all(ReadAll::after(after).limit(10))
            .await
            .expect("read_all");
        for event in &page {
            let last = seen.last().map_or(GlobalPosition::START, |(_, p)| *p);
            assert!(
                event.global_position > last,
                "read_all after {after} returned {} after {last}: a position went back",
                event.global_position
            );
            seen.push((event.event_id, event.global_position));
        }
        if !page.is_empty() {
            continue;
        }
        if done.load(Ordering::SeqCst) {
            if seen.len() >= total {
                return seen;
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + DEADLINE);
            assert!(
                Instant::now() < deadline,
                "the reader saw {} of {total} events and stopped catching up",
                seen.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What the trap catches: a reader paging by `position` alone, as a bigserial invites. It
/// skips every event whose transaction commits after a later-numbered one was read.
async fn tail_by_position_alone(
    url: String,
    schema: String,
    done: Arc<AtomicBool>,
) -> HashSet<EventId> {
    let client = support::raw_client(&url).await;
    let sql = format!(
        "SELECT position, event_id FROM \"{schema}\".events WHERE position > $1 ORDER BY position LIMIT 10"
    );
    let mut seen = HashSet::new();
    let mut last = 0i64;
    loop {
        let finished = done.load(Ordering::SeqCst);
        let rows = client.query(&sql, &[&last]).await.expect("a naive read");
        for row in &rows {
            last = row.get(0);
            seen.insert(EventId(row.get(1)));
        }
        if rows.is_empty() {
            if finished {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn whole_log(store: &PgEventStore) -> Vec<EventId> {
    let mut log: Vec<EventId> = Vec::new();
    let mut after = GlobalPosition::START;
    loop {
        let page = store
            .read_all(ReadAll::after(after))
            .await
            .expect("read_all");
        let Some(last) = page.last() else {
            return log;
        };
        after = last.global_position;
        log.extend(page.iter().map(|e| e.event_id));
    }
}
