//! End-to-end tests: tokens minted or hand-crafted, then verified.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::hmac;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::{
    AuthError, Claims, MAX_TOKEN_LEN, Permission, Principal, SigningKey, Verifier, VerifierConfig,
};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "vault";
const NOW: u64 = 1_700_000_000;
const SECRET: &[u8] = b"hs256-secret-MARKER-0123456789abcdef";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn config(leeway_secs: u64) -> VerifierConfig {
    VerifierConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway: Duration::from_secs(leeway_secs),
    }
}

fn claims() -> Claims {
    Claims {
        sub: "svc-agent".into(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        exp: NOW + 300,
        nbf: Some(NOW - 10),
        iat: Some(NOW - 10),
        workspaces: vec!["team-a".into(), "team.b".into()],
        permissions: vec!["read".into(), "access".into()],
        platform_admin: false,
    }
}

fn expected_principal() -> Principal {
    Principal {
        subject: "svc-agent".into(),
        workspaces: vec!["team-a".into(), "team.b".into()],
        permissions: [Permission::Read, Permission::Access].into(),
        platform_admin: false,
    }
}

fn hs_key() -> SigningKey {
    SigningKey::Hs256(Zeroizing::new(SECRET.to_vec()))
}

fn hs_verifier(leeway_secs: u64) -> Verifier {
    Verifier::new(config(leeway_secs))
        .with_hs256_secret(SECRET)
        .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and payload text, HMAC-signed with `secret`.
fn hs256_raw(header: &str, payload: &str, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// The default claims as JSON, changed by `edit`.
fn payload(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut value = serde_json::to_value(claims()).unwrap();
    edit(value.as_object_mut().unwrap());
    value.to_string()
}

/// An HS256 token, properly signed, over the default claims changed by `edit`.
fn hs256_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    hs256_raw(r#"{"alg":"HS256","typ":"JWT"}"#, &payload(edit), SECRET)
}

fn verify_hs(token: &str) -> Result<Principal, AuthError> {
    hs_verifier(0).verify(token, now())
}

fn set(key: &str, value: Value) -> impl FnOnce(&mut Map<String, Value>) {
    let key = key.to_owned();
    move |claims| {
        claims.insert(key, value);
    }
}

fn remove(key: &str) -> impl FnOnce(&mut Map<String, Value>) {
    let key = key.to_owned();
    move |claims| {
        claims.remove(&key);
    }
}

fn part(token: &str, index: usize) -> &str {
    token.split('.').nth(index).unwrap()
}

fn with_part(token: &str, index: usize, replacement: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = replacement;
    parts.join(".")
}

#[test]
fn hs256_round_trip() {
    let token = hs_key().mint(&claims()).unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part(&token, 0)).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
    assert_eq!(verify_hs(&token), Ok(expected_principal()));
    // The same token under another secret is someone else's.
    let other = Verifier::new(config(0))
        .with_hs256_secret(&[7; 32])
        .unwrap();
    assert_eq!(other.verify(&token, now()), Err(AuthError::BadSignature));
}

#[test]
fn es256_round_trip_via_pem_and_jwks() {
    let key = SigningKey::generate_es256(Some("ec-1".into())).unwrap();
    let token = key.mint(&claims()).unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part(&token, 0)).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "ES256", "typ": "JWT", "kid": "ec-1"}));
    // JWS wants the fixed r || s form, not ASN.1 DER.
    assert_eq!(URL_SAFE_NO_PAD.decode(part(&token, 2)).unwrap().len(), 64);

    let pem = key.public_key_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
    // A PEM key has no kid, so it stands for the token's "ec-1".
    let by_pem = Verifier::new(config(0)).with_public_keys_pem(&pem).unwrap();
    assert_eq!(by_pem.verify(&token, now()), Ok(expected_principal()));

    let jwk = key.jwk().unwrap();
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["kid"], "ec-1");
    assert!(jwk.get("d").is_none());
    let by_jwks = Verifier::new(config(0))
        .with_jwks(&json!({ "keys": [jwk] }).to_string())
        .unwrap();
    assert_eq!(by_jwks.verify(&token, now()), Ok(expected_principal()));
}

#[test]
fn eddsa_round_trip_via_pem_and_jwks() {
    let key = SigningKey::generate_ed25519(Some("ed-1".into())).unwrap();
    let token = key.mint(&claims()).unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part(&token, 0)).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "EdDSA", "typ": "JWT", "kid": "ed-1"}));

    let by_pem = Verifier::new(config(0))
        .with_public_keys_pem(&key.public_key_pem().unwrap())
        .unwrap();
    assert_eq!(by_pem.verify(&token, now()), Ok(expected_principal()));

    let jwk = key.jwk().unwrap();
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert!(jwk.get("d").is_none());
    let by_jwks = Verifier::new(config(0))
        .with_jwks(&json!({ "keys": [jwk] }).to_string())
        .unwrap();
    assert_eq!(by_jwks.verify(&token, now()), Ok(expected_principal()));
}

