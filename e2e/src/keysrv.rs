//! A `keysrv server` on the embedded backend, and a recording proxy in front
//! of it: one per device, so each device's requests can be counted, and every
//! key keysrv releases to anyone is known to the leak scan.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::{Ledger, WAIT};

// The launcher the client's tests and benches use: `keysrv server` on the
// embedded backend in a temporary data directory, and dev tokens for it.
#[path = "../../client/tests/support/mod.rs"]
mod support;

pub use support::{Server as Keysrv, unique};

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
