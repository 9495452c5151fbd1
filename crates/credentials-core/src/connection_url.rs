//! The authority of a URL-form connection string (`scheme://[user[:password]@]hosts/...`), read
//! one way only, so that the value check at write time and every probe agree on where the
//! password ends and the host begins.
//!
//! Drivers disagree on strings that RFC 3986 would call malformed: tokio-postgres splits the
//! user info at the first `@` anywhere in the string, libpq at the first `@` before a `/`, the
//! WHATWG parser (the `url` crate, used for MySQL and ClickHouse) at the last `@` before the
//! first `/`, `?` or `#` (or `\` for http). A password with a raw `@`, `/`, `?` or `#` is
//! therefore read differently by each, and the part one of them takes for the host is a piece of
//! the password, which would then go to a resolver and into a message. Such strings are refused
//! instead of guessed at:
//!
//! - the authority runs from `://` to the first `/`, `?` or `#`;
//! - the whole string holds at most one raw `@`, and it must be inside the authority (it then
//!   ends the user info); every other `@` is written `%40`;
//! - no raw `#` anywhere (some drivers read a fragment, others a password character) and no `\`
//!   in the authority (WHATWG reads it as `/`);
//! - what follows the user info is a comma-separated list of `host`, `host:port`, `[v6]` or
//!   `[v6]:port` items (or nothing, when the hosts are given as parameters).
//!
//! Under these rules every driver splits the string at the same place. Refusals name the rule
//! broken, never a character of the string.

use crate::catalogue::{Format, TypeSpec};
use crate::secret::SecretString;
use std::collections::BTreeMap;
use std::fmt;

/// The parts of a URL-form connection string's authority, as written (not percent-decoded).
#[derive(Clone, PartialEq, Eq)]
pub struct Authority<'a> {
    /// The scheme, e.g. `postgresql` or `jdbc:mysql`.
    pub scheme: &'a str,
    /// The user name, if the string has user info.
    pub user: Option<&'a str>,
    /// Whether the user info carries a password (after the first `:`).
    pub has_password: bool,
    /// The host list after the user info, e.g. `a.example:5432,b.example`; may be empty.
    pub hosts: &'a str,
}

impl fmt::Debug for Authority<'_> {
    // The password is left out: a Debug print must never show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("has_password", &self.has_password)
            .field("hosts", &self.hosts)
            .finish()
    }
}

impl<'a> Authority<'a> {
    /// The host items, each split into host (IPv6 without brackets) and port as written.
    pub fn endpoints(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        let hosts = self.hosts;
        hosts
            .split(',')
            .filter(|item| !item.is_empty())
            .filter_map(host_port)
    }
}

/// Why a URL-form connection string is refused. The texts are fixed: none repeats the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ambiguity {
    /// More than one raw `@`, or one outside the authority.
    #[error(
        "the connection URL has a raw '@' that is not the one ending the user info, so where the \
         password ends is ambiguous; percent-encode '@' in the user name, password and \
         parameters as %40 (and '/', '?', '#', ':' in the password as %2F, %3F, %23, %3A)"
    )]
    At,
    /// A raw `#`.
    #[error(
        "the connection URL has a raw '#', which drivers read differently; percent-encode it as %23"
    )]
    Hash,
    /// A `\` in the authority.
    #[error(
        "the connection URL has a '\\' before its path, which some parsers read as '/'; \
         percent-encode it as %5C"
    )]
    Backslash,
    /// The part after the user info is not a host list.
    #[error(
        "the host part of the connection URL is not host[:port] (a list of them, comma-separated); \
         if the user name or password holds '/', '?', '#', ':' or '@', percent-encode them"
    )]
    Hosts,
}

/// The authority of `s` if it is a URL-form connection string (`None` for a key=value or ADO
/// string); an error when its user info could be read in more than one way.
pub fn parse(s: &str) -> Result<Option<Authority<'_>>, Ambiguity> {
    let s = s.trim();
    let Some((scheme, rest)) = s.split_once("://") else {
        return Ok(None);
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.:".contains(c));
    if !scheme_ok {
        // "://" inside a key=value string (a password, say) does not make it a URL.
        return Ok(None);
    }
    if rest.contains('#') {
        return Err(Ambiguity::Hash);
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    if after.contains('@') || authority.matches('@').count() > 1 {
        return Err(Ambiguity::At);
    }
    if authority.contains('\\') {
        return Err(Ambiguity::Backslash);
    }
    let (user, has_password, hosts) = match authority.split_once('@') {
        Some((info, hosts)) => {
            let (user, has_password) = match info.split_once(':') {
                Some((user, _)) => (user, true),
                None => (info, false),
            };
            (Some(user), has_password, hosts)
        }
        None => (None, false, authority),
    };
    let parsed = Authority {
        scheme,
        user,
        has_password,
        hosts,
    };
    let items_ok = hosts.is_empty()
        || hosts
            .split(',')
            .all(|item| host_port(item).is_some_and(|(h, _)| !h.is_empty()));
    if !items_ok {
        return Err(Ambiguity::Hosts);
    }
    Ok(Some(parsed))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, with a port of 1-65535; `None` otherwise.
fn host_port(item: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = match item.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']')?;
            let ok = host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || ":.%".contains(c) || c.is_ascii_alphanumeric());
            if !ok {
                return None;
            }
            match rest {
                "" => (host, None),
                _ => (host, Some(rest.strip_prefix(':')?)),
            }
        }
        None => {
            let (host, port) = match item.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (item, None),
            };
            let ok = host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~%".contains(c));
            if !ok {
                return None;
            }
            (host, port)
        }
    };
    // A TCP port is 1-65535: drivers refuse anything else at connect time, after the value
    // was stored as if it were usable.
    if let Some(port) = port
        && (!port.chars().all(|c| c.is_ascii_digit()) || !matches!(port.parse::<u16>(), Ok(1..)))
    {
        return None;
    }
    Some((host, port))
}

