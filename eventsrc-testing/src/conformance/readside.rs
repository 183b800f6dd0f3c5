//! The read side's storage: subscriptions from a position to live, checkpoints that fence
//! stale runners, parked events, and leases that give each consumer one leader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use eventsrc_core::Subscription;
use eventsrc_core::backend::ParkedEvent;
use eventsrc_core::runner::{Perform, Retry};
use eventsrc_core::subscription::Start;
use eventsrc_core::{Checkpointed, Reactions, RunError, Runner};
use eventsrc_core::{
    DecodeError, EncodeError, Event, EventId, EventStore, ExpectedVersion, RecordedEvent, Timestamp,
};
use eventsrc_core::{Projection, Reactor};

use super::StoreUnderTest;
use super::sample::{self, append, fresh_tenant, head, whole_log};
use crate::eventually;

/// Long enough for any backend on a loaded machine; conditions are waited on, never slept for.
const DEADLINE: Duration = Duration::from_secs(20);
/// Runners look at the log this often when no signal wakes them.
const POLL: Duration = Duration::from_millis(20);

/// Any stored event, by type name only: the suite's consumers read whatever the cases append.
#[derive(Debug)]
struct Any {
    event_type: String,
}

impl Event for Any {
    fn event_type(&self) -> &'static str {
        "any"
    }
    fn schema_version(&self) -> u32 {
        1
    }
    fn encode(&self) -> Result<String, EncodeError> {
        Ok("{}".to_owned())
    }
    fn decode(event_type: &str, _: u32, _: &str) -> Result<Self, DecodeError> {
        Ok(Self {
            event_type: event_type.to_owned(),
        })
    }
}

/// Counts applies per event id, shared by every node of a case: exactly once shows as ones.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<HashMap<EventId, u32>>>);

impl Counts {
    fn snapshot(&self) -> HashMap<EventId, u32> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn assert_once_each(&self, events: &[RecordedEvent], context: &str) {
        let counts = self.snapshot();
        for event in events {
            assert_eq!(
                counts.get(&event.event_id),
                Some(&1),
                "{context}: event {} (`{}` version {}) applied {} time(s)",
                event.event_id,
                event.stream,
                event.stream_version,
                counts.get(&event.event_id).copied().unwrap_or(0)
            );
        }
        assert_eq!(counts.len(), events.len(), "{context}: events applied");
    }
}

#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the suite's consumer refused `{}`", self.0)
    }
}

impl std::error::Error for Refused {}

impl Projection for Counts {
    const NAME: &'static str = "conformance-counts";
    type Event = Any;
    type Error = Refused;
    fn apply(&mut self, _: Any, record: &RecordedEvent) -> Result<(), Refused> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry(record.event_id).or_default() += 1;
        Ok(())
    }
}

async fn append_notes<S: EventStore>(store: &S, streams: usize, each: usize) {
    for s in 0..streams {
        let stream = sample::stream(&format!("note-{s}"));
        append(
            store,
            &stream,
            ExpectedVersion::Any,
            sample::events("Noted", each),
        )
        .await;
    }
}

async fn until_caught_up<S: EventStore>(subscription: &mut Subscription<S>) -> Vec<RecordedEvent> {
    let mut seen = Vec::new();
    loop {
        let batch = tokio::time::timeout(DEADLINE, subscription.next_batch())
            .await
            .expect("a batch within the deadline")
            .expect("next_batch");
        seen.extend(batch.events);
        if batch.caught_up {
            return seen;
        }
    }
}

/// A subscription reads the whole log in bounded batches, in order, then delivers an append
/// made while it waits.
pub async fn a_subscription_catches_up_then_delivers_live_appends<S: StoreUnderTest>(store: S) {
    append_notes(&store, 3, 4).await;
    let mut subscription = Subscription::new(store.clone(), Start::Beginning)
        .batch_size(5)
        .poll_interval(POLL);
    let caught_up = until_caught_up(&mut subscription).await;
    assert_eq!(caught_up, whole_log(&store).await, "the catch-up");

    let writer = store.clone();
    let appended = tokio::spawn(async move {
        let stream = sample::stream("note-live");
        append(
            &writer,
            &stream,
            ExpectedVersion::Any,
            sample::events("Noted", 1),
        )
        .await
    });
    let batch = tokio::time::timeout(DEADLINE, subscription.next_batch())
        .await
        .expect("the live append within the deadline")
        .expect("next_batch");
    let appended = appended.await.expect("the writer task");
    assert_eq!(batch.events.len(), 1, "the live batch");
    assert_eq!(
        batch.through, appended.position,
        "the live batch's position"
    );
}

