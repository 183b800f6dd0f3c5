//! The whole backend conformance suite on PostgreSQL: one test per case, each on a schema of
//! its own (dropped when the case passes), skipped loudly without `EVENTSRC_POSTGRES_URL`.
//!
//! `event_store_conformance!` needs a factory that always gives a store, and a test without a
//! server must skip instead. Until the macro can express that, this file stamps the tests from
//! the suite's own list of cases, the same way the macro does, with the skip in front.

mod support;

use eventsrc_testing::conformance::Capabilities;
use support::TestSchema;

/// PostgreSQL stamps `recorded_at` with the server's clock.
const CAPABILITIES: Capabilities = Capabilities {
    local_clock: false,
    ..Capabilities::all()
};

/// One `#[tokio::test]` per case of the list `eventsrc_testing` keeps.
macro_rules! postgres_conformance_tests {
    ([] $($module:ident :: $case:ident $(=> $capability:ident)?),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if eventsrc_testing::conformance::skips(stringify!($case), &CAPABILITIES) {
                    return;
                }
                let Some(schema) = TestSchema::new(stringify!($case)).await else {
                    return;
                };
                let store = schema.store().await;
                eventsrc_testing::conformance::$case(store).await;
                schema.drop().await;
            }
        )*
    };
}

eventsrc_testing::__conformance_cases!([postgres_conformance_tests]);
