//! Test tokens: HS256 with one shared secret that every test server is configured with.

use auth::{Claims, SigningKey};
use std::{
    fs,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};
use tonic::Request;

/// The shared secret of the test tokens (HS256).
pub const JWT_SECRET: &[u8] = b"end-to-end-tests-shared-secret-0123456789";

/// The subject of [`token`]'s tokens: the actor audit events name.
pub const SUBJECT: &str = "e2e-test";

/// Writes [`JWT_SECRET`] to `dir/jwt-secret`, for `--jwt-hs256-secret-file`.
pub fn write_jwt_secret(dir: &Path) -> PathBuf {
    let path = dir.join("jwt-secret");
    fs::write(&path, JWT_SECRET).expect("write the token secret");
    path
}

/// Claims of [`SUBJECT`] for `workspaces` with `permissions`, valid for an hour, with the
/// issuer and audience the servers expect by default.
pub fn claims(workspaces: &[&str], permissions: &[&str]) -> Claims {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    Claims {
        sub: SUBJECT.into(),
        iss: "credentials-vault".into(),
        aud: "credentials-api".into(),
        exp: now + 3600,
        nbf: Some(now),
        iat: Some(now),
        workspaces: workspaces.iter().map(|w| (*w).to_owned()).collect(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        platform_admin: false,
    }
}

/// A token for `workspaces` with `permissions`, valid for an hour.
pub fn token(workspaces: &[&str], permissions: &[&str]) -> String {
    token_with(&claims(workspaces, permissions))
}

/// A token for `workspaces` with `permissions` and the platform-wide grant (`platform_admin`),
/// valid for an hour: what sweeps and the security log need.
pub fn platform_token(workspaces: &[&str], permissions: &[&str]) -> String {
    token_with(&Claims {
        platform_admin: true,
        ..claims(workspaces, permissions)
    })
}

/// A token with exactly these claims, signed with [`JWT_SECRET`].
pub fn token_with(claims: &Claims) -> String {
    SigningKey::Hs256(zeroize::Zeroizing::new(JWT_SECRET.to_vec()))
        .mint(claims)
        .expect("mint")
}

/// `message` with `authorization: Bearer <token>`.
pub fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}
