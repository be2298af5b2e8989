//! The wire format's vocabulary: its constants, identifiers and errors —
//! what the envelope, stanza and chat rules share with sealing and opening,
//! kept below all of them so the modules read bottom-up.

/// The namespace (and element name `encrypted`) of the message element.
pub const NS: &str = "jabber:encrypted";
/// The first payload byte: AES-256-GCM, 96-bit nonce, 128-bit tag.
pub const VERSION_AES_256_GCM: u8 = 0x01;
/// The AAD's leading label for version 1.
pub const AAD_LABEL: &str = "jabber:encrypted:1";
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// The shortest payload that can open: version, nonce and tag.
pub const MIN_PAYLOAD_LEN: usize = 1 + NONCE_LEN + TAG_LEN;
/// The longest objectid (as in the API's schema).
pub const MAX_OBJECTID_LEN: usize = 64;
/// The largest `<encrypted>` element `seal` produces (bytes). With the
/// other children of the message and its `to` and `id` it stays within
/// [`crate::stanza::MAX_STANZA_BYTES`], which leaves room below the 64 KiB
/// stanza limit common among XMPP servers for what servers add on delivery
/// (`from`, stanza ids, delay stamps, carbon and archive wrappers). See
/// `docs/PROTOCOL.md` 9.9.
pub const MAX_ELEMENT_BYTES: usize = 56_000;
/// The bytes of `<encrypted xmlns='jabber:encrypted' objectid=''></encrypted>`
/// around the objectid and the base64 text.
const ELEMENT_OVERHEAD: usize = 60;

/// The length in bytes of the canonical `<encrypted>` element for an
/// objectid of `objectid_len` bytes (needing no escaping) and an envelope
/// of `envelope_len` bytes: 60 + objectid + 4⌈(29 + envelope)/3⌉.
pub fn element_len(objectid_len: usize, envelope_len: usize) -> usize {
    ELEMENT_OVERHEAD + objectid_len + (MIN_PAYLOAD_LEN + envelope_len).div_ceil(3) * 4
}

/// Why a message could not be sealed or opened.
///
/// `Decrypt` deliberately covers every authentication failure (wrong key,
/// objectid, sender or recipient; any tampering): they are indistinguishable
/// by design.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("invalid JID {0:?}")]
    InvalidJid(String),
    #[error("invalid objectid: {0}")]
    InvalidObjectId(String),
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("content cannot be sealed: {0}")]
    InvalidContent(String),
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("this device has sealed the maximum number of messages under this key: rotate")]
    KeyExhausted,
    #[error("malformed <encrypted> element: {0}")]
    Malformed(String),
    #[error("unsupported version/algorithm byte 0x{0:02x}")]
    UnsupportedVersion(u8),
    #[error("the element names objectid {found:?}, not {expected:?}")]
    ObjectIdMismatch { expected: String, found: String },
    #[error("the message does not open with this key, objectid, sender and recipient")]
    Decrypt,
    #[error("the decrypted payload is not a valid envelope: {0}")]
    InvalidEnvelope(String),
    #[error("the envelope's <{0}> does not match the stanza")]
    EnvelopeMismatch(&'static str),
    #[error("cannot tell the message's sender or recipient: {0}")]
    MissingContext(String),
    /// The message would be larger than a stanza may be (`docs/PROTOCOL.md`
    /// 9.9): send less (a long text as a file).
    #[error("the message would be {bytes} bytes, over the limit of {max}: send less, or a file")]
    TooLarge { bytes: usize, max: usize },
    /// The sender is not a member of the conversation of the key the message
    /// is sealed under: someone holding that key claims to be someone who is
    /// not in it (or was removed since). Refused.
    #[error("{sender} is not a member of conversation {conversation_id}, whose key sealed the message")]
    SenderNotMember { sender: String, conversation_id: String },
    /// The key's conversation is not the one the chat uses: a one-to-one
    /// message under a conversation that is not exactly its two parties, or
    /// a room message under another conversation than the room's. Refused
    /// (replying under it would reach other people than the chat shows).
    #[error("the conversation does not belong to this chat: {0}")]
    ConversationMismatch(String),
    /// A carbon or archive result that did not come from where it must (the
    /// account itself, or the room queried), or answers no query of ours.
    #[error("untrusted wrapper: {0}")]
    UntrustedWrapper(String),
}

impl WireError {
    /// A stable name for the kind of error (the `error` field of the negative
    /// test vectors).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidJid(_) => "invalid-jid",
            Self::InvalidObjectId(_) => "invalid-objectid",
            Self::InvalidKey(_) => "invalid-key",
            Self::InvalidContent(_) => "invalid-content",
            Self::Random => "random",
            Self::KeyExhausted => "key-exhausted",
            Self::Malformed(_) => "malformed",
            Self::UnsupportedVersion(_) => "unsupported-version",
            Self::ObjectIdMismatch { .. } => "objectid-mismatch",
            Self::Decrypt => "decrypt",
            Self::InvalidEnvelope(_) => "invalid-envelope",
            Self::EnvelopeMismatch(_) => "envelope-mismatch",
            Self::MissingContext(_) => "missing-context",
            Self::TooLarge { .. } => "too-large",
            Self::SenderNotMember { .. } => "sender-not-member",
            Self::ConversationMismatch(_) => "conversation-mismatch",
            Self::UntrustedWrapper(_) => "untrusted-wrapper",
        }
    }
}

/// The bare JID of `jid` (bare or full) in the canonical form keysrv and
/// the AAD use (`keysrv-jid`, the one normalization the server uses too):
/// localpart Nodeprep'd, domain as A-labels without a trailing dot,
/// resource removed; invisible characters refused.
pub fn bare_jid(jid: &str) -> Result<String, WireError> {
    keysrv_jid::BareJid::bare_of(jid)
        .map(keysrv_jid::BareJid::into_string)
        .map_err(|_| WireError::InvalidJid(jid.to_owned()))
}

pub(crate) fn check_objectid(objectid: &str) -> Result<(), String> {
    if objectid.is_empty() || objectid.len() > MAX_OBJECTID_LEN {
        return Err(format!("{} bytes; 1 to {MAX_OBJECTID_LEN} are allowed", objectid.len()));
    }
    if !objectid.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("only visible ASCII characters are allowed".into());
    }
    Ok(())
}

/// Whether `s` can be an objectid (1 to 64 visible ASCII characters).
pub(crate) fn is_objectid(s: &str) -> bool {
    check_objectid(s).is_ok()
}

/// The additional authenticated data for a message (JIDs already bare and
/// normalized).
pub fn aad(objectid: &str, sender: &str, recipient: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + objectid.len() + sender.len() + recipient.len() + 3);
    for (i, part) in [AAD_LABEL, objectid, sender, recipient].iter().enumerate() {
        if i > 0 {
            aad.push(0);
        }
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}
