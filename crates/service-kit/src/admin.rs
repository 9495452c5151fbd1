//! The admin HTTP port: `GET /metrics` in the Prometheus text format, 404 for anything else.
//! Deliberately tiny (one request per connection, `Connection: close`): Prometheus is its only
//! client, and a full HTTP server would be more code to trust on a port beside the vault.

use crate::metrics::{CONTENT_TYPE, Registry};
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Longest request head read; a scrape request is a few hundred bytes.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request and read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The admin port could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind admin address {addr}: {source}")]
pub struct AdminError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// Binds `addr` and serves `registry` on `GET /metrics` in the background; returns the bound
/// address (useful with port 0) after logging it as "admin listening".
pub async fn serve_admin(addr: SocketAddr, registry: Registry) -> Result<SocketAddr, AdminError> {
    let fail = |source| AdminError { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(fail)?;
    let local = listener.local_addr().map_err(fail)?;
    tracing::info!(address = %local, "admin listening");
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        // A slow or broken client only loses its own answer.
                        let _ = tokio::time::timeout(IO_TIMEOUT, answer(stream, &registry)).await;
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "admin port cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(local)
}

/// Reads one request head and writes one response.
async fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD_BYTES {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "",
                false,
            )
            .await;
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => respond(&mut stream, "200 OK", &registry.render(), true).await,
        ("HEAD", "/metrics") => respond(&mut stream, "200 OK", "", true).await,
        (_, "/metrics") => respond(&mut stream, "405 Method Not Allowed", "", false).await,
        _ => respond(&mut stream, "404 Not Found", "not found\n", false).await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    body: &str,
    metrics: bool,
) -> std::io::Result<()> {
    let content_type = if metrics {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_and_404s_the_rest() {
        let registry = Registry::new();
        registry.counter("hits_total", "Hits.", []).inc([]);
        let addr = serve_admin("127.0.0.1:0".parse().unwrap(), registry)
            .await
            .unwrap();

        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(ok.ends_with(
            "\r\n\r\n# HELP hits_total Hits.\n# TYPE hits_total counter\nhits_total 1\n"
        ));

        let query = get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
        assert!(query.starts_with("HTTP/1.1 200 OK\r\n"));
        let missing = get(addr, "GET / HTTP/1.1\r\n\r\n").await;
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
        let post = get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    }

    #[tokio::test]
    async fn a_taken_port_is_an_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = serve_admin(taken.local_addr().unwrap(), Registry::new())
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("cannot bind admin address"));
    }
}
