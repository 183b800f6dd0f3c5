//! Behaviour of `Repository`: loading, executing, stamping metadata, time travel, retries,
//! declared conflicts, snapshots and undecodable events.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{
    Add, Added, ChangeStatus, ConflictingStore, GappedStore, Lead, LeadError, LeadEvent, OpenLead,
    Rename, SetFollowup, Status, Tally,
};
use eventsrc::Tenants;
use eventsrc::store::{ReadAll, ReadStream, Snapshot};
use eventsrc::time::ManualClock;
use eventsrc::{
    Aggregate, DecodeError, EventStore, ExecuteError, ExpectedVersion, GlobalPosition, LoadError,
    MemoryStore, Metadata, NewEvent, RecordDecodeError, Repository, SnapshotStore, StreamVersion,
    Timestamp,
};
use uuid::Uuid;

const ID: u32 = 1410;

async fn lead_events(store: &impl EventStore, id: u32) -> Vec<eventsrc::RecordedEvent> {
    let stream = Lead::stream_id(&id).unwrap();
    store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap()
}

/// A store holding lead `ID`, opened as "Ada".
async fn opened_lead() -> MemoryStore {
    let store = MemoryStore::new();
    Repository::new(store.clone())
        .execute::<Lead, _>(&ID, OpenLead::named("Ada"), Metadata::new())
        .await
        .unwrap();
    store
}

// ---------------------------------------------------------------------------------------------
// Load and execute

#[tokio::test]
async fn a_new_aggregate_loads_empty_at_version_none() {
    let repository = Repository::new(MemoryStore::new());
    let loaded = repository.load::<Lead>(&ID).await.unwrap();
    assert_eq!(loaded.version, StreamVersion::NONE);
    assert_eq!(loaded.state, Lead::default());
}

#[tokio::test]
async fn execute_appends_the_decided_events_and_returns_the_consistency_token() {
    let store = MemoryStore::new();
    // Another stream first, so global positions and stream versions differ.
    store
        .append(
            &"note-1".parse().unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::raw("Noted", 1, "{}")],
        )
        .await
        .unwrap();
    let repository = Repository::new(store.clone());
    let command = OpenLead {
        name: "Ada".into(),
        contact_on: Some("2030-01-15".into()),
    };
    let committed = repository
        .execute::<Lead, _>(&ID, command, Metadata::new())
        .await
        .unwrap();

    assert_eq!(committed.stream.as_str(), "lead-1410");
    assert_eq!(
        committed.events,
        [LeadEvent::opened("Ada"), LeadEvent::followup("2030-01-15")]
    );
    assert_eq!(committed.stream_version, StreamVersion(2));
    assert_eq!(committed.attempts, 1);
    assert!(!committed.is_noop());

    let stored = lead_events(&store, ID).await;
    assert_eq!(
        committed.event_ids,
        stored.iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
    assert_eq!(committed.global_position, Some(stored[1].global_position));
    assert_eq!(
        committed.global_position,
        Some(store.head_position().await.unwrap())
    );
    let types: Vec<&str> = stored.iter().map(|e| &*e.event_type).collect();
    assert_eq!(types, [common::OPENED, common::FOLLOWUP_SET]);

    let loaded = repository.load::<Lead>(&ID).await.unwrap();
    assert_eq!(loaded.version, StreamVersion(2));
    assert_eq!(
        loaded.state,
        Lead {
            opened: true,
            name: "Ada".into(),
            status: Status::New,
            followup: Some("2030-01-15".into()),
            renames: 0,
        }
    );

    let next = repository
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Contacted), Metadata::new())
        .await
        .unwrap();
    assert_eq!(next.stream_version, StreamVersion(3));
    assert!(next.global_position > committed.global_position);
    assert_ne!(next.command_id, committed.command_id);
}

#[tokio::test]
async fn a_noop_command_appends_nothing() {
    let store = opened_lead().await;
    let head = store.head_position().await.unwrap();
    let repository = Repository::new(store.clone());

    let committed = repository
        .execute::<Lead, _>(&ID, Rename { name: "Ada".into() }, Metadata::new())
        .await
        .unwrap();
    assert!(committed.is_noop());
    assert!(committed.events.is_empty());
    assert!(committed.event_ids.is_empty());
    assert_eq!(committed.global_position, None);
    assert_eq!(committed.stream_version, StreamVersion(1));
    assert_eq!(committed.attempts, 1);

    assert_eq!(store.len(), 1);
    assert_eq!(store.head_position().await.unwrap(), head);
}

