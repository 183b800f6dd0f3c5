//! A schema managed outside the store: `migrate(false)` refuses a schema that is not this
//! build's and changes nothing; the DDL of `schema::ddl` makes the very schema that migrating
//! makes; `PgEventStore::migrate` and `schema::migrate` say what they did.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use eventsrc::store::ReadStream;
use eventsrc::{EventStore, ExpectedVersion, NewEvent, StreamId};
use eventsrc_postgres::{ConnectError, PgEventStore, PgOptions, PgUrl, SCHEMA_VERSION, schema};
use support::TestSchema;

/// A listing of everything in a schema that the store's statements depend on, with the
/// schema's name written `<schema>`, so that two schemas compare equal when they hold the same
/// tables, columns, constraints, indexes, sequences and recorded versions.
async fn listing(test: &TestSchema) -> Vec<String> {
    let queries = [
        // Columns, their types, defaults and collations.
        "SELECT format('column %s.%s #%s %s %s default %s collate %s', table_name, column_name, \
         ordinal_position, data_type, is_nullable, column_default, collation_name) \
         FROM information_schema.columns WHERE table_schema = $1",
        // Constraints, as PostgreSQL would write them.
        "SELECT format('constraint %s on %s: %s', c.conname, c.conrelid::regclass, \
         pg_get_constraintdef(c.oid)) FROM pg_constraint c \
         JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1",
        // Indexes.
        "SELECT format('index %s: %s', indexname, indexdef) FROM pg_indexes WHERE schemaname = $1",
        // Relations (tables, sequences, indexes) and their replica identity.
        "SELECT format('relation %s kind %s replica identity %s', c.relname, c.relkind, \
         c.relreplident) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1",
    ];
    let mut listing = Vec::new();
    for query in queries {
        for row in test.client.query(query, &[&test.name]).await.unwrap() {
            let line: String = row.get(0);
            listing.push(line.replace(&test.name, "<schema>"));
        }
    }
    listing.extend(versions(test).await.iter().map(|v| format!("version {v}")));
    listing.sort();
    listing
}

/// The versions recorded in the schema's `migrations` table, if it has one.
async fn versions(test: &TestSchema) -> Vec<i32> {
    let table = test.table("migrations");
    let found: bool = test
        .client
        .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0);
    if !found {
        return Vec::new();
    }
    test.client
        .query(
            &format!(
                "SELECT version FROM {} ORDER BY version",
                test.table("migrations")
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Whether the schema exists at all.
async fn exists(test: &TestSchema) -> bool {
    test.client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)",
            &[&test.name],
        )
        .await
        .unwrap()
        .get(0)
}

/// Runs `sql` in one transaction, as a DBA would with `psql --single-transaction`.
async fn apply(test: &TestSchema, sql: &str) {
    test.client
        .batch_execute(&format!("BEGIN;\n{sql}\nCOMMIT;"))
        .await
        .unwrap();
}

fn unmigrated(test: &TestSchema) -> PgOptions {
    test.options().migrate(false)
}

/// The test server's URL, parsed.
fn server(test: &TestSchema) -> PgUrl {
    test.url.parse().unwrap()
}

/// The test server's URL with `parameters` added to its query.
fn with_parameters(test: &TestSchema, parameters: &str) -> String {
    let separator = if test.url.contains('?') { '&' } else { '?' };
    format!("{}{separator}{parameters}", test.url)
}

