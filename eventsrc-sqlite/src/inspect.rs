//! [`Inspect`]: the operator's questions (streams, stored types, checkpoints, parked events),
//! each one read on a reader connection, scoped by the handle's tenant.
//!
//! Text compares with SQLite's default `BINARY` collation, `memcmp` of the UTF-8 bytes: the
//! bytewise order the contract asks for, and the order of the indexes these reads walk.

use eventsrc_core::backend::ParkedEvent;
use eventsrc_core::store::{
    CheckpointSummary, Inspect, ListStreams, StoredTypeCount, StreamSummary,
};
use eventsrc_core::{StoreError, Timestamp};
use rusqlite::{Row, params};

use crate::parked::read_parked;
use crate::rows::{COLUMNS, RecordReader, int, schema_version_of, stream_of, text, version_of};
use crate::{SqliteEventStore, backend, checkpoint};

/// A page of streams: `?1` tenant, `?2` the name to list after (exclusive), `?3` the name to
/// stop before (exclusive, only where `$upper` uses it), `?4` the limit.
///
/// A skip scan of the unique index `(tenant, stream, stream_version)`: each step is one
/// descent to the next stream name (`MIN(stream)` above the last one), and each stream found
/// one more descent to its newest event (`MAX(stream_version)`) and a lookup of that row's
/// `recorded_at`. A page costs O(limit × log n) whatever the streams hold, and nothing before
/// `?2` or after `?3` is read. The recursion stops after `?4` rows (the last may be the `NULL`
/// that ends it early).
macro_rules! streams_sql {
    ($upper:literal) => {
        concat!(
            "WITH RECURSIVE page (stream) AS ( \
                 SELECT (SELECT MIN(stream) FROM events \
                         WHERE tenant = ?1 AND stream > ?2",
            $upper,
            ") \
                 UNION ALL \
                 SELECT (SELECT MIN(e.stream) FROM events e \
                         WHERE e.tenant = ?1 AND e.stream > page.stream",
            $upper,
            ") \
                 FROM page WHERE page.stream IS NOT NULL \
                 LIMIT ?4) \
             SELECT e.stream, e.stream_version, e.recorded_at \
             FROM page JOIN events e ON e.tenant = ?1 AND e.stream = page.stream \
                 AND e.stream_version = (SELECT MAX(m.stream_version) FROM events m \
                                         WHERE m.tenant = ?1 AND m.stream = page.stream) \
             ORDER BY page.stream"
        )
    };
}

/// A page of every category's streams.
const STREAMS: &str = streams_sql!("");

/// A page of one category's streams: those whose name starts with `category-`, below `?3`
/// (`category.`, `.` being the byte after `-`).
const STREAMS_OF_CATEGORY: &str = streams_sql!(" AND stream < ?3");

/// Every stored (type, schema version) of `?1` tenant with its count. Reads every event of the
/// tenant (through `events_by_tenant`) and groups them in a temporary B-tree.
const EVENT_TYPES: &str = "SELECT event_type, schema_version, COUNT(*) FROM events \
                           WHERE tenant = ?1 \
                           GROUP BY event_type, schema_version \
                           ORDER BY event_type, schema_version";

/// Every checkpoint of `?1` tenant, as [`checkpoint::position`] reads it, then the name: a
/// range of the primary key `(tenant, subscriber)`, in its order.
const CHECKPOINTS: &str = "SELECT commit_seq, sequence, subscriber FROM checkpoints \
                           WHERE tenant = ?1 ORDER BY subscriber";

/// Every parked event of `?1` tenant: the columns [`read_parked`] reads, then the reactor
/// (at [`REACTOR`]). A range of the index `parked_in_order (tenant, reactor, position)`, in its
/// order.
fn all_parked() -> String {
    format!(
        "SELECT {COLUMNS}, error, attempts, parked_at, reactor FROM parked \
         WHERE tenant = ?1 ORDER BY reactor, position"
    )
}

