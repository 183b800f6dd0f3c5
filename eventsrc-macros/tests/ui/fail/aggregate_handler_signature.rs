use eventsrc::{aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Opened {}

#[derive(Default)]
struct Account {
    open: bool,
}

#[aggregate(id = String)]
impl Account {
    fn on_opened(&self, _: Opened) -> bool {
        self.open
    }
}

fn main() {}
