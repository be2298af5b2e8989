//! Concurrent runs of the same operations from several tasks, on each
//! store, with the invariants checked on every answer and at the end:
//!
//! - no key is released to a member by a request that started after its
//!   removal returned, and never the keys its removal (or later changes)
//!   created;
//! - a `since_join` member never gets a key from before it joined;
//! - the conversation's `seq` only grows, and every key has its own `seq`;
//! - concurrent retries of one idempotent request create one object;
//! - a shred leaves no key, member, file row or file byte.
//!
//! On the memory store a hook yields a random number of times before every
//! store call, so each seed is another interleaving; SQLite and DynamoDB
//! interleave for real.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::adapters::memory::{Call, Hook, MemoryFiles, MemoryStore, MemoryWrapper};
use crate::adapters::memory_quotas::MemoryQuotas;
use crate::bare_jid::BareJid;
use crate::domain::model::{History, Role};
use crate::domain::{KeyService, Limits};
use crate::error::Error;
use crate::ids::{ObjectId, StorageKey};
use crate::ports::ConversationStore;

use super::properties::runtime;

/// A small, seeded random number generator (xorshift): reproducible runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A hook that yields 0–3 times before each call of the memory store.
fn shuffling(seed: u64) -> Hook {
    let state = Arc::new(AtomicU64::new(seed | 1));
    Arc::new(move |_: Call| {
        let state = state.clone();
        Box::pin(async move {
            let mut x = state.load(Ordering::Relaxed);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            state.store(x, Ordering::Relaxed);
            for _ in 0..(x % 4) {
                tokio::task::yield_now().await;
            }
        })
    })
}

struct Setup {
    keys: Arc<KeyService>,
    store: Arc<dyn ConversationStore>,
    files: Arc<MemoryFiles>,
    domain: String,
}

impl Setup {
    fn new(store: Arc<dyn ConversationStore>) -> Self {
        let files = Arc::new(MemoryFiles::new());
        let keys = Arc::new(KeyService::new(
            store.clone(),
            Arc::new(MemoryWrapper::new().unwrap()),
            files.clone(),
            Arc::new(MemoryQuotas::new()),
            Limits::default(),
        ));
        // Letters and digits only: a random id also holds `-` and `_`, and a
        // DNS label with `--` in its third and fourth places is refused by
        // JID normalization (IDNA hyphen rules), one Setup in about 1000.
        let tag: String = StorageKey::generate()
            .unwrap()
            .as_str()
            .to_ascii_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        Self { keys, store, files, domain: format!("c{tag}.concurrency.example") }
    }

    fn jid(&self, local: &str) -> BareJid {
        BareJid::normalize(&format!("{local}@{}", self.domain)).unwrap()
    }
}

/// A released key and when the request that got it started.
#[derive(Clone, Debug)]
struct Release {
    caller: BareJid,
    objectid: String,
    started: Instant,
}

