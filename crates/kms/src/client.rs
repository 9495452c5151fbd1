use crate::{EncryptionContext, Error, Result, pb};
use hyper_util::rt::TokioIo;
use pb::key_management_service_client::KeyManagementServiceClient;
use std::{fmt, path::PathBuf, time::Duration};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use zeroize::Zeroizing;

/// Where the kms listens.
#[derive(Clone)]
pub enum KmsEndpoint {
    /// A Unix domain socket (the sidecar default), e.g. from `unix:///run/kms/kms.sock`.
    Unix(PathBuf),
    /// TCP with mutual TLS: the client presents `cert`/`key` and trusts servers signed by `ca`.
    Tls {
        /// `https://host:port`.
        uri: String,
        /// PEM of the CA that signed the kms's server certificate.
        ca_pem: Vec<u8>,
        /// PEM of this client's certificate.
        cert_pem: Vec<u8>,
        /// PEM of this client's private key.
        key_pem: Zeroizing<Vec<u8>>,
        /// The name to check the server certificate against; the URI's host when `None`.
        server_name: Option<String>,
    },
    /// Plaintext TCP, `http://host:port`: development only.
    InsecureTcp(String),
}

impl fmt::Debug for KmsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tls { uri, .. } => write!(f, "{uri} (mutual TLS)"),
            Self::InsecureTcp(uri) => write!(f, "{uri} (plaintext)"),
        }
    }
}

