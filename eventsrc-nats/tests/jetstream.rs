//! The JetStream relay and `Inbound` against a real NATS server (`EVENTSRC_NATS_URL`, by
//! default `nats://127.0.0.1:4222`; a server that cannot be reached fails the tests). Each test
//! uses JetStream streams and subjects of its own.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use eventsrc::nats::async_nats::jetstream::consumer::{AckPolicy, pull};
use eventsrc::nats::{Inbound, InboundError, JetStream};
use eventsrc::relay::{Relay, Subjects, headers, incoming};
use eventsrc::runner::Retry;
use eventsrc::store::ReadAll;
use eventsrc::{CheckpointStore, EventStore, GlobalPosition, MemoryStore, Runner, Tenants};
use futures_util::StreamExt;
use support::{Recorder, append_many, connect, fresh_stream, read_all, run, unique};

#[test]
fn publishes_every_event_in_order_with_its_headers_and_reads_back_the_same() {
    run(async {
        let (nats, name) = fresh_stream("ORDER").await;
        let store = MemoryStore::new();
        append_many(&store, 40, 5).await;
        let relay = Relay::new("out", nats.clone(), store.clone())
            .subjects(Subjects::template(&format!("{name}.{{category}}.{{event_type}}")).unwrap());
        let mut runner = Runner::new(store.clone(), relay).batch_size(64);
        runner.catch_up().await.unwrap();
        assert_eq!(
            store.load_checkpoint("out").await.unwrap(),
            Some(store.head_position().await.unwrap())
        );

        let stored = store
            .read_all(ReadAll::after(GlobalPosition::START).limit(1000))
            .await
            .unwrap();
        let received = read_all(&nats, &name).await;
        assert_eq!(received.len(), stored.len(), "one message per event");
        for (message, record) in received.iter().zip(&stored) {
            assert_eq!(
                message.subject,
                format!("{name}.{}.{}", record.stream.category(), record.event_type)
            );
            assert_eq!(
                message.headers.get("Nats-Msg-Id").unwrap(),
                &record.event_id.to_string()
            );
            let back = incoming(
                |h| message.headers.get(h).map(String::as_str),
                &message.payload,
            )
            .unwrap();
            assert_eq!(&back, record, "the message reads back as the stored event");
        }
        assert_eq!(
            received[0]
                .headers
                .get(headers::CORRELATION_ID)
                .map(String::as_str),
            Some("00000000-0000-0000-0000-00000000c0de")
        );
    });
}

#[test]
fn a_second_publish_of_the_same_events_is_dropped_by_the_server() {
    run(async {
        let (nats, name) = fresh_stream("DEDUP").await;
        let store = MemoryStore::new();
        append_many(&store, 10, 3).await;
        let subjects = Subjects::template(&format!("{name}.{{category}}")).unwrap();
        // Two relays with checkpoints of their own: the second publishes everything again,
        // as a relay restarted from an old checkpoint would.
        for relay in ["first", "again"] {
            let relay = Relay::new(relay, nats.clone(), store.clone()).subjects(subjects.clone());
            Runner::new(store.clone(), relay).catch_up().await.unwrap();
        }
        assert_eq!(read_all(&nats, &name).await.len(), 30);
    });
}

#[test]
fn a_subject_no_stream_takes_is_parked_then_replayed_once_a_stream_takes_it() {
    run(async {
        let nats = connect().await;
        let name = unique("PARK");
        let stream = nats
            .ensure_stream(
                &name,
                &[&format!("{name}.lead.>")],
                Duration::from_secs(120),
            )
            .await
            .unwrap();
        let store = MemoryStore::new();
        append_many(&store, 6, 2).await; // lead-0, order-1, lead-2, ...
        let relay = Relay::new("out", nats.clone(), store.clone())
            .subjects(Subjects::template(&format!("{name}.{{category}}.{{id}}")).unwrap())
            .retry(Retry {
                attempts: 2,
                delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
            });
        let mut runner = Runner::new(store.clone(), relay);
        runner.catch_up().await.unwrap();
        let mut relay = runner.into_consumer();
        let parked = relay.parked().await.unwrap();
        assert_eq!(parked.len(), 6, "the order streams' events");
        assert!(parked.iter().all(|p| p.event.stream.category() == "order"));
        assert!(
            parked[0].error.contains(&format!("{name}.order.1")),
            "{}",
            parked[0].error
        );
        assert_eq!(
            read_all(&nats, &name).await.len(),
            6,
            "the lead streams' events"
        );

        let mut config = stream.cached_info().config.clone();
        config.subjects.push(format!("{name}.order.>"));
        nats.context().update_stream(config).await.unwrap();
        let replayed = relay.replay_parked().await.unwrap();
        assert_eq!(replayed.succeeded.len(), 6);
        assert!(relay.parked().await.unwrap().is_empty());
        let received = read_all(&nats, &name).await;
        assert_eq!(received.len(), 12);
        let ids: HashSet<&String> = received
            .iter()
            .map(|m| m.headers.get(headers::EVENT_ID).unwrap())
            .collect();
        assert_eq!(ids.len(), 12);
    });
}

