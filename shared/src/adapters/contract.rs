//! The contract of `ConversationStore`: one suite of port-level tests, run
//! against the in-memory store, SQLite and DynamoDB (the emulator, on the
//! AWS leg), so the three cannot drift apart. Each test says what every
//! store must do, in the port's own terms.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use crate::bare_jid::BareJid;
use crate::domain::model::{Conversation, History, IdempotencyRecord, Member, Role, StoredFile, StoredKey, WrappedKey};
use crate::domain::tests::properties::runtime;
use crate::ids::{ConversationId, FileId, ObjectId, StorageKey};
use crate::media_type::MediaType;
use crate::ports::{ConversationStore, ConversationUpdate, NewConversation, WriteOutcome};
use crate::timestamp::Timestamp;

type Store = Arc<dyn ConversationStore>;

/// JIDs of their own for each test: the DynamoDB table is shared.
struct Names {
    domain: String,
}

impl Names {
    fn new() -> Self {
        let tag = StorageKey::generate().unwrap().as_str().to_ascii_lowercase().replace('_', "-");
        Self { domain: format!("c{tag}.contract.example") }
    }

    fn jid(&self, local: &str) -> BareJid {
        BareJid::normalize(&format!("{local}@{}", self.domain)).unwrap()
    }
}

fn wrapped(tag: u8) -> WrappedKey {
    WrappedKey { scheme: "contract-v1".into(), blob: vec![tag; 40] }
}

fn key(c: &ConversationId, seq: u64, history: History) -> StoredKey {
    StoredKey {
        objectid: ObjectId::generate(c).unwrap(),
        conversation_id: c.clone(),
        seq,
        history,
        created_at: Timestamp::from_millis(1_700_000_000_000 + seq as i64),
        wrapped: wrapped(seq as u8),
    }
}

fn member(jid: BareJid, role: Role, seq: u64) -> Member {
    Member { jid, role, joined_at: Timestamp::from_millis(1_700_000_000_000), joined_seq: seq }
}

/// A conversation of `owner` and `others`, with its first key.
fn new_conversation(owner: &BareJid, others: &[BareJid], history: History) -> NewConversation {
    let id = ConversationId::generate().unwrap();
    let first = key(&id, 1, history);
    let mut members = vec![member(owner.clone(), Role::Owner, 1)];
    members.extend(others.iter().map(|o| member(o.clone(), Role::Member, 1)));
    NewConversation {
        conversation: Conversation {
            id,
            owner: owner.clone(),
            history,
            created_at: Timestamp::from_millis(1_700_000_000_000),
            seq: 1,
            current_objectid: first.objectid.clone(),
            member_count: members.len() as u32,
        },
        members,
        key: first,
        idempotency: None,
    }
}

fn update(c: &Conversation, new_key: Option<StoredKey>) -> ConversationUpdate {
    ConversationUpdate {
        conversation_id: c.id.clone(),
        expected_seq: c.seq,
        new_seq: c.seq + 1,
        member_count: c.member_count,
        new_key,
        upsert_member: None,
        remove_member: None,
        idempotency: None,
    }
}

fn file(c: &ConversationId, uploader: &BareJid, seq: u64) -> StoredFile {
    StoredFile {
        file_id: FileId::generate(c).unwrap(),
        conversation_id: c.clone(),
        storage_key: StorageKey::generate().unwrap(),
        uploader: uploader.clone(),
        media_type: MediaType::parse("text/plain").unwrap(),
        size: 3,
        seq,
        history: History::Shared,
        created_at: Timestamp::now(),
    }
}

fn record(caller: &BareJid, key: &str, c: &ConversationId, oid: &ObjectId, fp: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        caller: caller.clone(),
        key: key.into(),
        fingerprint: fp.into(),
        conversation_id: c.clone(),
        objectid: oid.clone(),
        expires_at: Timestamp::now().plus_secs(3600),
    }
}

async fn applied(outcome: WriteOutcome) {
    assert!(matches!(outcome, WriteOutcome::Applied), "{outcome:?}");
}

