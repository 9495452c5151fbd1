//! The JSON mapping of every RPC (`/v1/...`, from the protos' google.api.http rules), driven by
//! a real HTTP client against the real server: each route reaches its RPC through the gRPC
//! stack, bodies and answers follow the proto3 JSON mapping, and every rule of the gRPC API
//! holds the same way (isolation, masking, etags, limits, permissions, audit, metrics).

use crate::support::*;
use std::time::Duration;
use testkit::stack::wait_until;

const KEY: &str = "sk-proj-MAPMARKER0123456789abcdefgh";
const CREATE: &str = "/v1/workspaces/ws/credentials";

fn create_body(name: &str) -> String {
    format!(r#"{{"name": "{name}", "type": "openai", "value": {{"secret": "{KEY}"}}}}"#)
}

#[tokio::test]
async fn every_route_reaches_its_rpc_through_the_grpc_stack() {
    let stack = TestApi::start().await;
    let token = testkit::stack::platform_token(&["ws"], ALL);
    let http = stack.http();
    let transcoder = json_transcoding::Transcoder::new(
        credentials_proto::FILE_DESCRIPTOR_SET,
        &credentials_api::edge::http::SERVICES,
    )
    .unwrap();
    // 18 RPCs, three of them with a second binding.
    assert_eq!(transcoder.routes().len(), 21, "a binding was added or lost");
    for route in transcoder.routes() {
        let path = route
            .template
            .as_str()
            .replace("{workspace_id}", "ws")
            .replace("{credential_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{id}", "00000000-0000-4000-8000-000000000000");
        let body = (route.body != json_transcoding::BodyRule::None).then_some("{}");
        let answer = http
            .send(route.method.as_str(), &path, Some(&token), body, &[])
            .await;
        // The auth layer names every request it sees: the call went through the stack.
        assert!(
            answer.headers.contains_key("x-request-id"),
            "{}: {} {}",
            route.label(),
            answer.status,
            answer.text
        );
        assert!(
            answer.json.is_object(),
            "{}: {}",
            route.label(),
            answer.text
        );
        assert_ne!(
            answer.json["message"],
            "no such route: see GET /openapi.json for the routes",
            "{}",
            route.label()
        );
        assert_ne!(answer.status, 405, "{}", route.label());
    }
}

#[tokio::test]
async fn crud_over_json_follows_the_proto3_mapping() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();

    let created = http
        .json("POST", CREATE, &token, &create_body("Prod"))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert!(!created.text.contains("MAPMARKER"), "{}", created.text);
    let c = &created.json["credential"];
    let id = c["id"].as_str().unwrap().to_owned();
    // camelCase names, defaults written, enums as strings, RFC 3339 timestamps.
    assert_eq!(c["workspaceId"], "ws");
    assert_eq!(c["maskedContent"], "sk-pr...efgh");
    assert_eq!(c["isDefault"], false);
    assert_eq!(c["validation"]["state"], "VALIDATION_STATE_UNSPECIFIED");
    assert!(c["createdAt"].as_str().unwrap().contains('T'));
    assert_eq!(
        created.headers["etag"],
        format!("\"{}\"", c["etag"].as_str().unwrap())
    );

    let got = http.get(&format!("{CREATE}/{id}"), &token).await;
    assert_eq!(got.json["credential"], *c);
    let listed = http
        .get(&format!("{CREATE}?type=openai&pageSize=10"), &token)
        .await;
    assert_eq!(listed.json["credentials"][0]["id"], id.as_str());
    assert_eq!(listed.json["nextPageToken"], "");

    let set = http
        .send(
            "POST",
            &format!("{CREATE}/{id}:setDefault"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (set.status, &set.json["credential"]["isDefault"]),
        (200, &serde_json::json!(true)),
        "{}",
        set.text
    );

    // The plaintext, for a token with access, by the type's default.
    let access = http
        .json(
            "POST",
            &format!("{CREATE}:access"),
            &token,
            r#"{"defaultForType": "openai"}"#,
        )
        .await;
    assert_eq!(
        (access.status, access.json["secret"].as_str()),
        (200, Some(KEY)),
        "{}",
        access.text
    );
    let reader = stack.token(&["ws"], &["read"]);
    let audits = stack.count("audit_events").await;
    let refused = http
        .json("POST", &format!("{CREATE}/{id}:access"), &reader, "{}")
        .await;
    assert_eq!(refused.status, 403);
    assert!(!refused.text.contains("MAPMARKER"));
    // Refused accesses are audited, over HTTP as over gRPC.
    assert_eq!(stack.count("audit_events").await, audits + 1);

    let patched = http
        .send(
            "PATCH",
            &format!("{CREATE}/{id}"),
            Some(&token),
            Some(r#"{"description": "d"}"#),
            &[("if-match", set.headers["etag"].to_str().unwrap())],
        )
        .await;
    assert_eq!(
        (
            patched.status,
            patched.json["credential"]["description"].as_str()
        ),
        (200, Some("d")),
        "{}",
        patched.text
    );
    let events = http
        .get(&format!("{CREATE}/{id}/auditEvents"), &token)
        .await;
    assert!(
        events.json["events"].as_array().unwrap().len() >= 4,
        "{}",
        events.text
    );
    let types = http.get("/v1/credentialTypes?category=llm", &token).await;
    assert!(
        types.json["types"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["category"] == "llm")
    );

    let deleted = http
        .send("DELETE", &format!("{CREATE}/{id}"), Some(&token), None, &[])
        .await;
    assert!(
        deleted.json["credential"]["deletedAt"].is_string(),
        "{}",
        deleted.text
    );
    let shown = http
        .get(&format!("{CREATE}?showDeleted=true"), &token)
        .await;
    assert_eq!(shown.json["credentials"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn mistakes_get_400_naming_the_field_and_write_nothing() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();
    let created = http.json("POST", CREATE, &token, &create_body("k")).await;
    let id = created.json["credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rows = (
        stack.count("credentials").await,
        stack.count("audit_events").await,
    );

    for (method, path, body, field) in [
        ("POST", CREATE.to_owned(), r#"{"name": 5}"#, "name"),
        (
            "POST",
            CREATE.to_owned(),
            r#"{"name": "n", "colour": "red"}"#,
            "colour",
        ),
        (
            "POST",
            CREATE.to_owned(),
            r#"{"name": "n", "type": "openai", "value": {"secret": "s", "x": 1}}"#,
            "value.x",
        ),
        (
            "POST",
            CREATE.to_owned(),
            r#"{"name": "n", "type": "openai", "makeDefault": "yes"}"#,
            "makeDefault",
        ),
        ("POST", CREATE.to_owned(), "{", ""),
        // The service's own checks, with the field it names over gRPC.
        (
            "POST",
            CREATE.to_owned(),
            r#"{"name": "n", "type": "no-such-type", "value": {"secret": "s"}}"#,
            "type",
        ),
        ("PATCH", format!("{CREATE}/{id}"), r#"{"name": ""}"#, "name"),
        ("GET", format!("{CREATE}?pageSize=many"), "", "page_size"),
        ("GET", format!("{CREATE}?pageSize=501"), "", "page_size"),
    ] {
        let body = (!body.is_empty()).then_some(body);
        let answer = http.send(method, &path, Some(&token), body, &[]).await;
        assert_eq!(
            answer.status, 400,
            "{method} {path} {body:?}: {}",
            answer.text
        );
        assert_eq!(answer.json["code"], 3);
        assert_eq!(
            answer.violations(),
            [field.to_owned()],
            "{method} {path} {body:?}: {}",
            answer.text
        );
    }
    // Too large: 413 before anything is parsed; not JSON: 415.
    let huge = format!(r#"{{"name": "{}"}}"#, "a".repeat(300 * 1024));
    let too_large = http.json("POST", CREATE, &token, &huge).await;
    assert_eq!(
        (too_large.status, too_large.json["code"].as_i64()),
        (413, Some(8))
    );
    let text = http
        .send(
            "POST",
            CREATE,
            Some(&token),
            Some("name=x"),
            &[("content-type", "text/plain")],
        )
        .await;
    assert_eq!(text.status, 415, "{}", text.text);
    // Unknown routes and methods.
    let nowhere = http.get("/v1/nowhere", &token).await;
    assert_eq!(nowhere.status, 404);
    let wrong = http
        .send("PUT", CREATE, Some(&token), Some("{}"), &[])
        .await;
    assert_eq!(
        (wrong.status, wrong.headers["allow"].to_str().unwrap()),
        (405, "POST, GET")
    );
    assert_eq!(
        (
            stack.count("credentials").await,
            stack.count("audit_events").await
        ),
        rows
    );
}

#[tokio::test]
async fn isolation_etags_tokens_and_permissions_hold() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();
    let created = http.json("POST", CREATE, &token, &create_body("k")).await;
    let id = created.json["credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let etag = created.headers["etag"].to_str().unwrap().to_owned();

    // Another workspace's credential answers exactly as a missing id.
    let stranger = stack.token(&["other"], ALL);
    let missing = http
        .get(
            "/v1/workspaces/other/credentials/00000000-0000-4000-8000-000000000000",
            &stranger,
        )
        .await;
    let theirs = http
        .get(&format!("/v1/workspaces/other/credentials/{id}"), &stranger)
        .await;
    assert_eq!((missing.status, theirs.status), (404, 404));
    assert_eq!(missing.json, theirs.json);
    // A workspace the token does not name.
    let outside = http.get(&format!("{CREATE}/{id}"), &stranger).await;
    assert!(matches!(outside.status, 403 | 404), "{}", outside.text);

    // Etags: a stale If-Match is 412, a stale body etag 409 (ABORTED), the current one passes.
    let stale = http
        .send(
            "PATCH",
            &format!("{CREATE}/{id}"),
            Some(&token),
            Some(r#"{"name": "n"}"#),
            &[("if-match", "\"v42\"")],
        )
        .await;
    assert_eq!((stale.status, stale.json["code"].as_i64()), (412, Some(10)));
    let stale_body = http
        .json(
            "PATCH",
            &format!("{CREATE}/{id}"),
            &token,
            r#"{"name": "n", "etag": "v42"}"#,
        )
        .await;
    assert_eq!(stale_body.status, 409);
    let fresh = http
        .send(
            "PATCH",
            &format!("{CREATE}/{id}"),
            Some(&token),
            Some(r#"{"name": "n"}"#),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);

    // Tokens and permissions.
    let anonymous = http.send("GET", CREATE, None, None, &[]).await;
    assert_eq!(
        (anonymous.status, anonymous.json["code"].as_i64()),
        (401, Some(16))
    );
    let garbage = http.get(CREATE, "not-a-token").await;
    assert_eq!(garbage.status, 401);
    let reader = stack.token(&["ws"], &["read"]);
    let denied = http.json("POST", CREATE, &reader, &create_body("r")).await;
    assert_eq!(
        (denied.status, denied.json["code"].as_i64()),
        (403, Some(7))
    );
    let not_admin = http.get("/v1/rewrap", &token).await;
    assert_eq!(not_admin.status, 403);
    let admin = testkit::stack::platform_token(&["ws"], ALL);
    let status = http.get("/v1/rewrap", &admin).await;
    assert_eq!(status.status, 200, "{}", status.text);
}

#[tokio::test]
async fn http_requests_are_counted_by_route_template_and_in_the_grpc_metrics() {
    let stack = TestApi::start_with(&["--admin-addr", "127.0.0.1:0"]).await;
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();
    let created = http.json("POST", CREATE, &token, &create_body("k")).await;
    let id = created.json["credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        assert_eq!(
            http.get(&format!("{CREATE}/{id}"), &token).await.status,
            200
        );
    }
    http.get("/api/v1/credentials", &token).await;
    http.get(&format!("/v1/made/up/{id}"), &token).await;
    let admin = stack
        .logs()
        .lines()
        .find(|l| l.contains("\"message\":\"admin listening\""))
        .and_then(testkit::stack::logged_address)
        .unwrap();
    let text = scrape(&admin).await;
    let get = "route=\"GET /v1/workspaces/{workspace_id}/credentials/{id}\"";
    assert_eq!(
        metric_sum(
            &text,
            "http_server_requests_total",
            &[get, "status=\"200\""]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(
            &text,
            "http_server_requests_total",
            &["route=\"GET /api/v1/credentials\""]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &text,
            "http_server_requests_total",
            &["route=\"unmatched\"", "status=\"404\""]
        ),
        1.0
    );
    // The same calls in the gRPC families: same stack.
    assert!(
        metric_sum(
            &text,
            "grpc_server_requests_total",
            &["method=\"GetCredential\"", "code=\"OK\""]
        ) >= 3.0
    );
    assert!(!text.contains(&id), "an id in a metric label");
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let stack = TestApi::start().await;
    let served = stack
        .http()
        .send("GET", "/openapi.json", None, None, &[])
        .await;
    assert_eq!(served.status, 200);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap();
    assert_eq!(
        served.text.trim_end(),
        committed.trim_end(),
        "docs/openapi.json is stale: run `cargo run -q -p credentials-api -- openapi > docs/openapi.json`"
    );
    // Both surfaces are in it, every route of each.
    let doc = &served.json;
    for (path, method) in [
        (
            "/v1/workspaces/{workspace_id}/credentials/{id}:setDefault",
            "post",
        ),
        ("/v1/workspaces/{workspace_id}/credentials:access", "post"),
        ("/api/v1/credentials", "post"),
        ("/api/v1/credentials/{id}", "put"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
}

#[tokio::test]
async fn past_the_rate_limit_http_answers_429_with_retry_after() {
    let stack = TestApi::start_with(&["--access-rate-limit", "3/m"]).await;
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();
    let created = http.json("POST", CREATE, &token, &create_body("k")).await;
    let access = format!(
        "{CREATE}/{}:access",
        created.json["credential"]["id"].as_str().unwrap()
    );
    for _ in 0..3 {
        assert_eq!(http.json("POST", &access, &token, "{}").await.status, 200);
    }
    let refused = http.json("POST", &access, &token, "{}").await;
    assert_eq!(
        (refused.status, refused.json["code"].as_i64()),
        (429, Some(8)),
        "{}",
        refused.text
    );
    assert!(
        refused.headers.contains_key("retry-after"),
        "{:?} {}",
        refused.headers,
        refused.text
    );
    let retry_after: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((10..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(
        refused.json["details"][0]["@type"], "type.googleapis.com/google.rpc.RetryInfo",
        "{}",
        refused.text
    );
    assert!(!refused.text.contains("MAPMARKER"));
}

#[tokio::test]
async fn a_database_outage_is_503_and_a_passed_deadline_504_over_http() {
    let stack = TestApi::options()
        .postgres_through_proxy()
        .args(["--request-timeout", "1s"])
        .start()
        .await;
    let proxy = stack.postgres.as_ref().expect("proxy");
    let token = stack.token(&["ws"], ALL);
    let http = stack.http();
    let created = http.json("POST", CREATE, &token, &create_body("k")).await;
    let get = format!(
        "{CREATE}/{}",
        created.json["credential"]["id"].as_str().unwrap()
    );

    // The database hangs: the server's own deadline answers, 504 (DEADLINE_EXCEEDED).
    proxy.stall();
    let slow = http.get(&get, &token).await;
    assert_eq!(
        (slow.status, slow.json["code"].as_i64()),
        (504, Some(4)),
        "{}",
        slow.text
    );
    // The database is gone: 503 (UNAVAILABLE), retryable.
    proxy.cut();
    let down = http.get(&get, &token).await;
    assert_eq!(
        (down.status, down.json["code"].as_i64()),
        (503, Some(14)),
        "{}",
        down.text
    );
    assert!(
        !down.text.contains("MAPMARKER") && !down.text.to_lowercase().contains("sql"),
        "{}",
        down.text
    );
    // And back.
    proxy.restore();
    let back = wait_until(Duration::from_secs(10), || {
        let http = http.clone();
        let (get, token) = (get.clone(), token.clone());
        async move { http.get(&get, &token).await.status == 200 }
    })
    .await;
    assert!(back, "the API did not recover");
}
