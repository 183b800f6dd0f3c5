//! eventsrc-sqlite beside the raw limit of SQLite through the same driver (rusqlite): the same
//! rows inserted into the same table with plain `INSERT`s, the same stream read with a plain
//! `SELECT`. Prints one table.
//!
//! The read side beside hand-written rusqlite too: a projection rebuilt into a table through
//! `Runner` + `SqliteReadModel`, and the live latency from an append to the read model.
//!
//! Run with: `cargo bench -p eventsrc-sqlite` (durable commits, `synchronous=FULL`).
//! `EVENTSRC_BENCH_SCALE=0.1` shrinks every workload (e.g. for a quick look); the README's
//! figures use the default scale of 1. `EVENTSRC_BENCH_ONLY=rebuild` (or append, concurrent,
//! load, snapshots, scan, pages, latency) runs one part. `pages` pages the whole log through
//! `read_all` beside one streaming `SELECT` of the same rows, in alternating rounds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eventsrc::Runner;
use eventsrc::store::ReadAll;
use eventsrc::{
    Decision, Event, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent,
    Repository, StreamId, StreamVersion, aggregate, command,
};
use eventsrc_sqlite::rusqlite::Transaction;
use eventsrc_sqlite::{SqliteEventStore, SqliteProjection, SqliteReadModel};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

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

/// The same cart, snapshotted every 100 events (the `snapshots` part).
#[derive(Default, Debug, PartialEq, Serialize, Deserialize)]
struct SnapshottedCart {
    items: u64,
    total_cents: u64,
}

