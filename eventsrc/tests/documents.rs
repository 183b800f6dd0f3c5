//! One document view, written once, run on every store: memory, SQLite and PostgreSQL
//! (through `Store::open`). Reads by id, id prefix and indexed field; deletes; a view error
//! naming its event and committing nothing of its batch; and exactly-once across a crash
//! between batches, with the runner left behind by it fenced.
//!
//! The PostgreSQL tests run on a schema of their own on the server `EVENTSRC_POSTGRES_URL`
//! names; without one they print `EVENTSRC-POSTGRES-SKIPPED` and pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/stores.rs"]
mod stores;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use eventsrc::{
    Changes, DocumentError, DocumentReader, DocumentView, Documents, Event, EventStore,
    ExpectedVersion, Metadata, NewEvent, RecordedEvent, RunError, Runner, Store, StreamId, Tenants,
};
use serde::{Deserialize, Serialize};
use stores::{TempDir, drop_schema, postgres};

// --- the view ----------------------------------------------------------------------------------

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct ItemAdded {
    sku: String,
    quantity: u32,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct ItemRemoved {
    sku: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct CheckedOut;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Abandoned;

#[derive(Event, Debug)]
enum CartEvent {
    ItemAdded(ItemAdded),
    ItemRemoved(ItemRemoved),
    CheckedOut(CheckedOut),
    Abandoned(Abandoned),
}

/// A cart, by its stream's id (`ada.1`: the owner, a dot, a number).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
struct Cart {
    status: String,
    lines: BTreeMap<String, u32>,
    /// The SKUs in the cart: indexed, one entry per element.
    skus: Vec<String>,
    /// Items added: a counter, so an event applied twice would show.
    items: u32,
    /// Events applied to this cart: exactly once shows as the number of its events.
    applied: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("cart `{cart}` has no `{sku}` to remove")]
struct NotInCart {
    cart: String,
    sku: String,
}

struct Carts;

impl DocumentView for Carts {
    const NAME: &'static str = "carts";
    const INDEXES: &'static [&'static str] = &["status", "skus"];
    type Event = CartEvent;
    type Document = Cart;
    type Error = NotInCart;

    fn apply(
        &self,
        event: CartEvent,
        record: &RecordedEvent,
        docs: &mut Changes<Cart>,
    ) -> Result<(), NotInCart> {
        let id = record.stream.id();
        if let CartEvent::ItemRemoved(removed) = &event {
            let has = docs
                .get(id)
                .is_some_and(|cart| cart.lines.contains_key(&removed.sku));
            if !has {
                return Err(NotInCart {
                    cart: id.to_owned(),
                    sku: removed.sku.clone(),
                });
            }
        }
        if matches!(event, CartEvent::Abandoned(_)) {
            docs.delete(id);
            return Ok(());
        }
        docs.update(id, |cart| {
            cart.applied += 1;
            match event {
                CartEvent::ItemAdded(added) => {
                    cart.status = "open".into();
                    cart.items += added.quantity;
                    *cart.lines.entry(added.sku).or_default() += added.quantity;
                }
                CartEvent::ItemRemoved(removed) => {
                    cart.lines.remove(&removed.sku);
                }
                CartEvent::CheckedOut(_) => cart.status = "checked out".into(),
                CartEvent::Abandoned(_) => {}
            }
            cart.skus = cart.lines.keys().cloned().collect();
        });
        Ok(())
    }
}

// --- helpers -----------------------------------------------------------------------------------

async fn append(store: &Store, cart: &str, events: &[&dyn ToNew]) {
    let stream = StreamId::new("cart", cart).unwrap();
    let events = events.iter().map(|e| e.to_new()).collect();
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .unwrap();
}

/// An event of any type, as a new event to append.
trait ToNew {
    fn to_new(&self) -> NewEvent;
}

impl<E: Event> ToNew for E {
    fn to_new(&self) -> NewEvent {
        NewEvent::from_event(self, Metadata::new()).unwrap()
    }
}

fn added(sku: &str, quantity: u32) -> ItemAdded {
    ItemAdded {
        sku: sku.into(),
        quantity,
    }
}

fn removed(sku: &str) -> ItemRemoved {
    ItemRemoved { sku: sku.into() }
}

fn ids(documents: &[(String, Cart)]) -> Vec<&str> {
    documents.iter().map(|(id, _)| id.as_str()).collect()
}

fn runner(store: &Store) -> Runner<Store, Documents<Store, Carts>> {
    Runner::new(store.clone(), Documents::new(store.clone(), Carts))
}

fn reader(store: &Store) -> DocumentReader<Store, Carts> {
    DocumentReader::new(store.clone())
}

// --- the scenarios, for any store --------------------------------------------------------------

/// Documents are found by id, by id prefix and by an indexed field (scalar or array), in
/// order of id; a delete removes a document and its indexed values; a query by a field the
/// view does not index is a typed error.
async fn documents_are_read_by_id_prefix_and_index(store: Store) {
    append(&store, "ada.1", &[&added("apple", 2), &added("pear", 1)]).await;
    append(&store, "ada.2", &[&added("pear", 3), &CheckedOut]).await;
    append(&store, "bob.1", &[&added("plum", 1), &removed("plum")]).await;
    append(&store, "adam.1", &[&added("fig", 1), &Abandoned]).await;
    // Small batches: a document read in one batch was written by an earlier one.
    runner(&store).batch_size(3).catch_up().await.unwrap();

    let carts = reader(&store);
    let ada_1 = carts.get("ada.1").await.unwrap().unwrap();
    assert_eq!(ada_1.items, 3);
    assert_eq!(ada_1.skus, ["apple", "pear"]);
    assert_eq!(ada_1.applied, 2);
    assert_eq!(carts.get("nobody.1").await.unwrap(), None);
    assert_eq!(
        carts.get("adam.1").await.unwrap(),
        None,
        "abandoned: deleted"
    );

    assert_eq!(
        ids(&carts.with_prefix("ada.").await.unwrap()),
        ["ada.1", "ada.2"]
    );
    assert_eq!(
        ids(&carts.with_prefix("ada").await.unwrap()),
        ["ada.1", "ada.2"]
    );
    assert_eq!(
        ids(&carts.with_prefix("").await.unwrap()),
        ["ada.1", "ada.2", "bob.1"]
    );
    assert!(carts.with_prefix("zed").await.unwrap().is_empty());

    assert_eq!(
        ids(&carts.by_index("skus", "pear").await.unwrap()),
        ["ada.1", "ada.2"]
    );
    assert_eq!(
        ids(&carts.by_index("skus", "apple").await.unwrap()),
        ["ada.1"]
    );
    // Removed from the cart: its indexed value went with it.
    assert!(carts.by_index("skus", "plum").await.unwrap().is_empty());
    assert!(carts.by_index("skus", "fig").await.unwrap().is_empty());
    assert_eq!(
        ids(&carts.by_index("status", "open").await.unwrap()),
        ["ada.1", "bob.1"]
    );
    let checked_out = carts.by_index("status", "checked out").await.unwrap();
    assert_eq!(ids(&checked_out), ["ada.2"]);
    assert_eq!(checked_out[0].1.items, 3);

    match carts.by_index("items", "3").await {
        Err(error @ DocumentError::NotIndexed { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("`carts`") && message.contains("`items`"),
                "{message}"
            );
            assert!(message.contains("INDEXES"), "{message}");
        }
        other => panic!("expected a query by an unindexed field to fail, got {other:?}"),
    }

    // Later events move documents between index values.
    append(&store, "ada.1", &[&removed("pear"), &CheckedOut]).await;
    runner(&store).catch_up().await.unwrap();
    assert_eq!(
        ids(&carts.by_index("skus", "pear").await.unwrap()),
        ["ada.2"]
    );
    assert_eq!(
        ids(&carts.by_index("status", "checked out").await.unwrap()),
        ["ada.1", "ada.2"]
    );
    assert_eq!(carts.get("ada.1").await.unwrap().unwrap().applied, 4);
}

/// A view's error stops the runner with an error naming the view, the event, its type and
/// its stream, and nothing of the batch is stored: not the documents of the events before it,
/// not the checkpoint.
async fn a_view_error_names_the_event_and_commits_nothing_of_its_batch(store: Store) {
    append(&store, "ada.1", &[&added("apple", 1)]).await;
    append(&store, "ada.2", &[&added("pear", 1), &removed("plum")]).await;
    let failed = runner(&store).catch_up().await.unwrap_err();
    match &failed {
        RunError::Handle {
            consumer,
            event_type,
            stream,
            ..
        } => {
            assert_eq!(consumer, "carts");
            assert_eq!(event_type, "ItemRemoved");
            assert_eq!(stream.as_str(), "cart-ada.2");
        }
        other => panic!("expected the view's error, got {other:?}"),
    }
    let message = failed.to_string();
    assert!(
        message.contains("cart `ada.2` has no `plum` to remove"),
        "{message}"
    );
    assert!(message.contains("`ItemRemoved`"), "{message}");

    let carts = reader(&store);
    assert_eq!(
        carts.get("ada.1").await.unwrap(),
        None,
        "nothing of the batch"
    );
    assert!(carts.with_prefix("").await.unwrap().is_empty());
    assert_eq!(carts.checkpoint().await.unwrap(), None);
}

/// A crash between batches: the first runner committed one batch and is left behind (a
/// process that stopped, or a node that paused); a new one, on a store opened again, goes on
/// from the stored checkpoint and applies every later event once. The runner left behind is
/// then fenced at its next batch, and changes nothing.
async fn a_crash_between_batches_applies_every_event_once(
    first: Store,
    reopen: impl Fn() -> Pin<Box<dyn Future<Output = Store>>>,
) {
    append(&first, "ada.1", &[&added("apple", 1), &added("pear", 2)]).await;
    append(&first, "ada.2", &[&added("plum", 4)]).await;
    append(&first, "bob.1", &[&added("fig", 8), &added("fig", 16)]).await;
    let mut left_behind = runner(&first).batch_size(2);
    assert!(left_behind.step().await.unwrap(), "the first batch commits");
    let committed = reader(&first).checkpoint().await.unwrap();
    assert!(committed.is_some());

    let second = reopen().await;
    let progress = runner(&second).batch_size(2).catch_up().await.unwrap();
    assert_eq!(progress.handled, 3, "only the events after the first batch");

    let check = |store: Store| async move {
        let carts = reader(&store);
        let totals: Vec<(String, u32, u32)> = carts
            .with_prefix("")
            .await
            .unwrap()
            .into_iter()
            .map(|(id, cart)| (id, cart.items, cart.applied))
            .collect();
        assert_eq!(
            totals,
            [
                ("ada.1".to_owned(), 3, 2),
                ("ada.2".to_owned(), 4, 1),
                ("bob.1".to_owned(), 24, 2)
            ]
        );
    };
    check(second.clone()).await;

    match left_behind.step().await {
        Err(RunError::Fenced {
            consumer,
            expected,
            actual,
        }) => {
            assert_eq!(consumer, "carts");
            assert_eq!(expected, committed);
            assert_eq!(actual, reader(&second).checkpoint().await.unwrap());
        }
        other => panic!("expected the runner left behind to be fenced, got {other:?}"),
    }
    check(second.clone()).await;

    // Events after the crash are applied once, by the runner that took over.
    append(&second, "ada.2", &[&added("plum", 1)]).await;
    runner(&second).catch_up().await.unwrap();
    let ada_2 = reader(&second).get("ada.2").await.unwrap().unwrap();
    assert_eq!((ada_2.items, ada_2.applied), (5, 2));
}

/// A runner following the log live: the application appends, waits for the view to reach the
/// append's position, and reads its write.
async fn a_live_view_lets_the_application_read_its_writes(store: Store) {
    let runner = runner(&store).poll_interval(std::time::Duration::from_millis(20));
    let progress = runner.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        stopped.await.ok();
    }));
    let carts = reader(&store);
    for quantity in 1..=3 {
        let stream = StreamId::new("cart", "ada.1").unwrap();
        let event = added("apple", quantity).to_new();
        let appended = store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
        progress
            .wait_for(appended.position, std::time::Duration::from_secs(10))
            .await
            .unwrap();
        let cart = carts.get("ada.1").await.unwrap().unwrap();
        assert_eq!(cart.applied, quantity, "read after append {quantity}");
        assert_eq!(carts.checkpoint().await.unwrap(), Some(appended.position));
    }
    assert_eq!(carts.get("ada.1").await.unwrap().unwrap().items, 6);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Two runners of the view at once, as two nodes whose leases overlapped, taking turns batch
