//! The decision fixture: given events per aggregate, when a decision across streams, then
//! events per aggregate, an error, or the invalid fields.

use std::fmt::Debug;

use eventsrc_core::{Aggregates, Decide, Timestamp, ValidationError};

use crate::diff;

/// A given/when/then spec for a decision across streams ([`Decide`]), run in memory without a
/// store: the states of the command's aggregates start empty, take the given events (one list
/// per aggregate, in the tuple's order, the same shape a decision returns), and the command is
/// validated and decided against them as [`Repository::decide`](eventsrc_core::Repository::decide)
/// would.
///
/// ```
/// # use eventsrc::{aggregate, command, Decided, Event};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct Registered { email: String }
/// # #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
/// # struct Claimed { user: u32 }
/// # #[derive(Default)] struct User { email: Option<String> }
/// # #[aggregate(id = u32)]
/// # impl User { fn on_registered(&mut self, e: &Registered) { self.email = Some(e.email.clone()); } }
/// # #[derive(Default)] struct EmailOwner { holder: Option<u32> }
/// # #[aggregate(name = "email", id = String)]
/// # impl EmailOwner { fn on_claimed(&mut self, e: &Claimed) { self.holder = Some(e.user); } }
/// # #[derive(Debug, PartialEq, thiserror::Error)]
/// # #[error("the address is taken")]
/// # struct Taken;
/// # #[command(aggregates = (User, EmailOwner), error = Taken, handler = sign_up)]
/// # struct SignUp { #[id] user: u32, #[id] #[validate(non_empty)] email: String }
/// # fn sign_up(c: &SignUp, (_, owner): &(User, EmailOwner)) -> Decided<SignUp> {
/// #     if owner.holder.is_some() { return Err(Taken); }
/// #     Ok((vec![Registered { email: c.email.clone() }.into()], vec![Claimed { user: c.user }.into()]))
/// # }
/// use eventsrc_testing::DecisionFixture;
///
/// let ada = |user| SignUp { user, email: "ada@example.com".into() };
/// DecisionFixture::<SignUp>::new()
///     .when(ada(1))
///     .then_events((
///         vec![Registered { email: "ada@example.com".into() }.into()],
///         vec![Claimed { user: 1 }.into()],
///     ))
///     .and()
///     .when(ada(2))
///     .then_error(Taken);
///
/// DecisionFixture::<SignUp>::new()
///     .given((vec![], vec![Claimed { user: 9 }.into()]))
///     .when(ada(3))
///     .then_error(Taken);
///
/// DecisionFixture::<SignUp>::new()
///     .when(SignUp { user: 4, email: " ".into() })
///     .then_invalid(&["email"]);
/// ```
pub struct DecisionFixture<C: Decide> {
    states: C::Aggregates,
    now: Option<Timestamp>,
}

impl<C: Decide> Debug for DecisionFixture<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionFixture")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<C: Decide> Default for DecisionFixture<C> {
    fn default() -> Self {
        Self::new()
    }
}

/// What a decision did, for [`DecisionThen`]'s expectations.
enum Outcome<C: Decide> {
    Events(<C::Aggregates as Aggregates>::Events),
    Rejected(C::Error),
    Invalid(ValidationError),
}

/// The outcome of [`DecisionFixture::when`], to state expectations on.
pub struct DecisionThen<C: Decide> {
    fixture: DecisionFixture<C>,
    command: &'static str,
    outcome: Outcome<C>,
}

impl<C: Decide> Debug for DecisionThen<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionThen")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl<C: Decide> DecisionFixture<C> {
    /// Every aggregate of the command at its empty state, on the system clock.
    pub fn new() -> Self {
        Self {
            states: C::Aggregates::default(),
            now: None,
        }
    }

    /// Applies `events`: one list per aggregate, in the tuple's order.
    #[must_use]
    pub fn given(mut self, events: <C::Aggregates as Aggregates>::Events) -> Self {
        self.states.apply_all(&events);
        self
    }

    /// Decides at `time`: what handlers read from [`now`](eventsrc_core::time::now).
    #[must_use]
    pub fn given_time(mut self, time: Timestamp) -> Self {
        self.now = Some(time);
        self
    }

    /// Validates and decides `command` against the states so far.
    pub fn when(mut self, command: C) -> DecisionThen<C> {
        let name = command.name();
        let outcome = match command.validate() {
            Err(invalid) => Outcome::Invalid(invalid),
            Ok(()) => {
                let states = &self.states;
                let decided = match self.now {
                    Some(now) => eventsrc_core::time::at_time(now, || command.decide(states)),
                    None => command.decide(states),
                };
                match decided {
                    Ok(events) => {
                        self.states.apply_all(&events);
                        Outcome::Events(events)
                    }
                    Err(error) => Outcome::Rejected(error),
                }
            }
        };
        DecisionThen {
            fixture: self,
            command: name,
            outcome,
        }
    }
}

