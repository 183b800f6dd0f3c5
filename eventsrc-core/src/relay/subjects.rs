//! [`Subjects`]: where a relay publishes each event.

use std::fmt;
use std::sync::Arc;

use crate::RecordedEvent;

/// Where a relay publishes each event: a NATS subject or an AMQP routing key, from a template
/// or a function.
///
/// A template's placeholders are `{tenant}`, `{category}`, `{event_type}`, `{stream}` and
/// `{id}` (the stream's id without its category). Subjects are dot-separated tokens, and
/// brokers give `*`, `>` and `#` meanings of their own, so in the values filled in whitespace,
/// `*`, `>` and `#` become `_`, and so do dots, except in `{event_type}`, whose dots
/// (`lead.opened`) are kept so that subscribers can use wildcards on them.
///
/// ```
/// use eventsrc::relay::Subjects;
///
/// let subjects = Subjects::template("crm.{tenant}.{category}.{event_type}")?;
/// assert_eq!(subjects.to_string(), "crm.{tenant}.{category}.{event_type}");
///
/// let error = Subjects::template("crm.{kind}").unwrap_err();
/// assert!(error.to_string().contains("`{kind}`"));
/// # Ok::<(), eventsrc::relay::InvalidSubjects>(())
/// ```
#[derive(Clone)]
pub struct Subjects(Kind);

#[derive(Clone)]
enum Kind {
    Template(String, Vec<Piece>),
    With(Arc<dyn Fn(&RecordedEvent) -> String + Send + Sync>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Tenant,
    Category,
    EventType,
    Stream,
    Id,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A subject template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid subject template `{template}`: {reason}")]
pub struct InvalidSubjects {
    /// The template.
    pub template: String,
    /// What is wrong with it, and what to write instead.
    pub reason: String,
}

const FIELDS: &str = "`{tenant}`, `{category}`, `{event_type}`, `{stream}` or `{id}`";

impl Subjects {
    /// The default template.
    pub const DEFAULT: &'static str = "events.{tenant}.{category}.{event_type}";

    /// Subjects from a template such as `events.{tenant}.{category}.{event_type}`.
    pub fn template(template: &str) -> Result<Self, InvalidSubjects> {
        let invalid = |reason: String| InvalidSubjects {
            template: template.to_owned(),
            reason,
        };
        if template.is_empty() {
            return Err(invalid(format!(
                "it is empty; write one such as `{}`",
                Self::DEFAULT
            )));
        }
        if let Some(c) = template
            .chars()
            .find(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(format!(
                "it holds {c:?}; subjects cannot hold whitespace"
            )));
        }
        if template.starts_with('.') || template.ends_with('.') || template.contains("..") {
            return Err(invalid(
                "it has an empty token: dots separate tokens, so none may lead, trail or double"
                    .to_owned(),
            ));
        }
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(invalid(format!(
                    "a `}}` with no `{{` before it; use {FIELDS}"
                )));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(invalid(format!("a `{{` is not closed; use {FIELDS}")));
            };
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let name = &rest[open + 1..open + close];
            let field = match name {
                "tenant" => Field::Tenant,
                "category" => Field::Category,
                "event_type" => Field::EventType,
                "stream" => Field::Stream,
                "id" => Field::Id,
                other => {
                    return Err(invalid(format!(
                        "`{{{other}}}` is not a placeholder; use {FIELDS}"
                    )));
                }
            };
            pieces.push(Piece::Field(field));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self(Kind::Template(template.to_owned(), pieces)))
    }

    /// Subjects from a function of the event; the relay publishes to what it returns as is.
    pub fn with(subject: impl Fn(&RecordedEvent) -> String + Send + Sync + 'static) -> Self {
        Self(Kind::With(Arc::new(subject)))
    }

    /// The subject of `record`.
    ///
    /// ```
    /// # use eventsrc::relay::Subjects;
    /// # fn check(record: &eventsrc::RecordedEvent) {
    /// // A `lead.opened` event in `lead-7` of the default tenant:
    /// assert_eq!(Subjects::default().subject(record), "events.default.lead.lead.opened");
    /// # }
    /// ```
    pub fn subject(&self, record: &RecordedEvent) -> String {
        match &self.0 {
            Kind::With(subject) => subject(record),
            Kind::Template(_, pieces) => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => out.push_str(text),
                        Piece::Field(Field::Tenant) => {
                            token(&mut out, record.tenant.as_str(), false)
                        }
                        Piece::Field(Field::Category) => {
                            token(&mut out, record.stream.category(), false);
                        }
                        Piece::Field(Field::EventType) => {
                            token(&mut out, &record.event_type, true);
                        }
                        Piece::Field(Field::Stream) => {
                            token(&mut out, record.stream.as_str(), false);
                        }
                        Piece::Field(Field::Id) => token(&mut out, record.stream.id(), false),
                    }
                }
                out
            }
        }
    }
}

