//! AES-256-GCM wrapping of data keys under a master key held in memory —
//! the scheme behind both the local key file and the Secrets Manager secret.
//! The AAD binds conversation id and objectid, so a wrapped key copied to
//! another row fails to unwrap.
//!
//! Blob layout: 12-byte random nonce, then ciphertext and 16-byte tag.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::domain::model::{DataKey, WrappedKey};
use crate::ids::random_bytes;
use crate::ports::{BackendError, KeyContext};

const NONCE_LEN: usize = 12;

pub struct MasterKey {
    cipher: Aes256Gcm,
    /// Names the master key's version; stored with every wrapped key so an
    /// old version can be found after the master key is rotated.
    scheme: String,
}

impl MasterKey {
    pub fn new(bytes: &[u8], scheme: String) -> Result<Self, BackendError> {
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| BackendError::Internal("a master key must be exactly 32 bytes".into()))?;
        Ok(Self { cipher, scheme })
    }

    #[cfg(feature = "aws")]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn seal(&self, ctx: KeyContext<'_>, key: &DataKey) -> Result<WrappedKey, BackendError> {
        self.seal_with_aad(&ctx.aad(), key)
    }

    pub fn open(&self, ctx: KeyContext<'_>, wrapped: &WrappedKey) -> Result<DataKey, BackendError> {
        self.open_with_aad(&ctx.aad(), wrapped)
    }

    /// Wraps a key bound to `aad`; for keys that are not conversation keys.
    pub fn seal_with_aad(&self, aad: &[u8], key: &DataKey) -> Result<WrappedKey, BackendError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce_bytes), Payload { msg: key.expose(), aad })
            .map_err(|_| BackendError::Internal("AES-GCM seal failed".into()))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ct);
        Ok(WrappedKey { scheme: self.scheme.clone(), blob })
    }

    pub fn open_with_aad(&self, aad: &[u8], wrapped: &WrappedKey) -> Result<DataKey, BackendError> {
        if wrapped.scheme != self.scheme || wrapped.blob.len() <= NONCE_LEN {
            return Err(BackendError::Integrity);
        }
        let (nonce, ct) = wrapped.blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| BackendError::Integrity)?;
        let plain =
            Zeroizing::new(self.cipher.decrypt(&nonce, Payload { msg: ct, aad }).map_err(|_| BackendError::Integrity)?);
        DataKey::from_slice(&plain).ok_or(BackendError::Integrity)
    }

    /// A fresh data key from the OS CSPRNG, and its wrapped form.
    pub fn generate(&self, ctx: KeyContext<'_>) -> Result<(DataKey, WrappedKey), BackendError> {
        let key = DataKey::from_bytes(random_bytes::<32>()?);
        let wrapped = self.seal(ctx, &key)?;
        Ok((key, wrapped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, ObjectId};

    #[test]
    fn wrapped_key_is_bound_to_its_context_and_scheme() {
        let w = MasterKey::new(&[7u8; 32], "t-v1".into()).unwrap();
        let c = ConversationId::generate().unwrap();
        let o = ObjectId::generate(&c).unwrap();
        let o2 = ObjectId::generate(&c).unwrap();
        let c2 = ConversationId::generate().unwrap();
        let ctx = KeyContext { conversation_id: &c, objectid: &o };
        let (key, wrapped) = w.generate(ctx).unwrap();
        assert_eq!(w.open(ctx, &wrapped).unwrap().expose(), key.expose());
        assert!(!wrapped.blob.windows(32).any(|win| win == key.expose()));
        for other in
            [KeyContext { conversation_id: &c, objectid: &o2 }, KeyContext { conversation_id: &c2, objectid: &o }]
        {
            assert!(matches!(w.open(other, &wrapped), Err(BackendError::Integrity)));
        }
        let mut tampered = wrapped.clone();
        tampered.blob[20] ^= 1;
        assert!(matches!(w.open(ctx, &tampered), Err(BackendError::Integrity)));
        let other_version = MasterKey::new(&[7u8; 32], "t-v2".into()).unwrap();
        assert!(matches!(other_version.open(ctx, &wrapped), Err(BackendError::Integrity)));
    }
}
