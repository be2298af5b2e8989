//! In-process adapters for every port, simple enough to be obviously right:
//! plain maps behind one lock, so every call is atomic and the store is
//! linearizable. They are the reference the real stores are checked against
//! (the contract suite), and the fast backend of the domain's unit tests and
//! the model-based property tests.
//!
//! A test can run code at the start of any call (`Hook`), to force one
//! interleaving — an upload landing between two steps of a crypto-shred —
//! or to shuffle many.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::master_key::MasterKey;
use crate::bare_jid::BareJid;
use crate::domain::model::{Conversation, DataKey, IdempotencyRecord, Member, StoredFile, StoredKey, WrappedKey};
use crate::ids::{ConversationId, FileId, ObjectId, StorageKey, random_bytes};
use crate::ports::{
    BackendError, ConversationStore, ConversationUpdate, FileObject, FileStore, KeyContext, KeyWrapper,
    NewConversation, PresignedRequest, StoredPage, WriteOutcome,
};
use crate::timestamp::Timestamp;

/// Where a call is about to happen: the port and the method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub port: &'static str,
    pub method: &'static str,
}

/// Runs at the start of every call of an adapter that has one, before it
/// takes its lock (so the hook may call the adapters itself).
pub type Hook = Arc<dyn Fn(Call) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

async fn run_hook(hook: &Mutex<Option<Hook>>, port: &'static str, method: &'static str) {
    let hook = hook.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(hook) = hook {
        hook(Call { port, method }).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone, Debug, Default)]
struct State {
    /// Each conversation with whether its crypto-shred has begun.
    conversations: BTreeMap<ConversationId, (Conversation, bool)>,
    members: BTreeMap<(ConversationId, BareJid), Member>,
    keys: BTreeMap<ObjectId, StoredKey>,
    files: BTreeMap<FileId, StoredFile>,
    idempotency: BTreeMap<(BareJid, String), IdempotencyRecord>,
}

impl State {
    fn live(&self, id: &ConversationId) -> Option<&Conversation> {
        self.conversations.get(id).filter(|(_, deleting)| !deleting).map(|(c, _)| c)
    }

    fn member(&self, id: &ConversationId, jid: &BareJid) -> Option<Member> {
        self.live(id)?;
        self.members.get(&(id.clone(), jid.clone())).cloned()
    }

    /// Claims an idempotency key; the earlier record if it is taken.
    fn claim(&mut self, rec: &IdempotencyRecord) -> Option<IdempotencyRecord> {
        let slot = (rec.caller.clone(), rec.key.clone());
        match self.idempotency.get(&slot) {
            Some(old) if old.expires_at > Timestamp::now() => Some(old.clone()),
            _ => {
                self.idempotency.insert(slot, rec.clone());
                None
            }
        }
    }
}

/// Every row of every conversation, as plain data, for the invariant checks
/// of the tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub conversations: Vec<(Conversation, bool)>,
    pub members: Vec<(ConversationId, Member)>,
    pub keys: Vec<StoredKey>,
    pub files: Vec<StoredFile>,
    pub idempotency: Vec<IdempotencyRecord>,
}

