//! Validation messages are built from parts known not to be secret, never by redacting: a
//! one-letter password leaves the stored message whole, a host made of guesses reads the same
//! whatever the stored password, and a connection string whose user info drivers would split
//! differently is refused at create, update and test, naming the field and echoing nothing.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

async fn test_value(
    stack: &TestApi,
    token: &str,
    request: pb::TestCredentialRequest,
) -> Result<pb::ValidationResult, tonic::Status> {
    stack
        .credentials(token)
        .test_credential(request)
        .await
        .map(|r| r.into_inner().result.unwrap())
}

#[tokio::test]
async fn an_ambiguous_connection_string_is_refused_at_create_update_and_test() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    let token = stack.token(&["ws"], ALL);
    let n = rand_u64();
    let (head, tail) = (format!("Sekr3tA{n}"), format!("Sekr3tB{n}"));
    // The case: a password "head@tail" with its '@' not escaped.
    let bad = format!("postgresql://app:{head}@{tail}@db.example.com/prod");
    let leaks = |text: &str| text.contains(&head) || text.contains(&tail);
    let rows = (
        stack.count("credentials").await,
        stack.count("audit_events").await,
    );

    let refused = [
        (create("pg", "postgresql", secret(&bad)), "value.secret"),
        (
            create(
                "db",
                "database",
                fields(&[
                    ("schema_type", "mysql"),
                    ("connection_string", &bad.replacen("postgresql", "mysql", 1)),
                ]),
            ),
            "value.fields[connection_string]",
        ),
    ];
    for (request, field) in refused {
        let err = stack
            .credentials(&token)
            .create_credential(request)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(field_of(&err), field);
        assert!(err.message().contains("ambiguous"), "{}", err.message());
        assert!(!leaks(&format!("{err:?}")), "{err:?}");
    }
    assert_eq!(
        (
            stack.count("credentials").await,
            stack.count("audit_events").await
        ),
        rows
    );

    // Escaped, the same password is accepted, and the preview shows the real host.
    let good = format!("postgresql://app:{head}%40{tail}@db.example.com/prod");
    let c = stack
        .create(&token, create("pg", "postgresql", secret(&good)))
        .await;
    assert_eq!(c.masked_content, "postgresql://db.example.com/prod");

    let err = stack
        .credentials(&token)
        .update_credential(pb::UpdateCredentialRequest {
            id: c.id.clone(),
            etag: c.etag.clone(),
            value: secret(&bad),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(field_of(&err), "value.secret");
    assert!(!leaks(&format!("{err:?}")), "{err:?}");
    let after = stack
        .credentials(&token)
        .get_credential(pb::GetCredentialRequest {
            id: c.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(
        (after.etag, after.masked_content),
        (c.etag, c.masked_content)
    );

    for (request, field) in [
        (
            pb::TestCredentialRequest {
                r#type: "postgresql".into(),
                value: secret(&bad),
                ..Default::default()
            },
            "value.secret",
        ),
        (
            pb::TestCredentialRequest {
                credential_id: c.id.clone(),
                value: fields(&[("connection_string", &bad)]),
                ..Default::default()
            },
            "value.fields[connection_string]",
        ),
    ] {
        let err = test_value(&stack, &token, request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(field_of(&err), field);
        assert!(!leaks(&format!("{err:?}")), "{err:?}");
    }
    // Nothing was probed, so nothing was stored on the credential.
    let after = stack
        .credentials(&token)
        .get_credential(pb::GetCredentialRequest {
            id: c.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert!(after.validation.unwrap_or_default().message.is_empty());
    assert!(
        !leaks(&stack.logs()),
        "a log line holds part of the password"
    );
}

#[tokio::test]
async fn a_one_letter_password_leaves_the_stored_message_whole() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    let token = stack.token(&["ws"], ALL);
    let pg = testkit::password_pg().await;
    let c = stack
        .create(
            &token,
            create(
                "p",
                "postgresql",
                secret(&format!("postgresql://app:p@127.0.0.1:{}/prod", pg.port())),
            ),
        )
        .await;
    let answer = stack
        .credentials(&token)
        .validate_credential(pb::ValidateCredentialRequest {
            id: c.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let result = answer.result.unwrap();
    assert_eq!(
        result.outcome,
        pb::ValidationOutcome::EgressDenied as i32,
        "{}",
        result.message
    );
    assert!(
        result.message.starts_with(
            "127.0.0.1 is refused by the egress policy (loopback range); \
             an operator can allow it with --egress-allow 127.0.0.1/32"
        ),
        "{}",
        result.message
    );
    let stored = answer.credential.unwrap().validation.unwrap();
    assert_eq!(stored.message, result.message);
    let read = stack
        .credentials(&token)
        .get_credential(pb::GetCredentialRequest {
            id: c.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(read.validation.unwrap().message, result.message);
    assert!(!stack.logs().contains("****olicy"));
}

#[tokio::test]
async fn a_host_made_of_guesses_is_refused_the_same_whatever_the_stored_password() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    let token = stack.token(&["ws"], ALL);
    let n = rand_u64();
    let real = format!("Tr0ub4dor{n}");
    let other = format!("Different{n}");
    // A caller with write but not access keeps the stored password and chooses the host: the
    // stored message must not tell whether one of the labels is that password.
    let guesses = format!("a.b.{real}.c.invalid");
    let mut messages = Vec::new();
    for (name, password) in [("real", &real), ("other", &other)] {
        let c = stack
            .create(
                &token,
                create(
                    name,
                    "smtp",
                    fields(&[
                        ("host", "smtp.example.com"),
                        ("username", "app"),
                        ("password", password),
                    ]),
                ),
            )
            .await;
        // A test cannot replace the stored host (it decides where the secret goes), and an
        // update replaces the whole value, password included: no request probes the stored
        // password against a host of the caller's guesses.
        let err = test_value(
            &stack,
            &token,
            pb::TestCredentialRequest {
                credential_id: c.id.clone(),
                value: fields(&[("host", &guesses)]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(field_of(&err), "value.fields[host]");
        messages.push(err.message().to_owned());
    }
    assert!(!messages[0].contains(&real), "{}", messages[0]);
    assert_eq!(messages[0], messages[1]);
    assert!(!stack.logs().contains(&other));
}
