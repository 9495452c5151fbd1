//! BigQuery (JWT-bearer grant), Snowflake (REST login), static files, and the HTTP tools
//! (`api_key`, `oauth`) against local servers speaking the documented wire formats.

#![allow(clippy::unwrap_used)]

mod http_support;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use credentials_probe::{ProbeResult, Prober, ValidationOutcome};
use http_support::{MARKER, Reply, Seen, TestServer, config, stored_value};

const TEST_KEY: &str = include_str!("fixtures/test_rsa_key.pem");
const TEST_KEY_PKCS1: &str = include_str!("fixtures/test_rsa_key_pkcs1.pem");
const FINGERPRINT: &str = "SHA256:+QLO7v+8WMF6eCUlI+swARY2ENCoX38GUhudTep+fA0=";
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

async fn probe(prober: &Prober, type_id: &str, fields: &[(&str, &str)]) -> ProbeResult {
    // As stored, unchecked: several cases below are values writes refuse now.
    let result = prober.validate(type_id, &stored_value(fields)).await;
    assert!(!result.message.contains(MARKER), "{type_id}: {result:?}");
    assert!(
        !result.message.contains("PRIVATE KEY"),
        "{type_id}: {result:?}"
    );
    result
}

/// Verifies an RS256 JWT with the test key's public half; the claims if the signature holds.
fn verify_jwt(token: &str) -> Option<serde_json::Value> {
    let body: String = TEST_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let key = ring::signature::RsaKeyPair::from_pkcs8(&STANDARD.decode(body).unwrap()).unwrap();
    let (signed, signature) = token.rsplit_once('.')?;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed.split('.').next()?).ok()?).ok()?;
    if header["alg"] != "RS256" {
        return None;
    }
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        key.public().as_ref(),
    )
    .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).ok()?)
    .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed.split('.').nth(1)?).ok()?).ok()
}

// --- BigQuery -------------------------------------------------------------------------------

fn service_account(email: &str, token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "probe-project",
        "private_key_id": format!("kid-{MARKER}"),
        "private_key": TEST_KEY,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    })
    .to_string()
}

