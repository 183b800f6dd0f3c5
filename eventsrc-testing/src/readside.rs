//! Fixtures for the read side: projections (given events across streams → the read model) and
//! reactors (given an event → the effects decided).
//!
//! Events go through their stored form on the way in: each is encoded, recorded with a stream,
//! versions and a global position, and decoded into the consumer's own event enum, exactly as a
//! runner would feed it from a store.

use std::collections::HashMap;
use std::fmt::Debug;

use eventsrc_core::backend::decode_for;
use eventsrc_core::runner::UnknownEvents;
use eventsrc_core::{
    Event, EventId, GlobalPosition, Metadata, Projection, Reactor, RecordedEvent, StreamId,
    StreamVersion, Tenant, Timestamp,
};

use crate::diff;

/// Records typed events as a store would: per-stream versions, increasing global positions.
struct Recorder {
    versions: HashMap<StreamId, u64>,
    sequence: u64,
    now: Timestamp,
    metadata: Metadata,
}

impl Recorder {
    fn new() -> Self {
        Self {
            versions: HashMap::new(),
            sequence: 0,
            now: Timestamp::now(),
            metadata: Metadata::new(),
        }
    }

    #[track_caller]
    fn record<E: Event + Debug>(
        &mut self,
        stream: &str,
        events: impl IntoIterator<Item = E>,
    ) -> Vec<RecordedEvent> {
        let stream: StreamId = match stream.parse() {
            Ok(stream) => stream,
            Err(error) => panic!("{error}"),
        };
        events
            .into_iter()
            .map(|event| {
                let payload = match event.encode() {
                    Ok(payload) => payload,
                    Err(error) => panic!("event does not encode: {error}\n{event:#?}"),
                };
                let version = self.versions.entry(stream.clone()).or_default();
                *version += 1;
                self.sequence += 1;
                RecordedEvent {
                    event_id: EventId::new(),
                    stream: stream.clone(),
                    stream_version: StreamVersion(*version),
                    global_position: GlobalPosition::new(self.sequence, self.sequence),
                    tenant: Tenant::default(),
                    event_type: event.event_type().into(),
                    schema_version: event.schema_version(),
                    payload: payload.into(),
                    metadata: self.metadata.clone(),
                    recorded_at: self.now,
                }
            })
            .collect()
    }
}

#[track_caller]
fn decode<E: Event>(record: &RecordedEvent, policy: UnknownEvents) -> Option<E> {
    match decode_for::<E>(record, policy) {
        Ok(event) => event,
        Err(error) => panic!("{error}"),
    }
}

/// A given/when/then spec for a [`Projection`].
///
/// ```
/// use eventsrc::Projection;
/// use eventsrc::{Event, RecordedEvent};
/// use eventsrc_testing::ProjectionFixture;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// struct ContactInformationChanged { email: String }
///
/// #[derive(Event, Debug)]
/// enum Watched { Contact(ContactInformationChanged) }
///
/// /// A sales-leads CRM's LeadSearch: every e-mail a lead ever had.
/// #[derive(Default, Debug, PartialEq)]
/// struct LeadSearch { emails: Vec<(String, String)> }
///
/// impl Projection for LeadSearch {
///     const NAME: &'static str = "lead_search";
///     type Event = Watched;
///     type Error = std::convert::Infallible;
///     fn apply(&mut self, event: Watched, record: &RecordedEvent) -> Result<(), Self::Error> {
///         let Watched::Contact(changed) = event;
///         let entry = (record.stream.id().to_owned(), changed.email);
///         if !self.emails.contains(&entry) { self.emails.push(entry); } // idempotent
///         Ok(())
///     }
/// }
///
/// let changed = |email: &str| ContactInformationChanged { email: email.into() };
/// ProjectionFixture::new(LeadSearch::default())
///     .given("lead-1410", [changed("s@a.com")])
///     .when("lead-1410", [changed("s@b.com")])
///     .and("lead-7", [changed("x@c.com")])
///     .times(2) // replayed: the projection must be idempotent
///     .then(|search| assert_eq!(search.emails.len(), 3));
/// ```
pub struct ProjectionFixture<P: Projection> {
    projection: P,
    recorder: Recorder,
}

impl<P: Projection> std::fmt::Debug for ProjectionFixture<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionFixture")
            .field("projection", &P::NAME)
            .finish_non_exhaustive()
    }
}

