//! The read side on SQLite: the append signal, SQL read models with their checkpoint in the
//! same transaction, fencing, parked events, leases, rebuilding beside the live model and
//! switching it in, inline projections, and read-your-writes.
//!
//! Nothing here sleeps for an outcome: every wait is on a condition, with a deadline.
#![allow(clippy::unwrap_used)]

mod common;

use common::TempDir;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eventsrc::Tenants;
use eventsrc::runner::{Consumer, Progress};

use eventsrc::Subscription;
use eventsrc::backend::AppendSignal;
use eventsrc::backend::{Leases, ParkedEvent, ParkedStore};
use eventsrc::store::{AppendResult, ReadAll, ReadStream, StreamAppend};
use eventsrc::subscription::Start;
use eventsrc::{
    CheckpointStore, Event, EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata,
    NewEvent, RecordedEvent, StoreError, StreamId, StreamVersion, Tenant, Timestamp,
};
use eventsrc::{RunError, Runner, SwitchReadModel};
use eventsrc_sqlite::rusqlite::{self, Transaction, params};
use eventsrc_sqlite::{ReadModelError, SqliteEventStore, SqliteProjection, SqliteReadModel};
use serde::{Deserialize, Serialize};

/// Long enough never to be reached by a passing test, short enough to fail a hung one.
const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct UserRegistered {
    email: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct EmailChanged {
    email: String,
}

#[derive(Event, Debug)]
enum UserEvent {
    Registered(UserRegistered),
    EmailChanged(EmailChanged),
}

#[derive(Debug, thiserror::Error)]
enum UsersError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("refused `{0}`")]
    Refused(String),
}

/// An identity service's `users` view: a user's e-mail by id, plus `<table>_seen`, one row per
/// applied event (no key: an event applied twice shows as two rows).
struct Users {
    table: String,
    lowercase: bool,
    refuse: Option<String>,
    panic_on: Option<String>,
}

impl Users {
    fn into(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            lowercase: false,
            refuse: None,
            panic_on: None,
        }
    }
    /// Version 2 of the projection: e-mails stored lowercase.
    fn lowercase(mut self) -> Self {
        self.lowercase = true;
        self
    }
    fn refusing(mut self, email: &str) -> Self {
        self.refuse = Some(email.to_owned());
        self
    }
    fn panicking_on(mut self, email: &str) -> Self {
        self.panic_on = Some(email.to_owned());
        self
    }
}

impl SqliteProjection for Users {
    const NAME: &'static str = "users";
    type Event = UserEvent;
    type Error = UsersError;

    fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), UsersError> {
        let table = &self.table;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, email TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {table}_seen (event_id BLOB NOT NULL);"
        ))?;
        Ok(())
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: UserEvent,
        record: &RecordedEvent,
    ) -> Result<(), UsersError> {
        let (UserEvent::Registered(UserRegistered { email })
        | UserEvent::EmailChanged(EmailChanged { email })) = event;
        let table = &self.table;
        // Rows first, so that a refusal has something to roll back.
        tx.prepare_cached(&format!("INSERT INTO {table}_seen VALUES (?1)"))?
            .execute([record.event_id.0.as_bytes()])?;
        if self.panic_on.as_deref() == Some(email.as_str()) {
            panic!("projection bug on {email}");
        }
        if self.refuse.as_deref() == Some(email.as_str()) {
            return Err(UsersError::Refused(email));
        }
        let email = if self.lowercase {
            email.to_lowercase()
        } else {
            email
        };
        tx.prepare_cached(&format!(
            "INSERT INTO {table} (id, email) VALUES (?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET email = excluded.email"
        ))?
        .execute(params![record.stream.id(), email])?;
        Ok(())
    }
}

fn user(id: u32) -> StreamId {
    StreamId::new("user", id).unwrap()
}

fn registered(email: &str) -> NewEvent {
    NewEvent::from_event(
        &UserRegistered {
            email: email.to_owned(),
        },
        Metadata::new(),
    )
    .unwrap()
}

