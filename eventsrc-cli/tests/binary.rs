//! The stand-alone `eventsrc` binary, run as a process on a SQLite file and a PostgreSQL
//! schema: with no event types linked in it shows payloads as stored, and `check` fails,
//! saying to run it from the application's binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use eventsrc::{EventStore, ExpectedVersion, NewEvent, Store, StreamId};

/// Runs the binary with `args`, the store URL in `EVENTSRC_STORE`.
fn eventsrc(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventsrc"))
        .args(args)
        .env("EVENTSRC_STORE", url)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

async fn seed(store: &Store) {
    let stream = StreamId::new("cart", 7).unwrap();
    let events = vec![
        NewEvent::raw("cart.item_added", 1, r#"{"sku":"pear"}"#),
        NewEvent::raw("cart.checked_out", 1, "{}"),
    ];
    store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
}

fn the_binary_shows_stored_events_raw(url: &str) {
    let streams = eventsrc(url, &["streams"]);
    assert!(streams.status.success(), "{streams:?}");
    let table = stdout(&streams);
    assert!(
        table.contains("cart-7") && table.contains("stream"),
        "{table}"
    );

    let events = eventsrc(url, &["events", "cart-7", "--json"]);
    assert!(events.status.success(), "{events:?}");
    let events: serde_json::Value = serde_json::from_slice(&events.stdout).unwrap();
    assert_eq!(events["events"][0]["payload"]["sku"], "pear");
    // Nothing is linked in to decode it with.
    assert_eq!(events["events"][0]["decoded"], serde_json::Value::Null);
    assert!(
        events["events"][0]["decode_error"]
            .as_str()
            .unwrap()
            .contains("cart.item_added")
    );

    let check = eventsrc(url, &["check"]);
    assert_eq!(check.status.code(), Some(1));
    let said = stdout(&check);
    assert!(said.contains("no event types linked in"), "{said}");

    let help = eventsrc(url, &["--help"]);
    let help = stdout(&help);
    for command in [
        "streams", "events", "tail", "lag", "parked", "check", "migrate", "schema",
    ] {
        assert!(help.contains(command), "--help misses {command}: {help}");
    }

    let bad = eventsrc(url, &["events", "not a stream!"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("error:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_binary_shows_stored_events_raw() {
    let dir = std::env::temp_dir().join(format!("eventsrc-cli-bin-{}", eventsrc::EventId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("events.db").display());
    seed(&Store::open(&url).await.unwrap()).await;
    the_binary_shows_stored_events_raw(&url);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_binary_shows_stored_events_raw() {
    let Ok(server) = std::env::var("EVENTSRC_POSTGRES_URL") else {
        eprintln!(
            "\nEVENTSRC-POSTGRES-SKIPPED: `postgres_the_binary_shows_stored_events_raw` did not \
             run: set EVENTSRC_POSTGRES_URL\n"
        );
        return;
    };
    let random = eventsrc::EventId::new().0.simple().to_string();
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schema = format!("eventsrc_test_{seconds}_{}", &random[random.len() - 12..]);
    let separator = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{separator}schema={schema}");
    let store = Store::open(&url).await.unwrap();
    seed(&store).await;
    the_binary_shows_stored_events_raw(&url);
    let Store::Postgres(pg) = &store else {
        unreachable!()
    };
    pg.pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
