//! PostgreSQL and Redshift: a login plus `SELECT 1`, and schema discovery from `pg_catalog`.
//!
//! Every host of the connection string is resolved through the egress guard and the checked
//! address is dialled here; tokio-postgres then runs its handshake over that stream (TLS through
//! tokio-postgres-rustls with the probe's own verifier), so it never resolves a name itself.
//! The `sslmode` of the string holds only towards addresses the operator allowed for cleartext;
//! to any other address TLS is verify-full or nothing is sent (see [`mode_at`]), so a server on
//! the path can neither decline TLS and ask for the password in clear nor present a
//! certificate of its own.
//! Only the simple-query protocol (text results, no parameters) is used, which Redshift speaks
//! as well as PostgreSQL. The connection string's parsing lives in [`connstr`].

mod connstr;

pub(crate) use connstr::Flavor;

/// The endpoints tokio-postgres reads from a URL, for the agreement test.
#[cfg(test)]
pub(crate) fn connstr_endpoints(s: &str) -> Vec<(String, u16)> {
    match parse(s, Flavor::Postgres) {
        Ok(target) => target.endpoints,
        Err(f) => panic!("{s}: {}", f.message),
    }
}

use super::net::{self, Endpoint, Failure};
use crate::egress::EgressPolicy;
use connstr::{Target, TlsMode, parse};
use credentials_core::schema::{
    CatalogueBudget, Column, DatabaseSchema, DiscoveryOptions, MAX_CATALOGUE_ROWS, SchemaBuilder,
    Table, TableKind, Truncation,
};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, NoTls};
use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_stream::StreamExt;

/// A live session; dropping it closes the connection.
struct Session {
    client: Client,
    task: tokio::task::JoinHandle<()>,
    /// Where it is connected, for messages.
    at: Endpoint,
}

/// The parts of the `i`th host of `target` that a message may name.
fn endpoint(target: &Target, i: usize) -> Endpoint {
    let (host, port) = target.endpoints.get(i).cloned().unwrap_or_default();
    Endpoint::new(
        host,
        port,
        target.config.get_user(),
        target.config.get_dbname(),
    )
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The TLS mode used with the address dialled. An address the operator allowed for cleartext
/// gets the connection string's mode, as libpq reads it. Anywhere else (a public address, or
/// one allowed only with verified TLS) a password goes out over verified TLS only: `prefer`,
/// `require` and `verify-ca` are upgraded to `verify-full` (with public roots, chain-only
/// verification admits anyone holding any public certificate), and `disable` is refused, since
/// the string says the server does not speak TLS.
fn mode_at(
    wanted: TlsMode,
    policy: &EgressPolicy,
    addr: SocketAddr,
    at: &Endpoint,
) -> Result<TlsMode, Failure> {
    if policy.allows_cleartext(addr.ip()) {
        return Ok(wanted);
    }
    match wanted {
        TlsMode::Disable => Err(Failure::egress(format!(
            "refusing to connect to {} with sslmode=disable: the password would cross the \
             network in clear to a public address; remove sslmode=disable (TLS to public \
             addresses is always verified, as with verify-full)",
            at.at()
        ))),
        _ => Ok(TlsMode::VerifyFull),
    }
}

async fn connect(target: &Target, policy: &EgressPolicy) -> Result<Session, Failure> {
    let tls_name = |i: usize| match target.config.get_hosts().get(i) {
        Some(Host::Tcp(name)) => name.clone(),
        _ => target.endpoints[i].0.clone(),
    };
    let mut last = None;
    // Like libpq, the next host is tried only when this one cannot be reached; a server's
    // answer (a refused login, say) is final.
    for (i, (host, port)) in target.endpoints.iter().enumerate() {
        let (stream, addr) = match net::dial(policy, host, *port).await {
            Ok(dialled) => dialled,
            Err(f) => {
                last = Some(f);
                continue;
            }
        };
        let at = endpoint(target, i);
        let mode = mode_at(target.tls, policy, addr, &at)?;
        let public = !policy.allows_cleartext(addr.ip());
        let mut config = target.config.clone();
        // `prefer` falls back to no TLS when the server declines: only where cleartext is
        // allowed does it stay `prefer`.
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        let (client, task) = if mode == TlsMode::Disable {
            let (client, conn) = config
                .connect_raw(stream, NoTls)
                .await
                .map_err(|e| map_error(&e, &at))?;
            (client, spawn(conn))
        } else {
            // The name is checked here so that a bad one reads as before; the TLS hook gets it
            // without IPv6 brackets, as rustls wants. The hook also gives SCRAM its channel
            // binding (tls-server-end-point), which is used when the server offers it, as libpq
            // does by default.
            let name = tls_name(i);
            net::server_name(&name)?;
            let mut make = MakeRustlsConnect::new(Arc::unwrap_or_clone(net::tls_config(
                mode.verify(),
                policy,
            )?));
            let Ok(tls) = MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(
                &mut make,
                name.trim_start_matches('[').trim_end_matches(']'),
            );
            let (client, conn) = config.connect_raw(stream, tls).await.map_err(|e| {
                let failure = map_error(&e, &at);
                if public && is_tls(&e) {
                    Failure {
                        message: format!(
                            "{}; TLS to a public address is always verified (certificate chain \
                             and host name, as with sslmode=verify-full)",
                            failure.message
                        ),
                        ..failure
                    }
                } else {
                    failure
                }
            })?;
            (client, spawn(conn))
        };
        return Ok(Session { client, task, at });
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

/// Maps a driver error to the outcome it means. The server's own message and the driver's text
/// are never copied: only the SQLSTATE (five characters of a fixed alphabet) and the parts of
/// the connection string that are not secret.
fn map_error(e: &tokio_postgres::Error, at: &Endpoint) -> Failure {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let sqlstate = code.code();
        let sqlstate = if sqlstate.len() == 5 && sqlstate.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            sqlstate
        } else {
            "unknown"
        };
        return if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            Failure::invalid(format!(
                "authentication failed{} on {} (SQLSTATE {sqlstate})",
                at.user(),
                at.at()
            ))
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            // The login worked, but the credential names a database it cannot use: fixing the
            // credential fixes it, so it counts as invalid rather than as a server fault.
            let database = at
                .database
                .as_ref()
                .map(|d| format!(" '{d}'"))
                .unwrap_or_default();
            Failure::invalid(format!(
                "the database{database} does not exist on {} (SQLSTATE {sqlstate})",
                at.at()
            ))
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            Failure::forbidden(format!(
                "permission denied{}{} at {} (SQLSTATE {sqlstate})",
                at.user(),
                at.on_database(),
                at.at()
            ))
        } else {
            Failure::provider(format!(
                "{} answered with an error (SQLSTATE {sqlstate})",
                at.at()
            ))
        };
    }
    // tokio-postgres' own words for a password it was asked for but not given.
    if e.to_string().contains("password missing") {
        return Failure::invalid(
            "the server asks for a password and the connection string has none",
        );
    }
    if is_tls(e) {
        return Failure::provider(format!(
            "TLS with {} failed: {}",
            at.at(),
            net::tls_reason(e)
        ));
    }
    if let Some(io) = io_source(e) {
        return Failure::unreachable(format!(
            "the connection to {} failed: {}",
            at.at(),
            net::io_reason(io)
        ));
    }
    Failure::provider(format!("the exchange with {} failed", at.at()))
}

