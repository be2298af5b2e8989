//! The client's in-memory caches: bounded (least recently used entries go
//! first), optionally time-limited, never written to disk. Keys are wiped
//! when evicted or dropped (`Key` zeroizes itself). [`Lru`] holds the
//! conversations' member lists and the chat bindings.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::key::KeyObject;

struct Entry {
    key: KeyObject,
    inserted: Instant,
    tick: u64,
}

pub(crate) struct KeyCache {
    capacity: usize,
    ttl: Option<Duration>,
    entries: HashMap<String, Entry>,
    /// tick → objectid, oldest use first.
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl KeyCache {
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
    use crate::key::{KEY_LEN, Key};
    use time::OffsetDateTime;

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
        let mut c = KeyCache::new(2, None);
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
        let mut c = KeyCache::new(10, Some(Duration::from_secs(60)));
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
        let mut off = KeyCache::new(0, None);
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
}
