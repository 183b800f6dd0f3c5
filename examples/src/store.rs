//! One store type for every backend the demos can run on, chosen by a URL.
//!
//! [`AnyStore`] is an [`EventStore`], [`SnapshotStore`], [`CheckpointStore`], [`ParkedStore`] and
//! [`Leases`] that hands every call to the backend inside it, so a demo written once (its
//! projections and reactors included) runs on any of them. A [`StoreUrl`] names the backend:
//!
//! | URL | store |
//! |---|---|
//! | `memory:` | a [`MemoryStore`]: process memory, gone when the program ends |
//! | `sqlite://eventsrc-demo.db` | a [`SqliteEventStore`] in that file, relative to the current directory |
//! | `sqlite:///var/lib/app/events.db` | the same with an absolute path (three slashes) |
//! | `sqlite::memory:` | a private SQLite database in memory, gone when the program ends |
//! | `postgres://user:password@host:5432/database` | a [`PgEventStore`] in the schema `eventsrc` of that database, created if missing |
//! | `postgres://user@host/database?schema=demo` | the same in the schema `demo` |
//!
//! `postgresql://` works as well as `postgres://`. A PostgreSQL URL goes to the driver as it is
//! (less `schema=`), so its other parameters (`sslmode`, `connect_timeout`, ...) are the
//! driver's; TLS is not built in, so `sslmode=require` fails. A schema name is lower-case ASCII
//! letters, digits and `_`. Nothing this module prints or returns shows the password: a
//! PostgreSQL URL is displayed with `***` in its place.
//!
//! The demo binaries take the URL from `--store <url>` or the `EVENTSRC_STORE` environment
//! variable ([`Invocation::parse`]).
//!
//! ```
//! use eventsrc::{EventStore, ExpectedVersion, NewEvent, ReadStream, StreamId};
//! use eventsrc_examples::store::{AnyStore, StoreUrl};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let url: StoreUrl = "sqlite::memory:".parse()?;
//! let store = url.open().await?;
//! let stream = StreamId::new("cart", 42)?;
//! store.append(&stream, ExpectedVersion::NoStream, vec![NewEvent::raw("ItemAdded", 1, "{}")]).await?;
//! assert_eq!(store.read_stream(&stream, ReadStream::forward()).await?.len(), 1);
//! assert!(matches!(store, AnyStore::Sqlite(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use eventsrc::store::{AppendResult, ReadAll, ReadStream, Snapshot, StoreError};
use eventsrc::{
    AppendSignal, CheckpointStore, Clock, EventId, EventStore, ExpectedVersion, GlobalPosition,
    Lease, Leases, MemoryStore, NewEvent, ParkedEvent, ParkedStore, RecordedEvent, SnapshotStore,
    StoredEvent, StreamId, StreamVersion, SystemClock, Tenant,
};
use eventsrc_postgres::{ConnectError, PgEventStore, PgOptions};
use eventsrc_sqlite::{SqliteEventStore, SqliteOptions};

/// The environment variable the demos read a store URL from when no `--store` is given.
pub const STORE_ENV: &str = "EVENTSRC_STORE";

/// An event, snapshot, checkpoint and parked-event store, with leases, on any of the backends,
/// chosen at run time.
///
/// Every method is handed to the store inside, [`visit_stream`](EventStore::visit_stream)
/// included, so a backend's zero-copy loads stay zero-copy, and
/// [`append_signal`](EventStore::append_signal) too, so live runners wake on appends instead of
/// polling. Clones share the store inside.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// The in-memory backend.
    Memory(MemoryStore),
    /// The embedded SQLite backend, on a file or in memory.
    Sqlite(SqliteEventStore),
    /// The PostgreSQL backend, in one schema of a database.
    Postgres(PgEventStore),
}

/// Runs `$call` on the store inside `$any`, bound to `$store`: one arm per backend.
macro_rules! delegate {
    ($any:expr, $store:ident => $call:expr) => {
        match $any {
            AnyStore::Memory($store) => $call,
            AnyStore::Sqlite($store) => $call,
            AnyStore::Postgres($store) => $call,
        }
    };
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        Self::Memory(store)
    }
}

