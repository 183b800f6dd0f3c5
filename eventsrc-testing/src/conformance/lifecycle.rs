//! Deleting and truncating streams ([`Lifecycle`]): soft deletes archive and may start again,
//! tombstones refuse every append, truncation archives a prefix and stops readers behind it,
//! and loads say what they cannot fold.

use eventsrc_core::store::{
    Deletion, Lifecycle, ReadAll, ReadStream, STREAM_DELETED, STREAM_TOMBSTONED, Snapshot,
    StreamAppend, StreamDeleted, StreamTombstoned,
};
use eventsrc_core::{
    EventStore, ExpectedVersion, GlobalPosition, LoadError, RecordedEvent, Repository, StoreError,
    StreamId, StreamVersion, Timestamp,
};

use eventsrc_core::backend::ParkedEvent;

use super::StoreUnderTest;
use super::cache::{Account, Deposit, commit};
use super::sample::{self, append, events, ids, read, read_all, version, versions};

async fn delete<S: Lifecycle>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    deletion: Deletion,
) -> eventsrc_core::store::Deleted {
    match store.delete_stream(stream, expected, deletion).await {
        Ok(deleted) => deleted,
        Err(error) => {
            panic!("{deletion:?} delete of `{stream}` expecting {expected} failed: {error:?}")
        }
    }
}

/// `n` `ItemAdded` events appended to `stream`, which must succeed.
async fn add<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    n: usize,
) -> eventsrc_core::store::AppendResult {
    append(store, stream, expected, events("ItemAdded", n)).await
}

/// A new stream `name` with `n` events, soft-deleted: its marker is at version `n + 1`.
async fn soft_deleted<S: Lifecycle>(store: &S, name: &str, n: usize) -> StreamId {
    let stream = sample::stream(name);
    add(store, &stream, ExpectedVersion::NoStream, n).await;
    delete(store, &stream, ExpectedVersion::Any, Deletion::Soft).await;
    stream
}

async fn archive<S: Lifecycle>(store: &S, stream: &StreamId) -> Vec<RecordedEvent> {
    match store.read_archive(stream).await {
        Ok(events) => events,
        Err(error) => panic!("read_archive of `{stream}` failed: {error:?}"),
    }
}

async fn truncate<S: Lifecycle>(
    store: &S,
    stream: &StreamId,
    before: u64,
) -> eventsrc_core::store::Truncated {
    match store.truncate_before(stream, StreamVersion(before)).await {
        Ok(truncated) => truncated,
        Err(error) => panic!("truncating `{stream}` before version {before} failed: {error:?}"),
    }
}

/// The whole log, read knowingly past any truncation.
async fn whole_log<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    read_all(
        store,
        ReadAll::after(GlobalPosition::START)
            .limit(100_000)
            .allow_truncated(),
    )
    .await
}

fn tombstoned(result: Result<impl std::fmt::Debug, StoreError>, stream: &StreamId, what: &str) {
    match result {
        Err(StoreError::Tombstoned { stream: named }) => {
            assert_eq!(&named, stream, "{what}: the error names the stream");
        }
        other => panic!("{what}: expected StoreError::Tombstoned, got {other:?}"),
    }
}

