//! End-to-end tests of what only the real binaries show: traces across the API and the kms
//! (received by an in-process OTLP collector), the Prometheus metrics of both admin ports,
//! SIGTERM (alone and under load), health as the process reports it while its kms goes away,
//! and a re-wrap sweep that survives SIGKILL. The API's behaviour otherwise is tested
//! in-process (`crates/credentials-api/tests/api/`).

#![allow(clippy::unwrap_used)]

use credentials_proto::credentials::v1 as pb;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};
use testkit::stack::{ALL, by_id, by_id_in, create_many, on, rewrap_status, wait_for_sweep};
use tests::{Stack, StackOptions, authed, http_get, send_signal, wait_until};
use tonic::{Code, Request, Response, Status, transport::Channel};

/// A create request for an openai credential holding `value`.
fn openai(name: &str, value: &str) -> pb::CreateCredentialRequest {
    testkit::stack::create(name, "openai", testkit::stack::secret(value))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// A random marker that must never leave the vault except through AccessCredential.
fn marker() -> String {
    format!("sk-marker-{:016x}{:016x}", rand_u64(), rand_u64())
}

/// A random id that names no credential.
fn random_id() -> String {
    uuid::Uuid::from_u64_pair(rand_u64(), rand_u64()).to_string()
}

// ---------------------------------------------------------------------------------------------
// Traces

/// A span as received, with the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn attr(&self, key: &str) -> Option<&Value> {
        attr(&self.span.attributes, key)
    }

    fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

/// An in-process OTLP/gRPC collector: keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| attr(&r.attributes, "service.name"))
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Serves on 127.0.0.1:0; returns the collector and its `http://` endpoint.
    async fn start() -> (Self, String) {
        let collector = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(server);
        (collector, endpoint)
    }

    fn find(&self, service: &str, name: &str, kind: SpanKind) -> Option<Received> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.service == service && r.span.name == name && r.span.kind == kind as i32)
            .cloned()
    }

    /// The span `name` of `service` in the trace `trace_id` (hex).
    fn find_in_trace(&self, service: &str, name: &str, trace_id: &str) -> Option<Received> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .find(|r| {
                r.service == service && r.span.name == name && hex(&r.span.trace_id) == trace_id
            })
            .cloned()
    }

    fn everything(&self) -> String {
        format!("{:?}", self.spans.lock().unwrap())
    }
}

