use eventsrc::{aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug)]
struct Opened {}

#[derive(Event, Serialize, Deserialize, Debug)]
struct Closed {}

#[derive(Event, Debug)]
enum AccountEvent {
    Opened(Opened),
    Closed(Closed),
}

#[derive(Default)]
struct Account {
    open: bool,
}

#[aggregate(id = String, event = AccountEvent)]
impl Account {
    fn on_opened(&mut self, _: &Opened) {
        self.open = true;
    }
}

fn main() {}
