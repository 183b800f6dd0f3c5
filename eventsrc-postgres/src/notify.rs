//! Waking live readers with LISTEN/NOTIFY.
//!
//! Sending: the usual append, one event at an exact version, carries the notification in its
//! own statement (`pg_notify` in its `RETURNING`, see [`Notifier::claim`]) whenever it runs
//! alone, and at most once per [`MIN_INTERVAL`] while other appends of the store are under way.
//! Readers are then woken by the commit itself, and the notification costs no statement, round
//! trip or task wake-up of its own. Every other append (and one that did not carry it) wakes the
//! store's background task, which waits out the interval and sends `NOTIFY` from a pooled
//! connection unless an append claimed a notification meanwhile.
//!
//! Notifying inside every append was measured to cost 30-40% of the throughput of 8
//! concurrent writers (every notifying commit takes PostgreSQL's cluster-wide notification
//! queue lock); at most one per interval, it does not. Sending every notification from the
//! task instead, as before, cost each single-event command about a third of its client CPU
//! (the task's wake-ups, pool checkout and round trip) with 1 client, and a transaction per
//! notification on the server.
//!
//! Receiving: a dedicated connection LISTENs and bumps a `watch` counter per notification.
//! A notification only says "something was appended": readers then page through `read_all`
//! from their own position. The counter also moves whenever the connection is (re)established,
//! because notifications sent while it was down are lost, and a reader must look again.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};

/// The shortest time between two notifications of one store while its appends overlap (an
/// append running alone always notifies). The first append after a quiet moment is announced
/// at once; under load, one notification covers every append of the interval. A notification takes the cluster-wide notification queue at its commit (and, sent
/// by the task, a transaction and a round trip of its own): one per single-event append
/// measured 12-15% of the appends' throughput on a two-core server, and a reader woken a
/// millisecond later reads the same log.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// One store's notifications: when the last was claimed, how many appends are under way, and
/// the task covering appends that did not carry one; the task stops when this is dropped.
pub(crate) struct Notifier {
    clock: Arc<Clock>,
    channel: String,
    /// Appends of this store between [`claim`](Self::claim) and the drop of its [`Claim`].
    running: AtomicUsize,
    wake: Arc<Notify>,
    task: AbortHandle,
}

/// An append under way, and whether it is to notify in its own commit; dropped when the append
/// is over.
pub(crate) struct Claim<'a> {
    notifier: &'a Notifier,
    carries: bool,
}

