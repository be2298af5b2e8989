//! Who may read and change what: revocation, history modes, roles, and 404s
//! that reveal nothing.

use keysrv_tests::serde_json::json;
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol", DAVE = "dave", STRANGER = "stranger" }
jids! { NURSE = "nurse" }
jids! { M1 = "m1", M2 = "m2", A1 = "a1", A2 = "a2", NEW = "new", NEWBIE = "newbie", NOBODY = "nobody" }

#[tokio::test]
async fn removal_revokes_the_whole_history() {
    let s = TestServer::start();
    let (owner, bob, carol) = (s.token(*OWNER), s.token(*BOB), s.token(*CAROL));
    let c = s.create_conversation(&owner, &[*BOB, *CAROL], "shared").await;
    let cid = &c.conversation_id;
    let k2 = s.rotate(&bob, cid).await;
    // Bob can read both keys while he is a member.
    assert_eq!(s.key(&bob, &c.objectid).await, Some(c.key.clone()));
    assert_eq!(s.key(&bob, &k2.objectid).await, Some(k2.key.clone()));

    let k3 = s.remove_member(&owner, cid, *BOB).await;
    let all = [c.objectid.as_str(), k2.objectid.as_str(), k3.as_str()];

    // Bob now sees nothing: not the conversation, not the current key, not the keys he read before.
    s.get(&conversation_path(cid), &bob).await.expect_problem(404);
    s.get(&current_key_path(cid), &bob).await.expect_problem(404);
    for oid in all {
        assert_eq!(s.key(&bob, oid).await, None, "removed member read {oid}");
    }
    let (keys, mut missing) = s.batch(&bob, &all).await;
    assert!(keys.is_empty(), "removed member got keys from a batch: {keys:?}");
    missing.sort();
    let mut want: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(missing, want);
    let before = s.conversation(&owner, cid).await;
    s.post(&rotate_path(cid), &bob, None).await.expect_problem(404);
    s.delete(&member_path(cid, *BOB), &bob).await.expect_problem(404);
    s.delete(&member_path(cid, *CAROL), &bob).await.expect_problem(404);
    assert_eq!(s.conversation(&owner, cid).await, before, "a removed member changed nothing");

    // Carol still reads everything.
    for oid in all {
        assert!(s.key(&carol, oid).await.is_some(), "member lost {oid}");
    }
    assert_eq!(s.current_key(&carol, cid).await.objectid, k3);
}

#[tokio::test]
async fn since_join_hides_keys_from_before_joining() {
    let s = TestServer::start();
    let (owner, bob, carol, dave) = (s.token(*OWNER), s.token(*BOB), s.token(*CAROL), s.token(*DAVE));
    let c = s.create_conversation(&owner, &[*BOB], "since_join").await;
    let cid = &c.conversation_id;
    assert_eq!(s.conversation(&owner, cid).await["history"], json!("since_join"));
    let k2 = s.rotate(&owner, cid).await;

    // Adding Carol rotates the key in the same step.
    s.put_member(&owner, cid, *CAROL, "member").await;
    let k3 = s.current_key(&owner, cid).await;
    assert!(k3.objectid != k2.objectid && k3.objectid != c.objectid, "adding under since_join rotates");
    assert_ne!(k3.key, k2.key);

    // Carol reads the new key, and nothing older.
    assert_eq!(s.current_key(&carol, cid).await, k3);
    assert_eq!(s.key(&carol, &k3.objectid).await, Some(k3.key.clone()));
    assert_eq!(s.key(&carol, &c.objectid).await, None);
    assert_eq!(s.key(&carol, &k2.objectid).await, None);
    let (keys, mut missing) = s.batch(&carol, &[&c.objectid, &k2.objectid, &k3.objectid]).await;
    assert_eq!(keys, vec![k3.clone()]);
    missing.sort();
    let mut want = vec![c.objectid.clone(), k2.objectid.clone()];
    want.sort();
    assert_eq!(missing, want);

    // Members from before still read all of it.
    for t in [&owner, &bob] {
        assert_eq!(s.key(t, &c.objectid).await, Some(c.key.clone()));
        assert_eq!(s.key(t, &k2.objectid).await, Some(k2.key.clone()));
        assert_eq!(s.key(t, &k3.objectid).await, Some(k3.key.clone()));
    }

    // Later keys are Carol's too, and a role change does not move her join point.
    let k4 = s.rotate(&bob, cid).await;
    assert_eq!(s.key(&carol, &k4.objectid).await, Some(k4.key.clone()));
    s.put_member(&owner, cid, *CAROL, "admin").await;
    assert_eq!(s.key(&carol, &k2.objectid).await, None, "promotion revealed an older key");
    assert_eq!(s.key(&carol, &k3.objectid).await, Some(k3.key.clone()));
    s.put_member(&owner, cid, *BOB, "admin").await;
    assert_eq!(s.key(&bob, &c.objectid).await, Some(c.key.clone()), "promotion hid an older key");

    // An admin adding a member rotates as well.
    s.put_member(&carol, cid, *DAVE, "member").await;
    let k5 = s.current_key(&owner, cid).await;
    assert_ne!(k5.objectid, k4.objectid);
    assert_eq!(s.current_key(&dave, cid).await, k5);
    for old in [&c.objectid, &k2.objectid, &k3.objectid, &k4.objectid] {
        assert_eq!(s.key(&dave, old).await, None);
    }
}

