//! From an HTTP request to the RPC's request message: the body (per the rule's `body`), the
//! query string (fields the body does not carry), the path's variables, and `If-Match` for a
//! request with a top-level `etag`, assembled as one JSON object in proto field names and read
//! once by prost-reflect's proto3 JSON mapping, so that every mistake is reported the same way:
//! the field's path and what is wrong with it.

use crate::rules::{BodyRule, Route, field_path};
use prost_reflect::{DeserializeOptions, DynamicMessage, Kind};
use serde_json::{Map, Value};

/// A request the mapping refuses, naming the field (a dotted path in proto names; empty for
/// the request as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// The offending field, e.g. `value.fields`; empty for the whole body.
    pub field: String,
    /// What is wrong, for the caller.
    pub description: String,
}

impl BadRequest {
    fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Message types that the JSON mapping writes as one string, and so may come from a query
/// parameter or a path variable.
const STRING_VALUED: [&str; 4] = [
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.StringValue",
];

/// The request message of `route` from its parts.
pub fn request_message(
    route: &Route,
    bindings: &[(String, String)],
    query: Option<&str>,
    if_match: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, BadRequest> {
    let input = route.input();
    let body_json = || -> Result<Value, BadRequest> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        serde_json::from_slice(body)
            .map_err(|e| BadRequest::new("", format!("the body is not valid JSON: {e}")))
    };
    let mut object = match &route.body {
        BodyRule::None if !body.iter().all(u8::is_ascii_whitespace) => {
            return Err(BadRequest::new(
                "",
                format!(
                    "{} takes no body: send the fields as query parameters",
                    route.label()
                ),
            ));
        }
        BodyRule::None => Map::new(),
        BodyRule::Whole => match body_json()? {
            Value::Object(map) => map,
            _ => return Err(BadRequest::new("", "the body must be a JSON object")),
        },
        BodyRule::Field(field) => {
            let mut map = Map::new();
            map.insert(field.clone(), body_json()?);
            map
        }
    };

    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if route.body == BodyRule::Whole {
            return Err(BadRequest::new(
                key.as_ref(),
                "this method takes its fields in the JSON body, not the query string",
            ));
        }
        set_from_text(&mut object, &input, &key, &value, true)?;
    }
    for (path, value) in bindings {
        set_from_text(&mut object, &input, path, value, false)?;
    }
    if let (Some(header), Some(etag)) = (if_match, input.get_field_by_name("etag"))
        && matches!(etag.kind(), Kind::String)
    {
        let tag = header
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_owned();
        let given = object
            .get("etag")
            .or_else(|| object.get(etag.json_name()))
            .and_then(Value::as_str);
        match given {
            Some(given) if !given.is_empty() && given != tag => {
                return Err(BadRequest::new(
                    "etag",
                    "the If-Match header and the body's etag differ",
                ));
            }
            _ => {
                object.remove(etag.json_name());
                object.insert("etag".into(), Value::String(tag));
            }
        }
    }

    unknown_fields(&object, &input, "")?;
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(Value::Object(object), &mut track);
    DynamicMessage::deserialize_with_options(input, deserializer, &options).map_err(|e| {
        let path = track.path().to_string();
        let field = if path == "." { String::new() } else { path };
        BadRequest::new(field, e.to_string())
    })
}

/// Sets the field at dotted `path` from text (a query parameter when `from_query`, else a path
/// variable, which replaces whatever the body said).
fn set_from_text(
    object: &mut Map<String, Value>,
    input: &prost_reflect::MessageDescriptor,
    path: &str,
    text: &str,
    from_query: bool,
) -> Result<(), BadRequest> {
    let fields = field_path(input, path).ok_or_else(|| {
        BadRequest::new(path, "no such field (or not one a query parameter can set)")
    })?;
    let (leaf, parents) = fields.split_last().expect("a path has at least one step");
    let mut map = object;
    for parent in parents {
        let entry = map
            .entry(parent.name().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        map = match entry {
            Value::Object(map) => map,
            _ => return Err(BadRequest::new(parent.name(), "must be an object")),
        };
    }
    if leaf.is_map() {
        return Err(BadRequest::new(
            path,
            "a map cannot come from the query string",
        ));
    }
    let value = match leaf.kind() {
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(BadRequest::new(path, "must be true or false")),
        },
        Kind::Double | Kind::Float => match text.parse::<f64>() {
            Ok(n) if n.is_finite() => {
                serde_json::Number::from_f64(n).map_or(Value::String(text.into()), Value::Number)
            }
            _ => Value::String(text.to_owned()),
        },
        Kind::Message(m) if !STRING_VALUED.contains(&m.full_name()) => {
            return Err(BadRequest::new(
                path,
                "a message cannot come from the query string",
            ));
        }
        // Strings, bytes (base64), enums (by name) and integers (the mapping takes decimal
        // strings for every integer type) as they are.
        _ => Value::String(text.to_owned()),
    };
    let key = leaf.name().to_owned();
    if !from_query {
        map.remove(leaf.json_name());
        map.insert(key, value);
    } else if leaf.is_list() {
        match map.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(items) => items.push(value),
            _ => return Err(BadRequest::new(path, "must be a list")),
        }
    } else if map.contains_key(&key) || map.contains_key(leaf.json_name()) {
        return Err(BadRequest::new(path, "given more than once"));
    } else {
        map.insert(key, value);
    }
    Ok(())
}

/// The first key of `object` (at `path`) that names no field of `message`, looking into nested
/// messages and lists of them: prost-reflect refuses it too, but without saying where.
fn unknown_fields(
    object: &Map<String, Value>,
    message: &prost_reflect::MessageDescriptor,
    path: &str,
) -> Result<(), BadRequest> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    for (key, value) in object {
        let Some(field) = message
            .get_field_by_name(key)
            .or_else(|| message.get_field_by_json_name(key))
        else {
            return Err(BadRequest::new(
                at(key),
                format!("unknown field of {}", message.name()),
            ));
        };
        let Kind::Message(inner) = field.kind() else {
            continue;
        };
        if field.is_map() || inner.full_name().starts_with("google.protobuf.") {
            continue;
        }
        match value {
            Value::Object(nested) if !field.is_list() => unknown_fields(nested, &inner, &at(key))?,
            Value::Array(items) if field.is_list() => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(nested) = item {
                        unknown_fields(nested, &inner, &format!("{}[{i}]", at(key)))?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
