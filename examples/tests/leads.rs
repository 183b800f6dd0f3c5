//! Specs for seed 002's leads: given events, when a command, then events (or an error); the
//! stored form of each event; the conflict rule; and the talk's story through a repository.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use eventsrc::{
    Aggregate, Command, DecodeError, Event, EventStore, ExecuteError, FieldError, Handle,
    MemoryStore, Metadata, NewEvent, ReadStream, Repository, StreamVersion,
};
use eventsrc_examples::leads::{
    ChangeContactInformation, ChangeName, ChangeStatus, Date, InitializeLead, Lead, LeadError,
    LeadEvent, LeadId, LeadStatus, SetFollowup,
};
use eventsrc_examples::race::RacingStore;

const ID: LeadId = LeadId(1410);

// --- given / when / then, by hand -------------------------------------------------------------

fn given(events: &[LeadEvent]) -> Lead {
    let mut lead = Lead::default();
    for event in events {
        lead.apply(event);
    }
    lead
}

fn when<C: Command>(lead: &Lead, command: C) -> Result<Vec<LeadEvent>, LeadError>
where
    Lead: Handle<C>,
{
    lead.handle(&command)
}

fn initialized() -> Vec<LeadEvent> {
    vec![
        LeadEvent::LeadWasInitialized { id: ID },
        status_changed(LeadStatus::Available),
    ]
}

fn with(mut events: Vec<LeadEvent>, more: impl IntoIterator<Item = LeadEvent>) -> Vec<LeadEvent> {
    events.extend(more);
    events
}

fn status_changed(status: LeadStatus) -> LeadEvent {
    LeadEvent::StatusChanged { status }
}

fn named(name: &str) -> LeadEvent {
    LeadEvent::NameChanged { name: name.into() }
}

fn contact(email: &str, phone: &str) -> ChangeContactInformation {
    ChangeContactInformation {
        email: email.into(),
        phone: phone.into(),
    }
}

fn rename(name: &str) -> ChangeName {
    ChangeName { name: name.into() }
}

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

fn followup_on(text: &str) -> SetFollowup {
    SetFollowup { on: date(text) }
}

fn to(status: LeadStatus) -> ChangeStatus {
    ChangeStatus { status }
}

// --- InitializeLead ----------------------------------------------------------------------------

#[test]
fn initializing_a_new_lead_makes_it_available() {
    let events = when(&given(&[]), InitializeLead { id: ID }).unwrap();
    assert_eq!(events, initialized());
}

#[test]
fn a_lead_cannot_be_initialized_twice() {
    let result = when(&given(&initialized()), InitializeLead { id: ID });
    assert_eq!(result, Err(LeadError::AlreadyInitialized(ID)));
}

#[test]
fn commands_before_initialization_are_rejected() {
    let lead = given(&[]);
    assert_eq!(
        when(&lead, rename("Stefan Ivanov")),
        Err(LeadError::NotInitialized)
    );
    assert_eq!(
        when(&lead, to(LeadStatus::Closed)),
        Err(LeadError::NotInitialized)
    );
    assert_eq!(
        when(&lead, followup_on("2016-11-23")),
        Err(LeadError::NotInitialized)
    );
}

// --- ChangeName ---------------------------------------------------------------------------------

#[test]
fn renaming_records_the_trimmed_name() {
    let events = when(&given(&initialized()), rename("  Stefan Ivanov ")).unwrap();
    assert_eq!(events, vec![named("Stefan Ivanov")]);
}

#[test]
fn the_same_name_again_is_a_noop() {
    let lead = given(&with(initialized(), [named("Stefan Ivanov")]));
    assert_eq!(when(&lead, rename("Stefan Ivanov")), Ok(vec![]));
    assert_eq!(when(&lead, rename(" Stefan Ivanov")), Ok(vec![]));
}

#[test]
fn a_converted_lead_cannot_be_renamed() {
    let lead = given(&with(
        initialized(),
        [
            named("Stefan Ivanov"),
            status_changed(LeadStatus::Converted),
        ],
    ));
    assert_eq!(
        when(&lead, rename("Stefan Petrov")),
        Err(LeadError::Converted(ID))
    );
    // Asking for what already holds is still a harmless no-op.
    assert_eq!(when(&lead, rename("Stefan Ivanov")), Ok(vec![]));
}

#[test]
fn a_closed_lead_must_be_reopened_before_editing() {
    let closed = with(initialized(), [status_changed(LeadStatus::Closed)]);
    let lead = given(&closed);
    assert_eq!(when(&lead, rename("Stefan")), Err(LeadError::Closed(ID)));
    assert_eq!(
        when(&lead, contact("s@example.com", "03-1")),
        Err(LeadError::Closed(ID))
    );

    let reopened = when(&lead, to(LeadStatus::Available)).unwrap();
    assert_eq!(reopened, vec![status_changed(LeadStatus::Available)]);
    let lead = given(&with(closed, reopened));
    assert_eq!(
        when(&lead, rename("Stefan")).unwrap(),
        vec![named("Stefan")]
    );
}

