//! The store's API against a real Postgres: round trips, errors, listing, defaults, deletion,
//! audit, workspace scoping and failure mapping.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{
    OTHER_WS, WS, all_audit, audit_counts, count, envelope, event, insert, migrated_db,
    new_credential, next_value, store_on, store_with,
};
use credentials_core::Category;
use credentials_core::model::{
    AuditAction, Credential, ListFilter, Validation, ValidationOutcome, ValidationState,
    new_credential_id,
};
use credentials_core::payload::Envelope;
use credentials_store::{CredentialChanges, Store, StoreConfig, StoreError};
use uuid::Uuid;

/// Every credential of a listing, read in pages of `limit` following the returned cursor.
async fn list_all(store: &Store, filter: &ListFilter, limit: usize) -> Vec<Vec<Credential>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = store
            .list_credentials(WS, filter, cursor, limit)
            .await
            .unwrap();
        assert!(page.len() <= limit);
        pages.push(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 100, "the listing does not end");
    }
}

fn ids(credentials: &[Credential]) -> Vec<Uuid> {
    credentials.iter().map(|c| c.id).collect()
}

#[tokio::test]
async fn insert_then_get_round_trips() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let mut new = new_credential(WS, "prod key", "anthropic");
    new.envelope = envelope(42);
    let inserted = insert(&store, &new).await;

    assert_eq!(inserted.id, new.id);
    assert_eq!(inserted.workspace_id, WS);
    assert_eq!(inserted.name, "prod key");
    assert_eq!(inserted.category, Category::Llm);
    assert_eq!(inserted.type_id, "anthropic");
    assert_eq!(inserted.description, "about prod key");
    assert_eq!(inserted.masked_content, "sk-...prod key");
    assert!(!inserted.is_default);
    assert_eq!(inserted.validation, Validation::default());
    assert!(!inserted.has_schema);
    assert_eq!(inserted.schema_updated_at, None);
    assert_eq!(inserted.deleted_at, None);
    assert_eq!(inserted.revision, 1);
    assert_eq!(inserted.master_key, Some(("default".to_owned(), 1)));
    assert_eq!(inserted.created_at, inserted.updated_at);

    assert_eq!(store.get_credential(WS, new.id).await.unwrap(), inserted);
    let (credential, sealed) = store.get_sealed(WS, new.id).await.unwrap();
    assert_eq!(credential, inserted);
    assert!(sealed == new.envelope, "{sealed:?} != {:?}", new.envelope);

    let audit = all_audit(&store, WS, 10).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event.action, AuditAction::Create);
    assert_eq!(audit[0].event.credential_id, Some(new.id));
}

#[tokio::test]
async fn master_key_version_round_trips_beyond_one() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let mut new = new_credential(WS, "k", "openai");
    new.envelope.master_key_id = "primary".to_owned();
    new.envelope.master_key_version = 7;
    let inserted = insert(&store, &new).await;
    assert_eq!(inserted.master_key, Some(("primary".to_owned(), 7)));
    let (_, sealed) = store.get_sealed(WS, new.id).await.unwrap();
    assert!(sealed == new.envelope);
}

#[tokio::test]
async fn a_taken_live_name_is_refused_and_nothing_is_written() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let client = db.client().await;
    let mut first = new_credential(WS, "shared", "openai");
    first.make_default = true;
    insert(&store, &first).await;

    // Same name and type, asking to become the default: the transaction that would have
    // cleared the first one's default flag must roll back entirely.
    let mut second = new_credential(WS, "shared", "openai");
    second.make_default = true;
    let err = store
        .insert_credential(&second, &event(WS, second.id, AuditAction::Create))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NameTaken), "{err:?}");
    assert!(!err.is_retryable());

    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM credentials WHERE id = $1",
            &[&second.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
    let audit_rows: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_events WHERE credential_id = $1",
            &[&second.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit_rows, 0);
    assert_eq!(count(&client, "SELECT count(*) FROM audit_events").await, 1);
    let kept = store.get_credential(WS, first.id).await.unwrap();
    assert!(kept.is_default);
    assert_eq!(kept.revision, 1);

    // The name is free in another workspace.
    insert(&store, &new_credential(OTHER_WS, "shared", "openai")).await;
}

