//! Key wrapping under a master key kept in a local file (the embedded
//! backend), created 0600 on first start.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::master_key::MasterKey;
use crate::domain::model::{DataKey, WrappedKey};
use crate::ids::random_bytes;
use crate::ports::{BackendError, KeyContext, KeyWrapper};

/// Version 1 of the local master key. A rotated master key would be
/// `local-v2`, with v1 kept for unwrapping old rows.
const SCHEME: &str = "local-v1";

pub struct LocalKeyFile {
    key: MasterKey,
}

impl LocalKeyFile {
    /// Opens the master key at `path`, creating it (mode 0600) on first use.
    pub fn open_or_create(path: &Path) -> Result<Self, BackendError> {
        let bytes = read_or_create_secret(path, "master key")?;
        Ok(Self { key: MasterKey::new(&bytes, SCHEME.into())? })
    }

    /// The master key itself, for the embedded file store's per-file keys.
    pub(crate) fn master(&self) -> &MasterKey {
        &self.key
    }
}

/// Reads a 32-byte secret from `path`, creating it from the OS CSPRNG (mode
/// 0600) on first use; refuses one that others may read.
pub(crate) fn read_or_create_secret(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
    let io = |doing: &str, e: std::io::Error| BackendError::Internal(format!("{doing} {what} {}: {e}", path.display()));
    let bytes = match fs::read(path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Zeroizing::new(random_bytes::<32>()?);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| io("creating", e))?;
            f.write_all(key.as_ref()).and_then(|_| f.sync_all()).map_err(|e| io("writing", e))?;
            Zeroizing::new(key.to_vec())
        }
        Err(e) => return Err(io("reading", e)),
    };
    let mode = fs::metadata(path).map_err(|e| io("inspecting", e))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(BackendError::Internal(format!(
            "{what} {} is readable by others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(bytes)
}

#[async_trait]
impl KeyWrapper for LocalKeyFile {
    async fn generate(&self, ctx: KeyContext<'_>) -> Result<(DataKey, WrappedKey), BackendError> {
        self.key.generate(ctx)
    }

    async fn unwrap(&self, ctx: KeyContext<'_>, wrapped: &WrappedKey) -> Result<DataKey, BackendError> {
        self.key.open(ctx, wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_and_refuses_a_world_readable_master_key() {
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
