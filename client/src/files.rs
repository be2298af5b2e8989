//! Files shared in a conversation (`docs/PROTOCOL.md` 4.8 and 6.8): keysrv
//! registers a file and grants short-lived URLs to upload and download its
//! bytes. The bytes go to object storage directly, never through the API,
//! and never with the API's token: the URLs are capabilities on their own
//! (S3 rejects a request that carries a second `Authorization`).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::client::{Client, timestamp};
use crate::envelope::FileRef;
use crate::error::Error;

/// How much of an error response from file storage is read.
const MAX_ERROR_BODY: usize = 16 << 10;
/// Bytes read from an upload's reader at a time.
const UPLOAD_CHUNK: usize = 64 << 10;
/// The most a download into memory reserves before the bytes arrive, so a
/// wrong size cannot make the client allocate a fortune up front.
const MAX_PREALLOC: u64 = 8 << 20;

/// A request to make to an upload or download URL. Whoever holds the URL
/// may use it until it expires, so `Debug` shows only its origin.
#[derive(Clone)]
pub struct TransferRequest {
    pub method: Method,
    pub url: Url,
    /// For an upload, send exactly these: storage checks them against the
    /// URL's signature (e.g. `content-type`, `content-length`, the
    /// server-side encryption settings).
    pub headers: HeaderMap,
}

impl fmt::Debug for TransferRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransferRequest")
            .field("method", &self.method)
            .field("url", &format_args!("{}/<redacted>", self.url.origin().ascii_serialization()))
            .field("headers", &self.headers.keys().map(HeaderName::as_str).collect::<Vec<_>>())
            .finish()
    }
}

/// A registered file (`POST /v1/conversations/{id}/files`) and where to put
/// its bytes.
#[derive(Clone, Debug)]
pub struct FileUpload {
    /// Opaque; `<conversation id>.<file id>` today.
    pub file_id: String,
    pub conversation_id: String,
    pub content_type: String,
    pub size: u64,
    /// PUT the bytes here, with exactly its headers, before `expires_at`.
    pub upload: TransferRequest,
    pub expires_at: OffsetDateTime,
}

/// A file a member may read (`GET /v1/files/{file_id}`) and where to get
/// its bytes.
#[derive(Clone, Debug)]
pub struct FileDownload {
    pub file_id: String,
    pub conversation_id: String,
    pub content_type: String,
    pub size: u64,
    /// The bare JID of the member who registered it.
    pub uploader: String,
    pub created_at: OffsetDateTime,
    /// GET the bytes here before `expires_at`.
    pub download: TransferRequest,
    pub expires_at: OffsetDateTime,
}

// ---------------------------------------------------------------------------
// Wire shapes of the responses.

#[derive(Deserialize)]
struct TransferWire {
    method: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl TransferWire {
    /// Errors never quote the URL: it is a capability.
    fn into_request(self, allowed: &[Method]) -> Result<TransferRequest, Error> {
        let method = Method::from_bytes(self.method.as_bytes())
            .ok()
            .filter(|m| allowed.contains(m))
            .ok_or_else(|| Error::Protocol(format!("a file URL to use with method {:?}", self.method)))?;
        let url = Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::Protocol("a file URL that is not an absolute http(s) URL".into()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            let bad = || Error::Protocol(format!("the file URL's header {name:?} is not a valid header"));
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let v = HeaderValue::from_str(&value).map_err(|_| bad())?;
            headers.append(n, v);
        }
        Ok(TransferRequest { method, url, headers })
    }
}

#[derive(Deserialize)]
struct UploadWire {
    file_id: String,
    conversation_id: String,
    content_type: String,
    size: u64,
    upload: TransferWire,
    expires_at: String,
}

#[derive(Deserialize)]
struct DownloadWire {
    file_id: String,
    conversation_id: String,
    content_type: String,
    size: u64,
    uploader: String,
    created_at: String,
    download: TransferWire,
    expires_at: String,
}

// ---------------------------------------------------------------------------
// The API.

impl Client {
    /// `POST /v1/conversations/{id}/files`: registers a file of `size` bytes
    /// (members only) and returns where to upload it. [`Client::upload_file`]
    /// does this and the upload in one go.
    pub async fn register_file(
        &self,
        conversation_id: &str,
        content_type: &str,
        size: u64,
    ) -> Result<FileUpload, Error> {
        let body = json!({ "content_type": content_type, "size": size });
        let w: UploadWire =
            self.call_json(Method::POST, &["v1", "conversations", conversation_id, "files"], Some(&body), None).await?;
        Ok(FileUpload {
            expires_at: timestamp("expires_at", &w.expires_at)?,
            upload: w.upload.into_request(&[Method::PUT, Method::POST])?,
            file_id: w.file_id,
            conversation_id: w.conversation_id,
            content_type: w.content_type,
            size: w.size,
        })
    }