/// by batch: both start from no checkpoint, so the second's first batch is fenced; from then
/// on each batch is committed by one of them and refused to the other, and every event is
/// applied once.
async fn two_runners_at_once_apply_every_event_once(store: Store) {
    for cart in 0..6 {
        let id = format!("ada.{cart}");
        let events: Vec<ItemAdded> = (1..=5).map(|n| added("apple", n)).collect();
        let events: Vec<&dyn ToNew> = events.iter().map(|e| e as &dyn ToNew).collect();
        append(&store, &id, &events).await;
    }
    let mut one = runner(&store).batch_size(3);
    let mut other = runner(&store).batch_size(3);
    // Both read the checkpoint before either handles anything.
    one.lag().await.unwrap();
    other.lag().await.unwrap();
    let mut fenced = 0;
    for _ in 0..40 {
        let mut moved = false;
        for runner in [&mut one, &mut other] {
            match runner.step().await {
                Ok(step) => moved |= step,
                Err(RunError::Fenced { .. }) => fenced += 1,
                Err(error) => panic!("a runner failed otherwise than fenced: {error}"),
            }
        }
        if !moved {
            break;
        }
    }
    assert!(fenced >= 1, "the runner behind was fenced");
    let carts = reader(&store).with_prefix("ada.").await.unwrap();
    assert_eq!(carts.len(), 6);
    for (id, cart) in carts {
        assert_eq!((cart.items, cart.applied), (15, 5), "cart `{id}`");
    }
}

