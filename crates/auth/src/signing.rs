use std::fmt;

use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use zeroize::Zeroizing;

use crate::jws::{self, Algorithm};
use crate::keys::{self, Family, MIN_HS256_SECRET_LEN};
use crate::{AuthError, Claims};

/// A key that mints tokens: for issuers, tools and tests, not for the vault's request path.
pub enum SigningKey {
    /// An HS256 shared secret of at least 32 bytes.
    Hs256(Zeroizing<Vec<u8>>),
    /// An Ed25519 key pair as PKCS#8 (v1 or v2), minting EdDSA tokens.
    Ed25519 {
        /// The PKCS#8 document.
        pkcs8: Zeroizing<Vec<u8>>,
        /// Key id written into each token's header.
        kid: Option<String>,
    },
    /// A P-256 key pair as PKCS#8, minting ES256 tokens.
    Es256 {
        /// The PKCS#8 document.
        pkcs8: Zeroizing<Vec<u8>>,
        /// Key id written into each token's header.
        kid: Option<String>,
    },
}

impl SigningKey {
    /// A fresh Ed25519 key from the system random number generator.
    pub fn generate_ed25519(kid: Option<String>) -> Result<Self, AuthError> {
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| AuthError::Rng)?;
        Ok(Self::Ed25519 {
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
            kid,
        })
    }

    /// A fresh P-256 key from the system random number generator.
    pub fn generate_es256(kid: Option<String>) -> Result<Self, AuthError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| AuthError::Rng)?;
        Ok(Self::Es256 {
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
            kid,
        })
    }

    /// The public key as a SubjectPublicKeyInfo PEM block; `None` for HS256 or a broken PKCS#8.
    pub fn public_key_pem(&self) -> Option<String> {
        let (family, raw) = self.public_key()?;
        Some(keys::to_pem(&keys::spki_der(family, &raw)))
    }

    /// The public key as a JWK (with `alg`, `use` and any `kid`); `None` for HS256 or a broken
    /// PKCS#8.
    pub fn jwk(&self) -> Option<serde_json::Value> {
        let (family, raw) = self.public_key()?;
        keys::to_jwk(family, &raw, self.kid())
    }

    /// Signs `claims` as a compact JWT, exactly as given: no claim is checked or added.
    pub fn mint(&self, claims: &Claims) -> Result<String, AuthError> {
        // A struct of strings and integers always serializes; the error arm is only the API's.
        let payload = serde_json::to_vec(claims).map_err(|_| AuthError::BadClaim("claims"))?;
        match self {
            Self::Hs256(secret) => {
                if secret.len() < MIN_HS256_SECRET_LEN {
                    return Err(AuthError::KeyConfig(format!(
                        "the HS256 secret must be at least {MIN_HS256_SECRET_LEN} bytes"
                    )));
                }
                let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
                jws::encode(Algorithm::Hs256, None, &payload, |input| {
                    Ok(hmac::sign(&key, input).as_ref().to_vec())
                })
            }
            Self::Ed25519 { pkcs8, kid } => {
                let pair = ed25519_pair(pkcs8)?;
                jws::encode(Algorithm::EdDsa, kid.as_deref(), &payload, |input| {
                    Ok(pair.sign(input).as_ref().to_vec())
                })
            }
            Self::Es256 { pkcs8, kid } => {
                let rng = SystemRandom::new();
                let pair = es256_pair(pkcs8, &rng)?;
                // The FIXED algorithm signs as r || s, 64 bytes, which is what JWS wants (RFC 7518
                // section 3.4), not ASN.1 DER.
                jws::encode(Algorithm::Es256, kid.as_deref(), &payload, |input| {
                    pair.sign(&rng, input)
                        .map(|signature| signature.as_ref().to_vec())
                        .map_err(|_| AuthError::Rng)
                })
            }
        }
    }

    fn kid(&self) -> Option<&str> {
        match self {
            Self::Hs256(_) => None,
            Self::Ed25519 { kid, .. } | Self::Es256 { kid, .. } => kid.as_deref(),
        }
    }

    fn public_key(&self) -> Option<(Family, Vec<u8>)> {
        match self {
            Self::Hs256(_) => None,
            Self::Ed25519 { pkcs8, .. } => {
                let pair = ed25519_pair(pkcs8).ok()?;
                Some((Family::Ed25519, pair.public_key().as_ref().to_vec()))
            }
            Self::Es256 { pkcs8, .. } => {
                let pair = es256_pair(pkcs8, &SystemRandom::new()).ok()?;
                Some((Family::P256, pair.public_key().as_ref().to_vec()))
            }
        }
    }
}

fn ed25519_pair(pkcs8: &[u8]) -> Result<Ed25519KeyPair, AuthError> {
    // Also accepts v1 documents, which `openssl genpkey -algorithm ED25519` writes.
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|e| AuthError::KeyConfig(format!("the Ed25519 PKCS#8 key is unusable: {e}")))
}

fn es256_pair(pkcs8: &[u8], rng: &SystemRandom) -> Result<EcdsaKeyPair, AuthError> {
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng)
        .map_err(|e| AuthError::KeyConfig(format!("the P-256 PKCS#8 key is unusable: {e}")))
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("Hs256(<redacted>)"),
            Self::Ed25519 { kid, .. } => f
                .debug_struct("Ed25519")
                .field("kid", kid)
                .finish_non_exhaustive(),
            Self::Es256 { kid, .. } => f
                .debug_struct("Es256")
                .field("kid", kid)
                .finish_non_exhaustive(),
        }
    }
}
