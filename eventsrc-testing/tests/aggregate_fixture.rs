//! The fixture's own behaviour: passing specs pass, and each kind of mismatch fails with a
//! message that names the command and shows the difference.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use eventsrc::{Decision, Event, Metadata, Timestamp, aggregate, command};
use eventsrc_testing::AggregateFixture;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Added {
    sku: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct CheckedOut {
    at: Timestamp,
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum CartError {
    #[error("the cart is empty")]
    Empty,
}

#[derive(Default, Debug, PartialEq)]
struct Cart {
    items: Vec<String>,
    checked_out_at: Option<Timestamp>,
    // Interior mutability lets a handler change state behind `&self`: the state check's target.
    sneaky: Sneaky,
}

#[derive(Default, Debug)]
struct Sneaky(AtomicU32);

impl PartialEq for Sneaky {
    fn eq(&self, other: &Self) -> bool {
        self.0.load(Ordering::SeqCst) == other.0.load(Ordering::SeqCst)
    }
}

#[aggregate(id = u32, error = CartError)]
impl Cart {
    fn on_added(&mut self, event: &Added) {
        self.items.push(event.sku.clone());
    }
    fn on_checked_out(&mut self, event: &CheckedOut) {
        self.checked_out_at = Some(event.at);
    }
}

#[command(aggregate = Cart, handler = Cart::add)]
struct Add {
    #[id]
    cart: u32,
    #[validate(non_empty)]
    sku: String,
}

#[command(aggregate = Cart, handler = Cart::checkout)]
struct Checkout {
    #[id]
    cart: u32,
}

#[command(aggregate = Cart, handler = Cart::sneak)]
struct Sneak {
    #[id]
    cart: u32,
}

impl Cart {
    fn add(&self, command: &Add) -> Decision<Self> {
        Ok(vec![
            Added {
                sku: command.sku.clone(),
            }
            .into(),
        ])
    }
    fn checkout(&self, _: &Checkout) -> Decision<Self> {
        if self.items.is_empty() {
            return Err(CartError::Empty);
        }
        if self.checked_out_at.is_some() {
            return Ok(vec![]);
        }
        Ok(vec![
            CheckedOut {
                at: eventsrc::time::now(),
            }
            .into(),
        ])
    }
    fn sneak(&self, _: &Sneak) -> Decision<Self> {
        self.sneaky.0.fetch_add(1, Ordering::SeqCst);
        Ok(vec![])
    }
}

fn added(sku: &str) -> CartEvent {
    Added { sku: sku.into() }.into()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(seconds * 1_000_000)
}

#[test]
fn a_full_spec_passes_with_chaining_and_a_pinned_clock() {
    AggregateFixture::<Cart>::new()
        .given([added("laptop")])
        .given_time(at(1_000))
        .when_time_elapses(Duration::from_secs(5))
        .when(Checkout { cart: 1 })
        .then_events([CheckedOut { at: at(1_005) }.into()])
        .then_state(|cart| assert_eq!(cart.checked_out_at, Some(at(1_005))))
        .when(Checkout { cart: 1 })
        .then_no_events();
}

#[test]
fn errors_are_matched_by_value_predicate_and_message() {
    let fixture = || {
        AggregateFixture::<Cart>::new()
            .given_nothing()
            .when(Checkout { cart: 1 })
    };
    fixture().then_error(CartError::Empty);
    fixture().then_error_matching(|e| matches!(e, CartError::Empty));
    fixture().then_error_message("the cart is empty");
}

#[test]
fn predicates_match_events_one_by_one() {
    AggregateFixture::<Cart>::new()
        .when(Add {
            cart: 1,
            sku: "mouse".into(),
        })
        .then_events_matching(&[&|e| matches!(e, CartEvent::Added(a) if a.sku == "mouse")]);
}

#[test]
fn metadata_is_caused_by_the_command() {
    let correlation = eventsrc::Uuid::now_v7();
    let then = AggregateFixture::<Cart>::new()
        .given_metadata(
            Metadata::new()
                .with_correlation_id(correlation)
                .with_actor("ada"),
        )
        .when(Add {
            cart: 1,
            sku: "mouse".into(),
        });
    let command_id = then.command_id();
    then.then_metadata(|m| {
        assert_eq!(m.causation_id, Some(command_id));
        assert_eq!(m.correlation_id, Some(correlation));
        assert_eq!(m.actor.as_deref(), Some("ada"));
    });
}

#[test]
#[should_panic(expected = "`Add` produced other events than expected (- expected, + actual)")]
fn other_events_fail_with_a_diff() {
    AggregateFixture::<Cart>::new()
        .when(Add {
            cart: 1,
            sku: "mouse".into(),
        })
        .then_events([added("keyboard")]);
}

#[test]
#[should_panic(expected = "-         sku: \"keyboard\",\n+         sku: \"mouse\",")]
fn the_diff_shows_the_differing_field() {
    AggregateFixture::<Cart>::new()
        .when(Add {
            cart: 1,
            sku: "mouse".into(),
        })
        .then_events([added("keyboard")]);
}

#[test]
#[should_panic(
    expected = "`Checkout` was expected to give events, but it was rejected: the cart is empty"
)]
fn expecting_events_from_a_rejection_fails() {
    AggregateFixture::<Cart>::new()
        .when(Checkout { cart: 1 })
        .then_events([]);
}