/// A soft delete appends a marker after the stream's last event, moves every event before it
/// to the archive (ids, payloads and positions kept), takes them out of the log and of
/// `read_events`, and drops the stream's snapshot; readers of the log see the marker.
pub async fn a_soft_delete_archives_the_stream_and_leaves_a_marker<S: StoreUnderTest>(store: S) {
    let (cart, other) = (sample::stream("cart-1"), sample::stream("cart-2"));
    add(&store, &cart, ExpectedVersion::NoStream, 3).await;
    add(&store, &other, ExpectedVersion::NoStream, 1).await;
    let before = read(&store, &cart, ReadStream::forward()).await;
    let snapshot = Snapshot {
        stream: cart.clone(),
        version: StreamVersion(3),
        state_version: 1,
        payload: "{}".into(),
        taken_at: Timestamp::from_micros(1_700_000_000_000_000),
    };
    store.save_snapshot(snapshot).await.unwrap();

    let deleted = delete(
        &store,
        &cart,
        ExpectedVersion::Exact(StreamVersion(3)),
        Deletion::Soft,
    )
    .await;
    assert_eq!(
        deleted.version,
        StreamVersion(4),
        "the marker follows the last event"
    );
    assert_eq!(deleted.removed, 3, "every event was removed");
    assert!(!deleted.already_deleted);

    let kept = read(&store, &cart, ReadStream::forward()).await;
    assert_eq!(
        versions(&kept),
        [4],
        "only the marker is left in the stream"
    );
    assert_eq!(kept[0].event_type.as_ref(), STREAM_DELETED);
    assert_eq!(kept[0].global_position, deleted.position);
    let marker: StreamDeleted = kept[0].decode().unwrap();
    assert_eq!(
        marker.through,
        StreamVersion(3),
        "the marker says what it removed"
    );
    assert_eq!(version(&store, &cart).await, StreamVersion(4));

    let archived = archive(&store, &cart).await;
    assert_eq!(
        archived, before,
        "the archive holds the removed events exactly as stored"
    );
    let found = store.read_events(&ids(&before)).await.unwrap();
    assert!(
        found.is_empty(),
        "removed events are not found by id: {found:?}"
    );
    assert_eq!(
        store.load_snapshot(&cart).await.unwrap(),
        None,
        "the snapshot was dropped"
    );

    let log = whole_log(&store).await;
    let types: Vec<_> = log
        .iter()
        .map(|e| (e.stream.to_string(), e.event_type.to_string()))
        .collect();
    assert_eq!(
        types,
        [
            ("cart-2".to_owned(), "ItemAdded".to_owned()),
            ("cart-1".to_owned(), STREAM_DELETED.to_owned())
        ],
        "the log holds the other stream's event and the marker"
    );
    let markers = read_all(
        &store,
        ReadAll::after(GlobalPosition::START).event_types([STREAM_DELETED]),
    )
    .await;
    assert_eq!(
        markers.len(),
        1,
        "readers filter for the marker like any event type"
    );
    assert_eq!(
        archive(&store, &other).await,
        [],
        "another stream archived nothing"
    );
}

/// A soft-deleted stream starts again: `NoStream` (and `Exact(NONE)`) are accepted once, and
/// its events continue the numbering after the marker; the versions of the removed events are
/// never reused.
pub async fn a_soft_deleted_stream_starts_again_after_its_marker<S: StoreUnderTest>(store: S) {
    let cart = sample::stream("cart-1");
    add(&store, &cart, ExpectedVersion::NoStream, 2).await;
    delete(&store, &cart, ExpectedVersion::Any, Deletion::Soft).await;
    let again = add(&store, &cart, ExpectedVersion::NoStream, 2).await;
    assert_eq!(
        again.first_version,
        StreamVersion(4),
        "numbering continues after the marker"
    );
    assert_eq!(again.stream_version, StreamVersion(5));
    let twice = store
        .append(&cart, ExpectedVersion::NoStream, events("ItemAdded", 1))
        .await;
    assert!(
        matches!(
            twice,
            Err(StoreError::WrongExpectedVersion {
                actual: StreamVersion(5),
                ..
            })
        ),
        "once started again, the stream exists: {twice:?}"
    );
    assert_eq!(
        versions(&read(&store, &cart, ReadStream::forward()).await),
        [3, 4, 5]
    );

    let other = soft_deleted(&store, "cart-2", 1).await;
    let exact = add(
        &store,
        &other,
        ExpectedVersion::Exact(StreamVersion::NONE),
        1,
    )
    .await;
    assert_eq!(
        exact.first_version,
        StreamVersion(3),
        "Exact(NONE) starts it again too"
    );
    let third = soft_deleted(&store, "cart-3", 1).await;
    let at_marker = add(&store, &third, ExpectedVersion::Exact(StreamVersion(2)), 1).await;
    assert_eq!(
        at_marker.first_version,
        StreamVersion(3),
        "the marker's version is accepted"
    );

    // Across streams too.
    let fourth = soft_deleted(&store, "cart-4", 1).await;
    let parts = vec![StreamAppend::new(
        fourth.clone(),
        ExpectedVersion::NoStream,
        events("ItemAdded", 1),
    )];
    let stored = store.append_streams(parts).await.unwrap();
    assert_eq!(stored[0].first_version, StreamVersion(3));
}

