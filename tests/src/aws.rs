//! The AWS backend of the harness: the emulator's environment (from
//! `scripts/emulator.py up`'s env file), direct DynamoDB and KMS access for
//! inspecting what the server stored, real Cognito access tokens, and the
//! emulator's Cognito signing key for deliberately bad tokens.
//!
//! Every SDK call runs on one background runtime owned by the harness (see
//! `block_on`), so the helpers are plain functions that async tests may call
//! without caring which runtime they are on.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::runtime::Runtime;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The variables `emulator.py up` writes to `STATE/env` that the harness needs.
const REQUIRED: [&str; 11] = [
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "KEYSRV_TABLE",
    "KEYSRV_KMS_KEY_ID",
    "KEYSRV_JWT_ISSUER",
    "KEYSRV_JWT_JWKS_URL",
    "KEYSRV_JWT_AUDIENCE",
    "KEYSRV_COGNITO_USER_POOL_ID",
    "KEYSRV_COGNITO_CLIENT_ID",
    "KEYSRV_EMULATOR_STATE_DIR",
    "AWS_ACCESS_KEY_ID",
];

/// Server settings passed on to `keysrv server --backend aws` (every other
/// `KEYSRV_*` variable of the test's environment is withheld from it).
pub const SERVER_VARS: [&str; 11] = [
    "KEYSRV_TABLE",
    "KEYSRV_WRAPPING",
    "KEYSRV_KMS_KEY_ID",
    "KEYSRV_MASTER_KEY_SECRET_ID",
    "KEYSRV_JWT_ISSUER",
    "KEYSRV_JWT_JWKS_URL",
    "KEYSRV_JWT_AUDIENCE",
    "KEYSRV_FILES_BUCKET",
    "KEYSRV_FILES_KMS_KEY_ID",
    "KEYSRV_FILE_MAX_BYTES",
    "KEYSRV_FILE_URL_TTL_SECS",
];

/// The emulator's environment.
#[derive(Clone, Debug)]
pub struct AwsEnv {
    pub endpoint: String,
    pub table: String,
    pub kms_key_id: String,
    /// `kms` or `secretsmanager`.
    pub wrapping: String,
    pub issuer: String,
    pub client_id: String,
    pub state_dir: PathBuf,
    /// The files bucket and the KMS key of its SSE-KMS encryption
    /// (`KEYSRV_FILES_BUCKET`, `KEYSRV_FILES_KMS_KEY_ID`; empty if unset).
    pub files_bucket: String,
    pub files_kms_key_id: String,
    /// `KEYSRV_*` settings for the server, by name (see `SERVER_VARS`).
    pub server_vars: Vec<(String, String)>,
}

impl AwsEnv {
    /// Reads the environment; panics with what is missing.
    pub fn from_env() -> Self {
        let missing: Vec<&str> = REQUIRED.iter().copied().filter(|v| std::env::var(v).is_err()).collect();
        assert!(
            missing.is_empty(),
            "KEYSRV_TEST_BACKEND=aws but the emulator's environment is incomplete (missing {missing:?}): run \
             `scripts/emulator.py up --port PORT --state-dir DIR` and `set -a; . DIR/env; set +a` first"
        );
        let var = |n: &str| std::env::var(n).unwrap_or_default();
        Self {
            endpoint: var("AWS_ENDPOINT_URL"),
            table: var("KEYSRV_TABLE"),
            kms_key_id: var("KEYSRV_KMS_KEY_ID"),
            wrapping: std::env::var("KEYSRV_WRAPPING").unwrap_or_else(|_| "kms".into()),
            issuer: var("KEYSRV_JWT_ISSUER"),
            client_id: var("KEYSRV_COGNITO_CLIENT_ID"),
            state_dir: PathBuf::from(var("KEYSRV_EMULATOR_STATE_DIR")),
            files_bucket: var("KEYSRV_FILES_BUCKET"),
            files_kms_key_id: var("KEYSRV_FILES_KMS_KEY_ID"),
            server_vars: SERVER_VARS
                .iter()
                .filter_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()).map(|v| (n.to_string(), v)))
                .collect(),
        }
    }

    /// moto's own log (every request it served), if present.
    pub fn moto_log(&self) -> Option<PathBuf> {
        Some(self.state_dir.join("moto.log")).filter(|p| p.is_file())
    }

    /// moto's Cognito signing key (PKCS#8 PEM, kid `dummy`), written by `emulator.py up`.
    pub fn signing_key_pem(&self) -> Vec<u8> {
        let path = self.state_dir.join("cognito-signing-key.pem");
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "reading {}: {e} (write it with `scripts/emulator.py signing-key --state-dir {}`)",
                path.display(),
                self.state_dir.display()
            )
        })
    }
}

