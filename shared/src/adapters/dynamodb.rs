//! The conversation store on DynamoDB: one table, one partition per
//! conversation.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | conversation | `C#<conversation_id>` | `M` (also holds a copy of the current key) |
//! | member | `C#<conversation_id>` | `M#<bare jid>` |
//! | key | `C#<conversation_id>` | `K#<key id>` |
//! | file | `C#<conversation_id>` | `F#<file id>` |
//! | idempotency record | `I#<caller>` | `I#<Idempotency-Key>` (expires by TTL) |
//! | storage key of a file | `S#<storage key>` | `S` (names the file; written and deleted with it) |
//!
//! Because an objectid carries its conversation id, every read the API needs
//! is one `BatchGetItem` (or one `Query` for the member list), and every
//! change is one `TransactWriteItems` conditional on the conversation's
//! `seq`. Reads are strongly consistent: a removal takes effect on the next
//! request.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::aws_errors::classify;
use crate::bare_jid::BareJid;
use crate::domain::model::{Conversation, IdempotencyRecord, Member, StoredFile, StoredKey, WrappedKey};
use crate::ids::{ConversationId, FileId, ObjectId, StorageKey, random_bytes};
use crate::media_type::MediaType;
use crate::ports::{BackendError, ConversationStore, ConversationUpdate, NewConversation, WriteOutcome};
use crate::timestamp::Timestamp;

type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limits per request.
const MAX_TRANSACTION_ITEMS: usize = 100;
const MAX_BATCH_GET: usize = 100;
const MAX_TRANSACT_GET: usize = 100;
/// A snapshot read cancelled by a concurrent write is tried this often.
const MAX_SNAPSHOT_ATTEMPTS: u32 = 4;
/// Delete transactions in flight at once during a crypto-shred.
const PARALLEL_DELETES: usize = 4;
/// Unprocessed items are retried this often before the request is a 503.
const MAX_UNPROCESSED_RETRIES: u32 = 5;

const META: &str = "M";

pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

fn conv_pk(id: &ConversationId) -> String {
    format!("C#{id}")
}

fn member_sk(jid: &BareJid) -> String {
    format!("M#{jid}")
}

fn key_sk(objectid: &ObjectId) -> String {
    format!("K#{}", objectid.local_part())
}

fn file_sk(file_id: &FileId) -> String {
    format!("F#{}", file_id.local_part())
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk)), ("sk".to_owned(), AttributeValue::S(sk))])
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn corrupt(what: &str) -> BackendError {
    BackendError::Internal(format!("dynamodb: item attribute {what} is missing or malformed"))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, BackendError> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).ok_or_else(|| corrupt(name))
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, BackendError> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(name))
}

fn get_b(item: &Item, name: &str) -> Result<Vec<u8>, BackendError> {
    item.get(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec()).ok_or_else(|| corrupt(name))
}

fn build_err(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("dynamodb request: {e}"))
}

fn conversation_item(c: &Conversation, current: &StoredKey) -> Item {
    let mut item = key(conv_pk(&c.id), META.into());
    item.insert("owner".into(), s(c.owner.as_str()));
    item.insert("history".into(), s(c.history.as_str()));
    item.insert("created_at".into(), n(c.created_at.millis()));
    item.insert("seq".into(), n(c.seq));
    item.insert("member_count".into(), n(c.member_count));
    set_current(&mut item, current);
    item
}

fn set_current(item: &mut Item, k: &StoredKey) {
    item.insert("cur_oid".into(), s(k.objectid.as_str()));
    item.insert("cur_seq".into(), n(k.seq));
    item.insert("cur_created_at".into(), n(k.created_at.millis()));
    item.insert("cur_scheme".into(), s(k.wrapped.scheme.clone()));
    item.insert("cur_wrapped".into(), AttributeValue::B(Blob::new(k.wrapped.blob.clone())));
}

fn member_item(id: &ConversationId, m: &Member) -> Item {
    let mut item = key(conv_pk(id), member_sk(&m.jid));
    item.insert("role".into(), s(m.role.as_str()));
    item.insert("joined_at".into(), n(m.joined_at.millis()));
    item.insert("joined_seq".into(), n(m.joined_seq));
    item
}

fn key_item(k: &StoredKey) -> Item {
    let mut item = key(conv_pk(&k.conversation_id), key_sk(&k.objectid));
    item.insert("seq".into(), n(k.seq));
    item.insert("history".into(), s(k.history.as_str()));
    item.insert("created_at".into(), n(k.created_at.millis()));
    item.insert("scheme".into(), s(k.wrapped.scheme.clone()));
    item.insert("wrapped".into(), AttributeValue::B(Blob::new(k.wrapped.blob.clone())));
    item
}

