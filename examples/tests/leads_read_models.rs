//! Specs for the sales leads' read models in SQLite tables: commands go through a `Repository`, a
//! `Runner` drives the `SqliteReadModel`s, and the tables are queried. LeadSearch finds a lead by
//! every e-mail and phone it ever had; the status-change log keeps every change with the status it
//! left; nothing is applied twice, not after a restart of the process nor when the log is replayed
//! into the same tables; a command is readable once the live runners have seen it; a rebuild beside
//! the live table is switched in with the same answers; a log in memory works with the tables in a
//! SQLite database beside it; and the demo's read models continue run after run.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eventsrc::RunError;
use eventsrc::Store;
use eventsrc::time::ManualClock;
use eventsrc::{
    Aggregate, CheckpointStore, EventStore, ExpectedVersion, GlobalPosition, MemoryStore, Metadata,
    NewEvent, Repository, StreamId, StreamVersion, Timestamp,
};
use eventsrc_examples::leads::read_models::{
    Contact, ContactKind, LeadProjectionError, LeadReadModels, LeadSearch, Placement, REBUILD_NAME,
    REBUILD_TABLE, StatusChange, StatusLog, Transition, WAIT, tell_rebuild, tell_with_read_models,
};
use eventsrc_examples::leads::story::{self, LILYANA, STEFAN};
use eventsrc_examples::leads::{
    ChangeContactInformation, ChangeStatus, InitializeLead, Lead, LeadId, LeadStatus, SetFollowup,
};
use eventsrc_sqlite::{SqliteEventStore, SqliteOptions, SqliteProjection, SqliteReadModel};

// --- two leads, written through a repository -----------------------------------------------------

/// 09:00 UTC on 2016-11-14 plus `days`: each command of these specs happens on its own day.
fn day(days: i64) -> Timestamp {
    Timestamp::from_micros((1_479_114_000 + days * 86_400) * 1_000_000)
}

/// Sends the commands of Stefan Ivanov's story for lead 1410, one a day from `day(0)`, as `maria`:
/// versions 1-2 initialize, 3 the first contact, 4-5 the follow-up, 6 the new contact, 7 the
/// conversion.
async fn stefans_story<S: EventStore>(repository: &Repository<S>, clock: &ManualClock) {
    let lead = STEFAN;
    clock.set(day(0));
    send(repository, InitializeLead { id: lead }).await;
    clock.set(day(1));
    send(
        repository,
        contact(lead, "s.ivanov@example.com", "03-27243457"),
    )
    .await;
    clock.set(day(2));
    let on = "2016-11-23".parse().unwrap();
    send(repository, SetFollowup { lead, on }).await;
    clock.set(day(9));
    send(
        repository,
        contact(lead, "stefan@example.bg", "050-8139904"),
    )
    .await;
    clock.set(day(10));
    let status = LeadStatus::Converted;
    send(repository, ChangeStatus { lead, status }).await;
}

/// Lead 1406: initialized on `day(20)`, given its contact, closed and reopened.
async fn lilyanas_story<S: EventStore>(repository: &Repository<S>, clock: &ManualClock) {
    let lead = LILYANA;
    clock.set(day(20));
    send(repository, InitializeLead { id: lead }).await;
    send(
        repository,
        contact(lead, "l.yankov@example.com", "04-6092212"),
    )
    .await;
    clock.set(day(21));
    let status = LeadStatus::Closed;
    send(repository, ChangeStatus { lead, status }).await;
    clock.set(day(22));
    let status = LeadStatus::Available;
    send(repository, ChangeStatus { lead, status }).await;
}

fn contact(lead: LeadId, email: &str, phone: &str) -> ChangeContactInformation {
    ChangeContactInformation {
        lead,
        email: email.into(),
        phone: phone.into(),
    }
}

async fn send<S, C>(repository: &Repository<S>, command: C) -> Option<GlobalPosition>
where
    S: EventStore,
    C: eventsrc::AggregateCommand<Aggregate = Lead>,
    Lead: eventsrc::Handle<C>,
{
    let metadata = Metadata::new().with_actor("maria");
    let committed = repository.send(command, metadata).await.unwrap();
    committed.global_position
}

