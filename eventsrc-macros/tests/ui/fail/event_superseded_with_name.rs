use eventsrc::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(name = "Deposited", superseded_by = Deposited)]
struct DepositedV1 {
    amount: String,
}

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2, upcast_from = DepositedV1)]
struct Deposited {
    cents: u64,
}

impl From<DepositedV1> for Deposited {
    fn from(_: DepositedV1) -> Self {
        Self { cents: 0 }
    }
}

fn main() {}
