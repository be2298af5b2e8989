//! Errors of the API client, shaped by what a caller can do about them.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::format::WireError;

/// An RFC 9457 problem details object, as keysrv answers every error.
/// Branch on [`Problem::name`] (the stable problem type), never on `detail`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// A URN naming the problem type, e.g. `urn:keysrv:problem:not-found`
    /// (`about:blank` when the response was not a problem document).
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    /// For people; may change between versions.
    #[serde(default)]
    pub detail: String,
    /// The extension members a program acts on (boxed: every error carries
    /// a problem, and most have none).
    #[serde(flatten, default)]
    pub ext: Box<ProblemExt>,
}

/// The extension members of keysrv's problems (docs/openapi.yaml).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ProblemExt {
    /// `rate-limited`, `contended`, `busy`, `unavailable`: seconds to wait.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// `too-many-members`, `member-limit`.
    #[serde(default)]
    pub max_members: Option<u64>,
    /// `batch-too-large`.
    #[serde(default)]
    pub max_batch: Option<u64>,
    /// `body-too-large`, `file-too-large`, `uploads-too-large`.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// `role-required`: `admin` or `owner`.
    #[serde(default)]
    pub required_role: Option<String>,
    /// `rate-limited`: the operation whose quota is used up.
    #[serde(default)]
    pub operation: Option<String>,
}

/// The prefix of keysrv's problem types.
pub const PROBLEM_PREFIX: &str = "urn:keysrv:problem:";

impl Problem {
    /// The problem type's name (`not-found`, `member-limit`, …; the table in
    /// docs/openapi.yaml), or `None` for a response that is not keysrv's.
    pub fn name(&self) -> Option<&str> {
        self.kind.strip_prefix(PROBLEM_PREFIX)
    }

    /// Reads a problem document; anything else becomes an `about:blank`
    /// problem with the start of the body as its detail.
    pub(crate) fn from_response(status: StatusCode, body: &[u8]) -> (Self, bool) {
        match serde_json::from_slice::<Problem>(body) {
            Ok(mut p) if !p.kind.is_empty() => {
                if p.status == 0 {
                    p.status = status.as_u16();
                }
                (p, true)
            }
            _ => {
                let text = String::from_utf8_lossy(body);
                let detail: String = text.chars().take(200).collect();
                let problem = Self {
                    kind: "about:blank".into(),
                    title: status.canonical_reason().unwrap_or("Error").into(),
                    status: status.as_u16(),
                    detail,
                    ..Self::default()
                };
                (problem, false)
            }
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{} {}", self.status, self.title)
        } else {
            write!(f, "{} {}: {}", self.status, self.title, self.detail)
        }
    }
}

