//! ClickHouse over its HTTP interface: `SELECT 1` to validate, `system.tables` and
//! `system.columns` (as `JSONEachRow`) to discover.
//!
//! Queries go as GET requests, which ClickHouse runs read-only whatever the user may do. The
//! credential travels in the `X-ClickHouse-User` / `X-ClickHouse-Key` headers; over plain http
//! only to a non-public address an operator allowed, never across the internet in clear.
//! One request per connection (`Connection: close`), dialled through the egress guard.

use super::net::{self, Failure, Verify};
use crate::egress::EgressPolicy;
use credentials_core::connection_url;
use credentials_core::schema::{
    CatalogueBudget, Column, DatabaseSchema, DiscoveryOptions, MAX_CATALOGUE_BYTES,
    MAX_CATALOGUE_ROWS, SchemaBuilder, Table, TableKind, Truncation,
};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most bytes of response head read: ClickHouse sends a dozen short headers; a longer
/// head is not ClickHouse's.
const MAX_HEAD: usize = 16 * 1024;
/// The most body bytes validation reads: `SELECT 1` answers `1\n`, and an error's
/// `Code: N. DB::Exception: ...` names its code in the first line; more is never looked at.
const MAX_VALIDATION_BODY: usize = 4 * 1024;
/// The discovery queries' row budget, put in their SQL so the server stops by itself.
const ROW_LIMIT: usize = MAX_CATALOGUE_ROWS + 1;

/// Where and how to reach the server.
struct Target {
    host: String,
    port: u16,
    tls: bool,
    user: String,
    password: String,
    database: Option<String>,
}

const PARSE_HELP: &str = "the connection string is not a valid ClickHouse URL \
     (clickhouse://user:password@host:8123/db, or https://user:password@host:8443/db)";

/// The host and port read from a URL, for the agreement test.
#[cfg(test)]
pub(crate) fn parsed_endpoint(s: &str) -> (String, u16) {
    match parse(s) {
        Ok(t) => (t.host, t.port),
        Err(f) => panic!("{s}: {}", f.message),
    }
}

fn parse(connection_string: &str) -> Result<Target, Failure> {
    let s = connection_string.trim();
    let s = s.strip_prefix("jdbc:").unwrap_or(s);
    // The url crate splits the user info at the last '@' of the authority, others at the
    // first: only a string all of them read alike goes on.
    connection_url::parse(s).map_err(|why| Failure::invalid(why.to_string()))?;
    let url = url::Url::parse(s).map_err(|_| Failure::invalid(PARSE_HELP))?;
    let mut secure = match url.scheme() {
        "https" | "clickhouses" => true,
        "http" | "clickhouse" => false,
        _ => {
            return Err(Failure::invalid(format!(
                "{PARSE_HELP}: the scheme must be clickhouse://, http:// or https://"
            )));
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Failure::invalid(format!("{PARSE_HELP}: it names no host")))?
        .to_owned();
    let mut user = decode(url.username())?;
    let mut password = url.password().map(decode).transpose()?.unwrap_or_default();
    let mut database = url
        .path_segments()
        .and_then(|mut s| s.next().map(decode))
        .transpose()?
        .filter(|d| !d.is_empty());
    for (key, value) in url.query_pairs() {
        match &*key {
            "user" | "username" => user = value.into_owned(),
            "password" => password = value.into_owned(),
            "database" => database = Some(value.into_owned()).filter(|d| !d.is_empty()),
            "secure" => secure = matches!(&*value, "true" | "1"),
            _ => {}
        }
    }
    if user.is_empty() {
        user = "default".to_owned();
    }
    let port = url.port().unwrap_or(if secure { 8443 } else { 8123 });
    Ok(Target {
        host,
        port,
        tls: secure,
        user,
        password,
        database,
    })
}

/// Percent-decodes a URL component (`+` stays a plus, as in user info and paths).
fn decode(component: &str) -> Result<String, Failure> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Failure::invalid(format!("{PARSE_HELP}: bad percent-encoding")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Failure::invalid(format!("{PARSE_HELP}: percent-encoding is not UTF-8")))
}

/// An HTTP answer.
struct Answer {
    status: u16,
    exception_code: Option<u32>,
    body: Vec<u8>,
}

