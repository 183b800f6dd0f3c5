use eventsrc::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(nmae = "opened")]
struct Opened {}

fn main() {}
