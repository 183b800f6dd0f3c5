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

#[derive(Default)]
struct Ledger;

#[aggregate(id = String)]
impl Ledger {
    fn on_opened(&mut self, _: &Opened) {}
}

// No error, no handler, and one `#[id]` for two aggregates: three errors at once.
#[command(aggregates = (Account, Ledger))]
struct Transfer {
    #[id]
    from: String,
    to: String,
}

// Both forms at once.
#[command(aggregate = Account, aggregates = (Account, Ledger))]
struct Close {
    #[id]
    account: String,
}

fn main() {}
