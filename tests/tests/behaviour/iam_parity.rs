//! IAM parity: every AWS action a route's function performs is granted to
//! that function by template.yaml. The emulator does not enforce IAM, so
//! without this test a missing grant shows up only once deployed.
//!
//! The template is parsed (`keysrv_tests::template`): for each
//! `AWS::Serverless::Function`, its route, method, path and the
//! `dynamodb:*`, `kms:*`, `secretsmanager:*`, `s3:*` actions of its
//! `Policies`, with the statements under `!If [UseKms, …]` kept and those
//! under `!If [UseSecretsManager, …]` dropped (the emulator runs in kms mode).
//! Of each statement's `Condition` the test keeps what it can check:
//! `dynamodb:LeadingKeys`, `kms:ViaService` and the encryption-context keys
//! (`kms:EncryptionContextKeys`, `kms:EncryptionContext:<key>`); a KMS use
//! must match one statement's conditions, so the keysrv-context grants do
//! not count for the KMS calls S3 makes (context `aws:s3:arn`), nor the
//! S3-only grants for keysrv's own calls.
//!
//! Each route is then driven, one request at a time, through a server whose
//! AWS calls go through `FaultProxy`; the operations the proxy sees while a
//! request is in flight are that route's. `TransactWriteItems` is authorized
//! per item (Put → PutItem, Update → UpdateItem, Delete → DeleteItem,
//! ConditionCheck → ConditionCheckItem); S3's `DeleteObjects` per key
//! (s3:DeleteObject). The file routes hand out presigned S3 URLs, signed with
//! the function's credentials: whoever uses one acts as the function, so the
//! test uses each URL (through the proxy: the server's `AWS_ENDPOINT_URL` is
//! the proxy, so the URLs name it) inside the route's window, and those
//! requests count as the route's. The Lambda-init warm-up
//! (`DynamoStore::warm_up`: one BatchGetItem of `C#warm-up`) is not run by
//! the local server, so it is added to every function as "used at init".
//!
//! AWS backend only (KEYSRV_TEST_BACKEND=aws, emulator in kms mode).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use keysrv_tests::aws;
use keysrv_tests::fault_proxy::{FaultProxy, Recorded};
use keysrv_tests::reqwest::Method;
use keysrv_tests::serde_json::{Value, json};
use keysrv_tests::template;
use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", CAROL = "carol", DAVE = "dave", EVE = "eve" }

/// The partition key `DynamoStore::warm_up` reads at Lambda init.
const WARM_UP_PK: &str = "C#warm-up";

// ---------------------------------------------------------------------------
// The template.

/// The conditions of one policy statement that the test checks (`None`: no
/// such condition).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Scope {
    /// `dynamodb:LeadingKeys`: the partition keys allowed.
    leading_keys: Option<BTreeSet<String>>,
    /// `kms:ViaService`: the service (`s3`) the key may be used through only.
    via: Option<String>,
    /// The encryption-context keys allowed (`kms:EncryptionContextKeys`, or
    /// those a `kms:EncryptionContext:<key>` condition names).
    context_keys: Option<BTreeSet<String>>,
}

impl Scope {
    /// Whether a statement with these conditions allows `u`.
    fn allows(&self, u: &Use) -> bool {
        let subset = |allowed: &Option<BTreeSet<String>>, used: &Option<BTreeSet<String>>| match (allowed, used) {
            (None, _) => true,
            (Some(allowed), Some(used)) => used.is_subset(allowed),
            (Some(_), None) => false,
        };
        subset(&self.leading_keys, &u.leading_keys)
            && self.via.as_ref().is_none_or(|v| u.via.as_ref() == Some(v))
            && subset(&self.context_keys, &u.context_keys)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(k) = &self.leading_keys {
            parts.push(format!("leading keys {k:?}"));
        }
        if let Some(v) = &self.via {
            parts.push(format!("via {v}"));
        }
        if let Some(k) = &self.context_keys {
            parts.push(format!("context keys {k:?}"));
        }
        if parts.is_empty() { f.write_str("any") } else { f.write_str(&parts.join(", ")) }
    }
}

