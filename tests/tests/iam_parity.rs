//! IAM parity: every AWS action a route's function performs is granted to
//! that function by template.yaml. The emulator does not enforce IAM, so
//! without this test a missing grant shows up only once deployed.
//!
//! The template is read with a small line reader (no YAML crate): for each
//! `AWS::Serverless::Function`, its `Binary:`, `Method:`, `Path:` and the
//! `dynamodb:*`, `kms:*`, `secretsmanager:*` actions of its `Policies`, with
//! the statements under `!If [UseKms, …]` kept and those under
//! `!If [UseSecretsManager, …]` dropped (the emulator runs in kms mode).
//!
//! Each route is then driven, one request at a time, through a server whose
//! AWS calls go through `FaultProxy`; the operations the proxy sees while a
//! request is in flight are that route's. `TransactWriteItems` is authorized
//! per item (Put → PutItem, Update → UpdateItem, Delete → DeleteItem,
//! ConditionCheck → ConditionCheckItem). The Lambda-init warm-up
//! (`DynamoStore::warm_up`: one BatchGetItem of `C#warm-up`) is not run by
//! the local server, so it is added to every function as "used at init".
//!
//! AWS backend only (KEYSRV_TEST_BACKEND=aws, emulator in kms mode).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use keysrv_tests::aws;
use keysrv_tests::fault_proxy::FaultProxy;
use keysrv_tests::reqwest::Method;
use keysrv_tests::serde_json::{Value, json};
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol", DAVE = "dave", EVE = "eve" }

/// The partition key `DynamoStore::warm_up` reads at Lambda init.
const WARM_UP_PK: &str = "C#warm-up";

// ---------------------------------------------------------------------------
// The template.

/// What a function's policies grant: per IAM action, `None` if on any key,
/// or the partition keys a `dynamodb:LeadingKeys` condition allows.
type Grants = BTreeMap<String, Option<BTreeSet<String>>>;

