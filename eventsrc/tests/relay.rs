//! The relay's contract, with a scripted broker: what it publishes and where, in order; a
//! refused message retried then parked, and replayed; a broker that does not answer retried
//! without parking, and given up with `RunError::Unavailable` with the checkpoint unmoved.
//! The brokers' own crates prove the same against real servers.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use eventsrc::relay::{Failure, Outgoing, PublishError, Publisher, Relay, Subjects};
use eventsrc::runner::Retry;
use eventsrc::{
    CheckpointStore, EventStore, ExpectedVersion, MemoryStore, NewEvent, RunError, Runner, StreamId,
};

/// A broker that answers as scripted (then accepts) and keeps what it took.
#[derive(Default)]
struct Scripted {
    /// Answers for the next messages, one each, in order.
    answers: Mutex<VecDeque<Option<Failure>>>,
    /// Subject and event type of each message taken.
    taken: Mutex<Vec<(String, String)>>,
    /// How many messages were offered in all.
    offered: Mutex<usize>,
}

impl Scripted {
    fn answering(answers: impl IntoIterator<Item = Option<Failure>>) -> Self {
        Self {
            answers: Mutex::new(answers.into_iter().collect()),
            ..Self::default()
        }
    }

    fn taken(&self) -> Vec<(String, String)> {
        self.taken.lock().unwrap().clone()
    }
}

impl Publisher for &Scripted {
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), PublishError>> {
        let mut answers = self.answers.lock().unwrap();
        *self.offered.lock().unwrap() += messages.len();
        messages
            .iter()
            .map(|m| match answers.pop_front().flatten() {
                None => {
                    self.taken
                        .lock()
                        .unwrap()
                        .push((m.subject.to_owned(), m.record.event_type.to_string()));
                    Ok(())
                }
                Some(Failure::Refused) => Err(PublishError::refused("no stream takes it")),
                Some(Failure::Unavailable) => Err(PublishError::unavailable("connection refused")),
            })
            .collect()
    }
}

