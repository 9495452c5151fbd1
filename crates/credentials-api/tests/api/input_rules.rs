//! Input the catalogue's formats or the name rules refuse: INVALID_ARGUMENT naming the field,
//! a message that does not echo the value, and nothing written. Names are one name in NFC.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

/// A valid value of a type, with `field` replaced by `bad`.
fn with(type_id: &str, field: &str, bad: &str) -> Option<pb::CredentialValue> {
    let base: &[(&str, &str)] = match type_id {
        "smtp" => &[
            ("host", "smtp.example.com"),
            ("port", "587"),
            ("username", "bot"),
            ("password", "Smtp-pass-0123456789"),
        ],
        "bedrock" => &[
            ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
            (
                "secret_access_key",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            ("region", "us-east-1"),
        ],
        "api_key" => &[("api_key", "tool-key-0123456789abcdef")],
        "snowflake" => &[("account", "acme"), ("username", "bot")],
        _ => &[],
    };
    let mut pairs: Vec<(&str, &str)> = base.iter().filter(|(k, _)| *k != field).copied().collect();
    pairs.push((field, bad));
    fields(&pairs)
}

#[tokio::test]
async fn values_off_their_format_are_refused_naming_the_field_and_write_nothing() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let marker = format!("MARKER{:016x}", rand_u64());
    let rows = || async {
        (
            stack.count("credentials").await,
            stack.count("audit_events").await,
        )
    };
    let before = rows().await;

    let cases: Vec<(pb::CreateCredentialRequest, &str)> = vec![
        (
            create("x", "smtp", with("smtp", "port", "abc")),
            "value.fields[port]",
        ),
        (
            create("x", "smtp", with("smtp", "port", "99999")),
            "value.fields[port]",
        ),
        (
            create("x", "smtp", with("smtp", "host", "smtp.example.com/evil")),
            "value.fields[host]",
        ),
        (
            create("x", "bedrock", with("bedrock", "region", "not a region!")),
            "value.fields[region]",
        ),
        (
            create(
                "x",
                "bigquery",
                fields(&[("service_account_json", &format!("not json {marker}"))]),
            ),
            "value.fields[service_account_json]",
        ),
        (
            create("x", "static_file", secret("file:///etc/passwd")),
            "value.secret",
        ),
        (
            create("x", "static_file", fields(&[("url", "file:///etc/passwd")])),
            "value.fields[url]",
        ),
        (
            create(
                "x",
                "api_key",
                with("api_key", "endpoint", "javascript:alert(1)"),
            ),
            "value.fields[endpoint]",
        ),
        (
            create(
                "x",
                "snowflake",
                with("snowflake", "private_key", &format!("not a pem {marker}")),
            ),
            "value.fields[private_key]",
        ),
        // Secrets as sent or not at all: surrounding whitespace, newlines and NUL are refused.
        (
            create("x", "openai", secret(&format!("sk-{marker}\n"))),
            "value.secret",
        ),
        (
            create("x", "openai", secret(&format!(" sk-{marker}"))),
            "value.secret",
        ),
        (
            create("x", "openai", secret(&format!("sk-{marker}\u{0}"))),
            "value.secret",
        ),
        (
            create(
                "x",
                "smtp",
                with("smtp", "password", &format!("{marker}\r\n")),
            ),
            "value.fields[password]",
        ),
        // Names: invisible, bidi and control characters.
        (
            create("\u{200B}", "openai", secret("sk-0123456789abcdefghijklmn")),
            "name",
        ),
        (
            create(
                "prod\u{200D}",
                "openai",
                secret("sk-0123456789abcdefghijklmn"),
            ),
            "name",
        ),
        (
            create(
                "prod\u{202E}dorp",
                "openai",
                secret("sk-0123456789abcdefghijklmn"),
            ),
            "name",
        ),
        (
            create(
                "pro\u{00A0}d",
                "openai",
                secret("sk-0123456789abcdefghijklmn"),
            ),
            "name",
        ),
        // A Cyrillic "о" among Latin letters.
        (
            create(
                "Pr\u{43e}d",
                "openai",
                secret("sk-0123456789abcdefghijklmn"),
            ),
            "name",
        ),
    ];
    for (request, field) in cases {
        let err = m
            .create_credential(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(field_of(&err), field, "{err:?}");
        assert!(err.message().starts_with(field), "{}", err.message());
        assert!(!format!("{err:?}").contains(&marker), "{err:?}");
    }
    assert_eq!(rows().await, before);
    assert!(!stack.logs().contains(&marker));
}

#[tokio::test]
async fn updates_and_tested_values_are_checked_the_same_way() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let marker = format!("MARKER{:016x}", rand_u64());
    let c = stack
        .create(&token, create("mail", "smtp", with("smtp", "port", "587")))
        .await;
    let before = (
        stack.count("credentials").await,
        stack.count("audit_events").await,
    );
    let update = |value, name: Option<&str>| pb::UpdateCredentialRequest {
        id: c.id.clone(),
        value,
        name: name.map(str::to_owned),
        ..Default::default()
    };
    for (request, field) in [
        (
            update(with("smtp", "port", "99999"), None),
            "value.fields[port]",
        ),
        (
            update(with("smtp", "password", &format!("{marker}\n")), None),
            "value.fields[password]",
        ),
        (update(None, Some("\u{200B}")), "name"),
    ] {
        let err = m
            .update_credential(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), field_of(&err).as_str()),
            (Code::InvalidArgument, field),
            "{err:?}"
        );
        assert!(!format!("{err:?}").contains(&marker));
    }
    let tests = [
        (
            pb::TestCredentialRequest {
                r#type: "smtp".into(),
                value: with("smtp", "port", "abc"),
                ..Default::default()
            },
            "value.fields[port]",
        ),
        (
            pb::TestCredentialRequest {
                credential_id: c.id.clone(),
                value: fields(&[("password", &format!("{marker}\n"))]),
                ..Default::default()
            },
            "value.fields[password]",
        ),
    ];
    for (request, field) in tests {
        let err = m
            .test_credential(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), field_of(&err).as_str()),
            (Code::InvalidArgument, field),
            "{err:?}"
        );
    }
    assert_eq!(
        (
            stack.count("credentials").await,
            stack.count("audit_events").await
        ),
        before
    );
    let stored = m
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: c.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.credential.unwrap().etag, c.etag);
}

