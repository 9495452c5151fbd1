//! A TCP proxy that fails on command, to test what a client does when its server (Postgres, the
//! kms) goes away, comes back, or stops answering.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let db = testkit::TestDb::empty().await;
//! // Listens on 127.0.0.1:<free port>, forwards to the database's server.
//! let proxy = testkit::ChaosProxy::for_postgres(&db.url()).await?;
//! // The same connection string, through the proxy: give this one to the code under test.
//! let url = proxy.postgres_url(&db.url());
//! # let _ = url;
//! proxy.cut(); // open connections are closed, new ones closed at once
//! proxy.restore(); // new connections work again
//! proxy.stall(); // connections stay open, nothing is forwarded: clients hit their timeouts
//! proxy.restore(); // stalled connections resume where they were
//! drop(proxy); // every task ends and every connection closes
//! # Ok(())
//! # }
//! ```
//!
//! Modes and what a client sees:
//!
//! | mode | open connections | new connections |
//! | --- | --- | --- |
//! | [`ChaosMode::Pass`] | bytes flow both ways | connected to the target |
//! | [`ChaosMode::Cut`] | closed (end of stream), at once | accepted, then closed at once |
//! | [`ChaosMode::Stall`] | kept open, nothing forwarded | accepted, kept open, target not dialled |
//!
//! A change of mode reaches every connection at once (a `watch` channel), so a test can assert
//! timing: after [`ChaosProxy::cut`] returns, no byte is forwarded any more. Bytes already read
//! from one side when a stall begins may still be delivered to the other.
//!
//! Bounded: all tasks are spawned on the runtime of [`ChaosProxy::start`] and owned by the
//! proxy; dropping the proxy ends them and closes every connection it holds.

use crate::server::base_from_config;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_postgres::config::Host;

/// What the proxy does with connections; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosMode {
    /// Forward everything (the initial mode, and what [`ChaosProxy::restore`] sets).
    Pass,
    /// Close every connection, open or new.
    Cut,
    /// Keep connections open and forward nothing.
    Stall,
}

/// Where a [`ChaosProxy`] forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix-domain socket (e.g. the throwaway cluster's `<dir>/.s.PGSQL.5432`).
    Unix(PathBuf),
}

/// A TCP proxy on `127.0.0.1:<free port>` that can cut, stall and restore the connections it
/// forwards. Dropping it stops it. See the [module docs](self) for an example.
pub struct ChaosProxy {
    addr: SocketAddr,
    upstream: Upstream,
    mode: watch::Sender<ChaosMode>,
    open: Arc<AtomicUsize>,
    /// The accept loop; it owns the connection tasks, so aborting it ends them all.
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ChaosProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("mode", &self.mode())
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

impl ChaosProxy {
    /// Listens on `127.0.0.1:0` and forwards each accepted connection to `upstream`, in
    /// [`ChaosMode::Pass`]. Must be called within a tokio runtime, which runs the proxy.
    pub async fn start(upstream: Upstream) -> io::Result<ChaosProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(ChaosMode::Pass);
        let open = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(
            listener,
            upstream.clone(),
            mode.subscribe(),
            open.clone(),
        ));
        Ok(ChaosProxy {
            addr,
            upstream,
            mode,
            open,
            task,
        })
    }

    /// A proxy in front of the server a libpq connection string names (its first host:
    /// `hostaddr` if given, else `host`, a Unix socket directory included), e.g. a
    /// [`crate::TestDb::url`]. Connect through it with [`ChaosProxy::postgres_url`].
    pub async fn for_postgres(url: &str) -> io::Result<ChaosProxy> {
        ChaosProxy::start(postgres_upstream(url).await?).await
    }

    /// `url` (a libpq connection string or URL) rewritten to go through this proxy: host
    /// `127.0.0.1` and the proxy's port; user, password, database and the other settings
    /// kept. Returned in key=value form.
    ///
    /// # Panics
    /// If `url` does not parse as a connection string.
    pub fn postgres_url(&self, url: &str) -> String {
        let config = tokio_postgres::Config::from_str(url)
            .unwrap_or_else(|e| panic!("testkit: not a PostgreSQL connection string: {e}"));
        let (base, _) = base_from_config(&config, Some(("127.0.0.1", self.addr.port())));
        match config.get_dbname() {
            Some(db) => format!("{base} dbname={}", crate::quote::conn_value(db)),
            None => base,
        }
    }

    /// The address clients connect to (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where connections are forwarded.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The current mode.
    pub fn mode(&self) -> ChaosMode {
        *self.mode.borrow()
    }

    /// Connections accepted and not yet closed (stalled ones included).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Closes every open connection and every new one, until [`ChaosProxy::restore`]: the
    /// server seems to have gone away.
    pub fn cut(&self) {
        self.set(ChaosMode::Cut);
    }

    /// Keeps connections open but forwards nothing, and accepts new ones without dialling
    /// the target, until [`ChaosProxy::restore`]: the server seems to hang, so clients hit
    /// their own timeouts.
    pub fn stall(&self) {
        self.set(ChaosMode::Stall);
    }

    /// Forwards again: new connections reach the target; stalled ones resume. Connections
    /// closed by a cut stay closed.
    pub fn restore(&self) {
        self.set(ChaosMode::Pass);
    }

    /// Sets the mode directly.
    pub fn set(&self, mode: ChaosMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        // Also ends the connection tasks: the accept loop owns their JoinSet.
        self.task.abort();
    }
}

