use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::fmt::temporal::Pieces;
use serde::{Deserialize, Serialize};

/// A UTC instant with microsecond precision (what PostgreSQL's `timestamptz` keeps).
///
/// Shown in RFC 3339 form, and read back from it with [`str::parse`]; it converts to and from
/// `jiff::Timestamp` for calendar arithmetic:
///
/// ```
/// use eventsrc::Timestamp;
///
/// let t = Timestamp::from_micros(1_700_000_000_123_456);
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456Z");
/// assert_eq!("2023-11-14T22:13:20.123456Z".parse::<Timestamp>()?, t);
///
/// let day = jiff::Timestamp::try_from(t)?.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
/// assert_eq!(day, jiff::civil::date(2023, 11, 14));
/// # Ok::<(), eventsrc::InvalidTimestamp>(())
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

/// Microseconds in 400 Gregorian years (146,097 days). The calendar repeats after that many
/// years, so an instant moved by whole cycles keeps its month, day and time of day.
const CYCLE_MICROS: i64 = 146_097 * 86_400 * 1_000_000;

/// The first and last instants that RFC 3339 text (as [`Timestamp`] reads and writes it) can
/// name in UTC: -9999-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
const FIRST_TEXT_MICROS: i64 = -377_705_116_800_000_000;
const LAST_TEXT_MICROS: i64 = 253_402_300_799_999_999;

/// `micros` as a `jiff::Timestamp`, when it lies in jiff's range.
fn to_jiff(micros: i64) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_microsecond(micros).ok()
}

/// `instant` in whole microseconds since the Unix epoch, rounded towards the past (jiff keeps
/// nanoseconds; its whole range fits in an `i64` of microseconds).
fn micros_of(instant: jiff::Timestamp) -> i64 {
    let micros = instant.as_nanosecond().div_euclid(1_000);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// The UTC calendar date and time of `micros`: the date and time of day as jiff computes them,
/// and the number of 400-year cycles to add to the year. jiff's timestamps span the years
/// -9999 to 9999 (less a day at each end); an instant outside them is moved into 1970..2370 by
/// whole cycles first.
fn civil_of(micros: i64) -> (jiff::civil::DateTime, i64) {
    let (cycles, instant) = match to_jiff(micros) {
        Some(instant) => (0, instant),
        // The remainder lies in [0, one cycle), which jiff always holds.
        None => (
            micros.div_euclid(CYCLE_MICROS),
            to_jiff(micros.rem_euclid(CYCLE_MICROS)).unwrap_or_default(),
        ),
    };
    (jiff::tz::Offset::UTC.to_datetime(instant), cycles)
}

/// Writes the instant in RFC 3339 form, in UTC with six fractional digits:
/// `2024-02-29T12:00:00.000000Z`.
///
/// Years outside 0000 to 9999 are written with a sign and six digits, as ISO 8601's expanded
/// form (and jiff) does: `-000001-06-01T00:00:00.000000Z`. [`FromStr`] reads back every instant
/// of the years -9999 to 9999; later or earlier ones (reachable only through saturating
/// arithmetic, such as `Timestamp::from_micros(i64::MAX)`) are written the same way but refused
/// when parsed.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (datetime, cycles) = civil_of(self.0);
        let year = i64::from(datetime.year()) + 400 * cycles;
        if (0..=9999).contains(&year) {
            write!(f, "{year:04}")?;
        } else {
            write!(f, "{year:+07}")?;
        }
        write!(
            f,
            "-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            datetime.month(),
            datetime.day(),
            datetime.hour(),
            datetime.minute(),
            datetime.second(),
            datetime.subsec_nanosecond() / 1_000
        )
    }
}