#[tokio::test]
async fn a_rejected_command_returns_the_domain_error_and_appends_nothing() {
    let store = opened_lead().await;
    let repository = Repository::new(store.clone());

    let again = repository
        .execute::<Lead, _>(&ID, OpenLead::named("Ada"), Metadata::new())
        .await;
    assert!(
        matches!(again, Err(ExecuteError::Rejected(LeadError::AlreadyOpen))),
        "{again:?}"
    );

    repository
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Closed), Metadata::new())
        .await
        .unwrap();
    let finished = repository
        .execute::<Lead, _>(&ID, SetFollowup::on("2030-02-01"), Metadata::new())
        .await;
    match finished {
        Err(ExecuteError::Rejected(error)) => {
            assert_eq!(error, LeadError::Finished(Status::Closed));
            assert_eq!(
                ExecuteError::Rejected(error).to_string(),
                "command rejected: lead is Closed; no follow-up can be set"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    let never_opened = repository
        .execute::<Lead, _>(&7, ChangeStatus(Status::Contacted), Metadata::new())
        .await;
    assert!(
        matches!(
            never_opened,
            Err(ExecuteError::Rejected(LeadError::NotOpen))
        ),
        "{never_opened:?}"
    );
    assert_eq!(store.len(), 2);
    assert!(lead_events(&store, 7).await.is_empty());
}

#[tokio::test]
async fn an_invalid_command_lists_every_failing_field_and_loads_nothing() {
    // The stream holds an event no code can read: loading it would fail, so an `Invalid` error
    // proves validation ran before the load.
    let store = opened_lead().await;
    store
        .append(
            &Lead::stream_id(&ID).unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::raw("Unknown", 1, "{}")],
        )
        .await
        .unwrap();
    let repository = Repository::new(store.clone());

    let command = SetFollowup {
        on: "next tuesday".into(),
        note: "call back about the pricing of the enterprise plan".into(),
        by: " ".into(),
    };
    let result = repository
        .execute::<Lead, _>(&ID, command, Metadata::new())
        .await;
    let Err(ExecuteError::Invalid(invalid)) = result else {
        panic!("expected Invalid, got {result:?}")
    };
    let fields: Vec<&str> = invalid.fields.iter().map(|f| f.field).collect();
    assert_eq!(fields, ["on", "note", "by"]);
    assert_eq!(
        invalid.to_string(),
        "invalid command: `on` must be a date written YYYY-MM-DD; \
         `note` must be at most 20 characters; `by` must not be empty"
    );
    assert_eq!(store.len(), 2);

    // One failing field is reported alone.
    let one = repository
        .execute::<Lead, _>(&99, OpenLead::named(""), Metadata::new())
        .await;
    let Err(ExecuteError::Invalid(invalid)) = one else {
        panic!("expected Invalid, got {one:?}")
    };
    assert_eq!(invalid.fields.len(), 1);
    assert_eq!(invalid.fields[0].field, "name");
    assert_eq!(invalid.fields[0].message, "must not be empty");
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn a_repository_sees_only_its_tenant() {
    let store = MemoryStore::new();
    let acme = Repository::new(store.with_tenant("acme".into()));
    let default = Repository::new(store.clone());
    default
        .execute::<Lead, _>(&ID, OpenLead::named("Ada"), Metadata::new())
        .await
        .unwrap();

    // The same lead id in another tenant is another lead: not open yet, and free to open.
    assert_eq!(
        acme.load::<Lead>(&ID).await.unwrap().version,
        StreamVersion::NONE
    );
    let committed = acme
        .execute::<Lead, _>(&ID, OpenLead::named("Grace"), Metadata::new())
        .await
        .unwrap();
    assert_eq!(committed.stream_version, StreamVersion(1));
    assert_eq!(default.load::<Lead>(&ID).await.unwrap().state.name, "Ada");
    assert_eq!(acme.load::<Lead>(&ID).await.unwrap().state.name, "Grace");
}

#[tokio::test]
async fn an_id_that_makes_no_stream_name_is_a_load_error() {
    let repository = Repository::new(MemoryStore::new());
    let empty = String::new();
    let loaded = repository.load::<Tally>(&empty).await;
    assert!(matches!(loaded, Err(LoadError::Stream(_))), "{loaded:?}");
    let executed = repository
        .execute::<Tally, _>(&empty, Add(vec![1]), Metadata::new())
        .await;
    assert!(
        matches!(executed, Err(ExecuteError::Load(LoadError::Stream(_)))),
        "{executed:?}"
    );
    assert!(repository.store().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Metadata

#[tokio::test]
async fn every_event_carries_the_given_metadata_caused_by_the_command() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    let correlation = Uuid::now_v7();
    let metadata = Metadata::new()
        .with_correlation_id(correlation)
        .with_causation_id(Uuid::nil())
        .with_actor("sales-rep-7")
        .with("channel", "phone");
    let command = OpenLead {
        name: "Ada".into(),
        contact_on: Some("2030-01-15".into()),
    };
    let committed = repository
        .execute::<Lead, _>(&ID, command, metadata)
        .await
        .unwrap();

    let stored = lead_events(&store, ID).await;
    assert_eq!(stored.len(), 2);
    for event in &stored {
        let m = &event.metadata;
        assert_eq!(m.actor.as_deref(), Some("sales-rep-7"));
        assert_eq!(m.get("channel"), Some(&serde_json::json!("phone")));
        assert_eq!(m.causation_id, Some(committed.command_id));
        assert_eq!(m.correlation_id, Some(correlation));
    }
}

#[tokio::test]
async fn without_a_correlation_id_the_command_id_correlates() {
    let store = opened_lead().await;
    let repository = Repository::new(store.clone());
    let committed = repository
        .execute::<Lead, _>(
            &ID,
            ChangeStatus(Status::Contacted),
            Metadata::new().with_actor("bot"),
        )
        .await
        .unwrap();

    let stored = lead_events(&store, ID).await;
    let event = &stored[1];
    assert_eq!(event.event_id, committed.event_ids[0]);
    assert_eq!(event.metadata.correlation_id, Some(committed.command_id));
    assert_eq!(event.metadata.causation_id, Some(committed.command_id));
    assert_eq!(event.metadata.actor.as_deref(), Some("bot"));
    assert!(event.metadata.extra.is_empty());

    // Each command gets its own id, hence its own correlation.
    assert_ne!(
        stored[0].metadata.correlation_id,
        Some(committed.command_id)
    );
}

// ---------------------------------------------------------------------------------------------
// Time travel

/// Lead `ID` opened at `start`, renamed at +1 min, contacted at +2 min, renamed at +3 min.
async fn lead_with_history(clock: &ManualClock) -> Repository<MemoryStore> {
    let repository = Repository::new(MemoryStore::with_clock(clock.clone()));
    let metadata = Metadata::new;
    repository
        .execute::<Lead, _>(&ID, OpenLead::named("Ada"), metadata())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let rename = |name: &str| Rename { name: name.into() };
    repository
        .execute::<Lead, _>(&ID, rename("Ada Byron"), metadata())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    repository
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Contacted), metadata())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    repository
        .execute::<Lead, _>(&ID, rename("Ada Lovelace"), metadata())
        .await
        .unwrap();
    repository
}

#[tokio::test]
async fn load_at_a_version_replays_events_up_to_it() {
    let clock = ManualClock::new(Timestamp::from_micros(1_700_000_000_000_000));
    let repository = lead_with_history(&clock).await;

    let at_none = repository
        .load_at::<Lead>(&ID, StreamVersion::NONE)
        .await
        .unwrap();
    assert_eq!(at_none.version, StreamVersion::NONE);
    assert_eq!(at_none.state, Lead::default());

    let at_two = repository
        .load_at::<Lead>(&ID, StreamVersion(2))
        .await
        .unwrap();
    assert_eq!(at_two.version, StreamVersion(2));
    assert_eq!(at_two.state.name, "Ada Byron");
    assert_eq!(at_two.state.status, Status::New);

    let at_three = repository
        .load_at::<Lead>(&ID, StreamVersion(3))
        .await
        .unwrap();
    assert_eq!(at_three.state.name, "Ada Byron");
    assert_eq!(at_three.state.status, Status::Contacted);

    let past_the_end = repository
        .load_at::<Lead>(&ID, StreamVersion(40))
        .await
        .unwrap();
    assert_eq!(past_the_end, repository.load::<Lead>(&ID).await.unwrap());
    assert_eq!(past_the_end.version, StreamVersion(4));
    assert_eq!(past_the_end.state.name, "Ada Lovelace");
}

#[tokio::test]
async fn load_at_a_time_replays_events_recorded_up_to_it() {
    let start = Timestamp::from_micros(1_700_000_000_000_000);
    let clock = ManualClock::new(start);
    let repository = lead_with_history(&clock).await;
    let at = |secs: u64| start + Duration::from_secs(secs);

    let before = repository
        .load_at_time::<Lead>(&ID, Timestamp::from_micros(start.as_micros() - 1))
        .await
        .unwrap();
    assert_eq!(before.version, StreamVersion::NONE);
    assert!(!before.state.opened);

    let opened = repository.load_at_time::<Lead>(&ID, start).await.unwrap();
    assert_eq!(opened.version, StreamVersion(1));
    assert_eq!(opened.state.name, "Ada");

    let just_before_contact = at(120).as_micros() - 1;
    let renamed = repository
        .load_at_time::<Lead>(&ID, Timestamp::from_micros(just_before_contact))
        .await
        .unwrap();
    assert_eq!(renamed.version, StreamVersion(2));
    assert_eq!(renamed.state.name, "Ada Byron");
    assert_eq!(renamed.state.status, Status::New);

    let contacted = repository.load_at_time::<Lead>(&ID, at(150)).await.unwrap();
    assert_eq!(contacted.version, StreamVersion(3));
    assert_eq!(contacted.state.status, Status::Contacted);
    assert_eq!(contacted.state.name, "Ada Byron");

    let now = repository
        .load_at_time::<Lead>(&ID, at(3600))
        .await
        .unwrap();
    assert_eq!(now, repository.load::<Lead>(&ID).await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Conflicts and retries

#[tokio::test]
async fn a_conflict_is_retried_against_the_events_appended_meanwhile() {
    let inner = opened_lead().await;
    let store = ConflictingStore::new(inner.clone(), 1, LeadEvent::renamed("Ada Byron").to_new());
    let repository = Repository::new(store.clone());

    let committed = repository
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Contacted), Metadata::new())
        .await
        .unwrap();
    assert_eq!(committed.attempts, 2);
    assert_eq!(store.attempts(), 2);
    assert_eq!(store.injected(), 1);
    assert_eq!(committed.stream_version, StreamVersion(3));
    assert_eq!(committed.events, [LeadEvent::status(Status::Contacted)]);

    let stored = lead_events(&inner, ID).await;
    let types: Vec<&str> = stored.iter().map(|e| &*e.event_type).collect();
    assert_eq!(
        types,
        [common::OPENED, common::RENAMED, common::STATUS_CHANGED]
    );
    assert_eq!(committed.event_ids, [stored[2].event_id]);
    assert_eq!(committed.global_position, Some(stored[2].global_position));

    let loaded = repository.load::<Lead>(&ID).await.unwrap();
    assert_eq!(loaded.version, StreamVersion(3));
    assert_eq!(loaded.state.name, "Ada Byron");
    assert_eq!(loaded.state.status, Status::Contacted);
}

#[tokio::test]
async fn a_retry_decides_again_and_may_find_nothing_left_to_do() {
    let inner = opened_lead().await;
    // Someone else made the very change this command asks for.
    let foreign = LeadEvent::status(Status::Contacted).to_new();
    let repository = Repository::new(ConflictingStore::new(inner.clone(), 1, foreign));

    let committed = repository
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Contacted), Metadata::new())
        .await
        .unwrap();
    assert!(committed.is_noop());
    assert_eq!(committed.attempts, 2);
    assert_eq!(committed.stream_version, StreamVersion(2));
    assert_eq!(committed.global_position, None);
    assert_eq!(inner.len(), 2);
}

