//! The scale-out backend of [`eventsrc`](https://docs.rs/eventsrc): events, snapshots and
//! checkpoints in PostgreSQL, shared by many application nodes.
//!
//! - **One round trip per append.** A single prepared statement reads the stream's version,
//!   checks the expected version, inserts the whole batch from arrays and returns the result,
//!   in autocommit on a pooled connection (`deadpool-postgres`). Concurrent writers race on a
//!   unique index; the loser runs again and appends after the winner, or reports
//!   [`StoreError::WrongExpectedVersion`] when its expectation no longer holds. A single event
//!   at an exact version (or `NoStream`), the usual append, first runs a plainer statement
//!   with the same check, which inserts nothing when the check fails; the general statement
//!   then settles it (the version to report, or a retry already stored).
//! - **Appends across streams** ([`append_streams`](EventStore::append_streams)) are one
//!   transaction: it takes a transaction-level advisory lock per stream, always in the order
//!   of the locks' keys (so two such appends over the same streams, listed in any order, queue
//!   instead of deadlocking), then one statement checks every part's expected version and
//!   inserts every part's events, or none. Their events share the transaction id of their
//!   positions and one `recorded_at`. A race lost to a single append, which takes no lock,
//!   runs the transaction again, like a single append's. A part without events (a stream a
//!   decision read but did not change) takes its stream's lock too, so two appends that each
//!   check a stream the other writes cannot both pass.
//! - **Plans that hold without statistics.** Log pages run in a read-only transaction of
//!   their own that leaves the planner only the ordered scan of the log index, and stream
//!   versions are read so that the stream's index is the one cheap plan: right after a bulk
//!   import, before `ANALYZE`, reads and appends keep their index plans.
//! - **A gap-free global log.** A [`GlobalPosition`] is `(transaction id, position)`, and
//!   [`read_all`](EventStore::read_all) returns only events of transactions older than the
//!   oldest one still in flight, so a reader never skips an event whose transaction commits
//!   after a later-numbered one. When events are held back only by appends still finishing,
//!   a read waits for them a moment ([`PgOptions::horizon_wait`]), so it returns everything
//!   committed before it began. See [`PgEventStore::lag`] for how far behind a reader is.
//! - **`recorded_at`** is the server's clock at the start of the append's transaction.
//! - **Live readers are woken** by LISTEN/NOTIFY: see [`PgEventStore::notifications`].
//! - **Versioned schema**, created and migrated on connect under an advisory lock, so several
//!   nodes may start at once; a schema written by a newer build is refused with
//!   [`ConnectError::NewerSchema`]. A team that manages its DDL itself connects with
//!   [`PgOptions::migrate(false)`](PgOptions::migrate) and makes the schema with
//!   [`schema::ddl`] or [`PgEventStore::migrate`].
//! - **Tenants** share the tables; every query is scoped by the handle's tenant.
//! - **Deleting and truncating streams** ([`Lifecycle`](eventsrc_core::store::Lifecycle)):
//!   each removal is one transaction that moves the removed rows to `archived_events` (a
//!   tombstone drops them, and the stream's archive with them) and appends its marker like an
//!   event. The usual append pays nothing for it: a tombstone is told by the version the
//!   append statement reads anyway. A removal briefly holds every writer of the schema back
//!   (a `SHARE ROW EXCLUSIVE` lock on `events`, only when it has work to do), since appends
//!   take no lock it could wait for otherwise; log pages check the tenant's truncation by
//!   primary key in their horizon statement.
//!
//! The read side, for runners on many nodes ([`eventsrc::runner`](eventsrc_core::runner)):
//!
//! - **Read models in SQL, exactly once.** A [`PgProjection`] writes its own tables; run as a
//!   [`PgReadModel`], each batch's rows and checkpoint commit in one transaction that locks
//!   the checkpoint row and refuses the batch if another node moved it
//!   ([`RunError::Fenced`](eventsrc_core::RunError::Fenced)). Queries go through
//!   [`PgEventStore::client`].
//! - **Document views, written once for every store.** A
//!   [`DocumentView`](eventsrc_core::DocumentView) run as [`Documents`](eventsrc_core::Documents) keeps
//!   its JSON documents as `jsonb` rows of this schema; each batch is one transaction that
//!   locks the view's checkpoint row, refuses the batch if another node moved it, writes the
//!   documents and their indexed values in four array statements and moves the checkpoint.
//!   Read them with [`DocumentReader`](eventsrc_core::DocumentReader) on any node.
//! - **Leadership.** The store is [`Leases`](eventsrc_core::backend::Leases): a lease is a session advisory
//!   lock on a connection of its own, released when the lease is dropped or the node's
//!   session ends, so with [`Runner::run_as_leader`](eventsrc_core::Runner::run_as_leader)
//!   one node runs each read model and another takes over when it dies.
//! - **Read-your-writes across nodes.** [`wait_for_checkpoint`](eventsrc_core::wait_for_checkpoint)
//!   with this store as the checkpoint store waits, on any node, until a read model (wherever
//!   its runner is) has committed past a position an append returned.
//! - **Inline projections.** [`PgEventStore::with_inline`] gives a handle whose appends update
//!   read models in their own transaction.
//! - **Live runners wake on NOTIFY** ([`EventStore::append_signal`]), and reactors' parked
//!   events are kept whole in a `parked` table ([`ParkedStore`](eventsrc_core::backend::ParkedStore)).
//!
//! ```no_run
//! use eventsrc::{EventStore, ExpectedVersion, NewEvent, StreamId, Tenants};
//! use eventsrc::store::ReadStream;
//! use eventsrc_postgres::{PgEventStore, PgOptions};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgEventStore::connect_with(
//!     "postgres://app@db.internal/app",
//!     PgOptions::default().schema("orders").pool_size(32),
//! )
//! .await?;
//! let stream = StreamId::new("cart", 42)?;
//! let added = NewEvent::raw("ItemAdded", 1, r#"{"sku":"apple"}"#);
//! store.append(&stream, ExpectedVersion::NoStream, vec![added]).await?;
//! let events = store.read_stream(&stream, ReadStream::forward()).await?;
//! assert_eq!(&*events[0].event_type, "ItemAdded");
//!
//! // Another tenant sees nothing of it.
//! let acme = store.with_tenant("acme".into());
//! assert!(acme.read_stream(&stream, ReadStream::forward()).await?.is_empty());
//! # Ok(()) }
//! ```
//!
//! A row changed behind the store's back so that it no longer reads as an event (a schema
//! version beyond `u32`, a version below 1, metadata that is not a JSON object) is
//! [`StoreError::Corrupt`], naming its stream, version, position and column as far as they
//! can be read, on every read that meets it. Appends need only the stream's highest version,
//! which PostgreSQL keeps typed, so they go on; a retry whose ids are stored in such a row
//! fails with the same error, since it must be compared with it.
//!
//! TLS: [`PgEventStore::connect`] and [`connect_with`](PgEventStore::connect_with) connect
//! without it; [`connect_config_tls`](PgEventStore::connect_config_tls) takes the
//! `tokio_postgres` TLS connector of your choice, so this crate pulls in no TLS stack.

