//! Configuration: one typed value, built once per process (per Lambda
//! container, or per `keysrv server`) and passed down. Each `KEYSRV_*`
//! variable is read in one place: here, from the environment — or, for the
//! few `keysrv server` also takes as flags (`--backend`, `--data-dir`), by
//! clap, which hands its values in through `Config::from_vars`.

#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use tracing_subscriber::filter::Targets;

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

/// The data directory of the embedded backend when none is given.
pub const DEFAULT_DATA_DIR: &str = ".keysrv";
/// The backend when none is given.
pub const DEFAULT_BACKEND: &str = "embedded";

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
    /// Which log events are written (`KEYSRV_LOG`): a level (`info`), or
    /// `target=level` pairs after an optional default level
    /// (`warn,audit=info`) — the same syntax on Lambda and `keysrv server`.
    pub log: Targets,
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
            backend: Backend::Embedded { data_dir: PathBuf::from(DEFAULT_DATA_DIR) },
            public_url: None,
            log: Targets::new().with_default(tracing::Level::INFO),
        }
    }
}

/// Where the settings come from: the environment, or the environment with
/// some variables already read by someone else (clap).
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

struct Vars<'a>(Lookup<'a>);

impl Vars<'_> {
    /// A variable's value; set but empty counts as unset.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or_else(|| bad(name, "must be set for the AWS backend"))
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| bad(name, format!("{v:?} is not a number"))),
        }
    }
}

