//! Connections, tokens and the requests themselves.

use crate::config::Cli;
use crate::rng::Rng;
use credentials_proto::credentials::v1::{
    CreateCredentialRequest, CredentialValue, ListCredentialsRequest,
    access_service_client::AccessServiceClient, credential_value::Kind,
    credentials_service_client::CredentialsServiceClient,
};
use std::time::{SystemTime, UNIX_EPOCH};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// Why loadgen stops early, and with which exit status.
#[derive(Debug)]
pub struct Failure {
    /// The process exit status.
    pub exit: u8,
    /// What to tell the operator.
    pub message: String,
}

impl Failure {
    /// A failed setup step (exit status 1).
    pub fn setup(message: impl Into<String>) -> Self {
        Self {
            exit: 1,
            message: message.into(),
        }
    }
}

/// Opens `count` HTTP/2 connections to `target` (named by its flag in messages), each eagerly
/// so that an unreachable target is found now (exit status 2) rather than as a run full of
/// errors.
pub async fn connect(
    cli: &Cli,
    flag: &str,
    target: &str,
    count: u32,
) -> Result<Vec<Channel>, Failure> {
    let endpoint = Endpoint::from_shared(target.to_owned())
        .map_err(|e| Failure::setup(format!("--{flag} {target:?} is not a URL: {e}")))?
        .connect_timeout(cli.connect_timeout)
        .timeout(cli.timeout);
    let mut channels = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let connecting = endpoint.connect();
        let channel = tokio::time::timeout(cli.connect_timeout, connecting)
            .await
            .map_err(|_| "no answer".to_owned())
            .and_then(|r| r.map_err(|e| source_chain(&e)))
            .map_err(|e| Failure {
                exit: 2,
                message: format!("cannot reach {target}: {e}"),
            })?;
        channels.push(channel);
    }
    Ok(channels)
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// The `authorization` header value for each workspace (same order as `workspaces`).
pub fn authorizations(
    cli: &Cli,
    workspaces: &[String],
) -> Result<Vec<MetadataValue<Ascii>>, Failure> {
    let header = |token: &str| {
        format!("Bearer {token}")
            .parse::<MetadataValue<Ascii>>()
            .map_err(|_| Failure::setup("the token is not a printable ASCII string"))
    };
    if let Some(token) = &cli.token {
        let value = header(token)?;
        return Ok(vec![value; workspaces.len()]);
    }
    let path = cli
        .hs256_secret_file
        .as_ref()
        .ok_or_else(|| Failure::setup("give --token or --hs256-secret-file"))?;
    let secret = zeroize::Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| Failure::setup(format!("cannot read {}: {e}", path.display())))?,
    );
    let key = auth::SigningKey::Hs256(zeroize::Zeroizing::new(secret.trim_ascii_end().to_vec()));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Failure::setup(format!("the clock is before 1970: {e}")))?
        .as_secs();
    // Valid for a day: long enough for any run, short enough not to matter if it leaks from a
    // benchmark machine.
    let ttl = 24 * 3600 + cli.duration.as_secs() + cli.warmup.as_secs();
    workspaces
        .iter()
        .map(|workspace| {
            let claims = auth::Claims {
                sub: cli.subject.clone(),
                iss: cli.issuer.clone(),
                aud: cli.audience.clone(),
                exp: now + ttl,
                nbf: Some(now),
                iat: Some(now),
                workspaces: vec![workspace.clone()],
                permissions: vec!["read".into(), "write".into(), "access".into()],
                platform_admin: false,
            };
            let token = key
                .mint(&claims)
                .map_err(|e| Failure::setup(format!("cannot mint a token: {e}")))?;
            header(&token)
        })
        .collect()
}

/// `message` with the authorization header.
pub fn authed<T>(message: T, authorization: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    request
}

/// A value shaped like a provider API key: `sk-lg-` and 40 random alphanumerics.
pub fn secret_value(rng: &mut Rng) -> CredentialValue {
    CredentialValue {
        kind: Some(Kind::Secret(format!("sk-lg-{}", rng.alphanumeric(40)))),
    }
}

/// Both service clients over one connection.
#[derive(Debug, Clone)]
pub struct Clients {
    /// CredentialsService.
    pub credentials: CredentialsServiceClient<Channel>,
    /// AccessService.
    pub access: AccessServiceClient<Channel>,
    /// The HTTP/JSON port, for http-get.
    pub http: HttpJson,
}

impl Clients {
    /// Clients over `channel`, and of the HTTP/JSON port at `http_target`.
    pub fn new(channel: Channel, http_target: &str) -> Self {
        Self {
            credentials: CredentialsServiceClient::new(channel.clone()),
            access: AccessServiceClient::new(channel),
            http: HttpJson::new(http_target),
        }
    }

