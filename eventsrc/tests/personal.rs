//! Crypto-shredding as an application sees it: the conformance cases on the memory store, a
//! subscription that reads a forgotten subject's fields as `null`, and `Store::open` wrapped.
#![allow(clippy::unwrap_used)]

use eventsrc::personal::{Encrypted, MemoryKeyStore};
use eventsrc::subscription::Start;
use eventsrc::{
    Event, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent, Store, StreamId,
    Subscription,
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

/// A subscription (and so every runner, projection and reactor) reads through the wrapper:
/// the forgotten customer's address is `None`, the other customer's and the rest are there.
#[tokio::test]
async fn a_subscription_reads_a_forgotten_subjects_fields_as_null() {
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
