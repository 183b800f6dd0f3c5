//! The repository's command contracts, which rest on the store: idempotent commands (ids
//! derived from a key, found again by `read_events`), the client's token (`Stale`, never a
//! blind retry), and decisions across streams (a unique claim with exactly one winner).

use std::sync::Arc;

use eventsrc_core::{
    Aggregate, Command, CommandOptions, Decide, Decided, Decision, DecodeError, EncodeError, Event,
    ExecuteError, ExpectedVersion, Handle, Metadata, NewEvent, Repository, StreamId, StreamVersion,
};
use tokio::sync::Barrier;

use super::StoreUnderTest;
use super::sample::{self, append, read, whole_log};
use crate::RacingStore;
use eventsrc_core::store::ReadStream;

/// Writers racing in the concurrent cases: as many as the HTTP clients.
const RACERS: usize = 16;

/// An event whose payload is one JSON number or string, named at construction.
#[derive(Debug, Clone, PartialEq)]
enum Noted {
    /// `Added`: a number added to a tally.
    Added(u64),
    /// `Registered`: a user registered with an e-mail address.
    Registered(String),
    /// `Claimed`: an address claimed by a user.
    Claimed(String),
}

impl Event for Noted {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Added(_) => "Added",
            Self::Registered(_) => "Registered",
            Self::Claimed(_) => "Claimed",
        }
    }
    fn schema_version(&self) -> u32 {
        1
    }
    fn encode(&self) -> Result<String, EncodeError> {
        Ok(match self {
            Self::Added(n) => n.to_string(),
            Self::Registered(s) | Self::Claimed(s) => {
                serde_json::Value::from(s.as_str()).to_string()
            }
        })
    }
    fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
        let malformed = |e| DecodeError::malformed(event_type, version, e);
        match event_type {
            "Added" => serde_json::from_str(payload)
                .map(Self::Added)
                .map_err(malformed),
            "Registered" => serde_json::from_str(payload)
                .map(Self::Registered)
                .map_err(malformed),
            "Claimed" => serde_json::from_str(payload)
                .map(Self::Claimed)
                .map_err(malformed),
            other => Err(DecodeError::unknown(other, version)),
        }
    }
}

/// The error of aggregates that refuse nothing.
#[derive(Debug)]
enum Never {}

impl std::fmt::Display for Never {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

impl std::error::Error for Never {}

/// A running total.
#[derive(Debug, Default)]
struct Tally {
    total: u64,
}

impl Aggregate for Tally {
    const TYPE: &'static str = "tally";
    type Id = String;
    type Event = Noted;
    type Error = Never;
    fn apply(&mut self, event: &Noted) {
        if let Noted::Added(n) = event {
            self.total += n;
        }
    }
}

/// Adds a number, then `0` (two events), so a replay has more than one event to read back.
struct Add(u64);
impl Command for Add {}
impl Handle<Add> for Tally {
    fn handle(&self, command: &Add) -> Decision<Self> {
        Ok(vec![Noted::Added(command.0), Noted::Added(0)])
    }
}

/// A user, registered once.
#[derive(Debug, Default)]
struct User {
    email: Option<String>,
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Id = u32;
    type Event = Noted;
    type Error = Never;
    fn apply(&mut self, event: &Noted) {
        if let Noted::Registered(email) = event {
            self.email = Some(email.clone());
        }
    }
}

/// Who holds an e-mail address.
#[derive(Debug, Default)]
struct EmailOwner {
    holder: Option<String>,
}

impl Aggregate for EmailOwner {
    const TYPE: &'static str = "email";
    type Id = String;
    type Event = Noted;
    type Error = Never;
    fn apply(&mut self, event: &Noted) {
        if let Noted::Claimed(user) = event {
            self.holder = Some(user.clone());
        }
    }
}

/// Why a sign-up is refused.
#[derive(Debug, PartialEq)]
enum SignUpError {
    Exists,
    Taken,
}

impl std::fmt::Display for SignUpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Exists => "the user exists",
            Self::Taken => "the address is taken",
        })
    }
}

impl std::error::Error for SignUpError {}

/// Registers a user with an address no other user holds.
struct SignUp {
    user: u32,
    email: String,
}

impl Command for SignUp {}

impl Decide for SignUp {
    type Aggregates = (User, EmailOwner);
    type Error = SignUpError;

    fn ids(&self) -> (u32, String) {
        (self.user, self.email.clone())
    }

    fn decide(&self, (user, owner): &(User, EmailOwner)) -> Decided<Self> {
        if user.email.is_some() {
            return Err(SignUpError::Exists);
        }
        if owner.holder.is_some() {
            return Err(SignUpError::Taken);
        }
        Ok((
            vec![Noted::Registered(self.email.clone())],
            vec![Noted::Claimed(self.user.to_string())],
        ))
    }
}

