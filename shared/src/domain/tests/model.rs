//! The rules of keysrv as plain data, written without looking at how the
//! service implements them: who may hold which key, who may see which file,
//! what each change does, what exists after a shred. Random operation
//! sequences run against the real service (on each store) and against this
//! model, and every answer must agree.
//!
//! Things are named by handles (the n-th conversation, key or file created),
//! which the driver maps to the ids the service made up.

use std::collections::{BTreeMap, BTreeSet};

/// The callers: a small pool, so that members, removed members, re-added
/// members and strangers all occur.
pub const CALLERS: usize = 5;
/// Members per conversation, owner included, in the model runs (small, so
/// the limit is hit).
pub const MAX_MEMBERS: usize = 4;
/// The largest file the model runs allow.
pub const MAX_FILE: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

/// One API operation. Indices pick a caller (`% CALLERS`) and a thing
/// (`% (count + 1)`: the extra value names nothing that exists).
#[derive(Clone, Debug)]
pub enum Op {
    Create { caller: usize, members: Vec<usize>, since_join: bool, idem: Option<u8> },
    View { caller: usize, conv: usize },
    Current { caller: usize, conv: usize },
    Rotate { caller: usize, conv: usize, idem: Option<u8> },
    Put { caller: usize, conv: usize, target: usize, admin: bool },
    Remove { caller: usize, conv: usize, target: usize },
    Key { caller: usize, key: usize },
    Batch { caller: usize, keys: Vec<usize> },
    Register { caller: usize, conv: usize, big: bool },
    Upload { file: usize },
    GetFile { caller: usize, file: usize },
    DeleteFile { caller: usize, file: usize },
    Shred { caller: usize, conv: usize },
}

/// What an operation must answer. `Ok` carries what can be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A key released: its handle.
    Key(usize),
    /// A batch: the handles released and the positions reported missing.
    Batch {
        released: BTreeSet<usize>,
        missing: usize,
    },
    /// A conversation view: members with roles, and `seq`.
    View {
        members: BTreeMap<usize, Role>,
        seq: u64,
    },
    /// A member changed (or left as it was): its role.
    Member(Role),
    /// A removal: the new current key's handle.
    Removed(usize),
    /// A file registered or granted: its handle.
    File(usize),
    /// Done, nothing to compare.
    Done,
    NotFound,
    Forbidden,
    Conflict,
    BadRequest,
    TooLarge,
}

#[derive(Clone, Debug)]
pub struct Conv {
    pub owner: usize,
    pub since_join: bool,
    pub seq: u64,
    /// Member → (role, the `seq` it joined at).
    pub members: BTreeMap<usize, (Role, u64)>,
    pub current: usize,
    pub live: bool,
}

#[derive(Clone, Debug)]
pub struct Key {
    pub conv: usize,
    pub seq: u64,
}

#[derive(Clone, Debug)]
pub struct File {
    pub conv: usize,
    pub seq: u64,
    pub uploader: usize,
    pub live: bool,
    pub uploaded: bool,
}

/// An `Idempotency-Key` record: what the request was, and what it made.
#[derive(Clone, Debug)]
struct Record {
    fingerprint: String,
    key: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Model {
    pub convs: Vec<Conv>,
    pub keys: Vec<Key>,
    pub files: Vec<File>,
    idem: BTreeMap<(usize, u8), Record>,
}

/// Picks the `i`-th of `n` things; `None` is the extra value, "unknown".
pub fn pick(i: usize, n: usize) -> Option<usize> {
    let i = i % (n + 1);
    (i < n).then_some(i)
}

impl Model {
    fn member(&self, conv: usize, caller: usize) -> Option<(Role, u64)> {
        let c = &self.convs[conv];
        if c.live { c.members.get(&caller).copied() } else { None }
    }

    /// Under `since_join` a member reads what was made at or after its join.
    fn may_read(&self, conv: usize, caller: usize, seq: u64) -> bool {
        match self.member(conv, caller) {
            None => false,
            Some((_, joined)) => !self.convs[conv].since_join || seq >= joined,
        }
    }

    fn readable_key(&self, caller: usize, key: usize) -> bool {
        let k = &self.keys[key];
        self.may_read(k.conv, caller, k.seq)
    }

    fn readable_file(&self, caller: usize, file: usize) -> bool {
        let f = &self.files[file];
        f.live && self.may_read(f.conv, caller, f.seq)
    }

