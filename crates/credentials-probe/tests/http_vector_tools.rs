//! Vector stores (Pinecone, Qdrant, Weaviate, Milvus, Chroma) and tools (Airtable, Notion,
//! Confluence, Serper, SerpApi) against local servers that follow each provider's documented
//! wire format: the exact path and method, the auth scheme each documents (checked exactly,
//! fixed headers included), its success body and its documented refusals. Then discovery of
//! the vector stores whose listings give dimension and metric.

#![allow(clippy::unwrap_used)]

mod http_support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use credentials_core::schema::DiscoveryOptions;
use credentials_probe::{HttpClient, ProbeResult, Prober, ValidationOutcome};
use http_support::{MARKER, Reply, Seen, TestServer, config, localhost_tls, value};

/// Where a provider expects the key.
#[derive(Clone, Copy)]
enum Auth {
    Bearer,
    Header(&'static str),
    /// `Authorization: Bearer USER:KEY`.
    BearerUser(&'static str),
    /// HTTP Basic `USER:KEY`.
    BasicUser(&'static str),
    Query(&'static str),
}

/// One provider's documented exchange.
struct Provider {
    id: &'static str,
    method: &'static str,
    /// Path and query (without the key) under the base URL.
    path: &'static str,
    auth: Auth,
    extra: &'static [(&'static str, &'static str)],
    ok: &'static str,
    /// The documented answer to a bad key: status, body, outcome.
    bad: (u16, &'static str, ValidationOutcome),
    /// The documented answer to a key without the permission, if the provider has one.
    forbidden: Option<(u16, &'static str, ValidationOutcome)>,
}

const PINECONE_INDEXES: &str = r#"{"indexes":[
  {"name":"movie-recommendations","metric":"cosine","dimension":1536,"vector_type":"dense",
   "host":"movie-recommendations-c01b5b5.svc.us-east1-gcp.pinecone.io",
   "spec":{"serverless":{"cloud":"aws","region":"us-east-1"}},
   "status":{"ready":true,"state":"Ready"},"deletion_protection":"disabled","tags":null},
  {"name":"docs-example-sparse","metric":"dotproduct","dimension":null,"vector_type":"sparse",
   "host":"docs-example-sparse-govk0nt.svc.aped-4627-b74a.pinecone.io",
   "spec":{"serverless":{"cloud":"aws","region":"us-east-1"}},
   "status":{"ready":true,"state":"Ready"}}]}"#;

const QDRANT_LIST: &str = r#"{"result":{"collections":[{"name":"star_charts"},{"name":"multi modal"}]},"status":"ok","time":0.00002}"#;
const QDRANT_STAR_CHARTS: &str = r#"{"result":{"status":"green","optimizer_status":"ok",
  "indexed_vectors_count":0,"points_count":42,"segments_count":2,
  "config":{"params":{"vectors":{"size":4,"distance":"Dot"},"shard_number":1,
  "replication_factor":1,"write_consistency_factor":1,"on_disk_payload":true},
  "hnsw_config":{"m":16,"ef_construct":100},"optimizer_config":{},"wal_config":{}},
  "payload_schema":{"colony":{"data_type":"keyword","points":42}}},"status":"ok","time":0.0001}"#;
const QDRANT_MULTI: &str = r#"{"result":{"status":"yellow","points_count":7,
  "config":{"params":{"vectors":{"image":{"size":512,"distance":"Cosine"},
  "text":{"size":384,"distance":"Euclid"}}}},"payload_schema":{}},"status":"ok","time":0.0001}"#;

const WEAVIATE_SCHEMA: &str = r#"{"classes":[
  {"class":"Article","description":"News articles","vectorizer":"text2vec-openai",
   "vectorIndexType":"hnsw","vectorIndexConfig":{"distance":"cosine","ef":-1},
   "properties":[{"name":"title","dataType":["text"],"description":"Headline"},
                 {"name":"wordCount","dataType":["int"]},
                 {"name":"hasAuthors","dataType":["Author"]}]},
  {"class":"Product","vectorizer":"none",
   "vectorConfig":{"image":{"vectorIndexType":"hnsw","vectorIndexConfig":{"distance":"dot"}},
                   "text":{"vectorIndexType":"flat","vectorIndexConfig":{"distance":"l2-squared"}}},
   "properties":[{"name":"sku","dataType":["text"]}]}]}"#;

