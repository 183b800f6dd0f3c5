//! Appends across streams (`append_streams`): one commit for every part, all or nothing,
//! idempotent retries, malformed batches, races; and reading events back by id.

use std::sync::Arc;

use eventsrc_core::store::{AppendResult, StreamAppend};

use eventsrc_core::{EventId, EventStore, ExpectedVersion, NewEvent, StoreError, StreamVersion};
use tokio::sync::Barrier;

use super::sample::{self, append, events, fresh_tenant, observe, row, summary, whole_log};
use super::{StoreUnderTest, expect};

/// Appends across streams, which must succeed.
async fn append_streams<S: EventStore>(store: &S, parts: Vec<StreamAppend>) -> Vec<AppendResult> {
    let streams: Vec<String> = parts.iter().map(|p| p.stream.to_string()).collect();
    match store.append_streams(parts).await {
        Ok(results) => results,
        Err(error) => panic!("appending across {streams:?} failed: {error:?}"),
    }
}

/// The first part's answer, for the single-stream assertions of [`expect`].
fn first_part(result: Result<Vec<AppendResult>, StoreError>) -> Result<AppendResult, StoreError> {
    result.map(|results| match results.first() {
        Some(first) => *first,
        None => panic!("an append across streams answered no part"),
    })
}

/// Every part is stored at its stream's next versions, the results come back in part order,
/// and all events share one commit and one `recorded_at`, with positions increasing in part
/// order: a reader of the log sees them together, in that order.
pub async fn an_append_across_streams_stores_every_part_in_one_commit<S: StoreUnderTest>(store: S) {
    let (user, email) = (sample::stream("user-1"), sample::stream("email-ada"));
    append(&store, &user, ExpectedVersion::NoStream, events("Named", 1)).await;

    let results = append_streams(
        &store,
        vec![
            StreamAppend::new(
                user.clone(),
                ExpectedVersion::Exact(StreamVersion(1)),
                events("Registered", 2),
            ),
            StreamAppend::new(
                email.clone(),
                ExpectedVersion::NoStream,
                events("Claimed", 1),
            ),
        ],
    )
    .await;
    assert_eq!(results.len(), 2, "one result per part");
    let (u, e) = (results[0], results[1]);
    assert_eq!(
        (u.first_version, u.stream_version, u.already_stored),
        (StreamVersion(2), StreamVersion(3), false),
        "the user part lands after the stream's one event"
    );
    assert_eq!(
        (e.first_version, e.stream_version, e.already_stored),
        (StreamVersion(1), StreamVersion(1), false),
        "the e-mail part starts its stream"
    );
    assert_eq!(
        u.position.commit, e.position.commit,
        "both parts are one commit"
    );
    assert!(u.position < e.position, "positions increase in part order");
    assert_eq!(u.recorded_at, e.recorded_at, "one commit, one recorded_at");

    let log = whole_log(&store).await;
    expect::increasing_positions(&log, "the log after an append across streams");
    assert_eq!(
        summary(&log),
        [
            row("user-1", 1, "Named"),
            row("user-1", 2, "Registered"),
            row("user-1", 3, "Registered"),
            row("email-ada", 1, "Claimed"),
        ],
        "the log holds the parts in order, after what was there"
    );
    let committed = &log[1..];
    assert!(
        committed
            .iter()
            .all(|e| e.global_position.commit == u.position.commit),
        "every event of the append carries its commit"
    );
    assert_eq!(
        log[3].global_position, e.position,
        "the e-mail part's last position"
    );
    assert_eq!(
        log[2].global_position, u.position,
        "the user part's last position"
    );
}

/// When one part's expected version fails, nothing of any part is stored, and the error names
/// the first failing part's stream with its actual version.
pub async fn an_append_across_streams_with_one_stale_part_stores_nothing<S: StoreUnderTest>(
    store: S,
) {
    let (a, b, c) = (
        sample::stream("seat-1"),
        sample::stream("seat-2"),
        sample::stream("seat-3"),
    );
    append(&store, &b, ExpectedVersion::NoStream, events("Booked", 2)).await;
    append(&store, &c, ExpectedVersion::NoStream, events("Booked", 1)).await;
    let before = (
        observe(&store, &a).await,
        observe(&store, &b).await,
        observe(&store, &c).await,
    );

    let result = store
        .append_streams(vec![
            StreamAppend::new(a.clone(), ExpectedVersion::NoStream, events("Booked", 1)),
            StreamAppend::new(
                b.clone(),
                ExpectedVersion::Exact(StreamVersion(1)),
                events("Booked", 1),
            ),
            StreamAppend::new(c.clone(), ExpectedVersion::NoStream, events("Booked", 1)),
        ])
        .await;
    expect::conflict(
        first_part(result),
        &b,
        ExpectedVersion::Exact(StreamVersion(1)),
        StreamVersion(2),
        "the second of three parts expects version 1 of a stream at 2 (the third is stale too)",
    );
    let after = (
        observe(&store, &a).await,
        observe(&store, &b).await,
        observe(&store, &c).await,
    );
    expect::unchanged(&before.0, &after.0, "the first part's stream");
    expect::unchanged(&before.1, &after.1, "the stale part's stream");
    expect::unchanged(&before.2, &after.2, "the third part's stream");
}

