//! Specs for student progress: given events, when a command, then events, a no-op, a refusal or a
//! validation failure, for every command (with `eventsrc-testing`'s `AggregateFixture`, which also
//! checks that every event round-trips and that the state rebuilt from the events equals the
//! deciding state); the stored form of each event, rows under the camelCase names included; the
//! three reports (with `ProjectionFixture`, replaying batches to prove them idempotent) and the
//! calendar months they count in; and loading a student through a snapshot store, which must give
//! the state of every event.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eventsrc::Projection;

use eventsrc::Store;
use eventsrc::backend::decode_for;
use eventsrc::store::ReadAll;
use eventsrc::store::Snapshot;
use eventsrc::{
    Aggregate, AggregateCommand, Command, Event, EventStore, EventType, ExecuteError,
    GlobalPosition, Handle, MemoryStore, Metadata, Repository, SnapshotStore, StreamVersion,
    Timestamp,
};
use eventsrc_examples::progress::reports::{
    HighestLesson, HighestLessons, LastQuizzes, MonthGrowth, MonthlyGrowth, QuizTaken, YearMonth,
};
use eventsrc_examples::progress::{
    ActivityCompleted, CompleteActivity, CompleteLesson, LessonCompleted, MAX_ACTIVITY, MAX_LESSON,
    MAX_SCORE, PlaceStudent, Position, ProgressError, ProgressReset, QuizScore, ResetProgress,
    SNAPSHOT_EVERY, StudentId, StudentPlaced, StudentProgress, StudentProgressEvent,
};
use eventsrc_testing::{AggregateFixture, ProjectionFixture, assert_round_trip, assert_upcasts};

const KID: StudentId = StudentId(3202);

/// A spec for student 3202, not placed until given events.
fn student() -> AggregateFixture<StudentProgress> {
    AggregateFixture::new()
}

fn placed(lesson: u32, activity: u32) -> StudentProgressEvent {
    StudentPlaced { lesson, activity }.into()
}

fn done(lesson: u32, activity: u32) -> StudentProgressEvent {
    ActivityCompleted {
        lesson,
        activity,
        quiz: None,
    }
    .into()
}

fn quiz_done(lesson: u32, activity: u32, name: &str, score: u8) -> StudentProgressEvent {
    let quiz = Some(QuizScore {
        name: name.into(),
        score,
    });
    ActivityCompleted {
        lesson,
        activity,
        quiz,
    }
    .into()
}

fn lesson_done(lesson: u32) -> StudentProgressEvent {
    LessonCompleted { lesson }.into()
}

fn was_reset(lesson: u32, activity: u32) -> StudentProgressEvent {
    ProgressReset { lesson, activity }.into()
}

fn place(lesson: u32, activity: u32) -> PlaceStudent {
    PlaceStudent {
        student: KID,
        lesson,
        activity,
    }
}

fn activity(lesson: u32, activity: u32) -> CompleteActivity {
    CompleteActivity {
        student: KID,
        lesson,
        activity,
        quiz: None,
        score: None,
    }
}

fn quiz(lesson: u32, activity: u32, name: &str, score: u8) -> CompleteActivity {
    CompleteActivity {
        quiz: Some(name.into()),
        score: Some(score),
        ..self::activity(lesson, activity)
    }
}

fn lesson(lesson: u32) -> CompleteLesson {
    CompleteLesson {
        student: KID,
        lesson,
    }
}

fn reset(lesson: u32, activity: u32) -> ResetProgress {
    ResetProgress {
        student: KID,
        lesson,
        activity,
    }
}

fn at(lesson: u32, activity: u32) -> Option<Position> {
    Some(Position::new(lesson, activity))
}

/// Student 3202's first lessons: placed at lesson 6, two activities, the lesson, a reset to 3.
fn first_lessons() -> Vec<StudentProgressEvent> {
    vec![
        placed(6, 1),
        done(6, 1),
        done(6, 2),
        lesson_done(6),
        was_reset(3, 1),
    ]
}

