//! A kms restarted on a keyring that lacks a master-key version live credentials use: health
//! turns NOT_SERVING with the reason in the log, and accesses of those credentials answer
//! FAILED_PRECONDITION naming the version to restore; credentials under versions it holds still
//! open. Restoring the keyring brings SERVING back.

use crate::support::*;
use std::time::Duration;
use testkit::stack::wait_until;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// The reason the server logs (at ERROR: a human must restore the keyring).
const REASON: &str = "restore the keyring";

async fn serving(stack: &TestApi) -> ServingStatus {
    stack
        .health()
        .check(HealthCheckRequest::default())
        .await
        .map(|r| r.into_inner().status())
        .unwrap_or(ServingStatus::Unknown)
}

async fn wait_for_health(stack: &TestApi, wanted: ServingStatus) {
    let reached = wait_until(Duration::from_secs(20), || async {
        serving(stack).await == wanted
    })
    .await;
    assert!(
        reached,
        "health never became {wanted:?}; log:\n{}",
        stack.logs()
    );
}

#[tokio::test]
async fn a_keyring_missing_a_version_in_use_is_not_serving_and_says_so() {
    let mut stack = TestApi::options()
        .args(["--rewrap-interval", "0"])
        .tolerate_error(REASON)
        .start()
        .await;
    let token = stack.token(&["ws"], ALL);
    let on_v1 = stack
        .create(
            &token,
            create("v1", "openai", secret("sk-on-v1-0123456789abcdef")),
        )
        .await;
    // The keyring as it was before the rotation: it holds version 1 only.
    let old_keyring = stack.kms.dir.join("keyring-before-rotation.json");
    std::fs::copy(&stack.kms.keyring, &old_keyring).unwrap();
    stack.keyring_and_reload(&["rotate"]).await;
    let on_v2 = stack
        .create(
            &token,
            create("v2", "openai", secret("sk-on-v2-0123456789abcdef")),
        )
        .await;
    assert_eq!(serving(&stack).await, ServingStatus::Serving);

    // An operator restarts the kms on the old copy.
    let rotated = stack.kms.dir.join("keyring-rotated.json");
    std::fs::copy(&stack.kms.keyring, &rotated).unwrap();
    assert!(stack.kms.stop().await.success());
    std::fs::copy(&old_keyring, &stack.kms.keyring).unwrap();
    stack.restart_kms().await;

    wait_for_health(&stack, ServingStatus::NotServing).await;
    let logged = stack
        .logs()
        .lines()
        .find(|l| l.contains(REASON))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(logged.contains("default v2"), "{logged}");

    let err = stack
        .access_as(&token)
        .access_credential(by_id(&on_v2.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        err.message(),
        "the kms does not hold key version default v2 that this credential is wrapped under; \
         restore the keyring"
    );
    assert!(!err.message().contains("sk-on-v2"));
    // What the kms holds still opens.
    let got = stack
        .access_as(&token)
        .access_credential(by_id(&on_v1.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.secret, "sk-on-v1-0123456789abcdef");

    // The right keyring back: SERVING again, and the credential opens.
    assert!(stack.kms.stop().await.success());
    std::fs::copy(&rotated, &stack.kms.keyring).unwrap();
    stack.restart_kms().await;
    wait_for_health(&stack, ServingStatus::Serving).await;
    let got = stack
        .access_as(&token)
        .access_credential(by_id(&on_v2.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.secret, "sk-on-v2-0123456789abcdef");
}
