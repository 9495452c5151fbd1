//! PostgreSQL and Redshift: a login plus `SELECT 1`, and schema discovery from `pg_catalog`.
//!
//! Every host of the connection string is resolved through the egress guard and the checked
//! address is dialled here; tokio-postgres then runs its handshake over that stream, so it never
//! resolves a name itself. Only the simple-query protocol (text results, no parameters) is used,
//! which Redshift speaks as well as PostgreSQL.

use super::net::{self, Failure, Verify};
use crate::egress::EgressPolicy;
use credentials_core::schema::{
    Column, DatabaseSchema, DiscoveryOptions, SchemaNamespace, Table, TableKind,
};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, NoTls, TlsConnect};
use tokio_postgres::{Client, Config, SimpleQueryMessage};

/// Which flavour of the protocol's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// PostgreSQL (default port 5432).
    Postgres,
    /// Amazon Redshift (default port 5439).
    Redshift,
}

impl Flavor {
    fn default_port(self) -> u16 {
        match self {
            Flavor::Postgres => 5432,
            Flavor::Redshift => 5439,
        }
    }
}

/// libpq's `sslmode`, including the two verifying modes tokio-postgres does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            // Without a TLS-less fallback of its own, `allow` is best served as `prefer`.
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// The value tokio-postgres understands; the verification level is kept apart.
    fn driver_value(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require | Self::VerifyCa | Self::VerifyFull => "require",
        }
    }

    fn verify(self) -> Verify {
        match self {
            Self::VerifyFull => Verify::Full,
            Self::VerifyCa => Verify::ChainOnly,
            Self::Disable | Self::Prefer | Self::Require => Verify::Nothing,
        }
    }
}

/// libpq options naming client-side files or features that have no meaning for a probe run
/// elsewhere; dropped rather than refused, so a string copied from a psql set-up still works.
const IGNORED_OPTIONS: &[&str] = &[
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslcompression",
    "gssencmode",
    "gsslib",
    "krbsrvname",
    "requirepeer",
];

/// A parsed connection string.
struct Target {
    config: Config,
    tls: TlsMode,
    /// `(host name for TLS and messages, port)` in the string's order.
    endpoints: Vec<(String, u16)>,
}

const PARSE_HELP: &str = "the connection string is not a valid PostgreSQL URL \
     (postgresql://user:password@host:5432/db) or key=value string (host=... user=... password=...)";

