//! An OpenAPI 3.1 document of the routes, built from the same descriptor pool as the routes
//! themselves: paths and operations from the `google.api.http` rules, parameters and bodies
//! from the request messages, schemas from the messages as the proto3 JSON mapping writes
//! them, and descriptions from the protos' comments.

use crate::{BodyRule, Route, Transcoder};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The document's `info`.
#[derive(Debug, Clone)]
pub struct Info {
    /// The API's title.
    pub title: String,
    /// The API's version.
    pub version: String,
    /// What it is, in Markdown.
    pub description: String,
}

/// The OpenAPI document of `transcoder`'s routes. Every operation needs a bearer token.
pub fn document(transcoder: &Transcoder, info: &Info) -> Value {
    let mut schemas = Schemas::default();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut seen_ids = BTreeSet::new();
    for route in transcoder.routes() {
        let mut id = format!("{}_{}", route.rpc.parent_service().name(), route.rpc.name());
        let mut n = 2;
        while !seen_ids.insert(id.clone()) {
            id = format!(
                "{}_{}{n}",
                route.rpc.parent_service().name(),
                route.rpc.name()
            );
            n += 1;
        }
        let operation = operation(route, id, &mut schemas);
        paths
            .entry(route.template.as_str().to_owned())
            .or_default()
            .insert(
                route.method.as_str().to_ascii_lowercase(),
                Value::Object(operation),
            );
    }
    if let Some(status) = transcoder.pool().get_message_by_name("google.rpc.Status") {
        schemas.reference(&status);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": info.title, "version": info.version, "description": info.description},
        "paths": paths,
        "components": {
            "schemas": schemas.finish(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    })
}

fn operation(route: &Route, id: String, schemas: &mut Schemas) -> Map<String, Value> {
    let input = route.input();
    let bound: BTreeSet<&str> = route.template.variables().collect();
    let mut parameters = Vec::new();
    for variable in route.template.variables() {
        let field = crate::rules::field_path(&input, variable).and_then(|f| f.last().cloned());
        let mut schema = field
            .as_ref()
            .map_or(json!({"type": "string"}), |f| schemas.field(f));
        strip_description(&mut schema);
        parameters.push(json!({
            "name": variable, "in": "path", "required": true, "schema": schema,
            "description": field.as_ref().map(comment_of_field).unwrap_or_default(),
        }));
    }
    if route.body == BodyRule::None {
        for field in input.fields() {
            if bound.contains(field.name()) || !queryable(&field) {
                continue;
            }
            let mut schema = schemas.field(&field);
            strip_description(&mut schema);
            parameters.push(json!({
                "name": field.json_name(), "in": "query", "schema": schema,
                "description": comment_of_field(&field),
            }));
        }
    }
    let mut op = Map::new();
    let comment = comment(
        route.rpc.parent_file().file_descriptor_proto(),
        route.rpc.path(),
    );
    op.insert("operationId".into(), id.into());
    op.insert("summary".into(), first_sentence(&comment).into());
    op.insert(
        "description".into(),
        format!(
            "{comment}\n\ngRPC: `{}`",
            route.grpc_path.trim_start_matches('/')
        )
        .trim()
        .into(),
    );
    op.insert("tags".into(), json!([route.rpc.parent_service().name()]));
    if !parameters.is_empty() {
        op.insert("parameters".into(), parameters.into());
    }
    let body_schema = match &route.body {
        BodyRule::None => None,
        BodyRule::Whole => {
            let mut properties = Map::new();
            for field in input.fields().filter(|f| !bound.contains(f.name())) {
                properties.insert(field.json_name().to_owned(), schemas.field(&field));
            }
            Some(json!({"type": "object", "properties": properties, "additionalProperties": false}))
        }
        BodyRule::Field(name) => input.get_field_by_name(name).map(|f| schemas.field(&f)),
    };
    if let Some(schema) = body_schema {
        op.insert(
            "requestBody".into(),
            json!({"required": false, "content": {"application/json": {"schema": schema}}}),
        );
    }
    let output = schemas.reference(&route.output());
    op.insert(
        "responses".into(),
        json!({
            "200": {"description": "OK", "content": {"application/json": {"schema": output}}},
            "default": {
                "description": "An error, as google.rpc.Status with the HTTP status of its code.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}},
            },
        }),
    );
    op
}

/// Whether a field can be a query parameter: a scalar, an enum, a list of those, or a message
/// the mapping writes as a string.
fn queryable(field: &FieldDescriptor) -> bool {
    if field.is_map() {
        return false;
    }
    match field.kind() {
        Kind::Message(m) => !field.is_list() && is_string_valued(&m),
        _ => true,
    }
}

fn is_string_valued(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
    )
}