/// A 200 answer's body, and whether it was cut at the byte limit (the last line may then be
/// partial).
struct Body {
    bytes: Vec<u8>,
    cut: bool,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Runs one query, reading at most `max_body` bytes of body: the rest is never read (the
/// connection is closed), so a server that streams forever costs `max_body` bytes. `Ok` only
/// for HTTP 200.
async fn query(
    target: &Target,
    policy: &EgressPolicy,
    sql: &str,
    max_body: usize,
) -> Result<Body, Failure> {
    let (tcp, addr) = net::dial(policy, &target.host, target.port).await?;
    if !target.tls && !policy.allows_cleartext(addr.ip()) {
        return Err(Failure::egress(format!(
            "refusing to send the password over plain http to {}, a public address; use https \
             (https://...:8443 or ?secure=true)",
            target.host
        )));
    }
    let mut stream: Box<dyn Io> = if target.tls {
        Box::new(net::tls_connect(tcp, &target.host, Verify::Full, policy).await?)
    } else {
        Box::new(tcp)
    };
    let mut path = format!("/?query={}", encode(sql));
    if let Some(db) = &target.database {
        path.push_str(&format!("&database={}", encode(db)));
    }
    let host_header = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    for (name, value) in [("user", &target.user), ("password", &target.password)] {
        if value.contains(['\r', '\n']) {
            return Err(Failure::invalid(format!(
                "the {name} contains a line break, which HTTP headers cannot carry"
            )));
        }
    }
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: credentials-vault-probe\r\n\
         X-ClickHouse-User: {}\r\nX-ClickHouse-Key: {}\r\nAccept-Encoding: identity\r\n\
         Connection: close\r\n\r\n",
        target.user, target.password
    );
    let io_error = |e: std::io::Error| {
        Failure::unreachable(format!(
            "the exchange with {} failed: {}",
            net::endpoint(&target.host, target.port),
            net::io_reason(&e)
        ))
    };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;
    stream.flush().await.map_err(io_error)?;
    // Head and body (chunk framing included) within the two limits: read no further.
    let limit = MAX_HEAD + max_body;
    // Reserved once: growing by doubling would touch twice the limit; the pages of a large
    // reservation are only resident once written.
    let mut raw = Vec::with_capacity(limit + 1);
    (&mut stream)
        .take(limit as u64 + 1)
        .read_to_end(&mut raw)
        .await
        .map_err(io_error)?;
    let cut = raw.len() > limit;
    raw.truncate(limit);
    let at = net::endpoint(&target.host, target.port);
    let answer = parse_response(&raw, cut).ok_or_else(|| {
        Failure::provider(format!(
            "{at} did not answer HTTP; the probe uses ClickHouse's HTTP interface (port 8123, \
             or 8443 with TLS), not the native protocol (9000/9440)"
        ))
    })?;
    if answer.status == 200 {
        let mut bytes = answer.body;
        let cut = cut || bytes.len() > max_body;
        bytes.truncate(max_body);
        return Ok(Body { bytes, cut });
    }
    Err(map_failure(&answer, &at, &target.user))
}

/// Maps an error answer by ClickHouse's exception code and the HTTP status only: the body
/// (`Code: 516. DB::Exception: ...`) quotes what the server was sent and is never copied.
fn map_failure(answer: &Answer, at: &str, user: &str) -> Failure {
    let body = String::from_utf8_lossy(&answer.body);
    let code = answer.exception_code.or_else(|| {
        // The body reads `Code: 516. DB::Exception: ...`.
        let rest = body.split_once("Code: ")?.1;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    });
    let user = net::shown(user);
    let status = answer.status;
    match code {
        // AUTHENTICATION_FAILED, UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD.
        Some(code @ (516 | 192 | 193 | 194)) => Failure::invalid(format!(
            "authentication failed for user '{user}' on {at} (ClickHouse error {code})"
        )),
        // UNKNOWN_DATABASE: the credential names a database that does not exist.
        Some(81) => Failure::invalid(format!(
            "the database named in the connection string does not exist on {at} (ClickHouse error 81)"
        )),
        // ACCESS_DENIED, READONLY, NOT_ENOUGH_PRIVILEGES... (497 is ClickHouse's ACCESS_DENIED).
        Some(code @ (497 | 164)) => Failure::forbidden(format!(
            "permission denied for user '{user}' on {at} (ClickHouse error {code})"
        )),
        None if matches!(status, 401 | 403) => Failure::invalid(format!(
            "authentication failed for user '{user}' on {at} (HTTP {status})"
        )),
        Some(code) => Failure::provider(format!(
            "ClickHouse at {at} answered HTTP {status} (ClickHouse error {code})"
        )),
        None => Failure::provider(format!("ClickHouse at {at} answered HTTP {status}")),
    }
}

/// Splits an HTTP/1.1 response into status, ClickHouse's exception code and body
/// (de-chunked). `cut`: the response was cut short, so the body is what arrived of it.
/// `None` if it is not HTTP.
fn parse_response(raw: &[u8], cut: bool) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    let mut exception_code = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-length" => length = value.parse::<usize>().ok(),
            "x-clickhouse-exception-code" => exception_code = value.parse().ok(),
            _ => {}
        }
    }
    let body = if chunked {
        dechunk(body, cut)?
    } else {
        match length {
            Some(n) if !cut => body.get(..n)?.to_vec(),
            Some(n) => body[..n.min(body.len())].to_vec(),
            None => body.to_vec(),
        }
    };
    Some(Answer {
        status,
        exception_code,
        body,
    })
}

