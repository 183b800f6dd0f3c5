//! The storage traits every backend implements: [`EventStore`](crate::EventStore), [`SnapshotStore`](crate::SnapshotStore) and
//! [`CheckpointStore`](crate::CheckpointStore).
//!
//! They are deliberately small so that a new backend is an afternoon's work; `eventsrc-testing`
//! ships the conformance suite that proves one. Futures are `Send`, and the core depends on no
//! async runtime. Every handle belongs to one [`Tenant`] and sees nothing of any other.
//!
//! Each trait is implemented for `&S` and `Arc<S>` of a store, every method (the defaulted
//! ones included) going to the store behind the pointer: borrow or share a store rather than
//! write a wrapper that forwards.
//!
//! [`EventStore`]: crate::EventStore
//! [`SnapshotStore`]: crate::SnapshotStore
//! [`CheckpointStore`]: crate::CheckpointStore
//! [`Tenant`]: crate::Tenant

pub(crate) mod inline;
mod inspect;
pub mod lifecycle;
mod pointers;
pub(crate) mod retry;
pub(crate) mod traits;

pub use self::inspect::{CheckpointSummary, Inspect, ListStreams, StoredTypeCount, StreamSummary};
pub use self::lifecycle::{
    Deleted, Deletion, Lifecycle, Retention, RetentionReport, STREAM_DELETED, STREAM_TOMBSTONED,
    StreamDeleted, StreamTombstoned, Truncated, apply_retention,
};
pub use self::traits::{
    AppendResult, Direction, EventFilter, NoSnapshots, ReadAll, ReadStream, Snapshot, StreamAppend,
};
pub use crate::aggregate::SnapshotFormat;
