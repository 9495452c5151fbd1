//! No message ever contains a secret: every HTTP-probed type, with a marker in each secret
//! field, against a server that echoes the whole request (headers, URI, body) back in every
//! status it can answer, and against refused and unreachable destinations.

#![allow(clippy::unwrap_used)]

mod http_support;

use credentials_core::catalogue::{self, Probe};
use credentials_probe::{EgressPolicy, Prober, ValidationOutcome};
use http_support::{MARKER, Reply, Seen, TestServer, config, value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

const TEST_KEY: &str = include_str!("fixtures/test_rsa_key.pem");

/// The types whose probes speak HTTP (the database and SMTP types are probed elsewhere).
fn http_types() -> Vec<&'static str> {
    catalogue::all()
        .iter()
        .filter(|t| {
            !matches!(
                t.probe,
                Probe::Database(_) | Probe::DatabaseOfField(_) | Probe::SmtpLogin
            )
        })
        .map(|t| t.id)
        .collect()
}

/// Values with the marker in every secret field, pointed at `base`.
fn values_for(id: &str, base: &str) -> Vec<Vec<(String, String)>> {
    let m = |prefix: &str| format!("{prefix}-{MARKER}");
    let fields = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    match id {
        "bedrock" => vec![fields(&[
            ("access_key_id", format!("AKIA{MARKER}")),
            ("secret_access_key", m("secret")),
            ("region", "us-east-1".into()),
            ("session_token", m("token")),
        ])],
        "bigquery" => vec![fields(&[(
            "service_account_json",
            serde_json::json!({
                "type": "service_account",
                "private_key_id": m("kid"),
                "private_key": TEST_KEY,
                "client_email": format!("probe-{MARKER}@p.iam.gserviceaccount.com"),
                "token_uri": format!("{base}/token-{MARKER}"),
            })
            .to_string(),
        )])],
        "snowflake" => vec![
            fields(&[
                ("account", "acct".into()),
                ("username", "probe".into()),
                ("password", m("pw")),
            ]),
            fields(&[
                ("account", "acct".into()),
                ("username", "probe".into()),
                ("private_key", TEST_KEY.into()),
            ]),
        ],
        "static_file" => vec![fields(&[("url", format!("{base}/file.csv?sig={MARKER}"))])],
        "api_key" => vec![
            fields(&[("api_key", m("key")), ("endpoint", format!("{base}/check"))]),
            fields(&[
                ("api_key", m("key")),
                ("endpoint", format!("{base}/check")),
                ("header_name", "X-Api-Key".into()),
            ]),
        ],
        "oauth" => vec![fields(&[
            ("access_token", m("at")),
            ("refresh_token", m("rt")),
            ("client_id", "app".into()),
            ("client_secret", m("cs")),
            ("token_url", format!("{base}/token")),
        ])],
        "qdrant" | "weaviate" | "chroma" => vec![fields(&[
            ("api_key", m("key")),
            ("url", format!("{base}/{id}")),
        ])],
        "milvus" => vec![
            fields(&[
                ("url", format!("{base}/milvus")),
                ("username", "root".into()),
                ("password", m("pw")),
            ]),
            fields(&[("url", format!("{base}/milvus")), ("password", m("zilliz"))]),
        ],
        "airtable" => vec![fields(&[("access_token", m("pat"))])],
        "notion" => vec![fields(&[("token", m("ntn"))])],
        // Its site must be https: the plain echo server fails the handshake, whose message
        // must not show the token either.
        "confluence" => vec![fields(&[
            ("site_url", base.replace("http://", "https://")),
            ("email", "me@example.com".into()),
            ("api_token", m("atl")),
        ])],
        _ => vec![fields(&[("api_key", m("sk"))])],
    }
}

