//! Errors of the API client, shaped by what a caller can do about them.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::wire::WireError;

/// An RFC 9457 problem details object, as keysrv answers every error.
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
    #[serde(default)]
    pub detail: String,
}

impl Problem {
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

    /// The error for a non-success response.
    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let (problem, is_problem) = Problem::from_response(status, body);
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
            429 | 502 | 503 | 504 => Self::RetryLater { retry_after: retry_after(headers), problem },
            500..=599 => Self::Server(problem),
            _ => Self::Protocol(format!("unexpected status: {problem}")),
        }
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

    #[test]
    fn a_404_that_is_not_keysrvs_is_a_protocol_error() {
        let e = Error::from_response(StatusCode::NOT_FOUND, &HeaderMap::new(), br#"{"message":"Not Found"}"#);
        assert!(matches!(e, Error::Protocol(_)), "{e:?}");
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
