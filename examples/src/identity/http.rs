//! The HTTP contract of the identity service.
//!
//! | route | does |
//! |---|---|
//! | `PUT /users/{id}` `{"email","given_name","family_name"}` | signs a user up (201) |
//! | `PUT /users/{id}/name` `{"given_name","family_name"}` | sets the name |
//! | `PUT /users/{id}/email` `{"email"}` | moves the user to another address |
//! | `DELETE /users/{id}` | deactivates the user |
//! | `GET /users/{id}`, `GET /users?email=...`, `GET /users` | reads the users view |
//! | `PUT /groups/{id}` `{"name"}` | creates a group (201) |
//! | `PUT /groups/{id}/members/{user}`, `DELETE` the same | adds, removes a member |
//! | `GET /groups/{id}`, `GET /groups?member=...` | reads the members view |
//! | `GET /admin/views`, `POST /admin/views/users/rebuild` | which views answer; the blue/green rebuild |
//!
//! Writes answer `{"stream","version","events","consistency_token"}` with the headers
//! `ETag` (the resource's stream version, quoted: `"3"`) and `Consistency-Token` (the
//! global position of the write, `commit:sequence`).
//!
//! - `If-Match: "3"` makes a write conditional on the resource being at version 3; another
//!   version is `412 Precondition Failed`, with the current version in the body and the
//!   `ETag` header. `If-None-Match: *` makes it conditional on the resource not existing.
//! - `Idempotency-Key: <key>` makes a write idempotent: sent again with the same method, path
//!   and body, it appends nothing and answers what the first run answered, with
//!   `Idempotent-Replayed: true`. The key sent with another request is a 422.
//! - A read with `Consistency-Token: <token>` waits until its view has reached the token,
//!   at most the configured wait; then `503` with `Retry-After`.
//!
//! Every error is a problem document ([`problem`](super::problem)).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use eventsrc::{CommandOptions, GlobalPosition, Metadata, StreamId, StreamVersion};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::domain::{AddMember, CreateGroup, Deactivate, RemoveMember, SetName, SignUp};
use super::problem::{Kind, Problem, etag};
use super::service::{ReadError, RebuildError, Service, WriteResult, Written};

/// The header carrying the consistency token, on write responses and on reads that wait.
pub const CONSISTENCY_TOKEN: &str = "consistency-token";
/// The header of an idempotent write.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header of an answer replayed for an idempotency key (`true`).
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// The largest request body taken: 64 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;
/// The longest idempotency key taken.
pub const MAX_KEY_LEN: usize = 255;

type Shared = State<Arc<Service>>;
type Answer = Result<Response, Problem>;

/// The service's routes, for `axum::serve`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/users", get(list_users))
        .route("/users/{id}", get(get_user).put(sign_up).delete(deactivate))
        .route("/users/{id}/name", put(set_name))
        .route("/users/{id}/email", put(change_email))
        .route("/groups", get(list_groups))
        .route("/groups/{id}", get(get_group).put(create_group))
        .route(
            "/groups/{id}/members/{user}",
            put(add_member).delete(remove_member),
        )
        .route("/admin/views", get(views))
        .route("/admin/views/users/rebuild", post(rebuild_users))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(service)
}

/// [`router`], plus `GET /metrics`: every metric of `eventsrc::telemetry` (and any other the
/// application records) in Prometheus's text format, rendered by `metrics`, the handle of the
/// Prometheus recorder the program installed.
///
/// ```no_run
/// # async fn demo(service: std::sync::Arc<eventsrc_examples::identity::service::Service>) -> Result<(), Box<dyn std::error::Error>> {
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let metrics = PrometheusBuilder::new().install_recorder()?;
/// let app = eventsrc_examples::identity::http::router_with_metrics(service, metrics);
/// # let _ = app; Ok(()) }
/// ```
pub fn router_with_metrics(
    service: Arc<Service>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) -> Router {
    router(service).route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    )
}

// --- request bodies ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUpBody {
    email: String,
    given_name: String,
    #[serde(default)]
    family_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    given_name: String,
    #[serde(default)]
    family_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailBody {
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: String,
}

#[derive(Deserialize)]
struct UsersQuery {
    email: Option<String>,
}

#[derive(Deserialize)]
struct GroupsQuery {
    member: String,
}

