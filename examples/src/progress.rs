//! Student progress reports, after Garrett Heinlen's talk "Event Sourcing: Don't want to miss a
//! thing".
//!
//! A student works through a map of numbered lessons, each made of numbered activities, some of
//! which are scored quizzes. A student's current state (lesson 6, activity 2, say) is a
//! [`StudentProgress`], a fold over four events:
//!
//! - [`StudentPlaced`]: the student starts at a lesson and activity;
//! - [`ActivityCompleted`]: the current activity is done (with the quiz's name and score when it
//!   was a quiz), so the student moves to the next activity;
//! - [`LessonCompleted`]: the current lesson is done, so the student moves to the next lesson's
//!   first activity;
//! - [`ProgressReset`]: a teacher moved the student back (a manual reset), an event that
//!   undoes earlier ones without erasing them.
//!
//! Four commands decide them, strict enough that bad data is refused before it becomes an
//! event:
//!
//! - [`PlaceStudent`]: only once; placing again where the student stands is a no-op;
//! - [`CompleteActivity`]: only the activity the student stands at, in the current lesson;
//! - [`CompleteLesson`]: only the current lesson; an earlier lesson number is refused (going back
//!   is a [`ResetProgress`]) and so is a later one (lessons are not skipped);
//! - [`ResetProgress`]: only backwards; resetting to where the student stands is a no-op.
//!
//! Loading stays fast however long a student's history grows, thanks to snapshots:
//! [`StudentProgress`] is saved as JSON every [`SNAPSHOT_EVERY`] events
//! (`#[aggregate(snapshot = 1, snapshot_every = 50)]`) to a repository's snapshot store, which
//! then loads the latest snapshot and the events after it. The raw events stay, so the reports
//! ([`reports`]: the highest lesson, the last quiz, the growth per month) are folded from them,
//! resets included.
//!
//! ```
//! use eventsrc::{Aggregate, Handle};
//! use eventsrc_examples::progress::{
//!     CompleteActivity, CompleteLesson, PlaceStudent, Position, StudentId, StudentProgress,
//! };
//!
//! let student = StudentId(3202);
//! let mut progress = StudentProgress::default();
//! for event in progress.handle(&PlaceStudent { student, lesson: 6, activity: 1 })? {
//!     progress.apply(&event);
//! }
//! let first = CompleteActivity { student, lesson: 6, activity: 1, quiz: None, score: None };
//! for event in progress.handle(&first)? {
//!     progress.apply(&event);
//! }
//! assert_eq!(progress.position(), Some(Position::new(6, 2)));
//! for event in progress.handle(&CompleteLesson { student, lesson: 6 })? {
//!     progress.apply(&event);
//! }
//! assert_eq!(progress.position(), Some(Position::new(7, 1)));
//! // Lesson 6 is behind the student now: going back takes a `ResetProgress`.
//! assert!(progress.handle(&CompleteLesson { student, lesson: 6 }).is_err());
//! # Ok::<(), eventsrc_examples::progress::ProgressError>(())
//! ```

pub mod reports;

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

use eventsrc::{Decision, Event, ValidationError, aggregate, command};
use serde::{Deserialize, Serialize};

/// The highest lesson number a command may name.
pub const MAX_LESSON: u32 = 200;

/// The highest activity number a command may name.
pub const MAX_ACTIVITY: u32 = 20;

/// The best quiz score, in percent.
pub const MAX_SCORE: u8 = 100;

/// How often [`StudentProgress`] is snapshotted: whenever its stream version crosses a multiple
/// of this (the `snapshot_every` of its `#[aggregate]`, which must be a literal).
pub const SNAPSHOT_EVERY: u64 = 50;

/// A student's id (`3202` in the demo); the student's stream is `student-3202`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StudentId(pub u64);

impl fmt::Display for StudentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id part of a stream name, `3202` in `student-3202`.
impl FromStr for StudentId {
    type Err = ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Where a student stands on the map: a lesson and an activity in it, both from 1.
///
/// Positions order by lesson, then activity, so `a < b` means `a` comes before `b` on the map.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Position {
    /// The lesson.
    pub lesson: u32,
    /// The activity within the lesson.
    pub activity: u32,
}

impl Position {
    /// Activity `activity` of lesson `lesson`.
    pub const fn new(lesson: u32, activity: u32) -> Self {
        Self { lesson, activity }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lesson {}, activity {}", self.lesson, self.activity)
    }
}

/// A quiz's name and the score the student got, in percent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuizScore {
    /// The quiz.
    pub name: String,
    /// The score, 0 to [`MAX_SCORE`].
    pub score: u8,
}

/// The student was placed on the map: `{"lesson":6,"activity":1}`.
///
/// Stored as `student.placed`; rows stored under the camelCase name `placeStudent` read as
/// well.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "student.placed", aliases = ["placeStudent"])]
pub struct StudentPlaced {
    /// The lesson the student starts at.
    pub lesson: u32,
    /// The activity the student starts at.
    pub activity: u32,
}