#[test]
#[should_panic(expected = "`Add` was expected to be a no-op but produced")]
fn expecting_a_no_op_from_events_fails() {
    AggregateFixture::<Cart>::new()
        .when(Add {
            cart: 1,
            sku: "a".into(),
        })
        .then_no_events();
}

#[test]
#[should_panic(
    expected = "`Add` failed validation on other fields: expected [\"cart\"], got [\"sku\"]"
)]
fn validation_fields_are_compared() {
    AggregateFixture::<Cart>::new()
        .when(Add {
            cart: 1,
            sku: "".into(),
        })
        .then_invalid(&["cart"]);
}

#[test]
#[should_panic(expected = "the state after `Sneak` differs from the state rebuilt from its events")]
fn a_handler_changing_state_outside_an_event_handler_is_caught() {
    AggregateFixture::<Cart>::new()
        .given([added("a")])
        .when(Sneak { cart: 1 });
}

#[test]
fn the_state_check_can_be_switched_off() {
    AggregateFixture::<Cart>::new()
        .without_state_check()
        .given([added("a")])
        .when(Sneak { cart: 1 })
        .then_no_events();
}

/// An event whose `skip`ped field does not survive the stored form.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Lossy {
    kept: u32,
    #[serde(skip)]
    lost: u32,
}

#[derive(Default, Debug, PartialEq)]
struct Counter {
    total: u32,
}

#[aggregate(id = u32)]
impl Counter {
    fn on_lossy(&mut self, event: &Lossy) {
        self.total += event.kept;
    }
}

#[test]
#[should_panic(expected = "event `Lossy` v1 changes through encode/decode")]
fn an_event_that_does_not_round_trip_is_caught() {
    AggregateFixture::<Counter>::new().given([Lossy { kept: 1, lost: 2 }.into()]);
}

#[test]
fn the_round_trip_check_can_be_switched_off() {
    AggregateFixture::<Counter>::new()
        .without_round_trip_check()
        .given([Lossy { kept: 1, lost: 2 }.into()])
        .given([Lossy { kept: 2, lost: 0 }.into()])
        .without_state_check();
}

#[test]
fn validation_failures_can_be_inspected_whole_and_the_state_read_at_any_time() {
    let fixture = AggregateFixture::<Cart>::new().given([added("a"), added("b")]);
    assert_eq!(fixture.state().items, ["a", "b"]);
    fixture
        .when(Add {
            cart: 1,
            sku: " ".into(),
        })
        .then_validation(|invalid| {
            assert_eq!(invalid.fields[0].message, "must not be empty");
        });
}

#[test]
#[should_panic(expected = "`Added` v1 has another payload")]
fn the_exact_stored_form_is_checked() {
    eventsrc_testing::assert_stored_as(&Added { sku: "a".into() }, "Added", 1, r#"{"sku":"b"}"#);
}

/// A snapshotted aggregate whose state loses a field in its snapshot.
#[derive(Default, Debug, PartialEq, Serialize, Deserialize)]
struct Tally {
    total: u32,
    #[serde(skip)]
    last_sku: Option<String>,
}

#[aggregate(id = u32, snapshot = 1, snapshot_every = 10)]
impl Tally {
    fn on_added(&mut self, event: &Added) {
        self.total += 1;
        self.last_sku = Some(event.sku.clone());
    }
}

#[command(aggregate = Tally, handler = Tally::count)]
struct Count {
    #[id]
    tally: u32,
}

impl Tally {
    fn count(&self, _: &Count) -> Decision<Self> {
        Ok(vec![Added { sku: "pen".into() }.into()])
    }
}

#[test]
#[should_panic(expected = "the state after `Count` differs from its snapshot read back")]
fn a_state_that_does_not_survive_its_snapshot_is_caught() {
    AggregateFixture::<Tally>::new()
        .when(Count { tally: 1 })
        .then_events([Added { sku: "pen".into() }.into()]);
}
