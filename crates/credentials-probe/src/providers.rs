//! Probes of LLM, speech, image and video providers, vector stores and the keyed tools: the
//! cheap authenticated read the catalogue declares for each, with the key attached as the
//! catalogue says, and Amazon Bedrock through STS. What each answer means (the shared error
//! bodies, each [`ErrorDialect`]) lives here.
//!
//! The vector stores and tools read the endpoint each provider documents as its cheapest
//! authenticated read (checked against the providers' documentation; none writes or spends):
//!
//! | type | read | key | refusals |
//! | --- | --- | --- | --- |
//! | pinecone | `GET https://api.pinecone.io/indexes` (List indexes), `X-Pinecone-API-Version: 2025-04` | `Api-Key` | 401 invalid, 403 forbidden |
//! | qdrant | `GET {url}/collections` (List collections) | `api-key` | 401 unknown key, 403 known key not allowed (Qdrant's "Solving common errors") |
//! | weaviate | `GET {url}/v1/schema` (its schema; `/v1/meta` may answer anonymously) | Bearer | 401, 403 under RBAC |
//! | milvus | `POST {url}/v2/vectordb/collections/list` with `{}` (REST v2) | Bearer `user:password`, or a Zilliz API key | HTTP 200 with `code` 1800 unauthenticated, `permission deny` forbidden ([`ErrorDialect::Milvus`]) |
//! | chroma | `GET {url}/api/v2/auth/identity` | `x-chroma-token` | 401, 403 |
//! | airtable | `GET https://api.airtable.com/v0/meta/whoami` | Bearer | 401 `AUTHENTICATION_REQUIRED`, 403 `INVALID_PERMISSIONS...` |
//! | notion | `GET https://api.notion.com/v1/users/me`, `Notion-Version: 2022-06-28` | Bearer | 401 `unauthorized`, 403 `restricted_resource` |
//! | confluence | `GET {site_url}/wiki/rest/api/user/current` (Confluence Cloud) | Basic `email:api_token` | 401, 403 |
//! | serper | `GET https://google.serper.dev/account` (the credit balance: Serper's public reference lists only the search endpoints, each spending a credit; this read is the one integrators use to check a key for free) | `X-API-KEY` | 403 `Unauthorized.` is a bad key, 400 `Not enough credits` ([`ErrorDialect::Serper`]) |
//! | serpapi | `GET https://serpapi.com/account.json?api_key=` (the Account API, free) | query `api_key` | 401 |
//!
//! An instance URL (`url`, `site_url`) is the value's own destination field: parsed again here
//! and dialled, like every other probe, only through the guarded client.
//!
//! Response bodies are read only to classify an answer; they never reach a message, since some
//! providers echo part of the key back.

use crate::http::{HttpClient, Request, Response};
use crate::outcome::{ProbeConfig, ProbeResult};
use crate::sigv4;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use credentials_core::SecretValue;
use credentials_core::catalogue::{Attach, ErrorDialect, Format, KeyRead, TypeSpec};
use http::Method;

/// Where an OpenAI-compatible API lists its models: the cheapest authenticated read.
const OPENAI_MODELS: KeyRead = KeyRead {
    base_url: "",
    path: "/models",
    headers: &[],
    errors: ErrorDialect::Common,
    body: None,
    discovery: None,
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
        // In the URL: the request is marked as carrying a credential (so no redirect to
        // another origin is followed), and no message ever shows a URL's query.
        Attach::Query(param) => request.secret_query(param, key),
        Attach::BasicUser(field) => {
            let Some(user) = value
                .get(field)
                .map(|v| v.expose().trim())
                .filter(|v| !v.is_empty())
            else {
                return Err(ProbeResult::invalid(format!(
                    "the {field} field is missing"
                )));
            };
            let basic = STANDARD.encode(format!("{user}:{key}"));
            request.header("authorization", &format!("Basic {basic}"))
        }
        Attach::BearerUserKey(field) => match value
            .get(field)
            .map(|v| v.expose().trim())
            .filter(|v| !v.is_empty())
        {
            Some(user) => request.header("authorization", &format!("Bearer {user}:{key}")),
            None => request.header("authorization", &format!("Bearer {key}")),
        },
        // Not yet needed by a probed type: a key alone in Basic auth, SigV4 signs a whole
        // request, and NotHttp is no header.
        other @ (Attach::Basic | Attach::SigV4 { .. } | Attach::NotHttp) => {
            return Err(ProbeResult::unsupported(format!(
                "the probe cannot attach a key as {other:?}"
            )));
        }
    })
}

