//! Key wrapping under a 256-bit master key held in AWS Secrets Manager. The
//! secret is read once per container, on first use (functions that never
//! wrap or unwrap — and are not allowed to read the secret — never ask); data keys are wrapped locally with
//! AES-256-GCM (`master_key`). Each wrapped key records the secret's
//! version, so after the secret is rotated old keys still unwrap: their
//! version is fetched on first use and kept.
//!
//! The secret holds 32 bytes: as `SecretBinary`, or as a `SecretString` of 64
//! hex characters or of standard base64.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::sync::{Mutex, OnceCell};
use zeroize::Zeroizing;

use super::aws_errors::classify;
use super::master_key::MasterKey;
use crate::domain::model::{DataKey, WrappedKey};
use crate::ports::{BackendError, KeyContext, KeyWrapper};

const SCHEME_PREFIX: &str = "sm:";

pub struct SecretsManagerWrapper {
    client: Client,
    secret_id: String,
    current: OnceCell<Arc<MasterKey>>,
    versions: Mutex<HashMap<String, Arc<MasterKey>>>,
}

impl SecretsManagerWrapper {
    pub fn new(client: Client, secret_id: String) -> Self {
        Self { client, secret_id, current: OnceCell::new(), versions: Mutex::new(HashMap::new()) }
    }

    /// The secret's current version, read on first use.
    async fn current(&self) -> Result<&Arc<MasterKey>, BackendError> {
        self.current.get_or_try_init(|| async { fetch(&self.client, &self.secret_id, None).await.map(Arc::new) }).await
    }

    async fn version(&self, scheme: &str) -> Result<Arc<MasterKey>, BackendError> {
        let Some(version) = scheme.strip_prefix(SCHEME_PREFIX) else {
            return Err(BackendError::Integrity);
        };
        let mut versions = self.versions.lock().await;
        if let Some(key) = versions.get(scheme) {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(fetch(&self.client, &self.secret_id, Some(version)).await?);
        versions.insert(scheme.to_owned(), Arc::clone(&key));
        Ok(key)
    }
}

async fn fetch(client: &Client, secret_id: &str, version: Option<&str>) -> Result<MasterKey, BackendError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .map_err(|e| classify("secretsmanager:GetSecretValue", e))?;
    let version_id =
        out.version_id.ok_or_else(|| BackendError::Internal("the master key secret has no version".into()))?;
    // Both forms of the secret are wiped once the master key is built.
    let binary = out.secret_binary.map(|b| Zeroizing::new(b.into_inner()));
    let string = out.secret_string.map(Zeroizing::new);
    let bytes = match (&binary, &string) {
        (Some(b), _) => Zeroizing::new(b.to_vec()),
        (None, Some(s)) => decode_secret_string(s.trim())?,
        (None, None) => return Err(BackendError::Internal("the master key secret is empty".into())),
    };
    MasterKey::new(&bytes, format!("{SCHEME_PREFIX}{version_id}"))
}

fn decode_secret_string(s: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
    let bad =
        || BackendError::Internal("the master key secret must hold 32 bytes (binary, 64 hex digits or base64)".into());
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = (0..32).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16)).collect::<Result<Vec<u8>, _>>();
        return bytes.map(Zeroizing::new).map_err(|_| bad());
    }
    STANDARD.decode(s).map(Zeroizing::new).map_err(|_| bad())
}

#[async_trait]
impl KeyWrapper for SecretsManagerWrapper {
    async fn generate(&self, ctx: KeyContext<'_>) -> Result<(DataKey, WrappedKey), BackendError> {
        self.current().await?.generate(ctx)
    }

    async fn unwrap(&self, ctx: KeyContext<'_>, wrapped: &WrappedKey) -> Result<DataKey, BackendError> {
        let current = self.current().await?;
        if wrapped.scheme == current.scheme() {
            return current.open(ctx, wrapped);
        }
        self.version(&wrapped.scheme).await?.open(ctx, wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_strings_decode_to_32_bytes() {
        let hex = "00".repeat(31) + "ff";
        assert_eq!(decode_secret_string(&hex).unwrap()[31], 0xff);
        assert_eq!(decode_secret_string(&STANDARD.encode([9u8; 32])).unwrap().len(), 32);
        assert!(decode_secret_string("not base64!").is_err());
    }
}