/// What a function's policies grant: per IAM action, the conditions of each
/// statement that grants it.
type Grants = BTreeMap<String, Vec<Scope>>;

/// `action` or `action [conditions | conditions]`, one per granted action.
fn describe(grants: &Grants) -> String {
    let one = |(action, scopes): (&String, &Vec<Scope>)| {
        if scopes.iter().all(|s| *s == Scope::default()) {
            action.clone()
        } else {
            let scopes: Vec<String> = scopes.iter().map(Scope::to_string).collect();
            format!("{action} [{}]", scopes.join(" | "))
        }
    };
    grants.iter().map(one).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Default)]
struct Function {
    resource: String,
    /// What it serves (its `KEYSRV_ROUTE`), else its binary (`pre_sign_up`).
    name: String,
    method: String,
    path: String,
    grants: Grants,
}

fn is_action(s: &str) -> bool {
    ["dynamodb:", "kms:", "secretsmanager:", "s3:"].iter().any(|p| s.starts_with(p))
}

/// A string, or each string of a list.
fn strings(v: &Value) -> BTreeSet<String> {
    match v {
        Value::String(s) => BTreeSet::from([s.clone()]),
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => BTreeSet::new(),
    }
}

/// What a statement's `Condition` restricts, of what the test checks.
fn scope_of(condition: &Value) -> Scope {
    let mut scope = Scope::default();
    for (key, value) in
        condition.as_object().into_iter().flat_map(|ops| ops.values()).filter_map(Value::as_object).flatten()
    {
        if key == "dynamodb:LeadingKeys" {
            scope.leading_keys = Some(strings(value));
        } else if key == "kms:ViaService" {
            // `!Sub s3.${AWS::Region}.amazonaws.com` → `s3`.
            let host = value["Fn::Sub"].as_str().or(value.as_str()).expect("kms:ViaService is a string or a !Sub");
            scope.via = Some(host.split('.').next().unwrap_or_default().to_owned());
        } else if key == "kms:EncryptionContextKeys" {
            scope.context_keys.get_or_insert_with(BTreeSet::new).extend(strings(value));
        } else if let Some(context_key) = key.strip_prefix("kms:EncryptionContext:") {
            scope.context_keys.get_or_insert_with(BTreeSet::new).insert(context_key.to_owned());
        }
    }
    scope
}

