//! Bad input is refused with a problem+json response, and nothing is written.

use keysrv_tests::reqwest::Method;
use keysrv_tests::serde_json::{Value, json};
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob" }

const LIMIT: usize = 64 * 1024;

/// Invalid JIDs, as JSON strings and as path segments (percent-encoded).
const BAD_JIDS: [(&str, &str); 7] = [
    ("juliet@capulet.lit/balcony", "juliet%40capulet.lit%2Fbalcony"),
    ("Juliet@Capulet.lit/Balcony", "Juliet@Capulet.lit%2FBalcony"),
    ("capulet.lit", "capulet.lit"),
    ("@capulet.lit", "%40capulet.lit"),
    ("a b@c.d", "a%20b%40c.d"),
    ("juliet@", "juliet%40"),
    ("", "%20"),
];

async fn send_raw(s: &TestServer, method: Method, path: &str, token: &str, body: &[u8]) -> Resp {
    s.send(method, path, token, &[], Some(body.to_vec())).await
}

/// A conversation, and a function-like snapshot of everything observable about it.
async fn snapshot(s: &TestServer, owner: &str, cid: &str) -> (Value, Key, RowCounts) {
    (s.conversation(owner, cid).await, s.current_key(owner, cid).await, s.row_counts())
}

#[tokio::test]
async fn create_conversation_rejects_bad_bodies() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    s.create_conversation(&owner, &[*BOB], "shared").await;
    let rows = s.row_counts();

    let mut bodies: Vec<(String, Vec<u8>)> = [
        ("empty body", &b""[..]),
        ("truncated JSON", b"{\"members\": ["),
        ("not JSON", b"members=bob"),
        ("trailing garbage", b"{\"members\": []} x"),
        ("invalid UTF-8", b"{\"members\": [\"\xff@example.org\"]}"),
        ("null", b"null"),
        ("an array", b"[]"),
        ("the fields as an array", b"[[\"bob@example.org\"], \"shared\"]"),
        ("a string", b"\"bob@example.org\""),
        ("a number", b"42"),
        ("missing members", b"{}"),
        ("members is a string", b"{\"members\": \"bob@example.org\"}"),
        ("members is null", b"{\"members\": null}"),
        ("a member is a number", b"{\"members\": [1]}"),
        ("a member is an object", b"{\"members\": [{\"jid\": \"bob@example.org\"}]}"),
        ("history is a number", b"{\"members\": [], \"history\": 1}"),
        ("unknown history", b"{\"members\": [], \"history\": \"forever\"}"),
        ("history is null", b"{\"members\": [], \"history\": null}"),
        ("unknown field", b"{\"members\": [], \"extra\": true}"),
        ("owner field", b"{\"members\": [], \"owner\": \"eve@example.org\"}"),
    ]
    .iter()
    .map(|(l, b)| (l.to_string(), b.to_vec()))
    .collect();
    for (jid, _) in BAD_JIDS {
        let body = json!({"members": [*BOB, jid]});
        bodies.push((format!("member {jid:?}"), keysrv_tests::serde_json::to_vec(&body).expect("json")));
    }

    let mut failures = Vec::new();
    for (what, body) in &bodies {
        let r = send_raw(&s, Method::POST, CONVERSATIONS, &owner, body).await;
        failures.extend(r.problem_complaint(400).map(|c| format!("{what}: {c}")));
    }
    // Without a content type, too.
    let r = s.send(Method::POST, CONVERSATIONS, &owner, &[], None).await;
    failures.extend(r.problem_complaint(400).map(|c| format!("no body, no content type: {c}")));
    assert!(failures.is_empty(), "bad bodies were not refused:\n{}", failures.join("\n"));
    assert_eq!(s.row_counts(), rows, "a refused create wrote rows");
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    let before = snapshot(&s, &owner, cid).await;

    // Valid JSON padded with whitespace to an exact size.
    let padded = |json: &str, size: usize| -> Vec<u8> {
        let mut b = json.as_bytes().to_vec();
        b.resize(size, b' ');
        b
    };
    let create = r#"{"members": ["bob@example.org"]}"#;
    let role = r#"{"role": "admin"}"#;
    let batch = r#"{"objectids": []}"#;
    // A new connection for each: see `a_413_does_not_break_the_next_request` for why.
    let fresh = s.fresh();
    for size in [LIMIT + 1, 4 * LIMIT] {
        let requests = [
            (Method::POST, CONVERSATIONS.to_owned(), padded(create, size)),
            (Method::PUT, member_path(cid, *BOB), padded(role, size)),
            (Method::POST, BATCH.to_owned(), padded(batch, size)),
            // Rotation takes no body, but the limit still applies.
            (Method::POST, rotate_path(cid), padded("{}", size)),
        ];
        for (method, path, body) in requests {
            fresh.send(method, &path, &owner, &[], Some(body)).await.expect_problem(413);
        }
    }
    assert_eq!(snapshot(&s, &owner, cid).await, before, "an oversized request changed something");

    // Exactly at the limit is accepted.
    send_raw(&s, Method::POST, CONVERSATIONS, &owner, &padded(create, LIMIT)).await.expect(201);
    let r = send_raw(&s, Method::PUT, &member_path(cid, *BOB), &owner, &padded(role, LIMIT)).await;
    r.expect(200);
    assert_eq!(r.body["role"], json!("admin"));
}

