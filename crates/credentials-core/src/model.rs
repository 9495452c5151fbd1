//! Credentials, audit events and their states, as the domain sees them.

use crate::Category;
use std::time::SystemTime;
use uuid::Uuid;

/// A stored credential's metadata. Holds no secret: the value lives only as ciphertext.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// Server-assigned id.
    pub id: Uuid,
    /// The workspace it belongs to.
    pub workspace_id: String,
    /// Display name, unique among the workspace's live credentials.
    pub name: String,
    /// The type's category.
    pub category: Category,
    /// The type id, e.g. `openai`.
    pub type_id: String,
    /// Free text.
    pub description: String,
    /// The preview shown instead of the secret.
    pub masked_content: String,
    /// Whether it is the workspace's default for its type.
    pub is_default: bool,
    /// The last validation.
    pub validation: Validation,
    /// Whether a discovered schema is stored.
    pub has_schema: bool,
    /// When the stored schema was discovered.
    pub schema_updated_at: Option<SystemTime>,
    /// Creation time.
    pub created_at: SystemTime,
    /// Last change of name, description, value or default flag.
    pub updated_at: SystemTime,
    /// Deletion time; `None` while live.
    pub deleted_at: Option<SystemTime>,
    /// Increases with every change; the etag is derived from it.
    pub revision: i64,
    /// The master key and version wrapping its data key; `None` once deleted.
    pub master_key: Option<(String, u32)>,
}

impl Credential {
    /// The etag clients send back for optimistic concurrency.
    pub fn etag(&self) -> Etag {
        Etag(self.revision)
    }
}

/// An opaque version tag: `v<revision>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Etag(pub i64);

impl Etag {
    /// Parses `v<revision>`; `None` if malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let digits = s.strip_prefix('v')?;
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Etag)
    }
}

impl std::fmt::Display for Etag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// The last validation of a credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validation {
    /// Valid, invalid or unknown.
    pub state: ValidationState,
    /// The typed outcome of the last probe.
    pub outcome: ValidationOutcome,
    /// User-facing explanation; never contains the secret.
    pub message: String,
    /// When the last probe ran.
    pub checked_at: Option<SystemTime>,
}

/// Whether a credential is known to work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ValidationState {
    /// Not validated since the value was last written.
    #[default]
    Unknown = 0,
    /// The last probe succeeded.
    Valid = 1,
    /// The last probe failed.
    Invalid = 2,
}

/// The typed result of a validation probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ValidationOutcome {
    /// Not checked.
    #[default]
    Unspecified = 0,
    /// Accepted by the target.
    Valid = 1,
    /// Rejected by the target.
    InvalidCredentials = 2,
    /// Accepted but lacking a needed permission.
    InsufficientPermissions = 3,
    /// The target could not be reached.
    Unreachable = 4,
    /// The target did not answer in time.
    TimedOut = 5,
    /// The type cannot be probed.
    UnsupportedType = 6,
    /// The target failed for reasons unrelated to the credential.
    ProviderError = 7,
    /// The egress policy refused the target's address.
    EgressDenied = 8,
}

macro_rules! code_conversions {
    ($ty:ty { $($variant:ident = $code:literal),* $(,)? }) => {
        impl $ty {
            /// The stable numeric code stored in the database and sent on the wire.
            pub fn code(self) -> i16 {
                self as i16
            }

            /// The variant for a stored code; `None` for an unknown code.
            pub fn from_code(code: i16) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

code_conversions!(ValidationState { Unknown = 0, Valid = 1, Invalid = 2 });
code_conversions!(ValidationOutcome {
    Unspecified = 0, Valid = 1, InvalidCredentials = 2, InsufficientPermissions = 3,
    Unreachable = 4, TimedOut = 5, UnsupportedType = 6, ProviderError = 7, EgressDenied = 8,
});
code_conversions!(AuditAction {
    Create = 1, Update = 2, Delete = 3, SetDefault = 4, Access = 5, Validate = 6,
    DiscoverSchema = 7, Rewrap = 8, Test = 9, SetWorkspaceKey = 10, StartRewrap = 11,
});
code_conversions!(AuditOutcome { Succeeded = 1, Failed = 2, Started = 3 });

/// An action recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// Created.
    Create = 1,
    /// Name, description or value updated.
    Update = 2,
    /// Deleted and shredded.
    Delete = 3,
    /// Made the default for its type.
    SetDefault = 4,
    /// Plaintext handed out by the access API.
    Access = 5,
    /// Validated against its target.
    Validate = 6,
    /// Schema discovered.
    DiscoverSchema = 7,
    /// Data key moved to another master-key version.
    Rewrap = 8,
    /// A stored value (possibly with its secret replaced) tested against its target.
    Test = 9,
    /// A workspace's master key assigned or returned to the default.
    SetWorkspaceKey = 10,
    /// A re-wrap sweep (or its dry run) requested.
    StartRewrap = 11,
}

/// Whether an audited action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// It succeeded.
    Succeeded = 1,
    /// It was refused or failed.
    Failed = 2,
    /// It is about to happen: recorded before a stored value is sent to its target, so that
    /// no probe goes unrecorded even if the process dies before it ends.
    Started = 3,
}

/// An audit event to record. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// The workspace acted in.
    pub workspace_id: String,
    /// The credential acted on, if one.
    pub credential_id: Option<Uuid>,
    /// The authenticated subject.
    pub actor: String,
    /// What was done.
    pub action: AuditAction,
    /// Whether it succeeded.
    pub outcome: AuditOutcome,
    /// The gRPC status code name of the answer, e.g. `OK`.
    pub status_code: String,
    /// The request id, for matching with logs.
    pub request_id: String,
}

/// A recorded audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Increasing id.
    pub id: i64,
    /// What was recorded.
    pub event: NewAuditEvent,
    /// When.
    pub time: SystemTime,
}

/// Filters of a credential listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this category.
    pub category: Option<Category>,
    /// Only this type.
    pub type_id: Option<String>,
    /// Include deleted credentials.
    pub show_deleted: bool,
}

/// A position in a listing (newest first): the last item of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    /// `created_at` of the last item, in microseconds since the epoch.
    pub created_at_micros: i64,
    /// Its id, which breaks ties.
    pub id: Uuid,
}

/// A fresh random credential id (UUID version 4) from the system RNG.
pub fn new_credential_id() -> Uuid {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system RNG is available");
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_and_reject_garbage() {
        assert_eq!(Etag::parse(&Etag(42).to_string()), Some(Etag(42)));
        for bad in ["", "v", "42", "v-1", "vx", "v1 ", "v99999999999999999999"] {
            assert_eq!(Etag::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for code in 0..=8 {
            assert_eq!(ValidationOutcome::from_code(code).unwrap().code(), code);
        }
        assert_eq!(ValidationOutcome::from_code(9), None);
        assert_eq!(AuditAction::from_code(5), Some(AuditAction::Access));
    }

    #[test]
    fn ids_are_v4_and_distinct() {
        let a = new_credential_id();
        assert_eq!(a.get_version_num(), 4);
        assert_ne!(a, new_credential_id());
    }
}
