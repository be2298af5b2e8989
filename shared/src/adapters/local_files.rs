//! The file store of the embedded backend: each file's bytes in
//! `<data dir>/files/<storage key>`, encrypted with a data key of its own
//! that the master key wraps (as it wraps conversation keys), and URLs that
//! `keysrv server` signs and serves itself (`keysrv/src/blobs.rs`).
//!
//! A URL is `<base>/blobs/<storage key>?file=<file id>&expires=<unix secs>&sig=<HMAC>`,
//! the HMAC-SHA-256 (key `url-signing.key` in the data directory) over the
//! method, storage key, file id, expiry and — for uploads — the exact
//! `Content-Length` and `Content-Type`. A request that differs in any of
//! them fails the signature check, exactly like a presigned S3 URL.
//!
//! Stored layout: `KSB1`, the wrapping scheme (u8 length + bytes), the
//! wrapped data key (u16 big-endian length + bytes), a 7-byte nonce prefix,
//! then the bytes as STREAM (`aead-stream`, big-endian 32-bit counter)
//! chunks of 64 KiB of plaintext, each with its 16-byte tag; the last chunk
//! carries STREAM's last-chunk flag, so truncation is detected. Moving bytes
//! takes one chunk of memory, whatever the file's size.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aead_stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{KeyInit, Payload};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};

use super::local_key_file::{LocalKeyFile, read_or_create_secret};
use crate::domain::model::{DataKey, WrappedKey};
use crate::error::{Conflict, Error, Invalid, TooLarge, UrlRefused};
use crate::ids::{FileId, StorageKey, random_bytes};
use crate::ports::{BackendError, FileObject, FileStore, PresignedRequest, StoredPage};
use crate::timestamp::Timestamp;

/// The path prefix `keysrv server` serves file bytes under.
pub const BLOB_PATH: &str = "/blobs";

const MAGIC: &[u8; 4] = b"KSB1";
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const NONCE_PREFIX: usize = 7;

type HmacSha256 = Hmac<Sha256>;

pub struct LocalFileStore {
    dir: PathBuf,
    /// Keyed with `url-signing.key`; cloned for each signature.
    signer: HmacSha256,
    keys: Arc<LocalKeyFile>,
    base_url: OnceLock<String>,
    uploads: Arc<Uploads>,
}

/// The uploads in progress: at most one per storage key, and at most
/// `max_bytes` (declared sizes, so also temporary disk space) in all.
struct Uploads {
    keys: std::sync::Mutex<std::collections::HashSet<StorageKey>>,
    /// One permit per KiB of declared size.
    bytes: Arc<tokio::sync::Semaphore>,
    max_bytes: u64,
}