const MILVUS_QUICK: &str = r#"{"code":0,"data":{"aliases":[],"autoId":false,
  "collectionID":448707763883002014,"collectionName":"quick_setup","consistencyLevel":"Bounded",
  "description":"","enableDynamicField":true,"fields":[
    {"autoId":false,"description":"","id":100,"name":"id","partitionKey":false,"primaryKey":true,"type":"Int64"},
    {"autoId":false,"description":"","id":101,"name":"vector","params":[{"key":"dim","value":"5"}],
     "partitionKey":false,"primaryKey":false,"type":"FloatVector"},
    {"autoId":false,"description":"the title","id":102,"name":"title","params":[{"key":"max_length","value":"512"}],
     "partitionKey":false,"primaryKey":false,"type":"VarChar"}],
  "indexes":[{"fieldName":"vector","indexName":"vector","metricType":"COSINE"}],
  "load":"LoadStateLoaded","partitionsNum":1,"properties":[],"shardsNum":1}}"#;
const MILVUS_CUSTOM: &str = r#"{"code":0,"data":{"collectionName":"customized_setup","description":"images",
  "fields":[{"name":"pk","primaryKey":true,"type":"VarChar","params":[{"key":"max_length","value":"64"}]},
    {"name":"img","primaryKey":false,"type":"BinaryVector","params":[{"key":"dim","value":"128"}]}],
  "indexes":[{"fieldName":"img","indexName":"img","metricType":"HAMMING"}]}}"#;

const CHROMA_COLLECTIONS: &str = r#"[
  {"id":"2c5e0c4a-6b7e-4b2a-9a3e-0d9a2f1e7c11","name":"docs","dimension":768,
   "tenant":"acme","database":"prod","metadata":null,
   "configuration_json":{"hnsw":{"space":"cosine","ef_construction":100}}},
  {"id":"8f1d3e2a-1111-4c3b-8a2e-5e6f7a8b9c0d","name":"legacy","dimension":384,
   "tenant":"acme","database":"prod","metadata":{"hnsw:space":"ip"},"configuration_json":{}}]"#;

