//! The identity service without HTTP: commands through one [`Repository`], reads from the
//! views, which runners keep following the log, and reads that wait for a consistency token.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use eventsrc::store::ReadStream;
use eventsrc::{
    AggregateCache, CommandOptions, Committed, CommittedAcross, DocumentError, DocumentReader,
    DocumentView, Documents, Event, EventStore, ExecuteError, GlobalPosition, LoadError, Metadata,
    ProgressWatch, Repository, RunError, Runner, Store, StoreError, StreamId, StreamVersion,
};
use tokio::sync::oneshot;

use super::domain::{
    AddMember, ChangeEmail, CreateGroup, Deactivate, IdentityError, RemoveMember, SetName, SignUp,
    User, normalize_email,
};
use super::views::{
    GroupDoc, GroupMembers, LiveView, SwitchView, UserDoc, Users, UsersName, UsersNew, UsersView,
};

/// How the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How long a read waits for its view to reach the request's consistency token.
    pub read_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            read_wait: Duration::from_secs(2),
        }
    }
}

/// What a command committed, as the HTTP layer answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The stream of the resource the request named.
    pub stream: StreamId,
    /// Its version after the command: the `ETag`.
    pub version: StreamVersion,
    /// The consistency token: the global position of the command's last event, or for a
    /// no-op, of the resource's last event.
    pub token: Option<GlobalPosition>,
    /// The stored names of the events appended, in order (empty for a no-op).
    pub events: Vec<&'static str>,
    /// Whether this is the first run of an idempotent request, read back.
    pub replayed: bool,
}

impl Written {
    fn one<E: Event>(committed: Committed<E>) -> Self {
        Self {
            events: committed.events.iter().map(Event::event_type).collect(),
            stream: committed.stream,
            version: committed.stream_version,
            token: committed.global_position,
            replayed: committed.replayed,
        }
    }

    /// What a decision across streams committed, as the first aggregate's resource (`None`
    /// only if it named no stream, which a decision cannot).
    fn across<E>(committed: CommittedAcross<E>, events: Vec<&'static str>) -> Option<Self> {
        let first = committed.streams.into_iter().next()?;
        Some(Self {
            stream: first.stream,
            version: first.stream_version,
            token: committed.global_position,
            events,
            replayed: committed.replayed,
        })
    }
}

/// The stream names of `events`.
fn names<E: Event>(events: &[E]) -> impl Iterator<Item = &'static str> + '_ {
    events.iter().map(Event::event_type)
}

/// A command's result, or why it failed.
pub type WriteResult = Result<Written, ExecuteError<IdentityError>>;

/// A read that could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The view did not reach the request's consistency token in time.
    #[error(
        "the view `{view}` has not reached {token} after {waited:?} (it is at {reached}); try again shortly"
    )]
    NotYet {
        /// The view.
        view: &'static str,
        /// The token waited for.
        token: GlobalPosition,
        /// Where the view got to.
        reached: String,
        /// How long the read waited.
        waited: Duration,
    },
    /// The view's documents could not be read.
    #[error(transparent)]
    Documents(#[from] DocumentError),
}

/// A rebuild of the users view that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Reads go to the rebuilt view already; a newer version of the view takes a new name.
    #[error(
        "the users view was rebuilt into `{0}` already: a new version of the view takes a new name"
    )]
    AlreadyRebuilt(&'static str),
    /// The rebuild's runner failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Recording the switch failed.
    #[error("recording the switch failed: {0}")]
    Record(#[from] ExecuteError<std::convert::Infallible>),
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// The view now answering reads.
    pub view: &'static str,
    /// How many events the rebuild handled.
    pub handled: u64,
    /// Where the rebuilt view was when reads switched to it.
    pub position: Option<GlobalPosition>,
}

/// A view's runner, following the log in a task of its own until this is dropped.
#[derive(Debug)]
struct Following {
    progress: ProgressWatch,
    /// Dropping it stops the runner (its shutdown future resolves).
    _stop: oneshot::Sender<()>,
}

/// Spawns `runner` to follow the log until the returned handle is dropped.
fn follow<V: DocumentView>(runner: Runner<Store, Documents<Store, V>>) -> Following {
    let progress = runner.progress();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) = runner.run(shutdown).await {
            eprintln!("identity: the view `{}` stopped: {error}", V::NAME);
        }
    });
    Following {
        progress,
        _stop: stop,
    }
}

fn runner<V: DocumentView>(store: &Store, view: V) -> Runner<Store, Documents<Store, V>> {
    Runner::new(store.clone(), Documents::new(store.clone(), view))
}

/// The users view that answers reads, whichever name it is kept under.
#[derive(Debug)]
enum UsersReader {
    Users(DocumentReader<Store, UsersView<Users>>),
    UsersNew(DocumentReader<Store, UsersView<UsersNew>>),
}

