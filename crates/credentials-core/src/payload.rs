//! Sealing a credential's value with its data key (AES-256-GCM, random 96-bit nonce), with the
//! encryption context as associated data, so a ciphertext copied onto another row fails to open.
//!
//! The context is the shared [`EncryptionContext`], the same value the kms binds into the
//! wrapped data key. A row's `payload_format` says how its value was sealed, and is itself an
//! entry of the context, so rewriting the column breaks both the wrapped key and the seal:
//!
//! | format | context | associated data | |
//! | --- | --- | --- | --- |
//! | 1 | workspace, credential, format | label, then the context as JSON (keys in order) | read only |
//! | 2 | workspace, credential, format | label, then [`EncryptionContext::canonical_bytes`] | read only |
//! | 3 | + type id, value generation | label, then [`EncryptionContext::canonical_bytes`] | read only |
//! | 4 | as 3 | as 3; the data key is derived, see below | written by this build |
//!
//! The label is `vault.credentials.v1.payload` in all. Format 3 also binds the row's type (a
//! value relabelled as another type, e.g. to become the default an agent asks for, no longer
//! opens) and its value generation (a counter the row increments on every value write, so an
//! older ciphertext and wrapped key restored onto the same row no longer open). A row is opened
//! by the format it records, never by trying another; an unknown format is refused before the
//! kms is asked, and so is an older format on a row whose generation says it was written in
//! format 3 or later (a downgrade).
//!
//! Formats 1 to 3 store a data key of their own, wrapped by the kms under the row's context.
//! Format 4 stores a *seed*: a data key the kms wrapped under [`seed_context`] (the workspace
//! and a purpose, no row), shared by the values one API replica writes in that workspace for a
//! few minutes. Each value's data key is HKDF-SHA256 of the seed, with a random salt of
//! [`SALT_LEN`] bytes stored in front of the ciphertext and the label
//! `vault.credentials.v1.payload-key` plus the row's canonical context as info, so every value
//! still has its own key and the row stays bound (in the derivation and in the associated
//! data); what the writer saves is the kms round trip per write. See docs/write-path.md.

use encryption_context::EncryptionContext;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;
use zeroize::Zeroizing;

/// The payload format this build writes.
pub const PAYLOAD_FORMAT: i16 = PayloadFormat::CURRENT.as_i16();
const AAD_LABEL: &[u8] = b"vault.credentials.v1.payload";
/// Separates a value's derived data key from any other use of the seed.
const DERIVE_LABEL: &[u8] = b"vault.credentials.v1.payload-key";
/// The `purpose` entry of a seed's context: no row context has one, so a seed is never
/// unwrapped as a row's own data key nor the other way round.
pub const SEED_PURPOSE: &str = "payload-seed";
/// The random salt of a format-4 value's key derivation, in bytes (stored before the
/// ciphertext): 256 bits, so two values of one seed never derive the same key.
pub const SALT_LEN: usize = 32;

/// The payload formats this build opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// The context as JSON in the associated data: the first format, opened but never written.
    V1,
    /// The context's canonical encoding in the associated data, as in the kms's wrapped keys;
    /// opened but no longer written.
    V2,
    /// As V2, with the type id and the value generation in the context; opened but no longer
    /// written.
    V3,
    /// As V3, under a data key derived from a kms-wrapped seed and the row's salt.
    V4,
}

impl PayloadFormat {
    /// The format new values are sealed in.
    pub const CURRENT: Self = Self::V4;

    /// The format a stored row records; an unknown number is refused, never guessed.
    pub fn from_stored(format: i16) -> Result<Self, SealError> {
        match format {
            1 => Ok(Self::V1),
            2 => Ok(Self::V2),
            3 => Ok(Self::V3),
            4 => Ok(Self::V4),
            other => Err(SealError::UnknownFormat(other)),
        }
    }

    /// The number stored in the row and in the context.
    pub const fn as_i16(self) -> i16 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
            Self::V3 => 3,
            Self::V4 => 4,
        }
    }

    /// The associated data; format 4 appends its salt (`salt` is empty before), so a stored
    /// salt that was altered fails the tag even before it changes the derived key.
    fn aad(self, context: &EncryptionContext, salt: &[u8]) -> Vec<u8> {
        let mut out = AAD_LABEL.to_vec();
        match self {
            // A BTreeMap serializes in key order, so this encoding was canonical too.
            Self::V1 => serde_json::to_writer(&mut out, context.entries())
                .expect("a string map always serializes"),
            Self::V2 | Self::V3 | Self::V4 => out.extend_from_slice(&context.canonical_bytes()),
        }
        out.extend_from_slice(salt);
        out
    }
}

