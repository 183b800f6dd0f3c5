//! Crypto-shredding on a backend (feature `encryption`): the cases every store must pass once
//! wrapped in [`Encrypted`] with its key store, stamped by
//! [`personal_conformance!`](crate::personal_conformance).
//!
//! Each case takes a fresh `Encrypted` store (empty for its tenant, with a key store of its
//! own or one shared by other tests: subjects here are unique per case run) and checks what
//! forgetting promises: the forgotten fields read as `null` on every read path while the rest
//! of each event and every other subject's data stays readable, aggregates fold, snapshots
//! keep no plaintext, a retried sealed batch stays idempotent, and a sealed field that was
//! changed or moved is a typed error naming its event.

use eventsrc_core::backend::{ParkedEvent, ParkedStore};
use eventsrc_core::personal::{Encrypted, KeyStore};
use eventsrc_core::store::{ReadAll, ReadStream, Snapshot, StreamAppend};
use eventsrc_core::{
    EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent, Repository,
    SnapshotStore, StoreError, StreamId, StreamVersion, Tenant, Tenants, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::sample;

/// What a store must implement to run these cases, wrapped in [`Encrypted`].
pub trait PersonalUnderTest:
    EventStore + Tenants + SnapshotStore + ParkedStore + Clone + 'static
{
}

impl<S> PersonalUnderTest for S where
    S: EventStore + Tenants + SnapshotStore + ParkedStore + Clone + 'static
{
}

/// A patient registered: the name and e-mail are personal, the ward is not.
#[derive(eventsrc_macros::Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(crate = eventsrc_core, name = "conformance.patient_admitted")]
pub struct PatientAdmitted {
    /// The data subject.
    #[event(subject)]
    pub patient: String,
    /// Personal.
    #[event(personal)]
    pub name: Option<String>,
    /// Personal, stored under another key.
    #[event(personal)]
    #[serde(rename = "mail")]
    pub email: Option<String>,
    /// Not personal.
    pub ward: String,
}

/// The ward's state, folded from admissions: who is in it and how many came.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Ward {
    /// The names of the admitted, `None` for a forgotten one.
    pub names: Vec<Option<String>>,
    /// How many were admitted.
    pub admitted: u32,
}

#[eventsrc_macros::aggregate(crate = eventsrc_core, id = String, name = "conformance_ward", snapshot = 1)]
impl Ward {
    fn on_admitted(&mut self, e: &PatientAdmitted) {
        self.names.push(e.name.clone());
        self.admitted += 1;
    }
}

/// Unique subject ids: cases may share a key store across runs.
fn subject(label: &str) -> String {
    format!("{label}-{}", EventId::new())
}

fn admitted(patient: &str, name: &str, ward: &str) -> NewEvent {
    let event = PatientAdmitted {
        patient: patient.to_owned(),
        name: Some(name.to_owned()),
        email: Some(format!("{name}@example.com").replace(' ', ".")),
        ward: ward.to_owned(),
    };
    NewEvent::from_event(&event, Metadata::new()).expect("encodes")
}

/// A fresh ward's stream.
fn fresh_ward() -> StreamId {
    StreamId::new("conformance_ward", EventId::new().to_string()).unwrap()
}

/// `patient` admitted as Ada Lovelace to the north ward, the first event of `ward`.
async fn admit_ada<S: EventStore>(store: &S, ward: &StreamId, patient: &str) {
    sample::append(
        store,
        ward,
        ExpectedVersion::NoStream,
        vec![admitted(patient, "Ada Lovelace", "north")],
    )
    .await;
}

/// `ward` read through `store` and decoded.
async fn read_open<S: EventStore>(store: &S, ward: &StreamId) -> Vec<PatientAdmitted> {
    decode_all(&sample::read(store, ward, ReadStream::forward()).await)
}

