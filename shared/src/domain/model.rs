//! The domain's data.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::bare_jid::BareJid;
use crate::ids::{ConversationId, FileId, ObjectId, StorageKey};
use crate::media_type::MediaType;
use crate::timestamp::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Owners and admins manage membership.
    pub fn manages_members(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// Which keys of a conversation a member may read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum History {
    /// Every key of the conversation.
    #[default]
    Shared,
    /// Only keys created at or after the member joined; adding a member rotates the key.
    SinceJoin,
}

impl History {
    pub fn as_str(self) -> &'static str {
        match self {
            History::Shared => "shared",
            History::SinceJoin => "since_join",
        }
    }
}

impl FromStr for History {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shared" => Ok(History::Shared),
            "since_join" => Ok(History::SinceJoin),
            other => Err(format!("unknown history {other:?}")),
        }
    }
}

/// A conversation's own row. `seq` counts every change (rotation or
/// membership); keys and joins are stamped with it, and writes are
/// conditional on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub owner: BareJid,
    pub history: History,
    pub created_at: Timestamp,
    pub seq: u64,
    pub current_objectid: ObjectId,
    pub member_count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub jid: BareJid,
    pub role: Role,
    pub joined_at: Timestamp,
    /// The conversation's `seq` when this member joined.
    pub joined_seq: u64,
}

/// A data key wrapped by a `KeyWrapper`. `scheme` names the wrapping (and the
/// wrapping key's version) so old rows stay readable after a master key rotation.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub scheme: String,
    pub blob: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey").field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

/// A key row as stored. `history` is the conversation's (immutable) policy,
/// kept on the row so a key fetch needs only this row and one membership row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub objectid: ObjectId,
    pub conversation_id: ConversationId,
    pub seq: u64,
    pub history: History,
    pub created_at: Timestamp,
    pub wrapped: WrappedKey,
}

/// 32 bytes of plaintext key material; wiped from memory on drop and never
/// printed.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies from a slice, which must be 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self::from_bytes(arr))
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A key released to a caller.
#[derive(Clone, Debug)]
pub struct ReleasedKey {
    pub objectid: ObjectId,
    pub conversation_id: ConversationId,
    pub created_at: Timestamp,
    pub key: DataKey,
}

/// What an `Idempotency-Key` produced the first time, so a retry can be
/// answered with the same resource instead of a new one. It names the result
/// rather than storing the response, which would hold key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub caller: BareJid,
    pub key: String,
    /// SHA-256 of the operation and its canonical input.
    pub fingerprint: String,
    pub conversation_id: ConversationId,
    pub objectid: ObjectId,
    pub expires_at: Timestamp,
}

/// A conversation as members see it.
#[derive(Clone, Debug)]
pub struct ConversationView {
    pub conversation: Conversation,
    pub members: Vec<Member>,
}

/// A registered file: who uploaded what into which conversation, and where
/// its bytes are stored. `seq` is the conversation's `seq` at registration,
/// so the history rules that decide which keys a member reads decide which
/// files it reads too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub file_id: FileId,
    pub conversation_id: ConversationId,
    pub storage_key: StorageKey,
    pub uploader: BareJid,
    pub media_type: MediaType,
    pub size: u64,
    pub seq: u64,
    pub history: History,
    pub created_at: Timestamp,
}

/// A short-lived grant to upload or download a file's bytes, straight to or
/// from storage. The uploader must send exactly `headers`.
#[derive(Clone, Debug)]
pub struct FileGrant {
    pub file: StoredFile,
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: Timestamp,
}