/// The append signal moves after an append, so live readers need not poll.
pub async fn the_append_signal_moves_after_an_append<S: StoreUnderTest>(store: S) {
    let mut signal = store
        .append_signal()
        .await
        .expect("append_signal")
        .expect("this backend declares an append signal");
    signal.borrow_and_update();
    append_notes(&store, 1, 1).await;
    tokio::time::timeout(DEADLINE, signal.changed())
        .await
        .expect("the signal within the deadline")
        .expect("the signal's sender is alive");
}

/// A subscription from the end skips what was stored before it first read.
pub async fn a_subscription_from_the_end_sees_only_later_events<S: StoreUnderTest>(store: S) {
    append_notes(&store, 1, 3).await;
    let mut subscription = Subscription::new(store.clone(), Start::End).poll_interval(POLL);
    let first = subscription.poll_batch().await.expect("poll_batch");
    assert!(first.events.is_empty(), "nothing before the end");
    let later = append(
        &store,
        &sample::stream("note-later"),
        ExpectedVersion::Any,
        sample::events("Later", 1),
    )
    .await;
    let batch = tokio::time::timeout(DEADLINE, subscription.next_batch())
        .await
        .expect("a batch within the deadline")
        .expect("next_batch");
    assert_eq!(batch.events.len(), 1, "only the later event");
    assert_eq!(batch.events[0].global_position, later.position);
}

/// A filtered subscription delivers only what matches, yet its position keeps up with the log.
pub async fn a_filtered_subscription_keeps_up_with_the_log<S: StoreUnderTest>(store: S) {
    let lead = sample::stream("lead-1");
    append(
        &store,
        &lead,
        ExpectedVersion::Any,
        sample::events("Opened", 1),
    )
    .await;
    append_notes(&store, 2, 2).await;
    let end = head(&store).await;
    let mut subscription = Subscription::new(store.clone(), Start::Beginning)
        .event_types(["Opened"])
        .categories(["lead"])
        .poll_interval(POLL);
    let delivered = until_caught_up(&mut subscription).await;
    assert_eq!(delivered.len(), 1, "only the lead's event");
    assert_eq!(
        subscription.position(),
        Some(end),
        "position after the skipped notes"
    );
    let lag = subscription.lag().await.expect("lag");
    assert_eq!(lag.events, 0, "no lag once caught up: {lag:?}");
}

/// A runner whose checkpoint lives in the store resumes from it after a restart and applies
/// nothing twice.
pub async fn a_checkpointed_runner_resumes_without_applying_twice<S: StoreUnderTest>(store: S) {
    append_notes(&store, 2, 3).await;
    let counts = Counts::default();
    let mut first = Runner::new(
        store.clone(),
        Checkpointed::new(counts.clone(), store.clone()),
    )
    .batch_size(4);
    first.catch_up().await.expect("the first run");
    assert_eq!(
        store
            .load_checkpoint(Counts::NAME)
            .await
            .expect("checkpoint"),
        Some(head(&store).await),
        "the checkpoint after the first run"
    );
    append_notes(&store, 1, 2).await;
    let mut second = Runner::new(
        store.clone(),
        Checkpointed::new(counts.clone(), store.clone()),
    );
    second.catch_up().await.expect("the run after the restart");
    counts.assert_once_each(&whole_log(&store).await, "after a restart");
}

/// A runner that read its checkpoint before another runner moved it is refused its batch.
pub async fn a_runner_behind_a_moved_checkpoint_is_fenced<S: StoreUnderTest>(store: S) {
    append_notes(&store, 1, 2).await;
    let counts = Counts::default();
    let mut stale = Runner::new(
        store.clone(),
        Checkpointed::new(counts.clone(), store.clone()),
    );
    stale.lag().await.expect("lag: reads the checkpoint");
    let mut other = Runner::new(
        store.clone(),
        Checkpointed::new(counts.clone(), store.clone()),
    );
    other.catch_up().await.expect("the other runner");
    let error = stale.step().await.expect_err("the stale runner's batch");
    assert!(
        matches!(error, RunError::Fenced { .. }),
        "expected Fenced, got {error}"
    );
    counts.assert_once_each(&whole_log(&store).await, "after the fenced batch");
}

