//! The command line as a library (`eventsrc::cli::Cli`), run in process on a seeded store, on a
//! SQLite file and on a PostgreSQL schema: every command, its table and its `--json`, with this
//! test binary's event types linked in (so payloads decode and `check` knows them), a reactor
//! registered for `replay` and a read model for `rebuild` and `switch`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/stores.rs"]
mod stores;

use std::process::ExitCode;
use std::time::Duration;

use eventsrc::backend::{ParkedEvent, ParkedStore};
use eventsrc::cli::Cli;
use eventsrc::runner::Perform;
use eventsrc::store::ReadStream;
use eventsrc::{
    CheckpointStore, Checkpointed, Event, EventStore, ExpectedVersion, NewEvent, Projection,
    Reactions, Reactor, RecordedEvent, Store, StreamId, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use stores::{TempDir, drop_schema, postgres};

// --- the application's types, linked into this test binary ----------------------------------

fn default_quantity(mut v: Value) -> Value {
    v["quantity"] = 1.into();
    v
}

/// Version 1 had no quantity: an upcast step gives it 1.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "cart.item_added", version = 2, upcast_json = default_quantity)]
struct ItemAdded {
    sku: String,
    quantity: u32,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "cart.checked_out")]
struct CheckedOut;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "user.registered")]
struct Registered {
    email: String,
}

#[derive(Event, Debug)]
enum CartEvent {
    ItemAdded(ItemAdded),
    CheckedOut(CheckedOut),
}

/// A reactor whose effects now succeed: `replay` unparks what it parked.
struct Receipts;

impl Reactor for Receipts {
    const NAME: &'static str = "receipts";
    type Event = CartEvent;
    type Effect = String;
    type Error = std::convert::Infallible;
    fn react(&mut self, _: CartEvent, record: &RecordedEvent) -> Result<Vec<String>, Self::Error> {
        Ok(vec![record.stream.to_string()])
    }
}

struct Printer;

impl Perform<String> for Printer {
    type Error = std::io::Error;
    async fn perform(&self, _: String, _: &RecordedEvent) -> Result<(), std::io::Error> {
        Ok(())
    }
}

/// The new version of the `carts` read model: it counts carts' events.
#[derive(Default)]
struct CartCounts(u64);

impl Projection for CartCounts {
    const NAME: &'static str = "carts_v2";
    type Event = CartEvent;
    type Error = std::convert::Infallible;
    fn apply(&mut self, _: CartEvent, _: &RecordedEvent) -> Result<(), Self::Error> {
        self.0 += 1;
        Ok(())
    }
}

/// A broker that takes everything: `replay` publishes what the relay parked.
struct Accepting;