/// A change and its audit event are one statement or one transaction: when the database
/// refuses the event, the change is not written either, on every write path.
#[tokio::test]
async fn a_change_whose_audit_event_is_refused_writes_nothing() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let client = db.client().await;
    let refused = |action, id| {
        let mut e = event(WS, id, action);
        e.request_id = "not a request id".to_owned();
        e
    };
    let kept = insert(&store, &new_credential(WS, "kept", "openai")).await;

    for make_default in [false, true] {
        let mut new = new_credential(WS, "never", "openai");
        new.make_default = make_default;
        let err = store
            .insert_credential(&new, &refused(AuditAction::Create, new.id))
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{err:?}");
        assert_eq!(
            count(
                &client,
                &format!("SELECT count(*) FROM credentials WHERE id = '{}'", new.id)
            )
            .await,
            0,
            "make_default {make_default}: the row was written without its event"
        );
    }

    let changes = CredentialChanges {
        name: Some("renamed".into()),
        value: Some((next_value(1), "sk-...new".into())),
        ..Default::default()
    };
    store
        .update_credential(
            WS,
            kept.id,
            None,
            &changes,
            &refused(AuditAction::Update, kept.id),
        )
        .await
        .unwrap_err();
    store
        .delete_credential(WS, kept.id, None, &refused(AuditAction::Delete, kept.id))
        .await
        .unwrap_err();
    store
        .set_default(WS, kept.id, &refused(AuditAction::SetDefault, kept.id))
        .await
        .unwrap_err();
    let after = store.get_credential(WS, kept.id).await.unwrap();
    assert_eq!(
        (
            after.name.as_str(),
            after.revision,
            after.is_default,
            after.deleted_at
        ),
        ("kept", kept.revision, false, None)
    );
    assert_eq!(count(&client, "SELECT count(*) FROM audit_events").await, 1);
}

#[tokio::test]
async fn listing_is_newest_first_and_pages_without_gaps_or_duplicates() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let mut inserted = Vec::new();
    for i in 0..5 {
        inserted.push(insert(&store, &new_credential(WS, &format!("c{i}"), "openai")).await);
    }
    // Noise in another workspace.
    insert(&store, &new_credential(OTHER_WS, "elsewhere", "openai")).await;
    let newest_first: Vec<Uuid> = inserted.iter().rev().map(|c| c.id).collect();

    let (one_page, next) = store
        .list_credentials(WS, &ListFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&one_page), newest_first);
    assert_eq!(next, None);

    let pages = list_all(&store, &ListFilter::default(), 2).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    let paged: Vec<Uuid> = pages.iter().flat_map(|p| ids(p)).collect();
    assert_eq!(paged, newest_first);

    // An exact multiple of the page size ends without an empty trailing page.
    let (first, next) = store
        .list_credentials(WS, &ListFilter::default(), None, 4)
        .await
        .unwrap();
    assert_eq!(first.len(), 4);
    let (rest, next) = store
        .list_credentials(WS, &ListFilter::default(), next, 4)
        .await
        .unwrap();
    assert_eq!(ids(&rest), [inserted[0].id]);
    assert_eq!(next, None);
    let (first, next) = store
        .list_credentials(WS, &ListFilter::default(), None, 5)
        .await
        .unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(next, None);
}

#[tokio::test]
async fn paging_is_stable_when_creation_times_tie() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(
            insert(&store, &new_credential(WS, &format!("c{i}"), "openai"))
                .await
                .id,
        );
    }
    // Same instant for all: only the id orders them.
    db.client()
        .await
        .batch_execute("UPDATE credentials SET created_at = '2024-01-02 03:04:05.678901+00'")
        .await
        .unwrap();
    expected.sort();
    expected.reverse();
    let pages = list_all(&store, &ListFilter::default(), 2).await;
    let paged: Vec<Uuid> = pages.iter().flat_map(|p| ids(p)).collect();
    assert_eq!(paged, expected);
    let distinct: BTreeSet<Uuid> = paged.iter().copied().collect();
    assert_eq!(distinct.len(), 5);
}

