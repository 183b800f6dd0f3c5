//! Reading the global log: order across streams, paging after a position, filters, the head.

use eventsrc_core::store::{AppendResult, ReadAll};

use eventsrc_core::{EventStore, ExpectedVersion, GlobalPosition, NewEvent, StreamVersion};

use super::sample::{self, append, fresh_tenant, observe, read_all, row, summary, whole_log};
use super::{StoreUnderTest, expect};

/// Appends `(stream, [event types])` batches in order, each with `Any`.
async fn append_batches<S: EventStore>(
    store: &S,
    batches: &[(&str, &[&'static str])],
) -> Vec<AppendResult> {
    let mut results = Vec::with_capacity(batches.len());
    for (name, types) in batches {
        let events = types.iter().map(|t| NewEvent::raw(*t, 1, "{}")).collect();
        let s = sample::stream(name);
        results.push(append(store, &s, ExpectedVersion::Any, events).await);
    }
    results
}

/// Three streams in two categories, interleaved in five appends.
const INTERLEAVED: [(&str, &[&str]); 5] = [
    ("lead-1", &["Opened", "Renamed"]),
    ("invoice-7", &["Billed"]),
    ("lead-2", &["Opened"]),
    ("lead-1", &["StatusChanged"]),
    ("invoice-7", &["Paid", "Billed"]),
];

/// The log holds every stream's events in commit order, positions strictly increasing after
/// `START`; each append reported its last event's position, and the head is the last one.
pub async fn read_all_returns_every_stream_in_commit_order<S: StoreUnderTest>(store: S) {
    let results = append_batches(&store, &INTERLEAVED).await;
    let all = read_all(&store, ReadAll::after(GlobalPosition::START)).await;
    assert_eq!(
        summary(&all),
        [
            row("lead-1", 1, "Opened"),
            row("lead-1", 2, "Renamed"),
            row("invoice-7", 1, "Billed"),
            row("lead-2", 1, "Opened"),
            row("lead-1", 3, "StatusChanged"),
            row("invoice-7", 2, "Paid"),
            row("invoice-7", 3, "Billed"),
        ],
        "the log, in commit order"
    );
    expect::increasing_positions(&all, "the log");
    assert!(
        all[0].global_position > GlobalPosition::START,
        "the first position"
    );
    let reported: Vec<GlobalPosition> = results.iter().map(|r| r.position).collect();
    let last_of_each = [1, 2, 3, 4, 6].map(|i| all[i].global_position);
    assert_eq!(reported, last_of_each, "positions reported by the appends");
    assert_eq!(
        sample::head(&store).await,
        all[6].global_position,
        "head_position"
    );
}

/// `ReadAll::after(p)` starts strictly after `p`; `limit` bounds a page; paging with the last
/// position seen reads everything once; after the head there is nothing.
pub async fn read_all_pages_strictly_after_a_position<S: StoreUnderTest>(store: S) {
    append_batches(&store, &INTERLEAVED).await;
    let all = read_all(&store, ReadAll::after(GlobalPosition::START)).await;
    assert_eq!(all.len(), 7, "the whole log");
    for (i, event) in all.iter().enumerate() {
        let rest = read_all(&store, ReadAll::after(event.global_position)).await;
        assert_eq!(
            rest,
            all[i + 1..],
            "the log after event #{} ({})",
            i + 1,
            event.global_position
        );
    }
    let page = read_all(&store, ReadAll::after(all[1].global_position).limit(2)).await;
    assert_eq!(
        summary(&page),
        summary(&all[2..4]),
        "2 events after the second"
    );
    let unbounded = read_all(
        &store,
        ReadAll::after(GlobalPosition::START).limit(usize::MAX),
    );
    assert_eq!(unbounded.await, all, "the log with limit usize::MAX");
    let none = read_all(&store, ReadAll::after(GlobalPosition::START).limit(0)).await;
    assert!(none.is_empty(), "limit 0 returned {none:#?}");

    let mut paged = Vec::new();
    loop {
        let after = paged
            .last()
            .map_or(GlobalPosition::START, |e: &eventsrc_core::RecordedEvent| {
                e.global_position
            });
        let page = read_all(&store, ReadAll::after(after).limit(3)).await;
        assert!(page.len() <= 3, "a page of limit 3 holds {}", page.len());
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged, all, "the log read in pages of 3");
    let head = sample::head(&store).await;
    let after_head = read_all(&store, ReadAll::after(head)).await;
    assert!(
        after_head.is_empty(),
        "the log after the head: {after_head:#?}"
    );
}

/// An event type filter returns only those types, in log order; the limit counts matching
/// events; names match exactly (`_` and `%` are not wildcards).
pub async fn read_all_filters_by_event_type<S: StoreUnderTest>(store: S) {
    append_batches(&store, &INTERLEAVED).await;
    append_batches(&store, &[("misc-1", &["a_b", "axb", "a%", "Billed.v2"])]).await;
    let filtered = |types: &[&str]| {
        let read = ReadAll::after(GlobalPosition::START).event_types(types.iter().copied());
        read_all(&store, read)
    };
    assert_eq!(
        summary(&filtered(&["Opened", "Billed"]).await),
        [
            row("lead-1", 1, "Opened"),
            row("invoice-7", 1, "Billed"),
            row("lead-2", 1, "Opened"),
            row("invoice-7", 3, "Billed"),
        ],
        "Opened or Billed"
    );
    let two_billed = ReadAll::after(GlobalPosition::START)
        .event_types(["Billed"])
        .limit(2);
    assert_eq!(
        summary(&read_all(&store, two_billed).await),
        [row("invoice-7", 1, "Billed"), row("invoice-7", 3, "Billed")],
        "the first 2 Billed: the limit counts matching events, not scanned ones"
    );
    assert_eq!(
        summary(&filtered(&["a_b"]).await),
        [row("misc-1", 1, "a_b")],
        "a_b"
    );
    assert_eq!(
        summary(&filtered(&["a%"]).await),
        [row("misc-1", 3, "a%")],
        "a%"
    );
    for nothing in ["Nothing", "%", "_", "billed", "Bill", "Billed.v"] {
        let found = filtered(&[nothing]).await;
        assert!(
            found.is_empty(),
            "event type `{nothing}` matched {found:#?}"
        );
    }
}

/// A category filter returns the streams whose part before the first `-` is one of the
/// categories, exactly: not a prefix, not case-insensitively, no wildcards.
pub async fn read_all_filters_by_category<S: StoreUnderTest>(store: S) {
    append_batches(&store, &INTERLEAVED).await;
    let odd = [
        ("lead_x-1", &["Opened"][..]),
        ("leadax-1", &["Opened"]),
        ("Lead-9", &["Opened"]),
        ("lead-3-b", &["Opened"]),
    ];
    append_batches(&store, &odd).await;
    let in_categories = |categories: &[&str]| {
        let read = ReadAll::after(GlobalPosition::START).categories(categories.iter().copied());
        read_all(&store, read)
    };
    let leads = in_categories(&["lead"]).await;
    assert_eq!(
        summary(&leads),
        [
            row("lead-1", 1, "Opened"),
            row("lead-1", 2, "Renamed"),
            row("lead-2", 1, "Opened"),
            row("lead-1", 3, "StatusChanged"),
            row("lead-3-b", 1, "Opened"),
        ],
        "category lead"
    );
    let opened_after_first = ReadAll::after(leads[0].global_position)
        .categories(["lead"])
        .event_types(["Opened"]);
    assert_eq!(
        summary(&read_all(&store, opened_after_first).await),
        [row("lead-2", 1, "Opened"), row("lead-3-b", 1, "Opened")],
        "Opened leads after the first event: both filters at once"
    );
    assert_eq!(
        in_categories(&["lead", "invoice"]).await.len(),
        8,
        "two categories"
    );
    let lead_x = in_categories(&["lead_x"]).await;
    assert_eq!(
        summary(&lead_x),
        [row("lead_x-1", 1, "Opened")],
        "category lead_x"
    );
    for nothing in ["lea", "lead%", "LEAD", "lead-1", "%", "invoic"] {
        let found = in_categories(&[nothing]).await;
        assert!(found.is_empty(), "category `{nothing}` matched {found:#?}");
    }
}

/// The head is `START` before any event, the last event's position after each append, and
/// does not move for a failed append nor for another tenant's append.
pub async fn head_position_is_the_last_visible_event<S: StoreUnderTest>(store: S) {
    assert_eq!(
        sample::head(&store).await,
        GlobalPosition::START,
        "an empty store's head"
    );
    let s = sample::stream("note-1");
    for n in [1, 3] {
        let appended = append(&store, &s, ExpectedVersion::Any, sample::events("Noted", n)).await;
        assert_eq!(
            sample::head(&store).await,
            appended.position,
            "the head after an append"
        );
        let last = whole_log(&store).await.last().map(|e| e.global_position);
        assert_eq!(last, Some(appended.position), "the log's last position");
    }
    let before = observe(&store, &s).await;
    let failed = store
        .append(&s, ExpectedVersion::NoStream, sample::events("Noted", 1))
        .await;
    expect::conflict(
        failed,
        &s,
        ExpectedVersion::NoStream,
        StreamVersion(4),
        "NoStream",
    );
    let other = store.with_tenant(fresh_tenant("other"));
    append(&other, &s, ExpectedVersion::Any, sample::events("Noted", 2)).await;
    let context = "after a failed append and another tenant's append";
    expect::unchanged(&before, &observe(&store, &s).await, context);
}
