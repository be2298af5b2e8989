//! The one error type of the SDK: each variant says what the app can do.

use keysrv_client::wire::WireError;
use keysrv_client::{Error, Problem};

/// What went wrong, in the terms an app acts on. Branch on the variant (and
/// `problem_type` where there is one: keysrv's stable problem type, e.g.
/// `rate-limited`); `detail` is for logs and people, never for branching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum KeysrvError {
    /// keysrv refused the access token (401) even after one
    /// `AccessTokenProvider.refresh()`: sign the user in again.
    #[error("unauthorized ({problem_type}): {detail}")]
    Unauthorized { problem_type: String, detail: String },
    /// The app's `AccessTokenProvider.token()` failed (or threw).
    #[error("no access token: {detail}")]
    TokenUnavailable { detail: String },
    /// 404: unknown **or not visible to this user** (keysrv answers both
    /// alike on purpose). For a key: the message is unavailable (never
    /// allowed, the user was removed, or the conversation was deleted).
    #[error("not found ({problem_type}): {detail}")]
    NotFound { problem_type: String, detail: String },
    /// 403: the user is a member but its role does not allow this
    /// (`required_role`: `admin` or `owner`), or a file URL was refused.
    #[error("forbidden ({problem_type}): {detail}")]
    Forbidden { problem_type: String, detail: String, required_role: Option<String> },
    /// 409: conflicts with the conversation's state (the owner's role, a
    /// full conversation, an Idempotency-Key reused): re-read the state.
    #[error("conflict ({problem_type}): {detail}")]
    Conflict { problem_type: String, detail: String },
    /// Transient (429, 502, 503, 504): retry after `retry_after_secs` (or a
    /// backoff of your own); repeat a create or rotate with the same
    /// idempotency key.
    #[error("retry later ({problem_type}, after {retry_after_secs:?} s): {detail}")]
    RetryLater { problem_type: String, detail: String, retry_after_secs: Option<u64> },
    /// The request did not complete (connection, TLS, timeout): retry; a
    /// create or rotate with the same idempotency key.
    #[error("network: {detail}")]
    Network { detail: String },
    /// keysrv failed (500): may be retried; report it if it persists.
    #[error("server error ({problem_type}): {detail}")]
    Server { problem_type: String, detail: String },
    /// keysrv refused the request as malformed (400, 413): fix the input
    /// (`problem_type` says which rule, e.g. `invalid-jid`, `file-too-large`).
    #[error("bad request ({problem_type}): {detail}")]
    BadRequest { problem_type: String, detail: String },
    /// The app passed something unusable, found before any request: an
    /// invalid JID, content that cannot be sealed, a stanza without an
    /// `<encrypted>` element or without what is needed to tell its sender.
    /// `kind` names the rule (`invalid-jid`, `invalid-content`,
    /// `missing-context`, …).
    #[error("invalid input ({kind}): {detail}")]
    InvalidInput { kind: String, detail: String },
    /// The message would be larger than a stanza may be: send less, or the
    /// text as a file.
    #[error("the message would be {bytes} bytes, over the limit of {max}")]
    TooLarge { bytes: u64, max: u64 },
    /// This device sealed the most messages one key allows: rotate.
    #[error("this key has sealed its maximum number of messages: rotate")]
    KeyExhausted,
    /// The message or file is not authentic or not intact: tampered with,
    /// sealed for another sender or recipient, malformed, or a downloaded
    /// file whose size or SHA-256 differs from its reference. Show "cannot
    /// be decrypted" and discard any bytes. `kind`: `decrypt`, `malformed`,
    /// `invalid-envelope`, `envelope-mismatch`, `sha256-mismatch`,
    /// `size-mismatch`, …
    #[error("integrity failure ({kind}): {detail}")]
    IntegrityFailure { kind: String, detail: String },
    /// The message opened but breaks a rule of the chat (docs/PROTOCOL.md 5):
    /// its sender is not a member of the key's conversation, the
    /// conversation is not this chat's, or a carbon or archive result came
    /// from someone else. Do not show it as the sender's message. `kind`:
    /// `sender-not-member`, `conversation-mismatch`, `untrusted-wrapper`.
    #[error("refused ({kind}): {detail}")]
    Refused { kind: String, detail: String },
    /// Reading or writing a local file failed.
    #[error("I/O: {detail}")]
    Io { detail: String },
    /// keysrv's answer was not what the v1 API promises (or the base URL
    /// does not point at keysrv): check the configuration, update the app.
    #[error("protocol: {detail}")]
    Protocol { detail: String },
    /// The client configuration is invalid (e.g. the base URL).
    #[error("configuration: {detail}")]
    Config { detail: String },
    /// A bug or an unexpected failure (e.g. a callback of the app threw an
    /// error the SDK does not know).
    #[error("internal: {detail}")]
    Internal { detail: String },
}

fn problem_type(p: &Problem) -> String {
    p.name().unwrap_or(&p.kind).to_owned()
}