fn keyed(key: &str) -> CommandOptions {
    CommandOptions::new().idempotency_key(key)
}

fn stream_of(category: &str, id: impl std::fmt::Display) -> StreamId {
    StreamId::new(category, id).unwrap_or_else(|error| panic!("{error}"))
}

/// A command with an idempotency key, run again after other writers moved its stream, appends
/// nothing and returns what the first run committed: the same event ids, version and position,
/// marked `replayed`.
pub async fn an_idempotent_command_appends_once_and_replays_its_result<S: StoreUnderTest>(
    store: S,
) {
    let repository = Repository::new(store.clone());
    let id = "t1".to_owned();
    let first = match repository
        .execute::<Tally, _>(&id, Add(5), keyed("req-1"))
        .await
    {
        Ok(first) => first,
        Err(error) => panic!("the first run failed: {error}"),
    };
    assert!(!first.replayed, "a first run is not a replay");
    let stream = stream_of("tally", "t1");
    append(
        &store,
        &stream,
        ExpectedVersion::Any,
        sample::events("Added", 1),
    )
    .await;
    let again = match repository
        .execute::<Tally, _>(&id, Add(5), keyed("req-1"))
        .await
    {
        Ok(again) => again,
        Err(error) => panic!("the retry failed: {error}"),
    };
    assert!(again.replayed, "the retry is a replay");
    assert_eq!(again.event_ids, first.event_ids, "the same events");
    assert_eq!(again.events, first.events, "the same events, decoded");
    assert_eq!(again.command_id, first.command_id, "the same command id");
    assert_eq!(
        (again.stream_version, again.global_position),
        (first.stream_version, first.global_position),
        "the first run's version and position, not the stream's current ones"
    );
    assert_eq!(
        read(&store, &stream, ReadStream::forward()).await.len(),
        3,
        "two events of the command, once, and the other writer's one"
    );
    let key_stamp = read(&store, &stream, ReadStream::forward()).await[0]
        .metadata
        .idempotency
        .clone()
        .map(|stamp| stamp.key);
    assert_eq!(
        key_stamp.as_deref(),
        Some("req-1"),
        "the events carry the key"
    );
}

/// A key used again for another command (another fingerprint, another aggregate) is
/// `KeyReused` naming the key and the first command's stream, and appends nothing.
pub async fn a_key_reused_for_another_command_is_refused<S: StoreUnderTest>(store: S) {
    let repository = Repository::new(store.clone());
    let options = |body: &str| keyed("req-2").fingerprint(body);
    let (t1, t2) = ("t1".to_owned(), "t2".to_owned());
    if let Err(error) = repository
        .execute::<Tally, _>(&t1, Add(1), options("add 1"))
        .await
    {
        panic!("the first run failed: {error}");
    }
    let before = whole_log(&store).await;
    for (id, body, what) in [
        (&t1, "add 2", "another fingerprint"),
        (&t2, "add 1", "another aggregate"),
    ] {
        match repository
            .execute::<Tally, _>(id, Add(2), options(body))
            .await
        {
            Err(ExecuteError::KeyReused { key, stream }) => {
                assert_eq!(key, "req-2", "{what}: the key");
                assert_eq!(
                    stream,
                    stream_of("tally", "t1"),
                    "{what}: the first command's stream"
                );
            }
            other => panic!("{what}: expected KeyReused, got {other:?}"),
        }
    }
    assert_eq!(
        whole_log(&store).await,
        before,
        "a refused key appends nothing"
    );
}

/// Runs with one key racing each other append the command's events once: one run commits,
/// every other returns its result as a replay.
pub async fn racing_runs_with_one_key_append_once<S: StoreUnderTest>(store: S) {
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (store, barrier) = (store.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let repository = Repository::new(store);
            barrier.wait().await;
            repository
                .execute::<Tally, _>(&"t1".to_owned(), Add(3), keyed("req-3"))
                .await
                .map(|c| (c.replayed, c.event_ids))
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(error)) => panic!("a racing run with the key failed: {error}"),
            Err(error) => panic!("a racing run did not finish: {error}"),
        }
    }
    let fresh = outcomes.iter().filter(|(replayed, _)| !replayed).count();
    assert_eq!(fresh, 1, "exactly one run commits; the others replay it");
    assert!(
        outcomes.windows(2).all(|w| w[0].1 == w[1].1),
        "every run answers with the same event ids"
    );
    let stream = stream_of("tally", "t1");
    assert_eq!(
        read(&store, &stream, ReadStream::forward()).await.len(),
        2,
        "the command's two events, once"
    );
}

