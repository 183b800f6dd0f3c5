use eventsrc::{aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Opened {}

#[derive(Default)]
struct Account {
    opened: u32,
}

#[aggregate(id = String)]
impl Account {
    fn on_opened(&mut self, _: &Opened) {
        self.opened += 1;
    }
    fn on_opened_again(&mut self, _: &Opened) {
        self.opened += 1;
    }
}

fn main() {}
