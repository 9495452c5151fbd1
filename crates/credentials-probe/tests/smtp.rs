//! SMTP logins against aiosmtpd (tests/fixtures/smtp_server.py). When `python3` cannot import
//! aiosmtpd 1.4.6, the tests install it from PyPI into a virtual environment under the target
//! directory, once; when that is impossible they fail and say what is missing.

#![allow(clippy::unwrap_used)]

mod db_support;

use credentials_probe::ValidationOutcome;
use db_support::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// A running aiosmtpd; stopped (and checked for MAIL/RCPT) by [`SmtpServer::finish`].
struct SmtpServer {
    port: u16,
    child: Child,
    stdout: BufReader<ChildStdout>,
}

/// The version the fixture is written for.
const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// Sets up a virtual environment with aiosmtpd in `$1` unless it is there (`$1/ready`); run
/// under `flock`, so parallel test processes set it up once. Exit codes name the missing piece.
const SETUP_SCRIPT: &str = r#"
set -u
venv=$1
requirement=$2
[ -f "$venv/ready" ] && exit 0
command -v python3 >/dev/null 2>&1 || exit 10
rm -rf "$venv"
python3 -m venv "$venv" || exit 11
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement" || exit 12
"$venv/bin/python" -c "import aiosmtpd" || exit 13
touch "$venv/ready"
"#;

/// A Python that can import aiosmtpd 1.4.6: `python3` when it already can (e.g. a venv on
/// `PATH`), else one in a virtual environment under the target directory, set up on first use
/// from PyPI. Panics with what is missing when neither works, so the SMTP tests never pass
/// without a server.
fn smtp_python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_or_install_aiosmtpd) {
        Ok(python) => python,
        Err(message) => panic!(
            "the SMTP tests need Python 3 with {AIOSMTPD} and could not set it up: {message}"
        ),
    }
}

fn find_or_install_aiosmtpd() -> Result<PathBuf, String> {
    let has_it = |python: &Path| {
        std::process::Command::new(python)
            .args([
                "-c",
                "import sys, aiosmtpd; sys.exit(aiosmtpd.__version__ != '1.4.6')",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_it(Path::new("python3")) {
        return Ok(PathBuf::from("python3"));
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aiosmtpd-1.4.6");
    let lock = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aiosmtpd-1.4.6.lock");
    std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR"))
        .map_err(|e| format!("could not create {}: {e}", env!("CARGO_TARGET_TMPDIR")))?;
    let out = std::process::Command::new("flock")
        .args(["--wait", "600"])
        .arg(&lock)
        .args(["sh", "-c", SETUP_SCRIPT, "setup-aiosmtpd"])
        .arg(&venv)
        .arg(AIOSMTPD)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run `flock` (util-linux), which guards the set-up: {e}"))?;
    let python = venv.join("bin").join("python");
    let output = || {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    match out.status.code() {
        Some(0) if has_it(&python) => Ok(python),
        Some(0) => Err(format!(
            "{} exists but cannot import aiosmtpd 1.4.6; delete {} to set it up again",
            python.display(),
            venv.display()
        )),
        Some(10) => Err(
            "python3 is not on PATH (install Python 3: apt-get install -y \
                         python3 python3-venv)"
                .to_owned(),
        ),
        Some(11) => Err(format!(
            "`python3 -m venv {}` failed (on Debian and Ubuntu: apt-get install -y \
             python3-venv): {}",
            venv.display(),
            output()
        )),
        Some(12) => Err(format!(
            "`pip install {AIOSMTPD}` into {} failed (PyPI unreachable? set PIP_INDEX_URL for \
             a mirror): {}",
            venv.display(),
            output()
        )),
        _ => Err(format!(
            "setting up {} failed ({}): {}",
            venv.display(),
            out.status,
            output()
        )),
    }
}

impl SmtpServer {
    async fn start(flags: &[&str]) -> SmtpServer {
        let port = closed_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_server.py");
        let mut child = Command::new(smtp_python())
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

/// A server that answers the greeting with a multi-line reply that never ends. The probe must
/// stop at its reply cap and call it not SMTP, not keep reading (and buffering) until its
/// deadline.
#[tokio::test]
async fn an_endless_greeting_is_cut_at_the_reply_cap() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let line = format!("220-{}\r\n", "x".repeat(100));
        let mut written = 0usize;
        // Until the probe hangs up (or far past any cap, so a probe without one is seen).
        while written < 64 << 20 && socket.write_all(line.as_bytes()).await.is_ok() {
            written += line.len();
        }
        written
    });
    let value = value(
        "smtp",
        &[
            ("host", "127.0.0.1"),
            ("port", &port.to_string()),
            ("username", "alice"),
            ("password", MARKER),
        ],
    );
    // A deadline long enough that only a probe without a cap would reach it.
    let result = prober(Duration::from_secs(60))
        .validate("smtp", &value)
        .await;
    expect(&result, ValidationOutcome::ProviderError, &[MARKER]);
    assert!(
        result.message.contains("does not speak SMTP"),
        "{}",
        result.message
    );
    let written = server.await.unwrap();
    assert!(
        written < 64 << 20,
        "the server wrote {written} bytes without the probe hanging up"
    );
}