impl UsersReader {
    fn name(&self) -> &'static str {
        match self {
            Self::Users(_) => Users::NAME,
            Self::UsersNew(_) => UsersNew::NAME,
        }
    }

    async fn get(&self, id: &str) -> Result<Option<UserDoc>, DocumentError> {
        match self {
            Self::Users(reader) => reader.get(id).await,
            Self::UsersNew(reader) => reader.get(id).await,
        }
    }

    async fn by_email(&self, email: &str) -> Result<Vec<(String, UserDoc)>, DocumentError> {
        match self {
            Self::Users(reader) => reader.by_index("email", email).await,
            Self::UsersNew(reader) => reader.by_index("email", email).await,
        }
    }

    async fn all(&self) -> Result<Vec<(String, UserDoc)>, DocumentError> {
        match self {
            Self::Users(reader) => reader.with_prefix("").await,
            Self::UsersNew(reader) => reader.with_prefix("").await,
        }
    }
}

/// The live users view: its reader and its runner.
#[derive(Debug)]
struct UsersSide {
    reader: UsersReader,
    following: Following,
}

impl UsersSide {
    fn start(store: &Store, name: &str) -> Self {
        if name == UsersNew::NAME {
            Self {
                reader: UsersReader::UsersNew(DocumentReader::new(store.clone())),
                following: follow(runner(store, UsersView::<UsersNew>::new())),
            }
        } else {
            Self {
                reader: UsersReader::Users(DocumentReader::new(store.clone())),
                following: follow(runner(store, UsersView::<Users>::new())),
            }
        }
    }
}

/// How many users and groups a node keeps in memory between requests.
const CACHED_AGGREGATES: usize = 100_000;

/// The family name under which the users view's switches are recorded (stream `view-users`).
const USERS_FAMILY: &str = "users";

/// The identity service: commands, and reads from views that follow the log.
#[derive(Debug)]
pub struct Service {
    store: Store,
    repository: Repository<Store>,
    users: RwLock<Arc<UsersSide>>,
    groups: DocumentReader<Store, GroupMembers>,
    groups_following: Following,
    rebuilding: tokio::sync::Mutex<()>,
    config: Config,
}