#[tokio::test]
async fn listing_filters_by_category_type_and_deletion() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let openai = insert(&store, &new_credential(WS, "openai", "openai")).await;
    let anthropic = insert(&store, &new_credential(WS, "anthropic", "anthropic")).await;
    let speech = insert(&store, &new_credential(WS, "speech", "elevenlabs")).await;
    let warehouse = insert(&store, &new_credential(WS, "warehouse", "postgresql")).await;
    let gone = insert(&store, &new_credential(WS, "gone", "openai")).await;
    store
        .delete_credential(WS, gone.id, None, &event(WS, gone.id, AuditAction::Delete))
        .await
        .unwrap();
    insert(&store, &new_credential(OTHER_WS, "other", "openai")).await;

    let set = |credentials: Vec<Vec<Credential>>| -> BTreeSet<Uuid> {
        credentials.iter().flat_map(|p| ids(p)).collect()
    };
    let filter =
        |category: Option<Category>, type_id: Option<&str>, show_deleted: bool| ListFilter {
            category,
            type_id: type_id.map(str::to_owned),
            show_deleted,
        };
    let cases: [(ListFilter, Vec<Uuid>); 7] = [
        (
            filter(None, None, false),
            vec![openai.id, anthropic.id, speech.id, warehouse.id],
        ),
        (
            filter(None, None, true),
            vec![openai.id, anthropic.id, speech.id, warehouse.id, gone.id],
        ),
        (
            filter(Some(Category::Llm), None, false),
            vec![openai.id, anthropic.id],
        ),
        (
            filter(Some(Category::Llm), None, true),
            vec![openai.id, anthropic.id, gone.id],
        ),
        (
            filter(Some(Category::DataWarehouse), None, false),
            vec![warehouse.id],
        ),
        (filter(None, Some("openai"), false), vec![openai.id]),
        (filter(None, Some("openai"), true), vec![openai.id, gone.id]),
    ];
    for (f, expected) in cases {
        let got = set(list_all(&store, &f, 2).await);
        assert_eq!(got, expected.into_iter().collect(), "{f:?}");
    }
    // Both filters at once, contradicting each other: nothing.
    let none = list_all(
        &store,
        &filter(Some(Category::Speech), Some("openai"), true),
        2,
    )
    .await;
    assert!(set(none).is_empty());

    let deleted = list_all(&store, &filter(None, Some("openai"), true), 10).await;
    let listed_gone = deleted[0].iter().find(|c| c.id == gone.id).unwrap();
    assert!(listed_gone.deleted_at.is_some());
    assert_eq!(listed_gone.master_key, None);
}

#[tokio::test]
async fn update_with_a_stale_revision_changes_nothing() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let new = new_credential(WS, "before", "openai");
    let created = insert(&store, &new).await;
    let renamed = store
        .update_credential(
            WS,
            new.id,
            Some(created.revision),
            &CredentialChanges {
                name: Some("after".to_owned()),
                ..CredentialChanges::default()
            },
            &event(WS, new.id, AuditAction::Update),
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "after");
    assert_eq!(renamed.description, created.description);
    assert_eq!(renamed.revision, 2);

    let err = store
        .update_credential(
            WS,
            new.id,
            Some(created.revision),
            &CredentialChanges {
                name: Some("stale".to_owned()),
                description: Some("stale".to_owned()),
                value: Some((envelope(9), "stale".to_owned())),
            },
            &event(WS, new.id, AuditAction::Update),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EtagMismatch), "{err:?}");
    assert_eq!(store.get_credential(WS, new.id).await.unwrap(), renamed);
    let (_, sealed) = store.get_sealed(WS, new.id).await.unwrap();
    assert!(sealed == new.envelope);

    // Same for delete with a stale revision.
    let err = store
        .delete_credential(
            WS,
            new.id,
            Some(created.revision),
            &event(WS, new.id, AuditAction::Delete),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EtagMismatch), "{err:?}");
    assert_eq!(store.get_credential(WS, new.id).await.unwrap(), renamed);

    let counts = audit_counts(&store, WS).await;
    assert_eq!(counts.get(&AuditAction::Update.code()), Some(&1));
    assert_eq!(counts.get(&AuditAction::Delete.code()), None);

    // Without an etag the update applies unconditionally.
    let forced = store
        .update_credential(
            WS,
            new.id,
            None,
            &CredentialChanges {
                description: Some("forced".to_owned()),
                ..CredentialChanges::default()
            },
            &event(WS, new.id, AuditAction::Update),
        )
        .await
        .unwrap();
    assert_eq!(forced.revision, 3);
    assert_eq!(forced.description, "forced");
    assert_eq!(forced.name, "after");
}