/// What a write handler reads of its request besides the path: method, URI, headers, body.
/// Handlers take it as `Result<Write, Problem>` and unwrap it after the path, so a bad path
/// is reported before a bad body.
struct Write {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Write {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let (method, uri, headers) = (
            request.method().clone(),
            request.uri().clone(),
            request.headers().clone(),
        );
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| rejected(rejection.status(), rejection.body_text()))?;
        Ok(Self {
            method,
            uri,
            headers,
            body,
        })
    }
}

impl Write {
    /// The body as `T`: 415 unless it is JSON, 400 for JSON that does not parse, 422 for JSON
    /// of another shape.
    fn json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        require_json(&self.headers)?;
        serde_json::from_slice(&self.body).map_err(|error| {
            if error.is_data() {
                let detail = format!("the body does not fit this request: {error}");
                Problem::new(Kind::InvalidFields, detail)
            } else {
                let detail = format!("the body is not valid JSON: {error}");
                Problem::new(Kind::MalformedJson, detail)
            }
        })
    }

    /// The command options its headers ask for: `If-Match`, `If-None-Match: *`,
    /// `Idempotency-Key` (fingerprinted with the method, the path and the body).
    fn options(&self) -> Result<CommandOptions, Problem> {
        let mut options = CommandOptions::from(Metadata::new());
        match (if_match(&self.headers)?, if_none_match(&self.headers)?) {
            (Some(_), true) => {
                let detail = "send either If-Match or If-None-Match, not both";
                return Err(Problem::new(Kind::BadRequest, detail));
            }
            (Some(version), false) => options = options.expect_version(version),
            (None, true) => options = options.expect_version(StreamVersion::NONE),
            (None, false) => {}
        }
        if let Some(key) = idempotency_key(&self.headers)? {
            let mut fingerprint = format!("{} {}\n", self.method, self.uri.path()).into_bytes();
            fingerprint.extend_from_slice(&self.body);
            options = options.idempotency_key(key).fingerprint(fingerprint);
        }
        Ok(options)
    }
}

// --- headers -----------------------------------------------------------------------------------

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Problem> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        let detail = format!("send one {name} header, not several");
        return Err(Problem::new(Kind::BadRequest, detail));
    }
    let text = value.to_str().map_err(|_| {
        Problem::new(
            Kind::BadRequest,
            format!("{name} must be visible ASCII text"),
        )
    })?;
    Ok(Some(text.trim()))
}

/// `If-Match: "3"`: the version the client read. `*` asks for nothing more than the domain
/// does (commands on what does not exist are refused).
fn if_match(headers: &HeaderMap) -> Result<Option<StreamVersion>, Problem> {
    let Some(text) = header_text(headers, "if-match")? else {
        return Ok(None);
    };
    if text == "*" {
        return Ok(None);
    }
    let version = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<u64>().ok());
    match version {
        Some(version) => Ok(Some(StreamVersion(version))),
        None => Err(Problem::new(
            Kind::BadRequest,
            format!("If-Match must be one ETag this service gave, such as \"3\", not `{text}`"),
        )),
    }
}

/// `If-None-Match: *`: only if the resource does not exist yet.
fn if_none_match(headers: &HeaderMap) -> Result<bool, Problem> {
    match header_text(headers, "if-none-match")? {
        None => Ok(false),
        Some("*") => Ok(true),
        Some(other) => Err(Problem::new(
            Kind::BadRequest,
            format!("on writes, If-None-Match takes only `*` (create), not `{other}`"),
        )),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(key) = header_text(headers, IDEMPOTENCY_KEY)? else {
        return Ok(None);
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        let detail = format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters long");
        return Err(Problem::new(Kind::BadRequest, detail));
    }
    Ok(Some(key.to_owned()))
}

fn consistency_token(headers: &HeaderMap) -> Result<Option<GlobalPosition>, Problem> {
    let Some(text) = header_text(headers, CONSISTENCY_TOKEN)? else {
        return Ok(None);
    };
    let token = text
        .parse()
        .map_err(|error| Problem::new(Kind::BadRequest, format!("Consistency-Token: {error}")))?;
    Ok(Some(token))
}

/// 415 unless the request says its body is JSON (`application/json`, or a `+json` type).
fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let content_type = header_text(headers, header::CONTENT_TYPE.as_str())?.unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || essence.starts_with("application/") && essence.ends_with("+json");
    if json {
        return Ok(());
    }
    let given = if content_type.is_empty() {
        "no Content-Type".to_owned()
    } else {
        format!("Content-Type `{content_type}`")
    };
    let detail = format!("send the body as Content-Type: application/json, not with {given}");
    Err(Problem::new(Kind::UnsupportedMediaType, detail))
}

