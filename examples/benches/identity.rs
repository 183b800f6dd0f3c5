//! The identity service under load: the HTTP service (`eventsrc_examples::identity`) served in
//! this process on a free port of 127.0.0.1, driven by a small client (reqwest, one keep-alive
//! connection per client), beside the bare store's rate for the same command through
//! `Repository` with no HTTP, on the same store in the same run. Prints one table per backend.
//!
//! Run with: `cargo bench -p eventsrc-examples --bench identity`, with
//! `EVENTSRC_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test` set for the PostgreSQL table
//! (without it, the PostgreSQL part says so and is skipped). The SQLite store is a temporary
//! file with the default, durable options (`synchronous=FULL`); the PostgreSQL store a fresh
//! schema, dropped at the end.
//!
//! The workloads, each at 1 and 8 concurrent clients:
//! - **bare store**: `Repository::send(SetName)` expecting the version the task last got, the
//!   command the service runs for the `PUT` below;
//! - **conditional write**: `PUT /users/{id}/name` with `If-Match` of the version the client
//!   last got (each client writes its own users, so a `412` means something is wrong; they
//!   are counted);
//! - **read-your-writes**: the same `PUT`, then `GET /users/{id}` sending the write's
//!   `Consistency-Token` back, which waits until the users view has the write. The pair and
//!   the `GET` alone are measured.
//!
//! Each client cycles over 1,024 users of its own, signed up beforehand, so that streams stay
//! short (tens of events) and loads cost about the same at the end of a run as at its start.
//! The three workloads run in alternating rounds, so that a drift of the machine (fsync
//! latency wanders on a virtual machine) falls on all of them alike.
//!
//! - `EVENTSRC_BENCH_SECONDS=10`: how long each figure is measured, split over the rounds.
//! - `EVENTSRC_BENCH_CLIENTS=1,8`: the numbers of concurrent clients.
//! - `EVENTSRC_BENCH_ONLY=sqlite` (or `postgres`): one backend.
//!
//! The service runs on a Tokio runtime of 2 worker threads, as a server would on this
//! project's 2-core machine; the load client runs on a runtime of its own (2 threads too), in
//! the same process, and competes with the server for the same cores. The bare store's tasks
//! run on the server's runtime. The service's views follow the log throughout, during the
//! bare store's rounds too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventsrc::{
    CommandOptions, EventId, EventStore, ExecuteError, GlobalPosition, Metadata, Repository, Store,
    StreamVersion,
};
use eventsrc_examples::identity::domain::{SetName, SignUp};
use eventsrc_examples::identity::http::router;
use eventsrc_examples::identity::service::{Config, ReadError, Service};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::oneshot;

const URL_VAR: &str = "EVENTSRC_POSTGRES_URL";

/// The users each client cycles over.
const POOL: usize = 1_024;

/// The alternating rounds each figure is measured in.
const ROUNDS: u32 = 2;

/// How long each workload runs, untimed, before the rounds of a number of clients.
const WARM_UP: Duration = Duration::from_millis(500);

/// How long the views may take to catch up with the sign-ups before the rounds.
const CATCH_UP: Duration = Duration::from_secs(120);

// --- the stores and the server ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// What a run leaves behind on its store.
enum Leftover {
    File(PathBuf),
    Schema(String),
}