#[tokio::test]
async fn update_of_a_deleted_or_missing_credential_is_not_found() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let new = new_credential(WS, "x", "openai");
    insert(&store, &new).await;
    store
        .delete_credential(WS, new.id, None, &event(WS, new.id, AuditAction::Delete))
        .await
        .unwrap();
    let changes = CredentialChanges {
        name: Some("y".to_owned()),
        ..CredentialChanges::default()
    };
    for id in [new.id, new_credential_id()] {
        for revision in [None, Some(1), Some(2)] {
            let err = store
                .update_credential(
                    WS,
                    id,
                    revision,
                    &changes,
                    &event(WS, id, AuditAction::Update),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound), "{err:?}");
        }
        let err = store
            .delete_credential(WS, id, None, &event(WS, id, AuditAction::Delete))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store
            .set_default(WS, id, &event(WS, id, AuditAction::SetDefault))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    let err = store
        .get_credential(WS, new_credential_id())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let still = store.get_credential(WS, new.id).await.unwrap();
    assert_eq!(still.name, "x");
    assert_eq!(still.revision, 2);
    let counts = audit_counts(&store, WS).await;
    assert_eq!(counts.values().sum::<usize>(), 2, "{counts:?}");
}

#[tokio::test]
async fn update_with_a_new_value_resets_validation_and_bumps_revision() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let client = db.client().await;
    let new = new_credential(WS, "k", "openai");
    let created = insert(&store, &new).await;
    // As if a validation had run.
    let mark_valid = "UPDATE credentials SET validation_state = 1, validation_outcome = 1, \
                      validation_message = 'accepted', validated_at = now() WHERE id = $1";
    client.execute(mark_valid, &[&new.id]).await.unwrap();
    let validated = store.get_credential(WS, new.id).await.unwrap();
    assert_eq!(validated.validation.state, ValidationState::Valid);
    assert_eq!(validated.validation.outcome, ValidationOutcome::Valid);
    assert!(validated.validation.checked_at.is_some());

    // A change without a value keeps the validation.
    let described = store
        .update_credential(
            WS,
            new.id,
            Some(1),
            &CredentialChanges {
                description: Some("new description".to_owned()),
                ..CredentialChanges::default()
            },
            &event(WS, new.id, AuditAction::Update),
        )
        .await
        .unwrap();
    assert_eq!(described.validation, validated.validation);
    assert_eq!(described.revision, 2);
    assert_eq!(described.masked_content, created.masked_content);

    let mut value = next_value(77);
    value.master_key_version = 2;
    let updated = store
        .update_credential(
            WS,
            new.id,
            Some(2),
            &CredentialChanges {
                value: Some((value.clone(), "sk-...new".to_owned())),
                ..CredentialChanges::default()
            },
            &event(WS, new.id, AuditAction::Update),
        )
        .await
        .unwrap();
    assert_eq!(updated.validation, Validation::default());
    assert_eq!(updated.revision, 3);
    assert_eq!(updated.masked_content, "sk-...new");
    assert_eq!(updated.name, "k");
    assert_eq!(updated.description, "new description");
    assert_eq!(updated.master_key, Some(("default".to_owned(), 2)));
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= described.updated_at);
    let (credential, sealed) = store.get_sealed(WS, new.id).await.unwrap();
    assert_eq!(credential, updated);
    assert!(sealed == value);
}

#[tokio::test]
async fn renaming_onto_a_taken_name_is_refused() {
    let db = migrated_db().await;
    let store = store_on(&db);
    insert(&store, &new_credential(WS, "a", "openai")).await;
    let b = insert(&store, &new_credential(WS, "b", "openai")).await;
    let err = store
        .update_credential(
            WS,
            b.id,
            Some(1),
            &CredentialChanges {
                name: Some("a".to_owned()),
                ..CredentialChanges::default()
            },
            &event(WS, b.id, AuditAction::Update),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NameTaken), "{err:?}");
    assert_eq!(store.get_credential(WS, b.id).await.unwrap(), b);
    assert_eq!(audit_counts(&store, WS).await.get(&2), None);
}

