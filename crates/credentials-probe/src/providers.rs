//! Probes of LLM, speech, image and video providers: each provider's documented cheap
//! authenticated read, with its own auth scheme, and Amazon Bedrock through STS.
//!
//! Response bodies are read only to classify an answer; they never reach a message, since some
//! providers echo part of the key back.

use crate::http::{HttpClient, Request, Response};
use crate::outcome::{ProbeConfig, ProbeResult};
use crate::sigv4;
use credentials_core::SecretValue;
use http::Method;

/// How a provider expects its key.
#[derive(Debug, Clone, Copy)]
enum Auth {
    /// `Authorization: Bearer KEY`.
    Bearer,
    /// `Authorization: SCHEME KEY`, e.g. Deepgram's `Token` and fal's `Key`.
    Scheme(&'static str),
    /// The key alone in a dedicated header, e.g. `x-api-key`.
    Header(&'static str),
}

/// How a provider's non-2xx answers are read beyond the common mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quirk {
    None,
    /// Google APIs answer a bad key with 400 and reason `API_KEY_INVALID`.
    Google,
    /// ElevenLabs answers a key lacking a permission with 401 `missing_permissions`.
    ElevenLabs,
}

/// One provider's probe: path under its base URL, auth scheme and fixed headers.
#[derive(Debug, Clone, Copy)]
struct KeyProbe {
    path: &'static str,
    auth: Auth,
    headers: &'static [(&'static str, &'static str)],
    quirk: Quirk,
}

const fn probe(path: &'static str, auth: Auth) -> KeyProbe {
    KeyProbe {
        path,
        auth,
        headers: &[],
        quirk: Quirk::None,
    }
}

/// OpenAI-compatible APIs: `GET {base}/models` with a bearer key.
const OPENAI_COMPATIBLE: &[&str] = &[
    "openai",
    "openai_audio",
    "openai_image",
    "deepseek",
    "fireworks",
    "xai",
    "together_ai",
    "mistral",
    "groq",
    "cerebras",
    "sambanova",
    "hyperbolic",
    "deepinfra",
    "novita",
    "friendli",
    "chutes",
    "zai",
    "moonshot",
    "dashscope",
];

fn key_probe(type_id: &str) -> Option<KeyProbe> {
    if OPENAI_COMPATIBLE.contains(&type_id) {
        return Some(probe("/models", Auth::Bearer));
    }
    Some(match type_id {
        // Perplexity documents no models endpoint; listing the caller's async jobs is its
        // cheapest documented authenticated read.
        "perplexity" => probe("/async/chat/completions?limit=1", Auth::Bearer),
        // OpenRouter's /models answers without a key, so it proves nothing; /key describes
        // the calling key.
        "openrouter" => probe("/key", Auth::Bearer),
        "anthropic" => KeyProbe {
            headers: &[("anthropic-version", "2023-06-01")],
            ..probe("/models?limit=1", Auth::Header("x-api-key"))
        },
        "gemini" => KeyProbe {
            quirk: Quirk::Google,
            ..probe("/models?pageSize=1", Auth::Header("x-goog-api-key"))
        },
        "cohere" => probe("/models?page_size=1", Auth::Bearer),
        "huggingface" => probe("/whoami-v2", Auth::Bearer),
        "elevenlabs" => KeyProbe {
            quirk: Quirk::ElevenLabs,
            ..probe("/user", Auth::Header("xi-api-key"))
        },
        "deepgram" => probe("/projects", Auth::Scheme("Token")),
        "replicate" => probe("/account", Auth::Bearer),
        "stability" => probe("/user/account", Auth::Bearer),
        // fal's Platform API documents its pricing endpoint as requiring a key (its model
        // list does not), so a price lookup for one public model is the cheapest real check.
        "fal" => probe(
            "/models/pricing?endpoint_id=fal-ai/flux/dev",
            Auth::Scheme("Key"),
        ),
        "runway" => KeyProbe {
            headers: &[("x-runway-version", "2024-11-06")],
            ..probe("/organization", Auth::Bearer)
        },
        "luma" => probe("/generations?limit=1", Auth::Bearer),
        _ => return None,
    })
}

/// Whether this module has a probe for the type.
pub(crate) fn handles(type_id: &str) -> bool {
    type_id == "bedrock" || type_id == "pika" || key_probe(type_id).is_some()
}

/// The type's display name from the catalogue, for messages.
pub(crate) fn display_name(type_id: &str) -> &'static str {
    credentials_core::catalogue::lookup(type_id).map_or("the provider", |t| t.display_name)
}

