//! The identity service's HTTP contract, over real HTTP on 127.0.0.1, on every store: each
//! scenario runs on `memory:`, on a SQLite file and on a PostgreSQL schema of its own
//! (`EVENTSRC_POSTGRES_URL`; without it the PostgreSQL runs print `EVENTSRC-POSTGRES-SKIPPED`
//! and pass, and CI fails on that line).

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsrc::store::ReadStream;
use eventsrc::{
    DocumentReader, EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, Repository,
    Store, StreamId,
};
use eventsrc_examples::identity::domain::{User, UserNameSet};
use eventsrc_examples::identity::http::router;
use eventsrc_examples::identity::service::{Config, Service};
use eventsrc_examples::identity::views::{UsersNew, UsersView};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

// --- the server, on each store -----------------------------------------------------------------

/// The stores a scenario runs on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// Events the users view has to work through before a read-your-writes read.
const BACKLOG: usize = 3000;

/// How long reads wait for a token in these tests.
const READ_WAIT: Duration = Duration::from_secs(2);

/// The service, served on a port of 127.0.0.1, and a client for it.
#[derive(Clone)]
struct Server {
    base: String,
    client: reqwest::Client,
    service: Arc<Service>,
    store: Store,
}

/// What a scenario leaves behind on its store: a file, or a schema.
enum Leftover {
    Nothing,
    File(PathBuf),
    Schema,
}

/// Opens `backend`'s store for `test`, or `None` after printing the skip marker.
async fn open(backend: Backend, test: &str) -> Option<(Store, Leftover)> {
    match backend {
        Backend::Memory => Some((Store::open("memory:").await.unwrap(), Leftover::Nothing)),
        Backend::Sqlite => {
            let file =
                std::env::temp_dir().join(format!("eventsrc-identity-{}.db", EventId::new()));
            let store = Store::open(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
            Some((store, Leftover::File(file)))
        }
        Backend::Postgres => {
            let server = match std::env::var("EVENTSRC_POSTGRES_URL") {
                Ok(url) if !url.is_empty() => url,
                _ => return skip(test, "set EVENTSRC_POSTGRES_URL"),
            };
            match Store::open(&fresh_schema(&server)).await {
                Ok(store) => Some((store, Leftover::Schema)),
                Err(error) => skip(test, &format!("the server did not answer ({error})")),
            }
        }
    }
}

/// `server` with `?schema=` naming a schema of this test alone, named as eventsrc-postgres's
/// tests name theirs (`eventsrc_test_<unix seconds>_<random>`), whose support code sweeps old
/// ones left by a failed run.
fn fresh_schema(server: &str) -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let random = EventId::new().0.simple().to_string();
    let schema = format!("eventsrc_test_{seconds}_{}", &random[random.len() - 12..]);
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}schema={schema}")
}

fn skip<T>(test: &str, why: &str) -> Option<T> {
    let line = format!(
        "\nEVENTSRC-POSTGRES-SKIPPED: `{test}` did not run: {why} \
         (e.g. EVENTSRC_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test)\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

async fn clean(store: &Store, leftover: Leftover) {
    match leftover {
        Leftover::Nothing => {}
        Leftover::File(file) => {
            let _ = eventsrc_sqlite::remove_database(&file);
        }
        Leftover::Schema => {
            let Store::Postgres(pg) = store else {
                panic!("expected a PostgreSQL store, got {store}");
            };
            let drop = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", pg.schema());
            pg.pool()
                .get()
                .await
                .unwrap()
                .batch_execute(&drop)
                .await
                .unwrap();
        }
    }
}

/// Serves a new service on `store` on a free port of 127.0.0.1 until `stop` is sent or dropped.
async fn serve(store: Store, stop: oneshot::Receiver<()>) -> (Server, tokio::task::JoinHandle<()>) {
    let config = Config {
        read_wait: READ_WAIT,
    };
    let service = Arc::new(Service::start(store.clone(), config).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(Arc::clone(&service));
    let serving = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop.await;
            })
            .await
            .unwrap();
    });
    let client = reqwest::Client::new();
    let server = Server {
        base,
        client,
        service,
        store,
    };
    (server, serving)
}

