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

/// What a create with a deadline was answered, as the test classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Created: the row must be there.
    Created,
    /// Refused with certainty (nothing changed): the row must not be there, ever.
    Refused,
    /// The server said the outcome is unknown: either is allowed.
    Unknown,
}

#[tokio::test]
async fn a_stalled_database_answers_every_create_by_its_deadline_and_never_reports_a_commit_as_failed()
 {
    let stack = TestApi::options()
        .postgres_through_proxy()
        .args(["--db-max-connections", "4"])
        .start()
        .await;
    let proxy = stack.postgres.as_ref().expect("proxy");
    let token = stack.token(&["ws"], ALL);
    let deadline = Duration::from_millis(1000);
    // Each writer creates one credential after another, each with its own deadline, before,
    // during and after the stall.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..6 {
        let mut m = stack.management();
        let token = token.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let name = format!("w{w}-{n}");
                n += 1;
                let mut request = authed(
                    create(&name, "openai", secret("sk-stall-0123456789abcdefgh")),
                    &token,
                );
                request.set_timeout(deadline);
                let started = std::time::Instant::now();
                let outcome = m.create_credential(request).await;
                let took = started.elapsed();
                let answer = match outcome {
                    Ok(_) => Answer::Created,
                    Err(e)
                        if e.code() == Code::DeadlineExceeded
                            && e.message().contains("nothing was changed") =>
                    {
                        Answer::Refused
                    }
                    Err(e)
                        if e.code() == Code::Unavailable
                            && e.message().contains("may or may not") =>
                    {
                        Answer::Unknown
                    }
                    Err(e) if e.code() == Code::Unavailable => Answer::Refused,
                    // Anything else (tonic's CANCELLED when the server let the client's own
                    // timer run out, or the client's local DEADLINE_EXCEEDED) is no answer.
                    Err(e) => {
                        panic!("create {name}: not an answer of the server's: {e:?} after {took:?}")
                    }
                };
                assert!(
                    took < deadline + Duration::from_millis(500),
                    "create {name} took {took:?}"
                );
                answers.push((name, answer));
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.stall();
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut answers = Vec::new();
    for writer in writers {
        answers.extend(writer.await.expect("writer"));
    }
    // Let whatever the stall held reach Postgres, and any connection left over end.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let present: std::collections::HashSet<String> = {
        let mut names = std::collections::HashSet::new();
        let mut page_token = String::new();
        loop {
            let page = stack
                .management()
                .list_credentials(authed(
                    pb::ListCredentialsRequest {
                        page_size: 500,
                        page_token: page_token.clone(),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("list")
                .into_inner();
            names.extend(page.credentials.into_iter().map(|c| c.name));
            if page.next_page_token.is_empty() {
                break names;
            }
            page_token = page.next_page_token;
        }
    };
    let count = |wanted: Answer| answers.iter().filter(|(_, a)| *a == wanted).count();
    let (created, refused, unknown) = (
        count(Answer::Created),
        count(Answer::Refused),
        count(Answer::Unknown),
    );
    println!("answers: {created} created, {refused} refused, {unknown} outcome unknown");
    assert!(
        created > 0 && refused > 0,
        "the stall was not hit: {answers:?}"
    );
    for (name, answer) in &answers {
        match answer {
            Answer::Created => assert!(
                present.contains(name),
                "{name} was acknowledged but is missing"
            ),
            Answer::Refused => assert!(
                !present.contains(name),
                "{name} was answered with a failure but committed later"
            ),
            Answer::Unknown => {}
        }
    }
    // Nothing committed outside what the listing shows.
    assert_eq!(
        stack.count("credentials").await as usize,
        present.len(),
        "rows outside the workspace listing"
    );
}
