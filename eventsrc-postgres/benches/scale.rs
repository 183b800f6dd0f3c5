//! Does eventsrc stay flat as the table grows? Grows one PostgreSQL store in tenfold steps
//! (100,000 events, then 1 million, 10 million, ... up to `EVENTSRC_SCALE_MAX`, default
//! 10,000,000) over 100,000 streams and, at each step, measures what a running application
//! does: single-event appends (p50/p99), loads of a 100-event aggregate, a read-all page at the
//! start of the log and one near its end, and the table's and indexes' size per million events.
//!
//! `EVENTSRC_POSTGRES_URL=postgres://... cargo bench -p eventsrc-postgres --bench scale`
//! prints the table and writes `scale.svg` (the plot the README shows) and `scale.csv` in
//! `EVENTSRC_SCALE_OUT` (default: the current directory). The schema is dropped at the end.
//!
//! Events are grown server-side (`INSERT … SELECT generate_series`, a million rows per
//! transaction) in the shape eventsrc writes them, then `VACUUM (ANALYZE)` settles the table
//! as autovacuum would before the step is measured; the probes go through the store's API.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eventsrc::store::ReadAll;
use eventsrc::{
    EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent, Repository, StreamId,
    StreamVersion, aggregate,
};
use eventsrc_postgres::{PgEventStore, PgOptions};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls};

/// A deposit, about 200 bytes of JSON: the bulk rows carry the same fields.
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
}

#[aggregate(id = u64)]
impl Account {
    fn on_deposited(&mut self, event: &Deposited) {
        self.balance_cents += event.amount_cents;
    }
}

fn deposited(n: u64) -> NewEvent {
    let event = Deposited {
        amount_cents: 1_000,
        currency: "EUR".into(),
        reference: format!("INV-2026-{n:08}/monthly settlement of the service agreement"),
        teller: "branch-0042/terminal-07/operator-1138".into(),
        channel: "online-banking".into(),
    };
    NewEvent::from_event(&event, Metadata::new()).expect("encodes")
}

/// The streams the bulk rows spread over.
const STREAMS: u64 = 100_000;
/// Aggregates of exactly 100 events, loaded at each step (ids from `LOADED`).
const LOADED: u64 = 10_000_000;
const LOADS: u64 = 50;
/// Streams the append probes write to (ids from `APPENDED`), one event at a time.
const APPENDED: u64 = 20_000_000;
const APPENDS: u64 = 400;
/// Read-all pages of 1,000 events, at each end.
const PAGES: usize = 20;
/// Rows per bulk transaction.
const CHUNK: u64 = 1_000_000;

/// One step's figures.
#[derive(Debug, Clone)]
struct Step {
    events: u64,
    grow: Duration,
    settle: Duration,
    append_p50: Duration,
    append_p99: Duration,
    load_p50: Duration,
    load_p99: Duration,
    page_start: Duration,
    page_end: Duration,
    table_bytes: i64,
    index_bytes: i64,
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[at]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Scale {
    store: PgEventStore,
    client: Client,
    table: String,
    /// Next bulk row number: rows `0..next` are stored.
    next: u64,
    /// The append probes' streams' versions.
    versions: Vec<u64>,
}

impl Scale {
    /// Bulk rows `from..to`: row `i` is event `i / STREAMS + 1` of stream `account-(i % STREAMS)`,
    /// with a time-ordered id, as eventsrc's UUID v7 ids are.
    async fn grow(&mut self, to: u64) -> Duration {
        let started = Instant::now();
        let sql = format!(
            "INSERT INTO {} (tenant, stream, category, stream_version, event_id, event_type, \
             schema_version, payload, metadata) \
             SELECT 'default', 'account-' || (i % {STREAMS}), 'account', i / {STREAMS} + 1, \
                    lpad(to_hex(i), 32, '0')::uuid, 'Deposited', 1, \
                    json_build_object('amount_cents', 1000, 'currency', 'EUR', \
                        'reference', 'INV-2026-' || lpad(i::text, 8, '0') \
                            || '/monthly settlement of the service agreement', \
                        'teller', 'branch-0042/terminal-07/operator-1138', \
                        'channel', 'online-banking'), \
                    NULL \
             FROM generate_series($1::bigint, $2::bigint - 1) AS i",
            self.table
        );
        while self.next < to {
            let end = to.min(self.next + CHUNK);
            self.client
                .execute(&sql, &[&(self.next as i64), &(end as i64)])
                .await
                .expect("grows the table");
            self.next = end;
        }
        started.elapsed()
    }

