//! Counts and times every call of a `ConversationStore` (the store's round
//! trips: one per call on DynamoDB but for a crypto-shred and a conversation
//! of more than ~97 members), for the metrics.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::bare_jid::BareJid;
use crate::domain::model::{Conversation, IdempotencyRecord, Member, StoredFile, StoredKey};
use crate::ids::{ConversationId, FileId, ObjectId, StorageKey};
use crate::metrics::METRICS;
use crate::ports::{BackendError, ConversationStore, ConversationUpdate, NewConversation, WriteOutcome};

pub struct Instrumented(pub Arc<dyn ConversationStore>);

async fn timed<T>(call: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let out = call.await;
    METRICS.store_call(start.elapsed().as_micros() as u64);
    out
}

#[async_trait]
impl ConversationStore for Instrumented {
    async fn create(&self, new: NewConversation) -> Result<WriteOutcome, BackendError> {
        timed(self.0.create(new)).await
    }

    async fn update(&self, update: ConversationUpdate) -> Result<WriteOutcome, BackendError> {
        timed(self.0.update(update)).await
    }

    async fn mark_deleting(&self, id: &ConversationId) -> Result<(), BackendError> {
        timed(self.0.mark_deleting(id)).await
    }

    async fn delete(&self, id: &ConversationId) -> Result<bool, BackendError> {
        timed(self.0.delete(id)).await
    }

    async fn conversation_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<Option<(Conversation, Option<Member>)>, BackendError> {
        timed(self.0.conversation_for(id, jid)).await
    }

    async fn conversation_with_members(
        &self,
        id: &ConversationId,
    ) -> Result<Option<(Conversation, Vec<Member>)>, BackendError> {
        timed(self.0.conversation_with_members(id)).await
    }

    async fn current_key_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError> {
        timed(self.0.current_key_for(id, jid)).await
    }

    async fn key_for(
        &self,
        objectid: &ObjectId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError> {
        timed(self.0.key_for(objectid, jid)).await
    }

    async fn keys_for(
        &self,
        objectids: &[ObjectId],
        jid: &BareJid,
    ) -> Result<(Vec<StoredKey>, Vec<(ConversationId, Member)>), BackendError> {
        timed(self.0.keys_for(objectids, jid)).await
    }

    async fn idempotency_record(&self, caller: &BareJid, key: &str) -> Result<Option<IdempotencyRecord>, BackendError> {
        timed(self.0.idempotency_record(caller, key)).await
    }

    async fn add_file(&self, file: StoredFile, uploader: &BareJid) -> Result<WriteOutcome, BackendError> {
        timed(self.0.add_file(file, uploader)).await
    }

    async fn file_for(
        &self,
        file_id: &FileId,
        jid: &BareJid,
    ) -> Result<(Option<StoredFile>, Option<Member>), BackendError> {
        timed(self.0.file_for(file_id, jid)).await
    }

    async fn file(&self, file_id: &FileId) -> Result<Option<StoredFile>, BackendError> {
        timed(self.0.file(file_id)).await
    }

    async fn files_of(&self, id: &ConversationId) -> Result<Vec<StoredFile>, BackendError> {
        timed(self.0.files_of(id)).await
    }

    async fn delete_file(&self, file: &StoredFile) -> Result<bool, BackendError> {
        timed(self.0.delete_file(file)).await
    }

    async fn registered_storage_keys(&self, keys: &[StorageKey]) -> Result<HashSet<StorageKey>, BackendError> {
        timed(self.0.registered_storage_keys(keys)).await
    }

    async fn deletion_pending(&self, id: &ConversationId, owner: &BareJid) -> Result<bool, BackendError> {
        timed(self.0.deletion_pending(id, owner)).await
    }

    async fn warm_up(&self) {
        self.0.warm_up().await
    }
}