/// Creating writes the conversation, its members and its first key, all
/// readable at once by every read of the port; strangers read no membership.
pub async fn create_then_read(s: Store) {
    let n = Names::new();
    let (owner, bob, eve) = (n.jid("owner"), n.jid("bob"), n.jid("eve"));
    let new = new_conversation(&owner, std::slice::from_ref(&bob), History::Shared);
    let (id, first) = (new.conversation.id.clone(), new.key.clone());
    let conversation = new.conversation.clone();
    applied(s.create(new).await.unwrap()).await;

    let (c, m) = s.conversation_for(&id, &bob).await.unwrap().expect("the conversation");
    assert_eq!(c, conversation);
    assert_eq!(m.map(|m| m.role), Some(Role::Member));
    let (_, m) = s.conversation_for(&id, &eve).await.unwrap().expect("the conversation");
    assert_eq!(m, None, "a stranger is no member");
    let (c, members) = s.conversation_with_members(&id).await.unwrap().expect("the conversation");
    assert_eq!(c.seq, 1);
    let jids: Vec<&BareJid> = members.iter().map(|m| &m.jid).collect();
    let mut sorted = vec![&bob, &owner];
    sorted.sort();
    assert_eq!(jids, sorted, "members in (joined_seq, jid) order");
    assert_eq!(
        s.current_key_for(&id, &bob).await.unwrap(),
        (Some(first.clone()), members.iter().find(|m| m.jid == bob).cloned())
    );
    let (k, m) = s.key_for(&first.objectid, &owner).await.unwrap();
    assert_eq!(k, Some(first.clone()));
    assert_eq!(m.map(|m| m.role), Some(Role::Owner));
    let (k, m) = s.key_for(&first.objectid, &eve).await.unwrap();
    assert_eq!((k, m), (Some(first), None), "the key row, and no membership for a stranger");
    let unknown = ConversationId::generate().unwrap();
    assert!(s.conversation_for(&unknown, &owner).await.unwrap().is_none());
    assert!(s.conversation_with_members(&unknown).await.unwrap().is_none());
    assert_eq!(s.key_for(&ObjectId::generate(&unknown).unwrap(), &owner).await.unwrap(), (None, None));
}

/// A second conversation under an existing id writes nothing.
pub async fn an_existing_id_is_stale(s: Store) {
    let n = Names::new();
    let new = new_conversation(&n.jid("owner"), &[], History::Shared);
    let mut again = new_conversation(&n.jid("mallory"), &[], History::SinceJoin);
    again.conversation.id = new.conversation.id.clone();
    again.key = key(&new.conversation.id, 1, History::SinceJoin);
    again.conversation.current_objectid = again.key.objectid.clone();
    let id = new.conversation.id.clone();
    applied(s.create(new).await.unwrap()).await;
    assert!(matches!(s.create(again).await.unwrap(), WriteOutcome::Stale));
    let (c, members) = s.conversation_with_members(&id).await.unwrap().unwrap();
    assert_eq!((c.owner.clone(), c.history, members.len()), (n.jid("owner"), History::Shared, 1));
}

