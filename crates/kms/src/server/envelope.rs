//! The wrapped-key format: a self-describing blob that names the master key and version that
//! sealed it, so the kms never guesses.
//!
//! ```text
//! [format=1][id_len u8][key id][version u32 BE][context digest 16][nonce 12][sealed data key + tag 16]
//! ```
//!
//! The associated data is a domain label, the whole header (everything before the sealed bytes)
//! and the canonical encoding of the encryption context, so neither the header nor the context
//! can be changed without the open failing. The context digest (SHA-256, truncated) lets the kms
//! tell a wrong context from a tampered blob; the context is not secret, so it reveals nothing.

use super::keyring::{Keyring, VersionState};
use kms::{EncryptionContext, MAX_KEY_ID_LEN, MAX_WRAPPED_KEY_LEN, MIN_DATA_KEY_LEN};
use ring::aead::{Aad, NONCE_LEN, Nonce};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// The blob format this build writes and reads.
pub const FORMAT_V1: u8 = 1;
const DIGEST_LEN: usize = 16;
const TAG_LEN: usize = 16;
const AAD_LABEL: &[u8] = b"vault.kms.v1.wrapped-key";

/// Why a wrapped key cannot be opened. Each failure mode has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The first byte names a format this build does not know.
    #[error("unknown wrapped-key format {0}")]
    UnknownFormat(u8),
    /// The blob is too short, too long, or its header is inconsistent.
    #[error("malformed wrapped key: {0}")]
    Malformed(&'static str),
    /// The blob names a key the keyring does not hold.
    #[error("master key {0:?} is not in the keyring")]
    UnknownKey(String),
    /// The blob names a version the key does not have.
    #[error("master key {key:?} has no version {version}")]
    UnknownVersion {
        /// The key.
        key: String,
        /// The version.
        version: u32,
    },
    /// The version exists but is disabled.
    #[error("master key {key:?} version {version} is disabled")]
    DisabledVersion {
        /// The key.
        key: String,
        /// The version.
        version: u32,
    },
    /// The whole master key is disabled.
    #[error("master key {0:?} is disabled")]
    DisabledKey(String),
    /// The context differs from the one the key was wrapped with.
    #[error("the encryption context differs from the one the key was wrapped with")]
    WrongContext,
    /// The authentication tag does not verify: the blob was altered.
    #[error("the wrapped key failed authentication")]
    Tampered,
    /// The system RNG failed.
    #[error("the system random number generator failed")]
    Rng,
}

/// What a blob's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// The master key that sealed the blob.
    pub key_id: &'a str,
    /// Its version.
    pub version: u32,
    context_digest: &'a [u8],
    nonce: &'a [u8],
    header_len: usize,
}

/// Reads a blob's header without opening it.
pub fn parse(blob: &[u8]) -> Result<Header<'_>, EnvelopeError> {
    let Some(&format) = blob.first() else {
        return Err(EnvelopeError::Malformed("empty"));
    };
    if format != FORMAT_V1 {
        return Err(EnvelopeError::UnknownFormat(format));
    }
    if blob.len() > MAX_WRAPPED_KEY_LEN {
        return Err(EnvelopeError::Malformed("too long"));
    }
    let id_len = *blob.get(1).ok_or(EnvelopeError::Malformed("truncated"))? as usize;
    if id_len == 0 || id_len > MAX_KEY_ID_LEN {
        return Err(EnvelopeError::Malformed("bad key id length"));
    }
    let header_len = 2 + id_len + 4 + DIGEST_LEN + NONCE_LEN;
    if blob.len() < header_len + MIN_DATA_KEY_LEN + TAG_LEN {
        return Err(EnvelopeError::Malformed("truncated"));
    }
    let key_id = std::str::from_utf8(&blob[2..2 + id_len])
        .map_err(|_| EnvelopeError::Malformed("key id is not UTF-8"))?;
    let mut at = 2 + id_len;
    let version = u32::from_be_bytes(blob[at..at + 4].try_into().expect("4 bytes"));
    at += 4;
    let context_digest = &blob[at..at + DIGEST_LEN];
    at += DIGEST_LEN;
    let nonce = &blob[at..at + NONCE_LEN];
    Ok(Header {
        key_id,
        version,
        context_digest,
        nonce,
        header_len,
    })
}

