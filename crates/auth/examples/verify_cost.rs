//! Verifies one HS256 token N times, with the verified-token cache on or off, for instruction
//! counts under `valgrind --tool=callgrind` (see docs/performance.md):
//! `verify_cost <N> <cache|nocache>`.

use std::time::{Duration, SystemTime};

use auth::{Claims, SigningKey, Verifier, VerifierConfig};
use zeroize::Zeroizing;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let cache = args.next().as_deref() != Some("nocache");
    let secret = b"an-hs256-secret-of-at-least-32-bytes".to_vec();
    let now = SystemTime::now();
    let epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let claims = Claims {
        sub: "svc-agent".into(),
        iss: "https://issuer.example".into(),
        aud: "vault".into(),
        exp: epoch + 3600,
        nbf: Some(epoch - 10),
        iat: Some(epoch - 10),
        workspaces: vec!["team-a".into()],
        permissions: vec!["read".into(), "access".into()],
        platform_admin: false,
    };
    let token = SigningKey::Hs256(Zeroizing::new(secret.clone()))
        .mint(&claims)
        .expect("an HS256 token mints");
    let verifier = Verifier::new(VerifierConfig {
        issuer: claims.iss.clone(),
        audience: claims.aud.clone(),
        leeway: Duration::from_secs(30),
    })
    .with_hs256_secret(&secret)
    .expect("the secret is long enough")
    .with_token_cache_capacity(if cache { 10_000 } else { 0 });
    for _ in 0..n {
        std::hint::black_box(
            verifier
                .verify(std::hint::black_box(&token), now)
                .expect("the token verifies"),
        );
    }
    println!(
        "{n} verifications, cache {}",
        if cache { "on" } else { "off" }
    );
}
