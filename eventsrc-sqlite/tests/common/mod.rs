//! What several SQLite test binaries share: a counter domain (one event type, one command)
//! and a temporary directory for a database file.

// Each test binary uses a different part of this module.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use eventsrc::{Decision, Event, Metadata, NewEvent, StreamId, aggregate, command};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct Counted {
    pub(crate) by: u32,
}

#[derive(Default, Debug, PartialEq)]
pub(crate) struct Counter {
    pub(crate) total: u32,
}

#[aggregate(id = u32)]
impl Counter {
    fn on_counted(&mut self, event: &Counted) {
        self.total += event.by;
    }
}

#[command(aggregate = Counter, handler = Counter::count)]
pub(crate) struct Count {
    #[id]
    pub(crate) counter: u32,
    pub(crate) by: u32,
}

impl Counter {
    fn count(&self, command: &Count) -> Decision<Self> {
        Ok(vec![Counted { by: command.by }.into()])
    }
}

/// The stream of counter `id`.
pub(crate) fn stream(id: u32) -> StreamId {
    StreamId::new("counter", id).unwrap()
}

/// A `Counted` event by `by`, with an actor in its metadata.
pub(crate) fn counted(by: u32) -> NewEvent {
    NewEvent::from_event(&Counted { by }, Metadata::new().with_actor("ada")).unwrap()
}

/// A fresh directory per test, removed when the test ends.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "eventsrc-sqlite-{name}-{}",
            eventsrc::EventId::new()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The database file inside it.
    pub(crate) fn file(&self) -> PathBuf {
        self.0.join("events.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
