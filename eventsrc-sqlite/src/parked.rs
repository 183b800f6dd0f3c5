//! Events reactors parked, kept whole in the `parked` table so they can be replayed.

use eventsrc_core::backend::{ParkedEvent, ParkedStore, encode_one_metadata};

use eventsrc_core::StoreError;
use eventsrc_core::{EventId, Timestamp};
use rusqlite::{Row, params};

use crate::rows::{COLUMNS, RecordReader};
use crate::{SqliteEventStore, backend};

/// Parked events per tenant, durable in the file, listed in global order.
///
/// ```
/// use eventsrc::backend::{ParkedEvent, ParkedStore};
/// use eventsrc::{EventStore, ExpectedVersion, NewEvent, GlobalPosition, StreamId, Timestamp};
/// use eventsrc::store::ReadAll;
/// use eventsrc_sqlite::SqliteEventStore;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = SqliteEventStore::open_in_memory().await?;
/// let cart = StreamId::new("cart", 1)?;
/// store.append(&cart, ExpectedVersion::Any, vec![NewEvent::raw("CheckedOut", 1, "{}")]).await?;
/// let event = store.read_all(ReadAll::after(GlobalPosition::START)).await?.remove(0);
///
/// let parked = ParkedEvent {
///     reactor: "mailer".into(),
///     event: event.clone(),
///     error: "smtp is down".into(),
///     attempts: 5,
///     parked_at: Timestamp::now(),
/// };
/// store.park(parked.clone()).await?;
/// assert_eq!(store.parked("mailer").await?, vec![parked]);
/// assert!(store.unpark("mailer", event.event_id).await?);
/// assert!(store.parked("mailer").await?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The event is stored as recorded, under this handle's tenant, and reads back with it.
impl ParkedStore for SqliteEventStore {
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError> {
        let tenant = self.tenant.clone();
        let metadata = encode_one_metadata(&parked.event.metadata)?;
        self.on_writer(move |conn| {
            let ParkedEvent {
                reactor,
                event,
                error,
                attempts,
                parked_at,
            } = parked;
            conn.prepare_cached(
                "INSERT INTO parked (tenant, reactor, event_id, position, commit_seq, stream, \
                 stream_version, event_type, schema_version, payload, metadata, recorded_at, \
                 error, attempts, parked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
                 ON CONFLICT (tenant, reactor, event_id) DO UPDATE SET \
                 position = excluded.position, commit_seq = excluded.commit_seq, \
                 stream = excluded.stream, stream_version = excluded.stream_version, \
                 event_type = excluded.event_type, schema_version = excluded.schema_version, \
                 payload = excluded.payload, metadata = excluded.metadata, \
                 recorded_at = excluded.recorded_at, error = excluded.error, \
                 attempts = excluded.attempts, parked_at = excluded.parked_at",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    tenant.as_str(),
                    reactor,
                    event.event_id.0.as_bytes(),
                    event.global_position.sequence as i64,
                    event.global_position.commit as i64,
                    event.stream.as_str(),
                    event.stream_version.get() as i64,
                    &*event.event_type,
                    event.schema_version,
                    &*event.payload,
                    metadata,
                    event.recorded_at.as_micros(),
                    error,
                    attempts,
                    parked_at.as_micros(),
                ])
            })
            .map(drop)
            .map_err(backend)
        })
        .await
    }

    async fn parked(&self, reactor: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        let (tenant, reactor) = (self.tenant.clone(), reactor.to_owned());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS}, error, attempts, parked_at FROM parked \
                 WHERE tenant = ?1 AND reactor = ?2 ORDER BY position"
            );
            let mut select = conn.prepare_cached(&sql).map_err(backend)?;
            let mut rows = select
                .query(params![tenant.as_str(), reactor])
                .map_err(backend)?;
            let mut reader = RecordReader::new(&tenant, None);
            let mut parked = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                parked.push(read_parked(&mut reader, row, reactor.clone())?);
            }
            Ok(parked)
        })
        .await
    }

    async fn unpark(&self, reactor: &str, event_id: EventId) -> Result<bool, StoreError> {
        let (tenant, reactor) = (self.tenant.clone(), reactor.to_owned());
        self.on_writer(move |conn| {
            conn.prepare_cached(
                "DELETE FROM parked WHERE tenant = ?1 AND reactor = ?2 AND event_id = ?3",
            )
            .and_then(|mut delete| {
                delete.execute(params![tenant.as_str(), reactor, event_id.0.as_bytes()])
            })
            .map(|deleted| deleted > 0)
            .map_err(backend)
        })
        .await
    }
}

/// The parked event of `reactor` in `row`: the event's [`COLUMNS`], then `error, attempts,
/// parked_at`.
pub(crate) fn read_parked(
    reader: &mut RecordReader<'_>,
    row: &Row<'_>,
    reactor: String,
) -> Result<ParkedEvent, StoreError> {
    let event = reader.read(row)?;
    Ok(ParkedEvent {
        reactor,
        error: row.get(10).map_err(backend)?,
        attempts: row.get(11).map_err(backend)?,
        parked_at: Timestamp::from_micros(row.get(12).map_err(backend)?),
        event,
    })
}
