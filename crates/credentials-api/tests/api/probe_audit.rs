//! A stored secret goes only to its own target, and never unrecorded: a test against a stored
//! credential cannot redirect it (destination, option and identity fields are refused, audited,
//! nothing sent), and validate, test and discover commit their audit event before the probe
//! dials, so when the audit log cannot be written the target receives nothing.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
};
use tonic::Code;

/// A local target that records every connection it accepts (the request head of an HTTP one)
/// and answers HTTP 200.
struct Target {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Target {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut line = String::new();
                // A Postgres client speaks first too, in binary: read what a line gives.
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    head.push_str(&line);
                    if line == "\r\n" || !line.ends_with('\n') {
                        break;
                    }
                    line.clear();
                }
                log.lock().unwrap().push(head);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
            }
        });
        Self { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/check", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

const STORED_KEY: &str = "key-MARKER-stored-7731";

async fn stored_api_key(stack: &TestApi, token: &str, endpoint: &str) -> pb::Credential {
    stack
        .create(
            token,
            create(
                "tool",
                "api_key",
                fields(&[("api_key", STORED_KEY), ("endpoint", endpoint)]),
            ),
        )
        .await
}

fn test_stored(id: &str, value: Option<pb::CredentialValue>) -> pb::TestCredentialRequest {
    pb::TestCredentialRequest {
        credential_id: id.into(),
        value,
        ..Default::default()
    }
}

/// `(action, outcome, status)` of the workspace's audit events of `id`, oldest first.
async fn audit_of(stack: &TestApi, id: &str) -> Vec<(i32, i32, String)> {
    let reader = stack.token(&["ws"], &["read"]);
    let mut events = stack
        .management()
        .list_audit_events(authed(
            pb::ListAuditEventsRequest {
                credential_id: id.into(),
                ..Default::default()
            },
            &reader,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    events.reverse();
    events
        .into_iter()
        .map(|e| (e.action, e.outcome, e.status_code))
        .collect()
}

#[tokio::test]
async fn a_test_of_a_stored_credential_cannot_send_its_secret_elsewhere() {
    let stack =
        TestApi::start_with(&["--egress-allow", "127.0.0.0/8", "--rewrap-interval", "0"]).await;
    let owner = stack.token(&["ws"], ALL);
    let (legit, attacker) = (Target::start(), Target::start());
    let tool = stored_api_key(&stack, &owner, &legit.url()).await;
    // `write` without `access`: may validate, must never learn or redirect the secret.
    let writer = stack.token(&["ws"], &["read", "write"]);
    let mut m = stack.management();

    for (field, value) in [
        ("endpoint", attacker.url()),
        ("header_name", "X-Leak".to_owned()),
    ] {
        let err = m
            .test_credential(authed(
                test_stored(&tool.id, fields(&[(field, &value)])),
                &writer,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(field_of(&err), format!("value.fields[{field}]"));
        assert!(!err.message().contains(STORED_KEY), "{}", err.message());
    }
    // Replacing the secret and the destination together is still a change of destination.
    let err = m
        .test_credential(authed(
            test_stored(
                &tool.id,
                fields(&[("api_key", "key-new-0001"), ("endpoint", &attacker.url())]),
            ),
            &writer,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "value.fields[endpoint]");
    assert!(attacker.requests().is_empty(), "{:?}", attacker.requests());
    assert!(legit.requests().is_empty(), "{:?}", legit.requests());

    // A new key against the stored target is what the call is for.
    let result = m
        .test_credential(authed(
            test_stored(&tool.id, fields(&[("api_key", "key-new-0002")])),
            &writer,
        ))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        result.outcome,
        pb::ValidationOutcome::Valid as i32,
        "{result:?}"
    );
    let seen = legit.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("key-new-0002"), "{seen:?}");
    assert!(!seen[0].contains(STORED_KEY), "{seen:?}");
    assert!(attacker.requests().is_empty());

    use pb::{AuditAction as A, AuditOutcome as O};
    let refused = (
        A::Test as i32,
        O::Failed as i32,
        "INVALID_ARGUMENT".to_owned(),
    );
    assert_eq!(
        audit_of(&stack, &tool.id).await,
        [
            (A::Create as i32, O::Succeeded as i32, "OK".to_owned()),
            refused.clone(),
            refused.clone(),
            refused,
            (A::Test as i32, O::Started as i32, "OK".to_owned()),
        ]
    );
}

#[tokio::test]
async fn smtp_and_oauth_destinations_and_identities_cannot_be_replaced_in_a_test() {
    let stack =
        TestApi::start_with(&["--egress-allow", "127.0.0.0/8", "--rewrap-interval", "0"]).await;
    let owner = stack.token(&["ws"], ALL);
    let attacker = Target::start();
    let smtp = stack
        .create(
            &owner,
            create(
                "mail",
                "smtp",
                fields(&[
                    ("host", "127.0.0.1"),
                    ("port", "2525"),
                    ("username", "mailer"),
                    ("password", "Pw-MARKER-smtp-5150"),
                ]),
            ),
        )
        .await;
    let port = attacker.port.to_string();
    let mut m = stack.management();
    for (field, value) in [
        ("host", "attacker.example"),
        ("port", port.as_str()),
        ("security", "none"),
        // Not secret, but the stored password tried against another account is not allowed.
        ("username", "admin"),
    ] {
        let err = m
            .test_credential(authed(
                test_stored(&smtp.id, fields(&[(field, value)])),
                &owner,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(field_of(&err), format!("value.fields[{field}]"));
    }
    let oauth = stack
        .create(
            &owner,
            create(
                "oauth",
                "oauth",
                fields(&[
                    ("refresh_token", "rt-MARKER-0001"),
                    ("client_id", "app"),
                    ("client_secret", "cs-MARKER-0001"),
                    ("token_url", "https://login.example/token"),
                ]),
            ),
        )
        .await;
    let err = m
        .test_credential(authed(
            test_stored(&oauth.id, fields(&[("token_url", &attacker.url())])),
            &owner,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "value.fields[token_url]");
    assert!(attacker.requests().is_empty(), "{:?}", attacker.requests());
}

/// Makes every write to the audit log fail as an outage of it would (SQLSTATE 08006), while
/// the rest of the database keeps working.
async fn take_the_audit_log_offline(stack: &TestApi) {
    stack
        .db
        .client()
        .await
        .batch_execute(
            "CREATE FUNCTION audit_offline() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'audit log offline' USING ERRCODE = 'connection_failure'; END $$; \
             CREATE TRIGGER audit_offline BEFORE INSERT ON audit_events \
             FOR EACH STATEMENT EXECUTE FUNCTION audit_offline();",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn no_probe_runs_when_its_audit_event_cannot_be_written() {
    let stack =
        TestApi::start_with(&["--egress-allow", "127.0.0.0/8", "--rewrap-interval", "0"]).await;
    let token = stack.token(&["ws"], ALL);
    let target = Target::start();
    let tool = stored_api_key(&stack, &token, &target.url()).await;
    let warehouse = stack
        .create(
            &token,
            create(
                "wh",
                "postgresql",
                secret(&format!(
                    "postgresql://u:Pw-MARKER-wh-0001@127.0.0.1:{}/db",
                    target.port
                )),
            ),
        )
        .await;
    take_the_audit_log_offline(&stack).await;
    let mut m = stack.management();

    let err = m
        .validate_credential(authed(
            pb::ValidateCredentialRequest {
                id: tool.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = m
        .test_credential(authed(
            test_stored(&tool.id, fields(&[("api_key", "key-new-0003")])),
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = m
        .discover_schema(authed(
            pb::DiscoverSchemaRequest {
                id: warehouse.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(target.requests().is_empty(), "{:?}", target.requests());
}