/// The service served on a port of 127.0.0.1, on one store.
struct Site {
    store: Store,
    leftover: Leftover,
    service: Arc<Service>,
    base: String,
    stop: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<()>,
    /// The store in words, for the table's heading.
    title: String,
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Opens the store of `backend` and serves the service on it; `None`, after saying why, when
/// PostgreSQL is not configured or does not answer.
async fn open(backend: Backend) -> Option<Site> {
    let (store, leftover) = match backend {
        Backend::Sqlite => {
            let file =
                std::env::temp_dir().join(format!("eventsrc-identity-bench-{}.db", EventId::new()));
            let store = Store::open(&format!("sqlite://{}", file.display()))
                .await
                .expect("opens a SQLite file");
            (store, Leftover::File(file))
        }
        Backend::Postgres => {
            let server = match std::env::var(URL_VAR) {
                Ok(url) if !url.is_empty() => url,
                _ => {
                    println!(
                        "\nPostgreSQL: skipped, {URL_VAR} is not set (e.g. \
                         postgres://postgres@127.0.0.1:5432/test); nothing was measured on it."
                    );
                    return None;
                }
            };
            let now = unix_seconds();
            let random = EventId::new().0.simple().to_string();
            let schema = format!("eventsrc_bench_{now}_{}", &random[random.len() - 12..]);
            let separator = if server.contains('?') { '&' } else { '?' };
            match Store::open(&format!("{server}{separator}schema={schema}")).await {
                Ok(store) => {
                    sweep_stale(&store, now).await;
                    (store, Leftover::Schema(schema))
                }
                Err(error) => {
                    println!("\nPostgreSQL: skipped, the server did not answer ({error}).");
                    return None;
                }
            }
        }
    };
    let title = match (&store, backend) {
        (Store::Postgres(pg), _) => {
            let client = pg.pool().get().await.expect("a connection");
            let row = client
                .query_one(
                    "SELECT current_setting('server_version') || ', synchronous_commit=' || \
                     current_setting('synchronous_commit')",
                    &[],
                )
                .await
                .expect("asks the version");
            format!("PostgreSQL {}", row.get::<_, String>(0))
        }
        _ => "SQLite file (WAL, synchronous=FULL)".to_owned(),
    };
    let service = Arc::new(
        Service::start(store.clone(), Config::default())
            .await
            .expect("the service starts"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(Arc::clone(&service));
    let serving = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .expect("serves");
    });
    Some(Site {
        store,
        leftover,
        service,
        base,
        stop,
        serving,
        title,
    })
}

/// Drops bench schemas left behind by runs that panicked more than an hour ago (named as the
/// eventsrc-postgres bench names its own, which sweeps them too).
async fn sweep_stale(store: &Store, now: u64) {
    let Store::Postgres(pg) = store else { return };
    let client = pg.pool().get().await.expect("a connection");
    let found = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'eventsrc\\_bench\\_%'",
            &[],
        )
        .await
        .expect("lists schemas");
    for row in found {
        let name: String = row.get(0);
        let created = name.split('_').nth(2).and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|created| now.saturating_sub(created) > 3_600) {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await;
        }
    }
}

impl Site {
    /// Stops the server and the views, and removes the store's file or schema.
    async fn close(self) {
        let Self {
            store,
            leftover,
            service,
            stop,
            serving,
            ..
        } = self;
        let _ = stop.send(());
        serving.await.expect("the server stopped");
        drop(service);
        match leftover {
            Leftover::File(file) => {
                drop(store);
                let _ = eventsrc_sqlite::remove_database(&file);
            }
            Leftover::Schema(schema) => {
                let Store::Postgres(pg) = &store else { return };
                let client = pg.pool().get().await.expect("a connection");
                client
                    .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .await
                    .expect("drops the bench schema");
            }
        }
    }
}

// --- the users each client writes --------------------------------------------------------------

/// One client's users and the version it last got of each.
struct Slot {
    users: Vec<String>,
    versions: Vec<u64>,
    /// The user the next request is for.
    next: usize,
    /// Counts the names written, so that each write sets a new one (setting the name a user
    /// has is a no-op, which appends nothing).
    written: u64,
}

impl Slot {
    /// The user of the next request, its version, and a name it does not have.
    fn next(&mut self) -> (usize, String) {
        let at = self.next;
        self.next = (self.next + 1) % self.users.len();
        self.written += 1;
        (at, format!("Ada {}", self.written))
    }
}

