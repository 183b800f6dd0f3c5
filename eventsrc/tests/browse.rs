//! The event browser (`eventsrc::cli::serve_browser`, the `browse` command), served in process
//! on 127.0.0.1:0 over a seeded store, on a SQLite file and on a PostgreSQL schema, and read
//! through headless Chromium (`chromium --headless --dump-dom`): every page's DOM, the escaping
//! of hostile payloads, the causation tree of a correlation id, and the 400/404 pages.
//!
//! Chromium must be installed (`apt-get install chromium`; `.ci/run` installs it): without it
//! these tests fail rather than skip. `EVENTSRC_CHROMIUM` names another binary.
//!
//! With `EVENTSRC_SCREENSHOTS=1`, `screenshots_for_the_docs` writes a PNG of every page into
//! `docs/browser/` (`cargo nextest run -p eventsrc --features cli,sqlite,postgres --test browse
//! screenshots`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/stores.rs"]
mod stores;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitCode};

use eventsrc::backend::{ParkedEvent, ParkedStore};
use eventsrc::cli::{Cli, serve_browser};
use eventsrc::store::StreamAppend;
use eventsrc::subscription::Lag;
use eventsrc::{
    CheckpointStore, Event, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent,
    RecordedEvent, Store, StreamId, Timestamp, Uuid,
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
#[derive(Event, Serialize, Deserialize)]
#[event(name = "cart.item_added", version = 2, upcast_json = default_quantity)]
struct ItemAdded {
    sku: String,
    quantity: u32,
}

#[derive(Event, Serialize, Deserialize)]
#[event(name = "cart.checked_out")]
struct CheckedOut;

#[derive(Event, Serialize, Deserialize)]
#[event(name = "user.registered")]
struct Registered {
    email: String,
}

#[derive(Event, Serialize, Deserialize)]
#[event(name = "order.placed")]
struct OrderPlaced {
    total_cents: u64,
}

#[derive(Event, Serialize, Deserialize)]
#[event(name = "order.item_reserved")]
struct ItemReserved {
    sku: String,
}

#[derive(Event, Serialize, Deserialize)]
#[event(name = "payment.taken")]
struct PaymentTaken {
    amount_cents: u64,
    card: String,
}

#[derive(Event, Serialize, Deserialize)]
#[event(name = "order.paid")]
struct OrderPaid {
    receipt: String,
}

#[derive(Event, Serialize, Deserialize)]
#[event(name = "note.added")]
struct NoteAdded {
    text: String,
}

// --- the seeded store -------------------------------------------------------------------------

/// The stream whose name and payload are markup.
const HOSTILE_STREAM: &str = "note-<b>bold</b>";
const HOSTILE_TEXT: &str = "<script>alert(1)</script>";

/// What the seed wrote, for the assertions.
struct Seeded {
    /// cart-1's events, in order.
    cart: Vec<RecordedEvent>,
    /// The command's correlation id, and its events: order.placed (the root, caused by the
    /// command), payment.taken (caused by it, in payment-1), order.paid (caused by the payment)
    /// and order.item_reserved (caused by the placing).
    correlation: Uuid,
    placed: RecordedEvent,
    payment: RecordedEvent,
    paid: RecordedEvent,
    reserved: RecordedEvent,
    /// The `orders_view` checkpoint.
    checkpoint: GlobalPosition,
}

fn new<E: Event>(event: &E, metadata: Metadata) -> NewEvent {
    NewEvent::from_event(event, metadata).unwrap()
}

async fn append(store: &Store, stream: &str, events: Vec<NewEvent>) {
    let stream: StreamId = stream.parse().unwrap();
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .unwrap();
}

async fn read(store: &Store, stream: &str) -> Vec<RecordedEvent> {
    let stream: StreamId = stream.parse().unwrap();
    store
        .read_stream(&stream, Default::default())
        .await
        .unwrap()
}

/// Seeds carts, a user, a command's events across two streams, a hostile note, a checkpoint
/// and a parked event; with `bulk`, 100 streams more, so that the streams and the log have a
/// second page.
async fn seed(store: &Store, bulk: bool) -> Seeded {
    if bulk {
        let appends = (0..100)
            .map(|n| {
                StreamAppend::new(
                    format!("bulk-{n:03}").parse().unwrap(),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::raw("bulk.loaded", 1, format!(r#"{{"n":{n}}}"#))],
                )
            })
            .collect();
        store.append_streams(appends).await.unwrap();
    }
    let pear = NewEvent::raw("cart.item_added", 1, r#"{"sku":"pear"}"#);
    let fig = ItemAdded {
        sku: "fig".into(),
        quantity: 3,
    };
    append(
        store,
        "cart-1",
        vec![
            pear,
            new(&fig, Metadata::new()),
            new(&CheckedOut, Metadata::new()),
        ],
    )
    .await;
    for (stream, sku) in [("cart-2", "kiwi"), ("cart-10", "plum")] {
        let added = ItemAdded {
            sku: sku.into(),
            quantity: 1,
        };
        append(store, stream, vec![new(&added, Metadata::new())]).await;
    }
    let ada = Registered {
        email: "ada@example.com".into(),
    };
    append(
        store,
        "user-7",
        vec![new(&ada, Metadata::new().with_actor("signup-form"))],
    )
    .await;

    // One command's events across order-1 and payment-1, each caused by the one before it.
    let correlation = Uuid::now_v7();
    let command = Uuid::now_v7();
    let placed = new(
        &OrderPlaced { total_cents: 4200 },
        Metadata::new()
            .with_correlation_id(correlation)
            .with_causation_id(command),
    );
    let reserved = new(
        &ItemReserved {
            sku: "lamp-3000".into(),
        },
        Metadata::new()
            .with_correlation_id(correlation)
            .with_causation_id(placed.event_id.0),
    );
    let (placed_id, reserved_id) = (placed.event_id, reserved.event_id);
    append(store, "order-1", vec![placed, reserved]).await;
    let payment = new(
        &PaymentTaken {
            amount_cents: 4200,
            card: "visa-4242".into(),
        },
        Metadata::new()
            .with_correlation_id(correlation)
            .with_causation_id(placed_id.0),
    );
    let payment_id = payment.event_id;
    append(store, "payment-1", vec![payment]).await;
    let paid = new(
        &OrderPaid {
            receipt: "R-77".into(),
        },
        Metadata::new()
            .with_correlation_id(correlation)
            .with_causation_id(payment_id.0),
    );
    append(store, "order-1", vec![paid]).await;
    // Another command's event, which the correlation page must leave out.
    let other = new(
        &OrderPlaced { total_cents: 1 },
        Metadata::new().with_correlation_id(Uuid::now_v7()),
    );
    append(store, "order-2", vec![other]).await;

    let note = NoteAdded {
        text: HOSTILE_TEXT.into(),
    };
    append(
        store,
        HOSTILE_STREAM,
        vec![new(&note, Metadata::new().with("source", "<img src=x>"))],
    )
    .await;

    let cart = read(store, "cart-1").await;
    let order = read(store, "order-1").await;
    let payment = read(store, "payment-1").await.remove(0);
    let by_id = |id| order.iter().find(|e| e.event_id == id).unwrap().clone();
    let checkpoint = cart[1].global_position;
    store
        .save_checkpoint("orders_view", checkpoint)
        .await
        .unwrap();
    store
        .park(ParkedEvent {
            reactor: "receipts".into(),
            event: cart[2].clone(),
            error: "the printer is out of paper <jam>".into(),
            attempts: 5,
            parked_at: Timestamp::now(),
        })
        .await
        .unwrap();
    Seeded {
        cart,
        correlation,
        placed: by_id(placed_id),
        payment,
        paid: order
            .iter()
            .find(|e| e.stream_version.get() == 3)
            .unwrap()
            .clone(),
        reserved: by_id(reserved_id),
        checkpoint,
    }
}

// --- the browser ------------------------------------------------------------------------------

/// The Chromium binary: `EVENTSRC_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> String {
    std::env::var("EVENTSRC_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// Runs headless Chromium with `args` then `url`, in a profile directory of its own (tests run
/// in parallel), returning its stdout; fails the test, saying how to install it, if Chromium
/// is missing.
async fn run_chromium(args: Vec<String>, url: String) -> String {
    tokio::task::spawn_blocking(move || {
        let profile = TempDir::new("eventsrc-browse-chromium");
        let output = Command::new(chromium())
            .args(["--headless", "--no-sandbox", "--disable-gpu"])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .args(&args)
            .arg(&url)
            .output();
        let output = match output {
            Ok(output) => output,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                "Chromium is not installed: the browser tests read the pages with headless \
                 Chromium; install it with `apt-get install chromium` (or set \
                 EVENTSRC_CHROMIUM to its binary)"
            ),
            Err(error) => panic!("running {}: {error}", chromium()),
        };
        assert!(
            output.status.success(),
            "chromium {args:?} {url} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    })
    .await
    .unwrap()
}

/// The DOM of the page at `path`, as Chromium serializes it after loading it.
async fn dom(addr: SocketAddr, path: &str) -> String {
    let dom = run_chromium(vec!["--dump-dom".into()], format!("http://{addr}{path}")).await;
    assert!(dom.contains("<nav>"), "{path}: no page: {dom}");
    dom
}

/// The HTTP status of `GET path`, read off the status line.
async fn status(addr: SocketAddr, path: &str) -> u16 {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("GET {path}: no status line: {response}"))
    })
    .await
    .unwrap()
}

/// Serves the browser for `store` on 127.0.0.1:0, returning its address and the server task.
async fn serve(store: &Store) -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, tokio::spawn(serve_browser(store.clone(), listener)))
}

/// Where `needle` is in `haystack`, failing with the page if it is not there.
fn at(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the page: {haystack}"))
}

/// The `data-depth` of the tree node of the event `id`.
fn depth(page: &str, id: eventsrc::EventId) -> u32 {
    let node = at(page, &format!("id=\"e-{id}\""));
    let start = page[..node].rfind("<li").unwrap();
    let tag = &page[start..node];
    let depth = tag.split("data-depth=\"").nth(1).unwrap();
    depth[..depth.find('"').unwrap()].parse().unwrap()
}

// --- the pages --------------------------------------------------------------------------------

async fn every_page_shows_the_store(store: &Store) {
    let seeded = seed(store, true).await;
    let (addr, server) = serve(store).await;
    let head = store.head_position().await.unwrap();

    // The overview: the store, the tenant, the head, the stored types with their counts.
    let page = dom(addr, "/").await;
    assert!(page.contains(&store.to_string()), "{page}");
    assert!(page.contains("default"), "{page}");
    assert!(page.contains(&head.to_string()), "{page}");
    assert!(page.contains("cart.item_added"), "{page}");
    assert!(page.contains("bulk.loaded"), "{page}");
    assert!(page.contains("upcast to 2"), "{page}");
    assert!(page.contains("not linked in"), "{page}");
    for link in ["/streams", "/log", "/runners", "/parked"] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    }

    // Streams: 100 a page in name order, the next page after the last, escaped names.
    let page = dom(addr, "/streams").await;
    assert!(
        page.contains("bulk-000") && page.contains("bulk-099"),
        "{page}"
    );
    assert!(!page.contains("cart-1"), "{page}");
    assert!(page.contains("href=\"/streams?after=bulk-099\""), "{page}");
    let page = dom(addr, "/streams?after=bulk-099").await;
    let order = [
        "cart-1<",
        "cart-10<",
        "cart-2<",
        "note-",
        "order-1<",
        "payment-1<",
        "user-7<",
    ];
    let places: Vec<usize> = order.iter().map(|s| at(&page, s)).collect();
    assert!(places.is_sorted(), "{page}");
    assert!(page.contains("note-&lt;b&gt;bold&lt;/b&gt;"), "{page}");
    assert!(!page.contains("<b>"), "{page}");
    assert!(!page.contains("bulk-"), "{page}");
    let page = dom(addr, "/streams?category=cart").await;
    assert!(
        page.contains("cart-10") && !page.contains("user-7"),
        "{page}"
    );

    // A stream: its events decoded to the current version, metadata, paging by version.
    let page = dom(addr, "/streams/cart-1").await;
    assert!(page.contains("cart.item_added@1"), "{page}");
    assert!(page.contains("cart.checked_out@1"), "{page}");
    assert!(page.contains("\"pear\""), "{page}");
    // The version 1 payload upcast: a quantity of 1 it never stored.
    let pear = at(&page, "\"pear\"");
    assert!(page[pear - 40..pear].contains("\"quantity\": 1"), "{page}");
    assert!(page.contains("upcast to version 2"), "{page}");
    assert!(page.contains("\"fig\""), "{page}");
    assert!(
        page.contains(&seeded.cart[2].global_position.to_string()),
        "{page}"
    );
    let page = dom(addr, "/streams/cart-1?from=2").await;
    assert!(
        page.contains("\"fig\"") && !page.contains("\"pear\""),
        "{page}"
    );
    let page = dom(addr, "/streams/user-7").await;
    assert!(
        page.contains("ada@example.com") && page.contains("signup-form"),
        "{page}"
    );
    let page = dom(addr, "/streams/bulk-007").await;
    assert!(
        page.contains("as stored: not decoded by this build"),
        "{page}"
    );

    // Hostile text comes out as text: no script, no image, no bold.
    let page = dom(addr, "/streams/note-%3Cb%3Ebold%3C%2Fb%3E").await;
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("&lt;img src=x&gt;"), "{page}");
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<b>"), "{page}");

    // The log: 100 a page, then the next after the last position.
    let page = dom(addr, "/log").await;
    assert!(
        page.contains("bulk-000@1") && !page.contains("cart-1@1"),
        "{page}"
    );
    let next = at(&page, "/log?after=");
    let after = &page[next + "/log?after=".len()..];
    let after = &after[..after.find('"').unwrap()];
    let page = dom(addr, &format!("/log?after={after}")).await;
    assert!(
        page.contains("cart-1@1") && page.contains("order-1@3"),
        "{page}"
    );
    assert!(!page.contains("bulk-0"), "{page}");

    // One event whole, its correlation and causation as links.
    let page = dom(addr, &format!("/events/{}", seeded.paid.event_id)).await;
    assert!(
        page.contains("order-1") && page.contains("\"R-77\""),
        "{page}"
    );
    assert!(page.contains("order.paid@1"), "{page}");
    assert!(
        page.contains(&format!("href=\"/correlation/{}\"", seeded.correlation)),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"/events/{}\"", seeded.payment.event_id)),
        "{page}"
    );

    // The correlation: the command's four events across two streams, as a causation tree:
    // placed, under it the payment (under which the paid) and the reservation.
    let page = dom(addr, &format!("/correlation/{}", seeded.correlation)).await;
    assert!(page.contains("4 events in 2 streams"), "{page}");
    assert_eq!(depth(&page, seeded.placed.event_id), 0, "{page}");
    assert_eq!(depth(&page, seeded.payment.event_id), 1, "{page}");
    assert_eq!(depth(&page, seeded.paid.event_id), 2, "{page}");
    assert_eq!(depth(&page, seeded.reserved.event_id), 1, "{page}");
    // In log order under each cause: the reservation (appended first), then the payment with
    // the paid nested in its list.
    let ids = [
        &seeded.placed,
        &seeded.reserved,
        &seeded.payment,
        &seeded.paid,
    ]
    .map(|e| at(&page, &format!("id=\"e-{}\"", e.event_id)));
    assert!(ids.is_sorted(), "children follow their cause: {page}");
    assert!(
        page[ids[2]..ids[3]].contains("<ul class=\"tree\">"),
        "{page}"
    );
    assert!(!page[ids[1]..ids[2]].contains("<ul"), "{page}");
    assert!(
        page.contains("visa-4242") && page.contains("lamp-3000"),
        "{page}"
    );
    assert!(!page.contains("order-2"), "{page}");

    // Runners: the checkpoint, the head, and how many events behind.
    let page = dom(addr, "/runners").await;
    let lag = Lag::between(seeded.checkpoint, head).events;
    assert!(lag > 0);
    assert!(page.contains("orders_view"), "{page}");
    assert!(page.contains(&seeded.checkpoint.to_string()), "{page}");
    assert!(page.contains(&format!(">{lag}</td>")), "{lag}: {page}");

    // Parked: the reactor, the event, the attempts and the error, escaped.
    let page = dom(addr, "/parked").await;
    assert!(page.contains("receipts"), "{page}");
    assert!(
        page.contains("the printer is out of paper &lt;jam&gt;"),
        "{page}"
    );
    assert!(page.contains(">5</td>"), "{page}");
    assert!(
        page.contains(&format!("href=\"/events/{}\"", seeded.cart[2].event_id)),
        "{page}"
    );

    // What is not there is a 404 page; what is malformed, a 400 page; never a panic.
    let page = dom(addr, "/streams/cart-404").await;
    assert!(
        page.contains("404 Not Found") && page.contains("cart-404"),
        "{page}"
    );
    let missing = format!("/events/{}", Uuid::now_v7());
    let page = dom(addr, &missing).await;
    assert!(page.contains("404 Not Found"), "{page}");
    let page = dom(addr, "/events/%3Cnot-an-id%3E").await;
    assert!(page.contains("400 Bad Request"), "{page}");
    assert!(
        page.contains("&lt;not-an-id&gt;` is not an event id"),
        "{page}"
    );
    for (path, code) in [
        ("/", 200),
        ("/streams/cart-1", 200),
        ("/streams/cart-404", 404),
        ("/streams/nohyphen", 400),
        ("/streams/cart-1?from=first", 400),
        ("/log?after=yesterday", 400),
        ("/log?after=999999:999999", 200),
        ("/events/123", 400),
        (missing.as_str(), 404),
        ("/correlation/xyz", 400),
        (&format!("/correlation/{}", Uuid::now_v7()), 404),
        ("/nowhere", 404),
    ] {
        assert_eq!(status(addr, path).await, code, "GET {path}");
    }
    server.abort();
}

