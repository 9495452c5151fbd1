//! The floor's one RPC, its pool and its server.
//!
//! What a get costs the API and not the floor is the point of the floor, so what it shares with
//! the API is kept exactly: the SQL text (the same columns in the same order, so Postgres does
//! the same work), a statement prepared once per pooled connection, the pool's size and
//! recycling, and a TCP listener with `TCP_NODELAY`. Everything the API adds on top (auth,
//! tracing, metrics, request limits, deadlines, drain) is left out on purpose.

use crate::Config;
use credentials_proto::credentials::v1::{
    self as pb,
    credentials_service_server::{CredentialsService, CredentialsServiceServer},
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::{future::Future, time::SystemTime};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status, transport::server::TcpIncoming};
use uuid::Uuid;

/// credentials-store's get, word for word (`rows::CREDENTIAL_COLUMNS`): the master-key columns
/// are selected although a get never shows them, because the API selects them too.
const GET_CREDENTIAL: &str = "SELECT id, workspace_id, name, category, type_id, description, \
    masked_content, is_default, validation_state, validation_outcome, validation_message, \
    validated_at, schema_discovered_at, created_at, updated_at, deleted_at, revision, \
    master_key_id, master_key_version FROM credentials WHERE workspace_id = $1 AND id = $2";

/// A pool built as credentials-store builds the API's (fast recycling, the same limits); no TLS,
/// since the benchmark's Postgres is a local socket.
pub fn pool(config: &Config) -> Result<Pool, String> {
    let mut pg: tokio_postgres::Config = config
        .database_url
        .parse()
        .map_err(|e: tokio_postgres::Error| format!("DATABASE_URL: {e}"))?;
    if pg.get_application_name().is_none() {
        pg.application_name("bench-floor");
    }
    let manager = Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.db_max_connections)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.db_wait_timeout))
        .build()
        .map_err(|e| format!("database pool: {e}"))
}

/// `CredentialsService` with only `GetCredential` implemented.
#[derive(Clone)]
pub struct Floor {
    pool: Pool,
}

impl Floor {
    /// A floor reading through `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    async fn get(&self, workspace_id: &str, id: Uuid) -> Result<pb::Credential, Status> {
        let conn = self
            .pool
            .get()
            .await
            .map_err(|_| Status::unavailable("the database is unavailable"))?;
        let statement = conn
            .prepare_cached(GET_CREDENTIAL)
            .await
            .map_err(database)?;
        let row = conn
            .query_opt(&statement, &[&workspace_id, &id])
            .await
            .map_err(database)?
            .ok_or_else(|| Status::not_found("no such credential in this workspace"))?;
        credential(&row).map_err(database)
    }
}

/// A query failure: a broken connection is the database being unavailable, anything Postgres
/// itself refused is the floor's own bug.
fn database(e: tokio_postgres::Error) -> Status {
    if e.as_db_error().is_some() {
        Status::internal("the database refused the query")
    } else {
        Status::unavailable("the database is unavailable")
    }
}

/// The row as the API shows it (credentials-api's `convert::credential`). The stored
/// validation codes are the proto's enum numbers, so they pass through.
fn credential(row: &tokio_postgres::Row) -> Result<pb::Credential, tokio_postgres::Error> {
    let id: Uuid = row.try_get(0)?;
    let timestamp = |i: usize| -> Result<Option<prost_types::Timestamp>, tokio_postgres::Error> {
        Ok(row
            .try_get::<_, Option<SystemTime>>(i)?
            .map(prost_types::Timestamp::from))
    };
    let schema_updated_at = timestamp(12)?;
    let revision: i64 = row.try_get(16)?;
    Ok(pb::Credential {
        id: id.to_string(),
        workspace_id: row.try_get(1)?,
        name: row.try_get(2)?,
        category: row.try_get(3)?,
        r#type: row.try_get(4)?,
        description: row.try_get(5)?,
        masked_content: row.try_get(6)?,
        is_default: row.try_get(7)?,
        validation: Some(pb::Validation {
            state: i32::from(row.try_get::<_, i16>(8)?),
            outcome: i32::from(row.try_get::<_, i16>(9)?),
            message: row.try_get(10)?,
            checked_at: timestamp(11)?,
        }),
        has_schema: schema_updated_at.is_some(),
        schema_updated_at,
        created_at: timestamp(13)?,
        updated_at: timestamp(14)?,
        deleted_at: timestamp(15)?,
        etag: format!("v{revision}"),
    })
}

