//! The embedded default backend of [`eventsrc`](https://docs.rs/eventsrc): events, snapshots
//! and checkpoints in one SQLite file, no server.
//!
//! - **Bundled SQLite** (no system library), **WAL** mode: readers never block the writer.
//! - **One writer thread** owns the write connection and commits concurrent appends in groups,
//!   each append in its own savepoint, so one `fsync` serves many callers and a conflict in one
//!   append never spoils another. An append across streams
//!   ([`append_streams`](EventStore::append_streams)) is one such append: every part in its
//!   savepoint, stored together or not at all. Readers use their own connections on tokio's
//!   blocking pool; nothing blocks the caller's runtime.
//! - **Durable by default**: `synchronous=FULL`, every acknowledged append survives a power
//!   loss. [`Durability::Normal`] is the opt-in faster mode: in WAL mode it survives a crash of
//!   the application but a power loss may lose the last transactions (never corrupt the file).
//! - **Versioned schema**, created and migrated on open; a file written by a newer build is
//!   refused with [`OpenError::NewerSchema`] instead of being misread. A team that manages
//!   its DDL itself opens with [`SqliteOptions::migrate(false)`](SqliteOptions::migrate) and
//!   makes the schema with [`schema::ddl`] or [`SqliteEventStore::migrate`].
//!
//! ```
//! use eventsrc::{EventStore, ExpectedVersion, NewEvent, StreamId};
//! use eventsrc::store::ReadStream;
//! use eventsrc_sqlite::SqliteEventStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("eventsrc-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let store = SqliteEventStore::open(dir.join("events.db")).await?;
//! let stream = StreamId::new("cart", 42)?;
//! store.append(&stream, ExpectedVersion::Any, vec![NewEvent::raw("ItemAdded", 1, "{}")]).await?;
//! let events = store.read_stream(&stream, ReadStream::forward()).await?;
//! assert_eq!(&*events.last().unwrap().event_type, "ItemAdded");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! # The read side
//!
//! Read models can live in the same file, as tables, updated in the transaction that moves
//! their checkpoint:
//!
//! | what | how | consistency |
//! |---|---|---|
//! | [`SqliteReadModel`] | a [`SqliteProjection`] driven by [`eventsrc::Runner`](eventsrc_core::Runner): one writer transaction per batch checks the checkpoint, applies the batch, moves the checkpoint | exactly once; eventually consistent, read-your-writes with [`ProgressWatch::wait_for`](eventsrc_core::ProgressWatch::wait_for) |
//! | [`Documents`](eventsrc_core::Documents) | a [`DocumentView`](eventsrc_core::DocumentView), the same code on every store: JSON documents in the `documents` table, each batch one writer transaction that checks the checkpoint, writes the documents and their indexed values, moves the checkpoint | exactly once; read with [`DocumentReader`](eventsrc_core::DocumentReader) |
//! | [`with_inline`](SqliteEventStore::with_inline) | a [`SqliteProjection`] applied inside every append's own transaction, from its registration on ([`InlineProjections`](eventsrc_core::InlineProjections), as on PostgreSQL) | exactly once; consistent with the append; a failing projection fails the append |
//! | [`catch_up_inline`](SqliteEventStore::catch_up_inline) | the same, caught up from its checkpoint first, the checkpoint then moved by every append | as above, and resumable |
//! | [`read_with`](SqliteEventStore::read_with) | a query on a pooled read-only connection, one snapshot | — |
//! | [`write_with`](SqliteEventStore::write_with), [`switch_read_model`](eventsrc_core::SwitchReadModel::switch_read_model) | a transaction on the writer thread; a rebuilt read model switched in (a `users_new` beside `users`) | — |
//!
//! Live readers wake on the store's [`append_signal`](EventStore::append_signal), moved by the
//! writer thread after every commit that stored events. Reactors park events in the `parked`
//! table ([`ParkedStore`](eventsrc_core::backend::ParkedStore)), and runners take leadership through
//! [`Leases`](eventsrc_core::backend::Leases): on a database file, an OS file lock per lease in a
//! directory beside it (`events.db-leases/`), so that one runner leads among every process of
//! the machine that opens the file; the lock is released when the lease is dropped or its
//! process ends, even killed. An in-memory database's leases stay in its process. Several
//! processes may open one file safely (SQLite locks it), but the append signal does not wake
//! another process's readers (they poll); checkpoints fence every read model batch under
//! SQLite's write lock, whoever leads.
//!
//! # Damaged rows
//!
//! A row changed behind the store's back so that it no longer reads as an event (a payload
//! stored as a blob, a version stored as text, metadata that is not JSON) is
//! [`StoreError::Corrupt`], naming its stream, version, position and column as far as they
//! can be read, on every read that meets it. Appends to its stream go on unless they need the
//! row: one whose version is the stream's highest and does not read as a positive integer
//! (the next version cannot be known), or one holding an id the append carries (a retry must
//! be compared with it). Those fail with the same error; repair the row and they go through.
//!
//! Every write runs on the one writer thread (appends, read model batches, inline
//! projections, `write_with`), in the order it was sent: a read model batch never waits for
//! SQLite's lock behind an append of the same process, and never interleaves with one.

