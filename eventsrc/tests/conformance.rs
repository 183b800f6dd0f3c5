//! The in-memory store runs the whole backend conformance suite of `eventsrc-testing`.

eventsrc_testing::event_store_conformance!(|| async { eventsrc::MemoryStore::new() });
