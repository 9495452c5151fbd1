//! Schema discovery of vector stores: their indexes or collections, each with its vector
//! dimension and distance metric, read with the credential's key from the same API the
//! validation probe reads (and through the same guarded client, so an instance URL a user
//! typed is dialled only where the egress guard allows).
//!
//! A vector store's "schema" is stored in the shape a database's is ([`DatabaseSchema`]), one
//! table per index or collection, rather than in a message of its own: `GetSchema`, its DDL
//! text, `has_schema` and `schema_updated_at` then work unchanged, and an agent reads a
//! collection the way it reads a table, e.g.
//!
//! ```text
//! -- Pinecone dense index: 1536 dimensions, cosine metric; serverless aws us-east-1; Ready
//! CREATE TABLE pinecone."movie-recommendations" (
//!   id string NOT NULL,
//!   values vector(1536) NOT NULL, -- cosine
//!   metadata json,
//!   PRIMARY KEY (id)
//! );
//! ```
//!
//! The vector column's type is `vector(DIMENSION)` (pgvector's spelling, which models know) and
//! its comment the metric as the store names it; the table comment repeats both with what the
//! listing gives cheaply (vector count, status). The namespace is the store (`pinecone`,
//! `qdrant`, `weaviate`, `milvus`) or, for Chroma, the database. Documented reads used:
//!
//! - Pinecone: `GET https://api.pinecone.io/indexes` (control plane, `X-Pinecone-API-Version:
//!   2025-04`, whose answer has `dimension` and `metric` at the top of each index);
//! - Qdrant: `GET {url}/collections`, then `GET {url}/collections/{name}` for each kept one
//!   (`config.params.vectors`: `size` and `distance`, or a map of named vectors; `points_count`;
//!   `payload_schema`, the indexed payload fields);
//! - Weaviate: `GET {url}/v1/schema` (each class's properties and vector index distance, per
//!   named vector where it has several; the schema does not give the dimension, which is then
//!   `vector` without one);
//! - Milvus: `POST {url}/v2/vectordb/collections/list`, then `POST
//!   {url}/v2/vectordb/collections/describe` for each kept one (its fields, `dim` of each
//!   vector field, the `metricType` of the index on it);
//! - Chroma: `GET {url}/api/v2/tenants/{tenant}/databases/{database}/collections` (each
//!   collection's `dimension`, its metric in `configuration_json.hnsw.space` or the older
//!   `metadata["hnsw:space"]`, Chroma's default `l2` when neither is set).
//!
//! Every string from the store is cleaned by [`SchemaBuilder::finish`], as a database's are;
//! answers are read up to [`crate::http::MAX_BODY`] bytes, and a listing cut there is refused
//! rather than half-read.

use crate::db::DiscoveryError;
use crate::http::{HttpClient, Response};
use crate::outcome::{ProbeConfig, ProbeResult, ValidationOutcome};
use crate::providers::{self, classify_status};
use credentials_core::SecretValue;
use credentials_core::catalogue::{KeyRead, TypeSpec, VectorStore};
use credentials_core::schema::{Column, DatabaseSchema, DiscoveryOptions, SchemaBuilder, Table};
use serde_json::Value;

/// Discovers the indexes or collections of a vector store credential: a type whose probe is
/// a [`KeyRead`] naming the store in its `discovery`.
pub(crate) async fn discover(
    config: &ProbeConfig,
    client: &HttpClient,
    spec: &TypeSpec,
    value: &SecretValue,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, DiscoveryError> {
    let unsupported = || {
        failure(ProbeResult::unsupported(format!(
            "schema discovery is not available for {}",
            spec.display_name
        )))
    };
    let Some((read, url_field)) = spec.probe.key_read() else {
        return Err(unsupported());
    };
    let Some(store) = read.discovery else {
        return Err(unsupported());
    };
    let target = Target {
        config,
        client,
        spec,
        read,
        url_field,
        value,
    };
    let work = async {
        match store {
            VectorStore::Pinecone => pinecone(&target, options).await,
            VectorStore::Qdrant => qdrant(&target, options).await,
            VectorStore::Chroma => chroma(&target, options).await,
            VectorStore::Weaviate => weaviate(&target, options).await,
            VectorStore::Milvus => milvus(&target, options).await,
        }
    };
    match tokio::time::timeout(options.timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(DiscoveryError {
            outcome: ValidationOutcome::TimedOut,
            message: format!(
                "schema discovery: no answer within {} ms",
                options.timeout.as_millis()
            ),
        }),
    }
}

/// What every read of one discovery shares.
struct Target<'a> {
    config: &'a ProbeConfig,
    client: &'a HttpClient,
    spec: &'a TypeSpec,
    read: &'a KeyRead,
    url_field: Option<&'a str>,
    value: &'a SecretValue,
}

