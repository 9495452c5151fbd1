//! Checking a written value against its type into a normalized [`SecretValue`], and its stored
//! JSON form.

use crate::catalogue::{Engine, FieldSpec, Format, TypeSpec};
use crate::limits::{MAX_FIELD_NAME_BYTES, MAX_FIELDS, MAX_VALUE_BYTES};
use crate::secret::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use zeroize::Zeroizing;

/// A value as a client sent it.
#[derive(Debug, Clone)]
pub enum ValueInput {
    /// A single secret string, filling the type's primary field.
    Secret(SecretString),
    /// Named fields.
    Fields(BTreeMap<String, SecretString>),
}

/// A checked value: the fields of its type, by name.
#[derive(Clone)]
pub struct SecretValue {
    fields: BTreeMap<String, SecretString>,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Serialize)]
struct StoredRef<'a> {
    fields: BTreeMap<&'a str, &'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    fields: BTreeMap<String, Zeroizing<String>>,
}

/// Counts the bytes a serialization would write, so the real buffer can be sized exactly.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SecretValue {
    /// The fields, by name.
    pub fn fields(&self) -> &BTreeMap<String, SecretString> {
        &self.fields
    }

    /// One field; `None` if absent.
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.fields.get(name)
    }

    /// The type's primary field if present, else its first secret field present.
    pub fn primary(&self, spec: &TypeSpec) -> Option<&SecretString> {
        self.primary_entry(spec).map(|(_, value)| value)
    }

    /// Like [`primary`](Self::primary), with the name of the field it found.
    pub fn primary_entry(&self, spec: &TypeSpec) -> Option<(&'static str, &SecretString)> {
        let present = |name: &'static str| self.get(name).map(|value| (name, value));
        present(spec.primary_field).or_else(|| {
            spec.fields
                .iter()
                .filter(|f| f.secret)
                .find_map(|f| present(f.name))
        })
    }

    /// What an access answers as its one secret: the type's primary secret if present, else
    /// its first secret field present (for Bedrock the secret access key, never the key id).
    pub fn primary_secret(&self, spec: &TypeSpec) -> Option<&SecretString> {
        self.get(spec.primary_secret).or_else(|| {
            spec.fields
                .iter()
                .filter(|f| f.secret)
                .find_map(|f| self.get(f.name))
        })
    }

    /// The stored form, `{"fields":{"name":"value",...}}`, in a buffer zeroized on drop.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let wire = StoredRef {
            fields: self
                .fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.expose()))
                .collect(),
        };
        // Sized exactly beforehand: a growing Vec would leave copies of the secrets in freed memory.
        let mut counter = Counter(0);
        let mut out = Zeroizing::new(Vec::new());
        if serde_json::to_writer(&mut counter, &wire).is_ok() {
            out.reserve_exact(counter.0);
            // A map of strings into a Vec cannot fail; on the impossible failure the buffer
            // is simply left partial, and from_json would refuse it.
            let _ = serde_json::to_writer(&mut *out, &wire);
        }
        out
    }

    /// Parses the stored form written by [`to_json`](Self::to_json).
    pub fn from_json(bytes: &[u8]) -> Result<SecretValue, PayloadError> {
        // serde_json's messages quote the offending input, so only its position is kept.
        let stored: Stored =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Malformed {
                line: e.line(),
                column: e.column(),
            })?;
        let fields = stored
            .fields
            .into_iter()
            .map(|(k, mut v)| (k, SecretString::new(std::mem::take(&mut *v))))
            .collect();
        Ok(SecretValue { fields })
    }

    /// The stored fields with `overrides` replacing or adding some, to be checked again.
    pub fn overridden(&self, overrides: BTreeMap<String, SecretString>) -> ValueInput {
        let mut fields = self.fields.clone();
        fields.extend(overrides);
        ValueInput::Fields(fields)
    }
}

/// Why a written value was refused: the offending field's path and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {description}")]
pub struct FieldViolation {
    /// Path of the offending field, e.g. `value.fields[region]`.
    pub field: String,
    /// What is wrong; never contains a value.
    pub description: String,
}

/// Why a stored value cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not the JSON `to_json` writes.
    #[error("malformed stored value at line {line}, column {column}")]
    Malformed {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
}

