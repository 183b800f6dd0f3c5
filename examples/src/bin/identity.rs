//! The identity service over HTTP (`eventsrc_examples::identity`): users and groups with
//! unique e-mail addresses, conditional and idempotent writes, reads that wait for a
//! consistency token, and every error as a problem document. The README's "An identity
//! service over HTTP" walks through it with `curl`.
//!
//! It serves on `127.0.0.1:8080` (`--listen <addr>`) until Ctrl-C, on the SQLite file
//! `eventsrc-identity.db` in the current directory unless `--store <url>` or `EVENTSRC_STORE`
//! names another store (`memory:`, `postgres://...`). A read with a `Consistency-Token` waits
//! at most 2 seconds for its view (`--read-wait-ms <ms>`).
//!
//! Run with: `cargo run -p eventsrc-examples --bin identity [-- --store <url>] [--listen <addr>]`

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use eventsrc_examples::identity::http::router_with_metrics;
use eventsrc_examples::identity::service::{Config, Service};
use eventsrc_examples::store::{Demo, Invocation, exit_code};

/// The store when neither `--store` nor `EVENTSRC_STORE` names one.
const DEFAULT_STORE: &str = "sqlite://eventsrc-identity.db";

#[tokio::main]
async fn main() -> ExitCode {
    eventsrc_examples::telemetry::init_tracing();
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let Some(Demo {
        url,
        source,
        options,
    }) = Invocation::<IdentityOptions>::read("identity", DEFAULT_STORE)?
    else {
        return Ok(());
    };
    eventsrc::registry::check()?;
    // Every metric eventsrc records, served at GET /metrics.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|error| format!("cannot install the metrics recorder: {error}"))?;
    let store = url.open().await?;
    let config = Config {
        read_wait: Duration::from_millis(options.read_wait_ms),
    };
    let service = Arc::new(Service::start(store, config).await?);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", options.listen))?;
    println!("eventsrc: an identity service on {}", service.store());
    println!("Store URL: {url} ({source})");
    println!("Users view: {}", service.users_view());
    println!(
        "Listening on http://{} (Ctrl-C stops; metrics at /metrics)",
        listener.local_addr()?
    );
    axum::serve(listener, router_with_metrics(service, metrics))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("Stopped.");
    Ok(())
}

/// The identity service's own options, beside `--store`.
#[derive(Debug, Clone, Copy, clap::Args)]
struct IdentityOptions {
    /// The address to serve HTTP on
    #[arg(long, value_name = "addr", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How long a read with a Consistency-Token waits for its view, in milliseconds
    #[arg(long, value_name = "ms", default_value_t = 2000)]
    read_wait_ms: u64,
}