/// Parked events are listed per reactor in log order, replaced by id, and removed by id; each
/// comes back exactly as the log holds it.
pub async fn parked_events_are_listed_replaced_and_removed<S: StoreUnderTest>(store: S) {
    append_notes(&store, 2, 2).await;
    let log = whole_log(&store).await;
    let parked = |event: &RecordedEvent, reactor: &str, attempts: u32| ParkedEvent {
        reactor: reactor.to_owned(),
        event: event.clone(),
        error: format!("failed {attempts} time(s)"),
        attempts,
        parked_at: Timestamp::from_micros(1_700_000_000_000_000 + i64::from(attempts)),
    };
    // Parked out of order, and one for another reactor.
    for event in [&log[3], &log[0], &log[2]] {
        store.park(parked(event, "mailer", 1)).await.expect("park");
    }
    store
        .park(parked(&log[1], "billing", 1))
        .await
        .expect("park");
    let listed = store.parked("mailer").await.expect("parked");
    let expected: Vec<ParkedEvent> = [&log[0], &log[2], &log[3]]
        .into_iter()
        .map(|e| parked(e, "mailer", 1))
        .collect();
    assert_eq!(listed, expected, "mailer's parked events, in log order");

    store
        .park(parked(&log[2], "mailer", 4))
        .await
        .expect("park again");
    let listed = store.parked("mailer").await.expect("parked");
    assert_eq!(listed.len(), 3, "parking again replaces");
    assert_eq!(
        listed[1],
        parked(&log[2], "mailer", 4),
        "the replaced entry"
    );

    assert!(
        store
            .unpark("mailer", log[0].event_id)
            .await
            .expect("unpark")
    );
    assert!(
        !store
            .unpark("mailer", log[0].event_id)
            .await
            .expect("unpark"),
        "twice"
    );
    assert!(
        !store
            .unpark("mailer", log[1].event_id)
            .await
            .expect("unpark"),
        "billing's"
    );
    assert_eq!(store.parked("mailer").await.expect("parked").len(), 2);
    assert_eq!(store.parked("billing").await.expect("parked").len(), 1);
    assert!(store.parked("nobody").await.expect("parked").is_empty());
}

/// Another tenant sees none of a tenant's parked events.
pub async fn parked_events_belong_to_their_tenant<S: StoreUnderTest>(store: S) {
    append_notes(&store, 1, 1).await;
    let log = whole_log(&store).await;
    let entry = ParkedEvent {
        reactor: "mailer".to_owned(),
        event: log[0].clone(),
        error: "down".to_owned(),
        attempts: 1,
        parked_at: Timestamp::from_micros(1_700_000_000_000_000),
    };
    store.park(entry).await.expect("park");
    let other = store.with_tenant(fresh_tenant("parked"));
    assert!(other.parked("mailer").await.expect("parked").is_empty());
    assert!(
        !other
            .unpark("mailer", log[0].event_id)
            .await
            .expect("unpark")
    );
    assert_eq!(store.parked("mailer").await.expect("parked").len(), 1);
}

struct Echo;

impl Reactor for Echo {
    const NAME: &'static str = "conformance-echo";
    type Event = Any;
    type Effect = String;
    type Error = Refused;
    fn react(&mut self, event: Any, _: &RecordedEvent) -> Result<Vec<String>, Refused> {
        Ok(vec![event.event_type])
    }
}

/// Performs effects, refusing those named in `failing`.
#[derive(Clone, Default)]
struct Flaky {
    failing: Arc<Mutex<Vec<String>>>,
    done: Arc<Mutex<Vec<String>>>,
}

impl Perform<String> for Flaky {
    type Error = Refused;
    async fn perform(&self, effect: String, _: &RecordedEvent) -> Result<(), Refused> {
        if self
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&effect)
        {
            return Err(Refused(effect));
        }
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(effect);
        Ok(())
    }
}

