//! MySQL and MariaDB: a login plus `SELECT 1`, and schema discovery from `information_schema`.
//!
//! The URL's host is resolved through the egress guard and mysql_async is handed the checked
//! addresses (`resolved_ips`), so it dials exactly those and uses the name only for TLS. To
//! addresses not allowed for cleartext, TLS is required and verified whatever the URL says.

use super::net::{self, Endpoint, Failure};
use crate::egress::EgressPolicy;
use credentials_core::connection_url;
use credentials_core::schema::{
    CatalogueBudget, Column, DatabaseSchema, DiscoveryOptions, MAX_CATALOGUE_ROWS, SchemaBuilder,
    Table, TableKind, Truncation,
};
use mysql_async::prelude::Queryable;
use mysql_async::{
    Conn, DriverError, Error, IoError, Opts, OptsBuilder, Row, SslOpts, UrlError, Value,
};

const PARSE_HELP: &str =
    "the connection string is not a valid MySQL URL (mysql://user:password@host:3306/db)";

/// The host and port mysql_async reads from a URL, for the agreement test.
#[cfg(test)]
pub(crate) fn parsed_endpoint(s: &str) -> (String, u16) {
    match parse(s) {
        Ok(opts) => (opts.ip_or_hostname().to_owned(), opts.tcp_port()),
        Err(f) => panic!("{s}: {}", f.message),
    }
}

fn parse(connection_string: &str) -> Result<Opts, Failure> {
    let s = connection_string.trim();
    let s = s.strip_prefix("jdbc:").unwrap_or(s);
    let owned;
    let s = match s.strip_prefix("mariadb://") {
        Some(rest) => {
            owned = format!("mysql://{rest}");
            owned.as_str()
        }
        None => s,
    };
    // The url crate splits the user info at the last '@' of the authority, others at the
    // first: only a string all of them read alike goes on.
    connection_url::parse(s).map_err(|why| Failure::invalid(why.to_string()))?;
    // Messages name no parameter and no value: with an unescaped '&' in a password, even a
    // parameter's name is a piece of it.
    Opts::from_url(s).map_err(|e| match e {
        UrlError::UnsupportedScheme { .. } => {
            Failure::invalid(format!("{PARSE_HELP}: the scheme must be mysql://"))
        }
        UrlError::UnknownParameter { .. } => {
            Failure::invalid(format!("{PARSE_HELP}: it has an unknown parameter"))
        }
        UrlError::InvalidParamValue { .. } => {
            Failure::invalid(format!("{PARSE_HELP}: a parameter has an invalid value"))
        }
        _ => Failure::invalid(PARSE_HELP),
    })
}

/// The parts of the connection `opts` describes that a message may name.
fn endpoint(opts: &Opts) -> Endpoint {
    Endpoint::new(
        opts.ip_or_hostname().to_owned(),
        opts.tcp_port(),
        opts.user(),
        opts.db_name(),
    )
}

async fn connect(opts: &Opts, at: &Endpoint, policy: &EgressPolicy) -> Result<Conn, Failure> {
    let addrs = policy.resolve(&at.host, at.port).await?;
    let ips: Vec<_> = addrs.iter().map(|a| a.ip()).collect();
    // The driver picks which of these it dials: the URL's TLS settings (none by default) stand
    // only when every one is an address the operator allowed for cleartext. Anywhere else TLS
    // is required and verified (chain to the public roots and host name), whatever the URL
    // says: without it a hostile server gets the password (in clear through
    // mysql_clear_password, or RSA-encrypted under a key it chose through
    // caching_sha2_password).
    let verified = !ips.iter().all(|ip| policy.allows_cleartext(*ip));
    let mut builder = OptsBuilder::from_opts(opts.clone())
        .resolved_ips(Some(ips))
        // On a loopback address the driver would otherwise ask for @@socket and reconnect
        // through that Unix socket, which the guard never checked.
        .prefer_socket(false)
        .socket(None::<String>);
    if verified {
        // Fresh options: none of the URL's (no check skipped, no root file of its choosing).
        // mysql_async reads a buffer without PEM markers as one DER certificate.
        let extra = policy
            .extra_roots()
            .iter()
            .map(|der| der.to_vec().into())
            .collect();
        builder = builder.ssl_opts(Some(SslOpts::default().with_root_certs(extra)));
    }
    Conn::new(builder).await.map_err(|e| {
        let failure = map_error(&e, at);
        match e {
            Error::Io(IoError::Tls(_)) | Error::Driver(DriverError::NoClientSslFlagFromServer)
                if verified =>
            {
                Failure::provider(format!(
                    "{}; TLS to a public address is always required and verified (certificate \
                     chain and host name)",
                    match e {
                        Error::Driver(_) => format!("{} does not offer TLS", at.at()),
                        _ => failure.message,
                    }
                ))
            }
            _ => failure,
        }
    })
}

