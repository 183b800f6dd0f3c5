//! The stand-alone `eventsrc` command line: every command of [`eventsrc::cli`] on any store URL.
//! Without the application's event types linked in, payloads show as they are stored; build a
//! binary of the application's own with [`eventsrc::cli::Cli`] to decode them, replay reactors
//! and rebuild read models.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    eventsrc::cli::run().await
}