/// The functions of template.yaml, as the kms wrapping mode deploys them
/// (`!If [UseKms, …]` kept, `!If [UseSecretsManager, …]` dropped).
fn parse_template(text: &str) -> Vec<Function> {
    let doc = template::parse(text).expect("template.yaml parses");
    let condition = |name: &str| match name {
        "UseKms" => true,
        "UseSecretsManager" => false,
        other => panic!("a policy depends on condition {other}, which this test does not know"),
    };
    template::functions(&doc)
        .into_iter()
        .map(|f| {
            let mut grants = Grants::new();
            let policies = template::resolve_ifs(&f.policies, &condition).unwrap_or(Value::Null);
            let statements = policies.as_array().into_iter().flatten().flat_map(|p| {
                p["Statement"].as_array().unwrap_or_else(|| panic!("{}: a policy without statements", f.resource))
            });
            for st in statements {
                assert_eq!(st["Effect"], "Allow", "{}: only Allow statements are expected", f.resource);
                let scope = scope_of(&st["Condition"]);
                for action in strings(&st["Action"]).into_iter().filter(|a| is_action(a)) {
                    let scopes = grants.entry(action).or_default();
                    if !scopes.contains(&scope) {
                        scopes.push(scope.clone());
                    }
                }
            }
            let (method, path) = f.http_events.first().cloned().unwrap_or_default();
            Function { name: f.name(), resource: f.resource, method, path, grants }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// AWS operations → IAM actions.

/// One authorized action and what the test knows of its request.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    action: String,
    /// For reads whose partition keys the test can see (BatchGetItem),
    /// those keys (`None`: not known).
    leading_keys: Option<BTreeSet<String>>,
    /// For KMS: the service that made the call on the function's behalf
    /// (`None`: the function itself).
    via: Option<String>,
    /// For KMS: the keys of the encryption context used.
    context_keys: Option<BTreeSet<String>>,
}

impl Use {
    fn new(action: impl Into<String>) -> Self {
        Self { action: action.into(), ..Self::default() }
    }
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

/// The S3 encryption context, with or without an S3 Bucket Key: `aws:s3:arn`
/// (the bucket's ARN, or the object's).
const S3_CONTEXT_KEY: &str = "aws:s3:arn";

/// The KMS call S3 makes itself, as the requester, for an SSE-KMS object.
fn s3_kms(action: &str) -> Use {
    Use {
        action: action.to_owned(),
        via: Some("s3".to_owned()),
        context_keys: Some(BTreeSet::from([S3_CONTEXT_KEY.to_owned()])),
        ..Use::default()
    }
}

/// The IAM actions an S3 operation needs of its requester (for a presigned
/// URL: of whoever signed it).
///
/// Every object of the files bucket is SSE-KMS (template.yaml: the bucket's
/// default encryption, and its policy refuses an upload that does not ask for
/// SSE-KMS under the project key). For such objects S3 itself calls KMS, and
/// it does so as the requester -- the signer of a presigned URL: a PutObject
/// needs `kms:GenerateDataKey` (a new data key, or an S3 Bucket Key) and a
/// GetObject `kms:Decrypt`, both "via S3" with S3's encryption context.
/// (With a Bucket Key S3 calls KMS rarely, but the permission is checked
/// whenever it does, so it is needed all the same.) The emulator makes these
/// calls inside itself, not through the proxy, so they are implied here.
fn s3_actions(op: &str) -> Vec<Use> {
    let put = || vec![Use::new("s3:PutObject"), s3_kms("kms:GenerateDataKey")];
    match op {
        "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => put(),
        "CopyObject" | "UploadPartCopy" => {
            let mut uses = put();
            uses.extend([Use::new("s3:GetObject"), s3_kms("kms:Decrypt")]);
            uses
        }
        "GetObject" => vec![Use::new("s3:GetObject"), s3_kms("kms:Decrypt")],
        // Metadata only: no KMS call.
        "HeadObject" => vec![Use::new("s3:GetObject")],
        // DeleteObjects is authorized per key, as s3:DeleteObject.
        "DeleteObject" | "DeleteObjects" => vec![Use::new("s3:DeleteObject")],
        "ListObjectsV2" | "ListObjects" | "HeadBucket" => vec![Use::new("s3:ListBucket")],
        "AbortMultipartUpload" => vec![Use::new("s3:AbortMultipartUpload")],
        other => panic!("an S3 operation this test does not map to IAM actions: {other:?} (add it to s3_actions)"),
    }
}

/// The IAM actions a proxied request needs.
fn actions_of(req: &Recorded) -> Vec<Use> {
    let target = req.target.as_str();
    let json: Value = keysrv_tests::serde_json::from_slice(&req.body).unwrap_or(Value::Null);
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
                    match kind {
                        "ConditionCheck" => Use::new("dynamodb:ConditionCheckItem"),
                        k => Use::new(format!("dynamodb:{k}Item")),
                    }
                })
                .collect();
        }
        if op == "TransactGetItems" {
            // Authorized per item, as dynamodb:GetItem.
            let items = json["TransactItems"].as_array().cloned().unwrap_or_default();
            assert!(!items.is_empty(), "a TransactGetItems without TransactItems: {json}");
            return items
                .iter()
                .map(|item| {
                    let pk = item["Get"]["Key"]["pk"]["S"].as_str().map(str::to_owned);
                    Use { leading_keys: pk.map(|p| BTreeSet::from([p])), ..Use::new("dynamodb:GetItem") }
                })
                .collect();
        }
        let leading_keys = (op == "BatchGetItem").then(|| batch_get_pks(&json));
        return vec![Use { leading_keys, ..Use::new(format!("dynamodb:{op}")) }];
    }
    if let Some(op) = target.strip_prefix("TrentService.") {
        let context_keys = json["EncryptionContext"].as_object().map(|c| c.keys().cloned().collect());
        return vec![Use { context_keys, ..Use::new(format!("kms:{op}")) }];
    }
    if let Some(op) = target.strip_prefix("secretsmanager.") {
        return vec![Use::new(format!("secretsmanager:{op}"))];
    }
    if let Some(op) = target.strip_prefix(keysrv_tests::fault_proxy::S3) {
        let mut uses = s3_actions(op);
        // Tags set with the object (the tombstones of deleted files) need
        // their own permission.
        if op == "PutObject" && req.headers.contains_key("x-amz-tagging") {
            uses.push(Use::new("s3:PutObjectTagging"));
        }
        return uses;
    }
    panic!("an AWS request of no known operation {target:?}: {} {}", req.method, req.path_and_query);
}

