//! No key and no token is ever written to storage or to the logs in the
//! clear, and a deleted conversation leaves no trace in storage.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keysrv_tests::reqwest::Method;
use keysrv_tests::serde_json::json;
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol", DAVE = "dave" }

/// What to look for: a label and the bytes.
type Needles = Vec<(String, Vec<u8>)>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every encoding of a key that could plausibly end up in a file.
fn key_needles(keys: &[Key]) -> Needles {
    let mut out = Vec::new();
    for k in keys {
        out.push((format!("raw key {}", k.objectid), k.key.clone()));
        out.push((format!("base64 key {}", k.objectid), STANDARD.encode(&k.key).into_bytes()));
        out.push((format!("base64url key {}", k.objectid), URL_SAFE_NO_PAD.encode(&k.key).into_bytes()));
        out.push((format!("hex key {}", k.objectid), hex(&k.key).into_bytes()));
        out.push((format!("HEX key {}", k.objectid), hex(&k.key).to_uppercase().into_bytes()));
    }
    out
}

fn token_needles(tokens: &[String]) -> Needles {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        out.push((format!("token #{i}"), t.clone().into_bytes()));
        let signature = t.rsplit('.').next().expect("a JWT has a signature");
        out.push((format!("signature of token #{i}"), signature.as_bytes().to_vec()));
    }
    out
}

/// Finds every needle (each at least 8 bytes) in `hay`; returns the labels found.
fn find(hay: &[u8], needles: &Needles) -> Vec<String> {
    const P: usize = 8;
    let mut by_prefix: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, (label, n)) in needles.iter().enumerate() {
        assert!(n.len() >= P, "needle {label} is too short");
        by_prefix.entry(u64::from_le_bytes(n[..P].try_into().expect("8 bytes"))).or_default().push(i);
    }
    let mut found = Vec::new();
    for pos in 0..hay.len().saturating_sub(P - 1) {
        let prefix = u64::from_le_bytes(hay[pos..pos + P].try_into().expect("8 bytes"));
        if let Some(ids) = by_prefix.get(&prefix) {
            for &i in ids {
                if hay[pos..].starts_with(&needles[i].1) {
                    found.push(needles[i].0.clone());
                }
            }
        }
    }
    found
}

/// Scans `files` for `needles`; returns "file: label" for every hit.
fn scan(files: &[PathBuf], needles: &Needles) -> Vec<String> {
    let mut hits = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(f) else { continue };
        for label in find(&bytes, needles) {
            hits.push(format!("{}: {label}", f.display()));
        }
    }
    hits
}

fn contains(files: &[PathBuf], needle: &str) -> bool {
    files.iter().any(|f| std::fs::read(f).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())))
}

#[test]
fn the_scanner_finds_what_it_looks_for() {
    // 0xfb bytes make '+' and '/' in base64, '-' and '_' in base64url.
    let key = Key { objectid: "o".into(), key: vec![0xfb; 32] };
    let needles = key_needles(std::slice::from_ref(&key));
    let mut hay = b"some log line ".to_vec();
    hay.extend_from_slice(STANDARD.encode(&key.key).as_bytes());
    hay.extend_from_slice(b" and raw ");
    hay.extend_from_slice(&key.key);
    let found = find(&hay, &needles);
    assert_eq!(found, vec!["base64 key o".to_owned(), "raw key o".to_owned()]);
    assert!(find(b"nothing to see here, nothing at all", &needles).is_empty());
}

