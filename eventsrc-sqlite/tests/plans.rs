//! Query plans on a large log that was never analyzed: every statement the store runs on the
//! `events` table must find its rows through an index, whatever SQLite guesses about sizes.
//!
//! A million rows are loaded with one `INSERT … SELECT` in one transaction (no ANALYZE, so
//! the planner has no statistics), then each statement of
//! [`eventsrc_sqlite::event_statements`] is explained: none may scan the events table or sort
//! in a temporary B-tree. A page of the log and a stream are then read through the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use eventsrc::store::{ReadAll, ReadStream};
use eventsrc::{EventStore, ExpectedVersion, GlobalPosition, StreamId};
use eventsrc_sqlite::SqliteEventStore;
use eventsrc_sqlite::rusqlite::types::Null;
use eventsrc_sqlite::rusqlite::{Connection, Error as SqlError, params_from_iter};

/// Rows loaded: 1,000 carts of 1,000 events each, one tenant.
const ROWS: i64 = 1_000_000;
/// Events per cart.
const PER_STREAM: i64 = 1_000;

/// The load: rows in position order, each cart's events together, ids that grow with the
/// position (16-byte blobs of hex digits), so that every index is appended to at its end.
/// Every tenth event is a removal, so that a filter by type has something to leave out.
const LOAD: &str = "
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
    INSERT INTO events (position, commit_seq, tenant, stream, category, stream_version,
                        event_id, event_type, schema_version, payload, metadata, recorded_at)
    SELECT i + 1, i + 1, 'default', 'cart-' || (i / ?2), 'cart', i % ?2 + 1,
           CAST(printf('%016x', i) AS BLOB),
           CASE WHEN i % 10 = 9 THEN 'ItemRemoved' ELSE 'ItemAdded' END, 1,
           '{\"n\":' || i || '}', NULL, 1700000000000000 + i
    FROM n";

/// The plan of `sql` as SQLite explains it, one line per step.
fn plan(db: &Connection, sql: &str) -> Result<Vec<String>, SqlError> {
    let mut explain = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    // Every parameter NULL: the plan does not depend on the values.
    let nulls = std::iter::repeat_n(Null, explain.parameter_count());
    let details = explain
        .query_map(params_from_iter(nulls), |row| row.get::<_, String>(3))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(details)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_statement_uses_an_index_on_a_million_unanalyzed_rows() {
    let store = SqliteEventStore::open_in_memory().await.unwrap();
    let loaded = store
        .write_with(|tx| tx.execute(LOAD, [ROWS, PER_STREAM]))
        .await
        .unwrap();
    assert_eq!(loaded as i64, ROWS);

    let statements = eventsrc_sqlite::event_statements();
    let names: Vec<&str> = statements.iter().map(|(name, _)| *name).collect();
    for needed in ["read_all", "stream_forward", "current_version"] {
        assert!(names.contains(&needed), "{needed} is not among {names:?}");
    }
    let plans = store
        .read_with(move |db| {
            // Nothing analyzed: the planner works from its defaults.
            let analyzed: bool = db.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1')",
                [],
                |r| r.get(0),
            )?;
            let plans = statements
                .into_iter()
                .filter(|(name, _)| *name != "insert")
                .map(|(name, sql)| plan(db, &sql).map(|plan| (name, sql, plan)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, SqlError>((analyzed, plans))
        })
        .await
        .unwrap();
    let (analyzed, plans) = plans;
    assert!(!analyzed, "the test must run without statistics");

    for (name, sql, plan) in &plans {
        let shown = format!("{name}: {sql}\n  {}", plan.join("\n  "));
        assert!(!plan.is_empty(), "no plan for {shown}");
        for step in plan {
            assert!(
                !step.starts_with("SCAN"),
                "{name} scans a table or a whole index:\n{shown}"
            );
            assert!(
                !step.contains("TEMP B-TREE"),
                "{name} sorts its rows:\n{shown}"
            );
        }
    }
    let plan_of = |wanted: &str| {
        let (_, _, plan) = plans.iter().find(|(name, _, _)| *name == wanted).unwrap();
        plan.join(" | ")
    };
    // The indexes each must use: the tenant's log in position order, a stream's versions.
    for page in [
        "read_all",
        "read_all_by_type",
        "read_all_by_category",
        "read_all_by_type_and_category",
        "head",
    ] {
        let plan = plan_of(page);
        assert!(
            plan.contains("USING INDEX events_by_tenant (tenant=?"),
            "{page}: {plan}"
        );
    }
    for read in [
        "stream_forward",
        "stream_backward",
        "visit_forward",
        "visit_backward",
    ] {
        let plan = plan_of(read);
        assert!(
            plan.contains("(tenant=? AND stream=? AND stream_version"),
            "{read}: {plan}"
        );
    }
    let check = plan_of("current_version");
    assert!(
        check.contains("COVERING INDEX") && check.contains("(tenant=? AND stream=?)"),
        "the append's version check: {check}"
    );
    for by_id in ["stored_copy", "by_id"] {
        let plan = plan_of(by_id);
        assert!(plan.contains("(event_id=?)"), "{by_id}: {plan}");
    }

    // And the store reads what was loaded: a page from the middle of the log, then a stream.
    let after = GlobalPosition::new(500_000, 500_000);
    let page = store
        .read_all(ReadAll::after(after).limit(1_000))
        .await
        .unwrap();
    assert_eq!(page.len(), 1_000);
    assert_eq!(page[0].global_position.sequence, 500_001);
    assert!(
        page.windows(2)
            .all(|w| w[0].global_position.sequence + 1 == w[1].global_position.sequence)
    );
    assert_eq!(page[0].stream.as_str(), "cart-500");
    let removals = store
        .read_all(ReadAll::after(after).limit(10).event_types(["ItemRemoved"]))
        .await
        .unwrap();
    assert_eq!(removals.len(), 10);
    assert!(removals.iter().all(|e| &*e.event_type == "ItemRemoved"));

    let cart = StreamId::new("cart", 999).unwrap();
    let last = store
        .read_stream(&cart, ReadStream::backward().limit(1))
        .await
        .unwrap();
    assert_eq!(last[0].stream_version.get(), PER_STREAM as u64);
    assert_eq!(last[0].global_position.sequence, ROWS as u64);
    // An append after the load sees the loaded version and goes on from the log's end.
    let appended = store
        .append(
            &cart,
            ExpectedVersion::Exact(eventsrc::StreamVersion(PER_STREAM as u64)),
            vec![common::counted(1)],
        )
        .await
        .unwrap();
    assert_eq!(appended.stream_version.get(), PER_STREAM as u64 + 1);
    assert_eq!(appended.position.sequence, ROWS as u64 + 1);
}
