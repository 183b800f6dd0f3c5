//! The aggregate fixture: given events, when a command, then events, an error, or a state.

use std::fmt::Debug;
use std::time::Duration;

use eventsrc_core::{
    Aggregate, Command, Event, Handle, Metadata, Timestamp, Uuid, ValidationError,
};

use crate::{diff, events};

/// A given/when/then spec for one aggregate, run in memory without a store.
///
/// Beyond the expectations you write, every fixture checks two things on its own, each of which
/// can be switched off:
/// - **round trip**: every given and produced event survives encode → decode (and, when the
///   event is registered, decoding through the [`registry`](eventsrc_core::registry));
/// - **state**: after a command, the state that decided it plus the produced events equals the
///   state rebuilt from every event from scratch, so a handler that changes state outside an
///   event handler (interior mutability) or an `apply` that is not deterministic fails the spec.
///
/// ```
/// # use eventsrc::{aggregate, command, Decision, Event};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct Activated { payment_key: String }
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct Deactivated;
/// # #[derive(Debug, PartialEq, thiserror::Error)]
/// # #[error("the subscription is not active")]
/// # struct NotActive;
/// # #[derive(Default, Debug, PartialEq)]
/// # struct Subscription { key: Option<String> }
/// # #[aggregate(id = u64, error = NotActive)]
/// # impl Subscription {
/// #     fn on_activated(&mut self, e: &Activated) { self.key = Some(e.payment_key.clone()); }
/// #     fn on_deactivated(&mut self, _: &Deactivated) { self.key = None; }
/// # }
/// # #[command(aggregate = Subscription, handler = Subscription::activate)]
/// # struct Activate { #[id] id: u64, #[validate(non_empty)] payment_key: String }
/// # #[command(aggregate = Subscription, handler = Subscription::deactivate)]
/// # struct Deactivate { #[id] id: u64 }
/// # impl Subscription {
/// #     fn activate(&self, c: &Activate) -> Decision<Self> {
/// #         if self.key.as_deref() == Some(c.payment_key.as_str()) { return Ok(vec![]); }
/// #         Ok(vec![Activated { payment_key: c.payment_key.clone() }.into()])
/// #     }
/// #     fn deactivate(&self, _: &Deactivate) -> Decision<Self> {
/// #         if self.key.is_none() { return Err(NotActive); }
/// #         Ok(vec![Deactivated.into()])
/// #     }
/// # }
/// use eventsrc_testing::AggregateFixture;
///
/// AggregateFixture::<Subscription>::new()
///     .given_nothing()
///     .when(Activate { id: 1, payment_key: "pk_1".into() })
///     .then_events([Activated { payment_key: "pk_1".into() }.into()])
///     .when(Activate { id: 1, payment_key: "pk_1".into() })
///     .then_no_events()
///     .when(Deactivate { id: 1 })
///     .then_events([Deactivated.into()])
///     .then_state(|s| assert_eq!(s.key, None))
///     .when(Deactivate { id: 1 })
///     .then_error(NotActive);
///
/// AggregateFixture::<Subscription>::new()
///     .when(Activate { id: 1, payment_key: " ".into() })
///     .then_invalid(&["payment_key"]);
/// ```
pub struct AggregateFixture<A: Aggregate> {
    state: A,
    history: Vec<A::Event>,
    now: Timestamp,
    metadata: Metadata,
    round_trip: bool,
    state_check: bool,
}

impl<A: Aggregate> std::fmt::Debug for AggregateFixture<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateFixture")
            .field("aggregate", &A::TYPE)
            .field("history", &self.history.len())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// One predicate of [`Then::then_events_matching`].
pub type EventPredicate<'a, A> = &'a dyn Fn(&<A as Aggregate>::Event) -> bool;

/// What a command led to, with the fixture kept for chaining.
pub struct Then<A: Aggregate> {
    fixture: AggregateFixture<A>,
    command: &'static str,
    command_id: Uuid,
    outcome: Outcome<A>,
}

impl<A: Aggregate> std::fmt::Debug for Then<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Then")
            .field("aggregate", &A::TYPE)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

enum Outcome<A: Aggregate> {
    Events(Vec<A::Event>),
    Rejected(A::Error),
    Invalid(ValidationError),
}

impl<A> Default for AggregateFixture<A>
where
    A: Aggregate + Debug + PartialEq,
    A::Event: Debug + PartialEq,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<A> AggregateFixture<A>
