use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

use crate::cache::{DEFAULT_TOKEN_CACHE_CAPACITY, TokenCache, TokenCacheStats};
use crate::jws::{self, Algorithm, Compact, MAX_TOKEN_LEN};
use crate::keys::{self, MIN_HS256_SECRET_LEN, PublicKey};
use crate::{AuthError, Principal, claims};

/// What a token must say to be accepted, beyond a good signature.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The exact `iss` required.
    pub issuer: String,
    /// The value `aud` must be, or contain when it is an array.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
}

/// Verifies bearer tokens against configured keys and turns them into [`Principal`]s,
/// remembering the tokens that verified until they expire (see [`Verifier::verify`]).
pub struct Verifier {
    config: VerifierConfig,
    hs256: Option<hmac::Key>,
    public_keys: Vec<PublicKey>,
    cache: TokenCache,
}

impl Verifier {
    /// A verifier with no keys yet; every token fails with [`AuthError::UnknownKey`] until some
    /// are added.
    pub fn new(config: VerifierConfig) -> Self {
        Self {
            config,
            hs256: None,
            public_keys: Vec::new(),
            cache: TokenCache::new(DEFAULT_TOKEN_CACHE_CAPACITY),
        }
    }

    /// Caps the verified-token cache at `capacity` tokens (default
    /// [`DEFAULT_TOKEN_CACHE_CAPACITY`]); `0` turns it off. Empties it.
    pub fn with_token_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = TokenCache::new(capacity);
        self
    }

    /// Sets the HS256 shared secret (replacing any earlier one); refuses one under 32 bytes.
    pub fn with_hs256_secret(mut self, secret: &[u8]) -> Result<Self, AuthError> {
        if secret.len() < MIN_HS256_SECRET_LEN {
            return Err(AuthError::KeyConfig(format!(
                "the HS256 secret must be at least {MIN_HS256_SECRET_LEN} bytes"
            )));
        }
        self.hs256 = Some(hmac::Key::new(hmac::HMAC_SHA256, secret));
        self.cache.clear();
        Ok(self)
    }

    /// Adds the Ed25519 and P-256 keys of one or more `PUBLIC KEY` PEM blocks; they have no kid.
    pub fn with_public_keys_pem(mut self, pem: &str) -> Result<Self, AuthError> {
        self.public_keys.extend(keys::parse_pem(pem)?);
        self.cache.clear();
        Ok(self)
    }

    /// Adds the Ed25519 and P-256 signing keys of a JWK Set, skipping keys of other types.
    pub fn with_jwks(mut self, json: &str) -> Result<Self, AuthError> {
        self.public_keys.extend(keys::parse_jwks(json)?);
        self.cache.clear();
        Ok(self)
    }

    /// How many keys are configured, the HS256 secret included.
    pub fn key_count(&self) -> usize {
        usize::from(self.hs256.is_some()) + self.public_keys.len()
    }

    /// Hits, misses and size of the verified-token cache.
    pub fn token_cache_stats(&self) -> TokenCacheStats {
        self.cache.stats()
    }

    /// Checks a compact JWT's signature and claims at time `now`.
    ///
    /// A token that verified before (the very same bytes, under the same keys) is answered from
    /// memory: its validity window is checked again at `now`, the signature and claims are not.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            // Refused unhashed: hashing is the one cost an oversized token could impose.
            return Err(AuthError::TooLarge);
        }
        // Before the epoch can only be a broken clock; as in the claims check, it fails closed.
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let hash = TokenCache::hash(token);
        if let Some(answer) = self.cache.get(&hash, since_epoch) {
            return answer;
        }
        let parsed = jws::parse(token)?;
        self.check_signature(&parsed)?;
        let (principal, window) = claims::validate(&parsed.payload, &self.config, now)?;
        self.cache.insert(hash, &principal, window, since_epoch);
        Ok(principal)
    }

    fn check_signature(&self, token: &Compact<'_>) -> Result<(), AuthError> {
        if token.alg == Algorithm::Hs256 {
            // Only the shared secret: never a public key's bytes, which anyone can HMAC with.
            let key = self.hs256.as_ref().ok_or(AuthError::UnknownKey)?;
            // ring compares tags in constant time.
            return hmac::verify(key, token.signing_input, &token.signature)
                .map_err(|_| AuthError::BadSignature);
        }
        let mut candidates = self
            .public_keys
            .iter()
            .filter(|key| key.family().algorithm() == token.alg)
            .filter(|key| kid_matches(key.kid(), token.kid.as_deref()))
            .peekable();
        if candidates.peek().is_none() {
            return Err(AuthError::UnknownKey);
        }
        if candidates.any(|key| key.verifies(token.signing_input, &token.signature)) {
            Ok(())
        } else {
            Err(AuthError::BadSignature)
        }
    }
}

/// A key without a kid stands for any kid; a token without a kid may be signed by any key.
fn kid_matches(key: Option<&str>, token: Option<&str>) -> bool {
    match (key, token) {
        (Some(key), Some(token)) => key == token,
        _ => true,
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .field("hs256_secret", &self.hs256.as_ref().map(|_| "<redacted>"))
            .field("public_keys", &self.public_keys)
            .field("cached_tokens", &self.cache.stats().entries)
            .finish()
    }
}