/// Appending again an append across streams that was stored returns every part's original
/// result, marked `already_stored`, and writes nothing, though its expected versions are stale.
/// A batch with one part stored and another not is a duplicate id, and writes nothing.
pub async fn re_appending_a_stored_append_across_streams_is_idempotent<S: StoreUnderTest>(
    store: S,
) {
    let (order, stock) = (sample::stream("order-1"), sample::stream("stock-1"));
    let parts = vec![
        StreamAppend::new(
            order.clone(),
            ExpectedVersion::NoStream,
            events("Placed", 1),
        ),
        StreamAppend::new(
            stock.clone(),
            ExpectedVersion::NoStream,
            events("Reserved", 2),
        ),
    ];
    let original = append_streams(&store, parts.clone()).await;
    append(&store, &stock, ExpectedVersion::Any, events("Released", 1)).await;
    let before = (observe(&store, &order).await, observe(&store, &stock).await);

    let retried = append_streams(&store, parts.clone()).await;
    let marked: Vec<AppendResult> = original
        .iter()
        .map(|r| AppendResult {
            already_stored: true,
            ..*r
        })
        .collect();
    assert_eq!(
        retried, marked,
        "a retried append across streams returns each part's original result"
    );
    let after = (observe(&store, &order).await, observe(&store, &stock).await);
    expect::unchanged(&before.0, &after.0, "the order stream after the retry");
    expect::unchanged(&before.1, &after.1, "the stock stream after the retry");

    let half = vec![
        parts[0].clone(),
        StreamAppend::new(
            sample::stream("stock-2"),
            ExpectedVersion::NoStream,
            events("Reserved", 1),
        ),
    ];
    let first_id = parts[0].events[0].event_id;
    expect::duplicate(
        first_part(store.append_streams(half).await),
        first_id,
        &order,
        "the order part is stored, the new stock part is not",
    );
    let after_half = (observe(&store, &order).await, observe(&store, &stock).await);
    expect::unchanged(
        &after.0,
        &after_half.0,
        "the order stream after the half retry",
    );
    assert_eq!(
        sample::version(&store, &sample::stream("stock-2")).await,
        StreamVersion::NONE,
        "the new part of a half-stored batch is not stored"
    );
}

/// A stream in two parts, or one event id in two parts, is `InvalidAppend` naming the stream,
/// and stores nothing; no parts at all stores nothing and answers nothing.
pub async fn a_malformed_append_across_streams_is_invalid<S: StoreUnderTest>(store: S) {
    let (a, b) = (sample::stream("seat-1"), sample::stream("seat-2"));
    let before = observe(&store, &a).await;

    let twice = store
        .append_streams(vec![
            StreamAppend::new(a.clone(), ExpectedVersion::Any, events("Booked", 1)),
            StreamAppend::new(a.clone(), ExpectedVersion::Any, events("Booked", 1)),
        ])
        .await;
    expect::invalid(first_part(twice), &a, "one stream in two parts");

    let shared: NewEvent = events("Booked", 1).remove(0);
    let same_id = store
        .append_streams(vec![
            StreamAppend::new(a.clone(), ExpectedVersion::Any, vec![shared.clone()]),
            StreamAppend::new(b.clone(), ExpectedVersion::Any, vec![shared]),
        ])
        .await;
    expect::invalid(first_part(same_id), &b, "one event id in two parts");

    expect::unchanged(
        &before,
        &observe(&store, &a).await,
        "after three invalid appends",
    );
    assert_eq!(
        sample::version(&store, &b).await,
        StreamVersion::NONE,
        "nothing reached the second stream"
    );
    match store.append_streams(Vec::new()).await {
        Ok(results) => assert!(results.is_empty(), "no parts, no results: {results:?}"),
        Err(error) => panic!("an append of no parts must store nothing and succeed: {error:?}"),
    }
    expect::unchanged(
        &before,
        &observe(&store, &a).await,
        "after an append of no parts",
    );
}

