//! The macros used inside this crate, where `::eventsrc` does not resolve: everything here
//! compiles only if `crate = path` reaches every path the generated code writes, including the
//! serde helper structs of named enum variants and the registry entries.

use serde::{Deserialize, Serialize};

use crate::{
    Aggregate, AggregateCommand, Command, Decision, DecodeError, Event, EventStore, EventType,
    ExpectedVersion, MemoryStore, Metadata, NewEvent, Repository, Versioned,
};
use eventsrc_macros::{Event, aggregate, command};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(crate = crate, name = "crate_path.opened", aliases = ["crate_path.started"])]
struct Opened {
    owner: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(crate = crate, superseded_by = Deposited)]
struct DepositedV1 {
    amount: String,
}

fn cents_to_u64(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(cents) = value["cents"].as_str().and_then(|c| c.parse::<u64>().ok()) {
        value["cents"] = cents.into();
    }
    value
}

/// Version 2 is typed (from `DepositedV1`), version 3 a JSON step after it: both code paths
/// of the upcast chain are expanded with the custom crate path.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(
    crate = crate,
    name = "crate_path.deposited",
    version = 3,
    upcast_from = DepositedV2,
    upcast_json = cents_to_u64
)]
struct Deposited {
    cents: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(crate = crate, version = 2, upcast_from = DepositedV1, superseded_by = Deposited)]
struct DepositedV2 {
    cents: String,
}

impl From<DepositedV1> for DepositedV2 {
    fn from(old: DepositedV1) -> Self {
        Self {
            cents: format!("{}00", old.amount),
        }
    }
}

fn add_reason(mut value: serde_json::Value) -> serde_json::Value {
    value["reason"] = "unknown".into();
    value
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(crate = crate, name = "crate_path.closed")]
struct Closed {
    reason: String,
}

/// The aggregate's own enum: `#[aggregate(event = ...)]` dispatches on newtype variants.
#[derive(Event, Debug, Clone, PartialEq)]
#[event(crate = crate)]
enum AccountEvent {
    Opened(Opened),
    Deposited(Deposited),
    Closed(Closed),
}

/// Every variant form, the named one upcast by a JSON step and carrying serde attributes.
#[derive(Event, Debug, Clone, PartialEq)]
#[event(crate = crate)]
enum Notice {
    Opened(Opened),
    #[event(name = "crate_path.warned", version = 2, upcast_json = add_reason)]
    Warned {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    #[event(name = "crate_path.frozen")]
    Frozen,
}

#[derive(Default, Debug, PartialEq, Serialize, Deserialize)]
struct Account {
    owner: String,
    balance: u64,
    closed: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the account is closed")]
struct AccountClosed;

fn deposits_race(ours: &AccountEvent, theirs: &AccountEvent) -> bool {
    matches!(ours, AccountEvent::Deposited(_)) && matches!(theirs, AccountEvent::Closed(_))
}

#[aggregate(
    crate = crate,
    id = u32,
    error = AccountClosed,
    event = AccountEvent,
    name = "crate_path_account",
    snapshot = 1,
    snapshot_every = 10,
    conflicts = deposits_race
)]
impl Account {
    fn on_opened(&mut self, event: &Opened) {
        self.owner.clone_from(&event.owner);
    }
    fn on_deposited(&mut self, event: &Deposited) {
        self.balance += event.cents;
    }
    fn on_closed(&mut self, event: &Closed) {
        self.closed = Some(event.reason.clone());
    }
}

/// An aggregate whose event enum the macro generates.
#[derive(Default, Debug)]
struct Ledger {
    entries: u32,
}

#[aggregate(crate = crate, id = String, vis = pub(self))]
impl Ledger {
    fn on_opened(&mut self, _: &Opened) {
        self.entries += 1;
    }
}

#[command(crate = crate, aggregate = Account, handler = Account::deposit)]
struct Deposit {
    #[id]
    account: u32,
    #[validate(range(min = 1, max = 1_000_000))]
    cents: u64,
    #[validate(non_empty, message = "names who pays")]
    payer: String,
}

impl Account {
    fn deposit(&self, command: &Deposit) -> Decision<Self> {
        if self.closed.is_some() {
            return Err(AccountClosed);
        }
        Ok(vec![AccountEvent::Deposited(Deposited {
            cents: command.cents,
        })])
    }
}

