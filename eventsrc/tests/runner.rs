//! Subscriptions and runners on the memory store: catch-up then live, filters, checkpoints,
//! read-your-writes, fencing, leadership, reactor retries and parking.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventsrc::{Projection, Reactor};

use eventsrc::Subscription;
use eventsrc::backend::ParkedStore;
use eventsrc::runner::UnknownEvents;
use eventsrc::runner::{Consumer, Perform, Retry};
use eventsrc::subscription::Start;
use eventsrc::{
    CheckpointStore, Event, EventId, EventStore, ExpectedVersion, GlobalPosition, MemoryStore,
    NewEvent, RecordedEvent, StreamId,
};
use eventsrc::{Checkpointed, InMemory, Reactions, RunError, Runner};
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "cart.item_added", aliases = ["ItemAdded"])]
struct ItemAdded {
    sku: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "cart.checked_out")]
struct CheckedOut;

#[derive(Event, Debug)]
enum Sales {
    Added(ItemAdded),
    CheckedOut(CheckedOut),
}

/// Counts how often each event was applied: exactly-once shows as all ones.
#[derive(Default)]
struct Applied {
    counts: HashMap<EventId, u32>,
    skus: Vec<String>,
    fail_on: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("refused {0}")]
struct Refused(String);

impl Projection for Applied {
    const NAME: &'static str = "applied";
    type Event = Sales;
    type Error = Refused;
    fn apply(&mut self, event: Sales, record: &RecordedEvent) -> Result<(), Refused> {
        if let Sales::Added(added) = event {
            if self.fail_on.as_deref() == Some(added.sku.as_str()) {
                return Err(Refused(added.sku));
            }
            self.skus.push(added.sku);
        }
        *self.counts.entry(record.event_id).or_default() += 1;
        Ok(())
    }
}

fn cart(id: u32) -> StreamId {
    StreamId::new("cart", id.to_string()).unwrap()
}

async fn add(store: &MemoryStore, stream: &StreamId, sku: &str) -> GlobalPosition {
    let event =
        NewEvent::from_event(&ItemAdded { sku: sku.into() }, eventsrc::Metadata::new()).unwrap();
    store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
        .unwrap()
        .position
}

