//! [`Inspect`]: the streams of a tenant page by page in byte order, the stored event types
//! with their counts, every checkpoint, and every parked event; each of its tenant only.
//!
//! Names are chosen so that byte order and a locale's order disagree (`cart-B` before
//! `cart-_x` before `cart-a`, `Cart-z` first, `cart-é` last), so that a backend sorting by its
//! database's collation fails.

use eventsrc_core::backend::ParkedEvent;
use eventsrc_core::store::{
    CheckpointSummary, Inspect, ListStreams, ReadStream, StoredTypeCount, StreamSummary,
};
use eventsrc_core::{
    EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent, StreamId, Timestamp,
};

use super::StoreUnderTest;
use super::sample::{self, append, events, fresh_tenant, read, whole_log};

/// A page of streams, which must be readable.
async fn streams<S: Inspect>(store: &S, list: ListStreams) -> Vec<StreamSummary> {
    let description = format!("{list:?}");
    match store.streams(list).await {
        Ok(streams) => streams,
        Err(error) => panic!("streams with {description} failed: {error:?}"),
    }
}

/// The names of a page of streams, in order.
fn names(streams: &[StreamSummary]) -> Vec<&str> {
    streams.iter().map(|s| s.stream.as_str()).collect()
}

/// The stored types, which must be readable.
async fn event_types<S: Inspect>(store: &S) -> Vec<StoredTypeCount> {
    store.event_types().await.expect("event_types")
}

/// The checkpoints, which must be readable.
async fn checkpoints<S: Inspect>(store: &S) -> Vec<CheckpointSummary> {
    store.checkpoints().await.expect("checkpoints")
}

/// Every parked event, which must be readable.
async fn all_parked<S: Inspect>(store: &S) -> Vec<ParkedEvent> {
    store.all_parked().await.expect("all_parked")
}

/// What [`Inspect::streams`] must say of `stream`: its last event's version and time, as
/// reading it backward finds them.
async fn summary_of<S: EventStore>(store: &S, stream: &StreamId) -> StreamSummary {
    let newest = read(store, stream, ReadStream::backward().limit(1)).await;
    let newest = newest
        .first()
        .unwrap_or_else(|| panic!("`{stream}` has events"));
    StreamSummary::new(stream.clone(), newest.stream_version, newest.recorded_at)
}

/// Walks every page of `list` (its limit being the page size), checking that each page holds
/// at most that many streams and that the walk ends on an empty page.
async fn walk<S: Inspect>(store: &S, list: ListStreams) -> Vec<StreamSummary> {
    let mut walked: Vec<StreamSummary> = Vec::new();
    for _ in 0..100 {
        let mut page = list.clone();
        page.after = walked
            .last()
            .map(|s| s.stream.as_str().to_owned())
            .or(list.after.clone());
        let found = streams(store, page.clone()).await;
        assert!(
            found.len() <= list.limit,
            "a page of {page:?} holds {} streams: {:?}",
            found.len(),
            names(&found)
        );
        if found.is_empty() {
            return walked;
        }
        walked.extend(found);
    }
    panic!(
        "walking {list:?} never reached an empty page: {:?}",
        names(&walked)
    );
}

