//! Public verification keys: SPKI/PEM and JWK in both directions, without an ASN.1 crate.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::agreement;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AuthError;
use crate::jws::{self, Algorithm};

/// Shortest HS256 secret accepted: RFC 7518 wants a key at least as long as the hash output.
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// SPKI DER for an Ed25519 key is this fixed prefix followed by the 32-byte key (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// SPKI DER for a P-256 key is this fixed prefix followed by the 65-byte uncompressed point
/// (RFC 5480, named curve prime256v1).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const ED25519_KEY_LEN: usize = 32;
const P256_COORDINATE_LEN: usize = 32;
const P256_POINT_LEN: usize = 1 + 2 * P256_COORDINATE_LEN;
const UNCOMPRESSED_POINT_TAG: u8 = 0x04;

/// The asymmetric key families, each tied to exactly one JWS algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Ed25519,
    P256,
}

impl Family {
    pub(crate) fn algorithm(self) -> Algorithm {
        match self {
            Self::Ed25519 => Algorithm::EdDsa,
            Self::P256 => Algorithm::Es256,
        }
    }
}

/// A verification key, bound to its family so it is never tried for another algorithm.
pub(crate) struct PublicKey {
    family: Family,
    kid: Option<String>,
    key: UnparsedPublicKey<Vec<u8>>,
}

impl PublicKey {
    /// Checks the raw key's shape: Ed25519 32 bytes, P-256 a 65-byte uncompressed point.
    pub(crate) fn new(
        family: Family,
        kid: Option<String>,
        raw: Vec<u8>,
    ) -> Result<Self, AuthError> {
        let key = match family {
            Family::Ed25519 if raw.len() == ED25519_KEY_LEN => {
                UnparsedPublicKey::new(&signature::ED25519, raw)
            }
            Family::P256
                if raw.len() == P256_POINT_LEN && raw.first() == Some(&UNCOMPRESSED_POINT_TAG) =>
            {
                if !is_on_p256(&raw)? {
                    return Err(key_config("a P-256 public key is not a point on the curve"));
                }
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, raw)
            }
            Family::Ed25519 => return Err(key_config("an Ed25519 public key must be 32 bytes")),
            Family::P256 => {
                return Err(key_config(
                    "a P-256 public key must be a 65-byte uncompressed point",
                ));
            }
        };
        Ok(Self { family, kid, key })
    }

    pub(crate) fn family(&self) -> Family {
        self.family
    }

    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify(message, signature).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("alg", &self.family.algorithm().name())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// ECDSA verification only checks the point when a token arrives, so a corrupted key would show up
/// as every token failing; an ECDH agreement validates the point now, with ring's own checks.
fn is_on_p256(point: &[u8]) -> Result<bool, AuthError> {
    let rng = ring::rand::SystemRandom::new();
    let ephemeral = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| AuthError::Rng)?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, point);
    Ok(agreement::agree_ephemeral(ephemeral, &peer, |_| ()).is_ok())
}

fn key_config(message: &str) -> AuthError {
    AuthError::KeyConfig(message.to_owned())
}

/// Recognises an Ed25519 or P-256 SubjectPublicKeyInfo by its fixed DER prefix.
fn from_spki_der(der: &[u8]) -> Result<PublicKey, AuthError> {
    if let Some(raw) = der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        PublicKey::new(Family::Ed25519, None, raw.to_vec())
    } else if let Some(raw) = der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        PublicKey::new(Family::P256, None, raw.to_vec())
    } else {
        Err(key_config(
            "a PUBLIC KEY block is neither an Ed25519 nor a P-256 SubjectPublicKeyInfo",
        ))
    }
}

/// The SubjectPublicKeyInfo DER of a raw public key.
pub(crate) fn spki_der(family: Family, raw: &[u8]) -> Vec<u8> {
    let prefix: &[u8] = match family {
        Family::Ed25519 => &ED25519_SPKI_PREFIX,
        Family::P256 => &P256_SPKI_PREFIX,
    };
    [prefix, raw].concat()
}

const PEM_BEGIN: &str = "-----BEGIN ";
const PEM_END: &str = "-----END ";
const PEM_DASHES: &str = "-----";
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// Every `PUBLIC KEY` block of a PEM text; text outside blocks is ignored (RFC 7468).
pub(crate) fn parse_pem(pem: &str) -> Result<Vec<PublicKey>, AuthError> {
    let mut keys = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if let Some(label) = pem_label(line, PEM_BEGIN) {
            if body.is_some() {
                return Err(key_config("a PEM block starts inside another"));
            }
            // Refusing rather than skipping other labels catches a private key or certificate
            // pasted where only public keys belong.
            if label != PUBLIC_KEY_LABEL {
                return Err(key_config(
                    "only PEM blocks labelled PUBLIC KEY are accepted",
                ));
            }
            body = Some(String::new());
        } else if let Some(label) = pem_label(line, PEM_END) {
            let Some(text) = body.take() else {
                return Err(key_config("a PEM END line has no matching BEGIN"));
            };
            if label != PUBLIC_KEY_LABEL {
                return Err(key_config(
                    "a PEM block's END label does not match its BEGIN",
                ));
            }
            let der = STANDARD
                .decode(text)
                .map_err(|_| key_config("a PUBLIC KEY block is not valid base64"))?;
            keys.push(from_spki_der(&der)?);
        } else if let Some(text) = body.as_mut() {
            text.push_str(line);
        }
    }
    if body.is_some() {
        return Err(key_config("a PEM block has no END line"));
    }
    if keys.is_empty() {
        return Err(key_config("no PUBLIC KEY block found"));
    }
    Ok(keys)
}