/// The body of a chunked response; of a `cut` one, the chunks that arrived (the last one
/// partly).
fn dechunk(mut body: &[u8], cut: bool) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return cut.then_some(out);
        };
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        match body.get(..size) {
            Some(chunk) => out.extend_from_slice(chunk),
            None if cut => {
                out.extend_from_slice(body);
                return Some(out);
            }
            None => return None,
        }
        body = match body.get(size + 2..) {
            Some(rest) => rest,
            None if cut => return Some(out),
            None => return None,
        };
    }
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A ClickHouse string literal.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Runs `SELECT 1`; `Ok` carries the success message.
pub(crate) async fn validate(
    connection_string: &str,
    policy: &EgressPolicy,
) -> Result<String, Failure> {
    let target = parse(connection_string)?;
    let body = query(&target, policy, "SELECT 1", MAX_VALIDATION_BODY).await?;
    if body.cut || body.bytes.trim_ascii() != b"1" {
        return Err(Failure::provider(
            "SELECT 1 answered something other than 1: is this ClickHouse's HTTP interface?",
        ));
    }
    Ok(format!(
        "logged in as {} and ran SELECT 1",
        net::shown(&target.user)
    ))
}

#[derive(Deserialize)]
struct TableRow {
    database: String,
    name: String,
    engine: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    primary_key: String,
}

#[derive(Deserialize)]
struct ColumnRow {
    database: String,
    table: String,
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    #[serde(default)]
    default_expression: String,
    #[serde(default)]
    comment: String,
    position: Number,
}

/// A UInt64, which JSON output quotes by default.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Plain(u64),
    Quoted(String),
}

impl Number {
    fn get(&self) -> u32 {
        match self {
            Number::Plain(n) => u32::try_from(*n).unwrap_or(0),
            Number::Quoted(s) => s.parse().unwrap_or(0),
        }
    }
}

const TABLES_SQL: &str = "SELECT database, name, engine, comment, primary_key FROM system.tables \
     WHERE database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') \
     AND NOT is_temporary ORDER BY database, name";

const COLUMNS_SQL: &str = "SELECT database, table, name, type, default_expression, comment, position \
     FROM system.columns WHERE database IN ";

/// The rows of a `JSONEachRow` body within the catalogue budget, and the budget that cut
/// them, if one did (a cut body's partial last line is dropped).
fn rows<T: for<'de> Deserialize<'de>>(
    body: &Body,
) -> Result<(Vec<T>, Option<Truncation>), Failure> {
    let mut lines: Vec<&[u8]> = body.bytes.split(|b| *b == b'\n').collect();
    let mut cut = body.cut.then_some(Truncation::ByteBudget);
    if body.cut {
        lines.pop();
    }
    let mut budget = CatalogueBudget::default();
    let mut out = Vec::new();
    for line in lines.into_iter().filter(|l| !l.trim_ascii().is_empty()) {
        if let Err(why) = budget.take(line.len()) {
            cut = Some(why);
            break;
        }
        // serde_json's text quotes the offending input.
        out.push(serde_json::from_slice(line).map_err(|_| {
            Failure::provider("ClickHouse's JSONEachRow answer is not as expected")
        })?);
    }
    Ok((out, cut))
}

/// A catalogue query under the row budget (in its SQL) and the byte budget (in the read).
fn catalogue_sql(sql: &str) -> String {
    format!("{sql} LIMIT {ROW_LIMIT} FORMAT JSONEachRow")
}