/// Signs up `POOL` users for each of `clients` clients (ids `c<clients>-<client>-<n>`), 8 at a
/// time through the service (no HTTP), and waits until the users view has them all.
async fn sign_up(
    service: &Arc<Service>,
    store: &Store,
    server: &Handle,
    clients: usize,
) -> Vec<Slot> {
    const SIGNERS: usize = 8;
    let started = Instant::now();
    let ids: Vec<Vec<String>> = (0..clients)
        .map(|c| (0..POOL).map(|n| format!("c{clients}-{c}-{n}")).collect())
        .collect();
    let all: Vec<String> = ids.iter().flatten().cloned().collect();
    let tasks: Vec<_> = (0..SIGNERS)
        .map(|signer| {
            let service = Arc::clone(service);
            let mine: Vec<String> = all.iter().skip(signer).step_by(SIGNERS).cloned().collect();
            server.spawn(async move {
                let mut last = GlobalPosition::START;
                for user in mine {
                    let command = SignUp {
                        email: format!("{user}@example.com"),
                        user,
                        given_name: "Ada".into(),
                        family_name: "Lovelace".into(),
                    };
                    let written = service
                        .sign_up(command, Metadata::new().into())
                        .await
                        .expect("signs up");
                    assert_eq!(written.version, StreamVersion(3), "a sign-up's version");
                    last = last.max(written.token.expect("a sign-up has a position"));
                }
                last
            })
        })
        .collect();
    let mut last = GlobalPosition::START;
    for task in tasks {
        last = last.max(task.await.expect("a signer finished"));
    }
    // Before measuring, the users view catches up with the sign-ups, so that it does not work
    // through them during the first round.
    let caught_up = settle(service, store, server).await;
    assert!(last <= caught_up.1, "the head is past every sign-up");
    eprintln!(
        "signed up {} users ({clients} x {POOL}) in {:.1} s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    ids.into_iter()
        .map(|users| Slot {
            versions: vec![3; users.len()],
            users,
            next: 0,
            written: 0,
        })
        .collect()
}

/// Waits until the users view has every event of the log; how long that took, and the head it
/// waited for.
async fn settle(
    service: &Arc<Service>,
    store: &Store,
    server: &Handle,
) -> (Duration, GlobalPosition) {
    let service = Arc::clone(service);
    let store = store.clone();
    let waiting = server.spawn(async move {
        let started = Instant::now();
        let head = store.head_position().await.expect("the head of the log");
        let deadline = started + CATCH_UP;
        loop {
            match service.user("nobody", Some(head)).await {
                Ok(_) => return (started.elapsed(), head),
                Err(ReadError::NotYet { .. }) if Instant::now() < deadline => {}
                Err(error) => panic!("the users view did not catch up: {error}"),
            }
        }
    });
    waiting.await.expect("the view caught up")
}

// --- the workloads -----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// `Repository::send(SetName)` expecting the version, no HTTP.
    Bare,
    /// `PUT /users/{id}/name` with `If-Match`.
    Write,
    /// The `PUT`, then `GET /users/{id}` with its `Consistency-Token`.
    Pair,
}

/// What the clients of one workload measured.
#[derive(Default)]
struct Tally {
    /// Requests (commands, or pairs) answered, 412s included.
    done: u64,
    /// The latency of each: a command, a `PUT`, or a pair.
    samples: Vec<Duration>,
    /// The pairs' `GET`s alone.
    reads: Vec<Duration>,
    /// Writes refused for a stale version (412, or `ExecuteError::Stale`).
    stale: u64,
    /// Anything else that went wrong, and the first of it.
    errors: u64,
    first_error: Option<String>,
    /// Wall time, summed over the rounds.
    elapsed: Duration,
    /// The longest the users view took, after a round, to catch up with the log.
    behind: Duration,
}

impl Tally {
    fn error(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }

    fn absorb(&mut self, other: Tally) {
        self.done += other.done;
        self.samples.extend(other.samples);
        self.reads.extend(other.reads);
        self.stale += other.stale;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.elapsed += other.elapsed;
        self.behind = self.behind.max(other.behind);
    }

    fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }
}

/// The bare store: the command the service runs for the `PUT`, straight through a repository.
async fn bare(repository: Repository<Store>, mut slot: Slot, until: Instant) -> (Slot, Tally) {
    let mut tally = Tally::default();
    while Instant::now() < until {
        let (at, given_name) = slot.next();
        let command = SetName {
            user: slot.users[at].clone(),
            given_name,
            family_name: "Lovelace".into(),
        };
        let options =
            CommandOptions::from(Metadata::new()).expect_version(StreamVersion(slot.versions[at]));
        let started = Instant::now();
        let result = repository.send(command, options).await;
        let took = started.elapsed();
        match result {
            Ok(committed) => slot.versions[at] = committed.stream_version.get(),
            Err(ExecuteError::Stale { actual, .. }) => {
                slot.versions[at] = actual.get();
                tally.stale += 1;
            }
            Err(error) => {
                tally.error(error.to_string());
                continue;
            }
        }
        tally.done += 1;
        tally.samples.push(took);
    }
    (slot, tally)
}

/// What a `PUT` of a name answered.
enum Put {
    /// 200: the new version, and the consistency token.
    Written(u64, String),
    /// 412 (the slot has the current version now).
    Stale,
}

fn etag_version(response: &reqwest::Response) -> Option<u64> {
    let text = response.headers().get(ETAG)?.to_str().ok()?;
    text.trim_matches('"').parse().ok()
}

async fn put_name(
    client: &reqwest::Client,
    base: &str,
    slot: &mut Slot,
    at: usize,
    given_name: String,
) -> Result<Put, String> {
    let url = format!("{base}/users/{}/name", slot.users[at]);
    let body = serde_json::json!({ "given_name": given_name, "family_name": "Lovelace" });
    let response = client
        .put(url)
        .header(CONTENT_TYPE, "application/json")
        .header(IF_MATCH, format!("\"{}\"", slot.versions[at]))
        .body(body.to_string())
        .send()
        .await
        .map_err(|error| format!("PUT: {error}"))?;
    let status = response.status();
    let version = etag_version(&response);
    let token = response
        .headers()
        .get("consistency-token")
        .and_then(|token| token.to_str().ok())
        .map(str::to_owned);
    // Read to the end, so that the connection goes back to the pool.
    let body = response
        .bytes()
        .await
        .map_err(|error| format!("PUT body: {error}"))?;
    match (status, version, token) {
        (StatusCode::OK, Some(version), Some(token)) => {
            slot.versions[at] = version;
            Ok(Put::Written(version, token))
        }
        (StatusCode::PRECONDITION_FAILED, Some(version), _) => {
            slot.versions[at] = version;
            Ok(Put::Stale)
        }
        (status, _, _) => Err(format!(
            "PUT answered {status}: {}",
            String::from_utf8_lossy(&body)
        )),
    }
}

/// `GET /users/{id}` with `token`: the version the view answers.
async fn get_user(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    token: &str,
) -> Result<u64, String> {
    let response = client
        .get(format!("{base}/users/{user}"))
        .header("consistency-token", token)
        .send()
        .await
        .map_err(|error| format!("GET: {error}"))?;
    let status = response.status();
    let version = etag_version(&response);
    let body = response
        .bytes()
        .await
        .map_err(|error| format!("GET body: {error}"))?;
    match (status, version) {
        (StatusCode::OK, Some(version)) => Ok(version),
        (status, _) => Err(format!(
            "GET answered {status}: {}",
            String::from_utf8_lossy(&body)
        )),
    }
}