/// An update applies only at the `seq` it read; it moves the current key,
/// adds, re-roles (keeping the join) and removes members.
pub async fn updates_are_conditional_on_seq(s: Store) {
    let n = Names::new();
    let (owner, bob, carol) = (n.jid("owner"), n.jid("bob"), n.jid("carol"));
    let new = new_conversation(&owner, std::slice::from_ref(&bob), History::SinceJoin);
    let id = new.conversation.id.clone();
    applied(s.create(new).await.unwrap()).await;
    let (c, _) = s.conversation_for(&id, &owner).await.unwrap().unwrap();

    let mut stale = update(&c, Some(key(&id, 2, History::SinceJoin)));
    stale.expected_seq = 7;
    stale.new_seq = 8;
    assert!(matches!(s.update(stale).await.unwrap(), WriteOutcome::Stale));
    assert_eq!(s.conversation_for(&id, &owner).await.unwrap().unwrap().0, c, "a stale update wrote nothing");

    let k2 = key(&id, 2, History::SinceJoin);
    let mut add = update(&c, Some(k2.clone()));
    add.upsert_member = Some(member(carol.clone(), Role::Member, 2));
    add.member_count = 3;
    applied(s.update(add).await.unwrap()).await;
    let (c, m) = s.conversation_for(&id, &carol).await.unwrap().unwrap();
    assert_eq!((c.seq, c.current_objectid.clone(), c.member_count), (2, k2.objectid.clone(), 3));
    assert_eq!(m.map(|m| (m.role, m.joined_seq)), Some((Role::Member, 2)));
    assert_eq!(s.current_key_for(&id, &carol).await.unwrap().0, Some(k2.clone()));

    // A role change rewrites the member with its join kept (the domain passes it).
    let mut promote = update(&c, None);
    promote.upsert_member = Some(member(carol.clone(), Role::Admin, 2));
    applied(s.update(promote).await.unwrap()).await;
    let (c, m) = s.conversation_for(&id, &carol).await.unwrap().unwrap();
    assert_eq!((c.seq, c.current_objectid.clone()), (3, k2.objectid.clone()), "no new key, seq moved");
    assert_eq!(m.map(|m| (m.role, m.joined_seq)), Some((Role::Admin, 2)));

    let k4 = key(&id, 4, History::SinceJoin);
    let mut remove = update(&c, Some(k4.clone()));
    remove.remove_member = Some(bob.clone());
    remove.member_count = 2;
    applied(s.update(remove).await.unwrap()).await;
    assert_eq!(s.conversation_for(&id, &bob).await.unwrap().unwrap().1, None);
    let (keys, members) = s.keys_for(&[k2.objectid.clone(), k4.objectid.clone()], &bob).await.unwrap();
    assert_eq!((keys.len(), members.len()), (2, 0), "key rows stay; the removed member has no membership");
    let (_, members) = s.conversation_with_members(&id).await.unwrap().unwrap();
    assert_eq!(members.len(), 2);
}

/// An idempotency key is claimed in the same write: a second claim of it
/// writes nothing and returns the first record.
pub async fn idempotency_claims_are_atomic(s: Store) {
    let n = Names::new();
    let owner = n.jid("owner");
    let mut new = new_conversation(&owner, &[], History::Shared);
    let (id, oid) = (new.conversation.id.clone(), new.key.objectid.clone());
    new.idempotency = Some(record(&owner, "k1", &id, &oid, "create"));
    applied(s.create(new).await.unwrap()).await;
    let stored = s.idempotency_record(&owner, "k1").await.unwrap().expect("the record");
    assert_eq!(
        (stored.conversation_id.clone(), stored.objectid.clone(), stored.fingerprint.as_str()),
        (id.clone(), oid.clone(), "create")
    );
    assert!(s.idempotency_record(&n.jid("other"), "k1").await.unwrap().is_none(), "records are per caller");

    let mut second = new_conversation(&owner, &[], History::Shared);
    let second_id = second.conversation.id.clone();
    second.idempotency = Some(record(&owner, "k1", &second_id, &second.key.objectid, "create"));
    match s.create(second).await.unwrap() {
        WriteOutcome::Replayed(r) => assert_eq!(r.objectid, oid),
        other => panic!("{other:?}"),
    }
    assert!(s.conversation_for(&second_id, &owner).await.unwrap().is_none(), "a replayed create wrote nothing");

    let (c, _) = s.conversation_for(&id, &owner).await.unwrap().unwrap();
    let mut rotate = update(&c, Some(key(&id, 2, History::Shared)));
    rotate.idempotency = Some(record(&owner, "k1", &id, &oid, "rotate"));
    assert!(matches!(s.update(rotate).await.unwrap(), WriteOutcome::Replayed(_)));
    assert_eq!(s.conversation_for(&id, &owner).await.unwrap().unwrap().0.seq, 1, "a replayed update wrote nothing");
}

