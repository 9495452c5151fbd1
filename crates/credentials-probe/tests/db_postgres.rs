//! PostgreSQL (and Redshift, which speaks its protocol) against a real server: a throwaway
//! cluster with password authentication on 127.0.0.1 (testkit), one database and role per test.

#![allow(clippy::unwrap_used)]

mod db_support;

use credentials_core::schema::{
    Column, DatabaseSchema, DiscoveryOptions, SchemaNamespace, Table, TableKind,
};
use credentials_probe::ValidationOutcome;
use db_support::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(1);

/// A database owned by a fresh role whose password is [`MARKER`]; both dropped on drop.
struct Fixture {
    db: String,
    role: String,
    port: u16,
}

impl Fixture {
    async fn new(setup_sql: &str) -> Fixture {
        let pg = testkit::password_pg().await;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let fixture = Fixture {
            db: format!("probe_{}_{n}", std::process::id()),
            role: format!("probe_role_{}_{n}", std::process::id()),
            port: pg.port(),
        };
        let admin = pg.admin("postgres").await;
        // Separate statements: CREATE DATABASE cannot run in a multi-statement batch.
        for sql in [
            format!("CREATE ROLE {} LOGIN PASSWORD '{MARKER}'", fixture.role),
            format!("CREATE DATABASE {} OWNER {}", fixture.db, fixture.role),
        ] {
            admin.batch_execute(&sql).await.unwrap();
        }
        if !setup_sql.is_empty() {
            let (client, conn) = tokio_postgres::connect(
                &pg.url(&fixture.role, MARKER, &fixture.db),
                tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            let task = tokio::spawn(conn);
            client.batch_execute(setup_sql).await.unwrap();
            drop(client);
            let _ = task.await;
        }
        fixture
    }

    fn url(&self, password: &str) -> String {
        format!(
            "postgresql://{}:{password}@127.0.0.1:{}/{}",
            self.role, self.port, self.db
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let (db, role) = (self.db.clone(), self.role.clone());
        // A runtime of its own: Drop cannot await, and the test's runtime may be gone.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let pg = testkit::password_pg().await;
                let url = pg.url("postgres", pg.superuser_password(), "postgres");
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let task = tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .await;
                let _ = client
                    .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
                    .await;
                drop(client);
                let _ = task.await;
            });
        })
        .join();
    }
}

#[tokio::test]
async fn good_password_is_valid_and_wrong_one_is_invalid() {
    let f = Fixture::new("").await;
    let prober = prober(Duration::from_secs(10));

    let good = prober
        .validate(
            "postgresql",
            &value("postgresql", &[("connection_string", &f.url(MARKER))]),
        )
        .await;
    expect(&good, ValidationOutcome::Valid, &[MARKER]);
    assert_eq!(
        good.message,
        format!("logged in as {} and ran SELECT 1", f.role)
    );

    let wrong = prober
        .validate(
            "postgresql",
            &value(
                "postgresql",
                &[("connection_string", &f.url("Wrong-Pw-MARKER-77"))],
            ),
        )
        .await;
    expect(
        &wrong,
        ValidationOutcome::InvalidCredentials,
        &["Wrong-Pw-MARKER-77"],
    );
    assert!(
        wrong
            .message
            .contains(&format!("authentication failed for user '{}'", f.role)),
        "{}",
        wrong.message
    );

    // The key=value form, through tools `database`, and Redshift (same wire protocol).
    let kv = format!(
        "host=localhost port={} user={} password='{MARKER}' dbname={} sslmode=prefer",
        f.port, f.role, f.db
    );
    let tools = prober
        .validate(
            "database",
            &value(
                "database",
                &[("schema_type", "postgresql"), ("connection_string", &kv)],
            ),
        )
        .await;
    expect(&tools, ValidationOutcome::Valid, &[MARKER]);
    let redshift = prober
        .validate(
            "redshift",
            &value("redshift", &[("connection_string", &f.url(MARKER))]),
        )
        .await;
    expect(&redshift, ValidationOutcome::Valid, &[MARKER]);
}

