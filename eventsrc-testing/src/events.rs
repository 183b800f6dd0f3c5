//! One-line event checks: round trips through the stored form, and upcasts of old payloads
//! (the serialize/unserialize tests that would otherwise be written by hand for every event).

use std::fmt::Debug;

use eventsrc_core::{Event, registry};

/// Asserts that `event` survives encode → decode unchanged, and, when its name is registered,
/// that the [`registry`] decodes its payload too.
///
/// ```
/// # use eventsrc::Event;
/// # use serde::{Deserialize, Serialize};
/// #[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
/// struct ItemAdded { sku: String, quantity: u32 }
///
/// eventsrc_testing::assert_round_trip(&ItemAdded { sku: "laptop".into(), quantity: 2 });
/// ```
#[track_caller]
pub fn assert_round_trip<E: Event + Debug + PartialEq>(event: &E) {
    check_round_trip(event);
}

#[track_caller]
pub(crate) fn check_round_trip<E: Event + Debug + PartialEq>(event: &E) {
    let (name, version) = (event.event_type(), event.schema_version());
    let payload = match event.encode() {
        Ok(payload) => payload,
        Err(error) => panic!("event `{name}` v{version} does not encode: {error}\n{event:#?}"),
    };
    match E::decode(name, version, &payload) {
        Ok(decoded) if decoded == *event => {}
        Ok(decoded) => panic!(
            "event `{name}` v{version} changes through encode/decode (- before, + after):\n{}\npayload: {payload}",
            crate::diff::lines(&format!("{event:#?}"), &format!("{decoded:#?}"))
        ),
        Err(error) => {
            panic!(
                "event `{name}` v{version} does not decode its own payload: {error}\npayload: {payload}"
            )
        }
    }
    if registry::find(name).is_some()
        && let Err(error) = registry::decode_json(name, version, &payload)
    {
        panic!("the registry cannot decode event `{name}` v{version}: {error}\npayload: {payload}");
    }
}

/// Asserts that a payload stored as `event_type` at `version` (typically an old version, read
/// from a fixture file with `include_str!`) decodes to `expected`, the current shape.
///
/// ```
/// # use eventsrc::Event;
/// # use serde::{Deserialize, Serialize};
/// fn default_quantity(mut v: serde_json::Value) -> serde_json::Value {
///     v["quantity"] = 1.into();
///     v
/// }
///
/// #[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
/// #[event(version = 2, upcast_json = default_quantity)]
/// struct ItemAdded { sku: String, quantity: u32 }
///
/// // In a real test: include_str!("fixtures/item_added_v1.json")
/// let stored_v1 = r#"{"sku":"laptop"}"#;
/// eventsrc_testing::assert_upcasts("ItemAdded", 1, stored_v1, &ItemAdded { sku: "laptop".into(), quantity: 1 });
/// ```
#[track_caller]
pub fn assert_upcasts<E: Event + Debug + PartialEq>(
    event_type: &str,
    version: u32,
    payload: &str,
    expected: &E,
) {
    match E::decode(event_type, version, payload) {
        Ok(decoded) if decoded == *expected => {}
        Ok(decoded) => panic!(
            "stored `{event_type}` v{version} decodes to another value (- expected, + actual):\n{}",
            crate::diff::lines(&format!("{expected:#?}"), &format!("{decoded:#?}"))
        ),
        Err(error) => {
            panic!("stored `{event_type}` v{version} does not decode: {error}\npayload: {payload}")
        }
    }
}

/// Asserts the exact stored form of `event`: its name, schema version and payload text (and
/// that it round-trips, as [`assert_round_trip`]).
///
/// ```
/// # use eventsrc::Event;
/// # use serde::{Deserialize, Serialize};
/// #[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
/// #[event(name = "cart.item_added")]
/// struct ItemAdded { sku: String }
///
/// eventsrc_testing::assert_stored_as(&ItemAdded { sku: "laptop".into() }, "cart.item_added", 1, r#"{"sku":"laptop"}"#);
/// ```
#[track_caller]
pub fn assert_stored_as<E: Event + Debug + PartialEq>(
    event: &E,
    event_type: &str,
    schema_version: u32,
    payload: &str,
) {
    let stored = (event.event_type(), event.schema_version());
    if stored != (event_type, schema_version) {
        panic!(
            "{event:?} is stored as `{}` v{}, expected `{event_type}` v{schema_version}",
            stored.0, stored.1
        );
    }
    match event.encode() {
        Ok(actual) if actual == payload => {}
        Ok(actual) => panic!(
            "`{event_type}` v{schema_version} has another payload (- expected, + actual):\n{}",
            crate::diff::lines(payload, &actual)
        ),
        Err(error) => panic!("`{event_type}` v{schema_version} does not encode: {error}"),
    }
    check_round_trip(event);
}
