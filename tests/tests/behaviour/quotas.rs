//! Per-caller quotas on the operations that write or cost KMS calls: a
//! caller past its quota gets 429 with `Retry-After` and the `rate-limited`
//! problem, writes nothing, and may go on in the next window; other callers
//! and key fetches are not affected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keysrv_tests::serde_json::json;
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol", DAVE = "dave" }

const WINDOW: u64 = 6;
/// Windows tried before the test gives up: a loaded machine (the AWS leg
/// runs beside compiles) may not fit the sequence into one.
const ATTEMPTS: u64 = 3;

fn window_now() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    now.as_millis() as u64 / (WINDOW * 1000)
}

/// Waits for the start of a fresh quota window, so the test's requests all
/// fall in one.
async fn fresh_window() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let into = now.as_millis() as u64 % (WINDOW * 1000);
    tokio::time::sleep(Duration::from_millis(WINDOW * 1000 - into + 50)).await;
}

#[track_caller]
fn limited(r: &Resp, operation: &str) {
    r.expect_type(429, "rate-limited");
    assert_eq!(r.body["operation"], json!(operation), "{}", r.body);
    let retry = r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).expect("Retry-After");
    assert!((1..=WINDOW).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.body["retry_after"], json!(retry));
}

#[tokio::test]
async fn quotas_limit_each_caller_per_window() {
    let s = std::sync::Arc::new(TestServer::start_with_env(&[
        ("KEYSRV_QUOTAS", "create=2,rotate=3,members=2,files=2"),
        ("KEYSRV_QUOTA_WINDOW_SECS", &WINDOW.to_string()),
    ]));
    // The checks hold only if all their requests fall in one window. When a
    // window ends under them, a failure says nothing: the run is tried again
    // in the next window (a failure inside one window fails the test).
    let mut cid = None;
    for attempt in 1..=ATTEMPTS {
        fresh_window().await;
        let window = window_now();
        match tokio::spawn(within_one_window(s.clone())).await {
            Ok(c) => {
                cid = Some(c);
                break;
            }
            Err(e) if e.is_panic() && window_now() != window && attempt < ATTEMPTS => {
                eprintln!("attempt {attempt} did not fit in one {WINDOW}-s window; trying the next");
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("{e}"),
        }
    }
    let cid = cid.expect("an attempt that fit in one window");
    let owner = s.token(*OWNER);
    let file = json!({"content_type": "text/plain", "size": 1});
    // The next window starts from zero.
    fresh_window().await;
    s.rotate(&owner, &cid).await;
    s.create_conversation(&owner, &[], "shared").await;
    s.post(&files_path(&cid), &owner, Some(&file)).await.expect(201);
}

/// Every quota reached within one window: the conversation it used.
async fn within_one_window(s: std::sync::Arc<TestServer>) -> String {
    let (owner, bob) = (s.token(*OWNER), s.token(*BOB));
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = c.conversation_id.clone();
    s.create_conversation(&owner, &[], "shared").await;
    limited(&s.post(CONVERSATIONS, &owner, Some(&json!({"members": []}))).await, "create");
    // Another caller has its own quota.
    s.create_conversation(&bob, &[], "shared").await;

    let mut last = c.objectid.clone();
    for _ in 0..3 {
        last = s.rotate(&owner, &cid).await.objectid;
    }
    limited(&s.post(&rotate_path(&cid), &owner, None).await, "rotate");
    assert_eq!(s.current_objectid(&owner, &cid).await, last, "a refused rotation rotates nothing");
    // Key fetches are never metered.
    for _ in 0..20 {
        s.get(&key_path(&last), &bob).await.expect(200);
    }
    s.rotate(&bob, &cid).await;

    s.put_member(&owner, &cid, *CAROL, "member").await;
    // The same role again changes nothing and is not counted.
    s.put_member(&owner, &cid, *CAROL, "member").await;
    s.remove_member(&owner, &cid, *CAROL).await;
    limited(&s.put(&member_path(&cid, *DAVE), &owner, Some(&json!({"role": "member"}))).await, "members");
    let view = s.conversation(&owner, &cid).await;
    assert_eq!(view["members"].as_array().map(Vec::len), Some(2), "a refused addition adds nobody: {view}");

    let file = json!({"content_type": "text/plain", "size": 1});
    for _ in 0..2 {
        s.post(&files_path(&cid), &owner, Some(&file)).await.expect(201);
    }
    limited(&s.post(&files_path(&cid), &owner, Some(&file)).await, "files");

    cid
}