/// Whether the driver failed in TLS: a rustls error in the chain, or its own TLS refusal.
fn is_tls(e: &tokio_postgres::Error) -> bool {
    let text = e.to_string();
    text.contains("TLS") || text.contains("tls") || net::rustls_error(e).is_some()
}

fn io_source(e: &tokio_postgres::Error) -> Option<&io::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

/// Connects and runs `SELECT 1`; `Ok` carries the success message.
pub(crate) async fn validate(
    connection_string: &str,
    flavor: Flavor,
    policy: &EgressPolicy,
) -> Result<String, Failure> {
    let target = parse(connection_string, flavor)?;
    let session = connect(&target, policy).await?;
    session
        .client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| map_error(&e, &session.at))?;
    let user = session
        .at
        .user
        .as_ref()
        .map(|u| format!(" as {u}"))
        .unwrap_or_default();
    Ok(format!("logged in{user} and ran SELECT 1"))
}

/// Discovers tables, views and columns outside the system schemas.
pub(crate) async fn discover(
    connection_string: &str,
    flavor: Flavor,
    policy: &EgressPolicy,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, Failure> {
    let target = parse(connection_string, flavor)?;
    let session = connect(&target, policy).await?;
    read_schema(&session.client, options)
        .await
        .map_err(|e| map_error(&e, &session.at))
}

// Relations of every kind a user queries; schemas starting with `pg_` are reserved for the
// system (toast, temp, catalog), and Redshift's `pg_internal` falls under the same rule.
const TABLES_SQL: &str = "\
SELECT c.oid, n.nspname, c.relname, c.relkind, COALESCE(obj_description(c.oid, 'pg_class'), '')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm')
  AND substring(n.nspname from 1 for 3) <> 'pg_'
  AND n.nspname <> 'information_schema'
ORDER BY n.nspname, c.relname";

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

/// Text rows of a simple query, streamed under the catalogue budget: the reading stops at
/// the first row past it (the rest is dropped as it arrives, never kept), and the budget that
/// cut the rows is returned with them. The queries carry the row budget as a LIMIT too, so a
/// real server stops by itself.
async fn rows(
    client: &Client,
    sql: &str,
) -> Result<(Vec<Vec<Option<String>>>, Option<Truncation>), tokio_postgres::Error> {
    let sql = format!("{sql} LIMIT {}", MAX_CATALOGUE_ROWS + 1);
    let stream = client.simple_query_raw(&sql).await?;
    let mut stream = std::pin::pin!(stream);
    let mut budget = CatalogueBudget::default();
    let mut out = Vec::new();
    while let Some(message) = stream.next().await {
        let SimpleQueryMessage::Row(row) = message? else {
            continue;
        };
        let row: Vec<Option<String>> = (0..row.len())
            .map(|i| row.get(i).map(str::to_owned))
            .collect();
        let bytes = row.iter().flatten().map(String::len).sum::<usize>() + row.len();
        if let Err(why) = budget.take(bytes) {
            return Ok((out, Some(why)));
        }
        out.push(row);
    }
    Ok((out, None))
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
    let (table_rows, tables_cut) = rows(client, TABLES_SQL).await?;
    let tables: Vec<(String, Table)> = table_rows
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
    drop(table_rows);
    let mut schema = SchemaBuilder::new(tables, options);
    if let Some(why) = tables_cut {
        schema.cut(why);
    }
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
    let (column_rows, columns_cut) = rows(
        client,
        &format!("{COLUMNS_SQL}{oid_list} ORDER BY a.attrelid, a.attnum"),
    )
    .await?;
    if let Some(why) = columns_cut {
        schema.cut(why);
    }
    for row in column_rows {
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
    let (key_rows, keys_cut) = rows(
        client,
        &format!("{KEYS_SQL}{oid_list} ORDER BY con.conrelid"),
    )
    .await?;
    if let Some(why) = keys_cut {
        schema.cut(why);
    }
    for row in key_rows {
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
