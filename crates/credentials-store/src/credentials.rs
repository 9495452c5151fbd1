//! Credential rows. Every change that touches more than one row, or a row and the audit log,
//! runs in one transaction.

use crate::rows::{self, CREDENTIAL_COLUMNS, ENVELOPE_COLUMNS};
use crate::{Result, Store, StoreError, audit};
use credentials_core::{
    Category,
    model::{Credential, ListCursor, ListFilter, NewAuditEvent},
    payload::Envelope,
};
use deadpool_postgres::GenericClient;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// A credential to insert, its value already sealed.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// Its id (chosen before sealing: it is part of the encryption context).
    pub id: Uuid,
    /// The workspace.
    pub workspace_id: String,
    /// Display name.
    pub name: String,
    /// The type's category.
    pub category: Category,
    /// The type id.
    pub type_id: String,
    /// Free text.
    pub description: String,
    /// The preview computed from the plaintext before sealing.
    pub masked_content: String,
    /// Make it the default for its type in the same transaction.
    pub make_default: bool,
    /// The sealed value.
    pub envelope: Envelope,
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct CredentialChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new sealed value and its preview.
    pub value: Option<(Envelope, String)>,
}

/// Serializes default changes per workspace and type, so concurrent set-default calls apply one
/// after the other instead of colliding on the unique index.
async fn lock_defaults(
    client: &impl GenericClient,
    workspace_id: &str,
    type_id: &str,
) -> Result<()> {
    let statement = client
        .prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
        .await?;
    client
        .execute(&statement, &[&workspace_id, &type_id])
        .await?;
    Ok(())
}

