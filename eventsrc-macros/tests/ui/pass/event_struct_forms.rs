//! Every struct form `#[derive(Event)]` accepts: named, tuple, unit; name, aliases, version.
use eventsrc::{Event, EventType};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
struct Named {
    a: u32,
}

#[derive(Event, Serialize, Deserialize)]
#[event(name = "lead.tuple", aliases = ["Tuple", "tuple.v0"])]
struct Tuple(String);

#[derive(Event, Serialize, Deserialize)]
#[event(name = "unit")]
struct Unit;

fn main() {
    assert_eq!(<Named as EventType>::NAME, "Named");
    assert_eq!(<Tuple as EventType>::ALIASES, &["Tuple", "tuple.v0"]);
    assert_eq!(Unit.event_type(), "unit");
}
