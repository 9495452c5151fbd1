//! The egress guard as the HTTP probes see it: internal destinations refused before anything is
//! dialled, redirects checked hop by hop, cleartext refused to public addresses, TLS verified.

#![allow(clippy::unwrap_used)]

mod http_support;

use credentials_probe::{
    EgressPolicy, HttpClient, ProbeConfig, ProbeResult, Prober, ProviderEndpoints,
    ValidationOutcome,
};
use http_support::{
    MARKER, Reply, Seen, TestServer, config, localhost_tls, loopback_policy, value,
};
use std::time::Duration;

fn default_policy_config(overrides: &[(&str, String)]) -> ProbeConfig {
    ProbeConfig {
        egress: EgressPolicy::new(),
        ..config(overrides)
    }
}

async fn ok_server() -> TestServer {
    TestServer::start(|req: &Seen| match req.path() {
        "/redirect-to-metadata" => Reply::redirect(
            302,
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        ),
        "/redirect-home" => Reply::redirect(302, "/file.csv"),
        "/redirect-loop" => Reply::redirect(302, "/redirect-loop"),
        _ => Reply::new(200, r#"{"ok":true}"#),
    })
    .await
}

async fn api_key(prober: &Prober, endpoint: &str) -> ProbeResult {
    let result = prober
        .validate(
            "api_key",
            &value(
                "api_key",
                &[
                    ("api_key", &format!("key-{MARKER}")),
                    ("endpoint", endpoint),
                ],
            ),
        )
        .await;
    assert!(!result.message.contains(MARKER), "{result:?}");
    result
}

async fn static_file(prober: &Prober, url: &str) -> ProbeResult {
    let result = prober
        .validate("static_file", &value("static_file", &[("url", url)]))
        .await;
    assert!(!result.message.contains(MARKER), "{result:?}");
    result
}

#[tokio::test]
async fn the_default_policy_refuses_internal_destinations_without_dialling() {
    let server = ok_server().await;
    let port = server.addr.port();
    let prober = Prober::new(default_policy_config(&[(
        "openai",
        format!("http://127.0.0.1:{port}/v1"),
    )]));
    for endpoint in [
        format!("http://127.0.0.1:{port}/check"),
        format!("http://localhost:{port}/check"),
        "http://10.0.0.1/check".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::1]:{port}/check"),
        format!("http://[::ffff:127.0.0.1]:{port}/check"),
    ] {
        let result = api_key(&prober, &endpoint).await;
        assert_eq!(
            result.outcome,
            ValidationOutcome::EgressDenied,
            "{endpoint}: {result:?}"
        );
        assert!(
            result.message.contains("--egress-allow"),
            "{}",
            result.message
        );
    }
    // A provider whose base URL points inside is refused the same way.
    let openai = prober
        .validate(
            "openai",
            &value("openai", &[("api_key", &format!("k-{MARKER}"))]),
        )
        .await;
    assert_eq!(
        openai.outcome,
        ValidationOutcome::EgressDenied,
        "{openai:?}"
    );
    assert!(server.seen().is_empty(), "the guard let a request through");
}

#[tokio::test]
async fn a_redirect_to_the_metadata_address_is_refused() {
    let server = ok_server().await;
    let prober = Prober::new(config(&[]));
    let result = static_file(&prober, &format!("{}/redirect-to-metadata", server.url())).await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::EgressDenied,
        "{result:?}"
    );
    assert!(
        result.message.contains("cloud-metadata"),
        "{}",
        result.message
    );

    // The same redirect on a request carrying a key is refused too (not followed either way).
    let result = api_key(&prober, &format!("{}/redirect-to-metadata", server.url())).await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::EgressDenied,
        "{result:?}"
    );

    let home = static_file(&prober, &format!("{}/redirect-home", server.url())).await;
    assert_eq!(home.outcome, ValidationOutcome::Valid, "{home:?}");

    let looping = static_file(&prober, &format!("{}/redirect-loop", server.url())).await;
    assert_eq!(
        looping.outcome,
        ValidationOutcome::ProviderError,
        "{looping:?}"
    );
    assert!(looping.message.contains("redirects"), "{}", looping.message);
}