/// Registers users `ids`, one append each; returns the appends.
async fn register(store: &SqliteEventStore, ids: std::ops::Range<u32>) -> Vec<AppendResult> {
    let mut appended = Vec::new();
    for id in ids {
        let email = format!("User{id}@Example.com");
        appended.push(
            store
                .append(&user(id), ExpectedVersion::Any, vec![registered(&email)])
                .await
                .unwrap(),
        );
    }
    appended
}

async fn count(store: &SqliteEventStore, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    store
        .read_with(move |db| db.query_row(&sql, [], |r| r.get(0)))
        .await
        .unwrap()
}

/// How many times the most applied event was applied (0 for none).
async fn most_applications(store: &SqliteEventStore, table: &str) -> i64 {
    let sql = format!(
        "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM {table}_seen GROUP BY event_id)"
    );
    store
        .read_with(move |db| db.query_row(&sql, [], |r| r.get(0)))
        .await
        .unwrap()
}

async fn all_events(store: &SqliteEventStore) -> Vec<RecordedEvent> {
    store
        .read_all(ReadAll::after(GlobalPosition::START).limit(100_000))
        .await
        .unwrap()
}

/// A runner task stopped through its sender.
struct Running<C> {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<C, RunError>>,
}

fn spawn_runner<C: Consumer + 'static>(runner: Runner<SqliteEventStore, C>) -> Running<C> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        stopped.await.ok();
    }));
    Running { stop, task }
}

impl<C> Running<C> {
    async fn stop(self) -> Result<C, RunError> {
        self.stop.send(()).ok();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .unwrap()
            .unwrap()
    }
}

/// A store that tells when its log is read, to know a subscription is about to wait.
#[derive(Clone)]
struct Watched {
    store: SqliteEventStore,
    reads: Arc<AtomicUsize>,
    read: Arc<tokio::sync::Notify>,
}

impl EventStore for Watched {
    fn tenant(&self) -> &Tenant {
        self.store.tenant()
    }
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.store.append(stream, expected, events).await
    }
    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.store.append_streams(appends).await
    }
    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_events(ids).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_stream(stream, read).await
    }
    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.store.read_all(read).await;
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.read.notify_one();
        events
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        self.store.stream_version(stream).await
    }
    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        self.store.head_position().await
    }
    async fn append_signal(&self) -> Result<Option<AppendSignal>, StoreError> {
        self.store.append_signal().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscription_wakes_on_the_append_signal_not_by_polling() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let watched = Watched {
        store: store.clone(),
        reads: Arc::default(),
        read: Arc::default(),
    };
    // Polling an hour apart: only the signal can deliver the append within the deadline.
    let mut subscription = Subscription::new(watched.clone(), Start::Beginning)
        .poll_interval(Duration::from_secs(3600));
    let waiting = tokio::spawn(async move { subscription.next_batch().await });
    // Appending once the subscription has read the empty log: it is waiting, or about to.
    tokio::time::timeout(DEADLINE, watched.read.notified())
        .await
        .unwrap();
    let appended = register(&store, 1..2).await;

    let batch = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("the append signal wakes the subscription")
        .unwrap()
        .unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.through, appended[0].position);
    assert_eq!(
        watched.reads.load(Ordering::SeqCst),
        2,
        "one empty read, one after the signal"
    );
}