impl From<SqliteEventStore> for AnyStore {
    fn from(store: SqliteEventStore) -> Self {
        Self::Sqlite(store)
    }
}

impl From<PgEventStore> for AnyStore {
    fn from(store: PgEventStore) -> Self {
        Self::Postgres(store)
    }
}

impl AnyStore {
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
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Where the events live, in words: `a SQLite file, /home/me/eventsrc-demo.db`, `a PostgreSQL
/// schema, eventsrc` (the database it is in, and the password, are not known here).
impl fmt::Display for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("a MemoryStore, in process memory"),
            Self::Sqlite(store) => match store.path() {
                Some(path) => write!(f, "a SQLite file, {}", absolute(path).display()),
                None => f.write_str("a SQLite database in memory"),
            },
            Self::Postgres(store) => write!(f, "a PostgreSQL schema, {}", store.schema()),
        }
    }
}

/// `path` made absolute against the current directory, or as it is if that is unknown.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

impl EventStore for AnyStore {
    fn tenant(&self) -> &Tenant {
        delegate!(self, store => store.tenant())
    }

    fn with_tenant(&self, tenant: Tenant) -> Self {
        delegate!(self, store => Self::from(store.with_tenant(tenant)))
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

    async fn head_position(&self) -> Result<GlobalPosition, StoreError> {
        delegate!(self, store => store.head_position().await)
    }

    async fn append_signal(&self) -> Result<Option<AppendSignal>, StoreError> {
        delegate!(self, store => store.append_signal().await)
    }
}

impl SnapshotStore for AnyStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        delegate!(self, store => store.load_snapshot(stream).await)
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        delegate!(self, store => store.save_snapshot(snapshot).await)
    }
}

impl CheckpointStore for AnyStore {
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

impl ParkedStore for AnyStore {
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

impl Leases for AnyStore {
    async fn try_acquire(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        delegate!(self, store => store.try_acquire(name).await)
    }
}

/// A parsed store URL: which backend, and where.
///
/// The scheme is matched without regard to case; a SQLite path is taken literally (no
/// percent-decoding) and relative paths are relative to the current directory. A PostgreSQL URL
/// is checked by the driver as it parses (see [`PostgresUrl`]).
///
/// ```
/// use std::path::PathBuf;
/// use eventsrc_examples::store::StoreUrl;
///
/// let url: StoreUrl = "sqlite://target/events.db".parse()?;
/// assert_eq!(url, StoreUrl::SqliteFile(PathBuf::from("target/events.db")));
/// assert_eq!(url.to_string(), "sqlite://target/events.db");
/// assert_eq!("memory:".parse::<StoreUrl>()?, StoreUrl::Memory);
///
/// let url: StoreUrl = "postgres://app:s3cret@db.internal/events?schema=demo".parse()?;
/// assert!(matches!(&url, StoreUrl::Postgres(pg) if pg.schema() == Some("demo")));
/// assert_eq!(url.to_string(), "postgres://app:***@db.internal/events?schema=demo");
/// # Ok::<(), eventsrc_examples::store::OpenStoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory:`: a [`MemoryStore`].
    Memory,
    /// `sqlite::memory:` (or `sqlite://:memory:`): a private SQLite database in memory.
    SqliteMemory,
    /// `sqlite://path` (or `sqlite:path`): a SQLite file, created if missing.
    SqliteFile(PathBuf),
    /// `postgres://...` or `postgresql://...`: a schema in a PostgreSQL database.
    Postgres(PostgresUrl),
}

impl StoreUrl {
    /// Opens the store, reading `recorded_at` from the system clock.
    pub async fn open(&self) -> Result<AnyStore, OpenStoreError> {
        self.open_with_clock(SystemClock).await
    }

