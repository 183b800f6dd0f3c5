//! Specs for seed 004's cart: given events, when a command, then events (or an error); the
//! stored form of each event; the "total computers sold" counter; and a cart's life through a
//! repository.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use eventsrc::store::ReadAll;
use eventsrc::{
    Aggregate, Command, Event, EventStore, EventType, ExecuteError, GlobalPosition, Handle,
    MemoryStore, Metadata, Repository, StreamId, StreamVersion,
};
use eventsrc_examples::cart::{
    AddItem, Cart, CartError, CartEvent, CartId, CheckedOut, Checkout, ItemAdded, ItemRemoved,
    MAX_QUANTITY, RemoveItem, Sales,
};
use eventsrc_examples::store::AnyStore;

const ID: CartId = CartId(1);

fn given(events: &[CartEvent]) -> Cart {
    let mut cart = Cart::default();
    for event in events {
        cart.apply(event);
    }
    cart
}

fn when<C: Command>(cart: &Cart, command: C) -> Result<Vec<CartEvent>, CartError>
where
    Cart: Handle<C>,
{
    cart.handle(&command)
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

/// The talk's slide: two computers, a mouse, one computer back, checkout.
fn the_slide() -> Vec<CartEvent> {
    vec![
        added("computer", 1),
        added("computer", 1),
        added("mouse", 1),
        removed("computer", 1),
        checked_out(),
    ]
}

fn failing_fields(command: &impl Command) -> Vec<&'static str> {
    match command.validate() {
        Ok(()) => vec![],
        Err(error) => error.fields.iter().map(|f| f.field).collect(),
    }
}

// --- the fold ------------------------------------------------------------------------------------

#[test]
fn the_cart_is_a_fold_over_its_events() {
    let mut cart = Cart::default();
    let mut seen = Vec::new();
    for event in the_slide() {
        cart.apply(&event);
        let items: Vec<(String, u32)> = cart.items().clone().into_iter().collect();
        seen.push((items, cart.is_checked_out()));
    }
    let item = |sku: &str, units| (sku.to_owned(), units);
    assert_eq!(
        seen,
        [
            (vec![item("computer", 1)], false),
            (vec![item("computer", 2)], false),
            (vec![item("computer", 2), item("mouse", 1)], false),
            (vec![item("computer", 1), item("mouse", 1)], false),
            (vec![item("computer", 1), item("mouse", 1)], true),
        ]
    );
}

#[test]
fn removing_the_last_unit_takes_the_item_out() {
    let cart = given(&[added("mouse", 2), removed("mouse", 2)]);
    assert!(cart.is_empty());
    assert_eq!(cart.quantity("mouse"), 0);
}

// --- AddItem -------------------------------------------------------------------------------------

#[test]
fn adding_records_the_trimmed_sku_and_quantity() {
    let events = when(&given(&[]), add(" computer ", 2)).unwrap();
    assert_eq!(events, [added("computer", 2)]);
}

#[test]
fn add_item_validates_every_field() {
    assert!(add("computer", 1).validate().is_ok());
    // The bound in `#[validate(range(...))]` is a literal; it must agree with the constant.
    assert!(add("computer", MAX_QUANTITY).validate().is_ok());
    assert_eq!(failing_fields(&add("computer", 0)), ["quantity"]);
    assert_eq!(
        failing_fields(&add("computer", MAX_QUANTITY + 1)),
        ["quantity"]
    );
    assert_eq!(
        failing_fields(&remove("computer", MAX_QUANTITY + 1)),
        ["quantity"]
    );
    let error = add("  ", 0).validate().unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid command: `sku` must not be empty; `quantity` must be between 1 and 99"
    );
}

// --- RemoveItem ----------------------------------------------------------------------------------

#[test]
fn removing_an_item_in_the_cart_records_it() {
    let cart = given(&[added("computer", 2)]);
    assert_eq!(
        when(&cart, remove("computer", 1)),
        Ok(vec![removed("computer", 1)])
    );
    assert_eq!(
        when(&cart, remove("computer", 2)),
        Ok(vec![removed("computer", 2)])
    );
}

#[test]
fn removing_what_is_not_in_the_cart_is_rejected() {
    let cart = given(&[added("computer", 2), added("mouse", 1), removed("mouse", 1)]);
    for sku in ["keyboard", "mouse"] {
        assert_eq!(
            when(&cart, remove(sku, 1)),
            Err(CartError::NotInCart { sku: sku.into() })
        );
    }
    assert_eq!(
        when(&cart, remove("computer", 3)),
        Err(CartError::TooFew {
            sku: "computer".into(),
            held: 2,
            requested: 3
        })
    );
    assert_eq!(failing_fields(&remove("", 0)), ["sku", "quantity"]);
}

// --- Checkout ------------------------------------------------------------------------------------

#[test]
fn checking_out_records_it() {
    let cart = given(&[added("computer", 1)]);
    assert_eq!(when(&cart, CHECKOUT), Ok(vec![checked_out()]));
}

#[test]
fn an_empty_cart_cannot_be_checked_out() {
    assert_eq!(when(&given(&[]), CHECKOUT), Err(CartError::Empty));
    let emptied = given(&[added("computer", 1), removed("computer", 1)]);
    assert_eq!(when(&emptied, CHECKOUT), Err(CartError::Empty));
}

#[test]
fn checking_out_twice_is_a_noop() {
    assert_eq!(when(&given(&the_slide()), CHECKOUT), Ok(vec![]));
}

#[test]
fn a_checked_out_cart_takes_no_more_changes() {
    let cart = given(&the_slide());
    assert_eq!(when(&cart, add("computer", 1)), Err(CartError::CheckedOut));
    assert_eq!(when(&cart, remove("mouse", 1)), Err(CartError::CheckedOut));
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
        assert_eq!(event.event_type(), name);
        assert_eq!(event.schema_version(), 1);
        assert_eq!(event.encode().unwrap(), payload);
        assert_eq!(CartEvent::decode(name, 1, payload).unwrap(), event);
    }
    let item = ItemAdded {
        sku: "computer".into(),
        quantity: 2,
    };
    let payload = item.encode().unwrap();
    assert_eq!(
        ItemAdded::decode(<ItemAdded as EventType>::NAME, 1, &payload).unwrap(),
        item
    );
    assert!(CartEvent::decode("ItemAdded", 1, r#"{"sku":"computer"}"#).is_err());
    assert!(CartEvent::decode("CartEmptied", 1, "{}").is_err());
}

// --- total computers sold ------------------------------------------------------------------------

#[test]
fn computers_sold_is_a_counter_folded_over_the_events() {
    let cart = StreamId::new("cart", 1).unwrap();
    let mut computers = Sales::of("computer");
    let mut counts = Vec::new();
    for event in the_slide() {
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
async fn the_slide_runs_through_the_repository() {
    the_slide_through_a_repository_on(MemoryStore::new()).await;
}

#[tokio::test]
async fn the_slide_runs_through_the_repository_on_sqlite() {
    let store = AnyStore::open("sqlite::memory:").await.unwrap();
    the_slide_through_a_repository_on(store).await;
}

async fn the_slide_through_a_repository_on(store: impl EventStore + Clone) {
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
    assert_eq!(cart.state, given(&the_slide()));

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
