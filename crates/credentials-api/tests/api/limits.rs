//! The documented limits of the transport and of each principal: message sizes on every
//! service, oversized tokens, connections that say nothing, and per-principal rate limits.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::time::{Duration, Instant};
use testkit::stack::token_with;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_types::StatusExt;

/// The documented request limit of the API's services (README: 256 KiB).
const API_LIMIT: usize = 256 * 1024;
/// The documented request limit of health and reflection (README: 64 KiB).
const PLUMBING_LIMIT: usize = 64 * 1024;

#[tokio::test]
async fn every_service_refuses_a_message_over_the_documented_limit() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], &["read", "write", "access", "admin"]);
    let too_big = "k".repeat(API_LIMIT + 1024);

    let err = stack
        .admin()
        .set_workspace_key(authed(
            pb::SetWorkspaceKeyRequest {
                workspace_id: "ws".into(),
                key_id: too_big.clone(),
                allow_shared_key: false,
            },
            &token,
        ))
        .await
        .expect_err("an admin request over the limit");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");

    let err = stack
        .management()
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: too_big.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("a management request over the limit");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");

    // Health and reflection decode small requests only (64 KiB).
    let err = stack
        .health()
        .check(HealthCheckRequest {
            service: "s".repeat(PLUMBING_LIMIT + 1),
        })
        .await
        .expect_err("a health check over the limit");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    // Under the limit, all answer as before.
    let err = stack
        .admin()
        .set_workspace_key(authed(
            pb::SetWorkspaceKeyRequest {
                workspace_id: "ws".into(),
                key_id: "k".repeat(1000),
                allow_shared_key: false,
            },
            &token,
        ))
        .await
        .expect_err("a key id of 1000 bytes");
    assert_ne!(err.code(), Code::OutOfRange, "{err:?}");
}

#[tokio::test]
async fn an_oversized_token_is_unauthenticated_naming_the_limit() {
    let stack = TestApi::start().await;
    // Just over the limit, 8 KiB over it (where hyper's 16 KiB header list used to end the
    // call with HTTP 431, seen as UNKNOWN) and 20 KiB.
    for len in [
        auth::MAX_TOKEN_LEN + 1,
        auth::MAX_TOKEN_LEN + 8 * 1024,
        20 * 1024,
    ] {
        let token = "a".repeat(len);
        let err = stack
            .management()
            .list_credentials(authed(pb::ListCredentialsRequest::default(), &token))
            .await
            .expect_err("an oversized token");
        assert_eq!(err.code(), Code::Unauthenticated, "{len} bytes: {err:?}");
        assert!(
            err.message().contains(&auth::MAX_TOKEN_LEN.to_string()),
            "{len} bytes: {err:?}"
        );
    }
    // A token at the limit is still read (and refused for what it is, not its size).
    let err = stack
        .management()
        .list_credentials(authed(
            pb::ListCredentialsRequest::default(),
            &"a".repeat(auth::MAX_TOKEN_LEN),
        ))
        .await
        .expect_err("a malformed token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(!err.message().contains("longer"), "{err:?}");
}

/// Open files allowed to this process (the soft limit).
fn open_file_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Established TCP connections whose local end is `port` (the server's side), as `ss -tn
/// state established sport = :port` counts them: from /proc/net/tcp.
fn server_side_connections(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1).unwrap_or_default();
            let state = fields.nth(1).unwrap_or_default();
            local.ends_with(&port) && state == "01"
        })
        .count()
}

