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
struct Rename {
    #[id]
    account: String,
    #[validate(range(min = 1, max = 40))]
    name: String,
}

fn main() {}