/// Where the reactor is in a row of [`all_parked`].
const REACTOR: usize = 13;

/// A row of [`STREAMS`]: stream, version, recorded at.
fn stream_summary(row: &Row<'_>) -> Result<StreamSummary, StoreError> {
    let stream =
        stream_of(row, 0, &mut None).map_err(|reason| StoreError::corrupt_row(None, reason))?;
    let version = version_of(row, 1)
        .map_err(|reason| StoreError::corrupt_row(Some(stream.clone()), reason))?;
    let recorded_at = int(row, 2).map_err(|reason| StoreError::Corrupt {
        stream: Some(stream.clone()),
        version: Some(version),
        position: None,
        reason,
    })?;
    Ok(StreamSummary::new(
        stream,
        version,
        Timestamp::from_micros(recorded_at),
    ))
}

/// A row of [`EVENT_TYPES`].
fn type_count(row: &Row<'_>) -> Result<StoredTypeCount, String> {
    let events = int(row, 2)?;
    Ok(StoredTypeCount::new(
        text(row, 0)?,
        schema_version_of(row, 1)?,
        events.max(0) as u64,
    ))
}

/// The reads of an operator, on the handle's tenant; see [`Inspect`] for the contract and the
/// statements above for what each costs.
impl Inspect for SqliteEventStore {
    async fn streams(&self, list: ListStreams) -> Result<Vec<StreamSummary>, StoreError> {
        let ListStreams {
            category,
            after,
            limit,
            ..
        } = list;
        // A category never holds a `-` (it ends at the first one): no stream is of this one.
        if category.as_deref().is_some_and(|c| c.contains('-')) {
            return Ok(Vec::new());
        }
        // Every stream of `category` starts with `category-` and is longer than that, so the
        // prefix is the lower bound when `after` sorts before it. Every name sorts after "".
        let (sql, lower, upper) = match category {
            Some(category) => {
                let prefix = format!("{category}-");
                let lower = after.filter(|after| *after > prefix).unwrap_or(prefix);
                (STREAMS_OF_CATEGORY, lower, Some(format!("{category}.")))
            }
            None => (STREAMS, after.unwrap_or_default(), None),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let tenant = self.tenant.clone();
        self.read(move |conn| {
            let mut select = conn.prepare_cached(sql).map_err(backend)?;
            let mut rows = select
                .query(params![tenant.as_str(), lower, upper, limit])
                .map_err(backend)?;
            let mut streams = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                streams.push(stream_summary(row)?);
            }
            Ok(streams)
        })
        .await
    }

