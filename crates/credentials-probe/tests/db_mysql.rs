//! MySQL/MariaDB against the machine's server on 127.0.0.1:3306 (root, empty password): one
//! database and one password user (for `localhost` and `127.0.0.1`) per test.

#![allow(clippy::unwrap_used)]

mod db_support;

use credentials_core::schema::{
    Column, DatabaseSchema, DiscoveryOptions, SchemaNamespace, Table, TableKind,
};
use credentials_probe::ValidationOutcome;
use db_support::*;
use mysql_async::prelude::Queryable;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const ROOT_URL: &str = "mysql://root@127.0.0.1:3306";

static COUNTER: AtomicU32 = AtomicU32::new(1);

async fn root_exec(statements: &[String]) {
    let mut conn = mysql_async::Conn::from_url(ROOT_URL)
        .await
        .unwrap_or_else(|e| {
            panic!("MariaDB must run on 127.0.0.1:3306 with a password-less root: {e}")
        });
    for sql in statements {
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.disconnect().await.unwrap();
}

/// A database and a user with password [`MARKER`] granted all on it; both dropped on drop.
struct Fixture {
    db: String,
    user: String,
}

impl Fixture {
    async fn new(setup: &[&str]) -> Fixture {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let f = Fixture {
            db: format!("probe_{}_{n}", std::process::id()),
            user: format!("probe_u_{}_{n}", std::process::id()),
        };
        let mut sql = vec![format!("CREATE DATABASE {}", f.db)];
        for host in ["localhost", "127.0.0.1"] {
            sql.push(format!(
                "CREATE USER '{}'@'{host}' IDENTIFIED BY '{MARKER}'",
                f.user
            ));
            sql.push(format!("GRANT ALL ON {}.* TO '{}'@'{host}'", f.db, f.user));
        }
        sql.extend(setup.iter().map(|s| s.replace("$DB", &f.db)));
        root_exec(&sql).await;
        f
    }

    fn url(&self, password: &str) -> String {
        format!(
            "mysql://{}:{password}@127.0.0.1:3306/{}",
            self.user, self.db
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let sql = vec![
            format!("DROP DATABASE IF EXISTS {}", self.db),
            format!(
                "DROP USER IF EXISTS '{}'@'localhost', '{}'@'127.0.0.1'",
                self.user, self.user
            ),
        ];
        // A runtime of its own: Drop cannot await, and the test's runtime may be gone.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(root_exec(&sql));
        })
        .join();
    }
}

fn mysql(url: &str) -> credentials_core::SecretValue {
    value("mysql", &[("connection_string", url)])
}

#[tokio::test]
async fn good_password_is_valid_and_wrong_one_is_invalid() {
    let f = Fixture::new(&[]).await;
    let prober = prober(Duration::from_secs(10));
    let good = prober.validate("mysql", &mysql(&f.url(MARKER))).await;
    expect(&good, ValidationOutcome::Valid, &[MARKER]);
    assert_eq!(
        good.message,
        format!("logged in as {} and ran SELECT 1", f.user)
    );

    let wrong = prober
        .validate("mysql", &mysql(&f.url("Wrong-Pw-MARKER-77")))
        .await;
    expect(
        &wrong,
        ValidationOutcome::InvalidCredentials,
        &["Wrong-Pw-MARKER-77"],
    );
    assert!(
        wrong
            .message
            .contains(&format!("authentication failed for user '{}'", f.user)),
        "{}",
        wrong.message
    );

    // Through tools `database`, with the host given as a name.
    let by_name = format!("mysql://{}:{MARKER}@localhost:3306/{}", f.user, f.db);
    let tools = prober
        .validate(
            "database",
            &value(
                "database",
                &[("schema_type", "mysql"), ("connection_string", &by_name)],
            ),
        )
        .await;
    expect(&tools, ValidationOutcome::Valid, &[MARKER]);
}

/// To an address not allowed for cleartext (loopback with `--egress-allow-verified`, standing
/// for a public one), TLS is required and verified: the machine's MariaDB serves no TLS, so the
/// login is never attempted. Where cleartext is allowed the same URL logs in.
#[tokio::test]
async fn a_public_server_without_tls_never_gets_the_login() {
    let f = Fixture::new(&[]).await;
    let value = mysql(&f.url(MARKER));
    let public = verified_only_prober(Duration::from_secs(10))
        .validate("mysql", &value)
        .await;
    expect(&public, ValidationOutcome::ProviderError, &[MARKER]);
    assert!(
        public.message.contains("does not offer TLS"),
        "{}",
        public.message
    );
    let allowed = prober(Duration::from_secs(10))
        .validate("mysql", &value)
        .await;
    expect(&allowed, ValidationOutcome::Valid, &[MARKER]);
}

#[tokio::test]
async fn a_database_without_grant_is_insufficient_permissions() {
    let f = Fixture::new(&[]).await;
    let url = format!("mysql://{}:{MARKER}@127.0.0.1:3306/mysql", f.user);
    let result = prober(Duration::from_secs(10))
        .validate("mysql", &mysql(&url))
        .await;
    expect(
        &result,
        ValidationOutcome::InsufficientPermissions,
        &[MARKER],
    );
    assert!(
        result.message.contains(&format!(
            "permission denied for user '{}' on database 'mysql'",
            f.user
        )),
        "{}",
        result.message
    );
}