mod checkpoint;
mod documents;
mod inline;
mod inspect;
#[cfg(feature = "encryption")]
mod keys;
mod leases;
mod lifecycle;
mod notify;
mod options;
mod parked;
mod projection;
mod read_model;
mod rows;
pub mod schema;
mod url;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use eventsrc_core::StoreError;
use eventsrc_core::backend::StoredEvent;
use eventsrc_core::backend::{AppendSignal, check_appends, check_batch, record_append};
use eventsrc_core::store::Direction;
use eventsrc_core::store::{AppendResult, ReadAll, ReadStream, Snapshot, StreamAppend};
use eventsrc_core::{
    EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent, SnapshotStore,
    StreamId, StreamVersion, Tenant, Tenants, Timestamp, Uuid,
};
use futures_util::TryStreamExt;
use tokio::sync::{OnceCell, watch};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Socket};

pub use eventsrc_core::runner::BatchError;
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub use keys::PgKeyStore;
pub use options::{ConnectError, PgOptions};
pub use projection::PgProjection;
pub use read_model::PgReadModel;
pub use schema::CURRENT as SCHEMA_VERSION;
pub use url::{PgUrl, UrlError};
/// The pool and driver this crate is built on, at the versions its API uses.
pub use {deadpool_postgres, tokio_postgres};

/// How far a reader at some position is behind the log; see [`PgEventStore::lag`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lag {
    /// Events after the position that `read_all` returns now.
    pub readable: u64,
    /// Events after the position already committed but held back behind a transaction still
    /// in flight; `read_all` returns them once it finishes.
    pub held_back: u64,
}

impl Lag {
    /// Every committed event after the position.
    pub fn total(&self) -> u64 {
        self.readable + self.held_back
    }
}

