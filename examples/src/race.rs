//! A second writer on demand, to show what happens when two commands race: the demo uses
//! [`RacingStore`] from `eventsrc-testing`, which wraps any store and appends queued events
//! right before this handle's next append.

pub use eventsrc_testing::RacingStore;
