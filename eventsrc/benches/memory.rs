//! Benchmarks of the in-memory backend, each beside a hand-written baseline in the same
//! criterion group, so the cost eventsrc adds over "serde_json plus a `Vec`" is visible.
//!
//! - `append/*`: 100,000 shopping-cart events appended to a fresh [`MemoryStore`] spread over
//!   1,000 streams, in batches of 1, 10 and 100 events, each batch with the expected version a
//!   repository would send (`NoStream`, then `Exact`). Every event is encoded with serde_json
//!   and given a fresh id inside the measured loop, as `Repository::execute` does. The baseline
//!   encodes the same events the same way and pushes them into a minimal hand-written store
//!   that does what the store's contract asks of an append: a `Vec` of rows (with a fresh
//!   event id each and the append's time), a `HashMap` from stream name to row indexes with the
//!   same expected-version check, and a `HashMap` from event id to row (the lookup that makes
//!   a retried append a no-op), checked before anything is pushed.
//! - `load/*`: one cart of 1,000 events loaded through [`Repository::load`]. The baseline decodes
//!   the same 1,000 JSON payloads, kept as `String`s in a `Vec` beside their stored names, with
//!   `serde_json::from_str` straight into the typed event and folds them with the same `match`.
//!
//! - `snapshots/*`: one cart of 10,000 events loaded without a snapshot and with one (taken
//!   every 100 events, so the load reads the snapshot and nothing after it, or at most 99
//!   events).
//!
//! Both sides are checked to store (and fold to) the same thing before anything is measured.
//!
//! Run with `cargo bench -p eventsrc` (the whole run takes about a minute); pass a filter to run
//! one group, e.g. `cargo bench -p eventsrc -- load`. On a busy machine,
//! `EVENTSRC_BENCH_APPEND_ROUNDS=20` runs the append workloads in alternating rounds instead,
//! and `EVENTSRC_BENCH_APPEND_ONCE` (see [`append_once`]) one side once, for counting
//! instructions.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use eventsrc::store::ReadStream;
use eventsrc::{
    Aggregate, DecodeError, EncodeError, Event, EventId, EventStore, ExpectedVersion, MemoryStore,
    Metadata, NewEvent, Repository, StreamId, StreamVersion, Timestamp,
};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// Events appended by the `append` benchmarks.
const APPEND_EVENTS: usize = 100_000;
/// Streams the appended events are spread over.
const APPEND_STREAMS: usize = 1_000;
/// Events in the cart the `load` benchmarks read.
const LOAD_EVENTS: usize = 1_000;

/// Payload of [`CartEvent::ItemAdded`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ItemAdded {
    sku: String,
    quantity: u32,
    price_cents: u64,
}

/// Payload of [`CartEvent::ItemRemoved`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ItemRemoved {
    sku: String,
}

/// Payload of [`CartEvent::CheckedOut`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckedOut {
    total_cents: u64,
}

/// The events of a shopping cart.
#[derive(Debug, Clone)]
enum CartEvent {
    ItemAdded(ItemAdded),
    ItemRemoved(ItemRemoved),
    CheckedOut(CheckedOut),
}

impl Event for CartEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ItemAdded(_) => "ItemAdded",
            Self::ItemRemoved(_) => "ItemRemoved",
            Self::CheckedOut(_) => "CheckedOut",
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn encode(&self) -> Result<String, EncodeError> {
        let encoded = match self {
            Self::ItemAdded(fields) => serde_json::to_string(fields),
            Self::ItemRemoved(fields) => serde_json::to_string(fields),
            Self::CheckedOut(fields) => serde_json::to_string(fields),
        };
        encoded.map_err(|e| EncodeError::new(self.event_type(), e))
    }

    fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
        if version > 1 {
            return Err(DecodeError::FutureVersion {
                event_type: event_type.to_owned(),
                version,
                current: 1,
            });
        }
        let malformed = |e| DecodeError::malformed(event_type, version, e);
        match event_type {
            "ItemAdded" => serde_json::from_str(payload)
                .map(Self::ItemAdded)
                .map_err(malformed),
            "ItemRemoved" => serde_json::from_str(payload)
                .map(Self::ItemRemoved)
                .map_err(malformed),
            "CheckedOut" => serde_json::from_str(payload)
                .map(Self::CheckedOut)
                .map_err(malformed),
            other => Err(DecodeError::unknown(other, version)),
        }
    }
}