/// What the bucket policy (FilesBucketPolicy) refuses of a request, if
/// anything: an upload that does not ask for SSE-KMS under a named key.
fn bucket_policy_refuses(req: &Recorded) -> Option<String> {
    let op = req.target.strip_prefix(keysrv_tests::fault_proxy::S3)?;
    if !matches!(op, "PutObject" | "CreateMultipartUpload" | "CopyObject") {
        return None;
    }
    let h = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
    let sse = h("x-amz-server-side-encryption");
    let key = h("x-amz-server-side-encryption-aws-kms-key-id");
    (sse != Some("aws:kms") || key.is_none_or(str::is_empty))
        .then(|| format!("an upload without SSE-KMS headers (x-amz-server-side-encryption {sse:?}, key id {key:?})"))
}

/// Whether `grants` allow `u`; `None` if so, else why not.
fn denied(grants: &Grants, u: &Use) -> Option<String> {
    match grants.get(&u.action) {
        None => Some("not granted".to_owned()),
        Some(scopes) if scopes.iter().any(|s| s.allows(u)) => None,
        Some(scopes) => Some(format!(
            "granted only under [{}]",
            scopes.iter().map(Scope::to_string).collect::<Vec<_>>().join(" | ")
        )),
    }
}

// ---------------------------------------------------------------------------
// Driving the routes.

struct Recorder {
    proxy: FaultProxy,
    s: TestServer,
    /// Per function (binary): each action used, with the requests that used it.
    used: BTreeMap<String, BTreeMap<Use, BTreeSet<String>>>,
    /// The AWS requests of the last `run`.
    last: Vec<Recorded>,
    /// Requests the bucket policy would refuse, whatever the IAM grants.
    refused: Vec<String>,
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
        let requests = self.proxy.recorded();
        let describe = format!("{} -> {} {}", r.request, r.status, String::from_utf8_lossy(&r.raw));
        if ok {
            assert!((200..300).contains(&r.status), "{route}: {what}: want 2xx: {}", describe);
        } else {
            assert!((400..500).contains(&r.status), "{route}: {what}: want 4xx: {}", describe);
        }
        let ops: Vec<&str> = requests.iter().map(|q| q.target.as_str()).collect();
        println!("{route:<20} {what:<58} {} {ops:?}", r.status);
        let entry = self.used.entry(route.to_owned()).or_default();
        for q in &requests {
            for u in actions_of(q) {
                entry.entry(u).or_default().insert(format!("{what} ({})", r.request));
            }
            if let Some(why) = bucket_policy_refuses(q) {
                self.refused.push(format!("{route}: {what}: {why}: {} {}", q.method, q.path_and_query));
            }
        }
        self.last = requests;
        r
    }
}

fn idem(key: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![("idempotency-key", key.as_bytes().to_vec())]
}

fn files_of(conversation_id: &str) -> String {
    format!("/v1/conversations/{conversation_id}/files")
}

fn file_at(file_id: &str) -> String {
    format!("/v1/files/{file_id}")
}