/// A part without events only checks its stream's version: it passes and stores nothing when
/// the stream is where it was read, and fails the whole append, naming that stream, when
/// another writer moved it. Its result carries the version it was checked at.
pub async fn a_part_without_events_only_checks_its_stream<S: StoreUnderTest>(store: S) {
    let (group, member) = (sample::stream("group-1"), sample::stream("membership-1"));
    append(
        &store,
        &group,
        ExpectedVersion::NoStream,
        events("Created", 2),
    )
    .await;
    let checked = append_streams(
        &store,
        vec![
            StreamAppend::new(
                group.clone(),
                ExpectedVersion::Exact(StreamVersion(2)),
                Vec::new(),
            ),
            StreamAppend::new(
                member.clone(),
                ExpectedVersion::NoStream,
                events("Joined", 1),
            ),
        ],
    )
    .await;
    assert_eq!(
        (checked[0].first_version, checked[0].stream_version),
        (StreamVersion(3), StreamVersion(2)),
        "a part without events reports the version it was checked at"
    );
    assert_eq!(checked[1].stream_version, StreamVersion(1));
    assert_eq!(
        sample::version(&store, &group).await,
        StreamVersion(2),
        "nothing stored in it"
    );

    append(&store, &group, ExpectedVersion::Any, events("Renamed", 1)).await;
    let before = observe(&store, &member).await;
    let stale = store
        .append_streams(vec![
            StreamAppend::new(
                member.clone(),
                ExpectedVersion::Exact(StreamVersion(1)),
                events("Left", 1),
            ),
            StreamAppend::new(
                group.clone(),
                ExpectedVersion::Exact(StreamVersion(2)),
                Vec::new(),
            ),
        ])
        .await;
    expect::conflict(
        first_part(stale),
        &group,
        ExpectedVersion::Exact(StreamVersion(2)),
        StreamVersion(3),
        "the checked group moved to version 3",
    );
    expect::unchanged(
        &before,
        &observe(&store, &member).await,
        "the member part of a failed check",
    );

    let only_checks = append_streams(
        &store,
        vec![StreamAppend::new(
            group.clone(),
            ExpectedVersion::Exact(StreamVersion(3)),
            Vec::new(),
        )],
    )
    .await;
    assert_eq!(
        only_checks[0].stream_version,
        StreamVersion(3),
        "a batch of checks only"
    );
    assert_eq!(whole_log(&store).await.len(), 4, "checks store nothing");
}

/// Writers racing to claim one shared stream, each together with a stream of its own: exactly
/// one wins, and the losers' own streams stay empty (the unique-claim pattern).
pub async fn concurrent_appends_across_streams_have_one_winner<S: StoreUnderTest>(store: S) {
    const WRITERS: usize = 8;
    let claim = sample::stream("email-ada");
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, claim, barrier) = (store.clone(), claim.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let own = sample::stream(&format!("user-{writer}"));
            barrier.wait().await;
            let result = store
                .append_streams(vec![
                    StreamAppend::new(
                        own.clone(),
                        ExpectedVersion::NoStream,
                        events("Registered", 1),
                    ),
                    StreamAppend::new(claim, ExpectedVersion::NoStream, events("Claimed", 1)),
                ])
                .await;
            (own, result)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (own, result) = match task.await {
            Ok(done) => done,
            Err(error) => panic!("a writer did not finish: {error}"),
        };
        match result {
            Ok(_) => winners.push(own),
            Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
                assert_eq!(stream, claim, "a loser conflicts on the shared stream");
                assert_eq!(actual, StreamVersion(1), "the winner's claim is version 1");
                assert_eq!(
                    sample::version(&store, &own).await,
                    StreamVersion::NONE,
                    "a loser's own stream `{own}` stays empty"
                );
            }
            Err(other) => panic!("a racing append across streams failed otherwise: {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer claims the stream: {winners:?}"
    );
    assert_eq!(sample::version(&store, &winners[0]).await, StreamVersion(1));
    assert_eq!(sample::version(&store, &claim).await, StreamVersion(1));
    assert_eq!(
        whole_log(&store).await.len(),
        2,
        "the log holds the winner's two events"
    );
}

/// `read_events` returns the tenant's stored events with the ids asked for, in the order asked,
/// leaving out unknown ids and ids stored by another tenant.
pub async fn read_events_returns_stored_events_in_the_order_asked<S: StoreUnderTest>(store: S) {
    let (a, b) = (sample::stream("note-1"), sample::stream("note-2"));
    let first = events("Noted", 2);
    let second = events("Noted", 1);
    append(&store, &a, ExpectedVersion::NoStream, first.clone()).await;
    append(&store, &b, ExpectedVersion::NoStream, second.clone()).await;
    let other = store.with_tenant(fresh_tenant("read-events"));
    let theirs = events("Noted", 1);
    append(&other, &a, ExpectedVersion::NoStream, theirs.clone()).await;

    let asked = [
        second[0].event_id,
        EventId::new(),
        first[1].event_id,
        theirs[0].event_id,
        first[0].event_id,
    ];
    let found = match store.read_events(&asked).await {
        Ok(found) => found,
        Err(error) => panic!("read_events failed: {error:?}"),
    };
    assert_eq!(
        sample::ids(&found),
        [second[0].event_id, first[1].event_id, first[0].event_id],
        "the stored ids, in the order asked, without the unknown id and the other tenant's"
    );
    assert_eq!(
        summary(&found),
        [
            row("note-2", 1, "Noted"),
            row("note-1", 2, "Noted"),
            row("note-1", 1, "Noted")
        ],
        "each event read back whole"
    );
    assert_eq!(&*found[1].payload, r#"{"n":2}"#);
    match store.read_events(&[]).await {
        Ok(none) => assert!(none.is_empty(), "no ids, no events"),
        Err(error) => panic!("read_events of no ids failed: {error:?}"),
    }
}
