//! Limits on each connection, so that peers which connect and then say nothing (or stop
//! half-way) cannot hold sockets, tasks and memory for ever.
//!
//! - **Handshake**: the HTTP/2 client preface and the first frame header (33 bytes) must
//!   arrive within [`ConnectionLimits::handshake_timeout`] of the connection being handed to
//!   the server (after TLS, whose own handshake `ServerTls` bounds). hyper would otherwise
//!   wait for a preface for ever: an idle or half-written TCP connection is a free file
//!   descriptor for whoever opens it.
//! - **Keepalive**: HTTP/2 PINGs every [`ConnectionLimits::keepalive_interval`]; no answer
//!   within [`ConnectionLimits::keepalive_timeout`] closes the connection (a dead peer, a
//!   dropped NAT entry).
//! - **Idle**: a connection from which nothing at all has been read for
//!   [`ConnectionLimits::idle_timeout`] is closed. A live client answers the keepalive PINGs,
//!   so this catches the silent peers that keepalive does not (a peer that acknowledged
//!   nothing since its handshake while keepalive waits for its own turn).
//! - **Age**: after [`ConnectionLimits::max_age`] the server sends GOAWAY (clients reconnect,
//!   which also spreads them over new replicas), and closes whatever is left after
//!   [`ConnectionLimits::max_age_grace`].
//! - **Headers**: at most [`MAX_HEADER_LIST_BYTES`] of request headers, above the token cap,
//!   so an oversized token reaches the authentication layer and gets a gRPC answer naming the
//!   limit instead of hyper's HTTP 431 (which clients see as `UNKNOWN`).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};
use tonic::transport::server::Connected;

/// Largest request header list accepted, in bytes: well above the 8 KiB token limit.
pub const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// The HTTP/2 client preface (24 bytes) and the header of the SETTINGS frame that must follow.
const HANDSHAKE_BYTES: usize = 24 + 9;

/// How long connections may live and stay silent; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Interval between HTTP/2 keepalive PINGs (and the TCP keepalive time).
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// How long the HTTP/2 preface may take to arrive.
    pub handshake_timeout: Duration,
    /// How long a connection may send nothing at all before it is closed.
    pub idle_timeout: Duration,
    /// Age after which a connection is asked to go away (GOAWAY).
    pub max_age: Duration,
    /// How long a connection asked to go away may finish its calls before it is closed.
    pub max_age_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_age: Duration::from_secs(3600),
            max_age_grace: Duration::from_secs(30),
        }
    }
}

impl ConnectionLimits {
    /// Checks that the limits can hold together: every one positive, and the idle timeout
    /// longer than a keepalive round (else a live client between calls would be cut).
    pub fn check(&self) -> Result<(), String> {
        let all = [
            ("keepalive interval", self.keepalive_interval),
            ("keepalive timeout", self.keepalive_timeout),
            ("handshake timeout", self.handshake_timeout),
            ("idle timeout", self.idle_timeout),
            ("maximum connection age", self.max_age),
        ];
        if let Some((name, _)) = all.iter().find(|(_, d)| d.is_zero()) {
            return Err(format!("the {name} must be more than zero"));
        }
        if self.idle_timeout <= self.keepalive_interval + self.keepalive_timeout {
            return Err(format!(
                "the idle timeout ({:?}) must be longer than the keepalive interval plus its timeout ({:?})",
                self.idle_timeout,
                self.keepalive_interval + self.keepalive_timeout
            ));
        }
        Ok(())
    }

    /// A tonic server builder with these limits and the header-list size set.
    pub fn server(&self) -> tonic::transport::Server {
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(self.keepalive_interval))
            .http2_keepalive_timeout(Some(self.keepalive_timeout))
            .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
            .max_connection_age(self.max_age)
            .max_connection_age_grace(self.max_age_grace)
    }

    /// `incoming` with every connection under the handshake and idle timeouts.
    pub fn guard<S>(&self, incoming: S) -> GuardedIncoming<S> {
        GuardedIncoming {
            inner: incoming,
            limits: *self,
        }
    }
}