#[tokio::test]
async fn delete_shreds_the_envelope_and_keeps_the_metadata() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let client = db.client().await;
    let mut new = new_credential(WS, "doomed", "openai");
    new.make_default = true;
    insert(&store, &new).await;
    client
        .execute(
            "UPDATE credentials SET schema_document = '{}', schema_discovered_at = now() \
             WHERE id = $1",
            &[&new.id],
        )
        .await
        .unwrap();
    assert!(store.get_credential(WS, new.id).await.unwrap().has_schema);

    let deleted = store
        .delete_credential(WS, new.id, Some(1), &event(WS, new.id, AuditAction::Delete))
        .await
        .unwrap();
    assert!(deleted.deleted_at.is_some());
    assert!(!deleted.is_default);
    assert_eq!(deleted.master_key, None);
    assert_eq!(deleted.revision, 2);
    assert!(!deleted.has_schema);

    let row = client
        .query_one(
            "SELECT deleted_at IS NOT NULL, is_default, ciphertext IS NULL, nonce IS NULL, \
             wrapped_key IS NULL, master_key_id IS NULL, master_key_version IS NULL, \
             payload_format IS NULL, schema_document IS NULL FROM credentials WHERE id = $1",
            &[&new.id],
        )
        .await
        .unwrap();
    let flags: Vec<bool> = (0..9).map(|i| row.get(i)).collect();
    assert_eq!(
        flags,
        [true, false, true, true, true, true, true, true, true]
    );

    let err = store.get_sealed(WS, new.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store.get_default_sealed(WS, "openai").await.unwrap_err();
    assert!(matches!(err, StoreError::NoDefault), "{err:?}");
    assert_eq!(store.get_credential(WS, new.id).await.unwrap(), deleted);
    let err = store
        .delete_credential(WS, new.id, None, &event(WS, new.id, AuditAction::Delete))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // The name is free again.
    insert(&store, &new_credential(WS, "doomed", "openai")).await;
}

#[tokio::test]
async fn defaults_move_from_one_credential_to_another() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let err = store.get_default_sealed(WS, "openai").await.unwrap_err();
    assert!(matches!(err, StoreError::NoDefault), "{err:?}");

    let mut a = new_credential(WS, "a", "openai");
    a.envelope = envelope(1);
    let mut b = new_credential(WS, "b", "openai");
    b.envelope = envelope(2);
    let other_type = insert(&store, &new_credential(WS, "c", "anthropic")).await;
    insert(&store, &a).await;
    insert(&store, &b).await;

    let (made, previous) = store
        .set_default(WS, a.id, &event(WS, a.id, AuditAction::SetDefault))
        .await
        .unwrap();
    assert!(made.is_default);
    assert_eq!(made.revision, 2);
    assert_eq!(previous, None);

    // Again on the default: nothing to clear, nothing changes.
    let (again, previous) = store
        .set_default(WS, a.id, &event(WS, a.id, AuditAction::SetDefault))
        .await
        .unwrap();
    assert_eq!(previous, None);
    assert_eq!(again.revision, 2);
    assert!(again.is_default);

    let (made, previous) = store
        .set_default(WS, b.id, &event(WS, b.id, AuditAction::SetDefault))
        .await
        .unwrap();
    assert!(made.is_default);
    assert_eq!(previous, Some(a.id));
    let old = store.get_credential(WS, a.id).await.unwrap();
    assert!(!old.is_default);
    assert_eq!(old.revision, 3, "clearing the flag changes the etag");

    let (credential, sealed) = store.get_default_sealed(WS, "openai").await.unwrap();
    assert_eq!(credential.id, b.id);
    assert!(sealed == b.envelope);
    // Other types and workspaces are unaffected.
    assert!(
        !store
            .get_credential(WS, other_type.id)
            .await
            .unwrap()
            .is_default
    );
    let err = store.get_default_sealed(WS, "anthropic").await.unwrap_err();
    assert!(matches!(err, StoreError::NoDefault), "{err:?}");
    let err = store
        .get_default_sealed(OTHER_WS, "openai")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoDefault), "{err:?}");
}

