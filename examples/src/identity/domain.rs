//! Users, the e-mail addresses they hold, and groups of users.
//!
//! Events are set-style: each names the attribute it sets ([`UserNameSet`], [`UserEmailSet`]),
//! so a read model folds them without knowing which command made them. [`UserNameSet`] is at
//! schema version 2; stored version 1 payloads (one `name`) are upcast on read.
//!
//! An e-mail address belongs to at most one user. Each address has a small aggregate of its own,
//! [`EmailOwner`] (stream `email-<address>`), and the commands that claim one ([`SignUp`],
//! [`ChangeEmail`]) are decided against the user and the addresses together
//! ([`eventsrc::Decide`]): their events go to every stream in one transaction, each stream's
//! version checked, so of two sign-ups racing for one address exactly one commits and the
//! other, decided again, finds it taken. Nothing is ever claimed and then given back.
//!
//! ```
//! use eventsrc::Decide;
//! use eventsrc_examples::identity::domain::{EmailOwner, IdentityError, SignUp, User};
//!
//! let sign_up = SignUp {
//!     user: "ada".into(),
//!     email: "ada@example.com".into(),
//!     given_name: "Ada".into(),
//!     family_name: "Lovelace".into(),
//! };
//! let (user_events, owner_events) = sign_up.decide(&(User::default(), EmailOwner::default()))?;
//! assert_eq!((user_events.len(), owner_events.len()), (3, 1));
//!
//! let taken = EmailOwner::held_by("grace");
//! let refused = sign_up.decide(&(User::default(), taken));
//! assert!(matches!(refused, Err(IdentityError::EmailTaken { .. })));
//! # Ok::<(), IdentityError>(())
//! ```

use std::collections::BTreeSet;

use eventsrc::{Decided, Decision, Event, aggregate, command};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest user or group id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// The longest e-mail address (RFC 5321's path limit, less the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// The longest name or group name, in characters.
pub const MAX_NAME_LEN: usize = 100;

// --- events ------------------------------------------------------------------------------------

/// A user signed up: `{}`. The attributes follow as their own events.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "user.registered")]
pub struct UserRegistered {}

/// The user's name was set: `{"given_name":"Ada","family_name":"Lovelace"}`.
///
/// Schema version 2. Version 1 had one `name` (`{"name":"Ada Lovelace"}`); reading it takes
/// the first word as the given name and the rest as the family name.
///
/// ```
/// use eventsrc::Event;
/// use eventsrc_examples::identity::domain::UserNameSet;
///
/// let v1 = UserNameSet::decode("user.name_set", 1, r#"{"name":"Ada King Lovelace"}"#)?;
/// assert_eq!((v1.given_name.as_str(), v1.family_name.as_str()), ("Ada", "King Lovelace"));
/// # Ok::<(), eventsrc::DecodeError>(())
/// ```
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "user.name_set", version = 2, upcast_json = split_name)]
pub struct UserNameSet {
    /// The given name.
    pub given_name: String,
    /// The family name (may be empty).
    pub family_name: String,
}

/// Version 1 → 2 of `UserNameSet`: `name` splits at its first whitespace into `given_name` and
/// `family_name`.
fn split_name(mut payload: Value) -> Result<Value, String> {
    let Some(fields) = payload.as_object_mut() else {
        return Err(format!("expected a JSON object, found `{payload}`"));
    };
    let Some(name) = fields.remove("name") else {
        return Err("version 1 has a `name` field, and this payload has none".into());
    };
    let Some(name) = name.as_str().map(str::trim) else {
        return Err(format!("`name` must be a string, found `{name}`"));
    };
    let (given, family) = name.split_once(char::is_whitespace).unwrap_or((name, ""));
    fields.insert("given_name".into(), given.into());
    fields.insert("family_name".into(), family.trim().into());
    Ok(payload)
}

/// The user's e-mail address was set: `{"email":"ada@example.com"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "user.email_set")]
pub struct UserEmailSet {
    /// The address, normalized ([`normalize_email`]).
    pub email: String,
}

/// The user was deactivated: `{}`. A deactivated user keeps its address and takes no changes.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "user.deactivated")]
pub struct UserDeactivated {}

/// An address was claimed by a user: `{"user":"ada"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "email.claimed")]
pub struct EmailClaimed {
    /// The user now holding the address.
    pub user: String,
}