mod checkpoint;
mod documents;
mod inline;
mod inspect;
#[cfg(feature = "encryption")]
mod keys;
mod leases;
mod lifecycle;
mod options;
mod parked;
mod projection;
mod read_model;
mod rows;
pub mod schema;
mod sql;
mod statements;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

use eventsrc_core::store::{AppendResult, ReadAll, ReadStream, Snapshot, StreamAppend};

use eventsrc_core::backend::{AppendSignal, check_appends, check_batch, record_append};

use eventsrc_core::StoreError;
use eventsrc_core::backend::{LocalLeases, StoredEvent};
use eventsrc_core::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent,
    SnapshotStore, StreamId, StreamVersion, Tenant, Tenants, Timestamp,
};
use leases::StoreLeases;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{oneshot, watch};

pub use eventsrc_core::runner::BatchError;
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub use keys::SqliteKeyStore;
pub use options::{Durability, OpenError, SqliteOptions};
pub use projection::{BoxError, ReadModelError, SqliteProjection};
pub use read_model::SqliteReadModel;
/// The SQLite driver read models are written with, re-exported so that projections use the
/// very version this crate links.
pub use rusqlite;
pub use schema::CURRENT as SCHEMA_VERSION;

/// Every statement the store runs on the `events` table, by name, exactly as it prepares it
/// (reads of the log filtered by event type and by category stand for their families): for
/// tests that check their query plans. Not part of the API: names and text change freely.
#[doc(hidden)]
pub fn event_statements() -> Vec<(&'static str, String)> {
    statements::all()
        .into_iter()
        .map(|(name, sql)| (name, sql.into_owned()))
        .collect()
}

/// An event store, snapshot store and checkpoint store in one SQLite database.
///
/// Clones and [`with_tenant`](Tenants::with_tenant) handles share the writer thread and the
/// reader connections; the writer stops when the last handle is dropped.
#[derive(Clone)]
pub struct SqliteEventStore {
    shared: Arc<Shared>,
    tenant: Tenant,
}

struct Shared {
    writer: Sender<writer::Request>,
    /// `None` for an in-memory database, whose only connection is the writer's.
    readers: Option<Arc<Readers>>,
    /// Moved by the writer after each commit that stored events.
    appended: Arc<watch::Sender<u64>>,
    /// Locked beside the database file (shared in memory by every store of this process open
    /// on it), or this process's own for an in-memory database.
    leases: StoreLeases,
    /// A directory to delete with the last handle ([`SqliteEventStore::open_temporary`]).
    temporary: Option<PathBuf>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Connections still open on the files keep working on Unix until they close.
        if let Some(dir) = &self.temporary {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Idle read-only connections to the file, reused across reads.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEventStore")
            .field("path", &self.path())
            .field("tenant", &self.tenant)
            .finish()
    }
}

pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::backend(error)
}

pub(crate) fn closed() -> StoreError {
    StoreError::backend(std::io::Error::other(
        "the SQLite writer thread has stopped",
    ))
}

/// Removes the files of a SQLite store that no handle has open any more: the database, its
/// `-wal` and `-shm` files, and its leases directory (`-leases/`). Files that are not there
/// are skipped, so it also clears the way before a store is created. For tests and tools that
/// make throwaway stores.
///
/// ```
/// use eventsrc_sqlite::{SqliteEventStore, remove_database};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let path = std::env::temp_dir().join(format!("eventsrc-doc-{}.db", std::process::id()));
/// let store = SqliteEventStore::open(&path).await?;
/// drop(store);
/// remove_database(&path)?;
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn remove_database(path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
    let path = path.as_ref();
    // The leases directory is named after the canonical path, which is known only while the
    // database file exists.
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let absent = |result: std::io::Result<()>| match result {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        absent(std::fs::remove_file(file))?;
    }
    absent(std::fs::remove_dir_all(leases::dir_of(&canonical)))
}

impl SqliteEventStore {
    /// Opens (creating or migrating) the database at `path`, durable by default.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the database at `path` with `options`.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, OpenError> {
        Self::open_at(path.as_ref().to_owned(), options, None).await
    }

    /// A database in a fresh file under the system's temporary directory, deleted with the last
    /// handle: for tests that want the file-backed path (WAL, reader connections) without
    /// cleaning up after themselves.
    pub async fn open_temporary() -> Result<Self, OpenError> {
        let dir =
            std::env::temp_dir().join(format!("eventsrc-sqlite-{}", eventsrc_core::EventId::new()));
        std::fs::create_dir_all(&dir)?;
        Self::open_at(dir.join("events.db"), SqliteOptions::default(), Some(dir)).await
    }

    async fn open_at(
        path: PathBuf,
        options: SqliteOptions,
        temporary: Option<PathBuf>,
    ) -> Result<Self, OpenError> {
        let opened = tokio::task::spawn_blocking(move || -> Result<_, OpenError> {
            let mut conn = match options.migrate {
                true => Connection::open(&path)?,
                false => schema::open_current(&path)?,
            };
            configure(&conn, options.durability)?;
            if options.migrate {
                schema::migrate(&mut conn)?;
            }
            let appended = Arc::new(watch::Sender::new(0));
            let writer = writer::spawn(conn, options.clock, Arc::clone(&appended))?;
            let leases = leases::of_file(&path);
            let readers = Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
            });
            Ok(Shared {
                writer,
                readers: Some(readers),
                appended,
                leases,
                temporary,
            })
        })
        .await
        .map_err(|e| OpenError::Thread(std::io::Error::other(e)))??;
        Ok(Self {
            shared: Arc::new(opened),
            tenant: Tenant::default(),
        })
    }

    /// A private in-memory database, for tests: same schema and behaviour, nothing on disk, gone
    /// with the last handle. Reads go through the writer's connection.
    pub async fn open_in_memory() -> Result<Self, OpenError> {
        Self::open_in_memory_with(SqliteOptions::default()).await
    }

    /// [`open_in_memory`](Self::open_in_memory) with `options` (a clock, say).
    pub async fn open_in_memory_with(options: SqliteOptions) -> Result<Self, OpenError> {
        let mut conn = Connection::open_in_memory()?;
        tune(&conn)?;
        schema::prepare(&mut conn, options.migrate)?;
        let appended = Arc::new(watch::Sender::new(0));
        let writer = writer::spawn(conn, options.clock, Arc::clone(&appended))?;
        Ok(Self {
            shared: Arc::new(Shared {
                writer,
                readers: None,
                appended,
                leases: StoreLeases::InMemory(LocalLeases::default()),
                temporary: None,
            }),
            tenant: Tenant::default(),
        })
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.shared.readers.as_deref().map(|r| r.path.as_path())
    }

    /// Runs `job` on a connection that can read: a pooled read-only connection on the blocking
    /// pool, or the writer's connection for an in-memory database.
    pub(crate) async fn read<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.shared.readers {
            // On a multi-threaded runtime, block this worker in place (tokio moves its other
            // tasks away) instead of handing the read to another thread: no handoff latency.
            Some(readers) if may_block_in_place() => {
                tokio::task::block_in_place(|| readers.with(job))
            }
            Some(readers) => {
                let readers = Arc::clone(readers);
                tokio::task::spawn_blocking(move || readers.with(job))
                    .await
                    .map_err(StoreError::backend)?
            }
            None => self.on_writer(move |conn| job(conn)).await,
        }
    }

    /// Sends an append of this handle's tenant to the writer thread.
    fn send_append(&self, parts: writer::Parts) -> Result<(), StoreError> {
        let append = writer::Append {
            tenant: self.tenant.clone(),
            parts,
        };
        self.shared
            .writer
            .send(writer::Request::Append(append))
            .map_err(|_| closed())
    }

    /// Runs `job` on the writer thread, after the appends sent before it. A panic in `job` is
    /// an error, not the end of the writer thread.
    pub(crate) async fn on_writer<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let request = writer::Request::Run(Box::new(move |conn| {
            let result = projection::guarded(|| job(conn))
                .unwrap_or_else(|panicked| Err(StoreError::backend(panicked)));
            let _ = reply.send(result);
        }));
        self.shared.writer.send(request).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    tune(conn)
}

