//! A sales-leads CRM, after Vladik Khononov's talk "Event Sourcing: A New Dimension in Software
//! Design".
//!
//! A [`Lead`] is a person a sales rep may call. Its state is a fold over five events
//! ([`LeadEvent`]): it is initialized, named, given contact information, scheduled for a
//! follow-up call, and moved between the statuses Available, Follow-up, Closed and Converted.
//! Five commands decide those events; the rules live in their handlers:
//!
//! - a converted lead is final, and a closed lead must be reopened (status Available) before it
//!   can be edited;
//! - a command that would change nothing (the same name again, the same status) is a no-op;
//! - setting a follow-up also moves the lead to Follow-up, and Follow-up needs a date;
//! - a follow-up decided while someone else changed the status is a conflict, while a rename in the
//!   same situation goes through (`Lead::conflicts`, what Khononov calls "optimistic concurrency on
//!   steroids").
//!
//! Events are plain structs with `#[derive(Event)]`, the lead's event handlers carry
//! `#[aggregate]` (which generates [`LeadEvent`]), and each command is a struct with `#[command]`,
//! its `#[id]` naming the lead it targets and `#[validate]` rules checking its attributes.
//! [`ContactInformationChanged`] is at schema version 2; stored version 1 payloads are upcast.
//! The same events feed two read models, LeadSearch and the status-change log, as
//! SQLite tables ([`read_models`]).
//!
//! ```
//! use eventsrc::{Aggregate, Handle};
//! use eventsrc_examples::leads::{ChangeName, InitializeLead, Lead, LeadId, NameChanged};
//!
//! let mut lead = Lead::default();
//! for event in lead.handle(&InitializeLead { id: LeadId(1410) })? {
//!     lead.apply(&event);
//! }
//! let rename = ChangeName { lead: LeadId(1410), name: "Stefan Ivanov".into() };
//! assert_eq!(
//!     lead.handle(&rename)?,
//!     vec![NameChanged { name: "Stefan Ivanov".into() }.into()]
//! );
//! # Ok::<(), eventsrc_examples::leads::LeadError>(())
//! ```

pub mod read_models;
pub mod story;

use std::fmt;
use std::str::FromStr;

use eventsrc::{Decision, Event, aggregate, command};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A lead's id (`1410` is Stefan Ivanov's in the demo); the lead's stream is `lead-1410`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeadId(pub u64);