/// Deleting checks the expected version and changes nothing when it fails; deleting a stream
/// again the same way is a retry that writes nothing and reports the marker.
pub async fn a_deletion_checks_its_expected_version_and_is_idempotent<S: StoreUnderTest>(store: S) {
    let cart = sample::stream("cart-1");
    add(&store, &cart, ExpectedVersion::NoStream, 3).await;
    for deletion in [Deletion::Soft, Deletion::Tombstone] {
        let stale = store
            .delete_stream(&cart, ExpectedVersion::Exact(StreamVersion(2)), deletion)
            .await;
        assert!(
            matches!(
                &stale,
                Err(StoreError::WrongExpectedVersion {
                    actual: StreamVersion(3),
                    ..
                })
            ),
            "{deletion:?} with a stale version: {stale:?}"
        );
    }
    assert_eq!(
        versions(&read(&store, &cart, ReadStream::forward()).await),
        [1, 2, 3],
        "nothing removed"
    );
    assert_eq!(archive(&store, &cart).await, [], "nothing archived");

    let first = delete(
        &store,
        &cart,
        ExpectedVersion::Exact(StreamVersion(3)),
        Deletion::Soft,
    )
    .await;
    let log = whole_log(&store).await;
    let again = delete(
        &store,
        &cart,
        ExpectedVersion::Exact(StreamVersion(3)),
        Deletion::Soft,
    )
    .await;
    assert!(again.already_deleted, "the second delete is a retry");
    assert_eq!(
        (again.version, again.position),
        (first.version, first.position)
    );
    assert_eq!(
        whole_log(&store).await,
        log,
        "a retried delete writes nothing"
    );

    let empty = sample::stream("cart-9");
    let reserved = delete(
        &store,
        &empty,
        ExpectedVersion::NoStream,
        Deletion::Tombstone,
    )
    .await;
    assert_eq!(
        reserved.version,
        StreamVersion::TOMBSTONE,
        "a stream without events can be tombstoned"
    );
    assert_eq!(reserved.removed, 0);
}

/// A tombstone removes the events for good (the archive keeps none, not even what an earlier
/// soft delete archived), appends its marker at `StreamVersion::TOMBSTONE`, and every later
/// append, alone or across streams, or soft delete is `StoreError::Tombstoned`; tombstoning
/// again is a retry.
pub async fn a_tombstoned_stream_refuses_every_append<S: StoreUnderTest>(store: S) {
    let (cart, bystander) = (sample::stream("cart-1"), sample::stream("cart-2"));
    add(&store, &cart, ExpectedVersion::NoStream, 2).await;
    delete(&store, &cart, ExpectedVersion::Any, Deletion::Soft).await;
    add(&store, &cart, ExpectedVersion::NoStream, 1).await;
    // A reactor parked the last event of the stream, and one of another stream.
    let parked = |event: RecordedEvent| ParkedEvent {
        reactor: "mailer".into(),
        event,
        error: "the mail server is down".into(),
        attempts: 3,
        parked_at: Timestamp::from_micros(1_700_000_000_000_000),
    };
    add(&store, &bystander, ExpectedVersion::Any, 1).await;
    let last = read(&store, &cart, ReadStream::backward().limit(1)).await;
    let other = read(&store, &bystander, ReadStream::forward()).await;
    store.park(parked(last[0].clone())).await.unwrap();
    store.park(parked(other[0].clone())).await.unwrap();
    let tombstone = delete(
        &store,
        &cart,
        ExpectedVersion::Exact(StreamVersion(4)),
        Deletion::Tombstone,
    )
    .await;
    let still_parked = store.parked("mailer").await.unwrap();
    let parked_streams: Vec<_> = still_parked
        .iter()
        .map(|p| p.event.stream.clone())
        .collect();
    assert_eq!(
        parked_streams,
        std::slice::from_ref(&bystander),
        "the copies reactors parked of a tombstoned stream go with it, others stay"
    );
    assert_eq!(tombstone.version, StreamVersion::TOMBSTONE);
    assert_eq!(
        tombstone.removed, 2,
        "the marker and the event after it were removed"
    );
    assert_eq!(
        archive(&store, &cart).await,
        [],
        "nothing of a tombstoned stream is archived"
    );

    let kept = read(&store, &cart, ReadStream::forward()).await;
    assert_eq!(kept.len(), 1, "only the tombstone is left: {kept:?}");
    assert_eq!(
        (kept[0].event_type.as_ref(), kept[0].stream_version),
        (STREAM_TOMBSTONED, StreamVersion::TOMBSTONE)
    );
    let marker: StreamTombstoned = kept[0].decode().unwrap();
    assert_eq!(marker.through, StreamVersion(4));
    assert_eq!(version(&store, &cart).await, StreamVersion::TOMBSTONE);
    let backward = read(&store, &cart, ReadStream::backward().limit(1)).await;
    assert_eq!(versions(&backward), [StreamVersion::TOMBSTONE.get()]);

    for expected in [
        ExpectedVersion::Any,
        ExpectedVersion::NoStream,
        ExpectedVersion::StreamExists,
        ExpectedVersion::Exact(StreamVersion::TOMBSTONE),
    ] {
        let refused = store.append(&cart, expected, events("ItemAdded", 1)).await;
        tombstoned(refused, &cart, &format!("an append expecting {expected}"));
    }
    let parts = vec![
        StreamAppend::new(
            bystander.clone(),
            ExpectedVersion::Exact(StreamVersion(1)),
            events("ItemAdded", 1),
        ),
        StreamAppend::new(cart.clone(), ExpectedVersion::Any, events("ItemAdded", 1)),
    ];
    tombstoned(
        store.append_streams(parts).await,
        &cart,
        "an append across streams",
    );
    assert_eq!(
        version(&store, &bystander).await,
        StreamVersion(1),
        "no part was stored"
    );
    let soft = store
        .delete_stream(&cart, ExpectedVersion::Any, Deletion::Soft)
        .await;
    tombstoned(soft, &cart, "a soft delete");

    let again = delete(&store, &cart, ExpectedVersion::Any, Deletion::Tombstone).await;
    assert!(again.already_deleted);
    assert_eq!(again.position, tombstone.position);
}

