//! # keysrv-client
//!
//! The client side of keysrv, for apps (mobile included: no AWS SDK, TLS
//! with rustls, nothing written to disk):
//!
//! - [`Client`]: the v1 API (conversations, keys, members) with a bounded,
//!   time-limited in-memory key cache and batch key fetches, and errors
//!   shaped by what a caller can do ([`Error`]).
//! - [`seal`] / [`open`]: the `jabber:encrypted` wire format specified in
//!   `docs/PROTOCOL.md` — an XEP-0420 [`Envelope`] encrypted with
//!   AES-256-GCM under a conversation key, bound to its objectid, sender and
//!   recipient.
//! - [`stanza`]: the `<message/>` children to send (with the XEP-0380
//!   marker, fallback body and store hint) and the parsing of received
//!   messages, carbons and MAM results.
//! - [`chat`]: which conversation a chat may use. [`Client::open_message`]
//!   refuses a sender who is not a member of the key's conversation, a
//!   one-to-one message under a conversation that is not exactly its two
//!   parties, and a room message under another conversation than the
//!   room's; [`Client::key_for_chat`] picks the key to reply with under the
//!   same rules.
//! - Files: [`Client::upload_file`] registers a file with keysrv and uploads
//!   it to the URL keysrv grants, returning the [`FileRef`] to seal into a
//!   message; [`Client::download_file`] fetches and checks it (size and
//!   SHA-256). Streaming variants read from an `AsyncRead` and write to an
//!   `AsyncWrite`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keysrv_client::Error> {
//! use keysrv_client::{Client, Content, History, stanza};
//!
//! let romeo = Client::with_token("https://keys.example.org", "romeo's access token")?;
//! let created = romeo.create_conversation(["juliet@capulet.lit"], History::Shared, None).await?;
//! let element = created.key.seal("romeo@montague.lit", "juliet@capulet.lit", &Content::text("Hi"))?;
//! let children = stanza::message_children(&element); // put these in <message to='juliet@capulet.lit' type='chat'>
//!
//! // Juliet, on receiving the stanza:
//! let juliet = Client::with_token("https://keys.example.org", "juliet's access token")?;
//! # let received_stanza = "";
//! let message = stanza::ReceivedMessage::parse(received_stanza)?;
//! let envelope = juliet.open_message(&message).await?;
//! println!("{}", envelope.body().unwrap_or_default());
//! # Ok(()) }
//! ```

mod cache;
pub mod chat;
mod client;
pub mod envelope;
mod error;
mod files;
mod format;
pub mod key;
mod secret;
pub mod stanza;
pub mod wire;
mod xml;

pub use cache::{KeyStore, StoredKey};
pub use chat::ChatKind;
pub use client::{
    BATCH_LIMIT, BatchKeys, Client, ClientBuilder, Conversation, CreatedConversation, History, Member, Role,
    StaticToken, TokenProvider, path_segment,
};
pub use envelope::{Content, Envelope, FileRef};
pub use error::{Error, PROBLEM_PREFIX, Problem, ProblemExt};
pub use files::{FileDownload, FileUpload, TransferRequest};
pub use key::{CURRENT_KEY_MAX_AGE, Key, KeyObject, MAX_MESSAGES_PER_KEY, OutgoingKey, RotationPolicy};
#[doc(hidden)]
pub use wire::seal_with_nonce;
pub use wire::{EncryptedElement, WireError, open, open_raw, seal};

/// Re-exported so callers can name the `Zeroizing` tokens, the
/// `async_trait` attribute a [`TokenProvider`] is implemented with, and the
/// bytes [`Client::upload_file`] takes.
pub use async_trait::async_trait;
pub use bytes::Bytes;
pub use zeroize::Zeroizing;