#[derive(Debug, Default)]
struct Function {
    resource: String,
    binary: String,
    method: String,
    path: String,
    grants: Grants,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_action(s: &str) -> bool {
    ["dynamodb:", "kms:", "secretsmanager:"].iter().any(|p| s.starts_with(p))
}

/// The functions of template.yaml, as the kms wrapping mode deploys them.
fn parse_template(text: &str) -> Vec<Function> {
    let mut out: Vec<Function> = Vec::new();
    let mut in_resources = false;
    let mut cur: Option<Function> = None;
    let mut is_function = false;
    // The `!If` blocks we are inside: (indent of the `- !If` line, condition).
    let mut ifs: Vec<(usize, String)> = Vec::new();
    let mut pending_if: Option<usize> = None;
    // The current statement's actions and leading-keys restriction.
    let mut stmt: Vec<String> = Vec::new();
    let mut stmt_keys: Option<BTreeSet<String>> = None;
    let mut in_action_list = false;

    let flush_stmt = |f: &mut Option<Function>, stmt: &mut Vec<String>, keys: &mut Option<BTreeSet<String>>| {
        if let Some(f) = f.as_mut() {
            for a in stmt.drain(..) {
                let entry = f.grants.entry(a).or_insert_with(|| keys.clone());
                match (entry.as_mut(), keys.as_ref()) {
                    (None, _) => {}
                    (Some(_), None) => *entry = None,
                    (Some(have), Some(more)) => have.extend(more.iter().cloned()),
                }
            }
        }
        stmt.clear();
        *keys = None;
    };

    for raw in text.lines() {
        let line = raw.trim_end();
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ind = indent(line);
        if ind == 0 {
            in_resources = t == "Resources:";
            continue;
        }
        if !in_resources {
            continue;
        }
        if ind == 2 && t.ends_with(':') {
            flush_stmt(&mut cur, &mut stmt, &mut stmt_keys);
            if let Some(f) = cur.take().filter(|_| is_function) {
                out.push(f);
            }
            cur = Some(Function { resource: t.trim_end_matches(':').to_owned(), ..Function::default() });
            is_function = false;
            ifs.clear();
            pending_if = None;
            in_action_list = false;
            continue;
        }
        let Some(f) = cur.as_mut() else { continue };
        // Leave the `!If` blocks this line is not inside.
        while ifs.last().is_some_and(|(i, _)| ind <= *i) {
            ifs.pop();
        }
        if let Some(i) = pending_if.take() {
            let cond = t.trim_start_matches("- ").trim().to_owned();
            ifs.push((i, cond));
            continue;
        }
        if t == "- !If" {
            flush_stmt(&mut cur, &mut stmt, &mut stmt_keys);
            pending_if = Some(ind);
            continue;
        }
        if let Some(v) = t.strip_prefix("Type:") {
            is_function |= v.trim() == "AWS::Serverless::Function";
            continue;
        }
        if let Some(v) = t.strip_prefix("Binary:") {
            f.binary = v.trim().to_owned();
            continue;
        }
        if let Some(v) = t.strip_prefix("Method:") {
            f.method = v.trim().to_owned();
            continue;
        }
        if let Some(v) = t.strip_prefix("Path:") {
            f.path = v.trim().to_owned();
            continue;
        }
        // In an `!If`'s "else" branch (`!Ref AWS::NoValue`), nothing is granted.
        let active = ifs.iter().all(|(_, c)| c != "UseSecretsManager");
        if t.starts_with("- Effect:") {
            flush_stmt(&mut cur, &mut stmt, &mut stmt_keys);
            in_action_list = false;
            continue;
        }
        if t == "Action:" {
            in_action_list = true;
            continue;
        }
        if let Some(v) = t.strip_prefix("Action:") {
            let v = v.trim();
            if active && is_action(v) {
                stmt.push(v.to_owned());
            }
            in_action_list = false;
            continue;
        }
        if in_action_list {
            if let Some(v) = t.strip_prefix("- ").map(str::trim).filter(|v| is_action(v)) {
                if active {
                    stmt.push(v.to_owned());
                }
                continue;
            }
            in_action_list = false;
        }
        if let Some(v) = t.strip_prefix("dynamodb:LeadingKeys:") {
            let keys = v
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|k| k.trim().trim_matches('"').trim_matches('\'').to_owned())
                .filter(|k| !k.is_empty())
                .collect();
            stmt_keys = Some(keys);
        }
    }
    flush_stmt(&mut cur, &mut stmt, &mut stmt_keys);
    if let Some(f) = cur.take().filter(|_| is_function) {
        out.push(f);
    }
    out
}

// ---------------------------------------------------------------------------
// AWS operations → IAM actions.

/// One authorized action: the IAM action and, for reads whose partition keys
/// the test can see (BatchGetItem), those keys (`None`: not known).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    action: String,
    leading_keys: Option<BTreeSet<String>>,
}

fn batch_get_pks(body: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(tables) = body["RequestItems"].as_object() {
        for t in tables.values() {
            for k in t["Keys"].as_array().into_iter().flatten() {
                if let Some(pk) = k["pk"]["S"].as_str() {
                    out.insert(pk.to_owned());
                }
            }
        }
    }
    out
}

/// The IAM actions a proxied request needs.
fn actions_of(target: &str, body: &[u8]) -> Vec<Use> {
    let json: Value = keysrv_tests::serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
        if op == "TransactWriteItems" {
            let items = json["TransactItems"].as_array().cloned().unwrap_or_default();
            assert!(!items.is_empty(), "a TransactWriteItems without TransactItems: {json}");
            return items
                .iter()
                .map(|item| {
                    let kind = ["Put", "Update", "Delete", "ConditionCheck"]
                        .into_iter()
                        .find(|k| item.get(*k).is_some())
                        .unwrap_or_else(|| panic!("a transact item of no known kind: {item}"));
                    let action = match kind {
                        "ConditionCheck" => "dynamodb:ConditionCheckItem".to_owned(),
                        k => format!("dynamodb:{k}Item"),
                    };
                    Use { action, leading_keys: None }
                })
                .collect();
        }
        let leading_keys = (op == "BatchGetItem").then(|| batch_get_pks(&json));
        return vec![Use { action: format!("dynamodb:{op}"), leading_keys }];
    }
    if let Some(op) = target.strip_prefix("TrentService.") {
        return vec![Use { action: format!("kms:{op}"), leading_keys: None }];
    }
    if let Some(op) = target.strip_prefix("secretsmanager.") {
        return vec![Use { action: format!("secretsmanager:{op}"), leading_keys: None }];
    }
    panic!("an AWS request with an unknown X-Amz-Target {target:?}");
}