impl Claim<'_> {
    /// The channel to notify in the append's commit, if this append carries the notification.
    pub(crate) fn channel(&self) -> Option<&str> {
        self.carries.then_some(self.notifier.channel.as_str())
    }

    /// Ends the append: `carried` when its commit notified, `stored` when it stored events.
    /// Otherwise the task covers it: when it stored events, and after a claim it could not use
    /// whatever its outcome, since the task counts on a claimed append to notify.
    pub(crate) fn settle(self, carried: bool, stored: bool) {
        if !carried && (self.carries || stored) {
            self.notifier.appended();
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.notifier.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// When the store's latest notification was claimed, by an append or by the task, in
/// microseconds since `base` (0: none yet).
struct Clock {
    base: Instant,
    last_claimed: AtomicU64,
}

impl Clock {
    fn now(&self) -> u64 {
        // At least 1, so that a claim at the very start is told from "none yet".
        (self.base.elapsed().as_micros() as u64).max(1)
    }

    /// Takes the next notification if [`MIN_INTERVAL`] has passed since the last claim, or
    /// in any case when `alone` (no other append of the store under way, so no notifying
    /// commit of this process to queue behind).
    fn claim(&self, alone: bool) -> bool {
        let (now, last) = (self.now(), self.last_claimed.load(Ordering::Acquire));
        if !alone && last != 0 && now.saturating_sub(last) < MIN_INTERVAL.as_micros() as u64 {
            return false;
        }
        self.last_claimed
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl Notifier {
    /// Starts the task; it notifies `channel` from connections of `pool`.
    pub(crate) fn start(pool: Pool, channel: String) -> Self {
        let clock = Arc::new(Clock {
            base: Instant::now(),
            last_claimed: AtomicU64::new(0),
        });
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(send_notifications(
            pool,
            channel.clone(),
            wake.clone(),
            clock.clone(),
        ));
        Self {
            clock,
            channel,
            running: AtomicUsize::new(0),
            wake,
            task: task.abort_handle(),
        }
    }

    /// Enters an append, which takes the next notification when it runs alone, or when
    /// [`MIN_INTERVAL`] has passed since the last claim. An append that takes it must notify
    /// [`Claim::channel`] in its own commit, and end with [`Claim::settle`] whatever its
    /// outcome (the task counts on a claim made after an append to cover it).
    ///
    /// Alone, an append notifies in its own commit every time: then no other notifying
    /// commit of this store waits behind it for PostgreSQL's notification queue lock, and the
    /// task is never woken. With appends running side by side, at most one a millisecond
    /// notifies, and the task covers the rest.
    pub(crate) fn claim(&self) -> Claim<'_> {
        let alone = self.running.fetch_add(1, Ordering::AcqRel) == 0;
        Claim {
            notifier: self,
            carries: self.clock.claim(alone),
        }
    }

    /// Asks for a notification covering an append that committed before this call and did not
    /// carry one: the task sends it after the interval, unless an append claims one first.
    pub(crate) fn appended(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn send_notifications(pool: Pool, channel: String, wake: Arc<Notify>, clock: Arc<Clock>) {
    loop {
        wake.notified().await;
        // Every append to cover committed before this moment.
        let asked = clock.now();
        let last = clock.last_claimed.load(Ordering::Acquire);
        if last != 0 {
            let due = clock.base + Duration::from_micros(last) + MIN_INTERVAL;
            tokio::time::sleep_until(due.into()).await;
        }
        // A claim made after the appends committed: its commit, later still, notifies. One
        // that could not notify asks again, and is waited for above.
        if clock.last_claimed.load(Ordering::Acquire) >= asked || !clock.claim(false) {
            continue;
        }
        let sent = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let statement = client
                .prepare_cached("SELECT pg_notify($1, '')")
                .await
                .map_err(|e| e.to_string())?;
            client
                .execute(&statement, &[&channel])
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(error) = sent.await {
            // Listeners also poll; a lost wake-up delays them, it loses nothing.
            tracing::warn!(%error, channel, "cannot send an eventsrc notification");
        }
    }
}

/// The running listener of one store; stops when dropped.
pub(crate) struct Listener {
    pub counter: watch::Sender<u64>,
    task: AbortHandle,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a dedicated connection, outside the pool, whose notifications bump the counter if
/// there is one: the client, and the task driving the connection (it ends when the connection
/// does). The LISTEN connection and each lease's connection are made with it. Boxed so that
/// the store need not be generic over its TLS connector.
pub(crate) type Connector = Arc<
    dyn Fn(
            tokio_postgres::Config,
            Option<watch::Sender<u64>>,
        )
            -> Pin<Box<dyn Future<Output = Result<Connected, tokio_postgres::Error>> + Send>>
        + Send
        + Sync,
>;

/// A dedicated connection: the client (the connection closes when it is dropped) and the task
/// driving the connection.
pub(crate) type Connected = (tokio_postgres::Client, tokio::task::JoinHandle<()>);

/// The [`Connector`] for connections made with `tls`.
pub(crate) fn connector<T>(tls: T) -> Connector
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    Arc::new(move |config, counter| {
        let tls = tls.clone();
        Box::pin(async move {
            let (client, mut connection) = config.connect(tls).await?;
            let driver = tokio::spawn(async move {
                loop {
                    match poll_fn(|cx| connection.poll_message(cx)).await {
                        Some(Ok(AsyncMessage::Notification(_))) => {
                            if let Some(counter) = &counter {
                                counter.send_modify(|n| *n += 1);
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(error)) => {
                            tracing::warn!(%error, "a dedicated eventsrc connection failed");
                            return;
                        }
                        None => return,
                    }
                }
            });
            Ok((client, driver))
        })
    })
}

/// Connects, LISTENs, and keeps listening in a background task, reconnecting with a growing
/// pause when the connection drops. Fails when the first connection cannot be made, so that a
/// caller learns at once that it has to poll instead.
pub(crate) async fn listen(
    connector: Connector,
    config: tokio_postgres::Config,
    channel: String,
) -> Result<Listener, tokio_postgres::Error> {
    let (counter, _) = watch::channel(0u64);
    let first = connect(&connector, &config, &channel, &counter).await?;
    let task = tokio::spawn(keep_listening(
        connector,
        config,
        channel,
        counter.clone(),
        first,
    ));
    Ok(Listener {
        counter,
        task: task.abort_handle(),
    })
}

async fn connect(
    connector: &Connector,
    config: &tokio_postgres::Config,
    channel: &str,
    counter: &watch::Sender<u64>,
) -> Result<Connected, tokio_postgres::Error> {
    let (client, driver) = connector(config.clone(), Some(counter.clone())).await?;
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await?;
    // Whatever was sent while no connection listened is lost: readers must look.
    counter.send_modify(|n| *n += 1);
    Ok((client, driver))
}

async fn keep_listening(
    connector: Connector,
    config: tokio_postgres::Config,
    channel: String,
    counter: watch::Sender<u64>,
    first: Connected,
) {
    let mut current = Some(first);
    let mut pause = Duration::from_millis(50);
    loop {
        if let Some((client, driver)) = current.take() {
            let _ = driver.await;
            drop(client);
            pause = Duration::from_millis(50);
        }
        tokio::time::sleep(pause).await;
        match connect(&connector, &config, &channel, &counter).await {
            Ok(connected) => current = Some(connected),
            Err(error) => {
                tracing::warn!(%error, "cannot reconnect the eventsrc LISTEN connection");
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}
