//! Properties of the AWS backend itself (DynamoDB + KMS in the local
//! emulator): wrapped keys are bound to their encryption context, every AWS
//! call site fails cleanly (503 + `Retry-After`, nothing half-written), and a
//! key fetch costs the round trips the design promises.
//!
//! These tests exist for the AWS backend only (KEYSRV_TEST_BACKEND=aws). On
//! the embedded backend each says so and checks that it is indeed running
//! there; with KEYSRV_TEST_BACKEND=aws and no emulator environment they fail.
//!
//! Faults are injected by a proxy between `keysrv server` and the emulator
//! (`keysrv_tests::fault_proxy`); state before and after is read from the
//! emulator directly, and through a second server that does not go through
//! the proxy.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keysrv_tests::aws::{self, Item, attr_b, attr_s};
use keysrv_tests::fault_proxy::{Fault, FaultProxy};
use keysrv_tests::reqwest::Method;
use keysrv_tests::serde_json::{Value, json};
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol", DAVE = "dave" }

const DYNAMODB: &str = "DynamoDB_20120810.";
const KMS: &str = "TrentService.";
const TRANSACT_WRITE: &str = "DynamoDB_20120810.TransactWriteItems";
const BATCH_GET: &str = "DynamoDB_20120810.BatchGetItem";
/// Every read a decision is made on: one serializable `TransactGetItems`.
const SNAPSHOT: &str = "DynamoDB_20120810.TransactGetItems";
const QUERY: &str = "DynamoDB_20120810.Query";
const UPDATE_ITEM: &str = "DynamoDB_20120810.UpdateItem";
const GET_ITEM: &str = "DynamoDB_20120810.GetItem";
const DELETE_ITEM: &str = "DynamoDB_20120810.DeleteItem";
const GENERATE_DATA_KEY: &str = "TrentService.GenerateDataKey";
const DECRYPT: &str = "TrentService.Decrypt";
const S3_DELETE_OBJECTS: &str = "S3.DeleteObjects";
const S3_PUT_OBJECT: &str = "S3.PutObject";

/// Transient faults: every call site must turn them into 503 + `Retry-After`.
const TRANSIENT: [Fault; 2] = [Fault::Throttling, Fault::Unavailable];

fn key_sk(objectid: &str) -> String {
    let (_, key_id) = objectid.split_once('.').expect("an objectid is <conversation>.<key>");
    format!("K#{key_id}")
}

/// The key item of `objectid`, read from the table.
fn key_item(objectid: &str) -> Item {
    let (cid, _) = objectid.split_once('.').expect("an objectid is <conversation>.<key>");
    let sk = key_sk(objectid);
    aws::emulator().conversation_items(cid).remove(&sk).unwrap_or_else(|| panic!("no item {sk} in C#{cid}"))
}

/// Says whether `raw` holds any of these keys (base64, as the API sends them).
fn holds_key(raw: &[u8], keys: &[&Vec<u8>]) -> bool {
    let text = String::from_utf8_lossy(raw);
    keys.iter().any(|k| text.contains(&STANDARD.encode(k)))
}

// ---------------------------------------------------------------------------
// a. Encryption context.

