//! The one rule for a batch whose event ids are already stored: an idempotent retry, or a
//! duplicate id. Every backend looks up the stored copies its own way and lets
//! [`already_stored`] decide, so that all of them answer alike.

use crate::store::{AppendResult, StreamAppend};
use crate::{
    EventId, GlobalPosition, Metadata, NewEvent, RecordedEvent, StoreError, StreamId,
    StreamVersion, Tenant, Timestamp,
};

/// The stored copy of an event whose id an appended batch carries, as a backend read it back:
/// what [`already_stored`] compares with the new event.
///
/// Backends hand it out borrowed from their own storage or rows; a stored record that cannot
/// be read into one is the backend's [`StoreError::Corrupt`], not a mismatch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredCopy<'a> {
    /// The tenant it is stored under.
    pub tenant: &'a str,
    /// The stream it is stored in.
    pub stream: &'a str,
    /// Its version in that stream.
    pub stream_version: StreamVersion,
    /// Its stored type name.
    pub event_type: &'a str,
    /// Its schema version.
    pub schema_version: u32,
    /// Its payload, exactly as stored.
    pub payload: &'a str,
    /// Its metadata (empty when none was stored).
    pub metadata: &'a Metadata,
    /// Its global position.
    pub position: GlobalPosition,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

impl<'a> StoredCopy<'a> {
    /// The stored copy of a whole record, for a backend that reads the copies back as
    /// [`RecordedEvent`]s.
    ///
    /// ```
    /// use eventsrc::backend::StoredCopy;
    /// use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StreamId};
    /// use eventsrc::store::ReadStream;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let store = MemoryStore::new();
    /// let cart = StreamId::new("cart", 7)?;
    /// store.append(&cart, ExpectedVersion::Any, vec![NewEvent::raw("ItemAdded", 1, "{}")]).await?;
    /// let records = store.read_stream(&cart, ReadStream::forward()).await?;
    /// let copy = StoredCopy::of(&records[0]);
    /// assert_eq!((copy.stream, copy.event_type, copy.payload), ("cart-7", "ItemAdded", "{}"));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of(record: &'a RecordedEvent) -> Self {
        Self {
            tenant: record.tenant.as_str(),
            stream: record.stream.as_str(),
            stream_version: record.stream_version,
            event_type: &record.event_type,
            schema_version: record.schema_version,
            payload: &record.payload,
            metadata: &record.metadata,
            position: record.global_position,
            recorded_at: record.recorded_at,
        }
    }

    /// Whether `new` carries the same content: type, schema version, payload (byte for byte)
    /// and metadata.
    fn same_content(&self, new: &NewEvent) -> bool {
        self.event_type == new.event_type
            && self.schema_version == new.schema_version
            && self.payload == new.payload
            && *self.metadata == new.metadata
    }
}

