//! Payload format 4: writes derive each value's data key from the workspace's kms-wrapped seed,
//! so a write while the seed is fresh makes no GenerateDataKey call (counted on the kms's own
//! metrics), and the seed is replaced when used up, on a new primary and on a workspace-key
//! change; values of one seed still have keys of their own; older rows open and are moved by
//! the re-wrap sweep; disabling a version still shreds the rows on it.

use crate::support::*;
use credentials_core::payload::PayloadFormat;
use credentials_proto::credentials::v1 as pb;
use testkit::stack::rewrap_status;
use tonic::Code;
use uuid::Uuid;

/// The server logs an altered row at ERROR as an integrity failure: expected where rows are
/// swapped.
const TAMPERED: &str = "stored value fails its integrity check";

async fn stack(args: &[&str]) -> TestApi {
    TestApi::options()
        .args(["--rewrap-interval", "0"])
        .args(args.iter().copied())
        .kms_args(["--admin-addr", "127.0.0.1:0"])
        .tolerate_error(TAMPERED)
        .start()
        .await
}

/// How many GenerateDataKey calls the kms has answered OK, from its metrics.
async fn generated(stack: &TestApi) -> f64 {
    let text = scrape(&stack.kms.admin_addr().await).await;
    metric_sum(
        &text,
        "grpc_server_requests_total",
        &["method=\"GenerateDataKey\"", "code=\"OK\""],
    )
}