/// What every connection of a store gets: a wait on a busy database, and room for every
/// statement the store and its read models prepare.
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Whether this thread is a worker of a multi-threaded tokio runtime, where
/// `block_in_place` is allowed.
fn may_block_in_place() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

impl Readers {
    /// Runs `job` on an idle read-only connection (opening one when none is idle).
    fn with<T, E: From<StoreError>>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self.take()?;
        let result = job(&conn);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        result
    }

    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            return Ok(conn);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(backend)?;
        tune(&conn).map_err(backend)?;
        Ok(conn)
    }
}

impl Tenants for SqliteEventStore {
    fn with_tenant(&self, tenant: Tenant) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            tenant,
        }
    }
}

impl EventStore for SqliteEventStore {
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
            let (reply, answer) = oneshot::channel();
            let part = StreamAppend::new(stream.clone(), expected, events);
            self.send_append(writer::Parts::One(part, reply))?;
            answer.await.map_err(|_| closed())?
        }
        .await;
        let stored = result.as_ref().map(|appended| appended.already_stored);
        record_append("sqlite", count, started, stored);
        result
    }

    /// One request to the writer thread, in one savepoint of its group's transaction: every
    /// part is stored, or none; the parts share one commit (their `commit_seq` is the first
    /// part's first position) and one `recorded_at`.
    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let started = std::time::Instant::now();
        let count = appends.iter().map(|part| part.events.len()).sum();
        let result = async {
            check_appends(&appends)?;
            if appends.is_empty() {
                return Ok(Vec::new());
            }
            let (reply, answer) = oneshot::channel();
            self.send_append(writer::Parts::Many(appends, reply))?;
            answer.await.map_err(|_| closed())?
        }
        .await;
        let stored = |results: &Vec<AppendResult>| results.iter().all(|r| r.already_stored);
        record_append("sqlite", count, started, result.as_ref().map(stored));
        result
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (tenant, ids) = (self.tenant.clone(), ids.to_vec());
        self.read(move |conn| rows::events_by_id(conn, &tenant, &ids))
            .await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let (tenant, stream) = (self.tenant.clone(), stream.clone());
        self.read(move |conn| {
            let query = rows::stream_query(&tenant, &stream, read);
            let capacity = read.limit.unwrap_or(0).min(4096);
            rows::query_records(conn, &tenant, Some(&stream), query, capacity)
        })
        .await
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
        let query = rows::visit_query(&self.tenant, stream, read);
        match &self.shared.readers {
            // Blocking in place lets the visitor borrow straight from SQLite's row buffers.
            Some(readers) if may_block_in_place() => tokio::task::block_in_place(|| {
                readers.with(|conn| rows::visit_rows(conn, &self.tenant, stream, query, visit))
            }),
            _ => {
                let (tenant, owned) = (self.tenant.clone(), stream.clone());
                let compact = self
                    .read(move |conn| rows::query_compact(conn, &tenant, &owned, query))
                    .await?;
                compact.visit(stream, visit)
            }
        }
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let tenant = self.tenant.clone();
        self.read(move |conn| {
            let query = rows::all_query(&tenant, &read);
            let capacity = read.limit.min(16_384);
            let page = rows::query_records(conn, &tenant, None, query, capacity)?;
            // Checked after the page, in a snapshot at least as new: a truncation that
            // committed before the page was read fails it, and the page query stays as it is.
            lifecycle::check_behind(conn, &tenant, &read)?;
            Ok(page)
        })
        .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        let (tenant, stream) = (self.tenant.clone(), stream.clone());
        self.read(move |conn| rows::current_version(conn, &tenant, &stream))
            .await
    }

    async fn archived_through(
        &self,
        stream: &StreamId,
    ) -> Result<Option<StreamVersion>, StoreError> {
        let (tenant, stream) = (self.tenant.clone(), stream.clone());
        self.read(move |conn| rows::archived_through(conn, &tenant, &stream))
            .await
    }

    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        let tenant = self.tenant.clone();
        self.read(move |conn| rows::head(conn, &tenant)).await
    }

    /// Moves after every commit of the writer thread that stored events (one commit may hold
    /// many appends); never on an idempotent retry, which stores nothing. Only readers in this
    /// process see it: another process appending to the same file is noticed by polling.
    async fn append_signal(&self) -> Result<Option<AppendSignal>, StoreError> {
        Ok(Some(self.shared.appended.subscribe()))
    }
}