#[tokio::test]
async fn missing_database_and_missing_privilege() {
    let f = Fixture::new("").await;
    let prober = prober(Duration::from_secs(10));
    let url = format!(
        "postgresql://{}:{MARKER}@127.0.0.1:{}/no_such_db_here",
        f.role, f.port
    );
    let missing = prober
        .validate(
            "postgresql",
            &value("postgresql", &[("connection_string", &url)]),
        )
        .await;
    expect(&missing, ValidationOutcome::InvalidCredentials, &[MARKER]);
    assert!(
        missing
            .message
            .contains("the database 'no_such_db_here' does not exist"),
        "{}",
        missing.message
    );

    // A second role without CONNECT on the fixture's database.
    let pg = testkit::password_pg().await;
    let admin = pg.admin("postgres").await;
    let outsider = format!("{}_out", f.role);
    admin
        .batch_execute(&format!(
            "REVOKE CONNECT ON DATABASE {} FROM PUBLIC; CREATE ROLE {outsider} LOGIN PASSWORD '{MARKER}';",
            f.db
        ))
        .await
        .unwrap();
    let url = format!(
        "postgresql://{outsider}:{MARKER}@127.0.0.1:{}/{}",
        f.port, f.db
    );
    let denied = prober
        .validate(
            "postgresql",
            &value("postgresql", &[("connection_string", &url)]),
        )
        .await;
    admin
        .batch_execute(&format!("DROP ROLE {outsider}"))
        .await
        .unwrap();
    expect(
        &denied,
        ValidationOutcome::InsufficientPermissions,
        &[MARKER],
    );
    assert!(
        denied.message.contains(&format!(
            "permission denied for user '{outsider}' on database '{}'",
            f.db
        )),
        "{}",
        denied.message
    );
}

/// The test cluster serves TLS with a certificate from a throwaway CA: verify-full refuses it.
#[tokio::test]
async fn verify_full_refuses_a_certificate_no_public_ca_signed() {
    let f = Fixture::new("").await;
    let url = format!("{}?sslmode=verify-full", f.url(MARKER));
    let result = prober(Duration::from_secs(10))
        .validate(
            "postgresql",
            &value("postgresql", &[("connection_string", &url)]),
        )
        .await;
    expect(&result, ValidationOutcome::ProviderError, &[MARKER]);
    assert!(result.message.contains("TLS"), "{}", result.message);
}

/// To an address not allowed for cleartext (here loopback with `--egress-allow-verified`, as a
/// public address), `require` gets verify-full: the test cluster's throwaway CA is refused and
/// nothing is sent. Where the operator allowed cleartext, `require` keeps libpq's meaning.
#[tokio::test]
async fn require_to_a_public_address_is_verified_like_verify_full() {
    let f = Fixture::new("").await;
    let url = format!("{}?sslmode=require", f.url(MARKER));
    let value = value("postgresql", &[("connection_string", &url)]);
    let public = verified_only_prober(Duration::from_secs(10))
        .validate("postgresql", &value)
        .await;
    expect(&public, ValidationOutcome::ProviderError, &[MARKER]);
    assert!(
        public.message.contains("not signed by a trusted authority")
            && public.message.contains("always verified"),
        "{}",
        public.message
    );
    let allowed = prober(Duration::from_secs(10))
        .validate("postgresql", &value)
        .await;
    expect(&allowed, ValidationOutcome::Valid, &[MARKER]);

    // With the cluster's CA among the probe's roots (--probe-ca-file), the upgraded
    // verify-full succeeds: its certificate names 127.0.0.1.
    let ca = testkit::password_pg().await.ca_pem().to_owned();
    let trusting = credentials_probe::Prober::new(credentials_probe::ProbeConfig {
        timeout: Duration::from_secs(10),
        egress: credentials_probe::EgressPolicy::new()
            .allow_verified(["127.0.0.0/8".parse().unwrap()])
            .trust_pem(ca.as_bytes())
            .unwrap(),
        ..credentials_probe::ProbeConfig::default()
    });
    let verified = trusting.validate("postgresql", &value).await;
    expect(&verified, ValidationOutcome::Valid, &[MARKER]);
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let url = format!("postgresql://u:{MARKER}@127.0.0.1:{}/db", closed_port());
    let result = prober(Duration::from_secs(10))
        .validate(
            "postgresql",
            &value("postgresql", &[("connection_string", &url)]),
        )
        .await;
    expect(&result, ValidationOutcome::Unreachable, &[MARKER]);
    assert!(result.message.contains("refused"), "{}", result.message);
}

