//! Masked previews: what management responses show instead of a secret.

use crate::catalogue::{Format, TypeSpec};
use crate::value::SecretValue;

const HIDDEN: &str = "****";
const PREVIEW_MAX_CHARS: usize = 256;
const CONNECTION_MAX_CHARS: usize = 200;
const FIELD_MAX_CHARS: usize = 64;

/// The preview of a value: its masked primary secret, then its non-secret fields.
pub fn preview(spec: &TypeSpec, value: &SecretValue) -> String {
    let mut out = match value.primary_entry(spec) {
        Some((name, v)) if spec.field(name).is_some_and(|f| shows_location(f.format)) => {
            mask_connection_string(v.expose())
        }
        Some((_, v)) => mask_secret(v.expose()),
        None => HIDDEN.to_owned(),
    };
    let plain: Vec<String> = spec
        .fields
        .iter()
        .filter(|f| !f.secret)
        .filter_map(|f| {
            let v = value.get(f.name)?;
            Some(format!(
                "{}={}",
                f.name,
                truncate(v.expose(), FIELD_MAX_CHARS)
            ))
        })
        .collect();
    if !plain.is_empty() {
        out = format!("{out} ({})", plain.join(", "));
    }
    truncate(&out, PREVIEW_MAX_CHARS).to_owned()
}

/// Whether a secret of this format is a location (a connection string or URL) whose non-secret
/// parts the preview may show.
fn shows_location(format: Format) -> bool {
    matches!(
        format,
        Format::ConnectionString(_) | Format::ConnectionStringOf(_) | Format::Url(_)
    )
}

/// A secret with only its ends shown, and nothing at all of a short one.
pub fn mask_secret(secret: &str) -> String {
    let len = secret.chars().count();
    let (head, tail) = match len {
        0..16 => return HIDDEN.to_owned(),
        16..24 => (3, 2),
        _ => (5, 4),
    };
    let head: String = secret.chars().take(head).collect();
    let tail: String = secret.chars().skip(len - tail).collect();
    format!("{head}...{tail}")
}

/// A connection string (URL, libpq key=value or ADO form) with its password replaced by `****`
/// and everything not known to be harmless dropped; `****` if it cannot be parsed (its first
/// and last characters could be those of a password).
pub fn mask_connection_string(s: &str) -> String {
    match mask_url(s)
        .or_else(|| mask_ado(s))
        .or_else(|| mask_libpq(s))
    {
        Some(masked) => truncate(&masked, CONNECTION_MAX_CHARS).to_owned(),
        None => HIDDEN.to_owned(),
    }
}

fn truncate(s: &str, max_chars: usize) -> &str {
    s.char_indices().nth(max_chars).map_or(s, |(i, _)| &s[..i])
}

/// `scheme://[user[:password]@]host[:port][/db][?query]`. The query is dropped: it may carry a
/// password.
fn mask_url(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.:".contains(c));
    if !scheme_ok {
        return None;
    }
    // Passwords often carry unescaped '@', '/' or ':', so the user info ends at the last '@',
    // unless the user name would then span a delimiter: that '@' is in the path or query.
    let split = rest.rfind('@').and_then(|at| {
        let info = &rest[..at];
        let user = info.split_once(':').map_or(info, |(user, _)| user);
        (!user.contains(['/', '?', '#'])).then(|| (user, info.contains(':'), &rest[at + 1..]))
    });
    let mut out = format!("{scheme}://");
    let after = match split {
        Some((user, has_password, after)) => {
            if user.contains(char::is_control) {
                return None;
            }
            out.push_str(user);
            if has_password {
                out.push(':');
                out.push_str(HIDDEN);
            }
            out.push('@');
            after
        }
        None => rest,
    };
    let (hosts, path) = after.split_at(after.find(['/', '?', '#']).unwrap_or(after.len()));
    if !(hosts.is_empty() || hosts.split(',').all(valid_host_port)) {
        return None;
    }
    out.push_str(hosts);
    if let Some(path) = path.strip_prefix('/') {
        let db = &path[..path.find(['/', '?', '#', ';']).unwrap_or(path.len())];
        // A ':' or '@' here means the user info was misread: better show nothing.
        if db.contains([':', '@']) || db.contains(char::is_control) {
            return None;
        }
        if !db.is_empty() {
            out.push('/');
            out.push_str(db);
        }
    }
    Some(out)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; a non-numeric "port" is likely part of a password.
fn valid_host_port(item: &str) -> bool {
    let (host, port) = match item.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some(split) => split,
            None => return false,
        },
        None => item.split_at(item.find(':').unwrap_or(item.len())),
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._%:".contains(c))
        && port_ok
}

