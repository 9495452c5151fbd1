//! PostgreSQL and Redshift: a login plus `SELECT 1`, and schema discovery from `pg_catalog`.
//!
//! Every host of the connection string is resolved through the egress guard and the checked
//! address is dialled here; tokio-postgres then runs its handshake over that stream (TLS through
//! tokio-postgres-rustls with the probe's own verifier), so it never resolves a name itself.
//! Only the simple-query protocol (text results, no parameters) is used, which Redshift speaks
//! as well as PostgreSQL. The connection string's parsing lives in [`connstr`].

mod connstr;

pub(crate) use connstr::Flavor;

use super::net::{self, Failure};
use crate::egress::EgressPolicy;
use connstr::{Target, TlsMode, parse, secrets};
use credentials_core::schema::{
    Column, DatabaseSchema, DiscoveryOptions, SchemaBuilder, Table, TableKind,
};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, NoTls};
use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

/// A live session; dropping it closes the connection.
struct Session {
    client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connect(target: &Target, policy: &EgressPolicy) -> Result<Session, Failure> {
    let mut config = target.config.clone();
    config.ssl_mode(match target.tls {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    let tls_name = |i: usize| match target.config.get_hosts().get(i) {
        Some(Host::Tcp(name)) => name.clone(),
        _ => target.endpoints[i].0.clone(),
    };
    let mut last = None;
    // Like libpq, the next host is tried only when this one cannot be reached; a server's
    // answer (a refused login, say) is final.
    for (i, (host, port)) in target.endpoints.iter().enumerate() {
        let stream = match net::dial(policy, host, *port).await {
            Ok((stream, _)) => stream,
            Err(f) => {
                last = Some(f);
                continue;
            }
        };
        let (client, task) = if target.tls == TlsMode::Disable {
            let (client, conn) = config
                .connect_raw(stream, NoTls)
                .await
                .map_err(|e| map_error(&e, host))?;
            (client, spawn(conn))
        } else {
            // The name is checked here so that a bad one reads as before; the TLS hook gets it
            // without IPv6 brackets, as rustls wants. The hook also gives SCRAM its channel
            // binding (tls-server-end-point), which is used when the server offers it, as libpq
            // does by default.
            let name = tls_name(i);
            net::server_name(&name)?;
            let mut make =
                MakeRustlsConnect::new(Arc::unwrap_or_clone(net::tls_config(target.tls.verify())?));
            let Ok(tls) = MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(
                &mut make,
                name.trim_start_matches('[').trim_end_matches(']'),
            );
            let (client, conn) = config
                .connect_raw(stream, tls)
                .await
                .map_err(|e| map_error(&e, host))?;
            (client, spawn(conn))
        };
        return Ok(Session { client, task });
    }
    Err(last.unwrap_or_else(|| Failure::unreachable("no host to connect to")))
}

fn spawn<F>(conn: F) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let _ = conn.await;
    })
}

/// Maps a driver error to the outcome it means.
fn map_error(e: &tokio_postgres::Error, host: &str) -> Failure {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let message = db.message();
        return if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            Failure::invalid(format!("login refused: {message}"))
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            // The login worked, but the credential names a database it cannot use: fixing the
            // credential fixes it, so it counts as invalid rather than as a server fault.
            Failure::invalid(format!("login refused: {message}"))
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            Failure::forbidden(message.to_owned())
        } else {
            Failure::provider(format!(
                "the server answered with an error: {message} (SQLSTATE {})",
                code.code()
            ))
        };
    }
    let text = e.to_string();
    if text.contains("password missing") {
        return Failure::invalid(
            "the server asks for a password and the connection string has none",
        );
    }
    if text.contains("TLS") || text.contains("tls") {
        let detail = std::error::Error::source(e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        return Failure::provider(format!("TLS with {host} failed ({text}{detail})"));
    }
    if has_io_source(e) {
        let detail = std::error::Error::source(e)
            .map(ToString::to_string)
            .unwrap_or(text);
        return Failure::unreachable(format!("the connection to {host} failed: {detail}"));
    }
    Failure::provider(format!("the connection to {host} failed: {text}"))
}

fn has_io_source(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Connects and runs `SELECT 1`; `Ok` carries the success message.
pub(crate) async fn validate(
    connection_string: &str,
    flavor: Flavor,
    policy: &EgressPolicy,
) -> Result<String, Failure> {
    let target = parse(connection_string, flavor)?;
    let secrets = secrets(&target, connection_string);
    let result = async {
        let session = connect(&target, policy).await?;
        session
            .client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| map_error(&e, &target.endpoints[0].0))?;
        Ok(format!(
            "logged in{} and ran SELECT 1",
            target
                .config
                .get_user()
                .map(|u| format!(" as {u}"))
                .unwrap_or_default()
        ))
    }
    .await;
    result.map_err(|f: Failure| f.redacted(&secrets))
}

