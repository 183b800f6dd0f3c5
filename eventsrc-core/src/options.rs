//! How one command runs: its metadata, the version the client last saw, an idempotency key.

use uuid::Uuid;

use crate::metadata::Idempotency;
use crate::{EventId, Metadata, StreamId, StreamVersion, Tenant};

/// How [`Repository::execute`](crate::Repository::execute), [`send`](crate::Repository::send)
/// and [`decide`](crate::Repository::decide) run one command: the metadata stamped on its
/// events, the version the client last saw (a conditional command), and an idempotency key.
///
/// [`Metadata`] converts into options, so a call that needs neither a token nor a key passes
/// metadata alone.
///
/// - [`expect_version`](Self::expect_version) makes the command conditional: it is decided
///   only if the aggregate's stream is at that version (an HTTP `If-Match`), and
///   [`ExecuteError::Stale`](crate::ExecuteError::Stale) otherwise, with no retry.
///   `StreamVersion::NONE` means "only if it does not exist yet" (`If-None-Match: *`).
/// - [`idempotency_key`](Self::idempotency_key) makes it idempotent: its events get ids
///   derived from the key, so running it again after a lost answer appends nothing and returns
///   what the first run committed, with [`Committed::replayed`](crate::Committed::replayed)
///   set. The key used again for another command is
///   [`ExecuteError::KeyReused`](crate::ExecuteError::KeyReused).
///
/// ```
/// use eventsrc::{CommandOptions, Metadata, StreamVersion};
///
/// let options = CommandOptions::from(Metadata::new().with_actor("ada"))
///     .expect_version(StreamVersion(4))
///     .idempotency_key("5b1c0f4e-retry-me")
///     .fingerprint(br#"{"name":"Ada"}"#);
/// assert_eq!(options.expected_version(), Some(StreamVersion(4)));
/// assert_eq!(options.key(), Some("5b1c0f4e-retry-me"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "options do nothing until passed to `execute`, `send` or `decide`"]
pub struct CommandOptions {
    pub(crate) metadata: Metadata,
    pub(crate) expected: Option<StreamVersion>,
    pub(crate) key: Option<String>,
    pub(crate) fingerprint: Vec<u8>,
}

impl From<Metadata> for CommandOptions {
    fn from(metadata: Metadata) -> Self {
        Self {
            metadata,
            ..Self::default()
        }
    }
}

impl CommandOptions {
    /// No metadata, no token, no key: an unconditional command, retried on conflicts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stamps `metadata` on the command's events (causation: the command's id; correlation:
    /// as given, else the command's id).
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Decides the command only if the aggregate's stream is at `version`: the client's token
    /// (the version it read, sent back in `If-Match`). Another version is
    /// [`ExecuteError::Stale`](crate::ExecuteError::Stale) before anything is decided, and a
    /// writer that moves the stream between the load and the append makes it `Stale` too:
    /// the command is never decided again on state the client has not seen.
    /// `StreamVersion::NONE` creates: the stream must have no events.
    ///
    /// A [`decide`](crate::Repository::decide) across streams applies it to the first
    /// aggregate of its tuple.
    pub fn expect_version(mut self, version: StreamVersion) -> Self {
        self.expected = Some(version);
        self
    }

    /// Makes the command idempotent under `key` (an HTTP `Idempotency-Key`), within the
    /// store's tenant: its events get ids derived from the key, and the first run's events are
    /// looked up before deciding. If they are stored, nothing is decided or appended and the
    /// first run's result comes back, with
    /// [`replayed`](crate::Committed::replayed) set, even when other events were appended to
    /// the stream since. Two runs racing with one key append once.
    ///
    /// A key that committed nothing (a no-op, a refusal, an error) leaves no trace: running it
    /// again decides again. A key already used for a command of another type, on other
    /// streams, or with another [`fingerprint`](Self::fingerprint) is
    /// [`ExecuteError::KeyReused`](crate::ExecuteError::KeyReused).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// What tells this command from another with the same key, besides its type and streams:
    /// the request body, typically (the same bytes on a retry). Without it, the key used again
    /// for the same command type on the same aggregate is taken for a retry whatever its
    /// fields say.
    pub fn fingerprint(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.fingerprint = bytes.as_ref().to_vec();
        self
    }

    /// The client's token, if any.
    pub fn expected_version(&self) -> Option<StreamVersion> {
        self.expected
    }

    /// The idempotency key, if any.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

/// The ids one run of a command uses: its own, and where its events' ids come from. Public
/// only because [`Aggregates`](crate::Aggregates)'s hidden methods take it.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct CommandIds {
    /// The command's id: every event's causation id.
    pub(crate) command_id: Uuid,
    /// With a key: the tenant its events' ids are derived for, and the stamp they carry.
    keyed: Option<(Tenant, Idempotency)>,
}

