//! What each command does.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::args::{Args, Command, Global, TailStart};
use super::output::{
    CliError, event_json, event_line, parked_json, payload_cell, print_json, print_table, table,
};
use super::{Cli, registered::Watcher};
use crate::store::{
    CheckpointSummary, Deletion, Inspect, Lifecycle, ListStreams, ReadAll, ReadStream,
};
use crate::subscription::{Lag, Start};
use crate::{
    EventId, EventStore, ExpectedVersion, GlobalPosition, Store, StoreUrl, StreamId, StreamVersion,
    Subscription, Tenant, Tenants, Timestamp, registry,
};

/// Runs the parsed command; `Ok` with the exit code it asks for.
pub(super) async fn run(
    cli: &Cli,
    args: Args,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let global = &args.global;
    match args.command {
        Command::Streams {
            category,
            after,
            limit,
        } => {
            let mut list = ListStreams::new().limit(limit);
            list.category = category;
            list.after = after;
            streams(&open(global).await?, list, global.json, out).await
        }
        Command::Events {
            stream,
            from,
            at_version,
            at_time,
            limit,
        } => {
            let stream = parse_stream(&stream)?;
            let read = EventsRead {
                from,
                at_version,
                at_time,
                limit,
            };
            events(&open(global).await?, &stream, read, global.json, out).await
        }
        Command::Show { event_id } => {
            show(&open(global).await?, EventId(event_id), global.json, out).await
        }
        Command::Tail {
            start,
            types,
            categories,
            limit,
            idle,
        } => {
            let tail = TailRead {
                start,
                types,
                categories,
                limit,
                idle,
            };
            self::tail(open(global).await?, tail, global.json, out).await
        }
        Command::Head => head(&open(global).await?, global.json, out).await,
        Command::Lag => lag(&open(global).await?, global.json, out).await,
        Command::Parked { reactor } => {
            parked(&open(global).await?, reactor.as_deref(), global.json, out).await
        }
        Command::Replay { reactor, all } => {
            replay(
                cli,
                open(global).await?,
                reactor.as_deref(),
                all,
                global.json,
                out,
            )
            .await
        }
        Command::Rebuild { read_model, switch } => {
            rebuild(
                cli,
                open(global).await?,
                &read_model,
                switch,
                global.json,
                out,
            )
            .await
        }
        Command::Switch { read_model } => {
            let store = open(global).await?;
            self::switch(cli, &store, &read_model, global.json, out).await
        }
        Command::Check { ignore } => check(&open(global).await?, &ignore, global.json, out).await,
        Command::Delete {
            stream,
            tombstone,
            expected_version,
            yes,
        } => {
            let stream = parse_stream(&stream)?;
            let deletion = if tombstone {
                Deletion::Tombstone
            } else {
                Deletion::Soft
            };
            let expected = expected_version.map_or(ExpectedVersion::Any, |v| {
                ExpectedVersion::at(StreamVersion(v))
            });
            confirmed(yes, &format!("deleting `{stream}`"))?;
            let store = open(global).await?;
            delete(&store, &stream, expected, deletion, global.json, out).await
        }
        Command::Truncate {
            stream,
            before,
            yes,
        } => {
            let stream = parse_stream(&stream)?;
            confirmed(yes, &format!("truncating `{stream}`"))?;
            let store = open(global).await?;
            truncate(&store, &stream, StreamVersion(before), global.json, out).await
        }
        Command::Archive { stream } => {
            let stream = parse_stream(&stream)?;
            archive(&open(global).await?, &stream, global.json, out).await
        }
        Command::Migrate => super::schema::migrate(&store_url(global)?, global.json, out).await,
        Command::Schema { backend, schema } => {
            // The DDL needs no store: `--backend` alone will do.
            let url = match (&global.store, std::env::var("EVENTSRC_STORE")) {
                (None, Err(_)) => None,
                _ => Some(store_url(global)?),
            };
            super::schema::schema(url.as_ref(), backend, schema.as_deref(), out)
        }
        Command::Browse { port, open_for } => {
            browse(open(global).await?, port, open_for, global.json, out).await
        }
    }
}

/// A stream named on the command line.
fn parse_stream(stream: &str) -> Result<StreamId, CliError> {
    stream
        .parse()
        .map_err(|e| CliError::Invalid(format!("{e}")))
}