/// Text that is not an RFC 3339 timestamp [`Timestamp`] can hold, or a [`Timestamp`] that
/// `jiff::Timestamp` cannot hold.
///
/// ```
/// use eventsrc::{InvalidTimestamp, Timestamp};
///
/// let error = "2024-02-29 noon".parse::<Timestamp>().unwrap_err();
/// assert!(matches!(error, InvalidTimestamp::Malformed { .. }));
/// assert!(error.to_string().starts_with("invalid timestamp `2024-02-29 noon`: "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidTimestamp {
    /// Not RFC 3339 text, or a date or time of day that does not exist (`2023-02-29`).
    #[error(
        "invalid timestamp `{value}`: {reason}; write RFC 3339 with a UTC offset, e.g. \
         `2024-02-29T12:00:00Z` or `2024-02-29T13:00:00.250+01:00`"
    )]
    Malformed {
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Fractional seconds finer than a microsecond, which a [`Timestamp`] cannot keep.
    #[error(
        "invalid timestamp `{value}`: it has digits below the microsecond, which a `Timestamp` \
         would lose; write at most six fractional digits"
    )]
    BelowMicrosecond {
        /// The rejected text.
        value: String,
    },
    /// An instant outside the range of the target: the years -9999 to 9999 in UTC for text,
    /// `jiff::Timestamp::MIN..=MAX` for a conversion to jiff.
    #[error("invalid timestamp `{value}`: it lies outside {range}; write an instant within it")]
    OutOfRange {
        /// The rejected text, or the instant in the form [`Timestamp`]'s `Display` writes.
        value: String,
        /// The range it missed.
        range: &'static str,
    },
}

impl InvalidTimestamp {
    /// The rejected text (or instant).
    pub fn value(&self) -> &str {
        match self {
            Self::Malformed { value, .. }
            | Self::BelowMicrosecond { value }
            | Self::OutOfRange { value, .. } => value,
        }
    }
}

/// Reads an RFC 3339 timestamp: a date, a time of day and a UTC offset (`Z` or `±hh:mm`), with
/// up to six fractional digits (more are accepted when they are zeros).
///
/// The parser is jiff's, so the ISO 8601 and RFC 9557 forms it takes are read too: a lowercase
/// `t` or `z`, a space between date and time, minutes without seconds, an offset without
/// minutes, a trailing `[time zone]` annotation (ignored: the offset decides). Text without an
/// offset is refused, since it does not name one instant.
///
/// ```
/// use eventsrc::Timestamp;
///
/// let t: Timestamp = "2023-11-14T23:13:20.123456+01:00".parse()?;
/// assert_eq!(t, Timestamp::from_micros(1_700_000_000_123_456));
/// assert_eq!(t.to_string().parse::<Timestamp>()?, t);
/// assert!("2023-11-14T23:13:20".parse::<Timestamp>().is_err());
/// # Ok::<(), eventsrc::InvalidTimestamp>(())
/// ```
impl FromStr for Timestamp {
    type Err = InvalidTimestamp;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = |reason: String| InvalidTimestamp::Malformed {
            value: text.to_owned(),
            reason,
        };
        let pieces = Pieces::parse(text).map_err(|error| malformed(error.to_string()))?;
        let time = pieces
            .time()
            .ok_or_else(|| malformed("it has no time of day".to_owned()))?;
        let offset = pieces
            .to_numeric_offset()
            .ok_or_else(|| malformed("it has no UTC offset (`Z` or `+hh:mm`)".to_owned()))?;
        let date = pieces.date();
        if time.subsec_nanosecond() % 1_000 != 0 {
            return Err(InvalidTimestamp::BelowMicrosecond {
                value: text.to_owned(),
            });
        }
        // jiff's civil dates span the years -9999 to 9999, its timestamps a day less at each
        // end. Move the date by whole 400-year cycles to near 1970, where every offset fits,
        // then move the instant back by as many cycles.
        let cycles = (i64::from(date.year()) - 1970).div_euclid(400);
        let near = i16::try_from(i64::from(date.year()) - 400 * cycles)
            .ok()
            .and_then(|year| jiff::civil::Date::new(year, date.month(), date.day()).ok())
            .and_then(|near| offset.to_timestamp(near.to_datetime(time)).ok())
            .ok_or_else(|| malformed("its date is outside jiff's calendar".to_owned()))?;
        let micros = micros_of(near) + cycles * CYCLE_MICROS;
        if !(FIRST_TEXT_MICROS..=LAST_TEXT_MICROS).contains(&micros) {
            return Err(InvalidTimestamp::OutOfRange {
                value: text.to_owned(),
                range: "the years -9999 to 9999 in UTC",
            });
        }
        Ok(Self(micros))
    }
}

/// The same instant, rounded towards the past to a whole microsecond (jiff keeps nanoseconds).
///
/// ```
/// use eventsrc::Timestamp;
///
/// let instant = jiff::Timestamp::new(1_700_000_000, 123_456_789)?;
/// assert_eq!(Timestamp::from(instant), Timestamp::from_micros(1_700_000_000_123_456));
/// # Ok::<(), jiff::Error>(())
/// ```
impl From<jiff::Timestamp> for Timestamp {
    fn from(instant: jiff::Timestamp) -> Self {
        Self(micros_of(instant))
    }
}