/// An event store, snapshot store and checkpoint store in a PostgreSQL schema.
///
/// Clones and [`with_tenant`](Tenants::with_tenant) handles share one connection pool; it
/// closes when the last handle is dropped.
#[derive(Clone)]
pub struct PgEventStore {
    shared: Arc<Shared>,
    tenant: Tenant,
    /// The read models its appends update in their own transaction; usually none.
    inline: Arc<[Arc<dyn inline::Apply>]>,
}

struct Shared {
    pool: Pool,
    config: tokio_postgres::Config,
    /// Opens the connections outside the pool (LISTEN, leases), with the pool's TLS connector.
    connector: notify::Connector,
    schema: String,
    sql: Sql,
    horizon_wait: Duration,
    /// Sends NOTIFY after appends; `None` when [`PgOptions::notify`] is off.
    notifier: Option<notify::Notifier>,
    listener: OnceCell<notify::Listener>,
    /// Connections of lease tries that found the lease taken, kept for the next try.
    idle_lease_sessions: leases::IdleSessions,
}

/// Every statement, with the schema filled in once at connect.
struct Sql {
    writer: writer::WriteSql,
    read: rows::ReadSql,
    load_snapshot: String,
    save_snapshot: String,
    checkpoint: checkpoint::CheckpointSql,
    parked: parked::ParkedSql,
    documents: documents::DocumentSql,
    lifecycle: lifecycle::LifecycleSql,
}

impl Sql {
    fn new(quoted: &str) -> Self {
        Self {
            writer: writer::WriteSql::new(quoted),
            read: rows::ReadSql::new(quoted),
            load_snapshot: format!(
                "SELECT version, state_version, payload, taken_at FROM {quoted}.snapshots \
                 WHERE tenant = $1 AND stream = $2"
            ),
            save_snapshot: format!(
                "INSERT INTO {quoted}.snapshots AS s \
                     (tenant, stream, version, state_version, payload, taken_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant, stream) DO UPDATE SET version = excluded.version, \
                     state_version = excluded.state_version, payload = excluded.payload, \
                     taken_at = excluded.taken_at \
                 WHERE excluded.version >= s.version"
            ),
            checkpoint: checkpoint::CheckpointSql::new(quoted),
            parked: parked::ParkedSql::new(quoted),
            documents: documents::DocumentSql::new(quoted),
            lifecycle: lifecycle::LifecycleSql::new(quoted),
        }
    }
}

impl std::fmt::Debug for PgEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inline: Vec<&str> = self.inline.iter().map(|p| p.name()).collect();
        f.debug_struct("PgEventStore")
            .field("schema", &self.shared.schema)
            .field("tenant", &self.tenant)
            .field("inline", &inline)
            .finish()
    }
}

pub(crate) fn backend(error: tokio_postgres::Error) -> StoreError {
    StoreError::backend(error)
}

impl PgEventStore {
    /// Connects to the database at `url` with default [`PgOptions`], creating or migrating the
    /// schema. `url` is a libpq URL, `postgres://user:password@host:port/database?schema=name`,
    /// or libpq's `key=value` form, `host=localhost user=app dbname=app schema=name` (see
    /// [`PgUrl`] for the whole grammar, unix sockets included).
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// Connects to the database at `url` with `options`. A schema named by the URL and one
    /// named by `options` must agree ([`ConnectError::SchemaConflict`] otherwise).
    ///
    /// ```no_run
    /// use eventsrc_postgres::{PgEventStore, PgOptions};
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// // Through the unix socket of a packaged server, in the schema `billing`.
    /// let store = PgEventStore::connect_with(
    ///     "postgres:///app?host=/var/run/postgresql&schema=billing",
    ///     PgOptions::default().pool_size(8),
    /// )
    /// .await?;
    /// assert_eq!(store.schema(), "billing");
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(url: &str, options: PgOptions) -> Result<Self, ConnectError> {
        Self::connect_url(&url.parse()?, options).await
    }

    /// Connects to the database a parsed [`PgUrl`] names, in the schema it names (if any),
    /// with `options`.
    pub async fn connect_url(url: &PgUrl, options: PgOptions) -> Result<Self, ConnectError> {
        let options = options.with_url(url)?;
        Self::connect_config(url.config().clone(), options).await
    }

    /// Connects with a ready `tokio_postgres` configuration and `options` (whose application
    /// name and connect timeout replace the configuration's), without TLS.
    pub async fn connect_config(
        config: tokio_postgres::Config,
        options: PgOptions,
    ) -> Result<Self, ConnectError> {
        Self::connect_config_tls(config, options, NoTls).await
    }