/// The student completed an activity: `{"lesson":6,"activity":1}`, and for a quiz
/// `{"lesson":6,"activity":3,"quiz":{"name":"Fractions","score":80}}`.
///
/// Stored as `student.activity_completed`; rows stored under the camelCase name
/// `activityCompleted` read as well.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "student.activity_completed", aliases = ["activityCompleted"])]
pub struct ActivityCompleted {
    /// The lesson.
    pub lesson: u32,
    /// The activity completed.
    pub activity: u32,
    /// The quiz and its score, when the activity was a quiz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiz: Option<QuizScore>,
}

/// The student completed a lesson: `{"lesson":6}`.
///
/// Stored as `student.lesson_completed`; rows stored under the camelCase name `lessonCompleted`
/// read as well.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "student.lesson_completed", aliases = ["lessonCompleted"])]
pub struct LessonCompleted {
    /// The lesson completed.
    pub lesson: u32,
}

/// The student was moved back to an earlier position: `{"lesson":3,"activity":1}`. The events
/// before it stay: it undoes them for the student's position, not for the reports.
///
/// Stored as `student.progress_reset`; rows stored under the camelCase name `resetProgress`
/// read as well.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "student.progress_reset", aliases = ["resetProgress"])]
pub struct ProgressReset {
    /// The lesson the student goes back to.
    pub lesson: u32,
    /// The activity the student goes back to.
    pub activity: u32,
}

/// A student's progress: where the student stands, kept current by applying the student's events,
/// and snapshotted as JSON every [`SNAPSHOT_EVERY`] events.
///
/// `StudentProgress::default()` is a student not placed yet; [`PlaceStudent`] places them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StudentProgress {
    position: Option<Position>,
    activities_completed: u32,
    lessons_completed: u32,
    resets: u32,
}

#[aggregate(
    id = StudentId,
    error = ProgressError,
    name = "student",
    snapshot = 1,
    snapshot_every = 50
)]
impl StudentProgress {
    fn on_student_placed(&mut self, event: &StudentPlaced) {
        self.position = Some(Position::new(event.lesson, event.activity));
    }

    fn on_activity_completed(&mut self, event: &ActivityCompleted) {
        let next = event.activity.saturating_add(1);
        self.position = Some(Position::new(event.lesson, next));
        self.activities_completed = self.activities_completed.saturating_add(1);
    }

    fn on_lesson_completed(&mut self, event: &LessonCompleted) {
        self.position = Some(Position::new(event.lesson.saturating_add(1), 1));
        self.lessons_completed = self.lessons_completed.saturating_add(1);
    }

    fn on_progress_reset(&mut self, event: &ProgressReset) {
        self.position = Some(Position::new(event.lesson, event.activity));
        self.resets = self.resets.saturating_add(1);
    }
}

impl StudentProgress {
    /// Where the student stands, once placed.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// Whether the student has been placed.
    pub fn is_placed(&self) -> bool {
        self.position.is_some()
    }

    /// Activities completed, over the student's whole history (resets do not lower it).
    pub fn activities_completed(&self) -> u32 {
        self.activities_completed
    }

    /// Lessons completed, over the student's whole history (resets do not lower it).
    pub fn lessons_completed(&self) -> u32 {
        self.lessons_completed
    }

    /// How many times the student was moved back.
    pub fn resets(&self) -> u32 {
        self.resets
    }

    fn placed(&self) -> Result<Position, ProgressError> {
        self.position.ok_or(ProgressError::NotPlaced)
    }

    /// The student's current lesson, if `lesson` is it.
    fn in_lesson(&self, lesson: u32) -> Result<Position, ProgressError> {
        let at = self.placed()?;
        let (current, requested) = (at.lesson, lesson);
        if requested < current {
            Err(ProgressError::LessonBehind { current, requested })
        } else if requested > current {
            Err(ProgressError::LessonAhead { current, requested })
        } else {
            Ok(at)
        }
    }
}

/// Why a student's progress refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgressError {
    /// A command other than `PlaceStudent` for a student not placed yet.
    #[error("the student is not placed yet: send `PlaceStudent` first")]
    NotPlaced,
    /// `PlaceStudent` for a student placed elsewhere.
    #[error("the student is already placed, at {at}: send `ResetProgress` to move them back")]
    AlreadyPlaced {
        /// Where the student stands.
        at: Position,
    },
    /// A lesson number behind the student's current lesson.
    #[error(
        "lesson {requested} is behind the student's lesson {current}: send `ResetProgress` to go back"
    )]
    LessonBehind {
        /// The student's lesson.
        current: u32,
        /// The lesson the command named.
        requested: u32,
    },
    /// A lesson number ahead of the student's current lesson.
    #[error(
        "lesson {requested} is ahead of the student's lesson {current}: lessons are completed in order"
    )]
    LessonAhead {
        /// The student's lesson.
        current: u32,
        /// The lesson the command named.
        requested: u32,
    },
    /// `CompleteActivity` of another activity than the student's current one.
    #[error("the student is at {current}, not {requested}: activities are completed in order")]
    NotCurrentActivity {
        /// Where the student stands.
        current: Position,
        /// The activity the command named.
        requested: Position,
    },
    /// `ResetProgress` to a position ahead of the student's.
    #[error("a reset goes back, and {requested} is ahead of the student's {current}")]
    ResetAhead {
        /// Where the student stands.
        current: Position,
        /// The position the command named.
        requested: Position,
    },
}

