//! The projection and reactor fixtures: events reach consumers through their stored form,
//! replays expose non-idempotent projections, and mismatches fail with readable messages.

use eventsrc::{Projection, Reactor};

use eventsrc::runner::UnknownEvents;
use eventsrc::{Event, RecordedEvent};
use eventsrc_testing::{ProjectionFixture, ReactorFixture};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct ItemAdded {
    sku: String,
    quantity: u32,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct CheckedOut;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Unrelated;

#[derive(Event, Debug)]
enum Watched {
    Added(ItemAdded),
    CheckedOut(CheckedOut),
}

/// Counts by stream and position, so replays change nothing.
#[derive(Default, Debug, PartialEq)]
struct Sold {
    total: u32,
    seen: Vec<(String, u64)>,
    carts_checked_out: u32,
}

impl Projection for Sold {
    const NAME: &'static str = "sold";
    type Event = Watched;
    type Error = std::convert::Infallible;
    fn apply(&mut self, event: Watched, record: &RecordedEvent) -> Result<(), Self::Error> {
        let key = (record.stream.to_string(), record.stream_version.get());
        if self.seen.contains(&key) {
            return Ok(());
        }
        self.seen.push(key);
        match event {
            Watched::Added(added) => self.total += added.quantity,
            Watched::CheckedOut(_) => self.carts_checked_out += 1,
        }
        Ok(())
    }
}

/// Forgets to deduplicate: a replay double counts.
#[derive(Default, Debug, PartialEq)]
struct NaiveSold {
    total: u32,
}

impl Projection for NaiveSold {
    const NAME: &'static str = "naive_sold";
    const UNKNOWN_EVENTS: UnknownEvents = UnknownEvents::Fail;
    type Event = Watched;
    type Error = std::convert::Infallible;
    fn apply(&mut self, event: Watched, _: &RecordedEvent) -> Result<(), Self::Error> {
        if let Watched::Added(added) = event {
            self.total += added.quantity;
        }
        Ok(())
    }
}

fn added(sku: &str, quantity: u32) -> ItemAdded {
    ItemAdded {
        sku: sku.into(),
        quantity,
    }
}

#[test]
fn events_across_streams_fold_into_the_model_and_replays_change_nothing() {
    ProjectionFixture::new(Sold::default())
        .given("cart-1", [added("laptop", 1)])
        .when("cart-1", [added("mouse", 2)])
        .and("cart-2", [added("laptop", 3)])
        .times(3)
        .then(|sold| assert_eq!(sold.total, 6))
        .when("cart-2", [CheckedOut])
        .then(|sold| assert_eq!(sold.carts_checked_out, 1));
}

#[test]
fn unknown_event_types_are_skipped_by_default() {
    ProjectionFixture::new(Sold::default())
        .given("cart-1", [Unrelated])
        .when("cart-1", [added("a", 1)])
        .then(|sold| assert_eq!((sold.total, sold.seen.len()), (1, 1)));
}

#[test]
#[should_panic(expected = "unknown event type `Unrelated`")]
fn unknown_event_types_fail_when_the_projection_says_so() {
    ProjectionFixture::new(NaiveSold::default()).given("cart-1", [Unrelated]);
}

#[test]
#[should_panic(expected = "projection `naive_sold` differs from the expected model")]
fn a_replay_exposes_a_projection_that_is_not_idempotent() {
    ProjectionFixture::new(NaiveSold::default())
        .when("cart-1", [added("a", 1)])
        .times(2)
        .then_model(&NaiveSold { total: 1 });
}

#[test]
fn the_model_can_be_compared_whole() {
    ProjectionFixture::new(NaiveSold::default())
        .when("cart-1", [added("a", 2)])
        .then_model(&NaiveSold { total: 2 });
}

#[derive(Debug, PartialEq)]
enum Effect {
    ThankYou { cart: String },
}

#[derive(Debug, thiserror::Error)]
#[error("mail server refused")]
struct Refused;

#[derive(Default)]
struct Mailer {
    refuse: bool,
    reacted: u32,
}

impl Reactor for Mailer {
    const NAME: &'static str = "mailer";
    type Event = Watched;
    type Effect = Effect;
    type Error = Refused;
    fn react(&mut self, event: Watched, record: &RecordedEvent) -> Result<Vec<Effect>, Refused> {
        self.reacted += 1;
        match event {
            Watched::CheckedOut(_) if self.refuse => Err(Refused),
            Watched::CheckedOut(_) => Ok(vec![Effect::ThankYou {
                cart: record.stream.id().into(),
            }]),
            Watched::Added(_) => Ok(vec![]),
        }
    }
}

#[test]
fn a_reactor_decides_effects_for_an_event() {
    ReactorFixture::new(Mailer::default())
        .given("cart-5", [added("a", 1)])
        .when("cart-5", CheckedOut)
        .then_effects([Effect::ThankYou { cart: "5".into() }])
        .when("cart-6", added("b", 1))
        .then_no_effects();
}

#[test]
fn a_reactor_skips_unknown_events_and_reports_failures() {
    ReactorFixture::new(Mailer::default())
        .when("cart-5", Unrelated)
        .then(|mailer| assert_eq!(mailer.reacted, 0));
    ReactorFixture::new(Mailer {
        refuse: true,
        reacted: 0,
    })
    .when("cart-5", CheckedOut)
    .then_error_matching(|e| e.to_string() == "mail server refused");
}

#[test]
#[should_panic(expected = "reactor `mailer` decided other effects for `CheckedOut`")]
fn other_effects_fail_with_a_diff() {
    ReactorFixture::new(Mailer::default())
        .when("cart-5", CheckedOut)
        .then_effects([Effect::ThankYou { cart: "6".into() }]);
}
