//! Testing support for [`eventsrc`](https://docs.rs/eventsrc): given/when/then fixtures for
//! aggregates, projections and reactors, and the conformance suite every storage backend runs.
//!
//! This crate is a skeleton until the testing issue lands; it exists now so that the workspace
//! layout is final and dependants can name it.
