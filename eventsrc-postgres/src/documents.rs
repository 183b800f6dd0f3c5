//! Document views ([`DocumentStore`]) in the store's schema: `jsonb` documents and their
//! indexed values, each batch written in one transaction that locks the view's checkpoint row
//! (`SELECT ... FOR UPDATE`), checks it, writes the documents and moves the checkpoint.

use eventsrc_core::backend::{DocumentCommit, DocumentStore, DocumentWrite, Select};
use eventsrc_core::{GlobalPosition, StoreError};

use crate::{PgEventStore, backend, checkpoint};

/// The SQL of documents, with the schema filled in once.
pub(crate) struct DocumentSql {
    /// `$1` tenant, `$2` view, `$3` ids.
    load: String,
    /// `$1` tenant, `$2` view, `$3` prefix.
    prefix: String,
    /// `$1` tenant, `$2` view, `$3` field, `$4` value.
    index: String,
    /// Removes the indexed values of `$3` ids.
    unindex: String,
    /// Removes the documents `$3` ids.
    delete: String,
    /// Upserts `$3` ids with `$4` bodies.
    put: String,
    /// Inserts `$3` fields, `$4` values, `$5` ids.
    reindex: String,
}

impl DocumentSql {
    pub(crate) fn new(schema: &str) -> Self {
        Self {
            load: format!(
                "SELECT id, body::text FROM {schema}.documents \
                 WHERE tenant = $1 AND view = $2 AND id = ANY($3::text[])"
            ),
            prefix: format!(
                "SELECT id, body::text FROM {schema}.documents \
                 WHERE tenant = $1 AND view = $2 AND id >= $3::text AND starts_with(id, $3::text) \
                 ORDER BY id"
            ),
            index: format!(
                "SELECT d.id, d.body::text FROM {schema}.document_index i \
                 JOIN {schema}.documents d ON d.tenant = i.tenant AND d.view = i.view AND d.id = i.id \
                 WHERE i.tenant = $1 AND i.view = $2 AND i.field = $3 AND i.value = $4 \
                 ORDER BY i.id"
            ),
            unindex: format!(
                "DELETE FROM {schema}.document_index \
                 WHERE tenant = $1 AND view = $2 AND id = ANY($3::text[])"
            ),
            delete: format!(
                "DELETE FROM {schema}.documents \
                 WHERE tenant = $1 AND view = $2 AND id = ANY($3::text[])"
            ),
            put: format!(
                "INSERT INTO {schema}.documents (tenant, view, id, body) \
                 SELECT $1, $2, w.id, w.body::jsonb FROM unnest($3::text[], $4::text[]) AS w (id, body) \
                 ON CONFLICT (tenant, view, id) DO UPDATE SET body = excluded.body"
            ),
            reindex: format!(
                "INSERT INTO {schema}.document_index (tenant, view, field, value, id) \
                 SELECT $1, $2, w.field, w.value, w.id \
                 FROM unnest($3::text[], $4::text[], $5::text[]) AS w (field, value, id) \
                 ON CONFLICT DO NOTHING"
            ),
        }
    }
}

/// Documents in PostgreSQL, for runners on many nodes: a batch's transaction locks the view's
/// checkpoint row first, so two nodes handling the same batch take turns and the second is
/// fenced; the documents and the checkpoint commit together (exactly once). A batch is four
/// statements whatever its size: one per kind of write, each taking arrays.
impl DocumentStore for PgEventStore {
    async fn load_documents(
        &self,
        view: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.sql.documents.load)
            .await
            .map_err(backend)?;
        let rows = client
            .query(&statement, &[&self.tenant.as_str(), &view, &ids])
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(backend)
    }

    async fn query_documents(
        &self,
        view: &str,
        select: Select<'_>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let sql = &self.shared.sql.documents;
        let client = self.client().await?;
        let tenant = self.tenant.as_str();
        let rows = match select {
            Select::Prefix(prefix) => {
                let statement = client.prepare_cached(&sql.prefix).await.map_err(backend)?;
                client.query(&statement, &[&tenant, &view, &prefix]).await
            }
            Select::Index { field, value } => {
                let statement = client.prepare_cached(&sql.index).await.map_err(backend)?;
                client
                    .query(&statement, &[&tenant, &view, &field, &value])
                    .await
            }
        }
        .map_err(backend)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(backend)
    }

    async fn commit_documents(
        &self,
        view: &str,
        from: Option<GlobalPosition>,
        through: GlobalPosition,
        writes: Vec<DocumentWrite>,
    ) -> Result<DocumentCommit, StoreError> {
        let sql = &self.shared.sql;
        let tenant = self.tenant.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let locked = checkpoint::lock_or_create(&tx, &sql.checkpoint, tenant, view)
            .await
            .map_err(backend)?;
        let (stored, _) = checkpoint::state(locked.as_ref()).map_err(backend)?;
        if stored != from {
            tx.rollback().await.map_err(backend)?;
            return Ok(DocumentCommit::Fenced { stored });
        }
        let written: Vec<&str> = writes.iter().map(|w| w.id.as_str()).collect();
        let (mut put_ids, mut bodies, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
        let (mut fields, mut values, mut indexed) = (Vec::new(), Vec::new(), Vec::new());
        for write in &writes {
            match &write.body {
                Some(body) => {
                    put_ids.push(write.id.as_str());
                    bodies.push(body.as_str());
                    for (field, value) in &write.index {
                        fields.push(field.as_str());
                        values.push(value.as_str());
                        indexed.push(write.id.as_str());
                    }
                }
                None => deleted.push(write.id.as_str()),
            }
        }
        let docs = &sql.documents;
        if !written.is_empty() {
            let statement = tx.prepare_cached(&docs.unindex).await.map_err(backend)?;
            tx.execute(&statement, &[&tenant, &view, &written])
                .await
                .map_err(backend)?;
        }
        if !deleted.is_empty() {
            let statement = tx.prepare_cached(&docs.delete).await.map_err(backend)?;
            tx.execute(&statement, &[&tenant, &view, &deleted])
                .await
                .map_err(backend)?;
        }
        if !put_ids.is_empty() {
            let statement = tx.prepare_cached(&docs.put).await.map_err(backend)?;
            tx.execute(&statement, &[&tenant, &view, &put_ids, &bodies])
                .await
                .map_err(backend)?;
        }
        if !fields.is_empty() {
            let statement = tx.prepare_cached(&docs.reindex).await.map_err(backend)?;
            tx.execute(&statement, &[&tenant, &view, &fields, &values, &indexed])
                .await
                .map_err(backend)?;
        }
        let (commit, sequence) = checkpoint::columns(through);
        let advance = tx
            .prepare_cached(&sql.checkpoint.advance)
            .await
            .map_err(backend)?;
        tx.execute(&advance, &[&tenant, &view, &commit, &sequence])
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(DocumentCommit::Committed)
    }
}
