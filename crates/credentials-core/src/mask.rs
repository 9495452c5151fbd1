//! Masked previews: what management responses show instead of a secret. Computed when a value
//! is written and stored beside its ciphertext, so a preview must hold nothing a reader of the
//! database may not see: of the previewed secret only what its field's [`Preview`] allows, of
//! the other fields their values, URLs without user info, query or fragment.

use crate::catalogue::{Format, Preview, TypeSpec};
use crate::value::SecretValue;

const HIDDEN: &str = "****";
const PREVIEW_MAX_CHARS: usize = 256;
const CONNECTION_MAX_CHARS: usize = 200;
const FIELD_MAX_CHARS: usize = 64;

/// The preview of a value: its masked primary secret, then its non-secret fields.
pub fn preview(spec: &TypeSpec, value: &SecretValue) -> String {
    let mut out = match value.primary_entry(spec) {
        Some((name, v)) => match spec.field(name) {
            Some(f) => mask_field(f.preview, f.format, v.expose()),
            None => HIDDEN.to_owned(),
        },
        None => HIDDEN.to_owned(),
    };
    let plain: Vec<String> = spec
        .fields
        .iter()
        .filter(|f| !f.secret)
        .filter_map(|f| {
            let v = value.get(f.name)?;
            let shown = match f.format {
                Format::Url(_) => mask_plain_url(v.expose()),
                _ => v.expose().to_owned(),
            };
            Some(format!("{}={}", f.name, truncate(&shown, FIELD_MAX_CHARS)))
        })
        .collect();
    if !plain.is_empty() {
        out = format!("{out} ({})", plain.join(", "));
    }
    truncate(&out, PREVIEW_MAX_CHARS).to_owned()
}

/// A secret field's preview, as its catalogue entry says.
fn mask_field(preview: Preview, format: Format, secret: &str) -> String {
    match (preview, format) {
        (Preview::Ends, _) => mask_secret(secret),
        (Preview::Hidden, _) => HIDDEN.to_owned(),
        (Preview::Location, Format::ConnectionString(_) | Format::ConnectionStringOf(_)) => {
            mask_connection_string(secret)
        }
        (Preview::Location, _) => mask_secret_url(secret),
    }
}

/// A URL secret (a signed or token-bearing URL) as its scheme, host and port alone: its user
/// info, path, query and fragment can each carry the token.
pub fn mask_secret_url(s: &str) -> String {
    match mask_url(s, false) {
        Some(masked) => truncate(&masked, CONNECTION_MAX_CHARS).to_owned(),
        None => HIDDEN.to_owned(),
    }
}

/// A URL that is not secret (an endpoint, a token URL) without user info, query and fragment,
/// which people put keys into all the same; `****` if it does not parse.
pub fn mask_plain_url(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut url) if url.has_host() => {
            // Removing user info cannot fail on a URL with a host.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        _ => HIDDEN.to_owned(),
    }
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

/// A connection string (URL, libpq key=value or ADO form) as where it points: host, port and
/// database, never the user or password, and nothing not known to be harmless; `****` if it
/// cannot be parsed (its first and last characters could be those of a password).
pub fn mask_connection_string(s: &str) -> String {
    match mask_url(s, true)
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

/// `scheme://[user[:password]@]host[:port][/db][?query]` as `scheme://host[:port]`, plus `/db`
/// for a database URL. User info is never shown: a token is often the user name alone
/// (`https://TOKEN@host`), and the query may carry a password.
fn mask_url(s: &str, with_db: bool) -> Option<String> {
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
        (!user.contains(['/', '?', '#'])).then(|| (user, &rest[at + 1..]))
    });
    let mut out = format!("{scheme}://");
    let after = split.map_or(rest, |(_, after)| after);
    let (hosts, path) = after.split_at(after.find(['/', '?', '#']).unwrap_or(after.len()));
    if !(hosts.is_empty() || hosts.split(',').all(valid_host_port)) {
        return None;
    }
    out.push_str(hosts);
    if !with_db {
        return Some(out);
    }
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

/// ADO / SQL Server form: `Server=tcp:h,1433;Database=d;User ID=u;Password=p;...`.
fn mask_ado(s: &str) -> Option<String> {
    let pairs = ado_pairs(s)?;
    render(&pairs, ";", |key| {
        matches!(
            key.to_ascii_lowercase().as_str(),
            "server"
                | "data source"
                | "address"
                | "addr"
                | "network address"
                | "database"
                | "initial catalog"
        )
    })
}

/// libpq form: `host=h port=5432 user=u password=p dbname=d sslmode=require`.
fn mask_libpq(s: &str) -> Option<String> {
    let pairs = libpq_pairs(s)?;
    render(&pairs, " ", |key| matches!(key, "host" | "port" | "dbname"))
}