/// Probes a provider key with the type's documented cheap read (an OpenAI-compatible API's
/// model list when `read` is `None`), at the provider's base URL or, with `url_field`, at the
/// instance URL the value holds.
pub(crate) async fn key_read(
    config: &ProbeConfig,
    client: &HttpClient,
    spec: &TypeSpec,
    read: Option<&KeyRead>,
    url_field: Option<&str>,
    value: &SecretValue,
) -> ProbeResult {
    let read = read.unwrap_or(&OPENAI_MODELS);
    let request = match keyed_request(config, spec, read, url_field, read.path, read.body, value) {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    match client.send(request).await {
        Ok(response) => classify(spec.display_name, read.errors, &response),
        Err(e) => e.to_result(),
    }
}

/// A request to `path` under the type's base URL (the configured provider URL, or the URL in
/// the value's `url_field`) with the key attached as the catalogue says and the read's fixed
/// headers; a POST of `body` when one is given. A refusal is the probe's result.
pub(crate) fn keyed_request(
    config: &ProbeConfig,
    spec: &TypeSpec,
    read: &KeyRead,
    url_field: Option<&str>,
    path: &str,
    body: Option<&str>,
    value: &SecretValue,
) -> Result<Request, ProbeResult> {
    let name = spec.display_name;
    let Some(key) = value
        .get(spec.primary_field)
        .map(|k| k.expose().trim())
        .filter(|k| !k.is_empty())
    else {
        return Err(ProbeResult::invalid(format!(
            "the {} field is missing",
            spec.primary_field
        )));
    };
    let base = match url_field {
        // The value's own instance: a destination field, checked as a URL on write and
        // parsed again here; the guarded client resolves and checks its host.
        Some(field) => {
            let Some(url) = value
                .get(field)
                .map(|v| v.expose().trim())
                .filter(|v| !v.is_empty())
            else {
                return Err(ProbeResult::invalid(format!(
                    "set the {field} field to the URL of your {name} instance"
                )));
            };
            crate::http::Url::parse(url).map_err(|e| e.to_result())?;
            url.split(['?', '#'])
                .next()
                .unwrap_or(url)
                .trim_end_matches('/')
                .to_owned()
        }
        None => match config.endpoints.base_url(spec.id) {
            Some(base) => base.to_owned(),
            None => {
                return Err(ProbeResult::unsupported(format!(
                    "no endpoint is configured for {name}"
                )));
            }
        },
    };
    let url = format!("{base}{path}");
    let request = match body {
        Some(body) => Request::post(url)
            .plain_header("content-type", "application/json")
            .body(body.as_bytes().to_vec()),
        None => Request::get(url),
    }
    .plain_header("accept", "application/json");
    let mut request = attach_key(request, spec.attach, key, value)?;
    for (header, value) in read.headers {
        request = request.plain_header(header, value);
    }
    Ok(request)
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
        (ErrorDialect::Serper, 403) if body.contains("unauthorized") => {
            return ProbeResult::invalid(format!("{name} rejected the key (HTTP 403)"));
        }
        (ErrorDialect::Serper, 400) if body.contains("not enough credits") => {
            return ProbeResult::provider_error(format!(
                "{name} accepted the key but the account has no credits left"
            ));
        }
        (ErrorDialect::Milvus, 200..=299) => {
            if let Some(refused) = milvus_refusal(name, response) {
                return refused;
            }
        }
        (ErrorDialect::Milvus, 401 | 403) if body.contains("permission deny") => {
            return ProbeResult::forbidden(format!(
                "{name} accepted the credentials but denied listing collections (permission deny)"
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

/// Milvus answers many refusals with HTTP 200 and a non-zero `code`: 1800 (and 2 in older
/// releases) for a caller that has not authenticated, `permission deny` messages for a missing
/// privilege. `None` for a success (`code` 0). Only the code is shown, never the message.
pub(crate) fn milvus_refusal(name: &str, response: &Response) -> Option<ProbeResult> {
    let json = response.json()?;
    let code = json.get("code")?.as_i64()?;
    if code == 0 || code == 200 {
        return None;
    }
    let message = json
        .get("message")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    Some(if message.contains("permission deny") {
        ProbeResult::forbidden(format!(
            "{name} accepted the credentials but denied listing collections (code {code})"
        ))
    } else if code == 1800
        || message.contains("authenticat")
        || message.contains("password")
        || message.contains("token")
    {
        ProbeResult::invalid(format!("{name} rejected the credentials (code {code})"))
    } else {
        ProbeResult::provider_error(format!("{name} answered with error code {code}"))
    })
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
