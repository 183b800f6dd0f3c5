//! The storage traits every backend implements: [`EventStore`], [`SnapshotStore`] and
//! [`CheckpointStore`].
//!
//! They are deliberately small so that a new backend is an afternoon's work; `eventsrc-testing`
//! ships the conformance suite that proves one. Futures are `Send`, and the core depends on no
//! async runtime. Every handle belongs to one [`Tenant`] and sees nothing of any other.

pub(crate) mod retry;
pub(crate) mod traits;

pub use self::traits::{
    AppendResult, Direction, EventFilter, NoSnapshots, ReadAll, ReadStream, Snapshot,
};
pub use crate::aggregate::SnapshotFormat;
