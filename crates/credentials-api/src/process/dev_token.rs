//! `credentials-api dev-token`: mints a development token from the shared HS256 secret.

use super::config::DevTokenArgs;
use std::time::{SystemTime, UNIX_EPOCH};

/// Prints a development token for the given claims on stdout.
pub fn dev_token(args: DevTokenArgs) -> Result<(), String> {
    let secret = zeroize::Zeroizing::new(
        std::fs::read(&args.hs256_secret_file)
            .map_err(|e| format!("cannot read {}: {e}", args.hs256_secret_file.display()))?,
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    for p in &args.permissions {
        if auth::Permission::parse(p).is_none() {
            return Err(format!(
                "unknown permission {p:?}: use read, write, access, admin"
            ));
        }
    }
    let claims = auth::Claims {
        sub: args.subject,
        iss: args.issuer,
        aud: args.audience,
        exp: now + args.ttl.as_secs(),
        nbf: Some(now),
        iat: Some(now),
        workspaces: args.workspaces,
        permissions: args.permissions,
        platform_admin: args.platform_admin,
    };
    let key = auth::SigningKey::Hs256(zeroize::Zeroizing::new(secret.trim_ascii_end().to_vec()));
    let token = key.mint(&claims).map_err(|e| e.to_string())?;
    eprintln!(
        "credentials-api: a DEVELOPMENT token (HS256, shared secret) for {:?} with {:?}, valid {}",
        claims.workspaces,
        claims.permissions,
        humantime::format_duration(std::time::Duration::from_secs(claims.exp - now))
    );
    println!("{token}");
    Ok(())
}