/// Maps a driver error to the outcome it means, from the server's error number and the
/// connection's non-secret parts only: the server's message (which quotes what it was sent) and
/// the driver's text are never copied.
fn map_error(e: &Error, at: &Endpoint) -> Failure {
    match e {
        Error::Server(s) => match s.code {
            // ER_ACCESS_DENIED_ERROR.
            1045 => Failure::invalid(format!(
                "authentication failed{} on {} (error 1045)",
                at.user(),
                at.at()
            )),
            // ER_BAD_DB_ERROR: the login worked but the credential names a database that
            // does not exist; fixing the credential fixes it.
            1049 => {
                let database = at
                    .database
                    .as_ref()
                    .map(|d| format!(" '{d}'"))
                    .unwrap_or_default();
                Failure::invalid(format!(
                    "the database{database} does not exist on {} (error 1049)",
                    at.at()
                ))
            }
            // ER_DBACCESS_DENIED_ERROR, ER_HOST_NOT_PRIVILEGED, table/column/command denied.
            code @ (1044 | 1130 | 1142 | 1143 | 1227) => Failure::forbidden(format!(
                "permission denied{}{} at {} (error {code})",
                at.user(),
                at.on_database(),
                at.at()
            )),
            code => Failure::provider(format!("{} answered with an error (error {code})", at.at())),
        },
        Error::Io(IoError::Io(io)) => Failure::unreachable(format!(
            "the connection to {} failed: {}",
            at.at(),
            net::io_reason(io)
        )),
        Error::Io(IoError::Tls(tls)) => Failure::provider(format!(
            "TLS with {} failed: {}",
            at.at(),
            net::tls_reason(tls)
        )),
        Error::Url(_) => Failure::invalid(PARSE_HELP),
        Error::Driver(_) | Error::Other(_) => {
            Failure::provider(format!("the exchange with {} failed", at.at()))
        }
    }
}

/// Connects and runs `SELECT 1`; `Ok` carries the success message.
pub(crate) async fn validate(
    connection_string: &str,
    policy: &EgressPolicy,
) -> Result<String, Failure> {
    let opts = parse(connection_string)?;
    let at = endpoint(&opts);
    let mut conn = connect(&opts, &at, policy).await?;
    conn.query_drop("SELECT 1")
        .await
        .map_err(|e| map_error(&e, &at))?;
    let _ = conn.disconnect().await;
    Ok(format!(
        "logged in{} and ran SELECT 1",
        at.user
            .as_ref()
            .map(|u| format!(" as {u}"))
            .unwrap_or_default()
    ))
}

