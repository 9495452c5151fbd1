//! ClickHouse against a local server that follows ClickHouse's documented HTTP interface for the
//! queries the probe sends: `GET /?query=...&database=...`, credentials in `X-ClickHouse-User` /
//! `X-ClickHouse-Key`, chunked answers, `FORMAT JSONEachRow` with 64-bit integers quoted, and an
//! authentication failure as HTTP 403 with `X-ClickHouse-Exception-Code: 516` and a
//! `Code: 516. DB::Exception: ...` body. Debian's ClickHouse package is too old to use.

#![allow(clippy::unwrap_used)]

mod db_support;

use credentials_core::schema::{
    Column, DatabaseSchema, DiscoveryOptions, SchemaNamespace, Table, TableKind,
};
use credentials_probe::ValidationOutcome;
use db_support::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    query: String,
    database: Option<String>,
    user: Option<String>,
}

const TABLES: &str = r#"{"database":"analytics","name":"daily","engine":"View","comment":"","primary_key":""}
{"database":"analytics","name":"events","engine":"MergeTree","comment":"Raw events","primary_key":"event_date, user_id"}
{"database":"analytics","name":"sessions","engine":"ReplacingMergeTree","comment":"","primary_key":"toDate(started), user_id"}
{"database":"staging","name":"tmp","engine":"Memory","comment":"","primary_key":""}
"#;

/// `(database, JSONEachRow line)` of system.columns, in the query's order.
const COLUMNS: &[(&str, &str)] = &[
    (
        "analytics",
        r#"{"database":"analytics","table":"daily","name":"day","type":"Date","default_expression":"","comment":"","position":"1"}"#,
    ),
    (
        "analytics",
        r#"{"database":"analytics","table":"daily","name":"events","type":"UInt64","default_expression":"","comment":"","position":"2"}"#,
    ),
    (
        "analytics",
        r#"{"database":"analytics","table":"events","name":"event_date","type":"Date","default_expression":"","comment":"","position":"1"}"#,
    ),
    (
        "analytics",
        r#"{"database":"analytics","table":"events","name":"user_id","type":"UInt64","default_expression":"","comment":"Who","position":"2"}"#,
    ),
    (
        "analytics",
        r#"{"database":"analytics","table":"events","name":"kind","type":"LowCardinality(String)","default_expression":"'click'","comment":"","position":"3"}"#,
    ),
    (
        "analytics",
        r#"{"database":"analytics","table":"events","name":"referrer","type":"Nullable(String)","default_expression":"","comment":"Where from","position":"4"}"#,
    ),
    (
        "analytics",
        r#"{"database":"analytics","table":"sessions","name":"started","type":"DateTime","default_expression":"","comment":"","position":"1"}"#,
    ),
    (
        "analytics",
        r#"{"database":"analytics","table":"sessions","name":"user_id","type":"UInt64","default_expression":"","comment":"","position":"2"}"#,
    ),
    (
        "staging",
        r#"{"database":"staging","table":"tmp","name":"x","type":"Int32","default_expression":"","comment":"","position":"1"}"#,
    ),
];

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The answer ClickHouse gives to `query` (only the queries the probe sends are known).
fn answer(query: &str) -> (&'static str, String) {
    if query == "SELECT 1" {
        return ("200 OK", "1\n".into());
    }
    if query.starts_with("SELECT database, name, engine, comment, primary_key FROM system.tables")
        && query.contains(
            "WHERE database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema')",
        )
        && query.ends_with("FORMAT JSONEachRow")
    {
        return ("200 OK", TABLES.into());
    }
    if let Some(rest) = query.strip_prefix(
        "SELECT database, table, name, type, default_expression, comment, position FROM system.columns WHERE database IN (",
    ) {
        let list = rest.split_once(')').unwrap().0;
        let wanted: Vec<String> = list
            .split(", ")
            .map(|q| q.trim_matches('\'').to_owned())
            .collect();
        let body: String = COLUMNS
            .iter()
            .filter(|(db, _)| wanted.iter().any(|w| w == db))
            .map(|(_, line)| format!("{line}\n"))
            .collect();
        return ("200 OK", body);
    }
    (
        "400 Bad Request",
        "Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR)\n".into(),
    )
}