    /// Opens the store, reading `recorded_at` from `clock`. A SQLite file is created (not its
    /// directory) if it does not exist, and its schema created or migrated; so is a
    /// PostgreSQL schema. PostgreSQL stamps `recorded_at` with the server's clock at the start
    /// of each append's transaction, so `clock` is not used there.
    pub async fn open_with_clock(&self, clock: impl Clock) -> Result<AnyStore, OpenStoreError> {
        let sqlite = |source| OpenStoreError::Sqlite {
            url: self.to_string(),
            source,
        };
        let opened = match self {
            Self::Memory => return Ok(MemoryStore::with_clock(clock).into()),
            Self::SqliteMemory => {
                let options = SqliteOptions::default().clock(clock);
                SqliteEventStore::open_in_memory_with(options).await
            }
            Self::SqliteFile(path) => {
                let options = SqliteOptions::default().clock(clock);
                SqliteEventStore::open_with(path, options).await
            }
            Self::Postgres(url) => {
                let options = match url.schema() {
                    Some(schema) => PgOptions::default().schema(schema),
                    None => PgOptions::default(),
                };
                let store = PgEventStore::connect_with(&url.connect, options).await;
                return match store {
                    Ok(store) => Ok(store.into()),
                    Err(source) => Err(url.error(source)),
                };
            }
        };
        Ok(opened.map_err(sqlite)?.into())
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
            "sqlite" => {
                if rest == ":memory:" || rest == "//:memory:" {
                    return Ok(Self::SqliteMemory);
                }
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    Err(malformed(
                        "it names no file: write `sqlite://path/to/file.db` or `sqlite::memory:`",
                    ))
                } else if path.contains('?') {
                    Err(malformed(
                        "options after `?` are not supported: the store sets its own",
                    ))
                } else {
                    Ok(Self::SqliteFile(PathBuf::from(path)))
                }
            }
            "postgres" | "postgresql" => PostgresUrl::parse(scheme, rest).map(Self::Postgres),
            _ if scheme.is_empty() => Err(OpenStoreError::MissingScheme {
                url: url.to_owned(),
            }),
            _ => Err(OpenStoreError::UnknownScheme {
                scheme: scheme.to_owned(),
            }),
        }
    }
}

/// The URL in its usual spelling, which parses back to the same value, except that a
/// PostgreSQL password is written `***`.
impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory:"),
            Self::SqliteMemory => f.write_str("sqlite::memory:"),
            Self::SqliteFile(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => url.fmt(f),
        }
    }
}

/// A PostgreSQL store URL: `postgres://` (or `postgresql://`), then whatever the driver,
/// `tokio_postgres`, reads after it (`user:password@host:port/database?parameters`), plus a
/// `schema=name` parameter of its own for the schema to keep the tables in (default
/// `eventsrc`).
///
/// It never shows the password: [`Display`](fmt::Display) and [`Debug`] write `***` instead,
/// and so do the errors naming it.
///
/// ```
/// use eventsrc_examples::store::StoreUrl;
///
/// let url: StoreUrl = "PostgreSQL://app:s3cret@db.internal:5433/events?sslmode=disable".parse()?;
/// let StoreUrl::Postgres(pg) = &url else { unreachable!() };
/// assert_eq!(pg.schema(), None);
/// assert_eq!(pg.to_string(), "postgresql://app:***@db.internal:5433/events?sslmode=disable");
/// assert!(!format!("{pg:?}").contains("s3cret"));
/// # Ok::<(), eventsrc_examples::store::OpenStoreError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    /// The URL for the driver: `postgres://`, then the given URL after its scheme and `//`,
    /// less the `schema` parameter. It holds the password: never print it.
    connect: String,
    /// The given URL with the scheme in lower case and the password replaced by `***`.
    shown: String,
    /// The `schema` parameter.
    schema: Option<String>,
}

