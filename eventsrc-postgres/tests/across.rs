//! Appends across streams on PostgreSQL: what the conformance suite cannot see. Appends over
//! the same streams listed in opposite orders, racing many times, neither deadlock nor fail;
//! two nodes (two pools) racing for one stream have one winner, and two checking each other's
//! streams never both pass; inline projections apply every part's events in the append's
//! transaction, or refuse all of them; listeners are woken.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use eventsrc::store::{AppendResult, ReadAll, StreamAppend};
use eventsrc::{
    EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent, StoreError, StreamId,
    StreamVersion,
};
use eventsrc_postgres::{PgEventStore, PgUrl};
use support::TestSchema;
use support::read_model::{Applied, Noted};
use tokio::sync::Barrier;

/// How long a test waits for an outcome before it fails.
const WAIT: Duration = Duration::from_secs(60);

fn stream(name: &str) -> StreamId {
    StreamId::new("seat", name).unwrap()
}

fn events(event_type: &'static str, count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|n| NewEvent::raw(event_type, 1, format!("{{\"n\":{n}}}")))
        .collect()
}

fn noted(n: u64) -> NewEvent {
    NewEvent::from_event(&Noted { n }, Metadata::new()).unwrap()
}

/// A store on `schema` whose connections wait far beyond [`WAIT`] before looking for
/// deadlocks: a deadlock among its appends is not broken by PostgreSQL within the test (which
/// would fail one of them, and a retry would hide it) but hangs them, and the test's deadline
/// catches it.
async fn store_never_breaking_deadlocks(schema: &TestSchema, pool_size: usize) -> PgEventStore {
    let url: PgUrl = schema.url.parse().unwrap();
    let mut config = url.config().clone();
    config.options("-c deadlock_timeout=1h");
    let store = PgEventStore::connect_config(config, schema.options().pool_size(pool_size))
        .await
        .unwrap();
    let client = store.client().await.unwrap();
    let timeout: String = client
        .query_one("SHOW deadlock_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        timeout, "1h",
        "the test's premise: deadlocks are never broken"
    );
    store
}

/// Every part of one append across streams shares its commit.
fn one_commit(results: &[AppendResult]) {
    let commits: Vec<u64> = results.iter().map(|r| r.position.commit).collect();
    assert!(
        commits.windows(2).all(|pair| pair[0] == pair[1]),
        "the parts of one append share a commit: {results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_across_streams_in_opposite_orders_never_deadlock_or_fail() {
    let Some(schema) = TestSchema::new("appends_across_streams_in_opposite_orders").await else {
        return;
    };
    const WRITERS: usize = 8;
    const ROUNDS: usize = 30;
    let store = store_never_breaking_deadlocks(&schema, WRITERS).await;
    let (a, b, c) = (stream("a"), stream("b"), stream("c"));
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (store, barrier) = (store.clone(), Arc::clone(&barrier));
        let (a, b, c) = (a.clone(), b.clone(), c.clone());
        writers.push(tokio::spawn(async move {
            // How many events this writer appended to a, b and c, and to each commit.
            let mut counts = [0_u64; 3];
            let mut commits = Vec::new();
            barrier.wait().await;
            for round in 0..ROUNDS {
                // Two events to the first stream listed, one to the others; a fourth of the
                // writers append to one stream alone (a single append takes no lock).
                let order: Vec<(usize, &StreamId)> = match writer % 4 {
                    0 => vec![(0, &a), (1, &b)],
                    1 => vec![(1, &b), (0, &a)],
                    2 => vec![(2, &c), (1, &b), (0, &a)],
                    _ => vec![[(0, &a), (1, &b)][round % 2]],
                };
                let parts: Vec<StreamAppend> = order
                    .iter()
                    .enumerate()
                    .map(|(i, &(_, s))| {
                        let count = if i == 0 { 2 } else { 1 };
                        StreamAppend::new(s.clone(), ExpectedVersion::Any, events("Booked", count))
                    })
                    .collect();
                let expected: Vec<u64> = parts.iter().map(|p| p.events.len() as u64).collect();
                let results = match store.append_streams(parts).await {
                    Ok(results) => results,
                    Err(error) => panic!("writer {writer}, round {round}: {error:?}"),
                };
                assert_eq!(results.len(), order.len());
                one_commit(&results);
                commits.push((results[0].position.commit, expected.iter().sum::<u64>()));
                for ((&(index, _), result), count) in order.iter().zip(&results).zip(expected) {
                    assert!(!result.already_stored);
                    assert_eq!(
                        result.stream_version.get() - result.first_version.get() + 1,
                        count
                    );
                    counts[index] += count;
                }
            }
            (counts, commits)
        }));
    }
    let mut totals = [0_u64; 3];
    let mut appended: HashMap<u64, u64> = HashMap::new();
    let finished = tokio::time::timeout(WAIT, async {
        for writer in writers {
            let (counts, commits) = writer.await.expect("a writer failed");
            for (total, count) in totals.iter_mut().zip(counts) {
                *total += count;
            }
            for (commit, count) in commits {
                assert!(
                    appended.insert(commit, count).is_none(),
                    "two appends in commit {commit}"
                );
            }
        }
    })
    .await;
    if finished.is_err() {
        // End the hung sessions, which would otherwise wait for the deadlock timeout.
        schema
            .client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&schema.name],
            )
            .await
            .unwrap();
        panic!("appends across streams did not finish within {WAIT:?}: deadlocked");
    }
    for (s, total) in [&a, &b, &c].into_iter().zip(totals) {
        assert_eq!(
            store.stream_version(s).await.unwrap(),
            StreamVersion(total),
            "every event appended to `{s}` is stored, at dense versions"
        );
    }
    // The log holds each append's events under its commit, and nothing else.
    let log = store
        .read_all(ReadAll::after(GlobalPosition::START).limit(100_000))
        .await
        .unwrap();
    let mut logged: HashMap<u64, u64> = HashMap::new();
    for record in &log {
        *logged.entry(record.global_position.commit).or_default() += 1;
    }
    assert_eq!(
        logged, appended,
        "events per commit, in the log and as appended"
    );
    drop(store);
    schema.drop().await;
}