#[tokio::test]
async fn silent_and_half_written_connections_are_closed_while_the_service_answers() {
    // The default handshake timeout (10 s): the HTTP/2 preface must be in by then.
    const IDLE: usize = 1000;
    const PREFACE_ONLY: usize = 25;
    const HALF_WRITTEN: usize = 25;
    let total = IDLE + PREFACE_ONLY + HALF_WRITTEN;
    // Both ends of every connection are in this process.
    assert!(
        open_file_limit() >= 2 * total + 256,
        "this test needs {} open files (ulimit -n), the limit is {}",
        2 * total + 256,
        open_file_limit()
    );
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let port = stack.addr().port();
    let before = server_side_connections(port);

    let mut connections = Vec::with_capacity(total);
    for n in 0..total {
        let mut stream = tokio::net::TcpStream::connect(stack.addr())
            .await
            .expect("connect");
        if n >= IDLE + PREFACE_ONLY {
            stream
                .write_all(b"PRI * HTTP/2.0\r\n")
                .await
                .expect("write");
        } else if n >= IDLE {
            stream
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .await
                .expect("write");
        }
        connections.push(stream);
    }
    let opened = Instant::now();
    // The server has accepted them all.
    let all_open = testkit::stack::wait_until(Duration::from_secs(5), || async {
        server_side_connections(port) >= before + total
    })
    .await;
    let open = server_side_connections(port);
    assert!(
        all_open,
        "{open} server-side connections, wanted {}",
        before + total
    );

    // Every one is closed by the server: a read ends (EOF or reset) instead of waiting.
    let mut closing = tokio::task::JoinSet::new();
    for mut stream in connections {
        closing.spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await {
                    // The server's SETTINGS frame, for the ones that sent a preface.
                    Ok(Ok(n)) if n > 0 => continue,
                    Ok(_) => return true,
                    Err(_) => return false,
                }
            }
        });
    }
    // Meanwhile the service answers real calls.
    let created = stack
        .create(
            &token,
            create("during", "openai", secret("sk-during-0123456789abcdef")),
        )
        .await;
    assert_eq!(created.name, "during");
    let health = stack
        .health()
        .check(HealthCheckRequest::default())
        .await
        .expect("health during the flood");
    drop(health);

    let mut closed = 0;
    while let Some(ended) = closing.join_next().await {
        closed += usize::from(ended.expect("reader"));
    }
    let took = opened.elapsed();
    let after = server_side_connections(port);
    println!(
        "server-side connections: {before} before, {open} with the flood open, {after} after; {closed} of {total} closed by the server within {took:?}"
    );
    assert_eq!(closed, total, "connections left open after {took:?}");
    assert!(took < Duration::from_secs(16), "closing took {took:?}");
    assert!(
        after <= before + 1,
        "{after} server-side connections remain"
    );
    // And still answering afterwards.
    stack
        .management()
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: created.id,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("a call after the flood");
}

#[tokio::test]
async fn probes_beyond_the_rate_limit_are_resource_exhausted_and_audited_once() {
    // The default probe limit: 60 a minute per principal.
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let missing = pb::ValidateCredentialRequest {
        id: "00000000-0000-4000-8000-000000000001".into(),
        ..Default::default()
    };
    let mut refused = Vec::new();
    for _ in 0..70 {
        let err = m
            .validate_credential(authed(missing.clone(), &token))
            .await
            .expect_err("a missing credential");
        match err.code() {
            Code::NotFound => {}
            Code::ResourceExhausted => refused.push(err),
            other => panic!("unexpected {other:?}: {err:?}"),
        }
    }
    // 60 admitted at once, then one a second: how many of the last ten are refused depends
    // on how fast the calls go, but some are unless they took ten seconds.
    assert!(
        !refused.is_empty() && refused.len() <= 10,
        "{} of 70 refused",
        refused.len()
    );
    let first = &refused[0];
    assert!(first.message().contains("60/m"), "{first:?}");
    let retry = first
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(1),
        "{retry:?}"
    );
    // Discovery shares the budget; another principal has its own.
    let err = m
        .discover_schema(authed(
            pb::DiscoverSchemaRequest {
                id: "00000000-0000-4000-8000-000000000001".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("over the limit");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let other = token_with(&auth::Claims {
        sub: "someone-else".into(),
        ..testkit::stack::claims(&["ws"], ALL)
    });
    let err = m
        .validate_credential(authed(missing.clone(), &other))
        .await
        .expect_err("a missing credential");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // One security event for the window, not one per refusal.
    assert_eq!(
        stack
            .count("security_events WHERE status_code = 'RESOURCE_EXHAUSTED'")
            .await,
        1
    );
}

#[tokio::test]
async fn accesses_beyond_the_rate_limit_are_resource_exhausted_with_retry_info() {
    let stack = TestApi::start_with(&["--access-rate-limit", "3/m"]).await;
    let token = stack.token(&["ws"], ALL);
    let created = stack
        .create(
            &token,
            create("k", "openai", secret("sk-limit-0123456789abcdef")),
        )
        .await;
    let mut a = stack.access();
    for _ in 0..3 {
        a.access_credential(authed(by_id(&created.id), &token))
            .await
            .expect("within the limit");
    }
    for _ in 0..3 {
        let err = a
            .access_credential(authed(by_id(&created.id), &token))
            .await
            .expect_err("over the limit");
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert!(!err.message().contains("sk-limit"), "{err:?}");
        let retry = err
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .expect("RetryInfo");
        assert!(
            retry > Duration::from_secs(10) && retry <= Duration::from_secs(20),
            "{retry:?}"
        );
    }
    assert_eq!(
        stack
            .count("security_events WHERE status_code = 'RESOURCE_EXHAUSTED'")
            .await,
        1
    );
}