/// An address was let go by the user that held it: `{"user":"ada"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "email.released")]
pub struct EmailReleased {
    /// The user that held the address.
    pub user: String,
}

/// A group was created: `{"name":"Analysts"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "group.created")]
pub struct GroupCreated {
    /// The group's display name.
    pub name: String,
}

/// A user joined a group: `{"user":"ada"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "group.member_added")]
pub struct MemberAdded {
    /// The user.
    pub user: String,
}

/// A user left a group: `{"user":"ada"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "group.member_removed")]
pub struct MemberRemoved {
    /// The user.
    pub user: String,
}

// --- aggregates --------------------------------------------------------------------------------

/// A user (stream `user-<id>`). `User::default()` is one that has not signed up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    registered: bool,
    active: bool,
    given_name: String,
    family_name: String,
    email: Option<String>,
    previous_email: Option<String>,
}

#[aggregate(id = String, error = IdentityError)]
impl User {
    fn on_registered(&mut self, _: &UserRegistered) {
        self.registered = true;
        self.active = true;
    }

    fn on_name_set(&mut self, event: &UserNameSet) {
        self.given_name.clone_from(&event.given_name);
        self.family_name.clone_from(&event.family_name);
    }

    fn on_email_set(&mut self, event: &UserEmailSet) {
        self.previous_email = self.email.replace(event.email.clone());
    }

    fn on_deactivated(&mut self, _: &UserDeactivated) {
        self.active = false;
    }
}

impl User {
    /// Whether the user signed up.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// Whether the user signed up and was not deactivated.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The given and the family name.
    pub fn name(&self) -> (&str, &str) {
        (&self.given_name, &self.family_name)
    }

    /// The address the user holds.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// The address a [`ChangeEmail`] to `email` moves the user from: the one it holds, or, if
    /// it holds `email` already (a retry of that very change, or a no-op), the one it held
    /// before. So a retried change names the same streams as its first run, and is answered
    /// as a replay. `None` for a user that has not signed up.
    pub fn moving_to(&self, email: &str) -> Option<&str> {
        let current = self.email.as_deref()?;
        if current != email {
            return Some(current);
        }
        Some(self.previous_email.as_deref().unwrap_or(current))
    }

    /// The user as one that may change: registered and active.
    fn changeable(&self, user: &str) -> Result<(), IdentityError> {
        if !self.registered {
            return Err(IdentityError::UnknownUser { user: user.into() });
        }
        if !self.active {
            return Err(IdentityError::Deactivated { user: user.into() });
        }
        Ok(())
    }
}

/// Who holds one e-mail address (stream `email-<address>`): the guard of uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailOwner {
    holder: Option<String>,
}

#[aggregate(name = "email", id = String, error = IdentityError)]
impl EmailOwner {
    fn on_claimed(&mut self, event: &EmailClaimed) {
        self.holder = Some(event.user.clone());
    }

    fn on_released(&mut self, _: &EmailReleased) {
        self.holder = None;
    }
}

impl EmailOwner {
    /// An address held by `user` (for specs).
    pub fn held_by(user: &str) -> Self {
        Self {
            holder: Some(user.into()),
        }
    }

    /// The user holding the address, if any.
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    /// Claims the address for `user`: nothing if it holds it already, an error if another does.
    fn claim(&self, user: &str, email: &str) -> Result<Vec<EmailOwnerEvent>, IdentityError> {
        match self.holder.as_deref() {
            None => Ok(vec![EmailClaimed { user: user.into() }.into()]),
            Some(holder) if holder == user => Ok(vec![]),
            Some(_) => Err(IdentityError::EmailTaken {
                email: email.into(),
            }),
        }
    }
}

/// A group of users (stream `group-<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    name: Option<String>,
    members: BTreeSet<String>,
}

#[aggregate(id = String, error = IdentityError)]
impl Group {
    fn on_created(&mut self, event: &GroupCreated) {
        self.name = Some(event.name.clone());
    }

    fn on_member_added(&mut self, event: &MemberAdded) {
        self.members.insert(event.user.clone());
    }

    fn on_member_removed(&mut self, event: &MemberRemoved) {
        self.members.remove(&event.user);
    }
}

impl Group {
    /// The group's name, once created.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The members, in order of id.
    pub fn members(&self) -> &BTreeSet<String> {
        &self.members
    }