/// Probes a provider credential.
pub(crate) async fn validate(
    config: &ProbeConfig,
    client: &HttpClient,
    type_id: &str,
    value: &SecretValue,
) -> ProbeResult {
    match type_id {
        "bedrock" => return bedrock(config, client, value).await,
        "pika" => {
            return ProbeResult::unsupported("Pika has no public API to check a key against");
        }
        _ => {}
    }
    let Some(probe) = key_probe(type_id) else {
        return ProbeResult::unsupported(format!("no probe is known for type {type_id}"));
    };
    let name = display_name(type_id);
    let Some(key) = value.get("api_key") else {
        return ProbeResult::invalid("the api_key field is missing");
    };
    let Some(base) = config.endpoints.base_url(type_id) else {
        return ProbeResult::unsupported(format!("no endpoint is configured for {name}"));
    };
    let key = key.expose().trim();
    let mut request =
        Request::get(format!("{base}{}", probe.path)).plain_header("accept", "application/json");
    request = match probe.auth {
        Auth::Bearer => request.header("authorization", &format!("Bearer {key}")),
        Auth::Scheme(scheme) => request.header("authorization", &format!("{scheme} {key}")),
        Auth::Header(header) => request.header(header, key),
    };
    for (header, value) in probe.headers {
        request = request.plain_header(header, value);
    }
    match client.send(request).await {
        Ok(response) => classify(name, probe.quirk, &response),
        Err(e) => e.to_result(),
    }
}

/// Maps a provider's answer to an outcome.
fn classify(name: &str, quirk: Quirk, response: &Response) -> ProbeResult {
    let status = response.status.as_u16();
    let body = response.text().to_ascii_lowercase();
    match (quirk, status) {
        (Quirk::Google, 400 | 403) if body.contains("api_key_invalid") => {
            return ProbeResult::invalid(format!("{name} rejected the key (API_KEY_INVALID)"));
        }
        (Quirk::ElevenLabs, 401) if body.contains("missing_permissions") => {
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

/// Amazon Bedrock: STS `GetCallerIdentity`, which every valid AWS key may call, signed with
/// SigV4 for the credential's region.
async fn bedrock(config: &ProbeConfig, client: &HttpClient, value: &SecretValue) -> ProbeResult {
    let field = |name: &str| value.get(name).map(|v| v.expose().trim());
    let (Some(access_key_id), Some(secret_access_key)) =
        (field("access_key_id"), field("secret_access_key"))
    else {
        return ProbeResult::invalid("access_key_id and secret_access_key are required");
    };
    let region = field("region").unwrap_or("us-east-1");
    // The region lands in a host name: letters, digits and dashes only.
    if region.is_empty()
        || region.len() > 32
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return ProbeResult::invalid("region must look like us-east-1");
    }
    let Some(template) = config.endpoints.base_url("bedrock") else {
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
    fn every_keyed_provider_type_has_a_probe_or_a_reason() {
        use credentials_core::Category;
        for t in credentials_core::catalogue::all() {
            if matches!(
                t.category,
                Category::Llm | Category::Speech | Category::Image | Category::Video
            ) {
                assert!(handles(t.id), "{}", t.id);
            }
        }
    }

    #[test]
    fn xml_text_reads_sts_answers() {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>\
                    <Message>The security token included in the request is invalid.</Message>\
                    </Error></ErrorResponse>";
        assert_eq!(xml_text(body, "Code").unwrap(), "InvalidClientTokenId");
        assert_eq!(xml_text(body, "Arn"), None);
    }
}