impl<C: Decide> DecisionThen<C> {
    /// The command decided exactly these events: one list per aggregate, in the tuple's order.
    #[track_caller]
    pub fn then_events(self, expected: <C::Aggregates as Aggregates>::Events) -> Self
    where
        <C::Aggregates as Aggregates>::Events: Debug + PartialEq,
    {
        let actual = self.decided("events");
        if *actual != expected {
            panic!(
                "`{}` decided other events than expected (- expected, + actual):\n{}",
                self.command,
                diff::lines(&format!("{expected:#?}"), &format!("{actual:#?}"))
            );
        }
        self
    }

    /// The command decided nothing on any aggregate (a no-op).
    #[track_caller]
    pub fn then_no_events(self) -> Self {
        let counts = C::Aggregates::counts(self.decided("no events"));
        if counts.iter().any(|n| *n > 0) {
            panic!(
                "`{}` was expected to decide nothing, but decided {counts:?} event(s) per aggregate",
                self.command
            );
        }
        self
    }

    /// The command was refused with exactly this error.
    #[track_caller]
    pub fn then_error(self, expected: C::Error) -> Self
    where
        C::Error: PartialEq,
    {
        match &self.outcome {
            Outcome::Rejected(error) if *error == expected => self,
            Outcome::Rejected(error) => panic!(
                "`{}` was refused with `{error}` ({error:?}), not `{expected}` ({expected:?})",
                self.command
            ),
            _ => self.unexpected(&format!("the error `{expected}`")),
        }
    }

    /// The command was refused with an error `check` accepts.
    #[track_caller]
    pub fn then_error_matching(self, check: impl FnOnce(&C::Error) -> bool) -> Self {
        match &self.outcome {
            Outcome::Rejected(error) if check(error) => self,
            Outcome::Rejected(error) => panic!(
                "`{}` was refused with `{error}` ({error:?}), which the check does not accept",
                self.command
            ),
            _ => self.unexpected("an error"),
        }
    }

    /// The command failed validation on exactly these fields, in declaration order.
    #[track_caller]
    pub fn then_invalid(self, fields: &[&str]) -> Self {
        match &self.outcome {
            Outcome::Invalid(invalid) => {
                let failing: Vec<&str> = invalid.fields.iter().map(|f| f.field).collect();
                if failing != fields {
                    panic!(
                        "`{}` failed validation on {failing:?}, not on {fields:?}: {invalid}",
                        self.command
                    );
                }
                self
            }
            _ => self.unexpected(&format!("invalid fields {fields:?}")),
        }
    }

    /// The states after the command (its events applied, if it decided any), to check.
    pub fn then_states(self, check: impl FnOnce(&C::Aggregates)) -> Self {
        check(&self.fixture.states);
        self
    }

    /// Goes on from the states after the command, for the next `when`.
    pub fn and(self) -> DecisionFixture<C> {
        self.fixture
    }

    #[track_caller]
    fn decided(&self, expected: &str) -> &<C::Aggregates as Aggregates>::Events {
        match &self.outcome {
            Outcome::Events(events) => events,
            _ => self.unexpected(expected),
        }
    }

    #[track_caller]
    fn unexpected(&self, expected: &str) -> ! {
        let what = match &self.outcome {
            Outcome::Events(events) => format!(
                "decided {:?} event(s) per aggregate",
                C::Aggregates::counts(events)
            ),
            Outcome::Rejected(error) => format!("was refused: {error}"),
            Outcome::Invalid(invalid) => format!("failed validation: {invalid}"),
        };
        panic!(
            "`{}` was expected to give {expected}, but it {what}",
            self.command
        )
    }
}
