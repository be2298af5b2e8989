//! The lifecycle of a conversation, route by route, as its members see it.

use std::collections::BTreeSet;

use keysrv_tests::serde_json::{Value, json};
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol", DAVE = "dave", ERIN = "erin" }

/// Checks a key object: its fields, its shape, and returns the key bytes.
#[track_caller]
fn check_key_object(k: &Value, conversation_id: &str) -> Vec<u8> {
    let objectid = k["objectid"].as_str().unwrap_or_else(|| panic!("no objectid in {k}"));
    assert!(!objectid.is_empty() && objectid.len() <= 64, "objectid {objectid:?} out of bounds");
    assert_eq!(k["conversation_id"], json!(conversation_id), "{k}");
    assert_eq!(k["alg"], json!("A256GCM"), "{k}");
    assert_rfc3339(k["created_at"].as_str().unwrap_or_else(|| panic!("no created_at in {k}")));
    decode_key(k["key"].as_str().unwrap_or_else(|| panic!("no key in {k}")))
}

/// The members of a conversation view as (jid, role), sorted.
fn members(view: &Value) -> BTreeSet<(String, String)> {
    view["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {view}"))
        .iter()
        .map(|m| {
            assert_rfc3339(m["joined_at"].as_str().unwrap_or_else(|| panic!("no joined_at in {m}")));
            (m["jid"].as_str().expect("jid").to_owned(), m["role"].as_str().expect("role").to_owned())
        })
        .collect()
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs.iter().map(|(j, r)| (j.to_string(), r.to_string())).collect()
}

fn joined_at(view: &Value, jid: &str) -> String {
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["jid"] == json!(jid))
        .and_then(|m| m["joined_at"].as_str())
        .unwrap_or_else(|| panic!("{jid} not in {view}"))
        .to_owned()
}

