//! Where the kms listens: an owner-only Unix socket (the sidecar default), TCP with mutual TLS,
//! or, for development only, plaintext TCP.

use super::ServeConfig;
use service_kit::{
    ConnectionLimits, ServerTls, StopSignal, TlsFiles, TlsIncoming, rpc::ObservedRouter,
};
use std::{
    fs,
    os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt},
    path::Path,
    sync::Arc,
};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

/// A bound listener, ready to serve.
pub enum Listener {
    /// A Unix socket.
    Unix(UnixListenerStream),
    /// A TCP port with mutual TLS (service-kit's, reloadable on SIGHUP).
    Tls(TlsIncoming),
    /// A plaintext TCP port (development only).
    Tcp(TcpListenerStream),
}

impl Listener {
    /// Serves `router` until `stop` resolves and in-flight requests finish.
    pub async fn serve(
        self,
        router: ObservedRouter,
        stop: StopSignal,
    ) -> Result<(), tonic::transport::Error> {
        // The default connection limits: the kms's one client is the API, whose channel
        // answers keepalive PINGs; anything else that connects and stalls is closed.
        let limits = ConnectionLimits::default();
        match self {
            Self::Unix(incoming) => {
                router
                    .serve_with_incoming_shutdown(limits.guard(incoming), stop)
                    .await
            }
            Self::Tls(incoming) => {
                router
                    .serve_with_incoming_shutdown(limits.guard(incoming), stop)
                    .await
            }
            Self::Tcp(incoming) => {
                router
                    .serve_with_incoming_shutdown(limits.guard(incoming), stop)
                    .await
            }
        }
    }
}

/// Binds the configured transport and logs the address; for TCP with TLS, also returns the
/// TLS configuration, which SIGHUP reloads.
pub async fn bind(config: &ServeConfig) -> Result<(Listener, Option<Arc<ServerTls>>), String> {
    let Some(addr) = config.tcp else {
        let listener = bind_private_socket(&config.socket)?;
        tracing::info!(socket = %config.socket.display(), "listening");
        return Ok((Listener::Unix(UnixListenerStream::new(listener)), None));
    };
    let tls = if config.insecure_plaintext_tcp {
        tracing::warn!(
            %addr,
            "serving PLAINTEXT TCP without client authentication: development only, never in production"
        );
        None
    } else {
        let (Some(cert), Some(key), Some(ca)) =
            (&config.tls_cert, &config.tls_key, &config.tls_client_ca)
        else {
            return Err(
                "--tcp needs --tls-cert, --tls-key and --tls-client-ca (or --insecure-plaintext-tcp for development)"
                    .into(),
            );
        };
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: Some(ca.clone()),
        };
        Some(Arc::new(ServerTls::load(files).map_err(|e| e.to_string())?))
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        address = %local,
        mutual_tls = tls.is_some(),
        certificate_sha256 = tls.as_ref().map(|t| t.fingerprint()),
        "listening"
    );
    Ok(match tls {
        Some(tls) => (Listener::Tls(tls.incoming(listener)), Some(tls)),
        None => (Listener::Tcp(TcpListenerStream::new(listener)), None),
    })
}

/// Binds a Unix socket that only this user can connect to. The socket is created in a private
/// (0700) directory, restricted to 0600, and only then renamed into place, so there is no moment
/// at which another user could connect.
fn bind_private_socket(path: &Path) -> Result<tokio::net::UnixListener, String> {
    let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another process is serving on {}; stop it first",
                path.display()
            ));
        }
        fs::remove_file(path).map_err(|e| fail("cannot remove stale socket", e))?;
    }
    let staging = parent.join(format!(".kms-bind-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| fail("cannot create a private directory beside", e))?;
    let staged = staging.join("kms.sock");
    let result = (|| {
        let listener = tokio::net::UnixListener::bind(&staged)?;
        fs::set_permissions(&staged, fs::Permissions::from_mode(0o600))?;
        fs::rename(&staged, path)?;
        Ok(listener)
    })();
    let _ = fs::remove_dir_all(&staging);
    result.map_err(|e| fail("cannot bind", e))
}

/// Removes the socket file after shutdown.
pub fn cleanup(config: &ServeConfig) {
    if config.tcp.is_none() {
        let _ = fs::remove_file(&config.socket);
    }
}
