//! HTTP probes of data-warehouse credentials: BigQuery (Google's OAuth JWT-bearer grant),
//! Snowflake (its REST login request) and static files (a readable URL).

use crate::http::{HttpClient, Request, Response, Url, form_escape};
use crate::jwt;
use crate::outcome::{ProbeConfig, ProbeResult};
use crate::providers::classify_status;
use crate::tool_probes::oauth_error;
use credentials_core::SecretValue;
use credentials_core::catalogue::{Format, TypeSpec};
use serde::Deserialize;
use std::time::Duration;
use zeroize::Zeroizing;

const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const BIGQUERY_SCOPE: &str = "https://www.googleapis.com/auth/bigquery.readonly";

/// The fields [`bigquery`] reads.
#[cfg(test)]
pub(crate) const BIGQUERY_FIELDS: &[&str] = &["service_account_json"];
/// The fields [`snowflake`] reads.
#[cfg(test)]
pub(crate) const SNOWFLAKE_FIELDS: &[&str] = &[
    "account",
    "username",
    "password",
    "private_key",
    "warehouse",
    "database",
    "schema",
    "role",
];
/// The fields [`static_file`] reads.
#[cfg(test)]
pub(crate) const STATIC_FILE_FIELDS: &[&str] = &["url"];

/// The fields of a service account key file this probe reads.
#[derive(Deserialize)]
struct ServiceAccount {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<Zeroizing<String>>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// BigQuery: signs a JWT with the service account's key and exchanges it for an access token
/// (scope `bigquery.readonly`). This proves the key is live; it does not check dataset grants.
pub(crate) async fn bigquery(
    config: &ProbeConfig,
    client: &HttpClient,
    spec: &TypeSpec,
    value: &SecretValue,
) -> ProbeResult {
    let Some(json) = value.get("service_account_json") else {
        return ProbeResult::invalid("the service_account_json field is missing");
    };
    // serde_json's messages can quote the input, so its errors are never shown.
    let Ok(account) = serde_json::from_str::<ServiceAccount>(json.expose()) else {
        return ProbeResult::invalid("service_account_json is not a JSON service account key");
    };
    if account
        .kind
        .as_deref()
        .is_some_and(|k| k != "service_account")
    {
        return ProbeResult::invalid(
            "service_account_json is not a service account key (its type is not service_account)",
        );
    }
    let (Some(email), Some(private_key)) = (&account.client_email, &account.private_key) else {
        return ProbeResult::invalid("service_account_json lacks client_email or private_key");
    };
    let key = match jwt::load_rsa_key(private_key) {
        Ok(key) => key,
        Err(reason) => return ProbeResult::invalid(format!("service_account_json: {reason}")),
    };
    let token_uri = account.token_uri.as_deref().unwrap_or(GOOGLE_TOKEN_URI);
    let now = jwt::unix_now();
    let claims = serde_json::json!({
        "iss": email,
        "scope": BIGQUERY_SCOPE,
        "aud": token_uri,
        "iat": now,
        "exp": now + 3600,
    });
    let assertion = match jwt::sign_rs256(&key, account.private_key_id.as_deref(), &claims) {
        Ok(assertion) => assertion,
        Err(reason) => return ProbeResult::invalid(format!("service_account_json: {reason}")),
    };
    // token_uri comes from the user's JSON: it goes through the egress guard like any URL.
    let target = config.endpoints.base_url(spec.id).unwrap_or(token_uri);
    let request = Request::post(target)
        .plain_header("accept", "application/json")
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ]);
    let response = match client.send(request).await {
        Ok(response) => response,
        Err(e) => return e.to_result(),
    };
    let status = response.status.as_u16();
    if response.status.is_success() {
        return match response.json().and_then(|j| j.get("access_token").cloned()) {
            Some(serde_json::Value::String(_)) => ProbeResult::valid(
                "Google issued an access token for the service account (BigQuery read scope)",
            ),
            _ => ProbeResult::provider_error(
                "Google's token endpoint answered without an access token",
            ),
        };
    }
    match oauth_error(&response).as_deref() {
        Some("invalid_grant") => ProbeResult::invalid(
            "Google rejected the service account key (invalid_grant): the key may be deleted, \
             disabled or the account gone",
        ),
        Some("invalid_client" | "unauthorized_client") => {
            ProbeResult::invalid("Google rejected the service account (invalid_client)")
        }
        Some("invalid_scope") => ProbeResult::forbidden(
            "Google refused the BigQuery scope for this service account (invalid_scope)",
        ),
        _ => classify_status("Google's token endpoint", "service account key", status),
    }
}

