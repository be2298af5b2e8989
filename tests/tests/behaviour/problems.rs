//! Every problem type a client can meet over HTTP, produced by the request
//! that causes it, with its status, its `type` and its extension members.
//! (The types no request here can produce — a backend failing, every
//! connection busy — are checked by the fault tests and by the unit tests of
//! `http::problem`.)

use keysrv_tests::reqwest::Method;
use keysrv_tests::serde_json::json;
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol", STRANGER = "stranger" }

#[tokio::test]
async fn each_problem_has_its_own_type() {
    let s = TestServer::start_with_env(&[("KEYSRV_MAX_MEMBERS", "3"), ("KEYSRV_FILE_MAX_BYTES", "1000")]);
    let (owner, bob) = (s.token(*OWNER), s.token(*BOB));
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = c.conversation_id.clone();
    let raw = |body: &str| Some(body.as_bytes().to_vec());
    let json_ct: &[(&str, &[u8])] = &[("content-type", b"application/json")];

    // 400s.
    s.post(CONVERSATIONS, &owner, Some(&json!({"members": ["a b@example.org"]}))).await.expect_type(400, "invalid-jid");
    s.send(Method::POST, CONVERSATIONS, &owner, json_ct, None).await.expect_type(400, "body-missing");
    s.send(Method::POST, CONVERSATIONS, &owner, json_ct, raw("[1]")).await.expect_type(400, "body-not-object");
    s.post(CONVERSATIONS, &owner, Some(&json!({"members": 5}))).await.expect_type(400, "invalid-body");
    s.send(Method::POST, &rotate_path(&cid), &owner, &[("idempotency-key", b"has space")], None)
        .await
        .expect_type(400, "invalid-idempotency-key");
    let r = s.post(CONVERSATIONS, &owner, Some(&json!({"members": [*BOB, *CAROL, *STRANGER]}))).await;
    assert_eq!(r.expect_type(400, "too-many-members").body["max_members"], json!(3));
    let ids: Vec<String> = (0..101).map(|_| unknown_objectid()).collect();
    let r = s.post(BATCH, &owner, Some(&json!({"objectids": ids}))).await;
    assert_eq!(r.expect_type(400, "batch-too-large").body["max_batch"], json!(100));
    s.put(&member_path(&cid, *CAROL), &owner, Some(&json!({"role": "owner"}))).await.expect_type(400, "invalid-role");
    s.post(&files_path(&cid), &owner, Some(&json!({"content_type": "nope", "size": 1})))
        .await
        .expect_type(400, "invalid-media-type");
    s.get("/v1/keys/%FF", &owner).await.expect_type(400, "invalid-path");

    // 401s.
    s.get(&current_key_path(&cid), NO_TOKEN).await.expect_type(401, "invalid-token");
    let mut id_token = s.access_claims(*OWNER);
    id_token["token_use"] = json!("id");
    s.get(&current_key_path(&cid), &s.sign_trusted(&id_token)).await.expect_type(401, "not-an-access-token");
    let mut upper = s.access_claims(*OWNER);
    upper["username"] = json!(OWNER.to_uppercase());
    let r = s.get(&current_key_path(&cid), &s.sign_trusted(&upper)).await;
    assert_eq!(r.expect_type(401, "non-canonical-caller").body["claim"], json!("username"));
    let mut nameless = s.access_claims(*OWNER);
    nameless.as_object_mut().map(|o| o.remove("username"));
    s.get(&current_key_path(&cid), &s.sign_trusted(&nameless)).await.expect_type(401, "no-caller-claim");

    // 403, 404, 405.
    let r = s.put(&member_path(&cid, *CAROL), &bob, Some(&json!({"role": "member"}))).await;
    assert_eq!(r.expect_type(403, "role-required").body["required_role"], json!("admin"));
    let r = s.delete(&conversation_path(&cid), &bob).await;
    assert_eq!(r.expect_type(403, "role-required").body["required_role"], json!("owner"));
    s.get(&key_path(&unknown_objectid()), &owner).await.expect_type(404, "not-found");
    s.get("/v1/nothing-here", &owner).await.expect_type(404, "no-route");
    s.send(Method::PATCH, CONVERSATIONS, &owner, &[], None).await.expect_type(405, "method-not-allowed");

    // 409s.
    s.put(&member_path(&cid, *OWNER), &owner, Some(&json!({"role": "admin"})))
        .await
        .expect_type(409, "owner-role-fixed");
    s.delete(&member_path(&cid, *OWNER), &owner).await.expect_type(409, "owner-cannot-leave");
    s.put(&member_path(&cid, *CAROL), &owner, Some(&json!({"role": "member"}))).await.expect(200);
    let r = s.put(&member_path(&cid, *STRANGER), &owner, Some(&json!({"role": "member"}))).await;
    assert_eq!(r.expect_type(409, "member-limit").body["max_members"], json!(3));
    let key: &[(&str, &[u8])] = &[("idempotency-key", b"k-1")];
    s.send(Method::POST, &rotate_path(&cid), &owner, key, None).await.expect(201);
    let other = s.create_conversation(&owner, &[], "shared").await;
    s.send(Method::POST, &rotate_path(&other.conversation_id), &owner, key, None)
        .await
        .expect_type(409, "idempotency-key-reused");

    // 413s.
    let big = vec![b' '; 70 * 1024];
    let r = s.send(Method::POST, CONVERSATIONS, &owner, json_ct, Some(big)).await;
    assert_eq!(r.expect_type(413, "body-too-large").body["max_bytes"], json!(65536));
    let r = s.post(&files_path(&cid), &owner, Some(&json!({"content_type": "text/plain", "size": 1001}))).await;
    assert_eq!(r.expect_type(413, "file-too-large").body["max_bytes"], json!(1000));

    // A file URL used twice, or tampered with (embedded: keysrv serves it).
    if s.backend() == Backend::Embedded {
        let r = s.post(&files_path(&cid), &owner, Some(&json!({"content_type": "text/plain", "size": 2}))).await;
        let url = r.body["upload"]["url"].as_str().expect("url").to_owned();
        let put = |url: String| async move {
            keysrv_tests::reqwest::Client::new().put(url).header("content-type", "text/plain").body("hi").send().await
        };
        assert_eq!(put(url.clone()).await.expect("upload").status().as_u16(), 200);
        let again = put(url.clone()).await.expect("upload");
        assert_eq!(again.status().as_u16(), 409);
        let body: keysrv_tests::serde_json::Value = again.json().await.expect("problem json");
        assert_eq!(body["type"], json!("urn:keysrv:problem:file-already-uploaded"));
        let tampered = url.replace("sig=", "sig=AA");
        let r = put(tampered).await.expect("upload");
        assert_eq!(r.status().as_u16(), 403);
        let body: keysrv_tests::serde_json::Value = r.json().await.expect("problem json");
        assert_eq!(body["type"], json!("urn:keysrv:problem:invalid-url"));
    }
}