/// An upload's claim on its storage key and its share of the bytes in
/// flight; released when dropped (finished, failed or abandoned).
struct UploadSlot {
    uploads: Arc<Uploads>,
    key: StorageKey,
    _bytes: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        self.uploads.keys.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

fn kib(size: u64) -> u32 {
    u32::try_from(size.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

fn io_error(doing: &str, path: &Path, e: std::io::Error) -> BackendError {
    BackendError::Internal(format!("{doing} {}: {e}", path.display()))
}

/// The AAD of a file's wrapped data key and of each of its chunks: the
/// bytes of one file do not open under another's name.
fn aad(storage_key: &StorageKey) -> Vec<u8> {
    format!("keysrv/v1/file\0{storage_key}").into_bytes()
}

/// The query of a signed URL.
#[derive(Debug)]
pub struct SignedQuery {
    pub file_id: FileId,
    pub expires: i64,
    sig: Vec<u8>,
}

impl SignedQuery {
    /// Every failure is the same 403: the URL is not one keysrv issued.
    pub fn parse(query: Option<&str>) -> Result<Self, Error> {
        let (mut file, mut expires, mut sig) = (None, None, None);
        for pair in query.unwrap_or_default().split('&') {
            match pair.split_once('=') {
                Some(("file", v)) => file = FileId::parse(v).ok(),
                Some(("expires", v)) => expires = v.parse::<i64>().ok(),
                Some(("sig", v)) => sig = URL_SAFE_NO_PAD.decode(v).ok(),
                _ => {}
            }
        }
        match (file, expires, sig) {
            (Some(file_id), Some(expires), Some(sig)) => Ok(Self { file_id, expires, sig }),
            _ => Err(invalid_url()),
        }
    }
}

fn invalid_url() -> Error {
    UrlRefused::Invalid.into()
}

impl LocalFileStore {
    /// Opens (creating 0700) `<data_dir>/files` and the URL signing key.
    /// Upload leftovers of a previous run (temporary files) are removed.
    /// Uploads in progress may declare `max_upload_bytes_in_flight` bytes in all.
    pub fn open(
        data_dir: &Path,
        keys: Arc<LocalKeyFile>,
        base_url: Option<String>,
        max_upload_bytes_in_flight: u64,
    ) -> Result<Self, BackendError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = data_dir.join("files");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io_error("creating", &dir, e))?;
        for entry in std::fs::read_dir(&dir).map_err(|e| io_error("listing", &dir, e))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let signing_key = read_or_create_secret(&data_dir.join("url-signing.key"), "URL signing key")?;
        let signer = HmacSha256::new_from_slice(&signing_key)
            .map_err(|_| BackendError::Internal("the URL signing key was refused by HMAC".into()))?;
        let permits = usize::try_from(max_upload_bytes_in_flight.div_ceil(1024))
            .unwrap_or(usize::MAX)
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        let uploads = Arc::new(Uploads {
            keys: Default::default(),
            bytes: Arc::new(tokio::sync::Semaphore::new(permits)),
            max_bytes: max_upload_bytes_in_flight,
        });
        let store = Self { dir, signer, keys, base_url: OnceLock::new(), uploads };
        if let Some(url) = base_url {
            store.set_base_url(url);
        }
        Ok(store)
    }

    /// Where clients reach this server (`http://127.0.0.1:8080`); set once,
    /// by configuration or by `keysrv server` when it has bound its port.
    pub fn set_base_url(&self, url: String) {
        let _ = self.base_url.set(url.trim_end_matches('/').to_owned());
    }

    fn base_url(&self) -> Result<&str, BackendError> {
        self.base_url
            .get()
            .map(String::as_str)
            .ok_or_else(|| BackendError::Internal("the file server's public URL is not known yet".into()))
    }

    fn path(&self, key: &StorageKey) -> PathBuf {
        self.dir.join(key.as_str())
    }

    fn mac(&self, method: &str, key: &str, file_id: &FileId, expires: i64, size: &str, media_type: &str) -> HmacSha256 {
        let mut mac = self.signer.clone();
        for part in ["keysrv-blob-v1", method, key, file_id.as_str(), &expires.to_string(), size, media_type] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    fn signed_url(
        &self,
        method: &str,
        object: FileObject<'_>,
        ttl: Duration,
    ) -> Result<(String, Timestamp), BackendError> {
        let expires_at = Timestamp::now().plus_secs(ttl.as_secs() as i64);
        let expires = expires_at.millis() / 1000;
        let (size, media_type) = upload_fields(method, object);
        let sig = self
            .mac(method, object.storage_key.as_str(), object.file_id, expires, &size, media_type)
            .finalize()
            .into_bytes();
        let url = format!(
            "{}{BLOB_PATH}/{}?file={}&expires={expires}&sig={}",
            self.base_url()?,
            object.storage_key,
            object.file_id,
            URL_SAFE_NO_PAD.encode(sig)
        );
        Ok((url, Timestamp::from_millis(expires * 1000)))
    }

    /// Checks a request against its signed URL: signature (in constant
    /// time), then expiry. For uploads, `size` and `media_type` are the
    /// request's own `Content-Length` and `Content-Type`.
    pub fn verify(
        &self,
        method: &str,
        storage_key: &str,
        query: &SignedQuery,
        size: Option<u64>,
        media_type: Option<&str>,
    ) -> Result<StorageKey, Error> {
        let size = size.map(|s| s.to_string()).unwrap_or_default();
        let mac = self.mac(method, storage_key, &query.file_id, query.expires, &size, media_type.unwrap_or_default());
        mac.verify_slice(&query.sig).map_err(|_| invalid_url())?;
        if Timestamp::now().millis() / 1000 > query.expires {
            return Err(UrlRefused::Expired.into());
        }
        StorageKey::parse(storage_key).map_err(|_| invalid_url())
    }

    /// Starts storing the bytes of `key`: exactly `size` bytes must follow.
    /// One upload per key at a time (a second is a 409 while the first
    /// runs), and the declared sizes of all uploads in progress stay under
    /// the configured total (503 with `Retry-After` beyond it).
    pub async fn writer(&self, key: &StorageKey, size: u64) -> Result<BlobWriter, Error> {
        let dest = self.path(key);
        let slot = self.claim(key, size)?;
        // One upload per key, so one temporary file per key.
        let tmp = self.dir.join(format!(".tmp-{key}"));
        let data_key = DataKey::from_bytes(random_bytes::<32>()?);
        let master = self.keys.master();
        let wrapped = master.seal_with_aad(&aad(key), &data_key)?;
        let prefix = random_bytes::<NONCE_PREFIX>()?;
        let mut header = Vec::with_capacity(64 + wrapped.blob.len());
        header.extend_from_slice(MAGIC);
        header.push(wrapped.scheme.len() as u8);
        header.extend_from_slice(wrapped.scheme.as_bytes());
        header.extend_from_slice(&(wrapped.blob.len() as u16).to_be_bytes());
        header.extend_from_slice(&wrapped.blob);
        header.extend_from_slice(&prefix);
        let staging = Staging { tmp: tmp.clone(), _slot: slot };
        let (file, staging) = blocking({
            let dest = dest.clone();
            move || {
                use std::os::unix::fs::OpenOptionsExt;
                if dest.try_exists().unwrap_or(false) {
                    return Err(already_uploaded());
                }
                let file =
                    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&staging.tmp);
                Ok((file.map_err(|e| io_error("creating", &staging.tmp, e))?, staging))
            }
        })
        .await?;
        let mut out = BufWriter::with_capacity(CHUNK + TAG, tokio::fs::File::from_std(file));
        out.write_all(&header).await.map_err(|e| io_error("writing", &tmp, e))?;
        let cipher = cipher(&data_key)?;
        Ok(BlobWriter {
            out: Some(out),
            enc: Some(EncryptorBE32::from_aead(cipher, &prefix.into())),
            buf: Vec::with_capacity(CHUNK),
            aad: aad(key),
            expected: size,
            received: 0,
            tmp,
            dest,
            staging: Some(staging),
        })
    }

    fn claim(&self, key: &StorageKey, size: u64) -> Result<UploadSlot, Error> {
        let uploads = &self.uploads;
        if size > uploads.max_bytes {
            return Err(TooLarge::UploadsInFlight { max_bytes: uploads.max_bytes }.into());
        }
        if !uploads.keys.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
            return Err(Conflict::UploadInProgress.into());
        }
        match uploads.bytes.clone().try_acquire_many_owned(kib(size)) {
            Ok(permit) => Ok(UploadSlot { uploads: uploads.clone(), key: key.clone(), _bytes: permit }),
            Err(_) => {
                uploads.keys.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
                Err(Error::Backend(BackendError::Unavailable {
                    reason: "too many upload bytes in flight".into(),
                    retry_after_secs: 5,
                }))
            }
        }
    }