fn parse(connection_string: &str, flavor: Flavor) -> Result<Target, Failure> {
    let s = connection_string.trim();
    let s = s.strip_prefix("jdbc:").unwrap_or(s);
    let owned;
    let s = match s.strip_prefix("redshift://") {
        Some(rest) => {
            owned = format!("postgresql://{rest}");
            owned.as_str()
        }
        None => s,
    };
    let (rewritten, mode) = if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        rewrite_url(s)?
    } else {
        rewrite_key_values(s)?
    };
    let config = Config::from_str(&rewritten).map_err(|e| {
        // Only an unknown option's name is repeated: other parse errors can quote a character
        // of the string, which may be the password's.
        let text = std::error::Error::source(&e)
            .map(ToString::to_string)
            .unwrap_or_default();
        let option = text
            .split_once("unknown option `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(name, _)| name)
            .filter(|n| n.len() <= 40 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        match option {
            Some(name) => Failure::invalid(format!("{PARSE_HELP}: unknown option {name:?}")),
            None => Failure::invalid(PARSE_HELP),
        }
    })?;
    let tls = mode.unwrap_or(TlsMode::Prefer);
    // tokio-postgres fills in 5432 for a URL host without a port, which is wrong for Redshift.
    let url_default_port = (s.contains("://") && !url_has_port(s)).then(|| flavor.default_port());
    let endpoints = endpoints(&config, flavor, url_default_port)?;
    Ok(Target {
        config,
        tls,
        endpoints,
    })
}

/// Whether a URL's authority names a port for any of its hosts.
fn url_has_port(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hosts.split(',').any(|h| {
        let after_bracket = h.rsplit_once(']').map_or(h, |(_, p)| p);
        after_bracket.contains(':')
    })
}

/// Pairs hosts (or `hostaddr`s) with ports as libpq does: one port for all, or one each;
/// `forced_port` replaces them when the string named none.
fn endpoints(
    config: &Config,
    flavor: Flavor,
    forced_port: Option<u16>,
) -> Result<Vec<(String, u16)>, Failure> {
    let addrs = config.get_hostaddrs();
    let mut names: Vec<String> = Vec::new();
    for (i, host) in config.get_hosts().iter().enumerate() {
        match host {
            Host::Tcp(name) => {
                // A given `hostaddr` is what libpq dials; the name stays for TLS only, so the
                // probe dials (and the guard checks) the address.
                names.push(match addrs.get(i) {
                    Some(ip) => ip.to_string(),
                    None => name.clone(),
                });
            }
            Host::Unix(_) => {
                return Err(Failure::egress(
                    "the connection string names a Unix-domain socket, a local address the \
                     probe never connects to; give a TCP host",
                ));
            }
        }
    }
    if names.is_empty() {
        names = addrs.iter().map(ToString::to_string).collect();
    }
    if names.is_empty() {
        return Err(Failure::invalid(
            "the connection string names no host (add host=... or postgresql://HOST/...)",
        ));
    }
    let ports = config.get_ports();
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let port = match (forced_port, ports.len()) {
                (Some(port), _) => port,
                (None, 0) => flavor.default_port(),
                (None, 1) => ports[0],
                (None, _) => *ports.get(i).ok_or_else(|| {
                    Failure::invalid("the connection string has more ports than hosts")
                })?,
            };
            Ok((name, port))
        })
        .collect()
}

/// The URL with `sslmode` mapped for tokio-postgres and ignorable options dropped.
fn rewrite_url(s: &str) -> Result<(String, Option<TlsMode>), Failure> {
    let Some((base, query)) = s.split_once('?') else {
        return Ok((s.to_owned(), None));
    };
    let mut mode = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "sslmode" {
            let parsed = ssl_mode(value)?;
            mode = Some(parsed);
            kept.push(format!("sslmode={}", parsed.driver_value()));
        } else if !IGNORED_OPTIONS.contains(&key) {
            kept.push(pair.to_owned());
        }
    }
    Ok((format!("{base}?{}", kept.join("&")), mode))
}

fn ssl_mode(value: &str) -> Result<TlsMode, Failure> {
    TlsMode::parse(value).ok_or_else(|| {
        Failure::invalid(
            "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full",
        )
    })
}

/// The key=value string with `sslmode` mapped and ignorable options dropped. Values keep their
/// quoting; a string this cannot split is passed on untouched for tokio-postgres to judge.
fn rewrite_key_values(s: &str) -> Result<(String, Option<TlsMode>), Failure> {
    let Some(pairs) = split_key_values(s) else {
        return Ok((s.to_owned(), None));
    };
    let mut mode = None;
    let mut kept = Vec::new();
    for (key, raw, value) in pairs {
        if key == "sslmode" {
            let parsed = ssl_mode(&value)?;
            mode = Some(parsed);
            kept.push(format!("sslmode={}", parsed.driver_value()));
        } else if !IGNORED_OPTIONS.contains(&key) {
            kept.push(format!("{key}={raw}"));
        }
    }
    Ok((kept.join(" "), mode))
}