/// Truncation moves a stream's events before a version to the archive, keeps the rest readable
/// forward and backward, does nothing where the stream is already cut, never removes the last
/// event, and leaves appends going on from the stream's version.
pub async fn truncation_archives_the_events_before_a_version<S: StoreUnderTest>(store: S) {
    let cart = sample::stream("cart-1");
    add(&store, &cart, ExpectedVersion::NoStream, 5).await;
    let before = read(&store, &cart, ReadStream::forward()).await;

    let truncated = truncate(&store, &cart, 3).await;
    assert_eq!(
        (truncated.archived, truncated.kept_from),
        (2, StreamVersion(3))
    );
    assert_eq!(
        versions(&read(&store, &cart, ReadStream::forward()).await),
        [3, 4, 5]
    );
    let from_one = read(
        &store,
        &cart,
        ReadStream::forward().from(StreamVersion(1)).limit(2),
    )
    .await;
    assert_eq!(
        versions(&from_one),
        [3, 4],
        "a read from before the cut starts at the cut"
    );
    let backward = read(&store, &cart, ReadStream::backward().from(StreamVersion(4))).await;
    assert_eq!(
        versions(&backward),
        [4, 3],
        "backward reads stop at the cut"
    );
    assert_eq!(
        archive(&store, &cart).await,
        before[..2],
        "the archive holds versions 1 and 2"
    );
    assert_eq!(version(&store, &cart).await, StreamVersion(5));

    let again = truncate(&store, &cart, 2).await;
    assert_eq!(
        again.archived, 0,
        "truncating where the stream is already cut moves nothing"
    );
    let past = store.truncate_before(&cart, StreamVersion(6)).await;
    assert!(
        matches!(&past, Err(StoreError::InvalidAppend { stream, .. }) if stream == &cart),
        "the last event always stays: {past:?}"
    );
    let to_last = truncate(&store, &cart, 5).await;
    assert_eq!(to_last.archived, 2);
    assert_eq!(
        archive(&store, &cart).await,
        before[..4],
        "the archive grows in version order"
    );
    let next = add(&store, &cart, ExpectedVersion::Exact(StreamVersion(5)), 1).await;
    assert_eq!(
        next.first_version,
        StreamVersion(6),
        "appends go on after a truncation"
    );
}

