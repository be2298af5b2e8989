//! Key wrapping under a master key kept in a local file (the embedded
//! backend). Data keys are sealed with AES-256-GCM; the AAD binds the
//! conversation id and objectid, so a wrapped key copied to another row fails
//! to unwrap.
//!
//! Blob layout: 12-byte random nonce, then ciphertext and 16-byte tag.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::domain::model::{DataKey, WrappedKey};
use crate::ids::random_bytes;
use crate::ports::{BackendError, KeyContext, KeyWrapper};

/// Version 1 of the local master key. A rotated master key would be `local-v2`,
/// with v1 kept for unwrapping old rows.
const SCHEME: &str = "local-v1";
const NONCE_LEN: usize = 12;

pub struct LocalKeyFile {
    cipher: Aes256Gcm,
}

impl LocalKeyFile {
    /// Opens the master key at `path`, creating it (mode 0600) on first use.
    pub fn open_or_create(path: &Path) -> Result<Self, BackendError> {
        let io = |what: &str, e: std::io::Error| BackendError::Internal(format!("{what} {}: {e}", path.display()));
        let bytes = match fs::read(path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Zeroizing::new(random_bytes::<32>()?);
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| io("creating master key", e))?;
                f.write_all(key.as_ref()).and_then(|_| f.sync_all()).map_err(|e| io("writing master key", e))?;
                Zeroizing::new(key.to_vec())
            }
            Err(e) => return Err(io("reading master key", e)),
        };
        let mode = fs::metadata(path).map_err(|e| io("inspecting master key", e))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(BackendError::Internal(format!(
                "master key {} is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            )));
        }
        Self::from_key_bytes(&bytes)
    }

    pub fn from_key_bytes(bytes: &[u8]) -> Result<Self, BackendError> {
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| BackendError::Internal("master key must be exactly 32 bytes".into()))?;
        Ok(Self { cipher })
    }

    fn seal(&self, ctx: KeyContext<'_>, key: &DataKey) -> Result<WrappedKey, BackendError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let aad = ctx.aad();
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce_bytes), Payload { msg: key.expose(), aad: &aad })
            .map_err(|_| BackendError::Internal("AES-GCM seal failed".into()))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ct);
        Ok(WrappedKey { scheme: SCHEME.into(), blob })
    }
}

#[async_trait]
impl KeyWrapper for LocalKeyFile {
    async fn generate(&self, ctx: KeyContext<'_>) -> Result<(DataKey, WrappedKey), BackendError> {
        let key = DataKey::from_bytes(random_bytes::<32>()?);
        let wrapped = self.seal(ctx, &key)?;
        Ok((key, wrapped))
    }

    async fn unwrap(&self, ctx: KeyContext<'_>, wrapped: &WrappedKey) -> Result<DataKey, BackendError> {
        if wrapped.scheme != SCHEME || wrapped.blob.len() <= NONCE_LEN {
            return Err(BackendError::Integrity);
        }
        let (nonce, ct) = wrapped.blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| BackendError::Integrity)?;
        let aad = ctx.aad();
        let plain = Zeroizing::new(
            self.cipher.decrypt(&nonce, Payload { msg: ct, aad: &aad }).map_err(|_| BackendError::Integrity)?,
        );
        DataKey::from_slice(&plain).ok_or(BackendError::Integrity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, ObjectId};

    #[tokio::test]
    async fn wrapped_key_is_bound_to_its_context() {
        let w = LocalKeyFile::from_key_bytes(&[7u8; 32]).unwrap();
        let c = ConversationId::generate().unwrap();
        let o = ObjectId::generate(&c).unwrap();
        let o2 = ObjectId::generate(&c).unwrap();
        let c2 = ConversationId::generate().unwrap();
        let ctx = KeyContext { conversation_id: &c, objectid: &o };
        let (key, wrapped) = w.generate(ctx).await.unwrap();
        assert_eq!(w.unwrap(ctx, &wrapped).await.unwrap().expose(), key.expose());
        assert!(!wrapped.blob.windows(32).any(|win| win == key.expose()));
        for other in
            [KeyContext { conversation_id: &c, objectid: &o2 }, KeyContext { conversation_id: &c2, objectid: &o }]
        {
            assert!(matches!(w.unwrap(other, &wrapped).await, Err(BackendError::Integrity)));
        }
        let mut tampered = wrapped.clone();
        tampered.blob[20] ^= 1;
        assert!(matches!(w.unwrap(ctx, &tampered).await, Err(BackendError::Integrity)));
    }

    #[test]
    fn refuses_a_world_readable_master_key() {
        let dir = std::env::temp_dir().join(format!("keysrv-mk-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.key");
        let _ = fs::remove_file(&path);
        LocalKeyFile::open_or_create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(LocalKeyFile::open_or_create(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
