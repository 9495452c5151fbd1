//! Pages, filters and the type catalogue.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::collections::HashMap;

#[tokio::test]
async fn pages_are_stable_and_types_are_listed() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    for i in 0..7 {
        let type_id = if i % 2 == 0 { "openai" } else { "elevenlabs" };
        m.create_credential(authed(
            create(
                &format!("c{i}"),
                type_id,
                secret("key-0123456789abcdefghijkl"),
            ),
            &token,
        ))
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut token_page = String::new();
    loop {
        let page = m
            .list_credentials(authed(
                pb::ListCredentialsRequest {
                    page_size: 3,
                    page_token: token_page.clone(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.credentials.len() <= 3);
        seen.extend(page.credentials.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token_page = page.next_page_token;
    }
    assert_eq!(seen, ["c6", "c5", "c4", "c3", "c2", "c1", "c0"]);

    let speech = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                category: "speech".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(speech.credentials.len(), 3);
    // A token from a filtered listing does not work for another filter.
    let first = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                r#type: "openai".into(),
                page_size: 1,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let err = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                page_token: first.next_page_token,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "page_token");

    let types = m
        .list_credential_types(authed(pb::ListCredentialTypesRequest::default(), &token))
        .await
        .unwrap()
        .into_inner()
        .types;
    // Every catalogue type, once, in the catalogue's order (a new type needs no edit here).
    let served: Vec<&str> = types.iter().map(|t| t.r#type.as_str()).collect();
    let catalogue: Vec<&str> = credentials_core::catalogue::all()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(served, catalogue);
    assert!(types.len() >= 46, "the product documents name 46 types");
    let by_type: HashMap<&str, &pb::CredentialType> =
        types.iter().map(|t| (t.r#type.as_str(), t)).collect();
    let bedrock = by_type["bedrock"];
    let required: Vec<&str> = bedrock
        .fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(required, ["access_key_id", "secret_access_key", "region"]);
    assert!(
        by_type["database"]
            .fields
            .iter()
            .any(|f| f.name == "schema_type" && f.required && !f.allowed_values.is_empty())
    );
    let llm = m
        .list_credential_types(authed(
            pb::ListCredentialTypesRequest {
                category: "llm".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .types;
    // Exactly the catalogue's LLM types (24 in the product documents), in order.
    let served: Vec<&str> = llm.iter().map(|t| t.r#type.as_str()).collect();
    let catalogue: Vec<&str> = credentials_core::catalogue::all()
        .iter()
        .filter(|t| t.category == credentials_core::Category::Llm)
        .map(|t| t.id)
        .collect();
    assert_eq!(served, catalogue);
    assert!(llm.iter().all(|t| t.category == "llm"));
    assert!(llm.len() >= 24, "the product documents name 24 LLM types");
}
