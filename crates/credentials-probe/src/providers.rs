//! Probes of LLM, speech, image and video providers: the cheap authenticated read the catalogue
//! declares for each, with the key attached as the catalogue says, and Amazon Bedrock through
//! STS. What each answer means (the shared error bodies, each [`ErrorDialect`]) lives here.
//!
//! Response bodies are read only to classify an answer; they never reach a message, since some
//! providers echo part of the key back.

use crate::http::{HttpClient, Request, Response};
use crate::outcome::{ProbeConfig, ProbeResult};
use crate::sigv4;
use credentials_core::catalogue::{Attach, ErrorDialect, Format, KeyRead, TypeSpec};
use credentials_core::{SecretString, SecretValue};
use http::Method;

/// Where an OpenAI-compatible API lists its models: the cheapest authenticated read.
const OPENAI_MODELS: KeyRead = KeyRead {
    base_url: "",
    path: "/models",
    headers: &[],
    errors: ErrorDialect::Common,
};

/// Headers a user-chosen header name may not replace: they frame the HTTP exchange.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

/// Attaches `key` to `request` the way the catalogue says for the type.
pub(crate) fn attach_key(
    request: Request,
    attach: Attach,
    key: &str,
    value: &SecretValue,
) -> Result<Request, ProbeResult> {
    Ok(match attach {
        Attach::Bearer => request.header("authorization", &format!("Bearer {key}")),
        Attach::Scheme(scheme) => request.header("authorization", &format!("{scheme} {key}")),
        Attach::Header(header) => request.header(header, key),
        Attach::HeaderNamedBy(field) => match value
            .get(field)
            .map(|v| v.expose().trim())
            .filter(|v| !v.is_empty())
        {
            None => request.header("authorization", &format!("Bearer {key}")),
            Some(name) if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) => {
                return Err(ProbeResult::invalid(format!("{field} cannot be {name}")));
            }
            Some(name) => request.header(name, key),
        },
        // Not yet needed by a probed type: a key in the URL or in Basic auth needs its own
        // care (redirects, logs), SigV4 signs a whole request, and NotHttp is no header.
        other @ (Attach::Query(_) | Attach::Basic | Attach::SigV4 { .. } | Attach::NotHttp) => {
            return Err(ProbeResult::unsupported(format!(
                "the probe cannot attach a key as {other:?}"
            )));
        }
    })
}

/// Probes a provider key with the type's documented cheap read (an OpenAI-compatible API's
/// model list when `read` is `None`).
pub(crate) async fn key_read(
    config: &ProbeConfig,
    client: &HttpClient,
    spec: &TypeSpec,
    read: Option<&KeyRead>,
    value: &SecretValue,
) -> ProbeResult {
    let read = read.unwrap_or(&OPENAI_MODELS);
    let name = spec.display_name;
    let Some(key) = value.get(spec.primary_field).map(SecretString::expose) else {
        return ProbeResult::invalid(format!("the {} field is missing", spec.primary_field));
    };
    let Some(base) = config.endpoints.base_url(spec.id) else {
        return ProbeResult::unsupported(format!("no endpoint is configured for {name}"));
    };
    let request =
        Request::get(format!("{base}{}", read.path)).plain_header("accept", "application/json");
    let mut request = match attach_key(request, spec.attach, key.trim(), value) {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    for (header, value) in read.headers {
        request = request.plain_header(header, value);
    }
    match client.send(request).await {
        Ok(response) => classify(name, read.errors, &response),
        Err(e) => e.to_result(),
    }
}

/// Maps a provider's answer to an outcome.
fn classify(name: &str, errors: ErrorDialect, response: &Response) -> ProbeResult {
    let status = response.status.as_u16();
    let body = response.text().to_ascii_lowercase();
    match (errors, status) {
        (ErrorDialect::Google, 400 | 403) if body.contains("api_key_invalid") => {
            return ProbeResult::invalid(format!("{name} rejected the key (API_KEY_INVALID)"));
        }
        (ErrorDialect::ElevenLabs, 401) if body.contains("missing_permissions") => {
            return ProbeResult::forbidden(format!(
                "{name} accepted the key but it lacks the user_read permission"
            ));
        }
        _ => {}
    }
    // Several OpenAI-compatible APIs (xAI among them) answer a bad key with 400.
    if status == 400
        && [
            "incorrect api key",
            "invalid api key",
            "invalid_api_key",
            "api key not valid",
        ]
        .iter()
        .any(|needle| body.contains(needle))
    {
        return ProbeResult::invalid(format!("{name} rejected the key (HTTP 400)"));
    }
    if status == 429 && body.contains("insufficient_quota") {
        return ProbeResult::provider_error(format!(
            "{name} accepted the key but the account is out of quota (HTTP 429)"
        ));
    }
    classify_status(name, "key", status)
}

/// The common mapping of an HTTP status; `what` names the credential, e.g. `key`.
pub(crate) fn classify_status(name: &str, what: &str, status: u16) -> ProbeResult {
    match status {
        200..=299 => ProbeResult::valid(format!("{name} accepted the {what}")),
        401 => ProbeResult::invalid(format!("{name} rejected the {what} (HTTP 401)")),
        403 => ProbeResult::forbidden(format!(
            "{name} accepted the {what} but refused access (HTTP 403); check its permissions"
        )),
        429 => ProbeResult::provider_error(format!(
            "rate limited by {name} (HTTP 429); try again later"
        )),
        500..=599 => ProbeResult::provider_error(format!("provider error {status} from {name}")),
        300..=399 => ProbeResult::provider_error(format!(
            "{name} answered with a redirect (HTTP {status}) that was not followed"
        )),
        _ => ProbeResult::provider_error(format!(
            "{name} answered HTTP {status}, which does not tell whether the {what} is valid"
        )),
    }
}

/// The fields [`aws_caller_identity`] reads.
#[cfg(test)]
pub(crate) const AWS_FIELDS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "region",
    "session_token",
];

