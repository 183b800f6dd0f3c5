//! The whole backend conformance suite on a SQLite file (WAL, reader connections, the writer
//! thread), deleted when each test's store is dropped.

use eventsrc_sqlite::SqliteEventStore;

eventsrc_testing::event_store_conformance!(|| async {
    SqliteEventStore::open_temporary()
        .await
        .expect("a temporary SQLite database")
});
