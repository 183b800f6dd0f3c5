use eventsrc::{aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "account.opened")]
struct Opened {}

// Meant to be `account.reopened`: reading a stream would decode every opening as this type.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "account.opened")]
struct Reopened {}

#[derive(Default)]
struct Account {
    open: bool,
}

#[aggregate(id = String)]
impl Account {
    fn on_opened(&mut self, _: &Opened) {
        self.open = true;
    }
    fn on_reopened(&mut self, _: &Reopened) {
        self.open = true;
    }
}

fn main() {}
