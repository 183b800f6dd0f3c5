//! [`StatusLog`]: every status change of every lead, with the status it left, for analysis.

use eventsrc::{Event, RecordedEvent, StoreError, StreamVersion, Timestamp};
use eventsrc_sqlite::rusqlite::{self, OptionalExtension, Row, Transaction, params};
use eventsrc_sqlite::{SqliteEventStore, SqliteProjection};

use super::{LeadProjectionError, from_sql_int, lead_of, quoted, to_sql_int};
use crate::leads::{LeadId, LeadStatus, StatusChanged};

/// The events [`StatusLog`] reads: a lead's status changed.
#[derive(Event, Debug, Clone, PartialEq, Eq)]
pub enum StatusLogEvent {
    /// The lead moved to another status.
    StatusChanged(StatusChanged),
}

/// One row of the status-change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The lead.
    pub lead: LeadId,
    /// The version of the lead's stream that changed it.
    pub version: StreamVersion,
    /// The status it left; `None` for a new lead's first status.
    pub from: Option<LeadStatus>,
    /// The status it moved to.
    pub to: LeadStatus,
    /// When the change was recorded.
    pub at: Timestamp,
    /// Who changed it, from the event's metadata.
    pub actor: Option<String>,
}

/// How often leads moved from one status to another, as [`StatusLog::transitions`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The status left; `None` for new leads.
    pub from: Option<LeadStatus>,
    /// The status entered.
    pub to: LeadStatus,
    /// How many times.
    pub count: u64,
}

/// The status-change log: one row per status change of every lead, with the status it left,
/// when and by whom. The lead's current row knows only where it stands; the log answers the
/// business's questions about the way there: how many leads went from Follow-up to Converted,
/// and how many were closed instead.
///
/// Each entry is stamped with the event's `recorded_at`, not the time it is projected, so that a
/// rebuild months later writes the same rows. A row is keyed by (lead, stream version) and written
/// with `INSERT ... ON CONFLICT DO NOTHING`, so an event applied twice adds nothing. The status
/// left is read from the lead's previous row: a lead's events arrive in stream order, which every
/// runner keeps.
///
/// ```
/// use eventsrc::Runner;
/// use eventsrc::{Metadata, Repository};
/// use eventsrc_examples::leads::read_models::StatusLog;
/// use eventsrc_examples::leads::{ChangeStatus, InitializeLead, LeadId, LeadStatus};
/// use eventsrc_sqlite::{SqliteEventStore, SqliteReadModel};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = SqliteEventStore::open_in_memory().await?;
/// let repository = Repository::new(store.clone());
/// let lead = LeadId(1406);
/// repository.send(InitializeLead { id: lead }, Metadata::new()).await?;
/// let status = LeadStatus::Closed;
/// repository.send(ChangeStatus { lead, status }, Metadata::new()).await?;
///
/// Runner::new(store.clone(), SqliteReadModel::new(StatusLog::new(), store.clone()))
///     .catch_up()
///     .await?;
/// let history = StatusLog::history(&store, lead).await?;
/// let steps: Vec<_> = history.iter().map(|change| (change.from, change.to)).collect();
/// assert_eq!(
///     steps,
///     [(None, LeadStatus::Available), (Some(LeadStatus::Available), LeadStatus::Closed)]
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusLog;

impl StatusLog {
    /// The table it writes.
    pub const TABLE: &'static str = "lead_status_log";

    /// The projection.
    pub fn new() -> Self {
        Self
    }

