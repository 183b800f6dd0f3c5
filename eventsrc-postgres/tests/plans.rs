//! Plans without statistics: a million events bulk-loaded behind the store's back, never
//! analyzed (autovacuum is off for the table, so it cannot analyze it mid-test), as after an
//! import with autovacuum behind. The statements the store runs must still be index scans in
//! order: no sequential scan, no bitmap scan, no sort of every remaining row. Before the
//! load, on the nearly empty table, the generic plans of stream reads and appends (which a
//! prepared statement keeps as the table grows) must read a stream through its own index.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use eventsrc::store::{ReadAll, ReadStream};
use eventsrc::{EventStore, GlobalPosition, StreamId, Tenants, Uuid};
use serde_json::Value;
use support::TestSchema;
use tokio_postgres::types::{FromSql, ToSql, Type};

const EVENTS: i64 = 1_000_000;
/// Events per stream in the load.
const PER_STREAM: i64 = 1_000;

/// Plan nodes that mean a statement reads more than its page, or reads it out of order.
const FORBIDDEN: &[&str] = &[
    "Seq Scan",
    "Bitmap Heap Scan",
    "Bitmap Index Scan",
    "Sort",
    "Incremental Sort",
];

/// The text of a `json` value (EXPLAIN's output), parsed.
struct Json(Value);

impl<'a> FromSql<'a> for Json {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(serde_json::from_slice(raw)?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }
}

/// Every node type in a plan of `EXPLAIN (FORMAT JSON)`.
fn node_types(plan: &Value, into: &mut Vec<String>) {
    if let Some(node) = plan.get("Node Type").and_then(Value::as_str) {
        into.push(node.to_owned());
    }
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        node_types(child, into);
    }
}

/// The node types of `sql`'s plan for `params`, planned on `client` after `settings` (in one
/// transaction, as the store runs them).
async fn plan(
    client: &mut tokio_postgres::Client,
    settings: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> (Vec<String>, String) {
    let tx = client.transaction().await.unwrap();
    if !settings.is_empty() {
        tx.batch_execute(settings).await.unwrap();
    }
    let row = tx
        .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), params)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let Json(explained) = row.get(0);
    let mut nodes = Vec::new();
    node_types(&explained[0]["Plan"], &mut nodes);
    (nodes, explained.to_string())
}

/// The node types of the generic plan of `sql` (the plan a prepared statement keeps once it
/// stops planning each run), explained with the literal parameters `args`, and the plan.
async fn generic_plan(
    client: &mut tokio_postgres::Client,
    sql: &str,
    args: &str,
) -> (Vec<String>, String) {
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "SET LOCAL plan_cache_mode = force_generic_plan; PREPARE generic AS {sql}"
    ))
    .await
    .unwrap();
    let explained = tx
        .simple_query(&format!("EXPLAIN (FORMAT JSON) EXECUTE generic({args})"))
        .await
        .unwrap();
    tx.batch_execute("DEALLOCATE generic").await.unwrap();
    tx.rollback().await.unwrap();
    let text = explained
        .iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap();
    let explained: Value = serde_json::from_str(&text).unwrap();
    let mut nodes = Vec::new();
    node_types(&explained[0]["Plan"], &mut nodes);
    (nodes, text)
}

fn assert_indexed(what: &str, (nodes, plan): &(Vec<String>, String)) {
    let bad: Vec<&String> = nodes
        .iter()
        .filter(|node| FORBIDDEN.contains(&node.as_str()))
        .collect();
    assert!(bad.is_empty(), "{what} plans {bad:?}: {plan}");
    assert!(
        nodes.iter().any(|node| node.starts_with("Index")),
        "{what} uses no index: {plan}"
    );
}

