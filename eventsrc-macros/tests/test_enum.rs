//! `#[derive(Event)]` on enums: newtype variants delegate to their event struct; named-field
//! variants are events of their own (name, version, aliases, JSON steps, serde field attributes);
//! unit variants are events without payload.
#![allow(missing_docs)]

use eventsrc::{DecodeError, Event, EventType, Metadata, NewEvent, registry};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "cart.item_added", aliases = ["ItemPut"])]
pub struct ItemAdded {
    pub sku: String,
    pub quantity: u32,
}

fn price_from_cents(mut value: Value) -> Value {
    if let Some(cents) = value.as_object_mut().and_then(|o| o.remove("cents")) {
        value["price"] = json!(cents.as_u64().unwrap_or_default() as f64 / 100.0);
    }
    value
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_json = price_from_cents)]
pub struct PriceChanged {
    pub price: f64,
}

fn default_reason(mut value: Value) -> Value {
    value["why"] = "unknown".into();
    value
}

fn skip_empty(note: &str) -> bool {
    note.is_empty()
}

#[derive(Event, Debug, Clone, PartialEq)]
pub enum CartEvent {
    Added(ItemAdded),
    Price(PriceChanged),
    /// Default name: the variant name.
    Cleared {
        by: String,
    },
    #[event(
        name = "cart.item_removed",
        version = 2,
        aliases = ["ItemTakenOut"],
        upcast_json = default_reason
    )]
    Removed {
        sku: String,
        #[serde(rename = "why")]
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon: Option<String>,
        #[serde(default, skip_serializing_if = "skip_empty")]
        note: String,
    },
    CheckedOut,
    #[event(name = "cart.abandoned", aliases = ["Abandoned"])]
    Abandoned,
    /// Braces without fields are a unit event too.
    Emptied {},
}

fn removed() -> CartEvent {
    CartEvent::Removed {
        sku: "mouse".into(),
        reason: "broken".into(),
        coupon: None,
        note: String::new(),
    }
}

#[test]
fn newtype_variants_take_name_version_and_payload_from_their_struct() {
    let item = ItemAdded {
        sku: "laptop".into(),
        quantity: 2,
    };
    let added = CartEvent::Added(item.clone());
    assert_eq!(added.event_type(), <ItemAdded as EventType>::NAME);
    assert_eq!(added.schema_version(), item.schema_version());
    assert_eq!(added.encode().unwrap(), item.encode().unwrap());
    let price = CartEvent::Price(PriceChanged { price: 9.5 });
    assert_eq!(
        (price.event_type(), price.schema_version()),
        ("PriceChanged", 2)
    );
}