async fn browse_command_prints_where_it_serves(url: &str) {
    let mut out = Vec::new();
    let args = [
        "eventsrc",
        "--store",
        url,
        "browse",
        "--port",
        "0",
        "--open-for",
        "0.2",
    ];
    let code = Cli::new().run_from(args, &mut out).await;
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.starts_with("browsing a "), "{out}");
    assert!(out.contains(" at http://127.0.0.1:"), "{out}");
    let mut out = Vec::new();
    let args = ["eventsrc", "--store", url, "browse", "--open-for=-1"];
    assert_eq!(Cli::new().run_from(args, &mut out).await, ExitCode::FAILURE);
}

// --- SQLite -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_page_shows_the_store() {
    let dir = TempDir::new("eventsrc-browse");
    let store = Store::open(&dir.url()).await.unwrap();
    every_page_shows_the_store(&store).await;
    browse_command_prints_where_it_serves(&dir.url()).await;
}

// --- PostgreSQL -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_page_shows_the_store() {
    let Some((store, url)) = postgres("postgres_every_page_shows_the_store").await else {
        return;
    };
    every_page_shows_the_store(&store).await;
    browse_command_prints_where_it_serves(&url).await;
    drop_schema(&store).await;
}

// --- the screenshots of the docs ------------------------------------------------------------

