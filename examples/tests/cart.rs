//! Specs for the shopping cart: given events, when a command, then events, a no-op, an error or a
//! validation failure (with `eventsrc-testing`'s `AggregateFixture`, which also checks that every
//! event round-trips and that the state rebuilt from the events equals the deciding state); the
//! stored form of each event; the "total computers sold" counter; and a cart's life through a
//! repository.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use eventsrc::Store;
use eventsrc::store::ReadAll;
use eventsrc::{
    Aggregate, Command, Event, EventStore, EventType, ExecuteError, GlobalPosition, MemoryStore,
    Metadata, Repository, StreamId, StreamVersion,
};
use eventsrc_examples::cart::{
    AddItem, Cart, CartError, CartEvent, CartId, CheckedOut, Checkout, ItemAdded, ItemRemoved,
    MAX_QUANTITY, RemoveItem, Sales,
};
use eventsrc_testing::{AggregateFixture, assert_round_trip};

const ID: CartId = CartId(1);

/// A spec for cart 1, empty until given events.
fn cart() -> AggregateFixture<Cart> {
    AggregateFixture::new()
}

fn added(sku: &str, quantity: u32) -> CartEvent {
    let sku = sku.into();
    ItemAdded { sku, quantity }.into()
}

fn removed(sku: &str, quantity: u32) -> CartEvent {
    let sku = sku.into();
    ItemRemoved { sku, quantity }.into()
}

fn checked_out() -> CartEvent {
    CheckedOut {}.into()
}

fn add(sku: &str, quantity: u32) -> AddItem {
    let sku = sku.into();
    AddItem {
        cart: ID,
        sku,
        quantity,
    }
}

fn remove(sku: &str, quantity: u32) -> RemoveItem {
    let sku = sku.into();
    RemoveItem {
        cart: ID,
        sku,
        quantity,
    }
}

const CHECKOUT: Checkout = Checkout { cart: ID };

/// The sample cart: two computers, a mouse, one computer back, checkout.
fn the_sample_cart() -> Vec<CartEvent> {
    vec![
        added("computer", 1),
        added("computer", 1),
        added("mouse", 1),
        removed("computer", 1),
        checked_out(),
    ]
}

/// The cart's items as `(sku, units)`, by SKU.
fn items(cart: &Cart) -> Vec<(&str, u32)> {
    let items = cart.items().iter();
    items.map(|(sku, units)| (sku.as_str(), *units)).collect()
}

// --- the fold ------------------------------------------------------------------------------------

/// The sample cart, command by command: each one's events, and the cart they fold into (which the
/// fixture also rebuilds from every event so far and compares).
#[test]
fn the_cart_is_a_fold_over_its_events() {
    cart()
        .given_nothing()
        .when(add("computer", 1))
        .then_events([added("computer", 1)])
        .then_state(|cart| assert_eq!(items(cart), [("computer", 1)]))
        .when(add("computer", 1))
        .then_events([added("computer", 1)])
        .then_state(|cart| assert_eq!(items(cart), [("computer", 2)]))
        .when(add("mouse", 1))
        .then_events([added("mouse", 1)])
        .then_state(|cart| assert_eq!(items(cart), [("computer", 2), ("mouse", 1)]))
        .when(remove("computer", 1))
        .then_events([removed("computer", 1)])
        .then_state(|cart| assert_eq!(items(cart), [("computer", 1), ("mouse", 1)]))
        .when(CHECKOUT)
        .then_events([checked_out()])
        .then_state(|cart| {
            assert_eq!(items(cart), [("computer", 1), ("mouse", 1)]);
            assert!(cart.is_checked_out());
        });
}

#[test]
fn removing_the_last_unit_takes_the_item_out() {
    cart()
        .given([added("mouse", 2)])
        .when(remove("mouse", 2))
        .then_events([removed("mouse", 2)])
        .then_state(|cart| {
            assert!(cart.is_empty());
            assert_eq!(cart.quantity("mouse"), 0);
        });
}

// --- AddItem -------------------------------------------------------------------------------------

#[test]
fn adding_records_the_trimmed_sku_and_quantity() {
    cart()
        .given_nothing()
        .when(add(" computer ", 2))
        .then_events([added("computer", 2)])
        .then_state(|cart| assert_eq!(cart.quantity("computer"), 2));
}

