//! `Store`: one store type for every backend, chosen by a URL at run time.

use std::fmt;
#[cfg(feature = "sqlite")]
use std::path::{Path, PathBuf};
use std::str::FromStr;

use eventsrc_core::backend::{
    AppendSignal, DocumentCommit, DocumentStore, DocumentWrite, Lease, Leases, ParkedEvent,
    ParkedStore, Select, StoredEvent,
};
use eventsrc_core::store::{
    AppendResult, CheckpointSummary, Deleted, Deletion, Inspect, Lifecycle, ListStreams, ReadAll,
    ReadStream, Snapshot, StoredTypeCount, StreamAppend, StreamSummary, Truncated,
};
use eventsrc_core::time::{Clock, SystemClock};
use eventsrc_core::{
    CheckpointStore, EventId, EventStore, ExpectedVersion, GlobalPosition, MemoryStore, NewEvent,
    RecordedEvent, SnapshotStore, StoreError, StreamId, StreamVersion, Tenant, Tenants,
};
#[cfg(feature = "postgres")]
use eventsrc_postgres::{ConnectError, PgEventStore, PgOptions};
#[cfg(feature = "sqlite")]
use eventsrc_sqlite::{SqliteEventStore, SqliteOptions};

/// An event, snapshot, checkpoint and parked-event store, with leases, on any of the backends,
/// chosen at run time: [`Store::open`] takes a URL.
///
/// Every method is handed to the store inside, [`visit_stream`](EventStore::visit_stream)
/// included, so a backend's zero-copy loads stay zero-copy, and
/// [`append_signal`](EventStore::append_signal) too, so live runners wake on appends instead of
/// polling. Clones share the store inside.
///
/// An application written against it (its projections and reactors included) runs unchanged on
/// any backend. A [`StoreUrl`] names the backend:
///
/// | URL | store | feature |
/// |---|---|---|
/// | `memory:` | a [`MemoryStore`]: process memory, gone when the program ends | always |
/// | `sqlite://events.db` | a SQLite file, relative to the current directory, created if missing | `sqlite` (default) |
/// | `sqlite:///var/lib/app/events.db` | the same with an absolute path (three slashes) | `sqlite` |
/// | `sqlite://events.db?migrate=false` | the same file, opened only if its schema is this build's: never created or migrated | `sqlite` |
/// | `sqlite::memory:` | a private SQLite database in memory, gone when the program ends | `sqlite` |
/// | `postgres://user:password@host:5432/database` | the schema `eventsrc` of that database, created if missing | `postgres` |
/// | `postgres://user@host/database?schema=billing` | the same in the schema `billing` | `postgres` |
/// | `postgres://user@host/database?schema=billing&migrate=false` | the same, used only if it is at this build's version: never created or migrated | `postgres` |
///
/// `migrate=false` is for teams that manage the DDL themselves: opening then reads the schema's
/// version and changes nothing, and a schema that is missing or older is an error (the
/// backend's `SchemaNotCurrent`) saying to run the migrations (`eventsrc migrate --store <URL>`) or to apply the DDL that `eventsrc schema`
/// prints. It is the backends' `migrate(false)` option (`SqliteOptions::migrate`,
/// `PgOptions::migrate`); `migrate=true` is the default, and any other value is an error
/// naming the parameter.
///
/// `postgresql://` works as well as `postgres://`. A PostgreSQL URL is read as libpq reads it
/// (see [`PostgresUrl`]): `?host=/var/run/postgresql` is a unix socket, and the other
/// parameters (`sslmode`, `connect_timeout`, ...) are the driver's; TLS is not built in, so
/// `sslmode=require` fails. A schema name is lower-case ASCII letters, digits and `_`. Nothing
/// here prints or returns the
/// password: a PostgreSQL URL is displayed with `***` in its place.
///
/// ```
/// use eventsrc::{EventStore, ExpectedVersion, NewEvent, Store, StreamId};
/// use eventsrc::store::ReadStream;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// # #[cfg(feature = "sqlite")] {
/// let store = Store::open("sqlite::memory:").await?;
/// let stream = StreamId::new("cart", 42)?;
/// store.append(&stream, ExpectedVersion::NoStream, vec![NewEvent::raw("ItemAdded", 1, "{}")]).await?;
/// assert_eq!(store.read_stream(&stream, ReadStream::forward()).await?.len(), 1);
/// assert_eq!(store.backend(), "sqlite");
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Store {
    /// The in-memory backend.
    Memory(MemoryStore),
    /// The embedded SQLite backend, on a file or in memory.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteEventStore),
    /// The PostgreSQL backend, in one schema of a database.
    #[cfg(feature = "postgres")]
    Postgres(PgEventStore),
}

