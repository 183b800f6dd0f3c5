//! The contract of [`InlineProjections`], checked the same way on every backend that keeps it.
//!
//! Inline projections are written in a backend's own SQL, so this case cannot make one: the
//! backend's test gives it an [`InlineFixture`], a projection that counts how many times it
//! applied each event (refusing one event number if asked) and a query of those counts. Then
//! [`inline_projections_keep_the_contract`] runs the whole contract on a fresh store:
//!
//! ```text
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn inline_projections_keep_the_contract() {
//!     let store = MyEventStore::open_fresh().await;
//!     eventsrc_testing::conformance::inline_projections_keep_the_contract(&MyFixture, store).await;
//! }
//! ```

use std::future::Future;

use eventsrc_core::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, InlineProjections, NewEvent, RunError,
    StoreError, StreamId, StreamVersion, Tenant, Tenants,
};

/// What [`inline_projections_keep_the_contract`] needs of a backend: its store, a projection
/// of its kind that records each event it applies, and how to read what it recorded.
pub trait InlineFixture: Sync {
    /// The store under test.
    type Store: InlineProjections<Self::Projection>
        + Tenants
        + CheckpointStore
        + Clone
        + Send
        + Sync
        + 'static;
    /// The backend's projection.
    type Projection: Send;

    /// The name the projection is registered under (its `NAME`): what a refusal names.
    const NAME: &'static str;

    /// An event the projection reads, carrying the number `n`.
    fn event(&self, n: u64) -> NewEvent;

    /// The projection: for each event it applies, it adds one to that event's count in its
    /// read model (so an event applied twice shows); when `refuse` is `Some(n)`, its `apply`
    /// fails on the event carrying `n`. Its setup creates its tables if they do not exist.
    fn projection(&self, refuse: Option<u64>) -> Self::Projection;

    /// How many times the projection applied the event `id`, read from its read model
    /// through `store` (0: never, or its tables are not there yet).
    fn applied(&self, store: &Self::Store, id: EventId) -> impl Future<Output = u64> + Send;
}

