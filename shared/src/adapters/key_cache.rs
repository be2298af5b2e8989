//! A small cache of unwrapped data keys for the KMS wrapper, so a hot key
//! costs no KMS call. Bounded in size and age; evicted keys are zeroized
//! (`DataKey` wipes itself on drop). Only key material is cached — never
//! membership, which is read on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::model::DataKey;

pub struct KeyCache {
    entries: Mutex<HashMap<String, (DataKey, Instant)>>,
    ttl: Duration,
    capacity: usize,
}

impl KeyCache {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self { entries: Mutex::new(HashMap::new()), ttl, capacity }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (DataKey, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<DataKey> {
        let mut entries = self.lock();
        match entries.get(id) {
            Some((key, at)) if at.elapsed() < self.ttl => Some(key.clone()),
            Some(_) => {
                entries.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, id: &str, key: &DataKey) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        if entries.len() >= self.capacity
            && let Some(oldest) = entries.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(id.to_owned(), (key.clone(), Instant::now()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_expiring() {
        let cache = KeyCache::new(2, Duration::from_millis(50));
        let k = DataKey::from_bytes([1; 32]);
        cache.insert("a", &k);
        cache.insert("b", &k);
        cache.insert("c", &k);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a").is_none(), "the oldest entry is evicted first");
        assert_eq!(cache.get("c").unwrap().expose(), k.expose());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("c").is_none(), "entries expire");
    }
}
