//! MySQL and MariaDB: a login plus `SELECT 1`, and schema discovery from `information_schema`.
//!
//! The URL's host is resolved through the egress guard and mysql_async is handed the checked
//! addresses (`resolved_ips`), so it dials exactly those and uses the name only for TLS.

use super::net::{Failure, excerpt};
use crate::egress::EgressPolicy;
use credentials_core::schema::{
    Column, DatabaseSchema, DiscoveryOptions, SchemaBuilder, Table, TableKind,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Error, IoError, Opts, OptsBuilder, Row, UrlError, Value};

const PARSE_HELP: &str =
    "the connection string is not a valid MySQL URL (mysql://user:password@host:3306/db)";

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
    // Messages name a parameter at most, never a value: values can be the password.
    Opts::from_url(s).map_err(|e| match e {
        UrlError::UnsupportedScheme { .. } => {
            Failure::invalid(format!("{PARSE_HELP}: the scheme must be mysql://"))
        }
        UrlError::UnknownParameter { param } if is_plain(&param) => {
            Failure::invalid(format!("{PARSE_HELP}: unknown parameter {param:?}"))
        }
        UrlError::InvalidParamValue { param, .. } if is_plain(&param) => {
            Failure::invalid(format!("{PARSE_HELP}: invalid value for {param:?}"))
        }
        _ => Failure::invalid(PARSE_HELP),
    })
}

fn is_plain(name: &str) -> bool {
    name.len() <= 40 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

async fn connect(opts: &Opts, policy: &EgressPolicy) -> Result<Conn, Failure> {
    let host = opts.ip_or_hostname().to_owned();
    let addrs = policy.resolve(&host, opts.tcp_port()).await?;
    let ips: Vec<_> = addrs.iter().map(|a| a.ip()).collect();
    let builder = OptsBuilder::from_opts(opts.clone())
        .resolved_ips(Some(ips))
        // On a loopback address the driver would otherwise ask for @@socket and reconnect
        // through that Unix socket, which the guard never checked.
        .prefer_socket(false)
        .socket(None::<String>);
    Conn::new(builder).await.map_err(|e| map_error(&e, &host))
}

fn map_error(e: &Error, host: &str) -> Failure {
    match e {
        Error::Server(s) => {
            let message = excerpt(&s.message, 300);
            match s.code {
                // ER_ACCESS_DENIED_ERROR.
                1045 => Failure::invalid(format!("login refused: {message}")),
                // ER_BAD_DB_ERROR: the login worked but the credential names a database that
                // does not exist; fixing the credential fixes it.
                1049 => Failure::invalid(format!("login refused: {message}")),
                // ER_DBACCESS_DENIED_ERROR, ER_HOST_NOT_PRIVILEGED, table/column/command denied.
                1044 | 1130 | 1142 | 1143 | 1227 => {
                    Failure::forbidden(format!("permission denied: {message}"))
                }
                code => Failure::provider(format!(
                    "the server answered with an error: {message} (error {code})"
                )),
            }
        }
        Error::Io(IoError::Io(io)) => {
            Failure::unreachable(format!("the connection to {host} failed: {io}"))
        }
        Error::Io(IoError::Tls(tls)) => Failure::provider(format!("TLS with {host} failed: {tls}")),
        Error::Url(_) => Failure::invalid(PARSE_HELP),
        Error::Driver(d) => Failure::provider(format!("the exchange with {host} failed: {d}")),
        Error::Other(o) => Failure::provider(format!("the exchange with {host} failed: {o}")),
    }
}

fn secrets<'a>(opts: &'a Opts, connection_string: &'a str) -> Vec<&'a str> {
    let mut out = vec![connection_string];
    out.extend(opts.pass());
    out
}

/// Connects and runs `SELECT 1`; `Ok` carries the success message.
pub(crate) async fn validate(
    connection_string: &str,
    policy: &EgressPolicy,
) -> Result<String, Failure> {
    let opts = parse(connection_string)?;
    let host = opts.ip_or_hostname().to_owned();
    let result = async {
        let mut conn = connect(&opts, policy).await?;
        conn.query_drop("SELECT 1")
            .await
            .map_err(|e| map_error(&e, &host))?;
        let _ = conn.disconnect().await;
        Ok(format!(
            "logged in{} and ran SELECT 1",
            opts.user().map(|u| format!(" as {u}")).unwrap_or_default()
        ))
    }
    .await;
    result.map_err(|f: Failure| f.redacted(&secrets(&opts, connection_string)))
}

/// Discovers tables, views and columns outside the system databases.
pub(crate) async fn discover(
    connection_string: &str,
    policy: &EgressPolicy,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, Failure> {
    let opts = parse(connection_string)?;
    let host = opts.ip_or_hostname().to_owned();
    let result = async {
        let mut conn = connect(&opts, policy).await?;
        let schema = read_schema(&mut conn, options)
            .await
            .map_err(|e| map_error(&e, &host))?;
        let _ = conn.disconnect().await;
        Ok(schema)
    }
    .await;
    result.map_err(|f: Failure| f.redacted(&secrets(&opts, connection_string)))
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

fn text(row: &Row, i: usize) -> String {
    opt_text(row, i).unwrap_or_default()
}

fn opt_text(row: &Row, i: usize) -> Option<String> {
    row.get_opt::<Option<String>, usize>(i)
        .and_then(Result::ok)
        .flatten()
}

async fn read_schema(conn: &mut Conn, options: &DiscoveryOptions) -> Result<DatabaseSchema, Error> {
    let tables: Vec<(String, Table)> = conn
        .query::<Row, _>(TABLES_SQL)
        .await?
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
    if schema.is_empty() {
        return Ok(schema.finish());
    }
    let namespaces = schema.namespaces();
    // Names go as parameters: no quoting rules (which depend on the SQL mode) to get right.
    let placeholders = format!("({})", vec!["?"; namespaces.len()].join(", "));
    let params: Vec<Value> = namespaces.into_iter().map(Value::from).collect();

    let columns: Vec<Row> = conn
        .exec(
            format!(
                "{COLUMNS_SQL}{placeholders} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
            ),
            params.clone(),
        )
        .await?;
    for row in &columns {
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

    let keys: Vec<Row> = conn
        .exec(
            format!("{KEYS_SQL}{placeholders} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"),
            params,
        )
        .await?;
    for row in &keys {
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
        let f = parse("mysql://u:Sekr3t@h/db?bogus=1").unwrap_err();
        assert!(
            f.message.ends_with("unknown parameter \"bogus\""),
            "{}",
            f.message
        );
    }
}