/// What a key of a key=value form holds.
enum Key {
    Shown,
    Password,
}

/// ADO / SQL Server form: `Server=tcp:h,1433;Database=d;User ID=u;Password=p;...`.
fn mask_ado(s: &str) -> Option<String> {
    let pairs = ado_pairs(s)?;
    render(&pairs, ";", |key| match key.to_ascii_lowercase().as_str() {
        "server" | "data source" | "address" | "addr" | "network address" | "database"
        | "initial catalog" | "user id" | "uid" | "user" => Some(Key::Shown),
        "password" | "pwd" => Some(Key::Password),
        _ => None,
    })
}

/// libpq form: `host=h port=5432 user=u password=p dbname=d sslmode=require`.
fn mask_libpq(s: &str) -> Option<String> {
    let pairs = libpq_pairs(s)?;
    render(&pairs, " ", |key| match key {
        "host" | "port" | "user" | "dbname" => Some(Key::Shown),
        "password" => Some(Key::Password),
        _ => None,
    })
}

/// The known pairs, in their order, with passwords masked; `None` if none is known or a shown
/// value looks like a misparse (which could otherwise expose part of a password).
fn render(pairs: &[(&str, &str)], sep: &str, kind: impl Fn(&str) -> Option<Key>) -> Option<String> {
    let mut kept = Vec::new();
    for (key, value) in pairs {
        match kind(key) {
            Some(Key::Password) => kept.push(format!("{key}={HIDDEN}")),
            Some(Key::Shown) => {
                if value.contains(|c: char| c.is_control() || "=;'\"".contains(c)) {
                    return None;
                }
                kept.push(format!("{key}={value}"));
            }
            None => {}
        }
    }
    (!kept.is_empty()).then(|| kept.join(sep))
}

/// Splits the ADO form into trimmed (key, raw value) pairs; values may be quoted with `"` or `'`
/// (a doubled quote escapes itself) to hold a `;`.
fn ado_pairs(s: &str) -> Option<Vec<(&str, &str)>> {
    let mut pairs = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if rest.is_empty() {
            return Some(pairs);
        }
        let (key, after) = rest.split_once('=')?;
        if key.contains(';') {
            return None;
        }
        let after = after.trim_start();
        let value_len = match after.chars().next() {
            Some(quote @ ('"' | '\'')) => quoted_len(after, quote)?,
            _ => after.find(';').unwrap_or(after.len()),
        };
        let (value, next) = after.split_at(value_len);
        if !(next.trim_start().is_empty() || next.trim_start().starts_with(';')) {
            return None;
        }
        pairs.push((key.trim(), value.trim_end()));
        rest = next;
    }
}

/// Length of a value quoted by `quote` at the start of `s`, where a doubled quote is literal.
fn quoted_len(s: &str, quote: char) -> Option<usize> {
    let mut i = 1;
    loop {
        let close = i + s[i..].find(quote)?;
        if s[close + 1..].starts_with(quote) {
            i = close + 2;
        } else {
            return Some(close + 1);
        }
    }
}

/// Splits the libpq form into (key, raw value) pairs, with libpq's quoting and escapes.
fn libpq_pairs(s: &str) -> Option<Vec<(&str, &str)>> {
    let mut pairs = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let key_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at(key_len);
        if key.is_empty() {
            return None;
        }
        let after = after.trim_start().strip_prefix('=')?.trim_start();
        let (value, next) = after.split_at(libpq_value_len(after)?);
        pairs.push((key, value));
        rest = next.trim_start();
    }
    Some(pairs)
}

