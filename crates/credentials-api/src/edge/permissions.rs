//! What each RPC requires, declared once per RPC: the auth layer looks the request's path up
//! here and refuses, before any handler runs, a caller whose token lacks the permission. The
//! operations then only scope by workspace. A test holds this table to the protos: every RPC
//! the server serves has a row, and every row is an RPC.
//!
//! Checked first, before any input check: a caller without the permission learns nothing
//! about what their request would have done. The one exception is `AccessCredential`, whose
//! operation checks the permission itself because a refused access is audited like every
//! other access ("every access writes an audit event"), which only the operation can do.

use auth::Permission;

/// What a caller needs to make one RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Nothing, not even a token: probes and operators' discovery.
    Public,
    /// A valid token, whatever it grants: the type catalogue is the same for everyone.
    Token,
    /// A valid token granting the permission, checked by the auth layer.
    Requires(Permission),
    /// A valid token; the operation checks the permission itself, so that it can audit a
    /// refusal.
    RequiresAudited(Permission),
    /// `admin` over every workspace (the token's `platform_admin` claim), checked by the auth
    /// layer: the RPC spans tenants, so no list of workspaces can scope it.
    PlatformAdmin,
}

const MANAGEMENT: &str = "/credentials.v1.CredentialsService/";
const ACCESS: &str = "/credentials.v1.AccessService/";
const ADMIN: &str = "/credentials.v1.AdminService/";

use Permission::{Access, Admin, Read, Write};
use Rule::{PlatformAdmin, Public, Requires, RequiresAudited, Token};

/// Every RPC the API serves, as `(service prefix, method, rule)`.
const RULES: &[(&str, &str, Rule)] = &[
    // Metadata, never a secret: read.
    (MANAGEMENT, "GetCredential", Requires(Read)),
    (MANAGEMENT, "ListCredentials", Requires(Read)),
    (MANAGEMENT, "GetSchema", Requires(Read)),
    (MANAGEMENT, "ListAuditEvents", Requires(Read)),
    (MANAGEMENT, "ListCredentialTypes", Token),
    // Changes, and calls that send a stored secret to its target (validation, discovery,
    // a test that merges a stored value): write.
    (MANAGEMENT, "CreateCredential", Requires(Write)),
    (MANAGEMENT, "UpdateCredential", Requires(Write)),
    (MANAGEMENT, "DeleteCredential", Requires(Write)),
    (MANAGEMENT, "SetDefaultCredential", Requires(Write)),
    (MANAGEMENT, "ValidateCredential", Requires(Write)),
    (MANAGEMENT, "TestCredential", Requires(Write)),
    (MANAGEMENT, "DiscoverSchema", Requires(Write)),
    // Plaintext: access, audited even when refused.
    (ACCESS, "AccessCredential", RequiresAudited(Access)),
    // A workspace's key: admin, in a workspace the token names (the operation checks which)
    // unless the token carries the platform-wide grant.
    (ADMIN, "SetWorkspaceKey", Requires(Admin)),
    (ADMIN, "GetWorkspaceKey", Requires(Admin)),
    // Sweeps and the security log span every workspace: admin with the platform-wide grant.
    (ADMIN, "StartRewrap", PlatformAdmin),
    (ADMIN, "GetRewrapStatus", PlatformAdmin),
    (ADMIN, "ListSecurityEvents", PlatformAdmin),
    // Probes (the kubelet has no token) and grpcurl's discovery.
    ("/grpc.health.v1.Health/", "Check", Public),
    ("/grpc.health.v1.Health/", "Watch", Public),
    (
        "/grpc.reflection.v1.ServerReflection/",
        "ServerReflectionInfo",
        Public,
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/",
        "ServerReflectionInfo",
        Public,
    ),
];

/// The rule of the RPC at `path` (`/package.Service/Method`); `None` for a path no served
/// service defines, which needs a token and then answers `UNIMPLEMENTED`.
pub fn rule(path: &str) -> Option<Rule> {
    RULES.iter().find_map(|(service, method, rule)| {
        (path.strip_prefix(service) == Some(method)).then_some(*rule)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The services of the `kms.v1` package are the kms's, not served here.
    fn served(path: &str) -> bool {
        !path.starts_with("/kms.")
    }

    #[test]
    fn every_rpc_of_every_served_service_has_exactly_one_rule() {
        let protos: BTreeSet<&str> = service_kit::rpc::known_paths()
            .filter(|p| served(p))
            .collect();
        let table: Vec<String> = RULES.iter().map(|(s, m, _)| format!("{s}{m}")).collect();
        let rows: BTreeSet<&str> = table.iter().map(String::as_str).collect();
        assert_eq!(rows.len(), table.len(), "a path has two rows");
        let missing: Vec<_> = protos.difference(&rows).collect();
        assert!(missing.is_empty(), "RPCs without a rule: {missing:?}");
        let stale: Vec<_> = rows.difference(&protos).collect();
        assert!(stale.is_empty(), "rules for no RPC: {stale:?}");
        // The three services of credentials.v1 are all there, not only what the table knows.
        for service in [MANAGEMENT, ACCESS, ADMIN] {
            assert!(protos.iter().any(|p| p.starts_with(service)), "{service}");
        }
    }

    #[test]
    fn lookups_are_exact() {
        assert_eq!(
            rule("/credentials.v1.CredentialsService/CreateCredential"),
            Some(Requires(Write))
        );
        assert_eq!(
            rule("/credentials.v1.AccessService/AccessCredential"),
            Some(RequiresAudited(Access))
        );
        assert_eq!(rule("/grpc.health.v1.Health/Check"), Some(Public));
        assert_eq!(
            rule("/credentials.v1.AdminService/StartRewrap"),
            Some(PlatformAdmin)
        );
        assert_eq!(
            rule("/credentials.v1.CredentialsService/CreateCredentialX"),
            None
        );
        assert_eq!(rule("/credentials.v1.CredentialsService/"), None);
        assert_eq!(rule("/grpc.health.v1.Health/Made/Up"), None);
        assert_eq!(rule("/"), None);
    }
}