/// Events about to be applied to a projection, possibly several times.
pub struct ProjectionWhen<P: Projection> {
    fixture: ProjectionFixture<P>,
    pending: Vec<RecordedEvent>,
    times: usize,
}

impl<P: Projection> std::fmt::Debug for ProjectionWhen<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionWhen")
            .field("projection", &P::NAME)
            .field("pending", &self.pending.len())
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

impl<P: Projection> ProjectionFixture<P>
where
    P::Event: Debug,
{
    /// A spec for `projection` in its starting state.
    pub fn new(projection: P) -> Self {
        Self {
            projection,
            recorder: Recorder::new(),
        }
    }

    /// The time events are recorded at from now on.
    pub fn given_time(mut self, time: Timestamp) -> Self {
        self.recorder.now = time;
        self
    }

    /// The metadata events are recorded with from now on.
    pub fn given_metadata(mut self, metadata: Metadata) -> Self {
        self.recorder.metadata = metadata;
        self
    }

    /// Events of `stream` (`category-id`) already applied.
    #[track_caller]
    pub fn given<E: Event + Debug>(
        mut self,
        stream: &str,
        events: impl IntoIterator<Item = E>,
    ) -> Self {
        let records = self.recorder.record(stream, events);
        self.apply(&records);
        self
    }

    /// Events of `stream` to apply next; add other streams with [`ProjectionWhen::and`].
    #[track_caller]
    pub fn when<E: Event + Debug>(
        mut self,
        stream: &str,
        events: impl IntoIterator<Item = E>,
    ) -> ProjectionWhen<P> {
        let pending = self.recorder.record(stream, events);
        ProjectionWhen {
            fixture: self,
            pending,
            times: 1,
        }
    }

    /// The projection as it stands.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    #[track_caller]
    fn apply(&mut self, records: &[RecordedEvent]) {
        for record in records {
            if let Some(event) = decode::<P::Event>(record, P::UNKNOWN_EVENTS)
                && let Err(error) = self.projection.apply(event, record)
            {
                panic!(
                    "projection `{}` failed on `{}` at `{}` v{}: {error}",
                    P::NAME,
                    record.event_type,
                    record.stream,
                    record.stream_version
                );
            }
        }
    }
}

impl<P: Projection> ProjectionWhen<P>
where
    P::Event: Debug,
{
    /// More events, of another stream, in the same batch.
    #[track_caller]
    pub fn and<E: Event + Debug>(
        mut self,
        stream: &str,
        events: impl IntoIterator<Item = E>,
    ) -> Self {
        let more = self.fixture.recorder.record(stream, events);
        self.pending.extend(more);
        self
    }

    /// Applies the batch `n` times (the same records, as an at-least-once runner may), to prove
    /// the projection idempotent.
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    /// Applies the batch, then inspects the projection.
    #[track_caller]
    pub fn then(self, check: impl FnOnce(&P)) -> ProjectionFixture<P> {
        let fixture = self.run();
        check(&fixture.projection);
        fixture
    }

    /// Applies the batch, then compares the projection with `expected`.
    #[track_caller]
    pub fn then_model(self, expected: &P) -> ProjectionFixture<P>
    where
        P: PartialEq + Debug,
    {
        let fixture = self.run();
        if fixture.projection != *expected {
            panic!(
                "projection `{}` differs from the expected model (- expected, + actual):\n{}",
                P::NAME,
                diff::lines(
                    &format!("{expected:#?}"),
                    &format!("{:#?}", fixture.projection)
                )
            );
        }
        fixture
    }

    #[track_caller]
    fn run(self) -> ProjectionFixture<P> {
        let mut fixture = self.fixture;
        for _ in 0..self.times {
            fixture.apply(&self.pending);
        }
        fixture
    }
}

/// A given/when/then spec for a [`Reactor`]: given an event, the effects it decided.
///
/// ```
/// use eventsrc::Reactor;
/// use eventsrc::{Event, RecordedEvent};
/// use eventsrc_testing::ReactorFixture;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// struct Activated { email: String }
///
/// #[derive(Event, Debug)]
/// enum Watched { Activated(Activated) }
///
/// #[derive(Debug, PartialEq)]
/// enum Email { Confirmation { to: String } }
///
/// struct Mailer;
/// impl Reactor for Mailer {
///     const NAME: &'static str = "mailer";
///     type Event = Watched;
///     type Effect = Email;
///     type Error = std::convert::Infallible;
///     fn react(&mut self, event: Watched, _: &RecordedEvent) -> Result<Vec<Email>, Self::Error> {
///         let Watched::Activated(a) = event;
///         Ok(vec![Email::Confirmation { to: a.email }])
///     }
/// }
///
/// ReactorFixture::new(Mailer)
///     .when("subscription-9", Activated { email: "ada@example.com".into() })
///     .then_effects([Email::Confirmation { to: "ada@example.com".into() }]);
/// ```
pub struct ReactorFixture<R: Reactor> {
    reactor: R,
    recorder: Recorder,
}