/// A command carrying the client's token is decided only at that version: a stale token is
/// `Stale` with both versions before anything is decided, and a writer slipping in between
/// the load and the append makes it `Stale` too, never a retry on state the client has not
/// seen. `StreamVersion::NONE` creates.
pub async fn a_stale_token_is_refused_without_a_retry<S: StoreUnderTest>(store: S) {
    let racing = RacingStore::new(store.clone());
    let repository = Repository::new(racing.clone());
    let id = "t1".to_owned();
    let create = CommandOptions::new().expect_version(StreamVersion::NONE);
    let created = match repository
        .execute::<Tally, _>(&id, Add(1), create.clone())
        .await
    {
        Ok(created) => created,
        Err(error) => panic!("creating with NONE failed: {error}"),
    };
    match repository.execute::<Tally, _>(&id, Add(1), create).await {
        Err(ExecuteError::Stale {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (StreamVersion::NONE, StreamVersion(2))),
        other => panic!("creating again must be Stale, got {other:?}"),
    }
    let token = CommandOptions::new().expect_version(created.stream_version);
    let stream = stream_of("tally", "t1");
    racing.race(stream.clone(), vec![NewEvent::raw("Added", 1, "7")]);
    match repository.execute::<Tally, _>(&id, Add(1), token).await {
        Err(ExecuteError::Stale {
            stream: at,
            expected,
            actual,
        }) => {
            assert_eq!(at, stream);
            assert_eq!((expected, actual), (StreamVersion(2), StreamVersion(3)));
        }
        other => panic!("a writer between load and append must make it Stale, got {other:?}"),
    }
    assert_eq!(
        sample::version(&store, &stream).await,
        StreamVersion(3),
        "only the other writer's event was added"
    );
    let fresh = CommandOptions::from(Metadata::new()).expect_version(StreamVersion(3));
    if let Err(error) = repository.execute::<Tally, _>(&id, Add(1), fresh).await {
        panic!("the current token must pass: {error}");
    }
}

/// Sixteen sign-ups racing for one e-mail address, each for its own user, leave exactly one
/// user: the winner's two events commit together, every other sign-up is refused as taken,
/// and no loser's user stream holds anything.
pub async fn racing_sign_ups_for_one_address_leave_one_user<S: StoreUnderTest>(store: S) {
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for user in 0..RACERS as u32 {
        let (store, barrier) = (store.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let repository = Repository::new(store).with_max_retries(RACERS as u32);
            let sign_up = SignUp {
                user,
                email: "ada@example.com".to_owned(),
            };
            barrier.wait().await;
            (user, repository.decide(sign_up, Metadata::new()).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await {
            Ok((user, Ok(_))) => winners.push(user),
            Ok((_, Err(ExecuteError::Rejected(SignUpError::Taken)))) => {}
            Ok((user, Err(other))) => panic!("sign-up of user {user} failed otherwise: {other}"),
            Err(error) => panic!("a sign-up did not finish: {error}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one sign-up wins the address: {winners:?}"
    );
    for user in 0..RACERS as u32 {
        let expected = if user == winners[0] { 1 } else { 0 };
        assert_eq!(
            sample::version(&store, &stream_of("user", user)).await,
            StreamVersion(expected),
            "user {user}'s stream"
        );
    }
    let claims = read(
        &store,
        &stream_of("email", "ada@example.com"),
        ReadStream::forward(),
    )
    .await;
    assert_eq!(claims.len(), 1, "one claim of the address");
    assert_eq!(&*claims[0].payload, format!("\"{}\"", winners[0]));
}

/// A decision across streams with an idempotency key replays its first run across every
/// stream, and a conditional one names the stale stream.
pub async fn an_idempotent_decision_across_streams_replays<S: StoreUnderTest>(store: S) {
    let repository = Repository::new(store.clone());
    let sign_up = || SignUp {
        user: 7,
        email: "grace@example.com".to_owned(),
    };
    let first = match repository.decide(sign_up(), keyed("req-4")).await {
        Ok(first) => first,
        Err(error) => panic!("the first sign-up failed: {error}"),
    };
    let again = match repository.decide(sign_up(), keyed("req-4")).await {
        Ok(again) => again,
        Err(error) => panic!("the retried sign-up failed: {error}"),
    };
    assert!(again.replayed && !first.replayed);
    assert_eq!(
        again.streams, first.streams,
        "each stream's version and event ids"
    );
    assert_eq!(again.events, first.events);
    assert_eq!(again.global_position, first.global_position);
    assert_eq!(
        whole_log(&store).await.len(),
        2,
        "the sign-up's two events, once"
    );

    let stale = CommandOptions::new().expect_version(StreamVersion::NONE);
    match repository.decide(sign_up(), stale).await {
        Err(ExecuteError::Stale { stream, actual, .. }) => {
            assert_eq!((stream, actual), (stream_of("user", 7), StreamVersion(1)));
        }
        other => panic!("creating an existing user must be Stale, got {other:?}"),
    }
}
