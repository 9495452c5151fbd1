use std::collections::BTreeMap;

/// Most entries an encryption context may hold.
pub const MAX_CONTEXT_ENTRIES: usize = 16;
/// Longest context key, in bytes.
pub const MAX_CONTEXT_KEY_LEN: usize = 64;
/// Longest context value, in bytes.
pub const MAX_CONTEXT_VALUE_LEN: usize = 256;
/// Shortest data key the kms generates, in bytes.
pub const MIN_DATA_KEY_LEN: usize = 16;
/// Longest data key the kms generates, in bytes.
pub const MAX_DATA_KEY_LEN: usize = 64;
/// Data-key length when a request does not say (an AES-256 key).
pub const DEFAULT_DATA_KEY_LEN: usize = 32;
/// Largest wrapped-key blob the kms accepts, in bytes.
pub const MAX_WRAPPED_KEY_LEN: usize = 1024;
/// Longest master-key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 64;

/// The non-secret map a data key is bound to, e.g. `workspace_id` and `credential_id`.
///
/// Wrapping binds the key to the exact map, so a wrapped key (or a ciphertext sealed with the
/// same map as associated data) moved to another row fails to open. Entries are kept sorted, so
/// the canonical encoding does not depend on insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

/// Why an encryption context or key id is refused; `field` names the offending request field.
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

    /// Adds an entry (builder style).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The entries, sorted by key.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
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

    /// Unambiguous byte encoding (count, then length-prefixed keys and values in key order),
    /// used as associated data.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.0.len() * 48);
        out.extend_from_slice(&(self.0.len() as u32).to_be_bytes());
        for (key, value) in &self.0 {
            for part in [key, value] {
                out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                out.extend_from_slice(part.as_bytes());
            }
        }
        out
    }
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

/// Checks a master-key id: 1-64 bytes of `[a-z0-9_-]`, starting with a letter or digit.
pub fn validate_key_id(field: &str, id: &str) -> Result<(), ContextError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ContextError {
            field: field.into(),
            reason: format!(
                "key ids are 1-{MAX_KEY_ID_LEN} bytes of [a-z0-9_-] starting with a letter or digit, got {:?}",
                truncate(id, MAX_KEY_ID_LEN)
            ),
        })
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

    #[test]
    fn canonical_bytes_ignore_insertion_order_and_separate_fields() {
        let a = EncryptionContext::new().with("b", "2").with("a", "1");
        let b = EncryptionContext::new().with("a", "1").with("b", "2");
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        // Moving a byte across the key/value boundary must change the encoding.
        let c = EncryptionContext::new().with("ab", "c");
        let d = EncryptionContext::new().with("a", "bc");
        assert_ne!(c.canonical_bytes(), d.canonical_bytes());
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

    #[test]
    fn key_ids() {
        assert!(validate_key_id("key_id", "default").is_ok());
        assert!(validate_key_id("key_id", "ws-acme_2").is_ok());
        for bad in [
            "",
            "-lead",
            "Upper",
            "sp ace",
            &"k".repeat(MAX_KEY_ID_LEN + 1),
        ] {
            let err = validate_key_id("key_id", bad).unwrap_err();
            assert_eq!(err.field, "key_id", "{bad:?}");
        }
    }
}
