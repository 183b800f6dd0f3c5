//! The store URL grammar and `Store::open` on each scheme: parsing, printing without the
//! password, typed errors naming the part that is wrong, and opening each backend.

use std::path::PathBuf;

use eventsrc::backend::{Leases, ParkedStore};
use eventsrc::postgres::ConnectError;
use eventsrc::postgres::tokio_postgres::config::{Host, SslMode};
use eventsrc::{EventId, EventStore, OpenStoreError, PostgresUrl, Store, StoreUrl};

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
    assert!(matches!(parse("sqlite:///tmp/x.db"), Ok(StoreUrl::SqliteFile(p)) if p.is_absolute()));
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
fn a_sqlite_url_takes_migrate_false_and_prints_it_back() {
    let no_migrate = |path: &str| StoreUrl::SqliteFileNoMigrate(PathBuf::from(path));
    let cases = [
        ("sqlite://events.db?migrate=false", no_migrate("events.db")),
        (
            "sqlite:///var/lib/app/events.db?migrate=false",
            no_migrate("/var/lib/app/events.db"),
        ),
        ("sqlite:events.db?migrate=false", no_migrate("events.db")),
        // `true` is the default, and an empty query says nothing.
        ("sqlite://events.db?migrate=true", file("events.db")),
        ("sqlite://events.db?", file("events.db")),
    ];
    for (url, expected) in cases {
        assert_eq!(parse(url).ok(), Some(expected), "{url}");
    }
    for url in [
        "sqlite://eventsrc-demo.db?migrate=false",
        "sqlite:///tmp/events.db?migrate=false",
    ] {
        let parsed = parse(url).unwrap();
        assert_eq!(parsed.to_string(), url);
        assert_eq!(parse(&parsed.to_string()).unwrap(), parsed);
    }
    assert_eq!(
        parse("sqlite://events.db?migrate=true")
            .unwrap()
            .to_string(),
        "sqlite://events.db"
    );
}