#[tokio::test]
async fn a_retry_may_turn_into_a_rejection() {
    // Someone else opens the same lead between our load and our append.
    let inner = MemoryStore::new();
    let foreign = LeadEvent::opened("Bob").to_new();
    let store = ConflictingStore::new(inner.clone(), 1, foreign);
    let repository = Repository::new(store.clone());

    let result = repository
        .execute::<Lead, _>(&ID, OpenLead::named("Ada"), Metadata::new())
        .await;
    assert!(
        matches!(result, Err(ExecuteError::Rejected(LeadError::AlreadyOpen))),
        "{result:?}"
    );
    assert_eq!(store.attempts(), 1, "the second decision appended nothing");
    let loaded = repository.load::<Lead>(&ID).await.unwrap();
    assert_eq!(loaded.version, StreamVersion(1));
    assert_eq!(loaded.state.name, "Bob");
}

#[tokio::test]
async fn conflicts_that_never_stop_exhaust_the_retries() {
    let inner = opened_lead().await;
    let store = ConflictingStore::always(inner.clone(), LeadEvent::renamed("Someone").to_new());
    let repository = Repository::new(store.clone());

    let result = repository
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Contacted), Metadata::new())
        .await;
    let default_attempts = Repository::<MemoryStore>::DEFAULT_MAX_RETRIES + 1;
    match result {
        Err(ExecuteError::Conflict {
            stream,
            expected,
            actual,
            attempts,
            incompatible,
        }) => {
            assert_eq!(stream, Lead::stream_id(&ID).unwrap());
            assert_eq!(attempts, default_attempts);
            assert!(!incompatible);
            // Each attempt decided at the version the previous foreign event left; the last one
            // found one more.
            assert_eq!(expected, StreamVersion(u64::from(default_attempts)));
            assert_eq!(actual, StreamVersion(u64::from(default_attempts) + 1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.attempts(), default_attempts);
    // Only the foreign events were stored.
    let stored = lead_events(&inner, ID).await;
    assert_eq!(stored.len(), 1 + default_attempts as usize);
    assert!(
        stored[1..]
            .iter()
            .all(|e| &*e.event_type == common::RENAMED)
    );
}

#[tokio::test]
async fn the_number_of_retries_is_configurable() {
    for (retries, attempts) in [(0, 1), (1, 2), (5, 6)] {
        let inner = opened_lead().await;
        let store = ConflictingStore::always(inner.clone(), LeadEvent::renamed("X").to_new());
        let repository = Repository::new(store.clone()).with_max_retries(retries);
        let result = repository
            .execute::<Lead, _>(&ID, ChangeStatus(Status::Contacted), Metadata::new())
            .await;
        let Err(ExecuteError::Conflict {
            attempts: reported,
            expected,
            actual,
            ..
        }) = result
        else {
            panic!("expected a conflict with {retries} retries, got {result:?}")
        };
        assert_eq!(reported, attempts, "with {retries} retries");
        assert_eq!(store.attempts(), attempts);
        assert_eq!(expected, StreamVersion(u64::from(attempts)));
        assert_eq!(actual, StreamVersion(u64::from(attempts) + 1));
    }

    // Enough retries outlast a store that conflicts a limited number of times.
    let inner = opened_lead().await;
    let store = ConflictingStore::new(inner.clone(), 4, LeadEvent::renamed("X").to_new());
    let committed = Repository::new(store)
        .with_max_retries(4)
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Contacted), Metadata::new())
        .await
        .unwrap();
    assert_eq!(committed.attempts, 5);
    assert_eq!(committed.stream_version, StreamVersion(6));
}