where
    A: Aggregate + Debug + PartialEq,
    A::Event: Debug + PartialEq,
{
    /// A fixture for a new aggregate, with both automatic checks on and the clock at the
    /// current time.
    pub fn new() -> Self {
        Self {
            state: A::default(),
            history: Vec::new(),
            now: Timestamp::now(),
            metadata: Metadata::new(),
            round_trip: true,
            state_check: true,
        }
    }

    /// Switches off the automatic encode/decode check (for events that do not round-trip by
    /// design, e.g. with skipped fields).
    pub fn without_round_trip_check(mut self) -> Self {
        self.round_trip = false;
        self
    }

    /// Switches off the automatic state-rebuild check.
    pub fn without_state_check(mut self) -> Self {
        self.state_check = false;
        self
    }

    /// The state folded from the given events (and earlier commands' events) so far.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// Events that already happened, applied in order.
    #[track_caller]
    pub fn given(mut self, events: impl IntoIterator<Item = A::Event>) -> Self {
        for event in events {
            if self.round_trip {
                events::check_round_trip(&event);
            }
            self.state.apply(&event);
            self.history.push(event);
        }
        self
    }

    /// No events: a new aggregate (reads better than no `given` at all).
    pub fn given_nothing(self) -> Self {
        self
    }

    /// The metadata the next commands are sent with; see [`Then::then_metadata`].
    pub fn given_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Pins [`eventsrc::time::now`](eventsrc_core::time::now) for the next decisions.
    pub fn given_time(mut self, time: Timestamp) -> Self {
        self.now = time;
        self
    }

    /// Moves the pinned clock forward.
    pub fn when_time_elapses(mut self, duration: Duration) -> Self {
        self.now = self.now + duration;
        self
    }

    /// Validates and decides `command` against the state so far, as the repository would.
    #[track_caller]
    pub fn when<C>(mut self, command: C) -> Then<A>
    where
        A: Handle<C>,
        C: Command,
    {
        let name = command.name();
        let command_id = Uuid::now_v7();
        if let Err(invalid) = command.validate() {
            let outcome = Outcome::Invalid(invalid);
            return Then {
                fixture: self,
                command: name,
                command_id,
                outcome,
            };
        }
        let decided = eventsrc_core::time::at_time(self.now, || self.state.handle(&command));
        let outcome = match decided {
            Ok(events) => {
                self.fold_produced(name, &events);
                Outcome::Events(events)
            }
            Err(error) => Outcome::Rejected(error),
        };
        Then {
            fixture: self,
            command: name,
            command_id,
            outcome,
        }
    }

    /// Applies a command's events to the deciding state and runs the automatic checks.
    #[track_caller]
    fn fold_produced(&mut self, command: &str, produced: &[A::Event]) {
        if self.round_trip {
            produced.iter().for_each(events::check_round_trip);
        }
        for event in produced {
            self.state.apply(event);
        }
        if self.state_check {
            let mut rebuilt = A::default();
            self.history
                .iter()
                .chain(produced)
                .for_each(|event| rebuilt.apply(event));
            if rebuilt != self.state {
                panic!(
                    "the state after `{command}` differs from the state rebuilt from its events: \
                     a handler changed state outside an event handler, or `apply` is not \
                     deterministic\n{}",
                    diff::lines(&format!("{rebuilt:#?}"), &format!("{:#?}", self.state))
                );
            }
            if let Some(format) = A::SNAPSHOT {
                self.check_snapshot(command, &format);
            }
        }
    }

    /// The state after a command must come back from its snapshot as it was: a load from a
    /// snapshot decides exactly as a load from the events.
    #[track_caller]
    fn check_snapshot(&self, command: &str, format: &eventsrc_core::store::SnapshotFormat<A>) {
        let json = match (format.encode)(&self.state) {
            Ok(json) => json,
            Err(error) => {
                panic!("the state after `{command}` does not encode as a snapshot: {error}")
            }
        };
        let restored = match (format.decode)(&json) {
            Ok(restored) => restored,
            Err(error) => panic!(
                "the snapshot of the state after `{command}` does not decode: {error}\n{json}"
            ),
        };
        if restored != self.state {
            panic!(
                "the state after `{command}` differs from its snapshot read back: a field is \
                 skipped or changed by serialization, so loads from snapshots would decide \
                 differently\n{}",
                diff::lines(&format!("{:#?}", self.state), &format!("{restored:#?}"))
            );
        }
    }
}

