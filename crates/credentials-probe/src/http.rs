//! A small HTTP/1.1 client that dials only what the egress guard allows.
//!
//! Every hop (the first request and each redirect) resolves its host through
//! [`EgressPolicy::resolve`] and connects to exactly the addresses it returns, so DNS rebinding
//! and redirects to internal addresses cannot slip past. One request per connection; response
//! bodies are read up to [`MAX_BODY`] bytes. Credentials travel over plain `http` only to
//! non-public addresses an operator explicitly allowed (an in-cluster service, a test server).

use crate::egress::{EgressError, EgressPolicy};
use crate::outcome::{ProbeResult, ValidationOutcome};
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The most response body bytes read; the rest is dropped with the connection. Probes parse
/// small JSON answers (a token, an error), the largest a Snowflake login's (its parameter list
/// runs to about 10 KiB); 64 KiB holds them with room, and 16 probes at once hold 1 MiB.
pub const MAX_BODY: usize = 64 * 1024;

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 3;

const USER_AGENT: &str = concat!("credentials-vault-probe/", env!("CARGO_PKG_VERSION"));

/// Why an HTTP exchange failed. Messages never contain URLs' paths or queries, headers or
/// bodies, nor a library's text (a TLS error can quote the server's certificate): reasons are
/// fixed words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL cannot be used.
    #[error("the URL is not usable: {0}")]
    InvalidUrl(&'static str),
    /// A header name or value is not valid HTTP.
    #[error("the {0} header is not a valid HTTP header")]
    InvalidHeader(String),
    /// The egress policy refused the destination, or its name did not resolve.
    #[error(transparent)]
    Egress(#[from] EgressError),
    /// Plain `http` to a public address would expose the credential on the wire.
    #[error("refusing to send a credential over plain http to {host}, a public address; use https")]
    Cleartext {
        /// The host name.
        host: String,
    },
    /// No TCP connection could be made.
    #[error("cannot connect to {host}: {reason}")]
    Connect {
        /// The host name.
        host: String,
        /// The operating system's reason, in the standard library's fixed words.
        reason: String,
    },
    /// The TLS handshake failed (unknown issuer, wrong name, no common protocol...).
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// The host name.
        host: String,
        /// What went wrong, from a fixed list.
        reason: &'static str,
    },
    /// The connection broke or the peer does not speak HTTP/1.1.
    #[error("the HTTP exchange with {host} failed: {reason}")]
    Protocol {
        /// The host name.
        host: String,
        /// What went wrong, from a fixed list.
        reason: &'static str,
    },
    /// The redirect chain is longer than [`MAX_REDIRECTS`].
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

impl HttpError {
    /// The probe outcome this failure means.
    pub fn outcome(&self) -> ValidationOutcome {
        match self {
            HttpError::InvalidUrl(_) | HttpError::InvalidHeader(_) => {
                ValidationOutcome::InvalidCredentials
            }
            HttpError::Egress(EgressError::Unresolvable { .. })
            | HttpError::Connect { .. }
            | HttpError::Tls { .. }
            | HttpError::Protocol { .. } => ValidationOutcome::Unreachable,
            HttpError::Egress(EgressError::Refused { .. }) | HttpError::Cleartext { .. } => {
                ValidationOutcome::EgressDenied
            }
            HttpError::TooManyRedirects => ValidationOutcome::ProviderError,
        }
    }

    /// The probe result for this failure; the message is the error's text.
    pub fn to_result(&self) -> ProbeResult {
        ProbeResult::new(self.outcome(), self.to_string())
    }
}

/// One request: method, absolute URL, headers and body.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    /// Whether a header or the body carries a credential, which a redirect must not carry to
    /// another origin.
    credentials: bool,
    /// The first invalid header, reported by [`HttpClient::send`] so building stays chainable.
    error: Option<HttpError>,
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Bytes::new(),
            credentials: false,
            error: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::GET, url)
    }

    /// A POST request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::POST, url)
    }

    /// A HEAD request.
    pub fn head(url: impl Into<String>) -> Self {
        Self::new(Method::HEAD, url)
    }

    /// Adds a header that carries a credential (its value is marked sensitive).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.credentials = true;
        self.plain_header(name, value)
    }

    /// Adds a header that carries no credential, e.g. `accept` or `range`.
    pub fn plain_header(mut self, name: &str, value: &str) -> Self {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .ok()
            .zip(HeaderValue::from_str(value).ok());
        match parsed {
            Some((name, mut value)) => {
                value.set_sensitive(true);
                self.headers.push((name, value));
            }
            None => {
                // The name is reported, never the value: it may be the secret.
                let shown: String = name
                    .chars()
                    .take(64)
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect();
                self.error.get_or_insert(HttpError::InvalidHeader(shown));
            }
        }
        self
    }

    /// Appends a query parameter that carries a credential (SerpApi's `api_key`), escaped; the
    /// request then counts as carrying a credential. Messages never show a URL's query.
    pub fn secret_query(mut self, name: &str, value: &str) -> Self {
        self.credentials = true;
        let (path, fragment) = match self.url.split_once('#') {
            Some((path, fragment)) => (path.to_owned(), Some(fragment.to_owned())),
            None => (self.url.clone(), None),
        };
        let separator = if path.contains('?') { '&' } else { '?' };
        self.url = format!(
            "{path}{separator}{}={}",
            form_escape(name),
            form_escape(value)
        );
        if let Some(fragment) = fragment {
            self.url.push('#');
            self.url.push_str(&fragment);
        }
        self
    }

    /// Sets the body, which is taken to carry a credential when not empty.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.credentials |= !self.body.is_empty();
        self
    }

    /// Sets an `application/x-www-form-urlencoded` body from pairs.
    pub fn form(self, pairs: &[(&str, &str)]) -> Self {
        let body = form_encode(pairs);
        self.plain_header(CONTENT_TYPE.as_str(), "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// An answer: status, headers and the first [`MAX_BODY`] bytes of the body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most [`MAX_BODY`] bytes.
    pub body: Bytes,
    /// Whether the body was cut at [`MAX_BODY`].
    pub truncated: bool,
}

impl Response {
    /// The body as text, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; `None` if it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The guarded HTTP client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    egress: EgressPolicy,
    /// `None` only if rustls refused the ring provider, which its defaults never do; https
    /// requests then fail with a TLS error rather than the constructor panicking.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl HttpClient {
    /// A client trusting the policy's roots: Mozilla's (`webpki-roots`) plus the operator's CAs.
    pub fn new(egress: EgressPolicy) -> Self {
        let roots = rustls::RootCertStore::clone(&egress.roots());
        Self::with_roots(egress, roots)
    }

    /// A client trusting exactly these roots (tests use a local CA).
    pub fn with_roots(egress: EgressPolicy, roots: rustls::RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = match rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
        {
            Ok(builder) => {
                let mut config = builder.with_root_certificates(roots).with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(Arc::new(config))
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS configuration failed; https probes will fail");
                None
            }
        };
        Self { egress, tls }
    }

    /// The egress policy every hop is checked against.
    pub fn egress(&self) -> &EgressPolicy {
        &self.egress
    }

    /// Sends the request, following up to [`MAX_REDIRECTS`] redirects, each checked again.
    ///
    /// A redirect to another origin is followed only when the request carries nothing but its
    /// URL: headers and bodies hold credentials, which must not be handed to another host. Such
    /// a redirect is returned as is (after its target passed the egress check, so a redirect
    /// to an internal address is reported as refused).
    pub async fn send(&self, request: Request) -> Result<Response, HttpError> {
        if let Some(error) = request.error {
            return Err(error);
        }
        let Request {
            mut method,
            url,
            mut headers,
            mut body,
            credentials,
            ..
        } = request;
        let mut url = Url::parse(&url)?;
        let mut hops = 0;
        loop {
            let response = self.exchange(&url, &method, &headers, &body).await?;
            let status = response.status;
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(response);
            }
            let Some(location) = response
                .headers
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
            else {
                return Ok(response);
            };
            if hops == MAX_REDIRECTS {
                return Err(HttpError::TooManyRedirects);
            }
            hops += 1;
            let next = url.join(location)?;
            if next.origin() != url.origin() && credentials {
                self.egress.resolve(&next.host, next.port).await?;
                return Ok(response);
            }
            // 301/302/303 turn a POST into a GET without body, as browsers and curl do.
            let keeps_method = matches!(status.as_u16(), 307 | 308);
            if !keeps_method && method != Method::GET && method != Method::HEAD {
                method = Method::GET;
                body = Bytes::new();
                headers.retain(|(name, _)| name != CONTENT_TYPE && name != CONTENT_LENGTH);
            }
            url = next;
        }
    }

    /// One request on one fresh connection to a checked address.
    async fn exchange(
        &self,
        url: &Url,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: &Bytes,
    ) -> Result<Response, HttpError> {
        let mut addrs = self.egress.resolve(&url.host, url.port).await?;
        if !url.https {
            addrs.retain(|a| self.egress.allows_cleartext(a.ip()));
            if addrs.is_empty() {
                return Err(HttpError::Cleartext {
                    host: url.host.clone(),
                });
            }
        }
        let tcp = connect(&url.host, &addrs).await?;
        let request = build_request(url, method, headers, body)?;
        if url.https {
            let Some(tls) = &self.tls else {
                return Err(HttpError::Tls {
                    host: url.host.clone(),
                    reason: "TLS is not configured",
                });
            };
            let name = ServerName::try_from(url.host.clone())
                .map_err(|_| HttpError::InvalidUrl("the host is not a valid TLS server name"))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
                .connect(name, tcp)
                .await
                .map_err(|e| HttpError::Tls {
                    host: url.host.clone(),
                    reason: crate::db::net::tls_reason(&e),
                })?;
            roundtrip(&url.host, stream, request, method).await
        } else {
            roundtrip(&url.host, tcp, request, method).await
        }
    }
}

