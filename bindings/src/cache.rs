//! The key cache an app may implement (iOS Keychain, Android
//! Keystore-backed storage) and its adapter to keysrv-client's key cache,
//! which holds the rules (TTL, eviction, checks of stored entries) and, by
//! default, keeps keys in memory.

use std::sync::Arc;
use std::time::SystemTime;

use time::OffsetDateTime;
use zeroize::Zeroizing;

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

/// keysrv-client's view of the app's cache: the client applies the TTL and
/// drops entries that are not a 32-byte key filed under their own name, so
/// those rules live in one place for every SDK.
pub(crate) struct AppStore(pub Arc<dyn KeyCache>);

impl keysrv_client::KeyStore for AppStore {
    fn get(&self, objectid: &str) -> Option<keysrv_client::StoredKey> {
        let stored = self.0.get(objectid.to_owned())?;
        Some(keysrv_client::StoredKey {
            objectid: stored.objectid,
            conversation_id: stored.conversation_id,
            // Moved, not copied: the bytes the app handed over are wiped
            // when the client drops the entry.
            key: Zeroizing::new(stored.key),
            created_at: OffsetDateTime::from(stored.created_at),
            cached_at: stored.cached_at,
        })
    }

    fn put(&self, mut key: keysrv_client::StoredKey) {
        self.0.put(StoredKey {
            objectid: std::mem::take(&mut key.objectid),
            conversation_id: std::mem::take(&mut key.conversation_id),
            // The app's store gets its own copy (it crosses the FFI as a
            // buffer); the client's copy is wiped when `key` drops.
            key: key.key.to_vec(),
            created_at: key.created_at.into(),
            cached_at: key.cached_at,
        });
    }

    fn remove(&self, objectid: &str) {
        self.0.remove(objectid.to_owned());
    }

    fn remove_conversation(&self, conversation_id: &str) {
        self.0.remove_conversation(conversation_id.to_owned());
    }

    fn clear(&self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use keysrv_client::KeyStore;

    use super::*;

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
    fn the_app_cache_sees_what_the_client_stores() {
        let store = Arc::new(Store::default());
        let app = AppStore(store.clone());
        let created_at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let cached_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        app.put(keysrv_client::StoredKey {
            objectid: "c.1".into(),
            conversation_id: "c".into(),
            key: Zeroizing::new(vec![3; 32]),
            created_at,
            cached_at,
        });
        let stored = store.0.lock().unwrap()["c.1"].clone();
        assert_eq!((stored.conversation_id.as_str(), stored.key.as_slice()), ("c", &[3; 32][..]));
        assert_eq!((stored.created_at, stored.cached_at), (SystemTime::from(created_at), cached_at));
        let back = app.get("c.1").expect("stored");
        assert_eq!((back.objectid.as_str(), back.created_at, back.cached_at), ("c.1", created_at, cached_at));
        assert_eq!(back.key.as_slice(), &[3; 32]);
        assert!(app.get("c.2").is_none());
        app.remove_conversation("c");
        assert!(store.0.lock().unwrap().is_empty());
        assert!(format!("{stored:?}").contains("redacted"));
    }
}