/// The conversation store.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    hook: Mutex<Option<Hook>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_hook(&self, hook: Option<Hook>) {
        *lock(&self.hook) = hook;
    }

    pub fn snapshot(&self) -> Snapshot {
        let s = lock(&self.state);
        Snapshot {
            conversations: s.conversations.values().cloned().collect(),
            members: s.members.iter().map(|((c, _), m)| (c.clone(), m.clone())).collect(),
            keys: s.keys.values().cloned().collect(),
            files: s.files.values().cloned().collect(),
            idempotency: s.idempotency.values().cloned().collect(),
        }
    }

    async fn enter(&self, method: &'static str) -> MutexGuard<'_, State> {
        run_hook(&self.hook, "store", method).await;
        lock(&self.state)
    }
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn create(&self, new: NewConversation) -> Result<WriteOutcome, BackendError> {
        let mut s = self.enter("create").await;
        let id = new.conversation.id.clone();
        if s.conversations.contains_key(&id) {
            return Ok(WriteOutcome::Stale);
        }
        if let Some(rec) = &new.idempotency
            && let Some(old) = s.claim(rec)
        {
            return Ok(WriteOutcome::Replayed(old));
        }
        for m in new.members {
            s.members.insert((id.clone(), m.jid.clone()), m);
        }
        s.keys.insert(new.key.objectid.clone(), new.key);
        s.conversations.insert(id, (new.conversation, false));
        Ok(WriteOutcome::Applied)
    }

    async fn update(&self, u: ConversationUpdate) -> Result<WriteOutcome, BackendError> {
        let mut s = self.enter("update").await;
        let id = u.conversation_id.clone();
        if s.live(&id).is_none_or(|c| c.seq != u.expected_seq) {
            return Ok(WriteOutcome::Stale);
        }
        // Claimed first: a replay writes nothing at all.
        if let Some(rec) = &u.idempotency {
            let before = s.idempotency.clone();
            if let Some(old) = s.claim(rec) {
                s.idempotency = before;
                return Ok(WriteOutcome::Replayed(old));
            }
        }
        if let Some((c, _)) = s.conversations.get_mut(&id) {
            c.seq = u.new_seq;
            c.member_count = u.member_count;
            if let Some(k) = &u.new_key {
                c.current_objectid = k.objectid.clone();
            }
        }
        if let Some(k) = u.new_key {
            s.keys.insert(k.objectid.clone(), k);
        }
        if let Some(m) = u.upsert_member {
            let slot = (id.clone(), m.jid.clone());
            // Like the real stores: an existing member keeps its join, gets the role.
            let m = match s.members.get(&slot) {
                Some(old) => Member { role: m.role, ..old.clone() },
                None => m,
            };
            s.members.insert(slot, m);
        }
        if let Some(jid) = u.remove_member {
            s.members.remove(&(id, jid));
        }
        Ok(WriteOutcome::Applied)
    }

    async fn mark_deleting(&self, id: &ConversationId) -> Result<(), BackendError> {
        let mut s = self.enter("mark_deleting").await;
        if let Some((_, deleting)) = s.conversations.get_mut(id) {
            *deleting = true;
        }
        Ok(())
    }

    async fn delete(&self, id: &ConversationId) -> Result<bool, BackendError> {
        let mut s = self.enter("delete").await;
        s.members.retain(|(c, _), _| c != id);
        s.keys.retain(|_, k| &k.conversation_id != id);
        s.files.retain(|_, f| &f.conversation_id != id);
        s.idempotency.retain(|_, r| &r.conversation_id != id);
        Ok(s.conversations.remove(id).is_some())
    }

    async fn conversation_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<Option<(Conversation, Option<Member>)>, BackendError> {
        let s = self.enter("conversation_for").await;
        Ok(s.live(id).map(|c| (c.clone(), s.member(id, jid))))
    }

    async fn conversation_with_members(
        &self,
        id: &ConversationId,
    ) -> Result<Option<(Conversation, Vec<Member>)>, BackendError> {
        let s = self.enter("conversation_with_members").await;
        let Some(c) = s.live(id) else { return Ok(None) };
        let mut members: Vec<Member> =
            s.members.iter().filter(|((cid, _), _)| cid == id).map(|(_, m)| m.clone()).collect();
        members.sort_by(|a, b| (a.joined_seq, a.jid.as_str()).cmp(&(b.joined_seq, b.jid.as_str())));
        Ok(Some((c.clone(), members)))
    }

    async fn current_key_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError> {
        let s = self.enter("current_key_for").await;
        let key = s.live(id).and_then(|c| s.keys.get(&c.current_objectid)).cloned();
        Ok((key, s.member(id, jid)))
    }

    async fn key_for(
        &self,
        objectid: &ObjectId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError> {
        let s = self.enter("key_for").await;
        let cid = objectid.conversation_id();
        let key = s.live(&cid).and_then(|_| s.keys.get(objectid)).cloned();
        Ok((key, s.member(&cid, jid)))
    }

    async fn keys_for(
        &self,
        objectids: &[ObjectId],
        jid: &BareJid,
    ) -> Result<(Vec<StoredKey>, Vec<(ConversationId, Member)>), BackendError> {
        let s = self.enter("keys_for").await;
        let keys =
            objectids.iter().filter(|o| s.live(&o.conversation_id()).is_some()).filter_map(|o| s.keys.get(o)).cloned();
        let conversations: BTreeSet<ConversationId> = objectids.iter().map(ObjectId::conversation_id).collect();
        let members = conversations.into_iter().filter_map(|c| s.member(&c, jid).map(|m| (c, m))).collect();
        Ok((keys.collect(), members))
    }

    async fn idempotency_record(&self, caller: &BareJid, key: &str) -> Result<Option<IdempotencyRecord>, BackendError> {
        let s = self.enter("idempotency_record").await;
        Ok(s.idempotency.get(&(caller.clone(), key.to_owned())).cloned())
    }

    async fn add_file(&self, file: StoredFile, uploader: &BareJid) -> Result<WriteOutcome, BackendError> {
        let mut s = self.enter("add_file").await;
        if s.member(&file.conversation_id, uploader).is_none() || s.files.contains_key(&file.file_id) {
            return Ok(WriteOutcome::Stale);
        }
        s.files.insert(file.file_id.clone(), file);
        Ok(WriteOutcome::Applied)
    }

    async fn file_for(
        &self,
        file_id: &FileId,
        jid: &BareJid,
    ) -> Result<(Option<StoredFile>, Option<Member>), BackendError> {
        let s = self.enter("file_for").await;
        let cid = file_id.conversation_id();
        let file = s.live(&cid).and_then(|_| s.files.get(file_id)).cloned();
        Ok((file, s.member(&cid, jid)))
    }

    async fn file(&self, file_id: &FileId) -> Result<Option<StoredFile>, BackendError> {
        let s = self.enter("file").await;
        Ok(s.live(&file_id.conversation_id()).and_then(|_| s.files.get(file_id)).cloned())
    }

    async fn files_of(&self, id: &ConversationId) -> Result<Vec<StoredFile>, BackendError> {
        let s = self.enter("files_of").await;
        Ok(s.files.values().filter(|f| &f.conversation_id == id).cloned().collect())
    }

    async fn delete_file(&self, file: &StoredFile) -> Result<bool, BackendError> {
        let mut s = self.enter("delete_file").await;
        Ok(s.files.remove(&file.file_id).is_some())
    }

    async fn registered_storage_keys(&self, keys: &[StorageKey]) -> Result<HashSet<StorageKey>, BackendError> {
        let s = self.enter("registered_storage_keys").await;
        Ok(s.files.values().filter(|f| keys.contains(&f.storage_key)).map(|f| f.storage_key.clone()).collect())
    }

    async fn deletion_pending(&self, id: &ConversationId, owner: &BareJid) -> Result<bool, BackendError> {
        let s = self.enter("deletion_pending").await;
        Ok(s.conversations.get(id).is_some_and(|(c, deleting)| *deleting && &c.owner == owner))
    }

    /// Nothing to open; the hook sees the call, so a test can tell that it
    /// reached the store.
    async fn warm_up(&self) {
        run_hook(&self.hook, "store", "warm_up").await;
    }
}

/// Key wrapping under a random master key that lives as long as the value;
/// counts its calls (a refused request must cost no wrapping call).
pub struct MemoryWrapper {
    key: MasterKey,
    calls: AtomicU64,
}

impl MemoryWrapper {
    pub fn new() -> Result<Self, BackendError> {
        Ok(Self { key: MasterKey::new(&random_bytes::<32>()?, "memory-v1".into())?, calls: AtomicU64::new(0) })
    }

    /// `generate` and `unwrap` calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl KeyWrapper for MemoryWrapper {
    async fn generate(&self, ctx: KeyContext<'_>) -> Result<(DataKey, WrappedKey), BackendError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.key.generate(ctx)
    }

    async fn unwrap(&self, ctx: KeyContext<'_>, wrapped: &WrappedKey) -> Result<DataKey, BackendError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.key.open(ctx, wrapped)
    }
}

/// A stored object: bytes, or an S3-style tombstone (`FileStore::delete_recent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Bytes(Vec<u8>),
    Tombstone,
}