#[test]
fn a_bad_migrate_parameter_is_a_typed_error_naming_it() {
    for (url, says) in [
        ("sqlite://events.db?migrate=maybe", "`migrate=maybe`"),
        ("sqlite://events.db?migrate", "`migrate=`"),
        ("sqlite://events.db?migrate=FALSE", "`migrate=FALSE`"),
        ("sqlite://events.db?migrate=false&migrate=false", "twice"),
    ] {
        match parse(url) {
            Err(error @ OpenStoreError::InvalidParameter { parameter, .. }) => {
                assert_eq!(parameter, "migrate", "{url}");
                let message = error.to_string();
                assert!(message.contains(url), "{message}");
                assert!(message.contains(says), "{message}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    // Other parameters stay malformed, and so does any on a database in memory.
    for url in [
        "sqlite://events.db?migrate=false&mode=ro",
        "sqlite::memory:?migrate=false",
        "sqlite://:memory:?migrate=true",
        "sqlite://?migrate=false",
    ] {
        assert!(
            matches!(parse(url), Err(OpenStoreError::Malformed { .. })),
            "{url}: {:?}",
            parse(url)
        );
    }
    // A PostgreSQL URL's is the driver's URL error, naming it, without the password.
    for url in [
        "postgres://app:s3cret@db.internal/events?migrate=maybe",
        "postgres://app:s3cret@db.internal/events?schema=demo&migrate=no&migrate=false",
    ] {
        match parse(url) {
            Err(
                error @ OpenStoreError::Postgres {
                    source: ConnectError::InvalidUrl(_),
                    ..
                },
            ) => {
                let OpenStoreError::Postgres {
                    source: ConnectError::InvalidUrl(invalid),
                    ..
                } = &error
                else {
                    unreachable!()
                };
                assert_eq!(invalid.parameter(), Some("migrate"), "{url}");
                let shown = format!("{error} {error:?}");
                assert!(shown.contains("migrate="), "{shown}");
                assert!(!shown.contains("s3cret"), "{shown}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn a_postgres_url_takes_migrate_false_beside_the_schema() {
    let url = postgres("postgres://app:s3cret@db.internal/events?schema=demo&migrate=false");
    assert_eq!(url.schema(), Some("demo"));
    assert!(!url.migrate());
    assert_eq!(
        url.to_string(),
        "postgres://app:***@db.internal/events?schema=demo&migrate=false"
    );
    assert!(!format!("{url:?}").contains("s3cret"));
    assert!(postgres("postgres://app@db.internal/events?schema=demo").migrate());
    assert!(postgres("postgres://app@db.internal/events?migrate=true").migrate());
    let parsed = parse("postgresql://app@db.internal/events?migrate=false&schema=demo").unwrap();
    assert_eq!(parse(&parsed.to_string()).unwrap(), parsed);
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
    let config = url.config();
    assert_eq!(config.get_user(), Some("app"));
    assert_eq!(config.get_password(), Some(&b"s3cret"[..]));
    assert_eq!(config.get_hosts(), [Host::Tcp("db.internal".into())]);
    assert_eq!(config.get_ports(), [5433]);
    assert_eq!(config.get_dbname(), Some("events"));
    assert_eq!(url.schema(), None);

    let url = postgres("PostgreSQL://app@db/events?sslmode=disable&schema=demo_2&port=5433");
    let config = url.config();
    assert_eq!(config.get_ssl_mode(), SslMode::Disable);
    // A query parameter replaces the part of the URL it names, as in libpq.
    assert_eq!(config.get_ports(), [5433]);
    assert_eq!(url.schema(), Some("demo_2"));
    assert_eq!(
        url.to_string(),
        "postgresql://app@db/events?sslmode=disable&schema=demo_2&port=5433"
    );

    let url = postgres("postgres://localhost?schema=demo");
    assert_eq!(url.config().get_hosts(), [Host::Tcp("localhost".into())]);
    assert_eq!(url.schema(), Some("demo"));
}

#[test]
fn postgres_urls_name_a_unix_socket_as_libpq_does() {
    for url in [
        "postgres:///events?host=/var/run/postgresql&schema=demo",
        "postgres://app@%2Fvar%2Frun%2Fpostgresql/events?schema=demo",
        "postgresql://app@localhost:5432/events?host=/var/run/postgresql&schema=demo",
    ] {
        let parsed = postgres(url);
        assert_eq!(
            parsed.config().get_hosts(),
            [Host::Unix("/var/run/postgresql".into())],
            "{url}"
        );
        assert_eq!(parsed.schema(), Some("demo"), "{url}");
        assert_eq!(parsed.to_string(), url);
    }
}

#[test]
fn a_postgres_url_without_a_password_prints_as_a_url_that_parses_back() {
    for url in [
        "postgres://postgres@127.0.0.1:5432/test",
        "postgresql://app@db.internal/events?schema=demo",
        "postgres://localhost/events",
        // An `@` past a `:` that ends no password: a parameter's value, a database name.
        "postgres://db.internal:5432/events?application_name=me@work",
        "postgres://:/@",
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
    match Store::open(url).await {
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
    match Store::open(url).await {
        Err(error @ OpenStoreError::Sqlite { .. }) => {
            assert!(error.to_string().contains(url), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_sqlite_url_with_migrate_false_opens_only_a_current_schema() {
    let dir = std::env::temp_dir().join(format!("eventsrc-store-url-migrate-{}", EventId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.db");
    let unmigrated = format!("sqlite://{}?migrate=false", path.display());
    match Store::open(&unmigrated).await {
        Err(
            error @ OpenStoreError::Sqlite {
                source: eventsrc::sqlite::OpenError::SchemaNotCurrent { found: 0, .. },
                ..
            },
        ) => {
            let message = error.to_string();
            assert!(message.contains(&unmigrated), "{message}");
            assert!(message.contains("eventsrc migrate --store"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!path.exists(), "opening without migrating created the file");
    // The DBA's part: the schema's DDL, run by hand.
    eventsrc::sqlite::rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "BEGIN; {} COMMIT;",
            eventsrc::sqlite::schema::ddl()
        ))
        .unwrap();
    let (state, view, backend) = application::run(&unmigrated).await;
    assert_eq!(
        (&*state, &*view, backend),
        ("Ada Lovelace", "Ada Lovelace", "sqlite")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_postgres_url_with_migrate_false_opens_only_a_current_schema() {
    let server = match std::env::var("EVENTSRC_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => server,
        _ => {
            eprintln!(
                "\nEVENTSRC-POSTGRES-SKIPPED: \
                 `a_postgres_url_with_migrate_false_opens_only_a_current_schema` did not run: set \
                 EVENTSRC_POSTGRES_URL\n"
            );
            return;
        }
    };
    // Named as the PostgreSQL crate's tests name theirs (unix seconds first), whose support
    // sweeps old ones.
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let random = EventId::new().0.simple().to_string();
    let schema = format!("eventsrc_test_{seconds}_{}", &random[random.len() - 12..]);
    let separator = if server.contains('?') { '&' } else { '?' };
    let migrating = format!("{server}{separator}schema={schema}");
    let unmigrated = format!("{migrating}&migrate=false");
    match Store::open(&unmigrated).await {
        Err(
            error @ OpenStoreError::Postgres {
                source: ConnectError::SchemaNotCurrent { found: 0, .. },
                ..
            },
        ) => {
            let message = error.to_string();
            assert!(message.contains(&schema), "{message}");
            assert!(message.contains("eventsrc migrate --store"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Migrated (here by opening without the parameter), it opens.
    drop(Store::open(&migrating).await.unwrap());
    let (state, view, backend) = application::run(&unmigrated).await;
    assert_eq!(
        (&*state, &*view, backend),
        ("Ada Lovelace", "Ada Lovelace", "postgres")
    );
    let (client, connection) = eventsrc::postgres::tokio_postgres::connect(
        &server,
        eventsrc::postgres::tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

#[tokio::test]
async fn memory_urls_open_their_backend() {
    assert_eq!(Store::open("memory:").await.unwrap().backend(), "memory");
    let sqlite = Store::open("sqlite::memory:").await.unwrap();
    assert_eq!(sqlite.backend(), "sqlite");
    assert_eq!(sqlite.to_string(), "a SQLite database in memory");
}

#[tokio::test]
async fn leases_parked_events_and_the_append_signal_are_the_backends() {
    for url in ["memory:", "sqlite::memory:"] {
        let store = Store::open(url).await.unwrap();
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

// --- One application on every URL form ---------------------------------------------------------

mod application {
    //! A command and a document view, written once against `Store`.
    #![allow(clippy::unwrap_used)]

    use eventsrc::{
        Changes, Decision, DocumentReader, DocumentView, Documents, Event, Metadata, RecordedEvent,
        Repository, Runner, Store, aggregate, command,
    };
    use serde::{Deserialize, Serialize};

    #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub(crate) struct NameChanged {
        pub name: String,
    }

    #[derive(Default, Debug)]
    pub(crate) struct Lead {
        name: String,
    }

    #[aggregate(id = u64)]
    impl Lead {
        fn on_name_changed(&mut self, event: &NameChanged) {
            self.name = event.name.clone();
        }
    }

    #[command(aggregate = Lead, handler = Lead::rename)]
    #[derive(Debug)]
    pub(crate) struct ChangeName {
        #[id]
        pub lead: u64,
        pub name: String,
    }

    impl Lead {
        fn rename(&self, command: &ChangeName) -> Decision<Self> {
            Ok(vec![
                NameChanged {
                    name: command.name.clone(),
                }
                .into(),
            ])
        }
    }

    /// Each lead's latest name, by lead id.
    #[derive(Debug)]
    pub(crate) struct LeadNames;

    impl DocumentView for LeadNames {
        const NAME: &'static str = "lead_names";
        type Event = LeadEvent;
        type Document = String;
        type Error = std::convert::Infallible;

        fn apply(
            &self,
            event: LeadEvent,
            record: &RecordedEvent,
            docs: &mut Changes<String>,
        ) -> Result<(), Self::Error> {
            let LeadEvent::NameChanged(changed) = event;
            docs.put(record.stream.id(), changed.name);
            Ok(())
        }
    }

    /// Opens `url`, sends a command, runs the view to the end of the log, and answers what the
    /// aggregate and the view then say of lead 7, with the backend's name.
    pub(crate) async fn run(url: &str) -> (String, String, &'static str) {
        let store = Store::open(url)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        let repository = Repository::new(store.clone());
        let command = ChangeName {
            lead: 7,
            name: "Ada Lovelace".into(),
        };
        repository.send(command, Metadata::new()).await.unwrap();
        Runner::new(store.clone(), Documents::new(store.clone(), LeadNames))
            .catch_up()
            .await
            .unwrap();
        let state = repository.load::<Lead>(&7).await.unwrap().state.name;
        let view = DocumentReader::<_, LeadNames>::new(store.clone());
        let name = view.get("7").await.unwrap().unwrap_or_default();
        (state, name, store.backend())
    }
}

#[tokio::test]
async fn every_url_form_runs_the_same_command_and_document_view() {
    let pid = std::process::id();
    let absolute = std::env::temp_dir().join(format!("eventsrc-store-url-{pid}.db"));
    // Relative paths are relative to the current directory: the package's, under `cargo test`.
    let relative = format!("../target/eventsrc-store-url-{pid}.db");
    let relative_bare = format!("../target/eventsrc-store-url-bare-{pid}.db");
    let mut urls = vec![
        ("memory:".to_owned(), "memory"),
        ("sqlite::memory:".to_owned(), "sqlite"),
        (format!("sqlite://{}", absolute.display()), "sqlite"),
        (format!("sqlite://{relative}"), "sqlite"),
        (format!("sqlite:{relative_bare}"), "sqlite"),
    ];
    match std::env::var("EVENTSRC_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => {
            let separator = if server.contains('?') { '&' } else { '?' };
            // Named as the PostgreSQL crate's tests name theirs, whose support sweeps old ones.
            let schema = |i: usize| {
                let random = EventId::new().0.simple().to_string();
                format!("eventsrc_test_{pid}_{i}_{}", &random[random.len() - 12..])
            };
            for (i, scheme) in ["postgres://", "postgresql://"].into_iter().enumerate() {
                let rest = server.split_once("://").map_or(&*server, |(_, rest)| rest);
                let url = format!("{scheme}{rest}{separator}schema={}", schema(i));
                urls.push((url, "postgres"));
            }
            // The same server through its unix socket, named in the query as libpq reads it.
            let config = postgres(&server).config();
            let (user, database) = (config.get_user(), config.get_dbname());
            let directory = ["/var/run/postgresql", "/tmp"]
                .into_iter()
                .find(|directory| {
                    std::path::Path::new(directory)
                        .join(".s.PGSQL.5432")
                        .exists()
                })
                .expect("the test server listens on a unix socket in /var/run/postgresql or /tmp");
            let url = format!(
                "postgres:///{}?host={directory}&user={}&schema={}",
                database.unwrap_or("postgres"),
                user.unwrap_or("postgres"),
                schema(2)
            );
            urls.push((url, "postgres"));
        }
        _ => eprintln!(
            "\nEVENTSRC-POSTGRES-SKIPPED: the PostgreSQL forms of \
             `every_url_form_runs_the_same_command_and_document_view` did not run: set \
             EVENTSRC_POSTGRES_URL\n"
        ),
    }
    for (url, backend) in &urls {
        let (state, view, opened) = application::run(url).await;
        assert_eq!(opened, *backend, "{url}");
        assert_eq!(state, "Ada Lovelace", "{url}: the aggregate");
        assert_eq!(view, "Ada Lovelace", "{url}: the document view");
    }
    for path in [absolute, relative.into(), relative_bare.into()] {
        let path: PathBuf = path;
        let _ = eventsrc::sqlite::remove_database(&path);
    }
}
