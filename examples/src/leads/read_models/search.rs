//! [`LeadSearch`]: every e-mail address and phone number a lead ever had, searchable.

use std::fmt;

use eventsrc::{Event, RecordedEvent, StoreError, StreamVersion, Timestamp};
use eventsrc_sqlite::rusqlite::{self, Transaction, params};
use eventsrc_sqlite::{SqliteEventStore, SqliteProjection};

use super::{LeadProjectionError, from_sql_int, lead_of, quoted, to_sql_int};
use crate::leads::{ContactInformationChanged, LeadId};

/// The events [`LeadSearch`] reads: a lead's contact information changed.
#[derive(Event, Debug, Clone, PartialEq, Eq)]
pub enum LeadSearchEvent {
    /// New e-mail and phone; the old ones stay searchable.
    ContactInformationChanged(ContactInformationChanged),
}

/// Which of a lead's contact fields a value was in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ContactKind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
}

impl ContactKind {
    /// The value stored in the `kind` column: `email` or `phone`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "email" => Some(Self::Email),
            "phone" => Some(Self::Phone),
            _ => None,
        }
    }

    /// What a value of this kind is searched by: an e-mail in lower case, a phone by its
    /// digits alone (`03-27243457` and `03 2724 3457` are the same number).
    pub fn search_key(self, value: &str) -> String {
        let value = value.trim();
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        match self {
            Self::Phone if !digits.is_empty() => digits,
            Self::Email | Self::Phone => value.to_lowercase(),
        }
    }

    /// The search key a search for `text` looks up: an e-mail's if it holds `@`, a phone's
    /// otherwise.
    pub(super) fn query_key(text: &str) -> String {
        let kind = if text.contains('@') {
            Self::Email
        } else {
            Self::Phone
        };
        kind.search_key(text)
    }
}

impl fmt::Display for ContactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One e-mail address or phone number a lead had, as [`LeadSearch::contacts_of`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The lead.
    pub lead: LeadId,
    /// E-mail or phone.
    pub kind: ContactKind,
    /// The value as it was given (trimmed).
    pub value: String,
    /// The version of the lead's stream that first gave it.
    pub first_version: StreamVersion,
    /// When that event was recorded.
    pub first_seen: Timestamp,
    /// The version of the last event that gave it (it may have been given, replaced and given
    /// again).
    pub last_version: StreamVersion,
    /// Whether the lead has it now: it was given by the lead's latest contact change.
    pub current: bool,
}

/// LeadSearch: every e-mail address and phone number a lead ever had, in one SQLite table, so
/// that a sales rep finds the lead whoever calls, from whichever number, quoting whichever
/// address. The lead's current row (`Lead`) only knows the latest pair: a search there misses
/// whoever quotes an older one.
///
/// One row per (lead, kind, value): an address or number is added, never replaced. Applying an
/// event is an upsert on that key that keeps the earliest sighting and the latest version, so an
/// event applied twice leaves the rows as they were. An empty field (a version 1 payload held only
/// one of the two) adds no row.
///
/// The table is named by a field ([`LeadSearch::TABLE`] by default), so that the same type can
/// be rebuilt into `lead_search_new` beside the live table and switched in
/// ([`LeadReadModels::rebuild_lead_search`](super::LeadReadModels::rebuild_lead_search)).
///
/// ```
/// use eventsrc::Runner;
/// use eventsrc::{Metadata, Repository};
/// use eventsrc_examples::leads::read_models::LeadSearch;
/// use eventsrc_examples::leads::{ChangeContactInformation, InitializeLead, LeadId};
/// use eventsrc_sqlite::{SqliteEventStore, SqliteReadModel};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = SqliteEventStore::open_in_memory().await?;
/// let repository = Repository::new(store.clone());
/// let lead = LeadId(1410);
/// let contact = |email: &str, phone: &str| ChangeContactInformation {
///     lead, email: email.into(), phone: phone.into(),
/// };
/// repository.send(InitializeLead { id: lead }, Metadata::new()).await?;
/// repository.send(contact("s.ivanov@example.com", "03-27243457"), Metadata::new()).await?;
/// repository.send(contact("stefan@example.bg", "050-8139904"), Metadata::new()).await?;
///
/// let read_model = SqliteReadModel::new(LeadSearch::new(), store.clone());
/// Runner::new(store.clone(), read_model).catch_up().await?;
/// // The old address and the old number, written another way, still find him.
/// assert_eq!(LeadSearch::find(&store, "S.Ivanov@example.com").await?, [lead]);
/// assert_eq!(LeadSearch::find(&store, "03 2724 3457").await?, [lead]);
/// assert_eq!(LeadSearch::contacts_of(&store, lead).await?.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSearch {
    table: String,
}

impl Default for LeadSearch {
    fn default() -> Self {
        Self::new()
    }
}

impl LeadSearch {
    /// The live table.
    pub const TABLE: &'static str = "lead_search";

    /// The projection into the live table, [`LeadSearch::TABLE`].
    pub fn new() -> Self {
        Self::in_table(Self::TABLE)
    }

