//! Seed 002's domain: sales leads (Vladik Khononov, "Event Sourcing: A New Dimension in Software
//! Design").
//!
//! A [`Lead`] is a person a sales rep may call. Its state is a fold over five events
//! ([`LeadEvent`]): it is initialized, named, given contact information, scheduled for a
//! follow-up call, and moved between the statuses Available, Follow-up, Closed and Converted.
//! Five commands decide those events; the rules live in their [`Handle`] impls:
//!
//! - a converted lead is final, and a closed lead must be reopened (status Available) before it
//!   can be edited;
//! - a command that would change nothing (the same name again, the same status) is a no-op;
//! - setting a follow-up also moves the lead to Follow-up, and Follow-up needs a date;
//! - a follow-up decided while someone else changed the status is a conflict, while a rename in
//!   the same situation goes through ([`Lead::conflicts`], the talk's "optimistic concurrency on
//!   steroids").
//!
//! Everything here is written by hand against `eventsrc`'s traits; the planned macros will
//! generate the [`Event`] and [`Aggregate`] plumbing.
//!
//! ```
//! use eventsrc::{Aggregate, Handle};
//! use eventsrc_examples::leads::{ChangeName, InitializeLead, Lead, LeadEvent, LeadId};
//!
//! let mut lead = Lead::default();
//! for event in lead.handle(&InitializeLead { id: LeadId(1410) })? {
//!     lead.apply(&event);
//! }
//! let rename = ChangeName { name: "Stefan Ivanov".into() };
//! assert_eq!(
//!     lead.handle(&rename)?,
//!     vec![LeadEvent::NameChanged { name: "Stefan Ivanov".into() }]
//! );
//! # Ok::<(), eventsrc_examples::leads::LeadError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use eventsrc::{
    Aggregate, Command, Decision, DecodeError, EncodeError, Event, Handle, ValidationError,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A lead's id (`1410` in the talk); the lead's stream is `lead-1410`.
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
        } else if day == 0 || day > days_in_month(year, month) {
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
}

fn days_in_month(year: u16, month: u8) -> u8 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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

/// Everything that can happen to a lead: the talk's five events.
///
/// Each variant is stored under its own name (`"NameChanged"`) at schema version 1, with the
/// variant's fields as the JSON payload (`{"name":"Stefan Ivanov"}`); `Serialize` writes exactly
/// that payload.
///
/// ```
/// use eventsrc::Event;
/// use eventsrc_examples::leads::{LeadEvent, LeadStatus};
///
/// let event = LeadEvent::StatusChanged { status: LeadStatus::FollowUp };
/// assert_eq!(event.event_type(), "StatusChanged");
/// assert_eq!(event.encode()?, r#"{"status":"FollowUp"}"#);
/// assert_eq!(LeadEvent::decode("StatusChanged", 1, r#"{"status":"FollowUp"}"#)?, event);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LeadEvent {
    /// The lead was created with this id.
    LeadWasInitialized {
        /// The lead's id.
        id: LeadId,
    },
    /// The lead moved to another status.
    StatusChanged {
        /// The new status.
        status: LeadStatus,
    },
    /// The lead's name changed.
    NameChanged {
        /// The new name.
        name: String,
    },
    /// The lead's e-mail and phone changed (both are always written together).
    ContactInformationChanged {
        /// The new e-mail address.
        email: String,
        /// The new phone number.
        phone: String,
    },
    /// A follow-up call was scheduled.
    FollowupSet {
        /// The day of the call.
        date: Date,
    },
}

impl LeadEvent {
    /// The schema version every variant is written with.
    pub const SCHEMA_VERSION: u32 = 1;

    /// The stored names of all variants, in declaration order.
    pub const NAMES: [&'static str; 5] = [
        "LeadWasInitialized",
        "StatusChanged",
        "NameChanged",
        "ContactInformationChanged",
        "FollowupSet",
    ];
}

// The stored payloads, one per variant, for decoding by name. Unknown extra fields are ignored so
// that adding a field later does not break older readers.
#[derive(Deserialize)]
struct InitializedPayload {
    id: LeadId,
}

#[derive(Deserialize)]
struct StatusPayload {
    status: LeadStatus,
}

#[derive(Deserialize)]
struct NamePayload {
    name: String,
}

#[derive(Deserialize)]
struct ContactPayload {
    email: String,
    phone: String,
}

#[derive(Deserialize)]
struct FollowupPayload {
    date: Date,
}

