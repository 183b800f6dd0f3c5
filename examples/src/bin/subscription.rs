//! Seed 001's subscriptions, told through `eventsrc::Repository`: subscription 12 is created,
//! activated with a payment key (twice, as a provider's notification may arrive twice: the
//! talk's `noop?`), refused a second key, deactivated and activated again; then the talk's two
//! tables, the stored events and the subscription row.
//!
//! The store is `memory:` (nothing kept) unless `--store <url>` or the environment variable
//! `EVENTSRC_STORE` names another (the flag wins), e.g. `sqlite://eventsrc-demo.db`, the leads
//! demo's file, or `postgres://user:password@host/database` (the schema `eventsrc`, or the one
//! `?schema=name` names; the password is never printed). On a store that already holds
//! subscription 12 the commands are decided against what is there (some turn into no-ops or
//! refusals), and the tables show every run's events, each stamped with the story's dates in
//! February and April 2018 (on PostgreSQL, with the server's clock: today).
//!
//! Run with: `cargo run -p eventsrc-examples --bin subscription [-- --store <url>]`

use std::error::Error;
use std::fmt::Debug;
use std::process::ExitCode;

use eventsrc::{
    Aggregate, AggregateCommand, Event, EventStore, ExecuteError, Handle, ManualClock, Metadata,
    ReadStream, Repository, Timestamp,
};
use eventsrc_examples::store::{AnyStore, Invocation, exit_code};
use eventsrc_examples::subscription::{Activate, Create, Deactivate, Subscription, SubscriptionId};

/// 2018-02-01T10:00:00Z, in seconds since the Unix epoch: the talk's subscription 12 was
/// created that day.
const FEBRUARY_2018: i64 = 1_517_479_200;

/// The store when neither `--store` nor `EVENTSRC_STORE` names one.
const DEFAULT_STORE: &str = "memory:";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let Some((url, source)) = Invocation::store("subscription", DEFAULT_STORE)? else {
        return Ok(());
    };
    eventsrc::registry::check()?;
    // A manual clock stamps `recorded_at`, so the story happens in 2018, as in the talk.
    let clock = ManualClock::new(Timestamp::from_micros(FEBRUARY_2018 * 1_000_000));
    let store = url.open_with_clock(clock.clone()).await?;
    let repository = Repository::new(store.clone());
    println!("eventsrc: seed 001's subscriptions on {store}");
    println!("Store URL: {url} ({source})");
    let events: Vec<String> = eventsrc::registry::events()
        .into_iter()
        .filter(|event| event.aggregates.contains(&Subscription::TYPE))
        .map(|event| format!("{} v{}", event.name, event.version))
        .collect();
    println!(
        "Event registry checked: {} subscription events ({})",
        events.len(),
        events.join(", ")
    );

    let id = SubscriptionId(12);
    let by_user = || Metadata::new().with("user_id", 123);
    let notified = |n: u32| Metadata::new().with("notification_id", n);
    let activate = |key: &str| Activate {
        subscription: id,
        payment_key: key.into(),
    };
    let earlier = repository.load::<Subscription>(&id).await?.version;
    if earlier.get() > 0 {
        println!(
            "Subscription {id} already has {earlier} events in this store (an earlier run): the \
             commands below are decided against them."
        );
    }
    println!("\nCommands for subscription {id}");
    let create = |email: &str, plan: &str| Create {
        subscription: id,
        email: email.into(),
        plan: plan.into(),
    };
    send(&repository, create("", " "), by_user()).await?;
    send(&repository, create("ada@example.com", "monthly"), by_user()).await?;
    clock.advance(std::time::Duration::from_secs(60));
    send(&repository, activate(""), notified(33_455)).await?;
    send(&repository, activate("sub_66123"), notified(33_456)).await?;
    send(&repository, activate("sub_66123"), notified(33_456)).await?;
    send(&repository, activate("sub_70001"), notified(33_460)).await?;
    clock.set(Timestamp::from_micros(
        (FEBRUARY_2018 + 64 * 86_400) * 1_000_000,
    ));
    let deactivate = Deactivate { subscription: id };
    send(&repository, deactivate.clone(), by_user()).await?;
    send(&repository, deactivate, by_user()).await?;
    clock.advance(std::time::Duration::from_secs(3_600));
    send(&repository, activate("sub_70001"), notified(33_512)).await?;
    let unknown = Deactivate {
        subscription: SubscriptionId(13),
    };
    send(&repository, unknown, by_user()).await?;

    print_events(&store, id).await?;
    print_row(&repository, id).await
}

/// Sends `command` to its subscription and prints what became of it.
async fn send<C>(
    repository: &Repository<AnyStore>,
    command: C,
    metadata: Metadata,
) -> Result<(), Box<dyn Error>>
where
    C: AggregateCommand<Aggregate = Subscription> + Debug,
    Subscription: Handle<C>,
{
    println!("  {command:?}");
    let outcome = match repository.send(command, metadata).await {
        Ok(committed) if committed.is_noop() => {
            "no-op: the subscription already holds this, nothing appended".to_owned()
        }
        Ok(committed) => {
            let types: Vec<&str> = committed.events.iter().map(|e| e.event_type()).collect();
            format!(
                "committed {}: stream at v{}",
                types.join(", "),
                committed.stream_version
            )
        }
        Err(error @ (ExecuteError::Invalid(_) | ExecuteError::Rejected(_))) => error.to_string(),
        Err(other) => return Err(other.into()),
    };
    println!("      -> {outcome}");
    Ok(())
}

/// The talk's events table: id, subscription id, type, data, metadata, created_at.
async fn print_events(store: &AnyStore, id: SubscriptionId) -> Result<(), Box<dyn Error>> {
    let stream = Subscription::stream_id(&id)?;
    println!("\nStored events of {stream}, as the talk's events table");
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

/// The talk's subscriptions table: the aggregate's current state.
async fn print_row(
    repository: &Repository<AnyStore>,
    id: SubscriptionId,
) -> Result<(), Box<dyn Error>> {
    let loaded = repository.load::<Subscription>(&id).await?;
    let subscription = &loaded.state;
    let status = subscription
        .status()
        .map_or_else(|| "-".to_owned(), |s| s.to_string());
    println!(
        "\nSubscription {id} now (v{}), as the talk's row",
        loaded.version
    );
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
