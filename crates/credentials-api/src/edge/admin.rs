//! `credentials.v1.AdminService`: the key lifecycle over gRPC.

use super::convert;
use super::grpc::caller;
use crate::service::{KeyLifecycle, SecurityListInput, WorkspaceKeyInput};
use credentials_proto::credentials::v1 as pb;
use credentials_store::{KeyVersionCount, RewrapRun, RunState};
use tonic::{Request, Response, Status};

/// The admin service.
#[derive(Debug, Clone)]
pub struct AdminService {
    lifecycle: KeyLifecycle,
}

impl AdminService {
    /// A service over the key lifecycle.
    pub fn new(lifecycle: KeyLifecycle) -> Self {
        Self { lifecycle }
    }
}

fn run(run: RewrapRun) -> pb::RewrapRun {
    let state = match run.state {
        RunState::Running => pb::RewrapState::Running,
        RunState::Succeeded => pb::RewrapState::Succeeded,
        RunState::Failed => pb::RewrapState::Failed,
    };
    pb::RewrapRun {
        id: if run.dry_run {
            String::new()
        } else {
            run.id.to_string()
        },
        state: state as i32,
        dry_run: run.dry_run,
        requested_by: run.requested_by,
        started_at: Some(run.started_at.into()),
        finished_at: run.finished_at.map(Into::into),
        examined: run.examined,
        rewrapped: run.rewrapped,
        skipped: run.skipped,
        failed: run.failed,
        message: run.message,
    }
}

fn count(c: KeyVersionCount, is_target: bool) -> pb::KeyVersionCount {
    pb::KeyVersionCount {
        key_id: c.key_id,
        key_version: c.key_version,
        credentials: c.credentials,
        is_target,
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminService {
    async fn start_rewrap(
        &self,
        request: Request<pb::StartRewrapRequest>,
    ) -> Result<Response<pb::StartRewrapResponse>, Status> {
        let caller = caller(&request)?;
        let (started, would_move) = self
            .lifecycle
            .start(&caller, request.get_ref().dry_run)
            .await?;
        Ok(Response::new(pb::StartRewrapResponse {
            run: Some(run(started)),
            would_move: would_move.into_iter().map(|c| count(c, false)).collect(),
        }))
    }

    async fn get_rewrap_status(
        &self,
        request: Request<pb::GetRewrapStatusRequest>,
    ) -> Result<Response<pb::GetRewrapStatusResponse>, Status> {
        caller(&request)?;
        let status = self.lifecycle.status().await?;
        Ok(Response::new(pb::GetRewrapStatusResponse {
            last_run: status.last_run.map(run),
            key_versions: status
                .versions
                .into_iter()
                .map(|v| count(v.count, v.is_target))
                .collect(),
            remaining: status.remaining,
        }))
    }

    async fn set_workspace_key(
        &self,
        request: Request<pb::SetWorkspaceKeyRequest>,
    ) -> Result<Response<pb::SetWorkspaceKeyResponse>, Status> {
        let caller = caller(&request)?;
        let input = WorkspaceKeyInput::try_from(request.into_inner())?;
        let workspace_id = input.workspace_id.clone();
        let (key, to_move) = self.lifecycle.set_workspace_key(&caller, input).await?;
        Ok(Response::new(pb::SetWorkspaceKeyResponse {
            workspace_id,
            key_id: key.key_id,
            credentials_to_move: to_move,
        }))
    }

    async fn get_workspace_key(
        &self,
        request: Request<pb::GetWorkspaceKeyRequest>,
    ) -> Result<Response<pb::GetWorkspaceKeyResponse>, Status> {
        let caller = caller(&request)?;
        let workspace_id = convert::workspace_of(request.into_inner())?;
        let key = self.lifecycle.workspace_key(&caller, &workspace_id).await?;
        Ok(Response::new(pb::GetWorkspaceKeyResponse {
            workspace_id,
            key_id: key.key_id,
            dedicated: key.dedicated,
        }))
    }

    async fn list_security_events(
        &self,
        request: Request<pb::ListSecurityEventsRequest>,
    ) -> Result<Response<pb::ListSecurityEventsResponse>, Status> {
        caller(&request)?;
        let input = SecurityListInput::try_from(request.into_inner())?;
        let page = self.lifecycle.list_security_events(input).await?;
        Ok(Response::new(pb::ListSecurityEventsResponse {
            events: page.events.into_iter().map(convert::audit_event).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
