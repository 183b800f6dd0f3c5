//! Upcast chains mixing typed steps (`upcast_from` + `From`) and JSON steps (`upcast_json`),
//! both ways round, read directly and through a store.
//!
//! `upcast_from = V2` with `upcast_json = f` on version 3 means: a stored v2 payload goes to `f`
//! as JSON; an older one is read as `V2` (which walks its own chain), written back as JSON in
//! `V2`'s shape, and handed to `f`.
#![allow(missing_docs)]

use eventsrc::{Aggregate, Event};
use eventsrc::{
    EventStore, ExpectedVersion, MemoryStore, NewEvent, Repository, Versioned, aggregate, registry,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// JSON step then typed step: v1 {name} --split_name--> v2 {first, last} --From--> v3.

fn split_name(mut value: Value) -> Value {
    let full = value["name"].as_str().unwrap_or_default().to_owned();
    let (first, last) = full.split_once(' ').unwrap_or((&full, ""));
    value["first"] = first.into();
    value["last"] = last.into();
    value
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_json = split_name, superseded_by = ContactNamed)]
pub struct ContactNamedV2 {
    pub first: String,
    pub last: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "lead.contact_named", version = 3, upcast_from = ContactNamedV2)]
pub struct ContactNamed {
    pub full_name: String,
    pub initials: String,
}

impl From<ContactNamedV2> for ContactNamed {
    fn from(old: ContactNamedV2) -> Self {
        let initials = [&old.first, &old.last]
            .iter()
            .filter_map(|part| part.chars().next())
            .collect();
        Self {
            full_name: format!("{} {}", old.first, old.last),
            initials,
        }
    }
}

// Typed step then JSON step: v1 {amount: "1.50"} --From--> v2 {amount_cents: 150}
// --to_eur_cents--> v3 {cents, currency}.

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(superseded_by = PriceSet)]
pub struct PriceSetV1 {
    pub amount: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_from = PriceSetV1, superseded_by = PriceSet)]
pub struct PriceSetV2 {
    #[serde(rename = "amount_cents")]
    pub cents: u64,
}

impl From<PriceSetV1> for PriceSetV2 {
    fn from(old: PriceSetV1) -> Self {
        let (euros, cents) = old.amount.split_once('.').unwrap_or((&old.amount, "0"));
        Self {
            cents: euros.parse::<u64>().unwrap_or(0) * 100 + cents.parse::<u64>().unwrap_or(0),
        }
    }
}

/// Reads `amount_cents`, the JSON shape `PriceSetV2` serializes to (and v2 records hold).
fn to_eur_cents(mut value: Value) -> Result<Value, String> {
    let cents = value
        .as_object_mut()
        .and_then(|o| o.remove("amount_cents"))
        .ok_or("a v2 price has `amount_cents`")?;
    value["cents"] = cents;
    value["currency"] = "EUR".into();
    Ok(value)
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(
    name = "product.price_set",
    version = 3,
    upcast_from = PriceSetV2,
    upcast_json = to_eur_cents
)]
pub struct PriceSet {
    pub cents: u64,
    pub currency: String,
}

// Both ways in one chain: v1 --json--> v2 --From--> v3 --json--> v4.

fn wrap_tags(mut value: Value) -> Value {
    let tag = value["tag"].take();
    value["tags"] = json!([tag]);
    value
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_json = wrap_tags, superseded_by = Tagged)]
pub struct TaggedV2 {
    pub tags: Vec<String>,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 3, upcast_from = TaggedV2, superseded_by = Tagged)]
pub struct TaggedV3 {
    pub tags: Vec<String>,
    pub count: usize,
}

impl From<TaggedV2> for TaggedV3 {
    fn from(old: TaggedV2) -> Self {
        Self {
            count: old.tags.len(),
            tags: old.tags,
        }
    }
}

fn add_source(mut value: Value) -> Value {
    value["source"] = "import".into();
    value
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 4, upcast_from = TaggedV3, upcast_json = add_source)]
pub struct Tagged {
    pub tags: Vec<String>,
    pub count: usize,
    pub source: String,
}

#[derive(Default, Debug, PartialEq)]
pub struct Product {
    contact: String,
    price: Option<(u64, String)>,
    tags: Vec<String>,
}

#[aggregate(id = u32)]
impl Product {
    fn on_contact_named(&mut self, event: &ContactNamed) {
        self.contact.clone_from(&event.full_name);
    }
    fn on_price_set(&mut self, event: &PriceSet) {
        self.price = Some((event.cents, event.currency.clone()));
    }
    fn on_tagged(&mut self, event: &Tagged) {
        self.tags.extend(event.tags.iter().cloned());
    }
}

fn stefan() -> ContactNamed {
    ContactNamed {
        full_name: "Stefan Ivanov".into(),
        initials: "SI".into(),
    }
}

fn price() -> PriceSet {
    PriceSet {
        cents: 150,
        currency: "EUR".into(),
    }
}