    async fn settle(&self) -> Duration {
        let started = Instant::now();
        for settle in [
            format!("VACUUM (ANALYZE) {}", self.table),
            "CHECKPOINT".into(),
        ] {
            self.client.batch_execute(&settle).await.expect("settles");
        }
        started.elapsed()
    }

    async fn appends(&mut self) -> (Duration, Duration) {
        let mut samples = Vec::new();
        for i in 0..APPENDS {
            let k = (i % self.versions.len() as u64) as usize;
            let stream = StreamId::new("account", APPENDED + k as u64).expect("a stream id");
            let expected = match self.versions[k] {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(StreamVersion(v)),
            };
            let started = Instant::now();
            self.store
                .append(&stream, expected, vec![deposited(i)])
                .await
                .expect("appends");
            samples.push(started.elapsed());
            self.versions[k] += 1;
        }
        (
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.99),
        )
    }

    async fn loads(&self, repository: &Repository<PgEventStore>) -> (Duration, Duration) {
        let mut samples = Vec::new();
        for k in 0..LOADS {
            let started = Instant::now();
            let loaded = repository
                .load::<Account>(&(LOADED + k))
                .await
                .expect("loads");
            samples.push(started.elapsed());
            assert_eq!(loaded.version, StreamVersion(100), "a 100-event aggregate");
        }
        (
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.99),
        )
    }

    /// The median time of a 1,000-event page after `after`.
    async fn page(&self, after: GlobalPosition) -> Duration {
        let mut samples = Vec::new();
        for _ in 0..PAGES {
            let started = Instant::now();
            let page = self
                .store
                .read_all(ReadAll::after(after).limit(1_000))
                .await
                .expect("reads a page");
            samples.push(started.elapsed());
            assert_eq!(page.len(), 1_000, "a full page");
        }
        percentile(&mut samples, 0.5)
    }

    /// The position 2,000 events before the end of the log.
    async fn near_the_end(&self) -> GlobalPosition {
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT transaction_id, position FROM {} WHERE tenant = 'default' \
                     ORDER BY transaction_id DESC, position DESC OFFSET 2000 LIMIT 1",
                    self.table
                ),
                &[],
            )
            .await
            .expect("finds the end");
        GlobalPosition::new(row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64)
    }

    async fn sizes(&self) -> (i64, i64) {
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT pg_table_size('{0}'), pg_indexes_size('{0}')",
                    self.table
                ),
                &[],
            )
            .await
            .expect("sizes");
        (row.get(0), row.get(1))
    }
}

async fn run(url: &str, schema: &str, max: u64) -> Vec<Step> {
    let store = PgEventStore::connect_with(
        url,
        PgOptions::default()
            .schema(schema)
            .application_name("eventsrc-bench-scale"),
    )
    .await
    .expect("connects");
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connects");
    tokio::spawn(connection);
    let repository = Repository::new(store.clone());
    // The aggregates to load: 100 events each, written before the bulk rows.
    for k in 0..LOADS {
        let stream = StreamId::new("account", LOADED + k).expect("a stream id");
        let events = (0..100).map(deposited).collect();
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .expect("seeds");
    }
    let mut scale = Scale {
        store,
        client,
        table: format!("\"{schema}\".events"),
        next: 0,
        versions: vec![0; 100],
    };
    let mut steps = Vec::new();
    let mut target = 100_000;
    while target <= max {
        let grow = scale.grow(target).await;
        let settle = scale.settle().await;
        let (append_p50, append_p99) = scale.appends().await;
        let (load_p50, load_p99) = scale.loads(&repository).await;
        let page_start = scale.page(GlobalPosition::START).await;
        let end = scale.near_the_end().await;
        let page_end = scale.page(end).await;
        let (table_bytes, index_bytes) = scale.sizes().await;
        let step = Step {
            events: target,
            grow,
            settle,
            append_p50,
            append_p99,
            load_p50,
            load_p99,
            page_start,
            page_end,
            table_bytes,
            index_bytes,
        };
        eprintln!("{step:?}");
        steps.push(step);
        target *= 10;
    }
    steps
}

