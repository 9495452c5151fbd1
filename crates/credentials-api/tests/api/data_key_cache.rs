//! The data-key cache: a repeated read skips the kms but is still audited, and each event that
//! invalidates a key (an update, a delete, a re-wrap, a disabled version, a keyring reload)
//! makes the next read go to the kms again. What the kms did is counted on the kms's own
//! metrics port; what the cache holds, on the API's.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::time::Duration;
use testkit::stack::wait_until;
use tonic::Code;

const METRICS: [&str; 2] = ["--admin-addr", "127.0.0.1:0"];

/// The API's admin address, from its "admin listening" log line.
fn api_admin(stack: &TestApi) -> String {
    let line = stack
        .logs()
        .lines()
        .find(|l| l.contains("\"message\":\"admin listening\""))
        .map(str::to_owned)
        .expect("the API logs its admin address");
    testkit::stack::logged_address(&line).expect("address in the log line")
}

/// UnwrapDataKey calls the kms has answered, whatever their outcome.
async fn unwraps(stack: &TestApi) -> f64 {
    let text = scrape(&stack.kms.admin_addr().await).await;
    metric_sum(
        &text,
        "grpc_server_requests_total",
        &["method=\"UnwrapDataKey\""],
    )
}

/// Unwrapped data keys the API holds now.
async fn cached(stack: &TestApi) -> f64 {
    metric_sum(
        &scrape(&api_admin(stack)).await,
        "data_key_cache_entries",
        &[],
    )
}

async fn start(extra: &[&str]) -> TestApi {
    TestApi::options()
        .args(METRICS)
        .args(["--rewrap-interval", "0"])
        .args(extra.iter().copied())
        .kms_args(METRICS)
        .start()
        .await
}

/// Reads `id` and checks its value.
async fn read(stack: &TestApi, token: &str, id: &str, want: &str) {
    let got = stack
        .access_as(token)
        .access_credential(by_id(id))
        .await
        .unwrap_or_else(|e| panic!("access {id}: {e:?}"))
        .into_inner();
    assert_eq!(got.secret, want);
}

/// Creates a credential and reads it twice: the first read unwraps through the kms, the
/// second is answered from the cache. Returns its id.
async fn created_and_cached(stack: &TestApi, token: &str, name: &str, value: &str) -> String {
    let id = stack
        .create(token, create(name, "openai", secret(value)))
        .await
        .id;
    let before = unwraps(stack).await;
    read(stack, token, &id, value).await;
    assert_eq!(unwraps(stack).await, before + 1.0, "first read: the kms");
    read(stack, token, &id, value).await;
    assert_eq!(unwraps(stack).await, before + 1.0, "second read: the cache");
    id
}

