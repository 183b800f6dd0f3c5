//! cqrs-es with postgres-es: the same account through cqrs-es's `Aggregate` trait, commands
//! through `CqrsFramework::execute`, loads through the `PersistedEventStore` it runs on, in a
//! schema of its own holding the tables postgres-es reads and writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, CqrsFramework, DomainEvent, EventStore};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;

use crate::bank::{self, Account, AccountOpened, BankError, Deposited, Step, Withdrawn};
use crate::contender::{Contender, Failure, Plan};

/// The account as a cqrs-es aggregate: the shared state, with cqrs-es's own event enum and
/// command enum around the shared events and rules.
#[derive(Default, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct CqrsAccount(Account);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum AccountEvent {
    AccountOpened(AccountOpened),
    Deposited(Deposited),
    Withdrawn(Withdrawn),
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountOpened(_) => "AccountOpened",
            Self::Deposited(_) => "Deposited",
            Self::Withdrawn(_) => "Withdrawn",
        }
        .into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug)]
pub(crate) enum AccountCommand {
    Open { account: u64, owner: String },
    Deposit { account: u64, amount_cents: u64 },
    Withdraw { account: u64, amount_cents: u64 },
    Import { account: u64, entries: u64 },
}

impl Aggregate for CqrsAccount {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = BankError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AccountCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), BankError> {
        let events = match command {
            AccountCommand::Open { account, owner } => {
                vec![AccountEvent::AccountOpened(
                    self.0.decide_open(account, &owner)?,
                )]
            }
            AccountCommand::Deposit {
                account,
                amount_cents,
            } => vec![AccountEvent::Deposited(
                self.0.decide_deposit(account, amount_cents)?,
            )],
            AccountCommand::Withdraw {
                account,
                amount_cents,
            } => vec![AccountEvent::Withdrawn(
                self.0.decide_withdraw(account, amount_cents)?,
            )],
            AccountCommand::Import { account, entries } => self
                .0
                .decide_import(account, entries)?
                .into_iter()
                .map(AccountEvent::Deposited)
                .collect(),
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountOpened(event) => self.0.opened(&event),
            AccountEvent::Deposited(event) => self.0.deposited(&event),
            AccountEvent::Withdrawn(event) => self.0.withdrawn(&event),
        }
    }
}

/// The event store a `PostgresCqrs` runs on, used directly for loads.
type Loader = PersistedEventStore<PostgresEventRepository, CqrsAccount>;

pub(crate) struct CqrsSide {
    cqrs: Arc<PostgresCqrs<CqrsAccount>>,
    loader: Loader,
    accounts: AtomicU64,
}

impl std::fmt::Debug for CqrsSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqrsSide").finish_non_exhaustive()
    }
}

impl CqrsSide {
    /// Connects a pool of `pool_size` and makes `schema` with postgres-es's events and
    /// snapshots tables (its documented layout: one row per event, the primary key on type, id
    /// and sequence).
    pub(crate) async fn connect(url: &str, schema: &str, pool_size: u32) -> Result<Self, Failure> {
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .connect(url)
            .await?;
        let ddl = [
            format!("CREATE SCHEMA \"{schema}\""),
            format!(
                "CREATE TABLE \"{schema}\".events (
                    aggregate_type text NOT NULL,
                    aggregate_id text NOT NULL,
                    sequence bigint NOT NULL CHECK (sequence >= 0),
                    event_type text NOT NULL,
                    event_version text NOT NULL,
                    payload json NOT NULL,
                    metadata json NOT NULL,
                    PRIMARY KEY (aggregate_type, aggregate_id, sequence))"
            ),
            format!(
                "CREATE TABLE \"{schema}\".snapshots (
                    aggregate_type text NOT NULL,
                    aggregate_id text NOT NULL,
                    last_sequence bigint NOT NULL CHECK (last_sequence >= 0),
                    current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0),
                    payload json NOT NULL,
                    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))"
            ),
        ];
        for statement in &ddl {
            sqlx::query(statement).execute(&pool).await?;
        }
        let events = format!("\"{schema}\".events");
        let snapshots = format!("\"{schema}\".snapshots");
        let repository =
            || PostgresEventRepository::new(pool.clone()).with_tables(&events, &snapshots);
        let cqrs = CqrsFramework::new(
            PersistedEventStore::new_event_store(repository()),
            Vec::new(),
            (),
        );
        Ok(Self {
            cqrs: Arc::new(cqrs),
            loader: PersistedEventStore::new_event_store(repository()),
            accounts: AtomicU64::new(1),
        })
    }

    async fn entries(&self, account: u64) -> Result<u64, Failure> {
        let mut context = self.loader.load_aggregate(&account.to_string()).await?;
        Ok(context.aggregate().0.entries)
    }
}

/// One step of the workload on `account`.
async fn step(cqrs: &PostgresCqrs<CqrsAccount>, account: u64, step: Step) -> Result<(), Failure> {
    let command = match step {
        Step::Open => AccountCommand::Open {
            account,
            owner: bank::OWNER.into(),
        },
        Step::Deposit(amount_cents) => AccountCommand::Deposit {
            account,
            amount_cents,
        },
        Step::Withdraw(amount_cents) => AccountCommand::Withdraw {
            account,
            amount_cents,
        },
    };
    cqrs.execute(&account.to_string(), command).await?;
    Ok(())
}

#[async_trait]
impl Contender for CqrsSide {
    fn name(&self) -> &str {
        "cqrs-es"
    }

    async fn setup(&self, plan: &Plan) -> Result<(), Failure> {
        for account in plan.big_aggregates() {
            step(&self.cqrs, account, Step::Open).await?;
            let import = AccountCommand::Import {
                account,
                entries: plan.big_events - 1,
            };
            self.cqrs.execute(&account.to_string(), import).await?;
            let entries = self.entries(account).await?;
            if entries != plan.big_events {
                return Err(format!("seeded {account} to {entries} events").into());
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
                let cqrs = Arc::clone(&self.cqrs);
                let mine = first + client * accounts_each..first + (client + 1) * accounts_each;
                tokio::spawn(async move {
                    for account in mine {
                        for command in bank::script() {
                            step(&cqrs, account, command).await?;
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
        let before = self.entries(account).await?;
        let started = Instant::now();
        for _ in 0..n {
            step(&self.cqrs, account, Step::Deposit(1_000)).await?;
        }
        let elapsed = started.elapsed();
        let after = self.entries(account).await?;
        if after != before + n {
            return Err(format!("{account} went from {before} to {after} events").into());
        }
        Ok(elapsed)
    }

    async fn load_big(&self, plan: &Plan, n: u64) -> Result<Duration, Failure> {
        let account = plan.big_loaded();
        let started = Instant::now();
        for _ in 0..n {
            let entries = self.entries(account).await?;
            if entries != plan.big_events {
                return Err(format!("loaded {entries} events").into());
            }
        }
        Ok(started.elapsed())
    }
}
