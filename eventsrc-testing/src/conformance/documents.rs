//! Document views' storage ([`DocumentStore`]): a batch's documents commit with the view's
//! checkpoint or not at all, a moved checkpoint fences the batch, queries select by id prefix
//! and indexed value in byte order of ids, and documents belong to their tenant and view.

use eventsrc_core::GlobalPosition;
use eventsrc_core::backend::{DocumentCommit, DocumentStore, DocumentWrite, Select};

use super::StoreUnderTest;
use super::sample::fresh_tenant;

const VIEW: &str = "conformance-documents";

fn put(id: &str, body: &str, index: &[(&str, &str)]) -> DocumentWrite {
    DocumentWrite {
        id: id.to_owned(),
        body: Some(body.to_owned()),
        index: index
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn delete(id: &str) -> DocumentWrite {
    DocumentWrite {
        id: id.to_owned(),
        body: None,
        index: Vec::new(),
    }
}

fn at(n: u64) -> GlobalPosition {
    GlobalPosition::new(n, n)
}

async fn commit<S: DocumentStore>(
    store: &S,
    from: Option<GlobalPosition>,
    through: GlobalPosition,
    writes: Vec<DocumentWrite>,
) -> DocumentCommit {
    store
        .commit_documents(VIEW, from, through, writes)
        .await
        .expect("commit_documents")
}

/// `(id, body)` rows with each body parsed: a store may give back equal JSON spelled
/// otherwise (PostgreSQL's `jsonb` does).
fn parsed(rows: Vec<(String, String)>) -> Vec<(String, serde_json::Value)> {
    rows.into_iter()
        .map(|(id, body)| {
            let value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("document `{id}` came back as no JSON ({e}): {body}"));
            (id, value)
        })
        .collect()
}

async fn all<S: DocumentStore>(store: &S) -> Vec<(String, serde_json::Value)> {
    let rows = store
        .query_documents(VIEW, Select::Prefix(""))
        .await
        .expect("query_documents");
    parsed(rows)
}

/// The ids of the documents `select` picks, in the order the store gives them.
async fn selected<S: DocumentStore>(store: &S, select: Select<'_>) -> Vec<String> {
    let rows = store
        .query_documents(VIEW, select)
        .await
        .expect("query_documents");
    rows.into_iter().map(|(id, _)| id).collect()
}

fn ids<T>(rows: &[(String, T)]) -> Vec<&str> {
    rows.iter().map(|(id, _)| id.as_str()).collect()
}

/// A commit stores its documents and moves the checkpoint; a commit from a checkpoint that is
/// not the stored one is fenced, naming the stored one, and stores nothing; a later commit
/// replaces, deletes and leaves alone documents as its writes say.
pub async fn documents_commit_with_their_checkpoint_and_a_moved_checkpoint_fences<
    S: StoreUnderTest,
>(
    store: S,
) {
    let first = vec![
        put("a", r#"{"n":1}"#, &[("tag", "x")]),
        put("b", r#"{"n":2}"#, &[("tag", "x")]),
    ];
    assert_eq!(
        commit(&store, None, at(1), first).await,
        DocumentCommit::Committed
    );
    assert_eq!(store.load_checkpoint(VIEW).await.unwrap(), Some(at(1)));
    let mut loaded = parsed(
        store
            .load_documents(VIEW, &["b".to_owned(), "a".to_owned(), "c".to_owned()])
            .await
            .unwrap(),
    );
    loaded.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        loaded,
        [
            ("a".to_owned(), serde_json::json!({"n": 1})),
            ("b".to_owned(), serde_json::json!({"n": 2}))
        ],
        "load_documents gives the stored ones of the ids asked for"
    );

    // A runner that still thinks the view is at the start is fenced.
    let stale = vec![put("a", r#"{"n":100}"#, &[]), delete("b")];
    assert_eq!(
        commit(&store, None, at(2), stale).await,
        DocumentCommit::Fenced {
            stored: Some(at(1))
        },
    );
    let ahead = vec![put("c", r#"{"n":3}"#, &[])];
    assert_eq!(
        commit(&store, Some(at(5)), at(6), ahead).await,
        DocumentCommit::Fenced {
            stored: Some(at(1))
        },
    );
    assert_eq!(store.load_checkpoint(VIEW).await.unwrap(), Some(at(1)));
    assert_eq!(
        ids(&all(&store).await),
        ["a", "b"],
        "a fenced batch wrote nothing"
    );
    assert_eq!(all(&store).await[0].1, serde_json::json!({"n": 1}));

    let second = vec![put("a", r#"{"n":10}"#, &[("tag", "y")]), delete("b")];
    assert_eq!(
        commit(&store, Some(at(1)), at(2), second).await,
        DocumentCommit::Committed
    );
    assert_eq!(store.load_checkpoint(VIEW).await.unwrap(), Some(at(2)));
    assert_eq!(
        all(&store).await,
        [("a".to_owned(), serde_json::json!({"n": 10}))]
    );
    let by_tag = |value| {
        selected(
            &store,
            Select::Index {
                field: "tag",
                value,
            },
        )
    };
    assert!(
        by_tag("x").await.is_empty(),
        "rewritten and deleted documents lose their old indexed values"
    );
    assert_eq!(by_tag("y").await, ["a"]);

    // A commit with no writes still moves the checkpoint (a batch of events the view skips).
    assert_eq!(
        commit(&store, Some(at(2)), at(3), Vec::new()).await,
        DocumentCommit::Committed
    );
    assert_eq!(store.load_checkpoint(VIEW).await.unwrap(), Some(at(3)));
    assert_eq!(ids(&all(&store).await), ["a"]);
}

/// Queries return documents in byte order of their ids, whatever the case or script; a prefix
/// selects exactly the ids that start with it; an indexed value selects every document holding
/// it, each once, and only in its field.
pub async fn documents_are_selected_by_prefix_and_index_in_byte_order_of_ids<S: StoreUnderTest>(
    store: S,
) {
    let ids_in_order = ["B", "a", "a/1", "a/2", "ab", "b", "é", "éa", "日本"];
    // Written out of order, in two batches.
    let mut writes: Vec<DocumentWrite> = ids_in_order
        .iter()
        .rev()
        .map(|id| {
            let kind = if id.starts_with('a') {
                "a-ish"
            } else {
                "other"
            };
            put(
                id,
                &format!(r#"{{"id":"{id}"}}"#),
                &[("kind", kind), ("all", "yes")],
            )
        })
        .collect();
    let later = writes.split_off(4);
    commit(&store, None, at(1), writes).await;
    commit(&store, Some(at(1)), at(2), later).await;

    let everything = all(&store).await;
    assert_eq!(
        ids(&everything),
        ids_in_order,
        "every document, in byte order"
    );
    for (id, body) in &everything {
        assert_eq!(body["id"], serde_json::json!(id), "the body of `{id}`");
    }
    let prefixed = |prefix| selected(&store, Select::Prefix(prefix));
    assert_eq!(prefixed("a").await, ["a", "a/1", "a/2", "ab"]);
    assert_eq!(prefixed("a/").await, ["a/1", "a/2"]);
    assert_eq!(
        prefixed("A").await,
        Vec::<String>::new(),
        "prefixes keep their case"
    );
    assert_eq!(prefixed("é").await, ["é", "éa"]);
    assert_eq!(prefixed("日").await, ["日本"]);
    assert_eq!(prefixed("c").await, Vec::<String>::new());

    let indexed = |field, value| selected(&store, Select::Index { field, value });
    assert_eq!(indexed("kind", "a-ish").await, ["a", "a/1", "a/2", "ab"]);
    assert_eq!(indexed("all", "yes").await, ids_in_order);
    assert_eq!(
        indexed("kind", "yes").await,
        Vec::<String>::new(),
        "values belong to their field"
    );
    assert_eq!(indexed("kind", "A-ISH").await, Vec::<String>::new());
}

/// Documents belong to their view and their tenant: another view's or tenant's documents,
/// indexed values and checkpoint are their own.
pub async fn documents_belong_to_their_view_and_tenant<S: StoreUnderTest>(store: S) {
    let other_tenant = store.with_tenant(fresh_tenant("documents"));
    commit(
        &store,
        None,
        at(1),
        vec![put("a", r#"{"mine":true}"#, &[("k", "v")])],
    )
    .await;

    assert!(
        all(&other_tenant).await.is_empty(),
        "another tenant sees none"
    );
    let indexed = selected(
        &other_tenant,
        Select::Index {
            field: "k",
            value: "v",
        },
    )
    .await;
    assert!(indexed.is_empty(), "another tenant's index is its own");
    assert!(
        other_tenant
            .load_documents(VIEW, &["a".to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(other_tenant.load_checkpoint(VIEW).await.unwrap(), None);
    // Its own batch starts from no checkpoint, and leaves the first tenant's alone.
    assert_eq!(
        commit(
            &other_tenant,
            None,
            at(7),
            vec![delete("a"), put("b", "{}", &[])]
        )
        .await,
        DocumentCommit::Committed
    );
    assert_eq!(ids(&all(&store).await), ["a"]);
    assert_eq!(store.load_checkpoint(VIEW).await.unwrap(), Some(at(1)));

    let other_view = store
        .query_documents("conformance-other-view", Select::Prefix(""))
        .await
        .unwrap();
    assert!(other_view.is_empty(), "another view sees none");
    let committed = store
        .commit_documents("conformance-other-view", None, at(1), vec![delete("a")])
        .await
        .unwrap();
    assert_eq!(
        committed,
        DocumentCommit::Committed,
        "another view has its own checkpoint"
    );
    assert_eq!(
        ids(&all(&store).await),
        ["a"],
        "and its deletes are its own"
    );
}
