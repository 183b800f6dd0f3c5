//! Tenant isolation: streams, versions, the log, the head, snapshots and checkpoints.

use eventsrc_core::{
    EventStore, ExpectedVersion, GlobalPosition, StreamId, StreamVersion, Tenant, Timestamp,
};

use eventsrc_core::store::{ReadAll, ReadStream, Snapshot};

use super::sample::{self, append, events, fresh_tenant, read, version, whole_log};
use super::{StoreUnderTest, expect};

/// What `store` (of its tenant) must see of a stream that only another tenant wrote to.
async fn sees_nothing_of<S: EventStore>(store: &S, stream: &StreamId, who: &str) {
    for bounds in [ReadStream::forward(), ReadStream::backward()] {
        let found = read(store, stream, bounds).await;
        assert!(
            found.is_empty(),
            "{who} reads another tenant's `{stream}`: {found:#?}"
        );
    }
    let v = version(store, stream).await;
    assert_eq!(
        v,
        StreamVersion::NONE,
        "{who}: the version of another tenant's `{stream}`"
    );
}

/// Each tenant's streams, versions, log and head show its own events only, whichever way
/// round, and a third tenant sees nothing at all.
pub async fn tenants_do_not_see_each_others_events<S: StoreUnderTest>(store: S) {
    let acme = store.with_tenant(fresh_tenant("acme"));
    assert_ne!(
        acme.tenant(),
        store.tenant(),
        "with_tenant gives a handle on another tenant"
    );
    let (lead, invoice) = (sample::stream("lead-1"), sample::stream("invoice-9"));
    let home_appended = append(
        &store,
        &lead,
        ExpectedVersion::NoStream,
        events("Opened", 2),
    );
    let home_appended = home_appended.await;
    let acme_appended = append(
        &acme,
        &invoice,
        ExpectedVersion::NoStream,
        events("Billed", 1),
    );
    let acme_appended = acme_appended.await;

    sees_nothing_of(&store, &invoice, "the first tenant").await;
    sees_nothing_of(&acme, &lead, "acme").await;
    for (handle, who, count, head) in [
        (&store, "the first tenant", 2, home_appended.position),
        (&acme, "acme", 1, acme_appended.position),
    ] {
        let log = whole_log(handle).await;
        assert_eq!(log.len(), count, "{who}'s log: {log:#?}");
        assert!(
            log.iter().all(|e| &e.tenant == handle.tenant()),
            "{who}'s log: {log:#?}"
        );
        assert_eq!(sample::head(handle).await, head, "{who}'s head_position");
    }
    let invoices = ReadAll::after(GlobalPosition::START).categories(["invoice"]);
    let found = sample::read_all(&store, invoices).await;
    assert!(
        found.is_empty(),
        "a filtered read of the first tenant found {found:#?}"
    );

    let third = store.with_tenant(fresh_tenant("third"));
    assert!(whole_log(&third).await.is_empty(), "a third tenant's log");
    assert_eq!(
        sample::head(&third).await,
        GlobalPosition::START,
        "a third tenant's head"
    );
    sees_nothing_of(&third, &lead, "a third tenant").await;
}