#[test]
fn inbound_feeds_a_projection_each_event_once_even_when_everything_is_delivered_again() {
    run(async {
        let (nats, name) = fresh_stream("INBOUND").await;
        let origin = MemoryStore::new();
        append_many(&origin, 12, 4).await;
        let relay = Relay::new("out", nats.clone(), origin.clone())
            .subjects(Subjects::template(&format!("{name}.{{category}}.{{event_type}}")).unwrap());
        Runner::new(origin.clone(), relay).catch_up().await.unwrap();

        // The receiving side keeps its checkpoint in a store of its own.
        let local = MemoryStore::new();
        let target = Recorder::new(local.clone());
        let model = target.ids.clone();
        let mut inbound = Inbound::durable(nats.context(), &name, "reporting", None, target)
            .await
            .unwrap()
            .batch_size(10)
            .wait(Duration::from_millis(100));
        inbound.catch_up().await.unwrap();
        let stored = origin
            .read_all(ReadAll::after(GlobalPosition::START).limit(1000))
            .await
            .unwrap();
        let ids: Vec<_> = stored.iter().map(|r| r.event_id).collect();
        assert_eq!(*model.lock().unwrap(), ids, "every event, in order, once");
        assert_eq!(
            local
                .load_checkpoint(Recorder::<MemoryStore>::NAME)
                .await
                .unwrap(),
            Some(GlobalPosition::new(48, 48)),
            "the stream sequence of the last message"
        );
        drop(inbound);

        // The durable consumer is made again by hand, delivering everything from the start:
        // `Inbound` sees it is behind the checkpoint and starts it after the checkpoint.
        let js_stream = nats.context().get_stream(&name).await.unwrap();
        js_stream.delete_consumer("reporting").await.unwrap();
        js_stream
            .create_consumer(pull::Config {
                durable_name: Some("reporting".into()),
                ack_policy: AckPolicy::Explicit,
                ..pull::Config::default()
            })
            .await
            .unwrap();
        let target = Recorder::new(local.clone());
        let again = target.ids.clone();
        let mut inbound = Inbound::durable(nats.context(), &name, "reporting", None, target)
            .await
            .unwrap()
            .wait(Duration::from_millis(100));
        inbound.catch_up().await.unwrap();
        assert!(again.lock().unwrap().is_empty(), "none handled twice");

        // A process fetched messages and died before it acknowledged them: the next one
        // does not wait out the acknowledgement timeout, nor skip them.
        js_stream
            .create_consumer(pull::Config {
                durable_name: Some("crashed".into()),
                ack_policy: AckPolicy::Explicit,
                ..pull::Config::default()
            })
            .await
            .unwrap();
        let crashed: eventsrc::nats::async_nats::jetstream::consumer::Consumer<pull::Config> =
            js_stream.get_consumer("crashed").await.unwrap();
        let mut fetched = crashed.fetch().max_messages(5).messages().await.unwrap();
        let mut unacknowledged = 0;
        while let Some(message) = fetched.next().await {
            message.unwrap();
            unacknowledged += 1;
        }
        assert_eq!(unacknowledged, 5);
        let target = Recorder::new(MemoryStore::new());
        let after_crash = target.ids.clone();
        let mut inbound = Inbound::durable(nats.context(), &name, "crashed", None, target)
            .await
            .unwrap()
            .wait(Duration::from_millis(100));
        inbound.catch_up().await.unwrap();
        assert_eq!(
            *after_crash.lock().unwrap(),
            ids,
            "every event, in order, once"
        );

        // The checkpoint is ahead of what the server delivers (acknowledgements were lost
        // after the batch was handled): the messages it already holds are not handled again.
        let checkpoints = MemoryStore::new();
        let target = Recorder::new(checkpoints.clone());
        let behind = target.ids.clone();
        let mut inbound = Inbound::durable(nats.context(), &name, "lost-acks", None, target)
            .await
            .unwrap()
            .batch_size(10)
            .wait(Duration::from_millis(100));
        assert_eq!(inbound.step().await.unwrap(), 10);
        checkpoints
            .save_checkpoint(Recorder::<MemoryStore>::NAME, GlobalPosition::new(24, 24))
            .await
            .unwrap();
        inbound.catch_up().await.unwrap();
        let expected: Vec<_> = ids[..10].iter().chain(&ids[24..]).copied().collect();
        assert_eq!(
            *behind.lock().unwrap(),
            expected,
            "the ones after the checkpoint handled"
        );

        // A filtered consumer sees only its subjects.
        let target = Recorder::new(MemoryStore::new());
        let orders = target.ids.clone();
        let filter = format!("{name}.order.>");
        let mut inbound = Inbound::durable(nats.context(), &name, "orders", Some(&filter), target)
            .await
            .unwrap()
            .wait(Duration::from_millis(100));
        inbound.catch_up().await.unwrap();
        assert_eq!(orders.lock().unwrap().len(), 24);
    });
}

