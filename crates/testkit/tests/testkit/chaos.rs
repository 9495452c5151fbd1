//! The chaos proxy against a real Postgres: queries pass, a cut fails them fast, a restore lets
//! new connections in, a stall makes clients time out and then resume, and a drop ends it all.

use std::time::{Duration, Instant};
use testkit::{ChaosMode, ChaosProxy, TestDb, Upstream};
use tokio_postgres::{Client, NoTls};

/// How fast a cut must show: far below any client timeout the tests use.
const FAST: Duration = Duration::from_secs(2);

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn one(client: &Client) -> Result<i32, tokio_postgres::Error> {
    Ok(client.query_one("SELECT 1", &[]).await?.get(0))
}

async fn proxied() -> (TestDb, ChaosProxy, String) {
    let db = TestDb::empty().await;
    let proxy = ChaosProxy::for_postgres(&db.url())
        .await
        .expect("start the proxy");
    let url = proxy.postgres_url(&db.url());
    (db, proxy, url)
}

#[tokio::test]
async fn queries_pass_through_to_the_same_database() {
    let (db, proxy, url) = proxied().await;
    assert!(url.contains(&format!("port={}", proxy.port())), "{url}");
    let client = connect(&url).await.expect("connect through the proxy");
    let current: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(current, db.name());
    assert_eq!(proxy.mode(), ChaosMode::Pass);
    assert_eq!(proxy.open_connections(), 1);
}

#[tokio::test]
async fn a_cut_fails_queries_and_connections_fast_and_a_restore_lets_new_ones_in() {
    let (_db, proxy, url) = proxied().await;
    let client = connect(&url).await.expect("connect");
    assert_eq!(one(&client).await.expect("before the cut"), 1);

    proxy.cut();
    let started = Instant::now();
    let query = tokio::time::timeout(FAST, one(&client)).await;
    assert!(
        matches!(query, Ok(Err(_))),
        "a query over a cut connection must fail, not hang: {query:?}"
    );
    let connecting = tokio::time::timeout(FAST, connect(&url)).await;
    assert!(
        matches!(connecting, Ok(Err(_))),
        "a new connection during a cut must fail: {:?}",
        connecting.map(|r| r.map(|_| "connected"))
    );
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());

    proxy.restore();
    let again = connect(&url).await.expect("connect after the restore");
    assert_eq!(one(&again).await.expect("after the restore"), 1);
    // The connection closed by the cut stays closed.
    assert!(one(&client).await.is_err());
}

#[tokio::test]
async fn a_stall_makes_client_timeouts_fire_then_the_connection_resumes() {
    let (_db, proxy, url) = proxied().await;
    let client = connect(&url).await.expect("connect");
    assert_eq!(one(&client).await.expect("before the stall"), 1);

    proxy.stall();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let query = tokio::time::timeout(timeout, one(&client)).await;
    assert!(query.is_err(), "a stalled query must time out: {query:?}");
    assert!(started.elapsed() < timeout + FAST);
    // A new connection is accepted but its handshake never answered.
    let connecting = tokio::time::timeout(timeout, connect(&url)).await;
    assert!(connecting.is_err(), "a handshake must stall too");
    assert_eq!(proxy.open_connections(), 2);

    proxy.restore();
    // Not cut: the same connection works again.
    let answer = tokio::time::timeout(FAST, one(&client)).await;
    assert_eq!(
        answer.expect("answered after the restore").expect("query"),
        1
    );
}

#[tokio::test]
async fn a_cut_during_a_stall_closes_the_stalled_connections() {
    let (_db, proxy, url) = proxied().await;
    let client = connect(&url).await.expect("connect");
    proxy.stall();
    let pending = tokio::spawn(async move { one(&client).await.map_err(|e| e.to_string()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished());
    proxy.cut();
    let result = tokio::time::timeout(FAST, pending)
        .await
        .expect("the stalled query ends with the cut")
        .expect("join");
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections_and_its_port() {
    let (_db, proxy, url) = proxied().await;
    let client = connect(&url).await.expect("connect");
    assert_eq!(one(&client).await.expect("query"), 1);
    let addr = proxy.addr();
    drop(proxy);
    let query = tokio::time::timeout(FAST, one(&client)).await;
    assert!(matches!(query, Ok(Err(_))), "{query:?}");
    let deadline = Instant::now() + FAST;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "{addr} still accepts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_tcp_upstream_is_forwarded_byte_for_byte() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = echo.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let proxy = ChaosProxy::start(Upstream::Tcp(target))
        .await
        .expect("start");
    assert_eq!(proxy.upstream(), &Upstream::Tcp(target));
    let mut stream = tokio::net::TcpStream::connect(proxy.addr())
        .await
        .expect("connect");
    let sent: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = stream.split();
    let write = async {
        w.write_all(&sent).await.expect("write");
        w.shutdown().await.expect("shutdown");
    };
    let mut received = Vec::new();
    let read = r.read_to_end(&mut received);
    let ((), read) = tokio::join!(write, read);
    read.expect("read");
    assert_eq!(received, sent);
}
