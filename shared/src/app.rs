//! The application: configuration plus the key service wired to its
//! backends. Built once per process (per Lambda container), outside any
//! request.

use std::sync::Arc;
#[cfg(feature = "aws")]
use std::time::Duration;

use crate::config::{Backend, Config};
use crate::domain::KeyService;
use crate::ports::{BackendError, ConversationStore, FileStore, KeyWrapper};

/// The ports a backend provides, and the embedded file server's store.
struct Backends {
    store: Arc<dyn ConversationStore>,
    quotas: Arc<dyn crate::ports::Quotas>,
    wrapper: Arc<dyn KeyWrapper>,
    files: Arc<dyn FileStore>,
    #[cfg(feature = "embedded")]
    local_files: Option<Arc<crate::adapters::local_files::LocalFileStore>>,
}

/// Why a process could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
}

pub struct App {
    pub config: Config,
    pub keys: KeyService,
    /// The embedded backend's file store, whose URLs `keysrv server` serves.
    #[cfg(feature = "embedded")]
    pub local_files: Option<Arc<crate::adapters::local_files::LocalFileStore>>,
}

impl App {
    /// The backends the environment selects (`KEYSRV_BACKEND`).
    pub async fn from_env() -> Result<Self, StartError> {
        Ok(Self::new(Config::from_env()?).await?)
    }

    /// As `from_env`, for a process that serves no route touching file
    /// bytes (most Lambda functions): on AWS it has no S3 client, and its
    /// binary does not link one (`keysrv_api`, functions/src/lib.rs).
    pub async fn from_env_without_files() -> Result<Self, StartError> {
        Ok(Self::build::<false>(Config::from_env()?).await?)
    }

    pub async fn new(config: Config) -> Result<Self, BackendError> {
        Self::build::<true>(config).await
    }

    /// `S3` is a constant so that `build::<false>` contains no S3 code.
    async fn build<const S3: bool>(config: Config) -> Result<Self, BackendError> {
        let backends = match &config.backend {
            Backend::Embedded { data_dir } => embedded(data_dir, config.public_url.clone(), &config.limits)?,
            Backend::Aws(settings) => aws::<S3>(settings).await?,
        };
        let store: Arc<dyn ConversationStore> = Arc::new(crate::adapters::instrumented::Instrumented(backends.store));
        let keys = KeyService::new(store, backends.wrapper, backends.files, backends.quotas, config.limits.clone());
        Ok(Self {
            config,
            keys,
            #[cfg(feature = "embedded")]
            local_files: backends.local_files,
        })
    }
}

/// SQLite, a local master key file and the files, all in the data directory
/// (created 0700 if missing).
#[cfg(feature = "embedded")]
fn embedded(
    dir: &std::path::Path,
    public_url: Option<String>,
    limits: &crate::domain::Limits,
) -> Result<Backends, BackendError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| BackendError::Internal(format!("creating {}: {e}", dir.display())))?;
    let store = crate::adapters::sqlite::SqliteStore::open(&dir.join("keysrv.sqlite3"))?;
    let wrapper = Arc::new(crate::adapters::local_key_file::LocalKeyFile::open_or_create(&dir.join("master.key"))?);
    let files = Arc::new(crate::adapters::local_files::LocalFileStore::open(
        dir,
        Arc::clone(&wrapper),
        public_url,
        limits.max_upload_bytes_in_flight,
    )?);
    // One process: quotas are counted in it.
    let quotas = Arc::new(crate::adapters::memory_quotas::MemoryQuotas::new());
    Ok(Backends { store: Arc::new(store), quotas, wrapper, files: files.clone(), local_files: Some(files) })
}

#[cfg(not(feature = "embedded"))]
fn embedded(_: &std::path::Path, _: Option<String>, _: &crate::domain::Limits) -> Result<Backends, BackendError> {
    Err(BackendError::Internal("this build has no embedded backend (feature \"embedded\")".into()))
}

/// DynamoDB plus KMS or Secrets Manager, with the SDK's configuration from
/// the environment (region, credentials, `AWS_ENDPOINT_URL` for an emulator).
#[cfg(feature = "aws")]
async fn aws<const S3: bool>(settings: &crate::config::AwsSettings) -> Result<Backends, BackendError> {
    use crate::adapters::dynamodb::DynamoStore;
    use crate::adapters::kms::KmsWrapper;
    use crate::adapters::secrets_manager::SecretsManagerWrapper;
    use crate::config::Wrapping;

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        // A client waiting seconds for a retry is worse than a prompt 503 with
        // Retry-After: a few quick attempts, short timeouts.
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(20))
                .with_max_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoStore::new(dynamodb.clone(), settings.table.clone());
    // Lambda runs many containers: quotas are counted in the table.
    let quotas = Arc::new(DynamoStore::new(dynamodb, settings.table.clone()));
    let wrapper: Arc<dyn KeyWrapper> = match &settings.wrapping {
        Wrapping::Kms { key_id } => Arc::new(KmsWrapper::new(
            aws_sdk_kms::Client::new(&sdk),
            key_id.clone(),
            settings.key_cache_entries,
            settings.key_cache_ttl,
        )),
        Wrapping::SecretsManager { secret_id } => {
            Arc::new(SecretsManagerWrapper::new(aws_sdk_secretsmanager::Client::new(&sdk), secret_id.clone()))
        }
    };
    let files: Arc<dyn FileStore> = match &settings.files {
        Some(s3) if S3 => Arc::new(crate::adapters::s3::S3FileStore::connect(&sdk, s3)?),
        Some(_) => Arc::new(NoFileStore("this function serves no file route")),
        None => Arc::new(NoFileStore("file storage is not configured (KEYSRV_FILES_BUCKET, KEYSRV_FILES_KMS_KEY_ID)")),
    };
    Ok(Backends {
        store: Arc::new(store),
        quotas,
        wrapper,
        files,
        #[cfg(feature = "embedded")]
        local_files: None,
    })
}

/// No file storage here (no bucket configured, or a function that serves
/// no file route): file operations fail loudly, with the reason.
#[cfg(feature = "aws")]
struct NoFileStore(&'static str);

#[cfg(feature = "aws")]
#[async_trait::async_trait]
impl FileStore for NoFileStore {
    async fn presign_upload(
        &self,
        _: crate::ports::FileObject<'_>,
        _: Duration,
    ) -> Result<crate::ports::PresignedRequest, BackendError> {
        Err(BackendError::Internal(self.0.into()))
    }

    async fn presign_download(
        &self,
        _: crate::ports::FileObject<'_>,
        _: Duration,
    ) -> Result<crate::ports::PresignedRequest, BackendError> {
        Err(BackendError::Internal(self.0.into()))
    }

    async fn delete(&self, keys: &[crate::ids::StorageKey]) -> Result<(), BackendError> {
        // Nothing stored here, nothing to delete.
        if keys.is_empty() { Ok(()) } else { Err(BackendError::Internal(self.0.into())) }
    }

    async fn list_stored(
        &self,
        _: Option<&crate::ids::StorageKey>,
        _: usize,
    ) -> Result<crate::ports::StoredPage, BackendError> {
        Err(BackendError::Internal(self.0.into()))
    }
}

#[cfg(not(feature = "aws"))]
async fn aws<const S3: bool>(_: &crate::config::AwsSettings) -> Result<Backends, BackendError> {
    Err(BackendError::Internal("this build has no AWS backends (feature \"aws\")".into()))
}
