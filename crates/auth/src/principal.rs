use std::collections::BTreeSet;
use std::fmt;

/// Something a caller may be allowed to do, as granted by the token's `permissions` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Read credentials' metadata and masked previews.
    Read,
    /// Create, change and delete credentials.
    Write,
    /// Obtain a credential's plaintext through the access API.
    Access,
    /// Administrative operations; implies none of the others.
    Admin,
}

impl Permission {
    /// Every permission, in order.
    pub const ALL: [Self; 4] = [Self::Read, Self::Write, Self::Access, Self::Admin];

    /// The claim spelling: `"read"`, `"write"`, `"access"` or `"admin"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Access => "access",
            Self::Admin => "admin",
        }
    }

    /// Parses the exact (lower-case) claim spelling; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller, built from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: who the caller is.
    pub subject: String,
    /// Workspaces the caller may act in, without duplicates, in token order.
    pub workspaces: Vec<String>,
    /// What the caller may do there.
    pub permissions: BTreeSet<Permission>,
    /// The token's `platform_admin` claim: `admin` over every workspace, not only these.
    pub platform_admin: bool,
}

impl Principal {
    /// Whether the caller holds `p` itself; no permission implies another, not even `Admin`.
    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    /// Whether `workspace` is one of the caller's workspaces (exact, case-sensitive match).
    pub fn may_act_in(&self, workspace: &str) -> bool {
        self.workspaces.iter().any(|w| w == workspace)
    }

    /// Whether the caller administers every workspace: `admin` and the platform-wide grant.
    pub fn is_platform_admin(&self) -> bool {
        self.platform_admin && self.has(Permission::Admin)
    }

    /// Whether the caller may administer `workspace`: `admin`, and the workspace named by
    /// the token or the platform-wide grant.
    pub fn may_administer(&self, workspace: &str) -> bool {
        self.has(Permission::Admin) && (self.platform_admin || self.may_act_in(workspace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_parse_their_own_spelling_only() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        let spellings: Vec<_> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(spellings, ["read", "write", "access", "admin"]);
        for other in ["READ", "Read", " read", "read ", "", "delete", "*"] {
            assert_eq!(Permission::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn principal_checks_are_exact() {
        let principal = Principal {
            subject: "svc-a".into(),
            workspaces: vec!["team-a".into(), "team.b".into()],
            permissions: [Permission::Read, Permission::Admin].into(),
            platform_admin: false,
        };
        assert!(principal.has(Permission::Read));
        assert!(principal.has(Permission::Admin));
        assert!(!principal.has(Permission::Write));
        assert!(!principal.has(Permission::Access));
        assert!(principal.may_act_in("team-a"));
        assert!(principal.may_act_in("team.b"));
        assert!(!principal.may_act_in("TEAM-A"));
        assert!(!principal.may_act_in("team"));
        assert!(!principal.may_act_in(""));
        assert!(principal.may_administer("team-a"));
        assert!(!principal.may_administer("team-c"));
        assert!(!principal.is_platform_admin());
        let platform = Principal {
            platform_admin: true,
            ..principal.clone()
        };
        assert!(platform.is_platform_admin());
        assert!(platform.may_administer("team-c"));
        // The grant widens admin only; without admin it is nothing.
        let no_admin = Principal {
            permissions: [Permission::Read].into(),
            ..platform
        };
        assert!(!no_admin.is_platform_admin());
        assert!(!no_admin.may_administer("team-a"));
    }
}
