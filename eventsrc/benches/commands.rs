//! Commands per second through the whole repository path (load or cache, decide, append),
//! beside the raw floors measured in the same run on the same table and indexes:
//!
//! - **raw read + insert**: what a command costs by hand: `SELECT` the aggregate's rows, decode
//!   and fold them, `INSERT` the next one;
//! - **raw INSERT**: one durable single-row `INSERT` whose version the client already knows,
//!   the physical limit of a command whose state is in memory;
//! - **raw INSERT, eventsrc's statement and row** (PostgreSQL): the statement the store runs
//!   for a command's one event, by hand on the same connections as the raw INSERT, with the row
//!   a command writes (its metadata too): what the version check and the rest of the statement
//!   cost without eventsrc's own code around them;
//! - **raw INSERT, eventsrc's row, no version check** (PostgreSQL): the same row and
//!   `RETURNING` without the check of the stream's newest version, to tell what the check
//!   costs (the store never appends this way).
//!
//! A bank-account workload: `Deposited` events of about 200 bytes, 1,000 accounts per side
//! seeded with 10 events each, 1 and 8 clients on distinct accounts, the sides interleaved
//! round by round (this machine drifts over minutes). Then a command on an aggregate of 1,000
//! events beside one on an aggregate of 10, with and without the cache.
//!
//! Run with `cargo bench -p eventsrc --bench commands` (SQLite, durable commits); with
//! `EVENTSRC_POSTGRES_URL=postgres://...` set it measures PostgreSQL too.
//! `EVENTSRC_BENCH_ONLY=sqlite` or `postgres` runs one backend; `EVENTSRC_BENCH_ROUNDS`
//! (default 5) sets the rounds. For a profiler, `EVENTSRC_BENCH_SIDE=<a side's name>` runs one
//! PostgreSQL side alone (see [`profile_one`]).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventsrc::postgres::{PgEventStore, PgOptions};
use eventsrc::sqlite::SqliteEventStore;
use eventsrc::{
    AggregateCache, Decision, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, Repository,
    StreamId, aggregate, command,
};
use serde::{Deserialize, Serialize};

/// A deposit: about 200 bytes of JSON.
#[derive(eventsrc::Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Deposited {
    amount_cents: u64,
    currency: String,
    reference: String,
    teller: String,
    channel: String,
}

#[derive(Default, Debug)]
struct Account {
    balance_cents: u64,
    deposits: u64,
}

#[aggregate(id = u64)]
impl Account {
    fn on_deposited(&mut self, event: &Deposited) {
        self.balance_cents += event.amount_cents;
        self.deposits += 1;
    }
}

#[command(aggregate = Account, handler = Account::deposit)]
struct Deposit {
    #[id]
    account: u64,
    amount_cents: u64,
}

impl Account {
    fn deposit(&self, command: &Deposit) -> Decision<Self> {
        Ok(vec![deposited(self.deposits, command.amount_cents).into()])
    }
}

fn deposited(n: u64, amount_cents: u64) -> Deposited {
    Deposited {
        amount_cents,
        currency: "EUR".into(),
        reference: format!("INV-2026-{n:08}/monthly settlement of the service agreement"),
        teller: "branch-0042/terminal-07/operator-1138".into(),
        channel: "online-banking".into(),
    }
}

fn payload(n: u64) -> String {
    serde_json::to_string(&deposited(n, 1_000)).expect("encodes")
}

fn stream_name(account: u64) -> String {
    StreamId::new("account", account)
        .expect("a stream id")
        .to_string()
}

/// Accounts per side; each side has its own range, so no two sides touch one stream.
const ACCOUNTS: u64 = 1_000;
/// Events seeded into each account.
const SEEDED: u64 = 10;
/// The large aggregates, per side.
const BIG: u64 = 10;
const BIG_EVENTS: u64 = 1_000;
/// Commands per measurement: at 1 client, and in all at 8.
const COMMANDS_1: u64 = 1_000;
const COMMANDS_8: u64 = 3_200;
/// Commands per side on large (and on small) aggregates.
const LATENCY_COMMANDS: u64 = 100;