#[tokio::test]
async fn aws_wrapped_keys_do_not_unwrap_under_another_context() {
    if !aws_only("aws_wrapped_keys_do_not_unwrap_under_another_context") {
        return;
    }
    let emu = aws::emulator();
    let mut s = TestServer::start();
    let owner = s.token(*OWNER);
    let a = s.create_conversation(&owner, &[*BOB], "shared").await;
    let b = s.create_conversation(&owner, &[], "shared").await;
    // Rotate both, so the first keys are no longer the current ones (whose
    // wrapped copy the conversation item also holds).
    let a2 = s.rotate(&owner, &a.conversation_id).await;
    let b2 = s.rotate(&owner, &b.conversation_id).await;

    let a_item = key_item(&a.objectid);
    let b_item = key_item(&b.objectid);
    for (item, key) in [(&a_item, &a.key), (&b_item, &b.key)] {
        assert_eq!(attr_s(item, "scheme"), Some("kms"), "{item:?}");
        let wrapped = attr_b(item, "wrapped").expect("a key item has a wrapped blob");
        assert!(wrapped.len() > 32, "the wrapped blob is too short to be a KMS ciphertext");
        assert!(!wrapped.windows(key.len()).any(|w| w == key.as_slice()), "the wrapped blob holds the key in clear");
    }
    let a_wrapped = attr_b(&a_item, "wrapped").expect("wrapped");

    // (i) Under its own context, the blob is the key the API returned.
    let own = [("conversation_id", a.conversation_id.as_str()), ("objectid", a.objectid.as_str())];
    assert_eq!(emu.decrypt(&a_wrapped, &own), Ok(a.key.clone()), "KMS Decrypt under the key's own context");

    // (ii) Under any other context, and (iii) under none, KMS refuses.
    let others: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "the other conversation's context",
            vec![("conversation_id", b.conversation_id.as_str()), ("objectid", b.objectid.as_str())],
        ),
        (
            "another key of the same conversation",
            vec![("conversation_id", a.conversation_id.as_str()), ("objectid", a2.objectid.as_str())],
        ),
        (
            "the other conversation's id with the right objectid",
            vec![("conversation_id", b.conversation_id.as_str()), ("objectid", a.objectid.as_str())],
        ),
        ("the conversation id only", vec![("conversation_id", a.conversation_id.as_str())]),
        ("the objectid only", vec![("objectid", a.objectid.as_str())]),
        ("no context", vec![]),
    ];
    for (what, context) in &others {
        assert_eq!(
            emu.decrypt(&a_wrapped, context),
            Err("InvalidCiphertextException".to_owned()),
            "KMS Decrypt of {}'s wrapped key under {what}",
            a.objectid
        );
    }

    // Graft a's wrapped key onto b's first key item, as someone with write
    // access to the table could.
    let mut grafted = b_item.clone();
    grafted.insert("wrapped".into(), AttributeValue::B(Blob::new(a_wrapped.clone())));
    emu.put_item(grafted);
    let both = [&a.key, &b.key];

    // The server that issued b's key still holds it unwrapped in its cache
    // and may answer from there (with b's own key); never with a's.
    let warm = s.get(&key_path(&b.objectid), &owner).await;
    println!("grafted key, warm cache: {} {}", warm.status, warm.body["detail"]);
    assert!(!holds_key(&warm.raw, &[&a.key]), "released another conversation's key: {}", warm.status);
    assert!(
        warm.status == 500 || (warm.status == 200 && warm.key_bytes() == b.key),
        "grafted key, warm cache: {} {}",
        warm.status,
        String::from_utf8_lossy(&warm.raw)
    );

    // A fresh server must unwrap it under b's context: KMS refuses, and so
    // does the server, without naming a key.
    s.restart();
    let cold = s.get(&key_path(&b.objectid), &owner).await;
    println!("grafted key, cold cache: {} {}", cold.status, String::from_utf8_lossy(&cold.raw));
    assert!(!holds_key(&cold.raw, &both), "the response holds a key");
    cold.expect_problem(500);
    let batch = s.post(BATCH, &owner, Some(&json!({"objectids": [b.objectid, b2.objectid, a.objectid]}))).await;
    println!("batch with the grafted key: {} {}", batch.status, String::from_utf8_lossy(&batch.raw));
    assert!(!holds_key(&batch.raw, &both), "the batch response holds a grafted key");
    batch.expect_problem(500);

    // The same through the conversation item's copy of the current key.
    let mut meta = emu.conversation_items(&b.conversation_id).remove("M").expect("b's conversation item");
    let a2_wrapped = attr_b(&key_item(&a2.objectid), "wrapped").expect("wrapped");
    meta.insert("cur_wrapped".into(), AttributeValue::B(Blob::new(a2_wrapped)));
    emu.put_item(meta);
    s.restart();
    let current = s.get(&current_key_path(&b.conversation_id), &owner).await;
    println!("grafted current key, cold cache: {} {}", current.status, String::from_utf8_lossy(&current.raw));
    assert!(!holds_key(&current.raw, &[&a2.key, &b2.key]), "the response holds a key");
    current.expect_problem(500);

    // Untouched keys are still served.
    assert_eq!(s.key(&owner, &a.objectid).await, Some(a.key.clone()));
    assert_eq!(s.current_key(&owner, &a.conversation_id).await, a2);
}

// ---------------------------------------------------------------------------
// b. Fault injection.

/// A server whose AWS calls go through a fault proxy, and one that reaches
/// the emulator directly (for setting up and for looking at the state).
struct Rig {
    proxy: FaultProxy,
    s: TestServer,
    direct: TestServer,
}

impl Rig {
    fn start() -> Self {
        let proxy = FaultProxy::start(&aws::emulator().env.endpoint);
        let s = TestServer::start_with_env(&[("AWS_ENDPOINT_URL", &proxy.url)]);
        let direct = TestServer::start();
        Self { proxy, s, direct }
    }

    /// Runs `request` with `fault` set on `target`, then clears it. Returns
    /// the response and a complaint if the fault was never hit.
    async fn inject(&self, target: &str, fault: Fault, request: impl Future<Output = Resp>) -> (Resp, Vec<String>) {
        self.proxy.reset_counts();
        self.proxy.set(target, fault);
        let r = request.await;
        self.proxy.clear();
        let hits = self.proxy.faulted().get(target).copied().unwrap_or(0);
        let complaints = if hits == 0 { vec![format!("the request never called {target}")] } else { Vec::new() };
        (r, complaints)
    }

    /// Everything observable about a conversation: its partition, read from
    /// the emulator directly, and the owner's view through the direct server.
    async fn state(&self, token: &str, cid: &str) -> State {
        let items = aws::emulator().conversation_items(cid);
        let view = self.direct.get(&conversation_path(cid), token).await;
        State { items, view: (view.status, view.body) }
    }
}

#[derive(PartialEq)]
struct State {
    items: BTreeMap<String, Item>,
    view: (u16, Value),
}

