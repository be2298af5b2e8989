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
//!
//! Not the S3 SDK client: keysrv needs five request shapes (two presigned,
//! PutObject of an empty tombstone, DeleteObjects, ListObjectsV2), and the
//! full client (its endpoint rules, checksum crates and 100-odd operations)
//! was a fifth of every file function's Lambda package (docs/BENCHMARKS.md).
//! Requests are signed with the SDK's own SigV4 signer (`aws-sigv4`, in S3's
//! dialect) and sent with the SDK's own HTTP client (`aws-smithy-http-client`,
//! the connector the other AWS clients use), with the credentials and region
//! of the shared SDK configuration; answers are read with quick-xml.
//! Endpoints: the bucket's virtual-hosted name in the configured region
//! (path style for a bucket name with dots, which a wildcard certificate does
//! not cover), or, with `AWS_ENDPOINT_URL` (an emulator), path style under
//! that URL. FIPS and dual-stack endpoints are not used.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use bytes::Bytes;
use http::Method;
use sha2::Digest;

use crate::ids::StorageKey;
use crate::ports::{BackendError, FileObject, FileStore, PresignedRequest, StoredPage};
use crate::timestamp::Timestamp;

/// S3's limit of keys per `DeleteObjects`.
const MAX_DELETE: usize = 1000;
/// Tombstone writes in flight at once.
const PARALLEL_TOMBSTONES: usize = 16;
/// The tag the bucket's lifecycle rule expires tombstones by (template.yaml).
const TOMBSTONE_TAG: &str = "keysrv=tombstone";
/// As the other AWS clients (`app.rs`): a few quick attempts and short
/// timeouts, because a prompt 503 with Retry-After beats a client waiting.
const ATTEMPTS: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Credentials are fetched again this long before they expire, so that a
/// URL signed with them is not dead on arrival.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);
/// S3 error codes that mean "not now" (any 5xx does too).
const TRANSIENT: &[&str] = &["SlowDown", "InternalError", "RequestTimeout", "ServiceUnavailable"];

/// Cheap to clone: tombstone writes run as tasks of their own.
#[derive(Clone)]
pub struct S3FileStore(Arc<Inner>);

struct Inner {
    credentials: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
    region: String,
    /// `https://<bucket>.s3.<region>.amazonaws.com` or `<endpoint>/<bucket>`:
    /// every object URL is this plus `/<key>`.
    bucket_url: String,
    kms_key_id: String,
    /// Built on first use: the functions that only presign never send a
    /// request to S3, and so never build a connection pool (or load the
    /// trust store for it) at start.
    http: OnceLock<Connector>,
}

impl S3FileStore {
    /// A store on the configured bucket, with the region, credentials and
    /// endpoint of the SDK's shared configuration.
    pub fn connect(sdk: &aws_config::SdkConfig, files: &crate::config::S3Files) -> Result<Self, BackendError> {
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_owned())
            .ok_or_else(|| BackendError::Internal("s3: no AWS region configured (AWS_REGION)".into()))?;
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| BackendError::Internal("s3: no AWS credentials provider".into()))?;
        let bucket = &files.bucket;
        let bucket_url = match sdk.endpoint_url() {
            // An emulator is reached by an address, not a bucket subdomain.
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None if bucket.contains('.') => format!("https://s3.{region}.{}/{bucket}", dns_suffix(&region)),
            None => format!("https://{bucket}.s3.{region}.{}", dns_suffix(&region)),
        };
        Ok(Self(Arc::new(Inner {
            credentials,
            cached: Mutex::new(None),
            region,
            bucket_url,
            kms_key_id: files.kms_key_id.clone(),
            http: OnceLock::new(),
        })))
    }
}

impl Inner {
    fn object_url(&self, key: &StorageKey) -> String {
        format!("{}/{}", self.bucket_url, encode(key.as_str(), PATH))
    }

