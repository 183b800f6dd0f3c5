//! The `eventsrc` command line with the sales-leads domain linked in: the leads demo's stored
//! events decode through the domain's own types, and `check` knows every type the demo stores
//! (the stand-alone `eventsrc` binary, with no types linked in, shows them raw and fails
//! `check`).
//!
//! Run the leads demo first (it writes `eventsrc-demo.db`), then:
//!
//! ```text
//! cargo run -p eventsrc-examples --bin leads-admin -- --store sqlite://eventsrc-demo.db streams
//! cargo run -p eventsrc-examples --bin leads-admin -- --store sqlite://eventsrc-demo.db events lead-1410
//! cargo run -p eventsrc-examples --bin leads-admin -- --store sqlite://eventsrc-demo.db check
//! ```

use std::process::ExitCode;

use eventsrc_examples::leads::Lead;

#[tokio::main]
async fn main() -> ExitCode {
    eventsrc_examples::telemetry::init_tracing();
    // Naming the aggregate links the leads domain into this binary, and with it the
    // registrations of its event types.
    let _linked = std::any::type_name::<Lead>();
    eventsrc::cli::Cli::new().name("leads-admin").run().await
}
