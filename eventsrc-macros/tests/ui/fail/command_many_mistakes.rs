//! Every mistake is reported in one compile, and code using the command adds no errors of its
//! own.
use eventsrc::{aggregate, command, Command, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Opened {}

#[derive(Default)]
struct Account;

#[aggregate(id = String)]
impl Account {
    fn on_opened(&mut self, _: &Opened) {}
}

#[command(aggregate = Account, hnadler = open)]
struct Open {
    #[validate(email)]
    owner: String,
    #[validate(range(min = "one"))]
    limit: u32,
}

fn main() {
    let command = Open { owner: String::new(), limit: 1 };
    let _ = command.validate();
}