#[test]
fn a_message_that_is_not_an_event_stops_inbound_unless_told_to_skip_it() {
    run(async {
        let (nats, name) = fresh_stream("MALFORMED").await;
        let origin = MemoryStore::new();
        append_many(&origin, 2, 1).await;
        let subjects = Subjects::template(&format!("{name}.{{category}}")).unwrap();
        let relay = Relay::new("out", nats.clone(), origin.clone()).subjects(subjects.clone());
        Runner::new(origin.clone(), relay).catch_up().await.unwrap();
        // A stranger's message, then more events.
        nats.context()
            .publish(format!("{name}.stray"), "not an event".into())
            .await
            .unwrap()
            .await
            .unwrap();
        append_many(&origin, 2, 1).await;
        let relay = Relay::new("out", nats.clone(), origin.clone()).subjects(subjects);
        Runner::new(origin.clone(), relay).catch_up().await.unwrap();

        let target = Recorder::new(MemoryStore::new());
        let model = target.ids.clone();
        let mut inbound = Inbound::durable(nats.context(), &name, "strict", None, target)
            .await
            .unwrap()
            .wait(Duration::from_millis(100));
        let error = inbound.catch_up().await.unwrap_err();
        let InboundError::Malformed {
            sequence,
            subject,
            source,
            ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(
            (*sequence, subject.as_str()),
            (3, format!("{name}.stray").as_str())
        );
        assert!(source.problem.contains("Eventsrc-Event-Id"), "{error}");
        assert_eq!(
            model.lock().unwrap().len(),
            2,
            "the events before it were handled"
        );
        // It stops there again: nothing after it is lost or skipped.
        assert!(inbound.catch_up().await.is_err());
        assert_eq!(model.lock().unwrap().len(), 2);

        let target = Recorder::new(MemoryStore::new());
        let model = target.ids.clone();
        let mut inbound = Inbound::durable(nats.context(), &name, "lenient", None, target)
            .await
            .unwrap()
            .wait(Duration::from_millis(100))
            .skip_malformed(true);
        inbound.catch_up().await.unwrap();
        assert_eq!(model.lock().unwrap().len(), 4);
    });
}

#[test]
fn the_default_subjects_carry_tenant_category_and_type() {
    run(async {
        let nats = connect().await;
        let name = unique("DEFAULT");
        // The default template starts with `events.`: a stream of this test's own tenant.
        let tenant = name.to_lowercase();
        nats.ensure_stream(
            &name,
            &[&format!("events.{tenant}.>")],
            Duration::from_secs(120),
        )
        .await
        .unwrap();
        let store = MemoryStore::new().with_tenant(eventsrc::Tenant::new(&tenant));
        append_many(&store, 1, 1).await;
        let relay = Relay::new("out", nats.clone(), store.clone());
        Runner::new(store.clone(), relay).catch_up().await.unwrap();
        let received = read_all(&nats, &name).await;
        let subjects: BTreeMap<_, _> = received.iter().map(|m| (m.subject.clone(), ())).collect();
        assert_eq!(
            subjects.into_keys().collect::<Vec<_>>(),
            [format!("events.{tenant}.lead.lead.opened")]
        );
    });
}

#[test]
fn a_stream_that_does_not_exist_is_a_typed_error_naming_it() {
    run(async {
        let nats = connect().await;
        let target = Recorder::new(MemoryStore::new());
        let error = Inbound::durable(nats.context(), "NO_SUCH_STREAM_EVER", "x", None, target)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("`NO_SUCH_STREAM_EVER`"),
            "{error}"
        );
        let error = JetStream::connect("nats://127.0.0.1:1").await.unwrap_err();
        assert!(error.to_string().contains("nats://127.0.0.1:1"), "{error}");
    });
}

