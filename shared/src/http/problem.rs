//! RFC 9457 problem details: the one place where errors become HTTP
//! responses. Every error case has a stable problem type
//! (`urn:keysrv:problem:<name>`), documented in docs/openapi.yaml, that a
//! client branches on; `detail` is for people. Extension members carry what
//! a program needs (`max_members`, `retry_after`, …).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::error::{Conflict, Error, Invalid, NotAllowed, Timeout, TooLarge, Unauthorized, UrlRefused};
use crate::ports::BackendError;

/// The prefix of every problem type.
pub const TYPE_PREFIX: &str = "urn:keysrv:problem:";

/// One problem type: its name, status and title, as documented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProblemType {
    pub name: &'static str,
    pub status: StatusCode,
    pub title: &'static str,
}

const fn t(name: &'static str, status: StatusCode, title: &'static str) -> ProblemType {
    ProblemType { name, status, title }
}

/// Every problem type keysrv answers with. docs/openapi.yaml documents each
/// (a test keeps the two the same).
pub const TYPES: &[ProblemType] = &[
    t("invalid-jid", StatusCode::BAD_REQUEST, "Invalid JID"),
    t("body-missing", StatusCode::BAD_REQUEST, "Request body missing"),
    t("body-not-object", StatusCode::BAD_REQUEST, "Request body is not a JSON object"),
    t("invalid-body", StatusCode::BAD_REQUEST, "Invalid request body"),
    t("invalid-idempotency-key", StatusCode::BAD_REQUEST, "Invalid Idempotency-Key"),
    t("too-many-members", StatusCode::BAD_REQUEST, "Too many members"),
    t("batch-too-large", StatusCode::BAD_REQUEST, "Batch too large"),
    t("invalid-role", StatusCode::BAD_REQUEST, "Invalid role"),
    t("invalid-media-type", StatusCode::BAD_REQUEST, "Invalid media type"),
    t("invalid-path", StatusCode::BAD_REQUEST, "Invalid path parameter"),
    t("upload-length-required", StatusCode::BAD_REQUEST, "Upload length required"),
    t("upload-too-long", StatusCode::BAD_REQUEST, "Upload longer than announced"),
    t("upload-too-short", StatusCode::BAD_REQUEST, "Upload shorter than announced"),
    t("upload-broken", StatusCode::BAD_REQUEST, "Upload broken off"),
    t("invalid-token", StatusCode::UNAUTHORIZED, "Invalid token"),
    t("not-an-access-token", StatusCode::UNAUTHORIZED, "Not an access token"),
    t("no-caller-claim", StatusCode::UNAUTHORIZED, "Token without caller"),
    t("non-canonical-caller", StatusCode::UNAUTHORIZED, "Caller not in canonical form"),
    t("role-required", StatusCode::FORBIDDEN, "Role does not allow this"),
    t("invalid-url", StatusCode::FORBIDDEN, "Invalid file URL"),
    t("url-expired", StatusCode::FORBIDDEN, "File URL expired"),
    t("not-found", StatusCode::NOT_FOUND, "Not Found"),
    t("no-route", StatusCode::NOT_FOUND, "No such route"),
    t("method-not-allowed", StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    t("body-timeout", StatusCode::REQUEST_TIMEOUT, "Request body too slow"),
    t("upload-deadline", StatusCode::REQUEST_TIMEOUT, "Upload past its deadline"),
    t("owner-role-fixed", StatusCode::CONFLICT, "The owner's role is fixed"),
    t("owner-cannot-leave", StatusCode::CONFLICT, "The owner cannot be removed"),
    t("member-limit", StatusCode::CONFLICT, "Member limit reached"),
    t("idempotency-key-reused", StatusCode::CONFLICT, "Idempotency-Key reused"),
    t("file-already-uploaded", StatusCode::CONFLICT, "File already uploaded"),
    t("upload-in-progress", StatusCode::CONFLICT, "Upload in progress"),
    t("body-too-large", StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
    t("file-too-large", StatusCode::PAYLOAD_TOO_LARGE, "File too large"),
    t("uploads-too-large", StatusCode::PAYLOAD_TOO_LARGE, "Upload larger than all uploads may be"),
    t("rate-limited", StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
    t("contended", StatusCode::SERVICE_UNAVAILABLE, "Conversation busy"),
    t("busy", StatusCode::SERVICE_UNAVAILABLE, "Server busy"),
    t("unavailable", StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
    t("internal", StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
];

fn type_named(name: &str) -> ProblemType {
    TYPES.iter().copied().find(|t| t.name == name).unwrap_or(ProblemType {
        name: "internal",
        status: StatusCode::INTERNAL_SERVER_ERROR,
        title: "Internal Server Error",
    })
}

/// The problem type of an error, and its extension members.
pub fn classify(e: &Error) -> (ProblemType, Map<String, Value>) {
    let mut ext = Map::new();
    let mut put = |k: &str, v: Value| {
        ext.insert(k.to_owned(), v);
    };
    let name = match e {
        Error::Invalid(i) => match i {
            Invalid::Jid { .. } => "invalid-jid",
            Invalid::BodyMissing => "body-missing",
            Invalid::BodyNotObject => "body-not-object",
            Invalid::Body(_) => "invalid-body",
            Invalid::IdempotencyKey => "invalid-idempotency-key",
            Invalid::TooManyMembers { max_members } => {
                put("max_members", json!(max_members));
                "too-many-members"
            }
            Invalid::BatchTooLarge { max_batch } => {
                put("max_batch", json!(max_batch));
                "batch-too-large"
            }
            Invalid::Role => "invalid-role",
            Invalid::MediaType => "invalid-media-type",
            Invalid::PathParameter => "invalid-path",
            Invalid::UploadLength => "upload-length-required",
            Invalid::UploadTooLong { .. } => "upload-too-long",
            Invalid::UploadTooShort { .. } => "upload-too-short",
            Invalid::UploadBody(_) => "upload-broken",
        },
        Error::Unauthorized(u) => match u {
            Unauthorized::Token(_) => "invalid-token",
            Unauthorized::NotAccessToken => "not-an-access-token",
            Unauthorized::NoCallerClaim { claim } => {
                put("claim", json!(claim));
                "no-caller-claim"
            }
            Unauthorized::NonCanonical { claim, .. } => {
                put("claim", json!(claim));
                "non-canonical-caller"
            }
        },
        Error::NotAllowed(n) => {
            put("required_role", json!(required_role(*n)));
            "role-required"
        }
        Error::UrlRefused(UrlRefused::Invalid) => "invalid-url",
        Error::UrlRefused(UrlRefused::Expired) => "url-expired",
        Error::NotFound => "not-found",
        Error::NoRoute => "no-route",
        Error::MethodNotAllowed => "method-not-allowed",
        Error::Timeout(Timeout::Body) => "body-timeout",
        Error::Timeout(Timeout::Upload { grace_secs }) => {
            put("grace_secs", json!(grace_secs));
            "upload-deadline"
        }
        Error::Conflict(c) => match c {
            Conflict::OwnerRole => "owner-role-fixed",
            Conflict::OwnerRemoval => "owner-cannot-leave",
            Conflict::MemberLimit { max_members } => {
                put("max_members", json!(max_members));
                "member-limit"
            }
            Conflict::IdempotencyKeyReused => "idempotency-key-reused",
            Conflict::FileUploaded => "file-already-uploaded",
            Conflict::UploadInProgress => "upload-in-progress",
        },
        Error::TooLarge(t) => {
            let (name, max) = match t {
                TooLarge::Body { max_bytes } => ("body-too-large", *max_bytes as u64),
                TooLarge::File { max_bytes } => ("file-too-large", *max_bytes),
                TooLarge::UploadsInFlight { max_bytes } => ("uploads-too-large", *max_bytes),
            };
            put("max_bytes", json!(max));
            name
        }
        Error::RateLimited { operation, retry_after_secs } => {
            put("operation", json!(operation));
            put("retry_after", json!(retry_after_secs));
            "rate-limited"
        }
        Error::Contended => {
            put("retry_after", json!(1));
            "contended"
        }
        Error::Busy => {
            put("retry_after", json!(1));
            "busy"
        }
        Error::Backend(BackendError::Unavailable { retry_after_secs, .. }) => {
            put("retry_after", json!(retry_after_secs));
            "unavailable"
        }
        Error::Backend(BackendError::Integrity | BackendError::Internal(_)) => "internal",
    };
    (type_named(name), ext)
}

/// The least role that may do what a `NotAllowed` refused.
fn required_role(n: NotAllowed) -> &'static str {
    match n {
        NotAllowed::ManageMembers | NotAllowed::RemoveOthers | NotAllowed::DeleteFile => "admin",
        NotAllowed::DemoteAdmin | NotAllowed::GrantAdmin | NotAllowed::RemoveAdmin | NotAllowed::DeleteConversation => {
            "owner"
        }
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    classify(e).0.status
}

/// The response for an error. Internal failures are logged here with their
/// cause and answered without it.
pub fn from_error(e: &Error) -> Response<Bytes> {
    let (kind, ext) = classify(e);
    crate::metrics::METRICS.problem(kind.name);
    let detail = match e {
        Error::Backend(BackendError::Integrity | BackendError::Internal(_)) => {
            tracing::error!(error = %e, "request failed");
            "the server failed to complete the request".to_owned()
        }
        Error::Backend(BackendError::Unavailable { .. }) => {
            tracing::warn!(error = %e, "backend unavailable");
            "a backend is temporarily unavailable; retry later".to_owned()
        }
        other => other.to_string(),
    };
    let retry_after = ext.get("retry_after").and_then(Value::as_u64);
    let mut resp = problem_response(kind, &detail, ext);
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if kind.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

fn problem_response(kind: ProblemType, detail: &str, ext: Map<String, Value>) -> Response<Bytes> {
    let mut body = Map::new();
    body.insert("type".into(), json!(format!("{TYPE_PREFIX}{}", kind.name)));
    body.insert("title".into(), json!(kind.title));
    body.insert("status".into(), json!(kind.status.as_u16()));
    body.insert("detail".into(), json!(detail));
    body.extend(ext);
    let mut resp = Response::new(Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_default()));
    *resp.status_mut() = kind.status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_named_once_and_every_error_has_one() {
        let mut names: Vec<&str> = TYPES.iter().map(|t| t.name).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a problem type is listed twice");
        // A name no error uses would be dead documentation.
        let samples: Vec<Error> = vec![
            Invalid::jid("x", keysrv_jid::JidError::Empty).into(),
            Invalid::BodyMissing.into(),
            Invalid::BodyNotObject.into(),
            Invalid::Body("x".into()).into(),
            Invalid::IdempotencyKey.into(),
            Invalid::TooManyMembers { max_members: 4 }.into(),
            Invalid::BatchTooLarge { max_batch: 100 }.into(),
            Invalid::Role.into(),
            Invalid::MediaType.into(),
            Invalid::PathParameter.into(),
            Invalid::UploadLength.into(),
            Invalid::UploadTooLong { expected: 1 }.into(),
            Invalid::UploadTooShort { received: 0, expected: 1 }.into(),
            Invalid::UploadBody("x".into()).into(),
            Unauthorized::Token("x".into()).into(),
            Unauthorized::NotAccessToken.into(),
            Unauthorized::NoCallerClaim { claim: "username".into() }.into(),
            Unauthorized::NonCanonical { claim: "username".into(), reason: keysrv_jid::JidError::Empty }.into(),
            NotAllowed::ManageMembers.into(),
            UrlRefused::Invalid.into(),
            UrlRefused::Expired.into(),
            Error::NotFound,
            Error::NoRoute,
            Error::MethodNotAllowed,
            Timeout::Body.into(),
            Timeout::Upload { grace_secs: 1 }.into(),
            Conflict::OwnerRole.into(),
            Conflict::OwnerRemoval.into(),
            Conflict::MemberLimit { max_members: 4 }.into(),
            Conflict::IdempotencyKeyReused.into(),
            Conflict::FileUploaded.into(),
            Conflict::UploadInProgress.into(),
            TooLarge::Body { max_bytes: 1 }.into(),
            TooLarge::File { max_bytes: 1 }.into(),
            TooLarge::UploadsInFlight { max_bytes: 1 }.into(),
            Error::RateLimited { operation: "rotate", retry_after_secs: 3 },
            Error::Contended,
            Error::Busy,
            BackendError::Unavailable { reason: "x".into(), retry_after_secs: 2 }.into(),
            BackendError::Internal("x".into()).into(),
        ];
        let used: std::collections::BTreeSet<&str> = samples.iter().map(|e| classify(e).0.name).collect();
        assert_eq!(
            used.len(),
            TYPES.len(),
            "problem types no error uses: {:?}",
            names.iter().filter(|n| !used.contains(*n)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn extensions_carry_what_a_program_needs() {
        let body = |e: Error| -> Value { serde_json::from_slice(from_error(&e).body()).unwrap() };
        let b = body(Conflict::MemberLimit { max_members: 7 }.into());
        assert_eq!(
            (b["type"].as_str(), b["status"].as_u64(), b["max_members"].as_u64()),
            (Some("urn:keysrv:problem:member-limit"), Some(409), Some(7))
        );
        let r = from_error(&Error::RateLimited { operation: "rotate", retry_after_secs: 9 });
        assert_eq!(r.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("9"));
        assert_eq!(body(Error::RateLimited { operation: "rotate", retry_after_secs: 9 })["retry_after"], json!(9));
        assert_eq!(body(NotAllowed::GrantAdmin.into())["required_role"], json!("owner"));
        // The 404 of a thing the caller may not see is the 404 of nothing.
        assert_eq!(
            body(Error::NotFound),
            json!({"type": "urn:keysrv:problem:not-found", "title": "Not Found", "status": 404,
                   "detail": "no such resource, or it is not visible to you"})
        );
    }
}
