//! The reports, as [`Projection`]s folded from every student's events in global order:
//!
//! - [`HighestLessons`]: "What's the highest lesson a kid has done?";
//! - [`LastQuizzes`]: "What's the last quiz a kid has taken?";
//! - [`MonthlyGrowth`]: "What's the average growth of lessons in a month?".
//!
//! None of them can be read off the students' current state: a reset moves a student back to
//! lesson 3 and forgets that they had done lesson 6, while the events keep it. Each report reads
//! [`StudentProgressEvent`]s, finds the student from the record's stream (`student-3202`), and
//! is idempotent, so an at-least-once runner may feed an event twice.
//!
//! ```
//! use eventsrc::Projection;
//! use eventsrc::{Event, EventStore, MemoryStore, Metadata, GlobalPosition, Repository};
//! use eventsrc::store::ReadAll;
//! use eventsrc_examples::progress::reports::HighestLessons;
//! use eventsrc_examples::progress::{CompleteLesson, PlaceStudent, ResetProgress, StudentId};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = MemoryStore::new();
//! let repository = Repository::new(store.clone());
//! let student = StudentId(3202);
//! repository.send(PlaceStudent { student, lesson: 6, activity: 1 }, Metadata::new()).await?;
//! repository.send(CompleteLesson { student, lesson: 6 }, Metadata::new()).await?;
//! repository.send(ResetProgress { student, lesson: 3, activity: 1 }, Metadata::new()).await?;
//!
//! let mut highest = HighestLessons::default();
//! for record in store.read_all(ReadAll::after(GlobalPosition::START)).await? {
//!     highest.apply(record.decode()?, &record)?;
//! }
//! assert_eq!(highest.completed(student), Some(6)); // the reset did not undo it
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use jiff::tz::TimeZone;

use eventsrc::Projection;
use eventsrc::{Aggregate, GlobalPosition, RecordedEvent, StreamId, StreamVersion, Timestamp};

use super::{Position, StudentId, StudentProgress, StudentProgressEvent};

/// A record a report cannot attribute to a student.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The record's stream is not `student-<number>`.
    #[error("`{stream}` is not a student's stream: expected `student-<number>`")]
    NotAStudent {
        /// The record's stream.
        stream: StreamId,
    },
}

/// The student whose stream `record` belongs to.
fn student_of(record: &RecordedEvent) -> Result<StudentId, ReportError> {
    let stream = &record.stream;
    match stream.id().parse() {
        Ok(student) if stream.category() == StudentProgress::TYPE => Ok(student),
        _ => Err(ReportError::NotAStudent {
            stream: stream.clone(),
        }),
    }
}

// --- the highest lesson --------------------------------------------------------------------------

/// The highest lessons one student got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighestLesson {
    /// The highest lesson the student ever stood at: placed at, worked in, or moved on to by
    /// completing the one before.
    pub reached: u32,
    /// The highest lesson the student completed, if any.
    pub completed: Option<u32>,
}

/// "What's the highest lesson a kid has done?": per student, the highest lesson reached and the
/// highest completed. Resets never lower them. Idempotent, as a maximum is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HighestLessons {
    students: BTreeMap<StudentId, HighestLesson>,
}

impl HighestLessons {
    /// The report with no students.
    pub fn new() -> Self {
        Self::default()
    }

    /// The student's highest lessons, once placed.
    pub fn of(&self, student: StudentId) -> Option<HighestLesson> {
        self.students.get(&student).copied()
    }

    /// The highest lesson the student ever stood at.
    pub fn reached(&self, student: StudentId) -> Option<u32> {
        self.of(student).map(|highest| highest.reached)
    }

    /// The highest lesson the student completed.
    pub fn completed(&self, student: StudentId) -> Option<u32> {
        self.of(student).and_then(|highest| highest.completed)
    }

    /// Every student's highest lessons, by student id.
    pub fn iter(&self) -> impl Iterator<Item = (StudentId, HighestLesson)> + '_ {
        self.students.iter().map(|(id, highest)| (*id, *highest))
    }
}

impl Projection for HighestLessons {
    const NAME: &'static str = "student_highest_lessons";
    type Event = StudentProgressEvent;
    type Error = ReportError;