#[tokio::test]
async fn shared_history_new_member_reads_older_keys() {
    let s = TestServer::start();
    let (owner, carol) = (s.token(*OWNER), s.token(*CAROL));
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = &c.conversation_id;
    let k2 = s.rotate(&owner, cid).await;
    s.put_member(&owner, cid, *CAROL, "member").await;
    assert_eq!(s.key(&carol, &c.objectid).await, Some(c.key.clone()));
    assert_eq!(s.key(&carol, &k2.objectid).await, Some(k2.key.clone()));
    let (mut keys, missing) = s.batch(&carol, &[&c.objectid, &k2.objectid]).await;
    keys.sort();
    let mut want = vec![Key { objectid: c.objectid.clone(), key: c.key.clone() }, k2.clone()];
    want.sort();
    assert_eq!(keys, want);
    assert!(missing.is_empty());
    assert_eq!(s.current_key(&carol, cid).await, k2);
}

/// A 404 for something that exists but is not the caller's is the same
/// response, byte for byte, as for something that does not exist.
#[tokio::test]
async fn not_found_reveals_nothing() {
    let s = TestServer::start();
    let (owner, bob, stranger) = (s.token(*OWNER), s.token(*BOB), s.token(*STRANGER));
    let c = s.create_conversation(&owner, &[*BOB, *CAROL], "shared").await;
    let cid = c.conversation_id.clone();
    let removed = s.token(*DAVE);
    s.put_member(&owner, &cid, *DAVE, "member").await;
    s.remove_member(&owner, &cid, *DAVE).await;
    let unknown = unknown_conversation_id();
    let before = s.conversation(&owner, &cid).await;

    let role = json!({"role": "member"});
    // (description, method, path for the existing conversation, path for an unknown one, body)
    type Case = (&'static str, &'static str, String, Vec<String>, Option<keysrv_tests::serde_json::Value>);
    let cases: Vec<Case> = vec![
        (
            "get_conversation",
            "GET",
            conversation_path(&cid),
            vec![conversation_path(&unknown), conversation_path("nope")],
            None,
        ),
        ("delete_conversation", "DELETE", conversation_path(&cid), vec![conversation_path(&unknown)], None),
        (
            "get_current_key",
            "GET",
            current_key_path(&cid),
            vec![current_key_path(&unknown), current_key_path("x")],
            None,
        ),
        ("rotate_key", "POST", rotate_path(&cid), vec![rotate_path(&unknown)], None),
        (
            "get_key",
            "GET",
            key_path(&c.objectid),
            vec![key_path(&unknown_objectid()), key_path(&unknown_objectid_in(&cid)), key_path("nope"), key_path(&cid)],
            None,
        ),
        ("put_member", "PUT", member_path(&cid, *NEWBIE), vec![member_path(&unknown, *NEWBIE)], Some(role.clone())),
        ("delete_member", "DELETE", member_path(&cid, *BOB), vec![member_path(&unknown, *BOB)], None),
    ];
    let send = |method: &'static str, path: String, token: String, body: Option<keysrv_tests::serde_json::Value>| {
        let client = s.client();
        async move {
            let body = body.map(|b| keysrv_tests::serde_json::to_vec(&b).expect("json"));
            client.send(method.parse().expect("method"), &path, &token, &[], body).await
        }
    };
    for (what, method, existing, unknowns, body) in cases {
        let reference = send(method, existing.clone(), stranger.clone(), body.clone()).await;
        reference.expect_problem(404);
        let mut others = vec![send(method, existing.clone(), removed.clone(), body.clone()).await];
        for u in unknowns {
            others.push(send(method, u.clone(), owner.clone(), body.clone()).await);
            others.push(send(method, u, stranger.clone(), body.clone()).await);
        }
        for other in others {
            assert_eq!(
                (other.status, &other.raw, other.header("content-type")),
                (reference.status, &reference.raw, reference.header("content-type")),
                "{what}: {} differs from {}",
                other.request,
                reference.request
            );
        }
    }
    // Removing someone who is not a member is the same 404 too.
    let r = s.delete(&member_path(&cid, *NOBODY), &owner).await;
    let reference = s.get(&conversation_path(&unknown), &bob).await;
    assert_eq!((r.status, &r.raw), (reference.status, &reference.raw));
    assert_eq!(s.conversation(&owner, &cid).await, before, "nothing changed");
}

