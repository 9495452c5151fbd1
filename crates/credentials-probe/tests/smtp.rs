//! SMTP logins against aiosmtpd (tests/fixtures/smtp_server.py). The tests install nothing:
//! without `aiosmtpd` for `python3` the server-backed tests are skipped with a loud message.

#![allow(clippy::unwrap_used)]

mod db_support;

use credentials_probe::ValidationOutcome;
use db_support::*;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// A running aiosmtpd; stopped (and checked for MAIL/RCPT) by [`SmtpServer::finish`].
struct SmtpServer {
    port: u16,
    child: Child,
    stdout: BufReader<ChildStdout>,
}

fn aiosmtpd_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "\n\n*** SKIPPED: python3 cannot import aiosmtpd; run `pip install aiosmtpd==1.4.6` \
             to test SMTP probes against a real server ***\n"
        );
    }
    ok
}

impl SmtpServer {
    async fn start(flags: &[&str]) -> SmtpServer {
        let port = closed_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg("alice")
            .arg(MARKER)
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(20), stdout.read_line(&mut line))
            .await
            .expect("the SMTP server did not start within 20 s")
            .unwrap();
        assert_eq!(line.trim(), "READY", "unexpected output of the SMTP server");
        SmtpServer {
            port,
            child,
            stdout,
        }
    }

    fn value(&self, password: &str, extra: &[(&str, &str)]) -> credentials_core::SecretValue {
        let port = self.port.to_string();
        let mut pairs = vec![
            ("host", "127.0.0.1"),
            ("port", port.as_str()),
            ("username", "alice"),
            ("password", password),
        ];
        pairs.extend_from_slice(extra);
        value("smtp", &pairs)
    }

    /// Stops the server and asserts no client sent MAIL or RCPT.
    async fn finish(mut self) {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            self.stdout.read_to_string(&mut rest),
        )
        .await
        .unwrap()
        .unwrap();
        let _ = self.child.wait().await;
        assert!(
            !rest.contains("SAW"),
            "the probe sent mail commands: {rest}"
        );
    }
}

#[tokio::test]
async fn auth_plain_good_and_bad() {
    if !aiosmtpd_available() {
        return;
    }
    let server = SmtpServer::start(&[]).await;
    let prober = prober(Duration::from_secs(10));
    for extra in [&[("security", "none")][..], &[]] {
        let good = prober.validate("smtp", &server.value(MARKER, extra)).await;
        expect(&good, ValidationOutcome::Valid, &[MARKER]);
        assert_eq!(good.message, "logged in as alice");
    }
    let bad = prober
        .validate(
            "smtp",
            &server.value("Wrong-Pw-MARKER-77", &[("security", "none")]),
        )
        .await;
    expect(
        &bad,
        ValidationOutcome::InvalidCredentials,
        &["Wrong-Pw-MARKER-77"],
    );
    assert!(bad.message.contains("535"), "{}", bad.message);
    server.finish().await;
}

#[tokio::test]
async fn auth_login_good_and_bad() {
    if !aiosmtpd_available() {
        return;
    }
    let server = SmtpServer::start(&["--login-only"]).await;
    let prober = prober(Duration::from_secs(10));
    let good = prober.validate("smtp", &server.value(MARKER, &[])).await;
    expect(&good, ValidationOutcome::Valid, &[MARKER]);
    let bad = prober
        .validate("smtp", &server.value("Wrong-Pw-MARKER-77", &[]))
        .await;
    expect(
        &bad,
        ValidationOutcome::InvalidCredentials,
        &["Wrong-Pw-MARKER-77"],
    );
    server.finish().await;
}

#[tokio::test]
async fn no_auth_and_missing_tls_are_provider_errors() {
    if !aiosmtpd_available() {
        return;
    }
    let server = SmtpServer::start(&["--no-auth"]).await;
    let prober = prober(Duration::from_secs(10));
    let no_auth = prober.validate("smtp", &server.value(MARKER, &[])).await;
    expect(&no_auth, ValidationOutcome::ProviderError, &[MARKER]);
    assert!(
        no_auth.message.starts_with("the server offers no AUTH"),
        "{}",
        no_auth.message
    );
    let starttls = prober
        .validate("smtp", &server.value(MARKER, &[("security", "starttls")]))
        .await;
    expect(&starttls, ValidationOutcome::ProviderError, &[MARKER]);
    assert!(
        starttls.message.contains("STARTTLS"),
        "{}",
        starttls.message
    );
    let implicit = prober
        .validate("smtp", &server.value(MARKER, &[("security", "tls")]))
        .await;
    expect(&implicit, ValidationOutcome::ProviderError, &[MARKER]);
    assert!(
        implicit.message.contains("TLS handshake"),
        "{}",
        implicit.message
    );
    server.finish().await;
}

#[tokio::test]
async fn closed_port_silent_server_and_default_policy() {
    let smtp = |port: u16| {
        value(
            "smtp",
            &[
                ("host", "127.0.0.1"),
                ("port", &port.to_string()),
                ("username", "alice"),
                ("password", MARKER),
            ],
        )
    };
    let closed = prober(Duration::from_secs(10))
        .validate("smtp", &smtp(closed_port()))
        .await;
    expect(&closed, ValidationOutcome::Unreachable, &[MARKER]);

    let port = silent_server().await;
    let timeout = Duration::from_millis(1200);
    let started = Instant::now();
    let silent = prober(timeout).validate("smtp", &smtp(port)).await;
    assert_within(started.elapsed(), timeout);
    expect(&silent, ValidationOutcome::TimedOut, &[MARKER]);

    let wire = Tripwire::new();
    let denied = default_prober().validate("smtp", &smtp(wire.port())).await;
    expect(&denied, ValidationOutcome::EgressDenied, &[MARKER]);
    wire.assert_untouched();
}