// --- memory ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_two_runners_at_once_apply_every_event_once() {
    two_runners_at_once_apply_every_event_once(Store::open("memory:").await.unwrap()).await;
}

#[tokio::test]
async fn memory_a_live_view_lets_the_application_read_its_writes() {
    a_live_view_lets_the_application_read_its_writes(Store::open("memory:").await.unwrap()).await;
}

#[tokio::test]
async fn memory_documents_are_read_by_id_prefix_and_index() {
    documents_are_read_by_id_prefix_and_index(Store::open("memory:").await.unwrap()).await;
}

#[tokio::test]
async fn memory_a_view_error_names_the_event_and_commits_nothing_of_its_batch() {
    let store = Store::open("memory:").await.unwrap();
    a_view_error_names_the_event_and_commits_nothing_of_its_batch(store).await;
}

/// In memory, "again" is another handle on the same store within the process: exactly once
/// holds for the life of the process.
#[tokio::test]
async fn memory_a_runner_left_behind_is_fenced_and_every_event_applies_once() {
    let store = Store::open("memory:").await.unwrap();
    let again = store.clone();
    a_crash_between_batches_applies_every_event_once(store, move || {
        let again = again.clone();
        Box::pin(async move { again })
    })
    .await;
}

// --- SQLite ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_documents_are_read_by_id_prefix_and_index() {
    let dir = TempDir::new("eventsrc-documents");
    documents_are_read_by_id_prefix_and_index(Store::open(&dir.url()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_live_view_lets_the_application_read_its_writes() {
    let dir = TempDir::new("eventsrc-documents");
    a_live_view_lets_the_application_read_its_writes(Store::open(&dir.url()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_runners_at_once_apply_every_event_once() {
    let dir = TempDir::new("eventsrc-documents");
    two_runners_at_once_apply_every_event_once(Store::open(&dir.url()).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_in_memory_documents_are_read_by_id_prefix_and_index() {
    documents_are_read_by_id_prefix_and_index(Store::open("sqlite::memory:").await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_view_error_names_the_event_and_commits_nothing_of_its_batch() {
    let dir = TempDir::new("eventsrc-documents");
    let store = Store::open(&dir.url()).await.unwrap();
    a_view_error_names_the_event_and_commits_nothing_of_its_batch(store).await;
}

/// The file is opened again, as a restarted process would, while the handle of the runner left
/// behind is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_crash_between_batches_applies_every_event_once() {
    let dir = TempDir::new("eventsrc-documents");
    let url = dir.url();
    let store = Store::open(&url).await.unwrap();
    a_crash_between_batches_applies_every_event_once(store, move || {
        let url = url.clone();
        Box::pin(async move { Store::open(&url).await.unwrap() })
    })
    .await;
}

/// Documents survive closing and opening the file, and a view's runner started again goes on
/// from its checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_documents_and_their_checkpoint_outlive_the_store() {
    let dir = TempDir::new("eventsrc-documents");
    let store = Store::open(&dir.url()).await.unwrap();
    append(&store, "ada.1", &[&added("apple", 1)]).await;
    runner(&store).catch_up().await.unwrap();
    drop(store);

    let store = Store::open(&dir.url()).await.unwrap();
    let carts = reader(&store);
    assert_eq!(carts.get("ada.1").await.unwrap().unwrap().items, 1);
    append(&store, "ada.1", &[&added("apple", 1)]).await;
    let progress = runner(&store).catch_up().await.unwrap();
    assert_eq!(progress.handled, 1);
    assert_eq!(carts.get("ada.1").await.unwrap().unwrap().items, 2);
}

// --- PostgreSQL --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_documents_are_read_by_id_prefix_and_index() {
    let Some((store, _)) = postgres("postgres_documents_are_read_by_id_prefix_and_index").await
    else {
        return;
    };
    documents_are_read_by_id_prefix_and_index(store.clone()).await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_view_error_names_the_event_and_commits_nothing_of_its_batch() {
    let test = "postgres_a_view_error_names_the_event_and_commits_nothing_of_its_batch";
    let Some((store, _)) = postgres(test).await else {
        return;
    };
    a_view_error_names_the_event_and_commits_nothing_of_its_batch(store.clone()).await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_live_view_lets_the_application_read_its_writes() {
    let test = "postgres_a_live_view_lets_the_application_read_its_writes";
    let Some((store, _)) = postgres(test).await else {
        return;
    };
    a_live_view_lets_the_application_read_its_writes(store.clone()).await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_runners_at_once_apply_every_event_once() {
    let test = "postgres_two_runners_at_once_apply_every_event_once";
    let Some((store, _)) = postgres(test).await else {
        return;
    };
    two_runners_at_once_apply_every_event_once(store.clone()).await;
    drop_schema(&store).await;
}

/// The schema is opened again through a new pool, as a restarted node would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_crash_between_batches_applies_every_event_once() {
    let test = "postgres_a_crash_between_batches_applies_every_event_once";
    let Some((store, url)) = postgres(test).await else {
        return;
    };
    a_crash_between_batches_applies_every_event_once(store.clone(), move || {
        let url = url.clone();
        Box::pin(async move { Store::open(&url).await.unwrap() })
    })
    .await;
    drop_schema(&store).await;
}

/// Two tenants of one schema keep their own documents and checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_documents_belong_to_their_tenant() {
    let Some((store, _)) = postgres("postgres_documents_belong_to_their_tenant").await else {
        return;
    };
    let acme = store.with_tenant("acme".into());
    append(&store, "ada.1", &[&added("apple", 1)]).await;
    append(&acme, "ada.1", &[&added("apple", 5)]).await;
    runner(&store).catch_up().await.unwrap();
    assert_eq!(reader(&store).get("ada.1").await.unwrap().unwrap().items, 1);
    assert_eq!(reader(&acme).get("ada.1").await.unwrap(), None);
    runner(&acme).catch_up().await.unwrap();
    assert_eq!(reader(&acme).get("ada.1").await.unwrap().unwrap().items, 5);
    assert_eq!(
        ids(&reader(&acme).by_index("skus", "apple").await.unwrap()),
        ["ada.1"]
    );
    drop_schema(&store).await;
}