#[tokio::test]
async fn the_signal_moves_after_appends_but_not_after_idempotent_retries() {
    for store in [
        SqliteEventStore::open_temporary().await.unwrap(),
        SqliteEventStore::open_in_memory().await.unwrap(),
    ] {
        let mut signal = store.append_signal().await.unwrap().unwrap();
        let before = *signal.borrow_and_update();
        let event = registered("a@example.com");
        store
            .append(&user(1), ExpectedVersion::NoStream, vec![event.clone()])
            .await
            .unwrap();
        assert!(
            signal.has_changed().unwrap(),
            "moved before the append returned"
        );
        let after = *signal.borrow_and_update();
        assert!(after > before);

        let retry = store
            .append(&user(1), ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap();
        assert!(retry.already_stored);
        assert_eq!(
            *signal.borrow(),
            after,
            "a retry stores nothing and wakes nobody"
        );
        // A conflict stores nothing either.
        let conflict = store
            .append(&user(1), ExpectedVersion::NoStream, vec![registered("b@x")])
            .await;
        assert!(matches!(
            conflict,
            Err(StoreError::WrongExpectedVersion { .. })
        ));
        assert!(!signal.has_changed().unwrap());

        // An append across streams moves it once, after its one commit; a request of parts
        // without events only checks versions and moves nothing.
        let parts = vec![
            StreamAppend::new(user(2), ExpectedVersion::NoStream, vec![registered("c@x")]),
            StreamAppend::new(user(3), ExpectedVersion::NoStream, vec![registered("d@x")]),
        ];
        store.append_streams(parts.clone()).await.unwrap();
        assert_eq!(
            *signal.borrow_and_update(),
            after + 1,
            "one commit, one move"
        );
        let checks = store
            .append_streams(vec![StreamAppend::new(
                user(2),
                ExpectedVersion::Exact(StreamVersion(1)),
                Vec::new(),
            )])
            .await
            .unwrap();
        assert_eq!(checks[0].stream_version, StreamVersion(1));
        let retry = store.append_streams(parts).await.unwrap();
        assert!(retry.iter().all(|r| r.already_stored));
        assert!(
            !signal.has_changed().unwrap(),
            "neither checks nor a retry store anything"
        );
    }
}

#[tokio::test]
async fn a_batch_failing_midway_leaves_neither_rows_nor_checkpoint() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    register(&store, 0..5).await;
    let refused = store
        .append(
            &user(5),
            ExpectedVersion::Any,
            vec![registered("bad@example.com")],
        )
        .await
        .unwrap();
    register(&store, 6..10).await;
    let events = all_events(&store).await;

    let model = SqliteReadModel::new(
        Users::into("users").refusing("bad@example.com"),
        store.clone(),
    );
    let mut runner = Runner::new(store.clone(), model).batch_size(100);
    let error = runner.catch_up().await.unwrap_err();
    match &error {
        RunError::Handle {
            consumer,
            event_id,
            position,
            ..
        } => {
            assert_eq!(consumer, "users");
            assert_eq!(*event_id, events[5].event_id);
            assert_eq!(*position, refused.position);
        }
        other => panic!("expected a handle error naming the event, got {other:?}"),
    }
    assert!(
        error.to_string().contains("refused `bad@example.com`"),
        "{error}"
    );
    // The five events before it were applied in the same transaction: rolled back with it.
    assert_eq!(count(&store, "users").await, 0);
    assert_eq!(count(&store, "users_seen").await, 0);
    assert_eq!(store.load_checkpoint("users").await.unwrap(), None);
}

#[tokio::test]
async fn a_restarted_runner_resumes_without_applying_anything_twice() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    register(&store, 0..10).await;
    {
        let model = SqliteReadModel::new(Users::into("users"), store.clone());
        let mut runner = Runner::new(store.clone(), model).batch_size(3);
        assert!(runner.step().await.unwrap());
        assert!(runner.step().await.unwrap());
        // Stopped after two batches: six events applied, checkpoint at the sixth.
    }
    let events = all_events(&store).await;
    assert_eq!(
        store.load_checkpoint("users").await.unwrap(),
        Some(events[5].global_position)
    );
    assert_eq!(count(&store, "users_seen").await, 6);
    let last = register(&store, 10..15).await.pop().unwrap();

    let model = SqliteReadModel::new(Users::into("users"), store.clone());
    let mut runner = Runner::new(store.clone(), model).batch_size(4);
    let progress = runner.catch_up().await.unwrap();
    assert_eq!(progress.handled, 9);
    assert_eq!(progress.position, Some(last.position));
    assert_eq!(count(&store, "users").await, 15);
    assert_eq!(count(&store, "users_seen").await, 15);
    assert_eq!(most_applications(&store, "users").await, 1);
}

