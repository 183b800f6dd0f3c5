//! [`SqliteReadModel`]: a [`SqliteProjection`] as a [`Consumer`] of a
//! [`Runner`](eventsrc_core::Runner), its tables and checkpoint moved in one transaction; and
//! the switch of a rebuilt read model into the live one's place.

use std::sync::{Arc, Mutex};

use eventsrc_core::backend::{decode, stored_types};
use eventsrc_core::runner::Consumer;
use eventsrc_core::{GlobalPosition, RecordedEvent, RunError, StoreError, SwitchReadModel};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::projection::{SqliteProjection, apply_batch, lock, run_setup};
use crate::{SqliteEventStore, backend, checkpoint};

/// A [`SqliteProjection`] as a [`Consumer`] for [`eventsrc::Runner`](eventsrc_core::Runner): each batch is
/// one transaction on the store's writer thread that checks the checkpoint, applies every
/// event and moves the checkpoint, so the read model is updated exactly once even across
/// crashes and restarts.
///
/// The checkpoint lives in the store's checkpoint table under [`name`](Consumer::name) and the
/// store handle's tenant: give the runner the same handle. A batch whose starting checkpoint
/// is not the stored one is refused with [`RunError::Fenced`] before anything is applied.
///
/// ```
/// # use eventsrc::{Event, RecordedEvent};
/// # use eventsrc_sqlite::SqliteProjection;
/// # use eventsrc_sqlite::rusqlite::{Transaction, params};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize, Debug)]
/// # struct UserRegistered { email: String }
/// # struct Users;
/// # impl SqliteProjection for Users {
/// #     const NAME: &'static str = "users";
/// #     type Event = UserRegistered;
/// #     type Error = eventsrc_sqlite::rusqlite::Error;
/// #     fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
/// #         tx.execute_batch("CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT)")
/// #     }
/// #     fn apply(&mut self, tx: &Transaction<'_>, e: UserRegistered, r: &RecordedEvent) -> Result<(), Self::Error> {
/// #         tx.execute("INSERT OR REPLACE INTO users VALUES (?1, ?2)", params![r.stream.id(), e.email]).map(drop)
/// #     }
/// # }
/// use eventsrc::Runner;
/// use eventsrc::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
/// use eventsrc_sqlite::{SqliteEventStore, SqliteReadModel};
/// use std::time::Duration;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = SqliteEventStore::open_temporary().await?;
/// let runner = Runner::new(store.clone(), SqliteReadModel::new(Users, store.clone()));
/// let progress = runner.progress();
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let task = tokio::spawn(runner.run(async { stopped.await.ok(); }));
///
/// let user = StreamId::new("user", "ada")?;
/// let registered = NewEvent::from_event(&UserRegistered { email: "ada@example.com".into() }, Metadata::new())?;
/// let appended = store.append(&user, ExpectedVersion::NoStream, vec![registered]).await?;
///
/// // Read-your-writes: wait for the read model, then query it.
/// progress.wait_for(appended.position, Duration::from_secs(5)).await?;
/// let email: String = store
///     .read_with(|db| db.query_row("SELECT email FROM users WHERE id = 'ada'", [], |r| r.get(0)))
///     .await?;
/// assert_eq!(email, "ada@example.com");
/// stop.send(()).ok();
/// task.await??;
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteReadModel<P> {
    projection: Arc<Mutex<P>>,
    store: SqliteEventStore,
    name: String,
    /// The checkpoint's generation when this runner first read it (a switch bumps it); `None`
    /// until then, which is also until the tables are set up.
    generation: Option<i64>,
}

impl<P> std::fmt::Debug for SqliteReadModel<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReadModel")
            .field("name", &self.name)
            .field("tenant", &self.store.tenant)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<P: SqliteProjection> SqliteReadModel<P> {
    /// `projection`, with its tables in `store`'s database and its checkpoint under
    /// [`SqliteProjection::NAME`] for `store`'s tenant.
    pub fn new(projection: P, store: SqliteEventStore) -> Self {
        Self {
            projection: Arc::new(Mutex::new(projection)),
            store,
            name: P::NAME.to_owned(),
            generation: None,
        }
    }

    /// Keeps the checkpoint under `name` instead: a rebuild beside the live read model
    /// (`"users_rebuild"` writing into `users_new`), switched in later with
    /// [`SwitchReadModel::switch_read_model`](eventsrc_core::SwitchReadModel::switch_read_model).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Runs `job` on the writer thread, as this consumer.
    async fn on_writer<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, RunError> + Send + 'static,
    ) -> Result<T, RunError> {
        self.store
            .on_writer(move |conn| Ok(job(conn)))
            .await
            .map_err(|e| RunError::store(&self.name, e))?
    }
}