/// What differs between two states, if anything.
fn state_diff(before: &State, after: &State) -> Option<String> {
    let sks: BTreeSet<&String> = before.items.keys().chain(after.items.keys()).collect();
    let mut changes: Vec<String> = sks
        .into_iter()
        .filter(|sk| before.items.get(*sk) != after.items.get(*sk))
        .map(|sk| match (before.items.get(sk), after.items.get(sk)) {
            (Some(_), Some(_)) => format!("item {sk} changed"),
            (Some(_), None) => format!("item {sk} deleted"),
            _ => format!("item {sk} added"),
        })
        .collect();
    if before.view != after.view {
        changes.push(format!(
            "the view changed: {} {} -> {} {}",
            before.view.0, before.view.1, after.view.0, after.view.1
        ));
    }
    (!changes.is_empty()).then(|| changes.join("; "))
}

/// What a faulted response must look like: a problem with `want`, and on
/// 503 a `Retry-After`.
fn response_complaints(r: &Resp, want: u16) -> Vec<String> {
    let mut out: Vec<String> = r.problem_complaint(want).into_iter().collect();
    if r.status == 503 && r.header("retry-after").is_none() {
        out.push("503 without Retry-After".into());
    }
    out
}

/// The results of one test's fault cases, printed as a table.
#[derive(Default)]
struct Matrix {
    rows: Vec<String>,
    failures: Vec<String>,
}

impl Matrix {
    fn record(&mut self, what: &str, target: &str, fault: Fault, r: &Resp, complaints: Vec<String>) {
        let retry_after = r.header("retry-after").map(|v| format!(" Retry-After: {v}")).unwrap_or_default();
        self.rows.push(format!(
            "{what:<28} {:<32} {:<20} -> {}{retry_after}{}",
            target.trim_start_matches(DYNAMODB).trim_start_matches(KMS),
            fault.label(),
            r.status,
            if complaints.is_empty() { "" } else { "  FAILED" }
        ));
        for c in complaints {
            self.failures.push(format!("{what}, {} on {target}: {c}", fault.label()));
        }
    }

    fn finish(self, title: &str) {
        println!("{title}\n{}", self.rows.join("\n"));
        assert!(self.failures.is_empty(), "{title}: fault cases failed:\n{}", self.failures.join("\n"));
    }
}

/// The conversation items owned by `jid` (pk), and its idempotency records.
fn owned_by(jid: &str) -> (BTreeSet<String>, BTreeMap<String, Item>) {
    let owned = aws::emulator()
        .scan(Some("pk, sk, #owner"))
        .iter()
        .filter(|i| attr_s(i, "sk") == Some("M") && attr_s(i, "owner") == Some(jid))
        .filter_map(|i| attr_s(i, "pk").map(str::to_owned))
        .collect();
    (owned, aws::emulator().partition(&format!("I#{jid}")))
}

#[tokio::test]
async fn aws_faults_create_conversation() {
    if !aws_only("aws_faults_create_conversation") {
        return;
    }
    let rig = Rig::start();
    let owner = rig.s.token(*OWNER);
    let body = keysrv_tests::serde_json::to_vec(&json!({"members": [*BOB, *CAROL]})).expect("json");
    let mut m = Matrix::default();
    let mut cases: Vec<(&str, Fault, u16, bool)> = Vec::new();
    for fault in TRANSIENT {
        cases.push((TRANSACT_WRITE, fault, 503, false));
        cases.push((TRANSACT_WRITE, fault, 503, true));
        cases.push((GENERATE_DATA_KEY, fault, 503, false));
        cases.push((GET_ITEM, fault, 503, true));
    }
    // A failed condition on creating is an id collision to the server
    // (`WriteOutcome::Stale` in `create_conversation`): an internal error.
    cases.push((TRANSACT_WRITE, Fault::ConditionalCheckFailed, 500, false));
    cases.push((TRANSACT_WRITE, Fault::ConditionalCheckFailed, 500, true));
    for (i, (target, fault, want, idempotent)) in cases.into_iter().enumerate() {
        let what = if idempotent { "create (Idempotency-Key)" } else { "create" };
        let key = format!("create-{i}");
        let headers: Vec<(&str, &[u8])> =
            if idempotent { vec![("idempotency-key", key.as_bytes())] } else { Vec::new() };
        let before = owned_by(*OWNER);
        let (r, mut complaints) = rig
            .inject(target, fault, rig.s.send(Method::POST, CONVERSATIONS, &owner, &headers, Some(body.clone())))
            .await;
        complaints.extend(response_complaints(&r, want));
        if owned_by(*OWNER) != before {
            complaints.push("a failed create left a conversation or an idempotency record behind".into());
        }
        // The failed attempt claimed nothing: the same request now creates one conversation.
        let again = rig.s.send(Method::POST, CONVERSATIONS, &owner, &headers, Some(body.clone())).await;
        if again.status != 201 {
            complaints.push(format!("the retry without the fault got {}", again.status));
        } else if owned_by(*OWNER).0.len() != before.0.len() + 1 {
            complaints.push("the retry did not create exactly one conversation".into());
        }
        m.record(what, target, fault, &r, complaints);
    }
    m.finish("create_conversation under faults");
}