/// What went wrong, in the terms a caller acts on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 404: the conversation, key or member does not exist **or is not
    /// visible to the caller** — keysrv answers both alike on purpose. For a
    /// key: the message cannot be opened (never was allowed, revoked, or the
    /// conversation was deleted).
    #[error("not found (or not visible to you): {0}")]
    NotFound(Problem),
    /// 403: the caller is a member, but its role does not allow this.
    #[error("forbidden: {0}")]
    Forbidden(Problem),
    /// 401: the token is missing, invalid or expired (after one
    /// `TokenProvider::refresh` attempt).
    #[error("unauthorized: {0}")]
    Unauthorized(Problem),
    /// 409: conflicts with the conversation's state (the owner's membership,
    /// a full conversation) or an `Idempotency-Key` reused for another request.
    #[error("conflict: {0}")]
    Conflict(Problem),
    /// 503, 429, 502 or 504: transient; retry after `retry_after` (from the
    /// `Retry-After` header) or a backoff of your own. Retry a POST with the
    /// same `Idempotency-Key`.
    #[error("retry later{}: {problem}", retry_after.map(|d| format!(" (after {}s)", d.as_secs())).unwrap_or_default())]
    RetryLater { retry_after: Option<Duration>, problem: Problem },
    /// 400 or 413: the request is wrong (invalid or full JID, limits). The
    /// problem's `detail` says what.
    #[error("bad request: {0}")]
    BadRequest(Problem),
    /// Another 5xx: the server failed; may be retried.
    #[error("server error: {0}")]
    Server(Problem),
    /// The request did not complete (connection, TLS, timeout). Whether a
    /// POST was applied is unknown: retry it with the same `Idempotency-Key`.
    #[error("transport: {0}")]
    Transport(#[source] reqwest::Error),
    /// The response was not what the v1 API promises (malformed JSON, a key
    /// that is not 32 bytes, an unexpected status, a 404 that is not keysrv's).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The token provider could not provide a token.
    #[error("token: {0}")]
    Token(String),
    /// The client was configured wrongly (e.g. an invalid base URL).
    #[error("configuration: {0}")]
    Config(String),
    /// Sealing or opening failed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A downloaded file's SHA-256 is not the one its reference names (both
    /// padded standard base64): the bytes are not the file that was shared.
    /// Discard them (anything already written by a streaming download too).
    #[error("the file's SHA-256 is {actual}, but its reference says {expected}: discard it")]
    HashMismatch { expected: String, actual: String },
    /// A file's size is not the one expected (the reference's, or the one
    /// registered with keysrv); for a download, `actual` counts the bytes
    /// received up to the point the difference was seen. Discard the bytes.
    #[error("the file has {actual} bytes, but {expected} were expected")]
    SizeMismatch { expected: u64, actual: u64 },
    /// Reading the data to upload, or writing a download, failed locally.
    #[error("I/O: {0}")]
    Io(#[source] std::io::Error),
}

impl Error {
    /// The server's problem details, for the errors that have them.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::NotFound(p)
            | Self::Forbidden(p)
            | Self::Unauthorized(p)
            | Self::Conflict(p)
            | Self::BadRequest(p)
            | Self::Server(p)
            | Self::RetryLater { problem: p, .. } => Some(p),
            _ => None,
        }
    }

    /// Whether repeating the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RetryLater { .. } | Self::Server(_) | Self::Transport(_))
    }

    /// The error for a non-success response: by its problem type, and by
    /// its status only for a type this version does not know.
    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let (problem, is_problem) = Problem::from_response(status, body);
        let retry = |problem: Problem| {
            let retry_after = problem.ext.retry_after.map(Duration::from_secs).or_else(|| retry_after(headers));
            Self::RetryLater { retry_after, problem }
        };
        match problem.name() {
            Some("not-found") => return Self::NotFound(problem),
            Some("no-route" | "method-not-allowed") => {
                return Self::Protocol(format!("not a route of keysrv's v1 API (is the base URL right?): {problem}"));
            }
            Some("invalid-token" | "not-an-access-token" | "no-caller-claim" | "non-canonical-caller") => {
                return Self::Unauthorized(problem);
            }
            Some("role-required" | "invalid-url" | "url-expired") => return Self::Forbidden(problem),
            Some(
                "owner-role-fixed"
                | "owner-cannot-leave"
                | "member-limit"
                | "idempotency-key-reused"
                | "file-already-uploaded"
                | "upload-in-progress",
            ) => return Self::Conflict(problem),
            Some("rate-limited" | "contended" | "busy" | "unavailable" | "body-timeout") => return retry(problem),
            Some("internal") => return Self::Server(problem),
            Some(
                "invalid-jid"
                | "body-missing"
                | "body-not-object"
                | "invalid-body"
                | "invalid-idempotency-key"
                | "too-many-members"
                | "batch-too-large"
                | "invalid-role"
                | "invalid-media-type"
                | "invalid-path"
                | "upload-length-required"
                | "upload-too-long"
                | "upload-too-short"
                | "upload-broken"
                | "upload-deadline"
                | "body-too-large"
                | "file-too-large"
                | "uploads-too-large",
            ) => return Self::BadRequest(problem),
            _ => {}
        }
        match status.as_u16() {
            400 | 413 => Self::BadRequest(problem),
            401 => Self::Unauthorized(problem),
            403 => Self::Forbidden(problem),
            // keysrv's 404s are problem documents; a bare 404 means the base
            // URL does not point at keysrv, which must not look like "no access".
            404 if is_problem => Self::NotFound(problem),
            404 => {
                Self::Protocol(format!("404 that is not a keysrv problem document (is the base URL right?): {problem}"))
            }
            409 => Self::Conflict(problem),
            429 | 502 | 503 | 504 => retry(problem),
            500..=599 => Self::Server(problem),
            _ => Self::Protocol(format!("unexpected status: {problem}")),
        }
    }

    /// The error for a non-success response of an upload or download URL:
    /// object storage (S3 answers XML), or the embedded server (problem+json).
    /// A 404 here is the file being gone, not a wrong base URL; a 403 is
    /// usually an expired URL (ask keysrv for a fresh one).
    pub(crate) fn from_storage_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let problem = match Problem::from_response(status, body) {
            (p, true) => p,
            // Never the raw body: S3's signature errors echo the canonical
            // request, security token included.
            (mut p, false) => {
                p.detail = s3_error(body).unwrap_or_default();
                p
            }
        };
        match status.as_u16() {
            400 | 411 | 413 => Self::BadRequest(problem),
            401 | 403 => Self::Forbidden(problem),
            404 => Self::NotFound(problem),
            409 | 412 => Self::Conflict(problem),
            429 | 502 | 503 | 504 => Self::RetryLater { retry_after: retry_after(headers), problem },
            500..=599 => Self::Server(problem),
            _ => Self::Protocol(format!("unexpected status from the file storage: {problem}")),
        }
    }
}

