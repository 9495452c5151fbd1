use tonic::Code;

/// Result of a kms client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a kms client call failed. Messages come from the kms, which never puts key material or
/// secrets in them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint or TLS settings given to the client are unusable.
    #[error("kms client configuration: {0}")]
    Config(String),
    /// The kms cannot be reached or is not ready. Retryable.
    #[error("kms unavailable: {0}")]
    Unavailable(String),
    /// The kms did not answer within the client's deadline. Retryable.
    #[error("kms did not answer within the deadline")]
    DeadlineExceeded,
    /// The kms refused the request as malformed (a limit, an unknown blob format).
    #[error("kms refused the request: {0}")]
    InvalidArgument(String),
    /// The wrapped key does not open under the given context: wrong context or altered blob.
    #[error("the wrapped key does not open under this encryption context")]
    CannotUnwrap,
    /// The master key or key version is unknown or disabled in the keyring.
    #[error("master key unavailable: {0}")]
    KeyUnavailable(String),
    /// Any other status, which means a bug on one side.
    #[error("kms answered {code}: {message}")]
    Unexpected {
        /// The name of the gRPC status code, e.g. `Internal`.
        code: String,
        /// The kms's message.
        message: String,
    },
    /// The kms answered with something this client does not understand.
    #[error("kms answered an unusable response: {0}")]
    BadResponse(String),
}

impl Error {
    /// Whether the same call may succeed later without any change (kms restarting, overloaded).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::DeadlineExceeded)
    }

    /// A short, bounded name of the variant, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Unavailable(_) => "unavailable",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::CannotUnwrap => "cannot_unwrap",
            Self::KeyUnavailable(_) => "key_unavailable",
            Self::Unexpected { .. } => "unexpected",
            Self::BadResponse(_) => "bad_response",
        }
    }

    /// Classifies a failed call; the transport's types stay inside this crate.
    pub(crate) fn from_status(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            // A connection failure surfaces as UNAVAILABLE, or as UNKNOWN from the transport.
            Code::Unavailable | Code::Cancelled => Self::Unavailable(message),
            Code::Unknown if is_transport_failure(&status) => Self::Unavailable(message),
            Code::DeadlineExceeded => Self::DeadlineExceeded,
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument(message),
            Code::PermissionDenied => Self::CannotUnwrap,
            Code::FailedPrecondition | Code::NotFound => Self::KeyUnavailable(message),
            code => Self::Unexpected {
                code: format!("{code:?}"),
                message,
            },
        }
    }
}

fn is_transport_failure(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    let mut source = status.source();
    while let Some(err) = source {
        if err.is::<tonic::transport::Error>() || err.is::<std::io::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}