#[test]
fn newtype_variants_decode_through_their_struct_with_its_aliases_and_upcasts() {
    let payload = r#"{"sku":"laptop","quantity":2}"#;
    let expected = CartEvent::Added(ItemAdded {
        sku: "laptop".into(),
        quantity: 2,
    });
    assert_eq!(
        CartEvent::decode("cart.item_added", 1, payload).unwrap(),
        expected
    );
    assert_eq!(CartEvent::decode("ItemPut", 1, payload).unwrap(), expected);
    assert_eq!(
        CartEvent::decode("PriceChanged", 1, r#"{"cents":950}"#).unwrap(),
        CartEvent::Price(PriceChanged { price: 9.5 })
    );
    // The struct's errors come through unchanged.
    assert!(matches!(
        CartEvent::decode("cart.item_added", 1, r#"{"sku":"x"}"#),
        Err(DecodeError::Malformed { version: 1, .. })
    ));
}

#[test]
fn named_variants_encode_only_their_fields() {
    let cleared = CartEvent::Cleared { by: "Ana".into() };
    assert_eq!(cleared.encode().unwrap(), r#"{"by":"Ana"}"#);
    let new = NewEvent::from_event(&cleared, Metadata::new()).unwrap();
    assert_eq!(
        (&*new.event_type, new.schema_version, &*new.payload),
        ("Cleared", 1, r#"{"by":"Ana"}"#)
    );
}

#[test]
fn named_variants_have_their_own_name_version_and_aliases() {
    let removed = removed();
    assert_eq!(removed.event_type(), "cart.item_removed");
    assert_eq!(removed.schema_version(), 2);
    let payload = r#"{"sku":"mouse","why":"broken"}"#;
    for name in ["cart.item_removed", "ItemTakenOut"] {
        assert_eq!(CartEvent::decode(name, 2, payload).unwrap(), removed);
    }
    assert!(matches!(
        CartEvent::decode("Removed", 2, payload),
        Err(DecodeError::UnknownType { version: 2, .. })
    ));
}

#[test]
fn named_variants_honour_serde_field_attributes_both_ways() {
    // `rename`, and `skip_serializing_if` leaving out empty fields.
    assert_eq!(
        removed().encode().unwrap(),
        r#"{"sku":"mouse","why":"broken"}"#
    );
    let full = CartEvent::Removed {
        sku: "mouse".into(),
        reason: "broken".into(),
        coupon: Some("SPRING".into()),
        note: "late".into(),
    };
    let payload = full.encode().unwrap();
    assert_eq!(
        payload,
        r#"{"sku":"mouse","why":"broken","coupon":"SPRING","note":"late"}"#
    );
    assert_eq!(
        CartEvent::decode("cart.item_removed", 2, &payload).unwrap(),
        full
    );
    // `default` fills what is missing; the Rust name of a renamed field is not read.
    assert!(matches!(
        CartEvent::decode("cart.item_removed", 2, r#"{"sku":"m","reason":"x"}"#),
        Err(DecodeError::Malformed { version: 2, .. })
    ));
}

#[test]
fn named_variants_run_their_json_steps() {
    assert_eq!(
        CartEvent::decode("ItemTakenOut", 1, r#"{"sku":"mouse"}"#).unwrap(),
        CartEvent::Removed {
            sku: "mouse".into(),
            reason: "unknown".into(),
            coupon: None,
            note: String::new(),
        }
    );
    match CartEvent::decode("cart.item_removed", 3, "{}") {
        Err(DecodeError::FutureVersion {
            version, current, ..
        }) => assert_eq!((version, current), (3, 2)),
        other => panic!("expected a future version, got {other:?}"),
    }
}

#[test]
fn unit_variants_are_events_without_payload() {
    assert_eq!(CartEvent::CheckedOut.event_type(), "CheckedOut");
    assert_eq!(CartEvent::CheckedOut.encode().unwrap(), "{}");
    assert_eq!(CartEvent::Abandoned.event_type(), "cart.abandoned");
    assert_eq!(CartEvent::Emptied {}.event_type(), "Emptied");
    assert_eq!(CartEvent::Emptied {}.encode().unwrap(), "{}");
    assert_eq!(
        CartEvent::decode("CheckedOut", 1, "{}").unwrap(),
        CartEvent::CheckedOut
    );
    for name in ["cart.abandoned", "Abandoned"] {
        assert_eq!(
            CartEvent::decode(name, 1, "{}").unwrap(),
            CartEvent::Abandoned
        );
    }
    assert_eq!(
        CartEvent::decode("Emptied", 1, "{}").unwrap(),
        CartEvent::Emptied {}
    );
    assert!(matches!(
        CartEvent::decode("CheckedOut", 2, "{}"),
        Err(DecodeError::FutureVersion { current: 1, .. })
    ));
}

#[test]
fn every_variant_round_trips_through_a_new_event() {
    let all = [
        CartEvent::Added(ItemAdded {
            sku: "a".into(),
            quantity: 1,
        }),
        CartEvent::Price(PriceChanged { price: 1.25 }),
        CartEvent::Cleared { by: "b".into() },
        removed(),
        CartEvent::CheckedOut,
        CartEvent::Abandoned,
        CartEvent::Emptied {},
    ];
    for event in all {
        let new = NewEvent::from_event(&event, Metadata::new()).unwrap();
        let back = CartEvent::decode(&new.event_type, new.schema_version, &new.payload).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn an_unknown_name_is_an_error_naming_it_and_its_version() {
    match CartEvent::decode("cart.item_returned", 6, "{}") {
        Err(DecodeError::UnknownType {
            event_type,
            version,
        }) => assert_eq!((event_type.as_str(), version), ("cart.item_returned", 6)),
        other => panic!("expected an unknown type, got {other:?}"),
    }
    // Neither variant names of newtype variants nor the Rust names of structs are stored names.
    for wrong in ["Added", "Price", "ItemAdded", "cartevent", ""] {
        assert!(
            matches!(
                CartEvent::decode(wrong, 1, "{}"),
                Err(DecodeError::UnknownType { .. })
            ),
            "{wrong:?}"
        );
    }
}

#[test]
fn named_and_unit_variants_are_registered_but_newtype_variants_only_through_their_struct() {
    let events = registry::events();
    let of = |name: &str| events.iter().filter(|e| e.name == name).count();
    for name in [
        "cart.item_removed",
        "Cleared",
        "CheckedOut",
        "cart.abandoned",
        "Emptied",
        "cart.item_added",
        "PriceChanged",
    ] {
        assert_eq!(of(name), 1, "{name} is registered once: {events:?}");
    }
    assert_eq!(of("Added"), 0);
    let removed = events
        .iter()
        .find(|e| e.name == "cart.item_removed")
        .unwrap();
    assert_eq!(removed.version, 2);
    assert_eq!(removed.aliases, ["ItemTakenOut"]);
    assert_eq!(
        removed.rust_type,
        concat!(module_path!(), "::CartEvent::Removed")
    );
    assert_eq!(
        registry::decode_json("ItemTakenOut", 1, r#"{"sku":"s"}"#).unwrap(),
        json!({ "sku": "s", "why": "unknown" })
    );
    assert_eq!(
        registry::decode_json("Abandoned", 1, "{}").unwrap(),
        json!({})
    );
    registry::check().unwrap();
}
