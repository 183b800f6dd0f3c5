//! The physical limit beside every command figure: one durable single-row `INSERT` per command,
//! with no read, no decision and no version check, through tokio-postgres on a connection per
//! client, into a table of its own schema.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventsrc::postgres::tokio_postgres::{self, Client, NoTls, Statement};

use crate::contender::Failure;

pub(crate) struct Floor {
    /// A client and its prepared `INSERT` per concurrent writer.
    writers: Vec<(Arc<Client>, Arc<Statement>)>,
    /// One ~200-byte payload, the shape of a deposit.
    payload: Arc<String>,
    /// The next stream of the runs: each writer of each run has its own.
    streams: AtomicU64,
}

impl std::fmt::Debug for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Floor")
            .field("writers", &self.writers.len())
            .finish_non_exhaustive()
    }
}

/// A connection driven on this runtime.
pub(crate) async fn connect(url: &str) -> Result<Client, Failure> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

impl Floor {
    /// Makes `schema` and its table, and opens `writers` connections.
    pub(crate) async fn connect(url: &str, schema: &str, writers: usize) -> Result<Self, Failure> {
        let admin = connect(url).await?;
        admin
            .batch_execute(&format!(
                "CREATE SCHEMA \"{schema}\";
                 CREATE TABLE \"{schema}\".entries (
                     stream text NOT NULL,
                     version bigint NOT NULL,
                     payload json NOT NULL,
                     PRIMARY KEY (stream, version))"
            ))
            .await?;
        let insert = format!(
            "INSERT INTO \"{schema}\".entries (stream, version, payload) \
             VALUES ($1, $2, $3::text::json)"
        );
        let mut clients = Vec::with_capacity(writers);
        for _ in 0..writers {
            let client = connect(url).await?;
            let statement = client.prepare(&insert).await?;
            clients.push((Arc::new(client), Arc::new(statement)));
        }
        Ok(Self {
            writers: clients,
            payload: Arc::new(serde_json::to_string(&crate::bank::sample_deposit())?),
            streams: AtomicU64::new(1),
        })
    }

    /// `n` inserts over `clients` writers at once, each autocommitted.
    pub(crate) async fn run(&self, clients: usize, n: u64) -> Result<Duration, Failure> {
        let each = n / clients as u64;
        let first = self.streams.fetch_add(clients as u64, Ordering::Relaxed);
        let started = Instant::now();
        let tasks: Vec<_> = self.writers[..clients]
            .iter()
            .zip(first..)
            .map(|((client, insert), stream)| {
                let (client, insert) = (Arc::clone(client), Arc::clone(insert));
                let payload = Arc::clone(&self.payload);
                tokio::spawn(async move {
                    let stream = format!("floor-{stream}");
                    for version in 1..=each as i64 {
                        client
                            .execute(&*insert, &[&stream, &version, &*payload])
                            .await?;
                    }
                    Ok::<(), Failure>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok(started.elapsed())
    }
}
