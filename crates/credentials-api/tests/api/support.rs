//! The in-process harness: [`TestApi`] serves the whole API with [`credentials_api::start`] on
//! `127.0.0.1:0`, on a database of the test's own (cloned from a template migrated once per
//! test binary), against the real kms binary with its own keyring and socket.
//!
//! ```ignore
//! let stack = TestApi::start().await;
//! let token = stack.token(&["ws"], ALL);
//! let created = stack.create(&token, create("k", "openai", secret("sk-..."))).await;
//! let got = stack.access_as(&token).access_credential(by_id(&created.id)).await?;
//! ```
//!
//! The server's logs are captured per test (JSON lines, as the binary writes them):
//! [`TestApi::logs`]. When the stack is dropped, an ERROR line in the server's or the kms's
//! log fails the test unless [`Options::tolerate_error`] expected it.
//!
//! Log capture sets the test thread's default subscriber, so tests run on the default
//! current-thread runtime (`#[tokio::test]`): everything the server spawns runs on that
//! thread. [`TestApi::start`] refuses a multi-thread runtime rather than capture nothing.

use credentials_api::{Running, ServeConfig};
use credentials_proto::credentials::v1 as pb;
use pb::{
    access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
    credentials_service_client::CredentialsServiceClient,
};
use std::{
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use testkit::stack::{KmsProcess, wait_until};
use testkit::{ChaosProxy, TestDb};
use tonic::{
    Code, Request, Status,
    metadata::AsciiMetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub use testkit::stack::{
    ALL, authed, by_id, by_id_in, create, default_for, fields, secret, token_with,
};

/// A client whose every request carries one token (a request's own `authorization` wins).
pub type Authed = InterceptedService<Channel, Bearer>;

/// How [`TestApi`] starts; [`TestApi::options`] begins one.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Options {
    args: Vec<String>,
    kms_args: Vec<String>,
    tolerated: Vec<String>,
    postgres_proxy: bool,
}

impl Options {
    /// Extra `credentials-api serve` flags (after the harness's own, so they win).
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Extra `kms serve` flags.
    pub fn kms_args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.kms_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Connects the server to its database through a [`ChaosProxy`] ([`TestApi::postgres`]),
    /// so the test can cut, stall and restore Postgres under it.
    pub fn postgres_through_proxy(mut self) -> Self {
        self.postgres_proxy = true;
        self
    }

    /// Expects ERROR log lines containing `needle` (in the server's or the kms's log).
    pub fn tolerate_error(mut self, needle: &str) -> Self {
        self.tolerated.push(needle.to_owned());
        self
    }

    /// Starts the stack.
    pub async fn start(self) -> TestApi {
        TestApi::start_with_options(self).await
    }
}

/// credentials-api served in-process, its own database and its own kms process.
///
/// Fields drop in order: the server first, then the kms, the database and the directory.
pub struct TestApi {
    running: Option<Running>,
    /// The proxy between the server and Postgres, with [`Options::postgres_through_proxy`].
    pub postgres: Option<ChaosProxy>,
    addr: SocketAddr,
    channel: Channel,
    logs: Logs,
    /// Where this stack's lines begin in the thread's captured log.
    logs_from: usize,
    /// The kms (its own: rotating or disabling keys affects no other test).
    pub kms: KmsProcess,
    /// The test's own database, migrated.
    pub db: TestDb,
    dir: tempfile::TempDir,
    options: Options,
}

impl TestApi {
    /// Starts everything with the harness's flags only.
    pub async fn start() -> Self {
        Self::start_with_options(Options::default()).await
    }

    /// Starts everything with extra `credentials-api serve` flags.
    pub async fn start_with(args: &[&str]) -> Self {
        Self::options().args(args.iter().copied()).start().await
    }

    /// Options to start with: `TestApi::options().args([..]).start().await`.
    pub fn options() -> Options {
        Options::default()
    }

    async fn start_with_options(options: Options) -> Self {
        assert_eq!(
            tokio::runtime::Handle::current().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread,
            "TestApi captures the server's logs on the test's thread: use #[tokio::test]"
        );
        let logs = Logs::of_this_thread();
        let logs_from = logs.len();
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, kms) = tokio::join!(migrated_db(), async {
            let keyring = KmsProcess::create_keyring(dir.path());
            KmsProcess::start(dir.path(), &keyring, &as_strs(&options.kms_args)).await
        });
        for needle in &options.tolerated {
            kms.expect_error(needle);
        }
        let secret = testkit::stack::write_jwt_secret(dir.path());
        let postgres = match options.postgres_proxy {
            true => Some(
                ChaosProxy::for_postgres(&db.url())
                    .await
                    .expect("start the Postgres proxy"),
            ),
            false => None,
        };
        let database_url = postgres
            .as_ref()
            .map_or_else(|| db.url(), |proxy| proxy.postgres_url(&db.url()));
        let running =
            credentials_api::start(serve_config(&database_url, &kms, &secret, &options.args))
                .await
                .unwrap_or_else(|e| panic!("credentials-api did not start: {e}"));
        let addr = running.local_addr();
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_lazy();
        let stack = Self {
            running: Some(running),
            postgres,
            addr,
            channel,
            logs,
            logs_from,
            kms,
            db,
            dir,
            options,
        };
        stack.wait_until_serving().await;
        assert!(
            stack.logs().contains("\"message\":\"listening\""),
            "the server's logs are not captured:\n{}",
            stack.logs()
        );
        stack
    }

    async fn wait_until_serving(&self) {
        let health = self.health();
        let serving = wait_until(Duration::from_secs(10), || {
            let mut health = health.clone();
            async move {
                health
                    .check(HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving)
            }
        })
        .await;
        assert!(serving, "credentials-api not ready; log:\n{}", self.logs());
    }

    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A real HTTP/1.1 client of the HTTP/JSON port.
    pub fn http(&self) -> Http {
        let addr = self
            .running
            .as_ref()
            .and_then(Running::http_addr)
            .expect("the harness serves HTTP");
        Http {
            base: format!("http://{addr}"),
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
        }
    }

    /// A token for `workspaces` with `permissions`, valid for an hour.
    pub fn token(&self, workspaces: &[&str], permissions: &[&str]) -> String {
        testkit::stack::token(workspaces, permissions)
    }

    /// A management client; give each request a token with [`authed`].
    pub fn management(&self) -> CredentialsServiceClient<Channel> {
        CredentialsServiceClient::new(self.channel.clone())
    }

    /// An access client; give each request a token with [`authed`].
    pub fn access(&self) -> AccessServiceClient<Channel> {
        AccessServiceClient::new(self.channel.clone())
    }

    /// An admin client; give each request a token with [`authed`].
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// A health client (health needs no token).
    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// A management client that sends `token` with every request.
    pub fn credentials(&self, token: &str) -> CredentialsServiceClient<Authed> {
        CredentialsServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// An access client that sends `token` with every request.
    pub fn access_as(&self, token: &str) -> AccessServiceClient<Authed> {
        AccessServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// An admin client that sends `token` with every request.
    pub fn admin_as(&self, token: &str) -> AdminServiceClient<Authed> {
        AdminServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// Creates a credential with `token` and returns it; panics on refusal.
    pub async fn create(
        &self,
        token: &str,
        request: pb::CreateCredentialRequest,
    ) -> pb::Credential {
        let name = request.name.clone();
        self.credentials(token)
            .create_credential(request)
            .await
            .unwrap_or_else(|e| panic!("create {name:?}: {e:?}"))
            .into_inner()
            .credential
            .expect("a created credential")
    }

    /// The number of rows in `table` of the test's database.
    pub async fn count(&self, table: &str) -> i64 {
        testkit::stack::count(&self.db, table).await
    }

    /// Everything the server has logged since it started (JSON lines).
    pub fn logs(&self) -> String {
        self.logs.since(self.logs_from)
    }

    /// The server's log lines at ERROR level.
    pub fn error_lines(&self) -> Vec<String> {
        error_lines(&self.logs())
    }

    /// Changes the keyring with `kms keyring <args>`, has the kms reload it, and waits until
    /// the API has seen the new load (which empties its data-key cache: a disabled version is
    /// then refused on the next read, not only once a cached key expires).
    pub async fn keyring_and_reload(&self, args: &[&str]) {
        let seen = || self.logs().matches(KEYRING_LOAD_SEEN).count();
        let before = seen();
        self.kms.keyring_and_reload(args).await;
        let noticed = wait_until(Duration::from_secs(10), || {
            std::future::ready(seen() > before)
        })
        .await;
        assert!(
            noticed,
            "the API did not notice the reload; log:\n{}",
            self.logs()
        );
    }

    /// Starts the kms again on the same keyring and socket.
    pub async fn restart_kms(&mut self) {
        let keyring = self.kms.keyring.clone();
        self.kms =
            KmsProcess::start(self.dir.path(), &keyring, &as_strs(&self.options.kms_args)).await;
        for needle in &self.options.tolerated {
            self.kms.expect_error(needle);
        }
    }

    /// Shuts the server down as SIGTERM would: NOT_SERVING, drain, close.
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    /// The server's unexpected ERROR lines and the kms's (which its own handle also checks
    /// when dropped: this reports both in one failure).
    fn unexpected_errors(&mut self) -> Vec<String> {
        let tolerated = |line: &String| self.options.tolerated.iter().any(|t| line.contains(t));
        let mut lines: Vec<String> = self
            .error_lines()
            .into_iter()
            .map(|l| format!("api: {l}"))
            .filter(|l| !tolerated(l))
            .collect();
        lines.extend(self.kms.finish());
        lines
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        // Dropping `Running` ends serving; the runtime's end stops its background tasks.
        drop(self.running.take());
        if !std::thread::panicking() {
            let unexpected = self.unexpected_errors();
            assert!(
                unexpected.is_empty(),
                "unexpected ERROR log lines:\n{}",
                unexpected.join("\n")
            );
        }
    }
}

/// Sends one bearer token with every request that has none of its own.
#[derive(Clone)]
pub struct Bearer(AsciiMetadataValue);

impl Bearer {
    fn new(token: &str) -> Self {
        Self(format!("Bearer {token}").parse().expect("ascii token"))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if !request.metadata().contains_key("authorization") {
            request
                .metadata_mut()
                .insert("authorization", self.0.clone());
        }
        Ok(request)
    }
}

/// Everything a client can observe of an error answer.
pub fn wire(status: &Status) -> (Code, String, Vec<u8>) {
    (
        status.code(),
        status.message().to_owned(),
        status.details().to_vec(),
    )
}

/// The field of the first violation in an INVALID_ARGUMENT's details.
pub fn field_of(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

/// A random number, for markers no other test uses.
pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// What the API logs when it sees the kms on a new keyring load.
pub const KEYRING_LOAD_SEEN: &str = "the kms loaded its keyring anew";

/// The configuration `credentials-api serve` would get from these flags.
fn serve_config(
    database_url: &str,
    kms: &KmsProcess,
    secret: &std::path::Path,
    extra: &[String],
) -> ServeConfig {
    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        config: ServeConfig,
    }
    let harness = [
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--http-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--database-url".to_owned(),
        database_url.to_owned(),
        "--kms-endpoint".to_owned(),
        format!("unix://{}", kms.socket.display()),
        "--kms-timeout".to_owned(),
        "1s".to_owned(),
        "--jwt-hs256-secret-file".to_owned(),
        secret.display().to_string(),
        "--db-wait-timeout".to_owned(),
        "2s".to_owned(),
        "--shutdown-grace".to_owned(),
        "10s".to_owned(),
    ];
    let args = std::iter::once("serve".to_owned())
        .chain(harness)
        .chain(extra.iter().cloned());
    <Serve as clap::Parser>::try_parse_from(args)
        .unwrap_or_else(|e| panic!("serve flags {extra:?}: {e}"))
        .config
}

/// A database of the test's own with the migrations applied (to a template, once per binary).
async fn migrated_db() -> TestDb {
    TestDb::create("credentials-api", |url| async move {
        let store = credentials_store::Store::new(&credentials_store::StoreConfig {
            url: url.clone(),
            max_connections: 1,
            wait_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            ca_pem: None,
        })
        .expect("store configuration");
        store.migrate().await.expect("migrate the template");
        store.close();
        drop(store);
    })
    .await
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn error_lines(logs: &str) -> Vec<String> {
    logs.lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .map(str::to_owned)
        .collect()
}

/// The log lines of everything that ran on one test thread, formatted as the binary does.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static THREAD_LOGS: Logs = Logs::install();
}

impl Logs {
    fn of_this_thread() -> Self {
        THREAD_LOGS.with(Clone::clone)
    }

    /// Makes a JSON subscriber writing here the thread's default, for the thread's lifetime.
    fn install() -> Self {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        // The guard would restore the previous default when dropped; this thread's tests
        // want capture until the thread ends.
        std::mem::forget(tracing::subscriber::set_default(subscriber));
        logs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn since(&self, from: usize) -> String {
        String::from_utf8_lossy(&self.lock()[from..]).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `/metrics` text of an admin port (the kms's or the API's).
pub async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin port");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

/// The sum of the samples of `family` whose labels include every one of `labels`.
pub fn metric_sum(text: &str, family: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Rewrites a live openai row as the build that wrote `format` would have: a data key from
/// the kms for that format's context, the value `api_key` sealed in that format, at
/// `generation` (0 for formats 1 and 2, from 1 after).
pub async fn rewrite_in_format(
    stack: &TestApi,
    workspace: &str,
    id: &str,
    format: credentials_core::payload::PayloadFormat,
    generation: i64,
    api_key: &str,
) {
    use credentials_core::payload::{self, RowBinding};
    let id = uuid::Uuid::parse_str(id).unwrap();
    let row = RowBinding {
        workspace_id: workspace,
        credential_id: id,
        type_id: "openai",
        value_generation: generation,
    };
    let ctx = payload::stored_context(&row, format.as_i16()).unwrap();
    let key = stack
        .kms
        .client()
        .generate_data_key(None, &ctx)
        .await
        .unwrap();
    let json = format!(r#"{{"fields":{{"api_key":"{api_key}"}}}}"#);
    let (ciphertext, nonce) =
        payload::seal_in(format, &key.plaintext, &ctx, json.as_bytes()).unwrap();
    let version = i32::try_from(key.key_version).unwrap();
    let changed = stack
        .db
        .client()
        .await
        .execute(
            "UPDATE credentials SET ciphertext = $2, nonce = $3, wrapped_key = $4, \
             master_key_id = $5, master_key_version = $6, payload_format = $7, \
             value_generation = $8 WHERE id = $1",
            &[
                &id,
                &ciphertext,
                &nonce,
                &key.wrapped,
                &key.key_id,
                &version,
                &format.as_i16(),
                &generation,
            ],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
}

/// Starts a re-wrap sweep as `token` and waits for it to finish.
pub async fn sweep_now(stack: &TestApi, token: &str) -> pb::RewrapRun {
    stack
        .admin()
        .start_rewrap(authed(pb::StartRewrapRequest { dry_run: false }, token))
        .await
        .unwrap();
    testkit::stack::wait_for_sweep(&mut stack.admin(), token, || stack.logs()).await
}

/// An HTTP/1.1 client of the API's HTTP/JSON port (hyper's, as any HTTP client would speak).
#[derive(Clone)]
pub struct Http {
    base: String,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
}

/// An HTTP answer: status, headers, and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: tonic::codegen::http::HeaderMap,
    /// The body, parsed.
    pub json: serde_json::Value,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// The google.rpc.Status's field violations, as `field` values.
    pub fn violations(&self) -> Vec<String> {
        self.json["details"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|d| d["fieldViolations"].as_array().cloned().unwrap_or_default())
            .map(|v| v["field"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Http {
    /// Sends `method path` with `token` (when given), `body` as JSON (when given) and
    /// `headers`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        use http_body_util::BodyExt as _;
        let mut request = tonic::codegen::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body =
            http_body_util::Full::new(bytes::Bytes::from(body.unwrap_or_default().to_owned()));
        let response = self
            .client
            .request(request.body(body).unwrap())
            .await
            .expect("the HTTP port answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
            text,
        }
    }

    /// `GET path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.send("GET", path, Some(token), None, &[]).await
    }

    /// `method path` with `token` and a JSON `body`.
    pub async fn json(&self, method: &str, path: &str, token: &str, body: &str) -> Answer {
        self.send(method, path, Some(token), Some(body), &[]).await
    }
}