/// The pairs whose keys are `shown`, in their order; `None` if none is or a shown value looks
/// like a misparse (which could otherwise expose part of a password).
fn render(pairs: &[(&str, &str)], sep: &str, shown: impl Fn(&str) -> bool) -> Option<String> {
    let mut kept = Vec::new();
    for (key, value) in pairs.iter().filter(|(key, _)| shown(key)) {
        if value.contains(|c: char| c.is_control() || "=;'\"".contains(c)) {
            return None;
        }
        kept.push(format!("{key}={value}"));
    }
    (!kept.is_empty()).then(|| kept.join(sep))
}

/// The pairs of a key=value connection string (libpq, else ADO form); `None` if it is neither.
pub(crate) fn key_value_pairs(s: &str) -> Option<Vec<(&str, &str)>> {
    libpq_pairs(s).or_else(|| ado_pairs(s))
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
    use crate::catalogue::{Engine, FieldSpec, all, lookup};
    use crate::secret::SecretString;
    use crate::value::{ValueInput, check};
    use std::collections::BTreeMap;

    const PW: &str = "Pw-MARKER-93f1";
    /// A PEM private key whose body is base64 of `PW`-like bytes.
    const PEM_KEY: &str = "-----BEGIN PRIVATE KEY-----\nUHctTUFSS0VSLTkzZjEtcGVtLWJvZHk=\n-----END PRIVATE KEY-----\n";

    fn value(id: &str, pairs: &[(&str, &str)]) -> SecretValue {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretString::from(*v)))
            .collect();
        check(lookup(id).unwrap(), ValueInput::Fields(map)).unwrap()
    }

    fn preview_of(id: &str, pairs: &[(&str, &str)]) -> String {
        preview(lookup(id).unwrap(), &value(id, pairs))
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
    fn url_connection_strings_show_host_port_and_database_only() {
        let cases = [
            (
                format!("postgresql://alice:{PW}@db.example.com:5432/app/extra?sslmode=require"),
                "postgresql://db.example.com:5432/app",
            ),
            (
                format!("postgres://alice:{PW}@h/db?password={PW}#frag"),
                "postgres://h/db",
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
                format!("mysql://{PW}@localhost/shop"),
                "mysql://localhost/shop",
            ),
            (
                format!("mysql://root:p@ss/w:rd{PW}@localhost:3306/shop"),
                "mysql://localhost:3306/shop",
            ),
            (
                format!("redis://:{PW}@cache:6379/0"),
                "redis://cache:6379/0",
            ),
            (
                format!("clickhouse://u:{PW}@[::1]:8443"),
                "clickhouse://[::1]:8443",
            ),
            (
                format!("postgresql://u:{PW}@h1:5432,h2:5433/app"),
                "postgresql://h1:5432,h2:5433/app",
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
            "host=db.example.com port=5432 user={PW} password={PW} dbname=app sslmode=require"
        );
        assert_eq!(
            mask_connection_string(&s),
            "host=db.example.com port=5432 dbname=app"
        );
        let s = format!(r"host = h password = 'a b\' {PW}' user=u");
        assert_eq!(mask_connection_string(&s), "host=h");
        assert_eq!(mask_connection_string("host=h dbname=d"), "host=h dbname=d");
        // Unterminated quote: nothing trustworthy to show.
        let s = format!("host=h password='{PW}");
        assert_eq!(mask_connection_string(&s), HIDDEN);
    }

    #[test]
    fn ado_connection_strings() {
        let s = format!(
            "Server=tcp:sql.example.com,1433;Database=app;User ID={PW};Password={PW};Encrypt=True;"
        );
        assert_eq!(
            mask_connection_string(&s),
            "Server=tcp:sql.example.com,1433;Database=app"
        );
        let s = format!(r#"data source=h\inst; initial catalog=My DB;UID=u;PWD="a;b""{PW}";Uid=v"#);
        assert_eq!(
            mask_connection_string(&s),
            r"data source=h\inst;initial catalog=My DB"
        );
        // A quoted password that hides a "User ID=" must not leak its tail.
        let s = format!("Server=h;Password='x;User ID={PW}'");
        assert_eq!(mask_connection_string(&s), "Server=h");
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
    fn a_token_as_url_user_info_is_never_shown() {
        let p = preview_of(
            "static_file",
            &[(
                "url",
                &format!("https://ghp_{PW}@raw.example.com/o/r/f.csv"),
            )],
        );
        assert_eq!(p, "https://raw.example.com");
        let p = preview_of(
            "postgresql",
            &[(
                "connection_string",
                &format!("postgres://{PW}@db.example.com/app"),
            )],
        );
        assert_eq!(p, "postgres://db.example.com/app");
    }

    #[test]
    fn a_secret_url_shows_no_path() {
        let p = preview_of(
            "static_file",
            &[(
                "url",
                &format!(
                    "https://bucket.s3.amazonaws.com:443/{PW}/file.csv?X-Amz-Signature={PW}#{PW}"
                ),
            )],
        );
        assert_eq!(p, "https://bucket.s3.amazonaws.com:443");
    }

    #[test]
    fn password_class_fields_show_only_that_they_are_set() {
        let long = format!("{PW}-long-enough-to-show-ends");
        let p = preview_of(
            "smtp",
            &[
                ("host", "smtp.example.com"),
                ("port", "587"),
                ("username", "bob"),
                ("password", &long),
            ],
        );
        assert_eq!(p, "**** (host=smtp.example.com, port=587, username=bob)");
        let p = preview_of(
            "snowflake",
            &[
                ("account", "acme"),
                ("username", "bob"),
                ("password", &long),
            ],
        );
        assert_eq!(p, "**** (account=acme, username=bob)");
        let p = preview_of(
            "snowflake",
            &[
                ("account", "acme"),
                ("username", "bob"),
                ("private_key", PEM_KEY),
            ],
        );
        assert_eq!(p, "**** (account=acme, username=bob)");
        let p = preview_of("oauth", &[("access_token", &long)]);
        assert_eq!(p, "****");
    }

    #[test]
    fn provider_api_keys_keep_the_products_form() {
        let key = format!("sk-proj-{PW}-abcd");
        assert_eq!(preview_of("openai", &[("api_key", &key)]), "sk-pr...abcd");
        assert_eq!(preview_of("api_key", &[("api_key", &key)]), "sk-pr...abcd");
        assert_eq!(
            preview_of(
                "bedrock",
                &[
                    ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
                    ("secret_access_key", &key),
                    ("region", "us-east-1"),
                ],
            ),
            "AKI...LE (region=us-east-1)"
        );
    }

    #[test]
    fn plain_url_fields_lose_user_info_query_and_fragment() {
        let p = preview_of(
            "api_key",
            &[
                ("api_key", "short"),
                (
                    "endpoint",
                    &format!("https://u:{PW}@api.example.com:8443/v1/check?key={PW}#{PW}"),
                ),
            ],
        );
        assert_eq!(p, "**** (endpoint=https://api.example.com:8443/v1/check)");
        let p = preview_of(
            "oauth",
            &[
                ("refresh_token", PW),
                (
                    "token_url",
                    &format!("https://{PW}@login.example.com/token?client_secret={PW}"),
                ),
            ],
        );
        assert_eq!(p, "**** (token_url=https://login.example.com/token)");
        assert_eq!(mask_plain_url("not a url"), HIDDEN);
    }

    #[test]
    fn previews_of_multi_field_values() {
        let db = value(
            "database",
            &[
                ("connection_string", &format!("postgres://u:{PW}@h/db")),
                ("schema_type", "postgresql"),
            ],
        );
        assert_eq!(
            preview(lookup("database").unwrap(), &db),
            "postgres://h/db (schema_type=postgresql)"
        );
    }

    #[test]
    fn previews_cap_field_values_and_length() {
        let snowflake = value(
            "snowflake",
            &[
                ("account", &"a".repeat(100)),
                ("username", &"u".repeat(100)),
                ("private_key", PEM_KEY),
                ("warehouse", &"w".repeat(100)),
                ("database", &"d".repeat(100)),
            ],
        );
        let p = preview(lookup("snowflake").unwrap(), &snowflake);
        assert!(p.starts_with(&format!("**** (account={}, ", "a".repeat(64))));
        assert_eq!(p.chars().count(), 256);
    }

    /// A value of `f`'s format carrying the marker wherever the format allows one.
    fn sample(f: &FieldSpec, type_id: &str) -> String {
        let url = |scheme: &str| {
            format!("{scheme}://user:{PW}-{type_id}@host.example.com:5432/db?password={PW}#{PW}")
        };
        // A raw '#' makes a connection URL ambiguous, so those carry the marker in the query only.
        let conn = |scheme: &str| {
            format!("{scheme}://user:{PW}-{type_id}@host.example.com:5432/db?password={PW}")
        };
        match f.format {
            Format::OneOf(values) => values[0].to_owned(),
            Format::Url(schemes) => url(schemes[0]),
            Format::ConnectionString(Engine::MsSql) => {
                format!("Server=h;Database=d;User ID={PW};Password={PW}-{type_id}")
            }
            Format::ConnectionString(Engine::ClickHouse) => conn("clickhouse"),
            Format::ConnectionString(Engine::MySql) => conn("mysql"),
            Format::ConnectionString(_) | Format::ConnectionStringOf(_) => conn("postgres"),
            Format::Host => "host.example.com".to_owned(),
            Format::Port => "5432".to_owned(),
            Format::Region => "us-east-1".to_owned(),
            Format::Account => "acme".to_owned(),
            Format::Json(keys) => {
                let fields: Vec<String> = keys
                    .iter()
                    .map(|k| format!("\"{k}\": \"{PW}-{type_id}-{k}\""))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
            Format::Pem => PEM_KEY.to_owned(),
            Format::HeaderName => "X-Key".to_owned(),
            Format::Email => "bot@example.com".to_owned(),
            Format::Text => format!("MARKER-{type_id}-{}-0123456789abcdef", f.name),
        }
    }

    #[test]
    fn no_preview_holds_a_whole_secret_field() {
        for spec in all() {
            let mut fields = BTreeMap::new();
            let mut secrets = Vec::new();
            for f in spec.fields {
                let v = sample(f, spec.id);
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