async fn note(store: &MemoryStore, n: usize) {
    let stream = StreamId::new("note", "1").unwrap();
    for _ in 0..n {
        let event = NewEvent::raw("Noted", 1, "{}");
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

#[tokio::test]
async fn a_subscription_catches_up_in_bounded_batches_then_waits_for_new_events() {
    let store = MemoryStore::new();
    for i in 0..25 {
        add(&store, &cart(i % 3), &format!("sku-{i}")).await;
    }
    let mut subscription = Subscription::new(store.clone(), Start::Beginning).batch_size(10);
    let mut seen = Vec::new();
    loop {
        let batch = subscription.next_batch().await.unwrap();
        assert!(batch.events.len() <= 10);
        seen.extend(batch.events.iter().map(|e| e.global_position));
        if batch.caught_up {
            break;
        }
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in commit order");

    // Live: the next batch arrives when an append does, woken by the store's signal.
    let writer = store.clone();
    let appended = tokio::spawn(async move { add(&writer, &cart(9), "late").await });
    let batch = tokio::time::timeout(DEADLINE, subscription.next_batch())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.through, appended.await.unwrap());
    assert_eq!(subscription.lag().await.unwrap().events, 0);
}

#[tokio::test]
async fn a_subscription_from_the_end_sees_only_later_events() {
    let store = MemoryStore::new();
    add(&store, &cart(1), "old").await;
    let mut subscription = Subscription::new(store.clone(), Start::End);
    assert!(subscription.poll_batch().await.unwrap().events.is_empty());
    add(&store, &cart(1), "new").await;
    let batch = subscription.next_batch().await.unwrap();
    assert_eq!(batch.events.len(), 1);
    assert!(batch.events[0].payload.contains("new"));
}

#[tokio::test]
async fn a_filtered_subscription_moves_its_position_past_the_events_it_leaves_out() {
    let store = MemoryStore::new();
    add(&store, &cart(1), "a").await;
    note(&store, 5).await;
    let head = store.head_position().await.unwrap();
    let mut subscription = Subscription::new(store.clone(), Start::Beginning)
        .event_types(["cart.item_added"])
        .categories(["cart"]);
    let batch = subscription.next_batch().await.unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.through, head, "through covers the notes it skipped");
    let lag = subscription.lag().await.unwrap();
    assert_eq!((lag.position, lag.events), (head, 0));

    // Only notes arrive: the batch is empty but its position moves, so checkpoints keep up.
    note(&store, 2).await;
    let batch = subscription.next_batch().await.unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(batch.through, store.head_position().await.unwrap());
}

#[test]
fn derived_events_name_the_stored_types_they_read() {
    assert_eq!(
        ItemAdded::stored_types(),
        Some(vec!["cart.item_added", "ItemAdded"])
    );
    assert_eq!(
        Sales::stored_types(),
        Some(vec!["cart.item_added", "ItemAdded", "cart.checked_out"])
    );
    let consumer = InMemory::new(Applied::default());
    assert_eq!(consumer.event_types(), Sales::stored_types());
}

// ---------------------------------------------------------------------------------------------
// Projections

#[tokio::test]
async fn an_in_memory_projection_catches_up_and_reports_progress() {
    let store = MemoryStore::new();
    for i in 0..7 {
        add(&store, &cart(i), &format!("sku-{i}")).await;
    }
    note(&store, 3).await;
    let target = InMemory::new(Applied::default());
    let model = target.model();
    let mut runner = Runner::new(store.clone(), target).batch_size(3);
    let progress = runner.catch_up().await.unwrap();
    assert_eq!(progress.handled, 7, "notes are not read at all");
    assert_eq!(
        progress.position,
        Some(store.head_position().await.unwrap())
    );
    assert_eq!(model.read().skus.len(), 7);
    assert!(model.read().counts.values().all(|&n| n == 1));
    assert_eq!(runner.lag().await.unwrap().events, 0);
}

/// A runner behind events truncated into the archive stops with `StoreError::Truncated` and
/// handles nothing, unless built with `allow_truncated`, which skips them; one whose checkpoint
/// is past the cut reads on.
#[tokio::test]
async fn a_runner_behind_a_truncation_stops_unless_it_allows_skipping() {
    use eventsrc::StoreError;
    use eventsrc::store::Lifecycle;
    let store = MemoryStore::new();
    for sku in ["a", "b", "c"] {
        add(&store, &cart(1), sku).await;
    }
    let past_cut = add(&store, &cart(2), "d").await;
    store
        .truncate_before(&cart(1), eventsrc::StreamVersion(3))
        .await
        .unwrap();

    let target = InMemory::new(Applied::default());
    let model = target.model();
    let stopped = Runner::new(store.clone(), target).catch_up().await;
    assert!(
        matches!(
            &stopped,
            Err(RunError::Store {
                source: StoreError::Truncated { .. },
                ..
            })
        ),
        "{stopped:?}"
    );
    assert!(model.read().skus.is_empty(), "nothing was handled");

    let target = InMemory::new(Applied::default());
    let model = target.model();
    Runner::new(store.clone(), target)
        .allow_truncated()
        .catch_up()
        .await
        .unwrap();
    assert_eq!(
        model.read().skus,
        ["c", "d"],
        "the truncated events are skipped"
    );

    let checkpoints = MemoryStore::new();
    checkpoints
        .save_checkpoint(Applied::NAME, past_cut)
        .await
        .unwrap();
    let target = Checkpointed::new(Applied::default(), checkpoints);
    let progress = Runner::new(store.clone(), target).catch_up().await.unwrap();
    assert_eq!(progress.handled, 0, "a runner past the cut reads on");
}

/// A live runner whose last batch was full reads once more before it waits, so that it says
/// it caught up (and its lag gauges read zero) while the log is idle.
#[tokio::test]
async fn a_live_runner_whose_last_batch_was_full_says_it_caught_up() {
    let store = MemoryStore::new();
    for i in 0..4 {
        add(&store, &cart(i), &format!("sku-{i}")).await;
    }
    let head = store.head_position().await.unwrap();
    let runner = Runner::new(store.clone(), InMemory::new(Applied::default())).batch_size(2);
    let mut progress = runner.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(runner.run(async {
        stopped.await.ok();
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = progress.get();
        if now.position == Some(head) && now.caught_up {
            break;
        }
        let changed = tokio::time::timeout_at(deadline, progress.changed()).await;
        assert!(
            changed.is_ok(),
            "the runner never said it caught up: {:?}",
            progress.get()
        );
    }
    assert_eq!(progress.get().handled, 4);
    stop.send(()).ok();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn read_your_writes_waits_for_the_position_and_times_out_with_a_named_error() {
    let store = MemoryStore::new();
    let target = InMemory::new(Applied::default());
    let model = target.model();
    let runner = Runner::new(store.clone(), target);
    let progress = runner.progress();

    // Nothing runs it yet: the wait times out, saying where it got to.
    let position = add(&store, &cart(1), "laptop").await;
    let error = progress
        .wait_for(position, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(matches!(error, RunError::Timeout { .. }));
    assert!(
        error
            .to_string()
            .contains("`applied` did not reach position")
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        stopped.await.ok();
    }));
    progress.wait_for(position, DEADLINE).await.unwrap();
    assert_eq!(model.read().skus, ["laptop"]);
    let position = add(&store, &cart(2), "phone").await;
    progress.wait_for(position, DEADLINE).await.unwrap();
    assert_eq!(model.read().skus, ["laptop", "phone"]);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_checkpointed_projection_resumes_from_its_checkpoint_without_applying_twice() {
    let store = MemoryStore::new();
    for i in 0..4 {
        add(&store, &cart(i), &format!("sku-{i}")).await;
    }
    let mut runner = Runner::new(
        store.clone(),
        Checkpointed::new(Applied::default(), store.clone()),
    );
    runner.catch_up().await.unwrap();
    let first = runner.into_consumer().model();
    assert_eq!(
        store.load_checkpoint("applied").await.unwrap(),
        Some(store.head_position().await.unwrap())
    );

    // A restart: the same model (it stores itself), a new runner. Only new events apply.
    add(&store, &cart(9), "sku-9").await;
    let consumer = Checkpointed::new(Applied::default(), store.clone());
    let second = consumer.model();
    let mut runner = Runner::new(store.clone(), consumer);
    runner.catch_up().await.unwrap();
    assert_eq!(first.read().skus.len(), 4);
    assert_eq!(second.read().skus, ["sku-9"]);
}

#[tokio::test]
async fn a_failing_projection_keeps_its_checkpoint_and_names_the_event() {
    let store = MemoryStore::new();
    let ok = add(&store, &cart(1), "fine").await;
    let mut runner = Runner::new(
        store.clone(),
        Checkpointed::new(
            Applied {
                fail_on: Some("broken".into()),
                ..Applied::default()
            },
            store.clone(),
        ),
    )
    .batch_size(1);
    runner.step().await.unwrap();
    add(&store, &cart(2), "broken").await;
    let error = runner.catch_up().await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, RunError::Handle { .. }));
    assert!(message.contains("`applied` failed on event"), "{message}");
    assert!(message.contains("`cart-2` version 1"), "{message}");
    assert!(message.contains("refused broken"), "{message}");
    assert_eq!(store.load_checkpoint("applied").await.unwrap(), Some(ok));
}

#[tokio::test]
async fn a_projection_that_must_know_every_event_fails_on_an_unknown_one() {
    struct Strict;
    impl Projection for Strict {
        const NAME: &'static str = "strict";
        const UNKNOWN_EVENTS: UnknownEvents = UnknownEvents::Fail;
        type Event = Sales;
        type Error = Refused;
        fn apply(&mut self, _: Sales, _: &RecordedEvent) -> Result<(), Refused> {
            Ok(())
        }
    }
    let store = MemoryStore::new();
    note(&store, 1).await;
    let mut runner = Runner::new(store, InMemory::new(Strict));
    let error = runner.catch_up().await.unwrap_err();
    assert!(matches!(error, RunError::Decode { .. }));
    let message = error.to_string();
    assert!(
        message.contains("strict") && message.contains("Noted"),
        "{message}"
    );
}

#[tokio::test]
async fn a_runner_whose_checkpoint_moved_under_it_is_fenced_and_applies_nothing() {
    let store = MemoryStore::new();
    add(&store, &cart(1), "a").await;
    let mut slow = Runner::new(
        store.clone(),
        Checkpointed::new(Applied::default(), store.clone()),
    );
    slow.lag().await.unwrap(); // reads its checkpoint: none
    let mut fast = Runner::new(
        store.clone(),
        Checkpointed::new(Applied::default(), store.clone()),
    );
    fast.catch_up().await.unwrap();

    let error = slow.step().await.unwrap_err();
    assert!(matches!(error, RunError::Fenced { .. }), "{error}");
    assert!(slow.consumer().model().read().skus.is_empty());
    // It reads the checkpoint again and goes on from there.
    add(&store, &cart(2), "b").await;
    slow.catch_up().await.unwrap();
    assert_eq!(slow.consumer().model().read().skus, ["b"]);
}

// ---------------------------------------------------------------------------------------------
// Leadership

#[tokio::test]
async fn only_the_lease_holder_runs_and_a_follower_takes_over_exactly_once() {
    let store = MemoryStore::new();
    // Both nodes apply into one model; its per-event counts show double applies.
    let counts: Arc<Mutex<HashMap<EventId, u32>>> = Arc::default();

    struct Shared(Arc<Mutex<HashMap<EventId, u32>>>);
    impl Projection for Shared {
        const NAME: &'static str = "shared";
        type Event = Sales;
        type Error = Refused;
        fn apply(&mut self, _: Sales, record: &RecordedEvent) -> Result<(), Refused> {
            *self.0.lock().unwrap().entry(record.event_id).or_default() += 1;
            Ok(())
        }
    }
    let node = |store: &MemoryStore| {
        Runner::new(
            store.clone(),
            Checkpointed::new(Shared(Arc::clone(&counts)), store.clone()),
        )
        .batch_size(5)
        .poll_interval(Duration::from_millis(5))
    };
    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let leases = store.clone();
    let a = node(&store);
    let a = tokio::spawn(async move {
        a.run_as_leader(&leases, async {
            stopped_a.await.ok();
        })
        .await
    });
    for i in 0..20 {
        add(&store, &cart(i), "x").await;
    }
    eventually(|| counts.lock().unwrap().len() == 20).await;

    let leases = store.clone();
    let b = node(&store);
    let b = tokio::spawn(async move {
        b.run_as_leader(&leases, async {
            stopped_b.await.ok();
        })
        .await
    });
    // The leader stops mid-stream; its lease goes with it and the follower takes over.
    stop_a.send(()).unwrap();
    a.await.unwrap().unwrap();
    for i in 20..40 {
        add(&store, &cart(i), "y").await;
    }
    eventually(|| counts.lock().unwrap().len() == 40).await;
    stop_b.send(()).unwrap();
    b.await.unwrap().unwrap();
    let counts = counts.lock().unwrap();
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Reactors

#[derive(Debug, PartialEq, Clone)]
struct Mail(String);

struct Mailer;

impl Reactor for Mailer {
    const NAME: &'static str = "mailer";
    type Event = Sales;
    type Effect = Mail;
    type Error = Refused;
    fn react(&mut self, event: Sales, _: &RecordedEvent) -> Result<Vec<Mail>, Refused> {
        Ok(match event {
            Sales::Added(added) => vec![Mail(added.sku)],
            Sales::CheckedOut(_) => vec![],
        })
    }
}

/// Sends mail, failing for a SKU until told to stop failing, a given number of times.
#[derive(Default)]
struct Outbox {
    sent: Mutex<Vec<String>>,
    failures: Mutex<HashMap<String, u32>>,
    tries: AtomicU32,
}

impl Perform<Mail> for Arc<Outbox> {
    type Error = Refused;
    async fn perform(&self, mail: Mail, _: &RecordedEvent) -> Result<(), Refused> {
        self.tries.fetch_add(1, Ordering::SeqCst);
        let mut failures = self.failures.lock().unwrap();
        if let Some(left) = failures.get_mut(&mail.0).filter(|n| **n > 0) {
            *left -= 1;
            return Err(Refused(mail.0));
        }
        self.sent.lock().unwrap().push(mail.0);
        Ok(())
    }
}

fn quick() -> Retry {
    Retry {
        attempts: 3,
        delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    }
}

#[tokio::test]
async fn a_reactor_retries_then_succeeds() {
    let store = MemoryStore::new();
    add(&store, &cart(1), "flaky").await;
    let outbox = Arc::new(Outbox::default());
    outbox.failures.lock().unwrap().insert("flaky".into(), 2);
    let reactions = Reactions::new(Mailer, Arc::clone(&outbox), store.clone()).retry(quick());
    let mut runner = Runner::new(store.clone(), reactions);
    runner.catch_up().await.unwrap();
    assert_eq!(*outbox.sent.lock().unwrap(), ["flaky"]);
    assert_eq!(outbox.tries.load(Ordering::SeqCst), 3);
    assert!(store.parked("mailer").await.unwrap().is_empty());
    assert!(store.load_checkpoint("mailer").await.unwrap().is_some());
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_parked_the_reactor_goes_on_and_a_replay_unparks_it() {
    let store = MemoryStore::new();
    add(&store, &cart(1), "broken").await;
    add(&store, &cart(2), "fine").await;
    let outbox = Arc::new(Outbox::default());
    outbox.failures.lock().unwrap().insert("broken".into(), 5);
    let reactions = Reactions::new(Mailer, Arc::clone(&outbox), store.clone()).retry(quick());
    let mut runner = Runner::new(store.clone(), reactions);
    runner.catch_up().await.unwrap();
    assert_eq!(*outbox.sent.lock().unwrap(), ["fine"], "not blocked");

    let parked = runner.consumer().parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].attempts, 3);
    assert!(
        parked[0].error.contains("refused broken"),
        "{}",
        parked[0].error
    );
    assert_eq!(parked[0].event.stream, cart(1));

    // Still failing: it stays parked, with one more attempt counted.
    let mut reactions = runner.into_consumer();
    let replayed = reactions.replay_parked().await.unwrap();
    assert_eq!(replayed.failed, [parked[0].event.event_id]);
    assert_eq!(reactions.parked().await.unwrap()[0].attempts, 4);

    // Fixed (its failures run out): the replay sends it and unparks it.
    outbox.failures.lock().unwrap().clear();
    let replayed = reactions.replay_parked().await.unwrap();
    assert_eq!(replayed.succeeded, [parked[0].event.event_id]);
    assert!(reactions.parked().await.unwrap().is_empty());
    assert_eq!(*outbox.sent.lock().unwrap(), ["fine", "broken"]);
}

#[tokio::test]
async fn an_undecodable_event_is_parked_at_once() {
    let store = MemoryStore::new();
    let stream = cart(1);
    store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::raw("cart.item_added", 1, r#"{"sku":7}"#)],
        )
        .await
        .unwrap();
    let outbox = Arc::new(Outbox::default());
    let reactions = Reactions::new(Mailer, Arc::clone(&outbox), store.clone()).retry(quick());
    let mut runner = Runner::new(store.clone(), reactions);
    runner.catch_up().await.unwrap();
    let parked = store.parked("mailer").await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].attempts, 1);
    assert!(parked[0].error.contains("cart-1"), "{}", parked[0].error);
}

