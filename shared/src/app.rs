//! The application: configuration plus the key service wired to its
//! backends. Built once per process, outside any request.

use std::sync::Arc;

use crate::adapters::local_key_file::LocalKeyFile;
use crate::adapters::sqlite::SqliteStore;
use crate::config::Config;
use crate::domain::KeyService;
use crate::ports::BackendError;

pub struct App {
    pub config: Config,
    pub keys: KeyService,
}

impl App {
    /// The backends the environment selects (`KEYSRV_BACKEND`, default
    /// `embedded`), configured from the environment.
    pub fn from_env() -> Result<Self, crate::Error> {
        let config = Config::from_env()?;
        match std::env::var("KEYSRV_BACKEND").as_deref() {
            Ok("embedded") | Err(_) => Ok(Self::embedded(config)?),
            Ok(other) => Err(crate::Error::BadRequest(format!("KEYSRV_BACKEND={other:?} is not a known backend"))),
        }
    }

    /// The embedded backends: SQLite and a local master key file, both in
    /// the data directory (created 0700 if missing).
    pub fn embedded(config: Config) -> Result<Self, BackendError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = &config.data_dir;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| BackendError::Internal(format!("creating {}: {e}", dir.display())))?;
        let store = SqliteStore::open(&dir.join("keysrv.sqlite3"))?;
        let wrapper = LocalKeyFile::open_or_create(&dir.join("master.key"))?;
        let keys = KeyService::new(Arc::new(store), Arc::new(wrapper), config.limits.clone());
        Ok(Self { config, keys })
    }
}