#[tokio::test]
async fn aws_faults_rotate_key() {
    if !aws_only("aws_faults_rotate_key") {
        return;
    }
    let rig = Rig::start();
    let owner = rig.s.token(*OWNER);
    let c = rig.direct.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = c.conversation_id.clone();
    let mut m = Matrix::default();
    let mut cases: Vec<(&str, Fault, u16, bool)> = Vec::new();
    for fault in TRANSIENT {
        cases.push((SNAPSHOT, fault, 503, false));
        cases.push((TRANSACT_WRITE, fault, 503, false));
        cases.push((TRANSACT_WRITE, fault, 503, true));
        cases.push((GENERATE_DATA_KEY, fault, 503, false));
        cases.push((GET_ITEM, fault, 503, true));
    }
    // A failed condition is a lost race to the server: it re-reads and
    // retries (16 attempts), then gives up with 503 + Retry-After
    // (`contended()` in shared/src/domain/service.rs; docs/ARCHITECTURE.md,
    // "Data model").
    cases.push((TRANSACT_WRITE, Fault::ConditionalCheckFailed, 503, false));
    cases.push((TRANSACT_WRITE, Fault::ConditionalCheckFailed, 503, true));
    for (i, (target, fault, want, idempotent)) in cases.into_iter().enumerate() {
        let what = if idempotent { "rotate (Idempotency-Key)" } else { "rotate" };
        let key = format!("rotate-{i}");
        let headers: Vec<(&str, &[u8])> =
            if idempotent { vec![("idempotency-key", key.as_bytes())] } else { Vec::new() };
        let before = rig.state(&owner, &cid).await;
        let (r, mut complaints) =
            rig.inject(target, fault, rig.s.send(Method::POST, &rotate_path(&cid), &owner, &headers, None)).await;
        complaints.extend(response_complaints(&r, want));
        complaints.extend(state_diff(&before, &rig.state(&owner, &cid).await));
        let again = rig.s.send(Method::POST, &rotate_path(&cid), &owner, &headers, None).await;
        if again.status != 201 || rig.direct.current_objectid(&owner, &cid).await != again.str("objectid") {
            complaints.push(format!("the retry without the fault got {}", again.status));
        }
        m.record(what, target, fault, &r, complaints);
    }
    m.finish("rotate_key under faults");
}

#[tokio::test]
async fn aws_faults_key_reads() {
    if !aws_only("aws_faults_key_reads") {
        return;
    }
    let rig = Rig::start();
    let (owner, bob) = (rig.s.token(*OWNER), rig.s.token(*BOB));
    let c = rig.direct.create_conversation(&owner, &[*BOB], "shared").await;
    let cid = c.conversation_id.clone();
    let mut m = Matrix::default();
    for target in [SNAPSHOT, DECRYPT] {
        for fault in TRANSIENT {
            for route in ["get_key", "get_current_key", "batch_get_keys"] {
                // A key the faulty server never saw, so that its KMS key cache is cold.
                let k = rig.direct.rotate(&owner, &cid).await;
                let before = rig.state(&owner, &cid).await;
                let send = || async {
                    match route {
                        "get_key" => rig.s.get(&key_path(&k.objectid), &bob).await,
                        "get_current_key" => rig.s.get(&current_key_path(&cid), &bob).await,
                        _ => rig.s.post(BATCH, &bob, Some(&json!({"objectids": [k.objectid]}))).await,
                    }
                };
                let (r, mut complaints) = rig.inject(target, fault, send()).await;
                complaints.extend(response_complaints(&r, 503));
                if holds_key(&r.raw, &[&k.key]) {
                    complaints.push("a failed response holds the key".into());
                }
                complaints.extend(state_diff(&before, &rig.state(&owner, &cid).await));
                // Nothing bad was cached: the same request now answers with the key.
                let again = send().await;
                let key = match route {
                    "batch_get_keys" => again.body["keys"][0]["key"].as_str().map(decode_key),
                    _ => again.body["key"].as_str().map(decode_key),
                };
                if again.status != 200 || key.as_ref() != Some(&k.key) {
                    complaints.push(format!("the retry without the fault got {} without the key", again.status));
                }
                m.record(route, target, fault, &r, complaints);
            }
        }
    }
    m.finish("key reads under faults");
}

#[tokio::test]
async fn aws_faults_get_conversation() {
    if !aws_only("aws_faults_get_conversation") {
        return;
    }
    let rig = Rig::start();
    let owner = rig.s.token(*OWNER);
    let c = rig.direct.create_conversation(&owner, &[*BOB], "since_join").await;
    let mut m = Matrix::default();
    for fault in TRANSIENT {
        let before = rig.state(&owner, &c.conversation_id).await;
        let (r, mut complaints) =
            rig.inject(QUERY, fault, rig.s.get(&conversation_path(&c.conversation_id), &owner)).await;
        complaints.extend(response_complaints(&r, 503));
        complaints.extend(state_diff(&before, &rig.state(&owner, &c.conversation_id).await));
        let again = rig.s.get(&conversation_path(&c.conversation_id), &owner).await;
        if (again.status, &again.body) != (200, &before.view.1) {
            complaints.push(format!("the retry without the fault got {}", again.status));
        }
        m.record("get_conversation", QUERY, fault, &r, complaints);
    }
    m.finish("get_conversation under faults");
}

