//! Spans carry their fields, and a command run by a reactor's effect is a child of the batch
//! that caused it.
//!
//! This test has its own binary: `tracing` caches whether a callsite is enabled, and a test
//! running the same callsites on another thread with no subscriber could fix that answer to
//! "never" while this one's scoped subscriber is installed.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Add, Lead, OpenLead, Tally};
use eventsrc::runner::Perform;
use eventsrc::telemetry::spans as names_of;
use eventsrc::{Metadata, Reactions, Reactor, RecordedEvent, Repository, Runner};

#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Refused;

/// A span as a layer saw it: name, fields (as text), and its parent's index in the list.
#[derive(Debug, Clone)]
struct SeenSpan {
    name: &'static str,
    fields: std::collections::BTreeMap<String, String>,
    parent: Option<usize>,
}

/// Records every span, its fields (also those recorded later) and its parent.
#[derive(Clone, Default)]
struct SpanLog {
    spans: Arc<Mutex<Vec<SeenSpan>>>,
    ids: Arc<Mutex<std::collections::HashMap<u64, usize>>>,
}

struct Fields<'a>(&'a mut std::collections::BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanLog
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = std::collections::BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let ids = self.ids.lock().unwrap();
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .and_then(|parent| ids.get(&parent.id().into_u64()).copied());
        drop(ids);
        let mut spans = self.spans.lock().unwrap();
        spans.push(SeenSpan {
            name: attrs.metadata().name(),
            fields,
            parent,
        });
        self.ids
            .lock()
            .unwrap()
            .insert(id.into_u64(), spans.len() - 1);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(&index) = self.ids.lock().unwrap().get(&id.into_u64()) else {
            return;
        };
        values.record(&mut Fields(&mut self.spans.lock().unwrap()[index].fields));
    }
}

/// Opens a lead for every tally event, as a command caused by that event.
struct Follow;

impl Reactor for Follow {
    const NAME: &'static str = "follow";
    type Event = common::Added;
    type Effect = ();
    type Error = Refused;
    fn react(&mut self, _: common::Added, _: &RecordedEvent) -> Result<Vec<()>, Refused> {
        Ok(vec![()])
    }
}

/// Runs the reactor's effects: a command on a repository.
struct Commands(Repository<eventsrc::MemoryStore>);

impl Perform<()> for Commands {
    type Error = Refused;
    async fn perform(&self, (): (), record: &RecordedEvent) -> Result<(), Refused> {
        let metadata = record.metadata.caused_by(record.event_id.0);
        self.0
            .execute::<Lead, _>(&9, OpenLead::named("Grace"), metadata)
            .await
            .map(drop)
            .map_err(|_| Refused)
    }
}

#[test]
fn spans_carry_their_fields_and_follow_a_command_through_a_reactor() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::registry::Registry;

    let log = SpanLog::default();
    let subscriber = Registry::default().with(log.clone());
    let correlation = eventsrc::Uuid::from_u128(0x5eed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let added = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let store = eventsrc::MemoryStore::new();
            let repository = Repository::new(store.clone()).with_snapshots(store.clone());
            let metadata = Metadata::new().with_correlation_id(correlation);
            let added = repository
                .execute::<Tally, _>(&"t1".to_owned(), Add(vec![5]), metadata)
                .await
                .unwrap();
            let follow = Reactions::new(
                Follow,
                Commands(Repository::new(store.clone())),
                store.clone(),
            );
            Runner::new(store.clone(), follow).catch_up().await.unwrap();
            added
        })
    });

    let spans = log.spans.lock().unwrap().clone();
    let find = |name: &str, field: &str, value: &str| {
        spans
            .iter()
            .position(|s| s.name == name && s.fields.get(field).is_some_and(|v| v == value))
            .unwrap_or_else(|| panic!("no {name} span with {field} = {value}: {spans:#?}"))
    };
    let field = |index: usize, field: &str| -> String {
        spans[index].fields.get(field).cloned().unwrap_or_else(|| {
            panic!(
                "{} has no `{field}`: {:#?}",
                spans[index].name, spans[index]
            )
        })
    };
    let position = added.global_position.unwrap().to_string();
    let event_id = added.event_ids[0].to_string();

    let command = find(names_of::COMMAND, "command", "Add");
    assert_eq!(field(command, "correlation_id"), correlation.to_string());
    assert_eq!(field(command, "stream"), "tally-t1");
    assert_eq!(field(command, "tenant"), "default");
    assert_eq!(field(command, "outcome"), "committed");
    assert_eq!(field(command, "attempts"), "1");
    assert_eq!(field(command, "stream_version"), "1");
    assert_eq!(field(command, "global_position"), position);

    let load = find(names_of::LOAD, "aggregate", "tally");
    assert_eq!(spans[load].parent, Some(command));
    assert_eq!(
        (
            field(load, "version"),
            field(load, "events"),
            field(load, "snapshot")
        ),
        ("0".into(), "0".into(), "false".into())
    );
    let append = find(names_of::APPEND, "event_type", "tally.added");
    assert_eq!(spans[append].parent, Some(command));
    assert_eq!(field(append, "events"), "1");

    let batch = find(names_of::BATCH, "consumer", "follow");
    let react = find(names_of::REACT, "event_id", &event_id);
    assert_eq!(spans[react].parent, Some(batch));
    assert_eq!(field(react, "correlation_id"), correlation.to_string());
    assert_eq!(field(react, "global_position"), position);
    assert_eq!(field(react, "event_type"), "tally.added");

    // The reactor's command: inside the event's span, same correlation, caused by the event.
    let effect = find(names_of::COMMAND, "command", "OpenLead");
    assert_eq!(spans[effect].parent, Some(react));
    assert_eq!(field(effect, "correlation_id"), correlation.to_string());
    assert_eq!(field(effect, "causation_id"), event_id);
    assert_eq!(field(effect, "outcome"), "committed");
}