/// A reader of the log after a position before the last truncated event fails with
/// `StoreError::Truncated` naming both positions, unless it allows skipping them; a reader
/// past the cut reads on. The cut belongs to its tenant.
pub async fn a_reader_behind_a_truncation_gets_a_typed_error<S: StoreUnderTest>(store: S) {
    let (a, b) = (sample::stream("cart-1"), sample::stream("cart-2"));
    add(&store, &a, ExpectedVersion::NoStream, 2).await;
    let at = add(&store, &b, ExpectedVersion::NoStream, 1).await.position;
    add(&store, &a, ExpectedVersion::Exact(StreamVersion(2)), 1).await;
    assert_eq!(
        store.truncated_through().await.unwrap(),
        GlobalPosition::START
    );

    let log = whole_log(&store).await;
    let removed = log[1].global_position;
    truncate(&store, &a, 3).await;
    assert_eq!(
        store.truncated_through().await.unwrap(),
        removed,
        "the cut is the last removed event"
    );

    for after in [GlobalPosition::START, log[0].global_position] {
        match store.read_all(ReadAll::after(after)).await {
            Err(StoreError::Truncated {
                after: from,
                through,
            }) => {
                assert_eq!((from, through), (after, removed));
            }
            other => {
                panic!("a read after {after} behind the cut: expected Truncated, got {other:?}")
            }
        }
    }
    let past = read_all(&store, ReadAll::after(removed)).await;
    assert_eq!(past, log[2..], "a reader past the cut reads on");
    let skipping = read_all(
        &store,
        ReadAll::after(GlobalPosition::START).allow_truncated(),
    )
    .await;
    assert_eq!(
        sample::summary(&skipping),
        sample::summary(&log[2..]),
        "allowed, the removed events are skipped"
    );
    assert!(at > removed);

    let other = store.with_tenant(sample::fresh_tenant("truncation"));
    append(
        &other,
        &a,
        ExpectedVersion::NoStream,
        events("ItemAdded", 1),
    )
    .await;
    assert_eq!(
        other.truncated_through().await.unwrap(),
        GlobalPosition::START,
        "another tenant is not cut"
    );
    assert_eq!(
        read_all(&other, ReadAll::after(GlobalPosition::START))
            .await
            .len(),
        1
    );
    assert_eq!(
        archive(&other, &a).await,
        [],
        "nor is its stream of the same name archived"
    );
}

/// Loads through a repository: a soft-deleted account starts from its initial state after the
/// marker and takes commands again, a tombstoned one is `Tombstoned`, and one truncated with
/// no snapshot covering the cut is `LoadError::Truncated`, by version as well.
pub async fn loads_follow_deletions_and_truncations<S: StoreUnderTest>(store: S) {
    let repository = Repository::new(store.clone());
    let (alice, bob, carol) = ("alice".to_owned(), "bob".to_owned(), "carol".to_owned());
    let stream = |name: &str| sample::stream(&format!("account-{name}"));
    for name in [&alice, &bob, &carol] {
        for n in [10, 20, 30] {
            commit(&repository, name, Deposit(n), "a deposit").await;
        }
    }

    delete(
        &store,
        &stream(&alice),
        ExpectedVersion::Any,
        Deletion::Soft,
    )
    .await;
    let loaded = repository.load::<Account>(&alice).await.unwrap();
    assert_eq!(
        (loaded.state.balance, loaded.version),
        (0, StreamVersion(4)),
        "a soft-deleted account starts over"
    );
    let version = commit(
        &repository,
        &alice,
        Deposit(5),
        "a deposit after the delete",
    )
    .await;
    assert_eq!(version, 5);
    let loaded = repository.load::<Account>(&alice).await.unwrap();
    assert_eq!(
        loaded.state.balance, 5,
        "only what came after the marker is folded"
    );

    delete(
        &store,
        &stream(&bob),
        ExpectedVersion::Any,
        Deletion::Tombstone,
    )
    .await;
    let gone = repository.load::<Account>(&bob).await;
    assert!(
        matches!(gone, Err(LoadError::Store(StoreError::Tombstoned { .. }))),
        "{gone:?}"
    );

    truncate(&store, &stream(&carol), 3).await;
    let cut = repository.load::<Account>(&carol).await;
    match cut {
        Err(LoadError::Truncated {
            needed, kept_from, ..
        }) => {
            assert_eq!((needed, kept_from), (StreamVersion(1), StreamVersion(3)));
        }
        other => panic!("a load needing truncated events: expected Truncated, got {other:?}"),
    }
    let at = repository
        .load_at::<Account>(&carol, StreamVersion(1))
        .await;
    assert!(
        matches!(at, Err(LoadError::Truncated { .. })),
        "time travel before the cut: {at:?}"
    );
}
