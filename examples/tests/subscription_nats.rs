//! The subscriptions demo with `--nats`: the notifications reach the reactor through a NATS
//! JetStream stream (`EVENTSRC_NATS_URL`, by default `nats://127.0.0.1:4222`; a server that
//! cannot be reached fails the test), and come out as they do from the store.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn nats_url() -> String {
    std::env::var("EVENTSRC_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// The demo's output from the outbox on (what it notified), and all of it.
fn run(args: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_subscription"))
        .args(args)
        .env_remove("EVENTSRC_STORE")
        .env_remove("EVENTSRC_NATS_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let outbox = stdout[stdout.find("Outbox of this run").unwrap()..].to_owned();
    (outbox, stdout)
}

#[test]
fn notifications_through_nats_are_those_from_the_store() {
    let url = nats_url();
    let (direct, _) = run(&[]);
    let (through_nats, all) = run(&["--nats", &url]);
    assert_eq!(through_nats, direct);
    assert!(
        all.contains("Relay `subscriptions_to_nats` publishes 2 new events to NATS"),
        "{all}"
    );
    assert!(all.contains("checkpoint at message 4"), "{all}");
    assert!(
        all.contains("-> parked subscription.activated (subscription-12 v4) after 3 tries"),
        "{all}"
    );
    assert!(
        all.contains("1 event sent and unparked, 0 still parked"),
        "{all}"
    );
}

#[test]
fn a_nats_server_that_does_not_answer_is_an_error_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_subscription"))
        .args(["--nats", "nats://127.0.0.1:1"])
        .env_remove("EVENTSRC_STORE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("error: connecting to NATS at `nats://127.0.0.1:1`"),
        "{stderr}"
    );
}
