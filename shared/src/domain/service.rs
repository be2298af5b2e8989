//! The use cases of the key service. Each public method is one API operation:
//! it reads through the store port, decides with `access`, and writes one
//! atomic change.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::bare_jid::BareJid;
use crate::error::{Conflict, Error, Invalid, Result};
use crate::ids::{ConversationId, ObjectId};
use crate::ports::{
    BackendError, ConversationStore, ConversationUpdate, FileStore, KeyContext, KeyWrapper, Metered, NewConversation,
    Quotas, WriteOutcome,
};
use crate::timestamp::Timestamp;

use super::access;
use super::audit::{self, Outcome};
use super::model::{
    Conversation, ConversationView, DataKey, History, IdempotencyRecord, Member, ReleasedKey, Role, StoredKey,
    WrappedKey,
};

/// Limits a deployment can tune.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Members per conversation, owner included.
    pub max_members: usize,
    /// Object ids per batch request.
    pub max_batch: usize,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl_secs: i64,
    /// The largest file a member may register, in bytes.
    pub max_file_bytes: u64,
    /// How long upload and download URLs stay valid.
    pub file_url_ttl: Duration,
    /// Per-caller quotas of the operations that write or cost KMS calls.
    pub quotas: QuotaLimits,
    /// How long an upload started just before its URL expired may still run
    /// (the embedded file server cuts it off then; on S3 it decides how long
    /// a deleted file's key stays blocked by a tombstone).
    pub upload_grace: Duration,
    /// Embedded file server: the declared sizes of all uploads in progress
    /// stay under this (and so does their temporary disk space).
    pub max_upload_bytes_in_flight: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_members: 1024,
            max_batch: 100,
            idempotency_ttl_secs: 24 * 3600,
            max_file_bytes: 100 * 1024 * 1024,
            file_url_ttl: Duration::from_secs(300),
            upload_grace: Duration::from_secs(30 * 60),
            quotas: QuotaLimits::default(),
            max_upload_bytes_in_flight: 1024 * 1024 * 1024,
        }
    }
}

/// How many of each metered operation one caller may do per window (0: no
/// limit). API Gateway's throttling is per route, shared by all callers;
/// this is per caller, so one caller cannot spend everyone's capacity and
/// KMS budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaLimits {
    pub window: Duration,
    pub create_conversation: u32,
    pub rotate: u32,
    pub membership_change: u32,
    pub file_registration: u32,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            create_conversation: 30,
            rotate: 120,
            membership_change: 120,
            file_registration: 60,
        }
    }
}

impl QuotaLimits {
    pub fn limit(&self, op: Metered) -> u32 {
        match op {
            Metered::CreateConversation => self.create_conversation,
            Metered::Rotate => self.rotate,
            Metered::MembershipChange => self.membership_change,
            Metered::FileRegistration => self.file_registration,
        }
    }

    pub fn set(&mut self, op: Metered, limit: u32) {
        match op {
            Metered::CreateConversation => self.create_conversation = limit,
            Metered::Rotate => self.rotate = limit,
            Metered::MembershipChange => self.membership_change = limit,
            Metered::FileRegistration => self.file_registration = limit,
        }
    }
}

/// Optimistic writes retry this often when another change won the race.
const MAX_ATTEMPTS: usize = 16;

/// Waits a random few milliseconds, growing with the attempt, so writers
/// that lost a race do not collide again in lockstep.
async fn back_off(attempt: usize) {
    let jitter = crate::ids::random_bytes::<2>().map(u16::from_le_bytes).unwrap_or(0);
    tokio::time::sleep(back_off_delay(attempt, jitter)).await;
}

/// The wait before retry `attempt`: `jitter / 65536` of a cap that doubles
/// per attempt from 2 ms up to 64 ms.
pub(crate) fn back_off_delay(attempt: usize, jitter: u16) -> Duration {
    let cap_ms = 1u64 << attempt.min(6);
    Duration::from_micros(u64::from(jitter) * cap_ms * 1000 / 65_536)
}

