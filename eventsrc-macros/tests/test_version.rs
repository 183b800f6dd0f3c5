//! `#[event(version = n)]`: the schema version a value is written with (default 1), and the
//! refusal of payloads written by newer code.
#![allow(missing_docs)]

use eventsrc::{DecodeError, Event, EventType, Metadata, NewEvent, Versioned};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Opened {
    pub owner: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 1)]
pub struct Closed;

fn add_currency(mut value: Value) -> Value {
    value["currency"] = "EUR".into();
    value
}

fn cents_from_amount(mut value: Value) -> Value {
    let amount = value["amount"].as_u64().unwrap_or_default();
    value["cents"] = (amount * 100).into();
    value
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 3, upcast_json = [add_currency, cents_from_amount])]
pub struct Deposited {
    pub cents: u64,
    pub currency: String,
}

#[derive(Event, Debug, Clone, PartialEq)]
pub enum AccountEvent {
    Opened(Opened),
    Deposited(Deposited),
    #[event(version = 2, upcast_json = add_currency)]
    Fee {
        cents: u64,
        currency: String,
    },
    Frozen,
}

#[test]
fn the_default_version_is_1() {
    assert_eq!(<Opened as EventType>::VERSION, 1);
    assert_eq!(<Opened as Versioned>::VERSION, 1);
    assert_eq!(<Opened as Versioned>::OLDEST, 1);
    assert_eq!(
        Opened {
            owner: "Ana".into()
        }
        .schema_version(),
        1
    );
    assert_eq!(<Closed as EventType>::VERSION, 1);
    assert_eq!(Closed.schema_version(), 1);
}

#[test]
fn the_declared_version_is_reported_and_stored() {
    let event = Deposited {
        cents: 250,
        currency: "EUR".into(),
    };
    assert_eq!(<Deposited as EventType>::VERSION, 3);
    assert_eq!(<Deposited as Versioned>::VERSION, 3);
    assert_eq!(event.schema_version(), 3);
    let new = NewEvent::from_event(&event, Metadata::new()).unwrap();
    assert_eq!(new.schema_version, 3);
    assert_eq!(
        Deposited::decode("Deposited", 3, &new.payload).unwrap(),
        event
    );
}

#[test]
fn enum_variants_report_their_own_versions() {
    let deposited = AccountEvent::Deposited(Deposited {
        cents: 1,
        currency: "EUR".into(),
    });
    assert_eq!(deposited.schema_version(), 3);
    let opened = AccountEvent::Opened(Opened { owner: "x".into() });
    assert_eq!(opened.schema_version(), 1);
    let fee = AccountEvent::Fee {
        cents: 5,
        currency: "EUR".into(),
    };
    assert_eq!(fee.schema_version(), 2);
    assert_eq!(AccountEvent::Frozen.schema_version(), 1);
    let new = NewEvent::from_event(&fee, Metadata::new()).unwrap();
    assert_eq!((&*new.event_type, new.schema_version), ("Fee", 2));
}

fn assert_future(result: Result<impl std::fmt::Debug, DecodeError>, name: &str, at: u32, now: u32) {
    match result {
        Err(DecodeError::FutureVersion {
            event_type,
            version,
            current,
        }) => assert_eq!((event_type.as_str(), version, current), (name, at, now)),
        other => panic!("expected a future version {at} of `{name}`, got {other:?}"),
    }
}

#[test]
fn a_payload_from_a_newer_version_is_refused_with_both_versions() {
    assert_future(
        Opened::decode("Opened", 2, r#"{"owner":"x"}"#),
        "Opened",
        2,
        1,
    );
    assert_future(
        Deposited::decode("Deposited", 4, r#"{"cents":1,"currency":"EUR"}"#),
        "Deposited",
        4,
        3,
    );
    assert_future(
        Closed::decode("Closed", u32::MAX, "null"),
        "Closed",
        u32::MAX,
        1,
    );
    let message = Deposited::decode("Deposited", 7, "{}")
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "event `Deposited` has schema version 7, newer than this code's version 3"
    );
}

#[test]
fn the_version_is_checked_before_the_payload_is_read() {
    // A newer writer may have changed the shape entirely: the error says "newer", not "malformed".
    assert_future(
        Deposited::decode("Deposited", 4, "not even json"),
        "Deposited",
        4,
        3,
    );
    assert_future(AccountEvent::decode("Fee", 3, "[1, 2]"), "Fee", 3, 2);
}

#[test]
fn a_payload_from_a_newer_version_is_refused_by_every_enum_variant_form() {
    assert_future(
        AccountEvent::decode("Opened", 2, r#"{"owner":"x"}"#),
        "Opened",
        2,
        1,
    );
    assert_future(
        AccountEvent::decode("Deposited", 5, "{}"),
        "Deposited",
        5,
        3,
    );
    assert_future(AccountEvent::decode("Frozen", 2, "{}"), "Frozen", 2, 1);
}

#[test]
fn every_version_up_to_the_current_one_is_read() {
    let expected = Deposited {
        cents: 300,
        currency: "EUR".into(),
    };
    let stored = [
        (1, r#"{"amount":3}"#),
        (2, r#"{"amount":3,"currency":"EUR"}"#),
        (3, r#"{"cents":300,"currency":"EUR"}"#),
    ];
    for (version, payload) in stored {
        assert_eq!(
            Deposited::decode("Deposited", version, payload).unwrap(),
            expected,
            "stored version {version}"
        );
    }
    assert_eq!(
        AccountEvent::decode("Fee", 1, r#"{"cents":20}"#).unwrap(),
        AccountEvent::Fee {
            cents: 20,
            currency: "EUR".into()
        }
    );
}

#[test]
fn version_0_is_not_a_stored_version() {
    match Opened::decode("Opened", 0, r#"{"owner":"x"}"#) {
        Err(DecodeError::Upcast {
            event_type,
            version,
            reason,
        }) => {
            assert_eq!((event_type.as_str(), version), ("Opened", 0));
            assert!(reason.contains("oldest readable version is 1"), "{reason}");
        }
        other => panic!("expected no upcast path, got {other:?}"),
    }
    assert!(matches!(
        Deposited::decode("Deposited", 0, r#"{"amount":1}"#),
        Err(DecodeError::Upcast { version: 0, .. })
    ));
}
