//! A subscriptions service, told through `eventsrc::Repository`: subscription 12 is created,
//! activated with a payment key (twice, as a provider's notification may arrive twice: the
//! second is a no-op), refused a second key, deactivated and activated again; then two tables,
//! the stored events and the subscription row.
//!
//! The notification reactors run along: after the first commands, the `subscription_notifications`
//! reactor catches up and writes a new-subscriber notification and a confirmation to the outbox.
//! Then the mail provider goes down: the reactivation's confirmation is tried three times and
//! parked with its error, and once the provider is back a replay sends it. The outbox is printed
//! before the tables. The reactor's checkpoint and parked events are kept in the store, so a run on
//! a store that already holds the story notifies only what this run appended.
//!
//! The store is `memory:` (nothing kept) unless `--store <url>` or the environment variable
//! `EVENTSRC_STORE` names another (the flag wins), e.g. `sqlite://eventsrc-demo.db`, the leads
//! demo's file, or `postgres://user:password@host/database` (the schema `eventsrc`, or the one
//! `?schema=name` names; the password is never printed). On a store that already holds
//! subscription 12 the commands are decided against what is there (some turn into no-ops or
//! refusals), and the tables show every run's events, each stamped with the story's dates in
//! February and April 2018 (on PostgreSQL, with the server's clock: today).
//!
//! With `--nats <url>` (or the environment variable `EVENTSRC_NATS_URL`), a NATS server with
//! JetStream, the notifications go through NATS: a relay publishes the log to a JetStream
//! stream made for the run (and deleted at its end), and the reactor reads the events from it
//! through a durable consumer, as a notifications service of its own would. The outbox and the
//! tables come out the same.
//!
//! Run with: `cargo run -p eventsrc-examples --bin subscription [-- --store <url>] [--nats <url>]`

use std::error::Error;
use std::fmt::Debug;
use std::process::ExitCode;
use std::time::Duration;

use eventsrc::backend::ParkedEvent;
use eventsrc::nats::{Inbound, JetStream};
use eventsrc::relay::{Relay, Subjects};
use eventsrc::runner::Retry;
use eventsrc::store::ReadStream;
use eventsrc::time::ManualClock;
use eventsrc::{Aggregate, AggregateCommand, EventStore, Handle, Metadata, Repository, Timestamp};
use eventsrc::{MemoryStore, Reactor, Store};
use eventsrc::{Reactions, Runner};
use eventsrc_examples::narrate::{note_earlier_run, print_registered, send_and_tell};
use eventsrc_examples::store::{Demo, Invocation, exit_code};
use eventsrc_examples::subscription::outbox::{Message, Outbox};
use eventsrc_examples::subscription::reactors::Notifications;
use eventsrc_examples::subscription::{Activate, Create, Deactivate, Subscription, SubscriptionId};

/// 2018-02-01T10:00:00Z, in seconds since the Unix epoch: the day the demo's subscription 12 is
/// created.
const FEBRUARY_2018: i64 = 1_517_479_200;

/// The store when neither `--store` nor `EVENTSRC_STORE` names one.
const DEFAULT_STORE: &str = "memory:";

/// The subscription the story is about.
const ID: SubscriptionId = SubscriptionId(12);

/// Three tries, 50 ms and 100 ms apart, then the event is parked: short enough for a demo.
const RETRY: Retry = Retry {
    attempts: 3,
    delay: Duration::from_millis(50),
    max_delay: Duration::from_secs(1),
};

/// The notifications reactor, run into the outbox, its checkpoint kept in the store.
type NotificationRunner = Runner<Store, Reactions<Notifications, Outbox<Store>, Store>>;

/// The reactor fed through NATS: its checkpoint (a JetStream stream sequence) and parked events
/// are kept in process memory, since the JetStream stream is the run's own.
type NatsReactions = Reactions<Notifications, Outbox<Store>, MemoryStore>;

/// The environment variable that names a NATS server when `--nats` is not given.
const NATS_ENV: &str = "EVENTSRC_NATS_URL";

