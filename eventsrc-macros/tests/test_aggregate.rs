//! `#[aggregate]`: the generated event enum and its `From` impls, apply dispatch, the stored
//! type name, id, error, a user's own enum, snapshots, declared conflicts and visibility; then a
//! run through a `Repository` over a `MemoryStore`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::any::TypeId;
use std::convert::Infallible;

use eventsrc::{
    Aggregate, Decision, Event, EventStore, ExecuteError, Handle, MemoryStore, Metadata, NewEvent,
    Repository, SnapshotStore, aggregate, command,
};

use eventsrc::store::ReadStream;
use eventsrc_testing::RacingStore;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "account.opened")]
pub struct Opened {
    pub owner: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Deposited {
    pub cents: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Withdrawn {
    pub cents: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Closed;

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is closed")]
    Closed,
    #[error("not enough money: {available} available")]
    Insufficient { available: u64 },
}

#[derive(Default, Debug, PartialEq, Serialize, Deserialize)]
pub struct BankAccount {
    owner: String,
    balance: u64,
    closed: bool,
    #[serde(skip)]
    applied: Vec<&'static str>,
}

/// A withdrawal decided before a closing (or a deposit) was appended must not go through.
fn withdrawal_races(ours: &BankAccountEvent, theirs: &BankAccountEvent) -> bool {
    matches!(ours, BankAccountEvent::Withdrawn(_))
        && matches!(
            theirs,
            BankAccountEvent::Closed(_) | BankAccountEvent::Withdrawn(_)
        )
}

#[aggregate(
    id = u64,
    error = AccountError,
    snapshot = 2,
    snapshot_every = 3,
    conflicts = withdrawal_races
)]
impl BankAccount {
    fn on_opened(&mut self, event: &Opened) {
        self.owner.clone_from(&event.owner);
        self.applied.push("opened");
    }
    fn on_deposited(&mut self, event: &Deposited) {
        self.balance += event.cents;
        self.applied.push("deposited");
    }
    fn on_withdrawn(&mut self, event: &Withdrawn) {
        self.balance -= event.cents;
        self.applied.push("withdrawn");
    }
    fn on_closed(&mut self, _: &Closed) {
        self.closed = true;
        self.applied.push("closed");
    }
}

/// Defaults everywhere: snake-case name, `Infallible` error, no snapshots, no conflicts.
#[derive(Default, Debug)]
pub struct StudentProgress {
    deposits: u32,
}

#[aggregate(id = String)]
impl StudentProgress {
    fn on_deposited(&mut self, _: &Deposited) {
        self.deposits += 1;
    }
}

/// A hand-written enum (variants named after the event types) and an explicit stored name.
#[derive(Event, Debug, Clone, PartialEq)]
pub enum LedgerEntry {
    Deposited(Deposited),
    Withdrawn(Withdrawn),
}

#[derive(Default, Debug)]
pub struct Ledger {
    lines: Vec<i64>,
}

#[aggregate(id = u32, name = "general_ledger", event = LedgerEntry)]
impl Ledger {
    fn on_deposited(&mut self, event: &Deposited) {
        self.lines.push(event.cents as i64);
    }
    fn on_withdrawn(&mut self, event: &Withdrawn) {
        self.lines.push(-(event.cents as i64));
    }
}

/// `vis`: the generated enum is reachable from the parent module because of `pub(super)`. (It
/// cannot be narrower than the aggregate: `type Event` would leak a private type, E0446.)
mod inner {
    use eventsrc::aggregate;

    use super::Closed;

    #[derive(Default)]
    pub(super) struct Vault {
        pub(super) closed: bool,
    }

    #[aggregate(id = u8, vis = pub(super))]
    impl Vault {
        fn on_closed(&mut self, _: &Closed) {
            self.closed = true;
        }
    }
}

fn same_type<A: 'static, B: 'static>() -> bool {
    TypeId::of::<A>() == TypeId::of::<B>()
}

