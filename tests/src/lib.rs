//! Harness for end-to-end tests: finds the workspace's binaries (built by the test command before
//! the tests run), starts them with their own temporary directory and log file, waits until they
//! are ready, and stops them.
//!
//! ERROR means a human must look, so a process that logged an ERROR line fails its test: the
//! check runs when the process handle is dropped (a [`Stack`] checks both of its processes).
//! A test that provokes an ERROR names it first with `expect_error(message)` on the handle.

#![forbid(unsafe_code)]

mod stack;

pub use stack::{ApiProcess, Stack, StackOptions, authed};

use kms::{ClientConfig, KmsClient, KmsEndpoint};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// The ERROR lines of a process's JSON log that no `expect_error` call allowed.
#[derive(Debug, Default)]
pub(crate) struct ErrorCheck {
    /// Messages the test expects at ERROR level (substrings of the line).
    expected: Mutex<Vec<String>>,
    /// Set once the check ran, so it runs once per process.
    done: bool,
}

impl ErrorCheck {
    fn expect(&self, message: &str) {
        self.expected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.to_owned());
    }

    fn unexpected(&self, logs: &str) -> Vec<String> {
        let expected = self.expected.lock().unwrap_or_else(PoisonError::into_inner);
        error_lines(logs)
            .into_iter()
            .filter(|line| !expected.iter().any(|m| line.contains(m.as_str())))
            .collect()
    }

    /// The unexpected ERROR lines of `log`, prefixed with `what`, the first time it is called.
    pub(crate) fn take(&mut self, what: &str, log: &Path) -> Vec<String> {
        if std::mem::replace(&mut self.done, true) {
            return Vec::new();
        }
        let logs = fs::read_to_string(log).unwrap_or_default();
        self.unexpected(&logs)
            .into_iter()
            .map(|line| format!("{what} ({}): {line}", log.display()))
            .collect()
    }
}

/// Panics with `lines` unless they are empty or the thread is already panicking (a second
/// panic would abort the test binary and hide the first failure).
pub(crate) fn fail_on_unexpected_errors(lines: &[String]) {
    if lines.is_empty() || std::thread::panicking() {
        return;
    }
    panic!(
        "unexpected ERROR log lines (if the test provokes them, name each with \
         expect_error(message) on the process handle):\n{}",
        lines.join("\n")
    );
}

/// Lines of a JSON log at ERROR level.
fn error_lines(logs: &str) -> Vec<String> {
    logs.lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .map(str::to_owned)
        .collect()
}

