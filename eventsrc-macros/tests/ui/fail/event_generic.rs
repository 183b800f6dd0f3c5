use eventsrc::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
struct Wrapped<T> {
    inner: T,
}

fn main() {}
