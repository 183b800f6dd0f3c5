//! The aggregate cache's contract, which rests on the store's expected-version check: a
//! cached command reads nothing, and state another node moved on costs one catch-up and never
//! a wrong decision (an append, a refusal, a no-op or a token judged on state that is gone).

use std::sync::Arc;

use eventsrc_core::{
    Aggregate, AggregateCache, Command, CommandOptions, Decide, Decided, Decision, DecodeError,
    EncodeError, Event, EventStore, ExecuteError, Handle, Repository, StreamVersion,
};
use tokio::sync::Barrier;

use super::StoreUnderTest;
use crate::RacingStore;

/// An account's events; the payload is the amount as a JSON number.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Money {
    Deposited(u64),
    Withdrawn(u64),
    LimitSet(u64),
}

impl Event for Money {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Deposited(_) => "Deposited",
            Self::Withdrawn(_) => "Withdrawn",
            Self::LimitSet(_) => "LimitSet",
        }
    }
    fn schema_version(&self) -> u32 {
        1
    }
    fn encode(&self) -> Result<String, EncodeError> {
        let (Self::Deposited(n) | Self::Withdrawn(n) | Self::LimitSet(n)) = self;
        Ok(n.to_string())
    }
    fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
        let amount = || {
            serde_json::from_str::<u64>(payload)
                .map_err(|e| DecodeError::malformed(event_type, version, e))
        };
        match event_type {
            "Deposited" => amount().map(Self::Deposited),
            "Withdrawn" => amount().map(Self::Withdrawn),
            "LimitSet" => amount().map(Self::LimitSet),
            other => Err(DecodeError::unknown(other, version)),
        }
    }
}

/// Why an account refuses a withdrawal.
#[derive(Debug, PartialEq)]
pub(super) struct Insufficient {
    balance: u64,
}

impl std::fmt::Display for Insufficient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the balance is only {}", self.balance)
    }
}

impl std::error::Error for Insufficient {}

/// A balance that may not go below zero, and a limit that is set only when it changes.
#[derive(Debug, Default)]
pub(super) struct Account {
    pub(super) balance: u64,
    pub(super) limit: u64,
}

impl Account {
    fn fold(&mut self, event: &Money) {
        match event {
            Money::Deposited(n) => self.balance += n,
            Money::Withdrawn(n) => self.balance = self.balance.saturating_sub(*n),
            Money::LimitSet(n) => self.limit = *n,
        }
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Id = String;
    type Event = Money;
    type Error = Insufficient;
    fn apply(&mut self, event: &Money) {
        self.fold(event);
    }
}

/// The same account, opted out of the cache.
#[derive(Debug, Default)]
struct Vault(Account);

impl Aggregate for Vault {
    const TYPE: &'static str = "vault";
    const CACHE: bool = false;
    type Id = String;
    type Event = Money;
    type Error = Insufficient;
    fn apply(&mut self, event: &Money) {
        self.0.fold(event);
    }
}

pub(super) struct Deposit(pub(super) u64);
impl Command for Deposit {}

struct Withdraw(u64);
impl Command for Withdraw {}

/// Sets the limit; a no-op when it is already that.
struct SetLimit(u64);
impl Command for SetLimit {}

fn deposit(n: u64) -> Decision<Account> {
    Ok(vec![Money::Deposited(n)])
}

fn withdraw(balance: u64, n: u64) -> Decision<Account> {
    if balance < n {
        return Err(Insufficient { balance });
    }
    Ok(vec![Money::Withdrawn(n)])
}

impl Handle<Deposit> for Account {
    fn handle(&self, command: &Deposit) -> Decision<Self> {
        deposit(command.0)
    }
}

impl Handle<Withdraw> for Account {
    fn handle(&self, command: &Withdraw) -> Decision<Self> {
        withdraw(self.balance, command.0)
    }
}

impl Handle<SetLimit> for Account {
    fn handle(&self, command: &SetLimit) -> Decision<Self> {
        if self.limit == command.0 {
            return Ok(vec![]);
        }
        Ok(vec![Money::LimitSet(command.0)])
    }
}

impl Handle<Deposit> for Vault {
    fn handle(&self, command: &Deposit) -> Decision<Self> {
        deposit(command.0)
    }
}

/// Moves money between two accounts in one commit.
struct Transfer {
    from: String,
    to: String,
    amount: u64,
}

impl Command for Transfer {}

impl Decide for Transfer {
    type Aggregates = (Account, Account);
    type Error = Insufficient;

