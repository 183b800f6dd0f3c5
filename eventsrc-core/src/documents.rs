//! Document read models: a view written once, kept as JSON documents by whichever store runs
//! it, each batch's documents committed together with the view's checkpoint.
//!
//! A [`DocumentView`] folds events into documents keyed by id, through a change-set
//! ([`Changes`]) that reads the stored documents it needs. [`Documents`] runs it as a
//! [`Consumer`] of a [`Runner`](crate::Runner): each batch becomes one change-set, committed
//! by the store ([`DocumentStore`]) with the checkpoint in one step that is refused when the
//! checkpoint is not where the batch started. A [`DocumentReader`] reads the documents by id,
//! by id prefix or by an indexed field.
//!
//! | store | documents | effect |
//! |---|---|---|
//! | [`MemoryStore`](crate::MemoryStore) | in process memory, beside its checkpoint | exactly once per process |
//! | SQLite (`eventsrc-sqlite`) | the `documents` table of the store's file, one writer transaction per batch | exactly once |
//! | PostgreSQL (`eventsrc-postgres`) | `jsonb` rows of the store's schema, the checkpoint row locked in the batch's transaction | exactly once, across nodes |

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{decode, stored_types};
use crate::runner::consumer::load_checkpoint;
use crate::runner::{Consumer, UnknownEvents};
use crate::{CheckpointStore, Event, GlobalPosition, RecordedEvent, RunError, StoreError};

/// A read model of JSON documents keyed by id, written once for every store.
///
/// `apply` folds one event into the documents through `docs`, a change-set that reads the
/// stored documents ([`Changes::get`]) and collects puts and deletes. The runner commits a
/// batch's change-set together with the view's checkpoint, so on the SQL backends every event
/// is applied exactly once, even across crashes: `apply` may add to counters.
///
/// `apply` must be a pure function of its arguments and the documents it reads: the runner
/// may call it more than once for an event within a batch (it runs the batch again after
/// loading documents that `get` asked for and were not loaded yet) and keeps only the last
/// run's changes. Keep state in documents, never in `self`.
///
/// Fields named in [`INDEXES`](Self::INDEXES) are indexed: a [`DocumentReader`] finds the
/// documents whose field has a value ([`DocumentReader::by_index`]). A field holding an array
/// indexes each element.
///
/// ```
/// use eventsrc::{Changes, DocumentReader, DocumentView, Documents, Event, RecordedEvent, Runner};
/// use eventsrc::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StreamId};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Serialize, Deserialize, Debug)]
/// struct ItemAdded { sku: String, quantity: u32 }
///
/// #[derive(Event, Debug)]
/// enum CartEvent { ItemAdded(ItemAdded) }
///
/// /// A cart's items, by cart.
/// #[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
/// struct Cart { items: u32, skus: Vec<String> }
///
/// struct Carts;
///
/// impl DocumentView for Carts {
///     const NAME: &'static str = "carts";
///     const INDEXES: &'static [&'static str] = &["skus"];
///     type Event = CartEvent;
///     type Document = Cart;
///     type Error = std::convert::Infallible;
///
///     fn apply(&self, event: CartEvent, record: &RecordedEvent, docs: &mut Changes<Cart>)
///         -> Result<(), Self::Error>
///     {
///         let CartEvent::ItemAdded(added) = event;
///         docs.update(record.stream.id(), |cart| {
///             cart.items += added.quantity;
///             cart.skus.push(added.sku);
///         });
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// // The same code runs on `Store::open("sqlite://...")` or `Store::open("postgres://...")`.
/// let store = MemoryStore::new();
/// let cart = StreamId::new("cart", "42")?;
/// let added = |sku: &str| NewEvent::from_event(&ItemAdded { sku: sku.into(), quantity: 2 }, Default::default());
/// store.append(&cart, ExpectedVersion::Any, vec![added("apple")?, added("pear")?]).await?;
///
/// Runner::new(store.clone(), Documents::new(store.clone(), Carts)).catch_up().await?;
///
/// let carts = DocumentReader::<_, Carts>::new(store);
/// assert_eq!(carts.get("42").await?.map(|cart| cart.items), Some(4));
/// let with_pears = carts.by_index("skus", "pear").await?;
/// assert_eq!(with_pears.len(), 1);
/// assert_eq!(with_pears[0].0, "42");
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait DocumentView: Send + Sync + 'static {
    /// The name its documents and its checkpoint are kept under; change it to rebuild from
    /// scratch.
    const NAME: &'static str;
    /// What to do with events `Event` does not know.
    const UNKNOWN_EVENTS: UnknownEvents = UnknownEvents::Skip;
    /// The top-level fields of a document that [`DocumentReader::by_index`] finds documents
    /// by. A string is indexed as it is, a number or a boolean as its JSON text, an array as
    /// each of its elements; `null`, a missing field and objects are not indexed.
    const INDEXES: &'static [&'static str] = &[];
    /// The events it reads.
    type Event: Event;
    /// One document, stored as JSON.
    type Document: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What applying can fail with: the runner stops, naming the event, and nothing of the
    /// batch is committed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Folds one event into the documents; `record` carries its stream, positions, metadata
    /// and time.
    fn apply(
        &self,
        event: Self::Event,
        record: &RecordedEvent,
        docs: &mut Changes<Self::Document>,
    ) -> Result<(), Self::Error>;
}

