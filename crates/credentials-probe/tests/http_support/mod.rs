//! A tiny recording HTTP/1.1 test server (plain or TLS) and helpers shared by the HTTP probe
//! tests. Handlers see each request and answer with a status, headers, body and optional delay.

#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use credentials_core::catalogue::lookup;
use credentials_core::{SecretValue, ValueInput};
use credentials_probe::{EgressPolicy, IpRange, ProbeConfig, ProviderEndpoints};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// A marker put into every secret: no message may contain it.
pub const MARKER: &str = "MARKER-9f3a7c";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.uri.split_once('?').map_or("", |(_, q)| q)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The decoded fields of a form body.
    pub fn form(&self) -> BTreeMap<String, String> {
        parse_form(&self.body_text())
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn xml(status: u16, body: impl Into<String>) -> Self {
        Self {
            headers: vec![("content-type".into(), "text/xml".into())],
            ..Self::new(status, body)
        }
    }

    pub fn redirect(status: u16, location: &str) -> Self {
        Self {
            headers: vec![("location".into(), location.into())],
            ..Self::new(status, "")
        }
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A running test server; it stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    tls: bool,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A plain HTTP server on 127.0.0.1.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0", None, handler).await
    }

    /// A server on `bind`, with TLS when an acceptor is given.
    pub async fn start_on(
        bind: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let is_tls = tls.is_some();
        let task = {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let seen = Arc::clone(&seen);
                    let handler = Arc::clone(&handler);
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let service =
                            service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                                let seen = Arc::clone(&seen);
                                let handler = Arc::clone(&handler);
                                async move {
                                    let (parts, body) = req.into_parts();
                                    let body = body
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    let request = Seen {
                                        method: parts.method.to_string(),
                                        uri: parts.uri.to_string(),
                                        headers: parts.headers,
                                        body: body.to_vec(),
                                    };
                                    seen.lock().unwrap().push(request.clone());
                                    let reply = handler(&request);
                                    if !reply.delay.is_zero() {
                                        tokio::time::sleep(reply.delay).await;
                                    }
                                    let mut response =
                                        hyper::Response::builder().status(reply.status);
                                    for (k, v) in &reply.headers {
                                        response = response.header(k, v);
                                    }
                                    Ok::<_, std::convert::Infallible>(
                                        response.body(Full::new(Bytes::from(reply.body))).unwrap(),
                                    )
                                }
                            });
                        let builder = hyper::server::conn::http1::Builder::new();
                        match tls {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = builder
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                }
                            }
                            None => {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    });
                }
            })
        };
        Self {
            addr,
            tls: is_tls,
            seen,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (or https, or the IPv6 form).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A self-signed certificate for `localhost`: the acceptor and a root store trusting it.
pub fn localhost_tls() -> (tokio_rustls::TlsAcceptor, rustls::RootCertStore) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = certified.cert.der().clone();
    let key_der =
        rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), roots)
}

/// Decodes an `application/x-www-form-urlencoded` body.
pub fn parse_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The loopback ranges tests allow.
pub fn loopback_policy() -> EgressPolicy {
    EgressPolicy::new().allow([
        "127.0.0.0/8".parse::<IpRange>().unwrap(),
        "::1/128".parse::<IpRange>().unwrap(),
    ])
}

/// A test configuration: loopback allowed, a short deadline, these endpoint overrides.
pub fn config(overrides: &[(&str, String)]) -> ProbeConfig {
    let mut endpoints = ProviderEndpoints::default();
    for (id, url) in overrides {
        endpoints = endpoints.with_override(id, url);
    }
    ProbeConfig {
        timeout: Duration::from_secs(5),
        egress: loopback_policy(),
        endpoints,
        budgets: credentials_probe::ProbeBudgets::default(),
    }
}

/// A checked value of type `type_id` from field pairs.
pub fn value(type_id: &str, fields: &[(&str, &str)]) -> SecretValue {
    let spec = lookup(type_id).unwrap();
    let input = ValueInput::Fields(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect(),
    );
    credentials_core::value::check(spec, input).unwrap()
}

/// A value as the store would hand it back, unchecked: a probe also meets values written before
/// the write checks grew, so its own defences are tested with input writes now refuse.
pub fn stored_value(fields: &[(&str, &str)]) -> SecretValue {
    let map: BTreeMap<&str, &str> = fields.iter().copied().collect();
    let json = serde_json::json!({ "fields": map }).to_string();
    SecretValue::from_json(json.as_bytes()).unwrap()
}
