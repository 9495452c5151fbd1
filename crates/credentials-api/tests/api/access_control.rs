//! Who may do what: tokens, permissions, and workspaces that answer like missing ids.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn authentication_is_required_except_for_health_and_reflection() {
    let stack = TestApi::start().await;
    let mut m = stack.management();
    let list = || pb::ListCredentialsRequest::default();

    let err = m.list_credentials(list()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("bearer"), "{}", err.message());
    let err = m
        .list_credentials(authed(list(), "not.a.token"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |exp: u64, aud: &str, iss: &str| auth::Claims {
        sub: "x".into(),
        iss: iss.into(),
        aud: aud.into(),
        exp,
        nbf: None,
        iat: None,
        workspaces: vec!["ws".into()],
        permissions: vec!["read".into()],
        platform_admin: false,
    };
    for (claims, expected) in [
        (
            claims(now - 3600, "credentials-api", "credentials-vault"),
            "expired",
        ),
        (
            claims(now + 3600, "someone-else", "credentials-vault"),
            "not meant for this service",
        ),
        (
            claims(now + 3600, "credentials-api", "mallory"),
            "untrusted issuer",
        ),
    ] {
        let err = m
            .list_credentials(authed(list(), &token_with(&claims)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert!(err.message().contains(expected), "{}", err.message());
    }
    // A token signed with another secret.
    let forged = auth::SigningKey::Hs256(zeroize::Zeroizing::new(
        b"another-secret-another-secret-0123456".to_vec(),
    ))
    .mint(&claims(now + 3600, "credentials-api", "credentials-vault"))
    .unwrap();
    assert_eq!(
        m.list_credentials(authed(list(), &forged))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // Health needs no token and reports SERVING for both services.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", stack.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in [
        "",
        "credentials.v1.CredentialsService",
        "credentials.v1.AccessService",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            status.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving
        );
    }
    // Unauthenticated calls change nothing.
    assert_eq!(stack.count("audit_events").await, 0);
}

#[tokio::test]
async fn permission_matrix() {
    let stack = TestApi::start().await;
    let admin = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let mut a = stack.access();
    let c = m
        .create_credential(authed(
            create("k", "openai", secret("sk-0123456789abcdefghijklmn")),
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();

    let cases: [(&[&str], [bool; 5]); 5] = [
        // permissions:      get,   create, update, set_default, access
        (&["read"], [true, false, false, false, false]),
        (&["write"], [false, true, true, true, false]),
        (&["access"], [false, false, false, false, true]),
        (&["admin"], [false, false, false, false, false]),
        (&[], [false, false, false, false, false]),
    ];
    for (n, (permissions, expected)) in cases.iter().enumerate() {
        let token = stack.token(&["ws"], permissions);
        let results = [
            m.get_credential(authed(
                pb::GetCredentialRequest {
                    id: c.id.clone(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .map(drop),
            m.create_credential(authed(
                create(
                    &format!("k{n}"),
                    "openai",
                    secret("sk-0123456789abcdefghijklmn"),
                ),
                &token,
            ))
            .await
            .map(drop),
            m.update_credential(authed(
                pb::UpdateCredentialRequest {
                    id: c.id.clone(),
                    description: Some(format!("d{n}")),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .map(drop),
            m.set_default_credential(authed(
                pb::SetDefaultCredentialRequest {
                    id: c.id.clone(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .map(drop),
            a.access_credential(authed(by_id(&c.id), &token))
                .await
                .map(drop),
        ];
        for (i, (result, allowed)) in results.iter().zip(expected).enumerate() {
            match result {
                Ok(()) => assert!(allowed, "{permissions:?} call {i} should be refused"),
                Err(e) => {
                    assert!(!allowed, "{permissions:?} call {i}: {e:?}");
                    assert_eq!(e.code(), Code::PermissionDenied, "{permissions:?} call {i}");
                }
            }
        }
    }
}

#[tokio::test]
async fn workspace_isolation_answers_like_a_missing_id() {
    let stack = TestApi::start().await;
    let alice = stack.token(&["ws-a"], ALL);
    let bob = stack.token(&["ws-b"], ALL);
    let mut m = stack.management();
    let mut a = stack.access();
    let theirs = m
        .create_credential(authed(
            create("B's key", "openai", secret("sk-bob-0123456789abcdefghij")),
            &bob,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    let missing = uuid::Uuid::from_u128(0x1234).to_string();

    for workspace in ["", "ws-b"] {
        for (id, expect_same_as_missing) in [(&theirs.id, true)] {
            let _ = expect_same_as_missing;
            let get = |id: &str| pb::GetCredentialRequest {
                workspace_id: workspace.into(),
                id: id.into(),
            };
            let e1 = m.get_credential(authed(get(id), &alice)).await.unwrap_err();
            let e2 = m
                .get_credential(authed(get(&missing), &alice))
                .await
                .unwrap_err();
            assert_eq!(wire(&e1), wire(&e2));
            assert_eq!(e1.code(), Code::NotFound);

            let upd = |id: &str| pb::UpdateCredentialRequest {
                workspace_id: workspace.into(),
                id: id.into(),
                name: Some("stolen".into()),
                ..Default::default()
            };
            let e1 = m
                .update_credential(authed(upd(id), &alice))
                .await
                .unwrap_err();
            let e2 = m
                .update_credential(authed(upd(&missing), &alice))
                .await
                .unwrap_err();
            assert_eq!(wire(&e1), wire(&e2));

            let del = |id: &str| pb::DeleteCredentialRequest {
                workspace_id: workspace.into(),
                id: id.into(),
                etag: String::new(),
            };
            let e1 = m
                .delete_credential(authed(del(id), &alice))
                .await
                .unwrap_err();
            let e2 = m
                .delete_credential(authed(del(&missing), &alice))
                .await
                .unwrap_err();
            assert_eq!(wire(&e1), wire(&e2));

            let def = |id: &str| pb::SetDefaultCredentialRequest {
                workspace_id: workspace.into(),
                id: id.into(),
            };
            let e1 = m
                .set_default_credential(authed(def(id), &alice))
                .await
                .unwrap_err();
            let e2 = m
                .set_default_credential(authed(def(&missing), &alice))
                .await
                .unwrap_err();
            assert_eq!(wire(&e1), wire(&e2));

            let acc = |id: &str| pb::AccessCredentialRequest {
                workspace_id: workspace.into(),
                selector: Some(pb::access_credential_request::Selector::Id(id.into())),
            };
            let e1 = a
                .access_credential(authed(acc(id), &alice))
                .await
                .unwrap_err();
            let e2 = a
                .access_credential(authed(acc(&missing), &alice))
                .await
                .unwrap_err();
            assert_eq!(wire(&e1), wire(&e2));
            assert_eq!(e1.code(), Code::NotFound);
        }
    }

    // Alice's listing does not show Bob's credential; listing Bob's workspace is refused.
    let mine = m
        .list_credentials(authed(pb::ListCredentialsRequest::default(), &alice))
        .await
        .unwrap()
        .into_inner();
    assert!(mine.credentials.is_empty());
    let err = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                workspace_id: "ws-b".into(),
                ..Default::default()
            },
            &alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = a
        .access_credential(authed(
            pb::AccessCredentialRequest {
                workspace_id: "ws-b".into(),
                selector: Some(pb::access_credential_request::Selector::DefaultForType(
                    "openai".into(),
                )),
            },
            &alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Bob's credential is untouched.
    let got = a
        .access_credential(authed(by_id(&theirs.id), &bob))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.secret, "sk-bob-0123456789abcdefghij");
    let c = got.credential.unwrap();
    assert_eq!((c.name.as_str(), c.etag.as_str()), ("B's key", "v1"));
}