/// One command on an account: the unit every side is timed on.
type Run = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Side {
    name: &'static str,
    /// Its first account; it owns `ACCOUNTS` from there, and `BIG` large ones at `+ 500_000`.
    base: u64,
    run: Run,
}

impl Side {
    /// Whether it runs eventsrc's repository: only those own large aggregates, whose
    /// latency is measured.
    fn is_eventsrc(&self) -> bool {
        self.name.starts_with("eventsrc")
    }
}

/// A repository's command as a [`Run`].
fn repository_side<S: EventStore + Clone + 'static>(repository: Repository<S>) -> Run {
    let repository = Arc::new(repository);
    Arc::new(move |account| {
        let repository = Arc::clone(&repository);
        Box::pin(async move {
            repository
                .send(
                    Deposit {
                        account,
                        amount_cents: 1_000,
                    },
                    Metadata::new(),
                )
                .await
                .expect("the command commits");
        })
    })
}

/// `commands` commands spread over `clients` tasks; client `c` runs on the accounts `≡ c`
/// modulo `clients`, so clients never contend for one stream. Returns commands per second.
async fn throughput(side: &Side, clients: u64, commands: u64) -> f64 {
    throughput_and_cpu(side, clients, commands).await.0
}

/// [`throughput`], and the CPU nanoseconds the run took on the client and on the server (`None`
/// without `/proc`).
async fn throughput_and_cpu(side: &Side, clients: u64, commands: u64) -> (f64, Option<(u64, u64)>) {
    let per_client = commands / clients;
    let cpu_before = cpu::now();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (run, base) = (Arc::clone(&side.run), side.base);
            tokio::spawn(async move {
                for j in 0..per_client {
                    run(base + (c + j * clients) % ACCOUNTS).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a client finished");
    }
    let rate = (per_client * clients) as f64 / started.elapsed().as_secs_f64();
    let cpu = cpu_before
        .zip(cpu::now())
        .map(|(before, after)| cpu::between(&before, &after));
    (rate, cpu)
}

/// Mean time of one command on the side's large aggregates, then on small ones, interleaved.
async fn latency(side: &Side) -> (Duration, Duration) {
    let (mut big, mut small) = (Duration::ZERO, Duration::ZERO);
    for i in 0..LATENCY_COMMANDS {
        let started = Instant::now();
        (side.run)(side.base + 500_000 + i % BIG).await;
        big += started.elapsed();
        let started = Instant::now();
        (side.run)(side.base + i % BIG).await;
        small += started.elapsed();
    }
    (
        big / LATENCY_COMMANDS as u32,
        small / LATENCY_COMMANDS as u32,
    )
}

/// Seeds the side's accounts through `store`: `SEEDED` events each, and `BIG_EVENTS` in each
/// large one.
async fn seed<S: EventStore + Clone + 'static>(store: &S, base: u64) {
    const WRITERS: u64 = 4;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let accounts = (0..ACCOUNTS).map(|a| (base + a, SEEDED));
                let big = (0..BIG).map(|a| (base + 500_000 + a, BIG_EVENTS));
                for (account, events) in accounts
                    .chain(big)
                    .skip(w as usize)
                    .step_by(WRITERS as usize)
                {
                    let stream = StreamId::new("account", account).expect("a stream id");
                    let mut written = 0;
                    while written < events {
                        let batch: Vec<NewEvent> = (written..events.min(written + 500))
                            .map(|n| {
                                NewEvent::from_event(&deposited(n, 1_000), Metadata::new())
                                    .expect("encodes")
                            })
                            .collect();
                        written += batch.len() as u64;
                        store
                            .append(&stream, ExpectedVersion::Any, batch)
                            .await
                            .expect("seeds");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a seeder finished");
    }
}

/// Seeds the two account ranges of a store: the plain side's and the cached (or raw INSERT)
/// side's.
async fn seed_two<S: EventStore + Clone + 'static>(store: &S) {
    seed(store, 0).await;
    seed(store, ACCOUNTS).await;
}

/// eventsrc without and with the cache, on the two ranges [`seed_two`] seeded.
fn eventsrc_sides<S: EventStore + Clone + 'static>(store: S) -> [Side; 2] {
    [
        Side {
            name: "eventsrc",
            base: 0,
            run: repository_side(Repository::new(store.clone())),
        },
        Side {
            name: "eventsrc + cache",
            base: ACCOUNTS,
            run: repository_side(Repository::new(store).with_cache(AggregateCache::new(10_000))),
        },
    ]
}