/// The first step of a shred hides the conversation from every read and
/// refuses every write; `delete` then removes every row, idempotency
/// records naming it included.
pub async fn a_marked_conversation_is_gone_for_reads_and_writes(s: Store) {
    let n = Names::new();
    let (owner, bob) = (n.jid("owner"), n.jid("bob"));
    let mut new = new_conversation(&owner, std::slice::from_ref(&bob), History::Shared);
    let (id, oid) = (new.conversation.id.clone(), new.key.objectid.clone());
    new.idempotency = Some(record(&owner, "k", &id, &oid, "create"));
    applied(s.create(new).await.unwrap()).await;
    let f = file(&id, &bob, 1);
    applied(s.add_file(f.clone(), &bob).await.unwrap()).await;
    let (c, _) = s.conversation_for(&id, &owner).await.unwrap().unwrap();

    s.mark_deleting(&id).await.unwrap();
    assert!(s.conversation_for(&id, &owner).await.unwrap().is_none());
    assert!(s.conversation_with_members(&id).await.unwrap().is_none());
    assert_eq!(s.current_key_for(&id, &owner).await.unwrap(), (None, None));
    assert_eq!(s.key_for(&oid, &owner).await.unwrap(), (None, None));
    assert_eq!(s.keys_for(std::slice::from_ref(&oid), &owner).await.unwrap(), (Vec::new(), Vec::new()));
    assert_eq!(s.file_for(&f.file_id, &bob).await.unwrap(), (None, None));
    assert_eq!(s.file(&f.file_id).await.unwrap(), None);
    assert!(matches!(s.update(update(&c, Some(key(&id, 2, History::Shared)))).await.unwrap(), WriteOutcome::Stale));
    assert!(matches!(s.add_file(file(&id, &bob, 1), &bob).await.unwrap(), WriteOutcome::Stale));
    assert!(s.deletion_pending(&id, &owner).await.unwrap());
    assert!(!s.deletion_pending(&id, &bob).await.unwrap(), "only its owner finishes a shred");
    assert_eq!(s.files_of(&id).await.unwrap(), vec![f.clone()], "the shred still finds its files");
    assert!(s.registered_storage_keys(std::slice::from_ref(&f.storage_key)).await.unwrap().contains(&f.storage_key));

    assert!(s.delete(&id).await.unwrap());
    assert!(!s.delete(&id).await.unwrap(), "a second delete finds nothing");
    assert!(!s.deletion_pending(&id, &owner).await.unwrap());
    assert!(s.files_of(&id).await.unwrap().is_empty());
    assert!(s.registered_storage_keys(std::slice::from_ref(&f.storage_key)).await.unwrap().is_empty());
    assert!(s.idempotency_record(&owner, "k").await.unwrap().is_none(), "records naming it go with it");
    s.mark_deleting(&ConversationId::generate().unwrap()).await.unwrap();
}

/// Files: registered only by a member of a live conversation, readable
/// with the reader's membership, deleted once, looked up by storage key.
pub async fn files_follow_membership(s: Store) {
    let n = Names::new();
    let (owner, bob, eve) = (n.jid("owner"), n.jid("bob"), n.jid("eve"));
    let new = new_conversation(&owner, std::slice::from_ref(&bob), History::Shared);
    let id = new.conversation.id.clone();
    applied(s.create(new).await.unwrap()).await;
    let f = file(&id, &bob, 1);
    applied(s.add_file(f.clone(), &bob).await.unwrap()).await;
    assert!(
        matches!(s.add_file(file(&id, &eve, 1), &eve).await.unwrap(), WriteOutcome::Stale),
        "a stranger registers nothing"
    );
    let unknown = ConversationId::generate().unwrap();
    assert!(matches!(s.add_file(file(&unknown, &bob, 1), &bob).await.unwrap(), WriteOutcome::Stale));

    let (got, m) = s.file_for(&f.file_id, &owner).await.unwrap();
    assert_eq!((got, m.map(|m| m.role)), (Some(f.clone()), Some(Role::Owner)));
    assert_eq!(s.file_for(&f.file_id, &eve).await.unwrap(), (Some(f.clone()), None));
    assert_eq!(s.file(&f.file_id).await.unwrap(), Some(f.clone()));
    assert_eq!(s.files_of(&id).await.unwrap(), vec![f.clone()]);
    let other = StorageKey::generate().unwrap();
    let live = s.registered_storage_keys(&[f.storage_key.clone(), other]).await.unwrap();
    assert_eq!(live, HashSet::from([f.storage_key.clone()]));

    assert!(s.delete_file(&f).await.unwrap());
    assert!(!s.delete_file(&f).await.unwrap(), "deleted once");
    assert_eq!(s.file(&f.file_id).await.unwrap(), None);
    assert!(s.registered_storage_keys(std::slice::from_ref(&f.storage_key)).await.unwrap().is_empty());
}