    fn apply(&mut self, event: Self::Event, record: &RecordedEvent) -> Result<(), Self::Error> {
        let student = student_of(record)?;
        let (reached, completed) = match event {
            StudentProgressEvent::StudentPlaced(placed) => (placed.lesson, None),
            StudentProgressEvent::ActivityCompleted(done) => (done.lesson, None),
            StudentProgressEvent::LessonCompleted(done) => {
                (done.lesson.saturating_add(1), Some(done.lesson))
            }
            StudentProgressEvent::ProgressReset(reset) => (reset.lesson, None),
        };
        let highest = self.students.entry(student).or_insert(HighestLesson {
            reached,
            completed: None,
        });
        highest.reached = highest.reached.max(reached);
        // `None` orders before any `Some`, so this keeps the highest completed lesson.
        highest.completed = highest.completed.max(completed);
        Ok(())
    }
}

// --- the last quiz -------------------------------------------------------------------------------

/// A quiz a student took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuizTaken {
    /// The quiz.
    pub name: String,
    /// The score, in percent.
    pub score: u8,
    /// Where on the map the quiz was.
    pub position: Position,
    /// When it was recorded.
    pub taken_at: Timestamp,
}

/// "What's the last quiz a kid has taken?": per student, the quiz recorded last. Idempotent: an
/// event at or before the kept quiz's global position does not replace it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LastQuizzes {
    students: BTreeMap<StudentId, (GlobalPosition, QuizTaken)>,
}

impl LastQuizzes {
    /// The report with no quizzes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last quiz the student took, if any.
    pub fn last(&self, student: StudentId) -> Option<&QuizTaken> {
        self.students.get(&student).map(|(_, quiz)| quiz)
    }

    /// Every student's last quiz, by student id.
    pub fn iter(&self) -> impl Iterator<Item = (StudentId, &QuizTaken)> + '_ {
        self.students.iter().map(|(id, (_, quiz))| (*id, quiz))
    }
}

impl Projection for LastQuizzes {
    const NAME: &'static str = "student_last_quizzes";
    type Event = StudentProgressEvent;
    type Error = ReportError;

    fn apply(&mut self, event: Self::Event, record: &RecordedEvent) -> Result<(), Self::Error> {
        let student = student_of(record)?;
        let StudentProgressEvent::ActivityCompleted(done) = event else {
            return Ok(());
        };
        let Some(quiz) = done.quiz else {
            return Ok(());
        };
        let at = record.global_position;
        if self
            .students
            .get(&student)
            .is_some_and(|(kept, _)| *kept >= at)
        {
            return Ok(());
        }
        let taken = QuizTaken {
            name: quiz.name,
            score: quiz.score,
            position: Position::new(done.lesson, done.activity),
            taken_at: record.recorded_at,
        };
        self.students.insert(student, (at, taken));
        Ok(())
    }
}

// --- growth per month ----------------------------------------------------------------------------

/// A calendar month in UTC, such as `2018-09`.
///
/// ```
/// use eventsrc::Timestamp;
/// use eventsrc_examples::progress::reports::YearMonth;
///
/// let september = YearMonth::new(2018, 9).expect("a month from 1 to 12");
/// assert_eq!(september.to_string(), "2018-09");
/// assert_eq!(september.start().to_string(), "2018-09-01T00:00:00.000000Z");
/// assert_eq!(YearMonth::of(Timestamp::from_micros(1_536_137_400_000_000)), september);
/// assert_eq!(september.next().to_string(), "2018-10");
/// ```
///
/// The months of jiff's calendar, -9999-01 to 9999-12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YearMonth {
    /// The month's first day.
    first: jiff::civil::Date,
}

impl YearMonth {
    /// `month` (1 to 12) of `year` (-9999 to 9999); `None` for another month or year.
    pub fn new(year: i32, month: u8) -> Option<Self> {
        let year = i16::try_from(year).ok()?;
        let month = i8::try_from(month).ok()?;
        let first = jiff::civil::Date::new(year, month, 1).ok()?;
        Some(Self { first })
    }