// --- ChangeContactInformation ------------------------------------------------------------------

#[test]
fn changing_contact_information_records_both_fields() {
    let events = when(
        &given(&initialized()),
        contact("s.ivanov@example.com", "03-27243457"),
    );
    assert_eq!(
        events,
        Ok(vec![LeadEvent::ContactInformationChanged {
            email: "s.ivanov@example.com".into(),
            phone: "03-27243457".into(),
        }])
    );
}

#[test]
fn the_same_contact_information_again_is_a_noop() {
    let lead = given(&with(
        initialized(),
        [LeadEvent::ContactInformationChanged {
            email: "s.ivanov@example.com".into(),
            phone: "03-27243457".into(),
        }],
    ));
    assert_eq!(
        when(&lead, contact("s.ivanov@example.com", "03-27243457")),
        Ok(vec![])
    );
    assert_eq!(
        when(&lead, contact("s.ivanov@example.com", "050-8139904")).map(|e| e.len()),
        Ok(1)
    );
}

// --- ChangeStatus and SetFollowup --------------------------------------------------------------

#[test]
fn a_followup_moves_the_lead_to_followup_and_sets_the_date() {
    let events = when(&given(&initialized()), followup_on("2016-11-23")).unwrap();
    assert_eq!(
        events,
        vec![
            status_changed(LeadStatus::FollowUp),
            LeadEvent::FollowupSet {
                date: date("2016-11-23")
            },
        ]
    );
    let lead = given(&with(initialized(), events));
    assert_eq!(lead.status(), LeadStatus::FollowUp);
    assert_eq!(lead.followup_on(), Some(date("2016-11-23")));
}

#[test]
fn moving_a_pending_followup_only_sets_the_new_date() {
    let pending = with(
        initialized(),
        [
            status_changed(LeadStatus::FollowUp),
            LeadEvent::FollowupSet {
                date: date("2016-11-23"),
            },
        ],
    );
    let lead = given(&pending);
    assert_eq!(
        when(&lead, followup_on("2016-11-30")),
        Ok(vec![LeadEvent::FollowupSet {
            date: date("2016-11-30")
        }])
    );
    assert_eq!(when(&lead, followup_on("2016-11-23")), Ok(vec![]));
}

#[test]
fn leaving_followup_clears_the_date() {
    let lead = given(&with(
        initialized(),
        [
            status_changed(LeadStatus::FollowUp),
            LeadEvent::FollowupSet {
                date: date("2016-11-23"),
            },
            status_changed(LeadStatus::Converted),
        ],
    ));
    assert_eq!(lead.status(), LeadStatus::Converted);
    assert_eq!(lead.followup_on(), None);
}

#[test]
fn followup_status_needs_a_date() {
    let result = when(&given(&initialized()), to(LeadStatus::FollowUp));
    assert_eq!(result, Err(LeadError::FollowupNeedsDate));
}

#[test]
fn the_same_status_again_is_a_noop() {
    let lead = given(&initialized());
    assert_eq!(when(&lead, to(LeadStatus::Available)), Ok(vec![]));
}

#[test]
fn a_converted_lead_stays_converted() {
    let lead = given(&with(
        initialized(),
        [status_changed(LeadStatus::Converted)],
    ));
    for status in [LeadStatus::Available, LeadStatus::Closed] {
        assert_eq!(when(&lead, to(status)), Err(LeadError::Converted(ID)));
    }
    assert_eq!(
        when(&lead, followup_on("2016-12-01")),
        Err(LeadError::Converted(ID))
    );
    assert_eq!(when(&lead, to(LeadStatus::Converted)), Ok(vec![]));
}

#[test]
fn a_closed_lead_can_only_be_reopened() {
    let lead = given(&with(initialized(), [status_changed(LeadStatus::Closed)]));
    assert_eq!(
        when(&lead, to(LeadStatus::Converted)),
        Err(LeadError::Closed(ID))
    );
    assert_eq!(
        when(&lead, followup_on("2016-12-01")),
        Err(LeadError::Closed(ID))
    );
}

// --- validation ---------------------------------------------------------------------------------

fn failing_fields(command: &impl Command) -> Vec<&'static str> {
    match command.validate() {
        Ok(()) => vec![],
        Err(error) => error.fields.iter().map(|f| f.field).collect(),
    }
}