/// `GET path` on the API's HTTP/JSON port with `headers`: the status and the body.
async fn http_get_with(addr: &str, path: &str, headers: &[(&str, String)]) -> (u16, String) {
    use http_body_util::BodyExt as _;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::get(path).header("host", addr);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = sender
        .send_request(
            request
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_is_one_trace_across_the_api_and_the_kms() {
    let (collector, endpoint) = Collector::start().await;
    let stack = Stack::start_with_options(StackOptions {
        env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "50".into()),
        ],
        ..StackOptions::default()
    })
    .await;
    assert!(stack.api.logs().contains("exporting traces over OTLP"));
    assert!(stack.kms.logs().contains("exporting traces over OTLP"));
    let token = stack.token(&["trace-ws"], ALL);
    let secret = marker();

    // The caller's own trace: the API's span must join it.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = authed(openai("Traced", &secret), &token);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{caller_trace}-{caller_span}-01")
            .parse()
            .unwrap(),
    );
    let created = stack
        .management()
        .await
        .create_credential(request)
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();

    const CREATE: &str = "credentials.v1.CredentialsService/CreateCredential";
    const GENERATE: &str = "kms.v1.KeyManagementService/GenerateDataKey";
    let arrived = wait_until(Duration::from_secs(15), || {
        std::future::ready(
            collector
                .find("credentials-api", CREATE, SpanKind::Server)
                .is_some()
                && collector
                    .find("credentials-api", GENERATE, SpanKind::Client)
                    .is_some()
                && collector.find("kms", GENERATE, SpanKind::Server).is_some(),
        )
    })
    .await;
    assert!(
        arrived,
        "spans missing; received: {}\napi log:\n{}\nkms log:\n{}",
        collector.everything(),
        stack.api.logs(),
        stack.kms.logs()
    );
    let api_rpc = collector
        .find("credentials-api", CREATE, SpanKind::Server)
        .unwrap();
    let api_call = collector
        .find("credentials-api", GENERATE, SpanKind::Client)
        .unwrap();
    let kms_rpc = collector.find("kms", GENERATE, SpanKind::Server).unwrap();

    // One trace: caller -> API RPC -> API's kms call -> kms RPC.
    assert_eq!(hex(&api_rpc.span.trace_id), caller_trace);
    assert_eq!(hex(&api_rpc.span.parent_span_id), caller_span);
    assert_eq!(api_call.span.trace_id, api_rpc.span.trace_id);
    assert_eq!(api_call.span.parent_span_id, api_rpc.span.span_id);
    assert_eq!(kms_rpc.span.trace_id, api_rpc.span.trace_id);
    assert_eq!(kms_rpc.span.parent_span_id, api_call.span.span_id);

    // Attributes: method, ids (not secrets), status code.
    assert_eq!(api_rpc.str_attr("rpc.method"), Some("CreateCredential"));
    assert_eq!(api_rpc.str_attr("workspace_id"), Some("trace-ws"));
    assert_eq!(api_rpc.str_attr("credential_id"), Some(created.id.as_str()));
    assert_eq!(api_rpc.str_attr("code"), Some("OK"));
    assert_eq!(
        api_rpc.attr("rpc.grpc.status_code"),
        Some(&Value::IntValue(0))
    );
    assert_eq!(kms_rpc.str_attr("rpc.method"), Some("GenerateDataKey"));
    assert_eq!(kms_rpc.str_attr("workspace_id"), Some("trace-ws"));
    // The kms generated the workspace's write seed, whose context names no credential.
    assert_eq!(kms_rpc.str_attr("credential_id"), None);
    assert_eq!(kms_rpc.str_attr("code"), Some("OK"));

    // A failing call records its code too.
    let missing = random_id();
    let err = stack
        .management()
        .await
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: missing,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let recorded = wait_until(Duration::from_secs(15), || {
        std::future::ready(
            collector
                .find(
                    "credentials-api",
                    "credentials.v1.CredentialsService/GetCredential",
                    SpanKind::Server,
                )
                .is_some_and(|r| r.str_attr("code") == Some("NOT_FOUND")),
        )
    })
    .await;
    assert!(recorded, "received: {}", collector.everything());

    // An HTTP/JSON request: its http span (named by route template, never by id) joins the
    // caller's trace, and the RPC it becomes is the http span's child.
    let http_trace = "0af7651916cd43dd8448eb211c80319c";
    let http_caller = "b7ad6b7169203331";
    let addr = stack.api.http_addr().await;
    let (status, body) = http_get_with(
        &addr,
        &format!("/v1/workspaces/trace-ws/credentials/{}", created.id),
        &[
            ("authorization", format!("Bearer {token}")),
            ("traceparent", format!("00-{http_trace}-{http_caller}-01")),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    const ROUTE: &str = "GET /v1/workspaces/{workspace_id}/credentials/{id}";
    let arrived = wait_until(Duration::from_secs(15), || {
        std::future::ready(
            collector
                .find("credentials-api", ROUTE, SpanKind::Server)
                .is_some()
                && collector
                    .find_in_trace(
                        "credentials-api",
                        "credentials.v1.CredentialsService/GetCredential",
                        http_trace,
                    )
                    .is_some(),
        )
    })
    .await;
    assert!(arrived, "received: {}", collector.everything());
    let http_span = collector
        .find("credentials-api", ROUTE, SpanKind::Server)
        .unwrap();
    let rpc_span = collector
        .find_in_trace(
            "credentials-api",
            "credentials.v1.CredentialsService/GetCredential",
            http_trace,
        )
        .unwrap();
    assert_eq!(hex(&http_span.span.trace_id), http_trace);
    assert_eq!(hex(&http_span.span.parent_span_id), http_caller);
    assert_eq!(rpc_span.span.parent_span_id, http_span.span.span_id);
    assert_eq!(
        http_span.str_attr("http.route"),
        Some("/v1/workspaces/{workspace_id}/credentials/{id}")
    );
    assert_eq!(
        http_span.attr("http.response.status_code"),
        Some(&Value::IntValue(200))
    );
    assert_eq!(rpc_span.str_attr("code"), Some("OK"));
    assert!(
        !collector
            .everything()
            .contains(&format!("credentials/{}", created.id)),
        "a path with an id in a span"
    );

    // Never a value or a token in any span.
    let everything = collector.everything();
    assert!(!everything.contains(&secret));
    assert!(!everything.contains(&token));
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// A parsed Prometheus text exposition.
#[derive(Debug, Default)]
struct Exposition {
    types: HashMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    /// Parses `text`, checking that every sample belongs to a family declared before it.
    fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                out.types.insert(name.into(), kind.into());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
                None => (series, BTreeMap::new()),
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix)
                        .filter(|f| out.types.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(out.types.contains_key(family), "no TYPE before {line:?}");
            out.samples.push((name.into(), labels, value));
        }
        out
    }

    fn kind(&self, family: &str) -> Option<&str> {
        self.types.get(family).map(String::as_str)
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
    }

    fn has_samples(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().unwrap() {
                (_, '\\') => match chars.next().unwrap().1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// Whether `text` holds anything shaped like a UUID (8-4-4-4-12 hex digits).
fn has_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(36).any(|w| {
        w.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
    })
}

async fn scrape(addr: &str) -> (String, Exposition) {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    let parsed = Exposition::parse(&body);
    (body, parsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ports_serve_metrics_without_ids_or_secrets() {
    let admin = || vec!["--admin-addr".to_owned(), "127.0.0.1:0".to_owned()];
    let mut stack = Stack::start_with_options(StackOptions {
        api_args: admin(),
        kms_args: admin(),
        ..StackOptions::default()
    })
    .await;
    // No OTLP endpoint: no exporter.
    assert!(!stack.api.logs().contains("exporting traces"));
    assert!(!stack.kms.logs().contains("exporting traces"));
    const WORKSPACE: &str = "metrics-ws-7d1e";
    let token = stack.token(&[WORKSPACE], ALL);
    let secret = marker();
    let mut m = stack.management().await;
    let mut a = stack.access().await;

    // Traffic: creates, a read of the plaintext, a missing id, a call without a token.
    let mut ids = Vec::new();
    for name in ["first", "second", "third"] {
        let created = m
            .create_credential(authed(openai(name, &secret), &token))
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        ids.push(created.id);
    }
    a.access_credential(authed(by_id(&ids[0]), &token))
        .await
        .unwrap();
    let missing = random_id();
    let err = m
        .get_credential(authed(
            pb::GetCredentialRequest {
                id: missing.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = m
        .list_credentials(pb::ListCredentialsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // The kms's side, before anything restarts it.
    let kms_addr = stack.kms.admin_addr().await;
    let (kms_text, kms) = scrape(&kms_addr).await;
    const KMS: &str = "kms.v1.KeyManagementService";
    assert_eq!(kms.kind("grpc_server_requests_total"), Some("counter"));
    assert_eq!(
        kms.kind("grpc_server_request_duration_seconds"),
        Some("histogram")
    );
    assert_eq!(
        kms.value(
            "grpc_server_requests_total",
            &[
                ("service", KMS),
                ("method", "GenerateDataKey"),
                ("code", "OK")
            ]
        ),
        // Three creates in one workspace: one write seed, asked for by the first.
        Some(1.0)
    );
    assert_eq!(
        kms.value(
            "grpc_server_requests_total",
            &[
                ("service", KMS),
                ("method", "UnwrapDataKey"),
                ("code", "OK")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        kms.value(
            "grpc_server_request_duration_seconds_count",
            &[("service", KMS), ("method", "GenerateDataKey")]
        ),
        Some(1.0)
    );
    assert_eq!(
        kms.value(
            "grpc_server_request_duration_seconds_bucket",
            &[("method", "GenerateDataKey"), ("le", "+Inf")]
        ),
        Some(1.0)
    );
    assert_eq!(kms.kind("kms_keyring_reloads_total"), Some("counter"));
    assert_eq!(kms.kind("kms_keyring_versions"), Some("gauge"));
    assert_eq!(
        kms.value(
            "kms_keyring_versions",
            &[("key_id", "default"), ("state", "primary")]
        ),
        Some(1.0)
    );

    // A kms outage shows up on the API's side as client errors. The credential read above
    // would be answered from the data-key cache; one not read yet needs the kms.
    stack.kms.stop().await;
    let err = a
        .access_credential(authed(by_id(&ids[1]), &token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    stack.restart_kms().await;

    let (api_text, api) = scrape(&stack.api.admin_addr().await).await;
    const MGMT: &str = "credentials.v1.CredentialsService";
    for (family, kind) in [
        ("grpc_server_requests_total", "counter"),
        ("grpc_server_request_duration_seconds", "histogram"),
        ("kms_client_request_duration_seconds", "histogram"),
        ("kms_client_errors_total", "counter"),
        ("db_pool_connections", "gauge"),
        ("credentials_by_master_key_version", "gauge"),
        ("validation_outcomes_total", "counter"),
        ("auth_token_cache_lookups_total", "counter"),
        ("auth_token_cache_entries", "gauge"),
    ] {
        assert_eq!(api.kind(family), Some(kind), "{family}:\n{api_text}");
    }
    // Every call above carried the same token: verified once, then answered from memory.
    let lookups = |result: &str| api.value("auth_token_cache_lookups_total", &[("result", result)]);
    assert!(lookups("hit") >= Some(4.0), "{api_text}");
    assert!(lookups("miss") >= Some(1.0), "{api_text}");
    assert!(
        api.value("auth_token_cache_entries", &[]) >= Some(1.0),
        "{api_text}"
    );
    let requests = |method: &str, code: &str| {
        api.value(
            "grpc_server_requests_total",
            &[("service", MGMT), ("method", method), ("code", code)],
        )
    };
    assert_eq!(requests("CreateCredential", "OK"), Some(3.0));
    assert_eq!(requests("GetCredential", "NOT_FOUND"), Some(1.0));
    assert_eq!(requests("ListCredentials", "UNAUTHENTICATED"), Some(1.0));
    assert_eq!(
        api.value(
            "grpc_server_requests_total",
            &[
                ("service", "credentials.v1.AccessService"),
                ("method", "AccessCredential"),
                ("code", "UNAVAILABLE")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        api.value(
            "grpc_server_request_duration_seconds_count",
            &[("service", MGMT), ("method", "CreateCredential")]
        ),
        Some(3.0)
    );
    assert_eq!(
        api.value(
            "kms_client_request_duration_seconds_count",
            &[("operation", "generate_data_key")]
        ),
        Some(1.0)
    );
    assert!(
        api.value(
            "kms_client_request_duration_seconds_count",
            &[("operation", "unwrap_data_key")]
        ) >= Some(2.0)
    );
    assert_eq!(
        api.value(
            "kms_client_errors_total",
            &[("operation", "unwrap_data_key"), ("kind", "unavailable")]
        ),
        Some(1.0)
    );
    for state in ["size", "available", "waiting", "max"] {
        assert!(
            api.value("db_pool_connections", &[("state", state)])
                .is_some(),
            "db_pool_connections{{state={state}}}:\n{api_text}"
        );
    }
    assert_eq!(
        api.value("db_pool_connections", &[("state", "max")]),
        Some(16.0)
    );
    // Registered for validation, which has produced nothing yet.
    assert!(!api.has_samples("validation_outcomes_total"));

    // A reload of the kms keyring is counted, and the new version shows.
    stack.keyring_and_reload(&["rotate"]).await;
    let (kms_text_after, kms_after) = scrape(&stack.kms.admin_addr().await).await;
    assert_eq!(
        kms_after.value("kms_keyring_reloads_total", &[("result", "success")]),
        Some(1.0)
    );
    assert_eq!(
        kms_after.value(
            "kms_keyring_versions",
            &[("key_id", "default"), ("state", "enabled")]
        ),
        Some(1.0)
    );

    // Credentials per key version are counted at startup (and every 30 s).
    stack.restart_api().await;
    let (api_text_after, api_after) = scrape(&stack.api.admin_addr().await).await;
    assert_eq!(
        api_after.value(
            "credentials_by_master_key_version",
            &[("key_id", "default"), ("key_version", "1")]
        ),
        Some(3.0),
        "{api_text_after}"
    );

    // No secret, no credential id, no workspace id, no token anywhere.
    for text in [&kms_text, &api_text, &kms_text_after, &api_text_after] {
        assert!(!text.contains(&secret));
        assert!(!text.contains(WORKSPACE));
        assert!(!text.contains(&token));
        assert!(!has_uuid(text), "a UUID in:\n{text}");
        for id in ids.iter().chain([&missing]) {
            assert!(!text.contains(id.as_str()));
        }
    }

    // Only /metrics is served.
    assert_eq!(http_get(&stack.api.admin_addr().await, "/").await.0, 404);
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_burst_finishes_what_was_accepted() {
    let mut stack = Stack::start().await;
    let token = stack.token(&["drain-ws"], ALL);
    let secret = marker();
    let endpoint = format!("http://{}", stack.api.addr);

    // A health watcher, as a client-side load balancer would keep open: it must hear
    // NOT_SERVING and must not hold the drain up.
    let health_channel = Channel::from_shared(endpoint.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = tonic_health::pb::health_client::HealthClient::new(health_channel)
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "credentials.v1.CredentialsService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(
        first.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let watcher = tokio::spawn(async move {
        let mut statuses = Vec::new();
        while let Ok(Some(message)) = watch.message().await {
            statuses.push(message.status());
        }
        statuses
    });

    // 40 callers on 4 connections, each creating credentials back to back until refused.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(
            Channel::from_shared(endpoint.clone())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..40 {
        let channel = channels[worker % channels.len()].clone();
        let (token, secret, started) = (token.clone(), secret.clone(), started.clone());
        workers.push(tokio::spawn(async move {
            let mut client = pb::credentials_service_client::CredentialsServiceClient::new(channel);
            let mut outcomes = Vec::new();
            for n in 0.. {
                started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let request = authed(openai(&format!("w{worker}-n{n}"), &secret), &token);
                match client.create_credential(request).await {
                    Ok(_) => outcomes.push(Ok(())),
                    Err(status) => {
                        outcomes.push(Err(status));
                        break;
                    }
                }
            }
            outcomes
        }));
    }
    // SIGTERM in the middle of the burst, with every worker's call in flight.
    let warmed_up = wait_until(Duration::from_secs(20), || {
        std::future::ready(started.load(std::sync::atomic::Ordering::Relaxed) >= 200)
    })
    .await;
    assert!(warmed_up, "the burst did not get going");
    send_signal(stack.api.pid(), "TERM");
    let status = stack
        .api
        .wait_exit(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no exit after SIGTERM; log:\n{}", stack.api.logs()));

    let mut successes = 0;
    let mut refused = 0;
    for worker in workers {
        let outcomes = tokio::time::timeout(Duration::from_secs(20), worker)
            .await
            .expect("a caller hung")
            .unwrap();
        for outcome in outcomes {
            match outcome {
                Ok(()) => successes += 1,
                Err(status) if status.code() == Code::Unavailable => refused += 1,
                Err(status) => panic!(
                    "a call failed with {:?} ({}) instead of finishing or being refused; log:\n{}",
                    status.code(),
                    status.message(),
                    stack.api.logs()
                ),
            }
        }
    }
    assert_eq!(
        refused, 40,
        "every caller ends refused once the API is gone"
    );
    assert!(successes >= 200 - 40, "{successes} successes");

    // Exactly what was answered OK was written.
    let client = stack.db.client().await;
    let rows: i64 = client
        .query_one("SELECT count(*) FROM credentials", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, successes as i64);

    assert!(
        status.success(),
        "exit {status}; log:\n{}",
        stack.api.logs()
    );
    let logs = stack.api.logs();
    assert!(logs.contains("drained"), "{logs}");
    // Calls really were in flight when the drain began.
    let draining: serde_json::Value = logs
        .lines()
        .find(|l| l.contains("\"message\":\"draining: new calls are refused\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no draining line; log:\n{logs}"));
    assert!(draining["in_flight"].as_u64().unwrap() >= 1, "{draining}");
    assert!(stack.api.error_lines().is_empty(), "{logs}");
    let statuses = tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("the health watch ended")
        .unwrap();
    assert!(
        statuses.contains(&tonic_health::pb::health_check_response::ServingStatus::NotServing),
        "the watcher saw {statuses:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Signals, health and crashes

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let mut stack = Stack::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management().await;
    m.create_credential(authed(openai("k", "sk-0123456789abcdefghijklmn"), &token))
        .await
        .unwrap();
    let status = stack.api.stop().await;
    assert!(status.success());
    let logs = stack.api.logs();
    assert!(
        logs.contains("shutdown requested") && logs.contains("drained"),
        "{logs}"
    );
    assert!(
        stack.api.error_lines().is_empty(),
        "{:?}",
        stack.api.error_lines()
    );
}

#[tokio::test]
async fn health_follows_the_kms() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut stack = Stack::start().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", stack.api.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel);
    let status = |service: &'static str| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .map(|r| r.into_inner().status())
                .ok()
        }
    };
    assert_eq!(
        status("credentials.v1.AccessService").await,
        Some(ServingStatus::Serving)
    );

    assert!(stack.kms.stop().await.success());
    let down = wait_until(std::time::Duration::from_secs(10), || async {
        status("credentials.v1.AccessService").await == Some(ServingStatus::NotServing)
    })
    .await;
    assert!(down, "health stayed SERVING with the kms down");
    assert_eq!(status("").await, Some(ServingStatus::NotServing));

    stack.restart_kms().await;
    let up = wait_until(std::time::Duration::from_secs(10), || async {
        status("credentials.v1.CredentialsService").await == Some(ServingStatus::Serving)
    })
    .await;
    assert!(up, "health did not recover after the kms restarted");
}

#[tokio::test]
async fn a_sweep_interrupted_by_a_crash_completes_after_restart() {
    let mut stack = Stack::start_with(&[
        "--rewrap-batch-size",
        "4",
        "--rewrap-pause",
        "150ms",
        "--rewrap-interval",
        "0",
    ])
    .await;
    // Sweeps span every workspace: the platform-wide grant.
    let token = testkit::stack::platform_token(&["ws"], ALL);
    let ids = create_many(&mut stack.management().await, &token, "ws", 40).await;
    stack.keyring_and_reload(&["rotate"]).await;
    stack
        .admin()
        .await
        .start_rewrap(authed(pb::StartRewrapRequest { dry_run: false }, &token))
        .await
        .unwrap();
    // Crash once it is part-way.
    let partway = wait_until(Duration::from_secs(20), || async {
        let s = rewrap_status(&mut stack.admin().await, &token).await;
        s.last_run.is_some_and(|r| r.rewrapped >= 4) && s.remaining > 0
    })
    .await;
    assert!(partway, "the sweep made no progress");
    stack.api.kill();
    let left = {
        let client = stack.db.client().await;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE master_key_version = 1), count(*) FROM credentials",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0), row.get::<_, i64>(1))
    };
    assert!(
        left.0 > 0 && left.0 < 40,
        "crash came too late or too early: {left:?}"
    );

    // On restart the unfinished sweep resumes by itself.
    stack.restart_api().await;
    let run = wait_for_sweep(&mut stack.admin().await, &token, || stack.api.logs()).await;
    assert_eq!(run.state, pb::RewrapState::Succeeded as i32, "{run:?}");
    let after = rewrap_status(&mut stack.admin().await, &token).await;
    assert_eq!((after.remaining, on(&after, "default", 2)), (0, 40));
    let mut a = stack.access().await;
    for (i, id) in ids.iter().enumerate() {
        let got = a
            .access_credential(authed(by_id_in("", id), &token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.secret, format!("sk-ws-initial-{i:04}-abcdefghij"));
    }
}