#[tokio::test]
async fn an_in_process_reactor_keeps_no_stored_checkpoint_and_starts_at_the_end() {
    let store = MemoryStore::new();
    add(&store, &cart(1), "before").await;
    let outbox = Arc::new(Outbox::default());
    let reactions = Reactions::new(Mailer, Arc::clone(&outbox), store.clone()).in_process();
    let mut runner = Runner::new(store.clone(), reactions).start(Start::End);
    runner.catch_up().await.unwrap();
    add(&store, &cart(1), "after").await;
    runner.catch_up().await.unwrap();
    assert_eq!(*outbox.sent.lock().unwrap(), ["after"]);
    assert_eq!(store.load_checkpoint("mailer").await.unwrap(), None);
}

/// The memory store, failing its next `failures` log reads and lease requests, as a database
/// does while it restarts.
#[derive(Clone)]
struct Restarting {
    inner: MemoryStore,
    failures: Arc<AtomicU32>,
}

impl Restarting {
    fn fail(&self) -> Result<(), eventsrc::StoreError> {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(eventsrc::StoreError::backend(std::io::Error::other(
                "the database is restarting",
            )));
        }
        Ok(())
    }
}

impl EventStore for Restarting {
    fn tenant(&self) -> &eventsrc::Tenant {
        self.inner.tenant()
    }
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<eventsrc::store::AppendResult, eventsrc::StoreError> {
        self.inner.append(stream, expected, events).await
    }
    async fn append_streams(
        &self,
        appends: Vec<eventsrc::store::StreamAppend>,
    ) -> Result<Vec<eventsrc::store::AppendResult>, eventsrc::StoreError> {
        self.inner.append_streams(appends).await
    }
    async fn read_events(
        &self,
        ids: &[eventsrc::EventId],
    ) -> Result<Vec<RecordedEvent>, eventsrc::StoreError> {
        self.inner.read_events(ids).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: eventsrc::store::ReadStream,
    ) -> Result<Vec<RecordedEvent>, eventsrc::StoreError> {
        self.inner.read_stream(stream, read).await
    }
    async fn read_all(
        &self,
        read: eventsrc::store::ReadAll,
    ) -> Result<Vec<RecordedEvent>, eventsrc::StoreError> {
        self.fail()?;
        self.inner.read_all(read).await
    }
    async fn stream_version(
        &self,
        stream: &StreamId,
    ) -> Result<eventsrc::StreamVersion, eventsrc::StoreError> {
        self.inner.stream_version(stream).await
    }
    async fn head_position(&self) -> Result<GlobalPosition, eventsrc::StoreError> {
        self.inner.head_position().await
    }
}