impl fmt::Display for LeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a lead stands in the sales funnel. Stored by its variant name (`"FollowUp"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum LeadStatus {
    /// Open: any sales rep may call.
    #[default]
    Available,
    /// A call is scheduled for [`Lead::followup_on`].
    FollowUp,
    /// Not interested for now; can be reopened by setting it back to `Available`.
    Closed,
    /// Became a customer; final.
    Converted,
}

impl fmt::Display for LeadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Available => "Available",
            Self::FollowUp => "Follow-up",
            Self::Closed => "Closed",
            Self::Converted => "Converted",
        })
    }
}

/// A calendar date without time or zone, written and stored as ISO 8601 `YYYY-MM-DD`.
///
/// Every `Date` is a real day of the proleptic Gregorian calendar: [`Date::new`] and parsing
/// reject `2016-02-30`, so a stored follow-up date that does not exist fails to decode instead
/// of reaching the domain.
///
/// ```
/// use eventsrc_examples::leads::Date;
///
/// let date: Date = "2016-11-23".parse()?;
/// assert_eq!(date, Date::new(2016, 11, 23)?);
/// assert_eq!(date.to_string(), "2016-11-23");
/// assert!("2016-02-30".parse::<Date>().is_err());
/// assert!("23/11/2016".parse::<Date>().is_err());
/// # Ok::<(), eventsrc_examples::leads::InvalidDate>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

/// Numbers or text that do not name a calendar date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date `{value}`: {reason}")]
pub struct InvalidDate {
    /// The rejected input.
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl Date {
    /// The date `year-month-day`; the year must lie in 1..=9999.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, InvalidDate> {
        let reason = if !(1..=9999).contains(&year) {
            Some("the year must be between 1 and 9999")
        } else if !(1..=12).contains(&month) {
            Some("the month must be between 1 and 12")
        } else if civil(year, month, day).is_none() {
            Some("that month has no such day")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidDate {
                value: format!("{year:04}-{month:02}-{day:02}"),
                reason,
            }),
            None => Ok(Self { year, month, day }),
        }
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, from 1.
    pub fn day(self) -> u8 {
        self.day
    }

    /// The same day as a `jiff` date, for calendar arithmetic.
    ///
    /// ```
    /// use eventsrc_examples::leads::Date;
    ///
    /// let date = Date::new(2016, 11, 23)?;
    /// assert_eq!(date.to_civil(), jiff::civil::date(2016, 11, 23));
    /// assert_eq!(Date::from_civil(date.to_civil())?, date);
    /// # Ok::<(), eventsrc_examples::leads::InvalidDate>(())
    /// ```
    pub fn to_civil(self) -> jiff::civil::Date {
        // `new` checked the date against jiff's calendar, so this is the same day.
        civil(self.year, self.month, self.day).unwrap_or_default()
    }

    /// A `jiff` date as a [`Date`]: an error for a year before 1.
    pub fn from_civil(date: jiff::civil::Date) -> Result<Self, InvalidDate> {
        let year = u16::try_from(date.year()).map_err(|_| InvalidDate {
            value: date.to_string(),
            reason: "the year must be between 1 and 9999",
        })?;
        // jiff's months and days are 1..=12 and 1..=31.
        Self::new(year, date.month().unsigned_abs(), date.day().unsigned_abs())
    }
}

/// `year-month-day` in jiff's calendar, when that day exists.
fn civil(year: u16, month: u8, day: u8) -> Option<jiff::civil::Date> {
    let year = i16::try_from(year).ok()?;
    let (month, day) = (i8::try_from(month).ok()?, i8::try_from(day).ok()?);
    jiff::civil::Date::new(year, month, day).ok()
}

impl FromStr for Date {
    type Err = InvalidDate;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidDate {
            value: s.to_owned(),
            reason: "write it as `YYYY-MM-DD`, e.g. `2016-11-23`",
        };
        let mut parts = s.split('-');
        let (Some(year), Some(month), Some(day), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let digits =
            |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
        if !(digits(year, 4) && digits(month, 2) && digits(day, 2)) {
            return Err(invalid());
        }
        match (year.parse(), month.parse(), day.parse()) {
            (Ok(year), Ok(month), Ok(day)) => Self::new(year, month, day),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The lead was created with this id: `{"id":1410}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LeadWasInitialized {
    /// The lead's id.
    pub id: LeadId,
}

/// The lead moved to another status: `{"status":"FollowUp"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StatusChanged {
    /// The new status.
    pub status: LeadStatus,
}

/// The lead's name changed: `{"name":"Stefan Ivanov"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct NameChanged {
    /// The new name.
    pub name: String,
}

/// The lead's e-mail and phone changed; both are always written together.
///
/// Schema version 2. Version 1 had one free-text `contact` field holding whatever the rep typed,
/// an e-mail address or a phone number (`{"contact":"03-27243457"}`); reading it sorts the text
/// into the field it belongs to and leaves the other one empty. A version 1 payload that already
/// has `email` and `phone` (what this example stored before its events derived `Event`) reads
/// as is.
///
/// ```
/// use eventsrc::Event;
/// use eventsrc_examples::leads::ContactInformationChanged;
///
/// let v1 = ContactInformationChanged::decode(
///     "ContactInformationChanged",
///     1,
///     r#"{"contact":"s.ivanov@example.com"}"#,
/// )?;
/// assert_eq!(v1.email, "s.ivanov@example.com");
/// assert_eq!(v1.phone, "");
/// assert_eq!(v1.schema_version(), 2);
/// # Ok::<(), eventsrc::DecodeError>(())
/// ```
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(version = 2, upcast_json = split_contact)]
pub struct ContactInformationChanged {
    /// The new e-mail address.
    pub email: String,
    /// The new phone number.
    pub phone: String,
}

/// Version 1 → 2 of `ContactInformationChanged`: `contact` becomes `email` (if it has an `@`)
/// or `phone`.
fn split_contact(mut payload: Value) -> Result<Value, String> {
    let Some(fields) = payload.as_object_mut() else {
        return Err(format!("expected a JSON object, found `{payload}`"));
    };
    let Some(contact) = fields.remove("contact") else {
        return Ok(payload);
    };
    let Some(contact) = contact.as_str().map(str::trim) else {
        return Err(format!("`contact` must be a string, found `{contact}`"));
    };
    let (email, phone) = if contact.contains('@') {
        (contact, "")
    } else {
        ("", contact)
    };
    fields.insert("email".into(), email.into());
    fields.insert("phone".into(), phone.into());
    Ok(payload)
}

/// A follow-up call was scheduled: `{"date":"2016-11-23"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FollowupSet {
    /// The day of the call.
    pub date: Date,
}

/// A sales lead, as a fold over its [`LeadEvent`]s.
///
/// `Lead::default()` is a lead that does not exist yet; [`InitializeLead`] creates it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lead {
    id: Option<LeadId>,
    name: String,
    email: String,
    phone: String,
    status: LeadStatus,
    followup_on: Option<Date>,
}

#[aggregate(id = LeadId, error = LeadError, conflicts = followup_races_status)]
impl Lead {
    fn on_initialized(&mut self, event: &LeadWasInitialized) {
        self.id = Some(event.id);
    }

    fn on_status_changed(&mut self, event: &StatusChanged) {
        self.status = event.status;
        // A follow-up date only means something while the call is pending.
        if event.status != LeadStatus::FollowUp {
            self.followup_on = None;
        }
    }

    fn on_name_changed(&mut self, event: &NameChanged) {
        self.name.clone_from(&event.name);
    }

    fn on_contact_changed(&mut self, event: &ContactInformationChanged) {
        self.email.clone_from(&event.email);
        self.phone.clone_from(&event.phone);
    }

    fn on_followup_set(&mut self, event: &FollowupSet) {
        self.followup_on = Some(event.date);
    }
}

/// A follow-up is scheduled for the status its decision saw: if the status changed in the
/// meantime (the lead was closed, converted, reopened) the follow-up is a conflict and goes back
/// to the caller. Every other race is decided again on the new state, so a rename racing a status
/// change goes through.
fn followup_races_status(ours: &LeadEvent, theirs: &LeadEvent) -> bool {
    matches!(
        (ours, theirs),
        (LeadEvent::FollowupSet(_), LeadEvent::StatusChanged(_))
    )
}

impl Lead {
    /// The lead's id, once initialized.
    pub fn id(&self) -> Option<LeadId> {
        self.id
    }

    /// The lead's name (empty until named).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lead's e-mail address (empty until given).
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The lead's phone number (empty until given).
    pub fn phone(&self) -> &str {
        &self.phone
    }

    /// The lead's status.
    pub fn status(&self) -> LeadStatus {
        self.status
    }

    /// The day of the scheduled follow-up call, while the status is Follow-up.
    pub fn followup_on(&self) -> Option<Date> {
        self.followup_on
    }

    fn initialized(&self) -> Result<LeadId, LeadError> {
        self.id.ok_or(LeadError::NotInitialized)
    }

    /// The id of a lead that may be edited: initialized, neither closed nor converted.
    fn editable(&self) -> Result<LeadId, LeadError> {
        let id = self.initialized()?;
        match self.status {
            LeadStatus::Converted => Err(LeadError::Converted(id)),
            LeadStatus::Closed => Err(LeadError::Closed(id)),
            LeadStatus::Available | LeadStatus::FollowUp => Ok(id),
        }
    }
}

/// Why a lead refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadError {
    /// `InitializeLead` was sent to a lead that exists.
    #[error("lead {0} is already initialized")]
    AlreadyInitialized(LeadId),
    /// A command was sent to a lead that does not exist yet.
    #[error("the lead is not initialized: send `InitializeLead` first")]
    NotInitialized,
    /// The lead is converted, which is final.
    #[error("lead {0} is converted: a converted lead can't be changed")]
    Converted(LeadId),
    /// The lead is closed and must be reopened first.
    #[error("lead {0} is closed: reopen it (status Available) before changing it")]
    Closed(LeadId),
    /// `ChangeStatus` to Follow-up, which needs a date.
    #[error("status Follow-up needs a date: send `SetFollowup` instead")]
    FollowupNeedsDate,
}

