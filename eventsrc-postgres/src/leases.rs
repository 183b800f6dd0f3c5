//! Leadership among nodes ([`Leases`]) with PostgreSQL session advisory locks.
//!
//! A lease is `pg_try_advisory_lock` taken on a connection of its own, outside the pool, and
//! held by a task for as long as the lease lives. PostgreSQL releases a session lock when its
//! session ends, whatever ends it: the lease dropped (the task closes the connection), the
//! process killed, the connection cut or terminated by an administrator. So a node that dies
//! loses its leases with its sessions, and another node's `try_acquire` succeeds.
//!
//! The task also runs a query on the connection every [`HEARTBEAT`], so that a connection that
//! silently stopped answering (a network partition: the server ends that session and another
//! node takes the lease) is noticed within two heartbeats, not when TCP gives up. Either way
//! the lease reports itself lost. A node that loses a lease without noticing at once still
//! cannot apply a batch twice: runners fence their writes with the checkpoint.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use eventsrc_core::StoreError;
use eventsrc_core::Tenant;
use eventsrc_core::backend::{Lease, Leases};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

use crate::notify::Connected;
use crate::{PgEventStore, backend};

/// How often a held lease checks that its connection still answers, and how long it waits for
/// the answer.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The advisory lock key of the lease `name` of `tenant` in `schema`, hashed by PostgreSQL
/// (`hashtextextended`). The tenant is prefixed by its length, so that no two (tenant, name)
/// pairs spell the same text.
fn key(schema: &str, tenant: &Tenant, name: &str) -> String {
    let tenant = tenant.as_str();
    format!("eventsrc lease {schema} {}:{tenant} {name}", tenant.len())
}

/// How many connections of failed lease tries a store keeps for later tries: enough for the
/// followers of a few read models polling at once.
const IDLE_SESSIONS: usize = 4;

/// Connections that tried for a lease and found it taken (so they hold no lock), kept so that
/// a follower polling for a lease runs one query per try instead of opening a connection.
#[derive(Default)]
pub(crate) struct IdleSessions(Mutex<Vec<Connected>>);

impl IdleSessions {
    fn take(&self) -> Option<Connected> {
        let mut idle = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(session) = idle.pop() {
            if !session.0.is_closed() {
                return Some(session);
            }
        }
        None
    }

    fn keep(&self, session: Connected) {
        let mut idle = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_SESSIONS && !session.0.is_closed() {
            idle.push(session);
        }
    }
}

impl Leases for PgEventStore {
    /// Takes the lease on `name` for this handle's tenant: at most one holder per schema,
    /// tenant and name among every node of the database. A held lease keeps a connection of
    /// its own (outside the pool); a try that finds the lease taken leaves its connection for
    /// the next try, so a follower asking every poll interval costs one short query.
    async fn try_acquire(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let key = key(&self.shared.schema, &self.tenant, name);
        let idle = self.shared.idle_lease_sessions.take();
        let reused = idle.is_some();
        let (session, taken) = match try_lock(idle, self, &key).await {
            Ok(tried) => tried,
            // A kept session may have died since its last try: try once on a fresh one.
            Err(_) if reused => try_lock(None, self, &key).await?,
            Err(error) => return Err(error),
        };
        if !taken {
            self.shared.idle_lease_sessions.keep(session);
            return Ok(None);
        }
        let (client, driver) = session;
        let (held, receiver) = watch::channel(true);
        let task = tokio::spawn(hold(client, driver, held, name.to_owned()));
        Ok(Some(Lease::new(receiver, Release(task.abort_handle()))))
    }
}

/// Tries for the lock `key` on `session`, or on a new connection: the session, and whether
/// the lock was taken. On an error the session is dropped, which closes its connection.
async fn try_lock(
    session: Option<Connected>,
    store: &PgEventStore,
    key: &str,
) -> Result<(Connected, bool), StoreError> {
    let session = match session {
        Some(session) => session,
        None => (store.shared.connector)(store.shared.config.clone(), None)
            .await
            .map_err(backend)?,
    };
    let taken: bool = session
        .0
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(backend)?;
    Ok((session, taken))
}

/// Keeps the lease's connection open, and says when it is gone. Ends (closing the connection,
/// which releases the lock) when aborted by [`Release`].
async fn hold(
    client: tokio_postgres::Client,
    mut driver: JoinHandle<()>,
    held: watch::Sender<bool>,
    name: String,
) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beat.tick().await;
    loop {
        tokio::select! {
            _ = &mut driver => {
                tracing::warn!(lease = %name, "the connection holding the lease ended");
                break;
            }
            _ = beat.tick() => {
                let answered = tokio::time::timeout(HEARTBEAT, client.simple_query("SELECT 1")).await;
                if !matches!(answered, Ok(Ok(_))) {
                    tracing::warn!(lease = %name, "the connection holding the lease stopped answering");
                    break;
                }
            }
        }
    }
    held.send_replace(false);
}

/// Releases a lease when dropped: stops its task, whose client closes the connection.
struct Release(AbortHandle);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_tenants_and_names_apart() {
        let a = key("s", &Tenant::new("a b"), "c");
        let b = key("s", &Tenant::new("a"), "b c");
        assert_ne!(a, b);
        assert_ne!(
            key("s", &Tenant::new("a"), "x"),
            key("t", &Tenant::new("a"), "x")
        );
    }
}
