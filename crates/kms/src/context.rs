//! What the kms checks besides the encryption context itself: data-key and wrapped-key sizes
//! and master-key ids. The context type, its limits and its canonical encoding live in the
//! `encryption-context` crate, shared with the payload seal, and are re-exported here.

pub use encryption_context::{
    ContextError, EncryptionContext, MAX_CONTEXT_ENTRIES, MAX_CONTEXT_KEY_LEN,
    MAX_CONTEXT_VALUE_LEN,
};

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
