//! Idempotent appends by event id, malformed batches, and all-or-nothing batches.

use eventsrc_core::store::{AppendResult, ReadStream};

use eventsrc_core::{EventId, ExpectedVersion, Metadata, NewEvent, StoreError, StreamVersion};

use super::sample::{self, append, events, fresh_tenant, observe, read};
use super::{StoreUnderTest, expect};

/// The retry of an append that was stored returns the original result, marked
/// `already_stored`, and writes nothing, even though its expected version is stale by now.
pub async fn re_appending_a_stored_batch_is_idempotent<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let batch = events("Noted", 2);
    let original = append(&store, &s, ExpectedVersion::NoStream, batch.clone()).await;
    let before = observe(&store, &s).await;

    let retried = append(&store, &s, ExpectedVersion::NoStream, batch).await;
    assert_eq!(
        retried,
        AppendResult {
            already_stored: true,
            ..original
        },
        "a retried append (same ids, same content, same stale NoStream) returns the original \
         result with already_stored"
    );
    expect::unchanged(&before, &observe(&store, &s).await, "after the retry");
}

/// Retrying a batch stored before later ones returns that batch's own versions, position and
/// time, whatever the retry expects: a stale version, a wrong one, even the current one.
pub async fn re_appending_an_earlier_batch_returns_its_original_place<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    append(&store, &s, ExpectedVersion::NoStream, events("Noted", 1)).await;
    let batch = events("Noted", 2);
    let original = append(
        &store,
        &s,
        ExpectedVersion::Exact(StreamVersion(1)),
        batch.clone(),
    );
    let original = original.await;
    append(&store, &s, ExpectedVersion::Any, events("Noted", 1)).await;
    let before = observe(&store, &s).await;

    for expected in [
        ExpectedVersion::Exact(StreamVersion(1)),
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(StreamVersion(9)),
        ExpectedVersion::Exact(StreamVersion(4)),
        ExpectedVersion::StreamExists,
        ExpectedVersion::Any,
    ] {
        let retried = append(&store, &s, expected, batch.clone()).await;
        assert_eq!(
            retried,
            AppendResult {
                already_stored: true,
                ..original
            },
            "retrying the events stored at versions 2-3 (stream now at 4) expecting {expected}"
        );
        expect::unchanged(&before, &observe(&store, &s).await, "after the retry");
    }
}