#[tokio::test]
async fn a_stale_runner_is_fenced_and_applies_nothing() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    register(&store, 0..4).await;
    let events = all_events(&store).await;
    let mut first = SqliteReadModel::new(Users::into("users"), store.clone());
    let mut second = SqliteReadModel::new(Users::into("users"), store.clone());
    assert_eq!(first.checkpoint().await.unwrap(), None);
    assert_eq!(second.checkpoint().await.unwrap(), None);

    let through = events[1].global_position;
    first.handle(None, &events[..2], through).await.unwrap();
    // The second still believes nothing was handled.
    let error = second
        .handle(None, &events[..2], through)
        .await
        .unwrap_err();
    match error {
        RunError::Fenced {
            consumer,
            expected,
            actual,
        } => {
            assert_eq!(consumer, "users");
            assert_eq!((expected, actual), (None, Some(through)));
        }
        other => panic!("expected fenced, got {other:?}"),
    }
    assert_eq!(count(&store, "users_seen").await, 2);
    assert_eq!(most_applications(&store, "users").await, 1);

    // From the stored checkpoint, it goes on.
    let end = events[3].global_position;
    second
        .handle(Some(through), &events[2..], end)
        .await
        .unwrap();
    assert_eq!(store.load_checkpoint("users").await.unwrap(), Some(end));
    assert_eq!(count(&store, "users_seen").await, 4);
}