// --- the fold ------------------------------------------------------------------------------------

/// The first lessons, command by command, each with the position after it; then lesson 3 is
/// finished, which puts the student at lesson 4, activity 1.
#[test]
fn progress_is_a_fold_over_the_students_events() {
    student()
        .given_nothing()
        .when(place(6, 1))
        .then_events([placed(6, 1)])
        .then_state(|s| assert_eq!(s.position(), at(6, 1)))
        .when(activity(6, 1))
        .then_events([done(6, 1)])
        .then_state(|s| assert_eq!(s.position(), at(6, 2)))
        .when(activity(6, 2))
        .then_events([done(6, 2)])
        .then_state(|s| assert_eq!(s.position(), at(6, 3)))
        .when(lesson(6))
        .then_events([lesson_done(6)])
        .then_state(|s| assert_eq!(s.position(), at(7, 1)))
        .when(reset(3, 1))
        .then_events([was_reset(3, 1)])
        .then_state(|s| assert_eq!(s.position(), at(3, 1)))
        .when(lesson(3))
        .then_events([lesson_done(3)])
        .then_state(|s| {
            assert_eq!(s.position(), at(4, 1));
            assert_eq!(
                (s.activities_completed(), s.lessons_completed(), s.resets()),
                (2, 2, 1)
            );
        });
}

#[test]
fn commands_for_a_student_not_placed_are_refused() {
    student()
        .given_nothing()
        .when(activity(1, 1))
        .then_error(ProgressError::NotPlaced)
        .when(lesson(1))
        .then_error(ProgressError::NotPlaced)
        .when(reset(1, 1))
        .then_error(ProgressError::NotPlaced)
        .then_error_message("the student is not placed yet: send `PlaceStudent` first")
        .then_state(|s| assert!(!s.is_placed()));
}

// --- PlaceStudent --------------------------------------------------------------------------------

#[test]
fn placing_records_the_position() {
    student()
        .given_nothing()
        .when(place(6, 1))
        .then_events([placed(6, 1)])
        .then_state(|s| {
            assert!(s.is_placed());
            assert_eq!(s.position(), at(6, 1));
            assert_eq!((s.activities_completed(), s.lessons_completed()), (0, 0));
        });
}

#[test]
fn placing_again_is_a_noop_where_the_student_stands_and_refused_elsewhere() {
    student()
        .given([placed(6, 1)])
        .when(place(6, 1))
        .then_no_events()
        .when(place(1, 1))
        .then_error(ProgressError::AlreadyPlaced {
            at: Position::new(6, 1),
        })
        .then_error_message(
            "the student is already placed, at lesson 6, activity 1: send `ResetProgress` to \
             move them back",
        );
    // Where the student stands now, not where they were placed.
    student()
        .given([placed(6, 1), done(6, 1)])
        .when(place(6, 1))
        .then_error(ProgressError::AlreadyPlaced {
            at: Position::new(6, 2),
        });
}

#[test]
fn place_student_validates_every_field() {
    student()
        .given_nothing()
        .when(place(0, 0))
        .then_invalid(&["lesson", "activity"])
        .when(place(MAX_LESSON + 1, 1))
        .then_invalid(&["lesson"])
        .when(place(1, MAX_ACTIVITY + 1))
        .then_invalid(&["activity"])
        // The bounds are the constants.
        .when(place(MAX_LESSON, MAX_ACTIVITY))
        .then_events([placed(MAX_LESSON, MAX_ACTIVITY)]);
    assert_eq!(
        place(0, 0).validate().unwrap_err().to_string(),
        "invalid command: `lesson` must be between 1 and 200; `activity` must be between 1 and 20"
    );
}

// --- CompleteActivity ----------------------------------------------------------------------------