/// Creates the lead `id`, Available.
#[command(aggregate = Lead, handler = Lead::initialize)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializeLead {
    /// The new lead's id: positive.
    #[id]
    #[validate(with = positive, message = "must be positive")]
    pub id: LeadId,
}

fn positive(id: &LeadId) -> bool {
    id.0 > 0
}

/// Renames the lead. Surrounding whitespace is dropped; the same name again is a no-op.
#[command(aggregate = Lead, handler = Lead::change_name)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeName {
    /// The lead.
    #[id]
    pub lead: LeadId,
    /// The new name: not blank, at most [`ChangeName::MAX_LEN`] characters.
    #[validate(non_empty, message = "must not be blank")]
    #[validate(with = not_too_long, message = "must be at most 200 characters")]
    pub name: String,
}

impl ChangeName {
    /// The longest name accepted, in characters.
    pub const MAX_LEN: usize = 200;
}

fn not_too_long(name: &str) -> bool {
    name.trim().chars().count() <= ChangeName::MAX_LEN
}

/// Replaces the lead's e-mail and phone. The same pair again is a no-op.
#[command(aggregate = Lead, handler = Lead::change_contact)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeContactInformation {
    /// The lead.
    #[id]
    pub lead: LeadId,
    /// The new e-mail: `name@domain`, without spaces.
    #[validate(with = email_format, message = "must look like `name@domain`")]
    pub email: String,
    /// The new phone: digits, optionally with spaces and `+-()`.
    #[validate(with = phone_format, message = "must be digits, optionally with spaces and `+-()`")]
    pub phone: String,
}

