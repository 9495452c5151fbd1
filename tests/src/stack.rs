//! The whole stack for an end-to-end test: a database of its own, the real kms on a socket and
//! the real credentials-api on a TCP port, plus tokens and clients.

use crate::{KmsProcess, bin, send_signal, wait_until};
use auth::Claims;
use credentials_proto::credentials::v1::{
    access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
    credentials_service_client::CredentialsServiceClient,
};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};
use testkit::TestDb;
use testkit::stack::{ErrorCheck, fail_on_unexpected_errors};
use tonic::transport::Channel;

/// A running `credentials-api serve`.
pub struct ApiProcess {
    child: Option<Child>,
    /// stderr (JSON logs).
    pub log: PathBuf,
    /// Where it listens.
    pub addr: String,
    errors: ErrorCheck,
}

impl ApiProcess {
    /// Starts the API against `database_url` and the kms socket, and waits until it is ready.
    /// It listens on `127.0.0.1:0` unless `extra_args` name a `--listen`.
    pub async fn start(
        dir: &Path,
        database_url: &str,
        kms_socket: &Path,
        secret: &Path,
        extra_args: &[&str],
    ) -> Self {
        Self::start_with_env(dir, database_url, kms_socket, secret, extra_args, &[]).await
    }

    /// [`ApiProcess::start`] with extra environment variables (e.g. `OTEL_*`).
    pub async fn start_with_env(
        dir: &Path,
        database_url: &str,
        kms_socket: &Path,
        secret: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let log = (1..)
            .map(|n| dir.join(format!("api-{n}.log")))
            .find(|p| !p.exists())
            .expect("a free log name");
        // 127.0.0.1:0 unless the test listens elsewhere (clap refuses a repeated --listen).
        let listen: &[&str] = match extra_args.contains(&"--listen") {
            true => &[],
            false => &["--listen", "127.0.0.1:0"],
        };
        let http_listen: &[&str] = match extra_args.contains(&"--http-listen") {
            true => &[],
            false => &["--http-listen", "127.0.0.1:0"],
        };
        let child = Command::new(bin("credentials-api"))
            .arg("serve")
            .args(listen)
            .args(http_listen)
            .args(["--kms-timeout", "1s"])
            .arg("--kms-endpoint")
            .arg(format!("unix://{}", kms_socket.display()))
            .arg("--jwt-hs256-secret-file")
            .arg(secret)
            .args(["--db-wait-timeout", "2s", "--shutdown-grace", "10s"])
            .args(extra_args)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn credentials-api");
        let mut api = Self {
            child: Some(child),
            log,
            addr: String::new(),
            errors: ErrorCheck::default(),
        };
        let mut addr = None;
        let mut ready = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && !ready {
            let logs = api.logs();
            for line in logs.lines() {
                if line.contains("\"message\":\"listening\"") {
                    let entry: serde_json::Value = serde_json::from_str(line).expect("json log");
                    addr = entry["address"].as_str().map(str::to_owned);
                }
                ready |= line.contains("\"message\":\"ready");
            }
            if let Some(Ok(Some(status))) = api.child.as_mut().map(Child::try_wait) {
                panic!("credentials-api exited with {status}; log:\n{logs}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ready, "credentials-api not ready; log:\n{}", api.logs());
        api.addr = addr.expect("listening address logged");
        api
    }

    /// Everything logged so far.
    pub fn logs(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log lines at ERROR level.
    pub fn error_lines(&self) -> Vec<String> {
        testkit::stack::error_lines(&self.logs())
    }

    /// Allows ERROR log lines containing `message`: the test provokes them on purpose. Any
    /// other ERROR line fails the test when this handle is dropped.
    pub fn expect_error(&self, message: &str) {
        self.errors.expect(message);
    }

    /// Kills the process if it still runs and returns its unexpected ERROR lines (once).
    pub(crate) fn finish(&mut self) -> Vec<String> {
        self.kill();
        self.errors.take("credentials-api", &self.log)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Kills the process outright (SIGKILL): a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `timeout` for the process to exit by itself (e.g. after a signal), polling
    /// asynchronously so the test's clients keep running meanwhile.
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

    /// The HTTP/JSON address, from the "HTTP/JSON listening" log line.
    pub async fn http_addr(&self) -> String {
        let mut found = None;
        wait_until(Duration::from_secs(10), || {
            found = self
                .logs()
                .lines()
                .find(|l| l.contains("\"message\":\"HTTP/JSON listening\""))
                .and_then(crate::logged_address);
            std::future::ready(found.is_some())
        })
        .await;
        found.unwrap_or_else(|| panic!("no HTTP address logged; log:\n{}", self.logs()))
    }

    /// The admin (metrics) address, from the "admin listening" log line (`--admin-addr`).
    pub async fn admin_addr(&self) -> String {
        let mut found = None;
        wait_until(Duration::from_secs(10), || {
            found = self
                .logs()
                .lines()
                .find(|l| l.contains("\"message\":\"admin listening\""))
                .and_then(crate::logged_address);
            std::future::ready(found.is_some())
        })
        .await;
        found.unwrap_or_else(|| panic!("no admin address logged; log:\n{}", self.logs()))
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn stop(&mut self) -> ExitStatus {
        send_signal(self.pid(), "TERM");
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("credentials-api did not exit after SIGTERM");
    }
}

impl Drop for ApiProcess {
    /// Kills the process, then fails the test on unexpected ERROR lines.
    fn drop(&mut self) {
        let lines = self.finish();
        fail_on_unexpected_errors(&lines);
    }
}

/// How [`Stack::start_with_options`] starts the processes.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Extra arguments of `credentials-api serve`.
    pub api_args: Vec<String>,
    /// Extra arguments of `kms serve`.
    pub kms_args: Vec<String>,
    /// Extra environment variables of both processes.
    pub env: Vec<(String, String)>,
}

impl StackOptions {
    fn api_args(&self) -> Vec<&str> {
        self.api_args.iter().map(String::as_str).collect()
    }

    fn kms_args(&self) -> Vec<&str> {
        self.kms_args.iter().map(String::as_str).collect()
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Postgres + kms + credentials-api for one test.
///
/// Dropping it stops the processes first (the API, then the kms), fails the test on their
/// unexpected ERROR lines, and only then drops the database and deletes the directory, so no
/// process outlives what it uses. Fields drop in declaration order; [`Drop`] does the rest.
pub struct Stack {
    /// The API.
    pub api: ApiProcess,
    /// The kms.
    pub kms: KmsProcess,
    /// The test's own database.
    pub db: TestDb,
    /// The test's directory (keyring, socket, logs, token secret).
    pub dir: tempfile::TempDir,
    /// The token secret file.
    pub secret: PathBuf,
    options: StackOptions,
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Both processes are checked before either panics, so one report names every line.
        let mut lines = self.api.finish();
        lines.extend(self.kms.finish());
        fail_on_unexpected_errors(&lines);
    }
}

impl Stack {
    /// Starts everything on a fresh, empty database (the API applies the migrations).
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts everything, passing `api_args` to `credentials-api serve`.
    pub async fn start_with(api_args: &[&str]) -> Self {
        Self::start_with_options(StackOptions {
            api_args: api_args.iter().map(|a| (*a).to_owned()).collect(),
            ..StackOptions::default()
        })
        .await
    }

    /// Starts everything with extra arguments and environment for the processes.
    pub async fn start_with_options(options: StackOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = TestDb::empty().await;
        let keyring = KmsProcess::create_keyring(dir.path());
        let kms =
            KmsProcess::start_with_env(dir.path(), &keyring, &options.kms_args(), &options.env())
                .await;
        let secret = testkit::stack::write_jwt_secret(dir.path());
        let api = ApiProcess::start_with_env(
            dir.path(),
            &db.url(),
            &kms.socket,
            &secret,
            &options.api_args(),
            &options.env(),
        )
        .await;
        Self {
            api,
            kms,
            db,
            dir,
            secret,
            options,
        }
    }

    /// Starts the API again with the same database, kms and arguments (after a stop or a kill).
    pub async fn restart_api(&mut self) {
        self.restart_api_with(&[]).await;
    }

    /// [`Stack::restart_api`] with `extra_args` after the stack's own (e.g. `--listen` on the
    /// address it had, to come back on the same port).
    pub async fn restart_api_with(&mut self, extra_args: &[&str]) {
        self.api.kill();
        let mut args = self.options.api_args();
        args.extend_from_slice(extra_args);
        self.api = ApiProcess::start_with_env(
            self.dir.path(),
            &self.db.url(),
            &self.kms.socket,
            &self.secret,
            &args,
            &self.options.env(),
        )
        .await;
    }

    /// Runs `kms keyring <args> --file <this stack's keyring>`, then SIGHUP, and waits for the
    /// kms to log the reload.
    pub async fn keyring_and_reload(&self, args: &[&str]) {
        self.kms.keyring_and_reload(args).await;
    }

    /// A token for `workspaces` with `permissions`, valid for an hour.
    pub fn token(&self, workspaces: &[&str], permissions: &[&str]) -> String {
        testkit::stack::token(workspaces, permissions)
    }

    /// A token with exactly these claims.
    pub fn token_with(&self, claims: Claims) -> String {
        testkit::stack::token_with(&claims)
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.api.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect to credentials-api")
    }

    /// A management client.
    pub async fn management(&self) -> CredentialsServiceClient<Channel> {
        CredentialsServiceClient::new(self.channel().await)
    }

    /// An admin client.
    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel().await)
    }

    /// An access client.
    pub async fn access(&self) -> AccessServiceClient<Channel> {
        AccessServiceClient::new(self.channel().await)
    }

    /// Restarts the kms on the same keyring and socket.
    pub async fn restart_kms(&mut self) {
        let keyring = self.kms.keyring.clone();
        self.kms = KmsProcess::start_with_env(
            self.dir.path(),
            &keyring,
            &self.options.kms_args(),
            &self.options.env(),
        )
        .await;
    }

    /// Waits until a log line of the API contains `needle`.
    pub async fn wait_for_api_log(&self, needle: &str) -> bool {
        wait_until(Duration::from_secs(10), || {
            std::future::ready(self.api.logs().contains(needle))
        })
        .await
    }
}
