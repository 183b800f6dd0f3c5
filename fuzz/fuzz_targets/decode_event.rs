//! Stored events decoded the way a load and an inspection tool decode them: an arbitrary stored
//! name, schema version and payload, read through `#[derive(Event)]`'s generated `decode` (typed
//! and JSON upcast chains, an enum of events, aliases), `RecordedEvent::decode`,
//! `StoredEvent::decode` and the registry's dynamic JSON view.
//!
//! Input: byte 0 picks the stored name from [`NAMES`] (any other value: the name is the text
//! before the first NUL of the rest), byte 1 is the schema version (255: the next four bytes,
//! big-endian), the rest is the payload (not UTF-8 is replaced, as a store holds text).
//!
//! Nothing may panic, and the answers must agree: the enum and the struct it wraps, the typed
//! decode and the registry, a decoded event and its encoding read back.
#![no_main]

use std::sync::Arc;

use eventsrc::{
    DecodeError, Event, EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, StreamVersion,
    Tenant, Timestamp, registry,
};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// A member's name: v1 `{name}` --From--> v2 `{first, last}` --add_tier--> v3 (typed, then JSON).

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(superseded_by = MemberJoined)]
struct MemberJoinedV1 {
    name: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_from = MemberJoinedV1, superseded_by = MemberJoined)]
struct MemberJoinedV2 {
    first: String,
    last: String,
}

impl From<MemberJoinedV1> for MemberJoinedV2 {
    fn from(old: MemberJoinedV1) -> Self {
        let (first, last) = old.name.split_once(' ').unwrap_or((&old.name, ""));
        Self {
            first: first.to_owned(),
            last: last.to_owned(),
        }
    }
}

fn add_tier(mut value: Value) -> Value {
    if let Some(fields) = value.as_object_mut() {
        fields
            .entry("tier")
            .or_insert_with(|| Value::from("standard"));
    }
    value
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(
    name = "library.member_joined",
    version = 3,
    aliases = ["MemberRegistered"],
    upcast_from = MemberJoinedV2,
    upcast_json = add_tier
)]
struct MemberJoined {
    first: String,
    last: String,
    tier: String,
}

// A book: v1 `{title, author}` --author_to_list--> v2 `{title, authors}` --From--> v3 (JSON,
// then typed).

fn author_to_list(mut value: Value) -> Result<Value, String> {
    let fields = value
        .as_object_mut()
        .ok_or("a version 1 book is a JSON object")?;
    let author = fields
        .remove("author")
        .ok_or("a version 1 book names its `author`")?;
    fields.insert("authors".to_owned(), json!([author]));
    Ok(value)
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, upcast_json = author_to_list, superseded_by = BookAdded)]
struct BookAddedV2 {
    title: String,
    authors: Vec<String>,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(
    name = "library.book_added",
    version = 3,
    aliases = ["BookCatalogued"],
    upcast_from = BookAddedV2
)]
struct BookAdded {
    title: String,
    authors: Vec<String>,
    pages: u32,
}

impl From<BookAddedV2> for BookAdded {
    fn from(old: BookAddedV2) -> Self {
        Self {
            title: old.title,
            authors: old.authors,
            pages: 0,
        }
    }
}

/// A unit struct: any payload of a known version reads as the value.
#[derive(Event, Debug, Clone, PartialEq)]
#[event(name = "library.catalogue_closed")]
struct CatalogueClosed;

// The enum's own variants: two JSON steps (the second fallible), one step with arithmetic.

/// v1 → v2: `days` is renamed `due_in_days`, 14 when missing.
fn days_to_due(mut value: Value) -> Value {
    if let Some(fields) = value.as_object_mut() {
        let days = fields.remove("days").unwrap_or_else(|| Value::from(14));
        fields.insert("due_in_days".to_owned(), days);
    }
    value
}