fn libpq_value_len(s: &str) -> Option<usize> {
    let quoted = s.starts_with('\'');
    let mut chars = s.char_indices().skip(usize::from(quoted));
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next()?;
            }
            '\'' if quoted => return Some(i + 1),
            c if !quoted && c.is_whitespace() => return Some(i),
            _ => {}
        }
    }
    (!quoted).then_some(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{all, lookup};
    use crate::secret::SecretString;
    use crate::value::{ValueInput, check};
    use std::collections::BTreeMap;

    const PW: &str = "Pw-MARKER-93f1";

    fn value(id: &str, pairs: &[(&str, &str)]) -> SecretValue {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretString::from(*v)))
            .collect();
        check(lookup(id).unwrap(), ValueInput::Fields(map)).unwrap()
    }

    #[test]
    fn short_secrets_show_nothing() {
        for s in ["", "a", "sk-123", "fifteen-chars-x"] {
            assert_eq!(mask_secret(s), "****");
        }
    }

    #[test]
    fn longer_secrets_show_their_ends() {
        assert_eq!(mask_secret("0123456789abcdef"), "012...ef");
        assert_eq!(mask_secret("0123456789abcdefghijklm"), "012...lm");
        assert_eq!(mask_secret("0123456789abcdefghijklmn"), "01234...klmn");
        assert_eq!(
            mask_secret("sk-proj-abcdefghijklmnopqrstuvwxyz1234"),
            "sk-pr...1234"
        );
    }

    #[test]
    fn unicode_secrets_are_cut_on_chars() {
        assert_eq!(mask_secret("ééééééééééééééé"), "****");
        assert_eq!(
            mask_secret("🔑é€abcdefghijklmnopqrstuvwxyz€é🔑"),
            "🔑é€ab...z€é🔑"
        );
        assert_eq!(mask_secret("日本語のひみつのパスワードです"), "****");
        assert_eq!(
            mask_secret("日本語のひみつのパスワードですよね"),
            "日本語...よね"
        );
    }

    #[test]
    fn url_connection_strings() {
        let cases = [
            (
                format!("postgresql://alice:{PW}@db.example.com:5432/app/extra?sslmode=require"),
                "postgresql://alice:****@db.example.com:5432/app",
            ),
            (
                format!("postgres://alice:{PW}@h/db?password={PW}#frag"),
                "postgres://alice:****@h/db",
            ),
            (
                format!("postgres://h:5432/db?user=bob&password={PW}"),
                "postgres://h:5432/db",
            ),
            (
                format!("postgres://h/db?password={PW}@x"),
                "postgres://h/db",
            ),
            (
                "mysql://root@localhost/shop".to_owned(),
                "mysql://root@localhost/shop",
            ),
            (
                format!("mysql://root:p@ss/w:rd{PW}@localhost:3306/shop"),
                "mysql://root:****@localhost:3306/shop",
            ),
            (
                format!("redis://:{PW}@cache:6379/0"),
                "redis://:****@cache:6379/0",
            ),
            (
                format!("clickhouse://u:{PW}@[::1]:8443"),
                "clickhouse://u:****@[::1]:8443",
            ),
            (
                format!("postgresql://u:{PW}@h1:5432,h2:5433/app"),
                "postgresql://u:****@h1:5432,h2:5433/app",
            ),
            (
                format!("https://bucket.s3.amazonaws.com/data/file.csv?X-Amz-Signature={PW}"),
                "https://bucket.s3.amazonaws.com/data",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_connection_string(&input), expected, "{input}");
        }
    }

    #[test]
    fn misread_urls_fall_back_to_masking() {
        // A user name with '/' makes the "host" "dom" and the path carry the password.
        let s = format!("postgres://dom/user:{PW}@h/db");
        assert_eq!(mask_connection_string(&s), HIDDEN);
        // A password with no '@' after it would otherwise read as a port.
        let s = format!("postgres://u:{PW}/db");
        assert_eq!(mask_connection_string(&s), HIDDEN);
    }

    #[test]
    fn libpq_connection_strings() {
        let s = format!(
            "host=db.example.com port=5432 user=alice password={PW} dbname=app sslmode=require"
        );
        assert_eq!(
            mask_connection_string(&s),
            "host=db.example.com port=5432 user=alice password=**** dbname=app"
        );
        let s = format!(r"host = h password = 'a b\' {PW}' user=u");
        assert_eq!(mask_connection_string(&s), "host=h password=**** user=u");
        assert_eq!(mask_connection_string("host=h dbname=d"), "host=h dbname=d");
        // Unterminated quote: nothing trustworthy to show.
        let s = format!("host=h password='{PW}");
        assert_eq!(mask_connection_string(&s), HIDDEN);
    }

    #[test]
    fn ado_connection_strings() {
        let s = format!(
            "Server=tcp:sql.example.com,1433;Database=app;User ID=alice;Password={PW};Encrypt=True;"
        );
        assert_eq!(
            mask_connection_string(&s),
            "Server=tcp:sql.example.com,1433;Database=app;User ID=alice;Password=****"
        );
        let s = format!(r#"data source=h\inst; initial catalog=My DB;UID=u;PWD="a;b""{PW}";Uid=v"#);
        assert_eq!(
            mask_connection_string(&s),
            r"data source=h\inst;initial catalog=My DB;UID=u;PWD=****;Uid=v"
        );
        // A quoted password that hides a "User ID=" must not leak its tail.
        let s = format!("Server=h;Password='x;User ID={PW}'");
        assert_eq!(mask_connection_string(&s), "Server=h;Password=****");
    }

    #[test]
    fn unparseable_strings_are_masked_as_secrets() {
        for s in [
            format!("jdbc:sqlserver://h:1433;databaseName=d;password={PW}"),
            PW.to_owned(),
            format!("nothing-to-see {PW}"),
            format!("user=u password={PW} garbage"),
        ] {
            assert_eq!(mask_connection_string(&s), HIDDEN, "{s}");
        }
    }

    #[test]
    fn connection_previews_are_capped() {
        let s = format!("postgres://u:{PW}@{}.example.com/db", "h".repeat(300));
        assert_eq!(mask_connection_string(&s).chars().count(), 200);
    }

    #[test]
    fn previews_of_multi_field_values() {
        let bedrock = value(
            "bedrock",
            &[
                ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
                (
                    "secret_access_key",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                ),
                ("region", "us-east-1"),
                ("session_token", "FwoGZXIvYXdzEBYaDHVzLWVhc3QtMSJHMEUCIQD"),
            ],
        );
        assert_eq!(
            preview(lookup("bedrock").unwrap(), &bedrock),
            "AKI...LE (region=us-east-1)"
        );
        let smtp = value(
            "smtp",
            &[
                ("host", "smtp.example.com"),
                ("port", "587"),
                ("username", "bob"),
                ("password", PW),
            ],
        );
        assert_eq!(
            preview(lookup("smtp").unwrap(), &smtp),
            "**** (host=smtp.example.com, port=587, username=bob)"
        );
        let db = value(
            "database",
            &[
                ("connection_string", &format!("postgres://u:{PW}@h/db")),
                ("schema_type", "postgresql"),
            ],
        );
        assert_eq!(
            preview(lookup("database").unwrap(), &db),
            "postgres://u:****@h/db (schema_type=postgresql)"
        );
    }

    #[test]
    fn previews_cap_field_values_and_length() {
        let snowflake = value(
            "snowflake",
            &[
                ("account", &"a".repeat(100)),
                ("username", &"u".repeat(100)),
                ("private_key", PW),
                ("warehouse", &"w".repeat(100)),
                ("database", &"d".repeat(100)),
            ],
        );
        let p = preview(lookup("snowflake").unwrap(), &snowflake);
        assert!(p.starts_with(&format!("**** (account={}, ", "a".repeat(64))));
        assert_eq!(p.chars().count(), 256);
    }

    #[test]
    fn no_preview_holds_a_whole_secret_field() {
        for spec in all() {
            let mut fields = BTreeMap::new();
            let mut secrets = Vec::new();
            for f in spec.fields {
                let v = if let Some(first) = f.allowed_values.first() {
                    (*first).to_owned()
                } else if f.name == "connection_string" || f.name == "url" {
                    format!(
                        "postgres://user:{PW}-{}@host:5432/db?password={PW}",
                        spec.id
                    )
                } else {
                    format!("MARKER-{}-{}-0123456789abcdef", spec.id, f.name)
                };
                if f.secret {
                    secrets.push(v.clone());
                }
                fields.insert(f.name.to_owned(), SecretString::from(v));
            }
            let v = check(spec, ValueInput::Fields(fields)).unwrap();
            let p = preview(spec, &v);
            assert!(!p.contains(PW), "{}: {p}", spec.id);
            for s in &secrets {
                assert!(!p.contains(s.as_str()), "{}: {p}", spec.id);
            }
        }
    }
}
