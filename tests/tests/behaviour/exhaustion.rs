//! One client cannot take the server from everyone else: idle and slow
//! connections, stalled uploads, more of them than the server has room for.

use std::time::{Duration, Instant};

use keysrv_tests::serde_json::json;
use keysrv_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

jids! { OWNER = "owner", BOB = "bob" }

fn addr(s: &TestServer) -> String {
    s.url.trim_start_matches("http://").to_owned()
}

/// More idle connections and slow request heads than the server has file
/// descriptors for (its `RLIMIT_NOFILE` is 256 and cannot be raised), and a
/// fresh authenticated request still gets its key within a second, again
/// and again.
#[tokio::test]
async fn idle_and_slow_connections_cannot_lock_others_out() {
    let s = TestServer::start_with_nofile(256, &[("KEYSRV_HEADER_TIMEOUT_SECS", "30")]);
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let bob = s.token(*BOB);
    let target = addr(&s);

    let mut hoard = Vec::new();
    for i in 0..400 {
        match TcpStream::connect(&target).await {
            Ok(mut conn) => {
                // Every fourth sends the start of a request head and stops.
                if i % 4 == 0 {
                    let _ = conn.write_all(b"GET /v1/keys/x HTTP/1.1\r\nhost: keysrv\r\nx-slow: ").await;
                }
                hoard.push(conn);
            }
            Err(_) => break,
        }
        // Let the server accept as it goes (its backlog is finite too).
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(hoard.len() >= 300, "could open only {} connections", hoard.len());

    for round in 0..5 {
        let started = Instant::now();
        let fresh = s.client().fresh();
        let r = tokio::time::timeout(Duration::from_secs(5), fresh.get(&key_path(&c.objectid), &bob)).await;
        let elapsed = started.elapsed();
        let r = r.unwrap_or_else(|_| {
            panic!("round {round}: no answer within 5 s while {} connections are held", hoard.len())
        });
        r.expect(200);
        assert!(elapsed < Duration::from_secs(1), "round {round}: the key took {elapsed:?}");
        // More hoarding between rounds.
        for _ in 0..50 {
            if let Ok(conn) = TcpStream::connect(&target).await {
                hoard.push(conn);
            }
        }
    }
}

/// A connection that sends no request head, or not all of one, is closed
/// once the header deadline passes.
#[tokio::test]
async fn connections_without_a_request_head_are_closed_at_the_deadline() {
    let s = TestServer::start_with_env(&[("KEYSRV_HEADER_TIMEOUT_SECS", "1")]);
    let mut silent = TcpStream::connect(addr(&s)).await.expect("connecting");
    let mut slow = TcpStream::connect(addr(&s)).await.expect("connecting");
    slow.write_all(b"GET /v1/keys/x HTTP/1.1\r\nhost: keysrv\r\n").await.expect("writing");
    for (what, conn) in [("silent", &mut silent), ("slow", &mut slow)] {
        let started = Instant::now();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "{what}: the server kept the connection open for 10 s");
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: closed only after {:?}", started.elapsed());
    }
}

/// An upload grant: where to PUT and the exact headers to send.
struct Grant {
    path_and_query: String,
    content_type: String,
    size: u64,
}

async fn grant(s: &TestServer, token: &str, cid: &str, size: u64) -> Grant {
    let r =
        s.post(&files_path(cid), token, Some(&json!({"content_type": "application/octet-stream", "size": size}))).await;
    r.expect(201);
    let url = r.body["upload"]["url"].as_str().expect("an upload URL").to_owned();
    let path_and_query = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).expect("a path");
    Grant { path_and_query, content_type: "application/octet-stream".into(), size }
}

/// Starts an upload on a raw connection: the head and `sent` bytes of the
/// body, and no more.
async fn stalled_upload(s: &TestServer, g: &Grant, sent: usize) -> TcpStream {
    let mut conn = TcpStream::connect(addr(s)).await.expect("connecting");
    let head = format!(
        "PUT {} HTTP/1.1\r\nhost: keysrv\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n",
        g.path_and_query, g.content_type, g.size
    );
    conn.write_all(head.as_bytes()).await.expect("writing the head");
    conn.write_all(&vec![7u8; sent]).await.expect("writing part of the body");
    conn
}