/// `KEYSRV_LOG`: a level, or `target=level` pairs after an optional
/// default level. Stricter than `Targets` alone, which takes a bare word as
/// a target to log at every level: a misspelt level is an error at start,
/// not a flood (or silence).
pub fn parse_log_filter(spec: &str) -> Result<Targets, ConfigError> {
    let invalid = |why: String| bad("KEYSRV_LOG", format!("{spec:?}: {why} (e.g. \"info\" or \"warn,audit=info\")"));
    for part in spec.split(',').map(str::trim) {
        let level = part.rsplit_once('=').map_or(part, |(_, level)| level);
        level
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .map_err(|_| invalid(format!("{level:?} is not a level")))?;
    }
    spec.parse::<Targets>().map_err(|e| invalid(e.to_string()))
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
    /// Everything from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&env_var)
    }

    /// The environment, except for the variables in `overrides` (name,
    /// value): those someone else read already (clap, for its flags).
    pub fn from_env_with(overrides: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Self::from_vars(&|name| match overrides.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => Some((*v).to_owned()),
            None => env_var(name),
        })
    }

    /// Everything from `lookup`, which answers for each variable name.
    pub fn from_vars(lookup: Lookup) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        let mut c = Self::default();
        if let Some(spec) = vars.get("KEYSRV_LOG") {
            c.log = parse_log_filter(&spec)?;
        }
        if let Some(claim) = vars.get("KEYSRV_CALLER_CLAIM") {
            c.caller_claim = claim;
        }
        c.limits.max_members = vars.number("KEYSRV_MAX_MEMBERS", c.limits.max_members)?;
        if c.limits.max_members == 0 {
            return Err(bad("KEYSRV_MAX_MEMBERS", "must be at least 1"));
        }
        c.limits.max_file_bytes = vars.number("KEYSRV_FILE_MAX_BYTES", c.limits.max_file_bytes)?;
        let ttl = vars.number("KEYSRV_FILE_URL_TTL_SECS", c.limits.file_url_ttl.as_secs())?;
        if !(1..=3600).contains(&ttl) {
            return Err(bad("KEYSRV_FILE_URL_TTL_SECS", "must be between 1 and 3600"));
        }
        c.limits.file_url_ttl = Duration::from_secs(ttl);
        // At most 6 hours: the S3 lifecycle rule expires upload tombstones
        // after a day, and they must outlive every upload they block.
        let grace = vars.number("KEYSRV_UPLOAD_GRACE_SECS", c.limits.upload_grace.as_secs())?;
        if !(1..=6 * 3600).contains(&grace) {
            return Err(bad("KEYSRV_UPLOAD_GRACE_SECS", "must be between 1 and 21600"));
        }
        c.limits.upload_grace = Duration::from_secs(grace);
        c.limits.quotas.window = Duration::from_secs(vars.number("KEYSRV_QUOTA_WINDOW_SECS", 60)?);
        if c.limits.quotas.window.is_zero() {
            return Err(bad("KEYSRV_QUOTA_WINDOW_SECS", "must be at least 1"));
        }
        if let Some(spec) = vars.get("KEYSRV_QUOTAS") {
            parse_quotas(&spec, &mut c.limits.quotas)?;
        }
        c.limits.max_upload_bytes_in_flight =
            vars.number("KEYSRV_UPLOAD_INFLIGHT_MAX_BYTES", c.limits.max_upload_bytes_in_flight)?;
        if c.limits.max_upload_bytes_in_flight < c.limits.max_file_bytes {
            return Err(bad(
                "KEYSRV_UPLOAD_INFLIGHT_MAX_BYTES",
                "must be at least KEYSRV_FILE_MAX_BYTES (one upload must fit)",
            ));
        }
        c.public_url = vars.get("KEYSRV_PUBLIC_URL");
        c.backend = match vars.get("KEYSRV_BACKEND").as_deref().unwrap_or(DEFAULT_BACKEND) {
            "embedded" => Backend::Embedded {
                data_dir: PathBuf::from(vars.get("KEYSRV_DATA_DIR").as_deref().unwrap_or(DEFAULT_DATA_DIR)),
            },
            "aws" => {
                let wrapping = match vars.get("KEYSRV_WRAPPING").as_deref() {
                    None | Some("kms") => Wrapping::Kms { key_id: vars.required("KEYSRV_KMS_KEY_ID")? },
                    Some("secretsmanager") => {
                        Wrapping::SecretsManager { secret_id: vars.required("KEYSRV_MASTER_KEY_SECRET_ID")? }
                    }
                    Some(other) => {
                        return Err(bad(
                            "KEYSRV_WRAPPING",
                            format!("{other:?}: expected \"kms\" or \"secretsmanager\""),
                        ));
                    }
                };
                Backend::Aws(AwsSettings {
                    table: vars.required("KEYSRV_TABLE")?,
                    wrapping,
                    key_cache_entries: vars.number("KEYSRV_KEY_CACHE_ENTRIES", 10_000)?,
                    key_cache_ttl: Duration::from_secs(vars.number("KEYSRV_KEY_CACHE_TTL_SECS", 300)?),
                    files: match vars.get("KEYSRV_FILES_BUCKET") {
                        None => None,
                        Some(bucket) => Some(S3Files { bucket, kms_key_id: vars.required("KEYSRV_FILES_KMS_KEY_ID")? }),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(&|name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn defaults_need_nothing_and_empty_is_unset() {
        let c = from(&[("KEYSRV_DATA_DIR", ""), ("KEYSRV_LOG", "")]).unwrap();
        assert!(matches!(&c.backend, Backend::Embedded { data_dir } if data_dir == Path::new(DEFAULT_DATA_DIR)));
        assert!(c.log.would_enable("keysrv_shared", &tracing::Level::INFO));
        assert!(!c.log.would_enable("keysrv_shared", &tracing::Level::DEBUG));
    }

    #[test]
    fn the_log_filter_has_one_syntax_and_typos_are_errors() {
        let c = from(&[("KEYSRV_LOG", "warn,audit=info")]).unwrap();
        assert!(c.log.would_enable("audit", &tracing::Level::INFO));
        assert!(!c.log.would_enable("keysrv_shared", &tracing::Level::INFO));
        let e = from(&[("KEYSRV_LOG", "loud")]).unwrap_err();
        assert_eq!(e.variable, "KEYSRV_LOG");
    }

    #[test]
    fn errors_name_the_variable() {
        for (pairs, variable) in [
            (&[("KEYSRV_BACKEND", "cloud")][..], "KEYSRV_BACKEND"),
            (&[("KEYSRV_BACKEND", "aws")][..], "KEYSRV_KMS_KEY_ID"),
            (&[("KEYSRV_BACKEND", "aws"), ("KEYSRV_KMS_KEY_ID", "k")][..], "KEYSRV_TABLE"),
            (&[("KEYSRV_MAX_MEMBERS", "many")][..], "KEYSRV_MAX_MEMBERS"),
            (&[("KEYSRV_MAX_MEMBERS", "0")][..], "KEYSRV_MAX_MEMBERS"),
            (&[("KEYSRV_FILE_URL_TTL_SECS", "0")][..], "KEYSRV_FILE_URL_TTL_SECS"),
            (&[("KEYSRV_QUOTAS", "create=x")][..], "KEYSRV_QUOTAS"),
            (&[("KEYSRV_QUOTAS", "delete=1")][..], "KEYSRV_QUOTAS"),
            (&[("KEYSRV_QUOTA_WINDOW_SECS", "0")][..], "KEYSRV_QUOTA_WINDOW_SECS"),
            (&[("KEYSRV_UPLOAD_INFLIGHT_MAX_BYTES", "1")][..], "KEYSRV_UPLOAD_INFLIGHT_MAX_BYTES"),
            (&[("KEYSRV_BACKEND", "aws"), ("KEYSRV_WRAPPING", "rot13")][..], "KEYSRV_WRAPPING"),
        ] {
            let e = from(pairs).unwrap_err();
            assert_eq!(e.variable, variable, "{pairs:?}: {e}");
        }
    }

    #[test]
    fn overrides_win_over_the_environment() {
        // The variable is not set in the test environment; the override
        // alone decides.
        let c = Config::from_env_with(&[("KEYSRV_DATA_DIR", "/tmp/keysrv-override")]).unwrap();
        assert!(matches!(&c.backend, Backend::Embedded { data_dir } if data_dir == Path::new("/tmp/keysrv-override")));
    }
}
