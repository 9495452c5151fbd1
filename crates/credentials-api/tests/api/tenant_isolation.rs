//! One tenant cannot fail another's accesses nor write into its audit log: a malformed
//! workspace id is refused before anything is recorded, a refusal in a workspace the token
//! does not name goes to the security log (read with a platform-wide admin token), and one bad
//! event never fails another caller's request.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

async fn audit_count(stack: &TestApi, token: &str, workspace: &str) -> usize {
    stack
        .management()
        .list_audit_events(authed(
            pb::ListAuditEventsRequest {
                workspace_id: workspace.into(),
                page_size: 500,
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .events
        .len()
}

async fn security_log(stack: &TestApi) -> Vec<pb::AuditEvent> {
    let platform = testkit::stack::platform_token(&[], &["admin"]);
    stack
        .admin()
        .list_security_events(authed(
            pb::ListSecurityEventsRequest {
                page_size: 500,
                ..Default::default()
            },
            &platform,
        ))
        .await
        .unwrap()
        .into_inner()
        .events
}

#[tokio::test]
async fn a_nul_workspace_id_fails_no_other_tenants_access() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    let tenant_a = stack.token(&["ws-a"], ALL);
    let created = stack
        .create(
            &tenant_a,
            create("k", "openai", secret("sk-tenant-a-0123456789abcdef")),
        )
        .await;
    // Tenant B has no `access`: on the refusal path, its request would be audited.
    let tenant_b = stack.token(&["ws-b"], &["read"]);
    let a_before = audit_count(&stack, &tenant_a, "ws-a").await;

    let mut calls = Vec::new();
    for i in 0..200 {
        let (mut client, request) = if i % 2 == 0 {
            (
                stack.access(),
                authed(by_id_in("ws-a", &created.id), &tenant_a),
            )
        } else {
            (
                stack.access(),
                authed(by_id_in("ws-b\0evil", &created.id), &tenant_b),
            )
        };
        calls.push(tokio::spawn(async move {
            client
                .access_credential(request)
                .await
                .map(|r| r.into_inner().secret)
        }));
    }
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.unwrap());
    }
    // Tenant A first: its accesses are what a bad event in its batch used to fail.
    let failed_for_a: Vec<_> = outcomes
        .iter()
        .step_by(2)
        .filter_map(|o| o.as_ref().err())
        .collect();
    assert!(
        failed_for_a.is_empty(),
        "tenant A refused: {failed_for_a:?}"
    );
    for outcome in outcomes.iter().step_by(2) {
        assert_eq!(outcome.as_ref().unwrap(), "sk-tenant-a-0123456789abcdef");
    }
    for outcome in outcomes.iter().skip(1).step_by(2) {
        let err = outcome.as_ref().unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(field_of(err), "workspace_id");
    }
    // Tenant A's hundred accesses are audited, tenant B's bad requests nowhere.
    assert_eq!(audit_count(&stack, &tenant_a, "ws-a").await, a_before + 100);
    assert!(security_log(&stack).await.is_empty());
}

#[tokio::test]
async fn a_refusal_outside_the_tokens_workspaces_goes_to_the_security_log() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    let tenant_a = stack.token(&["ws-a"], ALL);
    let created = stack
        .create(
            &tenant_a,
            create("k", "openai", secret("sk-tenant-a-0123456789abcdef")),
        )
        .await;
    let a_before = audit_count(&stack, &tenant_a, "ws-a").await;
    let request_id = format!("probe-{}", rand_u64());

    // Tenant B names tenant A's workspace, with and without `access`.
    for permissions in [&["access"][..], &["read"][..]] {
        let tenant_b = stack.token(&["ws-b"], permissions);
        let mut request = authed(by_id_in("ws-a", &created.id), &tenant_b);
        request
            .metadata_mut()
            .insert("x-request-id", request_id.parse().unwrap());
        let err = stack.access().access_credential(request).await.unwrap_err();
        assert!(
            matches!(err.code(), Code::NotFound | Code::PermissionDenied),
            "{err:?}"
        );
    }
    assert_eq!(audit_count(&stack, &tenant_a, "ws-a").await, a_before);
    let events = security_log(&stack).await;
    assert_eq!(events.len(), 2, "{events:?}");
    for event in &events {
        assert_eq!(
            (event.workspace_id.as_str(), event.request_id.as_str()),
            ("ws-a", request_id.as_str())
        );
        assert_eq!(event.action, pb::AuditAction::Access as i32);
        assert_eq!(event.outcome, pb::AuditOutcome::Failed as i32);
    }
    // A refusal in the caller's own workspace stays in its own log.
    let reader = stack.token(&["ws-a"], &["read"]);
    let err = stack
        .access()
        .access_credential(authed(by_id_in("ws-a", &created.id), &reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(audit_count(&stack, &tenant_a, "ws-a").await, a_before + 1);
    assert_eq!(security_log(&stack).await.len(), 2);

    // The security log spans tenants: an admin of one workspace may not read it.
    let admin_a = stack.token(&["ws-a"], &["admin"]);
    let err = stack
        .admin()
        .list_security_events(authed(pb::ListSecurityEventsRequest::default(), &admin_a))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("platform_admin"),
        "{}",
        err.message()
    );
}