/// Uses the presigned request of a file grant (`grant` is its `upload` or
/// `download` object) as a client would: its method and URL, exactly its
/// headers. Returns the status and the body.
async fn use_presigned(grant: &Value, body: Option<&[u8]>) -> (u16, Vec<u8>) {
    let method = grant["method"].as_str().unwrap_or_else(|| panic!("a grant without a method: {grant}"));
    let url = grant["url"].as_str().unwrap_or_else(|| panic!("a grant without a url: {grant}"));
    let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut req = keysrv_tests::reqwest::Client::new().request(method, url);
    for (name, value) in grant["headers"].as_object().into_iter().flatten() {
        let value = value.as_str().unwrap_or_else(|| panic!("header {name} is not a string: {grant}"));
        // The HTTP client sends the body's length itself; it must be the signed one.
        if name.eq_ignore_ascii_case("content-length") {
            assert_eq!(Some(value.to_owned()), body.map(|b| b.len().to_string()), "signed content-length");
            continue;
        }
        req = req.header(name.as_str(), value);
    }
    if let Some(body) = body {
        req = req.body(body.to_vec());
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("using the presigned URL {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
}

/// The S3 requests of `requests` with target `S3.<op>`.
fn s3_requests<'a>(requests: &'a [Recorded], op: &str) -> Vec<&'a Recorded> {
    requests.iter().filter(|q| q.target.strip_prefix(keysrv_tests::fault_proxy::S3) == Some(op)).collect()
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
    // Functions without a route: Cognito's pre sign-up trigger reads and
    // writes nothing; the scheduled sweep lists the bucket, looks storage
    // keys up and deletes objects (the calls of `sweep_unregistered_bytes`).
    let (functions, others): (Vec<_>, Vec<_>) = parse_template(&text).into_iter().partition(|f| !f.path.is_empty());
    let other_names: Vec<&str> = others.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(other_names, ["pre_sign_up", "sweep_files"], "{others:#?}");
    for t in &others {
        let granted: BTreeSet<String> = t.grants.keys().cloned().collect();
        let wanted: BTreeSet<String> = match t.name.as_str() {
            "sweep_files" => ["dynamodb:BatchGetItem", "s3:ListBucket", "s3:DeleteObject"].map(String::from).into(),
            _ => BTreeSet::new(),
        };
        assert_eq!(granted, wanted, "{} is not a route; it must grant exactly what it calls", t.resource);
    }
    assert!(functions.len() >= 9, "found only {} functions in template.yaml: {functions:#?}", functions.len());
    for f in &functions {
        assert!(!f.name.is_empty(), "{}: neither KEYSRV_ROUTE nor Binary", f.resource);
        assert!(!f.grants.is_empty(), "{}: no actions parsed from its Policies", f.resource);
        println!("template: {} {} {} ({}) grants {}", f.name, f.method, f.path, f.resource, describe(&f.grants));
    }

    let proxy = FaultProxy::start(&aws::emulator().env.endpoint);
    // The files bucket (the emulator's env names it); presigned URLs name the
    // server's AWS endpoint, i.e. the proxy.
    let files_env: Vec<(&str, String)> = ["KEYSRV_FILES_BUCKET", "KEYSRV_FILES_KMS_KEY_ID"]
        .into_iter()
        .map(|n| {
            let v = std::env::var(n).ok().filter(|v| !v.is_empty());
            (n, v.unwrap_or_else(|| panic!("{n} is not set: the emulator's env (scripts/emulator.py up) names it")))
        })
        .collect();
    // No sweep: it is not a route, and a sweep at start would be counted as
    // the calls of whichever route runs then (the scheduled function's
    // grants are checked above).
    // Quotas on (counted in the table, as in production), high enough never to refuse.
    let mut env: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL", &proxy.url),
        ("KEYSRV_SWEEP_INTERVAL_SECS", "0"),
        ("KEYSRV_QUOTAS", "create=100000,rotate=100000,members=100000,files=100000"),
    ];
    env.extend(files_env.iter().map(|(n, v)| (*n, v.as_str())));
    let s = TestServer::start_with_env(&env);
    let mut rec = Recorder { proxy, s, used: BTreeMap::new(), last: Vec::new(), refused: Vec::new() };
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

    // --- the file routes. A presigned URL is used inside its route's
    // window: S3 authorizes it as the function that signed it.
    let bytes: &[u8] = b"iam parity: bytes a client encrypted under a conversation key";
    let file_body = json!({"content_type": "application/octet-stream", "size": bytes.len()});
    let proxy_url = rec.proxy.url.clone();
    let create_and_upload = |cid: String, token: String| {
        let (c, file_body, proxy_url) = (c.fresh(), file_body.clone(), proxy_url.clone());
        async move {
            let r = c.post(&files_of(&cid), &token, Some(&file_body)).await;
            if r.status == 201 {
                let upload = &r.body["upload"];
                let url = upload["url"].as_str().unwrap_or_default();
                assert!(url.starts_with(&proxy_url), "the upload URL {url} does not go through the proxy {proxy_url}");
                let (status, answer) = use_presigned(upload, Some(bytes)).await;
                assert_eq!(status, 200, "the presigned PUT: {}", String::from_utf8_lossy(&answer));
            }
            r
        }
    };
    const CREATE_FILE: &str = "create_file";
    let r = rec
        .run(
            CREATE_FILE,
            "owner registers a file, uploads it (presigned PUT)",
            true,
            create_and_upload(doomed_cid.clone(), owner.clone()),
        )
        .await;
    let doomed_file = r.str("file_id");
    let puts = s3_requests(&rec.last, "PutObject");
    assert_eq!(puts.len(), 1, "create_file: the upload did not come through the proxy: {:?}", rec.last);
    // `/<bucket>/<key>?...`: the object the crypto-shred must delete.
    let doomed_object = puts[0].path_and_query.split('?').next().and_then(|p| p.rsplit('/').next()).unwrap_or_default();
    let doomed_object = doomed_object.to_owned();
    rec.run(
        CREATE_FILE,
        "a member registers a file, never uploaded",
        true,
        c.post(&files_of(&doomed_cid), &bob, Some(&file_body)),
    )
    .await;
    let r = rec
        .run(
            CREATE_FILE,
            "owner registers a file to delete, uploads it",
            true,
            create_and_upload(shared_cid.clone(), owner.clone()),
        )
        .await;
    let deleted_file = r.str("file_id");
    rec.run(CREATE_FILE, "non-member", false, c.post(&files_of(&sj_cid), &carol, Some(&file_body))).await;
    rec.run(CREATE_FILE, "unknown conversation", false, c.post(&files_of(&unknown_cid), &owner, Some(&file_body)))
        .await;
    rec.run(
        CREATE_FILE,
        "invalid content_type",
        false,
        c.post(&files_of(&shared_cid), &owner, Some(&json!({"content_type": "nonsense", "size": 1}))),
    )
    .await;
    rec.run(
        CREATE_FILE,
        "too large",
        false,
        c.post(
            &files_of(&shared_cid),
            &owner,
            Some(&json!({"content_type": "application/octet-stream", "size": 1u64 << 50})),
        ),
    )
    .await;

    const GET_FILE: &str = "get_file";
    let download = |file_id: String, token: String| {
        let c = c.fresh();
        async move {
            let r = c.get(&file_at(&file_id), &token).await;
            if r.status == 200 {
                let (status, answer) = use_presigned(&r.body["download"], None).await;
                assert_eq!(status, 200, "the presigned GET: {}", String::from_utf8_lossy(&answer));
                assert_eq!(answer, bytes, "the presigned GET returned other bytes");
            }
            r
        }
    };
    rec.run(GET_FILE, "member downloads a file (presigned GET)", true, download(doomed_file.clone(), bob.clone()))
        .await;
    assert_eq!(s3_requests(&rec.last, "GetObject").len(), 1, "get_file: the download: {:?}", rec.last);
    rec.run(GET_FILE, "non-member", false, c.get(&file_at(&doomed_file), &rec.s.token(*DAVE))).await;
    rec.run(
        GET_FILE,
        "unknown file of a known conversation",
        false,
        c.get(&file_at(&unknown_objectid_in(&doomed_cid)), &bob),
    )
    .await;
    rec.run(GET_FILE, "unknown conversation", false, c.get(&file_at(&unknown_objectid()), &bob)).await;
    rec.run(GET_FILE, "malformed file id", false, c.get(&file_at("nonsense"), &bob)).await;

    const DELETE_FILE: &str = "delete_file";
    rec.run(DELETE_FILE, "a plain member deletes another's file", false, c.delete(&file_at(&deleted_file), &bob)).await;
    // Registered an hour ago: its upload URL has expired, so its object is
    // deleted; a file registered just now gets a tombstone (PutObject with a
    // tag) that its still-live upload URL cannot overwrite.
    aws::emulator().age_file(&deleted_file, 3600);
    rec.run(DELETE_FILE, "the uploader deletes an old file", true, c.delete(&file_at(&deleted_file), &owner)).await;
    assert_eq!(s3_requests(&rec.last, "DeleteObjects").len(), 1, "delete_file: {:?}", rec.last);
    let fresh = rec
        .run(
            CREATE_FILE,
            "owner registers a file and deletes it at once",
            true,
            create_and_upload(shared_cid.clone(), owner.clone()),
        )
        .await
        .str("file_id");
    rec.run(DELETE_FILE, "the uploader deletes a new file", true, c.delete(&file_at(&fresh), &owner)).await;
    assert_eq!(s3_requests(&rec.last, "PutObject").len(), 1, "delete_file of a new file: {:?}", rec.last);
    rec.run(DELETE_FILE, "delete it again", false, c.delete(&file_at(&deleted_file), &owner)).await;
    rec.run(DELETE_FILE, "non-member", false, c.delete(&file_at(&doomed_file), &rec.s.token(*DAVE))).await;
    rec.run(DELETE_FILE, "unknown file", false, c.delete(&file_at(&unknown_objectid_in(&shared_cid)), &owner)).await;

    // --- delete_conversation
    const DELETE_CONV: &str = "delete_conversation";
    rec.run(DELETE_CONV, "a member who is not the owner", false, c.delete(&conversation_path(&doomed_cid), &bob)).await;
    // The uploaded file is old (deleted), the never-uploaded one new (tombstoned).
    aws::emulator().age_file(&doomed_file, 3600);
    rec.run(
        DELETE_CONV,
        "the owner deletes it (two files, one uploaded)",
        true,
        c.delete(&conversation_path(&doomed_cid), &owner),
    )
    .await;
    let deletes = s3_requests(&rec.last, "DeleteObjects");
    assert!(
        deletes.iter().any(|q| String::from_utf8_lossy(&q.body).contains(&format!("<Key>{doomed_object}</Key>"))),
        "the crypto-shred did not delete the object {doomed_object} of its file: {:?}",
        rec.last
    );
    assert_eq!(s3_requests(&rec.last, "PutObject").len(), 1, "the crypto-shred's tombstone: {:?}", rec.last);
    rec.run(DELETE_CONV, "delete it again", false, c.delete(&conversation_path(&doomed_cid), &owner)).await;
    rec.run(DELETE_CONV, "unknown conversation", false, c.delete(&conversation_path(&unknown_cid), &owner)).await;

    // --- the check.
    let init = Use { leading_keys: Some(BTreeSet::from([WARM_UP_PK.to_owned()])), ..Use::new("dynamodb:GetItem") };
    let mut gaps = Vec::new();
    println!("\nfunction             used (incl. init warm-up)                      | granted but never used");
    for f in &functions {
        let Some(used) = rec.used.get_mut(&f.name) else {
            gaps.push(format!("{}: no requests of this route were driven (add it to the test)", f.name));
            continue;
        };
        used.entry(init.clone()).or_default().insert("Lambda init: DynamoStore::warm_up".into());
        let used_actions: BTreeSet<&str> = used.keys().map(|u| u.action.as_str()).collect();
        let unused: Vec<&String> = f.grants.keys().filter(|a| !used_actions.contains(a.as_str())).collect();
        println!("{:<20} {:<46} | {unused:?}", f.name, format!("{used_actions:?}"));
        for (u, whence) in used.iter() {
            if let Some(why) = denied(&f.grants, u) {
                gaps.push(format!(
                    "{} ({}): {} {why} (used with leading keys {:?}, via {:?}, context keys {:?}); needed by: {}",
                    f.name,
                    f.resource,
                    u.action,
                    u.leading_keys,
                    u.via,
                    u.context_keys,
                    whence.iter().cloned().collect::<Vec<_>>().join("; ")
                ));
            }
        }
    }
    for route in rec.used.keys() {
        assert!(
            functions.iter().any(|f| &f.name == route),
            "the test drove {route}, which template.yaml does not have"
        );
    }
    assert!(gaps.is_empty(), "template.yaml does not grant what the functions use:\n  {}", gaps.join("\n  "));
    assert!(rec.refused.is_empty(), "requests FilesBucketPolicy refuses:\n  {}", rec.refused.join("\n  "));
}

