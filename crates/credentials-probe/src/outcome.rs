//! Shared result and configuration types of every probe.

use crate::egress::EgressPolicy;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub use credentials_core::model::ValidationOutcome;

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// The typed outcome.
    pub outcome: ValidationOutcome,
    /// A short user-facing message; never contains the secret.
    pub message: String,
    /// How long the probe took.
    pub latency: Duration,
    /// When the probe finished.
    pub checked_at: SystemTime,
}

impl ProbeResult {
    /// A result with this outcome and message, stamped now; [`crate::Prober`] sets the latency.
    pub fn new(outcome: ValidationOutcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            message: message.into(),
            latency: Duration::ZERO,
            checked_at: SystemTime::now(),
        }
    }

    /// A [`ValidationOutcome::Valid`] result.
    pub fn valid(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::Valid, message)
    }

    /// A [`ValidationOutcome::InvalidCredentials`] result.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::InvalidCredentials, message)
    }

    /// A [`ValidationOutcome::InsufficientPermissions`] result.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::InsufficientPermissions, message)
    }

    /// A [`ValidationOutcome::Unreachable`] result.
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::Unreachable, message)
    }

    /// A [`ValidationOutcome::TimedOut`] result.
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::TimedOut, message)
    }

    /// A [`ValidationOutcome::UnsupportedType`] result.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::UnsupportedType, message)
    }

    /// A [`ValidationOutcome::ProviderError`] result.
    pub fn provider_error(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::ProviderError, message)
    }

    /// A [`ValidationOutcome::EgressDenied`] result.
    pub fn egress_denied(message: impl Into<String>) -> Self {
        Self::new(ValidationOutcome::EgressDenied, message)
    }
}

/// What probes need: limits and where providers live.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Deadline of one whole probe (default 10 s).
    pub timeout: Duration,
    /// Which addresses probes may dial.
    pub egress: EgressPolicy,
    /// Base URLs of HTTP providers.
    pub endpoints: ProviderEndpoints,
    /// How many probes of each kind may run at once, per workspace and in all.
    pub budgets: crate::ProbeBudgets,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            egress: EgressPolicy::new(),
            endpoints: ProviderEndpoints::default(),
            budgets: crate::ProbeBudgets::default(),
        }
    }
}

/// Base URLs of providers: the catalogue's defaults, overridable (so tests point them at local
/// servers).
///
/// Two defaults are templates filled from the credential after strict checks: bedrock's
/// `{region}` and snowflake's `{account}`. BigQuery has no default: the service account's own
/// `token_uri` is used unless an override replaces it.
#[derive(Debug, Clone)]
pub struct ProviderEndpoints {
    urls: BTreeMap<String, String>,
}

impl Default for ProviderEndpoints {
    fn default() -> Self {
        Self {
            urls: credentials_core::catalogue::all()
                .iter()
                .filter_map(|t| Some((t.id.to_owned(), t.default_base_url()?.to_owned())))
                .collect(),
        }
    }
}

impl ProviderEndpoints {
    /// Replaces the base URL of one type (a trailing slash is dropped).
    pub fn with_override(mut self, type_id: &str, base_url: &str) -> Self {
        self.urls.insert(
            type_id.to_owned(),
            base_url.trim_end_matches('/').to_owned(),
        );
        self
    }

    /// The base URL of a type; `None` if it has none.
    pub fn base_url(&self, type_id: &str) -> Option<&str> {
        self.urls.get(type_id).map(String::as_str)
    }
}