const PROVIDERS: &[Provider] = &[
    Provider {
        id: "pinecone",
        method: "GET",
        path: "/indexes",
        auth: Auth::Header("api-key"),
        extra: &[("x-pinecone-api-version", "2025-04")],
        ok: PINECONE_INDEXES,
        bad: (
            401,
            r#"{"error":{"code":"UNAUTHENTICATED","message":"Invalid API Key"},"status":401}"#,
            ValidationOutcome::InvalidCredentials,
        ),
        forbidden: Some((
            403,
            r#"{"error":{"code":"FORBIDDEN","message":"Key does not have access to this resource"},"status":403}"#,
            ValidationOutcome::InsufficientPermissions,
        )),
    },
    Provider {
        id: "qdrant",
        method: "GET",
        path: "/collections",
        auth: Auth::Header("api-key"),
        extra: &[],
        ok: QDRANT_LIST,
        bad: (
            401,
            "Unauthorized: Invalid API key or JWT",
            ValidationOutcome::InvalidCredentials,
        ),
        forbidden: Some((
            403,
            "Forbidden: Global access is required",
            ValidationOutcome::InsufficientPermissions,
        )),
    },
    Provider {
        id: "weaviate",
        method: "GET",
        path: "/v1/schema",
        auth: Auth::Bearer,
        extra: &[],
        ok: WEAVIATE_SCHEMA,
        bad: (
            401,
            r#"{"code":401,"message":"unauthorized: invalid api key: key not found"}"#,
            ValidationOutcome::InvalidCredentials,
        ),
        forbidden: Some((
            403,
            r#"{"error":[{"message":"forbidden: user 'reader' has insufficient permissions to read_collections"}]}"#,
            ValidationOutcome::InsufficientPermissions,
        )),
    },
    Provider {
        id: "milvus",
        method: "POST",
        path: "/v2/vectordb/collections/list",
        auth: Auth::BearerUser("root"),
        extra: &[("content-type", "application/json")],
        ok: r#"{"code":0,"data":["quick_setup","customized_setup"]}"#,
        // Milvus answers an unauthenticated caller with HTTP 200 and code 1800.
        bad: (
            200,
            r#"{"code":1800,"message":"user hasn't authenticated"}"#,
            ValidationOutcome::InvalidCredentials,
        ),
        forbidden: Some((
            200,
            r#"{"code":65535,"message":"PrivilegeShowCollections: permission deny to root in the `default` database"}"#,
            ValidationOutcome::InsufficientPermissions,
        )),
    },
    Provider {
        id: "chroma",
        method: "GET",
        path: "/api/v2/auth/identity",
        auth: Auth::Header("x-chroma-token"),
        extra: &[],
        ok: r#"{"user_id":"u-1","tenant":"acme","databases":["prod"]}"#,
        bad: (
            401,
            r#"{"error":"Unauthorized","message":"Unauthorized"}"#,
            ValidationOutcome::InvalidCredentials,
        ),
        forbidden: Some((
            403,
            r#"{"error":"Forbidden","message":"Forbidden"}"#,
            ValidationOutcome::InsufficientPermissions,
        )),
    },
    Provider {
        id: "airtable",
        method: "GET",
        path: "/meta/whoami",
        auth: Auth::Bearer,
        extra: &[],
        ok: r#"{"id":"usrL2PNC5o3H4lBEi","scopes":["data.records:read"]}"#,
        bad: (
            401,
            r#"{"error":{"type":"AUTHENTICATION_REQUIRED","message":"Authentication required"}}"#,
            ValidationOutcome::InvalidCredentials,
        ),
        forbidden: Some((
            403,
            r#"{"error":{"type":"INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND","message":"Invalid permissions, or the requested model was not found."}}"#,
            ValidationOutcome::InsufficientPermissions,
        )),
    },
    Provider {
        id: "notion",
        method: "GET",
        path: "/users/me",
        auth: Auth::Bearer,
        extra: &[("notion-version", "2022-06-28")],
        ok: r#"{"object":"user","id":"16d84278-ab0e-484c-9bdd-b35da3bd8905","type":"bot","bot":{}}"#,
        bad: (
            401,
            r#"{"object":"error","status":401,"code":"unauthorized","message":"API token is invalid."}"#,
            ValidationOutcome::InvalidCredentials,
        ),
        forbidden: Some((
            403,
            r#"{"object":"error","status":403,"code":"restricted_resource","message":"API token does not have access to this resource."}"#,
            ValidationOutcome::InsufficientPermissions,
        )),
    },
    Provider {
        id: "serper",
        method: "GET",
        path: "/account",
        auth: Auth::Header("x-api-key"),
        extra: &[],
        ok: r#"{"balance":2500,"rateLimit":5}"#,
        // Serper answers a bad key 403 "Unauthorized.": invalid, not a missing permission.
        bad: (
            403,
            r#"{"message":"Unauthorized.","statusCode":403}"#,
            ValidationOutcome::InvalidCredentials,
        ),
        forbidden: Some((
            400,
            r#"{"message":"Not enough credits","statusCode":400}"#,
            ValidationOutcome::ProviderError,
        )),
    },
    Provider {
        id: "serpapi",
        method: "GET",
        path: "/account.json",
        auth: Auth::Query("api_key"),
        extra: &[],
        ok: r#"{"account_id":"5ac54d6adefb2f1dba1663f5","plan_id":"free","total_searches_left":100}"#,
        bad: (
            401,
            r#"{"error":"Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key"}"#,
            ValidationOutcome::InvalidCredentials,
        ),
        forbidden: None,
    },
];

