//! Document views ([`DocumentStore`]) in the store's own file: the `documents` and
//! `document_index` tables, each batch written in one IMMEDIATE transaction on the writer
//! thread that checks the view's checkpoint, writes the documents and moves the checkpoint.

use eventsrc_core::backend::{DocumentCommit, DocumentStore, DocumentWrite, Select};
use eventsrc_core::{GlobalPosition, StoreError, Tenant};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::{SqliteEventStore, backend, checkpoint};

/// Documents live beside the events: a view's batch is one transaction of the writer thread,
/// after the appends sent before it, so its documents and its checkpoint commit together
/// (exactly once) and a runner behind a moved checkpoint is refused before anything is written.
impl DocumentStore for SqliteEventStore {
    async fn load_documents(
        &self,
        view: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (tenant, view, ids) = (self.tenant.clone(), view.to_owned(), ids.to_vec());
        self.read(move |conn| load(conn, &tenant, &view, ids).map_err(backend))
            .await
    }

    async fn query_documents(
        &self,
        view: &str,
        select: Select<'_>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (tenant, view) = (self.tenant.clone(), view.to_owned());
        let owned = match select {
            Select::Prefix(prefix) => (None, prefix.to_owned()),
            Select::Index { field, value } => (Some(field.to_owned()), value.to_owned()),
        };
        self.read(move |conn| query(conn, &tenant, &view, owned).map_err(backend))
            .await
    }

    async fn commit_documents(
        &self,
        view: &str,
        from: Option<GlobalPosition>,
        through: GlobalPosition,
        writes: Vec<DocumentWrite>,
    ) -> Result<DocumentCommit, StoreError> {
        let (tenant, view) = (self.tenant.clone(), view.to_owned());
        self.on_writer(move |conn| {
            commit(conn, &tenant, &view, from, through, writes).map_err(backend)
        })
        .await
    }
}

fn load(
    conn: &Connection,
    tenant: &Tenant,
    view: &str,
    ids: Vec<String>,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut select = conn
        .prepare_cached("SELECT body FROM documents WHERE tenant = ?1 AND view = ?2 AND id = ?3")?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let mut rows = select.query(params![tenant.as_str(), view, id])?;
        if let Some(row) = rows.next()? {
            let body: String = row.get(0)?;
            found.push((id, body));
        }
    }
    Ok(found)
}

/// `select` as (the indexed field, or `None` for a prefix of ids; the value or the prefix).
fn query(
    conn: &Connection,
    tenant: &Tenant,
    view: &str,
    select: (Option<String>, String),
) -> rusqlite::Result<Vec<(String, String)>> {
    let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
    match select {
        // `id >= ?3` starts the scan at the prefix in the primary key; `substr` ends the match
        // (SQLite compares TEXT byte for byte, as the other stores do).
        (None, prefix) => conn
            .prepare_cached(
                "SELECT id, body FROM documents WHERE tenant = ?1 AND view = ?2 \
                 AND id >= ?3 AND substr(id, 1, length(?3)) = ?3 ORDER BY id",
            )?
            .query_map(params![tenant.as_str(), view, prefix], row)?
            .collect(),
        (Some(field), value) => conn
            .prepare_cached(
                "SELECT d.id, d.body FROM document_index i \
                 JOIN documents d ON d.tenant = i.tenant AND d.view = i.view AND d.id = i.id \
                 WHERE i.tenant = ?1 AND i.view = ?2 AND i.field = ?3 AND i.value = ?4 \
                 ORDER BY i.id",
            )?
            .query_map(params![tenant.as_str(), view, field, value], row)?
            .collect(),
    }
}

fn commit(
    conn: &mut Connection,
    tenant: &Tenant,
    view: &str,
    from: Option<GlobalPosition>,
    through: GlobalPosition,
    writes: Vec<DocumentWrite>,
) -> rusqlite::Result<DocumentCommit> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored = checkpoint::load(&tx, tenant, view)?.map(|s| s.position);
    if stored != from {
        return Ok(DocumentCommit::Fenced { stored });
    }
    {
        let tenant = tenant.as_str();
        let mut unindex = tx.prepare_cached(
            "DELETE FROM document_index WHERE tenant = ?1 AND view = ?2 AND id = ?3",
        )?;
        let mut delete =
            tx.prepare_cached("DELETE FROM documents WHERE tenant = ?1 AND view = ?2 AND id = ?3")?;
        let mut put = tx.prepare_cached(
            "INSERT INTO documents (tenant, view, id, body) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (tenant, view, id) DO UPDATE SET body = excluded.body",
        )?;
        let mut index = tx.prepare_cached(
            "INSERT INTO document_index (tenant, view, field, value, id) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )?;
        for write in &writes {
            unindex.execute(params![tenant, view, write.id])?;
            match &write.body {
                None => {
                    delete.execute(params![tenant, view, write.id])?;
                }
                Some(body) => {
                    put.execute(params![tenant, view, write.id, body])?;
                    for (field, value) in &write.index {
                        index.execute(params![tenant, view, field, value, write.id])?;
                    }
                }
            }
        }
    }
    checkpoint::save(&tx, tenant, view, through)?;
    tx.commit()?;
    Ok(DocumentCommit::Committed)
}
