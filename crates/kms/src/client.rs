use crate::{EncryptionContext, Error, Result, pb};
use hyper_util::rt::TokioIo;
use pb::key_management_service_client::KeyManagementServiceClient;
use service_kit::metrics::{Counter, Histogram, Registry};
use std::{
    collections::HashMap,
    fmt,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tracing::Instrument;
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

/// Whether a master key or one of its versions may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Unwraps data keys; a primary version also wraps new ones.
    Enabled,
    /// Neither wraps nor unwraps.
    Disabled,
}

/// The kms's keyring as it describes itself: ids, versions and states, never material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringDescription {
    /// The key used when a request names none.
    pub default_key_id: String,
    /// Every master key, sorted by id.
    pub keys: Vec<MasterKeyDescription>,
    /// Changes whenever the kms loads its keyring (start or reload); empty from an older kms.
    pub load_id: String,
}

/// One master key of the keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKeyDescription {
    /// The key's id.
    pub key_id: String,
    /// Whether the key as a whole may be used.
    pub state: KeyState,
    /// The version new wraps use.
    pub primary_version: u32,
    /// Every version, oldest first.
    pub versions: Vec<KeyVersionDescription>,
}

/// One version of a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersionDescription {
    /// The version number, from 1.
    pub version: u32,
    /// Whether the version may be used.
    pub state: KeyState,
    /// When it was created, if the kms said.
    pub created_at: Option<SystemTime>,
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

/// Buckets of kms call latencies in seconds: a local socket answers in well under a
/// millisecond, so the low end is finer than for client-facing RPCs.
const KMS_LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The client's metric families, labelled by operation (e.g. `generate_data_key`) and error
/// kind; never by a context value.
#[derive(Debug, Clone)]
pub struct ClientMetrics {
    duration: Histogram<1>,
    errors: Counter<2>,
}

impl ClientMetrics {
    /// Registers `kms_client_request_duration_seconds` and `kms_client_errors_total`.
    pub fn register(registry: &Registry) -> Self {
        Self {
            duration: registry.histogram(
                "kms_client_request_duration_seconds",
                "Duration of calls to the kms, successful or not, by operation.",
                ["operation"],
                KMS_LATENCY_BUCKETS,
            ),
            errors: registry.counter(
                "kms_client_errors_total",
                "Failed calls to the kms, by operation and kind of failure.",
                ["operation", "kind"],
            ),
        }
    }
}

