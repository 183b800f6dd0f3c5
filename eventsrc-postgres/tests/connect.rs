//! Connecting: the store's `schema` URL parameter and how it meets `PgOptions::schema`, libpq's
//! ways of naming a unix socket, and connect errors that say what the server or the operating
//! system said.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::error::Error as _;
use std::path::Path;

use eventsrc_postgres::tokio_postgres::config::Host;
use eventsrc_postgres::{ConnectError, PgEventStore, PgOptions, PgUrl};
use support::TestSchema;

/// `url` with `parameter` (`key=value`) added to its query.
fn with_parameter(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
}

/// `url` parsed; a bad one is the test's own bug.
fn parse(url: &str) -> PgUrl {
    url.parse().unwrap_or_else(|error| panic!("{url}: {error}"))
}

/// Whether `store`'s pooled connections reach the server through a unix socket (the server
/// sees no client address then).
async fn over_unix_socket(store: &PgEventStore) -> bool {
    store
        .client()
        .await
        .unwrap()
        .query_one("SELECT inet_server_addr() IS NULL", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_urls_schema_parameter_names_the_stores_schema() {
    let Some(schema) = TestSchema::new("the_urls_schema_parameter_names_the_stores_schema").await
    else {
        return;
    };
    let url = with_parameter(&schema.url, &format!("schema={}", schema.name));
    let store = PgEventStore::connect(&url)
        .await
        .expect("connect with ?schema=");
    assert_eq!(store.schema(), schema.name);
    let migrated: i64 = schema
        .client
        .query_one(
            &format!("SELECT count(*) FROM {}", schema.table("migrations")),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(migrated > 0, "the tables are in the URL's schema");

    // The same schema in both places is fine; two different ones are refused.
    let same = PgEventStore::connect_with(&url, PgOptions::default().schema(&schema.name))
        .await
        .expect("the URL and the options agree");
    assert_eq!(same.schema(), schema.name);
    match PgEventStore::connect_with(&url, PgOptions::default().schema("elsewhere")).await {
        Err(error @ ConnectError::SchemaConflict { .. }) => {
            let message = error.to_string();
            assert!(message.contains(&schema.name), "{message}");
            assert!(message.contains("elsewhere"), "{message}");
        }
        other => panic!("expected SchemaConflict, got {other:?}"),
    }
    // The same in libpq's `key=value` form.
    let tcp = parse(&schema.url);
    let Some(Host::Tcp(host)) = tcp.config().get_hosts().first() else {
        panic!("{URL_VAR} names no TCP host", URL_VAR = support::URL_VAR);
    };
    let key_value = format!(
        "host={host} port={} user={} dbname={} schema={}",
        tcp.config().get_ports().first().unwrap_or(&5432),
        tcp.config().get_user().unwrap_or("postgres"),
        tcp.config().get_dbname().unwrap_or("postgres"),
        schema.name
    );
    let store = PgEventStore::connect(&key_value)
        .await
        .unwrap_or_else(|error| panic!("{key_value}: {error}"));
    assert_eq!(store.schema(), schema.name);
    // The options alone name it, as before.
    let options = PgEventStore::connect_with(&schema.url, schema.options())
        .await
        .unwrap();
    assert_eq!(options.schema(), schema.name);
    schema.drop().await;
}

#[tokio::test]
async fn a_unix_socket_is_reached_from_the_query_or_a_percent_encoded_host() {
    let Some(schema) =
        TestSchema::new("a_unix_socket_is_reached_from_the_query_or_a_percent_encoded_host").await
    else {
        return;
    };
    // Where this server keeps its socket: the first of its socket directories.
    let row = schema
        .client
        .query_one(
            "SELECT current_setting('unix_socket_directories'), current_setting('port')",
            &[],
        )
        .await
        .unwrap();
    let (directories, port): (String, String) = (row.get(0), row.get(1));
    let directory = directories
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let socket = Path::new(&directory).join(format!(".s.PGSQL.{port}"));
    assert!(
        !directory.is_empty() && socket.exists(),
        "the server listens on no unix socket (unix_socket_directories = `{directories}`, \
         expected {}): this test needs the server's socket, so it fails rather than skips",
        socket.display()
    );
    let tcp: PgUrl = schema.url.parse().unwrap();
    let user = tcp.config().get_user().unwrap_or("postgres").to_owned();
    let database = tcp.config().get_dbname().unwrap_or("postgres").to_owned();
    let encoded = directory.replace('/', "%2F");
    for url in [
        // libpq's query form; the host in front is replaced, not tried first over TCP.
        format!("postgres://{user}@localhost/{database}?host={directory}&port={port}"),
        format!("postgres:///{database}?host={directory}&port={port}&user={user}"),
        // The directory percent-encoded in place of the host.
        format!("postgres://{user}@{encoded}:{port}/{database}"),
    ] {
        let store = PgEventStore::connect_with(&url, schema.options())
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        assert_eq!(
            parse(&url).config().get_hosts(),
            [Host::Unix(directory.clone().into())],
            "{url}"
        );
        assert!(over_unix_socket(&store).await, "{url} went over TCP");
    }
    // The TCP URL of the same server still goes over TCP.
    assert!(!over_unix_socket(&schema.store().await).await);
    schema.drop().await;
}

#[tokio::test]
async fn a_missing_database_is_an_error_with_the_servers_message() {
    let Some(url) = support::url("a_missing_database_is_an_error_with_the_servers_message") else {
        return;
    };
    let url: PgUrl = url.parse().unwrap();
    let mut config = url.config().clone();
    config.dbname("eventsrc_no_such_database");
    match PgEventStore::connect_config(config, PgOptions::default()).await {
        Err(error @ ConnectError::Postgres(_)) => {
            let message = error.to_string();
            assert!(
                message.contains("database \"eventsrc_no_such_database\" does not exist"),
                "{message}"
            );
            let cause = error.source().expect("the driver's error is the source");
            assert!(
                cause
                    .downcast_ref::<eventsrc_postgres::tokio_postgres::Error>()
                    .and_then(|e| e.as_db_error())
                    .is_some(),
                "{cause:?}"
            );
        }
        other => panic!("expected ConnectError::Postgres, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_port_is_an_error_saying_the_connection_was_refused() {
    // Port 1 on this machine: nothing listens there, so the connection is refused at once.
    match PgEventStore::connect("postgres://postgres@127.0.0.1:1/test").await {
        Err(error @ ConnectError::Postgres(_)) => {
            let message = error.to_string();
            assert!(message.contains("Connection refused"), "{message}");
            let mut chain = error.source();
            let mut io = false;
            while let Some(cause) = chain {
                io |= cause.downcast_ref::<std::io::Error>().is_some();
                chain = cause.source();
            }
            assert!(
                io,
                "the operating system's error stays in the chain: {error:?}"
            );
        }
        other => panic!("expected ConnectError::Postgres, got {other:?}"),
    }
}