    /// Connects with a ready configuration, `options`, and the TLS connector `tls` for every
    /// connection (the pool's and the LISTEN one): any `tokio_postgres` connector, such as
    /// `tokio_postgres_rustls::MakeRustlsConnect` or `postgres_native_tls::MakeTlsConnector`,
    /// which your application adds as a dependency. Set the configuration's `ssl_mode` to
    /// `Require` to refuse a server without TLS.
    ///
    /// ```no_run
    /// use eventsrc_postgres::{PgEventStore, PgOptions};
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = "host=localhost user=app dbname=app".parse()?;
    /// // Here `NoTls`; pass your TLS crate's connector instead.
    /// let store = PgEventStore::connect_config_tls(
    ///     config,
    ///     PgOptions::default(),
    ///     tokio_postgres::NoTls,
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_config_tls<T>(
        mut config: tokio_postgres::Config,
        options: PgOptions,
        tls: T,
    ) -> Result<Self, ConnectError>
    where
        T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
        T::Stream: Sync + Send,
        T::TlsConnect: Sync + Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let schema = options.schema_name().to_owned();
        options::check_schema_name(&schema)?;
        config
            .application_name(&options.application_name)
            .connect_timeout(options.connect_timeout);
        let connector = notify::connector(tls.clone());
        let manager = Manager::from_config(
            config.clone(),
            tls,
            ManagerConfig {
                // A closed connection is noticed without a round trip; one that dies while
                // idle fails its next operation cleanly and is dropped from the pool.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let quoted = format!("\"{schema}\"");
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.pool_timeout))
            .create_timeout(Some(options.connect_timeout))
            .post_create(schema::search_path_hook(&quoted))
            .build()
            .map_err(ConnectError::PoolBuild)?;
        {
            let mut client = pool.get().await?;
            let client: &mut tokio_postgres::Client = &mut client;
            schema::prepare(client, &schema, &quoted, options.migrate).await?;
        }
        let notifier = options
            .notify
            .then(|| notify::Notifier::start(pool.clone(), schema.clone()));
        Ok(Self {
            shared: Arc::new(Shared {
                pool,
                config,
                connector,
                notifier,
                sql: Sql::new(&quoted),
                schema,
                horizon_wait: options.horizon_wait,
                listener: OnceCell::new(),
                idle_lease_sessions: leases::IdleSessions::default(),
            }),
            tenant: Tenant::default(),
            inline: Arc::new([]),
        })
    }

    /// The schema this store keeps its tables in.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The connection pool, for running your own statements next to the store's (a read
    /// model updated with its checkpoint, say).
    pub fn pool(&self) -> &Pool {
        &self.shared.pool
    }

    /// A receiver that changes whenever an append commits to this schema (any tenant), fed by
    /// a dedicated connection LISTENing on the channel named after the schema.
    ///
    /// Wait with [`changed`](watch::Receiver::changed), then read the log from your last
    /// position. The value is only a counter: it also moves when the listening connection
    /// reconnects (notifications may have been missed meanwhile), and several appends may
    /// wake a reader once. The first call opens the connection (an error if it cannot); later
    /// calls share it, and it reconnects by itself until the last handle is dropped.
    ///
    /// Where notifications cannot be had ([`PgOptions::notify`] off on some writer, a pooler
    /// in transaction mode between the application and the database), poll `read_all`
    /// instead: it is always correct, and notifications only shorten the wait.
    pub async fn notifications(&self) -> Result<watch::Receiver<u64>, StoreError> {
        let listener = self
            .shared
            .listener
            .get_or_try_init(|| {
                notify::listen(
                    self.shared.connector.clone(),
                    self.shared.config.clone(),
                    self.shared.schema.clone(),
                )
            })
            .await
            .map_err(backend)?;
        Ok(listener.counter.subscribe())
    }

    /// How far a reader that has read up to `after` is behind this tenant's log: the events
    /// it can read now, and those already committed but held back behind a transaction still
    /// in flight. `head_position` gives the same horizon as a position: a subscriber is
    /// caught up when its checkpoint equals the head.
    pub async fn lag(&self, after: GlobalPosition) -> Result<Lag, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.read.lag)
            .await
            .map_err(backend)?;
        let (commit, sequence) = rows::position_params(after);
        let row = client
            .query_one(&statement, &[&self.tenant.as_str(), &commit, &sequence])
            .await
            .map_err(backend)?;
        let readable: i64 = row.try_get(0).map_err(backend)?;
        let held_back: i64 = row.try_get(1).map_err(backend)?;
        Ok(Lag {
            readable: readable.max(0) as u64,
            held_back: held_back.max(0) as u64,
        })
    }

    /// Test hook, not public API: appends with the store's own statement inside an explicit
    /// transaction that stays open for a random time of up to `hold` after the insert, so that
    /// tests can make transactions commit out of position order. The connection is discarded
    /// afterwards.
    #[doc(hidden)]
    pub async fn __append_holding_transaction(
        &self,
        stream: &StreamId,
        events: Vec<NewEvent>,
        hold: Duration,
    ) -> Result<AppendResult, StoreError> {
        check_batch(stream, &events)?;
        let client = self.client().await?;
        let appended = async {
            client.batch_execute("BEGIN").await.map_err(backend)?;
            let (appended, _) = self
                .append_on(&client, stream, ExpectedVersion::Any, &events, None)
                .await?;
            client
                .execute(
                    "SELECT pg_sleep(random() * $1::float8)",
                    &[&hold.as_secs_f64()],
                )
                .await
                .map_err(backend)?;
            client.batch_execute("COMMIT").await.map_err(backend)?;
            Ok(appended)
        }
        .await;
        // Never back to the pool: it may be inside the transaction still.
        drop(Object::take(client));
        appended
    }

    /// A pooled connection, for queries of read models kept in this database (see
    /// [`PgReadModel`]) or any statement of your own next to the store's. It goes back to the
    /// pool when dropped.
    ///
    /// Every pooled connection has the store's schema first in its `search_path`, ahead of the
    /// connection's own (usually `"$user", public`): an unqualified table name, in a query
    /// here or in a [`PgProjection`]'s `setup` and `apply` (run as a [`PgReadModel`] or
    /// inline), means the table in the store's schema, so two stores on two schemas keep two
    /// tables. A qualified name (`public.users`) means what it says.
    ///
    /// ```no_run
    /// # async fn example(store: eventsrc_postgres::PgEventStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let client = store.client().await?;
    /// // `cart_totals` in the store's schema.
    /// let row = client.query_one("SELECT count(*) FROM cart_totals", &[]).await?;
    /// let carts: i64 = row.get(0);
    /// # Ok(()) }
    /// ```
    pub async fn client(&self) -> Result<Object, StoreError> {
        self.shared.pool.get().await.map_err(StoreError::backend)
    }

    /// Appends a checked batch to one stream (inline projections included). With `notify`,
    /// the append may carry the store's next notification in its own statement; answers
    /// whether it did (see [`writer::append`]).
    async fn append_checked(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        notify: Option<&str>,
    ) -> Result<(AppendResult, bool), StoreError> {
        if self.inline.is_empty() {
            let client = self.client().await?;
            self.append_on(&client, stream, expected, events, notify)
                .await
        } else {
            let appended = inline::append(self, stream, expected, events).await?;
            Ok((appended, false))
        }
    }

    /// Wakes live readers after a commit that stored events, through the notifier's task.
    fn appended(&self) {
        if let Some(notifier) = &self.shared.notifier {
            notifier.appended();
        }
    }

    /// This tenant's events with `ids`, in that order, read on `client` (a pooled connection,
    /// or the transaction of an append that just inserted them).
    pub(crate) async fn events_by_id(
        &self,
        client: &impl GenericClient,
        ids: &[EventId],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let statement = client
            .prepare_cached(&self.shared.sql.read.by_id)
            .await
            .map_err(backend)?;
        let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let found = client
            .query(&statement, &[&self.tenant.as_str(), &ids])
            .await
            .map_err(backend)?;
        rows::records(&found, 0, &self.tenant, None)
    }

    async fn append_on(
        &self,
        client: &Object,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        notify: Option<&str>,
    ) -> Result<(AppendResult, bool), StoreError> {
        let append = writer::Append {
            tenant: &self.tenant,
            stream,
            expected,
            events,
        };
        writer::append(client, &self.shared.sql.writer, &append, notify).await
    }

    /// Runs `fetch` (one try of a log read or the head query) until nothing it could return
    /// is held back, or [`PgOptions::horizon_wait`] runs out. The connection goes back to the
    /// pool between tries.
    async fn below_horizon<T, F, Fut>(&self, mut fetch: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Try<T>, StoreError>>,
    {
        let deadline = Instant::now() + self.shared.horizon_wait;
        let mut pause = Duration::from_millis(1);
        let mut target: Option<i64> = None;
        loop {
            let found = fetch().await?;
            // Wait for the events held back at the first try, not for later ones.
            let waiting_for = match (target, found.held) {
                (Some(target), _) => target,
                (None, Some(held)) => *target.insert(held),
                (None, None) => return Ok(found.value),
            };
            if found.horizon > waiting_for || found.complete || Instant::now() >= deadline {
                return Ok(found.value);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// One try of a log read: the page, read into records while its rows stream in (so that
    /// decoding overlaps the server producing the rest), with the horizon and the newest
    /// transaction whose events it holds back.
    ///
    /// The page runs in a read-only, repeatable-read transaction of its own: the horizon
    /// statement and the page statement then see one snapshot, so the page stops at the
    /// horizon reported. Its planner settings ([`rows::PIN_LOG_PLAN`]) leave the page one
    /// plan, the ordered scan of the log index, whatever the table's statistics say. `BEGIN`
    /// with the settings, the two statements and the `COMMIT` are sent without waiting for one
    /// another, so the transaction adds no round trip. A page given up inside it (an error,
    /// or the read dropped) takes its connection out of the pool rather than return it inside
    /// the transaction.
    async fn log_page(
        &self,
        read: &ReadAll,
        capacity: usize,
    ) -> Result<Try<Vec<RecordedEvent>>, StoreError> {
        let (commit, sequence) = rows::position_params(read.after);
        let limit = rows::limit_param(read);
        let tenant = self.tenant.as_str();
        let (types, categories) = (&read.filter.event_types, &read.filter.categories);
        let filtered = !(types.is_empty() && categories.is_empty());
        let page_params: [&(dyn ToSql + Sync); 6] =
            [&tenant, &commit, &sequence, &limit, types, categories];
        let page_params = if filtered {
            &page_params[..]
        } else {
            &page_params[..4]
        };
        let horizon_params: [&(dyn ToSql + Sync); 5] =
            [&tenant, &commit, &sequence, types, categories];
        let client = self.client().await?;
        let sql = &self.shared.sql.read;
        let page_sql = if filtered {
            &sql.all_filtered
        } else {
            &sql.all
        };
        let (statement, horizon) = futures_util::future::try_join(
            client.prepare_cached(page_sql),
            client.prepare_cached(&sql.all_horizon),
        )
        .await
        .map_err(backend)?;
        let mut open = InTransaction(Some(client));
        let Some(client) = open.0.as_ref() else {
            return Err(StoreError::backend(std::io::Error::other(
                "a log page's connection was let go before the page was read",
            )));
        };
        // In this order on the wire: the horizon statement takes the snapshot.
        let (_, horizon, found) = futures_util::future::try_join3(
            client.batch_execute(&sql.begin_page),
            client.query_one(&horizon, &horizon_params),
            client.query_raw(&statement, page_params.iter().copied()),
        )
        .await
        .map_err(backend)?;
        let behind = read.behind(rows::truncated(&horizon, 2)?);
        let (horizon, held) = rows::horizon(&horizon)?;
        let read = async {
            let mut found = std::pin::pin!(found);
            let mut reader = rows::RecordReader::new(&self.tenant, None);
            let mut page = Try {
                value: Vec::new(),
                horizon,
                held,
                complete: false,
            };
            while let Some(row) = found.try_next().await.map_err(backend)? {
                if page.value.is_empty() {
                    page.value.reserve(capacity);
                }
                page.value.push(reader.read(&row, 0)?);
            }
            page.complete = page.value.len() as i64 >= limit;
            Ok(page)
        };
        let commit = async { client.batch_execute("COMMIT").await.map_err(backend) };
        let (page, ()) = futures_util::future::try_join(read, commit).await?;
        // Committed: the connection goes back to the pool.
        drop(open.0.take());
        // Checked in the page's snapshot, once the transaction is over (a reader behind the
        // cut is rare; the page it read is dropped).
        if let Some(behind) = behind {
            return Err(behind);
        }
        Ok(page)
    }

    /// Test and bench hook, not public API: the SQL the store runs for `which` (`read_all`,
    /// `read_all_filtered`, `read_all_horizon`, `read_all_settings`, `read_all_begin`, `forward`, `backward`, `stream_version`, `append`, `append_one`,
    /// `append_exact`), so that their plans can be checked.
    #[doc(hidden)]
    pub fn __sql(&self, which: &str) -> Option<&str> {
        let sql = &self.shared.sql;
        Some(match which {
            "read_all" => &sql.read.all,
            "read_all_filtered" => &sql.read.all_filtered,
            "read_all_horizon" => &sql.read.all_horizon,
            "read_all_settings" => rows::PIN_LOG_PLAN,
            "read_all_begin" => &sql.read.begin_page,
            "forward" => &sql.read.forward,
            "backward" => &sql.read.backward,
            "stream_version" => &sql.read.stream_version,
            "append" => sql.writer.append_sql(),
            "append_one" => sql.writer.append_one_sql(),
            "append_exact" => sql.writer.append_exact_sql(),
            _ => return None,
        })
    }
}

/// A pooled connection inside a transaction that [`PgEventStore::log_page`] opened; dropped
/// while still holding it (the transaction unfinished), the connection is taken out of the
/// pool and closed, which ends the transaction.
struct InTransaction(Option<Object>);

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

/// One try of a read that stops at the horizon: what it found, the horizon, the newest
/// transaction whose events it held back (if any), and whether the answer is complete
/// regardless (a full page).
struct Try<T> {
    value: T,
    horizon: i64,
    held: Option<i64>,
    complete: bool,
}

impl Tenants for PgEventStore {
    fn with_tenant(&self, tenant: Tenant) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            tenant,
            inline: Arc::clone(&self.inline),
        }
    }
}

impl EventStore for PgEventStore {
    fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let (started, count) = (std::time::Instant::now(), events.len());
        let result = async {
            check_batch(stream, &events)?;
            // Due for a notification: this append carries it if its commit can.
            let claim = self.shared.notifier.as_ref().map(|n| n.claim());
            let claimed = claim.as_ref().and_then(|claim| claim.channel());
            let appended = self
                .append_checked(stream, expected, &events, claimed)
                .await;
            if let Some(claim) = claim {
                let (carried, stored) = match &appended {
                    Ok((appended, carried)) => (*carried, !appended.already_stored),
                    Err(_) => (false, false),
                };
                claim.settle(carried, stored);
            }
            appended.map(|(appended, _)| appended)
        }
        .await;
        let stored = result.as_ref().map(|appended| appended.already_stored);
        record_append("postgres", count, started, stored);
        result
    }

    /// One transaction for every part, which first locks the parts' streams in one fixed
    /// order (see the crate's documentation). A single part with events is a plain
    /// [`append`](EventStore::append), its one statement.
    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let started = std::time::Instant::now();
        let count = appends.iter().map(|part| part.events.len()).sum();
        let result = async {
            check_appends(&appends)?;
            let results = match appends.as_slice() {
                [] => return Ok(Vec::new()),
                [part] if !part.events.is_empty() => vec![
                    self.append_checked(&part.stream, part.expected, &part.events, None)
                        .await?
                        .0,
                ],
                parts => writer::append_streams(self, parts).await?,
            };
            let stored = |(part, result): (&StreamAppend, &AppendResult)| {
                !part.events.is_empty() && !result.already_stored
            };
            if appends.iter().zip(&results).any(stored) {
                self.appended();
            }
            Ok(results)
        }
        .await;
        let stored = |results: &Vec<AppendResult>| results.iter().all(|r| r.already_stored);
        record_append("postgres", count, started, result.as_ref().map(stored));
        result
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        self.events_by_id(&client, ids).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let found = self.stream_rows(stream, read, false).await?;
        rows::records(&found, 0, &self.tenant, Some(stream))
    }

    async fn visit_stream<F, E>(
        &self,
        stream: &StreamId,
        read: ReadStream,
        visit: F,
    ) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        let found = self.stream_rows(stream, read, true).await?;
        match rows::visit(&found, stream, visit)? {
            Ok(()) => Ok(()),
            Err(unvisitable) => Err(self.name_unvisitable(stream, unvisitable).await.into()),
        }
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let (read, capacity) = (&read, read.limit.min(16_384));
        self.below_horizon(move || self.log_page(read, capacity))
            .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.read.stream_version)
            .await
            .map_err(backend)?;
        let row = client
            .query_one(&statement, &[&self.tenant.as_str(), &stream.as_str()])
            .await
            .map_err(backend)?;
        let version: i64 = row.try_get(0).map_err(backend)?;
        Ok(StreamVersion(version.max(0) as u64))
    }

    async fn archived_through(
        &self,
        stream: &StreamId,
    ) -> Result<Option<StreamVersion>, StoreError> {
        self.archived_version(stream).await
    }

    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        let tenant = &self.tenant.as_str();
        let found = self
            .below_horizon(move || async move {
                let client = self.client().await?;
                let statement = client
                    .prepare_cached(&self.shared.sql.read.head)
                    .await
                    .map_err(backend)?;
                let found = client.query(&statement, &[tenant]).await.map_err(backend)?;
                let (horizon, held) = match found.first() {
                    Some(first) => rows::horizon(first)?,
                    None => (0, None),
                };
                Ok(Try {
                    value: found,
                    horizon,
                    held,
                    complete: false,
                })
            })
            .await?;
        let Some(row) = found.first() else {
            return Ok(GlobalPosition::START);
        };
        let commit: Option<i64> = row.try_get(2).map_err(backend)?;
        let sequence: Option<i64> = row.try_get(3).map_err(backend)?;
        Ok(match (commit, sequence) {
            (Some(commit), Some(sequence)) => {
                GlobalPosition::new(commit.max(0) as u64, sequence.max(0) as u64)
            }
            _ => GlobalPosition::START,
        })
    }

    /// The [`notifications`](PgEventStore::notifications) counter. `Ok(None)`, with a
    /// warning, when the LISTEN connection cannot be opened: readers then poll, which is
    /// always correct, only slower.
    async fn append_signal(&self) -> Result<Option<AppendSignal>, StoreError> {
        match self.notifications().await {
            Ok(signal) => Ok(Some(signal)),
            Err(error) => {
                tracing::warn!(
                    %error,
                    schema = %self.shared.schema,
                    "cannot LISTEN for appends; live readers will poll"
                );
                Ok(None)
            }
        }
    }
}