/// Whether `grants` allow `u`; `None` if so, else why not.
fn denied(grants: &Grants, u: &Use) -> Option<String> {
    match grants.get(&u.action) {
        None => Some("not granted".to_owned()),
        Some(None) => None,
        Some(Some(allowed)) => match &u.leading_keys {
            Some(keys) if keys.is_subset(allowed) => None,
            Some(keys) => Some(format!(
                "granted only for dynamodb:LeadingKeys {allowed:?}, used on {:?}",
                keys.difference(allowed).collect::<Vec<_>>()
            )),
            None => Some(format!("granted only for dynamodb:LeadingKeys {allowed:?}, keys used not known")),
        },
    }
}

// ---------------------------------------------------------------------------
// Driving the routes.

struct Recorder {
    proxy: FaultProxy,
    s: TestServer,
    /// Per function (binary): each action used, with the requests that used it.
    used: BTreeMap<String, BTreeMap<Use, BTreeSet<String>>>,
}

impl Recorder {
    /// Waits until the proxy has seen no new request for a moment, so that
    /// nothing a request set off lands in the next one's phase.
    async fn settle(&self) {
        let mut seen = self.proxy.requests().len();
        loop {
            tokio::time::sleep(Duration::from_millis(40)).await;
            let now = self.proxy.requests().len();
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Runs one request of `route`'s function and records the AWS actions
    /// it took. `ok` says whether a 2xx is expected (else a 4xx).
    async fn run(&mut self, route: &str, what: &str, ok: bool, request: impl Future<Output = Resp>) -> Resp {
        self.settle().await;
        self.proxy.reset_counts();
        let r = request.await;
        self.settle().await;
        let requests = self.proxy.requests();
        let describe = format!("{} -> {} {}", r.request, r.status, String::from_utf8_lossy(&r.raw));
        if ok {
            assert!((200..300).contains(&r.status), "{route}: {what}: want 2xx: {}", describe);
        } else {
            assert!((400..500).contains(&r.status), "{route}: {what}: want 4xx: {}", describe);
        }
        let ops: Vec<&str> = requests.iter().map(|(t, _)| t.as_str()).collect();
        println!("{route:<20} {what:<58} {} {ops:?}", r.status);
        let entry = self.used.entry(route.to_owned()).or_default();
        for (target, body) in &requests {
            for u in actions_of(target, body) {
                entry.entry(u).or_default().insert(format!("{what} ({})", r.request));
            }
        }
        r
    }
}

fn idem(key: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![("idempotency-key", key.as_bytes().to_vec())]
}

async fn send(c: &Client, method: Method, path: &str, token: &str, key: Option<&str>, body: Option<Value>) -> Resp {
    let headers = key.map(idem).unwrap_or_default();
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let body = body.map(|b| keysrv_tests::serde_json::to_vec(&b).expect("JSON"));
    c.send(method, path, token, &headers, body).await
}

#[tokio::test]
async fn iam_policies_grant_every_action_each_route_uses() {
    if !aws_only("iam_policies_grant_every_action_each_route_uses") {
        return;
    }
    let template_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&template_path).expect("reading template.yaml");
    let functions = parse_template(&text);
    assert!(functions.len() >= 9, "found only {} functions in template.yaml: {functions:#?}", functions.len());
    for f in &functions {
        assert!(!f.binary.is_empty(), "{}: no Binary:", f.resource);
        assert!(!f.grants.is_empty(), "{}: no actions parsed from its Policies", f.resource);
        println!("template: {} {} {} ({}) grants {:?}", f.binary, f.method, f.path, f.resource, f.grants);
    }

    let proxy = FaultProxy::start(&aws::emulator().env.endpoint);
    let s = TestServer::start_with_env(&[("AWS_ENDPOINT_URL", &proxy.url)]);
    let mut rec = Recorder { proxy, s, used: BTreeMap::new() };
    let owner = rec.s.token(*OWNER);
    let bob = rec.s.token(*BOB);
    let carol = rec.s.token(*CAROL);
    let unknown_cid = unknown_conversation_id();
    let nonce = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());

