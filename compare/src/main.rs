//! eventsrc beside cqrs-es (with postgres-es) on one PostgreSQL server: the same bank-account
//! workload, each library in a fresh schema of its own, in alternating rounds, with a raw
//! `INSERT` floor measured in the same rounds. Prints one table of figures and ratios.
//!
//! Run with `EVENTSRC_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release
//! --manifest-path compare/Cargo.toml` (without the variable it says so and stops). Sizes:
//! `EVENTSRC_COMPARE_ROUNDS` (default 6), `EVENTSRC_COMPARE_COMMANDS` (commands per round with 1
//! client, default 1,000), `EVENTSRC_COMPARE_CLIENTS` (default 8),
//! `EVENTSRC_COMPARE_CONCURRENT_COMMANDS` (per round with those clients, default 3,200),
//! `EVENTSRC_COMPARE_BIG_EVENTS` (default 1,000) and `EVENTSRC_COMPARE_BIG_OPS` (commands on,
//! and loads of, a large aggregate per round, default 50). Each part of a round is cut into
//! `EVENTSRC_COMPARE_SLICES` slices (default 5) that every column runs in turn.
//!
//! A column is one line in `main`: anything that implements `Contender`.

mod bank;
mod contender;
mod cqrs_side;
mod eventsrc_side;
mod floor;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventsrc::postgres::tokio_postgres::Client;
use eventsrc::{AggregateCache, Repository, Store};

use contender::{Contender, Failure, Plan};
use cqrs_side::CqrsSide;
use eventsrc_side::EventsrcSide;
use floor::Floor;

const URL_VAR: &str = "EVENTSRC_POSTGRES_URL";

/// The column every ratio is taken against.
const PEER: &str = "cqrs-es";

/// Every schema of this program starts so; a run's schemas share one prefix.
const PREFIX: &str = "compare_";

/// The parts of a round, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Commands with 1 client.
    Commands,
    /// Commands with `Plan::clients` clients.
    Concurrent,
    /// Commands on a large aggregate, one at a time: a latency.
    CommandOnBig,
    /// Loads of a large aggregate, one at a time: a latency.
    LoadBig,
}

const PARTS: [Part; 4] = [
    Part::Commands,
    Part::Concurrent,
    Part::CommandOnBig,
    Part::LoadBig,
];

/// Operations per second of one column in one part, one entry per round.
type Rates = [Vec<f64>; 4];

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn plan() -> Plan {
    let clients = setting("EVENTSRC_COMPARE_CLIENTS", 8);
    let slices = setting("EVENTSRC_COMPARE_SLICES", 5);
    let per_account = bank::EVENTS_PER_ACCOUNT;
    // A round's count cut into slices, each a whole number of accounts (of each client).
    let slice = |name: &str, default: u64, unit: u64| {
        (setting(name, default) / slices).div_ceil(unit) * unit
    };
    Plan {
        rounds: setting("EVENTSRC_COMPARE_ROUNDS", 6) as usize,
        slices,
        commands: slice("EVENTSRC_COMPARE_COMMANDS", 1_000, per_account),
        clients: clients as usize,
        concurrent_commands: slice(
            "EVENTSRC_COMPARE_CONCURRENT_COMMANDS",
            3_200,
            clients * per_account,
        ),
        big_events: setting("EVENTSRC_COMPARE_BIG_EVENTS", 1_000).max(2),
        big_ops: slice("EVENTSRC_COMPARE_BIG_OPS", 50, 1),
    }
}

/// `url` with `schema=name` added to its parameters (`Store::open` reads it).
fn in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}schema={schema}")
}

fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// Drops this run's schemas (those starting with `ours`, if given) and those of other runs
/// left behind more than an hour ago (a run that failed half-way).
async fn drop_schemas(admin: &Client, ours: Option<&str>, now: u64) -> Result<(), Failure> {
    let found = admin
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)",
            &[&PREFIX],
        )
        .await?;
    for row in found {
        let name: String = row.get(0);
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        let stale = created.is_some_and(|created| now.saturating_sub(created) > 3_600);
        if ours.is_some_and(|ours| name.starts_with(ours)) || stale {
            admin
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await?;
        }
    }
    Ok(())
}

/// The contenders' and the floor's figures of every round.
struct Figures {
    columns: Vec<Rates>,
    /// The floor's inserts per second: 1 client, `clients` clients, and 1 client again beside
    /// the large-aggregate commands (a latency floor).
    floor: [Vec<f64>; 3],
}

