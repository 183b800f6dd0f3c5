//! Student progress reports, told through `eventsrc::Repository`: student 3202 step by step (placed
//! at lesson 6, two activities, the lesson, a manual reset to lesson 3, then lesson 3 done) with
//! the commands the stricter handlers refuse; then four simulated months of three students working
//! through lessons and quizzes; then the snapshot that saves replaying every event of student 3202;
//! and last the reports, folded from the log.
//!
//! A manual clock stamps `recorded_at`, so the story happens from September to December 2018
//! (on PostgreSQL, which stamps with the server's clock, every event is dated today and the
//! growth report has one month). The store is `memory:` (nothing kept) unless `--store <url>` or
//! the environment variable `EVENTSRC_STORE` names another (the flag wins), e.g.
//! `sqlite://eventsrc-demo.db`, the leads demo's file, or
//! `postgres://user:password@host/database` (the password is never printed). On a store that
//! already holds these students the commands are decided against what is there, so most are
//! refused, and the reports include the earlier runs' events.
//!
//! Run with: `cargo run -p eventsrc-examples --bin progress [-- --store <url>]`

use std::error::Error;
use std::fmt::Debug;
use std::process::ExitCode;
use std::time::Duration;

use eventsrc::Store;
use eventsrc::runner::fold;
use eventsrc::store::ReadAll;
use eventsrc::store::ReadStream;
use eventsrc::time::ManualClock;
use eventsrc::{
    Aggregate, AggregateCommand, EventStore, ExecuteError, GlobalPosition, Handle, Metadata,
    Repository, SnapshotStore,
};
use eventsrc_examples::narrate::{note_earlier_run, print_registered, send_and_tell};
use eventsrc_examples::progress::reports::{HighestLessons, LastQuizzes, MonthlyGrowth, YearMonth};
use eventsrc_examples::progress::{
    CompleteActivity, CompleteLesson, PlaceStudent, ResetProgress, SNAPSHOT_EVERY, StudentId,
    StudentProgress,
};
use eventsrc_examples::store::{Invocation, exit_code};

/// The store when neither `--store` nor `EVENTSRC_STORE` names one.
const DEFAULT_STORE: &str = "memory:";

/// The student followed step by step.
const KID: StudentId = StudentId(3202);
/// Two classmates, for the monthly averages.
const CLASSMATES: [StudentId; 2] = [StudentId(3203), StudentId(3204)];

/// Activities per lesson in the simulated months; the last one of each lesson is a quiz.
const ACTIVITIES: u32 = 3;

/// A repository that loads and saves snapshots in the same store as the events.
type Snapshotting = Repository<Store, Store>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    eventsrc_examples::telemetry::init_tracing();
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let Some((url, source)) = Invocation::store("progress", DEFAULT_STORE)? else {
        return Ok(());
    };
    eventsrc::registry::check()?;
    let september = month(2018, 9)?;
    let clock = ManualClock::new(september.start() + days(4) + hours(9));
    let store = url.open_with_clock(clock.clone()).await?;
    let repository = Repository::new(store.clone())
        .with_snapshots(store.clone())
        .with_clock(clock.clone());
    println!("eventsrc: student progress reports on {store}");
    println!("Store URL: {url} ({source})");
    print_registered::<StudentProgress>("student");
    for student in [KID, CLASSMATES[0], CLASSMATES[1]] {
        note_earlier_run::<StudentProgress, _>(&store, "Student", &student).await?;
    }

    first_lessons(&repository, &clock).await?;
    print_table(&store).await?;
    the_months(&repository, &clock, september).await?;
    show_snapshot(&repository).await?;
    print_reports(&store).await
}

