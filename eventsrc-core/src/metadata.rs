//! What is known about an event besides its payload: who caused it and as part of what.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Correlation, causation, actor and free key/values stored beside every event.
///
/// The correlation id ties together everything one request caused; the causation id names the
/// message (command or event) that directly caused this event. [`Repository::execute`] sets the
/// causation to the command's id and, when no correlation is given, the correlation too.
///
/// ```
/// use eventsrc::Metadata;
///
/// let metadata = Metadata::new().with_actor("sales-rep-7").with("channel", "phone");
/// assert_eq!(metadata.actor.as_deref(), Some("sales-rep-7"));
/// assert_eq!(metadata.get("channel"), Some(&serde_json::json!("phone")));
/// ```
///
/// [`Repository::execute`]: crate::Repository::execute
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// Ties together every message one original request caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The message that directly caused this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Who acted: a user, a service, a job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The idempotency key of the command that appended this event and the fingerprint of that
    /// command, when the caller gave a key
    /// ([`CommandOptions::idempotency_key`](crate::CommandOptions::idempotency_key)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<Idempotency>,
    /// Free-form key/values (a notification id, a request id, a client version...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    #[must_use]
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the actor.
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Adds a free-form key/value.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// A free-form value by key.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.extra.get(key)
    }

    /// Whether nothing at all is set (stores may skip writing it).
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none()
            && self.causation_id.is_none()
            && self.actor.is_none()
            && self.idempotency.is_none()
            && self.extra.is_empty()
    }

    /// The metadata for a message caused by `cause`: same correlation (or `cause` itself when
    /// none was set), same actor and extras, causation `cause`.
    #[must_use]
    pub fn caused_by(&self, cause: Uuid) -> Self {
        let mut next = self.clone();
        next.correlation_id = Some(self.correlation_id.unwrap_or(cause));
        next.causation_id = Some(cause);
        next
    }
}

/// What an idempotent command stamps on its events: the caller's key and a fingerprint of the
/// command (its name, its streams and what the caller gave as
/// [`fingerprint`](crate::CommandOptions::fingerprint)), so that the key used again for
/// another command is told apart from a retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idempotency {
    /// The key, as the caller gave it (an HTTP `Idempotency-Key`).
    pub key: String,
    /// The command's fingerprint.
    pub fingerprint: Uuid,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap; the lint guards data from stores and users
mod tests {
    use super::*;

    #[test]
    fn empty_metadata_serializes_to_an_empty_object() {
        assert_eq!(serde_json::to_string(&Metadata::new()).unwrap(), "{}");
    }

    #[test]
    fn round_trips_every_field() {
        let metadata = Metadata::new()
            .with_correlation_id(Uuid::now_v7())
            .with_causation_id(Uuid::now_v7())
            .with_actor("ada")
            .with("n", 3);
        let json = serde_json::to_string(&metadata).unwrap();
        assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), metadata);
    }

    #[test]
    fn floats_read_back_exactly() {
        // Written in its shortest form, this float used to read back one unit in the last place
        // off, so metadata read from a store differed from the metadata appended (and an
        // idempotent retry compares the two).
        let metadata = Metadata::new().with("x", 8.866_666_666_666_668e74);
        let json = serde_json::to_string(&metadata).unwrap();
        assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), metadata);
        // Read from longer text, it is the float nearest to the text, and writes back as such.
        let read: Metadata =
            serde_json::from_str(r#"{"0e":6666666666666666666666888868888888861}"#).unwrap();
        let json = serde_json::to_string(&read).unwrap();
        assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), read);
        assert_eq!(
            read.get("0e"),
            Some(&serde_json::json!(6.666_666_666_666_667e36))
        );
    }

    #[test]
    fn caused_by_keeps_an_existing_correlation() {
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let started = Metadata::new().caused_by(first);
        assert_eq!(started.correlation_id, Some(first));
        let next = started.caused_by(second);
        assert_eq!(next.correlation_id, Some(first));
        assert_eq!(next.causation_id, Some(second));
    }
}