    fn existing(&self, group: &str) -> Result<(), IdentityError> {
        match self.name {
            Some(_) => Ok(()),
            None => Err(IdentityError::UnknownGroup {
                group: group.into(),
            }),
        }
    }
}

/// Why the identity domain refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A command for a user that has not signed up.
    #[error("there is no user `{user}`")]
    UnknownUser {
        /// The user's id.
        user: String,
    },
    /// A command for a group that was not created.
    #[error("there is no group `{group}`")]
    UnknownGroup {
        /// The group's id.
        group: String,
    },
    /// Signing up with an id that is taken.
    #[error("the user `{user}` exists already")]
    UserExists {
        /// The user's id.
        user: String,
    },
    /// Creating a group with an id that is taken.
    #[error("the group `{group}` exists already")]
    GroupExists {
        /// The group's id.
        group: String,
    },
    /// Claiming an address another user holds.
    #[error("the address {email} belongs to another user")]
    EmailTaken {
        /// The address.
        email: String,
    },
    /// Changing a deactivated user, or adding one to a group.
    #[error("the user `{user}` is deactivated")]
    Deactivated {
        /// The user's id.
        user: String,
    },
    /// Changing the address of a user whose address changed since the command was made.
    #[error("the address of `{user}` changed meanwhile: read the user again")]
    EmailChangedMeanwhile {
        /// The user's id.
        user: String,
    },
}

// --- validation --------------------------------------------------------------------------------

/// An address as the domain keeps it: trimmed and lower-cased, so `Ada@Example.com` and
/// `ada@example.com` are one address.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A user or group id: 1 to [`MAX_ID_LEN`] ASCII letters, digits, `.`, `_` or `-`.
pub fn id_format(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("must be 1 to {MAX_ID_LEN} characters long"));
    }
    if !id.chars().all(allowed) {
        return Err("may hold only ASCII letters, digits, `.`, `_` and `-`".into());
    }
    Ok(())
}

/// An address: one `@` between a non-empty local part and a domain with a dot, no whitespace,
/// at most [`MAX_EMAIL_LEN`] bytes.
pub fn email_format(email: &str) -> Result<(), String> {
    if email.len() > MAX_EMAIL_LEN {
        return Err(format!("must be at most {MAX_EMAIL_LEN} bytes long"));
    }
    let shaped = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    };
    if !shaped || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must look like `name@example.com`".into());
    }
    Ok(())
}

/// A name: not blank, at most [`MAX_NAME_LEN`] characters, no control characters.
pub fn name_format(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be blank".into());
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!("must be at most {MAX_NAME_LEN} characters long"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not hold control characters".into());
    }
    Ok(())
}

/// A family name: like [`name_format`], but may be empty (not everyone has one).
pub fn family_name_format(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Ok(());
    }
    name_format(name)
}

// --- commands ----------------------------------------------------------------------------------

/// Signs a user up with an address no other user holds: decided against the user and the
/// address's [`EmailOwner`] together.
#[command(aggregates = (User, EmailOwner), error = IdentityError, handler = sign_up)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp {
    /// The new user's id.
    #[id]
    #[validate(with = id_format)]
    pub user: String,
    /// The address, normalized ([`normalize_email`]).
    #[id]
    #[validate(with = email_format)]
    pub email: String,
    /// The given name.
    #[validate(with = name_format)]
    pub given_name: String,
    /// The family name (may be empty).
    #[validate(with = family_name_format)]
    pub family_name: String,
}

/// Moves a user from the address it holds, `from`, to `email`: claims the new one and lets the
/// old one go, in one transaction with the user's own event.
#[command(
    aggregates = (User, EmailOwner, EmailOwner),
    error = IdentityError,
    handler = change_email
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEmail {
    /// The user.
    #[id]
    #[validate(with = id_format)]
    pub user: String,
    /// The new address (normalized).
    #[id]
    #[validate(with = email_format)]
    pub email: String,
    /// The address the user held when the command was made (normalized).
    #[id]
    #[validate(with = email_format)]
    pub from: String,
}

/// Sets a user's name; the same name again is a no-op.
#[command(aggregate = User, handler = User::set_name)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetName {
    /// The user.
    #[id]
    #[validate(with = id_format)]
    pub user: String,
    /// The given name.
    #[validate(with = name_format)]
    pub given_name: String,
    /// The family name (may be empty).
    #[validate(with = family_name_format)]
    pub family_name: String,
}