fn violation(field: impl Into<String>, description: impl Into<String>) -> FieldViolation {
    FieldViolation {
        field: field.into(),
        description: description.into(),
    }
}

/// The path of a client-named field, truncated and stripped of control characters so an
/// arbitrary name cannot bloat or garble the message.
fn field_path(name: &str) -> String {
    let name: String = name
        .chars()
        .take(MAX_FIELD_NAME_BYTES)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    format!("value.fields[{name}]")
}

fn is_blank(value: &SecretString) -> bool {
    value.expose().trim().is_empty()
}

/// Checks `input` against `spec` and normalizes it into a [`SecretValue`].
pub fn check(spec: &TypeSpec, input: ValueInput) -> Result<SecretValue, FieldViolation> {
    let size = match &input {
        ValueInput::Secret(s) => spec.primary_field.len() + s.len(),
        ValueInput::Fields(map) => map.iter().map(|(k, v)| k.len() + v.len()).sum(),
    };
    if size > MAX_VALUE_BYTES {
        return Err(violation(
            "value",
            format!("at most {MAX_VALUE_BYTES} bytes in all, got {size}"),
        ));
    }
    let single = matches!(input, ValueInput::Secret(_));
    let fields = match input {
        ValueInput::Secret(s) => {
            if is_blank(&s) {
                return Err(violation("value.secret", "must not be empty"));
            }
            if spec
                .fields
                .iter()
                .any(|f| f.required && f.name != spec.primary_field)
            {
                return Err(violation(
                    "value.secret",
                    format!(
                        "{} needs the fields {}: send value.fields",
                        spec.id,
                        names(spec.fields.iter().filter(|f| f.required).map(|f| f.name)),
                    ),
                ));
            }
            BTreeMap::from([(spec.primary_field.to_owned(), s)])
        }
        ValueInput::Fields(map) => map,
    };
    // When the client sent no field names, name the field it did send.
    let named = |mut e: FieldViolation| {
        if single && e.field == field_path(spec.primary_field) {
            e.field = "value.secret".to_owned();
        }
        e
    };
    check_fields(spec, &fields).map_err(named)?;
    // A connection string whose user info drivers would split differently is refused, so that
    // no probe ever reads part of its password as a host.
    crate::connection_url::check_fields(spec, &fields)
        .map_err(|(name, why)| named(violation(field_path(name), why.to_string())))?;
    Ok(SecretValue { fields })
}

fn check_fields(
    spec: &TypeSpec,
    fields: &BTreeMap<String, SecretString>,
) -> Result<(), FieldViolation> {
    if fields.len() > MAX_FIELDS {
        return Err(violation(
            "value.fields",
            format!("at most {MAX_FIELDS} fields, got {}", fields.len()),
        ));
    }
    if let Some(name) = fields.keys().find(|name| spec.field(name).is_none()) {
        return Err(violation(
            field_path(name),
            format!(
                "unknown field for type {}; known fields: {}",
                spec.id,
                names(spec.fields.iter().map(|f| f.name)),
            ),
        ));
    }
    if let Some(name) = fields
        .iter()
        .find_map(|(name, value)| is_blank(value).then_some(name))
    {
        return Err(violation(field_path(name), "must not be empty"));
    }
    for f in spec.fields {
        match fields.get(f.name) {
            None if f.required => {
                return Err(violation(
                    field_path(f.name),
                    format!("required for type {}", spec.id),
                ));
            }
            Some(value) => check_format(f, value, fields)
                .map_err(|expected| violation(field_path(f.name), expected))?,
            None => {}
        }
    }
    if !spec.requires_one_of.is_empty()
        && !spec.requires_one_of.iter().any(|n| fields.contains_key(*n))
    {
        return Err(violation(
            "value.fields",
            format!(
                "{} needs at least one of {}",
                spec.id,
                names(spec.requires_one_of.iter().copied()),
            ),
        ));
    }
    Ok(())
}

