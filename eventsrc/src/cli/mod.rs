//! The `eventsrc` command line, as a library: look at a store's streams and events, follow the
//! log, see where every runner stands, replay parked events, rebuild and switch read models,
//! check that the running build can read every stored event, and manage the schema.
//!
//! It comes in two forms. The stand-alone binary (the `eventsrc-cli` package, `cargo install
//! eventsrc-cli`) works on any store URL and shows payloads as the raw JSON that is stored. A
//! binary of the application's own calls [`Cli`](crate::cli::Cli), so that its event types, reactors and read
//! models are linked in: payloads decode through the [`registry`](crate::registry) to their
//! current version, `check` knows which types the build reads, `replay` runs the reactors'
//! effects, and `rebuild` runs the read models.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! #[tokio::main]
//! async fn main() -> ExitCode {
//!     // `my-app-admin streams --store sqlite://app.db`, `my-app-admin check`, ...
//!     eventsrc::cli::Cli::new().run().await
//! }
//! ```
//!
//! Every command takes `--store URL` (or the `EVENTSRC_STORE` environment variable), `--tenant`
//! and `--json` (one JSON document on stdout, for scripts). The store is opened without
//! migrating it, except by `migrate`: a schema that is behind is an error that says to run
//! `migrate`, and a SQLite file that does not exist is an error rather than a new empty store.
//!
//! | command | what it does |
//! |---|---|
//! | `streams [--category C] [--after S] [--limit N]` | streams, by name, with version and last write |
//! | `events STREAM [--from V] [--at-version V] [--at-time T] [--limit N]` | a stream's events, decoded |
//! | `show EVENT_ID` | one event, whole |
//! | `tail [--after P \| --from-start] [--type T] [--category C] [--limit N] [--idle SECS]` | follows the log live |
//! | `head` | the newest position and the time of its event |
//! | `lag` | per consumer: checkpoint, head, events and time behind |
//! | `parked [--reactor R]` | parked events with their errors |
//! | `replay REACTOR \| --all` | tries parked events again (reactors registered with [`Cli::reactions`](crate::cli::Cli::reactions)) |
//! | `rebuild READ_MODEL [--switch]` | builds a read model beside the live one, with progress ([`Cli::rebuild`](crate::cli::Cli::rebuild)) |
//! | `switch READ_MODEL` | switches a rebuilt read model in for the live one |
//! | `check [--ignore T]` | every stored (type, version) decodes in this build; exit code 1 if not |
//! | `migrate` | applies the schema migrations |
//! | `schema [--backend B] [--schema NAME]` | prints the DDL |
//! | `browse [--port N] [--open-for SECS]` | serves a read-only event browser on 127.0.0.1 ([`serve_browser`](crate::cli::serve_browser)) |
//!
//! Exit codes: 0 success, 1 a command that failed or a `check` that found problems, 2 a usage
//! error.

mod args;
mod browse;
mod commands;
mod output;
mod registered;
mod schema;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use crate::runner::{Consumer, Perform};
use crate::{Reactions, Reactor, Store};

pub use self::browse::serve_browser;
pub use self::output::CliError;
use self::registered::{Rebuild, Replay};