#[aggregate(id = u64, name = "cart", snapshot = 1, snapshot_every = 100)]
impl SnapshottedCart {
    fn on_item_added(&mut self, event: &ItemAdded) {
        self.items += u64::from(event.quantity);
        self.total_cents += event.price_cents * u64::from(event.quantity);
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
    NewEvent::from_event(&item(n), eventsrc::Metadata::new()).expect("encodes")
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

/// A fresh database file with the eventsrc schema, in a directory removed on drop.
struct Db(PathBuf);

impl Db {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("eventsrc-bench-{}", eventsrc::EventId::new()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }
    fn file(&self) -> PathBuf {
        self.0.join("bench.db")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A raw connection configured as the store configures its writer.
fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("opens");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("full");
    conn.busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    conn
}

const RAW_INSERT: &str = "INSERT INTO events (position, commit_seq, tenant, stream, category, \
    stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at) \
    VALUES (?1, ?1, 'default', ?2, 'cart', ?3, ?4, 'ItemAdded', 1, ?5, NULL, ?6)";

/// Raw: `events` rows in transactions of `batch`, each row the same shape the store writes.
fn raw_append_streams(
    conn: &mut Connection,
    streams: u64,
    total: u64,
    batch: u64,
    first_position: &mut i64,
    offset: u64,
) {
    let mut versions = vec![0i64; streams as usize];
    let mut n = 0;
    while n < total {
        let s = (n / batch) % streams;
        let tx = conn.transaction().expect("begins");
        {
            let mut insert = tx.prepare_cached(RAW_INSERT).expect("prepares");
            for _ in 0..batch {
                versions[s as usize] += 1;
                let payload = serde_json::to_string(&item(n)).expect("encodes");
                insert
                    .execute(params![
                        *first_position,
                        format!("cart-{}", offset + s),
                        versions[s as usize],
                        eventsrc::EventId::new().0.as_bytes(),
                        payload,
                        eventsrc::Timestamp::now().as_micros()
                    ])
                    .expect("inserts");
                *first_position += 1;
                n += 1;
            }
        }
        tx.commit().expect("commits");
    }
}

async fn store_append(store: &SqliteEventStore, streams: u64, total: u64, batch: u64, offset: u64) {
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

async fn append_rows(rows: &mut Vec<Row>) {
    // fsync latency drifts on a virtual machine; both sides run in alternating rounds on their
    // own files so that drift falls on both alike.
    const ROUNDS: u64 = 4;
    for (batch, total) in [
        (1, scale(4_000)),
        (10, scale(20_000)),
        (100, scale(100_000)),
    ] {
        let (store_db, raw_db) = (Db::new(), Db::new());
        let store = SqliteEventStore::open(store_db.file())
            .await
            .expect("opens");
        drop(
            SqliteEventStore::open(raw_db.file())
                .await
                .expect("creates the schema"),
        );
        let mut conn = raw(&raw_db.file());
        let (mut store_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
        let per_round = total / ROUNDS;
        let mut raw_position = 1;
        for round in 0..ROUNDS {
            // Both sides start every round with a cold page cache. SQLite as rusqlite bundles
            // it (SQLITE_ENABLE_MEMORY_MANAGEMENT) keeps one page-cache budget for every
            // connection of the process: the side that ran last keeps the idle side's pages,
            // and the idle side, once below its own share, frees each page as soon as it is
            // done with it (measured: 3-5 re-reads per inserted row on eventsrc's writer after
            // a raw round, 377k reads against 6k per 100k events). Releasing the pages of every
            // connection (`sqlite3_db_release_memory`) between rounds keeps the two apart.
            conn.release_memory().expect("releases the page cache");
            let started = Instant::now();
            // Fresh streams each round, so the expected versions stay the store's own.
            store_append(&store, 100, per_round, batch, round * 1_000).await;
            store_time += started.elapsed();
            conn.release_memory().expect("releases the page cache");
            let started = Instant::now();
            raw_append_streams(
                &mut conn,
                100,
                per_round,
                batch,
                &mut raw_position,
                round * 1_000,
            );
            raw_time += started.elapsed();
        }
        rows.push(Row {
            name: format!("append, 1 writer, batches of {batch}"),
            eventsrc: rate(per_round * ROUNDS, store_time),
            raw: rate(per_round * ROUNDS, raw_time),
            unit: "events/s",
        });
        drop(store);
    }
}

async fn concurrent_rows(rows: &mut Vec<Row>) {
    const WRITERS: u64 = 8;
    for (batch, per_writer) in [(1, scale(500)), (100, scale(10_000))] {
        let db = Db::new();
        let store = SqliteEventStore::open(db.file()).await.expect("opens");
        let started = Instant::now();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(
                    async move { store_append(&store, 1, per_writer, batch, w * 1000).await },
                )
            })
            .collect();
        for task in tasks {
            task.await.expect("writer finished");
        }
        let eventsrc = rate(WRITERS * per_writer, started.elapsed());
        drop(store);

        // Raw: one connection per writer thread, each INSERT batch its own transaction; SQLite
        // serializes them on its write lock.
        let db = Db::new();
        drop(
            SqliteEventStore::open(db.file())
                .await
                .expect("creates the schema"),
        );
        let path = db.file();
        let started = Instant::now();
        std::thread::scope(|scope| {
            for w in 0..WRITERS {
                let path = &path;
                scope.spawn(move || {
                    let mut conn = raw(path);
                    // Distinct position ranges per writer, so rows never collide.
                    let mut position = (w * 10_000_000 + 1) as i64;
                    let mut versions = 0i64;
                    for chunk in 0..per_writer / batch {
                        let tx = conn
                            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                            .expect("begins");
                        {
                            let mut insert = tx.prepare_cached(RAW_INSERT).expect("prepares");
                            for i in 0..batch {
                                versions += 1;
                                let payload = serde_json::to_string(&item(chunk * batch + i))
                                    .expect("encodes");
                                insert
                                    .execute(params![
                                        position,
                                        format!("cart-{}", w * 1000),
                                        versions,
                                        eventsrc::EventId::new().0.as_bytes(),
                                        payload,
                                        eventsrc::Timestamp::now().as_micros()
                                    ])
                                    .expect("inserts");
                                position += 1;
                            }
                        }
                        tx.commit().expect("commits");
                    }
                });
            }
        });
        let raw = rate(WRITERS * per_writer, started.elapsed());
        rows.push(Row {
            name: format!("append, {WRITERS} writers on distinct streams, batches of {batch}"),
            eventsrc,
            raw,
            unit: "events/s",
        });
    }
}

/// Loads of a 10,000-event cart per second, without and with a snapshot (taken at the last
/// event, as `snapshot_every = 100` leaves it for a stream whose length is a multiple of 100).
async fn snapshot_rows() -> (u64, f64, f64) {
    const EVENTS: u64 = 10_000;
    let db = Db::new();
    let store = SqliteEventStore::open(db.file()).await.expect("opens");
    store_append(&store, 1, EVENTS, 100, 9).await;
    let plain = Repository::new(store.clone());
    let snapshotted = Repository::new(store.clone()).with_snapshots(store.clone());
    let taken = snapshotted
        .snapshot::<SnapshottedCart>(&9)
        .await
        .expect("snapshots");
    assert_eq!(taken, Some(StreamVersion(EVENTS)));
    let from_events = plain.load::<Cart>(&9).await.expect("loads").state;
    let from_snapshot = snapshotted
        .load::<SnapshottedCart>(&9)
        .await
        .expect("loads")
        .state;
    assert_eq!(
        (from_events.items, from_events.total_cents),
        (from_snapshot.items, from_snapshot.total_cents)
    );
    let rounds = scale(50);
    let started = Instant::now();
    for _ in 0..rounds {
        plain.load::<Cart>(&9).await.expect("loads");
    }
    let without = rate(rounds, started.elapsed());
    let rounds = scale(5_000);
    let started = Instant::now();
    for _ in 0..rounds {
        snapshotted
            .load::<SnapshottedCart>(&9)
            .await
            .expect("loads");
    }
    let with = rate(rounds, started.elapsed());
    (EVENTS, without, with)
}

async fn load_row(rows: &mut Vec<Row>) {
    let db = Db::new();
    let store = SqliteEventStore::open(db.file()).await.expect("opens");
    store_append(&store, 1, 1_000, 100, 7).await;
    let repository = Repository::new(store.clone());
    let rounds = scale(300);
    let expected = repository.load::<Cart>(&7).await.expect("loads").state;
    let started = Instant::now();
    for _ in 0..rounds {
        let cart = repository.load::<Cart>(&7).await.expect("loads");
        assert_eq!(cart.version, StreamVersion(1_000));
    }
    let eventsrc = rate(rounds, started.elapsed());
    if std::env::var("EVENTSRC_BENCH_DETAIL").is_ok() {
        let started = Instant::now();
        for _ in 0..rounds {
            store
                .visit_stream(&stream(7), eventsrc::store::ReadStream::forward(), |_| {
                    Ok::<(), eventsrc::StoreError>(())
                })
                .await
                .expect("visits");
        }
        eprintln!(
            "visit only: {:?} per load",
            started.elapsed() / rounds as u32
        );
        let started = Instant::now();
        for _ in 0..rounds {
            store.stream_version(&stream(7)).await.expect("a version");
        }
        eprintln!("a trivial read: {:?}", started.elapsed() / rounds as u32);
        let conn = raw(&db.file());
        for sql in [
            "SELECT position, commit_seq, stream, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version >= ?3 ORDER BY stream_version ASC LIMIT ?4",
            "SELECT payload FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version >= ?3 ORDER BY stream_version ASC LIMIT ?4",
            "SELECT payload FROM events WHERE tenant = ?1 AND stream = ?2 ORDER BY stream_version",
            "SELECT stream_version, event_type, schema_version, payload FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version >= ?3 ORDER BY stream_version ASC LIMIT ?4",
            "SELECT position, stream_version, event_type, schema_version, payload FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version >= ?3 ORDER BY stream_version ASC LIMIT ?4",
            "SELECT position, commit_seq, NULL, stream_version, event_id, event_type, schema_version, payload, NULL, recorded_at FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version >= ?3 ORDER BY stream_version ASC LIMIT ?4",
        ] {
            let started = Instant::now();
            for _ in 0..rounds {
                let mut select = conn.prepare_cached(sql).expect("prepares");
                let limit: i64 = -1;
                let mut rows = if sql.contains("?4") {
                    select
                        .query(params!["default", "cart-7", 1, limit])
                        .expect("queries")
                } else {
                    select.query(params!["default", "cart-7"]).expect("queries")
                };
                while let Some(row) = rows.next().expect("a row") {
                    for c in 0..row.as_ref().column_count() {
                        std::hint::black_box(row.get_ref(c).expect("col"));
                    }
                }
            }
            eprintln!("{:?} per run: {sql}", started.elapsed() / rounds as u32);
        }
    }

    // Raw: a hand-written loader. A plain SELECT of what any loader needs (type, schema
    // version, payload), a `match` on the type, serde_json straight into it, a fold.
    let conn = raw(&db.file());
    let started = Instant::now();
    for _ in 0..rounds {
        let mut select = conn
            .prepare_cached(
                "SELECT event_type, schema_version, payload FROM events \
                 WHERE tenant = 'default' AND stream = 'cart-7' ORDER BY stream_version",
            )
            .expect("prepares");
        let mut rows = select.query([]).expect("queries");
        let mut cart = Cart::default();
        while let Some(row) = rows.next().expect("a row") {
            let text = |i: usize| row.get_ref(i).expect("a column").as_str().expect("text");
            let schema_version: i64 = row.get(1).expect("a version");
            match (text(0), schema_version) {
                ("ItemAdded", 1) => {
                    let event: ItemAdded = serde_json::from_str(text(2)).expect("decodes");
                    cart.on_item_added(&event);
                }
                (other, version) => panic!("unexpected {other} v{version}"),
            }
        }
        assert_eq!(cart, expected);
    }
    let raw = rate(rounds, started.elapsed());
    rows.push(Row {
        name: "load an aggregate of 1,000 events".into(),
        eventsrc,
        raw,
        unit: "loads/s",
    });
    drop(store);
}

/// A database of `scale(1_000_000)` events in 1,000 carts, for the scan and the rebuild.
async fn filled() -> (Db, u64) {
    let total = scale(1_000_000);
    let db = Db::new();
    let store = SqliteEventStore::open_with(
        db.file(),
        eventsrc_sqlite::SqliteOptions::default().durability(eventsrc_sqlite::Durability::Normal),
    )
    .await
    .expect("opens");
    store_append(&store, 1_000, total, 1_000, 0).await;
    (db, total)
}

async fn scan_row(rows: &mut Vec<Row>, db: &Db, total: u64) {
    let store = SqliteEventStore::open(db.file()).await.expect("opens");
    let started = Instant::now();
    let (mut after, mut seen) = (GlobalPosition::START, 0u64);
    loop {
        let page = store
            .read_all(ReadAll::after(after).limit(10_000))
            .await
            .expect("reads");
        let Some(last) = page.last() else { break };
        after = last.global_position;
        seen += page.len() as u64;
    }
    assert_eq!(seen, total);
    let eventsrc = rate(total, started.elapsed());

    // Raw: one ordered scan of the same rows, every column into owned values.
    let conn = raw(&db.file());
    let started = Instant::now();
    assert_eq!(raw_scan(&conn), total);
    let raw = rate(total, started.elapsed());
    rows.push(Row {
        name: format!("read-all scan of {total} events"),
        eventsrc,
        raw,
        unit: "events/s",
    });
    drop(store);
}

/// Every column of an event row into owned values: what a complete event is made of. The
/// columns are those of the store's event queries, in their order.
fn owned_row(row: &rusqlite::Row<'_>) {
    let numbers: [i64; 5] = [0, 1, 3, 6, 9].map(|c| row.get(c).expect("a number"));
    let stream: String = row.get(2).expect("stream");
    let id: Vec<u8> = row.get(4).expect("id");
    let event_type: String = row.get(5).expect("type");
    let payload: String = row.get(7).expect("payload");
    let metadata: Option<String> = row.get(8).expect("metadata");
    std::hint::black_box((numbers, stream, id, event_type, payload, metadata));
}

/// Raw: the whole log in one streaming `SELECT` in position order; the rows read.
fn raw_scan(conn: &Connection) -> u64 {
    let mut select = conn
        .prepare_cached(
            "SELECT position, commit_seq, stream, stream_version, event_id, event_type, \
             schema_version, payload, metadata, recorded_at FROM events \
             WHERE tenant = 'default' ORDER BY position",
        )
        .expect("prepares");
    let mut rows = select.query([]).expect("queries");
    let mut seen = 0u64;
    while let Some(row) = rows.next().expect("a row") {
        owned_row(row);
        seen += 1;
    }
    seen
}

/// Raw: the log in pages of `page` through the very statement the store prepares for a page,
/// each page a query of its own, as the store runs them; the rows read.
fn raw_pages(conn: &Connection, page: u64) -> u64 {
    let statements = eventsrc_sqlite::event_statements();
    let (_, sql) = statements
        .iter()
        .find(|(name, _)| *name == "read_all")
        .expect("the store's page statement");
    let mut select = conn.prepare_cached(sql).expect("prepares");
    let (mut after, mut seen) = (0i64, 0u64);
    loop {
        let mut rows = select
            .query(params!["default", after, page])
            .expect("queries");
        let mut read = 0;
        while let Some(row) = rows.next().expect("a row") {
            owned_row(row);
            after = row.get(0).expect("position");
            read += 1;
        }
        if read == 0 {
            return seen;
        }
        seen += read;
    }
}

/// eventsrc: the log in pages of `page` through `read_all`; the events read.
async fn store_pages(store: &SqliteEventStore, page: u64) -> u64 {
    let (mut after, mut seen) = (GlobalPosition::START, 0u64);
    loop {
        let events = store
            .read_all(ReadAll::after(after).limit(page as usize))
            .await
            .expect("reads");
        let Some(last) = events.last() else {
            return seen;
        };
        after = last.global_position;
        seen += events.len() as u64;
    }
}

/// One row of the `pages` table: rates of each round, eventsrc's beside the baseline's.
struct PagesRow {
    name: String,
    eventsrc: Vec<f64>,
    baseline: Vec<f64>,
}

/// Rounds of the `pages` part.
const PAGE_ROUNDS: usize = 3;

/// eventsrc paging the whole log beside one streaming `SELECT` of the same rows (and a raw
/// reader paging with the store's own statement, which shows what paging itself costs), in
/// alternating rounds on warm caches.
async fn pages_rows(rows: &mut Vec<PagesRow>, db: &Db, total: u64) {
    let store = SqliteEventStore::open(db.file()).await.expect("opens");
    let conn = raw(&db.file());
    // Warm the OS cache and both connections once before measuring.
    assert_eq!(raw_scan(&conn), total);
    assert_eq!(store_pages(&store, 10_000).await, total);
    for page in [1_000, 10_000] {
        let mut row = PagesRow {
            name: format!(
                "page the log of {total} events, pages of {page}: eventsrc / one `SELECT`"
            ),
            eventsrc: Vec::new(),
            baseline: Vec::new(),
        };
        let mut paged = PagesRow {
            name: "the same, raw pages with the store's statement / one `SELECT`".to_owned(),
            eventsrc: Vec::new(),
            baseline: Vec::new(),
        };
        for round in 0..PAGE_ROUNDS {
            // Alternate which side goes first, so drift on the machine falls on both.
            let sides: [u8; 3] = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
            let (mut ours, mut scan, mut raw_paged) = (0.0, 0.0, 0.0);
            for side in sides {
                let started = Instant::now();
                let seen = match side {
                    0 => store_pages(&store, page).await,
                    1 => raw_scan(&conn),
                    _ => raw_pages(&conn, page),
                };
                assert_eq!(seen, total);
                let rate = rate(total, started.elapsed());
                match side {
                    0 => ours = rate,
                    1 => scan = rate,
                    _ => raw_paged = rate,
                }
            }
            row.eventsrc.push(ours);
            row.baseline.push(scan);
            paged.eventsrc.push(raw_paged);
            paged.baseline.push(scan);
        }
        rows.push(row);
        rows.push(paged);
    }
    drop(store);
}

/// `low–high` of `values`, formatted by `show`.
fn range(values: &[f64], show: impl Fn(f64) -> String) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{}–{}", show(low), show(high))
}

/// Items and revenue per cart: an additive read model, so applying an event twice would show.
struct CartTotals {
    table: &'static str,
    /// The upsert, written once rather than per event.
    upsert: String,
}

impl CartTotals {
    fn into(table: &'static str) -> Self {
        let upsert = format!(
            "INSERT INTO {table} (cart, items, total_cents) VALUES (?1, ?2, ?3) ON CONFLICT (cart) \
             DO UPDATE SET items = items + excluded.items, total_cents = total_cents + excluded.total_cents"
        );
        Self { table, upsert }
    }
}

impl SqliteProjection for CartTotals {
    const NAME: &'static str = "cart_totals";
    type Event = ItemAdded;
    type Error = rusqlite::Error;

    fn setup(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (cart TEXT PRIMARY KEY, items INTEGER NOT NULL, \
             total_cents INTEGER NOT NULL)",
            self.table
        ))
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        added: ItemAdded,
        record: &RecordedEvent,
    ) -> rusqlite::Result<()> {
        let quantity = i64::from(added.quantity);
        tx.prepare_cached(&self.upsert)?
            .execute(params![
                record.stream.as_str(),
                quantity,
                quantity * added.price_cents as i64
            ])
            .map(drop)
    }
}

