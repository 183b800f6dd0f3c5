//! Parked events ([`ParkedStore`]): what a reactor gave up on, kept whole in the `parked` table
//! so that it can be listed and replayed without going back to the log.

use eventsrc_core::backend::{ParkedEvent, ParkedStore, encode_one_metadata};

use eventsrc_core::StoreError;
use eventsrc_core::{EventId, Tenant, Timestamp};

use crate::rows::{Micros, RecordReader, corrupt};
use crate::{PgEventStore, backend};

/// The SQL of the parked list, with the schema filled in once.
pub(crate) struct ParkedSql {
    park: String,
    list: String,
    unpark: String,
}

impl ParkedSql {
    pub(crate) fn new(schema: &str) -> Self {
        Self {
            park: format!(
                "INSERT INTO {schema}.parked (tenant, reactor, event_id, event_tenant, stream, \
                     stream_version, commit_id, sequence, event_type, schema_version, payload, \
                     metadata, recorded_at, error, attempts, parked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (tenant, reactor, event_id) DO UPDATE SET \
                     event_tenant = excluded.event_tenant, stream = excluded.stream, \
                     stream_version = excluded.stream_version, commit_id = excluded.commit_id, \
                     sequence = excluded.sequence, event_type = excluded.event_type, \
                     schema_version = excluded.schema_version, payload = excluded.payload, \
                     metadata = excluded.metadata, recorded_at = excluded.recorded_at, \
                     error = excluded.error, attempts = excluded.attempts, \
                     parked_at = excluded.parked_at"
            ),
            list: format!(
                "SELECT {COLUMNS} FROM {schema}.parked WHERE tenant = $1 AND reactor = $2 \
                 ORDER BY commit_id, sequence"
            ),
            unpark: format!(
                "DELETE FROM {schema}.parked WHERE tenant = $1 AND reactor = $2 AND event_id = $3"
            ),
        }
    }
}

/// The columns of a parked row as [`read_parked`] reads them: the event's first, in the order
/// `RecordReader` reads an event row, then the parking's.
pub(crate) const COLUMNS: &str = "sequence, commit_id, stream, stream_version, event_id, \
     event_type, schema_version, payload, metadata, recorded_at, \
     event_tenant, error, attempts, parked_at";

/// Where the columns after the event's start in a row of [`COLUMNS`].
const AFTER_EVENT: usize = 10;

/// The parked event of `reactor` in `row`, whose first columns are [`COLUMNS`].
pub(crate) fn read_parked(
    reader: &mut RecordReader<'_>,
    row: &tokio_postgres::Row,
    reactor: String,
) -> Result<ParkedEvent, StoreError> {
    let mut event = reader.read(row, 0)?;
    let column = |error: tokio_postgres::Error| corrupt(&event, error.to_string());
    let event_tenant: &str = row.try_get(AFTER_EVENT).map_err(column)?;
    let error: String = row.try_get(AFTER_EVENT + 1).map_err(column)?;
    let attempts: i64 = row.try_get(AFTER_EVENT + 2).map_err(column)?;
    let parked_at: Micros = row.try_get(AFTER_EVENT + 3).map_err(column)?;
    if event_tenant != event.tenant.as_str() {
        event.tenant = Tenant::new(event_tenant);
    }
    Ok(ParkedEvent {
        reactor,
        event,
        error,
        attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
        parked_at: Timestamp::from(parked_at),
    })
}

impl ParkedStore for PgEventStore {
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError> {
        let event = &parked.event;
        let metadata = encode_one_metadata(&event.metadata)?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.parked.park)
            .await
            .map_err(backend)?;
        client
            .execute(
                &statement,
                &[
                    &self.tenant.as_str(),
                    &parked.reactor,
                    &event.event_id.0,
                    &event.tenant.as_str(),
                    &event.stream.as_str(),
                    // Stored bit for bit, as checkpoints are.
                    &(event.stream_version.get() as i64),
                    &(event.global_position.commit as i64),
                    &(event.global_position.sequence as i64),
                    &&*event.event_type,
                    &i64::from(event.schema_version),
                    &&*event.payload,
                    &metadata,
                    &std::time::SystemTime::from(event.recorded_at),
                    &parked.error,
                    &i64::from(parked.attempts),
                    &std::time::SystemTime::from(parked.parked_at),
                ],
            )
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn parked(&self, reactor: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.parked.list)
            .await
            .map_err(backend)?;
        let found = client
            .query(&statement, &[&self.tenant.as_str(), &reactor])
            .await
            .map_err(backend)?;
        let mut reader = RecordReader::new(&self.tenant, None);
        found
            .iter()
            .map(|row| read_parked(&mut reader, row, reactor.to_owned()))
            .collect()
    }

    async fn unpark(&self, reactor: &str, event_id: EventId) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.parked.unpark)
            .await
            .map_err(backend)?;
        let removed = client
            .execute(&statement, &[&self.tenant.as_str(), &reactor, &event_id.0])
            .await
            .map_err(backend)?;
        Ok(removed > 0)
    }
}