/// A batch read returns the key rows that exist and the caller's
/// memberships of their conversations, whatever mix it is asked for.
pub async fn batches_span_conversations(s: Store) {
    let n = Names::new();
    let (owner, bob) = (n.jid("owner"), n.jid("bob"));
    let mut wanted = Vec::new();
    let mut ids = Vec::new();
    for i in 0..3 {
        let others = if i == 0 { vec![bob.clone()] } else { Vec::new() };
        let new = new_conversation(&owner, &others, History::Shared);
        let id = new.conversation.id.clone();
        wanted.push(new.key.objectid.clone());
        applied(s.create(new).await.unwrap()).await;
        let (c, _) = s.conversation_for(&id, &owner).await.unwrap().unwrap();
        let k = key(&id, 2, History::Shared);
        wanted.push(k.objectid.clone());
        applied(s.update(update(&c, Some(k))).await.unwrap()).await;
        ids.push(id);
    }
    wanted.push(ObjectId::generate(&ids[0]).unwrap());
    wanted.push(ObjectId::generate(&ConversationId::generate().unwrap()).unwrap());
    let (keys, members) = s.keys_for(&wanted, &owner).await.unwrap();
    assert_eq!(keys.len(), 6, "the six key rows that exist");
    assert_eq!(members.len(), 3);
    let (keys, members) = s.keys_for(&wanted, &bob).await.unwrap();
    assert_eq!(keys.len(), 6);
    assert_eq!(members.iter().map(|(c, _)| c).collect::<Vec<_>>(), vec![&ids[0]], "bob is a member of the first only");
}

/// More members than one DynamoDB transaction holds (100 items) are
/// written all the same, and read back.
pub async fn large_conversations_are_written_whole(s: Store) {
    let n = Names::new();
    let owner = n.jid("owner");
    let others: Vec<BareJid> = (0..150).map(|i| n.jid(&format!("m{i}"))).collect();
    let new = new_conversation(&owner, &others, History::Shared);
    let id = new.conversation.id.clone();
    applied(s.create(new).await.unwrap()).await;
    let (c, members) = s.conversation_with_members(&id).await.unwrap().unwrap();
    assert_eq!((c.member_count, members.len()), (151, 151));
    assert!(s.conversation_for(&id, &others[149]).await.unwrap().unwrap().1.is_some());
    s.mark_deleting(&id).await.unwrap();
    assert!(s.delete(&id).await.unwrap());
    assert!(s.conversation_with_members(&id).await.unwrap().is_none());
}

fn run<F, Fut>(store: Store, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    runtime().block_on(test(store));
}

/// One `#[test]` per contract test, for a store made by `$store`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[test]
            fn $name() {
                super::run(std::sync::Arc::new(crate::adapters::memory::MemoryStore::new()), super::$name);
            })*
        }

        #[cfg(feature = "embedded")]
        mod sqlite {
            $(#[test]
            fn $name() {
                let dir = std::env::temp_dir()
                    .join(format!("keysrv-contract-{}-{}", std::process::id(), stringify!($name)));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                let store = crate::adapters::sqlite::SqliteStore::open(&dir.join("contract.sqlite3")).unwrap();
                super::run(std::sync::Arc::new(store), super::$name);
                let _ = std::fs::remove_dir_all(&dir);
            })*
        }

        #[cfg(feature = "aws")]
        mod dynamodb {
            $(#[test]
            fn $name() {
                match crate::domain::tests::properties::dynamo_from_env() {
                    Some(store) => super::run(store, super::$name),
                    None => println!(
                        "DynamoDB contract test {} skipped: it runs on the AWS leg (KEYSRV_TEST_BACKEND=aws)",
                        stringify!($name)
                    ),
                }
            })*
        }
    };
}

contract!(
    create_then_read,
    an_existing_id_is_stale,
    updates_are_conditional_on_seq,
    idempotency_claims_are_atomic,
    a_marked_conversation_is_gone_for_reads_and_writes,
    files_follow_membership,
    batches_span_conversations,
    large_conversations_are_written_whole,
);