fn pem_label<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.strip_prefix(marker)?.strip_suffix(PEM_DASHES)
}

/// A SubjectPublicKeyInfo DER as a `PUBLIC KEY` PEM block, 64 characters a line.
pub(crate) fn to_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("{PEM_BEGIN}{PUBLIC_KEY_LABEL}{PEM_DASHES}\n");
    // Base64 output is ASCII, so byte chunks are whole characters.
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str(&format!("{PEM_END}{PUBLIC_KEY_LABEL}{PEM_DASHES}\n"));
    pem
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    d: Option<Value>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    alg: Option<String>,
}

/// The Ed25519 and P-256 signing keys of a JWK Set; other keys are skipped, none usable is an
/// error.
pub(crate) fn parse_jwks(json: &str) -> Result<Vec<PublicKey>, AuthError> {
    let jwks: Jwks = serde_json::from_str(json)
        .map_err(|_| key_config("the JWKS is not a JSON object with a \"keys\" array"))?;
    let mut keys = Vec::new();
    for (index, value) in jwks.keys.into_iter().enumerate() {
        let jwk: Jwk = serde_json::from_value(value)
            .map_err(|_| AuthError::KeyConfig(format!("JWKS key {index} is malformed")))?;
        keys.extend(jwk_key(index, jwk)?);
    }
    if keys.is_empty() {
        return Err(key_config("the JWKS holds no Ed25519 or P-256 signing key"));
    }
    Ok(keys)
}

/// One JWK: `Ok(None)` for a key this crate does not use, `Err` for a usable key that is broken.
fn jwk_key(index: usize, jwk: Jwk) -> Result<Option<PublicKey>, AuthError> {
    let invalid = |what: &str| AuthError::KeyConfig(format!("JWKS key {index} {what}"));
    let family = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("OKP", Some("Ed25519")) => Family::Ed25519,
        ("EC", Some("P-256")) => Family::P256,
        _ => return Ok(None),
    };
    if jwk.use_.as_deref().is_some_and(|u| u != "sig")
        || jwk
            .alg
            .as_deref()
            .is_some_and(|a| a != family.algorithm().name())
    {
        return Ok(None);
    }
    // A private key here means it has been published; refusing makes someone notice.
    if jwk.d.is_some() {
        return Err(invalid(
            "holds a private key (\"d\"); publish public keys only",
        ));
    }
    let coordinate = |c: Option<String>, name: &str, len: usize| {
        let c = c.ok_or_else(|| invalid(&format!("lacks \"{name}\"")))?;
        match jws::decode(&c) {
            Ok(bytes) if bytes.len() == len => Ok(bytes),
            _ => Err(invalid(&format!(
                "\"{name}\" is not {len} bytes of base64url"
            ))),
        }
    };
    let raw = match family {
        Family::Ed25519 => coordinate(jwk.x, "x", ED25519_KEY_LEN)?,
        Family::P256 => [
            vec![UNCOMPRESSED_POINT_TAG],
            coordinate(jwk.x, "x", P256_COORDINATE_LEN)?,
            coordinate(jwk.y, "y", P256_COORDINATE_LEN)?,
        ]
        .concat(),
    };
    PublicKey::new(family, jwk.kid, raw).map(Some)
}

/// The public JWK of a raw public key.
pub(crate) fn to_jwk(family: Family, raw: &[u8], kid: Option<&str>) -> Option<Value> {
    let mut jwk = match family {
        Family::Ed25519 => json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": jws::encode_part(raw),
        }),
        Family::P256 => {
            let xy = raw.strip_prefix(&[UNCOMPRESSED_POINT_TAG])?;
            let (x, y) = xy.split_at_checked(P256_COORDINATE_LEN)?;
            json!({
                "kty": "EC",
                "crv": "P-256",
                "x": jws::encode_part(x),
                "y": jws::encode_part(y),
            })
        }
    };
    let object = jwk.as_object_mut()?;
    object.insert("alg".into(), family.algorithm().name().into());
    object.insert("use".into(), "sig".into());
    if let Some(kid) = kid {
        object.insert("kid".into(), kid.into());
    }
    Some(jwk)
}