    async fn event_types(&self) -> Result<Vec<StoredTypeCount>, StoreError> {
        let tenant = self.tenant.clone();
        self.read(move |conn| {
            let mut select = conn.prepare_cached(EVENT_TYPES).map_err(backend)?;
            let mut rows = select.query([tenant.as_str()]).map_err(backend)?;
            let mut types = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                types
                    .push(type_count(row).map_err(|reason| StoreError::corrupt_row(None, reason))?);
            }
            Ok(types)
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointSummary>, StoreError> {
        let tenant = self.tenant.clone();
        self.read(move |conn| {
            let mut select = conn.prepare_cached(CHECKPOINTS).map_err(backend)?;
            select
                .query_map([tenant.as_str()], |row| {
                    let name: String = row.get(2)?;
                    Ok(CheckpointSummary::new(
                        name,
                        Some(checkpoint::position(row)?),
                    ))
                })
                .and_then(Iterator::collect)
                .map_err(backend)
        })
        .await
    }

    async fn all_parked(&self) -> Result<Vec<ParkedEvent>, StoreError> {
        let tenant = self.tenant.clone();
        self.read(move |conn| {
            let mut select = conn.prepare_cached(&all_parked()).map_err(backend)?;
            let mut rows = select.query([tenant.as_str()]).map_err(backend)?;
            let mut reader = RecordReader::new(&tenant, None);
            let mut parked = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                let reactor: String = row.get(REACTOR).map_err(backend)?;
                parked.push(read_parked(&mut reader, row, reactor)?);
            }
            Ok(parked)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use eventsrc_core::{EventStore, ExpectedVersion, NewEvent, StreamId};

    use super::*;

    /// A stored schema version outside `u32`, or a version that is not a positive integer, is
    /// [`StoreError::Corrupt`] naming its column, not a panic nor a wrapped value.
    #[tokio::test]
    async fn damaged_rows_are_corrupt_errors() {
        let store = SqliteEventStore::open_in_memory().await.unwrap();
        let cart = StreamId::new("cart", 1).unwrap();
        let batch = vec![
            NewEvent::raw("Added", 1, "{}"),
            NewEvent::raw("Added", 1, "{}"),
        ];
        store
            .append(&cart, ExpectedVersion::NoStream, batch)
            .await
            .unwrap();
        let reason = |error: StoreError| match error {
            StoreError::Corrupt { reason, .. } => reason,
            other => panic!("expected Corrupt, got {other:?}"),
        };

        for (value, says) in [
            ("4294967296", "outside 0..=4294967295"),
            ("-1", "outside 0..=4294967295"),
            ("'one'", "holds text, not an integer"),
        ] {
            let sql =
                format!("UPDATE events SET schema_version = {value} WHERE stream_version = 2");
            store
                .write_with(move |tx| tx.execute(&sql, []))
                .await
                .unwrap();
            let error = reason(store.event_types().await.unwrap_err());
            assert!(
                error.contains("schema_version") && error.contains(says),
                "{error}"
            );
        }

        let sql = "UPDATE events SET stream_version = 'two' WHERE stream_version = 2";
        store.write_with(|tx| tx.execute(sql, [])).await.unwrap();
        match store.streams(ListStreams::new()).await.unwrap_err() {
            StoreError::Corrupt { stream, reason, .. } => {
                assert_eq!(stream, Some(cart));
                assert!(reason.contains("stream_version"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    /// Each statement is planned as its comment says: searches of their indexes, no scan of a
    /// table, and no sort but that of a page's own rows (the counts group in a B-tree).
    #[test]
    fn the_statements_search_their_indexes() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let plan = |sql: &str| -> Vec<String> {
            let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let count = explain.parameter_count();
            let rows = explain
                .query_map(rusqlite::params_from_iter((0..count).map(|_| "x")), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap();
            rows.map(Result::unwrap).collect()
        };
        let scans = |plan: &[String]| -> Vec<String> {
            plan.iter()
                .filter(|line| line.starts_with("SCAN ") && !line.ends_with(" page"))
                .filter(|line| *line != "SCAN CONSTANT ROW")
                .cloned()
                .collect()
        };
        for (sql, next) in [
            (STREAMS, "(tenant=? AND stream>?)"),
            (STREAMS_OF_CATEGORY, "(tenant=? AND stream>? AND stream<?)"),
        ] {
            let plan = plan(sql);
            assert!(scans(&plan).is_empty(), "{plan:#?}");
            let steps = plan.iter().filter(|line| line.ends_with(next)).count();
            assert_eq!(steps, 2, "the first step and the recursive one: {plan:#?}");
            let newest = "(tenant=? AND stream=? AND stream_version=?)";
            assert!(plan.iter().any(|line| line.ends_with(newest)), "{plan:#?}");
        }
        for sql in [EVENT_TYPES, CHECKPOINTS, &all_parked()] {
            let plan = plan(sql);
            assert!(scans(&plan).is_empty(), "{plan:#?}");
            let sorts = plan.iter().filter(|line| line.contains("FOR ORDER BY"));
            assert_eq!(sorts.count(), 0, "{plan:#?}");
        }
    }
}
