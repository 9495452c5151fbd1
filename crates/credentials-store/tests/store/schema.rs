//! The migrations and the invariants the schema itself enforces, checked with raw SQL so that
//! they hold whatever code writes to the database.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use crate::common::{config, count, migrated_db, store_on};
use credentials_core::catalogue;
use credentials_core::model::new_credential_id;
use credentials_store::Store;
use testkit::TestDb;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// Every migration file of the crate, as (version, name): `V2__key_lifecycle.sql` is
/// `(2, "key_lifecycle")`. Read from the directory so a new migration needs no test change.
fn embedded_migrations() -> Vec<(i32, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut all: Vec<(i32, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|f| {
            let stem = f.strip_suffix(".sql")?.strip_prefix('V')?;
            let (version, name) = stem.split_once("__")?;
            Some((version.parse().ok()?, name.to_owned()))
        })
        .collect();
    all.sort();
    assert!(!all.is_empty());
    all
}

/// The applied migrations, as (version, name).
async fn history(client: &Client) -> Vec<(i32, String)> {
    client
        .query(
            "SELECT version, name FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn migrating_twice_is_a_no_op() {
    let db = TestDb::empty().await;
    let store = Store::new(&config(db.url(), 2)).unwrap();
    store.migrate().await.unwrap();
    let client = db.client().await;
    assert_eq!(history(&client).await, embedded_migrations());
    // Data written after the first run survives the second: nothing is re-created.
    client
        .batch_execute(
            "INSERT INTO audit_events (workspace_id, actor, action, outcome, status_code, \
             request_id) VALUES ('ws', 'me', 1, 1, 'OK', 'r1')",
        )
        .await
        .unwrap();
    let types = count(&client, "SELECT count(*) FROM credential_types").await;

    store.migrate().await.unwrap();
    assert_eq!(history(&client).await, embedded_migrations());
    assert_eq!(count(&client, "SELECT count(*) FROM audit_events").await, 1);
    assert_eq!(
        count(&client, "SELECT count(*) FROM credential_types").await,
        types
    );
}

#[tokio::test]
async fn migrating_an_already_migrated_template_clone_is_a_no_op() {
    let db = migrated_db().await;
    let store = store_on(&db);
    store.migrate().await.unwrap();
    assert_eq!(history(&db.client().await).await, embedded_migrations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_apply_each_exactly_once() {
    let db = TestDb::empty().await;
    let stores: Vec<Store> = (0..4)
        .map(|_| Store::new(&config(db.url(), 1)).unwrap())
        .collect();
    let tasks: Vec<_> = stores
        .iter()
        .cloned()
        .map(|store| tokio::spawn(async move { store.migrate().await }))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let client = db.client().await;
    assert_eq!(history(&client).await, embedded_migrations());
    assert_eq!(
        usize::try_from(count(&client, "SELECT count(*) FROM refinery_schema_history").await)
            .unwrap(),
        embedded_migrations().len()
    );
    assert_eq!(
        usize::try_from(count(&client, "SELECT count(*) FROM credential_types").await).unwrap(),
        catalogue::all().len()
    );
}

#[tokio::test]
async fn credential_types_table_equals_the_catalogue() {
    let db = migrated_db().await;
    let client = db.client().await;
    let in_db: BTreeSet<(String, String)> = client
        .query("SELECT type_id, category FROM credential_types", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let compiled: BTreeSet<(String, String)> = catalogue::all()
        .iter()
        .map(|t| (t.id.to_owned(), t.category.as_str().to_owned()))
        .collect();
    assert_eq!(compiled.len(), catalogue::all().len());
    let missing: Vec<_> = compiled.difference(&in_db).collect();
    let extra: Vec<_> = in_db.difference(&compiled).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from the table: {missing:?}; not in the catalogue: {extra:?}"
    );
}

/// Inserts a live credential row with a full envelope.
async fn raw_insert(
    client: &Client,
    workspace_id: &str,
    name: &str,
    type_id: &str,
    category: &str,
    is_default: bool,
) -> Result<Uuid, tokio_postgres::Error> {
    let id = new_credential_id();
    client
        .execute(
            "INSERT INTO credentials (id, workspace_id, name, category, type_id, \
             masked_content, is_default, ciphertext, nonce, wrapped_key, master_key_id, \
             master_key_version, payload_format) \
             VALUES ($1, $2, $3, $4, $5, 'sk-...', $6, '\\x01', '\\x02', '\\x03', 'default', 1, 1)",
            &[&id, &workspace_id, &name, &category, &type_id, &is_default],
        )
        .await?;
    Ok(id)
}

/// Soft-deletes a row the way the store does: deleted, shredded, not default, no preview.
async fn raw_delete(client: &Client, id: Uuid) {
    let n = client
        .execute(
            "UPDATE credentials SET deleted_at = now(), is_default = false, ciphertext = NULL, \
             nonce = NULL, wrapped_key = NULL, master_key_id = NULL, master_key_version = NULL, \
             payload_format = NULL, masked_content = '' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// Asserts `result` failed with `state` (and, when given, on `constraint`).
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, tokio_postgres::Error>,
    state: &SqlState,
    constraint: Option<&str>,
) {
    let err = result.expect_err("the database accepted it");
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not a db error: {err}"));
    assert_eq!(db.code(), state, "{db}");
    if let Some(constraint) = constraint {
        assert_eq!(db.constraint(), Some(constraint), "{db}");
    }
}

#[tokio::test]
async fn live_names_are_unique_per_workspace_until_deleted() {
    let db = migrated_db().await;
    let c = db.client().await;
    let first = raw_insert(&c, "ws", "prod", "openai", "llm", false)
        .await
        .unwrap();
    assert_refused(
        raw_insert(&c, "ws", "prod", "anthropic", "llm", false).await,
        &SqlState::UNIQUE_VIOLATION,
        Some("credentials_name_live"),
    );
    // Another workspace may use the name.
    raw_insert(&c, "ws2", "prod", "openai", "llm", false)
        .await
        .unwrap();
    raw_delete(&c, first).await;
    raw_insert(&c, "ws", "prod", "anthropic", "llm", false)
        .await
        .unwrap();
    assert_eq!(
        count(&c, "SELECT count(*) FROM credentials WHERE name = 'prod'").await,
        3
    );
}

#[tokio::test]
async fn one_live_default_per_workspace_and_type() {
    let db = migrated_db().await;
    let c = db.client().await;
    let first = raw_insert(&c, "ws", "a", "openai", "llm", true)
        .await
        .unwrap();
    assert_refused(
        raw_insert(&c, "ws", "b", "openai", "llm", true).await,
        &SqlState::UNIQUE_VIOLATION,
        Some("credentials_default_live"),
    );
    // Flipping an existing row to default is refused too.
    let second = raw_insert(&c, "ws", "b", "openai", "llm", false)
        .await
        .unwrap();
    assert_refused(
        c.execute(
            "UPDATE credentials SET is_default = true WHERE id = $1",
            &[&second],
        )
        .await,
        &SqlState::UNIQUE_VIOLATION,
        Some("credentials_default_live"),
    );
    // Other types and other workspaces have their own default.
    raw_insert(&c, "ws", "c", "anthropic", "llm", true)
        .await
        .unwrap();
    raw_insert(&c, "ws2", "a", "openai", "llm", true)
        .await
        .unwrap();
    // Once the default is deleted, another may take its place.
    raw_delete(&c, first).await;
    c.execute(
        "UPDATE credentials SET is_default = true WHERE id = $1",
        &[&second],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn types_and_categories_come_from_the_catalogue() {
    let db = migrated_db().await;
    let c = db.client().await;
    for (type_id, category) in [
        ("nope", "llm"),        // unknown type
        ("openai", "speech"),   // known type, wrong category
        ("elevenlabs", "llm"),  // the other way round
        ("openai", "chatbots"), // unknown category
        ("OpenAI", "llm"),      // ids are case-sensitive
        ("openai:llm", ""),     // the pair's joined form, split elsewhere
        ("openai", "llm:"),
    ] {
        assert_refused(
            raw_insert(&c, "ws", "x", type_id, category, false).await,
            &SqlState::CHECK_VIOLATION,
            Some("credentials_type_known"),
        );
    }
    // Changing the type of an existing row is checked as well.
    let id = raw_insert(&c, "ws", "x", "openai", "llm", false)
        .await
        .unwrap();
    assert_refused(
        c.execute(
            "UPDATE credentials SET type_id = 'deepgram' WHERE id = $1",
            &[&id],
        )
        .await,
        &SqlState::CHECK_VIOLATION,
        Some("credentials_type_known"),
    );
    assert_eq!(count(&c, "SELECT count(*) FROM credentials").await, 1);
}

/// The type check is compiled from `credential_types`, so the table stays the one source: what
/// a migration adds is accepted at once, and a type still in use cannot be taken away (the
/// foreign key this check replaced refused that too).
#[tokio::test]
async fn the_type_check_follows_the_credential_types_table() {
    let db = migrated_db().await;
    let c = db.client().await;
    assert_refused(
        raw_insert(&c, "ws", "new", "newtype", "llm", false).await,
        &SqlState::CHECK_VIOLATION,
        Some("credentials_type_known"),
    );
    c.batch_execute("INSERT INTO credential_types VALUES ('newtype', 'llm')")
        .await
        .unwrap();
    raw_insert(&c, "ws", "new", "newtype", "llm", false)
        .await
        .unwrap();

    // In use: neither removed nor moved to another category.
    assert_refused(
        c.execute(
            "DELETE FROM credential_types WHERE type_id = 'newtype'",
            &[],
        )
        .await,
        &SqlState::CHECK_VIOLATION,
        Some("credentials_type_known"),
    );
    assert_refused(
        c.execute(
            "UPDATE credential_types SET category = 'tools' WHERE type_id = 'newtype'",
            &[],
        )
        .await,
        &SqlState::CHECK_VIOLATION,
        Some("credentials_type_known"),
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM credential_types WHERE type_id = 'newtype'"
        )
        .await,
        1
    );

    // Unused: removed, and refused from then on.
    c.batch_execute("DELETE FROM credential_types WHERE type_id = 'mistral'")
        .await
        .unwrap();
    assert_refused(
        raw_insert(&c, "ws", "gone", "mistral", "llm", false).await,
        &SqlState::CHECK_VIOLATION,
        Some("credentials_type_known"),
    );
    // A ':' would make the joined pair ambiguous.
    assert_refused(
        c.execute("INSERT INTO credential_types VALUES ('a:b', 'llm')", &[])
            .await,
        &SqlState::CHECK_VIOLATION,
        Some("credential_types_type_id_form"),
    );
}

#[tokio::test]
async fn a_live_row_has_its_whole_envelope() {
    let db = migrated_db().await;
    let c = db.client().await;
    let id = raw_insert(&c, "ws", "x", "openai", "llm", false)
        .await
        .unwrap();
    for column in [
        "ciphertext",
        "nonce",
        "wrapped_key",
        "master_key_id",
        "master_key_version",
        "payload_format",
    ] {
        assert_refused(
            c.execute(
                &format!("UPDATE credentials SET {column} = NULL WHERE id = $1"),
                &[&id],
            )
            .await,
            &SqlState::CHECK_VIOLATION,
            Some("credentials_envelope_iff_live"),
        );
    }
    // Nor can a live row be inserted without one.
    assert_refused(
        c.execute(
            "INSERT INTO credentials (id, workspace_id, name, category, type_id, masked_content) \
             VALUES ($1, 'ws', 'y', 'llm', 'openai', '')",
            &[&new_credential_id()],
        )
        .await,
        &SqlState::CHECK_VIOLATION,
        Some("credentials_envelope_iff_live"),
    );
}

#[tokio::test]
async fn a_deleted_row_keeps_nothing_of_its_envelope_and_is_not_default() {
    let db = migrated_db().await;
    let c = db.client().await;
    let id = raw_insert(&c, "ws", "x", "openai", "llm", true)
        .await
        .unwrap();
    let shred_all_but = |keep: &str| {
        let sets: Vec<String> = [
            "ciphertext",
            "nonce",
            "wrapped_key",
            "master_key_id",
            "master_key_version",
            "payload_format",
        ]
        .iter()
        .filter(|c| **c != keep)
        .map(|c| format!("{c} = NULL"))
        .collect();
        let default = if keep == "is_default" {
            ""
        } else {
            ", is_default = false"
        };
        format!(
            "UPDATE credentials SET deleted_at = now(), {}{default} WHERE id = $1",
            sets.join(", ")
        )
    };
    for keep in [
        "ciphertext",
        "nonce",
        "wrapped_key",
        "master_key_id",
        "master_key_version",
        "payload_format",
        "is_default",
    ] {
        assert_refused(
            c.execute(&shred_all_but(keep), &[&id]).await,
            &SqlState::CHECK_VIOLATION,
            Some("credentials_envelope_iff_live"),
        );
    }
    // Marking it deleted and nothing else is refused as well.
    assert_refused(
        c.execute(
            "UPDATE credentials SET deleted_at = now(), is_default = false WHERE id = $1",
            &[&id],
        )
        .await,
        &SqlState::CHECK_VIOLATION,
        Some("credentials_envelope_iff_live"),
    );
    // The complete shredding is accepted; the row is still live until then.
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM credentials WHERE deleted_at IS NULL AND ciphertext IS NOT NULL"
        )
        .await,
        1
    );
    raw_delete(&c, id).await;
    // A deleted row cannot get its secret back without being live again.
    assert_refused(
        c.execute(
            "UPDATE credentials SET ciphertext = '\\x01' WHERE id = $1",
            &[&id],
        )
        .await,
        &SqlState::CHECK_VIOLATION,
        Some("credentials_envelope_iff_live"),
    );
}

#[tokio::test]
async fn audit_events_are_append_only() {
    let db = migrated_db().await;
    let c = db.client().await;
    c.batch_execute(
        "INSERT INTO audit_events (workspace_id, actor, action, outcome, status_code, \
         request_id) VALUES ('ws', 'me', 1, 1, 'OK', 'r1'), ('ws', 'me', 3, 1, 'OK', 'r2')",
    )
    .await
    .unwrap();
    for sql in [
        "UPDATE audit_events SET actor = 'someone else'",
        "UPDATE audit_events SET outcome = 2 WHERE request_id = 'r2'",
        "DELETE FROM audit_events WHERE request_id = 'r1'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let result = c.execute(sql, &[]).await;
        let err = result.expect_err(sql);
        let db_err = err.as_db_error().unwrap();
        assert_eq!(db_err.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{sql}");
        assert_eq!(db_err.message(), "audit_events is append-only", "{sql}");
    }
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM audit_events WHERE actor = 'me' AND outcome = 1"
        )
        .await,
        2
    );
}