#[tokio::test]
async fn roles_limit_what_members_do() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let (m1, a1) = (s.token(*M1), s.token(*A1));
    let c = s.create_conversation(&owner, &[*M1, *M2], "shared").await;
    let cid = &c.conversation_id;
    // Only the owner grants admin.
    s.put_member(&owner, cid, *A1, "admin").await;
    s.put_member(&owner, cid, *A2, "admin").await;
    let snapshot = s.conversation(&owner, cid).await;

    let member_role = json!({"role": "member"});
    let admin_role = json!({"role": "admin"});
    let refused = [
        // A plain member manages nobody.
        ("member adds a member", s.put(&member_path(cid, *NEW), &m1, Some(&member_role)).await, 403),
        ("member promotes", s.put(&member_path(cid, *M2), &m1, Some(&admin_role)).await, 403),
        ("member promotes itself", s.put(&member_path(cid, *M1), &m1, Some(&admin_role)).await, 403),
        ("member removes a member", s.delete(&member_path(cid, *M2), &m1).await, 403),
        ("member removes an admin", s.delete(&member_path(cid, *A1), &m1).await, 403),
        // An admin manages plain members only.
        ("admin adds an admin", s.put(&member_path(cid, *NEW), &a1, Some(&admin_role)).await, 403),
        ("admin grants admin", s.put(&member_path(cid, *M1), &a1, Some(&admin_role)).await, 403),
        ("admin demotes an admin", s.put(&member_path(cid, *A2), &a1, Some(&member_role)).await, 403),
        ("admin removes an admin", s.delete(&member_path(cid, *A2), &a1).await, 403),
        // Only the owner deletes the conversation.
        ("member deletes the conversation", s.delete(&conversation_path(cid), &m1).await, 403),
        ("admin deletes the conversation", s.delete(&conversation_path(cid), &a1).await, 403),
        // Nobody changes or removes the owner; nobody is made owner.
        ("admin changes the owner", s.put(&member_path(cid, *OWNER), &a1, Some(&member_role)).await, 409),
        ("admin removes the owner", s.delete(&member_path(cid, *OWNER), &a1).await, 409),
        ("owner grants owner", s.put(&member_path(cid, *M1), &owner, Some(&json!({"role": "owner"}))).await, 400),
    ];
    for (what, r, status) in &refused {
        assert_eq!(r.status, *status, "{what}: {} -> {} {}", r.request, r.status, String::from_utf8_lossy(&r.raw));
        r.expect_problem(*status);
    }
    assert_eq!(s.conversation(&owner, cid).await, snapshot, "refused requests changed nothing");

    // What admins and the owner may do.
    s.put_member(&a1, cid, *NEW, "member").await;
    s.remove_member(&a1, cid, *M2).await;
    s.put_member(&owner, cid, *A2, "member").await;
    s.remove_member(&owner, cid, *A1).await;
    s.put_member(&owner, cid, *M1, "admin").await;
    let view = s.conversation(&owner, cid).await;
    let mut roles: Vec<(String, String)> = view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| (m["jid"].as_str().expect("jid").to_owned(), m["role"].as_str().expect("role").to_owned()))
        .collect();
    roles.sort();
    let want = [(*A2, "member"), (*M1, "admin"), (*NEW, "member"), (*OWNER, "owner")];
    let mut want: Vec<(String, String)> = want.iter().map(|(j, r)| (j.to_string(), r.to_string())).collect();
    want.sort();
    assert_eq!(roles, want);
}

