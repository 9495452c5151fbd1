//! The gRPC services of the management and access APIs. Each handler converts its request
//! (`convert`), calls the service, and converts the answer back; authentication happened in the
//! auth layer in front.

use super::convert;
use crate::service::{Caller, Credentials, RateClass, ServiceError};
use credentials_core::model::AuditAction;
use credentials_proto::credentials::v1 as pb;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The authenticated caller the auth layer put into the request.
pub(super) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))
}

/// What the client's deadline leaves of the call: its `grpc-timeout` header (gRPC over HTTP/2:
/// at most 8 digits and a unit), `None` when it sent none or an unreadable one. The probe
/// RPCs bound their wait for a probe slot by it.
fn grpc_deadline<T>(request: &Request<T>) -> Option<Duration> {
    let text = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The caller and the request's typed input.
fn parse<T, I>(request: Request<T>) -> Result<(Caller, I), Status>
where
    I: TryFrom<T, Error = ServiceError>,
{
    let caller = caller(&request)?;
    let input = I::try_from(request.into_inner())?;
    Ok((caller, input))
}

/// `credentials.v1.CredentialsService`: the management API. Never returns a secret.
#[derive(Debug, Clone)]
pub struct CredentialsService {
    credentials: Credentials,
    prober: credentials_probe::Prober,
}

impl CredentialsService {
    /// A service over `credentials`, validating with `prober`.
    pub fn new(credentials: Credentials, prober: credentials_probe::Prober) -> Self {
        Self {
            credentials,
            prober,
        }
    }
}

#[tonic::async_trait]
impl pb::credentials_service_server::CredentialsService for CredentialsService {
    async fn create_credential(
        &self,
        request: Request<pb::CreateCredentialRequest>,
    ) -> Result<Response<pb::CreateCredentialResponse>, Status> {
        let (caller, input) = parse(request)?;
        let created = self.credentials.create(&caller, input).await?;
        Ok(Response::new(pb::CreateCredentialResponse {
            credential: Some(convert::credential(created)),
        }))
    }

    async fn get_credential(
        &self,
        request: Request<pb::GetCredentialRequest>,
    ) -> Result<Response<pb::GetCredentialResponse>, Status> {
        let (caller, item) = parse(request)?;
        let found = self.credentials.get(&caller, item).await?;
        Ok(Response::new(pb::GetCredentialResponse {
            credential: Some(convert::credential(found)),
        }))
    }

    async fn list_credentials(
        &self,
        request: Request<pb::ListCredentialsRequest>,
    ) -> Result<Response<pb::ListCredentialsResponse>, Status> {
        let (caller, input) = parse(request)?;
        let page = self.credentials.list(&caller, input).await?;
        Ok(Response::new(convert::credential_page(page)))
    }

    async fn update_credential(
        &self,
        request: Request<pb::UpdateCredentialRequest>,
    ) -> Result<Response<pb::UpdateCredentialResponse>, Status> {
        let (caller, input) = parse(request)?;
        let updated = self.credentials.update(&caller, input).await?;
        Ok(Response::new(pb::UpdateCredentialResponse {
            credential: Some(convert::credential(updated)),
        }))
    }

    async fn delete_credential(
        &self,
        request: Request<pb::DeleteCredentialRequest>,
    ) -> Result<Response<pb::DeleteCredentialResponse>, Status> {
        let (caller, input) = parse(request)?;
        let deleted = self.credentials.delete(&caller, input).await?;
        Ok(Response::new(pb::DeleteCredentialResponse {
            credential: Some(convert::credential(deleted)),
        }))
    }

    async fn set_default_credential(
        &self,
        request: Request<pb::SetDefaultCredentialRequest>,
    ) -> Result<Response<pb::SetDefaultCredentialResponse>, Status> {
        let (caller, item) = parse(request)?;
        let change = self.credentials.set_default(&caller, item).await?;
        Ok(Response::new(convert::default_change(change)))
    }

    async fn validate_credential(
        &self,
        request: Request<pb::ValidateCredentialRequest>,
    ) -> Result<Response<pb::ValidateCredentialResponse>, Status> {
        let within = grpc_deadline(&request);
        let (caller, item) = parse(request)?;
        self.credentials
            .admit(&caller, RateClass::Probe, AuditAction::Validate)
            .await?;
        let validated = self
            .credentials
            .validate(&caller, &self.prober, item, within)
            .await?;
        Ok(Response::new(convert::validated(validated)))
    }

    async fn test_credential(
        &self,
        request: Request<pb::TestCredentialRequest>,
    ) -> Result<Response<pb::TestCredentialResponse>, Status> {
        let within = grpc_deadline(&request);
        let (caller, input) = parse(request)?;
        self.credentials
            .admit(&caller, RateClass::Probe, AuditAction::Test)
            .await?;
        let result = self
            .credentials
            .test(&caller, &self.prober, input, within)
            .await?;
        Ok(Response::new(pb::TestCredentialResponse {
            result: Some(convert::validation_result(&result)),
        }))
    }

    async fn discover_schema(
        &self,
        request: Request<pb::DiscoverSchemaRequest>,
    ) -> Result<Response<pb::DiscoverSchemaResponse>, Status> {
        let within = grpc_deadline(&request);
        let (caller, input) = parse(request)?;
        self.credentials
            .admit(&caller, RateClass::Probe, AuditAction::DiscoverSchema)
            .await?;
        let discovered = self
            .credentials
            .discover_schema(&caller, &self.prober, input, within)
            .await?;
        Ok(Response::new(convert::discovered(discovered)))
    }

    async fn get_schema(
        &self,
        request: Request<pb::GetSchemaRequest>,
    ) -> Result<Response<pb::GetSchemaResponse>, Status> {
        let (caller, item) = parse(request)?;
        let stored = self.credentials.get_schema(&caller, item).await?;
        Ok(Response::new(convert::stored_schema(stored)))
    }

    async fn list_credential_types(
        &self,
        request: Request<pb::ListCredentialTypesRequest>,
    ) -> Result<Response<pb::ListCredentialTypesResponse>, Status> {
        let (_caller, input) = parse(request)?;
        let types = self.credentials.list_types(input);
        Ok(Response::new(pb::ListCredentialTypesResponse {
            types: types.into_iter().map(convert::credential_type).collect(),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let (caller, input) = parse(request)?;
        let page = self.credentials.list_audit(&caller, input).await?;
        Ok(Response::new(convert::audit_page(page)))
    }
}

/// `credentials.v1.AccessService`: hands plaintext to internal services, audited.
#[derive(Debug, Clone)]
pub struct AccessService {
    credentials: Credentials,
}

impl AccessService {
    /// A service over `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        Self { credentials }
    }
}

#[tonic::async_trait]
impl pb::access_service_server::AccessService for AccessService {
    async fn access_credential(
        &self,
        request: Request<pb::AccessCredentialRequest>,
    ) -> Result<Response<pb::AccessCredentialResponse>, Status> {
        let (caller, input) = parse(request)?;
        self.credentials
            .admit(&caller, RateClass::Access, AuditAction::Access)
            .await?;
        let accessed = self.credentials.access(&caller, input).await?;
        Ok(Response::new(convert::accessed(accessed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read_and_bad_ones_ignored() {
        let with = |v: &str| {
            let mut r = Request::new(());
            r.metadata_mut().insert("grpc-timeout", v.parse().unwrap());
            grpc_deadline(&r)
        };
        assert_eq!(with("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(with("2S"), Some(Duration::from_secs(2)));
        assert_eq!(with("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(with("5u"), Some(Duration::from_micros(5)));
        for bad in ["", "m", "123456789S", "10x", "-1S", "1.5S"] {
            assert_eq!(with(bad), None, "{bad}");
        }
        assert_eq!(grpc_deadline(&Request::new(())), None);
    }
}
