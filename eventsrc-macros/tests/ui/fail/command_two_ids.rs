use eventsrc::{aggregate, command, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Opened {}

#[derive(Default)]
struct Account;

#[aggregate(id = String)]
impl Account {
    fn on_opened(&mut self, _: &Opened) {}
}

#[command(aggregate = Account)]
struct Transfer {
    #[id]
    from: String,
    #[id]
    to: String,
}

fn main() {}