impl Service {
    /// Starts the service on `store`: the runners of the views (the users view under the name
    /// last switched in) follow the log from their checkpoints in tasks of their own, until
    /// the service is dropped. Needs a Tokio runtime.
    pub async fn start(store: Store, config: Config) -> Result<Self, LoadError> {
        // Users and groups stay in memory between requests: a command on a known user appends
        // without reading the user's stream first. Other nodes' writes cost a catch-up.
        let repository =
            Repository::new(store.clone()).with_cache(AggregateCache::new(CACHED_AGGREGATES));
        let live = repository.load::<LiveView>(&USERS_FAMILY.into()).await?;
        let users = UsersSide::start(&store, live.state.name().unwrap_or(Users::NAME));
        Ok(Self {
            groups: DocumentReader::new(store.clone()),
            groups_following: follow(runner(&store, GroupMembers)),
            users: RwLock::new(Arc::new(users)),
            rebuilding: tokio::sync::Mutex::new(()),
            store,
            repository,
            config,
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The name of the users view that answers reads.
    pub fn users_view(&self) -> &'static str {
        self.users_side().reader.name()
    }

    fn users_side(&self) -> Arc<UsersSide> {
        let side = self.users.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&side)
    }

    // --- writes --------------------------------------------------------------------------------

    /// Signs a user up ([`SignUp`]); the address is normalized first.
    pub async fn sign_up(&self, mut command: SignUp, options: CommandOptions) -> WriteResult {
        command.email = normalize_email(&command.email);
        let committed = self.repository.decide(command, options).await?;
        let events = names(&committed.events.0)
            .chain(names(&committed.events.1))
            .collect();
        self.with_token(Written::across(committed, events)).await
    }

    /// Sets a user's name ([`SetName`]).
    pub async fn set_name(&self, command: SetName, options: CommandOptions) -> WriteResult {
        let committed = self.repository.send(command, options).await?;
        self.with_token(Written::one(committed)).await
    }

    /// Moves `user` to the address `email` ([`ChangeEmail`]), from the one it holds now.
    pub async fn change_email(
        &self,
        user: &str,
        email: &str,
        options: CommandOptions,
    ) -> WriteResult {
        let email = normalize_email(email);
        let loaded = self.repository.load::<User>(&user.to_owned()).await?;
        let Some(from) = loaded.state.moving_to(&email) else {
            let user = user.to_owned();
            return Err(ExecuteError::Rejected(IdentityError::UnknownUser { user }));
        };
        let command = ChangeEmail {
            user: user.to_owned(),
            from: from.to_owned(),
            email,
        };
        let committed = self.repository.decide(command, options).await?;
        let (set, claimed, released) = &committed.events;
        let events = names(set)
            .chain(names(claimed))
            .chain(names(released))
            .collect();
        self.with_token(Written::across(committed, events)).await
    }

    /// Deactivates a user ([`Deactivate`]).
    pub async fn deactivate(&self, command: Deactivate, options: CommandOptions) -> WriteResult {
        let committed = self.repository.send(command, options).await?;
        self.with_token(Written::one(committed)).await
    }

    /// Creates a group ([`CreateGroup`]).
    pub async fn create_group(&self, command: CreateGroup, options: CommandOptions) -> WriteResult {
        let committed = self.repository.send(command, options).await?;
        self.with_token(Written::one(committed)).await
    }

    /// Adds a user to a group ([`AddMember`]).
    pub async fn add_member(&self, command: AddMember, options: CommandOptions) -> WriteResult {
        let committed = self.repository.decide(command, options).await?;
        let events = names(&committed.events.0)
            .chain(names(&committed.events.1))
            .collect();
        self.with_token(Written::across(committed, events)).await
    }

    /// Removes a user from a group ([`RemoveMember`]).
    pub async fn remove_member(
        &self,
        command: RemoveMember,
        options: CommandOptions,
    ) -> WriteResult {
        let committed = self.repository.send(command, options).await?;
        self.with_token(Written::one(committed)).await
    }

    /// A no-op appends nothing and so has no position of its own: its token is the position of
    /// the resource's last event, which a read must reach to show the state the no-op saw.
    async fn with_token(&self, written: impl Into<Option<Written>>) -> WriteResult {
        let Some(mut written) = written.into() else {
            let missing = std::io::Error::other("a decision committed on no stream");
            return Err(ExecuteError::Store(StoreError::backend(missing)));
        };
        if written.token.is_none() {
            let read = ReadStream::backward().limit(1);
            let last = self.store.read_stream(&written.stream, read).await?;
            written.token = last.first().map(|record| record.global_position);
        }
        Ok(written)
    }

    // --- reads ---------------------------------------------------------------------------------

    /// Waits until `progress` reaches `token` (if any), at most the configured read wait.
    async fn reach(
        &self,
        view: &'static str,
        progress: &ProgressWatch,
        token: Option<GlobalPosition>,
    ) -> Result<(), ReadError> {
        let Some(token) = token else {
            return Ok(());
        };
        let waited = self.config.read_wait;
        progress
            .wait_for(token, waited)
            .await
            .map_err(|_| ReadError::NotYet {
                view,
                token,
                reached: progress
                    .get()
                    .position
                    .map_or_else(|| "the start".to_owned(), |p| p.to_string()),
                waited,
            })
    }

    /// The user `id`, once the users view has reached `token`.
    pub async fn user(
        &self,
        id: &str,
        token: Option<GlobalPosition>,
    ) -> Result<Option<UserDoc>, ReadError> {
        let side = self.users_side();
        let view = side.reader.name();
        self.reach(view, &side.following.progress, token).await?;
        Ok(side.reader.get(id).await?)
    }

    /// The users holding `email` (one at most; the address is normalized first), or every user
    /// for `None`, once the users view has reached `token`.
    pub async fn users(
        &self,
        email: Option<&str>,
        token: Option<GlobalPosition>,
    ) -> Result<Vec<UserDoc>, ReadError> {
        let side = self.users_side();
        let view = side.reader.name();
        self.reach(view, &side.following.progress, token).await?;
        let found = match email {
            Some(email) => side.reader.by_email(&normalize_email(email)).await?,
            None => side.reader.all().await?,
        };
        Ok(found.into_iter().map(|(_, user)| user).collect())
    }

    /// The group `id` and its members, once the members view has reached `token`.
    pub async fn group(
        &self,
        id: &str,
        token: Option<GlobalPosition>,
    ) -> Result<Option<GroupDoc>, ReadError> {
        self.reach(GroupMembers::NAME, &self.groups_following.progress, token)
            .await?;
        Ok(self.groups.get(id).await?)
    }

    /// The groups `member` belongs to, once the members view has reached `token`.
    pub async fn groups_of(
        &self,
        member: &str,
        token: Option<GlobalPosition>,
    ) -> Result<Vec<GroupDoc>, ReadError> {
        self.reach(GroupMembers::NAME, &self.groups_following.progress, token)
            .await?;
        let found = self.groups.by_index("members", member).await?;
        Ok(found.into_iter().map(|(_, group)| group).collect())
    }

    // --- the blue/green rebuild ------------------------------------------------------------------

    /// Rebuilds the users view under its new name, `users_new`, beside the live one (which
    /// keeps answering meanwhile), then switches reads to it, records the switch (the next
    /// start reads from `users_new`), and stops the old view's runner once the reads that
    /// started before the switch are done.
    pub async fn rebuild_users(&self) -> Result<Rebuilt, RebuildError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        if self.users_view() == UsersNew::NAME {
            return Err(RebuildError::AlreadyRebuilt(UsersNew::NAME));
        }
        let mut rebuild = runner(&self.store, UsersView::<UsersNew>::new());
        let progress = rebuild.catch_up().await?;
        let switch = SwitchView {
            family: USERS_FAMILY.into(),
            to: UsersNew::NAME.into(),
        };
        self.repository.send(switch, Metadata::new()).await?;
        let side = UsersSide {
            reader: UsersReader::UsersNew(DocumentReader::new(self.store.clone())),
            following: follow(rebuild),
        };
        *self.users.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(side);
        Ok(Rebuilt {
            view: UsersNew::NAME,
            handled: progress.handled,
            position: progress.position,
        })
    }
}
