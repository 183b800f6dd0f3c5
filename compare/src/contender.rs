//! What every library in the comparison does: the same workload behind one small trait, so
//! that a column of the table is one line in `main`.

use std::time::Duration;

use async_trait::async_trait;

/// Any failure of a contender: the run stops and says what it was.
pub(crate) type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The sizes of one run, the same for every contender.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Alternating rounds; every figure is measured once per round per contender.
    pub(crate) rounds: usize,
    /// Slices of each part of a round: every column runs a slice in turn.
    pub(crate) slices: u64,
    /// Commands per slice with 1 client (a multiple of the events per account).
    pub(crate) commands: u64,
    /// Concurrent clients (tokio tasks) in the concurrent workload.
    pub(crate) clients: usize,
    /// Commands per slice with `clients` clients (a multiple of clients × events per account).
    pub(crate) concurrent_commands: u64,
    /// Events of each large aggregate.
    pub(crate) big_events: u64,
    /// Commands on a large aggregate, and loads of one, per slice.
    pub(crate) big_ops: u64,
}

/// Large aggregates' ids start here, far above the workload's accounts.
const BIG_IDS: u64 = 1 << 40;

impl Plan {
    /// The large aggregate that round `round` sends commands to (a fresh one each round, so
    /// each round's commands find `big_events` events, plus those of the round so far).
    pub(crate) fn big_commanded(&self, round: usize) -> u64 {
        BIG_IDS + 1 + round as u64
    }

    /// The large aggregate that loads read: never commanded, always `big_events` events.
    pub(crate) fn big_loaded(&self) -> u64 {
        BIG_IDS
    }

    /// Every large aggregate `setup` makes.
    pub(crate) fn big_aggregates(&self) -> impl Iterator<Item = u64> + use<> {
        let first = self.big_loaded();
        let last = self.big_commanded(self.rounds);
        first..=last
    }
}

/// One library running the workload against its own fresh schema of the shared server.
///
/// Every method measures only its workload: the time it returns leaves out what is set up
/// around it.
#[async_trait]
pub(crate) trait Contender: Send + Sync {
    /// The column's heading.
    fn name(&self) -> &str;

    /// Makes the large aggregates (`Plan::big_aggregates`, `big_events` events each).
    async fn setup(&self, plan: &Plan) -> Result<(), Failure>;

    /// `n` commands spread over `clients` tokio tasks, each task on accounts of its own: an
    /// account is opened, then gets deposits and withdrawals, one event per command.
    async fn run_commands(&self, clients: usize, n: u64) -> Result<Duration, Failure>;

    /// `n` deposits, one after the other, on the large aggregate of `round` (a round makes
    /// several such calls), each checked by the aggregate's count of events before and after.
    async fn command_on_big(&self, plan: &Plan, round: usize, n: u64) -> Result<Duration, Failure>;

    /// `n` loads of the large aggregate that is never commanded, each checked.
    async fn load_big(&self, plan: &Plan, n: u64) -> Result<Duration, Failure>;
}
