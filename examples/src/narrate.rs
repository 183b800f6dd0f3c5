//! What the demos print of a command: the command, then what became of it.

use std::error::Error;
use std::fmt::Debug;

use eventsrc::AggregateEvent;

use eventsrc::Committed;
use eventsrc::{
    Aggregate, AggregateCommand, EventStore, ExecuteError, Handle, Metadata, Repository,
    SnapshotStore,
};

/// Sends `command`, printing it and then its outcome on the next line: the events appended and
/// `tell`'s description of the aggregate after them (loaded again), a no-op, or why it was
/// refused (invalid or rejected). Any other failure (the store's) is returned.
pub async fn send_and_tell<S, N, C>(
    repository: &Repository<S, N>,
    command: C,
    metadata: Metadata,
    tell: impl FnOnce(&Committed<AggregateEvent<C>>, &C::Aggregate) -> String,
) -> Result<(), Box<dyn Error>>
where
    S: EventStore,
    N: SnapshotStore,
    C: AggregateCommand + Debug,
    C::Aggregate: Handle<C>,
    <C::Aggregate as Aggregate>::Id: Clone,
{
    println!("  {command:?}");
    let id = command.aggregate_id().clone();
    let outcome = match repository.send(command, metadata).await {
        Ok(committed) if committed.is_noop() => "no-op: nothing appended".to_owned(),
        Ok(committed) => {
            let types: Vec<&str> = committed
                .events
                .iter()
                .map(eventsrc::Event::event_type)
                .collect();
            let loaded = repository.load::<C::Aggregate>(&id).await?;
            format!("{}; {}", types.join(", "), tell(&committed, &loaded.state))
        }
        Err(error @ (ExecuteError::Invalid(_) | ExecuteError::Rejected(_))) => error.to_string(),
        Err(other) => return Err(other.into()),
    };
    println!("      -> {outcome}");
    Ok(())
}

/// Prints the event types the registry holds for aggregate `A`, e.g. "Event registry checked:
/// 3 cart events (...)", `noun` naming the aggregate.
pub fn print_registered<A: Aggregate>(noun: &str) {
    let events: Vec<String> = eventsrc::registry::events()
        .into_iter()
        .filter(|event| event.aggregates.contains(&A::TYPE))
        .map(|event| format!("{} v{}", event.name, event.version))
        .collect();
    println!(
        "Event registry checked: {} {noun} events ({})",
        events.len(),
        events.join(", ")
    );
}

/// Prints a line when `id`'s stream already holds events (an earlier run's, on a store that
/// keeps them), `label` naming the aggregate. Reads the stream's version only.
pub async fn note_earlier_run<A: Aggregate, S: EventStore>(
    store: &S,
    label: &str,
    id: &A::Id,
) -> Result<(), Box<dyn Error>> {
    let earlier = store.stream_version(&A::stream_id(id)?).await?;
    if earlier.get() > 0 {
        println!(
            "{label} {id} already has {earlier} events in this store (an earlier run): the \
             commands below are decided against them."
        );
    }
    Ok(())
}