#[tokio::test]
async fn events_declared_incompatible_conflict_at_once() {
    let inner = opened_lead().await;
    let store = ConflictingStore::new(
        inner.clone(),
        1,
        LeadEvent::status(Status::Contacted).to_new(),
    );
    let repository = Repository::new(store.clone());

    let result = repository
        .execute::<Lead, _>(&ID, SetFollowup::on("2030-03-01"), Metadata::new())
        .await;
    let Err(error) = result else {
        panic!("expected a conflict, got {result:?}")
    };
    let message = error.to_string();
    let ExecuteError::Conflict {
        stream,
        expected,
        actual,
        attempts,
        incompatible,
    } = error
    else {
        panic!("expected a conflict, got {error:?}")
    };
    assert!(incompatible);
    assert_eq!(attempts, 1, "no retry for incompatible events");
    assert_eq!(store.attempts(), 1);
    assert_eq!(stream.as_str(), "lead-1410");
    assert_eq!(expected, StreamVersion(1));
    assert_eq!(actual, StreamVersion(2));
    assert!(message.contains("lead-1410"), "{message}");
    assert!(message.contains("conflict with this command"), "{message}");

    // Nothing of ours was stored: the lead has no follow-up.
    let loaded = repository.load::<Lead>(&ID).await.unwrap();
    assert_eq!(loaded.version, StreamVersion(2));
    assert_eq!(loaded.state.followup, None);
    assert_eq!(loaded.state.status, Status::Contacted);
}

