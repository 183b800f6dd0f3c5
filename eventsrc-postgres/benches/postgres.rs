//! eventsrc-postgres beside the raw limit of PostgreSQL through the same driver
//! (tokio-postgres): the same rows inserted into the same `events` table with plain multi-row
//! `INSERT`s, the same stream read with a plain `SELECT`, the same log scanned with one ordered
//! `SELECT`. Prints one table.
//!
//! Run with: `EVENTSRC_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p
//! eventsrc-postgres` (without the variable it says so and stops). Everything happens in a
//! fresh schema, dropped at the end. `EVENTSRC_BENCH_SCALE=0.1` shrinks every workload (e.g.
//! for a quick look); the README's figures use the default scale of 1.
//! `EVENTSRC_BENCH_ONLY=append` (or `concurrent`, `indexes`, `scan`, `load`, `plans`,
//! `command`, `latency`, `rebuild`) runs one part; `EVENTSRC_BENCH_ROUNDS` sets the `scan`
//! part's alternating rounds (5). `scan` reads the seeded log with `read_all` beside one
//! `SELECT` casting the json columns to text (as a reader using the driver's `String` must),
//! one reading them as they come (as the store does), and a raw reader paging with the
//! store's own statements. `indexes` reports what one single-event
//! append costs the server beside a raw `INSERT`: time without the fsync, and WAL records and
//! bytes per relation (pg_walinspect; PostgreSQL 15 and a superuser). `plans` times read-all pages with fresh statistics and
//! without any (deleted, as after a bulk import with autovacuum behind; it needs a superuser),
//! beside the same page statement run without the store's pinned plan.
//!
//! The read side: `latency` measures how long an append takes to reach a read model run live
//! by a runner (woken by NOTIFY), and what an inline projection costs an append; it prints a
//! second table. `rebuild` runs a projection over the whole seeded log (1M events at scale 1)
//! into a table (`Runner` + `PgReadModel`, one upsert per event, checkpoint in the same
//! transaction) beside a hand-written rebuild doing the same writes, and the `read_all` scan
//! in the runner's pages beside one plain `SELECT`. A rebuild makes a round trip per event,
//! so at scale 1 it takes minutes: it runs only when asked for (`EVENTSRC_BENCH_ONLY=rebuild`),
//! keeping the default run short.
//!
//! The store runs with its default options (a pool of 16, notifications on), as an
//! application would. Commits are whatever the server makes them (durable by default).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventsrc::Tenants;
use eventsrc::{
    Decision, Event, EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent,
    Repository, StreamId, StreamVersion, Tenant, Uuid, aggregate, command,
};

use eventsrc::store::ReadAll;
use eventsrc_postgres::tokio_postgres::types::ToSql;
use eventsrc_postgres::tokio_postgres::{self, Client, NoTls, Statement};
use eventsrc_postgres::{PgEventStore, PgOptions};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

/// The read side's parts: projection rebuild, live latency, inline projections. In a
/// directory of its own, so that Cargo does not take it for a bench.
#[path = "postgres/read_side.rs"]
mod read_side;

const URL_VAR: &str = "EVENTSRC_POSTGRES_URL";

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct ItemAdded {
    sku: String,
    quantity: u32,
    price_cents: u64,
}

#[derive(Default, Debug, PartialEq)]
struct Cart {
    items: u64,
    total_cents: u64,
}

#[aggregate(id = u64)]
impl Cart {
    fn on_item_added(&mut self, event: &ItemAdded) {
        self.items += u64::from(event.quantity);
        self.total_cents += event.price_cents * u64::from(event.quantity);
    }
}

#[command(aggregate = Cart, handler = Cart::add)]
struct AddItem {
    #[id]
    cart: u64,
}

impl Cart {
    fn add(&self, _: &AddItem) -> Decision<Self> {
        Ok(vec![item(self.items).into()])
    }
}

fn item(n: u64) -> ItemAdded {
    ItemAdded {
        sku: format!("computer-{}", n % 97),
        quantity: 1 + (n % 3) as u32,
        price_cents: 129_900,
    }
}

fn new_event(n: u64) -> NewEvent {
    NewEvent::from_event(&item(n), Metadata::new()).expect("encodes")
}

fn payload(n: u64) -> String {
    serde_json::to_string(&item(n)).expect("encodes")
}

fn stream(n: u64) -> StreamId {
    StreamId::new("cart", n).expect("a stream id")
}