#[tokio::test]
async fn silent_server_times_out_within_the_deadline() {
    let port = silent_server().await;
    let timeout = Duration::from_millis(1500);
    let url = format!("postgresql://u:{MARKER}@127.0.0.1:{port}/db");
    let started = Instant::now();
    let result = prober(timeout)
        .validate(
            "postgresql",
            &value("postgresql", &[("connection_string", &url)]),
        )
        .await;
    assert_within(started.elapsed(), timeout);
    expect(&result, ValidationOutcome::TimedOut, &[MARKER]);
}

#[tokio::test]
async fn default_policy_refuses_loopback_without_dialling() {
    let wire = Tripwire::new();
    for url in [
        format!("postgresql://u:{MARKER}@127.0.0.1:{}/db", wire.port()),
        format!(
            "host=localhost port={} user=u password={MARKER}",
            wire.port()
        ),
        format!(
            "host=db.example.com hostaddr=127.0.0.1 port={} user=u password={MARKER}",
            wire.port()
        ),
    ] {
        let result = default_prober()
            .validate(
                "postgresql",
                &value("postgresql", &[("connection_string", &url)]),
            )
            .await;
        expect(&result, ValidationOutcome::EgressDenied, &[MARKER]);
        assert!(
            result.message.contains("--egress-allow"),
            "{}",
            result.message
        );
    }
    wire.assert_untouched();
    let socket = prober(Duration::from_secs(5))
        .validate(
            "postgresql",
            &value(
                "postgresql",
                &[(
                    "connection_string",
                    &format!("host=/var/run/postgresql user=u password={MARKER}"),
                )],
            ),
        )
        .await;
    expect(&socket, ValidationOutcome::EgressDenied, &[MARKER]);
}

const SCHEMA_SQL: &str = r#"
CREATE SCHEMA shop;
CREATE TABLE shop.order_lines (
  order_id integer NOT NULL,
  line_no smallint NOT NULL,
  sku character varying(64) NOT NULL,
  price numeric(10,2) DEFAULT 0.00,
  note text,
  created_at timestamp with time zone NOT NULL DEFAULT now(),
  PRIMARY KEY (line_no, order_id)
);
COMMENT ON TABLE shop.order_lines IS 'One line per product ordered';
COMMENT ON COLUMN shop.order_lines.sku IS 'Stock keeping unit';
CREATE VIEW shop.big_lines AS SELECT order_id, price FROM shop.order_lines WHERE price > 100;
COMMENT ON VIEW shop.big_lines IS 'Lines above 100';
CREATE MATERIALIZED VIEW shop.totals AS
  SELECT order_id, sum(price) AS total FROM shop.order_lines GROUP BY order_id;
CREATE TABLE public.customers (id bigserial PRIMARY KEY, "Display Name" text NOT NULL, tmp integer);
ALTER TABLE public.customers DROP COLUMN tmp;
ALTER TABLE public.customers ADD COLUMN active boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN public.customers.active IS 'Can log in';
CREATE SCHEMA audit;
CREATE TABLE audit.events (id integer);
"#;

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

