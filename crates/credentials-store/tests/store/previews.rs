//! A deleted credential keeps no masked preview: the delete empties it, migration V4 empties
//! those of rows deleted before, and a CHECK keeps it so.

use crate::common::{WS, config, event, insert, migrated_db, new_credential, store_on};
use credentials_core::model::{AuditAction, new_credential_id};
use credentials_store::Store;
use testkit::TestDb;
use tokio_postgres::error::SqlState;

mod embedded {
    refinery::embed_migrations!("migrations");
}

const MARKER: &str = "sk-pr...Mk41";

#[tokio::test]
async fn delete_clears_the_preview() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let mut new = new_credential(WS, "x", "openai");
    new.masked_content = MARKER.to_owned();
    insert(&store, &new).await;
    let deleted = store
        .delete_credential(WS, new.id, None, &event(WS, new.id, AuditAction::Delete))
        .await
        .unwrap();
    assert_eq!(deleted.masked_content, "");
    let row = db
        .client()
        .await
        .query_one(
            "SELECT masked_content FROM credentials WHERE id = $1",
            &[&new.id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "");
}

#[tokio::test]
async fn migration_v4_clears_previews_of_rows_deleted_before() {
    let db = TestDb::empty().await;
    let mut client = db.client().await;
    embedded::migrations::runner()
        .set_target(refinery::Target::Version(2))
        .run_async(&mut client)
        .await
        .unwrap();
    let (live, deleted) = (new_credential_id(), new_credential_id());
    for (id, name, deleted_at) in [(live, "live", "NULL"), (deleted, "gone", "now()")] {
        let envelope = if deleted_at == "NULL" {
            "'\\x01', '\\x02', '\\x03', 'default', 1, 1"
        } else {
            "NULL, NULL, NULL, NULL, NULL, NULL"
        };
        client
            .execute(
                &format!(
                    "INSERT INTO credentials (id, workspace_id, name, category, type_id, \
                     masked_content, deleted_at, ciphertext, nonce, wrapped_key, master_key_id, \
                     master_key_version, payload_format) \
                     VALUES ($1, 'ws', $2, 'llm', 'openai', $3, {deleted_at}, {envelope})"
                ),
                &[&id, &name, &MARKER],
            )
            .await
            .unwrap();
    }

    let store = Store::new(&config(db.url(), 2)).unwrap();
    store.migrate().await.unwrap();
    let preview = |id| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT masked_content FROM credentials WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    assert_eq!(preview(deleted).await, "");
    assert_eq!(preview(live).await, MARKER);

    // And no later statement can give a deleted row a preview again.
    let err = client
        .execute(
            "UPDATE credentials SET masked_content = $2 WHERE id = $1",
            &[&deleted, &MARKER],
        )
        .await
        .unwrap_err();
    let err = err.as_db_error().unwrap();
    assert_eq!(err.code(), &SqlState::CHECK_VIOLATION);
    assert_eq!(
        err.constraint(),
        Some("credentials_no_preview_when_deleted")
    );
}

/// Validation messages stored before V6 were made by redacting text that held the secret: V6
/// withdraws them, and leaves the outcome and state as they were.
#[tokio::test]
async fn migration_v6_withdraws_validation_messages_made_by_redaction() {
    let db = TestDb::empty().await;
    let mut client = db.client().await;
    embedded::migrations::runner()
        .set_target(refinery::Target::Version(5))
        .run_async(&mut client)
        .await
        .unwrap();
    let (checked, unchecked) = (new_credential_id(), new_credential_id());
    // What the redacting build stored for the one-letter password `p`.
    let leaky = "127.0.0.1 is a loo****back address, which the egress ****olicy refuses";
    for (id, name, message) in [(checked, "checked", leaky), (unchecked, "unchecked", "")] {
        client
            .execute(
                "INSERT INTO credentials (id, workspace_id, name, category, type_id, \
                 masked_content, ciphertext, nonce, wrapped_key, master_key_id, \
                 master_key_version, payload_format, validation_state, validation_outcome, \
                 validation_message) \
                 VALUES ($1, 'ws', $2, 'llm', 'openai', '****', '\\x01', '\\x02', \
                 '\\x03', 'default', 1, 2, 2, 5, $3)",
                &[&id, &name, &message],
            )
            .await
            .unwrap();
    }

    let store = Store::new(&config(db.url(), 2)).unwrap();
    store.migrate().await.unwrap();
    let read = |id| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT validation_message, validation_state, validation_outcome \
                     FROM credentials WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap();
            (
                row.get::<_, String>(0),
                row.get::<_, i16>(1),
                row.get::<_, i16>(2),
            )
        }
    };
    let (message, state, outcome) = read(checked).await;
    assert!(!message.contains("****"), "{message}");
    assert!(message.contains("validate again"), "{message}");
    assert_eq!((state, outcome), (2, 5));
    assert_eq!(read(unchecked).await.0, "");
}
