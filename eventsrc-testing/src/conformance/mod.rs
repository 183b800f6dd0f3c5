//! The backend conformance suite: the behaviour every [`EventStore`], [`SnapshotStore`],
//! [`CheckpointStore`], [`ParkedStore`], [`Leases`], [`DocumentStore`] and [`Inspect`] must
//! show, as generic async cases that any store can be run through.
//!
//! Each case is a `pub async fn case<S: StoreUnderTest>(store: S)` that panics, naming what it
//! expected and what it got, when the store misbehaves. [`event_store_conformance!`] stamps one
//! named `#[tokio::test]` per case for a store factory, so a backend crate runs the whole suite
//! with one line and every failure has a name:
//!
//! ```text
//! eventsrc_testing::event_store_conformance!(|| async { MyEventStore::open_fresh().await });
//! ```
//!
//! The list of cases lives in one place (the `__conformance_cases` macro): the stamped tests,
//! [`CASES`] and the re-exports below are all generated from it, and a case function missing
//! from the list is dead code, which the workspace's lints reject. So a new case reaches every
//! backend.
//!
//! Every case expects the store it is given to be empty for its tenant (a fresh database,
//! schema or tenant per call). Cases that need other tenants make new ones with
//! [`Tenants::with_tenant`] and unique names, so they never meet data of another run.
//!
//! [`event_store_conformance!`]: crate::event_store_conformance

// The cases are test code: unwrapping a store's answer there is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use eventsrc_core::{CheckpointStore, EventStore, SnapshotStore, Tenants};

use eventsrc_core::backend::{DocumentStore, Leases, ParkedStore};
use eventsrc_core::store::{Inspect, Lifecycle};

pub use self::inline::{InlineFixture, inline_projections_keep_the_contract};

mod across;
mod append;
mod cache;
mod commands;
mod concurrency;
mod content;
mod documents;
mod expect;
mod idempotency;
mod inline;
mod inspect;
mod lifecycle;
mod log;
#[cfg(feature = "encryption")]
pub mod personal;
mod reads;
mod readside;
mod sample;
mod snapshots;
mod tenants;
mod time;

/// What a store must implement to run the suite: all eight storage traits, handles on other
/// tenants ([`Tenants`]), cheap clones that share the same storage (the concurrent cases hand
/// one to each task), and `'static` so that a clone can move into a spawned task.
pub trait StoreUnderTest:
    EventStore
    + Tenants
    + SnapshotStore
    + CheckpointStore
    + ParkedStore
    + Leases
    + DocumentStore
    + Inspect
    + Lifecycle
    + Clone
    + 'static
{
}

impl<S> StoreUnderTest for S where
    S: EventStore
        + Tenants
        + SnapshotStore
        + CheckpointStore
        + ParkedStore
        + Leases
        + DocumentStore
        + Inspect
        + Lifecycle
        + Clone
        + 'static
{
}

/// What a backend supports, where real backends legitimately differ. A case that needs a
/// capability the backend lacks is skipped, and says so: it prints
/// `conformance: <case> skipped: backend lacks <capability>` (shown with `--nocapture`).
///
/// Everything else in the suite is required of every backend.
///
/// ```
/// use eventsrc_testing::conformance::Capabilities;
///
/// // A database that stamps `recorded_at` with its own clock:
/// let postgres = Capabilities { local_clock: false, ..Capabilities::all() };
/// assert!(postgres.concurrent_writers && !postgres.local_clock);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Appends from many tasks at once, on one stream or many, each succeed or fail with
    /// `StoreError::WrongExpectedVersion`, never with a backend error such as a lock timeout.
    /// Off for a backend documented as single-writer (e.g. one SQLite connection without a busy
    /// timeout), which skips the six concurrency cases.
    pub concurrent_writers: bool,
    /// A payload of 1 MiB is stored and read back. Off for backends with a small row or item
    /// size limit.
    pub large_payloads: bool,
    /// `recorded_at` is read in this process, from the store's [`Clock`](eventsrc_core::time::Clock) (so it
    /// lies between the instants read just before and just after an append, to the
    /// microsecond). Off for databases that stamp the server's time, which the suite then checks
    /// only within a window allowing for clock skew.
    pub local_clock: bool,
    /// [`EventStore::append_signal`] returns a signal that moves after every append through
    /// the store. Off for a backend whose live readers only poll.
    pub append_signal: bool,
}