/// Confluence Cloud, served over TLS (its site URL must be https).
const CONFLUENCE: Provider = Provider {
    id: "confluence",
    method: "GET",
    path: "/wiki/rest/api/user/current",
    auth: Auth::BasicUser("me@example.com"),
    extra: &[],
    ok: r#"{"type":"known","accountId":"5b10a2844c20165700ede21g","accountType":"atlassian","email":"me@example.com","publicName":"Me"}"#,
    bad: (
        401,
        r#"{"code":401,"message":"Client must be authenticated to access this resource."}"#,
        ValidationOutcome::InvalidCredentials,
    ),
    forbidden: Some((
        403,
        r#"{"statusCode":403,"message":"Current user not permitted to use Confluence"}"#,
        ValidationOutcome::InsufficientPermissions,
    )),
};

fn key(kind: &str) -> String {
    format!("{kind}-{MARKER}")
}

/// The credential a request carries, as the provider reads it; `None` if it is not where the
/// provider documents it.
fn sent_key(p: &Provider, req: &Seen) -> Option<String> {
    let bearer = || {
        req.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
    };
    match p.auth {
        Auth::Bearer => bearer().map(str::to_owned),
        Auth::Header(name) => req.header(name).map(str::to_owned),
        Auth::BearerUser(user) => bearer()
            .and_then(|t| t.strip_prefix(user))
            .and_then(|t| t.strip_prefix(':'))
            .map(str::to_owned),
        Auth::BasicUser(user) => {
            let encoded = req.header("authorization")?.strip_prefix("Basic ")?;
            let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
            let (u, key) = decoded.split_once(':')?;
            (u == user).then(|| key.to_owned())
        }
        Auth::Query(param) => http_support::parse_form(req.query()).remove(param),
    }
}

