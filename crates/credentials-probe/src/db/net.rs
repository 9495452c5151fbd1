//! What the database and SMTP probes share: the typed failure, the deadline, the guarded dial
//! and TLS client configurations.
//!
//! A failure's message is built only from parts known not to be secret: a fixed reason, the
//! host and port and user name the connection string was parsed into, a status or error code
//! from a fixed vocabulary. Text from a driver, a TLS library or the server is never copied into
//! one, since any of them may echo the password (a server can be hostile, a driver can quote the
//! string it failed to parse). Nothing is "redacted" after the fact: search-and-replace over a
//! text that held the secret leaks it by what it replaces.

use crate::egress::{EgressError, EgressPolicy};
use crate::outcome::{ProbeResult, ValidationOutcome};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Why a probe failed: the outcome it maps to, and a message that never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) outcome: ValidationOutcome,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(outcome: ValidationOutcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::InvalidCredentials, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::InsufficientPermissions, message)
    }

    pub(crate) fn unreachable(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::Unreachable, message)
    }

    pub(crate) fn provider(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::ProviderError, message)
    }

    pub(crate) fn egress(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::EgressDenied, message)
    }
}

impl From<Failure> for ProbeResult {
    fn from(f: Failure) -> Self {
        ProbeResult::new(f.outcome, f.message)
    }
}

impl From<EgressError> for Failure {
    fn from(e: EgressError) -> Self {
        match e {
            // The address is the resolver's, the suggestion derived from it: no secret.
            EgressError::Refused { .. } => Failure::egress(e.to_string()),
            EgressError::Unresolvable { host } => {
                Failure::unreachable(format!("{} does not resolve", shown(&host)))
            }
        }
    }
}

/// A non-secret part of a connection (a host, a user or database name) as a message shows it:
/// one line, no control characters, at most 128 characters.
pub(crate) fn shown(part: &str) -> String {
    credentials_core::schema::clean(part, 128)
}

/// The non-secret parts of a database connection a message may name: the parsed host and
/// port, user and database (each cleaned by [`shown`]).
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: Option<String>,
    pub(crate) database: Option<String>,
}

impl Endpoint {
    /// The parts of a connection to `host:port` as `user` on `database`.
    pub(crate) fn new(host: String, port: u16, user: Option<&str>, database: Option<&str>) -> Self {
        Self {
            host,
            port,
            user: user.map(shown),
            database: database.map(shown),
        }
    }

    /// `host:port`, as messages show it.
    pub(crate) fn at(&self) -> String {
        endpoint(&self.host, self.port)
    }

    /// ` for user '<user>'`, or nothing.
    pub(crate) fn user(&self) -> String {
        match &self.user {
            Some(user) => format!(" for user '{user}'"),
            None => String::new(),
        }
    }

    /// ` on database '<database>'`, or nothing.
    pub(crate) fn on_database(&self) -> String {
        match &self.database {
            Some(database) => format!(" on database '{database}'"),
            None => String::new(),
        }
    }
}

/// `host:port` for a message, IPv6 hosts bracketed.
pub(crate) fn endpoint(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.contains(':') {
        format!("[{}]:{port}", shown(host))
    } else {
        format!("{}:{port}", shown(host))
    }
}

/// What went wrong on a socket, in the standard library's fixed words ("connection refused").
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    e.kind().to_string()
}

/// What went wrong in a TLS handshake, as a fixed reason read from the first rustls error found
/// in `e`'s source chain (rustls' own text can quote the server's certificate).
pub(crate) fn tls_reason(e: &(dyn std::error::Error + 'static)) -> &'static str {
    rustls_error(e).map_or("the handshake did not complete", rustls_reason)
}

/// The first rustls error in `e`'s source chain.
pub(crate) fn rustls_error<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // io::Error hides its payload from source(): look inside.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(inner);
        }
        next = err.source();
    }
    None
}