/// Echoes everything it received in the answer, with the status the test chooses.
async fn echo_server(status: Arc<AtomicU16>) -> TestServer {
    TestServer::start(move |req: &Seen| {
        let status = status.load(Ordering::SeqCst);
        let mut echo = format!("{} {} ", req.method, req.uri);
        for (name, value) in &req.headers {
            echo.push_str(&format!("{name}: {} | ", value.to_str().unwrap_or("?")));
        }
        echo.push_str(&req.body_text());
        if status == 302 {
            return Reply::redirect(302, &format!("/again?{MARKER}"));
        }
        if req.path().starts_with("/bedrock") {
            let token = req.header("x-amz-security-token").unwrap_or("");
            return Reply::xml(
                status,
                format!(
                    "<GetCallerIdentityResponse><GetCallerIdentityResult>\
                     <Arn>arn:aws:iam::123456789012:user/{token}</Arn>\
                     </GetCallerIdentityResult></GetCallerIdentityResponse>\
                     <Error><Code>InvalidClientTokenId</Code><Message>{echo}</Message></Error>"
                ),
            );
        }
        Reply::new(
            status,
            serde_json::json!({
                "success": status == 200,
                "code": "390100",
                "message": echo,
                "error": "invalid_grant",
                "error_description": echo,
                "detail": { "status": "missing_permissions", "message": echo },
                "access_token": echo,
                "refresh_token": echo,
                "data": { "token": echo },
            })
            .to_string(),
        )
    })
    .await
}

#[tokio::test]
async fn no_message_contains_a_secret() {
    let status = Arc::new(AtomicU16::new(200));
    let server = echo_server(Arc::clone(&status)).await;
    let base = server.url();
    let types = http_types();
    let overrides: Vec<(&str, String)> = types
        .iter()
        .map(|id| (*id, format!("{base}/{id}")))
        .collect();
    // BigQuery's own token_uri is used (it carries the marker in its path).
    let overrides: Vec<(&str, String)> = overrides
        .into_iter()
        .filter(|(id, _)| *id != "bigquery")
        .collect();
    let allowed = Prober::new(config(&overrides));
    let denied = Prober::new(credentials_probe::ProbeConfig {
        egress: EgressPolicy::new(),
        ..config(&overrides)
    });

    let mut checked = 0;
    for code in [200, 206, 302, 400, 401, 403, 404, 405, 416, 429, 500, 503] {
        status.store(code, Ordering::SeqCst);
        for id in &types {
            for fields in values_for(id, &base) {
                let refs: Vec<(&str, &str)> = fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let v = value(id, &refs);
                for prober in [&allowed, &denied] {
                    let result = prober.validate(id, &v).await;
                    assert!(
                        !result.message.contains(MARKER),
                        "{id} at HTTP {code}: {:?}",
                        result.message
                    );
                    assert!(!result.message.is_empty(), "{id}");
                    assert_ne!(result.outcome, ValidationOutcome::Unspecified, "{id}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "{checked}");

    // Nothing listening.
    drop(server);
    for id in &types {
        for fields in values_for(id, &base) {
            let refs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let result = allowed.validate(id, &value(id, &refs)).await;
            assert!(
                !result.message.contains(MARKER),
                "{id}: {:?}",
                result.message
            );
        }
    }
}

#[tokio::test]
async fn a_valid_answer_is_never_invented() {
    // Every HTTP type against an endpoint answering 401: none may come back Valid.
    let status = Arc::new(AtomicU16::new(401));
    let server = echo_server(status).await;
    let base = server.url();
    let types = http_types();
    let overrides: Vec<(&str, String)> = types
        .iter()
        .filter(|id| **id != "bigquery")
        .map(|id| (*id, format!("{base}/{id}")))
        .collect();
    let prober = Prober::new(config(&overrides));
    for id in &types {
        for fields in values_for(id, &base) {
            let refs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let result = prober.validate(id, &value(id, &refs)).await;
            assert_ne!(result.outcome, ValidationOutcome::Valid, "{id}: {result:?}");
        }
    }
}
