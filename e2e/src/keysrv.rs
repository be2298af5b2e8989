//! A `keysrv server` on the embedded backend, and a recording proxy in front
//! of it: one per device, so each device's requests can be counted, and every
//! key keysrv releases to anyone is known to the leak scan.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::{Ledger, WAIT, unique};

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
        assert!(bin.is_file(), "{} is missing (set KEYSRV_BIN)", bin.display());
        bin
    })
}

/// The keysrv binary without the test's own `KEYSRV_*` settings, so a
/// developer's environment cannot point it elsewhere.
fn keysrv_command() -> Command {
    let mut cmd = Command::new(keysrv_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KEYSRV_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub struct Keysrv {
    pub addr: SocketAddr,
    root: PathBuf,
    child: Option<Child>,
}

impl Keysrv {
    pub fn start() -> Self {
        let root = std::env::temp_dir().join(format!("keysrv-e2e-keysrv-{}", unique()));
        std::fs::create_dir_all(&root).expect("temp dir");
        let log = std::fs::File::create(root.join("server.log")).expect("log file");
        let mut child = keysrv_command()
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
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
        let line = rx.recv_timeout(WAIT).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("keysrv listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "keysrv did not report its address (first line {line:?}); log:\n{}",
                std::fs::read_to_string(root.join("server.log")).unwrap_or_default()
            );
        };
        let addr = url.trim_start_matches("http://").parse().expect("address");
        Self { addr, root, child: Some(child) }
    }

    /// A dev access token for `jid` (as an app gets one from its identity
    /// provider).
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
}

impl Drop for Keysrv {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// For `POST /v1/keys/batch`: how many objectids were asked for.
    pub batch_size: Option<usize>,
}

impl Seen {
    pub fn is(&self, method: &str, path_prefix: &str) -> bool {
        self.method == method && self.path.starts_with(path_prefix)
    }
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
    ledger: Arc<Ledger>,
}

/// An HTTP proxy that forwards everything to keysrv and records each
/// request, and every key in a response into the ledger.
pub struct Proxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr, ledger: Arc<Ledger>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: format!("http://{upstream}"),
            http: reqwest::Client::builder().timeout(WAIT).build().expect("reqwest"),
            seen: seen.clone(),
            ledger,
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, seen }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

const HOP_BY_HOP: [&str; 3] = ["connection", "transfer-encoding", "content-length"];

async fn forward(State(s): State<ProxyState>, req: Request) -> Result<Response, StatusCode> {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.map_err(|_| StatusCode::BAD_REQUEST)?;
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let batch_size = (path == "/v1/keys/batch")
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v.get("objectids").and_then(|a| a.as_array()).map(Vec::len));
    let mut upstream = s.http.request(parts.method.clone(), format!("{}{path}", s.upstream)).body(body);
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) && k != "host" {
            upstream = upstream.header(k, v);
        }
    }
    let resp = upstream.send().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        s.ledger.record_keys_in(&json);
    }
    s.seen.lock().unwrap().push(Seen { method: parts.method.to_string(), path, status: status.as_u16(), batch_size });
    let mut out = Response::builder().status(status.as_u16());
    for (k, v) in &headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(bytes)).map_err(|_| StatusCode::BAD_GATEWAY)
}