/// Appends an event and reads it back.
async fn round_trip(store: &PgEventStore) {
    let stream = StreamId::new("cart", 1).unwrap();
    let added = NewEvent::raw("ItemAdded", 1, r#"{"sku":"apple"}"#);
    store
        .append(&stream, ExpectedVersion::NoStream, vec![added])
        .await
        .unwrap();
    let events = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(&*events[0].event_type, "ItemAdded");
}

#[tokio::test]
async fn connecting_to_a_missing_schema_without_migrating_is_refused_and_creates_nothing() {
    let Some(test) = TestSchema::new(
        "connecting_to_a_missing_schema_without_migrating_is_refused_and_creates_nothing",
    )
    .await
    else {
        return;
    };
    match PgEventStore::connect_with(&test.url, unmigrated(&test)).await {
        Err(error @ ConnectError::SchemaNotCurrent { found: 0, .. }) => {
            let ConnectError::SchemaNotCurrent {
                schema, expected, ..
            } = &error
            else {
                unreachable!()
            };
            assert_eq!((schema, *expected), (&test.name, SCHEMA_VERSION));
            let message = error.to_string();
            for says in [
                test.name.as_str(),
                "no eventsrc tables",
                "eventsrc migrate --store",
                "eventsrc schema",
            ] {
                assert!(message.contains(says), "{message}");
            }
        }
        other => panic!("expected SchemaNotCurrent, got {other:?}"),
    }
    assert!(!exists(&test).await, "the schema was created");
    // An empty schema, made by a DBA, is refused the same way and stays empty.
    test.client
        .batch_execute(&format!("CREATE SCHEMA \"{}\"", test.name))
        .await
        .unwrap();
    assert!(matches!(
        PgEventStore::connect_with(&test.url, unmigrated(&test)).await,
        Err(ConnectError::SchemaNotCurrent { found: 0, .. })
    ));
    assert_eq!(listing(&test).await, Vec::<String>::new());
    test.drop().await;
}

#[tokio::test]
async fn the_ddl_applied_by_hand_connects_without_migrating_and_round_trips() {
    let Some(test) =
        TestSchema::new("the_ddl_applied_by_hand_connects_without_migrating_and_round_trips").await
    else {
        return;
    };
    apply(&test, &schema::ddl(&test.name)).await;
    let store = PgEventStore::connect_with(&test.url, unmigrated(&test))
        .await
        .unwrap();
    round_trip(&store).await;
    drop(store);
    // Migrating it is a no-op: the DDL recorded every version.
    let migrated = PgEventStore::migrate(&server(&test), test.options())
        .await
        .unwrap();
    assert_eq!(
        (migrated.from, migrated.to),
        (SCHEMA_VERSION, SCHEMA_VERSION)
    );
    assert!(!migrated.changed());
    test.drop().await;
}

#[tokio::test]
async fn the_ddl_makes_the_schema_migrating_from_nothing_makes() {
    let Some(by_hand) =
        TestSchema::new("the_ddl_makes_the_schema_migrating_from_nothing_makes").await
    else {
        return;
    };
    let migrated_schema = TestSchema::fresh().await;
    apply(&by_hand, &schema::ddl(&by_hand.name)).await;
    let migrated = PgEventStore::migrate(&server(&migrated_schema), migrated_schema.options())
        .await
        .unwrap();
    assert_eq!((migrated.from, migrated.to), (0, SCHEMA_VERSION));
    assert_eq!(
        migrated.to_string(),
        format!("created the schema at version {SCHEMA_VERSION}")
    );

    let made = listing(&by_hand).await;
    for expected in [
        "relation events kind r replica identity i",
        "index events_log: CREATE INDEX events_log ON <schema>.events USING btree (tenant, transaction_id, \"position\")",
    ] {
        assert!(
            made.iter().any(|line| line == expected),
            "{expected}: {made:#?}"
        );
    }
    assert_eq!(
        made.iter()
            .filter(|line| line.starts_with("version "))
            .count(),
        SCHEMA_VERSION as usize
    );
    assert_eq!(listing(&migrated_schema).await, made);
    by_hand.drop().await;
    migrated_schema.drop().await;
}

#[tokio::test]
async fn an_older_schema_is_refused_without_migrating_until_migrated_explicitly() {
    let Some(test) =
        TestSchema::new("an_older_schema_is_refused_without_migrating_until_migrated_explicitly")
            .await
    else {
        return;
    };
    apply(&test, &schema::ddl_up_to(&test.name, 1)).await;
    let before = listing(&test).await;
    match PgEventStore::connect_with(&test.url, unmigrated(&test)).await {
        Err(error @ ConnectError::SchemaNotCurrent { found: 1, .. }) => {
            let message = error.to_string();
            assert!(message.contains("has version 1"), "{message}");
            assert!(message.contains("eventsrc migrate --store"), "{message}");
        }
        other => panic!("expected SchemaNotCurrent, got {other:?}"),
    }
    assert_eq!(listing(&test).await, before, "refusing changed the schema");

    let migrated = PgEventStore::migrate(&server(&test), test.options())
        .await
        .unwrap();
    assert_eq!((migrated.from, migrated.to), (1, SCHEMA_VERSION));
    assert!(migrated.changed());
    assert_eq!(
        migrated.to_string(),
        format!("migrated the schema from version 1 to version {SCHEMA_VERSION}")
    );
    assert_eq!(
        versions(&test).await,
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
    let store = PgEventStore::connect_with(&test.url, unmigrated(&test))
        .await
        .unwrap();
    round_trip(&store).await;
    test.drop().await;
}

#[tokio::test]
async fn a_newer_schema_is_the_newer_schema_error_whether_or_not_connecting_migrates() {
    let Some(test) = TestSchema::new(
        "a_newer_schema_is_the_newer_schema_error_whether_or_not_connecting_migrates",
    )
    .await
    else {
        return;
    };
    apply(&test, &schema::ddl(&test.name)).await;
    test.client
        .execute(
            &format!(
                "INSERT INTO {} (version) VALUES ($1)",
                test.table("migrations")
            ),
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    for options in [test.options(), unmigrated(&test)] {
        match PgEventStore::connect_with(&test.url, options).await {
            Err(ConnectError::NewerSchema {
                found, supported, ..
            }) => assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION)),
            other => panic!("expected NewerSchema, got {other:?}"),
        }
    }
    assert!(matches!(
        PgEventStore::migrate(&server(&test), test.options()).await,
        Err(ConnectError::NewerSchema { .. })
    ));
    test.drop().await;
}

#[tokio::test]
async fn migrate_false_in_the_url_or_the_options_turns_migration_off() {
    let Some(test) =
        TestSchema::new("migrate_false_in_the_url_or_the_options_turns_migration_off").await
    else {
        return;
    };
    let name = &test.name;
    let url = with_parameters(&test, &format!("schema={name}&migrate=false"));
    assert!(matches!(
        PgEventStore::connect(&url).await,
        Err(ConnectError::SchemaNotCurrent { found: 0, .. })
    ));
    // Either one saying `false` is enough.
    let url_says_true = with_parameters(&test, &format!("schema={name}&migrate=true"));
    let options = PgOptions::default().migrate(false);
    assert!(matches!(
        PgEventStore::connect_with(&url_says_true, options).await,
        Err(ConnectError::SchemaNotCurrent { found: 0, .. })
    ));
    assert!(!exists(&test).await, "the schema was created");
    // `migrate=true` is the default: connecting creates the schema, and the URL that refused
    // it then connects.
    drop(PgEventStore::connect(&url_says_true).await.unwrap());
    round_trip(&PgEventStore::connect(&url).await.unwrap()).await;
    test.drop().await;
}

#[tokio::test]
async fn migrate_on_a_client_of_your_own_says_what_it_did() {
    let Some(mut test) = TestSchema::new("migrate_on_a_client_of_your_own_says_what_it_did").await
    else {
        return;
    };
    apply(&test, &schema::ddl_up_to(&test.name, 3)).await;
    let name = test.name.clone();
    let migrated = schema::migrate(&mut test.client, &name).await.unwrap();
    assert_eq!((migrated.from, migrated.to), (3, SCHEMA_VERSION));
    let again = schema::migrate(&mut test.client, &name).await.unwrap();
    assert_eq!((again.from, again.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    assert_eq!(
        again.to_string(),
        format!("the schema is at version {SCHEMA_VERSION} already")
    );
    assert!(matches!(
        schema::migrate(&mut test.client, "Not-A-Schema").await,
        Err(ConnectError::InvalidSchema { .. })
    ));
    test.drop().await;
}

#[test]
fn a_bad_migrate_parameter_is_a_url_error_naming_it() {
    for (url, says) in [
        (
            "postgres://app:s3cret@db/events?migrate=maybe",
            "migrate=maybe",
        ),
        (
            "postgres://app:s3cret@db/events?migrate=false&migrate=true",
            "twice",
        ),
        ("host=db password=s3cret migrate=yes", "migrate=yes"),
    ] {
        let error = url.parse::<PgUrl>().unwrap_err();
        assert_eq!(error.parameter(), Some("migrate"), "{url}");
        assert!(error.reason().contains(says), "{url}: {error}");
        assert!(
            !format!("{error} {error:?}").contains("s3cret"),
            "{error:?}"
        );
    }
    for (url, migrate) in [
        ("postgres://app@db/events", true),
        ("postgres://app@db/events?migrate=true", true),
        (
            "postgres://app:s3cret@db/events?schema=x&migrate=false",
            false,
        ),
        ("host=db schema=x migrate=false", false),
    ] {
        let parsed = url.parse::<PgUrl>().unwrap();
        assert_eq!(parsed.migrate(), migrate, "{url}");
        assert!(!parsed.to_string().contains("s3cret"), "{parsed}");
    }
    let error = "postgres://db/events?schema=Bad"
        .parse::<PgUrl>()
        .unwrap_err();
    assert_eq!(error.parameter(), Some("schema"));
    let error = "postgres://db/events?colour=blue"
        .parse::<PgUrl>()
        .unwrap_err();
    assert_eq!(error.parameter(), None);
}
