//! What each [`Format`] accepts, checked on every write. A refusal says what is expected and
//! never quotes the value: the value may be a secret, and so may a fragment of it.
//!
//! Secrets are refused, not trimmed, when they carry surrounding whitespace or control
//! characters (a newline, a NUL): a silently changed secret is not the one the caller holds, so
//! it fails later, far from the mistake, and a newline in a value attached to a header would
//! split the request. Only PEM and JSON, whose text legitimately spans lines, are checked by
//! their own grammar instead.

use super::{Engine, Format};

/// The characters a URL may hold unescaped beyond letters and digits (RFC 3986), `%` included.
const URL_PUNCTUATION: &str = "-._~:/?#[]@!$&'()*+,;=%";

impl Format {
    /// Checks `value` against this format; the error says what is expected, without the value.
    /// A connection string of a field-chosen engine ([`Format::ConnectionStringOf`]) is checked
    /// for its shape only: resolve the engine first for the full check.
    pub fn check(&self, value: &str) -> Result<(), String> {
        match self {
            Format::Text => plain_text(value),
            Format::OneOf(values) => {
                if values.contains(&value) {
                    Ok(())
                } else {
                    Err(format!("must be one of {}", values.join(", ")))
                }
            }
            Format::Url(schemes) => url(value, schemes),
            Format::Host => expect(host(value), "must be a host name or an IP address"),
            Format::Port => expect(
                !value.is_empty()
                    && value.len() <= 5
                    && value.bytes().all(|b| b.is_ascii_digit())
                    && value.parse::<u16>().is_ok_and(|p| p != 0),
                "must be a port number, 1-65535",
            ),
            // Lands in a host name: letters, digits and dashes only.
            Format::Region => expect(
                value.len() <= 32
                    && value.starts_with(|c: char| c.is_ascii_lowercase())
                    && !value.ends_with('-')
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "must be a region such as us-east-1: lower-case letters, digits and dashes",
            ),
            // Lands in a host name; dots separate an optional region suffix.
            Format::Account => expect(
                !value.is_empty()
                    && value.len() <= 255
                    && !value.starts_with(['.', '-'])
                    && !value.ends_with(['.', '-'])
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')),
                "must be an account identifier such as myorg-myaccount: letters, digits, '-', '_' \
                 and '.'",
            ),
            Format::Json(keys) => json_object(value, keys),
            Format::Pem => expect(
                pem_key(value),
                "must be one PEM-encoded private key (-----BEGIN PRIVATE KEY----- ...)",
            ),
            Format::ConnectionString(engine) => connection_string(value, Some(*engine)),
            Format::ConnectionStringOf(_) => connection_string(value, None),
            Format::HeaderName => expect(
                !value.is_empty()
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)),
                "must be an HTTP header name: letters, digits and !#$%&'*+-.^_`|~",
            ),
            Format::Email => expect(
                value.rsplit_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty()
                        && local.len() <= 64
                        && local.chars().all(|c| !c.is_whitespace() && !c.is_control())
                        && !local.contains('@')
                        && domain.contains('.')
                        && host(domain)
                }),
                "must be an email address such as name@example.com",
            ),
        }
    }
}

fn expect(ok: bool, expected: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(expected.to_owned()) }
}

/// Free text on one line, as sent: no surrounding whitespace, no control characters.
fn plain_text(value: &str) -> Result<(), String> {
    if value.trim() != value {
        return Err("must not start or end with whitespace or a newline".to_owned());
    }
    if value.contains(char::is_control) {
        return Err("must not contain control characters (newlines, tabs, NUL)".to_owned());
    }
    Ok(())
}

/// An absolute URL of one of `schemes` with a host, in printable ASCII.
fn url(value: &str, schemes: &[&str]) -> Result<(), String> {
    let expected = || {
        format!(
            "must be an absolute {} URL with a host, e.g. {}://example.com/path",
            schemes.join(" or "),
            schemes.first().copied().unwrap_or("https"),
        )
    };
    let printable = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || URL_PUNCTUATION.contains(c));
    let (scheme, rest) = value.split_once("://").ok_or_else(expected)?;
    // The url crate reads `https:///host` as `https://host/`; a host must follow the `//`.
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if !printable
        || host.is_empty()
        || host.starts_with(':')
        || !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(expected());
    }
    match url::Url::parse(value) {
        Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err(expected()),
    }
}

