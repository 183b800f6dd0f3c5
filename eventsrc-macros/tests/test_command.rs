//! `#[command]`: attribute validation (`non_empty`, `range`, `with`, `message`), the command's
//! name, its aggregate and id, `handler =` routing, and `Repository::send` end to end.
#![allow(missing_docs)]

use eventsrc::{
    Aggregate, AggregateCommand, Command, Decision, Event, EventStore, ExecuteError, FieldError,
    Handle, MemoryStore, Metadata, NewEvent, Repository, ValidationError, aggregate, command,
};

use eventsrc::store::ReadStream;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Registered {
    pub name: String,
    pub seats: u8,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Tagged {
    pub tags: Vec<String>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the course is already registered")]
pub struct AlreadyRegistered;

#[derive(Default, Debug, PartialEq)]
pub struct Course {
    name: Option<String>,
    tags: Vec<String>,
}

#[aggregate(id = String, error = AlreadyRegistered)]
impl Course {
    fn on_registered(&mut self, event: &Registered) {
        self.name = Some(event.name.clone());
    }
    fn on_tagged(&mut self, event: &Tagged) {
        self.tags.extend(event.tags.iter().cloned());
    }
}

impl Course {
    fn register(&self, command: &Register) -> Decision<Self> {
        if self.name.is_some() {
            return Err(AlreadyRegistered);
        }
        Ok(vec![
            Registered {
                name: command.name.clone(),
                seats: command.seats,
            }
            .into(),
        ])
    }
}

#[command(aggregate = Course, handler = Course::register)]
#[derive(Debug)]
pub struct Register {
    #[id]
    pub course: String,
    #[validate(non_empty)]
    pub name: String,
    #[validate(range(min = 1, max = 30))]
    pub seats: u8,
}

#[command(aggregate = Course)]
#[derive(Debug)]
pub struct Tag {
    #[id]
    pub course: String,
    #[validate(non_empty, message = "needs at least one tag")]
    pub tags: Vec<String>,
}

impl Handle<Tag> for Course {
    fn handle(&self, command: &Tag) -> Decision<Self> {
        let new: Vec<String> = command
            .tags
            .iter()
            .filter(|t| !self.tags.contains(t))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![Tagged { tags: new }.into()])
    }
}

fn is_email(value: &str) -> bool {
    value.contains('@')
}

fn is_slug(value: &Option<String>) -> bool {
    value
        .as_deref()
        .is_none_or(|v| v.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
}

/// Every rule on every supported field shape; never sent anywhere.
#[command(aggregate = Course)]
#[derive(Debug)]
pub struct Check {
    #[id]
    pub course: String,
    #[validate(non_empty)]
    pub title: String,
    #[validate(non_empty)]
    pub speakers: Vec<String>,
    #[validate(non_empty)]
    pub room: Option<String>,
    #[validate(range(min = 1))]
    pub at_least: i32,
    #[validate(range(max = 10))]
    pub at_most: u64,
    #[validate(range(min = -5, max = 5))]
    pub between: i64,
    #[validate(range(min = 0.5, max = 1.5))]
    pub ratio: f64,
    #[validate(with = is_email)]
    pub email: String,
    #[validate(with = is_slug, message = "must be lower-case words joined by `-`")]
    pub slug: Option<String>,
    #[validate(non_empty, with = is_email, message = "must be a contact address")]
    pub contact: String,
    pub unchecked: String,
}

fn valid() -> Check {
    Check {
        course: "rust-101".into(),
        title: "Ownership".into(),
        speakers: vec!["Ana".into()],
        room: Some("B2".into()),
        at_least: 1,
        at_most: 10,
        between: -5,
        ratio: 0.5,
        email: "ana@example.com".into(),
        slug: None,
        contact: "office@example.com".into(),
        unchecked: String::new(),
    }
}

fn failing(command: &impl Command) -> Vec<(&'static str, String)> {
    match command.validate() {
        Ok(()) => Vec::new(),
        Err(ValidationError { fields }) => fields
            .into_iter()
            .map(|FieldError { field, message }| (field, message))
            .collect(),
    }
}

fn fields(command: &impl Command) -> Vec<&'static str> {
    failing(command).into_iter().map(|(f, _)| f).collect()
}

#[test]
fn a_valid_command_passes_and_unchecked_fields_are_not_checked() {
    assert_eq!(valid().validate(), Ok(()));
}

#[test]
fn non_empty_strings_must_hold_more_than_whitespace() {
    for (title, ok) in [("", false), ("   ", false), ("\t\n", false), (" x ", true)] {
        let command = Check {
            title: title.into(),
            ..valid()
        };
        assert_eq!(fields(&command).is_empty(), ok, "{title:?}");
    }
    let command = Check {
        title: String::new(),
        ..valid()
    };
    assert_eq!(
        failing(&command),
        [("title", "must not be empty".to_owned())]
    );
}

#[test]
fn non_empty_collections_and_options() {
    let no_speakers = Check {
        speakers: vec![],
        ..valid()
    };
    assert_eq!(fields(&no_speakers), ["speakers"]);
    // Only the vector is checked, not its elements.
    let blank_speaker = Check {
        speakers: vec![String::new()],
        ..valid()
    };
    assert_eq!(fields(&blank_speaker), Vec::<&str>::new());
    for (room, ok) in [
        (None, false),
        (Some(""), false),
        (Some("  "), false),
        (Some("A1"), true),
    ] {
        let command = Check {
            room: room.map(str::to_owned),
            ..valid()
        };
        assert_eq!(fields(&command).is_empty(), ok, "{room:?}");
    }
}

#[test]
fn integer_ranges_are_inclusive() {
    let at_least = |at_least| {
        fields(&Check {
            at_least,
            ..valid()
        })
    };
    assert!(at_least(1).is_empty());
    assert!(at_least(i32::MAX).is_empty());
    assert_eq!(at_least(0), ["at_least"]);
    assert_eq!(at_least(-1), ["at_least"]);

    let at_most = |at_most| fields(&Check { at_most, ..valid() });
    assert!(at_most(0).is_empty());
    assert!(at_most(10).is_empty());
    assert_eq!(at_most(11), ["at_most"]);
    assert_eq!(at_most(u64::MAX), ["at_most"]);

    let between = |between| fields(&Check { between, ..valid() });
    for inside in [-5, 0, 5] {
        assert!(between(inside).is_empty(), "{inside}");
    }
    for outside in [-6, 6, i64::MIN] {
        assert_eq!(between(outside), ["between"], "{outside}");
    }
}

#[test]
fn float_ranges_are_inclusive() {
    let ratio = |ratio| fields(&Check { ratio, ..valid() });
    for inside in [0.5, 1.0, 1.5] {
        assert!(ratio(inside).is_empty(), "{inside}");
    }
    for outside in [0.499_999, 1.500_001, -1.0, f64::NAN] {
        assert_eq!(ratio(outside), ["ratio"], "{outside}");
    }
}

#[test]
fn range_messages_name_the_bounds() {
    let command = Check {
        at_least: 0,
        at_most: 11,
        between: 6,
        ratio: 2.0,
        ..valid()
    };
    assert_eq!(
        failing(&command),
        [
            ("at_least", "must be at least 1".to_owned()),
            ("at_most", "must be at most 10".to_owned()),
            ("between", "must be between -5 and 5".to_owned()),
            ("ratio", "must be between 0.5 and 1.5".to_owned()),
        ]
    );
}

#[test]
fn with_calls_the_function_and_message_replaces_the_default() {
    let command = Check {
        email: "ana.example.com".into(),
        slug: Some("Not A Slug".into()),
        ..valid()
    };
    assert_eq!(
        failing(&command),
        [
            ("email", "is invalid".to_owned()),
            ("slug", "must be lower-case words joined by `-`".to_owned()),
        ]
    );
    let command = Check {
        slug: Some("ownership-and-borrowing".into()),
        ..valid()
    };
    assert!(fields(&command).is_empty());
}

#[test]
fn several_rules_on_one_field_share_its_message() {
    let message = "must be a contact address";
    // Blank: `non_empty` and `with` both fail, each with the attribute's message.
    let blank = Check {
        contact: " ".into(),
        ..valid()
    };
    let failures = failing(&blank);
    assert!(!failures.is_empty());
    assert!(
        failures
            .iter()
            .all(|(f, m)| *f == "contact" && m == message),
        "{failures:?}"
    );
    // Only `with` fails.
    let not_email = Check {
        contact: "office".into(),
        ..valid()
    };
    assert_eq!(failing(&not_email), [("contact", message.to_owned())]);
}

#[test]
fn every_failure_is_reported_together_in_declaration_order() {
    let command = Check {
        course: "rust-101".into(),
        title: " ".into(),
        speakers: vec![],
        room: None,
        at_least: 0,
        at_most: 11,
        between: 99,
        ratio: 0.0,
        email: "x".into(),
        slug: Some("X".into()),
        contact: "y".into(),
        unchecked: String::new(),
    };
    assert_eq!(
        fields(&command),
        [
            "title", "speakers", "room", "at_least", "at_most", "between", "ratio", "email",
            "slug", "contact"
        ]
    );
    let error = command.validate().unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(
            "invalid command: `title` must not be empty; `speakers` must not be empty;"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("`contact` must be a contact address"),
        "{text}"
    );
}

#[test]
fn a_command_without_rules_is_always_valid() {
    let command = Tag {
        course: String::new(),
        tags: vec!["x".into()],
    };
    assert_eq!(command.validate(), Ok(()));
}

#[test]
fn the_name_is_the_struct_name() {
    assert_eq!(valid().name(), "Check");
    let register = Register {
        course: "c".into(),
        name: "n".into(),
        seats: 1,
    };
    assert_eq!(register.name(), "Register");
}

#[test]
fn the_aggregate_id_is_the_id_field() {
    let register = Register {
        course: "rust-101".into(),
        name: "Rust".into(),
        seats: 3,
    };
    let id: &<Course as Aggregate>::Id = register.aggregate_id();
    assert_eq!(id, "rust-101");
    assert!(std::ptr::eq(id, &register.course));
    assert_eq!(
        Course::stream_id(register.aggregate_id()).unwrap().as_str(),
        "course-rust-101"
    );
}

#[test]
fn handler_routes_the_command_to_the_named_function() {
    let register = Register {
        course: "c".into(),
        name: "Rust".into(),
        seats: 12,
    };
    let mut course = Course::default();
    let events = Handle::<Register>::handle(&course, &register).unwrap();
    assert_eq!(
        events,
        [CourseEvent::Registered(Registered {
            name: "Rust".into(),
            seats: 12
        })]
    );
    course.apply(&events[0]);
    assert_eq!(
        Handle::<Register>::handle(&course, &register),
        Err(AlreadyRegistered)
    );
}

#[tokio::test]
async fn send_validates_routes_decides_and_appends() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    let register = Register {
        course: "rust-101".into(),
        name: "Rust for beginners".into(),
        seats: 20,
    };
    let committed = repository.send(register, Metadata::new()).await.unwrap();
    assert_eq!(committed.stream.as_str(), "course-rust-101");
    assert_eq!(committed.stream_version.get(), 1);

    let tag = Tag {
        course: "rust-101".into(),
        tags: vec!["beginner".into()],
    };
    repository.send(tag, Metadata::new()).await.unwrap();
    let again = Tag {
        course: "rust-101".into(),
        tags: vec!["beginner".into()],
    };
    assert!(
        repository
            .send(again, Metadata::new())
            .await
            .unwrap()
            .is_noop()
    );

    let loaded = repository.load::<Course>(&"rust-101".into()).await.unwrap();
    assert_eq!(loaded.version.get(), 2);
    assert_eq!(loaded.state.name.as_deref(), Some("Rust for beginners"));
    assert_eq!(loaded.state.tags, ["beginner"]);

    let twice = Register {
        course: "rust-101".into(),
        name: "Again".into(),
        seats: 1,
    };
    assert!(matches!(
        repository.send(twice, Metadata::new()).await,
        Err(ExecuteError::Rejected(AlreadyRegistered))
    ));
}

