//! A local `keysrv server` (embedded backend, dev tokens) for the client's
//! tests and benches; each target includes this file and uses part of it.
//!
//! The server binary is `$KEYSRV_BIN`, else `target/<profile>/keysrv`
//! (built with `cargo build -p keysrv --bin keysrv` if it is missing).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keysrv_client::Client;

// ---------------------------------------------------------------------------
// The server under test.

fn keysrv_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("KEYSRV_BIN") {
            return PathBuf::from(p);
        }
        // Test binaries live in <target>/<profile>/deps/.
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
    })
}

pub fn unique() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{nanos:x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A command for the keysrv binary with none of the test's own `KEYSRV_*`
/// settings (so a developer's environment cannot point it elsewhere).
fn keysrv_command() -> Command {
    let mut cmd = Command::new(keysrv_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KEYSRV_") {
            cmd.env_remove(k);
        }
    }
    // Per-caller quotas are a test of their own (tests/…/quotas.rs); these
    // tests create and rotate faster than a person would.
    cmd.env("KEYSRV_QUOTAS", UNLIMITED_QUOTAS);
    // Tests start servers in parallel: none may hold the default metrics port.
    cmd.env("KEYSRV_METRICS_LISTEN", "127.0.0.1:0");
    cmd
}

/// Every per-caller quota off.
pub const UNLIMITED_QUOTAS: &str = "create=0,rotate=0,members=0,files=0";

pub struct Server {
    pub url: String,
    pub addr: SocketAddr,
    root: PathBuf,
    child: Option<Child>,
}

impl Server {
    pub fn start() -> Self {
        let root = std::env::temp_dir().join(format!("keysrv-client-test-{}", unique()));
        std::fs::create_dir_all(&root).expect("temp dir");
        let log = std::fs::File::create(root.join("server.log")).expect("log file");
        let mut child = keysrv_command()
            .arg("server")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(root.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", keysrv_bin().display()));
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
        let addr = url.trim_start_matches("http://").parse().expect("address");
        Self { url, addr, root, child: Some(child) }
    }

    /// A dev token for `jid`, from `keysrv token` (as an app would get one
    /// from its identity provider).
    pub fn token(&self, jid: &str) -> String {
        let out = keysrv_command()
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

    pub fn client(&self, jid: &str) -> Client {
        Client::with_token(&self.url, self.token(jid)).expect("client")
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP requests, as the tests' proxies and canned servers read them.

/// One HTTP/1.1 request: its head (request line and headers) and body.
pub struct Request {
    pub head: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The header names, lower case, sorted.
    pub fn header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim().to_ascii_lowercase()))
            .collect();
        names.sort();
        names
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.head.clone().into_bytes();
        b.extend_from_slice(&self.body);
        b
    }
}

/// Reads one request (head and a Content-Length body) from `stream`, with
/// `buf` holding what was read beyond the previous one; None at end of stream.
pub async fn read_request(stream: &mut (impl tokio::io::AsyncReadExt + Unpin), buf: &mut Vec<u8>) -> Option<Request> {
    let mut tmp = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut req = Request { head, body: Vec::new() };
    let len: usize = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < end + len {
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    req.body = buf[end..end + len].to_vec();
    buf.drain(..end + len);
    Some(req)
}

/// An HTTP server that answers each request with the next canned response
/// (`{url}` in a body becomes the server's own URL) and records the requests.
pub struct Canned {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
}

impl Canned {
    pub async fn start(responses: Vec<(u16, &'static str, &'static str)>) -> Self {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        let own = url.clone();
        // Each connection is served on its own: a client may open a second
        // one while the first is still going back to its pool.
        let responses = std::sync::Arc::new(std::sync::Mutex::new(responses.into_iter()));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (log, responses, own) = (log.clone(), responses.clone(), own.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while let Some(req) = read_request(&mut conn, &mut buf).await {
                        // The request is logged and its response taken under
                        // one lock, so both keep the order of arrival.
                        let next = {
                            let mut log = log.lock().unwrap();
                            log.push(req);
                            responses.lock().unwrap().next()
                        };
                        let Some((status, headers, body)) = next else { return };
                        let body = body.replace("{url}", &own);
                        let resp =
                            format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n{headers}\r\n{body}", body.len());
                        if conn.write_all(resp.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { url, requests }
    }
}
