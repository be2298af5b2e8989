//! The records and enums that cross the FFI, and their conversions.
//!
//! Only field-less enums cross it: Java 17 (uniffi-bindgen-java over JNA)
//! cannot compile the record patterns a data-carrying enum needs.

use std::collections::HashMap;
use std::time::SystemTime;

use keysrv_client::stanza::{Delivery as WireDelivery, MessageType as WireMessageType};
use keysrv_client::{Content, FileDownload as WireDownload, FileRef as WireFileRef, FileUpload as WireUpload};

/// Which keys a member may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum History {
    /// Every key of the conversation: new members read the history.
    Shared,
    /// Only keys created after the member joined.
    SinceJoin,
    /// A value this SDK does not know (from a newer server).
    Unknown,
}

impl From<History> for keysrv_client::History {
    fn from(h: History) -> Self {
        match h {
            History::Shared => Self::Shared,
            History::SinceJoin => Self::SinceJoin,
            History::Unknown => Self::Unknown,
        }
    }
}

impl From<keysrv_client::History> for History {
    fn from(h: keysrv_client::History) -> Self {
        match h {
            keysrv_client::History::Shared => Self::Shared,
            keysrv_client::History::SinceJoin => Self::SinceJoin,
            keysrv_client::History::Unknown => Self::Unknown,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    Owner,
    Admin,
    Member,
    /// A value this SDK does not know (from a newer server).
    Unknown,
}

impl From<Role> for keysrv_client::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => Self::Owner,
            Role::Admin => Self::Admin,
            Role::Member => Self::Member,
            Role::Unknown => Self::Unknown,
        }
    }
}

impl From<keysrv_client::Role> for Role {
    fn from(r: keysrv_client::Role) -> Self {
        match r {
            keysrv_client::Role::Owner => Self::Owner,
            keysrv_client::Role::Admin => Self::Admin,
            keysrv_client::Role::Member => Self::Member,
            keysrv_client::Role::Unknown => Self::Unknown,
        }
    }
}

/// The `type` of an outgoing `<message/>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum MessageType {
    /// One-to-one.
    Chat,
    /// To a multi-user chat room.
    Groupchat,
    Normal,
}

impl From<MessageType> for WireMessageType {
    fn from(t: MessageType) -> Self {
        match t {
            MessageType::Chat => Self::Chat,
            MessageType::Groupchat => Self::GroupChat,
            MessageType::Normal => Self::Normal,
        }
    }
}

/// How a received message reached this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Delivery {
    /// Directly: live, or pushed from offline storage.
    Direct,
    /// A carbon (XEP-0280) of a message another device of this account sent.
    CarbonSent,
    /// A carbon of a message another device of this account received.
    CarbonReceived,
    /// A result of an archive query (XEP-0313).
    Archived,
}

impl From<&WireDelivery> for Delivery {
    fn from(d: &WireDelivery) -> Self {
        match d {
            WireDelivery::Direct => Self::Direct,
            WireDelivery::CarbonSent { .. } => Self::CarbonSent,
            WireDelivery::CarbonReceived { .. } => Self::CarbonReceived,
            WireDelivery::Archived { .. } => Self::Archived,
        }
    }
}

/// Where the SDK may reach keysrv, and its limits.
#[derive(Clone, Debug, uniffi::Record)]
pub struct ClientConfig {
    /// keysrv's base URL, e.g. `https://keys.example.org` or an API Gateway
    /// stage URL.
    pub base_url: String,
    /// Timeout of each API request, and the longest a download may stall.
    #[uniffi(default = 30)]
    pub timeout_secs: u64,
    /// Timeout of a whole file upload or download.
    #[uniffi(default = 3600)]
    pub transfer_timeout_secs: u64,
    /// Keys the built-in in-memory cache holds (least recently used go
    /// first; 0 turns it off). Not used with an app-provided `KeyCache`.
    #[uniffi(default = 4096)]
    pub key_cache_entries: u32,
    /// How long a cached key is used before it is fetched again, so that a
    /// removal from a conversation reaches this device (0: until evicted).
    /// Applies to an app-provided `KeyCache` too (by `StoredKey.cached_at`).
    #[uniffi(default = 900)]
    pub key_cache_ttl_secs: u64,
}

/// A member of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Member {
    /// Bare JID, canonical form.
    pub jid: String,
    pub role: Role,
    pub joined_at: SystemTime,
}

impl From<keysrv_client::Member> for Member {
    fn from(m: keysrv_client::Member) -> Self {
        Self { jid: m.jid, role: m.role.into(), joined_at: m.joined_at.into() }
    }
}

/// A conversation as keysrv shows it to a member.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Conversation {
    pub conversation_id: String,
    pub owner: String,
    pub history: History,
    /// Every member, the owner included.
    pub members: Vec<Member>,
    pub current_objectid: String,
    pub created_at: SystemTime,
}

impl From<keysrv_client::Conversation> for Conversation {
    fn from(c: keysrv_client::Conversation) -> Self {
        Self {
            conversation_id: c.conversation_id,
            owner: c.owner,
            history: c.history.into(),
            members: c.members.into_iter().map(Member::from).collect(),
            current_objectid: c.current_objectid,
            created_at: c.created_at.into(),
        }
    }
}

