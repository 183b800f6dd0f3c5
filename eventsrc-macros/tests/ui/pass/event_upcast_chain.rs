//! A three-version chain mixing a JSON step and a typed step, and the crate-path attribute.
use eventsrc::Event;
use serde::{Deserialize, Serialize};

fn split_name(mut v: serde_json::Value) -> serde_json::Value {
    let full = v["name"].as_str().unwrap_or_default().to_owned();
    let (first, last) = full.split_once(' ').unwrap_or((&full, ""));
    v["first"] = first.into();
    v["last"] = last.into();
    v
}

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2, upcast_json = split_name, superseded_by = NameChanged)]
struct NameChangedV2 {
    first: String,
    last: String,
}

#[derive(Event, Serialize, Deserialize)]
#[event(crate = ::eventsrc, version = 3, upcast_from = NameChangedV2)]
struct NameChanged {
    full: String,
}

impl From<NameChangedV2> for NameChanged {
    fn from(old: NameChangedV2) -> Self {
        Self { full: format!("{} {}", old.first, old.last) }
    }
}

fn main() {
    let event = NameChanged::decode("NameChanged", 1, r#"{"name":"Stefan Ivanov"}"#).unwrap();
    assert_eq!(event.full, "Stefan Ivanov");
}