/// Starts the fake server; returns its port and the requests it saw.
async fn fake_clickhouse() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8(head).unwrap();
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap().to_owned();
                let header = |name: &str| {
                    head.split("\r\n").find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                    })
                };
                let target = request_line.split(' ').nth(1).unwrap();
                let params: Vec<(String, String)> = target
                    .split_once('?')
                    .map(|(_, q)| q)
                    .unwrap_or("")
                    .split('&')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| (k.to_owned(), decode(v)))
                    .collect();
                let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let query = param("query").unwrap_or_default();
                let user = header("X-ClickHouse-User");
                let key = header("X-ClickHouse-Key");
                log.lock().unwrap().push(Seen {
                    request_line: request_line.clone(),
                    query: query.clone(),
                    database: param("database"),
                    user: user.clone(),
                });
                let authenticated = user.as_deref() == Some("analyst")
                    && key.as_deref() == Some(MARKER)
                    && request_line.starts_with("GET ");
                let response = if authenticated {
                    let (status, body) = answer(&query);
                    let mut chunked = String::new();
                    if !body.is_empty() {
                        chunked.push_str(&format!("{:x}\r\n{body}\r\n", body.len()));
                    }
                    chunked.push_str("0\r\n\r\n");
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=UTF-8\r\n\
                         X-ClickHouse-Server-Display-Name: fake\r\nTransfer-Encoding: chunked\r\n\
                         Connection: Close\r\n\r\n{chunked}"
                    )
                } else {
                    let body = format!(
                        "Code: 516. DB::Exception: {}: Authentication failed: password is \
                         incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) \
                         (version 24.8.4.13 (official build))\n",
                        user.unwrap_or_default()
                    );
                    format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=UTF-8\r\n\
                         X-ClickHouse-Exception-Code: 516\r\nContent-Length: {}\r\n\
                         Connection: Close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, seen)
}

fn clickhouse(url: &str) -> credentials_core::SecretValue {
    value("clickhouse", &[("connection_string", url)])
}

#[tokio::test]
async fn good_key_is_valid_and_wrong_one_is_invalid() {
    let (port, seen) = fake_clickhouse().await;
    let prober = prober(Duration::from_secs(10));
    let good = prober
        .validate(
            "clickhouse",
            &clickhouse(&format!(
                "clickhouse://analyst:{MARKER}@127.0.0.1:{port}/analytics"
            )),
        )
        .await;
    expect(&good, ValidationOutcome::Valid, &[MARKER]);
    assert_eq!(good.message, "logged in as analyst and ran SELECT 1");
    {
        let seen = seen.lock().unwrap();
        let first = &seen[0];
        assert_eq!(first.query, "SELECT 1");
        assert_eq!(first.database.as_deref(), Some("analytics"));
        assert!(
            first
                .request_line
                .starts_with("GET /?query=SELECT%201&database=analytics ")
        );
        assert!(
            !first.request_line.contains(MARKER),
            "the key must travel in a header"
        );
    }

    let wrong = prober
        .validate(
            "clickhouse",
            &clickhouse(&format!(
                "http://analyst:Wrong-Pw-MARKER-77@127.0.0.1:{port}/analytics"
            )),
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
            .contains("authentication failed for user 'analyst'"),
        "{}",
        wrong.message
    );

    // Tools `database`, credentials as URL parameters.
    let tools = prober
        .validate(
            "database",
            &value(
                "database",
                &[
                    ("schema_type", "clickhouse"),
                    (
                        "connection_string",
                        &format!("http://127.0.0.1:{port}/?user=analyst&password={MARKER}"),
                    ),
                ],
            ),
        )
        .await;
    expect(&tools, ValidationOutcome::Valid, &[MARKER]);
}

#[tokio::test]
async fn closed_port_silent_server_and_default_policy() {
    let closed = prober(Duration::from_secs(10))
        .validate(
            "clickhouse",
            &clickhouse(&format!(
                "clickhouse://u:{MARKER}@127.0.0.1:{}",
                closed_port()
            )),
        )
        .await;
    expect(&closed, ValidationOutcome::Unreachable, &[MARKER]);

    let port = silent_server().await;
    let timeout = Duration::from_millis(1200);
    let started = Instant::now();
    let silent = prober(timeout)
        .validate(
            "clickhouse",
            &clickhouse(&format!("clickhouse://u:{MARKER}@127.0.0.1:{port}")),
        )
        .await;
    assert_within(started.elapsed(), timeout);
    expect(&silent, ValidationOutcome::TimedOut, &[MARKER]);

    let wire = Tripwire::new();
    let denied = default_prober()
        .validate(
            "clickhouse",
            &clickhouse(&format!(
                "clickhouse://u:{MARKER}@localhost:{}",
                wire.port()
            )),
        )
        .await;
    expect(&denied, ValidationOutcome::EgressDenied, &[MARKER]);
    wire.assert_untouched();
}

fn col(name: &str, data_type: &str, position: u32) -> Column {
    Column {
        name: name.into(),
        data_type: data_type.into(),
        nullable: data_type.starts_with("Nullable("),
        default_value: None,
        description: String::new(),
        position,
    }
}

fn expected_schema() -> DatabaseSchema {
    DatabaseSchema {
        namespaces: vec![
            SchemaNamespace {
                name: "analytics".into(),
                tables: vec![
                    Table {
                        name: "daily".into(),
                        kind: TableKind::View,
                        description: String::new(),
                        columns: vec![col("day", "Date", 1), col("events", "UInt64", 2)],
                        primary_key: vec![],
                    },
                    Table {
                        name: "events".into(),
                        kind: TableKind::Table,
                        description: "Raw events".into(),
                        columns: vec![
                            col("event_date", "Date", 1),
                            Column {
                                description: "Who".into(),
                                ..col("user_id", "UInt64", 2)
                            },
                            Column {
                                default_value: Some("'click'".into()),
                                ..col("kind", "LowCardinality(String)", 3)
                            },
                            Column {
                                description: "Where from".into(),
                                ..col("referrer", "Nullable(String)", 4)
                            },
                        ],
                        primary_key: vec!["event_date".into(), "user_id".into()],
                    },
                    Table {
                        name: "sessions".into(),
                        kind: TableKind::Table,
                        description: String::new(),
                        columns: vec![col("started", "DateTime", 1), col("user_id", "UInt64", 2)],
                        primary_key: vec!["toDate(started)".into(), "user_id".into()],
                    },
                ],
            },
            SchemaNamespace {
                name: "staging".into(),
                tables: vec![Table {
                    name: "tmp".into(),
                    kind: TableKind::Table,
                    description: String::new(),
                    columns: vec![col("x", "Int32", 1)],
                    primary_key: vec![],
                }],
            },
        ],
        truncated: false,
        truncation: None,
    }
}