    /// The projection into `table` (a rebuild's `lead_search_new`); its index is named after
    /// it, `<table>_by_key`.
    pub fn in_table(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
        }
    }

    /// The leads that ever had `text` as e-mail (in any case) or phone (by its digits), in
    /// order of id. Reads the live table.
    pub async fn find(store: &SqliteEventStore, text: &str) -> Result<Vec<LeadId>, StoreError> {
        let key = ContactKind::query_key(text);
        let sql = format!(
            "SELECT DISTINCT lead FROM {} WHERE search_key = ?1 ORDER BY lead",
            quoted(Self::TABLE)
        );
        store
            .read_with(move |db| {
                let mut statement = db.prepare(&sql)?;
                let leads = statement.query_map([key], |row| from_sql_int(row, 0).map(LeadId))?;
                leads.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
    }

    /// Every e-mail and phone `lead` ever had, in the order it got them (e-mail before phone
    /// within one change). Reads the live table.
    pub async fn contacts_of(
        store: &SqliteEventStore,
        lead: LeadId,
    ) -> Result<Vec<Contact>, StoreError> {
        let sql = format!(
            "SELECT kind, value, first_version, first_seen, last_version, \
             last_version = (SELECT MAX(last_version) FROM {table} WHERE lead = ?1) \
             FROM {table} WHERE lead = ?1 ORDER BY first_version, kind, value",
            table = quoted(Self::TABLE)
        );
        store
            .read_with(move |db| {
                let mut statement = db.prepare(&sql)?;
                let rows = statement.query_map([to_sql_int(lead.0)?], |row| {
                    let kind: String = row.get(0)?;
                    let kind = ContactKind::parse(&kind).ok_or_else(|| {
                        let error = format!("unknown contact kind `{kind}`");
                        rusqlite::Error::FromSqlConversionFailure(
                            0,
                            rusqlite::types::Type::Text,
                            error.into(),
                        )
                    })?;
                    Ok(Contact {
                        lead,
                        kind,
                        value: row.get(1)?,
                        first_version: StreamVersion(from_sql_int(row, 2)?),
                        first_seen: Timestamp::from_micros(row.get(3)?),
                        last_version: StreamVersion(from_sql_int(row, 4)?),
                        current: row.get(5)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
    }

    /// The name of the index of `table`: named after it, so that it follows the table through
    /// a switch.
    fn index_of(table: &str) -> String {
        format!("{table}_by_key")
    }

    /// The SQL that puts `rebuilt`'s table in the place of `live`'s, inside a switch's
    /// transaction: the live table goes (with its index), the rebuilt one takes its name. Its
    /// index, `<rebuilt>_by_key`, becomes `<live>_by_key` with it: the switch renames the
    /// indexes named after a table it renamed.
    pub(super) fn swap_sql(rebuilt: &str, live: &str) -> String {
        format!(
            "DROP TABLE IF EXISTS {live}; ALTER TABLE {rebuilt} RENAME TO {live};",
            live = quoted(live),
            rebuilt = quoted(rebuilt),
        )
    }

    /// Adds `value` to the lead's `kind` values, or widens its row: the earliest sighting and
    /// the latest version win, so the same event twice changes nothing.
    fn upsert(
        &self,
        tx: &Transaction<'_>,
        record: &RecordedEvent,
        lead: LeadId,
        kind: ContactKind,
        value: &str,
    ) -> rusqlite::Result<()> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO {} (lead, kind, value, search_key, first_version, first_seen, last_version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5) \
             ON CONFLICT (lead, kind, value) DO UPDATE SET \
             first_seen = CASE WHEN excluded.first_version < first_version \
                 THEN excluded.first_seen ELSE first_seen END, \
             first_version = MIN(first_version, excluded.first_version), \
             last_version = MAX(last_version, excluded.last_version)",
            quoted(&self.table)
        );
        let version = to_sql_int(record.stream_version.get())?;
        tx.prepare_cached(&sql)?.execute(params![
            to_sql_int(lead.0)?,
            kind.as_str(),
            value,
            kind.search_key(value),
            version,
            record.recorded_at.as_micros(),
        ])?;
        Ok(())
    }
}

impl SqliteProjection for LeadSearch {
    const NAME: &'static str = "lead_search";
    type Event = LeadSearchEvent;
    type Error = LeadProjectionError;

    fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
                 lead INTEGER NOT NULL, \
                 kind TEXT NOT NULL CHECK (kind IN ('email', 'phone')), \
                 value TEXT NOT NULL, \
                 search_key TEXT NOT NULL, \
                 first_version INTEGER NOT NULL, \
                 first_seen INTEGER NOT NULL, \
                 last_version INTEGER NOT NULL, \
                 PRIMARY KEY (lead, kind, value)\
             ) WITHOUT ROWID; \
             CREATE INDEX IF NOT EXISTS {index} ON {table} (search_key);",
            table = quoted(&self.table),
            index = quoted(&Self::index_of(&self.table)),
        ))?;
        Ok(())
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: LeadSearchEvent,
        record: &RecordedEvent,
    ) -> Result<(), Self::Error> {
        let LeadSearchEvent::ContactInformationChanged(changed) = event;
        let lead = lead_of(record)?;
        self.upsert(tx, record, lead, ContactKind::Email, &changed.email)?;
        self.upsert(tx, record, lead, ContactKind::Phone, &changed.phone)?;
        Ok(())
    }
}