impl From<WireError> for KeysrvError {
    fn from(e: WireError) -> Self {
        let kind = e.kind().to_owned();
        let detail = e.to_string();
        match e {
            WireError::KeyExhausted => Self::KeyExhausted,
            WireError::TooLarge { bytes, max } => Self::TooLarge { bytes: bytes as u64, max: max as u64 },
            WireError::Random => Self::Internal { detail },
            WireError::InvalidJid(_)
            | WireError::InvalidObjectId(_)
            | WireError::InvalidKey(_)
            | WireError::InvalidContent(_)
            | WireError::MissingContext(_) => Self::InvalidInput { kind, detail },
            WireError::SenderNotMember { .. } | WireError::ConversationMismatch(_) | WireError::UntrustedWrapper(_) => {
                Self::Refused { kind, detail }
            }
            // Decrypt, Malformed, UnsupportedVersion, ObjectIdMismatch,
            // InvalidEnvelope, EnvelopeMismatch, and whatever a later
            // version adds: the message does not open.
            _ => Self::IntegrityFailure { kind, detail },
        }
    }
}

impl From<Error> for KeysrvError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(p) => Self::NotFound { problem_type: problem_type(&p), detail: p.to_string() },
            Error::Forbidden(p) => Self::Forbidden {
                problem_type: problem_type(&p),
                detail: p.to_string(),
                required_role: p.ext.required_role.clone(),
            },
            Error::Unauthorized(p) => Self::Unauthorized { problem_type: problem_type(&p), detail: p.to_string() },
            Error::Conflict(p) => Self::Conflict { problem_type: problem_type(&p), detail: p.to_string() },
            Error::RetryLater { retry_after, problem } => Self::RetryLater {
                problem_type: problem_type(&problem),
                detail: problem.to_string(),
                retry_after_secs: retry_after.map(|d| d.as_secs()),
            },
            Error::BadRequest(p) => Self::BadRequest { problem_type: problem_type(&p), detail: p.to_string() },
            Error::Server(p) => Self::Server { problem_type: problem_type(&p), detail: p.to_string() },
            // Never the URL: an upload or download URL is a capability.
            Error::Transport(e) => Self::Network { detail: e.without_url().to_string() },
            Error::Protocol(detail) => Self::Protocol { detail },
            Error::Token(detail) => Self::TokenUnavailable { detail },
            Error::Config(detail) => Self::Config { detail },
            Error::Wire(w) => w.into(),
            e @ Error::HashMismatch { .. } => {
                Self::IntegrityFailure { kind: "sha256-mismatch".into(), detail: e.to_string() }
            }
            e @ Error::SizeMismatch { .. } => {
                Self::IntegrityFailure { kind: "size-mismatch".into(), detail: e.to_string() }
            }
            Error::Io(e) => Self::Io { detail: e.to_string() },
            other => Self::Internal { detail: other.to_string() },
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for KeysrvError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Internal { detail: format!("a callback of the app failed: {}", e.reason) }
    }
}

impl From<std::io::Error> for KeysrvError {
    fn from(e: std::io::Error) -> Self {
        Self::Io { detail: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_errors_map_to_what_the_app_does() {
        assert_eq!(KeysrvError::from(WireError::KeyExhausted), KeysrvError::KeyExhausted);
        assert!(matches!(
            KeysrvError::from(WireError::TooLarge { bytes: 70_000, max: 60_000 }),
            KeysrvError::TooLarge { bytes: 70_000, max: 60_000 }
        ));
        assert!(
            matches!(KeysrvError::from(WireError::Decrypt), KeysrvError::IntegrityFailure { kind, .. } if kind == "decrypt")
        );
        assert!(matches!(
            KeysrvError::from(WireError::InvalidJid("x".into())),
            KeysrvError::InvalidInput { kind, .. } if kind == "invalid-jid"
        ));
        assert!(matches!(
            KeysrvError::from(WireError::ConversationMismatch("x".into())),
            KeysrvError::Refused { kind, .. } if kind == "conversation-mismatch"
        ));
        assert!(matches!(KeysrvError::from(WireError::Random), KeysrvError::Internal { .. }));
    }

    #[test]
    fn client_errors_keep_the_problem_type() {
        let p = Problem {
            kind: "urn:keysrv:problem:rate-limited".into(),
            title: "Too Many Requests".into(),
            status: 429,
            detail: "slow down".into(),
            ..Problem::default()
        };
        let e =
            KeysrvError::from(Error::RetryLater { retry_after: Some(std::time::Duration::from_secs(7)), problem: p });
        assert!(
            matches!(e, KeysrvError::RetryLater { problem_type, retry_after_secs: Some(7), .. } if problem_type == "rate-limited")
        );
        let e = KeysrvError::from(Error::SizeMismatch { expected: 1, actual: 2 });
        assert!(matches!(e, KeysrvError::IntegrityFailure { kind, .. } if kind == "size-mismatch"));
        let e = KeysrvError::from(Error::Token("no".into()));
        assert_eq!(e, KeysrvError::TokenUnavailable { detail: "no".into() });
    }
}