#[test]
fn hs256_signing_key_has_no_public_form() {
    assert_eq!(hs_key().public_key_pem(), None);
    assert_eq!(hs_key().jwk(), None);
    let short = SigningKey::Hs256(Zeroizing::new(vec![1; 31]));
    assert!(matches!(
        short.mint(&claims()),
        Err(AuthError::KeyConfig(_))
    ));
}

#[test]
fn kid_selects_among_several_keys() {
    let a = SigningKey::generate_ed25519(Some("a".into())).unwrap();
    let b = SigningKey::generate_ed25519(Some("b".into())).unwrap();
    let c = SigningKey::generate_es256(Some("c".into())).unwrap();
    let jwks = json!({ "keys": [a.jwk().unwrap(), b.jwk().unwrap(), c.jwk().unwrap()] });
    let verifier = Verifier::new(config(0))
        .with_jwks(&jwks.to_string())
        .unwrap();
    assert_eq!(verifier.key_count(), 3);
    for key in [&a, &b, &c] {
        assert_eq!(
            verifier.verify(&key.mint(&claims()).unwrap(), now()),
            Ok(expected_principal())
        );
    }

    let pkcs8 = |key: &SigningKey| match key {
        SigningKey::Ed25519 { pkcs8, .. } | SigningKey::Es256 { pkcs8, .. } => pkcs8.clone(),
        SigningKey::Hs256(_) => unreachable!(),
    };
    // Signed by a, labelled b: only b is tried, and it does not verify.
    let a_as_b = SigningKey::Ed25519 {
        pkcs8: pkcs8(&a),
        kid: Some("b".into()),
    };
    assert_eq!(
        verifier.verify(&a_as_b.mint(&claims()).unwrap(), now()),
        Err(AuthError::BadSignature)
    );
    // A kid nobody has.
    let a_as_z = SigningKey::Ed25519 {
        pkcs8: pkcs8(&a),
        kid: Some("z".into()),
    };
    assert_eq!(
        verifier.verify(&a_as_z.mint(&claims()).unwrap(), now()),
        Err(AuthError::UnknownKey)
    );
    // No kid: every key of the family is a candidate.
    let b_bare = SigningKey::Ed25519 {
        pkcs8: pkcs8(&b),
        kid: None,
    };
    assert_eq!(
        verifier.verify(&b_bare.mint(&claims()).unwrap(), now()),
        Ok(expected_principal())
    );
    // The kid "c" exists, but as a P-256 key: it is never tried for EdDSA.
    let a_as_c = SigningKey::Ed25519 {
        pkcs8: pkcs8(&a),
        kid: Some("c".into()),
    };
    assert_eq!(
        verifier.verify(&a_as_c.mint(&claims()).unwrap(), now()),
        Err(AuthError::UnknownKey)
    );
}

