//! Traces for the demos: eventsrc's spans (`eventsrc::telemetry`) printed to standard error
//! when `RUST_LOG` asks for them.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Prints spans (a line as each closes, with its fields and time) and events to standard
/// error as `RUST_LOG` filters them (e.g.
/// `RUST_LOG=eventsrc=debug`: every command, load, append, batch and reactor event; or
/// `RUST_LOG=info`). Without `RUST_LOG` only warnings and errors are printed, so a demo's own
/// output reads as before. A malformed `RUST_LOG` is reported and ignored. Calling it twice
/// keeps the first subscriber.
pub fn init_tracing() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => {
            EnvFilter::try_new(&directives).unwrap_or_else(|error| {
                eprintln!("eventsrc: ignoring RUST_LOG={directives:?}: {error}");
                EnvFilter::new("warn")
            })
        }
        _ => EnvFilter::new("warn"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_span_events(FmtSpan::CLOSE)
        .try_init();
}