impl Target<'_> {
    /// `GET {base}{path}` with the key and the read's fixed headers, as JSON.
    async fn get(&self, path: &str) -> Result<Value, DiscoveryError> {
        let name = self.spec.display_name;
        let request = providers::keyed_request(
            self.config,
            self.spec,
            self.read,
            self.url_field,
            path,
            None,
            self.value,
        )
        .map_err(failure)?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| failure(e.to_result()))?;
        json_of(name, &response)
    }

    /// `POST {base}{path}` of a JSON `body`, as Milvus's REST API reads; its refusals in HTTP
    /// 200 answers (a non-zero `code`) are refusals here too.
    async fn post(&self, path: &str, body: &str) -> Result<Value, DiscoveryError> {
        let name = self.spec.display_name;
        let request = providers::keyed_request(
            self.config,
            self.spec,
            self.read,
            self.url_field,
            path,
            Some(body),
            self.value,
        )
        .map_err(failure)?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| failure(e.to_result()))?;
        let json = json_of(name, &response)?;
        match providers::milvus_refusal(name, &response) {
            Some(refused) => Err(failure(refused)),
            None => Ok(json),
        }
    }
}

fn failure(result: ProbeResult) -> DiscoveryError {
    DiscoveryError {
        outcome: result.outcome,
        message: result.message,
    }
}

/// The JSON of a successful answer; a refusal as its outcome.
fn json_of(name: &str, response: &Response) -> Result<Value, DiscoveryError> {
    let status = response.status.as_u16();
    if !response.status.is_success() {
        return Err(failure(classify_status(name, "key", status)));
    }
    if response.truncated {
        return Err(failure(ProbeResult::provider_error(format!(
            "{name} answered with a listing larger than a discovery reads ({} KiB)",
            crate::http::MAX_BODY / 1024
        ))));
    }
    response.json().ok_or_else(|| unreadable(name))
}

fn unreadable(name: &str) -> DiscoveryError {
    failure(ProbeResult::provider_error(format!(
        "{name} answered with a listing this discovery cannot read"
    )))
}

/// The array at JSON `pointer` of a listing from `name`; a listing without one is unreadable.
fn array_at<'a>(
    listing: &'a Value,
    pointer: &str,
    name: &str,
) -> Result<&'a Vec<Value>, DiscoveryError> {
    listing
        .pointer(pointer)
        .and_then(Value::as_array)
        .ok_or_else(|| unreadable(name))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn column(name: &str, data_type: String, nullable: bool, description: String) -> Column {
    Column {
        name: name.to_owned(),
        data_type,
        nullable,
        default_value: None,
        description,
        position: 0,
    }
}

/// Numbers the columns 1, 2, ... in order.
fn numbered(mut columns: Vec<Column>) -> Vec<Column> {
    for (i, c) in columns.iter_mut().enumerate() {
        c.position = u32::try_from(i + 1).unwrap_or(u32::MAX);
    }
    columns
}

fn vector_type(dimension: Option<u64>) -> String {
    dimension.map_or_else(|| "vector".to_owned(), |d| format!("vector({d})"))
}

fn dimensions(dimension: Option<u64>) -> String {
    dimension.map_or_else(
        || "dimension not reported".to_owned(),
        |d| format!("{d} dimensions"),
    )
}

/// Pinecone: one table per index of the project.
async fn pinecone(
    target: &Target<'_>,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, DiscoveryError> {
    let name = target.spec.display_name;
    let listing = target.get("/indexes").await?;
    let indexes = array_at(&listing, "/indexes", name)?;
    let tables = indexes.iter().filter_map(|index| {
        let index_name = text(index, "name")?;
        let dimension = index.get("dimension").and_then(Value::as_u64);
        let metric = text(index, "metric").unwrap_or_default();
        let kind = text(index, "vector_type").unwrap_or_else(|| "dense".to_owned());
        let mut about = format!("Pinecone {kind} index: ");
        let vector = if kind == "sparse" {
            about.push_str(&format!("{metric} metric"));
            column(
                "sparse_values",
                "sparse_vector".to_owned(),
                false,
                metric.clone(),
            )
        } else {
            about.push_str(&format!("{}, {metric} metric", dimensions(dimension)));
            column("values", vector_type(dimension), false, metric.clone())
        };
        let spec = index.get("spec");
        if let Some(serverless) = spec.and_then(|s| s.get("serverless")) {
            let cloud = text(serverless, "cloud").unwrap_or_default();
            let region = text(serverless, "region").unwrap_or_default();
            about.push_str(&format!("; serverless {cloud} {region}"));
        } else if let Some(pod) = spec.and_then(|s| s.get("pod")) {
            let environment = text(pod, "environment").unwrap_or_default();
            let pod_type = text(pod, "pod_type").unwrap_or_default();
            about.push_str(&format!("; pod {pod_type} in {environment}"));
        }
        if let Some(state) = index.get("status").and_then(|s| text(s, "state")) {
            about.push_str(&format!("; {state}"));
        }
        let columns = numbered(vec![
            column("id", "string".to_owned(), false, String::new()),
            vector,
            column("metadata", "json".to_owned(), true, String::new()),
        ]);
        Some(collection_table("pinecone", index_name, about, columns))
    });
    Ok(SchemaBuilder::new(tables.collect::<Vec<_>>(), options).finish())
}

