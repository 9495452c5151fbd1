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