    // --- create_conversation
    const CREATE: &str = "create_conversation";
    let c = rec.s.client();
    let r = rec
        .run(
            CREATE,
            "plain create (shared history)",
            true,
            c.post(CONVERSATIONS, &owner, Some(&json!({"members": [*BOB], "history": "shared"}))),
        )
        .await;
    let shared_cid = r.str("conversation_id");
    let first_objectid = r.body["key"]["objectid"].as_str().expect("key.objectid").to_owned();
    let r = rec
        .run(
            CREATE,
            "create since_join",
            true,
            c.post(CONVERSATIONS, &owner, Some(&json!({"members": [*BOB], "history": "since_join"}))),
        )
        .await;
    let sj_cid = r.str("conversation_id");
    let create_key = format!("iam-create-{nonce}");
    let body = json!({"members": [*BOB, *CAROL], "history": "shared"});
    let r = rec
        .run(
            CREATE,
            "create with Idempotency-Key",
            true,
            send(&c, Method::POST, CONVERSATIONS, &owner, Some(&create_key), Some(body.clone())),
        )
        .await;
    let doomed_cid = r.str("conversation_id");
    let r2 = rec
        .run(
            CREATE,
            "replay of that Idempotency-Key",
            true,
            send(&c, Method::POST, CONVERSATIONS, &owner, Some(&create_key), Some(body)),
        )
        .await;
    assert_eq!(r2.str("conversation_id"), doomed_cid, "the replay returned another conversation");
    rec.run(
        CREATE,
        "same Idempotency-Key, another body",
        false,
        send(
            &c,
            Method::POST,
            CONVERSATIONS,
            &owner,
            Some(&create_key),
            Some(json!({"members": [], "history": "shared"})),
        ),
    )
    .await;
    rec.run(CREATE, "invalid body", false, c.post(CONVERSATIONS, &owner, Some(&json!({"members": "nobody"})))).await;

    // --- get_conversation
    const GET_CONV: &str = "get_conversation";
    rec.run(GET_CONV, "member reads it", true, c.get(&conversation_path(&shared_cid), &bob)).await;
    rec.run(GET_CONV, "non-member reads it", false, c.get(&conversation_path(&shared_cid), &carol)).await;
    rec.run(GET_CONV, "unknown conversation", false, c.get(&conversation_path(&unknown_cid), &owner)).await;

    // --- rotate_key
    const ROTATE: &str = "rotate_key";
    rec.run(ROTATE, "plain rotate", true, c.post(&rotate_path(&shared_cid), &owner, None)).await;
    let rotate_key = format!("iam-rotate-{nonce}");
    let r = rec
        .run(
            ROTATE,
            "rotate with Idempotency-Key",
            true,
            send(&c, Method::POST, &rotate_path(&shared_cid), &owner, Some(&rotate_key), None),
        )
        .await;
    let rotated = r.str("objectid");
    let r2 = rec
        .run(
            ROTATE,
            "replay of that Idempotency-Key",
            true,
            send(&c, Method::POST, &rotate_path(&shared_cid), &owner, Some(&rotate_key), None),
        )
        .await;
    assert_eq!(r2.str("objectid"), rotated, "the replay rotated again");
    rec.run(ROTATE, "non-member rotates", false, c.post(&rotate_path(&shared_cid), &carol, None)).await;
    rec.run(ROTATE, "unknown conversation", false, c.post(&rotate_path(&unknown_cid), &owner, None)).await;

