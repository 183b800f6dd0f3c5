//! Procedural macros for [`eventsrc`](https://docs.rs/eventsrc).
//!
//! Do not depend on this crate directly: `eventsrc` re-exports every macro and pins this crate to
//! its own exact version, so generated code and the runtime always agree.
//!
//! The macros (`#[derive(Event)]`, `#[aggregate]`, `#[command]`) arrive with the macros issue;
//! until then the runtime traits are implemented by hand, which is always possible.
