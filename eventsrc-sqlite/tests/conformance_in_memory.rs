//! The whole backend conformance suite on an in-memory SQLite database, where every read goes
//! through the writer's connection.

use eventsrc_sqlite::SqliteEventStore;

eventsrc_testing::event_store_conformance!(|| async {
    SqliteEventStore::open_in_memory()
        .await
        .expect("an in-memory SQLite database")
});
