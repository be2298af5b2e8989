//! The ports: what the domain needs from the outside world, as traits. Each
//! backend implements them in `adapters`; the domain never sees which.
//!
//! Every method of `ConversationStore` is shaped so that a backend can answer
//! it in one round trip and apply every write atomically (one SQLite
//! transaction, one DynamoDB `TransactWriteItems`).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;

use crate::bare_jid::BareJid;
// Defined with the other errors (the bottom of the crate), used here.
use crate::domain::model::{Conversation, DataKey, IdempotencyRecord, Member, StoredFile, StoredKey, WrappedKey};
pub use crate::error::BackendError;
use crate::ids::{ConversationId, FileId, ObjectId, StorageKey};
use crate::media_type::MediaType;
use crate::timestamp::Timestamp;

/// The result of a conditional write.
#[derive(Debug)]
pub enum WriteOutcome {
    Applied,
    /// The conversation changed (or vanished) since it was read; nothing was written.
    Stale,
    /// The idempotency key was already used; nothing was written.
    Replayed(IdempotencyRecord),
}

/// A new conversation with its members and first key, written all or nothing.
#[derive(Debug)]
pub struct NewConversation {
    pub conversation: Conversation,
    pub members: Vec<Member>,
    pub key: StoredKey,
    pub idempotency: Option<IdempotencyRecord>,
}

/// One atomic change to a conversation, applied only if its sequence number
/// is still `expected_seq`. Every change bumps the sequence, so two racing
/// changes cannot both apply on the same state.
#[derive(Debug)]
pub struct ConversationUpdate {
    pub conversation_id: ConversationId,
    pub expected_seq: u64,
    pub new_seq: u64,
    pub member_count: u32,
    /// Becomes the current key.
    pub new_key: Option<StoredKey>,
    pub upsert_member: Option<Member>,
    pub remove_member: Option<BareJid>,
    pub idempotency: Option<IdempotencyRecord>,
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn create(&self, new: NewConversation) -> Result<WriteOutcome, BackendError>;

    async fn update(&self, update: ConversationUpdate) -> Result<WriteOutcome, BackendError>;

    /// The first step of a crypto-shred: makes the conversation invisible to
    /// every read and refuses every later write to it (no change, no new
    /// file), atomically. Its rows stay until `delete`, so an interrupted
    /// shred can be finished (`deletion_pending`). Marking a missing
    /// conversation is not an error.
    async fn mark_deleting(&self, id: &ConversationId) -> Result<(), BackendError>;

    /// Deletes the conversation, its members, every key row, every file row
    /// and every idempotency record naming it; whether it existed.
    async fn delete(&self, id: &ConversationId) -> Result<bool, BackendError>;

    /// The conversation and the given JID's membership, if any.
    async fn conversation_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<Option<(Conversation, Option<Member>)>, BackendError>;

    /// The conversation with all its members.
    async fn conversation_with_members(
        &self,
        id: &ConversationId,
    ) -> Result<Option<(Conversation, Vec<Member>)>, BackendError>;

    /// The conversation's current key and the JID's membership.
    async fn current_key_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError>;

    /// A key row and the JID's membership in the key's conversation.
    async fn key_for(
        &self,
        objectid: &ObjectId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError>;

    /// Many key rows and the JID's memberships in their conversations.
    async fn keys_for(
        &self,
        objectids: &[ObjectId],
        jid: &BareJid,
    ) -> Result<(Vec<StoredKey>, Vec<(ConversationId, Member)>), BackendError>;

    async fn idempotency_record(&self, caller: &BareJid, key: &str) -> Result<Option<IdempotencyRecord>, BackendError>;

    /// Registers a file, only if its conversation exists and `uploader` is
    /// still a member (`Stale` otherwise: removed or shredded meanwhile).
    async fn add_file(&self, file: StoredFile, uploader: &BareJid) -> Result<WriteOutcome, BackendError>;

    /// A file row and the JID's membership in the file's conversation.
    async fn file_for(
        &self,
        file_id: &FileId,
        jid: &BareJid,
    ) -> Result<(Option<StoredFile>, Option<Member>), BackendError>;

    /// A file row of a live conversation, whoever asks (the embedded file
    /// server checks that a file is still registered while it moves bytes).
    async fn file(&self, file_id: &FileId) -> Result<Option<StoredFile>, BackendError>;

    /// Every file row of a conversation, even one whose crypto-shred began.
    async fn files_of(&self, id: &ConversationId) -> Result<Vec<StoredFile>, BackendError>;

    /// Deletes a file row; whether it existed.
    async fn delete_file(&self, file: &StoredFile) -> Result<bool, BackendError>;

    /// Which of `keys` are the storage keys of file rows (the sweep deletes
    /// stored bytes that have none). The rows of a conversation whose
    /// crypto-shred began count until it finishes: the shred deletes their
    /// bytes itself.
    async fn registered_storage_keys(&self, keys: &[StorageKey]) -> Result<HashSet<StorageKey>, BackendError>;

    /// Whether `id` is a conversation whose crypto-shred began but did not
    /// finish (invisible to reads), owned by `owner`.
    async fn deletion_pending(&self, id: &ConversationId, owner: &BareJid) -> Result<bool, BackendError>;

    /// Opens connections before the first request (during a Lambda
    /// container's init), so no request pays for a TLS handshake.
    async fn warm_up(&self) {}
}

/// An operation that writes or costs a KMS call, counted per caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metered {
    CreateConversation,
    Rotate,
    MembershipChange,
    FileRegistration,
}