/// Decides what an append of `events` to `stream` is, given the stored copy of each event's
/// id (`stored` yields one item per event, in batch order: `None` where the id is not stored):
///
/// - no id is stored: `Ok(None)`, a fresh batch to append;
/// - every id is stored in this tenant and stream, at consecutive versions in batch order,
///   with the same content: `Ok(Some(result))`, the original append's result with
///   [`already_stored`](AppendResult::already_stored) set (an idempotent retry; nothing is to
///   be written, whatever the expected version says);
/// - anything else: [`StoreError::DuplicateEventId`] naming the first stored id when only some
///   are stored, else the first event stored elsewhere or with other content.
///
/// The rule [`EventStore::append`](crate::EventStore::append) documents; every backend calls
/// this instead of writing it again. It reads `stored` lazily and stops as soon as the answer
/// is known, so a backend may look each id up as it is asked for.
///
/// ```
/// use eventsrc::backend::{StoredCopy, already_stored};
/// use eventsrc::{GlobalPosition, Metadata, NewEvent, StoreError, StreamId, StreamVersion, Tenant, Timestamp};
///
/// let tenant = Tenant::default();
/// let cart = StreamId::new("cart", 7)?;
/// let added = NewEvent::raw("ItemAdded", 1, r#"{"sku":"laptop"}"#);
/// let metadata = Metadata::new();
/// let copy = StoredCopy {
///     tenant: tenant.as_str(),
///     stream: cart.as_str(),
///     stream_version: StreamVersion(3),
///     event_type: "ItemAdded",
///     schema_version: 1,
///     payload: r#"{"sku":"laptop"}"#,
///     metadata: &metadata,
///     position: GlobalPosition::new(9, 9),
///     recorded_at: Timestamp::from_micros(1),
/// };
/// let batch = [added.clone()];
///
/// // Not stored yet: append it.
/// assert_eq!(already_stored(&tenant, &cart, &batch, [None])?, None);
/// // Stored with the same content: a retry, answered with the original result.
/// let retried = already_stored(&tenant, &cart, &batch, [Some(copy)])?.unwrap();
/// assert!(retried.already_stored);
/// assert_eq!(retried.stream_version, StreamVersion(3));
/// // Stored with another payload: the id is taken.
/// let other = StoredCopy { payload: r#"{"sku":"phone"}"#, ..copy };
/// assert!(matches!(
///     already_stored(&tenant, &cart, &batch, [Some(other)]),
///     Err(StoreError::DuplicateEventId { event_id, .. }) if event_id == added.event_id
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn already_stored<'a>(
    tenant: &Tenant,
    stream: &StreamId,
    events: &[NewEvent],
    stored: impl IntoIterator<Item = Option<StoredCopy<'a>>>,
) -> Result<Option<AppendResult>, StoreError> {
    let duplicate = |event_id: EventId| StoreError::DuplicateEventId {
        event_id,
        stream: stream.clone(),
    };
    let mut stored = stored.into_iter();
    // The first stored id, and whether any id is missing: together they settle the answer.
    let mut first_stored: Option<EventId> = None;
    let mut missing = false;
    // The first event stored elsewhere, out of order or with other content.
    let mut mismatch: Option<EventId> = None;
    let mut first_version = StreamVersion::NONE;
    let mut last: Option<StoredCopy<'a>> = None;
    for (offset, new) in events.iter().enumerate() {
        let Some(copy) = stored.next().flatten() else {
            missing = true;
            if first_stored.is_some() {
                break;
            }
            continue;
        };
        if first_stored.is_none() {
            first_stored = Some(new.event_id);
            first_version = copy.stream_version;
            if missing {
                break;
            }
        }
        let in_place = copy.tenant == tenant.as_str()
            && copy.stream == stream.as_str()
            && copy.stream_version == first_version.advance(offset as u64);
        if mismatch.is_none() && !(in_place && copy.same_content(new)) {
            mismatch = Some(new.event_id);
        }
        last = Some(copy);
    }
    let Some(first_stored) = first_stored else {
        return Ok(None);
    };
    if missing {
        return Err(duplicate(first_stored));
    }
    match (mismatch, last) {
        (Some(event_id), _) => Err(duplicate(event_id)),
        (None, Some(last)) => Ok(Some(AppendResult {
            first_version,
            stream_version: last.stream_version,
            position: last.position,
            recorded_at: last.recorded_at,
            already_stored: true,
        })),
        (None, None) => Err(duplicate(first_stored)),
    }
}