    /// The credentials to sign with: the provider's, kept until shortly
    /// before they expire (the SDK's chain may make a network call per ask).
    async fn credentials(&self) -> Result<Credentials, BackendError> {
        let fresh = |c: &Credentials| c.expiry().is_none_or(|e| e > SystemTime::now() + CREDENTIALS_MARGIN);
        if let Some(c) = self.cached.lock().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let c = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| BackendError::Unavailable { reason: format!("s3: credentials: {e}"), retry_after_secs: 1 })?;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    async fn presign(
        &self,
        method: Method,
        url: &str,
        headers: Vec<(&'static str, String)>,
        ttl: Duration,
    ) -> Result<PresignedRequest, BackendError> {
        let expires_at = Timestamp::now().plus_secs(ttl.as_secs() as i64);
        let credentials = self.credentials().await?;
        let signed = sign_s3(
            &credentials,
            &self.region,
            SystemTime::now(),
            &method,
            url,
            &headers,
            SignableBody::UnsignedPayload,
            Some(ttl),
        )?;
        Ok(PresignedRequest {
            url: signed.uri().to_string(),
            headers: headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            expires_at,
        })
    }

    /// Sends one signed request (a few attempts if S3 says "not now") and
    /// returns the body of its 2xx answer.
    async fn send(
        &self,
        what: &'static str,
        method: Method,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    ) -> Result<Bytes, BackendError> {
        let attempts = async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let result = tokio::time::timeout(ATTEMPT_TIMEOUT, self.attempt(what, &method, &url, &headers, &body))
                    .await
                    .unwrap_or_else(|_| Err(unavailable(what, "attempt timed out")));
                match result {
                    Err(BackendError::Unavailable { .. }) if attempt < ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                    }
                    result => return result,
                }
            }
        };
        tokio::time::timeout(OPERATION_TIMEOUT, attempts).await.unwrap_or_else(|_| Err(unavailable(what, "timed out")))
    }

    async fn attempt(
        &self,
        what: &'static str,
        method: &Method,
        url: &str,
        headers: &[(&'static str, String)],
        body: &Bytes,
    ) -> Result<Bytes, BackendError> {
        let credentials = self.credentials().await?;
        let signed = sign_s3(
            &credentials,
            &self.region,
            SystemTime::now(),
            method,
            url,
            headers,
            SignableBody::Bytes(body),
            None,
        )?;
        let request = http::Request::from_parts(signed.into_parts().0, SdkBody::from(body.clone()));
        let request = aws_smithy_runtime_api::http::Request::try_from(request).map_err(sign_error)?;
        let response = self.http().call(request).await.map_err(|e| unavailable(what, e))?;
        let status = response.status().as_u16();
        let bytes =
            ByteStream::new(response.into_body()).collect().await.map_err(|e| unavailable(what, e))?.into_bytes();
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let code = xml::error_code(&bytes).unwrap_or_default();
        let reason = format!("{what}: HTTP {status} {code}");
        if status >= 500 || TRANSIENT.contains(&code.as_str()) {
            Err(BackendError::Unavailable { reason, retry_after_secs: 1 })
        } else {
            Err(BackendError::Internal(reason))
        }
    }

    fn http(&self) -> &Connector {
        self.http.get_or_init(|| {
            Connector::builder()
                .connector_settings(
                    HttpConnectorSettings::builder()
                        .connect_timeout(CONNECT_TIMEOUT)
                        .read_timeout(ATTEMPT_TIMEOUT)
                        .build(),
                )
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .build()
        })
    }

    async fn put_tombstone(&self, key: StorageKey) -> Result<(), BackendError> {
        let headers = vec![
            ("content-length", "0".to_owned()),
            ("content-type", "application/octet-stream".to_owned()),
            ("x-amz-server-side-encryption", "aws:kms".to_owned()),
            ("x-amz-server-side-encryption-aws-kms-key-id", self.kms_key_id.clone()),
            ("x-amz-tagging", TOMBSTONE_TAG.to_owned()),
        ];
        self.send("s3:PutObject", Method::PUT, self.object_url(&key), headers, Bytes::new()).await.map(|_| ())
    }
}

/// Signs `method url` with `headers` in S3's SigV4 dialect (as the SDK's S3
/// client signs): in the query string when `expires_in` is given (a
/// presigned URL, the payload unsigned), else in headers with the payload's
/// SHA-256. The returned request carries `headers` plus the signature.
#[allow(clippy::too_many_arguments)]
fn sign_s3(
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
    method: &Method,
    url: &str,
    headers: &[(&'static str, String)],
    body: SignableBody<'_>,
    expires_in: Option<Duration>,
) -> Result<http::Request<()>, BackendError> {
    let mut settings = SigningSettings::default();
    // S3 encodes the path once and does not normalize it (`a//b` and
    // `a/../b` are keys of their own), and expects the session token signed.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.session_token_mode = SessionTokenMode::Include;
    if let Some(ttl) = expires_in {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(ttl);
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    } else {
        settings.signature_location = SignatureLocation::Headers;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build();
    let params = params.map_err(sign_error)?.into();
    let signable = SignableRequest::new(method.as_str(), url, headers.iter().map(|(k, v)| (*k, v.as_str())), body)
        .map_err(sign_error)?;
    let (instructions, _signature) = sign(signable, &params).map_err(sign_error)?.into_parts();
    let mut request = http::Request::builder().method(method.clone()).uri(url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut request = request.body(()).map_err(sign_error)?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

#[async_trait]
impl FileStore for S3FileStore {
    async fn presign_upload(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError> {
        // Signed, so S3 refuses an upload of another length, type or
        // encryption, or onto an existing object (module docs).
        let headers = vec![
            ("content-length", object.size.to_string()),
            ("content-type", object.media_type.as_str().to_owned()),
            ("if-none-match", "*".to_owned()),
            ("x-amz-server-side-encryption", "aws:kms".to_owned()),
            ("x-amz-server-side-encryption-aws-kms-key-id", self.0.kms_key_id.clone()),
        ];
        self.0.presign(Method::PUT, &self.0.object_url(object.storage_key), headers, ttl).await
    }

    async fn presign_download(&self, object: FileObject<'_>, ttl: Duration) -> Result<PresignedRequest, BackendError> {
        // What keysrv server sends with the files it serves, as far as S3's
        // response overrides go: a download, never a page of S3's origin
        // (an uploaded HTML or SVG file must not render), and never cached.
        // S3 cannot add `X-Content-Type-Options: nosniff` or
        // `Content-Security-Policy: sandbox` to a presigned GET.
        let url = format!(
            "{}?response-cache-control=no-store&response-content-disposition=attachment&response-content-type={}",
            self.0.object_url(object.storage_key),
            encode(object.media_type.as_str(), QUERY),
        );
        self.0.presign(Method::GET, &url, Vec::new(), ttl).await
    }

    async fn delete_recent(&self, keys: &[StorageKey]) -> Result<(), BackendError> {
        let mut set = tokio::task::JoinSet::new();
        for key in keys {
            let (store, key) = (Arc::clone(&self.0), key.clone());
            set.spawn(async move { store.put_tombstone(key).await });
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
        let mut url = format!("{}?list-type=2&max-keys={}", self.0.bucket_url, limit.clamp(1, 1000));
        if let Some(after) = after {
            let _ = write!(url, "&start-after={}", encode(after.as_str(), QUERY));
        }
        let body = self.0.send("s3:ListObjectsV2", Method::GET, url, Vec::new(), Bytes::new()).await?;
        let listing = xml::listing(&body).map_err(|e| BackendError::Internal(format!("s3:ListObjectsV2: {e}")))?;
        let next =
            if listing.truncated { listing.objects.last().and_then(|(k, _)| StorageKey::parse(k).ok()) } else { None };
        let keys = listing
            .objects
            .iter()
            .filter(|(_, size)| *size > 0)
            .filter_map(|(k, _)| StorageKey::parse(k).ok())
            .collect();
        Ok(StoredPage { keys, next })
    }

    async fn delete(&self, keys: &[StorageKey]) -> Result<(), BackendError> {
        for chunk in keys.chunks(MAX_DELETE) {
            let body = xml::delete_request(chunk);
            // S3 wants a checksum of a DeleteObjects body; SHA-256 is linked
            // for SigV4 already (Content-MD5 would add a crate).
            let checksum =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sha2::Sha256::digest(&body));
            let headers = vec![
                ("content-type", "application/xml".to_owned()),
                ("x-amz-checksum-sha256", checksum),
                ("x-amz-sdk-checksum-algorithm", "SHA256".to_owned()),
            ];
            let url = format!("{}?delete", self.0.bucket_url);
            let answer = self.0.send("s3:DeleteObjects", Method::POST, url, headers, Bytes::from(body)).await?;
            // Per-key failures come back in a 200; a crypto-shred must not
            // report success while bytes remain.
            if let Some(code) = xml::error_code(&answer) {
                return Err(BackendError::Unavailable {
                    reason: format!("s3:DeleteObjects: {code}"),
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

/// The DNS suffix of S3 endpoints in `region`'s partition.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" }
}

/// What `encode` leaves as it is besides RFC 3986's unreserved characters:
/// `/` in a path, nothing in a query value.
const PATH: &[u8] = b"/";
const QUERY: &[u8] = b"";

/// Percent-encodes all but RFC 3986's unreserved characters and `keep`: the
/// single encoding S3 expects (storage keys are base64url already, so this
/// changes nothing for them; media types may hold `+`, `;`, `=`, spaces).
fn encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn sign_error(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("s3 request: {e}"))
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable { reason: format!("{what}: {e}"), retry_after_secs: 1 }
}

/// The XML keysrv writes (a DeleteObjects request) and reads (a listing, and
/// an error: `<Error><Code>`, on its own or inside a DeleteObjects result).
mod xml {
    use quick_xml::Reader;
    use quick_xml::events::Event;

    use crate::ids::StorageKey;

    pub fn delete_request(keys: &[StorageKey]) -> String {
        let mut doc = String::from(r#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>"#);
        for key in keys {
            doc.push_str("<Object><Key>");
            doc.push_str(&quick_xml::escape::escape(key.as_str()));
            doc.push_str("</Key></Object>");
        }
        doc.push_str("</Delete>");
        doc
    }

    #[derive(Debug, Default, PartialEq)]
    pub struct Listing {
        /// (key, size) of each object, in S3's (ascending) order.
        pub objects: Vec<(String, u64)>,
        pub truncated: bool,
    }

    /// Calls `on_end(path, text)` at the end of every element, `path` being
    /// the names of the open elements (outermost first, this one last) and
    /// `text` its text, if it has no child elements.
    fn walk(body: &[u8], mut on_end: impl FnMut(&[String], &str) -> Result<(), String>) -> Result<(), String> {
        let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
        let mut reader = Reader::from_str(text);
        let mut path: Vec<String> = Vec::new();
        let mut current = String::new();
        loop {
            match reader.read_event().map_err(|e| e.to_string())? {
                Event::Start(e) => {
                    path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                    current.clear();
                }
                Event::End(_) => {
                    on_end(&path, &current)?;
                    current.clear();
                    path.pop();
                }
                Event::Text(t) => current.push_str(&t.decode().map_err(|e| e.to_string())?),
                // quick-xml hands entity references over as they are.
                Event::GeneralRef(r) => {
                    let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => c,
                        None => match r.as_ref() {
                            b"amp" => '&',
                            b"lt" => '<',
                            b"gt" => '>',
                            b"quot" => '"',
                            b"apos" => '\'',
                            other => return Err(format!("entity &{};", String::from_utf8_lossy(other))),
                        },
                    };
                    current.push(c);
                }
                Event::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    /// A `ListObjectsV2` answer. An object whose size does not parse is an
    /// error, not a size: the sweep must not mistake bytes for a tombstone.
    pub fn listing(body: &[u8]) -> Result<Listing, String> {
        let mut out = Listing::default();
        let (mut key, mut size) = (None, None);
        walk(body, |path, text| {
            match path {
                [_, contents, field] if contents == "Contents" && field == "Key" => key = Some(text.to_owned()),
                [_, contents, field] if contents == "Contents" && field == "Size" => {
                    size = Some(text.parse::<u64>().map_err(|_| format!("object size {text:?}"))?);
                }
                [_, contents] if contents == "Contents" => match (key.take(), size.take()) {
                    (Some(k), Some(s)) => out.objects.push((k, s)),
                    _ => return Err("an object without Key or Size".into()),
                },
                [_, field] if field == "IsTruncated" => out.truncated = text == "true",
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The first `<Error><Code>` in an answer, if any.
    pub fn error_code(body: &[u8]) -> Option<String> {
        let mut code = None;
        let _ = walk(body, |path, text| {
            if code.is_none() && path.len() >= 2 && path[path.len() - 2] == "Error" && path[path.len() - 1] == "Code" {
                code = Some(text.to_owned());
            }
            Ok(())
        });
        code
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reads_a_listing() {
            let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated>
<Contents><Key>a&amp;b&#x41;</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><Size>12</Size></Contents>
<Contents><Size>0</Size><Key>tomb</Key></Contents></ListBucketResult>"#;
            assert_eq!(
                listing(body).unwrap(),
                Listing { objects: vec![("a&bA".into(), 12), ("tomb".into(), 0)], truncated: true }
            );
            assert_eq!(error_code(body), None);
            let last = b"<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>";
            assert_eq!(listing(last).unwrap(), Listing::default());
        }

        #[test]
        fn a_listing_it_cannot_read_is_an_error() {
            assert!(
                listing(b"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>")
                    .is_err()
            );
            assert!(listing(b"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>").is_err());
            assert!(listing(b"<ListBucketResult><Contents><Key>&bogus;</Key>").is_err());
            assert!(listing(b"\xff").is_err());
        }

        #[test]
        fn reads_error_codes_alone_and_inside_a_delete_result() {
            let failed = br#"<DeleteResult><Deleted><Key>x</Key></Deleted><Error><Key>y</Key><Code>AccessDenied</Code><Message>no</Message></Error></DeleteResult>"#;
            assert_eq!(error_code(failed).as_deref(), Some("AccessDenied"));
            assert_eq!(error_code(b"<Error><Code>SlowDown</Code></Error>").as_deref(), Some("SlowDown"));
            assert_eq!(error_code(b"<DeleteResult><Deleted><Key>x</Key></Deleted></DeleteResult>"), None);
            assert_eq!(error_code(b"not xml <"), None);
        }

        #[test]
        fn writes_a_quiet_delete_request() {
            let key = StorageKey::generate().unwrap();
            assert_eq!(
                delete_request(std::slice::from_ref(&key)),
                format!(
                    r#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>{key}</Key></Object></Delete>"#
                )
            );
        }
    }
}

#[cfg(test)]
mod tests;
