//! Validation and schema discovery: outcomes stored on the credential and audited, proposed
//! values tested without storing, discovery stored and served as structure and DDL, and the
//! egress guard at its default.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::io::{BufRead, BufReader, Write};
use tonic::Code;

async fn validate(stack: &TestApi, token: &str, id: &str) -> pb::ValidateCredentialResponse {
    stack
        .management()
        .validate_credential(authed(
            pb::ValidateCredentialRequest {
                id: id.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// A role with a password and a database with tables, views, comments, defaults and a composite
/// key, on the password-authenticated test cluster.
async fn sales_database(password: &str) -> (String, String) {
    let pg = testkit::password_pg().await;
    let n = std::process::id();
    let (role, db) = (format!("sales_{n}"), format!("sales_{n}"));
    let admin = pg.admin("postgres").await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db} OWNER {role}"))
        .await
        .unwrap();
    let owner = {
        let (client, conn) =
            tokio_postgres::connect(&pg.url(&role, password, &db), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        client
    };
    owner
        .batch_execute(
            "CREATE TABLE orders (
                 region text NOT NULL,
                 order_no integer NOT NULL,
                 amount numeric(10,2) DEFAULT 0,
                 note varchar(64),
                 PRIMARY KEY (region, order_no));
             COMMENT ON TABLE orders IS 'One row per order';
             COMMENT ON COLUMN orders.amount IS 'Total in EUR';
             CREATE VIEW big_orders AS SELECT region, order_no FROM orders WHERE amount > 100;",
        )
        .await
        .unwrap();
    (role, db)
}

/// A fake OpenAI API: GET /v1/models answers 200 for the good key and OpenAI's documented 401
/// error body otherwise.
fn fake_openai(good_key: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut auth_ok = false;
            let mut path_ok = false;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.starts_with("GET /v1/models ") {
                    path_ok = true;
                }
                if line.to_ascii_lowercase().starts_with("authorization:")
                    && line.trim_end().ends_with(&format!("Bearer {good_key}"))
                {
                    auth_ok = true;
                }
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            let (status, body) = if path_ok && auth_ok {
                (
                    "200 OK",
                    r#"{"object":"list","data":[{"id":"gpt-4o","object":"model"}]}"#,
                )
            } else {
                (
                    "401 Unauthorized",
                    r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","code":"invalid_api_key"}}"#,
                )
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[tokio::test]
async fn a_postgres_credential_validates_and_its_schema_is_discovered() {
    let stack =
        TestApi::start_with(&["--egress-allow", "127.0.0.0/8", "--rewrap-interval", "0"]).await;
    let token = stack.token(&["ws"], ALL);
    let password = "Pw-MARKER-4417-sales";
    let (role, db) = sales_database(password).await;
    let pg = testkit::password_pg().await;
    let good = format!(
        "postgresql://{role}:{password}@127.0.0.1:{}/{db}",
        pg.port()
    );
    let bad = format!(
        "postgresql://{role}:wrong-password@127.0.0.1:{}/{db}",
        pg.port()
    );

    let c = stack
        .create(&token, create("sales", "postgresql", secret(&good)))
        .await;
    let answer = validate(&stack, &token, &c.id).await;
    let result = answer.result.unwrap();
    assert_eq!(
        result.outcome,
        pb::ValidationOutcome::Valid as i32,
        "{}",
        result.message
    );
    assert!(result.latency.is_some() && result.checked_at.is_some());
    let after = answer.credential.unwrap();
    let stored = after.validation.unwrap();
    assert_eq!(
        (stored.state, stored.outcome),
        (
            pb::ValidationState::Valid as i32,
            pb::ValidationOutcome::Valid as i32
        )
    );
    // Validation does not change the value, so the etag stays.
    assert_eq!(after.etag, c.etag);

    let wrong = stack
        .create(&token, create("sales wrong", "postgresql", secret(&bad)))
        .await;
    let result = validate(&stack, &token, &wrong.id).await.result.unwrap();
    assert_eq!(
        result.outcome,
        pb::ValidationOutcome::InvalidCredentials as i32,
        "{}",
        result.message
    );
    assert!(
        !result.message.contains("wrong-password"),
        "{}",
        result.message
    );

    // A proposed value is tested without being stored: the stored one with its password replaced.
    let rows = stack.count("credentials").await;
    let tested = stack
        .management()
        .test_credential(authed(
            pb::TestCredentialRequest {
                credential_id: wrong.id.clone(),
                value: secret(&good),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        tested.outcome,
        pb::ValidationOutcome::Valid as i32,
        "{}",
        tested.message
    );
    let tested = stack
        .management()
        .test_credential(authed(
            pb::TestCredentialRequest {
                r#type: "postgresql".into(),
                value: secret(&bad),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        tested.outcome,
        pb::ValidationOutcome::InvalidCredentials as i32
    );
    assert_eq!(stack.count("credentials").await, rows);

    // Discovery: stored, then served structured and as DDL.
    let mut m = stack.management();
    let discovered = m
        .discover_schema(authed(
            pb::DiscoverSchemaRequest {
                id: c.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((discovered.table_count, discovered.truncated), (2, false));
    let credential = discovered.credential.unwrap();
    assert!(credential.has_schema && credential.schema_updated_at.is_some());
    let schema = m
        .get_schema(authed(
            pb::GetSchemaRequest {
                id: c.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let public = &schema.schema.unwrap().namespaces[0];
    assert_eq!(public.name, "public");
    let orders = public.tables.iter().find(|t| t.name == "orders").unwrap();
    assert_eq!(orders.kind, pb::TableKind::Table as i32);
    assert_eq!(orders.description, "One row per order");
    assert_eq!(orders.primary_key, ["region", "order_no"]);
    let amount = orders.columns.iter().find(|c| c.name == "amount").unwrap();
    assert_eq!(
        (amount.data_type.as_str(), amount.nullable, amount.position),
        ("numeric(10,2)", true, 3)
    );
    assert_eq!(amount.description, "Total in EUR");
    assert!(amount.default_value.as_deref().unwrap().starts_with('0'));
    let region = orders.columns.iter().find(|c| c.name == "region").unwrap();
    assert!(!region.nullable);
    assert!(
        public
            .tables
            .iter()
            .any(|t| t.name == "big_orders" && t.kind == pb::TableKind::View as i32)
    );
    assert!(
        schema.ddl.contains("CREATE TABLE public.orders"),
        "{}",
        schema.ddl
    );
    assert!(
        schema.ddl.contains("PRIMARY KEY (region, order_no)"),
        "{}",
        schema.ddl
    );

    // A non-database type has no schema discovery.
    let key = stack
        .create(
            &token,
            create("openai", "openai", secret("sk-0123456789abcdefghijklmn")),
        )
        .await;
    let err = m
        .discover_schema(authed(
            pb::DiscoverSchemaRequest {
                id: key.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = m
        .get_schema(authed(
            pb::GetSchemaRequest {
                id: key.id,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = m
        .discover_schema(authed(
            pb::DiscoverSchemaRequest {
                id: c.id.clone(),
                max_tables: 99999,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Audited, and the password reached no log, table or audit row.
    let client = stack.db.client().await;
    // Each probe is recorded as started (outcome 3) before it dials, then with its result.
    let actions: Vec<(i16, i16)> = client
        .query(
            "SELECT action, outcome FROM audit_events WHERE action IN (6, 7) ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(actions, [(6, 3), (6, 1), (6, 3), (6, 1), (7, 3), (7, 1)]);
    assert!(!stack.logs().contains(password));
    for row in client
        .query("SELECT t::text FROM credentials t", &[])
        .await
        .unwrap()
    {
        assert!(!row.get::<_, String>(0).contains(password));
    }
}

#[tokio::test]
async fn an_llm_key_is_checked_against_the_configured_provider_url() {
    let port = fake_openai("sk-good-0123456789abcdefghij");
    let url = format!("openai=http://127.0.0.1:{port}/v1");
    let stack = TestApi::start_with(&[
        "--egress-allow",
        "127.0.0.0/8",
        "--provider-url",
        &url,
        "--rewrap-interval",
        "0",
    ])
    .await;
    let token = stack.token(&["ws"], ALL);
    let good = stack
        .create(
            &token,
            create("good", "openai", secret("sk-good-0123456789abcdefghij")),
        )
        .await;
    let bad = stack
        .create(
            &token,
            create("bad", "openai", secret("sk-bad-0123456789abcdefghijk")),
        )
        .await;
    let result = validate(&stack, &token, &good.id).await.result.unwrap();
    assert_eq!(
        result.outcome,
        pb::ValidationOutcome::Valid as i32,
        "{}",
        result.message
    );
    let answer = validate(&stack, &token, &bad.id).await;
    let result = answer.result.unwrap();
    assert_eq!(
        result.outcome,
        pb::ValidationOutcome::InvalidCredentials as i32,
        "{}",
        result.message
    );
    assert_eq!(
        answer.credential.unwrap().validation.unwrap().state,
        pb::ValidationState::Invalid as i32
    );
    assert!(!result.message.contains("sk-bad"), "{}", result.message);

    // A type that cannot be probed says why; it is never reported valid.
    let pika = stack
        .create(
            &token,
            create("pika", "pika", secret("pk-0123456789abcdefghijklm")),
        )
        .await;
    let answer = validate(&stack, &token, &pika.id).await;
    let result = answer.result.unwrap();
    assert_eq!(
        result.outcome,
        pb::ValidationOutcome::UnsupportedType as i32
    );
    assert!(!result.message.is_empty());
    assert_eq!(
        answer.credential.unwrap().validation.unwrap().state,
        pb::ValidationState::Unspecified as i32
    );

    // Validation needs the write permission.
    let reader = stack.token(&["ws"], &["read"]);
    let err = stack
        .management()
        .validate_credential(authed(
            pb::ValidateCredentialRequest {
                id: good.id,
                ..Default::default()
            },
            &reader,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_egress_guard_refuses_internal_targets_by_default() {
    let stack = TestApi::start_with(&["--rewrap-interval", "0"]).await;
    let token = stack.token(&["ws"], ALL);
    let pg = testkit::password_pg().await;
    let internal = [
        (
            "postgresql",
            format!("postgresql://u:p@127.0.0.1:{}/db", pg.port()),
        ),
        ("postgresql", "postgresql://u:p@10.0.0.1:5432/db".to_owned()),
        (
            "static_file",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ),
        ("mysql", "mysql://u:p@[::1]:3306/db".to_owned()),
        (
            "postgresql",
            "postgresql://u:p@localhost:5432/db".to_owned(),
        ),
    ];
    for (i, (type_id, value)) in internal.iter().enumerate() {
        let c = stack
            .create(
                &token,
                create(&format!("internal {i}"), type_id, secret(value)),
            )
            .await;
        let result = validate(&stack, &token, &c.id).await.result.unwrap();
        assert_eq!(
            result.outcome,
            pb::ValidationOutcome::EgressDenied as i32,
            "{value}: {}",
            result.message
        );
        assert!(
            result.message.contains("--egress-allow"),
            "{}",
            result.message
        );
    }
}
