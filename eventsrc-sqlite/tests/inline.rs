//! Inline projections on a SQLite file: the contract every backend keeps (the shared case of
//! `eventsrc-testing`), and what SQLite adds under its own names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use eventsrc::runner::Progress;
use eventsrc::store::StreamAppend;
use eventsrc::{
    CheckpointStore, Event, EventId, EventStore, ExpectedVersion, InlineProjections, Metadata,
    NewEvent, RecordedEvent, RunError, StoreError, StreamId, StreamVersion,
};
use eventsrc_sqlite::rusqlite::{self, Transaction, params};
use eventsrc_sqlite::{ReadModelError, SqliteEventStore, SqliteProjection};
use eventsrc_testing::conformance::{InlineFixture, inline_projections_keep_the_contract};
use serde::{Deserialize, Serialize};

/// The test event: its number in the test's sequence.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Noted {
    n: u64,
}

/// Counts how many times it applied each event; refuses the event numbered `refuse`.
#[derive(Debug, Clone)]
struct Applied {
    refuse: Option<u64>,
}

/// A projection failing on purpose.
#[derive(Debug, thiserror::Error)]
enum AppliedError {
    #[error("refusing event number {0}")]
    Refused(u64),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

impl SqliteProjection for Applied {
    const NAME: &'static str = "applied";
    type Event = Noted;
    type Error = AppliedError;

    fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), AppliedError> {
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS applied (event_id BLOB PRIMARY KEY, applied INTEGER NOT NULL)",
        )?;
        Ok(())
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: Noted,
        record: &RecordedEvent,
    ) -> Result<(), AppliedError> {
        // The row first, so that a refusal has something to roll back.
        tx.prepare_cached(
            "INSERT INTO applied VALUES (?1, 1) \
             ON CONFLICT (event_id) DO UPDATE SET applied = applied + 1",
        )?
        .execute(params![record.event_id.0.as_bytes()])?;
        if self.refuse == Some(event.n) {
            return Err(AppliedError::Refused(event.n));
        }
        Ok(())
    }
}