/// Items over every event `0..total` (what every cart total must add up to).
fn items_in(total: u64) -> i64 {
    (0..total).map(|n| i64::from(item(n).quantity)).sum()
}

fn items_in_table(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT SUM(items) FROM {table}"), [], |r| r.get(0))
        .expect("sums")
}

/// Events per rebuild transaction on both sides.
const REBUILD_BATCH: usize = 1_000;

async fn rebuild_row(rows: &mut Vec<Row>, db: &Db, total: u64) {
    let store = SqliteEventStore::open(db.file()).await.expect("opens");
    let model = SqliteReadModel::new(CartTotals::into("cart_totals"), store.clone());
    let mut runner = Runner::new(store.clone(), model).batch_size(REBUILD_BATCH);
    let started = Instant::now();
    let progress = runner.catch_up().await.expect("rebuilds");
    let eventsrc = rate(total, started.elapsed());
    assert_eq!(progress.handled, total);
    drop(runner);

    // Raw: a hand-written rebuilder on one connection. Pages of the log in position order,
    // serde_json into the event, the same upsert, the checkpoint, one transaction per page.
    let mut conn = raw(&db.file());
    conn.execute_batch(
        "CREATE TABLE raw_totals (cart TEXT PRIMARY KEY, items INTEGER NOT NULL, total_cents INTEGER NOT NULL)",
    )
    .expect("creates");
    conn.release_memory().expect("releases the page cache");
    let started = Instant::now();
    let mut after = 0i64;
    loop {
        let tx = conn.transaction().expect("begins");
        let mut read = 0;
        {
            let mut select = tx
                .prepare_cached(
                    "SELECT position, stream, event_type, schema_version, payload FROM events \
                     WHERE tenant = 'default' AND position > ?1 ORDER BY position LIMIT ?2",
                )
                .expect("prepares");
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO raw_totals (cart, items, total_cents) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (cart) DO UPDATE SET items = items + excluded.items, \
                     total_cents = total_cents + excluded.total_cents",
                )
                .expect("prepares");
            let mut page = select
                .query(params![after, REBUILD_BATCH as i64])
                .expect("queries");
            while let Some(row) = page.next().expect("a row") {
                let text = |i: usize| row.get_ref(i).expect("a column").as_str().expect("text");
                after = row.get(0).expect("a position");
                let version: i64 = row.get(3).expect("a version");
                assert_eq!((text(2), version), ("ItemAdded", 1));
                let added: ItemAdded = serde_json::from_str(text(4)).expect("decodes");
                let quantity = i64::from(added.quantity);
                upsert
                    .execute(params![
                        text(1),
                        quantity,
                        quantity * added.price_cents as i64
                    ])
                    .expect("upserts");
                read += 1;
            }
            tx.execute(
                "INSERT INTO checkpoints (tenant, subscriber, commit_seq, sequence) \
                 VALUES ('default', 'raw_totals', ?1, ?1) ON CONFLICT (tenant, subscriber) \
                 DO UPDATE SET commit_seq = excluded.commit_seq, sequence = excluded.sequence",
                [after],
            )
            .expect("checkpoints");
        }
        tx.commit().expect("commits");
        if read < REBUILD_BATCH {
            break;
        }
    }
    let raw = rate(total, started.elapsed());
    let expected = items_in(total);
    assert_eq!(items_in_table(&conn, "cart_totals"), expected);
    assert_eq!(items_in_table(&conn, "raw_totals"), expected);
    rows.push(Row {
        name: format!(
            "projection rebuild of {total} events into a table (`Runner` + `SqliteReadModel`, {REBUILD_BATCH} per transaction)"
        ),
        eventsrc,
        raw,
        unit: "events/s",
    });

    // The same model summing each batch per cart first (`apply_batch`), beside the scan.
    let model = SqliteReadModel::new(
        BatchedCartTotals(CartTotals::into("batched_totals")),
        store.clone(),
    );
    let mut runner = Runner::new(store.clone(), model).batch_size(REBUILD_BATCH);
    let started = Instant::now();
    let progress = runner.catch_up().await.expect("rebuilds");
    let batched = rate(total, started.elapsed());
    assert_eq!(progress.handled, total);
    assert_eq!(items_in_table(&conn, "batched_totals"), expected);
    let started = Instant::now();
    let (mut after, mut seen) = (GlobalPosition::START, 0u64);
    loop {
        let page = store
            .read_all(ReadAll::after(after).limit(REBUILD_BATCH))
            .await
            .expect("reads");
        let Some(last) = page.last() else { break };
        after = last.global_position;
        seen += page.len() as u64;
    }
    assert_eq!(seen, total);
    let scan = rate(total, started.elapsed());
    rows.push(Row {
        name: format!(
            "projection rebuild of {total} events, `apply_batch` summing each batch per cart, beside eventsrc's read-all scan in pages of {REBUILD_BATCH} (the \"raw\" column)"
        ),
        eventsrc: batched,
        raw: scan,
        unit: "events/s",
    });
    drop(store);
}

