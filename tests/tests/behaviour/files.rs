//! Files: registering one, moving its bytes through the URLs keysrv signs
//! (`keysrv server`'s own file server on the embedded backend, S3 on AWS),
//! who may see and delete it, bad input, crypto-shred, and what is at rest.
//!
//! The bytes go over real HTTP to the returned URLs, with exactly the
//! returned headers and no API token, as a client sends them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use keysrv_tests::reqwest::{self, Method, Url};
use keysrv_tests::serde_json::{Value, json};
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol", DAVE = "dave", STRANGER = "stranger", ADMIN = "admin" }
jids! { NEW_SHARED = "new-shared", NEW_SINCE = "new-since" }

/// The upload limit when `KEYSRV_FILE_MAX_BYTES` is not set.
const DEFAULT_MAX: u64 = 100 * 1024 * 1024;

/// Bytes that do not compress and are not all alike.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A presigned request as the API returns it (`upload` or `download`).
#[derive(Clone, Debug)]
struct Presigned {
    method: String,
    url: String,
    headers: BTreeMap<String, String>,
}

impl Presigned {
    #[track_caller]
    fn from_json(v: &Value) -> Self {
        let headers = match &v["headers"] {
            Value::Null => BTreeMap::new(),
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_else(|| panic!("header {k}: {v}")).to_owned()))
                .collect(),
            other => panic!("headers is not an object: {other}"),
        };
        Self {
            method: v["method"].as_str().unwrap_or_else(|| panic!("no method: {v}")).to_owned(),
            url: v["url"].as_str().unwrap_or_else(|| panic!("no url: {v}")).to_owned(),
            headers,
        }
    }

    fn parsed(&self) -> Url {
        Url::parse(&self.url).unwrap_or_else(|e| panic!("{}: {e}", self.url))
    }

    /// The name the bytes are stored under: the last segment of the path.
    fn storage_key(&self) -> String {
        storage_key(&self.url)
    }

    fn query(&self, name: &str) -> Option<String> {
        self.parsed().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

fn storage_key(url: &str) -> String {
    let url = Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    url.path_segments().and_then(|mut s| s.next_back()).expect("a path").to_owned()
}

/// What `POST .../files` returned.
#[derive(Clone, Debug)]
struct Registered {
    file_id: String,
    upload: Presigned,
    body: Value,
}

/// `POST /v1/conversations/{id}/files`; asserts 201.
async fn register(s: &TestServer, token: &str, cid: &str, content_type: &str, size: u64) -> Registered {
    let r = s.post(&files_path(cid), token, Some(&json!({"content_type": content_type, "size": size}))).await;
    r.expect(201).expect_no_store();
    Registered { file_id: r.str("file_id"), upload: Presigned::from_json(&r.body["upload"]), body: r.body.clone() }
}

/// `GET /v1/files/{id}`; asserts 200 and returns the download grant.
async fn download_grant(s: &TestServer, token: &str, file_id: &str) -> (Presigned, Value) {
    let r = s.get(&file_path(file_id), token).await;
    r.expect(200).expect_no_store();
    (Presigned::from_json(&r.body["download"]), r.body.clone())
}

/// A response from a presigned URL.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    fn expect(&self, status: u16, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}: {}", String::from_utf8_lossy(&self.body));
        self
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("an HTTP client")
}