/// Why a direct upload (`MemoryFiles::put`, a client PUT to a signed URL
/// that does not pass through keysrv, as on S3) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutRefused {
    /// `If-None-Match: *` and something (bytes or a tombstone) is there.
    Exists,
}

/// The file store: objects by storage key.
#[derive(Default)]
pub struct MemoryFiles {
    objects: Mutex<BTreeMap<StorageKey, Object>>,
    hook: Mutex<Option<Hook>>,
}

impl MemoryFiles {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_hook(&self, hook: Option<Hook>) {
        *lock(&self.hook) = hook;
    }

    /// Stores bytes as an upload through a signed URL does. With
    /// `if_none_match` (what keysrv's S3 upload URLs sign) an existing object
    /// or tombstone refuses it.
    pub fn put(&self, key: &StorageKey, bytes: Vec<u8>, if_none_match: bool) -> Result<(), PutRefused> {
        let mut objects = lock(&self.objects);
        if if_none_match && objects.contains_key(key) {
            return Err(PutRefused::Exists);
        }
        objects.insert(key.clone(), Object::Bytes(bytes));
        Ok(())
    }

    pub fn get(&self, key: &StorageKey) -> Option<Object> {
        lock(&self.objects).get(key).cloned()
    }

    /// Every storage key that holds bytes (tombstones left out).
    pub fn stored(&self) -> BTreeSet<StorageKey> {
        lock(&self.objects).iter().filter(|(_, o)| matches!(o, Object::Bytes(_))).map(|(k, _)| k.clone()).collect()
    }

