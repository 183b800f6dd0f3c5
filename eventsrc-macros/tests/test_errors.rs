//! Stored records the code cannot read: an unknown name, a version newer than the code, JSON
//! that is broken or does not fit, an upcast that refuses. Each is a typed error naming the
//! event id, the stream, the event name and the version; never a panic, never a skip.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use eventsrc::{
    Aggregate, DecodeError, Event, EventStore, ExpectedVersion, LoadError, MemoryStore, NewEvent,
    RecordDecodeError, RecordedEvent, Repository, aggregate,
};

use eventsrc::store::ReadStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "meter.read")]
pub struct Read {
    pub kwh: u64,
}

fn kwh_from_wh(mut value: Value) -> Result<Value, String> {
    let wh = value["wh"]
        .as_u64()
        .ok_or_else(|| format!("`wh` is not a count: {}", value["wh"]))?;
    value["kwh"] = (wh / 1000).into();
    Ok(value)
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "meter.reset", version = 2, upcast_json = kwh_from_wh)]
pub struct Reset {
    pub kwh: u64,
}

#[derive(Default, Debug)]
pub struct Meter {
    kwh: u64,
}

#[aggregate(id = String)]
impl Meter {
    fn on_read(&mut self, event: &Read) {
        self.kwh += event.kwh;
    }
    fn on_reset(&mut self, event: &Reset) {
        self.kwh = event.kwh;
    }
}

/// A meter stream holding one good reading, then `bad`, then another good reading.
async fn stream_with(meter: &str, bad: NewEvent) -> (Repository<MemoryStore>, RecordedEvent) {
    let store = MemoryStore::new();
    let stream = Meter::stream_id(&meter.to_owned()).unwrap();
    let good = |kwh: u64| NewEvent::from_event(&Read { kwh }, Default::default()).unwrap();
    let bad_id = bad.event_id;
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![good(5), bad, good(7)],
        )
        .await
        .unwrap();
    let records = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    let bad = records.into_iter().find(|r| r.event_id == bad_id).unwrap();
    (Repository::new(store), bad)
}

/// Loads the meter, expecting the decode error of `bad`, and checks that the record decoded on
/// its own gives the same error.
async fn load_error(meter: &str, bad: NewEvent) -> (RecordDecodeError, RecordedEvent) {
    let (repository, record) = stream_with(meter, bad).await;
    let error = match repository.load::<Meter>(&meter.to_owned()).await {
        Err(LoadError::Decode(error)) => error,
        other => panic!("expected a decode error, got {other:?}"),
    };
    assert_eq!(error.event_id, record.event_id);
    assert_eq!(error.stream, record.stream);
    assert_eq!(error.stream_version.get(), 2);
    assert_eq!(error.global_position, record.global_position);
    let direct = record.decode::<MeterEvent>().unwrap_err();
    assert_eq!(direct.to_string(), error.to_string());
    (error, record)
}

/// The message names the record (id, stream) and the stored event (name, schema version).
fn assert_names_everything(
    error: &RecordDecodeError,
    record: &RecordedEvent,
    name: &str,
    version: &str,
) {
    let message = error.to_string();
    for part in [
        record.event_id.to_string().as_str(),
        &format!("`{}`", record.stream),
        &format!("`{name}`"),
        version,
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[tokio::test]
async fn an_unknown_name() {
    let (error, record) = load_error("m-unknown", NewEvent::raw("meter.replaced", 3, "{}")).await;
    match &error.source {
        DecodeError::UnknownType {
            event_type,
            version,
        } => assert_eq!((event_type.as_str(), *version), ("meter.replaced", 3)),
        other => panic!("expected an unknown type, got {other:?}"),
    }
    assert_names_everything(&error, &record, "meter.replaced", "schema version 3");
}

#[tokio::test]
async fn a_version_newer_than_the_code() {
    let bad = NewEvent::raw("meter.reset", 9, r#"{"kwh":1,"unit":"MWh"}"#);
    let (error, record) = load_error("m-future", bad).await;
    match &error.source {
        DecodeError::FutureVersion {
            event_type,
            version,
            current,
        } => assert_eq!(
            (event_type.as_str(), *version, *current),
            ("meter.reset", 9, 2)
        ),
        other => panic!("expected a future version, got {other:?}"),
    }
    assert_names_everything(&error, &record, "meter.reset", "schema version 9");
    assert!(
        error
            .to_string()
            .contains("newer than this code's version 2"),
        "{error}"
    );
}

#[tokio::test]
async fn json_that_is_not_json() {
    let (error, record) =
        load_error("m-broken", NewEvent::raw("meter.read", 1, r#"{"kwh": 5"#)).await;
    match &error.source {
        DecodeError::Malformed {
            event_type,
            version,
            ..
        } => assert_eq!((event_type.as_str(), *version), ("meter.read", 1)),
        other => panic!("expected a malformed payload, got {other:?}"),
    }
    assert_names_everything(
        &error,
        &record,
        "meter.read",
        "`meter.read` schema version 1",
    );
}

#[tokio::test]
async fn json_that_does_not_fit_the_type() {
    let bad = NewEvent::raw("meter.read", 1, r#"{"kwh":-5}"#);
    let (error, record) = load_error("m-shape", bad).await;
    assert!(
        matches!(error.source, DecodeError::Malformed { version: 1, .. }),
        "{error:?}"
    );
    assert_names_everything(
        &error,
        &record,
        "meter.read",
        "`meter.read` schema version 1",
    );
    // serde's reason is kept as the source.
    let reason = std::error::Error::source(&error.source)
        .unwrap()
        .to_string();
    assert!(reason.contains("-5"), "{reason}");
}

#[tokio::test]
async fn an_old_payload_an_upcast_step_refuses() {
    let bad = NewEvent::raw("meter.reset", 1, r#"{"wh":"lots"}"#);
    let (error, record) = load_error("m-upcast", bad).await;
    match &error.source {
        DecodeError::Upcast {
            event_type,
            version,
            reason,
        } => {
            assert_eq!((event_type.as_str(), *version), ("meter.reset", 1));
            assert!(reason.contains("`wh` is not a count"), "{reason}");
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
    assert_names_everything(&error, &record, "meter.reset", "from schema version 1");
}

#[tokio::test]
async fn the_same_records_decode_once_the_code_knows_them() {
    // A control: with a readable record in the same place, the stream loads.
    let good = NewEvent::raw("meter.reset", 1, r#"{"wh":3000}"#);
    let (repository, _) = stream_with("m-fine", good).await;
    let loaded = repository
        .load::<Meter>(&"m-fine".to_owned())
        .await
        .unwrap();
    assert_eq!((loaded.version.get(), loaded.state.kwh), (3, 10));
}