/// Runs `$call` on the store inside `$any`, bound to `$store`: one arm per backend.
macro_rules! delegate {
    ($any:expr, $store:ident => $call:expr) => {
        match $any {
            Store::Memory($store) => $call,
            #[cfg(feature = "sqlite")]
            Store::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            Store::Postgres($store) => $call,
        }
    };
}

impl From<MemoryStore> for Store {
    fn from(store: MemoryStore) -> Self {
        Self::Memory(store)
    }
}

#[cfg(feature = "sqlite")]
impl From<SqliteEventStore> for Store {
    fn from(store: SqliteEventStore) -> Self {
        Self::Sqlite(store)
    }
}

#[cfg(feature = "postgres")]
impl From<PgEventStore> for Store {
    fn from(store: PgEventStore) -> Self {
        Self::Postgres(store)
    }
}

impl Store {
    /// Opens the store `url` names, reading `recorded_at` from the system clock.
    pub async fn open(url: &str) -> Result<Self, OpenStoreError> {
        url.parse::<StoreUrl>()?.open().await
    }

    /// Opens the store `url` names, reading `recorded_at` from `clock` (not on PostgreSQL,
    /// which reads the server's clock; see [`StoreUrl::open_with_clock`]).
    pub async fn open_with_clock(url: &str, clock: impl Clock) -> Result<Self, OpenStoreError> {
        url.parse::<StoreUrl>()?.open_with_clock(clock).await
    }

    /// The backend's name: `memory`, `sqlite`, `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Where the events live, in words: `a SQLite file, /home/me/eventsrc-demo.db`, `a PostgreSQL
/// schema, eventsrc` (the database it is in, and the password, are not known here).
impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("a MemoryStore, in process memory"),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => match store.path() {
                Some(path) => write!(f, "a SQLite file, {}", absolute(path).display()),
                None => f.write_str("a SQLite database in memory"),
            },
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => write!(f, "a PostgreSQL schema, {}", store.schema()),
        }
    }
}

/// `path` made absolute against the current directory, or as it is if that is unknown.
#[cfg(feature = "sqlite")]
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

impl Tenants for Store {
    fn with_tenant(&self, tenant: Tenant) -> Self {
        delegate!(self, store => Self::from(store.with_tenant(tenant)))
    }
}

impl EventStore for Store {
    fn tenant(&self) -> &Tenant {
        delegate!(self, store => store.tenant())
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        delegate!(self, store => store.append(stream, expected, events).await)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        delegate!(self, store => store.read_stream(stream, read).await)
    }

    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        delegate!(self, store => store.append_streams(appends).await)
    }

    async fn read_events(&self, ids: &[EventId]) -> Result<Vec<RecordedEvent>, StoreError> {
        delegate!(self, store => store.read_events(ids).await)
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
        delegate!(self, store => store.visit_stream(stream, read, visit).await)
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        delegate!(self, store => store.read_all(read).await)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        delegate!(self, store => store.stream_version(stream).await)
    }

    async fn archived_through(
        &self,
        stream: &StreamId,
    ) -> Result<Option<StreamVersion>, StoreError> {
        delegate!(self, store => store.archived_through(stream).await)
    }

    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        delegate!(self, store => store.head_position().await)
    }

    async fn append_signal(&self) -> Result<Option<AppendSignal>, StoreError> {
        delegate!(self, store => store.append_signal().await)
    }
}

impl SnapshotStore for Store {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        delegate!(self, store => store.load_snapshot(stream).await)
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        delegate!(self, store => store.save_snapshot(snapshot).await)
    }
}

impl CheckpointStore for Store {
    async fn load_checkpoint(
        &self,
        subscriber: &str,
    ) -> Result<Option<GlobalPosition>, StoreError> {
        delegate!(self, store => store.load_checkpoint(subscriber).await)
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        position: GlobalPosition,
    ) -> Result<(), StoreError> {
        delegate!(self, store => store.save_checkpoint(subscriber, position).await)
    }
}

