//! Specs for the sales-leads CRM: given events, when a command, then events, a no-op, an error or a
//! validation failure (with `eventsrc-testing`'s `AggregateFixture`, which also checks that every
//! event round-trips and that the state rebuilt from the events equals the deciding state); the
//! stored form of each event; the conflict rule; Stefan Ivanov's story through a repository, on
//! memory and on SQLite; and the demo, continuing its history run after run on a SQLite file and on
//! PostgreSQL (`EVENTSRC_POSTGRES_URL`; without it that test prints `EVENTSRC-POSTGRES-SKIPPED` and
//! passes).

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;

use eventsrc::{
    Aggregate, Command, DecodeError, Event, EventStore, EventType, ExecuteError, ExpectedVersion,
    FieldError, MemoryStore, Metadata, NewEvent, RecordedEvent, Repository, StreamVersion,
};

use eventsrc::Store;
use eventsrc::store::ReadStream;
use eventsrc_examples::leads::story::{self, COMMAND_KEY, LILYANA, RUN_KEY, STEFAN};
use eventsrc_examples::leads::{
    ChangeContactInformation, ChangeName, ChangeStatus, ContactInformationChanged, Date,
    FollowupSet, InitializeLead, Lead, LeadError, LeadEvent, LeadId, LeadStatus,
    LeadWasInitialized, NameChanged, SetFollowup, StatusChanged,
};
use eventsrc_examples::race::RacingStore;
use eventsrc_sqlite::{SqliteEventStore, SqliteOptions};
use eventsrc_testing::{AggregateFixture, assert_round_trip, assert_upcasts};

const ID: LeadId = LeadId(1410);

// --- events and commands, by name ----------------------------------------------------------------

/// A spec for lead 1410, which does not exist until given events or initialized.
fn lead() -> AggregateFixture<Lead> {
    AggregateFixture::new()
}

fn initialized() -> Vec<LeadEvent> {
    vec![
        LeadWasInitialized { id: ID }.into(),
        status_changed(LeadStatus::Available),
    ]
}

fn status_changed(status: LeadStatus) -> LeadEvent {
    StatusChanged { status }.into()
}

fn named(name: &str) -> LeadEvent {
    NameChanged { name: name.into() }.into()
}

fn contact_changed(email: &str, phone: &str) -> LeadEvent {
    ContactInformationChanged {
        email: email.into(),
        phone: phone.into(),
    }
    .into()
}

fn followup_set(text: &str) -> LeadEvent {
    FollowupSet { date: date(text) }.into()
}

fn contact(email: &str, phone: &str) -> ChangeContactInformation {
    ChangeContactInformation {
        lead: ID,
        email: email.into(),
        phone: phone.into(),
    }
}

fn rename(name: &str) -> ChangeName {
    ChangeName {
        lead: ID,
        name: name.into(),
    }
}

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

fn followup_on(text: &str) -> SetFollowup {
    SetFollowup {
        lead: ID,
        on: date(text),
    }
}

fn to(status: LeadStatus) -> ChangeStatus {
    ChangeStatus { lead: ID, status }
}

// --- InitializeLead ----------------------------------------------------------------------------

#[test]
fn initializing_a_new_lead_makes_it_available() {
    lead()
        .given_nothing()
        .when(InitializeLead { id: ID })
        .then_events(initialized())
        .then_state(|lead| {
            assert_eq!(lead.id(), Some(ID));
            assert_eq!(lead.status(), LeadStatus::Available);
        });
}

#[test]
fn a_lead_cannot_be_initialized_twice() {
    lead()
        .given(initialized())
        .when(InitializeLead { id: ID })
        .then_error(LeadError::AlreadyInitialized(ID))
        .then_error_message("lead 1410 is already initialized");
}

#[test]
fn commands_before_initialization_are_rejected() {
    lead()
        .given_nothing()
        .when(rename("Stefan Ivanov"))
        .then_error(LeadError::NotInitialized)
        .when(contact("s.ivanov@example.com", "03-27243457"))
        .then_error(LeadError::NotInitialized)
        .when(to(LeadStatus::Closed))
        .then_error(LeadError::NotInitialized)
        .when(followup_on("2016-11-23"))
        .then_error(LeadError::NotInitialized)
        .then_state(|lead| assert_eq!(*lead, Lead::default()));
}

// --- ChangeName ---------------------------------------------------------------------------------

