//! [`LeadSearchView`]: LeadSearch as a document view, the same code on every store.

use eventsrc::backend::DocumentStore;
use eventsrc::{
    Changes, DocumentError, DocumentReader, DocumentView, RecordedEvent, StreamVersion, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::{Contact, ContactKind, LeadSearchEvent};
use crate::leads::LeadId;

/// LeadSearch written once for memory, SQLite and PostgreSQL: one document per lead holding
/// every e-mail address and phone number it ever had, with their search keys indexed.
///
/// It answers what [`LeadSearch`](super::LeadSearch) answers from its SQLite table, with the
/// same [`Contact`]s, on any store that runs document views. Applying an event keeps the
/// earliest sighting and the latest version of each value, so applying it twice changes
/// nothing.
///
/// ```
/// use eventsrc::{DocumentReader, Documents, Metadata, Repository, Runner, Store};
/// use eventsrc_examples::leads::read_models::LeadSearchView;
/// use eventsrc_examples::leads::{ChangeContactInformation, InitializeLead, LeadId};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let store = Store::open("memory:").await?; // or sqlite://..., postgres://...
/// let repository = Repository::new(store.clone());
/// let lead = LeadId(1410);
/// let contact = |email: &str, phone: &str| ChangeContactInformation {
///     lead, email: email.into(), phone: phone.into(),
/// };
/// repository.send(InitializeLead { id: lead }, Metadata::new()).await?;
/// repository.send(contact("s.ivanov@example.com", "03-27243457"), Metadata::new()).await?;
/// repository.send(contact("stefan@example.bg", "050-8139904"), Metadata::new()).await?;
///
/// Runner::new(store.clone(), Documents::new(store.clone(), LeadSearchView)).catch_up().await?;
/// let search = DocumentReader::new(store);
/// assert_eq!(LeadSearchView::find(&search, "S.Ivanov@example.com").await?, [lead]);
/// assert_eq!(LeadSearchView::find(&search, "03 2724 3457").await?, [lead]);
/// assert_eq!(LeadSearchView::contacts_of(&search, lead).await?.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LeadSearchView;

/// A lead's document: every contact it had, and their search keys (the indexed field).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeadContacts {
    /// Each value the lead had, in the order it first had them.
    pub contacts: Vec<SeenContact>,
    /// The search key of every value, once each.
    pub search_keys: Vec<String>,
}

/// One e-mail address or phone number, with when the lead first and last had it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenContact {
    /// E-mail or phone.
    pub kind: ContactKind,
    /// The value as it was given (trimmed).
    pub value: String,
    /// The version of the event that first gave it, and when that was recorded.
    pub first_version: u64,
    /// When the first version was recorded.
    pub first_seen: Timestamp,
    /// The version of the last event that gave it.
    pub last_version: u64,
}

impl LeadContacts {
    /// Notes that the event at `version`, recorded `at`, gave `value` as the lead's `kind`.
    fn saw(&mut self, kind: ContactKind, value: &str, version: u64, at: Timestamp) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        let known = self.contacts.iter_mut();
        match known
            .into_iter()
            .find(|c| c.kind == kind && c.value == value)
        {
            Some(contact) => {
                if version < contact.first_version {
                    (contact.first_version, contact.first_seen) = (version, at);
                }
                contact.last_version = contact.last_version.max(version);
            }
            None => self.contacts.push(SeenContact {
                kind,
                value: value.to_owned(),
                first_version: version,
                first_seen: at,
                last_version: version,
            }),
        }
        let key = kind.search_key(value);
        if !self.search_keys.contains(&key) {
            self.search_keys.push(key);
        }
    }
}

impl DocumentView for LeadSearchView {
    const NAME: &'static str = "lead_search_view";
    const INDEXES: &'static [&'static str] = &["search_keys"];
    type Event = LeadSearchEvent;
    type Document = LeadContacts;
    type Error = std::convert::Infallible;

    fn apply(
        &self,
        event: LeadSearchEvent,
        record: &RecordedEvent,
        docs: &mut Changes<LeadContacts>,
    ) -> Result<(), Self::Error> {
        let LeadSearchEvent::ContactInformationChanged(changed) = event;
        let (version, at) = (record.stream_version.get(), record.recorded_at);
        docs.update(record.stream.id(), |lead| {
            lead.saw(ContactKind::Email, &changed.email, version, at);
            lead.saw(ContactKind::Phone, &changed.phone, version, at);
        });
        Ok(())
    }
}

impl LeadSearchView {
    /// The leads that ever had `text` as e-mail (in any case) or phone (by its digits), in
    /// order of id.
    pub async fn find<S: DocumentStore>(
        search: &DocumentReader<S, Self>,
        text: &str,
    ) -> Result<Vec<LeadId>, DocumentError> {
        let found = search
            .by_index("search_keys", &ContactKind::query_key(text))
            .await?;
        let mut leads: Vec<LeadId> = found
            .iter()
            .filter_map(|(id, _)| id.parse().ok())
            .map(LeadId)
            .collect();
        leads.sort();
        Ok(leads)
    }

    /// Every e-mail and phone `lead` ever had, in the order it got them (e-mail before phone
    /// within one change), as [`LeadSearch::contacts_of`](super::LeadSearch::contacts_of)
    /// lists them.
    pub async fn contacts_of<S: DocumentStore>(
        search: &DocumentReader<S, Self>,
        lead: LeadId,
    ) -> Result<Vec<Contact>, DocumentError> {
        let document = search.get(&lead.0.to_string()).await?.unwrap_or_default();
        let latest = document.contacts.iter().map(|c| c.last_version).max();
        let mut contacts: Vec<Contact> = document
            .contacts
            .into_iter()
            .map(|seen| Contact {
                lead,
                kind: seen.kind,
                current: Some(seen.last_version) == latest,
                value: seen.value,
                first_version: StreamVersion(seen.first_version),
                first_seen: seen.first_seen,
                last_version: StreamVersion(seen.last_version),
            })
            .collect();
        contacts.sort_by(|a, b| {
            let b_key = (b.first_version, b.kind.as_str(), &b.value);
            (a.first_version, a.kind.as_str(), &a.value).cmp(&b_key)
        });
        Ok(contacts)
    }
}