/// Runs `scenario` against a server on `backend`, then stops it and removes its store.
async fn run<F, Fut>(backend: Backend, test: &str, scenario: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some((store, leftover)) = open(backend, test).await else {
        return;
    };
    let (stop, stopped) = oneshot::channel();
    let (server, serving) = serve(store.clone(), stopped).await;
    scenario(server).await;
    let _ = stop.send(());
    serving.await.unwrap();
    clean(&store, leftover).await;
}

/// Stamps each scenario as a test on each store: `memory::name`, `sqlite::name`,
/// `postgres::name`.
macro_rules! on_every_store {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let test = concat!("memory::", stringify!($scenario));
                    super::run(super::Backend::Memory, test, super::$scenario).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let test = concat!("sqlite::", stringify!($scenario));
                    super::run(super::Backend::Sqlite, test, super::$scenario).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let test = concat!("postgres::", stringify!($scenario));
                    super::run(super::Backend::Postgres, test, super::$scenario).await;
                }
            )*
        }
    };
}

on_every_store!(
    a_create_with_if_none_match_gives_an_etag_and_a_second_create_fails,
    a_conditional_update_needs_the_current_etag,
    an_idempotent_retry_appends_once_and_answers_the_same,
    an_idempotency_key_reused_for_another_request_is_422,
    reads_with_the_token_see_the_write,
    a_read_waits_for_its_token_at_most_the_configured_time,
    invalid_fields_are_422_listing_each,
    an_address_with_a_control_character_is_422_naming_the_field,
    domain_refusals_are_409,
    unknown_ids_and_routes_are_404,
    malformed_json_is_400_and_a_wrong_shape_422,
    a_body_that_is_not_json_is_415,
    a_body_over_the_limit_is_413,
    odd_input_gets_a_problem_document_never_a_crash,
    concurrent_sign_ups_for_one_address_admit_exactly_one,
    changing_an_email_releases_the_old_address,
    groups_list_their_members,
    a_stored_v1_name_reads_as_v2,
    the_users_view_is_rebuilt_beside_the_live_one_and_switched_in,
);

// --- the client's side -------------------------------------------------------------------------

impl Server {
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    fn put_json(&self, path: &str, body: &Value) -> RequestBuilder {
        self.request(Method::PUT, path).json(body)
    }