#[test]
fn names_must_not_be_blank_or_huge() {
    assert_eq!(failing_fields(&rename("Stefan Ivanov")), Vec::<&str>::new());
    assert_eq!(failing_fields(&rename("   ")), ["name"]);
    assert_eq!(failing_fields(&rename(&"x".repeat(201))), ["name"]);
}

#[test]
fn contact_information_reports_every_bad_field() {
    assert!(
        contact("s.ivanov@example.com", "+359 (3) 27-243")
            .validate()
            .is_ok()
    );
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
                message: "must contain digits".into()
            },
        ]
    );
    for email in [
        "",
        "@example.com",
        "stefan@",
        "a@b@c",
        "ste fan@example.com",
    ] {
        assert_eq!(
            failing_fields(&contact(email, "03-1")),
            ["email"],
            "{email:?}"
        );
    }
    assert_eq!(
        failing_fields(&contact("s@example.com", "03-1x")),
        ["phone"]
    );
}

#[test]
fn lead_ids_must_be_positive() {
    assert_eq!(failing_fields(&InitializeLead { id: LeadId(0) }), ["id"]);
    assert!(InitializeLead { id: ID }.validate().is_ok());
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
        LeadEvent::LeadWasInitialized { id: ID },
        status_changed(LeadStatus::FollowUp),
        named("Stefan Ivanov"),
        LeadEvent::ContactInformationChanged {
            email: "s.ivanov@example.com".into(),
            phone: "03-27243457".into(),
        },
        LeadEvent::FollowupSet {
            date: date("2016-11-23"),
        },
    ]
}

#[test]
fn every_event_round_trips_under_its_own_name() {
    for (event, name) in every_event().into_iter().zip(LeadEvent::NAMES) {
        assert_eq!(event.event_type(), name);
        assert_eq!(event.schema_version(), 1);
        let payload = event.encode().unwrap();
        assert_eq!(LeadEvent::decode(name, 1, &payload).unwrap(), event);
    }
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
}

#[test]
fn added_fields_do_not_break_decoding() {
    let event = LeadEvent::decode("NameChanged", 1, r#"{"name":"x","source":"import"}"#);
    assert_eq!(event.unwrap(), named("x"));
}

// --- the conflict rule ---------------------------------------------------------------------------

#[test]
fn a_followup_conflicts_with_a_status_change_and_a_rename_does_not() {
    let followup = LeadEvent::FollowupSet {
        date: date("2016-11-23"),
    };
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
        .execute::<Lead, _>(&ID, InitializeLead { id: ID }, none())
        .await
        .unwrap();
    repository
        .execute::<Lead, _>(&ID, rename("Stefan Ivanov"), none())
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
        .execute::<Lead, _>(&ID, rename("Stefan Petrov"), Metadata::new())
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
        .execute::<Lead, _>(&ID, followup_on("2016-11-23"), Metadata::new())
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

// --- the talk's story, end to end ----------------------------------------------------------------

#[tokio::test]
async fn stefans_story_runs_through_the_repository() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    let as_maria = || Metadata::new().with_actor("maria");

    let first = repository
        .execute::<Lead, _>(&ID, InitializeLead { id: ID }, as_maria())
        .await
        .unwrap();
    assert_eq!(first.stream_version, StreamVersion(2));
    repository
        .execute::<Lead, _>(&ID, rename("Stefan Ivanov"), as_maria())
        .await
        .unwrap();
    repository
        .execute::<Lead, _>(
            &ID,
            contact("s.ivanov@example.com", "03-27243457"),
            as_maria(),
        )
        .await
        .unwrap();
    let followup = repository
        .execute::<Lead, _>(&ID, followup_on("2016-11-23"), as_maria())
        .await
        .unwrap();
    assert_eq!(followup.events.len(), 2);

    let noop = repository
        .execute::<Lead, _>(&ID, rename("Stefan Ivanov"), as_maria())
        .await
        .unwrap();
    assert!(noop.is_noop());
    assert_eq!(noop.stream_version, StreamVersion(6));
    assert_eq!(noop.global_position, None);

    let invalid = repository
        .execute::<Lead, _>(
            &ID,
            contact("stefan(at)example.bg", "050-8139904"),
            as_maria(),
        )
        .await;
    assert!(matches!(invalid, Err(ExecuteError::Invalid(_))));
    repository
        .execute::<Lead, _>(&ID, contact("stefan@example.bg", "050-8139904"), as_maria())
        .await
        .unwrap();
    let converted = repository
        .execute::<Lead, _>(&ID, to(LeadStatus::Converted), as_maria())
        .await
        .unwrap();
    assert_eq!(converted.stream_version, StreamVersion(8));

    let rejected = repository
        .execute::<Lead, _>(&ID, rename("Stefan Petrov"), as_maria())
        .await;
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