impl Capabilities {
    /// Every capability: what the in-memory store supports.
    pub const fn all() -> Self {
        Self {
            concurrent_writers: true,
            large_payloads: true,
            local_clock: true,
            append_signal: true,
        }
    }
}

/// Whether `case` needs a capability missing from `capabilities`; if so, prints
/// `conformance: <case> skipped: backend lacks <capability>` and returns `true`.
///
/// The stamped tests call it before running a case; a harness of your own can too.
pub fn skips(case: &str, capabilities: &Capabilities) -> bool {
    match missing_capability(case, capabilities) {
        Some(capability) => {
            println!("conformance: {case} skipped: backend lacks {capability}");
            true
        }
        None => false,
    }
}

/// Whether `skip_if` asks to skip `case`; if so, prints
/// `conformance: <case> skipped: skip_if returned true` and returns `true`.
///
/// The stamped tests call it, after [`skips`], with the `skip_if` given to
/// [`event_store_conformance!`](crate::event_store_conformance).
///
/// ```
/// use eventsrc_testing::conformance::skips_if;
///
/// let large = |case: &str| case.contains("mebibyte");
/// assert!(skips_if("a_one_mebibyte_payload_round_trips", large));
/// assert!(!skips_if("append_records_every_field", large));
/// ```
pub fn skips_if(case: &str, skip_if: impl Fn(&str) -> bool) -> bool {
    let skip = skip_if(case);
    if skip {
        println!("conformance: {case} skipped: skip_if returned true");
    }
    skip
}

