//! Snapshots (the latest per stream, loaded exactly as saved) and checkpoints (per subscriber).

use eventsrc_core::{GlobalPosition, SnapshotStore, StreamId, StreamVersion, Timestamp};

use eventsrc_core::store::Snapshot;

use super::StoreUnderTest;
use super::sample;

fn snapshot(stream: &StreamId, version: u64, state_version: u32, payload: &str) -> Snapshot {
    Snapshot {
        stream: stream.clone(),
        version: StreamVersion(version),
        state_version,
        payload: payload.to_owned(),
        taken_at: Timestamp::from_micros(1_700_000_000_000_000 + version as i64),
    }
}

async fn load<S: SnapshotStore>(store: &S, stream: &StreamId) -> Option<Snapshot> {
    match store.load_snapshot(stream).await {
        Ok(snapshot) => snapshot,
        Err(error) => panic!("load_snapshot of `{stream}` failed: {error:?}"),
    }
}

async fn save<S: SnapshotStore>(store: &S, snapshot: Snapshot) {
    let description = format!("`{}` at version {}", snapshot.stream, snapshot.version);
    if let Err(error) = store.save_snapshot(snapshot).await {
        panic!("save_snapshot of {description} failed: {error:?}");
    }
}

/// No snapshot loads as `None`; a saved one loads; a later version replaces it; an older one is
/// ignored; the same version replaces it (the repository snapshots again at the same version
/// when the state's shape changed); each stream has its own.
pub async fn snapshots_are_saved_loaded_and_replaced<S: StoreUnderTest>(store: S) {
    let s = sample::stream("lead-1");
    assert_eq!(load(&store, &s).await, None, "before any snapshot");
    let steps = [
        ("a first snapshot", snapshot(&s, 3, 1, r#"{"v":3}"#), 0),
        ("a later version", snapshot(&s, 5, 1, r#"{"v":5}"#), 1),
        (
            "an older version (ignored)",
            snapshot(&s, 4, 1, r#"{"v":4}"#),
            1,
        ),
        (
            "the same version, new shape",
            snapshot(&s, 5, 2, r#"{"v":"5"}"#),
            3,
        ),
        ("version 1 (ignored)", snapshot(&s, 1, 3, r#"{"v":1}"#), 3),
    ];
    for (i, (what, saved, latest)) in steps.iter().enumerate() {
        save(&store, saved.clone()).await;
        let expected = &steps[*latest].1;
        let loaded = load(&store, &s).await;
        assert_eq!(
            loaded.as_ref(),
            Some(expected),
            "after step {}: {what}",
            i + 1
        );
    }
    let other = sample::stream("lead-2");
    assert_eq!(
        load(&store, &other).await,
        None,
        "another stream's snapshot"
    );
    save(&store, snapshot(&other, 1, 1, "{}")).await;
    let kept = load(&store, &s).await.map(|s| s.version);
    assert_eq!(
        kept,
        Some(StreamVersion(5)),
        "`lead-1` after saving `lead-2`"
    );
}

/// A snapshot loads field for field as saved: its payload text, its state version whatever it
/// is (deciding whether a state version is usable is the repository's job), and its time to the
/// microsecond, even when a later version was taken at an earlier time.
pub async fn a_snapshot_loads_exactly_as_saved<S: StoreUnderTest>(store: S) {
    let s = sample::stream("lead-1");
    let first = Snapshot {
        taken_at: Timestamp::from_micros(1_700_000_000_654_321),
        ..snapshot(&s, 2, 7, "{ \"b\": 1, \"a\": \"caf\\u00e9 ü\" }\n")
    };
    save(&store, first.clone()).await;
    assert_eq!(
        load(&store, &s).await,
        Some(first),
        "a snapshot at state version 7"
    );

    let reshaped = Snapshot {
        taken_at: Timestamp::from_micros(1_600_000_000_000_001),
        ..snapshot(&s, 3, 1, "null")
    };
    save(&store, reshaped.clone()).await;
    let loaded = load(&store, &s).await;
    assert_eq!(
        loaded,
        Some(reshaped),
        "a later version at a lower state version, taken earlier"
    );
}

/// Checkpoints load as `None` until saved, then as the last position saved for that exact
/// subscriber name (case and unicode included); `START` is a position like any other.
pub async fn checkpoints_are_saved_loaded_and_overwritten_per_subscriber<S: StoreUnderTest>(
    store: S,
) {
    let long = "projection.".repeat(20);
    let names = ["report", "Report", "mailer ✉ уведомления", long.as_str()];
    for name in names {
        let loaded = store.load_checkpoint(name).await.expect("load_checkpoint");
        assert_eq!(loaded, None, "`{name}` before any save");
    }
    let position = |i: usize| GlobalPosition::new(10 + i as u64, 20 + i as u64);
    for (i, name) in names.iter().enumerate() {
        store
            .save_checkpoint(name, position(i))
            .await
            .expect("save_checkpoint");
    }
    for (i, name) in names.iter().enumerate() {
        let loaded = store.load_checkpoint(name).await.expect("load_checkpoint");
        assert_eq!(loaded, Some(position(i)), "`{name}`'s checkpoint");
    }

    let later = GlobalPosition::new(90, 99);
    store
        .save_checkpoint("report", later)
        .await
        .expect("save_checkpoint");
    let loaded = store
        .load_checkpoint("report")
        .await
        .expect("load_checkpoint");
    assert_eq!(loaded, Some(later), "`report` overwritten");
    let other = store
        .load_checkpoint("Report")
        .await
        .expect("load_checkpoint");
    assert_eq!(
        other,
        Some(position(1)),
        "`Report`, after `report` was overwritten"
    );

    store
        .save_checkpoint("rebuilt", GlobalPosition::START)
        .await
        .expect("save_checkpoint");
    let start = store
        .load_checkpoint("rebuilt")
        .await
        .expect("load_checkpoint");
    assert_eq!(
        start,
        Some(GlobalPosition::START),
        "a checkpoint at START is not `None`"
    );
}
