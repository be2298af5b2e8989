//! New-device catch-up against a real local `keysrv server` (embedded
//! backend, dev tokens), started the way `tests/http.rs` starts it.
//!
//! `cargo bench -p keysrv-client --bench catch_up`
//!
//! Romeo creates a conversation with Juliet and rotates it to 10 keys, then
//! seals 1,000 messages, 100 under each key in order. Each repetition is a
//! new Juliet device: a fresh `Client` (empty key cache; built before the
//! clock starts) that, timed, parses the 1,000 archived stanzas (MAM
//! results), fetches the distinct keys with one `keys_batch` call and opens
//! every message. HTTP requests are counted at the client's token provider,
//! which the client asks once per request it sends.
//!
//! The server binary is `$KEYSRV_BIN`, else `target/<profile>/keysrv`
//! (built with `cargo build -p keysrv --bin keysrv` if it is missing).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keysrv_client::stanza::{ReceivedMessage, message_children};
use keysrv_client::{Client, Content, History, KeyObject, TokenProvider, Zeroizing, async_trait};

const ROMEO: &str = "romeo@montague.lit";
const JULIET: &str = "juliet@capulet.lit";
const KEYS: usize = 10;
const MESSAGES: usize = 1_000;
const REPETITIONS: usize = 7;

fn keysrv_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYSRV_BIN") {
        return PathBuf::from(p);
    }
    // Bench binaries live in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/<profile>").to_path_buf();
    let bin = profile_dir.join("keysrv");
    if !bin.is_file() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        };
        let target_dir = profile_dir.parent().expect("target dir");
        eprintln!("building the keysrv server ({profile} profile)…");
        let out = Command::new(cargo)
            .current_dir(workspace)
            .args(["build", "--quiet", "-p", "keysrv", "--bin", "keysrv", "--profile", &profile, "--target-dir"])
            .arg(target_dir)
            .stdin(Stdio::null())
            .output()
            .expect("running cargo build -p keysrv");
        assert!(out.status.success(), "cargo build -p keysrv failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(bin.is_file(), "{} is missing", bin.display());
    bin
}

/// The keysrv binary without any of the caller's `KEYSRV_*` settings.
fn keysrv_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KEYSRV_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

struct Server {
    bin: PathBuf,
    url: String,
    root: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start() -> Self {
        let bin = keysrv_bin();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let root = std::env::temp_dir().join(format!("keysrv-client-bench-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&root).expect("temp dir");
        let log = std::fs::File::create(root.join("server.log")).expect("log file");
        let mut child = keysrv_command(&bin)
            .arg("server")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(root.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first);
            let _ = reader.read_to_end(&mut Vec::new());
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("keysrv listening on ").map(str::to_owned) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "keysrv did not report its address (first line {line:?}); log:\n{}",
                std::fs::read_to_string(root.join("server.log")).unwrap_or_default()
            );
        };
        Self { bin, url, root, child: Some(child) }
    }

