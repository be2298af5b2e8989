//! Model-based property tests: random sequences of operations — create,
//! add, remove and re-add members, change roles, rotate, fetch keys and
//! batches, register, upload, fetch and delete files, shred, replay
//! idempotent requests — by random callers (members, removed members,
//! strangers), run against the real `KeyService` on a store and against the
//! model (`model.rs`); every answer must agree, and after every step the
//! stored bytes must be exactly those of live, uploaded files. A failing
//! sequence shrinks to a minimal one, which proptest keeps in
//! `shared/proptest-regressions/` and replays first from then on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::collection::vec;
use proptest::prelude::*;

use super::model::{self, CALLERS, Expect, MAX_FILE, MAX_MEMBERS, Model, Op, pick};
use crate::adapters::memory::{MemoryFiles, MemoryStore, MemoryWrapper};
use crate::adapters::memory_quotas::MemoryQuotas;
use crate::bare_jid::BareJid;
use crate::domain::model::{History, Role};
use crate::domain::{KeyService, Limits};
use crate::error::Error;
use crate::ids::{ConversationId, FileId, ObjectId, StorageKey};
use crate::ports::ConversationStore;

fn op() -> impl Strategy<Value = Op> {
    let who = 0..CALLERS;
    let thing = 0usize..8;
    let idem = proptest::option::of(0u8..3);
    prop_oneof![
        3 => (who.clone(), vec(0..CALLERS, 0..5), any::<bool>(), idem.clone())
            .prop_map(|(caller, members, since_join, idem)| Op::Create { caller, members, since_join, idem }),
        1 => (who.clone(), thing.clone()).prop_map(|(caller, conv)| Op::View { caller, conv }),
        2 => (who.clone(), thing.clone()).prop_map(|(caller, conv)| Op::Current { caller, conv }),
        2 => (who.clone(), thing.clone(), idem).prop_map(|(caller, conv, idem)| Op::Rotate { caller, conv, idem }),
        3 => (who.clone(), thing.clone(), 0..CALLERS, any::<bool>())
            .prop_map(|(caller, conv, target, admin)| Op::Put { caller, conv, target, admin }),
        3 => (who.clone(), thing.clone(), 0..CALLERS).prop_map(|(caller, conv, target)| Op::Remove { caller, conv, target }),
        3 => (who.clone(), 0usize..16).prop_map(|(caller, key)| Op::Key { caller, key }),
        2 => (who.clone(), vec(0usize..16, 0..6)).prop_map(|(caller, keys)| Op::Batch { caller, keys }),
        2 => (who.clone(), thing.clone(), proptest::bool::weighted(0.1))
            .prop_map(|(caller, conv, big)| Op::Register { caller, conv, big }),
        2 => thing.clone().prop_map(|file| Op::Upload { file }),
        2 => (who.clone(), thing.clone()).prop_map(|(caller, file)| Op::GetFile { caller, file }),
        1 => (who.clone(), thing.clone()).prop_map(|(caller, file)| Op::DeleteFile { caller, file }),
        1 => (who, thing).prop_map(|(caller, conv)| Op::Shred { caller, conv }),
    ]
}

/// The service on one store, the model, and the ids the service made up
/// for the model's handles.
struct Run {
    keys: KeyService,
    files: Arc<MemoryFiles>,
    model: Model,
    callers: Vec<BareJid>,
    convs: Vec<String>,
    objectids: Vec<String>,
    file_ids: Vec<(FileId, StorageKey)>,
    /// Every key released so far: the same objectid is always the same key.
    released: HashMap<String, [u8; 32]>,
    unknown_conv: String,
    unknown_key: String,
    unknown_file: (FileId, StorageKey),
}

impl Run {
    fn new(store: Arc<dyn ConversationStore>, domain: &str) -> Self {
        let files = Arc::new(MemoryFiles::new());
        let limits = Limits { max_members: MAX_MEMBERS, max_file_bytes: MAX_FILE, ..Limits::default() };
        let keys = KeyService::new(
            store,
            Arc::new(MemoryWrapper::new().unwrap()),
            files.clone(),
            Arc::new(MemoryQuotas::new()),
            limits,
        );
        let unknown = ConversationId::generate().unwrap();
        Self {
            keys,
            files,
            model: Model::default(),
            callers: (0..CALLERS).map(|i| BareJid::normalize(&format!("u{i}@{domain}")).unwrap()).collect(),
            convs: Vec::new(),
            objectids: Vec::new(),
            file_ids: Vec::new(),
            released: HashMap::new(),
            unknown_key: ObjectId::generate(&unknown).unwrap().to_string(),
            unknown_file: (FileId::generate(&unknown).unwrap(), StorageKey::generate().unwrap()),
            unknown_conv: unknown.to_string(),
        }
    }

