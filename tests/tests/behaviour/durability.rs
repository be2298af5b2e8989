//! What the server acknowledged survives a restart and a crash.

use keysrv_tests::reqwest::Method;
use keysrv_tests::serde_json::json;
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol" }

#[tokio::test]
async fn keys_survive_a_graceful_restart() {
    let mut s = TestServer::start();
    let (owner, bob) = (s.token(*OWNER), s.token(*BOB));

    let mut keys: Vec<Key> = Vec::new();
    let shared = s.create_conversation(&owner, &[*BOB], "shared").await;
    keys.push(Key { objectid: shared.objectid.clone(), key: shared.key.clone() });
    keys.push(s.rotate(&bob, &shared.conversation_id).await);
    s.put_member(&owner, &shared.conversation_id, *CAROL, "admin").await;
    let after_removal = s.remove_member(&owner, &shared.conversation_id, *CAROL).await;
    keys.push(s.current_key(&owner, &shared.conversation_id).await);
    assert_eq!(keys[2].objectid, after_removal);
    let since = s.create_conversation(&bob, &[*OWNER], "since_join").await;
    keys.push(Key { objectid: since.objectid.clone(), key: since.key.clone() });
    let body = keysrv_tests::serde_json::to_vec(&json!({"members": [*BOB]})).expect("json");
    let h = [("idempotency-key", &b"durable-1"[..])];
    let idem = s.send(Method::POST, CONVERSATIONS, &owner, &h, Some(body.clone())).await;
    idem.expect(201);

    let views =
        [s.conversation(&owner, &shared.conversation_id).await, s.conversation(&owner, &since.conversation_id).await];
    let rows = s.row_counts();

    let status = s.stop();
    assert!(status.success(), "keysrv exited with {status} after SIGTERM");
    s.restart();

    // Tokens issued before the restart still work; every key has the same bytes.
    for k in &keys {
        for t in [&owner, &bob] {
            assert_eq!(s.key(t, &k.objectid).await.as_ref(), Some(&k.key), "{} after restart", k.objectid);
        }
    }
    assert_eq!(s.current_key(&bob, &shared.conversation_id).await, keys[2]);
    assert_eq!(s.conversation(&owner, &shared.conversation_id).await, views[0]);
    assert_eq!(s.conversation(&owner, &since.conversation_id).await, views[1]);
    assert_eq!(s.row_counts(), rows);

    // Idempotency records survive too.
    let again = s.send(Method::POST, CONVERSATIONS, &owner, &h, Some(body)).await;
    again.expect(201);
    assert_eq!(again.str("conversation_id"), idem.str("conversation_id"));
    assert_eq!(again.body["key"], idem.body["key"]);

    // And the server goes on working.
    let k = s.rotate(&owner, &shared.conversation_id).await;
    assert_eq!(s.key(&bob, &k.objectid).await, Some(k.key));
}

/// A key the server handed out must survive a crash of the process right
/// after the response, or messages sealed with it are lost.
#[tokio::test]
async fn acknowledged_keys_survive_a_crash() {
    let mut s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let mut keys = vec![Key { objectid: c.objectid.clone(), key: c.key.clone() }];
    for _ in 0..5 {
        keys.push(s.rotate(&owner, &c.conversation_id).await);
    }
    s.kill();
    s.restart();
    for k in &keys {
        assert_eq!(s.key(&owner, &k.objectid).await.as_ref(), Some(&k.key), "{} lost in a crash", k.objectid);
    }
    assert_eq!(s.current_key(&owner, &c.conversation_id).await, keys[5]);
}
