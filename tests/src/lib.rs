//! The behaviour-test harness: starts a real `keysrv server` process, mints
//! tokens the way the server checks them, and talks to it over real HTTP.
//!
//! The suite in `tests/` only uses what is here, and only through HTTP plus
//! three backend hooks (`token`/`bad_tokens`, `row_counts`, `storage_files`),
//! so that it runs unchanged against either backend, chosen by
//! `KEYSRV_TEST_BACKEND`:
//!
//! - `embedded` (the default): each server on a fresh data directory (SQLite,
//!   a local master key, dev tokens signed with the data directory's key).
//! - `aws`: `keysrv server --backend aws` against the local AWS emulator
//!   (DynamoDB, KMS, Cognito in moto), whose environment comes from
//!   `scripts/emulator.py up`'s env file; tokens are real Cognito access
//!   tokens. One emulator serves the whole run, so its table is shared by
//!   every test: JIDs are unique per test process (`jid`), and the hooks look
//!   only at this process's rows. Run it with `cargo nextest`, which gives
//!   each test its own process.
//!
//! The server binary is `target/<profile>/keysrv`, built once per test binary
//! with `cargo build -p keysrv --bin keysrv` (set `KEYSRV_BIN` to use another
//! binary and skip the build).

pub mod aws;
pub mod fault_proxy;
pub mod template;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keysrv::jwt::{DevIssuer, now_secs};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

pub use reqwest;
pub use serde_json;

/// Pass as the token to send no `Authorization` header at all.
pub const NO_TOKEN: &str = "";

/// How long a server may take to print its address, or to exit after SIGTERM.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The backend under test.

/// Where the server under test keeps its rows and keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite and a master key file in a per-server data directory.
    Embedded,
    /// DynamoDB, KMS and Cognito in the local AWS emulator.
    Aws,
}

/// The backend `KEYSRV_TEST_BACKEND` selects (`embedded` when unset). On
/// `aws`, panics unless the emulator's environment is there and each test
/// runs in its own process (nextest).
pub fn backend() -> Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    *BACKEND.get_or_init(|| match std::env::var("KEYSRV_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("embedded") => Backend::Embedded,
        Ok("aws") => {
            aws::AwsEnv::from_env();
            assert!(
                std::env::var_os("NEXTEST").is_some() || std::env::var_os("KEYSRV_TEST_SHARED_PROCESS_OK").is_some(),
                "KEYSRV_TEST_BACKEND=aws needs one process per test (the tests share the emulator and tell their \
                 rows apart by a per-process JID domain): run `cargo nextest run` (or, for one test at a time \
                 only, set KEYSRV_TEST_SHARED_PROCESS_OK=1)"
            );
            Backend::Aws
        }
        Ok(other) => panic!("KEYSRV_TEST_BACKEND={other:?}: expected \"embedded\" or \"aws\""),
    })
}

/// For tests that exist only on the AWS backend: true there. On the embedded
/// backend, says that the test does not apply and checks that the embedded
/// backend was indeed chosen. (With KEYSRV_TEST_BACKEND=aws and no emulator
/// environment, `backend()` panics.)
pub fn aws_only(test: &str) -> bool {
    match backend() {
        Backend::Aws => {
            let wrapping = &aws::emulator().env.wrapping;
            assert_eq!(wrapping, "kms", "{test} needs the emulator up with --wrapping kms, not {wrapping}");
            true
        }
        Backend::Embedded => {
            let chosen = std::env::var("KEYSRV_TEST_BACKEND").unwrap_or_default();
            assert!(chosen.is_empty() || chosen == "embedded", "KEYSRV_TEST_BACKEND={chosen:?} ran as embedded");
            println!("aws-only test {test}: skipped on the embedded backend (run with KEYSRV_TEST_BACKEND=aws)");
            false
        }
    }
}

/// For tests that exist only on the embedded backend (e.g. of the file
/// server `keysrv server` runs itself; on AWS, S3 serves the files): true
/// there. On the AWS backend, says that the test does not apply and checks
/// that the AWS backend was indeed chosen (mirrors `aws_only`).
pub fn embedded_only(test: &str) -> bool {
    match backend() {
        Backend::Embedded => true,
        Backend::Aws => {
            let chosen = std::env::var("KEYSRV_TEST_BACKEND").unwrap_or_default();
            assert_eq!(chosen, "aws", "KEYSRV_TEST_BACKEND={chosen:?} ran as aws");
            println!("embedded-only test {test}: skipped on the AWS backend (run with KEYSRV_TEST_BACKEND=embedded)");
            false
        }
    }
}