/// Student 3202 step by step, then the commands the handlers refuse.
async fn first_lessons(
    repository: &Snapshotting,
    clock: &ManualClock,
) -> Result<(), Box<dyn Error>> {
    println!("\nStudent {KID}, step by step");
    let minutes = |n: u64| Duration::from_secs(n * 60);
    send(repository, place(KID, 6, 1)).await?;
    clock.advance(minutes(10));
    send(repository, activity(KID, 6, 1)).await?;
    clock.advance(minutes(10));
    send(repository, quiz(KID, 6, 2, "Lesson 6 quiz", 80)).await?;
    clock.advance(minutes(10));
    send(repository, lesson(KID, 6)).await?;
    clock.advance(hours(24));
    println!("  A teacher moves the kid back to lesson 3 (a manual reset)");
    send(repository, reset(KID, 3, 1)).await?;
    clock.advance(minutes(10));
    send(repository, activity(KID, 3, 1)).await?;
    clock.advance(minutes(10));
    println!("  Kid finishes lesson 3..");
    send(repository, lesson(KID, 3)).await?;

    println!("\nCommands the stricter handlers refuse (the student is at lesson 4, activity 1)");
    send(repository, lesson(KID, 6)).await?;
    send(repository, lesson(KID, 3)).await?;
    send(repository, activity(KID, 4, 3)).await?;
    send(repository, reset(KID, 9, 1)).await?;
    send(repository, place(KID, 1, 1)).await?;
    let mut unscored = activity(KID, 4, 1);
    unscored.quiz = Some("Lesson 4 quiz".into());
    send(repository, unscored).await?;
    send(repository, lesson(StudentId(9999), 1)).await?;
    println!("  and one the student already holds");
    send(repository, reset(KID, 4, 1)).await
}

/// The stored events of student 3202, as an events table.
async fn print_table(store: &Store) -> Result<(), Box<dyn Error>> {
    let stream = StudentProgress::stream_id(&KID)?;
    println!("\nThe events of {stream}, as a table (the first 12)");
    println!(
        "  {:<3}  {:<10}  {:<26}  payload",
        "id", "student_id", "event_type"
    );
    let read = ReadStream::forward().limit(12);
    for record in store.read_stream(&stream, read).await? {
        println!(
            "  {:<3}  {:<10}  {:<26}  {}",
            record.stream_version.to_string(),
            stream.id(),
            record.event_type,
            record.payload
        );
    }
    Ok(())
}

/// Lessons each student completes in a month of the simulation (`None`: none).
struct Plan {
    month: YearMonth,
    kid: std::ops::RangeInclusive<u32>,
    first_classmate: Option<std::ops::RangeInclusive<u32>>,
    second_classmate: Option<std::ops::RangeInclusive<u32>>,
}

/// Four months: student 3202 goes on from lesson 4, 3203 starts at lesson 1 (and is moved back
/// in November), 3204 joins in October at lesson 10 and stops after November.
fn plans(september: YearMonth) -> [Plan; 4] {
    let (october, november) = (september.next(), september.next().next());
    [
        Plan {
            month: september,
            kid: 4..=6,
            first_classmate: Some(1..=2),
            second_classmate: None,
        },
        Plan {
            month: october,
            kid: 7..=11,
            first_classmate: Some(3..=4),
            second_classmate: Some(10..=10),
        },
        Plan {
            month: november,
            kid: 12..=15,
            first_classmate: None, // moved back to lesson 3, nothing completed
            second_classmate: Some(11..=12),
        },
        Plan {
            month: november.next(),
            kid: 16..=20,
            first_classmate: Some(3..=5),
            second_classmate: None,
        },
    ]
}

/// The months of [`plans`], with the classmates' placements and the reset on their days.
async fn the_months(
    repository: &Snapshotting,
    clock: &ManualClock,
    september: YearMonth,
) -> Result<(), Box<dyn Error>> {
    println!(
        "\nFour months of work: {ACTIVITIES} activities per lesson (the last a quiz), then the lesson"
    );
    let (october, november) = (september.next(), september.next().next());
    let [first, second] = CLASSMATES;
    for plan in plans(september) {
        clock.set(plan.month.start() + days(1) + hours(8));
        if plan.month == september {
            clock.advance(days(5)); // after student 3202's first lessons
            work(repository, clock, first, None, &place(first, 1, 1)).await?;
        }
        if plan.month == october {
            work(repository, clock, second, None, &place(second, 10, 1)).await?;
        }
        if plan.month == november {
            work(repository, clock, first, None, &reset(first, 3, 1)).await?;
        }
        let month = plan.month;
        work_through(repository, clock, month, KID, plan.kid).await?;
        if let Some(lessons) = plan.first_classmate {
            work_through(repository, clock, month, first, lessons).await?;
        }
        if let Some(lessons) = plan.second_classmate {
            work_through(repository, clock, month, second, lessons).await?;
        }
    }
    Ok(())
}

