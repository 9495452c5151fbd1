//! A stopped kms: UNAVAILABLE for what needs it, nothing lost, and recovery without a restart.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn a_stopped_kms_means_unavailable_and_nothing_is_lost() {
    let mut stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let mut a = stack.access();
    let before = m
        .create_credential(authed(
            create("kept", "openai", secret("sk-kept-0123456789abcdefghij")),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    let rows_before = (
        stack.count("credentials").await,
        stack.count("audit_events").await,
    );

    assert!(stack.kms.stop().await.success());
    let err = m
        .create_credential(authed(
            create("new", "openai", secret("sk-new-0123456789abcdefghijk")),
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = a
        .access_credential(authed(by_id(&before.id), &token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    // No credential row was written; the refused access is audited.
    assert_eq!(stack.count("credentials").await, rows_before.0);
    assert_eq!(stack.count("audit_events").await, rows_before.1 + 1);
    // Metadata reads do not need the kms.
    m.get_credential(authed(
        pb::GetCredentialRequest {
            id: before.id.clone(),
            ..Default::default()
        },
        &token,
    ))
    .await
    .unwrap();

    stack.restart_kms().await;
    let got = a
        .access_credential(authed(by_id(&before.id), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.secret, "sk-kept-0123456789abcdefghij");
    m.create_credential(authed(
        create("new", "openai", secret("sk-new-0123456789abcdefghijk")),
        &token,
    ))
    .await
    .unwrap();
    assert!(stack.logs().contains("kms unavailable"));
}