async fn append(store: &MemoryStore, stream: &str, types: &[&'static str]) {
    let stream: StreamId = stream.parse().unwrap();
    let events = types.iter().map(|t| NewEvent::raw(*t, 1, "{}")).collect();
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .unwrap();
}

fn quick() -> Retry {
    Retry {
        attempts: 2,
        delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn publishes_the_log_in_order_to_its_subjects_then_checkpoints() {
    run(async {
        let store = MemoryStore::new();
        append(&store, "lead-1", &["lead.opened", "lead.renamed"]).await;
        append(&store, "order-9", &["order.placed"]).await;
        append(&store, "lead-2", &["lead.opened"]).await;
        let broker = Scripted::default();
        let relay = Relay::new("out", &broker, store.clone())
            .subjects(Subjects::template("crm.{category}.{id}.{event_type}").unwrap());
        let mut runner = Runner::new(store.clone(), relay);
        runner.catch_up().await.unwrap();
        assert_eq!(
            broker.taken(),
            [
                ("crm.lead.1.lead.opened".into(), "lead.opened".into()),
                ("crm.lead.1.lead.renamed".into(), "lead.renamed".into()),
                ("crm.order.9.order.placed".into(), "order.placed".into()),
                ("crm.lead.2.lead.opened".into(), "lead.opened".into()),
            ]
        );
        let head = Some(store.head_position().await.unwrap());
        assert_eq!(store.load_checkpoint("out").await.unwrap(), head);

        // Caught up, it publishes nothing again.
        runner.catch_up().await.unwrap();
        assert_eq!(broker.taken().len(), 4);
    });
}

#[test]
fn filters_by_category_event_type_or_function() {
    run(async {
        let store = MemoryStore::new();
        append(&store, "lead-1", &["lead.opened", "lead.renamed"]).await;
        append(&store, "order-9", &["order.placed"]).await;

        let broker = Scripted::default();
        let relay = Relay::new("leads", &broker, store.clone()).categories(["lead"]);
        Runner::new(store.clone(), relay).catch_up().await.unwrap();
        let types: Vec<String> = broker.taken().into_iter().map(|(_, t)| t).collect();
        assert_eq!(types, ["lead.opened", "lead.renamed"]);

        let broker = Scripted::default();
        let relay = Relay::new("renames", &broker, store.clone()).event_types(["lead.renamed"]);
        Runner::new(store.clone(), relay).catch_up().await.unwrap();
        let types: Vec<String> = broker.taken().into_iter().map(|(_, t)| t).collect();
        assert_eq!(types, ["lead.renamed"]);

        let broker = Scripted::default();
        let relay =
            Relay::new("firsts", &broker, store.clone()).filter(|r| r.stream_version.0 == 1);
        Runner::new(store.clone(), relay).catch_up().await.unwrap();
        let types: Vec<String> = broker.taken().into_iter().map(|(_, t)| t).collect();
        assert_eq!(types, ["lead.opened", "order.placed"]);
        // Filtered-out events still move the checkpoint.
        assert_eq!(
            store.load_checkpoint("firsts").await.unwrap(),
            Some(store.head_position().await.unwrap())
        );
    });
}

#[test]
fn a_refused_message_is_retried_then_parked_and_replays_once_the_broker_takes_it() {
    run(async {
        let store = MemoryStore::new();
        append(
            &store,
            "lead-1",
            &["lead.opened", "lead.renamed", "lead.closed"],
        )
        .await;
        // The second message is refused twice (the whole retry policy); the others pass.
        let broker =
            Scripted::answering([None, Some(Failure::Refused), None, Some(Failure::Refused)]);
        let relay = Relay::new("out", &broker, store.clone()).retry(quick());
        let mut runner = Runner::new(store.clone(), relay);
        runner.catch_up().await.unwrap();
        let types: Vec<String> = broker.taken().into_iter().map(|(_, t)| t).collect();
        assert_eq!(types, ["lead.opened", "lead.closed"]);
        assert_eq!(
            *broker.offered.lock().unwrap(),
            4,
            "three, then the refused one again"
        );

        let mut relay = runner.into_consumer();
        let parked = relay.parked().await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(&*parked[0].event.event_type, "lead.renamed");
        assert_eq!(parked[0].attempts, 2);
        assert!(
            parked[0].error.contains("events.default.lead.lead.renamed")
                && parked[0].error.contains("no stream takes it"),
            "{}",
            parked[0].error
        );
        assert_eq!(
            store.load_checkpoint("out").await.unwrap(),
            Some(store.head_position().await.unwrap())
        );

        // Still refused: stays parked, with one more attempt.
        broker
            .answers
            .lock()
            .unwrap()
            .push_back(Some(Failure::Refused));
        let replayed = relay.replay_parked().await.unwrap();
        assert_eq!(replayed.failed.len(), 1);
        assert_eq!(relay.parked().await.unwrap()[0].attempts, 3);

        // Taken: unparked.
        let replayed = relay.replay_parked().await.unwrap();
        assert_eq!(replayed.succeeded, [parked[0].event.event_id]);
        assert!(relay.parked().await.unwrap().is_empty());
        assert_eq!(broker.taken().last().unwrap().1, "lead.renamed");
    });
}

#[test]
fn a_broker_that_does_not_answer_is_waited_for_and_nothing_is_parked() {
    run(async {
        let store = MemoryStore::new();
        append(&store, "lead-1", &["lead.opened", "lead.renamed"]).await;
        // Three rounds with the broker down (more than the retry policy's two attempts).
        let down = Some(Failure::Unavailable);
        let broker = Scripted::answering([down, down, down, down, down, down]);
        let relay = Relay::new("out", &broker, store.clone()).retry(quick());
        let mut runner = Runner::new(store.clone(), relay);
        runner.catch_up().await.unwrap();
        let types: Vec<String> = broker.taken().into_iter().map(|(_, t)| t).collect();
        assert_eq!(types, ["lead.opened", "lead.renamed"]);
        assert!(runner.consumer().parked().await.unwrap().is_empty());
    });
}

#[test]
fn a_broker_down_too_long_gives_the_batch_up_with_the_checkpoint_unmoved() {
    run(async {
        let store = MemoryStore::new();
        append(&store, "lead-1", &["lead.opened"]).await;
        let broker = Scripted::answering(std::iter::repeat_n(Some(Failure::Unavailable), 1000));
        let relay = Relay::new("out", &broker, store.clone())
            .retry(quick())
            .unavailable_for(Duration::from_millis(20));
        let mut runner = Runner::new(store.clone(), relay);
        let error = runner.catch_up().await.unwrap_err();
        assert!(matches!(error, RunError::Unavailable { .. }), "{error:?}");
        assert_eq!(error.to_string(), "`out`: unavailable: connection refused");
        assert_eq!(store.load_checkpoint("out").await.unwrap(), None);
        assert!(broker.taken().is_empty());
        assert!(runner.consumer().parked().await.unwrap().is_empty());
    });
}

#[test]
fn a_leader_whose_broker_is_down_too_long_lets_the_lease_go_and_finishes_once_it_is_back() {
    run(async {
        let store = MemoryStore::new();
        append(&store, "lead-1", &["lead.opened", "lead.renamed"]).await;
        // Down for 40 rounds: longer than `unavailable_for` several times over.
        let broker = std::sync::Arc::new(Scripted::answering(std::iter::repeat_n(
            Some(Failure::Unavailable),
            40,
        )));
        let leases = eventsrc::backend::LocalLeases::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = {
            let store = store.clone();
            let broker = broker.clone();
            let leases = leases.clone();
            tokio::spawn(async move {
                let publisher = Shared(broker);
                let relay = Relay::new("out", publisher, store.clone())
                    .retry(quick())
                    .unavailable_for(Duration::from_millis(10));
                Runner::new(store, relay)
                    .poll_interval(Duration::from_millis(5))
                    .run_as_leader(&leases, async {
                        let _ = stopped.await;
                    })
                    .await
            })
        };
        let head = Some(store.head_position().await.unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.load_checkpoint("out").await.unwrap() != head {
            assert!(
                std::time::Instant::now() < deadline,
                "the relay did not finish"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(()).unwrap();
        let relay = running
            .await
            .unwrap()
            .expect("an outage does not stop a leader");
        assert!(relay.parked().await.unwrap().is_empty());
        let types: Vec<String> = broker.taken().into_iter().map(|(_, t)| t).collect();
        assert_eq!(types, ["lead.opened", "lead.renamed"]);
        assert!(
            broker.answers.lock().unwrap().is_empty(),
            "every outage answer was used"
        );
    });
}

/// A scripted broker shared with the test, for a relay that runs in a task.
struct Shared(std::sync::Arc<Scripted>);

impl Publisher for Shared {
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), PublishError>> {
        (&*self.0).publish(messages).await
    }
}

#[test]
fn after_a_message_the_broker_did_not_answer_for_the_later_ones_go_again_after_it() {
    run(async {
        let store = MemoryStore::new();
        append(
            &store,
            "lead-1",
            &["lead.opened", "lead.renamed", "lead.closed"],
        )
        .await;
        // The second goes unanswered; the broker takes the third at once.
        let broker = Scripted::answering([None, Some(Failure::Unavailable), None]);
        let relay = Relay::new("out", &broker, store.clone()).retry(quick());
        Runner::new(store.clone(), relay).catch_up().await.unwrap();
        let types: Vec<String> = broker.taken().into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            types,
            ["lead.opened", "lead.closed", "lead.renamed", "lead.closed"],
            "the third is sent again after the second, so the last word is in order"
        );
        assert_eq!(*broker.offered.lock().unwrap(), 5);
    });
}
