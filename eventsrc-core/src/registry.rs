//! The process-wide registry of event types, filled at link time by `#[derive(Event)]` and
//! `#[aggregate]` (through the `inventory` crate).
//!
//! It answers "what is this stored event?" for any name, without knowing its Rust type: list
//! every registered event, decode any stored payload into its current version as JSON for
//! inspection, and [`check`] the whole set for mistakes the compiler cannot see across crates
//! (two types claiming one name, an alias that shadows a name, a version with no path from
//! older stored versions).
//!
//! ```rust,standalone_crate
//! // A program calls this at start-up; a test calls it to fail early.
//! eventsrc::registry::check().expect("event registry is consistent");
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;

use crate::{DecodeError, RecordDecodeError, RecordedEvent};

/// One event type, as `#[derive(Event)]` registers it. Not built by hand.
#[derive(Debug)]
pub struct EventRegistration {
    /// The stored name.
    pub name: &'static str,
    /// The current schema version.
    pub version: u32,
    /// Older names still decoded as this event.
    pub aliases: &'static [&'static str],
    /// The Rust type, for messages.
    pub rust_type: &'static str,
    /// The oldest stored version this code can upcast (1 when the whole chain exists).
    pub oldest_version: u32,
    /// Decodes a stored payload (any known version) and writes its current version as JSON.
    pub to_current_json: fn(&str, u32, &str) -> Result<serde_json::Value, DecodeError>,
}

/// One aggregate and the events it applies, as `#[aggregate]` registers it. Not built by hand.
#[derive(Debug)]
pub struct AggregateRegistration {
    /// The stored aggregate type (stream category).
    pub name: &'static str,
    /// The Rust type.
    pub rust_type: &'static str,
    /// The stored names of its events.
    pub events: &'static [&'static str],
}

/// The personal fields of one event type at one schema version, as `#[derive(Event)]`
/// registers them for a struct with `#[event(personal)]` fields. Not built by hand.
///
/// Crypto-shredding (`eventsrc::personal`, feature `encryption`) reads it to know which
/// fields of a payload to seal and under which data subject's key.
#[derive(Debug)]
pub struct PersonalRegistration {
    /// The stored name (a superseded shape's: its successor's).
    pub name: &'static str,
    /// Older names stored payloads of this shape may carry.
    pub aliases: &'static [&'static str],
    /// The schema version of this shape.
    pub version: u32,
    /// The JSON key of the field naming the data subject.
    pub subject: &'static str,
    /// The JSON keys of the personal fields.
    pub fields: &'static [&'static str],
    /// The Rust type, for messages.
    pub rust_type: &'static str,
}

inventory::collect!(EventRegistration);
inventory::collect!(AggregateRegistration);
inventory::collect!(PersonalRegistration);

/// The personal fields of the payloads stored as `event_type` at `schema_version`, if that
/// shape has any (`#[event(personal)]`).
///
/// ```
/// use eventsrc::Event;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Serialize, Deserialize)]
/// struct Registered {
///     #[event(subject)]
///     user: String,
///     #[event(personal)]
///     email: Option<String>,
///     plan: String,
/// }
///
/// let personal = eventsrc::registry::personal("Registered", 1).expect("registered");
/// assert_eq!((personal.subject, personal.fields), ("user", &["email"][..]));
/// assert!(eventsrc::registry::personal("Registered", 2).is_none());
/// ```
pub fn personal(event_type: &str, schema_version: u32) -> Option<&'static PersonalRegistration> {
    type Index = HashMap<(&'static str, u32), &'static PersonalRegistration>;
    static INDEX: OnceLock<Index> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = Index::new();
        for registration in inventory::iter::<PersonalRegistration> {
            for alias in registration.aliases {
                index
                    .entry((*alias, registration.version))
                    .or_insert(registration);
            }
        }
        for registration in inventory::iter::<PersonalRegistration> {
            index.insert((registration.name, registration.version), registration);
        }
        index
    });
    index.get(&(event_type, schema_version)).copied()
}

/// What the registry knows of one event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredEvent {
    /// The stored name.
    pub name: &'static str,
    /// The current schema version.
    pub version: u32,
    /// Older names still decoded.
    pub aliases: &'static [&'static str],
    /// The Rust type.
    pub rust_type: &'static str,
    /// The oldest version that can be upcast.
    pub oldest_version: u32,
    /// The stored names of the aggregates that apply it.
    pub aggregates: Vec<&'static str>,
}