/// Connects to the first checked address that answers.
async fn connect(host: &str, addrs: &[SocketAddr]) -> Result<TcpStream, HttpError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Small request/response exchanges: do not wait for Nagle.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(HttpError::Connect {
        host: host.to_owned(),
        reason: last.map_or_else(
            || "no address".to_owned(),
            |e| crate::db::net::io_reason(&e),
        ),
    })
}

fn build_request(
    url: &Url,
    method: &Method,
    headers: &[(HeaderName, HeaderValue)],
    body: &Bytes,
) -> Result<http::Request<Full<Bytes>>, HttpError> {
    let mut builder = http::Request::builder()
        .method(method.clone())
        .uri(url.path_and_query.as_str())
        .header(HOST, url.host_header())
        .header(http::header::USER_AGENT, USER_AGENT);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(body.clone()))
        .map_err(|_| HttpError::InvalidUrl("the path is not valid HTTP"))
}

/// Sends one request over `io` and reads the capped response, driving the connection inline so
/// nothing outlives the probe when its deadline cancels it.
async fn roundtrip<IO>(
    host: &str,
    io: IO,
    request: http::Request<Full<Bytes>>,
    method: &Method,
) -> Result<Response, HttpError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let protocol = |e: hyper::Error| HttpError::Protocol {
        host: host.to_owned(),
        reason: hyper_reason(&e),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(protocol)?;
    let head = *method == Method::HEAD;
    let exchange = async {
        let response = sender.send_request(request).await.map_err(protocol)?;
        let (parts, mut body) = response.into_parts();
        let mut buf = BytesMut::new();
        let mut truncated = false;
        if !head {
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.map_err(protocol)?.into_data() else {
                    continue;
                };
                let room = MAX_BODY - buf.len();
                if data.len() > room {
                    buf.extend_from_slice(&data[..room]);
                    truncated = true;
                    break;
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body: buf.freeze(),
            truncated,
        })
    };
    let mut exchange = pin!(exchange);
    let mut conn = pin!(conn);
    tokio::select! {
        result = &mut exchange => result,
        ended = &mut conn => match ended {
            // The connection may finish (server closed it) just after delivering the body.
            Ok(()) => exchange.await,
            Err(e) => Err(protocol(e)),
        },
    }
}