#[test]
fn algorithm_must_match_the_key_family() {
    let ed = SigningKey::generate_ed25519(None).unwrap();
    let ec = SigningKey::generate_es256(None).unwrap();
    let ed_only = Verifier::new(config(0))
        .with_public_keys_pem(&ed.public_key_pem().unwrap())
        .unwrap();
    let ec_only = Verifier::new(config(0))
        .with_public_keys_pem(&ec.public_key_pem().unwrap())
        .unwrap();
    let ec_token = ec.mint(&claims()).unwrap();
    let ed_token = ed.mint(&claims()).unwrap();
    let hs_token = hs_key().mint(&claims()).unwrap();
    assert_eq!(ed_only.verify(&ec_token, now()), Err(AuthError::UnknownKey));
    assert_eq!(ec_only.verify(&ed_token, now()), Err(AuthError::UnknownKey));
    assert_eq!(ed_only.verify(&hs_token, now()), Err(AuthError::UnknownKey));
    assert_eq!(
        hs_verifier(0).verify(&ed_token, now()),
        Err(AuthError::UnknownKey)
    );
    assert_eq!(
        Verifier::new(config(0)).verify(&hs_token, now()),
        Err(AuthError::UnknownKey)
    );

    // Relabelling a real ES256 token as EdDSA does not make the P-256 key try it.
    let relabelled = with_part(&ec_token, 0, &b64(br#"{"alg":"EdDSA","typ":"JWT"}"#));
    assert_eq!(
        ec_only.verify(&relabelled, now()),
        Err(AuthError::UnknownKey)
    );
}

#[test]
fn public_key_bytes_are_never_an_hmac_secret() {
    let ed = SigningKey::generate_ed25519(Some("ed".into())).unwrap();
    let ec = SigningKey::generate_es256(Some("ec".into())).unwrap();
    let ed_pem = ed.public_key_pem().unwrap();
    let ec_pem = ec.public_key_pem().unwrap();
    let pem_body = |pem: &str| -> Vec<u8> {
        STANDARD
            .decode(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap()
    };
    let ed_x = URL_SAFE_NO_PAD
        .decode(ed.jwk().unwrap()["x"].as_str().unwrap())
        .unwrap();
    let guesses: Vec<Vec<u8>> = vec![
        ed_pem.clone().into_bytes(),
        ec_pem.clone().into_bytes(),
        pem_body(&ed_pem),
        pem_body(&ec_pem),
        ed_x,
    ];
    let public_only = Verifier::new(config(0))
        .with_public_keys_pem(&format!("{ed_pem}{ec_pem}"))
        .unwrap()
        .with_jwks(&json!({ "keys": [ed.jwk().unwrap(), ec.jwk().unwrap()] }).to_string())
        .unwrap();
    let with_secret = Verifier::new(config(0))
        .with_hs256_secret(SECRET)
        .unwrap()
        .with_public_keys_pem(&format!("{ed_pem}{ec_pem}"))
        .unwrap();
    for guess in &guesses {
        for header in [r#"{"alg":"HS256"}"#, r#"{"alg":"HS256","kid":"ed"}"#] {
            let forged = hs256_raw(header, &payload(|_| ()), guess);
            assert_eq!(
                public_only.verify(&forged, now()),
                Err(AuthError::UnknownKey)
            );
            assert_eq!(
                with_secret.verify(&forged, now()),
                Err(AuthError::BadSignature)
            );
        }
    }
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let body = b64(payload(|_| ()).as_bytes());
    for (alg, echoed) in [
        ("none", "none"),
        ("None", "None"),
        ("RS256", "RS256"),
        ("HS512", "HS512"),
        ("ES256K", "ES256K"),
        ("EdDSA-but-much-longer-than-sixteen", "EdDSA-but-much-l"),
    ] {
        let header = b64(json!({ "alg": alg }).to_string().as_bytes());
        for signature in ["", "c2ln"] {
            let token = format!("{header}.{body}.{signature}");
            assert_eq!(
                verify_hs(&token),
                Err(AuthError::UnsupportedAlgorithm(echoed.into())),
                "{alg}"
            );
        }
    }
}

#[test]
fn expiry_and_leeway() {
    let expired = hs256_with(set("exp", json!(NOW - 30)));
    assert_eq!(
        hs_verifier(0).verify(&expired, now()),
        Err(AuthError::Expired)
    );
    assert_eq!(
        hs_verifier(29).verify(&expired, now()),
        Err(AuthError::Expired)
    );
    assert!(hs_verifier(30).verify(&expired, now()).is_ok());
    assert!(hs_verifier(60).verify(&expired, now()).is_ok());
    // Sub-second precision: at exp + leeway exactly the token is still good, a moment later not.
    let later = now() + Duration::from_millis(1);
    assert_eq!(
        hs_verifier(30).verify(&expired, later),
        Err(AuthError::Expired)
    );

    assert_eq!(
        verify_hs(&hs256_with(remove("exp"))),
        Err(AuthError::MissingClaim("exp"))
    );
    assert_eq!(
        verify_hs(&hs256_with(set("exp", Value::Null))),
        Err(AuthError::MissingClaim("exp"))
    );
    for bad in [
        json!("1800000000"),
        json!(1.8e9),
        json!(-1),
        json!(NOW as f64 + 0.5),
    ] {
        assert_eq!(
            verify_hs(&hs256_with(set("exp", bad))),
            Err(AuthError::BadClaim("exp"))
        );
    }
}

#[test]
fn not_before_and_leeway() {
    let early = hs256_with(set("nbf", json!(NOW + 30)));
    assert_eq!(
        hs_verifier(0).verify(&early, now()),
        Err(AuthError::NotYetValid)
    );
    assert_eq!(
        hs_verifier(29).verify(&early, now()),
        Err(AuthError::NotYetValid)
    );
    assert!(hs_verifier(30).verify(&early, now()).is_ok());
    assert!(verify_hs(&hs256_with(set("nbf", json!(NOW)))).is_ok());
    assert!(verify_hs(&hs256_with(remove("nbf"))).is_ok());
    assert_eq!(
        verify_hs(&hs256_with(set("nbf", json!("soon")))),
        Err(AuthError::BadClaim("nbf"))
    );
    assert_eq!(
        verify_hs(&hs256_with(set("iat", json!("then")))),
        Err(AuthError::BadClaim("iat"))
    );
}

#[test]
fn issuer_must_match() {
    assert_eq!(
        verify_hs(&hs256_with(set("iss", json!("https://evil.example")))),
        Err(AuthError::WrongIssuer)
    );
    assert_eq!(
        verify_hs(&hs256_with(set("iss", json!(format!("{ISSUER}/"))))),
        Err(AuthError::WrongIssuer)
    );
    assert_eq!(
        verify_hs(&hs256_with(remove("iss"))),
        Err(AuthError::MissingClaim("iss"))
    );
    assert_eq!(
        verify_hs(&hs256_with(set("iss", json!([ISSUER])))),
        Err(AuthError::BadClaim("iss"))
    );
}

#[test]
fn audience_string_or_array() {
    assert_eq!(
        verify_hs(&hs256_with(set("aud", json!("other")))),
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        verify_hs(&hs256_with(set("aud", json!("VAULT")))),
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        verify_hs(&hs256_with(set("aud", json!(["other", AUDIENCE])))),
        Ok(expected_principal())
    );
    assert_eq!(
        verify_hs(&hs256_with(set("aud", json!(["other", "more"])))),
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        verify_hs(&hs256_with(set("aud", json!([])))),
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        verify_hs(&hs256_with(set("aud", json!([AUDIENCE, 1])))),
        Err(AuthError::BadClaim("aud"))
    );
    assert_eq!(
        verify_hs(&hs256_with(set("aud", json!(1)))),
        Err(AuthError::BadClaim("aud"))
    );
    assert_eq!(
        verify_hs(&hs256_with(remove("aud"))),
        Err(AuthError::MissingClaim("aud"))
    );
}

#[test]
fn tampering_breaks_every_signature() {
    let mut escalated = claims();
    escalated.permissions.push("admin".into());
    escalated.workspaces.push("team-c".into());
    let escalated_payload = b64(&serde_json::to_vec(&escalated).unwrap());

    let ed = SigningKey::generate_ed25519(None).unwrap();
    let ec = SigningKey::generate_es256(None).unwrap();
    let verifier = hs_verifier(0)
        .with_public_keys_pem(&format!(
            "{}{}",
            ed.public_key_pem().unwrap(),
            ec.public_key_pem().unwrap()
        ))
        .unwrap();
    for key in [&hs_key(), &ed, &ec] {
        let token = key.mint(&claims()).unwrap();
        assert_eq!(verifier.verify(&token, now()), Ok(expected_principal()));
        let swapped = with_part(&token, 1, &escalated_payload);
        assert_eq!(
            verifier.verify(&swapped, now()),
            Err(AuthError::BadSignature),
            "{key:?}"
        );

        let mut signature = URL_SAFE_NO_PAD.decode(part(&token, 2)).unwrap();
        signature[5] ^= 1;
        let flipped = with_part(&token, 2, &b64(&signature));
        assert_eq!(
            verifier.verify(&flipped, now()),
            Err(AuthError::BadSignature),
            "{key:?}"
        );
        let truncated = with_part(&token, 2, &b64(&signature[..signature.len() - 1]));
        assert_eq!(
            verifier.verify(&truncated, now()),
            Err(AuthError::BadSignature),
            "{key:?}"
        );
        let empty = with_part(&token, 2, "");
        assert_eq!(
            verifier.verify(&empty, now()),
            Err(AuthError::BadSignature),
            "{key:?}"
        );
    }
}

#[test]
fn malformed_tokens() {
    let good = hs_key().mint(&claims()).unwrap();
    let (h, p, s) = (part(&good, 0), part(&good, 1), part(&good, 2));
    let dup_sub = hs256_raw(
        r#"{"alg":"HS256"}"#,
        &payload(|_| ()).replacen('{', r#"{"sub":"admin","#, 1),
        SECRET,
    );
    assert!(dup_sub.len() > 10, "the duplicate-member token was built");
    for token in [
        String::new(),
        ".".into(),
        "..".into(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}."),
        format!("!!.{p}.{s}"),
        format!("{h}.{p}=.{s}"),
        format!("{h}.{p}.{s}=="),
        format!("{h} .{p}.{s}"),
        format!("{}.{p}.{s}", b64(b"not json")),
        format!("{}.{p}.{s}", b64(br#"{"typ":"JWT"}"#)),
        format!("{}.{p}.{s}", b64(br#"{"alg":"HS256","crit":["exp"]}"#)),
        // Validly signed, but the payload is not a JSON object.
        hs256_raw(r#"{"alg":"HS256"}"#, "not json", SECRET),
        hs256_raw(r#"{"alg":"HS256"}"#, r#"["svc","iss"]"#, SECRET),
        hs256_raw(r#"{"alg":"HS256"}"#, "", SECRET),
        dup_sub,
    ] {
        assert_eq!(verify_hs(&token), Err(AuthError::Malformed), "{token:?}");
    }
}

#[test]
fn size_limit() {
    let padded = |len: usize| hs256_with(set("pad", json!("x".repeat(len))));
    // Base64 grows the payload by a third, so walk down to the longest token within the limit.
    let mut len = MAX_TOKEN_LEN * 3 / 4;
    while padded(len).len() > MAX_TOKEN_LEN {
        len -= 1;
    }
    let at_limit = padded(len);
    assert!(at_limit.len() > MAX_TOKEN_LEN - 4, "{}", at_limit.len());
    assert_eq!(verify_hs(&at_limit), Ok(expected_principal()));
    let over = hs256_with(set("pad", json!("x".repeat(MAX_TOKEN_LEN))));
    assert_eq!(verify_hs(&over), Err(AuthError::TooLarge));
    assert_eq!(verify_hs(&"a".repeat(1 << 20)), Err(AuthError::TooLarge));
}

#[test]
fn subject_and_permission_claims() {
    assert_eq!(
        verify_hs(&hs256_with(set("sub", json!("")))),
        Err(AuthError::MissingClaim("sub"))
    );
    assert_eq!(
        verify_hs(&hs256_with(remove("sub"))),
        Err(AuthError::MissingClaim("sub"))
    );
    assert_eq!(
        verify_hs(&hs256_with(set("sub", json!(42)))),
        Err(AuthError::BadClaim("sub"))
    );
    // The subject is the audit log's actor: bounded and printable.
    for bad in [
        json!("s".repeat(257)),
        json!("svc\nforged"),
        json!("a\u{0}b"),
    ] {
        assert_eq!(
            verify_hs(&hs256_with(set("sub", bad.clone()))),
            Err(AuthError::BadClaim("sub")),
            "{bad}"
        );
    }
    assert!(verify_hs(&hs256_with(set("sub", json!("s".repeat(256))))).is_ok());

    let principal = verify_hs(&hs256_with(set(
        "permissions",
        json!(["write", "rotate", "ADMIN", "write"]),
    )))
    .unwrap();
    assert_eq!(principal.permissions, [Permission::Write].into());
    let none = verify_hs(&hs256_with(set("permissions", json!([])))).unwrap();
    assert!(Permission::ALL.iter().all(|p| !none.has(*p)));
    for bad in [json!("read"), json!(["read", 1]), json!({"read": true})] {
        assert_eq!(
            verify_hs(&hs256_with(set("permissions", bad))),
            Err(AuthError::BadClaim("permissions"))
        );
    }
    assert_eq!(
        verify_hs(&hs256_with(remove("permissions"))),
        Err(AuthError::MissingClaim("permissions"))
    );
}

#[test]
fn platform_admin_claim() {
    assert!(
        !verify_hs(&hs256_with(remove("platform_admin")))
            .unwrap()
            .platform_admin
    );
    assert!(
        verify_hs(&hs256_with(set("platform_admin", json!(true))))
            .unwrap()
            .platform_admin
    );
    assert!(
        !verify_hs(&hs256_with(set("platform_admin", json!(false))))
            .unwrap()
            .platform_admin
    );
    for bad in [json!("true"), json!(1), json!([true])] {
        assert_eq!(
            verify_hs(&hs256_with(set("platform_admin", bad.clone()))),
            Err(AuthError::BadClaim("platform_admin")),
            "{bad}"
        );
    }
    // Minted only when granted, and read back.
    let mut claims = claims();
    claims.platform_admin = true;
    let token = hs_key().mint(&claims).unwrap();
    assert!(verify_hs(&token).unwrap().platform_admin);
}

#[test]
fn workspace_claim() {
    let longest = "w".repeat(64);
    let principal = verify_hs(&hs256_with(set(
        "workspaces",
        json!(["b", "a", "b", longest.clone()]),
    )))
    .unwrap();
    assert_eq!(principal.workspaces, ["b", "a", longest.as_str()]);
    assert!(principal.may_act_in("a") && !principal.may_act_in("c"));
    for bad in [
        json!([""]),
        json!(["w".repeat(65)]),
        json!(["team/a"]),
        json!(["team a"]),
        json!(["*"]),
        json!(["ok", "../etc"]),
        json!(["tëam"]),
        json!([7]),
        json!("team-a"),
    ] {
        assert_eq!(
            verify_hs(&hs256_with(set("workspaces", bad.clone()))),
            Err(AuthError::BadClaim("workspaces")),
            "{bad}"
        );
    }
    assert_eq!(
        verify_hs(&hs256_with(remove("workspaces"))),
        Err(AuthError::MissingClaim("workspaces"))
    );
}

#[test]
fn hs256_secret_length() {
    let err = Verifier::new(config(0))
        .with_hs256_secret(b"short-secret-MARKER")
        .unwrap_err();
    assert!(matches!(err, AuthError::KeyConfig(_)));
    assert!(!err.to_string().contains("MARKER"));
    assert!(!format!("{err:?}").contains("MARKER"));
    let exact = Verifier::new(config(0))
        .with_hs256_secret(&[9; 32])
        .unwrap();
    assert_eq!(exact.key_count(), 1);
}

#[test]
fn pem_parsing() {
    let ed = SigningKey::generate_ed25519(None)
        .unwrap()
        .public_key_pem()
        .unwrap();
    let ec = SigningKey::generate_es256(None)
        .unwrap()
        .public_key_pem()
        .unwrap();
    let both = format!(
        "Ed25519 key:\n{ed}\nP-256 key:\r\n{}",
        ec.replace('\n', "\r\n")
    );
    let verifier = hs_verifier(0).with_public_keys_pem(&both).unwrap();
    assert_eq!(verifier.key_count(), 3);

    let body = |pem: &str| {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    let block = |label: &str, body: &str| {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    };
    let mut not_on_curve = STANDARD.decode(body(&ec)).unwrap();
    *not_on_curve.last_mut().unwrap() ^= 1;
    // RSA's SPKI prefix, followed by junk: the shape, not the key, is what gets refused.
    let rsa = STANDARD.encode(
        [
            &[0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09][..],
            &[0; 64],
        ]
        .concat(),
    );
    let mut ed_short = STANDARD.decode(body(&ed)).unwrap();
    ed_short.pop();
    for bad in [
        String::new(),
        "no pem here".into(),
        block("PRIVATE KEY", &body(&ed)),
        block("CERTIFICATE", &body(&ed)),
        block("PUBLIC KEY", "not base64!"),
        block("PUBLIC KEY", &rsa),
        block("PUBLIC KEY", &STANDARD.encode(&not_on_curve)),
        block("PUBLIC KEY", &STANDARD.encode(&ed_short)),
        ed.replace("-----END PUBLIC KEY-----\n", ""),
        format!("{ed}-----END PUBLIC KEY-----\n"),
    ] {
        let result = Verifier::new(config(0)).with_public_keys_pem(&bad);
        assert!(matches!(result, Err(AuthError::KeyConfig(_))), "{bad:?}");
    }
}

#[test]
fn jwks_parsing() {
    let ed = SigningKey::generate_ed25519(Some("ed".into()))
        .unwrap()
        .jwk()
        .unwrap();
    let ec = SigningKey::generate_es256(Some("ec".into()))
        .unwrap()
        .jwk()
        .unwrap();
    let rsa = json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"});
    let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": ed["x"]});
    let p384 = json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
    let octet = json!({"kty": "oct", "k": b64(SECRET)});
    let mut enc = ed.clone();
    enc["use"] = json!("enc");
    let mut wrong_alg = ec.clone();
    wrong_alg["alg"] = json!("ES384");
    let jwks = |keys: Vec<&Value>| json!({ "keys": keys }).to_string();

    let mixed = Verifier::new(config(0))
        .with_jwks(&jwks(vec![
            &rsa, &ed, &x25519, &p384, &octet, &enc, &wrong_alg, &ec,
        ]))
        .unwrap();
    assert_eq!(mixed.key_count(), 2);
    // No usable key at all; an oct key in particular never becomes an HMAC secret.
    let unusable = Verifier::new(config(0)).with_jwks(&jwks(vec![&rsa, &x25519, &octet, &enc]));
    assert!(matches!(unusable, Err(AuthError::KeyConfig(_))));

    let mut private = ed.clone();
    private["d"] = json!(b64(&[1; 32]));
    let mut short_x = ed.clone();
    short_x["x"] = json!(b64(&[1; 31]));
    let mut no_y = ec.clone();
    no_y.as_object_mut().unwrap().remove("y");
    let mut padded = ec.clone();
    padded["x"] = json!(format!("{}=", ec["x"].as_str().unwrap()));
    let mut numeric_kid = ed.clone();
    numeric_kid["kid"] = json!(1);
    for bad in [
        "not json".to_owned(),
        "{}".into(),
        r#"{"keys":{}}"#.into(),
        r#"{"keys":[]}"#.into(),
        jwks(vec![&private]),
        jwks(vec![&ed, &short_x]),
        jwks(vec![&no_y]),
        jwks(vec![&padded]),
        jwks(vec![&numeric_kid]),
    ] {
        let result = Verifier::new(config(0)).with_jwks(&bad);
        assert!(matches!(result, Err(AuthError::KeyConfig(_))), "{bad}");
    }
}

#[test]
fn key_count_accumulates() {
    let ed = SigningKey::generate_ed25519(None).unwrap();
    let ec = SigningKey::generate_es256(Some("k".into())).unwrap();
    let mut verifier = Verifier::new(config(0));
    assert_eq!(verifier.key_count(), 0);
    verifier = verifier.with_hs256_secret(SECRET).unwrap();
    verifier = verifier.with_hs256_secret(&[3; 40]).unwrap();
    assert_eq!(
        verifier.key_count(),
        1,
        "a second secret replaces the first"
    );
    verifier = verifier
        .with_public_keys_pem(&ed.public_key_pem().unwrap())
        .unwrap();
    verifier = verifier
        .with_jwks(&json!({"keys": [ec.jwk().unwrap()]}).to_string())
        .unwrap();
    assert_eq!(verifier.key_count(), 3);
}

#[test]
fn debug_never_shows_key_material() {
    let ed = SigningKey::generate_ed25519(Some("ed-kid".into())).unwrap();
    let ec = SigningKey::generate_es256(Some("ec-kid".into())).unwrap();
    let hs = hs_key();
    let verifier = hs_verifier(0)
        .with_public_keys_pem(&ed.public_key_pem().unwrap())
        .unwrap()
        .with_jwks(&json!({"keys": [ec.jwk().unwrap()]}).to_string())
        .unwrap();

    let secret_text = String::from_utf8(SECRET.to_vec()).unwrap();
    let mut forbidden = vec![
        secret_text.clone(),
        secret_text[..12].to_owned(),
        format!("{:?}", &SECRET[..8])
            .trim_end_matches(']')
            .to_owned(),
        hex(&SECRET[..8]),
        b64(SECRET),
    ];
    for key in [&ed, &ec] {
        let (SigningKey::Ed25519 { pkcs8, .. } | SigningKey::Es256 { pkcs8, .. }) = key else {
            unreachable!()
        };
        let tail = &pkcs8[pkcs8.len() - 16..];
        forbidden.push(format!("{tail:?}").trim_start_matches('[').to_owned());
        forbidden.push(hex(tail));
        forbidden.push(b64(&pkcs8[..]));
        forbidden.push(key.jwk().unwrap()["x"].as_str().unwrap()[..16].to_owned());
    }
    let ed_pem = ed.public_key_pem().unwrap();
    forbidden.push(ed_pem.lines().nth(1).unwrap()[20..].to_owned());

    let verifier_debug = format!("{verifier:?}");
    assert!(verifier_debug.contains("EdDSA"));
    assert!(verifier_debug.contains("ec-kid"));
    assert!(verifier_debug.contains(ISSUER));
    for shown in [
        verifier_debug,
        format!("{verifier:#?}"),
        format!("{hs:?}"),
        format!("{ed:?}"),
        format!("{ec:#?}"),
    ] {
        for needle in &forbidden {
            assert!(!shown.contains(needle.as_str()), "{shown} shows {needle}");
        }
    }
    assert_eq!(format!("{hs:?}"), "Hs256(<redacted>)");
    assert!(format!("{ed:?}").contains("ed-kid"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One index per variant: adding a variant breaks this match until the test below covers it.
fn variant(error: &AuthError) -> usize {
    match error {
        AuthError::Malformed => 0,
        AuthError::TooLarge => 1,
        AuthError::UnsupportedAlgorithm(_) => 2,
        AuthError::UnknownKey => 3,
        AuthError::BadSignature => 4,
        AuthError::Expired => 5,
        AuthError::NotYetValid => 6,
        AuthError::WrongIssuer => 7,
        AuthError::WrongAudience => 8,
        AuthError::MissingClaim(_) => 9,
        AuthError::BadClaim(_) => 10,
        AuthError::KeyConfig(_) => 11,
        AuthError::Rng => 12,
    }
}
const VARIANTS: usize = 13;

#[test]
fn no_error_text_repeats_the_token_or_a_secret() {
    let good = hs_key().mint(&claims()).unwrap();
    let ed = SigningKey::generate_ed25519(Some("k".into())).unwrap();
    let ed_verifier = Verifier::new(config(0))
        .with_jwks(&json!({"keys": [ed.jwk().unwrap()]}).to_string())
        .unwrap();
    let unknown_kid = SigningKey::Ed25519 {
        pkcs8: match &ed {
            SigningKey::Ed25519 { pkcs8, .. } => pkcs8.clone(),
            _ => unreachable!(),
        },
        kid: Some("other".into()),
    }
    .mint(&claims())
    .unwrap();
    let hs_crafted: Vec<String> = vec![
        format!("{good}x"),
        format!("{good}.x"),
        hs256_raw(r#"{"alg":"none"}"#, &payload(|_| ()), SECRET),
        hs256_with(set("exp", json!(NOW - 100))),
        hs256_with(set("nbf", json!(NOW + 100))),
        hs256_with(set("iss", json!("https://evil.example"))),
        hs256_with(set("aud", json!(["nope"]))),
        hs256_with(remove("exp")),
        hs256_with(set("workspaces", json!(["bad/ws"]))),
        with_part(&good, 1, &b64(br#"{"sub":"x"}"#)),
        hs256_with(set("pad", json!("p".repeat(MAX_TOKEN_LEN)))),
    ];
    let mut cases: Vec<(AuthError, String)> = hs_crafted
        .into_iter()
        .map(|token| (verify_hs(&token).unwrap_err(), token))
        .collect();
    cases.push((
        ed_verifier.verify(&unknown_kid, now()).unwrap_err(),
        unknown_kid,
    ));
    cases.push((
        Verifier::new(config(0))
            .with_hs256_secret(&SECRET[..31])
            .unwrap_err(),
        String::new(),
    ));
    cases.push((AuthError::Rng, String::new()));

    let mut covered = [false; VARIANTS];
    let secret_text = String::from_utf8(SECRET.to_vec()).unwrap();
    for (error, token) in &cases {
        covered[variant(error)] = true;
        let mut needles: Vec<&str> = token.split('.').filter(|p| p.len() >= 8).collect();
        needles.push(&secret_text[..12]);
        for shown in [
            error.to_string(),
            format!("{error:?}"),
            error.client_message().to_owned(),
        ] {
            assert!(!shown.is_empty());
            assert!(shown.len() < 120, "{shown}");
            for needle in &needles {
                assert!(
                    !shown.contains(needle),
                    "{shown:?} repeats part of the input"
                );
            }
        }
    }
    assert!(
        covered.iter().all(|c| *c),
        "variants not produced: {covered:?}"
    );
    assert_eq!(
        cases
            .iter()
            .find(|(e, _)| *e == AuthError::Expired)
            .map(|(e, _)| e.client_message()),
        Some("the token has expired")
    );
}

/// Seconds after [`NOW`] as a verification time.
fn at(offset_secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW.checked_add_signed(offset_secs).unwrap())
}

#[test]
fn a_verified_token_is_answered_from_the_cache() {
    let verifier = hs_verifier(0);
    let token = hs_key().mint(&claims()).unwrap();
    assert_eq!(verifier.verify(&token, now()), Ok(expected_principal()));
    assert_eq!(verifier.verify(&token, now()), Ok(expected_principal()));
    let stats = verifier.token_cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
}

#[test]
fn a_cached_token_is_refused_once_expired() {
    // exp is NOW + 300; leeway 5 s.
    let verifier = hs_verifier(5);
    let token = hs_key().mint(&claims()).unwrap();
    assert_eq!(verifier.verify(&token, now()), Ok(expected_principal()));
    assert_eq!(verifier.verify(&token, at(305)), Ok(expected_principal()));
    assert_eq!(verifier.verify(&token, at(306)), Err(AuthError::Expired));
    // Dropped, and still refused when verified afresh.
    assert_eq!(verifier.token_cache_stats().entries, 0);
    assert_eq!(verifier.verify(&token, at(306)), Err(AuthError::Expired));
}

#[test]
fn a_cached_token_is_refused_before_its_not_before() {
    // nbf is NOW - 10; a clock stepped back past it must not be served from memory.
    let verifier = hs_verifier(0);
    let token = hs_key().mint(&claims()).unwrap();
    assert_eq!(verifier.verify(&token, now()), Ok(expected_principal()));
    assert_eq!(
        verifier.verify(&token, at(-11)),
        Err(AuthError::NotYetValid)
    );
    assert_eq!(verifier.verify(&token, now()), Ok(expected_principal()));
}

#[test]
fn a_key_change_empties_the_cache() {
    let token = hs_key().mint(&claims()).unwrap();
    let verifier = hs_verifier(0);
    assert_eq!(verifier.verify(&token, now()), Ok(expected_principal()));
    // The secret that signed the token is replaced: it must not be accepted from memory.
    let verifier = verifier
        .with_hs256_secret(b"another-secret-of-at-least-32-bytes!!")
        .unwrap();
    assert_eq!(verifier.verify(&token, now()), Err(AuthError::BadSignature));

    // Adding keys empties it too: nothing verified under the old set is carried over.
    let verifier = hs_verifier(0);
    assert_eq!(verifier.verify(&token, now()), Ok(expected_principal()));
    let other = SigningKey::generate_ed25519(None).unwrap();
    let verifier = verifier
        .with_public_keys_pem(&other.public_key_pem().unwrap())
        .unwrap();
    assert_eq!(verifier.token_cache_stats().entries, 0);
}

#[test]
fn a_token_differing_in_one_byte_is_verified_afresh() {
    let verifier = hs_verifier(0);
    let token = hs_key().mint(&claims()).unwrap();
    assert_eq!(verifier.verify(&token, now()), Ok(expected_principal()));
    let last = token.len() - 1;
    for index in [0, token.find('.').unwrap() + 1, last] {
        let mut bytes = token.clone().into_bytes();
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(verifier.verify(&tampered, now()).is_err(), "byte {index}");
    }
    assert_eq!(verifier.token_cache_stats().entries, 1);
}

#[test]
fn failures_are_never_cached() {
    let verifier = hs_verifier(0);
    let wrong_audience = hs256_with(set("aud", json!("elsewhere")));
    for _ in 0..2 {
        assert_eq!(
            verifier.verify(&wrong_audience, now()),
            Err(AuthError::WrongAudience)
        );
    }
    let stats = verifier.token_cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (0, 2, 0));
}

#[test]
fn the_cache_holds_at_most_its_capacity() {
    let verifier = hs_verifier(0).with_token_cache_capacity(3);
    let tokens: Vec<String> = (0..5)
        .map(|i| hs256_with(set("exp", json!(NOW + 100 + i))))
        .collect();
    for token in &tokens {
        assert!(verifier.verify(token, now()).is_ok());
        assert!(verifier.token_cache_stats().entries <= 3);
    }
    assert_eq!(verifier.token_cache_stats().entries, 3);
    // The one expiring soonest made room: the newest is still cached.
    let before = verifier.token_cache_stats().hits;
    assert!(verifier.verify(&tokens[4], now()).is_ok());
    assert_eq!(verifier.token_cache_stats().hits, before + 1);

    let off = hs_verifier(0).with_token_cache_capacity(0);
    assert!(off.verify(&tokens[0], now()).is_ok());
    assert_eq!(off.token_cache_stats().entries, 0);
}