    /// `GET /v1/files/{file_id}`: the file's metadata and a download URL.
    /// `NotFound` when the caller may not read it (not a member, or under
    /// `since_join` a file shared before it joined) or it was deleted.
    pub async fn file(&self, file_id: &str) -> Result<FileDownload, Error> {
        let w: DownloadWire = self.call_json(Method::GET, &["v1", "files", file_id], None, None).await?;
        Ok(FileDownload {
            created_at: timestamp("created_at", &w.created_at)?,
            expires_at: timestamp("expires_at", &w.expires_at)?,
            download: w.download.into_request(&[Method::GET])?,
            file_id: w.file_id,
            conversation_id: w.conversation_id,
            content_type: w.content_type,
            size: w.size,
            uploader: w.uploader,
        })
    }

    /// `DELETE /v1/files/{file_id}`: the uploader, the owner and admins may
    /// delete a file.
    pub async fn delete_file(&self, file_id: &str) -> Result<(), Error> {
        self.call(Method::DELETE, &["v1", "files", file_id], None, None).await?;
        Ok(())
    }

    /// Registers and uploads `bytes`; returns the reference to seal into a
    /// message (`id`, `media_type`, `size` and `sha256` set; add a `name`).
    /// If the upload fails the registration is deleted (best effort).
    pub async fn upload_file(
        &self,
        conversation_id: &str,
        content_type: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<FileRef, Error> {
        let bytes = bytes.into();
        let size = bytes.len() as u64;
        let sha256 = STANDARD.encode(Sha256::digest(&bytes));
        let grant = self.register_file(conversation_id, content_type, size).await?;
        let sent = match check_grant(&grant, size) {
            Ok(()) => self.send_upload(&grant.upload, reqwest::Body::from(bytes)).await,
            Err(e) => Err(e),
        };
        self.finish_upload(grant, sent.map(|()| sha256)).await
    }

    /// Like [`Client::upload_file`], streaming `size` bytes from `reader`
    /// instead of holding them in memory. The reader must hold exactly
    /// `size` bytes: fewer or more fails the upload with [`Error::Io`].
    pub async fn upload_file_from<R>(
        &self,
        conversation_id: &str,
        content_type: &str,
        size: u64,
        mut reader: R,
    ) -> Result<FileRef, Error>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        if size == 0 {
            // An empty body may never be polled, so it could not report
            // whether the reader really was empty.
            let mut one = [0u8; 1];
            if reader.read(&mut one).await.map_err(Error::Io)? != 0 {
                return Err(Error::Io(longer_than(0)));
            }
            return self.upload_file(conversation_id, content_type, Bytes::new()).await;
        }
        let grant = self.register_file(conversation_id, content_type, size).await?;
        if let Err(e) = check_grant(&grant, size) {
            return self.finish_upload(grant, Err(e)).await;
        }
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let body = ReaderBody {
            reader: Mutex::new(reader),
            declared: size,
            remaining: size,
            buf: vec![0; UPLOAD_CHUNK],
            hasher: Sha256::new(),
            last: None,
            done: false,
            outcome: outcome.clone(),
        };
        let sent = self.send_upload(&grant.upload, reqwest::Body::wrap(body)).await;
        let result = {
            let mut outcome = lock(&outcome);
            // The reader's failure is what made the request fail.
            match (outcome.error.take(), sent, outcome.digest) {
                (Some(e), _, _) => Err(Error::Io(e)),
                (None, Err(e), _) => Err(e),
                (None, Ok(()), Some(digest)) => Ok(STANDARD.encode(digest)),
                (None, Ok(()), None) => Err(Error::Protocol("the upload was answered before it was complete".into())),
            }
        };
        self.finish_upload(grant, result).await
    }

