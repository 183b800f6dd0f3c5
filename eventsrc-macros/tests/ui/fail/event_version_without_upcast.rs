use eventsrc::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2)]
struct ContactChanged {
    email: String,
}

fn main() {}