/// The same stream name in two tenants names two streams, with their own versions, their own
/// expected-version checks and their own events.
pub async fn the_same_stream_name_in_two_tenants_is_two_streams<S: StoreUnderTest>(store: S) {
    let acme = store.with_tenant(fresh_tenant("acme"));
    let s = sample::stream("lead-1");
    append(&store, &s, ExpectedVersion::NoStream, events("Opened", 2)).await;
    let first = append(&acme, &s, ExpectedVersion::NoStream, events("Opened", 1)).await;
    assert_eq!(
        first.stream_version,
        StreamVersion(1),
        "acme's `lead-1` starts at 1"
    );

    let wrong = acme.append(&s, ExpectedVersion::Exact(StreamVersion(2)), events("X", 1));
    let context = "acme expecting the other tenant's version";
    expect::conflict(
        wrong.await,
        &s,
        ExpectedVersion::Exact(StreamVersion(2)),
        StreamVersion(1),
        context,
    );
    let wrong = store.append(&s, ExpectedVersion::Exact(StreamVersion(1)), events("X", 1));
    let context = "the first tenant expecting acme's version";
    expect::conflict(
        wrong.await,
        &s,
        ExpectedVersion::Exact(StreamVersion(1)),
        StreamVersion(2),
        context,
    );

    append(
        &acme,
        &s,
        ExpectedVersion::Exact(StreamVersion(1)),
        events("Renamed", 1),
    )
    .await;
    append(
        &store,
        &s,
        ExpectedVersion::Exact(StreamVersion(2)),
        events("Renamed", 1),
    )
    .await;
    for (handle, who, expected) in [
        (&store, "the first tenant", vec![1, 2, 3]),
        (&acme, "acme", vec![1, 2]),
    ] {
        let forward = read(handle, &s, ReadStream::forward()).await;
        assert_eq!(sample::versions(&forward), expected, "{who}'s `lead-1`");
        assert!(
            forward.iter().all(|e| &e.tenant == handle.tenant()),
            "{who}: {forward:#?}"
        );
        let mut backward = read(handle, &s, ReadStream::backward()).await;
        backward.reverse();
        assert_eq!(backward, forward, "{who}'s `lead-1` read backward");
        let last = StreamVersion(expected.len() as u64);
        assert_eq!(
            version(handle, &s).await,
            last,
            "{who}'s version of `lead-1`"
        );
    }
}

/// A snapshot of the first tenant's stream is not another tenant's snapshot of the same stream
/// name; checkpoints of the same subscriber name are per tenant too.
pub async fn tenants_do_not_see_each_others_snapshots_or_checkpoints<S: StoreUnderTest>(store: S) {
    let acme = store.with_tenant(fresh_tenant("acme"));
    let s = sample::stream("lead-1");
    let snapshot = |tenant: &Tenant, version: u64| Snapshot {
        stream: s.clone(),
        version: StreamVersion(version),
        state_version: 1,
        payload: format!(r#"{{"who":"{tenant}"}}"#),
        taken_at: Timestamp::from_micros(1_700_000_000_000_000),
    };

    store
        .save_snapshot(snapshot(store.tenant(), 3))
        .await
        .expect("save_snapshot");
    let loaded = acme.load_snapshot(&s).await.expect("load_snapshot");
    assert_eq!(loaded, None, "acme loads the first tenant's snapshot");
    acme.save_snapshot(snapshot(acme.tenant(), 1))
        .await
        .expect("save_snapshot");
    for (handle, expected) in [
        (&store, snapshot(store.tenant(), 3)),
        (&acme, snapshot(acme.tenant(), 1)),
    ] {
        let loaded = handle.load_snapshot(&s).await.expect("load_snapshot");
        let who = handle.tenant();
        assert_eq!(
            loaded,
            Some(expected),
            "{who}'s snapshot (a lower version in acme)"
        );
    }

    let (five, two) = (GlobalPosition::new(5, 5), GlobalPosition::new(2, 2));
    acme.save_checkpoint("report", five)
        .await
        .expect("save_checkpoint");
    let loaded = store
        .load_checkpoint("report")
        .await
        .expect("load_checkpoint");
    assert_eq!(loaded, None, "the first tenant loads acme's checkpoint");
    store
        .save_checkpoint("report", two)
        .await
        .expect("save_checkpoint");
    let acme_loaded = acme
        .load_checkpoint("report")
        .await
        .expect("load_checkpoint");
    let home_loaded = store
        .load_checkpoint("report")
        .await
        .expect("load_checkpoint");
    assert_eq!(
        acme_loaded,
        Some(five),
        "acme's checkpoint (a later position)"
    );
    assert_eq!(home_loaded, Some(two), "the first tenant's checkpoint");
}
