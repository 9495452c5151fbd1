//! Harness for end-to-end tests: finds the workspace's binaries (built by the test command before
//! the tests run), starts them with their own temporary directory and log file, waits until they
//! are ready, and stops them.

#![forbid(unsafe_code)]

mod stack;

pub use stack::{ApiProcess, Stack, StackOptions, authed};

use kms::{ClientConfig, KmsClient, KmsEndpoint};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

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
        self.logs()
            .lines()
            .filter(|l| l.contains("\"level\":\"ERROR\""))
            .map(str::to_owned)
            .collect()
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
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