impl ParkedStore for Store {
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError> {
        delegate!(self, store => store.park(parked).await)
    }

    async fn parked(&self, reactor: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        delegate!(self, store => store.parked(reactor).await)
    }

    async fn unpark(&self, reactor: &str, event_id: EventId) -> Result<bool, StoreError> {
        delegate!(self, store => store.unpark(reactor, event_id).await)
    }
}

/// Document views ([`Documents`](eventsrc_core::Documents)) run on any scheme: the documents
/// go where the backend keeps them (process memory, the SQLite file, the PostgreSQL schema).
impl DocumentStore for Store {
    async fn load_documents(
        &self,
        view: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        delegate!(self, store => store.load_documents(view, ids).await)
    }

    async fn query_documents(
        &self,
        view: &str,
        select: Select<'_>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        delegate!(self, store => store.query_documents(view, select).await)
    }

    async fn commit_documents(
        &self,
        view: &str,
        from: Option<GlobalPosition>,
        through: GlobalPosition,
        writes: Vec<DocumentWrite>,
    ) -> Result<DocumentCommit, StoreError> {
        delegate!(self, store => store.commit_documents(view, from, through, writes).await)
    }
}

impl Inspect for Store {
    async fn streams(&self, list: ListStreams) -> Result<Vec<StreamSummary>, StoreError> {
        delegate!(self, store => store.streams(list).await)
    }

    async fn event_types(&self) -> Result<Vec<StoredTypeCount>, StoreError> {
        delegate!(self, store => store.event_types().await)
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointSummary>, StoreError> {
        delegate!(self, store => store.checkpoints().await)
    }

    async fn all_parked(&self) -> Result<Vec<ParkedEvent>, StoreError> {
        delegate!(self, store => store.all_parked().await)
    }
}

impl Lifecycle for Store {
    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        deletion: Deletion,
    ) -> Result<Deleted, StoreError> {
        delegate!(self, store => store.delete_stream(stream, expected, deletion).await)
    }

    async fn truncate_before(
        &self,
        stream: &StreamId,
        version: StreamVersion,
    ) -> Result<Truncated, StoreError> {
        delegate!(self, store => store.truncate_before(stream, version).await)
    }

    async fn read_archive(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        delegate!(self, store => store.read_archive(stream).await)
    }

    async fn truncated_through(&self) -> Result<GlobalPosition, StoreError> {
        delegate!(self, store => store.truncated_through().await)
    }
}

impl Leases for Store {
    async fn try_acquire(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        delegate!(self, store => store.try_acquire(name).await)
    }
}

/// A parsed store URL: which backend, and where.
///
/// The scheme is matched without regard to case; a SQLite path is taken literally (no
/// percent-decoding) up to a `?`, and relative paths are relative to the current directory. A
/// SQLite file takes one parameter, `?migrate=false` ([`SqliteFileNoMigrate`](Self::SqliteFileNoMigrate));
/// any other is an error, as SQLite's own options are the store's to set. A PostgreSQL URL
/// is checked by the driver as it parses (see [`PostgresUrl`]), `migrate=false` included.
///
/// ```
/// use std::path::PathBuf;
/// use eventsrc::StoreUrl;
///
/// # #[cfg(feature = "sqlite")] {
/// let url: StoreUrl = "sqlite://target/events.db".parse()?;
/// assert_eq!(url, StoreUrl::SqliteFile(PathBuf::from("target/events.db")));
/// assert_eq!(url.to_string(), "sqlite://target/events.db");
///
/// let url: StoreUrl = "sqlite://target/events.db?migrate=false".parse()?;
/// assert_eq!(url, StoreUrl::SqliteFileNoMigrate(PathBuf::from("target/events.db")));
/// assert_eq!(url.to_string(), "sqlite://target/events.db?migrate=false");
/// # }
/// assert_eq!("memory:".parse::<StoreUrl>()?, StoreUrl::Memory);
///
/// # #[cfg(feature = "postgres")] {
/// let url: StoreUrl = "postgres://app:s3cret@db.internal/events?schema=demo".parse()?;
/// assert!(matches!(&url, StoreUrl::Postgres(pg) if pg.schema() == Some("demo")));
/// assert_eq!(url.to_string(), "postgres://app:***@db.internal/events?schema=demo");
/// # }
/// # Ok::<(), eventsrc::OpenStoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// `memory:`: a [`MemoryStore`].
    Memory,
    /// `sqlite::memory:` (or `sqlite://:memory:`): a private SQLite database in memory.
    #[cfg(feature = "sqlite")]
    SqliteMemory,
    /// `sqlite://path` (or `sqlite:path`): a SQLite file, created if missing, its schema
    /// created or migrated on open.
    #[cfg(feature = "sqlite")]
    SqliteFile(PathBuf),
    /// `sqlite://path?migrate=false`: a SQLite file whose schema is managed outside the store,
    /// opened only if it is this build's, and never created or migrated (see
    /// [`SqliteOptions::migrate`]). A variant of its own, so that [`SqliteFile`](Self::SqliteFile)
    /// keeps its meaning.
    #[cfg(feature = "sqlite")]
    SqliteFileNoMigrate(PathBuf),
    /// `postgres://...` or `postgresql://...`: a schema in a PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(PostgresUrl),
}