/// `Code: Message` of an S3 `<Error>` document, each cut short.
fn s3_error(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let field = |name: &str| -> Option<String> {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let len = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + len].chars().take(200).collect())
    };
    match (field("Code"), field("Message")) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (c, m) => c.or(m),
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = OffsetDateTime::parse(v, &Rfc2822).ok()?;
    let delta = at - OffsetDateTime::now_utc();
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn problem_body(status: u16) -> Vec<u8> {
        format!(r#"{{"type":"urn:keysrv:problem:x","title":"T","status":{status},"detail":"d"}}"#).into_bytes()
    }

    #[test]
    fn statuses_map_to_actionable_errors() {
        let h = HeaderMap::new();
        let e = |s: u16| Error::from_response(StatusCode::from_u16(s).unwrap(), &h, &problem_body(s));
        assert!(matches!(e(400), Error::BadRequest(p) if p.detail == "d" && p.status == 400));
        assert!(matches!(e(413), Error::BadRequest(_)));
        assert!(matches!(e(401), Error::Unauthorized(_)));
        assert!(matches!(e(403), Error::Forbidden(_)));
        assert!(matches!(e(404), Error::NotFound(_)));
        assert!(matches!(e(409), Error::Conflict(_)));
        for s in [429, 502, 503, 504] {
            assert!(matches!(e(s), Error::RetryLater { retry_after: None, .. }), "{s}");
        }
        assert!(matches!(e(500), Error::Server(_)));
        assert!(matches!(e(418), Error::Protocol(_)));
        assert!(e(503).is_retryable() && !e(404).is_retryable());
        assert_eq!(e(409).problem().unwrap().kind, "urn:keysrv:problem:x");
    }

    /// The problem type decides, whatever the status says; an unknown type
    /// falls back to the status.
    #[test]
    fn problem_types_decide() {
        let h = HeaderMap::new();
        let e = |status: u16, name: &str, extra: &str| {
            let body = format!(
                r#"{{"type":"urn:keysrv:problem:{name}","title":"T","status":{status},"detail":"prose"{extra}}}"#
            );
            Error::from_response(StatusCode::from_u16(status).unwrap(), &h, body.as_bytes())
        };
        assert!(matches!(e(404, "not-found", ""), Error::NotFound(_)));
        assert!(matches!(e(404, "no-route", ""), Error::Protocol(_)), "a wrong base URL is not \"no access\"");
        let limited = e(429, "rate-limited", r#","retry_after":42,"operation":"rotate""#);
        let Error::RetryLater { retry_after, problem } = &limited else { panic!("{limited:?}") };
        assert_eq!((*retry_after, problem.ext.operation.as_deref()), (Some(Duration::from_secs(42)), Some("rotate")));
        let full = e(409, "member-limit", r#","max_members":1024"#);
        assert!(
            matches!(&full, Error::Conflict(p) if p.ext.max_members == Some(1024) && p.name() == Some("member-limit"))
        );
        let role = e(403, "role-required", r#","required_role":"owner""#);
        assert!(matches!(&role, Error::Forbidden(p) if p.ext.required_role.as_deref() == Some("owner")));
        assert!(matches!(e(401, "non-canonical-caller", ""), Error::Unauthorized(_)));
        assert!(matches!(e(408, "upload-deadline", ""), Error::BadRequest(_)));
        assert!(matches!(e(503, "contended", r#","retry_after":1"#), Error::RetryLater { .. }));
        assert!(matches!(e(409, "some-future-conflict", ""), Error::Conflict(_)), "unknown types: by status");
    }

    #[test]
    fn a_404_that_is_not_keysrvs_is_a_protocol_error() {
        let e = Error::from_response(StatusCode::NOT_FOUND, &HeaderMap::new(), br#"{"message":"Not Found"}"#);
        assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    }

    #[test]
    fn storage_errors_keep_only_what_is_safe_to_show() {
        let h = HeaderMap::new();
        let xml = b"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request \
                    signature we calculated does not match</Message><CanonicalRequest>PUT /b/k \
                    X-Amz-Security-Token=SECRET</CanonicalRequest></Error>";
        let e = Error::from_storage_response(StatusCode::FORBIDDEN, &h, xml);
        let Error::Forbidden(p) = &e else { panic!("{e:?}") };
        assert_eq!(p.detail, "SignatureDoesNotMatch: The request signature we calculated does not match");
        assert!(!e.to_string().contains("SECRET"), "{e}");
        let e = Error::from_storage_response(StatusCode::NOT_FOUND, &h, b"<html>gone</html>");
        assert!(matches!(&e, Error::NotFound(p) if p.detail.is_empty()), "{e:?}");
        let e = Error::from_storage_response(StatusCode::NOT_FOUND, &h, &problem_body(404));
        assert!(matches!(&e, Error::NotFound(p) if p.detail == "d"), "{e:?}");
        assert!(matches!(
            Error::from_storage_response(StatusCode::SERVICE_UNAVAILABLE, &h, b""),
            Error::RetryLater { .. }
        ));
        assert!(matches!(Error::from_storage_response(StatusCode::PAYLOAD_TOO_LARGE, &h, b""), Error::BadRequest(_)));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