/// `student` completes every activity of each of `lessons`, then the lesson, half an hour apart;
/// prints one line for the month.
async fn work_through(
    repository: &Snapshotting,
    clock: &ManualClock,
    month: YearMonth,
    student: StudentId,
    lessons: std::ops::RangeInclusive<u32>,
) -> Result<(), Box<dyn Error>> {
    let mut tally = Tally::default();
    let range = if lessons.start() == lessons.end() {
        format!("lesson {}", lessons.start())
    } else {
        format!("lessons {}-{}", lessons.start(), lessons.end())
    };
    for number in lessons {
        for n in 1..=ACTIVITIES {
            let command = if n == ACTIVITIES {
                let score = 55 + u8::try_from(number * 7 % 45).unwrap_or(0);
                quiz(student, number, n, &format!("Lesson {number} quiz"), score)
            } else {
                activity(student, number, n)
            };
            work(repository, clock, student, Some(&mut tally), &command).await?;
        }
        let command = lesson(student, number);
        work(repository, clock, student, Some(&mut tally), &command).await?;
    }
    if tally.appended + tally.refused > 0 {
        let refused = match &tally.first_refusal {
            Some(reason) => format!(", {} refused (first: {reason})", tally.refused),
            None => String::new(),
        };
        println!(
            "  {month}: student {student} works through {range}: {} events appended{refused}",
            tally.appended
        );
    }
    Ok(())
}

/// What a month's commands came to.
#[derive(Default)]
struct Tally {
    appended: usize,
    refused: usize,
    first_refusal: Option<String>,
}

/// Sends `command` quietly, half an hour after the previous one, counting it in `tally`; without a
/// tally, prints one line for it.
async fn work<C>(
    repository: &Snapshotting,
    clock: &ManualClock,
    student: StudentId,
    tally: Option<&mut Tally>,
    command: &C,
) -> Result<(), Box<dyn Error>>
where
    C: AggregateCommand<Aggregate = StudentProgress> + Clone + Debug,
    StudentProgress: Handle<C>,
{
    clock.advance(Duration::from_secs(1_800));
    let outcome = repository.send(command.clone(), Metadata::new()).await;
    let (appended, refusal) = match outcome {
        Ok(committed) => (committed.events.len(), None),
        Err(error @ (ExecuteError::Invalid(_) | ExecuteError::Rejected(_))) => {
            (0, Some(error.to_string()))
        }
        Err(other) => return Err(other.into()),
    };
    match tally {
        Some(tally) => {
            tally.appended += appended;
            if let Some(reason) = refusal {
                tally.refused += 1;
                tally.first_refusal.get_or_insert(reason);
            }
        }
        None => {
            let outcome = refusal.unwrap_or_else(|| format!("{appended} event(s) appended"));
            let month = YearMonth::of(clock.now());
            println!("  {month}: student {student}: {command:?}\n      -> {outcome}");
        }
    }
    Ok(())
}

/// Student 3202's snapshot, and the same state loaded with and without it.
async fn show_snapshot(repository: &Snapshotting) -> Result<(), Box<dyn Error>> {
    let stream = StudentProgress::stream_id(&KID)?;
    println!(
        "\nSnapshots: student {KID}'s state is saved as JSON every {SNAPSHOT_EVERY} events (\"Isn't this slow?\")"
    );
    let Some(snapshot) = repository.snapshots().load_snapshot(&stream).await? else {
        println!("  no snapshot of {stream}: it has fewer than {SNAPSHOT_EVERY} events");
        return Ok(());
    };
    println!(
        "  the latest snapshot of {stream}: version {}, state version {}, taken at {}",
        snapshot.version, snapshot.state_version, snapshot.taken_at
    );
    println!("      {}", snapshot.payload);
    let with = repository.load::<StudentProgress>(&KID).await?;
    let without = Repository::new(repository.store().clone())
        .load::<StudentProgress>(&KID)
        .await?;
    let newer = with.version.get().saturating_sub(snapshot.version.get());
    let state = &with.state;
    let at = state
        .position()
        .map_or_else(|| "not placed".to_owned(), |at| at.to_string());
    println!(
        "  loaded from the snapshot plus the {newer} newer events: version {}, at {at}; {} \
         activities and {} lessons completed, {} reset(s)",
        with.version,
        state.activities_completed(),
        state.lessons_completed(),
        state.resets()
    );
    println!(
        "  loaded from all {} events, without snapshots: {}",
        without.version,
        if without == with {
            "the same state"
        } else {
            "a DIFFERENT state"
        }
    );
    Ok(())
}