/// Refuses a destructive command run without `--yes`, saying what it would have done.
fn confirmed(yes: bool, what: &str) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    Err(CliError::Invalid(format!(
        "{what} changes the store: add --yes to go ahead"
    )))
}

/// The store URL's text: `--store`, else `EVENTSRC_STORE`.
fn store_text(global: &Global) -> Result<String, CliError> {
    match &global.store {
        Some(url) => Ok(url.clone()),
        None => std::env::var("EVENTSRC_STORE").map_err(|_| CliError::NoStore),
    }
}

/// The store URL: `--store`, else `EVENTSRC_STORE`.
fn store_url(global: &Global) -> Result<StoreUrl, CliError> {
    Ok(store_text(global)?.parse()?)
}

/// Opens the store for looking at it: a SQLite file must exist, and nothing is migrated.
async fn open(global: &Global) -> Result<Store, CliError> {
    let url = store_url(global)?;
    #[cfg(feature = "sqlite")]
    if let StoreUrl::SqliteFile(path) = &url
        && !path.exists()
    {
        return Err(CliError::Missing(path.display().to_string()));
    }
    let store = super::schema::without_migrating(url, &store_text(global)?)?
        .open()
        .await?;
    Ok(match &global.tenant {
        Some(tenant) => store.with_tenant(Tenant::new(tenant)),
        None => store,
    })
}