/// One HTTP client: conditional writes, or writes each followed by a read of them.
async fn http(
    client: reqwest::Client,
    base: Arc<str>,
    workload: Workload,
    mut slot: Slot,
    until: Instant,
) -> (Slot, Tally) {
    let mut tally = Tally::default();
    while Instant::now() < until {
        let (at, given_name) = slot.next();
        let started = Instant::now();
        let put = match put_name(&client, &base, &mut slot, at, given_name).await {
            Ok(put) => put,
            Err(error) => {
                tally.error(error);
                continue;
            }
        };
        let (version, token) = match put {
            Put::Stale => {
                tally.stale += 1;
                tally.done += 1;
                tally.samples.push(started.elapsed());
                continue;
            }
            Put::Written(version, token) => (version, token),
        };
        if workload == Workload::Pair {
            let read = Instant::now();
            match get_user(&client, &base, &slot.users[at], &token).await {
                Ok(seen) if seen >= version => tally.reads.push(read.elapsed()),
                Ok(seen) => {
                    let user = &slot.users[at];
                    tally.error(format!(
                        "GET of {user} with the token of version {version} saw version {seen}"
                    ));
                    continue;
                }
                Err(error) => {
                    tally.error(error);
                    continue;
                }
            }
        }
        tally.done += 1;
        tally.samples.push(started.elapsed());
    }
    (slot, tally)
}

/// Runs `workload` on every slot until `duration` has passed; hands the slots back.
async fn drive(
    site: &Site,
    server: &Handle,
    clients: &[reqwest::Client],
    workload: Workload,
    slots: Vec<Slot>,
    duration: Duration,
) -> (Vec<Slot>, Tally) {
    let base: Arc<str> = site.base.as_str().into();
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = slots
        .into_iter()
        .zip(clients)
        .map(|(slot, client)| match workload {
            Workload::Bare => {
                let repository = Repository::new(site.store.clone());
                server.spawn(bare(repository, slot, until))
            }
            Workload::Write | Workload::Pair => tokio::spawn(http(
                client.clone(),
                Arc::clone(&base),
                workload,
                slot,
                until,
            )),
        })
        .collect();
    let mut slots = Vec::new();
    let mut tally = Tally::default();
    for task in tasks {
        let (slot, mine) = task.await.expect("a client finished");
        slots.push(slot);
        tally.absorb(mine);
    }
    tally.elapsed = started.elapsed();
    // Each round starts with the view caught up: a backlog left by the writes of one round
    // would otherwise fall on the reads of the next.
    tally.behind = settle(&site.service, &site.store, server).await.0;
    (slots, tally)
}

const WORKLOADS: [Workload; 3] = [Workload::Bare, Workload::Write, Workload::Pair];

/// The three workloads at `clients` concurrent clients, in alternating rounds.
async fn measure(site: &Site, server: &Handle, clients: usize, seconds: f64) -> [Tally; 3] {
    let mut slots = sign_up(&site.service, &site.store, server, clients).await;
    // One client, one connection: a client of its own per slot, kept alive throughout.
    let http_clients: Vec<reqwest::Client> = (0..clients)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("an HTTP client")
        })
        .collect();
    for workload in WORKLOADS {
        let warm = drive(site, server, &http_clients, workload, slots, WARM_UP).await;
        slots = warm.0;
    }
    let mut tallies: [Tally; 3] = Default::default();
    let round = Duration::from_secs_f64(seconds / f64::from(ROUNDS));
    for _ in 0..ROUNDS {
        for (w, workload) in WORKLOADS.into_iter().enumerate() {
            let (back, tally) = drive(site, server, &http_clients, workload, slots, round).await;
            slots = back;
            tallies[w].absorb(tally);
        }
    }
    tallies
}

// --- the table ---------------------------------------------------------------------------------