/// The domain of every JID this test process uses, unique to the process
/// (e.g. `t5f3a9c01d2e4b7a8.example.org`), so that tests sharing the AWS
/// backend's table never share users, idempotency keys or owners.
pub fn test_domain() -> &'static str {
    static DOMAIN: OnceLock<String> = OnceLock::new();
    DOMAIN.get_or_init(|| format!("t{:016x}.example.org", unique()))
}

/// A bare JID of this test process: `<local>@<test_domain()>`.
pub fn jid(local: &str) -> String {
    format!("{local}@{}", test_domain())
}

/// Declares statics holding this process's JIDs:
/// `jids! { OWNER = "owner", BOB = "bob" }` makes `*OWNER` (a `&'static str`)
/// `jid("owner")`, and so on.
#[macro_export]
macro_rules! jids {
    ($($name:ident = $local:literal),* $(,)?) => {
        $(static $name: ::std::sync::LazyLock<&'static str> =
            ::std::sync::LazyLock::new(|| $crate::jid($local).leak());)*
    };
}

// ---------------------------------------------------------------------------
// Paths of the API.

pub const CONVERSATIONS: &str = "/v1/conversations";
pub const BATCH: &str = "/v1/keys/batch";

pub fn conversation_path(conversation_id: &str) -> String {
    format!("/v1/conversations/{conversation_id}")
}

pub fn current_key_path(conversation_id: &str) -> String {
    format!("/v1/conversations/{conversation_id}/keys/current")
}

pub fn rotate_path(conversation_id: &str) -> String {
    format!("/v1/conversations/{conversation_id}/keys")
}

pub fn key_path(objectid: &str) -> String {
    format!("/v1/keys/{objectid}")
}

/// `jid` is put in the path as given: percent-encode it first where needed.
pub fn member_path(conversation_id: &str, jid: &str) -> String {
    format!("/v1/conversations/{conversation_id}/members/{jid}")
}

pub fn files_path(conversation_id: &str) -> String {
    format!("/v1/conversations/{conversation_id}/files")
}

pub fn file_path(file_id: &str) -> String {
    format!("/v1/files/{file_id}")
}

// ---------------------------------------------------------------------------
// Small helpers.

/// Decodes a key as the API returns it (padded standard base64) and checks
/// that it is 32 bytes.
#[track_caller]
pub fn decode_key(b64: &str) -> Vec<u8> {
    let bytes = STANDARD.decode(b64).unwrap_or_else(|e| panic!("key {b64:?} is not standard base64: {e}"));
    assert_eq!(bytes.len(), 32, "key {b64:?} is not 32 bytes");
    assert_eq!(STANDARD.encode(&bytes), b64, "key {b64:?} is not canonical padded base64");
    bytes
}

/// Asserts that `s` is an RFC 3339 timestamp.
#[track_caller]
pub fn assert_rfc3339(s: &str) {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    assert!(OffsetDateTime::parse(s, &Rfc3339).is_ok(), "{s:?} is not an RFC 3339 timestamp");
}

/// Asserts that `s` is shaped like a conversation id: 22 characters of
/// unpadded base64url.
#[track_caller]
pub fn assert_conversation_id(s: &str) {
    assert!(
        s.len() == 22 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{s:?} is not 22 characters of base64url"
    );
}

fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ (N.fetch_add(1, Ordering::Relaxed) << 48) ^ (u64::from(std::process::id()) << 32)
}

