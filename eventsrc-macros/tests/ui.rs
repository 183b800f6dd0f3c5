//! Compile-time behaviour of the macros: every supported form compiles (`ui/pass`), every misuse
//! fails with the checked-in message (`ui/fail/*.stderr`). Regenerate the messages with
//! `TRYBUILD=overwrite cargo test -p eventsrc-macros --test ui` and read the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
