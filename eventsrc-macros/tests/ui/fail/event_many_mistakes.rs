//! Every mistake is reported in one compile, and an aggregate handling the event adds no errors
//! of its own.
use eventsrc::{aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "", version = 0, upcast = old_shape)]
struct Opened {}

#[derive(Default)]
struct Account;

#[aggregate(id = String)]
impl Account {
    fn on_opened(&mut self, _: &Opened) {}
}

fn main() {
    let _name = <Opened as eventsrc::EventType>::NAME;
}