/// A client that keeps connections alive must be able to go on after a 413:
/// the server either reads the rest of the body or closes the connection and
/// says so (`Connection: close`), so that the client does not send its next
/// request into a connection that is being torn down.
#[tokio::test]
async fn a_413_does_not_break_the_next_request() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    let client = s.client();
    let mut failures = Vec::new();
    let rounds = 40;
    for size in [LIMIT + 1, 4 * LIMIT] {
        for _ in 0..rounds {
            let mut body = b"{}".to_vec();
            body.resize(size, b' ');
            match client.try_send(Method::POST, &rotate_path(cid), &owner, &[], Some(body)).await {
                Ok(r) => {
                    r.expect_problem(413);
                }
                Err(e) => failures.push(format!("the {size}-byte request itself: {e}")),
            }
            if let Err(e) = client.try_send(Method::GET, &conversation_path(cid), &owner, &[], None).await {
                failures.push(format!("the request after a {size}-byte 413: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} request pairs failed on a keep-alive client after 413 responses:\n{}",
        failures.len(),
        2 * rounds,
        failures.join("\n")
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    let before = snapshot(&s, &owner, cid).await;

    for path in [
        "/".to_owned(),
        "/v1".to_owned(),
        "/v1/".to_owned(),
        "/v2/conversations".to_owned(),
        "/v1/keys".to_owned(),
        "/v1/conversation".to_owned(),
        format!("/v1/conversations/{cid}/members"),
        format!("/v1/conversations/{cid}/members/bob@example.org/extra"),
        format!("/v1/conversations/{cid}/keys/current/extra"),
        format!("/v1/keys/{}/extra", c.objectid),
    ] {
        for token in [owner.as_str(), NO_TOKEN] {
            let r = s.get(&path, token).await;
            assert_eq!(r.status, 404, "GET {path}: {}", r.status);
            r.expect_problem(404);
        }
    }

    let wrong: Vec<(Method, String)> = vec![
        (Method::GET, CONVERSATIONS.into()),
        (Method::DELETE, CONVERSATIONS.into()),
        (Method::PATCH, CONVERSATIONS.into()),
        (Method::POST, conversation_path(cid)),
        (Method::PUT, conversation_path(cid)),
        (Method::PATCH, conversation_path(cid)),
        (Method::GET, rotate_path(cid)),
        (Method::DELETE, rotate_path(cid)),
        (Method::POST, current_key_path(cid)),
        (Method::PUT, current_key_path(cid)),
        (Method::DELETE, key_path(&c.objectid)),
        (Method::POST, key_path(&c.objectid)),
        (Method::PUT, BATCH.into()),
        (Method::DELETE, BATCH.into()),
        (Method::GET, member_path(cid, *BOB)),
        (Method::POST, member_path(cid, *BOB)),
        (Method::PATCH, member_path(cid, *BOB)),
    ];
    for (method, path) in wrong {
        let r = s.send(method.clone(), &path, &owner, &[], Some(b"{\"role\": \"admin\"}".to_vec())).await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.status);
        r.expect_problem(405);
    }
    assert_eq!(snapshot(&s, &owner, cid).await, before, "a refused request changed something");
}

#[tokio::test]
async fn invalid_jids_in_the_path() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    let before = snapshot(&s, &owner, cid).await;
    let role = json!({"role": "member"});
    let mut segments: Vec<&str> = BAD_JIDS.iter().map(|(_, seg)| *seg).collect();
    // Not UTF-8 once percent-decoded.
    segments.push("%FF%40example.org");
    let mut failures = Vec::new();
    for seg in segments {
        let r = s.put(&member_path(cid, seg), &owner, Some(&role)).await;
        failures.extend(r.problem_complaint(400));
        let r = s.delete(&member_path(cid, seg), &owner).await;
        failures.extend(r.problem_complaint(400));
        // Without a token the answer is 401, as on every route: input is
        // looked at only for authenticated callers.
        let r = s.delete(&member_path(cid, seg), NO_TOKEN).await;
        failures.extend(r.problem_complaint(401));
    }
    assert!(failures.is_empty(), "invalid JIDs in the path were not refused properly:\n{}", failures.join("\n"));
    assert_eq!(snapshot(&s, &owner, cid).await, before, "a refused request changed something");
}

#[tokio::test]
async fn put_member_and_batch_reject_bad_bodies() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "since_join").await;
    let cid = &c.conversation_id;
    let before = snapshot(&s, &owner, cid).await;

    let role_bodies: [&[u8]; 11] = [
        b"",
        b"{",
        b"null",
        b"{}",
        b"{\"role\": 1}",
        b"{\"role\": null}",
        b"{\"role\": \"boss\"}",
        b"{\"role\": \"Admin\"}",
        b"{\"role\": \"owner\"}",
        b"{\"role\": \"member\", \"jid\": \"eve@example.org\"}",
        b"[\"member\"]",
    ];
    let mut failures = Vec::new();
    for target in [*BOB, "new@example.org"] {
        for body in role_bodies {
            let r = send_raw(&s, Method::PUT, &member_path(cid, target), &owner, body).await;
            failures.extend(r.problem_complaint(400).map(|c| format!("body {:?}: {c}", String::from_utf8_lossy(body))));
        }
    }
    let batch_bodies: [&[u8]; 9] = [
        b"",
        b"[[]]",
        b"{\"objectids\": [",
        b"{}",
        b"{\"objectids\": \"x\"}",
        b"{\"objectids\": [1]}",
        b"{\"objectids\": null}",
        b"{\"objectids\": [], \"extra\": 1}",
        b"[]",
    ];
    for body in batch_bodies {
        let r = send_raw(&s, Method::POST, BATCH, &owner, body).await;
        failures.extend(r.problem_complaint(400).map(|c| format!("body {:?}: {c}", String::from_utf8_lossy(body))));
    }
    assert!(failures.is_empty(), "bad bodies were not refused:\n{}", failures.join("\n"));
    assert_eq!(snapshot(&s, &owner, cid).await, before, "a refused request changed something");
}