/// A reference to a file shared through keysrv; it travels only inside a
/// sealed message.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct FileRef {
    pub id: String,
    /// The file name to show and to save under (never a path).
    #[uniffi(default = None)]
    pub name: Option<String>,
    /// The media type, e.g. `image/jpeg`.
    #[uniffi(default = None)]
    pub media_type: Option<String>,
    #[uniffi(default = None)]
    pub size: Option<u64>,
    /// SHA-256 of the bytes, padded standard base64.
    #[uniffi(default = None)]
    pub sha256: Option<String>,
}

impl From<WireFileRef> for FileRef {
    fn from(f: WireFileRef) -> Self {
        Self { id: f.id, name: f.name, media_type: f.media_type, size: f.size, sha256: f.sha256 }
    }
}

impl From<FileRef> for WireFileRef {
    fn from(f: FileRef) -> Self {
        Self { id: f.id, name: f.name, media_type: f.media_type, size: f.size, sha256: f.sha256 }
    }
}

/// What a message carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct MessageContent {
    /// The text (an empty body is no body).
    #[uniffi(default = None)]
    pub body: Option<String>,
    #[uniffi(default = [])]
    pub files: Vec<FileRef>,
    /// Other payload elements as XML text, each one element with its own
    /// `xmlns` (e.g. a XEP-0461 reply, a XEP-0085 chat state).
    #[uniffi(default = [])]
    pub extra: Vec<String>,
}

impl From<MessageContent> for Content {
    fn from(c: MessageContent) -> Self {
        Self { body: c.body, files: c.files.into_iter().map(Into::into).collect(), extra: c.extra }
    }
}

/// Where a received stanza comes from, as only the app's XMPP session
/// knows it.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct ReceiveContext {
    /// This account's JID (bare or full): carbons must come from it.
    pub own_jid: String,
    /// For archive results: the `queryid` of the query this device sent.
    /// An archive result without it, or answering another query, is
    /// refused (anyone can send a `<message/>` holding a `<result/>`).
    #[uniffi(default = None)]
    pub mam_query_id: Option<String>,
    /// For archive results: the JID the query went to (a room), or none for
    /// the account's own archive.
    #[uniffi(default = None)]
    pub mam_archive: Option<String>,
    /// For a live room message: the sender's real JID from the occupant's
    /// presence (the room must be non-anonymous). Archived room messages
    /// carry it themselves.
    #[uniffi(default = None)]
    pub occupant_real_jid: Option<String>,
}

/// A received message, opened and checked.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct OpenedMessage {
    pub body: Option<String>,
    pub files: Vec<FileRef>,
    /// Other payload elements, as canonical XML text.
    pub extra: Vec<String>,
    /// The sender's bare JID (in a room: the real JID, not the nickname).
    pub sender: String,
    /// The recipient's bare JID (the peer, or the room).
    pub recipient: String,
    /// When the sender sealed it (the sender's clock).
    pub sent_at: SystemTime,
    pub objectid: String,
    pub conversation_id: String,
    pub delivery: Delivery,
    /// `chat`, `groupchat`, `normal`, …
    pub message_type: String,
    /// The original message's `id`.
    pub stanza_id: Option<String>,
    /// The XEP-0203 delay stamp (of the archive result, else the message).
    pub delay: Option<String>,
}

/// One message of a page ([`crate::KeysrvClient::open_messages`]): opened,
/// or the reason it is not (exactly one of the two is set).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct OpenOutcome {
    pub message: Option<OpenedMessage>,
    pub error: Option<crate::KeysrvError>,
}

/// A registered file and where to PUT its bytes (for an app that uploads
/// itself, e.g. with a background URLSession).
#[derive(Clone, uniffi::Record)]
pub struct FileUpload {
    pub file_id: String,
    pub conversation_id: String,
    pub content_type: String,
    pub size: u64,
    /// `PUT` (or `POST`).
    pub method: String,
    /// A capability: whoever has it may upload until `expires_at`. Never log it.
    pub url: String,
    /// Send exactly these headers, and no `Authorization`.
    pub headers: HashMap<String, String>,
    pub expires_at: SystemTime,
}

impl From<WireUpload> for FileUpload {
    fn from(u: WireUpload) -> Self {
        Self {
            method: u.upload.method.to_string(),
            url: u.upload.url.to_string(),
            headers: headers(&u.upload.headers),
            expires_at: u.expires_at.into(),
            file_id: u.file_id,
            conversation_id: u.conversation_id,
            content_type: u.content_type,
            size: u.size,
        }
    }
}

/// A file this user may read and where to GET its bytes.
#[derive(Clone, uniffi::Record)]
pub struct FileDownload {
    pub file_id: String,
    pub conversation_id: String,
    pub content_type: String,
    pub size: u64,
    /// The bare JID of the member who registered it.
    pub uploader: String,
    pub created_at: SystemTime,
    /// A capability until `expires_at`: never log it. GET it without
    /// `Authorization`, then check size and SHA-256 against the reference.
    pub url: String,
    pub expires_at: SystemTime,
}

impl From<WireDownload> for FileDownload {
    fn from(d: WireDownload) -> Self {
        Self {
            url: d.download.url.to_string(),
            created_at: d.created_at.into(),
            expires_at: d.expires_at.into(),
            file_id: d.file_id,
            conversation_id: d.conversation_id,
            content_type: d.content_type,
            size: d.size,
            uploader: d.uploader,
        }
    }
}

fn headers(h: &http::HeaderMap) -> HashMap<String, String> {
    h.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect()
}