/// A DNS name (labels of letters, digits, `-` and `_`), or an IPv4 or IPv6 address (bare or in
/// brackets).
fn host(value: &str) -> bool {
    let v6 = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    if v6.parse::<std::net::Ipv6Addr>().is_ok() || value.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let name = value.strip_suffix('.').unwrap_or(value);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A JSON object holding each of `keys` as a non-empty string. serde_json's error is dropped:
/// it can quote the input.
fn json_object(value: &str, keys: &[&str]) -> Result<(), String> {
    let expected = || format!("must be a JSON object with the keys {}", keys.join(", "));
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(value).map_err(|_| expected())?;
    let has = |key: &&str| {
        object
            .get(*key)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    if keys.iter().all(has) {
        Ok(())
    } else {
        Err(expected())
    }
}

/// Exactly one PEM block holding a private key; whitespace around it is part of the PEM text.
fn pem_key(value: &str) -> bool {
    let trimmed = value.trim_matches(|c: char| c.is_ascii_whitespace());
    trimmed.starts_with("-----BEGIN ")
        && trimmed.ends_with("-----")
        && pem::parse_many(trimmed).is_ok_and(|blocks| {
            blocks.len() == 1
                && blocks[0].tag().ends_with("PRIVATE KEY")
                && !blocks[0].contents().is_empty()
        })
}

/// The URL schemes of an engine's connection strings, as its probe reads them.
fn schemes(engine: Engine) -> &'static [&'static str] {
    match engine {
        Engine::PostgreSql => &["postgres", "postgresql"],
        Engine::Redshift => &["redshift", "postgres", "postgresql"],
        Engine::MySql => &["mysql", "mariadb"],
        Engine::MsSql => &["sqlserver", "mssql"],
        Engine::ClickHouse => &["clickhouse", "https", "http"],
        Engine::BigQuery => &["bigquery"],
        Engine::Snowflake => &["snowflake"],
    }
}

/// A connection URL of the engine's schemes (`jdbc:` allowed before it), or a libpq or ADO
/// key=value string; of any engine when `engine` is `None`.
fn connection_string(value: &str, engine: Option<Engine>) -> Result<(), String> {
    plain_text(value)?;
    let expected = || match engine {
        Some(engine) => format!(
            "must be a {} connection URL ({}://host/...) or a key=value connection string",
            engine.as_str(),
            schemes(engine)[0],
        ),
        None => "must be a connection URL or a key=value connection string".to_owned(),
    };
    match value.split_once("://") {
        Some((scheme, _)) => {
            let scheme = scheme
                .get(..5)
                .filter(|p| p.eq_ignore_ascii_case("jdbc:"))
                .map_or(scheme, |_| &scheme[5..]);
            let known = match engine {
                Some(engine) => schemes(engine)
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(scheme)),
                None => Engine::ALL
                    .into_iter()
                    .any(|e| schemes(e).iter().any(|s| s.eq_ignore_ascii_case(scheme))),
            };
            expect(known, &expected())
        }
        None => expect(
            crate::mask::key_value_pairs(value).is_some_and(|pairs| !pairs.is_empty()),
            &expected(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: &str = "Fmt-MARKER-51d0";

    fn refused(format: Format, value: &str) -> String {
        let err = format.check(value).unwrap_err();
        assert!(!err.contains(MARKER), "{err}");
        err
    }

    #[test]
    fn text_is_one_line_as_sent() {
        assert!(Format::Text.check("sk-proj abc é").is_ok());
        for bad in [
            format!(" {MARKER}"),
            format!("{MARKER}\n"),
            format!("{MARKER}\r\n"),
            format!("{MARKER}\u{0}"),
            format!("a\u{0}{MARKER}"),
            format!("{MARKER}\tx"),
        ] {
            refused(Format::Text, &bad);
        }
    }

    #[test]
    fn ports() {
        for ok in ["1", "587", "65535"] {
            assert!(Format::Port.check(ok).is_ok(), "{ok}");
        }
        for bad in ["abc", "99999", "0", "-1", "+80", "", "80 ", "065536"] {
            assert_eq!(refused(Format::Port, bad), "must be a port number, 1-65535");
        }
    }

    #[test]
    fn urls_need_their_scheme_and_a_host() {
        let http = Format::Url(&["https", "http"]);
        for ok in [
            "https://api.example.com/v1",
            "http://127.0.0.1:8080/x?y=1#z",
            "HTTPS://[::1]:443/",
        ] {
            assert!(http.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)".to_owned(),
            "javascript://example.com/%0aalert(1)".to_owned(),
            "file:///etc/passwd".to_owned(),
            "https:///nohost".to_owned(),
            "https:example.com".to_owned(),
            format!("https://example.com/{MARKER} x"),
            format!("https://example.com/{MARKER}\n"),
            "ftp://example.com/f".to_owned(),
        ] {
            assert_eq!(
                refused(http, &bad),
                "must be an absolute https or http URL with a host, e.g. https://example.com/path",
                "{bad}"
            );
        }
    }

    #[test]
    fn hosts_regions_accounts_emails_headers() {
        for ok in [
            "smtp.example.com",
            "127.0.0.1",
            "::1",
            "[::1]",
            "mail_1.example.com.",
        ] {
            assert!(Format::Host.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "-x.example.com",
            "x..y",
            "h/path",
            "h:25",
            "é.example",
        ] {
            assert!(Format::Host.check(bad).is_err(), "{bad}");
        }
        assert!(Format::Region.check("eu-central-1").is_ok());
        for bad in [
            "not a region!",
            "US-EAST-1",
            "",
            "-us",
            "us-",
            &"a".repeat(33),
        ] {
            assert!(Format::Region.check(bad).is_err(), "{bad}");
        }
        assert!(Format::Account.check("myorg-myaccount.eu-west-1").is_ok());
        for bad in ["", "acme/x", ".acme", "acme.", "a b"] {
            assert!(Format::Account.check(bad).is_err(), "{bad}");
        }
        assert!(Format::Email.check("bot@example.com").is_ok());
        for bad in [
            "bot",
            "@example.com",
            "bot@",
            "bot@localhost",
            "a b@example.com",
        ] {
            assert!(Format::Email.check(bad).is_err(), "{bad}");
        }
        assert!(Format::HeaderName.check("X-Api-Key").is_ok());
        assert!(Format::HeaderName.check("X-Api-Key\r\nHost: evil").is_err());
    }

    #[test]
    fn json_needs_an_object_with_the_keys() {
        let sa = Format::Json(&["client_email", "private_key"]);
        assert!(
            sa.check("{\n  \"client_email\": \"a@b.iam\",\n  \"private_key\": \"-----BEGIN\"\n}\n")
                .is_ok()
        );
        for bad in [
            MARKER.to_owned(),
            format!("{{\"client_email\": \"{MARKER}\"}}"),
            format!("[\"{MARKER}\"]"),
            format!("{{\"client_email\": \"a\", \"private_key\": 1, \"x\": \"{MARKER}\"}}"),
            format!("{{\"client_email\": \"a\", \"private_key\": \"{MARKER}\"}} trailing"),
        ] {
            assert_eq!(
                refused(sa, &bad),
                "must be a JSON object with the keys client_email, private_key"
            );
        }
    }

    #[test]
    fn pem_needs_one_private_key_block() {
        let key =
            "-----BEGIN PRIVATE KEY-----\nTUFSS0VSLWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
        assert!(Format::Pem.check(key).is_ok());
        assert!(Format::Pem.check(&format!("\n{key}\n")).is_ok());
        let cert = key.replace("PRIVATE KEY", "CERTIFICATE");
        for bad in [
            MARKER.to_owned(),
            cert,
            format!("{key}{key}"),
            format!("{MARKER}{key}"),
            key.replace("TUFS", "!!!!"),
            format!("{key}\u{0}"),
        ] {
            assert_eq!(
                refused(Format::Pem, &bad),
                "must be one PEM-encoded private key (-----BEGIN PRIVATE KEY----- ...)"
            );
        }
    }

    #[test]
    fn connection_strings_of_their_engine() {
        let pg = Format::ConnectionString(Engine::PostgreSql);
        for ok in [
            "postgres://u:p@h:5432/db",
            "postgresql://h/db",
            "jdbc:postgresql://h/db",
            "host=h port=5432 user=u password='a b' dbname=d",
        ] {
            assert!(pg.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            format!("mysql://u:{MARKER}@h/db"),
            format!("postgres://u:{MARKER}@h/db\n"),
            format!(" postgres://u:{MARKER}@h/db"),
            format!("postgres://u:{MARKER}\u{0}@h/db"),
            MARKER.to_owned(),
        ] {
            assert!(refused(pg, &bad).starts_with("must "), "{bad}");
        }
        let ms = Format::ConnectionString(Engine::MsSql);
        assert!(
            ms.check("Server=tcp:h,1433;Database=d;User ID=u;Password=p;")
                .is_ok()
        );
        assert!(ms.check("jdbc:sqlserver://h:1433;databaseName=d").is_ok());
        assert!(
            Format::ConnectionString(Engine::MySql)
                .check("mariadb://u@h/db")
                .is_ok()
        );
        assert!(
            Format::ConnectionStringOf("schema_type")
                .check("mysql://h/db")
                .is_ok()
        );
        assert!(
            Format::ConnectionStringOf("schema_type")
                .check("gopher://h/db")
                .is_err()
        );
    }
}
