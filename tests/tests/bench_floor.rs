//! The benchmark's floor (`bench-floor`) against the real API on the same database: it must
//! answer a get with exactly what the API answers, or the benchmark's `of floor` ratios compare
//! two different amounts of work; and it must answer nothing else, so it can never be mistaken
//! for a service.

#![allow(clippy::unwrap_used)]

use credentials_proto::credentials::v1 as pb;
use pb::{
    access_service_client::AccessServiceClient,
    credentials_service_client::CredentialsServiceClient,
};
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};
use testkit::stack::{ALL, by_id_in, create, secret};
use tests::{Stack, authed, bin};
use tonic::{Code, Request, transport::Channel};

/// A running `bench-floor`, killed on drop.
struct FloorProcess {
    child: Child,
    addr: String,
}

impl FloorProcess {
    /// Starts the floor on `database_url` and reads the address it prints.
    fn start(database_url: &str) -> Self {
        let mut child = Command::new(bin("bench-floor"))
            .args(["--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bench-floor");
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .expect("read bench-floor's first line");
        let addr = line
            .trim()
            .strip_prefix("bench-floor: listening on ")
            .unwrap_or_else(|| panic!("bench-floor printed {line:?} instead of its address"))
            .to_owned();
        Self { child, addr }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect to bench-floor")
    }
}

impl Drop for FloorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(workspace: &str, id: &str) -> pb::GetCredentialRequest {
    pb::GetCredentialRequest {
        workspace_id: workspace.into(),
        id: id.into(),
    }
}

#[tokio::test]
async fn the_floor_answers_a_get_with_the_apis_bytes_and_nothing_else() {
    const WS: &str = "floor-ws";
    let stack = Stack::start().await;
    let token = stack.token(&[WS], ALL);
    let mut api = stack.management().await;

    // Rows in every state a get shows: plain, with a description and the default flag,
    // updated (a later etag), deleted (deleted_at, no envelope), and validated with a schema
    // (set by SQL: a real probe needs a real provider).
    let mut ids = Vec::new();
    for (name, make_default) in [
        ("plain", false),
        ("default", true),
        ("updated", false),
        ("deleted", false),
        ("validated", false),
    ] {
        let mut request = create(name, "openai", secret("sk-floor-0123456789abcdefghijkl"));
        request.description = format!("the {name} one");
        request.make_default = make_default;
        let created = api
            .create_credential(authed(request, &token))
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        ids.push(created.id);
    }
    api.update_credential(authed(
        pb::UpdateCredentialRequest {
            id: ids[2].clone(),
            description: Some("changed".into()),
            ..Default::default()
        },
        &token,
    ))
    .await
    .unwrap();
    api.delete_credential(authed(
        pb::DeleteCredentialRequest {
            id: ids[3].clone(),
            ..Default::default()
        },
        &token,
    ))
    .await
    .unwrap();
    let db = stack.db.client().await;
    let validated: uuid::Uuid = ids[4].parse().unwrap();
    db.execute(
        "UPDATE credentials SET validation_state = 2, validation_outcome = 4, \
         validation_message = 'unreachable', validated_at = now() - interval '1 hour', \
         schema_document = '{}'::jsonb, schema_discovered_at = now() - interval '2 hours' \
         WHERE id = $1",
        &[&validated],
    )
    .await
    .unwrap();

    let floor = FloorProcess::start(&stack.db.url());
    let mut bare = CredentialsServiceClient::new(floor.channel().await);
    for id in &ids {
        let from_api = api
            .get_credential(authed(get(WS, id), &token))
            .await
            .unwrap()
            .into_inner();
        // A token header is ignored by the floor, and so is its absence.
        let from_floor = bare
            .get_credential(authed(get(WS, id), "not-a-token"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(from_floor, from_api, "credential {id}");
        let untokened = bare.get_credential(get(WS, id)).await.unwrap().into_inner();
        assert_eq!(untokened, from_api, "credential {id} without a token");
    }
    // The rows really are in the states named above, so the comparison covered them.
    let shown: Vec<pb::Credential> = {
        let mut v = Vec::new();
        for id in &ids {
            let got = bare.get_credential(get(WS, id)).await.unwrap().into_inner();
            v.push(got.credential.unwrap());
        }
        v
    };
    assert!(shown[1].is_default);
    assert_ne!(shown[2].etag, shown[0].etag);
    assert!(shown[3].deleted_at.is_some());
    let validation = shown[4].validation.clone().unwrap();
    assert_eq!(
        (validation.state, validation.outcome),
        (
            pb::ValidationState::Invalid as i32,
            pb::ValidationOutcome::Unreachable as i32
        )
    );
    assert!(validation.checked_at.is_some() && shown[4].has_schema);

    // Outside the workspace, or unknown: NOT_FOUND, as from the API; a malformed id: INVALID_ARGUMENT.
    let err = bare
        .get_credential(get("elsewhere", &ids[0]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = bare
        .get_credential(get(WS, &uuid::Uuid::from_u128(7).to_string()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = bare
        .get_credential(get(WS, "not-a-uuid"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // Everything else is UNIMPLEMENTED: another RPC of the service, and the other services.
    let err = bare
        .list_credentials(pb::ListCredentialsRequest {
            workspace_id: WS.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    let err = bare
        .create_credential(create(
            "x",
            "openai",
            secret("sk-floor-0123456789abcdefghijkl"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    let err = AccessServiceClient::new(floor.channel().await)
        .access_credential(Request::new(by_id_in(WS, &ids[0])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
}
