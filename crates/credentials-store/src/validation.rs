//! What validation and schema discovery store on a credential.

use crate::credentials::change_with_audit;
use crate::{Result, Store, StoreError};
use credentials_core::model::{Credential, NewAuditEvent, Validation};
use std::time::SystemTime;
use uuid::Uuid;

impl Store {
    /// Stores the outcome of a validation on a live credential, with its audit event (one
    /// statement). The value
    /// is not touched, so the revision (and etag) stays.
    pub async fn record_validation(
        &self,
        workspace_id: &str,
        id: Uuid,
        validation: &Validation,
        audit_event: &NewAuditEvent,
    ) -> Result<Credential> {
        let conn = self.conn().await?;
        // Commits by itself: once sent, its outcome is unknown until it answers.
        conn.mark_autocommit();
        let changed = change_with_audit(
            &*conn,
            "UPDATE credentials SET validation_state = $3, validation_outcome = $4, \
             validation_message = $5, validated_at = $6 \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
            &[
                &workspace_id,
                &id,
                &validation.state.code(),
                &validation.outcome.code(),
                &validation.message,
                &validation.checked_at,
            ],
            audit_event,
        )
        .await;
        conn.mark_clean();
        changed?.ok_or(StoreError::NotFound)
    }

    /// Stores a discovered schema (a JSON document) on a live credential, with its audit event.
    pub async fn save_schema(
        &self,
        workspace_id: &str,
        id: Uuid,
        schema: &serde_json::Value,
        discovered_at: SystemTime,
        audit_event: &NewAuditEvent,
    ) -> Result<Credential> {
        let conn = self.conn().await?;
        // Commits by itself: once sent, its outcome is unknown until it answers.
        conn.mark_autocommit();
        let changed = change_with_audit(
            &*conn,
            "UPDATE credentials SET schema_document = $3, schema_discovered_at = $4 \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
            &[&workspace_id, &id, schema, &discovered_at],
            audit_event,
        )
        .await;
        conn.mark_clean();
        changed?.ok_or(StoreError::NotFound)
    }

    /// A credential's stored schema and when it was discovered; `None` without one.
    pub async fn get_schema(
        &self,
        workspace_id: &str,
        id: Uuid,
    ) -> Result<Option<(serde_json::Value, SystemTime)>> {
        let conn = self.pool.get().await?;
        let statement = conn
            .prepare_cached(
                "SELECT deleted_at IS NOT NULL, schema_document, schema_discovered_at \
                 FROM credentials WHERE workspace_id = $1 AND id = $2",
            )
            .await?;
        let row = conn
            .query_opt(&statement, &[&workspace_id, &id])
            .await?
            .ok_or(StoreError::NotFound)?;
        if row.try_get::<_, bool>(0)? {
            return Err(StoreError::NotFound);
        }
        let document: Option<serde_json::Value> = row.try_get(1)?;
        let at: Option<SystemTime> = row.try_get(2)?;
        Ok(document.zip(at))
    }
}
