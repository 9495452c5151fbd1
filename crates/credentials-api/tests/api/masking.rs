//! Masked previews, one marker per rule: the marker is in the secret (or the part of a field a
//! preview must drop) and never in a Create, Get or List answer; a delete empties the preview.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;

/// Creates the credential and returns its preview, after checking that the marker appears in
/// none of the Create, Get and List answers.
async fn preview_without(
    stack: &TestApi,
    token: &str,
    marker: &str,
    request: pb::CreateCredentialRequest,
) -> String {
    let mut m = stack.credentials(token);
    let created = m.create_credential(request).await.unwrap().into_inner();
    assert!(!format!("{created:?}").contains(marker), "{created:?}");
    let c = created.credential.unwrap();
    let got = m
        .get_credential(pb::GetCredentialRequest {
            id: c.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{got:?}").contains(marker), "{got:?}");
    let listed = m
        .list_credentials(pb::ListCredentialsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{listed:?}").contains(marker), "{listed:?}");
    c.masked_content
}

fn marker() -> String {
    format!("MARKER{:016x}", rand_u64())
}

#[tokio::test]
async fn a_token_as_url_user_info_is_not_shown() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let marker = marker();
    let url = format!("https://ghp_{marker}@raw.example.com/org/repo/data.csv");
    let p = preview_without(
        &stack,
        &token,
        &marker,
        create("f", "static_file", secret(&url)),
    )
    .await;
    assert_eq!(p, "https://raw.example.com");
}

#[tokio::test]
async fn a_secret_url_shows_no_path_segment() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let marker = marker();
    let url = format!("https://bucket.s3.amazonaws.com/{marker}/file.csv?X-Amz-Signature=abc");
    let p = preview_without(
        &stack,
        &token,
        &marker,
        create("f", "static_file", secret(&url)),
    )
    .await;
    assert_eq!(p, "https://bucket.s3.amazonaws.com");
}

#[tokio::test]
async fn a_database_url_shows_host_port_and_database_only() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let marker = marker();
    let url = format!("postgresql://{marker}@db.example.com:5432/sales?sslmode=require");
    let p = preview_without(
        &stack,
        &token,
        &marker,
        create("db", "postgresql", secret(&url)),
    )
    .await;
    assert_eq!(p, "postgresql://db.example.com:5432/sales");
}

#[tokio::test]
async fn password_fields_show_only_that_they_are_set() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let marker = marker();
    // Long enough that an ends-preview would show 5 + 4 characters of it.
    let password = format!("{marker}-long-password");
    let smtp = fields(&[
        ("host", "smtp.example.com"),
        ("username", "bot"),
        ("password", &password),
    ]);
    let p = preview_without(&stack, &token, &marker[..10], create("mail", "smtp", smtp)).await;
    assert_eq!(p, "**** (host=smtp.example.com, username=bot)");
    let snowflake = fields(&[
        ("account", "acme"),
        ("username", "bot"),
        ("password", &password),
    ]);
    let p = preview_without(
        &stack,
        &token,
        "-password",
        create("wh", "snowflake", snowflake),
    )
    .await;
    assert_eq!(p, "**** (account=acme, username=bot)");
}

#[tokio::test]
async fn provider_api_keys_keep_the_products_form() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let marker = marker();
    let key = format!("sk-proj-{marker}-abcd");
    let p = preview_without(&stack, &token, &marker, create("k", "openai", secret(&key))).await;
    assert_eq!(p, "sk-pr...abcd");
}

#[tokio::test]
async fn plain_url_fields_lose_user_info_query_and_fragment() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let marker = marker();
    let tool = fields(&[
        ("api_key", "tool-key-0123456789abcdef"),
        (
            "endpoint",
            &format!("https://u:{marker}@api.example.com/v1/status?key={marker}#{marker}"),
        ),
    ]);
    let p = preview_without(&stack, &token, &marker, create("tool", "api_key", tool)).await;
    assert_eq!(
        p,
        "tool-...cdef (endpoint=https://api.example.com/v1/status)"
    );
    let oauth = fields(&[
        ("refresh_token", "refresh-0123456789"),
        (
            "token_url",
            &format!("https://login.example.com/oauth/token?client_secret={marker}"),
        ),
    ]);
    let p = preview_without(&stack, &token, &marker, create("oauth", "oauth", oauth)).await;
    assert_eq!(p, "**** (token_url=https://login.example.com/oauth/token)");
}

#[tokio::test]
async fn a_delete_clears_the_preview() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.credentials(&token);
    let c = stack
        .create(
            &token,
            create("k", "openai", secret("sk-proj-0123456789abcdef-abcd")),
        )
        .await;
    assert_eq!(c.masked_content, "sk-pr...abcd");
    let deleted = m
        .delete_credential(pb::DeleteCredentialRequest {
            id: c.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{deleted:?}").contains("abcd"), "{deleted:?}");
    let listed = m
        .list_credentials(pb::ListCredentialsRequest {
            show_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{listed:?}").contains("abcd"), "{listed:?}");
    let stored: String = stack
        .db
        .client()
        .await
        .query_one("SELECT masked_content FROM credentials", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, "");
}