    fn caller(&self, i: usize) -> &BareJid {
        &self.callers[i % CALLERS]
    }

    fn conv(&self, i: usize) -> &str {
        pick(i, self.convs.len()).map_or(&self.unknown_conv, |c| &self.convs[c])
    }

    fn objectid(&self, i: usize) -> &str {
        pick(i, self.objectids.len()).map_or(&self.unknown_key, |k| &self.objectids[k])
    }

    fn file(&self, i: usize) -> &(FileId, StorageKey) {
        pick(i, self.file_ids.len()).map_or(&self.unknown_file, |f| &self.file_ids[f])
    }

    /// Records a released key: the model's handle must name this objectid,
    /// and the bytes must be what they were every other time.
    fn key(&mut self, handle: usize, k: &crate::domain::model::ReleasedKey) -> Result<(), String> {
        if handle == self.objectids.len() {
            self.objectids.push(k.objectid.to_string());
        }
        if self.objectids[handle] != k.objectid.as_str() {
            return Err(format!("released {} where the model expects {}", k.objectid, self.objectids[handle]));
        }
        let bytes = *k.key.expose();
        if *self.released.entry(k.objectid.to_string()).or_insert(bytes) != bytes {
            return Err(format!("{} was released with other bytes than before", k.objectid));
        }
        Ok(())
    }

    /// The current key of a conversation the model just rotated without the
    /// response naming it (adding a member under `since_join`).
    async fn learn_current(&mut self, conv: usize) -> Result<(), String> {
        let owner = self.callers[self.model.convs[conv].owner].clone();
        let view = self.keys.conversation(&owner, &self.convs[conv]).await.map_err(|e| e.to_string())?;
        self.objectids.push(view.conversation.current_objectid.to_string());
        Ok(())
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        let keys_before = self.model.keys.len();
        let expect = self.model.apply(op);
        let got: Result<Outcome, Error> = match op {
            Op::Create { caller, members, since_join, idem } => {
                let members = members.iter().map(|m| self.caller(*m).clone()).collect();
                let history = if *since_join { History::SinceJoin } else { History::Shared };
                let idem = idem.map(|i| format!("idem-{i}"));
                self.keys.create_conversation(self.caller(*caller), members, history, idem.as_deref()).await.map(|k| {
                    if let Expect::Key(h) = expect
                        && h == self.model.keys.len() - 1
                        && h >= keys_before
                    {
                        self.convs.push(k.conversation_id.to_string());
                    }
                    Outcome::Key(k)
                })
            }
            Op::View { caller, conv } => {
                self.keys.conversation(self.caller(*caller), self.conv(*conv)).await.map(|v| {
                    let members = v.members.iter().map(|m| (m.jid.clone(), m.role)).collect();
                    Outcome::View(members, v.conversation.seq)
                })
            }
            Op::Current { caller, conv } => {
                self.keys.current_key(self.caller(*caller), self.conv(*conv)).await.map(Outcome::Key)
            }
            Op::Rotate { caller, conv, idem } => {
                let idem = idem.map(|i| format!("idem-{i}"));
                self.keys.rotate_key(self.caller(*caller), self.conv(*conv), idem.as_deref()).await.map(Outcome::Key)
            }
            Op::Put { caller, conv, target, admin } => {
                let role = if *admin { Role::Admin } else { Role::Member };
                let target = self.caller(*target).clone();
                self.keys
                    .put_member(self.caller(*caller), self.conv(*conv), &target, role)
                    .await
                    .map(|m| Outcome::Member(m.role))
            }
            Op::Remove { caller, conv, target } => {
                let target = self.caller(*target).clone();
                self.keys.remove_member(self.caller(*caller), self.conv(*conv), &target).await.map(Outcome::Objectid)
            }
            Op::Key { caller, key } => self.keys.key(self.caller(*caller), self.objectid(*key)).await.map(Outcome::Key),
            Op::Batch { caller, keys } => {
                let ids: Vec<String> = keys.iter().map(|k| self.objectid(*k).to_owned()).collect();
                self.keys.keys(self.caller(*caller), &ids).await.map(|(k, m)| Outcome::Batch(k, m.len()))
            }
            Op::Register { caller, conv, big } => {
                let size = if *big { MAX_FILE + 1 } else { 3 };
                self.keys.create_file(self.caller(*caller), self.conv(*conv), "text/plain", size).await.map(|g| {
                    if matches!(expect, Expect::File(h) if h == self.file_ids.len()) {
                        self.file_ids.push((g.file.file_id.clone(), g.file.storage_key.clone()));
                    }
                    Outcome::File(g.file.file_id)
                })
            }
            Op::Upload { file } => {
                let (id, key) = self.file(*file).clone();
                let files = self.files.clone();
                self.keys
                    .accept_upload(&id, &key, |_| async {
                        files.put(&key, b"abc".to_vec(), false).map_err(|_| Error::NotFound)
                    })
                    .await
                    .map(|_| Outcome::Done)
            }
            Op::GetFile { caller, file } => {
                let id = self.file(*file).0.to_string();
                self.keys.file(self.caller(*caller), &id).await.map(|g| Outcome::File(g.file.file_id))
            }
            Op::DeleteFile { caller, file } => {
                let id = self.file(*file).0.to_string();
                self.keys.delete_file(self.caller(*caller), &id).await.map(|()| Outcome::Done)
            }
            Op::Shred { caller, conv } => {
                self.keys.delete_conversation(self.caller(*caller), self.conv(*conv)).await.map(|()| Outcome::Done)
            }
        };
        self.compare(&expect, got)?;
        // A `since_join` add rotated without naming the new key.
        if self.model.keys.len() > self.objectids.len()
            && let Op::Put { conv, .. } = op
            && let Some(c) = pick(*conv, self.convs.len())
        {
            self.learn_current(c).await?;
        }
        if self.model.keys.len() != self.objectids.len() {
            return Err(format!(
                "the model has {} keys, the run knows {}",
                self.model.keys.len(),
                self.objectids.len()
            ));
        }
        // Stored bytes: exactly those of live, uploaded files.
        let want: BTreeSet<StorageKey> =
            self.model.stored_files().into_iter().map(|f| self.file_ids[f].1.clone()).collect();
        let stored = self.files.stored();
        if stored != want {
            return Err(format!("stored bytes {stored:?}, the model says {want:?}"));
        }
        Ok(())
    }