#[tokio::test]
async fn events_declared_compatible_are_retried_and_succeed() {
    let inner = opened_lead().await;
    let store = ConflictingStore::new(
        inner.clone(),
        1,
        LeadEvent::status(Status::Contacted).to_new(),
    );
    let repository = Repository::new(store.clone());

    // A rename racing a status change is fine.
    let committed = repository
        .execute::<Lead, _>(
            &ID,
            Rename {
                name: "Ada Byron".into(),
            },
            Metadata::new(),
        )
        .await
        .unwrap();
    assert_eq!(committed.attempts, 2);
    assert_eq!(committed.stream_version, StreamVersion(3));

    let loaded = repository.load::<Lead>(&ID).await.unwrap();
    assert_eq!(loaded.state.name, "Ada Byron");
    assert_eq!(loaded.state.status, Status::Contacted);

    // And a follow-up racing a rename is too: only StatusChanged is incompatible with it.
    let store = ConflictingStore::new(inner.clone(), 1, LeadEvent::renamed("Ada L.").to_new());
    let committed = Repository::new(store)
        .execute::<Lead, _>(&ID, SetFollowup::on("2030-03-01"), Metadata::new())
        .await
        .unwrap();
    assert_eq!(committed.attempts, 2);
    assert_eq!(committed.stream_version, StreamVersion(5));
}

// ---------------------------------------------------------------------------------------------
// Snapshots

fn tally(id: &str) -> String {
    id.to_owned()
}

fn snapshot_repository(store: &MemoryStore) -> Repository<MemoryStore, MemoryStore> {
    Repository::new(store.clone()).with_snapshots(store.clone())
}

async fn stored_snapshot(store: &MemoryStore, id: &str) -> Option<Snapshot> {
    let stream = Tally::stream_id(&tally(id)).unwrap();
    store.load_snapshot(&stream).await.unwrap()
}

fn state_of(snapshot: &Snapshot) -> Tally {
    serde_json::from_str(&snapshot.payload).unwrap()
}

#[tokio::test]
async fn a_snapshot_is_taken_whenever_the_version_crosses_a_multiple_of_every() {
    let store = MemoryStore::new();
    let repository = snapshot_repository(&store);
    let id = tally("sold");
    let add = |amounts: &[i64]| Add(amounts.to_vec());

    repository
        .execute::<Tally, _>(&id, add(&[1]), Metadata::new())
        .await
        .unwrap();
    assert_eq!(stored_snapshot(&store, "sold").await, None);

    repository
        .execute::<Tally, _>(&id, add(&[2]), Metadata::new())
        .await
        .unwrap();
    let at_two = stored_snapshot(&store, "sold").await.unwrap();
    assert_eq!(at_two.version, StreamVersion(2));
    assert_eq!(at_two.state_version, 1);
    assert_eq!(at_two.stream.as_str(), "tally-sold");
    assert_eq!(state_of(&at_two), Tally { total: 3, count: 2 });

    repository
        .execute::<Tally, _>(&id, add(&[4]), Metadata::new())
        .await
        .unwrap();
    assert_eq!(
        stored_snapshot(&store, "sold").await.unwrap().version,
        StreamVersion(2)
    );

    // A batch of two from version 3 to 5 crosses 4.
    repository
        .execute::<Tally, _>(&id, add(&[8, 16]), Metadata::new())
        .await
        .unwrap();
    let at_five = stored_snapshot(&store, "sold").await.unwrap();
    assert_eq!(at_five.version, StreamVersion(5));
    assert_eq!(
        state_of(&at_five),
        Tally {
            total: 31,
            count: 5
        }
    );

    let loaded = repository.load::<Tally>(&id).await.unwrap();
    assert_eq!(loaded.version, StreamVersion(5));
    assert_eq!(
        loaded.state,
        Tally {
            total: 31,
            count: 5
        }
    );
}

/// A stream truncated up to its snapshot still loads and takes commands; time travel to
/// before the cut and a load ignoring the snapshot say the history is archived; retention
/// keeps a stream's tail but never cuts past its snapshot.
#[tokio::test]
async fn a_truncated_stream_loads_from_the_snapshot_that_covers_the_cut() {
    use eventsrc::store::{Lifecycle, Retention, apply_retention};
    let store = MemoryStore::new();
    let repository = snapshot_repository(&store);
    let id = tally("sold");
    for amount in 1..=5 {
        repository
            .execute::<Tally, _>(&id, Add(vec![amount]), Metadata::new())
            .await
            .unwrap();
    }
    // Snapshots at 2 and 4 (every 2): retention keeping the last event cuts before 5.
    let policy = Retention::category("tally").keep_last(1);
    let report = apply_retention(&store, &store, &policy).await.unwrap();
    assert_eq!(
        (report.truncated, report.archived, report.held_by_snapshot),
        (1, 4, 0)
    );
    let stream = Tally::stream_id(&id).unwrap();
    assert_eq!(store.read_archive(&stream).await.unwrap().len(), 4);

    let loaded = repository.load::<Tally>(&id).await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (15, StreamVersion(5)));
    let committed = repository
        .execute::<Tally, _>(&id, Add(vec![10]), Metadata::new())
        .await
        .unwrap();
    assert_eq!(committed.stream_version, StreamVersion(6));

    let before_cut = repository.load_at::<Tally>(&id, StreamVersion(3)).await;
    assert!(
        matches!(
            before_cut,
            Err(LoadError::Truncated {
                kept_from: StreamVersion(5),
                ..
            })
        ),
        "{before_cut:?}"
    );
    let by_time = repository
        .load_at_time::<Tally>(&id, Timestamp::now())
        .await;
    assert!(
        matches!(by_time, Err(LoadError::Truncated { .. })),
        "{by_time:?}"
    );
    let without_snapshots = Repository::new(store.clone()).load::<Tally>(&id).await;
    assert!(
        matches!(without_snapshots, Err(LoadError::Truncated { .. })),
        "{without_snapshots:?}"
    );
}

