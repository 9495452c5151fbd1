//! TLS on the servers' TCP ports (rustls with ring), with certificates that can be replaced
//! while serving.
//!
//! [`ServerTls`] holds the current rustls configuration built from PEM files; each new
//! connection takes whichever configuration is current when it is accepted, so a reload
//! ([`ServerTls::reload`], on SIGHUP with [`reload_tls_on_sighup`]) changes what new handshakes
//! see (certificate, key and client CA alike) while established connections keep their session
//! and are never dropped. A reload that fails keeps the previous configuration.
//!
//! [`ServerTls::incoming`] accepts TCP connections and runs each handshake in a task of its own
//! (bounded in time and number), so a slow or silent client never holds up the others; tonic
//! only ever sees finished handshakes.

use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use std::{
    fmt, io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, PoisonError, RwLock},
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    net::{TcpListener, TcpStream},
    signal::unix::{SignalKind, signal},
    sync::mpsc,
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use zeroize::Zeroizing;

/// How long a client may take to finish its handshake before the connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; connections beyond are closed at once, so a flood of
/// half-open connections costs a bounded number of tasks.
const MAX_HANDSHAKES: usize = 1024;

/// The PEM files of a server's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to (mutual TLS); `None` asks
    /// clients for no certificate.
    pub client_ca: Option<PathBuf>,
}

/// Why TLS files could not be used. Messages name the file and never quote key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A certificate file holds no usable PEM certificate.
    #[error("{}: no PEM certificate ({detail})", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said (certificates are public).
        detail: String,
    },
    /// The key file holds no PEM private key that parses.
    #[error("{}: not a PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    Key {
        /// The file.
        path: PathBuf,
    },
    /// The client CA file cannot be used to verify client certificates.
    #[error("{}: not a usable client CA: {detail}", path.display())]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        detail: String,
    },
    /// The certificate and key do not make a server configuration (e.g. they do not match).
    #[error("{} with {}: {detail}", cert.display(), key.display())]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        detail: String,
    },
}

/// A server's TLS configuration, replaceable while serving.
pub struct ServerTls {
    files: TlsFiles,
    current: RwLock<Loaded>,
}

/// One loaded configuration and the fingerprint of its leaf certificate.
#[derive(Clone)]
struct Loaded {
    config: Arc<ServerConfig>,
    /// The same, offering HTTP/1.1 after h2: the HTTP/JSON port's.
    http_config: Arc<ServerConfig>,
    fingerprint: String,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .field("certificate_sha256", &self.loaded().fingerprint)
            .finish()
    }
}