#[tokio::test]
async fn a_panicking_projection_is_an_error_naming_the_event_and_the_store_carries_on() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    register(&store, 0..2).await;
    store
        .append(&user(2), ExpectedVersion::Any, vec![registered("boom@x")])
        .await
        .unwrap();
    let model = SqliteReadModel::new(Users::into("users").panicking_on("boom@x"), store.clone());
    let error = Runner::new(store.clone(), model)
        .catch_up()
        .await
        .unwrap_err();
    assert!(matches!(error, RunError::Handle { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("panicked: projection bug on boom@x"),
        "{error}"
    );
    assert_eq!(count(&store, "users_seen").await, 0);
    // The writer thread survived.
    register(&store, 3..4).await;
    assert_eq!(all_events(&store).await.len(), 4);
}

fn parked(reactor: &str, event: &RecordedEvent, error: &str, attempts: u32) -> ParkedEvent {
    ParkedEvent {
        reactor: reactor.to_owned(),
        event: event.clone(),
        error: error.to_owned(),
        attempts,
        parked_at: Timestamp::now(),
    }
}

#[tokio::test]
async fn parked_events_round_trip_in_global_order_and_outlive_the_process() {
    let dir = TempDir::new("parked");
    let store = SqliteEventStore::open(dir.file()).await.unwrap();
    let traced = Metadata::new().with_actor("ada");
    for (id, metadata) in [(1, traced), (2, Metadata::new()), (3, Metadata::new())] {
        let event = registered(&format!("u{id}@x")).with_metadata(metadata);
        store
            .append(&user(id), ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
    let events = all_events(&store).await;
    let (first, third) = (
        parked("mailer", &events[0], "smtp down", 5),
        parked("mailer", &events[2], "timeout", 3),
    );
    store.park(third.clone()).await.unwrap();
    store.park(first.clone()).await.unwrap();
    store
        .park(parked("billing", &events[1], "declined", 1))
        .await
        .unwrap();

    assert_eq!(
        store.parked("mailer").await.unwrap(),
        vec![first.clone(), third.clone()]
    );
    assert_eq!(store.parked("nobody").await.unwrap(), vec![]);
    let acme = store.with_tenant("acme".into());
    assert_eq!(acme.parked("mailer").await.unwrap(), vec![]);
    assert!(!acme.unpark("mailer", events[0].event_id).await.unwrap());

    // Parking again replaces the entry.
    let again = ParkedEvent {
        error: "still down".into(),
        attempts: 6,
        ..first.clone()
    };
    store.park(again.clone()).await.unwrap();
    drop((store, acme));

    let store = SqliteEventStore::open(dir.file()).await.unwrap();
    assert_eq!(
        store.parked("mailer").await.unwrap(),
        vec![again, third.clone()]
    );
    assert!(store.unpark("mailer", events[0].event_id).await.unwrap());
    assert!(!store.unpark("mailer", events[0].event_id).await.unwrap());
    assert_eq!(store.parked("mailer").await.unwrap(), vec![third]);
    assert_eq!(store.parked("billing").await.unwrap().len(), 1);
}

#[tokio::test]
async fn leases_are_exclusive_within_the_process_per_tenant_and_released_on_drop() {
    let dir = TempDir::new("leases");
    let store = SqliteEventStore::open(dir.file()).await.unwrap();
    let lease = store.try_acquire("users").await.unwrap().expect("free");
    assert!(lease.is_held());
    assert!(store.try_acquire("users").await.unwrap().is_none());
    assert!(store.clone().try_acquire("users").await.unwrap().is_none());
    // Another open of the same file in this process competes for the same names.
    let reopened = SqliteEventStore::open(dir.file()).await.unwrap();
    assert!(reopened.try_acquire("users").await.unwrap().is_none());
    // Other names and other tenants are free.
    let other = store.try_acquire("mailer").await.unwrap();
    assert!(other.is_some());
    let acme = reopened
        .with_tenant("acme".into())
        .try_acquire("users")
        .await
        .unwrap();
    assert!(acme.is_some());

    drop(lease);
    assert!(reopened.try_acquire("users").await.unwrap().is_some());
    // Another file is another process's business.
    let elsewhere = SqliteEventStore::open_temporary().await.unwrap();
    assert!(elsewhere.try_acquire("mailer").await.unwrap().is_some());
}

/// The e-mails of the `users` table, by id.
async fn emails(store: &SqliteEventStore, table: &str) -> Vec<(String, String)> {
    let sql = format!("SELECT id, email FROM {table} ORDER BY CAST(id AS INTEGER)");
    store
        .read_with(move |db| {
            let mut select = db.prepare(&sql)?;
            let rows = select.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_beside_the_live_model_is_switched_in_and_carries_on() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let head = register(&store, 0..20).await.pop().unwrap().position;
    let live = Runner::new(
        store.clone(),
        SqliteReadModel::new(Users::into("users"), store.clone()),
    );
    let live_progress = live.progress();
    let live = spawn_runner(live);
    live_progress.wait_for(head, DEADLINE).await.unwrap();

    // Version 2 rebuilt into `users_new` under its own checkpoint, watched while it runs.
    let rebuild = SqliteReadModel::new(Users::into("users_new").lowercase(), store.clone())
        .named("users_rebuild");
    let mut rebuild = Runner::new(store.clone(), rebuild).batch_size(6);
    let mut watch = rebuild.progress();
    let observer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen: Vec<(Progress, i64)> = Vec::new();
            while watch.changed().await {
                // The live model keeps serving, whole, while the rebuild runs.
                seen.push((watch.get(), count(&store, "users").await));
            }
            seen
        })
    };
    let done = rebuild.catch_up().await.unwrap();
    drop(rebuild);
    assert_eq!((done.handled, done.position), (20, Some(head)));
    let seen = observer.await.unwrap();
    let handled: Vec<u64> = seen
        .iter()
        .map(|(p, _)| p.handled)
        .filter(|&h| h > 0)
        .collect();
    // A watch keeps only the latest value, so a busy observer may miss a batch; what it sees
    // is batch boundaries, in order, ending with the last.
    assert!(
        handled.windows(2).all(|w| w[0] < w[1])
            && handled.iter().all(|h| [6, 12, 18, 20].contains(h))
            && handled.last() == Some(&20),
        "progress after each batch: {handled:?}"
    );
    assert!(seen.iter().all(|&(_, rows)| rows == 20));
    assert_eq!(emails(&store, "users_new").await[0].1, "user0@example.com");

    // Events keep coming to the live model only.
    let latest = register(&store, 20..22).await.pop().unwrap().position;
    live_progress.wait_for(latest, DEADLINE).await.unwrap();
    live.stop().await.unwrap();

    let position = store
        .switch_read_model(
            "users_rebuild",
            "users",
            "DROP TABLE users; DROP TABLE users_seen;
             ALTER TABLE users_new RENAME TO users; ALTER TABLE users_new_seen RENAME TO users_seen;",
        )
        .await
        .unwrap();
    assert_eq!(position, head);
    assert_eq!(store.load_checkpoint("users").await.unwrap(), Some(head));
    assert_eq!(store.load_checkpoint("users_rebuild").await.unwrap(), None);

    // Version 2 goes live under the live name, from where the rebuild stopped.
    let mut next = Runner::new(
        store.clone(),
        SqliteReadModel::new(Users::into("users").lowercase(), store.clone()),
    );
    let resumed = next.catch_up().await.unwrap();
    assert_eq!((resumed.handled, resumed.position), (2, Some(latest)));
    let rows = emails(&store, "users").await;
    assert_eq!(rows.len(), 22);
    assert!(
        rows.iter()
            .all(|(id, email)| *email == format!("user{id}@example.com"))
    );
    assert_eq!(most_applications(&store, "users").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_left_running_across_a_switch_stops_instead_of_writing() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let head = register(&store, 0..3).await.pop().unwrap().position;
    let live = Runner::new(
        store.clone(),
        SqliteReadModel::new(Users::into("users"), store.clone()),
    );
    let live_progress = live.progress();
    let live = spawn_runner(live);
    live_progress.wait_for(head, DEADLINE).await.unwrap();

    let rebuild = SqliteReadModel::new(Users::into("users_new").lowercase(), store.clone())
        .named("users_rebuild");
    Runner::new(store.clone(), rebuild)
        .catch_up()
        .await
        .unwrap();
    // Both stand at the head: only the generation tells the old runner apart.
    store
        .switch_read_model(
            "users_rebuild",
            "users",
            "DROP TABLE users; DROP TABLE users_seen;
             ALTER TABLE users_new RENAME TO users; ALTER TABLE users_new_seen RENAME TO users_seen;",
        )
        .await
        .unwrap();
    register(&store, 3..4).await;

    let stopped = tokio::time::timeout(DEADLINE, live.task)
        .await
        .unwrap()
        .unwrap();
    let error = stopped.unwrap_err();
    assert!(
        matches!(
            error,
            RunError::Switched {
                started: 0,
                found: 1,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        count(&store, "users").await,
        3,
        "the old runner wrote nothing"
    );
    assert_eq!(store.load_checkpoint("users").await.unwrap(), Some(head));
}

#[tokio::test]
async fn switching_in_a_model_that_was_never_built_changes_nothing() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    let error = store
        .switch_read_model("users_rebuild", "users", "CREATE TABLE touched (x)")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::NotBuilt { rebuilt, live } if rebuilt == "users_rebuild" && live == "users"),
        "{error}"
    );
    let touched = store
        .read_with(|db| {
            db.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'touched'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(touched, 0);
}

#[tokio::test]
async fn the_switch_contract_holds_in_the_code_every_sql_backend_runs() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let execute = |sql: &'static str| {
        let store = store.clone();
        async move {
            store
                .write_with(move |tx| tx.execute_batch(sql))
                .await
                .unwrap()
        }
    };
    let index_names = |table: &'static str| {
        let store = store.clone();
        async move {
            store
                .read_with(move |db| {
                    let mut names = db.prepare(
                        "SELECT name FROM sqlite_master WHERE type = 'index' \
                         AND sql IS NOT NULL AND tbl_name = ?1 ORDER BY name",
                    )?;
                    names
                        .query_map([table], |row| row.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .await
                .unwrap()
        }
    };
    eventsrc_testing::switch::switch_contract(&store, execute, index_names).await;
}

#[tokio::test]
async fn an_inline_projection_catches_up_then_moves_with_each_append() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let head = register(&store, 0..3).await.pop().unwrap().position;
    let progress = store
        .catch_up_inline_named("inline_users", Users::into("inline_users"))
        .await
        .unwrap();
    assert_eq!(
        (progress.handled, progress.position, progress.caught_up),
        (3, Some(head), true)
    );
    assert_eq!(count(&store, "inline_users").await, 3);

    // No waiting: the append's own transaction updated the table and the checkpoint.
    let appended = register(&store, 3..4).await.pop().unwrap();
    assert_eq!(count(&store, "inline_users").await, 4);
    assert_eq!(
        store.load_checkpoint("inline_users").await.unwrap(),
        Some(appended.position)
    );

    // Another tenant's appends are not its business.
    let acme = store.with_tenant("acme".into());
    register(&acme, 0..2).await;
    assert_eq!(count(&store, "inline_users").await, 4);
    assert_eq!(
        store.load_checkpoint("inline_users").await.unwrap(),
        Some(appended.position)
    );

    let again = store
        .catch_up_inline_named("inline_users", Users::into("inline_users"))
        .await;
    let Err(RunError::Store { source, .. }) = again else {
        panic!("{again:?}")
    };
    assert!(matches!(
        ReadModelError::find(&source),
        Some(ReadModelError::AlreadyInline { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_an_inline_projection_refuses_stores_nothing_and_its_neighbours_commit() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    store
        .catch_up_inline_named(
            "inline_users",
            Users::into("inline_users").refusing("bad@x"),
        )
        .await
        .unwrap();
    let before = register(&store, 0..2).await.pop().unwrap().position;
    let mut signal = store.append_signal().await.unwrap().unwrap();
    signal.borrow_and_update();

    let bad = registered("bad@x");
    let (bad_id, bad_type) = (bad.event_id, bad.event_type.to_string());
    let error = store
        .append(
            &user(99),
            ExpectedVersion::NoStream,
            vec![registered("fine@x"), bad],
        )
        .await
        .unwrap_err();
    let StoreError::Refused {
        stream,
        event_type,
        projection,
        source,
    } = &error
    else {
        panic!("a refusal, not a retryable failure: {error:?}")
    };
    assert_eq!(projection, "inline_users");
    assert_eq!(stream, &user(99));
    assert_eq!(event_type, &bad_type);
    assert!(matches!(**source, RunError::Handle { event_id, .. } if event_id == bad_id));
    assert!(error.to_string().contains("refused `bad@x`"), "{error}");

    assert_eq!(
        store.stream_version(&user(99)).await.unwrap(),
        StreamVersion::NONE
    );
    assert_eq!(store.head_position().await.unwrap(), before);
    assert_eq!(count(&store, "inline_users").await, 2);
    assert_eq!(count(&store, "inline_users_seen").await, 2);
    assert_eq!(
        store.load_checkpoint("inline_users").await.unwrap(),
        Some(before)
    );
    assert!(!signal.has_changed().unwrap());

    // Concurrent appends share group commits, each in its own savepoint: the refused one
    // alone fails.
    let tasks: Vec<_> = (100..140u32)
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                let email = if id == 120 {
                    "bad@x".to_owned()
                } else {
                    format!("u{id}@x")
                };
                store
                    .append(
                        &user(id),
                        ExpectedVersion::NoStream,
                        vec![registered(&email)],
                    )
                    .await
            })
        })
        .collect();
    let mut failed = Vec::new();
    for (id, task) in (100..140u32).zip(tasks) {
        if let Err(error) = task.await.unwrap() {
            assert!(matches!(error, StoreError::Refused { .. }), "{error}");
            failed.push(id);
        }
    }
    assert_eq!(failed, [120]);
    assert_eq!(count(&store, "inline_users").await, 2 + 39);
    assert_eq!(all_events(&store).await.len(), 2 + 39);
    assert_eq!(
        store.load_checkpoint("inline_users").await.unwrap(),
        Some(store.head_position().await.unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_catch_up_interleaves_with_appends_and_misses_nothing() {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    for batch in 0..30u32 {
        let events = (0..100)
            .map(|i| registered(&format!("u{batch}-{i}@x")))
            .collect();
        store
            .append(&user(batch), ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
    // Appends race the catch-up (pages of 1000 events, appends served in between).
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { register(&store, 1000..1100).await })
    };
    let progress = store
        .catch_up_inline_named("inline_users", Users::into("inline_users"))
        .await
        .unwrap();
    writer.await.unwrap();
    assert!(progress.handled >= 3000, "{progress:?}");
    let total = all_events(&store).await.len() as i64;
    assert_eq!(total, 3100);
    assert_eq!(count(&store, "inline_users_seen").await, total);
    assert_eq!(most_applications(&store, "inline_users").await, 1);
    assert_eq!(
        store.load_checkpoint("inline_users").await.unwrap(),
        Some(store.head_position().await.unwrap())
    );
}

#[tokio::test]
async fn an_inline_projection_failing_its_catch_up_is_not_registered() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    register(&store, 0..2).await;
    store
        .append(&user(2), ExpectedVersion::Any, vec![registered("bad@x")])
        .await
        .unwrap();
    let error = store
        .catch_up_inline_named(
            "inline_users",
            Users::into("inline_users").refusing("bad@x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, RunError::Handle { .. }), "{error:?}");
    assert_eq!(count(&store, "inline_users").await, 0);
    // Not registered: later appends ignore it, even the ones it would refuse.
    store
        .append(&user(3), ExpectedVersion::Any, vec![registered("bad@x")])
        .await
        .unwrap();
    assert_eq!(count(&store, "inline_users").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_their_writes_after_waiting_for_the_runner() {
    for store in [
        SqliteEventStore::open_temporary().await.unwrap(),
        SqliteEventStore::open_in_memory().await.unwrap(),
    ] {
        let runner = Runner::new(
            store.clone(),
            SqliteReadModel::new(Users::into("users"), store.clone()),
        );
        let progress = runner.progress();
        let running = spawn_runner(runner);
        for id in 0..20 {
            let email = format!("u{id}@x");
            let appended = store
                .append(
                    &user(id),
                    ExpectedVersion::NoStream,
                    vec![registered(&email)],
                )
                .await
                .unwrap();
            progress
                .wait_for(appended.position, DEADLINE)
                .await
                .unwrap();
            let stored: String = store
                .read_with(move |db| {
                    db.query_row(
                        "SELECT email FROM users WHERE id = ?1",
                        [id.to_string()],
                        |r| r.get(0),
                    )
                })
                .await
                .unwrap();
            assert_eq!(stored, email);
        }
        let model = running.stop().await.unwrap();
        assert_eq!(model.name(), "users");
        assert_eq!(most_applications(&store, "users").await, 1);
    }
}

#[tokio::test]
async fn read_with_cannot_write_and_write_with_rolls_back_on_error() {
    for store in [
        SqliteEventStore::open_temporary().await.unwrap(),
        SqliteEventStore::open_in_memory().await.unwrap(),
    ] {
        store
            .write_with(|tx| tx.execute_batch("CREATE TABLE notes (text TEXT)"))
            .await
            .unwrap();
        assert!(
            store
                .read_with(|db| db.execute("INSERT INTO notes VALUES ('x')", []))
                .await
                .is_err()
        );
        let failed = store
            .write_with(|tx| {
                tx.execute("INSERT INTO notes VALUES ('x')", [])?;
                tx.execute("INSERT INTO missing VALUES ('x')", [])
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(count(&store, "notes").await, 0);
        // After a refused read, the lent connection of an in-memory store writes again.
        store
            .write_with(|tx| tx.execute("INSERT INTO notes VALUES ('y')", []))
            .await
            .unwrap();
        assert_eq!(count(&store, "notes").await, 1);
        let panicked = store
            .write_with(|_| -> rusqlite::Result<()> { panic!("oops") })
            .await;
        assert!(matches!(
            ReadModelError::find(&panicked.unwrap_err()),
            Some(ReadModelError::Panicked { .. })
        ));
        register(&store, 0..1).await;
    }
}