/// Appends `value` as subject text: whitespace, wildcards (and dots, unless `dots`) as `_`;
/// an empty value, or an empty token between dots, as `_`.
fn token(out: &mut String, value: &str, dots: bool) {
    if value.is_empty() {
        out.push('_');
        return;
    }
    let mut last = '.';
    for c in value.chars() {
        let c = match c {
            '.' if dots && last != '.' => '.',
            c if c.is_whitespace() || c.is_control() || matches!(c, '*' | '>' | '#' | '.') => '_',
            c => c,
        };
        out.push(c);
        last = c;
    }
    if last == '.' {
        out.push('_');
    }
}

impl Default for Subjects {
    /// `events.{tenant}.{category}.{event_type}`.
    fn default() -> Self {
        match Self::template(Self::DEFAULT) {
            Ok(subjects) => subjects,
            Err(_) => unreachable!("the default template is valid"),
        }
    }
}

impl fmt::Display for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Template(template, _) => f.write_str(template),
            Kind::With(_) => f.write_str("(a function)"),
        }
    }
}

impl fmt::Debug for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subjects({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventId, GlobalPosition, Metadata, StreamVersion, Tenant, Timestamp};

    fn record(tenant: &str, stream: &str, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            event_id: EventId::new(),
            stream: stream.parse().unwrap(),
            stream_version: StreamVersion(1),
            global_position: GlobalPosition::new(1, 1),
            tenant: Tenant::new(tenant),
            event_type: event_type.into(),
            schema_version: 1,
            payload: "{}".into(),
            metadata: Metadata::new(),
            recorded_at: Timestamp::from_micros(0),
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let subjects =
            Subjects::template("x.{tenant}.{category}.{id}.{stream}.{event_type}").unwrap();
        let r = record("acme", "lead-7", "lead.opened");
        assert_eq!(subjects.subject(&r), "x.acme.lead.7.lead-7.lead.opened");
    }

    #[test]
    fn values_cannot_add_tokens_or_wildcards() {
        let r = record("a b", "lead-x.y*>#", "odd..type.");
        assert_eq!(
            Subjects::default().subject(&r),
            "events.a_b.lead.odd._type._"
        );
        assert_eq!(
            Subjects::template("s.{id}").unwrap().subject(&r),
            "s.x_y___"
        );
        assert_eq!(
            Subjects::template("s.{tenant}")
                .unwrap()
                .subject(&record("", "a-1", "t")),
            "s._"
        );
    }

    #[test]
    fn bad_templates_say_what_to_write() {
        for (template, says) in [
            ("", "it is empty"),
            ("a b", "whitespace"),
            ("a..b", "empty token"),
            (".a", "empty token"),
            ("a.{kind}", "`{kind}` is not a placeholder"),
            ("a.{tenant", "not closed"),
            ("a.tenant}", "no `{`"),
        ] {
            let error = Subjects::template(template).unwrap_err();
            assert!(error.to_string().contains(says), "{template}: {error}");
        }
    }

    #[test]
    fn a_function_decides_alone() {
        let subjects = Subjects::with(|r| format!("custom.{}", r.stream_version));
        assert_eq!(subjects.subject(&record("t", "a-1", "x")), "custom.1");
        assert_eq!(subjects.to_string(), "(a function)");
    }
}