/// THE list of cases: `module::case`, followed by `=> capability` when the case needs one.
/// Calls the macro named in brackets with the tokens after it, then the list.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ([$($callback:tt)*] $($context:tt)*) => {
        $($callback)*! {
            [$($context)*]
            append::append_records_every_field,
            append::an_append_reports_its_versions_and_last_position,
            append::a_batch_shares_one_commit_and_one_timestamp,
            append::expected_any_appends_to_missing_and_existing_streams,
            append::expected_no_stream_succeeds_once_then_conflicts,
            append::expected_stream_exists_conflicts_then_succeeds,
            append::expected_exact_succeeds_only_at_the_current_version,
            append::expected_exact_none_behaves_as_no_stream,
            append::a_conflicting_append_writes_nothing,
            across::an_append_across_streams_stores_every_part_in_one_commit,
            across::an_append_across_streams_with_one_stale_part_stores_nothing,
            across::re_appending_a_stored_append_across_streams_is_idempotent,
            across::a_malformed_append_across_streams_is_invalid,
            across::a_part_without_events_only_checks_its_stream,
            across::concurrent_appends_across_streams_have_one_winner => concurrent_writers,
            across::read_events_returns_stored_events_in_the_order_asked,
            commands::an_idempotent_command_appends_once_and_replays_its_result,
            commands::a_key_reused_for_another_command_is_refused,
            commands::racing_runs_with_one_key_append_once => concurrent_writers,
            commands::a_stale_token_is_refused_without_a_retry,
            commands::racing_sign_ups_for_one_address_leave_one_user => concurrent_writers,
            commands::an_idempotent_decision_across_streams_replays,
            cache::a_cached_command_decides_without_reading_its_stream,
            cache::a_write_by_another_node_costs_the_cache_one_catch_up,
            cache::a_refusal_or_no_op_from_cached_state_is_checked_against_the_store,
            cache::a_token_is_judged_against_the_store_not_the_cache,
            cache::an_idempotent_command_with_the_cache_on_appends_once,
            cache::a_decision_across_streams_drops_the_entries_it_touched,
            cache::an_aggregate_that_opts_out_is_never_cached,
            cache::racing_nodes_with_caches_lose_no_deposit => concurrent_writers,
            idempotency::re_appending_a_stored_batch_is_idempotent,
            idempotency::re_appending_an_earlier_batch_returns_its_original_place,
            idempotency::the_same_id_with_other_content_is_a_duplicate,
            idempotency::the_same_id_in_another_stream_is_a_duplicate,
            idempotency::a_batch_mixing_stored_and_new_ids_is_a_duplicate,
            idempotency::an_id_stored_by_another_tenant_is_never_a_retry,
            idempotency::an_empty_batch_is_invalid,
            idempotency::an_id_twice_in_one_batch_is_invalid,
            idempotency::a_batch_failing_at_its_last_event_writes_nothing,
            concurrency::concurrent_appends_to_one_stream_have_one_winner_per_version
                => concurrent_writers,
            concurrency::concurrent_appends_to_many_streams_all_land => concurrent_writers,
            concurrency::a_reader_tailing_concurrent_appends_misses_nothing => concurrent_writers,
            reads::reads_a_stream_forward_from_a_version_with_a_limit,
            reads::reads_a_stream_backward_from_a_version_with_a_limit,
            reads::a_missing_stream_reads_as_empty_at_version_none,
            reads::a_stream_holds_only_its_own_events,
            reads::a_ten_thousand_event_stream_reads_in_pages,
            reads::visit_stream_agrees_with_read_stream,
            reads::clones_and_tenant_handles_share_the_storage,
            log::read_all_returns_every_stream_in_commit_order,
            log::read_all_pages_strictly_after_a_position,
            log::read_all_filters_by_event_type,
            log::read_all_filters_by_category,
            log::head_position_is_the_last_visible_event,
            tenants::tenants_do_not_see_each_others_events,
            tenants::the_same_stream_name_in_two_tenants_is_two_streams,
            tenants::tenants_do_not_see_each_others_snapshots_or_checkpoints,
            content::metadata_round_trips,
            content::payloads_round_trip_byte_for_byte,
            content::unicode_stream_ids_and_payloads_round_trip,
            content::the_longest_stream_id_round_trips,
            content::a_one_mebibyte_payload_round_trips => large_payloads,
            content::numeric_fields_keep_their_full_range,
            time::recorded_at_never_decreases_in_append_order,
            time::recorded_at_comes_from_the_local_clock => local_clock,
            snapshots::snapshots_are_saved_loaded_and_replaced,
            snapshots::a_snapshot_loads_exactly_as_saved,
            snapshots::checkpoints_are_saved_loaded_and_overwritten_per_subscriber,
            readside::a_subscription_catches_up_then_delivers_live_appends,
            readside::the_append_signal_moves_after_an_append => append_signal,
            readside::a_subscription_from_the_end_sees_only_later_events,
            readside::a_filtered_subscription_keeps_up_with_the_log,
            readside::a_checkpointed_runner_resumes_without_applying_twice,
            readside::a_runner_behind_a_moved_checkpoint_is_fenced,
            readside::parked_events_are_listed_replaced_and_removed,
            readside::parked_events_belong_to_their_tenant,
            readside::a_reactor_parks_what_keeps_failing_and_replays_it,
            readside::a_lease_is_exclusive_until_dropped,
            readside::leases_belong_to_their_tenant,
            readside::a_follower_takes_over_when_the_leader_stops,
            documents::documents_commit_with_their_checkpoint_and_a_moved_checkpoint_fences,
            documents::documents_are_selected_by_prefix_and_index_in_byte_order_of_ids,
            documents::documents_belong_to_their_view_and_tenant,
            inspect::inspect_lists_streams_in_byte_order_page_by_page,
            inspect::inspect_counts_event_types_per_schema_version,
            inspect::inspect_lists_checkpoints_in_name_order,
            inspect::inspect_lists_every_parked_event_by_reactor,
            lifecycle::a_soft_delete_archives_the_stream_and_leaves_a_marker,
            lifecycle::a_soft_deleted_stream_starts_again_after_its_marker,
            lifecycle::a_deletion_checks_its_expected_version_and_is_idempotent,
            lifecycle::a_tombstoned_stream_refuses_every_append,
            lifecycle::truncation_archives_the_events_before_a_version,
            lifecycle::a_reader_behind_a_truncation_gets_a_typed_error,
            lifecycle::loads_follow_deletions_and_truncations,
        }
    };
}

