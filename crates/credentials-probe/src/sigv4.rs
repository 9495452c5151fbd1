//! AWS Signature Version 4 (header form), with ring's HMAC-SHA256 and SHA-256.
//!
//! Only what the STS probe needs, written to AWS's published algorithm: canonical request,
//! string to sign, derived signing key, `Authorization` header.

use ring::{digest, hmac};
use std::time::{SystemTime, UNIX_EPOCH};

/// AWS credentials to sign with.
pub struct AwsCredentials<'a> {
    /// The access key id, e.g. `AKIA...`.
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// The session token of temporary credentials, sent as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
}

/// What to sign: one request.
pub struct SigningRequest<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The absolute path, already URI-encoded, e.g. `/`.
    pub path: &'a str,
    /// The query parameters, unencoded; they are encoded and sorted here.
    pub query: &'a [(&'a str, &'a str)],
    /// The headers to sign besides `host`, `x-amz-date` and `x-amz-security-token`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The `Host` header value.
    pub host: &'a str,
    /// The request body.
    pub payload: &'a [u8],
    /// The region, e.g. `us-east-1`.
    pub region: &'a str,
    /// The service, e.g. `sts`.
    pub service: &'a str,
    /// The signing time, as `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: &'a str,
}

/// The signature and the headers to send with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The canonical request (exposed for tests against AWS's published examples).
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The hex signature.
    pub signature: String,
    /// Headers to add to the request: `authorization`, `x-amz-date` and, with a session token,
    /// `x-amz-security-token`.
    pub headers: Vec<(&'static str, String)>,
}

/// Signs a request with SigV4.
pub fn sign(request: &SigningRequest<'_>, credentials: &AwsCredentials<'_>) -> Signed {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), normalize_value(v)))
        .collect();
    headers.push(("host".to_owned(), request.host.to_owned()));
    headers.push(("x-amz-date".to_owned(), request.amz_date.to_owned()));
    if let Some(token) = credentials.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");

    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");

    let canonical_request = format!(
        "{}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.path,
        hex(digest::digest(&digest::SHA256, request.payload).as_ref()),
    );
    let date = request.amz_date.get(..8).unwrap_or(request.amz_date);
    let scope = format!("{date}/{}/{}/aws4_request", request.region, request.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        request.amz_date,
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref()),
    );
    let secret = format!("AWS4{}", credentials.secret_access_key);
    let key = [date, request.region, request.service, "aws4_request"]
        .iter()
        .fold(secret.into_bytes(), |key, part| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
                .as_ref()
                .to_vec()
        });
    let signature = hex(hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        string_to_sign.as_bytes(),
    )
    .as_ref());
    let mut out_headers = vec![
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                credentials.access_key_id
            ),
        ),
        ("x-amz-date", request.amz_date.to_owned()),
    ];
    if let Some(token) = credentials.session_token {
        out_headers.push(("x-amz-security-token", token.to_owned()));
    }
    Signed {
        canonical_request,
        string_to_sign,
        signature,
        headers: out_headers,
    }
}

/// The SigV4 timestamp `YYYYMMDD'T'HHMMSS'Z'` of a time.
pub fn amz_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// Trims a header value and collapses inner runs of spaces, as SigV4 canonicalization requires.
fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SigV4 URI encoding: unreserved characters stay, everything else is `%XX` (uppercase).
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    /// AWS's published example: IAM ListUsers, signed on 2015-08-30 12:36:00 UTC.
    #[test]
    fn matches_the_published_iam_example() {
        let signed = sign(
            &SigningRequest {
                method: "GET",
                path: "/",
                query: &[("Action", "ListUsers"), ("Version", "2010-05-08")],
                headers: &[(
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )],
                host: "iam.amazonaws.com",
                payload: b"",
                region: "us-east-1",
                service: "iam",
                amz_date: "20150830T123600Z",
            },
            &AwsCredentials {
                access_key_id: "AKIDEXAMPLE",
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                session_token: None,
            },
        );
        assert_eq!(
            signed.canonical_request,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
             content-type:application/x-www-form-urlencoded; charset=utf-8\n\
             host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             content-type;host;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
             f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        assert_eq!(
            signed.signature,
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        assert_eq!(
            signed.headers[0].1,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn session_tokens_are_signed_and_sent() {
        let signed = sign(
            &SigningRequest {
                method: "POST",
                path: "/",
                query: &[],
                headers: &[],
                host: "sts.us-east-1.amazonaws.com",
                payload: b"Action=GetCallerIdentity&Version=2011-06-15",
                region: "us-east-1",
                service: "sts",
                amz_date: "20150830T123600Z",
            },
            &AwsCredentials {
                access_key_id: "AKIDEXAMPLE",
                secret_access_key: "secret",
                session_token: Some("token"),
            },
        );
        assert!(
            signed
                .canonical_request
                .contains("host;x-amz-date;x-amz-security-token")
        );
        assert!(
            signed
                .headers
                .contains(&("x-amz-security-token", "token".to_owned()))
        );
    }

    #[test]
    fn dates_format_in_utc() {
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(
            amz_date(UNIX_EPOCH + Duration::from_secs(1_440_938_160)),
            "20150830T123600Z"
        );
        assert_eq!(
            amz_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229T000000Z"
        );
    }

    #[test]
    fn query_components_are_encoded() {
        assert_eq!(uri_encode("a b/c~"), "a%20b%2Fc~");
    }
}