impl PostgresUrl {
    /// The schema named by the `schema` parameter, if any; the store's default is `eventsrc`.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Parses `rest`, what follows `scheme:` in a store URL.
    fn parse(scheme: &str, rest: &str) -> Result<Self, OpenStoreError> {
        let scheme = scheme.to_ascii_lowercase();
        let (slashes, body) = match rest.strip_prefix("//") {
            Some(body) => ("//", body),
            None => ("", rest),
        };
        // Credentials end at the last `@`, as in a URL's authority: a password with an `@`
        // that should have been percent-encoded is still hidden whole.
        let (credentials, location) = match body.rsplit_once('@') {
            Some((credentials, location)) => (Some(credentials), location),
            None => (None, body),
        };
        let (address, query) = match location.split_once('?') {
            Some((address, query)) => (address, Some(query)),
            None => (location, None),
        };
        let hidden = credentials.map(|credentials| match credentials.split_once(':') {
            Some((user, _password)) => format!("{user}:***@"),
            None => format!("{credentials}@"),
        });
        let shown = format!(
            "{scheme}:{slashes}{}{address}{}",
            hidden.as_deref().unwrap_or(""),
            query.map(|query| format!("?{query}")).unwrap_or_default()
        );
        let malformed = |reason| OpenStoreError::Malformed {
            url: shown.clone(),
            reason,
        };
        if slashes.is_empty() {
            return Err(malformed(
                "write `postgres://user@host/database`, with the two slashes",
            ));
        }
        let mut schema = None;
        let mut parameters = Vec::new();
        for parameter in query.into_iter().flat_map(|query| query.split('&')) {
            match parameter.split_once('=') {
                Some(("schema", _)) if schema.is_some() => {
                    return Err(malformed("`schema=` is given twice"));
                }
                Some(("schema", "")) => return Err(malformed("`schema=` names no schema")),
                Some(("schema", name)) => schema = Some(name.to_owned()),
                _ => parameters.push(parameter),
            }
        }
        let connect = format!(
            "postgres://{}{address}{}",
            credentials.map(|c| format!("{c}@")).unwrap_or_default(),
            if parameters.is_empty() {
                String::new()
            } else {
                format!("?{}", parameters.join("&"))
            }
        );
        let parsed = Self {
            connect,
            shown,
            schema,
        };
        // The driver reads the URL again on connect; reading it now refuses a bad one early.
        match parsed
            .connect
            .parse::<eventsrc_postgres::tokio_postgres::Config>()
        {
            Ok(_) => Ok(parsed),
            Err(error) => Err(parsed.error(ConnectError::InvalidUrl(error))),
        }
    }

    /// `source` as the error of opening this URL.
    fn error(&self, source: ConnectError) -> OpenStoreError {
        OpenStoreError::Postgres {
            url: self.shown.clone(),
            source,
        }
    }
}

/// The URL with `***` for the password.
impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// The URL with `***` for the password.
impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresUrl").field(&self.shown).finish()
    }
}

/// A store URL that names no store this build can open, or a store that failed to open.
///
/// A PostgreSQL URL appears with `***` for its password.
#[derive(Debug, thiserror::Error)]
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
    /// SQLite could not open the database (no such directory, not a database, a newer schema).
    #[error("cannot open `{url}`: {source}")]
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
    Postgres {
        /// The store URL, with `***` for the password.
        url: String,
        /// What PostgreSQL or the driver said.
        #[source]
        source: ConnectError,
    },
}

/// Where a demo's store URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlSource {
    /// The `--store` option.
    Flag,
    /// The [`STORE_ENV`] environment variable.
    Env,
    /// Neither was given: the demo's default.
    Default,
}

impl fmt::Display for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("from --store"),
            Self::Env => write!(f, "from {STORE_ENV}"),
            Self::Default => write!(
                f,
                "the default; change it with --store <url> or {STORE_ENV}"
            ),
        }
    }
}

/// What a demo binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// `--help` or `-h`: print [`Invocation::usage`] and stop.
    Help,
    /// Run on the store at `url`.
    Run {
        /// The store URL, not yet parsed.
        url: String,
        /// Where it came from.
        source: UrlSource,
    },
}

/// A command line a demo does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// `--store` was the last argument.
    #[error("`--store` needs a URL, e.g. `--store sqlite://eventsrc-demo.db`")]
    MissingUrl,
    /// An argument that is not `--store`, `--store=<url>` or `--help`.
    #[error("unexpected argument `{0}`: the demos take `--store <url>` and `--help`")]
    Unexpected(String),
}