#[test]
fn renaming_records_the_trimmed_name() {
    lead()
        .given(initialized())
        .when(rename("  Stefan Ivanov "))
        .then_events([named("Stefan Ivanov")])
        .then_state(|lead| assert_eq!(lead.name(), "Stefan Ivanov"));
}

#[test]
fn the_same_name_again_is_a_noop() {
    lead()
        .given(initialized())
        .given([named("Stefan Ivanov")])
        .when(rename("Stefan Ivanov"))
        .then_no_events()
        .when(rename(" Stefan Ivanov"))
        .then_no_events();
}

#[test]
fn a_converted_lead_cannot_be_renamed() {
    lead()
        .given(initialized())
        .given([
            named("Stefan Ivanov"),
            status_changed(LeadStatus::Converted),
        ])
        .when(rename("Stefan Petrov"))
        .then_error(LeadError::Converted(ID))
        // Asking for what already holds is still a harmless no-op.
        .when(rename("Stefan Ivanov"))
        .then_no_events();
}

#[test]
fn a_closed_lead_must_be_reopened_before_editing() {
    lead()
        .given(initialized())
        .given([status_changed(LeadStatus::Closed)])
        .when(rename("Stefan"))
        .then_error(LeadError::Closed(ID))
        .when(contact("s@example.com", "03-1"))
        .then_error(LeadError::Closed(ID))
        .when(to(LeadStatus::Available))
        .then_events([status_changed(LeadStatus::Available)])
        .when(rename("Stefan"))
        .then_events([named("Stefan")]);
}

// --- ChangeContactInformation ------------------------------------------------------------------

#[test]
fn changing_contact_information_records_both_fields() {
    lead()
        .given(initialized())
        .when(contact("s.ivanov@example.com", "03-27243457"))
        .then_events([contact_changed("s.ivanov@example.com", "03-27243457")])
        .then_state(|lead| {
            assert_eq!(lead.email(), "s.ivanov@example.com");
            assert_eq!(lead.phone(), "03-27243457");
        });
}

#[test]
fn the_same_contact_information_again_is_a_noop() {
    lead()
        .given(initialized())
        .given([contact_changed("s.ivanov@example.com", "03-27243457")])
        .when(contact("s.ivanov@example.com", "03-27243457"))
        .then_no_events()
        .when(contact(" s.ivanov@example.com", "03-27243457 "))
        .then_no_events()
        // One field of the two changing is a change, and both are written.
        .when(contact("s.ivanov@example.com", "050-8139904"))
        .then_events([contact_changed("s.ivanov@example.com", "050-8139904")]);
}

// --- ChangeStatus and SetFollowup --------------------------------------------------------------

#[test]
fn a_followup_moves_the_lead_to_followup_and_sets_the_date() {
    lead()
        .given(initialized())
        .when(followup_on("2016-11-23"))
        .then_events([
            status_changed(LeadStatus::FollowUp),
            followup_set("2016-11-23"),
        ])
        .then_state(|lead| {
            assert_eq!(lead.status(), LeadStatus::FollowUp);
            assert_eq!(lead.followup_on(), Some(date("2016-11-23")));
        });
}

#[test]
fn moving_a_pending_followup_only_sets_the_new_date() {
    lead()
        .given(initialized())
        .given([
            status_changed(LeadStatus::FollowUp),
            followup_set("2016-11-23"),
        ])
        .when(followup_on("2016-11-23"))
        .then_no_events()
        .when(followup_on("2016-11-30"))
        .then_events([followup_set("2016-11-30")])
        .then_state(|lead| {
            assert_eq!(lead.status(), LeadStatus::FollowUp);
            assert_eq!(lead.followup_on(), Some(date("2016-11-30")));
        });
}

#[test]
fn leaving_followup_clears_the_date() {
    lead()
        .given(initialized())
        .given([
            status_changed(LeadStatus::FollowUp),
            followup_set("2016-11-23"),
        ])
        .when(to(LeadStatus::Converted))
        .then_events([status_changed(LeadStatus::Converted)])
        .then_state(|lead| {
            assert_eq!(lead.status(), LeadStatus::Converted);
            assert_eq!(lead.followup_on(), None);
        });
}

#[test]
fn followup_status_needs_a_date() {
    lead()
        .given(initialized())
        .when(to(LeadStatus::FollowUp))
        .then_error(LeadError::FollowupNeedsDate);
}

#[test]
fn the_same_status_again_is_a_noop() {
    lead()
        .given(initialized())
        .when(to(LeadStatus::Available))
        .then_no_events();
}

