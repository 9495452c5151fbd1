//! The mapping of the vault's own protos: every RPC has a route, and requests assemble as
//! Google's HTTP mapping says (path variables, query parameters, bodies, If-Match), with each
//! mistake naming its field.

#![allow(clippy::unwrap_used)]

use json_transcoding::{Lookup, Transcoder, request_message};
use prost_reflect::{DynamicMessage, ReflectMessage as _, Value};

const SERVICES: [&str; 3] = [
    "credentials.v1.CredentialsService",
    "credentials.v1.AccessService",
    "credentials.v1.AdminService",
];

fn transcoder() -> Transcoder {
    Transcoder::new(credentials_proto::FILE_DESCRIPTOR_SET, &SERVICES).unwrap()
}

/// The request `method path?query` with `body` assembles into, or the refusal's field.
fn assemble(
    method: &str,
    target: &str,
    body: &str,
    if_match: Option<&str>,
) -> Result<DynamicMessage, String> {
    let t = transcoder();
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let Lookup::Found(route, bindings) = t.lookup(&method.parse().unwrap(), path) else {
        panic!("{method} {path} has no route");
    };
    request_message(route, &bindings, query, if_match, body.as_bytes())
        .map_err(|bad| format!("{}|{}", bad.field, bad.description))
}

fn text(message: &DynamicMessage, field: &str) -> String {
    match message.get_field_by_name(field).unwrap().as_ref() {
        Value::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

#[test]
fn every_rpc_of_the_three_services_has_a_route() {
    let t = transcoder();
    for service in SERVICES {
        let descriptor = t.pool().get_service_by_name(service).unwrap();
        for method in descriptor.methods() {
            assert!(
                t.routes()
                    .iter()
                    .any(|r| r.rpc.full_name() == method.full_name()),
                "{} has no route",
                method.full_name()
            );
        }
    }
    let labels: Vec<String> = t.routes().iter().map(|r| r.label()).collect();
    for expected in [
        "GET /v1/workspaces/{workspace_id}/credentials",
        "POST /v1/workspaces/{workspace_id}/credentials",
        "PATCH /v1/workspaces/{workspace_id}/credentials/{id}",
        "POST /v1/workspaces/{workspace_id}/credentials/{id}:setDefault",
        "POST /v1/workspaces/{workspace_id}/credentials:access",
        "GET /v1/workspaces/{workspace_id}/credentials/{id}/schema",
    ] {
        assert!(
            labels.iter().any(|l| l == expected),
            "{expected} missing from {labels:#?}"
        );
    }
}

#[test]
fn path_query_and_body_land_in_their_fields() {
    let list = assemble(
        "GET",
        "/v1/workspaces/ws-1/credentials?type=openai&pageSize=20&showDeleted=true",
        "",
        None,
    )
    .unwrap();
    assert_eq!(text(&list, "workspace_id"), "ws-1");
    assert_eq!(text(&list, "type"), "openai");
    assert_eq!(
        list.get_field_by_name("page_size").unwrap().as_i32(),
        Some(20)
    );
    assert_eq!(
        list.get_field_by_name("show_deleted").unwrap().as_bool(),
        Some(true)
    );

    let create = assemble(
        "POST",
        "/v1/workspaces/ws-1/credentials",
        r#"{"name": "Prod", "type": "openai", "makeDefault": true, "value": {"secret": "sk-x"}}"#,
        None,
    )
    .unwrap();
    assert_eq!(text(&create, "name"), "Prod");
    assert_eq!(
        create.get_field_by_name("make_default").unwrap().as_bool(),
        Some(true)
    );
    // The path wins over a body that names another workspace.
    let moved = assemble(
        "POST",
        "/v1/workspaces/ws-1/credentials",
        r#"{"workspaceId": "ws-2", "name": "n"}"#,
        None,
    )
    .unwrap();
    assert_eq!(text(&moved, "workspace_id"), "ws-1");

    // An empty body is an empty message, for custom methods called with a bare POST.
    let set_default = assemble(
        "POST",
        "/v1/workspaces/ws/credentials/abc:setDefault",
        "",
        None,
    )
    .unwrap();
    assert_eq!(text(&set_default, "id"), "abc");
    assert_eq!(
        set_default.descriptor().name(),
        "SetDefaultCredentialRequest"
    );

    let access = assemble(
        "POST",
        "/v1/workspaces/ws/credentials:access",
        r#"{"defaultForType": "openai"}"#,
        None,
    )
    .unwrap();
    assert_eq!(text(&access, "default_for_type"), "openai");
}

#[test]
fn if_match_fills_the_etag_and_must_agree_with_the_body() {
    let update = assemble(
        "PATCH",
        "/v1/workspaces/ws/credentials/abc",
        r#"{"name": "n"}"#,
        Some("\"e-1\""),
    )
    .unwrap();
    assert_eq!(text(&update, "etag"), "e-1");
    let delete = assemble(
        "DELETE",
        "/v1/workspaces/ws/credentials/abc",
        "",
        Some("W/\"e-2\""),
    )
    .unwrap();
    assert_eq!(text(&delete, "etag"), "e-2");
    let same = assemble(
        "PATCH",
        "/v1/workspaces/ws/credentials/abc",
        r#"{"etag": "e-1"}"#,
        Some("\"e-1\""),
    )
    .unwrap();
    assert_eq!(text(&same, "etag"), "e-1");
    assert_eq!(
        assemble(
            "PATCH",
            "/v1/workspaces/ws/credentials/abc",
            r#"{"etag": "e-1"}"#,
            Some("\"e-9\"")
        )
        .unwrap_err(),
        "etag|the If-Match header and the body's etag differ"
    );
}

#[test]
fn mistakes_name_their_field() {
    let field = |method: &str, target: &str, body: &str| {
        let refusal = assemble(method, target, body, None).unwrap_err();
        refusal.split_once('|').unwrap().0.to_owned()
    };
    let create = "/v1/workspaces/ws/credentials";
    // A wrong type, deep in the body.
    assert_eq!(field("POST", create, r#"{"name": 5}"#), "name");
    assert!(
        field(
            "POST",
            create,
            r#"{"value": {"fields": {"values": {"api_key": 7}}}}"#
        )
        .starts_with("value.fields.values")
    );
    // CredentialFields holds its map under `values`: a field name one level up is unknown.
    assert_eq!(
        field("POST", create, r#"{"value": {"fields": {"api_key": "k"}}}"#),
        "value.fields.api_key"
    );
    assert_eq!(
        field("POST", create, r#"{"makeDefault": "yes"}"#),
        "makeDefault"
    );
    // An unknown field.
    assert_eq!(
        field("POST", create, r#"{"name": "n", "colour": "red"}"#),
        "colour"
    );
    assert_eq!(
        field("POST", create, r#"{"value": {"secret": "s", "extra": 1}}"#),
        "value.extra"
    );
    // Not JSON, not an object.
    assert_eq!(field("POST", create, "{"), "");
    assert_eq!(field("POST", create, "[1]"), "");
    // Query parameters: an unknown one, a bad number, a bad boolean, and any on a body method.
    let list = "/v1/workspaces/ws/credentials";
    assert_eq!(field("GET", &format!("{list}?colour=red"), ""), "colour");
    assert_eq!(
        field("GET", &format!("{list}?pageSize=ten"), ""),
        "page_size"
    );
    assert_eq!(
        field("GET", &format!("{list}?showDeleted=maybe"), ""),
        "showDeleted"
    );
    assert_eq!(field("POST", &format!("{create}?name=x"), "{}"), "name");
    // A body where the method takes none.
    assert_eq!(field("GET", list, r#"{"type": "openai"}"#), "");
}

#[test]
fn the_openapi_document_has_every_route() {
    let t = transcoder();
    let doc = json_transcoding::openapi::document(
        &t,
        &json_transcoding::openapi::Info {
            title: "t".into(),
            version: "1".into(),
            description: String::new(),
        },
    );
    assert_eq!(doc["openapi"], "3.1.0");
    for route in t.routes() {
        let op = &doc["paths"][route.template.as_str()][route.method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{} missing", route.label());
        let response = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        let name = response.trim_start_matches("#/components/schemas/");
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
    let credential = &doc["components"]["schemas"]["credentials.v1.Credential"];
    assert_eq!(credential["properties"]["createdAt"]["format"], "date-time");
    assert!(credential["properties"]["isDefault"].is_object());
    assert!(
        !credential["description"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    // Query parameters come from the request message, with camelCase names.
    let list = &doc["paths"]["/v1/workspaces/{workspace_id}/credentials"]["get"]["parameters"];
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"pageSize") && names.contains(&"workspace_id"),
        "{names:?}"
    );
}
