//! What is stored comes back exactly: metadata, payload text, unicode, long names, large
//! payloads and the full range of numeric fields.

use eventsrc_core::{
    EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent, RecordedEvent, StreamId,
    StreamVersion, Timestamp, Uuid,
};

use eventsrc_core::store::{ReadAll, ReadStream, Snapshot};
use serde_json::json;

use super::sample::{self, append, read, whole_log};
use super::{StoreUnderTest, expect};

/// Appends `batch` to a new `stream`, then checks that `read_stream` and `read_all` both return
/// each event with its content unchanged, and that re-appending it is an idempotent retry.
async fn round_trip<S: EventStore>(store: &S, stream: &StreamId, batch: Vec<NewEvent>) {
    let original = append(store, stream, ExpectedVersion::NoStream, batch.clone()).await;
    let by_stream = read(store, stream, ReadStream::forward()).await;
    let by_log: Vec<RecordedEvent> = whole_log(store)
        .await
        .into_iter()
        .filter(|e| e.stream == *stream)
        .collect();
    for (how, recorded) in [("read_stream", &by_stream), ("read_all", &by_log)] {
        assert_eq!(
            recorded.len(),
            batch.len(),
            "events of `{stream}` from {how}"
        );
        for (event, new) in recorded.iter().zip(&batch) {
            let at = format!("event {} of `{stream}` from {how}", event.stream_version);
            assert_eq!(&event.stream, stream, "{at}: stream");
            assert_eq!(*event.event_type, *new.event_type, "{at}: event_type");
            assert_eq!(
                event.schema_version, new.schema_version,
                "{at}: schema_version"
            );
            expect::same_text(&event.payload, &new.payload, &format!("{at}: payload"));
            assert_eq!(event.metadata, new.metadata, "{at}: metadata");
        }
    }
    let retried = append(store, stream, ExpectedVersion::NoStream, batch).await;
    assert!(
        retried.already_stored && retried.position == original.position,
        "re-appending the same events to `{stream}` must be an idempotent retry, got {retried:?}"
    );
}

/// Metadata comes back equal: empty, partial, or full with nested, unicode and extreme JSON
/// values among the free keys.
pub async fn metadata_round_trips<S: StoreUnderTest>(store: S) {
    let full = Metadata::new()
        .with_correlation_id(Uuid::now_v7())
        .with_causation_id(Uuid::now_v7())
        .with_actor("José Müller 🚀")
        .with("attempt", 3)
        .with("largest", u64::MAX)
        .with("negative", -42)
        .with("ratio", 0.1)
        .with("nothing", serde_json::Value::Null)
        .with("ключ", "значение")
        .with("empty", json!({}))
        .with(
            "nested",
            json!({"tags": ["hot", "web"], "deep": {"a": [1, {"b": null}], "t": true}}),
        );
    let batch = vec![
        NewEvent::raw("Noted", 1, "{}"),
        NewEvent::raw("Noted", 1, "{}").with_metadata(Metadata::new().with_actor("ada")),
        NewEvent::raw("Noted", 1, "{}").with_metadata(full),
        NewEvent::raw("Noted", 1, "{}")
            .with_metadata(Metadata::new().with_correlation_id(Uuid::nil())),
    ];
    round_trip(&store, &sample::stream("note-1"), batch).await;
    let recorded = read(&store, &sample::stream("note-1"), ReadStream::forward()).await;
    assert!(
        recorded[0].metadata.is_empty(),
        "empty metadata: {:?}",
        recorded[0].metadata
    );
    let nested = recorded[2]
        .metadata
        .get("nested")
        .and_then(|n| n.pointer("/deep/a/1/b"));
    assert_eq!(nested, Some(&serde_json::Value::Null), "a nested null");
}

/// Payloads come back as the exact text appended: key order, whitespace, number spelling and
/// escapes are kept (a store must not normalise JSON, or retries stop being idempotent), and a
/// payload may be any JSON value, such as the `null` of a unit struct.
pub async fn payloads_round_trip_byte_for_byte<S: StoreUnderTest>(store: S) {
    let payloads = [
        r#"{"b":1,"a":2}"#,
        "{ \"spaced\" :  [1, 2 ,3] ,\n\t\"x\": {} }\n",
        r#"{"n":1.0,"e":1E2,"big":123456789012345678901234567890,"neg":-0}"#,
        r#"{"escaped":"caf\u00e9 \ud83d\ude80","raw":"café 🚀","slash":"a\/b"}"#,
        r#"{"quote":"\"","backslash":"\\","newline":"a\nb","tab":"\t"}"#,
        "null",
        r#""a bare string""#,
        "[1,[2,[3]]]",
        "{}",
    ];
    let batch = payloads
        .iter()
        .map(|p| NewEvent::raw("Exact", 1, *p))
        .collect();
    round_trip(&store, &sample::stream("payload-1"), batch).await;
}

/// Stream ids, event types and payloads in any script round-trip, and differently normalised
/// spellings of one name are different streams.
pub async fn unicode_stream_ids_and_payloads_round_trip<S: StoreUnderTest>(store: S) {
    let names = [
        "заказ-42",
        "注文-七/三",
        "émoji-🚀/ünïcode",
        "مرحبا-١",
        "caf\u{e9}-1",
        "cafe\u{301}-1",
    ];
    for name in names {
        let payload = format!(r#"{{"stream":"{name}","text":"Grüße, 世界 🚀 😀"}}"#);
        let batch = vec![NewEvent::raw("заказ.создан", 1, payload)];
        round_trip(&store, &sample::stream(name), batch).await;
    }
    let log = whole_log(&store).await;
    assert_eq!(log.len(), names.len(), "one event per stream: {log:#?}");
    let streams: Vec<&str> = log.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, names, "the streams, in append order");
    let orders = ReadAll::after(GlobalPosition::START).categories(["заказ"]);
    let found = sample::read_all(&store, orders).await;
    assert_eq!(
        sample::summary(&found),
        [sample::row("заказ-42", 1, "заказ.создан")],
        "заказ"
    );
    let composed = ReadAll::after(GlobalPosition::START).categories(["caf\u{e9}"]);
    let found = sample::read_all(&store, composed).await;
    assert_eq!(
        sample::ids(&found),
        [log[4].event_id],
        "category `café` (composed é)"
    );
}