#[test]
fn inbound_runs_on_the_node_holding_the_lease_and_the_next_one_goes_on_from_its_checkpoint() {
    run(async {
        let (nats, name) = fresh_stream("LEADER").await;
        let origin = MemoryStore::new();
        let subjects = Subjects::template(&format!("{name}.{{category}}")).unwrap();
        let publish = |origin: MemoryStore| {
            let relay = Relay::new("out", nats.clone(), origin.clone()).subjects(subjects.clone());
            async move { Runner::new(origin, relay).catch_up().await.unwrap() }
        };
        append_many(&origin, 5, 2).await;
        publish(origin.clone()).await;

        // Two nodes share the checkpoint store and the leases; the first to ask leads.
        let shared = MemoryStore::new();
        let leases = eventsrc::backend::LocalLeases::default();
        let node = |leases: eventsrc::backend::LocalLeases| {
            let nats = nats.clone();
            let name = name.clone();
            let shared = shared.clone();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let target = Recorder::new(shared);
            let ids = target.ids.clone();
            let task = tokio::spawn(async move {
                Inbound::durable(nats.context(), &name, "reporting", None, target)
                    .await
                    .unwrap()
                    .wait(Duration::from_millis(50))
                    .run_as_leader(&leases, async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
            (stop, task, ids)
        };
        let (stop_first, first, first_ids) = node(leases.clone());
        let checkpoint = |n: u64| {
            let shared = shared.clone();
            async move {
                shared
                    .load_checkpoint(Recorder::<MemoryStore>::NAME)
                    .await
                    .unwrap()
                    == Some(GlobalPosition::new(n, n))
            }
        };
        support::wait_until(
            "the first node handles the first ten",
            Duration::from_secs(20),
            || checkpoint(10),
        )
        .await;
        let (stop_second, second, second_ids) = node(leases.clone());

        stop_first.send(()).unwrap();
        first.await.unwrap();
        append_many(&origin, 5, 1).await;
        publish(origin.clone()).await;
        support::wait_until(
            "the second node handles the rest",
            Duration::from_secs(20),
            || checkpoint(15),
        )
        .await;
        stop_second.send(()).unwrap();
        second.await.unwrap();

        let stored = origin
            .read_all(ReadAll::after(GlobalPosition::START).limit(100))
            .await
            .unwrap();
        let ids: Vec<_> = stored.iter().map(|r| r.event_id).collect();
        assert_eq!(*first_ids.lock().unwrap(), ids[..10]);
        assert_eq!(*second_ids.lock().unwrap(), ids[10..]);
    });
}

#[test]
fn a_header_that_would_hold_a_line_break_is_refused_and_parked_not_sent() {
    run(async {
        let (nats, name) = fresh_stream("INJECT").await;
        let store = MemoryStore::new().with_tenant(eventsrc::Tenant::new("evil\r\nNats-Msg-Id: x"));
        append_many(&store, 1, 1).await;
        let relay = Relay::new("out", nats.clone(), store.clone())
            .subjects(Subjects::template(&format!("{name}.{{category}}")).unwrap())
            .retry(Retry::never());
        let mut runner = Runner::new(store.clone(), relay);
        runner.catch_up().await.unwrap();
        let parked = runner.consumer().parked().await.unwrap();
        assert_eq!(parked.len(), 1);
        assert!(
            parked[0].error.contains("`Eventsrc-Tenant` header"),
            "{}",
            parked[0].error
        );
        let info = nats
            .context()
            .get_stream(&name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages;
        assert_eq!(info, 0, "nothing sent");
    });
}

#[test]
fn a_subject_function_that_returns_no_subject_parks_the_event() {
    run(async {
        let (nats, name) = fresh_stream("BADSUBJECT").await;
        let store = MemoryStore::new();
        append_many(&store, 2, 1).await; // lead-0, order-1
        let prefix = name.clone();
        let relay = Relay::new("out", nats.clone(), store.clone())
            .subjects(Subjects::with(move |r| match r.stream.category() {
                "lead" => format!("{prefix}.lead"),
                _ => format!("{prefix}.bad subject"),
            }))
            .retry(Retry::never());
        let mut runner = Runner::new(store.clone(), relay);
        runner.catch_up().await.unwrap();
        let parked = runner.consumer().parked().await.unwrap();
        assert_eq!(parked.len(), 1);
        assert!(
            parked[0].error.contains("holds whitespace"),
            "{}",
            parked[0].error
        );
        assert_eq!(
            read_all(&nats, &name).await.len(),
            1,
            "the lead's event went out"
        );
    });
}
