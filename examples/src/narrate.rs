//! What the demos print of a command: the command, then what became of it.

use std::error::Error;
use std::fmt::Debug;

use eventsrc::repository::{AggregateEvent, Committed};
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
