//! `#[event(upcast_json = f)]` and `upcast_json = [f, g]`: steps on the stored JSON, each taking
//! version k to k + 1, infallible (`fn(Value) -> Value`) or fallible (`-> Result<Value, E>`).
#![allow(missing_docs)]

use eventsrc::{DecodeError, Event, Versioned, registry};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn split_name(mut value: Value) -> Value {
    let full = value["name"].as_str().unwrap_or_default().to_owned();
    let (first, last) = full.split_once(' ').unwrap_or((&full, ""));
    value["first"] = first.into();
    value["last"] = last.into();
    value
}

/// One infallible step: v1 `{name}` → v2 `{first, last}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_json = split_name)]
pub struct NameChanged {
    pub first: String,
    pub last: String,
}

/// v1 → v2: the field `qty` is renamed `quantity`.
fn rename_qty(mut value: Value) -> Value {
    if let Some(qty) = value.as_object_mut().and_then(|o| o.remove("qty")) {
        value["quantity"] = qty;
    }
    value
}

/// v2 → v3: reads the field the previous step wrote, so the steps must run in order.
fn total_from_quantity(mut value: Value) -> Result<Value, String> {
    let quantity = value["quantity"]
        .as_u64()
        .ok_or_else(|| format!("no quantity in {value}"))?;
    let price = value["price"].as_u64().unwrap_or(1);
    value["total"] = (quantity * price).into();
    Ok(value)
}

/// Two steps, the second fallible with a `String` error.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "cart.item_added", version = 3, upcast_json = [rename_qty, total_from_quantity])]
pub struct ItemAdded {
    pub sku: String,
    pub quantity: u64,
    pub price: u64,
    pub total: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("currency `{0}` is no longer accepted")]
pub struct RetiredCurrency(String);

fn to_euros(mut value: Value) -> Result<Value, RetiredCurrency> {
    match value["currency"].as_str() {
        Some("EUR") => {}
        Some("BGN") => {
            let cents = value["cents"].as_u64().unwrap_or_default();
            value["cents"] = (cents * 100 / 196).into();
        }
        other => return Err(RetiredCurrency(other.unwrap_or("none").to_owned())),
    }
    value.as_object_mut().map(|o| o.remove("currency"));
    Ok(value)
}

/// One fallible step with a custom error type.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_json = to_euros)]
pub struct Paid {
    pub cents: u64,
}

fn add_note(mut value: Value) -> Value {
    value["note"] = "".into();
    value
}

/// Version 3 with a single JSON step and no typed step: version 1 has no way up.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 3, upcast_json = add_note)]
pub struct Annotated {
    pub note: String,
}

fn default_quantity(mut value: Value) -> Value {
    value["quantity"] = 1.into();
    value
}

fn quantity_must_be_positive(value: Value) -> Result<Value, &'static str> {
    match value["quantity"].as_u64() {
        Some(0) => Err("a removal of nothing"),
        _ => Ok(value),
    }
}

#[derive(Event, Debug, Clone, PartialEq)]
pub enum CartEvent {
    ItemAdded(ItemAdded),
    #[event(
        name = "cart.item_removed",
        version = 3,
        upcast_json = [default_quantity, quantity_must_be_positive]
    )]
    ItemRemoved {
        sku: String,
        quantity: u32,
    },
}

fn assert_upcast_error<T: std::fmt::Debug>(
    result: Result<T, DecodeError>,
    name: &str,
    at: u32,
    reason_part: &str,
) -> String {
    let error = result.expect_err("the upcast must fail");
    match &error {
        DecodeError::Upcast {
            event_type,
            version,
            reason,
        } => {
            assert_eq!((event_type.as_str(), *version), (name, at));
            assert!(reason.contains(reason_part), "{reason}");
        }
        other => panic!("expected an upcast error at version {at}, got {other:?}"),
    }
    error.to_string()
}

