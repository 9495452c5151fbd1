//! The claims set: what is minted, and how a received one becomes a [`Principal`].

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::Window;
use crate::jws;
use crate::{AuthError, Permission, Principal, VerifierConfig};

/// Longest workspace name accepted in the `workspaces` claim, in bytes.
const MAX_WORKSPACE_LEN: usize = 64;

/// Longest subject accepted, in bytes.
const MAX_SUBJECT_LEN: usize = 256;

/// The claims of a vault token, as minted by [`crate::SigningKey::mint`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// Subject: who the caller is.
    pub sub: String,
    /// Issuer, compared with [`VerifierConfig::issuer`].
    pub iss: String,
    /// Audience, compared with [`VerifierConfig::audience`]; verification also accepts an array.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Workspaces the subject may act in.
    pub workspaces: Vec<String>,
    /// Permission names; see [`Permission::as_str`].
    pub permissions: Vec<String>,
    /// The platform-wide grant: with `admin`, administers every workspace (sweeps, the
    /// security log, any workspace's key) rather than only those in `workspaces`. Absent
    /// means false; it grants nothing without `admin`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub platform_admin: bool,
}

/// A claims set as received. Every claim stays a raw JSON value so that a wrong type is reported
/// against the claim's name rather than as an anonymous parse error; duplicate members still fail.
#[derive(Deserialize)]
struct Received {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    iss: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    workspaces: Option<Value>,
    #[serde(default)]
    permissions: Option<Value>,
    #[serde(default)]
    platform_admin: Option<Value>,
}

/// Checks a payload whose signature has been verified and turns it into a principal, with the
/// window in which the token stays valid.
pub(crate) fn validate(
    payload: &[u8],
    config: &VerifierConfig,
    now: SystemTime,
) -> Result<(Principal, Window), AuthError> {
    let claims: Received = jws::json_object(payload)?;

    if required_string(claims.iss, "iss")? != config.issuer {
        return Err(AuthError::WrongIssuer);
    }
    if !audience_includes(required(claims.aud, "aud")?, &config.audience)? {
        return Err(AuthError::WrongAudience);
    }

    // Before the epoch can only be a broken clock; treating it as the epoch fails closed on `exp`.
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let exp = numeric_date(required(claims.exp, "exp")?, "exp")?;
    if now > exp.saturating_add(config.leeway) {
        return Err(AuthError::Expired);
    }
    let nbf = claims.nbf.map(|nbf| numeric_date(nbf, "nbf")).transpose()?;
    if let Some(nbf) = nbf
        && now.saturating_add(config.leeway) < nbf
    {
        return Err(AuthError::NotYetValid);
    }
    let window = Window {
        from: nbf.unwrap_or_default().saturating_sub(config.leeway),
        until: exp.saturating_add(config.leeway),
    };
    // Not used for any decision, but a malformed one means a broken issuer.
    if let Some(iat) = claims.iat {
        numeric_date(iat, "iat")?;
    }

    let subject = required_string(claims.sub, "sub")?;
    if subject.is_empty() {
        return Err(AuthError::MissingClaim("sub"));
    }
    // The subject is every audit event's actor: a shape the audit log's CHECK accepts.
    if subject.len() > MAX_SUBJECT_LEN || subject.chars().any(char::is_control) {
        return Err(AuthError::BadClaim("sub"));
    }
    // Only an explicit `true` grants it: a string "true" is a broken issuer, not a grant.
    let platform_admin = match claims.platform_admin {
        None => false,
        Some(Value::Bool(granted)) => granted,
        Some(_) => return Err(AuthError::BadClaim("platform_admin")),
    };
    let permissions = strings(required(claims.permissions, "permissions")?, "permissions")?
        .iter()
        // Names this version does not know are someone else's, or a newer version's: not ours to
        // refuse, and they grant nothing here.
        .filter_map(|name| Permission::parse(name))
        .collect::<BTreeSet<_>>();
    let mut workspaces = strings(required(claims.workspaces, "workspaces")?, "workspaces")?;
    if !workspaces.iter().all(|w| is_workspace_name(w)) {
        return Err(AuthError::BadClaim("workspaces"));
    }
    // "The token names exactly one workspace" must not be defeated by a repeated name.
    let mut seen = BTreeSet::new();
    workspaces.retain(|w| seen.insert(w.clone()));

    let principal = Principal {
        subject,
        workspaces,
        permissions,
        platform_admin,
    };
    Ok((principal, window))
}

fn required(value: Option<Value>, claim: &'static str) -> Result<Value, AuthError> {
    // serde reads a JSON `null` as `None`, so an explicit null counts as absent.
    value.ok_or(AuthError::MissingClaim(claim))
}

fn required_string(value: Option<Value>, claim: &'static str) -> Result<String, AuthError> {
    match required(value, claim)? {
        Value::String(s) => Ok(s),
        _ => Err(AuthError::BadClaim(claim)),
    }
}

fn audience_includes(aud: Value, audience: &str) -> Result<bool, AuthError> {
    match aud {
        Value::String(aud) => Ok(aud == audience),
        aud => Ok(strings(aud, "aud")?.iter().any(|a| a == audience)),
    }
}

/// A JSON array of strings; anything else is a bad `claim`.
fn strings(value: Value, claim: &'static str) -> Result<Vec<String>, AuthError> {
    let Value::Array(items) = value else {
        return Err(AuthError::BadClaim(claim));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            _ => Err(AuthError::BadClaim(claim)),
        })
        .collect()
}

/// A NumericDate as whole seconds. Fractions are refused rather than rounded: our issuer never
/// writes them, and refusing is the choice that cannot stretch a validity window.
fn numeric_date(value: Value, claim: &'static str) -> Result<Duration, AuthError> {
    value
        .as_u64()
        .map(Duration::from_secs)
        .ok_or(AuthError::BadClaim(claim))
}

/// 1-64 bytes of `[A-Za-z0-9_.-]`: safe in logs, paths and metric labels.
fn is_workspace_name(name: &str) -> bool {
    (1..=MAX_WORKSPACE_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_names() {
        for good in ["a", "team-a", "Team_A.2", &"x".repeat(64)] {
            assert!(is_workspace_name(good), "{good:?}");
        }
        let too_long = "x".repeat(65);
        for bad in ["", "a/b", "a b", "*", "é", "a\n", &too_long] {
            assert!(!is_workspace_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn minted_claims_omit_absent_optional_dates() {
        let claims = Claims {
            sub: "s".into(),
            iss: "i".into(),
            aud: "a".into(),
            exp: 10,
            nbf: None,
            iat: Some(5),
            workspaces: vec![],
            permissions: vec![],
            platform_admin: false,
        };
        let json = serde_json::to_value(&claims).unwrap();
        assert!(json.get("nbf").is_none());
        assert!(json.get("platform_admin").is_none());
        assert_eq!(json["iat"], 5);
        let back: Claims = serde_json::from_value(json).unwrap();
        assert_eq!(back, claims);
    }
}
