//! The exchange against a real RabbitMQ: what it publishes, with which properties and
//! headers, in which order; an unroutable message refused, retried, parked and replayed; a
//! nack refused; a closed channel unavailable; a broker that is not there an error naming it.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{bound_queue, connect, delete, drain, quick, runtime, topic_exchange, unique, url};
use eventsrc_amqp::lapin::options::QueueDeclareOptions;
use eventsrc_amqp::lapin::types::{AMQPValue, FieldTable};
use eventsrc_amqp::{AmqpError, CONTENT_TYPE, Exchange};
use eventsrc_core::relay::headers::headers;
use eventsrc_core::relay::{Failure, Outgoing, Publisher, Relay, Subjects, message_id};
use eventsrc_core::store::ReadAll;
use eventsrc_core::{
    CheckpointStore, EventStore, ExpectedVersion, GlobalPosition, MemoryStore, Metadata, NewEvent,
    RecordedEvent, Runner, StreamId, Uuid,
};

async fn append(store: &MemoryStore, stream: &str, events: Vec<NewEvent>) {
    let stream: StreamId = stream.parse().unwrap();
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .unwrap();
}

async fn all(store: &MemoryStore) -> Vec<RecordedEvent> {
    store
        .read_all(ReadAll::after(GlobalPosition::START).limit(100_000))
        .await
        .unwrap()
}

#[test]
fn publishes_the_log_in_order_with_its_properties_and_headers_and_reads_back_the_same() {
    runtime().block_on(async {
        let (_connection, channel) = connect().await;
        let (name, exchange) = topic_exchange().await;
        let queue = bound_queue(&channel, &name, "#").await;

        let store = MemoryStore::new();
        let metadata = Metadata::new()
            .with_correlation_id(Uuid::from_u128(7))
            .with_causation_id(Uuid::from_u128(8))
            .with_actor("ops");
        append(
            &store,
            "lead-1",
            vec![
                NewEvent::raw("lead.opened", 1, r#"{"name":"Grace","score":1.5}"#)
                    .with_metadata(metadata.clone()),
                NewEvent::raw("lead.renamed", 2, r#"{"name":"Ada"}"#),
            ],
        )
        .await;
        append(
            &store,
            "order-9",
            vec![NewEvent::raw("order.placed", 1, "{}")],
        )
        .await;
        append(
            &store,
            "lead-2",
            vec![NewEvent::raw("lead.opened", 1, r#"{"name":"Émile"}"#).with_metadata(metadata)],
        )
        .await;
        let subjects = Subjects::template("crm.{tenant}.{category}.{event_type}").unwrap();
        let relay = Relay::new("to-rabbitmq", exchange, store.clone()).subjects(subjects.clone());
        let mut runner = Runner::new(store.clone(), relay);
        runner.catch_up().await.unwrap();
        assert_eq!(
            store.load_checkpoint("to-rabbitmq").await.unwrap(),
            Some(store.head_position().await.unwrap())
        );

        let stored = all(&store).await;
        let delivered = drain(&channel, &queue).await;
        assert_eq!(delivered.len(), stored.len(), "one message per event");
        for (record, message) in stored.iter().zip(&delivered) {
            assert_eq!(message.routing_key.as_str(), subjects.subject(record));
            assert_eq!(message.exchange.as_str(), name);
            let p = &message.properties;
            let id = message_id(record.event_id);
            assert_eq!(
                p.message_id().as_ref().map(|s| s.as_str()),
                Some(id.as_str())
            );
            assert_eq!(
                p.kind().as_ref().map(|s| s.as_str()),
                Some(&*record.event_type)
            );
            assert_eq!(
                p.content_type().as_ref().map(|s| s.as_str()),
                Some(CONTENT_TYPE)
            );
            assert_eq!(*p.delivery_mode(), Some(2));
            assert_eq!(
                *p.timestamp(),
                Some(u64::try_from(record.recorded_at.as_micros() / 1_000_000).unwrap())
            );
            let correlation = record.metadata.correlation_id.map(|id| id.to_string());
            assert_eq!(
                p.correlation_id().as_ref().map(|s| s.to_string()),
                correlation
            );
            // Every header of the contract, as long strings, and nothing else.
            let sent: BTreeMap<String, AMQPValue> = p
                .headers()
                .as_ref()
                .unwrap()
                .inner()
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let expected: BTreeMap<String, AMQPValue> = headers(record)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), AMQPValue::LongString(v.into())))
                .collect();
            assert_eq!(sent, expected);
            assert_eq!(message.data, record.payload.as_bytes());

            let back = eventsrc_core::relay::incoming(
                |name| eventsrc_amqp::header(&message.properties, name),
                &message.data,
            )
            .unwrap();
            assert_eq!(&back, record);
            assert_eq!(&eventsrc_amqp::incoming(message).unwrap(), record);
        }
        delete(&channel, &name, &[&queue]).await;
    });
}

#[test]
fn an_unroutable_message_is_retried_then_parked_and_replays_once_a_queue_takes_it() {
    runtime().block_on(async {
        let (_connection, channel) = connect().await;
        let (name, exchange) = topic_exchange().await;
        // Only leads have a queue: orders come back unroutable.
        let leads = bound_queue(&channel, &name, "events.*.lead.#").await;

        let store = MemoryStore::new();
        append(
            &store,
            "lead-1",
            vec![NewEvent::raw("lead.opened", 1, "{}")],
        )
        .await;
        append(
            &store,
            "order-9",
            vec![NewEvent::raw("order.placed", 1, "{}")],
        )
        .await;
        append(
            &store,
            "lead-1",
            vec![NewEvent::raw("lead.renamed", 1, "{}")],
        )
        .await;
        let relay = Relay::new("to-rabbitmq", exchange, store.clone()).retry(quick());
        let mut runner = Runner::new(store.clone(), relay);
        runner.catch_up().await.unwrap();

        let types = |messages: &[eventsrc_amqp::lapin::message::Delivery]| -> Vec<String> {
            messages
                .iter()
                .map(|m| m.properties.kind().as_ref().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            types(&drain(&channel, &leads).await),
            ["lead.opened", "lead.renamed"],
            "the rest is published"
        );
        assert_eq!(
            store.load_checkpoint("to-rabbitmq").await.unwrap(),
            Some(store.head_position().await.unwrap())
        );
        let mut relay = runner.into_consumer();
        let parked = relay.parked().await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(&*parked[0].event.event_type, "order.placed");
        assert_eq!(parked[0].attempts, 2, "retried once, then parked");
        let error = &parked[0].error;
        assert!(
            error.contains("events.default.order.order.placed") && error.contains("NO_ROUTE"),
            "{error}"
        );

        // Still no queue: stays parked.
        let replayed = relay.replay_parked().await.unwrap();
        assert_eq!(replayed.failed.len(), 1);

        let orders = bound_queue(&channel, &name, "events.*.order.#").await;
        let replayed = relay.replay_parked().await.unwrap();
        assert_eq!(replayed.succeeded, [parked[0].event.event_id]);
        assert!(relay.parked().await.unwrap().is_empty());
        let delivered = drain(&channel, &orders).await;
        assert_eq!(types(&delivered), ["order.placed"]);
        assert_eq!(
            eventsrc_amqp::incoming(&delivered[0]).unwrap(),
            parked[0].event
        );
        delete(&channel, &name, &[&leads, &orders]).await;
    });
}

#[test]
fn a_nacked_message_is_refused_and_the_others_of_the_batch_are_confirmed() {
    runtime().block_on(async {
        let (_connection, channel) = connect().await;
        // A queue that takes one message and nacks the next ones, on the default exchange.
        let queue = unique("full");
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongInt(1));
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
        args.insert("x-expires".into(), AMQPValue::LongInt(600_000));
        channel
            .queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), args)
            .await
            .unwrap();
        let exchange = Exchange::connect(&url(), "").await.unwrap();

        let store = MemoryStore::new();
        append(
            &store,
            "lead-1",
            vec![
                NewEvent::raw("lead.opened", 1, "{}"),
                NewEvent::raw("lead.renamed", 1, "{}"),
            ],
        )
        .await;
        let stored = all(&store).await;
        let outgoing: Vec<Outgoing<'_>> = stored
            .iter()
            .map(|record| Outgoing {
                record,
                subject: &queue,
            })
            .collect();
        let results = exchange.publish(&outgoing).await;
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok(), "{:?}", results[0]);
        let error = results[1].as_ref().unwrap_err();
        assert_eq!(error.failure, Failure::Refused);
        assert!(error.to_string().contains("nacked"), "{error}");
        let delivered = drain(&channel, &queue).await;
        assert_eq!(delivered.len(), 1);
        delete(&channel, "", &[&queue]).await;
    });
}

