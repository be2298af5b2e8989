//! Configuration, read from the environment once per process (per Lambda
//! container, or per `keysrv server`).

use std::path::PathBuf;

use crate::domain::Limits;
use crate::error::Error;

#[derive(Clone, Debug)]
pub struct Config {
    /// Where the embedded backend keeps its database and master key.
    pub data_dir: PathBuf,
    /// The token claim that holds the caller's bare JID.
    pub caller_claim: String,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self { data_dir: PathBuf::from(".keysrv"), caller_claim: "username".into(), limits: Limits::default() }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, Error> {
        let mut c = Self::default();
        if let Ok(dir) = std::env::var("KEYSRV_DATA_DIR") {
            c.data_dir = PathBuf::from(dir);
        }
        if let Ok(claim) = std::env::var("KEYSRV_CALLER_CLAIM") {
            c.caller_claim = claim;
        }
        if let Ok(max) = std::env::var("KEYSRV_MAX_MEMBERS") {
            c.limits.max_members = max
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Error::BadRequest(format!("KEYSRV_MAX_MEMBERS={max:?} is not a positive number")))?;
        }
        Ok(c)
    }
}