    fn new_key(&mut self, conv: usize) -> usize {
        let seq = self.convs[conv].seq;
        self.keys.push(Key { conv, seq });
        self.convs[conv].current = self.keys.len() - 1;
        self.keys.len() - 1
    }

    /// Replays an `Idempotency-Key` if it names an earlier request: the
    /// earlier key, as the caller may read it now; a different request under
    /// the same key is a conflict.
    fn replay(&self, caller: usize, idem: Option<u8>, fingerprint: &str) -> Option<Expect> {
        let record = self.idem.get(&(caller, idem?))?;
        Some(if record.fingerprint != fingerprint {
            Expect::Conflict
        } else if self.readable_key(caller, record.key) {
            Expect::Key(record.key)
        } else {
            Expect::NotFound
        })
    }

    /// What `op` must answer, with the model updated as the service must be.
    /// `conv_id` names a conversation for fingerprints (the service hashes
    /// its id).
    pub fn apply(&mut self, op: &Op) -> Expect {
        match op {
            Op::Create { caller, members, since_join, idem } => {
                let caller = caller % CALLERS;
                let others: BTreeSet<usize> = members.iter().map(|m| m % CALLERS).filter(|m| *m != caller).collect();
                if others.len() + 1 > MAX_MEMBERS {
                    return Expect::BadRequest;
                }
                let fingerprint = format!("create {since_join} {others:?}");
                if let Some(e) = self.replay(caller, *idem, &fingerprint) {
                    return e;
                }
                let mut m: BTreeMap<usize, (Role, u64)> = others.iter().map(|o| (*o, (Role::Member, 1))).collect();
                m.insert(caller, (Role::Owner, 1));
                self.convs.push(Conv {
                    owner: caller,
                    since_join: *since_join,
                    seq: 1,
                    members: m,
                    current: 0,
                    live: true,
                });
                let key = self.new_key(self.convs.len() - 1);
                if let Some(i) = idem {
                    self.idem.insert((caller, *i), Record { fingerprint, key });
                }
                Expect::Key(key)
            }
            Op::View { caller, conv } => {
                let caller = caller % CALLERS;
                match pick(*conv, self.convs.len()).filter(|c| self.member(*c, caller).is_some()) {
                    None => Expect::NotFound,
                    Some(c) => {
                        let c = &self.convs[c];
                        Expect::View { members: c.members.iter().map(|(m, (r, _))| (*m, *r)).collect(), seq: c.seq }
                    }
                }
            }
            Op::Current { caller, conv } => {
                let caller = caller % CALLERS;
                match pick(*conv, self.convs.len()).filter(|c| self.member(*c, caller).is_some()) {
                    None => Expect::NotFound,
                    Some(c) => Expect::Key(self.convs[c].current),
                }
            }
            Op::Rotate { caller, conv, idem } => {
                let caller = caller % CALLERS;
                let picked = pick(*conv, self.convs.len());
                let fingerprint = format!("rotate {picked:?}");
                if let Some(e) = self.replay(caller, *idem, &fingerprint) {
                    return e;
                }
                match picked.filter(|c| self.member(*c, caller).is_some()) {
                    None => Expect::NotFound,
                    Some(c) => {
                        self.convs[c].seq += 1;
                        let key = self.new_key(c);
                        if let Some(i) = idem {
                            self.idem.insert((caller, *i), Record { fingerprint, key });
                        }
                        Expect::Key(key)
                    }
                }
            }
            Op::Put { caller, conv, target, admin } => {
                let (caller, target) = (caller % CALLERS, target % CALLERS);
                let role = if *admin { Role::Admin } else { Role::Member };
                let Some(c) = pick(*conv, self.convs.len()) else { return Expect::NotFound };
                let Some((actor, _)) = self.member(c, caller) else { return Expect::NotFound };
                let existing = self.member(c, target);
                if actor == Role::Member {
                    return Expect::Forbidden;
                }
                match existing {
                    Some((Role::Owner, _)) => return Expect::Conflict,
                    Some((Role::Admin, _)) if role != Role::Admin && actor != Role::Owner => return Expect::Forbidden,
                    _ => {}
                }
                if role == Role::Admin && actor != Role::Owner {
                    return Expect::Forbidden;
                }
                let conv = &mut self.convs[c];
                match existing {
                    Some((r, _)) if r == role => Expect::Member(role),
                    Some((_, joined)) => {
                        conv.seq += 1;
                        conv.members.insert(target, (role, joined));
                        Expect::Member(role)
                    }
                    None if conv.members.len() >= MAX_MEMBERS => Expect::Conflict,
                    None => {
                        conv.seq += 1;
                        let seq = conv.seq;
                        conv.members.insert(target, (role, seq));
                        if conv.since_join {
                            self.new_key(c);
                        }
                        Expect::Member(role)
                    }
                }
            }
            Op::Remove { caller, conv, target } => {
                let (caller, target) = (caller % CALLERS, target % CALLERS);
                let Some(c) = pick(*conv, self.convs.len()) else { return Expect::NotFound };
                let Some((actor, _)) = self.member(c, caller) else { return Expect::NotFound };
                let Some((role, _)) = self.member(c, target) else { return Expect::NotFound };
                if role == Role::Owner {
                    return Expect::Conflict;
                }
                if caller != target && (actor == Role::Member || (role == Role::Admin && actor != Role::Owner)) {
                    return Expect::Forbidden;
                }
                self.convs[c].seq += 1;
                self.convs[c].members.remove(&target);
                Expect::Removed(self.new_key(c))
            }
            Op::Key { caller, key } => {
                let caller = caller % CALLERS;
                match pick(*key, self.keys.len()).filter(|k| self.readable_key(caller, *k)) {
                    None => Expect::NotFound,
                    Some(k) => Expect::Key(k),
                }
            }
            Op::Batch { caller, keys } => {
                let caller = caller % CALLERS;
                let mut released = BTreeSet::new();
                let mut seen = BTreeSet::new();
                let mut missing = 0;
                for k in keys {
                    let picked = pick(*k, self.keys.len());
                    // Asked twice is asked once (an unknown id is one id).
                    if !seen.insert(picked) {
                        continue;
                    }
                    match picked.filter(|k| self.readable_key(caller, *k)) {
                        Some(k) => {
                            released.insert(k);
                        }
                        None => missing += 1,
                    }
                }
                Expect::Batch { released, missing }
            }
            Op::Register { caller, conv, big } => {
                let caller = caller % CALLERS;
                if *big {
                    return Expect::TooLarge;
                }
                match pick(*conv, self.convs.len()).filter(|c| self.member(*c, caller).is_some()) {
                    None => Expect::NotFound,
                    Some(c) => {
                        let seq = self.convs[c].seq;
                        self.files.push(File { conv: c, seq, uploader: caller, live: true, uploaded: false });
                        Expect::File(self.files.len() - 1)
                    }
                }
            }
            Op::Upload { file } => match pick(*file, self.files.len()) {
                Some(f) if self.files[f].live && self.convs[self.files[f].conv].live => {
                    self.files[f].uploaded = true;
                    Expect::Done
                }
                _ => Expect::NotFound,
            },
            Op::GetFile { caller, file } => {
                let caller = caller % CALLERS;
                match pick(*file, self.files.len()).filter(|f| self.readable_file(caller, *f)) {
                    None => Expect::NotFound,
                    Some(f) => Expect::File(f),
                }
            }
            Op::DeleteFile { caller, file } => {
                let caller = caller % CALLERS;
                let Some(f) = pick(*file, self.files.len()).filter(|f| self.readable_file(caller, *f)) else {
                    return Expect::NotFound;
                };
                let file = &self.files[f];
                let role = self.member(file.conv, caller).map(|(r, _)| r);
                if file.uploader != caller && role == Some(Role::Member) {
                    return Expect::Forbidden;
                }
                self.files[f].live = false;
                Expect::Done
            }
            Op::Shred { caller, conv } => {
                let caller = caller % CALLERS;
                let Some(c) = pick(*conv, self.convs.len()) else { return Expect::NotFound };
                match self.member(c, caller) {
                    None => Expect::NotFound,
                    Some((role, _)) if role != Role::Owner => Expect::Forbidden,
                    Some(_) => {
                        self.convs[c].live = false;
                        self.convs[c].members.clear();
                        for f in self.files.iter_mut().filter(|f| f.conv == c) {
                            f.live = false;
                        }
                        let keys: BTreeSet<usize> =
                            self.keys.iter().enumerate().filter(|(_, k)| k.conv == c).map(|(i, _)| i).collect();
                        self.idem.retain(|_, r| !keys.contains(&r.key));
                        Expect::Done
                    }
                }
            }
        }
    }

    /// The files whose bytes must be stored now.
    pub fn stored_files(&self) -> BTreeSet<usize> {
        self.files.iter().enumerate().filter(|(_, f)| f.live && f.uploaded).map(|(i, _)| i).collect()
    }
}