/// The reader itself (any backend): `!If` branches, single and listed
/// actions, `dynamodb:LeadingKeys` restrictions and the KMS conditions that
/// tell keysrv's own KMS calls from those S3 makes.
#[test]
fn template_reader_keeps_kms_branches_and_conditions() {
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
                Condition:
                  ForAllValues:StringEquals:
                    kms:EncryptionContextKeys: [conversation_id, objectid]
                  "Null":
                    kms:EncryptionContext:conversation_id: "false"
              - !Ref AWS::NoValue
            - !If
              - UseSecretsManager
              - Effect: Allow
                Action: secretsmanager:GetSecretValue
              - !Ref AWS::NoValue
            - Effect: Allow
              Action:
                - s3:GetObject
              Resource: !Sub ${FilesBucket.Arn}/*
            - Effect: Allow
              Action:
                - kms:Decrypt
              Condition:
                StringEquals:
                  kms:ViaService: !Sub s3.${AWS::Region}.amazonaws.com
                  kms:EncryptionContext:aws:s3:arn: !GetAtt FilesBucket.Arn
"#;
    let fs = parse_template(text);
    assert_eq!(fs.len(), 1, "{fs:#?}");
    let warm = BTreeSet::from([WARM_UP_PK.to_owned()]);
    let keysrv_context = BTreeSet::from(["conversation_id".to_owned(), "objectid".to_owned()]);
    let want: Grants = BTreeMap::from([
        ("dynamodb:Query".to_owned(), vec![Scope::default()]),
        ("dynamodb:BatchGetItem".to_owned(), vec![Scope { leading_keys: Some(warm.clone()), ..Scope::default() }]),
        (
            "kms:Decrypt".to_owned(),
            vec![
                Scope { context_keys: Some(keysrv_context.clone()), ..Scope::default() },
                Scope {
                    via: Some("s3".to_owned()),
                    context_keys: Some(BTreeSet::from([S3_CONTEXT_KEY.to_owned()])),
                    ..Scope::default()
                },
            ],
        ),
        ("s3:GetObject".to_owned(), vec![Scope::default()]),
    ]);
    assert_eq!(fs[0].name, "foo");
    assert_eq!(fs[0].grants, want);
    let batch_get =
        |pk: &str| Use { leading_keys: Some(BTreeSet::from([pk.to_owned()])), ..Use::new("dynamodb:BatchGetItem") };
    assert!(denied(&want, &batch_get("C#x")).is_some());
    assert!(denied(&want, &batch_get(WARM_UP_PK)).is_none());
    assert!(denied(&want, &Use::new("dynamodb:PutItem")).is_some());
    // keysrv's own Decrypt, and the one S3 makes for a GetObject.
    assert!(denied(&want, &Use { context_keys: Some(keysrv_context), ..Use::new("kms:Decrypt") }).is_none());
    assert!(s3_actions("GetObject").iter().all(|u| denied(&want, u).is_none()));
    // Neither statement allows a Decrypt under another context, nor S3's
    // GenerateDataKey.
    let other = BTreeSet::from(["other".to_owned()]);
    assert!(denied(&want, &Use { context_keys: Some(other), ..Use::new("kms:Decrypt") }).is_some());
    assert!(denied(&want, &s3_kms("kms:GenerateDataKey")).is_some());
    assert!(s3_actions("PutObject").iter().any(|u| denied(&want, u).is_some()));
}
