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
//! `sqlite::memory:`.
//!
//! Run with: `cargo run -p eventsrc-examples --bin leads [-- --store <url>]`

use std::error::Error;
use std::process::ExitCode;

use eventsrc_examples::leads::story;
use eventsrc_examples::store::{AnyStore, Invocation, StoreUrl};

/// The store when neither `--store` nor `EVENTSRC_STORE` names one.
const DEFAULT_STORE: &str = "sqlite://eventsrc-demo.db";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let (url, source) = match Invocation::from_env(DEFAULT_STORE)? {
        Invocation::Help => {
            print!("{}", Invocation::usage("leads", DEFAULT_STORE));
            return Ok(());
        }
        Invocation::Run { url, source } => (url, source),
    };
    let url: StoreUrl = url.parse()?;
    // A manual clock stamps `recorded_at`, so the story happens in November 2016 and later
    // runs continue from the last stored date.
    let clock = story::clock();
    let store = url.open_with_clock(clock.clone()).await?;
    println!("eventsrc: seed 002's leads on {store}");
    println!("Store URL: {url} ({source})");
    let mut stdout = std::io::stdout();
    let told = story::tell(&store, &clock, &mut stdout).await?;
    if let AnyStore::Sqlite(sqlite) = &store
        && sqlite.path().is_some()
    {
        println!(
            "\nThe file now holds {} events of leads {} and {} (run {}): run the demo again to \
             continue their history, or delete the file to start over.",
            told.events,
            story::STEFAN,
            story::LILYANA,
            told.run
        );
    }
    Ok(())
}
