//! The gRPC edge: the two services, which only convert requests, call the vault and convert
//! answers. Authentication happened in the tower layer in front (see `auth_layer`).

use super::convert;
use crate::service::Caller;
use crate::service::error::ServiceError;
use crate::service::probing;
use crate::service::{AccessSelector, CreateInput, Credentials, UpdateInput};
use credentials_core::model::ListFilter;
use credentials_proto::credentials::v1 as pb;
use tonic::{Request, Response, Status};

/// The authenticated caller the auth layer put into the request.
pub(super) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))
}

/// `credentials.v1.CredentialsService`: the management API. Never returns a secret.
#[derive(Debug, Clone)]
pub struct CredentialsService {
    vault: Credentials,
    prober: credentials_probe::Prober,
}

impl CredentialsService {
    /// A service over `vault`, validating with `prober`.
    pub fn new(vault: Credentials, prober: credentials_probe::Prober) -> Self {
        Self { vault, prober }
    }
}

fn credential(c: credentials_core::model::Credential) -> Option<pb::Credential> {
    Some(convert::credential(c))
}

#[tonic::async_trait]
impl pb::credentials_service_server::CredentialsService for CredentialsService {
    async fn create_credential(
        &self,
        request: Request<pb::CreateCredentialRequest>,
    ) -> Result<Response<pb::CreateCredentialResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let input = CreateInput {
            workspace_id: r.workspace_id,
            name: r.name,
            category: r.category,
            type_id: r.r#type,
            description: r.description,
            value: convert::value(r.value),
            make_default: r.make_default,
        };
        let created = self.vault.create(&caller, input).await?;
        Ok(Response::new(pb::CreateCredentialResponse {
            credential: credential(created),
        }))
    }

    async fn get_credential(
        &self,
        request: Request<pb::GetCredentialRequest>,
    ) -> Result<Response<pb::GetCredentialResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id = convert::id("id", &r.id)?;
        let found = self.vault.get(&caller, &r.workspace_id, id).await?;
        Ok(Response::new(pb::GetCredentialResponse {
            credential: credential(found),
        }))
    }

    async fn list_credentials(
        &self,
        request: Request<pb::ListCredentialsRequest>,
    ) -> Result<Response<pb::ListCredentialsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let filter = ListFilter {
            category: crate::service::parse_category("category", &r.category)?,
            type_id: (!r.r#type.is_empty()).then_some(r.r#type),
            show_deleted: r.show_deleted,
        };
        let page_size = crate::service::page_size(r.page_size)?;
        let page = self
            .vault
            .list(&caller, &r.workspace_id, filter, page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListCredentialsResponse {
            credentials: page
                .credentials
                .into_iter()
                .map(convert::credential)
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_credential(
        &self,
        request: Request<pb::UpdateCredentialRequest>,
    ) -> Result<Response<pb::UpdateCredentialResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let input = UpdateInput {
            id: convert::id("id", &r.id)?,
            etag: convert::etag(&r.etag)?,
            workspace_id: r.workspace_id,
            name: r.name,
            description: r.description,
            value: match r.value {
                Some(v) => Some(convert::value(Some(v)).ok_or_else(|| {
                    ServiceError::invalid("value", "set value.secret or value.fields")
                })?),
                None => None,
            },
        };
        let updated = self.vault.update(&caller, input).await?;
        Ok(Response::new(pb::UpdateCredentialResponse {
            credential: credential(updated),
        }))
    }

    async fn delete_credential(
        &self,
        request: Request<pb::DeleteCredentialRequest>,
    ) -> Result<Response<pb::DeleteCredentialResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id = convert::id("id", &r.id)?;
        let etag = convert::etag(&r.etag)?;
        let deleted = self
            .vault
            .delete(&caller, &r.workspace_id, id, etag)
            .await?;
        Ok(Response::new(pb::DeleteCredentialResponse {
            credential: credential(deleted),
        }))
    }

    async fn set_default_credential(
        &self,
        request: Request<pb::SetDefaultCredentialRequest>,
    ) -> Result<Response<pb::SetDefaultCredentialResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id = convert::id("id", &r.id)?;
        let (updated, previous) = self.vault.set_default(&caller, &r.workspace_id, id).await?;
        Ok(Response::new(pb::SetDefaultCredentialResponse {
            credential: credential(updated),
            previous_default_id: previous.map(|p| p.to_string()).unwrap_or_default(),
        }))
    }

    async fn validate_credential(
        &self,
        request: Request<pb::ValidateCredentialRequest>,
    ) -> Result<Response<pb::ValidateCredentialResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id = convert::id("id", &r.id)?;
        let (result, updated) = self
            .vault
            .validate(&caller, &self.prober, &r.workspace_id, id)
            .await?;
        Ok(Response::new(pb::ValidateCredentialResponse {
            result: Some(convert::validation_result(&result)),
            credential: credential(updated),
        }))
    }

    async fn test_credential(
        &self,
        request: Request<pb::TestCredentialRequest>,
    ) -> Result<Response<pb::TestCredentialResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let credential_id = convert::optional_id("credential_id", &r.credential_id)?;
        let result = self
            .vault
            .test(
                &caller,
                &self.prober,
                &r.workspace_id,
                &r.r#type,
                convert::value(r.value),
                credential_id,
            )
            .await?;
        Ok(Response::new(pb::TestCredentialResponse {
            result: Some(convert::validation_result(&result)),
        }))
    }

    async fn discover_schema(
        &self,
        request: Request<pb::DiscoverSchemaRequest>,
    ) -> Result<Response<pb::DiscoverSchemaResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id = convert::id("id", &r.id)?;
        let timeout = match r.timeout {
            None => None,
            Some(d) => Some(
                std::time::Duration::try_from(d)
                    .map_err(|_| ServiceError::invalid("timeout", "must not be negative"))?,
            ),
        };
        let options = probing::discovery_options(
            r.include_schemas,
            r.exclude_schemas,
            r.max_tables,
            timeout,
        )?;
        let (updated, schema) = self
            .vault
            .discover_schema(&caller, &self.prober, &r.workspace_id, id, options)
            .await?;
        Ok(Response::new(pb::DiscoverSchemaResponse {
            credential: credential(updated),
            table_count: i32::try_from(schema.table_count()).unwrap_or(i32::MAX),
            truncated: schema.truncated,
        }))
    }

    async fn get_schema(
        &self,
        request: Request<pb::GetSchemaRequest>,
    ) -> Result<Response<pb::GetSchemaResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id = convert::id("id", &r.id)?;
        let (schema, discovered_at) = self.vault.get_schema(&caller, &r.workspace_id, id).await?;
        Ok(Response::new(pb::GetSchemaResponse {
            ddl: schema.to_ddl(),
            schema: Some(convert::schema(schema)),
            discovered_at: Some(discovered_at.into()),
        }))
    }

    async fn list_credential_types(
        &self,
        request: Request<pb::ListCredentialTypesRequest>,
    ) -> Result<Response<pb::ListCredentialTypesResponse>, Status> {
        caller(&request)?;
        let types = self.vault.list_types(&request.get_ref().category)?;
        Ok(Response::new(pb::ListCredentialTypesResponse {
            types: types.into_iter().map(convert::credential_type).collect(),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let credential_id = convert::optional_id("credential_id", &r.credential_id)?;
        let page_size = crate::service::page_size(r.page_size)?;
        let page = self
            .vault
            .list_audit(
                &caller,
                &r.workspace_id,
                credential_id,
                page_size,
                &r.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: page.events.into_iter().map(convert::audit_event).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

/// `credentials.v1.AccessService`: hands plaintext to internal services, audited.
#[derive(Debug, Clone)]
pub struct AccessService {
    vault: Credentials,
}

impl AccessService {
    /// A service over `vault`.
    pub fn new(vault: Credentials) -> Self {
        Self { vault }
    }
}

#[tonic::async_trait]
impl pb::access_service_server::AccessService for AccessService {
    async fn access_credential(
        &self,
        request: Request<pb::AccessCredentialRequest>,
    ) -> Result<Response<pb::AccessCredentialResponse>, Status> {
        use pb::access_credential_request::Selector;
        let caller = caller(&request)?;
        let r = request.into_inner();
        let selector = match r.selector {
            Some(Selector::Id(id)) => AccessSelector::Id(convert::id("id", &id)?),
            Some(Selector::DefaultForType(t)) if !t.is_empty() => AccessSelector::DefaultForType(t),
            _ => {
                return Err(ServiceError::invalid(
                    "id",
                    "set id, or default_for_type to get the workspace's default for a type",
                )
                .into());
            }
        };
        let (found, value) = self
            .vault
            .access(&caller, &r.workspace_id, selector)
            .await?;
        let spec = credentials_core::catalogue::lookup(&found.type_id);
        let secret = spec
            .and_then(|s| value.primary(s))
            .map(|s| s.expose().to_owned())
            .unwrap_or_default();
        // The response owns copies of the plaintext; tonic encodes and drops them. The
        // SecretValue itself is zeroized when it goes out of scope here.
        let fields = value
            .fields()
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned()))
            .collect();
        Ok(Response::new(pb::AccessCredentialResponse {
            credential: credential(found),
            secret,
            fields,
        }))
    }
}
