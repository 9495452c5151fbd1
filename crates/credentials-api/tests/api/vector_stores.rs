//! A vector store through the gRPC API: a Qdrant credential created in the `vector_store`
//! category, validated against a local server that speaks Qdrant's documented REST format
//! (`api-key` header, `GET /collections`, `GET /collections/{name}`), its collections
//! discovered and served by `GetSchema` as tables with their dimension and metric; the key
//! never shows in a preview, a message, a schema or its DDL.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};

const GOOD: &str = "qdrant-good-MARKER-5be1c0ffee";
const BAD: &str = "qdrant-bad-MARKER-5be1deadbeef";

/// The request lines a fake server saw, each with the `api-key` it carried.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A Qdrant REST API on 127.0.0.1 accepting only `GOOD`; it records each request line with
/// the `api-key` it carried.
fn fake_qdrant() -> (u16, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut key = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("api-key")
                {
                    key = value.trim().to_owned();
                }
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            let request_line = request_line.trim_end().to_owned();
            log.lock()
                .unwrap()
                .push((request_line.clone(), key.clone()));
            let (status, body) = match (key == GOOD, request_line.as_str()) {
                (false, _) => ("401 Unauthorized", "Unauthorized: Invalid API key or JWT"),
                (true, "GET /collections HTTP/1.1") => (
                    "200 OK",
                    r#"{"result":{"collections":[{"name":"support_docs"}]},"status":"ok","time":0.00001}"#,
                ),
                (true, "GET /collections/support_docs HTTP/1.1") => (
                    "200 OK",
                    r#"{"result":{"status":"green","optimizer_status":"ok","points_count":1200,
                      "config":{"params":{"vectors":{"size":1536,"distance":"Cosine"},
                      "shard_number":1}},"payload_schema":{"lang":{"data_type":"keyword","points":1200}}},
                      "status":"ok","time":0.0001}"#,
                ),
                (true, _) => (
                    "404 Not Found",
                    r#"{"status":{"error":"Not found"},"time":0.0}"#,
                ),
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_qdrant_credential_validates_and_its_collections_become_its_schema() {
    let (port, seen) = fake_qdrant();
    let stack =
        TestApi::start_with(&["--egress-allow", "127.0.0.0/8", "--rewrap-interval", "0"]).await;
    let token = stack.token(&["ws"], ALL);
    let url = format!("http://127.0.0.1:{port}");
    let mut request = create(
        "support search",
        "qdrant",
        fields(&[("api_key", GOOD), ("url", &url)]),
    );
    request.category = "vector_store".into();
    let c = stack.create(&token, request).await;
    assert_eq!(c.category, "vector_store");
    // The preview shows the key's ends and where it goes, never the key.
    assert!(!c.masked_content.contains("MARKER"), "{}", c.masked_content);
    assert!(
        c.masked_content
            .contains(&format!("url=http://127.0.0.1:{port}")),
        "{}",
        c.masked_content
    );
    assert!(!c.has_schema && c.schema_updated_at.is_none());

    let mut m = stack.management();
    let answer = m
        .validate_credential(authed(
            pb::ValidateCredentialRequest {
                id: c.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let result = answer.result.unwrap();
    assert_eq!(
        result.outcome,
        pb::ValidationOutcome::Valid as i32,
        "{}",
        result.message
    );
    assert_eq!(
        seen.lock().unwrap().first().cloned(),
        Some(("GET /collections HTTP/1.1".to_owned(), GOOD.to_owned())),
        "the documented read, with the key in api-key"
    );

    let bad = stack
        .create(
            &token,
            create(
                "wrong key",
                "qdrant",
                fields(&[("api_key", BAD), ("url", &url)]),
            ),
        )
        .await;
    let result = m
        .validate_credential(authed(
            pb::ValidateCredentialRequest {
                id: bad.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        result.outcome,
        pb::ValidationOutcome::InvalidCredentials as i32,
        "{}",
        result.message
    );
    assert!(!result.message.contains("MARKER"), "{}", result.message);

    // Discovery: the collection is stored as a table with its dimension and metric.
    let discovered = m
        .discover_schema(authed(
            pb::DiscoverSchemaRequest {
                id: c.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((discovered.table_count, discovered.truncated), (1, false));
    let credential = discovered.credential.unwrap();
    assert!(credential.has_schema && credential.schema_updated_at.is_some());
    assert!(!credential.masked_content.contains("MARKER"));

    let schema = m
        .get_schema(authed(
            pb::GetSchemaRequest {
                id: c.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let ns = &schema.schema.unwrap().namespaces[0];
    assert_eq!(ns.name, "qdrant");
    let docs = &ns.tables[0];
    assert_eq!(docs.name, "support_docs");
    let vector = docs.columns.iter().find(|c| c.name == "vector").unwrap();
    assert_eq!(
        (vector.data_type.as_str(), vector.description.as_str()),
        ("vector(1536)", "Cosine")
    );
    assert!(
        docs.description.contains("1200 points"),
        "{}",
        docs.description
    );
    assert!(
        schema.ddl.contains("CREATE TABLE qdrant.support_docs (")
            && schema
                .ddl
                .contains("vector vector(1536) NOT NULL, -- Cosine")
            && schema
                .ddl
                .contains("lang keyword, -- indexed payload field"),
        "{}",
        schema.ddl
    );
    assert!(!schema.ddl.contains("MARKER"));

    // Read back, listed by its category: still only the preview.
    let got = m
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
    assert!(got.has_schema);
    assert!(
        !got.masked_content.contains("MARKER"),
        "{}",
        got.masked_content
    );
    let listed = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                category: "vector_store".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.credentials.len(), 2);
    assert!(
        listed
            .credentials
            .iter()
            .all(|c| !c.masked_content.contains("MARKER"))
    );

    // The catalogue lists the type in its category, with both capabilities.
    let types = m
        .list_credential_types(authed(
            pb::ListCredentialTypesRequest {
                category: "vector_store".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .types;
    let ids: Vec<&str> = types.iter().map(|t| t.r#type.as_str()).collect();
    assert_eq!(ids, ["chroma", "milvus", "pinecone", "qdrant", "weaviate"]);
    let qdrant = types.iter().find(|t| t.r#type == "qdrant").unwrap();
    assert!(qdrant.supports_validation && qdrant.supports_schema_discovery);
}