fn payload<T: DeserializeOwned>(
    event_type: &str,
    version: u32,
    payload: &str,
) -> Result<T, DecodeError> {
    serde_json::from_str(payload).map_err(|e| DecodeError::malformed(event_type, version, e))
}

impl Event for LeadEvent {
    fn event_type(&self) -> &'static str {
        let index = match self {
            Self::LeadWasInitialized { .. } => 0,
            Self::StatusChanged { .. } => 1,
            Self::NameChanged { .. } => 2,
            Self::ContactInformationChanged { .. } => 3,
            Self::FollowupSet { .. } => 4,
        };
        Self::NAMES[index]
    }

    fn schema_version(&self) -> u32 {
        Self::SCHEMA_VERSION
    }

    fn encode(&self) -> Result<String, EncodeError> {
        serde_json::to_string(self).map_err(|e| EncodeError::new(self.event_type(), e))
    }

    fn decode(event_type: &str, version: u32, json: &str) -> Result<Self, DecodeError> {
        if !Self::NAMES.contains(&event_type) {
            return Err(DecodeError::unknown(event_type, version));
        }
        if version > Self::SCHEMA_VERSION {
            return Err(DecodeError::future(
                event_type,
                version,
                Self::SCHEMA_VERSION,
            ));
        }
        Ok(match event_type {
            "LeadWasInitialized" => {
                let InitializedPayload { id } = payload(event_type, version, json)?;
                Self::LeadWasInitialized { id }
            }
            "StatusChanged" => {
                let StatusPayload { status } = payload(event_type, version, json)?;
                Self::StatusChanged { status }
            }
            "NameChanged" => {
                let NamePayload { name } = payload(event_type, version, json)?;
                Self::NameChanged { name }
            }
            "ContactInformationChanged" => {
                let ContactPayload { email, phone } = payload(event_type, version, json)?;
                Self::ContactInformationChanged { email, phone }
            }
            "FollowupSet" => {
                let FollowupPayload { date } = payload(event_type, version, json)?;
                Self::FollowupSet { date }
            }
            other => return Err(DecodeError::unknown(other, version)),
        })
    }
}

/// A sales lead: the talk's `Lead` class, as a fold over its [`LeadEvent`]s.
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

impl Aggregate for Lead {
    const TYPE: &'static str = "lead";
    type Id = LeadId;
    type Event = LeadEvent;
    type Error = LeadError;

    fn apply(&mut self, event: &LeadEvent) {
        match event {
            LeadEvent::LeadWasInitialized { id } => self.id = Some(*id),
            LeadEvent::StatusChanged { status } => {
                self.status = *status;
                // A follow-up date only means something while the call is pending.
                if *status != LeadStatus::FollowUp {
                    self.followup_on = None;
                }
            }
            LeadEvent::NameChanged { name } => self.name.clone_from(name),
            LeadEvent::ContactInformationChanged { email, phone } => {
                self.email.clone_from(email);
                self.phone.clone_from(phone);
            }
            LeadEvent::FollowupSet { date } => self.followup_on = Some(*date),
        }
    }

    /// A follow-up is scheduled for the status its decision saw: if the status changed in the
    /// meantime (the lead was closed, converted, reopened) the follow-up is a conflict and goes
    /// back to the caller. Every other race is decided again on the new state, so a rename
    /// racing a status change goes through.
    fn conflicts(ours: &LeadEvent, theirs: &LeadEvent) -> bool {
        matches!(
            (ours, theirs),
            (
                LeadEvent::FollowupSet { .. },
                LeadEvent::StatusChanged { .. }
            )
        )
    }
}

/// Creates the lead `id`, Available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializeLead {
    /// The new lead's id; must match the id the command is executed against.
    pub id: LeadId,
}

impl Command for InitializeLead {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut errors = ValidationError::new();
        if self.id.0 == 0 {
            errors.push("id", "must be positive");
        }
        errors.into_result()
    }
}

impl Handle<InitializeLead> for Lead {
    fn handle(&self, command: &InitializeLead) -> Decision<Self> {
        if let Some(id) = self.id {
            return Err(LeadError::AlreadyInitialized(id));
        }
        Ok(vec![
            LeadEvent::LeadWasInitialized { id: command.id },
            LeadEvent::StatusChanged {
                status: LeadStatus::Available,
            },
        ])
    }
}

/// Renames the lead. Surrounding whitespace is dropped; the same name again is a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeName {
    /// The new name: not blank, at most [`ChangeName::MAX_LEN`] characters.
    pub name: String,
}