impl StoreUrl {
    /// Opens the store, reading `recorded_at` from the system clock.
    pub async fn open(&self) -> Result<Store, OpenStoreError> {
        self.open_with_clock(SystemClock).await
    }

    /// Opens the store, reading `recorded_at` from `clock`. A SQLite file is created (not its
    /// directory) if it does not exist, and its schema created or migrated; so is a
    /// PostgreSQL schema; unless the URL says `migrate=false`, when a schema that is not this
    /// build's is an error and nothing is created or changed. PostgreSQL stamps `recorded_at` with the server's clock at the start
    /// of each append's transaction, so `clock` is not used there.
    pub async fn open_with_clock(&self, clock: impl Clock) -> Result<Store, OpenStoreError> {
        #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
        let _ = &clock;
        match self {
            Self::Memory => Ok(MemoryStore::with_clock(clock).into()),
            #[cfg(feature = "sqlite")]
            Self::SqliteMemory => {
                let options = SqliteOptions::default().clock(clock);
                let opened = SqliteEventStore::open_in_memory_with(options).await;
                Ok(opened.map_err(|source| self.sqlite_error(source))?.into())
            }
            #[cfg(feature = "sqlite")]
            Self::SqliteFile(path) | Self::SqliteFileNoMigrate(path) => {
                let migrate = matches!(self, Self::SqliteFile(_));
                let options = SqliteOptions::default().clock(clock).migrate(migrate);
                let opened = SqliteEventStore::open_with(path, options).await;
                Ok(opened.map_err(|source| self.sqlite_error(source))?.into())
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => {
                match PgEventStore::connect_url(&url.0, PgOptions::default()).await {
                    Ok(store) => Ok(store.into()),
                    Err(source) => Err(url.error(source)),
                }
            }
        }
    }
}

impl StoreUrl {
    /// `source` as the error of opening this SQLite URL.
    #[cfg(feature = "sqlite")]
    fn sqlite_error(&self, source: eventsrc_sqlite::OpenError) -> OpenStoreError {
        OpenStoreError::Sqlite {
            url: self.to_string(),
            source,
        }
    }
}

impl FromStr for StoreUrl {
    type Err = OpenStoreError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let url = url.trim();
        let malformed = |reason| OpenStoreError::Malformed {
            url: url.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(OpenStoreError::MissingScheme {
                url: url.to_owned(),
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "memory" if rest.is_empty() || rest == "//" => Ok(Self::Memory),
            "memory" => Err(malformed("`memory:` takes nothing after the colon")),
            #[cfg(not(feature = "sqlite"))]
            "sqlite" => Err(OpenStoreError::FeatureOff {
                scheme: "sqlite",
                feature: "sqlite",
            }),
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let (rest, query) = match rest.split_once('?') {
                    Some((rest, query)) => (rest, Some(query)),
                    None => (rest, None),
                };
                if rest == ":memory:" || rest == "//:memory:" {
                    return match query {
                        None => Ok(Self::SqliteMemory),
                        Some(_) => Err(malformed(
                            "`sqlite::memory:` takes no parameters: an in-memory database starts empty, and always gets the schema",
                        )),
                    };
                }
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(malformed(
                        "it names no file: write `sqlite://path/to/file.db` or `sqlite::memory:`",
                    ));
                }
                let path = PathBuf::from(path);
                match sqlite_migrate(url, query.unwrap_or_default())? {
                    true => Ok(Self::SqliteFile(path)),
                    false => Ok(Self::SqliteFileNoMigrate(path)),
                }
            }
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => PostgresUrl::parse(url).map(Self::Postgres),
            #[cfg(not(feature = "postgres"))]
            "postgres" | "postgresql" => Err(OpenStoreError::FeatureOff {
                scheme: "postgres",
                feature: "postgres",
            }),
            _ if scheme.is_empty() => Err(OpenStoreError::MissingScheme {
                url: url.to_owned(),
            }),
            _ => Err(OpenStoreError::UnknownScheme {
                scheme: scheme.to_owned(),
            }),
        }
    }
}

