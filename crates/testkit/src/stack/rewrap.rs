//! Helpers of the key life-cycle tests: many credentials to re-wrap, and the sweep's status.

use super::{authed, secret};
use credentials_proto::credentials::v1 as pb;
use pb::{
    admin_service_client::AdminServiceClient, credentials_service_client::CredentialsServiceClient,
};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Creates `n` openai credentials named `<prefix>-<i>` in `workspace`, with the values
/// `sk-<workspace>-initial-<i:04>-abcdefghij`; returns their ids.
pub async fn create_named(
    m: &mut CredentialsServiceClient<Channel>,
    token: &str,
    workspace: &str,
    prefix: &str,
    n: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let c = m
            .create_credential(authed(
                pb::CreateCredentialRequest {
                    workspace_id: workspace.into(),
                    name: format!("{prefix}-{i}"),
                    r#type: "openai".into(),
                    value: secret(&format!("sk-{workspace}-initial-{i:04}-abcdefghij")),
                    ..Default::default()
                },
                token,
            ))
            .await
            .unwrap_or_else(|e| panic!("create {prefix}-{i}: {e:?}"))
            .into_inner()
            .credential
            .expect("a created credential");
        ids.push(c.id);
    }
    ids
}

/// [`create_named`] with the workspace as the prefix.
pub async fn create_many(
    m: &mut CredentialsServiceClient<Channel>,
    token: &str,
    workspace: &str,
    n: usize,
) -> Vec<String> {
    create_named(m, token, workspace, workspace, n).await
}

/// The re-wrap status.
pub async fn rewrap_status(
    admin: &mut AdminServiceClient<Channel>,
    token: &str,
) -> pb::GetRewrapStatusResponse {
    admin
        .get_rewrap_status(authed(pb::GetRewrapStatusRequest {}, token))
        .await
        .unwrap_or_else(|e| panic!("rewrap status: {e:?}"))
        .into_inner()
}

/// Waits (up to a minute) for the latest sweep to finish and returns its record; `logs` says
/// what the server logged, for the failure message.
pub async fn wait_for_sweep(
    admin: &mut AdminServiceClient<Channel>,
    token: &str,
    logs: impl Fn() -> String,
) -> pb::RewrapRun {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = rewrap_status(admin, token).await.last_run;
        if let Some(run) = &last
            && run.state != pb::RewrapState::Running as i32
        {
            return run.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the sweep did not finish: {last:?}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many credentials `status` counts on `key` version `version`.
pub fn on(status: &pb::GetRewrapStatusResponse, key: &str, version: u32) -> i64 {
    status
        .key_versions
        .iter()
        .filter(|k| k.key_id == key && k.key_version == version)
        .map(|k| k.credentials)
        .sum()
}
