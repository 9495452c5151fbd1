//! The OpenAPI 3.1 document of the HTTP port: the JSON mapping's paths, generated from the
//! protos by `json-transcoding`, and the product surface's, from [`compat::OPERATIONS`] (the
//! table its router's labels come from). `docs/openapi.json` is this document, committed; a
//! test holds the two equal and each route to the document.

use super::compat;
use json_transcoding::{Transcoder, openapi};
use serde_json::{Value, json};

/// The document served on `GET /openapi.json`.
pub fn openapi_document(transcoder: &Transcoder) -> Value {
    let mut document = openapi::document(
        transcoder,
        &openapi::Info {
            title: "Credentials vault".into(),
            version: "v1".into(),
            description: concat!(
                "The credentials vault over HTTP/JSON. `/v1/...` is the JSON mapping of the gRPC API ",
                "(google.api.http, proto3 JSON names); `/api/v1/credentials` is the product surface with its ",
                "field names (`credentialName`, `plainDataObj`). Every call needs `Authorization: Bearer <JWT>`. ",
                "Errors are `google.rpc.Status` JSON with the HTTP status of the gRPC code. ",
                "Secrets are never returned, only `maskedContent`; `/v1/workspaces/{workspace_id}/credentials:access` ",
                "returns plaintext to tokens with the `access` permission."
            )
            .into(),
        },
    );
    if let Some(paths) = document["paths"].as_object_mut() {
        for (path, method, operation) in compat::openapi_operations() {
            let entry = paths.entry(path).or_insert_with(|| json!({}));
            entry[method] = operation;
        }
    }
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        for (name, schema) in compat::openapi_schemas() {
            schemas.insert(name.into(), schema);
        }
    }
    document
}