/// Runs the whole contract of [`InlineProjections::with_inline`] on `store`, which must be
/// empty for its tenant; panics, naming the broken promise, when the backend breaks one.
///
/// It checks that: events stored before the registration are not applied, and no checkpoint
/// is written; a batch appended through the returned handle is applied once per event
/// before the append returns; an idempotent retry and a conflicting append apply nothing;
/// concurrent appends through clones of the handle are each applied once; an append the
/// projection refuses fails with [`StoreError::Refused`] naming the projection, stream and
/// event, stores nothing and applies none of its events, while the next append goes through.
pub async fn inline_projections_keep_the_contract<F: InlineFixture>(fixture: &F, store: F::Store) {
    let stream = |id: u32| StreamId::new("inline", id).expect("a valid stream id");

    // Before the registration: stored, never applied by it.
    let earlier = fixture.event(0);
    store
        .append(&stream(1), ExpectedVersion::NoStream, vec![earlier.clone()])
        .await
        .expect("appending before the registration");
    let inline = store
        .with_inline(fixture.projection(None))
        .await
        .expect("registering an inline projection");
    assert_eq!(
        fixture.applied(&inline, earlier.event_id).await,
        0,
        "with_inline applied an event stored before it was registered; the contract builds \
         the past with a read model runner, not at registration"
    );

    // A batch: applied, once per event, when the append returns.
    let batch: Vec<NewEvent> = (1..=3).map(|n| fixture.event(n)).collect();
    let appended = inline
        .append(
            &stream(1),
            ExpectedVersion::Exact(StreamVersion(1)),
            batch.clone(),
        )
        .await
        .expect("appending through the inline handle");
    assert!(!appended.already_stored);
    for event in &batch {
        assert_eq!(
            fixture.applied(&inline, event.event_id).await,
            1,
            "an event of an append through the inline handle was not applied exactly once \
             by the time the append returned"
        );
    }

    // A retry of the stored batch and a conflicting append apply nothing.
    let retried = inline
        .append(
            &stream(1),
            ExpectedVersion::Exact(StreamVersion(1)),
            batch.clone(),
        )
        .await
        .expect("retrying a stored batch");
    assert!(retried.already_stored, "the retry was not seen as one");
    let conflicting = fixture.event(4);
    let conflict = inline
        .append(
            &stream(1),
            ExpectedVersion::NoStream,
            vec![conflicting.clone()],
        )
        .await;
    assert!(
        matches!(conflict, Err(StoreError::WrongExpectedVersion { .. })),
        "expected a conflict, got {conflict:?}"
    );
    for event in &batch {
        assert_eq!(
            fixture.applied(&inline, event.event_id).await,
            1,
            "an idempotent retry applied its events again"
        );
    }
    assert_eq!(fixture.applied(&inline, conflicting.event_id).await, 0);

    // Concurrent appends through clones of the handle: each applied once.
    let concurrent: Vec<NewEvent> = (10..18).map(|n| fixture.event(n)).collect();
    let tasks: Vec<_> = concurrent
        .iter()
        .zip(100u32..)
        .map(|(event, id)| {
            let (inline, event) = (inline.clone(), event.clone());
            tokio::spawn(async move {
                inline
                    .append(&stream(id), ExpectedVersion::NoStream, vec![event])
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("a concurrent append's task")
            .expect("a concurrent append through the inline handle");
    }
    for event in &concurrent {
        assert_eq!(
            fixture.applied(&inline, event.event_id).await,
            1,
            "a concurrent append's event was not applied exactly once"
        );
    }
    assert_eq!(
        inline
            .load_checkpoint(F::NAME)
            .await
            .expect("loading a checkpoint"),
        None,
        "with_inline wrote a checkpoint; the contract keeps none"
    );

    // A refusal, on a tenant of its own so that the refusing registration meets no other
    // part of the case.
    let tenant = Tenant::new(format!("inline-refusal-{}", EventId::new().0.simple()));
    let refusing = store
        .with_tenant(tenant)
        .with_inline(fixture.projection(Some(7)))
        .await
        .expect("registering the refusing projection");
    let head = refusing.head_position().await.expect("the head");
    let (fine, refused) = (fixture.event(6), fixture.event(7));
    let error = refusing
        .append(
            &stream(2),
            ExpectedVersion::Any,
            vec![fine.clone(), refused.clone()],
        )
        .await
        .expect_err("an append the projection refuses must fail");
    let StoreError::Refused {
        stream: refused_in,
        event_type,
        projection,
        source,
    } = &error
    else {
        panic!("expected StoreError::Refused, got {error:?}")
    };
    assert_eq!(projection, F::NAME, "the refusal names the projection");
    assert_eq!(refused_in, &stream(2), "the refusal names the stream");
    assert_eq!(
        *event_type, *refused.event_type,
        "the refusal names the event's type"
    );
    assert!(
        matches!(**source, RunError::Handle { event_id, .. } if event_id == refused.event_id),
        "the refusal's source names the refused event: {source:?}"
    );
    assert_eq!(
        refusing
            .stream_version(&stream(2))
            .await
            .expect("a version"),
        StreamVersion::NONE,
        "a refused append stored events"
    );
    assert_eq!(
        refusing.head_position().await.expect("the head"),
        head,
        "a refused append moved the log"
    );
    for event in [&fine, &refused] {
        assert_eq!(
            fixture.applied(&refusing, event.event_id).await,
            0,
            "a refused append left rows in the read model"
        );
    }
    let after = fixture.event(8);
    refusing
        .append(&stream(2), ExpectedVersion::NoStream, vec![after.clone()])
        .await
        .expect("the append after a refusal goes through");
    assert_eq!(fixture.applied(&refusing, after.event_id).await, 1);
}