    /// The month `time` falls in, in UTC. An instant beyond jiff's range (the years -9999 to
    /// 9999), which only saturating arithmetic reaches, counts in the first or last month.
    pub fn of(time: Timestamp) -> Self {
        let instant = jiff::Timestamp::try_from(time).unwrap_or(if time < Timestamp::UNIX_EPOCH {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        let date = instant.to_zoned_datetime(TimeZone::UTC).date();
        Self {
            first: date.first_of_month(),
        }
    }

    /// The year.
    pub fn year(self) -> i32 {
        i32::from(self.first.year())
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.first.month().unsigned_abs()
    }

    /// The month's first instant: midnight UTC on its first day (for -9999-01, which starts
    /// before jiff's first instant, that instant).
    pub fn start(self) -> Timestamp {
        let start = self.first.to_zoned_datetime(TimeZone::UTC);
        Timestamp::from(start.map_or(jiff::Timestamp::MIN, |start| start.timestamp()))
    }

    /// The month after this one; 9999-12, the calendar's last, is its own next.
    pub fn next(self) -> Self {
        let next = self.first.last_of_month().tomorrow();
        Self {
            first: next.unwrap_or(self.first),
        }
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// One month of [`MonthlyGrowth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonthGrowth {
    /// Students with at least one event recorded in the month.
    pub active_students: u32,
    /// Lessons those students completed in the month.
    pub lessons_completed: u32,
}

impl MonthGrowth {
    /// The month's average growth: lessons completed per active student (0 with none).
    pub fn average(&self) -> f64 {
        if self.active_students == 0 {
            0.0
        } else {
            f64::from(self.lessons_completed) / f64::from(self.active_students)
        }
    }
}

/// "What's the average growth of lessons in a month?"
///
/// The rule: a student's *growth* in a calendar month (UTC, from each record's `recorded_at`) is
/// the number of lessons they completed in it; resets do not subtract, since the lessons were
/// done. A student is *active* in a month when any of their events is recorded in it (a
/// placement, an activity, a lesson or a reset), so an active student who completed no lesson
/// counts with a growth of 0. A month's average growth is its lessons completed divided by its
/// active students; the overall [`average`](MonthlyGrowth::average) divides every month's
/// lessons by every month's active students (the average over student-months).
///
/// Idempotent: a record at or below the latest stream version applied for its student is
/// skipped, since a runner feeds each stream's events in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonthlyGrowth {
    /// Lessons completed per active student, per month.
    months: BTreeMap<YearMonth, BTreeMap<StudentId, u32>>,
    /// The latest stream version applied, per student.
    applied: BTreeMap<StudentId, StreamVersion>,
}

impl MonthlyGrowth {
    /// The report with no months.
    pub fn new() -> Self {
        Self::default()
    }

    /// The growth in `month`, if any student was active in it.
    pub fn month(&self, month: YearMonth) -> Option<MonthGrowth> {
        self.months.get(&month).map(growth)
    }

    /// Every month with an active student, in calendar order.
    pub fn months(&self) -> impl Iterator<Item = (YearMonth, MonthGrowth)> + '_ {
        self.months
            .iter()
            .map(|(month, students)| (*month, growth(students)))
    }

    /// Lessons `student` completed in `month`.
    pub fn lessons(&self, student: StudentId, month: YearMonth) -> u32 {
        let students = self.months.get(&month);
        students
            .and_then(|students| students.get(&student))
            .copied()
            .unwrap_or(0)
    }

    /// The average growth over every month: lessons completed per active student-month; `None`
    /// before any event.
    pub fn average(&self) -> Option<f64> {
        let total = self
            .months()
            .fold(MonthGrowth::default(), |total, (_, month)| MonthGrowth {
                active_students: total.active_students.saturating_add(month.active_students),
                lessons_completed: total
                    .lessons_completed
                    .saturating_add(month.lessons_completed),
            });
        (total.active_students > 0).then(|| total.average())
    }
}

fn growth(students: &BTreeMap<StudentId, u32>) -> MonthGrowth {
    MonthGrowth {
        active_students: u32::try_from(students.len()).unwrap_or(u32::MAX),
        lessons_completed: students
            .values()
            .fold(0, |total, lessons| total.saturating_add(*lessons)),
    }
}

impl Projection for MonthlyGrowth {
    const NAME: &'static str = "student_monthly_growth";
    type Event = StudentProgressEvent;
    type Error = ReportError;

    fn apply(&mut self, event: Self::Event, record: &RecordedEvent) -> Result<(), Self::Error> {
        let student = student_of(record)?;
        let version = record.stream_version;
        if self.applied.get(&student).is_some_and(|v| *v >= version) {
            return Ok(());
        }
        self.applied.insert(student, version);
        let month = YearMonth::of(record.recorded_at);
        let lessons = self
            .months
            .entry(month)
            .or_default()
            .entry(student)
            .or_default();
        if let StudentProgressEvent::LessonCompleted(_) = event {
            *lessons = lessons.saturating_add(1);
        }
        Ok(())
    }
}