/// [`CartTotals`] summing a batch per cart in memory, then one upsert per cart.
struct BatchedCartTotals(CartTotals);

impl SqliteProjection for BatchedCartTotals {
    const NAME: &'static str = "batched_totals";
    type Event = ItemAdded;
    type Error = rusqlite::Error;

    fn setup(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.0.setup(tx)
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        added: ItemAdded,
        record: &RecordedEvent,
    ) -> rusqlite::Result<()> {
        self.0.apply(tx, added, record)
    }

    fn apply_batch(
        &mut self,
        tx: &Transaction<'_>,
        events: Vec<(ItemAdded, &RecordedEvent)>,
    ) -> Result<(), eventsrc_sqlite::BatchError<rusqlite::Error>> {
        let mut sums: std::collections::HashMap<&str, (i64, i64)> =
            std::collections::HashMap::new();
        for (added, record) in &events {
            let quantity = i64::from(added.quantity);
            let sum = sums.entry(record.stream.as_str()).or_default();
            sum.0 += quantity;
            sum.1 += quantity * added.price_cents as i64;
        }
        let mut upsert = tx.prepare_cached(&self.0.upsert)?;
        for (cart, (items, cents)) in sums {
            upsert.execute(params![cart, items, cents])?;
        }
        Ok(())
    }
}

