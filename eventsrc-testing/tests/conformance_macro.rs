//! `event_store_conformance!` with declared capabilities: the memory store, told it lacks two of
//! them, runs the suite with the cases needing those skipped; with `skip_if`, alone and beside
//! capabilities and a teardown, in any order; and the list of cases itself.

#![cfg(feature = "conformance")]
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use eventsrc_testing::conformance::{CASES, Capabilities, missing_capability, skips, skips_if};

eventsrc_testing::event_store_conformance!(
    || async { eventsrc::MemoryStore::new() },
    capabilities = Capabilities {
        large_payloads: false,
        local_clock: false,
        ..Capabilities::all()
    },
);

/// `skip_if` saying yes to everything, beside capabilities: no case asks for a store, since the
/// factory panics.
mod skip_if_everything {
    use eventsrc::MemoryStore;
    use eventsrc_testing::conformance::Capabilities;

    async fn no_store() -> MemoryStore {
        panic!("skip_if skips every case, so the factory is never called");
    }

    eventsrc_testing::event_store_conformance!(
        no_store,
        skip_if = |_| true,
        capabilities = Capabilities {
            concurrent_writers: false,
            ..Capabilities::all()
        },
    );
}

/// `skip_if` choosing one case to run, the others skipped. The teardown runs after it on a clone
/// that shares the case's storage, so it sees what the case appended.
mod skip_if_all_but_one {
    use eventsrc::{EventStore, GlobalPosition, MemoryStore};

    const RUNS: &str = "append_records_every_field";

    eventsrc_testing::event_store_conformance!(
        || async { MemoryStore::new() },
        teardown = |store: MemoryStore| async move {
            assert_ne!(store.head_position().await.unwrap(), GlobalPosition::START);
        },
        skip_if = |case: &str| case != RUNS,
    );
}

#[test]
fn skips_if_skips_what_the_closure_names() {
    let large = |case: &str| case.contains("mebibyte");
    let skipped: Vec<&str> = CASES
        .iter()
        .copied()
        .filter(|case| skips_if(case, large))
        .collect();
    assert_eq!(skipped, ["a_one_mebibyte_payload_round_trips"]);
    assert!(!skips_if("append_records_every_field", |_| false));
}

#[test]
fn every_case_is_listed_once() {
    assert!(CASES.len() >= 30, "only {} cases", CASES.len());
    let mut names = CASES.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "a case is listed twice");
}

#[test]
fn a_missing_capability_skips_exactly_the_cases_needing_it() {
    let single_writer = Capabilities {
        concurrent_writers: false,
        ..Capabilities::all()
    };
    let skipped: Vec<&str> = CASES
        .iter()
        .copied()
        .filter(|case| missing_capability(case, &single_writer).is_some())
        .collect();
    assert_eq!(
        skipped,
        [
            "concurrent_appends_across_streams_have_one_winner",
            "racing_runs_with_one_key_append_once",
            "racing_sign_ups_for_one_address_leave_one_user",
            "racing_nodes_with_caches_lose_no_deposit",
            "concurrent_appends_to_one_stream_have_one_winner_per_version",
            "concurrent_appends_to_many_streams_all_land",
            "a_reader_tailing_concurrent_appends_misses_nothing",
        ]
    );
    let case = "a_one_mebibyte_payload_round_trips";
    let small_rows = Capabilities {
        large_payloads: false,
        ..Capabilities::all()
    };
    assert_eq!(
        missing_capability(case, &small_rows),
        Some("large_payloads")
    );
    assert!(skips(case, &small_rows));
    assert!(!skips(case, &Capabilities::all()));
    assert_eq!(missing_capability("not_a_case", &small_rows), None);
}