    // --- put_member
    const PUT_MEMBER: &str = "put_member";
    let member = json!({"role": "member"});
    let admin = json!({"role": "admin"});
    rec.run(
        PUT_MEMBER,
        "add to a since_join conversation (rotates)",
        true,
        c.put(&member_path(&sj_cid, *DAVE), &owner, Some(&member)),
    )
    .await;
    rec.run(PUT_MEMBER, "change a role", true, c.put(&member_path(&sj_cid, *DAVE), &owner, Some(&admin))).await;
    rec.run(PUT_MEMBER, "same role again (no-op)", true, c.put(&member_path(&sj_cid, *DAVE), &owner, Some(&admin)))
        .await;
    rec.run(
        PUT_MEMBER,
        "add to a shared conversation",
        true,
        c.put(&member_path(&shared_cid, *DAVE), &owner, Some(&member)),
    )
    .await;
    rec.run(
        PUT_MEMBER,
        "plain member adds someone",
        false,
        c.put(&member_path(&shared_cid, *EVE), &bob, Some(&member)),
    )
    .await;
    rec.run(PUT_MEMBER, "unknown conversation", false, c.put(&member_path(&unknown_cid, *EVE), &owner, Some(&member)))
        .await;

    // --- delete_member
    const DELETE_MEMBER: &str = "delete_member";
    rec.run(DELETE_MEMBER, "owner removes a member (rotates)", true, c.delete(&member_path(&sj_cid, *DAVE), &owner))
        .await;
    rec.run(DELETE_MEMBER, "a member leaves", true, c.delete(&member_path(&shared_cid, *DAVE), &rec.s.token(*DAVE)))
        .await;
    rec.run(DELETE_MEMBER, "remove a non-member", false, c.delete(&member_path(&shared_cid, *EVE), &owner)).await;
    rec.run(DELETE_MEMBER, "plain member removes another", false, c.delete(&member_path(&sj_cid, *OWNER), &bob)).await;
    rec.run(DELETE_MEMBER, "unknown conversation", false, c.delete(&member_path(&unknown_cid, *BOB), &owner)).await;

    // --- the key reads, on a cold cache: a fresh server process.
    rec.s.restart();
    let c = rec.s.client();
    // Idempotent replays on a cold server: the stored result's key must be
    // unwrapped again.
    let body = json!({"members": [*BOB, *CAROL], "history": "shared"});
    rec.run(
        CREATE,
        "replay on a cold server",
        true,
        send(&c, Method::POST, CONVERSATIONS, &owner, Some(&create_key), Some(body)),
    )
    .await;
    rec.run(
        ROTATE,
        "replay on a cold server",
        true,
        send(&c, Method::POST, &rotate_path(&shared_cid), &owner, Some(&rotate_key), None),
    )
    .await;
    rec.s.restart();
    let c = rec.s.client();
    const GET_KEY: &str = "get_key";
    rec.run(GET_KEY, "cold key fetch (KMS Decrypt)", true, c.get(&key_path(&first_objectid), &bob)).await;
    rec.run(GET_KEY, "warm key fetch", true, c.get(&key_path(&first_objectid), &bob)).await;
    rec.run(GET_KEY, "non-member fetches it", false, c.get(&key_path(&first_objectid), &carol)).await;
    rec.run(
        GET_KEY,
        "unknown key of a known conversation",
        false,
        c.get(&key_path(&unknown_objectid_in(&shared_cid)), &bob),
    )
    .await;
    rec.run(GET_KEY, "unknown conversation", false, c.get(&key_path(&unknown_objectid()), &bob)).await;

    const CURRENT: &str = "get_current_key";
    rec.run(CURRENT, "cold current key (KMS Decrypt)", true, c.get(&current_key_path(&sj_cid), &bob)).await;
    rec.run(CURRENT, "non-member", false, c.get(&current_key_path(&sj_cid), &carol)).await;
    rec.run(CURRENT, "unknown conversation", false, c.get(&current_key_path(&unknown_cid), &bob)).await;

    rec.s.restart();
    let c = rec.s.client();
    const BATCH_KEYS: &str = "batch_get_keys";
    let objectids =
        json!({"objectids": [first_objectid, rotated, unknown_objectid_in(&shared_cid), unknown_objectid()]});
    rec.run(BATCH_KEYS, "cold batch: known, unknown, other conversation", true, c.post(BATCH, &bob, Some(&objectids)))
        .await;
    rec.run(
        BATCH_KEYS,
        "non-member's batch",
        true,
        c.post(BATCH, &carol, Some(&json!({"objectids": [first_objectid]}))),
    )
    .await;
    rec.run(BATCH_KEYS, "invalid body", false, c.post(BATCH, &bob, Some(&json!({"objectids": "x"})))).await;

