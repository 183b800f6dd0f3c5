use eventsrc::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn one(v: Value) -> Value { v }
fn two(v: Value) -> Value { v }

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2, upcast_json = [one, two])]
struct Renamed {
    name: String,
}

fn main() {}