/// Generates, from the list, the re-exports of the case functions, [`CASES`] and
/// [`missing_capability`].
macro_rules! index {
    ([] $($module:ident :: $case:ident $(=> $capability:ident)?),* $(,)?) => {
        pub use self::{$($module::$case),*};

        /// The name of every case, in the order the list gives them.
        pub const CASES: &[&str] = &[$(stringify!($case)),*];

        /// The capability `case` needs and `capabilities` lacks, if any (`None` as well for a
        /// name that is not a case).
        pub fn missing_capability(
            case: &str,
            capabilities: &Capabilities,
        ) -> Option<&'static str> {
            $(
                $(
                    if case == stringify!($case) && !capabilities.$capability {
                        return Some(stringify!($capability));
                    }
                )?
            )*
            None
        }
    };
}

crate::__conformance_cases!([index]);

/// Stamps one test per case; called through the list by [`event_store_conformance!`].
///
/// The teardown gets a clone of the store taken before the case consumes it, and runs only
/// when the case returns: a failed case panics first, leaving its data to look at.
///
/// [`event_store_conformance!`]: crate::event_store_conformance
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (
        [$factory:expr, $skip_if:expr, $teardown:expr $(,)?]
        $($module:ident :: $case:ident $(=> $capability:ident)?),* $(,)?
    ) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if $crate::conformance::skips(stringify!($case), &CAPABILITIES)
                    || $crate::conformance::skips_if(stringify!($case), $skip_if)
                {
                    return;
                }
                let store = ($factory)().await;
                let kept = ::std::clone::Clone::clone(&store);
                $crate::conformance::$case(store).await;
                ($teardown)(kept).await;
            }
        )*
    };
}

/// Reads the options of [`event_store_conformance!`] in any order into three slots
/// (capabilities, skip_if, teardown), each empty until given, then stamps the tests. An option
/// given twice, or a name that is not an option, is a compile error.
///
/// [`event_store_conformance!`]: crate::event_store_conformance
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_options {
    ([$factory:expr] [$($capabilities:expr)?] [$($skip_if:expr)?] [$($teardown:expr)?]) => {
        /// The eventsrc backend conformance suite: one test per case.
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            #[allow(dead_code)]
            const CAPABILITIES: $crate::conformance::Capabilities = $crate::__conformance_or!(
                [$($capabilities)?] $crate::conformance::Capabilities::all()
            );

            $crate::__conformance_cases!(
                [$crate::__conformance_tests]
                $factory,
                $crate::__conformance_or!([$($skip_if)?] |_: &str| false),
                $crate::__conformance_or!([$($teardown)?] |_| async {}),
            );
        }
    };
    (
        [$factory:expr] [] [$($skip_if:expr)?] [$($teardown:expr)?]
        capabilities = $value:expr $(, $($rest:tt)*)?
    ) => {
        $crate::__conformance_options!(
            [$factory] [$value] [$($skip_if)?] [$($teardown)?] $($($rest)*)?
        );
    };
    (
        [$factory:expr] [$($capabilities:expr)?] [] [$($teardown:expr)?]
        skip_if = $value:expr $(, $($rest:tt)*)?
    ) => {
        $crate::__conformance_options!(
            [$factory] [$($capabilities)?] [$value] [$($teardown)?] $($($rest)*)?
        );
    };
    (
        [$factory:expr] [$($capabilities:expr)?] [$($skip_if:expr)?] []
        teardown = $value:expr $(, $($rest:tt)*)?
    ) => {
        $crate::__conformance_options!(
            [$factory] [$($capabilities)?] [$($skip_if)?] [$value] $($($rest)*)?
        );
    };
    (
        [$factory:expr] [$($capabilities:expr)?] [$($skip_if:expr)?] [$($teardown:expr)?]
        $option:ident $($rest:tt)*
    ) => {
        ::core::compile_error!(::core::concat!(
            "event_store_conformance!: `",
            ::core::stringify!($option),
            "` is given twice or is not an option; the options are `capabilities = ...`, \
             `skip_if = ...` and `teardown = ...`, each at most once"
        ));
    };
}

