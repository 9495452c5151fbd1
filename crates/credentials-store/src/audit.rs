use crate::{Result, Store, StoreError};
use credentials_core::model::{AuditAction, AuditEvent, AuditOutcome, NewAuditEvent};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// The columns every audit INSERT fills, in the order of [`NewAuditEvent`]'s parameters: the
/// single statement of a change, the group commit and the plain insert all name them here.
macro_rules! audit_columns {
    () => {
        "workspace_id, credential_id, actor, action, outcome, status_code, request_id"
    };
}
pub(crate) use audit_columns;

const INSERT: &str = concat!(
    "INSERT INTO audit_events (",
    audit_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);

/// Appends an audit event on `client` (a transaction, when it must commit with a change).
pub(crate) async fn insert(client: &impl GenericClient, event: &NewAuditEvent) -> Result<()> {
    insert_with(client, INSERT, event).await
}

/// Runs `sql`, an insert of one event's columns in the order of [`INSERT`], on `client`.
async fn insert_with(client: &impl GenericClient, sql: &str, event: &NewAuditEvent) -> Result<()> {
    let statement = client.prepare_cached(sql).await?;
    client
        .execute(
            &statement,
            &[
                &event.workspace_id,
                &event.credential_id,
                &event.actor,
                &event.action.code(),
                &event.outcome.code(),
                &event.status_code,
                &event.request_id,
            ],
        )
        .await?;
    Ok(())
}

const INSERT_SECURITY: &str = concat!(
    "INSERT INTO security_events (",
    audit_columns!(),
    ") VALUES (NULLIF($1::text, ''), $2, $3, $4, $5, $6, $7)"
);

const COLUMNS: &str = "id, coalesce(workspace_id, ''), credential_id, actor, action, outcome, \
                       status_code, request_id, occurred_at";

fn event_of(row: &tokio_postgres::Row) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: row.try_get(0)?,
        event: NewAuditEvent {
            workspace_id: row.try_get(1)?,
            credential_id: row.try_get(2)?,
            actor: row.try_get(3)?,
            action: AuditAction::from_code(row.try_get(4)?)
                .ok_or(StoreError::Corrupt("audit action"))?,
            outcome: AuditOutcome::from_code(row.try_get(5)?)
                .ok_or(StoreError::Corrupt("audit outcome"))?,
            status_code: row.try_get(6)?,
            request_id: row.try_get(7)?,
        },
        time: row.try_get(8)?,
    })
}

impl Store {
    /// Appends an event to the security log, the log of no workspace: refusals of callers
    /// acting outside their token's workspaces and platform-wide operations. An empty
    /// `workspace_id` is stored as none. Rare, so written on its own rather than grouped.
    pub async fn record_security_event(&self, event: &NewAuditEvent) -> Result<()> {
        let conn = self.conn().await?;
        conn.mark_autocommit();
        let written = insert_with(&*conn, INSERT_SECURITY, event).await;
        conn.mark_clean();
        written
    }

    /// Security-log events, newest first, older than `before_id` when given.
    pub async fn list_security_events(
        &self,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let conn = self.pool.get().await?;
        let statement = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM security_events \
                 WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
            ))
            .await?;
        let rows = conn.query(&statement, &[&before_id, &limit]).await?;
        rows.iter().map(event_of).collect()
    }

    /// Appends an audit event on its own (for actions that change no row, e.g. an access).
    /// Returns once the event is committed; concurrent events share one commit.
    pub async fn record_audit(&self, event: &NewAuditEvent) -> Result<()> {
        self.audit.write(event.clone()).await
    }

    /// A workspace's audit events, newest first, optionally of one credential, older than
    /// `before_id` when given.
    pub async fn list_audit(
        &self,
        workspace_id: &str,
        credential_id: Option<Uuid>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let conn = self.pool.get().await?;
        let statement = conn
            .prepare_cached(
                "SELECT id, workspace_id, credential_id, actor, action, outcome, status_code, \
                 request_id, occurred_at FROM audit_events \
                 WHERE workspace_id = $1 AND ($2::uuid IS NULL OR credential_id = $2) \
                 AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
            )
            .await?;
        let rows = conn
            .query(
                &statement,
                &[&workspace_id, &credential_id, &before_id, &limit],
            )
            .await?;
        rows.iter().map(event_of).collect()
    }
}