impl eventsrc::relay::Publisher for Accepting {
    async fn publish(
        &self,
        messages: &[eventsrc::relay::Outgoing<'_>],
    ) -> Vec<Result<(), eventsrc::relay::PublishError>> {
        messages.iter().map(|_| Ok(())).collect()
    }
}

fn cli() -> Cli {
    Cli::new()
        .reactions(|store: Store| Reactions::new(Receipts, Printer, store))
        .relay("to_broker", |store: Store| {
            eventsrc::relay::Relay::new("to_broker", Accepting, store)
        })
        .rebuild(
            "carts",
            |store: Store| Checkpointed::new(CartCounts::default(), store),
            "CREATE TABLE cart_counts_switched (n INTEGER)",
        )
}

/// Runs `args` (after the program's name) on `url`, returning the exit code and stdout.
async fn run(url: &str, args: &[&str]) -> (ExitCode, String) {
    let mut out = Vec::new();
    let mut all = vec!["eventsrc", "--store", url];
    all.extend_from_slice(args);
    let code = cli().run_from(all, &mut out).await;
    (code, String::from_utf8(out).unwrap())
}

/// [`run`] with `--json`, expecting success, parsed.
async fn json(url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out) = run(url, &all).await;
    assert_eq!(code, ExitCode::SUCCESS, "{args:?} failed: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

// --- the seeded store -------------------------------------------------------------------------

/// What the seed wrote, for the assertions.
struct Seeded {
    /// cart-1's events, in order.
    cart: Vec<RecordedEvent>,
}

async fn seed(store: &Store) -> Seeded {
    let cart = StreamId::new("cart", 1).unwrap();
    let old = NewEvent::raw("cart.item_added", 1, r#"{"sku":"pear"}"#);
    let added = NewEvent::from_event(
        &ItemAdded {
            sku: "fig".into(),
            quantity: 3,
        },
        Default::default(),
    )
    .unwrap();
    store
        .append(&cart, ExpectedVersion::NoStream, vec![old, added])
        .await
        .unwrap();
    // A moment later, so that the checkout's `recorded_at` is after the first two's (the
    // clock's resolution is a microsecond).
    tokio::time::sleep(Duration::from_millis(5)).await;
    let out = NewEvent::from_event(&CheckedOut, Default::default()).unwrap();
    store
        .append(
            &cart,
            ExpectedVersion::Exact(eventsrc::StreamVersion(2)),
            vec![out],
        )
        .await
        .unwrap();
    for (stream, sku) in [("cart-2", "kiwi"), ("cart-10", "plum")] {
        let added = ItemAdded {
            sku: sku.into(),
            quantity: 1,
        };
        let event = NewEvent::from_event(&added, Default::default()).unwrap();
        let stream: StreamId = stream.parse().unwrap();
        store
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap();
    }
    let user = NewEvent::from_event(
        &Registered {
            email: "ada@example.com".into(),
        },
        Default::default(),
    )
    .unwrap();
    let user_stream = StreamId::new("user", 7).unwrap();
    store
        .append(&user_stream, ExpectedVersion::NoStream, vec![user])
        .await
        .unwrap();
    let cart = store
        .read_stream(&cart, ReadStream::forward())
        .await
        .unwrap();
    // The live `carts` read model stands after cart-1's first event; a reactor parked the
    // third.
    store
        .save_checkpoint("carts", cart[0].global_position)
        .await
        .unwrap();
    store
        .park(ParkedEvent {
            reactor: Receipts::NAME.into(),
            event: cart[2].clone(),
            error: "the printer is out of paper".into(),
            attempts: 5,
            parked_at: Timestamp::now(),
        })
        .await
        .unwrap();
    Seeded { cart }
}

// --- the commands -----------------------------------------------------------------------------

async fn inspecting_commands_show_the_store(url: &str, store: &Store) {
    let seeded = seed(store).await;

    // streams: bytewise name order, versions, category filter, paging.
    let (code, table) = run(url, &["streams"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    let order: Vec<&str> = ["cart-1 ", "cart-10 ", "cart-2 ", "user-7 "]
        .iter()
        .map(|s| s.trim())
        .collect();
    let positions: Vec<usize> = order.iter().map(|s| table.find(s).unwrap()).collect();
    assert!(positions.is_sorted(), "{table}");
    let listed = json(url, &["streams", "--category", "cart", "--limit", "2"]).await;
    let names: Vec<&str> = listed["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cart-1", "cart-10"]);
    assert_eq!(listed["streams"][0]["version"], 3);
    assert_eq!(listed["next_after"], "cart-10");
    let next = json(
        url,
        &["streams", "--category", "cart", "--after", "cart-10"],
    )
    .await;
    assert_eq!(next["streams"][0]["stream"], "cart-2");
    assert_eq!(next["streams"].as_array().unwrap().len(), 1);
    assert_eq!(next["next_after"], Value::Null);

    // events: decoded to the current version (the v1 payload upcast), as of a version or a time.
    let (code, table) = run(url, &["events", "cart-1"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        table.contains(r#"{"quantity":1,"sku":"pear"}"#)
            || table.contains(r#"{"sku":"pear","quantity":1}"#),
        "{table}"
    );
    assert!(table.contains("cart.item_added@1"), "{table}");
    assert!(table.contains("cart.checked_out@1"), "{table}");
    let events = json(url, &["events", "cart-1"]).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 3);
    assert_eq!(
        events["events"][0]["payload"],
        serde_json::json!({"sku": "pear"})
    );
    assert_eq!(events["events"][0]["decoded"]["quantity"], 1);
    assert_eq!(events["events"][0]["schema_version"], 1);
    let at_two = json(url, &["events", "cart-1", "--at-version", "2"]).await;
    assert_eq!(at_two["events"].as_array().unwrap().len(), 2);
    let at_time = seeded.cart[1].recorded_at.to_string();
    let then = json(url, &["events", "cart-1", "--at-time", &at_time]).await;
    assert_eq!(then["events"].as_array().unwrap().len(), 2, "{then}");
    let before = (seeded.cart[0].recorded_at - Duration::from_micros(1)).to_string();
    let earlier = json(url, &["events", "cart-1", "--at-time", &before]).await;
    assert_eq!(earlier["events"].as_array().unwrap().len(), 0, "{earlier}");
    let paged = run(url, &["events", "cart-1", "--limit", "1"]).await.1;
    assert!(paged.contains("more: --from 2"), "{paged}");
    let from = json(url, &["events", "cart-1", "--from", "3"]).await;
    assert_eq!(from["events"][0]["event_type"], "cart.checked_out");

    // show: one event whole; an unknown id is an error.
    let id = seeded.cart[1].event_id.to_string();
    let shown = json(url, &["show", &id]).await;
    assert_eq!(shown["stream"], "cart-1");
    assert_eq!(shown["version"], 2);
    assert_eq!(
        shown["decoded"],
        serde_json::json!({"sku": "fig", "quantity": 3})
    );
    let (code, table) = run(url, &["show", &id]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        table.contains("cart.item_added") && table.contains("metadata:"),
        "{table}"
    );
    let missing = eventsrc::EventId::new().to_string();
    assert_eq!(run(url, &["show", &missing]).await.0, ExitCode::FAILURE);

    // head and lag: `carts` is 5 events behind the head; `receipts` has no checkpoint.
    let head = json(url, &["head"]).await;
    let head_position = store.head_position().await.unwrap().to_string();
    assert_eq!(head["head"], head_position.as_str());
    let lag = json(url, &["lag"]).await;
    let carts = &lag["consumers"][0];
    assert_eq!(carts["consumer"], "carts");
    assert_eq!(
        carts["checkpoint"],
        seeded.cart[0].global_position.to_string()
    );
    assert_eq!(carts["events_behind"], 5);
    assert!(carts["seconds_behind"].as_f64().unwrap() >= 0.0);
    let (code, table) = run(url, &["lag"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        table.contains("carts") && table.contains(&head_position),
        "{table}"
    );

    // parked: the reactor, the event and its error.
    let parked = json(url, &["parked"]).await;
    assert_eq!(parked["parked"][0]["reactor"], "receipts");
    assert_eq!(parked["parked"][0]["error"], "the printer is out of paper");
    assert_eq!(
        parked["parked"][0]["event"]["event_id"],
        seeded.cart[2].event_id.to_string()
    );
    let none = json(url, &["parked", "--reactor", "someone_else"]).await;
    assert_eq!(none["parked"].as_array().unwrap().len(), 0);
    let table = run(url, &["parked"]).await.1;
    assert!(
        table.contains("out of paper") && table.contains("cart-1@3"),
        "{table}"
    );

    // tail: from the start, filtered, bounded.
    let (code, lines) = run(
        url,
        &[
            "tail",
            "--from-start",
            "--type",
            "cart.item_added",
            "--limit",
            "3",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS);
    let tailed: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tailed.len(), 3);
    assert!(tailed.iter().all(|e| e["event_type"] == "cart.item_added"));
    let lines = run(
        url,
        &[
            "tail",
            "--from-start",
            "--category",
            "user",
            "--idle",
            "0.2",
        ],
    )
    .await
    .1;
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(
        lines.contains("user-7@1") && lines.contains("ada@example.com"),
        "{lines}"
    );
}

/// `tail` without a start follows only what is committed after it started.
async fn tail_follows_the_log_live(url: &str, store: &Store) {
    seed(store).await;
    let tail_url = url.to_owned();
    let tail =
        tokio::spawn(async move { run(&tail_url, &["tail", "--limit", "2", "--json"]).await });
    // Append until the tail has seen two new events (it may start after the first append).
    let stream = StreamId::new("cart", 99).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut appended = 0;
    while !tail.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tail never printed two events"
        );
        let event = NewEvent::from_event(
            &ItemAdded {
                sku: format!("live{appended}"),
                quantity: 1,
            },
            Default::default(),
        )
        .unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
        appended += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, lines) = tail.await.unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    let tailed: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tailed.len(), 2);
    // Only new events: none of the seed's, and in order.
    assert!(tailed.iter().all(|e| e["stream"] == "cart-99"), "{lines}");
    let first: u64 = tailed[0]["version"].as_u64().unwrap();
    assert_eq!(tailed[1]["version"].as_u64().unwrap(), first + 1);
}

async fn operating_commands_change_what_they_say(url: &str, store: &Store) {
    let seeded = seed(store).await;

    // check: every stored type and version decodes here, the v1 payload by upcasting.
    let (code, table) = run(url, &["check"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{table}");
    assert!(
        table.contains("ok (upcast)") && table.contains("check passed"),
        "{table}"
    );
    // replay: the registered reactor succeeds now, so its parked event is unparked.
    let replayed = json(url, &["replay", "receipts"]).await;
    assert_eq!(
        replayed["replayed"][0]["succeeded"][0],
        seeded.cart[2].event_id.to_string()
    );
    assert!(store.parked(Receipts::NAME).await.unwrap().is_empty());
    let (code, _) = run(url, &["replay", "nobody"]).await;
    assert_eq!(code, ExitCode::FAILURE);
    // replay of a relay: the broker takes the event now, so it is unparked.
    store
        .park(ParkedEvent {
            reactor: "to_broker".into(),
            event: seeded.cart[1].clone(),
            error: "no stream takes the subject".into(),
            attempts: 5,
            parked_at: Timestamp::now(),
        })
        .await
        .unwrap();
    let replayed = json(url, &["replay", "to_broker"]).await;
    assert_eq!(replayed["replayed"][0]["reactor"], "to_broker");
    assert_eq!(
        replayed["replayed"][0]["succeeded"][0],
        seeded.cart[1].event_id.to_string()
    );
    assert!(store.parked("to_broker").await.unwrap().is_empty());

    // rebuild beside the live read model, then switch it in: the live checkpoint moves to
    // where the rebuild got to, and the swap ran.
    let rebuilt = json(url, &["rebuild", "carts"]).await;
    assert_eq!(rebuilt["rebuilt"], "carts_v2");
    let head = store.head_position().await.unwrap();
    assert_eq!(rebuilt["position"], head.to_string());
    assert_eq!(store.load_checkpoint("carts_v2").await.unwrap(), Some(head));
    assert_eq!(
        store.load_checkpoint("carts").await.unwrap(),
        Some(seeded.cart[0].global_position)
    );
    let (code, said) = run(url, &["switch", "carts"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{said}");
    assert!(said.contains("switched `carts_v2` in as `carts`"), "{said}");
    assert_eq!(store.load_checkpoint("carts").await.unwrap(), Some(head));
    assert_eq!(store.load_checkpoint("carts_v2").await.unwrap(), None);
    // A second switch finds nothing rebuilt.
    assert_eq!(run(url, &["switch", "carts"]).await.0, ExitCode::FAILURE);
    assert_eq!(run(url, &["rebuild", "users"]).await.0, ExitCode::FAILURE);

    // `check` before a deploy: a type this build does not know, and a version from the future: both reported, exit 1.
    let cart = StreamId::new("cart", 3).unwrap();
    let unknown = NewEvent::raw("cart.coupon_applied", 1, "{}");
    let future = NewEvent::raw("cart.item_added", 3, r#"{"sku":"x","quantity":1}"#);
    store
        .append(&cart, ExpectedVersion::NoStream, vec![unknown, future])
        .await
        .unwrap();
    let (code, table) = run(url, &["check"]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert!(
        table.contains("cart.coupon_applied") && table.contains("unknown"),
        "{table}"
    );
    assert!(table.contains("from the future"), "{table}");
    assert!(table.contains("check failed: 2 problem(s)"), "{table}");
    let mut all = vec![
        "eventsrc",
        "--store",
        url,
        "check",
        "--json",
        "--ignore",
        "cart.coupon_applied",
    ];
    let mut out = Vec::new();
    assert_eq!(
        cli().run_from(all.drain(..), &mut out).await,
        ExitCode::FAILURE
    );
    let checked: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(checked["ok"], false);
    let failing: Vec<&Value> = checked["stored"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["ok"] == false)
        .collect();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0]["schema_version"], 3);
    // Which is what would have stopped a runner of this build:
    let (code, _) = run(url, &["rebuild", "carts"]).await;
    assert_eq!(code, ExitCode::FAILURE);
}

/// `delete`, `truncate` and `archive`: nothing changes without `--yes`; a truncation and a soft
/// delete archive what they remove, which `archive --json` prints one event per line; a
/// tombstone refuses later appends; bad versions are errors that change nothing.
async fn lifecycle_commands_remove_and_archive(url: &str, store: &Store) {
    let seeded = seed(store).await;
    let (code, said) = run(url, &["truncate", "cart-1", "--before", "3"]).await;
    assert_eq!(code, ExitCode::FAILURE, "without --yes: {said}");
    let (code, said) = run(url, &["truncate", "cart-1", "--before", "3", "--yes"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{said}");
    assert!(said.contains("2 event(s) moved to the archive"), "{said}");
    let (code, said) = run(url, &["truncate", "cart-1", "--before", "9", "--yes"]).await;
    assert_eq!(code, ExitCode::FAILURE, "past the last event: {said}");

    let (code, lines) = run(url, &["archive", "cart-1", "--json"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{lines}");
    let archived: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = archived
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = seeded.cart[..2]
        .iter()
        .map(|e| e.event_id.to_string())
        .collect();
    assert_eq!(
        ids, expected,
        "the archive lists the truncated events, one per line"
    );
    let (_, table) = run(url, &["archive", "cart-1"]).await;
    assert!(table.contains("cart.item_added@1"), "{table}");

    let deleted = json(url, &["delete", "cart-2", "--yes"]).await;
    assert_eq!(
        (
            deleted["removed"].as_u64(),
            deleted["marker_version"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let (_, table) = run(url, &["events", "cart-2"]).await;
    assert!(
        table.contains("$StreamDeleted"),
        "the marker is the stream's event now: {table}"
    );
    let again = json(url, &["delete", "cart-2", "--yes"]).await;
    assert_eq!(again["already_deleted"], Value::Bool(true));

    let (code, said) = run(
        url,
        &["delete", "cart-10", "--expected-version", "5", "--yes"],
    )
    .await;
    assert_eq!(code, ExitCode::FAILURE, "a stale expected version: {said}");
    let (code, said) = run(url, &["delete", "cart-10", "--tombstone", "--yes"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{said}");
    assert!(said.contains("removed for good"), "{said}");
    let refused = store
        .append(
            &StreamId::new("cart", 10).unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::raw("cart.checked_out", 1, "null")],
        )
        .await;
    assert!(
        matches!(refused, Err(eventsrc::StoreError::Tombstoned { .. })),
        "{refused:?}"
    );
    let (_, nothing) = run(url, &["archive", "cart-10"]).await;
    assert!(
        nothing.contains("nothing of `cart-10` is archived"),
        "{nothing}"
    );
}

// --- SQLite -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inspecting_commands_show_the_store() {
    let dir = TempDir::new("eventsrc-cli");
    let store = Store::open(&dir.url()).await.unwrap();
    inspecting_commands_show_the_store(&dir.url(), &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tail_follows_the_log_live() {
    let dir = TempDir::new("eventsrc-cli");
    let store = Store::open(&dir.url()).await.unwrap();
    tail_follows_the_log_live(&dir.url(), &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_operating_commands_change_what_they_say() {
    let dir = TempDir::new("eventsrc-cli");
    let store = Store::open(&dir.url()).await.unwrap();
    operating_commands_change_what_they_say(&dir.url(), &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lifecycle_commands_remove_and_archive() {
    let dir = TempDir::new("eventsrc-cli");
    let store = Store::open(&dir.url()).await.unwrap();
    lifecycle_commands_remove_and_archive(&dir.url(), &store).await;
}

/// A tenant sees only its own streams; a missing file is an error and is not created; no
/// store at all is an error that says what to pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tenants_missing_files_and_no_store_are_told_apart() {
    use eventsrc::{Tenant, Tenants};
    let dir = TempDir::new("eventsrc-cli");
    let store = Store::open(&dir.url()).await.unwrap();
    seed(&store.with_tenant(Tenant::new("acme"))).await;
    let theirs = json(&dir.url(), &["streams", "--tenant", "acme"]).await;
    assert_eq!(theirs["streams"].as_array().unwrap().len(), 4);
    let default = json(&dir.url(), &["streams"]).await;
    assert_eq!(default["streams"].as_array().unwrap().len(), 0);

    let missing = dir.0.join("nothing-here.db");
    let url = format!("sqlite://{}", missing.display());
    assert_eq!(run(&url, &["streams"]).await.0, ExitCode::FAILURE);
    assert!(!missing.exists());

    let mut out = Vec::new();
    let code = Cli::new().run_from(["eventsrc", "head"], &mut out).await;
    // EVENTSRC_STORE is not set in the test environment (`.ci/run` does not set it).
    if std::env::var_os("EVENTSRC_STORE").is_none() {
        assert_eq!(code, ExitCode::FAILURE);
    }
    // A usage error is exit code 2.
    let code = Cli::new()
        .run_from(["eventsrc", "streams", "--limit", "many"], &mut out)
        .await;
    assert_eq!(code, ExitCode::from(2));
}

// --- PostgreSQL -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inspecting_commands_show_the_store() {
    let Some((store, url)) = postgres("postgres_inspecting_commands_show_the_store").await else {
        return;
    };
    inspecting_commands_show_the_store(&url, &store).await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tail_follows_the_log_live() {
    let Some((store, url)) = postgres("postgres_tail_follows_the_log_live").await else {
        return;
    };
    tail_follows_the_log_live(&url, &store).await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_operating_commands_change_what_they_say() {
    let Some((store, url)) = postgres("postgres_operating_commands_change_what_they_say").await
    else {
        return;
    };
    operating_commands_change_what_they_say(&url, &store).await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lifecycle_commands_remove_and_archive() {
    let Some((store, url)) = postgres("postgres_lifecycle_commands_remove_and_archive").await
    else {
        return;
    };
    lifecycle_commands_remove_and_archive(&url, &store).await;
    drop_schema(&store).await;
}

// --- the schema -------------------------------------------------------------------------------

/// On a store with no schema yet (`url`), looking is refused without changing anything,
/// `migrate` creates the schema and says so, and a second `migrate` has nothing to do.
async fn migrate_creates_what_looking_refuses(url: &str) {
    assert_eq!(run(url, &["head"]).await.0, ExitCode::FAILURE);
    let migrated = json(url, &["migrate"]).await;
    assert_eq!(migrated["from"], 0);
    let to = migrated["to"].as_i64().unwrap();
    assert!(to >= 3, "{migrated}");
    assert_eq!(json(url, &["head"]).await["head"], "0:0");
    let again = json(url, &["migrate"]).await;
    assert_eq!(
        (again["from"].as_i64(), again["to"].as_i64()),
        (Some(to), Some(to))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrate_creates_what_looking_refuses_and_the_ddl_is_the_same_schema() {
    let dir = TempDir::new("eventsrc-cli");
    // An empty database file: there, but without the schema.
    let empty = dir.0.join("empty.db");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("VACUUM")
        .unwrap();
    migrate_creates_what_looking_refuses(&format!("sqlite://{}", empty.display())).await;

    // The DDL `schema` prints, applied by hand, makes a store the command line opens as it is.
    let (code, ddl) = run(&dir.url(), &["schema"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(ddl.contains("CREATE TABLE events"), "{ddl}");
    let by_hand = dir.0.join("by-hand.db");
    let mut conn = rusqlite::Connection::open(&by_hand).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(&ddl).unwrap();
    tx.commit().unwrap();
    drop(conn);
    let url = format!("sqlite://{}", by_hand.display());
    assert_eq!(json(&url, &["head"]).await["head"], "0:0");
    assert_eq!(
        json(&url, &["migrate"]).await["from"],
        json(&url, &["migrate"]).await["to"]
    );
    // No store and no backend: the DDL of which backend is a question, not a guess.
    let mut out = Vec::new();
    let code = Cli::new().run_from(["eventsrc", "schema"], &mut out).await;
    if std::env::var_os("EVENTSRC_STORE").is_none() {
        assert_eq!(code, ExitCode::FAILURE);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrate_creates_what_looking_refuses_and_the_ddl_is_the_same_schema() {
    let test = "postgres_migrate_creates_what_looking_refuses_and_the_ddl_is_the_same_schema";
    let Some(url) = stores::postgres_url(test) else {
        return;
    };
    migrate_creates_what_looking_refuses(&url).await;
    let store = Store::open(&url).await.unwrap();

    // The DDL for another schema, applied by hand, opens without migrating.
    let Store::Postgres(pg) = &store else {
        unreachable!()
    };
    let other = format!("{}_ddl", pg.schema());
    let (code, ddl) = run(&url, &["schema", "--schema", &other]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        ddl.contains(&format!("\"{other}\".events")) || ddl.contains(&format!("{other}.events")),
        "{ddl}"
    );
    let client = pg.pool().get().await.unwrap();
    client
        .batch_execute(&format!("BEGIN; {ddl}; COMMIT;"))
        .await
        .unwrap();
    let other_url = url.replace(pg.schema(), &other);
    assert_eq!(json(&other_url, &["head"]).await["head"], "0:0");
    client
        .batch_execute(&format!("DROP SCHEMA \"{other}\" CASCADE"))
        .await
        .unwrap();
    drop(client);
    drop_schema(&store).await;
}