/// Snowflake: the REST login request its connectors use. Password logins send the password;
/// key-pair logins send an RS256 JWT (Snowflake's documented key-pair JWT) as `SNOWFLAKE_JWT`.
/// A successful login's session is closed again, best effort.
pub(crate) async fn snowflake(
    config: &ProbeConfig,
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
    let (Some(account), Some(user)) = (field("account"), field("username")) else {
        return ProbeResult::invalid("account and username are required");
    };
    // The account lands in a host name.
    if !Format::Account.accepts(account) {
        return ProbeResult::invalid("account must be an account identifier like myorg-myaccount");
    }
    let Some(template) = config.endpoints.base_url(spec.id) else {
        return ProbeResult::unsupported("no endpoint is configured for Snowflake");
    };
    // Snowflake accepts hyphens for underscores in host names, and TLS names want them.
    let host_account = account.to_ascii_lowercase().replace('_', "-");
    let base = template.replace("{account}", &host_account);
    // Connectors send the account without any region suffix, in upper case.
    let account_name = account
        .split('.')
        .next()
        .unwrap_or(account)
        .to_ascii_uppercase();

    let mut data = serde_json::json!({
        "CLIENT_APP_ID": "CredentialsVault",
        "CLIENT_APP_VERSION": env!("CARGO_PKG_VERSION"),
        "ACCOUNT_NAME": account_name,
        "LOGIN_NAME": user,
        "CLIENT_ENVIRONMENT": { "APPLICATION": "credentials-vault" },
    });
    if let Some(password) = field("password") {
        data["PASSWORD"] = serde_json::Value::from(password);
    } else if let Some(private_key) = field("private_key") {
        let key = match jwt::load_rsa_key(private_key) {
            Ok(key) => key,
            Err(reason) => return ProbeResult::invalid(format!("private_key: {reason}")),
        };
        let qualified_user = format!("{account_name}.{}", user.to_ascii_uppercase());
        let now = jwt::unix_now();
        let claims = serde_json::json!({
            "iss": format!("{qualified_user}.{}", jwt::public_key_fingerprint(&key)),
            "sub": qualified_user,
            "iat": now,
            "exp": now + 600,
        });
        let token = match jwt::sign_rs256(&key, None, &claims) {
            Ok(token) => token,
            Err(reason) => return ProbeResult::invalid(format!("private_key: {reason}")),
        };
        data["AUTHENTICATOR"] = serde_json::Value::from("SNOWFLAKE_JWT");
        data["TOKEN"] = serde_json::Value::from(token);
    } else {
        return ProbeResult::invalid("set password or private_key");
    }
    let body = Zeroizing::new(serde_json::json!({ "data": data }).to_string());

    let mut query = Vec::new();
    for (field_name, param) in [
        ("warehouse", "warehouse"),
        ("database", "databaseName"),
        ("schema", "schemaName"),
        ("role", "roleName"),
    ] {
        if let Some(v) = field(field_name) {
            query.push(format!("{param}={}", form_escape(v)));
        }
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let request = Request::post(format!("{base}/session/v1/login-request{query}"))
        .plain_header("content-type", "application/json")
        .plain_header("accept", "application/json")
        .body(body.as_bytes().to_vec());
    let response = match client.send(request).await {
        Ok(response) => response,
        Err(e) => return e.to_result(),
    };
    if !response.status.is_success() {
        return classify_status("Snowflake", "login", response.status.as_u16());
    }
    let Some(json) = response.json() else {
        return ProbeResult::provider_error("Snowflake answered the login with something not JSON");
    };
    if json.get("success").and_then(serde_json::Value::as_bool) == Some(true) {
        if let Some(token) = json
            .pointer("/data/token")
            .and_then(serde_json::Value::as_str)
        {
            logout(client, &base, token).await;
        }
        return ProbeResult::valid("Snowflake accepted the login");
    }
    let code = match json.get("code") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let code: String = code.chars().filter(char::is_ascii_digit).take(9).collect();
    match code.as_str() {
        "390100" => ProbeResult::invalid(
            "Snowflake rejected the login: incorrect username or password (390100)",
        ),
        "390144" => ProbeResult::invalid(
            "Snowflake rejected the key-pair JWT (390144): is the public key set on the user?",
        ),
        "" => ProbeResult::provider_error("Snowflake refused the login without a code"),
        code => ProbeResult::provider_error(format!("Snowflake refused the login (code {code})")),
    }
}

/// Closes the session a successful probe opened, best effort and briefly: sessions also expire.
async fn logout(client: &HttpClient, base: &str, token: &str) {
    let request = Request::post(format!("{base}/session?delete=true"))
        .plain_header("accept", "application/json")
        .header("authorization", &format!("Snowflake Token=\"{token}\""));
    let _ = tokio::time::timeout(Duration::from_secs(2), client.send(request)).await;
}

/// Static file: the URL must be readable. HEAD first; method-bound signed URLs (S3, GCS) refuse
/// HEAD, so anything but success or a plain "not found" is retried as a one-byte ranged GET.
pub(crate) async fn static_file(client: &HttpClient, value: &SecretValue) -> ProbeResult {
    let Some(url) = value.get("url") else {
        return ProbeResult::invalid("the url field is missing");
    };
    let url = url.expose().trim();
    if let Some(result) = refuse_non_http(url) {
        return result;
    }
    if let Err(e) = Url::parse(url) {
        return e.to_result();
    }
    let head = match client.send(Request::head(url)).await {
        Ok(response) => response,
        Err(e) => return e.to_result(),
    };
    let status = head.status.as_u16();
    if head.status.is_success() || matches!(status, 404 | 410 | 429 | 500..=599) {
        return classify_file(&head);
    }
    let get = Request::get(url).plain_header("range", "bytes=0-0");
    match client.send(get).await {
        Ok(response) => classify_file(&response),
        Err(e) => e.to_result(),
    }
}

/// Local paths, `file:` URLs and non-http schemes are not probed.
fn refuse_non_http(url: &str) -> Option<ProbeResult> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return None;
    }
    let local = lower.starts_with("file:")
        || url.starts_with(['/', '.', '~', '\\'])
        || url.as_bytes().get(1..3) == Some(b":\\");
    if local {
        return Some(ProbeResult::unsupported(
            "the service does not read local files; use an http(s) URL",
        ));
    }
    match url.split_once("://") {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme.len() <= 16
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+') =>
        {
            Some(ProbeResult::unsupported(format!(
                "{scheme}:// URLs cannot be checked; only http(s) URLs can"
            )))
        }
        _ => Some(ProbeResult::invalid("the url is not a valid http(s) URL")),
    }
}