impl PgEventStore {
    /// The [`StoreError::Corrupt`] of a row a visit could not read, found by reading the row
    /// again in full: a visit reads too few columns to name it.
    async fn name_unvisitable(&self, stream: &StreamId, row: rows::Unvisitable) -> StoreError {
        let unlocated = |reason: String| StoreError::Corrupt {
            stream: Some(stream.clone()),
            version: None,
            position: None,
            reason,
        };
        let Some(version) = row.version else {
            return unlocated(row.reason);
        };
        let again = async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.shared.sql.read.one)
                .await
                .map_err(backend)?;
            let found = client
                .query(
                    &statement,
                    &[&self.tenant.as_str(), &stream.as_str(), &version],
                )
                .await
                .map_err(backend)?;
            rows::records(&found, 0, &self.tenant, Some(stream))
        };
        match again.await {
            Err(error) => error,
            Ok(_) => unlocated(format!(
                "{} (the row read cleanly when read again)",
                row.reason
            )),
        }
    }

    /// The rows of a stream read: every column, or only those a visit reads.
    async fn stream_rows(
        &self,
        stream: &StreamId,
        read: ReadStream,
        visit: bool,
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let sql = &self.shared.sql.read;
        let sql = match (read.direction, visit) {
            (Direction::Forward, false) => &sql.forward,
            (Direction::Backward, false) => &sql.backward,
            (Direction::Forward, true) => &sql.visit_forward,
            (Direction::Backward, true) => &sql.visit_backward,
        };
        let statement = client.prepare_cached(sql).await.map_err(backend)?;
        let (from, limit) = rows::stream_bounds(read);
        client
            .query(
                &statement,
                &[&self.tenant.as_str(), &stream.as_str(), &from, &limit],
            )
            .await
            .map_err(backend)
    }
}

