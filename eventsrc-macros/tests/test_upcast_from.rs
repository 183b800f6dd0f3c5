//! `#[event(upcast_from = Old)]` with `#[event(superseded_by = Current)]` on the old shape: typed
//! upcast steps through `From`.
#![allow(missing_docs)]

use eventsrc::{DecodeError, Event, EventType, Versioned, registry};
use serde::{Deserialize, Serialize};

/// Version 1 stored the amount as a decimal string of euros.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(superseded_by = Deposited)]
pub struct DepositedV1 {
    pub amount: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "account.deposited", version = 2, upcast_from = DepositedV1)]
pub struct Deposited {
    pub cents: u64,
}

impl From<DepositedV1> for Deposited {
    fn from(old: DepositedV1) -> Self {
        let (euros, cents) = old.amount.split_once('.').unwrap_or((&old.amount, "0"));
        Self {
            cents: euros.parse::<u64>().unwrap_or(0) * 100 + cents.parse::<u64>().unwrap_or(0),
        }
    }
}

/// A chain of typed steps only: v1 → v2 → v3, each old shape reading the one before it.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 1, superseded_by = Renamed)]
pub struct RenamedV1 {
    pub name: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_from = RenamedV1, superseded_by = Renamed)]
pub struct RenamedV2 {
    pub first: String,
    pub last: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 3, upcast_from = RenamedV2)]
pub struct Renamed {
    pub first: String,
    pub last: String,
    pub display: String,
}

impl From<RenamedV1> for RenamedV2 {
    fn from(old: RenamedV1) -> Self {
        let (first, last) = old.name.split_once(' ').unwrap_or((&old.name, ""));
        Self {
            first: first.into(),
            last: last.into(),
        }
    }
}

impl From<RenamedV2> for Renamed {
    fn from(old: RenamedV2) -> Self {
        Self {
            display: format!("{}, {}", old.last, old.first),
            first: old.first,
            last: old.last,
        }
    }
}

#[derive(Event, Debug, Clone, PartialEq)]
pub enum AccountEvent {
    Deposited(Deposited),
    Renamed(Renamed),
}

#[test]
fn a_stored_old_version_is_read_as_the_old_shape_and_converted() {
    // Only `From<DepositedV1>` knows that "12.50" is 1250 cents.
    let event = Deposited::decode("account.deposited", 1, r#"{"amount":"12.50"}"#).unwrap();
    assert_eq!(event, Deposited { cents: 1250 });
}

#[test]
fn the_current_version_is_read_directly() {
    let event = Deposited::decode("account.deposited", 2, r#"{"cents":99}"#).unwrap();
    assert_eq!(event, Deposited { cents: 99 });
    // A v2 payload is never read as the v1 shape.
    assert!(matches!(
        Deposited::decode("account.deposited", 2, r#"{"amount":"1"}"#),
        Err(DecodeError::Malformed { version: 2, .. })
    ));
}

#[test]
fn the_versions_of_a_typed_chain() {
    assert_eq!(<DepositedV1 as Versioned>::VERSION, 1);
    assert_eq!(<DepositedV1 as Versioned>::OLDEST, 1);
    assert_eq!(<Deposited as Versioned>::VERSION, 2);
    assert_eq!(<Deposited as Versioned>::OLDEST, 1);
    assert_eq!(<Deposited as EventType>::VERSION, 2);
    assert_eq!(<RenamedV2 as Versioned>::VERSION, 2);
    assert_eq!(<Renamed as Versioned>::VERSION, 3);
    assert_eq!(<Renamed as Versioned>::OLDEST, 1);
}

#[test]
fn an_old_shape_reads_only_versions_up_to_its_own() {
    let old = <DepositedV1 as Versioned>::from_version("account.deposited", 1, r#"{"amount":"3"}"#)
        .unwrap();
    assert_eq!(old.amount, "3");
    match <DepositedV1 as Versioned>::from_version("account.deposited", 2, r#"{"cents":3}"#) {
        Err(DecodeError::FutureVersion {
            version, current, ..
        }) => assert_eq!((version, current), (2, 1)),
        other => panic!("expected a future version, got {other:?}"),
    }
}

#[test]
fn a_payload_that_does_not_fit_the_old_shape_names_the_stored_version() {
    match Deposited::decode("account.deposited", 1, r#"{"amount":12}"#) {
        Err(DecodeError::Malformed {
            event_type,
            version,
            source,
        }) => {
            assert_eq!((event_type.as_str(), version), ("account.deposited", 1));
            assert!(source.to_string().contains("string"), "{source}");
        }
        other => panic!("expected a malformed payload, got {other:?}"),
    }
}

#[test]
fn every_stored_version_of_a_three_step_typed_chain_reaches_the_current_shape() {
    let expected = Renamed {
        first: "Stefan".into(),
        last: "Ivanov".into(),
        display: "Ivanov, Stefan".into(),
    };
    let stored = [
        (1, r#"{"name":"Stefan Ivanov"}"#),
        (2, r#"{"first":"Stefan","last":"Ivanov"}"#),
        (
            3,
            r#"{"first":"Stefan","last":"Ivanov","display":"Ivanov, Stefan"}"#,
        ),
    ];
    for (version, payload) in stored {
        assert_eq!(
            Renamed::decode("Renamed", version, payload).unwrap(),
            expected,
            "stored version {version}"
        );
        assert_eq!(
            AccountEvent::decode("Renamed", version, payload).unwrap(),
            AccountEvent::Renamed(expected.clone()),
            "stored version {version}, through the enum"
        );
    }
    assert!(matches!(
        Renamed::decode("Renamed", 4, "{}"),
        Err(DecodeError::FutureVersion { current: 3, .. })
    ));
}

#[test]
fn the_current_value_encodes_in_the_current_shape_only() {
    let upcast = Renamed::decode("Renamed", 1, r#"{"name":"Ana Pop"}"#).unwrap();
    assert_eq!(upcast.schema_version(), 3);
    assert_eq!(
        upcast.encode().unwrap(),
        r#"{"first":"Ana","last":"Pop","display":"Pop, Ana"}"#
    );
}

#[test]
fn superseded_shapes_are_not_registered_as_events() {
    let events = registry::events();
    let types: Vec<&str> = events.iter().map(|e| e.rust_type).collect();
    for old in ["DepositedV1", "RenamedV1", "RenamedV2"] {
        assert!(
            !types.iter().any(|t| t.ends_with(&format!("::{old}"))),
            "{old} must not be registered: {types:?}"
        );
    }
    let deposited = events
        .iter()
        .find(|e| e.name == "account.deposited")
        .unwrap();
    assert_eq!((deposited.version, deposited.oldest_version), (2, 1));
    assert_eq!(
        deposited.rust_type,
        concat!(module_path!(), "::", "Deposited")
    );
    registry::check().unwrap();
}
