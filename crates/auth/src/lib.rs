//! Bearer-token authentication for the vault.
//!
//! Every gRPC call carries a JWT. A [`Verifier`] checks its signature with ring (HS256 with a
//! shared secret, ES256 or EdDSA with public keys from PEM or a JWKS), then its issuer, audience
//! and validity window, and yields the caller as a [`Principal`]: subject, workspaces and
//! [`Permission`]s. Each algorithm is checked only against keys of its own family, so a public key
//! can never be used as an HMAC secret. A token that verified is remembered (by the hash of its
//! bytes, until its `exp`, at most [`DEFAULT_TOKEN_CACHE_CAPACITY`] of them) so that a long-lived
//! token is checked once; see the `cache` module for why that is safe. [`SigningKey`] mints tokens for issuers, tools and tests.
//!
//! No [`AuthError`] carries a token or key material; [`AuthError::client_message`] is the text
//! to send back to a refused caller.

#![forbid(unsafe_code)]

mod cache;
mod claims;
mod error;
mod jws;
mod keys;
mod principal;
mod signing;
mod verifier;

#[cfg(test)]
mod tests;

pub use cache::{DEFAULT_TOKEN_CACHE_CAPACITY, TokenCacheStats};
pub use claims::Claims;
pub use error::AuthError;
pub use jws::MAX_TOKEN_LEN;
pub use keys::MIN_HS256_SECRET_LEN;
pub use principal::{Permission, Principal};
pub use signing::SigningKey;
pub use verifier::{Verifier, VerifierConfig};
