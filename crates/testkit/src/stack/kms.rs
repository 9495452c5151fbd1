//! `kms serve` as a child process with its own directory, keyring, Unix socket and log file.

use super::binaries::{bin, kms_keyring, logged_address, send_signal, wait_until};
use super::errors::{ErrorCheck, error_lines, fail_on_unexpected_errors};
use kms::{ClientConfig, KmsClient, KmsEndpoint};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

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
    pub fn finish(&mut self) -> Vec<String> {
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

    /// Runs `kms keyring <args> --file <this kms's keyring>`, then SIGHUP, and waits for the
    /// kms to log the reload.
    pub async fn keyring_and_reload(&self, args: &[&str]) {
        let before = self.logs().matches("keyring reloaded").count();
        let file = self.keyring.to_str().expect("utf-8 path").to_owned();
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--file", &file]);
        let out = kms_keyring(&full);
        assert!(
            out.status.success(),
            "kms keyring {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        send_signal(self.pid(), "HUP");
        let reloaded = wait_until(Duration::from_secs(10), || {
            std::future::ready(self.logs().matches("keyring reloaded").count() > before)
        })
        .await;
        assert!(reloaded, "kms did not reload; log:\n{}", self.logs());
    }

    /// The admin (metrics) address, from the "admin listening" log line (`--admin-addr`).
    pub async fn admin_addr(&self) -> String {
        let line = self.wait_for_log("\"message\":\"admin listening\"").await;
        logged_address(&line).expect("address in the admin log line")
    }
}

impl Drop for KmsProcess {
    /// Kills the process, then fails the test on unexpected ERROR lines.
    fn drop(&mut self) {
        let lines = self.finish();
        fail_on_unexpected_errors(&lines);
    }
}