impl<A> Then<A>
where
    A: Aggregate + Debug + PartialEq,
    A::Event: Debug + PartialEq,
{
    /// The command produced exactly these events, in order.
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = A::Event>) -> Self {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let actual = self.produced("events");
        if *actual != expected {
            panic!(
                "`{}` produced other events than expected (- expected, + actual):\n{}",
                self.command,
                diff::lines(&diff::events(&expected), &diff::events(actual))
            );
        }
        self
    }

    /// The command produced one event per predicate, each matching its predicate.
    #[track_caller]
    pub fn then_events_matching(self, predicates: &[EventPredicate<'_, A>]) -> Self {
        let actual = self.produced("events");
        if actual.len() != predicates.len() {
            panic!(
                "`{}` produced {} event(s), expected {}:\n{}",
                self.command,
                actual.len(),
                predicates.len(),
                diff::events(actual)
            );
        }
        for (i, (event, matches)) in actual.iter().zip(predicates).enumerate() {
            if !matches(event) {
                panic!(
                    "event #{} of `{}` does not match its predicate: {} {:#?}",
                    i + 1,
                    self.command,
                    event.event_type(),
                    event
                );
            }
        }
        self
    }

    /// The command was a no-op: accepted, nothing to append.
    #[track_caller]
    pub fn then_no_events(self) -> Self {
        let actual = self.produced("no events");
        if !actual.is_empty() {
            panic!(
                "`{}` was expected to be a no-op but produced:\n{}",
                self.command,
                diff::events(actual)
            );
        }
        self
    }

    /// The aggregate rejected the command with exactly this error.
    #[track_caller]
    pub fn then_error(self, expected: A::Error) -> Self
    where
        A::Error: PartialEq,
    {
        let error = self.rejected("the error");
        if *error != expected {
            panic!(
                "`{}` was rejected with another error (- expected, + actual):\n{}",
                self.command,
                diff::lines(&format!("{expected:#?}"), &format!("{error:#?}"))
            );
        }
        self
    }

    /// The aggregate rejected the command with an error for which `predicate` holds.
    #[track_caller]
    pub fn then_error_matching(self, predicate: impl FnOnce(&A::Error) -> bool) -> Self {
        let error = self.rejected("an error");
        if !predicate(error) {
            panic!(
                "`{}` was rejected with an unexpected error: {error:?}",
                self.command
            );
        }
        self
    }

    /// The aggregate rejected the command with an error that displays as `text`.
    #[track_caller]
    pub fn then_error_message(self, text: &str) -> Self {
        let message = self.rejected("an error").to_string();
        if message != text {
            panic!(
                "`{}` was rejected with another message:\n  expected: {text}\n  actual:   {message}",
                self.command
            );
        }
        self
    }

    /// Validation refused the command, naming exactly these fields in order.
    #[track_caller]
    pub fn then_invalid(self, fields: &[&str]) -> Self {
        let Outcome::Invalid(invalid) = &self.outcome else {
            panic!(
                "`{}` was expected to fail validation, but {}",
                self.command,
                self.describe()
            );
        };
        let actual: Vec<&str> = invalid.fields.iter().map(|f| f.field).collect();
        if actual != fields {
            panic!(
                "`{}` failed validation on other fields: expected {fields:?}, got {actual:?} ({invalid})",
                self.command
            );
        }
        self
    }

    /// Validation refused the command; `check` inspects the whole error (fields and messages).
    #[track_caller]
    pub fn then_validation(self, check: impl FnOnce(&ValidationError)) -> Self {
        let Outcome::Invalid(invalid) = &self.outcome else {
            panic!(
                "`{}` was expected to fail validation, but {}",
                self.command,
                self.describe()
            );
        };
        check(invalid);
        self
    }

    /// Inspects the state after the command (after its events were applied).
    #[track_caller]
    pub fn then_state(self, check: impl FnOnce(&A)) -> Self {
        check(&self.fixture.state);
        self
    }

    /// Inspects the metadata the produced events carry when sent with the
    /// [`given_metadata`](AggregateFixture::given_metadata): the given metadata, caused by the
    /// command (its causation id is [`command_id`](Then::command_id)).
    #[track_caller]
    pub fn then_metadata(self, check: impl FnOnce(&Metadata)) -> Self {
        check(&self.fixture.metadata.caused_by(self.command_id));
        self
    }

    /// The id the command was given.
    pub fn command_id(&self) -> Uuid {
        self.command_id
    }

    /// The events the command produced (empty unless it was accepted).
    pub fn events(&self) -> &[A::Event] {
        match &self.outcome {
            Outcome::Events(events) => events,
            _ => &[],
        }
    }

    /// Another command, after the first one's events (a rejected command changes nothing).
    #[track_caller]
    pub fn when<C>(self, command: C) -> Then<A>
    where
        A: Handle<C>,
        C: Command,
    {
        self.and().when(command)
    }

    /// Back to the fixture, with this command's events in the history.
    pub fn and(self) -> AggregateFixture<A> {
        let mut fixture = self.fixture;
        if let Outcome::Events(events) = self.outcome {
            fixture.history.extend(events);
        }
        fixture
    }

    #[track_caller]
    fn produced(&self, expected: &str) -> &Vec<A::Event> {
        match &self.outcome {
            Outcome::Events(events) => events,
            _ => panic!(
                "`{}` was expected to give {expected}, but {}",
                self.command,
                self.describe()
            ),
        }
    }

    #[track_caller]
    fn rejected(&self, expected: &str) -> &A::Error {
        match &self.outcome {
            Outcome::Rejected(error) => error,
            _ => panic!(
                "`{}` was expected to give {expected}, but {}",
                self.command,
                self.describe()
            ),
        }
    }

    fn describe(&self) -> String {
        match &self.outcome {
            Outcome::Events(events) if events.is_empty() => "it was a no-op".to_owned(),
            Outcome::Events(events) => format!("it produced:\n{}", diff::events(events)),
            Outcome::Rejected(error) => format!("it was rejected: {error} ({error:?})"),
            Outcome::Invalid(invalid) => format!("it failed validation: {invalid}"),
        }
    }
}