#[tokio::test]
async fn inserting_with_make_default_replaces_the_previous_default() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let mut llm = new_credential(WS, "llm", "anthropic");
    llm.make_default = true;
    insert(&store, &llm).await;
    let mut a = new_credential(WS, "a", "openai");
    a.make_default = true;
    assert!(insert(&store, &a).await.is_default);
    let mut b = new_credential(WS, "b", "openai");
    b.make_default = true;
    b.envelope = envelope(3);
    let inserted = insert(&store, &b).await;
    assert!(inserted.is_default);
    assert_eq!(inserted.revision, 1);

    let old = store.get_credential(WS, a.id).await.unwrap();
    assert!(!old.is_default);
    assert_eq!(old.revision, 2);
    let (credential, sealed) = store.get_default_sealed(WS, "openai").await.unwrap();
    assert_eq!(credential.id, b.id);
    assert!(sealed == b.envelope);
    // The other type's default is untouched.
    let (credential, _) = store.get_default_sealed(WS, "anthropic").await.unwrap();
    assert_eq!(credential.id, llm.id);
    // A non-default insert leaves the default alone.
    insert(&store, &new_credential(WS, "c", "openai")).await;
    let (credential, _) = store.get_default_sealed(WS, "openai").await.unwrap();
    assert_eq!(credential.id, b.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_set_default_leaves_exactly_one_default() {
    const N: usize = 20;
    let db = migrated_db().await;
    let store = store_with(&db, 10);
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(
            insert(&store, &new_credential(WS, &format!("c{i}"), "openai"))
                .await
                .id,
        );
    }
    let tasks: Vec<_> = ids
        .iter()
        .map(|&id| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .set_default(WS, id, &event(WS, id, AuditAction::SetDefault))
                    .await
            })
        })
        .collect();
    let mut previous = Vec::new();
    for task in tasks {
        let (credential, prev) = task.await.unwrap().unwrap();
        assert!(credential.is_default);
        previous.push(prev);
    }
    let client = db.client().await;
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM credentials WHERE is_default AND deleted_at IS NULL"
        )
        .await,
        1
    );
    // The calls ran one after the other: the first found no default, each later one cleared
    // its predecessor's, so the previous ids are the other 19, each once.
    assert_eq!(previous.iter().filter(|p| p.is_none()).count(), 1);
    let cleared: BTreeSet<Uuid> = previous.iter().flatten().copied().collect();
    assert_eq!(cleared.len(), N - 1);
    let (winner, _) = store.get_default_sealed(WS, "openai").await.unwrap();
    assert!(!cleared.contains(&winner.id));
    assert!(ids.contains(&winner.id));
    assert_eq!(
        audit_counts(&store, WS)
            .await
            .get(&AuditAction::SetDefault.code()),
        Some(&N)
    );
}

#[tokio::test]
async fn every_successful_change_writes_one_audit_event() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let a = insert(&store, &new_credential(WS, "a", "openai")).await;
    let b = insert(&store, &new_credential(WS, "b", "openai")).await;
    let c = insert(&store, &new_credential(WS, "c", "anthropic")).await;
    insert(&store, &new_credential(OTHER_WS, "a", "openai")).await;
    let rename = CredentialChanges {
        name: Some("a2".to_owned()),
        ..CredentialChanges::default()
    };
    store
        .update_credential(
            WS,
            a.id,
            Some(1),
            &rename,
            &event(WS, a.id, AuditAction::Update),
        )
        .await
        .unwrap();
    store
        .update_credential(
            WS,
            b.id,
            None,
            &CredentialChanges {
                value: Some((next_value(5), "m".to_owned())),
                ..CredentialChanges::default()
            },
            &event(WS, b.id, AuditAction::Update),
        )
        .await
        .unwrap();
    store
        .set_default(WS, b.id, &event(WS, b.id, AuditAction::SetDefault))
        .await
        .unwrap();
    store
        .delete_credential(WS, c.id, None, &event(WS, c.id, AuditAction::Delete))
        .await
        .unwrap();
    store
        .record_audit(&event(WS, a.id, AuditAction::Access))
        .await
        .unwrap();

    // Failures write nothing.
    let dup = new_credential(WS, "b", "openai");
    let err = store
        .insert_credential(&dup, &event(WS, dup.id, AuditAction::Create))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NameTaken), "{err:?}");
    let err = store
        .update_credential(
            WS,
            a.id,
            Some(1),
            &rename,
            &event(WS, a.id, AuditAction::Update),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EtagMismatch), "{err:?}");
    let err = store
        .delete_credential(WS, c.id, None, &event(WS, c.id, AuditAction::Delete))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .set_default(WS, c.id, &event(WS, c.id, AuditAction::SetDefault))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    let counts = audit_counts(&store, WS).await;
    let expected = [
        (AuditAction::Create.code(), 3),
        (AuditAction::Update.code(), 2),
        (AuditAction::SetDefault.code(), 1),
        (AuditAction::Delete.code(), 1),
        (AuditAction::Access.code(), 1),
    ];
    assert_eq!(counts, expected.into_iter().collect());

    // Pages of 3, newest first, chained by before_id: every event once, in id order.
    let one_page = store.list_audit(WS, None, None, 100).await.unwrap();
    assert_eq!(one_page.len(), 8);
    let paged = all_audit(&store, WS, 3).await;
    assert_eq!(paged, one_page);
    assert!(paged.windows(2).all(|w| w[0].id > w[1].id));
    assert!(paged.windows(2).all(|w| w[0].time >= w[1].time));
    assert!(paged.iter().all(|e| e.event.workspace_id == WS));
    let actions: Vec<AuditAction> = paged.iter().map(|e| e.event.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Access,
            AuditAction::Delete,
            AuditAction::SetDefault,
            AuditAction::Update,
            AuditAction::Update,
            AuditAction::Create,
            AuditAction::Create,
            AuditAction::Create,
        ]
    );
    let first_page = store.list_audit(WS, None, None, 3).await.unwrap();
    let second_page = store
        .list_audit(WS, None, Some(first_page[2].id), 3)
        .await
        .unwrap();
    assert_eq!(second_page, paged[3..6]);

    // One credential's events.
    let of_a = store.list_audit(WS, Some(a.id), None, 100).await.unwrap();
    let of_a: Vec<AuditAction> = of_a.iter().map(|e| e.event.action).collect();
    assert_eq!(
        of_a,
        [
            AuditAction::Access,
            AuditAction::Update,
            AuditAction::Create
        ]
    );
    // The other workspace's event stays there.
    assert_eq!(all_audit(&store, OTHER_WS, 3).await.len(), 1);
}

