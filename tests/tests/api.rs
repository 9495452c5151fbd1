//! End-to-end tests of credentials-api with the real kms and credentials-api binaries and a
//! Postgres database of the test's own.

#![allow(clippy::unwrap_used)]

use credentials_proto::credentials::v1 as pb;
use std::collections::HashMap;
use tests::{Stack, authed};
use tonic::{Code, Status};

const ALL: &[&str] = &["read", "write", "access", "admin"];

fn secret(value: &str) -> Option<pb::CredentialValue> {
    Some(pb::CredentialValue {
        kind: Some(pb::credential_value::Kind::Secret(value.into())),
    })
}

fn fields(pairs: &[(&str, &str)]) -> Option<pb::CredentialValue> {
    Some(pb::CredentialValue {
        kind: Some(pb::credential_value::Kind::Fields(pb::CredentialFields {
            values: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        })),
    })
}

fn create(
    name: &str,
    type_id: &str,
    value: Option<pb::CredentialValue>,
) -> pb::CreateCredentialRequest {
    pb::CreateCredentialRequest {
        name: name.into(),
        r#type: type_id.into(),
        value,
        ..Default::default()
    }
}

fn by_id(id: &str) -> pb::AccessCredentialRequest {
    pb::AccessCredentialRequest {
        workspace_id: String::new(),
        selector: Some(pb::access_credential_request::Selector::Id(id.into())),
    }
}

fn default_for(type_id: &str) -> pb::AccessCredentialRequest {
    pb::AccessCredentialRequest {
        workspace_id: String::new(),
        selector: Some(pb::access_credential_request::Selector::DefaultForType(
            type_id.into(),
        )),
    }
}

/// Everything a client can observe of an error answer.
fn wire(status: &Status) -> (Code, String, Vec<u8>) {
    (
        status.code(),
        status.message().to_owned(),
        status.details().to_vec(),
    )
}