/// Splits `k=v k2='quoted \' v'` into `(key, raw value, unescaped value)`, libpq-style.
fn split_key_values(s: &str) -> Option<Vec<(&str, &str, String)>> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i == bytes.len() {
            return Some(out);
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[start..i];
        i = skip_ws(i);
        if bytes.get(i) != Some(&b'=') || key.is_empty() {
            return None;
        }
        i = skip_ws(i + 1);
        let value_start = i;
        let mut value = Vec::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\\') => {
                        value.push(*bytes.get(i + 1)?);
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b) => {
                        value.push(*b);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&b) = bytes.get(i) {
                if b.is_ascii_whitespace() {
                    break;
                }
                if b == b'\\' {
                    value.push(*bytes.get(i + 1)?);
                    i += 2;
                } else {
                    value.push(b);
                    i += 1;
                }
            }
        }
        out.push((
            key,
            &s[value_start..i],
            String::from_utf8_lossy(&value).into_owned(),
        ));
    }
}

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

/// The secrets a message must never show: the password, and the whole string.
fn secrets<'a>(target: &'a Target, connection_string: &'a str) -> Vec<&'a str> {
    let mut out = vec![connection_string];
    if let Some(p) = target
        .config
        .get_password()
        .and_then(|p| std::str::from_utf8(p).ok())
    {
        out.push(p);
    }
    out
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
            let tls = RustlsConnect {
                config: net::tls_config(target.tls.verify())?,
                name: net::server_name(&tls_name(i))?,
            };
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
    struct Found {
        oid: u32,
        namespace: String,
        table: Table,
    }
    let mut found: Vec<Found> = rows(client, TABLES_SQL)
        .await?
        .iter()
        .filter_map(|row| {
            let namespace = text(row, 1);
            if !options.wants(&namespace) {
                return None;
            }
            Some(Found {
                oid: text(row, 0).parse().ok()?,
                namespace,
                table: Table {
                    name: text(row, 2),
                    kind: match text(row, 3).as_str() {
                        "v" | "m" => TableKind::View,
                        _ => TableKind::Table,
                    },
                    description: text(row, 4),
                    columns: Vec::new(),
                    primary_key: Vec::new(),
                },
            })
        })
        .collect();
    found.sort_by(|a, b| (&a.namespace, &a.table.name).cmp(&(&b.namespace, &b.table.name)));
    let truncated = found.len() > options.max_tables;
    found.truncate(options.max_tables);

    if !found.is_empty() {
        // Server-issued numbers, so inlining them is safe; it spares array parameters, which
        // Redshift's simple protocol does not take.
        let oids = format!(
            "({})",
            found
                .iter()
                .map(|f| f.oid.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let index: HashMap<u32, usize> =
            found.iter().enumerate().map(|(i, f)| (f.oid, i)).collect();
        // attnum -> name, per table, to turn key numbers into names.
        let mut attnames: HashMap<(u32, i32), String> = HashMap::new();
        for row in rows(
            client,
            &format!("{COLUMNS_SQL}{oids} ORDER BY a.attrelid, a.attnum"),
        )
        .await?
        {
            let (Ok(oid), Ok(attnum)) =
                (text(&row, 0).parse::<u32>(), text(&row, 6).parse::<i32>())
            else {
                continue;
            };
            let Some(&i) = index.get(&oid) else { continue };
            let name = text(&row, 1);
            attnames.insert((oid, attnum), name.clone());
            found[i].table.columns.push(Column {
                name,
                data_type: text(&row, 2),
                nullable: text(&row, 3) != "t",
                default_value: row.get(4).cloned().flatten(),
                description: text(&row, 5),
                position: u32::try_from(attnum).unwrap_or(0),
            });
        }
        for row in rows(client, &format!("{KEYS_SQL}{oids}")).await? {
            let Ok(oid) = text(&row, 0).parse::<u32>() else {
                continue;
            };
            let Some(&i) = index.get(&oid) else { continue };
            found[i].table.primary_key = text(&row, 1)
                .split(',')
                .filter_map(|n| n.trim().parse::<i32>().ok())
                .filter_map(|n| attnames.get(&(oid, n)).cloned())
                .collect();
        }
    }

    let mut namespaces: BTreeMap<String, Vec<Table>> = BTreeMap::new();
    for f in found {
        namespaces.entry(f.namespace).or_default().push(f.table);
    }
    Ok(DatabaseSchema {
        namespaces: namespaces
            .into_iter()
            .map(|(name, tables)| SchemaNamespace { name, tables })
            .collect(),
        truncated,
    })
}

/// tokio-postgres's TLS hook over rustls, for a stream this module dialled itself.
struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

impl TlsConnect<TcpStream> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: TcpStream) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            connector
                .connect(self.name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
        })
    }
}

