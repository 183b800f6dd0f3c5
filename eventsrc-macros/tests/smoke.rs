#![allow(missing_docs)]
use eventsrc::{Decision, Event, EventType, Handle, aggregate, command};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "Opened", aliases = ["Started"])]
pub struct Opened {
    pub owner: String,
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(version = 1, superseded_by = Deposited)]
pub struct DepositedV1 {
    pub amount: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_from = DepositedV1)]
pub struct Deposited {
    pub cents: u64,
}

impl From<DepositedV1> for Deposited {
    fn from(old: DepositedV1) -> Self {
        Self {
            cents: old.amount.parse::<u64>().unwrap_or(0) * 100,
        }
    }
}

#[derive(Default, Debug)]
pub struct Account {
    owner: String,
    balance: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("closed")]
    Closed,
}

#[aggregate(id = String, error = AccountError)]
impl Account {
    fn on_opened(&mut self, e: &Opened) {
        self.owner = e.owner.clone();
    }
    fn on_deposited(&mut self, e: &Deposited) {
        self.balance += e.cents;
    }
}

#[command(aggregate = Account, handler = Account::deposit)]
#[derive(Debug)]
pub struct Deposit {
    #[id]
    pub account: String,
    #[validate(range(min = 1))]
    pub cents: u64,
}

impl Account {
    fn deposit(&self, c: &Deposit) -> Decision<Self> {
        if self.owner.is_empty() {
            return Err(AccountError::Closed);
        }
        Ok(vec![Deposited { cents: c.cents }.into()])
    }
}

#[derive(Event, Debug, PartialEq)]
pub enum Mixed {
    Unit,
    #[event(name = "mixed.named", version = 2, upcast_json = add_b)]
    Named {
        a: u32,
        b: u32,
    },
    Wrapped(Opened),
}

fn add_b(mut v: serde_json::Value) -> serde_json::Value {
    v["b"] = 7.into();
    v
}

#[test]
fn smoke() {
    use eventsrc::{Aggregate, Command, Event as _};
    assert_eq!(Account::TYPE, "account");
    assert_eq!(<Opened as EventType>::NAME, "Opened");
    let e = Deposited::decode("Deposited", 1, r#"{"amount":"5"}"#).unwrap();
    assert_eq!(e.cents, 500);
    let o = Opened::decode("Started", 1, r#"{"owner":"x"}"#).unwrap();
    assert_eq!(o.owner, "x");
    let m = Mixed::decode("mixed.named", 1, r#"{"a":1}"#).unwrap();
    assert_eq!(m, Mixed::Named { a: 1, b: 7 });
    assert_eq!(
        Mixed::Named { a: 1, b: 2 }.encode().unwrap(),
        r#"{"a":1,"b":2}"#
    );
    assert_eq!(Mixed::decode("Unit", 1, "{}").unwrap(), Mixed::Unit);
    assert!(
        Deposit {
            account: "a".into(),
            cents: 0
        }
        .validate()
        .is_err()
    );
    let mut a = Account::default();
    a.apply(&AccountEvent::Opened(Opened { owner: "o".into() }));
    let d = a
        .handle(&Deposit {
            account: "a".into(),
            cents: 3,
        })
        .unwrap();
    assert_eq!(d.len(), 1);
    eventsrc::registry::check().unwrap();
    let names: Vec<_> = eventsrc::registry::events()
        .iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"mixed.named"), "{names:?}");
}