impl Invocation {
    /// Reads a demo's command line: `args` without the program name, and the value of
    /// [`STORE_ENV`] (empty counts as unset). `--store <url>` (or `--store=<url>`) wins over the
    /// environment, which wins over `default`.
    ///
    /// ```
    /// use eventsrc_examples::store::{Invocation, UrlSource};
    ///
    /// let args = ["--store", "memory:"].map(String::from);
    /// let invocation = Invocation::parse(args, Some("sqlite://a.db".into()), "sqlite://b.db")?;
    /// assert_eq!(invocation, Invocation::Run { url: "memory:".into(), source: UrlSource::Flag });
    /// # Ok::<(), eventsrc_examples::store::UsageError>(())
    /// ```
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: Option<String>,
        default: &str,
    ) -> Result<Self, UsageError> {
        let mut flag = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Ok(Self::Help);
            } else if arg == "--store" {
                flag = Some(args.next().ok_or(UsageError::MissingUrl)?);
            } else if let Some(url) = arg.strip_prefix("--store=") {
                flag = Some(url.to_owned());
            } else {
                return Err(UsageError::Unexpected(arg));
            }
        }
        let env = env.filter(|url| !url.trim().is_empty());
        Ok(match (flag, env) {
            (Some(url), _) => Self::Run {
                url,
                source: UrlSource::Flag,
            },
            (None, Some(url)) => Self::Run {
                url,
                source: UrlSource::Env,
            },
            (None, None) => Self::Run {
                url: default.to_owned(),
                source: UrlSource::Default,
            },
        })
    }

    /// Reads this process's arguments and environment.
    pub fn from_env(default: &str) -> Result<Self, UsageError> {
        let env = std::env::var(STORE_ENV).ok();
        Self::parse(std::env::args().skip(1), env, default)
    }

    /// The help text of the demo `program`, whose store defaults to `default`.
    pub fn usage(program: &str, default: &str) -> String {
        format!(
            "usage: {program} [--store <url>]\n\n\
             Runs the demo on the store <url> names (default: {default}); the environment\n\
             variable {STORE_ENV} sets it too, and --store wins over it.\n\n\
             Store URLs:\n\
             \x20 memory:                    in process memory, gone when the demo ends\n\
             \x20 sqlite://path/to/file.db   a SQLite file (relative to the current directory;\n\
             \x20                            sqlite:///absolute/path.db for an absolute path)\n\
             \x20 sqlite::memory:            a SQLite database in memory\n\
             \x20 postgres://user:password@host:5432/database[?schema=name]\n\
             \x20                            a schema (default eventsrc) in a PostgreSQL database,\n\
             \x20                            created if missing; postgresql:// works too\n"
        )
    }

    /// What every demo does first: read `--store`/[`STORE_ENV`], print the usage and return
    /// `None` for `--help`, else the parsed store URL and where it came from.
    pub fn store(
        program: &str,
        default: &str,
    ) -> Result<Option<(StoreUrl, UrlSource)>, Box<dyn std::error::Error>> {
        match Self::from_env(default)? {
            Self::Help => {
                print!("{}", Self::usage(program, default));
                Ok(None)
            }
            Self::Run { url, source } => Ok(Some((url.parse()?, source))),
        }
    }
}