/// The namespace of command ids derived from idempotency keys (a fixed random UUID: changing
/// it would make every stored key unknown).
const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_4c0a_93b2_4e57_a8c1_2f90_5be3_7d44);

/// How many derived ids one lookup of a replay asks for at a time.
pub(crate) const LOOKUP: usize = 16;

impl CommandIds {
    /// The ids of a command named `name` on `streams`, run with `options` on `tenant`'s handle.
    pub(crate) fn new(
        options: &CommandOptions,
        tenant: &Tenant,
        name: &str,
        streams: &[&StreamId],
    ) -> Self {
        let Some(key) = &options.key else {
            // A v7 id from the per-thread generator events' ids use: `Uuid::now_v7` made a
            // system call per command and shared one lock among every thread.
            return Self {
                command_id: EventId::new().0,
                keyed: None,
            };
        };
        let command_id = Uuid::new_v5(&KEY_NAMESPACE, key.as_bytes());
        let mut described = Vec::with_capacity(64 + options.fingerprint.len());
        described.extend_from_slice(name.as_bytes());
        for stream in streams {
            described.push(b'\n');
            described.extend_from_slice(stream.as_str().as_bytes());
        }
        described.push(b'\n');
        described.extend_from_slice(&options.fingerprint);
        let stamp = Idempotency {
            key: key.clone(),
            fingerprint: Uuid::new_v5(&command_id, &described),
        };
        Self {
            command_id,
            keyed: Some((tenant.clone(), stamp)),
        }
    }

    /// The key's stamp, when the command has a key.
    pub(crate) fn stamp(&self) -> Option<&Idempotency> {
        self.keyed.as_ref().map(|(_, stamp)| stamp)
    }

    /// The id of the command's `index`th event (counted across all its streams): derived from
    /// the key and the tenant when there is a key (event ids are unique across tenants), else
    /// fresh.
    pub(crate) fn event_id(&self, index: usize) -> EventId {
        match &self.keyed {
            Some((tenant, _)) => {
                let name = format!("{}\n{index}", tenant.as_str());
                EventId(Uuid::new_v5(&self.command_id, name.as_bytes()))
            }
            None => EventId::new(),
        }
    }

    /// The metadata to stamp: the caller's, caused by this command, with the key's stamp.
    pub(crate) fn metadata(&self, metadata: &Metadata) -> Metadata {
        let mut stamped = metadata.caused_by(self.command_id);
        stamped.idempotency = self.stamp().cloned();
        stamped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(key: &str, tenant: &str, name: &str, fingerprint: &[u8]) -> CommandIds {
        let stream = StreamId::new("user", 7).unwrap_or_else(|e| panic!("{e}"));
        let options = CommandOptions::new()
            .idempotency_key(key)
            .fingerprint(fingerprint);
        CommandIds::new(&options, &Tenant::new(tenant), name, &[&stream])
    }

    #[test]
    fn a_key_derives_the_same_ids_every_time_and_other_ids_per_tenant() {
        let (first, again) = (
            ids("k", "acme", "Rename", b"a"),
            ids("k", "acme", "Rename", b"a"),
        );
        assert_eq!(first.command_id, again.command_id);
        assert_eq!(first.event_id(0), again.event_id(0));
        assert_ne!(first.event_id(0), first.event_id(1));
        let other_tenant = ids("k", "globex", "Rename", b"a");
        assert_eq!(first.command_id, other_tenant.command_id);
        assert_ne!(first.event_id(0), other_tenant.event_id(0));
        assert_ne!(
            first.command_id,
            ids("k2", "acme", "Rename", b"a").command_id
        );
    }

    #[test]
    fn the_fingerprint_tells_commands_apart() {
        let stamp = |name, fingerprint| ids("k", "acme", name, fingerprint).stamp().cloned();
        assert_eq!(stamp("Rename", b"a"), stamp("Rename", b"a"));
        assert_ne!(stamp("Rename", b"a"), stamp("Rename", b"b"));
        assert_ne!(stamp("Rename", b"a"), stamp("Delete", b"a"));
    }

    #[test]
    fn without_a_key_ids_are_fresh_and_nothing_is_stamped() {
        let stream = StreamId::new("user", 7).unwrap_or_else(|e| panic!("{e}"));
        let plain = CommandIds::new(&CommandOptions::new(), &Tenant::default(), "X", &[&stream]);
        assert!(plain.stamp().is_none());
        assert_ne!(plain.event_id(0), plain.event_id(0));
        let metadata = plain.metadata(&Metadata::new());
        assert_eq!(metadata.causation_id, Some(plain.command_id));
        assert!(metadata.idempotency.is_none());
    }
}