    async fn sign_up(&self, id: &str, email: &str) -> Response {
        let body = json!({ "email": email, "given_name": "Ada", "family_name": "Lovelace" });
        self.put_json(&format!("/users/{id}"), &body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.request(Method::GET, path);
        if let Some(token) = token {
            request = request.header("Consistency-Token", token);
        }
        request.send().await.unwrap()
    }

    /// The stored events of `stream`, by type.
    async fn stream(&self, stream: &str) -> Vec<String> {
        let stream: StreamId = stream.parse().unwrap();
        let records = self
            .store
            .read_stream(&stream, ReadStream::forward())
            .await
            .unwrap();
        records.iter().map(|r| r.event_type.to_string()).collect()
    }
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn token(response: &Response) -> String {
    header(response, "consistency-token").expect("a write answers with a consistency token")
}

/// Asserts that `response` is a problem document of `status` and `kind`; returns it.
async fn problem(response: Response, status: u16, kind: &str) -> Value {
    let got = response.status().as_u16();
    let content_type = header(&response, "content-type");
    let body: Value = response.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(body["type"], format!("/problems/{kind}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

async fn ok_json(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    body
}

// --- the scenarios -----------------------------------------------------------------------------

async fn a_create_with_if_none_match_gives_an_etag_and_a_second_create_fails(server: Server) {
    let body =
        json!({ "email": "ada@example.com", "given_name": "Ada", "family_name": "Lovelace" });
    let create = || {
        server
            .put_json("/users/ada", &body)
            .header("If-None-Match", "*")
    };
    let created = create().send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(header(&created, "etag").as_deref(), Some("\"3\""));
    assert_eq!(header(&created, "location").as_deref(), Some("/users/ada"));
    let token = token(&created);
    assert!(token.parse::<GlobalPosition>().is_ok(), "{token}");
    let answer = ok_json(created, 201).await;
    assert_eq!(answer["version"], 3);
    assert_eq!(answer["consistency_token"], token.as_str());

    let again = create().send().await.unwrap();
    let body = problem(again, 412, "precondition-failed").await;
    assert_eq!(body["current_version"], 3);
    let plain = server.sign_up("ada", "other@example.com").await;
    problem(plain, 409, "refused").await;

    let read = server.get("/users/ada", Some(&token)).await;
    assert_eq!(header(&read, "etag").as_deref(), Some("\"3\""));
    let ada = ok_json(read, 200).await;
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["given_name"], "Ada");
}

async fn a_conditional_update_needs_the_current_etag(server: Server) {
    server.sign_up("ada", "ada@example.com").await;
    let rename = |etag: &str, given: &str| {
        let body = json!({ "given_name": given, "family_name": "King" });
        server
            .put_json("/users/ada/name", &body)
            .header("If-Match", etag)
    };
    let renamed = rename("\"3\"", "Augusta").send().await.unwrap();
    assert_eq!(renamed.status(), StatusCode::OK);
    assert_eq!(header(&renamed, "etag").as_deref(), Some("\"4\""));
    let token = token(&renamed);

    let stale = rename("\"3\"", "Ada").send().await.unwrap();
    assert_eq!(header(&stale, "etag").as_deref(), Some("\"4\""));
    let body = problem(stale, 412, "precondition-failed").await;
    assert_eq!(body["current_version"], 4);
    assert!(
        body["detail"].as_str().unwrap().contains("version 4"),
        "{body}"
    );

    let read = server.get("/users/ada", Some(&token)).await;
    let ada = ok_json(read, 200).await;
    assert_eq!(
        (ada["given_name"].as_str(), ada["version"].as_u64()),
        (Some("Augusta"), Some(4))
    );
    assert_eq!(
        server.stream("user-ada").await.len(),
        4,
        "the stale update appended nothing"
    );

    let garbage = rename("3", "Ada").send().await.unwrap();
    problem(garbage, 400, "bad-request").await;
}

async fn an_idempotent_retry_appends_once_and_answers_the_same(server: Server) {
    let body =
        json!({ "email": "ada@example.com", "given_name": "Ada", "family_name": "Lovelace" });
    let create = || {
        server
            .put_json("/users/ada", &body)
            .header("Idempotency-Key", "sign-up-ada-1")
    };
    let first = create().send().await.unwrap();
    let retried = create().send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert_eq!(header(&first, "idempotent-replayed"), None);
    assert_eq!(
        header(&retried, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(header(&retried, "etag"), header(&first, "etag"));
    assert_eq!(token(&retried), token(&first));
    assert_eq!(ok_json(retried, 201).await, ok_json(first, 201).await);
    let user = ["user.registered", "user.name_set", "user.email_set"];
    assert_eq!(server.stream("user-ada").await, user);
    assert_eq!(
        server.stream("email-ada@example.com").await,
        ["email.claimed"]
    );

    let rename = || {
        let body = json!({ "given_name": "Augusta" });
        server
            .put_json("/users/ada/name", &body)
            .header("Idempotency-Key", "rename-ada-1")
    };
    let first = rename().send().await.unwrap();
    let retried = rename().send().await.unwrap();
    assert_eq!(
        header(&retried, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(ok_json(retried, 200).await, ok_json(first, 200).await);
    assert_eq!(server.stream("user-ada").await.len(), 4);

    // A change of address retried: the first run moved the user, and the retry still names
    // the streams the first run wrote (the old address among them).
    let move_to = || {
        let body = json!({ "email": "countess@example.com" });
        server
            .put_json("/users/ada/email", &body)
            .header("Idempotency-Key", "move-ada-1")
    };
    let first = move_to().send().await.unwrap();
    let retried = move_to().send().await.unwrap();
    assert_eq!(
        header(&retried, "idempotent-replayed").as_deref(),
        Some("true")
    );
    let answer = ok_json(first, 200).await;
    assert_eq!(ok_json(retried, 200).await, answer);
    assert_eq!(
        answer["events"],
        json!(["user.email_set", "email.claimed", "email.released"])
    );
    assert_eq!(server.stream("user-ada").await.len(), 5);
    let old = server.stream("email-ada@example.com").await;
    assert_eq!(old, ["email.claimed", "email.released"]);
}

async fn an_idempotency_key_reused_for_another_request_is_422(server: Server) {
    server.sign_up("ada", "ada@example.com").await;
    let rename = |given: &str| {
        let body = json!({ "given_name": given });
        server
            .put_json("/users/ada/name", &body)
            .header("Idempotency-Key", "key-7")
    };
    assert_eq!(
        rename("Augusta").send().await.unwrap().status(),
        StatusCode::OK
    );
    let reused = rename("Ada").send().await.unwrap();
    let body = problem(reused, 422, "idempotency-key-reused").await;
    assert!(body["detail"].as_str().unwrap().contains("key-7"), "{body}");
    let elsewhere = server
        .request(Method::DELETE, "/users/ada")
        .header("Idempotency-Key", "key-7")
        .send()
        .await
        .unwrap();
    problem(elsewhere, 422, "idempotency-key-reused").await;
    assert_eq!(server.stream("user-ada").await.len(), 4);
}

async fn reads_with_the_token_see_the_write(server: Server) {
    // A backlog for the users view, so that it is still behind when the sign-up answers: a
    // read that did not wait for the token would not find ada.
    let backlog = (0..BACKLOG).map(|n| {
        let name = UserNameSet {
            given_name: format!("N{n}"),
            family_name: String::new(),
        };
        NewEvent::from_event(&name, Default::default()).unwrap()
    });
    let stream = StreamId::new("user", "backlog").unwrap();
    server
        .store
        .append(&stream, ExpectedVersion::Any, backlog.collect())
        .await
        .unwrap();
    let created = server.sign_up("ada", "ada@example.com").await;
    let mut token = token(&created);
    let ada = ok_json(server.get("/users/ada", Some(&token)).await, 200).await;
    assert_eq!(ada["version"], 3);
    for round in 0..12 {
        let given = format!("Ada-{round}");
        let read = server.get("/users/ada", Some(&token)).await;
        assert_eq!(read.status(), StatusCode::OK);
        let body = json!({ "given_name": given });
        let renamed = server
            .put_json("/users/ada/name", &body)
            .send()
            .await
            .unwrap();
        token = self::token(&renamed);
        let read = server.get("/users/ada", Some(&token)).await;
        let ada = ok_json(read, 200).await;
        assert_eq!(ada["given_name"], given.as_str(), "round {round}");
        assert_eq!(ada["version"], 4 + round);
        let found = server
            .get("/users?email=ADA%40example.com", Some(&token))
            .await;
        assert_eq!(ok_json(found, 200).await[0]["given_name"], given.as_str());
    }
    // A no-op answers the resource's latest token, which the view has reached.
    let body = json!({ "given_name": "Ada-11" });
    let same = server
        .put_json("/users/ada/name", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(self::token(&same), token);
    assert_eq!(ok_json(same, 200).await["events"], json!([]));
}

async fn a_read_waits_for_its_token_at_most_the_configured_time(server: Server) {
    let created = server.sign_up("ada", "ada@example.com").await;
    let written: GlobalPosition = token(&created).parse().unwrap();
    let ahead = GlobalPosition::new(written.commit + 1_000_000, 0).to_string();
    let started = Instant::now();
    let read = server.get("/users/ada", Some(&ahead)).await;
    let waited = started.elapsed();
    assert_eq!(header(&read, "retry-after").as_deref(), Some("1"));
    let body = problem(read, 503, "not-yet-visible").await;
    assert_eq!(body["consistency_token"], ahead.as_str());
    assert!(waited >= READ_WAIT, "answered after {waited:?}");
    assert!(
        waited < READ_WAIT + Duration::from_secs(3),
        "answered after {waited:?}"
    );
    let groups = server.get("/groups/staff", Some(&ahead)).await;
    problem(groups, 503, "not-yet-visible").await;

    let bad = server.get("/users/ada", Some("yesterday")).await;
    let body = problem(bad, 400, "bad-request").await;
    assert!(
        body["detail"].as_str().unwrap().contains("commit:sequence"),
        "{body}"
    );
}

async fn invalid_fields_are_422_listing_each(server: Server) {
    let body = json!({ "email": "not an address", "given_name": " ", "family_name": "L" });
    let response = server
        .put_json("/users/bad%20id", &body)
        .send()
        .await
        .unwrap();
    let problem = problem(response, 422, "invalid-fields").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["user", "email", "given_name"], "{problem}");
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{problem}"
    );
    assert!(server.stream("user-bad id").await.is_empty());
}

async fn an_address_with_a_control_character_is_422_naming_the_field(server: Server) {
    // The address names the stream of its owner, which cannot hold a control character: the
    // command's validation answers for it (it used to be a 500 about a stream name).
    let fields = |problem: &Value| -> Vec<String> {
        let errors = problem["errors"].as_array().cloned().unwrap_or_default();
        errors.iter().map(|e| e["field"].to_string()).collect()
    };
    let response = server.sign_up("ada", "al\u{7f}m@example.com").await;
    let refused = problem(response, 422, "invalid-fields").await;
    assert_eq!(fields(&refused), ["\"email\""], "{refused}");
    assert!(server.stream("user-ada").await.is_empty());

    ok_json(server.sign_up("ada", "ada@example.com").await, 201).await;
    let body = json!({ "email": "ada\u{0}@example.com" });
    let response = server
        .put_json("/users/ada/email", &body)
        .send()
        .await
        .unwrap();
    let refused = problem(response, 422, "invalid-fields").await;
    assert_eq!(fields(&refused), ["\"email\""], "{refused}");
}

async fn domain_refusals_are_409(server: Server) {
    server.sign_up("ada", "ada@example.com").await;
    let taken = server.sign_up("grace", "ADA@example.com").await;
    let body = problem(taken, 409, "refused").await;
    assert!(
        body["detail"].as_str().unwrap().contains("ada@example.com"),
        "{body}"
    );
    let deactivated = server
        .request(Method::DELETE, "/users/ada")
        .send()
        .await
        .unwrap();
    assert_eq!(deactivated.status(), StatusCode::OK);
    let rename = server
        .put_json("/users/ada/name", &json!({ "given_name": "Augusta" }))
        .send()
        .await
        .unwrap();
    problem(rename, 409, "refused").await;
}

async fn unknown_ids_and_routes_are_404(server: Server) {
    problem(server.get("/users/nobody", None).await, 404, "not-found").await;
    problem(server.get("/groups/nothing", None).await, 404, "not-found").await;
    let rename = server
        .put_json("/users/nobody/name", &json!({ "given_name": "No" }))
        .send()
        .await
        .unwrap();
    problem(rename, 404, "not-found").await;
    let email = server
        .put_json("/users/nobody/email", &json!({ "email": "no@example.com" }))
        .send()
        .await
        .unwrap();
    problem(email, 404, "not-found").await;
    let join = server
        .request(Method::PUT, "/groups/nothing/members/nobody")
        .send()
        .await
        .unwrap();
    problem(join, 404, "not-found").await;
    problem(server.get("/nowhere", None).await, 404, "not-found").await;
    let post = server
        .request(Method::POST, "/users/ada")
        .send()
        .await
        .unwrap();
    problem(post, 405, "method-not-allowed").await;
}

async fn malformed_json_is_400_and_a_wrong_shape_422(server: Server) {
    let send = |body: &'static str| {
        server
            .request(Method::PUT, "/users/ada")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let broken = problem(
        send(r#"{"email": "ada@example.com","#).await.unwrap(),
        400,
        "malformed-json",
    )
    .await;
    let detail = broken["detail"].as_str().unwrap();
    assert!(
        detail.contains("EOF") && detail.contains("line 1"),
        "{broken}"
    );
    let shape = problem(
        send(r#"{"email": 7, "given_name": "Ada"}"#).await.unwrap(),
        422,
        "invalid-fields",
    )
    .await;
    assert!(
        shape["detail"].as_str().unwrap().contains("invalid type"),
        "{shape}"
    );
    let unknown = problem(
        send(r#"{"email": "a@b.c", "given_name": "A", "admin": true}"#)
            .await
            .unwrap(),
        422,
        "invalid-fields",
    )
    .await;
    assert!(
        unknown["detail"].as_str().unwrap().contains("admin"),
        "{unknown}"
    );
    assert!(server.stream("user-ada").await.is_empty());
}

async fn a_body_that_is_not_json_is_415(server: Server) {
    let send = |content_type: Option<&str>| {
        let mut request = server
            .request(Method::PUT, "/users/ada")
            .body(r#"{"email": "ada@example.com", "given_name": "Ada"}"#);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        request.send()
    };
    problem(
        send(Some("text/plain")).await.unwrap(),
        415,
        "unsupported-media-type",
    )
    .await;
    problem(send(None).await.unwrap(), 415, "unsupported-media-type").await;
    let json = send(Some("application/json; charset=utf-8")).await.unwrap();
    assert_eq!(json.status(), StatusCode::CREATED);
}

async fn a_body_over_the_limit_is_413(server: Server) {
    let name = "a".repeat(65 * 1024);
    let body = json!({ "email": "ada@example.com", "given_name": name });
    let response = server.put_json("/users/ada", &body).send().await.unwrap();
    problem(response, 413, "too-large").await;
    assert!(server.stream("user-ada").await.is_empty());
}

async fn odd_input_gets_a_problem_document_never_a_crash(server: Server) {
    let created = server.sign_up("ada", "ada@example.com").await;
    let token = token(&created);
    let cases: Vec<(RequestBuilder, u16)> = vec![
        (
            server
                .request(Method::PUT, "/users/ada/name")
                .header("Content-Type", "application/json")
                .body(vec![0xff, 0xfe, 0x00]),
            400,
        ),
        (
            server
                .request(Method::PUT, "/users/ada/name")
                .header("Content-Type", "application/json")
                .body("[]"),
            422,
        ),
        (
            server
                .request(Method::PUT, "/users/ada/name")
                .header("Content-Type", "application/json")
                .body("null"),
            422,
        ),
        (
            server
                .request(Method::PUT, "/users/ada/name")
                .header("Content-Type", "application/json")
                .body(""),
            400,
        ),
        (server.request(Method::GET, "/users/%FF"), 400),
        (
            server
                .request(Method::PUT, "/users/%FF/name")
                .json(&json!({ "given_name": "X" })),
            400,
        ),
        (
            server
                .put_json("/users/ada/name", &json!({ "given_name": "X" }))
                .header("If-Match", "\"99999999999999999999999\""),
            400,
        ),
        (
            server
                .put_json("/users/ada/name", &json!({ "given_name": "X" }))
                .header("If-Match", "\"1\", \"2\""),
            400,
        ),
        (
            server
                .put_json("/users/ada/name", &json!({ "given_name": "X" }))
                .header("If-Match", "\"3\"")
                .header("If-None-Match", "*"),
            400,
        ),
        (
            server
                .put_json("/users/ada/name", &json!({ "given_name": "X" }))
                .header("If-None-Match", "\"3\""),
            400,
        ),
        (
            server
                .put_json("/users/ada/name", &json!({ "given_name": "X" }))
                .header("Idempotency-Key", "k".repeat(300)),
            400,
        ),
        (
            server.put_json("/users/ada/name", &json!({ "given_name": "X\u{0}" })),
            422,
        ),
        (
            server.put_json("/users/ada/name", &json!({ "given_name": "X".repeat(101) })),
            422,
        ),
        (
            server.put_json("/users/ada/email", &json!({ "email": "@" })),
            422,
        ),
        (server.request(Method::GET, "/groups"), 400),
        (
            server
                .request(Method::GET, "/users/ada")
                .header("Consistency-Token", "1:2:3"),
            400,
        ),
    ];
    for (index, (request, status)) in cases.into_iter().enumerate() {
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let content_type = header(&response, "content-type");
        let body = response.text().await.unwrap();
        assert_eq!(got, status, "case {index}: {body}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "case {index}"
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["status"], status, "case {index}");
    }
    // Still serving, and nothing of the above was stored.
    assert_eq!(server.stream("user-ada").await.len(), 3);
    let read = server.get("/users/ada", Some(&token)).await;
    assert_eq!(read.status(), StatusCode::OK);
}

async fn concurrent_sign_ups_for_one_address_admit_exactly_one(server: Server) {
    const CLIENTS: usize = 16;
    const ADDRESSES: usize = 4;
    let mut racing = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let server = server.clone();
        racing.spawn(async move {
            let email = format!("shared-{}@example.com", client % ADDRESSES);
            let response = server.sign_up(&format!("user-{client}"), &email).await;
            let status = response.status().as_u16();
            let token = header(&response, "consistency-token");
            let body: Value = response.json().await.unwrap();
            (client, status, token, body)
        });
    }
    let mut winners = vec![Vec::new(); ADDRESSES];
    let mut latest: Option<GlobalPosition> = None;
    for (client, status, token, body) in racing.join_all().await {
        match status {
            201 => {
                winners[client % ADDRESSES].push(client);
                let token: GlobalPosition = token.unwrap().parse().unwrap();
                latest = latest.max(Some(token));
            }
            409 => assert!(
                ["/problems/refused", "/problems/conflict"]
                    .contains(&body["type"].as_str().unwrap()),
                "{body}"
            ),
            other => panic!("client {client}: {other} {body}"),
        }
    }
    let latest = latest.unwrap().to_string();
    for (address, won) in winners.iter().enumerate() {
        assert_eq!(won.len(), 1, "address {address}: winners {won:?}");
        let email = format!("shared-{address}@example.com");
        assert_eq!(
            server.stream(&format!("email-{email}")).await,
            ["email.claimed"]
        );
        let found = server
            .get(&format!("/users?email={email}"), Some(&latest))
            .await;
        let found = ok_json(found, 200).await;
        assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
        assert_eq!(found[0]["id"], format!("user-{}", won[0]));
    }
    for client in 0..CLIENTS {
        let registered = !server
            .stream(&format!("user-user-{client}"))
            .await
            .is_empty();
        assert_eq!(
            registered,
            winners.iter().any(|w| w.contains(&client)),
            "client {client}"
        );
    }
}

async fn changing_an_email_releases_the_old_address(server: Server) {
    server.sign_up("ada", "ada@example.com").await;
    server.sign_up("grace", "grace@example.com").await;
    let change = |email: &str| {
        server
            .put_json("/users/ada/email", &json!({ "email": email }))
            .header("If-Match", "\"3\"")
            .send()
    };
    problem(change("grace@example.com").await.unwrap(), 409, "refused").await;
    let moved = change("Countess@Example.com").await.unwrap();
    assert_eq!(header(&moved, "etag").as_deref(), Some("\"4\""));
    let token = token(&moved);
    let answer = ok_json(moved, 200).await;
    assert_eq!(
        answer["events"],
        json!(["user.email_set", "email.claimed", "email.released"])
    );
    assert_eq!(
        server.stream("email-ada@example.com").await,
        ["email.claimed", "email.released"]
    );
    assert_eq!(
        server.stream("email-countess@example.com").await,
        ["email.claimed"]
    );

    let old = server
        .get("/users?email=ada@example.com", Some(&token))
        .await;
    assert_eq!(ok_json(old, 200).await, json!([]));
    let new = server
        .get("/users?email=countess@example.com", Some(&token))
        .await;
    assert_eq!(ok_json(new, 200).await[0]["id"], "ada");
    let taken_again = server.sign_up("charles", "ada@example.com").await;
    assert_eq!(
        taken_again.status(),
        StatusCode::CREATED,
        "the old address is free again"
    );
    let stale = change("ada2@example.com").await.unwrap();
    problem(stale, 412, "precondition-failed").await;
}

async fn groups_list_their_members(server: Server) {
    server.sign_up("ada", "ada@example.com").await;
    server.sign_up("grace", "grace@example.com").await;
    let created = server
        .put_json("/groups/analysts", &json!({ "name": "Analysts" }))
        .header("If-None-Match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        header(&created, "location").as_deref(),
        Some("/groups/analysts")
    );
    let join = |user: &str| {
        server
            .request(Method::PUT, &format!("/groups/analysts/members/{user}"))
            .send()
    };
    assert_eq!(join("ada").await.unwrap().status(), StatusCode::OK);
    let grace = join("grace").await.unwrap();
    assert_eq!(header(&grace, "etag").as_deref(), Some("\"3\""));
    problem(join("nobody").await.unwrap(), 404, "not-found").await;
    let token = token(&grace);
    let group = ok_json(server.get("/groups/analysts", Some(&token)).await, 200).await;
    assert_eq!(group["members"], json!(["ada", "grace"]));
    let of_ada = ok_json(server.get("/groups?member=ada", Some(&token)).await, 200).await;
    assert_eq!(of_ada[0]["id"], "analysts");

    let left = server
        .request(Method::DELETE, "/groups/analysts/members/ada")
        .send()
        .await
        .unwrap();
    let token = self::token(&left);
    let group = ok_json(server.get("/groups/analysts", Some(&token)).await, 200).await;
    assert_eq!(group["members"], json!(["grace"]));
    server
        .request(Method::DELETE, "/users/ada")
        .send()
        .await
        .unwrap();
    problem(join("ada").await.unwrap(), 409, "refused").await;
}

async fn a_stored_v1_name_reads_as_v2(server: Server) {
    let stream = StreamId::new("user", "grace").unwrap();
    let events = vec![
        NewEvent::raw("user.registered", 1, "{}"),
        NewEvent::raw("user.name_set", 1, r#"{"name":"Grace Brewster Hopper"}"#),
    ];
    let appended = server
        .store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    let token = appended.position.to_string();
    let grace = ok_json(server.get("/users/grace", Some(&token)).await, 200).await;
    assert_eq!(grace["given_name"], "Grace");
    assert_eq!(grace["family_name"], "Brewster Hopper");

    // The aggregate reads it as version 2 too, and a rename to the same name is a no-op.
    let repository = Repository::new(server.store.clone());
    let loaded = repository.load::<User>(&"grace".to_owned()).await.unwrap();
    assert_eq!(loaded.state.name(), ("Grace", "Brewster Hopper"));
    let same = json!({ "given_name": "Grace", "family_name": "Brewster Hopper" });
    let renamed = server
        .put_json("/users/grace/name", &same)
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(renamed, 200).await["events"], json!([]));
}

async fn the_users_view_is_rebuilt_beside_the_live_one_and_switched_in(server: Server) {
    for (id, email) in [("ada", "ada@example.com"), ("grace", "grace@example.com")] {
        server.sign_up(id, email).await;
    }
    let views = ok_json(server.get("/admin/views", None).await, 200).await;
    assert_eq!(views["users"], "users");
    let rebuild = || {
        server
            .request(Method::POST, "/admin/views/users/rebuild")
            .send()
    };
    let rebuilt = ok_json(rebuild().await.unwrap(), 200).await;
    assert_eq!(rebuilt["view"], "users_new");
    assert!(rebuilt["handled"].as_u64().unwrap() >= 6, "{rebuilt}");
    let views = ok_json(server.get("/admin/views", None).await, 200).await;
    assert_eq!(views["users"], "users_new");
    assert_eq!(server.service.users_view(), "users_new");

    // The rebuilt view holds every user, and follows new writes.
    let rebuilt_view = DocumentReader::<_, UsersView<UsersNew>>::new(server.store.clone());
    assert_eq!(rebuilt_view.with_prefix("").await.unwrap().len(), 2);
    let renamed = server
        .put_json("/users/ada/name", &json!({ "given_name": "Augusta" }))
        .send()
        .await
        .unwrap();
    let token = token(&renamed);
    let ada = ok_json(server.get("/users/ada", Some(&token)).await, 200).await;
    assert_eq!(ada["given_name"], "Augusta");
    let stored = rebuilt_view.get("ada").await.unwrap().unwrap();
    assert_eq!(stored.given_name, "Augusta");
    problem(rebuild().await.unwrap(), 409, "refused").await;

    // The switch is recorded: the next start reads from the rebuilt view.
    let restarted = Service::start(server.store.clone(), Config::default())
        .await
        .unwrap();
    assert_eq!(restarted.users_view(), "users_new");
    let token = token.parse().unwrap();
    let ada = restarted.user("ada", Some(token)).await.unwrap().unwrap();
    assert_eq!(ada.given_name, "Augusta");
}