/// Whether the parameters `query` of the SQLite URL `url` (after its `?`, maybe empty) leave
/// migration on: `migrate=true` or `false`, the one parameter a SQLite URL takes.
#[cfg(feature = "sqlite")]
fn sqlite_migrate(url: &str, query: &str) -> Result<bool, OpenStoreError> {
    let invalid = |reason: String| OpenStoreError::InvalidParameter {
        url: url.to_owned(),
        parameter: "migrate",
        reason,
    };
    let mut migrate = None;
    for parameter in query.split('&').filter(|parameter| !parameter.is_empty()) {
        let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        if key != "migrate" {
            return Err(OpenStoreError::Malformed {
                url: url.to_owned(),
                reason: "a SQLite URL takes one parameter, `migrate=false`: SQLite's own options are the store's to set",
            });
        }
        if migrate.is_some() {
            return Err(invalid(
                "`migrate=` is given twice: write `migrate=false` once, or leave it out".to_owned(),
            ));
        }
        migrate = Some(match value {
            "true" => true,
            "false" => false,
            _ => {
                return Err(invalid(format!(
                    "`migrate={value}` is neither true nor false: write `migrate=false` to open \
                     without creating or migrating the schema, or leave it out"
                )));
            }
        });
    }
    Ok(migrate.unwrap_or(true))
}

/// The URL in its usual spelling, which parses back to the same value, except that a
/// PostgreSQL password is written `***`.
impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory:"),
            #[cfg(feature = "sqlite")]
            Self::SqliteMemory => f.write_str("sqlite::memory:"),
            #[cfg(feature = "sqlite")]
            Self::SqliteFile(path) => write!(f, "sqlite://{}", path.display()),
            #[cfg(feature = "sqlite")]
            Self::SqliteFileNoMigrate(path) => {
                write!(f, "sqlite://{}?migrate=false", path.display())
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => url.fmt(f),
        }
    }
}

/// A PostgreSQL store URL: libpq's URL, `postgres://user:password@host:port/database?parameters`
/// (or `postgresql://`), plus two parameters of the store's own: `schema=name` for the schema
/// to keep the tables in (default `eventsrc`), and `migrate=false` to connect without creating
/// or migrating it. The grammar is
/// [`eventsrc_postgres::PgUrl`]'s, which this wraps: query parameters replace the parts of the
/// URL they name, a unix socket is `?host=/var/run/postgresql` or a percent-encoded host
/// (`postgres://%2Fvar%2Frun%2Fpostgresql/app`), and a URL without a host uses the unix socket
/// in `/var/run/postgresql` or `/tmp`.
///
/// It never shows the password: [`Display`](fmt::Display) and [`Debug`] write `***` instead,
/// and so do the errors naming it.
///
/// ```
/// use eventsrc::StoreUrl;
///
/// let url: StoreUrl = "PostgreSQL://app:s3cret@db.internal:5433/events?sslmode=disable".parse()?;
/// let StoreUrl::Postgres(pg) = &url else { unreachable!() };
/// assert_eq!(pg.schema(), None);
/// assert_eq!(pg.to_string(), "postgresql://app:***@db.internal:5433/events?sslmode=disable");
/// assert!(!format!("{pg:?}").contains("s3cret"));
/// # Ok::<(), eventsrc::OpenStoreError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[cfg(feature = "postgres")]
pub struct PostgresUrl(eventsrc_postgres::PgUrl);