// ---------------------------------------------------------------------------
// The harness's runtime.

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("keysrv-tests-aws")
            .enable_all()
            .build()
            .expect("building the harness runtime")
    })
}

/// Runs `f` to completion on the harness's runtime and returns its output;
/// callable from sync code and from inside any async test (it blocks the
/// calling thread, never the harness's runtime). Panics propagate.
pub fn block_on<F>(f: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| runtime().block_on(f)).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Spawns `f` on the harness's runtime (for servers that must keep running
/// while a test blocks its own thread).
pub fn spawn<F>(f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(f)
}

// ---------------------------------------------------------------------------
// Direct access to the emulator.

/// The emulator, reached directly (not through any fault proxy).
pub struct Emulator {
    pub env: AwsEnv,
    pub ddb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub s3: aws_sdk_s3::Client,
}

/// The process's emulator handle. Panics unless the backend is AWS.
pub fn emulator() -> &'static Emulator {
    static EMU: OnceLock<Emulator> = OnceLock::new();
    EMU.get_or_init(|| {
        assert_eq!(crate::backend(), crate::Backend::Aws, "the emulator is only there on the AWS backend");
        let mut env = AwsEnv::from_env();
        let sdk = block_on(aws_config::load_from_env());
        // The emulator is reached by an address, not a bucket subdomain.
        let s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build();
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        // A table of this process's own, so inspecting "every row" (a scan)
        // reads this test's rows, not those of every test before it: moto
        // scans in Python, and one shared table made the suite quadratic.
        let table = own_table(&ddb, &env.table);
        // And a bucket of its own: every server sweeps the bucket at start
        // for bytes no row of *its* table names, so a shared bucket would
        // lose other tests' files.
        let s3 = aws_sdk_s3::Client::from_conf(s3);
        let bucket = if env.files_bucket.is_empty() { String::new() } else { own_bucket(&s3, &env.files_bucket) };
        for (name, value) in &mut env.server_vars {
            match name.as_str() {
                "KEYSRV_TABLE" => value.clone_from(&table),
                "KEYSRV_FILES_BUCKET" => value.clone_from(&bucket),
                _ => {}
            }
        }
        env.table = table;
        env.files_bucket = bucket;
        Emulator { env, ddb, kms: aws_sdk_kms::Client::new(&sdk), s3 }
    })
}

