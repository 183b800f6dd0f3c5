//! eventsrc: the account as an application writes it, `#[aggregate]` and `#[command]` over the
//! shared domain, commands sent through a `Repository` over any store and any options.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eventsrc::{
    Decision, EventStore, Metadata, Repository, SnapshotStore, StreamVersion, aggregate, command,
};

use eventsrc::store::NoSnapshots;

use crate::bank::{self, Account, AccountOpened, Deposited, Step, Withdrawn};
use crate::contender::{Contender, Failure, Plan};

#[aggregate(id = u64, error = bank::BankError, name = "account", vis = pub(crate))]
impl Account {
    fn on_account_opened(&mut self, event: &AccountOpened) {
        self.opened(event);
    }

    fn on_deposited(&mut self, event: &Deposited) {
        self.deposited(event);
    }

    fn on_withdrawn(&mut self, event: &Withdrawn) {
        self.withdrawn(event);
    }
}

#[command(aggregate = Account, handler = Account::open_account)]
struct OpenAccount {
    #[id]
    account: u64,
    owner: String,
}

#[command(aggregate = Account, handler = Account::deposit)]
struct Deposit {
    #[id]
    account: u64,
    amount_cents: u64,
}

#[command(aggregate = Account, handler = Account::withdraw)]
struct Withdraw {
    #[id]
    account: u64,
    amount_cents: u64,
}

#[command(aggregate = Account, handler = Account::import)]
struct ImportHistory {
    #[id]
    account: u64,
    entries: u64,
}

impl Account {
    fn open_account(&self, command: &OpenAccount) -> Decision<Self> {
        Ok(vec![
            self.decide_open(command.account, &command.owner)?.into(),
        ])
    }

    fn deposit(&self, command: &Deposit) -> Decision<Self> {
        Ok(vec![
            self.decide_deposit(command.account, command.amount_cents)?
                .into(),
        ])
    }

    fn withdraw(&self, command: &Withdraw) -> Decision<Self> {
        Ok(vec![
            self.decide_withdraw(command.account, command.amount_cents)?
                .into(),
        ])
    }

    fn import(&self, command: &ImportHistory) -> Decision<Self> {
        let deposits = self.decide_import(command.account, command.entries)?;
        Ok(deposits.into_iter().map(Into::into).collect())
    }
}

/// eventsrc through a repository: whatever store it is over (each column its own schema) and
/// whatever it is configured with (a cache, snapshots, retries), so a variant is one line:
/// `EventsrcSide::new("eventsrc + cache", repository.with_cache(cache))`.
#[derive(Debug)]
pub(crate) struct EventsrcSide<S, N = NoSnapshots> {
    name: String,
    repository: Repository<S, N>,
    /// The next account number of the command workloads.
    accounts: AtomicU64,
}

impl<S, N> EventsrcSide<S, N> {
    pub(crate) fn new(name: impl Into<String>, repository: Repository<S, N>) -> Self {
        Self {
            name: name.into(),
            repository,
            accounts: AtomicU64::new(1),
        }
    }
}

/// One step of the workload on `account`.
async fn step<S, N>(repository: &Repository<S, N>, account: u64, step: Step) -> Result<(), Failure>
where
    S: EventStore,
    N: SnapshotStore,
{
    match step {
        Step::Open => {
            let owner = bank::OWNER.into();
            repository
                .send(OpenAccount { account, owner }, Metadata::new())
                .await?;
        }
        Step::Deposit(amount_cents) => {
            let deposit = Deposit {
                account,
                amount_cents,
            };
            repository.send(deposit, Metadata::new()).await?;
        }
        Step::Withdraw(amount_cents) => {
            let withdraw = Withdraw {
                account,
                amount_cents,
            };
            repository.send(withdraw, Metadata::new()).await?;
        }
    }
    Ok(())
}

#[async_trait]
impl<S, N> Contender for EventsrcSide<S, N>
where
    S: EventStore + Clone + Send + Sync + 'static,
    N: SnapshotStore + Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn setup(&self, plan: &Plan) -> Result<(), Failure> {
        for account in plan.big_aggregates() {
            step(&self.repository, account, Step::Open).await?;
            let import = ImportHistory {
                account,
                entries: plan.big_events - 1,
            };
            let done = self.repository.send(import, Metadata::new()).await?;
            if done.stream_version != StreamVersion(plan.big_events) {
                return Err(format!("seeded {account} to {:?}", done.stream_version).into());
            }
        }
        Ok(())
    }

    async fn run_commands(&self, clients: usize, n: u64) -> Result<Duration, Failure> {
        let accounts_each = n / clients as u64 / bank::EVENTS_PER_ACCOUNT;
        let first = self
            .accounts
            .fetch_add(accounts_each * clients as u64, Ordering::Relaxed);
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients as u64)
            .map(|client| {
                let repository = self.repository.clone();
                let mine = first + client * accounts_each..first + (client + 1) * accounts_each;
                tokio::spawn(async move {
                    for account in mine {
                        for command in bank::script() {
                            step(&repository, account, command).await?;
                        }
                    }
                    Ok::<(), Failure>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok(started.elapsed())
    }

    async fn command_on_big(&self, plan: &Plan, round: usize, n: u64) -> Result<Duration, Failure> {
        let account = plan.big_commanded(round);
        let before = self
            .repository
            .load::<Account>(&account)
            .await?
            .state
            .entries;
        let started = Instant::now();
        for _ in 0..n {
            step(&self.repository, account, Step::Deposit(1_000)).await?;
        }
        let elapsed = started.elapsed();
        let after = self
            .repository
            .load::<Account>(&account)
            .await?
            .state
            .entries;
        if after != before + n {
            return Err(format!("{account} went from {before} to {after} events").into());
        }
        Ok(elapsed)
    }

    async fn load_big(&self, plan: &Plan, n: u64) -> Result<Duration, Failure> {
        let account = plan.big_loaded();
        let started = Instant::now();
        for _ in 0..n {
            let loaded = self.repository.load::<Account>(&account).await?;
            if loaded.state.entries != plan.big_events {
                return Err(format!("loaded {} events", loaded.state.entries).into());
            }
        }
        Ok(started.elapsed())
    }
}