#[test]
fn add_item_validates_every_field() {
    cart()
        .given_nothing()
        .when(add("computer", 0))
        .then_invalid(&["quantity"])
        .when(add("computer", MAX_QUANTITY + 1))
        .then_invalid(&["quantity"])
        .when(add("  ", 0))
        .then_invalid(&["sku", "quantity"])
        .when(add("computer", 1))
        .then_events([added("computer", 1)])
        // The bound in `#[validate(range(...))]` is a literal; it must agree with the constant.
        .when(add("computer", MAX_QUANTITY))
        .then_events([added("computer", MAX_QUANTITY)])
        .when(remove("computer", MAX_QUANTITY + 1))
        .then_invalid(&["quantity"]);
    // The fixture names the failing fields; the message is read from the command itself.
    let error = add("  ", 0).validate().unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid command: `sku` must not be empty; `quantity` must be between 1 and 99"
    );
}

// --- RemoveItem ----------------------------------------------------------------------------------

#[test]
fn removing_an_item_in_the_cart_records_it() {
    cart()
        .given([added("computer", 2)])
        .when(remove("computer", 1))
        .then_events([removed("computer", 1)])
        .then_state(|cart| assert_eq!(cart.quantity("computer"), 1))
        // Every unit the cart holds, with the SKU trimmed as `AddItem` trims it.
        .when(remove(" computer ", 1))
        .then_events([removed("computer", 1)])
        .then_state(|cart| assert!(cart.is_empty()));
}

#[test]
fn removing_what_is_not_in_the_cart_is_rejected() {
    cart()
        .given([added("computer", 2), added("mouse", 1), removed("mouse", 1)])
        .when(remove("keyboard", 1))
        .then_error(CartError::NotInCart {
            sku: "keyboard".into(),
        })
        .when(remove("mouse", 1))
        .then_error(CartError::NotInCart {
            sku: "mouse".into(),
        })
        .when(remove("computer", 3))
        .then_error(CartError::TooFew {
            sku: "computer".into(),
            held: 2,
            requested: 3,
        })
        .then_error_message("the cart holds 2 of `computer`, fewer than the 3 to remove")
        .when(remove("", 0))
        .then_invalid(&["sku", "quantity"]);
}

// --- Checkout ------------------------------------------------------------------------------------

#[test]
fn checking_out_records_it() {
    cart()
        .given([added("computer", 1)])
        .when(CHECKOUT)
        .then_events([checked_out()])
        .then_state(|cart| {
            assert!(cart.is_checked_out());
            // Its items are the order now.
            assert_eq!(cart.quantity("computer"), 1);
        });
}

#[test]
fn an_empty_cart_cannot_be_checked_out() {
    cart()
        .given_nothing()
        .when(CHECKOUT)
        .then_error(CartError::Empty)
        .then_error_message("the cart is empty: add an item before checking out");
    cart()
        .given([added("computer", 1), removed("computer", 1)])
        .when(CHECKOUT)
        .then_error(CartError::Empty);
}

#[test]
fn checking_out_twice_is_a_noop() {
    cart()
        .given(the_sample_cart())
        .when(CHECKOUT)
        .then_no_events();
}

#[test]
fn a_checked_out_cart_takes_no_more_changes() {
    cart()
        .given(the_sample_cart())
        .when(add("computer", 1))
        .then_error(CartError::CheckedOut)
        .when(remove("mouse", 1))
        .then_error(CartError::CheckedOut)
        .then_state(|cart| assert_eq!(items(cart), [("computer", 1), ("mouse", 1)]));
}

// --- the stored form -----------------------------------------------------------------------------

#[test]
fn the_event_registry_knows_every_cart_event() {
    eventsrc::registry::check().unwrap();
    let registered: Vec<(&str, u32)> = eventsrc::registry::events()
        .into_iter()
        .filter(|event| event.aggregates == [Cart::TYPE])
        .map(|event| (event.name, event.version))
        .collect();
    assert_eq!(
        registered,
        [("CheckedOut", 1), ("ItemAdded", 1), ("ItemRemoved", 1)]
    );
    assert_eq!(Cart::TYPE, "cart");
    assert_eq!(Cart::stream_id(&ID).unwrap().as_str(), "cart-1");
}

