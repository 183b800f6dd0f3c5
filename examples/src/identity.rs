//! An identity service over HTTP: users and groups, with unique e-mail addresses, served by
//! axum on any store.
//!
//! - [`domain`]: the events, the aggregates ([`User`](domain::User),
//!   [`EmailOwner`](domain::EmailOwner), [`Group`](domain::Group)) and their commands. Signing
//!   up and changing an address are decided across streams ([`eventsrc::Decide`]): the user
//!   and the address's owner commit together, so no two users ever hold one address and
//!   nothing needs compensating.
//! - [`views`]: the read side as [`eventsrc::DocumentView`]s: users by id and by e-mail, the
//!   members of each group. The users view can be rebuilt under a new name beside the live
//!   one and switched in.
//! - [`service`]: the repository, the views' runners and the reads that wait for a
//!   consistency token.
//! - [`http`]: the HTTP contract: `ETag`/`If-Match`, `If-None-Match: *`, `Idempotency-Key`,
//!   `Consistency-Token`, and every error as an RFC 9457 problem document ([`problem`]).
//!
//! Run it with `cargo run -p eventsrc-examples --bin identity` (see the README's "An identity
//! service over HTTP").

pub mod domain;
pub mod http;
pub mod problem;
pub mod service;
pub mod views;