/// v2 → v3: a loan due in no days was a mistake of the old code.
fn due_must_be_positive(value: Value) -> Result<Value, &'static str> {
    match value.get("due_in_days").and_then(Value::as_u64) {
        Some(0) => Err("a loan due in 0 days"),
        _ => Ok(value),
    }
}

/// v1 `{euros}` → v2 `{cents}`.
fn euros_to_cents(mut value: Value) -> Result<Value, String> {
    let fields = value
        .as_object_mut()
        .ok_or("a version 1 fine is a JSON object")?;
    let euros = fields
        .remove("euros")
        .and_then(|euros| euros.as_u64())
        .ok_or("a version 1 fine has whole `euros`")?;
    let cents = euros
        .checked_mul(100)
        .ok_or_else(|| format!("{euros} euros do not fit in cents"))?;
    fields.insert("cents".to_owned(), cents.into());
    Ok(value)
}

#[derive(Event, Debug, Clone, PartialEq)]
enum LibraryEvent {
    Joined(MemberJoined),
    Added(BookAdded),
    #[event(
        name = "library.loan_opened",
        version = 3,
        aliases = ["BookBorrowed"],
        upcast_json = [days_to_due, due_must_be_positive]
    )]
    LoanOpened {
        isbn: String,
        member: u64,
        due_in_days: u32,
    },
    #[event(name = "library.fine_paid", version = 2, upcast_json = euros_to_cents)]
    FinePaid {
        cents: u64,
    },
    #[event(name = "library.loan_closed")]
    LoanClosed,
    Renewed {},
}

/// The stored names the first byte picks from: every name and alias, and names nothing answers
/// to (a Rust type name, a variant name, the empty name, a near miss).
const NAMES: &[&str] = &[
    "library.member_joined",
    "MemberRegistered",
    "library.book_added",
    "BookCatalogued",
    "library.catalogue_closed",
    "library.loan_opened",
    "BookBorrowed",
    "library.fine_paid",
    "library.loan_closed",
    "Renewed",
    "MemberJoined",
    "MemberJoinedV1",
    "LoanOpened",
    "",
    "library.member_joined ",
];

struct Input {
    name: String,
    version: u32,
    payload: String,
}

impl Input {
    fn read(data: &[u8]) -> Option<Self> {
        let (&pick, rest) = data.split_first()?;
        let (&version, rest) = rest.split_first()?;
        let (version, rest) = if version == u8::MAX {
            let (bytes, rest) = rest.split_first_chunk::<4>()?;
            (u32::from_be_bytes(*bytes), rest)
        } else {
            (u32::from(version), rest)
        };
        let (name, payload) = match NAMES.get(usize::from(pick)) {
            Some(name) => ((*name).to_owned(), rest),
            None => {
                let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
                let name = String::from_utf8_lossy(&rest[..end]).into_owned();
                (name, rest.get(end + 1..).unwrap_or_default())
            }
        };
        Some(Self {
            name,
            version,
            payload: String::from_utf8_lossy(payload).into_owned(),
        })
    }

    fn record(&self) -> RecordedEvent {
        RecordedEvent {
            event_id: EventId::new(),
            stream: StreamId::new("library", 7).expect("a valid stream"),
            stream_version: StreamVersion(3),
            global_position: GlobalPosition::new(11, 12),
            tenant: Tenant::default(),
            event_type: Arc::from(self.name.as_str()),
            schema_version: self.version,
            payload: Arc::from(self.payload.as_str()),
            metadata: Metadata::new(),
            recorded_at: Timestamp::UNIX_EPOCH,
        }
    }
}

/// The stored name a decode error names.
fn named(error: &DecodeError) -> &str {
    match error {
        DecodeError::UnknownType { event_type, .. }
        | DecodeError::FutureVersion { event_type, .. }
        | DecodeError::Malformed { event_type, .. }
        | DecodeError::Upcast { event_type, .. } => event_type,
    }
}