/// A batch's changes to a view's documents, reading through to the stored ones.
///
/// [`get`](Self::get) sees the changes made so far in the batch, then the stored documents.
/// A stored document the runner has not loaded yet reads as absent for now: the runner loads
/// it and runs the batch again, so `apply` sees every document it asks for before anything is
/// committed.
#[derive(Debug)]
pub struct Changes<D> {
    /// Documents loaded from the store: `None` where the store has none.
    stored: HashMap<String, Option<D>>,
    /// Puts (`Some`) and deletes (`None`) of this batch, by id.
    pending: BTreeMap<String, Option<D>>,
    /// Ids `get` asked for that are neither loaded nor changed.
    missed: RefCell<BTreeSet<String>>,
}

impl<D> Default for Changes<D> {
    fn default() -> Self {
        Self {
            stored: HashMap::new(),
            pending: BTreeMap::new(),
            missed: RefCell::default(),
        }
    }
}

impl<D> Changes<D> {
    /// A change-set on top of no stored documents: for testing a view's `apply` by itself.
    pub fn new() -> Self {
        Self::default()
    }

    /// The document `id` as the batch has it so far: changed in the batch, else stored.
    pub fn get(&self, id: &str) -> Option<&D> {
        if let Some(changed) = self.pending.get(id) {
            return changed.as_ref();
        }
        match self.stored.get(id) {
            Some(stored) => stored.as_ref(),
            None => {
                self.missed.borrow_mut().insert(id.to_owned());
                None
            }
        }
    }

    /// Stores `document` as `id`, replacing what was there.
    pub fn put(&mut self, id: impl Into<String>, document: D) {
        self.pending.insert(id.into(), Some(document));
    }

    /// Removes the document `id` (nothing happens if there is none).
    pub fn delete(&mut self, id: impl Into<String>) {
        self.pending.insert(id.into(), None);
    }

    /// Changes the document `id` with `change`, starting from a default document when there is
    /// none, and stores it.
    pub fn update(&mut self, id: impl Into<String>, change: impl FnOnce(&mut D))
    where
        D: Default + Clone,
    {
        let id = id.into();
        let mut document = match self.pending.remove(&id) {
            Some(changed) => changed.unwrap_or_default(),
            None => self.get(&id).cloned().unwrap_or_default(),
        };
        change(&mut document);
        self.put(id, document);
    }

    /// The puts (`Some`) and deletes (`None`) made so far, by id.
    pub fn changed(&self) -> impl Iterator<Item = (&str, Option<&D>)> {
        self.pending.iter().map(|(id, d)| (id.as_str(), d.as_ref()))
    }

    /// Forgets the batch's changes and the ids it missed, keeping what was loaded.
    fn restart(&mut self) -> Vec<String> {
        self.pending.clear();
        std::mem::take(self.missed.get_mut()).into_iter().collect()
    }
}