/// The use cases of conversations, keys and (in `files.rs`) files.
pub struct KeyService {
    pub(super) store: Arc<dyn ConversationStore>,
    wrapper: Arc<dyn KeyWrapper>,
    pub(super) files: Arc<dyn FileStore>,
    quotas: Arc<dyn Quotas>,
    pub(super) limits: Limits,
}

impl KeyService {
    pub fn new(
        store: Arc<dyn ConversationStore>,
        wrapper: Arc<dyn KeyWrapper>,
        files: Arc<dyn FileStore>,
        quotas: Arc<dyn Quotas>,
        limits: Limits,
    ) -> Self {
        Self { store, wrapper, files, quotas, limits }
    }

    /// Counts one metered operation of `caller`; 429 once its quota for the
    /// current window is used up. Called after the caller is authorized and
    /// before any KMS call or write.
    pub(super) async fn meter(&self, caller: &BareJid, op: Metered) -> Result<()> {
        let limit = self.limits.quotas.limit(op);
        if limit == 0 {
            return Ok(());
        }
        match self.quotas.take(caller, op, limit, self.limits.quotas.window).await? {
            None => Ok(()),
            Some(retry_after_secs) => {
                audit::change_event(op.name(), caller, "", None, Outcome::Limited);
                Err(Error::RateLimited { operation: op.name(), retry_after_secs })
            }
        }
    }

    /// See `ConversationStore::warm_up`.
    pub async fn warm_up(&self) {
        self.store.warm_up().await;
    }

    pub async fn create_conversation(
        &self,
        caller: &BareJid,
        members: Vec<BareJid>,
        history: History,
        idempotency_key: Option<&str>,
    ) -> Result<ReleasedKey> {
        let others: BTreeSet<BareJid> = members.into_iter().filter(|m| m != caller).collect();
        if others.len() + 1 > self.limits.max_members {
            return Err(Invalid::TooManyMembers { max_members: self.limits.max_members }.into());
        }
        let fingerprint = fingerprint(&[
            "create_conversation",
            history.as_str(),
            &others.iter().map(BareJid::as_str).collect::<Vec<_>>().join("\n"),
        ]);
        if let Some(replayed) = self.replay(caller, idempotency_key, &fingerprint).await? {
            return Ok(replayed);
        }
        self.meter(caller, Metered::CreateConversation).await?;

        let id = ConversationId::generate()?;
        let objectid = ObjectId::generate(&id)?;
        let now = Timestamp::now();
        let (key, wrapped) = self.wrapper.generate(KeyContext { conversation_id: &id, objectid: &objectid }).await?;
        let seq = 1;
        let conversation = Conversation {
            id: id.clone(),
            owner: caller.clone(),
            history,
            created_at: now,
            seq,
            current_objectid: objectid.clone(),
            member_count: (others.len() + 1) as u32,
        };
        let owner = Member { jid: caller.clone(), role: Role::Owner, joined_at: now, joined_seq: seq };
        let members = std::iter::once(owner)
            .chain(others.into_iter().map(|jid| Member { jid, role: Role::Member, joined_at: now, joined_seq: seq }))
            .collect();
        let stored = StoredKey {
            objectid: objectid.clone(),
            conversation_id: id.clone(),
            seq,
            history,
            created_at: now,
            wrapped,
        };
        let idempotency = self.idempotency_record(caller, idempotency_key, fingerprint.clone(), &id, &objectid, now);
        match self.store.create(NewConversation { conversation, members, key: stored, idempotency }).await? {
            WriteOutcome::Applied => {
                audit::change_event("create_conversation", caller, id.as_str(), None, Outcome::Applied);
                audit::key_event("issue_key", caller, id.as_str(), objectid.as_str(), Outcome::Released);
                Ok(ReleasedKey { objectid, conversation_id: id, created_at: now, key })
            }
            WriteOutcome::Replayed(record) => self.replay_record(caller, &record, &fingerprint).await,
            WriteOutcome::Stale => Err(Error::Backend(BackendError::Internal("new conversation id collided".into()))),
        }
    }

