//! The whole backend conformance suite on PostgreSQL: one test per case, each on a schema of
//! its own (dropped when the case passes), skipped loudly without `EVENTSRC_POSTGRES_URL`.

mod support;

use eventsrc_postgres::PgEventStore;
use eventsrc_testing::conformance::Capabilities;

eventsrc_testing::event_store_conformance!(
    || async { support::TestSchema::fresh().await.store().await },
    // PostgreSQL stamps `recorded_at` with the server's clock.
    capabilities = Capabilities {
        local_clock: false,
        ..Capabilities::all()
    },
    // Prints the marker CI fails on.
    skip_if = |case| support::url(case).is_none(),
    teardown = |store: PgEventStore| async move { support::drop_schema(&store).await },
);