/// What reading or writing a view's documents failed with, naming the view (and the document).
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The store failed.
    #[error("view `{view}`: {source}")]
    Store {
        /// The view.
        view: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// A stored document does not decode as the view's `Document`: its type changed without a
    /// new `NAME` (change the name to rebuild the view from the log).
    #[error("view `{view}`: the stored document `{id}` does not decode: {source}")]
    Decode {
        /// The view.
        view: String,
        /// The document's id.
        id: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A document does not encode as JSON (a map with keys that are not strings, say).
    #[error("view `{view}`: the document `{id}` does not encode as JSON: {source}")]
    Encode {
        /// The view.
        view: String,
        /// The document's id.
        id: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A query by a field the view does not index.
    #[error(
        "view `{view}` does not index `{field}`: add it to `INDEXES` (and rename the view to rebuild it), or query by id"
    )]
    NotIndexed {
        /// The view.
        view: String,
        /// The field asked for.
        field: String,
    },
}

impl DocumentError {
    fn store(view: &str, source: StoreError) -> Self {
        Self::Store {
            view: view.to_owned(),
            source,
        }
    }
}

/// Which documents of a view a query selects ([`DocumentStore::query_documents`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select<'a> {
    /// Those whose id starts with this (all of them for `""`).
    Prefix(&'a str),
    /// Those with this value in this indexed field.
    Index {
        /// The field.
        field: &'a str,
        /// The value, as [`index_values`] spells it.
        value: &'a str,
    },
}

/// One document written by a batch ([`DocumentStore::commit_documents`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentWrite {
    /// The document's id.
    pub id: String,
    /// Its JSON, or `None` to delete it.
    pub body: Option<String>,
    /// Its indexed values, `(field, value)`, as [`index_values`] gives them: they replace the
    /// document's earlier ones.
    pub index: Vec<(String, String)>,
}

/// What [`DocumentStore::commit_documents`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentCommit {
    /// The writes and the checkpoint are stored.
    Committed,
    /// The checkpoint was not where the batch started: nothing was stored.
    Fenced {
        /// Where the checkpoint is.
        stored: Option<GlobalPosition>,
    },
}