#[tokio::test]
async fn an_invalid_command_whose_id_names_no_stream_is_invalid_naming_its_fields() {
    let repository = Repository::new(MemoryStore::new());
    // `course-` is no stream id (the id is empty); the command's own rules answer first.
    let invalid = Register {
        course: String::new(),
        name: "  ".into(),
        seats: 0,
    };
    match repository.send(invalid, Metadata::new()).await {
        Err(ExecuteError::Invalid(error)) => {
            let fields: Vec<_> = error.fields.iter().map(|f| f.field).collect();
            assert_eq!(fields, ["name", "seats"]);
        }
        other => panic!("expected an invalid command, got {other:?}"),
    }
    // A valid command with that id is refused for its stream.
    let valid = Register {
        course: String::new(),
        name: "Rust".into(),
        seats: 3,
    };
    match repository.send(valid, Metadata::new()).await {
        Err(ExecuteError::Load(eventsrc::LoadError::Stream(error))) => {
            assert_eq!(error.value, "course-");
        }
        other => panic!("expected an invalid stream id, got {other:?}"),
    }
    assert!(repository.store().is_empty());
}

#[tokio::test]
async fn an_invalid_command_is_refused_before_anything_is_loaded_or_appended() {
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone());
    // The stream holds a record no code can decode: loading it would fail. Validation comes
    // first, so the error is the validation's.
    let stream = Course::stream_id(&"broken".to_owned()).unwrap();
    store
        .append(
            &stream,
            eventsrc::ExpectedVersion::NoStream,
            vec![NewEvent::raw("NoSuchEvent", 1, "{}")],
        )
        .await
        .unwrap();
    let invalid = Register {
        course: "broken".into(),
        name: "  ".into(),
        seats: 0,
    };
    match repository.send(invalid, Metadata::new()).await {
        Err(ExecuteError::Invalid(error)) => {
            let fields: Vec<_> = error.fields.iter().map(|f| f.field).collect();
            assert_eq!(fields, ["name", "seats"]);
            assert_eq!(error.fields[1].message, "must be between 1 and 30");
        }
        other => panic!("expected an invalid command, got {other:?}"),
    }
    let empty_tags = Tag {
        course: "fresh".into(),
        tags: vec![],
    };
    match repository.send(empty_tags, Metadata::new()).await {
        Err(error @ ExecuteError::Invalid(_)) => assert_eq!(
            error.to_string(),
            "invalid command: `tags` needs at least one tag"
        ),
        other => panic!("expected an invalid command, got {other:?}"),
    }
    assert_eq!(store.len(), 1, "nothing was appended");
    let fresh = Course::stream_id(&"fresh".to_owned()).unwrap();
    assert!(
        store
            .read_stream(&fresh, ReadStream::forward())
            .await
            .unwrap()
            .is_empty()
    );
}