#[tokio::test]
async fn names_are_one_name_in_nfc() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let nfc = "Caf\u{e9}";
    let nfd = "Cafe\u{301}";
    // Sent decomposed, stored composed.
    let created = stack
        .create(
            &token,
            create(nfd, "openai", secret("sk-0123456789abcdefghijklmn")),
        )
        .await;
    assert_eq!(created.name, nfc);
    let before = stack.count("credentials").await;
    let err = m
        .create_credential(authed(
            create(nfc, "anthropic", secret("sk-ant-0123456789abcdefghi")),
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");

    // A rename onto the other form of a taken name is the same conflict.
    let other = stack
        .create(
            &token,
            create("Other", "openai", secret("sk-0123456789abcdefghijklmn")),
        )
        .await;
    let err = m
        .update_credential(authed(
            pb::UpdateCredentialRequest {
                id: other.id.clone(),
                name: Some(nfd.into()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(stack.count("credentials").await, before + 1);
}

#[tokio::test]
async fn malformed_discovery_timeouts_are_refused() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let id = "0b4e1c52-96c1-4d53-9a0e-8c3f3c1c0e11";
    for (seconds, nanos) in [(1, 2_000_000_000), (2, -1), (-1, 0), (0, -5), (i64::MIN, 0)] {
        let err = m
            .discover_schema(authed(
                pb::DiscoverSchemaRequest {
                    id: id.into(),
                    timeout: Some(prost_types::Duration { seconds, nanos }),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), field_of(&err).as_str()),
            (Code::InvalidArgument, "timeout"),
            "{seconds}s {nanos}ns: {err:?}"
        );
    }
}