#[tokio::test]
async fn member_limit() {
    let s = TestServer::start_with_env(&[("KEYSRV_MAX_MEMBERS", "3")]);
    let owner = s.token(*OWNER);
    let rows = s.row_counts();

    // Four with the owner is one too many.
    let r = s.post(CONVERSATIONS, &owner, Some(&json!({"members": ["a@x.org", "b@x.org", "c@x.org"]}))).await;
    r.expect_problem(400);
    assert_eq!(s.row_counts(), rows, "a refused create wrote rows");

    // Duplicates and the owner do not count twice.
    for history in ["shared", "since_join"] {
        let c = s.create_conversation(&owner, &["a@x.org", "A@X.org", *OWNER, "b@x.org"], history).await;
        let cid = &c.conversation_id;
        let view = s.conversation(&owner, cid).await;
        assert_eq!(view["members"].as_array().map(Vec::len), Some(3), "{view}");

        // Full: adding is a conflict and writes nothing (no rotation either).
        let before = snapshot(&s, &owner, cid).await;
        let r = s.put(&member_path(cid, "c@x.org"), &owner, Some(&json!({"role": "member"}))).await;
        r.expect_problem(409);
        assert_eq!(snapshot(&s, &owner, cid).await, before, "{history}: a refused add changed something");

        // Changing a role is not adding.
        s.put_member(&owner, cid, "a@x.org", "admin").await;

        // Removing makes room again.
        s.remove_member(&owner, cid, "b@x.org").await;
        s.put_member(&owner, cid, "c@x.org", "member").await;
        let before = snapshot(&s, &owner, cid).await;
        s.put(&member_path(cid, "d@x.org"), &owner, Some(&json!({"role": "member"}))).await.expect_problem(409);
        assert_eq!(snapshot(&s, &owner, cid).await, before, "{history}: a refused add changed something");
    }
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let rows = s.row_counts();
    let role = json!({"role": "member"});
    for cid in
        [unknown_conversation_id(), "short".to_owned(), format!("{}x", c.conversation_id), "not-an-id".to_owned()]
    {
        s.get(&conversation_path(&cid), &owner).await.expect_problem(404);
        s.delete(&conversation_path(&cid), &owner).await.expect_problem(404);
        s.get(&current_key_path(&cid), &owner).await.expect_problem(404);
        s.post(&rotate_path(&cid), &owner, None).await.expect_problem(404);
        s.put(&member_path(&cid, *BOB), &owner, Some(&role)).await.expect_problem(404);
        s.delete(&member_path(&cid, *BOB), &owner).await.expect_problem(404);
    }
    for oid in [unknown_objectid(), unknown_objectid_in(&c.conversation_id), c.conversation_id.clone(), "x.y".into()] {
        s.get(&key_path(&oid), &owner).await.expect_problem(404);
    }
    assert_eq!(s.row_counts(), rows);
}