#[test]
fn struct_events_encode_decode_and_upcast_through_the_custom_path() {
    assert_eq!(<Opened as EventType>::NAME, "crate_path.opened");
    let opened = Opened::decode("crate_path.started", 1, r#"{"owner":"Mara"}"#).unwrap();
    assert_eq!(opened.owner, "Mara");
    assert_eq!(opened.encode().unwrap(), r#"{"owner":"Mara"}"#);

    assert_eq!(<Deposited as Versioned>::OLDEST, 1);
    let from_v1 = Deposited::decode("crate_path.deposited", 1, r#"{"amount":"7"}"#).unwrap();
    assert_eq!(from_v1, Deposited { cents: 700 });
    let from_v2 = Deposited::decode("crate_path.deposited", 2, r#"{"cents":"9"}"#).unwrap();
    assert_eq!(from_v2, Deposited { cents: 9 });
    assert!(matches!(
        Deposited::decode("crate_path.deposited", 4, "{}"),
        Err(DecodeError::FutureVersion {
            version: 4,
            current: 3,
            ..
        })
    ));
}

#[test]
fn a_named_variant_uses_its_serde_helpers_through_the_custom_path() {
    let warned = Notice::Warned {
        reason: "late".into(),
        note: None,
    };
    assert_eq!(warned.encode().unwrap(), r#"{"reason":"late"}"#);
    assert_eq!(warned.schema_version(), 2);
    assert_eq!(
        Notice::decode("crate_path.warned", 1, "{}").unwrap(),
        Notice::Warned {
            reason: "unknown".into(),
            note: None
        }
    );
    assert_eq!(
        Notice::decode("crate_path.warned", 2, r#"{"reason":"r","note":"n"}"#).unwrap(),
        Notice::Warned {
            reason: "r".into(),
            note: Some("n".into())
        }
    );
    assert_eq!(
        Notice::decode("crate_path.frozen", 1, "{}").unwrap(),
        Notice::Frozen
    );
    assert_eq!(
        Notice::decode("crate_path.started", 1, r#"{"owner":"Ion"}"#).unwrap(),
        Notice::Opened(Opened {
            owner: "Ion".into()
        })
    );
    assert_eq!(
        AccountEvent::decode("crate_path.deposited", 1, r#"{"amount":"2"}"#).unwrap(),
        AccountEvent::Deposited(Deposited { cents: 200 })
    );
}

#[test]
fn aggregates_and_commands_work_through_the_custom_path() {
    assert_eq!(Account::TYPE, "crate_path_account");
    assert_eq!(
        Account::SNAPSHOT.map(|s| (s.state_version, s.every)),
        Some((1, Some(10)))
    );
    let ours = AccountEvent::Deposited(Deposited { cents: 1 });
    let theirs = AccountEvent::Closed(Closed { reason: "r".into() });
    assert!(Account::conflicts(&ours, &theirs));
    assert!(!Account::conflicts(&theirs, &ours));

    assert_eq!(Ledger::TYPE, "ledger");
    let mut ledger = Ledger::default();
    ledger.apply(&LedgerEvent::from(Opened {
        owner: "Ana".into(),
    }));
    assert_eq!(ledger.entries, 1);

    let invalid = Deposit {
        account: 1,
        cents: 0,
        payer: " ".into(),
    };
    let failures = invalid.validate().unwrap_err();
    let fields: Vec<_> = failures.fields.iter().map(|f| f.field).collect();
    assert_eq!(fields, ["cents", "payer"]);
    assert_eq!(failures.fields[1].message, "names who pays");
    assert_eq!(invalid.name(), "Deposit");
    assert_eq!(*invalid.aggregate_id(), 1);
}

#[test]
fn the_registry_lists_events_registered_through_the_custom_path() {
    let events = crate::registry::events();
    let warned = events
        .iter()
        .find(|e| e.name == "crate_path.warned")
        .expect("the named variant is registered");
    assert_eq!((warned.version, warned.oldest_version), (2, 1));
    let closed = events
        .iter()
        .find(|e| e.name == "crate_path.closed")
        .expect("the event struct is registered");
    assert_eq!(closed.aggregates, ["crate_path_account"]);
    let opened = crate::registry::find("crate_path.started").expect("found by alias");
    assert_eq!(opened.name, "crate_path.opened");
    assert!(events.iter().any(|e| e.name == "crate_path.frozen"));
    crate::registry::check().unwrap();
}

#[tokio::test]
async fn a_command_sent_through_a_repository_appends_its_event() {
    let repository = Repository::new(MemoryStore::new());
    let store = repository.store();
    let stream = Account::stream_id(&5).unwrap();
    let opened = AccountEvent::Opened(Opened {
        owner: "Ana".into(),
    });
    let opened = NewEvent::from_event(&opened, Metadata::new()).unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![opened])
        .await
        .unwrap();
    let deposit = Deposit {
        account: 5,
        cents: 250,
        payer: "Ana".into(),
    };
    let committed = repository.send(deposit, Metadata::new()).await.unwrap();
    assert_eq!(committed.stream_version.get(), 2);
    let loaded = repository.load::<Account>(&5).await.unwrap();
    assert_eq!(loaded.state.balance, 250);
    assert_eq!(loaded.state.owner, "Ana");
}