/// A SQLite store in memory whose `recorded_at` is `clock`'s.
async fn sqlite_with(clock: &ManualClock) -> SqliteEventStore {
    let options = SqliteOptions::default().clock(clock.clone());
    SqliteEventStore::open_in_memory_with(options)
        .await
        .unwrap()
}

/// Every row of `table`, ordered, each column as SQLite shows its value.
async fn rows(store: &SqliteEventStore, table: &str) -> Vec<Vec<String>> {
    let sql = format!("SELECT * FROM {table} ORDER BY 1, 2, 3");
    store
        .read_with(move |db| {
            let mut statement = db.prepare(&sql)?;
            let columns = statement.column_count();
            let rows = statement.query_map([], |row| {
                (0..columns)
                    .map(|i| row.get_ref(i).map(|value| format!("{value:?}")))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap()
}

/// The names of the tables and indexes whose names start with `prefix`, sorted.
async fn schema_names(store: &SqliteEventStore, prefix: &str) -> Vec<String> {
    let pattern = format!("{prefix}%");
    store
        .read_with(move |db| {
            let mut statement = db.prepare(
                "SELECT type || ' ' || name FROM sqlite_master WHERE name LIKE ?1 ORDER BY name",
            )?;
            let names = statement.query_map([pattern], |row| row.get(0))?;
            names.collect::<Result<Vec<String>, _>>()
        })
        .await
        .unwrap()
}

fn found(leads: &[LeadId]) -> Vec<LeadId> {
    leads.to_vec()
}

// --- LeadSearch -------------------------------------------------------------------------------------

#[tokio::test]
async fn every_email_and_phone_a_lead_ever_had_finds_it() {
    let clock = story::clock();
    let store = sqlite_with(&clock).await;
    let repository = Repository::new(store.clone());
    stefans_story(&repository, &clock).await;
    lilyanas_story(&repository, &clock).await;
    let read_models = LeadReadModels::in_log_database(store.clone());
    read_models.catch_up().await.unwrap();

    let find = |text: &'static str| {
        let store = store.clone();
        async move { LeadSearch::find(&store, text).await.unwrap() }
    };
    // The old address and number, which the lead's current row no longer knows.
    assert_eq!(find("s.ivanov@example.com").await, found(&[STEFAN]));
    assert_eq!(find("03-27243457").await, found(&[STEFAN]));
    // E-mails in any case, phones by their digits.
    assert_eq!(find(" S.Ivanov@Example.COM ").await, found(&[STEFAN]));
    assert_eq!(find("(03) 2724 3457").await, found(&[STEFAN]));
    assert_eq!(find("0508139904").await, found(&[STEFAN]));
    assert_eq!(find("l.yankov@example.com").await, found(&[LILYANA]));
    // Neither a value nobody had, nor a part of one.
    assert_eq!(find("0888 123 456").await, found(&[]));
    assert_eq!(find("example.com").await, found(&[]));
    assert_eq!(find("").await, found(&[]));

    let contacts = LeadSearch::contacts_of(&store, STEFAN).await.unwrap();
    let contact = |kind, value: &str, first: u64, seen: i64, current| Contact {
        lead: STEFAN,
        kind,
        value: value.to_owned(),
        first_version: StreamVersion(first),
        first_seen: day(seen),
        last_version: StreamVersion(first),
        current,
    };
    assert_eq!(
        contacts,
        [
            contact(ContactKind::Email, "s.ivanov@example.com", 3, 1, false),
            contact(ContactKind::Phone, "03-27243457", 3, 1, false),
            contact(ContactKind::Email, "stefan@example.bg", 6, 9, true),
            contact(ContactKind::Phone, "050-8139904", 6, 9, true),
        ]
    );
    assert!(
        LeadSearch::contacts_of(&store, LeadId(7))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_number_two_leads_had_finds_both() {
    let clock = story::clock();
    let store = sqlite_with(&clock).await;
    let repository = Repository::new(store.clone());
    for lead in [LeadId(1406), LeadId(1410)] {
        send(&repository, InitializeLead { id: lead }).await;
    }
    // One office switchboard, written two ways.
    let office = |lead, email| contact(lead, email, "+359 2 123 456");
    send(&repository, office(LeadId(1410), "a@example.com")).await;
    send(
        &repository,
        contact(LeadId(1406), "b@example.com", "(+359) 2-123-456"),
    )
    .await;
    LeadReadModels::in_log_database(store.clone())
        .catch_up()
        .await
        .unwrap();
    assert_eq!(
        LeadSearch::find(&store, "3592123456").await.unwrap(),
        [LeadId(1406), LeadId(1410)]
    );
}

#[tokio::test]
async fn a_value_given_again_keeps_its_first_sighting_and_is_current_again() {
    let clock = story::clock();
    let store = sqlite_with(&clock).await;
    let repository = Repository::new(store.clone());
    let lead = STEFAN;
    clock.set(day(0));
    send(&repository, InitializeLead { id: lead }).await;
    send(&repository, contact(lead, "a@example.com", "111")).await;
    clock.set(day(1));
    send(&repository, contact(lead, "b@example.com", "111")).await;
    clock.set(day(2));
    send(&repository, contact(lead, "a@example.com", "222")).await;
    LeadReadModels::in_log_database(store.clone())
        .catch_up()
        .await
        .unwrap();

    let contacts = LeadSearch::contacts_of(&store, lead).await.unwrap();
    let summary: Vec<(&str, u64, Timestamp, u64, bool)> = contacts
        .iter()
        .map(|c| {
            let (first, last) = (c.first_version.get(), c.last_version.get());
            (c.value.as_str(), first, c.first_seen, last, c.current)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a@example.com", 3, day(0), 5, true),
            ("111", 3, day(0), 4, false),
            ("b@example.com", 4, day(1), 4, false),
            ("222", 5, day(2), 5, true),
        ]
    );
}

#[tokio::test]
async fn a_version_1_payload_with_one_contact_adds_one_row() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    let stream = Lead::stream_id(&LILYANA).unwrap();
    let events = vec![
        NewEvent::raw("LeadWasInitialized", 1, r#"{"id":1406}"#),
        NewEvent::raw(
            "ContactInformationChanged",
            1,
            r#"{"contact":"04-6092212"}"#,
        ),
        NewEvent::raw(
            "ContactInformationChanged",
            1,
            r#"{"contact":"l.yankov@example.com"}"#,
        ),
    ];
    store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    LeadReadModels::in_log_database(store.clone())
        .catch_up()
        .await
        .unwrap();

    let contacts = LeadSearch::contacts_of(&store, LILYANA).await.unwrap();
    let summary: Vec<(ContactKind, &str, bool)> = contacts
        .iter()
        .map(|c| (c.kind, c.value.as_str(), c.current))
        .collect();
    // The latest change set the e-mail and left the phone empty: the lead has no phone now.
    assert_eq!(
        summary,
        [
            (ContactKind::Phone, "04-6092212", false),
            (ContactKind::Email, "l.yankov@example.com", true),
        ]
    );
    assert_eq!(
        LeadSearch::find(&store, "04-6092212").await.unwrap(),
        [LILYANA]
    );
}

#[tokio::test]
async fn a_contact_change_outside_a_lead_stream_stops_the_runner_naming_the_event() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    let stream = StreamId::new("customer", 7).unwrap();
    let changed = NewEvent::raw(
        "ContactInformationChanged",
        2,
        r#"{"email":"x@example.com","phone":"1"}"#,
    );
    store
        .append(&stream, ExpectedVersion::NoStream, vec![changed])
        .await
        .unwrap();
    let error = LeadReadModels::in_log_database(store.clone())
        .lead_search()
        .catch_up()
        .await
        .unwrap_err();
    match &error {
        RunError::Handle {
            consumer,
            stream: at,
            source,
            ..
        } => {
            assert_eq!(consumer, LeadSearch::NAME);
            assert_eq!(at, &stream);
            let refused = source.downcast_ref::<LeadProjectionError>().unwrap();
            assert!(matches!(refused, LeadProjectionError::NotALead { .. }));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("customer-7"), "{error}");
    // Nothing was applied, and the checkpoint did not move.
    assert_eq!(store.load_checkpoint(LeadSearch::NAME).await.unwrap(), None);
    assert!(rows(&store, LeadSearch::TABLE).await.is_empty());
}

// --- the status-change log ------------------------------------------------------------------------

#[tokio::test]
async fn the_status_log_keeps_every_change_with_the_status_it_left() {
    let clock = story::clock();
    let store = sqlite_with(&clock).await;
    let repository = Repository::new(store.clone());
    stefans_story(&repository, &clock).await;
    lilyanas_story(&repository, &clock).await;
    LeadReadModels::in_log_database(store.clone())
        .catch_up()
        .await
        .unwrap();

    let change = |lead, version, from, to, at| StatusChange {
        lead,
        version: StreamVersion(version),
        from,
        to,
        at: day(at),
        actor: Some("maria".to_owned()),
    };
    use LeadStatus::{Available, Closed, Converted, FollowUp};
    assert_eq!(
        StatusLog::history(&store, STEFAN).await.unwrap(),
        [
            change(STEFAN, 2, None, Available, 0),
            change(STEFAN, 4, Some(Available), FollowUp, 2),
            change(STEFAN, 7, Some(FollowUp), Converted, 10),
        ]
    );
    assert_eq!(
        StatusLog::history(&store, LILYANA).await.unwrap(),
        [
            change(LILYANA, 2, None, Available, 20),
            change(LILYANA, 4, Some(Available), Closed, 21),
            change(LILYANA, 5, Some(Closed), Available, 22),
        ]
    );
    let transition = |from, to, count| Transition { from, to, count };
    assert_eq!(
        StatusLog::transitions(&store).await.unwrap(),
        [
            transition(None, Available, 2),
            transition(Some(Available), Closed, 1),
            transition(Some(Available), FollowUp, 1),
            transition(Some(Closed), Available, 1),
            transition(Some(FollowUp), Converted, 1),
        ]
    );
}

// --- exactly once ---------------------------------------------------------------------------------

/// A database file in the temp directory, removed (with SQLite's `-wal` and `-shm` files) when
/// dropped.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let file = format!("eventsrc-read-models-{}-{name}.db", std::process::id());
        let db = Self(std::env::temp_dir().join(file));
        db.remove();
        db
    }

    fn remove(&self) {
        let _ = eventsrc_sqlite::remove_database(&self.0);
    }

    async fn open(&self, clock: &ManualClock) -> SqliteEventStore {
        let options = SqliteOptions::default().clock(clock.clone());
        SqliteEventStore::open_with(&self.0, options).await.unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

#[tokio::test]
async fn a_restarted_process_continues_from_the_checkpoints_and_applies_nothing_twice() {
    let db = TempDb::new("restart");
    let clock = story::clock();
    let store = db.open(&clock).await;
    stefans_story(&Repository::new(store.clone()), &clock).await;
    let first = LeadReadModels::in_log_database(store.clone())
        .catch_up()
        .await
        .unwrap();
    assert_eq!(
        (first.lead_search.handled, first.status_log.handled),
        (2, 3)
    );
    let search_rows = rows(&store, LeadSearch::TABLE).await;
    let log_rows = rows(&store, StatusLog::TABLE).await;
    assert_eq!((search_rows.len(), log_rows.len()), (4, 3));
    drop(store);

    // A new process: the same file, new runners.
    let store = db.open(&clock).await;
    let read_models = LeadReadModels::in_log_database(store.clone());
    let checkpoints = read_models.checkpoints().await.unwrap();
    assert_eq!(checkpoints.lead_search, first.lead_search.position);
    assert_eq!(checkpoints.status_log, first.status_log.position);
    let again = read_models.catch_up().await.unwrap();
    assert_eq!(
        (again.lead_search.handled, again.status_log.handled),
        (0, 0)
    );
    assert_eq!(rows(&store, LeadSearch::TABLE).await, search_rows);
    assert_eq!(rows(&store, StatusLog::TABLE).await, log_rows);

    // What is appended after the restart is read, and only that.
    lilyanas_story(&Repository::new(store.clone()), &clock).await;
    let more = read_models.catch_up().await.unwrap();
    assert_eq!((more.lead_search.handled, more.status_log.handled), (1, 3));
    assert_eq!(rows(&store, LeadSearch::TABLE).await.len(), 6);
    assert_eq!(rows(&store, StatusLog::TABLE).await.len(), 6);
}

#[tokio::test]
async fn replaying_the_whole_log_into_the_same_tables_changes_nothing() {
    let clock = story::clock();
    let store = sqlite_with(&clock).await;
    let repository = Repository::new(store.clone());
    stefans_story(&repository, &clock).await;
    lilyanas_story(&repository, &clock).await;
    let read_models = LeadReadModels::in_log_database(store.clone());
    read_models.catch_up().await.unwrap();
    let search_rows = rows(&store, LeadSearch::TABLE).await;
    let log_rows = rows(&store, StatusLog::TABLE).await;

    // At-least-once delivery at its worst: every event again, under other checkpoints.
    let replay_search = SqliteReadModel::new(LeadSearch::new(), store.clone()).named("replay_1");
    let replayed = eventsrc::Runner::new(store.clone(), replay_search)
        .catch_up()
        .await
        .unwrap();
    assert_eq!(replayed.handled, 3);
    let replay_log = SqliteReadModel::new(StatusLog::new(), store.clone()).named("replay_2");
    let replayed = eventsrc::Runner::new(store.clone(), replay_log)
        .catch_up()
        .await
        .unwrap();
    assert_eq!(replayed.handled, 6);

    assert_eq!(rows(&store, LeadSearch::TABLE).await, search_rows);
    assert_eq!(rows(&store, StatusLog::TABLE).await, log_rows);
}

// --- read-your-writes -----------------------------------------------------------------------------

#[tokio::test]
async fn a_command_is_readable_once_the_live_runners_have_seen_it() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let repository = Repository::new(store.clone());
    let read_models = LeadReadModels::in_log_database(store.clone());
    let following = read_models.follow();

    send(&repository, InitializeLead { id: STEFAN }).await;
    for n in 0..5 {
        let email = format!("stefan.{n}@example.com");
        let position = send(&repository, contact(STEFAN, &email, "03-27243457")).await;
        assert!(position.is_some());
        following.wait_for(position, WAIT).await.unwrap();
        // No polling, no sleeping: the answer is there as soon as the wait returns.
        assert_eq!(
            LeadSearch::find(&store, &email).await.unwrap(),
            [STEFAN],
            "{email}"
        );
    }
    // A no-op appends nothing and has nothing to wait for.
    let noop = send(
        &repository,
        contact(STEFAN, "stefan.4@example.com", "03-27243457"),
    )
    .await;
    assert_eq!(noop, None);
    following.wait_for(noop, Duration::ZERO).await.unwrap();

    let status = LeadStatus::Closed;
    let closed = send(
        &repository,
        ChangeStatus {
            lead: STEFAN,
            status,
        },
    )
    .await;
    following.wait_for(closed, WAIT).await.unwrap();
    let history = StatusLog::history(&store, STEFAN).await.unwrap();
    assert_eq!(history.last().map(|c| c.to), Some(LeadStatus::Closed));

    let progress = following.stop().await.unwrap();
    assert_eq!(progress.lead_search.position, closed);
    assert_eq!(progress.status_log.position, closed);
    assert_eq!(
        (progress.lead_search.handled, progress.status_log.handled),
        (5, 2)
    );
}

#[tokio::test]
async fn a_wait_for_a_position_the_runners_never_reach_times_out() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    let following = LeadReadModels::in_log_database(store).follow();
    let beyond = GlobalPosition::new(1_000, 1_000);
    let error = following
        .wait_for(beyond, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(matches!(error, RunError::Timeout { .. }), "{error}");
    following.stop().await.unwrap();
}

// --- rebuilding beside the live table -------------------------------------------------------------

#[tokio::test]
async fn a_rebuild_beside_the_live_table_is_switched_in_with_the_same_answers() {
    let clock = story::clock();
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let repository = Repository::new(store.clone());
    stefans_story(&repository, &clock).await;
    lilyanas_story(&repository, &clock).await;
    let read_models = LeadReadModels::in_log_database(store.clone());
    read_models.catch_up().await.unwrap();
    let live_rows = rows(&store, LeadSearch::TABLE).await;
    let searches = [
        "s.ivanov@example.com",
        "03 2724 3457",
        "l.yankov@example.com",
    ];
    let mut answers = Vec::new();
    for text in searches {
        answers.push(LeadSearch::find(&store, text).await.unwrap());
    }

    let mut seen = Vec::new();
    let rebuilt = read_models
        .rebuild_lead_search(1, |progress| seen.push(*progress))
        .await
        .unwrap();
    let head = store.head_position().await.unwrap();
    assert_eq!((rebuilt.events, rebuilt.position), (3, head));
    assert_eq!(rebuilt.batches, seen.len() as u64);
    // One event per transaction, each batch further along the log than the one before.
    let handled: Vec<u64> = seen.iter().map(|p| p.handled).collect();
    assert_eq!(handled[..3], [1, 2, 3]);
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(seen.last().unwrap().position, Some(head));

    // The rebuilt table has the live one's name, rows and index; its checkpoint is the live
    // name's; the rebuild's table, index and checkpoint are gone.
    assert_eq!(rows(&store, LeadSearch::TABLE).await, live_rows);
    assert_eq!(
        schema_names(&store, "lead_search").await,
        ["table lead_search", "index lead_search_by_key"]
    );
    assert!(schema_names(&store, REBUILD_TABLE).await.is_empty());
    assert_eq!(
        store.load_checkpoint(LeadSearch::NAME).await.unwrap(),
        Some(head)
    );
    assert_eq!(store.load_checkpoint(REBUILD_NAME).await.unwrap(), None);
    for (text, before) in searches.into_iter().zip(&answers) {
        assert_eq!(&LeadSearch::find(&store, text).await.unwrap(), before);
    }

    // A runner under the live name carries on from the rebuild's checkpoint.
    send(
        &repository,
        contact(LILYANA, "lilyana@example.bg", "04-6092212"),
    )
    .await;
    let progress = read_models.lead_search().catch_up().await.unwrap();
    assert_eq!(progress.handled, 1);
    assert_eq!(
        rows(&store, LeadSearch::TABLE).await.len(),
        live_rows.len() + 1
    );
    assert_eq!(
        LeadSearch::find(&store, "lilyana@example.bg")
            .await
            .unwrap(),
        [LILYANA]
    );
}

#[tokio::test]
async fn a_rebuild_of_an_empty_log_switches_in_an_empty_table() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    let read_models = LeadReadModels::in_log_database(store.clone());
    let rebuilt = read_models.rebuild_lead_search(10, |_| {}).await.unwrap();
    assert_eq!(rebuilt.events, 0);
    assert!(rows(&store, LeadSearch::TABLE).await.is_empty());
    assert!(
        LeadSearch::find(&store, "s@example.com")
            .await
            .unwrap()
            .is_empty()
    );
}

// --- a log that is not SQLite ---------------------------------------------------------------------

#[tokio::test]
async fn a_memory_log_works_with_the_tables_in_a_sqlite_database_beside_it() {
    let clock = story::clock();
    let log = MemoryStore::with_clock(clock.clone());
    let tables = SqliteEventStore::open_in_memory().await.unwrap();
    let read_models = LeadReadModels::beside(log.clone(), tables.clone());
    assert_eq!(read_models.placement(), Placement::Beside);
    let repository = Repository::new(log.clone());
    stefans_story(&repository, &clock).await;

    let progress = read_models.catch_up().await.unwrap();
    let head = log.head_position().await.unwrap();
    assert_eq!(progress.lead_search.position, Some(head));
    assert_eq!(
        LeadSearch::find(&tables, "s.ivanov@example.com")
            .await
            .unwrap(),
        [STEFAN]
    );
    assert_eq!(StatusLog::history(&tables, STEFAN).await.unwrap().len(), 3);
    // The checkpoints are in the tables' database, committed with the rows; the log's store
    // keeps none.
    assert_eq!(
        tables.load_checkpoint(LeadSearch::NAME).await.unwrap(),
        Some(head)
    );
    assert_eq!(
        tables.load_checkpoint(StatusLog::NAME).await.unwrap(),
        Some(head)
    );
    assert_eq!(log.load_checkpoint(LeadSearch::NAME).await.unwrap(), None);

    // Live, too: read-your-writes across the two stores.
    let following = read_models.follow();
    lilyanas_story(&repository, &clock).await;
    following
        .wait_for(log.head_position().await.unwrap(), WAIT)
        .await
        .unwrap();
    assert_eq!(
        LeadSearch::find(&tables, "04-6092212").await.unwrap(),
        [LILYANA]
    );
    let progress = following.stop().await.unwrap();
    assert_eq!(
        (progress.lead_search.handled, progress.status_log.handled),
        (1, 3)
    );
}

#[tokio::test]
async fn the_demo_store_decides_where_the_tables_live() {
    let memory = Store::open("memory:").await.unwrap();
    let read_models = LeadReadModels::for_store(memory).await.unwrap();
    assert_eq!(read_models.placement(), Placement::Beside);
    assert_eq!(read_models.tables().path(), None);

    let sqlite = Store::open("sqlite::memory:").await.unwrap();
    let read_models = LeadReadModels::for_store(sqlite.clone()).await.unwrap();
    assert_eq!(read_models.placement(), Placement::LogDatabase);
    // The same database: what the log's handle appends, the tables' handle sees.
    let Store::Sqlite(log) = sqlite else {
        panic!("{sqlite:?}");
    };
    stefans_story(&Repository::new(log), &story::clock()).await;
    read_models.catch_up().await.unwrap();
    assert_eq!(
        LeadSearch::find(read_models.tables(), "03-27243457")
            .await
            .unwrap(),
        [STEFAN]
    );
}

// --- the demo -------------------------------------------------------------------------------------

#[tokio::test]
async fn the_demo_continues_its_read_models_run_after_run() {
    let db = TempDb::new("demo");
    let mut runs = Vec::new();
    for run in 1..=3 {
        let clock = story::clock();
        let store = Store::from(db.open(&clock).await);
        let read_models = LeadReadModels::for_store(store).await.unwrap();
        let mut out = Vec::new();
        let projected = tell_with_read_models(&read_models, &clock, &mut out)
            .await
            .unwrap();
        if run == 2 {
            // A rebuild in between changes nothing for the runs after it.
            tell_rebuild(&read_models, 2, &mut out).await.unwrap();
        }
        let tables = read_models.tables();
        let counts = (
            rows(tables, LeadSearch::TABLE).await.len(),
            rows(tables, StatusLog::TABLE).await.len(),
        );
        runs.push((projected, counts, String::from_utf8(out).unwrap()));
    }

    let read = |i: usize| {
        let progress = runs[i].0.progress;
        (progress.lead_search.handled, progress.status_log.handled)
    };
    // Run 1 reads the story; run 2 only the reopened lead's status changes; run 3 only a
    // follow-up date, which neither model reads.
    assert_eq!([read(0), read(1), read(2)], [(3, 7), (0, 2), (0, 0)]);
    assert_eq!([runs[0].1, runs[1].1, runs[2].1], [(6, 7), (6, 9), (6, 9)]);
    for i in 0..3 {
        let (projected, _, output) = &runs[i];
        let head = projected.progress.status_log.position;
        assert_eq!(
            projected.progress.lead_search.position,
            head,
            "run {}",
            i + 1
        );
        if i > 0 {
            let before = runs[i - 1].0.progress;
            assert_eq!(projected.before.lead_search, before.lead_search.position);
            assert_eq!(projected.before.status_log, before.status_log.position);
        }
        assert_eq!(projected.told.run, i as u64 + 1);
        assert!(
            output.contains("s.ivanov@example.com  1410   Stefan's first e-mail"),
            "{output}"
        );
    }
    assert_eq!(runs[0].0.before.lead_search, None);
    let rebuilt = &runs[1].2;
    assert!(
        rebuilt.contains("The demo's 5 searches answer as before the rebuild."),
        "{rebuilt}"
    );
    assert!(
        rebuilt.contains("1406  11"),
        "run 2's status log: {rebuilt}"
    );
}

#[tokio::test]
async fn the_demo_reads_the_same_on_memory_as_on_sqlite() {
    let mut outputs = Vec::new();
    for url in ["memory:", "sqlite::memory:"] {
        let clock = story::clock();
        let store = Store::open_with_clock(url, clock.clone()).await.unwrap();
        let read_models = LeadReadModels::for_store(store).await.unwrap();
        let mut out = Vec::new();
        let projected = tell_with_read_models(&read_models, &clock, &mut out)
            .await
            .unwrap();
        let progress = projected.progress;
        assert_eq!(
            (progress.lead_search.handled, progress.status_log.handled),
            (3, 7),
            "{url}"
        );
        let output = String::from_utf8(out).unwrap();
        // Everything from the first answer on; the placement differs.
        let answers = output.find("\nLeadSearch: who had").unwrap();
        outputs.push(output[answers..].to_owned());
    }
    assert_eq!(outputs[0], outputs[1]);
}

// --- LeadSearch as a document view -----------------------------------------------------------

/// Every lookup the specs above make, and some more.
const LOOKUPS: [&str; 8] = [
    "s.ivanov@example.com",
    " S.Ivanov@Example.COM ",
    "(03) 2724 3457",
    "0508139904",
    "l.yankov@example.com",
    "04-6092212",
    "0888 123 456",
    "example.com",
];

/// What LeadSearch answers for `LOOKUPS` and for each lead's contacts, read by `find` and
/// `contacts_of` (the table's or the view's).
type Answers = (Vec<Vec<LeadId>>, Vec<Vec<Contact>>);

#[tokio::test]
async fn the_document_view_answers_as_the_sqlite_table_does_on_memory_and_sqlite() {
    use eventsrc::{DocumentReader, Documents, Runner};
    use eventsrc_examples::leads::read_models::LeadSearchView;

    /// Both stories, then Lilyana's address changed, and her first one given again.
    async fn history<S: EventStore>(repository: &Repository<S>, clock: &ManualClock) {
        stefans_story(repository, clock).await;
        lilyanas_story(repository, clock).await;
        clock.set(day(30));
        send(
            repository,
            contact(LILYANA, "lilyana@example.bg", "04-6092212"),
        )
        .await;
        clock.set(day(31));
        send(
            repository,
            contact(LILYANA, "l.yankov@example.com", "04-6092212"),
        )
        .await;
    }

    async fn view_answers<S>(store: S) -> Answers
    where
        S: eventsrc::backend::DocumentStore + EventStore + Clone + Sync + 'static,
    {
        Runner::new(store.clone(), Documents::new(store.clone(), LeadSearchView))
            .catch_up()
            .await
            .unwrap();
        let search = DocumentReader::new(store);
        let mut found = Vec::new();
        for text in LOOKUPS {
            found.push(LeadSearchView::find(&search, text).await.unwrap());
        }
        let mut contacts = Vec::new();
        for lead in [STEFAN, LILYANA, LeadId(7)] {
            contacts.push(LeadSearchView::contacts_of(&search, lead).await.unwrap());
        }
        (found, contacts)
    }

    // The SQLite table's answers: the reference.
    let clock = story::clock();
    let sqlite = sqlite_with(&clock).await;
    history(&Repository::new(sqlite.clone()), &clock).await;
    LeadReadModels::in_log_database(sqlite.clone())
        .catch_up()
        .await
        .unwrap();
    let mut table: Answers = (Vec::new(), Vec::new());
    for text in LOOKUPS {
        table.0.push(LeadSearch::find(&sqlite, text).await.unwrap());
    }
    for lead in [STEFAN, LILYANA, LeadId(7)] {
        table
            .1
            .push(LeadSearch::contacts_of(&sqlite, lead).await.unwrap());
    }
    assert_eq!(table.0[0], [STEFAN], "the reference finds the old address");
    assert_eq!(
        table.1[0].len(),
        4,
        "the reference lists Stefan's four values"
    );

    // The view on the same SQLite store, and on a memory store with the same history.
    assert_eq!(view_answers(sqlite.clone()).await, table, "SQLite");
    let clock = story::clock();
    let memory = MemoryStore::with_clock(clock.clone());
    history(&Repository::new(memory.clone()), &clock).await;
    assert_eq!(view_answers(memory).await, table, "memory");
}