    pub async fn conversation(&self, caller: &BareJid, id: &str) -> Result<ConversationView> {
        let id = ConversationId::parse(id)?;
        let Some((conversation, members)) = self.store.conversation_with_members(&id).await? else {
            return Err(Error::NotFound);
        };
        if !members.iter().any(|m| &m.jid == caller) {
            return Err(Error::NotFound);
        }
        Ok(ConversationView { conversation, members })
    }

    pub async fn current_key(&self, caller: &BareJid, id: &str) -> Result<ReleasedKey> {
        let id = ConversationId::parse(id)?;
        let (key, member) = self.store.current_key_for(&id, caller).await?;
        self.release("current_key", caller, id.as_str(), key, member).await
    }

    pub async fn key(&self, caller: &BareJid, objectid: &str) -> Result<ReleasedKey> {
        let oid = match ObjectId::parse(objectid) {
            Ok(oid) => oid,
            Err(e) => {
                audit::key_event("get_key", caller, "", "", Outcome::Denied);
                return Err(e);
            }
        };
        let (key, member) = self.store.key_for(&oid, caller).await?;
        self.release("get_key", caller, oid.conversation_id().as_str(), key, member).await
    }

    /// Releases each readable key; every other id (unknown, malformed or not
    /// the caller's) is returned as missing, in request order.
    pub async fn keys(&self, caller: &BareJid, objectids: &[String]) -> Result<(Vec<ReleasedKey>, Vec<String>)> {
        if objectids.len() > self.limits.max_batch {
            return Err(Invalid::BatchTooLarge { max_batch: self.limits.max_batch }.into());
        }
        let mut seen = BTreeSet::new();
        let wanted: Vec<&String> = objectids.iter().filter(|s| seen.insert(s.as_str())).collect();
        let parsed: Vec<ObjectId> = wanted.iter().filter_map(|s| ObjectId::parse(s).ok()).collect();
        let (rows, members) =
            if parsed.is_empty() { (Vec::new(), Vec::new()) } else { self.store.keys_for(&parsed, caller).await? };
        let members: HashMap<ConversationId, Member> = members.into_iter().collect();
        let mut rows: HashMap<ObjectId, StoredKey> = rows.into_iter().map(|k| (k.objectid.clone(), k)).collect();

        let mut released = Vec::new();
        let mut missing = Vec::new();
        for raw in wanted {
            let row = ObjectId::parse(raw).ok().and_then(|oid| rows.remove(&oid));
            let member = row.as_ref().and_then(|r| members.get(&r.conversation_id)).cloned();
            let conversation = row.as_ref().map(|r| r.conversation_id.to_string()).unwrap_or_default();
            match self.release("batch_get_keys", caller, &conversation, row, member).await {
                Ok(key) => released.push(key),
                Err(Error::NotFound) => missing.push(raw.clone()),
                Err(e) => return Err(e),
            }
        }
        Ok((released, missing))
    }

