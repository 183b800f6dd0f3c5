//! Crypto-shredding as an application sees it: the conformance cases on the memory store, a
//! subscription that reads a forgotten subject's fields as `null`, and `Store::open` wrapped.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use eventsrc::personal::{Encrypted, MemoryKeyStore};
use eventsrc::subscription::Start;
use eventsrc::{
    Event, EventStore, ExpectedVersion, InMemory, MemoryStore, Metadata, NewEvent, Projection,
    RecordedEvent, Runner, Store, StreamId, Subscription,
};
use serde::{Deserialize, Serialize};

eventsrc_testing::personal_conformance!(|| async {
    Encrypted::new(MemoryStore::new(), MemoryKeyStore::new())
});

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "facade_test.customer_moved")]
struct CustomerMoved {
    #[event(subject)]
    customer: u64,
    #[event(personal)]
    address: Option<String>,
    city: String,
}

fn moved(customer: u64, address: &str) -> NewEvent {
    let event = CustomerMoved {
        customer,
        address: Some(address.to_owned()),
        city: "Leeds".to_owned(),
    };
    NewEvent::from_event(&event, Metadata::new()).unwrap()
}

/// A wrapped memory store where customer 1 moved to 1 Mill Lane and customer 2 to 2 Kirkgate,
/// each in their own stream.
async fn two_customers() -> Encrypted<MemoryStore, MemoryKeyStore> {
    let store = Encrypted::new(MemoryStore::new(), MemoryKeyStore::new());
    for (customer, address) in [(1, "1 Mill Lane"), (2, "2 Kirkgate")] {
        let stream = StreamId::new("customer", customer).unwrap();
        store
            .append(
                &stream,
                ExpectedVersion::NoStream,
                vec![moved(customer, address)],
            )
            .await
            .unwrap();
    }
    store
}

/// A subscription (and so every runner, projection and reactor) reads through the wrapper:
/// the forgotten customer's address is `None`, the other customer's and the rest are there.
#[tokio::test]
async fn a_subscription_reads_a_forgotten_subjects_fields_as_null() {
    let store = two_customers().await;
    assert!(store.forget("1").await.unwrap());

    let mut subscription = Subscription::new(store.clone(), Start::Beginning);
    let batch = subscription.next_batch().await.unwrap();
    let read: Vec<CustomerMoved> = batch.events.iter().map(|e| e.decode().unwrap()).collect();
    assert_eq!(
        read,
        [
            CustomerMoved {
                customer: 1,
                address: None,
                city: "Leeds".into()
            },
            CustomerMoved {
                customer: 2,
                address: Some("2 Kirkgate".into()),
                city: "Leeds".into()
            },
        ]
    );
}

/// The application's own event, appended after `forget`: no personal fields.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "facade_test.customer_forgotten")]
struct CustomerForgotten {
    customer: u64,
}

#[derive(Event, Debug, Clone, PartialEq)]
enum CustomerEvent {
    Moved(CustomerMoved),
    Forgotten(CustomerForgotten),
}

/// A read model holding personal data: each customer's address.
#[derive(Default)]
struct Addresses(BTreeMap<u64, Option<String>>);

impl Projection for Addresses {
    const NAME: &'static str = "addresses";
    type Event = CustomerEvent;
    type Error = std::convert::Infallible;

    fn apply(&mut self, event: CustomerEvent, _: &RecordedEvent) -> Result<(), Self::Error> {
        match event {
            CustomerEvent::Moved(moved) => {
                self.0.insert(moved.customer, moved.address);
            }
            // How a read model forgets: it deletes the subject's rows.
            CustomerEvent::Forgotten(forgotten) => {
                self.0.remove(&forgotten.customer);
            }
        }
        Ok(())
    }
}

/// The README's recipe for read models: forget, then append the domain's own "forgotten"
/// event; the live read model drops the rows, and a rebuild from the log never brings the
/// address back.
#[tokio::test]
async fn a_read_model_forgets_on_the_applications_forgotten_event() {
    let store = two_customers().await;
    let live = InMemory::new(Addresses::default());
    let addresses = live.model();
    let mut runner = Runner::new(store.clone(), live);
    runner.catch_up().await.unwrap();
    assert_eq!(addresses.read().0[&1].as_deref(), Some("1 Mill Lane"));

    store.forget("1").await.unwrap();
    let forgotten = NewEvent::from_event(&CustomerForgotten { customer: 1 }, Metadata::new());
    let stream = StreamId::new("customer", 1).unwrap();
    store
        .append(&stream, ExpectedVersion::Any, vec![forgotten.unwrap()])
        .await
        .unwrap();
    runner.catch_up().await.unwrap();
    assert_eq!(
        addresses.read().0.get(&1),
        None,
        "the live read model forgot"
    );

    let rebuilt = InMemory::new(Addresses::default());
    let rebuilt_addresses = rebuilt.model();
    Runner::new(store.clone(), rebuilt)
        .catch_up()
        .await
        .unwrap();
    assert_eq!(rebuilt_addresses.read().0.get(&1), None);
    assert_eq!(
        rebuilt_addresses.read().0[&2].as_deref(),
        Some("2 Kirkgate")
    );
}

/// Any store `Store::open` gives can be wrapped, and the key store chosen at run time.
#[tokio::test]
async fn a_store_opened_by_url_is_wrapped_with_a_shared_key_store() {
    let keys: std::sync::Arc<dyn eventsrc::personal::KeyStore> =
        std::sync::Arc::new(MemoryKeyStore::new());
    let store = Encrypted::with_keys(Store::open("memory:").await.unwrap(), keys);
    let stream = StreamId::new("customer", 3).unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![moved(3, "3 Briggate")],
        )
        .await
        .unwrap();
    let raw = store
        .inner()
        .read_stream(&stream, Default::default())
        .await
        .unwrap();
    assert!(!raw[0].payload.contains("Briggate"), "{}", raw[0].payload);
    store.forget("3").await.unwrap();
    let read = store
        .read_stream(&stream, Default::default())
        .await
        .unwrap();
    let event: CustomerMoved = read[0].decode().unwrap();
    assert_eq!((event.address, event.city.as_str()), (None, "Leeds"));
}

/// The wrapper keeps every storage contract: the whole backend conformance suite passes
/// through it (its events have no personal fields, so they pass through unsealed).
mod transparent {
    use eventsrc::MemoryStore;
    use eventsrc::personal::{Encrypted, MemoryKeyStore};

    eventsrc_testing::event_store_conformance!(|| async {
        Encrypted::new(MemoryStore::new(), MemoryKeyStore::new())
    });
}