#[tokio::test]
async fn bad_idempotency_keys() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    let before = snapshot(&s, &owner, cid).await;
    let body = keysrv_tests::serde_json::to_vec(&json!({"members": [*BOB]})).expect("json");

    let too_long = "k".repeat(256);
    let bad: [&[u8]; 5] = [b"", too_long.as_bytes(), b"has space", b"tab\tinside", "caf\u{e9}".as_bytes()];
    for key in bad {
        let h = [("idempotency-key", key)];
        let r = s.send(Method::POST, CONVERSATIONS, &owner, &h, Some(body.clone())).await;
        assert_eq!(r.status, 400, "create with Idempotency-Key {:?}: {}", String::from_utf8_lossy(key), r.status);
        r.expect_problem(400);
        let r = s.send(Method::POST, &rotate_path(cid), &owner, &h, None).await;
        assert_eq!(r.status, 400, "rotate with Idempotency-Key {:?}: {}", String::from_utf8_lossy(key), r.status);
        r.expect_problem(400);
    }
    assert_eq!(snapshot(&s, &owner, cid).await, before, "a refused request changed something");

    // The bounds themselves are fine.
    let longest = "~".repeat(254);
    for key in ["!", longest.as_str()] {
        let create_key = format!("c{key}");
        let rotate_key = format!("r{key}");
        let h = [("idempotency-key", create_key.as_bytes())];
        s.send(Method::POST, CONVERSATIONS, &owner, &h, Some(body.clone())).await.expect(201);
        let h = [("idempotency-key", rotate_key.as_bytes())];
        s.send(Method::POST, &rotate_path(cid), &owner, &h, None).await.expect(201);
    }
}