/// Creates a bucket configured exactly like `template_bucket` (the one
/// `emulator.py up` built from template.yaml: default SSE-KMS, lifecycle,
/// public access block, ownership, versioning, CORS, tags) for this process;
/// returns its name. A configuration the template bucket lacks is skipped.
fn own_bucket(s3: &aws_sdk_s3::Client, template_bucket: &str) -> String {
    use aws_sdk_s3::types::{BucketLifecycleConfiguration, CorsConfiguration, Tagging, VersioningConfiguration};
    let name = format!("{template_bucket}-p{}", std::process::id());
    block_on(async {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| -> ! { panic!("{what} for the test's own bucket {name}: {e}") };
        let from = template_bucket;
        s3.create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap_or_else(|e| fail("CreateBucket", &DisplayErrorContext(&e)));
        if let Ok(enc) = s3.get_bucket_encryption().bucket(from).send().await
            && let Some(config) = enc.server_side_encryption_configuration
        {
            let put = s3.put_bucket_encryption().bucket(&name).server_side_encryption_configuration(config);
            put.send().await.unwrap_or_else(|e| fail("PutBucketEncryption", &DisplayErrorContext(&e)));
        }
        if let Ok(lifecycle) = s3.get_bucket_lifecycle_configuration().bucket(from).send().await
            && let Some(rules) = lifecycle.rules
        {
            let config = BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap_or_else(|e| fail("a lifecycle configuration", &e));
            let put = s3.put_bucket_lifecycle_configuration().bucket(&name).lifecycle_configuration(config);
            put.send().await.unwrap_or_else(|e| fail("PutBucketLifecycleConfiguration", &DisplayErrorContext(&e)));
        }
        if let Ok(block) = s3.get_public_access_block().bucket(from).send().await
            && let Some(config) = block.public_access_block_configuration
        {
            let put = s3.put_public_access_block().bucket(&name).public_access_block_configuration(config);
            put.send().await.unwrap_or_else(|e| fail("PutPublicAccessBlock", &DisplayErrorContext(&e)));
        }
        if let Ok(ownership) = s3.get_bucket_ownership_controls().bucket(from).send().await
            && let Some(controls) = ownership.ownership_controls
        {
            let put = s3.put_bucket_ownership_controls().bucket(&name).ownership_controls(controls);
            put.send().await.unwrap_or_else(|e| fail("PutBucketOwnershipControls", &DisplayErrorContext(&e)));
        }
        if let Ok(versioning) = s3.get_bucket_versioning().bucket(from).send().await
            && let Some(status) = versioning.status
        {
            let config = VersioningConfiguration::builder().status(status).build();
            let put = s3.put_bucket_versioning().bucket(&name).versioning_configuration(config);
            put.send().await.unwrap_or_else(|e| fail("PutBucketVersioning", &DisplayErrorContext(&e)));
        }
        if let Ok(cors) = s3.get_bucket_cors().bucket(from).send().await
            && let Some(rules) = cors.cors_rules
        {
            let config =
                CorsConfiguration::builder().set_cors_rules(Some(rules)).build().unwrap_or_else(|e| fail("CORS", &e));
            let put = s3.put_bucket_cors().bucket(&name).cors_configuration(config);
            put.send().await.unwrap_or_else(|e| fail("PutBucketCors", &DisplayErrorContext(&e)));
        }
        if let Ok(tags) = s3.get_bucket_tagging().bucket(from).send().await {
            let tagging =
                Tagging::builder().set_tag_set(Some(tags.tag_set)).build().unwrap_or_else(|e| fail("tags", &e));
            let put = s3.put_bucket_tagging().bucket(&name).tagging(tagging);
            put.send().await.unwrap_or_else(|e| fail("PutBucketTagging", &DisplayErrorContext(&e)));
        }
    });
    name
}

/// Creates a table shaped exactly like `template_table` (the one
/// `emulator.py up` built from template.yaml: keys, indexes, billing, TTL)
/// for this process; returns its name.
fn own_table(ddb: &aws_sdk_dynamodb::Client, template_table: &str) -> String {
    use aws_sdk_dynamodb::types::{BillingMode, GlobalSecondaryIndex, TimeToLiveSpecification};
    let name = format!("{template_table}-p{}", std::process::id());
    block_on(async {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| -> ! { panic!("{what} for the test's own table {name}: {e}") };
        let described = ddb.describe_table().table_name(template_table).send().await;
        let described = described.unwrap_or_else(|e| fail("DescribeTable", &DisplayErrorContext(&e)));
        let t = described.table.unwrap_or_else(|| fail("DescribeTable", &"no table description"));
        // A process id an earlier run left behind.
        let _ = ddb.delete_table().table_name(&name).send().await;
        let indexes = t
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                GlobalSecondaryIndex::builder()
                    .set_index_name(i.index_name.clone())
                    .set_key_schema(i.key_schema.clone())
                    .set_projection(i.projection.clone())
                    .build()
                    .unwrap_or_else(|e| fail("a global secondary index", &e))
            })
            .collect::<Vec<_>>();
        ddb.create_table()
            .table_name(&name)
            .set_key_schema(t.key_schema.clone())
            .set_attribute_definitions(t.attribute_definitions.clone())
            .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap_or_else(|e| fail("CreateTable", &DisplayErrorContext(&e)));
        let ttl = ddb.describe_time_to_live().table_name(template_table).send().await;
        if let Some(attribute) = ttl.ok().and_then(|t| t.time_to_live_description).and_then(|d| d.attribute_name) {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()
                .unwrap_or_else(|e| fail("TimeToLiveSpecification", &e));
            ddb.update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(spec)
                .send()
                .await
                .unwrap_or_else(|e| fail("UpdateTimeToLive", &DisplayErrorContext(&e)));
        }
    });
    name
}

