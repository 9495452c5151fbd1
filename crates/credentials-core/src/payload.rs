//! Sealing a credential's value with its data key (AES-256-GCM, random 96-bit nonce), with the
//! encryption context as associated data, so a ciphertext copied onto another row fails to open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The payload format this build writes (the value's JSON, sealed as below).
pub const PAYLOAD_FORMAT: i16 = 1;
const AAD_LABEL: &[u8] = b"vault.credentials.v1.payload";

/// The encryption context of a credential's value: binds the data key (in the kms) and the
/// ciphertext (here) to one row of one workspace. Not secret.
pub fn encryption_context(workspace_id: &str, credential_id: Uuid) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("workspace_id".to_owned(), workspace_id.to_owned()),
        ("credential_id".to_owned(), credential_id.to_string()),
        ("payload_format".to_owned(), PAYLOAD_FORMAT.to_string()),
    ])
}

/// Everything stored about a sealed value: ciphertext, nonce and the wrapped data key.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sealed value with its tag.
    pub ciphertext: Vec<u8>,
    /// The AES-GCM nonce.
    pub nonce: Vec<u8>,
    /// The data key as wrapped by the kms.
    pub wrapped_key: Vec<u8>,
    /// The master key that wraps the data key.
    pub master_key_id: String,
    /// Its version.
    pub master_key_version: u32,
    /// The payload format.
    pub payload_format: i16,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("master_key_id", &self.master_key_id)
            .field("master_key_version", &self.master_key_version)
            .field("payload_format", &self.payload_format)
            .finish_non_exhaustive()
    }
}

/// Why a payload cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The data key is not a 32-byte AES-256 key.
    #[error("the data key is not an AES-256 key")]
    BadKey,
    /// The stored payload format is unknown to this build.
    #[error("unknown payload format {0}")]
    UnknownFormat(i16),
    /// The ciphertext, nonce or context does not authenticate.
    #[error("the stored value does not authenticate")]
    Tampered,
    /// The system RNG failed.
    #[error("the system random number generator failed")]
    Rng,
}

fn key(data_key: &[u8]) -> Result<LessSafeKey, SealError> {
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, data_key).map_err(|_| SealError::BadKey)?,
    ))
}

fn aad(context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = AAD_LABEL.to_vec();
    // A BTreeMap serializes in key order, so the encoding is canonical.
    serde_json::to_writer(&mut out, context).expect("a string map always serializes");
    out
}

/// Seals `plaintext`; returns the ciphertext (with tag) and the nonce.
pub fn seal(
    data_key: &[u8],
    context: &BTreeMap<String, String>,
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    let key = key(data_key)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SealError::Rng)?;
    let mut buf = Vec::with_capacity(plaintext.len() + AES_256_GCM.tag_len());
    buf.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(context)),
        &mut buf,
    )
    .map_err(|_| SealError::BadKey)?;
    Ok((buf, nonce.to_vec()))
}

/// Opens a sealed value for `context`.
pub fn open(
    data_key: &[u8],
    context: &BTreeMap<String, String>,
    envelope: &Envelope,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if envelope.payload_format != PAYLOAD_FORMAT {
        return Err(SealError::UnknownFormat(envelope.payload_format));
    }
    let key = key(data_key)?;
    let nonce =
        Nonce::try_assume_unique_for_key(&envelope.nonce).map_err(|_| SealError::Tampered)?;
    let mut buf = Zeroizing::new(envelope.ciphertext.clone());
    let len = key
        .open_in_place(nonce, Aad::from(aad(context)), &mut buf)
        .map_err(|_| SealError::Tampered)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(ciphertext: Vec<u8>, nonce: Vec<u8>) -> Envelope {
        Envelope {
            ciphertext,
            nonce,
            wrapped_key: vec![],
            master_key_id: "default".into(),
            master_key_version: 1,
            payload_format: PAYLOAD_FORMAT,
        }
    }

    /// NIST SP 800-38D / McGrew-Viega test case 16 (AES-256, 96-bit IV, with AAD): checks that
    /// ring is driven the standard way.
    #[test]
    fn aes_256_gcm_published_vector() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let key = LessSafeKey::new(
            UnboundKey::new(
                &AES_256_GCM,
                &hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
            )
            .unwrap(),
        );
        let mut data = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let nonce = Nonce::try_assume_unique_for_key(&hex("cafebabefacedbaddecaf888")).unwrap();
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        key.seal_in_place_append_tag(nonce, Aad::from(&aad), &mut data)
            .unwrap();
        let expected = hex(concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b"
        ));
        assert_eq!(data, expected);
    }

    #[test]
    fn round_trip_and_tamper_matrix() {
        let dek = [5u8; 32];
        let id = Uuid::from_u128(7);
        let ctx = encryption_context("ws-1", id);
        let (ct, nonce) = seal(&dek, &ctx, b"{\"fields\":{}}").unwrap();
        let good = envelope(ct.clone(), nonce.clone());
        assert_eq!(
            open(&dek, &ctx, &good).unwrap().as_slice(),
            b"{\"fields\":{}}"
        );

        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 1;
            assert_eq!(
                open(&dek, &ctx, &envelope(bad, nonce.clone())),
                Err(SealError::Tampered)
            );
        }
        let mut bad_nonce = nonce.clone();
        bad_nonce[0] ^= 1;
        assert_eq!(
            open(&dek, &ctx, &envelope(ct.clone(), bad_nonce)),
            Err(SealError::Tampered)
        );
        assert_eq!(
            open(&dek, &ctx, &envelope(ct.clone(), vec![0; 5])),
            Err(SealError::Tampered)
        );
        let no_tag = ct[..ct.len() - 16].to_vec();
        assert_eq!(
            open(&dek, &ctx, &envelope(no_tag, nonce.clone())),
            Err(SealError::Tampered)
        );

        // Another row or workspace: the context is the associated data.
        for other in [
            encryption_context("ws-2", id),
            encryption_context("ws-1", Uuid::from_u128(8)),
        ] {
            assert_eq!(open(&dek, &other, &good), Err(SealError::Tampered));
        }
        assert_eq!(open(&[6u8; 32], &ctx, &good), Err(SealError::Tampered));
        assert_eq!(open(&[6u8; 16], &ctx, &good), Err(SealError::BadKey));
        let mut future = good.clone();
        future.payload_format = 2;
        assert_eq!(open(&dek, &ctx, &future), Err(SealError::UnknownFormat(2)));
    }
}