/// A demo's exit: success, or its error printed as `error: ...` with a failure code.
pub fn exit_code(outcome: Result<(), Box<dyn std::error::Error>>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<StoreUrl, OpenStoreError> {
        url.parse()
    }

    fn file(path: &str) -> StoreUrl {
        StoreUrl::SqliteFile(PathBuf::from(path))
    }

    #[test]
    fn memory_urls() {
        for url in ["memory:", "MEMORY:", " memory: ", "memory://"] {
            assert_eq!(parse(url).ok(), Some(StoreUrl::Memory), "{url}");
        }
        assert!(matches!(
            parse("memory:events"),
            Err(OpenStoreError::Malformed { .. })
        ));
    }

    #[test]
    fn sqlite_urls_name_a_file_relative_or_absolute_or_memory() {
        let cases = [
            ("sqlite://eventsrc-demo.db", file("eventsrc-demo.db")),
            (
                "sqlite://target/demo/events.db",
                file("target/demo/events.db"),
            ),
            (
                "sqlite:///var/lib/app/events.db",
                file("/var/lib/app/events.db"),
            ),
            ("sqlite:events.db", file("events.db")),
            ("SQLite://Events.db", file("Events.db")),
            ("sqlite::memory:", StoreUrl::SqliteMemory),
            ("sqlite://:memory:", StoreUrl::SqliteMemory),
        ];
        for (url, expected) in cases {
            assert_eq!(parse(url).ok(), Some(expected), "{url}");
        }
        assert!(
            matches!(parse("sqlite:///tmp/x.db"), Ok(StoreUrl::SqliteFile(p)) if p.is_absolute())
        );
        assert!(matches!(parse("sqlite://x.db"), Ok(StoreUrl::SqliteFile(p)) if p.is_relative()));
    }

    #[test]
    fn a_parsed_url_prints_as_a_url_that_parses_back() {
        for url in [
            "memory:",
            "sqlite::memory:",
            "sqlite://eventsrc-demo.db",
            "sqlite:///tmp/events.db",
        ] {
            let parsed = parse(url).unwrap();
            assert_eq!(parsed.to_string(), url);
            assert_eq!(parse(&parsed.to_string()).unwrap(), parsed);
        }
    }

    #[test]
    fn a_sqlite_url_without_a_file_or_with_options_is_malformed() {
        for url in ["sqlite://", "sqlite:", "sqlite://events.db?mode=rwc"] {
            match parse(url) {
                Err(error @ OpenStoreError::Malformed { .. }) => {
                    assert!(error.to_string().contains(url), "{error}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_and_missing_schemes_are_typed_errors() {
        match parse("mysql://localhost/events") {
            Err(OpenStoreError::UnknownScheme { scheme }) => assert_eq!(scheme, "mysql"),
            other => panic!("{other:?}"),
        }
        for url in ["eventsrc-demo.db", "", ":memory:"] {
            assert!(
                matches!(parse(url), Err(OpenStoreError::MissingScheme { .. })),
                "{url}"
            );
        }
    }

    fn postgres(url: &str) -> PostgresUrl {
        match parse(url) {
            Ok(StoreUrl::Postgres(url)) => url,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn postgres_urls_take_a_schema_and_keep_the_drivers_parameters() {
        let url = postgres("postgres://app:s3cret@db.internal:5433/events");
        assert_eq!(url.connect, "postgres://app:s3cret@db.internal:5433/events");
        assert_eq!(url.schema(), None);

        let url = postgres("PostgreSQL://app@db/events?sslmode=disable&schema=demo_2&port=5433");
        assert_eq!(
            url.connect,
            "postgres://app@db/events?sslmode=disable&port=5433"
        );
        assert_eq!(url.schema(), Some("demo_2"));
        assert_eq!(
            url.to_string(),
            "postgresql://app@db/events?sslmode=disable&schema=demo_2&port=5433"
        );

        let url = postgres("postgres://localhost?schema=demo");
        assert_eq!(url.connect, "postgres://localhost");
        assert_eq!(url.schema(), Some("demo"));
    }

    #[test]
    fn a_postgres_url_without_a_password_prints_as_a_url_that_parses_back() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgresql://app@db.internal/events?schema=demo",
            "postgres://localhost/events",
        ] {
            let parsed = parse(url).unwrap();
            assert_eq!(parsed.to_string(), url);
            assert_eq!(parse(&parsed.to_string()).unwrap(), parsed);
        }
    }

    #[test]
    fn postgres_passwords_are_never_shown() {
        for url in [
            "postgres://app:s3cret@db.internal/events",
            "postgresql://app:s3cret@db.internal/events?schema=demo",
            "postgres://app:s3c@ret@db.internal/events",
        ] {
            let parsed = parse(url).unwrap();
            for shown in [parsed.to_string(), format!("{parsed:?}")] {
                assert!(!shown.contains("s3c"), "{shown}");
                assert!(shown.contains("app:***@"), "{shown}");
            }
        }
        for url in [
            "postgres:app:s3cret@db.internal/events",
            "postgres://app:s3cret@db.internal/events?schema=",
            "postgres://app:s3cret@db.internal/events?schema=a&schema=b",
            "postgres://app:s3cret@db.internal/events?colour=blue",
            "postgres://app:s3cret@db.internal:port/events",
        ] {
            let error = parse(url).unwrap_err();
            for shown in [error.to_string(), format!("{error:?}")] {
                assert!(!shown.contains("s3cret"), "{shown}");
            }
        }
        assert!(matches!(
            parse("postgres://app:s3cret@db.internal/events?colour=blue"),
            Err(OpenStoreError::Postgres {
                source: ConnectError::InvalidUrl(_),
                ..
            })
        ));
    }

    #[tokio::test]
    async fn a_postgres_server_that_is_not_there_is_a_postgres_open_error() {
        // Port 1 on this machine: nothing listens there, so the connection is refused at once.
        let url = "postgres://app:s3cret@127.0.0.1:1/events";
        match AnyStore::open(url).await {
            Err(error @ OpenStoreError::Postgres { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains("postgres://app:***@127.0.0.1:1/events"),
                    "{message}"
                );
                assert!(!message.contains("s3cret"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_file_in_a_missing_directory_is_a_sqlite_open_error() {
        let url = "sqlite:///nonexistent-eventsrc-directory/events.db";
        match AnyStore::open(url).await {
            Err(error @ OpenStoreError::Sqlite { .. }) => {
                assert!(error.to_string().contains(url), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn memory_urls_open_their_backend() {
        assert_eq!(AnyStore::open("memory:").await.unwrap().backend(), "memory");
        let sqlite = AnyStore::open("sqlite::memory:").await.unwrap();
        assert_eq!(sqlite.backend(), "sqlite");
        assert_eq!(sqlite.to_string(), "a SQLite database in memory");
    }

    #[tokio::test]
    async fn leases_parked_events_and_the_append_signal_are_the_backends() {
        for url in ["memory:", "sqlite::memory:"] {
            let store = AnyStore::open(url).await.unwrap();
            let lease = store.try_acquire("notifications").await.unwrap();
            assert!(lease.is_some(), "{url}");
            let again = store.try_acquire("notifications").await.unwrap();
            assert!(again.is_none(), "{url}: held");
            drop(lease);
            let again = store.try_acquire("notifications").await.unwrap();
            assert!(again.is_some(), "{url}: released");
            assert!(store.parked("notifications").await.unwrap().is_empty());
            let id = EventId::new();
            assert!(!store.unpark("notifications", id).await.unwrap(), "{url}");
            assert!(store.append_signal().await.unwrap().is_some(), "{url}");
        }
    }

    fn args(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    fn run(url: &str, source: UrlSource) -> Invocation {
        let url = url.to_owned();
        Invocation::Run { url, source }
    }

    #[test]
    fn the_flag_wins_over_the_environment_which_wins_over_the_default() {
        let default = "sqlite://eventsrc-demo.db";
        let env = || Some("sqlite://from-env.db".to_owned());
        let cases = [
            (
                args(&["--store", "memory:"]),
                env(),
                run("memory:", UrlSource::Flag),
            ),
            (
                args(&["--store=memory:"]),
                env(),
                run("memory:", UrlSource::Flag),
            ),
            (
                args(&[]),
                env(),
                run("sqlite://from-env.db", UrlSource::Env),
            ),
            (
                args(&[]),
                Some(" ".to_owned()),
                run(default, UrlSource::Default),
            ),
            (args(&[]), None, run(default, UrlSource::Default)),
            (
                args(&["--store", "a:", "--store", "b:"]),
                None,
                run("b:", UrlSource::Flag),
            ),
            (args(&["--help"]), env(), Invocation::Help),
            (args(&["--store", "memory:", "-h"]), None, Invocation::Help),
        ];
        for (args, env, expected) in cases {
            let invocation = Invocation::parse(args.clone(), env, default);
            assert_eq!(invocation, Ok(expected), "{args:?}");
        }
    }

    #[test]
    fn a_command_line_the_demos_do_not_take_is_a_usage_error() {
        let parse = |list: &[&str]| Invocation::parse(args(list), None, "memory:");
        assert_eq!(parse(&["--store"]), Err(UsageError::MissingUrl));
        assert_eq!(
            parse(&["sqlite://x.db"]),
            Err(UsageError::Unexpected("sqlite://x.db".to_owned()))
        );
        let usage = Invocation::usage("leads", "sqlite://eventsrc-demo.db");
        assert!(usage.contains("--store <url>") && usage.contains(STORE_ENV));
    }
}