#[test]
fn json_then_typed_every_stored_version_reaches_the_current_value() {
    assert_eq!(<ContactNamedV2 as Versioned>::OLDEST, 1);
    assert_eq!(<ContactNamed as Versioned>::OLDEST, 1);
    assert_eq!(<ContactNamed as Versioned>::VERSION, 3);
    let stored = [
        (1, r#"{"name":"Stefan Ivanov"}"#),
        (2, r#"{"first":"Stefan","last":"Ivanov"}"#),
        (3, r#"{"full_name":"Stefan Ivanov","initials":"SI"}"#),
    ];
    for (version, payload) in stored {
        assert_eq!(
            ContactNamed::decode("lead.contact_named", version, payload).unwrap(),
            stefan(),
            "stored version {version}"
        );
    }
}

#[test]
fn typed_then_json_every_stored_version_reaches_the_current_value() {
    assert_eq!(<PriceSetV2 as Versioned>::OLDEST, 1);
    assert_eq!(<PriceSet as Versioned>::OLDEST, 1);
    assert_eq!(<PriceSet as Versioned>::VERSION, 3);
    let stored = [
        (1, r#"{"amount":"1.50"}"#),
        (2, r#"{"amount_cents":150}"#),
        (3, r#"{"cents":150,"currency":"EUR"}"#),
    ];
    for (version, payload) in stored {
        assert_eq!(
            PriceSet::decode("product.price_set", version, payload).unwrap(),
            price(),
            "stored version {version}"
        );
    }
}

#[test]
fn typed_then_json_hands_the_json_step_the_typed_shape_serialized() {
    // From v1 the step sees what `PriceSetV2` serializes to, `amount_cents`; had it seen the
    // Rust field name `cents`, it would have refused.
    assert_eq!(
        PriceSet::decode("product.price_set", 1, r#"{"amount":"2"}"#).unwrap(),
        PriceSet {
            cents: 200,
            currency: "EUR".into()
        }
    );
    // A v2 record that lacks it is refused by the step, which names version 2.
    match PriceSet::decode("product.price_set", 2, r#"{"cents":150}"#) {
        Err(eventsrc::DecodeError::Upcast {
            version, reason, ..
        }) => {
            assert_eq!(version, 2);
            assert!(reason.contains("amount_cents"), "{reason}");
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
    // A v1 record that does not fit `PriceSetV1` is malformed at version 1.
    assert!(matches!(
        PriceSet::decode("product.price_set", 1, r#"{"amount":150}"#),
        Err(eventsrc::DecodeError::Malformed { version: 1, .. })
    ));
}

#[test]
fn json_typed_json_every_stored_version_reaches_the_current_value() {
    assert_eq!(<TaggedV3 as Versioned>::OLDEST, 1);
    assert_eq!(<Tagged as Versioned>::OLDEST, 1);
    let expected = Tagged {
        tags: vec!["vip".into()],
        count: 1,
        source: "import".into(),
    };
    let stored = [
        (1, r#"{"tag":"vip"}"#),
        (2, r#"{"tags":["vip"]}"#),
        (3, r#"{"tags":["vip"],"count":1}"#),
        (4, r#"{"tags":["vip"],"count":1,"source":"import"}"#),
    ];
    for (version, payload) in stored {
        assert_eq!(
            Tagged::decode("Tagged", version, payload).unwrap(),
            expected,
            "stored version {version}"
        );
    }
    assert!(matches!(
        Tagged::decode("Tagged", 5, "{}"),
        Err(eventsrc::DecodeError::FutureVersion {
            version: 5,
            current: 4,
            ..
        })
    ));
}

#[test]
fn the_registry_upcasts_every_chain_to_the_current_json() {
    assert_eq!(
        registry::decode_json("lead.contact_named", 1, r#"{"name":"Stefan Ivanov"}"#).unwrap(),
        json!({ "full_name": "Stefan Ivanov", "initials": "SI" })
    );
    assert_eq!(
        registry::decode_json("product.price_set", 1, r#"{"amount":"1.50"}"#).unwrap(),
        json!({ "cents": 150, "currency": "EUR" })
    );
    assert_eq!(
        registry::decode_json("Tagged", 1, r#"{"tag":"a"}"#).unwrap(),
        json!({ "tags": ["a"], "count": 1, "source": "import" })
    );
    for event in registry::events() {
        assert_eq!(event.oldest_version, 1, "{}", event.name);
    }
    registry::check().unwrap();
}

#[tokio::test]
async fn an_aggregate_loads_a_stream_holding_every_version_of_its_events() {
    let store = MemoryStore::new();
    let stream = Product::stream_id(&7).unwrap();
    let records = vec![
        NewEvent::raw("lead.contact_named", 1, r#"{"name":"Ana Pop"}"#),
        NewEvent::raw("product.price_set", 1, r#"{"amount":"1.50"}"#),
        NewEvent::raw("Tagged", 1, r#"{"tag":"old"}"#),
        NewEvent::raw(
            "lead.contact_named",
            2,
            r#"{"first":"Ana","last":"Ionescu"}"#,
        ),
        NewEvent::raw("Tagged", 3, r#"{"tags":["mid"],"count":1}"#),
        NewEvent::raw("product.price_set", 2, r#"{"amount_cents":275}"#),
        NewEvent::raw("Tagged", 4, r#"{"tags":["new"],"count":1,"source":"ui"}"#),
    ];
    store
        .append(&stream, ExpectedVersion::NoStream, records)
        .await
        .unwrap();
    let loaded = Repository::new(store).load::<Product>(&7).await.unwrap();
    assert_eq!(loaded.version.get(), 7);
    assert_eq!(
        loaded.state,
        Product {
            contact: "Ana Ionescu".into(),
            price: Some((275, "EUR".into())),
            tags: vec!["old".into(), "mid".into(), "new".into()],
        }
    );
}