#[test]
fn one_step_takes_version_1_to_version_2() {
    let event = NameChanged::decode("NameChanged", 1, r#"{"name":"Stefan Ivanov"}"#).unwrap();
    assert_eq!(
        event,
        NameChanged {
            first: "Stefan".into(),
            last: "Ivanov".into()
        }
    );
    let current = NameChanged::decode("NameChanged", 2, r#"{"first":"Ana","last":""}"#).unwrap();
    assert_eq!(current.first, "Ana");
    assert_eq!(<NameChanged as Versioned>::OLDEST, 1);
}

#[test]
fn a_list_of_steps_runs_in_order_from_the_stored_version() {
    let expected = ItemAdded {
        sku: "laptop".into(),
        quantity: 2,
        price: 300,
        total: 600,
    };
    let stored = [
        (1, r#"{"sku":"laptop","qty":2,"price":300}"#),
        (2, r#"{"sku":"laptop","quantity":2,"price":300}"#),
        (
            3,
            r#"{"sku":"laptop","quantity":2,"price":300,"total":600}"#,
        ),
    ];
    for (version, payload) in stored {
        assert_eq!(
            ItemAdded::decode("cart.item_added", version, payload).unwrap(),
            expected,
            "stored version {version}"
        );
    }
    assert_eq!(<ItemAdded as Versioned>::OLDEST, 1);
    assert_eq!(<ItemAdded as Versioned>::VERSION, 3);
}

#[test]
fn steps_below_the_stored_version_are_skipped() {
    // A v2 payload still holding `qty` is not renamed again: `rename_qty` is the v1 step, and
    // without `quantity` the v2 step refuses.
    let message = assert_upcast_error(
        ItemAdded::decode("cart.item_added", 2, r#"{"sku":"x","qty":2}"#),
        "cart.item_added",
        2,
        "no quantity",
    );
    assert!(
        message.starts_with(
            "event `cart.item_added` cannot be upcast from schema version 2: no quantity"
        ),
        "{message}"
    );
}

#[test]
fn a_failing_step_is_an_upcast_error_naming_the_version_it_started_from() {
    // Stored at version 1: the first step runs, the second (2 → 3) refuses.
    assert_upcast_error(
        ItemAdded::decode("cart.item_added", 1, r#"{"sku":"x"}"#),
        "cart.item_added",
        2,
        "no quantity",
    );
    let message = assert_upcast_error(
        Paid::decode("Paid", 1, r#"{"cents":100,"currency":"USD"}"#),
        "Paid",
        1,
        "currency `USD` is no longer accepted",
    );
    assert_eq!(
        message,
        "event `Paid` cannot be upcast from schema version 1: currency `USD` is no longer accepted"
    );
}

#[test]
fn a_fallible_step_that_succeeds_is_used() {
    assert_eq!(
        Paid::decode("Paid", 1, r#"{"cents":196,"currency":"BGN"}"#).unwrap(),
        Paid { cents: 100 }
    );
    assert_eq!(
        Paid::decode("Paid", 1, r#"{"cents":5,"currency":"EUR"}"#).unwrap(),
        Paid { cents: 5 }
    );
}

#[test]
fn an_old_payload_that_is_not_json_is_malformed_at_its_stored_version() {
    match NameChanged::decode("NameChanged", 1, "{name: Stefan}") {
        Err(DecodeError::Malformed {
            event_type,
            version,
            ..
        }) => assert_eq!((event_type.as_str(), version), ("NameChanged", 1)),
        other => panic!("expected a malformed payload, got {other:?}"),
    }
}

#[test]
fn a_result_that_does_not_fit_the_current_type_is_malformed_at_the_stored_version() {
    // Both steps run on a v1 payload without `sku`; the result lacks a field of the current type.
    match ItemAdded::decode("cart.item_added", 1, r#"{"qty":1}"#) {
        Err(DecodeError::Malformed {
            source, version, ..
        }) => {
            assert_eq!(version, 1);
            assert!(source.to_string().contains("sku"), "{source}");
        }
        other => panic!("expected a malformed payload, got {other:?}"),
    }
}

#[test]
fn a_payload_at_the_current_version_is_not_read_through_a_json_value() {
    // serde's derive rejects a repeated field when it reads the text itself; a `Value` would
    // have kept the last one. The current version is read from the text.
    let repeated = r#"{"first":"A","last":"B","first":"C"}"#;
    assert!(matches!(
        NameChanged::decode("NameChanged", 2, repeated),
        Err(DecodeError::Malformed { version: 2, .. })
    ));
}

#[test]
fn versions_below_the_first_step_have_no_upcast_path() {
    assert_eq!(<Annotated as Versioned>::OLDEST, 2);
    assert_eq!(
        Annotated::decode("Annotated", 2, "{}").unwrap(),
        Annotated { note: "".into() }
    );
    assert_upcast_error(
        Annotated::decode("Annotated", 1, "{}"),
        "Annotated",
        1,
        "no upcast path: the oldest readable version is 2",
    );
    // The registry's start-up check reports exactly this gap (and nothing else in this binary).
    let problems = registry::check().unwrap_err().0;
    assert_eq!(
        problems,
        [registry::RegistryProblem::MissingUpcastPath {
            name: "Annotated",
            rust_type: concat!(module_path!(), "::Annotated"),
            version: 3,
            oldest_version: 2,
        }]
    );
}

#[test]
fn named_enum_variants_run_their_own_steps() {
    let expected = CartEvent::ItemRemoved {
        sku: "mouse".into(),
        quantity: 1,
    };
    assert_eq!(
        CartEvent::decode("cart.item_removed", 1, r#"{"sku":"mouse"}"#).unwrap(),
        expected
    );
    assert_eq!(
        CartEvent::decode("cart.item_removed", 2, r#"{"sku":"mouse","quantity":1}"#).unwrap(),
        expected
    );
    assert_upcast_error(
        CartEvent::decode("cart.item_removed", 2, r#"{"sku":"mouse","quantity":0}"#),
        "cart.item_removed",
        2,
        "a removal of nothing",
    );
    // Version 3 is current: no step runs, so a zero quantity is stored as it is.
    assert_eq!(
        CartEvent::decode("cart.item_removed", 3, r#"{"sku":"m","quantity":0}"#).unwrap(),
        CartEvent::ItemRemoved {
            sku: "m".into(),
            quantity: 0
        }
    );
    assert_eq!(
        CartEvent::decode("cart.item_added", 1, r#"{"sku":"k","qty":1,"price":2}"#).unwrap(),
        CartEvent::ItemAdded(ItemAdded {
            sku: "k".into(),
            quantity: 1,
            price: 2,
            total: 2
        })
    );
}

#[test]
fn the_registry_upcasts_an_old_payload_to_the_current_json() {
    assert_eq!(
        registry::decode_json("cart.item_added", 1, r#"{"sku":"s","qty":3,"price":2}"#).unwrap(),
        json!({ "sku": "s", "quantity": 3, "price": 2, "total": 6 })
    );
    assert_eq!(
        registry::decode_json("cart.item_removed", 1, r#"{"sku":"s"}"#).unwrap(),
        json!({ "sku": "s", "quantity": 1 })
    );
}