async fn streams(
    store: &Store,
    list: ListStreams,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let limit = list.limit;
    let streams = store.streams(list).await?;
    // A full page may have a next one: say where it starts.
    let next = (streams.len() == limit && limit > 0)
        .then(|| streams.last().map(|s| s.stream.to_string()))
        .flatten();
    if json {
        let rows: Vec<Value> = streams
            .iter()
            .map(|s| {
                json!({
                    "stream": s.stream.as_str(),
                    "category": s.stream.category(),
                    "version": s.version.get(),
                    "last_recorded_at": s.last_recorded_at.to_string(),
                })
            })
            .collect();
        print_json(out, &json!({ "streams": rows, "next_after": next }))?;
    } else {
        let mut rows = table(["stream", "category", "version", "last write"]);
        for s in &streams {
            rows.add_row([
                s.stream.to_string(),
                s.stream.category().to_owned(),
                s.version.get().to_string(),
                s.last_recorded_at.to_string(),
            ]);
        }
        print_table(out, &rows, "no streams")?;
        if let Some(next) = next {
            writeln!(out, "more: --after {next}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Which of a stream's events `events` shows.
struct EventsRead {
    from: Option<u64>,
    at_version: Option<u64>,
    at_time: Option<Timestamp>,
    limit: usize,
}

async fn events(
    store: &Store,
    stream: &StreamId,
    read: EventsRead,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let from = read.from.unwrap_or(1).max(1);
    let mut limit = read.limit;
    if let Some(at) = read.at_version {
        // Only the versions up to `at` can be shown.
        let up_to = usize::try_from(at.saturating_sub(from).saturating_add(1)).unwrap_or(limit);
        limit = if at < from { 0 } else { limit.min(up_to) };
    }
    let mut events = if limit == 0 {
        Vec::new()
    } else {
        let page = ReadStream::forward().from(StreamVersion(from)).limit(limit);
        store.read_stream(stream, page).await?
    };
    if let Some(at) = read.at_time {
        events.retain(|e| e.recorded_at <= at);
    }
    if json {
        let rows: Vec<Value> = events.iter().map(event_json).collect();
        print_json(out, &json!({ "stream": stream.as_str(), "events": rows }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows = stream_rows(&events);
    print_table(out, &rows, &format!("no events in `{stream}` here"))?;
    if events.len() == limit
        && limit > 0
        && read.at_time.is_none()
        && let Some(last) = events.last()
    {
        writeln!(out, "more: --from {}", last.stream_version.get() + 1)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(
    store: &Store,
    id: EventId,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let found = store.read_events(&[id]).await?;
    let Some(event) = found.first() else {
        return Err(CliError::NotFound(format!(
            "no event with id {id} in tenant `{}`",
            store.tenant()
        )));
    };
    let shown = event_json(event);
    if json {
        print_json(out, &shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = table(["field", "value"]);
    for field in [
        "event_id",
        "stream",
        "version",
        "position",
        "tenant",
        "event_type",
        "schema_version",
        "recorded_at",
    ] {
        let value = match &shown[field] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        rows.add_row([field.to_owned(), value]);
    }
    print_table(out, &rows, "")?;
    for field in ["payload", "decoded", "metadata"] {
        writeln!(out, "{field}:")?;
        match (&shown[field], &shown["decode_error"]) {
            (Value::Null, Value::String(error)) if field == "decoded" => {
                writeln!(out, "  (not decoded: {error})")?;
            }
            (value, _) => writeln!(out, "{}", serde_json::to_string_pretty(value)?)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `tail` follows and when it stops.
struct TailRead {
    start: TailStart,
    types: Vec<String>,
    categories: Vec<String>,
    limit: Option<u64>,
    idle: Option<f64>,
}

async fn tail(
    store: Store,
    tail: TailRead,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let start = match (tail.start.after, tail.start.from_start) {
        (Some(after), _) => Start::After(after),
        (None, true) => Start::Beginning,
        (None, false) => Start::End,
    };
    let idle = match tail.idle {
        Some(seconds) => Some(Duration::try_from_secs_f64(seconds).map_err(|_| {
            CliError::Invalid(format!(
                "--idle {seconds}: give a number of seconds, 0 or more"
            ))
        })?),
        None => None,
    };
    let mut subscription = Subscription::new(store, start);
    if !tail.types.is_empty() {
        subscription = subscription.event_types(tail.types);
    }
    if !tail.categories.is_empty() {
        subscription = subscription.categories(tail.categories);
    }
    let mut printed = 0u64;
    loop {
        let next = subscription.next_batch();
        let batch = match idle {
            Some(idle) => match tokio::time::timeout(idle, next).await {
                Ok(batch) => batch?,
                Err(_) => return Ok(ExitCode::SUCCESS),
            },
            None => next.await?,
        };
        for event in &batch.events {
            if tail.limit.is_some_and(|limit| printed >= limit) {
                return Ok(ExitCode::SUCCESS);
            }
            if json {
                serde_json::to_writer(&mut *out, &event_json(event))?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", event_line(event))?;
            }
            printed += 1;
        }
        out.flush()?;
        if tail.limit.is_some_and(|limit| printed >= limit) {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

async fn head(
    store: &Store,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let head = store.head_position().await?;
    if json {
        print_json(out, &json!({ "head": head.to_string() }))?;
    } else if head == GlobalPosition::START {
        writeln!(out, "the log is empty")?;
    } else {
        writeln!(out, "head: {head}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A consumer's checkpoint, and how far behind the head it is (`lag` and the browser's
/// runners page).
pub(super) struct Behind {
    /// The checkpoint.
    pub(super) checkpoint: CheckpointSummary,
    /// Events between the checkpoint and the head (see [`Lag::events`]).
    pub(super) events: u64,
    /// How long ago the first event it has not handled was recorded; `None` when caught up.
    pub(super) seconds: Option<f64>,
}

/// Every consumer's checkpoint and its lag behind `head`.
pub(super) async fn behind(
    store: &Store,
    head: GlobalPosition,
) -> Result<Vec<Behind>, crate::StoreError> {
    let now = Timestamp::now();
    let mut rows = Vec::new();
    for checkpoint in store.checkpoints().await? {
        let position = checkpoint.position.unwrap_or(GlobalPosition::START);
        let events = Lag::between(position, head).events;
        let seconds = if events > 0 {
            let next = store.read_all(ReadAll::after(position).limit(1)).await?;
            next.first().map(|e| now.since(e.recorded_at).as_secs_f64())
        } else {
            None
        };
        rows.push(Behind {
            checkpoint,
            events,
            seconds,
        });
    }
    Ok(rows)
}

async fn lag(
    store: &Store,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let head = store.head_position().await?;
    let rows = behind(store, head).await?;
    if json {
        let consumers: Vec<Value> = rows
            .iter()
            .map(|row| {
                json!({
                    "consumer": row.checkpoint.consumer,
                    "checkpoint": row.checkpoint.position.map(|p| p.to_string()),
                    "head": head.to_string(),
                    "events_behind": row.events,
                    "seconds_behind": row.seconds.unwrap_or(0.0),
                })
            })
            .collect();
        print_json(
            out,
            &json!({ "head": head.to_string(), "consumers": consumers }),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut shown = table([
        "consumer",
        "checkpoint",
        "head",
        "events behind",
        "time behind",
    ]);
    for row in &rows {
        shown.add_row([
            row.checkpoint.consumer.clone(),
            row.checkpoint
                .position
                .map_or_else(|| "none".to_owned(), |p| p.to_string()),
            head.to_string(),
            row.events.to_string(),
            row.seconds
                .map_or_else(|| "0s".to_owned(), |s| format!("{s:.1}s")),
        ]);
    }
    print_table(out, &shown, "no consumer has a checkpoint")?;
    Ok(ExitCode::SUCCESS)
}

async fn parked(
    store: &Store,
    reactor: Option<&str>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let mut all = store.all_parked().await?;
    if let Some(reactor) = reactor {
        all.retain(|p| p.reactor == reactor);
    }
    if json {
        let rows: Vec<Value> = all.iter().map(parked_json).collect();
        print_json(out, &json!({ "parked": rows }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = table([
        "reactor",
        "position",
        "event",
        "type",
        "attempts",
        "parked at",
        "error",
    ]);
    for p in &all {
        rows.add_row([
            p.reactor.clone(),
            p.event.global_position.to_string(),
            format!("{}@{}", p.event.stream, p.event.stream_version.get()),
            p.event.event_type.to_string(),
            p.attempts.to_string(),
            p.parked_at.to_string(),
            p.error.replace('\n', " "),
        ]);
    }
    print_table(out, &rows, "nothing is parked")?;
    Ok(ExitCode::SUCCESS)
}

async fn replay(
    cli: &Cli,
    store: Store,
    reactor: Option<&str>,
    all: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let registered: Vec<&str> = cli.replays.iter().map(|r| r.name.as_str()).collect();
    let chosen: Vec<_> = if all {
        cli.replays.iter().collect()
    } else {
        let name = reactor.unwrap_or_default();
        let found = cli.replays.iter().find(|r| r.name == name).ok_or_else(|| {
            CliError::NotRegistered(format!(
                "no reactor or relay `{name}` is registered in this binary ({}): replay \
                 performs the reactor's effects (or publishes the relay's events), so it runs \
                 from the application's own binary, which registers it with \
                 `eventsrc::cli::Cli::reactions` (or `Cli::relay`)",
                if registered.is_empty() {
                    "none is".to_owned()
                } else {
                    format!("registered: {}", registered.join(", "))
                }
            ))
        })?;
        vec![found]
    };
    let mut results = Vec::new();
    for replay in chosen {
        let replayed = replay.replay(store.clone()).await?;
        results.push((replay.name.as_str(), replayed));
    }
    let failed = results.iter().any(|(_, r)| !r.failed.is_empty());
    if json {
        let rows: Vec<Value> = results
            .iter()
            .map(|(name, r)| {
                json!({
                    "reactor": name,
                    "succeeded": r.succeeded.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "failed": r.failed.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(out, &json!({ "replayed": rows }))?;
    } else {
        for (name, r) in &results {
            writeln!(
                out,
                "{name}: {} replayed and unparked, {} failed again and stay parked",
                r.succeeded.len(),
                r.failed.len()
            )?;
            for id in &r.failed {
                writeln!(out, "  still parked: {id}")?;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The rebuild registered for the live read model `live`.
fn registered_rebuild<'c>(
    cli: &'c Cli,
    live: &str,
) -> Result<&'c super::registered::Rebuild, CliError> {
    cli.rebuilds.iter().find(|r| r.live == live).ok_or_else(|| {
        let names: Vec<&str> = cli.rebuilds.iter().map(|r| r.live.as_str()).collect();
        CliError::NotRegistered(format!(
            "no rebuild of `{live}` is registered in this binary ({}): a rebuild runs the read \
             model's code, so it runs from the application's own binary, which registers it \
             with `eventsrc::cli::Cli::rebuild`",
            if names.is_empty() {
                "none is".to_owned()
            } else {
                format!("registered: {}", names.join(", "))
            }
        ))
    })
}

async fn rebuild(
    cli: &Cli,
    store: Store,
    live: &str,
    then_switch: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let rebuild = registered_rebuild(cli, live)?;
    let rebuilt = rebuild.rebuilt(store.clone());
    let head = store.head_position().await?;
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(head.sequence)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} events, {per_sec}, ETA {eta}",
        )
        .map_err(|e| CliError::Invalid(e.to_string()))?,
    );
    bar.set_message(format!("rebuilding {rebuilt}"));
    let watched = bar.clone();
    let watch: Watcher = Box::new(move |progress| {
        if let Some(position) = progress.position {
            watched.set_position(position.sequence.min(head.sequence));
        }
    });
    let progress = rebuild.catch_up(store.clone(), watch).await?;
    bar.finish_and_clear();
    let reached = progress.position.unwrap_or(GlobalPosition::START);
    if json && !then_switch {
        print_json(
            out,
            &json!({
                "read_model": live,
                "rebuilt": rebuilt,
                "position": reached.to_string(),
                "handled": progress.handled,
            }),
        )?;
    } else if !json {
        writeln!(
            out,
            "rebuilt `{rebuilt}` beside `{live}`: {} events handled, at {reached}",
            progress.handled
        )?;
    }
    if then_switch {
        return switch(cli, &store, live, json, out).await;
    }
    if !json {
        writeln!(out, "switch it in with: switch {live}")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn switch(
    cli: &Cli,
    store: &Store,
    live: &str,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let rebuild = registered_rebuild(cli, live)?;
    let rebuilt = rebuild.rebuilt(store.clone());
    let position: GlobalPosition = match store {
        #[cfg(feature = "sqlite")]
        Store::Sqlite(sqlite) => {
            crate::SwitchReadModel::switch_read_model(sqlite, &rebuilt, live, &rebuild.swap).await?
        }
        #[cfg(feature = "postgres")]
        Store::Postgres(pg) => {
            crate::SwitchReadModel::switch_read_model(pg, &rebuilt, live, &rebuild.swap).await?
        }
        #[allow(unreachable_patterns)]
        _ => {
            return Err(CliError::Invalid(format!(
                "{store} keeps no tables to switch: `switch` is for SQLite and PostgreSQL"
            )));
        }
    };
    if json {
        print_json(
            out,
            &json!({ "read_model": live, "switched_from": rebuilt, "position": position.to_string() }),
        )?;
    } else {
        writeln!(
            out,
            "switched `{rebuilt}` in as `{live}`, at {position}; start `{live}`'s runner with the new code"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One stored (type, version) and what this build makes of it.
fn verdict(event_type: &str, version: u32, ignore: &[String]) -> Result<&'static str, String> {
    if ignore.iter().any(|i| i == event_type) {
        return Ok("ignored");
    }
    let Some(registration) = registry::find(event_type) else {
        return Err(format!(
            "unknown: no event type of this build is named or aliased `{event_type}`"
        ));
    };
    if version > registration.version {
        return Err(format!(
            "from the future: {} ({}) reads versions up to {}",
            registration.name, registration.rust_type, registration.version
        ));
    }
    if version < registration.oldest_version {
        return Err(format!(
            "no upcast path: {} ({}) reads versions {} to {}",
            registration.name,
            registration.rust_type,
            registration.oldest_version,
            registration.version
        ));
    }
    Ok(if version < registration.version {
        "ok (upcast)"
    } else {
        "ok"
    })
}

async fn check(
    store: &Store,
    ignore: &[String],
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let stored = store.event_types().await?;
    let registry_problems: Vec<String> = match registry::check() {
        Ok(()) => Vec::new(),
        Err(error) => error.0.iter().map(ToString::to_string).collect(),
    };
    let verdicts: Vec<_> = stored
        .iter()
        .map(|t| (t, verdict(&t.event_type, t.schema_version, ignore)))
        .collect();
    let failed = !registry_problems.is_empty() || verdicts.iter().any(|(_, v)| v.is_err());
    let linked = registry::events().len();
    if json {
        let types: Vec<Value> = verdicts
            .iter()
            .map(|(t, v)| {
                json!({
                    "event_type": t.event_type,
                    "schema_version": t.schema_version,
                    "events": t.events,
                    "ok": v.is_ok(),
                    "status": match v { Ok(s) => (*s).to_owned(), Err(e) => e.clone() },
                })
            })
            .collect();
        print_json(
            out,
            &json!({
                "ok": !failed,
                "registered_event_types": linked,
                "stored": types,
                "registry_problems": registry_problems,
            }),
        )?;
    } else {
        let mut rows = table(["event type", "version", "events", "status"]);
        for (t, v) in &verdicts {
            rows.add_row([
                t.event_type.clone(),
                t.schema_version.to_string(),
                t.events.to_string(),
                match v {
                    Ok(status) => (*status).to_owned(),
                    Err(problem) => format!("FAIL {problem}"),
                },
            ]);
        }
        print_table(out, &rows, "no events are stored")?;
        for problem in &registry_problems {
            writeln!(out, "FAIL registry: {problem}")?;
        }
        if linked == 0 && !stored.is_empty() {
            writeln!(
                out,
                "this binary has no event types linked in: run `check` from the application's \
                 own binary (`eventsrc::cli::Cli`)"
            )?;
        }
        let problems =
            verdicts.iter().filter(|(_, v)| v.is_err()).count() + registry_problems.len();
        if failed {
            writeln!(out, "check failed: {problems} problem(s)")?;
        } else {
            writeln!(
                out,
                "check passed: every stored type and version decodes in this build"
            )?;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Serves the event browser on 127.0.0.1:`port` until Ctrl-C, or for `open_for` seconds.
async fn browse(
    store: Store,
    port: u16,
    open_for: Option<f64>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let open_for = match open_for {
        Some(seconds) => Some(Duration::try_from_secs_f64(seconds).map_err(|_| {
            CliError::Invalid(format!(
                "--open-for {seconds}: give a number of seconds, 0 or more"
            ))
        })?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).await?;
    let url = format!("http://{}/", listener.local_addr()?);
    if json {
        print_json(out, &json!({ "store": store.to_string(), "url": url }))?;
    } else {
        writeln!(out, "browsing {store} at {url}")?;
    }
    out.flush()?;
    let shutdown = async move {
        let ctrl_c = async {
            // Without a signal handler, serve until the time is up (or for ever).
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        match open_for {
            Some(open_for) => {
                let _ = tokio::time::timeout(open_for, ctrl_c).await;
            }
            None => ctrl_c.await,
        }
    };
    super::browse::serve_until(store, listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn delete(
    store: &Store,
    stream: &StreamId,
    expected: ExpectedVersion,
    deletion: Deletion,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let deleted = store.delete_stream(stream, expected, deletion).await?;
    let how = match deletion {
        Deletion::Soft => "soft",
        Deletion::Tombstone => "tombstone",
    };
    if json {
        print_json(
            out,
            &json!({
                "stream": stream.as_str(),
                "deletion": how,
                "marker_version": deleted.version.get(),
                "marker_position": deleted.position.to_string(),
                "removed": deleted.removed,
                "already_deleted": deleted.already_deleted,
            }),
        )?;
    } else if deleted.already_deleted {
        writeln!(
            out,
            "`{stream}` was already deleted ({how}); nothing changed"
        )?;
    } else {
        let whereto = match deletion {
            Deletion::Soft => "moved to the archive",
            Deletion::Tombstone => "removed for good",
        };
        writeln!(
            out,
            "deleted `{stream}` ({how}): {} event(s) {whereto}; marker at version {}, position {}",
            deleted.removed,
            deleted.version.get(),
            deleted.position,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn truncate(
    store: &Store,
    stream: &StreamId,
    before: StreamVersion,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let truncated = store.truncate_before(stream, before).await?;
    if json {
        print_json(
            out,
            &json!({
                "stream": stream.as_str(),
                "archived": truncated.archived,
                "kept_from": truncated.kept_from.get(),
            }),
        )?;
    } else {
        writeln!(
            out,
            "truncated `{stream}`: {} event(s) moved to the archive; the stream keeps version {} on",
            truncated.archived,
            truncated.kept_from.get(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn archive(
    store: &Store,
    stream: &StreamId,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let events = store.read_archive(stream).await?;
    if json {
        // JSON lines: one event per line, to export.
        for event in &events {
            writeln!(out, "{}", event_json(event))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows = stream_rows(&events);
    print_table(out, &rows, &format!("nothing of `{stream}` is archived"))?;
    Ok(ExitCode::SUCCESS)
}

/// A stream's events as a table: version, position, time, type and payload.
fn stream_rows(events: &[crate::RecordedEvent]) -> comfy_table::Table {
    let mut rows = table(["version", "position", "recorded at", "type", "payload"]);
    for e in events {
        rows.add_row([
            e.stream_version.get().to_string(),
            e.global_position.to_string(),
            e.recorded_at.to_string(),
            format!("{}@{}", e.event_type, e.schema_version),
            payload_cell(e),
        ]);
    }
    rows
}