async fn measure(
    plan: &Plan,
    contenders: &[Box<dyn Contender>],
    floor: &Floor,
) -> Result<Figures, Failure> {
    let mut figures = Figures {
        columns: contenders.iter().map(|_| Rates::default()).collect(),
        floor: Default::default(),
    };
    // Alternating rounds: a part of a round is cut into slices, every column runs each slice
    // in turn, and the order turns every slice, so that the drift of a shared virtual machine
    // falls on every column alike. `None` is the floor.
    let columns: Vec<Option<usize>> = (0..contenders.len()).map(Some).chain([None]).collect();
    let mut turn = 0;
    for round in 0..plan.rounds {
        for (p, part) in PARTS.into_iter().enumerate() {
            let mut spent = vec![Duration::ZERO; columns.len()];
            let n = match part {
                Part::Commands => plan.commands,
                Part::Concurrent => plan.concurrent_commands,
                Part::CommandOnBig | Part::LoadBig => plan.big_ops,
            };
            for _ in 0..plan.slices {
                let mut order: Vec<usize> = (0..columns.len()).collect();
                order.rotate_left(turn % columns.len());
                turn += 1;
                for at in order {
                    spent[at] += match (columns[at], part) {
                        (Some(c), Part::Commands) => contenders[c].run_commands(1, n).await?,
                        (Some(c), Part::Concurrent) => {
                            contenders[c].run_commands(plan.clients, n).await?
                        }
                        (Some(c), Part::CommandOnBig) => {
                            contenders[c].command_on_big(plan, round, n).await?
                        }
                        (Some(c), Part::LoadBig) => contenders[c].load_big(plan, n).await?,
                        (None, Part::Commands | Part::CommandOnBig) => floor.run(1, n).await?,
                        (None, Part::Concurrent) => floor.run(plan.clients, n).await?,
                        (None, Part::LoadBig) => continue,
                    };
                }
            }
            for (at, column) in columns.iter().enumerate() {
                let figure = rate(n * plan.slices, spent[at]);
                match column {
                    Some(c) => figures.columns[*c][p].push(figure),
                    None if part != Part::LoadBig => figures.floor[p].push(figure),
                    None => {}
                }
            }
        }
        eprintln!("round {} of {} done", round + 1, plan.rounds);
    }
    Ok(figures)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (low, high)
}

/// A whole number with thousands separators.
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

/// Per-round rates as the median and range: per second, or as a latency in milliseconds.
fn cell(rates: &[f64], latency: bool) -> String {
    if rates.is_empty() {
        return "—".into();
    }
    if latency {
        let ms: Vec<f64> = rates.iter().map(|r| 1e3 / r).collect();
        let (low, high) = range(&ms);
        format!("{:.2} ms ({low:.2}–{high:.2})", median(&ms))
    } else {
        let (low, high) = range(rates);
        format!(
            "{}/s ({}–{})",
            thousands(median(rates)),
            thousands(low),
            thousands(high)
        )
    }
}

/// Round-by-round ratios of two columns' rates, as the median and range.
fn ratio(ours: &[f64], theirs: &[f64]) -> String {
    let ratios: Vec<f64> = ours.iter().zip(theirs).map(|(a, b)| a / b).collect();
    if ratios.is_empty() {
        return "—".into();
    }
    let (low, high) = range(&ratios);
    format!("{:.2} ({low:.2}–{high:.2})", median(&ratios))
}