#[tokio::test]
async fn aws_faults_members() {
    if !aws_only("aws_faults_members") {
        return;
    }
    let rig = Rig::start();
    let owner = rig.s.token(*OWNER);
    let shared = rig.direct.create_conversation(&owner, &[*BOB, *CAROL], "shared").await;
    let since = rig.direct.create_conversation(&owner, &[*BOB, *CAROL], "since_join").await;
    let member = json!({"role": "member"});
    let mut m = Matrix::default();
    // (what, conversation, target, fault, want)
    let mut cases: Vec<(&str, &str, &str, Fault, u16)> = Vec::new();
    for fault in TRANSIENT {
        cases.push(("add member", &shared.conversation_id, SNAPSHOT, fault, 503));
        cases.push(("add member", &shared.conversation_id, TRANSACT_WRITE, fault, 503));
        cases.push(("add member (since_join)", &since.conversation_id, GENERATE_DATA_KEY, fault, 503));
        cases.push(("add member (since_join)", &since.conversation_id, TRANSACT_WRITE, fault, 503));
        cases.push(("remove member", &shared.conversation_id, GENERATE_DATA_KEY, fault, 503));
        cases.push(("remove member", &shared.conversation_id, SNAPSHOT, fault, 503));
        cases.push(("remove member", &shared.conversation_id, TRANSACT_WRITE, fault, 503));
    }
    // Lost races, retried and given up (see aws_faults_rotate_key).
    let conditional = Fault::ConditionalCheckFailed;
    cases.push(("add member", &shared.conversation_id, TRANSACT_WRITE, conditional, 503));
    cases.push(("add member (since_join)", &since.conversation_id, TRANSACT_WRITE, conditional, 503));
    cases.push(("remove member", &shared.conversation_id, TRANSACT_WRITE, conditional, 503));
    for (what, cid, target, fault, want) in cases {
        let adding = what.starts_with("add");
        // Add DAVE, or remove CAROL; undone afterwards for the next case.
        let request = || async {
            if adding {
                rig.s.put(&member_path(cid, *DAVE), &owner, Some(&member)).await
            } else {
                rig.s.delete(&member_path(cid, *CAROL), &owner).await
            }
        };
        let before = rig.state(&owner, cid).await;
        let (r, mut complaints) = rig.inject(target, fault, request()).await;
        complaints.extend(response_complaints(&r, want));
        complaints.extend(state_diff(&before, &rig.state(&owner, cid).await));
        let again = request().await;
        if again.status != 200 {
            complaints.push(format!("the retry without the fault got {}", again.status));
        }
        m.record(what, target, fault, &r, complaints);
        if adding {
            rig.direct.remove_member(&owner, cid, *DAVE).await;
        } else {
            rig.direct.put_member(&owner, cid, *CAROL, "member").await;
        }
    }
    m.finish("put_member / delete_member under faults");
}

/// Every key of a conversation is gone for every member, through every route.
async fn all_gone(s: &TestServer, tokens: &[&String], cid: &str, objectids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for t in tokens {
        for (what, r) in [
            ("get_conversation", s.get(&conversation_path(cid), t).await),
            ("get_current_key", s.get(&current_key_path(cid), t).await),
        ] {
            if r.status != 404 {
                out.push(format!("{what} -> {}", r.status));
            }
        }
        for oid in objectids {
            let r = s.get(&key_path(oid), t).await;
            if r.status != 404 {
                out.push(format!("get_key {oid} -> {}", r.status));
            }
        }
        let r = s.post(BATCH, t, Some(&json!({ "objectids": objectids }))).await;
        if r.status != 200 || r.body["keys"] != json!([]) {
            out.push(format!("batch_get_keys -> {} with keys {}", r.status, r.body["keys"]));
        }
    }
    out
}

