//! `browse`: a read-only event browser, HTML rendered on the server (no JavaScript), served
//! over HTTP/1 by axum.
//!
//! | page | what it shows |
//! |---|---|
//! | `/` | the store, the tenant, the head, the stored event types with their counts |
//! | `/streams?category=&after=` | streams by name, 100 a page |
//! | `/streams/{stream}?from=` | a stream's events from a version, 100 a page |
//! | `/log?after=` | the global log after a position, 100 a page |
//! | `/events/{id}` | one event whole |
//! | `/correlation/{id}` | every event of a correlation id, as a causation tree |
//! | `/runners` | every checkpoint, with the head and how far behind it is |
//! | `/parked` | every parked event, with its reactor, error and attempts |
//!
//! Stored text (stream names, payloads, metadata, errors) is hostile input: every piece of it
//! goes through [`escape`] on its way into a page, and every page is sent with a
//! `Content-Security-Policy` that allows no script at all.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;
use std::io;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::store::{Inspect, ListStreams, ReadAll, ReadStream};
use crate::{
    EventId, EventStore, GlobalPosition, RecordedEvent, Store, StoreError, StreamId, StreamVersion,
    Uuid, registry,
};

/// Rows on a page of streams, of a stream's events, and of the log.
const PAGE: usize = 100;

/// Events read at once while scanning the log for a correlation id.
const SCAN: usize = 1000;

/// Serves the event browser for `store` on `listener` until the process ends or the listener
/// fails. Read-only: no page writes to the store.
///
/// `store` is browsed as its handle is scoped: give it [`with_tenant`](crate::Tenants) to
/// browse another tenant than the default. Bind the listener to a loopback address (as the
/// `browse` command does, on `127.0.0.1`): the pages show every event of the tenant to whoever
/// can reach them. Binding port 0 lets the system choose a free port; ask the listener's
/// `local_addr` for it.
///
/// The pages: `/` (the store, its head and stored event types), `/streams` (streams by name),
/// `/streams/{stream}` (a stream's events), `/log` (the global log), `/events/{id}` (one
/// event), `/correlation/{id}` (the events of one correlation id as a causation tree: this
/// page reads the whole log), `/runners` (checkpoints and their lag) and `/parked` (parked
/// events with their errors). Payloads are shown decoded to their current version where the
/// application's event types are linked into the binary, else as stored.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let store = eventsrc::Store::open("sqlite://events.db").await.map_err(std::io::Error::other)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// println!("browse at http://{}/", listener.local_addr()?);
/// eventsrc::cli::serve_browser(store, listener).await
/// # }
/// ```
pub async fn serve_browser(store: Store, listener: TcpListener) -> io::Result<()> {
    serve_until(store, listener, std::future::pending()).await
}

/// Serves the browser until `shutdown` completes, then finishes the requests under way.
pub(super) async fn serve_until(
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Every page, on `store`.
fn router(store: Store) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/streams", get(streams))
        .route("/streams/{*stream}", get(stream))
        .route("/log", get(log))
        .route("/events/{id}", get(event))
        .route("/correlation/{id}", get(correlation))
        .route("/runners", get(runners))
        .route("/parked", get(parked))
        .fallback(not_found)
        .with_state(store)
}

// --- responses ---------------------------------------------------------------------------------