/// Rejects an append across streams ([`EventStore::append_streams`](crate::EventStore::append_streams))
/// that no store may accept: a stream in two parts, or an event id twice in the whole batch ([`StoreError::InvalidAppend`], naming the stream). Every backend
/// calls it first, like [`check_batch`](crate::backend::check_batch) for one stream.
///
/// ```
/// use eventsrc::backend::check_appends;
/// use eventsrc::store::StreamAppend;
/// use eventsrc::{ExpectedVersion, NewEvent, StoreError, StreamId};
///
/// let user = StreamId::new("user", 7)?;
/// let part = || StreamAppend::new(user.clone(), ExpectedVersion::Any, vec![NewEvent::raw("Renamed", 1, "{}")]);
/// assert!(check_appends(&[part()]).is_ok());
/// assert!(matches!(check_appends(&[part(), part()]), Err(StoreError::InvalidAppend { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_appends(appends: &[StreamAppend]) -> Result<(), StoreError> {
    for (i, part) in appends.iter().enumerate() {
        // A part without events only checks its stream's version.
        if !part.events.is_empty() {
            crate::backend::check_batch(&part.stream, &part.events)?;
        }
        if appends[..i].iter().any(|p| p.stream == part.stream) {
            return Err(StoreError::InvalidAppend {
                stream: part.stream.clone(),
                reason: "the stream appears in two parts of one append; put its events in one"
                    .to_owned(),
            });
        }
    }
    if appends.len() > 1 {
        let mut seen = std::collections::HashSet::new();
        for part in appends {
            if let Some(twice) = part.events.iter().find(|e| !seen.insert(e.event_id)) {
                return Err(StoreError::InvalidAppend {
                    stream: part.stream.clone(),
                    reason: format!("event id {} appears twice in one batch", twice.event_id),
                });
            }
        }
    }
    Ok(())
}