fn expected_schema() -> DatabaseSchema {
    DatabaseSchema {
        namespaces: vec![
            SchemaNamespace {
                name: "audit".into(),
                tables: vec![Table {
                    name: "events".into(),
                    kind: TableKind::Table,
                    description: String::new(),
                    columns: vec![col("id", "integer", true, 1)],
                    primary_key: vec![],
                }],
            },
            SchemaNamespace {
                name: "public".into(),
                tables: vec![Table {
                    name: "customers".into(),
                    kind: TableKind::Table,
                    description: String::new(),
                    columns: vec![
                        Column {
                            default_value: Some("nextval('customers_id_seq'::regclass)".into()),
                            ..col("id", "bigint", false, 1)
                        },
                        col("Display Name", "text", false, 2),
                        Column {
                            default_value: Some("true".into()),
                            description: "Can log in".into(),
                            ..col("active", "boolean", false, 4)
                        },
                    ],
                    primary_key: vec!["id".into()],
                }],
            },
            SchemaNamespace {
                name: "shop".into(),
                tables: vec![
                    Table {
                        name: "big_lines".into(),
                        kind: TableKind::View,
                        description: "Lines above 100".into(),
                        columns: vec![
                            col("order_id", "integer", true, 1),
                            col("price", "numeric(10,2)", true, 2),
                        ],
                        primary_key: vec![],
                    },
                    Table {
                        name: "order_lines".into(),
                        kind: TableKind::Table,
                        description: "One line per product ordered".into(),
                        columns: vec![
                            col("order_id", "integer", false, 1),
                            col("line_no", "smallint", false, 2),
                            Column {
                                description: "Stock keeping unit".into(),
                                ..col("sku", "character varying(64)", false, 3)
                            },
                            Column {
                                default_value: Some("0.00".into()),
                                ..col("price", "numeric(10,2)", true, 4)
                            },
                            col("note", "text", true, 5),
                            Column {
                                default_value: Some("now()".into()),
                                ..col("created_at", "timestamp with time zone", false, 6)
                            },
                        ],
                        primary_key: vec!["line_no".into(), "order_id".into()],
                    },
                    Table {
                        name: "totals".into(),
                        kind: TableKind::View,
                        description: String::new(),
                        columns: vec![
                            col("order_id", "integer", true, 1),
                            col("total", "numeric", true, 2),
                        ],
                        primary_key: vec![],
                    },
                ],
            },
        ],
        truncated: false,
        truncation: None,
    }
}

#[tokio::test]
async fn discovery_reads_exactly_what_the_database_holds() {
    let f = Fixture::new(SCHEMA_SQL).await;
    let prober = prober(Duration::from_secs(10));
    let v = value("postgresql", &[("connection_string", &f.url(MARKER))]);
    let schema = prober
        .discover_schema("postgresql", &v, &DiscoveryOptions::default())
        .await
        .unwrap();
    assert_eq!(schema, expected_schema());
    assert_eq!(schema.table_count(), 5);

    let ddl = schema.to_ddl();
    for line in [
        "CREATE TABLE audit.events (\n  id integer\n);\n",
        "  id bigint NOT NULL DEFAULT nextval('customers_id_seq'::regclass),\n",
        "  \"Display Name\" text NOT NULL,\n",
        "  active boolean NOT NULL DEFAULT true, -- Can log in\n",
        "-- Lines above 100\nCREATE VIEW shop.big_lines (\n",
        "-- One line per product ordered\nCREATE TABLE shop.order_lines (\n",
        "  sku character varying(64) NOT NULL, -- Stock keeping unit\n",
        "  price numeric(10,2) DEFAULT 0.00,\n",
        "  PRIMARY KEY (line_no, order_id)\n);\n",
        "CREATE VIEW shop.totals (\n",
    ] {
        assert!(ddl.contains(line), "{line:?} missing from:\n{ddl}");
    }

    // Tools `database` of engine postgresql discovers the same.
    let tools = value(
        "database",
        &[
            ("schema_type", "postgresql"),
            ("connection_string", &f.url(MARKER)),
        ],
    );
    assert_eq!(
        prober
            .discover_schema("database", &tools, &DiscoveryOptions::default())
            .await
            .unwrap(),
        expected_schema()
    );
}