/// Streams are listed in byte order of their names, each once whatever the page size, from
/// strictly after `after`, by category, with their version and the time of their newest event;
/// another tenant's streams are not listed, and an empty tenant lists none.
pub async fn inspect_lists_streams_in_byte_order_page_by_page<S: StoreUnderTest>(store: S) {
    assert!(
        streams(&store, ListStreams::new()).await.is_empty(),
        "an empty store lists streams"
    );
    // Appended out of order, with different numbers of events. `cart.x-1` is of category
    // `cart.x`, `carts-1` of `carts`: neither is a `cart` stream.
    let appended = [
        ("cart-a", 2),
        ("order-7", 1),
        ("cart-_x", 3),
        ("Cart-z", 1),
        ("cart-B", 4),
        ("cart-é", 1),
        ("cart.x-1", 1),
        ("carts-1", 2),
        ("cart-1", 1),
    ];
    for (name, count) in appended {
        let stream = sample::stream(name);
        append(
            &store,
            &stream,
            ExpectedVersion::NoStream,
            events("Noted", count),
        )
        .await;
    }
    // The last event of `cart-a` comes later than its first.
    let cart_a = sample::stream("cart-a");
    append(&store, &cart_a, ExpectedVersion::Any, events("Noted", 1)).await;
    // Another tenant, with a name that would sort first and one of the same category.
    let other = store.with_tenant(fresh_tenant("inspect-streams"));
    for name in ["cart-0", "Aardvark-1", "cart-a"] {
        append(
            &other,
            &sample::stream(name),
            ExpectedVersion::NoStream,
            events("Other", 1),
        )
        .await;
    }

    let in_byte_order = [
        "Cart-z", "cart-1", "cart-B", "cart-_x", "cart-a", "cart-é", "cart.x-1", "carts-1",
        "order-7",
    ];
    let mut expected = Vec::new();
    for name in in_byte_order {
        expected.push(summary_of(&store, &sample::stream(name)).await);
    }
    assert_eq!(
        expected
            .iter()
            .map(|s| s.stream.as_str())
            .collect::<Vec<_>>(),
        {
            let mut sorted = in_byte_order.to_vec();
            sorted.sort_unstable();
            sorted
        },
        "the suite's own expectation is in byte order"
    );
    let versions: Vec<u64> = expected.iter().map(|s| s.version.get()).collect();
    assert_eq!(
        versions,
        [1, 1, 4, 3, 3, 1, 1, 2, 1],
        "the versions appended"
    );

    let everything = streams(&store, ListStreams::new()).await;
    assert_eq!(everything, expected, "every stream, in byte order");
    for size in [1, 2, 4, 100] {
        let walked = walk(&store, ListStreams::new().limit(size)).await;
        assert_eq!(walked, expected, "every stream, {size} per page");
    }
    assert!(
        streams(&store, ListStreams::new().limit(0))
            .await
            .is_empty(),
        "a limit of 0"
    );
    let first_two = streams(&store, ListStreams::new().limit(2)).await;
    assert_eq!(
        names(&first_two),
        ["Cart-z", "cart-1"],
        "the first page of 2"
    );

    // `after` is strict, and need not name a stream.
    let after_b = streams(&store, ListStreams::new().after("cart-B").limit(2)).await;
    assert_eq!(names(&after_b), ["cart-_x", "cart-a"], "after `cart-B`");
    let after_z = streams(&store, ListStreams::new().after("cart-Z")).await;
    assert_eq!(
        names(&after_z),
        in_byte_order[3..],
        "after `cart-Z`, not a stream"
    );
    let after_last = streams(&store, ListStreams::new().after("order-7")).await;
    assert!(
        after_last.is_empty(),
        "after the last: {:?}",
        names(&after_last)
    );

    // A category.
    let carts = ["cart-1", "cart-B", "cart-_x", "cart-a", "cart-é"];
    let of_cart = streams(&store, ListStreams::new().category("cart")).await;
    assert_eq!(of_cart, expected[1..6], "the `cart` streams");
    assert_eq!(names(&of_cart), carts);
    for size in [1, 2, 3] {
        let walked = walk(&store, ListStreams::new().category("cart").limit(size)).await;
        assert_eq!(names(&walked), carts, "the `cart` streams, {size} per page");
    }
    let cart_after = ListStreams::new().category("cart").after("cart-B");
    let cart_after = streams(&store, cart_after).await;
    assert_eq!(
        names(&cart_after),
        carts[2..],
        "`cart` streams after `cart-B`"
    );
    let cart_after_all = ListStreams::new().category("cart").after("Cart-z");
    let cart_after_all = streams(&store, cart_after_all).await;
    assert_eq!(
        names(&cart_after_all),
        carts,
        "after a name before the category"
    );
    let past = ListStreams::new().category("cart").after("cart-é");
    assert!(
        streams(&store, past).await.is_empty(),
        "after the category's last"
    );
    for (category, expected) in [
        ("Cart", vec!["Cart-z"]),
        ("cart.x", vec!["cart.x-1"]),
        ("carts", vec!["carts-1"]),
        ("order", vec!["order-7"]),
        ("car", vec![]),
        ("invoice", vec![]),
        ("cart-a", vec![]),
    ] {
        let found = streams(&store, ListStreams::new().category(category)).await;
        assert_eq!(
            names(&found),
            expected,
            "the streams of category `{category}`"
        );
    }

    // Each tenant its own.
    let others = streams(&other, ListStreams::new()).await;
    assert_eq!(
        names(&others),
        ["Aardvark-1", "cart-0", "cart-a"],
        "the other tenant's"
    );
    assert_eq!(others[2].version.get(), 1, "the other tenant's `cart-a`");
    let third = store.with_tenant(fresh_tenant("inspect-none"));
    assert!(
        streams(&third, ListStreams::new()).await.is_empty(),
        "a tenant without events lists streams"
    );
}

