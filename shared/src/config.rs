//! Configuration, read from the environment once per process (per Lambda
//! container, or per `keysrv server`).

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::Limits;

/// A setting that is missing or wrong: which variable, and what is wrong
/// with it. Reported at start, before anything is served.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn bad(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { variable, problem: problem.into() }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The token claim that holds the caller's bare JID.
    pub caller_claim: String,
    pub limits: Limits,
    pub backend: Backend,
    /// Embedded backend: the base URL clients reach `keysrv server` at, for
    /// the file URLs it signs (`KEYSRV_PUBLIC_URL`); by default the address
    /// it listens on.
    pub public_url: Option<String>,
}

/// Where rows and key material live.
#[derive(Clone, Debug)]
pub enum Backend {
    /// SQLite and a master key file in `data_dir`.
    Embedded { data_dir: PathBuf },
    /// DynamoDB, with data keys wrapped by KMS or a Secrets Manager master key.
    Aws(AwsSettings),
}

#[derive(Clone, Debug)]
pub struct AwsSettings {
    pub table: String,
    pub wrapping: Wrapping,
    /// Unwrapped KMS data keys kept per container (0 turns the cache off).
    pub key_cache_entries: usize,
    pub key_cache_ttl: Duration,
    /// Where file bytes go; without it the file routes answer 500.
    pub files: Option<S3Files>,
}

/// The bucket for file bytes and the KMS key of its SSE-KMS encryption.
#[derive(Clone, Debug)]
pub struct S3Files {
    pub bucket: String,
    pub kms_key_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrapping {
    Kms { key_id: String },
    SecretsManager { secret_id: String },
}

impl Default for Config {
    fn default() -> Self {
        Self {
            caller_claim: "username".into(),
            limits: Limits::default(),
            backend: Backend::Embedded { data_dir: PathBuf::from(".keysrv") },
            public_url: None,
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or_else(|| bad(name, "must be set for the AWS backend"))
}

fn number<T: std::str::FromStr + PartialOrd + Default>(name: &'static str, default: T) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| bad(name, format!("{v:?} is not a number"))),
    }
}

/// `create=30,rotate=120,members=120,files=60`: per caller and window; 0
/// turns one off. Operations not named keep their defaults.
fn parse_quotas(spec: &str, quotas: &mut crate::domain::QuotaLimits) -> Result<(), ConfigError> {
    use crate::ports::Metered;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) =
            part.split_once('=').ok_or_else(|| bad("KEYSRV_QUOTAS", format!("{part:?}: expected name=number")))?;
        let op = Metered::ALL
            .into_iter()
            .find(|m| m.name() == name.trim())
            .ok_or_else(|| bad("KEYSRV_QUOTAS", format!("{name:?}: expected create, rotate, members or files")))?;
        let limit = value.trim().parse().map_err(|_| bad("KEYSRV_QUOTAS", format!("{value:?} is not a number")))?;
        quotas.set(op, limit);
    }
    Ok(())
}

impl Config {
    /// Everything from the environment, the backend from `KEYSRV_BACKEND`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_for(var("KEYSRV_BACKEND").as_deref().unwrap_or("embedded"))
    }

    /// Everything from the environment, for the named backend.
    pub fn from_env_for(backend: &str) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        if let Some(claim) = var("KEYSRV_CALLER_CLAIM") {
            c.caller_claim = claim;
        }
        c.limits.max_members = number("KEYSRV_MAX_MEMBERS", c.limits.max_members)?;
        if c.limits.max_members == 0 {
            return Err(bad("KEYSRV_MAX_MEMBERS", "must be at least 1"));
        }
        c.limits.max_file_bytes = number("KEYSRV_FILE_MAX_BYTES", c.limits.max_file_bytes)?;
        let ttl = number("KEYSRV_FILE_URL_TTL_SECS", c.limits.file_url_ttl.as_secs())?;
        if !(1..=3600).contains(&ttl) {
            return Err(bad("KEYSRV_FILE_URL_TTL_SECS", "must be between 1 and 3600"));
        }
        c.limits.file_url_ttl = Duration::from_secs(ttl);
        // At most 6 hours: the S3 lifecycle rule expires upload tombstones
        // after a day, and they must outlive every upload they block.
        let grace = number("KEYSRV_UPLOAD_GRACE_SECS", c.limits.upload_grace.as_secs())?;
        if !(1..=6 * 3600).contains(&grace) {
            return Err(bad("KEYSRV_UPLOAD_GRACE_SECS", "must be between 1 and 21600"));
        }
        c.limits.upload_grace = Duration::from_secs(grace);
        c.limits.quotas.window = Duration::from_secs(number("KEYSRV_QUOTA_WINDOW_SECS", 60)?);
        if c.limits.quotas.window.is_zero() {
            return Err(bad("KEYSRV_QUOTA_WINDOW_SECS", "must be at least 1"));
        }
        if let Some(spec) = var("KEYSRV_QUOTAS") {
            parse_quotas(&spec, &mut c.limits.quotas)?;
        }
        c.limits.max_upload_bytes_in_flight =
            number("KEYSRV_UPLOAD_INFLIGHT_MAX_BYTES", c.limits.max_upload_bytes_in_flight)?;
        if c.limits.max_upload_bytes_in_flight < c.limits.max_file_bytes {
            return Err(bad(
                "KEYSRV_UPLOAD_INFLIGHT_MAX_BYTES",
                "must be at least KEYSRV_FILE_MAX_BYTES (one upload must fit)",
            ));
        }
        c.public_url = var("KEYSRV_PUBLIC_URL");
        c.backend = match backend {
            "embedded" => Backend::Embedded {
                data_dir: var("KEYSRV_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| ".keysrv".into()),
            },
            "aws" => {
                let wrapping = match var("KEYSRV_WRAPPING").as_deref() {
                    None | Some("kms") => Wrapping::Kms { key_id: required("KEYSRV_KMS_KEY_ID")? },
                    Some("secretsmanager") => {
                        Wrapping::SecretsManager { secret_id: required("KEYSRV_MASTER_KEY_SECRET_ID")? }
                    }
                    Some(other) => {
                        return Err(bad(
                            "KEYSRV_WRAPPING",
                            format!("{other:?}: expected \"kms\" or \"secretsmanager\""),
                        ));
                    }
                };
                Backend::Aws(AwsSettings {
                    table: required("KEYSRV_TABLE")?,
                    wrapping,
                    key_cache_entries: number("KEYSRV_KEY_CACHE_ENTRIES", 10_000)?,
                    key_cache_ttl: Duration::from_secs(number("KEYSRV_KEY_CACHE_TTL_SECS", 300)?),
                    files: match var("KEYSRV_FILES_BUCKET") {
                        None => None,
                        Some(bucket) => Some(S3Files { bucket, kms_key_id: required("KEYSRV_FILES_KMS_KEY_ID")? }),
                    },
                })
            }
            other => {
                return Err(bad("KEYSRV_BACKEND", format!("{other:?}: expected \"embedded\" or \"aws\"")));
            }
        };
        Ok(c)
    }
}