/// Stream ids of `StreamId::MAX_LEN` bytes, in ASCII and in two-byte characters, are stored,
/// read, filtered and snapshotted under their full name.
pub async fn the_longest_stream_id_round_trips<S: StoreUnderTest>(store: S) {
    let ascii = format!("long-{}", "x".repeat(StreamId::MAX_LEN - 5));
    let wide = format!("long-{}x", "ü".repeat((StreamId::MAX_LEN - 6) / 2));
    for name in [&ascii, &wide] {
        assert_eq!(
            name.len(),
            StreamId::MAX_LEN,
            "the suite's own stream id length"
        );
        let s = sample::stream(name);
        round_trip(&store, &s, sample::events("Noted", 2)).await;
        let snapshot = Snapshot {
            stream: s.clone(),
            version: StreamVersion(2),
            state_version: 1,
            payload: "{}".into(),
            taken_at: Timestamp::from_micros(1_700_000_000_000_000),
        };
        store
            .save_snapshot(snapshot.clone())
            .await
            .expect("save_snapshot");
        let loaded = store.load_snapshot(&s).await.expect("load_snapshot");
        assert_eq!(
            loaded,
            Some(snapshot),
            "the snapshot of a {}-byte stream id",
            name.len()
        );
    }
    let long = ReadAll::after(GlobalPosition::START).categories(["long"]);
    assert_eq!(
        sample::read_all(&store, long).await.len(),
        4,
        "category `long`"
    );
}

/// A payload of 1 MiB (and a snapshot as large) is stored and read back whole.
pub async fn a_one_mebibyte_payload_round_trips<S: StoreUnderTest>(store: S) {
    const MIB: usize = 1 << 20;
    let filler: String = "0123456789abcdef—ü🚀".chars().cycle().take(MIB).collect();
    let payload = format!(r#"{{"blob":"{filler}"}}"#);
    assert!(payload.len() > MIB, "the suite's own payload size");
    let s = sample::stream("blob-1");
    let batch = vec![
        NewEvent::raw("Stored", 1, payload.clone()),
        NewEvent::raw("Stored", 1, r#"{"small":true}"#),
    ];
    round_trip(&store, &s, batch).await;
    let snapshot = Snapshot {
        stream: s.clone(),
        version: StreamVersion(2),
        state_version: 1,
        payload,
        taken_at: Timestamp::from_micros(1_700_000_000_000_000),
    };
    store
        .save_snapshot(snapshot.clone())
        .await
        .expect("save_snapshot");
    let loaded = store.load_snapshot(&s).await.expect("load_snapshot");
    let loaded = loaded.expect("a 1 MiB snapshot was saved, but none loads");
    expect::same_text(
        &loaded.payload,
        &snapshot.payload,
        "the 1 MiB snapshot's payload",
    );
    let without_payload = |s: Snapshot| Snapshot {
        payload: String::new(),
        ..s
    };
    assert_eq!(
        without_payload(loaded),
        without_payload(snapshot),
        "the 1 MiB snapshot"
    );
}

/// Numeric fields keep their whole range and precision: schema and state versions up to
/// `u32::MAX`, positions and versions beyond 2^53 (the limit of a float), timestamps before 1970
/// and in year 9999, to the microsecond.
pub async fn numeric_fields_keep_their_full_range<S: StoreUnderTest>(store: S) {
    let batch = vec![
        NewEvent::raw("Versioned", u32::MAX, "{}"),
        NewEvent::raw("Versioned", 0, "{}"),
        NewEvent::raw("Versioned", i32::MAX as u32 + 1, "{}"),
    ];
    round_trip(&store, &sample::stream("numbers-1"), batch).await;

    let beyond_float = (1 << 53) + 1;
    let times = [
        Timestamp::from_micros(-1),
        Timestamp::from_micros(1_700_000_000_123_457),
        Timestamp::from_micros(253_402_300_799_999_999),
    ];
    for (i, taken_at) in times.into_iter().enumerate() {
        let s = sample::stream(&format!("numbers-{}", i + 2));
        let snapshot = Snapshot {
            stream: s.clone(),
            version: StreamVersion(beyond_float),
            state_version: u32::MAX - i as u32,
            payload: "{}".into(),
            taken_at,
        };
        store
            .save_snapshot(snapshot.clone())
            .await
            .expect("save_snapshot");
        let loaded = store.load_snapshot(&s).await.expect("load_snapshot");
        assert_eq!(loaded, Some(snapshot), "a snapshot taken at {taken_at}");
    }
    for position in [
        GlobalPosition::new(beyond_float, beyond_float + 2),
        GlobalPosition::new((1 << 62) + 1, (1 << 62) + 3),
    ] {
        store
            .save_checkpoint("numbers", position)
            .await
            .expect("save_checkpoint");
        let loaded = store
            .load_checkpoint("numbers")
            .await
            .expect("load_checkpoint");
        assert_eq!(loaded, Some(position), "a checkpoint at {position}");
    }
}
