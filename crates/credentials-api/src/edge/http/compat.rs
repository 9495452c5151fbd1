//! The product document's credentials API (`/api/v1/credentials`): its paths, field names and
//! answers, over the same RPCs as everything else.
//!
//! - `credentialName` is the product's type name where the catalogue maps one (`openAIApi`),
//!   else our type id; either is accepted, on create and as the list filter.
//! - `plainDataObj` takes the product's field names (`openAIApiKey`, `pineconeApiKey`) or ours.
//! - Objects carry `id`, `name`, `credentialName`, `workspaceId`, `createdDate`, `updatedDate`,
//!   and what the vault adds under the JSON mapping's names (`type`, `category`,
//!   `maskedContent`, `isDefault`, `validation`, `hasSchema`, `etag`, ...). Never a ciphertext:
//!   the product's `encryptedData` is not there.
//! - The workspace is the token's, or `X-Workspace-Id` when the token names several.
//! - A deleted credential is gone here (404), as "deleted permanently" says; its metadata is
//!   still visible through `/v1/...?showDeleted=true`.
//! - `PUT` changes the fields given; a `plainDataObj` replaces the whole value. `If-Match`
//!   guards `PUT` and `DELETE` as on `/v1`.

use super::Channel;
use bytes::Bytes;
use credentials_core::catalogue::{self, TypeSpec};
use credentials_proto::credentials::v1 as pb;
use json_transcoding::{BadRequest, Transcoder, bad_request, json_response};
use pb::credentials_service_client::CredentialsServiceClient;
use prost::Message as _;
use prost_reflect::{DynamicMessage, SerializeOptions};
use serde_json::{Map, Value, json};
use tonic::codegen::http;

/// The collection's path.
const COLLECTION: &str = "/api/v1/credentials";

/// One operation of the surface.
#[derive(Debug, Clone)]
pub enum Operation {
    /// `GET /api/v1/credentials`.
    List,
    /// `POST /api/v1/credentials`.
    Create,
    /// `GET /api/v1/credentials/{id}`.
    Get(String),
    /// `PUT /api/v1/credentials/{id}`.
    Update(String),
    /// `DELETE /api/v1/credentials/{id}`.
    Delete(String),
}

impl Operation {
    /// The route template, for metrics and traces.
    pub fn label(&self) -> &'static str {
        match self {
            Operation::List => "GET /api/v1/credentials",
            Operation::Create => "POST /api/v1/credentials",
            Operation::Get(_) => "GET /api/v1/credentials/{id}",
            Operation::Update(_) => "PUT /api/v1/credentials/{id}",
            Operation::Delete(_) => "DELETE /api/v1/credentials/{id}",
        }
    }
}

/// The operation of `method` on `path`: `None` outside the surface, `Err` with the methods the
/// path takes.
pub fn route(method: &http::Method, path: &str) -> Option<Result<Operation, Vec<http::Method>>> {
    let rest = path.strip_prefix(COLLECTION)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(match *method {
            http::Method::GET => Ok(Operation::List),
            http::Method::POST => Ok(Operation::Create),
            _ => Err(vec![http::Method::GET, http::Method::POST]),
        });
    }
    let id = rest.strip_prefix('/')?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    let id = percent_encoding::percent_decode_str(id)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some(match *method {
        http::Method::GET => Ok(Operation::Get(id)),
        http::Method::PUT => Ok(Operation::Update(id)),
        http::Method::DELETE => Ok(Operation::Delete(id)),
        _ => Err(vec![
            http::Method::GET,
            http::Method::PUT,
            http::Method::DELETE,
        ]),
    })
}

