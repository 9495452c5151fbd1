//! What `AccessCredentialResponse.secret` means: the type's primary secret (the catalogue's
//! `primary_secret_field`), never an identity such as Bedrock's access key id; `fields` carries
//! every field of the value.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::collections::HashMap;

async fn access(stack: &TestApi, token: &str, id: &str) -> pb::AccessCredentialResponse {
    stack
        .access_as(token)
        .access_credential(by_id(id))
        .await
        .unwrap_or_else(|e| panic!("access {id}: {e:?}"))
        .into_inner()
}

fn owned(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn secret_is_the_primary_secret_and_fields_carry_everything() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);

    let bedrock = [
        ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
        (
            "secret_access_key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("region", "us-east-1"),
    ];
    let created = stack
        .create(&token, create("Bedrock", "bedrock", fields(&bedrock)))
        .await;
    let got = access(&stack, &token, &created.id).await;
    assert_eq!(got.secret, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    assert_eq!(got.fields, owned(&bedrock));

    let smtp = [
        ("host", "smtp.example.com"),
        ("port", "587"),
        ("username", "mailer"),
        ("password", "smtp-password-0123456789"),
    ];
    let created = stack
        .create(&token, create("Mail", "smtp", fields(&smtp)))
        .await;
    let got = access(&stack, &token, &created.id).await;
    assert_eq!(got.secret, "smtp-password-0123456789");
    assert_eq!(got.fields, owned(&smtp));

    // OAuth without its primary secret (access_token is optional): the first secret present.
    let oauth = [
        ("client_id", "client-123"),
        ("refresh_token", "refresh-token-0123456789"),
    ];
    let created = stack
        .create(&token, create("OAuth", "oauth", fields(&oauth)))
        .await;
    let got = access(&stack, &token, &created.id).await;
    assert_eq!(got.secret, "refresh-token-0123456789");
    assert_eq!(got.fields, owned(&oauth));

    let created = stack
        .create(
            &token,
            create("OpenAI", "openai", secret("sk-single-0123456789abcdef")),
        )
        .await;
    let got = access(&stack, &token, &created.id).await;
    assert_eq!(got.secret, "sk-single-0123456789abcdef");
    assert_eq!(
        got.fields,
        owned(&[("api_key", "sk-single-0123456789abcdef")])
    );

    // The catalogue says which field `secret` is.
    let types = stack
        .credentials(&token)
        .list_credential_types(pb::ListCredentialTypesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .types;
    let primary_secret = |id: &str| {
        types
            .iter()
            .find(|t| t.r#type == id)
            .map(|t| t.primary_secret_field.clone())
            .unwrap()
    };
    assert_eq!(primary_secret("bedrock"), "secret_access_key");
    assert_eq!(primary_secret("smtp"), "password");
    assert_eq!(primary_secret("oauth"), "access_token");
    assert_eq!(primary_secret("openai"), "api_key");
}
