//! `admin` acts in the workspaces its token names unless the token carries the platform-wide
//! grant; key changes are audited in the workspace's log and sweeps in the security log; a key
//! another workspace has as its own is shared only on request.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use testkit::stack::platform_token;
use tonic::Code;

fn set_key(workspace: &str, key: &str, allow_shared_key: bool) -> pb::SetWorkspaceKeyRequest {
    pb::SetWorkspaceKeyRequest {
        workspace_id: workspace.into(),
        key_id: key.into(),
        allow_shared_key,
    }
}

/// `(action, outcome, status)` of a workspace's audit events without a credential, oldest first.
async fn key_events(stack: &TestApi, workspace: &str) -> Vec<(i32, i32, String)> {
    let reader = stack.token(&[workspace], &["read"]);
    let mut events = stack
        .management()
        .list_audit_events(authed(pb::ListAuditEventsRequest::default(), &reader))
        .await
        .unwrap()
        .into_inner()
        .events;
    events.reverse();
    events
        .into_iter()
        .filter(|e| e.credential_id.is_empty())
        .map(|e| (e.action, e.outcome, e.status_code))
        .collect()
}

#[tokio::test]
async fn admin_of_one_workspace_cannot_touch_anothers_key_or_sweep_everyone() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    stack
        .keyring_and_reload(&["add-key", "--key-id", "tenant-a-key"])
        .await;
    let admin_a = stack.token(&["ws-a"], &["admin"]);
    let mut admin = stack.admin();

    let err = admin
        .set_workspace_key(authed(set_key("ws-b", "tenant-a-key", false), &admin_a))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = admin
        .get_workspace_key(authed(
            pb::GetWorkspaceKeyRequest {
                workspace_id: "ws-b".into(),
            },
            &admin_a,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    for dry_run in [false, true] {
        let err = admin
            .start_rewrap(authed(pb::StartRewrapRequest { dry_run }, &admin_a))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    }
    let err = admin
        .get_rewrap_status(authed(pb::GetRewrapStatusRequest {}, &admin_a))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(key_events(&stack, "ws-b").await.is_empty());

    // In its own workspace it may, and the change is in that workspace's log.
    let set = admin
        .set_workspace_key(authed(set_key("ws-a", "tenant-a-key", false), &admin_a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.key_id, "tenant-a-key");
    use pb::{AuditAction as A, AuditOutcome as O};
    assert_eq!(
        key_events(&stack, "ws-a").await,
        [(
            A::SetWorkspaceKey as i32,
            O::Succeeded as i32,
            "OK".to_owned()
        )]
    );
}

#[tokio::test]
async fn another_workspaces_dedicated_key_is_shared_only_when_asked() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    stack
        .keyring_and_reload(&["add-key", "--key-id", "tenant-a-key"])
        .await;
    let platform = platform_token(&[], &["admin"]);
    let mut admin = stack.admin();
    admin
        .set_workspace_key(authed(set_key("ws-a", "tenant-a-key", false), &platform))
        .await
        .unwrap();
    // Re-assigning a workspace its own key is no sharing.
    admin
        .set_workspace_key(authed(set_key("ws-a", "tenant-a-key", false), &platform))
        .await
        .unwrap();

    let err = admin
        .set_workspace_key(authed(set_key("ws-b", "tenant-a-key", false), &platform))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("allow_shared_key"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains("ws-a"), "{}", err.message());
    let got = admin
        .get_workspace_key(authed(
            pb::GetWorkspaceKeyRequest {
                workspace_id: "ws-b".into(),
            },
            &platform,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!got.dedicated, "{got:?}");

    admin
        .set_workspace_key(authed(set_key("ws-b", "tenant-a-key", true), &platform))
        .await
        .unwrap();
    use pb::{AuditAction as A, AuditOutcome as O};
    let key = A::SetWorkspaceKey as i32;
    assert_eq!(
        key_events(&stack, "ws-b").await,
        [
            (key, O::Failed as i32, "FAILED_PRECONDITION".to_owned()),
            (key, O::Succeeded as i32, "OK".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_sweep_is_recorded_in_the_security_log_before_it_starts() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    let platform = platform_token(&["ws"], ALL);
    stack
        .create(
            &platform,
            create("k", "openai", secret("sk-sweep-0123456789abcdef")),
        )
        .await;
    let mut admin = stack.admin();
    for dry_run in [true, false] {
        admin
            .start_rewrap(authed(pb::StartRewrapRequest { dry_run }, &platform))
            .await
            .unwrap();
    }
    let events = admin
        .list_security_events(authed(pb::ListSecurityEventsRequest::default(), &platform))
        .await
        .unwrap()
        .into_inner()
        .events;
    let seen: Vec<(String, i32, String)> = events
        .iter()
        .map(|e| (e.workspace_id.clone(), e.action, e.actor.clone()))
        .collect();
    let sweep = (
        String::new(),
        pb::AuditAction::StartRewrap as i32,
        testkit::stack::SUBJECT.to_owned(),
    );
    assert_eq!(seen, [sweep.clone(), sweep]);
    // Pages: one at a time, newest first, then nothing.
    let first = admin
        .list_security_events(authed(
            pb::ListSecurityEventsRequest {
                page_size: 1,
                ..Default::default()
            },
            &platform,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.events[0].id, events[0].id);
    let second = admin
        .list_security_events(authed(
            pb::ListSecurityEventsRequest {
                page_size: 1,
                page_token: first.next_page_token,
            },
            &platform,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.events[0].id, events[1].id);
    assert!(second.next_page_token.is_empty());
    // A workspace's audit page token is not a security-log token.
    let err = admin
        .list_security_events(authed(
            pb::ListSecurityEventsRequest {
                page_size: 1,
                page_token: "garbage".into(),
            },
            &platform,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