#[test]
fn every_event_round_trips_under_its_own_name() {
    let stored = [
        (
            added("computer", 2),
            "ItemAdded",
            r#"{"sku":"computer","quantity":2}"#,
        ),
        (
            removed("mouse", 1),
            "ItemRemoved",
            r#"{"sku":"mouse","quantity":1}"#,
        ),
        (checked_out(), "CheckedOut", "{}"),
    ];
    for (event, name, payload) in stored {
        assert_eq!((event.event_type(), event.schema_version()), (name, 1));
        assert_eq!(event.encode().unwrap(), payload);
        assert_round_trip(&event);
    }
    // The event on its own, outside the cart's enum, under the same name.
    assert_eq!(<ItemAdded as EventType>::NAME, "ItemAdded");
    assert_round_trip(&ItemAdded {
        sku: "computer".into(),
        quantity: 2,
    });
    assert!(CartEvent::decode("ItemAdded", 1, r#"{"sku":"computer"}"#).is_err());
    assert!(CartEvent::decode("CartEmptied", 1, "{}").is_err());
}

// --- total computers sold ------------------------------------------------------------------------

#[test]
fn computers_sold_is_a_counter_folded_over_the_events() {
    let cart = StreamId::new("cart", 1).unwrap();
    let mut computers = Sales::of("computer");
    let mut counts = Vec::new();
    for event in the_sample_cart() {
        computers.apply(&cart, &event);
        counts.push((computers.in_open_carts(), computers.sold()));
    }
    assert_eq!(counts, [(1, 0), (2, 0), (2, 0), (1, 0), (0, 1)]);
}

#[test]
fn computers_sold_counts_each_cart_on_its_own() {
    let (one, two) = (
        StreamId::new("cart", 1).unwrap(),
        StreamId::new("cart", 2).unwrap(),
    );
    let mut computers = Sales::of("computer");
    computers.apply(&one, &added("computer", 2));
    computers.apply(&two, &added("computer", 5));
    computers.apply(&two, &removed("computer", 1));
    computers.apply(&one, &checked_out());
    computers.apply(&two, &added("mouse", 1));
    assert_eq!((computers.sold(), computers.in_open_carts()), (2, 4));
    computers.apply(&two, &checked_out());
    assert_eq!((computers.sold(), computers.in_open_carts()), (6, 0));
}

// --- a cart through a repository -----------------------------------------------------------------

#[tokio::test]
async fn the_sample_cart_runs_through_the_repository() {
    the_sample_cart_through_a_repository_on(MemoryStore::new()).await;
}

#[tokio::test]
async fn the_sample_cart_runs_through_the_repository_on_sqlite() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    the_sample_cart_through_a_repository_on(store).await;
}

async fn the_sample_cart_through_a_repository_on(store: impl EventStore + Clone) {
    let repository = Repository::new(store.clone());
    let md = Metadata::new;
    for command in [add("computer", 1), add("computer", 1), add("mouse", 1)] {
        repository.send(command, md()).await.unwrap();
    }
    repository.send(remove("computer", 1), md()).await.unwrap();
    let rejected = repository.send(remove("keyboard", 1), md()).await;
    assert!(matches!(
        rejected,
        Err(ExecuteError::Rejected(CartError::NotInCart { .. }))
    ));
    let invalid = repository.send(add("", 1), md()).await;
    assert!(matches!(invalid, Err(ExecuteError::Invalid(_))));
    let done = repository.send(CHECKOUT, md()).await.unwrap();
    assert_eq!(done.stream_version, StreamVersion(5));
    let again = repository.send(CHECKOUT, md()).await.unwrap();
    assert!(again.is_noop());

    let cart = repository.load::<Cart>(&ID).await.unwrap();
    let mut expected = Cart::default();
    the_sample_cart()
        .iter()
        .for_each(|event| expected.apply(event));
    assert_eq!(cart.state, expected);

    let mut computers = Sales::of("computer");
    let log = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    for record in &log {
        computers.apply(&record.stream, &record.decode().unwrap());
    }
    assert_eq!((computers.sold(), computers.in_open_carts()), (1, 0));
}
