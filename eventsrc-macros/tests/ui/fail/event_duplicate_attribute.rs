use eventsrc::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(name = "opened", name = "started")]
struct Opened {}

fn main() {}
