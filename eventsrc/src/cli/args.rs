//! The command line's arguments, declared with clap's derive.

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

use crate::{GlobalPosition, Timestamp, Uuid};

/// Look at an eventsrc store and operate it.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, disable_help_subcommand = true)]
pub(super) struct Args {
    #[command(flatten)]
    pub(super) global: Global,
    #[command(subcommand)]
    pub(super) command: Command,
}

/// The options every command takes.
#[derive(Debug, ClapArgs)]
pub(super) struct Global {
    /// The store: `sqlite://FILE`, `postgres://USER@HOST/DB?schema=NAME`, `memory:` [default:
    /// the EVENTSRC_STORE environment variable]
    #[arg(long, global = true, value_name = "URL")]
    pub(super) store: Option<String>,
    /// The tenant to look at [default: the default tenant]
    #[arg(long, global = true, value_name = "NAME")]
    pub(super) tenant: Option<String>,
    /// Print one JSON document (or, for `tail`, one per line) instead of tables
    #[arg(long, global = true)]
    pub(super) json: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// List streams in name order, with their version and last write
    Streams {
        /// Only streams of this category (the part of the name before the first `-`)
        #[arg(long)]
        category: Option<String>,
        /// Only streams whose name sorts after this one (the last of the previous page)
        #[arg(long, value_name = "STREAM")]
        after: Option<String>,
        /// At most this many streams
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show a stream's events, decoded to their current version where this build knows them
    Events {
        /// The stream, e.g. `cart-42`
        stream: String,
        /// From this version on
        #[arg(long, value_name = "VERSION")]
        from: Option<u64>,
        /// The stream as it was at this version: its events up to it
        #[arg(long, value_name = "VERSION")]
        at_version: Option<u64>,
        /// The stream as it was at this time (RFC 3339): the events recorded up to it
        #[arg(long, value_name = "TIME")]
        at_time: Option<Timestamp>,
        /// At most this many events
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one event whole: payload, decoded payload and metadata
    Show {
        /// The event's id
        event_id: Uuid,
    },
    /// Follow the global log live, printing each event as it is committed
    Tail {
        #[command(flatten)]
        start: TailStart,
        /// Only events of this type (repeat for more)
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
        /// Only events of streams of this category (repeat for more)
        #[arg(long = "category", value_name = "CATEGORY")]
        categories: Vec<String>,
        /// Stop after this many events
        #[arg(long)]
        limit: Option<u64>,
        /// Stop once no event came for this many seconds
        #[arg(long, value_name = "SECONDS")]
        idle: Option<f64>,
    },
    /// The newest position of the log and when its event was recorded
    Head,
    /// Where each consumer's checkpoint is, and how far behind the head
    Lag,
    /// Events reactors parked, with their errors
    Parked {
        /// Only this reactor's
        #[arg(long)]
        reactor: Option<String>,
    },
    /// Try a reactor's parked events again, unparking those that succeed
    Replay {
        /// The reactor
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        reactor: Option<String>,
        /// Every registered reactor with parked events
        #[arg(long)]
        all: bool,
    },
    /// Build a read model beside the live one, showing progress
    Rebuild {
        /// The live read model's name
        read_model: String,
        /// Switch the rebuilt read model in once it is caught up
        #[arg(long)]
        switch: bool,
    },
    /// Switch a rebuilt read model in for the live one
    Switch {
        /// The live read model's name
        read_model: String,
    },
    /// Check that this build decodes every (event type, schema version) stored
    Check {
        /// A stored type that is known not to be read any more (repeat for more)
        #[arg(long = "ignore", value_name = "TYPE")]
        ignore: Vec<String>,
    },
    /// Delete a stream: archive its events behind a `$StreamDeleted` marker (it may start
    /// again), or with `--tombstone` remove them for good and refuse every later append
    Delete {
        /// The stream, e.g. `cart-42`
        stream: String,
        /// Remove the events for good (not archived) and refuse every later append
        #[arg(long)]
        tombstone: bool,
        /// Delete only if the stream is at this version
        #[arg(long, value_name = "VERSION")]
        expected_version: Option<u64>,
        /// Confirm: without it, nothing is deleted
        #[arg(long)]
        yes: bool,
    },
    /// Move a stream's events before a version to the archive
    Truncate {
        /// The stream, e.g. `cart-42`
        stream: String,
        /// The first version to keep (at most the stream's version: its last event stays)
        #[arg(long, value_name = "VERSION")]
        before: u64,
        /// Confirm: without it, nothing is moved
        #[arg(long)]
        yes: bool,
    },
    /// Show a stream's archived events (soft-deleted or truncated); `--json` prints one JSON
    /// document per line, to export them
    Archive {
        /// The stream, e.g. `cart-42`
        stream: String,
    },
    /// Apply the schema migrations this build knows
    Migrate,
    /// Print the DDL that creates the schema of this build
    Schema {
        /// The backend [default: the store URL's]
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// The PostgreSQL schema's name [default: the URL's, else `eventsrc`]
        #[arg(long, value_name = "NAME")]
        schema: Option<String>,
    },
    /// Serve a read-only event browser (HTML pages) on 127.0.0.1 until Ctrl-C
    Browse {
        /// The port to listen on; 0 lets the system choose a free one (printed)
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Stop after this many seconds instead of waiting for Ctrl-C
        #[arg(long, value_name = "SECONDS")]
        open_for: Option<f64>,
    },
}

/// Where `tail` starts.
#[derive(Debug, ClapArgs)]
#[group(multiple = false)]
pub(super) struct TailStart {
    /// After this position (`commit:sequence`) [default: the head, so only new events]
    #[arg(long, value_name = "POSITION")]
    pub(super) after: Option<GlobalPosition>,
    /// From the first event of the log
    #[arg(long)]
    pub(super) from_start: bool,
}

/// A backend, for `schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Backend {
    /// SQLite
    Sqlite,
    /// PostgreSQL
    Postgres,
}