// --- responses ---------------------------------------------------------------------------------

/// A rejection of axum's extractors, as a problem: 413 for a body over the limit, 400 else.
fn rejected(status: StatusCode, text: String) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let detail = format!("the body is larger than the {BODY_LIMIT} bytes this service takes");
        return Problem::new(Kind::TooLarge, detail);
    }
    Problem::new(Kind::BadRequest, text)
}

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, Problem> {
    path.map(|Path(value)| value)
        .map_err(|rejection| rejected(rejection.status(), rejection.body_text()))
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query
        .map(|Query(value)| value)
        .map_err(|rejection| rejected(rejection.status(), rejection.body_text()))
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn insert(response: &mut Response, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// The answer to a write: the same status, body and headers for its first run and its replays
/// (which add `Idempotent-Replayed: true`).
fn written(result: WriteResult, status: StatusCode, resource: &StreamId) -> Answer {
    let written: Written = result.map_err(|error| Problem::execute(error, resource))?;
    let token = written.token.map(|t| t.to_string());
    let body = json!({
        "stream": written.stream.as_str(),
        "version": written.version.get(),
        "events": written.events,
        "consistency_token": token,
    });
    let mut response = json_response(status, &body);
    insert(&mut response, header::ETAG, &etag(written.version.get()));
    if let Some(token) = &token {
        insert(
            &mut response,
            HeaderName::from_static(CONSISTENCY_TOKEN),
            token,
        );
    }
    if status == StatusCode::CREATED {
        let location = format!("/{}s/{}", written.stream.category(), written.stream.id());
        insert(&mut response, header::LOCATION, &location);
    }
    if written.replayed {
        insert(
            &mut response,
            HeaderName::from_static(IDEMPOTENT_REPLAYED),
            "true",
        );
    }
    Ok(response)
}

/// A document of a view, with its version as `ETag`.
fn document(version: u64, document: &impl serde::Serialize) -> Answer {
    let body = serde_json::to_value(document).map_err(|e| Problem::internal(&e))?;
    let mut response = json_response(StatusCode::OK, &body);
    insert(&mut response, header::ETAG, &etag(version));
    Ok(response)
}

fn list(documents: &impl serde::Serialize) -> Answer {
    let body = serde_json::to_value(documents).map_err(|e| Problem::internal(&e))?;
    Ok(json_response(StatusCode::OK, &body))
}

fn read_problem(error: ReadError) -> Problem {
    match error {
        error @ ReadError::NotYet { token, .. } => {
            let mut problem = Problem::new(Kind::NotYetVisible, error.to_string())
                .with_header(header::RETRY_AFTER, "1");
            problem.extensions.consistency_token = Some(token.to_string());
            problem
        }
        ReadError::Documents(error) => Problem::internal(&error),
    }
}

fn stream(category: &str, id: &str) -> Result<StreamId, Problem> {
    StreamId::new(category, id).map_err(|error| Problem::new(Kind::BadRequest, error.to_string()))
}

// --- users -------------------------------------------------------------------------------------

async fn sign_up(
    State(service): Shared,
    id: Result<Path<String>, PathRejection>,
    write: Result<Write, Problem>,
) -> Answer {
    let user = path(id)?;
    let write = write?;
    let SignUpBody {
        email,
        given_name,
        family_name,
    } = write.json()?;
    let resource = stream("user", &user)?;
    let command = SignUp {
        user,
        email,
        given_name,
        family_name,
    };
    let result = service.sign_up(command, write.options()?).await;
    written(result, StatusCode::CREATED, &resource)
}

async fn set_name(
    State(service): Shared,
    id: Result<Path<String>, PathRejection>,
    write: Result<Write, Problem>,
) -> Answer {
    let user = path(id)?;
    let write = write?;
    let NameBody {
        given_name,
        family_name,
    } = write.json()?;
    let resource = stream("user", &user)?;
    let command = SetName {
        user,
        given_name,
        family_name,
    };
    let result = service.set_name(command, write.options()?).await;
    written(result, StatusCode::OK, &resource)
}

async fn change_email(
    State(service): Shared,
    id: Result<Path<String>, PathRejection>,
    write: Result<Write, Problem>,
) -> Answer {
    let user = path(id)?;
    let write = write?;
    let EmailBody { email } = write.json()?;
    let resource = stream("user", &user)?;
    let result = service.change_email(&user, &email, write.options()?).await;
    written(result, StatusCode::OK, &resource)
}

async fn deactivate(
    State(service): Shared,
    id: Result<Path<String>, PathRejection>,
    write: Result<Write, Problem>,
) -> Answer {
    let user = path(id)?;
    let write = write?;
    let resource = stream("user", &user)?;
    let result = service
        .deactivate(Deactivate { user }, write.options()?)
        .await;
    written(result, StatusCode::OK, &resource)
}

async fn get_user(
    State(service): Shared,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Answer {
    let id = path(id)?;
    let token = consistency_token(&headers)?;
    let user = service.user(&id, token).await.map_err(read_problem)?;
    let user =
        user.ok_or_else(|| Problem::new(Kind::NotFound, format!("there is no user `{id}`")))?;
    document(user.version, &user)
}

async fn list_users(
    State(service): Shared,
    params: Result<Query<UsersQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Answer {
    let UsersQuery { email } = query(params)?;
    let token = consistency_token(&headers)?;
    let users = service
        .users(email.as_deref(), token)
        .await
        .map_err(read_problem)?;
    list(&users)
}

// --- groups ------------------------------------------------------------------------------------

async fn create_group(
    State(service): Shared,
    id: Result<Path<String>, PathRejection>,
    write: Result<Write, Problem>,
) -> Answer {
    let group = path(id)?;
    let write = write?;
    let GroupBody { name } = write.json()?;
    let resource = stream("group", &group)?;
    let result = service
        .create_group(CreateGroup { group, name }, write.options()?)
        .await;
    written(result, StatusCode::CREATED, &resource)
}

async fn add_member(
    State(service): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
    write: Result<Write, Problem>,
) -> Answer {
    let (group, user) = path(ids)?;
    let write = write?;
    let resource = stream("group", &group)?;
    let result = service
        .add_member(AddMember { group, user }, write.options()?)
        .await;
    written(result, StatusCode::OK, &resource)
}

async fn remove_member(
    State(service): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
    write: Result<Write, Problem>,
) -> Answer {
    let (group, user) = path(ids)?;
    let write = write?;
    let resource = stream("group", &group)?;
    let command = RemoveMember { group, user };
    let result = service.remove_member(command, write.options()?).await;
    written(result, StatusCode::OK, &resource)
}

async fn get_group(
    State(service): Shared,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Answer {
    let id = path(id)?;
    let token = consistency_token(&headers)?;
    let group = service.group(&id, token).await.map_err(read_problem)?;
    let group =
        group.ok_or_else(|| Problem::new(Kind::NotFound, format!("there is no group `{id}`")))?;
    document(group.version, &group)
}

async fn list_groups(
    State(service): Shared,
    params: Result<Query<GroupsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Answer {
    let GroupsQuery { member } = query(params)?;
    let token = consistency_token(&headers)?;
    let groups = service
        .groups_of(&member, token)
        .await
        .map_err(read_problem)?;
    list(&groups)
}

// --- administration ----------------------------------------------------------------------------

async fn views(State(service): Shared) -> Answer {
    let body = json!({ "users": service.users_view() });
    Ok(json_response(StatusCode::OK, &body))
}

async fn rebuild_users(State(service): Shared) -> Answer {
    let rebuilt = service.rebuild_users().await.map_err(|error| match error {
        error @ RebuildError::AlreadyRebuilt(_) => Problem::new(Kind::Refused, error.to_string()),
        other => Problem::internal(&other),
    })?;
    let body = json!({
        "view": rebuilt.view,
        "handled": rebuilt.handled,
        "position": rebuilt.position.map(|p| p.to_string()),
    });
    Ok(json_response(StatusCode::OK, &body))
}

// --- fallbacks ---------------------------------------------------------------------------------

async fn not_found(method: Method, uri: Uri) -> Problem {
    Problem::new(
        Kind::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Problem {
    let detail = format!("{} does not take {method}", uri.path());
    Problem::new(Kind::MethodNotAllowed, detail)
}