/// The same instant; an error outside `jiff::Timestamp::MIN..=MAX` (about the years -9999 to
/// 9999), which saturating arithmetic can reach.
///
/// ```
/// use eventsrc::{InvalidTimestamp, Timestamp};
///
/// let t = Timestamp::from_micros(1_700_000_000_123_456);
/// assert_eq!(jiff::Timestamp::try_from(t)?.to_string(), "2023-11-14T22:13:20.123456Z");
/// assert!(jiff::Timestamp::try_from(Timestamp::from_micros(i64::MAX)).is_err());
/// # Ok::<(), InvalidTimestamp>(())
/// ```
impl TryFrom<Timestamp> for jiff::Timestamp {
    type Error = InvalidTimestamp;

    fn try_from(time: Timestamp) -> Result<Self, Self::Error> {
        to_jiff(time.0).ok_or_else(|| InvalidTimestamp::OutOfRange {
            value: time.to_string(),
            range: "the range of `jiff::Timestamp`",
        })
    }
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
    fn formats_instants_beyond_the_years_of_rfc_3339_without_panicking() {
        assert_eq!(
            Timestamp::from_micros(-62_185_708_800_000_000).to_string(),
            "-000001-06-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_micros(LAST_TEXT_MICROS).to_string(),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            Timestamp::from_micros(LAST_TEXT_MICROS + 1).to_string(),
            "+010000-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_micros(i64::MAX).to_string(),
            "+294247-01-10T04:00:54.775807Z"
        );
        assert_eq!(
            Timestamp::from_micros(i64::MIN).to_string(),
            "-290308-12-21T19:59:05.224192Z"
        );
    }

    fn parse(text: &str) -> Result<Timestamp, InvalidTimestamp> {
        text.parse()
    }

    #[test]
    fn parses_utc_and_offsets_to_the_same_instant() {
        let noon = Timestamp::from_micros(1_709_208_000_000_000); // 2024-02-29T12:00:00Z
        for text in [
            "2024-02-29T12:00:00Z",
            "2024-02-29T12:00:00.000000Z",
            "2024-02-29T12:00:00+00:00",
            "2024-02-29T12:00:00-00:00",
            "2024-02-29T13:00:00+01:00",
            "2024-02-29T06:30:00-05:30",
            "2024-03-01T01:45:00+13:45",
            "2024-02-29t12:00:00z",
            "2024-02-29 12:00:00Z",
            "2024-02-29T13:00:00+01:00[Europe/Paris]",
        ] {
            assert_eq!(parse(text), Ok(noon), "{text}");
        }
    }

    #[test]
    fn parses_fractional_seconds_down_to_the_microsecond() {
        let at = |micros: i64| Ok(Timestamp::from_micros(1_709_208_000_000_000 + micros));
        assert_eq!(parse("2024-02-29T12:00:00.5Z"), at(500_000));
        assert_eq!(parse("2024-02-29T12:00:00.25Z"), at(250_000));
        assert_eq!(parse("2024-02-29T12:00:00.000001Z"), at(1));
        assert_eq!(parse("2024-02-29T12:00:00,123456Z"), at(123_456));
        assert_eq!(parse("2024-02-29T12:00:00.123456000Z"), at(123_456));
        assert_eq!(
            parse("1969-12-31T23:59:59.999999Z"),
            Ok(Timestamp::from_micros(-1))
        );
        assert_eq!(
            parse("2024-02-29T12:00:00.1234567Z"),
            Err(InvalidTimestamp::BelowMicrosecond {
                value: "2024-02-29T12:00:00.1234567Z".to_owned()
            })
        );
    }

    #[test]
    fn display_then_parse_gives_the_same_instant() {
        let step = CYCLE_MICROS / 7 + 123_457;
        let mut micros = FIRST_TEXT_MICROS;
        let mut checked = 0;
        while micros <= LAST_TEXT_MICROS {
            let time = Timestamp::from_micros(micros);
            assert_eq!(parse(&time.to_string()), Ok(time), "{time}");
            micros += step;
            checked += 1;
        }
        assert!(checked > 100);
        for micros in [
            FIRST_TEXT_MICROS,
            FIRST_TEXT_MICROS + 1,
            -1,
            0,
            1,
            1_709_208_000_123_456,
            LAST_TEXT_MICROS - 1,
            LAST_TEXT_MICROS,
        ] {
            let time = Timestamp::from_micros(micros);
            assert_eq!(parse(&time.to_string()), Ok(time), "{time}");
        }
    }

