//! The library's error type. Domain code returns these; `http::problem` is the
//! one place that turns them into HTTP statuses.

use crate::ports::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or violates a limit; nothing was written.
    #[error("{0}")]
    BadRequest(String),
    /// Missing, malformed or unacceptable credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may see the thing but its role does not allow the action.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown, or not visible to the caller: the two are deliberately the same.
    #[error("not found")]
    NotFound,
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The request took longer than it may (an upload past its deadline).
    #[error("{0}")]
    Timeout(String),
    /// The request body exceeds the size limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many changes raced on one conversation; the client should retry.
    #[error("the conversation is changing too fast; retry")]
    Contended,
    #[error(transparent)]
    Backend(#[from] BackendError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