fn file_item(f: &StoredFile) -> Item {
    let mut item = key(conv_pk(&f.conversation_id), file_sk(&f.file_id));
    item.insert("storage_key".into(), s(f.storage_key.as_str()));
    item.insert("uploader".into(), s(f.uploader.as_str()));
    item.insert("media_type".into(), s(f.media_type.as_str()));
    item.insert("size".into(), n(f.size));
    item.insert("seq".into(), n(f.seq));
    item.insert("history".into(), s(f.history.as_str()));
    item.insert("created_at".into(), n(f.created_at.millis()));
    item
}

/// The item that says a storage key belongs to a file row: the sweep of
/// unregistered bytes looks storage keys up by it.
fn storage_key_item(f: &StoredFile) -> Item {
    let mut item = storage_key_key(&f.storage_key);
    item.insert("file_id".into(), s(f.file_id.as_str()));
    item
}

fn storage_key_key(k: &StorageKey) -> Item {
    key(format!("S#{k}"), "S".into())
}

fn parse_file(item: &Item) -> Result<StoredFile, BackendError> {
    let cid = get_s(item, "pk")?.strip_prefix("C#").ok_or_else(|| corrupt("pk"))?;
    let fid = get_s(item, "sk")?.strip_prefix("F#").ok_or_else(|| corrupt("sk"))?;
    let file_id = FileId::parse(&format!("{cid}.{fid}")).map_err(|_| corrupt("sk"))?;
    Ok(StoredFile {
        conversation_id: file_id.conversation_id(),
        file_id,
        storage_key: StorageKey::parse(get_s(item, "storage_key")?).map_err(|_| corrupt("storage_key"))?,
        uploader: BareJid::from_stored(get_s(item, "uploader")?.to_owned()),
        media_type: MediaType::from_stored(get_s(item, "media_type")?.to_owned()),
        size: get_n(item, "size")?,
        seq: get_n(item, "seq")?,
        history: get_s(item, "history")?.parse().map_err(|_| corrupt("history"))?,
        created_at: Timestamp::from_millis(get_n(item, "created_at")?),
    })
}

fn idempotency_key(caller: &BareJid, key_value: &str) -> Item {
    key(format!("I#{caller}"), format!("I#{key_value}"))
}

fn idempotency_item(r: &IdempotencyRecord) -> Item {
    let mut item = idempotency_key(&r.caller, &r.key);
    item.insert("fingerprint".into(), s(r.fingerprint.clone()));
    item.insert("conversation_id".into(), s(r.conversation_id.as_str()));
    item.insert("objectid".into(), s(r.objectid.as_str()));
    item.insert("expires_at".into(), n(r.expires_at.millis()));
    // DynamoDB's TTL wants seconds.
    item.insert("ttl".into(), n(r.expires_at.millis() / 1000 + 1));
    item
}

fn parse_conversation(item: &Item) -> Result<Option<Conversation>, BackendError> {
    if item.contains_key("deleting") {
        return Ok(None);
    }
    let pk = get_s(item, "pk")?;
    let id = pk.strip_prefix("C#").and_then(|c| ConversationId::parse(c).ok()).ok_or_else(|| corrupt("pk"))?;
    Ok(Some(Conversation {
        id,
        owner: BareJid::from_stored(get_s(item, "owner")?.to_owned()),
        history: get_s(item, "history")?.parse().map_err(|_| corrupt("history"))?,
        created_at: Timestamp::from_millis(get_n(item, "created_at")?),
        seq: get_n(item, "seq")?,
        current_objectid: ObjectId::parse(get_s(item, "cur_oid")?).map_err(|_| corrupt("cur_oid"))?,
        member_count: get_n(item, "member_count")?,
    }))
}

fn parse_current_key(item: &Item, c: &Conversation) -> Result<StoredKey, BackendError> {
    Ok(StoredKey {
        objectid: c.current_objectid.clone(),
        conversation_id: c.id.clone(),
        seq: get_n(item, "cur_seq")?,
        history: c.history,
        created_at: Timestamp::from_millis(get_n(item, "cur_created_at")?),
        wrapped: WrappedKey { scheme: get_s(item, "cur_scheme")?.to_owned(), blob: get_b(item, "cur_wrapped")? },
    })
}

fn parse_member(item: &Item) -> Result<Member, BackendError> {
    let sk = get_s(item, "sk")?;
    let jid = sk.strip_prefix("M#").ok_or_else(|| corrupt("sk"))?;
    Ok(Member {
        jid: BareJid::from_stored(jid.to_owned()),
        role: get_s(item, "role")?.parse().map_err(|_| corrupt("role"))?,
        joined_at: Timestamp::from_millis(get_n(item, "joined_at")?),
        joined_seq: get_n(item, "joined_seq")?,
    })
}