    #[test]
    fn instants_beyond_the_years_of_text_are_out_of_range() {
        for text in ["9999-12-31T23:59:59-00:01", "-009999-01-01T00:00:00+00:01"] {
            let error = parse(text).unwrap_err();
            assert!(
                matches!(&error, InvalidTimestamp::OutOfRange { value, .. } if value == text),
                "{error:?}"
            );
        }
        // The extremes of the years are in range, with any offset that keeps them there.
        assert_eq!(
            parse("9999-12-31T23:59:59.999999Z"),
            Ok(Timestamp::from_micros(LAST_TEXT_MICROS))
        );
        assert_eq!(
            parse("-009999-01-01T01:00:00+01:00"),
            Ok(Timestamp::from_micros(FIRST_TEXT_MICROS))
        );
        // What Display writes for the instant after the last one is refused, not misread.
        let after = Timestamp::from_micros(LAST_TEXT_MICROS + 1).to_string();
        assert!(parse(&after).is_err());
        let beyond = Timestamp::from_micros(i64::MAX).to_string();
        assert!(parse(&beyond).is_err());
    }

    #[test]
    fn bad_text_is_a_typed_error_naming_the_input() {
        for (text, says) in [
            ("", "year"),
            ("yesterday", "year"),
            ("2024-02-29", "no time of day"),
            ("2024-02-29T12:00:00", "no UTC offset"),
            ("2023-02-29T12:00:00Z", "day"),
            ("2024-13-01T12:00:00Z", "month"),
            ("2024-02-29T24:00:01Z", "hour"),
            ("2024-02-29T12:00:00+26:00", "offset"),
            ("29/02/2024 12:00", "year"),
            ("2024-02-29T12:00:00Z trailing", "trailing"),
        ] {
            let error = parse(text).unwrap_err();
            let InvalidTimestamp::Malformed { value, reason } = &error else {
                panic!("{text:?} gave {error:?}");
            };
            assert_eq!(value, text);
            assert!(reason.contains(says), "{text:?}: {reason}");
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("invalid timestamp `{text}`: ")),
                "{message}"
            );
            assert!(message.contains("e.g. `2024-02-29T12:00:00Z`"), "{message}");
        }
    }

    #[test]
    fn converts_to_and_from_jiff() {
        for micros in [0, -1, 1_709_208_000_123_456, -62_185_708_800_000_001] {
            let time = Timestamp::from_micros(micros);
            let instant = jiff::Timestamp::try_from(time).unwrap();
            assert_eq!(instant.as_nanosecond(), i128::from(micros) * 1_000);
            assert_eq!(Timestamp::from(instant), time);
        }
        // Nanoseconds round towards the past, also before the epoch.
        let before = jiff::Timestamp::from_nanosecond(-500).unwrap();
        assert_eq!(Timestamp::from(before), Timestamp::from_micros(-1));
        let after = jiff::Timestamp::from_nanosecond(1_999).unwrap();
        assert_eq!(Timestamp::from(after), Timestamp::from_micros(1));
        // jiff's own extremes fit; beyond them is an error naming the instant.
        for instant in [jiff::Timestamp::MIN, jiff::Timestamp::MAX] {
            let time = Timestamp::from(instant);
            assert_eq!(
                micros_of(jiff::Timestamp::try_from(time).unwrap()),
                time.as_micros()
            );
        }
        let error = jiff::Timestamp::try_from(Timestamp::from_micros(i64::MAX)).unwrap_err();
        assert_eq!(
            error,
            InvalidTimestamp::OutOfRange {
                value: "+294247-01-10T04:00:54.775807Z".to_owned(),
                range: "the range of `jiff::Timestamp`",
            }
        );
        assert_eq!(error.value(), "+294247-01-10T04:00:54.775807Z");
    }

    #[test]
    fn converts_to_and_from_system_time() {
        let t = Timestamp::from_micros(1_234_567_890_123_456);
        assert_eq!(Timestamp::from(SystemTime::from(t)), t);
        let before = Timestamp::from_micros(-5_000_000);
        assert_eq!(Timestamp::from(SystemTime::from(before)), before);
    }
}