/// A reactor parks an event that keeps failing, goes on with the next, and unparks it when a
/// replay succeeds; its checkpoint and parked list are in the store.
pub async fn a_reactor_parks_what_keeps_failing_and_replays_it<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    append(
        &store,
        &s,
        ExpectedVersion::Any,
        sample::events("Broken", 1),
    )
    .await;
    append(&store, &s, ExpectedVersion::Any, sample::events("Fine", 1)).await;
    let flaky = Flaky::default();
    flaky
        .failing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push("Broken".to_owned());
    let retry = Retry {
        attempts: 2,
        delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    };
    let reactions = Reactions::new(Echo, flaky.clone(), store.clone()).retry(retry);
    let mut runner = Runner::new(store.clone(), reactions);
    runner.catch_up().await.expect("the reactor's run");
    assert_eq!(
        *flaky.done.lock().unwrap_or_else(PoisonError::into_inner),
        ["Fine"]
    );
    assert_eq!(
        store.load_checkpoint(Echo::NAME).await.expect("checkpoint"),
        Some(head(&store).await),
        "the checkpoint moved past the parked event"
    );
    let parked = store.parked(Echo::NAME).await.expect("parked");
    let log = whole_log(&store).await;
    assert_eq!(parked.len(), 1, "one parked event");
    assert_eq!(
        parked[0].event, log[0],
        "the parked event, as the log holds it"
    );
    assert_eq!(parked[0].attempts, 2);
    assert!(
        parked[0].error.contains("refused `Broken`"),
        "{}",
        parked[0].error
    );

    flaky
        .failing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    let mut reactions = runner.into_consumer();
    let replayed = reactions.replay_parked().await.expect("replay");
    assert_eq!(replayed.succeeded, [log[0].event_id]);
    assert!(store.parked(Echo::NAME).await.expect("parked").is_empty());
}

/// A lease is held by one handle at a time; dropping it frees it for another.
pub async fn a_lease_is_exclusive_until_dropped<S: StoreUnderTest>(store: S) {
    let first = store.try_acquire("projector").await.expect("try_acquire");
    let first = first.expect("a free lease is granted");
    assert!(first.is_held());
    let other = store.clone();
    assert!(
        other
            .try_acquire("projector")
            .await
            .expect("try_acquire")
            .is_none(),
        "a held lease is refused"
    );
    let elsewhere = other.try_acquire("reactor").await.expect("try_acquire");
    assert!(elsewhere.is_some(), "another name is free");
    drop(first);
    // Some backends release asynchronously (a session closing): wait, with a deadline.
    let second = Arc::new(Mutex::new(None));
    eventually(DEADLINE, || {
        let other = other.clone();
        let second = Arc::clone(&second);
        async move {
            match other.try_acquire("projector").await {
                Ok(Some(lease)) => {
                    *second.lock().unwrap_or_else(PoisonError::into_inner) = Some(lease);
                    Ok(())
                }
                Ok(None) => Err("still held".to_owned()),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await;
}

/// Tenants have leases of their own.
pub async fn leases_belong_to_their_tenant<S: StoreUnderTest>(store: S) {
    let held = store.try_acquire("projector").await.expect("try_acquire");
    assert!(held.is_some());
    let other = store.with_tenant(fresh_tenant("leases"));
    let theirs = other.try_acquire("projector").await.expect("try_acquire");
    assert!(theirs.is_some(), "another tenant's lease of the same name");
}

/// Two runners compete for one consumer: only the lease holder applies; when it stops, the
/// other takes over, and every event is applied exactly once.
pub async fn a_follower_takes_over_when_the_leader_stops<S: StoreUnderTest>(store: S) {
    let counts = Counts::default();
    let node = |store: &S| {
        Runner::new(
            store.clone(),
            Checkpointed::new(counts.clone(), store.clone()),
        )
        .batch_size(3)
        .poll_interval(POLL)
    };
    let (stop_leader, leader_stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_follower, follower_stopped) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let (runner, leases) = (node(&store), store.clone());
        tokio::spawn(async move {
            runner
                .run_as_leader(&leases, async {
                    leader_stopped.await.ok();
                })
                .await
        })
    };
    append_notes(&store, 4, 3).await;
    let applied = |n: usize| {
        let counts = counts.clone();
        move || {
            let len = counts.snapshot().len();
            async move {
                if len >= n {
                    Ok(())
                } else {
                    Err(format!("{len} of {n} events applied"))
                }
            }
        }
    };
    eventually(DEADLINE, applied(12)).await;
    let follower = {
        let (runner, leases) = (node(&store), store.clone());
        tokio::spawn(async move {
            runner
                .run_as_leader(&leases, async {
                    follower_stopped.await.ok();
                })
                .await
        })
    };
    stop_leader.send(()).ok();
    leader
        .await
        .expect("the leader task")
        .expect("the leader's run");
    append_notes(&store, 4, 3).await;
    eventually(DEADLINE, applied(24)).await;
    stop_follower.send(()).ok();
    follower
        .await
        .expect("the follower task")
        .expect("the follower's run");
    counts.assert_once_each(&whole_log(&store).await, "after the takeover");
    let checkpoint = store
        .load_checkpoint(Counts::NAME)
        .await
        .expect("checkpoint");
    assert_eq!(checkpoint, Some(head(&store).await), "the checkpoint");
}