#[test]
fn an_exchange_on_the_applications_channel_confirms_and_reports_it_closed_as_unavailable() {
    runtime().block_on(async {
        let (connection, channel) = connect().await;
        let name = unique("exchange");
        let queue = unique("queue");
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        // The application's own channel, not in confirm mode: the first publish puts it there.
        let publishing = connection.create_channel().await.unwrap();
        let exchange = Exchange::new(publishing.clone(), "").unwrap();
        let store = MemoryStore::new();
        append(
            &store,
            "lead-1",
            vec![NewEvent::raw("lead.opened", 1, "{}")],
        )
        .await;
        let stored = all(&store).await;
        let outgoing = [Outgoing {
            record: &stored[0],
            subject: &queue,
        }];
        let results = exchange.publish(&outgoing).await;
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(publishing.status().confirm());
        assert_eq!(drain(&channel, &queue).await.len(), 1);

        publishing.close(200, "done".into()).await.unwrap();
        let results = exchange.publish(&outgoing).await;
        let error = results[0].as_ref().unwrap_err();
        assert_eq!(error.failure, Failure::Unavailable);
        assert!(error.to_string().contains("no URL"), "{error}");

        // A routing key AMQP cannot carry is refused, not a panic.
        let long = "x".repeat(300);
        let exchange = Exchange::new(connection.create_channel().await.unwrap(), &name).unwrap();
        let results = exchange
            .publish(&[Outgoing {
                record: &stored[0],
                subject: &long,
            }])
            .await;
        assert_eq!(results[0].as_ref().unwrap_err().failure, Failure::Refused);
        delete(&channel, &name, &[&queue]).await;
    });
}

#[test]
fn a_broker_that_is_not_there_is_an_error_naming_it_without_the_password() {
    runtime().block_on(async {
        let error = Exchange::connect("amqp://guest:secret@127.0.0.1:1/%2f", "events")
            .await
            .unwrap_err();
        assert!(matches!(error, AmqpError::Connect { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("amqp://guest:***@127.0.0.1:1/%2f"), "{text}");
        assert!(!text.contains("secret"), "{text}");

        let error = Exchange::connect(&url(), &"x".repeat(256))
            .await
            .unwrap_err();
        assert!(matches!(error, AmqpError::InvalidName { .. }), "{error:?}");
    });
}