/// What a row's context names besides its format: the row, its type and the generation of its
/// value. Built from the row itself, never stored apart from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowBinding<'a> {
    /// The credential's workspace.
    pub workspace_id: &'a str,
    /// The credential's id.
    pub credential_id: Uuid,
    /// The credential's type id.
    pub type_id: &'a str,
    /// How many times the row's value has been written in format 3 or later (0 before).
    pub value_generation: i64,
}

fn context(row: &RowBinding<'_>, format: PayloadFormat) -> EncryptionContext {
    let ctx = EncryptionContext::new()
        .with("workspace_id", row.workspace_id)
        .with("credential_id", row.credential_id.to_string())
        .with("payload_format", format.as_i16().to_string());
    match format {
        PayloadFormat::V1 | PayloadFormat::V2 => ctx,
        PayloadFormat::V3 | PayloadFormat::V4 => ctx
            .with("type_id", row.type_id)
            .with("value_generation", row.value_generation.to_string()),
    }
}

/// The encryption context of a value about to be sealed: binds the data key (in the kms) and
/// the ciphertext (here) to one row of one workspace, its type and the generation the value
/// will have, in the format this build writes.
pub fn encryption_context(row: &RowBinding<'_>) -> EncryptionContext {
    context(row, PayloadFormat::CURRENT)
}

/// The encryption context of a stored value, for the format its row records; the same for
/// unwrapping its data key, re-wrapping it, and opening the value. A generation of 0 belongs to
/// formats 1 and 2 only, and any other to format 3: a row whose columns disagree was altered
/// (an older format would bind less) and is refused before the kms is asked.
pub fn stored_context(
    row: &RowBinding<'_>,
    payload_format: i16,
) -> Result<EncryptionContext, SealError> {
    let format = PayloadFormat::from_stored(payload_format)?;
    let consistent = match format {
        PayloadFormat::V1 | PayloadFormat::V2 => row.value_generation == 0,
        PayloadFormat::V3 | PayloadFormat::V4 => row.value_generation >= 1,
    };
    if !consistent {
        return Err(SealError::FormatMismatch {
            format: payload_format,
            generation: row.value_generation,
        });
    }
    Ok(context(row, format))
}

/// The context a seed is wrapped under: its workspace and [`SEED_PURPOSE`], no row, so one
/// seed serves many rows of one workspace and never another workspace's.
pub fn seed_context(workspace_id: &str) -> EncryptionContext {
    EncryptionContext::new()
        .with("workspace_id", workspace_id)
        .with("purpose", SEED_PURPOSE)
}

/// The context a stored row's wrapped key is bound to in the kms (for unwrapping and
/// re-wrapping it): the row's own context up to format 3, the workspace's seed context in
/// format 4. Refuses what [`stored_context`] refuses, before the kms is asked.
pub fn wrapping_context(
    row: &RowBinding<'_>,
    payload_format: i16,
) -> Result<EncryptionContext, SealError> {
    let ctx = stored_context(row, payload_format)?;
    Ok(match PayloadFormat::from_stored(payload_format)? {
        PayloadFormat::V4 => seed_context(row.workspace_id),
        _ => ctx,
    })
}

/// A fresh random salt for [`derive_data_key`].
pub fn new_salt() -> Result<[u8; SALT_LEN], SealError> {
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| SealError::Rng)?;
    Ok(salt)
}

/// A format-4 value's data key: HKDF-SHA256 (RFC 5869) of the 32-byte `seed` with `salt` and,
/// as info, the label and the row's canonical `context`, so the key is the row's alone even
/// when a salt repeats.
pub fn derive_data_key(
    seed: &[u8],
    salt: &[u8],
    context: &EncryptionContext,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if seed.len() != AES_256_GCM.key_len() {
        return Err(SealError::BadKey);
    }
    if salt.len() != SALT_LEN {
        return Err(SealError::Tampered);
    }
    let canonical = context.canonical_bytes();
    let info = [DERIVE_LABEL, canonical.as_slice()];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(seed);
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .map_err(|_| SealError::BadKey)?;
    let mut key = Zeroizing::new(vec![0u8; AES_256_GCM.key_len()]);
    okm.fill(&mut key).map_err(|_| SealError::BadKey)?;
    Ok(key)
}

