//! A fixture for consumers driven by the real [`Runner`]: SQL read models, reactions with
//! their retries and parked list, anything implementing [`Consumer`].

use std::fmt::Debug;

use eventsrc_core::backend::{ParkedEvent, ParkedStore};
use eventsrc_core::runner::{Consumer, Progress};
use eventsrc_core::{
    Event, EventStore, ExpectedVersion, GlobalPosition, MemoryStore, Metadata, NewEvent, Runner,
    StreamId,
};

/// Specs for any [`Consumer`] run by the real [`Runner`] over a log in memory: the path
/// production takes, with the events filtered by the consumer's stored types, read in small
/// batches (two by default, so batch boundaries and the read-ahead are exercised), fenced and
/// checkpointed.
///
/// Use it for what the synchronous [`ProjectionFixture`](crate::ProjectionFixture) and
/// [`ReactorFixture`](crate::ReactorFixture) cannot show: a read model in SQL tables, a
/// reactor's retries and parked events, a restart that must not apply anything twice.
///
/// ```
/// use eventsrc::Reactor;
/// use eventsrc::runner::{Perform, Retry};
/// use eventsrc::Reactions;
/// use eventsrc::{Event, RecordedEvent};
/// use eventsrc_testing::RunnerFixture;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct Activated { email: String }
/// # #[derive(Event, Debug)]
/// # enum Watched { Activated(Activated) }
/// # struct Mailer;
/// # impl Reactor for Mailer {
/// #     const NAME: &'static str = "mailer";
/// #     type Event = Watched;
/// #     type Effect = String;
/// #     type Error = std::convert::Infallible;
/// #     fn react(&mut self, event: Watched, _: &RecordedEvent) -> Result<Vec<String>, Self::Error> {
/// #         let Watched::Activated(activated) = event;
/// #         Ok(vec![activated.email])
/// #     }
/// # }
///
/// /// A mail provider that is down for one address.
/// struct Provider;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the provider refused {0}")]
/// struct Refused(String);
///
/// impl Perform<String> for Provider {
///     type Error = Refused;
///     async fn perform(&self, to: String, _: &RecordedEvent) -> Result<(), Refused> {
///         if to.ends_with("@down.example") { Err(Refused(to)) } else { Ok(()) }
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let fixture = RunnerFixture::new()
///     .given("account-1", [Activated { email: "ada@down.example".into() }]).await
///     .given("account-2", [Activated { email: "bo@up.example".into() }]).await;
/// let retry = Retry { attempts: 2, ..Retry::never() };
/// let reactions = Reactions::new(Mailer, Provider, fixture.store().clone()).retry(retry);
/// let progress = fixture.run(reactions).await.1;
/// assert_eq!(progress.handled, 2);
/// let parked = fixture.parked("mailer").await;
/// assert_eq!(parked.len(), 1);
/// assert!(parked[0].error.contains("refused ada@down.example"));
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RunnerFixture {
    store: MemoryStore,
    batch_size: usize,
    metadata: Metadata,
}

impl Default for RunnerFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl RunnerFixture {
    /// An empty log, read two events per batch.
    pub fn new() -> Self {
        Self {
            store: MemoryStore::new(),
            batch_size: 2,
            metadata: Metadata::new(),
        }
    }

    /// Reads `size` events per batch.
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Stamps the events given after this with `metadata`.
    pub fn given_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The log: give it to consumers that keep their checkpoint or parked events in a store
    /// (`Checkpointed`, `Reactions`), or append to it directly.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Appends `events` to `stream` in their stored form. Panics naming the stream when the id
    /// is invalid or an event does not encode.
    pub async fn given<E: Event + Debug>(
        self,
        stream: &str,
        events: impl IntoIterator<Item = E>,
    ) -> Self {
        self.append(stream, events).await;
        self
    }

    /// Appends `events` to `stream`, as [`given`](Self::given), returning the last position:
    /// for appends between runs.
    pub async fn append<E: Event + Debug>(
        &self,
        stream: &str,
        events: impl IntoIterator<Item = E>,
    ) -> GlobalPosition {
        let id: StreamId = stream
            .parse()
            .unwrap_or_else(|error| panic!("given stream `{stream}`: {error}"));
        let batch: Vec<NewEvent> = events
            .into_iter()
            .map(|event| {
                NewEvent::from_event(&event, self.metadata.clone()).unwrap_or_else(|error| {
                    panic!("an event given to `{stream}` does not encode: {error}\n{event:#?}")
                })
            })
            .collect();
        if batch.is_empty() {
            return self.head().await;
        }
        match self.store.append(&id, ExpectedVersion::Any, batch).await {
            Ok(appended) => appended.position,
            Err(error) => panic!("appending to `{stream}`: {error}"),
        }
    }

    /// The position of the last event given.
    pub async fn head(&self) -> GlobalPosition {
        match self.store.head_position().await {
            Ok(head) => head,
            Err(error) => panic!("the fixture's log: {error}"),
        }
    }

    /// Runs `consumer` through everything given, as a [`Runner`] would from its checkpoint,
    /// and hands it back with the runner's progress. Panics with the runner's error, which
    /// names the consumer and the event.
    pub async fn run<C: Consumer>(&self, consumer: C) -> (C, Progress) {
        let mut runner = Runner::new(self.store.clone(), consumer).batch_size(self.batch_size);
        let progress = match runner.catch_up().await {
            Ok(progress) => progress,
            Err(error) => panic!("the runner stopped: {error}"),
        };
        (runner.into_consumer(), progress)
    }

    /// The events the reactor `name` parked in the fixture's store.
    pub async fn parked(&self, name: &str) -> Vec<ParkedEvent> {
        match self.store.parked(name).await {
            Ok(parked) => parked,
            Err(error) => panic!("the parked events of `{name}`: {error}"),
        }
    }
}
