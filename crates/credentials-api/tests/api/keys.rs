//! The key life cycle: rotation and the re-wrap sweep under traffic, per-workspace master
//! keys, admin permissions. Each test rotates or disables keys in its own kms.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};
use testkit::stack::{create_many, create_named, on, rewrap_status, wait_for_sweep};
use tonic::Code;

/// The operator procedure, with a client reading and updating all the while: rotate, reload,
/// sweep, check nothing is left on v1, disable v1.
#[tokio::test]
async fn rotation_and_sweep_under_traffic_lose_nothing() {
    let stack = TestApi::start_with(&[
        "--rewrap-batch-size",
        "7",
        "--rewrap-pause",
        "30ms",
        "--rewrap-interval",
        "0",
    ])
    .await;
    let token = testkit::stack::platform_token(&["ws"], ALL);
    let ids = create_many(&mut stack.management(), &token, "ws", 60).await;
    let before = rewrap_status(&mut stack.admin(), &token).await;
    assert_eq!((on(&before, "default", 1), before.remaining), (60, 0));

    stack.keyring_and_reload(&["rotate"]).await;
    let rotated = rewrap_status(&mut stack.admin(), &token).await;
    assert_eq!(rotated.remaining, 60);
    assert!(!rotated.key_versions[0].is_target);

    // A dry run counts and changes nothing.
    let dry = stack
        .admin()
        .start_rewrap(authed(pb::StartRewrapRequest { dry_run: true }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        dry.would_move.iter().map(|k| k.credentials).sum::<i64>(),
        60
    );
    assert_eq!(
        rewrap_status(&mut stack.admin(), &token).await.remaining,
        60
    );

    // Client traffic: read everything in turn, update every third, remember the latest values.
    let stop = Arc::new(AtomicBool::new(false));
    let latest: Arc<Mutex<HashMap<String, String>>> = Arc::new(Mutex::new(
        ids.iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), format!("sk-ws-initial-{i:04}-abcdefghij")))
            .collect(),
    ));
    let traffic = {
        let (stop, latest, ids) = (stop.clone(), latest.clone(), ids.clone());
        let mut m = stack.management();
        let mut a = stack.access();
        let token = token.clone();
        tokio::spawn(async move {
            let mut errors = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let id = &ids[n % ids.len()];
                match a.access_credential(authed(by_id_in("", id), &token)).await {
                    Ok(r) => {
                        let expected = latest.lock().unwrap()[id].clone();
                        if r.into_inner().secret != expected {
                            errors.push(format!("{id}: read a value that is not the latest"));
                        }
                    }
                    Err(e) => errors.push(format!("read {id}: {e:?}")),
                }
                if n.is_multiple_of(3) {
                    let value = format!("sk-ws-update-{n:06}-abcdefghijklmn");
                    let request = pb::UpdateCredentialRequest {
                        id: id.clone(),
                        value: secret(&value),
                        ..Default::default()
                    };
                    match m.update_credential(authed(request, &token)).await {
                        Ok(_) => {
                            latest.lock().unwrap().insert(id.clone(), value);
                        }
                        Err(e) => errors.push(format!("update {id}: {e:?}")),
                    }
                }
                n += 1;
            }
            (errors, n)
        })
    };

    let started = stack
        .admin()
        .start_rewrap(authed(pb::StartRewrapRequest { dry_run: false }, &token))
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(started.state, pb::RewrapState::Running as i32);
    let run = wait_for_sweep(&mut stack.admin(), &token, || stack.logs()).await;
    stop.store(true, Ordering::SeqCst);
    let (errors, operations) = traffic.await.unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        operations > 20,
        "the client barely ran ({operations} operations)"
    );
    assert_eq!(run.state, pb::RewrapState::Succeeded as i32, "{run:?}");
    assert_eq!(run.failed, 0);
    assert_eq!(run.rewrapped + run.skipped, run.examined);

    // Nothing is left on v1; every credential decrypts to its latest value.
    let after = rewrap_status(&mut stack.admin(), &token).await;
    assert_eq!(
        (
            after.remaining,
            on(&after, "default", 1),
            on(&after, "default", 2)
        ),
        (0, 0, 60)
    );
    let mut a = stack.access();
    let latest = latest.lock().unwrap().clone();
    for id in &ids {
        let got = a
            .access_credential(authed(by_id_in("", id), &token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.secret, latest[id]);
    }

    // Disable v1: everything still reads.
    stack
        .keyring_and_reload(&["disable", "--version", "1"])
        .await;
    for id in &ids {
        let got = a
            .access_credential(authed(by_id_in("", id), &token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.secret, latest[id]);
    }
    // Each moved credential has its audit event.
    let client = stack.db.client().await;
    let rewraps: i64 = client
        .query_one("SELECT count(*) FROM audit_events WHERE action = 8", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rewraps, run.rewrapped);
    assert!(stack.error_lines().is_empty(), "{:?}", stack.error_lines());
}

#[tokio::test]
async fn a_workspace_key_when_disabled_fails_only_its_workspace() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    let token = testkit::stack::platform_token(&["ws-a", "ws-b"], ALL);
    let a_ids = create_many(&mut stack.management(), &token, "ws-a", 5).await;
    let b_ids = create_many(&mut stack.management(), &token, "ws-b", 5).await;
    let mut admin = stack.admin();

    // Unknown key: refused with a clear message.
    let err = admin
        .set_workspace_key(authed(
            pb::SetWorkspaceKeyRequest {
                workspace_id: "ws-b".into(),
                key_id: "ws-b-key".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("add-key"), "{}", err.message());

    stack
        .keyring_and_reload(&["add-key", "--key-id", "ws-b-key"])
        .await;
    let set = admin
        .set_workspace_key(authed(
            pb::SetWorkspaceKeyRequest {
                workspace_id: "ws-b".into(),
                key_id: "ws-b-key".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (set.key_id.as_str(), set.credentials_to_move),
        ("ws-b-key", 5)
    );
    let got = admin
        .get_workspace_key(authed(
            pb::GetWorkspaceKeyRequest {
                workspace_id: "ws-b".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(got.dedicated);

    // New credentials of ws-b are wrapped under its key at once; the sweep moves the old ones.
    let fresh = create_named(&mut stack.management(), &token, "ws-b", "fresh", 1).await;
    admin
        .start_rewrap(authed(pb::StartRewrapRequest { dry_run: false }, &token))
        .await
        .unwrap();
    let run = wait_for_sweep(&mut stack.admin(), &token, || stack.logs()).await;
    assert_eq!(
        (run.state, run.rewrapped),
        (pb::RewrapState::Succeeded as i32, 5)
    );
    let client = stack.db.client().await;
    let keys: Vec<(String, String, i64)> = client
        .query("SELECT workspace_id, master_key_id, count(*) FROM credentials GROUP BY 1, 2 ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        keys,
        [
            ("ws-a".to_owned(), "default".to_owned(), 5),
            ("ws-b".to_owned(), "ws-b-key".to_owned(), 6)
        ]
    );

    // Disabling ws-b's key makes exactly ws-b's credentials unreadable, with a clear message.
    stack
        .keyring_and_reload(&["disable-key", "--key-id", "ws-b-key"])
        .await;
    let mut a = stack.access();
    for id in b_ids.iter().chain(&fresh) {
        let err = a
            .access_credential(authed(by_id_in("ws-b", id), &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(
            err.message().contains("master key is disabled"),
            "{}",
            err.message()
        );
    }
    for id in &a_ids {
        a.access_credential(authed(by_id_in("ws-a", id), &token))
            .await
            .unwrap();
    }
    // And ws-b cannot get new credentials under a disabled key either.
    let mut m = stack.management();
    let err = m
        .create_credential(authed(
            pb::CreateCredentialRequest {
                workspace_id: "ws-b".into(),
                name: "new".into(),
                r#type: "openai".into(),
                value: secret("sk-0123456789abcdefghijklmn"),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // The default key cannot be disabled.
    let out = testkit::stack::kms_keyring(&[
        "disable-key",
        "--key-id",
        "default",
        "--file",
        stack.kms.keyring.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("default key"));
}

#[tokio::test]
async fn the_admin_api_needs_the_admin_permission() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    let token = stack.token(&["ws"], &["read", "write", "access"]);
    let mut admin = stack.admin();
    fn denied<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) {
        let e = r.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(e.message().contains("'admin'"), "{}", e.message());
    }
    denied(
        admin
            .start_rewrap(authed(pb::StartRewrapRequest { dry_run: false }, &token))
            .await,
    );
    denied(
        admin
            .start_rewrap(authed(pb::StartRewrapRequest { dry_run: true }, &token))
            .await,
    );
    denied(
        admin
            .get_rewrap_status(authed(pb::GetRewrapStatusRequest {}, &token))
            .await,
    );
    denied(
        admin
            .set_workspace_key(authed(
                pb::SetWorkspaceKeyRequest {
                    workspace_id: "ws".into(),
                    key_id: "default".into(),
                    ..Default::default()
                },
                &token,
            ))
            .await,
    );
    denied(
        admin
            .get_workspace_key(authed(
                pb::GetWorkspaceKeyRequest {
                    workspace_id: "ws".into(),
                },
                &token,
            ))
            .await,
    );
    let client = stack.db.client().await;
    let runs: i64 = client
        .query_one("SELECT count(*) FROM rewrap_runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 0);
}