/// Places a student on the map, at a lesson and activity.
#[command(aggregate = StudentProgress, handler = StudentProgress::place)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceStudent {
    /// The student.
    #[id]
    pub student: StudentId,
    /// The lesson to start at: 1 to [`MAX_LESSON`].
    #[validate(range(min = 1, max = MAX_LESSON))]
    pub lesson: u32,
    /// The activity to start at: 1 to [`MAX_ACTIVITY`].
    #[validate(range(min = 1, max = MAX_ACTIVITY))]
    pub activity: u32,
}

/// Records that the student completed their current activity; a quiz carries its name and score.
#[command(
    aggregate = StudentProgress,
    handler = StudentProgress::complete_activity,
    validate = quiz_and_score_together
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteActivity {
    /// The student.
    #[id]
    pub student: StudentId,
    /// The student's current lesson: 1 to [`MAX_LESSON`].
    #[validate(range(min = 1, max = MAX_LESSON))]
    pub lesson: u32,
    /// The student's current activity: 1 to [`MAX_ACTIVITY`].
    #[validate(range(min = 1, max = MAX_ACTIVITY))]
    pub activity: u32,
    /// The quiz's name, when the activity is a quiz: not blank; surrounding whitespace is dropped.
    #[validate(with = not_blank, message = "must not be blank")]
    pub quiz: Option<String>,
    /// The quiz's score in percent, 0 to [`MAX_SCORE`]: given exactly when `quiz` is.
    #[validate(range(max = MAX_SCORE))]
    pub score: Option<u8>,
}

/// `quiz`, when given, holds more than whitespace.
fn not_blank(quiz: &Option<String>) -> bool {
    quiz.as_deref().is_none_or(|name| !name.trim().is_empty())
}

/// Only quizzes are scored, and every quiz is.
fn quiz_and_score_together(command: &CompleteActivity, errors: &mut ValidationError) {
    match (&command.quiz, command.score) {
        (Some(_), None) => errors.push("score", "is required for a quiz"),
        (None, Some(_)) => errors.push("score", "is only given for a quiz"),
        (Some(_), Some(_)) | (None, None) => {}
    }
}

/// Records that the student completed their current lesson.
#[command(aggregate = StudentProgress, handler = StudentProgress::complete_lesson)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteLesson {
    /// The student.
    #[id]
    pub student: StudentId,
    /// The student's current lesson: 1 to [`MAX_LESSON`].
    #[validate(range(min = 1, max = MAX_LESSON))]
    pub lesson: u32,
}

/// Moves the student back to an earlier position (a teacher's manual reset).
#[command(aggregate = StudentProgress, handler = StudentProgress::reset)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetProgress {
    /// The student.
    #[id]
    pub student: StudentId,
    /// The lesson to go back to: 1 to [`MAX_LESSON`].
    #[validate(range(min = 1, max = MAX_LESSON))]
    pub lesson: u32,
    /// The activity to go back to: 1 to [`MAX_ACTIVITY`].
    #[validate(range(min = 1, max = MAX_ACTIVITY))]
    pub activity: u32,
}

// The commands' handlers: state in, events out, no I/O.
impl StudentProgress {
    fn place(&self, command: &PlaceStudent) -> Decision<Self> {
        let requested = Position::new(command.lesson, command.activity);
        match self.position {
            None => {
                let (lesson, activity) = (requested.lesson, requested.activity);
                Ok(vec![StudentPlaced { lesson, activity }.into()])
            }
            Some(at) if at == requested => Ok(vec![]),
            Some(at) => Err(ProgressError::AlreadyPlaced { at }),
        }
    }

    fn complete_activity(&self, command: &CompleteActivity) -> Decision<Self> {
        let current = self.in_lesson(command.lesson)?;
        let requested = Position::new(command.lesson, command.activity);
        if requested != current {
            return Err(ProgressError::NotCurrentActivity { current, requested });
        }
        let quiz = command
            .quiz
            .as_deref()
            .zip(command.score)
            .map(|(name, score)| QuizScore {
                name: name.trim().to_owned(),
                score,
            });
        let (lesson, activity) = (requested.lesson, requested.activity);
        Ok(vec![
            ActivityCompleted {
                lesson,
                activity,
                quiz,
            }
            .into(),
        ])
    }

    fn complete_lesson(&self, command: &CompleteLesson) -> Decision<Self> {
        let lesson = self.in_lesson(command.lesson)?.lesson;
        Ok(vec![LessonCompleted { lesson }.into()])
    }

    fn reset(&self, command: &ResetProgress) -> Decision<Self> {
        let current = self.placed()?;
        let requested = Position::new(command.lesson, command.activity);
        if requested == current {
            Ok(vec![])
        } else if requested > current {
            Err(ProgressError::ResetAhead { current, requested })
        } else {
            let (lesson, activity) = (requested.lesson, requested.activity);
            Ok(vec![ProgressReset { lesson, activity }.into()])
        }
    }
}