/// The answer to `op`.
pub async fn answer(
    transcoder: &Transcoder,
    channel: Channel,
    op: Operation,
    parts: &http::request::Parts,
    body: &[u8],
) -> http::Response<Bytes> {
    // One request id for every RPC this request makes (the auth layer keeps a sane one the
    // caller sends), and on the answer, whichever way it ends.
    let request_id = crate::edge::auth_layer::request_id(&parts.headers);
    let call = Call {
        transcoder,
        client: CredentialsServiceClient::new(channel),
        parts,
        request_id: tonic::metadata::MetadataValue::try_from(request_id.as_str()).ok(),
    };
    let mut response = match call.run(op, body).await {
        Ok(response) => response,
        Err(Refusal::Status(status, conditional)) => transcoder.error(&status, conditional),
        Err(Refusal::Bad(bad)) => transcoder.error(&bad_request(&bad), false),
    };
    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

enum Refusal {
    /// From the RPC, and whether `If-Match` was sent.
    Status(tonic::Status, bool),
    /// From reading the request.
    Bad(BadRequest),
}

impl From<tonic::Status> for Refusal {
    fn from(status: tonic::Status) -> Self {
        Refusal::Status(status, false)
    }
}

fn bad(field: &str, description: impl Into<String>) -> Refusal {
    Refusal::Bad(BadRequest {
        field: field.to_owned(),
        description: description.into(),
    })
}

struct Call<'a> {
    transcoder: &'a Transcoder,
    client: CredentialsServiceClient<Channel>,
    parts: &'a http::request::Parts,
    request_id: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Call<'_> {
    async fn run(mut self, op: Operation, body: &[u8]) -> Result<http::Response<Bytes>, Refusal> {
        let workspace_id = self.header("x-workspace-id").unwrap_or_default().to_owned();
        let ok = |value: Value| {
            json_response(
                http::StatusCode::OK,
                (serde_json::to_vec(&value).unwrap_or_default(), None),
            )
        };
        match op {
            Operation::List => {
                let mut r#type = String::new();
                for (key, value) in
                    form_urlencoded::parse(self.parts.uri.query().unwrap_or_default().as_bytes())
                {
                    match key.as_ref() {
                        "credentialName" => r#type = resolve_type(&value)?.id.to_owned(),
                        other => {
                            return Err(bad(
                                other,
                                "not a filter of this list: the filter is credentialName",
                            ));
                        }
                    }
                }
                let mut all = Vec::new();
                let mut page_token = String::new();
                loop {
                    let request = pb::ListCredentialsRequest {
                        workspace_id: workspace_id.clone(),
                        r#type: r#type.clone(),
                        page_size: credentials_core::limits::MAX_PAGE_SIZE as i32,
                        page_token,
                        ..Default::default()
                    };
                    let page = self
                        .client
                        .list_credentials(self.request(request))
                        .await?
                        .into_inner();
                    all.extend(page.credentials.iter().map(|c| self.object(c)));
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    page_token = page.next_page_token;
                }
                Ok(ok(Value::Array(all)))
            }
            Operation::Get(id) => {
                let credential = self.live(&workspace_id, &id).await?;
                Ok(self.with_etag(ok(self.object(&credential)), &credential))
            }
            Operation::Create => {
                let mut body = object(body)?;
                let name = take_string(&mut body, "name", true)?.unwrap_or_default();
                let type_name = take_string(&mut body, "credentialName", true)?.unwrap_or_default();
                let spec = resolve_type(&type_name)?;
                let description = take_string(&mut body, "description", false)?.unwrap_or_default();
                let make_default = match body.remove("isDefault") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => b,
                    Some(_) => return Err(bad("isDefault", "must be true or false")),
                };
                let value = match body.remove("plainDataObj") {
                    Some(data) => value(spec, data)?,
                    None => {
                        return Err(bad("plainDataObj", "is required: the credential's fields"));
                    }
                };
                no_other_fields(&body)?;
                let request = pb::CreateCredentialRequest {
                    workspace_id,
                    name,
                    r#type: spec.id.to_owned(),
                    description,
                    value: Some(value),
                    make_default,
                    ..Default::default()
                };
                let created = self
                    .client
                    .create_credential(self.request(request))
                    .await?
                    .into_inner();
                let credential = created.credential.unwrap_or_default();
                Ok(self.with_etag(ok(self.object(&credential)), &credential))
            }
            Operation::Update(id) => {
                let mut body = object(body)?;
                let name = take_string(&mut body, "name", false)?;
                let description = take_string(&mut body, "description", false)?;
                let data = body.remove("plainDataObj").filter(|v| !v.is_null());
                no_other_fields(&body)?;
                // The type decides what the product's field names mean; a credential of
                // another workspace is not found here, before anything is read.
                let current = self.live(&workspace_id, &id).await?;
                let value = match data {
                    Some(data) => {
                        let spec = catalogue::lookup(&current.r#type).ok_or_else(|| {
                            bad(
                                "plainDataObj",
                                "the credential's type is no longer in the catalogue",
                            )
                        })?;
                        Some(value(spec, data)?)
                    }
                    None => None,
                };
                let etag = self.if_match();
                let conditional = etag.is_some();
                let request = pb::UpdateCredentialRequest {
                    workspace_id,
                    id,
                    etag: etag.unwrap_or_default(),
                    name,
                    description,
                    value,
                };
                let updated = self
                    .client
                    .update_credential(self.request(request))
                    .await
                    .map_err(|s| Refusal::Status(s, conditional))?
                    .into_inner();
                let credential = updated.credential.unwrap_or_default();
                Ok(self.with_etag(ok(self.object(&credential)), &credential))
            }
            Operation::Delete(id) => {
                if !body.iter().all(u8::is_ascii_whitespace) {
                    return Err(bad("", "DELETE takes no body"));
                }
                self.live(&workspace_id, &id).await?;
                let etag = self.if_match();
                let conditional = etag.is_some();
                let request = pb::DeleteCredentialRequest {
                    workspace_id,
                    id,
                    etag: etag.unwrap_or_default(),
                };
                self.client
                    .delete_credential(self.request(request))
                    .await
                    .map_err(|s| Refusal::Status(s, conditional))?;
                Ok(ok(json!({"message": "Credential deleted successfully"})))
            }
        }
    }

    /// A credential that is not deleted; a deleted one is not found, like a missing id.
    async fn live(&mut self, workspace_id: &str, id: &str) -> Result<pb::Credential, Refusal> {
        let request = pb::GetCredentialRequest {
            workspace_id: workspace_id.to_owned(),
            id: id.to_owned(),
        };
        let got = self
            .client
            .get_credential(self.request(request))
            .await?
            .into_inner();
        match got.credential {
            Some(credential) if credential.deleted_at.is_none() => Ok(credential),
            _ => Err(tonic::Status::not_found("credential not found").into()),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn if_match(&self) -> Option<String> {
        self.header("if-match").map(|v| {
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_owned()
        })
    }

    /// `message` with the caller's token and this request's id.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = self.parts.headers.get(http::header::AUTHORIZATION)
            && let Ok(value) = tonic::metadata::MetadataValue::try_from(value.as_bytes())
        {
            request.metadata_mut().insert("authorization", value);
        }
        if let Some(id) = &self.request_id {
            request.metadata_mut().insert("x-request-id", id.clone());
        }
        request
    }

    /// The product's object of a credential: the JSON mapping's, with its names where it has
    /// its own.
    fn object(&self, credential: &pb::Credential) -> Value {
        let mut object = self
            .transcoder
            .pool()
            .get_message_by_name("credentials.v1.Credential")
            .and_then(|desc| {
                DynamicMessage::decode(desc, credential.encode_to_vec().as_slice()).ok()
            })
            .and_then(|message| {
                let mut out = serde_json::Serializer::new(Vec::new());
                message
                    .serialize_with_options(
                        &mut out,
                        &SerializeOptions::new().skip_default_fields(false),
                    )
                    .ok()?;
                serde_json::from_slice::<Map<String, Value>>(&out.into_inner()).ok()
            })
            .unwrap_or_default();
        for (ours, theirs) in [("createdAt", "createdDate"), ("updatedAt", "updatedDate")] {
            if let Some(value) = object.remove(ours) {
                object.insert(theirs.into(), value);
            }
        }
        // Deleted credentials are never answered here.
        object.remove("deletedAt");
        let name = catalogue::lookup(&credential.r#type)
            .and_then(TypeSpec::alias)
            .unwrap_or(&credential.r#type);
        object.insert("credentialName".into(), name.into());
        Value::Object(object)
    }

    fn with_etag(
        &self,
        mut response: http::Response<Bytes>,
        credential: &pb::Credential,
    ) -> http::Response<Bytes> {
        if let Ok(value) = http::HeaderValue::from_str(&format!("\"{}\"", credential.etag)) {
            response.headers_mut().insert(http::header::ETAG, value);
        }
        response
    }
}

/// The type a `credentialName` names: the product's name or our id.
fn resolve_type(name: &str) -> Result<&'static TypeSpec, Refusal> {
    catalogue::by_alias(name)
        .or_else(|| catalogue::lookup(name))
        .ok_or_else(|| {
            bad(
                "credentialName",
                format!("{name:?} is not a credential type: see GET /v1/credentialTypes"),
            )
        })
}

/// The body as a JSON object.
fn object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("", "the body must be a JSON object"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad("", "the body must be a JSON object")),
        Err(e) => Err(bad("", format!("the body is not valid JSON: {e}"))),
    }
}

