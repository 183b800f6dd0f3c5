#![doc = include_str!("../README.md")]

mod aggregate;
mod diff;
mod events;
mod eventually;

pub use aggregate::{AggregateFixture, EventPredicate, Then};
pub use events::{assert_round_trip, assert_upcasts};
pub use eventually::eventually;