    // --- delete_conversation
    const DELETE_CONV: &str = "delete_conversation";
    rec.run(DELETE_CONV, "a member who is not the owner", false, c.delete(&conversation_path(&doomed_cid), &bob)).await;
    rec.run(DELETE_CONV, "the owner deletes it", true, c.delete(&conversation_path(&doomed_cid), &owner)).await;
    rec.run(DELETE_CONV, "delete it again", false, c.delete(&conversation_path(&doomed_cid), &owner)).await;
    rec.run(DELETE_CONV, "unknown conversation", false, c.delete(&conversation_path(&unknown_cid), &owner)).await;

    // --- the check.
    let init =
        Use { action: "dynamodb:BatchGetItem".into(), leading_keys: Some(BTreeSet::from([WARM_UP_PK.to_owned()])) };
    let mut gaps = Vec::new();
    println!("\nfunction             used (incl. init warm-up)                      | granted but never used");
    for f in &functions {
        let Some(used) = rec.used.get_mut(&f.binary) else {
            gaps.push(format!("{}: no requests of this route were driven (add it to the test)", f.binary));
            continue;
        };
        used.entry(init.clone()).or_default().insert("Lambda init: DynamoStore::warm_up".into());
        let used_actions: BTreeSet<&str> = used.keys().map(|u| u.action.as_str()).collect();
        let unused: Vec<&String> = f.grants.keys().filter(|a| !used_actions.contains(a.as_str())).collect();
        println!("{:<20} {:<46} | {unused:?}", f.binary, format!("{used_actions:?}"));
        for (u, whence) in used.iter() {
            if let Some(why) = denied(&f.grants, u) {
                gaps.push(format!(
                    "{} ({}): {} {why} (keys {:?}); needed by: {}",
                    f.binary,
                    f.resource,
                    u.action,
                    u.leading_keys,
                    whence.iter().cloned().collect::<Vec<_>>().join("; ")
                ));
            }
        }
    }
    for route in rec.used.keys() {
        assert!(
            functions.iter().any(|f| &f.binary == route),
            "the test drove {route}, which template.yaml does not have"
        );
    }
    assert!(gaps.is_empty(), "template.yaml does not grant what the functions use:\n  {}", gaps.join("\n  "));
}

/// The line reader itself (any backend): `!If` branches, single and listed
/// actions, and `dynamodb:LeadingKeys` restrictions.
#[test]
fn template_reader_keeps_kms_branches_and_leading_keys() {
    let text = r#"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  FooFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: foo
    Properties:
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action:
                - dynamodb:Query
              Resource: !GetAtt Table.Arn
            - Effect: Allow
              Action:
                - dynamodb:BatchGetItem
              Condition:
                ForAllValues:StringEquals:
                  dynamodb:LeadingKeys: ["C#warm-up"]
            - !If
              - UseKms
              - Effect: Allow
                Action:
                  - kms:Decrypt
              - !Ref AWS::NoValue
            - !If
              - UseSecretsManager
              - Effect: Allow
                Action: secretsmanager:GetSecretValue
              - !Ref AWS::NoValue
"#;
    let fs = parse_template(text);
    assert_eq!(fs.len(), 1, "{fs:#?}");
    let warm = BTreeSet::from([WARM_UP_PK.to_owned()]);
    let want: Grants = BTreeMap::from([
        ("dynamodb:Query".to_owned(), None),
        ("dynamodb:BatchGetItem".to_owned(), Some(warm.clone())),
        ("kms:Decrypt".to_owned(), None),
    ]);
    assert_eq!(fs[0].binary, "foo");
    assert_eq!(fs[0].grants, want);
    let other = Use { action: "dynamodb:BatchGetItem".into(), leading_keys: Some(BTreeSet::from(["C#x".to_owned()])) };
    assert!(denied(&want, &other).is_some());
    assert!(denied(&want, &Use { action: "dynamodb:BatchGetItem".into(), leading_keys: Some(warm) }).is_none());
    assert!(denied(&want, &Use { action: "dynamodb:PutItem".into(), leading_keys: None }).is_some());
}
