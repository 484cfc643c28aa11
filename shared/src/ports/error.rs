//! The one error every storage port answers with.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The organisation already has `limit` endpoints.
    #[error("the organisation already has the maximum of {limit} endpoints")]
    EndpointLimitReached { limit: usize },
    /// A conditional create found the item already there.
    #[error("the item already exists")]
    AlreadyExists,
    /// The backend failed; the text is for logs only and never reaches a client.
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// What every storage port's methods answer.
pub type StoreResult<T> = Result<T, StoreError>;