    /// Creates one credential; returns its id.
    pub async fn create(
        &mut self,
        authorization: &MetadataValue<Ascii>,
        workspace: &str,
        name: String,
        credential_type: &str,
        rng: &mut Rng,
    ) -> Result<String, Status> {
        let response = self
            .credentials
            .create_credential(authed(
                CreateCredentialRequest {
                    workspace_id: workspace.to_owned(),
                    name,
                    r#type: credential_type.to_owned(),
                    description: "created by loadgen".to_owned(),
                    value: Some(secret_value(rng)),
                    ..Default::default()
                },
                authorization,
            ))
            .await?
            .into_inner();
        response
            .credential
            .map(|c| c.id)
            .ok_or_else(|| Status::internal("CreateCredential answered without a credential"))
    }

    /// Up to `limit` ids of the workspace's live credentials, newest first.
    pub async fn list_ids(
        &mut self,
        authorization: &MetadataValue<Ascii>,
        workspace: &str,
        limit: usize,
    ) -> Result<Vec<String>, Status> {
        let mut ids = Vec::new();
        let mut page_token = String::new();
        while ids.len() < limit {
            let page = self
                .credentials
                .list_credentials(authed(
                    ListCredentialsRequest {
                        workspace_id: workspace.to_owned(),
                        page_size: 500,
                        page_token,
                        ..Default::default()
                    },
                    authorization,
                ))
                .await?
                .into_inner();
            ids.extend(page.credentials.into_iter().map(|c| c.id));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        ids.truncate(limit);
        Ok(ids)
    }
}

/// The canonical name of a gRPC status code, as in the gRPC spec (`UNAVAILABLE`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A status for an operator: code name and message.
pub fn describe(status: &Status) -> String {
    format!("{}: {}", code_name(status.code()), status.message())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn minted_tokens_verify_with_the_servers_verifier() {
        let dir = std::env::temp_dir().join(format!("loadgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        // A trailing newline, as `echo` or base64 leave it: ignored like the server does.
        std::fs::write(&file, "0123456789abcdef0123456789abcdef-secret\n").unwrap();
        let cli = Cli::try_parse_from([
            "loadgen",
            "--hs256-secret-file",
            file.to_str().unwrap(),
            "--workspace",
            "w1,w2",
        ])
        .unwrap();
        let headers = authorizations(&cli, &cli.workspace_list()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(headers.len(), 2);
        let verifier = auth::Verifier::new(auth::VerifierConfig {
            issuer: "credentials-vault".into(),
            audience: "credentials-api".into(),
            leeway: std::time::Duration::from_secs(30),
        })
        .with_hs256_secret(b"0123456789abcdef0123456789abcdef-secret")
        .unwrap();
        for (header, workspace) in headers.iter().zip(["w1", "w2"]) {
            let token = header.to_str().unwrap().strip_prefix("Bearer ").unwrap();
            let principal = verifier.verify(token, SystemTime::now()).unwrap();
            assert_eq!(principal.workspaces, [workspace]);
            for p in [
                auth::Permission::Read,
                auth::Permission::Write,
                auth::Permission::Access,
            ] {
                assert!(principal.has(p));
            }
            assert!(!principal.has(auth::Permission::Admin));
        }
    }

    #[test]
    fn code_names_follow_the_spec() {
        assert_eq!(code_name(Code::Unavailable), "UNAVAILABLE");
        assert_eq!(code_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(describe(&Status::not_found("x")), "NOT_FOUND: x");
    }
}

/// A keep-alive HTTP/1.1 client of the API's HTTP/JSON port.
#[derive(Clone, Debug)]
pub struct HttpJson {
    base: String,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<bytes::Bytes>,
    >,
}

impl HttpJson {
    /// A client of `base` (http://host:port); connects on first use.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
        }
    }

    /// `GET path` with `authorization`, its body read in full. A status other than 200 is an
    /// error with the gRPC code of the answer's google.rpc.Status (UNKNOWN when it has none).
    pub async fn get(
        &self,
        path: &str,
        authorization: &MetadataValue<Ascii>,
    ) -> Result<(), Status> {
        use http_body_util::BodyExt as _;
        let request = hyper::Request::get(format!("{}{path}", self.base))
            .header("authorization", authorization.as_bytes())
            .body(http_body_util::Empty::new())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| Status::unavailable(source_chain(&e)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
            .to_bytes();
        if status == hyper::StatusCode::OK {
            return Ok(());
        }
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_i64())
            .and_then(|c| i32::try_from(c).ok())
            .map_or(Code::Unknown, Code::from_i32);
        Err(Status::new(code, format!("HTTP {status}")))
    }
}
