//! No secret reaches a table or a log.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn no_secret_reaches_a_table_or_a_log() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
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
    for (name, logs) in [("api", stack.logs()), ("kms", stack.kms.logs())] {
        assert!(!logs.contains(&marker), "{name} log holds the marker");
    }
}
