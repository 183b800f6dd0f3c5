//! A sales-leads CRM's story: Stefan Ivanov, lead 1410, from first import to conversion, told
//! through `eventsrc::Repository`; then the full event history, the lead now and as it was earlier,
//! and two commands racing a status change on lead 1406 (`eventsrc_examples::leads::story`).
//!
//! The events go to a SQLite file, `eventsrc-demo.db` in the current directory (created on the
//! first run; `*.db` is git-ignored). Run the demo again and it continues that history: it
//! notices the leads exist and takes lead 1406 one follow-up call further, dated after the
//! last stored event, then prints the history across runs. Delete the file to start over.
//!
//! Another store: `--store <url>`, or the environment variable `EVENTSRC_STORE` (the flag
//! wins): `memory:` (nothing kept), `sqlite://path/to/file.db`, `sqlite:///absolute/path.db`,
//! `sqlite::memory:`, or PostgreSQL: `postgres://user:password@host:5432/database` keeps the
//! events in the schema `eventsrc` of that database (created if missing), and
//! `...database?schema=name` in the schema `name`; `postgresql://` works too. The demo continues
//! its history there the same way; drop the schema (`DROP SCHEMA eventsrc CASCADE`) to start
//! over. PostgreSQL stamps `recorded_at` with the server's clock, not the story's, so there the
//! history shows today's dates, the later runs date their follow-ups from today, and
//! `load_at_time(2016-11-20)` finds the lead not yet created. The password is never printed.
//!
//! Then the read models (`eventsrc_examples::leads::read_models`): LeadSearch, every
//! e-mail and phone a lead ever had, and the status-change log with its transitions per pair of
//! statuses. Their runners follow the log live while the story is told; the demo waits until
//! they have seen its last append (read-your-writes) and prints what they answer, Stefan's old
//! e-mail finding his lead among them. On a SQLite store they are tables of the same file, each
//! batch committed with its checkpoint, so every run reads only what is new; on `memory:` and
//! PostgreSQL they are kept in a SQLite database in memory beside the log and built from the
//! whole log on every run. `--rebuild` then rebuilds LeadSearch into `lead_search_new` beside
//! the live table, showing each batch, and switches it in.
//!
//! Run with: `cargo run -p eventsrc-examples --bin leads [-- --store <url>] [--rebuild]`

use std::error::Error;
use std::process::ExitCode;

use eventsrc::Store;
use eventsrc_examples::leads::read_models::{self, LeadReadModels, Placement};
use eventsrc_examples::leads::story;
use eventsrc_examples::store::{Demo, Invocation, exit_code};

/// The store when neither `--store` nor `EVENTSRC_STORE` names one.
const DEFAULT_STORE: &str = "sqlite://eventsrc-demo.db";

/// Events per transaction of the rebuild: few, so that the demo's short log takes several.
const REBUILD_BATCH: usize = 2;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    eventsrc_examples::telemetry::init_tracing();
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let Some(Demo {
        url,
        source,
        options: LeadsOptions { rebuild },
    }) = Invocation::<LeadsOptions>::read("leads", DEFAULT_STORE)?
    else {
        return Ok(());
    };
    // A manual clock stamps `recorded_at`, so the story happens in November 2016 and later
    // runs continue from the last stored date.
    let clock = story::clock();
    let store = url.open_with_clock(clock.clone()).await?;
    println!("eventsrc: a sales-leads CRM on {store}");
    println!("Store URL: {url} ({source})");
    let mut stdout = std::io::stdout();
    let read_models = LeadReadModels::for_store(store.clone()).await?;
    let projected = read_models::tell_with_read_models(&read_models, &clock, &mut stdout).await?;
    if rebuild {
        read_models::tell_rebuild(&read_models, REBUILD_BATCH, &mut stdout).await?;
    }
    let told = projected.told;
    let (place, start_over) = match &store {
        Store::Sqlite(sqlite) if sqlite.path().is_some() => {
            ("file".to_owned(), "delete the file".to_owned())
        }
        Store::Postgres(postgres) => (
            "schema".to_owned(),
            format!(
                "drop the schema (DROP SCHEMA {} CASCADE)",
                postgres.schema()
            ),
        ),
        _ => return Ok(()),
    };
    let (events, run) = (told.events, told.run);
    let (stefan, lilyana) = (story::STEFAN, story::LILYANA);
    let held = format!(
        "The {place} now holds {events} events of leads {stefan} and {lilyana} (run {run})"
    );
    match read_models.placement() {
        Placement::LogDatabase => println!(
            "\n{held} and the read models' tables,\nwhich go on from their checkpoints: run the \
             demo again to continue their history, or {start_over}\nto start over."
        ),
        Placement::Beside => println!(
            "\n{held}: run the demo again to continue\ntheir history, or {start_over} to start over."
        ),
    }
    Ok(())
}

/// The leads demo's own option, beside `--store`.
#[derive(Debug, Clone, Copy, clap::Args)]
struct LeadsOptions {
    /// After the story, rebuild LeadSearch beside its live table and switch it in
    #[arg(long)]
    rebuild: bool,
}