/// Discovers tables, views and columns outside the system databases.
pub(crate) async fn discover(
    connection_string: &str,
    policy: &EgressPolicy,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, Failure> {
    let opts = parse(connection_string)?;
    let at = endpoint(&opts);
    let mut conn = connect(&opts, &at, policy).await?;
    let schema = read_schema(&mut conn, options)
        .await
        .map_err(|e| map_error(&e, &at))?;
    let _ = conn.disconnect().await;
    Ok(schema)
}

const TABLES_SQL: &str = "\
SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_COMMENT FROM information_schema.TABLES
WHERE TABLE_SCHEMA NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema')
  AND TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED')";

const COLUMNS_SQL: &str = "\
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE,
       COLUMN_DEFAULT, COLUMN_COMMENT
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ";

const KEYS_SQL: &str = "\
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA IN ";

/// Rows of a catalogue query kept under the catalogue budget, and the budget that cut them,
/// if one did: rows past it are dropped as they arrive, never kept. The SQL carries the row
/// budget as a LIMIT, so the server stops by itself.
#[derive(Default)]
struct Kept {
    rows: Vec<Row>,
    budget: CatalogueBudget,
    cut: Option<Truncation>,
}

impl Kept {
    fn push(&mut self, row: Row) {
        if self.cut.is_some() {
            return;
        }
        let bytes: usize = (0..row.len())
            .map(|i| match row.as_ref(i) {
                Some(Value::Bytes(b)) => b.len() + 1,
                _ => 9,
            })
            .sum();
        match self.budget.take(bytes) {
            Ok(()) => self.rows.push(row),
            Err(why) => self.cut = Some(why),
        }
    }
}

/// The LIMIT of every catalogue query: one row past the budget tells that it was exceeded.
fn limit() -> String {
    format!(" LIMIT {}", MAX_CATALOGUE_ROWS + 1)
}

fn text(row: &Row, i: usize) -> String {
    opt_text(row, i).unwrap_or_default()
}

fn opt_text(row: &Row, i: usize) -> Option<String> {
    row.get_opt::<Option<String>, usize>(i)
        .and_then(Result::ok)
        .flatten()
}

async fn read_schema(conn: &mut Conn, options: &DiscoveryOptions) -> Result<DatabaseSchema, Error> {
    let mut kept = Kept::default();
    conn.query_iter(format!(
        "{TABLES_SQL} ORDER BY TABLE_SCHEMA, TABLE_NAME{}",
        limit()
    ))
    .await?
    .for_each(|row| kept.push(row))
    .await?;
    let tables: Vec<(String, Table)> = kept
        .rows
        .iter()
        .map(|row| {
            let kind = match text(row, 2).as_str() {
                "VIEW" => TableKind::View,
                _ => TableKind::Table,
            };
            let mut description = text(row, 3);
            // information_schema reports a view's comment as the word VIEW.
            if kind == TableKind::View && description == "VIEW" {
                description.clear();
            }
            let table = Table {
                name: text(row, 1),
                kind,
                description,
                columns: Vec::new(),
                primary_key: Vec::new(),
            };
            (text(row, 0), table)
        })
        .collect();
    let mut schema = SchemaBuilder::new(tables, options);
    if let Some(why) = kept.cut {
        schema.cut(why);
    }
    drop(kept);
    if schema.is_empty() {
        return Ok(schema.finish());
    }
    let namespaces = schema.namespaces();
    // Names go as parameters: no quoting rules (which depend on the SQL mode) to get right.
    let placeholders = format!("({})", vec!["?"; namespaces.len()].join(", "));
    let params: Vec<Value> = namespaces.into_iter().map(Value::from).collect();

    let mut columns = Kept::default();
    conn.exec_iter(
        format!(
            "{COLUMNS_SQL}{placeholders} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION{}",
            limit()
        ),
        params.clone(),
    )
    .await?
    .for_each(|row| columns.push(row))
    .await?;
    if let Some(why) = columns.cut {
        schema.cut(why);
    }
    for row in &columns.rows {
        let position = row
            .get_opt::<u64, usize>(3)
            .and_then(Result::ok)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0);
        // MariaDB spells "no default" on a nullable column as the word NULL (its literal
        // defaults are quoted, so a string 'NULL' stays distinct).
        let default_value = opt_text(row, 6).filter(|d| d != "NULL");
        let column = Column {
            name: text(row, 2),
            data_type: text(row, 4),
            nullable: text(row, 5) == "YES",
            default_value,
            description: text(row, 7),
            position,
        };
        schema.column(text(row, 0), text(row, 1), column);
    }

    let mut keys = Kept::default();
    conn.exec_iter(
        format!(
            "{KEYS_SQL}{placeholders} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION{}",
            limit()
        ),
        params,
    )
    .await?
    .for_each(|row| keys.push(row))
    .await?;
    if let Some(why) = keys.cut {
        schema.cut(why);
    }
    for row in &keys.rows {
        schema.key_column(text(row, 0), text(row, 1), text(row, 2));
    }
    Ok(schema.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_are_refused_without_echo() {
        let opts = parse("jdbc:mariadb://u:p@db.example.com:3307/app").unwrap();
        assert_eq!(opts.ip_or_hostname(), "db.example.com");
        assert_eq!(opts.tcp_port(), 3307);
        for bad in [
            "postgres://u:Sekr3t@h/db",
            "mysql://u:Sekr3t@h/db?require_ssl=Sekr3t",
            "Sekr3t",
        ] {
            let f = parse(bad).unwrap_err();
            assert!(!f.message.contains("Sekr3t"), "{}", f.message);
        }
        // An unescaped '&' in a password makes its tail a parameter name.
        let f = parse("mysql://u:p@h/db?password=ab&Sekr3t=1").unwrap_err();
        assert!(
            f.message.ends_with("it has an unknown parameter"),
            "{}",
            f.message
        );
        for bad in [
            "mysql://app:abc@Sekr3t@db.example.com/prod",
            "mariadb://app:ab/Sekr3t@db.example.com/prod",
            "mysql://app:ab#Sekr3t@db.example.com/prod",
        ] {
            let f = parse(bad).unwrap_err();
            assert!(!f.message.contains("Sekr3t"), "{}", f.message);
            assert!(
                f.message.contains("ambiguous") || f.message.contains("%23"),
                "{}",
                f.message
            );
        }
    }
}
