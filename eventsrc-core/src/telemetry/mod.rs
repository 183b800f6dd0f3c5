//! What eventsrc reports about itself: metrics through the [`metrics`] facade, and spans
//! through [`tracing`].
//!
//! # Metrics
//!
//! eventsrc records every metric below through the `metrics` crate's macros and installs no
//! recorder: the application picks one (`metrics-exporter-prometheus`, StatsD, OpenTelemetry,
//! ...) and installs it once at startup. Without a recorder a metric costs an atomic load.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `eventsrc_appends_total` | counter | `backend`, `outcome` | appends to a stream (or to several in one decision), by outcome: `committed`, `already_stored` (an idempotent retry), `conflict` (wrong expected version), `duplicate` (an event id stored with other content), `error` |
//! | `eventsrc_appended_events_total` | counter | `backend` | events committed by appends |
//! | `eventsrc_append_seconds` | histogram | `backend` | time of one append, whatever its outcome |
//! | `eventsrc_commands_total` | counter | `command`, `outcome` | commands executed (`execute`, `send`, `decide`), by outcome: `committed`, `no_op` (decided no events), `replayed` (an idempotency key's first answer), `invalid`, `refused` (the aggregate said no), `stale` (expected version not met), `conflict` (retries ran out, or incompatible), `key_reused`, `error` |
//! | `eventsrc_command_retries_total` | counter | `command` | decisions taken again after a concurrent writer won |
//! | `eventsrc_command_seconds` | histogram | `command` | time of a command, from validation to its answer |
//! | `eventsrc_loads_total` | counter | `aggregate`, `snapshot` | aggregates read from the store (by a load or a command), `snapshot` = `hit` or `miss` (`miss` also when the aggregate takes no snapshots) |
//! | `eventsrc_load_events_total` | counter | `aggregate` | events folded by those reads |
//! | `eventsrc_cache_total` | counter | `aggregate`, `outcome` | commands on a repository with an [`AggregateCache`](crate::AggregateCache): `hit` (state taken from the cache) or `miss` |
//! | `eventsrc_runner_batches_total` | counter | `consumer` | batches handled by a runner |
//! | `eventsrc_runner_events_total` | counter | `consumer` | events in those batches |
//! | `eventsrc_runner_batch_seconds` | histogram | `consumer` | time the consumer took for a batch |
//! | `eventsrc_runner_lag_events` | gauge | `consumer` | events between the checkpoint and the head, read at most once a second while behind; 0 when caught up |
//! | `eventsrc_runner_lag_seconds` | gauge | `consumer` | age of the newest event handled while behind; 0 when caught up |
//! | `eventsrc_reactor_parked_total` | counter | `consumer` | events a reactor or a broker relay parked after its retries |
//! | `eventsrc_reactor_unparked_total` | counter | `consumer` | parked events that succeeded on a replay, of a reactor or relay (parked now = parked − unparked) |
//! | `eventsrc_runner_leadership_total` | counter | `consumer`, `change` | leases taken (`acquired`) and given up (`lost`, `fenced`, `store_failed`, `unavailable`) by [`Runner::run_as_leader`](crate::Runner::run_as_leader) |
//!
//! Label values are names chosen in code (command, aggregate and consumer names, the
//! backend), never stream ids or tenants, so a metric has few series.
//!
//! # Traces
//!
//! eventsrc opens these spans through `tracing`, with stable names and fields; install a
//! subscriber (`tracing-subscriber`'s `fmt` with `RUST_LOG=eventsrc=debug`, or an OpenTelemetry
//! layer) to see them. Fields in *italics* are recorded when the work ends.
//!
//! | span | level | fields | around |
//! |---|---|---|---|
//! | `eventsrc.command` | info | `command`, `stream` (the first, across streams), `tenant`, `command_id`, `correlation_id`, `causation_id`, `expected_version`, `idempotency_key`, *`outcome`* (as in `eventsrc_commands_total`), *`attempts`*, *`stream_version`*, *`global_position`* | a command: `execute`, `send`, `decide` |
//! | `eventsrc.load` | debug | `aggregate`, `stream`, `tenant`, *`version`*, *`events`* (folded), *`snapshot`* (whether one was used) | a read of an aggregate from the store, by a load or inside a command |
//! | `eventsrc.append` | debug | `stream`, `tenant`, `expected`, `events`, `event_type` (the first event's); across streams `streams` | a command's append |
//! | `eventsrc.batch` | debug | `consumer`, `tenant`, `events`, `after`, `through` | a runner handing a batch to its consumer |
//! | `eventsrc.react` | debug | `consumer`, `stream`, `tenant`, `event_type`, `event_id`, `global_position`, `correlation_id`, `causation_id` | a reactor deciding and performing the effects of one event |
//!
//! A command run from a reactor's effect, with metadata
//! [`caused_by`](crate::Metadata::caused_by) the event, opens its `eventsrc.command` span inside
//! that event's `eventsrc.react` span, with the same `correlation_id`: a trace follows a
//! request's command through every reactor it sets off.

