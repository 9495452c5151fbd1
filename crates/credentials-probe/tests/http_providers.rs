//! Provider probes against local servers that follow each provider's documented wire format:
//! the path, the auth scheme (checked exactly), and the documented error answers.

#![allow(clippy::unwrap_used)]

mod http_support;

use credentials_probe::sigv4;
use credentials_probe::{ProbeResult, Prober, ValidationOutcome};
use http_support::{MARKER, Reply, Seen, TestServer, config, value};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Auth {
    Bearer,
    Scheme(&'static str),
    Header(&'static str),
}

struct Spec {
    id: &'static str,
    /// Path and query under the base URL.
    path: &'static str,
    auth: Auth,
    /// Headers the provider requires besides the key.
    extra: &'static [(&'static str, &'static str)],
    /// The documented answer to a bad key; `{key}` is replaced by the key sent (several
    /// providers echo part of it, so the probe must never show bodies).
    bad_status: u16,
    bad_body: &'static str,
    bad_outcome: ValidationOutcome,
}

const OPENAI_BAD: &str = r#"{"error":{"message":"Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;

const fn openai_like(id: &'static str) -> Spec {
    Spec {
        id,
        path: "/models",
        auth: Auth::Bearer,
        extra: &[],
        bad_status: 401,
        bad_body: OPENAI_BAD,
        bad_outcome: ValidationOutcome::InvalidCredentials,
    }
}

const fn spec(id: &'static str, path: &'static str, auth: Auth, bad_body: &'static str) -> Spec {
    Spec {
        id,
        path,
        auth,
        extra: &[],
        bad_status: 401,
        bad_body,
        bad_outcome: ValidationOutcome::InvalidCredentials,
    }
}

const SPECS: &[Spec] = &[
    openai_like("openai"),
    openai_like("openai_audio"),
    openai_like("openai_image"),
    openai_like("deepseek"),
    openai_like("fireworks"),
    // xAI answers a bad key with 400 and "Incorrect API key provided".
    Spec {
        bad_status: 400,
        bad_body: r#"{"code":"Client specified an invalid argument","error":"Incorrect API key provided: {key}. You can obtain an API key from https://console.x.ai."}"#,
        ..openai_like("xai")
    },
    openai_like("together_ai"),
    openai_like("mistral"),
    openai_like("groq"),
    openai_like("cerebras"),
    openai_like("sambanova"),
    openai_like("hyperbolic"),
    openai_like("deepinfra"),
    openai_like("novita"),
    openai_like("friendli"),
    openai_like("chutes"),
    openai_like("zai"),
    openai_like("moonshot"),
    openai_like("dashscope"),
    spec(
        "perplexity",
        "/async/chat/completions?limit=1",
        Auth::Bearer,
        r#"{"error":{"message":"Invalid API key","type":"invalid_api_key","code":401}}"#,
    ),
    spec(
        "openrouter",
        "/key",
        Auth::Bearer,
        r#"{"error":{"message":"No auth credentials found","code":401}}"#,
    ),
    Spec {
        extra: &[("anthropic-version", "2023-06-01")],
        ..spec(
            "anthropic",
            "/models?limit=1",
            Auth::Header("x-api-key"),
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        )
    },
    Spec {
        bad_status: 400,
        ..spec(
            "gemini",
            "/models?pageSize=1",
            Auth::Header("x-goog-api-key"),
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}"#,
        )
    },
    spec(
        "cohere",
        "/models?page_size=1",
        Auth::Bearer,
        r#"{"message":"invalid api token"}"#,
    ),
    spec(
        "huggingface",
        "/whoami-v2",
        Auth::Bearer,
        r#"{"error":"Invalid credentials in Authorization header"}"#,
    ),
    spec(
        "elevenlabs",
        "/user",
        Auth::Header("xi-api-key"),
        r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key: {key}"}}"#,
    ),
    spec(
        "deepgram",
        "/projects",
        Auth::Scheme("Token"),
        r#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"00000000-0000-0000-0000-000000000000"}"#,
    ),
    spec(
        "replicate",
        "/account",
        Auth::Bearer,
        r#"{"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401}"#,
    ),
    spec(
        "stability",
        "/user/account",
        Auth::Bearer,
        r#"{"id":"9160aa70222f5d9f9c2a1f0f5d8b9a1e","name":"unauthorized","errors":["Incorrect API key provided: {key}"]}"#,
    ),
    spec(
        "fal",
        "/models/pricing?endpoint_id=fal-ai/flux/dev",
        Auth::Scheme("Key"),
        r#"{"detail":"Invalid API key"}"#,
    ),
    Spec {
        extra: &[("x-runway-version", "2024-11-06")],
        ..spec(
            "runway",
            "/organization",
            Auth::Bearer,
            r#"{"error":"Invalid API key"}"#,
        )
    },
    spec(
        "luma",
        "/generations?limit=1",
        Auth::Bearer,
        r#"{"detail":"Invalid API key"}"#,
    ),
];

fn key(kind: &str) -> String {
    format!("{kind}-{MARKER}")
}

/// A server that answers as every provider in [`SPECS`], under `/{type_id}`.
async fn provider_server() -> TestServer {
    TestServer::start(|req: &Seen| {
        let uri = req.uri.clone();
        let Some((id, rest)) = uri.trim_start_matches('/').split_once('/') else {
            return Reply::new(404, "{}");
        };
        let Some(spec) = SPECS.iter().find(|s| s.id == id) else {
            return Reply::new(404, "{}");
        };
        if format!("/{rest}") != spec.path || req.method != "GET" {
            return Reply::new(404, r#"{"error":"not found"}"#);
        }
        for (name, want) in spec.extra {
            if req.header(name) != Some(want) {
                return Reply::new(400, r#"{"error":"missing required header"}"#);
            }
        }
        let sent = match spec.auth {
            Auth::Bearer => req
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer ")),
            Auth::Scheme(scheme) => req
                .header("authorization")
                .and_then(|v| v.strip_prefix(scheme))
                .and_then(|v| v.strip_prefix(' ')),
            Auth::Header(name) => req.header(name),
        };
        let sent = sent.unwrap_or("(none)").to_owned();
        match sent.split('-').next().unwrap_or("") {
            "good" => Reply::new(200, r#"{"object":"list","data":[]}"#),
            "rate" => Reply::new(
                429,
                r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
            ),
            "quota" => Reply::new(
                429,
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
            ),
            "down" => Reply::new(503, r#"{"error":{"message":"overloaded"}}"#),
            "slow" => Reply::new(200, "{}").delayed(Duration::from_secs(3)),
            "forbidden" => Reply::new(
                403,
                r#"{"error":{"message":"You are not allowed to use this resource","type":"permission_error"}}"#,
            ),
            "noperm" if id == "elevenlabs" => Reply::new(
                401,
                r#"{"detail":{"status":"missing_permissions","message":"The API key you used is missing the permission user_read to execute this operation."}}"#,
            ),
            _ => Reply::new(spec.bad_status, spec.bad_body.replace("{key}", &sent)),
        }
    })
    .await
}

fn prober_for(server: &TestServer) -> Prober {
    let overrides: Vec<(&str, String)> = SPECS
        .iter()
        .map(|s| (s.id, format!("{}/{}", server.url(), s.id)))
        .collect();
    Prober::new(config(&overrides))
}

async fn probe_key(prober: &Prober, id: &str, key: &str) -> ProbeResult {
    let result = prober.validate(id, &value(id, &[("api_key", key)])).await;
    assert!(
        !result.message.contains(MARKER),
        "{id}: secret in message {:?}",
        result.message
    );
    result
}

#[tokio::test]
async fn every_provider_accepts_a_good_key_and_rejects_a_bad_one() {
    let server = provider_server().await;
    let prober = prober_for(&server);
    for spec in SPECS {
        let good = probe_key(&prober, spec.id, &key("good")).await;
        assert_eq!(
            good.outcome,
            ValidationOutcome::Valid,
            "{}: {good:?}",
            spec.id
        );
        let bad = probe_key(&prober, spec.id, &key("bad")).await;
        assert_eq!(bad.outcome, spec.bad_outcome, "{}: {bad:?}", spec.id);
        assert!(!bad.message.is_empty());
    }
    // Each probe hit exactly its documented path with its documented scheme: two per type.
    assert_eq!(server.seen().len(), SPECS.len() * 2);
}

#[tokio::test]
async fn rate_limits_outages_and_refusals_are_told_apart() {
    let server = provider_server().await;
    let prober = prober_for(&server);
    for id in ["openai", "anthropic", "gemini", "deepgram", "fal", "runway"] {
        let rate = probe_key(&prober, id, &key("rate")).await;
        assert_eq!(rate.outcome, ValidationOutcome::ProviderError, "{id}");
        assert!(rate.message.contains("rate limited"), "{}", rate.message);

        let down = probe_key(&prober, id, &key("down")).await;
        assert_eq!(down.outcome, ValidationOutcome::ProviderError, "{id}");
        assert!(
            down.message.contains("provider error 503"),
            "{}",
            down.message
        );

        let forbidden = probe_key(&prober, id, &key("forbidden")).await;
        assert_eq!(
            forbidden.outcome,
            ValidationOutcome::InsufficientPermissions,
            "{id}"
        );
    }
    let quota = probe_key(&prober, "openai", &key("quota")).await;
    assert_eq!(quota.outcome, ValidationOutcome::ProviderError);
    assert!(quota.message.contains("quota"), "{}", quota.message);

    let noperm = probe_key(&prober, "elevenlabs", &key("noperm")).await;
    assert_eq!(noperm.outcome, ValidationOutcome::InsufficientPermissions);
    assert!(noperm.message.contains("user_read"), "{}", noperm.message);
}

#[tokio::test]
async fn a_slow_provider_times_out_within_the_deadline() {
    let server = provider_server().await;
    let mut cfg = config(&[("openai", format!("{}/openai", server.url()))]);
    cfg.timeout = Duration::from_millis(300);
    let prober = Prober::new(cfg);
    let started = Instant::now();
    let result = probe_key(&prober, "openai", &key("slow")).await;
    assert_eq!(result.outcome, ValidationOutcome::TimedOut, "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(result.latency >= Duration::from_millis(300));
    assert!(result.latency < Duration::from_secs(2));
}

#[tokio::test]
async fn types_without_a_probe_say_why() {
    let prober = Prober::new(config(&[]));
    let pika = probe_key(&prober, "pika", &key("good")).await;
    assert_eq!(pika.outcome, ValidationOutcome::UnsupportedType);
    assert!(pika.message.contains("no public API"), "{}", pika.message);

    let unknown = prober
        .validate("nope", &value("openai", &[("api_key", &key("good"))]))
        .await;
    assert_eq!(unknown.outcome, ValidationOutcome::UnsupportedType);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let prober = Prober::new(config(&[("openai", format!("http://127.0.0.1:{port}/v1"))]));
    let result = probe_key(&prober, "openai", &key("good")).await;
    assert_eq!(result.outcome, ValidationOutcome::Unreachable, "{result:?}");
}

// --- Amazon Bedrock through STS GetCallerIdentity -------------------------------------------

const AKID: &str = "AKIAPROBEEXAMPLE";

fn sts_secret() -> String {
    format!("secret/{MARKER}")
}

fn sts_error(code: &str, message: &str) -> Reply {
    Reply::xml(
        403,
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
             <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>4f5e0b3c-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        ),
    )
}

/// STS as documented: form body, SigV4 `Authorization` with scope `DATE/REGION/sts/aws4_request`;
/// the signature is recomputed from what arrived, with the key the server knows.
async fn sts_server() -> TestServer {
    TestServer::start(|req: &Seen| {
        if req.method != "POST"
            || req.body_text() != "Action=GetCallerIdentity&Version=2011-06-15"
            || !req
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        {
            return sts_error("InvalidAction", "bad request");
        }
        let auth = req.header("authorization").unwrap_or("");
        let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 Credential=") else {
            return sts_error("MissingAuthenticationToken", "Request is missing Authentication Token");
        };
        let credential = rest.split(',').next().unwrap_or("");
        let parts: Vec<&str> = credential.split('/').collect();
        if parts.len() != 5 || parts[2] != "eu-west-1" || parts[3] != "sts" {
            return sts_error("SignatureDoesNotMatch", "Credential should be scoped to a valid region");
        }
        if parts[0] != AKID {
            return sts_error(
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            );
        }
        let token = req.header("x-amz-security-token");
        if token == Some("expired-token") {
            return sts_error("ExpiredToken", "The security token included in the request is expired");
        }
        let signed = sigv4::sign(
            &sigv4::SigningRequest {
                method: "POST",
                path: req.path(),
                query: &[],
                headers: &[("content-type", req.header("content-type").unwrap())],
                host: req.header("host").unwrap(),
                payload: &req.body,
                region: "eu-west-1",
                service: "sts",
                amz_date: req.header("x-amz-date").unwrap(),
            },
            &sigv4::AwsCredentials {
                access_key_id: AKID,
                secret_access_key: &sts_secret(),
                session_token: token,
            },
        );
        if signed.headers[0].1 != auth {
            return sts_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            );
        }
        Reply::xml(
            200,
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/probe</Arn>\
             <UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>\
             <ResponseMetadata><RequestId>0</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        )
    })
    .await
}

async fn bedrock(prober: &Prober, fields: &[(&str, &str)]) -> ProbeResult {
    let result = prober.validate("bedrock", &value("bedrock", fields)).await;
    assert!(!result.message.contains(MARKER), "{result:?}");
    result
}

#[tokio::test]
async fn bedrock_signs_get_caller_identity_for_the_region() {
    let server = sts_server().await;
    let prober = Prober::new(config(&[("bedrock", format!("{}/sts", server.url()))]));
    let secret = sts_secret();

    let ok = bedrock(
        &prober,
        &[
            ("access_key_id", AKID),
            ("secret_access_key", &secret),
            ("region", "eu-west-1"),
        ],
    )
    .await;
    assert_eq!(ok.outcome, ValidationOutcome::Valid, "{ok:?}");
    assert!(
        ok.message.contains("arn:aws:iam::123456789012:user/probe"),
        "{}",
        ok.message
    );

    let with_token = bedrock(
        &prober,
        &[
            ("access_key_id", AKID),
            ("secret_access_key", &secret),
            ("region", "eu-west-1"),
            ("session_token", &format!("session-{MARKER}")),
        ],
    )
    .await;
    assert_eq!(
        with_token.outcome,
        ValidationOutcome::Valid,
        "{with_token:?}"
    );
    let last = server.seen().pop().unwrap();
    assert_eq!(
        last.header("x-amz-security-token"),
        Some(format!("session-{MARKER}").as_str())
    );
    assert!(
        last.header("authorization")
            .unwrap()
            .contains("x-amz-security-token")
    );

    let unknown_key = bedrock(
        &prober,
        &[
            ("access_key_id", "AKIAUNKNOWN"),
            ("secret_access_key", &secret),
            ("region", "eu-west-1"),
        ],
    )
    .await;
    assert_eq!(unknown_key.outcome, ValidationOutcome::InvalidCredentials);
    assert!(unknown_key.message.contains("InvalidClientTokenId"));

    let wrong_secret = bedrock(
        &prober,
        &[
            ("access_key_id", AKID),
            ("secret_access_key", &format!("wrong-{MARKER}")),
            ("region", "eu-west-1"),
        ],
    )
    .await;
    assert_eq!(wrong_secret.outcome, ValidationOutcome::InvalidCredentials);
    assert!(wrong_secret.message.contains("SignatureDoesNotMatch"));

    let expired = bedrock(
        &prober,
        &[
            ("access_key_id", AKID),
            ("secret_access_key", &secret),
            ("region", "eu-west-1"),
            ("session_token", "expired-token"),
        ],
    )
    .await;
    assert_eq!(expired.outcome, ValidationOutcome::InvalidCredentials);
    assert!(expired.message.contains("expired"), "{}", expired.message);

    // Writes refuse such a region now; a value stored before that still reaches the probe.
    let stored = credentials_core::SecretValue::from_json(
        format!(
            r#"{{"fields":{{"access_key_id":"{AKID}","secret_access_key":"{secret}","region":"evil.com/x"}}}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    let bad_region = prober.validate("bedrock", &stored).await;
    assert!(!bad_region.message.contains(MARKER), "{bad_region:?}");
    assert_eq!(bad_region.outcome, ValidationOutcome::InvalidCredentials);
}