/// A span for one call to the kms: a child of the current span, and the parent of the kms's
/// own span through the `traceparent` the call carries.
macro_rules! call_span {
    ($method:literal) => {
        tracing::info_span!(
            "kms_call",
            otel.name = concat!("kms.v1.KeyManagementService/", $method),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = "kms.v1.KeyManagementService",
            rpc.method = $method,
            rpc.grpc.status_code = tracing::field::Empty,
        )
    };
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
    metrics: Option<ClientMetrics>,
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
            metrics: None,
        })
    }

    /// Records every later call's duration and failures in `metrics`.
    pub fn with_metrics(mut self, metrics: ClientMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn request<T>(&self, message: T, span: &tracing::Span) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        service_kit::inject_trace_context(span, request.metadata_mut());
        request
    }

    /// Runs one call inside `span`, and records its status on the span and in the metrics.
    async fn observe<T>(
        &self,
        operation: &'static str,
        span: tracing::Span,
        call: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        let start = Instant::now();
        let result = call.instrument(span.clone()).await;
        let elapsed = start.elapsed().as_secs_f64();
        let code = result
            .as_ref()
            .err()
            .map_or(tonic::Code::Ok, tonic::Status::code);
        span.record("rpc.grpc.status_code", code as i64);
        if code != tonic::Code::Ok {
            span.record("otel.status_code", "ERROR");
        }
        let result = result
            .map(tonic::Response::into_inner)
            .map_err(Error::from_status);
        if let Some(metrics) = &self.metrics {
            metrics.duration.observe([operation], elapsed);
            if let Err(e) = &result {
                metrics.errors.inc([operation, e.kind()]);
            }
        }
        result
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
        let span = call_span!("GenerateDataKey");
        let request = self.request(message, &span);
        let mut client = self.inner.clone();
        let call = client.generate_data_key(request);
        let mut response = self.observe("generate_data_key", span, call).await?;
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
        let span = call_span!("UnwrapDataKey");
        let request = self.request(message, &span);
        let mut client = self.inner.clone();
        let call = client.unwrap_data_key(request);
        let mut response = self.observe("unwrap_data_key", span, call).await?;
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
        let span = call_span!("RewrapDataKey");
        let request = self.request(message, &span);
        let mut client = self.inner.clone();
        let call = client.rewrap_data_key(request);
        let response = self.observe("rewrap_data_key", span, call).await?;
        Ok(RewrappedKey {
            wrapped: response.wrapped_key,
            key_id: response.key_id,
            key_version: response.key_version,
        })
    }

    /// Describes the keyring (ids, versions, states; never material).
    pub async fn describe_keys(&self) -> Result<KeyringDescription> {
        let span = call_span!("DescribeKeys");
        let request = self.request(pb::DescribeKeysRequest {}, &span);
        let mut client = self.inner.clone();
        let call = client.describe_keys(request);
        let response = self.observe("describe_keys", span, call).await?;
        keyring_description(response)
    }

    /// Whether the kms reports SERVING on `grpc.health.v1` for its key service.
    pub async fn is_serving(&self) -> Result<bool> {
        // Readiness polls this every few seconds: measured, but no span, so no trace per poll.
        let span = tracing::Span::none();
        let request = self.request(
            HealthCheckRequest {
                service: "kms.v1.KeyManagementService".into(),
            },
            &span,
        );
        let mut health = self.health.clone();
        let call = health.check(request);
        let response = self.observe("health_check", span, call).await?;
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

/// The proto's map form of a context: the one place the client leaves the shared type.
fn context_map(context: &EncryptionContext) -> HashMap<String, String> {
    context
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn key_state(state: i32) -> Result<KeyState> {
    match pb::KeyVersionState::try_from(state) {
        Ok(pb::KeyVersionState::Enabled) => Ok(KeyState::Enabled),
        Ok(pb::KeyVersionState::Disabled) => Ok(KeyState::Disabled),
        // The kms never sends an unset state: a client that guessed one could wrap under a
        // key the operator disabled.
        _ => Err(Error::BadResponse(format!("unknown key state {state}"))),
    }
}

fn keyring_description(response: pb::DescribeKeysResponse) -> Result<KeyringDescription> {
    let keys = response
        .keys
        .into_iter()
        .map(|key| {
            let versions = key
                .versions
                .into_iter()
                .map(|v| {
                    Ok(KeyVersionDescription {
                        version: v.version,
                        state: key_state(v.state)?,
                        created_at: v.create_time.and_then(|t| SystemTime::try_from(t).ok()),
                    })
                })
                .collect::<Result<_>>()?;
            Ok(MasterKeyDescription {
                state: key_state(key.state)?,
                key_id: key.key_id,
                primary_version: key.primary_version,
                versions,
            })
        })
        .collect::<Result<_>>()?;
    Ok(KeyringDescription {
        default_key_id: response.default_key_id,
        keys,
        load_id: response.keyring_load_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(version: u32, state: pb::KeyVersionState) -> pb::MasterKeyVersion {
        pb::MasterKeyVersion {
            version,
            state: state as i32,
            create_time: Some(prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn the_keyring_description_is_a_domain_value() {
        let response = pb::DescribeKeysResponse {
            default_key_id: "default".into(),
            keys: vec![pb::MasterKey {
                key_id: "default".into(),
                primary_version: 2,
                versions: vec![
                    version(1, pb::KeyVersionState::Disabled),
                    version(2, pb::KeyVersionState::Enabled),
                ],
                state: pb::KeyVersionState::Enabled as i32,
            }],
            keyring_load_id: "load-1".into(),
        };
        let described = keyring_description(response.clone()).unwrap();
        assert_eq!(described.default_key_id, "default");
        assert_eq!(described.load_id, "load-1");
        let key = &described.keys[0];
        assert_eq!(
            (key.key_id.as_str(), key.state, key.primary_version),
            ("default", KeyState::Enabled, 2)
        );
        assert_eq!(key.versions[0].state, KeyState::Disabled);
        assert_eq!(
            key.versions[1].created_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        );

        // An unset state is refused, never read as usable.
        for unset in [0, 7] {
            let mut bad = response.clone();
            bad.keys[0].versions[0].state = unset;
            assert!(matches!(
                keyring_description(bad),
                Err(Error::BadResponse(_))
            ));
            let mut bad = response.clone();
            bad.keys[0].state = unset;
            assert!(matches!(
                keyring_description(bad),
                Err(Error::BadResponse(_))
            ));
        }
    }
}