    fn compare(&mut self, expect: &Expect, got: Result<Outcome, Error>) -> Result<(), String> {
        let mismatch =
            |got: &dyn std::fmt::Debug| Err(format!("the model expects {expect:?}, the service answered {got:?}"));
        match (expect, got) {
            (Expect::Key(h), Ok(Outcome::Key(k))) => self.key(*h, &k),
            (Expect::Removed(h), Ok(Outcome::Objectid(o))) => {
                if *h == self.objectids.len() {
                    self.objectids.push(o.to_string());
                }
                if self.objectids[*h] == o.as_str() { Ok(()) } else { mismatch(&o) }
            }
            (Expect::Batch { released, missing }, Ok(Outcome::Batch(keys, got_missing))) => {
                let want: BTreeSet<&str> = released.iter().map(|h| self.objectids[*h].as_str()).collect();
                let got: BTreeSet<String> = keys.iter().map(|k| k.objectid.to_string()).collect();
                if got.iter().map(String::as_str).collect::<BTreeSet<_>>() != want || got_missing != *missing {
                    return mismatch(&(got, got_missing));
                }
                for k in &keys {
                    let h = self.objectids.iter().position(|o| o == k.objectid.as_str()).unwrap_or(usize::MAX);
                    self.key(h, k)?;
                }
                Ok(())
            }
            (Expect::View { members, seq }, Ok(Outcome::View(got, got_seq))) => {
                let want: BTreeMap<BareJid, Role> =
                    members.iter().map(|(m, r)| (self.callers[*m].clone(), role(*r))).collect();
                if got != want || got_seq != *seq { mismatch(&(got, got_seq)) } else { Ok(()) }
            }
            (Expect::Member(r), Ok(Outcome::Member(got))) if role(*r) == got => Ok(()),
            (Expect::File(h), Ok(Outcome::File(id))) if self.file_ids.get(*h).is_some_and(|f| f.0 == id) => Ok(()),
            (Expect::Done, Ok(Outcome::Done)) => Ok(()),
            (Expect::NotFound, Err(Error::NotFound)) => Ok(()),
            (Expect::Forbidden, Err(Error::NotAllowed(_))) => Ok(()),
            (Expect::Conflict, Err(Error::Conflict(_))) => Ok(()),
            (Expect::BadRequest, Err(Error::Invalid(_))) => Ok(()),
            (Expect::TooLarge, Err(Error::TooLarge(_))) => Ok(()),
            (_, got) => mismatch(&got),
        }
    }
}