impl ChangeName {
    /// The longest name accepted, in characters.
    pub const MAX_LEN: usize = 200;
}

impl Command for ChangeName {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut errors = ValidationError::new();
        let name = self.name.trim();
        if name.is_empty() {
            errors.push("name", "must not be blank");
        } else if name.chars().count() > Self::MAX_LEN {
            errors.push(
                "name",
                format!("must be at most {} characters", Self::MAX_LEN),
            );
        }
        errors.into_result()
    }
}

impl Handle<ChangeName> for Lead {
    fn handle(&self, command: &ChangeName) -> Decision<Self> {
        self.initialized()?;
        let name = command.name.trim();
        if self.name == name {
            return Ok(vec![]);
        }
        self.editable()?;
        Ok(vec![LeadEvent::NameChanged {
            name: name.to_owned(),
        }])
    }
}

/// Replaces the lead's e-mail and phone. The same pair again is a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeContactInformation {
    /// The new e-mail: `name@domain`, without spaces.
    pub email: String,
    /// The new phone: digits, optionally with spaces and `+-()`.
    pub phone: String,
}

impl Command for ChangeContactInformation {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut errors = ValidationError::new();
        if let Some(problem) = email_problem(self.email.trim()) {
            errors.push("email", problem);
        }
        if let Some(problem) = phone_problem(self.phone.trim()) {
            errors.push("phone", problem);
        }
        errors.into_result()
    }
}

fn email_problem(email: &str) -> Option<&'static str> {
    if email.is_empty() {
        return Some("must not be blank");
    }
    if email.chars().any(char::is_whitespace) {
        return Some("must not contain spaces");
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            None
        }
        _ => Some("must look like `name@domain`"),
    }
}

fn phone_problem(phone: &str) -> Option<&'static str> {
    if !phone.bytes().any(|b| b.is_ascii_digit()) {
        Some("must contain digits")
    } else if !phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-()".contains(c))
    {
        Some("may hold only digits, spaces and `+-()`")
    } else {
        None
    }
}

impl Handle<ChangeContactInformation> for Lead {
    fn handle(&self, command: &ChangeContactInformation) -> Decision<Self> {
        self.initialized()?;
        let (email, phone) = (command.email.trim(), command.phone.trim());
        if self.email == email && self.phone == phone {
            return Ok(vec![]);
        }
        self.editable()?;
        Ok(vec![LeadEvent::ContactInformationChanged {
            email: email.to_owned(),
            phone: phone.to_owned(),
        }])
    }
}

/// Moves the lead to another status. Follow-up needs a date, so it goes through [`SetFollowup`];
/// a closed lead can only be reopened (Available); a converted lead stays converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeStatus {
    /// The new status.
    pub status: LeadStatus,
}

impl Command for ChangeStatus {}

impl Handle<ChangeStatus> for Lead {
    fn handle(&self, command: &ChangeStatus) -> Decision<Self> {
        let id = self.initialized()?;
        if self.status == command.status {
            return Ok(vec![]);
        }
        match (self.status, command.status) {
            (LeadStatus::Converted, _) => Err(LeadError::Converted(id)),
            (LeadStatus::Closed, LeadStatus::Available) => Ok(vec![LeadEvent::StatusChanged {
                status: LeadStatus::Available,
            }]),
            (LeadStatus::Closed, _) => Err(LeadError::Closed(id)),
            (_, LeadStatus::FollowUp) => Err(LeadError::FollowupNeedsDate),
            (_, status) => Ok(vec![LeadEvent::StatusChanged { status }]),
        }
    }
}

/// Schedules a follow-up call on a day, moving the lead to Follow-up if it is not there yet.
/// The same day again is a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetFollowup {
    /// The day of the call.
    pub on: Date,
}

impl Command for SetFollowup {}

impl Handle<SetFollowup> for Lead {
    fn handle(&self, command: &SetFollowup) -> Decision<Self> {
        self.initialized()?;
        if self.status == LeadStatus::FollowUp && self.followup_on == Some(command.on) {
            return Ok(vec![]);
        }
        self.editable()?;
        let mut events = Vec::with_capacity(2);
        if self.status != LeadStatus::FollowUp {
            events.push(LeadEvent::StatusChanged {
                status: LeadStatus::FollowUp,
            });
        }
        events.push(LeadEvent::FollowupSet { date: command.on });
        Ok(events)
    }
}