/// Amazon Bedrock: STS `GetCallerIdentity`, which every valid AWS key may call, signed with
/// SigV4 for the credential's region.
pub(crate) async fn aws_caller_identity(
    config: &ProbeConfig,
    client: &HttpClient,
    spec: &TypeSpec,
    value: &SecretValue,
) -> ProbeResult {
    let field = |name: &str| value.get(name).map(|v| v.expose().trim());
    let (Some(access_key_id), Some(secret_access_key)) =
        (field("access_key_id"), field("secret_access_key"))
    else {
        return ProbeResult::invalid("access_key_id and secret_access_key are required");
    };
    let region = field("region").unwrap_or("us-east-1");
    // The region lands in a host name.
    if !Format::Region.accepts(region) {
        return ProbeResult::invalid("region must look like us-east-1");
    }
    let Some(template) = config.endpoints.base_url(spec.id) else {
        return ProbeResult::unsupported("no endpoint is configured for AWS STS");
    };
    let mut base = template.replace("{region}", region);
    if region.starts_with("cn-") && base.ends_with(".amazonaws.com") {
        base.push_str(".cn");
    }
    let endpoint = format!("{}/", base.trim_end_matches('/'));
    let url = match crate::http::Url::parse(&endpoint) {
        Ok(url) => url,
        Err(e) => return e.to_result(),
    };
    let host = url.host_header();
    let payload = b"Action=GetCallerIdentity&Version=2011-06-15";
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let signed = sigv4::sign(
        &sigv4::SigningRequest {
            method: "POST",
            path: &url.path_and_query,
            query: &[],
            headers: &[("content-type", content_type)],
            host: &host,
            payload,
            region,
            service: "sts",
            amz_date: &sigv4::amz_date(std::time::SystemTime::now()),
        },
        &sigv4::AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token: field("session_token"),
        },
    );
    let mut request = Request::new(Method::POST, endpoint)
        .plain_header("content-type", content_type)
        .plain_header("accept", "application/xml")
        .body(&payload[..]);
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    let response = match client.send(request).await {
        Ok(response) => response,
        Err(e) => return e.to_result(),
    };
    let body = response.text();
    let code = xml_text(&body, "Code").unwrap_or_default();
    match (response.status.as_u16(), code.as_str()) {
        (200, _) => {
            // The ARN names the identity and tells the user which key this is. It comes from
            // the endpoint, so it is shown only when shaped like an ARN and free of the secrets.
            let secrets = [
                Some(access_key_id),
                Some(secret_access_key),
                field("session_token"),
            ];
            match xml_text(&body, "Arn") {
                Some(arn)
                    if arn.starts_with("arn:aws")
                        && arn.len() <= 256
                        && arn
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_/:-".contains(&b))
                        && !secrets.iter().flatten().any(|s| arn.contains(s)) =>
                {
                    ProbeResult::valid(format!("AWS accepted the access key ({arn})"))
                }
                _ => ProbeResult::valid("AWS accepted the access key"),
            }
        }
        (_, "ExpiredToken" | "ExpiredTokenException" | "RequestExpired") => {
            ProbeResult::invalid("AWS rejected the credentials: the session token has expired")
        }
        (_, "InvalidClientTokenId" | "UnrecognizedClientException") => {
            ProbeResult::invalid("AWS does not know this access key id (InvalidClientTokenId)")
        }
        (_, "SignatureDoesNotMatch") => {
            ProbeResult::invalid("AWS rejected the secret access key (SignatureDoesNotMatch)")
        }
        (_, "IncompleteSignature" | "MissingAuthenticationToken" | "InvalidAccessKeyId") => {
            ProbeResult::invalid(format!("AWS rejected the credentials ({code})"))
        }
        (403, "AccessDenied" | "") => {
            ProbeResult::forbidden("AWS accepted the key but denied GetCallerIdentity (HTTP 403)")
        }
        (400, "Throttling") => {
            ProbeResult::provider_error("rate limited by AWS STS (Throttling); try again later")
        }
        (status, _) => classify_status("AWS STS", "access key", status),
    }
}

/// The text of the first `<tag>...</tag>` element; enough for STS's small XML answers.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    let text = body[start..end].trim();
    (!text.is_empty() && text.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        .then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn xml_text_reads_sts_answers() {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>\
                    <Message>The security token included in the request is invalid.</Message>\
                    </Error></ErrorResponse>";
        assert_eq!(xml_text(body, "Code").unwrap(), "InvalidClientTokenId");
        assert_eq!(xml_text(body, "Arn"), None);
    }
}