    fn url(method: &str, object: FileObject<'_>, ttl: Duration) -> PresignedRequest {
        let expires_at = Timestamp::now().plus_secs(ttl.as_secs() as i64);
        PresignedRequest {
            url: format!("memory:///{}?method={method}&file={}", object.storage_key, object.file_id),
            headers: vec![("content-type".into(), object.media_type.to_string())],
            expires_at,
        }
    }
}

#[async_trait]
impl FileStore for MemoryFiles {
    async fn presign_upload(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError> {
        run_hook(&self.hook, "files", "presign_upload").await;
        Ok(Self::url("PUT", object, ttl))
    }

    async fn presign_download(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError> {
        run_hook(&self.hook, "files", "presign_download").await;
        Ok(Self::url("GET", object, ttl))
    }

    async fn delete(&self, keys: &[StorageKey]) -> Result<(), BackendError> {
        run_hook(&self.hook, "files", "delete").await;
        let mut objects = lock(&self.objects);
        for k in keys {
            objects.remove(k);
        }
        Ok(())
    }

    async fn delete_recent(&self, keys: &[StorageKey]) -> Result<(), BackendError> {
        run_hook(&self.hook, "files", "delete_recent").await;
        let mut objects = lock(&self.objects);
        for k in keys {
            objects.insert(k.clone(), Object::Tombstone);
        }
        Ok(())
    }

    async fn list_stored(&self, after: Option<&StorageKey>, limit: usize) -> Result<StoredPage, BackendError> {
        run_hook(&self.hook, "files", "list_stored").await;
        let objects = lock(&self.objects);
        // Like S3: a page of `limit` objects, tombstones left out of it.
        let page: Vec<(&StorageKey, &Object)> =
            objects.iter().filter(|(k, _)| after.is_none_or(|a| *k > a)).take(limit).collect();
        let next = (page.len() == limit).then(|| page.last().map(|(k, _)| (*k).clone())).flatten();
        let keys = page.into_iter().filter(|(_, o)| matches!(o, Object::Bytes(_))).map(|(k, _)| k.clone()).collect();
        Ok(StoredPage { keys, next })
    }
}