/// The answer of every RPC the floor does not measure.
fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented(
        "the benchmark floor answers only GetCredential",
    ))
}

#[tonic::async_trait]
impl CredentialsService for Floor {
    async fn get_credential(
        &self,
        request: Request<pb::GetCredentialRequest>,
    ) -> Result<Response<pb::GetCredentialResponse>, Status> {
        let request = request.into_inner();
        if request.workspace_id.is_empty() {
            // The API takes it from the token; the floor reads no token.
            return Err(Status::invalid_argument(
                "workspace_id: required by the floor",
            ));
        }
        let id = Uuid::try_parse(&request.id)
            .map_err(|_| Status::invalid_argument("id: not a credential id (a UUID)"))?;
        let credential = self.get(&request.workspace_id, id).await?;
        Ok(Response::new(pb::GetCredentialResponse {
            credential: Some(credential),
        }))
    }

    async fn create_credential(
        &self,
        _: Request<pb::CreateCredentialRequest>,
    ) -> Result<Response<pb::CreateCredentialResponse>, Status> {
        unimplemented()
    }

    async fn list_credentials(
        &self,
        _: Request<pb::ListCredentialsRequest>,
    ) -> Result<Response<pb::ListCredentialsResponse>, Status> {
        unimplemented()
    }

    async fn update_credential(
        &self,
        _: Request<pb::UpdateCredentialRequest>,
    ) -> Result<Response<pb::UpdateCredentialResponse>, Status> {
        unimplemented()
    }

    async fn delete_credential(
        &self,
        _: Request<pb::DeleteCredentialRequest>,
    ) -> Result<Response<pb::DeleteCredentialResponse>, Status> {
        unimplemented()
    }

    async fn set_default_credential(
        &self,
        _: Request<pb::SetDefaultCredentialRequest>,
    ) -> Result<Response<pb::SetDefaultCredentialResponse>, Status> {
        unimplemented()
    }

    async fn validate_credential(
        &self,
        _: Request<pb::ValidateCredentialRequest>,
    ) -> Result<Response<pb::ValidateCredentialResponse>, Status> {
        unimplemented()
    }

    async fn test_credential(
        &self,
        _: Request<pb::TestCredentialRequest>,
    ) -> Result<Response<pb::TestCredentialResponse>, Status> {
        unimplemented()
    }

    async fn discover_schema(
        &self,
        _: Request<pb::DiscoverSchemaRequest>,
    ) -> Result<Response<pb::DiscoverSchemaResponse>, Status> {
        unimplemented()
    }

    async fn get_schema(
        &self,
        _: Request<pb::GetSchemaRequest>,
    ) -> Result<Response<pb::GetSchemaResponse>, Status> {
        unimplemented()
    }

    async fn list_credential_types(
        &self,
        _: Request<pb::ListCredentialTypesRequest>,
    ) -> Result<Response<pb::ListCredentialTypesResponse>, Status> {
        unimplemented()
    }

    async fn list_audit_events(
        &self,
        _: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        unimplemented()
    }
}

/// Serves `floor` on `listener` until `stop` resolves. Only the credentials service is routed,
/// so the access and admin services answer `UNIMPLEMENTED` too.
pub async fn serve(
    listener: TcpListener,
    floor: Floor,
    stop: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(CredentialsServiceServer::new(floor))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), stop)
        .await
}