/// A well-formed conversation id (22 characters of base64url) that names nothing.
pub fn unknown_conversation_id() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&unique().to_le_bytes());
    bytes[8..].copy_from_slice(&unique().to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A well-formed objectid that names nothing.
pub fn unknown_objectid() -> String {
    format!("{}.{}", unknown_conversation_id(), unknown_conversation_id())
}

/// An objectid of an existing conversation with an unknown key part.
pub fn unknown_objectid_in(conversation_id: &str) -> String {
    format!("{conversation_id}.{}", unknown_conversation_id())
}

// ---------------------------------------------------------------------------
// Locating and building the server binary.

fn keysrv_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("KEYSRV_BIN") {
            return PathBuf::from(p);
        }
        // Test binaries live in <target>/<profile dir>/deps/.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .unwrap_or_else(|| panic!("{} is not in <target>/<profile>/deps", exe.display()))
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("profile dir has a parent").to_path_buf();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        };
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(workspace)
            .args(["build", "--quiet", "-p", "keysrv", "--bin", "keysrv", "--profile", &profile, "--target-dir"])
            .arg(&target_dir)
            .stdin(Stdio::null())
            .output()
            .expect("running cargo build -p keysrv");
        assert!(out.status.success(), "cargo build -p keysrv failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let bin = profile_dir.join("keysrv");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

// ---------------------------------------------------------------------------
// The server.

/// Row counts of the backend's tables (conversations, members, keys,
/// idempotency records, files): how tests check that a rejected write wrote nothing.
/// On the AWS backend, the rows of this test process only (see `row_counts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowCounts {
    pub conversations: i64,
    pub members: i64,
    pub keys: i64,
    pub idempotency: i64,
    pub files: i64,
}

/// The `kid` of the emulator's one Cognito signing key.
const COGNITO_EMULATOR_KID: &str = "dummy";

fn sign_rs256(key: &jsonwebtoken::EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("signing a token")
}

/// A running `keysrv server` (on its own data directory, or on the shared
/// emulator). Dropping it kills the process and removes the directory; on
/// AWS, dropping the process's last server also deletes the process's rows
/// from the shared table, unless the test failed (they are left for a look).
pub struct TestServer {
    /// Base URL, e.g. `http://127.0.0.1:41234` (changes on restart).
    pub url: String,
    pub data_dir: PathBuf,
    /// The server's stderr (its JSON logs), appended across restarts.
    pub log_path: PathBuf,
    /// The server's stdout, appended across restarts.
    pub stdout_path: PathBuf,
    root: PathBuf,
    env: Vec<(String, String)>,
    /// `RLIMIT_NOFILE` (soft and hard) for the server process, if set.
    nofile: Option<u64>,
    child: Option<Child>,
    client: Client,
    backend: Backend,
    issuer: OnceLock<DevIssuer>,
    foreign: OnceLock<DevIssuer>,
    issued: Mutex<Vec<String>>,
}