fn take_string(
    body: &mut Map<String, Value>,
    field: &str,
    required: bool,
) -> Result<Option<String>, Refusal> {
    match body.remove(field) {
        Some(Value::String(s)) => Ok(Some(s)),
        None | Some(Value::Null) if required => Err(bad(field, "is required")),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

fn no_other_fields(body: &Map<String, Value>) -> Result<(), Refusal> {
    match body.keys().next() {
        Some(key) => Err(bad(key, "unknown field")),
        None => Ok(()),
    }
}

/// `plainDataObj` as a value of `spec`: each key the product's field name or ours, each value
/// a string (numbers and booleans are taken as their text, as form fields send them).
fn value(spec: &TypeSpec, data: Value) -> Result<pb::CredentialValue, Refusal> {
    let Value::Object(data) = data else {
        return Err(bad(
            "plainDataObj",
            "must be an object of the credential's fields",
        ));
    };
    let mut values = std::collections::HashMap::new();
    for (key, value) in data {
        let field = spec
            .field(&key)
            .or_else(|| spec.field_by_alias(&key))
            .ok_or_else(|| {
                let names: Vec<&str> = spec
                    .fields
                    .iter()
                    .map(|f| f.alias().unwrap_or(f.name))
                    .collect();
                bad(
                    &format!("plainDataObj.{key}"),
                    format!(
                        "not a field of {}: its fields are {}",
                        spec.id,
                        names.join(", ")
                    ),
                )
            })?;
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(bad(&format!("plainDataObj.{key}"), "must be a string")),
        };
        if values.insert(field.name.to_owned(), text).is_some() {
            return Err(bad(
                &format!("plainDataObj.{key}"),
                format!("{} is given twice (under both of its names)", field.name),
            ));
        }
    }
    Ok(pb::CredentialValue {
        kind: Some(pb::credential_value::Kind::Fields(pb::CredentialFields {
            values,
        })),
    })
}

/// Every operation, with its OpenAPI path and method: the document is built from this table,
/// and a test holds [`route`] to it.
pub const OPERATIONS: [(&str, &str, &str); 5] = [
    (
        "GET",
        COLLECTION,
        "List the workspace's credentials, optionally of one type (credentialName).",
    ),
    (
        "POST",
        COLLECTION,
        "Create a credential from a name, a credentialName and its plainDataObj.",
    ),
    ("GET", "/api/v1/credentials/{id}", "Get a credential."),
    (
        "PUT",
        "/api/v1/credentials/{id}",
        "Update a credential's name, description or plainDataObj (which replaces the whole value).",
    ),
    (
        "DELETE",
        "/api/v1/credentials/{id}",
        "Delete a credential: its secret is destroyed.",
    ),
];

const OBJECT: &str = "#/components/schemas/compat.Credential";

/// The OpenAPI operations of the surface: `(path, lower-case method, operation)`.
pub fn openapi_operations() -> Vec<(String, &'static str, Value)> {
    OPERATIONS
        .iter()
        .map(|(method, path, summary)| {
            let mut parameters = vec![json!({
                "name": "X-Workspace-Id", "in": "header", "required": false, "schema": {"type": "string"},
                "description": "The workspace, when the token names more than one.",
            })];
            if path.ends_with("{id}") {
                parameters.push(json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}));
            }
            if *method == "GET" && !path.ends_with("{id}") {
                parameters.push(json!({
                    "name": "credentialName", "in": "query", "required": false, "schema": {"type": "string"},
                    "description": "Only credentials of this type: the product's name (openAIApi) or the type id (openai).",
                }));
            }
            if matches!(*method, "PUT" | "DELETE") {
                parameters.push(json!({
                    "name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"},
                    "description": "The etag from the last read: 412 when the credential changed since.",
                }));
            }
            let ok = match (*method, path.ends_with("{id}")) {
                ("GET", false) => json!({"type": "array", "items": {"$ref": OBJECT}}),
                ("DELETE", _) => json!({"type": "object", "properties": {"message": {"type": "string", "const": "Credential deleted successfully"}}}),
                _ => json!({"$ref": OBJECT}),
            };
            let mut operation = json!({
                "operationId": format!("compat_{}_{}", method.to_ascii_lowercase(), if path.ends_with("{id}") { "credential" } else { "credentials" }),
                "summary": summary,
                "tags": ["ProductCredentials"],
                "parameters": parameters,
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": ok}}},
                    "default": {
                        "description": "An error, as google.rpc.Status with the HTTP status of its code.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}},
                    },
                },
            });
            let body = match *method {
                "POST" => Some("#/components/schemas/compat.CreateCredential"),
                "PUT" => Some("#/components/schemas/compat.UpdateCredential"),
                _ => None,
            };
            if let Some(schema) = body {
                operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": schema}}}});
            }
            ((*path).to_owned(), lower(method), operation)
        })
        .collect()
}