fn classify_file(response: &Response) -> ProbeResult {
    let status = response.status.as_u16();
    match status {
        200..=299 => ProbeResult::valid(format!("the file is readable (HTTP {status})")),
        // Asked for the first byte of an empty file: it exists and is readable.
        416 => ProbeResult::valid("the file is readable (empty)"),
        401 => ProbeResult::invalid("the server refused the URL's credentials (HTTP 401)"),
        403 if response.text().to_ascii_lowercase().contains("expired") => {
            ProbeResult::invalid("the signed URL has expired (HTTP 403)")
        }
        403 => ProbeResult::forbidden("the server refused access to the file (HTTP 403)"),
        404 | 410 => ProbeResult::provider_error(format!("the file was not found (HTTP {status})")),
        _ => classify_status("the file server", "URL", status),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::outcome::ValidationOutcome;

    #[test]
    fn local_and_foreign_urls_are_refused() {
        for (url, outcome) in [
            ("/etc/passwd", ValidationOutcome::UnsupportedType),
            ("file:///etc/passwd", ValidationOutcome::UnsupportedType),
            ("./data.csv", ValidationOutcome::UnsupportedType),
            ("C:\\data.csv", ValidationOutcome::UnsupportedType),
            ("s3://bucket/key", ValidationOutcome::UnsupportedType),
            ("SECRET-not-a-url", ValidationOutcome::InvalidCredentials),
        ] {
            let result = refuse_non_http(url).unwrap();
            assert_eq!(result.outcome, outcome, "{url}");
            assert!(!result.message.contains("SECRET"));
        }
        assert!(refuse_non_http("HTTPS://example.com/x").is_none());
    }
}