/// Qdrant: the collection list, then each kept collection's parameters.
async fn qdrant(
    target: &Target<'_>,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, DiscoveryError> {
    let name = target.spec.display_name;
    let listing = target.get("/collections").await?;
    let collections = array_at(&listing, "/result/collections", name)?;
    let tables: Vec<(String, Table)> = collections
        .iter()
        .filter_map(|c| text(c, "name"))
        .map(|collection| listed("qdrant", collection))
        .collect();
    let mut builder = SchemaBuilder::new(tables, options);
    let kept: Vec<String> = builder.tables().map(|(_, t)| t.name.clone()).collect();
    for (i, collection) in kept.iter().enumerate() {
        let path = format!("/collections/{}", path_segment(collection));
        let info = target.get(&path).await?;
        let result = info.get("result").ok_or_else(|| unreadable(name))?;
        if let Some(table) = builder.table_mut(i) {
            describe_qdrant(table, result);
        }
    }
    Ok(builder.finish())
}

/// Fills a Qdrant collection's table from `GET /collections/{name}`'s `result`.
fn describe_qdrant(table: &mut Table, result: &Value) {
    let params = result.pointer("/config/params");
    let mut columns = vec![column(
        "id",
        "point_id".to_owned(),
        false,
        "unsigned integer or UUID".to_owned(),
    )];
    let mut vectors = Vec::new();
    match params.and_then(|p| p.get("vectors")) {
        // One unnamed vector: {"size": 4, "distance": "Dot"}.
        Some(v) if v.get("size").is_some() => vectors.push(("vector".to_owned(), v)),
        // Named vectors: {"image": {"size": .., "distance": ..}, ...}.
        Some(Value::Object(named)) => {
            vectors.extend(named.iter().map(|(n, v)| (n.clone(), v)));
        }
        _ => {}
    }
    let mut summary = Vec::new();
    for (vector_name, v) in vectors {
        let size = v.get("size").and_then(Value::as_u64);
        let distance = text(v, "distance").unwrap_or_default();
        summary.push(format!("{vector_name} {}, {distance}", dimensions(size)));
        columns.push(column(&vector_name, vector_type(size), false, distance));
    }
    if let Some(Value::Object(sparse)) = params.and_then(|p| p.get("sparse_vectors")) {
        for vector_name in sparse.keys() {
            columns.push(column(
                vector_name,
                "sparse_vector".to_owned(),
                true,
                String::new(),
            ));
        }
    }
    if let Some(Value::Object(indexed)) = result.get("payload_schema") {
        for (field, schema) in indexed {
            let data_type = text(schema, "data_type").unwrap_or_else(|| "json".to_owned());
            columns.push(column(
                field,
                data_type,
                true,
                "indexed payload field".to_owned(),
            ));
        }
    }
    columns.push(column("payload", "json".to_owned(), true, String::new()));
    let mut about = format!("Qdrant collection: {}", summary.join("; "));
    if let Some(points) = result.get("points_count").and_then(Value::as_u64) {
        about.push_str(&format!("; {points} points"));
    }
    if let Some(status) = text(result, "status") {
        about.push_str(&format!("; status {status}"));
    }
    table.description = about;
    table.columns = numbered(columns);
    table.primary_key = vec!["id".to_owned()];
}