/// Checks one typed decode: an error names the stored name it was given; a value encodes to a
/// payload of the current version that decodes to the same value; unknown names and future
/// versions are told apart from payloads that do not fit.
fn check_typed<E: Event + PartialEq + std::fmt::Debug>(
    input: &Input,
    decoded: &Result<E, DecodeError>,
) {
    match decoded {
        Ok(event) => {
            let payload = event.encode().expect("a decoded event encodes");
            let again = E::decode(event.event_type(), event.schema_version(), &payload);
            assert_eq!(again.as_ref().ok(), Some(event), "{payload}: {again:?}");
            assert!(input.version <= event.schema_version());
        }
        Err(error) => {
            assert_eq!(named(error), input.name, "{error}");
            assert!(error.to_string().contains(&format!("`{}`", input.name)));
            if let DecodeError::UnknownType { version, .. }
            | DecodeError::FutureVersion { version, .. } = error
            {
                assert_eq!(*version, input.version, "{error}");
            }
        }
    }
}

/// Two decodes of one stored event agree: both read it (as equal values) or both refuse.
fn agree<A: PartialEq + std::fmt::Debug>(a: &Result<A, DecodeError>, b: &Result<A, DecodeError>) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("one decode read it and the other did not: {a:?} / {b:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let (name, version, payload) = (input.name.as_str(), input.version, input.payload.as_str());

    let member = MemberJoined::decode(name, version, payload);
    check_typed(&input, &member);
    let book = BookAdded::decode(name, version, payload);
    check_typed(&input, &book);
    let closed = CatalogueClosed::decode(name, version, payload);
    check_typed(&input, &closed);
    let event = LibraryEvent::decode(name, version, payload);
    check_typed(&input, &event);

    // The enum's newtype variants decode exactly as the structs they wrap.
    if <MemberJoined as eventsrc::EventType>::NAME == name
        || <MemberJoined as eventsrc::EventType>::ALIASES.contains(&name)
    {
        agree(&event, &member.map(LibraryEvent::Joined));
    } else if <BookAdded as eventsrc::EventType>::NAME == name
        || <BookAdded as eventsrc::EventType>::ALIASES.contains(&name)
    {
        agree(&event, &book.map(LibraryEvent::Added));
    }

    // A record decodes as its parts do, and its errors name the record.
    let record = input.record();
    match (record.decode::<LibraryEvent>(), &event) {
        (Ok(from_record), Ok(direct)) => assert_eq!(&from_record, direct),
        (Err(error), Err(_)) => {
            assert_eq!(error.event_id, record.event_id);
            assert_eq!(error.stream, record.stream);
            assert_eq!(error.global_position, record.global_position);
        }
        (from_record, direct) => panic!("{from_record:?} / {direct:?}"),
    }
    agree(&record.as_stored().decode::<LibraryEvent>(), &event);

    // The registry reads what the typed decode reads, as the current version's JSON.
    let dynamic = registry::decode_json(name, version, payload);
    match registry::find(name) {
        None => assert!(
            matches!(dynamic, Err(DecodeError::UnknownType { .. })),
            "{dynamic:?}"
        ),
        Some(_) => {
            let typed = match (&event, &closed) {
                (Ok(event), _) => Some(event.encode().expect("a decoded event encodes")),
                (_, Ok(closed)) => Some(closed.encode().expect("a unit event encodes")),
                _ => None,
            };
            match (&dynamic, typed) {
                (Ok(value), Some(typed)) => {
                    let typed: Value = serde_json::from_str(&typed).expect("encoded JSON");
                    assert_eq!(value, &typed);
                }
                (Err(error), None) => assert_eq!(named(error), name),
                (dynamic, typed) => panic!("registry {dynamic:?}, typed {typed:?}"),
            }
        }
    }
    match registry::inspect(&record) {
        Ok(value) => assert_eq!(Some(&value), dynamic.as_ref().ok()),
        Err(error) => {
            assert!(dynamic.is_err());
            assert_eq!(error.event_id, record.event_id);
        }
    }
});