#[tokio::test]
async fn closed_port_silent_server_and_default_policy() {
    let prober = prober(Duration::from_secs(10));
    let closed = prober
        .validate(
            "mysql",
            &mysql(&format!(
                "mysql://u:{MARKER}@127.0.0.1:{}/db",
                closed_port()
            )),
        )
        .await;
    expect(&closed, ValidationOutcome::Unreachable, &[MARKER]);

    let port = silent_server().await;
    let timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let silent = db_support::prober(timeout)
        .validate(
            "mysql",
            &mysql(&format!("mysql://u:{MARKER}@127.0.0.1:{port}/db")),
        )
        .await;
    assert_within(started.elapsed(), timeout);
    expect(&silent, ValidationOutcome::TimedOut, &[MARKER]);

    let wire = Tripwire::new();
    for host in ["127.0.0.1", "localhost"] {
        let denied = default_prober()
            .validate(
                "mysql",
                &mysql(&format!("mysql://u:{MARKER}@{host}:{}/db", wire.port())),
            )
            .await;
        expect(&denied, ValidationOutcome::EgressDenied, &[MARKER]);
    }
    wire.assert_untouched();
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE $DB.order_lines (
       order_id INT NOT NULL,
       line_no SMALLINT NOT NULL,
       sku VARCHAR(64) NOT NULL COMMENT 'Stock keeping unit',
       price DECIMAL(10,2) DEFAULT 0.00,
       note TEXT,
       PRIMARY KEY (line_no, order_id)
     ) COMMENT='One line per product ordered'",
    "CREATE VIEW $DB.big_lines AS SELECT order_id, price FROM $DB.order_lines WHERE price > 100",
    "CREATE TABLE $DB.customers (
       id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
       name VARCHAR(100) NOT NULL DEFAULT 'anon',
       created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP
     )",
];

fn col(name: &str, data_type: &str, nullable: bool, position: u32) -> Column {
    Column {
        name: name.into(),
        data_type: data_type.into(),
        nullable,
        default_value: None,
        description: String::new(),
        position,
    }
}

/// What information_schema holds for [`SCHEMA`] on MariaDB 10.11 (literal defaults quoted,
/// expressions not; integer display widths kept).
fn expected_schema(db: &str) -> DatabaseSchema {
    DatabaseSchema {
        namespaces: vec![SchemaNamespace {
            name: db.into(),
            tables: vec![
                Table {
                    name: "big_lines".into(),
                    kind: TableKind::View,
                    description: String::new(),
                    columns: vec![
                        col("order_id", "int(11)", false, 1),
                        Column {
                            default_value: Some("0.00".into()),
                            ..col("price", "decimal(10,2)", true, 2)
                        },
                    ],
                    primary_key: vec![],
                },
                Table {
                    name: "customers".into(),
                    kind: TableKind::Table,
                    description: String::new(),
                    columns: vec![
                        col("id", "bigint(20)", false, 1),
                        Column {
                            default_value: Some("'anon'".into()),
                            ..col("name", "varchar(100)", false, 2)
                        },
                        Column {
                            default_value: Some("current_timestamp()".into()),
                            ..col("created_at", "timestamp", true, 3)
                        },
                    ],
                    primary_key: vec!["id".into()],
                },
                Table {
                    name: "order_lines".into(),
                    kind: TableKind::Table,
                    description: "One line per product ordered".into(),
                    columns: vec![
                        col("order_id", "int(11)", false, 1),
                        col("line_no", "smallint(6)", false, 2),
                        Column {
                            description: "Stock keeping unit".into(),
                            ..col("sku", "varchar(64)", false, 3)
                        },
                        Column {
                            default_value: Some("0.00".into()),
                            ..col("price", "decimal(10,2)", true, 4)
                        },
                        col("note", "text", true, 5),
                    ],
                    primary_key: vec!["line_no".into(), "order_id".into()],
                },
            ],
        }],
        truncated: false,
        truncation: None,
    }
}

#[tokio::test]
async fn discovery_reads_exactly_what_the_database_holds() {
    let f = Fixture::new(SCHEMA).await;
    let prober = prober(Duration::from_secs(10));
    // No include filter: the user sees its database and information_schema, which is left out.
    let schema = prober
        .discover_schema(
            "mysql",
            &mysql(&f.url(MARKER)),
            &DiscoveryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(schema, expected_schema(&f.db));

    let ddl = schema.to_ddl();
    for line in [
        format!(
            "CREATE VIEW {}.big_lines (\n  order_id int(11) NOT NULL,\n",
            f.db
        ),
        "  name varchar(100) NOT NULL DEFAULT 'anon',\n".to_owned(),
        format!(
            "-- One line per product ordered\nCREATE TABLE {}.order_lines (\n",
            f.db
        ),
        "  sku varchar(64) NOT NULL, -- Stock keeping unit\n".to_owned(),
        "  note text,\n  PRIMARY KEY (line_no, order_id)\n);\n".to_owned(),
    ] {
        assert!(ddl.contains(&line), "{line:?} missing from:\n{ddl}");
    }

    let truncated = prober
        .discover_schema(
            "mysql",
            &mysql(&f.url(MARKER)),
            &DiscoveryOptions {
                max_tables: 1,
                ..DiscoveryOptions::default()
            },
        )
        .await
        .unwrap();
    let mut expected = expected_schema(&f.db);
    expected.namespaces[0].tables.truncate(1);
    expected.truncated = true;
    expected.truncation = Some(credentials_core::schema::Truncation::TableLimit);
    assert_eq!(truncated, expected);

    let excluded = prober
        .discover_schema(
            "mysql",
            &mysql(&f.url(MARKER)),
            &DiscoveryOptions {
                exclude_schemas: vec![f.db.clone()],
                ..DiscoveryOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(excluded, DatabaseSchema::default());

    let err = prober
        .discover_schema(
            "mysql",
            &mysql(&f.url("Wrong-Pw-MARKER-77")),
            &DiscoveryOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.outcome, ValidationOutcome::InvalidCredentials, "{err}");
    assert!(!err.message.contains("Wrong-Pw-MARKER-77"));
}
