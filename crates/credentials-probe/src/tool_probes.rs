//! Probes of generic tool credentials that speak HTTP: an API key against its stated endpoint,
//! and OAuth 2.0 refresh tokens against their token endpoint.

use crate::http::{HttpClient, Request, Response, Url, form_escape};
use crate::outcome::ProbeResult;
use crate::providers::{attach_key, classify_status};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use credentials_core::SecretValue;
use credentials_core::catalogue::TypeSpec;

/// The fields [`api_key`] reads besides the key's header field.
#[cfg(test)]
pub(crate) const API_KEY_FIELDS: &[&str] = &["api_key", "endpoint"];
/// The fields [`oauth`] reads.
#[cfg(test)]
pub(crate) const OAUTH_FIELDS: &[&str] =
    &["token_url", "refresh_token", "client_id", "client_secret"];

/// Tools `api_key`: GET the credential's `endpoint` with the key, attached as the catalogue
/// says (`Authorization: Bearer KEY`, or `header_name: KEY` when that field is set).
pub(crate) async fn api_key(
    client: &HttpClient,
    spec: &TypeSpec,
    value: &SecretValue,
) -> ProbeResult {
    let field = |name: &str| {
        value
            .get(name)
            .map(|v| v.expose().trim())
            .filter(|v| !v.is_empty())
    };
    let Some(endpoint) = field("endpoint") else {
        return ProbeResult::unsupported(
            "set the endpoint field to a URL the key can be checked against",
        );
    };
    let Some(key) = field("api_key") else {
        return ProbeResult::invalid("the api_key field is missing");
    };
    if let Err(e) = Url::parse(endpoint) {
        return e.to_result();
    }
    let request = Request::get(endpoint).plain_header("accept", "application/json");
    let request = match attach_key(request, spec.attach, key, value) {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let response = match client.send(request).await {
        Ok(response) => response,
        Err(e) => return e.to_result(),
    };
    match response.status.as_u16() {
        status @ 200..=299 => {
            ProbeResult::valid(format!("the endpoint answered HTTP {status} with the key"))
        }
        404 => ProbeResult::provider_error(
            "the endpoint was not found (HTTP 404); check the endpoint field",
        ),
        status => classify_status("the endpoint", "key", status),
    }
}

/// Tools `oauth`: a `refresh_token` grant at `token_url`.
///
/// Some providers rotate the refresh token on every use, so a successful check can leave the
/// stored refresh token spent. Nothing from the answer is stored; the success message says when
/// the provider returned a new refresh token.
pub(crate) async fn oauth(client: &HttpClient, value: &SecretValue) -> ProbeResult {
    let field = |name: &str| {
        value
            .get(name)
            .map(|v| v.expose().trim())
            .filter(|v| !v.is_empty())
    };
    let (Some(token_url), Some(refresh_token)) = (field("token_url"), field("refresh_token"))
    else {
        return ProbeResult::unsupported(
            "set token_url and refresh_token to check an OAuth credential; an access token alone \
             cannot be checked without knowing the API it belongs to",
        );
    };
    if let Err(e) = Url::parse(token_url) {
        return e.to_result();
    }
    let client_id = field("client_id");
    let client_secret = field("client_secret");
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let first = match (client_id, client_secret) {
        // RFC 6749 §2.3.1: servers must support HTTP Basic for confidential clients.
        (Some(id), Some(secret)) => {
            let basic = STANDARD.encode(format!("{}:{}", form_escape(id), form_escape(secret)));
            token_request(token_url, &grant, &[]).header("authorization", &format!("Basic {basic}"))
        }
        (Some(id), None) => token_request(token_url, &grant, &[("client_id", id)]),
        (None, _) => token_request(token_url, &grant, &[]),
    };
    let mut response = match client.send(first).await {
        Ok(response) => response,
        Err(e) => return e.to_result(),
    };
    // Some servers take client credentials only in the form (client_secret_post). An
    // invalid_client answer consumed no token, so retrying that way is safe.
    if let (Some(id), Some(secret)) = (client_id, client_secret)
        && oauth_error(&response).as_deref() == Some("invalid_client")
    {
        let retry = token_request(
            token_url,
            &grant,
            &[("client_id", id), ("client_secret", secret)],
        );
        response = match client.send(retry).await {
            Ok(response) => response,
            Err(e) => return e.to_result(),
        };
    }
    classify_token_response(&response, refresh_token)
}

fn token_request(url: &str, grant: &[(&str, &str)], extra: &[(&str, &str)]) -> Request {
    let pairs: Vec<(&str, &str)> = grant.iter().chain(extra).copied().collect();
    Request::post(url)
        .plain_header("accept", "application/json")
        .form(&pairs)
}

fn classify_token_response(response: &Response, refresh_token: &str) -> ProbeResult {
    let status = response.status.as_u16();
    if response.status.is_success() {
        let json = response.json();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| j.get(name))
                .and_then(serde_json::Value::as_str)
        };
        if field("access_token").is_none() {
            return ProbeResult::provider_error(
                "the token endpoint answered without an access token",
            );
        }
        return match field("refresh_token") {
            Some(new) if new != refresh_token => ProbeResult::valid(
                "the refresh token works, but the provider rotated it: the stored refresh token \
                 may no longer be usable; re-authorize and store the new one",
            ),
            _ => ProbeResult::valid(
                "the token endpoint issued an access token for the refresh token (nothing was \
                 stored)",
            ),
        };
    }
    match oauth_error(response).as_deref() {
        Some("invalid_grant") => ProbeResult::invalid(
            "the refresh token was rejected (invalid_grant): it is expired, revoked or spent",
        ),
        Some("invalid_client") => {
            ProbeResult::invalid("the client credentials were rejected (invalid_client)")
        }
        Some("unauthorized_client") => {
            ProbeResult::invalid("the client may not use refresh tokens (unauthorized_client)")
        }
        Some("invalid_scope") => {
            ProbeResult::forbidden("the token endpoint refused the scope (invalid_scope)")
        }
        _ => classify_status("the token endpoint", "refresh token", status),
    }
}

/// The RFC 6749 `error` code of a token endpoint's answer, if it is a plain code.
pub(crate) fn oauth_error(response: &Response) -> Option<String> {
    let json = response.json()?;
    let code = json.get("error")?.as_str()?;
    // Only well-formed codes: the field is echoed into decisions, never into messages.
    (code.len() <= 64 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .then(|| code.to_owned())
}