/// Weaviate: one table per class of the schema.
async fn weaviate(
    target: &Target<'_>,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, DiscoveryError> {
    let name = target.spec.display_name;
    let schema = target.get("/v1/schema").await?;
    let classes = array_at(&schema, "/classes", name)?;
    let tables = classes.iter().filter_map(|class| {
        let class_name = text(class, "class")?;
        let mut columns = vec![column("id", "uuid".to_owned(), false, String::new())];
        let mut vectors = Vec::new();
        match class.get("vectorConfig") {
            // Named vectors, each with its own index and vectorizer.
            Some(Value::Object(named)) if !named.is_empty() => {
                for (vector_name, config) in named {
                    let distance = config
                        .pointer("/vectorIndexConfig/distance")
                        .and_then(Value::as_str)
                        .unwrap_or("cosine");
                    vectors.push((vector_name.clone(), distance.to_owned()));
                }
            }
            _ => {
                let distance = class
                    .pointer("/vectorIndexConfig/distance")
                    .and_then(Value::as_str)
                    .unwrap_or("cosine");
                vectors.push(("vector".to_owned(), distance.to_owned()));
            }
        }
        let summary: Vec<String> = vectors
            .iter()
            .map(|(vector_name, distance)| format!("{vector_name} {distance}"))
            .collect();
        for (vector_name, distance) in vectors {
            columns.push(column(&vector_name, vector_type(None), true, distance));
        }
        for property in class
            .get("properties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(property_name) = text(property, "name") else {
                continue;
            };
            let data_type = property
                .get("dataType")
                .and_then(Value::as_array)
                .map(|types| {
                    types
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "json".to_owned());
            let description = text(property, "description").unwrap_or_default();
            columns.push(column(&property_name, data_type, true, description));
        }
        let mut about = format!(
            "Weaviate class: {}; dimension not in the schema",
            summary.join(", ")
        );
        if let Some(vectorizer) = text(class, "vectorizer").filter(|v| v != "none") {
            about.push_str(&format!("; vectorizer {vectorizer}"));
        }
        if let Some(description) = text(class, "description").filter(|d| !d.is_empty()) {
            about.push_str(&format!("; {description}"));
        }
        Some(collection_table(
            "weaviate",
            class_name,
            about,
            numbered(columns),
        ))
    });
    Ok(SchemaBuilder::new(tables.collect::<Vec<_>>(), options).finish())
}

/// Milvus: the collection list, then each kept collection's description (its fields, the
/// vector fields' `dim`, and the metric of the index on each).
async fn milvus(
    target: &Target<'_>,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, DiscoveryError> {
    let name = target.spec.display_name;
    let listing = target.post("/v2/vectordb/collections/list", "{}").await?;
    let collections = array_at(&listing, "/data", name)?;
    let tables: Vec<(String, Table)> = collections
        .iter()
        .filter_map(Value::as_str)
        .map(|collection| listed("milvus", collection.to_owned()))
        .collect();
    let mut builder = SchemaBuilder::new(tables, options);
    let kept: Vec<String> = builder.tables().map(|(_, t)| t.name.clone()).collect();
    for (i, collection) in kept.iter().enumerate() {
        let body = serde_json::json!({ "collectionName": collection }).to_string();
        let described = target
            .post("/v2/vectordb/collections/describe", &body)
            .await?;
        let data = described.get("data").ok_or_else(|| unreadable(name))?;
        if let Some(table) = builder.table_mut(i) {
            describe_milvus(table, data);
        }
    }
    Ok(builder.finish())
}

/// Fills a Milvus collection's table from `collections/describe`'s `data`.
fn describe_milvus(table: &mut Table, data: &Value) {
    let metric_of = |field: &str| {
        data.get("indexes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|index| index.get("fieldName").and_then(Value::as_str) == Some(field))
            .and_then(|index| text(index, "metricType"))
    };
    let mut columns = Vec::new();
    let mut primary_key = Vec::new();
    let mut summary = Vec::new();
    for field in data
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(field_name) = text(field, "name") else {
            continue;
        };
        let kind = text(field, "type").unwrap_or_default();
        let param = |key: &str| {
            field
                .get("params")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| p.get("key").and_then(Value::as_str) == Some(key))
                .and_then(|p| match p.get("value") {
                    Some(Value::String(v)) => v.parse::<u64>().ok(),
                    Some(v) => v.as_u64(),
                    None => None,
                })
        };
        let is_key = field.get("primaryKey").and_then(Value::as_bool) == Some(true);
        let (data_type, description) = if kind.ends_with("Vector") {
            let dim = param("dim");
            let metric = metric_of(&field_name).unwrap_or_else(|| "no index".to_owned());
            summary.push(format!("{field_name} {}, {metric}", dimensions(dim)));
            let data_type = match kind.as_str() {
                "FloatVector" => vector_type(dim),
                other => dim.map_or_else(|| other.to_owned(), |d| format!("{other}({d})")),
            };
            (data_type, metric)
        } else {
            let data_type = match param("max_length") {
                Some(max) => format!("{kind}({max})"),
                None => kind,
            };
            (data_type, text(field, "description").unwrap_or_default())
        };
        if is_key {
            primary_key.push(field_name.clone());
        }
        columns.push(column(&field_name, data_type, !is_key, description));
    }
    let mut about = format!("Milvus collection: {}", summary.join("; "));
    if let Some(description) = text(data, "description").filter(|d| !d.is_empty()) {
        about.push_str(&format!("; {description}"));
    }
    table.description = about;
    table.columns = numbered(columns);
    table.primary_key = primary_key;
}