    /// Opens the stored bytes of `key`, which must be `size` bytes long.
    pub async fn reader(&self, key: &StorageKey, size: u64) -> Result<BlobReader, Error> {
        let path = self.path(key);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            // Registered but not (yet) uploaded.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound),
            Err(e) => return Err(io_error("opening", &path, e).into()),
        };
        let mut input = BufReader::with_capacity(CHUNK + TAG, file);
        let corrupt = || Error::Backend(BackendError::Integrity);
        let mut magic = [0u8; 4];
        input.read_exact(&mut magic).await.map_err(|_| corrupt())?;
        if &magic != MAGIC {
            return Err(corrupt());
        }
        let scheme_len = input.read_u8().await.map_err(|_| corrupt())? as usize;
        let mut scheme = vec![0u8; scheme_len];
        input.read_exact(&mut scheme).await.map_err(|_| corrupt())?;
        let wrapped_len = input.read_u16().await.map_err(|_| corrupt())? as usize;
        let mut blob = vec![0u8; wrapped_len];
        input.read_exact(&mut blob).await.map_err(|_| corrupt())?;
        let mut prefix = [0u8; NONCE_PREFIX];
        input.read_exact(&mut prefix).await.map_err(|_| corrupt())?;
        let wrapped = WrappedKey { scheme: String::from_utf8(scheme).map_err(|_| corrupt())?, blob };
        let data_key = self.keys.master().open_with_aad(&aad(key), &wrapped)?;
        Ok(BlobReader {
            input,
            dec: Some(DecryptorBE32::from_aead(cipher(&data_key)?, &prefix.into())),
            aad: aad(key),
            remaining: size,
        })
    }
}