    /// A dev token for `jid`, from `keysrv token`.
    fn token(&self, jid: &str) -> String {
        let out = keysrv_command(&self.bin)
            .arg("token")
            .arg("--data-dir")
            .arg(self.root.join("data"))
            .arg(jid)
            .stdin(Stdio::null())
            .output()
            .expect("running keysrv token");
        assert!(out.status.success(), "keysrv token failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8 token").trim().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A fixed token that counts how often the client asks for it: once per
/// HTTP request sent.
struct CountingToken {
    token: String,
    requests: Arc<AtomicUsize>,
}

#[async_trait]
impl TokenProvider for CountingToken {
    async fn token(&self) -> Result<Zeroizing<String>, String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(Zeroizing::new(self.token.clone()))
    }
}

/// Message `i` as Juliet's archive returns it: a MAM result wrapping the
/// original message with its `<encrypted>` children.
fn archived(i: usize, element: &str) -> String {
    format!(
        "<message xmlns='jabber:client' to='{JULIET}/new-phone'><result xmlns='urn:xmpp:mam:2' queryid='q1' \
         id='a{i}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' \
         stamp='2025-01-31T09:30:00Z'/><message xmlns='jabber:client' from='{ROMEO}/orchard' to='{JULIET}' \
         type='chat' id='m{i}'>{}</message></forwarded></result></message>",
        message_children(element)
    )
}

fn text(i: usize) -> String {
    format!("message {i}: {}", "It is the east, and Juliet is the sun. ".repeat(5))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = Server::start();
    let romeo = Client::with_token(&server.url, server.token(ROMEO)).expect("client");
    let juliet_token = server.token(JULIET);

    // Setup (not timed): 10 keys, 1,000 sealed messages, 100 per key.
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.expect("create");
    let mut keys: Vec<KeyObject> = vec![created.key];
    while keys.len() < KEYS {
        keys.push(romeo.rotate(&created.conversation_id, None).await.expect("rotate"));
    }
    let distinct: BTreeSet<&str> = keys.iter().map(|k| k.objectid.as_str()).collect();
    assert_eq!(distinct.len(), KEYS);
    let archive: Vec<String> = (0..MESSAGES)
        .map(|i| {
            let key = &keys[i * KEYS / MESSAGES];
            archived(i, &key.seal(ROMEO, JULIET, &Content::text(text(i))).expect("seal"))
        })
        .collect();
    let archive_bytes: usize = archive.iter().map(String::len).sum();

    let mut totals_ms = Vec::new();
    let mut fetch_ms = Vec::new();
    let mut requests_seen = Vec::new();
    for _ in 0..REPETITIONS {
        let requests = Arc::new(AtomicUsize::new(0));
        let juliet =
            Client::builder(&server.url, CountingToken { token: juliet_token.clone(), requests: requests.clone() })
                .build()
                .expect("client");
        assert_eq!(juliet.cached_keys(), 0);

        let start = Instant::now();
        let messages: Vec<ReceivedMessage> =
            archive.iter().map(|s| ReceivedMessage::parse(s).expect("parse")).collect();
        let objectids: BTreeSet<&str> =
            messages.iter().filter_map(|m| m.encrypted.as_ref()).map(|e| e.objectid.as_str()).collect();
        let fetch_start = Instant::now();
        let batch = juliet.keys_batch(&objectids).await.expect("keys_batch");
        fetch_ms.push(fetch_start.elapsed().as_secs_f64() * 1e3);
        let mut opened = 0usize;
        for (i, m) in messages.iter().enumerate() {
            let envelope = juliet.open_message(m).await.expect("open");
            assert_eq!(envelope.body(), Some(text(i).as_str()));
            opened += 1;
        }
        let elapsed = start.elapsed();

        assert_eq!(batch.found.len(), KEYS);
        assert!(batch.missing.is_empty());
        assert_eq!(opened, MESSAGES);
        totals_ms.push(elapsed.as_secs_f64() * 1e3);
        requests_seen.push(requests.load(Ordering::Relaxed));
    }

    assert!(requests_seen.iter().all(|&r| r == 1), "key requests per catch-up: {requests_seen:?}");
    let runs = format!("{totals_ms:.1?}");
    let med = median(&mut totals_ms);
    println!("New-device catch-up: {MESSAGES} archived messages over {KEYS} keys, local keysrv at {}", server.url);
    println!("  archive: {archive_bytes} bytes of MAM results ({} bytes per stanza)", archive_bytes / MESSAGES);
    println!("  repetitions: {REPETITIONS} (fresh client each; runs in ms: {runs})");
    println!("  median total: {med:.2} ms (parse + one keys_batch + {MESSAGES} opens)");
    println!("  of which the key fetch (keys_batch, new connection): {:.2} ms median", median(&mut fetch_ms));
    println!("  per message: {:.2} µs", med * 1e3 / MESSAGES as f64);
    println!("  HTTP requests for keys per catch-up: {} (keys_batch for {KEYS} objectids)", requests_seen[0]);
}