/// The status line of the answer on `conn`, if one comes within `wait`.
async fn status_within(conn: &mut TcpStream, wait: Duration) -> Option<u16> {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(wait, conn.read(&mut buf)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn temp_files(s: &TestServer) -> Vec<String> {
    s.files_dir_entries().into_iter().filter(|n| n.starts_with(".tmp")).collect()
}

/// Waits up to 5 s for the temporary upload files to be gone.
async fn no_temp_files_soon(s: &TestServer) -> Vec<String> {
    for _ in 0..50 {
        if temp_files(s).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    temp_files(s)
}

/// An upload must end by its URL's expiry plus the grace: one that stalls
/// is cut off then (408), stores nothing and leaves no temporary file.
#[tokio::test]
async fn a_stalled_upload_is_cut_off_at_its_deadline() {
    if !embedded_only("a_stalled_upload_is_cut_off_at_its_deadline") {
        return;
    }
    let s = TestServer::start_with_env(&[("KEYSRV_FILE_URL_TTL_SECS", "2"), ("KEYSRV_UPLOAD_GRACE_SECS", "1")]);
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[], "shared").await;
    let g = grant(&s, &owner, &c.conversation_id, 256 * 1024).await;
    let started = Instant::now();
    let mut conn = stalled_upload(&s, &g, 100 * 1024).await;
    let status = status_within(&mut conn, Duration::from_secs(15)).await;
    let elapsed = started.elapsed();
    assert_eq!(status, Some(408), "a stalled upload must be refused at its deadline (after {elapsed:?})");
    assert!(elapsed < Duration::from_secs(6), "cut off only after {elapsed:?} (URL 2 s + grace 1 s)");
    drop(conn);
    assert_eq!(no_temp_files_soon(&s).await, Vec::<String>::new(), "temporary files left");
    assert!(s.files_dir_entries().is_empty(), "bytes stored: {:?}", s.files_dir_entries());
}

/// Twenty stalled uploads to one URL: one of them runs (one temporary
/// file), the others are refused at once (409); when the client gives up,
/// the temporary file goes.
#[tokio::test]
async fn one_upload_per_file_at_a_time() {
    if !embedded_only("one_upload_per_file_at_a_time") {
        return;
    }
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[], "shared").await;
    let g = grant(&s, &owner, &c.conversation_id, 4 * 1024 * 1024).await;
    let mut first = stalled_upload(&s, &g, 64 * 1024).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = 0;
    let mut others = Vec::new();
    for _ in 0..19 {
        let mut conn = stalled_upload(&s, &g, 64 * 1024).await;
        if status_within(&mut conn, Duration::from_secs(2)).await == Some(409) {
            refused += 1;
        }
        others.push(conn);
    }
    assert_eq!(refused, 19, "every second upload of the same file is refused while the first runs");
    assert_eq!(temp_files(&s).len(), 1, "one temporary file: {:?}", temp_files(&s));
    assert_eq!(status_within(&mut first, Duration::from_millis(300)).await, None, "the first upload still runs");
    drop(first);
    drop(others);
    assert_eq!(no_temp_files_soon(&s).await, Vec::<String>::new(), "an abandoned upload left its temporary file");
}

/// The declared sizes of all uploads in progress stay under
/// KEYSRV_UPLOAD_INFLIGHT_MAX_BYTES: beyond it an upload is refused at once
/// with 503 and Retry-After, and takes no disk space.
#[tokio::test]
async fn upload_bytes_in_flight_are_capped() {
    if !embedded_only("upload_bytes_in_flight_are_capped") {
        return;
    }
    const MIB: u64 = 1024 * 1024;
    let s = TestServer::start_with_env(&[
        ("KEYSRV_FILE_MAX_BYTES", &MIB.to_string()),
        ("KEYSRV_UPLOAD_INFLIGHT_MAX_BYTES", &(3 * MIB).to_string()),
    ]);
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[], "shared").await;
    let mut grants = Vec::new();
    for _ in 0..5 {
        grants.push(grant(&s, &owner, &c.conversation_id, MIB).await);
    }
    let mut running = Vec::new();
    for g in &grants[..3] {
        running.push(stalled_upload(&s, g, 1024).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for g in &grants[3..] {
        let mut conn = stalled_upload(&s, g, 1024).await;
        let mut buf = vec![0u8; 4096];
        let n =
            tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await.expect("an answer").expect("read");
        let answer = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after:"), "{answer}");
    }
    assert_eq!(temp_files(&s).len(), 3, "{:?}", temp_files(&s));
    drop(running);
    assert_eq!(no_temp_files_soon(&s).await, Vec::<String>::new());
    // Room again: a whole upload goes through.
    let g = &grants[4];
    let body = vec![1u8; MIB as usize];
    let url = format!("{}{}", s.url, g.path_and_query);
    let r = reqwest::Client::new()
        .put(url)
        .header("content-type", &g.content_type)
        .body(body)
        .send()
        .await
        .expect("uploading");
    assert_eq!(r.status().as_u16(), 200);
}