fn print(steps: &[Step]) {
    println!(
        "\n| events | append p50 / p99 | load 100 events p50 / p99 | page at start / near end \
         | table + indexes per million events | grown in / settled in |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for s in steps {
        let per_million = |bytes: i64| bytes as f64 / (s.events as f64 / 1e6) / (1 << 20) as f64;
        println!(
            "| {} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.0} + {:.0} MiB | {:.0} s / {:.0} s |",
            s.events,
            ms(s.append_p50),
            ms(s.append_p99),
            ms(s.load_p50),
            ms(s.load_p99),
            ms(s.page_start),
            ms(s.page_end),
            per_million(s.table_bytes),
            per_million(s.index_bytes),
            s.grow.as_secs_f64(),
            s.settle.as_secs_f64(),
        );
    }
}

fn write_csv(steps: &[Step], path: &PathBuf) {
    let mut csv = String::from(
        "events,append_p50_ms,append_p99_ms,load_p50_ms,load_p99_ms,page_start_ms,page_end_ms,table_bytes,index_bytes\n",
    );
    for s in steps {
        csv.push_str(&format!(
            "{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{}\n",
            s.events,
            ms(s.append_p50),
            ms(s.append_p99),
            ms(s.load_p50),
            ms(s.load_p99),
            ms(s.page_start),
            ms(s.page_end),
            s.table_bytes,
            s.index_bytes
        ));
    }
    std::fs::write(path, csv).expect("writes the CSV");
}

/// A line of the plot: its name, the figure it draws and its colour.
type Series = (&'static str, fn(&Step) -> Duration, RGBColor);

/// Latency against table size, log-scaled events on x: a flat line is O(1) in the table.
fn plot(steps: &[Step], path: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (800, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let (first, last) = (steps[0].events as f64, steps[steps.len() - 1].events as f64);
    let highest = steps
        .iter()
        .flat_map(|s| [s.append_p99, s.load_p99, s.page_start, s.page_end])
        .map(ms)
        .fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "eventsrc on PostgreSQL: latency as the events table grows",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((first..last * 1.01).log_scale(), 0.0..highest * 1.15)?;
    chart
        .configure_mesh()
        .x_desc("events in the table")
        .y_desc("milliseconds")
        .x_label_formatter(&|x| format!("{:.0e}", x))
        .draw()?;
    let series: [Series; 6] = [
        ("append p50", |s| s.append_p50, BLUE),
        ("append p99", |s| s.append_p99, CYAN),
        ("load 100 events p50", |s| s.load_p50, RED),
        ("load 100 events p99", |s| s.load_p99, MAGENTA),
        ("read-all page at the start", |s| s.page_start, GREEN),
        ("read-all page near the end", |s| s.page_end, BLACK),
    ];
    for (name, of, color) in series {
        chart
            .draw_series(LineSeries::new(
                steps.iter().map(|s| (s.events as f64, ms(of(s)))),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() {
    let Some(url) = std::env::var("EVENTSRC_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        println!("scale bench: set EVENTSRC_POSTGRES_URL to run it; nothing was measured.");
        return;
    };
    let max: u64 = std::env::var("EVENTSRC_SCALE_MAX")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10_000_000);
    let out = PathBuf::from(std::env::var("EVENTSRC_SCALE_OUT").unwrap_or_else(|_| ".".into()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let stamp = EventId::new().0.simple().to_string();
    let schema = format!("eventsrc_scale_{}", &stamp[stamp.len() - 12..]);
    let steps = runtime.block_on(async {
        let steps = run(&url, &schema, max).await;
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .expect("connects");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .expect("drops the schema");
        steps
    });
    print(&steps);
    if steps.is_empty() {
        return;
    }
    write_csv(&steps, &out.join("scale.csv"));
    if let Err(error) = plot(&steps, &out.join("scale.svg")) {
        eprintln!("the plot was not written: {error}");
    }
}