impl KmsEndpoint {
    /// Parses `unix:///path` (or `unix:/path`) and `http://host:port`. TLS endpoints carry
    /// certificates and are built with [`KmsEndpoint::Tls`] directly.
    pub fn parse_plain(s: &str) -> Result<Self> {
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            if path.is_empty() {
                return Err(Error::Config(format!("{s:?} names no socket path")));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if s.starts_with("http://") {
            return Ok(Self::InsecureTcp(s.to_owned()));
        }
        Err(Error::Config(format!(
            "{s:?} is not unix:///path or http://host:port (https needs client certificates)"
        )))
    }
}

/// How to reach the kms and how long to wait for it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where the kms listens.
    pub endpoint: KmsEndpoint,
    /// Deadline of each call, sent to the kms as `grpc-timeout` too.
    pub timeout: Duration,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// A configuration with the default deadlines (2 s per call, 1 s to connect).
    pub fn new(endpoint: KmsEndpoint) -> Self {
        Self {
            endpoint,
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

/// A new data key: use `plaintext` to encrypt, store `wrapped`, let `plaintext` drop (it is
/// zeroized).
pub struct DataKey {
    /// The plaintext data key.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The self-describing wrapped key to store.
    pub wrapped: Vec<u8>,
    /// The master key that wrapped it.
    pub key_id: String,
    /// The master-key version that wrapped it.
    pub key_version: u32,
}

/// The plaintext of a wrapped data key.
pub struct UnwrappedKey {
    /// The plaintext data key.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The master key that had wrapped it.
    pub key_id: String,
    /// The master-key version that had wrapped it.
    pub key_version: u32,
}

/// A data key moved to another master-key version; the plaintext never left the kms.
#[derive(Debug, Clone)]
pub struct RewrappedKey {
    /// The new wrapped key to store.
    pub wrapped: Vec<u8>,
    /// The master key that wraps it now.
    pub key_id: String,
    /// The master-key version that wraps it now.
    pub key_version: u32,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &"<redacted>")
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for UnwrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnwrappedKey")
            .field("plaintext", &"<redacted>")
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .finish()
    }
}

/// A typed client of the kms. Cheap to clone: clones share one HTTP/2 connection.
///
/// The connection is made lazily and re-made after a failure, so a client can be built while
/// the kms is still starting; calls then fail with [`Error::Unavailable`] until it is up.
#[derive(Clone)]
pub struct KmsClient {
    inner: KeyManagementServiceClient<Channel>,
    health: tonic_health::pb::health_client::HealthClient<Channel>,
    timeout: Duration,
}

impl fmt::Debug for KmsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KmsClient {
    /// Builds a client; does not connect until the first call.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let channel = match &config.endpoint {
            KmsEndpoint::Unix(path) => {
                let path = path.clone();
                // The URI is required by the HTTP layer but ignored by this connector.
                endpoint("http://kms.local", &config)?.connect_with_connector_lazy(
                    tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    }),
                )
            }
            KmsEndpoint::Tls {
                uri,
                ca_pem,
                cert_pem,
                key_pem,
                server_name,
            } => {
                let mut tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca_pem))
                    .identity(Identity::from_pem(cert_pem, key_pem.as_slice()));
                if let Some(name) = server_name {
                    tls = tls.domain_name(name.clone());
                }
                endpoint(uri, &config)?
                    .tls_config(tls)
                    .map_err(|e| Error::Config(format!("TLS settings: {e}")))?
                    .connect_lazy()
            }
            KmsEndpoint::InsecureTcp(uri) => endpoint(uri, &config)?.connect_lazy(),
        };
        Ok(Self {
            inner: KeyManagementServiceClient::new(channel.clone()),
            health: tonic_health::pb::health_client::HealthClient::new(channel),
            timeout: config.timeout,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Asks for a fresh data key wrapped under `key_id` (the keyring's default key when `None`).
    pub async fn generate_data_key(
        &self,
        key_id: Option<&str>,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        let message = pb::GenerateDataKeyRequest {
            key_id: key_id.unwrap_or_default().to_owned(),
            encryption_context: context_map(context),
            key_length_bytes: 0,
        };
        let mut response = self
            .inner
            .clone()
            .generate_data_key(self.request(message))
            .await?
            .into_inner();
        Ok(DataKey {
            plaintext: Zeroizing::new(std::mem::take(&mut response.plaintext_key)),
            wrapped: response.wrapped_key,
            key_id: response.key_id,
            key_version: response.key_version,
        })
    }

    /// Unwraps a data key for the context it was wrapped with.
    pub async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<UnwrappedKey> {
        let message = pb::UnwrapDataKeyRequest {
            wrapped_key: wrapped.to_vec(),
            encryption_context: context_map(context),
        };
        let mut response = self
            .inner
            .clone()
            .unwrap_data_key(self.request(message))
            .await?
            .into_inner();
        Ok(UnwrappedKey {
            plaintext: Zeroizing::new(std::mem::take(&mut response.plaintext_key)),
            key_id: response.key_id,
            key_version: response.key_version,
        })
    }

    /// Moves a wrapped data key to the primary version of `destination_key_id` (its current key
    /// when `None`) without the plaintext key leaving the kms.
    pub async fn rewrap_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
        destination_key_id: Option<&str>,
    ) -> Result<RewrappedKey> {
        let message = pb::RewrapDataKeyRequest {
            wrapped_key: wrapped.to_vec(),
            encryption_context: context_map(context),
            destination_key_id: destination_key_id.unwrap_or_default().to_owned(),
        };
        let response = self
            .inner
            .clone()
            .rewrap_data_key(self.request(message))
            .await?
            .into_inner();
        Ok(RewrappedKey {
            wrapped: response.wrapped_key,
            key_id: response.key_id,
            key_version: response.key_version,
        })
    }

    /// Describes the keyring (ids, versions, states; never material).
    pub async fn describe_keys(&self) -> Result<pb::DescribeKeysResponse> {
        Ok(self
            .inner
            .clone()
            .describe_keys(self.request(pb::DescribeKeysRequest {}))
            .await?
            .into_inner())
    }

    /// Whether the kms reports SERVING on `grpc.health.v1` for its key service.
    pub async fn is_serving(&self) -> Result<bool> {
        let request = self.request(HealthCheckRequest {
            service: "kms.v1.KeyManagementService".into(),
        });
        let response = self.health.clone().check(request).await?.into_inner();
        Ok(response.status() == ServingStatus::Serving)
    }
}

fn endpoint(uri: &str, config: &ClientConfig) -> Result<Endpoint> {
    Ok(Endpoint::from_shared(uri.to_owned())
        .map_err(|e| Error::Config(format!("{uri:?}: {e}")))?
        .connect_timeout(config.connect_timeout)
        .timeout(config.timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true))
}

fn context_map(context: &EncryptionContext) -> std::collections::HashMap<String, String> {
    context
        .entries()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
