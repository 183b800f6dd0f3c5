//! The source talks' domains, written against `eventsrc` and runnable end to end.
//!
//! - [`leads`]: seed 002's sales leads (events, the `Lead` aggregate, its commands and rules).
//!   The demo binary tells the talk's story of Stefan Ivanov:
//!   `cargo run -p eventsrc-examples --bin leads`.
//! - [`cart`]: seed 004's shopping cart, a fold over added and removed items, and the talk's
//!   "total computers sold" counter: `cargo run -p eventsrc-examples --bin cart`.
//! - [`subscription`]: seed 001's subscriptions (created, activated with a payment key,
//!   deactivated), with Rails-style presence validation and no-op commands:
//!   `cargo run -p eventsrc-examples --bin subscription`.
//! - [`race`]: a store wrapper that stages a concurrent writer on cue, for showing and testing
//!   what the repository does when two commands race.

pub mod cart;
pub mod leads;
pub mod race;
pub mod subscription;
