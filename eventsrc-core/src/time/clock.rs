use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A UTC instant with microsecond precision (what PostgreSQL's `timestamptz` keeps).
///
/// Shown in RFC 3339 form:
///
/// ```
/// use eventsrc::Timestamp;
/// let t = Timestamp::from_micros(1_700_000_000_123_456);
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456Z");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Self = Self(0);

    /// The current time from the system clock.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The time from `earlier` to this instant; zero when `earlier` is later.
    pub fn since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0).unsigned_abs())
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Self;
    /// This instant moved forward by `duration` (saturating).
    fn add(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Self;
    /// This instant moved back by `duration` (saturating).
    fn sub(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(micros))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let micros = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
        };
        Self(micros)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(time: Timestamp) -> Self {
        let magnitude = Duration::from_micros(time.0.unsigned_abs());
        if time.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let (days, secs_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z"
        )
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day), by counting whole
/// 400-year eras (146,097 days each) and then years inside the era, with years starting on
/// 1 March so that the leap day falls at the end.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Where a store and a repository read the time. Tests swap in a [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use eventsrc::time::{Clock, ManualClock};
/// use eventsrc::Timestamp;
///
/// let clock = ManualClock::new(Timestamp::from_micros(0));
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now(), Timestamp::from_micros(2_000_000));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.as_micros())))
    }

    /// Moves the clock to `time`.
    pub fn set(&self, time: Timestamp) {
        self.0.store(time.as_micros(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&self, duration: Duration) {
        self.set(self.now() + duration);
    }

    /// The clock's current time (the same as [`Clock::now`], without importing the trait).
    pub fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        ManualClock::now(self)
    }
}

thread_local! {
    static DECISION_TIME: std::cell::Cell<Option<Timestamp>> = const { std::cell::Cell::new(None) };
}

/// The current time as a command handler should see it.
///
/// Handlers are pure, so they should not read the system clock directly: a repository runs
/// every decision inside [`at_time`] with its own [`Clock`]'s time, and the testing fixtures pin
/// it (`given_time`, `when_time_elapses`). Outside a decision it is the system time.
///
/// ```
/// use eventsrc::time::{at_time, now};
/// use eventsrc::Timestamp;
///
/// let noon = Timestamp::from_micros(1_700_000_000_000_000);
/// assert_eq!(at_time(noon, now), noon);
/// assert_ne!(now(), noon);
/// ```
pub fn now() -> Timestamp {
    DECISION_TIME
        .with(std::cell::Cell::get)
        .unwrap_or_else(Timestamp::now)
}

/// Runs `decide` with [`now`] pinned to `time` on this thread, restoring the previous value
/// afterwards (also when `decide` panics).
pub fn at_time<R>(time: Timestamp, decide: impl FnOnce() -> R) -> R {
    struct Restore(Option<Timestamp>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DECISION_TIME.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(DECISION_TIME.with(|cell| cell.replace(Some(time))));
    decide()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        // 2024-02-29T12:00:00Z, a leap day.
        assert_eq!(
            Timestamp::from_micros(1_709_208_000_000_000).to_string(),
            "2024-02-29T12:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_micros(-1).to_string(),
            "1969-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn converts_to_and_from_system_time() {
        let t = Timestamp::from_micros(1_234_567_890_123_456);
        assert_eq!(Timestamp::from(SystemTime::from(t)), t);
        let before = Timestamp::from_micros(-5_000_000);
        assert_eq!(Timestamp::from(SystemTime::from(before)), before);
    }
}