impl<R: Reactor> std::fmt::Debug for ReactorFixture<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactorFixture")
            .field("reactor", &R::NAME)
            .finish_non_exhaustive()
    }
}

/// What a reactor decided for one event.
pub struct ReactorThen<R: Reactor> {
    fixture: ReactorFixture<R>,
    event_type: String,
    outcome: Result<Vec<R::Effect>, R::Error>,
}

impl<R: Reactor> std::fmt::Debug for ReactorThen<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactorThen")
            .field("reactor", &R::NAME)
            .field("event_type", &self.event_type)
            .finish_non_exhaustive()
    }
}

impl<R: Reactor> ReactorFixture<R>
where
    R::Event: Debug,
{
    /// A spec for `reactor`.
    pub fn new(reactor: R) -> Self {
        Self {
            reactor,
            recorder: Recorder::new(),
        }
    }

    /// Events the reactor already saw; their effects are discarded.
    #[track_caller]
    pub fn given<E: Event + Debug>(
        mut self,
        stream: &str,
        events: impl IntoIterator<Item = E>,
    ) -> Self {
        for record in self.recorder.record(stream, events) {
            if let Some(event) = decode::<R::Event>(&record, R::UNKNOWN_EVENTS)
                && let Err(error) = self.reactor.react(event, &record)
            {
                panic!(
                    "reactor `{}` failed on given `{}`: {error}",
                    R::NAME,
                    record.event_type
                );
            }
        }
        self
    }

    /// The event the reactor reacts to.
    #[track_caller]
    pub fn when<E: Event + Debug>(mut self, stream: &str, event: E) -> ReactorThen<R> {
        let records = self.recorder.record(stream, [event]);
        let record = &records[0];
        let outcome = match decode::<R::Event>(record, R::UNKNOWN_EVENTS) {
            Some(event) => self.reactor.react(event, record),
            None => Ok(Vec::new()),
        };
        ReactorThen {
            fixture: self,
            event_type: record.event_type.to_string(),
            outcome,
        }
    }
}

impl<R: Reactor> ReactorThen<R>
where
    R::Effect: Debug + PartialEq,
    R::Event: Debug,
{
    /// The reactor decided exactly these effects, in order.
    #[track_caller]
    pub fn then_effects(self, expected: impl IntoIterator<Item = R::Effect>) -> ReactorFixture<R> {
        let expected: Vec<R::Effect> = expected.into_iter().collect();
        match &self.outcome {
            Ok(actual) if *actual == expected => {}
            Ok(actual) => panic!(
                "reactor `{}` decided other effects for `{}` (- expected, + actual):\n{}",
                R::NAME,
                self.event_type,
                diff::lines(&format!("{expected:#?}"), &format!("{actual:#?}"))
            ),
            Err(error) => panic!(
                "reactor `{}` failed on `{}`: {error}",
                R::NAME,
                self.event_type
            ),
        }
        self.fixture
    }

    /// The reactor decided nothing.
    #[track_caller]
    pub fn then_no_effects(self) -> ReactorFixture<R> {
        self.then_effects([])
    }

    /// The reactor failed with an error for which `predicate` holds.
    #[track_caller]
    pub fn then_error_matching(
        self,
        predicate: impl FnOnce(&R::Error) -> bool,
    ) -> ReactorFixture<R> {
        match &self.outcome {
            Err(error) if predicate(error) => {}
            Err(error) => panic!(
                "reactor `{}` failed with an unexpected error: {error}",
                R::NAME
            ),
            Ok(effects) => panic!(
                "reactor `{}` was expected to fail on `{}` but decided {effects:#?}",
                R::NAME,
                self.event_type
            ),
        }
        self.fixture
    }

    /// Inspects the reactor after the event.
    pub fn then(self, check: impl FnOnce(&R)) -> ReactorFixture<R> {
        check(&self.fixture.reactor);
        self.fixture
    }
}