/// p50 and p99 of a set of latencies.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

struct Latency {
    name: &'static str,
    p50: Duration,
    p99: Duration,
}

async fn latency_rows(latencies: &mut Vec<Latency>) {
    const WARM_UP: u64 = 20;
    let samples = scale(2_000);

    // A live runner: append, then wait for the read model's progress to pass it.
    let db = Db::new();
    let store = SqliteEventStore::open(db.file()).await.expect("opens");
    let runner = Runner::new(
        store.clone(),
        SqliteReadModel::new(CartTotals::into("cart_totals"), store.clone()),
    );
    let progress = runner.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        stopped.await.ok();
    }));
    let (mut runner_samples, mut append_samples) = (Vec::new(), Vec::new());
    for n in 0..WARM_UP + samples {
        let started = Instant::now();
        let appended = store
            .append(&stream(n % 100), ExpectedVersion::Any, vec![new_event(n)])
            .await
            .expect("appends");
        let append_took = started.elapsed();
        progress
            .wait_for(appended.position, Duration::from_secs(30))
            .await
            .expect("the read model follows");
        if n >= WARM_UP {
            runner_samples.push(started.elapsed());
            append_samples.push(append_took);
        }
    }
    if std::env::var("EVENTSRC_BENCH_DETAIL").is_ok() {
        let (p50, p99) = percentiles(append_samples);
        eprintln!("of which the append: p50 {p50:?}, p99 {p99:?}");
    }
    stop.send(()).ok();
    task.await.expect("joins").expect("runs");
    let (p50, p99) = percentiles(runner_samples);
    latencies.push(Latency {
        name: "append → `SqliteReadModel` updated (runner woken by the append signal; two commits)",
        p50,
        p99,
    });
    drop(store);

    // An inline projection: the append returns with the read model updated.
    let db = Db::new();
    let store = SqliteEventStore::open(db.file()).await.expect("opens");
    store
        .catch_up_inline(CartTotals::into("cart_totals"))
        .await
        .expect("registers");
    let mut inline_samples = Vec::new();
    for n in 0..WARM_UP + samples {
        let started = Instant::now();
        store
            .append(&stream(n % 100), ExpectedVersion::Any, vec![new_event(n)])
            .await
            .expect("appends");
        if n >= WARM_UP {
            inline_samples.push(started.elapsed());
        }
    }
    let (p50, p99) = percentiles(inline_samples);
    latencies.push(Latency {
        name: "append with an inline projection (one commit)",
        p50,
        p99,
    });
    drop(store);

    // Raw: the floor of two durable commits in a row, an event and then a read model row.
    let db = Db::new();
    drop(
        SqliteEventStore::open(db.file())
            .await
            .expect("creates the schema"),
    );
    let conn = raw(&db.file());
    conn.execute_batch(
        "CREATE TABLE raw_totals (cart TEXT PRIMARY KEY, items INTEGER NOT NULL, total_cents INTEGER NOT NULL)",
    )
    .expect("creates");
    let mut raw_samples = Vec::new();
    for n in 0..WARM_UP + samples {
        let started = Instant::now();
        let payload = serde_json::to_string(&item(n)).expect("encodes");
        conn.prepare_cached(RAW_INSERT)
            .and_then(|mut insert| {
                insert.execute(params![
                    n as i64 + 1,
                    format!("cart-{}", n % 100),
                    n as i64 + 1,
                    eventsrc::EventId::new().0.as_bytes(),
                    payload,
                    eventsrc::Timestamp::now().as_micros()
                ])
            })
            .expect("inserts");
        let quantity = i64::from(item(n).quantity);
        conn.prepare_cached(
            "INSERT INTO raw_totals (cart, items, total_cents) VALUES (?1, ?2, ?3) \
             ON CONFLICT (cart) DO UPDATE SET items = items + excluded.items, \
             total_cents = total_cents + excluded.total_cents",
        )
        .and_then(|mut upsert| {
            upsert.execute(params![
                format!("cart-{}", n % 100),
                quantity,
                quantity * 129_900
            ])
        })
        .expect("upserts");
        if n >= WARM_UP {
            raw_samples.push(started.elapsed());
        }
    }
    let (p50, p99) = percentiles(raw_samples);
    latencies.push(Latency {
        name: "raw: `INSERT` event, then `UPSERT` row, two autocommits on one thread",
        p50,
        p99,
    });
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut rows = Vec::new();
    let mut latencies = Vec::new();
    let mut snapshots = None;
    let mut pages = Vec::new();
    // `EVENTSRC_BENCH_ONLY=load` (or append, concurrent, snapshots, scan, pages, rebuild,
    // latency) runs one part.
    let only = std::env::var("EVENTSRC_BENCH_ONLY").unwrap_or_default();
    let runs = |part: &str| only.is_empty() || only == part;
    runtime.block_on(async {
        if runs("append") {
            append_rows(&mut rows).await;
        }
        if runs("concurrent") {
            concurrent_rows(&mut rows).await;
        }
        if runs("load") {
            load_row(&mut rows).await;
        }
        if runs("snapshots") {
            snapshots = Some(snapshot_rows().await);
        }
        if runs("scan") || runs("pages") || runs("rebuild") {
            let (db, total) = filled().await;
            if runs("scan") {
                scan_row(&mut rows, &db, total).await;
            }
            if runs("pages") {
                pages_rows(&mut pages, &db, total).await;
            }
            if runs("rebuild") {
                rebuild_row(&mut rows, &db, total).await;
            }
        }
        if runs("latency") {
            latency_rows(&mut latencies).await;
        }
    });
    if !rows.is_empty() {
        println!("\n| SQLite (WAL, synchronous=FULL) | eventsrc | raw rusqlite | eventsrc / raw |");
        println!("|---|---:|---:|---:|");
        for row in rows {
            println!(
                "| {} | {:.0} {} | {:.0} {} | {:.2} |",
                row.name,
                row.eventsrc,
                row.unit,
                row.raw,
                row.unit,
                row.eventsrc / row.raw
            );
        }
    }
    if !pages.is_empty() {
        println!(
            "\n| paging the log, {PAGE_ROUNDS} alternating rounds | paged | one streaming `SELECT` | paged / one `SELECT` |"
        );
        println!("|---|---:|---:|---:|");
        let per_second = |v: f64| format!("{:.2} M", v / 1e6);
        for row in pages {
            let ratios: Vec<f64> = row
                .eventsrc
                .iter()
                .zip(&row.baseline)
                .map(|(ours, raw)| ours / raw)
                .collect();
            println!(
                "| {} | {} events/s | {} events/s | {} |",
                row.name,
                range(&row.eventsrc, per_second),
                range(&row.baseline, per_second),
                range(&ratios, |v| format!("{v:.2}"))
            );
        }
    }
    if let Some((events, without, with)) = snapshots {
        println!(
            "\n| load a {events}-event aggregate | without a snapshot | with a snapshot | speed-up |"
        );
        println!("|---|---:|---:|---:|");
        println!(
            "| `Repository::load` | {without:.0} loads/s ({:.2} ms) | {with:.0} loads/s ({:.3} ms) | {:.0}x |",
            1e3 / without,
            1e3 / with,
            with / without
        );
    }
    if !latencies.is_empty() {
        println!("\n| live read model latency (synchronous=FULL) | p50 | p99 |");
        println!("|---|---:|---:|");
        for latency in latencies {
            println!(
                "| {} | {:.0} µs | {:.0} µs |",
                latency.name,
                latency.p50.as_secs_f64() * 1e6,
                latency.p99.as_secs_f64() * 1e6
            );
        }
    }
}