/// With `EVENTSRC_SCREENSHOTS=1`: a PNG of every page of a small seeded SQLite store, into
/// `docs/browser/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_for_the_docs() {
    if std::env::var("EVENTSRC_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let dir = TempDir::new("eventsrc-browse-shots");
    let store = Store::open(&dir.url()).await.unwrap();
    let seeded = seed(&store, false).await;
    let (addr, server) = serve(&store).await;
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/browser");
    std::fs::create_dir_all(&docs).unwrap();
    let pages = [
        ("overview", "/".to_owned()),
        ("streams", "/streams".to_owned()),
        ("stream", "/streams/cart-1".to_owned()),
        ("log", "/log".to_owned()),
        ("event", format!("/events/{}", seeded.paid.event_id)),
        (
            "correlation",
            format!("/correlation/{}", seeded.correlation),
        ),
        ("runners", "/runners".to_owned()),
        ("parked", "/parked".to_owned()),
        ("not-found", "/streams/cart-404".to_owned()),
    ];
    for (name, path) in pages {
        let file = docs.join(format!("{name}.png"));
        let args = vec![
            format!("--screenshot={}", file.display()),
            "--window-size=1280,800".to_owned(),
            "--hide-scrollbars".to_owned(),
        ];
        run_chromium(args, format!("http://{addr}{path}")).await;
        assert!(file.exists(), "no screenshot of {path}");
    }
    server.abort();
}