/// The `eventsrc` command line, with the application's reactors and read models registered.
///
/// ```no_run
/// use std::process::ExitCode;
/// # use eventsrc::{Reactor, RecordedEvent, Event, Reactions, Store};
/// # use eventsrc::runner::Perform;
/// # #[derive(Event, serde::Serialize, serde::Deserialize)] struct Welcomed { email: String }
/// # #[derive(Event)] enum UserEvent { Welcomed(Welcomed) }
/// # struct Welcome;
/// # impl Reactor for Welcome {
/// #     const NAME: &'static str = "welcome_mail";
/// #     type Event = UserEvent;
/// #     type Effect = String;
/// #     type Error = std::convert::Infallible;
/// #     fn react(&mut self, _: UserEvent, _: &RecordedEvent) -> Result<Vec<String>, Self::Error> {
/// #         Ok(vec![])
/// #     }
/// # }
/// # struct Mailer;
/// # impl Perform<String> for Mailer {
/// #     type Error = std::io::Error;
/// #     async fn perform(&self, _: String, _: &RecordedEvent) -> Result<(), std::io::Error> { Ok(()) }
/// # }
///
/// #[tokio::main]
/// async fn main() -> ExitCode {
///     eventsrc::cli::Cli::new()
///         // `replay welcome_mail` sends the mails that failed, from this process.
///         .reactions(|store: Store| Reactions::new(Welcome, Mailer, store))
///         .run()
///         .await
/// }
/// ```
#[must_use = "a command line does nothing until `run`"]
pub struct Cli {
    name: &'static str,
    replays: Vec<Replay>,
    rebuilds: Vec<Rebuild>,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("name", &self.name)
            .field(
                "reactors",
                &self
                    .replays
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field(
                "read_models",
                &self
                    .rebuilds
                    .iter()
                    .map(|r| r.live.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

impl Cli {
    /// The command line with nothing registered: every command but `replay`, `rebuild` and
    /// `switch` works.
    pub fn new() -> Self {
        Self {
            name: "eventsrc",
            replays: Vec::new(),
            rebuilds: Vec::new(),
        }
    }

    /// The program's name in `--help` and usage lines (default `eventsrc`).
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Registers a reactor, so that `replay` can try its parked events again: `make` builds
    /// its [`Reactions`] on the store the command line opened (with the performer of its
    /// effects: `replay` performs them from this process).
    pub fn reactions<R, F>(
        mut self,
        make: impl Fn(Store) -> Reactions<R, F, Store> + Send + Sync + 'static,
    ) -> Self
    where
        R: Reactor + Sync + 'static,
        F: Perform<R::Effect> + 'static,
    {
        self.replays.push(Replay::new(make));
        self
    }

    /// Registers a broker relay named `name` (the name given to [`Relay::new`]), so that
    /// `replay NAME` publishes its parked events again: `make` builds the relay on the store
    /// the command line opened, with a publisher the application connected before.
    ///
    /// [`Relay::new`]: crate::relay::Relay::new
    pub fn relay<P>(
        mut self,
        name: impl Into<String>,
        make: impl Fn(Store) -> crate::relay::Relay<P, Store> + Send + Sync + 'static,
    ) -> Self
    where
        P: crate::relay::Publisher + 'static,
    {
        self.replays.push(Replay::relay(name.into(), make));
        self
    }

    /// Registers a rebuild of the read model whose live checkpoint is `live`: `make` builds
    /// the consumer that writes the new version beside the live one (under a checkpoint name of
    /// its own, into tables of their own), and `swap` is the SQL that puts the rebuilt tables
    /// in place of the live ones, as [`SwitchReadModel::switch_read_model`] runs it.
    ///
    /// `rebuild LIVE` catches the consumer up with the log, showing a progress bar with an
    /// ETA; `switch LIVE` (or `rebuild LIVE --switch`) then switches it in. Stop the live
    /// runner first: a runner of the old read model left running is fenced at its next batch.
    ///
    /// [`SwitchReadModel::switch_read_model`]: crate::SwitchReadModel::switch_read_model
    pub fn rebuild<C>(
        mut self,
        live: impl Into<String>,
        make: impl Fn(Store) -> C + Send + Sync + 'static,
        swap: impl Into<String>,
    ) -> Self
    where
        C: Consumer + 'static,
    {
        self.rebuilds
            .push(Rebuild::new(live.into(), swap.into(), make));
        self
    }

    /// Runs the command the process's arguments name, printing to stdout (and errors to
    /// stderr), and returns the exit code.
    pub async fn run(self) -> ExitCode {
        // Not locked: a lock is not `Send`, and `tail` waits between its lines.
        let mut stdout = std::io::stdout();
        self.run_from(std::env::args_os(), &mut stdout).await
    }

    /// Runs the command `args` name (the first is the program's name), printing its output
    /// to `out` and errors to stderr: for tests, and for programs that capture the output.
    pub async fn run_from<I, T>(self, args: I, out: &mut (dyn Write + Send)) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let command = args::Args::command().name(self.name);
        let parsed = command
            .try_get_matches_from(args)
            .and_then(|matches| args::Args::from_arg_matches(&matches));
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                let _ = error.print();
                return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
            }
        };
        match commands::run(&self, parsed, out).await {
            Ok(code) => code,
            // The reader went away (`eventsrc tail | head`): nothing more to say.
            Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
            Err(error) => {
                let _ = out.flush();
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs the command line with nothing registered, on the process's arguments: what the
/// stand-alone `eventsrc` binary does.
pub async fn run() -> ExitCode {
    Cli::new().run().await
}