/// Two nodes, each with a pool of its own, race each round for a new claim stream, each with
/// a stream of its own, listing the two in opposite orders: one wins, and the loser's own
/// stream stays empty. Half the rounds, the second node claims with a single append instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_across_streams_for_one_stream_have_one_winner() {
    let Some(schema) = TestSchema::new("two_nodes_racing_across_streams").await else {
        return;
    };
    const ROUNDS: usize = 40;
    let nodes = [schema.store().await, schema.store().await];
    let mut wins = [0_usize; 2];
    for round in 0..ROUNDS {
        let claim = stream(&format!("claim-{round}"));
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(node, store)| {
                let (store, claim, barrier) = (store.clone(), claim.clone(), Arc::clone(&barrier));
                let own = stream(&format!("own-{node}-{round}"));
                tokio::spawn(async move {
                    let mine = StreamAppend::new(
                        own.clone(),
                        ExpectedVersion::NoStream,
                        events("Registered", 1),
                    );
                    let claimed =
                        StreamAppend::new(claim, ExpectedVersion::NoStream, events("Claimed", 1));
                    barrier.wait().await;
                    let result = match (node, round % 2) {
                        (0, _) => store.append_streams(vec![mine, claimed]).await,
                        (_, 0) => store.append_streams(vec![claimed, mine]).await,
                        // One part: the single append's path, racing the other node's lock.
                        _ => store.append_streams(vec![claimed]).await,
                    };
                    (own, result)
                })
            })
            .collect();
        let mut winners = 0;
        for (node, racer) in racers.into_iter().enumerate() {
            let (own, result) = tokio::time::timeout(WAIT, racer)
                .await
                .expect("a racer finishes")
                .unwrap();
            let own_version = nodes[node].stream_version(&own).await.unwrap();
            match result {
                Ok(results) => {
                    winners += 1;
                    wins[node] += 1;
                    one_commit(&results);
                    let expected_own = if node == 1 && round % 2 == 1 { 0 } else { 1 };
                    assert_eq!(own_version, StreamVersion(expected_own));
                }
                Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
                    assert_eq!(stream, claim, "round {round}: the loser names the claim");
                    assert_eq!(actual, StreamVersion(1), "round {round}");
                    assert_eq!(
                        own_version,
                        StreamVersion::NONE,
                        "round {round}: the loser's own stream stays empty"
                    );
                }
                Err(other) => panic!("round {round}, node {node}: {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one node claims");
        let claim_version = nodes[0].stream_version(&claim).await.unwrap();
        assert_eq!(claim_version, StreamVersion(1), "round {round}");
    }
    assert_eq!(wins.iter().sum::<usize>(), ROUNDS);
    drop(nodes);
    schema.drop().await;
}