fn role(r: model::Role) -> Role {
    match r {
        model::Role::Owner => Role::Owner,
        model::Role::Admin => Role::Admin,
        model::Role::Member => Role::Member,
    }
}

#[derive(Debug)]
enum Outcome {
    Key(crate::domain::model::ReleasedKey),
    Batch(Vec<crate::domain::model::ReleasedKey>, usize),
    View(BTreeMap<BareJid, Role>, u64),
    Member(Role),
    Objectid(ObjectId),
    File(FileId),
    Done,
}

/// One runtime for every sequence: a store's client (DynamoDB's connection
/// pool) lives as long as the runtime it was made on.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
    })
}

/// Runs one sequence on a fresh service over `store`; the first
/// disagreement with the model, with the step it happened at.
pub(crate) fn run_sequence(store: Arc<dyn ConversationStore>, domain: &str, ops: &[Op]) -> Result<(), String> {
    runtime().block_on(async {
        let mut run = Run::new(store, domain);
        for (i, op) in ops.iter().enumerate() {
            run.step(op).await.map_err(|e| format!("step {i} {op:?}: {e}"))?;
        }
        Ok(())
    })
}

/// Runs `cases` random sequences of up to `max_ops` operations on stores
/// made by `store`, shrinking a failure to a minimal sequence (which proptest
/// keeps in `shared/proptest-regressions/` and replays first from then on).
/// Prints how many sequences and operations ran.
pub(crate) fn check_model(name: &str, cases: u32, max_ops: usize, store: impl Fn() -> Arc<dyn ConversationStore>) {
    use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
    let config = Config {
        cases,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..Config::default()
    };
    let (sequences, operations) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut runner = TestRunner::new(config);
    let domain =
        format!("r{}.model.example", StorageKey::generate().unwrap().as_str().to_ascii_lowercase().replace('_', "-"));
    let result = runner.run(&vec(op(), 1..max_ops), |ops| {
        // Callers of their own per sequence: a shared store (DynamoDB) keeps
        // the idempotency records of earlier ones.
        let n = sequences.fetch_add(1, Ordering::Relaxed);
        operations.fetch_add(ops.len(), Ordering::Relaxed);
        run_sequence(store(), &format!("s{n}.{domain}"), &ops).map_err(TestCaseError::fail)
    });
    println!(
        "model-based run on {name}: {} sequences, {} operations (shrinking included)",
        sequences.load(Ordering::Relaxed),
        operations.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

#[test]
fn the_service_on_the_memory_store_follows_the_model() {
    check_model("the memory store", 256, 48, || Arc::new(MemoryStore::new()));
}

#[cfg(feature = "embedded")]
#[test]
fn the_service_on_sqlite_follows_the_model() {
    let root = std::env::temp_dir().join(format!("keysrv-model-{}", std::process::id()));
    let n = AtomicUsize::new(0);
    check_model("SQLite", 64, 40, || {
        let dir = root.join(n.fetch_add(1, Ordering::Relaxed).to_string());
        std::fs::create_dir_all(&dir).unwrap();
        Arc::new(crate::adapters::sqlite::SqliteStore::open(&dir.join("model.sqlite3")).unwrap())
    });
    let _ = std::fs::remove_dir_all(&root);
}

/// The emulator's DynamoDB table, on the AWS leg of the tests
/// (`KEYSRV_TEST_BACKEND=aws` with the emulator's environment); `None`
/// elsewhere (the caller says it skipped).
#[cfg(feature = "aws")]
pub(crate) fn dynamo_from_env() -> Option<Arc<dyn ConversationStore>> {
    if std::env::var("KEYSRV_TEST_BACKEND").as_deref() != Ok("aws") {
        return None;
    }
    let config = crate::config::Config::from_env_with(&[("KEYSRV_BACKEND", "aws")])
        .expect("the emulator's environment (target/emulator/env)");
    let crate::config::Backend::Aws(settings) = config.backend else { unreachable!("asked for aws") };
    let sdk = runtime().block_on(aws_config::defaults(aws_config::BehaviorVersion::latest()).load());
    Some(Arc::new(crate::adapters::dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), settings.table)))
}

#[cfg(feature = "aws")]
#[test]
fn the_service_on_dynamodb_follows_the_model() {
    let Some(store) = dynamo_from_env() else {
        println!("DynamoDB model run skipped: it runs on the AWS leg (KEYSRV_TEST_BACKEND=aws, make unit-aws)");
        return;
    };
    check_model("DynamoDB (emulator)", 48, 32, || store.clone());
}
