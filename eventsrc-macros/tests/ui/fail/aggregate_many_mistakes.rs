//! Every mistake is reported in one compile, and code using the aggregate and its generated
//! event enum adds no errors of its own.
use eventsrc::{aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Opened {}

#[derive(Default)]
struct Account {
    open: bool,
}

#[aggregate(id = String, name = "bank-account", snapshot_evry = 10)]
impl Account {
    fn on_opened(&mut self, _: &Opened) {
        self.open = true;
    }
    fn balance(&self) -> u64 {
        0
    }
}

fn main() {
    let _event: AccountEvent = Opened {}.into();
    let _type = <Account as eventsrc::Aggregate>::TYPE;
}
