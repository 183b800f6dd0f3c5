//! The storage traits for `&S` and `Arc<S>`: a borrowed or shared store is a store, so a
//! [`Repository`](crate::Repository), a [`Runner`](crate::Runner) or a wrapper can take one
//! without a clone or a hand-written forwarding impl.
//!
//! Every method goes to the store behind the pointer, the ones with defaults included
//! ([`EventStore::visit_stream`], [`EventStore::append_signal`]): a backend's borrowed loads
//! and its append signal survive the pointer.

use std::future::Future;
use std::sync::Arc;

use crate::backend::{
    AppendSignal, DocumentCommit, DocumentStore, DocumentWrite, Lease, Leases, ParkedEvent,
    ParkedStore, Select, StoredEvent,
};
use crate::store::{
    AppendResult, CheckpointSummary, Deleted, Deletion, Inspect, Lifecycle, ListStreams, ReadAll,
    ReadStream, Snapshot, StoredTypeCount, StreamAppend, StreamSummary, Truncated,
};
use crate::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent,
    SnapshotStore, StoreError, StreamId, StreamVersion, SwitchReadModel, Tenant, Tenants,
};

/// Implements the storage traits for the pointer type `$pointer` (written with `S`, the store
/// pointed to), each method calling the same one on `**self`.
macro_rules! through_pointer {
    ($pointer:ty) => {
        impl<S: EventStore + ?Sized> EventStore for $pointer {
            fn tenant(&self) -> &Tenant {
                (**self).tenant()
            }

            fn append(
                &self,
                stream: &StreamId,
                expected: ExpectedVersion,
                events: Vec<NewEvent>,
            ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send {
                (**self).append(stream, expected, events)
            }

            fn read_stream(
                &self,
                stream: &StreamId,
                read: ReadStream,
            ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
                (**self).read_stream(stream, read)
            }

            fn append_streams(
                &self,
                appends: Vec<StreamAppend>,
            ) -> impl Future<Output = Result<Vec<AppendResult>, StoreError>> + Send {
                (**self).append_streams(appends)
            }

            fn read_events(
                &self,
                ids: &[EventId],
            ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
                (**self).read_events(ids)
            }

            fn visit_stream<F, E>(
                &self,
                stream: &StreamId,
                read: ReadStream,
                visit: F,
            ) -> impl Future<Output = Result<(), E>> + Send
            where
                F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
                E: From<StoreError> + Send,
            {
                (**self).visit_stream(stream, read, visit)
            }

            fn archived_through(
                &self,
                stream: &StreamId,
            ) -> impl Future<Output = Result<Option<StreamVersion>, StoreError>> + Send {
                (**self).archived_through(stream)
            }

            fn read_all(
                &self,
                read: ReadAll,
            ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
                (**self).read_all(read)
            }

            fn stream_version(
                &self,
                stream: &StreamId,
            ) -> impl Future<Output = Result<StreamVersion, StoreError>> + Send {
                (**self).stream_version(stream)
            }

            fn head_position(
                &self,
            ) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send {
                (**self).head_position()
            }

            fn append_signal(
                &self,
            ) -> impl Future<Output = Result<Option<AppendSignal>, StoreError>> + Send {
                (**self).append_signal()
            }
        }

        impl<S: SnapshotStore + ?Sized> SnapshotStore for $pointer {
            fn load_snapshot(
                &self,
                stream: &StreamId,
            ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send {
                (**self).load_snapshot(stream)
            }

            fn save_snapshot(
                &self,
                snapshot: Snapshot,
            ) -> impl Future<Output = Result<(), StoreError>> + Send {
                (**self).save_snapshot(snapshot)
            }
        }

        impl<S: CheckpointStore + ?Sized> CheckpointStore for $pointer {
            fn load_checkpoint(
                &self,
                subscriber: &str,
            ) -> impl Future<Output = Result<Option<GlobalPosition>, StoreError>> + Send {
                (**self).load_checkpoint(subscriber)
            }

            fn save_checkpoint(
                &self,
                subscriber: &str,
                position: GlobalPosition,
            ) -> impl Future<Output = Result<(), StoreError>> + Send {
                (**self).save_checkpoint(subscriber, position)
            }
        }

        impl<S: ParkedStore + ?Sized> ParkedStore for $pointer {
            fn park(
                &self,
                parked: ParkedEvent,
            ) -> impl Future<Output = Result<(), StoreError>> + Send {
                (**self).park(parked)
            }

            fn parked(
                &self,
                reactor: &str,
            ) -> impl Future<Output = Result<Vec<ParkedEvent>, StoreError>> + Send {
                (**self).parked(reactor)
            }

            fn unpark(
                &self,
                reactor: &str,
                event_id: EventId,
            ) -> impl Future<Output = Result<bool, StoreError>> + Send {
                (**self).unpark(reactor, event_id)
            }
        }

        impl<S: SwitchReadModel + ?Sized> SwitchReadModel for $pointer {
            fn switch_read_model(
                &self,
                rebuilt: &str,
                live: &str,
                swap: &str,
            ) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send {
                (**self).switch_read_model(rebuilt, live, swap)
            }
        }

        impl<S: Lifecycle + ?Sized> Lifecycle for $pointer {
            fn delete_stream(
                &self,
                stream: &StreamId,
                expected: ExpectedVersion,
                deletion: Deletion,
            ) -> impl Future<Output = Result<Deleted, StoreError>> + Send {
                (**self).delete_stream(stream, expected, deletion)
            }

            fn truncate_before(
                &self,
                stream: &StreamId,
                version: StreamVersion,
            ) -> impl Future<Output = Result<Truncated, StoreError>> + Send {
                (**self).truncate_before(stream, version)
            }

            fn read_archive(
                &self,
                stream: &StreamId,
            ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
                (**self).read_archive(stream)
            }

            fn truncated_through(
                &self,
            ) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send {
                (**self).truncated_through()
            }
        }

        impl<S: Inspect + ?Sized> Inspect for $pointer {
            fn streams(
                &self,
                list: ListStreams,
            ) -> impl Future<Output = Result<Vec<StreamSummary>, StoreError>> + Send {
                (**self).streams(list)
            }

            fn event_types(
                &self,
            ) -> impl Future<Output = Result<Vec<StoredTypeCount>, StoreError>> + Send {
                (**self).event_types()
            }

            fn checkpoints(
                &self,
            ) -> impl Future<Output = Result<Vec<CheckpointSummary>, StoreError>> + Send {
                (**self).checkpoints()
            }

            fn all_parked(
                &self,
            ) -> impl Future<Output = Result<Vec<ParkedEvent>, StoreError>> + Send {
                (**self).all_parked()
            }
        }

        impl<S: Leases + ?Sized> Leases for $pointer {
            fn try_acquire(
                &self,
                name: &str,
            ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send {
                (**self).try_acquire(name)
            }
        }

        impl<S: DocumentStore + ?Sized> DocumentStore for $pointer {
            fn load_documents(
                &self,
                view: &str,
                ids: &[String],
            ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send {
                (**self).load_documents(view, ids)
            }

            fn query_documents(
                &self,
                view: &str,
                select: Select<'_>,
            ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send {
                (**self).query_documents(view, select)
            }

            fn commit_documents(
                &self,
                view: &str,
                from: Option<GlobalPosition>,
                through: GlobalPosition,
                writes: Vec<DocumentWrite>,
            ) -> impl Future<Output = Result<DocumentCommit, StoreError>> + Send {
                (**self).commit_documents(view, from, through, writes)
            }
        }
    };
}

through_pointer!(&S);
through_pointer!(Arc<S>);

/// A shared store scopes by scoping the store inside; the new handle is shared on its own.
/// (`&S` has no such impl: see [`Tenants`].)
impl<S: Tenants> Tenants for Arc<S> {
    fn with_tenant(&self, tenant: Tenant) -> Self {
        Arc::new((**self).with_tenant(tenant))
    }
}
