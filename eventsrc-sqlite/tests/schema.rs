//! A schema managed outside the store: `migrate(false)` refuses a database whose schema is not
//! this build's and changes nothing; the DDL of `schema::ddl` makes the very database that
//! migrating makes; `SqliteEventStore::migrate` says what it did.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{TempDir, counted, stream};
use eventsrc::store::ReadStream;
use eventsrc::{EventStore, ExpectedVersion};
use eventsrc_sqlite::rusqlite::Connection;
use eventsrc_sqlite::{OpenError, SCHEMA_VERSION, SqliteEventStore, SqliteOptions, schema};

fn unmigrated() -> SqliteOptions {
    SqliteOptions::default().migrate(false)
}

/// An object of a database, as `sqlite_master` lists it: its type, name, table and SQL.
type Object = (String, String, String, Option<String>);

/// Every object of the database and its `user_version`.
fn listing(path: &Path) -> (Vec<Object>, u32) {
    let conn = Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let objects = statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let version = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    (objects, version)
}

/// Runs `sql` in one transaction on the database at `path`, as a DBA would.
fn apply(path: &Path, sql: &str) {
    Connection::open(path)
        .unwrap()
        .execute_batch(&format!("BEGIN;\n{sql}\nCOMMIT;"))
        .unwrap();
}

/// Appends an event and reads it back.
async fn round_trip(store: &SqliteEventStore) {
    let stream = stream(1);
    store
        .append(&stream, ExpectedVersion::NoStream, vec![counted(2)])
        .await
        .unwrap();
    let events = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(&*events[0].event_type, "Counted");
}

#[tokio::test]
async fn opening_a_missing_file_without_migrating_is_refused_and_creates_nothing() {
    let dir = TempDir::new("schema-missing");
    match SqliteEventStore::open_with(dir.file(), unmigrated()).await {
        Err(error @ OpenError::SchemaNotCurrent { found: 0, expected }) => {
            assert_eq!(expected, SCHEMA_VERSION);
            let message = error.to_string();
            for says in [
                "no eventsrc schema",
                "eventsrc migrate --store",
                "eventsrc schema",
            ] {
                assert!(message.contains(says), "{message}");
            }
        }
        other => panic!("expected SchemaNotCurrent, got {other:?}"),
    }
    let left: Vec<_> = std::fs::read_dir(dir.file().parent().unwrap())
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn opening_an_empty_database_without_migrating_is_refused_and_changes_nothing() {
    let dir = TempDir::new("schema-empty");
    // An empty database, as a DBA creates one, in rollback-journal mode.
    Connection::open(dir.file())
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (x INTEGER)")
        .unwrap();
    let before = std::fs::read(dir.file()).unwrap();
    assert!(matches!(
        SqliteEventStore::open_with(dir.file(), unmigrated()).await,
        Err(OpenError::SchemaNotCurrent { found: 0, .. })
    ));
    assert_eq!(
        std::fs::read(dir.file()).unwrap(),
        before,
        "the file changed"
    );
    let journal = Connection::open(dir.file())
        .unwrap()
        .pragma_query_value(None, "journal_mode", |row| row.get::<_, String>(0))
        .unwrap();
    assert_eq!(journal, "delete", "the journal mode changed");
}

#[tokio::test]
async fn an_in_memory_database_without_migrating_has_no_schema() {
    assert!(matches!(
        SqliteEventStore::open_in_memory_with(unmigrated()).await,
        Err(OpenError::SchemaNotCurrent { found: 0, .. })
    ));
}

#[tokio::test]
async fn the_ddl_applied_by_hand_opens_without_migrating_and_round_trips() {
    let dir = TempDir::new("schema-ddl");
    apply(&dir.file(), &schema::ddl());
    let store = SqliteEventStore::open_with(dir.file(), unmigrated())
        .await
        .unwrap();
    round_trip(&store).await;
    drop(store);
    // Migrating it is a no-op: the DDL recorded the version.
    let migrated = SqliteEventStore::migrate(dir.file()).await.unwrap();
    assert_eq!(
        (migrated.from, migrated.to),
        (SCHEMA_VERSION, SCHEMA_VERSION)
    );
    assert!(!migrated.changed());
}

#[tokio::test]
async fn the_ddl_makes_the_database_migrating_from_nothing_makes() {
    let dir = TempDir::new("schema-same");
    let by_hand = dir.file().with_file_name("by-hand.db");
    apply(&by_hand, &schema::ddl());
    let migrated = SqliteEventStore::migrate(dir.file()).await.unwrap();
    assert_eq!((migrated.from, migrated.to), (0, SCHEMA_VERSION));
    assert_eq!(
        migrated.to_string(),
        format!("created the schema at version {SCHEMA_VERSION}")
    );

    let (made, version) = listing(&by_hand);
    assert_eq!(version, SCHEMA_VERSION);
    assert!(
        made.iter()
            .any(|(kind, name, ..)| kind == "table" && name == "events")
    );
    assert_eq!(listing(&dir.file()), (made.clone(), version));
    // And so does opening a new file, which migrates.
    let opened = dir.file().with_file_name("opened.db");
    drop(SqliteEventStore::open(&opened).await.unwrap());
    assert_eq!(listing(&opened), (made, version));
}

#[tokio::test]
async fn an_older_schema_is_refused_without_migrating_until_migrated_explicitly() {
    let dir = TempDir::new("schema-older");
    apply(&dir.file(), &schema::ddl_up_to(1));
    match SqliteEventStore::open_with(dir.file(), unmigrated()).await {
        Err(error @ OpenError::SchemaNotCurrent { found: 1, expected }) => {
            assert_eq!(expected, SCHEMA_VERSION);
            let message = error.to_string();
            assert!(message.contains("schema version 1"), "{message}");
            assert!(message.contains("eventsrc migrate --store"), "{message}");
        }
        other => panic!("expected SchemaNotCurrent, got {other:?}"),
    }
    assert_eq!(listing(&dir.file()).1, 1, "refusing changed the version");

    let migrated = SqliteEventStore::migrate(dir.file()).await.unwrap();
    assert_eq!((migrated.from, migrated.to), (1, SCHEMA_VERSION));
    assert!(migrated.changed());
    assert_eq!(
        migrated.to_string(),
        format!("migrated the schema from version 1 to version {SCHEMA_VERSION}")
    );
    let store = SqliteEventStore::open_with(dir.file(), unmigrated())
        .await
        .unwrap();
    round_trip(&store).await;
}

#[tokio::test]
async fn a_newer_schema_is_the_newer_schema_error_whether_or_not_opening_migrates() {
    let dir = TempDir::new("schema-newer");
    apply(&dir.file(), &schema::ddl());
    Connection::open(dir.file())
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    for options in [SqliteOptions::default(), unmigrated()] {
        match SqliteEventStore::open_with(dir.file(), options).await {
            Err(OpenError::NewerSchema { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
    }
    assert!(matches!(
        SqliteEventStore::migrate(dir.file()).await,
        Err(OpenError::NewerSchema { .. })
    ));
}

#[test]
fn migrate_on_a_connection_says_what_it_did() {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(&schema::ddl_up_to(2)).unwrap();
    let migrated = schema::migrate(&mut conn).unwrap();
    assert_eq!((migrated.from, migrated.to), (2, SCHEMA_VERSION));
    let again = schema::migrate(&mut conn).unwrap();
    assert_eq!((again.from, again.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    assert_eq!(
        again.to_string(),
        format!("the schema is at version {SCHEMA_VERSION} already")
    );
}