fn strip_description(schema: &mut Value) {
    if let Some(object) = schema.as_object_mut() {
        object.remove("description");
    }
}

/// The component schemas the document refers to, filled in as they are referred to.
#[derive(Default)]
struct Schemas {
    done: BTreeMap<String, Value>,
}

impl Schemas {
    /// A `$ref` to the message's schema, adding it (and what it refers to) when new.
    fn reference(&mut self, message: &MessageDescriptor) -> Value {
        let name = message.full_name().to_owned();
        if !self.done.contains_key(&name) {
            // Placed first, so that a message that refers to itself ends.
            self.done.insert(name.clone(), Value::Null);
            let mut properties = Map::new();
            for field in message.fields() {
                properties.insert(field.json_name().to_owned(), self.field(&field));
            }
            let mut schema = json!({"type": "object", "properties": properties});
            let description = comment(message.parent_file_descriptor_proto(), message.path());
            if !description.is_empty() {
                schema["description"] = description.into();
            }
            self.done.insert(name.clone(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// A field's schema as the JSON mapping writes it, with its comment.
    fn field(&mut self, field: &FieldDescriptor) -> Value {
        let mut schema = if field.is_map() {
            let value = field
                .kind()
                .as_message()
                .and_then(|entry| entry.get_field_by_name("value"))
                .map_or(json!({}), |v| self.kind(&v.kind()));
            json!({"type": "object", "additionalProperties": value})
        } else if field.is_list() {
            json!({"type": "array", "items": self.kind(&field.kind())})
        } else {
            self.kind(&field.kind())
        };
        let mut description = comment_of_field(field);
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
            let others: Vec<String> = oneof.fields().map(|f| f.json_name().to_owned()).collect();
            description = format!("{description} (one of: {})", others.join(", "))
                .trim()
                .to_owned();
        }
        if !description.is_empty() {
            // A `$ref` with siblings is valid in 3.1.
            schema["description"] = description.into();
        }
        schema
    }

    fn kind(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int32", "minimum": 0})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
            Kind::Float | Kind::Double => json!({"type": "number"}),
            Kind::Enum(e) => {
                json!({"type": "string", "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>()})
            }
            Kind::Message(m) => match m.full_name() {
                "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
                "google.protobuf.Duration" => {
                    json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "examples": ["30s"]})
                }
                "google.protobuf.FieldMask" | "google.protobuf.StringValue" => {
                    json!({"type": "string"})
                }
                "google.protobuf.Any" => {
                    json!({"type": "object", "properties": {"@type": {"type": "string"}}, "additionalProperties": true})
                }
                "google.protobuf.Struct" => json!({"type": "object"}),
                "google.protobuf.Value" => json!({}),
                _ => self.reference(m),
            },
        }
    }

    fn finish(self) -> Map<String, Value> {
        self.done.into_iter().collect()
    }
}

fn comment_of_field(field: &FieldDescriptor) -> String {
    comment(
        field.parent_message().parent_file_descriptor_proto(),
        field.path(),
    )
}

/// The leading comment of the element at `path` in `file`, joined into one paragraph per
/// blank line.
fn comment(file: &prost_reflect::prost_types::FileDescriptorProto, path: &[i32]) -> String {
    let Some(info) = &file.source_code_info else {
        return String::new();
    };
    info.location
        .iter()
        .find(|l| l.path == path)
        .and_then(|l| l.leading_comments.as_deref())
        .map(|text| {
            text.split("\n\n")
                .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n")
        })
        .unwrap_or_default()
}

fn first_sentence(text: &str) -> String {
    let first = text.split("\n\n").next().unwrap_or_default();
    match first.find(". ") {
        Some(end) => first[..=end].trim().to_owned(),
        None => first.trim().to_owned(),
    }
}
