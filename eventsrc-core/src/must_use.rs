//! Builders whose result is dropped are a compile error where `unused_must_use` is denied.
//! Each case that must fail has a twin that uses the result and compiles, so the failure is
//! the lint's and not a typo's.
//!
//! A bound or a read built and dropped:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! eventsrc::store::ReadStream::forward().limit(10);
//! ```
//!
//! ```
//! #![deny(unused_must_use)]
//! let _ = eventsrc::store::ReadStream::forward().limit(10);
//! ```
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! eventsrc::store::ReadAll::after(eventsrc::GlobalPosition::START).limit(10);
//! ```
//!
//! ```
//! #![deny(unused_must_use)]
//! let _ = eventsrc::store::ReadAll::after(eventsrc::GlobalPosition::START).limit(10);
//! ```
//!
//! Metadata built and dropped, where it was meant to be passed on:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! let metadata = eventsrc::Metadata::new();
//! metadata.with_actor("ada");
//! ```
//!
//! ```
//! #![deny(unused_must_use)]
//! let metadata = eventsrc::Metadata::new();
//! let _ = metadata.with_actor("ada");
//! ```
//!
//! A runner configured into nothing:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! # use eventsrc::{MemoryStore, Runner};
//! # use eventsrc::runner::Consumer;
//! fn configure<C: Consumer>(runner: Runner<MemoryStore, C>) {
//!     runner.batch_size(100);
//! }
//! ```
//!
//! ```
//! #![deny(unused_must_use)]
//! # use eventsrc::{MemoryStore, Runner};
//! # use eventsrc::runner::Consumer;
//! fn configure<C: Consumer>(runner: Runner<MemoryStore, C>) -> Runner<MemoryStore, C> {
//!     runner.batch_size(100)
//! }
//! ```
//!
//! A handle on another tenant, asked for and dropped:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! use eventsrc::{MemoryStore, Tenants};
//! MemoryStore::new().with_tenant("acme".into());
//! ```
//!
//! ```
//! #![deny(unused_must_use)]
//! use eventsrc::{MemoryStore, Tenants};
//! let _ = MemoryStore::new().with_tenant("acme".into());
//! ```
