//! Tests of the per-test database harness, against `DATABASE_URL` or a throwaway cluster.

use std::str::FromStr as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use testkit::{TestDb, pg_server};

async fn database_exists(name: &str) -> bool {
    let admin = pg_server().await.admin().await;
    let row = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .expect("query pg_database");
    row.get::<_, i64>(0) == 1
}

async fn table_exists(db: &TestDb, table: &str) -> bool {
    let client = db.client().await;
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .expect("query to_regclass");
    row.get(0)
}

/// Migration used by the template tests: one table, connection closed before returning.
async fn migrate_widgets(url: String) {
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect to template");
    let conn = tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE widgets (id int PRIMARY KEY, name text NOT NULL)")
        .await
        .expect("create widgets");
    drop(client);
    conn.await.expect("join").expect("connection");
}

#[tokio::test]
async fn two_databases_are_distinct_and_isolated() {
    let a = TestDb::empty().await;
    let b = TestDb::empty().await;
    assert_ne!(a.name(), b.name());
    assert!(database_exists(a.name()).await);
    assert!(database_exists(b.name()).await);

    let ca = a.client().await;
    ca.batch_execute("CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (1)")
        .await
        .expect("create in a");
    let current: String = ca
        .query_one("SELECT current_database()", &[])
        .await
        .expect("current_database")
        .get(0);
    assert_eq!(current, a.name());
    assert!(table_exists(&a, "only_in_a").await);
    assert!(!table_exists(&b, "only_in_a").await);
}

#[tokio::test]
async fn template_migrates_once_and_both_clones_have_its_table() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let migrate = |url: String| async move {
        RUNS.fetch_add(1, Ordering::SeqCst);
        migrate_widgets(url).await;
    };
    // Concurrently, so the once-per-key logic is exercised under contention.
    let (a, b) = tokio::join!(
        TestDb::create("widgets-once", migrate),
        TestDb::create("widgets-once", migrate)
    );
    let c = TestDb::create("widgets-once", migrate).await;
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    assert_ne!(a.name(), b.name());
    assert_ne!(b.name(), c.name());
    for db in [&a, &b, &c] {
        assert!(
            table_exists(db, "widgets").await,
            "{} lacks widgets",
            db.name()
        );
    }
    // Clones are independent copies.
    a.client()
        .await
        .batch_execute("INSERT INTO widgets VALUES (1, 'one')")
        .await
        .expect("insert");
    let count: i64 = b
        .client()
        .await
        .query_one("SELECT count(*) FROM widgets", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn different_keys_get_different_templates() {
    let with = TestDb::create("widgets-other", migrate_widgets).await;
    let without = TestDb::create("nothing", |_url| async {}).await;
    assert!(table_exists(&with, "widgets").await);
    assert!(!table_exists(&without, "widgets").await);
}

#[tokio::test]
async fn drop_removes_the_database_even_with_an_open_connection() {
    let db = TestDb::empty().await;
    let name = db.name().to_owned();
    let client = db.client().await;
    client.batch_execute("SELECT 1").await.expect("query");
    assert!(database_exists(&name).await);
    drop(db);
    let deadline = Instant::now() + Duration::from_secs(5);
    while database_exists(&name).await {
        assert!(Instant::now() < deadline, "{name} still exists after drop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The forced drop terminated our session.
    assert!(client.batch_execute("SELECT 1").await.is_err());
}

#[test]
fn drop_works_outside_any_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = runtime.block_on(TestDb::empty());
    let name = db.name().to_owned();
    drop(runtime);
    drop(db);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    assert!(!runtime.block_on(database_exists(&name)));
}

#[tokio::test]
async fn urls_parse_and_point_at_the_database() {
    let db = TestDb::empty().await;
    let config = tokio_postgres::Config::from_str(&db.url()).expect("url parses");
    assert_eq!(config.get_dbname(), Some(db.name()));
    let server_url = pg_server().await.url("postgres");
    let config = tokio_postgres::Config::from_str(&server_url).expect("server url parses");
    assert_eq!(config.get_dbname(), Some("postgres"));
    let (client, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect via url()");
    tokio::spawn(conn);
    let current: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(current, db.name());
}

#[tokio::test]
async fn uses_database_url_or_a_throwaway_cluster() {
    let server = pg_server().await;
    let env_set = std::env::var("DATABASE_URL").is_ok_and(|u| !u.trim().is_empty());
    assert_eq!(server.is_throwaway(), !env_set);
    assert_eq!(server.log_path().is_some(), !env_set);
    let admin = server.admin().await;
    let version: i32 = admin
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .expect("version")
        .get(0);
    assert!(version >= 130000, "{version}");
    if server.is_throwaway() {
        // Socket only, fsync off.
        let row = admin
            .query_one(
                "SELECT current_setting('listen_addresses'), current_setting('fsync')",
                &[],
            )
            .await
            .expect("settings");
        assert_eq!(row.get::<_, String>(0), "");
        assert_eq!(row.get::<_, String>(1), "off");
    }
}