/// Answers as `p` does under `/{id}` (or at the root for a server of its own).
fn answer(p: &Provider, rest: &str, req: &Seen) -> Reply {
    if req.method != p.method {
        return Reply::new(405, r#"{"error":"method not allowed"}"#);
    }
    for (name, want) in p.extra {
        if !req.header(name).is_some_and(|v| v.starts_with(want)) {
            return Reply::new(400, r#"{"error":"missing required header"}"#);
        }
    }
    if p.method == "POST" && serde_json::from_slice::<serde_json::Value>(&req.body).is_err() {
        return Reply::new(400, r#"{"code":1100,"message":"invalid JSON body"}"#);
    }
    let Some(sent) = sent_key(p, req) else {
        return Reply::new(p.bad.0, p.bad.1);
    };
    let kind = sent.split('-').next().unwrap_or("");
    match kind {
        "good" => {}
        "forbidden" => {
            let (status, body, _) = p.forbidden.as_ref().unwrap_or(&p.bad);
            return Reply::new(*status, *body);
        }
        "down" => return Reply::new(503, r#"{"error":"service unavailable"}"#),
        _ => return Reply::new(p.bad.0, p.bad.1),
    }
    let path = rest.split('?').next().unwrap_or("");
    if path == p.path.split('?').next().unwrap_or("") {
        return Reply::new(200, p.ok);
    }
    // The discovery reads of the vector stores.
    match (p.id, path) {
        ("qdrant", "/collections/star_charts") => Reply::new(200, QDRANT_STAR_CHARTS),
        ("qdrant", "/collections/multi%20modal") => Reply::new(200, QDRANT_MULTI),
        ("milvus", "/v2/vectordb/collections/describe") => {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            match body["collectionName"].as_str() {
                Some("quick_setup") => Reply::new(200, MILVUS_QUICK),
                Some("customized_setup") => Reply::new(200, MILVUS_CUSTOM),
                _ => Reply::new(
                    200,
                    r#"{"code":100,"message":"can't find collection: collection not found"}"#,
                ),
            }
        }
        ("chroma", "/api/v2/tenants/acme/databases/prod/collections") => {
            Reply::new(200, CHROMA_COLLECTIONS)
        }
        _ => Reply::new(404, r#"{"error":"not found"}"#),
    }
}

/// A server that answers as every provider in [`PROVIDERS`], under `/{type_id}`.
async fn providers_server() -> TestServer {
    TestServer::start(|req: &Seen| {
        let uri = req.uri.clone();
        let Some((id, rest)) = uri.trim_start_matches('/').split_once('/') else {
            return Reply::new(404, "{}");
        };
        match PROVIDERS.iter().find(|p| p.id == id) {
            Some(p) => answer(p, &format!("/{rest}"), req),
            None => Reply::new(404, "{}"),
        }
    })
    .await
}

/// The prober, with the fixed-URL providers pointed at the server.
fn prober_for(server: &TestServer) -> Prober {
    let overrides: Vec<(&str, String)> = ["pinecone", "airtable", "notion", "serper", "serpapi"]
        .into_iter()
        .map(|id| (id, format!("{}/{id}", server.url())))
        .collect();
    Prober::new(config(&overrides))
}

/// The value of `id` with this key, its instance URL under the server where it has one.
fn value_of(id: &str, server: &str, key: &str) -> credentials_core::SecretValue {
    let url = format!("{server}/{id}");
    match id {
        "qdrant" | "weaviate" => value(id, &[("api_key", key), ("url", &url)]),
        "chroma" => value(
            id,
            &[
                ("api_key", key),
                ("url", &url),
                ("tenant", "acme"),
                ("database", "prod"),
            ],
        ),
        "milvus" => value(
            id,
            &[("url", &url), ("username", "root"), ("password", key)],
        ),
        "airtable" => value(id, &[("access_token", key)]),
        "notion" => value(id, &[("token", key)]),
        "confluence" => value(
            id,
            &[
                ("site_url", server),
                ("email", "me@example.com"),
                ("api_token", key),
            ],
        ),
        _ => value(id, &[("api_key", key)]),
    }
}

async fn probe(prober: &Prober, id: &str, server: &str, key: &str) -> ProbeResult {
    let result = prober.validate(id, &value_of(id, server, key)).await;
    assert!(
        !result.message.contains(MARKER),
        "{id}: secret in message {:?}",
        result.message
    );
    result
}

#[tokio::test]
async fn every_new_type_tells_a_good_key_from_a_bad_one_and_a_refusal() {
    let server = providers_server().await;
    let prober = prober_for(&server);
    for p in PROVIDERS {
        let good = probe(&prober, p.id, &server.url(), &key("good")).await;
        assert_eq!(good.outcome, ValidationOutcome::Valid, "{}: {good:?}", p.id);
        let bad = probe(&prober, p.id, &server.url(), &key("bad")).await;
        assert_eq!(bad.outcome, p.bad.2, "{}: {bad:?}", p.id);
        if let Some((_, _, outcome)) = p.forbidden {
            let forbidden = probe(&prober, p.id, &server.url(), &key("forbidden")).await;
            assert_eq!(forbidden.outcome, outcome, "{}: {forbidden:?}", p.id);
        }
        let down = probe(&prober, p.id, &server.url(), &key("down")).await;
        assert_eq!(
            down.outcome,
            ValidationOutcome::ProviderError,
            "{}: {down:?}",
            p.id
        );
        assert!(down.message.contains("503"), "{}: {}", p.id, down.message);
    }
    // A good key is seen where the provider documents it: each request authenticated, none
    // answered "missing header" or "not found".
    for seen in server.seen() {
        let (id, _) = seen.uri.trim_start_matches('/').split_once('/').unwrap();
        let p = PROVIDERS.iter().find(|p| p.id == id).unwrap();
        assert!(
            sent_key(p, &seen).is_some(),
            "{id}: key not where documented"
        );
    }
}

#[tokio::test]
async fn confluence_takes_basic_email_and_token_over_https() {
    let (acceptor, roots) = localhost_tls();
    let server = TestServer::start_on("127.0.0.1:0", Some(acceptor), |req: &Seen| {
        answer(&CONFLUENCE, &req.uri, req)
    })
    .await;
    let cfg = config(&[]);
    let http = HttpClient::with_roots(cfg.egress.clone(), roots);
    let prober = Prober::with_http_client(cfg, http);
    let site = format!("https://localhost:{}", server.addr.port());
    for (kind, outcome) in [
        ("good", ValidationOutcome::Valid),
        ("bad", ValidationOutcome::InvalidCredentials),
        ("forbidden", ValidationOutcome::InsufficientPermissions),
    ] {
        let result = probe(&prober, "confluence", &site, &key(kind)).await;
        assert_eq!(result.outcome, outcome, "{kind}: {result:?}");
    }
    let seen = server.seen();
    assert_eq!(seen[0].path(), "/wiki/rest/api/user/current");
    let basic = STANDARD.encode(format!("me@example.com:{}", key("good")));
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
}

#[tokio::test]
async fn milvus_sends_user_and_password_as_its_token_or_an_api_key_alone() {
    let server = providers_server().await;
    let prober = prober_for(&server);
    let good = probe(&prober, "milvus", &server.url(), &key("good")).await;
    assert_eq!(good.outcome, ValidationOutcome::Valid, "{good:?}");
    let seen = server.seen();
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer root:{}", key("good")).as_str())
    );
    assert_eq!(seen[0].body_text(), "{}");
    // Without a user the password is a Zilliz Cloud API key, sent alone.
    let url = format!("{}/milvus", server.url());
    let api_key = value("milvus", &[("url", &url), ("password", &key("good"))]);
    let result = prober.validate("milvus", &api_key).await;
    // This server knows only root's token, so the lone key is refused as unauthenticated.
    assert_eq!(result.outcome, ValidationOutcome::InvalidCredentials);
    assert_eq!(
        server.seen()[1].header("authorization"),
        Some(format!("Bearer {}", key("good")).as_str())
    );
}

#[tokio::test]
async fn serpapi_key_travels_in_the_query_and_never_into_a_message() {
    let server = providers_server().await;
    let prober = prober_for(&server);
    let good = probe(&prober, "serpapi", &server.url(), &key("good")).await;
    assert_eq!(good.outcome, ValidationOutcome::Valid);
    let seen = &server.seen()[0];
    assert_eq!(seen.path(), "/serpapi/account.json");
    assert_eq!(seen.query(), format!("api_key={}", key("good")));
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn an_instance_url_outside_the_egress_guard_is_refused() {
    let prober = Prober::new(config(&[]));
    let v = value(
        "qdrant",
        &[
            ("api_key", &key("good")),
            ("url", "http://169.254.169.254:6333"),
        ],
    );
    let result = prober.validate("qdrant", &v).await;
    assert_eq!(
        result.outcome,
        ValidationOutcome::EgressDenied,
        "{result:?}"
    );
    assert!(!result.message.contains(MARKER));
}

fn options() -> DiscoveryOptions {
    DiscoveryOptions::default()
}

#[tokio::test]
async fn pinecone_indexes_are_discovered_with_dimension_and_metric() {
    let server = providers_server().await;
    let prober = prober_for(&server);
    let v = value_of("pinecone", &server.url(), &key("good"));
    let schema = prober
        .discover_schema("pinecone", &v, &options())
        .await
        .unwrap();
    let ns = &schema.namespaces[0];
    assert_eq!(ns.name, "pinecone");
    let movies = ns
        .tables
        .iter()
        .find(|t| t.name == "movie-recommendations")
        .unwrap();
    let values = movies.columns.iter().find(|c| c.name == "values").unwrap();
    assert_eq!(values.data_type, "vector(1536)");
    assert_eq!(values.description, "cosine");
    assert!(
        movies
            .description
            .contains("1536 dimensions, cosine metric")
            && movies.description.contains("serverless aws us-east-1"),
        "{}",
        movies.description
    );
    let sparse = ns
        .tables
        .iter()
        .find(|t| t.name == "docs-example-sparse")
        .unwrap();
    assert!(
        sparse
            .columns
            .iter()
            .any(|c| c.data_type == "sparse_vector")
    );
    let ddl = schema.to_ddl();
    assert!(
        ddl.contains("CREATE TABLE pinecone.\"movie-recommendations\" (")
            && ddl.contains("vector(1536) NOT NULL, -- cosine"),
        "{ddl}"
    );
    // The discovery sent the same documented request as the probe.
    let seen = &server.seen()[0];
    assert_eq!(seen.path(), "/pinecone/indexes");
    assert_eq!(seen.header("x-pinecone-api-version"), Some("2025-04"));
}

#[tokio::test]
async fn qdrant_collections_are_discovered_one_by_one() {
    let server = providers_server().await;
    let prober = prober_for(&server);
    let v = value_of("qdrant", &server.url(), &key("good"));
    let schema = prober
        .discover_schema("qdrant", &v, &options())
        .await
        .unwrap();
    let tables = &schema.namespaces[0].tables;
    assert_eq!(schema.namespaces[0].name, "qdrant");
    let stars = tables.iter().find(|t| t.name == "star_charts").unwrap();
    let vector = stars.columns.iter().find(|c| c.name == "vector").unwrap();
    assert_eq!(
        (vector.data_type.as_str(), vector.description.as_str()),
        ("vector(4)", "Dot")
    );
    assert!(
        stars
            .columns
            .iter()
            .any(|c| c.name == "colony" && c.data_type == "keyword")
    );
    assert!(
        stars.description.contains("42 points"),
        "{}",
        stars.description
    );
    let multi = tables.iter().find(|t| t.name == "multi modal").unwrap();
    let text = multi.columns.iter().find(|c| c.name == "text").unwrap();
    assert_eq!(
        (text.data_type.as_str(), text.description.as_str()),
        ("vector(384)", "Euclid")
    );
    // Each kept collection was read by its escaped name.
    let paths: Vec<String> = server.seen().iter().map(|s| s.path().to_owned()).collect();
    assert!(
        paths.contains(&"/qdrant/collections/multi%20modal".to_owned()),
        "{paths:?}"
    );

    // The table limit cuts the list before any collection is read.
    let one = DiscoveryOptions {
        max_tables: 1,
        ..options()
    };
    let before = server.seen().len();
    let cut = prober.discover_schema("qdrant", &v, &one).await.unwrap();
    assert!(cut.truncated);
    assert_eq!(cut.table_count(), 1);
    assert_eq!(
        server.seen().len() - before,
        2,
        "the list and one collection"
    );
}

#[tokio::test]
async fn chroma_collections_are_discovered_in_the_values_tenant_and_database() {
    let server = providers_server().await;
    let prober = prober_for(&server);
    let v = value_of("chroma", &server.url(), &key("good"));
    let schema = prober
        .discover_schema("chroma", &v, &options())
        .await
        .unwrap();
    assert_eq!(schema.namespaces[0].name, "prod");
    let docs = &schema.namespaces[0].tables[0];
    assert_eq!(docs.name, "docs");
    let embedding = docs.columns.iter().find(|c| c.name == "embedding").unwrap();
    assert_eq!(
        (embedding.data_type.as_str(), embedding.description.as_str()),
        ("vector(768)", "cosine")
    );
    // The older metadata key names the metric when the configuration does not.
    let legacy = &schema.namespaces[0].tables[1];
    let embedding = legacy
        .columns
        .iter()
        .find(|c| c.name == "embedding")
        .unwrap();
    assert_eq!(embedding.description, "ip");
    let seen = server.seen();
    assert_eq!(seen[0].header("x-chroma-token"), Some(key("good").as_str()));
}

#[tokio::test]
async fn discovery_with_a_bad_key_is_invalid_credentials_and_tools_have_no_schema() {
    let server = providers_server().await;
    let prober = prober_for(&server);
    for id in ["pinecone", "qdrant", "chroma", "weaviate", "milvus"] {
        let v = value_of(id, &server.url(), &key("bad"));
        let err = prober
            .discover_schema(id, &v, &options())
            .await
            .unwrap_err();
        assert_eq!(
            err.outcome,
            ValidationOutcome::InvalidCredentials,
            "{id}: {err:?}"
        );
        assert!(!err.message.contains(MARKER));
    }
    // A tool type has no schema to discover.
    let v = value_of("notion", &server.url(), &key("good"));
    let err = prober
        .discover_schema("notion", &v, &options())
        .await
        .unwrap_err();
    assert_eq!(err.outcome, ValidationOutcome::UnsupportedType);
}

#[tokio::test]
async fn weaviate_classes_are_discovered_with_their_distance_and_properties() {
    let server = providers_server().await;
    let prober = prober_for(&server);
    let v = value_of("weaviate", &server.url(), &key("good"));
    let schema = prober
        .discover_schema("weaviate", &v, &options())
        .await
        .unwrap();
    let tables = &schema.namespaces[0].tables;
    let article = tables.iter().find(|t| t.name == "Article").unwrap();
    let vector = article.columns.iter().find(|c| c.name == "vector").unwrap();
    assert_eq!(
        (vector.data_type.as_str(), vector.description.as_str()),
        ("vector", "cosine")
    );
    let title = article.columns.iter().find(|c| c.name == "title").unwrap();
    assert_eq!(
        (title.data_type.as_str(), title.description.as_str()),
        ("text", "Headline")
    );
    assert!(
        article.description.contains("vectorizer text2vec-openai"),
        "{}",
        article.description
    );
    // Named vectors are a column each, with their own distance.
    let product = tables.iter().find(|t| t.name == "Product").unwrap();
    let image = product.columns.iter().find(|c| c.name == "image").unwrap();
    assert_eq!(image.description, "dot");
    let text = product.columns.iter().find(|c| c.name == "text").unwrap();
    assert_eq!(text.description, "l2-squared");
    assert!(
        schema
            .to_ddl()
            .contains("CREATE TABLE weaviate.\"Article\" (")
    );
}

#[tokio::test]
async fn milvus_collections_are_described_with_dim_and_index_metric() {
    let server = providers_server().await;
    let prober = prober_for(&server);
    let v = value_of("milvus", &server.url(), &key("good"));
    let schema = prober
        .discover_schema("milvus", &v, &options())
        .await
        .unwrap();
    let tables = &schema.namespaces[0].tables;
    assert_eq!(schema.namespaces[0].name, "milvus");
    let quick = tables.iter().find(|t| t.name == "quick_setup").unwrap();
    let vector = quick.columns.iter().find(|c| c.name == "vector").unwrap();
    assert_eq!(
        (vector.data_type.as_str(), vector.description.as_str()),
        ("vector(5)", "COSINE")
    );
    let title = quick.columns.iter().find(|c| c.name == "title").unwrap();
    assert_eq!(title.data_type, "VarChar(512)");
    assert_eq!(quick.primary_key, ["id"]);
    let custom = tables
        .iter()
        .find(|t| t.name == "customized_setup")
        .unwrap();
    let img = custom.columns.iter().find(|c| c.name == "img").unwrap();
    assert_eq!(
        (img.data_type.as_str(), img.description.as_str()),
        ("BinaryVector(128)", "HAMMING")
    );
    assert!(
        custom.description.contains("images"),
        "{}",
        custom.description
    );
    // Each describe named its collection, with the credentials as the probe sends them.
    let describes: Vec<String> = server
        .seen()
        .iter()
        .filter(|s| s.path() == "/milvus/v2/vectordb/collections/describe")
        .map(|s| {
            assert_eq!(
                s.header("authorization"),
                Some(format!("Bearer root:{}", key("good")).as_str())
            );
            s.body_text()
        })
        .collect();
    assert_eq!(describes.len(), 2, "{describes:?}");
    assert!(
        describes
            .iter()
            .any(|b| b.contains("\"collectionName\":\"quick_setup\""))
    );
}
