//! The counter domain of the write-side tests: an aggregate summing what it is counted by,
//! one event type, and one command.

use eventsrc::{Decision, Event, StreamId, aggregate, command};
use serde::{Deserialize, Serialize};

/// The test event: the counter went up by `by`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct Counted {
    pub by: u32,
}

/// The test aggregate: the sum of its events.
#[derive(Default, Debug, PartialEq)]
pub(crate) struct Counter {
    pub total: u32,
}

#[aggregate(id = u32)]
impl Counter {
    fn on_counted(&mut self, event: &Counted) {
        self.total += event.by;
    }
}

/// Counts counter `counter` up by `by`.
#[command(aggregate = Counter, handler = Counter::count)]
pub(crate) struct Count {
    #[id]
    pub counter: u32,
    pub by: u32,
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
