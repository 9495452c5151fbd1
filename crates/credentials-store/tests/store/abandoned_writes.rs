//! A write abandoned while Postgres is slow to answer (its request's deadline passed, its
//! client went away) is cancelled and never commits afterwards; the pool stays usable.

use crate::common::{count, event, insert, migrated_db, new_credential, store_with};
use credentials_core::model::AuditAction;
use credentials_store::CredentialChanges;
use std::time::Duration;

#[tokio::test]
async fn an_update_abandoned_while_it_waits_is_cancelled_and_never_commits() {
    let db = migrated_db().await;
    let store = store_with(&db, 1);
    let created = insert(&store, &new_credential("ws", "before", "openai")).await;

    // Another session holds the row, so the update waits (as it would on a hung server).
    let blocker = db.client().await;
    blocker.batch_execute("BEGIN").await.unwrap();
    blocker
        .execute(
            "SELECT 1 FROM credentials WHERE id = $1 FOR UPDATE",
            &[&created.id],
        )
        .await
        .unwrap();
    let rename = CredentialChanges {
        name: Some("after".into()),
        ..Default::default()
    };
    let audit = event("ws", created.id, AuditAction::Update);
    let abandoned = tokio::time::timeout(
        Duration::from_millis(500),
        store.update_credential("ws", created.id, None, &rename, &audit),
    )
    .await;
    assert!(abandoned.is_err(), "the update did not wait: {abandoned:?}");

    // Its statement is cancelled: nothing waits on the lock any more.
    let waiting = "SELECT count(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let watcher = db.client().await;
    let mut still_waiting = count(&watcher, waiting).await;
    for _ in 0..100 {
        if still_waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        still_waiting = count(&watcher, waiting).await;
    }
    assert_eq!(still_waiting, 0, "the abandoned statement still waits");

    // The lock goes: the abandoned update must not apply now.
    blocker.batch_execute("COMMIT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = store.get_credential("ws", created.id).await.unwrap();
    assert_eq!(got.name, "before", "an abandoned write committed later");
    let events = count(
        &watcher,
        &format!(
            "SELECT count(*) FROM audit_events WHERE action = {}",
            AuditAction::Update.code()
        ),
    )
    .await;
    assert_eq!(events, 0, "its audit event committed later");

    // The pool (of one connection) was not left with the abandoned one.
    let renamed = store
        .update_credential("ws", created.id, None, &rename, &audit)
        .await
        .unwrap();
    assert_eq!(renamed.name, "after");
}

#[tokio::test]
async fn an_audit_event_withdrawn_while_queued_never_commits() {
    let db = migrated_db().await;
    let store = store_with(&db, 2);
    let created = insert(&store, &new_credential("ws", "k", "openai")).await;
    let watcher = db.client().await;
    let with_request =
        |id: &str| format!("SELECT count(*) FROM audit_events WHERE request_id = '{id}'");

    // The group commit's batch waits on the table (as it would on a hung server).
    let blocker = db.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut taken_event = event("ws", created.id, AuditAction::Access);
    taken_event.request_id = "req-taken".into();
    let taken_scope = credentials_store::RequestScope::new();
    let taken = tokio::spawn({
        let (store, scope) = (store.clone(), taken_scope.clone());
        async move { scope.run(store.record_audit(&taken_event)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Queued behind that batch, its caller gives up: the event is withdrawn.
    let mut queued_event = event("ws", created.id, AuditAction::Access);
    queued_event.request_id = "req-withdrawn".into();
    let queued_scope = credentials_store::RequestScope::new();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        queued_scope.clone().run(store.record_audit(&queued_event)),
    )
    .await;
    assert!(gave_up.is_err(), "the write did not wait: {gave_up:?}");
    assert!(
        !queued_scope.commit_sent(),
        "a withdrawn event reports no commit"
    );
    // The one already in the batch cannot be withdrawn: its outcome is unknown.
    taken.abort();
    assert!(taken.await.is_err());
    assert!(
        taken_scope.commit_sent(),
        "a taken event reports its commit as sent"
    );

    blocker.batch_execute("COMMIT").await.unwrap();
    let mut written = 0;
    for _ in 0..100 {
        written = count(&watcher, &with_request("req-taken")).await;
        if written == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(written, 1, "the batch taken before the stall commits");
    // A later event goes through the writer after it: by then the withdrawn one would be in.
    store
        .record_audit(&event("ws", created.id, AuditAction::Access))
        .await
        .unwrap();
    assert_eq!(
        count(&watcher, &with_request("req-withdrawn")).await,
        0,
        "a withdrawn event committed later"
    );
}