/// Every registered event, sorted by name.
pub fn events() -> Vec<RegisteredEvent> {
    let mut owners: HashMap<&str, Vec<&'static str>> = HashMap::new();
    for aggregate in inventory::iter::<AggregateRegistration> {
        for event in aggregate.events {
            owners.entry(event).or_default().push(aggregate.name);
        }
    }
    let mut all: Vec<RegisteredEvent> = inventory::iter::<EventRegistration>
        .into_iter()
        .map(|r| RegisteredEvent {
            name: r.name,
            version: r.version,
            aliases: r.aliases,
            rust_type: r.rust_type,
            oldest_version: r.oldest_version,
            aggregates: owners.get(r.name).cloned().unwrap_or_default(),
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(b.name).then(a.rust_type.cmp(b.rust_type)));
    all
}

/// The registration answering to `name`, as a name or an alias.
pub fn find(name: &str) -> Option<&'static EventRegistration> {
    static INDEX: OnceLock<HashMap<&'static str, &'static EventRegistration>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = HashMap::new();
        for registration in inventory::iter::<EventRegistration> {
            for alias in registration.aliases {
                index.entry(*alias).or_insert(registration);
            }
        }
        // Names win over aliases, whatever the link order.
        for registration in inventory::iter::<EventRegistration> {
            index.insert(registration.name, registration);
        }
        index
    });
    index.get(name).copied()
}

/// Decodes any stored payload by name, upcasting it, and returns its current version as JSON:
/// the dynamic view for inspection tools.
///
/// Personal fields sealed by crypto-shredding (`eventsrc::personal`) read as `null`, the
/// redacted value, as they do for a forgotten subject: the inspection tools read the store
/// without the keys. Read through `Encrypted` to see them open.
pub fn decode_json(
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<serde_json::Value, DecodeError> {
    let registration =
        find(event_type).ok_or_else(|| DecodeError::unknown(event_type, schema_version))?;
    let redacted = redacted(payload);
    let payload = redacted.as_deref().unwrap_or(payload);
    (registration.to_current_json)(event_type, schema_version, payload)
}

/// The key of a sealed personal field's envelope (crypto-shredding's
/// `{"$personal": ..., "subject": ...}`): read here without the feature, to redact it.
pub(crate) const SEALED: &str = "$personal";

/// Whether a payload may hold a sealed personal field: the quick test before parsing it, so
/// that payloads without any cost a substring search.
pub(crate) fn may_hold_sealed(payload: &str) -> bool {
    payload.contains("\"$personal\"")
}

/// `payload` with its sealed personal fields (crypto-shredding's
/// `{"$personal": ..., "subject": ...}`) as `null`, the redacted value: what the inspection
/// tools show of a payload read without its subjects' keys. `None` when it holds none.
fn redacted(payload: &str) -> Option<String> {
    if !may_hold_sealed(payload) {
        return None;
    }
    let mut value: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(payload).ok()?;
    let mut changed = false;
    for field in value.values_mut() {
        if field.as_object().is_some_and(|o| o.contains_key(SEALED)) {
            *field = serde_json::Value::Null;
            changed = true;
        }
    }
    changed.then(|| serde_json::Value::Object(value).to_string())
}

/// [`decode_json`] of a stored record; the error names the record.
pub fn inspect(record: &RecordedEvent) -> Result<serde_json::Value, RecordDecodeError> {
    decode_json(&record.event_type, record.schema_version, &record.payload)
        .map_err(|source| RecordDecodeError::new(record, source))
}

/// A mistake in the set of registered events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryProblem {
    /// Two Rust types register the same stored name.
    DuplicateName {
        /// The name.
        name: &'static str,
        /// The types claiming it.
        rust_types: Vec<&'static str>,
    },
    /// An alias of one event is the name or an alias of another.
    AliasCollision {
        /// The alias.
        alias: &'static str,
        /// The event declaring the alias.
        of: &'static str,
        /// The event it collides with.
        with: &'static str,
    },
    /// Stored payloads of versions older than `oldest_version` cannot be read.
    MissingUpcastPath {
        /// The event.
        name: &'static str,
        /// Its Rust type.
        rust_type: &'static str,
        /// Its current version.
        version: u32,
        /// The oldest version it can upcast.
        oldest_version: u32,
    },
}