impl TestServer {
    /// Starts `keysrv server` on the backend under test (`backend()`), with a
    /// fresh data directory.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Like `start`, with extra environment variables for the server. Every
    /// `KEYSRV_*` variable of the test's own environment is removed first; on
    /// the AWS backend the emulator's settings are passed on (the `AWS_*`
    /// variables are inherited), and `env` may override them (e.g.
    /// `AWS_ENDPOINT_URL` to go through a `FaultProxy`).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        Self::start_limited(None, env)
    }

    /// Like `start_with_env`, with the server's `RLIMIT_NOFILE` (soft and
    /// hard, so it cannot raise it) set to `nofile`.
    pub fn start_with_nofile(nofile: u64, env: &[(&str, &str)]) -> Self {
        Self::start_limited(Some(nofile), env)
    }

    fn start_limited(nofile: Option<u64>, env: &[(&str, &str)]) -> Self {
        let root = std::env::temp_dir().join(format!("keysrv-test-{}-{:x}", std::process::id(), unique()));
        fs::create_dir_all(&root).expect("creating the test's temp dir");
        let mut server = Self {
            url: String::new(),
            data_dir: root.join("data"),
            log_path: root.join("server.log"),
            stdout_path: root.join("stdout.log"),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            nofile,
            root,
            child: None,
            client: Client::new(String::new()),
            backend: backend(),
            issuer: OnceLock::new(),
            foreign: OnceLock::new(),
            issued: Mutex::new(Vec::new()),
        };
        LIVE_SERVERS.fetch_add(1, Ordering::SeqCst);
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let open_append = |p: &Path| -> File {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap_or_else(|e| panic!("opening {}: {e}", p.display()))
        };
        let stderr = open_append(&self.log_path);
        let mut stdout_log = open_append(&self.stdout_path);
        let mut cmd = match self.nofile {
            None => Command::new(keysrv_bin()),
            Some(n) => {
                // The shell sets the limit and execs the server (same pid).
                let mut sh = Command::new("sh");
                sh.arg("-c").arg(format!("ulimit -n {n} && exec \"$0\" \"$@\"")).arg(keysrv_bin());
                sh
            }
        };
        cmd.arg("server").arg("--listen").arg("127.0.0.1:0").arg("--data-dir").arg(&self.data_dir);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("KEYSRV_") {
                cmd.env_remove(k);
            }
        }
        if self.backend == Backend::Aws {
            cmd.arg("--backend").arg("aws");
            for (k, v) in &aws::emulator().env.server_vars {
                cmd.env(k, v);
            }
        }
        // Per-caller quotas are a test of their own (behaviour/quotas.rs,
        // which sets them): the other tests write faster than a person.
        cmd.env("KEYSRV_QUOTAS", "create=0,rotate=0,members=0,files=0");
        // One sweep at start, none after (on AWS every test's server shares
        // the bucket and the single-threaded emulator); tests of the sweep
        // set their own interval.
        cmd.env("KEYSRV_SWEEP_INTERVAL_SECS", "3600");
        // Many servers run at once: none may hold the default metrics port.
        cmd.env("KEYSRV_METRICS_LISTEN", "127.0.0.1:0");
        // For debugging a failing test: the servers' log filter.
        if let Ok(filter) = std::env::var("KEYSRV_TEST_SERVER_LOG") {
            cmd.env("KEYSRV_LOG", filter);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", keysrv_bin().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = stdout_log.write_all(first.as_bytes());
            let _ = tx.send(first);
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            let _ = stdout_log.write_all(&rest);
        });
        let line = rx.recv_timeout(PROCESS_TIMEOUT).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("keysrv listening on ").map(str::to_owned) else {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "keysrv did not report its address (first stdout line {line:?}, exit {status:?}); its log:\n{}",
                self.log()
            );
        };
        self.child = Some(child);
        self.url = url.clone();
        self.client = Client::new(url);
    }

    /// Sends SIGTERM and waits for the process to exit; panics if it does not
    /// within 30 s.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is not running");
        let sent = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        assert!(sent.is_ok_and(|s| s.success()), "could not send SIGTERM to the server");
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("keysrv did not exit within {PROCESS_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the process with SIGKILL (a crash) and waits for it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("server is not running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// Stops the server (SIGTERM) if it is running, and starts it again on
    /// the same data directory. The URL changes.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let status = self.stop();
            assert!(status.success(), "keysrv exited with {status} after SIGTERM");
        }
        self.spawn();
    }

    /// Sets an environment variable for the server from its next (re)start on.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The backend this server runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A client for this server (cheap to clone; for spawned tasks). It
    /// points at the current URL: get a new one after `restart`.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    fn issuer(&self) -> &DevIssuer {
        self.issuer.get_or_init(|| DevIssuer::load_or_create(&self.data_dir).expect("loading the dev signing key"))
    }

    fn remember(&self, token: &str) {
        self.issued.lock().unwrap_or_else(|p| p.into_inner()).push(token.to_owned());
    }

    /// A valid access token for `jid`: a dev token (one hour) on the embedded
    /// backend, a real Cognito access token from the emulator's user pool on
    /// the AWS backend (cached per JID for the process).
    pub fn token(&self, jid: &str) -> String {
        let token = match self.backend {
            Backend::Embedded => self.issuer().access_token(jid, 3600).expect("signing a token"),
            Backend::Aws => aws::cognito_access_token(jid),
        };
        self.remember(&token);
        token
    }

    /// The claims of a valid access token for `jid` on this backend (the
    /// issuer and app client the server trusts), for tests that change one
    /// claim and sign with `sign_trusted`.
    pub fn access_claims(&self, jid: &str) -> Value {
        let now = now_secs();
        match self.backend {
            Backend::Embedded => keysrv::jwt::access_claims(jid, 3600),
            Backend::Aws => {
                let env = &aws::emulator().env;
                // The shape of the emulator's (and Cognito's) access tokens.
                json!({
                    "iss": env.issuer,
                    "sub": format!("sub-{:016x}", unique()),
                    "client_id": env.client_id,
                    "token_use": "access",
                    "scope": "aws.cognito.signin.user.admin",
                    "username": jid,
                    "iat": now,
                    "auth_time": now,
                    "exp": now + 3600,
                    "jti": format!("jti-{:016x}", unique()),
                })
            }
        }
    }

    /// Signs `claims` with the key the server trusts (the data directory's dev
    /// key; the emulator's Cognito key on AWS), with that key's `kid`.
    pub fn sign_trusted(&self, claims: &Value) -> String {
        match self.backend {
            Backend::Embedded => self.issuer().sign(claims).expect("signing a token"),
            Backend::Aws => {
                static KEY: OnceLock<jsonwebtoken::EncodingKey> = OnceLock::new();
                let key = KEY.get_or_init(|| {
                    jsonwebtoken::EncodingKey::from_rsa_pem(&aws::emulator().env.signing_key_pem())
                        .expect("the emulator's Cognito signing key")
                });
                sign_rs256(key, COGNITO_EMULATOR_KID, claims)
            }
        }
    }

    /// The `kid` of the key the server trusts.
    pub fn trusted_kid(&self) -> String {
        match self.backend {
            Backend::Embedded => {
                let token = self.issuer().sign(&json!({})).expect("signing a token");
                jsonwebtoken::decode_header(&token).ok().and_then(|h| h.kid).expect("the dev key's kid")
            }
            Backend::Aws => COGNITO_EMULATOR_KID.to_owned(),
        }
    }

    /// Tokens for `jid` that must each be refused with 401, with a label:
    /// a bad signature (another RSA key, same `kid`), expired, a wrong
    /// audience (`client_id`), and an ID token. All but the first are signed
    /// with the trusted key, so only the labelled property is wrong.
    pub fn bad_tokens(&self, jid: &str) -> Vec<(&'static str, String)> {
        let now = now_secs();
        let access = self.access_claims(jid);
        let foreign = self.foreign.get_or_init(|| {
            DevIssuer::load_or_create(&self.root.join("foreign-issuer")).expect("creating a foreign signing key")
        });
        let bad_signature = match self.backend {
            Backend::Embedded => foreign.sign(&access).expect("signing a token"),
            Backend::Aws => {
                // DevIssuer keeps its key in this file of its directory.
                let pem = fs::read(self.root.join("foreign-issuer").join("jwt-signing-key.pem"))
                    .expect("reading the foreign signing key");
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("the foreign signing key");
                sign_rs256(&key, COGNITO_EMULATOR_KID, &access)
            }
        };
        let mut expired = access.clone();
        expired["iat"] = json!(now - 7200);
        expired["exp"] = json!(now - 3600);
        let mut wrong_audience = access.clone();
        wrong_audience["client_id"] = json!("some-other-client");
        // An ID token: audience in `aud`, `token_use` = `id`.
        let mut id_token = access.clone();
        let fields = id_token.as_object_mut().expect("claims are an object");
        let client_id = fields.remove("client_id").unwrap_or(Value::Null);
        fields.remove("scope");
        fields.insert("aud".into(), client_id);
        fields.insert("token_use".into(), json!("id"));
        fields.insert("cognito:username".into(), json!(jid));
        fields.insert("email".into(), json!(jid));
        let tokens = vec![
            ("bad signature", bad_signature),
            ("expired", self.sign_trusted(&expired)),
            ("wrong audience", self.sign_trusted(&wrong_audience)),
            ("id token", self.sign_trusted(&id_token)),
        ];
        for (_, t) in &tokens {
            self.remember(t);
        }
        tokens
    }

    /// Every token `token` and `bad_tokens` produced so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The server's log (stderr) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Every file the server wrote its output to (stderr and stdout).
    pub fn output_files(&self) -> Vec<PathBuf> {
        vec![self.log_path.clone(), self.stdout_path.clone()]
    }

    /// Every file of the backend's storage. Embedded: the data directory,
    /// recursively. AWS: the data directory (the server should write nothing
    /// there), a dump of the whole DynamoDB table taken now (every item's
    /// attributes, binary values raw; all tests' rows, since they share it)
    /// and moto's log.
    pub fn storage_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = fs::read_dir(dir) else { return };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir, &mut out);
        out.sort();
        if self.backend == Backend::Aws {
            let emulator = aws::emulator();
            let dump = self.root.join("dynamodb-table.dump");
            fs::write(&dump, emulator.dump_table()).unwrap_or_else(|e| panic!("writing {}: {e}", dump.display()));
            out.push(dump);
            out.extend(emulator.env.moto_log());
        }
        out
    }

    /// The embedded backend's database file (there is none on AWS).
    pub fn sqlite_path(&self) -> PathBuf {
        assert_eq!(self.backend, Backend::Embedded, "only the embedded backend has a SQLite database");
        self.data_dir.join("keysrv.sqlite3")
    }

    /// The embedded backend's directory of stored file bytes (`<data dir>/files`).
    pub fn files_dir(&self) -> PathBuf {
        assert_eq!(self.backend, Backend::Embedded, "only the embedded backend stores files in its data directory");
        self.data_dir.join("files")
    }

    /// The names of every entry of `files_dir()`, sorted, temporary
    /// (`.tmp-*`) upload files included.
    pub fn files_dir_entries(&self) -> Vec<String> {
        let dir = self.files_dir();
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Are bytes stored under this storage key (the last path segment of a
    /// file's upload URL)? Embedded: a file of that name in `files_dir()`.
    /// AWS: `HeadObject` on the files bucket finds it.
    /// (A tombstone — an empty object that keeps a still-live upload URL
    /// from storing bytes again — holds no bytes.)
    pub fn file_stored(&self, storage_key: &str) -> bool {
        match self.backend {
            Backend::Embedded => self.files_dir().join(storage_key).exists(),
            Backend::Aws => {
                let emu = aws::emulator();
                emu.head_object(storage_key).is_some() && !emu.is_tombstone(storage_key)
            }
        }
    }

    /// Counts the rows of the backend's tables (read-only; the server may be
    /// running). Embedded: every row of the server's own database. AWS (one
    /// table shared by every test): the rows of this test process, i.e. the
    /// conversations owned by a JID of `test_domain()` with their member,
    /// key and file items, and the idempotency records of such callers.
    /// Forgets a conversation the test is done with, on AWS: its rows go
    /// behind the server's back, so the table stays small. moto copies the
    /// whole table on every TransactWriteItems and scans it in Python, so a
    /// test that makes hundreds of conversations would otherwise slow down
    /// with each one. (On SQLite a count costs nothing: no-op.)
    pub fn discard_conversation(&self, conversation_id: &str) {
        if self.backend == Backend::Aws {
            aws::emulator().delete_conversation_items(conversation_id);
        }
    }

    pub fn row_counts(&self) -> RowCounts {
        match self.backend {
            Backend::Embedded => self.sqlite_row_counts(),
            Backend::Aws => aws_row_counts(),
        }
    }

    fn sqlite_row_counts(&self) -> RowCounts {
        use rusqlite::{Connection, OpenFlags};
        let conn = Connection::open_with_flags(self.sqlite_path(), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("opening the database read-only");
        conn.busy_timeout(Duration::from_secs(5)).expect("busy_timeout");
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("counting {table}: {e}"))
        };
        RowCounts {
            conversations: count("conversations"),
            members: count("members"),
            keys: count("keys"),
            idempotency: count("idempotency"),
            files: count("files"),
        }
    }
}