impl ServerTls {
    /// Loads `files`; fails on anything missing, malformed or inconsistent.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let loaded = build(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(loaded),
        })
    }

    /// Loads the files again and, only if that succeeds, serves new handshakes with them.
    /// Returns the new leaf certificate's SHA-256 fingerprint (hex).
    pub fn reload(&self) -> Result<String, TlsError> {
        let loaded = build(&self.files)?;
        let fingerprint = loaded.fingerprint.clone();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
        Ok(fingerprint)
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// The SHA-256 fingerprint (hex) of the leaf certificate now served.
    pub fn fingerprint(&self) -> String {
        self.loaded().fingerprint
    }

    fn loaded(&self) -> Loaded {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The TLS connections accepted on `listener`, for `serve_with_incoming_shutdown`. The
    /// accept loop stops when the stream is dropped.
    pub fn incoming(self: &Arc<Self>, listener: TcpListener) -> TlsIncoming {
        self.incoming_offering(listener, Protocols::Grpc)
    }

    /// As [`ServerTls::incoming`], offering HTTP/1.1 as well as h2 (ALPN): for the HTTP/JSON
    /// port, which browsers and curl reach over either.
    pub fn incoming_http(self: &Arc<Self>, listener: TcpListener) -> TlsIncoming {
        self.incoming_offering(listener, Protocols::Http)
    }

    fn incoming_offering(
        self: &Arc<Self>,
        listener: TcpListener,
        protocols: Protocols,
    ) -> TlsIncoming {
        let (sender, connections) = mpsc::channel(32);
        let accept = tokio::spawn(accept(listener, self.clone(), protocols, sender));
        TlsIncoming {
            connections,
            accept,
        }
    }
}

/// Reads the files and builds the rustls server configurations (h2 only for gRPC, h2 and
/// HTTP/1.1 for HTTP; the protocol versions rustls deems safe).
fn build(files: &TlsFiles) -> Result<Loaded, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config_error = |e: rustls::Error| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        detail: e.to_string(),
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = match &files.client_ca {
        Some(path) => {
            let ca_error = |detail: String| TlsError::ClientCa {
                path: path.clone(),
                detail,
            };
            let mut roots = RootCertStore::empty();
            for cert in certificates(path)? {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ca_error(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let chain = certificates(&files.cert)?;
    let fingerprint = hex(ring::digest::digest(&ring::digest::SHA256, &chain[0]).as_ref());
    let mut config = builder
        .with_single_cert(chain, private_key(&files.key)?)
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let mut http_config = config.clone();
    http_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        http_config: Arc::new(http_config),
        fingerprint,
    })
}

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Every certificate in a PEM file; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let failed = |detail: String| TlsError::Certificate {
        path: path.to_owned(),
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("the file has no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The first private key in a PEM file. The parser's own message is not kept: it may quote
/// a character of the key.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::Key {
        path: path.to_owned(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a port offers in ALPN.
#[derive(Debug, Clone, Copy)]
enum Protocols {
    /// h2 only.
    Grpc,
    /// h2, then HTTP/1.1.
    Http,
}

/// Accepts TCP connections and hands each finished handshake to `sender`, until the
/// receiving [`TlsIncoming`] goes away.
async fn accept(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    protocols: Protocols,
    sender: mpsc::Sender<io::Result<TlsStream<TcpStream>>>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if handshakes.len() >= MAX_HANDSHAKES {
                        tracing::debug!(%peer, "too many TLS handshakes in progress; connection closed");
                        continue;
                    }
                    // gRPC's small frames: do not wait to fill a segment.
                    let _ = stream.set_nodelay(true);
                    // The configuration current now: a reload affects the next handshake.
                    let loaded = tls.loaded();
                    let acceptor = TlsAcceptor::from(match protocols {
                        Protocols::Grpc => loaded.config,
                        Protocols::Http => loaded.http_config,
                    });
                    let sender = sender.clone();
                    handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(connection)) => {
                                let _ = sender.send(Ok(connection)).await;
                            }
                            // Anyone can fail a handshake (scanners, TCP probes, a client with
                            // the wrong CA): not worth more than DEBUG.
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
                Err(e) => {
                    // Usually out of file descriptors: pause instead of spinning on the error.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            () = sender.closed() => break,
        }
    }
}

/// TLS connections accepted by [`ServerTls::incoming`].
#[derive(Debug)]
pub struct TlsIncoming {
    connections: mpsc::Receiver<io::Result<TlsStream<TcpStream>>>,
    accept: JoinHandle<()>,
}

impl tokio_stream::Stream for TlsIncoming {
    type Item = io::Result<TlsStream<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.connections.poll_recv(cx)
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        // Stops accepting, and aborts the handshakes in progress with the loop's JoinSet.
        self.accept.abort();
    }
}

/// On SIGHUP, reloads `tls`; a failed reload keeps the previous certificate and logs why at
/// ERROR (a certificate about to expire needs a human). Registers for the signal before
/// returning, so a SIGHUP right after start-up is never the default "terminate".
pub fn reload_tls_on_sighup(tls: Arc<ServerTls>) -> Result<JoinHandle<()>, String> {
    let mut hup =
        signal(SignalKind::hangup()).map_err(|e| format!("cannot watch for SIGHUP: {e}"))?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(fingerprint) => tracing::info!(
                    certificate_sha256 = %fingerprint,
                    "TLS certificate reloaded"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    certificate_sha256 = %tls.fingerprint(),
                    "TLS reload failed; still serving the previous certificate"
                ),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_failed_reload_keeps_the_previous_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let files = TlsFiles {
            cert: write(dir.path(), "tls.crt", &cert),
            key: write(dir.path(), "tls.key", &key),
            client_ca: None,
        };
        let tls = ServerTls::load(files.clone()).unwrap();
        let first = tls.fingerprint();

        // A key that is not the certificate's.
        let (_, other_key) = self_signed();
        write(dir.path(), "tls.key", &other_key);
        let err = tls.reload().unwrap_err();
        assert!(matches!(err, TlsError::Config { .. }), "{err}");
        assert_eq!(tls.fingerprint(), first);

        // Garbage in the key file: the message names the file and quotes nothing of it.
        write(
            dir.path(),
            "tls.key",
            "-----BEGIN PRIVATE KEY-----\nSECRETMARKER!!\n",
        );
        let err = tls.reload().unwrap_err();
        assert!(matches!(err, TlsError::Key { .. }), "{err}");
        assert!(!err.to_string().contains("SECRETMARKER"), "{err}");

        // A new pair is taken.
        let (cert, key) = self_signed();
        write(dir.path(), "tls.crt", &cert);
        write(dir.path(), "tls.key", &key);
        let second = tls.reload().unwrap();
        assert_ne!(second, first);
        assert_eq!(tls.fingerprint(), second);

        // A missing file names itself.
        let missing = TlsFiles {
            client_ca: Some(dir.path().join("absent.pem")),
            ..files
        };
        let err = ServerTls::load(missing).unwrap_err();
        assert!(err.to_string().contains("absent.pem"), "{err}");
    }
}