fn field_of(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

async fn count(stack: &Stack, table: &str) -> i64 {
    let client = stack.db.client().await;
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn full_lifecycle() {
    let stack = Stack::start().await;
    let token = stack.token(&["acme"], ALL);
    let mut m = stack.management().await;
    let mut a = stack.access().await;

    let mut request = create(
        "OpenAI Production",
        "openai",
        secret("sk-proj-lifecycle-0123456789abcdef"),
    );
    request.category = "llm".into();
    request.make_default = true;
    let openai = m
        .create_credential(authed(request, &token))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(
        (openai.workspace_id.as_str(), openai.category.as_str()),
        ("acme", "llm")
    );
    assert!(openai.is_default);
    assert_eq!(openai.masked_content, "sk-pr...cdef");
    assert_eq!(openai.etag, "v1");
    assert!(
        openai.created_at.is_some() && openai.updated_at.is_some() && openai.deleted_at.is_none()
    );

    let bedrock = m
        .create_credential(authed(
            create(
                "Bedrock",
                "bedrock",
                fields(&[
                    ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
                    (
                        "secret_access_key",
                        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    ),
                    ("region", "eu-west-1"),
                ]),
            ),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert!(
        bedrock.masked_content.contains("region=eu-west-1"),
        "{}",
        bedrock.masked_content
    );
    assert!(!bedrock.masked_content.contains("wJalr"));

    // List: newest first, masked previews only.
    let listed = m
        .list_credentials(authed(pb::ListCredentialsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Bedrock", "OpenAI Production"]);
    let shown = format!("{listed:?}");
    assert!(!shown.contains("lifecycle-0123456789") && !shown.contains("EXAMPLEKEY"));

    // Access: by default for a type and by id.
    let got = a
        .access_credential(authed(default_for("openai"), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.secret, "sk-proj-lifecycle-0123456789abcdef");
    assert_eq!(got.credential.unwrap().id, openai.id);
    let got = a
        .access_credential(authed(by_id(&bedrock.id), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.fields["secret_access_key"],
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    );
    assert_eq!(got.fields["region"], "eu-west-1");

    // A token without the access permission is refused, and the refusal is audited.
    let reader = stack.token(&["acme"], &["read"]);
    let err = a
        .access_credential(authed(default_for("openai"), &reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Update the value with the etag; the old value is gone.
    let updated = m
        .update_credential(authed(
            pb::UpdateCredentialRequest {
                id: openai.id.clone(),
                etag: openai.etag.clone(),
                value: secret("sk-proj-rotated-value-9876543210zyxw"),
                description: Some("rotated".into()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(
        (updated.etag.as_str(), updated.description.as_str()),
        ("v2", "rotated")
    );
    assert_eq!(updated.masked_content, "sk-pr...zyxw");
    let got = a
        .access_credential(authed(by_id(&openai.id), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.secret, "sk-proj-rotated-value-9876543210zyxw");

    // Delete: gone from list and access; get still resolves its name and type.
    let deleted = m
        .delete_credential(authed(
            pb::DeleteCredentialRequest {
                id: openai.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert!(deleted.deleted_at.is_some() && !deleted.is_default);
    let listed = m
        .list_credentials(authed(pb::ListCredentialsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.credentials.len(), 1);
    let with_deleted = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                show_deleted: true,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(with_deleted.credentials.len(), 2);
    assert_eq!(
        a.access_credential(authed(by_id(&openai.id), &token))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let err = a
        .access_credential(authed(default_for("openai"), &token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("no default"), "{}", err.message());
    let got = m
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: openai.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(
        (got.name.as_str(), got.r#type.as_str()),
        ("OpenAI Production", "openai")
    );

    // The secret is destroyed in the database.
    let client = stack.db.client().await;
    let row = client
        .query_one(
            "SELECT ciphertext IS NULL AND wrapped_key IS NULL AND nonce IS NULL FROM credentials WHERE id = $1",
            &[&uuid::Uuid::parse_str(&openai.id).unwrap()],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));

    // The audit log tells the story, newest first.
    let events = m
        .list_audit_events(authed(pb::ListAuditEventsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner()
        .events;
    let actions: Vec<(i32, i32)> = events.iter().map(|e| (e.action, e.outcome)).collect();
    use pb::{AuditAction as A, AuditOutcome as O};
    let ok = O::Succeeded as i32;
    let failed = O::Failed as i32;
    assert_eq!(
        actions,
        [
            (A::Access as i32, failed), // default after delete: no default
            (A::Access as i32, failed), // deleted id
            (A::Delete as i32, ok),
            (A::Access as i32, ok),
            (A::Update as i32, ok),
            (A::Access as i32, failed), // no access permission
            (A::Access as i32, ok),
            (A::Access as i32, ok),
            (A::Create as i32, ok),
            (A::Create as i32, ok),
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.actor == "e2e-test" && !e.request_id.is_empty())
    );
    assert!(
        stack.api.error_lines().is_empty(),
        "{:?}",
        stack.api.error_lines()
    );
}

#[tokio::test]
async fn workspace_isolation_answers_like_a_missing_id() {
    let stack = Stack::start().await;
    let alice = stack.token(&["ws-a"], ALL);
    let bob = stack.token(&["ws-b"], ALL);
    let mut m = stack.management().await;
    let mut a = stack.access().await;
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

#[tokio::test]
async fn permission_matrix() {
    let stack = Stack::start().await;
    let admin = stack.token(&["ws"], ALL);
    let mut m = stack.management().await;
    let mut a = stack.access().await;
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
async fn authentication_is_required_except_for_health_and_reflection() {
    let stack = Stack::start().await;
    let mut m = stack.management().await;
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
            .list_credentials(authed(list(), &stack.token_with(claims)))
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
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", stack.api.addr))
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
    assert_eq!(count(&stack, "audit_events").await, 0);
}

#[tokio::test]
async fn twenty_concurrent_set_defaults_leave_exactly_one() {
    let stack = Stack::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let c = m
            .create_credential(authed(
                create(
                    &format!("key {i}"),
                    "anthropic",
                    secret("sk-ant-0123456789abcdefghij"),
                ),
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        ids.push(c.id);
    }
    let calls = ids.iter().map(|id| {
        let mut m = m.clone();
        let request = authed(
            pb::SetDefaultCredentialRequest {
                id: id.clone(),
                ..Default::default()
            },
            &token,
        );
        tokio::spawn(async move { m.set_default_credential(request).await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    let listed = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                page_size: 100,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.credentials.iter().filter(|c| c.is_default).count(),
        1
    );
    let client = stack.db.client().await;
    let defaults: i64 = client
        .query_one(
            "SELECT count(*) FROM credentials WHERE is_default AND type_id = 'anthropic'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(defaults, 1);
}

#[tokio::test]
async fn of_two_updates_with_one_etag_exactly_one_wins() {
    let stack = Stack::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management().await;
    let c = m
        .create_credential(authed(
            create("k", "openai", secret("sk-0123456789abcdefghijklmn")),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    let update = |n: &str| {
        let mut m = m.clone();
        let request = authed(
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                etag: c.etag.clone(),
                value: secret(&format!("sk-racer-{n}-0123456789abcdef")),
                ..Default::default()
            },
            &token,
        );
        tokio::spawn(async move { m.update_credential(request).await })
    };
    let (first, second) = (update("one"), update("two"));
    let results = [first.await.unwrap(), second.await.unwrap()];
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(loser.code(), Code::Aborted);
    let winner = results
        .iter()
        .find_map(|r| r.as_ref().ok())
        .unwrap()
        .get_ref()
        .credential
        .clone()
        .unwrap();
    assert_eq!(winner.etag, "v2");
    // The stored value is the winner's.
    let got = stack
        .access()
        .await
        .access_credential(authed(by_id(&c.id), &token))
        .await
        .unwrap()
        .into_inner();
    assert!(
        winner
            .masked_content
            .ends_with(&got.secret[got.secret.len() - 4..])
    );
}

#[tokio::test]
async fn no_secret_reaches_a_table_or_a_log() {
    let stack = Stack::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management().await;
    let marker = format!("MARKER{:016x}", rand_u64());
    let values = [
        ("openai", secret(&format!("sk-{marker}-openai"))),
        (
            "postgresql",
            secret(&format!(
                "postgresql://app:{marker}@db.internal:5432/sales?password={marker}"
            )),
        ),
        (
            "smtp",
            fields(&[
                ("host", "smtp.example.com"),
                ("username", "bot"),
                ("password", &marker),
            ]),
        ),
        (
            "bedrock",
            fields(&[
                ("access_key_id", &marker),
                ("secret_access_key", &marker),
                ("region", "us-east-1"),
                ("session_token", &marker),
            ]),
        ),
        (
            "oauth",
            fields(&[
                ("refresh_token", &marker),
                ("client_secret", &marker),
                ("token_url", "https://auth.example.com/token"),
            ]),
        ),
    ];
    for (i, (type_id, value)) in values.into_iter().enumerate() {
        let c = m
            .create_credential(authed(create(&format!("c{i}"), type_id, value), &token))
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        assert!(!format!("{c:?}").contains(&marker), "{type_id}: {c:?}");
        // Read it back through every path that touches the plaintext.
        stack
            .access()
            .await
            .access_credential(authed(by_id(&c.id), &token))
            .await
            .unwrap();
        m.update_credential(authed(
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                description: Some("touched".into()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap();
    }
    // A failing call whose input holds the marker.
    let err = m
        .create_credential(authed(
            create(
                "bad",
                "openai",
                fields(&[("api_key", &marker), (&marker, "x")]),
            ),
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        !err.message().contains(&format!("{marker}-")),
        "{}",
        err.message()
    );

    // Every column of every table, as text (bytea as hex).
    let client = stack.db.client().await;
    let tables: Vec<String> = client
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        tables.contains(&"credentials".to_owned()) && tables.contains(&"audit_events".to_owned())
    );
    let hex: String = marker.bytes().map(|b| format!("{b:02x}")).collect();
    for table in tables {
        let rows = client
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .await
            .unwrap();
        for row in rows {
            let text: String = row.get(0);
            assert!(
                !text.contains(&marker) && !text.to_lowercase().contains(&hex),
                "{table}: {text}"
            );
        }
    }
    for (name, logs) in [("api", stack.api.logs()), ("kms", stack.kms.logs())] {
        assert!(!logs.contains(&marker), "{name} log holds the marker");
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[tokio::test]
async fn a_stopped_kms_means_unavailable_and_nothing_is_lost() {
    let mut stack = Stack::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management().await;
    let mut a = stack.access().await;
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
        count(&stack, "credentials").await,
        count(&stack, "audit_events").await,
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
    assert_eq!(count(&stack, "credentials").await, rows_before.0);
    assert_eq!(count(&stack, "audit_events").await, rows_before.1 + 1);
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
    assert!(stack.api.logs().contains("kms unavailable"));
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field_and_writes_nothing() {
    let stack = Stack::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management().await;
    let c = m
        .create_credential(authed(
            create("existing", "openai", secret("sk-0123456789abcdefghijklmn")),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    let rows = (
        count(&stack, "credentials").await,
        count(&stack, "audit_events").await,
    );

    let mut in_wrong_category = create("x", "openai", secret("sk-0123456789abcdefghijklmn"));
    in_wrong_category.category = "speech".into();
    let creates: Vec<(pb::CreateCredentialRequest, &str)> = vec![
        (create("x", "no-such-type", secret("v")), "type"),
        (in_wrong_category, "category"),
        (
            create(
                "x",
                "bedrock",
                fields(&[("access_key_id", "AKIA0123456789"), ("region", "us-east-1")]),
            ),
            "value.fields[secret_access_key]",
        ),
        (
            create(
                "x",
                "openai",
                fields(&[
                    ("api_key", "sk-0123456789abcdefghijklmn"),
                    ("organisation", "o"),
                ]),
            ),
            "value.fields[organisation]",
        ),
        (
            create("", "openai", secret("sk-0123456789abcdefghijklmn")),
            "name",
        ),
        (
            create("x", "openai", secret(&"x".repeat(70 * 1024))),
            "value",
        ),
        (create("x", "openai", None), "value"),
        (
            create(
                "x",
                "database",
                fields(&[("schema_type", "oracle"), ("connection_string", "x")]),
            ),
            "value.fields[schema_type]",
        ),
        (
            create(
                "x",
                "database",
                fields(&[("connection_string", "postgresql://u:p@h/db")]),
            ),
            "value.fields[schema_type]",
        ),
    ];
    for (request, field) in creates {
        let err = m
            .create_credential(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(field_of(&err), field, "{err:?}");
        assert!(err.message().starts_with(field), "{}", err.message());
    }
    let lists: Vec<(pb::ListCredentialsRequest, &str)> = vec![
        (
            pb::ListCredentialsRequest {
                page_size: 501,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListCredentialsRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListCredentialsRequest {
                category: "cars".into(),
                ..Default::default()
            },
            "category",
        ),
        (
            pb::ListCredentialsRequest {
                r#type: "no-such-type".into(),
                ..Default::default()
            },
            "type",
        ),
    ];
    for (request, field) in lists {
        let err = m
            .list_credentials(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), field_of(&err).as_str()),
            (Code::InvalidArgument, field),
            "{err:?}"
        );
    }
    let updates: Vec<(pb::UpdateCredentialRequest, &str)> = vec![
        (
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                etag: "7".into(),
                name: Some("y".into()),
                ..Default::default()
            },
            "etag",
        ),
        (
            pb::UpdateCredentialRequest {
                id: "not-a-uuid".into(),
                name: Some("y".into()),
                ..Default::default()
            },
            "id",
        ),
        (
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                name: Some(" padded".into()),
                ..Default::default()
            },
            "name",
        ),
        (
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                description: Some("d".repeat(1025)),
                ..Default::default()
            },
            "description",
        ),
        (
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                value: fields(&[("nope", "x")]),
                ..Default::default()
            },
            "value.fields[nope]",
        ),
    ];
    for (request, field) in updates {
        let err = m
            .update_credential(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), field_of(&err).as_str()),
            (Code::InvalidArgument, field),
            "{err:?}"
        );
    }
    let err = m
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: String::new(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "id");
    let err = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                workspace_id: "bad workspace!".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "workspace_id");
    let err = stack
        .access()
        .await
        .access_credential(authed(default_for("no-such-type"), &token))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "default_for_type");

    // Nothing was written: no credential, no audit event, and the existing one is unchanged.
    assert_eq!(
        (
            count(&stack, "credentials").await,
            count(&stack, "audit_events").await
        ),
        rows
    );
    let same = m
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: c.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(same.etag, "v1");

    // A duplicate name is ALREADY_EXISTS, and also writes nothing.
    let err = m
        .create_credential(authed(
            create(
                "existing",
                "anthropic",
                secret("sk-ant-0123456789abcdefghi"),
            ),
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(
        (
            count(&stack, "credentials").await,
            count(&stack, "audit_events").await
        ),
        rows
    );
}

#[tokio::test]
async fn pages_are_stable_and_types_are_listed() {
    let stack = Stack::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management().await;
    for i in 0..7 {
        let type_id = if i % 2 == 0 { "openai" } else { "elevenlabs" };
        m.create_credential(authed(
            create(
                &format!("c{i}"),
                type_id,
                secret("key-0123456789abcdefghijkl"),
            ),
            &token,
        ))
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut token_page = String::new();
    loop {
        let page = m
            .list_credentials(authed(
                pb::ListCredentialsRequest {
                    page_size: 3,
                    page_token: token_page.clone(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.credentials.len() <= 3);
        seen.extend(page.credentials.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token_page = page.next_page_token;
    }
    assert_eq!(seen, ["c6", "c5", "c4", "c3", "c2", "c1", "c0"]);

    let speech = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                category: "speech".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(speech.credentials.len(), 3);
    // A token from a filtered listing does not work for another filter.
    let first = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                r#type: "openai".into(),
                page_size: 1,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let err = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                page_token: first.next_page_token,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "page_token");

    let types = m
        .list_credential_types(authed(pb::ListCredentialTypesRequest::default(), &token))
        .await
        .unwrap()
        .into_inner()
        .types;
    assert_eq!(types.len(), 46);
    let by_type: HashMap<&str, &pb::CredentialType> =
        types.iter().map(|t| (t.r#type.as_str(), t)).collect();
    let bedrock = by_type["bedrock"];
    let required: Vec<&str> = bedrock
        .fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(required, ["access_key_id", "secret_access_key", "region"]);
    assert!(
        by_type["database"]
            .fields
            .iter()
            .any(|f| f.name == "schema_type" && f.required && !f.allowed_values.is_empty())
    );
    let llm = m
        .list_credential_types(authed(
            pb::ListCredentialTypesRequest {
                category: "llm".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .types;
    assert_eq!(llm.len(), 24);
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let mut stack = Stack::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management().await;
    m.create_credential(authed(
        create("k", "openai", secret("sk-0123456789abcdefghijklmn")),
        &token,
    ))
    .await
    .unwrap();
    let status = stack.api.stop().await;
    assert!(status.success());
    let logs = stack.api.logs();
    assert!(
        logs.contains("shutdown requested") && logs.contains("drained"),
        "{logs}"
    );
    assert!(
        stack.api.error_lines().is_empty(),
        "{:?}",
        stack.api.error_lines()
    );
}

#[tokio::test]
async fn health_follows_the_kms() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut stack = Stack::start().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", stack.api.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel);
    let status = |service: &'static str| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .map(|r| r.into_inner().status())
                .ok()
        }
    };
    assert_eq!(
        status("credentials.v1.AccessService").await,
        Some(ServingStatus::Serving)
    );

    assert!(stack.kms.stop().await.success());
    let down = tests::wait_until(std::time::Duration::from_secs(10), || async {
        status("credentials.v1.AccessService").await == Some(ServingStatus::NotServing)
    })
    .await;
    assert!(down, "health stayed SERVING with the kms down");
    assert_eq!(status("").await, Some(ServingStatus::NotServing));

    stack.restart_kms().await;
    let up = tests::wait_until(std::time::Duration::from_secs(10), || async {
        status("credentials.v1.CredentialsService").await == Some(ServingStatus::Serving)
    })
    .await;
    assert!(up, "health did not recover after the kms restarted");
}