impl Metered {
    pub const ALL: [Metered; 4] =
        [Metered::CreateConversation, Metered::Rotate, Metered::MembershipChange, Metered::FileRegistration];

    /// The name in configuration (`KEYSRV_QUOTAS`) and in problems.
    pub fn name(self) -> &'static str {
        match self {
            Metered::CreateConversation => "create",
            Metered::Rotate => "rotate",
            Metered::MembershipChange => "members",
            Metered::FileRegistration => "files",
        }
    }
}

/// Per-caller counters of metered operations, in fixed windows.
#[async_trait]
pub trait Quotas: Send + Sync {
    /// Counts one `op` by `caller` in the window that holds now, if fewer
    /// than `limit` were counted there already. `None`: counted; `Some(s)`:
    /// refused, the window ends in `s` seconds.
    async fn take(
        &self,
        caller: &BareJid,
        op: Metered,
        limit: u32,
        window: Duration,
    ) -> Result<Option<u32>, BackendError>;
}

/// What a wrapped key is bound to: unwrapping under any other context fails.
#[derive(Clone, Copy, Debug)]
pub struct KeyContext<'a> {
    pub conversation_id: &'a ConversationId,
    pub objectid: &'a ObjectId,
}

impl KeyContext<'_> {
    /// The AAD form of the context for wrappers that do AES-GCM themselves.
    pub fn aad(&self) -> Vec<u8> {
        format!("keysrv/v1\0{}\0{}", self.conversation_id, self.objectid).into_bytes()
    }
}

/// Envelope encryption of data keys.
#[async_trait]
pub trait KeyWrapper: Send + Sync {
    /// A fresh 256-bit data key from a CSPRNG and its wrapped form.
    async fn generate(&self, ctx: KeyContext<'_>) -> Result<(DataKey, WrappedKey), BackendError>;

    async fn unwrap(&self, ctx: KeyContext<'_>, wrapped: &WrappedKey) -> Result<DataKey, BackendError>;
}

/// What an upload or download URL is for: the stored bytes and the headers
/// they travel with.
#[derive(Clone, Copy, Debug)]
pub struct FileObject<'a> {
    pub file_id: &'a FileId,
    pub storage_key: &'a StorageKey,
    pub media_type: &'a MediaType,
    pub size: u64,
}

/// A presigned request: a URL that works without the API's token, for a
/// limited time, for exactly one object (and, for uploads, exactly one
/// length, media type and encryption).
#[derive(Clone, Debug)]
pub struct PresignedRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: Timestamp,
}

/// A page of `FileStore::list_stored`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredPage {
    pub keys: Vec<StorageKey>,
    /// Pass as `after` for the next page; `None`: this was the last.
    pub next: Option<StorageKey>,
}

/// Where file bytes live. The bytes never pass through keysrv's API: the
/// store issues short-lived URLs that clients use directly.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// A PUT of exactly `object.size` bytes of `object.media_type`, valid for `ttl`.
    async fn presign_upload(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError>;

    /// A GET, valid for `ttl`.
    async fn presign_download(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError>;

    /// Deletes stored bytes; keys with nothing stored are not an error.
    async fn delete(&self, keys: &[StorageKey]) -> Result<(), BackendError>;

    /// Deletes the bytes of files whose upload URL may still be live, and
    /// makes sure no upload through such a URL stores anything afterwards
    /// (a crypto-shred must not be undone by an upload that was in flight).
    /// Stores that check registration at upload time need nothing more than
    /// `delete`.
    async fn delete_recent(&self, keys: &[StorageKey]) -> Result<(), BackendError> {
        self.delete(keys).await
    }

    /// One page of the storage keys that hold bytes, in ascending order,
    /// after `after` (for the sweep of bytes without a file row): at most
    /// `limit` keys, and where to continue (`None` at the end). Stores may
    /// leave out objects that hold no bytes (S3 tombstones).
    async fn list_stored(&self, after: Option<&StorageKey>, limit: usize) -> Result<StoredPage, BackendError>;
}