#[test]
fn completing_a_quiz_records_its_trimmed_name_and_score() {
    student()
        .given([placed(6, 1), done(6, 1)])
        .when(quiz(6, 2, "  Fractions ", 80))
        .then_events([quiz_done(6, 2, "Fractions", 80)])
        .then_state(|s| assert_eq!(s.position(), at(6, 3)))
        .when(quiz(6, 3, "Decimals", 0))
        .then_events([quiz_done(6, 3, "Decimals", 0)])
        .when(quiz(6, 4, "Percentages", MAX_SCORE))
        .then_events([quiz_done(6, 4, "Percentages", MAX_SCORE)]);
}

#[test]
fn activities_are_completed_in_order() {
    let current = Position::new(6, 2);
    student()
        .given([placed(6, 1), done(6, 1)])
        .when(activity(6, 3))
        .then_error(ProgressError::NotCurrentActivity {
            current,
            requested: Position::new(6, 3),
        })
        .then_error_message(
            "the student is at lesson 6, activity 2, not lesson 6, activity 3: activities are \
             completed in order",
        )
        // Completing the one just completed again: refused as well, not a silent no-op.
        .when(activity(6, 1))
        .then_error(ProgressError::NotCurrentActivity {
            current,
            requested: Position::new(6, 1),
        })
        .when(activity(6, 2))
        .then_events([done(6, 2)]);
}

#[test]
fn an_activity_of_another_lesson_is_refused() {
    student()
        .given([placed(6, 1)])
        .when(activity(5, 1))
        .then_error(ProgressError::LessonBehind {
            current: 6,
            requested: 5,
        })
        .when(activity(7, 1))
        .then_error(ProgressError::LessonAhead {
            current: 6,
            requested: 7,
        });
}

#[test]
fn complete_activity_validates_its_fields_and_that_quizzes_are_scored() {
    let blank_quiz = CompleteActivity {
        quiz: Some(" ".into()),
        score: Some(50),
        ..activity(6, 1)
    };
    let unscored_quiz = CompleteActivity {
        quiz: Some("Fractions".into()),
        ..activity(6, 1)
    };
    let scored_activity = CompleteActivity {
        score: Some(50),
        ..activity(6, 1)
    };
    student()
        .given([placed(6, 1)])
        .when(activity(0, 0))
        .then_invalid(&["lesson", "activity"])
        .when(activity(MAX_LESSON + 1, MAX_ACTIVITY + 1))
        .then_invalid(&["lesson", "activity"])
        .when(quiz(6, 1, "Fractions", MAX_SCORE + 1))
        .then_invalid(&["score"])
        .when(blank_quiz.clone())
        .then_invalid(&["quiz"])
        .when(unscored_quiz.clone())
        .then_invalid(&["score"])
        .when(scored_activity.clone())
        .then_invalid(&["score"]);
    let message = |command: &CompleteActivity| command.validate().unwrap_err().to_string();
    assert_eq!(
        message(&blank_quiz),
        "invalid command: `quiz` must not be blank"
    );
    assert_eq!(
        message(&unscored_quiz),
        "invalid command: `score` is required for a quiz"
    );
    assert_eq!(
        message(&scored_activity),
        "invalid command: `score` is only given for a quiz"
    );
    assert_eq!(
        message(&quiz(6, 1, "Fractions", 101)),
        "invalid command: `score` must be at most 100"
    );
}

// --- CompleteLesson ------------------------------------------------------------------------------

#[test]
fn completing_the_current_lesson_moves_to_the_next_ones_first_activity() {
    student()
        .given([placed(6, 1), done(6, 1), done(6, 2)])
        .when(lesson(6))
        .then_events([lesson_done(6)])
        .then_state(|s| {
            assert_eq!(s.position(), at(7, 1));
            assert_eq!(s.lessons_completed(), 1);
        });
}