/// Google's token endpoint: a JWT-bearer grant whose assertion is signed by a known key.
async fn google_server() -> TestServer {
    TestServer::start(|req: &Seen| {
        let form = req.form();
        if req.method != "POST"
            || form.get("grant_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        {
            return Reply::new(400, r#"{"error":"unsupported_grant_type"}"#);
        }
        let Some(claims) = form.get("assertion").and_then(|a| verify_jwt(a)) else {
            return Reply::new(
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
            );
        };
        let expected_aud = if req.path() == "/own-token-uri" {
            claims["aud"].as_str().unwrap_or("").to_owned()
        } else {
            GOOGLE_TOKEN_URI.to_owned()
        };
        if claims["aud"] != expected_aud.as_str()
            || claims["scope"] != "https://www.googleapis.com/auth/bigquery.readonly"
            || claims["exp"].as_u64() <= claims["iat"].as_u64()
        {
            return Reply::new(400, r#"{"error":"invalid_grant","error_description":"Invalid JWT."}"#);
        }
        if claims["iss"] != "probe@probe-project.iam.gserviceaccount.com" {
            return Reply::new(
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid grant: account not found"}"#,
            );
        }
        Reply::new(
            200,
            format!(r#"{{"access_token":"ya29.{MARKER}","expires_in":3599,"token_type":"Bearer"}}"#),
        )
    })
    .await
}

#[tokio::test]
async fn bigquery_exchanges_a_signed_jwt_for_a_token() {
    let server = google_server().await;
    let prober = Prober::new(config(&[("bigquery", format!("{}/token", server.url()))]));
    let good = service_account(
        "probe@probe-project.iam.gserviceaccount.com",
        GOOGLE_TOKEN_URI,
    );
    let ok = probe(&prober, "bigquery", &[("service_account_json", &good)]).await;
    assert_eq!(ok.outcome, ValidationOutcome::Valid, "{ok:?}");

    let gone = service_account(
        "deleted@probe-project.iam.gserviceaccount.com",
        GOOGLE_TOKEN_URI,
    );
    let bad = probe(&prober, "bigquery", &[("service_account_json", &gone)]).await;
    assert_eq!(
        bad.outcome,
        ValidationOutcome::InvalidCredentials,
        "{bad:?}"
    );
    assert!(bad.message.contains("invalid_grant"));

    for broken in [
        format!("{{\"private_key\": \"{MARKER}\""),
        format!(r#"{{"type":"authorized_user","refresh_token":"{MARKER}"}}"#),
        format!(r#"{{"type":"service_account","client_email":"a@b","private_key":"{MARKER}"}}"#),
    ] {
        let result = probe(&prober, "bigquery", &[("service_account_json", &broken)]).await;
        assert_eq!(
            result.outcome,
            ValidationOutcome::InvalidCredentials,
            "{result:?}"
        );
    }
    assert_eq!(server.seen().len(), 2, "malformed keys must not be sent");
}

#[tokio::test]
async fn bigquery_token_uri_is_user_chosen_and_guarded() {
    let server = google_server().await;
    let prober = Prober::new(config(&[]));
    let own = format!("{}/own-token-uri", server.url());
    let json = service_account("probe@probe-project.iam.gserviceaccount.com", &own);
    let ok = probe(&prober, "bigquery", &[("service_account_json", &json)]).await;
    assert_eq!(ok.outcome, ValidationOutcome::Valid, "{ok:?}");

    let metadata = service_account(
        "probe@probe-project.iam.gserviceaccount.com",
        "http://169.254.169.254/computeMetadata/v1/token",
    );
    let denied = probe(&prober, "bigquery", &[("service_account_json", &metadata)]).await;
    assert_eq!(
        denied.outcome,
        ValidationOutcome::EgressDenied,
        "{denied:?}"
    );
}

// --- Snowflake ------------------------------------------------------------------------------

fn snowflake_server() -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    |req: &Seen| {
        if req.path() == "/session" && req.query() == "delete=true" {
            return if req.header("authorization")
                == Some(format!("Snowflake Token=\"tok-{MARKER}\"").as_str())
            {
                Reply::new(
                    200,
                    r#"{"data":null,"code":null,"message":null,"success":true}"#,
                )
            } else {
                Reply::new(401, r#"{"success":false}"#)
            };
        }
        if req.path() != "/session/v1/login-request" || req.method != "POST" {
            return Reply::new(404, "{}");
        }
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let data = &body["data"];
        let fail = |code: &str, message: &str| {
            Reply::new(
                200,
                serde_json::json!({
                    "data": { "nextAction": "RETRY_LOGIN", "authnMethod": "USERNAME_PASSWORD" },
                    "code": code, "message": message, "success": false,
                })
                .to_string(),
            )
        };
        if data["ACCOUNT_NAME"] != "MYORG-MYACCOUNT" || data["CLIENT_APP_ID"].as_str().is_none() {
            return fail("390201", "The requested account does not exist.");
        }
        let authenticated = if data["AUTHENTICATOR"] == "SNOWFLAKE_JWT" {
            let claims = data["TOKEN"].as_str().and_then(verify_jwt);
            match claims {
                Some(c)
                    if c["iss"] == format!("MYORG-MYACCOUNT.PROBE.{FINGERPRINT}").as_str()
                        && c["sub"] == "MYORG-MYACCOUNT.PROBE"
                        && data["LOGIN_NAME"] == "probe" =>
                {
                    true
                }
                _ => return fail("390144", "JWT token is invalid."),
            }
        } else {
            data["LOGIN_NAME"] == "probe" && data["PASSWORD"] == format!("pw-{MARKER}").as_str()
        };
        if !authenticated {
            return fail("390100", "Incorrect username or password was specified.");
        }
        if req.query() != "warehouse=COMPUTE_WH&roleName=ANALYST" {
            return fail("390189", "Role not granted");
        }
        Reply::new(
            200,
            format!(
                r#"{{"data":{{"masterToken":"mt-{MARKER}","token":"tok-{MARKER}","validityInSeconds":3600}},"code":null,"message":null,"success":true}}"#
            ),
        )
    }
}

#[tokio::test]
async fn snowflake_logs_in_with_a_password_or_a_key_pair() {
    let server = TestServer::start(snowflake_server()).await;
    let prober = Prober::new(config(&[("snowflake", server.url())]));
    let password = format!("pw-{MARKER}");
    let fields = [
        ("account", "myorg-myaccount"),
        ("username", "probe"),
        ("warehouse", "COMPUTE_WH"),
        ("role", "ANALYST"),
        ("password", password.as_str()),
    ];
    let ok = probe(&prober, "snowflake", &fields).await;
    assert_eq!(ok.outcome, ValidationOutcome::Valid, "{ok:?}");
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "login, then logout");
    assert_eq!(seen[1].path(), "/session");

    let bad = probe(
        &prober,
        "snowflake",
        &[
            ("account", "myorg-myaccount"),
            ("username", "probe"),
            ("password", &format!("wrong-{MARKER}")),
        ],
    )
    .await;
    assert_eq!(
        bad.outcome,
        ValidationOutcome::InvalidCredentials,
        "{bad:?}"
    );
    assert!(bad.message.contains("390100"));

    for key in [TEST_KEY, TEST_KEY_PKCS1] {
        let pair = probe(
            &prober,
            "snowflake",
            &[
                ("account", "myorg-myaccount"),
                ("username", "probe"),
                ("private_key", key),
                ("warehouse", "COMPUTE_WH"),
                ("role", "ANALYST"),
            ],
        )
        .await;
        assert_eq!(pair.outcome, ValidationOutcome::Valid, "{pair:?}");
    }
    let other_user = probe(
        &prober,
        "snowflake",
        &[
            ("account", "myorg-myaccount"),
            ("username", "someone"),
            ("private_key", TEST_KEY),
        ],
    )
    .await;
    assert_eq!(other_user.outcome, ValidationOutcome::InvalidCredentials);
    assert!(other_user.message.contains("390144"));

    let not_an_account = probe(
        &prober,
        "snowflake",
        &[
            ("account", "evil.com/x?"),
            ("username", "probe"),
            ("password", MARKER),
        ],
    )
    .await;
    assert_eq!(
        not_an_account.outcome,
        ValidationOutcome::InvalidCredentials
    );
}

#[tokio::test]
async fn snowflake_outages_are_provider_errors() {
    let server = TestServer::start(|_: &Seen| Reply::new(503, "<html>down</html>")).await;
    let prober = Prober::new(config(&[("snowflake", server.url())]));
    let result = probe(
        &prober,
        "snowflake",
        &[
            ("account", "myorg-myaccount"),
            ("username", "probe"),
            ("password", MARKER),
        ],
    )
    .await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::ProviderError,
        "{result:?}"
    );
    assert!(result.message.contains("503"));
}

// --- Static files ---------------------------------------------------------------------------

/// A file server shaped like S3: presigned URLs are bound to GET, so HEAD fails their check.
async fn file_server() -> TestServer {
    TestServer::start(|req: &Seen| {
        let ranged = req.header("range") == Some("bytes=0-0");
        let s3_error = |code: &str, message: &str| {
            Reply::xml(
                403,
                format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
            )
        };
        match (req.method.as_str(), req.path()) {
            (_, "/data.csv") => Reply::new(200, "a,b\n1,2\n"),
            ("HEAD", "/signed.csv") => s3_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match",
            ),
            ("GET", "/signed.csv") if ranged && req.query().contains(MARKER) => {
                Reply::new(206, "a")
            }
            (_, "/private.csv") => s3_error("AccessDenied", "Access Denied"),
            (_, "/expired.csv") => s3_error("AccessDenied", "Request has expired"),
            (_, "/auth.csv") => Reply::new(401, "{}"),
            ("HEAD", "/empty.csv") => Reply::new(405, ""),
            ("GET", "/empty.csv") if ranged => Reply::new(416, ""),
            _ => Reply::new(404, "<Error><Code>NoSuchKey</Code></Error>"),
        }
    })
    .await
}

#[tokio::test]
async fn static_files_must_be_readable() {
    let server = file_server().await;
    let prober = Prober::new(config(&[]));
    let url = |path: &str| format!("{}{path}", server.url());
    for (path, outcome) in [
        ("/data.csv", ValidationOutcome::Valid),
        (
            &*format!("/signed.csv?X-Amz-Signature={MARKER}"),
            ValidationOutcome::Valid,
        ),
        ("/empty.csv", ValidationOutcome::Valid),
        ("/private.csv", ValidationOutcome::InsufficientPermissions),
        ("/expired.csv", ValidationOutcome::InvalidCredentials),
        ("/auth.csv", ValidationOutcome::InvalidCredentials),
        ("/missing.csv", ValidationOutcome::ProviderError),
    ] {
        let result = probe(&prober, "static_file", &[("url", &url(path))]).await;
        assert_eq!(result.outcome, outcome, "{path}: {result:?}");
        if path == "/missing.csv" {
            assert!(result.message.contains("not found"), "{}", result.message);
        }
    }
    for local in ["file:///etc/passwd", "/etc/passwd"] {
        let result = probe(&prober, "static_file", &[("url", local)]).await;
        assert_eq!(result.outcome, ValidationOutcome::UnsupportedType);
        assert!(result.message.contains("does not read local files"));
    }
}

// --- Tools: api_key and oauth ---------------------------------------------------------------

#[tokio::test]
async fn tool_api_keys_are_checked_against_their_endpoint() {
    let server = TestServer::start(|req: &Seen| {
        let good = format!("good-{MARKER}");
        let sent = match req.path() {
            "/bearer" => req
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer ")),
            "/custom" => req.header("x-api-key"),
            _ => return Reply::new(404, "{}"),
        };
        if sent == Some(good.as_str()) {
            Reply::new(200, "{}")
        } else {
            Reply::new(
                401,
                format!(r#"{{"error":"bad key {}"}}"#, sent.unwrap_or("")),
            )
        }
    })
    .await;
    let prober = Prober::new(config(&[]));
    let good = format!("good-{MARKER}");
    let bad = format!("bad-{MARKER}");
    let bearer = format!("{}/bearer", server.url());
    let custom = format!("{}/custom", server.url());
    let cases: &[(&[(&str, &str)], ValidationOutcome)] = &[
        (
            &[("api_key", &good), ("endpoint", &bearer)],
            ValidationOutcome::Valid,
        ),
        (
            &[("api_key", &bad), ("endpoint", &bearer)],
            ValidationOutcome::InvalidCredentials,
        ),
        (
            &[
                ("api_key", &good),
                ("endpoint", &custom),
                ("header_name", "X-Api-Key"),
            ],
            ValidationOutcome::Valid,
        ),
        (
            &[
                ("api_key", &bad),
                ("endpoint", &custom),
                ("header_name", "X-Api-Key"),
            ],
            ValidationOutcome::InvalidCredentials,
        ),
        (
            &[
                ("api_key", &good),
                ("endpoint", &custom),
                ("header_name", "Host"),
            ],
            ValidationOutcome::InvalidCredentials,
        ),
        (
            &[
                ("api_key", &good),
                ("endpoint", &format!("{}/nowhere", server.url())),
            ],
            ValidationOutcome::ProviderError,
        ),
        (&[("api_key", &good)], ValidationOutcome::UnsupportedType),
    ];
    for (fields, outcome) in cases {
        let result = probe(&prober, "api_key", fields).await;
        assert_eq!(result.outcome, *outcome, "{fields:?}: {result:?}");
    }
    let unsupported = probe(&prober, "api_key", &[("api_key", &good)]).await;
    assert!(unsupported.message.contains("set the endpoint field"));
}

/// An OAuth token endpoint: `/basic` authenticates clients with HTTP Basic, `/post` only with
/// form fields (client_secret_post), `/public` takes a client id alone.
async fn token_server() -> TestServer {
    TestServer::start(|req: &Seen| {
        let form = req.form();
        let secret = format!("cs-{MARKER}");
        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!("app:{}", http_form_escape(&secret)))
        );
        let client_ok = match req.path() {
            "/basic" => req.header("authorization") == Some(basic.as_str()),
            "/post" => {
                req.header("authorization").is_none()
                    && form.get("client_id").map(String::as_str) == Some("app")
                    && form.get("client_secret") == Some(&secret)
            }
            "/public" => form.get("client_id").map(String::as_str) == Some("app"),
            _ => return Reply::new(404, "{}"),
        };
        if !client_ok {
            return Reply::new(
                401,
                r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
            );
        }
        if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
            return Reply::new(400, r#"{"error":"unsupported_grant_type"}"#);
        }
        let token = form.get("refresh_token").cloned().unwrap_or_default();
        if token == format!("rt-good-{MARKER}") {
            Reply::new(
                200,
                format!(r#"{{"access_token":"at-{MARKER}","token_type":"Bearer","expires_in":3600}}"#),
            )
        } else if token == format!("rt-rotate-{MARKER}") {
            Reply::new(
                200,
                format!(
                    r#"{{"access_token":"at-{MARKER}","refresh_token":"rt-new-{MARKER}","token_type":"Bearer","expires_in":3600}}"#
                ),
            )
        } else {
            Reply::new(
                400,
                r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
            )
        }
    })
    .await
}

fn http_form_escape(s: &str) -> String {
    credentials_probe::http::form_escape(s)
}

#[tokio::test]
async fn oauth_refresh_tokens_are_exchanged_at_the_token_endpoint() {
    let server = token_server().await;
    let prober = Prober::new(config(&[]));
    let url = |p: &str| format!("{}{p}", server.url());
    let secret = format!("cs-{MARKER}");
    let good = format!("rt-good-{MARKER}");
    let rotate = format!("rt-rotate-{MARKER}");
    let bad = format!("rt-bad-{MARKER}");
    let (basic, post, public) = (url("/basic"), url("/post"), url("/public"));
    let full = |token_url: &str, token: &str| -> Vec<(String, String)> {
        vec![
            ("token_url".into(), token_url.into()),
            ("refresh_token".into(), token.into()),
            ("client_id".into(), "app".into()),
            ("client_secret".into(), secret.clone()),
        ]
    };
    let run = |fields: Vec<(String, String)>| {
        let prober = prober.clone();
        async move {
            let refs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            probe(&prober, "oauth", &refs).await
        }
    };

    let ok = run(full(&basic, &good)).await;
    assert_eq!(ok.outcome, ValidationOutcome::Valid, "{ok:?}");
    assert!(ok.message.contains("nothing was stored"), "{}", ok.message);

    let rotated = run(full(&basic, &rotate)).await;
    assert_eq!(rotated.outcome, ValidationOutcome::Valid);
    assert!(rotated.message.contains("rotated"), "{}", rotated.message);

    let revoked = run(full(&basic, &bad)).await;
    assert_eq!(revoked.outcome, ValidationOutcome::InvalidCredentials);
    assert!(revoked.message.contains("invalid_grant"));

    let mut wrong_client = full(&basic, &good);
    wrong_client[3].1 = format!("wrong-{MARKER}");
    let wrong = run(wrong_client).await;
    assert_eq!(wrong.outcome, ValidationOutcome::InvalidCredentials);
    assert!(wrong.message.contains("invalid_client"));

    // A server taking client credentials only in the form: Basic fails, the form retry works.
    let before = server.seen().len();
    let post_only = run(full(&post, &good)).await;
    assert_eq!(post_only.outcome, ValidationOutcome::Valid, "{post_only:?}");
    assert_eq!(server.seen().len() - before, 2);

    let public_client = run(vec![
        ("token_url".into(), public.clone()),
        ("refresh_token".into(), good.clone()),
        ("client_id".into(), "app".into()),
    ])
    .await;
    assert_eq!(
        public_client.outcome,
        ValidationOutcome::Valid,
        "{public_client:?}"
    );

    let access_only = run(vec![("access_token".into(), format!("at-{MARKER}"))]).await;
    assert_eq!(access_only.outcome, ValidationOutcome::UnsupportedType);
    assert!(access_only.message.contains("token_url"));
}
