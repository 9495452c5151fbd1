//! What the database and SMTP probes share: the typed failure, the deadline, the guarded dial
//! and TLS client configurations.

use crate::egress::{EgressError, EgressPolicy};
use crate::outcome::{ProbeResult, ValidationOutcome};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
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

    /// The same failure with every secret in its message replaced, in case a server or a
    /// library echoed one.
    pub(crate) fn redacted(mut self, secrets: &[&str]) -> Self {
        self.message = redact(&self.message, secrets);
        self
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
            EgressError::Refused { .. } => Failure::egress(e.to_string()),
            EgressError::Unresolvable { .. } => Failure::unreachable(e.to_string()),
        }
    }
}

/// `message` with each non-empty secret replaced by `****`.
pub(crate) fn redact(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "****");
    }
    out
}

/// At most `max` characters of a server's text, on one line.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line,
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
        Some((addr, e)) => Failure::unreachable(format!("could not connect to {addr}: {e}")),
        None => Failure::unreachable(format!("{host} has no address to connect to")),
    })
}

/// How much of the server's certificate a TLS connection checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Chain to a public root and the host name (the default everywhere but in libpq modes).
    Full,
    /// Chain to a public root, any name (libpq `sslmode=verify-ca`).
    ChainOnly,
    /// Encryption only, no certificate check (libpq `sslmode=require` and `prefer`).
    Nothing,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

/// A TLS client configuration with the ring provider and Mozilla's roots.
pub(crate) fn tls_config(verify: Verify) -> Result<Arc<ClientConfig>, Failure> {
    let fail = |e: rustls::Error| Failure::provider(format!("TLS set-up failed: {e}"));
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(fail)?;
    let config = match verify {
        Verify::Full => builder
            .with_root_certificates(roots())
            .with_no_client_auth(),
        Verify::ChainOnly => {
            let inner = WebPkiServerVerifier::builder_with_provider(roots(), provider)
                .build()
                .map_err(|e| Failure::provider(format!("TLS set-up failed: {e}")))?;
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
        .map_err(|_| Failure::provider(format!("{host:?} is not a valid TLS server name")))
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
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Failure> {
    let connector = tokio_rustls::TlsConnector::from(tls_config(verify)?);
    connector
        .connect(server_name(host)?, stream)
        .await
        .map_err(|e| Failure::provider(format!("TLS handshake with {host} failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_and_excerpts() {
        assert_eq!(
            redact("a s3cret b s3cret", &["s3cret", ""]),
            "a **** b ****"
        );
        assert_eq!(excerpt("one\n two   three", 7), "one two...");
        assert_eq!(excerpt("short", 10), "short");
    }
}
