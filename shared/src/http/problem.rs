//! RFC 9457 problem details: the one place where errors become HTTP statuses.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::error::Error;
use crate::ports::BackendError;

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        Error::Backend(BackendError::Unavailable { .. }) | Error::Contended => StatusCode::SERVICE_UNAVAILABLE,
        Error::Backend(BackendError::Integrity | BackendError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The response for an error. Internal failures are logged here with their
/// cause and answered without it.
pub fn from_error(e: &Error) -> Response<Bytes> {
    let status = status_of(e);
    let detail = match e {
        Error::Backend(BackendError::Integrity | BackendError::Internal(_)) => {
            tracing::error!(error = %e, "request failed");
            "the server failed to complete the request".to_owned()
        }
        Error::Backend(BackendError::Unavailable { .. }) => {
            tracing::warn!(error = %e, "backend unavailable");
            "a backend is temporarily unavailable; retry later".to_owned()
        }
        Error::NotFound => "no such resource, or it is not visible to you".to_owned(),
        other => other.to_string(),
    };
    let mut resp = problem(status, &detail);
    match e {
        Error::Backend(BackendError::Unavailable { retry_after_secs, .. }) => {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        Error::Contended => {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1u32));
        }
        _ => {}
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// A problem response with the given status and detail.
pub fn problem(status: StatusCode, detail: &str) -> Response<Bytes> {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = Problem {
        kind: format!("urn:keysrv:problem:{}", title.to_ascii_lowercase().replace(' ', "-")),
        title,
        status: status.as_u16(),
        detail,
    };
    let mut resp = Response::new(Bytes::from(serde_json::to_vec(&body).unwrap_or_default()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