#[test]
fn lesson_numbers_do_not_go_backwards_without_a_reset() {
    student()
        .given([placed(6, 1), done(6, 1), lesson_done(6)])
        .when(lesson(6))
        .then_error(ProgressError::LessonBehind {
            current: 7,
            requested: 6,
        })
        .then_error_message(
            "lesson 6 is behind the student's lesson 7: send `ResetProgress` to go back",
        )
        .when(lesson(9))
        .then_error(ProgressError::LessonAhead {
            current: 7,
            requested: 9,
        })
        .then_error_message(
            "lesson 9 is ahead of the student's lesson 7: lessons are completed in order",
        )
        .when(reset(6, 1))
        .then_events([was_reset(6, 1)])
        .when(lesson(6))
        .then_events([lesson_done(6)])
        .then_state(|s| assert_eq!(s.lessons_completed(), 2));
}

#[test]
fn complete_lesson_validates_the_lesson() {
    student()
        .given([placed(6, 1)])
        .when(lesson(0))
        .then_invalid(&["lesson"])
        .when(lesson(MAX_LESSON + 1))
        .then_invalid(&["lesson"]);
}

// --- ResetProgress -------------------------------------------------------------------------------

#[test]
fn a_reset_moves_the_student_back_and_keeps_the_history() {
    student()
        .given([placed(6, 1), done(6, 1), done(6, 2), lesson_done(6)])
        .when(reset(3, 1))
        .then_events([was_reset(3, 1)])
        .then_state(|s| {
            assert_eq!(s.position(), at(3, 1));
            assert_eq!(s.resets(), 1);
            // The work stays done: a reset is a new event, not an erased one.
            assert_eq!((s.activities_completed(), s.lessons_completed()), (2, 1));
        })
        // Back within the same lesson too.
        .when(activity(3, 1))
        .then_events([done(3, 1)])
        .when(reset(3, 1))
        .then_events([was_reset(3, 1)]);
}

#[test]
fn a_reset_to_where_the_student_stands_is_a_noop_and_one_ahead_is_refused() {
    student()
        .given(first_lessons())
        .when(reset(3, 1))
        .then_no_events()
        .when(reset(3, 2))
        .then_error(ProgressError::ResetAhead {
            current: Position::new(3, 1),
            requested: Position::new(3, 2),
        })
        .when(reset(9, 1))
        .then_error(ProgressError::ResetAhead {
            current: Position::new(3, 1),
            requested: Position::new(9, 1),
        })
        .then_error_message(
            "a reset goes back, and lesson 9, activity 1 is ahead of the student's lesson 3, \
             activity 1",
        );
}

#[test]
fn reset_progress_validates_every_field() {
    student()
        .given(first_lessons())
        .when(reset(0, 0))
        .then_invalid(&["lesson", "activity"])
        .when(reset(1, MAX_ACTIVITY + 1))
        .then_invalid(&["activity"]);
}

// --- the stored form -----------------------------------------------------------------------------

#[test]
fn the_event_registry_knows_every_student_event() {
    eventsrc::registry::check().unwrap();
    let registered: Vec<(&str, u32, &[&str])> = eventsrc::registry::events()
        .into_iter()
        .filter(|event| event.aggregates == [StudentProgress::TYPE])
        .map(|event| (event.name, event.version, event.aliases))
        .collect();
    assert_eq!(
        registered,
        [
            ("student.activity_completed", 1, &["activityCompleted"][..]),
            ("student.lesson_completed", 1, &["lessonCompleted"][..]),
            ("student.placed", 1, &["placeStudent"][..]),
            ("student.progress_reset", 1, &["resetProgress"][..]),
        ]
    );
    assert_eq!(StudentProgress::TYPE, "student");
    assert_eq!(
        StudentProgress::stream_id(&KID).unwrap().as_str(),
        "student-3202"
    );
    assert_eq!(place(6, 1).aggregate_id(), &KID);
}