fn parse_key(item: &Item) -> Result<StoredKey, BackendError> {
    let cid = get_s(item, "pk")?.strip_prefix("C#").ok_or_else(|| corrupt("pk"))?;
    let kid = get_s(item, "sk")?.strip_prefix("K#").ok_or_else(|| corrupt("sk"))?;
    let objectid = ObjectId::parse(&format!("{cid}.{kid}")).map_err(|_| corrupt("sk"))?;
    Ok(StoredKey {
        conversation_id: objectid.conversation_id(),
        objectid,
        seq: get_n(item, "seq")?,
        history: get_s(item, "history")?.parse().map_err(|_| corrupt("history"))?,
        created_at: Timestamp::from_millis(get_n(item, "created_at")?),
        wrapped: WrappedKey { scheme: get_s(item, "scheme")?.to_owned(), blob: get_b(item, "wrapped")? },
    })
}

fn parse_idempotency(item: &Item, caller: &BareJid, key_value: &str) -> Result<IdempotencyRecord, BackendError> {
    Ok(IdempotencyRecord {
        caller: caller.clone(),
        key: key_value.to_owned(),
        fingerprint: get_s(item, "fingerprint")?.to_owned(),
        conversation_id: ConversationId::parse(get_s(item, "conversation_id")?)
            .map_err(|_| corrupt("conversation_id"))?,
        objectid: ObjectId::parse(get_s(item, "objectid")?).map_err(|_| corrupt("objectid"))?,
        expires_at: Timestamp::from_millis(get_n(item, "expires_at")?),
    })
}

type DeleteTask = tokio::task::JoinSet<Result<Result<(), Vec<CancelReason>>, BackendError>>;

async fn join_delete(set: &mut DeleteTask) -> Result<(), BackendError> {
    match set.join_next().await {
        Some(Ok(Ok(Ok(())))) | None => Ok(()),
        Some(Ok(Ok(Err(_)))) => Err(BackendError::Unavailable {
            reason: "dynamodb: a delete transaction was cancelled".into(),
            retry_after_secs: 1,
        }),
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(BackendError::Internal(e.to_string())),
    }
}

/// A cancelled transaction item: its cancellation code and, where asked
/// for, the item as it was.
type CancelReason = (Option<String>, Option<Item>);