#[tokio::test]
async fn a_repository_without_a_snapshot_store_takes_none() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    let id = tally("sold");
    for amount in 1..=4 {
        repository
            .execute::<Tally, _>(&id, Add(vec![amount]), Metadata::new())
            .await
            .unwrap();
    }
    assert_eq!(stored_snapshot(&store, "sold").await, None);
    // Nor does `snapshot` by hand: there is nowhere to keep one.
    repository.snapshot::<Tally>(&id).await.unwrap();
    assert_eq!(stored_snapshot(&store, "sold").await, None);
}

/// Tally "sold" with events 1, 2, 5 (total 8) and no snapshot, plus a hand-written snapshot at
/// version 2 claiming a total of 1000 over 2 events.
async fn tally_with_a_forged_snapshot(state_version: u32, payload: &str) -> MemoryStore {
    let store = MemoryStore::new();
    let plain = Repository::new(store.clone());
    let id = tally("sold");
    for amount in [1, 2, 5] {
        plain
            .execute::<Tally, _>(&id, Add(vec![amount]), Metadata::new())
            .await
            .unwrap();
    }
    store
        .save_snapshot(Snapshot {
            stream: Tally::stream_id(&id).unwrap(),
            version: StreamVersion(2),
            state_version,
            payload: payload.into(),
            taken_at: Timestamp::now(),
        })
        .await
        .unwrap();
    store
}

const FORGED: &str = r#"{"total":1000,"count":2}"#;

#[tokio::test]
async fn loading_uses_the_snapshot_and_the_events_after_it() {
    let store = tally_with_a_forged_snapshot(1, FORGED).await;
    let id = tally("sold");

    let loaded = snapshot_repository(&store)
        .load::<Tally>(&id)
        .await
        .unwrap();
    assert_eq!(loaded.version, StreamVersion(3));
    assert_eq!(
        loaded.state,
        Tally {
            total: 1005,
            count: 3
        }
    );

    // A repository without snapshots replays every event.
    let replayed = Repository::new(store.clone())
        .load::<Tally>(&id)
        .await
        .unwrap();
    assert_eq!(replayed.state, Tally { total: 8, count: 3 });

    // Executing decides against the snapshot-based state too.
    let committed = snapshot_repository(&store)
        .execute::<Tally, _>(&id, Add(vec![10]), Metadata::new())
        .await
        .unwrap();
    assert_eq!(committed.stream_version, StreamVersion(4));
    let at_four = stored_snapshot(&store, "sold").await.unwrap();
    assert_eq!(at_four.version, StreamVersion(4));
    assert_eq!(
        state_of(&at_four),
        Tally {
            total: 1015,
            count: 4
        }
    );
}

#[tokio::test]
async fn a_snapshot_of_another_state_version_is_ignored() {
    let store = tally_with_a_forged_snapshot(2, FORGED).await;
    let loaded = snapshot_repository(&store)
        .load::<Tally>(&tally("sold"))
        .await
        .unwrap();
    assert_eq!(loaded.version, StreamVersion(3));
    assert_eq!(loaded.state, Tally { total: 8, count: 3 });
}