#[tokio::test]
async fn statements_keep_their_index_plans_without_statistics() {
    let Some(mut schema) = TestSchema::new("statements_keep_their_index_plans").await else {
        return;
    };
    let store = schema.store().await;
    let events = schema.table("events");
    // First the table as a new store has it: nearly empty, never analyzed. A prepared
    // statement's generic plan made now is kept as the table grows, so it must read a stream
    // through the stream's index, never the tenant's whole log.
    let first = StreamId::new("cart", "0500").unwrap();
    let event = eventsrc::NewEvent::raw("ItemAdded", 1, "{}");
    store
        .with_tenant(eventsrc::Tenant::new("early"))
        .append(&first, eventsrc::ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let id = "'00000000-0000-4000-8000-ffffffffffff'";
    for (which, args) in [
        ("stream_version", "'early', 'cart-0500'".to_owned()),
        ("forward", "'early', 'cart-0500', 1, NULL".to_owned()),
        ("backward", "'early', 'cart-0500', 100, NULL".to_owned()),
        (
            "append_exact",
            format!("'early', 'cart-0500', 'cart', 1, {id}, 'ItemAdded', 1, '{{}}', NULL"),
        ),
        (
            "append_one",
            format!("'early', 'cart-0500', 'cart', 1, 1, {id}, 'ItemAdded', 1, '{{}}', NULL"),
        ),
        (
            "append",
            format!(
                "'early', 'cart-0500', 'cart', 1, 1, ARRAY[{id}]::uuid[], ARRAY['ItemAdded'], \
                 ARRAY[1]::bigint[], ARRAY['{{}}'], ARRAY[NULL]::text[]"
            ),
        ),
    ] {
        let sql = store.__sql(which).unwrap().to_owned();
        let found = generic_plan(&mut schema.client, &sql, &args).await;
        assert_indexed(&format!("the generic plan of {which}"), &found);
        assert!(
            found.1.contains("events_stream_version_unique") && !found.1.contains("events_log"),
            "the generic plan of {which} does not read the stream through its index: {}",
            found.1
        );
    }
    // Then a million events, loaded behind the store's back.
    // Ids and streams in ascending order keep the load's index inserts cheap; one transaction,
    // so every row is below the horizon once it commits.
    schema
        .client
        .batch_execute(&format!(
            "ALTER TABLE {events} SET (autovacuum_enabled = false); \
             INSERT INTO {events} (tenant, stream, category, stream_version, event_id, \
                 event_type, schema_version, payload) \
             SELECT 'default', 'cart-' || lpad((g / {PER_STREAM})::text, 4, '0'), 'cart', \
                 g % {PER_STREAM} + 1, \
                 ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, \
                 'ItemAdded', 1, '{{\"sku\":\"computer\",\"quantity\":1}}' \
             FROM generate_series(0, {}) AS g",
            EVENTS - 1
        ))
        .await
        .unwrap();
    // The point of the test: nothing is known of the table's columns.
    let analyzed: i64 = schema
        .client
        .query_one(
            "SELECT count(*) FROM pg_stats WHERE schemaname = $1 AND tablename = 'events'",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(analyzed, 0, "the table has statistics");

    let sql = |which| store.__sql(which).unwrap().to_owned();
    let (tenant, no_filter) = ("default", Vec::<String>::new());
    let (start, limit) = (0i64, 1_000i64);
    let read_all: [&(dyn ToSql + Sync); 4] = [&tenant, &start, &start, &limit];
    let settings = sql("read_all_settings");
    let all = plan(&mut schema.client, &settings, &sql("read_all"), &read_all).await;
    assert_indexed("a read-all page", &all);
    let types = vec!["ItemAdded".to_owned()];
    let filtered: [&(dyn ToSql + Sync); 6] = [&tenant, &start, &start, &limit, &types, &no_filter];
    assert_indexed(
        "a filtered read-all page",
        &plan(
            &mut schema.client,
            &settings,
            &sql("read_all_filtered"),
            &filtered,
        )
        .await,
    );
    let horizon: [&(dyn ToSql + Sync); 5] = [&tenant, &start, &start, &no_filter, &no_filter];
    assert_indexed(
        "a read-all page's horizon",
        &plan(
            &mut schema.client,
            &settings,
            &sql("read_all_horizon"),
            &horizon,
        )
        .await,
    );
    // What the settings are for: the same statement planned without them sorts (or scans)
    // every remaining row of the tenant's log for a page.
    let (bare, bare_plan) = plan(&mut schema.client, "", &sql("read_all"), &read_all).await;
    assert!(
        bare.iter().any(|node| FORBIDDEN.contains(&node.as_str())),
        "without statistics or settings the page is still an index scan, so this test \
         proves nothing on this server: {bare_plan}"
    );

    let stream = "cart-0500";
    let (first, last, all_of_it) = (1i64, i64::MAX, None::<i64>);
    for (which, from) in [("forward", &first), ("backward", &last)] {
        let params: [&(dyn ToSql + Sync); 4] = [&tenant, &stream, from, &all_of_it];
        assert_indexed(
            which,
            &plan(&mut schema.client, "", &sql(which), &params).await,
        );
    }
    let params: [&(dyn ToSql + Sync); 2] = [&tenant, &stream];
    assert_indexed(
        "stream_version",
        &plan(&mut schema.client, "", &sql("stream_version"), &params).await,
    );
    let (category, low, high) = ("cart", PER_STREAM, PER_STREAM);
    let (id, event_type, schema_version, payload, metadata) =
        (Uuid::nil(), "ItemAdded", 1i64, "{}", None::<String>);
    let params: [&(dyn ToSql + Sync); 10] = [
        &tenant,
        &stream,
        &category,
        &low,
        &high,
        &id,
        &event_type,
        &schema_version,
        &payload,
        &metadata,
    ];
    assert_indexed(
        "append_one",
        &plan(&mut schema.client, "", &sql("append_one"), &params).await,
    );
    let params: [&(dyn ToSql + Sync); 9] = [
        &tenant,
        &stream,
        &category,
        &low,
        &id,
        &event_type,
        &schema_version,
        &payload,
        &metadata,
    ];
    assert_indexed(
        "append_exact",
        &plan(&mut schema.client, "", &sql("append_exact"), &params).await,
    );
    let (ids, types, versions, payloads, metadata) = (
        vec![Uuid::nil()],
        vec![event_type],
        vec![schema_version],
        vec![payload],
        vec![None::<String>],
    );
    let params: [&(dyn ToSql + Sync); 10] = [
        &tenant, &stream, &category, &low, &high, &ids, &types, &versions, &payloads, &metadata,
    ];
    assert_indexed(
        "append",
        &plan(&mut schema.client, "", &sql("append"), &params).await,
    );

    // And the store reads through them: a page from the start, one from the middle, a stream.
    let page = store
        .read_all(ReadAll::after(GlobalPosition::START).limit(1_000))
        .await
        .unwrap();
    assert_eq!(page.len(), 1_000);
    assert_eq!(page[0].stream.as_str(), "cart-0000");
    let middle = page[999].global_position;
    let next = store
        .read_all(ReadAll::after(middle).limit(1_000))
        .await
        .unwrap();
    assert_eq!(next.len(), 1_000);
    assert!(next[0].global_position > middle);
    assert_eq!(next[0].stream.as_str(), "cart-0001");
    let read = store
        .read_stream(
            &StreamId::new("cart", "0500").unwrap(),
            ReadStream::forward(),
        )
        .await
        .unwrap();
    assert_eq!(read.len() as i64, PER_STREAM);
    drop(store);
    schema.drop().await;
}