/// `C#<conversation_id>`, the partition key of a conversation.
pub fn conversation_pk(conversation_id: &str) -> String {
    format!("C#{conversation_id}")
}

/// A string attribute of an item.
pub fn attr_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// A binary attribute of an item.
pub fn attr_b(item: &Item, name: &str) -> Option<Vec<u8>> {
    item.get(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec())
}

impl Emulator {
    /// Every item of the table (strongly consistent; paged).
    pub fn scan(&self, projection: Option<&str>) -> Vec<Item> {
        let (ddb, table) = (&self.ddb, &self.env.table);
        block_on(async move {
            let mut out = Vec::new();
            let mut start = None;
            loop {
                let mut req = ddb.scan().table_name(table).consistent_read(true).set_exclusive_start_key(start);
                if let Some(p) = projection {
                    // `owner` is a reserved word in DynamoDB expressions.
                    req = req.projection_expression(p).expression_attribute_names("#owner", "owner");
                }
                let page = req.send().await.unwrap_or_else(|e| panic!("Scan {table}: {}", DisplayErrorContext(&e)));
                out.extend(page.items.unwrap_or_default());
                start = page.last_evaluated_key;
                if start.is_none() {
                    return out;
                }
            }
        })
    }

    /// Every item of one partition, by sort key (strongly consistent).
    pub fn partition(&self, pk: &str) -> BTreeMap<String, Item> {
        let (ddb, table) = (&self.ddb, &self.env.table);
        block_on(async move {
            let mut out = BTreeMap::new();
            let mut start = None;
            loop {
                let page = ddb
                    .query()
                    .table_name(table)
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("Query {pk}: {}", DisplayErrorContext(&e)));
                for item in page.items.unwrap_or_default() {
                    let sk = attr_s(&item, "sk").expect("an item without sk").to_owned();
                    out.insert(sk, item);
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    return out;
                }
            }
        })
    }

    /// A conversation's partition (`C#<conversation_id>`).
    pub fn conversation_items(&self, conversation_id: &str) -> BTreeMap<String, Item> {
        self.partition(&conversation_pk(conversation_id))
    }

    /// Deletes a conversation's partition behind the server's back; returns
    /// how many items.
    pub fn delete_conversation_items(&self, conversation_id: &str) -> usize {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        let pk = conversation_pk(conversation_id);
        let doomed: Vec<WriteRequest> = self
            .partition(&pk)
            .into_keys()
            .map(|sk| {
                let key = HashMap::from([
                    ("pk".to_owned(), AttributeValue::S(pk.clone())),
                    ("sk".to_owned(), AttributeValue::S(sk)),
                ]);
                let delete = DeleteRequest::builder().set_key(Some(key)).build().expect("a key");
                WriteRequest::builder().delete_request(delete).build()
            })
            .collect();
        let (ddb, table) = (&self.ddb, &self.env.table);
        block_on(async move {
            for chunk in doomed.chunks(25) {
                let out = ddb.batch_write_item().request_items(table, chunk.to_vec()).send().await;
                let out = out.unwrap_or_else(|e| panic!("BatchWriteItem: {}", DisplayErrorContext(&e)));
                assert!(
                    out.unprocessed_items.is_none_or(|u| u.values().all(Vec::is_empty)),
                    "the emulator left items of {pk} undeleted"
                );
            }
            doomed.len()
        })
    }

    /// Writes an item as is.
    pub fn put_item(&self, item: Item) {
        let (ddb, table) = (&self.ddb, &self.env.table);
        block_on(async move {
            ddb.put_item()
                .table_name(table)
                .set_item(Some(item))
                .send()
                .await
                .unwrap_or_else(|e| panic!("PutItem: {}", DisplayErrorContext(&e)));
        });
    }

    /// Backdates a file's registration by `secs`, so that keysrv treats its
    /// upload URL as expired (deleting it then deletes the object instead of
    /// writing a tombstone).
    pub fn age_file(&self, file_id: &str, secs: i64) {
        let (cid, fid) = file_id.split_once('.').expect("a file id is <conversation>.<file>");
        let mut item = self.conversation_items(cid).remove(&format!("F#{fid}")).expect("the file's item");
        let created: i64 = match item.get("created_at") {
            Some(AttributeValue::N(n)) => n.parse().expect("created_at"),
            other => panic!("created_at of {file_id}: {other:?}"),
        };
        item.insert("created_at".into(), AttributeValue::N((created - secs * 1000).to_string()));
        self.put_item(item);
    }

    /// KMS `Decrypt` with this encryption context: the plaintext, or the
    /// error code (e.g. `InvalidCiphertextException`).
    pub fn decrypt(&self, blob: &[u8], context: &[(&str, &str)]) -> Result<Vec<u8>, String> {
        let kms = &self.kms;
        let key_id = &self.env.kms_key_id;
        let context: HashMap<String, String> = context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let blob = aws_sdk_kms::primitives::Blob::new(blob.to_vec());
        block_on(async move {
            let req = kms.decrypt().key_id(key_id).ciphertext_blob(blob);
            let req = if context.is_empty() { req } else { req.set_encryption_context(Some(context)) };
            match req.send().await {
                Ok(out) => Ok(out.plaintext.map(|p| p.into_inner()).unwrap_or_default()),
                Err(e) => Err(e.code().map(str::to_owned).unwrap_or_else(|| DisplayErrorContext(&e).to_string())),
            }
        })
    }

    /// The files bucket; panics if the emulator's environment names none.
    pub fn files_bucket(&self) -> &str {
        let bucket = &self.env.files_bucket;
        assert!(!bucket.is_empty(), "KEYSRV_FILES_BUCKET is not set: is the emulator's env file from before files?");
        bucket
    }

    /// `HeadObject` on the files bucket: the object's metadata, or `None`
    /// if there is no such object (404); any other error panics.
    pub fn head_object(&self, key: &str) -> Option<aws_sdk_s3::operation::head_object::HeadObjectOutput> {
        let (s3, bucket) = (&self.s3, self.files_bucket());
        block_on(async move {
            match s3.head_object().bucket(bucket).key(key).send().await {
                Ok(out) => Some(out),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => None,
                Err(e) => panic!("HeadObject {bucket}/{key}: {}", DisplayErrorContext(&e)),
            }
        })
    }

    /// Whether the object is an upload tombstone: empty and tagged
    /// `keysrv=tombstone` (what deleting a recently registered file leaves,
    /// so that its still-live upload URL cannot store bytes again).
    pub fn is_tombstone(&self, key: &str) -> bool {
        let (s3, bucket) = (&self.s3, self.files_bucket());
        let Some(head) = self.head_object(key) else { return false };
        if head.content_length() != Some(0) {
            return false;
        }
        block_on(async move {
            let tags = s3.get_object_tagging().bucket(bucket).key(key).send().await;
            let tags = tags.unwrap_or_else(|e| panic!("GetObjectTagging {bucket}/{key}: {}", DisplayErrorContext(&e)));
            tags.tag_set().iter().any(|t| t.key() == "keysrv" && t.value() == "tombstone")
        })
    }

    /// `ListObjectsV2` on the files bucket: every key that starts with `prefix`.
    pub fn object_keys(&self, prefix: &str) -> Vec<String> {
        let (s3, bucket) = (&self.s3, self.files_bucket());
        block_on(async move {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                let page = s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("ListObjectsV2 {bucket}/{prefix}: {}", DisplayErrorContext(&e)));
                out.extend(page.contents.unwrap_or_default().into_iter().filter_map(|o| o.key));
                token = page.next_continuation_token;
                if token.is_none() {
                    return out;
                }
            }
        })
    }

    /// Deletes every row that belongs to the JIDs of `domain` (best effort,
    /// never panics): the partitions of conversations they own or are
    /// members of, and their idempotency records. Returns how many items.
    pub fn delete_rows_of(&self, domain: &str) -> usize {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        let ours = format!("@{domain}");
        let (ddb, table) = (&self.ddb, &self.env.table);
        block_on(async move {
            let mut items = Vec::new();
            let mut start = None;
            loop {
                let Ok(page) = ddb
                    .scan()
                    .table_name(table)
                    .projection_expression("pk, sk, #owner")
                    .expression_attribute_names("#owner", "owner")
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                else {
                    return 0;
                };
                items.extend(page.items.unwrap_or_default());
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            let field = |i: &Item, n: &str| attr_s(i, n).unwrap_or_default().to_owned();
            let partitions: std::collections::BTreeSet<String> = items
                .iter()
                .filter(|i| {
                    field(i, "owner").ends_with(&ours)
                        || (field(i, "sk").starts_with("M#") && field(i, "sk").ends_with(&ours))
                        || (field(i, "pk").starts_with("I#") && field(i, "pk").ends_with(&ours))
                })
                .map(|i| field(i, "pk"))
                .collect();
            let doomed: Vec<WriteRequest> = items
                .iter()
                .filter(|i| partitions.contains(&field(i, "pk")))
                .filter_map(|i| {
                    let key = HashMap::from([
                        ("pk".to_owned(), AttributeValue::S(field(i, "pk"))),
                        ("sk".to_owned(), AttributeValue::S(field(i, "sk"))),
                    ]);
                    DeleteRequest::builder().set_key(Some(key)).build().ok()
                })
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .collect();
            let n = doomed.len();
            for chunk in doomed.chunks(25) {
                let _ = ddb.batch_write_item().request_items(table, chunk.to_vec()).send().await;
            }
            n
        })
    }

    /// The whole table rendered as bytes (attribute names and values; binary
    /// values raw), for scanning storage for secrets and traces.
    pub fn dump_table(&self) -> Vec<u8> {
        fn render(v: &AttributeValue, out: &mut Vec<u8>) {
            match v {
                AttributeValue::S(s) | AttributeValue::N(s) => out.extend_from_slice(s.as_bytes()),
                AttributeValue::B(b) => out.extend_from_slice(b.as_ref()),
                AttributeValue::Bool(b) => out.extend_from_slice(b.to_string().as_bytes()),
                AttributeValue::Ss(l) | AttributeValue::Ns(l) => {
                    for s in l {
                        out.extend_from_slice(s.as_bytes());
                        out.push(b' ');
                    }
                }
                AttributeValue::Bs(l) => {
                    for b in l {
                        out.extend_from_slice(b.as_ref());
                        out.push(b' ');
                    }
                }
                AttributeValue::L(l) => {
                    for v in l {
                        render(v, out);
                        out.push(b' ');
                    }
                }
                AttributeValue::M(m) => {
                    for (k, v) in m {
                        out.extend_from_slice(k.as_bytes());
                        out.push(b'=');
                        render(v, out);
                        out.push(b' ');
                    }
                }
                _ => out.extend_from_slice(format!("{v:?}").as_bytes()),
            }
        }
        let mut out = Vec::new();
        for item in self.scan(None) {
            let mut names: Vec<&String> = item.keys().collect();
            names.sort();
            for n in names {
                out.extend_from_slice(n.as_bytes());
                out.push(b'=');
                render(&item[n], &mut out);
                out.push(b'\t');
            }
            out.push(b'\n');
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Cognito tokens.

fn user_pool() -> &'static keysrv::cognito::UserPool {
    static POOL: OnceLock<keysrv::cognito::UserPool> = OnceLock::new();
    POOL.get_or_init(|| {
        block_on(keysrv::cognito::UserPool::from_env()).unwrap_or_else(|e| panic!("the Cognito user pool: {e}"))
    })
}

/// A real Cognito access token for `jid` from the emulator's user pool,
/// cached per JID for the life of the process. (Each fetch resets the user's
/// password; JIDs are unique per test process, so processes do not race.)
pub fn cognito_access_token(jid: &str) -> String {
    static CACHE: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = cache.get(jid) {
        return t.clone();
    }
    let pool = user_pool();
    let token = block_on(async {
        let mut last = String::new();
        for attempt in 0..4u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            match pool.access_token(jid).await {
                Ok(t) => return t,
                Err(e) => last = e.to_string(),
            }
        }
        panic!("no Cognito access token for {jid}: {last}")
    });
    cache.insert(jid.to_owned(), token.clone());
    token
}
