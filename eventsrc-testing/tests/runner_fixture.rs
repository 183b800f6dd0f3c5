//! `RunnerFixture`: consumers run by the real runner over given events.

use std::collections::HashMap;

use eventsrc::Projection;
use eventsrc::{Checkpointed, InMemory};
use eventsrc::{Event, EventId, RecordedEvent};
use eventsrc_testing::RunnerFixture;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Enrolled {
    course: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Noted;

#[derive(Event, Debug)]
enum Watched {
    Enrolled(Enrolled),
}

#[derive(Default)]
struct Enrolments {
    per_course: HashMap<String, u32>,
    applied: HashMap<EventId, u32>,
    refuse: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("no such course: {0}")]
struct NoSuchCourse(String);

impl Projection for Enrolments {
    const NAME: &'static str = "enrolments";
    type Event = Watched;
    type Error = NoSuchCourse;
    fn apply(&mut self, event: Watched, record: &RecordedEvent) -> Result<(), NoSuchCourse> {
        let Watched::Enrolled(enrolled) = event;
        if self.refuse.as_ref() == Some(&enrolled.course) {
            return Err(NoSuchCourse(enrolled.course));
        }
        *self.per_course.entry(enrolled.course).or_default() += 1;
        *self.applied.entry(record.event_id).or_default() += 1;
        Ok(())
    }
}

fn enrolled(course: &str) -> Enrolled {
    Enrolled {
        course: course.into(),
    }
}

#[tokio::test]
async fn a_projection_runs_through_batches_reading_only_its_events() {
    let fixture = RunnerFixture::new()
        .given("student-1", [enrolled("maths"), enrolled("art")])
        .await
        .given("note-1", [Noted, Noted, Noted])
        .await
        .given("student-2", [enrolled("maths")])
        .await;
    let target = InMemory::new(Enrolments::default());
    let model = target.model();
    let (_, progress) = fixture.run(target).await;
    assert_eq!(progress.handled, 3, "the notes are never read");
    assert_eq!(progress.position, Some(fixture.head().await));
    assert_eq!(model.read().per_course["maths"], 2);
}

#[tokio::test]
async fn a_checkpointed_projection_applies_nothing_twice_across_runs() {
    let fixture = RunnerFixture::new()
        .given("student-1", [enrolled("maths")])
        .await;
    let consumer = Checkpointed::new(Enrolments::default(), fixture.store().clone());
    let model = consumer.model();
    let (consumer, _) = fixture.run(consumer).await;
    fixture.append("student-2", [enrolled("art")]).await;
    fixture.run(consumer).await;
    let model = model.read();
    assert_eq!(model.applied.len(), 2);
    assert!(model.applied.values().all(|&n| n == 1));
}

#[tokio::test]
#[should_panic(expected = "`enrolments` failed on event")]
async fn a_failing_consumer_panics_naming_itself_and_the_event() {
    let fixture = RunnerFixture::new()
        .given("student-1", [enrolled("alchemy")])
        .await;
    let refusing = Enrolments {
        refuse: Some("alchemy".into()),
        ..Enrolments::default()
    };
    fixture.run(InMemory::new(refusing)).await;
}