/// p50 and p99 of `samples`.
fn percentiles(mut samples: Vec<Duration>) -> Option<(Duration, Duration)> {
    if samples.is_empty() {
        return None;
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Some((at(0.50), at(0.99)))
}

fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// `12345.6` as `12,346`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

struct Line {
    workload: &'static str,
    clients: usize,
    rate: Option<String>,
    latency: Option<(Duration, Duration)>,
    ratio: Option<f64>,
}

fn print_table(title: &str, seconds: f64, lines: Vec<Line>, notes: &[String]) {
    println!(
        "\n| {title}, {seconds} s per figure | clients | requests/s | p50 | p99 | / bare store |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for line in lines {
        let (p50, p99) = line
            .latency
            .map_or(("—".to_owned(), "—".to_owned()), |(p50, p99)| {
                (millis(p50), millis(p99))
            });
        println!(
            "| {} | {} | {} | {p50} | {p99} | {} |",
            line.workload,
            line.clients,
            line.rate.unwrap_or_else(|| "—".into()),
            line.ratio.map_or_else(|| "—".into(), |r| format!("{r:.2}")),
        );
    }
    for note in notes {
        println!("\n{note}");
    }
}

/// Measures every number of clients on `backend`; prints its table.
fn bench(backend: Backend, server: &Runtime, client: &Runtime, clients: &[usize], seconds: f64) {
    let Some(site) = server.block_on(open(backend)) else {
        return;
    };
    eprintln!("{}: serving on {}", site.title, site.base);
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    let mut behind = Vec::new();
    for &count in clients {
        let [bare, write, pair] = client.block_on(measure(&site, server.handle(), count, seconds));
        let base_rate = bare.rate();
        for (workload, unit, tally) in [
            (
                "`Repository::send(SetName)` expecting the version (no HTTP)",
                "commands/s",
                &bare,
            ),
            ("`PUT /users/{id}/name` with `If-Match`", "writes/s", &write),
            (
                "`PUT`, then `GET /users/{id}` with its `Consistency-Token` (the pair)",
                "pairs/s",
                &pair,
            ),
        ] {
            lines.push(Line {
                workload,
                clients: count,
                rate: Some(format!("{} {unit}", thousands(tally.rate()))),
                latency: percentiles(tally.samples.clone()),
                ratio: Some(tally.rate() / base_rate),
            });
        }
        lines.push(Line {
            workload: "… of which the `GET`",
            clients: count,
            rate: None,
            latency: percentiles(pair.reads.clone()),
            ratio: None,
        });
        behind.push(format!(
            "{count} client(s): {} after the bare store's, {} after the writes', {} after the pairs'",
            millis(bare.behind),
            millis(write.behind),
            millis(pair.behind)
        ));
        for (name, tally) in [("bare", &bare), ("write", &write), ("pair", &pair)] {
            if tally.stale > 0 || tally.errors > 0 {
                notes.push(format!(
                    "{count} client(s), {name}: {} of {} writes stale (412), {} errors{}",
                    tally.stale,
                    tally.done,
                    tally.errors,
                    tally
                        .first_error
                        .as_ref()
                        .map(|e| format!(", the first: {e}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    if notes.is_empty() {
        notes.push("No 412s and no errors.".into());
    }
    notes.push(format!(
        "The users view caught up with the log, at most, within (the rounds wait for it, untimed): {}.",
        behind.join("; ")
    ));
    let title = site.title.clone();
    server.block_on(site.close());
    print_table(&title, seconds, lines, &notes);
}

fn main() {
    let seconds: f64 = std::env::var("EVENTSRC_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(10.0);
    let clients: Vec<usize> = std::env::var("EVENTSRC_BENCH_CLIENTS")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .filter(|n| *n > 0)
                .collect()
        })
        .filter(|list: &Vec<usize>| !list.is_empty())
        .unwrap_or_else(|| vec![1, 8]);
    let only = std::env::var("EVENTSRC_BENCH_ONLY").unwrap_or_default();
    let runs = |part: &str| only.is_empty() || only == part;
    let runtime = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a runtime")
    };
    let server = runtime("server");
    let client = runtime("client");
    if runs("sqlite") {
        bench(Backend::Sqlite, &server, &client, &clients, seconds);
    }
    if runs("postgres") {
        bench(Backend::Postgres, &server, &client, &clients, seconds);
    }
}