// Rules with constant bounds and messages, checks that explain themselves, and a
// whole-command check across fields.

const MAX_SEATS: u32 = 40;
const SEATS_MESSAGE: &str = "must fit the room";

fn known_room(room: &String) -> Result<(), String> {
    if room.starts_with('R') {
        Ok(())
    } else {
        Err(format!("`{room}` is not a room"))
    }
}

fn ends_after_start(command: &Schedule, errors: &mut ValidationError) {
    if command.ends <= command.starts {
        errors.push("ends", "must come after `starts`");
    }
}

#[eventsrc::command(aggregate = Course, handler = Course::schedule, validate = ends_after_start)]
#[derive(Debug)]
pub struct Schedule {
    #[id]
    pub course: String,
    #[validate(range(min = 1, max = MAX_SEATS))]
    pub seats: u32,
    #[validate(range(max = MAX_SEATS), message = SEATS_MESSAGE)]
    pub waiting: Option<u32>,
    #[validate(with = known_room)]
    pub room: String,
    pub starts: u32,
    pub ends: u32,
}

impl Course {
    fn schedule(&self, _: &Schedule) -> Decision<Self> {
        Ok(vec![])
    }
}

fn schedule() -> Schedule {
    Schedule {
        course: "c".into(),
        seats: 10,
        waiting: None,
        room: "R1".into(),
        starts: 9,
        ends: 10,
    }
}