#[tokio::test]
async fn a_repeated_access_skips_the_kms_but_is_audited_every_time() {
    let stack = start(&[]).await;
    let token = stack.token(&["ws"], ALL);
    let id = created_and_cached(&stack, &token, "k", "sk-cache-0123456789abcdef").await;
    assert_eq!(cached(&stack).await, 1.0);
    let client = stack.db.client().await;
    let audited: i64 = client
        .query_one(
            // 5 is AuditAction::Access.
            "SELECT count(*) FROM audit_events WHERE credential_id = $1::text::uuid \
             AND action = 5 AND status_code = 'OK'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 2, "both reads are in the audit log");
}

#[tokio::test]
async fn an_update_of_the_value_or_the_name_makes_the_next_access_use_the_kms() {
    let stack = start(&[]).await;
    let token = stack.token(&["ws"], ALL);
    let id = created_and_cached(&stack, &token, "k", "sk-before-0123456789abcdef").await;

    // A new value: the old key leaves memory at once.
    let mut m = stack.credentials(&token);
    m.update_credential(pb::UpdateCredentialRequest {
        id: id.clone(),
        value: secret("sk-after-0123456789abcdef"),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(cached(&stack).await, 0.0, "the update dropped the key");
    let before = unwraps(&stack).await;
    read(&stack, &token, &id, "sk-after-0123456789abcdef").await;
    assert_eq!(unwraps(&stack).await, before + 1.0);

    // A new name only: the wrapped key is the same, yet the next read asks the kms again.
    m.update_credential(pb::UpdateCredentialRequest {
        id: id.clone(),
        name: Some("renamed".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let before = unwraps(&stack).await;
    read(&stack, &token, &id, "sk-after-0123456789abcdef").await;
    assert_eq!(unwraps(&stack).await, before + 1.0);
}

#[tokio::test]
async fn a_delete_drops_the_key_from_memory() {
    let stack = start(&[]).await;
    let token = stack.token(&["ws"], ALL);
    let id = created_and_cached(&stack, &token, "k", "sk-deleted-0123456789abcdef").await;
    let other = created_and_cached(&stack, &token, "k2", "sk-kept-0123456789abcdef").await;
    assert_eq!(cached(&stack).await, 2.0);
    stack
        .credentials(&token)
        .delete_credential(pb::DeleteCredentialRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(cached(&stack).await, 1.0, "only the deleted one's key left");
    let err = stack
        .access_as(&token)
        .access_credential(by_id(&id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    read(&stack, &token, &other, "sk-kept-0123456789abcdef").await;
}

#[tokio::test]
async fn a_re_wrapped_credential_is_read_through_the_kms_under_its_new_wrapping() {
    let stack = start(&[]).await;
    let token = testkit::stack::platform_token(&["ws"], ALL);
    let id = stack
        .create(
            &token,
            create("k", "openai", secret("sk-rewrap-0123456789abcdef")),
        )
        .await
        .id;
    // The rotation is a reload, which empties the cache; the reads after it fill it again.
    stack.keyring_and_reload(&["rotate"]).await;
    let before = unwraps(&stack).await;
    read(&stack, &token, &id, "sk-rewrap-0123456789abcdef").await;
    read(&stack, &token, &id, "sk-rewrap-0123456789abcdef").await;
    assert_eq!(unwraps(&stack).await, before + 1.0);
    assert_eq!(cached(&stack).await, 1.0);

    let run = sweep_now(&stack, &token).await;
    assert_eq!(run.rewrapped, 1);
    assert_eq!(cached(&stack).await, 0.0, "the sweep dropped the moved key");
    let before = unwraps(&stack).await;
    read(&stack, &token, &id, "sk-rewrap-0123456789abcdef").await;
    assert_eq!(unwraps(&stack).await, before + 1.0);
}

#[tokio::test]
async fn a_disabled_version_is_refused_although_its_key_was_cached() {
    let stack = start(&[]).await;
    let token = stack.token(&["ws"], ALL);
    let id = stack
        .create(
            &token,
            create("k", "openai", secret("sk-on-v1-0123456789abcdef")),
        )
        .await
        .id;
    stack.keyring_and_reload(&["rotate"]).await;
    read(&stack, &token, &id, "sk-on-v1-0123456789abcdef").await;
    read(&stack, &token, &id, "sk-on-v1-0123456789abcdef").await;
    assert_eq!(cached(&stack).await, 1.0, "v1's data key is in memory");

    stack
        .keyring_and_reload(&["disable", "--version", "1"])
        .await;
    let before = unwraps(&stack).await;
    let err = stack
        .access_as(&token)
        .access_credential(by_id(&id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        unwraps(&stack).await,
        before + 1.0,
        "the kms was asked, and refused: {err:?}"
    );
}

#[tokio::test]
async fn a_keyring_reload_makes_the_next_access_use_the_kms() {
    let stack = start(&[]).await;
    let token = stack.token(&["ws"], ALL);
    let id = created_and_cached(&stack, &token, "k", "sk-reload-0123456789abcdef").await;
    // A reload that changes nothing still counts: the kms may have been restarted on
    // another copy of the file.
    stack.keyring_and_reload(&["show"]).await;
    assert_eq!(cached(&stack).await, 0.0);
    let before = unwraps(&stack).await;
    read(&stack, &token, &id, "sk-reload-0123456789abcdef").await;
    assert_eq!(unwraps(&stack).await, before + 1.0);
}

#[tokio::test]
async fn a_maximum_age_of_zero_turns_the_cache_off() {
    let stack = start(&["--data-key-cache-max-age", "0"]).await;
    let token = stack.token(&["ws"], ALL);
    let id = stack
        .create(
            &token,
            create("k", "openai", secret("sk-nocache-0123456789abcdef")),
        )
        .await
        .id;
    let before = unwraps(&stack).await;
    read(&stack, &token, &id, "sk-nocache-0123456789abcdef").await;
    read(&stack, &token, &id, "sk-nocache-0123456789abcdef").await;
    assert_eq!(unwraps(&stack).await, before + 2.0);
    assert_eq!(cached(&stack).await, 0.0);
}

#[tokio::test]
async fn an_expired_key_leaves_memory_without_being_read_again() {
    let stack = start(&["--data-key-cache-max-age", "1s"]).await;
    let token = stack.token(&["ws"], ALL);
    created_and_cached(&stack, &token, "k", "sk-expiring-0123456789abcdef").await;
    let purged = wait_until(Duration::from_secs(10), || async {
        cached(&stack).await == 0.0
    })
    .await;
    assert!(purged, "the purge tick never dropped the expired key");
}