/// The expression in the brackets, or the one after them when the brackets are empty.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_or {
    ([$given:expr] $default:expr) => {
        $given
    };
    ([] $default:expr) => {
        $default
    };
}

/// Runs the backend conformance suite against a store: one `#[tokio::test]` per case, named
/// after it, inside a `mod conformance`.
///
/// `factory` is any expression for which `(factory)().await` gives a store implementing
/// [`StoreUnderTest`](crate::conformance::StoreUnderTest): a closure returning an async block, or
/// an `async fn`. It is called once per test, and must give a store that is empty for its tenant
/// (a database backend would create a fresh schema or database each time).
///
/// Options follow the factory, separated by commas, in any order, each at most once:
///
/// - `capabilities = ...` declares what the backend lacks: a const expression of
///   [`Capabilities`](crate::conformance::Capabilities), by default
///   [`Capabilities::all()`](crate::conformance::Capabilities::all). A case needing a missing
///   capability is skipped.
/// - `skip_if = ...` skips cases at run time, for a backend that is not always there (a
///   database server named by an environment variable): an `Fn(&str) -> bool` given the case's
///   name, returning `true` to skip it. It is asked before the factory is called, and only
///   about cases the capabilities leave in; a skipped case prints
///   `conformance: <case> skipped: skip_if returned true` (see [`skips_if`]) and passes. When
///   something should notice the skip (CI), print a reason from the closure straight to
///   `std::io::stderr()`, which the test harness does not capture.
/// - `teardown = ...` cleans up after a case that passed: an expression for which
///   `(teardown)(store).await` runs, given a clone of the store the factory gave (taken before
///   the case consumes it, so it shares the case's storage). A database backend drops the
///   schema or database it created. It does not run when the case fails, which leaves the data
///   to look at.
///
/// The calling crate needs `tokio` with the `rt-multi-thread` and `macros` features among its
/// dev-dependencies (the tests are `#[tokio::test(flavor = "multi_thread")]`), and
/// `eventsrc-testing` with the `conformance` feature. Names in the calling module are visible to
/// every expression.
///
/// A database backend whose tests run only when a server is configured:
///
/// ```text
/// use std::io::Write;
///
/// use eventsrc_testing::conformance::Capabilities;
///
/// eventsrc_testing::event_store_conformance!(
///     || async { PgEventStore::connect_to_fresh_schema(&database_url().unwrap()).await },
///     capabilities = Capabilities { local_clock: false, ..Capabilities::all() },
///     skip_if = |case| {
///         let missing = database_url().is_none();
///         if missing {
///             let line = format!("MY-BACKEND-SKIPPED: {case}: set MY_DATABASE_URL\n");
///             let _ = std::io::stderr().write_all(line.as_bytes());
///         }
///         missing
///     },
///     teardown = |store: PgEventStore| async move { drop_schema(&store).await },
/// );
/// ```
///
/// [`skips_if`]: crate::conformance::skips_if
#[macro_export]
macro_rules! event_store_conformance {
    ($factory:expr $(, $($options:tt)*)?) => {
        $crate::__conformance_options!([$factory] [] [] [] $($($options)*)?);
    };
}
