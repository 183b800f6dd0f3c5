//! `event_store_conformance!` with declared capabilities: the memory store, told it lacks two of
//! them, runs the suite with the cases needing those skipped; and the list of cases itself.

#![cfg(feature = "conformance")]

use eventsrc_testing::conformance::{CASES, Capabilities, missing_capability, skips};

eventsrc_testing::event_store_conformance!(
    || async { eventsrc::MemoryStore::new() },
    capabilities = Capabilities {
        large_payloads: false,
        local_clock: false,
        ..Capabilities::all()
    },
);

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
