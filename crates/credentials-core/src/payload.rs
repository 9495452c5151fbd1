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
//! | 3 | + type id, value generation | label, then [`EncryptionContext::canonical_bytes`] | written by this build |
//!
//! The label is `vault.credentials.v1.payload` in all. Format 3 also binds the row's type (a
//! value relabelled as another type, e.g. to become the default an agent asks for, no longer
//! opens) and its value generation (a counter the row increments on every value write, so an
//! older ciphertext and wrapped key restored onto the same row no longer open). A row is opened
//! by the format it records, never by trying another; an unknown format is refused before the
//! kms is asked, and so is an older format on a row whose generation says it was written in
//! format 3 or later (a downgrade).

use encryption_context::EncryptionContext;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;
use zeroize::Zeroizing;

/// The payload format this build writes.
pub const PAYLOAD_FORMAT: i16 = PayloadFormat::CURRENT.as_i16();
const AAD_LABEL: &[u8] = b"vault.credentials.v1.payload";

/// The payload formats this build opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// The context as JSON in the associated data: the first format, opened but never written.
    V1,
    /// The context's canonical encoding in the associated data, as in the kms's wrapped keys;
    /// opened but no longer written.
    V2,
    /// As V2, with the type id and the value generation in the context.
    V3,
}

impl PayloadFormat {
    /// The format new values are sealed in.
    pub const CURRENT: Self = Self::V3;

    /// The format a stored row records; an unknown number is refused, never guessed.
    pub fn from_stored(format: i16) -> Result<Self, SealError> {
        match format {
            1 => Ok(Self::V1),
            2 => Ok(Self::V2),
            3 => Ok(Self::V3),
            other => Err(SealError::UnknownFormat(other)),
        }
    }

    /// The number stored in the row and in the context.
    pub const fn as_i16(self) -> i16 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }

    fn aad(self, context: &EncryptionContext) -> Vec<u8> {
        let mut out = AAD_LABEL.to_vec();
        match self {
            // A BTreeMap serializes in key order, so this encoding was canonical too.
            Self::V1 => serde_json::to_writer(&mut out, context.entries())
                .expect("a string map always serializes"),
            Self::V2 | Self::V3 => out.extend_from_slice(&context.canonical_bytes()),
        }
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
        PayloadFormat::V3 => ctx
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
        PayloadFormat::V3 => row.value_generation >= 1,
    };
    if !consistent {
        return Err(SealError::FormatMismatch {
            format: payload_format,
            generation: row.value_generation,
        });
    }
    Ok(context(row, format))
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
    /// The value's generation (part of the context from format 3 on; 0 before).
    pub value_generation: i64,
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

/// Seals `plaintext` in [`PAYLOAD_FORMAT`] for a context from [`encryption_context`]; returns
/// the ciphertext (with tag) and the nonce.
pub fn seal(
    data_key: &[u8],
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    seal_in(PayloadFormat::CURRENT, data_key, context, plaintext)
}

/// Seals in a given format, with a context from [`stored_context`] for that format. The
/// service writes only [`PayloadFormat::CURRENT`]; an older format is for rebuilding rows as an
/// older build wrote them (tests of the upgrade path).
pub fn seal_in(
    format: PayloadFormat,
    data_key: &[u8],
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
        Aad::from(format.aad(context)),
        &mut buf,
    )
    .map_err(|_| SealError::BadKey)?;
    Ok((buf, nonce.to_vec()))
}

/// Opens a sealed value, in the format its envelope records, for a context from
/// [`stored_context`].
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
    let mut buf = Zeroizing::new(envelope.ciphertext.clone());
    let len = key
        .open_in_place(nonce, Aad::from(format.aad(context)), &mut buf)
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
        future.payload_format = 4;
        assert_eq!(open(&dek, &ctx, &future), Err(SealError::UnknownFormat(4)));

        // The format is bound too: relabelling the row as format 1 or 2, with or without the
        // matching context, does not open it.
        for format in [1, 2] {
            let old_ctx = stored_context(&row("ws-1", id, 0), format).unwrap();
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
        assert_eq!(PAYLOAD_FORMAT, 3);
        let id = Uuid::from_u128(7);
        let ctx = encryption_context(&row("ws-1", id, 1));
        assert_eq!(
            ctx,
            stored_context(&row("ws-1", id, 1), PAYLOAD_FORMAT).unwrap()
        );
        assert_eq!(ctx.get("payload_format"), Some("3"));
        assert_eq!(ctx.get("type_id"), Some("openai"));
        assert_eq!(ctx.get("value_generation"), Some("1"));
        assert_eq!(ctx.len(), 5);
        // Formats 1 and 2 keep the context their rows were written with.
        let v2 = stored_context(&row("ws-1", id, 0), 2).unwrap();
        assert_eq!(v2.len(), 3);
        assert_eq!(v2.get("type_id"), None);
        let mut expected = AAD_LABEL.to_vec();
        expected.extend_from_slice(&ctx.canonical_bytes());
        assert_eq!(PayloadFormat::CURRENT.aad(&ctx), expected);
    }

    #[test]
    fn unknown_formats_are_refused_before_anything_else() {
        for format in [0, 4, -1, i16::MAX] {
            assert_eq!(
                stored_context(&row("ws-1", Uuid::from_u128(7), 1), format),
                Err(SealError::UnknownFormat(format))
            );
            assert_eq!(
                PayloadFormat::from_stored(format),
                Err(SealError::UnknownFormat(format))
            );
        }
        for format in [PayloadFormat::V1, PayloadFormat::V2, PayloadFormat::V3] {
            assert_eq!(PayloadFormat::from_stored(format.as_i16()), Ok(format));
        }
    }

    /// A row written in format 3 whose format column is set back to 1 or 2 (which bind less),
    /// or a format-3 row claiming generation 0, is refused before the kms is asked.
    #[test]
    fn format_and_generation_must_agree() {
        let id = Uuid::from_u128(7);
        for (format, generation) in [(1, 1), (2, 1), (2, 9), (3, 0), (3, -1), (1, -1)] {
            assert_eq!(
                stored_context(&row("ws-1", id, generation), format),
                Err(SealError::FormatMismatch { format, generation })
            );
        }
        for (format, generation) in [(1, 0), (2, 0), (3, 1), (3, i64::MAX)] {
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
