//! A read model for the read-side tests: one row per event applied, with how many times it
//! was applied, so that "exactly once" is a query.

use eventsrc::{Event, EventId, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
use eventsrc_postgres::deadpool_postgres::Transaction;
use eventsrc_postgres::{PgEventStore, PgProjection};
use serde::{Deserialize, Serialize};

/// The test event: its number in the test's sequence.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct Noted {
    pub n: u64,
}

/// Records each applied event in `table`: its id, number, and an apply count.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub table: String,
    /// Refuses the event with this number (a bug in the projection).
    pub refuse: Option<u64>,
}

impl Applied {
    /// The read model in `schema`.`applied`.
    pub(crate) fn in_schema(schema: &str) -> Self {
        Self {
            table: format!("\"{schema}\".applied"),
            refuse: None,
        }
    }

    /// How many rows the table holds, and how many of them were applied other than once.
    pub(crate) async fn tally(&self, store: &PgEventStore) -> (i64, i64) {
        let client = store.client().await.unwrap();
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE applied <> 1) FROM {}",
                    self.table
                ),
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }

    /// How many times the event `id` was applied (0: never).
    pub(crate) async fn applied(&self, store: &PgEventStore, id: EventId) -> i32 {
        let client = store.client().await.unwrap();
        client
            .query_opt(
                &format!("SELECT applied FROM {} WHERE event_id = $1", self.table),
                &[&id.0],
            )
            .await
            .unwrap()
            .map_or(0, |row| row.get(0))
    }
}

impl PgProjection for Applied {
    const NAME: &'static str = "applied";
    type Event = Noted;
    type Error = std::io::Error;

    async fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} ( \
                 event_id uuid PRIMARY KEY, n bigint NOT NULL, applied integer NOT NULL)",
            self.table
        ))
        .await
        .map_err(std::io::Error::other)
    }

    async fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: Noted,
        record: &RecordedEvent,
    ) -> Result<(), Self::Error> {
        if self.refuse == Some(event.n) {
            return Err(std::io::Error::other(format!(
                "refusing event number {}",
                event.n
            )));
        }
        // Adds to the count, so that an event applied twice shows.
        let statement = tx
            .prepare_cached(&format!(
                "INSERT INTO {} AS t (event_id, n, applied) VALUES ($1, $2, 1) \
                 ON CONFLICT (event_id) DO UPDATE SET applied = t.applied + 1",
                self.table
            ))
            .await
            .map_err(std::io::Error::other)?;
        tx.execute(&statement, &[&record.event_id.0, &(event.n as i64)])
            .await
            .map_err(std::io::Error::other)?;
        Ok(())
    }
}

/// Appends `Noted { n }` to `stream`, returning the append's result.
pub(crate) async fn note(
    store: &PgEventStore,
    stream: &StreamId,
    n: u64,
) -> eventsrc::store::AppendResult {
    let event = NewEvent::from_event(&Noted { n }, eventsrc::Metadata::new()).unwrap();
    store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
        .unwrap()
}