#[tokio::test]
async fn conversation_lifecycle() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let bob = s.token(*BOB);
    let carol = s.token(*CAROL);
    let dave = s.token(*DAVE);
    let erin = s.token(*ERIN);
    let mut issued = vec![];

    // Create: the owner's own JID and a differently spelled duplicate are ignored.
    let r = s.post(CONVERSATIONS, &owner, Some(&json!({"members": [BOB.to_uppercase(), *BOB, *OWNER, *CAROL]}))).await;
    r.expect(201).expect_no_store();
    assert!(r.header("content-type").unwrap_or_default().starts_with("application/json"));
    let cid = r.str("conversation_id");
    assert_conversation_id(&cid);
    let k1 = r.body["key"]["objectid"].as_str().expect("objectid").to_owned();
    let k1_bytes = check_key_object(&r.body["key"], &cid);
    issued.push(k1.clone());

    // Read it back: owner, members with roles, default history, current key.
    let view = s.conversation(&owner, &cid).await;
    assert_eq!(view["conversation_id"], json!(cid));
    assert_eq!(view["owner"], json!(*OWNER));
    assert_eq!(view["history"], json!("shared"));
    assert_eq!(view["current_objectid"], json!(k1));
    assert_rfc3339(view["created_at"].as_str().expect("created_at"));
    assert_eq!(members(&view), set(&[(*OWNER, "owner"), (*BOB, "member"), (*CAROL, "member")]));
    let r = s.get(&conversation_path(&cid), &bob).await;
    r.expect(200).expect_no_store();
    assert_eq!(r.body, view, "members see the same conversation as the owner");

    // The current key is the created one, for every member.
    for t in [&owner, &bob, &carol] {
        let r = s.get(&current_key_path(&cid), t).await;
        r.expect(200).expect_no_store();
        assert_eq!(r.str("objectid"), k1);
        assert_eq!(check_key_object(&r.body, &cid), k1_bytes);
    }

    // A member rotates: a new current key with different bytes.
    let r = s.post(&rotate_path(&cid), &bob, None).await;
    r.expect(201).expect_no_store();
    let k2 = r.str("objectid");
    let k2_bytes = check_key_object(&r.body, &cid);
    issued.push(k2.clone());
    assert_ne!(k2, k1);
    assert_ne!(k2_bytes, k1_bytes);
    assert_eq!(s.current_objectid(&owner, &cid).await, k2);
    assert_eq!(s.current_key(&carol, &cid).await, Key { objectid: k2.clone(), key: k2_bytes.clone() });

    // Any key by objectid, for every member: the bytes its creator got.
    for t in [&owner, &bob, &carol] {
        for (oid, bytes) in [(&k1, &k1_bytes), (&k2, &k2_bytes)] {
            let r = s.get(&key_path(oid), t).await;
            r.expect(200).expect_no_store();
            assert_eq!(&r.str("objectid"), oid);
            assert_eq!(&check_key_object(&r.body, &cid), bytes);
        }
    }

    // Add a member; change its role; setting the same role again changes nothing.
    let before = s.conversation(&owner, &cid).await;
    let r = s.put(&member_path(&cid, *DAVE), &owner, Some(&json!({"role": "member"}))).await;
    r.expect(200).expect_no_store();
    assert_eq!(r.body["jid"], json!(*DAVE));
    assert_eq!(r.body["role"], json!("member"));
    assert_rfc3339(r.body["joined_at"].as_str().expect("joined_at"));
    let view = s.conversation(&owner, &cid).await;
    assert_eq!(members(&view), set(&[(*OWNER, "owner"), (*BOB, "member"), (*CAROL, "member"), (*DAVE, "member")]));
    assert_eq!(view["current_objectid"], before["current_objectid"], "shared: adding does not rotate");
    let dave_joined = joined_at(&view, *DAVE);
    assert_eq!(s.key(&dave, &k1).await.as_deref(), Some(&k1_bytes[..]));

    let r = s.put(&member_path(&cid, *DAVE), &owner, Some(&json!({"role": "admin"}))).await;
    r.expect(200);
    assert_eq!(r.body["role"], json!("admin"));
    assert_eq!(r.body["joined_at"], json!(dave_joined), "a role change keeps joined_at");
    let after_promotion = s.conversation(&owner, &cid).await;
    assert!(members(&after_promotion).contains(&(DAVE.to_string(), "admin".to_owned())));
    let r = s.put(&member_path(&cid, *DAVE), &owner, Some(&json!({"role": "admin"}))).await;
    r.expect(200);
    assert_eq!(r.body["role"], json!("admin"));
    assert_eq!(s.conversation(&owner, &cid).await, after_promotion, "same role again changes nothing");

    // The {jid} path segment is percent-decoded and normalized.
    let r = s
        .put(
            &member_path(&cid, &format!("Erin%40{}", test_domain().to_uppercase())),
            &dave,
            Some(&json!({"role": "member"})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["jid"], json!(*ERIN));
    assert_eq!(s.key(&erin, &k2).await.as_deref(), Some(&k2_bytes[..]));

    // Remove a member: the key rotates in the same step.
    let r = s.delete(&member_path(&cid, *ERIN), &dave).await;
    r.expect(200).expect_no_store();
    let k3 = r.str("current_objectid");
    issued.push(k3.clone());
    assert!(k3 != k1 && k3 != k2, "removal rotates the key");
    let view = s.conversation(&owner, &cid).await;
    assert_eq!(view["current_objectid"], json!(k3));
    assert!(!members(&view).iter().any(|(j, _)| j == *ERIN));
    let current = s.current_key(&bob, &cid).await;
    assert_eq!(current.objectid, k3);
    assert_ne!(current.key, k2_bytes);
    s.get(&current_key_path(&cid), &erin).await.expect_problem(404);

    // Leave: a member removes itself, which rotates too.
    let r = s.delete(&member_path(&cid, *CAROL), &carol).await;
    r.expect(200);
    let k4 = r.str("current_objectid");
    issued.push(k4.clone());
    assert_ne!(k4, k3);
    assert_eq!(s.current_objectid(&owner, &cid).await, k4);
    s.get(&conversation_path(&cid), &carol).await.expect_problem(404);

    // Nobody removes the owner, not even the owner.
    let before = s.conversation(&owner, &cid).await;
    s.delete(&member_path(&cid, *OWNER), &owner).await.expect_problem(409);
    s.delete(&member_path(&cid, *OWNER), &dave).await.expect_problem(409);
    s.put(&member_path(&cid, *OWNER), &owner, Some(&json!({"role": "member"}))).await.expect_problem(409);
    assert_eq!(s.conversation(&owner, &cid).await, before, "refused changes changed nothing");

    // Crypto-shred.
    let r = s.delete(&conversation_path(&cid), &owner).await;
    r.expect(204).expect_no_store();
    assert!(r.raw.is_empty(), "204 has no body");
    let everyone = [&owner, &bob, &carol, &dave, &erin];
    for t in everyone {
        s.get(&conversation_path(&cid), t).await.expect_problem(404);
        s.get(&current_key_path(&cid), t).await.expect_problem(404);
        for oid in &issued {
            s.get(&key_path(oid), t).await.expect_problem(404);
        }
        let ids: Vec<&str> = issued.iter().map(String::as_str).collect();
        let (keys, missing) = s.batch(t, &ids).await;
        assert!(keys.is_empty(), "no key of a deleted conversation is released");
        assert_eq!(missing.iter().collect::<BTreeSet<_>>(), issued.iter().collect::<BTreeSet<_>>());
    }
    s.post(&rotate_path(&cid), &owner, None).await.expect_problem(404);
    s.put(&member_path(&cid, *BOB), &owner, Some(&json!({"role": "member"}))).await.expect_problem(404);
    s.delete(&member_path(&cid, *BOB), &owner).await.expect_problem(404);
    s.delete(&conversation_path(&cid), &owner).await.expect_problem(404);
}