fn report(plan: &Plan, server: &str, names: &[String], figures: &Figures) {
    let peer = names.iter().position(|name| name == PEER);
    let others: Vec<usize> = (0..names.len()).filter(|&c| Some(c) != peer).collect();
    let mut heading = format!("| {} rounds of {} slices |", plan.rounds, plan.slices);
    let mut rule = String::from("|---|");
    for name in names {
        heading.push_str(&format!(" {name} |"));
        rule.push_str("---:|");
    }
    heading.push_str(" raw INSERT floor |");
    rule.push_str("---:|");
    if let Some(peer) = peer {
        for &c in &others {
            heading.push_str(&format!(" {} / {} |", names[c], names[peer]));
            rule.push_str("---:|");
        }
    }
    println!("\nPostgreSQL {server}\n\n{heading}\n{rule}");
    let big = plan.big_events;
    let rows = [
        ("commands/s, 1 client".to_string(), false),
        (format!("commands/s, {} clients", plan.clients), false),
        (
            format!("a command on a {}-event aggregate", thousands(big as f64)),
            true,
        ),
        (
            format!("load a {}-event aggregate", thousands(big as f64)),
            true,
        ),
    ];
    for (p, (name, latency)) in rows.iter().enumerate() {
        let mut line = format!("| {name} |");
        for column in &figures.columns {
            line.push_str(&format!(" {} |", cell(&column[p], *latency)));
        }
        let floor = figures.floor.get(p).map_or(&[][..], Vec::as_slice);
        line.push_str(&format!(" {} |", cell(floor, *latency)));
        if let Some(peer) = peer {
            for &c in &others {
                let ours = &figures.columns[c][p];
                line.push_str(&format!(" {} |", ratio(ours, &figures.columns[peer][p])));
            }
        }
        println!("{line}");
    }
    println!(
        "\nCells: the median over rounds (the range in brackets). Ratios: per round, the first \
         column's rate over the second's (for latencies, the second's time over the first's), \
         so above 1 the first is faster. The floor beside a latency is one INSERT."
    );
    let mut heading = String::from("| share of the raw INSERT floor |");
    let mut rule = String::from("|---|");
    for name in names {
        heading.push_str(&format!(" {name} |"));
        rule.push_str("---:|");
    }
    println!("\n{heading}\n{rule}");
    for (p, (name, _)) in rows.iter().enumerate().take(2) {
        let mut line = format!("| {name} |");
        for column in &figures.columns {
            line.push_str(&format!(" {} |", ratio(&column[p], &figures.floor[p])));
        }
        println!("{line}");
    }
}

async fn run(url: &str, plan: &Plan) -> Result<(), Failure> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let prefix = format!("{PREFIX}{now}_{}_", std::process::id());
    let admin = floor::connect(url).await?;
    drop_schemas(&admin, None, now).await?;
    let server: String = admin
        .query_one(
            "SELECT current_setting('server_version') || ', synchronous_commit=' || \
             current_setting('synchronous_commit')",
            &[],
        )
        .await?
        .get(0);

    let schema = |tag: &str| format!("{prefix}{tag}");
    let outcome = async {
        let plain = Store::open(&in_schema(url, &schema("eventsrc"))).await?;
        let cached = Store::open(&in_schema(url, &schema("cached"))).await?;
        let contenders: Vec<Box<dyn Contender>> = vec![
            Box::new(EventsrcSide::new("eventsrc", Repository::new(plain))),
            Box::new(EventsrcSide::new(
                "eventsrc + cache",
                Repository::new(cached).with_cache(AggregateCache::new(100_000)),
            )),
            // postgres-es's own pool holds 10; 16 is what eventsrc's store holds.
            Box::new(CqrsSide::connect(url, &schema("cqrs_es"), 16).await?),
        ];
        let floor = Floor::connect(url, &schema("floor"), plan.clients).await?;
        for contender in &contenders {
            contender.setup(plan).await?;
            // Warm-up: pools filled, statements prepared, the large aggregates' pages read.
            let concurrent = plan.clients as u64 * bank::EVENTS_PER_ACCOUNT;
            contender.run_commands(plan.clients, concurrent).await?;
            contender.command_on_big(plan, plan.rounds, 5).await?;
            contender.load_big(plan, 3).await?;
        }
        floor.run(plan.clients, plan.clients as u64 * 10).await?;
        let names: Vec<String> = contenders.iter().map(|c| c.name().to_owned()).collect();
        let figures = measure(plan, &contenders, &floor).await?;
        Ok::<_, Failure>((names, figures))
    }
    .await;
    drop_schemas(&admin, Some(&prefix), now).await?;
    let (names, figures) = outcome?;
    report(plan, &server, &names, &figures);
    Ok(())
}

fn main() {
    let Some(url) = std::env::var(URL_VAR).ok().filter(|url| !url.is_empty()) else {
        println!(
            "eventsrc-compare: set {URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test) to \
             run it; nothing was measured."
        );
        return;
    };
    let plan = plan();
    let payload = serde_json::to_string(&bank::sample_deposit()).expect("a deposit encodes");
    eprintln!(
        "{plan:?}; a deposit's JSON payload is {} bytes",
        payload.len()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    if let Err(failure) = runtime.block_on(run(&url, &plan)) {
        eprintln!("eventsrc-compare failed: {failure}");
        std::process::exit(1);
    }
}