fn lower(method: &str) -> &'static str {
    match method {
        "GET" => "get",
        "POST" => "post",
        "PUT" => "put",
        _ => "delete",
    }
}

/// The surface's own schemas.
pub fn openapi_schemas() -> Vec<(&'static str, Value)> {
    let data = json!({
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean"]},
        "description": "The credential's fields by the product's names (openAIApiKey; pineconeApiKey and pineconeEnv) or the catalogue's (api_key).",
    });
    vec![
        (
            "compat.Credential",
            json!({
                "description": "A credential with the product's names; never its value or a ciphertext.",
                "allOf": [
                    {"$ref": "#/components/schemas/credentials.v1.Credential"},
                    {"type": "object", "properties": {
                        "credentialName": {"type": "string", "description": "The product's type name (openAIApi), or the type id where it has none."},
                        "createdDate": {"type": "string", "format": "date-time"},
                        "updatedDate": {"type": "string", "format": "date-time"},
                    }},
                ],
            }),
        ),
        (
            "compat.CreateCredential",
            json!({
                "type": "object",
                "required": ["name", "credentialName", "plainDataObj"],
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string"},
                    "credentialName": {"type": "string"},
                    "plainDataObj": data,
                    "description": {"type": "string"},
                    "isDefault": {"type": "boolean"},
                },
            }),
        ),
        (
            "compat.UpdateCredential",
            json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "plainDataObj": data,
                },
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_and_the_documented_operations_are_the_same_table() {
        for (method, path, _) in OPERATIONS {
            let concrete = path.replace("{id}", "abc");
            let op = route(&method.parse().unwrap(), &concrete)
                .unwrap_or_else(|| panic!("{method} {path} is not routed"))
                .unwrap_or_else(|_| panic!("{method} {path} is refused"));
            assert_eq!(op.label(), format!("{method} {path}"));
        }
        // Every method the router takes is documented.
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"] {
            for path in [COLLECTION, "/api/v1/credentials/{id}"] {
                let routed = route(&method.parse().unwrap(), &path.replace("{id}", "abc"));
                let documented = OPERATIONS
                    .iter()
                    .any(|(m, p, _)| *m == method && *p == path);
                assert_eq!(matches!(routed, Some(Ok(_))), documented, "{method} {path}");
            }
        }
        assert!(route(&http::Method::GET, "/api/v1/credentials/a/b").is_none());
        assert!(route(&http::Method::GET, "/api/v1/credentialsX").is_none());
    }
}
