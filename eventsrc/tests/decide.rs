//! Decisions across streams through the repository: a transfer between two accounts, decided
//! on both balances and appended to both streams at once; conflicts, tokens, keys and no-ops.

#![allow(clippy::unwrap_used)]

mod common;

use common::ConflictingStore;
use eventsrc::{
    CommandOptions, Decided, Event, EventStore, ExecuteError, MemoryStore, Metadata, NewEvent,
    Repository, StreamId, StreamVersion, ValidationError, aggregate, command,
};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Deposited {
    amount: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Withdrawn {
    amount: u64,
}

#[derive(Default, Debug)]
struct Account {
    balance: u64,
}

#[aggregate(id = String)]
impl Account {
    fn on_deposited(&mut self, event: &Deposited) {
        self.balance += event.amount;
    }
    fn on_withdrawn(&mut self, event: &Withdrawn) {
        self.balance -= event.amount;
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the balance is {balance}, short of {amount}")]
struct Insufficient {
    balance: u64,
    amount: u64,
}

/// Moves money between two accounts: a withdrawal and a deposit that commit together.
#[command(aggregates = (Account, Account), error = Insufficient, handler = transfer, validate = two_accounts)]
#[derive(Clone)]
struct Transfer {
    #[id]
    from: String,
    #[id]
    to: String,
    amount: u64,
}

fn two_accounts(command: &Transfer, errors: &mut ValidationError) {
    if command.from == command.to {
        errors.push("to", "must be another account");
    }
}

fn transfer(command: &Transfer, (from, _): &(Account, Account)) -> Decided<Transfer> {
    let amount = command.amount;
    if amount == 0 {
        return Ok((vec![], vec![]));
    }
    if from.balance < amount {
        return Err(Insufficient {
            balance: from.balance,
            amount,
        });
    }
    Ok((
        vec![Withdrawn { amount }.into()],
        vec![Deposited { amount }.into()],
    ))
}

fn move_money(amount: u64) -> Transfer {
    Transfer {
        from: "alice".into(),
        to: "bob".into(),
        amount,
    }
}

fn account(id: &str) -> StreamId {
    StreamId::new("account", id).unwrap()
}

async fn balance<S: EventStore>(repository: &Repository<S>, id: &str) -> (u64, StreamVersion) {
    let loaded = repository.load::<Account>(&id.to_owned()).await.unwrap();
    (loaded.state.balance, loaded.version)
}

/// Alice's account holds `amount`.
async fn fund<S: EventStore>(store: &S, amount: u64) {
    let deposit = NewEvent::raw("Deposited", 1, format!(r#"{{"amount":{amount}}}"#));
    let stream = account("alice");
    store
        .append(&stream, eventsrc::ExpectedVersion::Any, vec![deposit])
        .await
        .unwrap();
}

fn foreign_deposit() -> NewEvent {
    NewEvent::raw("Deposited", 1, r#"{"amount":5}"#)
}

#[tokio::test]
async fn a_transfer_appends_to_both_accounts_in_one_commit() {
    let store = MemoryStore::new();
    fund(&store, 10).await;
    let repository = Repository::new(store.clone());
    let committed = repository
        .decide(move_money(4), Metadata::new())
        .await
        .unwrap();

    assert_eq!(committed.attempts, 1);
    assert_eq!(
        committed.stream(&account("alice")).unwrap().stream_version,
        StreamVersion(2)
    );
    assert_eq!(
        committed.stream(&account("bob")).unwrap().stream_version,
        StreamVersion(1)
    );
    assert_eq!(balance(&repository, "alice").await.0, 6);
    assert_eq!(balance(&repository, "bob").await.0, 4);
    let log = store
        .read_all(eventsrc::store::ReadAll::after(
            eventsrc::GlobalPosition::START,
        ))
        .await
        .unwrap();
    assert_eq!(log[1].global_position.commit, log[2].global_position.commit);
    assert_eq!(committed.global_position, Some(log[2].global_position));
    for event in &log[1..] {
        assert_eq!(event.metadata.causation_id, Some(committed.command_id));
    }
}

#[tokio::test]
async fn a_refused_transfer_and_a_no_op_append_nothing_and_an_invalid_one_loads_nothing() {
    let store = MemoryStore::new();
    fund(&store, 3).await;
    let repository = Repository::new(store.clone());
    match repository.decide(move_money(4), Metadata::new()).await {
        Err(ExecuteError::Rejected(refused)) => assert_eq!(refused.balance, 3),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let noop = repository
        .decide(move_money(0), Metadata::new())
        .await
        .unwrap();
    assert!(noop.is_noop() && noop.global_position.is_none());
    let to_self = Transfer {
        to: "alice".into(),
        ..move_money(1)
    };
    assert!(matches!(
        repository.decide(to_self, Metadata::new()).await,
        Err(ExecuteError::Invalid(_))
    ));
    assert_eq!(store.len(), 1, "only the funding deposit is stored");
}

#[tokio::test]
async fn a_conflict_catches_both_accounts_up_and_decides_again() {
    let inner = MemoryStore::new();
    fund(&inner, 10).await;
    let store = ConflictingStore::new(inner.clone(), 1, foreign_deposit());
    let repository = Repository::new(store.clone());
    let committed = repository
        .decide(move_money(8), Metadata::new())
        .await
        .unwrap();
    // The deposit that slipped in (5) is folded before deciding again: 10 + 5 - 8.
    assert_eq!((committed.attempts, store.injected()), (2, 1));
    assert_eq!(balance(&repository, "alice").await, (7, StreamVersion(3)));
    assert_eq!(balance(&repository, "bob").await.0, 8);
}

#[tokio::test]
async fn retries_run_out_with_a_conflict_naming_the_stream() {
    let inner = MemoryStore::new();
    fund(&inner, 10).await;
    let store = ConflictingStore::always(inner, foreign_deposit());
    let repository = Repository::new(store.clone()).with_max_retries(2);
    match repository.decide(move_money(1), Metadata::new()).await {
        Err(ExecuteError::Conflict {
            stream,
            attempts,
            incompatible,
            ..
        }) => {
            assert_eq!(
                (stream, attempts, incompatible),
                (account("alice"), 3, false)
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.attempts(), 3);
}

#[tokio::test]
async fn a_token_makes_a_conflict_stale_without_a_retry() {
    let inner = MemoryStore::new();
    fund(&inner, 10).await;
    let store = ConflictingStore::new(inner, 1, foreign_deposit());
    let repository = Repository::new(store.clone());
    let token = CommandOptions::new().expect_version(StreamVersion(1));
    match repository.decide(move_money(1), token).await {
        Err(ExecuteError::Stale {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(stream, account("alice"));
            assert_eq!((expected, actual), (StreamVersion(1), StreamVersion(2)));
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    assert_eq!(store.attempts(), 1, "decided once, never retried");
    assert_eq!(balance(&repository, "bob").await.0, 0);
}

#[tokio::test]
async fn a_keyed_transfer_that_had_to_retry_is_replayed_once_committed() {
    let inner = MemoryStore::new();
    fund(&inner, 10).await;
    let store = ConflictingStore::new(inner.clone(), 1, foreign_deposit());
    let repository = Repository::new(store);
    let keyed =
        || CommandOptions::from(Metadata::new().with_actor("teller")).idempotency_key("t-1");
    let first = repository.decide(move_money(7), keyed()).await.unwrap();
    assert_eq!(first.attempts, 2);
    let again = repository.decide(move_money(7), keyed()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.streams, first.streams);
    assert_eq!(again.events, first.events);
    assert_eq!(
        balance(&Repository::new(inner), "bob").await.0,
        7,
        "moved once"
    );
}