impl DynamoStore {
    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, BackendError> {
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match condition {
            Some(c) => put.condition_expression(c),
            None => put,
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(build_err)?).build())
    }

    /// The idempotency claim, as two transaction items: a pointer to the
    /// record in the conversation's partition (so a crypto-shred finds and
    /// deletes it) and, last — its cancellation reason is read from there —
    /// the record itself, which fails (returning the existing record) if the
    /// key is already taken by a record that has not expired.
    fn claim(&self, rec: &IdempotencyRecord) -> Result<[TransactWriteItem; 2], BackendError> {
        let target = idempotency_key(&rec.caller, &rec.key);
        let mut pointer =
            key(conv_pk(&rec.conversation_id), format!("X#{}\u{0}{}", get_s(&target, "pk")?, get_s(&target, "sk")?));
        pointer.extend(target.into_iter().map(|(k, v)| (format!("target_{k}"), v)));
        pointer.insert("ttl".into(), n(rec.expires_at.millis() / 1000 + 1));
        Ok([self.put(pointer, None)?, self.claim_record(rec)?])
    }

    fn claim_record(&self, rec: &IdempotencyRecord) -> Result<TransactWriteItem, BackendError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(idempotency_item(rec)))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(Timestamp::now().millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs a transaction. `Err(Ok(reasons))` is a cancellation with its
    /// per-item reasons (code, old item).
    async fn transact(
        &self,
        what: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<CancelReason>>, BackendError> {
        // The SDK retries a call whose answer it did not get; the token makes
        // DynamoDB treat the retry as the same transaction rather than apply
        // it twice (or fail its own condition on the second try).
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<24>()?);
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token)
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), TransactWriteItemsError::TransactionCanceledException(_)) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(e) = se.into_err() else {
                    return Err(BackendError::Internal("unreachable".into()));
                };
                let reasons = e.cancellation_reasons.unwrap_or_default();
                // Throttling is transient; a conflicting transaction is a lost
                // race like a failed `seq` condition (an empty reason list:
                // the caller re-reads and retries).
                if reasons.iter().any(|r| r.code.as_deref() == Some("TransactionConflict")) {
                    return Ok(Err(Vec::new()));
                }
                if reasons
                    .iter()
                    .any(|r| matches!(r.code.as_deref(), Some("ThrottlingError" | "ProvisionedThroughputExceeded")))
                {
                    return Err(BackendError::Unavailable {
                        reason: format!("{what}: transaction conflict"),
                        retry_after_secs: 1,
                    });
                }
                Ok(Err(reasons.into_iter().map(|r| (r.code, r.item)).collect()))
            }
            Err(e) => Err(classify(what, e)),
        }
    }

    /// One strongly consistent `BatchGetItem`, retrying unprocessed keys.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, BackendError> {
        let mut found = Vec::new();
        let mut pending = keys;
        for attempt in 0..=MAX_UNPROCESSED_RETRIES {
            if pending.is_empty() {
                return Ok(found);
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(build_err)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| classify("dynamodb:BatchGetItem", e))?;
            if let Some(mut responses) = out.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
        }
        Err(BackendError::Unavailable {
            reason: "dynamodb:BatchGetItem left keys unprocessed".into(),
            retry_after_secs: 1,
        })
    }

    /// A serializable snapshot of up to 100 items: one `TransactGetItems`.
    /// Every release decision reads the caller's member item and the
    /// conversation item this way: a `BatchGetItem` is isolated only per
    /// item, so it could see the member from before a removal and the
    /// conversation (its current key) from after it.
    async fn snapshot(&self, keys: Vec<Item>) -> Result<Vec<Item>, BackendError> {
        use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
        use aws_sdk_dynamodb::types::{Get, TransactGetItem};
        if keys.len() > MAX_TRANSACT_GET {
            return Err(BackendError::Internal(format!("a snapshot of {} items (at most 100)", keys.len())));
        }
        let gets = keys
            .into_iter()
            .map(|k| {
                let get = Get::builder().table_name(&self.table).set_key(Some(k)).build().map_err(build_err)?;
                Ok(TransactGetItem::builder().get(get).build())
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        for attempt in 0..MAX_SNAPSHOT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
            }
            match self.client.transact_get_items().set_transact_items(Some(gets.clone())).send().await {
                Ok(out) => return Ok(out.responses.unwrap_or_default().into_iter().filter_map(|r| r.item).collect()),
                // A transaction writing one of the items was in progress.
                Err(SdkError::ServiceError(se))
                    if matches!(se.err(), TransactGetItemsError::TransactionCanceledException(_)) =>
                {
                    continue;
                }
                Err(e) => return Err(classify("dynamodb:TransactGetItems", e)),
            }
        }
        Err(BackendError::Unavailable {
            reason: "dynamodb:TransactGetItems kept conflicting".into(),
            retry_after_secs: 1,
        })
    }

    /// Snapshots of more than 100 items, at most 100 each, at once. Callers
    /// keep what must be read together (a conversation's member and
    /// conversation items) adjacent at even positions.
    async fn snapshots(&self, keys: Vec<Item>) -> Result<Vec<Item>, BackendError> {
        if keys.len() <= MAX_TRANSACT_GET {
            return self.snapshot(keys).await;
        }
        let mut set = tokio::task::JoinSet::new();
        for chunk in keys.chunks(MAX_TRANSACT_GET) {
            let store = DynamoStore { client: self.client.clone(), table: self.table.clone() };
            let chunk = chunk.to_vec();
            set.spawn(async move { store.snapshot(chunk).await });
        }
        let mut found = Vec::new();
        while let Some(res) = set.join_next().await {
            found.extend(res.map_err(|e| BackendError::Internal(e.to_string()))??);
        }
        Ok(found)
    }

    /// Several `BatchGetItem` calls at once, for more than 100 keys.
    async fn batch_get_all(&self, keys: Vec<Item>) -> Result<Vec<Item>, BackendError> {
        if keys.len() <= MAX_BATCH_GET {
            return self.batch_get(keys).await;
        }
        let mut set = tokio::task::JoinSet::new();
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let store = DynamoStore { client: self.client.clone(), table: self.table.clone() };
            let chunk = chunk.to_vec();
            set.spawn(async move { store.batch_get(chunk).await });
        }
        let mut found = Vec::new();
        while let Some(res) = set.join_next().await {
            found.extend(res.map_err(|e| BackendError::Internal(e.to_string()))??);
        }
        Ok(found)
    }

    async fn query_partition(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
        keys_only: bool,
    ) -> Result<Vec<Item>, BackendError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(pk.clone()))
                .set_exclusive_start_key(start);
            q = match sk_prefix {
                Some(p) => q
                    .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                    .expression_attribute_values(":p", s(p)),
                None => q.key_condition_expression("pk = :pk"),
            };
            if keys_only {
                q = q.projection_expression("pk, sk");
            }
            let out = q.send().await.map_err(|e| classify("dynamodb:Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Deletes items in transactions of up to 100 `Delete`s, a few at a time.
    /// (Not `BatchWriteItem`: its IAM permission would also allow puts.)
    async fn delete_items(&self, keys: Vec<Item>) -> Result<(), BackendError> {
        let mut set = tokio::task::JoinSet::new();
        for chunk in keys.chunks(MAX_TRANSACTION_ITEMS) {
            let items = chunk
                .iter()
                .map(|k| {
                    let del = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(k.clone()))
                        .build()
                        .map_err(build_err)?;
                    Ok(TransactWriteItem::builder().delete(del).build())
                })
                .collect::<Result<Vec<_>, BackendError>>()?;
            let store = DynamoStore { client: self.client.clone(), table: self.table.clone() };
            set.spawn(async move { store.transact("dynamodb:TransactWriteItems", items).await });
            while set.len() >= PARALLEL_DELETES {
                join_delete(&mut set).await?;
            }
        }
        while !set.is_empty() {
            join_delete(&mut set).await?;
        }
        Ok(())
    }

    /// Marks the conversation `deleting`: from here on every read treats it
    /// as gone, even if the deletion is interrupted and leaves rows behind.
    /// The current key's copy goes with the mark. Whether it existed.
    async fn mark(&self, id: &ConversationId) -> Result<bool, BackendError> {
        let marked = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(id), META.into())))
            .update_expression("SET deleting = :t REMOVE cur_wrapped, cur_scheme")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        match marked {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(classify("dynamodb:UpdateItem", e)),
        }
    }

    /// Reads the conversation item and one member item, in one snapshot.
    async fn meta_and_member(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<(Option<Item>, Option<Member>), BackendError> {
        let items = self.snapshot(vec![key(conv_pk(id), META.into()), key(conv_pk(id), member_sk(jid))]).await?;
        let mut meta = None;
        let mut member = None;
        for item in items {
            if get_s(&item, "sk")? == META {
                meta = Some(item);
            } else {
                member = Some(parse_member(&item)?);
            }
        }
        Ok((meta, member))
    }
}