/// Path of a workspace binary in the target directory this test was built into.
pub fn bin(name: &str) -> PathBuf {
    // The test executable lives in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Runs `kms keyring <args...>` and returns its output.
pub fn kms_keyring(args: &[&str]) -> Output {
    Command::new(bin("kms"))
        .arg("keyring")
        .args(args)
        .output()
        .expect("run kms keyring")
}

/// Sends a signal (`HUP`, `TERM`, ...) to a process with the system's `kill`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Polls `check` every 20 ms until it is true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A running `kms serve` process with its own temporary directory.
pub struct KmsProcess {
    child: Option<Child>,
    /// The process's directory: keyring, socket, log.
    pub dir: PathBuf,
    /// The keyring file.
    pub keyring: PathBuf,
    /// The Unix socket (when serving on one).
    pub socket: PathBuf,
    /// stderr of the process (JSON logs).
    pub log: PathBuf,
    errors: ErrorCheck,
}

impl KmsProcess {
    /// Creates a keyring in `dir` with `kms keyring create`.
    pub fn create_keyring(dir: &Path) -> PathBuf {
        let keyring = dir.join("keyring.json");
        let out = kms_keyring(&["create", "--file", keyring.to_str().expect("utf-8 path")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        keyring
    }

    /// Spawns `kms serve` with `args` (after `--keyring`) without waiting for readiness.
    pub fn spawn(dir: &Path, keyring: &Path, args: &[&str]) -> Self {
        Self::spawn_with_env(dir, keyring, args, &[])
    }

    /// [`KmsProcess::spawn`] with extra environment variables (e.g. `OTEL_*`).
    pub fn spawn_with_env(dir: &Path, keyring: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let socket = dir.join("kms.sock");
        // A restarted kms in the same directory gets a log file of its own.
        let log = (1..)
            .map(|n| dir.join(format!("kms-{n}.log")))
            .find(|p| !p.exists())
            .expect("a free log name");
        let child = Command::new(bin("kms"))
            .arg("serve")
            .arg("--keyring")
            .arg(keyring)
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn kms");
        Self {
            child: Some(child),
            dir: dir.to_owned(),
            keyring: keyring.to_owned(),
            socket,
            log,
            errors: ErrorCheck::default(),
        }
    }

    /// Spawns `kms serve` on a Unix socket in `dir` and waits until it reports SERVING.
    pub async fn start(dir: &Path, keyring: &Path, args: &[&str]) -> Self {
        Self::start_with_env(dir, keyring, args, &[]).await
    }

    /// [`KmsProcess::start`] with extra environment variables.
    pub async fn start_with_env(
        dir: &Path,
        keyring: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let kms = Self::spawn_with_env(dir, keyring, args, env);
        let client = kms.client();
        let ready = wait_until(Duration::from_secs(10), || {
            let client = client.clone();
            async move { matches!(client.is_serving().await, Ok(true)) }
        })
        .await;
        assert!(ready, "kms did not become ready; log:\n{}", kms.logs());
        kms
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// A client over the Unix socket with short deadlines.
    pub fn client(&self) -> KmsClient {
        let mut config = ClientConfig::new(KmsEndpoint::Unix(self.socket.clone()));
        config.timeout = Duration::from_secs(2);
        KmsClient::new(config).expect("client")
    }

    /// Everything the process has logged so far.
    pub fn logs(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log lines at ERROR level.
    pub fn error_lines(&self) -> Vec<String> {
        error_lines(&self.logs())
    }

    /// Allows ERROR log lines containing `message`: the test provokes them on purpose. Any
    /// other ERROR line fails the test when this handle is dropped.
    pub fn expect_error(&self, message: &str) {
        self.errors.expect(message);
    }

    /// Kills the process if it still runs and returns its unexpected ERROR lines (once).
    pub(crate) fn finish(&mut self) -> Vec<String> {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.errors.take("kms", &self.log)
    }

    /// Waits until a log line contains `needle`, returning the line.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        let mut found = None;
        wait_until(Duration::from_secs(10), || {
            found = self
                .logs()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_owned);
            std::future::ready(found.is_some())
        })
        .await;
        found.unwrap_or_else(|| panic!("no log line with {needle:?}; log:\n{}", self.logs()))
    }

    /// Waits for the process to exit by itself (for startup failures). Async, so clients on the
    /// test's runtime keep answering the server while it drains.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn stop(&mut self) -> ExitStatus {
        send_signal(self.pid(), "TERM");
        self.wait_exit(Duration::from_secs(15))
            .await
            .expect("kms exits after SIGTERM")
    }

    /// The admin (metrics) address, from the "admin listening" log line (`--admin-addr`).
    pub async fn admin_addr(&self) -> String {
        let line = self.wait_for_log("\"message\":\"admin listening\"").await;
        logged_address(&line).expect("address in the admin log line")
    }
}

/// The `address` field of a JSON log line.
pub fn logged_address(line: &str) -> Option<String> {
    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
    entry["address"].as_str().map(str::to_owned)
}

/// `GET path` over plain HTTP/1.1: the status code and the body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the admin port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_owned())
}

impl Drop for KmsProcess {
    /// Kills the process, then fails the test on unexpected ERROR lines.
    fn drop(&mut self) {
        let lines = self.finish();
        fail_on_unexpected_errors(&lines);
    }
}

#[cfg(test)]
mod error_check_tests {
    use super::*;

    const LOG: &str = concat!(
        r#"{"level":"INFO","fields":{"message":"listening"}}"#,
        "\n",
        r#"{"level":"ERROR","fields":{"message":"keyring reload failed; still serving"}}"#,
        "\n",
        r#"{"level":"ERROR","fields":{"message":"internal error"}}"#,
        "\n",
    );

    #[test]
    fn only_error_lines_no_expectation_names_are_reported_and_only_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("kms-1.log");
        fs::write(&log, LOG).expect("write log");
        let mut check = ErrorCheck::default();
        check.expect("keyring reload failed");
        let lines = check.take("kms", &log);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("kms ("), "{}", lines[0]);
        assert!(lines[0].contains("internal error"), "{}", lines[0]);
        assert!(check.take("kms", &log).is_empty());
    }

    #[test]
    #[should_panic(expected = "unexpected ERROR log lines")]
    fn unexpected_lines_fail_the_test() {
        fail_on_unexpected_errors(&["kms: an ERROR".to_owned()]);
    }

    #[test]
    fn nothing_is_raised_while_already_panicking() {
        struct FailsInDrop;
        impl Drop for FailsInDrop {
            fn drop(&mut self) {
                fail_on_unexpected_errors(&["kms: an ERROR".to_owned()]);
            }
        }
        let result = std::panic::catch_unwind(|| {
            let _guard = FailsInDrop;
            panic!("the test's own failure");
        });
        let payload = result.expect_err("the first panic propagates");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the test's own failure")
        );
    }
}
