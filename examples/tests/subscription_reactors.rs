//! Specs for the subscriptions' notification reactors: the dispatcher's decisions with
//! `ReactorFixture` (which event type sends which notification, and what it skips); then the
//! `Notifications` reactor run by a `Reactions` runner into the outbox, end to end on the memory
//! store and on SQLite: commands through a repository, exactly the expected messages, a restart and
//! a redelivery that send nothing twice, an outage that parks an event and a replay that sends it,
//! and the in-process, live and leader-elected ways to run it.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eventsrc::Reactor;
use eventsrc::Store;
use eventsrc::backend::ParkedStore;
use eventsrc::runner::{Replayed, Retry};
use eventsrc::subscription::Start;
use eventsrc::{
    CheckpointStore, Event, EventId, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent,
    Repository, StreamId,
};
use eventsrc::{Reactions, Runner};
use eventsrc_examples::cart::ItemAdded;
use eventsrc_examples::subscription::outbox::{MessageKind, Outbox, OutboxError};
use eventsrc_examples::subscription::reactors::{
    Notification, NotificationError, NotificationEvent, Notifications,
};
use eventsrc_examples::subscription::{
    Activate, Activated, Create, Created, Deactivate, Deactivated, SubscriptionId,
};
use eventsrc_testing::{ReactorFixture, eventually};

const ADA: SubscriptionId = SubscriptionId(12);
const BOB: SubscriptionId = SubscriptionId(13);
const CREATOR: &str = "creator@example.com";

fn created(email: &str, plan: &str) -> Created {
    Created {
        email: email.into(),
        plan: plan.into(),
    }
}

fn activated(key: &str) -> Activated {
    Activated {
        payment_key: key.into(),
    }
}

fn new_subscriber(subscription: SubscriptionId, email: &str, plan: &str) -> Notification {
    Notification::NewSubscriber {
        subscription,
        email: email.into(),
        plan: plan.into(),
    }
}

fn confirmation(subscription: SubscriptionId) -> Notification {
    Notification::SubscriptionConfirmation { subscription }
}

/// Retries that take milliseconds: three tries, then the event is parked.
fn quick() -> Retry {
    Retry {
        attempts: 3,
        delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    }
}

// --- the dispatcher ------------------------------------------------------------------------------

#[test]
fn a_created_subscription_notifies_the_creator_and_an_activated_one_confirms_it() {
    ReactorFixture::new(Notifications)
        .when("subscription-12", created("ada@example.com", "monthly"))
        .then_effects([new_subscriber(ADA, "ada@example.com", "monthly")])
        .when("subscription-12", activated("sub_66123"))
        .then_effects([confirmation(ADA)])
        .when("subscription-12", Deactivated {})
        .then_no_effects()
        // Each activation is confirmed, a reactivation too.
        .when("subscription-12", activated("sub_70001"))
        .then_effects([confirmation(ADA)])
        .when("subscription-13", activated("sub_80000"))
        .then_effects([confirmation(BOB)]);
}

#[test]
fn events_the_dispatcher_does_not_know_are_skipped() {
    ReactorFixture::new(Notifications)
        .given("subscription-12", [created("ada@example.com", "monthly")])
        .when("subscription-12", Deactivated {})
        .then_no_effects()
        .when(
            "cart-42",
            ItemAdded {
                sku: "laptop".into(),
                quantity: 1,
            },
        )
        .then_no_effects();
    // The runner does not even read them: it asks the store for these types only.
    assert_eq!(
        NotificationEvent::stored_types(),
        Some(vec!["subscription.created", "subscription.activated"])
    );
    assert_eq!(Notifications::NAME, "subscription_notifications");
}

