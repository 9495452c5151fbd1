//! Who is calling, and what they may do: the authorization rules, in one place.

use super::error::ServiceError;
use auth::{Permission, Principal};
use credentials_core::limits::check_workspace_id;

/// An authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who the token says the caller is.
    pub principal: Principal,
    /// The request id (from `x-request-id` or generated), for logs and audit.
    pub request_id: String,
}

impl Caller {
    /// Fails with PERMISSION_DENIED unless the token grants `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ServiceError> {
        if self.principal.has(permission) {
            Ok(())
        } else {
            Err(ServiceError::PermissionDenied(format!(
                "this call needs the '{}' permission",
                permission.as_str()
            )))
        }
    }

    fn resolve(&self, requested: &str) -> Result<Result<String, String>, ServiceError> {
        if requested.is_empty() {
            return match self.principal.workspaces.as_slice() {
                [only] => Ok(Ok(only.clone())),
                [] => Err(ServiceError::invalid(
                    "workspace_id",
                    "required: the token names no workspace",
                )),
                _ => Err(ServiceError::invalid(
                    "workspace_id",
                    "required: the token names several workspaces",
                )),
            };
        }
        check_workspace_id(requested)?;
        Ok(if self.principal.may_act_in(requested) {
            Ok(requested.to_owned())
        } else {
            Err(requested.to_owned())
        })
    }

    /// The workspace of a call on one credential. A workspace the token does not grant answers
    /// NOT_FOUND, exactly like a missing id, so ids of other workspaces cannot be probed.
    pub fn workspace_for_item(&self, requested: &str) -> Result<String, ServiceError> {
        self.resolve(requested)?.map_err(|_| ServiceError::NotFound)
    }

    /// The workspace an admin call acts on: one the token names, or any with the platform-wide
    /// grant. Refused PERMISSION_DENIED otherwise (an admin call names the workspace itself,
    /// it does not look a credential up, so there is no id to hide).
    pub fn workspace_to_administer(&self, requested: &str) -> Result<String, ServiceError> {
        check_workspace_id(requested)?;
        if self.principal.may_administer(requested) {
            Ok(requested.to_owned())
        } else {
            Err(ServiceError::PermissionDenied(format!(
                "the token does not grant workspace '{requested}'; administering other \
                 workspaces needs the platform_admin claim"
            )))
        }
    }

    /// Fails with PERMISSION_DENIED unless the token grants `admin` over every workspace:
    /// for operations that span tenants (sweeps, the security log).
    pub fn require_platform_admin(&self) -> Result<(), ServiceError> {
        self.require(Permission::Admin)?;
        if self.principal.is_platform_admin() {
            Ok(())
        } else {
            Err(ServiceError::PermissionDenied(
                "this call spans every workspace: it needs the 'admin' permission and the \
                 platform_admin claim"
                    .into(),
            ))
        }
    }

    /// Whether the token names `workspace`: where a refusal may be recorded in that
    /// workspace's own audit log. Elsewhere it goes to the security log, so that no caller
    /// adds events to a log of a workspace its token does not name.
    pub fn names_workspace(&self, workspace: &str) -> bool {
        self.principal.may_act_in(workspace)
    }

    /// The workspace a request names: the requested one, or the token's only one when the
    /// request names none; `None` when neither says.
    pub fn named_workspace(&self, requested: &str) -> Option<String> {
        if !requested.is_empty() {
            return Some(requested.to_owned());
        }
        match self.principal.workspaces.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        }
    }

    /// The workspace of a call on a collection (create, list, audit, access by type).
    pub fn workspace_for_collection(&self, requested: &str) -> Result<String, ServiceError> {
        self.resolve(requested)?.map_err(|ws| {
            ServiceError::PermissionDenied(format!("the token does not grant workspace '{ws}'"))
        })
    }
}