/// Seals `data_key` under the primary version of `key_id`. Returns the blob and the version.
pub fn wrap(
    keyring: &Keyring,
    key_id: &str,
    context: &EncryptionContext,
    data_key: &[u8],
    rng: &SystemRandom,
) -> Result<(Vec<u8>, u32), EnvelopeError> {
    let key = keyring
        .key(key_id)
        .ok_or_else(|| EnvelopeError::UnknownKey(key_id.to_owned()))?;
    if key.state == VersionState::Disabled {
        return Err(EnvelopeError::DisabledKey(key_id.to_owned()));
    }
    let version = key.primary();
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| EnvelopeError::Rng)?;

    let mut blob = Vec::with_capacity(2 + key_id.len() + 4 + DIGEST_LEN + NONCE_LEN + 80);
    blob.push(FORMAT_V1);
    blob.push(u8::try_from(key_id.len()).map_err(|_| EnvelopeError::Malformed("key id"))?);
    blob.extend_from_slice(key_id.as_bytes());
    blob.extend_from_slice(&version.version.to_be_bytes());
    blob.extend_from_slice(&context_digest(context));
    blob.extend_from_slice(&nonce);
    let aad = associated_data(&blob, context);

    let mut sealed = Zeroizing::new(data_key.to_vec());
    version
        .aead()
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad),
            &mut *sealed,
        )
        .map_err(|_| EnvelopeError::Malformed("data key too long"))?;
    blob.extend_from_slice(&sealed);
    Ok((blob, version.version))
}

/// Opens a blob for `context`. Returns the plaintext data key, the key id and the version.
pub fn unwrap(
    keyring: &Keyring,
    blob: &[u8],
    context: &EncryptionContext,
) -> Result<(Zeroizing<Vec<u8>>, String, u32), EnvelopeError> {
    let header = parse(blob)?;
    let key = keyring
        .key(header.key_id)
        .ok_or_else(|| EnvelopeError::UnknownKey(header.key_id.to_owned()))?;
    if key.state == VersionState::Disabled {
        return Err(EnvelopeError::DisabledKey(header.key_id.to_owned()));
    }
    let version =
        key.versions
            .get(&header.version)
            .ok_or_else(|| EnvelopeError::UnknownVersion {
                key: header.key_id.to_owned(),
                version: header.version,
            })?;
    if version.state == VersionState::Disabled {
        return Err(EnvelopeError::DisabledVersion {
            key: header.key_id.to_owned(),
            version: header.version,
        });
    }
    if header.context_digest != context_digest(context) {
        return Err(EnvelopeError::WrongContext);
    }
    let nonce = Nonce::try_assume_unique_for_key(header.nonce)
        .map_err(|_| EnvelopeError::Malformed("nonce"))?;
    let aad = associated_data(&blob[..header.header_len], context);
    let mut buf = Zeroizing::new(blob[header.header_len..].to_vec());
    let len = version
        .aead()
        .open_in_place(nonce, Aad::from(&aad), &mut buf)
        .map_err(|_| EnvelopeError::Tampered)?
        .len();
    buf.truncate(len);
    Ok((buf, header.key_id.to_owned(), header.version))
}

fn context_digest(context: &EncryptionContext) -> [u8; DIGEST_LEN] {
    let digest = ring::digest::digest(&ring::digest::SHA256, &context.canonical_bytes());
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(&digest.as_ref()[..DIGEST_LEN]);
    out
}