#[tokio::test]
async fn a_snapshot_that_does_not_decode_is_ignored() {
    let store = tally_with_a_forged_snapshot(1, r#"{"sum":"lots"}"#).await;
    let loaded = snapshot_repository(&store)
        .load::<Tally>(&tally("sold"))
        .await
        .unwrap();
    assert_eq!(loaded.state, Tally { total: 8, count: 3 });
}

#[tokio::test]
async fn time_travel_uses_a_snapshot_only_when_it_is_not_too_new() {
    let store = tally_with_a_forged_snapshot(1, FORGED).await;
    let repository = snapshot_repository(&store);
    let id = tally("sold");

    let at_one = repository
        .load_at::<Tally>(&id, StreamVersion(1))
        .await
        .unwrap();
    assert_eq!(at_one.version, StreamVersion(1));
    assert_eq!(at_one.state, Tally { total: 1, count: 1 });

    let at_two = repository
        .load_at::<Tally>(&id, StreamVersion(2))
        .await
        .unwrap();
    assert_eq!(at_two.version, StreamVersion(2));
    assert_eq!(
        at_two.state,
        Tally {
            total: 1000,
            count: 2
        }
    );

    let at_three = repository
        .load_at::<Tally>(&id, StreamVersion(3))
        .await
        .unwrap();
    assert_eq!(
        at_three.state,
        Tally {
            total: 1005,
            count: 3
        }
    );

    // Loading by time never uses a snapshot.
    let by_time = repository
        .load_at_time::<Tally>(&id, Timestamp::now() + Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(by_time.version, StreamVersion(3));
    assert_eq!(by_time.state, Tally { total: 8, count: 3 });
}

#[tokio::test]
async fn a_snapshot_can_be_taken_by_hand() {
    let store = MemoryStore::new();
    let repository = snapshot_repository(&store);
    let id = tally("sold");

    assert_eq!(repository.snapshot::<Tally>(&id).await.unwrap(), None);
    assert_eq!(stored_snapshot(&store, "sold").await, None);

    repository
        .execute::<Tally, _>(&id, Add(vec![3]), Metadata::new())
        .await
        .unwrap();
    assert_eq!(stored_snapshot(&store, "sold").await, None);
    assert_eq!(
        repository.snapshot::<Tally>(&id).await.unwrap(),
        Some(StreamVersion(1))
    );
    let taken = stored_snapshot(&store, "sold").await.unwrap();
    assert_eq!(taken.version, StreamVersion(1));
    assert_eq!(state_of(&taken), Tally { total: 3, count: 1 });

    // An aggregate without a snapshot format never snapshots.
    let leads = opened_lead().await;
    let lead_repository = snapshot_repository(&leads);
    assert_eq!(lead_repository.snapshot::<Lead>(&ID).await.unwrap(), None);
    let lead_stream = Lead::stream_id(&ID).unwrap();
    assert_eq!(leads.load_snapshot(&lead_stream).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Undecodable events

/// Lead `ID` opened, then a raw event appended behind the code's back; returns the store and
/// the raw event.
async fn lead_with_raw(raw: NewEvent) -> (MemoryStore, NewEvent) {
    let store = opened_lead().await;
    store
        .append(
            &Lead::stream_id(&ID).unwrap(),
            ExpectedVersion::Any,
            vec![raw.clone()],
        )
        .await
        .unwrap();
    (store, raw)
}

#[track_caller]
fn assert_names_the_record(error: &RecordDecodeError, raw: &NewEvent, position: GlobalPosition) {
    assert_eq!(error.event_id, raw.event_id);
    assert_eq!(error.stream.as_str(), "lead-1410");
    assert_eq!(error.stream_version, StreamVersion(2));
    assert_eq!(error.global_position, position);
    let message = error.to_string();
    assert!(message.contains(&raw.event_id.to_string()), "{message}");
    assert!(message.contains("lead-1410"), "{message}");
    assert!(message.contains(&*raw.event_type), "{message}");
}

async fn load_error(store: &MemoryStore) -> RecordDecodeError {
    match Repository::new(store.clone()).load::<Lead>(&ID).await {
        Err(LoadError::Decode(error)) => error,
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_event_type_is_a_decode_error_naming_the_record() {
    let (store, raw) = lead_with_raw(NewEvent::raw("Unknown", 1, "{}")).await;
    let error = load_error(&store).await;
    assert_names_the_record(&error, &raw, store.head_position().await.unwrap());
    assert!(
        matches!(&error.source, DecodeError::UnknownType { event_type, version: 1 } if event_type == "Unknown"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_malformed_payload_is_a_decode_error_naming_the_record() {
    let (store, raw) = lead_with_raw(NewEvent::raw(common::RENAMED, 1, r#"{"name":"#)).await;
    let error = load_error(&store).await;
    assert_names_the_record(&error, &raw, store.head_position().await.unwrap());
    assert!(
        matches!(&error.source, DecodeError::Malformed { version: 1, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("version 1"), "{error}");

    // Valid JSON of the wrong shape is malformed too.
    let (store, raw) = lead_with_raw(NewEvent::raw(common::RENAMED, 1, r#"{"nom":"x"}"#)).await;
    let error = load_error(&store).await;
    assert_names_the_record(&error, &raw, store.head_position().await.unwrap());
    assert!(matches!(&error.source, DecodeError::Malformed { .. }));
}

#[tokio::test]
async fn a_payload_from_a_future_version_is_a_decode_error_naming_the_record() {
    let (store, raw) = lead_with_raw(NewEvent::raw(common::RENAMED, 7, r#"{"name":"x"}"#)).await;
    let error = load_error(&store).await;
    assert_names_the_record(&error, &raw, store.head_position().await.unwrap());
    assert!(
        matches!(
            &error.source,
            DecodeError::FutureVersion {
                version: 7,
                current: 1,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("schema version 7"), "{error}");
}

#[tokio::test]
async fn an_undecodable_event_stops_execute_and_time_travel_past_it_but_not_before_it() {
    let clock = ManualClock::new(Timestamp::from_micros(1_000_000));
    let store = MemoryStore::with_clock(clock.clone());
    let repository = Repository::new(store.clone());
    repository
        .execute::<Lead, _>(&ID, OpenLead::named("Ada"), Metadata::new())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    store
        .append(
            &Lead::stream_id(&ID).unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::raw(common::RENAMED, 9, "{}")],
        )
        .await
        .unwrap();

    let executed = repository
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Contacted), Metadata::new())
        .await;
    assert!(
        matches!(
            &executed,
            Err(ExecuteError::Load(LoadError::Decode(e))) if e.stream_version == StreamVersion(2)
        ),
        "{executed:?}"
    );
    assert_eq!(store.len(), 2);

    let before = repository
        .load_at::<Lead>(&ID, StreamVersion(1))
        .await
        .unwrap();
    assert_eq!(before.state.name, "Ada");
    let past = repository.load_at::<Lead>(&ID, StreamVersion(2)).await;
    assert!(matches!(past, Err(LoadError::Decode(_))), "{past:?}");

    let by_time = repository
        .load_at_time::<Lead>(&ID, Timestamp::from_micros(1_000_000))
        .await
        .unwrap();
    assert_eq!(by_time.version, StreamVersion(1));
    let by_time_past = repository
        .load_at_time::<Lead>(&ID, Timestamp::from_micros(2_000_000))
        .await;
    assert!(
        matches!(by_time_past, Err(LoadError::Decode(_))),
        "{by_time_past:?}"
    );
}

// The global log carries what the repository appended, readable by any reader.
#[tokio::test]
async fn committed_events_decode_from_the_global_log() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    repository
        .execute::<Lead, _>(&ID, OpenLead::named("Ada"), Metadata::new())
        .await
        .unwrap();
    repository
        .execute::<Tally, _>(&tally("sold"), Add(vec![2, 3]), Metadata::new())
        .await
        .unwrap();

    let tallies = store
        .read_all(ReadAll::after(GlobalPosition::START).categories([Tally::TYPE]))
        .await
        .unwrap();
    let amounts: Vec<Added> = tallies.iter().map(|e| e.decode().unwrap()).collect();
    assert_eq!(amounts, [Added { amount: 2 }, Added { amount: 3 }]);

    let leads = store
        .read_all(ReadAll::after(GlobalPosition::START).categories([Lead::TYPE]))
        .await
        .unwrap();
    assert_eq!(
        leads[0].decode::<LeadEvent>().unwrap(),
        LeadEvent::opened("Ada")
    );
}

// ---------------------------------------------------------------------------------------------
// Gaps in a stream's versions

/// The versions a gap error names, after checking it names lead `ID`'s stream.
#[track_caller]
fn gap(error: LoadError) -> (StreamVersion, StreamVersion) {
    match error {
        LoadError::Gap {
            stream,
            expected,
            found,
        } => {
            assert_eq!(stream, Lead::stream_id(&ID).unwrap());
            (expected, found)
        }
        other => panic!("expected a gap, got {other:?}"),
    }
}

#[tokio::test]
async fn a_gap_in_the_versions_fails_every_fold_of_the_stream() {
    let clock = ManualClock::new(Timestamp::from_micros(1_000_000));
    let store = lead_with_history(&clock).await.store().clone();
    let gapped = Repository::new(GappedStore::new(store.clone(), [2]));
    let missing_second = (StreamVersion(2), StreamVersion(3));

    assert_eq!(
        gap(gapped.load::<Lead>(&ID).await.unwrap_err()),
        missing_second
    );
    assert_eq!(
        gap(gapped
            .load_at::<Lead>(&ID, StreamVersion(3))
            .await
            .unwrap_err()),
        missing_second
    );
    assert_eq!(
        gap(gapped
            .load_at_time::<Lead>(&ID, clock.now())
            .await
            .unwrap_err()),
        missing_second
    );
    // Before the gap, the history is whole.
    let first = gapped.load_at::<Lead>(&ID, StreamVersion(1)).await.unwrap();
    assert_eq!(first.version, StreamVersion(1));
    // A command is not decided on part of the history, and nothing is appended.
    match gapped
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Closed), Metadata::new())
        .await
    {
        Err(ExecuteError::Load(error)) => assert_eq!(gap(error), missing_second),
        other => panic!("expected a gap, got {other:?}"),
    }
    assert_eq!(lead_events(&store, ID).await.len(), 4);

    // The first event lost: the stream starts late.
    let late = Repository::new(GappedStore::new(store.clone(), [1]));
    let error = late.load::<Lead>(&ID).await.unwrap_err();
    let message = error.to_string();
    assert_eq!(gap(error), (StreamVersion(1), StreamVersion(2)));
    assert!(
        message.contains("`lead-1410` holds version 2 where version 1 should come next"),
        "{message}"
    );
    // The whole store loads as before.
    assert_eq!(
        Repository::new(store)
            .load::<Lead>(&ID)
            .await
            .unwrap()
            .version,
        StreamVersion(4)
    );
}

#[tokio::test]
async fn a_gap_met_while_catching_up_after_a_conflict_fails_the_command() {
    let inner = opened_lead().await;
    // Two appends of someone else's rename, at versions 2 and 3; version 2 is lost to reads.
    let racing = ConflictingStore::new(inner.clone(), 2, LeadEvent::renamed("Ada Byron").to_new());
    let repository = Repository::new(GappedStore::new(racing, [2]));
    match repository
        .execute::<Lead, _>(&ID, ChangeStatus(Status::Contacted), Metadata::new())
        .await
    {
        Err(ExecuteError::Load(error)) => {
            assert_eq!(gap(error), (StreamVersion(2), StreamVersion(3)));
        }
        other => panic!("expected a gap, got {other:?}"),
    }
    // Only the two renames were appended: the command itself never was.
    let types: Vec<String> = lead_events(&inner, ID)
        .await
        .iter()
        .map(|e| e.event_type.to_string())
        .collect();
    assert_eq!(types, [common::OPENED, common::RENAMED, common::RENAMED]);
}

#[tokio::test]
async fn a_gap_after_a_snapshot_fails_the_load() {
    let store = tally_with_a_forged_snapshot(1, FORGED).await;
    let id = tally("sold");
    Repository::new(store.clone())
        .execute::<Tally, _>(&id, Add(vec![3]), Metadata::new())
        .await
        .unwrap();
    // The snapshot covers versions 1 and 2; the load reads from 3, which is lost.
    let gapped = Repository::new(GappedStore::new(store.clone(), [3])).with_snapshots(store);
    match gapped.load::<Tally>(&id).await {
        Err(LoadError::Gap {
            stream,
            expected,
            found,
        }) => {
            assert_eq!(stream, Tally::stream_id(&id).unwrap());
            assert_eq!((expected, found), (StreamVersion(3), StreamVersion(4)));
        }
        other => panic!("expected a gap, got {other:?}"),
    }
}