fn rustls_reason(e: &rustls::Error) -> &'static str {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "the server's certificate is not signed by a trusted authority"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate does not name this host"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet"
            }
            CertificateError::Revoked => "the server's certificate is revoked",
            CertificateError::BadSignature => "the server's certificate has a bad signature",
            _ => "the server's certificate was refused",
        },
        rustls::Error::AlertReceived(_) => "the server refused the handshake",
        rustls::Error::PeerIncompatible(_) => "the server offers no protocol or cipher in common",
        rustls::Error::NoCertificatesPresented => "the server presented no certificate",
        rustls::Error::InvalidMessage(_) | rustls::Error::PeerMisbehaved(_) => {
            "the server does not speak TLS correctly"
        }
        _ => "the handshake failed",
    }
}

/// Runs `fut` under the deadline; past it, a [`ValidationOutcome::TimedOut`] failure naming
/// `what`.
pub(crate) async fn within<T>(
    timeout: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(Failure::new(
            ValidationOutcome::TimedOut,
            format!("{what} did not answer within {} ms", timeout.as_millis()),
        )),
    }
}

/// Connects to the first address of `host:port` that the egress policy allows and that
/// accepts; the address dialled is exactly one the policy checked.
pub(crate) async fn dial(
    policy: &EgressPolicy,
    host: &str,
    port: u16,
) -> Result<(TcpStream, SocketAddr), Failure> {
    let addrs = policy.resolve(host, port).await?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Probes exchange a few small messages: do not wait to fill segments.
                let _ = stream.set_nodelay(true);
                return Ok((stream, addr));
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) => Failure::unreachable(format!(
            "could not connect to {} ({addr}): {}",
            endpoint(host, port),
            io_reason(&e)
        )),
        None => Failure::unreachable(format!("{} has no address to connect to", shown(host))),
    })
}

/// How much of the server's certificate a TLS connection checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Chain to a public root and the host name (the default everywhere but in libpq modes).
    Full,
    /// Chain to a public root, any name (libpq `sslmode=verify-ca`).
    ChainOnly,
    /// Encryption only, no certificate check (libpq `sslmode=require` and `prefer`); only to
    /// addresses the operator allowed for cleartext, since it stops no one on the path.
    Nothing,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client configuration with the ring provider and the policy's roots (Mozilla's plus
/// the operator's CAs).
pub(crate) fn tls_config(
    verify: Verify,
    policy: &EgressPolicy,
) -> Result<Arc<ClientConfig>, Failure> {
    let roots = policy.roots();
    let fail = |_: rustls::Error| Failure::provider("TLS set-up failed");
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(fail)?;
    let config = match verify {
        Verify::Full => builder.with_root_certificates(roots).with_no_client_auth(),
        Verify::ChainOnly => {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|_| Failure::provider("TLS set-up failed"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyName(inner)))
                .with_no_client_auth()
        }
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCheck(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name a TLS handshake presents and checks: a DNS name or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, Failure> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|_| Failure::provider(format!("{:?} is not a valid TLS server name", shown(host))))
}

/// Verifies the chain but accepts any name, as libpq's `verify-ca` does.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any certificate but still checks the handshake signatures, as libpq's `require`
/// does without a root file: encryption against passive eavesdroppers only.
#[derive(Debug)]
struct NoCheck(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Upgrades a connected stream to TLS.
pub(crate) async fn tls_connect(
    stream: TcpStream,
    host: &str,
    verify: Verify,
    policy: &EgressPolicy,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Failure> {
    let connector = tokio_rustls::TlsConnector::from(tls_config(verify, policy)?);
    connector
        .connect(server_name(host)?, stream)
        .await
        .map_err(|e| {
            Failure::provider(format!(
                "TLS handshake with {} failed: {}",
                shown(host),
                tls_reason(&e)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_parts_are_one_line_and_fixed() {
        assert_eq!(endpoint("db.example.com", 5432), "db.example.com:5432");
        assert_eq!(endpoint("[::1]", 5432), "[::1]:5432");
        assert_eq!(shown("a\nb\u{1b}"), "a b");
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "SECRET");
        assert_eq!(io_reason(&refused), "connection refused");
        let wrapped = std::io::Error::other(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert_eq!(
            tls_reason(&wrapped),
            "the server's certificate is not signed by a trusted authority"
        );
        let general = rustls::Error::General("SECRET".into());
        assert_eq!(tls_reason(&general), "the handshake failed");
    }
}
