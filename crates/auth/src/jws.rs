//! The JWS compact serialization: `base64url(header) . base64url(payload) . base64url(signature)`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize};

use crate::AuthError;

/// Longest token accepted, in bytes; checked before any decoding so a huge header costs nothing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The signature algorithms this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Hs256,
    Es256,
    EdDsa,
}

impl Algorithm {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    fn from_name(alg: &str) -> Result<Self, AuthError> {
        // Exact, case-sensitive names (RFC 7518): "none" and look-alikes fall through to the error.
        match alg {
            "HS256" => Ok(Self::Hs256),
            "ES256" => Ok(Self::Es256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(AuthError::unsupported_alg(other)),
        }
    }
}

#[derive(Deserialize)]
struct ReceivedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    // Whatever `crit` lists, we implement none of it, so its mere presence is a refusal.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

#[derive(Serialize)]
struct MintedHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// A token split and decoded, its signature not yet checked.
pub(crate) struct Compact<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// `header . payload` exactly as received: what the signature covers.
    pub(crate) signing_input: &'a [u8],
    pub(crate) payload: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

/// Splits and decodes a token; the payload is left as bytes until the signature has been checked.
pub(crate) fn parse(token: &str) -> Result<Compact<'_>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let signing_input = &token.as_bytes()[..header.len() + 1 + payload.len()];
    let header: ReceivedHeader = json_object(&decode(header)?)?;
    if header.crit {
        return Err(AuthError::Malformed);
    }
    let alg = Algorithm::from_name(&header.alg)?;
    Ok(Compact {
        alg,
        kid: header.kid,
        signing_input,
        payload: decode(payload)?,
        signature: decode(signature)?,
    })
}

/// Builds a token: the header, the payload and the signature `sign` makes over both.
pub(crate) fn encode(
    alg: Algorithm,
    kid: Option<&str>,
    payload: &[u8],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, AuthError>,
) -> Result<String, AuthError> {
    let header = MintedHeader {
        alg: alg.name(),
        typ: "JWT",
        kid,
    };
    // A struct of strings always serializes; the error arm exists only because the API has one.
    let header = serde_json::to_vec(&header).map_err(|_| AuthError::BadClaim("header"))?;
    let mut token = format!("{}.{}", encode_part(&header), encode_part(payload));
    let signature = sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&encode_part(&signature));
    Ok(token)
}

/// base64url without padding, as JWS requires.
pub(crate) fn encode_part(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url: no padding, no whitespace, no stray trailing bits.
pub(crate) fn decode(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed)
}

/// Parses a JSON object into `T`, refusing duplicate members and non-object JSON.
pub(crate) fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AuthError> {
    // serde's derived structs also accept a JSON array, positionally; a header or claims set is an
    // object and nothing else.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(AuthError::Malformed);
    }
    serde_json::from_slice(bytes).map_err(|_| AuthError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(json: &str) -> String {
        encode_part(json.as_bytes())
    }

    #[test]
    fn signing_input_is_header_dot_payload() {
        let token = format!(
            "{}.{}.{}",
            part(r#"{"alg":"HS256"}"#),
            part("{}"),
            part("sig")
        );
        let parsed = parse(&token).unwrap();
        let expected = format!("{}.{}", part(r#"{"alg":"HS256"}"#), part("{}"));
        assert_eq!(parsed.signing_input, expected.as_bytes());
        assert_eq!(parsed.payload, b"{}");
        assert_eq!(parsed.signature, b"sig");
        assert_eq!(parsed.alg, Algorithm::Hs256);
        assert_eq!(parsed.kid, None);
    }

    #[test]
    fn base64_must_be_canonical_url_safe_unpadded() {
        assert_eq!(decode("YQ").unwrap(), b"a");
        for bad in ["YQ==", "YR", "Y Q", "+/8", "YQ\n", "Y"] {
            assert_eq!(decode(bad), Err(AuthError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn header_rules() {
        let with = |header: &str| format!("{}.{}.{}", part(header), part("{}"), part("s"));
        let alg_of = |header: &str| parse(&with(header)).map(|c| c.alg);
        assert_eq!(alg_of(r#"{"alg":"ES256"}"#), Ok(Algorithm::Es256));
        assert_eq!(
            alg_of(r#"{"alg":"EdDSA","typ":"JWT"}"#),
            Ok(Algorithm::EdDsa)
        );
        assert_eq!(
            alg_of(r#"{"alg":"none"}"#),
            Err(AuthError::UnsupportedAlgorithm("none".into()))
        );
        assert_eq!(
            alg_of(r#"{"alg":"hs256"}"#),
            Err(AuthError::UnsupportedAlgorithm("hs256".into()))
        );
        assert_eq!(
            alg_of(r#"{"alg":"HS256XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}"#),
            Err(AuthError::UnsupportedAlgorithm("HS256XXXXXXXXXXX".into()))
        );
        // Multi-byte characters are cut on a character boundary, not a byte one.
        assert_eq!(
            alg_of(r#"{"alg":"ééééééééééééééééééé"}"#),
            Err(AuthError::UnsupportedAlgorithm("é".repeat(16)))
        );
        for malformed in [
            r#"{"typ":"JWT"}"#,
            r#"{"alg":256}"#,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"{"alg":"HS256","crit":null}"#,
            r#"{"alg":"HS256","kid":7}"#,
            r#"{"alg":"HS256","alg":"none"}"#,
            r#"["HS256"]"#,
            "not json",
            "",
        ] {
            assert_eq!(alg_of(malformed), Err(AuthError::Malformed), "{malformed}");
        }
        let kid = parse(&with(r#"{"alg":"EdDSA","kid":"k-1"}"#)).map(|c| c.kid);
        assert_eq!(kid, Ok(Some("k-1".into())));
    }

    #[test]
    fn size_is_checked_first() {
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(parse(&huge).err(), Some(AuthError::TooLarge));
        let at_limit = "a".repeat(MAX_TOKEN_LEN);
        assert_eq!(parse(&at_limit).err(), Some(AuthError::Malformed));
    }

    #[test]
    fn encode_then_parse() {
        let token = encode(Algorithm::EdDsa, Some("k"), b"{\"a\":1}", |input| {
            Ok(input.iter().rev().copied().collect())
        })
        .unwrap();
        let parsed = parse(&token).unwrap();
        assert_eq!(parsed.alg, Algorithm::EdDsa);
        assert_eq!(parsed.kid.as_deref(), Some("k"));
        assert_eq!(parsed.payload, b"{\"a\":1}");
        let reversed: Vec<u8> = parsed.signing_input.iter().rev().copied().collect();
        assert_eq!(parsed.signature, reversed);
        let header = decode(token.split('.').next().unwrap()).unwrap();
        assert_eq!(header, br#"{"alg":"EdDSA","typ":"JWT","kid":"k"}"#);
    }
}
