//! `#[aggregate]` with a generated enum and every option; and with a user-written enum.
use eventsrc::{aggregate, Aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Opened {
    owner: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Closed;

#[derive(Debug, thiserror::Error)]
#[error("closed")]
struct AccountError;

#[derive(Default, Serialize, Deserialize)]
struct Account {
    owner: String,
    closed: bool,
}

fn never_conflicts(_: &AccountEvent, _: &AccountEvent) -> bool {
    false
}

#[aggregate(
    id = u64,
    error = AccountError,
    name = "bank_account",
    vis = pub(crate),
    snapshot = 2,
    snapshot_every = 50,
    cache = false,
    conflicts = never_conflicts
)]
impl Account {
    fn on_opened(&mut self, event: &Opened) {
        self.owner = event.owner.clone();
    }
    fn on_closed(&mut self, _: &Closed) {
        self.closed = true;
    }
}

#[derive(Event, Debug)]
enum LedgerEvent {
    Opened(Opened),
}

#[derive(Default)]
struct Ledger {
    opened: bool,
}

#[aggregate(id = String, event = LedgerEvent)]
impl Ledger {
    fn on_opened(&mut self, _: &Opened) {
        self.opened = true;
    }
}

fn main() {
    assert_eq!(Account::TYPE, "bank_account");
    assert_eq!(Account::SNAPSHOT.map(|s| (s.state_version, s.every)), Some((2, Some(50))));
    let mut account = Account::default();
    account.apply(&Closed.into());
    assert!(account.closed);
    assert!(!Account::CACHE, "`cache = false` opts out of the aggregate cache");
    assert_eq!(Ledger::TYPE, "ledger");
    assert!(Ledger::CACHE, "aggregates are cached by default");
    let mut ledger = Ledger::default();
    ledger.apply(&LedgerEvent::Opened(Opened { owner: "x".into() }));
    assert!(ledger.opened);
}