/// Next versions of the raw INSERT side's accounts: the client's knowledge of its state.
struct Versions(Vec<AtomicU64>);

impl Versions {
    fn new(seeded: u64) -> Arc<Self> {
        Arc::new(Self(
            (0..ACCOUNTS).map(|_| AtomicU64::new(seeded + 1)).collect(),
        ))
    }
    fn next(&self, account: u64) -> u64 {
        self.0[(account % ACCOUNTS) as usize].fetch_add(1, Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite

mod sqlite_raw {
    use super::*;
    use rusqlite::{Connection, params};

    const INSERT: &str = "INSERT INTO events (commit_seq, tenant, stream, category, \
        stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at) \
        VALUES (0, 'default', ?1, 'account', ?2, ?3, 'Deposited', 1, ?4, NULL, ?5)";
    const SELECT: &str = "SELECT stream_version, payload FROM events \
        WHERE tenant = 'default' AND stream = ?1 ORDER BY stream_version";

    /// Eight connections configured as the store configures its writer; account `a` uses
    /// connection `a % 8`, so each of 8 clients has its own.
    pub(super) struct Raw(Vec<Arc<Mutex<Connection>>>);

    impl Raw {
        pub(super) fn open(path: &PathBuf) -> Arc<Self> {
            let connections = (0..8)
                .map(|_| {
                    let conn = Connection::open(path).expect("opens");
                    conn.pragma_update(None, "journal_mode", "WAL")
                        .expect("wal");
                    conn.pragma_update(None, "synchronous", "FULL")
                        .expect("full");
                    conn.busy_timeout(Duration::from_secs(30))
                        .expect("busy timeout");
                    Arc::new(Mutex::new(conn))
                })
                .collect();
            Arc::new(Self(connections))
        }

        fn on<T: Send + 'static>(
            &self,
            account: u64,
            work: impl FnOnce(&Connection) -> T + Send + 'static,
        ) -> impl Future<Output = T> + Send + 'static {
            let conn = Arc::clone(&self.0[(account % 8) as usize]);
            async move {
                tokio::task::spawn_blocking(move || work(&conn.lock().expect("a connection")))
                    .await
                    .expect("the statement ran")
            }
        }
    }

    fn insert(conn: &Connection, account: u64, version: u64, n: u64) {
        conn.prepare_cached(INSERT)
            .expect("prepares")
            .execute(params![
                stream_name(account),
                version as i64,
                EventId::new().0.as_bytes().to_vec(),
                payload(n),
                now_micros(),
            ])
            .expect("inserts");
    }

    /// Raw INSERT at the version the client knows.
    pub(super) fn insert_side(raw: Arc<Raw>, versions: Arc<Versions>) -> Run {
        Arc::new(move |account| {
            let version = versions.next(account);
            Box::pin(raw.on(account, move |conn| insert(conn, account, version, version)))
        })
    }

    /// Raw read + insert: read the rows, decode and fold them, insert the next.
    pub(super) fn floor_side(raw: Arc<Raw>) -> Run {
        Arc::new(move |account| {
            Box::pin(raw.on(account, move |conn| {
                let mut select = conn.prepare_cached(SELECT).expect("prepares");
                let mut rows = select.query(params![stream_name(account)]).expect("reads");
                let mut state = Account::default();
                let mut version = 0;
                while let Some(row) = rows.next().expect("a row") {
                    version = row.get::<_, i64>(0).expect("a version") as u64;
                    let text: String = row.get(1).expect("a payload");
                    let event: Deposited = serde_json::from_str(&text).expect("decodes");
                    state.on_deposited(&event);
                }
                drop(rows);
                drop(select);
                insert(conn, account, version + 1, state.deposits);
            }))
        })
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as i64
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn sqlite_sides(dir: &TempDir) -> Vec<Side> {
    let (ours, raws) = (dir.0.join("eventsrc.db"), dir.0.join("raw.db"));
    let store = SqliteEventStore::open(&ours).await.expect("opens");
    let raw_store = SqliteEventStore::open(&raws).await.expect("opens");
    seed_two(&store).await;
    seed_two(&raw_store).await;
    drop(raw_store);
    let raw = sqlite_raw::Raw::open(&raws);
    let [plain, cached] = eventsrc_sides(store);
    vec![
        plain,
        cached,
        Side {
            name: "raw read + insert",
            base: 0,
            run: sqlite_raw::floor_side(Arc::clone(&raw)),
        },
        Side {
            name: "raw INSERT",
            base: ACCOUNTS,
            run: sqlite_raw::insert_side(raw, Versions::new(SEEDED)),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

mod postgres_raw {
    use super::*;
    use tokio_postgres::{Client, NoTls, Statement};

    /// One connection of [`Raw`], with its statements prepared.
    struct Connection {
        client: Client,
        insert: Statement,
        select: Statement,
        guarded: Statement,
        unchecked: Statement,
    }

    /// Eight connections; account `a` uses connection `a % 8`, so each of 8 clients has its
    /// own.
    pub(super) struct Raw(Vec<Connection>);

    impl Raw {
        pub(super) async fn connect(url: &str, schema: &str) -> Arc<Self> {
            let table = format!("\"{schema}\".events");
            let insert_sql = format!(
                "INSERT INTO {table} (tenant, stream, category, stream_version, event_id, \
                 event_type, schema_version, payload, metadata) VALUES ('default', $1, \
                 'account', $2, $3, 'Deposited', 1, $4::text::json, NULL)"
            );
            let select_sql = format!(
                "SELECT stream_version, payload::text FROM {table} \
                 WHERE tenant = 'default' AND stream = $1 ORDER BY stream_version"
            );
            // The statement eventsrc-postgres runs for a single event at an exact version (its
            // `append_exact_sql`), written out here: every column a parameter, the event
            // inserted only when the stream's newest version is the expected one, and what the
            // append reports returned. Then the same row and `RETURNING` without the check.
            let columns = "tenant, stream, category, stream_version, event_id, event_type, \
                           schema_version, payload, metadata";
            let row = "$1, $2, $3, $4::bigint + 1, $5::uuid, $6::text, $7::bigint, \
                       $8::text::json, $9::text::json";
            let returning = "RETURNING position, transaction_id, recorded_at";
            let guarded_sql = format!(
                "INSERT INTO {table} ({columns}) SELECT {row} \
                 WHERE COALESCE((SELECT stream_version FROM {table} \
                     WHERE tenant = $1 AND stream = $2 \
                     ORDER BY stream_version DESC LIMIT 1), 0) = $4::bigint \
                 {returning}"
            );
            let unchecked_sql =
                format!("INSERT INTO {table} ({columns}) VALUES ({row}) {returning}");
            let mut connections = Vec::new();
            for _ in 0..8 {
                let (client, connection) =
                    tokio_postgres::connect(url, NoTls).await.expect("connects");
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                let insert = client.prepare(&insert_sql).await.expect("prepares");
                let select = client.prepare(&select_sql).await.expect("prepares");
                let guarded = client.prepare(&guarded_sql).await.expect("prepares");
                let unchecked = client.prepare(&unchecked_sql).await.expect("prepares");
                connections.push(Connection {
                    client,
                    insert,
                    select,
                    guarded,
                    unchecked,
                });
            }
            Arc::new(Self(connections))
        }

        fn connection(&self, account: u64) -> &Connection {
            &self.0[(account % 8) as usize]
        }

        async fn insert(&self, account: u64, version: u64, n: u64) {
            let connection = self.connection(account);
            connection
                .client
                .execute(
                    &connection.insert,
                    &[
                        &stream_name(account),
                        &(version as i64),
                        &EventId::new().0,
                        &payload(n),
                    ],
                )
                .await
                .expect("inserts");
        }

        /// eventsrc's own statement with the row a command writes: its metadata carries the
        /// command's id as correlation and causation, as the repository stamps them. Without
        /// `checked`, the same row without the version check.
        async fn guarded(&self, account: u64, version: u64, n: u64, checked: bool) {
            let connection = self.connection(account);
            let statement = match checked {
                true => &connection.guarded,
                false => &connection.unchecked,
            };
            let command = EventId::new().0;
            let metadata =
                format!(r#"{{"correlation_id":"{command}","causation_id":"{command}"}}"#);
            let inserted = connection
                .client
                .query(
                    statement,
                    &[
                        &"default",
                        &stream_name(account),
                        &"account",
                        &(version as i64 - 1),
                        &EventId::new().0,
                        &"Deposited",
                        &1i64,
                        &payload(n),
                        &metadata,
                    ],
                )
                .await
                .expect("inserts");
            assert_eq!(inserted.len(), 1, "the event was appended");
        }
    }

    pub(super) fn insert_side(raw: Arc<Raw>, versions: Arc<Versions>) -> Run {
        Arc::new(move |account| {
            let (raw, version) = (Arc::clone(&raw), versions.next(account));
            Box::pin(async move { raw.insert(account, version, version).await })
        })
    }

    pub(super) fn guarded_side(raw: Arc<Raw>, versions: Arc<Versions>, checked: bool) -> Run {
        Arc::new(move |account| {
            let (raw, version) = (Arc::clone(&raw), versions.next(account));
            Box::pin(async move { raw.guarded(account, version, version, checked).await })
        })
    }

    pub(super) fn floor_side(raw: Arc<Raw>) -> Run {
        Arc::new(move |account| {
            let raw = Arc::clone(&raw);
            Box::pin(async move {
                let connection = raw.connection(account);
                let rows = connection
                    .client
                    .query(&connection.select, &[&stream_name(account)])
                    .await
                    .expect("reads");
                let mut state = Account::default();
                let mut version = 0;
                for row in rows {
                    version = row.get::<_, i64>(0) as u64;
                    let event: Deposited =
                        serde_json::from_str(row.get::<_, &str>(1)).expect("decodes");
                    state.on_deposited(&event);
                }
                raw.insert(account, version + 1, state.deposits).await;
            })
        })
    }
}

async fn postgres_sides(url: &str, schemas: &[String; 3]) -> Vec<Side> {
    let open = |schema: &str| {
        PgEventStore::connect_with(
            url,
            PgOptions::default()
                .schema(schema)
                .application_name("eventsrc-bench-commands"),
        )
    };
    let store = open(&schemas[0]).await.expect("connects");
    let raw_store = open(&schemas[1]).await.expect("connects");
    // The same store without LISTEN/NOTIFY: what the notification costs a command.
    let quiet = PgEventStore::connect_with(
        url,
        PgOptions::default()
            .schema(&schemas[2])
            .notify(false)
            .application_name("eventsrc-bench-commands"),
    )
    .await
    .expect("connects");
    seed_two(&store).await;
    seed(&quiet, 2 * ACCOUNTS).await;
    seed_two(&raw_store).await;
    seed(&raw_store, 2 * ACCOUNTS).await;
    seed(&raw_store, 3 * ACCOUNTS).await;
    let raw = postgres_raw::Raw::connect(url, &schemas[1]).await;
    let [plain, cached] = eventsrc_sides(store);
    vec![
        plain,
        cached,
        Side {
            name: "eventsrc + cache, no NOTIFY",
            base: 2 * ACCOUNTS,
            run: repository_side(Repository::new(quiet).with_cache(AggregateCache::new(10_000))),
        },
        Side {
            name: "raw read + insert",
            base: 0,
            run: postgres_raw::floor_side(Arc::clone(&raw)),
        },
        Side {
            name: "raw INSERT, eventsrc's statement and row",
            base: 2 * ACCOUNTS,
            run: postgres_raw::guarded_side(Arc::clone(&raw), Versions::new(SEEDED), true),
        },
        Side {
            name: "raw INSERT, eventsrc's row, no version check",
            base: 3 * ACCOUNTS,
            run: postgres_raw::guarded_side(Arc::clone(&raw), Versions::new(SEEDED), false),
        },
        Side {
            name: "raw INSERT",
            base: ACCOUNTS,
            run: postgres_raw::insert_side(raw, Versions::new(SEEDED)),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Where the time goes: CPU per command

/// CPU time read from `/proc` (Linux), in nanoseconds: this process's (the clients and the
/// store's own code), and every local `postgres` process's (the server, when it runs on this
/// machine, as in this project's runs). With 8 clients on 2 cores both share the cores, so
/// commands/s follows the CPU a command takes on both sides; this says which side takes it.
mod cpu {
    use std::collections::HashMap;
    use std::path::Path;

    /// CPU nanoseconds per thread of this process and per local `postgres` process, each
    /// keyed by its id, so that a thread or backend that ends between two readings is left
    /// out rather than taken away.
    pub(super) struct Reading {
        client: HashMap<String, u64>,
        server: HashMap<String, u64>,
    }

    /// Nanoseconds on a CPU of the task whose `schedstat` file is `path`.
    fn nanos(path: &Path) -> Option<u64> {
        std::fs::read_to_string(path)
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The tasks under `dir` (by their directory's name) that `keep` accepts, with their CPU.
    fn tasks(dir: &str, keep: impl Fn(&Path) -> bool) -> Option<HashMap<String, u64>> {
        let mut found = HashMap::new();
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if keep(&path)
                && let Some(nanos) = nanos(&path.join("schedstat"))
            {
                found.insert(entry.file_name().to_string_lossy().into_owned(), nanos);
            }
        }
        Some(found)
    }

    /// This process's threads and the local `postgres` processes, or `None` without `/proc`.
    pub(super) fn now() -> Option<Reading> {
        Some(Reading {
            client: tasks("/proc/self/task", |_| true)?,
            server: tasks("/proc", |path| {
                std::fs::read_to_string(path.join("comm"))
                    .is_ok_and(|comm| comm.trim_end() == "postgres")
            })?,
        })
    }

    /// CPU nanoseconds from `before` to `after`, client and server: what each task alive at
    /// `after` ran since `before` (all of it, for one started since).
    pub(super) fn between(before: &Reading, after: &Reading) -> (u64, u64) {
        let spent = |was: &HashMap<String, u64>, is: &HashMap<String, u64>| -> u64 {
            is.iter()
                .map(|(id, now)| now.saturating_sub(was.get(id).copied().unwrap_or(0)))
                .sum()
        };
        (
            spent(&before.client, &after.client),
            spent(&before.server, &after.server),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring and printing

/// Every side's figure per round.
#[derive(Default)]
struct Figures {
    one: Vec<Vec<f64>>,
    eight: Vec<Vec<f64>>,
    /// Client and server CPU nanoseconds over every round, at 1 and at 8 clients, per side.
    cpu_one: Vec<Option<(u64, u64)>>,
    cpu_eight: Vec<Option<(u64, u64)>>,
    big: Vec<Vec<Duration>>,
    small: Vec<Vec<Duration>>,
}

async fn measure(sides: &[Side], rounds: usize) -> Figures {
    let mut figures = Figures {
        one: vec![Vec::new(); sides.len()],
        eight: vec![Vec::new(); sides.len()],
        cpu_one: vec![Some((0, 0)); sides.len()],
        cpu_eight: vec![Some((0, 0)); sides.len()],
        big: vec![Vec::new(); sides.len()],
        small: vec![Vec::new(); sides.len()],
    };
    // The caches are warm before the first round: every account has had a command.
    for side in sides {
        throughput(side, 8, ACCOUNTS).await;
        if !side.is_eventsrc() {
            continue;
        }
        for i in 0..BIG {
            (side.run)(side.base + 500_000 + i).await;
        }
    }
    for round in 0..rounds {
        // Each round starts with another side, so no side always runs on a rested machine.
        let order: Vec<usize> = (0..sides.len())
            .map(|i| (i + round) % sides.len())
            .collect();
        for &i in &order {
            let (rate, cpu) = throughput_and_cpu(&sides[i], 1, COMMANDS_1).await;
            figures.one[i].push(rate);
            figures.cpu_one[i] = add_cpu(figures.cpu_one[i], cpu);
        }
        for &i in &order {
            let (rate, cpu) = throughput_and_cpu(&sides[i], 8, COMMANDS_8).await;
            figures.eight[i].push(rate);
            figures.cpu_eight[i] = add_cpu(figures.cpu_eight[i], cpu);
        }
        for &i in &order {
            if sides[i].is_eventsrc() {
                let (big, small) = latency(&sides[i]).await;
                figures.big[i].push(big);
                figures.small[i].push(small);
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    figures
}

fn add_cpu(sum: Option<(u64, u64)>, run: Option<(u64, u64)>) -> Option<(u64, u64)> {
    sum.zip(run).map(|((c, s), (rc, rs))| (c + rc, s + rs))
}

/// CPU per command in µs from nanoseconds summed over `rounds` runs of `commands`: the
/// client's, and the server's after it when `server` (an embedded store has none).
fn cpu_per_command(cpu: Option<(u64, u64)>, rounds: usize, commands: u64, server: bool) -> String {
    let Some((client, server_nanos)) = cpu else {
        return "—".into();
    };
    let per = |nanos: u64| nanos as f64 / 1e3 / (rounds as u64 * commands) as f64;
    match server {
        true => format!("{:.0} + {:.0}", per(client), per(server_nanos)),
        false => format!("{:.0}", per(client)),
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// `of[i] / of[j]` over rounds, each round's ratio from that round's figures: the median, and
/// the range in brackets.
fn ratio_range(of: &[Vec<f64>], i: usize, j: usize) -> String {
    let ratios: Vec<f64> = of[i].iter().zip(&of[j]).map(|(a, b)| a / b).collect();
    let (low, high) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
    format!("{:.2} ({low:.2}–{high:.2})", median(&ratios))
}

/// Prints the tables; `server`: the store is a local server whose CPU is counted apart.
fn print(backend: &str, sides: &[Side], figures: &Figures, server: bool) {
    let find = |name: &str| sides.iter().position(|s| s.name == name).expect("a side");
    let (insert, floor) = (find("raw INSERT"), find("raw read + insert"));
    println!(
        "\n{backend}: commands/s, median of rounds (ratios: median of the rounds' ratios, and their range)\n"
    );
    println!(
        "| side | 1 client | 8 clients | / raw INSERT (1 / 8) | / raw read + insert (1 / 8) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (i, side) in sides.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.0} | {} / {} | {} / {} |",
            side.name,
            median(&figures.one[i]),
            median(&figures.eight[i]),
            ratio_range(&figures.one, i, insert),
            ratio_range(&figures.eight, i, insert),
            ratio_range(&figures.one, i, floor),
            ratio_range(&figures.eight, i, floor),
        );
    }
    let rounds = figures.one.first().map_or(0, Vec::len);
    let whose = match server {
        true => "client + local server",
        false => "the process, store included",
    };
    println!("\n| {backend}: CPU per command, µs, {whose} | 1 client | 8 clients |");
    println!("|---|---:|---:|");
    for (i, side) in sides.iter().enumerate() {
        println!(
            "| {} | {} | {} |",
            side.name,
            cpu_per_command(figures.cpu_one[i], rounds, COMMANDS_1, server),
            cpu_per_command(figures.cpu_eight[i], rounds, COMMANDS_8, server),
        );
    }
    println!(
        "\n| {backend}, 1 client | command on a 1,000-event aggregate | on a 10-event aggregate | ratio |"
    );
    println!("|---|---:|---:|---:|");
    for (i, side) in sides.iter().enumerate() {
        if figures.big[i].is_empty() {
            continue;
        }
        let ms = |d: &[Duration]| d.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>();
        let (big, small) = (ms(&figures.big[i]), ms(&figures.small[i]));
        println!(
            "| {} | {:.3} ms | {:.3} ms | {} |",
            side.name,
            median(&big),
            median(&small),
            ratio_range(&[big.clone(), small.clone()], 0, 1),
        );
    }
}

/// The number in environment variable `name`, or `default` when it is unset or not a number.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Runs the side named `name` alone, for a profiler: warms its accounts, then (with
/// `EVENTSRC_BENCH_WAIT=1`) waits for a line on stdin, so that a profiler can be switched on
/// (`callgrind_control -i on` under `valgrind --tool=callgrind --instr-atstart=no`), then runs
/// `EVENTSRC_BENCH_COMMANDS` commands (default 4,000) with 8 clients.
async fn profile_one(sides: &[Side], name: &str) {
    let Some(side) = sides.iter().find(|side| side.name == name) else {
        let names: Vec<_> = sides.iter().map(|side| side.name).collect();
        eprintln!("no side is named {name:?}; the sides are {names:?}");
        return;
    };
    let commands = env_number("EVENTSRC_BENCH_COMMANDS", 4_000);
    throughput(side, 8, ACCOUNTS).await;
    if std::env::var("EVENTSRC_BENCH_WAIT").is_ok_and(|wait| wait == "1") {
        eprintln!("warm: press enter to run {commands} commands of {name:?}");
        tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()))
            .await
            .expect("reads stdin")
            .expect("reads stdin");
    }
    let rate = throughput(side, 8, commands).await;
    println!("{name}: {commands} commands with 8 clients, {rate:.0}/s");
}

fn main() {
    let only = std::env::var("EVENTSRC_BENCH_ONLY").unwrap_or_default();
    let rounds = env_number("EVENTSRC_BENCH_ROUNDS", 5).max(1) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        if only.is_empty() || only == "sqlite" {
            let dir =
                TempDir(std::env::temp_dir().join(format!("eventsrc-commands-{}", EventId::new())));
            std::fs::create_dir_all(&dir.0).expect("a temp dir");
            let sides = sqlite_sides(&dir).await;
            let figures = measure(&sides, rounds).await;
            print("SQLite (WAL, synchronous=FULL)", &sides, &figures, false);
        }
        if only.is_empty() || only == "postgres" {
            let Some(url) = std::env::var("EVENTSRC_POSTGRES_URL")
                .ok()
                .filter(|url| !url.is_empty())
            else {
                println!("\nPostgreSQL: set EVENTSRC_POSTGRES_URL to measure it.");
                return;
            };
            let stamp = EventId::new().0.simple().to_string();
            let schemas = ["ours", "raw", "quiet"]
                .map(|side| format!("eventsrc_commands_{side}_{}", &stamp[stamp.len() - 12..]));
            let sides = postgres_sides(&url, &schemas).await;
            if let Ok(name) = std::env::var("EVENTSRC_BENCH_SIDE") {
                profile_one(&sides, &name).await;
            } else {
                let figures = measure(&sides, rounds).await;
                print("PostgreSQL (synchronous_commit=on)", &sides, &figures, true);
            }
            drop(sides);
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connects");
            tokio::spawn(connection);
            for schema in &schemas {
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .await;
            }
        }
    });
}
