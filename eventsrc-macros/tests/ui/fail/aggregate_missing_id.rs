use eventsrc::{aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Opened {}

#[derive(Default)]
struct Account {
    open: bool,
}

#[aggregate]
impl Account {
    fn on_opened(&mut self, _: &Opened) {
        self.open = true;
    }
}

fn main() {}