/// How many times `store`'s `applied` read model applied the event `id`.
async fn applied(store: &SqliteEventStore, id: EventId) -> u64 {
    store
        .read_with(move |db| {
            let exists: bool = db.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'applied')",
                [],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok::<_, rusqlite::Error>(0);
            }
            db.query_row(
                "SELECT COALESCE(SUM(applied), 0) FROM applied WHERE event_id = ?1",
                params![id.0.as_bytes()],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .unwrap() as u64
}

fn noted(n: u64) -> NewEvent {
    NewEvent::from_event(&Noted { n }, Metadata::new()).unwrap()
}

struct Fixture;

impl InlineFixture for Fixture {
    type Store = SqliteEventStore;
    type Projection = Applied;
    const NAME: &'static str = Applied::NAME;

    fn event(&self, n: u64) -> NewEvent {
        noted(n)
    }

    fn projection(&self, refuse: Option<u64>) -> Applied {
        Applied { refuse }
    }

    async fn applied(&self, store: &SqliteEventStore, id: EventId) -> u64 {
        applied(store, id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_projections_keep_the_contract_on_a_file() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    inline_projections_keep_the_contract(&Fixture, store).await;
}

#[tokio::test]
async fn inline_projections_keep_the_contract_through_a_shared_store() {
    let store = std::sync::Arc::new(SqliteEventStore::open_temporary().await.unwrap());
    // Through the `Arc` impl: the same registration on the store behind it.
    let inline = InlineProjections::with_inline(&store, Applied { refuse: None })
        .await
        .unwrap();
    let event = noted(1);
    let id = event.event_id;
    inline
        .append(
            &StreamId::new("inline", 1).unwrap(),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
        .unwrap();
    assert_eq!(applied(&store, id).await, 1);
}

#[tokio::test]
async fn a_registration_covers_every_handle_of_its_tenant_on_sqlite() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let _inline = store.with_inline(Applied { refuse: None }).await.unwrap();
    // Beyond the contract: one writer thread serves every handle, so the plain one applies it
    // too, while another tenant's appends do not.
    let (ours, theirs) = (noted(1), noted(2));
    let (our_id, their_id) = (ours.event_id, theirs.event_id);
    let cart = StreamId::new("inline", 1).unwrap();
    store
        .append(&cart, ExpectedVersion::Any, vec![ours])
        .await
        .unwrap();
    eventsrc::Tenants::with_tenant(&store, "acme".into())
        .append(&cart, ExpectedVersion::Any, vec![theirs])
        .await
        .unwrap();
    assert_eq!(applied(&store, our_id).await, 1);
    assert_eq!(applied(&store, their_id).await, 0);

    // The same name again, either way, is refused for the tenant.
    for again in [
        store.with_inline(Applied { refuse: None }).await.map(drop),
        store
            .catch_up_inline(Applied { refuse: None })
            .await
            .map(drop),
    ] {
        let Err(RunError::Store { source, .. }) = again else {
            panic!("{again:?}")
        };
        assert!(matches!(
            ReadModelError::find(&source),
            Some(ReadModelError::AlreadyInline { .. })
        ));
    }
}

#[tokio::test]
async fn catching_up_inline_applies_the_past_and_keeps_a_checkpoint_where_with_inline_does_not() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let past = noted(1);
    let past_id = past.event_id;
    let cart = StreamId::new("inline", 1).unwrap();
    let stored = store
        .append(&cart, ExpectedVersion::Any, vec![past])
        .await
        .unwrap();

    let progress: Progress = store
        .catch_up_inline_named("applied_caught_up", Applied { refuse: None })
        .await
        .unwrap();
    assert_eq!(
        (progress.handled, progress.position, progress.caught_up),
        (1, Some(stored.position), true)
    );
    assert_eq!(
        applied(&store, past_id).await,
        1,
        "the catch-up applied the past"
    );
    let next = noted(2);
    let next_id = next.event_id;
    let appended = store
        .append(&cart, ExpectedVersion::Any, vec![next])
        .await
        .unwrap();
    assert_eq!(applied(&store, next_id).await, 1);
    assert_eq!(
        store.load_checkpoint("applied_caught_up").await.unwrap(),
        Some(appended.position),
        "the append moved the checkpoint in its transaction"
    );
    assert_eq!(store.load_checkpoint(Applied::NAME).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_projection_applies_to_every_part_of_an_append_across_streams_or_refuses_it_whole()
 {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    store
        .catch_up_inline(Applied { refuse: Some(2) })
        .await
        .unwrap();
    let (seat, booking) = (
        StreamId::new("seat", 1).unwrap(),
        StreamId::new("booking", 1).unwrap(),
    );

    // The second part's event is refused: the first part's event, applied already, goes too.
    let (taken, refused) = (noted(1), noted(2));
    let ids = [taken.event_id, refused.event_id];
    let error = store
        .append_streams(vec![
            StreamAppend::new(seat.clone(), ExpectedVersion::NoStream, vec![taken]),
            StreamAppend::new(booking.clone(), ExpectedVersion::NoStream, vec![refused]),
        ])
        .await
        .unwrap_err();
    let StoreError::Refused {
        stream,
        projection,
        event_type,
        ..
    } = &error
    else {
        panic!("expected Refused, got {error:?}")
    };
    assert_eq!(
        (stream, projection.as_str(), event_type.as_str()),
        (&booking, Applied::NAME, "Noted"),
        "the refusal names the part of the event refused"
    );
    for stream in [&seat, &booking] {
        assert_eq!(
            store.stream_version(stream).await.unwrap(),
            StreamVersion::NONE
        );
    }
    for id in ids {
        assert_eq!(applied(&store, id).await, 0, "rolled back with the append");
    }
    assert_eq!(store.load_checkpoint(Applied::NAME).await.unwrap(), None);

    // Every part applied, in the append's transaction; the checkpoint at its last event.
    let parts = vec![
        StreamAppend::new(seat.clone(), ExpectedVersion::NoStream, vec![noted(3)]),
        StreamAppend::new(
            booking.clone(),
            ExpectedVersion::NoStream,
            vec![noted(4), noted(5)],
        ),
    ];
    let ids: Vec<EventId> = parts
        .iter()
        .flat_map(|part| part.events.iter().map(|e| e.event_id))
        .collect();
    let stored = store.append_streams(parts.clone()).await.unwrap();
    for &id in &ids {
        assert_eq!(applied(&store, id).await, 1);
    }
    assert_eq!(
        store.load_checkpoint(Applied::NAME).await.unwrap(),
        Some(stored[1].position)
    );

    // A retry applies nothing again.
    let again = store.append_streams(parts).await.unwrap();
    assert!(again.iter().all(|result| result.already_stored));
    for &id in &ids {
        assert_eq!(applied(&store, id).await, 1, "a retry applies nothing");
    }
}