/// A TLS stream tokio-postgres can drive.
struct RustlsStream(Box<tokio_rustls::client::TlsStream<TcpStream>>);

impl tokio_postgres::tls::TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM then runs without channel binding, which every server accepts unless the
        // string says channel_binding=require.
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_ssl_modes_are_understood_in_both_forms() {
        let t = parse(
            "postgresql://u:p@db.example.com/app?sslmode=verify-full&sslrootcert=/x.pem",
            Flavor::Postgres,
        )
        .unwrap();
        assert_eq!(t.tls, TlsMode::VerifyFull);
        assert_eq!(t.endpoints, vec![("db.example.com".to_owned(), 5432)]);
        let t = parse(
            "host=a.example,b.example port=6000 user=u password='s3 \\' cret' sslmode = verify-ca sslrootcert=x",
            Flavor::Postgres,
        )
        .unwrap();
        assert_eq!(t.tls, TlsMode::VerifyCa);
        assert_eq!(t.config.get_password(), Some(&b"s3 ' cret"[..]));
        assert_eq!(
            t.endpoints,
            vec![
                ("a.example".to_owned(), 6000),
                ("b.example".to_owned(), 6000)
            ]
        );
    }

    #[test]
    fn redshift_defaults_and_jdbc_urls() {
        let t = parse(
            "jdbc:redshift://cluster.example.com/dev?user=u&password=p",
            Flavor::Redshift,
        )
        .unwrap();
        assert_eq!(t.endpoints, vec![("cluster.example.com".to_owned(), 5439)]);
        assert_eq!(t.tls, TlsMode::Prefer);
        assert_eq!(t.config.get_user(), Some("u"));
    }

    #[test]
    fn url_ports_are_detected() {
        assert!(url_has_port("postgresql://u:p@h:5439/db"));
        assert!(url_has_port("postgresql://[::1]:5439"));
        assert!(!url_has_port("postgresql://u:p:x@h/db?port=1"));
        assert!(!url_has_port("postgresql://[::1]/db"));
        let t = parse("postgresql://u@h:6543/db", Flavor::Redshift).unwrap();
        assert_eq!(t.endpoints, vec![("h".to_owned(), 6543)]);
    }

    #[test]
    fn hostaddr_is_what_gets_dialled() {
        let t = parse(
            "host=db.example hostaddr=192.0.2.7 user=u",
            Flavor::Postgres,
        )
        .unwrap();
        assert_eq!(t.endpoints, vec![("192.0.2.7".to_owned(), 5432)]);
    }

    #[test]
    fn bad_strings_are_refused_without_echo() {
        for bad in [
            "postgresql://u:Sekr3t@h/db?sslmode=verify-Sekr3t",
            "host=h password=Sekr3t port=Sekr3t",
            "host=h user=u password='Sekr3t",
            "host=/var/run/postgresql password=Sekr3t",
            "user=u password=Sekr3t",
        ] {
            let Err(f) = parse(bad, Flavor::Postgres) else {
                panic!("{bad} parsed");
            };
            assert!(!f.message.contains("Sekr3t"), "{}", f.message);
        }
        let Err(f) = parse("host=h password=x bogus_option=1", Flavor::Postgres) else {
            panic!("parsed");
        };
        assert!(
            f.message.ends_with("unknown option \"bogus_option\""),
            "{}",
            f.message
        );
    }
}