/// Revocation and `since_join` under concurrent rotations, additions and
/// removals, with removed members hammering key reads throughout.
async fn revocation_holds(store: Arc<dyn ConversationStore>, seed: u64) -> Result<(), String> {
    let s = Setup::new(store);
    let owner = s.jid("owner");
    let victims: Vec<BareJid> = (0..2).map(|i| s.jid(&format!("victim{i}"))).collect();
    let admins: Vec<BareJid> = (0..2).map(|i| s.jid(&format!("admin{i}"))).collect();
    let mut members = victims.clone();
    members.extend(admins.iter().cloned());
    let created =
        s.keys.create_conversation(&owner, members, History::SinceJoin, None).await.map_err(|e| e.to_string())?;
    let cid = created.conversation_id.to_string();
    for a in &admins {
        s.keys.put_member(&owner, &cid, a, Role::Admin).await.map_err(|e| e.to_string())?;
    }
    let releases: Arc<Mutex<Vec<Release>>> = Arc::default();
    let removed: Arc<Mutex<BTreeMap<BareJid, (Instant, String)>>> = Arc::default();
    let known: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(vec![created.objectid.to_string()]));
    let seqs: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();

    // Readers: the victims and a late joiner read keys all along.
    let late = s.jid("late");
    for (i, reader) in victims.iter().chain([&late, &owner]).cloned().enumerate() {
        let (keys, cid, releases, known, seqs) =
            (s.keys.clone(), cid.clone(), releases.clone(), known.clone(), seqs.clone());
        let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(i as u64 + 1) | 1);
        tasks.spawn(async move {
            for _ in 0..40 {
                let started = Instant::now();
                let wanted: Vec<String> = known.lock().unwrap().clone();
                let got: Vec<String> = match rng.below(3) {
                    0 => {
                        keys.current_key(&reader, &cid).await.map(|k| vec![k.objectid.to_string()]).unwrap_or_default()
                    }
                    1 => match wanted.get(rng.below(wanted.len() as u64) as usize) {
                        Some(oid) => {
                            keys.key(&reader, oid).await.map(|k| vec![k.objectid.to_string()]).unwrap_or_default()
                        }
                        None => Vec::new(),
                    },
                    _ => keys
                        .keys(&reader, &wanted)
                        .await
                        .map(|(ks, _)| ks.into_iter().map(|k| k.objectid.to_string()).collect())
                        .unwrap_or_default(),
                };
                releases.lock().unwrap().extend(got.into_iter().map(|objectid| Release {
                    caller: reader.clone(),
                    objectid,
                    started,
                }));
                if let Ok(view) = keys.conversation(&reader, &cid).await {
                    seqs.lock().unwrap().push((i, view.conversation.seq));
                }
            }
        });
    }
    // Writers: admins rotate and churn other members; the owner removes the
    // victims and adds the late joiner, each at a random moment.
    for (i, admin) in admins.iter().cloned().enumerate() {
        let (keys, cid, known) = (s.keys.clone(), cid.clone(), known.clone());
        let churn = s.jid(&format!("churn{i}"));
        let mut rng = Rng(seed.wrapping_add(100 + i as u64) | 1);
        tasks.spawn(async move {
            for _ in 0..12 {
                match rng.below(3) {
                    0 => {
                        if let Ok(k) = keys.rotate_key(&admin, &cid, None).await {
                            known.lock().unwrap().push(k.objectid.to_string());
                        }
                    }
                    1 => {
                        let _ = keys.put_member(&admin, &cid, &churn, Role::Member).await;
                    }
                    _ => {
                        if let Ok(oid) = keys.remove_member(&admin, &cid, &churn).await {
                            known.lock().unwrap().push(oid.to_string());
                        }
                    }
                }
            }
        });
    }
    {
        let (keys, cid, removed, known, victims, late, owner) =
            (s.keys.clone(), cid.clone(), removed.clone(), known.clone(), victims.clone(), late.clone(), owner.clone());
        let mut rng = Rng(seed.wrapping_add(7) | 1);
        tasks.spawn(async move {
            for v in victims {
                for _ in 0..rng.below(6) {
                    tokio::task::yield_now().await;
                }
                match keys.remove_member(&owner, &cid, &v).await {
                    Ok(oid) => {
                        known.lock().unwrap().push(oid.to_string());
                        removed.lock().unwrap().insert(v, (Instant::now(), oid.to_string()));
                    }
                    Err(e) => panic!("removing {v}: {e}"),
                }
            }
            let _ = keys.put_member(&owner, &cid, &late, Role::Member).await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| format!("a task failed: {e}"))?;
    }

    // Key seqs, from the rows themselves: every key anyone heard of (the
    // current keys that additions made included).
    let mut heard: BTreeSet<String> = known.lock().unwrap().iter().cloned().collect();
    heard.extend(releases.lock().unwrap().iter().map(|r| r.objectid.clone()));
    let all: Vec<ObjectId> = heard.iter().filter_map(|o| ObjectId::parse(o).ok()).collect();
    let (rows, _) = s.store.keys_for(&all, &owner).await.map_err(|e| e.to_string())?;
    let seq_of: BTreeMap<String, u64> = rows.iter().map(|k| (k.objectid.to_string(), k.seq)).collect();
    let distinct: BTreeSet<u64> = seq_of.values().copied().collect();
    if distinct.len() != seq_of.len() {
        return Err(format!("two keys share a seq: {seq_of:?}"));
    }
    let removed = removed.lock().unwrap().clone();
    let view = s.keys.conversation(&owner, &cid).await.map_err(|e| e.to_string())?;
    let late_join = view.members.iter().find(|m| m.jid == late).map(|m| m.joined_seq);
    for r in releases.lock().unwrap().iter() {
        if let Some((at, created_by_removal)) = removed.get(&r.caller) {
            if r.started >= *at {
                return Err(format!(
                    "{} got {} from a request started after its removal returned",
                    r.caller, r.objectid
                ));
            }
            let (Some(key_seq), Some(removal_seq)) = (seq_of.get(&r.objectid), seq_of.get(created_by_removal)) else {
                return Err(format!("unknown key {} or {created_by_removal}", r.objectid));
            };
            if key_seq >= removal_seq {
                return Err(format!("{} got {} (seq {key_seq}), made by or after its removal", r.caller, r.objectid));
            }
        }
        if r.caller == late {
            let joined = late_join.ok_or("the late joiner got keys but is no member")?;
            if seq_of.get(&r.objectid).is_none_or(|s| *s < joined) {
                return Err(format!("the since_join member got {} from before it joined (seq {joined})", r.objectid));
            }
        }
    }
    // Each reader saw seq grow, never shrink.
    let mut last: BTreeMap<usize, u64> = BTreeMap::new();
    for (reader, seq) in seqs.lock().unwrap().iter() {
        if last.get(reader).is_some_and(|l| seq < l) {
            return Err(format!("reader {reader} saw seq go back to {seq}"));
        }
        last.insert(*reader, *seq);
    }
    if distinct.iter().max().copied() > Some(view.conversation.seq) {
        return Err("a key is newer than the conversation's seq".into());
    }
    Ok(())
}

