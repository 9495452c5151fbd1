//! A credential from create to delete: every state it passes, as the API and the database see it.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn full_lifecycle() {
    let stack = TestApi::start().await;
    let token = stack.token(&["acme"], ALL);
    let mut m = stack.management();
    let mut a = stack.access();

    let mut request = create(
        "OpenAI Production",
        "openai",
        secret("sk-proj-lifecycle-0123456789abcdef"),
    );
    request.category = "llm".into();
    request.make_default = true;
    let openai = m
        .create_credential(authed(request, &token))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(
        (openai.workspace_id.as_str(), openai.category.as_str()),
        ("acme", "llm")
    );
    assert!(openai.is_default);
    assert_eq!(openai.masked_content, "sk-pr...cdef");
    assert_eq!(openai.etag, "v1");
    assert!(
        openai.created_at.is_some() && openai.updated_at.is_some() && openai.deleted_at.is_none()
    );

    let bedrock = m
        .create_credential(authed(
            create(
                "Bedrock",
                "bedrock",
                fields(&[
                    ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
                    (
                        "secret_access_key",
                        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    ),
                    ("region", "eu-west-1"),
                ]),
            ),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert!(
        bedrock.masked_content.contains("region=eu-west-1"),
        "{}",
        bedrock.masked_content
    );
    assert!(!bedrock.masked_content.contains("wJalr"));

    // List: newest first, masked previews only.
    let listed = m
        .list_credentials(authed(pb::ListCredentialsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Bedrock", "OpenAI Production"]);
    let shown = format!("{listed:?}");
    assert!(!shown.contains("lifecycle-0123456789") && !shown.contains("EXAMPLEKEY"));

    // Access: by default for a type and by id.
    let got = a
        .access_credential(authed(default_for("openai"), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.secret, "sk-proj-lifecycle-0123456789abcdef");
    assert_eq!(got.credential.unwrap().id, openai.id);
    let got = a
        .access_credential(authed(by_id(&bedrock.id), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.fields["secret_access_key"],
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    );
    assert_eq!(got.fields["region"], "eu-west-1");

    // A token without the access permission is refused, and the refusal is audited.
    let reader = stack.token(&["acme"], &["read"]);
    let err = a
        .access_credential(authed(default_for("openai"), &reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Update the value with the etag; the old value is gone.
    let updated = m
        .update_credential(authed(
            pb::UpdateCredentialRequest {
                id: openai.id.clone(),
                etag: openai.etag.clone(),
                value: secret("sk-proj-rotated-value-9876543210zyxw"),
                description: Some("rotated".into()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(
        (updated.etag.as_str(), updated.description.as_str()),
        ("v2", "rotated")
    );
    assert_eq!(updated.masked_content, "sk-pr...zyxw");
    let got = a
        .access_credential(authed(by_id(&openai.id), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.secret, "sk-proj-rotated-value-9876543210zyxw");

    // Delete: gone from list and access; get still resolves its name and type.
    let deleted = m
        .delete_credential(authed(
            pb::DeleteCredentialRequest {
                id: openai.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert!(deleted.deleted_at.is_some() && !deleted.is_default);
    let listed = m
        .list_credentials(authed(pb::ListCredentialsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.credentials.len(), 1);
    let with_deleted = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                show_deleted: true,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(with_deleted.credentials.len(), 2);
    assert_eq!(
        a.access_credential(authed(by_id(&openai.id), &token))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let err = a
        .access_credential(authed(default_for("openai"), &token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("no default"), "{}", err.message());
    let got = m
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: openai.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(
        (got.name.as_str(), got.r#type.as_str()),
        ("OpenAI Production", "openai")
    );

    // The secret is destroyed in the database.
    let client = stack.db.client().await;
    let row = client
        .query_one(
            "SELECT ciphertext IS NULL AND wrapped_key IS NULL AND nonce IS NULL FROM credentials WHERE id = $1",
            &[&uuid::Uuid::parse_str(&openai.id).unwrap()],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));

    // The audit log tells the story, newest first.
    let events = m
        .list_audit_events(authed(pb::ListAuditEventsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner()
        .events;
    let actions: Vec<(i32, i32)> = events.iter().map(|e| (e.action, e.outcome)).collect();
    use pb::{AuditAction as A, AuditOutcome as O};
    let ok = O::Succeeded as i32;
    let failed = O::Failed as i32;
    assert_eq!(
        actions,
        [
            (A::Access as i32, failed), // default after delete: no default
            (A::Access as i32, failed), // deleted id
            (A::Delete as i32, ok),
            (A::Access as i32, ok),
            (A::Update as i32, ok),
            (A::Access as i32, failed), // no access permission
            (A::Access as i32, ok),
            (A::Access as i32, ok),
            (A::Create as i32, ok),
            (A::Create as i32, ok),
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.actor == "e2e-test" && !e.request_id.is_empty())
    );
    assert!(stack.error_lines().is_empty(), "{:?}", stack.error_lines());
}