/// An id already stored is `DuplicateEventId` when anything else differs: the type, the schema
/// version, the payload or the metadata.
pub async fn the_same_id_with_other_content_is_a_duplicate<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let id = EventId::new();
    let stored = NewEvent::raw("Noted", 1, r#"{"n":1}"#)
        .with_id(id)
        .with_metadata(Metadata::new().with_actor("ada"));
    append(&store, &s, ExpectedVersion::NoStream, vec![stored.clone()]).await;
    let before = observe(&store, &s).await;

    let with = |event_type: &'static str, version: u32, payload: &str, metadata: &Metadata| {
        let event = NewEvent::raw(event_type, version, payload).with_id(id);
        event.with_metadata(metadata.clone())
    };
    let ada = &stored.metadata;
    let changes = [
        ("event type", with("Other", 1, r#"{"n":1}"#, ada)),
        ("schema version", with("Noted", 2, r#"{"n":1}"#, ada)),
        ("payload", with("Noted", 1, r#"{"n":2}"#, ada)),
        (
            "metadata (none)",
            with("Noted", 1, r#"{"n":1}"#, &Metadata::new()),
        ),
        (
            "actor",
            with("Noted", 1, r#"{"n":1}"#, &Metadata::new().with_actor("bob")),
        ),
    ];
    for (what, changed) in changes {
        let result = store.append(&s, ExpectedVersion::Any, vec![changed]).await;
        let context = format!("the stored id with another {what}");
        expect::duplicate(result, id, &s, &context);
        expect::unchanged(&before, &observe(&store, &s).await, &context);
    }
}

/// An id stored in one stream cannot be appended to another, not even with the same content.
pub async fn the_same_id_in_another_stream_is_a_duplicate<S: StoreUnderTest>(store: S) {
    let (first, second) = (sample::stream("note-1"), sample::stream("note-2"));
    let event = NewEvent::raw("Noted", 1, "{}");
    append(&store, &first, ExpectedVersion::Any, vec![event.clone()]).await;
    let before = observe(&store, &second).await;
    let result = store
        .append(&second, ExpectedVersion::Any, vec![event.clone()])
        .await;
    let context = "an id stored in `note-1`, appended to `note-2`";
    expect::duplicate(result, event.event_id, &second, context);
    expect::unchanged(&before, &observe(&store, &second).await, context);
}

/// A batch holding one stored id and one new id is neither a retry nor new: it is a duplicate
/// (naming the stored id) and writes nothing, whichever comes first.
pub async fn a_batch_mixing_stored_and_new_ids_is_a_duplicate<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let stored = NewEvent::raw("Noted", 1, r#"{"n":1}"#);
    append(&store, &s, ExpectedVersion::Any, vec![stored.clone()]).await;
    let before = observe(&store, &s).await;

    let fresh = || NewEvent::raw("Noted", 1, r#"{"n":2}"#);
    let batches = [
        ("new id first", vec![fresh(), stored.clone()]),
        ("stored id first", vec![stored.clone(), fresh()]),
    ];
    for (order, batch) in batches {
        let result = store.append(&s, ExpectedVersion::Any, batch).await;
        let context = format!("a batch of a stored and a new id, {order}");
        expect::duplicate(result, stored.event_id, &s, &context);
        expect::unchanged(&before, &observe(&store, &s).await, &context);
    }
}

/// An id stored by one tenant, appended with the same content by another, is never taken for a
/// retry: the store either appends it to the other tenant's own stream or reports a duplicate.
/// (Whether ids are unique per tenant or per store is the backend's choice.)
pub async fn an_id_stored_by_another_tenant_is_never_a_retry<S: StoreUnderTest>(store: S) {
    let other = store.with_tenant(fresh_tenant("other"));
    let s = sample::stream("note-1");
    let event = NewEvent::raw("Noted", 1, "{}");
    append(&store, &s, ExpectedVersion::Any, events("Noted", 2)).await;
    let stored = append(&store, &s, ExpectedVersion::Any, vec![event.clone()]).await;
    let before = observe(&store, &s).await;

    let result = other
        .append(&s, ExpectedVersion::Any, vec![event.clone()])
        .await;
    let theirs = read(&other, &s, ReadStream::forward()).await;
    match result {
        Ok(appended) => {
            assert!(
                !appended.already_stored && appended.first_version == StreamVersion(1),
                "another tenant's append was taken for a retry of this tenant's: {appended:?} \
                 (this tenant's: {stored:?})"
            );
            assert_eq!(
                sample::ids(&theirs),
                [event.event_id],
                "the other tenant's stream"
            );
            assert_eq!(
                &theirs[0].tenant,
                other.tenant(),
                "the other tenant's event"
            );
        }
        Err(StoreError::DuplicateEventId { event_id, stream }) => {
            assert_eq!(
                (event_id, &stream),
                (event.event_id, &s),
                "the duplicate's fields"
            );
            assert!(theirs.is_empty(), "a rejected append wrote {theirs:#?}");
        }
        Err(other) => panic!("expected an append or DuplicateEventId, got {other:?}"),
    }
    let context = "this tenant, after another tenant appended the same id";
    expect::unchanged(&before, &observe(&store, &s).await, context);
}

/// An append with no events is `InvalidAppend` and creates nothing.
pub async fn an_empty_batch_is_invalid<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    let before = observe(&store, &s).await;
    for expected in [ExpectedVersion::Any, ExpectedVersion::NoStream] {
        let result = store.append(&s, expected, Vec::new()).await;
        let context = format!("an empty append expecting {expected}");
        expect::invalid(result, &s, &context);
        expect::unchanged(&before, &observe(&store, &s).await, &context);
    }
}

/// A batch holding one id twice is `InvalidAppend`, naming the id, and writes nothing.
pub async fn an_id_twice_in_one_batch_is_invalid<S: StoreUnderTest>(store: S) {
    let s = sample::stream("note-1");
    append(&store, &s, ExpectedVersion::Any, events("Noted", 1)).await;
    let before = observe(&store, &s).await;
    let twice = NewEvent::raw("Noted", 1, "{}");
    let batch = vec![
        NewEvent::raw("Noted", 1, "{}"),
        twice.clone(),
        twice.clone(),
    ];
    let result = store.append(&s, ExpectedVersion::Any, batch).await;
    let context = "a batch holding one id twice";
    let reason = expect::invalid(result, &s, context);
    assert!(
        reason.contains(&twice.event_id.to_string()),
        "{context}: the reason should name the id {}, but is: {reason}",
        twice.event_id
    );
    expect::unchanged(&before, &observe(&store, &s).await, context);
}

/// A batch of 50 whose last event cannot be stored leaves no trace of the other 49, and the
/// stream's next append continues its versions without a gap.
pub async fn a_batch_failing_at_its_last_event_writes_nothing<S: StoreUnderTest>(store: S) {
    let (s, elsewhere) = (sample::stream("note-1"), sample::stream("note-2"));
    let taken = NewEvent::raw("Noted", 1, r#"{"taken":true}"#);
    append(
        &store,
        &elsewhere,
        ExpectedVersion::Any,
        vec![taken.clone()],
    )
    .await;
    append(&store, &s, ExpectedVersion::Any, events("Noted", 2)).await;
    let before = observe(&store, &s).await;

    let mut batch = events("Noted", 49);
    batch.push(taken.clone());
    let expected = ExpectedVersion::Exact(StreamVersion(2));
    let result = store.append(&s, expected, batch.clone()).await;
    let context = "a 50-event batch whose last id is stored in another stream";
    expect::duplicate(result, taken.event_id, &s, context);
    expect::unchanged(&before, &observe(&store, &s).await, context);

    batch.pop();
    let appended = append(&store, &s, expected, batch).await;
    assert_eq!(
        (appended.first_version, appended.stream_version),
        (StreamVersion(3), StreamVersion(51)),
        "the same batch without the stored id, after the failed one"
    );
    let recorded = read(&store, &s, ReadStream::forward()).await;
    assert_eq!(
        sample::versions(&recorded),
        (1..=51).collect::<Vec<_>>(),
        "versions"
    );
}
