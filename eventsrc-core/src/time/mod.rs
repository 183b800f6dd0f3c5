//! Timestamps and the clock a store reads them from.

pub(crate) mod clock;

pub use self::clock::{Clock, ManualClock, SystemClock, at_time, now};