/// Everything stored about a sealed value: ciphertext, nonce and the wrapped data key.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sealed value with its tag; in format 4 after the derivation salt (see
    /// [`Envelope::derivation_salt`]).
    pub ciphertext: Vec<u8>,
    /// The AES-GCM nonce.
    pub nonce: Vec<u8>,
    /// The data key as wrapped by the kms (in format 4, the seed it is derived from).
    pub wrapped_key: Vec<u8>,
    /// The master key that wraps the data key.
    pub master_key_id: String,
    /// Its version.
    pub master_key_version: u32,
    /// The payload format.
    pub payload_format: i16,
    /// The value's generation (part of the context from format 3 on; 0 before).
    pub value_generation: i64,
}

impl Envelope {
    /// The salt a format-4 value's data key is derived with (`None` in formats 1 to 3, whose
    /// wrapped key is the data key itself). A format-4 ciphertext too short to hold one was
    /// cut and does not authenticate.
    pub fn derivation_salt(&self) -> Result<Option<&[u8]>, SealError> {
        match PayloadFormat::from_stored(self.payload_format)? {
            PayloadFormat::V4 => self
                .ciphertext
                .get(..SALT_LEN)
                .map(Some)
                .ok_or(SealError::Tampered),
            _ => Ok(None),
        }
    }

    /// The sealed bytes after any salt: what AES-GCM opens.
    fn sealed(&self) -> Result<&[u8], SealError> {
        let salt = self.derivation_salt()?.map_or(0, <[u8]>::len);
        Ok(&self.ciphertext[salt..])
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("master_key_id", &self.master_key_id)
            .field("master_key_version", &self.master_key_version)
            .field("payload_format", &self.payload_format)
            .field("value_generation", &self.value_generation)
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
    /// The row's format and value generation do not go together (a downgraded row).
    #[error("payload format {format} does not go with value generation {generation}")]
    FormatMismatch {
        /// The format the row records.
        format: i16,
        /// The generation the row records.
        generation: i64,
    },
    /// The ciphertext, nonce or context does not authenticate.
    #[error("the stored value does not authenticate")]
    Tampered,
    /// The system RNG failed.
    #[error("the system random number generator failed")]
    Rng,
}

fn names_format(context: &EncryptionContext, format: PayloadFormat) -> bool {
    context.get("payload_format") == Some(format.as_i16().to_string().as_str())
}

fn key(data_key: &[u8]) -> Result<LessSafeKey, SealError> {
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, data_key).map_err(|_| SealError::BadKey)?,
    ))
}

/// Seals `plaintext` in [`PAYLOAD_FORMAT`] (4) for a context from [`encryption_context`],
/// under the data key [`derive_data_key`] made from `salt`; returns the ciphertext (the salt,
/// then the sealed value with its tag) and the nonce.
pub fn seal(
    data_key: &[u8],
    salt: &[u8; SALT_LEN],
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    sealed(PayloadFormat::V4, data_key, salt, context, plaintext)
}

/// Seals in format 1, 2 or 3, with a context from [`stored_context`] for that format, under a
/// data key of the value's own. The service writes only [`PayloadFormat::CURRENT`] (see
/// [`seal`]); an older format is for rebuilding rows as an older build wrote them (tests of
/// the upgrade path). Format 4 needs its salt: [`seal`].
pub fn seal_in(
    format: PayloadFormat,
    data_key: &[u8],
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    if format == PayloadFormat::V4 {
        return Err(SealError::UnknownFormat(format.as_i16()));
    }
    sealed(format, data_key, &[], context, plaintext)
}

fn sealed(
    format: PayloadFormat,
    data_key: &[u8],
    prefix: &[u8],
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    if !names_format(context, format) {
        return Err(SealError::Tampered);
    }
    let key = key(data_key)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SealError::Rng)?;
    let mut buf = Vec::with_capacity(plaintext.len() + AES_256_GCM.tag_len());
    buf.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(format.aad(context, prefix)),
        &mut buf,
    )
    .map_err(|_| SealError::BadKey)?;
    if prefix.is_empty() {
        return Ok((buf, nonce.to_vec()));
    }
    let mut out = Vec::with_capacity(prefix.len() + buf.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(&buf);
    Ok((out, nonce.to_vec()))
}

