//! Waking live readers with LISTEN/NOTIFY.
//!
//! Sending: after an append commits, the store wakes its [`Notifier`], a background task that
//! sends `NOTIFY` on the schema's channel from a pooled connection. Appends that commit while a
//! notification is being sent, or within [`MIN_INTERVAL`] of the last one, are covered by the
//! next one, so a busy store sends at most one per interval, not one per append. Notifying
//! inside the append statement instead was measured to cost 30-40% of the throughput of 8
//! concurrent writers (every notifying commit takes PostgreSQL's cluster-wide notification
//! queue lock); outside it, appends never wait for it.
//!
//! Receiving: a dedicated connection LISTENs and bumps a `watch` counter per notification.
//! A notification only says "something was appended": readers then page through `read_all`
//! from their own position. The counter also moves whenever the connection is (re)established,
//! because notifications sent while it was down are lost, and a reader must look again.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};

/// The shortest time between two notifications of one store. The first append after a quiet
/// moment is announced at once; under load, one notification covers every append of the
/// interval. Each `NOTIFY` is a transaction of its own (an extra round trip, a transaction id,
/// the cluster-wide notification queue): sent after every single-event append, they measured
/// 12-15% of the appends' throughput on a two-core server, and a reader woken a millisecond
/// later reads the same log.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// The task sending one store's notifications; stops when dropped.
pub(crate) struct Notifier {
    wake: Arc<Notify>,
    task: AbortHandle,
}

impl Notifier {
    /// Starts the task; it notifies `channel` from connections of `pool`.
    pub(crate) fn start(pool: Pool, channel: String) -> Self {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(send_notifications(pool, channel, wake.clone()));
        Self {
            wake,
            task: task.abort_handle(),
        }
    }

    /// Asks for a notification: one is sent after this call, however many ask meanwhile.
    pub(crate) fn appended(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn send_notifications(pool: Pool, channel: String, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let started = tokio::time::Instant::now();
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
        // Wake-ups meanwhile leave a permit: the next notification follows the pause.
        tokio::time::sleep_until(started + MIN_INTERVAL).await;
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