#[test]
fn a_converted_lead_stays_converted() {
    lead()
        .given(initialized())
        .given([status_changed(LeadStatus::Converted)])
        .when(to(LeadStatus::Available))
        .then_error(LeadError::Converted(ID))
        .when(to(LeadStatus::Closed))
        .then_error(LeadError::Converted(ID))
        .when(followup_on("2016-12-01"))
        .then_error(LeadError::Converted(ID))
        .when(to(LeadStatus::Converted))
        .then_no_events();
}

#[test]
fn a_closed_lead_can_only_be_reopened() {
    lead()
        .given(initialized())
        .given([status_changed(LeadStatus::Closed)])
        .when(to(LeadStatus::Converted))
        .then_error(LeadError::Closed(ID))
        .when(followup_on("2016-12-01"))
        .then_error(LeadError::Closed(ID))
        .when(to(LeadStatus::Available))
        .then_events([status_changed(LeadStatus::Available)]);
}

// --- validation ---------------------------------------------------------------------------------

#[test]
fn names_must_not_be_blank_or_huge() {
    let longest = "x".repeat(ChangeName::MAX_LEN);
    lead()
        .given(initialized())
        .when(rename("   "))
        .then_invalid(&["name"])
        .when(rename(&format!("{longest}x")))
        .then_invalid(&["name"])
        .when(rename(&longest))
        .then_events([named(&longest)]);
    // The fixture names the failing fields; the message is read from the command itself.
    let error = rename(&format!("{longest}x")).validate().unwrap_err();
    let message = format!("must be at most {} characters", ChangeName::MAX_LEN);
    assert_eq!(
        error.fields,
        [FieldError {
            field: "name",
            message
        }]
    );
}

#[test]
fn contact_information_reports_every_bad_field() {
    lead()
        .given(initialized())
        .when(contact("s.ivanov@example.com", "+359 (3) 27-243"))
        .then_events([contact_changed("s.ivanov@example.com", "+359 (3) 27-243")])
        .when(contact("stefan(at)example.bg", "call me"))
        .then_invalid(&["email", "phone"])
        .when(contact("s@example.com", "03-1x"))
        .then_invalid(&["phone"]);
    for email in [
        "",
        "@example.com",
        "stefan@",
        "a@b@c",
        "ste fan@example.com",
    ] {
        lead()
            .given(initialized())
            .when(contact(email, "03-1"))
            .then_invalid(&["email"]);
    }
    let error = contact("stefan(at)example.bg", "call me")
        .validate()
        .unwrap_err();
    assert_eq!(
        error.fields,
        vec![
            FieldError {
                field: "email",
                message: "must look like `name@domain`".into()
            },
            FieldError {
                field: "phone",
                message: "must be digits, optionally with spaces and `+-()`".into()
            },
        ]
    );
}

#[test]
fn lead_ids_must_be_positive() {
    lead()
        .given_nothing()
        .when(InitializeLead { id: LeadId(0) })
        .then_invalid(&["id"])
        .when(InitializeLead { id: ID })
        .then_events(initialized());
}

#[test]
fn dates_must_exist() {
    assert_eq!(date("2016-02-29"), Date::new(2016, 2, 29).unwrap());
    for bad in [
        "2015-02-29",
        "2016-13-01",
        "2016-11-31",
        "2016-11-00",
        "0000-01-01",
        "23/11/2016",
        "2016-1-5",
        "2016-11-23T10:00",
        "+016-11-23",
    ] {
        assert!(bad.parse::<Date>().is_err(), "{bad} parsed");
    }
    assert!(Date::new(1900, 2, 29).is_err());
    assert!(Date::new(2000, 2, 29).is_ok());
}

// --- the stored form -----------------------------------------------------------------------------

fn every_event() -> Vec<LeadEvent> {
    vec![
        LeadWasInitialized { id: ID }.into(),
        status_changed(LeadStatus::FollowUp),
        named("Stefan Ivanov"),
        contact_changed("s.ivanov@example.com", "03-27243457"),
        followup_set("2016-11-23"),
    ]
}

/// The stored name and schema version of each of [`every_event`], in the same order.
const STORED_AS: [(&str, u32); 5] = [
    ("LeadWasInitialized", 1),
    ("StatusChanged", 1),
    ("NameChanged", 1),
    ("ContactInformationChanged", 2),
    ("FollowupSet", 1),
];

#[test]
fn every_event_round_trips_under_its_own_name() {
    for (event, stored_as) in every_event().into_iter().zip(STORED_AS) {
        assert_eq!((event.event_type(), event.schema_version()), stored_as);
        assert_round_trip(&event);
    }
}