impl eventsrc::backend::Leases for Restarting {
    async fn try_acquire(
        &self,
        name: &str,
    ) -> Result<Option<eventsrc::backend::Lease>, eventsrc::StoreError> {
        self.fail()?;
        self.inner.try_acquire(name).await
    }
}

#[tokio::test]
async fn a_leader_rides_out_a_store_that_fails_for_a_while() {
    let store = Restarting {
        inner: MemoryStore::new(),
        failures: Arc::new(AtomicU32::new(0)),
    };
    let target = InMemory::new(Applied::default());
    let model = target.model();
    let runner = Runner::new(store.clone(), target).poll_interval(Duration::from_millis(5));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let leases = store.clone();
    let task = tokio::spawn(async move {
        runner
            .run_as_leader(&leases, async {
                stopped.await.ok();
            })
            .await
    });
    add(&store.inner, &cart(1), "before").await;
    eventually(|| model.read().skus.len() == 1).await;
    // The database goes away for a few reads and lease requests, then comes back.
    store.failures.store(6, Ordering::SeqCst);
    add(&store.inner, &cart(2), "during").await;
    eventually(|| store.failures.load(Ordering::SeqCst) == 0).await;
    add(&store.inner, &cart(3), "after").await;
    eventually(|| model.read().skus.len() == 3).await;
    assert!(!task.is_finished(), "the leader keeps running");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(model.read().skus, ["before", "during", "after"]);
}

/// A consumer whose batches wait for a go-ahead, to stop a runner in the middle of one.
struct Gated {
    entered: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Notify>,
    checkpoint: Option<GlobalPosition>,
}

impl Consumer for Gated {
    fn name(&self) -> &str {
        "gated"
    }
    fn event_types(&self) -> Option<Vec<&'static str>> {
        None
    }
    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        Ok(self.checkpoint)
    }
    async fn handle(
        &mut self,
        _: Option<GlobalPosition>,
        _: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        self.entered.notify_one();
        self.go.notified().await;
        self.checkpoint = Some(through);
        Ok(())
    }
}

#[tokio::test]
async fn a_stop_during_a_batch_finishes_the_batch_first() {
    let store = MemoryStore::new();
    let position = add(&store, &cart(1), "laptop").await;
    let (entered, go) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let consumer = Gated {
        entered: Arc::clone(&entered),
        go: Arc::clone(&go),
        checkpoint: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(Runner::new(store, consumer).run(async {
        stopped.await.ok();
    }));
    entered.notified().await;
    stop.send(()).unwrap();
    go.notify_one();
    let consumer = tokio::time::timeout(DEADLINE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        consumer.checkpoint,
        Some(position),
        "the batch was finished"
    );
}
