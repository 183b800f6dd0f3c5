//! Five domains written against `eventsrc` and runnable end to end.
//!
//! - [`leads`]: a sales-leads CRM, after Vladik Khononov's talk "Event Sourcing: A New Dimension
//!   in Software Design" (events, the `Lead` aggregate, its commands and rules), and its read
//!   models in SQLite tables ([`leads::read_models`]: LeadSearch, every e-mail and phone a lead
//!   ever had, and the status-change log). The demo binary tells the story of Stefan Ivanov's
//!   lead ([`leads::story`]) on a SQLite file with the read models
//!   following it, and continues both on every further run (`--rebuild` rebuilds LeadSearch
//!   beside the live table and switches it in): `cargo run -p eventsrc-examples --bin leads`.
//! - [`cart`]: a shopping cart, a fold over added and removed items, checkout and a cancelled
//!   order (a compensating event), and a "total computers sold" counter over every cart; the
//!   demo also soft-deletes an abandoned cart and reads back its archive:
//!   `cargo run -p eventsrc-examples --bin cart`.
//! - [`progress`]: student progress reports (placed, activities and lessons completed, reset),
//!   snapshotted every 50 events, with the reports as projections: the highest lesson, the
//!   last quiz, the average growth per month: `cargo run -p eventsrc-examples --bin progress`.
//! - [`subscription`]: a subscriptions service (created, activated with a payment key,
//!   deactivated), with Rails-style presence validation, no-op commands, and notification
//!   reactors (a confirmation and a new-subscriber notification, written to an outbox once per
//!   event, retried and parked while the mail provider is down):
//!   `cargo run -p eventsrc-examples --bin subscription`.
//! - [`identity`]: an identity service over HTTP (axum): users and groups, unique e-mail
//!   addresses decided across streams, document views with a blue/green rebuild, and the HTTP
//!   contract of conditional, idempotent writes and read-your-writes:
//!   `cargo run -p eventsrc-examples --bin identity`.
//! - [`race`]: a store wrapper that stages a concurrent writer on cue, for showing and testing
//!   what the repository does when two commands race.
//! - [`narrate`]: what the demos print of a command and its outcome.
//! - [`store`]: the demos' command line. Every demo takes `--store <url>` or the
//!   `EVENTSRC_STORE` environment variable and opens it with [`eventsrc::Store::open`]
//!   (`memory:`, `sqlite://path/to/file.db`, `sqlite::memory:`,
//!   `postgres://user:password@host/database?schema=name`).

pub mod cart;
pub mod identity;
pub mod leads;
pub mod narrate;
pub mod progress;
pub mod race;
pub mod store;
pub mod subscription;
pub mod telemetry;