#[test]
fn an_absent_optional_number_passes_its_range() {
    assert_eq!(schedule().validate(), Ok(()));
    let full = Schedule {
        waiting: Some(41),
        ..schedule()
    };
    let error = full.validate().unwrap_err();
    assert_eq!(error.fields[0].field, "waiting");
    assert_eq!(error.fields[0].message, "must fit the room");
}

#[test]
fn range_bounds_may_be_constants_and_messages_show_their_values() {
    let error = Schedule {
        seats: 41,
        ..schedule()
    }
    .validate()
    .unwrap_err();
    assert_eq!(error.fields[0].message, "must be between 1 and 40");
}

#[test]
fn a_check_returning_an_error_supplies_the_message() {
    let error = Schedule {
        room: "kitchen".into(),
        ..schedule()
    }
    .validate()
    .unwrap_err();
    assert_eq!(error.fields[0].field, "room");
    assert_eq!(error.fields[0].message, "`kitchen` is not a room");
}

#[test]
fn a_whole_command_check_runs_after_the_field_rules() {
    let error = Schedule {
        seats: 0,
        ends: 8,
        ..schedule()
    }
    .validate()
    .unwrap_err();
    let fields: Vec<&str> = error.fields.iter().map(|f| f.field).collect();
    assert_eq!(fields, ["seats", "ends"]);
    assert_eq!(error.fields[1].message, "must come after `starts`");
}

/// The same routing and validation read as a spec, through eventsrc-testing's fixture (which
/// also checks on its own that the generated events round-trip and the state rebuilds).
#[test]
fn routing_and_validation_read_as_a_spec() {
    use eventsrc_testing::AggregateFixture;

    let register = |name: &str, seats| Register {
        course: "rust-101".into(),
        name: name.into(),
        seats,
    };
    AggregateFixture::<Course>::new()
        .given_nothing()
        .when(register("", 0))
        .then_invalid(&["name", "seats"])
        .when(register("Rust 101", 12))
        .then_events([Registered {
            name: "Rust 101".into(),
            seats: 12,
        }
        .into()])
        .when(register("Rust 101", 12))
        .then_error(AlreadyRegistered)
        .when(Tag {
            course: "rust-101".into(),
            tags: vec![],
        })
        .then_invalid(&["tags"]);
}