#[tokio::test]
async fn other_workspaces_see_nothing() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let new = new_credential(WS, "mine", "openai");
    let created = insert(&store, &new).await;
    let id = new.id;

    let err = store.get_credential(OTHER_WS, id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store.get_sealed(OTHER_WS, id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .update_credential(
            OTHER_WS,
            id,
            Some(1),
            &CredentialChanges {
                name: Some("theirs".to_owned()),
                value: Some((envelope(6), "x".to_owned())),
                ..CredentialChanges::default()
            },
            &event(OTHER_WS, id, AuditAction::Update),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .delete_credential(
            OTHER_WS,
            id,
            None,
            &event(OTHER_WS, id, AuditAction::Delete),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .set_default(OTHER_WS, id, &event(OTHER_WS, id, AuditAction::SetDefault))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .get_default_sealed(OTHER_WS, "openai")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoDefault), "{err:?}");
    let (listed, _) = store
        .list_credentials(OTHER_WS, &ListFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(listed.is_empty());

    // Untouched in its own workspace, and nothing audited anywhere but the creation.
    assert_eq!(store.get_credential(WS, id).await.unwrap(), created);
    let (_, sealed) = store.get_sealed(WS, id).await.unwrap();
    assert!(sealed == new.envelope);
    assert_eq!(all_audit(&store, WS, 10).await.len(), 1);
    assert!(all_audit(&store, OTHER_WS, 10).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_and_retryable() {
    let store = Store::new(&StoreConfig {
        url: "host=127.0.0.1 port=1 user=postgres dbname=x".to_owned(),
        max_connections: 2,
        wait_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        ca_pem: None,
    })
    .unwrap();
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    let err = store
        .get_credential(WS, new_credential_id())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(store.status().size, 0);
}

#[tokio::test]
async fn a_closed_store_is_unavailable_and_ping_works_before() {
    let db = migrated_db().await;
    let store = store_on(&db);
    store.ping().await.unwrap();
    assert!(store.status().size >= 1);
    store.close();
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

/// A row this build cannot decode (here: a column of another type than expected) is a
/// database error, not an outage: retrying cannot help.
#[tokio::test]
async fn an_undecodable_row_is_not_retryable() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let new = new_credential(WS, "k", "openai");
    insert(&store, &new).await;
    db.client()
        .await
        .batch_execute("ALTER TABLE credentials ALTER COLUMN revision TYPE integer")
        .await
        .unwrap();
    let err = store.get_credential(WS, new.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn rewrap_candidates_carry_their_payload_format() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let mut formats = Vec::new();
    for (name, format) in [("old format", 1), ("new format", 2)] {
        let mut new = new_credential(WS, name, "anthropic");
        new.envelope.payload_format = format;
        insert(&store, &new).await;
        formats.push((new.id, format));
    }
    formats.sort();
    let targets = credentials_store::KeyTargets {
        default_key: "default".into(),
        primaries: vec![("default".into(), 2)],
    };
    let candidates = store
        .rewrap_candidates(&targets, None, None, 10)
        .await
        .unwrap();
    let found: Vec<(Uuid, i16)> = candidates
        .iter()
        .map(|c| (c.id, c.payload_format))
        .collect();
    assert_eq!(found, formats);
}

/// A value sealed for a generation other than the one after the stored one (another write came
/// first) changes nothing and says so, with or without an etag.
#[tokio::test]
async fn a_value_sealed_for_a_stale_generation_is_refused() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let new = new_credential(WS, "k", "openai");
    insert(&store, &new).await;
    let changes = |value: Envelope| CredentialChanges {
        value: Some((value, "m".to_owned())),
        ..CredentialChanges::default()
    };
    store
        .update_credential(
            WS,
            new.id,
            None,
            &changes(next_value(1)),
            &event(WS, new.id, AuditAction::Update),
        )
        .await
        .unwrap();
    for etag in [None, Some(2)] {
        let err = store
            .update_credential(
                WS,
                new.id,
                etag,
                &changes(next_value(2)),
                &event(WS, new.id, AuditAction::Update),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ValueRaced), "{err:?}");
    }
    let err = store
        .update_credential(
            WS,
            new.id,
            Some(1),
            &changes(next_value(2)),
            &event(WS, new.id, AuditAction::Update),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EtagMismatch), "{err:?}");
    let (credential, sealed) = store.get_sealed(WS, new.id).await.unwrap();
    assert_eq!((credential.revision, sealed.value_generation), (2, 1));
    assert!(sealed == next_value(1));
}

/// The key versions in use are the distinct (key, version) pairs of live rows only, sorted,
/// and agree with the grouped count.
#[tokio::test]
async fn key_versions_in_use_are_those_of_live_rows() {
    let db = migrated_db().await;
    let store = store_on(&db);
    assert!(store.key_versions_in_use().await.unwrap().is_empty());
    for (i, (key, version)) in [
        ("default", 1),
        ("default", 3),
        ("ws-own", 1),
        ("default", 1),
    ]
    .into_iter()
    .enumerate()
    {
        let mut new = new_credential(WS, &format!("k{i}"), "openai");
        new.envelope.master_key_id = key.to_owned();
        new.envelope.master_key_version = version;
        insert(&store, &new).await;
    }
    let mut gone = new_credential(WS, "gone", "openai");
    gone.envelope.master_key_version = 9;
    insert(&store, &gone).await;
    store
        .delete_credential(WS, gone.id, None, &event(WS, gone.id, AuditAction::Delete))
        .await
        .unwrap();
    let in_use = store.key_versions_in_use().await.unwrap();
    assert_eq!(
        in_use,
        [
            ("default".to_owned(), 1),
            ("default".to_owned(), 3),
            ("ws-own".to_owned(), 1)
        ]
    );
    let counted: Vec<(String, u32)> = store
        .key_version_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.key_id, c.key_version))
        .collect();
    assert_eq!(counted, in_use);
}