#[test]
fn the_generated_enum_has_one_variant_per_handler_and_from_impls() {
    let opened = Opened {
        owner: "Ana".into(),
    };
    assert_eq!(
        BankAccountEvent::from(opened.clone()),
        BankAccountEvent::Opened(opened)
    );
    assert_eq!(
        BankAccountEvent::from(Deposited { cents: 5 }),
        BankAccountEvent::Deposited(Deposited { cents: 5 })
    );
    let closed: BankAccountEvent = Closed.into();
    assert_eq!(closed.clone(), BankAccountEvent::Closed(Closed));
    assert_eq!(format!("{closed:?}"), "Closed(Closed)");
    assert!(same_type::<
        <BankAccount as Aggregate>::Event,
        BankAccountEvent,
    >());
}

#[test]
fn the_generated_enum_is_an_event_enum_of_the_handled_types() {
    let event = BankAccountEvent::decode("account.opened", 1, r#"{"owner":"Ana"}"#).unwrap();
    assert_eq!(
        event,
        BankAccountEvent::Opened(Opened {
            owner: "Ana".into()
        })
    );
    assert_eq!(event.event_type(), "account.opened");
    assert_eq!(
        BankAccountEvent::Withdrawn(Withdrawn { cents: 3 })
            .encode()
            .unwrap(),
        r#"{"cents":3}"#
    );
    assert!(matches!(
        BankAccountEvent::decode("Opened", 1, "{}"),
        Err(eventsrc::DecodeError::UnknownType { .. })
    ));
}

#[test]
fn apply_dispatches_each_variant_to_its_handler() {
    let mut account = BankAccount::default();
    let events: [BankAccountEvent; 5] = [
        Opened {
            owner: "Ana".into(),
        }
        .into(),
        Deposited { cents: 100 }.into(),
        Withdrawn { cents: 30 }.into(),
        Deposited { cents: 5 }.into(),
        Closed.into(),
    ];
    for event in &events {
        account.apply(event);
    }
    assert_eq!(
        account,
        BankAccount {
            owner: "Ana".into(),
            balance: 75,
            closed: true,
            applied: vec!["opened", "deposited", "withdrawn", "deposited", "closed"],
        }
    );
}

#[test]
fn the_stored_type_is_the_snake_cased_type_name_unless_named() {
    assert_eq!(BankAccount::TYPE, "bank_account");
    assert_eq!(StudentProgress::TYPE, "student_progress");
    assert_eq!(Ledger::TYPE, "general_ledger");
    assert_eq!(inner::Vault::TYPE, "vault");
    assert_eq!(
        BankAccount::stream_id(&42).unwrap().as_str(),
        "bank_account-42"
    );
    assert_eq!(Ledger::stream_id(&7).unwrap().as_str(), "general_ledger-7");
}

#[test]
fn id_and_error_types_are_the_declared_ones_or_infallible() {
    assert!(same_type::<<BankAccount as Aggregate>::Id, u64>());
    assert!(same_type::<<BankAccount as Aggregate>::Error, AccountError>());
    assert!(same_type::<<StudentProgress as Aggregate>::Id, String>());
    assert!(same_type::<<StudentProgress as Aggregate>::Error, Infallible>());
    assert!(same_type::<<Ledger as Aggregate>::Error, Infallible>());
}

#[test]
fn a_user_enum_is_used_as_the_event_type_and_dispatched() {
    assert!(same_type::<<Ledger as Aggregate>::Event, LedgerEntry>());
    let mut ledger = Ledger::default();
    ledger.apply(&LedgerEntry::Deposited(Deposited { cents: 10 }));
    ledger.apply(&LedgerEntry::Withdrawn(Withdrawn { cents: 4 }));
    assert_eq!(ledger.lines, [10, -4]);
}

#[test]
fn snapshot_attributes_make_a_json_snapshot_format() {
    let format = BankAccount::SNAPSHOT.expect("`snapshot = 2` declares a format");
    assert_eq!((format.state_version, format.every), (2, Some(3)));
    let state = BankAccount {
        owner: "Ion".into(),
        balance: 9,
        closed: false,
        applied: vec![],
    };
    let json = (format.encode)(&state).unwrap();
    assert_eq!((format.decode)(&json).unwrap(), state);
    assert_eq!(json, r#"{"owner":"Ion","balance":9,"closed":false}"#);
    assert!(StudentProgress::SNAPSHOT.is_none());
    assert!(Ledger::SNAPSHOT.is_none());
}

#[test]
fn the_declared_conflicts_function_is_the_aggregates() {
    let withdrawn: BankAccountEvent = Withdrawn { cents: 1 }.into();
    let closed: BankAccountEvent = Closed.into();
    let deposited: BankAccountEvent = Deposited { cents: 1 }.into();
    assert!(BankAccount::conflicts(&withdrawn, &closed));
    assert!(BankAccount::conflicts(&withdrawn, &withdrawn));
    assert!(!BankAccount::conflicts(&withdrawn, &deposited));
    // The arguments keep their order: ours first, theirs second.
    assert!(!BankAccount::conflicts(&closed, &withdrawn));
    // Without `conflicts = ...`, nothing conflicts.
    let entry = LedgerEntry::Withdrawn(Withdrawn { cents: 1 });
    assert!(!Ledger::conflicts(&entry, &entry));
}

#[test]
fn vis_sets_the_visibility_of_the_generated_enum() {
    // Named from outside `inner`: compiles only because of `vis = pub(super)`.
    let closed = inner::VaultEvent::from(Closed);
    let mut vault = inner::Vault::default();
    vault.apply(&closed);
    assert!(vault.closed);
}

#[command(aggregate = BankAccount)]
#[derive(Debug)]
pub struct Open {
    #[id]
    pub account: u64,
    pub owner: String,
}

#[command(aggregate = BankAccount)]
#[derive(Debug)]
pub struct Withdraw {
    #[id]
    pub account: u64,
    pub cents: u64,
}

#[command(aggregate = BankAccount)]
#[derive(Debug)]
pub struct Deposit {
    #[id]
    pub account: u64,
    pub cents: u64,
}

impl Handle<Open> for BankAccount {
    fn handle(&self, command: &Open) -> Decision<Self> {
        if !self.owner.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![
            Opened {
                owner: command.owner.clone(),
            }
            .into(),
        ])
    }
}

impl Handle<Deposit> for BankAccount {
    fn handle(&self, command: &Deposit) -> Decision<Self> {
        if self.closed {
            return Err(AccountError::Closed);
        }
        Ok(vec![
            Deposited {
                cents: command.cents,
            }
            .into(),
        ])
    }
}

impl Handle<Withdraw> for BankAccount {
    fn handle(&self, command: &Withdraw) -> Decision<Self> {
        if command.cents > self.balance {
            return Err(AccountError::Insufficient {
                available: self.balance,
            });
        }
        Ok(vec![
            Withdrawn {
                cents: command.cents,
            }
            .into(),
        ])
    }
}

#[tokio::test]
async fn an_aggregate_runs_end_to_end_through_a_repository() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone()).with_snapshots(store.clone());
    let meta = Metadata::new;

    let opened = repository
        .send(
            Open {
                account: 1,
                owner: "Ana".into(),
            },
            meta(),
        )
        .await
        .unwrap();
    assert_eq!(opened.stream.as_str(), "bank_account-1");
    assert_eq!(
        opened.events,
        [BankAccountEvent::Opened(Opened {
            owner: "Ana".into()
        })]
    );
    let noop = repository
        .send(
            Open {
                account: 1,
                owner: "Someone else".into(),
            },
            meta(),
        )
        .await
        .unwrap();
    assert!(noop.is_noop());
    repository
        .send(
            Deposit {
                account: 1,
                cents: 500,
            },
            meta(),
        )
        .await
        .unwrap();
    match repository
        .send(
            Withdraw {
                account: 1,
                cents: 900,
            },
            meta(),
        )
        .await
    {
        Err(ExecuteError::Rejected(AccountError::Insufficient { available })) => {
            assert_eq!(available, 500);
        }
        other => panic!("expected a typed rejection, got {other:?}"),
    }
    let third = repository
        .send(
            Withdraw {
                account: 1,
                cents: 200,
            },
            meta(),
        )
        .await
        .unwrap();
    assert_eq!(third.stream_version.get(), 3);

    // The store holds the stored names and payloads, in order.
    let stream = BankAccount::stream_id(&1).unwrap();
    let records = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    let stored: Vec<(&str, u32, &str)> = records
        .iter()
        .map(|r| (&*r.event_type, r.schema_version, &*r.payload))
        .collect();
    assert_eq!(
        stored,
        [
            ("account.opened", 1, r#"{"owner":"Ana"}"#),
            ("Deposited", 1, r#"{"cents":500}"#),
            ("Withdrawn", 1, r#"{"cents":200}"#),
        ]
    );

    // `snapshot_every = 3`: the third event crossed the threshold.
    let snapshot = store.load_snapshot(&stream).await.unwrap().unwrap();
    assert_eq!((snapshot.version.get(), snapshot.state_version), (3, 2));
    assert!(
        snapshot.payload.contains(r#""balance":300"#),
        "{}",
        snapshot.payload
    );

    let loaded = repository.load::<BankAccount>(&1).await.unwrap();
    assert_eq!(loaded.version.get(), 3);
    assert_eq!(
        (loaded.state.owner.as_str(), loaded.state.balance),
        ("Ana", 300)
    );

    // Another aggregate's streams are apart.
    let other = repository.load::<BankAccount>(&2).await.unwrap();
    assert_eq!(other.version.get(), 0);
    assert_eq!(other.state, BankAccount::default());
}

/// Another writer slips `event` into the account's stream just before the next append: a
/// deterministic race, staged with eventsrc-testing's `RacingStore`.
fn race(repository: &Repository<RacingStore<MemoryStore>>, account: u64, event: impl Event) {
    let stream = BankAccount::stream_id(&account).unwrap();
    let intruder = NewEvent::from_event(&event, Metadata::new()).unwrap();
    repository.store().race(stream, vec![intruder]);
}

async fn funded_account(repository: &Repository<RacingStore<MemoryStore>>, account: u64) {
    let open = Open {
        account,
        owner: "Ana".into(),
    };
    repository.send(open, Metadata::new()).await.unwrap();
    let deposit = Deposit {
        account,
        cents: 500,
    };
    repository.send(deposit, Metadata::new()).await.unwrap();
}

#[tokio::test]
async fn a_race_with_a_conflicting_event_is_refused_through_the_declared_function() {
    let repository = Repository::new(RacingStore::new(MemoryStore::new()));
    funded_account(&repository, 1).await;
    race(&repository, 1, Closed);
    let withdraw = Withdraw {
        account: 1,
        cents: 100,
    };
    match repository.send(withdraw, Metadata::new()).await {
        Err(ExecuteError::Conflict {
            expected,
            actual,
            attempts,
            incompatible,
            ..
        }) => {
            assert!(
                incompatible,
                "`withdrawal_races` declares Closed incompatible"
            );
            assert_eq!((expected.get(), actual.get(), attempts), (2, 3, 1));
        }
        other => panic!("expected an incompatible conflict, got {other:?}"),
    }
    let loaded = repository.load::<BankAccount>(&1).await.unwrap();
    assert_eq!((loaded.version.get(), loaded.state.balance), (3, 500));
}

#[tokio::test]
async fn a_race_with_a_compatible_event_is_decided_again() {
    let repository = Repository::new(RacingStore::new(MemoryStore::new()));
    funded_account(&repository, 2).await;
    race(&repository, 2, Deposited { cents: 50 });
    let withdraw = Withdraw {
        account: 2,
        cents: 100,
    };
    let committed = repository.send(withdraw, Metadata::new()).await.unwrap();
    assert_eq!(committed.attempts, 2);
    assert_eq!(committed.stream_version.get(), 4);
    let loaded = repository.load::<BankAccount>(&2).await.unwrap();
    assert_eq!(loaded.state.balance, 450);
}