fn aws_row_counts() -> RowCounts {
    use std::collections::BTreeSet;
    let ours = format!("@{}", test_domain());
    let items = aws::emulator().scan(Some("pk, sk, #owner"));
    let field = |item: &aws::Item, name: &str| aws::attr_s(item, name).unwrap_or_default().to_owned();
    let conversations: BTreeSet<String> = items
        .iter()
        .filter(|i| field(i, "sk") == "M" && field(i, "owner").ends_with(&ours))
        .map(|i| field(i, "pk"))
        .collect();
    let in_ours = |prefix: &str| -> i64 {
        items.iter().filter(|i| field(i, "sk").starts_with(prefix) && conversations.contains(&field(i, "pk"))).count()
            as i64
    };
    let idempotency =
        items.iter().filter(|i| field(i, "pk").starts_with("I#") && field(i, "pk").ends_with(&ours)).count() as i64;
    RowCounts {
        conversations: conversations.len() as i64,
        members: in_ours("M#"),
        keys: in_ours("K#"),
        idempotency,
        files: in_ours("F#"),
    }
}

impl Deref for TestServer {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// `TestServer`s alive in this process.
static LIVE_SERVERS: AtomicU64 = AtomicU64::new(0);

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let last = LIVE_SERVERS.fetch_sub(1, Ordering::SeqCst) == 1;
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("--- last lines of the keysrv log ({}) ---\n{}", self.log_path.display(), tail.join("\n"));
            if last && self.backend == Backend::Aws {
                eprintln!("--- this test's rows are left in the emulator's table: JIDs @{} ---", test_domain());
            }
        } else if last && self.backend == Backend::Aws {
            // The AWS counterpart of removing the data directory. It also keeps
            // the shared table small: the emulator copies the whole table on
            // every transaction.
            aws::emulator().delete_rows_of(test_domain());
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

// ---------------------------------------------------------------------------
// The HTTP client.

/// A response: status, headers, and the body both raw and as JSON
/// (`Value::Null` when empty or not JSON).
#[derive(Clone, Debug)]
pub struct Resp {
    /// `METHOD path`, for messages.
    pub request: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn describe(&self) -> String {
        format!("{} -> {} {}", self.request, self.status, String::from_utf8_lossy(&self.raw))
    }

    /// Asserts the status.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status: {}", self.describe());
        self
    }

    /// Asserts `Cache-Control: no-store`.
    #[track_caller]
    pub fn expect_no_store(&self) -> &Self {
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "missing Cache-Control: no-store: {}",
            self.describe()
        );
        self
    }

    /// Asserts an RFC 9457 problem response with this status: content type
    /// `application/problem+json`, and `type`, `title`, `status` and `detail`,
    /// and `Cache-Control: no-store`.
    #[track_caller]
    pub fn expect_problem(&self, status: u16) -> &Self {
        if let Some(complaint) = self.problem_complaint(status) {
            panic!("{complaint}");
        }
        self
    }

    /// What is wrong with this response as a problem response with this
    /// status, if anything (for tests that collect every failure first).
    pub fn problem_complaint(&self, status: u16) -> Option<String> {
        let ct = self.header("content-type").unwrap_or_default();
        let b = &self.body;
        let complaint = if self.status != status {
            format!("expected {status}")
        } else if !ct.starts_with("application/problem+json") {
            format!("content type {ct:?} is not problem+json")
        } else if b["type"].as_str().is_none_or(str::is_empty) {
            "problem without type".to_owned()
        } else if b["title"].as_str().is_none_or(str::is_empty) {
            "problem without title".to_owned()
        } else if b["detail"].as_str().is_none_or(str::is_empty) {
            "problem without detail".to_owned()
        } else if b["status"].as_u64() != Some(u64::from(status)) {
            "problem status field differs".to_owned()
        } else if self.header("cache-control") != Some("no-store") {
            "no Cache-Control: no-store".to_owned()
        } else {
            return None;
        };
        Some(format!("{complaint}: {}", self.describe()))
    }

    /// Asserts a problem response of this status and problem type
    /// (`urn:keysrv:problem:<name>`).
    #[track_caller]
    pub fn expect_type(&self, status: u16, name: &str) -> &Self {
        if let Some(c) = self.problem_complaint(status) {
            panic!("{c}");
        }
        assert_eq!(
            self.body["type"].as_str(),
            Some(format!("urn:keysrv:problem:{name}").as_str()),
            "{}",
            self.describe()
        );
        self
    }

    /// A string field of the JSON body.
    #[track_caller]
    pub fn str(&self, field: &str) -> String {
        match &self.body[field] {
            Value::String(s) => s.clone(),
            _ => panic!("no string field {field:?}: {}", self.describe()),
        }
    }

    /// The decoded `key` field of a key object.
    #[track_caller]
    pub fn key_bytes(&self) -> Vec<u8> {
        decode_key(&self.str("key"))
    }
}