/// Deactivates a user; deactivating again is a no-op.
#[command(aggregate = User, handler = User::deactivate)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivate {
    /// The user.
    #[id]
    #[validate(with = id_format)]
    pub user: String,
}

/// Creates a group.
#[command(aggregate = Group, handler = Group::create)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateGroup {
    /// The new group's id.
    #[id]
    #[validate(with = id_format)]
    pub group: String,
    /// Its display name.
    #[validate(with = name_format)]
    pub name: String,
}

/// Adds an active user to a group, decided against the group and the user, so that a user
/// deactivated meanwhile is not added; adding a member again is a no-op.
#[command(aggregates = (Group, User), error = IdentityError, handler = add_member)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddMember {
    /// The group.
    #[id]
    #[validate(with = id_format)]
    pub group: String,
    /// The user.
    #[id]
    #[validate(with = id_format)]
    pub user: String,
}

/// Removes a user from a group; removing a non-member is a no-op.
#[command(aggregate = Group, handler = Group::remove_member)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveMember {
    /// The group.
    #[id]
    #[validate(with = id_format)]
    pub group: String,
    /// The user.
    #[validate(with = id_format)]
    pub user: String,
}

// The decisions across streams: the command and the states in, events per stream out.

fn sign_up(command: &SignUp, (user, owner): &(User, EmailOwner)) -> Decided<SignUp> {
    if user.registered {
        return Err(IdentityError::UserExists {
            user: command.user.clone(),
        });
    }
    let claimed = owner.claim(&command.user, &command.email)?;
    let name = UserNameSet {
        given_name: command.given_name.trim().into(),
        family_name: command.family_name.trim().into(),
    };
    let email = UserEmailSet {
        email: command.email.clone(),
    };
    let registered = vec![UserRegistered {}.into(), name.into(), email.into()];
    Ok((registered, claimed))
}

fn change_email(
    command: &ChangeEmail,
    (user, new, old): &(User, EmailOwner, EmailOwner),
) -> Decided<ChangeEmail> {
    user.changeable(&command.user)?;
    if user.email() == Some(command.email.as_str()) {
        return Ok(Default::default());
    }
    if user.email() != Some(command.from.as_str()) {
        return Err(IdentityError::EmailChangedMeanwhile {
            user: command.user.clone(),
        });
    }
    let claimed = new.claim(&command.user, &command.email)?;
    let released = match old.holder() {
        Some(holder) if holder == command.user => {
            let user = command.user.clone();
            vec![EmailReleased { user }.into()]
        }
        _ => vec![],
    };
    let email = command.email.clone();
    Ok((vec![UserEmailSet { email }.into()], claimed, released))
}

fn add_member(command: &AddMember, (group, user): &(Group, User)) -> Decided<AddMember> {
    group.existing(&command.group)?;
    user.changeable(&command.user)?;
    if group.members.contains(&command.user) {
        return Ok(Default::default());
    }
    let user = command.user.clone();
    Ok((vec![MemberAdded { user }.into()], vec![]))
}

// The single-aggregate commands' handlers: state in, events out, no I/O.
impl User {
    fn set_name(&self, command: &SetName) -> Decision<Self> {
        self.changeable(&command.user)?;
        let (given_name, family_name) = (command.given_name.trim(), command.family_name.trim());
        if self.name() == (given_name, family_name) {
            return Ok(vec![]);
        }
        let set = UserNameSet {
            given_name: given_name.into(),
            family_name: family_name.into(),
        };
        Ok(vec![set.into()])
    }

    fn deactivate(&self, command: &Deactivate) -> Decision<Self> {
        if !self.registered {
            return Err(IdentityError::UnknownUser {
                user: command.user.clone(),
            });
        }
        if !self.active {
            return Ok(vec![]);
        }
        Ok(vec![UserDeactivated {}.into()])
    }
}

impl Group {
    fn create(&self, command: &CreateGroup) -> Decision<Self> {
        if self.name.is_some() {
            return Err(IdentityError::GroupExists {
                group: command.group.clone(),
            });
        }
        let name = command.name.trim().into();
        Ok(vec![GroupCreated { name }.into()])
    }

    fn remove_member(&self, command: &RemoveMember) -> Decision<Self> {
        self.existing(&command.group)?;
        if !self.members.contains(&command.user) {
            return Ok(vec![]);
        }
        let removed = MemberRemoved {
            user: command.user.clone(),
        };
        Ok(vec![removed.into()])
    }
}
