#![allow(clippy::unwrap_used)]
//! End-to-end tests of credentials-api's TLS: who it serves and who it refuses, mutual TLS, the
//! certificate reloaded on SIGHUP without dropping connections, and the refusal to serve
//! plaintext off loopback; the HTTP/JSON port under the same certificate (h2 and HTTP/1.1 by
//! ALPN); and the kms's TCP certificate reloaded on SIGHUP (the same code).

use credentials_proto::credentials::v1 as pb;
use pb::credentials_service_client::CredentialsServiceClient;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};
use testkit::stack::ALL;
use tests::{Stack, authed, bin, logged_address, send_signal};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A certificate authority of the test's own.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `name` and its key, both PEM.
    fn issue(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.into()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The server's certificate and key files, and the flags that serve them.
struct ServerFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl ServerFiles {
    fn write(dir: &Path, ca: &Ca) -> Self {
        let files = Self {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        files.replace(ca);
        files
    }

    /// Overwrites both files with a fresh certificate from `ca`.
    fn replace(&self, ca: &Ca) {
        let (cert, key) = ca.issue("localhost");
        fs::write(&self.cert, cert).unwrap();
        fs::write(&self.key, key).unwrap();
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

/// A TLS channel to `addr` trusting `ca`, presenting `identity` when given.
async fn connect(
    addr: &str,
    ca: &Ca,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
}

/// Whether an authenticated ListCredentials succeeds on `channel`.
async fn lists(channel: &Channel, token: &str) -> Result<(), tonic::Status> {
    CredentialsServiceClient::new(channel.clone())
        .list_credentials(authed(pb::ListCredentialsRequest::default(), token))
        .await
        .map(drop)
}

/// Whether a client trusting `ca` (with `identity`) is refused: at the handshake, or at the
/// first call (under TLS 1.3 the server checks a client certificate after the client
/// considers the handshake done).
async fn refused(addr: &str, ca: &Ca, identity: Option<&(String, String)>, token: &str) -> bool {
    match connect(addr, ca, identity).await {
        Err(_) => true,
        Ok(channel) => lists(&channel, token).await.is_err(),
    }
}

/// The "listening" line of the API's log, parsed.
fn listening(stack: &Stack) -> serde_json::Value {
    let logs = stack.api.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("\"message\":\"listening\""))
        .unwrap();
    serde_json::from_str(line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_its_ca_and_refuses_the_rest() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let files = ServerFiles::write(pki.path(), &ca);
    let mut args = files.args();
    args.extend(["--health-addr".into(), "127.0.0.1:0".into()]);
    let stack = Stack::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let entry = listening(&stack);
    assert_eq!(
        (&entry["tls"], &entry["mutual_tls"]),
        (&true.into(), &false.into())
    );
    let token = stack.token(&["tls-ws"], ALL);
    let addr = &stack.api.addr;

    // A client that trusts the CA is served.
    let channel = connect(addr, &ca, None).await.unwrap();
    lists(&channel, &token).await.unwrap();

    // One that trusts another CA is refused, and so is a plaintext (h2c) client.
    assert!(refused(addr, &Ca::new(), None, &token).await);
    let plaintext = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    assert!(lists(&plaintext, &token).await.is_err());

    // The kubelet's probe port answers health in plaintext.
    let logs = stack.api.logs();
    let health_addr = logs
        .lines()
        .find(|l| l.contains("\"message\":\"health listening\""))
        .and_then(logged_address)
        .unwrap();
    let probe = Channel::from_shared(format!("http://{health_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(probe)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_clients_without_a_certificate_of_its_ca() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let clients = Ca::new();
    let files = ServerFiles::write(pki.path(), &ca);
    let client_ca = pki.path().join("clients.pem");
    fs::write(&client_ca, clients.pem()).unwrap();
    let mut args = files.args();
    args.extend(["--tls-client-ca".into(), client_ca.display().to_string()]);
    let stack = Stack::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(listening(&stack)["mutual_tls"], true);
    let token = stack.token(&["mtls-ws"], ALL);
    let addr = &stack.api.addr;

    let good = clients.issue("agent-platform");
    let channel = connect(addr, &ca, Some(&good)).await.unwrap();
    lists(&channel, &token).await.unwrap();

    // No certificate at all, or one the client CA did not sign: refused.
    assert!(refused(addr, &ca, None, &token).await);
    let stranger = Ca::new().issue("agent-platform");
    assert!(refused(addr, &ca, Some(&stranger), &token).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let pki = tempfile::tempdir().unwrap();
    let old_ca = Ca::new();
    let files = ServerFiles::write(pki.path(), &old_ca);
    let stack =
        Stack::start_with(&files.args().iter().map(String::as_str).collect::<Vec<_>>()).await;
    let token = stack.token(&["reload-ws"], ALL);
    let addr = &stack.api.addr;
    let before = connect(addr, &old_ca, None).await.unwrap();
    lists(&before, &token).await.unwrap();

    // A certificate from another CA, then SIGHUP.
    let new_ca = Ca::new();
    files.replace(&new_ca);
    send_signal(stack.api.pid(), "HUP");
    assert!(stack.wait_for_api_log("TLS certificate reloaded").await);

    // The connection made before still works: it was not dropped (a new handshake would now
    // present the new certificate, which this client does not trust).
    lists(&before, &token).await.unwrap();
    // New handshakes get the new certificate.
    let after = connect(addr, &new_ca, None).await.unwrap();
    lists(&after, &token).await.unwrap();
    assert!(refused(addr, &old_ca, None, &token).await);

    // An unreadable key on SIGHUP keeps the current certificate, and says so at ERROR.
    stack.api.expect_error("TLS reload failed");
    fs::write(&files.key, "not a key").unwrap();
    send_signal(stack.api.pid(), "HUP");
    assert!(stack.wait_for_api_log("TLS reload failed").await);
    let still = connect(addr, &new_ca, None).await.unwrap();
    lists(&still, &token).await.unwrap();
    lists(&before, &token).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_off_loopback_needs_the_insecure_flag() {
    let dir = tempfile::tempdir().unwrap();
    let secret = testkit::stack::write_jwt_secret(dir.path());
    // Refused before anything is touched (no database or kms needed to see it).
    let output = Command::new(bin("credentials-api"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .arg("--jwt-hs256-secret-file")
        .arg(&secret)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a loopback address") && stderr.contains("--tls-cert"),
        "{stderr}"
    );

    // The development flag serves plaintext, with a warning.
    let stack = Stack::start_with(&["--listen", "0.0.0.0:0", "--insecure-plaintext"]).await;
    let logs = stack.api.logs();
    let warning = logs.lines().find(|l| l.contains("PLAINTEXT")).unwrap();
    assert!(warning.contains("\"level\":\"WARN\""), "{warning}");
    let port = stack.api.addr.rsplit(':').next().unwrap();
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = stack.token(&["plain-ws"], ALL);
    lists(&channel, &token).await.unwrap();

    // On loopback no flag is needed and nothing is warned (the harness listens there).
    let stack = Stack::start().await;
    assert!(!stack.api.logs().contains("PLAINTEXT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kms_reloads_its_tls_certificate_on_sighup() {
    use kms::{ClientConfig, EncryptionContext, KmsClient, KmsEndpoint};
    use tests::KmsProcess;

    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let old_ca = Ca::new();
    let clients = Ca::new();
    let files = ServerFiles::write(dir.path(), &old_ca);
    let client_ca = dir.path().join("clients.pem");
    fs::write(&client_ca, clients.pem()).unwrap();
    let mut args = vec!["--tcp".to_owned(), "127.0.0.1:0".to_owned()];
    args.extend(files.args());
    args.extend(["--tls-client-ca".into(), client_ca.display().to_string()]);
    let kms = KmsProcess::spawn(
        dir.path(),
        &keyring,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let line = kms.wait_for_log("\"message\":\"listening\"").await;
    let uri = format!("https://{}", logged_address(&line).unwrap());
    let (cert, key) = clients.issue("credentials-api");
    let client = |ca: &Ca| {
        let mut config = ClientConfig::new(KmsEndpoint::Tls {
            uri: uri.clone(),
            ca_pem: ca.pem().into_bytes(),
            cert_pem: cert.clone().into_bytes(),
            key_pem: key.clone().into_bytes().into(),
            server_name: Some("localhost".into()),
        });
        config.timeout = Duration::from_secs(3);
        KmsClient::new(config).unwrap()
    };
    let ctx = EncryptionContext::new().with("workspace_id", "ws-1");
    client(&old_ca).generate_data_key(None, &ctx).await.unwrap();

    let new_ca = Ca::new();
    files.replace(&new_ca);
    send_signal(kms.pid(), "HUP");
    kms.wait_for_log("TLS certificate reloaded").await;
    client(&new_ca).generate_data_key(None, &ctx).await.unwrap();
    assert!(client(&old_ca).generate_data_key(None, &ctx).await.is_err());
}

/// `GET path` over TLS to `addr`, trusting `ca` and offering `alpn`: the protocol the server
/// chose, the status and the body; `Err` when the handshake fails.
async fn https_get(
    addr: &str,
    ca: &Ca,
    alpn: &[&[u8]],
    path: &str,
    token: &str,
) -> Result<(Vec<u8>, u16, String), String> {
    use http_body_util::BodyExt as _;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let negotiated = tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
    let io = hyper_util::rt::TokioIo::new(tls);
    let request = hyper::Request::get(format!("https://localhost{path}"))
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = if negotiated == b"h2" {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender.send_request(request).await
    }
    .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((
        negotiated,
        status,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_port_serves_the_same_tls_over_h2_and_http_1_1() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let files = ServerFiles::write(pki.path(), &ca);
    let args = files.args();
    let stack = Stack::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let http_line = stack
        .api
        .logs()
        .lines()
        .find(|l| l.contains("\"message\":\"HTTP/JSON listening\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    assert_eq!(http_line["tls"], true);
    let addr = stack.api.http_addr().await;
    let token = stack.token(&["tls-ws"], ALL);
    for (offer, expected) in [
        (
            &[b"h2".as_slice(), b"http/1.1".as_slice()][..],
            b"h2".as_slice(),
        ),
        (&[b"http/1.1".as_slice()][..], b"http/1.1".as_slice()),
        (&[][..], b"".as_slice()),
    ] {
        let (negotiated, status, body) =
            https_get(&addr, &ca, offer, "/v1/credentialTypes", &token)
                .await
                .unwrap();
        assert_eq!(negotiated, expected);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"openai\""), "{body}");
    }
    // A client that trusts another CA is refused at the handshake; plaintext gets no answer.
    assert!(
        https_get(
            &addr,
            &Ca::new(),
            &[b"http/1.1"],
            "/v1/credentialTypes",
            &token
        )
        .await
        .is_err()
    );
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /v1/credentialTypes HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("openai"));
}
