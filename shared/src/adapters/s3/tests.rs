//! The S3 adapter without S3: signatures against AWS's published examples,
//! what the presigned URLs bind, endpoints, encoding, and the request loop
//! against a canned local server (retries on "not now", none otherwise).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::ids::FileId;
use crate::media_type::MediaType;

fn store_in(region: &str, bucket: &str, endpoint: Option<&str>) -> S3FileStore {
    let credentials = Credentials::new("AKIDEXAMPLE", "secret", Some("session-token".into()), None, "test");
    let mut sdk = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(credentials));
    if let Some(e) = endpoint {
        sdk = sdk.endpoint_url(e);
    }
    let files = crate::config::S3Files { bucket: bucket.into(), kms_key_id: "arn:aws:kms:key".into() };
    S3FileStore::connect(&sdk.build(), &files).unwrap()
}

fn store(endpoint: Option<&str>) -> S3FileStore {
    store_in("eu-west-1", "files-bucket", endpoint)
}

fn query(url: &str) -> BTreeMap<String, String> {
    url.split_once('?')
        .map(|(_, q)| q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect())
        .unwrap_or_default()
}

/// 2013-05-24T00:00:00Z, the time of AWS's S3 SigV4 examples.
fn example_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
}

fn example_credentials() -> Credentials {
    Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None, None, "example")
}

