//! Where the SDK keeps the conversation keys it fetched: by default an
//! in-memory, bounded, time-limited cache whose keys are wiped when evicted
//! or dropped; or a [`KeyCache`] the app implements (iOS Keychain, Android
//! Keystore-backed storage), used through the same time limit.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use keysrv_client::KeyObject;
use keysrv_client::key::{KEY_LEN, Key};
use time::OffsetDateTime;
use zeroize::{Zeroize, Zeroizing};

/// A conversation key as an app-provided [`KeyCache`] stores it. `key` is
/// the raw 32-byte AES-256 key: store it only where the platform protects
/// it at rest (Keychain, Keystore-wrapped storage), never in plain files,
/// logs, backups or analytics.
#[derive(Clone, uniffi::Record)]
pub struct StoredKey {
    pub objectid: String,
    pub conversation_id: String,
    pub key: Vec<u8>,
    /// When keysrv created the key.
    pub created_at: SystemTime,
    /// When this device cached it: the SDK treats it as absent once it is
    /// older than `ClientConfig.key_cache_ttl_secs`.
    pub cached_at: SystemTime,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("objectid", &self.objectid)
            .field("conversation_id", &self.conversation_id)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A key cache the app implements, to keep keys across restarts in storage
/// the platform protects (see docs/SDK.md, "Keys at rest"). Keys never
/// change, so a stored key is always right; the SDK asks again after
/// `key_cache_ttl_secs` so that a removal reaches the device. Called from
/// the SDK's threads, possibly concurrently: implementations must be
/// thread-safe and should not block for long.
#[uniffi::export(with_foreign)]
pub trait KeyCache: Send + Sync {
    /// The key named `objectid`, if stored.
    fn get(&self, objectid: String) -> Option<StoredKey>;
    /// Stores a key (replacing one with the same objectid).
    fn put(&self, key: StoredKey);
    /// Forgets one key.
    fn remove(&self, objectid: String);
    /// Forgets every key of a conversation (it was deleted, or the user left).
    fn remove_conversation(&self, conversation_id: String);
    /// Forgets every key (sign-out).
    fn clear(&self);
}

struct Entry {
    key: KeyObject,
    inserted: Instant,
    tick: u64,
}

/// The default: bounded (least recently used go first), time-limited,
/// in memory only; `KeyObject`s wipe their bytes when dropped.
pub(crate) struct Memory {
    capacity: usize,
    ttl: Option<Duration>,
    entries: HashMap<String, Entry>,
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl Memory {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn get(&mut self, objectid: &str, now: Instant) -> Option<KeyObject> {
        let expired = match (self.entries.get(objectid), self.ttl) {
            (None, _) => return None,
            (Some(e), Some(ttl)) => now.saturating_duration_since(e.inserted) >= ttl,
            (Some(_), None) => false,
        };
        if expired {
            self.remove(objectid);
            return None;
        }
        let tick = self.next_tick();
        let entry = self.entries.get_mut(objectid)?;
        self.order.remove(&entry.tick);
        entry.tick = tick;
        self.order.insert(tick, objectid.to_owned());
        Some(entry.key.clone())
    }

    fn insert(&mut self, key: KeyObject, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        let tick = self.next_tick();
        let objectid = key.objectid.clone();
        if let Some(old) = self.entries.insert(objectid.clone(), Entry { key, inserted: now, tick }) {
            self.order.remove(&old.tick);
        }
        self.order.insert(tick, objectid);
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.entries.remove(&oldest);
        }
    }

    fn remove(&mut self, objectid: &str) {
        if let Some(e) = self.entries.remove(objectid) {
            self.order.remove(&e.tick);
        }
    }

    fn remove_conversation(&mut self, conversation_id: &str) {
        let ids: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.key.conversation_id == conversation_id)
            .map(|(k, _)| k.clone())
            .collect();
        for id in ids {
            self.remove(&id);
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }
}

/// The cache a client uses.
pub(crate) enum Keys {
    Memory(Mutex<Memory>),
    App { cache: Arc<dyn KeyCache>, ttl: Option<Duration> },
}

impl Keys {
    pub fn memory(capacity: usize, ttl: Option<Duration>) -> Self {
        Self::Memory(Mutex::new(Memory { capacity, ttl, entries: HashMap::new(), order: BTreeMap::new(), tick: 0 }))
    }

    pub fn app(cache: Arc<dyn KeyCache>, ttl: Option<Duration>) -> Self {
        Self::App { cache, ttl }
    }

    fn mem(m: &Mutex<Memory>) -> MutexGuard<'_, Memory> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, objectid: &str) -> Option<KeyObject> {
        match self {
            Self::Memory(m) => Self::mem(m).get(objectid, Instant::now()),
            Self::App { cache, ttl } => {
                let mut stored = cache.get(objectid.to_owned())?;
                let fresh = match ttl {
                    None => true,
                    Some(ttl) => stored.cached_at.elapsed().is_ok_and(|age| age < *ttl),
                };
                // A key stored under another name, or not 32 bytes, is not
                // this key: ask keysrv instead.
                let key = if fresh && stored.objectid == objectid { to_key_object(&stored) } else { None };
                stored.key.zeroize();
                if key.is_none() {
                    cache.remove(objectid.to_owned());
                }
                key
            }
        }
    }