/// Sends a request to a presigned URL: these headers and no others of ours
/// (in particular no `Authorization`).
async fn send_to(method: Method, url: &str, headers: &BTreeMap<String, String>, body: Option<Vec<u8>>) -> Raw {
    let mut req = http().request(method.clone(), url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_else(|e| panic!("{method} {url}: reading the body: {e:?}")).to_vec();
    Raw { status, headers, body }
}

/// Uploads `bytes` with exactly the grant's method and headers.
async fn upload(up: &Presigned, bytes: &[u8]) -> Raw {
    assert_eq!(up.method, "PUT");
    send_to(Method::PUT, &up.url, &up.headers, Some(bytes.to_vec())).await
}

/// What a download URL issued before a deletion gets: nothing (404) — on
/// S3, the empty tombstone that now holds the key.
fn expect_no_bytes(s: &TestServer, r: Raw, what: &str) {
    match s.backend() {
        Backend::Embedded => {
            r.expect(404, what);
        }
        Backend::Aws => {
            assert!(r.status == 404 || (r.status == 200 && r.body.is_empty()), "{what}: {} {:?}", r.status, r.body);
        }
    }
}

async fn fetch(url: &str) -> Raw {
    send_to(Method::GET, url, &BTreeMap::new(), None).await
}

/// Registers and uploads a file; returns its registration.
async fn stored_file(s: &TestServer, token: &str, cid: &str, content_type: &str, bytes: &[u8]) -> Registered {
    let f = register(s, token, cid, content_type, bytes.len() as u64).await;
    upload(&f.upload, bytes).await.expect(200, "uploading");
    assert!(s.file_stored(&f.upload.storage_key()), "an upload answered 200 but nothing is stored");
    f
}

/// The headers an upload URL must be sent with, by backend.
fn expected_upload_headers(s: &TestServer, content_type: &str, size: u64) -> BTreeMap<String, String> {
    let mut h = BTreeMap::from([
        ("content-type".to_owned(), content_type.to_owned()),
        ("content-length".to_owned(), size.to_string()),
    ]);
    if s.backend() == Backend::Aws {
        h.insert("x-amz-server-side-encryption".into(), "aws:kms".into());
        h.insert("x-amz-server-side-encryption-aws-kms-key-id".into(), aws::emulator().env.files_kms_key_id.clone());
        // An upload never overwrites: not a second upload, not a tombstone.
        h.insert("if-none-match".into(), "*".into());
    }
    h
}

fn parse_time(s: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

/// The 404 of a file id that names nothing, to compare hidden files with.
async fn unknown_file_404(s: &TestServer, token: &str) -> Vec<u8> {
    let r = s.get(&file_path(&unknown_objectid()), token).await;
    r.expect_problem(404);
    r.raw
}

/// `who` sees neither the file nor a difference between it and nothing:
/// GET and DELETE both answer the 404 of an unknown file.
async fn assert_hidden(s: &TestServer, token: &str, file_id: &str, who: &str) {
    let nothing = unknown_file_404(s, token).await;
    let r = s.get(&file_path(file_id), token).await;
    r.expect_problem(404);
    assert_eq!(r.raw, nothing, "{who}: GET of a hidden file differs from an unknown one");
    let r = s.delete(&file_path(file_id), token).await;
    r.expect_problem(404);
    assert_eq!(r.raw, nothing, "{who}: DELETE of a hidden file differs from an unknown one");
}

// ---------------------------------------------------------------------------
// Both backends.

#[tokio::test]
async fn files_round_trip_through_the_signed_urls() {
    let s = TestServer::start();
    let (owner, bob) = (s.token(*OWNER), s.token(*BOB));
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    let before = s.row_counts();

    let files: [(&str, Vec<u8>); 3] = [
        ("application/octet-stream", noise(1 << 20, 1)),
        ("text/plain; charset=utf-8", b"a small file\n".to_vec()),
        ("image/png", Vec::new()),
    ];
    for (content_type, bytes) in &files {
        let size = bytes.len() as u64;
        let t0 = time::OffsetDateTime::now_utc();
        let f = register(&s, &owner, cid, content_type, size).await;
        let b = &f.body;
        assert_eq!(b["conversation_id"], json!(cid), "{b}");
        assert_eq!(b["content_type"], json!(content_type), "{b}");
        assert_eq!(b["size"], json!(size), "{b}");
        assert_eq!(b["uploader"], json!(*OWNER), "{b}");
        assert!(f.file_id.starts_with(&format!("{cid}.")), "file id {} is not in its conversation", f.file_id);
        assert_rfc3339(b["created_at"].as_str().expect("created_at"));
        assert!(parse_time(b["expires_at"].as_str().expect("expires_at")) > t0, "{b}");
        assert!(b.get("download").is_none(), "a registration carries a download: {b}");
        assert_eq!(f.upload.headers, expected_upload_headers(&s, content_type, size), "{b}");
        assert!(!s.file_stored(&f.upload.storage_key()), "bytes stored before any upload");

        let up = upload(&f.upload, bytes).await;
        up.expect(200, &format!("uploading {size} bytes of {content_type}"));
        assert!(s.file_stored(&f.upload.storage_key()));

        // Another member fetches the grant and the bytes.
        let (down, g) = download_grant(&s, &bob, &f.file_id).await;
        assert_eq!(down.method, "GET", "{g}");
        assert!(g.get("upload").is_none(), "a download grant carries an upload: {g}");
        for field in ["file_id", "conversation_id", "content_type", "size", "uploader", "created_at"] {
            assert_eq!(g[field], b[field], "{field} differs between registration and download grant");
        }
        let d = fetch(&down.url).await;
        d.expect(200, "downloading");
        assert_eq!(d.body.len(), bytes.len(), "{content_type}: downloaded length");
        assert!(d.body == *bytes, "{content_type}: the downloaded bytes differ from the uploaded ones");
        assert_eq!(d.header("content-type"), Some(*content_type));
    }
    assert_eq!(s.row_counts().files, before.files + 3);
}

#[tokio::test]
async fn only_members_who_may_read_a_file_see_it() {
    let s = TestServer::start();
    let (owner, bob, carol, dave, stranger) =
        (s.token(*OWNER), s.token(*BOB), s.token(*CAROL), s.token(*DAVE), s.token(*STRANGER));
    let (new_shared, new_since) = (s.token(*NEW_SHARED), s.token(*NEW_SINCE));

    // Shared history: Bob uploads, Carol is removed after the upload.
    let c = s.create_conversation(&owner, &[*BOB, *CAROL], "shared").await;
    let cid = &c.conversation_id;
    let bytes = noise(70_000, 2);
    let f = stored_file(&s, &bob, cid, "application/octet-stream", &bytes).await;
    download_grant(&s, &carol, &f.file_id).await;
    s.remove_member(&owner, cid, *CAROL).await;
    // Dave is a member of another conversation only.
    s.create_conversation(&dave, &[*STRANGER], "shared").await;

    assert_hidden(&s, &stranger, &f.file_id, "a non-member").await;
    assert_hidden(&s, &carol, &f.file_id, "a removed member").await;
    assert_hidden(&s, &dave, &f.file_id, "a member of another conversation").await;

    // A newcomer under shared history sees the older file.
    s.put_member(&owner, cid, *NEW_SHARED, "member").await;
    let (down, _) = download_grant(&s, &new_shared, &f.file_id).await;
    assert!(fetch(&down.url).await.expect(200, "newcomer download").body == bytes);

    // Since-join history: a newcomer sees only files registered after joining.
    let sj = s.create_conversation(&owner, &[*BOB], "since_join").await;
    let sjid = &sj.conversation_id;
    let old = stored_file(&s, &bob, sjid, "text/plain", b"before you came").await;
    s.put_member(&owner, sjid, *NEW_SINCE, "member").await;
    assert_hidden(&s, &new_since, &old.file_id, "a since_join member added after the file").await;
    let new = stored_file(&s, &bob, sjid, "text/plain", b"after you came").await;
    let (down, _) = download_grant(&s, &new_since, &new.file_id).await;
    assert_eq!(fetch(&down.url).await.expect(200, "since_join download of a new file").body, b"after you came");

    // The refused DELETEs deleted nothing.
    for (file, cid, content) in [(&f, cid, &bytes[..]), (&old, sjid, &b"before you came"[..])] {
        assert!(s.file_stored(&file.upload.storage_key()), "a refused DELETE removed the bytes");
        let (down, g) = download_grant(&s, &owner, &file.file_id).await;
        assert_eq!(g["conversation_id"], json!(cid));
        assert!(fetch(&down.url).await.expect(200, "owner download").body == content);
    }
}

#[tokio::test]
async fn bad_file_registrations_write_nothing() {
    let s = TestServer::start_with_env(&[("KEYSRV_FILE_MAX_BYTES", "1000")]);
    let (owner, stranger) = (s.token(*OWNER), s.token(*STRANGER));
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    let rows = s.row_counts();

    let long_type = format!("text/{}", "x".repeat(300));
    let cases: Vec<(&str, u16, Value)> = vec![
        ("size over the limit", 413, json!({"content_type": "image/png", "size": 1001})),
        ("size far over the limit", 413, json!({"content_type": "image/png", "size": u64::MAX})),
        ("empty content type", 400, json!({"content_type": "", "size": 10})),
        ("content type without subtype", 400, json!({"content_type": "png", "size": 10})),
        ("content type with empty subtype", 400, json!({"content_type": "image/", "size": 10})),
        ("content type with CRLF", 400, json!({"content_type": "image/png\r\nx-evil: 1", "size": 10})),
        ("content type with a space", 400, json!({"content_type": "image/p ng", "size": 10})),
        ("content type not ASCII", 400, json!({"content_type": "é/x", "size": 10})),
        ("content type with a bad parameter", 400, json!({"content_type": "a/b; c", "size": 10})),
        ("content type of 305 bytes", 400, json!({"content_type": long_type, "size": 10})),
        ("content type is a number", 400, json!({"content_type": 5, "size": 10})),
        ("unknown field", 400, json!({"content_type": "image/png", "size": 10, "name": "x.png"})),
        ("uploader field", 400, json!({"content_type": "image/png", "size": 10, "uploader": *STRANGER})),
        ("missing size", 400, json!({"content_type": "image/png"})),
        ("missing content type", 400, json!({"size": 10})),
        ("negative size", 400, json!({"content_type": "image/png", "size": -1})),
        ("size as a string", 400, json!({"content_type": "image/png", "size": "10"})),
        ("fractional size", 400, json!({"content_type": "image/png", "size": 1.5})),
        ("null size", 400, json!({"content_type": "image/png", "size": null})),
        ("an array", 400, json!(["image/png", 10])),
    ];
    let mut failures = Vec::new();
    for (what, status, body) in &cases {
        let r = s.post(&files_path(cid), &owner, Some(body)).await;
        failures.extend(r.problem_complaint(*status).map(|c| format!("{what}: {c}")));
    }
    for (what, raw) in [
        ("size past u64", &br#"{"content_type": "image/png", "size": 18446744073709551616}"#[..]),
        ("not JSON", b"content_type=image/png&size=10"),
        ("empty body", b""),
    ] {
        let r = s.send(Method::POST, &files_path(cid), &owner, &[], Some(raw.to_vec())).await;
        failures.extend(r.problem_complaint(400).map(|c| format!("{what}: {c}")));
    }
    // Well-formed, but not the caller's conversation (or none at all).
    let good = json!({"content_type": "image/png", "size": 10});
    let r = s.post(&files_path(cid), &stranger, Some(&good)).await;
    failures.extend(r.problem_complaint(404).map(|c| format!("non-member: {c}")));
    let r = s.post(&files_path(&unknown_conversation_id()), &owner, Some(&good)).await;
    failures.extend(r.problem_complaint(404).map(|c| format!("unknown conversation: {c}")));
    assert!(failures.is_empty(), "bad registrations were not refused as expected:\n{}", failures.join("\n"));
    assert_eq!(s.row_counts(), rows, "a refused registration wrote rows");
    if s.backend() == Backend::Embedded {
        assert_eq!(s.files_dir_entries(), Vec::<String>::new(), "a refused registration stored something");
    }

    // Exactly at the limit is accepted.
    register(&s, &owner, cid, "image/png", 1000).await;
    assert_eq!(s.row_counts().files, rows.files + 1);

    // The default limit is 100 MiB.
    let d = TestServer::start();
    let owner = d.token(*OWNER);
    let cid = d.create_conversation(&owner, &[], "shared").await.conversation_id;
    let rows = d.row_counts();
    let over = json!({"content_type": "video/mp4", "size": DEFAULT_MAX + 1});
    d.post(&files_path(&cid), &owner, Some(&over)).await.expect_problem(413);
    assert_eq!(d.row_counts(), rows, "an oversized registration wrote rows");
    register(&d, &owner, &cid, "video/mp4", DEFAULT_MAX).await;
}

#[tokio::test]
async fn uploader_owner_and_admins_delete_files_other_members_may_not() {
    let s = TestServer::start();
    let (owner, bob, carol, admin) = (s.token(*OWNER), s.token(*BOB), s.token(*CAROL), s.token(*ADMIN));
    let c = s.create_conversation(&owner, &[*BOB, *CAROL], "shared").await;
    let cid = &c.conversation_id;
    s.put_member(&owner, cid, *ADMIN, "admin").await;
    let bytes = noise(100_000, 4);
    let f = stored_file(&s, &carol, cid, "application/octet-stream", &bytes).await;
    let key = f.upload.storage_key();
    let (down, _) = download_grant(&s, &bob, &f.file_id).await;
    let rows = s.row_counts();

    // A plain member who did not upload it.
    let r = s.delete(&file_path(&f.file_id), &bob).await;
    r.expect_problem(403);
    assert!(s.file_stored(&key), "a refused DELETE removed the bytes");
    assert_eq!(s.row_counts(), rows, "a refused DELETE changed rows");
    assert!(fetch(&down.url).await.expect(200, "download after refused delete").body == bytes);

    // The uploader.
    let r = s.delete(&file_path(&f.file_id), &carol).await;
    r.expect(204).expect_no_store();
    assert!(r.raw.is_empty(), "a 204 with a body");
    for (who, t) in [("uploader", &carol), ("owner", &owner), ("member", &bob)] {
        let r = s.get(&file_path(&f.file_id), t).await;
        r.expect_problem(404);
        assert_eq!(r.raw, unknown_file_404(&s, t).await, "{who}: a deleted file differs from an unknown one");
    }
    assert!(!s.file_stored(&key), "the bytes of a deleted file are still stored");
    if s.backend() == Backend::Aws {
        // Registered moments ago, its upload URL is still live: the key
        // holds an empty tombstone that the URL cannot overwrite.
        assert!(aws::emulator().is_tombstone(&key), "no tombstone under {key}");
    }
    assert_eq!(s.row_counts().files, rows.files - 1);
    expect_no_bytes(&s, fetch(&down.url).await, "a download URL issued before the delete");
    s.delete(&file_path(&f.file_id), &carol).await.expect_problem(404);

    // The owner and an admin delete others' files; a file never uploaded goes too.
    let by_bob = stored_file(&s, &bob, cid, "text/plain", b"bob's").await;
    let by_carol = stored_file(&s, &carol, cid, "text/plain", b"carol's").await;
    let never = register(&s, &bob, cid, "text/plain", 5).await;
    s.delete(&file_path(&by_carol.file_id), &owner).await.expect(204);
    s.delete(&file_path(&by_bob.file_id), &admin).await.expect(204);
    s.delete(&file_path(&never.file_id), &bob).await.expect(204);
    for f in [&by_bob, &by_carol, &never] {
        s.get(&file_path(&f.file_id), &owner).await.expect_problem(404);
        assert!(!s.file_stored(&f.upload.storage_key()));
    }
    assert_eq!(s.row_counts().files, rows.files - 1);
    // The URL of the file deleted before its upload does not bring it back.
    let r = upload(&never.upload, b"never").await;
    let refused = if s.backend() == Backend::Aws { 412 } else { 404 };
    assert_eq!(r.status, refused, "upload after delete: {:?}", r.body);
    assert!(!s.file_stored(&never.upload.storage_key()), "an upload for a deleted file was stored");
    if s.backend() == Backend::Embedded {
        assert_eq!(s.files_dir_entries(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn crypto_shred_deletes_the_stored_files() {
    let s = TestServer::start();
    let (owner, bob) = (s.token(*OWNER), s.token(*BOB));
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    // Another conversation's file must survive.
    let other = s.create_conversation(&bob, &[], "shared").await;
    let kept = stored_file(&s, &bob, &other.conversation_id, "text/plain", b"not shredded").await;

    let a = stored_file(&s, &owner, cid, "application/octet-stream", &noise(200_000, 5)).await;
    let b = stored_file(&s, &bob, cid, "text/plain", b"second").await;
    let pending = register(&s, &bob, cid, "text/plain", 7).await;
    let (down, _) = download_grant(&s, &bob, &a.file_id).await;
    let keys: Vec<String> = [&a, &b, &pending].iter().map(|f| f.upload.storage_key()).collect();

    s.delete(&conversation_path(cid), &owner).await.expect(204);

    for (f, key) in [&a, &b, &pending].iter().zip(&keys) {
        assert!(!s.file_stored(key), "bytes of a shredded conversation's file are still stored under {key}");
        s.get(&file_path(&f.file_id), &owner).await.expect_problem(404);
        s.get(&file_path(&f.file_id), &bob).await.expect_problem(404);
    }
    expect_no_bytes(&s, fetch(&down.url).await, "a download URL issued before the shred");
    // The upload URL of the never-uploaded file stores nothing now.
    let r = upload(&pending.upload, b"too late").await;
    match s.backend() {
        Backend::Embedded => {
            r.expect(404, "upload to a shredded conversation");
            assert_eq!(s.files_dir_entries(), vec![kept.upload.storage_key()], "files left after the shred");
            assert_eq!(s.row_counts().files, 1, "file rows left after the shred");
        }
        Backend::Aws => {
            // S3 refuses it: the key holds a tombstone, and the URL signs
            // If-None-Match: * (no overwriting).
            r.expect(412, "upload to a shredded conversation");
            for key in &keys {
                assert!(aws::emulator().is_tombstone(key), "{key} is not a tombstone after the shred");
            }
            let items = aws::emulator().conversation_items(cid);
            assert!(items.is_empty(), "items left after the shred: {:?}", items.keys().collect::<Vec<_>>());
        }
    }
    assert!(s.file_stored(&kept.upload.storage_key()), "the shred removed another conversation's file");
    let (down, _) = download_grant(&s, &bob, &kept.file_id).await;
    assert_eq!(fetch(&down.url).await.expect(200, "the other conversation's file").body, b"not shredded");
}

/// No file bytes outlive their conversation or their file, whatever the
/// interleaving: uploads racing a crypto-shred (or a file deletion) leave
/// nothing stored once both are done — neither bytes nor temporary files.
#[tokio::test]
async fn uploads_racing_a_deletion_leave_no_bytes() {
    const ROUNDS: u64 = 12;
    const FILES: usize = 6;
    let s = TestServer::start();
    let (owner, bob) = (s.token(*OWNER), s.token(*BOB));
    let mut leftovers = Vec::new();
    for round in 0..ROUNDS {
        let c = s.create_conversation(&owner, &[*BOB], "shared").await;
        let cid = c.conversation_id.clone();
        let mut files = Vec::new();
        for i in 0..FILES {
            files.push(register(&s, &bob, &cid, "application/octet-stream", 96 * 1024 + i as u64).await);
        }
        let uploads: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let up = f.upload.clone();
                let bytes = noise(96 * 1024 + i, round * 100 + i as u64);
                tokio::spawn(async move { upload(&up, &bytes).await.status })
            })
            .collect();
        // Odd rounds shred the conversation, even ones delete each file, at
        // a different moment of the uploads each time.
        tokio::time::sleep(Duration::from_micros(round * 700)).await;
        if round % 2 == 1 {
            s.delete(&conversation_path(&cid), &owner).await.expect(204);
        } else {
            for f in &files {
                s.delete(&file_path(&f.file_id), &bob).await.expect(204);
            }
        }
        for u in uploads {
            let status = u.await.expect("the upload task");
            assert!([200, 404, 409, 412].contains(&status), "round {round}: upload answered {status}");
        }
        for f in &files {
            if s.file_stored(&f.upload.storage_key()) {
                leftovers.push(format!("round {round}: {} still holds bytes", f.upload.storage_key()));
            }
        }
    }
    if s.backend() == Backend::Embedded {
        let temp: Vec<String> = s.files_dir_entries().into_iter().filter(|n| n.starts_with(".tmp")).collect();
        assert!(temp.is_empty(), "temporary upload files left: {temp:?}");
    }
    assert!(leftovers.is_empty(), "bytes outlived their rows:\n{}", leftovers.join("\n"));
}

#[tokio::test]
async fn storage_keys_reveal_neither_conversation_nor_jids() {
    let s = TestServer::start();
    let (owner, bob) = (s.token(*OWNER), s.token(*BOB));
    let c = s.create_conversation(&owner, &[*BOB, *CAROL], "shared").await;
    let cid = &c.conversation_id;
    let jids = [*OWNER, *BOB, *CAROL];
    let mut seen = Vec::new();
    for i in 0..3 {
        let f = stored_file(&s, &bob, cid, "text/plain", format!("file {i}").as_bytes()).await;
        let (down, _) = download_grant(&s, &owner, &f.file_id).await;
        let local = f.file_id.split_once('.').expect("file id").1.to_owned();
        for url in [&f.upload.url, &down.url] {
            let parsed = Url::parse(url).expect("url");
            let path = parsed.path().to_owned();
            let key = storage_key(url);
            for secret in [cid.as_str(), local.as_str()] {
                assert!(!path.contains(secret), "URL path {path} contains the conversation or file id {secret}");
            }
            let lowered = url.to_ascii_lowercase();
            for jid in jids {
                let (user, domain) = jid.split_once('@').expect("jid");
                for form in [jid.to_owned(), jid.replace('@', "%40"), format!("{user}%40"), domain.to_owned()] {
                    assert!(!lowered.contains(&form.to_ascii_lowercase()), "URL {url} contains {form}");
                }
            }
            assert_conversation_id(&key);
            seen.push(key);
        }
        assert_eq!(f.upload.storage_key(), down.storage_key(), "upload and download name different objects");
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "storage keys repeat: {seen:?}");
    if s.backend() == Backend::Embedded {
        assert_eq!(s.files_dir_entries(), seen, "files are stored under other names");
    }
}

// ---------------------------------------------------------------------------
// Embedded only: `keysrv server`'s own file server.

/// `url` with query parameter `name` set to `value`.
fn with_query(url: &str, name: &str, value: &str) -> String {
    let mut u = Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name { value.to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// `url` with its storage key replaced.
fn with_key(url: &str, key: &str) -> String {
    let mut u = Url::parse(url).expect("url");
    let path = u.path().rsplit_once('/').map(|(dir, _)| format!("{dir}/{key}")).expect("a path");
    u.set_path(&path);
    u.to_string()
}

/// Changes the first character of a base64url string.
fn flip(s: &str) -> String {
    let first = if s.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", &s[1..])
}

/// Sends `head` (request line and headers, without the blank line) and
/// `body` over a new connection, half-closes it, and returns the response's
/// status, or `None` if the server closed without answering.
fn raw_http(url: &str, head: &str, body: &[u8]) -> Option<u16> {
    let u = Url::parse(url).expect("url");
    let addr = format!("{}:{}", u.host_str().expect("host"), u.port().expect("port"));
    let mut tcp = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    // The server may answer (and close) before it has read everything: a
    // failed write is not a failure, a missing answer is.
    let _ = tcp.write_all(format!("{head}\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes());
    let _ = tcp.write_all(body);
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let mut resp = Vec::new();
    let _ = tcp.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    text.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|c| c.parse().ok())
}

/// The path and query of a URL, for a request line.
fn target(url: &str) -> String {
    let u = Url::parse(url).expect("url");
    format!("{}?{}", u.path(), u.query().unwrap_or_default())
}

#[tokio::test]
async fn embedded_expired_urls_are_refused() {
    if !embedded_only("embedded_expired_urls_are_refused") {
        return;
    }
    let s = TestServer::start_with_env(&[("KEYSRV_FILE_URL_TTL_SECS", "1")]);
    let owner = s.token(*OWNER);
    let cid = s.create_conversation(&owner, &[], "shared").await.conversation_id;

    // An upload URL used after it expired.
    let late = register(&s, &owner, &cid, "text/plain", 5).await;
    // A file uploaded in time, whose download URL then expires.
    let f = stored_file(&s, &owner, &cid, "text/plain", b"quick").await;
    let (down, _) = download_grant(&s, &owner, &f.file_id).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    upload(&late.upload, b"hello").await.expect(403, "upload with an expired URL");
    assert!(!s.file_stored(&late.upload.storage_key()));
    assert_eq!(s.files_dir_entries(), vec![f.upload.storage_key()], "an expired upload left something");
    fetch(&down.url).await.expect(403, "download with an expired URL");
    // A new grant works again.
    let (down, _) = download_grant(&s, &owner, &f.file_id).await;
    assert_eq!(fetch(&down.url).await.expect(200, "a fresh download URL").body, b"quick");
}

#[tokio::test]
async fn embedded_tampered_urls_are_refused() {
    if !embedded_only("embedded_tampered_urls_are_refused") {
        return;
    }
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let cid = s.create_conversation(&owner, &[], "shared").await.conversation_id;
    let f = register(&s, &owner, &cid, "text/plain", 5).await;
    let other = register(&s, &owner, &cid, "text/plain", 5).await;
    let up = &f.upload;
    let sig = up.query("sig").expect("sig");
    let expires: i64 = up.query("expires").expect("expires").parse().expect("expires is a number");

    let tampered = [
        ("signature changed", with_query(&up.url, "sig", &flip(&sig))),
        ("signature of the other file", with_query(&up.url, "sig", &other.upload.query("sig").expect("sig"))),
        ("signature removed", with_query(&up.url, "sig", "")),
        ("file id of the other file", with_query(&up.url, "file", &other.file_id)),
        ("file id unknown", with_query(&up.url, "file", &unknown_objectid_in(&cid))),
        ("storage key of the other file", with_key(&up.url, &other.upload.storage_key())),
        ("storage key unknown", with_key(&up.url, &unknown_conversation_id())),
        ("expiry extended", with_query(&up.url, "expires", &(expires + 3600).to_string())),
    ];
    for (what, url) in &tampered {
        let r = send_to(Method::PUT, url, &up.headers, Some(b"hello".to_vec())).await;
        r.expect(403, &format!("upload, {what}"));
    }
    assert_eq!(s.files_dir_entries(), Vec::<String>::new(), "a tampered upload stored something");

    // The genuine URL still works; then the same tampering on downloads.
    upload(up, b"hello").await.expect(200, "the genuine upload");
    let (down, _) = download_grant(&s, &owner, &f.file_id).await;
    let dsig = down.query("sig").expect("sig");
    let tampered = [
        ("signature changed", with_query(&down.url, "sig", &flip(&dsig))),
        ("storage key of the other file", with_key(&down.url, &other.upload.storage_key())),
        ("file id of the other file", with_query(&down.url, "file", &other.file_id)),
        ("the upload URL (a PUT signature)", up.url.clone()),
    ];
    for (what, url) in &tampered {
        fetch(url).await.expect(403, &format!("download, {what}"));
    }
    // And a download signature does not upload.
    let r = send_to(Method::PUT, &down.url, &up.headers, Some(b"HELLO".to_vec())).await;
    r.expect(403, "upload with a GET signature");
    assert_eq!(s.files_dir_entries(), vec![up.storage_key()]);
    assert_eq!(fetch(&down.url).await.expect(200, "the genuine download").body, b"hello");
}

#[tokio::test]
async fn embedded_uploads_must_be_exactly_what_was_signed() {
    if !embedded_only("embedded_uploads_must_be_exactly_what_was_signed") {
        return;
    }
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let cid = s.create_conversation(&owner, &[], "shared").await.conversation_id;
    let size = 100_000usize;
    let f = register(&s, &owner, &cid, "image/png", size as u64).await;
    let up = &f.upload;
    let bytes = noise(size, 6);
    let nothing_stored = |what: &str| {
        assert_eq!(s.files_dir_entries(), Vec::<String>::new(), "{what}: something was stored or left behind");
    };

    // A Content-Length other than the signed one (the body matching it).
    for len in [size + 1, size - 1] {
        let mut h = up.headers.clone();
        h.insert("content-length".into(), len.to_string());
        let r = send_to(Method::PUT, &up.url, &h, Some(noise(len, 7))).await;
        r.expect(403, &format!("Content-Length {len} instead of {size}"));
        nothing_stored("other Content-Length");
    }
    // A Content-Type other than the signed one.
    for ct in ["text/plain", "image/PNG", "image/png; charset=utf-8"] {
        let mut h = up.headers.clone();
        h.insert("content-type".into(), ct.into());
        send_to(Method::PUT, &up.url, &h, Some(bytes.clone())).await.expect(403, &format!("Content-Type {ct}"));
        nothing_stored("other Content-Type");
    }
    let mut h = up.headers.clone();
    h.remove("content-type");
    send_to(Method::PUT, &up.url, &h, Some(bytes.clone())).await.expect(403, "no Content-Type");
    nothing_stored("no Content-Type");

    // A body shorter than the announced (and signed) length.
    let head = format!("PUT {} HTTP/1.1\r\ncontent-type: image/png\r\ncontent-length: {size}", target(&up.url));
    let status = raw_http(&up.url, &head, &bytes[..size - 10]);
    assert_eq!(status, Some(400), "a body 10 bytes shorter than its Content-Length");
    nothing_stored("short body");
    // A body longer than the signed length: HTTP/1.1 framing by Content-Length
    // cannot carry one, so send it chunked with the signed Content-Length too.
    let head = format!(
        "PUT {} HTTP/1.1\r\ncontent-type: image/png\r\ncontent-length: {size}\r\ntransfer-encoding: chunked",
        target(&up.url)
    );
    let long = noise(size + 10, 8);
    let mut chunked = format!("{:x}\r\n", long.len()).into_bytes();
    chunked.extend_from_slice(&long);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let status = raw_http(&up.url, &head, &chunked);
    assert_eq!(status, Some(400), "a chunked body 10 bytes longer than the signed length");
    nothing_stored("long body");
    // Chunked with exactly the signed bytes, but no Content-Length.
    let head = format!("PUT {} HTTP/1.1\r\ncontent-type: image/png\r\ntransfer-encoding: chunked", target(&up.url));
    let mut chunked = format!("{size:x}\r\n").into_bytes();
    chunked.extend_from_slice(&bytes);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(raw_http(&up.url, &head, &chunked), Some(400), "an upload without Content-Length");
    nothing_stored("no Content-Length");

    // With all of it right, the same URL works.
    upload(up, &bytes).await.expect(200, "the genuine upload");
    assert_eq!(s.files_dir_entries(), vec![up.storage_key()]);
    let (down, _) = download_grant(&s, &owner, &f.file_id).await;
    assert!(fetch(&down.url).await.expect(200, "download").body == bytes);
}

#[tokio::test]
async fn embedded_a_file_is_uploaded_once_and_downloaded_after() {
    if !embedded_only("embedded_a_file_is_uploaded_once_and_downloaded_after") {
        return;
    }
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let cid = s.create_conversation(&owner, &[], "shared").await.conversation_id;
    let f = register(&s, &owner, &cid, "text/plain", 5).await;

    // Not uploaded yet: the download URL is valid, the bytes are not there.
    let (down, _) = download_grant(&s, &owner, &f.file_id).await;
    let r = fetch(&down.url).await;
    r.expect(404, "download before upload");
    assert!(r.header("content-type").unwrap_or_default().starts_with("application/problem+json"));
    assert_eq!(s.files_dir_entries(), Vec::<String>::new());

    upload(&f.upload, b"first").await.expect(200, "the first upload");
    let r = upload(&f.upload, b"other").await;
    r.expect(409, "a second upload to the same URL");
    assert_eq!(s.files_dir_entries(), vec![f.upload.storage_key()], "a refused second upload left something");
    assert_eq!(fetch(&down.url).await.expect(200, "download").body, b"first", "the second upload changed the file");
}

#[tokio::test]
async fn embedded_files_are_encrypted_at_rest() {
    if !embedded_only("embedded_files_are_encrypted_at_rest") {
        return;
    }
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let cid = s.create_conversation(&owner, &[], "shared").await.conversation_id;
    let marker = b"KEYSRV-AT-REST-PLAINTEXT-MARKER|";
    let plaintext: Vec<u8> = marker.iter().copied().cycle().take(300_000).collect();
    let a = stored_file(&s, &owner, &cid, "text/plain", &plaintext).await;
    let b = stored_file(&s, &owner, &cid, "text/plain", &plaintext).await;

    let read = |f: &Registered| std::fs::read(s.files_dir().join(f.upload.storage_key())).expect("the stored file");
    let (sa, sb) = (read(&a), read(&b));
    for stored in [&sa, &sb] {
        assert!(stored.len() > plaintext.len(), "stored {} bytes for {} of plaintext", stored.len(), plaintext.len());
        assert!(!stored.windows(12).any(|w| w == &marker[..12]), "the stored file contains the plaintext");
    }
    // A data key per file: the same plaintext is stored as different bytes.
    let tail = plaintext.len();
    assert_ne!(sa[sa.len() - tail..], sb[sb.len() - tail..], "two files with the same plaintext stored alike");
    // Nowhere else in the data directory either (database, WAL, keys).
    for path in s.storage_files() {
        let content = std::fs::read(&path).unwrap_or_default();
        assert!(!content.windows(12).any(|w| w == &marker[..12]), "{} contains the plaintext", path.display());
    }
    let (down, _) = download_grant(&s, &owner, &a.file_id).await;
    assert!(fetch(&down.url).await.expect(200, "download").body == plaintext);

    // A changed byte of the stored file is not served as the file.
    let path = s.files_dir().join(b.upload.storage_key());
    let mut tampered = sb.clone();
    let i = tampered.len() / 2;
    tampered[i] ^= 1;
    std::fs::write(&path, &tampered).expect("tampering with the stored file");
    let (down, _) = download_grant(&s, &owner, &b.file_id).await;
    let got = http().get(&down.url).send().await;
    if let Ok(resp) = got {
        let status = resp.status().as_u16();
        if let Ok(body) = resp.bytes().await {
            assert!(status != 200 || body[..] != plaintext[..], "a tampered file was served whole");
        }
    }
}

// ---------------------------------------------------------------------------
// AWS only: S3 through the real SDK against the emulator.

/// The query parameters of a URL, by name.
fn query_map(url: &str) -> BTreeMap<String, String> {
    Url::parse(url).expect("url").query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[tokio::test]
async fn aws_urls_sign_the_headers_and_expire_and_objects_use_sse_kms() {
    if !aws_only("aws_urls_sign_the_headers_and_expire_and_objects_use_sse_kms") {
        return;
    }
    let env = &aws::emulator().env;
    // moto checks neither presigned signatures nor expiry (nor that the
    // signed headers are sent): that a URL is bound to its headers and
    // expires is asserted on the URL itself; what S3 stored, on HeadObject.
    let configured: u64 = env
        .server_vars
        .iter()
        .find(|(k, _)| k == "KEYSRV_FILE_URL_TTL_SECS")
        .map(|(_, v)| v.parse().expect("KEYSRV_FILE_URL_TTL_SECS"))
        .unwrap_or(300);
    for ttl in [None, Some(45u64)] {
        let ttl_env = ttl.map(|t| t.to_string());
        let env_vars: Vec<(&str, &str)> = ttl_env.iter().map(|t| ("KEYSRV_FILE_URL_TTL_SECS", t.as_str())).collect();
        let s = TestServer::start_with_env(&env_vars);
        let want_ttl = ttl.unwrap_or(configured);
        assert!(want_ttl <= 300, "the TTL under test is {want_ttl}");
        let owner = s.token(*OWNER);
        let cid = s.create_conversation(&owner, &[], "shared").await.conversation_id;
        let bytes = noise(150_000, 9);
        let t0 = time::OffsetDateTime::now_utc();
        let f = register(&s, &owner, &cid, "application/pdf", bytes.len() as u64).await;

        let q = query_map(&f.upload.url);
        assert_eq!(q.get("X-Amz-Algorithm").map(String::as_str), Some("AWS4-HMAC-SHA256"), "{}", f.upload.url);
        assert!(q.get("X-Amz-Signature").is_some_and(|s| s.len() == 64), "{}", f.upload.url);
        let signed: Vec<&str> = q.get("X-Amz-SignedHeaders").map(|s| s.split(';').collect()).unwrap_or_default();
        let missing: Vec<&str> = [
            "content-length",
            "content-type",
            "host",
            "if-none-match",
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id",
        ]
        .into_iter()
        .filter(|h| !signed.contains(h))
        .collect();
        assert!(missing.is_empty(), "the upload URL does not sign {missing:?} (signs {signed:?}): {}", f.upload.url);
        assert_eq!(q.get("X-Amz-Expires"), Some(&want_ttl.to_string()), "upload URL expiry: {}", f.upload.url);
        let expires_at = parse_time(f.body["expires_at"].as_str().expect("expires_at"));
        let ahead = (expires_at - t0).whole_seconds();
        assert!((want_ttl as i64 - 5..=want_ttl as i64 + 5).contains(&ahead), "expires_at is {ahead} s ahead");
        assert_eq!(f.upload.headers, expected_upload_headers(&s, "application/pdf", bytes.len() as u64));

        upload(&f.upload, &bytes).await.expect(200, "PUT to S3");
        let head = aws::emulator().head_object(&f.upload.storage_key()).expect("HeadObject finds the upload");
        assert_eq!(
            head.server_side_encryption(),
            Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms),
            "HeadObject: {head:?}"
        );
        assert_eq!(head.ssekms_key_id(), Some(env.files_kms_key_id.as_str()), "HeadObject: {head:?}");
        assert_eq!(head.content_length(), Some(bytes.len() as i64));
        assert_eq!(head.content_type(), Some("application/pdf"));

        let (down, _) = download_grant(&s, &owner, &f.file_id).await;
        let q = query_map(&down.url);
        assert_eq!(q.get("X-Amz-Expires"), Some(&want_ttl.to_string()), "download URL expiry: {}", down.url);
        assert!(q.get("X-Amz-SignedHeaders").is_some_and(|h| h.split(';').any(|h| h == "host")), "{}", down.url);
        assert!(down.headers.is_empty(), "a download needs no headers: {:?}", down.headers);
        assert!(fetch(&down.url).await.expect(200, "GET from S3").body == bytes);
    }
}

/// A shared HTML or SVG file is a download, never a page: the download
/// answers `Content-Disposition: attachment`, the registered type and
/// `no-store` on both backends (on S3 through the signed response
/// overrides); the embedded server adds `nosniff` and `CSP: sandbox`, which
/// S3 cannot.
#[tokio::test]
async fn downloads_are_attachments_never_pages() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let cid = s.create_conversation(&owner, &[], "shared").await.conversation_id;
    for (media_type, body) in [
        ("text/html", &b"<script>alert(document.cookie)</script>"[..]),
        ("image/svg+xml", &b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"[..]),
    ] {
        let f = stored_file(&s, &owner, &cid, media_type, body).await;
        let (down, _) = download_grant(&s, &owner, &f.file_id).await;
        if s.backend() == Backend::Aws {
            let q = query_map(&down.url);
            assert_eq!(q.get("response-content-disposition").map(String::as_str), Some("attachment"), "{}", down.url);
            assert_eq!(q.get("response-content-type").map(String::as_str), Some(media_type), "{}", down.url);
            assert_eq!(q.get("response-cache-control").map(String::as_str), Some("no-store"), "{}", down.url);
        }
        let r = fetch(&down.url).await;
        r.expect(200, "download");
        assert_eq!(r.body, body);
        assert_eq!(r.header("content-disposition"), Some("attachment"), "{media_type}: {:?}", r.headers);
        assert_eq!(r.header("content-type"), Some(media_type), "{media_type}: {:?}", r.headers);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{media_type}: {:?}", r.headers);
        if s.backend() == Backend::Embedded {
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(r.header("content-security-policy"), Some("sandbox"));
        }
    }
}

/// The audit events (target `audit`) in the server's log, as JSON field maps.
fn audit_events(s: &TestServer) -> Vec<Value> {
    s.log()
        .lines()
        .filter_map(|l| keysrv_tests::serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == json!("audit"))
        .map(|v| v["fields"].clone())
        .collect()
}

#[tokio::test]
async fn every_file_grant_and_refusal_is_audited_without_urls() {
    let s = TestServer::start();
    let (owner, stranger) = (s.token(*OWNER), s.token(*STRANGER));
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let f = stored_file(&s, &owner, &c.conversation_id, "text/plain", b"audited").await;
    let (down, _) = download_grant(&s, &owner, &f.file_id).await;
    s.get(&file_path(&f.file_id), &stranger).await.expect_problem(404);
    s.post(&files_path(&c.conversation_id), &stranger, Some(&json!({"content_type": "text/plain", "size": 1})))
        .await
        .expect_problem(404);
    s.delete(&file_path(&f.file_id), &stranger).await.expect_problem(404);

    let wanted = [
        ("upload_grant", *OWNER, f.file_id.as_str(), "released"),
        ("download_grant", *OWNER, f.file_id.as_str(), "released"),
        ("download_grant", *STRANGER, f.file_id.as_str(), "denied"),
        ("upload_grant", *STRANGER, "", "denied"),
        ("delete_file", *STRANGER, f.file_id.as_str(), "denied"),
    ];
    // The log is written in the background: give it a moment.
    let mut events = Vec::new();
    for _ in 0..50 {
        events = audit_events(&s);
        let found = |(action, caller, file_id, outcome): &(&str, &str, &str, &str)| {
            events.iter().any(|e| {
                e["action"] == json!(action)
                    && e["caller"] == json!(caller)
                    && e["file_id"] == json!(file_id)
                    && e["outcome"] == json!(outcome)
                    && e["conversation"] == json!(c.conversation_id)
            })
        };
        if wanted.iter().all(found) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in &wanted {
        assert!(
            events.iter().any(|e| e["action"] == json!(w.0)
                && e["caller"] == json!(w.1)
                && e["file_id"] == json!(w.2)
                && e["outcome"] == json!(w.3)),
            "no audit event {w:?} in {events:#?}"
        );
    }
    // A URL is a bearer credential: neither it nor its signature is logged.
    let log = s.log();
    for url in [&f.upload.url, &down.url] {
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        assert!(!log.contains(query), "the log holds a presigned URL's query");
    }
}
