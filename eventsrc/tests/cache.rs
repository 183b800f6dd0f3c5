//! The aggregate cache beyond the conformance cases: its bound, its keys (tenants), snapshots
//! taken from cached state, and loads, which never use it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Add, Tally};
use eventsrc::store::Snapshot;
use eventsrc::{
    Aggregate, AggregateCache, MemoryStore, Metadata, Repository, SnapshotStore, StreamVersion,
    Tenant, Tenants,
};

async fn add(repository: &Repository<MemoryStore, MemoryStore>, id: &str, amount: i64) -> u64 {
    repository
        .execute::<Tally, _>(&id.to_owned(), Add(vec![amount]), Metadata::new())
        .await
        .unwrap()
        .stream_version
        .get()
}

fn cached(store: &MemoryStore, cache: &AggregateCache) -> Repository<MemoryStore, MemoryStore> {
    Repository::new(store.clone())
        .with_snapshots(store.clone())
        .with_cache(cache.clone())
}

async fn total(store: &MemoryStore, id: &str) -> i64 {
    Repository::new(store.clone())
        .load::<Tally>(&id.to_owned())
        .await
        .unwrap()
        .state
        .total
}

#[tokio::test]
async fn the_cache_holds_at_most_its_capacity_and_evicted_aggregates_are_read_again() {
    let store = MemoryStore::new();
    let cache = AggregateCache::new(3);
    let repository = cached(&store, &cache);
    for round in 1..=2 {
        for n in 0..20 {
            add(&repository, &format!("t{n}"), n).await;
            assert!(
                cache.len() <= 3,
                "{} aggregates held, capacity 3",
                cache.len()
            );
        }
        for n in 0..20 {
            assert_eq!(total(&store, &format!("t{n}")).await, n * round);
        }
    }
    assert_eq!(cache.capacity(), 3);
    cache.clear();
    assert!(cache.is_empty());
    assert_eq!(
        add(&repository, "t1", 1).await,
        3,
        "a cleared aggregate is read again"
    );
}

#[tokio::test]
async fn one_cache_keeps_each_tenants_aggregates_apart() {
    let store = MemoryStore::new();
    let cache = AggregateCache::new(100);
    let tenant = |name: &str| store.with_tenant(Tenant::new(name));
    let (ours, theirs) = (tenant("ours"), tenant("theirs"));
    let (our_repository, their_repository) = (cached(&ours, &cache), cached(&theirs, &cache));
    assert_eq!(add(&our_repository, "same", 1).await, 1);
    assert_eq!(add(&their_repository, "same", 10).await, 1);
    assert_eq!(cache.len(), 2, "one entry per tenant");
    assert_eq!(add(&our_repository, "same", 1).await, 2);
    assert_eq!(add(&their_repository, "same", 10).await, 2);
    assert_eq!(
        (total(&ours, "same").await, total(&theirs, "same").await),
        (2, 20)
    );
}

#[tokio::test]
async fn cached_commands_still_take_snapshots() {
    let store = MemoryStore::new();
    let cache = AggregateCache::new(10);
    let repository = cached(&store, &cache);
    for _ in 0..5 {
        add(&repository, "sold", 3).await;
    }
    let stream = Tally::stream_id(&"sold".to_owned()).unwrap();
    let snapshot: Snapshot = store.load_snapshot(&stream).await.unwrap().unwrap();
    assert_eq!(
        snapshot.version,
        StreamVersion(4),
        "every 2 events, last at 4"
    );
    let state: Tally = serde_json::from_str(&snapshot.payload).unwrap();
    assert_eq!((state.total, state.count), (12, 4));
}

#[tokio::test]
async fn loads_read_the_store_not_the_cache() {
    let store = MemoryStore::new();
    let cache = AggregateCache::new(10);
    let repository = cached(&store, &cache);
    add(&repository, "t", 1).await;
    // Another node's write.
    add(&cached(&store, &AggregateCache::new(10)), "t", 5).await;
    let loaded = repository.load::<Tally>(&"t".to_owned()).await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (6, StreamVersion(2)));
}
