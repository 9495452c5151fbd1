//! The encryption context: the small, non-secret string map that says which row a data key
//! and a sealed payload belong to (e.g. `workspace_id`, `credential_id`, `payload_format`).
//!
//! The same [`EncryptionContext`] is bound twice: by the kms into the associated data of the
//! wrapped data key, and by the API into the associated data of the sealed payload. A wrapped
//! key or a ciphertext copied onto another row, or into another workspace, then fails to open.
//! This crate is shared by both sides so that there is one type and one encoding; it holds no
//! transport or crypto code.
//!
//! # Canonical encoding
//!
//! [`EncryptionContext::canonical_bytes`] is the only byte form of a context that is ever
//! authenticated (`docs/encryption-context.md` is the reference):
//!
//! ```text
//! u32 big-endian    number of entries
//! then, for each entry, in ascending byte order of its key:
//!   u32 big-endian  key length in bytes,   the key (UTF-8)
//!   u32 big-endian  value length in bytes, the value (UTF-8)
//! ```
//!
//! Keys are unique and sorted, so the encoding does not depend on how the map was built, and
//! every string is length-prefixed, so no two different maps share an encoding. Wrapped keys
//! in storage authenticate exactly these bytes: the encoding must never change.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

/// Most entries an encryption context may hold.
pub const MAX_CONTEXT_ENTRIES: usize = 16;
/// Longest context key, in bytes.
pub const MAX_CONTEXT_KEY_LEN: usize = 64;
/// Longest context value, in bytes.
pub const MAX_CONTEXT_VALUE_LEN: usize = 256;

/// The non-secret map a data key and a sealed payload are bound to.
///
/// Entries are kept sorted by key, so equality and the canonical encoding do not depend on
/// insertion order. Not secret: it may be logged, and a secret never goes into it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

/// Why a context (or another request field checked alongside it) is refused; `field` names the
/// offending request field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ContextError {
    /// The request field at fault, e.g. `encryption_context`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl EncryptionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry, replacing an earlier value of the same key (builder style).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The entries, sorted by key.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the documented limits: entry count, key charset and length, value length.
    pub fn validate(&self) -> Result<(), ContextError> {
        const FIELD: &str = "encryption_context";
        let refuse = |field: String, reason: String| Err(ContextError { field, reason });
        if self.0.len() > MAX_CONTEXT_ENTRIES {
            return refuse(
                FIELD.into(),
                format!(
                    "at most {MAX_CONTEXT_ENTRIES} entries, got {}",
                    self.0.len()
                ),
            );
        }
        for (key, value) in &self.0 {
            let key_ok = !key.is_empty()
                && key.len() <= MAX_CONTEXT_KEY_LEN
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !key_ok {
                return refuse(
                    FIELD.into(),
                    format!(
                        "keys must be 1-{MAX_CONTEXT_KEY_LEN} bytes of [A-Za-z0-9_.-], got {:?}",
                        truncate(key, MAX_CONTEXT_KEY_LEN)
                    ),
                );
            }
            if value.len() > MAX_CONTEXT_VALUE_LEN {
                return refuse(
                    format!("{FIELD}[{key}]"),
                    format!(
                        "values must be at most {MAX_CONTEXT_VALUE_LEN} bytes, got {}",
                        value.len()
                    ),
                );
            }
        }
        Ok(())
    }

    /// The canonical encoding (see the crate documentation), used as associated data.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.0.len() * 48);
        out.extend_from_slice(&len_u32(self.0.len()));
        for (key, value) in &self.0 {
            for part in [key, value] {
                out.extend_from_slice(&len_u32(part.len()));
                out.extend_from_slice(part.as_bytes());
            }
        }
        out
    }
}

/// A length as 4 big-endian bytes. Validated contexts are far below the limit; anything
/// larger could not be sent in one kms request either, so saturating never meets a real map.
fn len_u32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

impl From<BTreeMap<String, String>> for EncryptionContext {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl IntoIterator for EncryptionContext {
    type Item = (String, String);
    type IntoIter = std::collections::btree_map::IntoIter<String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding, byte for byte: stored wrapped keys authenticate exactly these bytes.
    #[test]
    fn canonical_bytes_are_pinned() {
        let ctx = EncryptionContext::new()
            .with("workspace_id", "w")
            .with("credential_id", "c1");
        let mut expected = vec![0, 0, 0, 2];
        expected.extend_from_slice(&[0, 0, 0, 13]);
        expected.extend_from_slice(b"credential_id");
        expected.extend_from_slice(&[0, 0, 0, 2]);
        expected.extend_from_slice(b"c1");
        expected.extend_from_slice(&[0, 0, 0, 12]);
        expected.extend_from_slice(b"workspace_id");
        expected.extend_from_slice(&[0, 0, 0, 1]);
        expected.extend_from_slice(b"w");
        assert_eq!(ctx.canonical_bytes(), expected);
        assert_eq!(EncryptionContext::new().canonical_bytes(), vec![0, 0, 0, 0]);
    }

    #[test]
    fn canonical_bytes_ignore_insertion_order_and_separate_fields() {
        let a = EncryptionContext::new().with("b", "2").with("a", "1");
        let b = EncryptionContext::new().with("a", "1").with("b", "2");
        assert_eq!(a, b);
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        // Moving a byte across the key/value boundary must change the encoding.
        let c = EncryptionContext::new().with("ab", "c");
        let d = EncryptionContext::new().with("a", "bc");
        assert_ne!(c.canonical_bytes(), d.canonical_bytes());
        // So must moving an entry boundary.
        let e = EncryptionContext::new().with("a", "").with("b", "");
        let f = EncryptionContext::new().with("a", "\0\0\0\x01b\0\0\0\0");
        assert_ne!(e.canonical_bytes(), f.canonical_bytes());
    }

    #[test]
    fn accessors_and_conversions() {
        let ctx: EncryptionContext = [("workspace_id", "w1"), ("credential_id", "c1")]
            .into_iter()
            .collect();
        assert_eq!(ctx.get("workspace_id"), Some("w1"));
        assert_eq!(ctx.get("missing"), None);
        assert_eq!(ctx.len(), 2);
        assert!(!ctx.is_empty());
        let keys: Vec<&str> = ctx.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["credential_id", "workspace_id"]);
        let round: EncryptionContext = ctx.clone().into_iter().collect();
        assert_eq!(round, ctx);
        assert_eq!(EncryptionContext::from(ctx.entries().clone()), ctx);
        assert_eq!(
            ctx.clone().with("workspace_id", "w2").get("workspace_id"),
            Some("w2")
        );
    }

    #[test]
    fn limits_name_the_field() {
        let many: EncryptionContext = (0..=MAX_CONTEXT_ENTRIES)
            .map(|i| (format!("k{i}"), "v"))
            .collect();
        assert_eq!(many.validate().unwrap_err().field, "encryption_context");

        let long_value = EncryptionContext::new().with("ws", "x".repeat(MAX_CONTEXT_VALUE_LEN + 1));
        assert_eq!(
            long_value.validate().unwrap_err().field,
            "encryption_context[ws]"
        );

        let bad_key = EncryptionContext::new().with("white space", "v");
        assert!(bad_key.validate().is_err());
        let empty_key = EncryptionContext::new().with("", "v");
        assert!(empty_key.validate().is_err());

        let ok = EncryptionContext::new()
            .with("workspace_id", "w1")
            .with("credential_id", "c1");
        assert_eq!(ok.validate(), Ok(()));
    }
}