/// Two nodes each check (with a part without events) the stream the other writes, both
/// expecting it not to exist yet: whichever commits first makes the other's check fail, so
/// they never both pass. (Without the checked stream's lock, each would read the other's
/// stream before the other committed, and both would store.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_checking_the_stream_the_other_writes_never_both_pass() {
    let Some(schema) = TestSchema::new("appends_checking_each_others_streams").await else {
        return;
    };
    const ROUNDS: usize = 40;
    let nodes = [schema.store().await, schema.store().await];
    for round in 0..ROUNDS {
        let (group, member) = (
            stream(&format!("group-{round}")),
            stream(&format!("member-{round}")),
        );
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(node, store)| {
                let (store, barrier) = (store.clone(), Arc::clone(&barrier));
                let (written, checked) = match node {
                    0 => (member.clone(), group.clone()),
                    _ => (group.clone(), member.clone()),
                };
                tokio::spawn(async move {
                    let write =
                        StreamAppend::new(written, ExpectedVersion::NoStream, events("Made", 1));
                    let check =
                        StreamAppend::new(checked.clone(), ExpectedVersion::NoStream, Vec::new());
                    let parts = match node {
                        0 => vec![check, write],
                        _ => vec![write, check],
                    };
                    barrier.wait().await;
                    (checked, store.append_streams(parts).await)
                })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            let (checked, result) = tokio::time::timeout(WAIT, racer)
                .await
                .expect("a racer finishes")
                .unwrap();
            match result {
                Ok(results) => {
                    winners += 1;
                    assert_eq!(results.len(), 2);
                }
                Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
                    assert_eq!(stream, checked, "round {round}: the loser's check fails");
                    assert_eq!(actual, StreamVersion(1), "round {round}");
                }
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one of the two passes");
        let stored = nodes[0].stream_version(&group).await.unwrap().get()
            + nodes[0].stream_version(&member).await.unwrap().get();
        assert_eq!(
            stored, 1,
            "round {round}: only the winner's event is stored"
        );
    }
    drop(nodes);
    schema.drop().await;
}

#[tokio::test]
async fn inline_projections_apply_every_part_or_refuse_them_all() {
    let Some(schema) = TestSchema::new("inline_projections_across_streams").await else {
        return;
    };
    let store = schema.store().await;
    let model = Applied::in_schema(&schema.name);
    let inline = store.with_inline(model.clone()).await.unwrap();
    let (a, b) = (stream("a"), stream("b"));
    let parts = vec![
        StreamAppend::new(
            a.clone(),
            ExpectedVersion::NoStream,
            vec![noted(1), noted(2)],
        ),
        StreamAppend::new(b.clone(), ExpectedVersion::NoStream, vec![noted(3)]),
    ];
    let ids: Vec<_> = parts
        .iter()
        .flat_map(|p| &p.events)
        .map(|e| e.event_id)
        .collect();
    let stored = inline.append_streams(parts.clone()).await.unwrap();
    one_commit(&stored);
    assert_eq!(
        model.tally(&store).await,
        (3, 0),
        "every part's events applied once"
    );

    // A retry stores nothing and applies nothing again.
    let retried = inline.append_streams(parts).await.unwrap();
    assert!(retried.iter().all(|r| r.already_stored), "{retried:?}");
    assert_eq!(model.tally(&store).await, (3, 0));

    // A projection refusing an event of the second part refuses the whole append.
    let refusing = store
        .with_inline(Applied {
            refuse: Some(5),
            ..model.clone()
        })
        .await
        .unwrap();
    let (c, d) = (stream("c"), stream("d"));
    let first = noted(4);
    let refused = refusing
        .append_streams(vec![
            StreamAppend::new(c.clone(), ExpectedVersion::NoStream, vec![first.clone()]),
            StreamAppend::new(d.clone(), ExpectedVersion::NoStream, vec![noted(5)]),
        ])
        .await;
    match refused {
        Err(StoreError::Refused {
            stream, projection, ..
        }) => {
            assert_eq!(stream, d, "the refusal names the refused event's stream");
            assert_eq!(projection, "applied");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    for s in [&c, &d] {
        assert_eq!(store.stream_version(s).await.unwrap(), StreamVersion::NONE);
    }
    assert_eq!(
        model.applied(&store, first.event_id).await,
        0,
        "the first part's event was not applied either"
    );
    assert_eq!(model.tally(&store).await, (3, 0));

    // read_events finds what the append stored, in the order asked.
    let reversed: Vec<_> = ids.iter().rev().copied().collect();
    let found = store.read_events(&reversed).await.unwrap();
    let found_ids: Vec<_> = found.iter().map(|r| r.event_id).collect();
    assert_eq!(found_ids, reversed);
    drop((store, inline, refusing));
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_across_streams_wakes_listeners() {
    let Some(schema) = TestSchema::new("an_append_across_streams_wakes_listeners").await else {
        return;
    };
    let store = schema.store().await;
    let mut woken = store.notifications().await.unwrap();
    woken.borrow_and_update();
    store
        .append_streams(vec![
            StreamAppend::new(stream("a"), ExpectedVersion::Any, events("Booked", 1)),
            StreamAppend::new(stream("b"), ExpectedVersion::Any, events("Booked", 1)),
        ])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken.changed())
        .await
        .expect("an append across streams wakes the listener")
        .unwrap();
    drop(store);
    schema.drop().await;
}