/// A stream of connections, each wrapped in a [`Guarded`].
#[derive(Debug)]
pub struct GuardedIncoming<S> {
    inner: S,
    limits: ConnectionLimits,
}

impl<S, IO> tokio_stream::Stream for GuardedIncoming<S>
where
    S: tokio_stream::Stream<Item = io::Result<IO>> + Unpin,
{
    type Item = io::Result<Guarded<IO>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let limits = self.limits;
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|next| next.map(|io| io.map(|io| Guarded::new(io, &limits))))
    }
}

/// One connection under the handshake and idle timeouts: a read that waits past either
/// fails with `TimedOut`, and hyper closes the connection.
#[derive(Debug)]
pub struct Guarded<IO> {
    io: IO,
    timer: Pin<Box<Sleep>>,
    read: usize,
    idle: Duration,
}

impl<IO> Guarded<IO> {
    fn new(io: IO, limits: &ConnectionLimits) -> Self {
        Self {
            io,
            timer: Box::pin(tokio::time::sleep(limits.handshake_timeout)),
            read: 0,
            idle: limits.idle_timeout,
        }
    }
}

impl<IO: Connected> Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                self.read = self.read.saturating_add(n);
                // Until the handshake is in, the deadline stays fixed: trickling a byte at a
                // time must not extend it.
                if n > 0 && self.read >= HANDSHAKE_BYTES {
                    let next = Instant::now() + self.idle;
                    self.timer.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let what = if self.read < HANDSHAKE_BYTES {
                        "no HTTP/2 preface within the handshake timeout"
                    } else {
                        "nothing received within the idle timeout"
                    };
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)))
                }
                Poll::Pending => Poll::Pending,
            },
            error => error,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(handshake: u64, idle: u64) -> ConnectionLimits {
        ConnectionLimits {
            handshake_timeout: Duration::from_millis(handshake),
            idle_timeout: Duration::from_millis(idle),
            ..ConnectionLimits::default()
        }
    }

    #[tokio::test]
    async fn a_connection_without_a_preface_times_out_even_when_it_trickles() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut guarded = Guarded::new(server, &limits(300, 60_000));
        let trickle = tokio::spawn(async move {
            // One byte every 100 ms for 3 s, never the 33 bytes of a handshake: a deadline
            // that each byte pushed back would only pass after the trickle ends.
            for _ in 0..30 {
                if client.write_all(b"P").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            client
        });
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let err = loop {
            match guarded.read(&mut buf).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => panic!("EOF instead of a timeout"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // 300 ms expected; 3 s and more only if the trickle extended the deadline.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        trickle.abort();
    }

    #[tokio::test]
    async fn after_the_handshake_only_silence_times_out() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut guarded = Guarded::new(server, &limits(5_000, 300));
        client.write_all(&[0u8; HANDSHAKE_BYTES]).await.unwrap();
        let mut buf = [0u8; 64];
        let mut read = 0;
        while read < HANDSHAKE_BYTES {
            read += guarded.read(&mut buf).await.unwrap();
        }
        // Traffic keeps it open past the idle timeout...
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(guarded.read(&mut buf).await.unwrap(), 1);
        }
        // ...silence closes it.
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn limits_that_cannot_hold_together_are_refused() {
        assert!(ConnectionLimits::default().check().is_ok());
        let short_idle = ConnectionLimits {
            idle_timeout: Duration::from_secs(35),
            ..ConnectionLimits::default()
        };
        assert!(short_idle.check().unwrap_err().contains("idle timeout"));
        let zero = ConnectionLimits {
            handshake_timeout: Duration::ZERO,
            ..ConnectionLimits::default()
        };
        assert!(zero.check().is_err());
    }
}