impl SnapshotStore for SqliteEventStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let (tenant, stream) = (self.tenant.clone(), stream.clone());
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT version, state_version, payload, taken_at FROM snapshots WHERE tenant = ?1 AND stream = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant.as_str(), stream.as_str()], |r| {
                    Ok(Snapshot {
                        stream: stream.clone(),
                        version: StreamVersion(r.get::<_, i64>(0)? as u64),
                        state_version: r.get(1)?,
                        payload: r.get(2)?,
                        taken_at: Timestamp::from_micros(r.get(3)?),
                    })
                })
                .optional()
            })
            .map_err(backend)
        })
        .await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let tenant = self.tenant.clone();
        self.on_writer(move |conn| {
            conn.prepare_cached(
                "INSERT INTO snapshots (tenant, stream, version, state_version, payload, taken_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (tenant, stream) DO UPDATE SET version = excluded.version, \
                 state_version = excluded.state_version, payload = excluded.payload, taken_at = excluded.taken_at \
                 WHERE excluded.version >= snapshots.version",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    snapshot.stream.as_str(),
                    snapshot.version.get() as i64,
                    snapshot.state_version,
                    snapshot.payload,
                    snapshot.taken_at.as_micros(),
                ])
            })
            .map(drop)
            .map_err(backend)
        })
        .await
    }
}

impl CheckpointStore for SqliteEventStore {
    async fn load_checkpoint(
        &self,
        subscriber: &str,
    ) -> Result<Option<GlobalPosition>, StoreError> {
        let (tenant, subscriber) = (self.tenant.clone(), subscriber.to_owned());
        self.read(move |conn| {
            checkpoint::load(conn, &tenant, &subscriber)
                .map(|stored| stored.map(|s| s.position))
                .map_err(backend)
        })
        .await
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        position: GlobalPosition,
    ) -> Result<(), StoreError> {
        let (tenant, subscriber) = (self.tenant.clone(), subscriber.to_owned());
        self.on_writer(move |conn| {
            checkpoint::save(conn, &tenant, &subscriber, position).map_err(backend)
        })
        .await
    }
}
