//! `leads-admin`, the command line with the leads domain linked in, on what the leads demo
//! stored: on a SQLite file and on a PostgreSQL schema (`EVENTSRC_POSTGRES_URL`; without it the
//! PostgreSQL test prints `EVENTSRC-POSTGRES-SKIPPED` and passes, which `.ci/run` refuses).
//! The demo's events decode through the domain's types and `check` passes; the stand-alone
//! binary's counterpart is `eventsrc-cli`'s tests.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn run(binary: &str, args: &[&str]) -> Output {
    let output = Command::new(binary).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{binary} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn the_admin_reads_the_demos_events(url: &str) {
    run(env!("CARGO_BIN_EXE_leads"), &["--store", url]);
    let admin = env!("CARGO_BIN_EXE_leads-admin");

    let check = run(admin, &["--store", url, "check"]);
    let said = String::from_utf8(check.stdout).unwrap();
    assert!(said.contains("check passed"), "{said}");
    for stored in [
        "LeadWasInitialized",
        "ContactInformationChanged",
        "StatusChanged",
    ] {
        assert!(said.contains(stored), "{said}");
    }

    let events = run(admin, &["--store", url, "events", "lead-1410", "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&events.stdout).unwrap();
    let first = &events["events"][0];
    assert_eq!(first["event_type"], "LeadWasInitialized");
    // Decoded through the domain's type, not only shown as stored.
    assert_eq!(first["decoded"]["id"], 1410);
    assert_eq!(first["decode_error"], serde_json::Value::Null);

    let lag = run(admin, &["--store", url, "lag", "--json"]);
    let lag: serde_json::Value = serde_json::from_slice(&lag.stdout).unwrap();
    let consumers: Vec<&str> = lag["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["consumer"].as_str().unwrap())
        .collect();
    // On SQLite the read models keep their checkpoints in the store's file.
    if url.starts_with("sqlite") {
        assert_eq!(consumers, ["lead_search", "lead_status_log"]);
        assert!(
            lag["consumers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["events_behind"] == 0)
        );
    }
}

#[test]
fn sqlite_the_admin_reads_the_demos_events() {
    let dir =
        std::env::temp_dir().join(format!("eventsrc-leads-admin-{}", eventsrc::EventId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("demo.db").display());
    the_admin_reads_the_demos_events(&url);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn postgres_the_admin_reads_the_demos_events() {
    let server = match std::env::var("EVENTSRC_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!(
                "\nEVENTSRC-POSTGRES-SKIPPED: `postgres_the_admin_reads_the_demos_events` did \
                 not run: set EVENTSRC_POSTGRES_URL\n"
            );
            return;
        }
    };
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let random = eventsrc::EventId::new().0.simple().to_string();
    // Named as eventsrc-postgres's tests name theirs, whose support code sweeps old ones.
    let schema = format!("eventsrc_test_{seconds}_{}", &random[random.len() - 12..]);
    let separator = if server.contains('?') { '&' } else { '?' };
    the_admin_reads_the_demos_events(&format!("{server}{separator}schema={schema}"));
}