/// Settles an append across streams from [`already_stored`]'s answer for each part, in order
/// (a part without events answers `Ok(None)`; it is left out of the decision):
///
/// - every part with events stored: an idempotent retry, `Ok(Some(results))`, where a part
///   without events reports `StreamVersion::NONE` at `GlobalPosition::START` (it was not
///   checked);
/// - none stored: a fresh append, `Ok(None)`;
/// - some stored while others are not: [`StoreError::DuplicateEventId`] naming the first
///   stored part's first event. A part's own error (a duplicate id) is returned as it is.
///
/// ```
/// use eventsrc::backend::already_stored_parts;
///
/// assert!(matches!(already_stored_parts(vec![Ok(None), Ok(None)], &[]), Ok(None)));
/// ```
pub fn already_stored_parts(
    answers: Vec<Result<Option<AppendResult>, StoreError>>,
    appends: &[StreamAppend],
) -> Result<Option<Vec<AppendResult>>, StoreError> {
    let answers = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
    let with_events = |i: &usize| appends.get(*i).is_none_or(|part| !part.events.is_empty());
    let stored = (0..answers.len())
        .filter(with_events)
        .filter(|i| answers[*i].is_some())
        .count();
    let carrying = (0..answers.len()).filter(with_events).count();
    if stored == 0 {
        return Ok(None);
    }
    if stored == carrying {
        let recorded_at = answers.iter().flatten().map(|r| r.recorded_at).next();
        let unchecked = |recorded_at| AppendResult {
            first_version: StreamVersion(1),
            stream_version: StreamVersion::NONE,
            position: GlobalPosition::START,
            recorded_at,
            already_stored: true,
        };
        return Ok(Some(
            answers
                .into_iter()
                .map(|answer| match answer {
                    Some(result) => result,
                    None => unchecked(recorded_at.unwrap_or(Timestamp::from_micros(0))),
                })
                .collect(),
        ));
    }
    // Some parts are stored and others are not: name the first stored part's first event.
    let stored = answers
        .iter()
        .zip(appends)
        .find(|(answer, _)| answer.is_some());
    match stored.and_then(|(_, part)| part.events.first().map(|event| (part, event))) {
        Some((part, event)) => Err(StoreError::DuplicateEventId {
            event_id: event.event_id,
            stream: part.stream.clone(),
        }),
        // Only answers that do not line up with the parts get here.
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        tenant: Tenant,
        stream: StreamId,
        metadata: Metadata,
        events: Vec<NewEvent>,
    }

    impl Fixture {
        fn new(len: usize) -> Self {
            Self {
                tenant: Tenant::default(),
                stream: StreamId::new("cart", 1).unwrap(),
                metadata: Metadata::new(),
                events: (0..len)
                    .map(|i| NewEvent::raw("Noted", 1, format!("{{\"n\":{i}}}")))
                    .collect(),
            }
        }

        /// The copy of event `i` as stored by the original append, at version `i + 4`.
        fn copy(&self, i: usize) -> StoredCopy<'_> {
            let event = &self.events[i];
            StoredCopy {
                tenant: self.tenant.as_str(),
                stream: self.stream.as_str(),
                stream_version: StreamVersion(i as u64 + 4),
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
                metadata: &self.metadata,
                position: GlobalPosition::new(10, i as u64 + 10),
                recorded_at: Timestamp::from_micros(5),
            }
        }

        fn check<'a>(
            &self,
            stored: impl IntoIterator<Item = Option<StoredCopy<'a>>>,
        ) -> Result<Option<AppendResult>, StoreError> {
            already_stored(&self.tenant, &self.stream, &self.events, stored)
        }

        fn duplicate_of(&self, result: Result<Option<AppendResult>, StoreError>) -> usize {
            match result {
                Err(StoreError::DuplicateEventId { event_id, stream }) => {
                    assert_eq!(stream, self.stream);
                    self.events
                        .iter()
                        .position(|e| e.event_id == event_id)
                        .unwrap()
                }
                other => panic!("expected a duplicate id, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_fresh_batch_is_appended_and_a_whole_retry_returns_the_original_result() {
        let f = Fixture::new(3);
        assert_eq!(f.check([None, None, None]).unwrap(), None);
        let retried = f.check((0..3).map(|i| Some(f.copy(i)))).unwrap().unwrap();
        assert_eq!(
            retried,
            AppendResult {
                first_version: StreamVersion(4),
                stream_version: StreamVersion(6),
                position: GlobalPosition::new(10, 12),
                recorded_at: Timestamp::from_micros(5),
                already_stored: true,
            }
        );
    }

    #[test]
    fn a_partly_stored_batch_names_its_first_stored_id() {
        let f = Fixture::new(3);
        assert_eq!(f.duplicate_of(f.check([None, Some(f.copy(1)), None])), 1);
        assert_eq!(
            f.duplicate_of(f.check([Some(f.copy(0)), Some(f.copy(1)), None])),
            0
        );
        // A lookup that yields fewer copies than events counts the rest as missing.
        assert_eq!(f.duplicate_of(f.check([Some(f.copy(0))])), 0);
    }

    #[test]
    fn a_copy_elsewhere_or_with_other_content_names_that_event() {
        let f = Fixture::new(3);
        let other = Tenant::from("acme");
        let elsewhere = StreamId::new("cart", 2).unwrap();
        let metadata = Metadata::new().with_actor("ada");
        for (i, change) in [
            (
                1,
                StoredCopy {
                    payload: "{}",
                    ..f.copy(1)
                },
            ),
            (
                2,
                StoredCopy {
                    event_type: "Other",
                    ..f.copy(2)
                },
            ),
            (
                1,
                StoredCopy {
                    schema_version: 2,
                    ..f.copy(1)
                },
            ),
            (
                0,
                StoredCopy {
                    metadata: &metadata,
                    ..f.copy(0)
                },
            ),
            (
                1,
                StoredCopy {
                    tenant: other.as_str(),
                    ..f.copy(1)
                },
            ),
            (
                2,
                StoredCopy {
                    stream: elsewhere.as_str(),
                    ..f.copy(2)
                },
            ),
            (
                1,
                StoredCopy {
                    stream_version: StreamVersion(9),
                    ..f.copy(1)
                },
            ),
        ] {
            let stored = (0..3).map(|j| Some(if j == i { change } else { f.copy(j) }));
            assert_eq!(f.duplicate_of(f.check(stored)), i, "{change:?}");
        }
    }
}