#[tokio::test]
async fn aws_faults_delete_conversation() {
    if !aws_only("aws_faults_delete_conversation") {
        return;
    }
    let rig = Rig::start();
    let (owner, bob) = (rig.s.token(*OWNER), rig.s.token(*BOB));
    let mut m = Matrix::default();
    let mut shreds = Vec::new();
    // The crypto-shred: read the membership (TransactGetItems), mark the
    // conversation `deleting` and drop its current-key copy (UpdateItem), list
    // the partition (Query), delete members then keys (TransactWriteItems),
    // then the conversation item (DeleteItem).
    for target in [SNAPSHOT, UPDATE_ITEM, QUERY, TRANSACT_WRITE, DELETE_ITEM] {
        for fault in TRANSIENT {
            let c = rig.direct.create_conversation(&owner, &[*BOB], "shared").await;
            let cid = c.conversation_id.clone();
            let mut objectids = vec![c.objectid.clone()];
            for _ in 0..3 {
                objectids.push(rig.direct.rotate(&owner, &cid).await.objectid);
            }
            let before = rig.state(&owner, &cid).await;
            let (r, mut complaints) = rig.inject(target, fault, rig.s.delete(&conversation_path(&cid), &owner)).await;
            complaints.extend(response_complaints(&r, 503));
            let meta = aws::emulator().conversation_items(&cid).remove("M");
            let marked = meta.as_ref().is_some_and(|m| m.contains_key("deleting"));
            if matches!(target, SNAPSHOT | UPDATE_ITEM) {
                // Failed before anything was written: nothing changed.
                complaints.extend(state_diff(&before, &rig.state(&owner, &cid).await));
                for t in [&owner, &bob] {
                    for oid in &objectids {
                        if rig.direct.key(t, oid).await.is_none() {
                            complaints.push(format!("{oid} is gone after a delete that failed before writing"));
                        }
                    }
                }
            } else {
                // The conversation was marked first: whatever is left of it is
                // invisible to every member, through every route.
                if !marked {
                    complaints.push("the conversation item is not marked `deleting`".into());
                }
                if meta.as_ref().is_some_and(|m| m.contains_key("cur_wrapped")) {
                    complaints.push("the conversation item still holds the current key's wrapped copy".into());
                }
                complaints.extend(all_gone(&rig.s, &[&owner, &bob], &cid, &objectids).await);
                complaints.extend(all_gone(&rig.direct, &[&owner, &bob], &cid, &objectids).await);
                shreds.push((target, fault, cid.clone()));
            }
            m.record("delete_conversation", target, fault, &r, complaints);
        }
    }
    // What a failed crypto-shred leaves in the table (asserted to be
    // finishable in aws_a_failed_crypto_shred_can_be_finished).
    for (target, fault, cid) in shreds {
        let items = aws::emulator().conversation_items(&cid);
        let keys = items.keys().filter(|sk| sk.starts_with("K#")).count();
        println!(
            "after delete_conversation with {} on {target}: {} items left in C#{cid} ({keys} key items, \
             conversation item {})",
            fault.label(),
            items.len(),
            if items.contains_key("M") { "present, marked deleting" } else { "gone" }
        );
    }
    m.finish("delete_conversation under faults");
}

/// A crypto-shred that failed half-way (the conversation marked `deleting`,
/// its rows still there) must be finishable: the owner retries the DELETE,
/// and afterwards no row of the conversation is left (wrapped keys left in
/// the table are decryptable by anyone with table and KMS access). Nobody
/// else can finish it, or learn that it exists.
/// Registers a file through `s` and uploads `bytes` to its presigned URL
/// (straight to the emulator); returns the file id and the storage key.
async fn stored_file(s: &TestServer, token: &str, cid: &str, bytes: &[u8]) -> (String, String) {
    let r = s.post(&files_path(cid), token, Some(&json!({"content_type": "text/plain", "size": bytes.len()}))).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.raw));
    let url = r.body["upload"]["url"].as_str().expect("an upload URL");
    let mut put = keysrv_tests::reqwest::Client::new().put(url).body(bytes.to_vec());
    for (name, value) in r.body["upload"]["headers"].as_object().expect("upload headers") {
        put = put.header(name.as_str(), value.as_str().expect("a header value"));
    }
    let status = put.send().await.expect("the upload").status();
    assert!(status.is_success(), "upload: {status}");
    let storage_key = url.split('?').next().and_then(|p| p.rsplit('/').next()).expect("a storage key");
    (r.body["file_id"].as_str().expect("file_id").to_owned(), storage_key.to_owned())
}