impl fmt::Display for RegistryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateName { name, rust_types } => {
                write!(
                    f,
                    "event name `{name}` is registered by {}",
                    rust_types.join(" and ")
                )
            }
            Self::AliasCollision { alias, of, with } => {
                write!(
                    f,
                    "alias `{alias}` of event `{of}` is also a name or alias of `{with}`"
                )
            }
            Self::MissingUpcastPath {
                name,
                rust_type,
                version,
                oldest_version,
            } => write!(
                f,
                "event `{name}` ({rust_type}) is at version {version} but cannot upcast versions \
                 below {oldest_version}: add `upcast_from = ...` or `upcast_json = [...]` steps"
            ),
        }
    }
}

/// Every problem [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event registry has {} problem(s):\n- {}", .0.len(), display_lines(.0))]
pub struct RegistryError(pub Vec<RegistryProblem>);

fn display_lines(problems: &[RegistryProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n- ")
}

/// Checks every registered event at once and reports all problems together.
pub fn check() -> Result<(), RegistryError> {
    let registrations: Vec<&EventRegistration> =
        inventory::iter::<EventRegistration>.into_iter().collect();
    let problems = check_registrations(&registrations);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RegistryError(problems))
    }
}

fn check_registrations(registrations: &[&EventRegistration]) -> Vec<RegistryProblem> {
    let mut problems = Vec::new();
    let mut by_name: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for r in registrations {
        let types = by_name.entry(r.name).or_default();
        if !types.contains(&r.rust_type) {
            types.push(r.rust_type);
        }
    }
    for (name, rust_types) in &by_name {
        if rust_types.len() > 1 {
            problems.push(RegistryProblem::DuplicateName {
                name,
                rust_types: rust_types.clone(),
            });
        }
    }
    let mut aliases: BTreeMap<&'static str, &'static str> = BTreeMap::new();
    for r in registrations {
        for alias in r.aliases {
            let with = if by_name.contains_key(alias) {
                Some(*alias)
            } else {
                aliases.get(alias).copied().filter(|other| *other != r.name)
            };
            match with {
                Some(with) => problems.push(RegistryProblem::AliasCollision {
                    alias,
                    of: r.name,
                    with,
                }),
                None => {
                    aliases.insert(alias, r.name);
                }
            }
        }
        if r.oldest_version > 1 {
            problems.push(RegistryProblem::MissingUpcastPath {
                name: r.name,
                rust_type: r.rust_type,
                version: r.version,
                oldest_version: r.oldest_version,
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(
        name: &'static str,
        rust_type: &'static str,
        aliases: &'static [&'static str],
        oldest_version: u32,
    ) -> EventRegistration {
        EventRegistration {
            name,
            version: 2,
            aliases,
            rust_type,
            oldest_version,
            to_current_json: |_, _, _| Ok(serde_json::Value::Null),
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let a = registration("Opened", "a::Opened", &["Started"], 1);
        let b = registration("Opened", "b::Opened", &[], 1);
        let c = registration("Closed", "c::Closed", &["Opened"], 2);
        let problems = check_registrations(&[&a, &b, &c]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.contains(&RegistryProblem::DuplicateName {
            name: "Opened",
            rust_types: vec!["a::Opened", "b::Opened"],
        }));
        assert!(problems.contains(&RegistryProblem::AliasCollision {
            alias: "Opened",
            of: "Closed",
            with: "Opened",
        }));
        assert!(matches!(
            problems[2],
            RegistryProblem::MissingUpcastPath {
                oldest_version: 2,
                ..
            }
        ));
        let message = RegistryError(problems).to_string();
        assert!(message.contains("3 problem(s)"), "{message}");
    }

    #[test]
    fn the_same_type_registered_twice_is_not_a_duplicate() {
        let a = registration("Opened", "a::Opened", &[], 1);
        let again = registration("Opened", "a::Opened", &[], 1);
        assert!(check_registrations(&[&a, &again]).is_empty());
    }

    #[test]
    fn sealed_personal_fields_read_as_null() {
        let sealed = r#"{"name":{"$personal":"AAAA","subject":"u-1"},"plan":"pro"}"#;
        assert_eq!(
            redacted(sealed).as_deref(),
            Some(r#"{"name":null,"plan":"pro"}"#)
        );
        assert_eq!(redacted(r#"{"name":"Ada"}"#), None);
        assert_eq!(redacted(r#"{"note":"mentions \"$personal\""}"#), None);
    }

    #[test]
    fn two_events_sharing_an_alias_collide() {
        let a = registration("A", "x::A", &["Old"], 1);
        let b = registration("B", "x::B", &["Old"], 1);
        let problems = check_registrations(&[&a, &b]);
        assert_eq!(
            problems,
            vec![RegistryProblem::AliasCollision {
                alias: "Old",
                of: "B",
                with: "A"
            }]
        );
    }
}