fn email_format(email: &str) -> bool {
    let email = email.trim();
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn phone_format(phone: &str) -> bool {
    let phone = phone.trim();
    phone.contains(|c: char| c.is_ascii_digit())
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c))
}

/// Moves the lead to another status. Follow-up needs a date, so it goes through [`SetFollowup`];
/// a closed lead can only be reopened (Available); a converted lead stays converted.
#[command(aggregate = Lead, handler = Lead::change_status)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeStatus {
    /// The lead.
    #[id]
    pub lead: LeadId,
    /// The new status.
    pub status: LeadStatus,
}

/// Schedules a follow-up call on a day, moving the lead to Follow-up if it is not there yet.
/// The same day again is a no-op.
#[command(aggregate = Lead, handler = Lead::set_followup)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetFollowup {
    /// The lead.
    #[id]
    pub lead: LeadId,
    /// The day of the call.
    pub on: Date,
}

// The commands' handlers: state in, events out, no I/O.
impl Lead {
    fn initialize(&self, command: &InitializeLead) -> Decision<Self> {
        if let Some(id) = self.id {
            return Err(LeadError::AlreadyInitialized(id));
        }
        Ok(vec![
            LeadWasInitialized { id: command.id }.into(),
            StatusChanged {
                status: LeadStatus::Available,
            }
            .into(),
        ])
    }

    fn change_name(&self, command: &ChangeName) -> Decision<Self> {
        self.initialized()?;
        let name = command.name.trim();
        if self.name == name {
            return Ok(vec![]);
        }
        self.editable()?;
        Ok(vec![NameChanged { name: name.into() }.into()])
    }

    fn change_contact(&self, command: &ChangeContactInformation) -> Decision<Self> {
        self.initialized()?;
        let (email, phone) = (command.email.trim(), command.phone.trim());
        if self.email == email && self.phone == phone {
            return Ok(vec![]);
        }
        self.editable()?;
        let (email, phone) = (email.into(), phone.into());
        Ok(vec![ContactInformationChanged { email, phone }.into()])
    }

    fn change_status(&self, command: &ChangeStatus) -> Decision<Self> {
        let id = self.initialized()?;
        if self.status == command.status {
            return Ok(vec![]);
        }
        match (self.status, command.status) {
            (LeadStatus::Converted, _) => Err(LeadError::Converted(id)),
            (LeadStatus::Closed, LeadStatus::Available) => Ok(vec![
                StatusChanged {
                    status: LeadStatus::Available,
                }
                .into(),
            ]),
            (LeadStatus::Closed, _) => Err(LeadError::Closed(id)),
            (_, LeadStatus::FollowUp) => Err(LeadError::FollowupNeedsDate),
            (_, status) => Ok(vec![StatusChanged { status }.into()]),
        }
    }

    fn set_followup(&self, command: &SetFollowup) -> Decision<Self> {
        self.initialized()?;
        if self.status == LeadStatus::FollowUp && self.followup_on == Some(command.on) {
            return Ok(vec![]);
        }
        self.editable()?;
        let mut events = Vec::with_capacity(2);
        if self.status != LeadStatus::FollowUp {
            let status = LeadStatus::FollowUp;
            events.push(StatusChanged { status }.into());
        }
        events.push(FollowupSet { date: command.on }.into());
        Ok(events)
    }
}
