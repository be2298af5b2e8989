//! Key wrapping with AWS KMS: `GenerateDataKey` (AES_256) on creation,
//! `Decrypt` on release, both under an encryption context that binds the
//! conversation id and the objectid (IAM policies require exactly those
//! context keys). Unwrapped keys are cached briefly (see `key_cache`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use zeroize::Zeroize;

use super::aws_errors::classify;
use super::key_cache::KeyCache;
use crate::domain::model::{DataKey, WrappedKey};
use crate::ports::{BackendError, KeyContext, KeyWrapper};

const SCHEME: &str = "kms";

pub struct KmsWrapper {
    client: Client,
    key_id: String,
    cache: KeyCache,
}

impl KmsWrapper {
    pub fn new(client: Client, key_id: String, cache_entries: usize, cache_ttl: Duration) -> Self {
        Self { client, key_id, cache: KeyCache::new(cache_entries, cache_ttl) }
    }
}

fn take_key(blob: Option<Blob>) -> Result<DataKey, BackendError> {
    let mut bytes = blob.map(Blob::into_inner).unwrap_or_default();
    let key = DataKey::from_slice(&bytes);
    bytes.zeroize();
    key.ok_or_else(|| BackendError::Internal("KMS returned a data key that is not 32 bytes".into()))
}

#[async_trait]
impl KeyWrapper for KmsWrapper {
    async fn generate(&self, ctx: KeyContext<'_>) -> Result<(DataKey, WrappedKey), BackendError> {
        crate::metrics::inc(&crate::metrics::METRICS.kms_calls);
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("conversation_id", ctx.conversation_id.as_str())
            .encryption_context("objectid", ctx.objectid.as_str())
            .send()
            .await
            .map_err(|e| kms_failed(classify("kms:GenerateDataKey", e)))?;
        let blob = out.ciphertext_blob.clone().map(Blob::into_inner).unwrap_or_default();
        let key = take_key(out.plaintext)?;
        self.cache.insert(ctx.objectid.as_str(), &key);
        Ok((key, WrappedKey { scheme: SCHEME.into(), blob }))
    }

    async fn unwrap(&self, ctx: KeyContext<'_>, wrapped: &WrappedKey) -> Result<DataKey, BackendError> {
        if wrapped.scheme != SCHEME {
            return Err(BackendError::Integrity);
        }
        if let Some(key) = self.cache.get(ctx.objectid.as_str()) {
            crate::metrics::inc(&crate::metrics::METRICS.key_cache_hits);
            return Ok(key);
        }
        crate::metrics::inc(&crate::metrics::METRICS.key_cache_misses);
        crate::metrics::inc(&crate::metrics::METRICS.kms_calls);
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped.blob.clone()))
            .encryption_context("conversation_id", ctx.conversation_id.as_str())
            .encryption_context("objectid", ctx.objectid.as_str())
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_invalid_ciphertext_exception() || se.is_incorrect_key_exception() => {
                    BackendError::Integrity
                }
                _ => kms_failed(classify("kms:Decrypt", e)),
            })?;
        let key = take_key(out.plaintext)?;
        self.cache.insert(ctx.objectid.as_str(), &key);
        Ok(key)
    }
}

/// Counts a failed KMS call (for the KMS-failure alarm) and passes it on.
fn kms_failed(e: BackendError) -> BackendError {
    crate::metrics::inc(&crate::metrics::METRICS.kms_failures);
    e
}
