//! Builders for the requests most tests send.

use credentials_proto::credentials::v1 as pb;
use pb::access_credential_request::Selector;

/// A value that is one secret string.
pub fn secret(value: &str) -> Option<pb::CredentialValue> {
    Some(pb::CredentialValue {
        kind: Some(pb::credential_value::Kind::Secret(value.into())),
    })
}

/// A value of named fields.
pub fn fields(pairs: &[(&str, &str)]) -> Option<pb::CredentialValue> {
    Some(pb::CredentialValue {
        kind: Some(pb::credential_value::Kind::Fields(pb::CredentialFields {
            values: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        })),
    })
}

/// A create request in the token's workspace; set other fields on the result.
pub fn create(
    name: &str,
    type_id: &str,
    value: Option<pb::CredentialValue>,
) -> pb::CreateCredentialRequest {
    pb::CreateCredentialRequest {
        name: name.into(),
        r#type: type_id.into(),
        value,
        ..Default::default()
    }
}

/// An access request for credential `id` in the token's workspace.
pub fn by_id(id: &str) -> pb::AccessCredentialRequest {
    by_id_in("", id)
}

/// An access request for credential `id` in `workspace`.
pub fn by_id_in(workspace: &str, id: &str) -> pb::AccessCredentialRequest {
    pb::AccessCredentialRequest {
        workspace_id: workspace.into(),
        selector: Some(Selector::Id(id.into())),
    }
}

/// An access request for the default credential of `type_id` in the token's workspace.
pub fn default_for(type_id: &str) -> pb::AccessCredentialRequest {
    pb::AccessCredentialRequest {
        workspace_id: String::new(),
        selector: Some(Selector::DefaultForType(type_id.into())),
    }
}