/// Checks one field against its format, a connection string against the engine its engine
/// field chose. Every format is enforced on write; a value stored before that is checked again
/// when an update rewrites it.
fn check_format(
    f: &FieldSpec,
    value: &SecretString,
    fields: &BTreeMap<String, SecretString>,
) -> Result<(), String> {
    let format = match f.format {
        // The engine field comes first in its type's fields, so a bad engine is refused there.
        Format::ConnectionStringOf(engine_field) => fields
            .get(engine_field)
            .and_then(|e| Engine::parse(e.expose()))
            .map_or(f.format, Format::ConnectionString),
        format => format,
    };
    format.check(value.expose())
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::lookup;

    const MARKER: &str = "Sk-MARKER-7c1e9a";
    const PEM_KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nU2stTUFSS0VSLTdjMWU5YQ==\n-----END PRIVATE KEY-----\n";

    fn spec(id: &str) -> &'static TypeSpec {
        lookup(id).unwrap()
    }

    fn fields(pairs: &[(&str, &str)]) -> ValueInput {
        ValueInput::Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(*v)))
                .collect(),
        )
    }

    fn refused(id: &str, input: ValueInput) -> FieldViolation {
        let err = check(spec(id), input).unwrap_err();
        assert!(!err.to_string().contains(MARKER), "{err}");
        err
    }

    #[test]
    fn single_secret_fills_the_primary_field() {
        let v = check(spec("openai"), ValueInput::Secret(MARKER.into())).unwrap();
        assert_eq!(v.get("api_key").unwrap().expose(), MARKER);
        assert_eq!(v.fields().len(), 1);
        let v = check(spec("oauth"), ValueInput::Secret(MARKER.into())).unwrap();
        assert_eq!(v.get("access_token").unwrap().expose(), MARKER);
    }

    #[test]
    fn blank_secret_is_refused() {
        for blank in ["", "  \t\n"] {
            let err = refused("openai", ValueInput::Secret(blank.into()));
            assert_eq!(err.field, "value.secret");
            assert_eq!(err.description, "must not be empty");
        }
    }

    #[test]
    fn single_secret_for_a_multi_field_type_names_the_required_fields() {
        let err = refused("bedrock", ValueInput::Secret(MARKER.into()));
        assert_eq!(err.field, "value.secret");
        assert_eq!(
            err.description,
            "bedrock needs the fields access_key_id, secret_access_key, region: send value.fields"
        );
    }

    #[test]
    fn oversized_values_are_refused_first() {
        let huge = "x".repeat(MAX_VALUE_BYTES);
        let err = refused("openai", ValueInput::Secret(huge.as_str().into()));
        assert_eq!(err.field, "value");
        assert_eq!(err.description, "at most 65536 bytes in all, got 65543");
        // Names count too, and size wins over the unknown field.
        let name = "n".repeat(10);
        let err = refused(
            "openai",
            fields(&[(&name, &"x".repeat(MAX_VALUE_BYTES - 9))]),
        );
        assert_eq!(err.field, "value");
        assert!(
            check(
                spec("openai"),
                fields(&[("api_key", &"x".repeat(MAX_VALUE_BYTES - 7))])
            )
            .is_ok()
        );
    }

    #[test]
    fn too_many_fields_are_refused() {
        let many: Vec<(String, &str)> = (0..=MAX_FIELDS)
            .map(|i| (format!("f{i}"), MARKER))
            .collect();
        let pairs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let err = refused("snowflake", fields(&pairs));
        assert_eq!(err.field, "value.fields");
    }

    #[test]
    fn unknown_fields_are_named_truncated() {
        let err = refused("openai", fields(&[("api_key", MARKER), ("region", MARKER)]));
        assert_eq!(err.field, "value.fields[region]");
        assert_eq!(
            err.description,
            "unknown field for type openai; known fields: api_key"
        );

        let long = format!("{}\n{}", "é".repeat(40), "z".repeat(100));
        let err = refused("openai", fields(&[(&long, MARKER)]));
        let expected = format!("value.fields[{}?{}]", "é".repeat(40), "z".repeat(23));
        assert_eq!(err.field, expected);
    }

    #[test]
    fn empty_fields_are_refused() {
        let err = refused(
            "smtp",
            fields(&[
                ("host", "smtp.example.com"),
                ("username", "bob"),
                ("password", " "),
            ]),
        );
        assert_eq!(err.field, "value.fields[password]");
        assert_eq!(err.description, "must not be empty");
    }

    #[test]
    fn missing_required_fields_are_named() {
        let err = refused(
            "bedrock",
            fields(&[("access_key_id", MARKER), ("secret_access_key", MARKER)]),
        );
        assert_eq!(err.field, "value.fields[region]");
        assert_eq!(err.description, "required for type bedrock");
    }

    #[test]
    fn allowed_values_are_enforced() {
        let err = refused(
            "database",
            fields(&[
                ("schema_type", "oracle"),
                ("connection_string", &format!("oracle://u:{MARKER}@h/db")),
            ]),
        );
        assert_eq!(err.field, "value.fields[schema_type]");
        assert_eq!(
            err.description,
            "must be one of postgresql, mysql, redshift, mssql, clickhouse, bigquery, snowflake"
        );
        assert!(
            check(
                spec("database"),
                fields(&[
                    ("schema_type", "mysql"),
                    ("connection_string", &format!("mysql://u:{MARKER}@h/db"))
                ])
            )
            .is_ok()
        );
    }

    #[test]
    fn every_format_is_enforced_with_the_field_named() {
        let smtp = |port: &str| {
            fields(&[
                ("host", "smtp.example.com"),
                ("port", port),
                ("username", "bob"),
                ("password", MARKER),
            ])
        };
        for port in ["abc", "99999"] {
            let err = refused("smtp", smtp(port));
            assert_eq!(err.field, "value.fields[port]");
            assert_eq!(err.description, "must be a port number, 1-65535");
        }
        let err = refused(
            "bigquery",
            fields(&[("service_account_json", &format!("not json {MARKER}"))]),
        );
        assert_eq!(err.field, "value.fields[service_account_json]");
        let err = refused("static_file", fields(&[("url", "file:///etc/passwd")]));
        assert_eq!(err.field, "value.fields[url]");
        let err = refused(
            "static_file",
            ValueInput::Secret("file:///etc/passwd".into()),
        );
        assert_eq!(err.field, "value.secret");
        let err = refused(
            "api_key",
            fields(&[("api_key", MARKER), ("endpoint", "javascript:alert(1)")]),
        );
        assert_eq!(err.field, "value.fields[endpoint]");
        let err = refused(
            "bedrock",
            fields(&[
                ("access_key_id", MARKER),
                ("secret_access_key", MARKER),
                ("region", "not a region!"),
            ]),
        );
        assert_eq!(err.field, "value.fields[region]");
        let err = refused(
            "database",
            fields(&[
                ("schema_type", "mysql"),
                ("connection_string", &format!("postgres://u:{MARKER}@h/db")),
            ]),
        );
        assert_eq!(err.field, "value.fields[connection_string]");
        assert_eq!(
            err.description,
            "must be a mysql connection URL (mysql://host/...) or a key=value connection string"
        );
    }

    #[test]
    fn secrets_are_refused_not_trimmed() {
        for bad in [
            format!(" {MARKER}"),
            format!("{MARKER} "),
            format!("{MARKER}\n"),
            format!("{MARKER}\r\n"),
            format!("{MARKER}\u{0}"),
            format!("{MARKER}\u{0}tail"),
        ] {
            let err = refused("openai", ValueInput::Secret(bad.as_str().into()));
            assert_eq!(err.field, "value.secret", "{bad:?}");
            let err = refused(
                "smtp",
                fields(&[
                    ("host", "h.example.com"),
                    ("username", "bob"),
                    ("password", &bad),
                ]),
            );
            assert_eq!(err.field, "value.fields[password]", "{bad:?}");
        }
        // PEM and JSON span lines by nature: checked by their grammar instead.
        let ok = fields(&[
            ("account", "acme"),
            ("username", "bob"),
            ("private_key", &format!("\n{PEM_KEY}\n")),
        ]);
        assert!(check(spec("snowflake"), ok).is_ok());
        let json = "{\n  \"client_email\": \"a@b.iam\",\n  \"private_key\": \"k\"\n}\n";
        assert!(check(spec("bigquery"), fields(&[("service_account_json", json)])).is_ok());
    }

    #[test]
    fn requires_one_of_is_enforced() {
        let err = refused(
            "snowflake",
            fields(&[("account", "acme"), ("username", "bob")]),
        );
        assert_eq!(err.field, "value.fields");
        assert_eq!(
            err.description,
            "snowflake needs at least one of password, private_key"
        );
        let ok = fields(&[
            ("account", "acme"),
            ("username", "bob"),
            ("private_key", PEM_KEY),
        ]);
        assert!(check(spec("snowflake"), ok).is_ok());
        let err = refused(
            "oauth",
            fields(&[("client_id", "app"), ("client_secret", MARKER)]),
        );
        assert_eq!(
            err.description,
            "oauth needs at least one of access_token, refresh_token"
        );
    }

    #[test]
    fn debug_shows_names_only() {
        let v = check(spec("openai"), ValueInput::Secret(MARKER.into())).unwrap();
        assert_eq!(format!("{v:?}"), r#"SecretValue { fields: ["api_key"] }"#);
        let input = ValueInput::Secret(MARKER.into());
        assert!(!format!("{input:?}").contains(MARKER));
    }

    #[test]
    fn the_primary_secret_of_bedrock_is_the_secret_access_key() {
        let s = spec("bedrock");
        let v = check(
            s,
            fields(&[
                ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
                ("secret_access_key", MARKER),
                ("region", "us-east-1"),
            ]),
        )
        .unwrap();
        assert_eq!(v.primary_secret(s).unwrap().expose(), MARKER);
        // The preview keeps showing the key id's ends, never the secret's.
        assert_eq!(v.primary(s).unwrap().expose(), "AKIAIOSFODNN7EXAMPLE");
        let o = spec("oauth");
        let v = check(o, fields(&[("refresh_token", MARKER), ("client_id", "c")])).unwrap();
        assert_eq!(v.primary_secret(o).unwrap().expose(), MARKER);
    }

    #[test]
    fn primary_falls_back_to_the_first_secret_field_present() {
        let s = spec("oauth");
        let v = check(
            s,
            fields(&[("refresh_token", MARKER), ("client_secret", "cs")]),
        )
        .unwrap();
        assert_eq!(v.primary_entry(s).map(|(n, _)| n), Some("refresh_token"));
        assert_eq!(v.primary(s).unwrap().expose(), MARKER);
    }

    #[test]
    fn json_round_trips_exactly_sized() {
        // Built directly: check() refuses newlines and NUL, the stored form must still carry
        // them (a PEM key, values stored before the check).
        let tricky = "quote\" backslash\\ newline\n unicode é🦀 nul\u{0}";
        let v = SecretValue {
            fields: [
                ("access_key_id", MARKER),
                ("secret_access_key", tricky),
                ("region", "us-east-1"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), SecretString::from(v)))
            .collect(),
        };
        let json = v.to_json();
        assert_eq!(json.len(), json.capacity());
        let back = SecretValue::from_json(&json).unwrap();
        assert_eq!(back.fields(), v.fields());
        assert_eq!(
            &*SecretValue::from_json(br#"{"fields":{"a":"b"}}"#)
                .unwrap()
                .to_json(),
            br#"{"fields":{"a":"b"}}"#
        );
    }

    #[test]
    fn malformed_json_is_refused_without_echo() {
        for bad in [
            format!(r#"{{"fields":{{"a":"{MARKER}"}},"extra":1}}"#),
            format!(r#"{{"fields":"{MARKER}"}}"#),
            format!(r#"{{"fields":{{"a":["{MARKER}"]}}}}"#),
            format!(r#"{{"fields":{{"a":"{MARKER}"#),
            MARKER.to_string(),
        ] {
            let err = SecretValue::from_json(bad.as_bytes()).unwrap_err();
            assert!(!err.to_string().contains(MARKER) && !format!("{err:?}").contains(MARKER));
        }
    }

    #[test]
    fn overridden_replaces_and_rechecks() {
        let s = spec("smtp");
        let v = check(
            s,
            fields(&[("host", "h"), ("username", "bob"), ("password", "old")]),
        )
        .unwrap();
        let ValueInput::Fields(map) =
            v.overridden(BTreeMap::from([("password".into(), "new".into())]))
        else {
            panic!("expected fields");
        };
        assert_eq!(map["password"].expose(), "new");
        assert_eq!(map["host"].expose(), "h");
        let bad = v.overridden(BTreeMap::from([("security".into(), "ssl".into())]));
        assert_eq!(check(s, bad).unwrap_err().field, "value.fields[security]");
    }
}