/// "Authenticating Requests: Using Query Parameters", the example URL of
/// the S3 API reference: the dialect (single encoding, unsigned payload,
/// query-string signature) is S3's, not only self-consistent.
#[test]
fn presigns_like_the_s3_reference_example() {
    let url = "https://examplebucket.s3.amazonaws.com/test.txt";
    let signed = sign_s3(
        &example_credentials(),
        "us-east-1",
        example_time(),
        &Method::GET,
        url,
        &[],
        SignableBody::UnsignedPayload,
        Some(Duration::from_secs(86400)),
    )
    .unwrap();
    let q = query(&signed.uri().to_string());
    assert_eq!(q["X-Amz-Credential"], "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request");
    assert_eq!(q["X-Amz-Date"], "20130524T000000Z");
    assert_eq!(q["X-Amz-Expires"], "86400");
    assert_eq!(q["X-Amz-SignedHeaders"], "host");
    assert_eq!(q["X-Amz-Signature"], "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

/// "Authenticating Requests: Using the Authorization Header", the GET
/// Object example (a signed `Range` header, the empty payload's SHA-256).
#[test]
fn signs_headers_like_the_s3_reference_example() {
    let signed = sign_s3(
        &example_credentials(),
        "us-east-1",
        example_time(),
        &Method::GET,
        "https://examplebucket.s3.amazonaws.com/test.txt",
        &[("range", "bytes=0-9".to_owned())],
        SignableBody::Bytes(b""),
        None,
    )
    .unwrap();
    let h = signed.headers();
    assert_eq!(h["x-amz-content-sha256"], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(h["range"], "bytes=0-9");
    assert_eq!(
        h["authorization"],
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

fn object<'a>(file: &'a FileId, key: &'a StorageKey, media: &'a MediaType) -> FileObject<'a> {
    FileObject { file_id: file, storage_key: key, media_type: media, size: 1234 }
}

fn file_id() -> FileId {
    FileId::generate(&crate::ids::ConversationId::generate().unwrap()).unwrap()
}

/// What the bucket and the tombstones rely on (module docs), as main's SDK
/// client signed it: length, type, `If-None-Match: *` and both SSE-KMS
/// headers signed and handed to the uploader; the expiry; the session token.
#[tokio::test]
async fn upload_urls_sign_length_type_no_overwrite_and_sse_kms() {
    let (file, key, media) = (file_id(), StorageKey::generate().unwrap(), MediaType::parse("image/svg+xml").unwrap());
    let up = store(None).presign_upload(object(&file, &key, &media), Duration::from_secs(300)).await.unwrap();
    assert!(up.url.starts_with(&format!("https://files-bucket.s3.eu-west-1.amazonaws.com/{key}?")), "{}", up.url);
    let q = query(&up.url);
    assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert_eq!(q["X-Amz-Expires"], "300");
    assert_eq!(
        q["X-Amz-SignedHeaders"],
        "content-length%3Bcontent-type%3Bhost%3Bif-none-match%3Bx-amz-server-side-encryption%3B\
         x-amz-server-side-encryption-aws-kms-key-id"
    );
    assert_eq!(q["X-Amz-Security-Token"], "session-token");
    assert!(q["X-Amz-Credential"].ends_with("%2Feu-west-1%2Fs3%2Faws4_request"), "{}", up.url);
    assert_eq!(q["X-Amz-Signature"].len(), 64);
    let headers: BTreeMap<&str, &str> = up.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        headers,
        BTreeMap::from([
            ("content-length", "1234"),
            ("content-type", "image/svg+xml"),
            ("if-none-match", "*"),
            ("x-amz-server-side-encryption", "aws:kms"),
            ("x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:key"),
        ])
    );
    let ahead = up.expires_at.millis() - Timestamp::now().millis();
    assert!((295_000..=300_000).contains(&ahead), "expires_at {ahead} ms ahead");
}

#[tokio::test]
async fn download_urls_sign_an_attachment_of_the_registered_type_never_cached() {
    let (file, key, media) = (file_id(), StorageKey::generate().unwrap(), MediaType::parse("image/svg+xml").unwrap());
    let down = store(Some("http://127.0.0.1:5598/"))
        .presign_download(object(&file, &key, &media), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(down.url.starts_with(&format!("http://127.0.0.1:5598/files-bucket/{key}?")), "{}", down.url);
    let q = query(&down.url);
    assert_eq!(q["response-content-type"], "image%2Fsvg%2Bxml");
    assert_eq!(q["response-content-disposition"], "attachment");
    assert_eq!(q["response-cache-control"], "no-store");
    assert_eq!(q["X-Amz-SignedHeaders"], "host");
    assert_eq!(q["X-Amz-Expires"], "60");
    assert!(down.headers.is_empty());
}

#[test]
fn endpoints() {
    let url = |s: &S3FileStore| s.0.bucket_url.clone();
    assert_eq!(url(&store(None)), "https://files-bucket.s3.eu-west-1.amazonaws.com");
    assert_eq!(url(&store_in("eu-west-1", "a.b", None)), "https://s3.eu-west-1.amazonaws.com/a.b");
    assert_eq!(url(&store_in("cn-north-1", "b", None)), "https://b.s3.cn-north-1.amazonaws.com.cn");
    assert_eq!(url(&store(Some("http://127.0.0.1:5599"))), "http://127.0.0.1:5599/files-bucket");
    let no_region = aws_config::SdkConfig::builder().build();
    let files = crate::config::S3Files { bucket: "b".into(), kms_key_id: "k".into() };
    assert!(S3FileStore::connect(&no_region, &files).is_err());
}

#[test]
fn encodes_like_s3() {
    assert_eq!(encode("AZaz09-._~/", PATH), "AZaz09-._~/");
    assert_eq!(encode("a/b", QUERY), "a%2Fb");
    assert_eq!(encode("a b+c&é;=", PATH), "a%20b%2Bc%26%C3%A9%3B%3D");
}

/// A local server that answers each request with the next of `answers`
/// (status, body) and counts the requests.
async fn canned(answers: Vec<(u16, &'static str)>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        let mut answers = answers.into_iter();
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            // One request per connection: read its head and body, answer, close.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = conn.read(&mut chunk).await.unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                        .unwrap_or(0usize);
                    if n == 0 || buf.len() >= end + 4 + len {
                        break;
                    }
                } else if n == 0 {
                    break;
                }
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let (status, body) = answers.next().unwrap_or((500, "<Error><Code>InternalError</Code></Error>"));
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    (endpoint, count)
}

const EMPTY_LISTING: &str = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";

#[tokio::test]
async fn retries_what_s3_calls_transient() {
    let (endpoint, count) =
        canned(vec![(503, "<Error><Code>SlowDown</Code></Error>"), (500, ""), (200, EMPTY_LISTING)]).await;
    let page = store(Some(&endpoint)).list_stored(None, 1000).await.unwrap();
    assert_eq!(page, StoredPage::default());
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn gives_up_after_three_attempts_with_a_retryable_error() {
    let slow = (503, "<Error><Code>SlowDown</Code></Error>");
    let (endpoint, count) = canned(vec![slow; 5]).await;
    let e = store(Some(&endpoint)).list_stored(None, 1000).await.unwrap_err();
    assert!(matches!(&e, BackendError::Unavailable { reason, .. } if reason.contains("SlowDown")), "{e:?}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn does_not_retry_a_refusal() {
    let (endpoint, count) = canned(vec![(403, "<Error><Code>AccessDenied</Code></Error>")]).await;
    let e = store(Some(&endpoint)).delete(&[StorageKey::generate().unwrap()]).await.unwrap_err();
    assert!(matches!(&e, BackendError::Internal(reason) if reason.contains("AccessDenied")), "{e:?}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

/// Per-key failures of a DeleteObjects come in a 200; bytes remain, so the
/// deletion has failed (and may be retried).
#[tokio::test]
async fn a_delete_with_failed_keys_fails() {
    let failed = "<DeleteResult><Error><Key>k</Key><Code>InternalError</Code></Error></DeleteResult>";
    let (endpoint, _) = canned(vec![(200, failed), (200, "<DeleteResult/>")]).await;
    let s3 = store(Some(&endpoint));
    let e = s3.delete(&[StorageKey::generate().unwrap()]).await.unwrap_err();
    assert!(matches!(&e, BackendError::Unavailable { .. }), "{e:?}");
    s3.delete(&[StorageKey::generate().unwrap()]).await.unwrap();
}

#[tokio::test]
async fn lists_pages_without_tombstones() {
    let (a, b) = (StorageKey::generate().unwrap(), StorageKey::generate().unwrap());
    let body: &'static str = Box::leak(
        format!(
            "<ListBucketResult><IsTruncated>true</IsTruncated>\
             <Contents><Key>{a}</Key><Size>10</Size></Contents>\
             <Contents><Key>{b}</Key><Size>0</Size></Contents></ListBucketResult>"
        )
        .into_boxed_str(),
    );
    let (endpoint, _) = canned(vec![(200, body)]).await;
    let page = store(Some(&endpoint)).list_stored(Some(&a), 2).await.unwrap();
    assert_eq!(page, StoredPage { keys: vec![a], next: Some(b) });
}
