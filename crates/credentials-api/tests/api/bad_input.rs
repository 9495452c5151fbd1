//! Bad input is INVALID_ARGUMENT naming the field, and writes nothing.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field_and_writes_nothing() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let c = m
        .create_credential(authed(
            create("existing", "openai", secret("sk-0123456789abcdefghijklmn")),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    let rows = (
        stack.count("credentials").await,
        stack.count("audit_events").await,
    );

    let mut in_wrong_category = create("x", "openai", secret("sk-0123456789abcdefghijklmn"));
    in_wrong_category.category = "speech".into();
    let creates: Vec<(pb::CreateCredentialRequest, &str)> = vec![
        (create("x", "no-such-type", secret("v")), "type"),
        (in_wrong_category, "category"),
        (
            create(
                "x",
                "bedrock",
                fields(&[("access_key_id", "AKIA0123456789"), ("region", "us-east-1")]),
            ),
            "value.fields[secret_access_key]",
        ),
        (
            create(
                "x",
                "openai",
                fields(&[
                    ("api_key", "sk-0123456789abcdefghijklmn"),
                    ("organisation", "o"),
                ]),
            ),
            "value.fields[organisation]",
        ),
        (
            create("", "openai", secret("sk-0123456789abcdefghijklmn")),
            "name",
        ),
        (
            create("x", "openai", secret(&"x".repeat(70 * 1024))),
            "value",
        ),
        (create("x", "openai", None), "value"),
        (
            create(
                "x",
                "database",
                fields(&[("schema_type", "oracle"), ("connection_string", "x")]),
            ),
            "value.fields[schema_type]",
        ),
        (
            create(
                "x",
                "database",
                fields(&[("connection_string", "postgresql://u:p@h/db")]),
            ),
            "value.fields[schema_type]",
        ),
    ];
    for (request, field) in creates {
        let err = m
            .create_credential(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(field_of(&err), field, "{err:?}");
        assert!(err.message().starts_with(field), "{}", err.message());
    }
    let lists: Vec<(pb::ListCredentialsRequest, &str)> = vec![
        (
            pb::ListCredentialsRequest {
                page_size: 501,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListCredentialsRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListCredentialsRequest {
                category: "cars".into(),
                ..Default::default()
            },
            "category",
        ),
        (
            pb::ListCredentialsRequest {
                r#type: "no-such-type".into(),
                ..Default::default()
            },
            "type",
        ),
    ];
    for (request, field) in lists {
        let err = m
            .list_credentials(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), field_of(&err).as_str()),
            (Code::InvalidArgument, field),
            "{err:?}"
        );
    }
    let updates: Vec<(pb::UpdateCredentialRequest, &str)> = vec![
        (
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                etag: "7".into(),
                name: Some("y".into()),
                ..Default::default()
            },
            "etag",
        ),
        (
            pb::UpdateCredentialRequest {
                id: "not-a-uuid".into(),
                name: Some("y".into()),
                ..Default::default()
            },
            "id",
        ),
        (
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                name: Some(" padded".into()),
                ..Default::default()
            },
            "name",
        ),
        (
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                description: Some("d".repeat(1025)),
                ..Default::default()
            },
            "description",
        ),
        (
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                value: fields(&[("nope", "x")]),
                ..Default::default()
            },
            "value.fields[nope]",
        ),
    ];
    for (request, field) in updates {
        let err = m
            .update_credential(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), field_of(&err).as_str()),
            (Code::InvalidArgument, field),
            "{err:?}"
        );
    }
    let err = m
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: String::new(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "id");
    let err = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                workspace_id: "bad workspace!".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "workspace_id");
    let err = stack
        .access()
        .access_credential(authed(default_for("no-such-type"), &token))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "default_for_type");

    // Nothing was written: no credential, no audit event, and the existing one is unchanged.
    assert_eq!(
        (
            stack.count("credentials").await,
            stack.count("audit_events").await
        ),
        rows
    );
    let same = m
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: c.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(same.etag, "v1");

    // A duplicate name is ALREADY_EXISTS, and also writes nothing.
    let err = m
        .create_credential(authed(
            create(
                "existing",
                "anthropic",
                secret("sk-ant-0123456789abcdefghi"),
            ),
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(
        (
            stack.count("credentials").await,
            stack.count("audit_events").await
        ),
        rows
    );
}
