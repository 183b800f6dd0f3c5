//! The read side: users by id and by e-mail ([`UsersView`]), the members of each group
//! ([`GroupMembers`]), both [`DocumentView`]s, so they run unchanged on every store.
//!
//! **Blue/green rebuilds.** A document view is rebuilt by giving it a new name: its documents
//! and its checkpoint are kept under the name, so a view under a new name starts from the
//! beginning of the log, beside the live one. [`UsersView`] takes its name from a type
//! parameter, [`Users`] (`users`) or [`UsersNew`] (`users_new`): the service catches
//! `UsersView<UsersNew>` up while `UsersView<Users>` keeps answering, then switches reads to it
//! and records the switch as a [`ViewSwitched`] event, so that the next start reads from the
//! view that was switched in ([`LiveView`]).

use std::convert::Infallible;
use std::marker::PhantomData;

use eventsrc::{Changes, Decision, DocumentView, Event, RecordedEvent, aggregate, command};
use serde::{Deserialize, Serialize};

use super::domain::{GroupEvent, UserEvent};

/// A user as the users view keeps it, and as `GET /users/{id}` shows it.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq, Eq)]
pub struct UserDoc {
    /// The user's id.
    pub id: String,
    /// The given name.
    pub given_name: String,
    /// The family name.
    pub family_name: String,
    /// The address the user holds.
    pub email: Option<String>,
    /// Whether the user is active (signed up and not deactivated).
    pub active: bool,
    /// The user's stream version: the `ETag`.
    pub version: u64,
}

/// The name a [`UsersView`] is kept under.
pub trait UsersName: Send + Sync + 'static {
    /// The view's name.
    const NAME: &'static str;
}

/// The users view's first name, `users`.
#[derive(Debug)]
pub enum Users {}

impl UsersName for Users {
    const NAME: &'static str = "users";
}

/// The name the users view is rebuilt under, `users_new`.
#[derive(Debug)]
pub enum UsersNew {}

impl UsersName for UsersNew {
    const NAME: &'static str = "users_new";
}

/// Users by id, indexed by e-mail, kept under the name `N` gives.
#[derive(Debug)]
pub struct UsersView<N>(PhantomData<fn() -> N>);

impl<N> UsersView<N> {
    /// The view.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<N> Default for UsersView<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N: UsersName> DocumentView for UsersView<N> {
    const NAME: &'static str = N::NAME;
    const INDEXES: &'static [&'static str] = &["email"];
    type Event = UserEvent;
    type Document = UserDoc;
    type Error = Infallible;

    fn apply(
        &self,
        event: UserEvent,
        record: &RecordedEvent,
        docs: &mut Changes<UserDoc>,
    ) -> Result<(), Infallible> {
        let id = record.stream.id();
        docs.update(id, |user| {
            user.id = id.to_owned();
            user.version = record.stream_version.get();
            match event {
                UserEvent::UserRegistered(_) => user.active = true,
                UserEvent::UserNameSet(set) => {
                    user.given_name = set.given_name;
                    user.family_name = set.family_name;
                }
                UserEvent::UserEmailSet(set) => user.email = Some(set.email),
                UserEvent::UserDeactivated(_) => user.active = false,
            }
        });
        Ok(())
    }
}

/// A group as the members view keeps it, and as `GET /groups/{id}` shows it.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq, Eq)]
pub struct GroupDoc {
    /// The group's id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its members' ids, in the order they joined.
    pub members: Vec<String>,
    /// The group's stream version: the `ETag`.
    pub version: u64,
}

/// The members of each group, indexed by member (`GET /groups?member=ada`).
#[derive(Debug, Default)]
pub struct GroupMembers;

impl DocumentView for GroupMembers {
    const NAME: &'static str = "group_members";
    const INDEXES: &'static [&'static str] = &["members"];
    type Event = GroupEvent;
    type Document = GroupDoc;
    type Error = Infallible;

    fn apply(
        &self,
        event: GroupEvent,
        record: &RecordedEvent,
        docs: &mut Changes<GroupDoc>,
    ) -> Result<(), Infallible> {
        let id = record.stream.id();
        docs.update(id, |group| {
            group.id = id.to_owned();
            group.version = record.stream_version.get();
            match event {
                GroupEvent::GroupCreated(created) => group.name = created.name,
                GroupEvent::MemberAdded(added) => {
                    if !group.members.contains(&added.user) {
                        group.members.push(added.user);
                    }
                }
                GroupEvent::MemberRemoved(removed) => group.members.retain(|m| *m != removed.user),
            }
        });
        Ok(())
    }
}

/// Reads of a view family were switched to the view named `name`: `{"name":"users_new"}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[event(name = "view.switched")]
pub struct ViewSwitched {
    /// The view now answering reads.
    pub name: String,
}

/// Which view of a family answers reads (stream `view-<family>`, e.g. `view-users`); none
/// switched yet means the first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveView {
    name: Option<String>,
}

#[aggregate(name = "view", id = String)]
impl LiveView {
    fn on_switched(&mut self, event: &ViewSwitched) {
        self.name = Some(event.name.clone());
    }
}

impl LiveView {
    /// The view switched in last, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn switch(&self, command: &SwitchView) -> Decision<Self> {
        if self.name() == Some(command.to.as_str()) {
            return Ok(vec![]);
        }
        let name = command.to.clone();
        Ok(vec![ViewSwitched { name }.into()])
    }
}

/// Records that reads of `family` go to the view `to` from now on.
#[command(aggregate = LiveView, handler = LiveView::switch)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchView {
    /// The view family (`users`).
    #[id]
    pub family: String,
    /// The view switched in.
    pub to: String,
}
