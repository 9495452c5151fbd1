//! Helpers shared by the store's integration tests: a migrated database per test, fake
//! envelopes (the store never decrypts), credentials and audit events to write, raw SQL.

use std::collections::BTreeMap;
use std::time::Duration;

use credentials_core::catalogue;
use credentials_core::model::{
    AuditAction, AuditEvent, AuditOutcome, Credential, NewAuditEvent, new_credential_id,
};
use credentials_core::payload::Envelope;
use credentials_store::{NewCredential, Store, StoreConfig};
use testkit::TestDb;
use uuid::Uuid;

/// The workspace most tests write in.
pub const WS: &str = "ws-main";
/// Another workspace, for scoping checks.
pub const OTHER_WS: &str = "ws-other";

/// A store configuration for `url`.
pub fn config(url: String, max_connections: usize) -> StoreConfig {
    StoreConfig {
        url,
        max_connections,
        wait_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        ca_pem: None,
    }
}

/// A fresh database with the store's migrations applied.
pub async fn migrated_db() -> TestDb {
    TestDb::create("credentials", |url| async move {
        let store = Store::new(&config(url.clone(), 2)).unwrap();
        store.migrate().await.unwrap();
        store.close();
        drop(store);
    })
    .await
}

/// A store on `db` with a small pool.
pub fn store_on(db: &TestDb) -> Store {
    store_with(db, 4)
}

/// A store on `db` with `max_connections` connections at most.
pub fn store_with(db: &TestDb, max_connections: usize) -> Store {
    Store::new(&config(db.url(), max_connections)).unwrap()
}

/// A fake sealed value; `seed` makes different values distinguishable.
pub fn envelope(seed: u8) -> Envelope {
    Envelope {
        ciphertext: vec![seed; 40],
        nonce: vec![seed ^ 0x5a; 12],
        wrapped_key: vec![seed.wrapping_add(17); 56],
        master_key_id: "default".to_owned(),
        master_key_version: 1,
        payload_format: 1,
        value_generation: 0,
    }
}

/// A fake value written over [`envelope`]'s, as an update seals it: in format 3, for the
/// generation after the stored one (0).
pub fn next_value(seed: u8) -> Envelope {
    Envelope {
        payload_format: 3,
        value_generation: 1,
        ..envelope(seed)
    }
}

/// A credential of `type_id` (a catalogue type) named `name` in `workspace_id`.
pub fn new_credential(workspace_id: &str, name: &str, type_id: &str) -> NewCredential {
    let spec = catalogue::lookup(type_id).unwrap();
    NewCredential {
        id: new_credential_id(),
        workspace_id: workspace_id.to_owned(),
        name: name.to_owned(),
        category: spec.category,
        type_id: type_id.to_owned(),
        description: format!("about {name}"),
        masked_content: format!("sk-...{name}"),
        make_default: false,
        envelope: envelope(1),
    }
}

/// A successful audit event of `action` on `credential_id`.
pub fn event(workspace_id: &str, credential_id: Uuid, action: AuditAction) -> NewAuditEvent {
    NewAuditEvent {
        workspace_id: workspace_id.to_owned(),
        credential_id: Some(credential_id),
        actor: "user:alice".to_owned(),
        action,
        outcome: AuditOutcome::Succeeded,
        status_code: "OK".to_owned(),
        request_id: format!("req-{}", new_credential_id()),
    }
}

/// Inserts `new` with its `Create` event.
pub async fn insert(store: &Store, new: &NewCredential) -> Credential {
    store
        .insert_credential(new, &event(&new.workspace_id, new.id, AuditAction::Create))
        .await
        .unwrap()
}

/// Every audit event of a workspace, newest first, read in pages of `page`.
pub async fn all_audit(store: &Store, workspace_id: &str, page: i64) -> Vec<AuditEvent> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let events = store
            .list_audit(workspace_id, None, before, page)
            .await
            .unwrap();
        let Some(last) = events.last() else {
            return all;
        };
        before = Some(last.id);
        all.extend(events);
    }
}

/// The number of audit events of a workspace by action.
pub async fn audit_counts(store: &Store, workspace_id: &str) -> BTreeMap<i16, usize> {
    let mut counts = BTreeMap::new();
    for e in all_audit(store, workspace_id, 100).await {
        *counts.entry(e.event.action.code()).or_default() += 1;
    }
    counts
}

/// `count(*)` of a query with no parameters.
pub async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}