/// The stored types are counted per (type, schema version), ordered by type in byte order and
/// then by version as a number; another tenant's events are not counted.
pub async fn inspect_counts_event_types_per_schema_version<S: StoreUnderTest>(store: S) {
    assert!(
        event_types(&store).await.is_empty(),
        "an empty store's types"
    );
    let raw = |event_type: &'static str, version: u32, n: usize| -> Vec<NewEvent> {
        (0..n)
            .map(|i| NewEvent::raw(event_type, version, format!(r#"{{"i":{i}}}"#)))
            .collect()
    };
    let (cart, order) = (sample::stream("cart-1"), sample::stream("order-1"));
    append(&store, &cart, ExpectedVersion::Any, raw("ItemAdded", 10, 2)).await;
    append(&store, &cart, ExpectedVersion::Any, raw("ItemAdded", 2, 3)).await;
    append(&store, &order, ExpectedVersion::Any, raw("ItemAdded", 2, 1)).await;
    append(
        &store,
        &order,
        ExpectedVersion::Any,
        raw("checkedOut", 1, 1),
    )
    .await;
    append(
        &store,
        &order,
        ExpectedVersion::Any,
        raw("Wide", u32::MAX, 1),
    )
    .await;
    append(
        &store,
        &cart,
        ExpectedVersion::Any,
        raw("Item_Removed", 0, 2),
    )
    .await;
    let other = store.with_tenant(fresh_tenant("inspect-types"));
    append(&other, &cart, ExpectedVersion::Any, raw("ItemAdded", 2, 5)).await;
    append(&other, &cart, ExpectedVersion::Any, raw("Foreign", 1, 1)).await;

    let expected = vec![
        StoredTypeCount::new("ItemAdded", 2, 4),
        StoredTypeCount::new("ItemAdded", 10, 2),
        StoredTypeCount::new("Item_Removed", 0, 2),
        StoredTypeCount::new("Wide", u32::MAX, 1),
        StoredTypeCount::new("checkedOut", 1, 1),
    ];
    assert_eq!(
        event_types(&store).await,
        expected,
        "the first tenant's types"
    );
    let total: u64 = expected.iter().map(|t| t.events).sum();
    assert_eq!(
        total,
        whole_log(&store).await.len() as u64,
        "every event counted once"
    );
    assert_eq!(
        event_types(&other).await,
        vec![
            StoredTypeCount::new("Foreign", 1, 1),
            StoredTypeCount::new("ItemAdded", 2, 5),
        ],
        "the other tenant's types"
    );
}

/// Every checkpoint of the tenant is listed in byte order of its name, at its last saved
/// position; another tenant's are not.
pub async fn inspect_lists_checkpoints_in_name_order<S: StoreUnderTest>(store: S) {
    assert!(
        checkpoints(&store).await.is_empty(),
        "an empty store's checkpoints"
    );
    let save = |store: &S, name: &'static str, position: GlobalPosition| {
        let store = store.clone();
        async move {
            store
                .save_checkpoint(name, position)
                .await
                .unwrap_or_else(|error| panic!("save_checkpoint `{name}`: {error:?}"));
        }
    };
    let high = GlobalPosition::new(u64::MAX, u64::MAX - 1);
    save(&store, "mailer", GlobalPosition::new(3, 3)).await;
    save(&store, "_audit", GlobalPosition::new(1, 1)).await;
    save(&store, "Billing", high).await;
    save(&store, "report", GlobalPosition::new(2, 2)).await;
    save(&store, "mailer", GlobalPosition::new(7, 9)).await;
    let other = store.with_tenant(fresh_tenant("inspect-checkpoints"));
    save(&other, "report", GlobalPosition::new(5, 5)).await;
    save(&other, "Aardvark", GlobalPosition::new(4, 4)).await;

    let expected = vec![
        CheckpointSummary::new("Billing", Some(high)),
        CheckpointSummary::new("_audit", Some(GlobalPosition::new(1, 1))),
        CheckpointSummary::new("mailer", Some(GlobalPosition::new(7, 9))),
        CheckpointSummary::new("report", Some(GlobalPosition::new(2, 2))),
    ];
    assert_eq!(
        checkpoints(&store).await,
        expected,
        "the first tenant's checkpoints"
    );
    for summary in &expected {
        let loaded = store.load_checkpoint(&summary.consumer).await;
        let loaded = loaded.expect("load_checkpoint");
        assert_eq!(loaded, summary.position, "`{}` as loaded", summary.consumer);
    }
    assert_eq!(
        checkpoints(&other).await,
        vec![
            CheckpointSummary::new("Aardvark", Some(GlobalPosition::new(4, 4))),
            CheckpointSummary::new("report", Some(GlobalPosition::new(5, 5))),
        ],
        "the other tenant's checkpoints"
    );
}

/// Every parked event of the tenant is listed reactor by reactor (byte order of their names),
/// each reactor's in log order, as [`ParkedStore::parked`](eventsrc_core::backend::ParkedStore::parked) lists them; an unparked event is
/// gone, and another tenant's are not listed.
pub async fn inspect_lists_every_parked_event_by_reactor<S: StoreUnderTest>(store: S) {
    assert!(
        all_parked(&store).await.is_empty(),
        "an empty store's parked events"
    );
    for name in ["note-1", "note-2"] {
        append(
            &store,
            &sample::stream(name),
            ExpectedVersion::Any,
            events("Noted", 3),
        )
        .await;
    }
    let log = whole_log(&store).await;
    let parked = |event: &RecordedEvent, reactor: &str, attempts: u32| ParkedEvent {
        reactor: reactor.to_owned(),
        event: event.clone(),
        error: format!("{reactor} failed {attempts} time(s)"),
        attempts,
        parked_at: Timestamp::from_micros(1_700_000_000_000_000 + i64::from(attempts)),
    };
    // Out of order, for reactors whose byte order is not a locale's.
    for (index, reactor) in [
        (4, "mailer"),
        (1, "mailer"),
        (5, "_retry"),
        (3, "Audit"),
        (0, "mailer"),
        (2, "_retry"),
        (0, "Audit"),
    ] {
        let entry = parked(&log[index], reactor, index as u32 + 1);
        store.park(entry).await.expect("park");
    }
    let other = store.with_tenant(fresh_tenant("inspect-parked"));
    append(
        &other,
        &sample::stream("note-1"),
        ExpectedVersion::Any,
        events("Other", 1),
    )
    .await;
    let other_log = whole_log(&other).await;
    other
        .park(parked(&other_log[0], "mailer", 1))
        .await
        .expect("park");
    other
        .park(parked(&other_log[0], "Aardvark", 1))
        .await
        .expect("park");

    let expected: Vec<ParkedEvent> = [
        (0, "Audit"),
        (3, "Audit"),
        (2, "_retry"),
        (5, "_retry"),
        (0, "mailer"),
        (1, "mailer"),
        (4, "mailer"),
    ]
    .into_iter()
    .map(|(index, reactor)| parked(&log[index], reactor, index as u32 + 1))
    .collect();
    assert_eq!(all_parked(&store).await, expected, "every parked event");
    let mut per_reactor = Vec::new();
    for reactor in ["Audit", "_retry", "mailer"] {
        per_reactor.extend(store.parked(reactor).await.expect("parked"));
    }
    assert_eq!(per_reactor, expected, "as each reactor's list has them");

    assert!(
        store
            .unpark("mailer", log[1].event_id)
            .await
            .expect("unpark")
    );
    assert!(
        store
            .unpark("Audit", log[0].event_id)
            .await
            .expect("unpark")
    );
    let left: Vec<ParkedEvent> = [1, 2, 3, 4, 6]
        .into_iter()
        .map(|i| expected[i].clone())
        .collect();
    assert_eq!(all_parked(&store).await, left, "after two were unparked");

    let others = all_parked(&other).await;
    assert_eq!(
        others,
        vec![
            parked(&other_log[0], "Aardvark", 1),
            parked(&other_log[0], "mailer", 1),
        ],
        "the other tenant's parked events"
    );
}
