//! Specs for the shopping cart: given events, when a command, then events, a no-op, an error or a
//! validation failure (with `eventsrc-testing`'s `AggregateFixture`, which also checks that every
//! event round-trips and that the state rebuilt from the events equals the deciding state); the
//! stored form of each event; the "total computers sold" counter, cancellations and deleted carts
//! included; and a cart's life through a repository: ordered, cancelled, soft-deleted.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use eventsrc::Store;
use eventsrc::store::{Deletion, Lifecycle, ReadAll, ReadStream, STREAM_DELETED, StreamDeleted};
use eventsrc::{
    Aggregate, Command, Event, EventStore, EventType, ExecuteError, ExpectedVersion,
    GlobalPosition, MemoryStore, Metadata, RecordedEvent, Repository, StreamId, StreamVersion,
};
use eventsrc_examples::cart::{
    AddItem, CancelOrder, Cart, CartError, CartEvent, CartId, CheckedOut, Checkout, ItemAdded,
    ItemRemoved, MAX_QUANTITY, OrderCancelled, RemoveItem, Sales,
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

fn cancelled(reason: &str) -> CartEvent {
    let reason = reason.into();
    OrderCancelled { reason }.into()
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

fn cancel(reason: &str) -> CancelOrder {
    let reason = reason.into();
    CancelOrder { cart: ID, reason }
}

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

// --- CancelOrder ---------------------------------------------------------------------------------

#[test]
fn cancelling_an_order_records_a_compensating_event() {
    cart()
        .given(the_sample_cart())
        .when(cancel(" payment declined "))
        .then_events([cancelled("payment declined")])
        .then_state(|cart| {
            assert!(cart.is_cancelled());
            // The checkout happened and its items stay: the cancellation follows them.
            assert!(cart.is_checked_out());
            assert_eq!(items(cart), [("computer", 1), ("mouse", 1)]);
        });
}

#[test]
fn only_a_checked_out_cart_can_be_cancelled() {
    cart()
        .given_nothing()
        .when(cancel("changed my mind"))
        .then_error(CartError::NotOrdered)
        .then_error_message("the cart is not checked out: there is no order to cancel");
    cart()
        .given([added("computer", 2)])
        .when(cancel("changed my mind"))
        .then_error(CartError::NotOrdered)
        .then_state(|cart| assert!(!cart.is_cancelled()));
}

#[test]
fn cancel_order_needs_a_reason() {
    cart()
        .given(the_sample_cart())
        .when(cancel("  "))
        .then_invalid(&["reason"])
        .when(cancel("payment declined"))
        .then_events([cancelled("payment declined")]);
}

#[test]
fn cancelling_twice_is_a_noop() {
    let mut history = the_sample_cart();
    history.push(cancelled("payment declined"));
    cart()
        .given(history)
        .when(cancel("payment declined"))
        .then_no_events()
        // Whatever the reason given the second time: the first one stands.
        .when(cancel("changed my mind"))
        .then_no_events();
}

#[test]
fn a_cancelled_order_takes_no_more_changes() {
    let mut history = the_sample_cart();
    history.push(cancelled("payment declined"));
    cart()
        .given(history)
        .when(add("computer", 1))
        .then_error(CartError::Cancelled)
        .then_error_message("the cart's order was cancelled: it takes no more changes")
        .when(remove("mouse", 1))
        .then_error(CartError::Cancelled)
        // Checking it out again would order it again: refused too, not a no-op.
        .when(CHECKOUT)
        .then_error(CartError::Cancelled)
        .then_state(|cart| {
            assert_eq!(items(cart), [("computer", 1), ("mouse", 1)]);
            assert!(cart.is_cancelled());
        });
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
        [
            ("CheckedOut", 1),
            ("ItemAdded", 1),
            ("ItemRemoved", 1),
            ("OrderCancelled", 1)
        ]
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
        (
            cancelled("payment declined"),
            "OrderCancelled",
            r#"{"reason":"payment declined"}"#,
        ),
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
    assert!(CartEvent::decode("OrderCancelled", 1, "{}").is_err());
    // A deletion marker is not a cart event: a reader of the log tells them apart by type.
    assert!(CartEvent::decode(STREAM_DELETED, 1, r#"{"through":1}"#).is_err());
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

#[test]
fn a_cancelled_order_is_not_counted_as_sold() {
    let (one, two) = (
        StreamId::new("cart", 1).unwrap(),
        StreamId::new("cart", 2).unwrap(),
    );
    let mut computers = Sales::of("computer");
    computers.apply(&one, &added("computer", 2));
    computers.apply(&two, &added("computer", 3));
    computers.apply(&one, &checked_out());
    computers.apply(&two, &checked_out());
    assert_eq!((computers.sold(), computers.in_open_carts()), (5, 0));
    // Only the cancelled cart's units come off, however many other carts sold.
    computers.apply(&one, &cancelled("payment declined"));
    assert_eq!((computers.sold(), computers.in_open_carts()), (3, 0));
    // Cancelling it again (a store holding it twice) takes nothing more off.
    computers.apply(&one, &cancelled("payment declined"));
    assert_eq!(computers.sold(), 3);
}

#[test]
fn a_deleted_cart_is_forgotten() {
    let (one, two) = (
        StreamId::new("cart", 1).unwrap(),
        StreamId::new("cart", 2).unwrap(),
    );
    let mut computers = Sales::of("computer");
    computers.apply(&one, &added("computer", 1));
    computers.apply(&one, &checked_out());
    computers.apply(&two, &added("computer", 3));
    assert_eq!((computers.sold(), computers.in_open_carts()), (1, 3));
    computers.forget(&two);
    assert_eq!((computers.sold(), computers.in_open_carts()), (1, 0));
    computers.forget(&one);
    assert_eq!((computers.sold(), computers.in_open_carts()), (0, 0));
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

/// Folds `sales` over one record of a cart's stream, as the demo's table does: a cart event, or a
/// deletion marker at which the counter forgets the cart.
fn count_in(sales: &mut Sales, record: &RecordedEvent) {
    if &*record.event_type == STREAM_DELETED {
        sales.forget(&record.stream);
    } else {
        sales.apply(&record.stream, &record.decode().unwrap());
    }
}

/// The "computers" counter folded over the whole log of `store`.
async fn computers_in(store: &impl EventStore) -> (u32, u32) {
    let mut computers = Sales::of("computer");
    let log = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    log.iter()
        .for_each(|record| count_in(&mut computers, record));
    (computers.sold(), computers.in_open_carts())
}

#[tokio::test]
async fn a_cancelled_order_stays_in_the_history() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    let md = Metadata::new;
    for command in [add("computer", 2), add("mouse", 1)] {
        repository.send(command, md()).await.unwrap();
    }
    repository.send(CHECKOUT, md()).await.unwrap();
    assert_eq!(computers_in(&store).await, (2, 0));

    let done = repository
        .send(cancel("payment declined"), md())
        .await
        .unwrap();
    assert_eq!(done.stream_version, StreamVersion(4));
    let again = repository.send(cancel("duplicate"), md()).await.unwrap();
    assert!(again.is_noop());
    let refused = repository.send(add("computer", 1), md()).await;
    assert!(matches!(
        refused,
        Err(ExecuteError::Rejected(CartError::Cancelled))
    ));

    // Both facts are in the stream, the order and then its cancellation.
    let stream = Cart::stream_id(&ID).unwrap();
    let types: Vec<String> = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap()
        .iter()
        .map(|record| record.event_type.to_string())
        .collect();
    assert_eq!(
        types,
        ["ItemAdded", "ItemAdded", "CheckedOut", "OrderCancelled"]
    );
    let cart = repository.load::<Cart>(&ID).await.unwrap().state;
    assert!(cart.is_cancelled());
    assert_eq!(items(&cart), [("computer", 2), ("mouse", 1)]);
    assert_eq!(computers_in(&store).await, (0, 0));
}

#[tokio::test]
async fn a_soft_deleted_cart_loads_empty_and_its_events_are_in_the_archive() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    let md = Metadata::new;
    let other = CartId(2);
    repository.send(add("computer", 3), md()).await.unwrap();
    repository.send(add("mouse", 1), md()).await.unwrap();
    let kept = AddItem {
        cart: other,
        sku: "computer".into(),
        quantity: 1,
    };
    repository.send(kept, md()).await.unwrap();
    // A counter that follows the log live sees cart 1's events before they go.
    let mut live = Sales::of("computer");
    let before = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    before.iter().for_each(|record| count_in(&mut live, record));
    assert_eq!((live.sold(), live.in_open_carts()), (0, 4));

    let stream = Cart::stream_id(&ID).unwrap();
    let deleted = store
        .delete_stream(&stream, ExpectedVersion::Any, Deletion::Soft)
        .await
        .unwrap();
    assert_eq!((deleted.version, deleted.removed), (StreamVersion(3), 2));
    assert!(!deleted.already_deleted);

    // A load folds nothing before the marker: the cart is new and empty, at the marker's version.
    let loaded = repository.load::<Cart>(&ID).await.unwrap();
    assert_eq!(loaded.state, Cart::default());
    assert_eq!(loaded.version, StreamVersion(3));
    // The other cart is untouched.
    let two = repository.load::<Cart>(&other).await.unwrap().state;
    assert_eq!(items(&two), [("computer", 1)]);

    // The events are in the archive, as they were stored.
    let archive = store.read_archive(&stream).await.unwrap();
    let archived: Vec<CartEvent> = archive.iter().map(|r| r.decode().unwrap()).collect();
    assert_eq!(archived, [added("computer", 3), added("mouse", 1)]);
    assert_eq!(
        archive.iter().map(|r| r.stream_version).collect::<Vec<_>>(),
        [StreamVersion(1), StreamVersion(2)]
    );

    // The log holds the marker instead; the live counter forgets the cart there, and agrees
    // with one folded over the log from the start.
    let after = before.last().unwrap().global_position;
    let marker = store.read_all(ReadAll::after(after)).await.unwrap();
    assert_eq!(marker.len(), 1);
    let through: StreamDeleted = marker[0].decode().unwrap();
    assert_eq!(through.through, StreamVersion(2));
    count_in(&mut live, &marker[0]);
    assert_eq!((live.sold(), live.in_open_carts()), (0, 1));
    assert_eq!(computers_in(&store).await, (0, 1));

    // The cart may start again, after the marker.
    let again = repository.send(add("computer", 1), md()).await.unwrap();
    assert_eq!(again.stream_version, StreamVersion(4));
    let cart = repository.load::<Cart>(&ID).await.unwrap().state;
    assert_eq!(items(&cart), [("computer", 1)]);
}