#[tokio::test]
async fn batch_get_keys() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let bob = s.token(*BOB);
    let stranger = s.token(&jid("stranger"));

    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let k2 = s.rotate(&owner, &c.conversation_id).await;
    // A conversation the owner is not in.
    let foreign = s.create_conversation(&stranger, &[], "shared").await;
    let unknown = unknown_objectid();
    let unknown_in_c = unknown_objectid_in(&c.conversation_id);

    let ids = [
        c.objectid.as_str(),
        unknown.as_str(),
        k2.objectid.as_str(),
        foreign.objectid.as_str(),
        "not-an-objectid",
        unknown_in_c.as_str(),
        c.objectid.as_str(),
        "",
        unknown.as_str(),
        k2.objectid.as_str(),
    ];
    for t in [&owner, &bob] {
        let r = s.post(BATCH, t, Some(&json!({ "objectids": ids }))).await;
        r.expect(200).expect_no_store();
        for k in r.body["keys"].as_array().expect("keys") {
            check_key_object(k, &c.conversation_id);
        }
        let (keys, missing) = s.batch(t, &ids).await;
        let mut got: Vec<(String, Vec<u8>)> = keys.into_iter().map(|k| (k.objectid, k.key)).collect();
        got.sort();
        let mut want = vec![(c.objectid.clone(), c.key.clone()), (k2.objectid.clone(), k2.key.clone())];
        want.sort();
        assert_eq!(got, want, "each readable key once, with its bytes");
        let mut missing_sorted = missing.clone();
        missing_sorted.sort();
        let mut want_missing = vec![
            unknown.clone(),
            foreign.objectid.clone(),
            "not-an-objectid".into(),
            unknown_in_c.clone(),
            String::new(),
        ];
        want_missing.sort();
        assert_eq!(missing_sorted, want_missing, "every other id once, duplicates collapsed");
    }

    // The stranger sees its own key and nothing of the other conversation.
    let (keys, missing) = s.batch(&stranger, &[&c.objectid, &foreign.objectid]).await;
    assert_eq!(keys, vec![Key { objectid: foreign.objectid.clone(), key: foreign.key.clone() }]);
    assert_eq!(missing, vec![c.objectid.clone()]);

    // Empty is fine; 100 ids are fine; 101 are not.
    let (keys, missing) = s.batch(&owner, &[]).await;
    assert!(keys.is_empty() && missing.is_empty());
    let mut hundred: Vec<String> = (0..99).map(|_| unknown_objectid()).collect();
    hundred.push(c.objectid.clone());
    let refs: Vec<&str> = hundred.iter().map(String::as_str).collect();
    let (keys, missing) = s.batch(&owner, &refs).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(missing.len(), 99);
    hundred.push(unknown_objectid());
    s.post(BATCH, &owner, Some(&json!({ "objectids": hundred }))).await.expect_problem(400);
}