#[test]
fn every_event_round_trips_under_its_own_name() {
    let stored = [
        (
            placed(6, 1),
            "student.placed",
            r#"{"lesson":6,"activity":1}"#,
        ),
        (
            done(6, 1),
            "student.activity_completed",
            r#"{"lesson":6,"activity":1}"#,
        ),
        (
            quiz_done(6, 2, "Fractions", 80),
            "student.activity_completed",
            r#"{"lesson":6,"activity":2,"quiz":{"name":"Fractions","score":80}}"#,
        ),
        (
            lesson_done(6),
            "student.lesson_completed",
            r#"{"lesson":6}"#,
        ),
        (
            was_reset(3, 1),
            "student.progress_reset",
            r#"{"lesson":3,"activity":1}"#,
        ),
    ];
    for (event, name, payload) in stored {
        assert_eq!((event.event_type(), event.schema_version()), (name, 1));
        assert_eq!(event.encode().unwrap(), payload);
        assert_round_trip(&event);
    }
    assert_eq!(
        <LessonCompleted as EventType>::NAME,
        "student.lesson_completed"
    );
    assert!(StudentProgressEvent::decode("LessonCompleted", 1, r#"{"lesson":6}"#).is_err());
    assert!(StudentProgressEvent::decode("student.placed", 1, r#"{"lesson":6}"#).is_err());
}

/// The first lessons as rows stored under the camelCase names (`placeStudent`, ...), row by row.
#[test]
fn rows_under_camel_case_names_read_as_the_students_events() {
    let rows = [
        (
            "placeStudent",
            r#"{ "lesson": 6, "activity": 1 }"#,
            placed(6, 1),
        ),
        (
            "activityCompleted",
            r#"{ "lesson": 6, "activity": 1 }"#,
            done(6, 1),
        ),
        (
            "activityCompleted",
            r#"{ "lesson": 6, "activity": 2 }"#,
            done(6, 2),
        ),
        ("lessonCompleted", r#"{ "lesson": 6 }"#, lesson_done(6)),
        (
            "resetProgress",
            r#"{ "lesson": 3, "activity": 1 }"#,
            was_reset(3, 1),
        ),
    ];
    let mut progress = StudentProgress::default();
    for (name, payload, expected) in rows {
        assert_upcasts(name, 1, payload, &expected);
        progress.apply(&StudentProgressEvent::decode(name, 1, payload).unwrap());
    }
    assert_eq!(progress.position(), at(3, 1));
    assert_upcasts(
        "placeStudent",
        1,
        r#"{"lesson":6,"activity":1}"#,
        &StudentPlaced {
            lesson: 6,
            activity: 1,
        },
    );
}

// --- the reports ---------------------------------------------------------------------------------

const KID_STREAM: &str = "student-3202";
const CLASSMATE: StudentId = StudentId(3203);
const CLASSMATE_STREAM: &str = "student-3203";

fn highest(reached: u32, completed: Option<u32>) -> Option<HighestLesson> {
    Some(HighestLesson { reached, completed })
}

#[test]
fn the_highest_lesson_done_survives_a_reset() {
    ProjectionFixture::new(HighestLessons::new())
        .given(KID_STREAM, first_lessons())
        .when(KID_STREAM, [done(3, 1), lesson_done(3)])
        .times(2)
        .then(|report| {
            // Back at lesson 4, but lesson 6 was done and lesson 7 reached.
            assert_eq!(report.of(KID), highest(7, Some(6)));
            assert_eq!(report.completed(KID), Some(6));
            assert_eq!(report.reached(KID), Some(7));
        });
}

#[test]
fn the_highest_lessons_are_kept_per_student() {
    ProjectionFixture::new(HighestLessons::new())
        .given(KID_STREAM, [placed(6, 1)])
        .when(CLASSMATE_STREAM, [placed(1, 1), done(1, 1), lesson_done(1)])
        .and(KID_STREAM, [done(6, 1)])
        .then(|report| {
            assert_eq!(report.of(KID), highest(6, None));
            assert_eq!(report.of(CLASSMATE), highest(2, Some(1)));
            assert_eq!(report.of(StudentId(1)), None);
            let students: Vec<StudentId> = report.iter().map(|(id, _)| id).collect();
            assert_eq!(students, [KID, CLASSMATE]);
        })
        .when(CLASSMATE_STREAM, [lesson_done(2), was_reset(1, 1)])
        .then(|report| assert_eq!(report.of(CLASSMATE), highest(3, Some(2))));
}

#[test]
fn the_last_quiz_is_the_latest_one_recorded() {
    let september = month(2018, 9).start();
    ProjectionFixture::new(LastQuizzes::new())
        .given_time(september)
        .given(KID_STREAM, [placed(6, 1), quiz_done(6, 1, "Fractions", 80)])
        .given_time(september + Duration::from_secs(3_600))
        .when(KID_STREAM, [quiz_done(6, 2, "Decimals", 65), done(6, 3)])
        .and(CLASSMATE_STREAM, [placed(1, 1)])
        .times(2)
        .then(|report| {
            let expected = QuizTaken {
                name: "Decimals".into(),
                score: 65,
                position: Position::new(6, 2),
                taken_at: september + Duration::from_secs(3_600),
            };
            assert_eq!(report.last(KID), Some(&expected));
            // A student who took no quiz has none.
            assert_eq!(report.last(CLASSMATE), None);
            assert_eq!(report.iter().count(), 1);
        })
        .when(CLASSMATE_STREAM, [quiz_done(1, 1, "Counting", 100)])
        .then(|report| {
            let names: Vec<(StudentId, &str)> =
                report.iter().map(|(id, q)| (id, q.name.as_str())).collect();
            assert_eq!(names, [(KID, "Decimals"), (CLASSMATE, "Counting")]);
        });
}

/// The rule: growth is lessons completed in a calendar month; the average is over the students
/// with any event that month.
#[test]
fn growth_per_month_averages_lessons_over_the_active_students() {
    let (september, october) = (month(2018, 9), month(2018, 10));
    let late_september = october.start() - Duration::from_secs(1);
    ProjectionFixture::new(MonthlyGrowth::new())
        .given_time(september.start())
        .given(KID_STREAM, [placed(6, 1), lesson_done(6)])
        .given_time(late_september)
        .given(KID_STREAM, [lesson_done(7), lesson_done(8)])
        .given(CLASSMATE_STREAM, [placed(1, 1), done(1, 1)])
        .given_time(october.start())
        .when(KID_STREAM, [lesson_done(9)])
        .and(CLASSMATE_STREAM, [lesson_done(1), was_reset(1, 1)])
        .times(2)
        .then(|report| {
            let in_september = MonthGrowth {
                active_students: 2,
                lessons_completed: 3,
            };
            assert_eq!(report.month(september), Some(in_september));
            assert_eq!(in_september.average(), 1.5);
            let in_october = MonthGrowth {
                active_students: 2,
                lessons_completed: 2,
            };
            assert_eq!(report.month(october), Some(in_october));
            assert_eq!(report.month(october.next()), None);
            assert_eq!(report.lessons(KID, september), 3);
            assert_eq!(report.lessons(CLASSMATE, september), 0);
            assert_eq!(report.lessons(CLASSMATE, october), 1);
            // 5 lessons over 4 active student-months.
            assert_eq!(report.average(), Some(1.25));
            let months: Vec<YearMonth> = report.months().map(|(m, _)| m).collect();
            assert_eq!(months, [september, october]);
        });
}

#[test]
fn growth_with_no_events_has_no_average() {
    let report = MonthlyGrowth::new();
    assert_eq!(report.average(), None);
    assert_eq!(report.months().count(), 0);
    assert_eq!(MonthGrowth::default().average(), 0.0);
}

#[test]
#[should_panic(expected = "`lead-3202` is not a student's stream")]
fn a_report_refuses_events_of_another_stream() {
    ProjectionFixture::new(HighestLessons::new()).given("lead-3202", [placed(6, 1)]);
}

fn month(year: i32, month: u8) -> YearMonth {
    YearMonth::new(year, month).unwrap()
}

#[test]
fn months_are_calendar_months_in_utc() {
    assert_eq!(YearMonth::new(2018, 0), None);
    assert_eq!(YearMonth::new(2018, 13), None);
    let cases = [
        (0, "1970-01"),
        (-1, "1969-12"),
        (1_536_137_400_000_000, "2018-09"), // 2018-09-05T08:50:00Z
        (1_709_208_000_000_000, "2024-02"), // 2024-02-29T12:00:00Z, a leap day
        (951_868_799_999_999, "2000-02"),   // 2000-02-29T23:59:59.999999Z
        (951_868_800_000_000, "2000-03"),
    ];
    for (micros, expected) in cases {
        let month = YearMonth::of(Timestamp::from_micros(micros));
        assert_eq!(month.to_string(), expected, "{micros}");
    }
    assert_eq!(month(1999, 12).next(), month(2000, 1));
    // Every month from 1600 to 2400, against eventsrc's own calendar (its timestamps' text):
    // it starts on its first day at midnight, and the microsecond before the next one is in it.
    let mut current = month(1600, 1);
    while current < month(2400, 1) {
        let start = current.start();
        assert_eq!(start.to_string(), format!("{current}-01T00:00:00.000000Z"));
        assert_eq!(YearMonth::of(start), current);
        let last = current.next().start() - Duration::from_micros(1);
        assert_eq!(YearMonth::of(last), current, "{last}");
        assert_eq!((current.year(), current.month()), {
            let text = current.to_string();
            (text[..4].parse().unwrap(), text[5..].parse().unwrap())
        });
        current = current.next();
    }
}

// --- snapshots and a repository ------------------------------------------------------------------

/// Sends the commands of `lessons` lessons of two activities each from lesson 1: 1 + 3 × `lessons`
/// events.
async fn work_through<S, N>(repository: &Repository<S, N>, lessons: u32)
where
    S: EventStore,
    N: SnapshotStore,
{
    let md = Metadata::new;
    repository.send(place(1, 1), md()).await.unwrap();
    for number in 1..=lessons {
        repository.send(activity(number, 1), md()).await.unwrap();
        let score = u8::try_from(number % 101).unwrap();
        let name = format!("Lesson {number} quiz");
        let quiz = quiz(number, 2, &name, score);
        repository.send(quiz, md()).await.unwrap();
        repository.send(lesson(number), md()).await.unwrap();
    }
}

/// 130 events: snapshots at versions 50 and 100, then 30 events more.
async fn snapshots_give_the_state_of_every_event_on(store: Store) {
    let snapshotting = Repository::new(store.clone()).with_snapshots(store.clone());
    work_through(&snapshotting, 43).await;
    let stream = StudentProgress::stream_id(&KID).unwrap();
    let snapshot = store.load_snapshot(&stream).await.unwrap().unwrap();
    assert_eq!(snapshot.version, StreamVersion(100));
    assert_eq!(snapshot.state_version, 1);

    let plain = Repository::new(store.clone());
    let with = snapshotting.load::<StudentProgress>(&KID).await.unwrap();
    let without = plain.load::<StudentProgress>(&KID).await.unwrap();
    assert_eq!(without.version, StreamVersion(130));
    assert_eq!(with, without);
    assert_eq!(with.state.position(), at(44, 1));
    assert_eq!(with.state.lessons_completed(), 43);
    // The snapshot is the state at its version, folded from the events up to it.
    let at_snapshot = plain
        .load_at::<StudentProgress>(&KID, snapshot.version)
        .await
        .unwrap();
    let saved: StudentProgress = serde_json::from_str(&snapshot.payload).unwrap();
    assert_eq!(saved, at_snapshot.state);
    // And commands decided on the snapshot's state go on from it.
    snapshotting
        .send(activity(44, 1), Metadata::new())
        .await
        .unwrap();
    let refused = snapshotting.send(lesson(43), Metadata::new()).await;
    assert!(matches!(
        refused,
        Err(ExecuteError::Rejected(ProgressError::LessonBehind {
            current: 44,
            requested: 43
        }))
    ));

    // The equality above compares two real paths: a load with snapshots starts from the
    // snapshot, as a doctored one shows (the same state with another count of resets).
    let version = StreamVersion(131);
    let mut doctored: serde_json::Value = serde_json::from_str(&snapshot.payload).unwrap();
    doctored["resets"] = 99.into();
    doctored["position"] = serde_json::json!({ "lesson": 44, "activity": 2 });
    let payload = doctored.to_string();
    store
        .save_snapshot(Snapshot {
            version,
            payload,
            ..snapshot
        })
        .await
        .unwrap();
    let from_snapshot = snapshotting.load::<StudentProgress>(&KID).await.unwrap();
    assert_eq!(
        (from_snapshot.version, from_snapshot.state.resets()),
        (version, 99)
    );
    let from_events = plain.load::<StudentProgress>(&KID).await.unwrap();
    assert_eq!(
        (from_events.version, from_events.state.resets()),
        (version, 0)
    );
}

#[test]
fn the_snapshot_policy_is_every_50_events_at_state_version_1() {
    let format = StudentProgress::SNAPSHOT.unwrap();
    assert_eq!(format.every, Some(SNAPSHOT_EVERY));
    assert_eq!(format.state_version, 1);
}

#[tokio::test]
async fn loading_through_snapshots_gives_the_state_of_every_event() {
    snapshots_give_the_state_of_every_event_on(MemoryStore::new().into()).await;
}

#[tokio::test]
async fn loading_through_snapshots_gives_the_state_of_every_event_on_sqlite() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    snapshots_give_the_state_of_every_event_on(store).await;
}

fn feed<P: Projection>(projection: &mut P, record: &eventsrc::RecordedEvent) {
    if let Some(event) = decode_for::<P::Event>(record, P::UNKNOWN_EVENTS).unwrap() {
        projection.apply(event, record).unwrap();
    }
}

/// The first lessons through a repository on a store with a manual clock, then the reports folded
/// from the log, as the demo does.
#[tokio::test]
async fn the_reports_fold_the_log_of_a_repository() {
    let clock = eventsrc::time::ManualClock::new(month(2018, 9).start());
    let store = MemoryStore::with_clock(clock.clone());
    let repository = Repository::new(store.clone()).with_clock(clock.clone());
    let md = Metadata::new;
    repository.send(place(6, 1), md()).await.unwrap();
    repository.send(activity(6, 1), md()).await.unwrap();
    let fractions = quiz(6, 2, "Fractions", 80);
    repository.send(fractions, md()).await.unwrap();
    repository.send(lesson(6), md()).await.unwrap();
    clock.set(month(2018, 10).start());
    repository.send(reset(3, 1), md()).await.unwrap();
    repository.send(lesson(3), md()).await.unwrap();
    let invalid = repository.send(quiz(4, 1, "", 50), md()).await;
    assert!(matches!(invalid, Err(ExecuteError::Invalid(_))));

    let (mut highest, mut quizzes, mut growth) = (
        HighestLessons::new(),
        LastQuizzes::new(),
        MonthlyGrowth::new(),
    );
    let log = store
        .read_all(ReadAll::after(GlobalPosition::START))
        .await
        .unwrap();
    assert_eq!(log.len(), 6);
    for record in &log {
        feed(&mut highest, record);
        feed(&mut quizzes, record);
        feed(&mut growth, record);
    }
    assert_eq!(highest.of(KID), self::highest(7, Some(6)));
    let last = quizzes.last(KID).unwrap();
    assert_eq!((last.name.as_str(), last.score), ("Fractions", 80));
    assert_eq!(last.taken_at, month(2018, 9).start());
    assert_eq!(growth.lessons(KID, month(2018, 9)), 1);
    assert_eq!(growth.lessons(KID, month(2018, 10)), 1);
    assert_eq!(growth.average(), Some(1.0));
    let student = repository.load::<StudentProgress>(&KID).await.unwrap();
    assert_eq!(student.state.position(), at(4, 1));
    // The current state alone forgets lesson 6; the reports do not.
    assert!(student.state.handle(&lesson(6)).is_err());
}
