//! The product document's `/api/v1/credentials` surface, driven by a real HTTP client: its
//! create, list, filter, update and delete examples as written, its field names both ways,
//! and the same rules as gRPC (isolation, etag, bad input, permissions, nothing written on a
//! refusal, never a secret or a ciphertext in an answer).

use crate::support::*;

const KEY: &str = "sk-proj-MARKER0123456789abcdefghijkl";
const NEW_KEY: &str = "sk-proj-NEWMARKER9876543210zyxwvuts";

/// The answer carries neither key nor anything like a ciphertext.
fn assert_no_secret(answer: &Answer) {
    for marker in [
        "MARKER0123456789",
        "NEWMARKER98765",
        "encryptedData",
        "ciphertext",
    ] {
        assert!(!answer.text.contains(marker), "{marker} in {}", answer.text);
    }
}

#[tokio::test]
async fn the_documents_examples_run_as_written() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();

    // Create, exactly as the document's curl example (with a longer key).
    let created = http
        .json(
            "POST",
            "/api/v1/credentials",
            &token,
            &format!(r#"{{"name": "My OpenAI Key", "credentialName": "openAIApi", "plainDataObj": {{"openAIApiKey": "{KEY}"}}}}"#),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_no_secret(&created);
    let c = &created.json;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["name"], "My OpenAI Key");
    assert_eq!(c["credentialName"], "openAIApi");
    assert_eq!(c["type"], "openai");
    assert_eq!(c["workspaceId"], "ws");
    assert_eq!(c["maskedContent"], "sk-pr...ijkl");
    assert!(c["createdDate"].as_str().unwrap().ends_with('Z'));
    assert_eq!(c["createdDate"], c["updatedDate"]);
    assert_eq!(
        created.headers["etag"],
        format!("\"{}\"", c["etag"].as_str().unwrap())
    );

    // Another type, by our id, with our field name.
    let other = http
        .json(
            "POST",
            "/api/v1/credentials",
            &token,
            r#"{"name": "Claude", "credentialName": "anthropic", "plainDataObj": {"api_key": "sk-ant-0123456789abcdefghij"}}"#,
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.text);
    assert_eq!(other.json["credentialName"], "anthropicApi");

    // List, and filter by the product's name or our id.
    let all = http.get("/api/v1/credentials", &token).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.json.as_array().unwrap().len(), 2);
    assert_no_secret(&all);
    for filter in ["openAIApi", "openai"] {
        let some = http
            .get(
                &format!("/api/v1/credentials?credentialName={filter}"),
                &token,
            )
            .await;
        let names: Vec<&str> = some
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["My OpenAI Key"], "{filter}");
    }
    let unknown = http
        .get("/api/v1/credentials?credentialName=noSuchApi", &token)
        .await;
    assert_eq!(
        (unknown.status, unknown.violations()),
        (400, vec!["credentialName".to_owned()])
    );

    // Get by id.
    let got = http.get(&format!("/api/v1/credentials/{id}"), &token).await;
    assert_eq!(
        (got.status, got.json["id"].as_str()),
        (200, Some(id.as_str()))
    );

    // Update only the fields given, as the document's example.
    let updated = http
        .json(
            "PUT",
            &format!("/api/v1/credentials/{id}"),
            &token,
            &format!(r#"{{"name": "Updated OpenAI Key", "plainDataObj": {{"openAIApiKey": "{NEW_KEY}"}}}}"#),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_no_secret(&updated);
    assert_eq!(updated.json["name"], "Updated OpenAI Key");
    assert_eq!(updated.json["maskedContent"], "sk-pr...vuts");
    assert_ne!(updated.json["etag"], c["etag"]);
    // The new value is the one an internal service reads.
    let read = stack
        .access()
        .access_credential(authed(by_id_in("ws", &id), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.secret, NEW_KEY);
    let renamed = http
        .json(
            "PUT",
            &format!("/api/v1/credentials/{id}"),
            &token,
            r#"{"description": "prod"}"#,
        )
        .await;
    assert_eq!(
        (
            renamed.json["name"].as_str(),
            renamed.json["description"].as_str()
        ),
        (Some("Updated OpenAI Key"), Some("prod"))
    );

    // Delete answers the document's message; the credential is gone from this surface.
    let deleted = http
        .send(
            "DELETE",
            &format!("/api/v1/credentials/{id}"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.json,
        serde_json::json!({"message": "Credential deleted successfully"})
    );
    let gone = http.get(&format!("/api/v1/credentials/{id}"), &token).await;
    assert_eq!(gone.status, 404);
    // Every answer names its request, refusals made here included; a caller's id is kept.
    assert!(gone.headers.contains_key("x-request-id"));
    let traced = http
        .send(
            "GET",
            "/api/v1/credentials",
            Some(&token),
            None,
            &[("x-request-id", "trace-me-1")],
        )
        .await;
    assert_eq!(traced.headers["x-request-id"], "trace-me-1");
    let left = http.get("/api/v1/credentials", &token).await;
    assert_eq!(left.json.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn multi_field_types_take_the_products_field_names() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();
    // Bedrock (the product's awsApi) needs a region the product keeps elsewhere: named.
    let without_region = http
        .json(
            "POST",
            "/api/v1/credentials",
            &token,
            r#"{"name": "aws", "credentialName": "awsApi", "plainDataObj": {"awsKey": "AKIA0123456789ABCDEF", "awsSecret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}}"#,
        )
        .await;
    assert_eq!(without_region.status, 400, "{}", without_region.text);
    assert!(
        without_region.text.contains("region"),
        "{}",
        without_region.text
    );
    let with_region = http
        .json(
            "POST",
            "/api/v1/credentials",
            &token,
            r#"{"name": "aws", "credentialName": "awsApi", "plainDataObj": {"awsKey": "AKIA0123456789ABCDEF", "awsSecret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "region": "us-east-1"}}"#,
        )
        .await;
    assert_eq!(with_region.status, 200, "{}", with_region.text);
    assert_eq!(with_region.json["type"], "bedrock");
    assert!(
        !with_region.text.contains("EXAMPLEKEY"),
        "{}",
        with_region.text
    );
    let fields = stack
        .access()
        .access_credential(authed(
            by_id_in("ws", with_region.json["id"].as_str().unwrap()),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .fields;
    assert_eq!(fields["access_key_id"], "AKIA0123456789ABCDEF");
    assert_eq!(
        fields["secret_access_key"],
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    );
}

#[tokio::test]
async fn refusals_are_the_grpc_ones_and_write_nothing() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();
    let created = http
        .json("POST", "/api/v1/credentials", &token, &format!(r#"{{"name": "k", "credentialName": "openAIApi", "plainDataObj": {{"openAIApiKey": "{KEY}"}}}}"#))
        .await;
    let id = created.json["id"].as_str().unwrap().to_owned();
    let etag = created.json["etag"].as_str().unwrap().to_owned();
    let rows = (
        stack.count("credentials").await,
        stack.count("audit_events").await,
    );

    let bad = |body: &'static str| {
        let http = http.clone();
        let token = token.clone();
        async move { http.json("POST", "/api/v1/credentials", &token, body).await }
    };
    for (body, field) in [
        (
            r#"{"credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": "sk-0123456789abcdefghijk"}}"#,
            "name",
        ),
        (
            r#"{"name": "x", "plainDataObj": {"openAIApiKey": "sk-0123456789abcdefghijk"}}"#,
            "credentialName",
        ),
        (
            r#"{"name": "x", "credentialName": "openAIApi"}"#,
            "plainDataObj",
        ),
        (
            r#"{"name": 7, "credentialName": "openAIApi", "plainDataObj": {}}"#,
            "name",
        ),
        (
            r#"{"name": "x", "credentialName": "openAIApi", "plainDataObj": {"pineconeEnv": "us"}}"#,
            "plainDataObj.pineconeEnv",
        ),
        (
            r#"{"name": "x", "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": ["a"]}}"#,
            "plainDataObj.openAIApiKey",
        ),
        (
            r#"{"name": "x", "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": "k"}, "encryptedData": "x"}"#,
            "encryptedData",
        ),
        (r#"{"name": "x""#, ""),
    ] {
        let answer = bad(body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(answer.json["code"], 3, "{body}");
        assert_eq!(
            answer.violations(),
            [field.to_owned()],
            "{body}: {}",
            answer.text
        );
    }
    // A duplicate name: 409, as ALREADY_EXISTS.
    let duplicate = http
        .json("POST", "/api/v1/credentials", &token, &format!(r#"{{"name": "k", "credentialName": "openAIApi", "plainDataObj": {{"openAIApiKey": "{KEY}"}}}}"#))
        .await;
    assert_eq!(
        (duplicate.status, duplicate.json["code"].as_i64()),
        (409, Some(6))
    );

    // No token, a token without write, another workspace's token.
    let anonymous = http
        .send("GET", "/api/v1/credentials", None, None, &[])
        .await;
    assert_eq!(
        (anonymous.status, anonymous.json["code"].as_i64()),
        (401, Some(16))
    );
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
    let reader = stack.token(&["ws"], &["read"]);
    let denied = http
        .json(
            "PUT",
            &format!("/api/v1/credentials/{id}"),
            &reader,
            r#"{"name": "y"}"#,
        )
        .await;
    assert_eq!(
        (denied.status, denied.json["code"].as_i64()),
        (403, Some(7))
    );
    let stranger = stack.token(&["elsewhere"], ALL);
    let missing = http
        .get(
            "/api/v1/credentials/00000000-0000-4000-8000-000000000000",
            &stranger,
        )
        .await;
    for method in ["GET", "DELETE"] {
        let theirs = http
            .send(
                method,
                &format!("/api/v1/credentials/{id}"),
                Some(&stranger),
                None,
                &[],
            )
            .await;
        assert_eq!(
            (theirs.status, &theirs.json),
            (404, &missing.json),
            "{method}"
        );
    }

    // A stale If-Match: 412, and nothing changes.
    let stale = http
        .send(
            "PUT",
            &format!("/api/v1/credentials/{id}"),
            Some(&token),
            Some(r#"{"name": "z"}"#),
            &[("if-match", "\"v999\"")],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    let stale_delete = http
        .send(
            "DELETE",
            &format!("/api/v1/credentials/{id}"),
            Some(&token),
            None,
            &[("if-match", "\"v999\"")],
        )
        .await;
    assert_eq!(stale_delete.status, 412);
    assert_eq!(
        (
            stack.count("credentials").await,
            stack.count("audit_events").await
        ),
        rows
    );

    // The current one passes.
    let fresh = http
        .send(
            "PUT",
            &format!("/api/v1/credentials/{id}"),
            Some(&token),
            Some(r#"{"name": "z"}"#),
            &[("if-match", &format!("\"{etag}\""))],
        )
        .await;
    assert_eq!(
        (fresh.status, fresh.json["name"].as_str()),
        (200, Some("z"))
    );
}

#[tokio::test]
async fn the_workspace_comes_from_the_token_or_the_header() {
    let stack = TestApi::start().await;
    let both = stack.token(&["ws-a", "ws-b"], ALL);
    let http = stack.http();
    let body = format!(
        r#"{{"name": "k", "credentialName": "openAIApi", "plainDataObj": {{"openAIApiKey": "{KEY}"}}}}"#
    );
    // The token names two: which one must be said.
    let unsaid = http.json("POST", "/api/v1/credentials", &both, &body).await;
    assert_eq!(unsaid.status, 400, "{}", unsaid.text);
    let said = http
        .send(
            "POST",
            "/api/v1/credentials",
            Some(&both),
            Some(&body),
            &[("x-workspace-id", "ws-b")],
        )
        .await;
    assert_eq!(
        (said.status, said.json["workspaceId"].as_str()),
        (200, Some("ws-b")),
        "{}",
        said.text
    );
    let listed = http
        .send(
            "GET",
            "/api/v1/credentials",
            Some(&both),
            None,
            &[("x-workspace-id", "ws-a")],
        )
        .await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(0));
    // A workspace the token does not name is refused as on gRPC.
    let foreign = http
        .send(
            "GET",
            "/api/v1/credentials",
            Some(&both),
            None,
            &[("x-workspace-id", "ws-c")],
        )
        .await;
    assert!(matches!(foreign.status, 403 | 404), "{}", foreign.text);
}

#[tokio::test]
async fn the_documents_pinecone_example_lands_in_the_vector_store_category() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();
    let created = http
        .json(
            "POST",
            "/api/v1/credentials",
            &token,
            r#"{"name": "Vectors", "credentialName": "pineconeApi", "plainDataObj": {"pineconeApiKey": "pcsk_MARKER0123456789abcdefghijklmn", "pineconeEnv": "us-west1-gcp"}}"#,
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_no_secret(&created);
    assert_eq!(
        (
            created.json["credentialName"].as_str(),
            created.json["type"].as_str(),
            created.json["category"].as_str()
        ),
        (Some("pineconeApi"), Some("pinecone"), Some("vector_store"))
    );
    let listed = http
        .get("/api/v1/credentials?credentialName=pineconeApi", &token)
        .await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1));
    // Over the JSON mapping, the category filters the catalogue too.
    let types = http
        .get("/v1/credentialTypes?category=vector_store", &token)
        .await;
    let ids: Vec<&str> = types.json["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap_or_default())
        .collect();
    assert!(
        ids.contains(&"pinecone") && ids.contains(&"qdrant"),
        "{}",
        types.text
    );
    // The catalogue tells a client the product's names.
    let pinecone = types.json["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "pinecone")
        .unwrap();
    assert_eq!(pinecone["productName"], "pineconeApi");
    let names: Vec<&str> = pinecone["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["productName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pineconeApiKey", "pineconeEnv"]);
}
