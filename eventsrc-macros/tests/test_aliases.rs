//! `#[event(aliases = [...])]`: old stored names still decode as the event; new records always
//! carry the current name; the registry answers to the old names.
#![allow(missing_docs)]

use eventsrc::{DecodeError, Event, EventType, Metadata, NewEvent, registry};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(
    name = "lead.contact_changed",
    aliases = ["ContactInformationChanged", "lead.contact_updated"]
)]
pub struct ContactChanged {
    pub email: String,
}

/// A single alias may be written without brackets; the default name stays the type name.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(aliases = "LeadDropped")]
pub struct LeadLost {
    pub reason: String,
}

fn email_from_contact(mut value: Value) -> Value {
    if let Some(contact) = value.get("contact").cloned() {
        value["email"] = contact;
    }
    value
}

/// Renamed and reshaped at once: old records carry the old name and the old version.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(
    name = "lead.owner_assigned",
    version = 2,
    aliases = ["OwnerSet"],
    upcast_json = email_from_contact
)]
pub struct OwnerAssigned {
    pub email: String,
}

#[derive(Event, Debug, Clone, PartialEq)]
pub enum LeadEvent {
    Contact(ContactChanged),
    Lost(LeadLost),
    #[event(name = "lead.called", aliases = ["PhoneCallMade", "Called"])]
    Called {
        minutes: u32,
    },
    #[event(name = "lead.archived", aliases = ["Archived"])]
    Archived,
}

#[test]
fn aliases_are_listed_on_the_type() {
    assert_eq!(
        <ContactChanged as EventType>::ALIASES,
        ["ContactInformationChanged", "lead.contact_updated"]
    );
    assert_eq!(<LeadLost as EventType>::ALIASES, ["LeadDropped"]);
    assert!(<OwnerAssigned as EventType>::ALIASES.contains(&"OwnerSet"));
}

#[test]
fn every_old_name_decodes_as_the_event() {
    let payload = r#"{"email":"stefan@example.com"}"#;
    for name in [
        "lead.contact_changed",
        "ContactInformationChanged",
        "lead.contact_updated",
    ] {
        let event = ContactChanged::decode(name, 1, payload).unwrap();
        assert_eq!(event.email, "stefan@example.com", "stored as {name}");
    }
    let lost = LeadLost::decode("LeadDropped", 1, r#"{"reason":"price"}"#).unwrap();
    assert_eq!(lost.reason, "price");
    assert_eq!(
        LeadLost::decode("LeadLost", 1, r#"{"reason":"price"}"#).unwrap(),
        lost
    );
}

#[test]
fn the_type_name_is_not_an_alias_when_a_name_is_given() {
    assert!(matches!(
        ContactChanged::decode("ContactChanged", 1, r#"{"email":"x"}"#),
        Err(DecodeError::UnknownType { version: 1, .. })
    ));
}

#[test]
fn encoding_a_value_decoded_from_an_alias_writes_the_current_name() {
    let old =
        ContactChanged::decode("ContactInformationChanged", 1, r#"{"email":"a@b.c"}"#).unwrap();
    assert_eq!(old.event_type(), "lead.contact_changed");
    let new = NewEvent::from_event(&old, Metadata::new()).unwrap();
    assert_eq!(new.event_type, "lead.contact_changed");

    let lost = LeadLost::decode("LeadDropped", 1, r#"{"reason":"r"}"#).unwrap();
    assert_eq!(
        NewEvent::from_event(&lost, Metadata::new())
            .unwrap()
            .event_type,
        "LeadLost"
    );
}

#[test]
fn an_old_name_at_an_old_version_is_upcast() {
    let event = OwnerAssigned::decode("OwnerSet", 1, r#"{"contact":"ana@example.com"}"#).unwrap();
    assert_eq!(
        event,
        OwnerAssigned {
            email: "ana@example.com".into()
        }
    );
    assert_eq!(event.event_type(), "lead.owner_assigned");
    assert_eq!(event.schema_version(), 2);
}

#[test]
fn errors_name_the_stored_alias_not_the_current_name() {
    // The error must point at what is in the store.
    match OwnerAssigned::decode("OwnerSet", 3, "{}") {
        Err(DecodeError::FutureVersion {
            event_type,
            version,
            current,
        }) => assert_eq!((event_type.as_str(), version, current), ("OwnerSet", 3, 2)),
        other => panic!("expected a future version, got {other:?}"),
    }
    match ContactChanged::decode("lead.contact_updated", 1, r#"{"mail":"x"}"#) {
        Err(DecodeError::Malformed {
            event_type,
            version,
            ..
        }) => assert_eq!((event_type.as_str(), version), ("lead.contact_updated", 1)),
        other => panic!("expected a malformed payload, got {other:?}"),
    }
}

#[test]
fn enums_decode_the_aliases_of_wrapped_structs_and_of_their_own_variants() {
    assert_eq!(
        LeadEvent::decode("ContactInformationChanged", 1, r#"{"email":"e"}"#).unwrap(),
        LeadEvent::Contact(ContactChanged { email: "e".into() })
    );
    assert_eq!(
        LeadEvent::decode("LeadDropped", 1, r#"{"reason":"r"}"#).unwrap(),
        LeadEvent::Lost(LeadLost { reason: "r".into() })
    );
    for name in ["lead.called", "PhoneCallMade", "Called"] {
        let event = LeadEvent::decode(name, 1, r#"{"minutes":12}"#).unwrap();
        assert_eq!(event, LeadEvent::Called { minutes: 12 }, "stored as {name}");
        assert_eq!(event.event_type(), "lead.called");
    }
    let archived = LeadEvent::decode("Archived", 1, "{}").unwrap();
    assert_eq!(archived, LeadEvent::Archived);
    assert_eq!(archived.event_type(), "lead.archived");
}

#[test]
fn the_registry_finds_an_event_by_any_of_its_names() {
    for name in [
        "lead.contact_changed",
        "ContactInformationChanged",
        "lead.contact_updated",
    ] {
        let found = registry::find(name).unwrap_or_else(|| panic!("{name} is registered"));
        assert_eq!(found.name, "lead.contact_changed");
        assert_eq!(
            found.aliases,
            ["ContactInformationChanged", "lead.contact_updated"]
        );
    }
    assert_eq!(
        registry::find("OwnerSet").map(|r| r.name),
        Some("lead.owner_assigned")
    );
    assert_eq!(
        registry::find("PhoneCallMade").map(|r| r.name),
        Some("lead.called")
    );
    assert_eq!(
        registry::find("Archived").map(|r| r.name),
        Some("lead.archived")
    );
    assert!(registry::find("ContactChanged").is_none());
    assert!(registry::find("lead.contact").is_none());
}

#[test]
fn the_registry_decodes_an_old_name_into_the_current_json() {
    let current = registry::decode_json("OwnerSet", 1, r#"{"contact":"ana@example.com"}"#).unwrap();
    assert_eq!(current, json!({ "email": "ana@example.com" }));
    let called = registry::decode_json("Called", 1, r#"{"minutes":3}"#).unwrap();
    assert_eq!(called, json!({ "minutes": 3 }));
    registry::check().unwrap();
}
