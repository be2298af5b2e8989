//! The client's caches: bounded (least recently used entries go first),
//! optionally time-limited, never written to disk by the client itself.
//! [`KeyCache`] holds conversation keys — in memory, wiped when evicted or
//! dropped (`Key` zeroizes itself), or in a [`KeyStore`] the app provides
//! (iOS Keychain, Android Keystore-backed storage) under the same time
//! limit. [`Lru`] holds the conversations' member lists and the chat
//! bindings.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::key::{KEY_LEN, Key, KeyObject};

/// A conversation key as a [`KeyStore`] keeps it. `key` holds the raw
/// 32-byte AES-256 key and is wiped when dropped: store it only where the
/// platform protects it at rest.
pub struct StoredKey {
    pub objectid: String,
    pub conversation_id: String,
    pub key: Zeroizing<Vec<u8>>,
    /// When keysrv created the key.
    pub created_at: OffsetDateTime,
    /// When this device stored it: wall-clock time, because a stored key
    /// outlives the process. The client treats it as absent once older than
    /// the cache's TTL.
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

impl StoredKey {
    /// The key filed under `objectid`, if this entry is one: named so, 32
    /// bytes, and stored less than `ttl` ago.
    fn to_key_object(&self, objectid: &str, ttl: Option<Duration>) -> Option<KeyObject> {
        let fresh = ttl.is_none_or(|ttl| self.cached_at.elapsed().is_ok_and(|age| age < ttl));
        if !fresh || self.objectid != objectid {
            return None;
        }
        let bytes: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(self.key.as_slice().try_into().ok()?);
        Some(KeyObject {
            objectid: self.objectid.clone(),
            conversation_id: self.conversation_id.clone(),
            key: Key::from_bytes(*bytes),
            created_at: self.created_at,
        })
    }
}

/// Where keys are kept instead of memory, implemented by the app to keep
/// them across restarts in storage the platform protects. Keys never
/// change, so a stored key is always right; the client still ignores (and
/// removes) one older than its TTL, so that a removal from a conversation
/// reaches the device, and one that is not a 32-byte key filed under its
/// own name. Called from the client's tasks, possibly concurrently.
pub trait KeyStore: Send + Sync {
    /// The key named `objectid`, if stored.
    fn get(&self, objectid: &str) -> Option<StoredKey>;
    /// Stores a key, replacing one with the same objectid.
    fn put(&self, key: StoredKey);
    fn remove(&self, objectid: &str);
    /// Forgets every key of a conversation.
    fn remove_conversation(&self, conversation_id: &str);
    fn clear(&self);
}

struct Entry {
    key: KeyObject,
    inserted: Instant,
    tick: u64,
}

/// The in-memory key cache.
pub(crate) struct MemoryKeys {
    capacity: usize,
    ttl: Option<Duration>,
    entries: HashMap<String, Entry>,
    /// tick → objectid, oldest use first.
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl MemoryKeys {
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        Self { capacity, ttl, entries: HashMap::new(), order: BTreeMap::new(), tick: 0 }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    pub fn get(&mut self, objectid: &str, now: Instant) -> Option<KeyObject> {
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

    pub fn insert(&mut self, key: KeyObject, now: Instant) {
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

    pub fn remove(&mut self, objectid: &str) {
        if let Some(e) = self.entries.remove(objectid) {
            self.order.remove(&e.tick);
        }
    }

    pub fn remove_conversation(&mut self, conversation_id: &str) {
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

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The keys a client caches: in memory, or in the app's [`KeyStore`]; the
/// same TTL either way.
pub(crate) enum KeyCache {
    Memory(Mutex<MemoryKeys>),
    Store { store: Arc<dyn KeyStore>, ttl: Option<Duration> },
}

impl KeyCache {
    pub fn memory(capacity: usize, ttl: Option<Duration>) -> Self {
        Self::Memory(Mutex::new(MemoryKeys::new(capacity, ttl)))
    }

    pub fn store(store: Arc<dyn KeyStore>, ttl: Option<Duration>) -> Self {
        Self::Store { store, ttl }
    }

    fn mem(m: &Mutex<MemoryKeys>) -> MutexGuard<'_, MemoryKeys> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, objectid: &str) -> Option<KeyObject> {
        match self {
            Self::Memory(m) => Self::mem(m).get(objectid, Instant::now()),
            Self::Store { store, ttl } => {
                let stored = store.get(objectid)?;
                let key = stored.to_key_object(objectid, *ttl);
                // Stale, or not this key: the store should not offer it again.
                if key.is_none() {
                    store.remove(objectid);
                }
                key
            }
        }
    }

    pub fn put(&self, key: &KeyObject) {
        match self {
            Self::Memory(m) => Self::mem(m).insert(key.clone(), Instant::now()),
            Self::Store { store, .. } => store.put(StoredKey {
                objectid: key.objectid.clone(),
                conversation_id: key.conversation_id.clone(),
                key: Zeroizing::new(key.key.expose().to_vec()),
                created_at: key.created_at,
                cached_at: SystemTime::now(),
            }),
        }
    }

    pub fn remove(&self, objectid: &str) {
        match self {
            Self::Memory(m) => Self::mem(m).remove(objectid),
            Self::Store { store, .. } => store.remove(objectid),
        }
    }

    pub fn remove_conversation(&self, conversation_id: &str) {
        match self {
            Self::Memory(m) => Self::mem(m).remove_conversation(conversation_id),
            Self::Store { store, .. } => store.remove_conversation(conversation_id),
        }
    }

    pub fn clear(&self) {
        match self {
            Self::Memory(m) => Self::mem(m).clear(),
            Self::Store { store, .. } => store.clear(),
        }
    }

    /// Keys held in memory (`None` with a [`KeyStore`]: only the store knows).
    pub fn len(&self) -> Option<usize> {
        match self {
            Self::Memory(m) => Some(Self::mem(m).len()),
            Self::Store { .. } => None,
        }
    }
}

struct LruEntry<V> {
    value: V,
    inserted: Instant,
    tick: u64,
}

/// A bounded map from strings to values: the least recently used entry goes
/// first, and with a `ttl` an entry is gone that long after its insertion.
pub(crate) struct Lru<V> {
    capacity: usize,
    ttl: Option<Duration>,
    entries: HashMap<String, LruEntry<V>>,
    /// tick → key, oldest use first.
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl<V: Clone> Lru<V> {
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        Self { capacity, ttl, entries: HashMap::new(), order: BTreeMap::new(), tick: 0 }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    pub fn get(&mut self, key: &str, now: Instant) -> Option<V> {
        let expired = match (self.entries.get(key), self.ttl) {
            (None, _) => return None,
            (Some(e), Some(ttl)) => now.saturating_duration_since(e.inserted) >= ttl,
            (Some(_), None) => false,
        };
        if expired {
            self.remove(key);
            return None;
        }
        let tick = self.next_tick();
        let entry = self.entries.get_mut(key)?;
        self.order.remove(&entry.tick);
        entry.tick = tick;
        self.order.insert(tick, key.to_owned());
        Some(entry.value.clone())
    }

    pub fn insert(&mut self, key: &str, value: V, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        let tick = self.next_tick();
        if let Some(old) = self.entries.insert(key.to_owned(), LruEntry { value, inserted: now, tick }) {
            self.order.remove(&old.tick);
        }
        self.order.insert(tick, key.to_owned());
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.entries.remove(&oldest);
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.tick);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(conv: &str, id: &str) -> KeyObject {
        KeyObject {
            objectid: format!("{conv}.{id}"),
            conversation_id: conv.into(),
            key: Key::from_bytes([1; KEY_LEN]),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn evicts_least_recently_used() {
        let now = Instant::now();
        let mut c = MemoryKeys::new(2, None);
        c.insert(k("c", "1"), now);
        c.insert(k("c", "2"), now);
        assert!(c.get("c.1", now).is_some());
        c.insert(k("c", "3"), now);
        assert_eq!(c.len(), 2);
        assert!(c.get("c.2", now).is_none(), "the least recently used entry stays");
        assert!(c.get("c.1", now).is_some() && c.get("c.3", now).is_some());
        c.insert(k("c", "3"), now);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn expires_and_forgets() {
        let now = Instant::now();
        let mut c = MemoryKeys::new(10, Some(Duration::from_secs(60)));
        c.insert(k("a", "1"), now);
        c.insert(k("a", "2"), now);
        c.insert(k("b", "1"), now);
        assert!(c.get("a.1", now + Duration::from_secs(59)).is_some());
        assert!(c.get("a.1", now + Duration::from_secs(60)).is_none());
        assert_eq!(c.len(), 2);
        c.remove_conversation("a");
        assert_eq!(c.len(), 1);
        c.clear();
        assert_eq!(c.len(), 0);
        let mut off = MemoryKeys::new(0, None);
        off.insert(k("a", "1"), now);
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn lru_is_bounded_and_expires() {
        let now = Instant::now();
        let mut c: Lru<u32> = Lru::new(2, Some(Duration::from_secs(10)));
        c.insert("a", 1, now);
        c.insert("b", 2, now);
        assert_eq!(c.get("a", now), Some(1));
        c.insert("c", 3, now);
        assert_eq!((c.len(), c.get("b", now)), (2, None), "the least recently used entry goes");
        assert_eq!(c.get("a", now + Duration::from_secs(10)), None, "expired");
        assert_eq!(c.get("c", now + Duration::from_secs(9)), Some(3));
        c.insert("c", 4, now);
        assert_eq!((c.len(), c.get("c", now)), (1, Some(4)));
        c.remove("c");
        c.insert("d", 5, now);
        c.clear();
        assert_eq!(c.len(), 0);
        let mut off: Lru<u32> = Lru::new(0, None);
        off.insert("a", 1, now);
        assert_eq!(off.get("a", now), None);
    }

    #[test]
    fn key_cache_in_memory_is_bounded_and_forgets() {
        let keys = KeyCache::memory(2, Some(Duration::from_secs(60)));
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
    }

    #[derive(Default)]
    struct Store(Mutex<HashMap<String, StoredKey>>);

    impl Store {
        fn map(&self) -> MutexGuard<'_, HashMap<String, StoredKey>> {
            self.0.lock().unwrap()
        }
    }

    impl KeyStore for Store {
        fn get(&self, objectid: &str) -> Option<StoredKey> {
            self.map().get(objectid).map(|s| StoredKey {
                objectid: s.objectid.clone(),
                conversation_id: s.conversation_id.clone(),
                key: s.key.clone(),
                created_at: s.created_at,
                cached_at: s.cached_at,
            })
        }
        fn put(&self, key: StoredKey) {
            self.map().insert(key.objectid.clone(), key);
        }
        fn remove(&self, objectid: &str) {
            self.map().remove(objectid);
        }
        fn remove_conversation(&self, conversation_id: &str) {
            self.map().retain(|_, k| k.conversation_id != conversation_id);
        }
        fn clear(&self) {
            self.map().clear();
        }
    }

    #[test]
    fn store_round_trips_and_drops_stale_or_wrong_keys() {
        let store = Arc::new(Store::default());
        let keys = KeyCache::store(store.clone(), Some(Duration::from_secs(60)));
        keys.put(&k("a", "1"));
        let got = keys.get("a.1").expect("stored");
        assert_eq!((got.objectid.as_str(), got.conversation_id.as_str()), ("a.1", "a"));
        assert_eq!(got.key.expose(), &[1; KEY_LEN]);
        assert_eq!(keys.len(), None);
        // Stale: dropped from the store too.
        store.map().get_mut("a.1").unwrap().cached_at = SystemTime::now() - Duration::from_secs(61);
        assert!(keys.get("a.1").is_none());
        assert!(store.map().is_empty());
        // Wrong length, or filed under another name.
        keys.put(&k("a", "2"));
        store.map().get_mut("a.2").unwrap().key.truncate(16);
        assert!(keys.get("a.2").is_none());
        assert!(!store.map().contains_key("a.2"));
        keys.put(&k("a", "3"));
        let moved = store.map().remove("a.3").unwrap();
        store.map().insert("a.4".into(), moved);
        assert!(keys.get("a.4").is_none());
        // Without a TTL a stored key is kept however old.
        let forever = KeyCache::store(store.clone(), None);
        forever.put(&k("b", "1"));
        store.map().get_mut("b.1").unwrap().cached_at = SystemTime::UNIX_EPOCH;
        assert!(forever.get("b.1").is_some());
        forever.remove_conversation("b");
        assert!(store.map().is_empty());
        forever.put(&k("c", "1"));
        forever.clear();
        assert!(store.map().is_empty());
        let shown = format!(
            "{:?}",
            StoredKey {
                objectid: "a.1".into(),
                conversation_id: "a".into(),
                key: Zeroizing::new(vec![7; KEY_LEN]),
                created_at: OffsetDateTime::UNIX_EPOCH,
                cached_at: SystemTime::UNIX_EPOCH,
            }
        );
        assert!(shown.contains("redacted") && !shown.contains("7, 7"), "{shown}");
    }
}