/// A shopping cart: what is in it and whether it was paid for.
#[derive(Debug, Default, PartialEq, Clone, Serialize, Deserialize)]
struct Cart {
    lines: u64,
    units: u64,
    value_cents: u64,
    removed: u64,
    paid_cents: Option<u64>,
}

/// The cart's domain error (unused here: the benchmarks decide no commands).
#[derive(Debug, thiserror::Error)]
#[error("the cart is already checked out")]
struct AlreadyCheckedOut;

impl Aggregate for Cart {
    const TYPE: &'static str = "cart";
    type Id = usize;
    type Event = CartEvent;
    type Error = AlreadyCheckedOut;

    fn apply(&mut self, event: &CartEvent) {
        fold(self, event);
    }
}

/// The one fold both sides share: a plain `match`.
fn fold(cart: &mut Cart, event: &CartEvent) {
    match event {
        CartEvent::ItemAdded(added) => {
            cart.lines += 1;
            cart.units += u64::from(added.quantity);
            cart.value_cents += u64::from(added.quantity) * added.price_cents;
        }
        CartEvent::ItemRemoved(_) => {
            cart.lines = cart.lines.saturating_sub(1);
            cart.removed += 1;
        }
        CartEvent::CheckedOut(checked_out) => cart.paid_cents = Some(checked_out.total_cents),
    }
}

/// The `n`th event of a cart of `len` events: mostly additions, every tenth a removal, the last
/// a checkout.
fn cart_event(n: usize, len: usize) -> CartEvent {
    if n + 1 == len {
        CartEvent::CheckedOut(CheckedOut {
            total_cents: 1_299 * n as u64,
        })
    } else if n % 10 == 9 {
        CartEvent::ItemRemoved(ItemRemoved {
            sku: format!("SKU-{:06}", n - 1),
        })
    } else {
        CartEvent::ItemAdded(ItemAdded {
            sku: format!("SKU-{n:06}"),
            quantity: (n % 5) as u32 + 1,
            price_cents: 199 + (n as u64 % 100) * 25,
        })
    }
}

/// The stream each batch of an append run goes to: round robin over the streams, so that every
/// stream is appended to again and again at a growing expected version.
fn batch_stream(batch: usize) -> usize {
    batch % APPEND_STREAMS
}

/// The baseline's row: what a minimal store keeps per event to meet the store's contract.
struct Row {
    event_id: EventId,
    stream: Arc<str>,
    version: u64,
    event_type: &'static str,
    payload: String,
    recorded_at: Timestamp,
}

/// The baseline store: rows in order, per stream the indexes of its rows, and where each event
/// id is stored (what idempotent appends look up).
#[derive(Default)]
struct BaselineStore {
    rows: Vec<Row>,
    streams: HashMap<Arc<str>, Vec<usize>>,
    // foldhash rather than SipHash, as the store hashes ids with a multiply: v7 ids are random
    // enough that a keyed hash buys nothing, and the baseline should not pay for one either.
    ids: HashMap<EventId, usize, foldhash::fast::RandomState>,
}