    pub fn put(&self, key: &KeyObject) {
        match self {
            Self::Memory(m) => Self::mem(m).insert(key.clone(), Instant::now()),
            Self::App { cache, .. } => cache.put(StoredKey {
                objectid: key.objectid.clone(),
                conversation_id: key.conversation_id.clone(),
                key: key.key.expose().to_vec(),
                created_at: key.created_at.into(),
                cached_at: SystemTime::now(),
            }),
        }
    }

    pub fn remove(&self, objectid: &str) {
        match self {
            Self::Memory(m) => Self::mem(m).remove(objectid),
            Self::App { cache, .. } => cache.remove(objectid.to_owned()),
        }
    }

    pub fn remove_conversation(&self, conversation_id: &str) {
        match self {
            Self::Memory(m) => Self::mem(m).remove_conversation(conversation_id),
            Self::App { cache, .. } => cache.remove_conversation(conversation_id.to_owned()),
        }
    }

    pub fn clear(&self) {
        match self {
            Self::Memory(m) => Self::mem(m).clear(),
            Self::App { cache, .. } => cache.clear(),
        }
    }

    /// Keys in the built-in cache (`None` with an app-provided one).
    pub fn len(&self) -> Option<usize> {
        match self {
            Self::Memory(m) => Some(Self::mem(m).entries.len()),
            Self::App { .. } => None,
        }
    }
}

fn to_key_object(stored: &StoredKey) -> Option<KeyObject> {
    let bytes: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(stored.key.as_slice().try_into().ok()?);
    Some(KeyObject {
        objectid: stored.objectid.clone(),
        conversation_id: stored.conversation_id.clone(),
        key: Key::from_bytes(*bytes),
        created_at: OffsetDateTime::from(stored.created_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(conv: &str, id: &str) -> KeyObject {
        KeyObject {
            objectid: format!("{conv}.{id}"),
            conversation_id: conv.into(),
            key: Key::from_bytes([3; KEY_LEN]),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn memory_is_bounded_expires_and_forgets() {
        let keys = Keys::memory(2, Some(Duration::from_secs(60)));
        keys.put(&k("a", "1"));
        keys.put(&k("a", "2"));
        assert!(keys.get("a.1").is_some());
        keys.put(&k("b", "1"));
        assert_eq!(keys.len(), Some(2));
        assert!(keys.get("a.2").is_none(), "the least recently used key goes first");
        keys.remove_conversation("a");
        assert_eq!(keys.len(), Some(1));
        keys.clear();
        assert_eq!(keys.len(), Some(0));
        let Keys::Memory(m) = &keys else { unreachable!() };
        let now = Instant::now();
        m.lock().unwrap().insert(k("c", "1"), now);
        assert!(m.lock().unwrap().get("c.1", now + Duration::from_secs(60)).is_none(), "expired");
        let off = Keys::memory(0, None);
        off.put(&k("a", "1"));
        assert_eq!(off.len(), Some(0));
    }

    #[derive(Default)]
    struct Store(Mutex<HashMap<String, StoredKey>>);

    impl KeyCache for Store {
        fn get(&self, objectid: String) -> Option<StoredKey> {
            self.0.lock().unwrap().get(&objectid).cloned()
        }
        fn put(&self, key: StoredKey) {
            self.0.lock().unwrap().insert(key.objectid.clone(), key);
        }
        fn remove(&self, objectid: String) {
            self.0.lock().unwrap().remove(&objectid);
        }
        fn remove_conversation(&self, conversation_id: String) {
            self.0.lock().unwrap().retain(|_, k| k.conversation_id != conversation_id);
        }
        fn clear(&self) {
            self.0.lock().unwrap().clear();
        }
    }

    #[test]
    fn app_cache_round_trips_and_drops_stale_or_wrong_keys() {
        let store = Arc::new(Store::default());
        let keys = Keys::app(store.clone(), Some(Duration::from_secs(60)));
        keys.put(&k("a", "1"));
        let got = keys.get("a.1").expect("stored");
        assert_eq!((got.objectid.as_str(), got.conversation_id.as_str()), ("a.1", "a"));
        assert_eq!(got.key.expose(), &[3; KEY_LEN]);
        assert_eq!(keys.len(), None);
        // Stale: dropped from the app's store too.
        store.0.lock().unwrap().get_mut("a.1").unwrap().cached_at = SystemTime::now() - Duration::from_secs(61);
        assert!(keys.get("a.1").is_none());
        assert!(store.0.lock().unwrap().is_empty());
        // Wrong length, or filed under another name.
        keys.put(&k("a", "2"));
        store.0.lock().unwrap().get_mut("a.2").unwrap().key.truncate(16);
        assert!(keys.get("a.2").is_none());
        keys.put(&k("a", "3"));
        let moved = store.0.lock().unwrap().remove("a.3").unwrap();
        store.0.lock().unwrap().insert("a.4".into(), moved);
        assert!(keys.get("a.4").is_none());
        assert!(format!("{:?}", k("a", "1")).contains("redacted"));
    }
}