/// Concurrent retries of one idempotent create (and of one rotation) make
/// one conversation (and one key).
async fn retries_act_once(store: Arc<dyn ConversationStore>) -> Result<(), String> {
    let s = Setup::new(store);
    let owner = s.jid("owner");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (keys, owner, bob) = (s.keys.clone(), owner.clone(), s.jid("bob"));
        tasks.spawn(async move { keys.create_conversation(&owner, vec![bob], History::Shared, Some("once")).await });
    }
    let mut made = BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        match r.map_err(|e| e.to_string())? {
            Ok(k) => {
                made.insert((k.conversation_id.to_string(), k.objectid.to_string()));
            }
            Err(Error::Contended) => {}
            Err(e) => return Err(format!("a retry failed: {e}")),
        }
    }
    if made.len() != 1 {
        return Err(format!("concurrent retries made {} conversations: {made:?}", made.len()));
    }
    let cid = made.into_iter().next().map(|(c, _)| c).unwrap_or_default();
    let before = s.keys.conversation(&owner, &cid).await.map_err(|e| e.to_string())?.conversation.seq;
    for _ in 0..6 {
        let (keys, owner, cid) = (s.keys.clone(), owner.clone(), cid.clone());
        tasks.spawn(async move { keys.rotate_key(&owner, &cid, Some("rotate-once")).await });
    }
    let mut rotated = BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        match r.map_err(|e| e.to_string())? {
            Ok(k) => {
                rotated.insert(k.objectid.to_string());
            }
            Err(Error::Contended) => {}
            Err(e) => return Err(format!("a rotation retry failed: {e}")),
        }
    }
    let after = s.keys.conversation(&owner, &cid).await.map_err(|e| e.to_string())?.conversation.seq;
    if rotated.len() != 1 || after != before + 1 {
        return Err(format!("concurrent rotation retries made {} keys, seq {before} -> {after}", rotated.len()));
    }
    Ok(())
}

