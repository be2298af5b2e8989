//! # keysrv-ffi: the keysrv SDK for Swift, Kotlin, Java and Python
//!
//! [`keysrv-client`](keysrv_client) exported through UniFFI (proc macros):
//! one audited Rust core (JID normalization, the XML envelope, the AAD, the
//! chat rules of docs/PROTOCOL.md) instead of one re-implementation per
//! platform. `make bindings` generates the Kotlin, Swift, Python and Java
//! sources from the built library; docs/SDK.md shows how apps use them.
//!
//! - [`KeysrvClient`]: conversations, members, keys, opening received
//!   stanzas (live, carbons, offline, archive, rooms) and files. Async
//!   methods run on the SDK's own Tokio runtime.
//! - [`ConversationKey`]: a key held inside the SDK; seals messages.
//!   [`Sealer`] and [`Receiver`] bind a chat (sender, recipient) or a
//!   receiving context once, so that per message only the content or the
//!   stanza crosses the FFI.
//! - [`AccessTokenProvider`], [`KeyCache`]: implemented by the app (token
//!   refresh on 401; keys kept in the Keychain / Keystore).
//! - [`KeysrvError`]: one error type whose variants say what to do.

mod cache;
mod client;
mod error;
mod types;

pub use cache::{KeyCache, StoredKey};
pub use client::{
    AccessTokenProvider, BatchKeys, ConversationKey, CreatedConversation, KeysrvClient, Receiver, Sealer,
};
pub use error::KeysrvError;
pub use types::{
    ClientConfig, Conversation, Delivery, FileDownload, FileRef, FileUpload, History, Member, MessageContent,
    MessageType, OpenOutcome, OpenedMessage, ReceiveContext, Role,
};

uniffi::setup_scaffolding!("keysrv");

/// Every child an outgoing `<message/>` needs after sealing, in order: the
/// `<encrypted>` element, the XEP-0380 marker, the fallback `<body>` and the
/// `<store xmlns='urn:xmpp:hints'/>` hint; each declares its namespace.
#[uniffi::export]
pub fn message_children(encrypted_element: String) -> String {
    keysrv_client::stanza::message_children(&encrypted_element)
}

/// The `<body>` that clients without keysrv support show.
#[uniffi::export]
pub fn fallback_body() -> String {
    keysrv_client::stanza::FALLBACK_BODY.to_owned()
}

/// The canonical bare JID of `jid` (bare or full), as keysrv and the
/// message format compare them.
#[uniffi::export]
pub fn bare_jid(jid: String) -> Result<String, KeysrvError> {
    Ok(keysrv_client::wire::bare_jid(&jid)?)
}

/// The objectid of a received stanza's `<encrypted>` element (unwrapping a
/// carbon or archive result), or `None` when it carries none: whether a
/// message is for this SDK at all.
#[uniffi::export]
pub fn encrypted_objectid(stanza: String) -> Result<Option<String>, KeysrvError> {
    let m = keysrv_client::stanza::ReceivedMessage::parse(&stanza)?;
    Ok(m.encrypted.map(|e| e.objectid))
}
