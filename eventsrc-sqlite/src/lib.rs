//! eventsrc-sqlite (in progress).
