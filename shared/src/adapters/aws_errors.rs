//! AWS SDK errors, sorted into what the domain can act on: throttling and
//! transient failures become `Unavailable` (503 + `Retry-After`), everything
//! else `Internal`. The SDK's full error chain goes into the message for the
//! logs; it never reaches a client.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::ports::BackendError;

/// Error codes that mean "not now": retrying later may succeed.
const TRANSIENT: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "InternalServiceError",
    "InternalServiceErrorException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSInternalException",
    "KeyUnavailableException",
    "DependencyTimeoutException",
    "TransactionInProgressException",
    // S3
    "SlowDown",
    "InternalError",
    "RequestTimeout",
];

pub fn classify<E, R>(what: &str, err: SdkError<E, R>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(se) => se.err().code().is_some_and(|c| TRANSIENT.contains(&c)),
        _ => false,
    };
    let reason = format!("{what}: {}", DisplayErrorContext(&err));
    if transient { BackendError::Unavailable { reason, retry_after_secs: 1 } } else { BackendError::Internal(reason) }
}
