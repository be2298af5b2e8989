//! The application: configuration plus the key service wired to its
//! backends. Built once per process (per Lambda container), outside any
//! request.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Backend, Config};
use crate::domain::KeyService;
use crate::ports::{BackendError, ConversationStore, KeyWrapper};

/// The two ports a backend provides.
type Backends = (Arc<dyn ConversationStore>, Arc<dyn KeyWrapper>);

pub struct App {
    pub config: Config,
    pub keys: KeyService,
}

impl App {
    /// The backends the environment selects (`KEYSRV_BACKEND`).
    pub async fn from_env() -> Result<Self, crate::Error> {
        Ok(Self::new(Config::from_env()?).await?)
    }

    pub async fn new(config: Config) -> Result<Self, BackendError> {
        let (store, wrapper): Backends = match &config.backend {
            Backend::Embedded { data_dir } => embedded(data_dir)?,
            Backend::Aws(settings) => aws(settings).await?,
        };
        let keys = KeyService::new(store, wrapper, config.limits.clone());
        Ok(Self { config, keys })
    }
}

/// SQLite and a local master key file, both in the data directory (created
/// 0700 if missing).
#[cfg(feature = "embedded")]
fn embedded(dir: &std::path::Path) -> Result<Backends, BackendError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| BackendError::Internal(format!("creating {}: {e}", dir.display())))?;
    let store = crate::adapters::sqlite::SqliteStore::open(&dir.join("keysrv.sqlite3"))?;
    let wrapper = crate::adapters::local_key_file::LocalKeyFile::open_or_create(&dir.join("master.key"))?;
    Ok((Arc::new(store), Arc::new(wrapper)))
}

#[cfg(not(feature = "embedded"))]
fn embedded(_: &std::path::Path) -> Result<Backends, BackendError> {
    Err(BackendError::Internal("this build has no embedded backend (feature \"embedded\")".into()))
}

/// DynamoDB plus KMS or Secrets Manager, with the SDK's configuration from
/// the environment (region, credentials, `AWS_ENDPOINT_URL` for an emulator).
#[cfg(feature = "aws")]
async fn aws(settings: &crate::config::AwsSettings) -> Result<Backends, BackendError> {
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
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), settings.table.clone());
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
    Ok((Arc::new(store), wrapper))
}

#[cfg(not(feature = "aws"))]
async fn aws(_: &crate::config::AwsSettings) -> Result<Backends, BackendError> {
    Err(BackendError::Internal("this build has no AWS backends (feature \"aws\")".into()))
}
