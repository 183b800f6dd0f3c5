//! [`Inspect`]: the operator's questions (streams, stored types, checkpoints, parked events),
//! each one statement on a pooled connection, scoped by the handle's tenant.
//!
//! Names are ordered and compared `COLLATE "C"`, byte for byte, so that the order is the other
//! backends' whatever the database's collation. The indexes are in the database's collation,
//! so these orders cost a sort (of streams, type counts, checkpoints or parked events, never of
//! events), unless the database's collation is itself `C`.

use eventsrc_core::backend::ParkedEvent;
use eventsrc_core::store::{
    CheckpointSummary, Inspect, ListStreams, StoredTypeCount, StreamSummary,
};
use eventsrc_core::{StoreError, StreamVersion};
use tokio_postgres::Row;

use crate::parked::{self, read_parked};
use crate::rows::{Micros, RecordReader, get, positive, schema_version_of, stream_of};
use crate::{PgEventStore, backend, checkpoint};

/// The statements of [`Inspect`], one per method.
#[derive(Clone, Copy)]
enum InspectSql {
    Streams,
    EventTypes,
    Checkpoints,
    AllParked,
}

impl InspectSql {
    /// The statement on the quoted schema `schema`, built for each call: these reads are rare,
    /// and the connection's statement cache keys on the text.
    fn text(self, schema: &str) -> String {
        match self {
            // $1 tenant, $2 category (NULL: all), $3 after (NULL: from the first), $4 limit.
            //
            // A skip scan of the unique index `(tenant, stream, stream_version)` lists the
            // tenant's streams, one index descent (and one heap fetch, for the category) per
            // stream; the filtered names are sorted bytewise and cut to the page; then one
            // more descent per stream of the page finds its newest event. The index's order is
            // the database's collation, so neither `after` nor the limit can stop the walk: a
            // page costs O(streams of the tenant × log n), never the events the streams hold.
            Self::Streams => format!(
                "WITH RECURSIVE streams (stream, category) AS ( \
                     (SELECT stream, category FROM {schema}.events \
                      WHERE tenant = $1 ORDER BY stream LIMIT 1) \
                     UNION ALL \
                     SELECT next.stream, next.category FROM streams s \
                     CROSS JOIN LATERAL ( \
                         SELECT e.stream, e.category FROM {schema}.events e \
                         WHERE e.tenant = $1 AND e.stream > s.stream \
                         ORDER BY e.stream LIMIT 1) next \
                 ), page AS ( \
                     SELECT stream FROM streams \
                     WHERE ($2::text IS NULL OR category = $2) \
                       AND ($3::text IS NULL OR stream COLLATE \"C\" > $3) \
                     ORDER BY stream COLLATE \"C\" LIMIT $4 \
                 ) \
                 SELECT p.stream, newest.stream_version, newest.recorded_at \
                 FROM page p CROSS JOIN LATERAL ( \
                     SELECT e.stream_version, e.recorded_at FROM {schema}.events e \
                     WHERE e.tenant = $1 AND e.stream = p.stream \
                     ORDER BY e.stream_version DESC LIMIT 1) newest \
                 ORDER BY p.stream COLLATE \"C\""
            ),
            // $1 tenant. Reads every event of the tenant and counts them in a hash; sorts the
            // counts.
            Self::EventTypes => format!(
                "SELECT event_type, schema_version, count(*) FROM {schema}.events \
                 WHERE tenant = $1 GROUP BY event_type, schema_version \
                 ORDER BY event_type COLLATE \"C\", schema_version"
            ),
            // $1 tenant. The position first, as `checkpoint::position` reads it. A range of the
            // primary key `(tenant, subscriber)`.
            Self::Checkpoints => format!(
                "SELECT commit_id, sequence, subscriber FROM {schema}.checkpoints \
                 WHERE tenant = $1 ORDER BY subscriber COLLATE \"C\""
            ),
            // $1 tenant; the reactor after the columns `read_parked` reads. A range of
            // `parked_log (tenant, reactor, commit_id, sequence)`.
            Self::AllParked => format!(
                "SELECT {columns}, reactor FROM {schema}.parked WHERE tenant = $1 \
                 ORDER BY reactor COLLATE \"C\", commit_id, sequence",
                columns = parked::COLUMNS,
            ),
        }
    }
}

/// Where the reactor is in a row of [`InspectSql::AllParked`].
const REACTOR: usize = 14;

/// A row of [`InspectSql::Streams`]: stream, version, recorded at.
fn stream_summary(row: &Row) -> Result<StreamSummary, StoreError> {
    let stream =
        stream_of(row, 0, &mut None).map_err(|reason| StoreError::corrupt_row(None, reason))?;
    let version = positive(row, 1)
        .map(StreamVersion)
        .map_err(|reason| StoreError::corrupt_row(Some(stream.clone()), reason))?;
    let recorded_at: Micros = get(row, 2).map_err(|reason| StoreError::Corrupt {
        stream: Some(stream.clone()),
        version: Some(version),
        position: None,
        reason,
    })?;
    Ok(StreamSummary::new(stream, version, recorded_at.into()))
}

/// A row of [`InspectSql::EventTypes`].
fn type_count(row: &Row) -> Result<StoredTypeCount, String> {
    let event_type: &str = get(row, 0)?;
    let events: i64 = get(row, 2)?;
    Ok(StoredTypeCount::new(
        event_type,
        schema_version_of(row, 1)?,
        events.max(0) as u64,
    ))
}

/// The reads of an operator, on the handle's tenant; see [`Inspect`] for the contract and the
/// statements for what each costs.
impl Inspect for PgEventStore {
    async fn streams(&self, list: ListStreams) -> Result<Vec<StreamSummary>, StoreError> {
        let limit = i64::try_from(list.limit).unwrap_or(i64::MAX);
        let rows = self
            .inspect_query(
                InspectSql::Streams,
                &[
                    &self.tenant.as_str(),
                    &list.category.as_deref(),
                    &list.after.as_deref(),
                    &limit,
                ],
            )
            .await?;
        rows.iter().map(stream_summary).collect()
    }

    async fn event_types(&self) -> Result<Vec<StoredTypeCount>, StoreError> {
        let rows = self
            .inspect_query(InspectSql::EventTypes, &[&self.tenant.as_str()])
            .await?;
        rows.iter()
            .map(|row| type_count(row).map_err(|reason| StoreError::corrupt_row(None, reason)))
            .collect()
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointSummary>, StoreError> {
        let rows = self
            .inspect_query(InspectSql::Checkpoints, &[&self.tenant.as_str()])
            .await?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get(2)?;
                Ok(CheckpointSummary::new(name, checkpoint::position(row)?))
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(backend)
    }

    async fn all_parked(&self) -> Result<Vec<ParkedEvent>, StoreError> {
        let rows = self
            .inspect_query(InspectSql::AllParked, &[&self.tenant.as_str()])
            .await?;
        let mut reader = RecordReader::new(&self.tenant, None);
        rows.iter()
            .map(|row| {
                let reactor: String = row.try_get(REACTOR).map_err(backend)?;
                read_parked(&mut reader, row, reactor)
            })
            .collect()
    }
}

impl PgEventStore {
    /// Runs `statement` on a pooled connection.
    async fn inspect_query(
        &self,
        statement: InspectSql,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        // Quoted as `connect` quotes it (its characters were checked there).
        let sql = statement.text(&format!("\"{}\"", self.shared.schema));
        let client = self.client().await?;
        let statement = client.prepare_cached(&sql).await.map_err(backend)?;
        client.query(&statement, params).await.map_err(backend)
    }
}