#[tokio::test]
async fn allowed_loopback_ranges_work() {
    let server = ok_server().await;
    let port = server.addr.port();
    let prober = Prober::new(config(&[]));
    for endpoint in [
        format!("http://127.0.0.1:{port}/check"),
        format!("http://localhost:{port}/check"),
    ] {
        let result = api_key(&prober, &endpoint).await;
        // localhost may resolve to ::1 first, where nothing listens: the client tries each.
        assert_eq!(
            result.outcome,
            ValidationOutcome::Valid,
            "{endpoint}: {result:?}"
        );
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer key-{MARKER}").as_str())
    );
    assert_eq!(
        seen[0].header("host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );

    // IPv6 loopback, where the machine has it.
    if let Ok(listener) = std::net::TcpListener::bind("[::1]:0") {
        drop(listener);
        let v6 = TestServer::start_on("[::1]:0", None, |_: &Seen| Reply::new(200, "{}")).await;
        let result = api_key(&prober, &format!("http://[::1]:{}/check", v6.addr.port())).await;
        assert_eq!(result.outcome, ValidationOutcome::Valid, "{result:?}");
        assert_eq!(v6.seen().len(), 1);
    }
}

#[tokio::test]
async fn credentials_never_travel_in_cleartext_to_public_addresses() {
    // Refused before any connection: no network is needed for this test.
    let prober = Prober::new(default_policy_config(&[]));
    let result = api_key(&prober, "http://8.8.8.8/check").await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::EgressDenied,
        "{result:?}"
    );
    assert!(result.message.contains("use https"), "{}", result.message);
}

#[tokio::test]
async fn a_range_allowed_only_with_verified_tls_gets_no_cleartext() {
    let server = ok_server().await;
    let endpoint = format!("http://127.0.0.1:{}/check", server.addr.port());
    let prober = Prober::new(ProbeConfig {
        egress: EgressPolicy::new().allow_verified(["127.0.0.0/8".parse().unwrap()]),
        ..config(&[])
    });
    let result = api_key(&prober, &endpoint).await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::EgressDenied,
        "{result:?}"
    );
    assert!(result.message.contains("use https"), "{}", result.message);
    assert!(server.seen().is_empty(), "the request reached the server");
    // The same range allowed plainly takes http.
    assert_eq!(
        api_key(&Prober::new(config(&[])), &endpoint).await.outcome,
        ValidationOutcome::Valid
    );
}

#[tokio::test]
async fn tls_is_verified_against_the_trusted_roots() {
    let (acceptor, roots) = localhost_tls();
    let server = TestServer::start_on("127.0.0.1:0", Some(acceptor), |_: &Seen| {
        Reply::new(200, "{}")
    })
    .await;
    let endpoint = format!("https://localhost:{}/check", server.addr.port());

    let trusting = Prober::with_http_client(
        config(&[]),
        HttpClient::with_roots(loopback_policy(), roots),
    );
    let ok = api_key(&trusting, &endpoint).await;
    assert_eq!(ok.outcome, ValidationOutcome::Valid, "{ok:?}");
    assert_eq!(server.seen().len(), 1);
    assert_eq!(
        server.seen()[0].header("authorization"),
        Some(format!("Bearer key-{MARKER}").as_str())
    );

    // The public roots do not know the test CA: the handshake fails, nothing is sent.
    let public = Prober::new(config(&[]));
    let refused = api_key(&public, &endpoint).await;
    assert_eq!(
        refused.outcome,
        ValidationOutcome::Unreachable,
        "{refused:?}"
    );
    assert!(refused.message.contains("TLS"), "{}", refused.message);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn responses_are_read_up_to_the_cap() {
    let big = "x".repeat(1024 * 1024);
    let server = TestServer::start(move |_: &Seen| Reply::new(200, big.clone())).await;
    let client = HttpClient::new(loopback_policy());
    let response = client
        .send(credentials_probe::http::Request::get(format!(
            "{}/big",
            server.url()
        )))
        .await
        .unwrap();
    assert_eq!(response.body.len(), credentials_probe::http::MAX_BODY);
    assert!(response.truncated);
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let server =
        TestServer::start(|_: &Seen| Reply::new(200, "{}").delayed(Duration::from_millis(200)))
            .await;
    let mut cfg = config(&[]);
    cfg.budgets.validation.global = 2;
    cfg.endpoints = ProviderEndpoints::default();
    let prober = Prober::new(cfg);
    let endpoint = format!("{}/slow", server.url());
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (prober, endpoint) = (prober.clone(), endpoint.clone());
            tokio::spawn(async move { api_key(&prober, &endpoint).await })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.await.unwrap().outcome, ValidationOutcome::Valid);
    }
    // Four 200 ms probes, two at a time: at least two rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}