/// Splits `a, toDate(ts), b` at top-level commas.
fn key_columns(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in expr.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(expr[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(expr[start..].trim().to_owned());
    out.retain(|s| !s.is_empty());
    out
}

/// Discovers tables, views and columns outside the system databases.
pub(crate) async fn discover(
    connection_string: &str,
    policy: &EgressPolicy,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, Failure> {
    let target = parse(connection_string)?;
    async {
        let body = query(
            &target,
            policy,
            &catalogue_sql(TABLES_SQL),
            MAX_CATALOGUE_BYTES,
        )
        .await?;
        let (tables, tables_cut) = rows::<TableRow>(&body)?;
        drop(body);
        let tables = tables.into_iter().map(|t| {
            let kind = match t.engine.as_str() {
                "View" | "MaterializedView" | "LiveView" | "WindowView" => TableKind::View,
                _ => TableKind::Table,
            };
            let table = Table {
                name: t.name,
                kind,
                description: t.comment,
                columns: Vec::new(),
                primary_key: key_columns(&t.primary_key),
            };
            (t.database, table)
        });
        let mut schema = SchemaBuilder::new(tables, options);
        if let Some(why) = tables_cut {
            schema.cut(why);
        }
        if schema.is_empty() {
            return Ok(schema.finish());
        }
        let databases: Vec<String> = schema.namespaces().into_iter().map(literal).collect();
        let sql = catalogue_sql(&format!(
            "{COLUMNS_SQL}({}) ORDER BY database, table, position",
            databases.join(", ")
        ));
        let body = query(&target, policy, &sql, MAX_CATALOGUE_BYTES).await?;
        let (columns, columns_cut) = rows::<ColumnRow>(&body)?;
        drop(body);
        if let Some(why) = columns_cut {
            schema.cut(why);
        }
        for c in columns {
            let column = Column {
                nullable: c.data_type.starts_with("Nullable("),
                name: c.name,
                data_type: c.data_type,
                default_value: Some(c.default_expression).filter(|d| !d.is_empty()),
                description: c.comment,
                position: c.position.get(),
            };
            schema.column(c.database, c.table, column);
        }
        Ok(schema.finish())
    }
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse("clickhouse://bob:p%40s+s@ch.example.com/analytics").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.tls,
                t.user.as_str(),
                t.password.as_str()
            ),
            ("ch.example.com", 8123, false, "bob", "p@s+s")
        );
        assert_eq!(t.database.as_deref(), Some("analytics"));
        let t = parse("https://ch.example.com?user=u&password=x&database=d").unwrap();
        assert_eq!((t.port, t.tls, t.user.as_str()), (8443, true, "u"));
        let t = parse("clickhouse://ch.example.com:9443?secure=true").unwrap();
        assert_eq!((t.port, t.tls, t.user.as_str()), (9443, true, "default"));
        for bad in [
            "mysql://u:Sekr3t@h/db",
            "Sekr3t",
            "clickhouse://u:Sekr3t@/x",
            "clickhouse://app:abc@Sekr3t@ch.example.com/db",
            "https://app:ab\\Sekr3t@ch.example.com/db",
        ] {
            let f = parse(bad).err().unwrap();
            assert!(!f.message.contains("Sekr3t"), "{}", f.message);
        }
    }

    #[test]
    fn responses() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n1\n\r\n0\r\n\r\n";
        let a = parse_response(raw, false).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"1\n"[..]));
        // Cut inside its second chunk: what arrived of it.
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n10\r\ncd";
        assert_eq!(parse_response(raw, true).unwrap().body, b"abcd");
        assert!(parse_response(raw, false).is_none());
        let raw = b"HTTP/1.1 403 Forbidden\r\nX-ClickHouse-Exception-Code: 516\r\nContent-Length: 5\r\n\r\nCode:";
        let a = parse_response(raw, false).unwrap();
        let f = map_failure(&a, "h:8123", "bob");
        assert_eq!(f.outcome, crate::ValidationOutcome::InvalidCredentials);
        assert_eq!(
            f.message,
            "authentication failed for user 'bob' on h:8123 (ClickHouse error 516)"
        );
        // The body is never copied, whatever it holds.
        let raw = b"HTTP/1.1 500 Internal\r\nContent-Length: 39\r\n\r\nCode: 999. DB::Exception: Sekr3t echoed";
        let f = map_failure(&parse_response(raw, false).unwrap(), "h:8123", "bob");
        assert_eq!(
            f.message,
            "ClickHouse at h:8123 answered HTTP 500 (ClickHouse error 999)"
        );
        assert!(parse_response(b"\x00\x01binary", false).is_none());
        assert_eq!(
            key_columns("a, toDate(ts, 'UTC'), b"),
            ["a", "toDate(ts, 'UTC')", "b"]
        );
        assert!(key_columns("").is_empty());
        assert_eq!(encode("SELECT 1"), "SELECT%201");
        assert_eq!(literal("it's\\"), "'it\\'s\\\\'");
    }
}
