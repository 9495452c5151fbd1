//! Postgres going away under a running server: refusals are UNAVAILABLE (retryable) within the
//! configured wait, health follows, and everything recovers without a restart, with every
//! acknowledged write kept and no refused write half-done.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::time::Duration;
use testkit::stack::wait_until;
use tonic::{Code, Request};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// A request with a client deadline well past the server's own waits: a server that hung
/// instead of refusing would end in DEADLINE_EXCEEDED here, not UNAVAILABLE.
fn bounded<T>(message: T, token: &str) -> Request<T> {
    let mut request = authed(message, token);
    request.set_timeout(Duration::from_secs(15));
    request
}

async fn health_is(stack: &TestApi, wanted: ServingStatus) -> bool {
    let health = stack.health();
    wait_until(Duration::from_secs(20), || {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest::default())
                .await
                .is_ok_and(|r| r.into_inner().status() == wanted)
        }
    })
    .await
}

async fn names(stack: &TestApi, token: &str) -> Vec<String> {
    let mut names: Vec<String> = stack
        .management()
        .list_credentials(authed(pb::ListCredentialsRequest::default(), token))
        .await
        .expect("list")
        .into_inner()
        .credentials
        .into_iter()
        .map(|c| c.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_cut_database_means_unavailable_then_recovery_with_nothing_lost() {
    // The harness's --db-wait-timeout (2 s) bounds how long a call waits for a connection.
    let stack = TestApi::options().postgres_through_proxy().start().await;
    let proxy = stack.postgres.as_ref().expect("proxy");
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let mut a = stack.access();

    // Acknowledged before the outage.
    let mut acknowledged = Vec::new();
    for n in 0..3 {
        let name = format!("before-{n}");
        let created = m
            .create_credential(bounded(
                create(
                    &name,
                    "openai",
                    secret(&format!("sk-before-{n}-0123456789abcdef")),
                ),
                &token,
            ))
            .await
            .expect("create before the outage")
            .into_inner()
            .credential
            .expect("credential");
        acknowledged.push((name, created.id));
    }
    let rows_before = stack.count("credentials").await;
    let audit_before = stack.count("audit_events").await;

    proxy.cut();
    for n in 0..3 {
        let err = m
            .create_credential(bounded(
                create(
                    &format!("during-{n}"),
                    "openai",
                    secret(&format!("sk-during-{n}-0123456789abcdef")),
                ),
                &token,
            ))
            .await
            .expect_err("a write with the database cut");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(!err.message().contains("sk-during"), "{err:?}");
    }
    let err = a
        .access_credential(bounded(by_id(&acknowledged[0].1), &token))
        .await
        .expect_err("an access with the database cut");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = m
        .get_credential(bounded(
            pb::GetCredentialRequest {
                id: acknowledged[1].1.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("a read with the database cut");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        health_is(&stack, ServingStatus::NotServing).await,
        "health did not turn NOT_SERVING with the database cut; log:\n{}",
        stack.logs()
    );
    // Nothing refused reached the database (read directly, not through the proxy).
    assert_eq!(stack.count("credentials").await, rows_before);
    assert_eq!(stack.count("audit_events").await, audit_before);

    proxy.restore();
    assert!(
        health_is(&stack, ServingStatus::Serving).await,
        "health did not return to SERVING after the database came back; log:\n{}",
        stack.logs()
    );
    // The same server, no restart: reads, accesses and writes work again.
    let got = a
        .access_credential(bounded(by_id(&acknowledged[0].1), &token))
        .await
        .expect("access after recovery")
        .into_inner();
    assert_eq!(got.secret, "sk-before-0-0123456789abcdef");
    m.create_credential(bounded(
        create("after", "openai", secret("sk-after-0123456789abcdefgh")),
        &token,
    ))
    .await
    .expect("create after recovery");

    let mut expected: Vec<String> = acknowledged.iter().map(|(n, _)| n.clone()).collect();
    expected.push("after".to_owned());
    expected.sort();
    assert_eq!(names(&stack, &token).await, expected);
    assert!(stack.logs().contains("database unavailable"));
}