impl<P: SqliteProjection> Consumer for SqliteReadModel<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn event_types(&self) -> Option<Vec<&'static str>> {
        stored_types::<P::Event>(P::UNKNOWN_EVENTS)
    }

    /// Reads the checkpoint, setting up the tables first (once).
    async fn checkpoint(&mut self) -> Result<Option<GlobalPosition>, RunError> {
        let setup = self
            .generation
            .is_none()
            .then(|| Arc::clone(&self.projection));
        let (tenant, name) = (self.store.tenant.clone(), self.name.clone());
        let stored = self
            .on_writer(move |conn| {
                let store_error = |e| RunError::store(&name, backend(e));
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(store_error)?;
                if let Some(projection) = setup {
                    run_setup(&mut *lock(&projection), &name, &tx)
                        .map_err(|e| RunError::store(&name, StoreError::backend(e)))?;
                }
                let stored = checkpoint::load(&tx, &tenant, &name).map_err(store_error)?;
                tx.commit().map_err(store_error)?;
                Ok(stored)
            })
            .await?;
        let found = stored.map_or(0, |s| s.generation);
        match self.generation {
            Some(started) if started != found => {
                return Err(RunError::switched(&self.name, started, found));
            }
            _ => self.generation = Some(found),
        }
        Ok(stored.map(|s| s.position))
    }

    async fn handle(
        &mut self,
        from: Option<GlobalPosition>,
        events: &[RecordedEvent],
        through: GlobalPosition,
    ) -> Result<(), RunError> {
        let generation = match self.generation {
            Some(generation) => generation,
            None => {
                self.checkpoint().await?;
                self.generation.unwrap_or_default()
            }
        };
        // Decoding here, on the caller's thread, keeps the writer thread free for appends.
        let mut decoded = Vec::with_capacity(events.len());
        for record in events {
            if let Some(event) = decode::<P::Event>(&self.name, record, P::UNKNOWN_EVENTS)? {
                decoded.push((event, record.clone()));
            }
        }
        let projection = Arc::clone(&self.projection);
        let (tenant, name) = (self.store.tenant.clone(), self.name.clone());
        self.on_writer(move |conn| {
            let store_error = |e| RunError::store(&name, backend(e));
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            let stored = checkpoint::load(&tx, &tenant, &name).map_err(store_error)?;
            let found = stored.map_or(0, |s| s.generation);
            if found != generation {
                return Err(RunError::switched(&name, generation, found));
            }
            let at = stored.map(|s| s.position);
            if at != from {
                return Err(RunError::fenced(&name, from, at));
            }
            let mut projection = lock(&projection);
            apply_batch(&mut *projection, &name, &tx, decoded)?;
            checkpoint::save(&tx, &tenant, &name, through).map_err(store_error)?;
            tx.commit().map_err(store_error)
        })
        .await
    }
}

/// See [`SwitchReadModel`] for the contract, the same on every SQL backend. Here the switch
/// is one `IMMEDIATE` transaction on the writer thread, between appends, and an index is
/// renamed by creating it again under its new name (SQLite cannot rename one).
///
/// ```
/// use eventsrc::{CheckpointStore, GlobalPosition, SwitchReadModel};
/// use eventsrc_sqlite::SqliteEventStore;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = SqliteEventStore::open_in_memory().await?;
/// store
///     .write_with(|tx| {
///         tx.execute_batch(
///             "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT);
///              CREATE TABLE users_new (id TEXT PRIMARY KEY, email TEXT);
///              CREATE INDEX users_new_email ON users_new (email);",
///         )
///     })
///     .await?;
/// store.save_checkpoint("users_rebuild", GlobalPosition::new(0, 3)).await?;
/// store
///     .switch_read_model("users_rebuild", "users", "DROP TABLE users; ALTER TABLE users_new RENAME TO users")
///     .await?;
/// let index: String = store
///     .read_with(|db| db.query_row("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' AND sql IS NOT NULL", [], |r| r.get(0)))
///     .await?;
/// assert_eq!(index, "users_email");
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl SwitchReadModel for SqliteEventStore {
    async fn switch_read_model(
        &self,
        rebuilt: &str,
        live: &str,
        swap: &str,
    ) -> Result<GlobalPosition, StoreError> {
        let (tenant, rebuilt, live) = (self.tenant.clone(), rebuilt.to_owned(), live.to_owned());
        let (from, to, swap) = (rebuilt.clone(), live.clone(), swap.to_owned());
        let switched = self
            .write_with(move |tx| {
                let Some(built) = checkpoint::load(tx, &tenant, &rebuilt)? else {
                    // Nothing was changed: committing this transaction writes nothing.
                    return Ok(None);
                };
                let before = indexes(tx)?;
                tx.execute_batch(&swap)?;
                rename_indexes(tx, &before)?;
                let generation =
                    checkpoint::load(tx, &tenant, &live)?.map_or(0, |stored| stored.generation) + 1;
                let moved = checkpoint::Stored {
                    position: built.position,
                    generation,
                };
                checkpoint::replace(tx, &tenant, &live, moved)?;
                if rebuilt != live {
                    checkpoint::delete(tx, &tenant, &rebuilt)?;
                }
                Ok::<_, rusqlite::Error>(Some((built.position, generation)))
            })
            .await?;
        let Some((position, generation)) = switched else {
            return Err(StoreError::NotBuilt {
                rebuilt: from,
                live: to,
            });
        };
        tracing::info!(rebuilt = %from, live = %to, %position, generation, "switched in a rebuilt read model");
        Ok(position)
    }
}