/// Quotas in the same table: one item per caller, operation and window
/// (`Q#<caller>` / `Q#<operation>#<window start>`), counted with one
/// conditional `UpdateItem` and expired by TTL. Only operations that write
/// pay this round trip; key fetches never do.
#[async_trait]
impl crate::ports::Quotas for DynamoStore {
    async fn take(
        &self,
        caller: &BareJid,
        op: crate::ports::Metered,
        limit: u32,
        window: Duration,
    ) -> Result<Option<u32>, BackendError> {
        let (start, left) = super::memory_quotas::window_of(Timestamp::now(), window);
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("Q#{caller}"), format!("Q#{}#{start}", op.name()))))
            .update_expression("ADD n :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(n) OR n < :limit")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n(start + window.as_secs() as i64 + 60))
            .send()
            .await;
        match counted {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => Ok(Some(left)),
            Err(e) => Err(classify("dynamodb:UpdateItem", e)),
        }
    }
}

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn create(&self, new: NewConversation) -> Result<WriteOutcome, BackendError> {
        let c = &new.conversation;
        let mut tail = vec![self.put(conversation_item(c, &new.key), Some("attribute_not_exists(pk)"))?];
        tail.push(self.put(key_item(&new.key), None)?);
        if let Some(rec) = &new.idempotency {
            tail.extend(self.claim(rec)?);
        }
        let mut members: Vec<TransactWriteItem> =
            new.members.iter().map(|m| self.put(member_item(&c.id, m), None)).collect::<Result<_, _>>()?;
        // Members beyond what fits in the final transaction go first, in
        // transactions of their own; they are invisible until the
        // conversation item (written last) exists, and are removed again if
        // a later step fails.
        let room = MAX_TRANSACTION_ITEMS - tail.len();
        let early: Vec<TransactWriteItem> =
            if members.len() > room { members.drain(room..).collect() } else { Vec::new() };
        let mut written_early = Vec::new();
        for chunk in early.chunks(MAX_TRANSACTION_ITEMS) {
            match self.transact("dynamodb:TransactWriteItems", chunk.to_vec()).await {
                Ok(Ok(())) => written_early.extend(chunk.iter().filter_map(|t| t.put.as_ref()).map(|p| {
                    key(
                        get_s(&p.item, "pk").unwrap_or_default().to_owned(),
                        get_s(&p.item, "sk").unwrap_or_default().to_owned(),
                    )
                })),
                other => {
                    let _ = self.delete_items(written_early).await;
                    return match other {
                        Err(e) => Err(e),
                        _ => Err(BackendError::Internal("writing members failed".into())),
                    };
                }
            }
        }
        members.extend(tail);
        let has_idempotency = new.idempotency.is_some();
        let outcome = self.transact("dynamodb:TransactWriteItems", members).await;
        let result = match outcome {
            Ok(Ok(())) => return Ok(WriteOutcome::Applied),
            Ok(Err(reasons)) => {
                // The idempotency claim is the last item; the conversation item is the first of the tail.
                let claim = if has_idempotency { reasons.last().cloned() } else { None };
                match claim {
                    Some((Some(code), Some(old))) if code == "ConditionalCheckFailed" => {
                        let caller =
                            &new.idempotency.as_ref().map(|r| r.caller.clone()).unwrap_or_else(|| c.owner.clone());
                        let key_value = new.idempotency.as_ref().map(|r| r.key.clone()).unwrap_or_default();
                        Ok(WriteOutcome::Replayed(parse_idempotency(&old, caller, &key_value)?))
                    }
                    _ => Ok(WriteOutcome::Stale),
                }
            }
            // The outcome is unknown: the conversation may exist, so its
            // members stay (without the conversation item they are invisible).
            Err(e) => return Err(e),
        };
        // The transaction was definitely cancelled: nothing refers to them.
        if !written_early.is_empty() {
            let _ = self.delete_items(written_early).await;
        }
        result
    }

    async fn update(&self, u: ConversationUpdate) -> Result<WriteOutcome, BackendError> {
        let mut set = "SET seq = :new, member_count = :mc".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(&u.conversation_id), META.into())))
            .condition_expression("seq = :expected AND attribute_not_exists(deleting)")
            .expression_attribute_values(":new", n(u.new_seq))
            .expression_attribute_values(":mc", n(u.member_count))
            .expression_attribute_values(":expected", n(u.expected_seq));
        if let Some(k) = &u.new_key {
            set.push_str(
                ", cur_oid = :oid, cur_seq = :kseq, cur_created_at = :kc, cur_scheme = :ks, cur_wrapped = :kw",
            );
            update = update
                .expression_attribute_values(":oid", s(k.objectid.as_str()))
                .expression_attribute_values(":kseq", n(k.seq))
                .expression_attribute_values(":kc", n(k.created_at.millis()))
                .expression_attribute_values(":ks", s(k.wrapped.scheme.clone()))
                .expression_attribute_values(":kw", AttributeValue::B(Blob::new(k.wrapped.blob.clone())));
        }
        let update = update.update_expression(set).build().map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(k) = &u.new_key {
            items.push(self.put(key_item(k), None)?);
        }
        if let Some(m) = &u.upsert_member {
            items.push(self.put(member_item(&u.conversation_id, m), None)?);
        }
        if let Some(jid) = &u.remove_member {
            let del = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(conv_pk(&u.conversation_id), member_sk(jid))))
                .build()
                .map_err(build_err)?;
            items.push(TransactWriteItem::builder().delete(del).build());
        }
        if let Some(rec) = &u.idempotency {
            items.extend(self.claim(rec)?);
        }
        match self.transact("dynamodb:TransactWriteItems", items).await? {
            Ok(()) => Ok(WriteOutcome::Applied),
            Err(reasons) => {
                let meta_failed =
                    reasons.first().is_some_and(|(code, _)| code.as_deref() == Some("ConditionalCheckFailed"));
                match (meta_failed, &u.idempotency, reasons.last()) {
                    (false, Some(rec), Some((Some(code), Some(old)))) if code == "ConditionalCheckFailed" => {
                        Ok(WriteOutcome::Replayed(parse_idempotency(old, &rec.caller, &rec.key)?))
                    }
                    _ => Ok(WriteOutcome::Stale),
                }
            }
        }
    }

    async fn delete(&self, id: &ConversationId) -> Result<bool, BackendError> {
        if !self.mark(id).await? {
            return Ok(false);
        }
        // Members first: without them no key row is readable, even if the
        // deletion of the keys is interrupted. Then the keys, and the
        // idempotency records (found through their pointers) that name them.
        let (members, rest): (Vec<Item>, Vec<Item>) = self
            .query_partition(conv_pk(id), None, false)
            .await?
            .into_iter()
            .filter(|item| get_s(item, "sk").is_ok_and(|sk| sk != META))
            .partition(|item| get_s(item, "sk").is_ok_and(|sk| sk.starts_with("M#")));
        let files = rest
            .iter()
            .filter(|item| get_s(item, "sk").is_ok_and(|sk| sk.starts_with("F#")))
            .map(|item| parse_file(item).map(|f| f.storage_key))
            .collect::<Result<Vec<_>, _>>()?;
        let row =
            |item: &Item| Ok::<_, BackendError>(key(get_s(item, "pk")?.to_owned(), get_s(item, "sk")?.to_owned()));
        self.delete_items(members.iter().map(row).collect::<Result<_, _>>()?).await?;
        let mut later: Vec<Item> = files.iter().map(storage_key_key).collect();
        for item in &rest {
            if let (Ok(pk), Ok(sk)) = (get_s(item, "target_pk"), get_s(item, "target_sk")) {
                later.push(key(pk.to_owned(), sk.to_owned()));
            }
            later.push(row(item)?);
        }
        // A transaction may name an item once: a record claimed twice (after
        // expiry) has two pointers.
        let mut seen = std::collections::HashSet::new();
        later.retain(|k| {
            seen.insert((get_s(k, "pk").unwrap_or_default().to_owned(), get_s(k, "sk").unwrap_or_default().to_owned()))
        });
        self.delete_items(later).await?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(id), META.into())))
            .send()
            .await
            .map_err(|e| classify("dynamodb:DeleteItem", e))?;
        Ok(true)
    }

    async fn conversation_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<Option<(Conversation, Option<Member>)>, BackendError> {
        let (meta, member) = self.meta_and_member(id, jid).await?;
        let Some(meta) = meta else { return Ok(None) };
        Ok(parse_conversation(&meta)?.map(|c| (c, member)))
    }

    async fn conversation_with_members(
        &self,
        id: &ConversationId,
    ) -> Result<Option<(Conversation, Vec<Member>)>, BackendError> {
        let items = self.query_partition(conv_pk(id), Some(META), false).await?;
        let mut conversation = None;
        let mut members = Vec::new();
        for item in &items {
            if get_s(item, "sk")? == META {
                match parse_conversation(item)? {
                    Some(c) => conversation = Some(c),
                    None => return Ok(None),
                }
            } else {
                members.push(parse_member(item)?);
            }
        }
        members.sort_by(|a, b| (a.joined_seq, a.jid.as_str()).cmp(&(b.joined_seq, b.jid.as_str())));
        Ok(conversation.map(|c| (c, members)))
    }

    async fn current_key_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError> {
        let (meta, member) = self.meta_and_member(id, jid).await?;
        let Some(meta) = meta else { return Ok((None, None)) };
        let Some(conversation) = parse_conversation(&meta)? else { return Ok((None, None)) };
        Ok((Some(parse_current_key(&meta, &conversation)?), member))
    }

    async fn key_for(
        &self,
        objectid: &ObjectId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError> {
        let (keys, mut members) = self.keys_for(std::slice::from_ref(objectid), jid).await?;
        Ok((keys.into_iter().next(), members.pop().map(|(_, m)| m)))
    }

    async fn keys_for(
        &self,
        objectids: &[ObjectId],
        jid: &BareJid,
    ) -> Result<(Vec<StoredKey>, Vec<(ConversationId, Member)>), BackendError> {
        // Per conversation, the caller's member item and the conversation item
        // in one snapshot (a conversation being shredded shows nothing); the
        // key rows with them when everything fits in one `TransactGetItems`.
        // Otherwise the key rows come from a `BatchGetItem` alongside, and a
        // key counts only if it is no newer than its conversation's snapshot
        // (`seq`): key rows never change once written, so such a key existed
        // when the membership was read, and the decision is the one the
        // snapshot would have made.
        let mut conversations: Vec<ConversationId> = objectids.iter().map(ObjectId::conversation_id).collect();
        conversations.sort();
        conversations.dedup();
        let pairs: Vec<Item> = conversations
            .iter()
            .flat_map(|c| [key(conv_pk(c), META.into()), key(conv_pk(c), member_sk(jid))])
            .collect();
        let key_rows: Vec<Item> = objectids.iter().map(|o| key(conv_pk(&o.conversation_id()), key_sk(o))).collect();
        let items = if pairs.len() + key_rows.len() <= MAX_TRANSACT_GET {
            self.snapshot(pairs.into_iter().chain(key_rows).collect()).await?
        } else {
            let (mut snapshots, rows) = tokio::try_join!(self.snapshots(pairs), self.batch_get_all(key_rows))?;
            snapshots.extend(rows);
            snapshots
        };
        let mut live: HashMap<ConversationId, u64> = HashMap::new();
        let mut keys = Vec::new();
        let mut members = Vec::new();
        for item in &items {
            let sk = get_s(item, "sk")?;
            if sk == META {
                if let Some(c) = parse_conversation(item)? {
                    live.insert(c.id, c.seq);
                }
            } else if sk.starts_with("M#") {
                let cid =
                    ConversationId::parse(get_s(item, "pk")?.trim_start_matches("C#")).map_err(|_| corrupt("pk"))?;
                members.push((cid, parse_member(item)?));
            } else {
                keys.push(parse_key(item)?);
            }
        }
        keys.retain(|k| live.get(&k.conversation_id).is_some_and(|seq| k.seq <= *seq));
        members.retain(|(c, _)| live.contains_key(c));
        Ok((keys, members))
    }

    async fn deletion_pending(&self, id: &ConversationId, owner: &BareJid) -> Result<bool, BackendError> {
        let items = self.snapshot(vec![key(conv_pk(id), META.into())]).await?;
        Ok(items.first().is_some_and(|item| {
            item.contains_key("deleting") && get_s(item, "owner").is_ok_and(|o| o == owner.as_str())
        }))
    }

    async fn warm_up(&self) {
        // Any answer will do — even AccessDenied travels over the connection
        // this establishes; the item does not exist.
        if let Err(e) = self.snapshot(vec![key("C#warm-up".into(), META.into())]).await {
            tracing::debug!(error = %e, "warm-up request failed");
        }
    }

    async fn idempotency_record(
        &self,
        caller: &BareJid,
        key_value: &str,
    ) -> Result<Option<IdempotencyRecord>, BackendError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(caller, key_value)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", e))?;
        out.item.map(|item| parse_idempotency(&item, caller, key_value)).transpose()
    }

    async fn add_file(&self, file: StoredFile, uploader: &BareJid) -> Result<WriteOutcome, BackendError> {
        let check = |sk: String, condition: &str| -> Result<TransactWriteItem, BackendError> {
            let c = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(conv_pk(&file.conversation_id), sk)))
                .condition_expression(condition)
                .build()
                .map_err(build_err)?;
            Ok(TransactWriteItem::builder().condition_check(c).build())
        };
        let items = vec![
            check(META.into(), "attribute_exists(pk) AND attribute_not_exists(deleting)")?,
            check(member_sk(uploader), "attribute_exists(pk)")?,
            self.put(file_item(&file), Some("attribute_not_exists(pk)"))?,
            self.put(storage_key_item(&file), Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact("dynamodb:TransactWriteItems", items).await? {
            Ok(()) => Ok(WriteOutcome::Applied),
            Err(_) => Ok(WriteOutcome::Stale),
        }
    }

    async fn file_for(
        &self,
        file_id: &FileId,
        jid: &BareJid,
    ) -> Result<(Option<StoredFile>, Option<Member>), BackendError> {
        let pk = conv_pk(&file_id.conversation_id());
        let items = self
            .snapshot(vec![key(pk.clone(), file_sk(file_id)), key(pk.clone(), member_sk(jid)), key(pk, META.into())])
            .await?;
        let (mut file, mut member, mut live) = (None, None, false);
        for item in &items {
            let sk = get_s(item, "sk")?;
            if sk == META {
                live = parse_conversation(item)?.is_some();
            } else if sk.starts_with("M#") {
                member = Some(parse_member(item)?);
            } else {
                file = Some(parse_file(item)?);
            }
        }
        // A conversation being shredded shows nothing.
        Ok(if live { (file, member) } else { (None, None) })
    }

    async fn file(&self, file_id: &FileId) -> Result<Option<StoredFile>, BackendError> {
        let pk = conv_pk(&file_id.conversation_id());
        let items = self.snapshot(vec![key(pk.clone(), file_sk(file_id)), key(pk, META.into())]).await?;
        let (mut file, mut live) = (None, false);
        for item in &items {
            if get_s(item, "sk")? == META {
                live = parse_conversation(item)?.is_some();
            } else {
                file = Some(parse_file(item)?);
            }
        }
        Ok(file.filter(|_| live))
    }

    async fn files_of(&self, id: &ConversationId) -> Result<Vec<StoredFile>, BackendError> {
        self.query_partition(conv_pk(id), Some("F#"), false).await?.iter().map(parse_file).collect()
    }

    async fn delete_file(&self, file: &StoredFile) -> Result<bool, BackendError> {
        let delete = |k: Item, condition: Option<&str>| -> Result<TransactWriteItem, BackendError> {
            let d = Delete::builder().table_name(&self.table).set_key(Some(k));
            let d = match condition {
                Some(c) => d.condition_expression(c),
                None => d,
            };
            Ok(TransactWriteItem::builder().delete(d.build().map_err(build_err)?).build())
        };
        let items = vec![
            delete(key(conv_pk(&file.conversation_id), file_sk(&file.file_id)), Some("attribute_exists(pk)"))?,
            delete(storage_key_key(&file.storage_key), None)?,
        ];
        // Cancelled: the file row was already gone.
        Ok(self.transact("dynamodb:TransactWriteItems", items).await?.is_ok())
    }

    async fn registered_storage_keys(&self, keys: &[StorageKey]) -> Result<HashSet<StorageKey>, BackendError> {
        let items = self.batch_get_all(keys.iter().map(storage_key_key).collect()).await?;
        items
            .iter()
            .map(|item| {
                let pk = get_s(item, "pk")?.strip_prefix("S#").ok_or_else(|| corrupt("pk"))?;
                StorageKey::parse(pk).map_err(|_| corrupt("pk"))
            })
            .collect()
    }

    async fn mark_deleting(&self, id: &ConversationId) -> Result<(), BackendError> {
        self.mark(id).await.map(|_| ())
    }
}