pub(crate) mod record;

/// Names of the spans, as in the module's table of traces.
pub mod spans {
    /// A command.
    pub const COMMAND: &str = "eventsrc.command";
    /// A read of an aggregate from the store.
    pub const LOAD: &str = "eventsrc.load";
    /// A command's append.
    pub const APPEND: &str = "eventsrc.append";
    /// A runner's batch.
    pub const BATCH: &str = "eventsrc.batch";
    /// A reactor's event.
    pub const REACT: &str = "eventsrc.react";
}

/// Names of the metrics, as in the module's table.
pub mod names {
    /// Appends, by backend and outcome.
    pub const APPENDS: &str = "eventsrc_appends_total";
    /// Events committed by appends.
    pub const APPENDED_EVENTS: &str = "eventsrc_appended_events_total";
    /// Time of one append.
    pub const APPEND_SECONDS: &str = "eventsrc_append_seconds";
    /// Commands, by command and outcome.
    pub const COMMANDS: &str = "eventsrc_commands_total";
    /// Decisions taken again after a conflict.
    pub const COMMAND_RETRIES: &str = "eventsrc_command_retries_total";
    /// Time of a command.
    pub const COMMAND_SECONDS: &str = "eventsrc_command_seconds";
    /// Aggregates read from the store, with or without a snapshot.
    pub const LOADS: &str = "eventsrc_loads_total";
    /// Events folded by reads of aggregates.
    pub const LOAD_EVENTS: &str = "eventsrc_load_events_total";
    /// Aggregate cache hits and misses.
    pub const CACHE: &str = "eventsrc_cache_total";
    /// Batches handled by runners.
    pub const RUNNER_BATCHES: &str = "eventsrc_runner_batches_total";
    /// Events handled by runners.
    pub const RUNNER_EVENTS: &str = "eventsrc_runner_events_total";
    /// Time a consumer took for a batch.
    pub const RUNNER_BATCH_SECONDS: &str = "eventsrc_runner_batch_seconds";
    /// Events between a runner's checkpoint and the head.
    pub const RUNNER_LAG_EVENTS: &str = "eventsrc_runner_lag_events";
    /// Age of the newest event a runner handled while behind.
    pub const RUNNER_LAG_SECONDS: &str = "eventsrc_runner_lag_seconds";
    /// Events parked by reactors.
    pub const REACTOR_PARKED: &str = "eventsrc_reactor_parked_total";
    /// Parked events that succeeded on a replay.
    pub const REACTOR_UNPARKED: &str = "eventsrc_reactor_unparked_total";
    /// Leases taken and given up by runners run as leader.
    pub const RUNNER_LEADERSHIP: &str = "eventsrc_runner_leadership_total";

    /// Every name, in the table's order.
    pub const ALL: [&str; 17] = [
        APPENDS,
        APPENDED_EVENTS,
        APPEND_SECONDS,
        COMMANDS,
        COMMAND_RETRIES,
        COMMAND_SECONDS,
        LOADS,
        LOAD_EVENTS,
        CACHE,
        RUNNER_BATCHES,
        RUNNER_EVENTS,
        RUNNER_BATCH_SECONDS,
        RUNNER_LAG_EVENTS,
        RUNNER_LAG_SECONDS,
        REACTOR_PARKED,
        REACTOR_UNPARKED,
        RUNNER_LEADERSHIP,
    ];
}