/// Discovers tables, views and columns outside the system schemas.
pub(crate) async fn discover(
    connection_string: &str,
    flavor: Flavor,
    policy: &EgressPolicy,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, Failure> {
    let target = parse(connection_string, flavor)?;
    let secrets = secrets(&target, connection_string);
    let result = async {
        let session = connect(&target, policy).await?;
        read_schema(&session.client, options)
            .await
            .map_err(|e| map_error(&e, &target.endpoints[0].0))
    }
    .await;
    result.map_err(|f: Failure| f.redacted(&secrets))
}

// Relations of every kind a user queries; schemas starting with `pg_` are reserved for the
// system (toast, temp, catalog), and Redshift's `pg_internal` falls under the same rule.
const TABLES_SQL: &str = "\
SELECT c.oid, n.nspname, c.relname, c.relkind, COALESCE(obj_description(c.oid, 'pg_class'), '')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm')
  AND substring(n.nspname from 1 for 3) <> 'pg_'
  AND n.nspname <> 'information_schema'";

const COLUMNS_SQL: &str = "\
SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid), COALESCE(col_description(a.attrelid, a.attnum), ''),
       a.attnum
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attrelid IN ";

const KEYS_SQL: &str = "\
SELECT con.conrelid, array_to_string(con.conkey, ',')
FROM pg_catalog.pg_constraint con
WHERE con.contype = 'p' AND con.conrelid IN ";

/// Text rows of a simple query.
async fn rows(
    client: &Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

fn text(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

async fn read_schema(
    client: &Client,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, tokio_postgres::Error> {
    // Each table's oid, keyed by namespace and name: columns and keys are read by oid.
    let mut oids: HashMap<(String, String), u32> = HashMap::new();
    let tables: Vec<(String, Table)> = rows(client, TABLES_SQL)
        .await?
        .iter()
        .filter_map(|row| {
            let oid = text(row, 0).parse().ok()?;
            let table = Table {
                name: text(row, 2),
                kind: match text(row, 3).as_str() {
                    "v" | "m" => TableKind::View,
                    _ => TableKind::Table,
                },
                description: text(row, 4),
                columns: Vec::new(),
                primary_key: Vec::new(),
            };
            oids.insert((text(row, 1), table.name.clone()), oid);
            Some((text(row, 1), table))
        })
        .collect();
    let mut schema = SchemaBuilder::new(tables, options);
    if schema.is_empty() {
        return Ok(schema.finish());
    }
    // Position in the builder's kept tables, by oid.
    let index: HashMap<u32, usize> = schema
        .tables()
        .enumerate()
        .filter_map(|(i, (ns, t))| Some((*oids.get(&(ns.to_owned(), t.name.clone()))?, i)))
        .collect();
    // Server-issued numbers, so inlining them is safe; it spares array parameters, which
    // Redshift's simple protocol does not take.
    let oid_list = format!(
        "({})",
        index
            .keys()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    // attnum -> name, per table, to turn key numbers into names.
    let mut attnames: HashMap<(u32, i32), String> = HashMap::new();
    for row in rows(
        client,
        &format!("{COLUMNS_SQL}{oid_list} ORDER BY a.attrelid, a.attnum"),
    )
    .await?
    {
        let (Ok(oid), Ok(attnum)) = (text(&row, 0).parse::<u32>(), text(&row, 6).parse::<i32>())
        else {
            continue;
        };
        let Some(table) = index.get(&oid).and_then(|&i| schema.table_mut(i)) else {
            continue;
        };
        let name = text(&row, 1);
        attnames.insert((oid, attnum), name.clone());
        table.columns.push(Column {
            name,
            data_type: text(&row, 2),
            nullable: text(&row, 3) != "t",
            default_value: row.get(4).cloned().flatten(),
            description: text(&row, 5),
            position: u32::try_from(attnum).unwrap_or(0),
        });
    }
    for row in rows(client, &format!("{KEYS_SQL}{oid_list}")).await? {
        let Ok(oid) = text(&row, 0).parse::<u32>() else {
            continue;
        };
        let Some(table) = index.get(&oid).and_then(|&i| schema.table_mut(i)) else {
            continue;
        };
        table.primary_key = text(&row, 1)
            .split(',')
            .filter_map(|n| n.trim().parse::<i32>().ok())
            .filter_map(|n| attnames.get(&(oid, n)).cloned())
            .collect();
    }
    Ok(schema.finish())
}