/// The three reports, folded from every student event in the log.
async fn print_reports(store: &Store) -> Result<(), Box<dyn Error>> {
    let mut highest = HighestLessons::new();
    let mut quizzes = LastQuizzes::new();
    let mut growth = MonthlyGrowth::new();
    let mut after = GlobalPosition::START;
    loop {
        let page = ReadAll::after(after).categories([StudentProgress::TYPE]);
        let records = store.read_all(page).await?;
        let Some(last) = records.last() else {
            break;
        };
        after = last.global_position;
        fold(&mut highest, &records)?;
        fold(&mut quizzes, &records)?;
        fold(&mut growth, &records)?;
    }

    println!("\nReport: what's the highest lesson a kid has done? (resets do not undo it)");
    println!("  student  reached  completed");
    for (student, lessons) in highest.iter() {
        let completed = lessons
            .completed
            .map_or_else(|| "-".to_owned(), |lesson| lesson.to_string());
        println!(
            "  {:<7}  {:<7}  {completed}",
            student.to_string(),
            lessons.reached
        );
    }
    println!("\nReport: what's the last quiz a kid has taken?");
    println!("  student  quiz              score  where                  taken at");
    for (student, quiz) in quizzes.iter() {
        println!(
            "  {:<7}  {:<16}  {:>4}%  {:<21}  {}",
            student.to_string(),
            quiz.name,
            quiz.score,
            quiz.position.to_string(),
            quiz.taken_at
        );
    }
    println!(
        "\nReport: what's the average growth of lessons in a month? (lessons completed per \
         student active that month, UTC)"
    );
    println!("  month    active students  lessons completed  average growth");
    for (month, row) in growth.months() {
        println!(
            "  {month}  {:>15}  {:>17}  {:>14.2}",
            row.active_students,
            row.lessons_completed,
            row.average()
        );
    }
    if let Some(average) = growth.average() {
        println!("  overall: {average:.2} lessons per active student-month");
    }
    Ok(())
}

/// Sends `command` to its student and prints what became of it: the events and the student's
/// position after them, a no-op, or why it was refused.
async fn send<C>(repository: &Snapshotting, command: C) -> Result<(), Box<dyn Error>>
where
    C: AggregateCommand<Aggregate = StudentProgress> + Debug,
    StudentProgress: Handle<C>,
{
    let id = *command.aggregate_id();
    send_and_tell(repository, command, Metadata::new(), |_, student| {
        let at = student
            .position()
            .map_or_else(|| "not placed".to_owned(), |at| at.to_string());
        format!("student {id} at {at}")
    })
    .await
}

fn place(student: StudentId, lesson: u32, activity: u32) -> PlaceStudent {
    PlaceStudent {
        student,
        lesson,
        activity,
    }
}

fn activity(student: StudentId, lesson: u32, activity: u32) -> CompleteActivity {
    CompleteActivity {
        student,
        lesson,
        activity,
        quiz: None,
        score: None,
    }
}

fn quiz(student: StudentId, lesson: u32, activity: u32, name: &str, score: u8) -> CompleteActivity {
    CompleteActivity {
        student,
        lesson,
        activity,
        quiz: Some(name.into()),
        score: Some(score),
    }
}

fn lesson(student: StudentId, lesson: u32) -> CompleteLesson {
    CompleteLesson { student, lesson }
}

fn reset(student: StudentId, lesson: u32, activity: u32) -> ResetProgress {
    ResetProgress {
        student,
        lesson,
        activity,
    }
}

fn month(year: i32, month: u8) -> Result<YearMonth, Box<dyn Error>> {
    YearMonth::new(year, month).ok_or_else(|| format!("no month {month} in {year}").into())
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3_600)
}