#[test]
fn a_subscription_event_outside_a_subscription_stream_is_an_error_naming_the_stream() {
    fn not_a_subscription(stream: &str) -> impl FnOnce(&NotificationError) -> bool + '_ {
        move |error: &NotificationError| {
            let NotificationError::NotASubscription { stream: found } = error;
            found.as_str() == stream && error.to_string().contains("`subscription-<number>`")
        }
    }
    ReactorFixture::new(Notifications)
        .when("lead-7", activated("sub_66123"))
        .then_error_matching(not_a_subscription("lead-7"))
        .when("subscription-ada", created("ada@example.com", "monthly"))
        .then_error_matching(not_a_subscription("subscription-ada"));
}

// --- end to end ----------------------------------------------------------------------------------

/// What the end-to-end specs need of a store: events, and a reactor's checkpoint and parked
/// events.
trait ReactorStore: EventStore + CheckpointStore + ParkedStore + Clone + 'static {}

impl<S: EventStore + CheckpointStore + ParkedStore + Clone + 'static> ReactorStore for S {}

async fn sqlite() -> Store {
    Store::open("sqlite::memory:").await.unwrap()
}

/// A durable runner of the notifications into `outbox`, retrying quickly.
fn runner<S: ReactorStore>(
    store: &S,
    outbox: &Outbox<S>,
) -> Runner<S, Reactions<Notifications, Outbox<S>, S>> {
    let reactions = Reactions::new(Notifications, outbox.clone(), store.clone()).retry(quick());
    Runner::new(store.clone(), reactions)
}

/// Sends `command` and returns the ids of the events it appended.
async fn send<S, C>(repository: &Repository<S>, command: C) -> Vec<EventId>
where
    S: EventStore,
    C: eventsrc::AggregateCommand<Aggregate = eventsrc_examples::subscription::Subscription>,
    eventsrc_examples::subscription::Subscription: eventsrc::Handle<C>,
{
    let by_user = Metadata::new().with("user_id", 123);
    repository.send(command, by_user).await.unwrap().event_ids
}

fn create(subscription: SubscriptionId, email: &str, plan: &str) -> Create {
    Create {
        subscription,
        email: email.into(),
        plan: plan.into(),
    }
}

fn activate(subscription: SubscriptionId, key: &str) -> Activate {
    Activate {
        subscription,
        payment_key: key.into(),
    }
}

/// The outbox as (kind, subscription, recipient, subject) rows, in the order sent.
fn rows<S: EventStore>(outbox: &Outbox<S>) -> Vec<(MessageKind, SubscriptionId, String, String)> {
    outbox
        .messages()
        .into_iter()
        .map(|m| (m.kind, m.subscription, m.to, m.subject))
        .collect()
}

fn row(
    kind: MessageKind,
    subscription: SubscriptionId,
    to: &str,
    subject: &str,
) -> (MessageKind, SubscriptionId, String, String) {
    (kind, subscription, to.into(), subject.into())
}

fn welcome_ada() -> (MessageKind, SubscriptionId, String, String) {
    row(
        MessageKind::NewSubscriber,
        ADA,
        CREATOR,
        "New subscriber: ada@example.com on the monthly plan",
    )
}

fn welcome_bob() -> (MessageKind, SubscriptionId, String, String) {
    row(
        MessageKind::NewSubscriber,
        BOB,
        CREATOR,
        "New subscriber: bob@example.com on the yearly plan",
    )
}

fn confirm_ada() -> (MessageKind, SubscriptionId, String, String) {
    row(
        MessageKind::SubscriptionConfirmation,
        ADA,
        "ada@example.com",
        "Your monthly subscription is active",
    )
}

#[tokio::test]
async fn the_story_leaves_exactly_its_messages_in_the_outbox() {
    the_story_leaves_exactly_its_messages_in_the_outbox_on(MemoryStore::new()).await;
}

#[tokio::test]
async fn the_story_leaves_exactly_its_messages_in_the_outbox_on_sqlite() {
    the_story_leaves_exactly_its_messages_in_the_outbox_on(sqlite().await).await;
}