impl SnapshotStore for PgEventStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.load_snapshot)
            .await
            .map_err(backend)?;
        let Some(row) = client
            .query_opt(&statement, &[&self.tenant.as_str(), &stream.as_str()])
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let version: i64 = row.try_get(0).map_err(backend)?;
        let state_version: i64 = row.try_get(1).map_err(backend)?;
        let taken_at: std::time::SystemTime = row.try_get(3).map_err(backend)?;
        let state_version = u32::try_from(state_version).map_err(|_| {
            StoreError::backend(std::io::Error::other(format!(
                "the snapshot of `{stream}` has state version {state_version}, outside u32"
            )))
        })?;
        Ok(Some(Snapshot {
            stream: stream.clone(),
            version: StreamVersion(version as u64),
            state_version,
            payload: row.try_get(2).map_err(backend)?,
            taken_at: Timestamp::from(taken_at),
        }))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.save_snapshot)
            .await
            .map_err(backend)?;
        client
            .execute(
                &statement,
                &[
                    &self.tenant.as_str(),
                    &snapshot.stream.as_str(),
                    &(snapshot.version.get() as i64),
                    &i64::from(snapshot.state_version),
                    &snapshot.payload,
                    &std::time::SystemTime::from(snapshot.taken_at),
                ],
            )
            .await
            .map(drop)
            .map_err(backend)
    }
}