fn scale(n: u64) -> u64 {
    let factor: f64 = std::env::var("EVENTSRC_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * factor) as u64).max(10)
}

/// The append workloads write to this tenant; the seeded log (scan, load, command) is the
/// default tenant's, so the scan reads exactly what was seeded.
const APPENDS: &str = "appends";

/// Stream numbers of the append workloads: eventsrc's from 0 up, the raw side's from here up.
const RAW_STREAMS: u64 = 1_000_000;

/// The schema of one run and what both sides use in it.
struct Bench {
    url: String,
    schema: String,
    store: PgEventStore,
}

impl Bench {
    fn table(&self) -> String {
        format!("\"{}\".events", self.schema)
    }

    /// A plain connection of its own, driven on this runtime.
    async fn client(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connects");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// Raw: one multi-row `INSERT` of `batch` events into one stream, prepared, on `client`.
    /// The stream is `$1`; each row binds its version, id and payload; the other columns are
    /// constants, and the defaults fill position, transaction id and recorded_at as they do
    /// for the store.
    async fn raw_insert(&self, client: &Client, tenant: &str, batch: u64) -> Statement {
        let rows: Vec<String> = (0..batch)
            .map(|i| {
                let p = 2 + 3 * i;
                format!(
                    "('{tenant}', $1, 'cart', ${p}, ${}, 'ItemAdded', 1, ${}::text::json, NULL)",
                    p + 1,
                    p + 2
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} (tenant, stream, category, stream_version, event_id, event_type, \
             schema_version, payload, metadata) VALUES {}",
            self.table(),
            rows.join(", ")
        );
        client.prepare(&sql).await.expect("prepares")
    }
}

/// Raw: the next `batch` events of `stream` (at `version` so far) in one statement, one
/// transaction (autocommit).
async fn raw_append(
    client: &Client,
    insert: &Statement,
    stream: &str,
    version: &mut i64,
    first_n: u64,
    batch: u64,
) {
    let versions: Vec<i64> = (1..=batch as i64).map(|i| *version + i).collect();
    let ids: Vec<Uuid> = (0..batch).map(|_| EventId::new().0).collect();
    let payloads: Vec<String> = (first_n..first_n + batch).map(payload).collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(1 + 3 * batch as usize);
    params.push(&stream);
    for ((version, id), payload) in versions.iter().zip(&ids).zip(&payloads) {
        params.push(version);
        params.push(id);
        params.push(payload);
    }
    client.execute(insert, &params).await.expect("inserts");
    *version += batch as i64;
}

/// Raw: `total` events in batches of `batch`, round-robin over `streams` streams from
/// `offset`.
async fn raw_append_streams(
    client: &Client,
    insert: &Statement,
    streams: u64,
    total: u64,
    batch: u64,
    offset: u64,
) {
    let mut versions = vec![0i64; streams as usize];
    let names: Vec<String> = (0..streams)
        .map(|s| stream(offset + s).to_string())
        .collect();
    let mut n = 0;
    while n < total {
        let s = ((n / batch) % streams) as usize;
        raw_append(client, insert, &names[s], &mut versions[s], n, batch).await;
        n += batch;
    }
}

/// eventsrc: the same, each append expecting the version the previous one returned, as a
/// repository does.
async fn store_append(store: &PgEventStore, streams: u64, total: u64, batch: u64, offset: u64) {
    let mut versions = vec![StreamVersion::NONE; streams as usize];
    let mut n = 0;
    while n < total {
        let s = (n / batch) % streams;
        let events: Vec<NewEvent> = (n..n + batch).map(new_event).collect();
        let done = store
            .append(
                &stream(offset + s),
                ExpectedVersion::at(versions[s as usize]),
                events,
            )
            .await
            .expect("appends");
        versions[s as usize] = done.stream_version;
        n += batch;
    }
}

struct Row {
    name: String,
    eventsrc: f64,
    raw: f64,
    unit: &'static str,
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

async fn append_rows(bench: &Bench, rows: &mut Vec<Row>) {
    // fsync latency drifts on a virtual machine; both sides run in alternating rounds so that
    // drift falls on both alike.
    const ROUNDS: u64 = 4;
    let store = bench.store.with_tenant(Tenant::new(APPENDS));
    let client = bench.client().await;
    for (part, (batch, total)) in [
        (1, scale(4_000)),
        (10, scale(20_000)),
        (100, scale(100_000)),
    ]
    .into_iter()
    .enumerate()
    {
        let insert = bench.raw_insert(&client, APPENDS, batch).await;
        let (mut store_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
        let per_round = total / ROUNDS;
        for round in 0..ROUNDS {
            // Fresh streams each round, so the expected versions stay each side's own.
            let offset = part as u64 * 10_000 + round * 1_000;
            let started = Instant::now();
            store_append(&store, 100, per_round, batch, offset).await;
            store_time += started.elapsed();
            let started = Instant::now();
            raw_append_streams(
                &client,
                &insert,
                100,
                per_round,
                batch,
                RAW_STREAMS + offset,
            )
            .await;
            raw_time += started.elapsed();
        }
        rows.push(Row {
            name: format!("append, 1 writer, batches of {batch}"),
            eventsrc: rate(per_round * ROUNDS, store_time),
            raw: rate(per_round * ROUNDS, raw_time),
            unit: "events/s",
        });
    }
}

async fn concurrent_rows(bench: &Bench, rows: &mut Vec<Row>) {
    const WRITERS: u64 = 8;
    const ROUNDS: u64 = 2;
    let store = bench.store.with_tenant(Tenant::new(APPENDS));
    // Raw: a client per writer, as 8 processes or a pool would have.
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        clients.push(std::sync::Arc::new(bench.client().await));
    }
    for (part, (batch, per_writer)) in [(1, scale(1_000)), (10, scale(5_000)), (100, scale(20_000))]
        .into_iter()
        .enumerate()
    {
        let mut inserts = Vec::new();
        for client in &clients {
            inserts.push(std::sync::Arc::new(
                bench.raw_insert(client, APPENDS, batch).await,
            ));
        }
        let per_round = per_writer / ROUNDS;
        let (mut store_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
        for round in 0..ROUNDS {
            let offset = 100_000 + part as u64 * 10_000 + round * 1_000;
            let started = Instant::now();
            let tasks: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store_append(&store, 1, per_round, batch, offset + w).await;
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("writer finished");
            }
            store_time += started.elapsed();

            let started = Instant::now();
            let tasks: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let client = std::sync::Arc::clone(&clients[w as usize]);
                    let insert = std::sync::Arc::clone(&inserts[w as usize]);
                    tokio::spawn(async move {
                        let name = stream(RAW_STREAMS + offset + w).to_string();
                        let mut version = 0;
                        let mut n = 0;
                        while n < per_round {
                            raw_append(&client, &insert, &name, &mut version, n, batch).await;
                            n += batch;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("writer finished");
            }
            raw_time += started.elapsed();
        }
        rows.push(Row {
            name: format!("append, {WRITERS} writers on distinct streams, batches of {batch}"),
            eventsrc: rate(WRITERS * per_round * ROUNDS, store_time),
            raw: rate(WRITERS * per_round * ROUNDS, raw_time),
            unit: "events/s",
        });
    }
}

/// The WAL that the transactions of `streams` (the append tenant's) wrote between `from` and
/// `to`: records and bytes in all, and bytes per relation (the table, each index).
async fn wal_of(
    admin: &Client,
    table: &str,
    streams: &[String],
    from: &str,
    to: &str,
) -> (i64, i64, Vec<(String, i64)>) {
    // A record names its relation by file node in its block references.
    let found = admin
        .query(
            &format!(
                "WITH mine AS ( \
                     SELECT DISTINCT transaction_id FROM {table} \
                     WHERE tenant = '{APPENDS}' AND stream = ANY($1) \
                 ), records AS ( \
                     SELECT w.record_length, \
                         substring(w.block_ref from 'rel \\d+/\\d+/(\\d+)')::oid AS node \
                     FROM pg_get_wal_records_info($2::text::pg_lsn, $3::text::pg_lsn) w \
                     WHERE w.xid::text::bigint IN (SELECT transaction_id FROM mine) \
                 ) \
                 SELECT COALESCE(c.relname::text, 'no relation (commit)'), count(*), \
                     sum(r.record_length)::bigint \
                 FROM records r LEFT JOIN pg_class c ON c.relfilenode = r.node \
                 GROUP BY 1 ORDER BY 1"
            ),
            &[&streams, &from, &to],
        )
        .await
        .expect("reads the WAL");
    let (mut records, mut bytes, mut by_relation) = (0, 0, Vec::new());
    for row in &found {
        let (name, count, length): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
        records += count;
        bytes += length;
        by_relation.push((name, length));
    }
    (records, bytes, by_relation)
}

async fn wal_position(admin: &Client) -> String {
    admin
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .expect("reads the WAL position")
        .get(0)
}

/// 8 writers, one stream each, `per_writer` single-event appends each: through `store`, or
/// raw on `clients` (one connection per writer) when `store` is `None`. The time taken.
async fn eight_writers(
    store: Option<&PgEventStore>,
    clients: &[std::sync::Arc<Client>],
    inserts: &[std::sync::Arc<Statement>],
    per_writer: u64,
    offset: u64,
) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..8u64)
        .map(|w| {
            let store = store.cloned();
            let (client, insert) = (
                std::sync::Arc::clone(&clients[w as usize]),
                std::sync::Arc::clone(&inserts[w as usize]),
            );
            tokio::spawn(async move {
                match store {
                    Some(store) => store_append(&store, 1, per_writer, 1, offset + w).await,
                    None => {
                        raw_append_streams(&client, &insert, 1, per_writer, 1, offset + w).await
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer finished");
    }
    started.elapsed()
}

/// The 8-writer single-event append (durable commits) with and without NOTIFY, beside raw:
/// how much of the gap the wake-up takes.
async fn notify_rows(bench: &Bench, rows: &mut Vec<Row>) {
    const ROUNDS: u64 = 3;
    let per_writer = scale(600);
    let quiet = PgEventStore::connect_with(
        &bench.url,
        PgOptions::default()
            .schema(&bench.schema)
            .application_name("eventsrc-bench")
            .notify(false),
    )
    .await
    .expect("connects")
    .with_tenant(Tenant::new(APPENDS));
    let loud = bench.store.with_tenant(Tenant::new(APPENDS));
    let (mut clients, mut inserts) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let client = bench.client().await;
        inserts.push(std::sync::Arc::new(
            bench.raw_insert(&client, APPENDS, 1).await,
        ));
        clients.push(std::sync::Arc::new(client));
    }
    let mut times = [Duration::ZERO; 3];
    for round in 0..ROUNDS {
        for side in 0..3 {
            let offset = 300_000 + round * 100 + side as u64 * 10;
            let store = [Some(&quiet), Some(&loud), None][side];
            times[side] += eight_writers(store, &clients, &inserts, per_writer, offset).await;
        }
    }
    let appends = 8 * per_writer * ROUNDS;
    for (side, label) in [(0, "without NOTIFY"), (1, "with NOTIFY (the default)")] {
        rows.push(Row {
            name: format!("append, 8 writers on distinct streams, 1 event each, eventsrc {label}"),
            eventsrc: rate(appends, times[side]),
            raw: rate(appends, times[2]),
            unit: "events/s",
        });
    }
}

/// What one single-event append costs the server, eventsrc beside the raw `INSERT`: time per
/// append on connections that do not wait for the WAL flush (`synchronous_commit=off`, so
/// that the disk's fsync does not hide the statement's own cost), and the WAL each writes
/// (pg_walinspect, counting only the records of the appends' own transactions). One writer,
/// each append expecting the version the last one returned.
async fn indexes_rows(bench: &Bench, rows: &mut Vec<Row>) {
    const ROUNDS: u64 = 4;
    let per_round = scale(2_000);
    let admin = bench.client().await;
    admin
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .await
        .expect("pg_walinspect (PostgreSQL 15 or later, a superuser)");
    let mut config: tokio_postgres::Config = bench.url.parse().expect("a URL");
    config.options("-c synchronous_commit=off");
    let mut stores = Vec::new();
    for notify in [false, true] {
        let options = PgOptions::default()
            .schema(&bench.schema)
            .application_name("eventsrc-bench")
            .notify(notify);
        let store = PgEventStore::connect_config(config.clone(), options)
            .await
            .expect("connects");
        stores.push(store.with_tenant(Tenant::new(APPENDS)));
    }
    let (raw, connection) = config.connect(NoTls).await.expect("connects");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let insert = bench.raw_insert(&raw, APPENDS, 1).await;
    let table = bench.table();
    // eventsrc without NOTIFY, eventsrc, raw.
    let mut times = [Duration::ZERO; 3];
    let mut streams: [Vec<String>; 3] = Default::default();
    let mut wal = [(0, 0, Vec::new()), (0, 0, Vec::new()), (0, 0, Vec::new())];
    for round in 0..ROUNDS {
        for side in 0..3 {
            let offset = 200_000 + round * 10 + side as u64;
            let name = stream(offset).to_string();
            let from = wal_position(&admin).await;
            let started = Instant::now();
            match side {
                0 | 1 => store_append(&stores[side], 1, per_round, 1, offset).await,
                _ => raw_append_streams(&raw, &insert, 1, per_round, 1, offset).await,
            }
            times[side] += started.elapsed();
            let to = wal_position(&admin).await;
            // pg_walinspect reads flushed WAL only; the WAL writer flushes the appends'
            // (asynchronous) commits within its delay.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let flushed: bool = admin
                    .query_one(
                        "SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn",
                        &[&to],
                    )
                    .await
                    .expect("reads the flushed WAL position")
                    .get(0);
                assert!(flushed || Instant::now() < deadline, "the WAL is flushed");
                if flushed {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let found = wal_of(&admin, &table, std::slice::from_ref(&name), &from, &to).await;
            wal[side].0 += found.0;
            wal[side].1 += found.1;
            for (relation, bytes) in found.2 {
                match wal[side].2.iter_mut().find(|(r, _)| *r == relation) {
                    Some((_, total)) => *total += bytes,
                    None => wal[side].2.push((relation, bytes)),
                }
            }
            streams[side].push(name);
        }
    }
    let appends = (per_round * ROUNDS) as f64;
    let micros = |time: Duration| time.as_secs_f64() * 1e6 / appends;
    for (side, label) in [(0, "without NOTIFY"), (1, "with NOTIFY")] {
        rows.push(Row {
            name: format!(
                "single-event append, 1 writer, synchronous_commit=off, eventsrc {label} \
                 (time per append; lower is better)"
            ),
            eventsrc: micros(times[side]),
            raw: micros(times[2]),
            unit: "µs",
        });
    }
    rows.push(Row {
        name: "WAL records per single-event append".into(),
        eventsrc: wal[0].0 as f64 / appends,
        raw: wal[2].0 as f64 / appends,
        unit: "records",
    });
    rows.push(Row {
        name: "WAL bytes per single-event append".into(),
        eventsrc: wal[0].1 as f64 / appends,
        raw: wal[2].1 as f64 / appends,
        unit: "bytes",
    });
    for (relation, bytes) in &wal[0].2 {
        let raw_bytes = wal[2]
            .2
            .iter()
            .find(|(r, _)| r == relation)
            .map_or(0, |(_, b)| *b);
        rows.push(Row {
            name: format!("WAL bytes per single-event append into {relation}"),
            eventsrc: *bytes as f64 / appends,
            raw: raw_bytes as f64 / appends,
            unit: "bytes",
        });
    }
}

/// Seeds the default tenant's log: `streams` streams of 1,000 events each, appended by 8
/// writers in batches of 1,000 (one append per stream).
async fn seed(bench: &Bench, streams: u64) {
    const WRITERS: u64 = 8;
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = bench.store.clone();
            tokio::spawn(async move {
                for s in (w..streams).step_by(WRITERS as usize) {
                    let events: Vec<NewEvent> =
                        (s * 1_000..(s + 1) * 1_000).map(new_event).collect();
                    store
                        .append(&stream(s), ExpectedVersion::NoStream, events)
                        .await
                        .expect("seeds");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("seeder finished");
    }
    // Settle before measuring: hint bits set and statistics fresh (as autovacuum would leave a
    // table at rest), and the seed's WAL written out, so that no reader runs beside the
    // server's own catching up.
    let client = bench.client().await;
    for settle in [
        format!("VACUUM ANALYZE {}", bench.table()),
        "CHECKPOINT".into(),
    ] {
        client.batch_execute(&settle).await.expect("settles");
    }
    eprintln!(
        "seeded {} events in {:.1} s (eventsrc appends of 1,000 events, {WRITERS} writers)",
        streams * 1_000,
        started.elapsed().as_secs_f64()
    );
}

/// eventsrc: the whole log in pages of `page` events, as a projection catching up reads it.
async fn store_scan(store: &PgEventStore, page: usize) -> u64 {
    let (mut after, mut seen) = (GlobalPosition::START, 0u64);
    loop {
        let page = store
            .read_all(ReadAll::after(after).limit(page))
            .await
            .expect("reads");
        let Some(last) = page.last() else { break };
        after = last.global_position;
        seen += page.len() as u64;
    }
    seen
}

/// A `json` column's text, read from its wire form (which is the text) as eventsrc reads it,
/// or a `text` column's.
struct JsonText(String);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonText {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(std::str::from_utf8(raw)?.to_owned()))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        use tokio_postgres::types::Type;
        *ty == Type::JSON || *ty == Type::TEXT
    }
}

/// Raw: one SELECT of the same rows in the same order (the log's), streamed, every column
/// into owned values.
async fn raw_scan(client: &Client, select: &Statement) -> u64 {
    let found = client
        .query_raw(select, std::iter::empty::<i64>())
        .await
        .expect("queries");
    let mut found = std::pin::pin!(found);
    let mut seen = 0u64;
    while let Some(row) = found.try_next().await.expect("a row") {
        raw_row(&row);
        seen += 1;
    }
    seen
}

/// The store's own statements for a log page, prepared once on a raw connection.
struct RawPager {
    /// Opens the page's transaction, with the store's planner settings.
    begin: String,
    horizon: Statement,
    page: Statement,
}

impl RawPager {
    async fn prepare(bench: &Bench, client: &Client) -> Self {
        let sql = |which| bench.store.__sql(which).expect("a statement");
        Self {
            begin: sql("read_all_begin").to_owned(),
            horizon: client
                .prepare(sql("read_all_horizon"))
                .await
                .expect("prepares"),
            page: client.prepare(sql("read_all")).await.expect("prepares"),
        }
    }
}

/// Raw paging: the store's own statements (the page's transaction, its horizon, the page)
/// sent together for each page as the store sends them, every row read as [`raw_scan`] reads
/// it, nothing kept.
async fn raw_pages(pager: &RawPager, client: &Client, page: i64) -> u64 {
    let none: Vec<String> = Vec::new();
    let (mut commit, mut sequence, mut seen) = (0i64, 0i64, 0u64);
    loop {
        let horizon_params: [&(dyn ToSql + Sync); 5] =
            [&"default", &commit, &sequence, &none, &none];
        let page_params: [&(dyn ToSql + Sync); 4] = [&"default", &commit, &sequence, &page];
        let (_, _, found) = futures_util::future::try_join3(
            client.batch_execute(&pager.begin),
            client.query_one(&pager.horizon, &horizon_params),
            client.query_raw(&pager.page, page_params.iter().copied()),
        )
        .await
        .expect("reads");
        let read = async {
            let mut found = std::pin::pin!(found);
            let mut last = None;
            let mut rows = 0;
            while let Some(row) = found.try_next().await.expect("a row") {
                last = Some((row.get::<_, i64>(1), row.get::<_, i64>(0)));
                raw_row(&row);
                rows += 1;
            }
            (last, rows)
        };
        let ((last, rows), ()) = futures_util::future::join(read, async {
            client.batch_execute("COMMIT").await.expect("commits")
        })
        .await;
        seen += rows;
        match last {
            Some(last) => (commit, sequence) = last,
            None => break,
        }
    }
    seen
}

/// Reads every column of a log row into owned values.
fn raw_row(row: &tokio_postgres::Row) {
    let numbers: [i64; 4] = [0, 1, 3, 6].map(|c| row.get(c));
    let stream: String = row.get(2);
    let id: Uuid = row.get(4);
    let event_type: String = row.get(5);
    let payload = row.get::<_, JsonText>(7).0;
    let metadata = row.get::<_, Option<JsonText>>(8).map(|text| text.0);
    let recorded_at: SystemTime = row.get(9);
    std::hint::black_box((
        numbers,
        stream,
        id,
        event_type,
        payload,
        metadata,
        recorded_at,
    ));
}

async fn scan_row(bench: &Bench, rows: &mut Vec<Row>, total: u64) {
    // A round's ratio swings by a fifth either way on this VM: alternating rounds, each side
    // first every other round, and the median of the rounds' ratios beside the totals.
    let rounds: u64 = std::env::var("EVENTSRC_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    let client = bench.client().await;
    // As a hand-written reader would write it with this driver, whose `String` does not read
    // `json` (the `::text` cast), and as eventsrc reads it (the json values as they come).
    let mut selects = Vec::new();
    for (payload, metadata) in [("payload::text", "metadata::text"), ("payload", "metadata")] {
        let select = client
            .prepare(&format!(
                "SELECT position, transaction_id, stream, stream_version, event_id, event_type, \
                 schema_version, {payload}, {metadata}, recorded_at FROM {} \
                 WHERE tenant = 'default' ORDER BY transaction_id, position",
                bench.table()
            ))
            .await
            .expect("prepares");
        selects.push(select);
    }
    let pager = RawPager::prepare(bench, &client).await;
    // Pages of 10,000 as in the SQLite table; every page is a query of its own, and a query's
    // start costs PostgreSQL and the driver more than a step of SQLite costs, so larger pages
    // are shown too.
    for page in [10_000, 100_000] {
        // Each round runs the four sides, the first one moving along every round: eventsrc,
        // the one SELECT both ways, and raw paging (which tells what the store's statements
        // and pages cost from what building records costs).
        let mut totals = [Duration::ZERO; 4];
        let mut ratios = [Vec::new(), Vec::new(), Vec::new()];
        for round in 0..rounds as usize {
            let mut times = [Duration::ZERO; 4];
            for side in (0..4).map(|n| (n + round) % 4) {
                let started = Instant::now();
                let seen = match side {
                    0 => store_scan(&bench.store, page).await,
                    3 => raw_pages(&pager, &client, page as i64).await,
                    raw => raw_scan(&client, &selects[raw - 1]).await,
                };
                assert_eq!(seen, total);
                times[side] = started.elapsed();
                totals[side] += times[side];
            }
            for raw in 0..3 {
                ratios[raw].push(times[raw + 1].as_secs_f64() / times[0].as_secs_f64());
            }
        }
        let baselines = [
            "one SELECT casting json to text",
            "one SELECT, json as it comes",
            "the store's own statements and pages, json as it comes",
        ];
        for (raw, how) in baselines.iter().enumerate() {
            let ratios = &mut ratios[raw];
            ratios.sort_by(f64::total_cmp);
            rows.push(Row {
                name: format!(
                    "read-all scan of {total} events (eventsrc in pages of {page}; raw: {how}; \
                     {rounds} rounds, their ratios {:.2}–{:.2}, median {:.2})",
                    ratios[0],
                    ratios[ratios.len() - 1],
                    ratios[ratios.len() / 2]
                ),
                eventsrc: rate(total * rounds, totals[0]),
                raw: rate(total * rounds, totals[raw + 1]),
                unit: "events/s",
            });
        }
    }
}

/// `count` positions of the seeded log, picked at random among all but its last `clear`
/// events (so that a page after each is full), to read pages after.
async fn random_positions(client: &Client, table: &str, count: i64, clear: i64) -> Vec<(i64, i64)> {
    client
        .query(
            &format!(
                "SELECT transaction_id, position FROM ( \
                     SELECT transaction_id, position FROM {table} WHERE tenant = 'default' \
                     ORDER BY transaction_id DESC, position DESC OFFSET $2 \
                 ) head ORDER BY random() LIMIT $1"
            ),
            &[&count, &clear],
        )
        .await
        .expect("picks positions")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// What reading one page after each of a list of positions took, three ways.
#[derive(Default)]
struct PageTimes {
    /// eventsrc's `read_all`: the pinned plan, rows decoded into records.
    store: Duration,
    /// The store's page statement on a plain connection, in a transaction with the store's
    /// planner settings (its pinned plan) sent as the store sends it, rows left undecoded.
    pinned: Duration,
    /// The same statement plainly, in autocommit, as pages ran before their plan was pinned.
    old: Duration,
}

impl std::ops::AddAssign for PageTimes {
    fn add_assign(&mut self, other: Self) {
        self.store += other.store;
        self.pinned += other.pinned;
        self.old += other.old;
    }
}

/// Reads a page of `page` events after each of `starts`, each of the three ways.
async fn time_pages(
    bench: &Bench,
    client: &mut Client,
    old: &Statement,
    starts: &[(i64, i64)],
    page: i64,
) -> PageTimes {
    let begin = format!(
        "BEGIN; {}",
        bench
            .store
            .__sql("read_all_settings")
            .expect("the page settings")
    );
    let mut times = PageTimes::default();
    let started = Instant::now();
    for &(commit, sequence) in starts {
        let after = GlobalPosition::new(commit as u64, sequence as u64);
        let found = bench
            .store
            .read_all(ReadAll::after(after).limit(page as usize))
            .await
            .expect("reads");
        assert_eq!(found.len() as i64, page);
    }
    times.store = started.elapsed();
    let started = Instant::now();
    for &(commit, sequence) in starts {
        let params: [&(dyn ToSql + Sync); 4] = [&"default", &commit, &sequence, &page];
        // As the store sends them: the three messages without waiting for one another.
        let (_, found, _) = futures_util::future::try_join3(
            client.batch_execute(&begin),
            client.query(old, &params),
            client.batch_execute("COMMIT"),
        )
        .await
        .expect("reads");
        assert_eq!(found.len() as i64, page);
    }
    times.pinned = started.elapsed();
    let started = Instant::now();
    for &(commit, sequence) in starts {
        let params: [&(dyn ToSql + Sync); 4] = [&"default", &commit, &sequence, &page];
        let found = client.query(old, &params).await.expect("reads");
        assert_eq!(found.len() as i64, page);
    }
    times.old = started.elapsed();
    times
}

/// The rows of one `plans` measurement: the pinned plan's own cost (raw, pinned beside raw,
/// plain), then what `read_all` gives beside the plain statement.
fn page_rows(rows: &mut Vec<Row>, what: &str, pages: usize, times: &PageTimes) {
    let pages = pages as u64;
    rows.push(Row {
        name: format!("{what}: the page statement pinned (raw: the same, not pinned)"),
        eventsrc: rate(pages, times.pinned),
        raw: rate(pages, times.old),
        unit: "pages/s",
    });
    rows.push(Row {
        name: format!("{what}: eventsrc `read_all` (raw: the page statement, not pinned)"),
        eventsrc: rate(pages, times.store),
        raw: rate(pages, times.old),
        unit: "pages/s",
    });
}

/// A read-all page with fresh statistics and without any (as after a bulk import with
/// autovacuum behind): eventsrc, and the store's page statement with and without its pinned
/// plan.
async fn plans_rows(bench: &Bench, rows: &mut Vec<Row>) {
    const ROUNDS: usize = 4;
    let mut client = bench.client().await;
    let table = bench.table();
    let old = client
        .prepare(bench.store.__sql("read_all").expect("the page statement"))
        .await
        .expect("prepares");
    let starts = random_positions(&client, &table, 200, 10_000).await;
    for (page, count) in [(1_000, 200), (10_000, 40)] {
        let starts = &starts[..count.min(starts.len())];
        let mut times = PageTimes::default();
        for round in 0..ROUNDS {
            let part = &starts[round * starts.len() / ROUNDS..(round + 1) * starts.len() / ROUNDS];
            times += time_pages(bench, &mut client, &old, part, page).await;
        }
        let what = format!("read-all page of {page} at random positions, fresh statistics");
        page_rows(rows, &what, starts.len(), &times);
    }
    // Forget the statistics, and keep autovacuum from gathering them again meanwhile.
    client
        .batch_execute(&format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false); \
             DELETE FROM pg_statistic WHERE starelid = '{table}'::regclass"
        ))
        .await
        .expect("forgets the statistics");
    // The plain statement sorts every remaining row for a page: a few pages only.
    let starts = &starts[..8.min(starts.len())];
    let mut times = PageTimes::default();
    for round in 0..2 {
        let part = &starts[round * starts.len() / 2..(round + 1) * starts.len() / 2];
        times += time_pages(bench, &mut client, &old, part, 1_000).await;
    }
    page_rows(
        rows,
        "read-all page of 1000 at random positions, no statistics",
        starts.len(),
        &times,
    );
    client
        .batch_execute(&format!(
            "ALTER TABLE {table} RESET (autovacuum_enabled); ANALYZE {table}"
        ))
        .await
        .expect("restores the statistics");
}

/// Raw: a hand-written loader. A plain SELECT of what any loader needs (type, schema version,
/// payload), a `match` on the type, serde_json straight into it, a fold.
async fn raw_load(client: &Client, select: &Statement, stream: &str) -> (Cart, i64) {
    let found = client.query(select, &[&stream]).await.expect("queries");
    let mut cart = Cart::default();
    let mut version = 0;
    for row in &found {
        match (row.get::<_, &str>(0), row.get::<_, i64>(1)) {
            ("ItemAdded", 1) => {
                let event: ItemAdded = serde_json::from_str(row.get(2)).expect("decodes");
                cart.on_item_added(&event);
            }
            (other, version) => panic!("unexpected {other} v{version}"),
        }
        version = row.get(3);
    }
    (cart, version)
}

async fn raw_loader(bench: &Bench, client: &Client) -> Statement {
    client
        .prepare(&format!(
            "SELECT event_type, schema_version, payload::text, stream_version FROM {} \
             WHERE tenant = 'default' AND stream = $1 ORDER BY stream_version",
            bench.table()
        ))
        .await
        .expect("prepares")
}

async fn load_row(bench: &Bench, rows: &mut Vec<Row>) {
    const ROUNDS: u64 = 4;
    let repository = Repository::new(bench.store.clone());
    let per_round = scale(300) / ROUNDS;
    let expected = repository.load::<Cart>(&7).await.expect("loads").state;
    let client = bench.client().await;
    let select = raw_loader(bench, &client).await;
    let name = stream(7).to_string();
    let (mut store_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..per_round {
            let cart = repository.load::<Cart>(&7).await.expect("loads");
            assert_eq!(cart.version, StreamVersion(1_000));
        }
        store_time += started.elapsed();
        let started = Instant::now();
        for _ in 0..per_round {
            let (cart, version) = raw_load(&client, &select, &name).await;
            assert_eq!(cart, expected);
            assert_eq!(version, 1_000);
        }
        raw_time += started.elapsed();
    }
    rows.push(Row {
        name: "load an aggregate of 1,000 events".into(),
        eventsrc: rate(per_round * ROUNDS, store_time),
        raw: rate(per_round * ROUNDS, raw_time),
        unit: "loads/s",
    });
}

/// One command on each of `commands` fresh aggregates of 1,000 events per side, the two sides
/// taking turns.
async fn command_row(bench: &Bench, rows: &mut Vec<Row>, streams: u64) {
    let commands = scale(200).min(streams.saturating_sub(10) / 2).max(1);
    let repository = Repository::new(bench.store.clone());
    let client = bench.client().await;
    let select = raw_loader(bench, &client).await;
    // Raw: the hand-written loader, the same decision, and one INSERT at the next version
    // (the unique index refuses it if another writer got there first), with the metadata the
    // repository stamps (causation and correlation: the command's id).
    let insert = client
        .prepare(&format!(
            "INSERT INTO {} (tenant, stream, category, stream_version, event_id, event_type, \
             schema_version, payload, metadata) \
             VALUES ('default', $1, 'cart', $2, $3, 'ItemAdded', 1, $4::text::json, $5::text::json)",
            bench.table()
        ))
        .await
        .expect("prepares");
    let (mut store_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for i in 0..commands {
        let started = Instant::now();
        let committed = repository
            .send(AddItem { cart: 10 + i }, Metadata::new())
            .await
            .expect("commits");
        store_time += started.elapsed();
        assert_eq!(committed.stream_version, StreamVersion(1_001));

        let name = stream(10 + commands + i).to_string();
        let started = Instant::now();
        let (cart, version) = raw_load(&client, &select, &name).await;
        let event = item(cart.items);
        let command_id = Uuid::now_v7();
        let metadata = serde_json::to_string(&Metadata::new().caused_by(command_id))
            .expect("encodes metadata");
        let payload = serde_json::to_string(&event).expect("encodes");
        client
            .execute(
                &insert,
                &[
                    &name,
                    &(version + 1),
                    &EventId::new().0,
                    &payload,
                    &metadata,
                ],
            )
            .await
            .expect("inserts");
        raw_time += started.elapsed();
    }
    rows.push(Row {
        name: format!(
            "command on a 1,000-event aggregate (load + decide + append), 1 client \
             ({:.1} ms vs {:.1} ms per command)",
            store_time.as_secs_f64() * 1e3 / commands as f64,
            raw_time.as_secs_f64() * 1e3 / commands as f64
        ),
        eventsrc: rate(commands, store_time),
        raw: rate(commands, raw_time),
        unit: "commands/s",
    });
}

/// Drops bench schemas left behind by runs that panicked more than an hour ago.
async fn sweep_stale(client: &Client, now: u64) {
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

fn main() {
    let url = match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            println!(
                "eventsrc-postgres bench: set {URL_VAR} (e.g. \
                 postgres://postgres@127.0.0.1:5432/test) to run it; nothing was measured."
            );
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let only = std::env::var("EVENTSRC_BENCH_ONLY").unwrap_or_default();
    let runs = |part: &str| only.is_empty() || only == part;
    // Minutes at scale 1: only on request.
    let rebuild = only == "rebuild";
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    let server = runtime.block_on(async {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let random = EventId::new().0.simple().to_string();
        let schema = format!("eventsrc_bench_{now}_{}", &random[random.len() - 12..]);
        let store = PgEventStore::connect_with(
            &url,
            PgOptions::default()
                .schema(&schema)
                .application_name("eventsrc-bench"),
        )
        .await
        .expect("connects");
        let bench = Bench { url, schema, store };
        let admin = bench.client().await;
        sweep_stale(&admin, now).await;
        let server: String = admin
            .query_one(
                "SELECT current_setting('server_version') || ', synchronous_commit=' || \
                 current_setting('synchronous_commit')",
                &[],
            )
            .await
            .expect("asks the version")
            .get(0);

        if runs("append") {
            append_rows(&bench, &mut rows).await;
        }
        if runs("concurrent") {
            concurrent_rows(&bench, &mut rows).await;
        }
        if runs("indexes") {
            indexes_rows(&bench, &mut rows).await;
            notify_rows(&bench, &mut rows).await;
        }
        if runs("scan") || runs("load") || runs("command") || runs("plans") || rebuild {
            let streams = scale(1_000_000) / 1_000;
            seed(&bench, streams).await;
            if runs("scan") {
                scan_row(&bench, &mut rows, streams * 1_000).await;
            }
            if runs("load") {
                load_row(&bench, &mut rows).await;
            }
            if runs("plans") {
                plans_rows(&bench, &mut rows).await;
            }
            // Before `command`, which appends to the seeded log.
            if rebuild {
                read_side::rebuild_rows(&bench, &mut rows, streams * 1_000).await;
            }
            if runs("command") {
                command_row(&bench, &mut rows, streams).await;
            }
        }
        if runs("latency") {
            read_side::latency_figures(&bench, &mut figures).await;
        }

        let Bench { store, schema, .. } = bench;
        drop(store);
        admin
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .expect("drops the bench schema");
        server
    });
    println!("\n| PostgreSQL {server} | eventsrc | raw tokio-postgres | eventsrc / raw |");
    println!("|---|---:|---:|---:|");
    // Small figures (records, microseconds) keep a decimal.
    let figure = |value: f64| match value {
        v if v < 100.0 => format!("{v:.1}"),
        v => format!("{v:.0}"),
    };
    for row in rows {
        println!(
            "| {} | {} {} | {} {} | {:.2} |",
            row.name,
            figure(row.eventsrc),
            row.unit,
            figure(row.raw),
            row.unit,
            row.eventsrc / row.raw
        );
    }
    if !figures.is_empty() {
        println!("\n| read side, PostgreSQL {server} | eventsrc |");
        println!("|---|---:|");
        for figure in figures {
            println!("| {} | {} |", figure.name, figure.value);
        }
    }
}