/// Opens a sealed value, in the format its envelope records, for a context from
/// [`stored_context`], with the value's data key (in format 4 the derived one, see
/// [`derive_data_key`]).
pub fn open(
    data_key: &[u8],
    context: &EncryptionContext,
    envelope: &Envelope,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let format = PayloadFormat::from_stored(envelope.payload_format)?;
    // Formats 2 and 3 share an encoding: the context must name the format being opened, or a
    // format-3 value could be opened as format 2 under its own context.
    if !names_format(context, format) {
        return Err(SealError::Tampered);
    }
    let key = key(data_key)?;
    let nonce =
        Nonce::try_assume_unique_for_key(&envelope.nonce).map_err(|_| SealError::Tampered)?;
    let salt = envelope.derivation_salt()?.unwrap_or_default();
    let mut buf = Zeroizing::new(envelope.sealed()?.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(format.aad(context, salt)), &mut buf)
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
            value_generation: 1,
        }
    }

    /// A row of workspace `ws`, id `id`, type openai, at `generation`.
    fn row(ws: &str, id: Uuid, generation: i64) -> RowBinding<'_> {
        RowBinding {
            workspace_id: ws,
            credential_id: id,
            type_id: "openai",
            value_generation: generation,
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
        let ctx = encryption_context(&row("ws-1", id, 1));
        let salt = new_salt().unwrap();
        let (ct, nonce) = seal(&dek, &salt, &ctx, b"{\"fields\":{}}").unwrap();
        assert_eq!(&ct[..SALT_LEN], salt.as_slice());
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
        // Cut into the salt: refused, not read out of bounds.
        assert_eq!(
            open(
                &dek,
                &ctx,
                &envelope(ct[..SALT_LEN - 1].to_vec(), nonce.clone())
            ),
            Err(SealError::Tampered)
        );
        let no_tag = ct[..ct.len() - 16].to_vec();
        assert_eq!(
            open(&dek, &ctx, &envelope(no_tag, nonce.clone())),
            Err(SealError::Tampered)
        );

        // Another row or workspace: the context is the associated data.
        for other in [
            encryption_context(&row("ws-2", id, 1)),
            encryption_context(&row("ws-1", Uuid::from_u128(8), 1)),
        ] {
            assert_eq!(open(&dek, &other, &good), Err(SealError::Tampered));
        }
        assert_eq!(open(&[6u8; 32], &ctx, &good), Err(SealError::Tampered));
        assert_eq!(open(&[6u8; 16], &ctx, &good), Err(SealError::BadKey));
        // Another type or another generation of the same row: bound too.
        let relabelled = RowBinding {
            type_id: "anthropic",
            ..row("ws-1", id, 1)
        };
        for other in [
            encryption_context(&relabelled),
            encryption_context(&row("ws-1", id, 2)),
        ] {
            assert_eq!(open(&dek, &other, &good), Err(SealError::Tampered));
        }
        let mut future = good.clone();
        future.payload_format = 5;
        assert_eq!(open(&dek, &ctx, &future), Err(SealError::UnknownFormat(5)));

        // The format is bound too: relabelling the row as format 1, 2 or 3, with or without
        // the matching context, does not open it.
        for (format, generation) in [(1, 0), (2, 0), (3, 1)] {
            let old_ctx = stored_context(&row("ws-1", id, generation), format).unwrap();
            let mut relabelled = good.clone();
            relabelled.payload_format = format;
            for (ctx, envelope) in [
                (&old_ctx, &relabelled),
                (&old_ctx, &good),
                (&ctx, &relabelled),
            ] {
                assert_eq!(open(&dek, ctx, envelope), Err(SealError::Tampered));
            }
        }
    }

    #[test]
    fn new_values_use_the_current_format_and_the_shared_encoding() {
        assert_eq!(PAYLOAD_FORMAT, 4);
        let id = Uuid::from_u128(7);
        let ctx = encryption_context(&row("ws-1", id, 1));
        assert_eq!(
            ctx,
            stored_context(&row("ws-1", id, 1), PAYLOAD_FORMAT).unwrap()
        );
        assert_eq!(ctx.get("payload_format"), Some("4"));
        assert_eq!(ctx.get("type_id"), Some("openai"));
        assert_eq!(ctx.get("value_generation"), Some("1"));
        assert_eq!(ctx.len(), 5);
        // Formats 1 and 2 keep the context their rows were written with.
        let v2 = stored_context(&row("ws-1", id, 0), 2).unwrap();
        assert_eq!(v2.len(), 3);
        assert_eq!(v2.get("type_id"), None);
        let mut expected = AAD_LABEL.to_vec();
        expected.extend_from_slice(&ctx.canonical_bytes());
        expected.extend_from_slice(&[7; SALT_LEN]);
        assert_eq!(PayloadFormat::CURRENT.aad(&ctx, &[7; SALT_LEN]), expected);
    }

    #[test]
    fn unknown_formats_are_refused_before_anything_else() {
        for format in [0, 5, -1, i16::MAX] {
            assert_eq!(
                stored_context(&row("ws-1", Uuid::from_u128(7), 1), format),
                Err(SealError::UnknownFormat(format))
            );
            assert_eq!(
                PayloadFormat::from_stored(format),
                Err(SealError::UnknownFormat(format))
            );
        }
        for format in [
            PayloadFormat::V1,
            PayloadFormat::V2,
            PayloadFormat::V3,
            PayloadFormat::V4,
        ] {
            assert_eq!(PayloadFormat::from_stored(format.as_i16()), Ok(format));
        }
    }

    /// A row written in format 3 whose format column is set back to 1 or 2 (which bind less),
    /// or a format-3 row claiming generation 0, is refused before the kms is asked.
    #[test]
    fn format_and_generation_must_agree() {
        let id = Uuid::from_u128(7);
        for (format, generation) in [(1, 1), (2, 1), (2, 9), (3, 0), (3, -1), (1, -1), (4, 0)] {
            assert_eq!(
                stored_context(&row("ws-1", id, generation), format),
                Err(SealError::FormatMismatch { format, generation })
            );
        }
        for (format, generation) in [(1, 0), (2, 0), (3, 1), (3, i64::MAX), (4, 1)] {
            assert!(stored_context(&row("ws-1", id, generation), format).is_ok());
        }
    }

    #[test]
    fn a_value_sealed_in_format_2_opens_as_format_2_only() {
        let dek = [9u8; 32];
        let id = Uuid::from_u128(7);
        let v2 = stored_context(&row("ws-1", id, 0), 2).unwrap();
        let (ct, nonce) = seal_in(PayloadFormat::V2, &dek, &v2, b"old").unwrap();
        let stored = Envelope {
            payload_format: 2,
            value_generation: 0,
            ..envelope(ct, nonce)
        };
        assert_eq!(open(&dek, &v2, &stored).unwrap().as_slice(), b"old");
        let mut as_v3 = stored.clone();
        as_v3.payload_format = 3;
        as_v3.value_generation = 1;
        let v3 = stored_context(&row("ws-1", id, 1), 3).unwrap();
        assert_eq!(open(&dek, &v3, &as_v3), Err(SealError::Tampered));
    }

    /// RFC 5869 test case 1 (HKDF-SHA256): checks that ring's HKDF is driven the standard way.
    #[test]
    fn hkdf_sha256_published_vector() {
        struct Len(usize);
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &hex("000102030405060708090a0b0c"))
            .extract(&[0x0b; 22]);
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let mut okm = [0u8; 42];
        prk.expand(&[&info], Len(42))
            .unwrap()
            .fill(&mut okm)
            .unwrap();
        assert_eq!(
            okm.to_vec(),
            hex(concat!(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf",
                "34007208d5b887185865"
            ))
        );
    }

    /// One seed, many values: each row's key is its own (another salt or another row's
    /// context derives another key), and a value moved to another row does not open there.
    #[test]
    fn values_of_one_seed_have_keys_of_their_own() {
        let seed = [3u8; 32];
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let ctx_a = encryption_context(&row("ws-1", a, 1));
        let ctx_b = encryption_context(&row("ws-1", b, 1));
        let salt = new_salt().unwrap();
        let key_a = derive_data_key(&seed, &salt, &ctx_a).unwrap();
        assert_eq!(key_a, derive_data_key(&seed, &salt, &ctx_a).unwrap());
        assert_ne!(key_a, derive_data_key(&seed, &salt, &ctx_b).unwrap());
        assert_ne!(
            key_a,
            derive_data_key(&seed, &new_salt().unwrap(), &ctx_a).unwrap()
        );
        assert_ne!(key_a, derive_data_key(&[4u8; 32], &salt, &ctx_a).unwrap());
        assert_ne!(new_salt().unwrap(), new_salt().unwrap());
        assert_eq!(
            derive_data_key(&seed[..16], &salt, &ctx_a),
            Err(SealError::BadKey)
        );
        assert_eq!(
            derive_data_key(&seed, &salt[..16], &ctx_a),
            Err(SealError::Tampered)
        );

        let (ct, nonce) = seal(&key_a, &salt, &ctx_a, b"secret-a").unwrap();
        let stored = envelope(ct, nonce);
        assert_eq!(stored.derivation_salt().unwrap(), Some(salt.as_slice()));
        assert_eq!(
            open(&key_a, &ctx_a, &stored).unwrap().as_slice(),
            b"secret-a"
        );
        // On row b, the reader derives b's key from the same seed and salt: it fails.
        let key_there = derive_data_key(&seed, &salt, &ctx_b).unwrap();
        assert_eq!(open(&key_there, &ctx_b, &stored), Err(SealError::Tampered));
        // Another salt in front (the derived key would follow it): the tag fails as well.
        let mut resalted = stored.clone();
        resalted.ciphertext[..SALT_LEN].copy_from_slice(&new_salt().unwrap());
        assert_eq!(open(&key_a, &ctx_a, &resalted), Err(SealError::Tampered));
        // Format 4 is sealed only with its salt.
        assert_eq!(
            seal_in(PayloadFormat::V4, &key_a, &ctx_a, b"x"),
            Err(SealError::UnknownFormat(4))
        );
    }

    /// A seed is bound to its workspace and purpose and never to a row; rows up to format 3
    /// keep their own wrapping context.
    #[test]
    fn wrapped_keys_are_bound_to_the_seed_or_the_row() {
        let id = Uuid::from_u128(7);
        let seed_ctx = seed_context("ws-1");
        assert_eq!(seed_ctx.get("workspace_id"), Some("ws-1"));
        assert_eq!(seed_ctx.get("purpose"), Some(SEED_PURPOSE));
        assert_eq!(seed_ctx.get("credential_id"), None);
        assert_ne!(seed_ctx, seed_context("ws-2"));
        assert_eq!(wrapping_context(&row("ws-1", id, 1), 4).unwrap(), seed_ctx);
        assert_eq!(
            wrapping_context(&row("ws-1", id, 1), 3).unwrap(),
            stored_context(&row("ws-1", id, 1), 3).unwrap()
        );
        assert_eq!(
            wrapping_context(&row("ws-1", id, 0), 4),
            Err(SealError::FormatMismatch {
                format: 4,
                generation: 0
            })
        );
        // A format-3 envelope has no salt; its whole ciphertext is sealed bytes.
        let mut v3 = envelope(vec![1, 2, 3], vec![0; 12]);
        v3.payload_format = 3;
        assert_eq!(v3.derivation_salt(), Ok(None));
    }

    /// A value sealed by the build that wrote format 1 (the context as JSON in the associated
    /// data), kept byte for byte: rows written then must keep opening.
    #[test]
    fn a_payload_of_format_1_still_opens() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let dek: Vec<u8> = (0u8..32).collect();
        let id = Uuid::parse_str("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap();
        let stored = Envelope {
            ciphertext: hex(concat!(
                "d90661b260c15f56f84ebab7c1efc8a629039d3692c77f32fcd1d9536a2d0496",
                "48fc0ba4ff7684c1e9198b5579ef6c"
            )),
            nonce: hex("fa40a36d258a99664c246cd0"),
            wrapped_key: vec![],
            master_key_id: "default".into(),
            master_key_version: 1,
            payload_format: 1,
            value_generation: 0,
        };
        let legacy = |id| RowBinding {
            workspace_id: "ws-legacy",
            credential_id: id,
            type_id: "openai",
            value_generation: 0,
        };
        let ctx = stored_context(&legacy(id), 1).unwrap();
        assert_eq!(ctx.get("payload_format"), Some("1"));
        assert_eq!(
            open(&dek, &ctx, &stored).unwrap().as_slice(),
            br#"{"secret":"sk-legacy-format-1"}"#
        );
        // Opened as anything but what it records, it fails: no fallback between formats.
        let mut as_v2 = stored.clone();
        as_v2.payload_format = 2;
        let v2_ctx = stored_context(&legacy(id), 2).unwrap();
        assert_eq!(open(&dek, &v2_ctx, &as_v2), Err(SealError::Tampered));
        assert_eq!(open(&dek, &v2_ctx, &stored), Err(SealError::Tampered));
        assert_eq!(open(&dek, &ctx, &as_v2), Err(SealError::Tampered));
        // And it is still bound to its row.
        let other_row = stored_context(&legacy(Uuid::from_u128(8)), 1).unwrap();
        assert_eq!(open(&dek, &other_row, &stored), Err(SealError::Tampered));
    }
}
