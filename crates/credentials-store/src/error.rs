use tokio_postgres::error::SqlState;

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Postgres cannot be reached or is shutting down. Retryable.
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No such (live, where it matters) credential in the workspace.
    #[error("credential not found")]
    NotFound,
    /// A live credential of the workspace already has the name.
    #[error("a credential with this name already exists")]
    NameTaken,
    /// The credential changed since the etag was read.
    #[error("the credential changed since it was read")]
    EtagMismatch,
    /// The credential's value was written between reading it and writing a new one; the new
    /// value was sealed for the wrong generation. Read again and reseal.
    #[error("the credential's value was written meanwhile")]
    ValueRaced,
    /// A re-wrap sweep is already unfinished.
    #[error("a re-wrap sweep is already running")]
    SweepRunning,
    /// The workspace has no live default for the type.
    #[error("no default credential for this type")]
    NoDefault,
    /// A stored row holds something this build cannot read.
    #[error("stored row is unreadable: {0}")]
    Corrupt(&'static str),
    /// The connection string cannot be used.
    #[error("database configuration: {0}")]
    Config(String),
    /// The migrations could not be applied.
    #[error("migrations failed: {0}")]
    Migration(String),
    /// Any other database error: a bug or a schema mismatch.
    #[error("database error")]
    Database(#[source] tokio_postgres::Error),
}

impl StoreError {
    /// Whether the same call may succeed later without any change.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        let Some(code) = err.code() else {
            // No SQLSTATE: either the connection broke or could not be made (retryable), or a
            // value did not convert (a bug or a schema mismatch, not an outage).
            let transport = err.is_closed()
                || std::error::Error::source(&err).is_some_and(|s| s.is::<std::io::Error>());
            return if transport {
                Self::Unavailable(Box::new(err))
            } else {
                Self::Database(err)
            };
        };
        if *code == SqlState::UNIQUE_VIOLATION {
            let constraint = err
                .as_db_error()
                .and_then(|db| db.constraint())
                .unwrap_or_default();
            if constraint == "credentials_name_live" {
                return Self::NameTaken;
            }
            if constraint == "rewrap_runs_one_running" {
                return Self::SweepRunning;
            }
        }
        let class = &code.code()[..2];
        // 08: connection exceptions; 57P0x: shutdown; 53: out of resources; 40: serialization
        // failures and deadlocks (retrying the whole call is the fix).
        if matches!(class, "08" | "53" | "40") || code.code().starts_with("57P0") {
            return Self::Unavailable(Box::new(err));
        }
        Self::Database(err)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        match err {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Unavailable(Box::new(other)),
        }
    }
}