/// Restarts the server (it sweeps unregistered bytes at start) and waits
/// (up to 10 s) for the bytes stored under `key` to be gone.
async fn swept(s: &mut TestServer, key: &str) -> bool {
    s.restart();
    for _ in 0..100 {
        if !s.file_stored(key) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn aws_faults_deleting_file_bytes() {
    if !aws_only("aws_faults_deleting_file_bytes") {
        return;
    }
    let mut rig = Rig::start();
    let owner = rig.s.token(*OWNER);
    let mut m = Matrix::default();
    // A file registered an hour ago has no live upload URL: its object is
    // deleted (DeleteObjects). A new one's key gets a tombstone (PutObject)
    // that its live upload URL cannot overwrite.
    for (target, age_secs) in [(S3_DELETE_OBJECTS, 3600), (S3_PUT_OBJECT, 0)] {
        for fault in [Fault::Throttling, Fault::Unavailable] {
            // DELETE /v1/files/{id}: the row goes first (so no upload is
            // accepted for it any more); a failure deleting the bytes is a
            // 503 after which nobody sees the file, and the bytes, which no
            // row names now, are removed by the sweep.
            let c = rig.direct.create_conversation(&owner, &[*BOB], "shared").await;
            let (fid, key) = stored_file(&rig.direct, &owner, &c.conversation_id, b"hello").await;
            aws::emulator().age_file(&fid, age_secs);
            let (r, mut complaints) = rig.inject(target, fault, rig.s.delete(&file_path(&fid), &owner)).await;
            complaints.extend(response_complaints(&r, 503));
            if rig.direct.get(&file_path(&fid), &owner).await.status != 404 {
                complaints.push("the file is still visible after its row was deleted".into());
            }
            let retry = rig.s.delete(&file_path(&fid), &owner).await;
            if retry.status != 404 {
                complaints.push(format!("the retry of a deletion whose row is gone: {}", retry.status));
            }
            if !swept(&mut rig.direct, &key).await {
                complaints.push("the sweep did not remove the bytes whose row is gone".into());
            }
            m.record("delete_file", target, fault, &r, complaints);

            // The crypto-shred: the conversation is invisible from the start;
            // the owner's retry deletes the bytes and the rows.
            let c = rig.direct.create_conversation(&owner, &[*BOB], "shared").await;
            let cid = c.conversation_id.clone();
            let (fid, key) = stored_file(&rig.direct, &owner, &cid, b"hello").await;
            aws::emulator().age_file(&fid, age_secs);
            let (r, mut complaints) = rig.inject(target, fault, rig.s.delete(&conversation_path(&cid), &owner)).await;
            complaints.extend(response_complaints(&r, 503));
            if rig.direct.get(&conversation_path(&cid), &owner).await.status != 404 {
                complaints.push("the conversation is still visible after a failed crypto-shred".into());
            }
            let retry = rig.s.delete(&conversation_path(&cid), &owner).await;
            let left = aws::emulator().conversation_items(&cid);
            if retry.status != 204 || rig.direct.file_stored(&key) || !left.is_empty() {
                complaints.push(format!(
                    "the owner's retry: {}, bytes stored: {}, items left: {:?}",
                    retry.status,
                    rig.direct.file_stored(&key),
                    left.keys().collect::<Vec<_>>()
                ));
            }
            m.record("delete_conversation", target, fault, &r, complaints);
        }
    }
    m.finish("S3 faults while deleting file bytes");
}

/// Revocation is read-isolated: a removal that DynamoDB interleaves with the
/// reads of a key release (the member item read before it, the conversation
/// item with its current key after it) must not hand the removed member the
/// key its own removal created. The proxy splits a `BatchGetItem` around the
/// removal, as DynamoDB may; a `TransactGetItems` it cannot split.
#[tokio::test]
async fn aws_a_removal_inside_a_key_read_releases_nothing_after_it() {
    if !aws_only("aws_a_removal_inside_a_key_read_releases_nothing_after_it") {
        return;
    }
    let rig = Rig::start();
    let (owner, bob) = (rig.s.token(*OWNER), rig.s.token(*BOB));
    let mut failures = Vec::new();
    for round in 0..3 {
        let c = rig.direct.create_conversation(&owner, &[*BOB], "shared").await;
        let cid = c.conversation_id.clone();
        let removal_key = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let (client, slot, owner_token, id) = (rig.direct.client(), removal_key.clone(), owner.clone(), cid.clone());
        rig.proxy.interleave(
            &format!("M#{}", *BOB),
            Box::new(move || {
                Box::pin(async move {
                    let new = client.remove_member(&owner_token, &id, *BOB).await;
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(new);
                })
            }),
        );
        let r = rig.s.get(&current_key_path(&cid), &bob).await;
        let created = removal_key.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(created) = created else {
            failures.push(format!("round {round}: the removal never ran inside the read"));
            continue;
        };
        println!("round {round}: read {:?}, answer {}", rig.proxy.interleaved(), r.status);
        match r.status {
            404 => {}
            200 if r.str("objectid") == c.objectid => {}
            200 => failures.push(format!(
                "round {round}: the removed member got {} (its removal created {created})",
                r.str("objectid")
            )),
            other => failures.push(format!("round {round}: {other} {}", r.body)),
        }
        // And afterwards, nothing at all.
        rig.s.get(&current_key_path(&cid), &bob).await.expect_problem(404);
        rig.s.get(&key_path(&created), &bob).await.expect_problem(404);
    }
    assert!(failures.is_empty(), "revocation is not read-isolated:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn aws_a_failed_crypto_shred_can_be_finished() {
    if !aws_only("aws_a_failed_crypto_shred_can_be_finished") {
        return;
    }
    let rig = Rig::start();
    let (owner, bob) = (rig.s.token(*OWNER), rig.s.token(*BOB));
    let unknown = rig.s.delete(&conversation_path(&unknown_conversation_id()), &owner).await;
    let mut failures = Vec::new();
    for target in [QUERY, TRANSACT_WRITE, DELETE_ITEM] {
        let c = rig.direct.create_conversation(&owner, &[*BOB], "shared").await;
        let cid = c.conversation_id.clone();
        rig.direct.rotate(&owner, &cid).await;
        let (r, _) = rig.inject(target, Fault::Unavailable, rig.s.delete(&conversation_path(&cid), &owner)).await;
        r.expect_problem(503);
        let left_before = aws::emulator().conversation_items(&cid);
        // A member who is not the owner: the same 404 as for an unknown conversation, and no effect.
        let by_member = rig.s.delete(&conversation_path(&cid), &bob).await;
        if (by_member.status, &by_member.raw) != (unknown.status, &unknown.raw) {
            failures.push(format!("a member's DELETE of the half-deleted {cid}: {}", by_member.status));
        }
        if aws::emulator().conversation_items(&cid) != left_before {
            failures.push(format!("a member's DELETE changed the half-deleted {cid}"));
        }
        let retry = rig.s.delete(&conversation_path(&cid), &owner).await;
        let left = aws::emulator().conversation_items(&cid);
        println!(
            "delete failed on {target} ({} items left); the owner's retried DELETE -> {}; items left: {:?}",
            left_before.len(),
            retry.status,
            left.keys().collect::<Vec<_>>()
        );
        if !left.is_empty() || !matches!(retry.status, 204 | 404) {
            failures.push(format!(
                "DELETE {} failed on {target} (503), retried: {} and {} items left ({:?})",
                conversation_path(&cid),
                retry.status,
                left.len(),
                left.keys().collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "a failed crypto-shred cannot be finished:\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// c. Round trips.

#[tokio::test]
async fn aws_round_trips_per_key_fetch() {
    if !aws_only("aws_round_trips_per_key_fetch") {
        return;
    }
    let rig = Rig::start();
    let owner = rig.s.token(*OWNER);
    // Set up through the direct server: the counted server's key cache is cold.
    let c = rig.direct.create_conversation(&owner, &[*BOB], "shared").await;
    let mut keys = vec![Key { objectid: c.objectid.clone(), key: c.key.clone() }];
    for _ in 0..99 {
        keys.push(rig.direct.rotate(&owner, &c.conversation_id).await);
    }
    let p = &rig.proxy;
    let count = |what: &str| {
        let (ddb, kms) = (p.calls_with_prefix(DYNAMODB), p.calls_with_prefix(KMS));
        println!("{what}: {ddb} DynamoDB ({:?}), {kms} KMS", p.calls());
        let n = |t: &str| p.calls().get(t).copied().unwrap_or(0);
        (ddb, kms, n(SNAPSHOT), n(BATCH_GET), n(DECRYPT))
    };

    p.reset_counts();
    assert_eq!(rig.s.key(&owner, &keys[0].objectid).await.as_ref(), Some(&keys[0].key));
    let (ddb, kms, snapshots, _, decrypts) = count("GET /v1/keys/{objectid}, cold");
    assert_eq!((ddb, snapshots, kms, decrypts), (1, 1, 1, 1), "cold fetch: 1 TransactGetItems + 1 Decrypt");

    p.reset_counts();
    assert_eq!(rig.s.key(&owner, &keys[0].objectid).await.as_ref(), Some(&keys[0].key));
    let (ddb, kms, snapshots, _, _) = count("GET /v1/keys/{objectid}, warm");
    assert_eq!((ddb, snapshots, kms), (1, 1, 0), "warm fetch: 1 TransactGetItems, no KMS call");

    p.reset_counts();
    assert_eq!(rig.s.current_key(&owner, &c.conversation_id).await, keys[99]);
    let (ddb, _, snapshots, _, _) = count("GET .../keys/current, cold");
    assert_eq!((ddb, snapshots), (1, 1), "current key: 1 TransactGetItems");

    let ids: Vec<&str> = keys.iter().map(|k| k.objectid.as_str()).collect();
    for pass in ["cold for 98 of 100", "warm"] {
        p.reset_counts();
        let (mut got, missing) = rig.s.batch(&owner, &ids).await;
        got.sort();
        let mut want = keys.clone();
        want.sort();
        assert_eq!((got, missing), (want, Vec::new()), "the batch releases all 100 keys");
        let (ddb, kms, snapshots, batch_gets, decrypts) = count(&format!("POST /v1/keys/batch, 100 keys, {pass}"));
        assert_eq!(
            (ddb, snapshots, batch_gets),
            (2, 1, 1),
            "100 keys (+ membership + conversation): a snapshot of membership and conversation, the keys alongside"
        );
        if pass == "warm" {
            assert_eq!(kms, 0, "a warm batch calls no KMS");
        } else {
            assert_eq!(decrypts, 98, "a cold batch decrypts each key not cached yet once");
        }
    }

    // 98 keys + membership + conversation: one snapshot of 100 items.
    p.reset_counts();
    let (got, _) = rig.s.batch(&owner, &keys[..98].iter().map(|k| k.objectid.as_str()).collect::<Vec<_>>()).await;
    assert_eq!(got.len(), 98);
    let (ddb, _, snapshots, batch_gets, _) = count("POST /v1/keys/batch, 98 keys");
    assert_eq!((ddb, snapshots, batch_gets), (1, 1, 0), "98 keys of one conversation: 1 TransactGetItems");
}