    /// The file's reference on success; otherwise deletes the registration,
    /// which nobody can use without its id.
    async fn finish_upload(&self, grant: FileUpload, sha256: Result<String, Error>) -> Result<FileRef, Error> {
        match sha256 {
            Ok(sha256) => Ok(FileRef {
                id: grant.file_id,
                name: None,
                media_type: Some(grant.content_type),
                size: Some(grant.size),
                sha256: Some(sha256),
            }),
            Err(e) => {
                let _ = self.delete_file(&grant.file_id).await;
                Err(e)
            }
        }
    }

    async fn send_upload(&self, target: &TransferRequest, body: reqwest::Body) -> Result<(), Error> {
        let resp = self
            .http()
            .request(target.method.clone(), target.url.clone())
            .headers(target.headers.clone())
            .timeout(self.transfer_timeout())
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        if resp.status().is_success() { Ok(()) } else { Err(storage_error(resp).await) }
    }

    /// Downloads the file `file` names into memory and checks it: its size
    /// against `file.size` and keysrv's record, its SHA-256 against
    /// `file.sha256` when present ([`Error::SizeMismatch`],
    /// [`Error::HashMismatch`]).
    pub async fn download_file(&self, file: &FileRef) -> Result<Vec<u8>, Error> {
        let (size, resp) = self.start_download(file).await?;
        let mut out = Vec::with_capacity(usize::try_from(size.min(MAX_PREALLOC)).unwrap_or(0));
        self.copy_checked(file, size, resp, &mut out).await?;
        Ok(out)
    }

    /// Like [`Client::download_file`], writing the bytes to `out` as they
    /// arrive; returns how many were written. The checks can only finish at
    /// the end: on an error, discard whatever was written (e.g. write to a
    /// temporary file and move it into place only on success).
    pub async fn download_file_to<W>(&self, file: &FileRef, out: &mut W) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let (size, resp) = self.start_download(file).await?;
        self.copy_checked(file, size, resp, out).await
    }

    /// The grant and the download's response (status checked): the size to
    /// expect and the body to read.
    async fn start_download(&self, file: &FileRef) -> Result<(u64, reqwest::Response), Error> {
        let grant = self.file(&file.id).await?;
        if let Some(expected) = file.size
            && expected != grant.size
        {
            return Err(Error::SizeMismatch { expected, actual: grant.size });
        }
        let target = &grant.download;
        let resp = self
            .http()
            .request(target.method.clone(), target.url.clone())
            .headers(target.headers.clone())
            .timeout(self.transfer_timeout())
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(storage_error(resp).await);
        }
        if let Some(len) = resp.content_length()
            && len != grant.size
        {
            return Err(Error::SizeMismatch { expected: grant.size, actual: len });
        }
        Ok((grant.size, resp))
    }

    async fn copy_checked<W>(
        &self,
        file: &FileRef,
        size: u64,
        mut resp: reqwest::Response,
        out: &mut W,
    ) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut hasher = Sha256::new();
        let mut received: u64 = 0;
        loop {
            let chunk = tokio::time::timeout(self.idle_timeout(), resp.chunk())
                .await
                .map_err(|_| Error::Io(io::Error::new(io::ErrorKind::TimedOut, "the download stalled")))?
                .map_err(transport)?;
            let Some(chunk) = chunk else { break };
            received += chunk.len() as u64;
            if received > size {
                return Err(Error::SizeMismatch { expected: size, actual: received });
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(Error::Io)?;
        }
        out.flush().await.map_err(Error::Io)?;
        if received != size {
            return Err(Error::SizeMismatch { expected: size, actual: received });
        }
        if let Some(expected) = &file.sha256 {
            let actual: [u8; 32] = hasher.finalize().into();
            if !hash_matches(expected, &actual) {
                return Err(Error::HashMismatch { expected: expected.clone(), actual: STANDARD.encode(actual) });
            }
        }
        Ok(received)
    }
}