#[tokio::test]
async fn discovery_filters_truncates_and_reports_failures() {
    let f = Fixture::new(SCHEMA_SQL).await;
    let prober = prober(Duration::from_secs(10));
    let v = value("postgresql", &[("connection_string", &f.url(MARKER))]);

    let only_shop = prober
        .discover_schema(
            "postgresql",
            &v,
            &DiscoveryOptions {
                include_schemas: vec!["shop".into(), "audit".into()],
                exclude_schemas: vec!["audit".into()],
                ..DiscoveryOptions::default()
            },
        )
        .await
        .unwrap();
    let mut expected = expected_schema();
    expected.namespaces.retain(|n| n.name == "shop");
    assert_eq!(only_shop, expected);

    let first_two = prober
        .discover_schema(
            "postgresql",
            &v,
            &DiscoveryOptions {
                max_tables: 2,
                ..DiscoveryOptions::default()
            },
        )
        .await
        .unwrap();
    let mut expected = expected_schema();
    expected.namespaces.truncate(2);
    expected.truncated = true;
    expected.truncation = Some(credentials_core::schema::Truncation::TableLimit);
    assert_eq!(first_two, expected);
    assert!(
        first_two
            .to_ddl()
            .ends_with("-- (truncated: more tables exist than were discovered)\n")
    );

    let wrong = value(
        "postgresql",
        &[("connection_string", &f.url("Wrong-Pw-MARKER-77"))],
    );
    let err = prober
        .discover_schema("postgresql", &wrong, &DiscoveryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.outcome, ValidationOutcome::InvalidCredentials, "{err}");
    assert!(!err.message.contains("Wrong-Pw-MARKER-77"));

    let port = silent_server().await;
    let silent = value(
        "postgresql",
        &[(
            "connection_string",
            &format!("postgresql://u:{MARKER}@127.0.0.1:{port}/db"),
        )],
    );
    let timeout = Duration::from_millis(800);
    let started = Instant::now();
    let err = prober
        .discover_schema(
            "postgresql",
            &silent,
            &DiscoveryOptions {
                timeout,
                ..DiscoveryOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_within(started.elapsed(), timeout);
    assert_eq!(err.outcome, ValidationOutcome::TimedOut, "{err}");

    let denied = default_prober()
        .discover_schema("postgresql", &v, &DiscoveryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(denied.outcome, ValidationOutcome::EgressDenied, "{denied}");
    assert!(!denied.message.contains(MARKER));
}

#[tokio::test]
async fn discovery_stops_at_the_row_budget_and_says_so() {
    // 33 tables of 1600 columns (PostgreSQL's most): more column rows than a discovery reads.
    let f = Fixture::new(
        "DO $$ BEGIN FOR t IN 1..33 LOOP
           EXECUTE format('CREATE TABLE wide_%s (%s)', t,
             (SELECT string_agg('c' || i || ' int', ', ') FROM generate_series(1, 1600) i));
         END LOOP; END $$;",
    )
    .await;
    let prober = prober(Duration::from_secs(60));
    let v = value("postgresql", &[("connection_string", &f.url(MARKER))]);
    let schema = prober
        .discover_schema("postgresql", &v, &DiscoveryOptions::default())
        .await
        .unwrap();
    // The columns read (the budget's worth) do not fit a stored schema either: the document
    // keeps the tables that fit, and the first budget hit is the reason given.
    let columns: usize = schema
        .namespaces
        .iter()
        .flat_map(|n| &n.tables)
        .map(|t| t.columns.len())
        .sum();
    assert!(
        columns < credentials_core::schema::MAX_CATALOGUE_ROWS,
        "{columns}"
    );
    assert!(schema.table_count() < 33, "{}", schema.table_count());
    let json = serde_json::to_vec(&schema).unwrap();
    assert!(json.len() <= credentials_core::schema::MAX_SCHEMA_BYTES);
    assert!(schema.truncated);
    assert_eq!(
        schema.truncation,
        Some(credentials_core::schema::Truncation::RowBudget)
    );
    assert!(
        schema
            .to_ddl()
            .ends_with("-- (truncated: the catalogue has more rows than a discovery reads)\n")
    );
}