    pub async fn rotate_key(&self, caller: &BareJid, id: &str, idempotency_key: Option<&str>) -> Result<ReleasedKey> {
        let id = ConversationId::parse(id)?;
        let fingerprint = fingerprint(&["rotate_key", id.as_str()]);
        if let Some(replayed) = self.replay(caller, idempotency_key, &fingerprint).await? {
            return Ok(replayed);
        }
        let mut pending = None;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                back_off(attempt).await;
            }
            let (conversation, _actor) = self.load_member("rotate_key", caller, &id).await?;
            if attempt == 0 {
                self.meter(caller, Metered::Rotate).await?;
            }
            let key = self.pending_key(&mut pending, &id).await?;
            let now = Timestamp::now();
            let seq = conversation.seq + 1;
            let update = ConversationUpdate {
                conversation_id: id.clone(),
                expected_seq: conversation.seq,
                new_seq: seq,
                member_count: conversation.member_count,
                new_key: Some(key.stored(&id, seq, conversation.history, now)),
                upsert_member: None,
                remove_member: None,
                idempotency: self.idempotency_record(
                    caller,
                    idempotency_key,
                    fingerprint.clone(),
                    &id,
                    &key.objectid,
                    now,
                ),
            };
            match self.store.update(update).await? {
                WriteOutcome::Applied => {
                    audit::key_event("rotate_key", caller, id.as_str(), key.objectid.as_str(), Outcome::Released);
                    let PendingKey { objectid, key, .. } = key.clone();
                    return Ok(ReleasedKey { objectid, conversation_id: id, created_at: now, key });
                }
                WriteOutcome::Replayed(record) => return self.replay_record(caller, &record, &fingerprint).await,
                WriteOutcome::Stale => crate::metrics::inc(&crate::metrics::METRICS.write_retries),
            }
        }
        Err(Error::Contended)
    }

    /// Adds a member or changes a role. Under `since_join`, adding a member
    /// rotates the key in the same write.
    pub async fn put_member(&self, caller: &BareJid, id: &str, target: &BareJid, role: Role) -> Result<Member> {
        let id = ConversationId::parse(id)?;
        let mut pending = None;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                back_off(attempt).await;
            }
            let (conversation, actor, existing) = self.load_actor_and_target("put_member", caller, &id, target).await?;
            self.authorize(
                "put_member",
                caller,
                &id,
                target,
                access::check_put_member(&actor, existing.as_ref(), role),
            )?;
            let now = Timestamp::now();
            let seq = conversation.seq + 1;
            if attempt == 0 && existing.as_ref().is_none_or(|m| m.role != role) {
                self.meter(caller, Metered::MembershipChange).await?;
            }
            let (member, member_count, new_key) = match existing {
                Some(m) if m.role == role => return Ok(m),
                Some(m) => (Member { role, ..m }, conversation.member_count, None),
                None => {
                    if conversation.member_count as usize >= self.limits.max_members {
                        return Err(Conflict::MemberLimit { max_members: self.limits.max_members }.into());
                    }
                    let member = Member { jid: target.clone(), role, joined_at: now, joined_seq: seq };
                    let new_key = match conversation.history {
                        History::Shared => None,
                        History::SinceJoin => {
                            Some(self.pending_key(&mut pending, &id).await?.stored(&id, seq, conversation.history, now))
                        }
                    };
                    (member, conversation.member_count + 1, new_key)
                }
            };
            let update = ConversationUpdate {
                conversation_id: id.clone(),
                expected_seq: conversation.seq,
                new_seq: seq,
                member_count,
                new_key,
                upsert_member: Some(member.clone()),
                remove_member: None,
                idempotency: None,
            };
            match self.store.update(update).await? {
                WriteOutcome::Applied => {
                    audit::change_event("put_member", caller, id.as_str(), Some(target.as_str()), Outcome::Applied);
                    return Ok(member);
                }
                WriteOutcome::Stale | WriteOutcome::Replayed(_) => {
                    crate::metrics::inc(&crate::metrics::METRICS.write_retries)
                }
            }
        }
        Err(Error::Contended)
    }

    /// Removes a member and rotates the key in the same write; returns the new
    /// current objectid.
    pub async fn remove_member(&self, caller: &BareJid, id: &str, target: &BareJid) -> Result<ObjectId> {
        let id = ConversationId::parse(id)?;
        let mut pending = None;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                back_off(attempt).await;
            }
            let (conversation, actor, existing) =
                self.load_actor_and_target("remove_member", caller, &id, target).await?;
            let Some(existing) = existing else {
                return Err(Error::NotFound);
            };
            self.authorize("remove_member", caller, &id, target, access::check_remove_member(&actor, &existing))?;
            if attempt == 0 {
                self.meter(caller, Metered::MembershipChange).await?;
            }
            let key = self.pending_key(&mut pending, &id).await?;
            let seq = conversation.seq + 1;
            let update = ConversationUpdate {
                conversation_id: id.clone(),
                expected_seq: conversation.seq,
                new_seq: seq,
                member_count: conversation.member_count.saturating_sub(1),
                new_key: Some(key.stored(&id, seq, conversation.history, Timestamp::now())),
                upsert_member: None,
                remove_member: Some(target.clone()),
                idempotency: None,
            };
            match self.store.update(update).await? {
                WriteOutcome::Applied => {
                    audit::change_event("remove_member", caller, id.as_str(), Some(target.as_str()), Outcome::Applied);
                    return Ok(key.objectid.clone());
                }
                WriteOutcome::Stale | WriteOutcome::Replayed(_) => {
                    crate::metrics::inc(&crate::metrics::METRICS.write_retries)
                }
            }
        }
        Err(Error::Contended)
    }

    /// Crypto-shredding: every row of the conversation is deleted, so every
    /// objectid it ever had is unknown from now on, and so are the stored
    /// bytes of its files. A deletion that was interrupted (the conversation
    /// is already invisible) is finished when its owner asks again.
    ///
    /// The order is what makes it hold against uploads in flight: first the
    /// conversation is marked (every read sees nothing, no file can be
    /// registered, an upload that checks its registration is refused), then
    /// the bytes of every file row go, then the rows. An upload that stored
    /// its bytes before the mark is deleted with the others; one that
    /// finishes after it finds no registration and deletes its own bytes
    /// (`accept_upload`); on S3, where uploads check nothing, recent files
    /// get a tombstone their upload cannot overwrite. Bytes a crash leaves
    /// behind have no row, and the sweep (`sweep_unregistered_bytes`)
    /// removes them.
    pub async fn delete_conversation(&self, caller: &BareJid, id: &str) -> Result<()> {
        let id = ConversationId::parse(id)?;
        match self.load_member("delete_conversation", caller, &id).await {
            Ok((_, actor)) => {
                self.authorize("delete_conversation", caller, &id, caller, access::check_delete_conversation(&actor))?;
            }
            Err(Error::NotFound) if self.store.deletion_pending(&id, caller).await? => {}
            Err(e) => return Err(e),
        }
        self.store.mark_deleting(&id).await?;
        // No file row can be added after the mark: this is every file.
        let files = self.store.files_of(&id).await?;
        self.delete_bytes(files.into_iter().map(|f| (f.storage_key, f.created_at)).collect()).await?;
        if !self.store.delete(&id).await? {
            return Err(Error::NotFound);
        }
        audit::change_event("delete_conversation", caller, id.as_str(), None, Outcome::Applied);
        Ok(())
    }

    /// The conversation and the caller's membership; 404 (audited) for non-members.
    async fn load_member(&self, action: &str, caller: &BareJid, id: &ConversationId) -> Result<(Conversation, Member)> {
        match self.store.conversation_for(id, caller).await? {
            Some((conversation, Some(member))) => Ok((conversation, member)),
            _ => {
                audit::change_event(action, caller, id.as_str(), None, Outcome::Denied);
                Err(Error::NotFound)
            }
        }
    }

    /// The conversation, the acting member, and the target's membership if any.
    async fn load_actor_and_target(
        &self,
        action: &str,
        caller: &BareJid,
        id: &ConversationId,
        target: &BareJid,
    ) -> Result<(Conversation, Member, Option<Member>)> {
        let (conversation, actor) = self.load_member(action, caller, id).await?;
        let target = if target == caller {
            Some(actor.clone())
        } else {
            self.store.conversation_for(id, target).await?.and_then(|(_, m)| m)
        };
        Ok((conversation, actor, target))
    }

    /// Audits a role check that refused the action.
    fn authorize(
        &self,
        action: &str,
        caller: &BareJid,
        id: &ConversationId,
        subject: &BareJid,
        check: Result<()>,
    ) -> Result<()> {
        if check.is_err() {
            audit::change_event(action, caller, id.as_str(), Some(subject.as_str()), Outcome::Denied);
        }
        check
    }

    /// The key a write will make current, generated once the caller is
    /// authorized (a refused request costs no KMS call) and reused if the
    /// write is retried.
    async fn pending_key<'a>(
        &self,
        pending: &'a mut Option<PendingKey>,
        id: &ConversationId,
    ) -> Result<&'a PendingKey> {
        if pending.is_none() {
            let objectid = ObjectId::generate(id)?;
            let (key, wrapped) = self.wrapper.generate(KeyContext { conversation_id: id, objectid: &objectid }).await?;
            *pending = Some(PendingKey { objectid, key, wrapped });
        }
        pending.as_ref().ok_or(Error::Contended)
    }

    /// Unwraps and releases `key` if `member` may read it; otherwise a 404,
    /// exactly as for an unknown key. Audited either way.
    async fn release(
        &self,
        action: &str,
        caller: &BareJid,
        conversation: &str,
        key: Option<StoredKey>,
        member: Option<Member>,
    ) -> Result<ReleasedKey> {
        let readable = match (key, member) {
            (Some(k), Some(m)) if access::may_read_key(&m, &k) => k,
            (k, _) => {
                let objectid = k.map(|k| k.objectid.to_string()).unwrap_or_default();
                audit::key_event(action, caller, conversation, &objectid, Outcome::Denied);
                return Err(Error::NotFound);
            }
        };
        let ctx = KeyContext { conversation_id: &readable.conversation_id, objectid: &readable.objectid };
        let key = self.wrapper.unwrap(ctx, &readable.wrapped).await?;
        audit::key_event(action, caller, conversation, readable.objectid.as_str(), Outcome::Released);
        Ok(ReleasedKey {
            objectid: readable.objectid,
            conversation_id: readable.conversation_id,
            created_at: readable.created_at,
            key,
        })
    }

    fn idempotency_record(
        &self,
        caller: &BareJid,
        key: Option<&str>,
        fingerprint: String,
        conversation_id: &ConversationId,
        objectid: &ObjectId,
        now: Timestamp,
    ) -> Option<IdempotencyRecord> {
        key.map(|k| IdempotencyRecord {
            caller: caller.clone(),
            key: k.to_owned(),
            fingerprint,
            conversation_id: conversation_id.clone(),
            objectid: objectid.clone(),
            expires_at: now.plus_secs(self.limits.idempotency_ttl_secs),
        })
    }

    async fn replay(&self, caller: &BareJid, key: Option<&str>, fingerprint: &str) -> Result<Option<ReleasedKey>> {
        let Some(key) = key else { return Ok(None) };
        match self.store.idempotency_record(caller, key).await? {
            Some(record) if record.expires_at > Timestamp::now() => {
                self.replay_record(caller, &record, fingerprint).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Answers a retried request with the key it created the first time, as
    /// the caller may read it now (a caller removed since gets a 404).
    async fn replay_record(
        &self,
        caller: &BareJid,
        record: &IdempotencyRecord,
        fingerprint: &str,
    ) -> Result<ReleasedKey> {
        if record.fingerprint != fingerprint {
            return Err(Conflict::IdempotencyKeyReused.into());
        }
        let (key, member) = self.store.key_for(&record.objectid, caller).await?;
        self.release("replay", caller, record.conversation_id.as_str(), key, member).await
    }
}

fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A data key generated for a write, with its id and wrapped form.
#[derive(Clone)]
struct PendingKey {
    objectid: ObjectId,
    key: DataKey,
    wrapped: WrappedKey,
}

impl PendingKey {
    fn stored(&self, id: &ConversationId, seq: u64, history: History, now: Timestamp) -> StoredKey {
        StoredKey {
            objectid: self.objectid.clone(),
            conversation_id: id.clone(),
            seq,
            history,
            created_at: now,
            wrapped: self.wrapped.clone(),
        }
    }
}