/// An index of the database that SQL created (not one SQLite made for a constraint, which
/// follows its table's name by itself).
struct Index {
    name: String,
    table: String,
    sql: String,
}

/// Every index created with `CREATE INDEX`.
fn indexes(tx: &Transaction<'_>) -> rusqlite::Result<Vec<Index>> {
    tx.prepare(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )?
    .query_map([], |row| {
        Ok(Index {
            name: row.get(0)?,
            table: row.get(1)?,
            sql: row.get(2)?,
        })
    })?
    .collect()
}

/// After a swap, gives the indexes of each table the swap renamed their table's new name:
/// `<old table>_rest` becomes `<new table>_rest`, by creating the index again (SQLite has no
/// `ALTER INDEX ... RENAME`). A name another renamed index gives up is free for the next pass,
/// so the order of the indexes does not matter.
fn rename_indexes(tx: &Transaction<'_>, before: &[Index]) -> rusqlite::Result<()> {
    let mut pending: Vec<(Index, String)> = Vec::new();
    for index in indexes(tx)? {
        let Some(old) = before.iter().find(|b| b.name == index.name) else {
            continue;
        };
        if old.table == index.table {
            continue;
        }
        if let Some(rest) = index.name.strip_prefix(&format!("{}_", old.table)) {
            let renamed = format!("{}_{rest}", index.table);
            pending.push((index, renamed));
        }
    }
    loop {
        let mut kept = Vec::new();
        let before = pending.len();
        for (index, renamed) in pending {
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = ?1 COLLATE NOCASE)",
                [&renamed],
                |row| row.get(0),
            )?;
            match with_name(&index.sql, &renamed) {
                Some(create) if !taken => {
                    tx.execute_batch(&format!("DROP INDEX {}", quote_ident(&index.name)))?;
                    tx.execute_batch(&create)?;
                }
                _ => kept.push((index, renamed)),
            }
        }
        pending = kept;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    for (index, renamed) in pending {
        tracing::warn!(
            table = %index.table,
            kept = %index.name,
            wanted = %renamed,
            "a switched read model's index keeps its name: the new one is taken, or its statement names a schema"
        );
    }
    Ok(())
}

/// A `CREATE [UNIQUE] INDEX name ...` statement as SQLite keeps it, with another name.
fn with_name(sql: &str, name: &str) -> Option<String> {
    let upper = sql.to_ascii_uppercase();
    let prefix = ["CREATE INDEX ", "CREATE UNIQUE INDEX "]
        .into_iter()
        .find(|prefix| upper.starts_with(prefix))?;
    let mut start = prefix.len();
    if upper[start..].starts_with("IF NOT EXISTS ") {
        start += "IF NOT EXISTS ".len();
    }
    let written = &sql[start..];
    let end = match written.chars().next()? {
        open @ ('"' | '`' | '[' | '\'') => {
            let close = if open == '[' { ']' } else { open };
            // A doubled closing quote stands for itself inside the name.
            let mut chars = written.char_indices().skip(1).peekable();
            loop {
                let (at, c) = chars.next()?;
                if c == close {
                    if close != ']' && chars.peek().is_some_and(|&(_, next)| next == close) {
                        chars.next();
                        continue;
                    }
                    break at + c.len_utf8();
                }
            }
        }
        _ => written
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(written.len()),
    };
    // A schema-qualified name (`main.users_new_email`) is not rewritten.
    if written[end..].starts_with('.') {
        return None;
    }
    Some(format!(
        "{}{}{}",
        &sql[..start],
        quote_ident(name),
        &written[end..]
    ))
}

/// `name` as an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
