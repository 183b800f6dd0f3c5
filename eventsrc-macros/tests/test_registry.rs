//! The process-wide registry as the macros fill it: every event of this test binary with its
//! name, version, aliases, Rust type and owning aggregates; lookup by name or alias; the dynamic
//! JSON view, also of stored records; and the start-up check.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use eventsrc::registry::{self, RegisteredEvent};
use eventsrc::store::ReadStream;
use eventsrc::{
    DecodeError, Event, EventStore, ExpectedVersion, MemoryStore, NewEvent, RecordedEvent,
    StreamId, aggregate,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "shop.opened", aliases = ["ShopStarted", "shop.started"])]
pub struct Opened {
    pub owner: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(superseded_by = Priced)]
pub struct PricedV1 {
    pub euros: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "shop.priced", version = 2, upcast_from = PricedV1)]
pub struct Priced {
    pub cents: u64,
}

impl From<PricedV1> for Priced {
    fn from(old: PricedV1) -> Self {
        Self {
            cents: old.euros * 100,
        }
    }
}

fn add_author(mut value: Value) -> Value {
    value["author"] = "system".into();
    value
}

#[derive(Event, Debug, Clone, PartialEq)]
pub enum ShopNotice {
    Opened(Opened),
    #[event(name = "shop.noted", version = 2, aliases = ["Noted"], upcast_json = add_author)]
    Noted {
        text: String,
        author: String,
    },
    #[event(name = "shop.closed")]
    Closed,
}

#[derive(Debug, Default)]
pub struct Shop {
    prices: Vec<u64>,
}

#[aggregate(id = u32)]
impl Shop {
    fn on_opened(&mut self, _: &Opened) {}
    fn on_priced(&mut self, event: &Priced) {
        self.prices.push(event.cents);
    }
}

#[derive(Debug, Default)]
pub struct Warehouse;

#[aggregate(id = u32, name = "depot")]
impl Warehouse {
    fn on_opened(&mut self, _: &Opened) {}
}

fn registered(name: &str) -> RegisteredEvent {
    registry::events()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("`{name}` is registered"))
}

async fn stored(event_type: &'static str, version: u32, payload: &str) -> RecordedEvent {
    let store = MemoryStore::new();
    let stream = StreamId::new("shop", 1).unwrap();
    let new = NewEvent::raw(event_type, version, payload);
    store
        .append(&stream, ExpectedVersion::NoStream, vec![new])
        .await
        .unwrap();
    let mut records = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    records.pop().unwrap()
}

#[test]
fn events_lists_exactly_this_binarys_events_sorted_by_name() {
    let names: Vec<&str> = registry::events().iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        ["shop.closed", "shop.noted", "shop.opened", "shop.priced"]
    );
}

#[test]
fn an_event_struct_is_listed_with_everything_it_declares() {
    let mut opened = registered("shop.opened");
    opened.aggregates.sort_unstable();
    assert_eq!(
        opened,
        RegisteredEvent {
            name: "shop.opened",
            version: 1,
            aliases: &["ShopStarted", "shop.started"],
            rust_type: concat!(module_path!(), "::Opened"),
            oldest_version: 1,
            aggregates: vec!["depot", "shop"],
        }
    );
    let priced = registered("shop.priced");
    assert_eq!(
        priced,
        RegisteredEvent {
            name: "shop.priced",
            version: 2,
            aliases: &[],
            rust_type: concat!(module_path!(), "::Priced"),
            oldest_version: 1,
            aggregates: vec!["shop"],
        }
    );
}

#[test]
fn enum_variants_with_their_own_payload_are_listed_under_the_enum() {
    let noted = registered("shop.noted");
    assert_eq!(
        (
            noted.version,
            noted.aliases,
            noted.rust_type,
            noted.oldest_version
        ),
        (
            2,
            &["Noted"][..],
            concat!(module_path!(), "::ShopNotice::Noted"),
            1
        )
    );
    assert!(noted.aggregates.is_empty());
    let closed = registered("shop.closed");
    assert_eq!(
        (closed.version, closed.rust_type),
        (1, concat!(module_path!(), "::ShopNotice::Closed"))
    );
}

#[test]
fn find_answers_to_names_and_aliases_only() {
    for name in ["shop.opened", "ShopStarted", "shop.started"] {
        let found = registry::find(name).unwrap();
        assert_eq!(found.name, "shop.opened", "{name}");
        assert_eq!(found.rust_type, concat!(module_path!(), "::Opened"));
    }
    assert_eq!(registry::find("Noted").unwrap().name, "shop.noted");
    assert_eq!(registry::find("shop.priced").unwrap().version, 2);
    for unknown in ["Opened", "Priced", "PricedV1", "Shop", "shop", "ShopNotice"] {
        assert!(registry::find(unknown).is_none(), "{unknown}");
    }
}

#[test]
fn decode_json_upcasts_an_old_payload_to_the_current_json() {
    assert_eq!(
        registry::decode_json("shop.priced", 1, r#"{"euros":3}"#).unwrap(),
        json!({ "cents": 300 })
    );
    assert_eq!(
        registry::decode_json("shop.priced", 2, r#"{"cents":42}"#).unwrap(),
        json!({ "cents": 42 })
    );
    assert_eq!(
        registry::decode_json("Noted", 1, r#"{"text":"hi"}"#).unwrap(),
        json!({ "text": "hi", "author": "system" })
    );
    assert_eq!(
        registry::decode_json("ShopStarted", 1, r#"{"owner":"Ana"}"#).unwrap(),
        json!({ "owner": "Ana" })
    );
    assert_eq!(
        registry::decode_json("shop.closed", 1, "{}").unwrap(),
        json!({})
    );
}

#[test]
fn decode_json_reports_what_it_cannot_read() {
    assert!(matches!(
        registry::decode_json("shop.sold", 4, "{}"),
        Err(DecodeError::UnknownType { version: 4, .. })
    ));
    assert!(matches!(
        registry::decode_json("shop.priced", 3, "{}"),
        Err(DecodeError::FutureVersion {
            version: 3,
            current: 2,
            ..
        })
    ));
    assert!(matches!(
        registry::decode_json("shop.priced", 1, r#"{"euros":"three"}"#),
        Err(DecodeError::Malformed { version: 1, .. })
    ));
}

#[tokio::test]
async fn inspect_shows_a_stored_record_as_current_json() {
    let record = stored("shop.priced", 1, r#"{"euros":7}"#).await;
    assert_eq!(registry::inspect(&record).unwrap(), json!({ "cents": 700 }));
    let record = stored("shop.started", 1, r#"{"owner":"Ion"}"#).await;
    assert_eq!(
        registry::inspect(&record).unwrap(),
        json!({ "owner": "Ion" })
    );
}

#[tokio::test]
async fn inspect_errors_name_the_record() {
    let record = stored("shop.sold", 1, "{}").await;
    let error = registry::inspect(&record).unwrap_err();
    assert_eq!(error.event_id, record.event_id);
    assert_eq!(error.stream, record.stream);
    assert!(matches!(error.source, DecodeError::UnknownType { .. }));
    let message = error.to_string();
    assert!(message.contains(&record.event_id.to_string()), "{message}");
    assert!(message.contains("`shop-1`"), "{message}");
    assert!(message.contains("`shop.sold`"), "{message}");
}

#[test]
fn the_registry_of_this_binary_is_consistent() {
    registry::check().unwrap();
}
