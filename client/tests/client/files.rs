//! File sharing through the client: against a real `keysrv server`
//! (embedded backend, dev tokens), and against a canned server for what
//! must hold of the requests to the upload and download URLs (exact
//! headers, no API token) and for storage failures.
//!
//! The server binary is `$KEYSRV_BIN`, else `target/<profile>/keysrv`
//! (built with `cargo build -p keysrv --bin keysrv` if it is missing).

use std::io::Cursor;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keysrv_client::stanza::{ReceivedMessage, message_children};
use keysrv_client::{Client, Content, Error, FileRef, History};
use sha2::{Digest, Sha256};

use crate::support::{Canned, Request, Server};

const ROMEO: &str = "romeo@montague.lit";
const JULIET: &str = "juliet@capulet.lit";
const MERCUTIO: &str = "mercutio@montague.lit";

/// Bytes that do not compress and are not all alike.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256(b: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(b))
}

// ---------------------------------------------------------------------------
// Against keysrv.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_round_trips_through_a_sealed_message() {
    let server = Server::start();
    let romeo = server.client(ROMEO);
    let juliet = server.client(JULIET);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let id = created.conversation_id.as_str();

    // 300 kB: several pieces on the way up and down.
    let photo = bytes(300_000, 7);
    let mut file = romeo.upload_file(id, "image/png", photo.clone()).await.unwrap();
    assert_eq!(file.size, Some(photo.len() as u64));
    assert_eq!(file.media_type.as_deref(), Some("image/png"));
    assert_eq!(file.sha256.as_deref(), Some(sha256(&photo).as_str()));
    assert_eq!(file.name, None);
    file.name = Some("orchard map.png".into());

    // The reference travels only inside the sealed message.
    let element = created.key.seal(ROMEO, JULIET, &Content::text("The map").with_file(file.clone())).unwrap();
    let stanza = format!(
        "<message xmlns='jabber:client' from='{ROMEO}/orchard' to='{JULIET}' type='chat'>{}</message>",
        message_children(&element)
    );
    let env = juliet.open_message(&ReceivedMessage::parse(&stanza).unwrap()).await.unwrap();
    assert_eq!(env.content.files, vec![file.clone()]);
    assert_eq!(juliet.download_file(&env.content.files[0]).await.unwrap(), photo);

    let meta = juliet.file(&file.id).await.unwrap();
    assert_eq!(meta.file_id, file.id);
    assert_eq!(meta.conversation_id, id);
    assert_eq!((meta.content_type.as_str(), meta.size), ("image/png", photo.len() as u64));
    assert_eq!(meta.uploader, ROMEO);
    assert!(meta.expires_at > time::OffsetDateTime::now_utc());
    assert!(!format!("{meta:?}").contains(meta.download.url.path()), "Debug shows the capability URL");

    // Streaming both ways.
    let doc = bytes(70_001, 11);
    let streamed =
        juliet.upload_file_from(id, "application/pdf", doc.len() as u64, Cursor::new(doc.clone())).await.unwrap();
    assert_eq!(streamed.sha256.as_deref(), Some(sha256(&doc).as_str()));
    let mut out = Vec::new();
    assert_eq!(romeo.download_file_to(&streamed, &mut out).await.unwrap(), doc.len() as u64);
    assert_eq!(out, doc);

    // Empty files exist too.
    let empty = romeo.upload_file_from(id, "text/plain", 0, Cursor::new(Vec::new())).await.unwrap();
    assert!(romeo.download_file(&empty).await.unwrap().is_empty());

    // A reader that holds less than declared fails the upload.
    let r = romeo.upload_file_from(id, "text/plain", 10, Cursor::new(b"short".to_vec())).await;
    assert!(matches!(&r, Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof), "{r:?}");

    // Deleted: gone for everyone.
    romeo.delete_file(&file.id).await.unwrap();
    assert!(matches!(juliet.file(&file.id).await, Err(Error::NotFound(_))));
    assert!(matches!(juliet.download_file(&file).await, Err(Error::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_see_files() {
    let server = Server::start();
    let romeo = server.client(ROMEO);
    let mercutio = server.client(MERCUTIO);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let id = created.conversation_id.as_str();
    let file = romeo.upload_file(id, "text/plain", b"the balcony at midnight".to_vec()).await.unwrap();

    let r = mercutio.file(&file.id).await;
    let Err(Error::NotFound(p)) = r else { panic!("{r:?}") };
    assert_eq!(p.status, 404);
    assert!(matches!(mercutio.download_file(&file).await, Err(Error::NotFound(_))));
    assert!(matches!(mercutio.register_file(id, "text/plain", 3).await, Err(Error::NotFound(_))));
    assert!(matches!(mercutio.delete_file(&file.id).await, Err(Error::NotFound(_))));
    assert!(matches!(mercutio.file("not a file id").await, Err(Error::NotFound(_))));
    // Still there for the members.
    assert_eq!(server.client(JULIET).download_file(&file).await.unwrap(), b"the balcony at midnight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_what_the_reference_says_is_rejected() {
    let server = Server::start();
    let romeo = server.client(ROMEO);
    let juliet = server.client(JULIET);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let id = created.conversation_id.as_str();
    let data = bytes(5_000, 3);
    let file = romeo.upload_file(id, "application/octet-stream", data.clone()).await.unwrap();

    let forged = FileRef { sha256: Some(sha256(b"another file")), ..file.clone() };
    let r = juliet.download_file(&forged).await;
    let Err(Error::HashMismatch { expected, actual }) = r else { panic!("{r:?}") };
    assert_eq!((expected.as_str(), actual.as_str()), (sha256(b"another file").as_str(), sha256(&data).as_str()));
    let mut out = Vec::new();
    assert!(matches!(juliet.download_file_to(&forged, &mut out).await, Err(Error::HashMismatch { .. })));

    let garbled = FileRef { sha256: Some("not base64".into()), ..file.clone() };
    assert!(matches!(juliet.download_file(&garbled).await, Err(Error::HashMismatch { .. })));

    let resized = FileRef { size: Some(4_999), ..file.clone() };
    let r = juliet.download_file(&resized).await;
    assert!(matches!(r, Err(Error::SizeMismatch { expected: 4_999, actual: 5_000 })), "{r:?}");

    // Without a hash only the size is checked.
    let bare = FileRef { sha256: None, size: None, ..file };
    assert_eq!(juliet.download_file(&bare).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_keysrv_refuses() {
    let server = Server::start();
    let romeo = server.client(ROMEO);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let id = created.conversation_id.as_str();
    let r = romeo.register_file(id, "not a media type", 10).await;
    assert!(matches!(&r, Err(Error::BadRequest(p)) if p.status == 400), "{r:?}");
    let r = romeo.register_file(id, "image/png", 1 << 40).await;
    assert!(matches!(&r, Err(Error::BadRequest(p)) if p.status == 413), "{r:?}");
}

// ---------------------------------------------------------------------------
// Against a canned server.

const JSON: &str = "content-type: application/json\r\n";
const UPLOAD: &str = r#"{"file_id":"c.f","conversation_id":"c","content_type":"image/png","size":5,"upload":{"method":"PUT","url":"{url}/bucket/c/f?X-Amz-Signature=SECRET","headers":{"content-type":"image/png","content-length":"5","x-amz-server-side-encryption":"aws:kms","x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:k"}},"expires_at":"2030-01-01T00:00:00Z"}"#;
const DOWNLOAD: &str = r#"{"file_id":"c.f","conversation_id":"c","content_type":"image/png","size":5,"uploader":"romeo@montague.lit","created_at":"2025-01-31T09:30:00Z","download":{"method":"GET","url":"{url}/bucket/c/f?X-Amz-Signature=SECRET"},"expires_at":"2030-01-01T00:00:00Z"}"#;
const S3_DENIED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The \
                         request signature we calculated does not match the signature you provided.</Message>\
                         <CanonicalRequest>PUT /bucket/c/f X-Amz-Security-Token=SECRET</CanonicalRequest></Error>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_send_exactly_the_granted_headers_and_no_token() {
    let canned = Canned::start(vec![(201, JSON, UPLOAD), (200, "", "")]).await;
    let c = Client::with_token(&canned.url, "tok").unwrap();
    let file = c.upload_file("c", "image/png", b"hello".to_vec()).await.unwrap();
    assert_eq!(file.id, "c.f");
    assert_eq!(file.sha256.as_deref(), Some(sha256(b"hello").as_str()));

    let reqs = canned.requests.lock().unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].line(), "POST /v1/conversations/c/files HTTP/1.1");
    assert_eq!(reqs[0].header("authorization"), Some("Bearer tok"));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&reqs[0].body).unwrap()["size"], 5);
    let put = &reqs[1];
    assert_eq!(put.line(), "PUT /bucket/c/f?X-Amz-Signature=SECRET HTTP/1.1");
    assert_eq!(put.body, b"hello");
    assert_eq!(put.header("authorization"), None);
    assert_eq!(put.header("content-type"), Some("image/png"));
    assert_eq!(put.header("content-length"), Some("5"));
    assert_eq!(put.header("x-amz-server-side-encryption"), Some("aws:kms"));
    assert_eq!(put.header("x-amz-server-side-encryption-aws-kms-key-id"), Some("arn:aws:kms:k"));
    // Nothing else but what every HTTP client sends.
    assert_eq!(
        put.header_names(),
        [
            "accept",
            "content-length",
            "content-type",
            "host",
            "user-agent",
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_upload_declares_its_length() {
    let canned = Canned::start(vec![(201, JSON, UPLOAD), (200, "", "")]).await;
    let c = Client::with_token(&canned.url, "tok").unwrap();
    c.upload_file_from("c", "image/png", 5, Cursor::new(b"hello".to_vec())).await.unwrap();
    let reqs = canned.requests.lock().unwrap();
    assert_eq!(reqs[1].header("content-length"), Some("5"));
    assert_eq!(reqs[1].header("transfer-encoding"), None);
    assert_eq!(reqs[1].body, b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_is_unregistered_and_leaks_nothing() {
    let canned = Canned::start(vec![
        (201, JSON, UPLOAD),
        (403, "content-type: application/xml\r\n", S3_DENIED),
        (204, "", ""),
        // A grant for another size than asked: not uploaded at all.
        (201, JSON, UPLOAD),
        (204, "", ""),
    ])
    .await;
    let c = Client::with_token(&canned.url, "tok").unwrap();
    let r = c.upload_file("c", "image/png", b"hello".to_vec()).await;
    let Err(e @ Error::Forbidden(_)) = r else { panic!("{r:?}") };
    assert!(e.to_string().contains("SignatureDoesNotMatch"), "{e}");
    assert!(!e.to_string().contains("SECRET") && !format!("{e:?}").contains("SECRET"), "{e:?}");
    let r = c.upload_file("c", "image/png", b"hello!".to_vec()).await;
    assert!(matches!(r, Err(Error::Protocol(_))), "{r:?}");

    let reqs = canned.requests.lock().unwrap();
    let lines: Vec<&str> = reqs.iter().map(Request::line).collect();
    assert_eq!(
        lines,
        [
            "POST /v1/conversations/c/files HTTP/1.1",
            "PUT /bucket/c/f?X-Amz-Signature=SECRET HTTP/1.1",
            "DELETE /v1/files/c.f HTTP/1.1",
            "POST /v1/conversations/c/files HTTP/1.1",
            "DELETE /v1/files/c.f HTTP/1.1",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_are_checked_and_carry_no_token() {
    let canned = Canned::start(vec![
        (200, JSON, DOWNLOAD),
        (200, "", "hello"),
        (200, JSON, DOWNLOAD),
        (200, "", "jello"),
        (200, JSON, DOWNLOAD),
        (200, "", "hello!"),
        (200, JSON, DOWNLOAD),
        (503, "retry-after: 3\r\n", ""),
        (200, JSON, DOWNLOAD),
        (404, "content-type: application/xml\r\n", "<Error><Code>NoSuchKey</Code></Error>"),
    ])
    .await;
    let c = Client::with_token(&canned.url, "tok").unwrap();
    let file = FileRef { sha256: Some(sha256(b"hello")), ..FileRef::new("c.f") };
    assert_eq!(c.download_file(&file).await.unwrap(), b"hello");
    assert!(matches!(c.download_file(&file).await, Err(Error::HashMismatch { .. })));
    let r = c.download_file(&file).await;
    assert!(matches!(r, Err(Error::SizeMismatch { expected: 5, actual: 6 })), "{r:?}");
    let r = c.download_file(&file).await;
    assert!(matches!(r, Err(Error::RetryLater { retry_after: Some(d), .. }) if d.as_secs() == 3), "{r:?}");
    let r = c.download_file(&file).await;
    assert!(matches!(&r, Err(Error::NotFound(p)) if p.detail == "NoSuchKey"), "{r:?}");

    let reqs = canned.requests.lock().unwrap();
    assert_eq!(reqs[0].line(), "GET /v1/files/c.f HTTP/1.1");
    assert_eq!(reqs[0].header("authorization"), Some("Bearer tok"));
    assert_eq!(reqs[1].line(), "GET /bucket/c/f?X-Amz-Signature=SECRET HTTP/1.1");
    assert_eq!(reqs[1].header("authorization"), None);
}