/// The first server a connection string names.
async fn postgres_upstream(url: &str) -> io::Result<Upstream> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| invalid(format!("not a PostgreSQL connection string: {e}")))?;
    let port = config.get_ports().first().copied().unwrap_or(5432);
    if let Some(ip) = config.get_hostaddrs().first() {
        return Ok(Upstream::Tcp(SocketAddr::new(*ip, port)));
    }
    match config.get_hosts().first() {
        Some(Host::Unix(dir)) => Ok(Upstream::Unix(dir.join(format!(".s.PGSQL.{port}")))),
        Some(Host::Tcp(name)) => tokio::net::lookup_host((name.as_str(), port))
            .await?
            .next()
            .map(Upstream::Tcp)
            .ok_or_else(|| invalid(format!("{name} resolves to no address"))),
        None => Err(invalid("the connection string names no host".to_owned())),
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Upstream,
    mode: watch::Receiver<ChaosMode>,
    open: Arc<AtomicUsize>,
) {
    // Owned here so that aborting this task drops (and aborts) every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    // Out of file descriptors, say: let the tests' connections close.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                if *mode.borrow() == ChaosMode::Cut {
                    drop(client);
                    continue;
                }
                let guard = OpenGuard::new(&open);
                connections.spawn(serve(client, upstream.clone(), mode.clone(), guard));
            }
            // Reap finished connections so the set does not grow with every one.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::SeqCst);
        OpenGuard(open.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One client connection: wait while stalled, dial the target, then pump both ways.
async fn serve(
    client: TcpStream,
    upstream: Upstream,
    mut mode: watch::Receiver<ChaosMode>,
    _guard: OpenGuard,
) {
    if !wait_for_pass(&mut mode).await {
        return;
    }
    let (client_read, client_write) = tokio::io::split(client);
    match upstream {
        Upstream::Tcp(addr) => {
            let Ok(server) = TcpStream::connect(addr).await else {
                return;
            };
            let (server_read, server_write) = tokio::io::split(server);
            tokio::join!(
                pump(client_read, server_write, mode.clone()),
                pump(server_read, client_write, mode),
            );
        }
        Upstream::Unix(path) => {
            let Ok(server) = UnixStream::connect(path).await else {
                return;
            };
            let (server_read, server_write) = tokio::io::split(server);
            tokio::join!(
                pump(client_read, server_write, mode.clone()),
                pump(server_read, client_write, mode),
            );
        }
    }
}

/// Waits until the mode is [`ChaosMode::Pass`]; `false` when it is (or becomes) `Cut` or the
/// proxy is gone.
async fn wait_for_pass(mode: &mut watch::Receiver<ChaosMode>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            ChaosMode::Pass => return true,
            ChaosMode::Cut => return false,
            ChaosMode::Stall => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}

/// Copies `from` to `to` while the mode allows; returns (dropping both halves) on a cut, at the
/// end of either stream, or when the proxy is gone.
async fn pump<R, W>(mut from: R, mut to: W, mut mode: watch::Receiver<ChaosMode>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !wait_for_pass(&mut mode).await {
            return;
        }
        let n = tokio::select! {
            // A change of mode wins over data that is ready at the same moment.
            biased;
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
        };
        tokio::select! {
            written = to.write_all(&buf[..n]) => {
                if written.is_err() {
                    return;
                }
            }
            () = wait_for_cut(mode.clone()) => return,
        }
    }
}

/// Resolves when the mode becomes `Cut` or the proxy is gone.
async fn wait_for_cut(mut mode: watch::Receiver<ChaosMode>) {
    loop {
        if *mode.borrow_and_update() == ChaosMode::Cut || mode.changed().await.is_err() {
            return;
        }
    }
}
