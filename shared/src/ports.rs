//! The ports: what the domain needs from the outside world, as traits. Each
//! backend implements them in `adapters`; the domain never sees which.
//!
//! Every method of `ConversationStore` is shaped so that a backend can answer
//! it in one round trip and apply every write atomically (one SQLite
//! transaction, one DynamoDB `TransactWriteItems`).

use async_trait::async_trait;

use crate::bare_jid::BareJid;
use crate::domain::model::{Conversation, DataKey, IdempotencyRecord, Member, StoredKey, WrappedKey};
use crate::ids::{ConversationId, ObjectId};

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

    /// Deletes the conversation, its members and every key row. Returns
    /// whether it existed.
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

    /// Whether `id` is a conversation whose crypto-shred began but did not
    /// finish (invisible to reads), owned by `owner`. Backends that delete in
    /// one transaction never leave one.
    async fn deletion_pending(&self, _id: &ConversationId, _owner: &BareJid) -> Result<bool, BackendError> {
        Ok(false)
    }

    /// Opens connections before the first request (during a Lambda
    /// container's init), so no request pays for a TLS handshake.
    async fn warm_up(&self) {}
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