#[tokio::test]
async fn members_leave() {
    let s = TestServer::start();
    let (owner, bob, carol) = (s.token(*OWNER), s.token(*BOB), s.token(*CAROL));
    let c = s.create_conversation(&owner, &[*BOB, *CAROL], "shared").await;
    let cid = &c.conversation_id;
    s.put_member(&owner, cid, *CAROL, "admin").await;

    let k = s.remove_member(&bob, cid, *BOB).await;
    assert_ne!(k, c.objectid, "leaving rotates");
    let k2 = s.remove_member(&carol, cid, *CAROL).await;
    assert_ne!(k2, k);
    let view = s.conversation(&owner, cid).await;
    assert_eq!(view["members"].as_array().map(Vec::len), Some(1), "{view}");
    s.delete(&member_path(cid, *BOB), &bob).await.expect_problem(404);
    s.delete(&member_path(cid, *OWNER), &owner).await.expect_problem(409);
    assert_eq!(s.conversation(&owner, cid).await, view);
}

/// The same person under two spellings is one member: a trailing dot,
/// upper case or the Unicode spelling of a domain (compared as A-labels)
/// name the member the canonical token is for.
#[tokio::test]
async fn every_spelling_of_a_jid_is_one_member() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let (local, domain) = NURSE.split_once('@').expect("a bare JID");
    let idn = format!("ren\u{e9}@caf\u{e9}.{domain}");
    let idn_canonical = format!("ren\u{e9}@xn--caf-dma.{domain}");
    let c = s.create_conversation(&owner, &[&format!("{local}@{domain}."), &idn], "shared").await;
    let view = s.conversation(&owner, &c.conversation_id).await;
    let mut members: Vec<String> = view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["jid"].as_str().expect("jid").to_owned())
        .collect();
    members.sort();
    let mut want = vec![OWNER.to_string(), NURSE.to_string(), idn_canonical.clone()];
    want.sort();
    assert_eq!(members, want, "members are stored in canonical form");

    // Adding again under other spellings changes nothing: still three members.
    for spelling in [format!("{}@{}.", local.to_uppercase(), domain), format!("ren\u{e9}@xn--caf-dma.{domain}.")] {
        s.put(&member_path(&c.conversation_id, &spelling), &owner, Some(&json!({"role": "member"}))).await.expect(200);
    }
    let view = s.conversation(&owner, &c.conversation_id).await;
    assert_eq!(view["members"].as_array().map(Vec::len), Some(3), "{view}");

    for jid in [*NURSE, idn_canonical.as_str()] {
        let token = s.sign_trusted(&s.access_claims(jid));
        s.get(&key_path(&c.objectid), &token).await.expect(200);
    }
    // Removing under the dotted spelling removes the member.
    s.delete(&member_path(&c.conversation_id, &format!("{local}@{domain}.")), &owner).await.expect(200);
    let nurse = s.sign_trusted(&s.access_claims(*NURSE));
    s.get(&key_path(&c.objectid), &nurse).await.expect_problem(404);
}