/// The tenant and database a Chroma discovery lists when the value names none.
const CHROMA_DEFAULTS: (&str, &str) = ("default_tenant", "default_database");

/// Chroma: the collections of the value's tenant and database.
async fn chroma(
    target: &Target<'_>,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, DiscoveryError> {
    let name = target.spec.display_name;
    let field = |f: &str, default: &'static str| {
        target
            .value
            .get(f)
            .map(|v| v.expose().trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    let tenant = field("tenant", CHROMA_DEFAULTS.0);
    let database = field("database", CHROMA_DEFAULTS.1);
    // One more than kept, so that a cut is seen.
    let limit = options.max_tables.saturating_add(1);
    let path = format!(
        "/api/v2/tenants/{}/databases/{}/collections?limit={limit}",
        path_segment(&tenant),
        path_segment(&database)
    );
    let listing = target.get(&path).await?;
    let collections = listing.as_array().ok_or_else(|| unreadable(name))?;
    let tables = collections.iter().filter_map(|c| {
        let collection = text(c, "name")?;
        let dimension = c.get("dimension").and_then(Value::as_u64);
        let metric = c
            .pointer("/configuration_json/hnsw/space")
            .or_else(|| c.pointer("/metadata/hnsw:space"))
            .and_then(Value::as_str)
            .unwrap_or("l2")
            .to_owned();
        let columns = numbered(vec![
            column("id", "string".to_owned(), false, String::new()),
            column("embedding", vector_type(dimension), false, metric.clone()),
            column("document", "string".to_owned(), true, String::new()),
            column("metadata", "json".to_owned(), true, String::new()),
        ]);
        Some(collection_table(
            &database,
            collection,
            format!(
                "Chroma collection: {}, {metric} distance",
                dimensions(dimension)
            ),
            columns,
        ))
    });
    Ok(SchemaBuilder::new(tables.collect::<Vec<_>>(), options).finish())
}

/// A name as one URL path segment: unreserved characters kept, everything else `%XX`.
fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A collection as a table of `namespace`: its description (dimension and metric) and its
/// columns, keyed by `id` as every vector store keys its records.
fn collection_table(
    namespace: &str,
    name: String,
    description: String,
    columns: Vec<Column>,
) -> (String, Table) {
    (
        namespace.to_owned(),
        Table {
            name,
            description,
            columns,
            primary_key: vec!["id".to_owned()],
            ..Table::default()
        },
    )
}

/// A collection known by name only, from a listing, before its own description is read.
fn listed(namespace: &str, name: String) -> (String, Table) {
    (
        namespace.to_owned(),
        Table {
            name,
            ..Table::default()
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_become_one_path_segment() {
        assert_eq!(path_segment("my-coll_1.x~"), "my-coll_1.x~");
        assert_eq!(path_segment("a/../b?c"), "a%2F..%2Fb%3Fc");
    }

    #[test]
    fn qdrant_named_vectors_become_columns() {
        let result: Value = serde_json::from_str(
            r#"{"status":"green","points_count":7,"config":{"params":{"vectors":{
                "image":{"size":512,"distance":"Cosine"},"text":{"size":384,"distance":"Dot"}}}},
                "payload_schema":{"city":{"data_type":"keyword","points":7}}}"#,
        )
        .unwrap();
        let mut table = Table::default();
        describe_qdrant(&mut table, &result);
        let image = table.columns.iter().find(|c| c.name == "image").unwrap();
        assert_eq!(
            (image.data_type.as_str(), image.description.as_str()),
            ("vector(512)", "Cosine")
        );
        assert!(
            table
                .columns
                .iter()
                .any(|c| c.name == "city" && c.data_type == "keyword")
        );
        assert!(
            table.description.contains("7 points"),
            "{}",
            table.description
        );
    }
}