    fn ids(&self) -> (String, String) {
        (self.from.clone(), self.to.clone())
    }

    fn decide(&self, (from, _): &(Account, Account)) -> Decided<Self> {
        let taken = withdraw(from.balance, self.amount)?;
        Ok((taken, vec![Money::Deposited(self.amount)]))
    }
}

fn id(name: &str) -> String {
    name.to_owned()
}

/// A repository with a cache of its own: one application node.
fn node<S: EventStore>(store: S) -> (Repository<S>, AggregateCache) {
    let cache = AggregateCache::new(100);
    (Repository::new(store).with_cache(cache.clone()), cache)
}

/// Runs a command that must commit; returns the stream's version after it.
pub(super) async fn commit<S, C>(
    repository: &Repository<S>,
    account: &str,
    command: C,
    what: &str,
) -> u64
where
    S: EventStore,
    C: Command,
    Account: Handle<C>,
{
    match repository
        .execute::<Account, _>(&id(account), command, CommandOptions::new())
        .await
    {
        Ok(committed) => committed.stream_version.get(),
        Err(error) => panic!("{what}: expected a commit, got {error:?}"),
    }
}

/// The account as the store holds it, read by a repository without a cache.
async fn stored<S: StoreUnderTest>(store: &S, account: &str) -> (u64, u64, StreamVersion) {
    match Repository::new(store.clone())
        .load::<Account>(&id(account))
        .await
    {
        Ok(loaded) => (loaded.state.balance, loaded.state.limit, loaded.version),
        Err(error) => panic!("loading `{account}` failed: {error}"),
    }
}

/// After its first command, a cached aggregate's commands decide on the state the last one
/// left and append at once: no read of the stream, and the store holds every event.
pub async fn a_cached_command_decides_without_reading_its_stream<S: StoreUnderTest>(store: S) {
    let racing = RacingStore::new(store.clone());
    let (repository, cache) = node(racing.clone());
    commit(&repository, "a1", Deposit(10), "the first deposit").await;
    let after_load = racing.stream_reads();
    assert!(after_load >= 1, "the first command loads its aggregate");
    for n in 1..=5 {
        let version = commit(&repository, "a1", Deposit(1), "a cached deposit").await;
        assert_eq!(
            version,
            1 + n,
            "each cached command appends at the next version"
        );
    }
    commit(&repository, "a1", Withdraw(15), "a cached withdrawal").await;
    assert_eq!(
        racing.stream_reads(),
        after_load,
        "commands on a cached aggregate read nothing"
    );
    assert_eq!(cache.len(), 1, "one aggregate is cached");
    assert_eq!(stored(&store, "a1").await, (0, 0, StreamVersion(7)));
}

/// When another node appended to a cached aggregate, the append from the cached state is
/// refused by its expected version; the command reads the one event it missed and commits on
/// the caught-up state, without spending a retry (the repository allows none here).
pub async fn a_write_by_another_node_costs_the_cache_one_catch_up<S: StoreUnderTest>(store: S) {
    let racing = RacingStore::new(store.clone());
    let cache = AggregateCache::new(100);
    let ours = Repository::new(racing.clone())
        .with_cache(cache.clone())
        .with_max_retries(0);
    let other = Repository::new(store.clone());
    commit(&ours, "a2", Deposit(10), "our deposit").await;
    commit(&other, "a2", Deposit(5), "the other node's deposit").await;
    let before = racing.stream_reads();
    let version = commit(&ours, "a2", Deposit(1), "our deposit on stale state").await;
    assert_eq!(version, 3, "our event follows the other node's");
    assert_eq!(
        racing.stream_reads() - before,
        1,
        "a stale entry costs one catch-up read"
    );
    // The cache now holds the caught-up state: 16 may be withdrawn, and not one more.
    commit(&ours, "a2", Withdraw(16), "withdrawing the whole balance").await;
    match ours
        .execute::<Account, _>(&id("a2"), Withdraw(1), CommandOptions::new())
        .await
    {
        Err(ExecuteError::Rejected(refused)) => assert_eq!(refused, Insufficient { balance: 0 }),
        other => panic!("withdrawing from an empty account must be refused, got {other:?}"),
    }
    assert_eq!(stored(&store, "a2").await, (0, 0, StreamVersion(4)));
}

/// A refusal or a no-op appends nothing, so no expected version would catch cached state that
/// is gone: both are checked against the store first. Here the cached state would refuse a
/// withdrawal the store's balance allows, and skip a limit the other node changed.
pub async fn a_refusal_or_no_op_from_cached_state_is_checked_against_the_store<
    S: StoreUnderTest,
>(
    store: S,
) {
    let (ours, _) = node(store.clone());
    let other = Repository::new(store.clone());
    commit(&ours, "a3", Deposit(10), "our deposit").await;
    commit(&ours, "a3", SetLimit(5), "our limit").await;
    commit(&other, "a3", Deposit(20), "the other node's deposit").await;
    commit(&other, "a3", SetLimit(7), "the other node's limit").await;

    let version = commit(&ours, "a3", Withdraw(25), "a withdrawal the store allows").await;
    assert_eq!(version, 5, "the withdrawal follows the other node's events");
    match ours
        .execute::<Account, _>(&id("a3"), SetLimit(5), CommandOptions::new())
        .await
    {
        Ok(committed) => assert_eq!(
            (committed.events.len(), committed.stream_version),
            (1, StreamVersion(6)),
            "the limit is 7 in the store, so setting 5 is not a no-op"
        ),
        Err(error) => panic!("setting the limit back failed: {error:?}"),
    }
    assert_eq!(stored(&store, "a3").await, (5, 5, StreamVersion(6)));
}

/// A client's token is judged against the store, not the cache: a token newer than the cached
/// state (the client saw another node's write) passes after a catch-up, and a token older
/// than the store is `Stale`, whether the cached state would append or refuse.
pub async fn a_token_is_judged_against_the_store_not_the_cache<S: StoreUnderTest>(store: S) {
    let (ours, _) = node(store.clone());
    let other = Repository::new(store.clone());
    let token = |version| CommandOptions::new().expect_version(StreamVersion(version));
    commit(&ours, "a4", Deposit(10), "our deposit").await;
    commit(&other, "a4", Deposit(5), "the other node's deposit").await;
    match ours
        .execute::<Account, _>(&id("a4"), Deposit(1), token(2))
        .await
    {
        Ok(committed) => assert_eq!(committed.stream_version, StreamVersion(3)),
        Err(error) => panic!("the client's token is the store's version, yet: {error:?}"),
    }
    commit(&other, "a4", Deposit(5), "the other node's second deposit").await;
    for (what, outcome) in [
        (
            "a refusal",
            ours.execute::<Account, _>(&id("a4"), Withdraw(100), token(3))
                .await
                .map(|_| ()),
        ),
        (
            "an append",
            ours.execute::<Account, _>(&id("a4"), Deposit(1), token(3))
                .await
                .map(|_| ()),
        ),
    ] {
        match outcome {
            Err(ExecuteError::Stale {
                expected, actual, ..
            }) => assert_eq!(
                (expected, actual),
                (StreamVersion(3), StreamVersion(4)),
                "{what} on a stale token"
            ),
            other => panic!("{what} on a stale token must be Stale, got {other:?}"),
        }
    }
    assert_eq!(stored(&store, "a4").await, (21, 0, StreamVersion(4)));
}

/// A command with an idempotency key, run again after another node wrote, replays its first
/// run with the cache on, and the cache still decides right afterwards.
pub async fn an_idempotent_command_with_the_cache_on_appends_once<S: StoreUnderTest>(store: S) {
    let (ours, _) = node(store.clone());
    let other = Repository::new(store.clone());
    let keyed = || CommandOptions::new().idempotency_key("deposit-1");
    let first = match ours
        .execute::<Account, _>(&id("a5"), Deposit(10), keyed())
        .await
    {
        Ok(first) => first,
        Err(error) => panic!("the first run failed: {error:?}"),
    };
    commit(&other, "a5", Deposit(5), "the other node's deposit").await;
    match ours
        .execute::<Account, _>(&id("a5"), Deposit(10), keyed())
        .await
    {
        Ok(again) => {
            assert!(again.replayed, "the retry replays");
            assert_eq!(again.event_ids, first.event_ids, "the first run's events");
            assert_eq!(again.stream_version, StreamVersion(1));
        }
        Err(error) => panic!("the retried run failed: {error:?}"),
    }
    commit(&ours, "a5", Withdraw(15), "withdrawing both deposits").await;
    assert_eq!(stored(&store, "a5").await, (0, 0, StreamVersion(3)));
}

/// A decision across streams appends around the cache; it drops the entries of the streams it
/// touched, so the next command on them reads the store.
pub async fn a_decision_across_streams_drops_the_entries_it_touched<S: StoreUnderTest>(store: S) {
    let racing = RacingStore::new(store.clone());
    let (ours, cache) = node(racing.clone());
    commit(&ours, "x", Deposit(10), "x's deposit").await;
    commit(&ours, "y", Deposit(1), "y's deposit").await;
    commit(&ours, "z", Deposit(1), "z's deposit").await;
    assert_eq!(cache.len(), 3);
    let transfer = Transfer {
        from: id("x"),
        to: id("y"),
        amount: 4,
    };
    if let Err(error) = ours.decide(transfer, CommandOptions::new()).await {
        panic!("the transfer failed: {error:?}");
    }
    assert_eq!(cache.len(), 1, "x and y are dropped, z is kept");
    let before = racing.stream_reads();
    commit(&ours, "x", Withdraw(6), "x's withdrawal").await;
    assert!(racing.stream_reads() > before, "x is read again");
    assert_eq!(stored(&store, "x").await, (0, 0, StreamVersion(3)));
    assert_eq!(stored(&store, "y").await, (5, 0, StreamVersion(2)));
}

/// An aggregate with `CACHE = false` is read for every command and never held.
pub async fn an_aggregate_that_opts_out_is_never_cached<S: StoreUnderTest>(store: S) {
    let racing = RacingStore::new(store.clone());
    let (ours, cache) = node(racing.clone());
    for n in 1..=3 {
        let before = racing.stream_reads();
        match ours
            .execute::<Vault, _>(&id("v1"), Deposit(1), CommandOptions::new())
            .await
        {
            Ok(committed) => assert_eq!(committed.stream_version, StreamVersion(n)),
            Err(error) => panic!("a deposit in the vault failed: {error:?}"),
        }
        assert!(
            racing.stream_reads() > before,
            "command {n} reads the vault"
        );
    }
    assert!(cache.is_empty(), "nothing is cached: {cache:?}");
}

/// Nodes with caches of their own, depositing on one account at once, lose no deposit: every
/// stale entry and every conflict is caught by the expected version and decided again.
pub async fn racing_nodes_with_caches_lose_no_deposit<S: StoreUnderTest>(store: S) {
    const NODES: usize = 4;
    const DEPOSITS: u64 = 8;
    let barrier = Arc::new(Barrier::new(NODES));
    let mut tasks = Vec::new();
    for _ in 0..NODES {
        let (store, barrier) = (store.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let (repository, _) = node(store);
            let repository = repository.with_max_retries(64);
            barrier.wait().await;
            for _ in 0..DEPOSITS {
                commit(&repository, "shared", Deposit(1), "a racing deposit").await;
            }
        }));
    }
    for task in tasks {
        if let Err(error) = task.await {
            panic!("a node's deposits did not finish: {error}");
        }
    }
    let total = NODES as u64 * DEPOSITS;
    assert_eq!(
        stored(&store, "shared").await,
        (total, 0, StreamVersion(total)),
        "every deposit, once"
    );
}
