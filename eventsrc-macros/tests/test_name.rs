//! `#[event(name = "...")]`: the stored name, which defaults to the type (or variant) name and is
//! what encode writes and decode accepts, whatever the Rust path.
#![allow(missing_docs)]

use eventsrc::{DecodeError, Event, EventType, Metadata, NewEvent};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StatusChanged {
    pub status: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "lead.contact_changed")]
pub struct ContactChanged {
    pub email: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Tagged(pub String);

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Archived;

/// A type in a nested module is stored under its bare name, not its path.
pub mod deep {
    pub mod inside {
        use eventsrc::Event;
        use serde::{Deserialize, Serialize};

        #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
        pub struct Reopened {
            pub by: String,
        }
    }
}

#[derive(Event, Debug, Clone, PartialEq)]
pub enum LeadEvent {
    /// Wraps an event struct: stored under the struct's name, not the variant's.
    Contact(ContactChanged),
    /// Named fields, default name: the variant's name.
    Noted { text: String },
    /// Named fields with a stored name of its own.
    #[event(name = "lead.scored")]
    Scored { score: u8 },
    /// Unit variants take the variant name too, or their own.
    Closed,
    #[event(name = "lead.lost")]
    Lost,
}

#[test]
fn the_default_name_is_the_type_name() {
    assert_eq!(<StatusChanged as EventType>::NAME, "StatusChanged");
    assert_eq!(<Tagged as EventType>::NAME, "Tagged");
    assert_eq!(<Archived as EventType>::NAME, "Archived");
    assert_eq!(<deep::inside::Reopened as EventType>::NAME, "Reopened");
    let event = StatusChanged {
        status: "won".into(),
    };
    assert_eq!(event.event_type(), "StatusChanged");
    assert_eq!(Archived.event_type(), "Archived");
}

#[test]
fn a_custom_name_replaces_the_type_name() {
    assert_eq!(<ContactChanged as EventType>::NAME, "lead.contact_changed");
    let event = ContactChanged {
        email: "stefan@example.com".into(),
    };
    assert_eq!(event.event_type(), "lead.contact_changed");
}

#[test]
fn encoding_stores_the_name_beside_a_payload_of_only_the_fields() {
    let event = ContactChanged {
        email: "stefan@example.com".into(),
    };
    let new = NewEvent::from_event(&event, Metadata::new()).unwrap();
    assert_eq!(new.event_type, "lead.contact_changed");
    assert_eq!(new.schema_version, 1);
    assert_eq!(new.payload, r#"{"email":"stefan@example.com"}"#);
    assert_eq!(event.encode().unwrap(), new.payload);

    let tagged = NewEvent::from_event(&Tagged("vip".into()), Metadata::new()).unwrap();
    assert_eq!(
        (&*tagged.event_type, &*tagged.payload),
        ("Tagged", r#""vip""#)
    );
}

#[test]
fn decoding_accepts_the_stored_name() {
    let payload = r#"{"email":"mara@example.com"}"#;
    let event = ContactChanged::decode("lead.contact_changed", 1, payload).unwrap();
    assert_eq!(event.email, "mara@example.com");
    let event = StatusChanged::decode("StatusChanged", 1, r#"{"status":"lost"}"#).unwrap();
    assert_eq!(event.status, "lost");
    assert_eq!(Archived::decode("Archived", 1, "null").unwrap(), Archived);
}

#[test]
fn what_decode_gets_back_is_what_encode_wrote() {
    let event = deep::inside::Reopened { by: "Ana".into() };
    let new = NewEvent::from_event(&event, Metadata::new()).unwrap();
    let back =
        deep::inside::Reopened::decode(&new.event_type, new.schema_version, &new.payload).unwrap();
    assert_eq!(back, event);
}

#[test]
fn a_wrong_name_is_an_unknown_type_with_the_stored_version() {
    // The Rust name of a renamed type is not a stored name.
    match ContactChanged::decode("ContactChanged", 3, "{}") {
        Err(DecodeError::UnknownType {
            event_type,
            version,
        }) => {
            assert_eq!(event_type, "ContactChanged");
            assert_eq!(version, 3);
        }
        other => panic!("expected an unknown type, got {other:?}"),
    }
    // Names are compared exactly: no case folding, no trimming.
    for wrong in [
        "statuschanged",
        "StatusChanged ",
        "test_name::StatusChanged",
        "",
    ] {
        assert!(
            matches!(
                StatusChanged::decode(wrong, 1, r#"{"status":"x"}"#),
                Err(DecodeError::UnknownType { version: 1, .. })
            ),
            "{wrong:?} must not decode"
        );
    }
    let message = Archived::decode("Archive", 2, "null")
        .unwrap_err()
        .to_string();
    assert_eq!(message, "unknown event type `Archive` (schema version 2)");
}

#[test]
fn enum_variants_are_stored_under_their_own_names() {
    let contact = LeadEvent::Contact(ContactChanged {
        email: "a@example.com".into(),
    });
    assert_eq!(contact.event_type(), "lead.contact_changed");
    assert_eq!(
        LeadEvent::Noted {
            text: "call back".into()
        }
        .event_type(),
        "Noted"
    );
    assert_eq!(LeadEvent::Scored { score: 3 }.event_type(), "lead.scored");
    assert_eq!(LeadEvent::Closed.event_type(), "Closed");
    assert_eq!(LeadEvent::Lost.event_type(), "lead.lost");
}

#[test]
fn enum_decoding_finds_the_variant_by_stored_name() {
    assert_eq!(
        LeadEvent::decode("lead.contact_changed", 1, r#"{"email":"b@example.com"}"#).unwrap(),
        LeadEvent::Contact(ContactChanged {
            email: "b@example.com".into()
        })
    );
    assert_eq!(
        LeadEvent::decode("lead.scored", 1, r#"{"score":9}"#).unwrap(),
        LeadEvent::Scored { score: 9 }
    );
    assert_eq!(
        LeadEvent::decode("Noted", 1, r#"{"text":"t"}"#).unwrap(),
        LeadEvent::Noted { text: "t".into() }
    );
    assert_eq!(
        LeadEvent::decode("lead.lost", 1, "{}").unwrap(),
        LeadEvent::Lost
    );
    // Variant names that were replaced by a stored name, and wrapper variant names, are not
    // stored names.
    for wrong in ["Contact", "Scored", "Lost", "ContactChanged"] {
        match LeadEvent::decode(wrong, 4, "{}") {
            Err(DecodeError::UnknownType {
                event_type,
                version,
            }) => assert_eq!((event_type.as_str(), version), (wrong, 4)),
            other => panic!("{wrong}: expected an unknown type, got {other:?}"),
        }
    }
}

/// A unit struct has no payload: stored as `{}`, like a unit variant, and read from any.
#[derive(eventsrc::Event, serde::Serialize, serde::Deserialize, Debug, PartialEq)]
#[event(name = "cart.emptied", version = 2)]
pub struct Emptied;

#[test]
fn a_unit_struct_is_stored_as_an_empty_object() {
    use eventsrc::Event as _;
    assert_eq!(Emptied.encode().unwrap(), "{}");
    assert_eq!(Emptied::decode("cart.emptied", 2, "{}").unwrap(), Emptied);
    assert_eq!(Emptied::decode("cart.emptied", 1, "null").unwrap(), Emptied);
    assert!(matches!(
        Emptied::decode("cart.emptied", 3, "{}"),
        Err(eventsrc::DecodeError::FutureVersion {
            version: 3,
            current: 2,
            ..
        })
    ));
}
