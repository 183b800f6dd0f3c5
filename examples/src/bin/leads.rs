//! Seed 002's story: Stefan Ivanov, lead 1410, from first import to conversion, told through
//! `eventsrc::Repository`; then the full event history, the lead now and as it was earlier, and
//! two commands racing a status change on lead 1406 (`eventsrc_examples::leads::story`).
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
//! Run with: `cargo run -p eventsrc-examples --bin leads [-- --store <url>]`

use std::error::Error;
use std::process::ExitCode;

use eventsrc_examples::leads::story;
use eventsrc_examples::store::{AnyStore, Invocation, exit_code};

/// The store when neither `--store` nor `EVENTSRC_STORE` names one.
const DEFAULT_STORE: &str = "sqlite://eventsrc-demo.db";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let Some((url, source)) = Invocation::store("leads", DEFAULT_STORE)? else {
        return Ok(());
    };
    // A manual clock stamps `recorded_at`, so the story happens in November 2016 and later
    // runs continue from the last stored date.
    let clock = story::clock();
    let store = url.open_with_clock(clock.clone()).await?;
    println!("eventsrc: seed 002's leads on {store}");
    println!("Store URL: {url} ({source})");
    let mut stdout = std::io::stdout();
    let told = story::tell(&store, &clock, &mut stdout).await?;
    let (place, start_over) = match &store {
        AnyStore::Sqlite(sqlite) if sqlite.path().is_some() => {
            ("file".to_owned(), "delete the file".to_owned())
        }
        AnyStore::Postgres(postgres) => (
            "schema".to_owned(),
            format!(
                "drop the schema (DROP SCHEMA {} CASCADE)",
                postgres.schema()
            ),
        ),
        _ => return Ok(()),
    };
    println!(
        "\nThe {place} now holds {} events of leads {} and {} (run {}): run the demo again to \
         continue their history, or {start_over} to start over.",
        told.events,
        story::STEFAN,
        story::LILYANA,
        told.run
    );
    Ok(())
}
