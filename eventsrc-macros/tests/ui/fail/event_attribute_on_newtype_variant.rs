use eventsrc::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
struct Opened {}

#[derive(Event)]
enum AccountEvent {
    #[event(name = "account.opened")]
    Opened(Opened),
}

fn main() {}
