//! One client cannot take the server from everyone else: idle and slow
//! connections, stalled uploads, more of them than the server has room for.

use std::time::{Duration, Instant};

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