#[tokio::test]
async fn no_key_or_token_is_stored_or_logged() {
    // The most verbose logging the server has.
    let mut s = TestServer::start_with_env(&[("KEYSRV_LOG", "trace")]);
    let (owner, bob, carol, dave) = (s.token(*OWNER), s.token(*BOB), s.token(*CAROL), s.token(*DAVE));
    let mut keys: Vec<Key> = Vec::new();
    let mut objectids: Vec<String> = Vec::new();

    let shared = s.create_conversation(&owner, &[*BOB, *CAROL], "shared").await;
    let since = s.create_conversation(&bob, &[*OWNER], "since_join").await;
    let doomed = s.create_conversation(&carol, &[*BOB], "shared").await;
    for c in [&shared, &since, &doomed] {
        keys.push(Key { objectid: c.objectid.clone(), key: c.key.clone() });
    }
    for i in 0..6 {
        keys.push(s.rotate(&owner, &shared.conversation_id).await);
        keys.push(s.rotate(&bob, &since.conversation_id).await);
        let h = format!("rotate-{i}");
        let h = [("idempotency-key", h.as_bytes())];
        for _ in 0..2 {
            let r = s.send(Method::POST, &rotate_path(&doomed.conversation_id), &carol, &h, None).await;
            r.expect(201);
            keys.push(Key { objectid: r.str("objectid"), key: r.key_bytes() });
        }
    }
    s.put_member(&owner, &shared.conversation_id, *DAVE, "admin").await;
    s.put_member(&bob, &since.conversation_id, *DAVE, "member").await;
    keys.push(s.current_key(&dave, &since.conversation_id).await);
    keys.push(s.current_key(&dave, &shared.conversation_id).await);
    s.remove_member(&dave, &shared.conversation_id, *CAROL).await;
    s.remove_member(&dave, &since.conversation_id, *DAVE).await;
    keys.push(s.current_key(&owner, &shared.conversation_id).await);
    keys.push(s.current_key(&owner, &since.conversation_id).await);
    for k in keys.clone() {
        objectids.push(k.objectid.clone());
        if let Some(bytes) = s.key(&owner, &k.objectid).await {
            keys.push(Key { objectid: k.objectid, key: bytes });
        }
    }
    let ids: Vec<&str> = objectids.iter().map(String::as_str).collect();
    let (batch, _) = s.batch(&bob, &ids).await;
    keys.extend(batch);
    // Refused requests: removed members, bad tokens, bad bodies.
    s.get(&current_key_path(&shared.conversation_id), &carol).await.expect(404);
    for (_, t) in s.bad_tokens(*OWNER) {
        s.get(&current_key_path(&shared.conversation_id), &t).await.expect(401);
        s.post(BATCH, &t, Some(&json!({"objectids": ids}))).await.expect(401);
    }
    s.send(Method::POST, CONVERSATIONS, &owner, &[], Some(b"{\"members\": [".to_vec())).await.expect(400);
    // A shredded conversation's keys must be gone too.
    s.delete(&conversation_path(&doomed.conversation_id), &carol).await.expect(204);

    keys.sort();
    keys.dedup();
    let tokens = s.issued_tokens();
    assert!(keys.len() >= 20, "the run issued only {} keys", keys.len());
    assert!(tokens.len() >= 8, "the run issued only {} tokens", tokens.len());
    let mut needles = key_needles(&keys);
    needles.extend(token_needles(&tokens));

    // The scan looks at the right files: the log names the objectids, the database holds them.
    let storage = s.storage_files();
    match s.backend() {
        Backend::Embedded => {
            assert!(storage.iter().any(|f| f.ends_with("keysrv.sqlite3")), "no database in {storage:?}")
        }
        // The whole table (dumped) and the emulator's request log.
        Backend::Aws => {
            assert!(storage.iter().any(|f| f.ends_with("dynamodb-table.dump")), "no table dump in {storage:?}");
            assert!(storage.iter().any(|f| f.ends_with("moto.log")), "no emulator log in {storage:?}");
        }
    }
    assert!(s.log().contains(&shared.objectid), "the log has no audit event for {}", shared.objectid);
    assert!(contains(&storage, &shared.conversation_id), "the database does not hold {}", shared.conversation_id);

    let mut files = storage.clone();
    files.extend(s.output_files());
    let hits = scan(&files, &needles);
    assert!(hits.is_empty(), "secrets found while running:\n{}", hits.join("\n"));

    // And after a clean shutdown, which checkpoints the database.
    let status = s.stop();
    assert!(status.success(), "keysrv exited with {status}");
    let mut files = s.storage_files();
    files.extend(s.output_files());
    let hits = scan(&files, &needles);
    assert!(hits.is_empty(), "secrets found after shutdown:\n{}", hits.join("\n"));
    s.restart();
    assert_eq!(s.key(&owner, &shared.objectid).await, Some(shared.key.clone()), "the scan ran on live data");
}

/// Deleting a conversation removes its rows for good: no id of it is left
/// anywhere in storage (no old row images in the database, its journal or
/// free pages).
#[tokio::test]
async fn a_deleted_conversation_leaves_no_trace_in_storage() {
    let s = TestServer::start();
    let (owner, bob) = (s.token(*OWNER), s.token(*BOB));
    let keep = s.create_conversation(&owner, &[*BOB], "shared").await;
    let doomed = s.create_conversation(&owner, &[*BOB, *CAROL], "since_join").await;
    let cid = doomed.conversation_id.clone();
    let mut traces = vec![cid.clone(), doomed.objectid.clone()];
    for i in 0..5 {
        let h = format!("shred-{i}");
        let r = s.send(Method::POST, &rotate_path(&cid), &bob, &[("idempotency-key", h.as_bytes())], None).await;
        r.expect(201);
        traces.push(r.str("objectid"));
        s.rotate(&owner, &keep.conversation_id).await;
    }
    s.put_member(&owner, &cid, *DAVE, "member").await;
    traces.push(s.remove_member(&owner, &cid, *CAROL).await);
    traces.push(s.current_objectid(&owner, &cid).await);
    assert!(contains(&s.storage_files(), &cid), "the database does not hold {cid} before the delete");

    s.delete(&conversation_path(&cid), &owner).await.expect(204);
    // A later write, so the journal is in use again.
    s.rotate(&owner, &keep.conversation_id).await;

    let storage = s.storage_files();
    assert!(contains(&storage, &keep.conversation_id), "the kept conversation is not in {storage:?}");
    let left: Vec<String> =
        traces.iter().filter(|t| contains(&storage, t)).map(|t| format!("{t} is still in storage")).collect();
    assert!(left.is_empty(), "{}", left.join("\n"));
}

/// Nobody else on the machine reads the data directory: every file in it
/// (the database and its WAL included, created by SQLite) is 0600 and
/// every directory 0700, after start, writes and file uploads.
#[tokio::test]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    if !embedded_only("the_data_directory_is_private") {
        return;
    }
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    s.rotate(&owner, &c.conversation_id).await;
    let r =
        s.post(&files_path(&c.conversation_id), &owner, Some(&json!({"content_type": "text/plain", "size": 2}))).await;
    r.expect(201);
    let url = r.body["upload"]["url"].as_str().expect("an upload URL").to_owned();
    let up = reqwest::Client::new().put(url).header("content-type", "text/plain").body("hi").send().await;
    assert_eq!(up.expect("uploading").status().as_u16(), 200);
    let mut loose = Vec::new();
    let mut stack = vec![s.data_dir.clone()];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).expect("metadata").permissions().mode() & 0o777;
        if mode != 0o700 {
            loose.push(format!("{} is {mode:o}", dir.display()));
        }
        for entry in std::fs::read_dir(&dir).expect("listing").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mode = entry.metadata().expect("metadata").permissions().mode() & 0o777;
                if mode != 0o600 {
                    loose.push(format!("{} is {mode:o}", path.display()));
                }
            }
        }
    }
    assert!(loose.is_empty(), "readable by others:\n{}", loose.join("\n"));
}
