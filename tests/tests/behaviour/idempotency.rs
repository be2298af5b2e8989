//! `Idempotency-Key`: a retry returns the first result instead of acting again.

use keysrv_tests::reqwest::Method;
use keysrv_tests::serde_json::{Value, json};
use keysrv_tests::*;
use tokio::task::JoinSet;

jids! { ALICE = "alice", BOB = "bob", CAROL = "carol" }

async fn create_with(c: &Client, token: &str, key: &str, body: &Value) -> Resp {
    let body = keysrv_tests::serde_json::to_vec(body).expect("json");
    c.send(Method::POST, CONVERSATIONS, token, &[("idempotency-key", key.as_bytes())], Some(body)).await
}

async fn rotate_with(c: &Client, token: &str, cid: &str, key: &str) -> Resp {
    c.send(Method::POST, &rotate_path(cid), token, &[("idempotency-key", key.as_bytes())], None).await
}

#[tokio::test]
async fn create_conversation_retries_return_the_first_result() {
    let s = TestServer::start();
    let (alice, bob) = (s.token(*ALICE), s.token(*BOB));
    let body = json!({"members": [*BOB, *CAROL], "history": "since_join"});

    let first = create_with(&s, &alice, "create-1", &body).await;
    first.expect(201);
    let rows = s.row_counts();
    let again = create_with(&s, &alice, "create-1", &body).await;
    again.expect(201).expect_no_store();
    assert_eq!(again.str("conversation_id"), first.str("conversation_id"));
    assert_eq!(again.body["key"]["objectid"], first.body["key"]["objectid"]);
    assert_eq!(
        decode_key(again.body["key"]["key"].as_str().expect("key")),
        decode_key(first.body["key"]["key"].as_str().expect("key"))
    );
    assert_eq!(s.row_counts(), rows, "a retry wrote nothing");

    // The same key for a different request is a conflict, and writes nothing.
    for different in [
        json!({"members": [*BOB], "history": "since_join"}),
        json!({"members": [*BOB, *CAROL], "history": "shared"}),
        json!({"members": []}),
    ] {
        create_with(&s, &alice, "create-1", &different).await.expect_problem(409);
    }
    rotate_with(&s, &alice, &first.str("conversation_id"), "create-1").await.expect_problem(409);
    assert_eq!(s.row_counts(), rows, "a conflicting retry wrote nothing");
    assert_eq!(s.current_objectid(&alice, &first.str("conversation_id")).await, first.body["key"]["objectid"]);

    // Another caller's key of the same value is its own.
    let bobs = create_with(&s, &bob, "create-1", &body).await;
    bobs.expect(201);
    assert_ne!(bobs.str("conversation_id"), first.str("conversation_id"));
    assert_eq!(s.conversation(&bob, &bobs.str("conversation_id")).await["owner"], json!(*BOB));
    assert_eq!(s.row_counts().conversations, rows.conversations + 1);

    // Without a key, every request creates a conversation.
    let a = s.post(CONVERSATIONS, &alice, Some(&body)).await;
    let b = s.post(CONVERSATIONS, &alice, Some(&body)).await;
    a.expect(201);
    b.expect(201);
    assert_ne!(a.str("conversation_id"), b.str("conversation_id"));
}

#[tokio::test]
async fn rotate_retries_return_the_first_key() {
    let s = TestServer::start();
    let (alice, bob) = (s.token(*ALICE), s.token(*BOB));
    let c = s.create_conversation(&alice, &[*BOB], "shared").await;
    let other = s.create_conversation(&alice, &[], "shared").await;
    let cid = &c.conversation_id;

    let first = rotate_with(&s, &alice, cid, "rot-1").await;
    first.expect(201);
    let rows = s.row_counts();
    let again = rotate_with(&s, &alice, cid, "rot-1").await;
    again.expect(201).expect_no_store();
    assert_eq!(again.str("objectid"), first.str("objectid"));
    assert_eq!(again.key_bytes(), first.key_bytes());
    assert_eq!(s.row_counts(), rows, "a retry wrote nothing");
    assert_eq!(s.current_objectid(&alice, cid).await, first.str("objectid"));

    // Bob's "rot-1" is his own: a new rotation.
    let bobs = rotate_with(&s, &bob, cid, "rot-1").await;
    bobs.expect(201);
    assert_ne!(bobs.str("objectid"), first.str("objectid"));
    assert_eq!(s.current_objectid(&alice, cid).await, bobs.str("objectid"));

    // A retry after later rotations still answers with the first key and does not make it current again.
    let late = rotate_with(&s, &alice, cid, "rot-1").await;
    late.expect(201);
    assert_eq!(late.str("objectid"), first.str("objectid"));
    assert_eq!(s.current_objectid(&alice, cid).await, bobs.str("objectid"));

    // The same key on another conversation is a different request.
    let rows = s.row_counts();
    rotate_with(&s, &alice, &other.conversation_id, "rot-1").await.expect_problem(409);
    assert_eq!(s.current_objectid(&alice, &other.conversation_id).await, other.objectid);
    assert_eq!(s.row_counts(), rows);
}

/// A member removed since its first request does not get the key by retrying.
#[tokio::test]
async fn a_retry_after_removal_releases_nothing() {
    let s = TestServer::start();
    let (alice, bob) = (s.token(*ALICE), s.token(*BOB));
    let c = s.create_conversation(&alice, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    rotate_with(&s, &bob, cid, "bob-rot").await.expect(201);
    let current = s.remove_member(&alice, cid, *BOB).await;
    let rows = s.row_counts();
    rotate_with(&s, &bob, cid, "bob-rot").await.expect_problem(404);
    assert_eq!(s.current_objectid(&alice, cid).await, current);
    assert_eq!(s.row_counts(), rows);
}

/// Concurrent retries of one request create one resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_act_once() {
    let s = TestServer::start();
    let alice = s.token(*ALICE);
    let body = json!({"members": [*BOB]});
    let rows = s.row_counts();

    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (c, t, b) = (s.client(), alice.clone(), body.clone());
        tasks.spawn(async move { create_with(&c, &t, "same", &b).await });
    }
    let results = tasks.join_all().await;
    let ids: Vec<String> = results.iter().map(|r| r.expect(201).str("conversation_id")).collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "retries created different conversations: {ids:?}");
    let after = s.row_counts();
    assert_eq!(after.conversations, rows.conversations + 1);
    assert_eq!(after.keys, rows.keys + 1);

    let cid = ids[0].clone();
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (c, t, cid) = (s.client(), alice.clone(), cid.clone());
        tasks.spawn(async move { rotate_with(&c, &t, &cid, "rotate-once").await });
    }
    let results = tasks.join_all().await;
    let oids: Vec<String> = results.iter().map(|r| r.expect(201).str("objectid")).collect();
    assert!(oids.iter().all(|o| o == &oids[0]), "retries rotated more than once: {oids:?}");
    assert_eq!(s.row_counts().keys, after.keys + 1);
    assert_eq!(s.current_objectid(&alice, &cid).await, oids[0]);
}