/// Checks every connection-string field of a written value; the error names the field and the
/// rule broken, never the value.
pub fn check_fields(
    spec: &TypeSpec,
    fields: &BTreeMap<String, SecretString>,
) -> Result<(), (&'static str, Ambiguity)> {
    for f in spec.fields {
        if !matches!(
            f.format,
            Format::ConnectionString(_) | Format::ConnectionStringOf(_)
        ) {
            continue;
        }
        if let Some(value) = fields.get(f.name) {
            parse(value.expose()).map_err(|why| (f.name, why))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(s: &str) -> Vec<(&str, Option<&str>)> {
        parse(s).unwrap().unwrap().endpoints().collect()
    }

    #[test]
    fn plain_urls_split_at_their_one_at() {
        let a = parse("postgresql://app:s3cr%40t@db.example.com:5432/prod?sslmode=require")
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.scheme, a.user, a.has_password, a.hosts),
            ("postgresql", Some("app"), true, "db.example.com:5432")
        );
        // A ':' in the password is fine: every parser splits the user info at its first ':'.
        let a = parse("mysql://u:a:b:c@h/db").unwrap().unwrap();
        assert_eq!((a.user, a.hosts), (Some("u"), "h"));
        assert_eq!(
            hosts("postgresql://u@a.example,[::1]:6000,b.example:7/db"),
            [
                ("a.example", None),
                ("::1", Some("6000")),
                ("b.example", Some("7"))
            ]
        );
        assert_eq!(hosts("postgresql:///db?host=h"), []);
        assert_eq!(hosts("jdbc:clickhouse://h:8123"), [("h", Some("8123"))]);
        assert!(hosts("postgresql://u:p@h/db?user=me%40corp").len() == 1);
    }

    #[test]
    fn other_forms_are_not_urls() {
        for s in [
            "host=h user=u password=a://b@c@d",
            "Server=tcp:h,1433;Password=p@ss",
            "",
        ] {
            assert_eq!(parse(s), Ok(None), "{s}");
        }
    }

    #[test]
    fn ambiguous_user_info_is_refused() {
        for (s, why) in [
            (
                "postgresql://app:abc@def@db.example.com/prod",
                Ambiguity::At,
            ),
            ("postgresql://app:ab/c@db.example.com/prod", Ambiguity::At),
            ("postgresql://app:ab?c@db.example.com/prod", Ambiguity::At),
            ("postgresql://db.example.com/prod?user=a@b", Ambiguity::At),
            ("postgresql://u:p@h/db?options=a@b", Ambiguity::At),
            ("mysql://app:ab#c@db.example.com/prod", Ambiguity::Hash),
            ("postgresql://u:p@h/db?password=a#b", Ambiguity::Hash),
            ("https://u:p\\q@h/", Ambiguity::Backslash),
            ("postgresql://app:secret/db", Ambiguity::Hosts),
            ("postgresql://u:p@h:x/db", Ambiguity::Hosts),
            ("postgresql://u:p@h a/db", Ambiguity::Hosts),
            ("postgresql://u:p@h:/db", Ambiguity::Hosts),
            ("postgresql://u:p@h:99999/db", Ambiguity::Hosts),
            ("postgresql://u:p@h:0/db", Ambiguity::Hosts),
            ("postgresql://u:p@[::1]:65536/db", Ambiguity::Hosts),
            ("postgresql://u:p@[::1/db", Ambiguity::Hosts),
            ("postgresql://u:p@,/db", Ambiguity::Hosts),
        ] {
            assert_eq!(parse(s), Err(why), "{s}");
        }
    }

    #[test]
    fn refusals_and_debug_never_show_the_string() {
        let marker = "Tr0ub4dor";
        for s in [
            format!("postgresql://app:{marker}@x@h/db"),
            format!("postgresql://app:{marker}#@h/db"),
            format!("postgresql://app:{marker}@h:{marker}/db"),
        ] {
            let err = parse(&s).unwrap_err();
            assert!(!err.to_string().contains(marker), "{err}");
        }
        let good = format!("postgresql://app:{marker}@h/db");
        let a = parse(&good).unwrap().unwrap();
        assert!(!format!("{a:?}").contains(marker));
    }

    #[test]
    fn the_value_check_refuses_them_naming_the_field() {
        use crate::value::{ValueInput, check};
        let marker = "Tr0ub4dor";
        let bad = format!("postgresql://app:{marker}@def@db.example.com/prod");
        let postgres = crate::catalogue::lookup("postgresql").unwrap();
        let err = check(postgres, ValueInput::Secret(bad.as_str().into())).unwrap_err();
        assert_eq!(err.field, "value.secret");
        assert_eq!(err.description, Ambiguity::At.to_string());
        let database = crate::catalogue::lookup("database").unwrap();
        let fields = ValueInput::Fields(BTreeMap::from([
            ("schema_type".to_owned(), "mysql".into()),
            ("connection_string".to_owned(), bad.as_str().into()),
        ]));
        let err = check(database, fields).unwrap_err();
        assert_eq!(err.field, "value.fields[connection_string]");
        assert!(!err.to_string().contains(marker), "{err}");
        let good = format!("postgresql://app:{marker}%40def@db.example.com/prod");
        assert!(check(postgres, ValueInput::Secret(good.as_str().into())).is_ok());
    }
}
