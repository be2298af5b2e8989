//! The file store on S3: presigned PUT and GET URLs, straight to a bucket
//! whose objects are encrypted with SSE-KMS under the project's key.
//!
//! An upload URL signs the object key, `Content-Type`, `Content-Length`,
//! both SSE-KMS headers (`x-amz-server-side-encryption: aws:kms` and the key
//! id) and `If-None-Match: *`, so S3 refuses an upload of another size, type
//! or encryption, and any upload to a key that already holds an object; the
//! bucket policy refuses any PutObject without SSE-KMS as well. The URLs are
//! signed with the function's own (temporary) credentials: a URL stops
//! working when either it or those credentials expire.
//!
//! Deleting a file whose upload URL may still be live (registered within
//! the URL lifetime) cannot just delete the object: the URL could store the
//! bytes again after a crypto-shred. Instead its key is overwritten with an
//! empty "tombstone" object (the old bytes are gone: the bucket keeps no
//! versions), which the URL's `If-None-Match: *` cannot overwrite; a
//! lifecycle rule removes tombstones (tag `keysrv=tombstone`) after a day.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption};

use super::aws_errors::classify;
use crate::ids::StorageKey;
use crate::ports::{BackendError, FileObject, FileStore, PresignedRequest, StoredPage};
use crate::timestamp::Timestamp;

/// S3's limit of keys per `DeleteObjects`.
const MAX_DELETE: usize = 1000;
/// Tombstone writes in flight at once.
const PARALLEL_TOMBSTONES: usize = 16;
/// The tag the bucket's lifecycle rule expires tombstones by (template.yaml).
const TOMBSTONE_TAG: &str = "keysrv=tombstone";

pub struct S3FileStore {
    client: Client,
    bucket: String,
    kms_key_id: String,
}

impl S3FileStore {
    pub fn new(client: Client, bucket: String, kms_key_id: String) -> Self {
        Self { client, bucket, kms_key_id }
    }

    /// A store on the configured bucket, with the SDK's shared configuration.
    pub fn connect(sdk: &aws_config::SdkConfig, files: &crate::config::S3Files) -> Self {
        // An emulator is reached by an address, not a bucket subdomain.
        let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build();
        Self::new(Client::from_conf(config), files.bucket.clone(), files.kms_key_id.clone())
    }
}

fn presigning(ttl: Duration) -> Result<(PresigningConfig, Timestamp), BackendError> {
    let config = PresigningConfig::expires_in(ttl).map_err(|e| BackendError::Internal(format!("presigning: {e}")))?;
    Ok((config, Timestamp::now().plus_secs(ttl.as_secs() as i64)))
}

fn presign_error(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("s3 presigning: {e}"))
}

#[async_trait]
impl FileStore for S3FileStore {
    async fn presign_upload(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError> {
        let (config, expires_at) = presigning(ttl)?;
        let size = i64::try_from(object.size).map_err(|_| BackendError::Internal("file size".into()))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object.storage_key.as_str())
            .content_type(object.media_type.as_str())
            .content_length(size)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_id)
            .if_none_match("*")
            .presigned(config)
            .await
            .map_err(presign_error)?;
        let headers = req.headers().map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned())).collect();
        Ok(PresignedRequest { url: req.uri().to_owned(), headers, expires_at })
    }

    async fn presign_download(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError> {
        let (config, expires_at) = presigning(ttl)?;
        // What keysrv server sends with the files it serves, as far as S3's
        // response overrides go: a download, never a page of S3's origin
        // (an uploaded HTML or SVG file must not render), and never cached.
        // S3 cannot add `X-Content-Type-Options: nosniff` or
        // `Content-Security-Policy: sandbox` to a presigned GET.
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object.storage_key.as_str())
            .response_content_disposition("attachment")
            .response_content_type(object.media_type.as_str())
            .response_cache_control("no-store")
            .presigned(config)
            .await
            .map_err(presign_error)?;
        let headers = req.headers().map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned())).collect();
        Ok(PresignedRequest { url: req.uri().to_owned(), headers, expires_at })
    }

    async fn delete_recent(&self, keys: &[StorageKey]) -> Result<(), BackendError> {
        let mut set = tokio::task::JoinSet::new();
        for key in keys {
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key.as_str())
                .content_type("application/octet-stream")
                .content_length(0)
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(&self.kms_key_id)
                .tagging(TOMBSTONE_TAG);
            set.spawn(async move { put.send().await.map(|_| ()).map_err(|e| classify("s3:PutObject", e)) });
            while set.len() >= PARALLEL_TOMBSTONES {
                join_put(&mut set).await?;
            }
        }
        while !set.is_empty() {
            join_put(&mut set).await?;
        }
        Ok(())
    }

    /// Objects of size 0 are left out: tombstones (and empty files) hold no
    /// bytes, and a tombstone must stay until the lifecycle rule expires it.
    async fn list_stored(&self, after: Option<&StorageKey>, limit: usize) -> Result<StoredPage, BackendError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_start_after(after.map(|a| a.as_str().to_owned()))
            .max_keys(i32::try_from(limit).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| classify("s3:ListObjectsV2", e))?;
        let objects = out.contents.unwrap_or_default();
        let next = if out.is_truncated == Some(true) {
            objects.last().and_then(|o| o.key.as_deref()).and_then(|k| StorageKey::parse(k).ok())
        } else {
            None
        };
        let keys = objects
            .iter()
            .filter(|o| o.size.unwrap_or(0) > 0)
            .filter_map(|o| o.key.as_deref().and_then(|k| StorageKey::parse(k).ok()))
            .collect();
        Ok(StoredPage { keys, next })
    }

    async fn delete(&self, keys: &[StorageKey]) -> Result<(), BackendError> {
        for chunk in keys.chunks(MAX_DELETE) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k.as_str()).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BackendError::Internal(format!("s3 request: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| BackendError::Internal(format!("s3 request: {e}")))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| classify("s3:DeleteObjects", e))?;
            // Per-key failures come back in a 200; a crypto-shred must not
            // report success while bytes remain.
            if let Some(err) = out.errors.unwrap_or_default().first() {
                return Err(BackendError::Unavailable {
                    reason: format!("s3:DeleteObjects: {}", err.code.as_deref().unwrap_or("error")),
                    retry_after_secs: 1,
                });
            }
        }
        Ok(())
    }
}

async fn join_put(set: &mut tokio::task::JoinSet<Result<(), BackendError>>) -> Result<(), BackendError> {
    match set.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(BackendError::Internal(format!("tombstone task: {e}"))),
        None => Ok(()),
    }
}