#[tokio::test]
async fn discovery_reads_system_tables_and_columns() {
    let (port, seen) = fake_clickhouse().await;
    let prober = prober(Duration::from_secs(10));
    let v = clickhouse(&format!("clickhouse://analyst:{MARKER}@127.0.0.1:{port}"));
    let schema = prober
        .discover_schema("clickhouse", &v, &DiscoveryOptions::default())
        .await
        .unwrap();
    assert_eq!(schema, expected_schema());
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|s| s.request_line.starts_with("GET "))
    );
    let ddl = schema.to_ddl();
    for line in [
        "-- Raw events\nCREATE TABLE analytics.events (\n",
        "  kind LowCardinality(String) NOT NULL DEFAULT 'click',\n",
        "  referrer Nullable(String), -- Where from\n",
        "  PRIMARY KEY (toDate(started), user_id)\n",
        "CREATE VIEW analytics.daily (\n",
    ] {
        assert!(ddl.contains(line), "{line:?} missing from:\n{ddl}");
    }

    let only_analytics = prober
        .discover_schema(
            "clickhouse",
            &v,
            &DiscoveryOptions {
                exclude_schemas: vec!["staging".into()],
                max_tables: 2,
                ..DiscoveryOptions::default()
            },
        )
        .await
        .unwrap();
    let mut expected = expected_schema();
    expected.namespaces.truncate(1);
    expected.namespaces[0].tables.truncate(2);
    expected.truncated = true;
    expected.truncation = Some(credentials_core::schema::Truncation::TableLimit);
    assert_eq!(only_analytics, expected);
    // The columns query asked for the kept database only.
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert!(
        last.query.contains("WHERE database IN ('analytics') "),
        "{}",
        last.query
    );

    let wrong = clickhouse(&format!(
        "clickhouse://analyst:Wrong-Pw-MARKER-77@127.0.0.1:{port}"
    ));
    let err = prober
        .discover_schema("clickhouse", &wrong, &DiscoveryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.outcome, ValidationOutcome::InvalidCredentials, "{err}");
    assert!(!err.message.contains("Wrong-Pw-MARKER-77"));
    assert_eq!(
        seen.lock().unwrap().last().unwrap().user.as_deref(),
        Some("analyst")
    );
}

/// A ClickHouse HTTP interface that answers 200 and streams rows forever: table rows, or
/// column rows of those tables when the query reads `system.columns`.
async fn endless_clickhouse() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let columns = String::from_utf8_lossy(&buf[..n]).contains("system.columns");
                let mut rows = String::new();
                for i in 0..500 {
                    rows.push_str(&if columns {
                        format!(
                            "{{\"database\":\"d\",\"table\":\"t{i:05}\",\"name\":\"c\",\"type\":\"String\",\"default_expression\":\"\",\"comment\":\"\",\"position\":\"1\"}}\n"
                        )
                    } else {
                        format!(
                            "{{\"database\":\"d\",\"name\":\"t{i:05}\",\"engine\":\"MergeTree\",\"comment\":\"\",\"primary_key\":\"\"}}\n"
                        )
                    });
                }
                let chunk = format!("{:x}\r\n{rows}\r\n", rows.len());
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await
                    .is_ok()
                {
                    while stream.write_all(chunk.as_bytes()).await.is_ok() {}
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_byte_budget_and_reported() {
    let port = endless_clickhouse().await;
    let prober = prober(Duration::from_secs(10));
    let v = clickhouse(&format!("http://u:{MARKER}@127.0.0.1:{port}/d"));

    // An endless answer to SELECT 1 is not ClickHouse's.
    let result = prober.validate("clickhouse", &v).await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::ProviderError,
        "{result:?}"
    );

    // Discovery keeps what arrived within the byte budget and says it was cut.
    let schema = prober
        .discover_schema("clickhouse", &v, &DiscoveryOptions::default())
        .await
        .unwrap();
    assert!(schema.truncated);
    assert_eq!(
        schema.truncation,
        Some(credentials_core::schema::Truncation::ByteBudget)
    );
    // The table limit applies to what was read, and the columns read are attached.
    assert_eq!(schema.namespaces[0].name, "d");
    assert_eq!(schema.table_count(), 1000);
    assert!(
        schema.namespaces[0]
            .tables
            .iter()
            .any(|t| !t.columns.is_empty())
    );
}
