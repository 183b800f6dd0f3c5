#![doc = include_str!("../README.md")]

mod aggregate;
#[cfg(feature = "conformance")]
pub mod conformance;
mod decision;
mod diff;
mod events;
mod eventually;
mod race;
mod readside;
mod recorder;
mod runner;
pub mod switch;

pub use aggregate::{AggregateFixture, EventPredicate, Then};
pub use decision::{DecisionFixture, DecisionThen};
pub use events::{assert_round_trip, assert_stored_as, assert_upcasts};
pub use eventually::eventually;
pub use race::RacingStore;
pub use readside::{ProjectionFixture, ProjectionWhen, ReactorFixture, ReactorThen};
pub use recorder::MetricsRecorder;
pub use runner::RunnerFixture;