/// The sweep's format upgrade lands only on the wrapped key it read: a client's value write
/// meanwhile wins, and the row keeps the client's value.
#[tokio::test]
async fn a_format_upgrade_loses_to_a_value_written_meanwhile() {
    let db = migrated_db().await;
    let store = store_on(&db);
    let new = new_credential(WS, "k", "openai");
    insert(&store, &new).await;
    let read = new.envelope.wrapped_key.clone();
    store
        .update_credential(
            WS,
            new.id,
            None,
            &CredentialChanges {
                value: Some((next_value(50), "m".to_owned())),
                ..CredentialChanges::default()
            },
            &event(WS, new.id, AuditAction::Update),
        )
        .await
        .unwrap();
    let swapped = store
        .swap_envelope(
            new.id,
            &read,
            &next_value(60),
            "sk-pr...0060",
            &event(WS, new.id, AuditAction::Rewrap),
        )
        .await
        .unwrap();
    assert!(!swapped);
    assert!(store.get_sealed(WS, new.id).await.unwrap().1 == next_value(50));

    // Without a write in between it lands, the revision unchanged.
    let other = new_credential(WS, "other", "openai");
    insert(&store, &other).await;
    let swapped = store
        .swap_envelope(
            other.id,
            &other.envelope.wrapped_key,
            &next_value(61),
            "sk-pr...0061",
            &event(WS, other.id, AuditAction::Rewrap),
        )
        .await
        .unwrap();
    assert!(swapped);
    let (credential, sealed) = store.get_sealed(WS, other.id).await.unwrap();
    assert_eq!(credential.revision, 1);
    assert!(sealed == next_value(61));
}
