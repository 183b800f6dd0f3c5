//! Waiting on a condition with a deadline, for asynchronous runners (projections, reactors),
//! instead of sleeping a fixed time and hoping.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// Polls `check` until it returns `Ok`, or panics with its last error once `timeout` has passed.
///
/// The first poll is immediate; later polls back off from 1 ms to 50 ms, so a condition that
/// holds soon is seen soon and a slow one does not spin.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// let polls = AtomicU32::new(0);
/// eventsrc_testing::eventually(Duration::from_secs(5), || async {
///     match polls.fetch_add(1, Ordering::SeqCst) {
///         n if n >= 3 => Ok(()),
///         n => Err(format!("only {n} polls so far")),
///     }
/// })
/// .await;
/// # });
/// ```
#[track_caller]
pub fn eventually<F, Fut, E>(timeout: Duration, check: F) -> impl Future<Output = ()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let caller = std::panic::Location::caller();
    poll_until(timeout, check, caller)
}

async fn poll_until<F, Fut, E>(
    timeout: Duration,
    mut check: F,
    caller: &'static std::panic::Location<'static>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let last = match check().await {
            Ok(()) => return,
            Err(error) => error,
        };
        if Instant::now() >= deadline {
            panic!("condition not met within {timeout:?} (waited at {caller}): {last}");
        }
        sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
