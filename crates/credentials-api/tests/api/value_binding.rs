//! Payload formats 3 and 4: the encryption context binds the credential's type and its value
//! generation, so a database writer can neither relabel a credential as another type nor
//! restore an older ciphertext onto its row; rows of format 2 still open and move to the current format
//! on update and in the re-wrap sweep. Each test alters rows in SQL, as such a writer would.

use crate::support::*;
use credentials_core::payload::{self, PayloadFormat};
use credentials_proto::credentials::v1 as pb;
use testkit::stack::rewrap_status;
use tonic::Code;
use uuid::Uuid;

/// The server logs an altered row at ERROR as an integrity failure: expected here.
const TAMPERED: &str = "stored value fails its integrity check";

async fn stack() -> TestApi {
    TestApi::options()
        .args(["--rewrap-interval", "0"])
        .tolerate_error(TAMPERED)
        .start()
        .await
}

/// (payload_format, value_generation, revision) of a row.
async fn sealed_state(stack: &TestApi, id: &str) -> (i16, i64, i64) {
    let row = stack
        .db
        .client()
        .await
        .query_one(
            "SELECT payload_format, value_generation, revision FROM credentials WHERE id = $1",
            &[&Uuid::parse_str(id).unwrap()],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Asserts that an access is refused as an integrity failure and shows none of `markers`.
fn assert_refused(
    result: Result<tonic::Response<pb::AccessCredentialResponse>, tonic::Status>,
    markers: &[&str],
) {
    let status = match result {
        Ok(r) => panic!("an altered row opened: {:?}", r.into_inner().credential),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    assert!(status.message().contains("integrity check"), "{status:?}");
    let (_, message, details) = wire(&status);
    for marker in markers {
        assert!(!message.contains(marker), "{message}");
        assert!(!String::from_utf8_lossy(&details).contains(marker));
    }
}

/// Rewrites a live row as the build that wrote format 2 would have: a data key from the kms
/// for the format-2 context (workspace, id, format), the value sealed in format 2, generation 0.
async fn rewrite_as_format_2(stack: &TestApi, workspace: &str, id: &str, api_key: &str) {
    rewrite_in_format(stack, workspace, id, PayloadFormat::V2, 0, api_key).await;
}

async fn access_secret(stack: &TestApi, token: &str, id: &str) -> String {
    stack
        .access_as(token)
        .access_credential(by_id(id))
        .await
        .unwrap_or_else(|e| panic!("access {id}: {e:?}"))
        .into_inner()
        .secret
}

/// A database writer relabels an anthropic key as openai (the FK allows it: same category), so
/// that agents asking for the openai default would get it. Neither that nor an access by id
/// opens it: the type is in the context.
#[tokio::test]
async fn a_credential_relabelled_as_another_type_does_not_open() {
    let stack = stack().await;
    let token = stack.token(&["ws"], ALL);
    let marker = format!("sk-ant-relabel-{:016x}", rand_u64());
    let mut request = create("Claude", "anthropic", secret(&marker));
    request.make_default = true;
    let created = stack.create(&token, request).await;
    assert_eq!(
        sealed_state(&stack, &created.id).await.0,
        payload::PAYLOAD_FORMAT
    );

    let changed = stack
        .db
        .client()
        .await
        .execute(
            "UPDATE credentials SET type_id = 'openai' WHERE id = $1",
            &[&Uuid::parse_str(&created.id).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);

    let mut access = stack.access_as(&token);
    assert_refused(
        access.access_credential(default_for("openai")).await,
        &[&marker],
    );
    assert_refused(
        access.access_credential(by_id(&created.id)).await,
        &[&marker],
    );
}

/// A database writer puts back the ciphertext and wrapped key the row held before its last
/// update (same row, same format, an older generation): it no longer opens.
#[tokio::test]
async fn an_older_value_restored_onto_its_row_does_not_open() {
    let stack = stack().await;
    let token = stack.token(&["ws"], ALL);
    let old = format!("sk-old-{:016x}-abcdef", rand_u64());
    let new = format!("sk-new-{:016x}-abcdef", rand_u64());
    let created = stack
        .create(&token, create("k", "openai", secret(&old)))
        .await;
    let id = Uuid::parse_str(&created.id).unwrap();
    let client = stack.db.client().await;
    let saved = client
        .query_one(
            "SELECT ciphertext, nonce, wrapped_key, master_key_id, master_key_version \
             FROM credentials WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    stack
        .credentials(&token)
        .update_credential(pb::UpdateCredentialRequest {
            id: created.id.clone(),
            value: secret(&new),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        sealed_state(&stack, &created.id).await.0,
        payload::PAYLOAD_FORMAT
    );
    assert_eq!(sealed_state(&stack, &created.id).await.1, 2);
    assert_eq!(access_secret(&stack, &token, &created.id).await, new);

    let restored = client
        .execute(
            "UPDATE credentials SET ciphertext = $2, nonce = $3, wrapped_key = $4, \
             master_key_id = $5, master_key_version = $6 WHERE id = $1",
            &[
                &id,
                &saved.get::<_, Vec<u8>>(0),
                &saved.get::<_, Vec<u8>>(1),
                &saved.get::<_, Vec<u8>>(2),
                &saved.get::<_, String>(3),
                &saved.get::<_, i32>(4),
            ],
        )
        .await
        .unwrap();
    assert_eq!(restored, 1);
    assert_refused(
        stack
            .access_as(&token)
            .access_credential(by_id(&created.id))
            .await,
        &[&old, &new],
    );
}

/// Setting a format-3 row's format back to 2 (which binds less) is refused by the schema; with
/// its generation set back to 0 as well, the row's own wrapped key no longer unwraps.
#[tokio::test]
async fn a_format_3_row_cannot_be_downgraded() {
    let stack = stack().await;
    let token = stack.token(&["ws"], ALL);
    let marker = format!("sk-down-{:016x}-abcdef", rand_u64());
    let created = stack
        .create(&token, create("k", "openai", secret(&marker)))
        .await;
    let id = Uuid::parse_str(&created.id).unwrap();
    let client = stack.db.client().await;
    let refused = client
        .execute(
            "UPDATE credentials SET payload_format = 2 WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.as_db_error().and_then(|e| e.constraint()),
        Some("credentials_generation_matches_format")
    );
    client
        .execute(
            "UPDATE credentials SET payload_format = 2, value_generation = 0 WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_refused(
        stack
            .access_as(&token)
            .access_credential(by_id(&created.id))
            .await,
        &[&marker],
    );
}

/// A row written by the format-2 build still opens, and an update of its value writes the current format
/// (generation 1).
#[tokio::test]
async fn a_format_2_row_opens_and_moves_to_format_3_on_update() {
    let stack = stack().await;
    let token = stack.token(&["ws"], ALL);
    let created = stack
        .create(
            &token,
            create("k", "openai", secret("sk-placeholder-0123456789")),
        )
        .await;
    let old = format!("sk-format2-{:016x}-abcdef", rand_u64());
    rewrite_as_format_2(&stack, "ws", &created.id, &old).await;
    assert_eq!(sealed_state(&stack, &created.id).await.0, 2);
    assert_eq!(access_secret(&stack, &token, &created.id).await, old);

    let new = format!("sk-format3-{:016x}-abcdef", rand_u64());
    stack
        .credentials(&token)
        .update_credential(pb::UpdateCredentialRequest {
            id: created.id.clone(),
            value: secret(&new),
            etag: created.etag.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (format, generation, _) = sealed_state(&stack, &created.id).await;
    assert_eq!((format, generation), (payload::PAYLOAD_FORMAT, 1));
    assert_eq!(access_secret(&stack, &token, &created.id).await, new);
}

/// The re-wrap sweep counts format-2 rows as left behind and moves them to the current format with the
/// same value (the etag does not change); rows already in it stay as they are.
#[tokio::test]
async fn the_sweep_moves_format_2_rows_to_format_3() {
    let stack = stack().await;
    // A sweep spans every workspace: it needs the platform-wide grant.
    let token = testkit::stack::platform_token(&["ws"], ALL);
    let mut old = Vec::new();
    for i in 0..3 {
        let created = stack
            .create(
                &token,
                create(
                    &format!("k{i}"),
                    "openai",
                    secret("sk-placeholder-0123456789"),
                ),
            )
            .await;
        let value = format!("sk-sweep-{i}-{:016x}-abcdef", rand_u64());
        rewrite_as_format_2(&stack, "ws", &created.id, &value).await;
        // The preview an older build's masking left: the sweep makes it again.
        stack
            .db
            .client()
            .await
            .execute(
                "UPDATE credentials SET masked_content = $2 WHERE id = $1",
                &[&Uuid::parse_str(&created.id).unwrap(), &value],
            )
            .await
            .unwrap();
        old.push((created.id, value));
    }
    let current = stack
        .create(
            &token,
            create("current", "openai", secret("sk-current-0123456789")),
        )
        .await;
    let before = sealed_state(&stack, &old[0].0).await;
    assert_eq!(rewrap_status(&mut stack.admin(), &token).await.remaining, 3);

    let run = sweep_now(&stack, &token).await;
    assert_eq!((run.rewrapped, run.failed), (3, 0), "{run:?}");
    assert_eq!(rewrap_status(&mut stack.admin(), &token).await.remaining, 0);

    for (id, value) in &old {
        let (format, generation, _) = sealed_state(&stack, id).await;
        assert_eq!((format, generation), (payload::PAYLOAD_FORMAT, 1));
        assert_eq!(&access_secret(&stack, &token, id).await, value);
        let preview: String = stack
            .db
            .client()
            .await
            .query_one(
                "SELECT masked_content FROM credentials WHERE id = $1",
                &[&Uuid::parse_str(id).unwrap()],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(preview, format!("sk-sw...{}", &value[value.len() - 4..]));
    }
    assert_eq!(sealed_state(&stack, &old[0].0).await.2, before.2);
    assert_eq!(sealed_state(&stack, &current.id).await.1, 1);
}

/// Concurrent value updates without an etag all land (each reseals for the generation it
/// finds), one after the other: the generation counts every one of them.
#[tokio::test]
async fn concurrent_value_updates_without_an_etag_all_land() {
    let stack = stack().await;
    let token = stack.token(&["ws"], ALL);
    let created = stack
        .create(
            &token,
            create("k", "openai", secret("sk-first-0123456789abcdef")),
        )
        .await;
    let values: Vec<String> = (0..4)
        .map(|i| format!("sk-concurrent-{i}-0123456789abcdef"))
        .collect();
    let updates: Vec<_> = values
        .iter()
        .map(|value| {
            let mut m = stack.credentials(&token);
            let request = pb::UpdateCredentialRequest {
                id: created.id.clone(),
                value: secret(value),
                ..Default::default()
            };
            tokio::spawn(async move { m.update_credential(request).await })
        })
        .collect();
    for update in updates {
        update.await.unwrap().unwrap();
    }
    let (format, generation, revision) = sealed_state(&stack, &created.id).await;
    assert_eq!(
        (format, generation, revision),
        (payload::PAYLOAD_FORMAT, 5, 5)
    );
    let last = access_secret(&stack, &token, &created.id).await;
    assert!(values.contains(&last), "{last}");
}
