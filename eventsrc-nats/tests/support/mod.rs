//! What the NATS tests share: the server, unique names, a log to publish, reading a JetStream
//! stream back, and a consumer that records what it handles.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventsrc::nats::JetStream;
use eventsrc::nats::async_nats::jetstream::consumer::{AckPolicy, pull};
use eventsrc::runner::Consumer;
use eventsrc::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent,
    RecordedEvent, RunError, StreamId, Uuid,
};
use futures_util::StreamExt;

/// The server the tests use.
pub(crate) fn nats_url() -> String {
    std::env::var("EVENTSRC_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Connects to it; a server that cannot be reached fails the test.
pub(crate) async fn connect() -> JetStream {
    let url = nats_url();
    match JetStream::connect(&url).await {
        Ok(nats) => nats,
        Err(error) => panic!(
            "the NATS tests need a server with JetStream at {url} (set EVENTSRC_NATS_URL): {error}"
        ),
    }
}

/// A connection, and a JetStream stream of the test's own taking the subjects `NAME.>`.
pub(crate) async fn fresh_stream(prefix: &str) -> (JetStream, String) {
    let nats = connect().await;
    let name = unique(prefix);
    nats.ensure_stream(&name, &[&format!("{name}.>")], Duration::from_secs(120))
        .await
        .unwrap();
    (nats, name)
}

/// A name no other test or run uses: `PREFIX_<time>_<counter>`.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// Runs a test's body on a runtime of its own.
pub(crate) fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Appends `per_stream` events to each of `streams` streams: `lead-0`, `order-1`, `lead-2`...
/// (`lead.opened` then `lead.noted`; `order.placed` then `order.noted`), one event per append,
/// streams taking turns, so that streams interleave in the log. The first event of each
/// append call carries the correlation id `c0de`.
pub(crate) async fn append_many<S: EventStore>(store: &S, streams: usize, per_stream: usize) {
    for version in 0..per_stream {
        for n in 0..streams {
            let category = if n % 2 == 0 { "lead" } else { "order" };
            let event_type = match (category, version) {
                ("lead", 0) => "lead.opened",
                ("lead", _) => "lead.noted",
                (_, 0) => "order.placed",
                _ => "order.noted",
            };
            let mut metadata = Metadata::new();
            if version == 0 && n == 0 {
                metadata = metadata.with_correlation_id(Uuid::from_u128(0xc0de));
            }
            let event = NewEvent::raw(event_type, 1, format!(r#"{{"n":{n},"v":{version}}}"#))
                .with_metadata(metadata);
            let stream = StreamId::new(category, n).unwrap();
            store
                .append(&stream, ExpectedVersion::Any, vec![event])
                .await
                .unwrap();
        }
    }
}

/// A message as read back from JetStream.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) subject: String,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) payload: Vec<u8>,
    pub(crate) sequence: u64,
}

/// Every message of the JetStream stream `name`, in stream order, through an ephemeral
/// consumer that acknowledges nothing.
pub(crate) async fn read_all(nats: &JetStream, name: &str) -> Vec<Received> {
    let mut stream = nats.context().get_stream(name).await.unwrap();
    let total = stream.info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            ..pull::Config::default()
        })
        .await
        .unwrap();
    let mut received = Vec::with_capacity(total);
    while received.len() < total {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        let before = received.len();
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            let headers = message
                .headers
                .iter()
                .flat_map(|h| h.iter())
                .map(|(k, v)| (k.to_string(), v[0].as_str().to_owned()))
                .collect();
            received.push(Received {
                subject: message.subject.to_string(),
                headers,
                payload: message.payload.to_vec(),
                sequence: message.info().unwrap().stream_sequence,
            });
        }
        assert!(
            received.len() > before,
            "the stream `{name}` holds {total} messages; read {before}"
        );
    }
    received
}

/// A consumer that records the ids of the events it handles, with its checkpoint in a store.
pub(crate) struct Recorder<C> {
    pub(crate) ids: Arc<Mutex<Vec<EventId>>>,
    checkpoints: C,
}

impl<C: CheckpointStore> Recorder<C> {
    pub(crate) const NAME: &'static str = "recorder";

    pub(crate) fn new(checkpoints: C) -> Self {
        Self {
            ids: Arc::default(),
            checkpoints,
        }
    }
}

impl<C: CheckpointStore> Consumer for Recorder<C> {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        None
    }

    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        self.checkpoints
            .load_checkpoint(Self::NAME)
            .await
            .map_err(|e| RunError::store(Self::NAME, e))
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        assert_eq!(
            self.checkpoint().await?,
            from,
            "batches follow the checkpoint"
        );
        self.ids
            .lock()
            .unwrap()
            .extend(events.iter().map(|e| e.event_id));
        self.checkpoints
            .save_checkpoint(Self::NAME, through)
            .await
            .map_err(|e| RunError::store(Self::NAME, e))
    }
}

/// A fresh directory, removed when dropped.
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small pseudo-random generator (SplitMix64) for kill times: no dependency needed.
pub(crate) struct Random(u64);

impl Random {
    pub(crate) fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let seed = nanos as u64 ^ u64::from(std::process::id());
        println!("random seed: {seed}");
        Self(seed)
    }

    /// A number in `low..high`.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        low + (z ^ (z >> 31)) % (high - low)
    }
}

/// Waits until `done` says yes, checking every 20 ms, failing the test after `deadline`.
pub(crate) async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks what a JetStream stream holds against the log: every event exactly once, and each
/// stream's events in version order. Returns the number of messages.
pub(crate) fn check_exactly_once_in_order(received: &[Received], stored: &[RecordedEvent]) {
    let mut seen = std::collections::HashSet::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for message in received {
        let id = &message.headers[eventsrc::relay::headers::EVENT_ID];
        assert!(seen.insert(id.clone()), "event {id} arrived twice");
        let stream = message.headers[eventsrc::relay::headers::STREAM].clone();
        let version: u64 = message.headers[eventsrc::relay::headers::STREAM_VERSION]
            .parse()
            .unwrap();
        let last = versions.insert(stream.clone(), version).unwrap_or(0);
        assert_eq!(
            version,
            last + 1,
            "`{stream}`: version {version} after {last}"
        );
    }
    let expected: std::collections::HashSet<String> =
        stored.iter().map(|r| r.event_id.to_string()).collect();
    let missing = expected.difference(&seen).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} events never arrived",
        stored.len()
    );
    assert_eq!(received.len(), stored.len());
}
