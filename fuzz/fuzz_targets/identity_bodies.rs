//! Arbitrary request bodies sent to the identity service of `eventsrc-examples`, in process
//! through its axum router (`tower::ServiceExt::oneshot`), on a fresh in-memory store per
//! input so that each input replays the same way.
//!
//! Input: up to eight requests, each `[route] [id] [headers] [length: 2 bytes, big-endian]`
//! and then that many body bytes (fewer if the input ends first). `route` picks the write (or
//! a read of a user), `id` the user or group ids from small sets (so that later requests meet
//! what earlier ones made), `headers` which of `Content-Type`, `If-Match`, `If-None-Match` and
//! `Idempotency-Key` are sent.
//!
//! Nothing may panic, every answer is a 2xx or a 4xx (a 5xx would be the service failing on
//! what a client sent), every 4xx is a problem document whose `status` is the answer's, and
//! dropping the service stops every task it started.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, header};
use eventsrc::Store;
use eventsrc_examples::identity::http::router;
use eventsrc_examples::identity::service::{Config, Service};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const USERS: [&str; 4] = ["ada", "grace", "a-b", "%E2%82%AC"];
const GROUPS: [&str; 2] = ["admins", "ops"];
const MAX_REQUESTS: usize = 8;

struct Call {
    method: Method,
    uri: String,
    headers: u8,
    body: Vec<u8>,
}

impl Call {
    /// The next request of the input, and what is left after it.
    fn read(data: &[u8]) -> Option<(Self, &[u8])> {
        let ([route, id, headers, high, low], rest) = data.split_first_chunk::<5>()?;
        let length = usize::from(u16::from_be_bytes([*high, *low])).min(rest.len());
        let (body, rest) = rest.split_at(length);
        let user = USERS[usize::from(*id) % USERS.len()];
        let group = GROUPS[usize::from(*id >> 4) % GROUPS.len()];
        let (method, uri) = match route % 8 {
            0 => (Method::PUT, format!("/users/{user}")),
            1 => (Method::PUT, format!("/users/{user}/name")),
            2 => (Method::PUT, format!("/users/{user}/email")),
            3 => (Method::DELETE, format!("/users/{user}")),
            4 => (Method::PUT, format!("/groups/{group}")),
            5 => (Method::PUT, format!("/groups/{group}/members/{user}")),
            6 => (Method::DELETE, format!("/groups/{group}/members/{user}")),
            _ => (Method::GET, format!("/users/{user}")),
        };
        let call = Self {
            method,
            uri,
            headers: *headers,
            body: body.to_vec(),
        };
        Some((call, rest))
    }

    fn request(self) -> Request<Body> {
        let mut request = Request::builder().method(self.method).uri(self.uri);
        let content_type = match self.headers & 0b11 {
            0 => None,
            1 => Some("text/plain"),
            2 => Some("application/merge-patch+json"),
            _ => Some("application/json; charset=utf-8"),
        };
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if self.headers & 0b100 != 0 {
            request = request.header(header::IF_MATCH, "\"1\"");
        }
        if self.headers & 0b1000 != 0 {
            request = request.header(header::IF_NONE_MATCH, "*");
        }
        if self.headers & 0b1_0000 != 0 {
            request = request.header("idempotency-key", "same-key");
        }
        request
            .body(Body::from(self.body))
            .expect("a request from valid parts")
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime")
    })
}

async fn serve(mut data: &[u8]) {
    let store = Store::open("memory:").await.expect("a memory store");
    let service = Arc::new(
        Service::start(store, Config::default())
            .await
            .expect("the service starts on an empty store"),
    );
    for _ in 0..MAX_REQUESTS {
        let Some((call, rest)) = Call::read(data) else {
            break;
        };
        data = rest;
        let request = call.request();
        let response = router(Arc::clone(&service))
            .oneshot(request)
            .await
            .expect("the router answers every request");
        let status = response.status();
        assert!(
            status.is_success() || status.is_client_error(),
            "answered {status}"
        );
        if status.is_client_error() {
            let problem = to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("the body of an answer");
            let problem: serde_json::Value =
                serde_json::from_slice(&problem).expect("a problem document is JSON");
            assert_eq!(
                problem["status"].as_u64(),
                Some(u64::from(status.as_u16())),
                "{problem}"
            );
        }
    }
    // Dropped, the service stops its views' runners. On this single-threaded runtime they run
    // only while this future waits, so yield to them until they have ended: left behind, each
    // input's runners and store would pile up.
    drop(service);
    let tasks = tokio::runtime::Handle::current().metrics();
    for _ in 0..10_000 {
        if tasks.num_alive_tasks() == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "{} task(s) still run after the service was dropped",
        tasks.num_alive_tasks()
    );
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(serve(data));
});