/// What a row stores about its key: (format, master key, version, wrapped key).
async fn key_state(stack: &TestApi, id: &str) -> (i16, String, i32, Vec<u8>) {
    let row = stack
        .db
        .client()
        .await
        .query_one(
            "SELECT payload_format, master_key_id, master_key_version, wrapped_key \
             FROM credentials WHERE id = $1",
            &[&Uuid::parse_str(id).unwrap()],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

async fn create_in(stack: &TestApi, token: &str, ws: &str, name: &str, value: &str) -> String {
    stack
        .credentials(token)
        .create_credential(pb::CreateCredentialRequest {
            workspace_id: ws.into(),
            name: name.into(),
            r#type: "openai".into(),
            value: secret(value),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}"))
        .into_inner()
        .credential
        .unwrap()
        .id
}

async fn access(stack: &TestApi, token: &str, ws: &str, id: &str) -> Result<String, tonic::Status> {
    stack
        .access_as(token)
        .access_credential(by_id_in(ws, id))
        .await
        .map(|r| r.into_inner().secret)
}

fn value(name: &str) -> String {
    format!("sk-{name}-{:016x}-abcdef", rand_u64())
}

#[tokio::test]
async fn a_fresh_seed_serves_writes_without_the_kms_until_it_is_used_up() {
    let stack = stack(&["--write-seed-max-uses", "3"]).await;
    let token = stack.token(&["ws-a", "ws-b"], ALL);
    let start = generated(&stack).await;

    let mut rows = Vec::new();
    for name in ["a1", "a2", "a3"] {
        let v = value(name);
        rows.push((create_in(&stack, &token, "ws-a", name, &v).await, v));
    }
    // One seed for three values: asked for by the first write only.
    assert_eq!(generated(&stack).await, start + 1.0);
    let first = key_state(&stack, &rows[0].0).await;
    assert_eq!(first.0, 4);
    for (id, _) in &rows[1..] {
        assert_eq!(key_state(&stack, id).await.3, first.3);
    }

    // The fourth derivation is past the limit: a new seed.
    let updated = value("a1-updated");
    stack
        .credentials(&token)
        .update_credential(pb::UpdateCredentialRequest {
            workspace_id: "ws-a".into(),
            id: rows[0].0.clone(),
            value: secret(&updated),
            ..Default::default()
        })
        .await
        .unwrap();
    rows[0].1 = updated;
    assert_eq!(generated(&stack).await, start + 2.0);
    assert_ne!(key_state(&stack, &rows[0].0).await.3, first.3);

    // Another workspace never shares a seed: its first write asks the kms for its own.
    let b = value("b1");
    let b_id = create_in(&stack, &token, "ws-b", "b1", &b).await;
    assert_eq!(generated(&stack).await, start + 3.0);
    assert_ne!(key_state(&stack, &b_id).await.3, first.3);

    for (id, v) in &rows {
        assert_eq!(&access(&stack, &token, "ws-a", id).await.unwrap(), v);
    }
    assert_eq!(access(&stack, &token, "ws-b", &b_id).await.unwrap(), b);

    // Two values of one seed (same wrapped key) have keys of their own: swapping their
    // ciphertexts (and nonces) makes both fail their integrity check.
    let (x, y) = (
        Uuid::parse_str(&rows[1].0).unwrap(),
        Uuid::parse_str(&rows[2].0).unwrap(),
    );
    let swapped = stack
        .db
        .client()
        .await
        .execute(
            "UPDATE credentials c SET ciphertext = o.ciphertext, nonce = o.nonce \
             FROM credentials o WHERE (c.id, o.id) IN (($1, $2), ($2, $1))",
            &[&x, &y],
        )
        .await
        .unwrap();
    assert_eq!(swapped, 2);
    for (id, v) in &rows[1..] {
        let err = access(&stack, &token, "ws-a", id).await.unwrap_err();
        assert_eq!(err.code(), Code::DataLoss, "{err:?}");
        assert!(!err.message().contains(v.as_str()));
    }
}

#[tokio::test]
async fn with_no_seed_age_every_write_asks_the_kms() {
    let stack = stack(&["--write-seed-max-age", "0"]).await;
    let token = stack.token(&["ws"], ALL);
    let start = generated(&stack).await;
    let (v1, v2) = (value("one"), value("two"));
    let one = create_in(&stack, &token, "ws", "one", &v1).await;
    let two = create_in(&stack, &token, "ws", "two", &v2).await;
    assert_eq!(generated(&stack).await, start + 2.0);
    assert_ne!(
        key_state(&stack, &one).await.3,
        key_state(&stack, &two).await.3
    );
    assert_eq!(access(&stack, &token, "ws", &one).await.unwrap(), v1);
    assert_eq!(access(&stack, &token, "ws", &two).await.unwrap(), v2);
}

/// Rotation, the sweep and shredding with format-4 rows: a new primary takes the next write to
/// a new seed on it; the sweep re-wraps the seeds of rows left behind and they still open;
/// disabling a version makes its rows unreadable; a workspace key takes the next write to a
/// seed under it.
#[tokio::test]
async fn seeds_follow_the_primary_and_the_workspace_key_and_shredding_holds() {
    let stack = stack(&["--write-seed-keyring-check", "0"]).await;
    let token = testkit::stack::platform_token(&["ws"], ALL);
    let start = generated(&stack).await;
    let mut rows = Vec::new();
    for name in ["v1-a", "v1-b"] {
        let v = value(name);
        rows.push((create_in(&stack, &token, "ws", name, &v).await, v));
    }
    assert_eq!(generated(&stack).await, start + 1.0);
    let on_v1 = key_state(&stack, &rows[0].0).await;
    assert_eq!((on_v1.0, on_v1.2), (4, 1));

    // A new primary: the next write gets a new seed, on it.
    stack.keyring_and_reload(&["rotate"]).await;
    let v = value("v2-a");
    rows.push((create_in(&stack, &token, "ws", "v2-a", &v).await, v));
    assert_eq!(generated(&stack).await, start + 2.0);
    assert_eq!(key_state(&stack, &rows[2].0).await.2, 2);

    // The sweep moves the two rows left on v1 by re-wrapping their seed; they still open.
    assert_eq!(rewrap_status(&mut stack.admin(), &token).await.remaining, 2);
    let run = sweep_now(&stack, &token).await;
    assert_eq!((run.rewrapped, run.failed), (2, 0), "{run:?}");
    for (id, _) in &rows[..2] {
        let moved = key_state(&stack, id).await;
        assert_eq!((moved.0, moved.2), (4, 2));
        assert_ne!(moved.3, on_v1.3);
    }
    for (id, v) in &rows {
        assert_eq!(&access(&stack, &token, "ws", id).await.unwrap(), v);
    }

    // Shredding: with v3 primary, disabling v2 leaves its rows unreadable, v3's readable.
    stack.keyring_and_reload(&["rotate"]).await;
    let v3 = value("v3-a");
    let v3_id = create_in(&stack, &token, "ws", "v3-a", &v3).await;
    assert_eq!(key_state(&stack, &v3_id).await.2, 3);
    stack
        .keyring_and_reload(&["disable", "--version", "2"])
        .await;
    for (id, v) in &rows {
        let err = access(&stack, &token, "ws", id).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(!err.message().contains(v.as_str()));
    }
    assert_eq!(access(&stack, &token, "ws", &v3_id).await.unwrap(), v3);

    // A workspace key of its own: the next write gets a seed wrapped under it.
    stack
        .keyring_and_reload(&["add-key", "--key-id", "ws-own-key"])
        .await;
    stack
        .admin()
        .set_workspace_key(authed(
            pb::SetWorkspaceKeyRequest {
                workspace_id: "ws".into(),
                key_id: "ws-own-key".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap();
    let before = generated(&stack).await;
    let own = value("own");
    let own_id = create_in(&stack, &token, "ws", "own", &own).await;
    assert_eq!(generated(&stack).await, before + 1.0);
    let state = key_state(&stack, &own_id).await;
    assert_eq!((state.0, state.1.as_str()), (4, "ws-own-key"));
    assert_eq!(access(&stack, &token, "ws", &own_id).await.unwrap(), own);
}

/// A row as the build that wrote format 3 left it (its own data key, wrapped under the row's
/// context) still opens, and the sweep moves it to format 4 with the same value.
#[tokio::test]
async fn format_3_rows_still_open_and_the_sweep_moves_them_to_format_4() {
    let stack = stack(&[]).await;
    let token = testkit::stack::platform_token(&["ws"], ALL);
    let placeholder = value("placeholder");
    let id = create_in(&stack, &token, "ws", "old", &placeholder).await;
    let old = value("format-3");
    rewrite_in_format(&stack, "ws", &id, PayloadFormat::V3, 1, &old).await;
    let before = key_state(&stack, &id).await;
    assert_eq!(before.0, 3);
    assert_eq!(access(&stack, &token, "ws", &id).await.unwrap(), old);

    assert_eq!(rewrap_status(&mut stack.admin(), &token).await.remaining, 1);
    let run = sweep_now(&stack, &token).await;
    assert_eq!((run.rewrapped, run.failed), (1, 0), "{run:?}");
    let moved = key_state(&stack, &id).await;
    assert_eq!(moved.0, 4);
    assert_ne!(moved.3, before.3);
    assert_eq!(access(&stack, &token, "ws", &id).await.unwrap(), old);
}