/// The demo's own option.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
struct Options {
    /// A NATS server with JetStream (e.g. nats://127.0.0.1:4222): the notifications reactor then
    /// reads the events through it; the environment variable EVENTSRC_NATS_URL sets it too
    #[arg(long, value_name = "url")]
    nats: Option<String>,
}

/// How the events reach the notifications reactor: from the store, or through NATS.
enum Notifier {
    /// A runner reads the store's log into the reactor.
    Store(Box<NotificationRunner>),
    /// A relay publishes the log to a JetStream stream; the reactor reads it from there.
    Nats(Box<OverNats>),
}

/// The relay into the run's JetStream stream, and the reactor's durable consumer on it.
struct OverNats {
    relay: Runner<Store, Relay<JetStream, Store>>,
    inbound: Inbound<NatsReactions>,
    nats: JetStream,
    stream: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    eventsrc_examples::telemetry::init_tracing();
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let Some(Demo {
        url,
        source,
        options,
    }) = Invocation::<Options>::read("subscription", DEFAULT_STORE)?
    else {
        return Ok(());
    };
    let nats_url = options.nats.or_else(|| {
        std::env::var(NATS_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
    });
    eventsrc::registry::check()?;
    // A manual clock stamps `recorded_at`, so the story happens in early 2018 on every run.
    let clock = ManualClock::new(Timestamp::from_micros(FEBRUARY_2018 * 1_000_000));
    let store = url.open_with_clock(clock.clone()).await?;
    let repository = Repository::new(store.clone());
    println!("eventsrc: a subscriptions service on {store}");
    println!("Store URL: {url} ({source})");
    print_registered::<Subscription>("subscription");
    note_earlier_run::<Subscription, _>(&store, "Subscription", &ID).await?;

    let outbox = Outbox::new(store.clone());
    let mut notifier = match nats_url {
        None => {
            let reactions =
                Reactions::new(Notifications, outbox.clone(), store.clone()).retry(RETRY);
            Notifier::Store(Box::new(Runner::new(store.clone(), reactions)))
        }
        Some(nats_url) => through_nats(&nats_url, &store, &outbox).await?,
    };

    println!("\nCommands for subscription {ID}");
    subscribe(&repository, &clock).await?;
    react(&mut notifier, &outbox).await?;

    println!("\nThe mail provider goes down");
    outbox.begin_outage();
    resubscribe(&repository, &clock).await?;
    react(&mut notifier, &outbox).await?;
    outbox.end_outage();
    replay(notifier, &outbox).await?;

    print_outbox(&outbox);
    print_events(&store, ID).await?;
    print_row(&repository, ID).await
}

/// Connects to NATS, makes the run's JetStream stream, and sets up the relay into it and the
/// reactor's durable consumer on it.
async fn through_nats(
    url: &str,
    store: &Store,
    outbox: &Outbox<Store>,
) -> Result<Notifier, Box<dyn Error>> {
    let nats = JetStream::connect(url).await?;
    let run = eventsrc::EventId::new().0.simple().to_string();
    let stream = format!("SUBSCRIPTIONS_{}", &run[run.len() - 12..]);
    let subject = format!("subscriptions.{}", stream.to_lowercase());
    nats.ensure_stream(
        &stream,
        &[&format!("{subject}.>")],
        Duration::from_secs(600),
    )
    .await?;
    println!("NATS: {url}, JetStream stream `{stream}` (this run's; deleted at its end)");
    let subjects = Subjects::template(&format!("{subject}.{{category}}.{{event_type}}"))?;
    let relay = Relay::new("subscriptions_to_nats", nats.clone(), store.clone()).subjects(subjects);
    let reactions = Reactions::new(Notifications, outbox.clone(), MemoryStore::new()).retry(RETRY);
    let inbound = Inbound::durable(nats.context(), &stream, "notifications", None, reactions)
        .await?
        .wait(Duration::from_millis(200));
    Ok(Notifier::Nats(Box::new(OverNats {
        relay: Runner::new(store.clone(), relay),
        inbound,
        nats,
        stream,
    })))
}
/// The subscription events the registry knows.
fn activate(key: &str) -> Activate {
    Activate {
        subscription: ID,
        payment_key: key.into(),
    }
}

fn by_user() -> Metadata {
    Metadata::new().with("user_id", 123)
}

fn notified(notification_id: u32) -> Metadata {
    Metadata::new().with("notification_id", notification_id)
}

/// The story's first part: created, activated (the provider's notification twice), refused a
/// second key.
async fn subscribe(
    repository: &Repository<Store>,
    clock: &ManualClock,
) -> Result<(), Box<dyn Error>> {
    let create = |email: &str, plan: &str| Create {
        subscription: ID,
        email: email.into(),
        plan: plan.into(),
    };
    send(repository, create("", " "), by_user()).await?;
    send(repository, create("ada@example.com", "monthly"), by_user()).await?;
    clock.advance(Duration::from_secs(60));
    send(repository, activate(""), notified(33_455)).await?;
    send(repository, activate("sub_66123"), notified(33_456)).await?;
    send(repository, activate("sub_66123"), notified(33_456)).await?;
    send(repository, activate("sub_70001"), notified(33_460)).await
}

/// The story's second part, two months later: deactivated (twice) and activated again; and a
/// subscription that does not exist.
async fn resubscribe(
    repository: &Repository<Store>,
    clock: &ManualClock,
) -> Result<(), Box<dyn Error>> {
    clock.set(Timestamp::from_micros(
        (FEBRUARY_2018 + 64 * 86_400) * 1_000_000,
    ));
    let deactivate = Deactivate { subscription: ID };
    send(repository, deactivate.clone(), by_user()).await?;
    send(repository, deactivate, by_user()).await?;
    clock.advance(Duration::from_secs(3_600));
    send(repository, activate("sub_70001"), notified(33_512)).await?;
    let unknown = Deactivate {
        subscription: SubscriptionId(13),
    };
    send(repository, unknown, by_user()).await
}

/// Lets the reactor catch up with the log (through NATS, if so), and prints the messages it
/// wrote and the events it parked.
async fn react(notifier: &mut Notifier, outbox: &Outbox<Store>) -> Result<(), Box<dyn Error>> {
    let (sent_before, parked_before) = (outbox.len(), notifier.parked().await?.len());
    match notifier {
        Notifier::Store(runner) => {
            let read_before = runner.progress().get().handled;
            let progress = runner.catch_up().await?;
            println!(
                "  Reactor `{}` catches up: {} read, checkpoint at {}",
                Notifications::NAME,
                count(progress.handled - read_before, "new event"),
                show(progress.position),
            );
        }
        Notifier::Nats(over) => {
            let OverNats {
                relay,
                inbound,
                stream,
                ..
            } = &mut **over;
            let published_before = relay.progress().get().handled;
            let progress = relay.catch_up().await?;
            println!(
                "  Relay `{}` publishes {} to NATS, checkpoint at {}",
                relay.consumer().name(),
                count(progress.handled - published_before, "new event"),
                show(progress.position),
            );
            inbound.catch_up().await?;
            println!(
                "  Reactor `{}` reads them from `{stream}`, checkpoint at message {}",
                Notifications::NAME,
                inbound
                    .checkpoint()
                    .await?
                    .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            );
        }
    }
    for message in &outbox.messages()[sent_before..] {
        println!("      -> outbox: {}", describe(message));
    }
    for parked in &notifier.parked().await?[parked_before..] {
        let event = &parked.event;
        println!(
            "      -> parked {} ({} v{}) after {} tries\n         error: {}",
            event.event_type, event.stream, event.stream_version, parked.attempts, parked.error
        );
    }
    Ok(())
}

impl Notifier {
    /// The events the reactor parked.
    async fn parked(&self) -> Result<Vec<ParkedEvent>, Box<dyn Error>> {
        Ok(match self {
            Notifier::Store(runner) => runner.consumer().parked().await?,
            Notifier::Nats(over) => over.inbound.consumer().parked().await?,
        })
    }
}

/// `-` before the first event, else the position.
fn show(position: Option<eventsrc::GlobalPosition>) -> String {
    position.map_or_else(|| "-".to_owned(), |p| p.to_string())
}

/// Brings the provider back and replays what was parked; through NATS, deletes the run's
/// JetStream stream.
async fn replay(notifier: Notifier, outbox: &Outbox<Store>) -> Result<(), Box<dyn Error>> {
    println!("\nThe mail provider is back: the parked events are replayed");
    let sent_before = outbox.len();
    let replayed = match notifier {
        Notifier::Store(runner) => runner.into_consumer().replay_parked().await?,
        Notifier::Nats(over) => {
            let OverNats {
                inbound,
                nats,
                stream,
                ..
            } = *over;
            let replayed = inbound.into_consumer().replay_parked().await?;
            nats.context().delete_stream(&stream).await?;
            replayed
        }
    };
    println!(
        "  {} sent and unparked, {} still parked",
        count(replayed.succeeded.len(), "event"),
        replayed.failed.len()
    );
    for message in &outbox.messages()[sent_before..] {
        println!("      -> outbox: {}", describe(message));
    }
    Ok(())
}

/// `1 event`, `2 events`.
fn count<N: std::fmt::Display + PartialEq + From<u8>>(n: N, noun: &str) -> String {
    if n == N::from(1) {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `to ada@example.com: "Your monthly subscription is active"`.
fn describe(message: &Message) -> String {
    format!("to {}: {:?}", message.to, message.subject)
}

/// The outbox: every message this run wrote, with the event it was written for.
fn print_outbox(outbox: &Outbox<Store>) {
    println!(
        "\nOutbox of this run ({}, one per event and kind)",
        count(outbox.len(), "message")
    );
    println!("  {:<8}  {:<25}  {:<20}  subject", "event", "kind", "to");
    for message in outbox.messages() {
        println!(
            "  {:<8}  {:<25}  {:<20}  {}",
            message.position.to_string(),
            message.kind.to_string(),
            message.to,
            message.subject
        );
    }
}

/// Sends `command` to its subscription and prints what became of it.
async fn send<C>(
    repository: &Repository<Store>,
    command: C,
    metadata: Metadata,
) -> Result<(), Box<dyn Error>>
where
    C: AggregateCommand<Aggregate = Subscription> + Debug,
    Subscription: Handle<C>,
{
    send_and_tell(repository, command, metadata, |committed, _| {
        format!("stream at v{}", committed.stream_version)
    })
    .await
}

/// The events as a table: id, subscription id, type, data, metadata, created_at.
async fn print_events(store: &Store, id: SubscriptionId) -> Result<(), Box<dyn Error>> {
    let stream = Subscription::stream_id(&id)?;
    println!("\nStored events of {stream}, as a table");
    println!(
        "  {:<8}  {:<15}  {:<24}  {:<44}  {:<25}  created_at",
        "id", "subscription_id", "type", "data", "metadata"
    );
    for record in store.read_stream(&stream, ReadStream::forward()).await? {
        let metadata = serde_json::to_string(&record.metadata.extra)?;
        println!(
            "  {:<8}  {:<15}  {:<24}  {:<44}  {:<25}  {}",
            record.global_position.to_string(),
            stream.id(),
            record.event_type,
            record.payload,
            metadata,
            record.recorded_at,
        );
    }
    Ok(())
}

/// The subscription as a table row: the aggregate's current state.
async fn print_row(
    repository: &Repository<Store>,
    id: SubscriptionId,
) -> Result<(), Box<dyn Error>> {
    let loaded = repository.load::<Subscription>(&id).await?;
    let subscription = &loaded.state;
    let status = subscription
        .status()
        .map_or_else(|| "-".to_owned(), |s| s.to_string());
    println!("\nSubscription {id} now (v{}), as a row", loaded.version);
    println!("  id  email            plan     status    payment_key");
    println!(
        "  {:<2}  {:<15}  {:<7}  {:<8}  {}",
        id.to_string(),
        subscription.email(),
        subscription.plan(),
        status,
        subscription.payment_key().unwrap_or("-"),
    );
    Ok(())
}
