//! Probe messages are built from parts known not to be secret, never by redacting a text that
//! held the secret: a one-letter password leaves every word intact, a host made of guesses reads
//! the same whatever the password, a password with a raw '@' is refused before any host is read,
//! and a hostile server's echo of the password is never copied.

#![allow(clippy::unwrap_used)]

mod db_support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use credentials_core::SecretValue;
use credentials_probe::{ProbeResult, ValidationOutcome};
use db_support::*;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A value as stored before connection strings were checked on write: no check at all.
fn stored(pairs: &[(&str, &str)]) -> SecretValue {
    let fields: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    let json = serde_json::json!({ "fields": fields }).to_string();
    SecretValue::from_json(json.as_bytes()).unwrap()
}

async fn probe_db(type_id: &str, connection_string: &str) -> ProbeResult {
    prober(Duration::from_secs(10))
        .validate(
            type_id,
            &stored(&[("connection_string", connection_string)]),
        )
        .await
}

#[tokio::test]
async fn a_one_letter_password_leaves_every_word_intact() {
    // The default policy refuses loopback: the message names the class and the way out.
    let url = "postgresql://app:p@127.0.0.1:5432/prod";
    let result = default_prober()
        .validate("postgresql", &stored(&[("connection_string", url)]))
        .await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::EgressDenied,
        "{result:?}"
    );
    assert!(
        result
            .message
            .contains("127.0.0.1 is refused by the egress policy (loopback range)"),
        "{}",
        result.message
    );
    assert!(!result.message.contains("****"), "{}", result.message);

    // A real server refusing the login: the user and the endpoint, in full.
    let pg = testkit::password_pg().await;
    let url = format!("postgresql://app:p@127.0.0.1:{}/postgres", pg.port());
    let result = probe_db("postgresql", &url).await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::InvalidCredentials,
        "{result:?}"
    );
    assert_eq!(
        result.message,
        format!(
            "authentication failed for user 'app' on 127.0.0.1:{} (SQLSTATE 28P01)",
            pg.port()
        )
    );

    // MariaDB (root, no password) is asked for a user that does not exist.
    let result = probe_db("mysql", "mysql://app:p@127.0.0.1:3306/prod").await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::InvalidCredentials,
        "{result:?}"
    );
    assert_eq!(
        result.message,
        "authentication failed for user 'app' on 127.0.0.1:3306 (error 1045)"
    );

    // Nothing listens: the standard library's words, whole.
    let port = closed_port();
    let result = probe_db(
        "postgresql",
        &format!("postgresql://app:p@127.0.0.1:{port}/prod"),
    )
    .await;
    assert_eq!(result.outcome, ValidationOutcome::Unreachable);
    assert_eq!(
        result.message,
        format!("could not connect to 127.0.0.1:{port} (127.0.0.1:{port}): connection refused")
    );
}

#[tokio::test]
async fn a_host_made_of_guesses_reads_the_same_whatever_the_password() {
    let guesses = "a.b.Tr0ub4dor.c.invalid";
    let mut seen = Vec::new();
    for password in ["Tr0ub4dor", "Different-9"] {
        let url = format!("postgresql://app:{password}@{guesses}/prod");
        let pg = probe_db("postgresql", &url).await;
        let smtp = prober(Duration::from_secs(10))
            .validate(
                "smtp",
                &value(
                    "smtp",
                    &[
                        ("host", guesses),
                        ("username", "app"),
                        ("password", password),
                    ],
                ),
            )
            .await;
        for result in [&pg, &smtp] {
            assert_eq!(result.outcome, ValidationOutcome::Unreachable, "{result:?}");
            assert_eq!(result.message, format!("{guesses} does not resolve"));
        }
        seen.push((pg.message, smtp.message));
    }
    // The right guess is not told apart from a wrong one.
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn a_raw_at_in_the_password_is_refused_before_any_host_is_read() {
    // Stored before the check on write existed; the probe refuses it on its own.
    for (type_id, url) in [
        (
            "postgresql",
            "postgresql://app:Sekr3tA@Sekr3tB@127.0.0.1:5432/prod",
        ),
        (
            "redshift",
            "redshift://app:Sekr3tA@Sekr3tB@127.0.0.1:5439/dev",
        ),
        ("mysql", "mysql://app:Sekr3tA@Sekr3tB@127.0.0.1:3306/prod"),
        (
            "clickhouse",
            "clickhouse://app:Sekr3tA@Sekr3tB@127.0.0.1:8123/db",
        ),
        (
            "postgresql",
            "postgresql://app:Sekr3tA/Sekr3tB@127.0.0.1:5432/prod",
        ),
    ] {
        let result = probe_db(type_id, url).await;
        assert_eq!(
            result.outcome,
            ValidationOutcome::InvalidCredentials,
            "{url}: {result:?}"
        );
        assert!(result.message.contains("ambiguous"), "{}", result.message);
        assert!(
            !result.message.contains("Sekr3t"),
            "{url}: {}",
            result.message
        );
    }
}

/// A hostile SMTP server (RFC 5321 replies, AUTH PLAIN per RFC 4954) that answers the login
/// with a 535 quoting the password, its halves and the base64 token it was sent.
async fn echoing_smtp_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 echo.test ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply = if line.starts_with("EHLO") {
                        "250-echo.test\r\n250 AUTH PLAIN\r\n".to_owned()
                    } else if let Some(token) = line.strip_prefix("AUTH PLAIN ") {
                        let decoded = BASE64.decode(token.trim()).unwrap();
                        let decoded = String::from_utf8_lossy(&decoded);
                        let password = decoded.rsplit('\0').next().unwrap().to_owned();
                        let (head, tail) = password.split_at(password.len() / 2);
                        format!(
                            "535-5.7.8 {password} is wrong\r\n535-5.7.8 {head} / {tail}\r\n\
                             535 5.7.8 you sent {token}\r\n"
                        )
                    } else if line.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        "502 5.5.2 what\r\n".to_owned()
                    };
                    write.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_hostile_servers_echo_is_never_copied() {
    let port = echoing_smtp_server().await;
    let password = "Pw-MARKER-halves-8d1e";
    let result = prober(Duration::from_secs(10))
        .validate(
            "smtp",
            &value(
                "smtp",
                &[
                    ("host", "127.0.0.1"),
                    ("port", &port.to_string()),
                    ("security", "none"),
                    ("username", "app"),
                    ("password", password),
                ],
            ),
        )
        .await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::InvalidCredentials,
        "{result:?}"
    );
    assert_eq!(
        result.message,
        format!("authentication failed for user 'app' on 127.0.0.1:{port} (535 5.7.8)")
    );
}