/// Whether `expected` (padded standard base64, surrounding whitespace
/// allowed) is the digest `actual`. A value that is not base64 of 32 bytes
/// matches nothing.
fn hash_matches(expected: &str, actual: &[u8; 32]) -> bool {
    STANDARD.decode(expected.trim()).is_ok_and(|e| e.as_slice() == actual.as_slice())
}

/// The grant must be for the size about to be sent, or storage would
/// reject the upload (or store something else than was hashed).
fn check_grant(grant: &FileUpload, size: u64) -> Result<(), Error> {
    if grant.size != size {
        return Err(Error::Protocol(format!("registered a file of {size} bytes, keysrv says {}", grant.size)));
    }
    if let Some(len) = grant.upload.headers.get(CONTENT_LENGTH)
        && len.to_str().ok().and_then(|l| l.parse::<u64>().ok()) != Some(size)
    {
        return Err(Error::Protocol(format!("the upload URL wants a content-length other than {size}")));
    }
    Ok(())
}

/// A failed request to a capability URL, without the URL.
fn transport(e: reqwest::Error) -> Error {
    Error::Transport(e.without_url())
}

async fn storage_error(mut resp: reqwest::Response) -> Error {
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    Error::from_storage_response(status, &headers, &body)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn longer_than(size: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the data is longer than the {size} bytes declared"))
}

// ---------------------------------------------------------------------------
// Streaming an upload from an AsyncRead.

/// What the upload body learned, for `upload_file_from` to read once the
/// request is over (the body itself is gone by then).
#[derive(Default)]
struct Outcome {
    digest: Option<[u8; 32]>,
    error: Option<io::Error>,
}

/// An HTTP body of exactly `declared` bytes read from `reader`, hashed on
/// the way.
struct ReaderBody<R> {
    /// Behind a mutex only so the body is `Sync`, as reqwest requires of
    /// it; `get_mut` never locks.
    reader: Mutex<R>,
    declared: u64,
    remaining: u64,
    buf: Vec<u8>,
    hasher: Sha256,
    /// The final piece, held back until the reader is known to be at its end
    /// so that more data than declared fails the upload instead of being cut off.
    last: Option<Bytes>,
    done: bool,
    outcome: Arc<Mutex<Outcome>>,
}

type FramePoll = Poll<Option<Result<Frame<Bytes>, io::Error>>>;

impl<R: AsyncRead + Unpin> ReaderBody<R> {
    fn fail(&mut self, error: io::Error) -> FramePoll {
        self.done = true;
        self.last = None;
        // io::Error is not Clone: one for the caller, one for hyper.
        let copy = io::Error::new(error.kind(), error.to_string());
        lock(&self.outcome).error = Some(error);
        Poll::Ready(Some(Err(copy)))
    }
}

fn poll_read_into<R: AsyncRead + Unpin>(
    reader: &mut Mutex<R>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let reader = reader.get_mut().unwrap_or_else(PoisonError::into_inner);
    let mut rb = ReadBuf::new(buf);
    ready!(Pin::new(reader).poll_read(cx, &mut rb))?;
    Poll::Ready(Ok(rb.filled().len()))
}

impl<R: AsyncRead + Unpin> http_body::Body for ReaderBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(this.last.take().map(|c| Ok(Frame::data(c))));
        }
        if this.remaining > 0 {
            let want = usize::try_from(this.remaining).unwrap_or(usize::MAX).min(this.buf.len());
            let n = match ready!(poll_read_into(&mut this.reader, cx, &mut this.buf[..want])) {
                Ok(n) => n,
                Err(e) => return this.fail(e),
            };
            if n == 0 {
                let sent = this.declared - this.remaining;
                return this.fail(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the data ended after {sent} of the {} bytes declared", this.declared),
                ));
            }
            let chunk = Bytes::copy_from_slice(&this.buf[..n]);
            this.hasher.update(&chunk);
            this.remaining -= n as u64;
            if this.remaining > 0 {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            this.last = Some(chunk);
        }
        let mut probe = [0u8; 1];
        match ready!(poll_read_into(&mut this.reader, cx, &mut probe)) {
            Ok(0) => {}
            Ok(_) => return this.fail(longer_than(this.declared)),
            Err(e) => return this.fail(e),
        }
        this.done = true;
        lock(&this.outcome).digest = Some(this.hasher.clone().finalize().into());
        Poll::Ready(this.last.take().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.last.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining + self.last.as_ref().map_or(0, |c| c.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::future::poll_fn;

    async fn drain(body: &mut ReaderBody<&'static [u8]>) -> Result<Vec<u8>, io::Error> {
        let mut out = Vec::new();
        while let Some(frame) = poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
            out.extend_from_slice(frame?.data_ref().map(|b| b.as_ref()).unwrap_or_default());
        }
        Ok(out)
    }

    fn body(data: &'static [u8], declared: u64, chunk: usize) -> (ReaderBody<&'static [u8]>, Arc<Mutex<Outcome>>) {
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let b = ReaderBody {
            reader: Mutex::new(data),
            declared,
            remaining: declared,
            buf: vec![0; chunk],
            hasher: Sha256::new(),
            last: None,
            done: false,
            outcome: outcome.clone(),
        };
        (b, outcome)
    }

    #[tokio::test]
    async fn reader_body_sends_exactly_the_declared_bytes() {
        let data: &'static [u8] = b"the map of the orchard wall";
        let (mut b, outcome) = body(data, data.len() as u64, 4);
        assert_eq!(b.size_hint().exact(), Some(data.len() as u64));
        assert_eq!(drain(&mut b).await.unwrap(), data);
        assert!(b.is_end_stream());
        let digest: [u8; 32] = Sha256::digest(data).into();
        assert_eq!(lock(&outcome).digest, Some(digest));

        let (mut short, outcome) = body(data, data.len() as u64 + 1, 4);
        let e = drain(&mut short).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(lock(&outcome).error.is_some() && lock(&outcome).digest.is_none());

        let (mut long, outcome) = body(data, data.len() as u64 - 1, 64);
        let e = drain(&mut long).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(lock(&outcome).digest.is_none());
    }

    #[test]
    fn hashes_compare_as_bytes() {
        let digest: [u8; 32] = Sha256::digest(b"").into();
        assert!(hash_matches(" 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", &digest));
        assert!(!hash_matches("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=", &digest));
        assert!(!hash_matches("not base64", &digest));
        assert!(!hash_matches("", &digest));
    }

    #[test]
    fn transfer_urls_are_checked_and_not_shown() {
        let wire = |method: &str, url: &str| TransferWire {
            method: method.into(),
            url: url.into(),
            headers: BTreeMap::from([("content-type".to_owned(), "image/png".to_owned())]),
        };
        let t = wire("PUT", "https://bucket.s3.amazonaws.com/f?X-Amz-Signature=SECRET")
            .into_request(&[Method::PUT])
            .unwrap();
        assert_eq!(t.headers.get("content-type").unwrap(), "image/png");
        let shown = format!("{t:?}");
        assert!(shown.contains("https://bucket.s3.amazonaws.com/<redacted>") && !shown.contains("SECRET"), "{shown}");
        for (m, u) in
            [("GET", "https://h/f"), ("PUT", "/relative"), ("PUT", "ftp://h/f"), ("PUT", "https://[::1/SECRET")]
        {
            let e = wire(m, u).into_request(&[Method::PUT]).unwrap_err();
            assert!(matches!(&e, Error::Protocol(m) if !m.contains("SECRET")), "{e:?}");
        }
    }
}