/// Keeps document read models: the documents of each view, per tenant, and their
/// checkpoints (in the store's [`CheckpointStore`], under the view's name).
///
/// A backend implements it so that [`Documents`] runs on it. Ids and indexed values compare
/// byte for byte (PostgreSQL columns collate as `"C"`), and queries return documents in that
/// order of their ids. A body comes back as equal JSON, not necessarily the same text
/// (PostgreSQL's `jsonb` spells it its own way). `eventsrc-testing`'s conformance suite holds
/// the cases every implementation must pass.
pub trait DocumentStore: CheckpointStore {
    /// The stored JSON of those of `ids` that `view` has, as `(id, body)`, in any order.
    fn load_documents(
        &self,
        view: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// The documents of `view` that `select` selects, as `(id, body)`, in order of id.
    fn query_documents(
        &self,
        view: &str,
        select: Select<'_>,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Stores `writes` and moves `view`'s checkpoint to `through`, atomically, if the
    /// checkpoint is at `from`; otherwise stores nothing and answers
    /// [`DocumentCommit::Fenced`].
    fn commit_documents(
        &self,
        view: &str,
        from: Option<GlobalPosition>,
        through: GlobalPosition,
        writes: Vec<DocumentWrite>,
    ) -> impl Future<Output = Result<DocumentCommit, StoreError>> + Send;
}

/// The indexed values of `document` for the fields `indexes`, as `(field, value)`: a string as
/// it is, a number or boolean as its JSON text, each element of an array; duplicates once.
pub fn index_values(indexes: &[&str], document: &serde_json::Value) -> Vec<(String, String)> {
    let mut values = Vec::new();
    for &field in indexes {
        let mut push = |value: &serde_json::Value| {
            if let Some(text) = index_text(value) {
                let entry = (field.to_owned(), text);
                if !values.contains(&entry) {
                    values.push(entry);
                }
            }
        };
        match document.get(field) {
            Some(serde_json::Value::Array(items)) => items.iter().for_each(&mut push),
            Some(value) => push(value),
            None => {}
        }
    }
    values
}

fn index_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        serde_json::Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A [`DocumentView`] as a [`Consumer`]: each batch is folded into one change-set and
/// committed with the view's checkpoint by the store, refused (as [`RunError::Fenced`]) when
/// another runner moved the checkpoint.
///
/// ```
/// # use eventsrc::{Changes, DocumentView, Event, RecordedEvent};
/// # #[derive(Event, serde::Serialize, serde::Deserialize, Debug)]
/// # struct Noted { text: String }
/// # struct Notes;
/// # impl DocumentView for Notes {
/// #     const NAME: &'static str = "notes";
/// #     type Event = Noted;
/// #     type Document = String;
/// #     type Error = std::convert::Infallible;
/// #     fn apply(&self, e: Noted, r: &RecordedEvent, docs: &mut Changes<String>) -> Result<(), Self::Error> {
/// #         docs.put(r.stream.id(), e.text);
/// #         Ok(())
/// #     }
/// # }
/// use eventsrc::{Documents, EventStore, ExpectedVersion, NewEvent, Runner, Store, StreamId};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// // Any URL: `sqlite://notes.db`, `postgres://...`; the view is the same.
/// let store = Store::open("memory:").await?;
/// let note = NewEvent::from_event(&Noted { text: "call back".into() }, Default::default())?;
/// store.append(&StreamId::new("note", "1")?, ExpectedVersion::Any, vec![note]).await?;
///
/// let notes = Documents::new(store.clone(), Notes);
/// let reader = notes.reader();
/// Runner::new(store, notes).catch_up().await?;
/// assert_eq!(reader.get("1").await?.as_deref(), Some("call back"));
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Documents<S, V> {
    store: S,
    view: V,
}

impl<S: DocumentStore, V: DocumentView> Documents<S, V> {
    /// `view`, its documents and checkpoint kept in `store` under [`DocumentView::NAME`] and
    /// `store`'s tenant.
    pub fn new(store: S, view: V) -> Self {
        Self { store, view }
    }

    /// The view.
    pub fn view(&self) -> &V {
        &self.view
    }

    /// A handle to read the view's documents.
    pub fn reader(&self) -> DocumentReader<S, V>
    where
        S: Clone,
    {
        DocumentReader::new(self.store.clone())
    }

    /// Folds `events` into a change-set, loading the documents `apply` asks for and running
    /// the batch again until it asked for nothing unloaded.
    async fn fold(&self, events: &[RecordedEvent]) -> Result<Changes<V::Document>, RunError> {
        let name = V::NAME;
        let mut changes = Changes::new();
        loop {
            let mut failed = None;
            for record in events {
                let Some(event) = decode::<V::Event>(name, record, V::UNKNOWN_EVENTS)? else {
                    continue;
                };
                if let Err(error) = self.view.apply(event, record, &mut changes) {
                    failed = Some(RunError::handle(name, record, error));
                    break;
                }
            }
            if changes.missed.get_mut().is_empty() {
                return match failed {
                    Some(error) => Err(error),
                    None => Ok(changes),
                };
            }
            // The run saw documents as absent that may be stored: load them, run again.
            let missed = changes.restart();
            let loaded = load::<S, V>(&self.store, &missed)
                .await
                .map_err(|error| RunError::store(name, StoreError::backend(error)))?;
            changes.stored.extend(
                loaded
                    .into_iter()
                    .map(|(id, document)| (id, Some(document))),
            );
            for id in missed {
                changes.stored.entry(id).or_insert(None);
            }
        }
    }
}

/// Loads and decodes the documents `ids` of `V`.
async fn load<S: DocumentStore, V: DocumentView>(
    store: &S,
    ids: &[String],
) -> Result<Vec<(String, V::Document)>, DocumentError> {
    let rows = store
        .load_documents(V::NAME, ids)
        .await
        .map_err(|e| DocumentError::store(V::NAME, e))?;
    decode_rows::<V>(rows)
}

/// Decodes the `(id, body)` rows a store gave for `V`.
fn decode_rows<V: DocumentView>(
    rows: Vec<(String, String)>,
) -> Result<Vec<(String, V::Document)>, DocumentError> {
    rows.into_iter()
        .map(|(id, body)| {
            let document = decode_document::<V>(&id, &body)?;
            Ok((id, document))
        })
        .collect()
}

fn decode_document<V: DocumentView>(id: &str, body: &str) -> Result<V::Document, DocumentError> {
    serde_json::from_str(body).map_err(|source| DocumentError::Decode {
        view: V::NAME.to_owned(),
        id: id.to_owned(),
        source,
    })
}

/// The change-set as the store writes it: JSON and indexed values per document.
fn encode<V: DocumentView>(
    changes: Changes<V::Document>,
) -> Result<Vec<DocumentWrite>, DocumentError> {
    changes
        .pending
        .into_iter()
        .map(|(id, document)| {
            let Some(document) = document else {
                return Ok(DocumentWrite {
                    id,
                    body: None,
                    index: Vec::new(),
                });
            };
            let encode_error = |source| DocumentError::Encode {
                view: V::NAME.to_owned(),
                id: id.clone(),
                source,
            };
            let value = serde_json::to_value(&document).map_err(encode_error)?;
            let index = index_values(V::INDEXES, &value);
            let body = serde_json::to_string(&value).map_err(encode_error)?;
            Ok(DocumentWrite {
                id,
                body: Some(body),
                index,
            })
        })
        .collect()
}

impl<S: DocumentStore, V: DocumentView> Consumer for Documents<S, V> {
    fn name(&self) -> &str {
        V::NAME
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        stored_types::<V::Event>(V::UNKNOWN_EVENTS)
    }

    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        load_checkpoint(&self.store, V::NAME).await
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        let changes = self.fold(events).await?;
        let writes = encode::<V>(changes)
            .map_err(|error| RunError::store(V::NAME, StoreError::backend(error)))?;
        let committed = self
            .store
            .commit_documents(V::NAME, from, through, writes)
            .await
            .map_err(|e| RunError::store(V::NAME, e))?;
        match committed {
            DocumentCommit::Committed => Ok(()),
            DocumentCommit::Fenced { stored } => Err(RunError::fenced(V::NAME, from, stored)),
        }
    }
}

/// Reads the documents of a [`DocumentView`] `V` from a store: by id, by id prefix, by an
/// indexed field. It reads what the view's runner has committed; wait for it with
/// [`ProgressWatch::wait_for`](crate::ProgressWatch::wait_for) (or
/// [`wait_for_checkpoint`](crate::wait_for_checkpoint) on another node) to read your writes.
///
/// ```
/// # use eventsrc::{Changes, DocumentView, Event, RecordedEvent};
/// # #[derive(Event, serde::Serialize, serde::Deserialize, Debug)]
/// # struct Noted { text: String }
/// # struct Notes;
/// # impl DocumentView for Notes {
/// #     const NAME: &'static str = "notes";
/// #     type Event = Noted;
/// #     type Document = String;
/// #     type Error = std::convert::Infallible;
/// #     fn apply(&self, e: Noted, r: &RecordedEvent, docs: &mut Changes<String>) -> Result<(), Self::Error> {
/// #         docs.put(r.stream.id(), e.text);
/// #         Ok(())
/// #     }
/// # }
/// use eventsrc::{DocumentError, DocumentReader, MemoryStore};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let notes = DocumentReader::<_, Notes>::new(MemoryStore::new());
/// assert_eq!(notes.get("1").await?, None);
/// assert!(notes.with_prefix("").await?.is_empty());
/// // `Notes` declares no indexes.
/// assert!(matches!(notes.by_index("text", "call back").await, Err(DocumentError::NotIndexed { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DocumentReader<S, V> {
    store: S,
    view: PhantomData<fn() -> V>,
}

