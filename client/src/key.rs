//! Conversation keys as a client holds them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::envelope::{Content, Envelope};
pub use crate::secret::{KEY_LEN, Key};
use crate::wire::{self, EncryptedElement, WireError};

/// The most messages one device may seal under one key (2^20). See
/// `docs/PROTOCOL.md`, "Key rotation": with 96-bit random nonces the chance
/// of any nonce repeating among n messages is about n²/2^97, so even 1,024
/// members each at this cap (2^30 messages) stay near 2^-37, far inside the
/// 2^-32 that AES-GCM's 2^32-message limit for random nonces is set for.
pub const MAX_MESSAGES_PER_KEY: u64 = 1 << 20;

/// How long a sender keeps using a current key without asking keysrv again
/// (`GET …/keys/current`), so that a rotation made by someone else (a member
/// removed, a member joined under `since_join`) reaches it soon. See
/// `docs/PROTOCOL.md`, "Key rotation".
pub const CURRENT_KEY_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// A key as keysrv released it: which conversation it belongs to, its
/// objectid (the name that travels in every message sealed under it) and the
/// key itself. Only `A256GCM` keys are ever built (the client checks `alg`).
#[derive(Clone, Debug)]
pub struct KeyObject {
    pub objectid: String,
    pub conversation_id: String,
    pub key: Key,
    pub created_at: OffsetDateTime,
}

impl KeyObject {
    /// Seals `content` from `sender` to `recipient` (bare or full JIDs; the
    /// bare JIDs are used) under this key: the `<encrypted>` element text.
    pub fn seal(&self, sender: &str, recipient: &str, content: &Content) -> Result<String, WireError> {
        wire::seal(&self.key, &self.objectid, sender, recipient, content)
    }

    /// Opens an `<encrypted>` element sealed under this key.
    pub fn open(&self, sender: &str, recipient: &str, element: &str) -> Result<Envelope, WireError> {
        wire::open(&self.key, &self.objectid, sender, recipient, element)
    }

    /// Opens an already parsed `<encrypted>` element sealed under this key.
    pub fn open_element(
        &self,
        sender: &str,
        recipient: &str,
        element: &EncryptedElement,
    ) -> Result<Envelope, WireError> {
        wire::open_element(&self.key, &self.objectid, sender, recipient, element)
    }
}

/// When a sender should ask for a new key (see `docs/PROTOCOL.md`, "Key
/// rotation"). The hard cap of [`MAX_MESSAGES_PER_KEY`] applies whatever the
/// policy says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate after this many messages sealed by this device.
    pub max_messages: u64,
    /// Rotate once the key is this old.
    pub max_age: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self { max_messages: MAX_MESSAGES_PER_KEY, max_age: Duration::from_secs(24 * 60 * 60) }
    }
}

/// The key a device sends with, and how many messages it has sealed under
/// it. `seal` refuses once [`MAX_MESSAGES_PER_KEY`] is reached; ask
/// `needs_rotation` before each send and rotate (`Client::rotate`) when it
/// says so.
#[derive(Debug)]
pub struct OutgoingKey {
    key: KeyObject,
    sealed: AtomicU64,
    fetched_at: Instant,
}

impl OutgoingKey {
    pub fn new(key: KeyObject) -> Self {
        Self::with_count(key, 0)
    }

    /// Resumes a key whose count this device persisted.
    pub fn with_count(key: KeyObject, already_sealed: u64) -> Self {
        Self { key, sealed: AtomicU64::new(already_sealed), fetched_at: Instant::now() }
    }

    /// Whether this key was learned as current more than `max_age` ago
    /// (normally [`CURRENT_KEY_MAX_AGE`]): ask for the current key again
    /// before sealing (someone may have rotated).
    pub fn is_stale(&self, max_age: Duration) -> bool {
        self.fetched_at.elapsed() >= max_age
    }

    pub fn key(&self) -> &KeyObject {
        &self.key
    }

    /// Messages sealed under this key by this device so far.
    pub fn sealed(&self) -> u64 {
        self.sealed.load(Ordering::Relaxed)
    }

    /// Whether this device should rotate before sealing again.
    pub fn needs_rotation(&self, policy: &RotationPolicy, now: OffsetDateTime) -> bool {
        let age = now - self.key.created_at;
        self.sealed() >= policy.max_messages.min(MAX_MESSAGES_PER_KEY)
            || age >= time::Duration::try_from(policy.max_age).unwrap_or(time::Duration::MAX)
    }

    /// Seals like [`KeyObject::seal`], counting the message; fails with
    /// [`WireError::KeyExhausted`] once the hard cap is reached.
    pub fn seal(&self, sender: &str, recipient: &str, content: &Content) -> Result<String, WireError> {
        self.sealed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < MAX_MESSAGES_PER_KEY).then_some(n + 1))
            .map_err(|_| WireError::KeyExhausted)?;
        self.key.seal(sender, recipient, content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_object(created_at: OffsetDateTime) -> KeyObject {
        KeyObject {
            objectid: "c.k".into(),
            conversation_id: "c".into(),
            key: Key::from_bytes([7; KEY_LEN]),
            created_at,
        }
    }

    #[test]
    fn base64_round_trip_and_redacted_debug() {
        let k = Key::from_bytes([0xAB; KEY_LEN]);
        let b64 = k.to_base64();
        assert_eq!(Key::from_base64(&b64).unwrap().expose(), k.expose());
        assert_eq!(format!("{k:?}"), "Key(<redacted>)");
        assert!(!format!("{:?}", key_object(OffsetDateTime::UNIX_EPOCH)).contains("7, 7"));
        assert!(matches!(Key::from_base64("AAAA"), Err(WireError::InvalidKey(_))));
        assert!(matches!(Key::from_base64("not base64!"), Err(WireError::InvalidKey(_))));
    }

    #[test]
    fn outgoing_key_counts_and_caps() {
        let now = OffsetDateTime::now_utc();
        let k = OutgoingKey::with_count(key_object(now), MAX_MESSAGES_PER_KEY - 1);
        let policy = RotationPolicy::default();
        assert!(!k.needs_rotation(&policy, now));
        k.seal("romeo@montague.lit", "juliet@capulet.lit", &Content::text("hi")).unwrap();
        assert_eq!(k.sealed(), MAX_MESSAGES_PER_KEY);
        assert!(k.needs_rotation(&policy, now));
        assert_eq!(
            k.seal("romeo@montague.lit", "juliet@capulet.lit", &Content::text("hi")),
            Err(WireError::KeyExhausted)
        );
        assert!(!k.is_stale(CURRENT_KEY_MAX_AGE) && k.is_stale(Duration::ZERO));
        let fresh = OutgoingKey::new(key_object(now - time::Duration::hours(25)));
        assert!(fresh.needs_rotation(&policy, now));
        let small = RotationPolicy { max_messages: 0, ..policy };
        assert!(OutgoingKey::new(key_object(now)).needs_rotation(&small, now));
    }
}