#[cfg(feature = "postgres")]
impl PostgresUrl {
    /// The schema named by the `schema` parameter, if any; the store's default is `eventsrc`.
    pub fn schema(&self) -> Option<&str> {
        self.0.schema()
    }

    /// Whether connecting creates or migrates the schema: `false` when the URL says
    /// `migrate=false`.
    pub fn migrate(&self) -> bool {
        self.0.migrate()
    }

    /// The driver's connection settings: everything the URL says but the schema. It holds the
    /// password, if the URL gives one.
    pub fn config(&self) -> eventsrc_postgres::tokio_postgres::Config {
        self.0.config().clone()
    }

    /// The URL as the PostgreSQL backend reads it.
    pub fn as_pg_url(&self) -> &eventsrc_postgres::PgUrl {
        &self.0
    }

    /// Parses the whole store URL `url`, whose scheme is PostgreSQL's.
    fn parse(url: &str) -> Result<Self, OpenStoreError> {
        match url.parse() {
            Ok(parsed) => Ok(Self(parsed)),
            Err(error) => Err(OpenStoreError::Postgres {
                url: error
                    .url()
                    .map_or_else(|| "a postgres: URL".to_owned(), str::to_owned),
                source: ConnectError::InvalidUrl(error),
            }),
        }
    }

    /// `source` as the error of opening this URL.
    fn error(&self, source: ConnectError) -> OpenStoreError {
        OpenStoreError::Postgres {
            url: self.0.to_string(),
            source,
        }
    }
}

/// The URL with `***` for the password.
#[cfg(feature = "postgres")]
impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The URL with `***` for the password.
#[cfg(feature = "postgres")]
impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresUrl")
            .field(&self.0.to_string())
            .finish()
    }
}

/// A store URL that names no store this build can open, or a store that failed to open.
///
/// A PostgreSQL URL appears with `***` for its password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStoreError {
    /// No `scheme:` in front (a bare file name, say).
    #[error(
        "`{url}` is not a store URL: write `memory:`, `sqlite://path/to/file.db`, `sqlite::memory:` or `postgres://user@host/database`"
    )]
    MissingScheme {
        /// The text given.
        url: String,
    },
    /// A scheme no backend answers to.
    #[error(
        "unknown store scheme `{scheme}:`: the stores are `memory:`, `sqlite://path/to/file.db`, `sqlite::memory:` and `postgres://user@host/database`"
    )]
    UnknownScheme {
        /// The scheme given, without its colon.
        scheme: String,
    },
    /// A known scheme with something wrong after it.
    #[error("invalid store URL `{url}`: {reason}")]
    Malformed {
        /// The URL given (a PostgreSQL one without its password).
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A parameter of the URL's query with a value it does not take (`?migrate=maybe`), or
    /// given twice, in a SQLite URL. A PostgreSQL URL's are [`Postgres`](Self::Postgres) errors,
    /// as every fault of its grammar is, whose `UrlError::parameter` names it.
    #[error("invalid store URL `{url}`: {reason}")]
    InvalidParameter {
        /// The URL given.
        url: String,
        /// The parameter at fault: `migrate`.
        parameter: &'static str,
        /// What is wrong, and what to write.
        reason: String,
    },
    /// A scheme whose backend this build leaves out: turn on the feature it names.
    #[error(
        "`{scheme}:` URLs need eventsrc's `{feature}` feature: add it to the `eventsrc` line of Cargo.toml"
    )]
    FeatureOff {
        /// The scheme given, without its colon.
        scheme: &'static str,
        /// The feature that brings its backend in.
        feature: &'static str,
    },
    /// SQLite could not open the database (no such directory, not a database, a newer schema).
    #[error("cannot open `{url}`: {source}")]
    #[cfg(feature = "sqlite")]
    Sqlite {
        /// The store URL.
        url: String,
        /// What SQLite said.
        #[source]
        source: eventsrc_sqlite::OpenError,
    },
    /// The driver refused the PostgreSQL URL, or connecting, creating or migrating the schema
    /// failed (unreachable, authentication, a bad schema name, a newer schema version).
    #[error("cannot open `{url}`: {source}")]
    #[cfg(feature = "postgres")]
    Postgres {
        /// The store URL, with `***` for the password.
        url: String,
        /// What PostgreSQL or the driver said.
        #[source]
        source: ConnectError,
    },
}