    /// Every status change of `lead`, oldest first. Reads the live table.
    pub async fn history(
        store: &SqliteEventStore,
        lead: LeadId,
    ) -> Result<Vec<StatusChange>, StoreError> {
        let sql = format!(
            "SELECT lead, version, from_status, to_status, at, actor FROM {} \
             WHERE lead = ?1 ORDER BY version",
            quoted(Self::TABLE)
        );
        store
            .read_with(move |db| {
                let mut statement = db.prepare(&sql)?;
                let rows = statement.query_map([to_sql_int(lead.0)?], change_of)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
    }

    /// How many times leads moved between each pair of statuses, most frequent first (new
    /// leads' first status as a move from `None`). Reads the live table.
    pub async fn transitions(store: &SqliteEventStore) -> Result<Vec<Transition>, StoreError> {
        let sql = format!(
            "SELECT from_status, to_status, COUNT(*) FROM {} \
             GROUP BY from_status, to_status ORDER BY COUNT(*) DESC, from_status, to_status",
            quoted(Self::TABLE)
        );
        store
            .read_with(move |db| {
                let mut statement = db.prepare(&sql)?;
                let rows = statement.query_map([], |row| {
                    Ok(Transition {
                        from: optional_status(row, 0)?,
                        to: status(row, 1)?,
                        count: from_sql_int(row, 2)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
    }
}

impl SqliteProjection for StatusLog {
    const NAME: &'static str = "lead_status_log";
    type Event = StatusLogEvent;
    type Error = LeadProjectionError;

    fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (\
                 lead INTEGER NOT NULL, \
                 version INTEGER NOT NULL, \
                 from_status TEXT, \
                 to_status TEXT NOT NULL, \
                 at INTEGER NOT NULL, \
                 actor TEXT, \
                 PRIMARY KEY (lead, version)\
             ) WITHOUT ROWID",
            quoted(Self::TABLE)
        ))?;
        Ok(())
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: StatusLogEvent,
        record: &RecordedEvent,
    ) -> Result<(), Self::Error> {
        let StatusLogEvent::StatusChanged(changed) = event;
        let lead = to_sql_int(lead_of(record)?.0)?;
        let version = to_sql_int(record.stream_version.get())?;
        let table = quoted(Self::TABLE);
        let previous = format!(
            "SELECT to_status FROM {table} WHERE lead = ?1 AND version < ?2 \
             ORDER BY version DESC LIMIT 1"
        );
        let from: Option<String> = tx
            .prepare_cached(&previous)?
            .query_row(params![lead, version], |row| row.get(0))
            .optional()?;
        let insert = format!(
            "INSERT INTO {table} (lead, version, from_status, to_status, at, actor) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (lead, version) DO NOTHING"
        );
        tx.prepare_cached(&insert)?.execute(params![
            lead,
            version,
            from,
            status_key(changed.status),
            record.recorded_at.as_micros(),
            record.metadata.actor,
        ])?;
        Ok(())
    }
}

/// A status as stored: its variant name, as in the events' payloads (`FollowUp`).
fn status_key(status: LeadStatus) -> &'static str {
    match status {
        LeadStatus::Available => "Available",
        LeadStatus::FollowUp => "FollowUp",
        LeadStatus::Closed => "Closed",
        LeadStatus::Converted => "Converted",
    }
}

fn optional_status(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<LeadStatus>> {
    let Some(text) = row.get::<_, Option<String>>(index)? else {
        return Ok(None);
    };
    let status = [
        LeadStatus::Available,
        LeadStatus::FollowUp,
        LeadStatus::Closed,
        LeadStatus::Converted,
    ]
    .into_iter()
    .find(|status| status_key(*status) == text);
    match status {
        Some(status) => Ok(Some(status)),
        None => Err(rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown lead status `{text}`").into(),
        )),
    }
}

fn status(row: &Row<'_>, index: usize) -> rusqlite::Result<LeadStatus> {
    optional_status(row, index)?.ok_or(rusqlite::Error::InvalidColumnType(
        index,
        "to_status".to_owned(),
        rusqlite::types::Type::Null,
    ))
}

fn change_of(row: &Row<'_>) -> rusqlite::Result<StatusChange> {
    Ok(StatusChange {
        lead: LeadId(from_sql_int(row, 0)?),
        version: StreamVersion(from_sql_int(row, 1)?),
        from: optional_status(row, 2)?,
        to: status(row, 3)?,
        at: Timestamp::from_micros(row.get(4)?),
        actor: row.get(5)?,
    })
}