/// A shred while members fetch keys, register files and upload: afterwards
/// no key row, member, file row or stored byte of the conversation is left.
async fn a_shred_leaves_nothing(store: Arc<dyn ConversationStore>, seed: u64) -> Result<(), String> {
    let s = Setup::new(store);
    let (owner, bob) = (s.jid("owner"), s.jid("bob"));
    let created = s
        .keys
        .create_conversation(&owner, vec![bob.clone()], History::Shared, None)
        .await
        .map_err(|e| e.to_string())?;
    let cid = created.conversation_id.to_string();
    let storage: Arc<Mutex<Vec<StorageKey>>> = Arc::default();
    let objectids: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(vec![created.objectid.to_string()]));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..3u64 {
        let (keys, files, cid, bob, storage, objectids) =
            (s.keys.clone(), s.files.clone(), cid.clone(), bob.clone(), storage.clone(), objectids.clone());
        let mut rng = Rng(seed.wrapping_add(i * 17) | 1);
        tasks.spawn(async move {
            for _ in 0..20 {
                match rng.below(3) {
                    0 => {
                        if let Ok(g) = keys.create_file(&bob, &cid, "text/plain", 3).await {
                            storage.lock().unwrap().push(g.file.storage_key.clone());
                            let key = g.file.storage_key.clone();
                            let files = files.clone();
                            let _ = keys
                                .accept_upload(&g.file.file_id, &g.file.storage_key, |_| async move {
                                    files.put(&key, b"abc".to_vec(), false).map_err(|_| Error::NotFound)
                                })
                                .await;
                        }
                    }
                    1 => {
                        if let Ok(k) = keys.rotate_key(&bob, &cid, None).await {
                            objectids.lock().unwrap().push(k.objectid.to_string());
                        }
                    }
                    _ => {
                        let _ = keys.current_key(&bob, &cid).await;
                    }
                }
            }
        });
    }
    {
        let (keys, cid, owner) = (s.keys.clone(), cid.clone(), owner.clone());
        let mut rng = Rng(seed | 1);
        tasks.spawn(async move {
            for _ in 0..rng.below(20) {
                tokio::task::yield_now().await;
            }
            keys.delete_conversation(&owner, &cid).await.expect("the owner shreds");
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| format!("a task failed: {e}"))?;
    }
    let id = crate::ids::ConversationId::parse(&cid).map_err(|e| e.to_string())?;
    if s.store.conversation_with_members(&id).await.map_err(|e| e.to_string())?.is_some() {
        return Err("the conversation is still there".into());
    }
    if !s.store.files_of(&id).await.map_err(|e| e.to_string())?.is_empty() {
        return Err("file rows are left".into());
    }
    let all: Vec<ObjectId> = objectids.lock().unwrap().iter().filter_map(|o| ObjectId::parse(o).ok()).collect();
    let (rows, members) = s.store.keys_for(&all, &owner).await.map_err(|e| e.to_string())?;
    if !rows.is_empty() || !members.is_empty() {
        return Err(format!("{} key rows and {} memberships are left", rows.len(), members.len()));
    }
    let keys = storage.lock().unwrap().clone();
    if !s.store.registered_storage_keys(&keys).await.map_err(|e| e.to_string())?.is_empty() {
        return Err("storage keys are still registered".into());
    }
    let stored = s.files.stored();
    if keys.iter().any(|k| stored.contains(k)) {
        return Err(format!("bytes of {} files are left", keys.iter().filter(|k| stored.contains(*k)).count()));
    }
    Ok(())
}

/// Runs every scenario on stores made by `store`, for `seeds` seeds.
fn scenarios(name: &str, seeds: u64, store: impl Fn(u64) -> Arc<dyn ConversationStore>) {
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        for (scenario, result) in [
            ("revocation", runtime().block_on(revocation_holds(store(seed), seed))),
            ("idempotent retries", runtime().block_on(retries_act_once(store(seed)))),
            ("shred", runtime().block_on(a_shred_leaves_nothing(store(seed), seed))),
        ] {
            if let Err(e) = result {
                failures.push(format!("{name}, {scenario}, seed {seed}: {e}"));
            }
        }
    }
    println!("concurrency on {name}: {seeds} seeds x 3 scenarios");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn concurrent_runs_keep_the_invariants_on_the_memory_store() {
    scenarios("the memory store (shuffled)", 24, |seed| {
        let store = MemoryStore::new();
        store.set_hook(Some(shuffling(seed)));
        Arc::new(store)
    });
}

#[cfg(feature = "embedded")]
#[test]
fn concurrent_runs_keep_the_invariants_on_sqlite() {
    let root = std::env::temp_dir().join(format!("keysrv-concurrency-{}", std::process::id()));
    let n = std::sync::atomic::AtomicUsize::new(0);
    scenarios("SQLite", 4, |_| {
        let dir = root.join(n.fetch_add(1, Ordering::Relaxed).to_string());
        std::fs::create_dir_all(&dir).unwrap();
        Arc::new(crate::adapters::sqlite::SqliteStore::open(&dir.join("c.sqlite3")).unwrap())
    });
    let _ = std::fs::remove_dir_all(&root);
}

#[cfg(feature = "aws")]
#[test]
fn concurrent_runs_keep_the_invariants_on_dynamodb() {
    let Some(store) = super::properties::dynamo_from_env() else {
        println!("DynamoDB concurrency run skipped: it runs on the AWS leg (KEYSRV_TEST_BACKEND=aws)");
        return;
    };
    scenarios("DynamoDB (emulator)", 2, |_| store.clone());
}
