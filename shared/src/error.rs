//! Why a request was refused or failed. Every case is a variant with the
//! facts a client can act on as typed fields; `http::problem` is the one
//! place that turns each into its HTTP status and its stable, documented
//! problem type (docs/openapi.yaml lists them all).

use keysrv_jid::JidError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed or exceeds a limit; nothing was written.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// 401: missing, malformed or unacceptable credentials.
    #[error("{0}")]
    Unauthorized(#[from] Unauthorized),
    /// 403: the caller may see the thing, but its role does not allow this.
    #[error("{0}")]
    NotAllowed(#[from] NotAllowed),
    /// 403: a file URL that is not valid for this request.
    #[error("{0}")]
    UrlRefused(#[from] UrlRefused),
    /// 404: unknown, or not visible to the caller — deliberately the same.
    #[error("no such resource, or it is not visible to you")]
    NotFound,
    /// 404: no route has this path.
    #[error("no such route")]
    NoRoute,
    /// 405: the path exists, not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 408: a request body (or an upload) did not arrive in time.
    #[error("{0}")]
    Timeout(#[from] Timeout),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(#[from] Conflict),
    /// 413: too large.
    #[error("{0}")]
    TooLarge(#[from] TooLarge),
    /// 429: the caller used its quota of this operation; `retry_after_secs`.
    #[error("too many {operation} requests; retry in {retry_after_secs} s")]
    RateLimited { operation: &'static str, retry_after_secs: u32 },
    /// 503: too many changes raced on one conversation; retry.
    #[error("the conversation is changing too fast; retry")]
    Contended,
    /// 503: every connection is busy (keysrv server).
    #[error("every connection is busy; retry shortly")]
    Busy,
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// 400: what is wrong with the input. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// `input` is echoed only while it is short.
    #[error("invalid JID{}: {reason}", input.as_ref().map(|i| format!(" {i:?}")).unwrap_or_default())]
    Jid { input: Option<String>, reason: JidError },
    #[error("a JSON request body is required")]
    BodyMissing,
    #[error("the request body must be a JSON object")]
    BodyNotObject,
    /// The JSON decoder's message (position and expected field).
    #[error("invalid request body: {0}")]
    Body(String),
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
    IdempotencyKey,
    #[error("a conversation has at most {max_members} members, owner included")]
    TooManyMembers { max_members: usize },
    #[error("at most {max_batch} objectids per batch")]
    BatchTooLarge { max_batch: usize },
    #[error("role must be \"member\" or \"admin\"")]
    Role,
    #[error(
        "content_type must be a media type such as \"image/png\" (type/subtype, optional ; parameters, at most \
         255 bytes)"
    )]
    MediaType,
    #[error("path parameters must be valid percent-encoded UTF-8")]
    PathParameter,
    #[error("an upload needs the Content-Length it was issued for")]
    UploadLength,
    #[error("the body is longer than the {expected} bytes announced")]
    UploadTooLong { expected: u64 },
    #[error("the body ended after {received} of the {expected} bytes announced")]
    UploadTooShort { received: u64, expected: u64 },
    #[error("reading the upload: {0}")]
    UploadBody(String),
}

/// 401: why the credentials were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Unauthorized {
    /// The token's own problem (missing, malformed, expired, signed by
    /// another key…), as the verifier words it.
    #[error("{0}")]
    Token(String),
    #[error("an access token is required (token_use must be \"access\")")]
    NotAccessToken,
    #[error("the token has no {claim:?} claim")]
    NoCallerClaim { claim: String },
    #[error(
        "the token's {claim:?} claim must be a bare JID in canonical form (lower case, A-label domain, no \
         trailing dot, no invisible characters): {reason}"
    )]
    NonCanonical { claim: String, reason: JidError },
}

/// 403: what the caller's role does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    #[error("only the owner and admins manage members")]
    ManageMembers,
    #[error("only the owner demotes admins")]
    DemoteAdmin,
    #[error("only the owner grants admin")]
    GrantAdmin,
    #[error("only the owner and admins remove other members")]
    RemoveOthers,
    #[error("only the owner removes admins")]
    RemoveAdmin,
    #[error("only the owner deletes a conversation")]
    DeleteConversation,
    #[error("only the uploader, the owner and admins delete a file")]
    DeleteFile,
}

/// 403: why a file URL was refused (the same answer for every tampering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error(
        "this URL is not valid for this request: the URL, the method and (for uploads) Content-Length and \
         Content-Type must be exactly as issued"
    )]
    Invalid,
    #[error("this URL has expired; ask keysrv for a new one")]
    Expired,
}

/// 408: what did not arrive in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Timeout {
    #[error("the request body did not arrive in time")]
    Body,
    #[error("the upload did not finish by its URL's expiry plus {grace_secs} s; ask keysrv for a new URL")]
    Upload { grace_secs: u64 },
}

/// 409: what the request conflicts with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("the owner's role cannot be changed")]
    OwnerRole,
    #[error("the owner cannot be removed; delete the conversation instead")]
    OwnerRemoval,
    #[error("the conversation already has the maximum of {max_members} members")]
    MemberLimit { max_members: usize },
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("this file has already been uploaded")]
    FileUploaded,
    #[error("an upload of this file is already in progress")]
    UploadInProgress,
}

/// 413: what was too large, and the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TooLarge {
    #[error("request bodies are limited to {max_bytes} bytes")]
    Body { max_bytes: usize },
    #[error("files are limited to {max_bytes} bytes")]
    File { max_bytes: u64 },
    #[error("uploads in progress are limited to {max_bytes} bytes in all")]
    UploadsInFlight { max_bytes: u64 },
}

/// A user's JID from a request, as a 400 that says why.
impl Invalid {
    pub fn jid(input: &str, reason: JidError) -> Self {
        let input = (input.len() <= keysrv_jid::MAX_LEN).then(|| input.to_owned());
        Invalid::Jid { input, reason }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Failures of a backend, as the domain needs to tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Temporarily unavailable or throttled: the client should retry later.
    #[error("backend unavailable: {reason}")]
    Unavailable { reason: String, retry_after_secs: u32 },
    /// A wrapped key did not unwrap under its context: tampering or a row
    /// copied between contexts. Never retried.
    #[error("wrapped key failed integrity check")]
    Integrity,
    #[error("backend failure: {0}")]
    Internal(String),
}
