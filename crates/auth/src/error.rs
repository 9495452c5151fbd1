/// Why a token was refused, or why key configuration or minting failed.
///
/// No variant carries a token, a secret or key bytes, so `Display` and `Debug` are safe to log.
/// The strings inside are either fixed by this crate or, for [`AuthError::UnsupportedAlgorithm`],
/// a header value cut to 16 characters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// The token is not three base64url parts, or its header or payload is not the JSON expected.
    #[error("malformed token")]
    Malformed,
    /// The token is longer than [`crate::MAX_TOKEN_LEN`] bytes.
    #[error("token longer than {} bytes", crate::MAX_TOKEN_LEN)]
    TooLarge,
    /// The header names an algorithm other than HS256, ES256 or EdDSA (including `none`).
    #[error("unsupported token algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// No configured key fits the token's algorithm and key id.
    #[error("no configured key matches the token's algorithm and key id")]
    UnknownKey,
    /// The signature does not verify under any candidate key.
    #[error("token signature does not verify")]
    BadSignature,
    /// The token's `exp`, plus leeway, is in the past.
    #[error("token has expired")]
    Expired,
    /// The token's `nbf`, minus leeway, is in the future.
    #[error("token is not yet valid")]
    NotYetValid,
    /// The token's `iss` is not the configured issuer.
    #[error("token issuer is not the configured issuer")]
    WrongIssuer,
    /// The token's `aud` does not include the configured audience.
    #[error("token audience does not include this service")]
    WrongAudience,
    /// A required claim is absent (or, for `sub`, empty).
    #[error("token lacks the {0:?} claim")]
    MissingClaim(&'static str),
    /// A claim is present but has the wrong type or an invalid value.
    #[error("token has an invalid {0:?} claim")]
    BadClaim(&'static str),
    /// A secret, PEM, JWKS or PKCS#8 document given to this crate is unusable.
    #[error("authentication key configuration: {0}")]
    KeyConfig(String),
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Rng,
}

/// How many characters of an unsupported `alg` are kept, so an attacker cannot fill logs.
pub(crate) const MAX_ALG_ECHO: usize = 16;

impl AuthError {
    /// A short text safe to send back in an UNAUTHENTICATED reply.
    pub fn client_message(&self) -> &'static str {
        match self {
            Self::Malformed => "the token is malformed",
            Self::TooLarge => "the token is too large",
            Self::UnsupportedAlgorithm(_) => "the token's signing algorithm is not supported",
            Self::UnknownKey => "the token's signing key is not known",
            Self::BadSignature => "the token's signature is invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not yet valid",
            Self::WrongIssuer => "the token was issued by an untrusted issuer",
            Self::WrongAudience => "the token is not meant for this service",
            Self::MissingClaim(_) => "the token lacks a required claim",
            Self::BadClaim(_) => "the token has an invalid claim",
            // Server-side faults: the caller's token may be fine, and our setup is not its business.
            Self::KeyConfig(_) | Self::Rng => "authentication is unavailable",
        }
    }

    /// Builds [`AuthError::UnsupportedAlgorithm`] from an untrusted header value.
    pub(crate) fn unsupported_alg(alg: &str) -> Self {
        Self::UnsupportedAlgorithm(alg.chars().take(MAX_ALG_ECHO).collect())
    }
}