/// What went wrong in an HTTP exchange, in fixed words.
fn hyper_reason(e: &hyper::Error) -> &'static str {
    if e.is_incomplete_message() {
        "the connection closed before the answer was complete"
    } else if e.is_parse() || e.is_parse_status() {
        "the answer is not HTTP/1.1"
    } else if e.is_timeout() {
        "the exchange timed out"
    } else if e.is_closed() || e.is_canceled() {
        "the connection closed"
    } else {
        "the exchange failed"
    }
}

/// A parsed absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) https: bool,
    /// The host without IPv6 brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path_and_query: String,
}

impl Url {
    /// Parses an absolute http or https URL without user info. Errors never echo the URL.
    pub(crate) fn parse(s: &str) -> Result<Url, HttpError> {
        let s = s.trim();
        // http::Uri keeps a fragment in the path; it is never sent.
        let s = s.split_once('#').map_or(s, |(before, _)| before);
        let uri: http::Uri = s
            .parse()
            .map_err(|_| HttpError::InvalidUrl("it is not a valid absolute URL"))?;
        let https = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => true,
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => false,
            _ => {
                return Err(HttpError::InvalidUrl(
                    "only http:// and https:// URLs are supported",
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or(HttpError::InvalidUrl("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(HttpError::InvalidUrl(
                "user info in URLs is not supported; pass credentials in their own fields",
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(HttpError::InvalidUrl("it has no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            format!("/{path_and_query}")
        };
        Ok(Url {
            https,
            host,
            port,
            path_and_query,
        })
    }

    /// The `Host` header: the host, bracketed if IPv6, with the port unless it is the default.
    pub(crate) fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `scheme://host[:port]`.
    pub(crate) fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.host_header())
    }

    /// Resolves a `Location` header against this URL.
    pub(crate) fn join(&self, location: &str) -> Result<Url, HttpError> {
        let location = location.trim();
        let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Url::parse(location)
        } else if location.contains("://") {
            Err(HttpError::InvalidUrl(
                "a redirect leads to a scheme other than http or https",
            ))
        } else if location.starts_with("//") {
            let scheme = if self.https { "https:" } else { "http:" };
            Url::parse(&format!("{scheme}{location}"))
        } else if location.starts_with('/') {
            Url::parse(&format!("{}{location}", self.origin()))
        } else {
            let path = self.path_and_query.split(['?', '#']).next().unwrap_or("/");
            let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            Url::parse(&format!("{}{dir}/{location}", self.origin()))
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of pairs.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Form-encodes one component: unreserved characters stay, space becomes `+`, the rest `%XX`.
pub fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_parse_strictly() {
        let u = Url::parse("https://API.example.com/v1/models?x=1#frag").unwrap();
        assert_eq!(
            u,
            Url {
                https: true,
                host: "api.example.com".into(),
                port: 443,
                path_and_query: "/v1/models?x=1".into()
            }
        );
        assert_eq!(u.host_header(), "api.example.com");
        let u = Url::parse("http://[::1]:8080").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
        assert_eq!(u.host_header(), "[::1]:8080");
        assert_eq!(u.path_and_query, "/");
        for bad in [
            "file:///etc/passwd",
            "ftp://example.com/x",
            "https://user:SECRET@example.com/",
            "/relative/path",
            "not a url",
            "",
        ] {
            let err = Url::parse(bad).unwrap_err();
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn locations_resolve_against_the_current_url() {
        let base = Url::parse("https://a.example/dir/file?q=1").unwrap();
        let join = |l: &str| base.join(l).unwrap();
        assert_eq!(join("/x").origin(), "https://a.example");
        assert_eq!(join("/x").path_and_query, "/x");
        assert_eq!(join("y?z").path_and_query, "/dir/y?z");
        assert_eq!(join("//b.example/p").host, "b.example");
        assert_eq!(join("http://169.254.169.254/").host, "169.254.169.254");
        assert!(base.join("gopher://x/").is_err());
    }

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(
            form_encode(&[("grant_type", "refresh_token"), ("t", "a b&c=d/é")]),
            "grant_type=refresh_token&t=a+b%26c%3Dd%2F%C3%A9"
        );
    }

    #[test]
    fn invalid_headers_name_the_header_not_the_value() {
        let req = Request::get("https://x.example/").header("x-api-key", "SECRET\nvalue");
        let err = req.error.unwrap();
        assert_eq!(err, HttpError::InvalidHeader("x-api-key".into()));
        assert!(!err.to_string().contains("SECRET"));
    }
}