/// Clears the live default of a type other than `keep`; returns the id it was on.
async fn clear_default(
    client: &impl GenericClient,
    workspace_id: &str,
    type_id: &str,
    keep: Uuid,
) -> Result<Option<Uuid>> {
    let statement = client
        .prepare_cached(
            "UPDATE credentials SET is_default = false, updated_at = now(), revision = revision + 1 \
             WHERE workspace_id = $1 AND type_id = $2 AND is_default AND deleted_at IS NULL \
             AND id <> $3 RETURNING id",
        )
        .await?;
    let row = client
        .query_opt(&statement, &[&workspace_id, &type_id, &keep])
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

const INSERT_CREDENTIAL: &str = "INSERT INTO credentials (id, workspace_id, name, category, \
    type_id, description, masked_content, is_default, ciphertext, nonce, wrapped_key, \
    master_key_id, master_key_version, payload_format, value_generation) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// Runs a single-statement change together with its audit event: `change` is an `INSERT` or
/// `UPDATE` of `credentials` with `params`; the audit row is inserted from the changed row in
/// the same statement, so both commit together without BEGIN/COMMIT round trips. Returns the
/// changed credential, or `None` when the change matched no row.
pub(crate) async fn change_with_audit(
    client: &impl GenericClient,
    change: &str,
    params: &[Param<'_>],
    audit_event: &NewAuditEvent,
) -> Result<Option<Credential>> {
    let n = params.len();
    let statement = client
        .prepare_cached(&format!(
            "WITH c AS ({change} RETURNING {CREDENTIAL_COLUMNS}), \
             a AS (INSERT INTO audit_events ({}) \
             SELECT workspace_id, id, ${}, ${}, ${}, ${}, ${} FROM c) \
             SELECT * FROM c",
            crate::audit::audit_columns!(),
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5
        ))
        .await?;
    let (action, outcome) = (audit_event.action.code(), audit_event.outcome.code());
    let mut all: Vec<Param<'_>> = params.to_vec();
    all.extend([
        &audit_event.actor as Param<'_>,
        &action,
        &outcome,
        &audit_event.status_code,
        &audit_event.request_id,
    ]);
    client
        .query_opt(&statement, &all)
        .await?
        .map(|row| rows::credential(&row))
        .transpose()
}

/// Why a conditional change touched no row: the credential is missing (or deleted, or in
/// another workspace), its revision moved on, or (with the revision as expected, or none given)
/// its value was written meanwhile.
async fn why_not_changed(
    client: &impl GenericClient,
    workspace_id: &str,
    id: Uuid,
    expected_revision: Option<i64>,
) -> Result<StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT revision FROM credentials \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .await?;
    let row = client.query_opt(&statement, &[&workspace_id, &id]).await?;
    let revision: Option<i64> = row.map(|r| r.try_get(0)).transpose()?;
    Ok(match (revision, expected_revision) {
        (None, _) => StoreError::NotFound,
        (Some(now), Some(expected)) if now != expected => StoreError::EtagMismatch,
        (Some(_), _) => StoreError::ValueRaced,
    })
}

fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The cursor just after `credential` in a listing.
pub fn cursor_after(credential: &Credential) -> ListCursor {
    ListCursor {
        created_at_micros: micros(credential.created_at),
        id: credential.id,
    }
}

impl Store {
    /// Inserts a credential (and, if asked, makes it the default) with its audit event.
    pub async fn insert_credential(
        &self,
        new: &NewCredential,
        audit_event: &NewAuditEvent,
    ) -> Result<Credential> {
        let e = &new.envelope;
        let version = i32::try_from(e.master_key_version)
            .map_err(|_| StoreError::Corrupt("master_key_version"))?;
        let category = new.category.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 15] = [
            &new.id,
            &new.workspace_id,
            &new.name,
            &category,
            &new.type_id,
            &new.description,
            &new.masked_content,
            &new.make_default,
            &e.ciphertext,
            &e.nonce,
            &e.wrapped_key,
            &e.master_key_id,
            &version,
            &e.payload_format,
            &e.value_generation,
        ];
        let mut conn = self.conn().await?;
        if !new.make_default {
            // One statement, inside BEGIN (pipelined with it) and COMMIT: abandoned before
            // the COMMIT, it cannot commit (see `conn`).
            let inserted = conn
                .begin_with(async {
                    change_with_audit(&*conn, INSERT_CREDENTIAL, &params, audit_event)
                        .await?
                        .ok_or(StoreError::Corrupt("an insert returned no row"))
                })
                .await?;
            conn.commit().await?;
            return Ok(inserted);
        }
        conn.mark_dirty();
        let marks = conn.marks();
        let tx = conn.transaction().await?;
        lock_defaults(&tx, &new.workspace_id, &new.type_id).await?;
        clear_default(&tx, &new.workspace_id, &new.type_id, new.id).await?;
        let statement = tx
            .prepare_cached(&format!(
                "{INSERT_CREDENTIAL} RETURNING {CREDENTIAL_COLUMNS}"
            ))
            .await?;
        let row = tx.query_one(&statement, &params).await?;
        let credential = rows::credential(&row)?;
        audit::insert(&tx, audit_event).await?;
        marks.mark_committing();
        tx.commit().await?;
        conn.mark_clean();
        Ok(credential)
    }

    /// A credential of the workspace, live or deleted.
    pub async fn get_credential(&self, workspace_id: &str, id: Uuid) -> Result<Credential> {
        let conn = self.pool.get().await?;
        let statement = conn
            .prepare_cached(&format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE workspace_id = $1 AND id = $2"
            ))
            .await?;
        let row = conn
            .query_opt(&statement, &[&workspace_id, &id])
            .await?
            .ok_or(StoreError::NotFound)?;
        rows::credential(&row)
    }

    /// A live credential of the workspace with its sealed value.
    pub async fn get_sealed(&self, workspace_id: &str, id: Uuid) -> Result<(Credential, Envelope)> {
        self.fetch_sealed(
            "workspace_id = $1 AND id = $2",
            &[&workspace_id, &id],
            StoreError::NotFound,
        )
        .await
    }

    /// The workspace's live default for a type, with its sealed value.
    pub async fn get_default_sealed(
        &self,
        workspace_id: &str,
        type_id: &str,
    ) -> Result<(Credential, Envelope)> {
        self.fetch_sealed(
            "workspace_id = $1 AND type_id = $2 AND is_default",
            &[&workspace_id, &type_id],
            StoreError::NoDefault,
        )
        .await
    }

    /// The one live credential matching `condition`, with its sealed value; `missing` if none.
    async fn fetch_sealed(
        &self,
        condition: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        missing: StoreError,
    ) -> Result<(Credential, Envelope)> {
        let conn = self.pool.get().await?;
        let statement = conn
            .prepare_cached(&format!(
                "SELECT {CREDENTIAL_COLUMNS}, {ENVELOPE_COLUMNS} FROM credentials \
                 WHERE {condition} AND deleted_at IS NULL"
            ))
            .await?;
        let row = conn.query_opt(&statement, params).await?.ok_or(missing)?;
        let credential = rows::credential(&row)?;
        let envelope = rows::envelope(&row, &credential)?;
        Ok((credential, envelope))
    }

    /// A page of the workspace's credentials, newest first, after `cursor`. Returns at most
    /// `limit` credentials and the cursor of the next page when there is one.
    pub async fn list_credentials(
        &self,
        workspace_id: &str,
        filter: &ListFilter,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<(Vec<Credential>, Option<ListCursor>)> {
        let conn = self.pool.get().await?;
        let category = filter.category.map(Category::as_str);
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        // Two statements rather than one with "cursor IS NULL OR ...", so each keeps a plan
        // that walks the (workspace_id, created_at, id) index.
        let rows = match cursor {
            None => {
                let statement = conn
                    .prepare_cached(&format!(
                        "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE workspace_id = $1 \
                         AND ($2::text IS NULL OR category = $2) AND ($3::text IS NULL OR type_id = $3) \
                         AND ($4 OR deleted_at IS NULL) \
                         ORDER BY created_at DESC, id DESC LIMIT $5"
                    ))
                    .await?;
                conn.query(
                    &statement,
                    &[
                        &workspace_id,
                        &category,
                        &filter.type_id,
                        &filter.show_deleted,
                        &fetch,
                    ],
                )
                .await?
            }
            Some(cursor) => {
                let after = UNIX_EPOCH
                    + Duration::from_micros(u64::try_from(cursor.created_at_micros).unwrap_or(0));
                let statement = conn
                    .prepare_cached(&format!(
                        "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE workspace_id = $1 \
                         AND ($2::text IS NULL OR category = $2) AND ($3::text IS NULL OR type_id = $3) \
                         AND ($4 OR deleted_at IS NULL) AND (created_at, id) < ($5, $6) \
                         ORDER BY created_at DESC, id DESC LIMIT $7"
                    ))
                    .await?;
                conn.query(
                    &statement,
                    &[
                        &workspace_id,
                        &category,
                        &filter.type_id,
                        &filter.show_deleted,
                        &after,
                        &cursor.id,
                        &fetch,
                    ],
                )
                .await?
            }
        };
        let mut credentials = rows
            .iter()
            .map(rows::credential)
            .collect::<Result<Vec<_>>>()?;
        let next = if credentials.len() > limit {
            credentials.truncate(limit);
            credentials.last().map(cursor_after)
        } else {
            None
        };
        Ok((credentials, next))
    }

    /// Changes a live credential's name, description and/or value, checking the etag.
    /// A new value resets the validation state: it has not been checked.
    pub async fn update_credential(
        &self,
        workspace_id: &str,
        id: Uuid,
        expected_revision: Option<i64>,
        changes: &CredentialChanges,
        audit_event: &NewAuditEvent,
    ) -> Result<Credential> {
        let (envelope, masked) = match &changes.value {
            Some((e, masked)) => (Some(e), Some(masked)),
            None => (None, None),
        };
        let version = envelope
            .map(|e| i32::try_from(e.master_key_version))
            .transpose()
            .map_err(|_| StoreError::Corrupt("master_key_version"))?;
        let ciphertext = envelope.map(|e| &e.ciphertext);
        let nonce = envelope.map(|e| &e.nonce);
        let wrapped = envelope.map(|e| &e.wrapped_key);
        let key_id = envelope.map(|e| &e.master_key_id);
        let format = envelope.map(|e| e.payload_format);
        let generation = envelope.map(|e| e.value_generation);
        let params: [Param<'_>; 13] = [
            &workspace_id,
            &id,
            &changes.name,
            &changes.description,
            &masked,
            &ciphertext,
            &nonce,
            &wrapped,
            &key_id,
            &version,
            &format,
            &expected_revision,
            &generation,
        ];
        let conn = self.conn().await?;
        // One statement: the row lock, the etag check (a concurrent update with the same etag
        // re-checks the WHERE after the first commits, and misses), the change and the audit
        // event commit together. A new value was sealed for the generation after the one read
        // (it is in its encryption context), so it lands only on that generation: a value
        // written meanwhile (by a client or the sweep's format upgrade) makes it miss.
        let changed = conn
            .begin_with(change_with_audit(
                &*conn,
                "UPDATE credentials SET \
             name = COALESCE($3, name), description = COALESCE($4, description), \
             masked_content = COALESCE($5, masked_content), \
             ciphertext = COALESCE($6, ciphertext), nonce = COALESCE($7, nonce), \
             wrapped_key = COALESCE($8, wrapped_key), master_key_id = COALESCE($9, master_key_id), \
             master_key_version = COALESCE($10, master_key_version), \
             payload_format = COALESCE($11, payload_format), \
             value_generation = COALESCE($13, value_generation), \
             validation_state = CASE WHEN $6::bytea IS NULL THEN validation_state ELSE 0 END, \
             validation_outcome = CASE WHEN $6::bytea IS NULL THEN validation_outcome ELSE 0 END, \
             validation_message = CASE WHEN $6::bytea IS NULL THEN validation_message ELSE '' END, \
             validated_at = CASE WHEN $6::bytea IS NULL THEN validated_at ELSE NULL END, \
             updated_at = now(), revision = revision + 1 \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL \
             AND ($12::bigint IS NULL OR revision = $12) \
             AND ($13::bigint IS NULL OR value_generation = $13 - 1)",
                &params,
                audit_event,
            ))
            .await?;
        let Some(credential) = changed else {
            let why = why_not_changed(&*conn, workspace_id, id, expected_revision).await;
            conn.rollback().await;
            return Err(match why? {
                StoreError::ValueRaced if envelope.is_none() => StoreError::EtagMismatch,
                other => other,
            });
        };
        conn.commit().await?;
        Ok(credential)
    }

    /// Soft-deletes a live credential and destroys its secret: the ciphertext, nonce and wrapped
    /// data key are set to NULL, and the masked preview emptied, in the same statement that
    /// marks it deleted.
    pub async fn delete_credential(
        &self,
        workspace_id: &str,
        id: Uuid,
        expected_revision: Option<i64>,
        audit_event: &NewAuditEvent,
    ) -> Result<Credential> {
        let conn = self.conn().await?;
        let changed = conn
            .begin_with(change_with_audit(
                &*conn,
                "UPDATE credentials SET deleted_at = now(), updated_at = now(), \
             revision = revision + 1, is_default = false, masked_content = '', \
             ciphertext = NULL, nonce = NULL, wrapped_key = NULL, master_key_id = NULL, \
             master_key_version = NULL, payload_format = NULL, \
             schema_document = NULL, schema_discovered_at = NULL \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL \
             AND ($3::bigint IS NULL OR revision = $3)",
                &[&workspace_id, &id, &expected_revision],
                audit_event,
            ))
            .await?;
        let Some(credential) = changed else {
            let why = why_not_changed(&*conn, workspace_id, id, expected_revision).await;
            conn.rollback().await;
            return Err(match why? {
                // Without a value there is no generation to race on: a miss is the etag.
                StoreError::ValueRaced => StoreError::EtagMismatch,
                other => other,
            });
        };
        conn.commit().await?;
        Ok(credential)
    }

    /// Makes a live credential the default for its type; the previous default stops being one
    /// in the same transaction. Returns the credential and the previous default's id.
    pub async fn set_default(
        &self,
        workspace_id: &str,
        id: Uuid,
        audit_event: &NewAuditEvent,
    ) -> Result<(Credential, Option<Uuid>)> {
        let mut conn = self.conn().await?;
        conn.mark_dirty();
        let marks = conn.marks();
        let tx = conn.transaction().await?;
        let type_statement = tx
            .prepare_cached(
                "SELECT type_id FROM credentials \
                 WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .await?;
        let type_id: String = tx
            .query_opt(&type_statement, &[&workspace_id, &id])
            .await?
            .ok_or(StoreError::NotFound)?
            .try_get(0)?;
        lock_defaults(&tx, workspace_id, &type_id).await?;
        let previous = clear_default(&tx, workspace_id, &type_id, id).await?;
        // Checked again under the lock: a concurrent delete may have won.
        let statement = tx
            .prepare_cached(&format!(
                "UPDATE credentials SET \
                 is_default = true, updated_at = CASE WHEN is_default THEN updated_at ELSE now() END, \
                 revision = CASE WHEN is_default THEN revision ELSE revision + 1 END \
                 WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL \
                 RETURNING {CREDENTIAL_COLUMNS}"
            ))
            .await?;
        let row = tx
            .query_opt(&statement, &[&workspace_id, &id])
            .await?
            .ok_or(StoreError::NotFound)?;
        let credential = rows::credential(&row)?;
        audit::insert(&tx, audit_event).await?;
        marks.mark_committing();
        tx.commit().await?;
        conn.mark_clean();
        Ok((credential, previous))
    }
}