/// An event as the baseline appends it: a fresh id, its name and its serde_json payload.
type BaselineEvent = (EventId, &'static str, String);

impl BaselineStore {
    /// Appends `batch` to `stream` if the stream is at version `expected` and none of its ids
    /// is stored; returns the new version.
    fn append(
        &mut self,
        stream: &Arc<str>,
        expected: u64,
        batch: Vec<BaselineEvent>,
    ) -> Option<u64> {
        if batch.iter().any(|(id, _, _)| self.ids.contains_key(id)) {
            return None;
        }
        let indexes = self.streams.entry(Arc::clone(stream)).or_default();
        if indexes.len() as u64 != expected {
            return None;
        }
        let recorded_at = Timestamp::now();
        for (event_id, event_type, payload) in batch {
            self.ids.insert(event_id, self.rows.len());
            indexes.push(self.rows.len());
            self.rows.push(Row {
                event_id,
                stream: Arc::clone(stream),
                version: indexes.len() as u64,
                event_type,
                payload,
                recorded_at,
            });
        }
        Some(indexes.len() as u64)
    }
}

/// Encodes `event` as the baseline does: serde_json of the variant's fields.
fn baseline_encode(event: &CartEvent) -> (&'static str, String) {
    let encoded = match event {
        CartEvent::ItemAdded(fields) => serde_json::to_string(fields),
        CartEvent::ItemRemoved(fields) => serde_json::to_string(fields),
        CartEvent::CheckedOut(fields) => serde_json::to_string(fields),
    };
    (event.event_type(), encoded.expect("cart events encode"))
}

/// Decodes a stored payload as the baseline does: straight into the variant its name says.
fn baseline_decode(event_type: &str, payload: &str) -> CartEvent {
    match event_type {
        "ItemAdded" => CartEvent::ItemAdded(serde_json::from_str(payload).expect("ItemAdded")),
        "ItemRemoved" => {
            CartEvent::ItemRemoved(serde_json::from_str(payload).expect("ItemRemoved"))
        }
        "CheckedOut" => CartEvent::CheckedOut(serde_json::from_str(payload).expect("CheckedOut")),
        other => panic!("unknown event type {other}"),
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

/// Appends `events` to a fresh [`MemoryStore`] in batches of `batch_size`, as a repository
/// would: encoded with a fresh id each, at the stream's last known version.
fn append_eventsrc(
    rt: &Runtime,
    events: &[CartEvent],
    streams: &[StreamId],
    batch_size: usize,
    store: MemoryStore,
) -> MemoryStore {
    rt.block_on(async {
        let mut versions = vec![StreamVersion::NONE; streams.len()];
        for (n, chunk) in events.chunks(batch_size).enumerate() {
            let stream = batch_stream(n);
            let batch = chunk
                .iter()
                .map(|event| NewEvent::from_event(event, Metadata::new()))
                .collect::<Result<Vec<_>, _>>()
                .expect("cart events encode");
            let expected = ExpectedVersion::at(versions[stream]);
            let appended = store
                .append(&streams[stream], expected, batch)
                .await
                .expect("the append succeeds");
            versions[stream] = appended.stream_version;
        }
    });
    store
}

/// The same appends into the baseline store.
fn append_baseline(
    events: &[CartEvent],
    streams: &[Arc<str>],
    batch_size: usize,
    mut store: BaselineStore,
) -> BaselineStore {
    let mut versions = vec![0; streams.len()];
    for (n, chunk) in events.chunks(batch_size).enumerate() {
        let stream = batch_stream(n);
        let batch = chunk
            .iter()
            .map(|event| {
                let (event_type, payload) = baseline_encode(event);
                (EventId::new(), event_type, payload)
            })
            .collect();
        versions[stream] = store
            .append(&streams[stream], versions[stream], batch)
            .expect("the append succeeds");
    }
    store
}

/// Checks once, outside any measurement, that both sides store the same thing.
fn check_same_appends(rt: &Runtime, store: &MemoryStore, baseline: &BaselineStore) {
    assert_eq!(store.len(), baseline.rows.len());
    assert_eq!(baseline.ids.len(), baseline.rows.len());
    rt.block_on(async {
        for (name, indexes) in &baseline.streams {
            let stream: StreamId = name.parse().expect("a valid stream id");
            let records = store
                .read_stream(&stream, ReadStream::forward())
                .await
                .expect("the stream reads");
            assert_eq!(records.len(), indexes.len());
            for (record, &index) in records.iter().zip(indexes) {
                let row = &baseline.rows[index];
                assert_eq!(record.stream.as_str(), &*row.stream);
                assert_eq!(record.stream_version.get(), row.version);
                assert_eq!(&*record.event_type, row.event_type);
                assert_eq!(&*record.payload, row.payload);
                assert_eq!(baseline.ids[&row.event_id], index);
                assert!(row.recorded_at > Timestamp::from_micros(0));
            }
        }
    });
}

fn append(c: &mut Criterion) {
    let rt = runtime();
    let events: Vec<CartEvent> = (0..APPEND_EVENTS)
        .map(|n| cart_event(n, APPEND_EVENTS))
        .collect();
    let stream_ids: Vec<StreamId> = (0..APPEND_STREAMS)
        .map(|id| Cart::stream_id(&id).expect("a valid stream id"))
        .collect();
    let stream_names: Vec<Arc<str>> = stream_ids.iter().map(|s| Arc::from(s.as_str())).collect();

    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(APPEND_EVENTS as u64));

    for batch_size in [1, 10, 100] {
        check_same_appends(
            &rt,
            &append_eventsrc(&rt, &events, &stream_ids, batch_size, MemoryStore::new()),
            &append_baseline(&events, &stream_names, batch_size, BaselineStore::default()),
        );
        group.bench_with_input(
            BenchmarkId::new("eventsrc", batch_size),
            &batch_size,
            |b, &batch_size| {
                b.iter_batched(
                    MemoryStore::new,
                    |store| append_eventsrc(&rt, &events, &stream_ids, batch_size, store),
                    BatchSize::PerIteration,
                );
            },
        );
        group.bench_with_input(
            BenchmarkId::new("baseline", batch_size),
            &batch_size,
            |b, &batch_size| {
                b.iter_batched(
                    BaselineStore::default,
                    |store| append_baseline(&events, &stream_names, batch_size, store),
                    BatchSize::PerIteration,
                );
            },
        );
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let rt = runtime();
    let events: Vec<CartEvent> = (0..LOAD_EVENTS)
        .map(|n| cart_event(n, LOAD_EVENTS))
        .collect();

    let id = 42;
    let repository = Repository::new(MemoryStore::new());
    rt.block_on(async {
        let stream = Cart::stream_id(&id).expect("a valid stream id");
        let batch = events
            .iter()
            .map(|event| NewEvent::from_event(event, Metadata::new()))
            .collect::<Result<Vec<_>, _>>()
            .expect("cart events encode");
        repository
            .store()
            .append(&stream, ExpectedVersion::NoStream, batch)
            .await
            .expect("the append succeeds");
    });
    let stored: Vec<(&'static str, String)> = events.iter().map(baseline_encode).collect();
    let load_baseline = |stored: &[(&'static str, String)]| {
        let mut cart = Cart::default();
        for (event_type, payload) in stored {
            fold(&mut cart, &baseline_decode(event_type, payload));
        }
        cart
    };
    let loaded = rt
        .block_on(repository.load::<Cart>(&id))
        .expect("the cart loads");
    assert_eq!(loaded.state, load_baseline(&stored));

    let mut group = c.benchmark_group("load");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(LOAD_EVENTS as u64));

    group.bench_function(BenchmarkId::new("eventsrc", LOAD_EVENTS), |b| {
        b.iter(|| {
            let loaded = rt
                .block_on(repository.load::<Cart>(black_box(&id)))
                .expect("the cart loads");
            assert_eq!(loaded.version.get(), LOAD_EVENTS as u64);
            loaded.state
        });
    });
    group.bench_function(BenchmarkId::new("baseline", LOAD_EVENTS), |b| {
        b.iter(|| load_baseline(black_box(&stored)));
    });
    group.finish();
}

/// Events in the cart the `snapshots` benchmarks read.
const SNAPSHOT_EVENTS: usize = 10_000;

/// The same cart, snapshotted every 100 events.
#[derive(Debug, Default, PartialEq, Clone, Serialize, Deserialize)]
struct SnapshottedCart(Cart);

impl Aggregate for SnapshottedCart {
    const TYPE: &'static str = "cart";
    const SNAPSHOT: Option<eventsrc::store::SnapshotFormat<Self>> =
        Some(eventsrc::store::SnapshotFormat::json(1).every(100));
    type Id = usize;
    type Event = CartEvent;
    type Error = AlreadyCheckedOut;

    fn apply(&mut self, event: &CartEvent) {
        fold(&mut self.0, event);
    }
}

fn snapshots(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryStore::new();
    let id = 7;
    rt.block_on(async {
        let stream = Cart::stream_id(&id).expect("a valid stream id");
        let batch = (0..SNAPSHOT_EVENTS)
            .map(|n| NewEvent::from_event(&cart_event(n, SNAPSHOT_EVENTS), Metadata::new()))
            .collect::<Result<Vec<_>, _>>()
            .expect("cart events encode");
        store
            .append(&stream, ExpectedVersion::NoStream, batch)
            .await
            .expect("the append succeeds");
    });
    let plain = Repository::new(store.clone());
    let snapshotted = Repository::new(store.clone()).with_snapshots(store.clone());
    let taken = rt
        .block_on(snapshotted.snapshot::<SnapshottedCart>(&id))
        .expect("the snapshot is taken");
    assert_eq!(taken, Some(StreamVersion(SNAPSHOT_EVENTS as u64)));
    let from_events = rt.block_on(plain.load::<Cart>(&id)).expect("loads");
    let from_snapshot = rt
        .block_on(snapshotted.load::<SnapshottedCart>(&id))
        .expect("loads");
    assert_eq!(from_snapshot.state.0, from_events.state);

    let mut group = c.benchmark_group("snapshots");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function(BenchmarkId::new("without", SNAPSHOT_EVENTS), |b| {
        b.iter(|| {
            rt.block_on(plain.load::<Cart>(black_box(&id)))
                .expect("loads")
        });
    });
    group.bench_function(BenchmarkId::new("with", SNAPSHOT_EVENTS), |b| {
        b.iter(|| {
            rt.block_on(snapshotted.load::<SnapshottedCart>(black_box(&id)))
                .expect("loads")
        });
    });
    group.finish();
}

/// `EVENTSRC_BENCH_APPEND_ONCE=eventsrc|baseline|setup` with `EVENTSRC_BENCH_BATCH=1|10|100`:
/// one append run of that side (or only the setup both share) and nothing else, for counting
/// instructions with a tool such as `valgrind --tool=cachegrind` where timings are too noisy.
/// A side's count less the setup's is its run.
fn append_once(side: &str) {
    let batch_size: usize = std::env::var("EVENTSRC_BENCH_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1);
    let rt = runtime();
    let events: Vec<CartEvent> = (0..APPEND_EVENTS)
        .map(|n| cart_event(n, APPEND_EVENTS))
        .collect();
    let stream_ids: Vec<StreamId> = (0..APPEND_STREAMS)
        .map(|id| Cart::stream_id(&id).expect("a valid stream id"))
        .collect();
    let stream_names: Vec<Arc<str>> = stream_ids.iter().map(|s| Arc::from(s.as_str())).collect();
    let stored = match side {
        "eventsrc" => {
            append_eventsrc(&rt, &events, &stream_ids, batch_size, MemoryStore::new()).len()
        }
        "baseline" => append_baseline(&events, &stream_names, batch_size, BaselineStore::default())
            .rows
            .len(),
        _ => 0,
    };
    println!("{side}, batches of {batch_size}: {stored} events stored");
}

/// `EVENTSRC_BENCH_APPEND_ROUNDS=n`: `n` rounds of every append workload, eventsrc and the
/// baseline back to back in alternating order, printed as a table of the fastest run of each
/// side and the range of the per-round ratios. On a shared machine a side's best run is the
/// one least disturbed, and a ratio within one round compares runs made moments apart.
fn append_rounds(rounds: usize) {
    let rt = runtime();
    let events: Vec<CartEvent> = (0..APPEND_EVENTS)
        .map(|n| cart_event(n, APPEND_EVENTS))
        .collect();
    let stream_ids: Vec<StreamId> = (0..APPEND_STREAMS)
        .map(|id| Cart::stream_id(&id).expect("a valid stream id"))
        .collect();
    let stream_names: Vec<Arc<str>> = stream_ids.iter().map(|s| Arc::from(s.as_str())).collect();
    println!(
        "| append 100k events | eventsrc (best of {rounds}) | baseline (best) | ratio of bests | per-round ratios |"
    );
    println!("|---|---:|---:|---:|---:|");
    for batch_size in [1, 10, 100] {
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let eventsrc = || {
                let store = MemoryStore::new();
                let started = std::time::Instant::now();
                let store = append_eventsrc(&rt, &events, &stream_ids, batch_size, store);
                let elapsed = started.elapsed();
                drop(store);
                elapsed
            };
            let baseline = || {
                let store = BaselineStore::default();
                let started = std::time::Instant::now();
                let store = append_baseline(&events, &stream_names, batch_size, store);
                let elapsed = started.elapsed();
                drop(store);
                elapsed
            };
            let (a, b) = if round % 2 == 0 {
                let a = eventsrc();
                (a, baseline())
            } else {
                let b = baseline();
                (eventsrc(), b)
            };
            ratios.push(a.as_secs_f64() / b.as_secs_f64());
            ours.push(a);
            theirs.push(b);
        }
        let best = |times: &[Duration]| times.iter().min().copied().unwrap_or_default();
        let (a, b) = (best(&ours), best(&theirs));
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "| batches of {batch_size} | {:.1} ms | {:.1} ms | {:.2}x | {low:.2}–{high:.2}x |",
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            a.as_secs_f64() / b.as_secs_f64()
        );
    }
}

criterion_group!(benches, append, load, snapshots);

fn main() {
    if let Ok(side) = std::env::var("EVENTSRC_BENCH_APPEND_ONCE") {
        append_once(&side);
        return;
    }
    if let Some(rounds) = std::env::var("EVENTSRC_BENCH_APPEND_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        append_rounds(rounds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
