//! Group commit of audit events that stand alone (accesses): concurrent callers' events are
//! written by one multi-row INSERT in one transaction, and each caller is answered only once
//! its event is durable. There is no waiting for company: while one batch commits, the next
//! one forms from whatever arrived meanwhile, so a lone caller pays one ordinary commit and a
//! busy service pays one commit per batch instead of one per request.
//!
//! One caller's event must never fail another's request. A batch that fails for a reason in
//! the data (SQLSTATE class 22, a value the column cannot hold; class 23, a constraint such as
//! the audit table's CHECKs) is written again event by event, so only the bad event's caller
//! is refused. A transient failure (the database unreachable) fails the whole batch: every
//! event in it would fail alike, and retrying one by one would only multiply the load.
//!
//! A caller that stops waiting (its request's deadline passed, its client went away) while its
//! event is still queued withdraws it: the writer skips withdrawn events, so a request that
//! was answered with a failure leaves no event behind that commits later. One whose event was
//! already taken into a batch cannot withdraw it; its request scope then records a commit as
//! sent, and the edge answers that the outcome is unknown (see `conn`).

use crate::{RequestScope, Result, StoreError};
use credentials_core::model::NewAuditEvent;
use deadpool_postgres::Pool;
use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};
use tokio::sync::{mpsc, oneshot};

/// Most events written by one statement.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<(), String>>;

/// An event waiting in the queue.
const QUEUED: u8 = 0;
/// An event in a batch being written.
const TAKEN: u8 = 1;
/// An event its caller withdrew before the writer took it.
const WITHDRAWN: u8 = 2;

/// Where a queued event stands, shared by its caller and the writer.
type Claim = Arc<AtomicU8>;

/// Withdraws the event when the caller stops waiting before its answer.
struct Withdraw {
    claim: Claim,
    scope: Option<RequestScope>,
    armed: bool,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let withdrawn = self
            .claim
            .compare_exchange(QUEUED, WITHDRAWN, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if !withdrawn && let Some(scope) = &self.scope {
            // Taken into a batch: it may commit.
            scope.set_commit_sent();
        }
    }
}

/// The handle callers use; cheap to clone.
#[derive(Clone)]
pub(crate) struct AuditWriter {
    queue: mpsc::Sender<(NewAuditEvent, Reply, Claim)>,
}

impl AuditWriter {
    /// Starts the writer task on the current runtime.
    pub(crate) fn spawn(pool: Pool) -> Self {
        let (queue, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(pool, rx));
        Self { queue }
    }

    /// Writes `event`, returning once it is committed.
    pub(crate) async fn write(&self, event: NewAuditEvent) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        let claim = Claim::default();
        let mut withdraw = Withdraw {
            claim: claim.clone(),
            scope: RequestScope::current(),
            armed: true,
        };
        self.queue
            .send((event, reply, claim))
            .await
            .map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?;
        let answer = answer.await;
        withdraw.armed = false;
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Unavailable(reason.into())),
            Err(_) => Err(StoreError::Unavailable(
                "the audit writer has stopped".into(),
            )),
        }
    }
}

/// Takes a queued event for a batch, unless its caller withdrew it.
fn take(claim: &Claim) -> bool {
    claim
        .compare_exchange(QUEUED, TAKEN, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<(NewAuditEvent, Reply, Claim)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some((event, reply, claim)) = rx.recv().await {
        if take(&claim) {
            batch.push((event, reply));
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((event, reply, claim)) => {
                    if take(&claim) {
                        batch.push((event, reply));
                    }
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let events: Vec<&NewAuditEvent> = batch.iter().map(|(e, _)| e).collect();
        match insert(&pool, &events).await {
            Err(e) if events.len() > 1 && is_in_the_data(&e) => {
                tracing::warn!(error = %e, events = events.len(), "audit batch refused; writing its events one by one");
                for (event, reply) in batch.drain(..) {
                    let outcome = insert(&pool, &[&event]).await.map_err(|e| {
                        tracing::warn!(error = %e, request_id = event.request_id, "audit event not written");
                        e.to_string()
                    });
                    let _ = reply.send(outcome);
                }
            }
            outcome => {
                let outcome = outcome.map_err(|e| {
                    tracing::warn!(error = %e, events = events.len(), "audit batch not written");
                    e.to_string()
                });
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(outcome.clone());
                }
            }
        }
    }
}

/// Whether a failed insert was refused for what some event holds (a data exception or an
/// integrity constraint), not for the state of the database.
fn is_in_the_data(err: &StoreError) -> bool {
    match err {
        StoreError::Database(e) => e
            .code()
            .is_some_and(|code| matches!(&code.code()[..2], "22" | "23")),
        _ => false,
    }
}

async fn insert(pool: &Pool, events: &[&NewAuditEvent]) -> Result<()> {
    let conn = pool.get().await?;
    let statement = conn
        .prepare_cached(concat!(
            "INSERT INTO audit_events (",
            crate::audit::audit_columns!(),
            ") SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int2[], $5::int2[], \
             $6::text[], $7::text[])",
        ))
        .await?;
    let workspaces: Vec<&str> = events.iter().map(|e| e.workspace_id.as_str()).collect();
    let credentials: Vec<Option<uuid::Uuid>> = events.iter().map(|e| e.credential_id).collect();
    let actors: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
    let actions: Vec<i16> = events.iter().map(|e| e.action.code()).collect();
    let outcomes: Vec<i16> = events.iter().map(|e| e.outcome.code()).collect();
    let codes: Vec<&str> = events.iter().map(|e| e.status_code.as_str()).collect();
    let requests: Vec<&str> = events.iter().map(|e| e.request_id.as_str()).collect();
    // One statement is one transaction: the whole batch commits, durably, or none of it.
    conn.execute(
        &statement,
        &[
            &workspaces,
            &credentials,
            &actors,
            &actions,
            &outcomes,
            &codes,
            &requests,
        ],
    )
    .await?;
    Ok(())
}