/// A page that could not be shown, as an HTML page with its status.
#[derive(Debug)]
enum PageError {
    /// A malformed id, position or query parameter (400).
    BadRequest(String),
    /// No such stream, event or page (404).
    NotFound(String),
    /// The store failed (500).
    Store(StoreError),
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<QueryRejection> for PageError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(format!("malformed query string: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for PageError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(format!("malformed path: {}", rejection.body_text()))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            Self::NotFound(message) => (StatusCode::NOT_FOUND, message),
            Self::Store(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        };
        let title = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        let body = format!(r#"<p class="error">{}</p>"#, escape(&message));
        html(status, &title, &body)
    }
}

/// What a page handler returns.
type Page = Result<Response, PageError>;

/// No script, no frames, no outside requests: only the page's own inline style and links.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2329; background: #fafbfc; }
nav { background: #1d2b3a; padding: 0.6em 1.2em; }
nav a { color: #dfe8f1; margin-right: 1.3em; text-decoration: none; font-weight: 600; }
nav a:hover { text-decoration: underline; }
nav .brand { color: #8fc3ff; }
main { padding: 1em 1.6em 3em; }
h1 { font-size: 1.35em; margin: 0.3em 0 0.7em; }
h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0; background: #fff; }
th, td { border: 1px solid #d8dee4; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef2f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { margin: 0; font: 12px/1.35 ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; max-width: 60em; }
code { font: 12px ui-monospace, monospace; }
.time { white-space: nowrap; }
.id { font: 11px ui-monospace, monospace; }
a { color: #0b5cad; }
.muted { color: #6a737d; }
.error { color: #b31d28; white-space: pre-wrap; }
.behind { color: #b31d28; font-weight: 600; }
.more { margin-top: 0.8em; }
ul.tree { list-style: none; padding-left: 1.6em; border-left: 2px solid #d8dee4; margin: 0.3em 0; }
ul.tree.root { border-left: none; padding-left: 0; }
ul.tree li { margin: 0.4em 0; }
.node { background: #fff; border: 1px solid #d8dee4; border-radius: 4px; padding: 0.4em 0.6em; display: inline-block; }
form { display: inline; }
input { font: inherit; padding: 0.1em 0.3em; }
";

/// A whole HTML page: the nav bar, the title as a heading, and `body` (already escaped).
fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · eventsrc</title>
<style>{STYLE}</style></head>
<body><nav><a class="brand" href="/">eventsrc</a><a href="/">Overview</a><a href="/streams">Streams</a><a href="/log">Log</a><a href="/runners">Runners</a><a href="/parked">Parked</a></nav>
<main><h1>{title}</h1>
{body}
</main></body></html>
"#,
        title = escape(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

/// A page with status 200.
fn ok(title: &str, body: &str) -> Page {
    Ok(html(StatusCode::OK, title, body))
}

/// `text` safe to put in HTML, as element content or in a quoted attribute.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `text` percent-encoded for a path segment or a query value: everything but RFC 3986's
/// unreserved characters. Escape the URL with [`escape`] too when it goes into an attribute.
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// A link to `href` (built here: escaped for the attribute) showing `text` (escaped).
fn link(href: &str, text: &str) -> String {
    format!(r#"<a href="{}">{}</a>"#, escape(href), escape(text))
}

fn stream_href(stream: &StreamId) -> String {
    format!("/streams/{}", encode(stream.as_str()))
}

fn event_href(id: EventId) -> String {
    format!("/events/{id}")
}

/// A query parameter, `None` when absent or empty (an empty form field).
fn param<'q>(query: &'q HashMap<String, String>, name: &str) -> Option<&'q str> {
    query
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

// --- how events look ---------------------------------------------------------------------------

/// The payload to show, pretty, and what it is: the current version as this build decodes it,
/// else the stored JSON (or text, if it is not JSON).
fn payload(record: &RecordedEvent) -> (String, String) {
    match registry::inspect(record) {
        Ok(value) => {
            let upcast = registry::find(&record.event_type)
                .map(|r| r.version)
                .filter(|&current| current > record.schema_version);
            let what = match upcast {
                Some(current) => format!("upcast to version {current}"),
                None => String::new(),
            };
            (pretty(&value), what)
        }
        Err(_) => match serde_json::from_str::<Value>(&record.payload) {
            Ok(value) => (
                pretty(&value),
                "as stored: not decoded by this build".to_owned(),
            ),
            Err(_) => (record.payload.to_string(), "as stored: not JSON".to_owned()),
        },
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The payload cell: the pretty JSON and, when it was upcast or not decoded, a note saying so.
fn payload_cell(record: &RecordedEvent) -> String {
    let (text, what) = payload(record);
    let note = if what.is_empty() {
        String::new()
    } else {
        format!(r#"<div class="muted">{}</div>"#, escape(&what))
    };
    format!("<pre>{}</pre>{note}", escape(&text))
}

/// The metadata cell: correlation and causation ids as links, the rest as JSON.
fn metadata_cell(record: &RecordedEvent) -> String {
    let metadata = &record.metadata;
    let mut cell = String::new();
    if let Some(id) = metadata.correlation_id {
        let _ = write!(
            cell,
            r#"<div>correlation <span class="id">{}</span></div>"#,
            link(&format!("/correlation/{id}"), &id.to_string())
        );
    }
    if let Some(id) = metadata.causation_id {
        let _ = write!(
            cell,
            r#"<div>causation <span class="id">{}</span></div>"#,
            link(&event_href(EventId(id)), &id.to_string())
        );
    }
    if let Some(actor) = &metadata.actor {
        let _ = write!(cell, "<div>actor {}</div>", escape(actor));
    }
    let mut rest = serde_json::to_value(metadata).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut rest {
        map.remove("correlation_id");
        map.remove("causation_id");
        map.remove("actor");
        if !map.is_empty() {
            let _ = write!(cell, "<pre>{}</pre>", escape(&pretty(&rest)));
        }
    }
    cell
}

fn type_cell(record: &RecordedEvent) -> String {
    format!(
        "<code>{}@{}</code>",
        escape(&record.event_type),
        record.schema_version
    )
}

/// A table of events, one row each; `with_stream` adds the stream@version column.
fn events_table(events: &[RecordedEvent], with_stream: bool) -> String {
    let mut table = String::from("<table><tr>");
    if with_stream {
        table.push_str("<th>position</th><th>stream@version</th>");
    } else {
        table.push_str("<th>version</th><th>position</th>");
    }
    table.push_str(
        "<th>recorded at</th><th>type</th><th>payload</th><th>metadata</th><th>event</th></tr>\n",
    );
    for e in events {
        table.push_str("<tr>");
        if with_stream {
            let _ = write!(
                table,
                r#"<td class="num">{}</td><td>{}</td>"#,
                e.global_position,
                link(
                    &format!("{}?from={}", stream_href(&e.stream), e.stream_version.get()),
                    &format!("{}@{}", e.stream, e.stream_version.get()),
                )
            );
        } else {
            let _ = write!(
                table,
                r#"<td class="num">{}</td><td class="num">{}</td>"#,
                e.stream_version.get(),
                e.global_position
            );
        }
        let _ = writeln!(
            table,
            r#"<td class="time">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            e.recorded_at,
            type_cell(e),
            payload_cell(e),
            metadata_cell(e),
            link(&event_href(e.event_id), "show"),
        );
    }
    table.push_str("</table>\n");
    table
}

// --- the pages ---------------------------------------------------------------------------------

async fn overview(State(store): State<Store>) -> Page {
    let head = store.head_position().await?;
    let types = store.event_types().await?;
    let mut body = format!(
        "<table><tr><th>store</th><td>{}</td></tr><tr><th>tenant</th><td>{}</td></tr>\
         <tr><th>head</th><td>{}</td></tr></table>\n",
        escape(&store.to_string()),
        escape(store.tenant().as_str()),
        if head == GlobalPosition::START {
            "the log is empty".to_owned()
        } else {
            head.to_string()
        },
    );
    body.push_str(
        "<form action=\"/streams\" method=\"get\"><label>streams of category \
         <input name=\"category\" size=\"16\"></label> <input type=\"submit\" value=\"list\"></form>\n",
    );
    body.push_str("<h2>Stored event types</h2>\n");
    if types.is_empty() {
        body.push_str("<p>no events are stored</p>\n");
    } else {
        body.push_str("<table><tr><th>event type</th><th>schema version</th><th>events</th><th>this build</th></tr>\n");
        for t in &types {
            let known = match registry::find(&t.event_type) {
                Some(r) if t.schema_version == r.version => "current".to_owned(),
                Some(r) if t.schema_version < r.oldest_version => "no upcast path".to_owned(),
                Some(r) if t.schema_version < r.version => format!("upcast to {}", r.version),
                Some(_) => "newer than this build".to_owned(),
                None => "not linked in".to_owned(),
            };
            let _ = writeln!(
                body,
                r#"<tr><td><code>{}</code></td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                escape(&t.event_type),
                t.schema_version,
                t.events,
                escape(&known),
            );
        }
        body.push_str("</table>\n");
    }
    ok("Overview", &body)
}

async fn streams(
    State(store): State<Store>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Page {
    let Query(query) = query?;
    let mut list = ListStreams::new().limit(PAGE);
    list.category = param(&query, "category").map(str::to_owned);
    list.after = param(&query, "after").map(str::to_owned);
    let streams = store.streams(list.clone()).await?;
    let mut body = String::new();
    if let Some(category) = &list.category {
        let _ = writeln!(
            body,
            "<p>category <code>{}</code> · {}</p>",
            escape(category),
            link("/streams", "all categories")
        );
    }
    if streams.is_empty() {
        body.push_str("<p>no streams here</p>\n");
    } else {
        body.push_str(
            "<table><tr><th>stream</th><th>category</th><th>version</th><th>last write</th></tr>\n",
        );
        for s in &streams {
            let _ = writeln!(
                body,
                r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="time">{}</td></tr>"#,
                link(&stream_href(&s.stream), s.stream.as_str()),
                link(
                    &format!("/streams?category={}", encode(s.stream.category())),
                    s.stream.category()
                ),
                s.version.get(),
                s.last_recorded_at,
            );
        }
        body.push_str("</table>\n");
    }
    if streams.len() == PAGE
        && let Some(last) = streams.last()
    {
        let mut href = format!("/streams?after={}", encode(last.stream.as_str()));
        if let Some(category) = &list.category {
            let _ = write!(href, "&category={}", encode(category));
        }
        let _ = writeln!(
            body,
            r#"<p class="more">{}</p>"#,
            link(&href, "next page →")
        );
    }
    ok("Streams", &body)
}

async fn stream(
    State(store): State<Store>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Page {
    let Path(name) = path?;
    let Query(query) = query?;
    let stream: StreamId = name
        .parse()
        .map_err(|e| PageError::BadRequest(format!("{e}")))?;
    let from = match param(&query, "from") {
        Some(from) => from.parse::<u64>().map_err(|_| {
            PageError::BadRequest(format!(
                "from={from}: give a stream version, a whole number from 1"
            ))
        })?,
        None => 1,
    }
    .max(1);
    let events = store
        .read_stream(
            &stream,
            ReadStream::forward().from(StreamVersion(from)).limit(PAGE),
        )
        .await?;
    let version = if events.is_empty() {
        store.stream_version(&stream).await?
    } else {
        StreamVersion(0)
    };
    if events.is_empty() && version.get() == 0 {
        return Err(PageError::NotFound(format!(
            "no stream `{stream}` in tenant `{}`",
            store.tenant()
        )));
    }
    let mut body = format!(
        "<p>category {}</p>\n",
        link(
            &format!("/streams?category={}", encode(stream.category())),
            stream.category()
        )
    );
    if events.is_empty() {
        let _ = writeln!(
            body,
            "<p>no events from version {from}: the stream is at version {}. {}</p>",
            version.get(),
            link(&stream_href(&stream), "from the start")
        );
    } else {
        if from > 1 {
            let _ = writeln!(
                body,
                "<p>from version {from} · {}</p>",
                link(&stream_href(&stream), "from the start")
            );
        }
        body.push_str(&events_table(&events, false));
    }
    if events.len() == PAGE
        && let Some(last) = events.last()
    {
        let href = format!(
            "{}?from={}",
            stream_href(&stream),
            last.stream_version.get() + 1
        );
        let _ = writeln!(
            body,
            r#"<p class="more">{}</p>"#,
            link(&href, "next page →")
        );
    }
    ok(&format!("Stream {stream}"), &body)
}

async fn log(
    State(store): State<Store>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Page {
    let Query(query) = query?;
    let after = match param(&query, "after") {
        Some(after) => after
            .parse::<GlobalPosition>()
            .map_err(|e| PageError::BadRequest(e.to_string()))?,
        None => GlobalPosition::START,
    };
    let events = store.read_all(ReadAll::after(after).limit(PAGE)).await?;
    let mut body = String::new();
    if after != GlobalPosition::START {
        let _ = writeln!(
            body,
            "<p>after position {} · {}</p>",
            escape(&after.to_string()),
            link("/log", "from the start")
        );
    }
    if events.is_empty() {
        body.push_str("<p>no events here</p>\n");
    } else {
        body.push_str(&events_table(&events, true));
    }
    if events.len() == PAGE
        && let Some(last) = events.last()
    {
        let href = format!("/log?after={}", encode(&last.global_position.to_string()));
        let _ = writeln!(
            body,
            r#"<p class="more">{}</p>"#,
            link(&href, "next page →")
        );
    }
    ok("Log", &body)
}

/// A UUID from a path, or a 400 page saying what is wrong.
fn uuid(path: Result<Path<String>, PathRejection>, what: &str) -> Result<Uuid, PageError> {
    let Path(text) = path?;
    text.parse()
        .map_err(|_| PageError::BadRequest(format!("`{text}` is not {what} (a UUID)")))
}

async fn event(State(store): State<Store>, path: Result<Path<String>, PathRejection>) -> Page {
    let id = EventId(uuid(path, "an event id")?);
    let found = store.read_events(&[id]).await?;
    let Some(e) = found.first() else {
        return Err(PageError::NotFound(format!(
            "no event with id {id} in tenant `{}`",
            store.tenant()
        )));
    };
    let mut body = String::from("<table>\n");
    let rows = [
        ("event id", escape(&e.event_id.to_string())),
        ("stream", link(&stream_href(&e.stream), e.stream.as_str())),
        ("version", e.stream_version.get().to_string()),
        ("position", e.global_position.to_string()),
        ("tenant", escape(e.tenant.as_str())),
        ("type", type_cell(e)),
        ("recorded at", e.recorded_at.to_string()),
        ("metadata", metadata_cell(e)),
    ];
    for (name, value) in rows {
        let _ = writeln!(body, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    body.push_str("</table>\n");
    let stored = serde_json::from_str::<Value>(&e.payload)
        .map_or_else(|_| e.payload.to_string(), |v| pretty(&v));
    match registry::inspect(e) {
        Ok(value) => {
            let _ = writeln!(
                body,
                "<h2>Payload, decoded to the current version</h2><pre>{}</pre>",
                escape(&pretty(&value))
            );
        }
        Err(error) => {
            let _ = writeln!(
                body,
                r#"<h2>Payload, not decoded</h2><p class="muted">{}</p>"#,
                escape(&error.to_string())
            );
        }
    }
    let _ = writeln!(
        body,
        "<h2>Payload, as stored (version {})</h2><pre>{}</pre>",
        e.schema_version,
        escape(&stored)
    );
    ok(&format!("Event {id}"), &body)
}

/// Every event whose correlation id is `id`, in log order. Reads the whole log.
async fn correlated(store: &Store, id: Uuid) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut found = Vec::new();
    let mut after = GlobalPosition::START;
    loop {
        let page = store.read_all(ReadAll::after(after).limit(SCAN)).await?;
        let Some(last) = page.last() else {
            return Ok(found);
        };
        after = last.global_position;
        let full = page.len() == SCAN;
        found.extend(
            page.into_iter()
                .filter(|e| e.metadata.correlation_id == Some(id)),
        );
        if !full {
            return Ok(found);
        }
    }
}

/// The events as a causation forest, in pre-order: each with its depth. An event's parent is
/// the event of the set whose id is its causation id; the others are roots. Events caught in
/// a cycle of causation ids (corrupt data) are shown as roots too, each once.
fn causation_order(events: &[RecordedEvent]) -> Vec<(usize, usize)> {
    let index: HashMap<Uuid, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_id.0, i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    let mut roots = Vec::new();
    for (i, e) in events.iter().enumerate() {
        match e.metadata.causation_id.and_then(|c| index.get(&c)) {
            Some(&parent) if parent != i => children[parent].push(i),
            _ => roots.push(i),
        }
    }
    let mut order = Vec::with_capacity(events.len());
    let mut seen = HashSet::new();
    // Roots first, then whatever a cycle kept from being reached.
    let starts: Vec<usize> = roots.into_iter().chain(0..events.len()).collect();
    for start in starts {
        let mut stack = vec![(start, 0)];
        while let Some((i, depth)) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            order.push((i, depth));
            for &child in children[i].iter().rev() {
                stack.push((child, depth + 1));
            }
        }
    }
    order
}

async fn correlation(
    State(store): State<Store>,
    path: Result<Path<String>, PathRejection>,
) -> Page {
    let id = uuid(path, "a correlation id")?;
    let events = correlated(&store, id).await?;
    if events.is_empty() {
        return Err(PageError::NotFound(format!(
            "no event of tenant `{}` has correlation id {id}",
            store.tenant()
        )));
    }
    let streams: HashSet<&str> = events.iter().map(|e| e.stream.as_str()).collect();
    let mut body = format!(
        "<p>{} events in {} streams; each indented under the event that caused it. \
         <span class=\"muted\">(This page reads the whole log.)</span></p>\n",
        events.len(),
        streams.len()
    );
    let mut depth_open = 0;
    body.push_str("<ul class=\"tree root\">");
    for (n, (i, depth)) in causation_order(&events).into_iter().enumerate() {
        if n > 0 {
            if depth > depth_open {
                // One deeper: the child list of the node still open.
                body.push_str("<ul class=\"tree\">");
            } else {
                body.push_str("</li>");
                for _ in depth..depth_open {
                    body.push_str("</ul></li>");
                }
            }
        }
        depth_open = depth;
        let e = &events[i];
        let _ = write!(
            body,
            "\n<li data-depth=\"{depth}\" id=\"e-{id}\"><div class=\"node\"><div>{} <code>{}@{}</code> · {} · {} · {}</div><pre>{}</pre></div>",
            link(
                &stream_href(&e.stream),
                &format!("{}@{}", e.stream, e.stream_version.get())
            ),
            escape(&e.event_type),
            e.schema_version,
            e.global_position,
            e.recorded_at,
            link(&event_href(e.event_id), "show"),
            escape(&payload(e).0),
            id = e.event_id,
        );
    }
    body.push_str("</li>");
    for _ in 0..depth_open {
        body.push_str("</ul></li>");
    }
    body.push_str("</ul>\n");
    ok(&format!("Correlation {id}"), &body)
}

async fn runners(State(store): State<Store>) -> Page {
    let head = store.head_position().await?;
    let rows = super::commands::behind(&store, head).await?;
    let mut body = format!("<p>head: {head}</p>\n");
    if rows.is_empty() {
        body.push_str("<p>no consumer has a checkpoint</p>\n");
        return ok("Runners", &body);
    }
    body.push_str("<table><tr><th>consumer</th><th>checkpoint</th><th>head</th><th>events behind</th><th>time behind</th></tr>\n");
    for row in &rows {
        let _ = writeln!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td>{head}</td><td class="num{}">{}</td><td class="num">{}</td></tr>"#,
            escape(&row.checkpoint.consumer),
            row.checkpoint.position.map_or_else(
                || "none".to_owned(),
                |p| link(
                    &format!("/log?after={}", encode(&p.to_string())),
                    &p.to_string()
                )
            ),
            if row.events > 0 { " behind" } else { "" },
            row.events,
            row.seconds
                .map_or_else(|| "0s".to_owned(), |s| format!("{s:.1}s")),
        );
    }
    body.push_str("</table>\n");
    ok("Runners", &body)
}

async fn parked(State(store): State<Store>) -> Page {
    let all = store.all_parked().await?;
    let mut body = String::new();
    if all.is_empty() {
        body.push_str("<p>nothing is parked</p>\n");
        return ok("Parked events", &body);
    }
    let _ = writeln!(body, "<p>{} parked</p>", all.len());
    body.push_str("<table><tr><th>reactor</th><th>event</th><th>type</th><th>position</th><th>attempts</th><th>parked at</th><th>error</th></tr>\n");
    for p in &all {
        let e = &p.event;
        let _ = writeln!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="time">{}</td><td class="error">{}</td></tr>"#,
            escape(&p.reactor),
            link(
                &event_href(e.event_id),
                &format!("{}@{}", e.stream, e.stream_version.get())
            ),
            type_cell(e),
            e.global_position,
            p.attempts,
            p.parked_at,
            escape(&p.error),
        );
    }
    body.push_str("</table>\n");
    ok("Parked events", &body)
}

async fn not_found() -> PageError {
    PageError::NotFound("no such page".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(encode("note-<b>x</b> y"), "note-%3Cb%3Ex%3C%2Fb%3E%20y");
        assert_eq!(encode("12:34"), "12%3A34");
    }
}