#[test]
fn the_event_registry_knows_every_lead_event() {
    eventsrc::registry::check().unwrap();
    let registered: Vec<(&str, u32, u32)> = eventsrc::registry::events()
        .into_iter()
        .filter(|event| event.aggregates == [Lead::TYPE])
        .map(|event| (event.name, event.version, event.oldest_version))
        .collect();
    assert_eq!(
        registered,
        [
            ("ContactInformationChanged", 2, 1),
            ("FollowupSet", 1, 1),
            ("LeadWasInitialized", 1, 1),
            ("NameChanged", 1, 1),
            ("StatusChanged", 1, 1),
        ]
    );
    assert_eq!(<ContactInformationChanged as EventType>::VERSION, 2);
}

#[test]
fn payloads_hold_the_fields_only() {
    let payloads: Vec<String> = every_event().iter().map(|e| e.encode().unwrap()).collect();
    assert_eq!(
        payloads,
        [
            r#"{"id":1410}"#,
            r#"{"status":"FollowUp"}"#,
            r#"{"name":"Stefan Ivanov"}"#,
            r#"{"email":"s.ivanov@example.com","phone":"03-27243457"}"#,
            r#"{"date":"2016-11-23"}"#,
        ]
    );
}

#[test]
fn undecodable_payloads_are_errors_not_panics() {
    assert!(matches!(
        LeadEvent::decode("LeadDeleted", 1, "{}"),
        Err(DecodeError::UnknownType { event_type, .. }) if event_type == "LeadDeleted"
    ));
    assert!(matches!(
        LeadEvent::decode("NameChanged", 2, r#"{"name":"x"}"#),
        Err(DecodeError::FutureVersion {
            version: 2,
            current: 1,
            ..
        })
    ));
    for (name, payload) in [
        ("NameChanged", r#"{"nom":"x"}"#),
        ("NameChanged", "not json"),
        ("StatusChanged", r#"{"status":"Lost"}"#),
        ("FollowupSet", r#"{"date":"2016-02-30"}"#),
        ("LeadWasInitialized", r#"{"id":-1}"#),
    ] {
        assert!(
            matches!(
                LeadEvent::decode(name, 1, payload),
                Err(DecodeError::Malformed { version: 1, .. })
            ),
            "{name} {payload}"
        );
    }
    assert!(matches!(
        LeadEvent::decode("ContactInformationChanged", 3, r#"{"email":"","phone":""}"#),
        Err(DecodeError::FutureVersion {
            version: 3,
            current: 2,
            ..
        })
    ));
    // A version 1 payload the upcast cannot read is an error naming the version it started from.
    for payload in [r#"{"contact":1410}"#, r#"["s@example.com"]"#] {
        assert!(
            matches!(
                LeadEvent::decode("ContactInformationChanged", 1, payload),
                Err(DecodeError::Upcast { version: 1, .. })
            ),
            "{payload}"
        );
    }
    assert!(matches!(
        LeadEvent::decode(
            "ContactInformationChanged",
            1,
            r#"{"email":"s@example.com"}"#
        ),
        Err(DecodeError::Malformed { version: 1, .. })
    ));
}

#[test]
fn added_fields_do_not_break_decoding() {
    let stored = r#"{"name":"x","source":"import"}"#;
    assert_upcasts("NameChanged", 1, stored, &named("x"));
}

// --- version 1 of ContactInformationChanged, as stored -----------------------------------------

/// A file of `fixtures/leads/`: its name and its content.
macro_rules! stored {
    ($file:literal) => {
        ($file, include_str!(concat!("../fixtures/leads/", $file)))
    };
}

/// Every file in `fixtures/leads/` is a `ContactInformationChanged` payload stored at version 1,
/// paired here with the e-mail and phone it must read as at version 2.
const V1_FIXTURES: [((&str, &str), &str, &str); 3] = [
    (
        stored!("contact_information_changed_v1_email.json"),
        "s.ivanov@example.com",
        "",
    ),
    (
        stored!("contact_information_changed_v1_phone.json"),
        "",
        "03-27243457",
    ),
    (
        stored!("contact_information_changed_v1_email_and_phone.json"),
        "s.ivanov@example.com",
        "03-27243457",
    ),
];

/// Each fixture's stored payload and the value it must decode to.
fn v1_fixtures() -> Vec<(&'static str, ContactInformationChanged)> {
    V1_FIXTURES
        .iter()
        .map(|((_, payload), email, phone)| {
            let v2 = ContactInformationChanged {
                email: (*email).into(),
                phone: (*phone).into(),
            };
            (*payload, v2)
        })
        .collect()
}

#[test]
fn every_fixture_has_an_expected_value() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/leads");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<&str> = V1_FIXTURES.iter().map(|((file, _), ..)| *file).collect();
    expected.sort_unstable();
    assert_eq!(files, expected);
}

#[test]
fn stored_version_1_contact_payloads_decode_as_version_2() {
    let name = "ContactInformationChanged";
    for (payload, v2) in v1_fixtures() {
        assert_upcasts(name, 1, payload, &v2);
        assert_upcasts(name, 1, payload, &LeadEvent::from(v2.clone()));
        // The registry's dynamic view, for tools that know no Rust type.
        let json = eventsrc::registry::decode_json(name, 1, payload).unwrap();
        assert_eq!(json, serde_json::to_value(&v2).unwrap());
        // Once read, the event is written back at version 2.
        assert_eq!(v2.schema_version(), 2);
        assert_round_trip(&v2);
    }
}

#[tokio::test]
async fn a_stream_of_version_1_payloads_loads_as_version_2() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    let stream = Lead::stream_id(&ID).unwrap();
    let initialized = NewEvent::raw("LeadWasInitialized", 1, r#"{"id":1410}"#);
    store
        .append(&stream, ExpectedVersion::NoStream, vec![initialized])
        .await
        .unwrap();
    for (payload, v2) in v1_fixtures() {
        let stored = NewEvent::raw("ContactInformationChanged", 1, payload);
        store
            .append(&stream, ExpectedVersion::Any, vec![stored])
            .await
            .unwrap();
        let lead = repository.load::<Lead>(&ID).await.unwrap();
        assert_eq!(lead.state.id(), Some(ID));
        assert_eq!(lead.state.email(), v2.email);
        assert_eq!(lead.state.phone(), v2.phone);
    }
    // Commands are decided on the upcast state: the stored contact again is a no-op.
    let (_, last) = v1_fixtures().pop().unwrap();
    let again = repository
        .send(contact(&last.email, &last.phone), Metadata::new())
        .await
        .unwrap();
    assert!(again.is_noop());
}

// --- the conflict rule ---------------------------------------------------------------------------

#[test]
fn a_followup_conflicts_with_a_status_change_and_a_rename_does_not() {
    let followup = followup_set("2016-11-23");
    let closed = status_changed(LeadStatus::Closed);
    assert!(Lead::conflicts(&followup, &closed));
    assert!(!Lead::conflicts(&named("Stefan"), &closed));
    assert!(!Lead::conflicts(&followup, &named("Stefan")));
    assert!(!Lead::conflicts(&closed, &followup));
}

/// A repository on a store where a colleague closes and reopens the lead just before our next
/// append.
async fn racing_lead() -> (
    Repository<RacingStore<MemoryStore>>,
    RacingStore<MemoryStore>,
) {
    let racing = RacingStore::new(MemoryStore::new());
    let repository = Repository::new(racing.clone());
    let none = Metadata::new;
    repository
        .send(InitializeLead { id: ID }, none())
        .await
        .unwrap();
    repository
        .send(rename("Stefan Ivanov"), none())
        .await
        .unwrap();
    let stream = Lead::stream_id(&ID).unwrap();
    let change = |status| NewEvent::from_event(&status_changed(status), none()).unwrap();
    racing.race(
        stream,
        vec![change(LeadStatus::Closed), change(LeadStatus::Available)],
    );
    (repository, racing)
}

#[tokio::test]
async fn a_rename_racing_a_status_change_is_decided_again_and_commits() {
    let (repository, _) = racing_lead().await;
    let committed = repository
        .send(rename("Stefan Petrov"), Metadata::new())
        .await
        .unwrap();
    assert_eq!(committed.attempts, 2);
    assert_eq!(committed.stream_version, StreamVersion(6));
    let lead = repository.load::<Lead>(&ID).await.unwrap();
    assert_eq!(lead.state.name(), "Stefan Petrov");
}

#[tokio::test]
async fn a_followup_racing_a_status_change_is_a_conflict() {
    let (repository, racing) = racing_lead().await;
    let result = repository
        .send(followup_on("2016-11-23"), Metadata::new())
        .await;
    match result {
        Err(ExecuteError::Conflict {
            expected,
            actual,
            attempts,
            incompatible,
            ..
        }) => {
            assert_eq!((expected, actual), (StreamVersion(3), StreamVersion(5)));
            assert_eq!(attempts, 1);
            assert!(incompatible);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nothing of ours was appended: only the colleague's two status changes.
    let stream = Lead::stream_id(&ID).unwrap();
    let version = racing.stream_version(&stream).await.unwrap();
    assert_eq!(version, StreamVersion(5));
}

// --- Stefan Ivanov's story, end to end -----------------------------------------------------------

#[tokio::test]
async fn stefans_story_runs_through_the_repository() {
    stefans_story_on(MemoryStore::new()).await;
}

#[tokio::test]
async fn stefans_story_runs_through_the_repository_on_sqlite() {
    stefans_story_on(SqliteEventStore::open_in_memory().await.unwrap()).await;
}

async fn stefans_story_on(store: impl EventStore + Clone) {
    let repository = Repository::new(store.clone());
    let as_maria = || Metadata::new().with_actor("maria");

    let first = repository
        .send(InitializeLead { id: ID }, as_maria())
        .await
        .unwrap();
    assert_eq!(first.stream_version, StreamVersion(2));
    repository
        .send(rename("Stefan Ivanov"), as_maria())
        .await
        .unwrap();
    repository
        .send(contact("s.ivanov@example.com", "03-27243457"), as_maria())
        .await
        .unwrap();
    let followup = repository
        .send(followup_on("2016-11-23"), as_maria())
        .await
        .unwrap();
    assert_eq!(followup.events.len(), 2);

    let noop = repository
        .send(rename("Stefan Ivanov"), as_maria())
        .await
        .unwrap();
    assert!(noop.is_noop());
    assert_eq!(noop.stream_version, StreamVersion(6));
    assert_eq!(noop.global_position, None);

    let invalid = repository
        .send(contact("stefan(at)example.bg", "050-8139904"), as_maria())
        .await;
    assert!(matches!(invalid, Err(ExecuteError::Invalid(_))));
    repository
        .send(contact("stefan@example.bg", "050-8139904"), as_maria())
        .await
        .unwrap();
    let converted = repository
        .send(to(LeadStatus::Converted), as_maria())
        .await
        .unwrap();
    assert_eq!(converted.stream_version, StreamVersion(8));

    let rejected = repository.send(rename("Stefan Petrov"), as_maria()).await;
    assert!(matches!(
        rejected,
        Err(ExecuteError::Rejected(LeadError::Converted(ID)))
    ));

    let lead = repository.load::<Lead>(&ID).await.unwrap();
    assert_eq!(lead.version, StreamVersion(8));
    assert_eq!(lead.state.name(), "Stefan Ivanov");
    assert_eq!(lead.state.email(), "stefan@example.bg");
    assert_eq!(lead.state.phone(), "050-8139904");
    assert_eq!(lead.state.status(), LeadStatus::Converted);
    assert_eq!(lead.state.followup_on(), None);

    let then = repository
        .load_at::<Lead>(&ID, StreamVersion(6))
        .await
        .unwrap();
    assert_eq!(then.state.status(), LeadStatus::FollowUp);
    assert_eq!(then.state.followup_on(), Some(date("2016-11-23")));
    assert_eq!(then.state.phone(), "03-27243457");

    let records = store
        .read_stream(&Lead::stream_id(&ID).unwrap(), ReadStream::forward())
        .await
        .unwrap();
    let types: Vec<&str> = records.iter().map(|r| &*r.event_type).collect();
    assert_eq!(
        types,
        [
            "LeadWasInitialized",
            "StatusChanged",
            "NameChanged",
            "ContactInformationChanged",
            "StatusChanged",
            "FollowupSet",
            "ContactInformationChanged",
            "StatusChanged",
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| r.metadata.actor.as_deref() == Some("maria"))
    );
    assert_eq!(records[4].metadata.causation_id, Some(followup.command_id));
    assert_eq!(records[5].metadata.causation_id, Some(followup.command_id));
    assert_eq!(&*records[5].payload, r#"{"date":"2016-11-23"}"#);
}

// --- the demo, run after run ----------------------------------------------------------------------

/// A database file in the temp directory, removed (with SQLite's `-wal` and `-shm` files) when
/// dropped.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let file = format!("eventsrc-examples-{}-{name}.db", std::process::id());
        let db = Self(std::env::temp_dir().join(file));
        db.remove();
        db
    }

    fn remove(&self) {
        let _ = eventsrc_sqlite::remove_database(&self.0);
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// One run of the demo, as the binary does it: open the file with the story's clock, tell,
/// close. Returns what it did, what it printed and the two leads' records after it.
async fn demo_run(db: &TempDb) -> (story::Told, String, Vec<RecordedEvent>, Vec<RecordedEvent>) {
    let clock = story::clock();
    let options = SqliteOptions::default().clock(clock.clone());
    let store = SqliteEventStore::open_with(&db.0, options).await.unwrap();
    let mut out = Vec::new();
    let told = story::tell(&store, &clock, &mut out).await.unwrap();
    let read = |lead| {
        let store = store.clone();
        async move {
            let stream = Lead::stream_id(&lead).unwrap();
            store
                .read_stream(&stream, ReadStream::forward())
                .await
                .unwrap()
        }
    };
    let (stefan, lilyana) = (read(STEFAN).await, read(LILYANA).await);
    (told, String::from_utf8(out).unwrap(), stefan, lilyana)
}

fn runs(records: &[RecordedEvent]) -> Vec<u64> {
    let run = |r: &RecordedEvent| r.metadata.get(RUN_KEY).and_then(|run| run.as_u64());
    records.iter().map(|r| run(r).unwrap()).collect()
}

#[tokio::test]
async fn the_demo_continues_its_history_on_the_next_run() {
    let db = TempDb::new("continues");

    let (first, output, stefan, lilyana) = demo_run(&db).await;
    assert_eq!((first.run, first.earlier_events, first.events), (1, 0, 17));
    assert!(!output.contains("continuing the history"), "{output}");
    assert_eq!((stefan.len(), lilyana.len()), (8, 9));
    let lead = lilyana.last().unwrap();
    assert_eq!(&*lead.payload, r#"{"status":"Closed"}"#);

    // Run 2: Stefan is converted (final), so the lead closed in run 1 is reopened and given a
    // follow-up a week out, on the next working day after its last event.
    let (second, output, stefan_2, lilyana_2) = demo_run(&db).await;
    assert_eq!(
        (second.run, second.earlier_events, second.events),
        (2, 17, 20)
    );
    assert!(
        output.contains("Run 2: continuing the history from an earlier run (17 events"),
        "{output}"
    );
    assert_eq!(stefan_2, stefan, "lead 1410 is untouched");
    assert_eq!(
        lilyana_2[..9],
        lilyana[..],
        "run 1's events are still there"
    );
    assert_eq!(runs(&lilyana_2), [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2]);
    let added: Vec<(&str, &str, String)> = lilyana_2[9..]
        .iter()
        .map(|r| (&*r.event_type, &*r.payload, r.recorded_at.to_string()))
        .collect();
    assert_eq!(
        added,
        [
            (
                "StatusChanged",
                r#"{"status":"Available"}"#,
                "2016-11-28T09:00:00.000000Z".to_owned()
            ),
            (
                "StatusChanged",
                r#"{"status":"FollowUp"}"#,
                "2016-11-28T09:00:30.000000Z".to_owned()
            ),
            (
                "FollowupSet",
                r#"{"date":"2016-12-05"}"#,
                "2016-11-28T09:00:30.000000Z".to_owned()
            ),
        ]
    );
    assert_eq!(
        lilyana_2[11].metadata.get(COMMAND_KEY),
        Some(&"SetFollowup".into())
    );
    // The history it prints spans both runs.
    assert!(output.contains("load_at(v9): before run 2"), "{output}");
    assert!(output.contains(r#"{"name":"Lilyana Yankova"}"#), "{output}");

    // Run 3: the follow-up call is made on its day and the next one set a week later.
    let (third, _, _, lilyana_3) = demo_run(&db).await;
    assert_eq!((third.run, third.earlier_events, third.events), (3, 20, 21));
    assert_eq!(lilyana_3[..12], lilyana_2[..]);
    let last = lilyana_3.last().unwrap();
    assert_eq!(&*last.payload, r#"{"date":"2016-12-12"}"#);
    assert_eq!(last.recorded_at.to_string(), "2016-12-05T10:00:00.000000Z");
}

#[tokio::test]
async fn the_demo_tells_the_same_story_on_every_backend() {
    let clock = story::clock();
    let mut on_memory = Vec::new();
    let memory = MemoryStore::with_clock(clock.clone());
    story::tell(&memory, &clock, &mut on_memory).await.unwrap();

    let clock = story::clock();
    let sqlite = Store::open_with_clock("sqlite::memory:", clock.clone())
        .await
        .unwrap();
    let mut on_sqlite = Vec::new();
    let told = story::tell(&sqlite, &clock, &mut on_sqlite).await.unwrap();
    assert_eq!((told.run, told.events), (1, 17));
    assert_eq!(
        String::from_utf8(on_sqlite).unwrap(),
        String::from_utf8(on_memory).unwrap()
    );
}

// --- the demo on PostgreSQL -------------------------------------------------------------------

/// The environment variable naming the PostgreSQL server the tests use.
const POSTGRES_URL_VAR: &str = "EVENTSRC_POSTGRES_URL";

/// The server's URL, or `None` after printing the marker CI fails on. The line goes straight to
/// the process's stderr, past the test harness's capture, so that it shows when the test passes.
fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let line = format!(
                "\nEVENTSRC-POSTGRES-SKIPPED: `{test}` did not run: set {POSTGRES_URL_VAR} \
                 (e.g. postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL tests\n"
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
    }
}

/// `server` with `?schema=` naming a schema of this test alone, and that schema's name. The
/// name follows eventsrc-postgres's tests (`eventsrc_test_<unix seconds>_<random>`), whose
/// support code sweeps such schemas an hour old, left behind by a failed run.
fn fresh_schema(server: &str) -> (String, String) {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let random = eventsrc::EventId::new().0.simple().to_string();
    let schema = format!("eventsrc_test_{seconds}_{}", &random[random.len() - 12..]);
    let separator = if server.contains('?') { '&' } else { '?' };
    (format!("{server}{separator}schema={schema}"), schema)
}

/// One run of the demo as the binary does it, on the store `url` names: open, tell, close.
async fn demo_run_on(url: &str) -> (story::Told, String, Vec<RecordedEvent>, Vec<RecordedEvent>) {
    let clock = story::clock();
    let store = Store::open_with_clock(url, clock.clone()).await.unwrap();
    let mut out = Vec::new();
    let told = story::tell(&store, &clock, &mut out).await.unwrap();
    let mut records = Vec::new();
    for lead in [STEFAN, LILYANA] {
        let stream = Lead::stream_id(&lead).unwrap();
        records.push(
            store
                .read_stream(&stream, ReadStream::forward())
                .await
                .unwrap(),
        );
    }
    let lilyana = records.pop().unwrap();
    let stefan = records.pop().unwrap();
    (told, String::from_utf8(out).unwrap(), stefan, lilyana)
}

#[tokio::test]
async fn the_demo_continues_its_history_on_postgres() {
    let Some(server) = postgres_url("the_demo_continues_its_history_on_postgres") else {
        return;
    };
    let (url, schema) = fresh_schema(&server);
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    assert_eq!(store.to_string(), format!("a PostgreSQL schema, {schema}"));

    let (first, output, stefan, lilyana) = demo_run_on(&url).await;
    assert_eq!((first.run, first.earlier_events, first.events), (1, 0, 17));
    assert!(!output.contains("continuing the history"), "{output}");
    assert!(output.contains("decided 2 times"), "the race: {output}");
    assert_eq!((stefan.len(), lilyana.len()), (8, 9));
    assert_eq!(&*lilyana.last().unwrap().payload, r#"{"status":"Closed"}"#);

    // Run 2, on a new connection pool as a new process would: the closed lead is reopened and
    // given a follow-up. PostgreSQL stamps `recorded_at` itself, so the dates are today's.
    let (second, output, stefan_2, lilyana_2) = demo_run_on(&url).await;
    assert_eq!(
        (second.run, second.earlier_events, second.events),
        (2, 17, 20)
    );
    assert!(
        output.contains("Run 2: continuing the history from an earlier run (17 events"),
        "{output}"
    );
    assert_eq!(stefan_2, stefan, "lead 1410 is untouched");
    assert_eq!(
        lilyana_2[..9],
        lilyana[..],
        "run 1's events are still there"
    );
    assert_eq!(runs(&lilyana_2), [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2]);
    let added: Vec<(&str, &str)> = lilyana_2[9..]
        .iter()
        .map(|r| (&*r.event_type, &*r.payload))
        .collect();
    assert_eq!(
        added[..2],
        [
            ("StatusChanged", r#"{"status":"Available"}"#),
            ("StatusChanged", r#"{"status":"FollowUp"}"#),
        ]
    );
    assert_eq!(added[2].0, "FollowupSet");
    assert!(output.contains("load_at(v9): before run 2"), "{output}");

    let Store::Postgres(postgres) = store else {
        panic!("{store:?}");
    };
    postgres
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
