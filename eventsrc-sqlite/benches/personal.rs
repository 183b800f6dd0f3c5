//! The cost of crypto-shredding: appends and loads of events with two personal fields through
//! [`Encrypted`], beside the same events without personal fields on the same store, in the
//! same run. Memory (with `MemoryKeyStore`) and a SQLite file (with `SqliteKeyStore` in the
//! same file).
//!
//! - `append`: 2,000 events, one per append (as one command appends), spread over 100 streams,
//!   each stream's events naming one subject: sealing two fields per event, and a key lookup
//!   per append (made on the stream's first).
//! - `load`: a 1,000-event stream of one subject folded through `Repository::load` (one key
//!   lookup, 2,000 fields opened).
//!
//! Prints a table of the median of 7 rounds, per event. Run with
//! `cargo bench -p eventsrc-sqlite --features encryption --bench personal`.

use std::time::{Duration, Instant};

use eventsrc::personal::{Encrypted, KeyStore, MemoryKeyStore};
use eventsrc::{
    Event, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent, Repository, SnapshotStore,
    StreamId, aggregate,
};
use eventsrc_sqlite::{SqliteEventStore, SqliteKeyStore};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

const APPEND_EVENTS: usize = 2_000;
const APPEND_STREAMS: usize = 100;
const LOAD_EVENTS: usize = 1_000;
const ROUNDS: usize = 7;

/// With personal fields: sealed through `Encrypted`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "bench.sealed_signed_up")]
struct SealedSignedUp {
    #[event(subject)]
    user: String,
    #[event(personal)]
    name: Option<String>,
    #[event(personal)]
    email: Option<String>,
    plan: String,
}

/// The same shape without personal fields: stored as it is.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "bench.plain_signed_up")]
struct PlainSignedUp {
    user: String,
    name: Option<String>,
    email: Option<String>,
    plan: String,
}

#[derive(Default)]
struct Member {
    seen: u64,
}

#[aggregate(id = String, name = "bench_member")]
impl Member {
    fn on_sealed(&mut self, e: &SealedSignedUp) {
        self.seen += e.name.as_ref().map_or(0, |n| n.len() as u64);
    }
    fn on_plain(&mut self, e: &PlainSignedUp) {
        self.seen += e.name.as_ref().map_or(0, |n| n.len() as u64);
    }
}

fn event(sealed: bool, user: &str, i: usize) -> NewEvent {
    let (name, email) = (
        Some(format!("Ada Lovelace the {i}th")),
        Some(format!("ada{i}@example.com")),
    );
    let plan = "pro".to_owned();
    let user = user.to_owned();
    let made = if sealed {
        NewEvent::from_event(
            &SealedSignedUp {
                user,
                name,
                email,
                plan,
            },
            Metadata::new(),
        )
    } else {
        NewEvent::from_event(
            &PlainSignedUp {
                user,
                name,
                email,
                plan,
            },
            Metadata::new(),
        )
    };
    made.expect("encodes")
}

/// Appends [`APPEND_EVENTS`] events one per append; the time per event.
async fn append<S: EventStore>(store: &S, sealed: bool, round: usize) -> Duration {
    let streams: Vec<StreamId> = (0..APPEND_STREAMS)
        .map(|s| StreamId::new("bench_member", format!("{round}-{sealed}-{s}")).expect("id"))
        .collect();
    let started = Instant::now();
    for i in 0..APPEND_EVENTS {
        let s = i % APPEND_STREAMS;
        let batch = vec![event(sealed, streams[s].id(), i)];
        store
            .append(&streams[s], ExpectedVersion::Any, batch)
            .await
            .expect("appends");
    }
    started.elapsed() / APPEND_EVENTS as u32
}

/// Loads a [`LOAD_EVENTS`]-event stream; the time per event.
async fn load<S: EventStore + SnapshotStore>(store: S, sealed: bool) -> Duration {
    let id = format!("load-{sealed}");
    let stream = StreamId::new("bench_member", &id).expect("id");
    if store.stream_version(&stream).await.expect("reads").get() == 0 {
        let events: Vec<NewEvent> = (0..LOAD_EVENTS).map(|i| event(sealed, &id, i)).collect();
        for chunk in events.chunks(100) {
            store
                .append(&stream, ExpectedVersion::Any, chunk.to_vec())
                .await
                .expect("appends");
        }
    }
    let repository = Repository::new(store);
    let started = Instant::now();
    let loaded = repository.load::<Member>(&id).await.expect("loads");
    assert!(loaded.state.seen > 0);
    started.elapsed() / LOAD_EVENTS as u32
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

async fn measure<S, K>(name: &str, plain: S, sealed: Encrypted<S, K>) -> Vec<[String; 5]>
where
    S: EventStore + SnapshotStore + Clone,
    K: KeyStore + ?Sized,
{
    let (mut append_plain, mut append_sealed) = (Vec::new(), Vec::new());
    let (mut load_plain, mut load_sealed) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always meets a warmer store.
        if round % 2 == 0 {
            append_plain.push(append(&plain, false, round).await);
            append_sealed.push(append(&sealed, true, round).await);
        } else {
            append_sealed.push(append(&sealed, true, round).await);
            append_plain.push(append(&plain, false, round).await);
        }
        load_plain.push(load(plain.clone(), false).await);
        load_sealed.push(load(sealed.clone(), true).await);
    }
    let row = |what: &str, plain: Vec<Duration>, sealed: Vec<Duration>| {
        let (plain, sealed) = (median(plain), median(sealed));
        [
            name.to_owned(),
            what.to_owned(),
            micros(plain),
            micros(sealed),
            format!("{:.2}x", sealed.as_secs_f64() / plain.as_secs_f64()),
        ]
    };
    vec![
        row("append, 1 event per append", append_plain, append_sealed),
        row("load, 1,000 events", load_plain, load_sealed),
    ]
}

fn main() {
    let runtime = Runtime::new().expect("a runtime");
    let rows = runtime.block_on(async {
        let memory = MemoryStore::new();
        let mut rows = measure(
            "memory",
            memory.clone(),
            Encrypted::new(memory, MemoryKeyStore::new()),
        )
        .await;
        let sqlite = SqliteEventStore::open_temporary().await.expect("opens");
        let keys = SqliteKeyStore::open(sqlite.path().expect("a file"))
            .await
            .expect("opens");
        rows.extend(measure("sqlite", sqlite.clone(), Encrypted::new(sqlite, keys)).await);
        rows
    });
    println!(
        "\ncrypto-shredding: time per event, median of {ROUNDS} rounds (two personal fields per event)\n"
    );
    println!("| store | workload | plain | encrypted | encrypted / plain |");
    println!("|---|---|---:|---:|---:|");
    for [store, what, plain, sealed, ratio] in rows {
        println!("| {store} | {what} | {plain} | {sealed} | {ratio} |");
    }
}
