//! RS256 JSON Web Tokens signed with ring, for Google's JWT-bearer grant and Snowflake's
//! key-pair login. Errors are fixed texts: they never quote the key.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use std::time::{SystemTime, UNIX_EPOCH};

/// Loads an RSA private key from PEM: PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`).
pub(crate) fn load_rsa_key(pem: &str) -> Result<RsaKeyPair, &'static str> {
    // Keys pasted into a single-line field often carry literal "\n" sequences.
    let pem = pem.replace("\\n", "\n");
    let mut label = None;
    let mut body = String::new();
    for line in pem.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            label = Some(rest.trim_end_matches('-').to_owned());
        } else if line.starts_with("-----END ") {
            break;
        } else if label.is_some() {
            body.push_str(line);
        }
    }
    let label = label.ok_or("the private key is not PEM-encoded")?;
    if label.contains("ENCRYPTED") {
        return Err("encrypted private keys are not supported; store the key unencrypted");
    }
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "the private key's PEM body is not valid base64")?;
    let key = match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        _ => return Err("the PEM block is not a private key"),
    };
    key.map_err(|_| "the private key is not a usable RSA key (2048 bits or more)")
}

/// A signed RS256 JWT with these claims (and a `kid` header when given).
pub(crate) fn sign_rs256(
    key: &RsaKeyPair,
    kid: Option<&str>,
    claims: &serde_json::Value,
) -> Result<String, &'static str> {
    let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = serde_json::Value::from(kid);
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing with the private key failed")?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// `SHA256:` and the base64 SHA-256 of the public key's DER SubjectPublicKeyInfo, the
/// fingerprint Snowflake shows as `RSA_PUBLIC_KEY_FP`.
pub(crate) fn public_key_fingerprint(key: &RsaKeyPair) -> String {
    let pkcs1 = key.public().as_ref();
    // AlgorithmIdentifier { rsaEncryption, NULL }.
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x00];
    bit_string.extend_from_slice(pkcs1);
    let mut content = ALGORITHM.to_vec();
    content.extend(der_tlv(0x03, &bit_string));
    let spki = der_tlv(0x30, &content);
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
    format!("SHA256:{}", STANDARD.encode(digest.as_ref()))
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PKCS8: &str = include_str!("../tests/fixtures/test_rsa_key.pem");
    const PKCS1: &str = include_str!("../tests/fixtures/test_rsa_key_pkcs1.pem");

    #[test]
    fn fingerprints_match_openssl() {
        // openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary | base64
        let expected = "SHA256:+QLO7v+8WMF6eCUlI+swARY2ENCoX38GUhudTep+fA0=";
        assert_eq!(
            public_key_fingerprint(&load_rsa_key(PKCS8).unwrap()),
            expected
        );
        assert_eq!(
            public_key_fingerprint(&load_rsa_key(PKCS1).unwrap()),
            expected
        );
        // Pasted into one line with literal \n sequences.
        let one_line = PKCS8.replace('\n', "\\n");
        assert!(load_rsa_key(&one_line).is_ok());
    }

    #[test]
    fn tokens_verify_with_the_public_key() {
        let key = load_rsa_key(PKCS8).unwrap();
        let claims = serde_json::json!({ "iss": "a@b", "iat": 1 });
        let token = sign_rs256(&key, Some("kid-1"), &claims).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(
            header,
            serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": "kid-1" })
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public().as_ref(),
        )
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .unwrap();
    }

    #[test]
    fn der_lengths_use_the_long_form_above_127() {
        assert_eq!(der_tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der_tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn non_keys_are_refused_without_echo() {
        for bad in [
            "SECRET",
            "-----BEGIN CERTIFICATE-----\nU0VDUkVU\n-----END CERTIFICATE-----",
            "-----BEGIN PRIVATE KEY-----\n!!SECRET!!\n-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nU0VDUkVU\n-----END ENCRYPTED PRIVATE KEY-----",
        ] {
            let err = load_rsa_key(bad).err().unwrap();
            assert!(!err.contains("SECRET"), "{err}");
        }
    }
}