impl<S: Clone, V> Clone for DocumentReader<S, V> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            view: PhantomData,
        }
    }
}

impl<S: std::fmt::Debug, V: DocumentView> std::fmt::Debug for DocumentReader<S, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentReader")
            .field("view", &V::NAME)
            .field("store", &self.store)
            .finish()
    }
}

impl<S: DocumentStore, V: DocumentView> DocumentReader<S, V> {
    /// Reads `V`'s documents in `store`, for `store`'s tenant.
    pub fn new(store: S) -> Self {
        Self {
            store,
            view: PhantomData,
        }
    }

    /// The document `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<V::Document>, DocumentError> {
        let loaded = load::<S, V>(&self.store, &[id.to_owned()]).await?;
        Ok(loaded
            .into_iter()
            .find_map(|(found, d)| (found == id).then_some(d)))
    }

    /// The documents whose id starts with `prefix`, with their ids, in order of id.
    pub async fn with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, V::Document)>, DocumentError> {
        self.query(Select::Prefix(prefix)).await
    }

    /// The documents whose indexed `field` holds `value` (itself or as an element of an
    /// array; a number or boolean as its JSON text, `"42"`, `"true"`), with their ids, in
    /// order of id.
    pub async fn by_index(
        &self,
        field: &str,
        value: &str,
    ) -> Result<Vec<(String, V::Document)>, DocumentError> {
        if !V::INDEXES.contains(&field) {
            return Err(DocumentError::NotIndexed {
                view: V::NAME.to_owned(),
                field: field.to_owned(),
            });
        }
        self.query(Select::Index { field, value }).await
    }

    /// Where the view's runner has got: the documents include every event up to here.
    pub async fn checkpoint(&self) -> Result<Option<GlobalPosition>, DocumentError> {
        self.store
            .load_checkpoint(V::NAME)
            .await
            .map_err(|e| DocumentError::store(V::NAME, e))
    }

    async fn query(&self, select: Select<'_>) -> Result<Vec<(String, V::Document)>, DocumentError> {
        let rows = self
            .store
            .query_documents(V::NAME, select)
            .await
            .map_err(|e| DocumentError::store(V::NAME, e))?;
        decode_rows::<V>(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_values_take_scalars_and_array_elements_once() {
        let document = serde_json::json!({
            "owner": "ada",
            "count": 3,
            "open": true,
            "tags": ["a", "b", "a", 7, null, {"x": 1}],
            "nothing": null,
            "nested": {"owner": "bob"},
        });
        let fields = [
            "owner", "count", "open", "tags", "nothing", "nested", "missing",
        ];
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            index_values(&fields, &document),
            pairs(&[
                ("owner", "ada"),
                ("count", "3"),
                ("open", "true"),
                ("tags", "a"),
                ("tags", "b"),
                ("tags", "7"),
            ])
        );
    }

    #[test]
    fn changes_read_their_own_writes_then_the_stored_documents_and_note_misses() {
        let mut changes: Changes<u32> = Changes::new();
        changes.stored.insert("stored".into(), Some(1));
        changes.stored.insert("absent".into(), None);
        assert_eq!(changes.get("stored"), Some(&1));
        assert_eq!(changes.get("absent"), None);
        assert!(changes.missed.borrow().is_empty());
        assert_eq!(changes.get("unloaded"), None);
        assert_eq!(changes.restart(), ["unloaded"]);

        changes.update("stored", |n| *n += 1);
        changes.update("new", |n| *n += 5);
        changes.delete("absent");
        assert_eq!(changes.get("stored"), Some(&2));
        assert_eq!(changes.get("new"), Some(&5));
        let changed: Vec<_> = changes.changed().collect();
        assert_eq!(
            changed,
            [("absent", None), ("new", Some(&5)), ("stored", Some(&2))]
        );
        changes.delete("new");
        changes.update("new", |n| *n += 1);
        assert_eq!(
            changes.get("new"),
            Some(&1),
            "a deleted document starts again"
        );
        // `new` was never loaded: the first update read it as absent, which the runner must
        // check by loading it and running the batch again.
        assert_eq!(changes.restart(), ["new"]);
        assert_eq!(changes.changed().count(), 0);
    }
}