fn cipher(key: &DataKey) -> Result<Aes256Gcm, BackendError> {
    Aes256Gcm::new_from_slice(key.expose()).map_err(|_| BackendError::Internal("AES-256 key".into()))
}

fn already_uploaded() -> Error {
    Conflict::FileUploaded.into()
}

/// The length and type an upload URL binds; downloads bind neither.
fn upload_fields<'a>(method: &str, object: FileObject<'a>) -> (String, &'a str) {
    if method == "PUT" { (object.size.to_string(), object.media_type.as_str()) } else { (String::new(), "") }
}

#[async_trait]
impl FileStore for LocalFileStore {
    async fn presign_upload(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError> {
        let (url, expires_at) = self.signed_url("PUT", object, ttl)?;
        let headers = vec![
            ("content-type".to_owned(), object.media_type.to_string()),
            ("content-length".to_owned(), object.size.to_string()),
        ];
        Ok(PresignedRequest { url, headers, expires_at })
    }

    async fn presign_download(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError> {
        let (url, expires_at) = self.signed_url("GET", object, ttl)?;
        Ok(PresignedRequest { url, headers: Vec::new(), expires_at })
    }

    async fn list_stored(&self, after: Option<&StorageKey>, limit: usize) -> Result<StoredPage, BackendError> {
        let mut dir = tokio::fs::read_dir(&self.dir).await.map_err(|e| io_error("listing", &self.dir, e))?;
        let mut keys = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(|e| io_error("listing", &self.dir, e))? {
            // Uploads in progress (`.tmp-…`) are not stored bytes yet.
            if let Ok(key) = StorageKey::parse(&entry.file_name().to_string_lossy())
                && after.is_none_or(|a| &key > a)
            {
                keys.push(key);
            }
        }
        keys.sort();
        keys.truncate(limit);
        let next = (keys.len() == limit).then(|| keys.last().cloned()).flatten();
        Ok(StoredPage { keys, next })
    }

    /// Overwrites the wrapped data key in the header before unlinking, so
    /// the bytes left on disk after the unlink cannot be decrypted.
    async fn delete(&self, keys: &[StorageKey]) -> Result<(), BackendError> {
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.path(k)).collect();
        let deleted = blocking(move || {
            use std::io::Write;
            for path in paths {
                match std::fs::OpenOptions::new().write(true).open(&path) {
                    Ok(mut f) => {
                        f.write_all(&[0u8; 256]).map_err(|e| io_error("shredding", &path, e))?;
                        // The header is overwritten in place: the data, not the
                        // file's metadata, must reach the disk.
                        f.sync_data().map_err(|e| io_error("shredding", &path, e))?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error("opening", &path, e).into()),
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("deleting", &path, e).into()),
                }
            }
            Ok(())
        });
        deleted.await.map_err(|e| match e {
            Error::Backend(b) => b,
            other => BackendError::Internal(other.to_string()),
        })
    }
}

/// Encrypts and stores one upload as it arrives. Dropped before `finish`,
/// it removes what it wrote.
pub struct BlobWriter {
    /// Taken by `finish`.
    out: Option<BufWriter<tokio::fs::File>>,
    enc: Option<EncryptorBE32<Aes256Gcm>>,
    buf: Vec<u8>,
    aad: Vec<u8>,
    expected: u64,
    received: u64,
    tmp: PathBuf,
    dest: PathBuf,
    /// Moved into the task that finishes the upload.
    staging: Option<Staging>,
}