fn associated_data(header: &[u8], context: &EncryptionContext) -> Vec<u8> {
    let canonical = context.canonical_bytes();
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + header.len() + canonical.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(header);
    aad.extend_from_slice(&canonical);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Keyring, SystemRandom, EncryptionContext) {
        let rng = SystemRandom::new();
        let keyring = Keyring::generate("default", &rng).unwrap();
        let ctx = EncryptionContext::new()
            .with("workspace_id", "ws-1")
            .with("credential_id", "cred-1");
        (keyring, rng, ctx)
    }

    #[test]
    fn round_trip() {
        let (keyring, rng, ctx) = setup();
        let dek = [7u8; 32];
        let (blob, version) = wrap(&keyring, "default", &ctx, &dek, &rng).unwrap();
        assert_eq!(version, 1);
        let header = parse(&blob).unwrap();
        assert_eq!((header.key_id, header.version), ("default", 1));
        let (plain, key, v) = unwrap(&keyring, &blob, &ctx).unwrap();
        assert_eq!(plain.as_slice(), &dek);
        assert_eq!((key.as_str(), v), ("default", 1));
    }

    #[test]
    fn nonces_are_fresh() {
        let (keyring, rng, ctx) = setup();
        let a = wrap(&keyring, "default", &ctx, &[1; 32], &rng).unwrap().0;
        let b = wrap(&keyring, "default", &ctx, &[1; 32], &rng).unwrap().0;
        assert_ne!(a, b);
    }

    /// Flips one bit in every byte of the blob in turn and asserts the exact error each region
    /// gives: no flipped bit is ever accepted.
    #[test]
    fn tamper_matrix_flip_each_byte() {
        let (keyring, rng, ctx) = setup();
        let (blob, _) = wrap(&keyring, "default", &ctx, &[9u8; 32], &rng).unwrap();
        let id_end = 2 + "default".len();
        let version_end = id_end + 4;
        let digest_end = version_end + DIGEST_LEN;
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            let err = unwrap(&keyring, &bad, &ctx).unwrap_err();
            let ok = match i {
                0 => err == EnvelopeError::UnknownFormat(0),
                1 => matches!(
                    err,
                    EnvelopeError::Malformed(_) | EnvelopeError::UnknownKey(_)
                ),
                _ if i < id_end => matches!(err, EnvelopeError::UnknownKey(_)),
                _ if i < version_end => matches!(err, EnvelopeError::UnknownVersion { .. }),
                _ if i < digest_end => err == EnvelopeError::WrongContext,
                // nonce, sealed key and tag
                _ => err == EnvelopeError::Tampered,
            };
            assert!(ok, "byte {i}: {err:?}");
        }
    }

    #[test]
    fn tamper_matrix_structure() {
        let (keyring, rng, ctx) = setup();
        let (blob, _) = wrap(&keyring, "default", &ctx, &[9u8; 32], &rng).unwrap();

        // Dropping the tag leaves a sealed part of 32 bytes that cannot authenticate.
        let no_tag = &blob[..blob.len() - TAG_LEN];
        assert_eq!(unwrap(&keyring, no_tag, &ctx), Err(EnvelopeError::Tampered));
        // Shorter than any valid blob.
        assert_eq!(
            unwrap(&keyring, &blob[..20], &ctx),
            Err(EnvelopeError::Malformed("truncated"))
        );
        assert_eq!(
            unwrap(&keyring, &[], &ctx),
            Err(EnvelopeError::Malformed("empty"))
        );
        let mut long = blob.clone();
        long.resize(MAX_WRAPPED_KEY_LEN + 1, 0);
        assert_eq!(
            unwrap(&keyring, &long, &ctx),
            Err(EnvelopeError::Malformed("too long"))
        );
        let mut future = blob.clone();
        future[0] = 2;
        assert_eq!(
            unwrap(&keyring, &future, &ctx),
            Err(EnvelopeError::UnknownFormat(2))
        );
        // Appending a byte shifts the tag.
        let mut extra = blob.clone();
        extra.push(0);
        assert_eq!(unwrap(&keyring, &extra, &ctx), Err(EnvelopeError::Tampered));
    }

    #[test]
    fn context_is_bound() {
        let (keyring, rng, ctx) = setup();
        let (blob, _) = wrap(&keyring, "default", &ctx, &[9u8; 32], &rng).unwrap();
        let other_row = EncryptionContext::new()
            .with("workspace_id", "ws-1")
            .with("credential_id", "cred-2");
        let other_ws = EncryptionContext::new()
            .with("workspace_id", "ws-2")
            .with("credential_id", "cred-1");
        let extra = ctx.clone().with("format", "1");
        // The same row under another payload format: the format is part of the binding.
        let v1 = ctx.clone().with("payload_format", "1");
        let (v1_blob, _) = wrap(&keyring, "default", &v1, &[9u8; 32], &rng).unwrap();
        assert_eq!(
            unwrap(&keyring, &v1_blob, &v1.clone().with("payload_format", "2")),
            Err(EnvelopeError::WrongContext)
        );
        for wrong in [other_row, other_ws, extra, v1, EncryptionContext::new()] {
            assert_eq!(
                unwrap(&keyring, &blob, &wrong),
                Err(EnvelopeError::WrongContext)
            );
        }
        // A digest forged to match the wrong context still fails: the context is also in the AAD.
        let forged_ctx = EncryptionContext::new().with("workspace_id", "ws-9");
        let mut forged = blob.clone();
        let at = 2 + "default".len() + 4;
        forged[at..at + DIGEST_LEN].copy_from_slice(&context_digest(&forged_ctx));
        assert_eq!(
            unwrap(&keyring, &forged, &forged_ctx),
            Err(EnvelopeError::Tampered)
        );
    }

    /// A blob written before the context type was shared (format 1, fixed master key): the
    /// bytes a stored row holds must keep opening, so neither the layout nor the context's
    /// canonical encoding may change.
    #[test]
    fn a_stored_blob_still_opens() {
        let json = br#"{"format":1,"default_key":"default","keys":[{"id":"default","primary_version":1,"versions":[{"version":1,"state":"enabled","created_at":"2026-01-01T00:00:00Z","material":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}]}]}"#;
        let keyring = Keyring::parse(std::path::Path::new("fixed.json"), json).unwrap();
        let ctx = EncryptionContext::new()
            .with("workspace_id", "ws-legacy")
            .with("credential_id", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
            .with("payload_format", "1");
        let blob = hex(concat!(
            "010764656661756c7400000001a3e9d5f6501da95f93b5818ef49ad790fd6247",
            "25ca9521bfd19f58b9077b3cec068fa63cc4ef85c2f1e85c14f19b7cbe71d067",
            "647dd14f5feff6b70ef4a444aa5654c7e661655a4bd62b0993"
        ));
        let (plain, key, version) = unwrap(&keyring, &blob, &ctx).unwrap();
        assert_eq!(plain.as_slice(), (0u8..32).collect::<Vec<_>>().as_slice());
        assert_eq!((key.as_str(), version), ("default", 1));
        assert_eq!(
            unwrap(&keyring, &blob, &ctx.clone().with("payload_format", "2")),
            Err(EnvelopeError::WrongContext)
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn another_keyring_cannot_open() {
        let (keyring, rng, ctx) = setup();
        let (blob, _) = wrap(&keyring, "default", &ctx, &[9u8; 32], &rng).unwrap();
        let stranger = Keyring::generate("default", &rng).unwrap();
        assert_eq!(unwrap(&stranger, &blob, &ctx), Err(EnvelopeError::Tampered));
    }

    #[test]
    fn rotation_and_disable() {
        let (mut keyring, rng, ctx) = setup();
        let (v1_blob, v) = wrap(&keyring, "default", &ctx, &[3u8; 32], &rng).unwrap();
        assert_eq!(v, 1);
        keyring.add_version("default", &rng, true).unwrap();
        // Old blobs still open; new wraps use v2.
        assert_eq!(unwrap(&keyring, &v1_blob, &ctx).unwrap().2, 1);
        let (v2_blob, v) = wrap(&keyring, "default", &ctx, &[3u8; 32], &rng).unwrap();
        assert_eq!(v, 2);
        // Rewrap = unwrap + wrap under the primary.
        let (plain, _, _) = unwrap(&keyring, &v1_blob, &ctx).unwrap();
        let (moved, v) = wrap(&keyring, "default", &ctx, &plain, &rng).unwrap();
        assert_eq!(v, 2);
        keyring
            .set_state("default", 1, VersionState::Disabled)
            .unwrap();
        assert_eq!(
            unwrap(&keyring, &v1_blob, &ctx),
            Err(EnvelopeError::DisabledVersion {
                key: "default".into(),
                version: 1
            })
        );
        assert_eq!(
            unwrap(&keyring, &moved, &ctx).unwrap().0.as_slice(),
            &[3u8; 32]
        );
        assert!(unwrap(&keyring, &v2_blob, &ctx).is_ok());
    }

    #[test]
    fn a_disabled_key_neither_wraps_nor_unwraps() {
        let (mut keyring, rng, ctx) = setup();
        keyring.add_key("ws-acme", &rng).unwrap();
        let (blob, _) = wrap(&keyring, "ws-acme", &ctx, &[1; 32], &rng).unwrap();
        keyring
            .set_key_state("ws-acme", VersionState::Disabled)
            .unwrap();
        let disabled = EnvelopeError::DisabledKey("ws-acme".into());
        assert_eq!(unwrap(&keyring, &blob, &ctx), Err(disabled.clone()));
        assert_eq!(
            wrap(&keyring, "ws-acme", &ctx, &[1; 32], &rng),
            Err(disabled)
        );
        assert!(wrap(&keyring, "default", &ctx, &[1; 32], &rng).is_ok());
    }

    #[test]
    fn unknown_key() {
        let (keyring, rng, ctx) = setup();
        assert_eq!(
            wrap(&keyring, "nope", &ctx, &[1; 32], &rng),
            Err(EnvelopeError::UnknownKey("nope".into()))
        );
        let mut other = Keyring::generate("default", &rng).unwrap();
        other.add_key("ws-acme", &rng).unwrap();
        let (blob, _) = wrap(&other, "ws-acme", &ctx, &[1; 32], &rng).unwrap();
        assert_eq!(
            unwrap(&keyring, &blob, &ctx),
            Err(EnvelopeError::UnknownKey("ws-acme".into()))
        );
    }
}
