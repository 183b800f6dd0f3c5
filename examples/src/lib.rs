//! The source talks' domains, written against `eventsrc` and runnable end to end.
//!
//! - [`leads`]: seed 002's sales leads (events, the `Lead` aggregate, its commands and rules).
//!   The demo binary tells the talk's story of Stefan Ivanov:
//!   `cargo run -p eventsrc-examples --bin leads`.
//! - [`race`]: a store wrapper that stages a concurrent writer on cue, for showing and testing
//!   what the repository does when two commands race.

pub mod leads;
pub mod race;
