//! PostgreSQL connection strings as libpq reads them, in both forms (`postgresql://` URLs and
//! `key=value` strings, with `jdbc:` and `redshift://` prefixes accepted), reduced to what the
//! probe needs: a tokio-postgres [`Config`], the TLS mode with libpq's verifying modes (which
//! tokio-postgres does not parse), and the endpoints to dial in order.
//!
//! Parse errors never repeat the string: any character of it may be the password's.

use crate::db::net::{Failure, Verify};
use credentials_core::connection_url;
use std::str::FromStr;
use tokio_postgres::Config;
use tokio_postgres::config::Host;

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
pub(super) enum TlsMode {
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

    pub(super) fn verify(self) -> Verify {
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
pub(super) struct Target {
    /// The settings for tokio-postgres (`sslmode` reduced to what it understands).
    pub(super) config: Config,
    /// The TLS mode the string asked for.
    pub(super) tls: TlsMode,
    /// `(host name for TLS and messages, port)` in the string's order.
    pub(super) endpoints: Vec<(String, u16)>,
}

const PARSE_HELP: &str = "the connection string is not a valid PostgreSQL URL \
     (postgresql://user:password@host:5432/db) or key=value string (host=... user=... password=...)";

pub(super) fn parse(connection_string: &str, flavor: Flavor) -> Result<Target, Failure> {
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
        // tokio-postgres splits the user info at the first '@' anywhere: only a string that
        // every reader splits at the same place goes on, so no part of a password can become a
        // host to resolve or to name in a message.
        connection_url::parse(s).map_err(|why| Failure::invalid(why.to_string()))?;
        rewrite_url(s)?
    } else {
        rewrite_key_values(s)?
    };
    // tokio-postgres' parse errors can quote a character of the string, which may be the
    // password's; even an unknown option's name may be a piece of an unquoted password.
    let config = Config::from_str(&rewritten).map_err(|_| Failure::invalid(PARSE_HELP))?;
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
        // An unquoted password with a space reads as an unknown option named by its second half.
        let Err(f) = parse("host=h password=ab Sekr3t=1", Flavor::Postgres) else {
            panic!("parsed");
        };
        assert_eq!(f.message, PARSE_HELP);
    }

    #[test]
    fn ambiguous_user_info_is_refused_before_any_host_is_read() {
        for bad in [
            "postgresql://app:abc@Sekr3t@db.example.com/prod",
            "postgresql://app:Sekr3t/x@db.example.com/prod",
            "jdbc:redshift://app:ab#Sekr3t@cluster.example.com/dev",
            "postgres://db.example.com/prod?user=Sekr3t@corp",
        ] {
            let Err(f) = parse(bad, Flavor::Postgres) else {
                panic!("{bad} parsed");
            };
            assert_eq!(f.outcome, crate::ValidationOutcome::InvalidCredentials);
            assert!(!f.message.contains("Sekr3t"), "{}", f.message);
        }
        // Percent-encoded, the same password is read whole, and the host is the real one.
        let t = parse(
            "postgresql://app:abc%40Sekr3t@db.example.com/prod",
            Flavor::Postgres,
        )
        .unwrap();
        assert_eq!(t.config.get_password(), Some(&b"abc@Sekr3t"[..]));
        assert_eq!(t.endpoints, vec![("db.example.com".to_owned(), 5432)]);
    }
}