async fn the_story_leaves_exactly_its_messages_in_the_outbox_on<S: ReactorStore>(store: S) {
    let repository = Repository::new(store.clone());
    let ada_created = send(&repository, create(ADA, "ada@example.com", "monthly")).await;
    let ada_activated = send(&repository, activate(ADA, "sub_66123")).await;
    assert!(
        send(&repository, activate(ADA, "sub_66123"))
            .await
            .is_empty()
    );
    send(&repository, create(BOB, "bob@example.com", "yearly")).await;
    send(&repository, Deactivate { subscription: ADA }).await;
    let reactivated = send(&repository, activate(ADA, "sub_70001")).await;

    let outbox = Outbox::new(store.clone());
    let mut runner = runner(&store, &outbox);
    let progress = runner.catch_up().await.unwrap();

    assert_eq!(
        rows(&outbox),
        [welcome_ada(), confirm_ada(), welcome_bob(), confirm_ada()]
    );
    assert_eq!(progress.handled, 4, "the deactivation is not read at all");
    // Each message is keyed by the event it was sent for.
    for (event, kind) in [
        (&ada_created, MessageKind::NewSubscriber),
        (&ada_activated, MessageKind::SubscriptionConfirmation),
        (&reactivated, MessageKind::SubscriptionConfirmation),
    ] {
        let sent: Vec<MessageKind> = outbox.for_event(event[0]).iter().map(|m| m.kind).collect();
        assert_eq!(sent, [kind]);
    }
    assert_eq!(outbox.to("ada@example.com").len(), 2);
    assert_eq!(outbox.about(BOB).len(), 1);
    assert_eq!((outbox.repeats(), outbox.refusals()), (0, 0));
    let head = store.head_position().await.unwrap();
    assert_eq!(
        store.load_checkpoint(Notifications::NAME).await.unwrap(),
        Some(head)
    );
    assert!(runner.consumer().parked().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restarted_runner_sends_nothing_twice() {
    a_restarted_runner_sends_nothing_twice_on(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_restarted_runner_sends_nothing_twice_on_sqlite() {
    a_restarted_runner_sends_nothing_twice_on(sqlite().await).await;
}

async fn a_restarted_runner_sends_nothing_twice_on<S: ReactorStore>(store: S) {
    let repository = Repository::new(store.clone());
    send(&repository, create(ADA, "ada@example.com", "monthly")).await;
    send(&repository, activate(ADA, "sub_66123")).await;
    let outbox = Outbox::new(store.clone());
    runner(&store, &outbox).catch_up().await.unwrap();
    assert_eq!(outbox.len(), 2);

    // A new process: a new runner over the same store reads the stored checkpoint.
    let mut restarted = runner(&store, &outbox);
    restarted.catch_up().await.unwrap();
    assert_eq!(rows(&outbox), [welcome_ada(), confirm_ada()]);
    assert_eq!(
        outbox.repeats(),
        0,
        "nothing before the checkpoint is read again"
    );

    send(&repository, create(BOB, "bob@example.com", "yearly")).await;
    runner(&store, &outbox).catch_up().await.unwrap();
    assert_eq!(rows(&outbox), [welcome_ada(), confirm_ada(), welcome_bob()]);
}

#[tokio::test]
async fn a_repeated_delivery_finds_its_message_in_the_outbox_and_sends_nothing() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    send(&repository, create(ADA, "ada@example.com", "monthly")).await;
    send(&repository, activate(ADA, "sub_66123")).await;
    let outbox = Outbox::new(store.clone());
    runner(&store, &outbox).catch_up().await.unwrap();

    // At least once: as after a crash between sending and saving the checkpoint, every event
    // comes again (here: a runner with no checkpoint, from the beginning).
    let again = Reactions::new(Notifications, outbox.clone(), store.clone()).in_process();
    Runner::new(store.clone(), again)
        .start(Start::Beginning)
        .catch_up()
        .await
        .unwrap();
    assert_eq!(rows(&outbox), [welcome_ada(), confirm_ada()]);
    assert_eq!(outbox.repeats(), 2);
}

#[tokio::test]
async fn an_outage_parks_the_event_the_reactor_goes_on_and_a_replay_sends_it() {
    an_outage_parks_the_event_the_reactor_goes_on_and_a_replay_sends_it_on(MemoryStore::new())
        .await;
}

#[tokio::test]
async fn an_outage_parks_the_event_the_reactor_goes_on_and_a_replay_sends_it_on_sqlite() {
    an_outage_parks_the_event_the_reactor_goes_on_and_a_replay_sends_it_on(sqlite().await).await;
}

async fn an_outage_parks_the_event_the_reactor_goes_on_and_a_replay_sends_it_on<S: ReactorStore>(
    store: S,
) {
    let repository = Repository::new(store.clone());
    let outbox = Outbox::new(store.clone());
    let mut runner = runner(&store, &outbox);
    send(&repository, create(ADA, "ada@example.com", "monthly")).await;
    runner.catch_up().await.unwrap();

    // The provider goes down: the activation is tried three times, then parked with its error.
    outbox.begin_outage();
    let activation = send(&repository, activate(ADA, "sub_66123")).await[0];
    runner.catch_up().await.unwrap();
    assert_eq!(rows(&outbox), [welcome_ada()]);
    assert_eq!(outbox.refusals(), 3);
    let parked = runner.consumer().parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    let parked = &parked[0];
    assert_eq!(
        (parked.event.event_id, parked.attempts),
        (activation, quick().attempts)
    );
    assert_eq!(parked.reactor, Notifications::NAME);
    assert!(
        parked.error.contains(
            "the mail provider is down: `subscription_confirmation` for subscription 12 not sent"
        ),
        "{}",
        parked.error
    );
    // The checkpoint went past it.
    assert_eq!(
        store.load_checkpoint(Notifications::NAME).await.unwrap(),
        Some(store.head_position().await.unwrap())
    );

    // A replay during the outage fails again: still parked, one more attempt counted.
    let mut reactions = runner.into_consumer();
    let replayed = reactions.replay_parked().await.unwrap();
    assert_eq!(replayed.failed, [activation]);
    assert_eq!(reactions.parked().await.unwrap()[0].attempts, 4);

    // The provider is back: later events go out at once; the parked one waits for a replay.
    outbox.end_outage();
    let mut runner = Runner::new(store.clone(), reactions);
    send(&repository, create(BOB, "bob@example.com", "yearly")).await;
    runner.catch_up().await.unwrap();
    assert_eq!(rows(&outbox), [welcome_ada(), welcome_bob()]);
    assert_eq!(store.parked(Notifications::NAME).await.unwrap().len(), 1);

    let mut reactions = runner.into_consumer();
    let replayed = reactions.replay_parked().await.unwrap();
    assert_eq!(
        replayed,
        Replayed {
            succeeded: vec![activation],
            failed: vec![]
        }
    );
    assert!(reactions.parked().await.unwrap().is_empty());
    assert_eq!(rows(&outbox), [welcome_ada(), welcome_bob(), confirm_ada()]);
    assert_eq!(
        reactions.replay_parked().await.unwrap(),
        Replayed::default()
    );
}

#[tokio::test]
async fn a_blip_shorter_than_the_retries_is_ridden_out() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    send(&repository, create(ADA, "ada@example.com", "monthly")).await;
    let outbox = Outbox::new(store.clone());
    outbox.fail_next(2);
    assert!(outbox.is_down());
    let mut runner = runner(&store, &outbox);
    runner.catch_up().await.unwrap();
    assert_eq!(rows(&outbox), [welcome_ada()]);
    assert_eq!(outbox.refusals(), 2);
    assert!(!outbox.is_down());
    assert!(runner.consumer().parked().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_confirmation_for_a_subscription_that_was_never_created_is_parked() {
    let store = MemoryStore::new();
    // An activation without a `Created` before it: only a raw append can store that.
    let stream = StreamId::new("subscription", 99).unwrap();
    let event = NewEvent::from_event(&activated("sub_1"), Metadata::new()).unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let outbox = Outbox::new(store.clone());
    let mut runner = runner(&store, &outbox);
    runner.catch_up().await.unwrap();
    assert!(outbox.is_empty());
    let parked = store.parked(Notifications::NAME).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].error.contains(
            "subscription 99 has no e-mail address to confirm it to: it was never created"
        ),
        "{}",
        parked[0].error
    );
}

#[test]
fn outbox_errors_say_what_was_not_sent() {
    let down = OutboxError::ProviderDown {
        kind: MessageKind::NewSubscriber,
        subscription: BOB,
    };
    assert_eq!(
        down.to_string(),
        "the mail provider is down: `new_subscriber` for subscription 13 not sent"
    );
}

// --- in process, live, leader --------------------------------------------------------------------

#[tokio::test]
async fn an_in_process_runner_from_the_end_notifies_only_what_happens_after_it_starts() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    send(&repository, create(ADA, "ada@example.com", "monthly")).await;
    let outbox = Outbox::new(store.clone()).with_creator("ops@example.com");
    let reactions = Reactions::new(Notifications, outbox.clone(), store.clone())
        .retry(quick())
        .in_process();
    let mut runner = Runner::new(store.clone(), reactions).start(Start::End);
    runner.catch_up().await.unwrap();
    assert!(outbox.is_empty());

    send(&repository, activate(ADA, "sub_66123")).await;
    send(&repository, create(BOB, "bob@example.com", "yearly")).await;
    runner.catch_up().await.unwrap();
    assert_eq!(
        rows(&outbox),
        [
            confirm_ada(),
            row(
                MessageKind::NewSubscriber,
                BOB,
                "ops@example.com",
                "New subscriber: bob@example.com on the yearly plan"
            ),
        ]
    );
    assert_eq!(
        store.load_checkpoint(Notifications::NAME).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_live_runner_notifies_as_commands_commit() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    let outbox = Outbox::new(store.clone());
    let runner = runner(&store, &outbox).poll_interval(Duration::from_millis(5));
    let progress = runner.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        stopped.await.ok();
    }));

    send(&repository, create(ADA, "ada@example.com", "monthly")).await;
    let committed = repository
        .send(activate(ADA, "sub_66123"), Metadata::new())
        .await
        .unwrap();
    // Read-your-writes: wait until the reactor has handled the activation.
    let position = committed.global_position.unwrap();
    progress
        .wait_for(position, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(rows(&outbox), [welcome_ada(), confirm_ada()]);

    send(&repository, create(BOB, "bob@example.com", "yearly")).await;
    eventually(Duration::from_secs(10), || async {
        match outbox.len() {
            3 => Ok(()),
            n => Err(format!("{n} messages so far")),
        }
    })
    .await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_lease_holder_notifies_on_sqlite_and_a_second_node_waits() {
    let store = sqlite().await;
    let repository = Repository::new(store.clone());
    let outbox = Outbox::new(store.clone());
    let node = || runner(&store, &outbox).poll_interval(Duration::from_millis(5));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (leader, follower) = (node(), node());
    let leases = store.clone();
    let task = tokio::spawn(async move {
        let second = follower.run_as_leader(&leases, std::future::pending());
        let first = leader.run_as_leader(&leases, async {
            stopped.await.ok();
        });
        // The first to take the lease runs; the other waits for it until the test stops.
        tokio::select! {
            result = first => result.map(|_| ()),
            result = second => result.map(|_| ()),
        }
    });

    send(&repository, create(ADA, "ada@example.com", "monthly")).await;
    send(&repository, activate(ADA, "sub_66123")).await;
    eventually(Duration::from_secs(10), || async {
        match outbox.len() {
            2 => Ok(()),
            n => Err(format!("{n} messages so far")),
        }
    })
    .await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(rows(&outbox), [welcome_ada(), confirm_ada()]);
    assert_eq!(outbox.repeats(), 0, "only one node reacted");
}
