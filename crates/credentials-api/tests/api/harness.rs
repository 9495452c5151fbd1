//! The harness itself: what the other tests rely on it for.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn bearer_clients_reach_every_service_and_shutdown_stops_serving() {
    let stack = TestApi::options()
        .args(["--rewrap-interval", "0"])
        .kms_args(["--shutdown-grace", "1s"])
        .start()
        .await;
    let token = testkit::stack::platform_token(&["ws"], ALL);
    let created = stack
        .create(
            &token,
            create("k", "openai", secret("sk-harness-0123456789abcdef")),
        )
        .await;
    let got = stack
        .access_as(&token)
        .access_credential(by_id(&created.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.secret, "sk-harness-0123456789abcdef");
    stack
        .admin_as(&token)
        .get_rewrap_status(pb::GetRewrapStatusRequest {})
        .await
        .unwrap();
    // A request's own token wins over the client's.
    let reader = stack.token(&["ws"], &["read"]);
    let err = stack
        .access_as(&token)
        .access_credential(authed(by_id(&created.id), &reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut m = stack.credentials(&token);
    stack.shutdown().await;
    let err = m
        .list_credentials(pb::ListCredentialsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}

#[tokio::test]
async fn an_expected_error_line_is_tolerated() {
    let stack = TestApi::options()
        .tolerate_error("the harness test's own error")
        .start()
        .await;
    tracing::error!("the harness test's own error");
    assert_eq!(stack.error_lines().len(), 1, "{}", stack.logs());
}

#[tokio::test]
#[should_panic(expected = "unexpected ERROR log lines")]
async fn an_unexpected_error_line_fails_the_test() {
    let _stack = TestApi::start().await;
    tracing::error!("nobody expected this");
}