fn decode_all(records: &[eventsrc_core::RecordedEvent]) -> Vec<PatientAdmitted> {
    records
        .iter()
        .map(|r| {
            r.decode::<PatientAdmitted>()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

/// The raw payloads of `stream`, as the store inside keeps them.
async fn raw_payloads<S: EventStore>(store: &S, stream: &StreamId) -> String {
    store
        .read_stream(stream, ReadStream::forward())
        .await
        .unwrap()
        .iter()
        .map(|r| r.payload.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Forgetting one subject: its personal fields read as `null` through `read_stream`,
/// `read_all` and `read_events`, the rest of its events as they were, and another subject's
/// data stays readable; the store inside never held either's plaintext.
pub async fn a_forgotten_subject_reads_as_null_on_every_read_path<S, K>(store: Encrypted<S, K>)
where
    S: PersonalUnderTest,
    K: KeyStore + ?Sized + 'static,
{
    let (ada, bob) = (subject("ada"), subject("bob"));
    let ward = fresh_ward();
    let events = vec![
        admitted(&ada, "Ada Lovelace", "north"),
        admitted(&bob, "Bob Babbage", "north"),
    ];
    let ids: Vec<EventId> = events.iter().map(|e| e.event_id).collect();
    store
        .append(&ward, ExpectedVersion::NoStream, events)
        .await
        .unwrap();

    let raw = raw_payloads(store.inner(), &ward).await;
    for plaintext in ["Ada Lovelace", "Bob Babbage", "example.com"] {
        assert!(
            !raw.contains(plaintext),
            "the store inside holds `{plaintext}`: {raw}"
        );
    }
    let read = read_open(&store, &ward).await;
    assert_eq!(read[0].name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(read[1].email.as_deref(), Some("Bob.Babbage@example.com"));

    assert!(store.forget(&ada).await.unwrap(), "ada had a key");
    assert!(!store.forget(&ada).await.unwrap(), "ada's key is gone");

    let expect = |read: Vec<PatientAdmitted>, path: &str| {
        assert_eq!(read.len(), 2, "{path}");
        let (a, b) = (&read[0], &read[1]);
        assert_eq!(
            (
                a.name.as_deref(),
                a.email.as_deref(),
                a.ward.as_str(),
                a.patient.as_str()
            ),
            (None, None, "north", ada.as_str()),
            "{path}: ada's personal fields read as null, the rest as it was"
        );
        assert_eq!(
            (b.name.as_deref(), b.ward.as_str()),
            (Some("Bob Babbage"), "north"),
            "{path}: bob is not forgotten"
        );
    };
    let by_stream = store
        .read_stream(&ward, ReadStream::forward())
        .await
        .unwrap();
    expect(decode_all(&by_stream), "read_stream");
    let log = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    let log: Vec<_> = log.into_iter().filter(|r| r.stream == ward).collect();
    expect(decode_all(&log), "read_all");
    expect(
        decode_all(&store.read_events(&ids).await.unwrap()),
        "read_events",
    );
    let mut visited = Vec::new();
    store
        .visit_stream(&ward, ReadStream::forward(), |event| {
            visited.push(event.decode::<PatientAdmitted>().unwrap());
            Ok::<(), StoreError>(())
        })
        .await
        .unwrap();
    expect(visited, "visit_stream");

    // A new event for the forgotten subject gets a new key; the old fields stay forgotten.
    store
        .append(
            &ward,
            ExpectedVersion::Any,
            vec![admitted(&ada, "Ada Again", "south")],
        )
        .await
        .unwrap();
    let read = read_open(&store, &ward).await;
    assert_eq!(read[0].name, None, "sealed under the forgotten key");
    assert_eq!(
        read[2].name.as_deref(),
        Some("Ada Again"),
        "sealed under the new key"
    );
}

/// An aggregate whose events hold a forgotten subject's fields still loads and folds, with
/// those fields `None`; its sealed snapshot keeps no plaintext and reads as absent once the
/// subject is forgotten.
pub async fn an_aggregate_folds_after_forget_and_its_snapshot_is_gone<S, K>(store: Encrypted<S, K>)
where
    S: PersonalUnderTest,
    K: KeyStore + ?Sized + 'static,
{
    let (ada, bob) = (subject("ada"), subject("bob"));
    let id = EventId::new().to_string();
    let ward = StreamId::new("conformance_ward", &id).unwrap();
    store
        .append(
            &ward,
            ExpectedVersion::NoStream,
            vec![
                admitted(&ada, "Ada Lovelace", "north"),
                admitted(&bob, "Bob Babbage", "north"),
            ],
        )
        .await
        .unwrap();
    let repository = Repository::new(store.clone()).with_snapshots(store.clone());
    let saved = repository.snapshot::<Ward>(&id).await.unwrap();
    assert_eq!(saved, Some(StreamVersion(2)));
    let raw = store
        .inner()
        .load_snapshot(&ward)
        .await
        .unwrap()
        .expect("saved");
    assert!(
        !raw.payload.contains("Ada Lovelace") && !raw.payload.contains("Bob Babbage"),
        "the stored snapshot holds plaintext: {}",
        raw.payload
    );
    let opened = store.load_snapshot(&ward).await.unwrap().expect("opens");
    assert!(
        opened.payload.contains("Ada Lovelace"),
        "{}",
        opened.payload
    );
    let before = repository.load::<Ward>(&id).await.unwrap();
    assert_eq!(
        before.state.names,
        [
            Some("Ada Lovelace".to_owned()),
            Some("Bob Babbage".to_owned())
        ]
    );

    store.forget(&ada).await.unwrap();
    assert_eq!(
        store.load_snapshot(&ward).await.unwrap(),
        None,
        "a snapshot sealed under a forgotten subject's key reads as absent"
    );
    let after = repository.load::<Ward>(&id).await.unwrap();
    assert_eq!(after.version, StreamVersion(2));
    assert_eq!(
        after.state,
        Ward {
            names: vec![None, Some("Bob Babbage".to_owned())],
            admitted: 2
        },
        "the aggregate folds every event, the forgotten name as None"
    );
    // No snapshot is taken while a subject of the stream is forgotten.
    repository.snapshot::<Ward>(&id).await.unwrap();
    assert_eq!(store.load_snapshot(&ward).await.unwrap(), None);

    // A stream without personal fields snapshots in the clear, as before.
    let plain = StreamId::new("conformance_plain", EventId::new().to_string()).unwrap();
    let snapshot = Snapshot {
        stream: plain.clone(),
        version: StreamVersion(1),
        state_version: 1,
        payload: r#"{"n":1}"#.to_owned(),
        taken_at: Timestamp::from_micros(1),
    };
    store
        .append(
            &plain,
            ExpectedVersion::NoStream,
            vec![NewEvent::raw("Noted", 1, "{}")],
        )
        .await
        .unwrap();
    store.save_snapshot(snapshot.clone()).await.unwrap();
    assert_eq!(
        store.inner().load_snapshot(&plain).await.unwrap(),
        Some(snapshot)
    );
}

/// Appending a sealed batch again (a retry) is idempotent, as on the store inside, though
/// sealing picked new nonces; the same ids with other content are still refused.
pub async fn a_retried_sealed_batch_is_idempotent<S, K>(store: Encrypted<S, K>)
where
    S: PersonalUnderTest,
    K: KeyStore + ?Sized + 'static,
{
    let ada = subject("ada");
    let ward = fresh_ward();
    let batch = vec![
        admitted(&ada, "Ada Lovelace", "north"),
        NewEvent::raw("Noted", 1, "{}"),
    ];
    let first = store
        .append(&ward, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let again = store
        .append(&ward, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert!(
        again.already_stored,
        "a retry is answered as stored: {again:?}"
    );
    assert_eq!(
        (again.first_version, again.stream_version, again.position),
        (first.first_version, first.stream_version, first.position)
    );
    let mut other = batch;
    other[0] = admitted(&ada, "Someone Else", "north").with_id(other[0].event_id);
    let refused = store.append(&ward, ExpectedVersion::Any, other).await;
    assert!(
        matches!(refused, Err(StoreError::DuplicateEventId { .. })),
        "{refused:?}"
    );

    // Across streams: every part with events answered with its original result.
    let (north, south) = (fresh_ward(), fresh_ward());
    let parts = vec![
        StreamAppend::new(
            north.clone(),
            ExpectedVersion::NoStream,
            vec![admitted(&ada, "Ada Lovelace", "north")],
        ),
        StreamAppend::new(
            south.clone(),
            ExpectedVersion::NoStream,
            vec![admitted(&ada, "Ada Lovelace", "south")],
        ),
    ];
    let first = store.append_streams(parts.clone()).await.unwrap();
    let again = store.append_streams(parts).await.unwrap();
    assert_eq!(again.len(), 2);
    for (first, again) in first.iter().zip(&again) {
        assert!(again.already_stored, "{again:?}");
        assert_eq!(
            (again.stream_version, again.position),
            (first.stream_version, first.position)
        );
    }
    assert_eq!(
        store.stream_version(&south).await.unwrap(),
        StreamVersion(1)
    );

    // A part without personal fields beside a sealed one: compared as it is, the retry is
    // idempotent too.
    let (sealed, plain) = (fresh_ward(), fresh_ward());
    let parts = vec![
        StreamAppend::new(
            sealed,
            ExpectedVersion::NoStream,
            vec![admitted(&ada, "Ada Lovelace", "north")],
        ),
        StreamAppend::new(
            plain.clone(),
            ExpectedVersion::NoStream,
            vec![NewEvent::raw("Noted", 1, "{}")],
        ),
    ];
    let first = store.append_streams(parts.clone()).await.unwrap();
    let again = store.append_streams(parts).await;
    let again = again.unwrap_or_else(|e| panic!("a mixed retry must be idempotent: {e:?}"));
    for (first, again) in first.iter().zip(&again) {
        assert!(again.already_stored, "{again:?}");
        assert_eq!(
            (again.stream_version, again.position),
            (first.stream_version, first.position)
        );
    }
    assert_eq!(sample::version(&store, &plain).await, StreamVersion(1));
}

/// A sealed field that was changed, or moved to another stream, is `StoreError::Corrupt`
/// naming the stream, version and event: never a panic, never a silent `null`.
pub async fn a_tampered_sealed_field_is_a_corrupt_error_naming_the_event<S, K>(
    store: Encrypted<S, K>,
) where
    S: PersonalUnderTest,
    K: KeyStore + ?Sized + 'static,
{
    let ada = subject("ada");
    let ward = fresh_ward();
    admit_ada(&store, &ward, &ada).await;
    let sealed = raw_payloads(store.inner(), &ward).await;

    // The same sealed payload written raw into another stream: its associated data differs.
    let moved = fresh_ward();
    let copy = NewEvent::raw("conformance.patient_admitted", 1, sealed.clone());
    let copy_id = copy.event_id;
    store
        .inner()
        .append(&moved, ExpectedVersion::NoStream, vec![copy])
        .await
        .unwrap();
    let read = store.read_stream(&moved, ReadStream::forward()).await;
    match read {
        Err(StoreError::Corrupt {
            stream,
            version,
            reason,
            ..
        }) => {
            assert_eq!(stream.as_ref(), Some(&moved));
            assert_eq!(version, Some(StreamVersion(1)));
            assert!(
                reason.contains(&copy_id.to_string()),
                "names the event: {reason}"
            );
        }
        other => panic!("a moved sealed field must be Corrupt, got {other:?}"),
    }

    // A changed ciphertext: one base64 character of the name's envelope replaced.
    let mut payload: serde_json::Value = serde_json::from_str(&sealed).unwrap();
    let text = payload["name"]["$personal"].as_str().unwrap().to_owned();
    let middle = text.len() / 2;
    let swapped = if &text[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    payload["name"]["$personal"] =
        format!("{}{swapped}{}", &text[..middle], &text[middle + 1..]).into();
    // Written raw into the original stream, where its associated data holds: only the
    // changed byte can fail it.
    store
        .inner()
        .append(
            &ward,
            ExpectedVersion::Any,
            vec![NewEvent::raw(
                "conformance.patient_admitted",
                1,
                payload.to_string(),
            )],
        )
        .await
        .unwrap();
    let read = store.read_stream(&ward, ReadStream::forward()).await;
    assert!(
        matches!(
            read,
            Err(StoreError::Corrupt {
                version: Some(StreamVersion(2)),
                ..
            })
        ),
        "a changed ciphertext must be Corrupt at version 2, got {read:?}"
    );
    // The untouched event still reads.
    let first = store
        .read_stream(&ward, ReadStream::forward().limit(1))
        .await
        .unwrap();
    assert_eq!(decode_all(&first)[0].name.as_deref(), Some("Ada Lovelace"));
}

/// A parked event is sealed again before it is stored, reads open, and reads as `null` once
/// its subject is forgotten.
pub async fn a_parked_event_stays_sealed<S, K>(store: Encrypted<S, K>)
where
    S: PersonalUnderTest,
    K: KeyStore + ?Sized + 'static,
{
    let ada = subject("ada");
    let ward = fresh_ward();
    admit_ada(&store, &ward, &ada).await;
    let event = store
        .read_stream(&ward, ReadStream::forward())
        .await
        .unwrap()
        .remove(0);
    let reactor = format!("mailer-{}", EventId::new());
    store
        .park(ParkedEvent {
            reactor: reactor.clone(),
            event,
            error: "smtp down".to_owned(),
            attempts: 3,
            parked_at: Timestamp::from_micros(1),
        })
        .await
        .unwrap();
    let raw = store.inner().parked(&reactor).await.unwrap();
    assert!(
        !raw[0].event.payload.contains("Ada Lovelace"),
        "parked in the clear: {}",
        raw[0].event.payload
    );
    let parked = store.parked(&reactor).await.unwrap();
    let decoded = parked[0].event.decode::<PatientAdmitted>().unwrap();
    assert_eq!(decoded.name.as_deref(), Some("Ada Lovelace"));
    store.forget(&ada).await.unwrap();
    let parked = store.parked(&reactor).await.unwrap();
    let decoded = parked[0].event.decode::<PatientAdmitted>().unwrap();
    assert_eq!((decoded.name, decoded.ward.as_str()), (None, "north"));
}

/// Keys are per tenant: forgetting a subject in one tenant leaves the same subject id of
/// another tenant readable.
pub async fn forgetting_is_per_tenant<S, K>(store: Encrypted<S, K>)
where
    S: PersonalUnderTest,
    K: KeyStore + ?Sized + 'static,
{
    let ada = subject("ada");
    let other = store.with_tenant(Tenant::new(format!("personal-{}", EventId::new())));
    let ward = fresh_ward();
    for handle in [&store, &other] {
        admit_ada(handle, &ward, &ada).await;
    }
    store.forget(&ada).await.unwrap();
    let here = read_open(&store, &ward).await;
    let there = read_open(&other, &ward).await;
    assert_eq!(here[0].name, None);
    assert_eq!(there[0].name.as_deref(), Some("Ada Lovelace"));
}

/// The cases, for the macro.
#[doc(hidden)]
#[macro_export]
macro_rules! __personal_cases {
    ($callback:ident [$($context:tt)*]) => {
        $crate::$callback! {
            [$($context)*]
            a_forgotten_subject_reads_as_null_on_every_read_path,
            an_aggregate_folds_after_forget_and_its_snapshot_is_gone,
            a_retried_sealed_batch_is_idempotent,
            a_tampered_sealed_field_is_a_corrupt_error_naming_the_event,
            a_parked_event_stays_sealed,
            forgetting_is_per_tenant,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __personal_tests {
    ([$factory:expr, $skip_if:expr, $teardown:expr] $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if $crate::conformance::skips_if(stringify!($case), $skip_if) {
                    return;
                }
                let store = ($factory)().await;
                let kept = ::std::clone::Clone::clone(&store);
                $crate::conformance::personal::$case(store).await;
                ($teardown)(kept).await;
            }
        )*
    };
}

/// Runs the crypto-shredding cases against a store wrapped in
/// [`Encrypted`](eventsrc_core::personal::Encrypted): one `#[tokio::test]` per case, inside a
/// `mod personal_conformance`.
///
/// `factory` gives a fresh wrapped store (empty for its tenant) per call. Optional, in this
/// order: `skip_if`, asked with each case's name, and `teardown`, given a clone of the store
/// after a case passed (a failed case leaves its data to look at).
///
/// ```text
/// eventsrc_testing::personal_conformance!(|| async {
///     Encrypted::new(MemoryStore::new(), MemoryKeyStore::new())
/// });
/// ```
#[macro_export]
macro_rules! personal_conformance {
    ($factory:expr $(,)?) => {
        $crate::personal_conformance!($factory, skip_if = |_: &str| false);
    };
    ($factory:expr, skip_if = $skip_if:expr $(,)?) => {
        $crate::personal_conformance!($factory, skip_if = $skip_if, teardown = |_| async {});
    };
    ($factory:expr, skip_if = $skip_if:expr, teardown = $teardown:expr $(,)?) => {
        /// The eventsrc crypto-shredding conformance cases: one test per case.
        mod personal_conformance {
            #[allow(unused_imports)]
            use super::*;

            $crate::__personal_cases!(__personal_tests [$factory, $skip_if, $teardown]);
        }
    };
}