/// What `create_conversation` returned.
#[derive(Clone, Debug)]
pub struct Created {
    pub conversation_id: String,
    pub objectid: String,
    pub key: Vec<u8>,
    pub body: Value,
}

/// A key object, decoded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub objectid: String,
    pub key: Vec<u8>,
}

#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(base: String) -> Self {
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("building the HTTP client");
        Self { base, http }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// A client for the same server that opens a new connection for every
    /// request (no keep-alive pool).
    pub fn fresh(&self) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .expect("building the HTTP client");
        Self { base: self.base.clone(), http }
    }

    /// Sends a request. `token` empty means no `Authorization` header;
    /// `body` is sent as is. Panics on a transport error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        headers: &[(&str, &[u8])],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let what = format!("{method} {path}");
        self.try_send(method, path, token, headers, body).await.unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Like `send`, returning transport errors (with their causes) instead of panicking.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        headers: &[(&str, &[u8])],
        body: Option<Vec<u8>>,
    ) -> Result<Resp, String> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
            let value = HeaderValue::from_bytes(value).expect("header value");
            req = req.header(name, value);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let chain = |e: reqwest::Error| {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            msg
        };
        let resp = req.send().await.map_err(chain)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.bytes().await.map_err(chain)?.to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Ok(Resp { request: format!("{method} {path}"), status, headers, body, raw })
    }

    fn json_body(body: Option<&Value>) -> Option<Vec<u8>> {
        body.map(|b| serde_json::to_vec(b).expect("serializing JSON"))
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, token, &[], None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Option<&Value>) -> Resp {
        self.send(Method::POST, path, token, &[], Self::json_body(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Option<&Value>) -> Resp {
        self.send(Method::PUT, path, token, &[], Self::json_body(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(Method::DELETE, path, token, &[], None).await
    }

    // --- The API's operations, asserting success. ---

    /// `POST /v1/conversations`; asserts 201.
    pub async fn create_conversation(&self, token: &str, members: &[&str], history: &str) -> Created {
        let r = self.post(CONVERSATIONS, token, Some(&json!({"members": members, "history": history}))).await;
        r.expect(201);
        let key = &r.body["key"];
        Created {
            conversation_id: r.str("conversation_id"),
            objectid: key["objectid"].as_str().expect("key.objectid").to_owned(),
            key: decode_key(key["key"].as_str().expect("key.key")),
            body: r.body.clone(),
        }
    }

    /// `GET /v1/conversations/{id}`; asserts 200.
    pub async fn conversation(&self, token: &str, conversation_id: &str) -> Value {
        let r = self.get(&conversation_path(conversation_id), token).await;
        r.expect(200);
        r.body
    }

    /// The current objectid, as `GET /v1/conversations/{id}` shows it.
    pub async fn current_objectid(&self, token: &str, conversation_id: &str) -> String {
        let c = self.conversation(token, conversation_id).await;
        c["current_objectid"].as_str().expect("current_objectid").to_owned()
    }

    /// `GET .../keys/current`; asserts 200.
    pub async fn current_key(&self, token: &str, conversation_id: &str) -> Key {
        let r = self.get(&current_key_path(conversation_id), token).await;
        r.expect(200);
        Key { objectid: r.str("objectid"), key: r.key_bytes() }
    }

    /// `POST .../keys`; asserts 201.
    pub async fn rotate(&self, token: &str, conversation_id: &str) -> Key {
        let r = self.post(&rotate_path(conversation_id), token, None).await;
        r.expect(201);
        Key { objectid: r.str("objectid"), key: r.key_bytes() }
    }

    /// `GET /v1/keys/{objectid}`: `Some(bytes)` on 200, `None` on 404;
    /// anything else panics.
    pub async fn key(&self, token: &str, objectid: &str) -> Option<Vec<u8>> {
        let r = self.get(&key_path(objectid), token).await;
        match r.status {
            200 => {
                assert_eq!(r.str("objectid"), objectid, "{}", r.describe());
                Some(r.key_bytes())
            }
            404 => {
                r.expect_problem(404);
                None
            }
            _ => panic!("unexpected status: {}", r.describe()),
        }
    }

    /// `POST /v1/keys/batch`; asserts 200 and returns (keys by objectid, missing).
    pub async fn batch(&self, token: &str, objectids: &[&str]) -> (Vec<Key>, Vec<String>) {
        let r = self.post(BATCH, token, Some(&json!({ "objectids": objectids }))).await;
        r.expect(200).expect_no_store();
        let keys = r.body["keys"]
            .as_array()
            .expect("keys array")
            .iter()
            .map(|k| Key {
                objectid: k["objectid"].as_str().expect("objectid").to_owned(),
                key: decode_key(k["key"].as_str().expect("key")),
            })
            .collect();
        let missing = r.body["missing"]
            .as_array()
            .expect("missing array")
            .iter()
            .map(|m| m.as_str().expect("missing id").to_owned())
            .collect();
        (keys, missing)
    }

    /// `PUT .../members/{jid}`; asserts 200.
    pub async fn put_member(&self, token: &str, conversation_id: &str, jid: &str, role: &str) -> Value {
        let r = self.put(&member_path(conversation_id, jid), token, Some(&json!({ "role": role }))).await;
        r.expect(200);
        r.body
    }

    /// `DELETE .../members/{jid}`; asserts 200 and returns the new current objectid.
    pub async fn remove_member(&self, token: &str, conversation_id: &str, jid: &str) -> String {
        let r = self.delete(&member_path(conversation_id, jid), token).await;
        r.expect(200);
        r.str("current_objectid")
    }
}