/// An upload's temporary file and its claim on the key. Dropped, it removes
/// the file first and only then lets another upload of the key begin. Every
/// blocking task that touches the file owns it, so a request dropped while
/// such a task runs (a client gone, the upload's deadline) cannot let a new
/// upload of the key reuse the path under that task.
struct Staging {
    tmp: PathBuf,
    _slot: UploadSlot,
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl BlobWriter {
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), Error> {
        self.received += data.len() as u64;
        if self.received > self.expected {
            return Err(Invalid::UploadTooLong { expected: self.expected }.into());
        }
        while !data.is_empty() {
            // A full chunk is sealed only once more data follows: the last
            // chunk must carry STREAM's last-chunk flag.
            if self.buf.len() == CHUNK {
                let enc = self.enc.as_mut().ok_or_else(finished)?;
                let sealed = enc
                    .encrypt_next(Payload { msg: &self.buf, aad: &self.aad })
                    .map_err(|_| BackendError::Internal("STREAM encryption".into()))?;
                let out = self.out.as_mut().ok_or_else(finished)?;
                out.write_all(&sealed).await.map_err(|e| io_error("writing", &self.tmp, e))?;
                self.buf.clear();
            }
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals the last chunk, makes the file durable and puts it in place —
    /// unless another upload of the same file got there first.
    pub async fn finish(mut self) -> Result<(), Error> {
        if self.received != self.expected {
            return Err(Invalid::UploadTooShort { received: self.received, expected: self.expected }.into());
        }
        let enc = self.enc.take().ok_or_else(finished)?;
        let sealed = enc
            .encrypt_last(Payload { msg: &self.buf, aad: &self.aad })
            .map_err(|_| BackendError::Internal("STREAM encryption".into()))?;
        let mut out = self.out.take().ok_or_else(finished)?;
        out.write_all(&sealed).await.map_err(|e| io_error("writing", &self.tmp, e))?;
        out.flush().await.map_err(|e| io_error("writing", &self.tmp, e))?;
        let file = out.into_inner().into_std().await;
        // Durable, in place, and the directory entry durable too: one trip to
        // the blocking pool (each tokio::fs call is a hand-off of its own).
        let (staging, dest) = (self.staging.take().ok_or_else(finished)?, self.dest.clone());
        blocking(move || {
            let tmp = &staging.tmp;
            // A hard link fails if the name exists: first upload wins, atomically.
            let linked =
                file.sync_all().map_err(|e| io_error("syncing", tmp, e)).map(|()| std::fs::hard_link(tmp, &dest));
            drop(staging);
            match linked? {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(already_uploaded()),
                Err(e) => return Err(io_error("storing", &dest, e).into()),
            }
            if let Some(dir) = dest.parent()
                && let Ok(d) = std::fs::File::open(dir)
            {
                let _ = d.sync_all();
            }
            Ok(())
        })
        .await
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    BackendError::Internal(format!("file task: {e}")).into()
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(join_error)?
}

fn finished() -> BackendError {
    BackendError::Internal("upload already finished".into())
}

/// Reads and decrypts stored bytes one chunk at a time.
pub struct BlobReader {
    input: BufReader<tokio::fs::File>,
    dec: Option<DecryptorBE32<Aes256Gcm>>,
    aad: Vec<u8>,
    remaining: u64,
}

impl BlobReader {
    /// The next chunk of plaintext, or `None` after the last one. Any
    /// tampering, truncation or extension is an integrity error.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let Some(dec) = self.dec.as_mut() else { return Ok(None) };
        let corrupt = || Error::Backend(BackendError::Integrity);
        let len = (self.remaining as usize).min(CHUNK);
        let last = self.remaining <= CHUNK as u64;
        let mut sealed = vec![0u8; len + TAG];
        self.input.read_exact(&mut sealed).await.map_err(|_| corrupt())?;
        let payload = Payload { msg: &sealed, aad: &self.aad };
        let plain = if last {
            let dec = self.dec.take().ok_or_else(corrupt)?;
            let plain = dec.decrypt_last(payload).map_err(|_| corrupt())?;
            let mut extra = [0u8; 1];
            if self.input.read(&mut extra).await.map_err(|_| corrupt())? != 0 {
                return Err(corrupt());
            }
            plain
        } else {
            dec.decrypt_next(payload).map_err(|_| corrupt())?
        };
        self.remaining -= len as u64;
        Ok(Some(plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::MediaType;

    struct Fixture {
        dir: PathBuf,
        store: LocalFileStore,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn fixture() -> Fixture {
        let dir = std::env::temp_dir().join(format!(
            "keysrv-files-{}-{}",
            std::process::id(),
            URL_SAFE_NO_PAD.encode(random_bytes::<6>().unwrap())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = Arc::new(LocalKeyFile::open_or_create(&dir.join("master.key")).unwrap());
        let store = LocalFileStore::open(&dir, keys, Some("http://127.0.0.1:1/".into()), 1 << 30).unwrap();
        Fixture { dir, store }
    }

    fn query_of(url: &str) -> SignedQuery {
        SignedQuery::parse(url.split_once('?').map(|(_, q)| q)).unwrap()
    }

    async fn store_bytes(store: &LocalFileStore, key: &StorageKey, data: &[u8], pieces: usize) {
        let mut w = store.writer(key, data.len() as u64).await.unwrap();
        for piece in data.chunks(data.len().div_ceil(pieces).max(1)) {
            w.write(piece).await.unwrap();
        }
        w.finish().await.unwrap();
    }

    async fn read_all(store: &LocalFileStore, key: &StorageKey, size: u64) -> Result<Vec<u8>, Error> {
        let mut r = store.reader(key, size).await?;
        let mut out = Vec::new();
        while let Some(chunk) = r.next_chunk().await? {
            assert!(chunk.len() <= CHUNK);
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// A request dropped while its upload's last step waits for the blocking
    /// pool (a client gone, the upload's deadline): the key stays claimed
    /// until that step ends, so a new upload of the key cannot take the
    /// temporary file's path from under it, and the abandoned upload is
    /// stored whole.
    #[test]
    fn a_dropped_finish_keeps_the_key_claimed_until_its_last_step_ends() {
        let rt = tokio::runtime::Builder::new_current_thread().max_blocking_threads(1).enable_all().build().unwrap();
        rt.block_on(async {
            let f = fixture();
            let key = StorageKey::generate().unwrap();
            let data = vec![7u8; 4096];
            let mut w = f.store.writer(&key, 4096).await.unwrap();
            w.write(&data).await.unwrap();
            // The pool's only thread is held, so the finish waits in its
            // flush; a second hold queues behind the flush's write, so the
            // finish's last step will queue behind that.
            let (hold1, wait1) = std::sync::mpsc::channel::<()>();
            let (hold2, wait2) = std::sync::mpsc::channel::<()>();
            let blocker1 = tokio::task::spawn_blocking(move || wait1.recv());
            let mut finish = Box::pin(w.finish());
            assert!(tokio::time::timeout(Duration::from_millis(100), &mut finish).await.is_err());
            let blocker2 = tokio::task::spawn_blocking(move || wait2.recv());
            hold1.send(()).unwrap();
            let _ = blocker1.await;
            assert!(tokio::time::timeout(Duration::from_millis(500), &mut finish).await.is_err());
            drop(finish);
            let second = tokio::time::timeout(Duration::from_millis(200), f.store.writer(&key, 4096)).await;
            assert!(
                matches!(second, Ok(Err(Error::Conflict(Conflict::UploadInProgress)))),
                "a new upload of the key began while the dropped one's last step was pending"
            );
            hold2.send(()).unwrap();
            let _ = blocker2.await;
            let mut stored = None;
            for _ in 0..100 {
                if let Ok(bytes) = read_all(&f.store, &key, 4096).await {
                    stored = Some(bytes);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(stored.as_deref(), Some(&data[..]));
            let left: Vec<_> = std::fs::read_dir(f.dir.join("files"))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
                .collect();
            assert!(left.is_empty(), "temporary files left: {left:?}");
        });
    }

    #[tokio::test]
    async fn signed_upload_urls_bind_method_length_type_and_file() {
        let f = fixture();
        let cid = crate::ids::ConversationId::generate().unwrap();
        let file_id = FileId::generate(&cid).unwrap();
        let key = StorageKey::generate().unwrap();
        let mt = MediaType::parse("image/png").unwrap();
        let object = FileObject { file_id: &file_id, storage_key: &key, media_type: &mt, size: 10 };
        let up = f.store.presign_upload(object, Duration::from_secs(60)).await.unwrap();
        assert!(up.url.starts_with(&format!("http://127.0.0.1:1{BLOB_PATH}/{key}?")), "{}", up.url);
        let q = query_of(&up.url);
        assert_eq!(f.store.verify("PUT", key.as_str(), &q, Some(10), Some("image/png")).unwrap(), key);
        for (method, k, len, ty) in [
            ("GET", key.as_str(), Some(10), Some("image/png")),
            ("PUT", key.as_str(), Some(11), Some("image/png")),
            ("PUT", key.as_str(), Some(10), Some("image/jpeg")),
            ("PUT", key.as_str(), None, Some("image/png")),
            ("PUT", "AAAAAAAAAAAAAAAAAAAAAA", Some(10), Some("image/png")),
        ] {
            assert!(
                matches!(f.store.verify(method, k, &q, len, ty), Err(Error::UrlRefused(_))),
                "{method} {len:?} {ty:?}"
            );
        }
        let mut tampered = query_of(&up.url);
        tampered.expires += 1;
        assert!(f.store.verify("PUT", key.as_str(), &tampered, Some(10), Some("image/png")).is_err());
        let down = f.store.presign_download(object, Duration::from_secs(60)).await.unwrap();
        assert!(f.store.verify("GET", key.as_str(), &query_of(&down.url), None, None).is_ok());
        assert!(f.store.verify("PUT", key.as_str(), &query_of(&down.url), None, None).is_err());
    }

    #[tokio::test]
    async fn expired_urls_are_refused() {
        let f = fixture();
        let cid = crate::ids::ConversationId::generate().unwrap();
        let file_id = FileId::generate(&cid).unwrap();
        let key = StorageKey::generate().unwrap();
        let mt = MediaType::parse("text/plain").unwrap();
        let object = FileObject { file_id: &file_id, storage_key: &key, media_type: &mt, size: 1 };
        let down = f.store.presign_download(object, Duration::from_secs(0)).await.unwrap();
        // Expiry has one-second resolution: wait until it is in the past.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let err = f.store.verify("GET", key.as_str(), &query_of(&down.url), None, None).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[tokio::test]
    async fn bytes_round_trip_in_chunks_and_are_encrypted_at_rest() {
        let f = fixture();
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17] {
            let key = StorageKey::generate().unwrap();
            let data: Vec<u8> = (0..size).map(|i| b"keysrv-plaintext-"[i % 17]).collect();
            store_bytes(&f.store, &key, &data, 3).await;
            assert_eq!(read_all(&f.store, &key, size as u64).await.unwrap(), data, "size {size}");
            let raw = std::fs::read(f.dir.join("files").join(key.as_str())).unwrap();
            assert!(size < 17 || !raw.windows(17).any(|w| w == b"keysrv-plaintext-"), "plaintext at rest");
        }
        let leftovers: Vec<_> = std::fs::read_dir(f.dir.join("files"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[tokio::test]
    async fn wrong_lengths_second_uploads_and_tampering_are_refused() {
        let f = fixture();
        let key = StorageKey::generate().unwrap();
        let mut w = f.store.writer(&key, 4).await.unwrap();
        assert!(matches!(w.write(b"12345").await, Err(Error::Invalid(_))));
        drop(w);
        let mut w = f.store.writer(&key, 4).await.unwrap();
        w.write(b"123").await.unwrap();
        assert!(matches!(w.finish().await, Err(Error::Invalid(_))));
        assert_eq!(std::fs::read_dir(f.dir.join("files")).unwrap().count(), 0, "a refused upload stores nothing");

        let data = vec![7u8; CHUNK + 5];
        store_bytes(&f.store, &key, &data, 1).await;
        assert!(matches!(f.store.writer(&key, 4).await, Err(Error::Conflict(_))));

        let path = f.dir.join("files").join(key.as_str());
        let mut raw = std::fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        assert!(matches!(
            read_all(&f.store, &key, data.len() as u64).await,
            Err(Error::Backend(BackendError::Integrity))
        ));
        raw[last] ^= 1;
        // Dropping the last chunk must not pass as a shorter file.
        std::fs::write(&path, &raw[..raw.len() - 5 - TAG]).unwrap();
        assert!(read_all(&f.store, &key, CHUNK as u64).await.is_err());
    }

    #[tokio::test]
    async fn deleted_bytes_are_gone_and_deleting_nothing_is_fine() {
        let f = fixture();
        let key = StorageKey::generate().unwrap();
        store_bytes(&f.store, &key, b"secret", 1).await;
        f.store.delete(&[key.clone(), StorageKey::generate().unwrap()]).await.unwrap();
        assert!(!f.dir.join("files").join(key.as_str()).exists());
        assert!(matches!(read_all(&f.store, &key, 6).await, Err(Error::NotFound)));
    }
}
