//! A fault-injecting HTTP proxy between `keysrv server --backend aws` and
//! the emulator: point the server's `AWS_ENDPOINT_URL` at `FaultProxy::url`.
//!
//! Every request is forwarded unchanged (method, path, query, headers, body;
//! the emulator does not check SigV4 signatures, so the changed `Host` does
//! not matter) and counted by its `X-Amz-Target` (e.g.
//! `DynamoDB_20120810.BatchGetItem`, `TrentService.Decrypt`). A rule set for
//! a target answers every matching request with a canned AWS error instead,
//! until the rules are cleared: the SDK retries (3 attempts), so a one-shot
//! fault would be hidden.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// What a matching request gets instead of the emulator's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400 `ThrottlingException` ("Rate exceeded").
    Throttling,
    /// HTTP 503 `ServiceUnavailable`.
    Unavailable,
    /// HTTP 400 `TransactionCanceledException` with one
    /// `ConditionalCheckFailed` reason (for `TransactWriteItems`).
    ConditionalCheckFailed,
}

impl Fault {
    pub fn label(self) -> &'static str {
        match self {
            Fault::Throttling => "throttling",
            Fault::Unavailable => "unavailable",
            Fault::ConditionalCheckFailed => "conditional failure",
        }
    }
}

#[derive(Default)]
struct Inner {
    rules: BTreeMap<String, Fault>,
    /// Requests per target (forwarded or faulted).
    calls: BTreeMap<String, usize>,
    /// Requests answered with a fault, per target.
    faulted: BTreeMap<String, usize>,
    /// Every request, in arrival order: its target and its body.
    requests: Vec<(String, Vec<u8>)>,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. the emulator's endpoint) on
    /// 127.0.0.1, on the harness's runtime.
    pub fn start(upstream: &str) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder().build().expect("building the proxy's HTTP client"),
            inner: Mutex::new(Inner::default()),
        });
        let listener = crate::aws::block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("binding the proxy");
        let url = format!("http://{}", listener.local_addr().expect("the proxy's address"));
        let router = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let task = crate::aws::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url, shared, task }
    }

    /// From now on, answers every request for `target` with `fault`.
    pub fn set(&self, target: &str, fault: Fault) {
        self.shared.lock().rules.insert(target.to_owned(), fault);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.shared.lock().rules.clear();
    }

    /// Requests per target since the last `reset_counts`.
    pub fn calls(&self) -> BTreeMap<String, usize> {
        self.shared.lock().calls.clone()
    }

    /// Requests answered with a fault, per target, since the last `reset_counts`.
    pub fn faulted(&self) -> BTreeMap<String, usize> {
        self.shared.lock().faulted.clone()
    }

    /// Every request since the last `reset_counts`, in arrival order: its
    /// target and its body (e.g. to see which items a `TransactWriteItems`
    /// holds).
    pub fn requests(&self) -> Vec<(String, Vec<u8>)> {
        self.shared.lock().requests.clone()
    }

    pub fn reset_counts(&self) {
        let mut inner = self.shared.lock();
        inner.calls.clear();
        inner.faulted.clear();
        inner.requests.clear();
    }

    /// Requests since the last `reset_counts` whose target starts with `prefix`
    /// (`DynamoDB_20120810.`, `TrentService.`).
    pub fn calls_with_prefix(&self, prefix: &str) -> usize {
        self.shared.lock().calls.iter().filter(|(t, _)| t.starts_with(prefix)).map(|(_, n)| n).sum()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn canned(fault: Fault, target: &str) -> Response {
    let kms = target.starts_with("TrentService.");
    let (status, body) = match fault {
        Fault::Throttling if kms => {
            (StatusCode::BAD_REQUEST, json!({"__type": "ThrottlingException", "message": "Rate exceeded"}))
        }
        Fault::Throttling => (
            StatusCode::BAD_REQUEST,
            json!({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"}),
        ),
        Fault::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, json!({"__type": "ServiceUnavailable"})),
        Fault::ConditionalCheckFailed => (
            StatusCode::BAD_REQUEST,
            json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed]",
                "CancellationReasons": [{"Code": "ConditionalCheckFailed"}],
            }),
        ),
    };
    let content_type = if kms { "application/x-amz-json-1.1" } else { "application/x-amz-json-1.0" };
    let mut resp = Response::new(Body::from(serde_json::to_vec(&body).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert("x-amzn-requestid", HeaderValue::from_static("keysrv-tests-fault-proxy"));
    resp
}

fn bad_gateway(why: String) -> Response {
    let mut resp = Response::new(Body::from(why));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return bad_gateway(format!("reading the request body: {e}")),
    };
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let fault = {
        let mut inner = shared.lock();
        *inner.calls.entry(target.clone()).or_default() += 1;
        inner.requests.push((target.clone(), body.to_vec()));
        let fault = inner.rules.get(&target).copied();
        if fault.is_some() {
            *inner.faulted.entry(target.clone()).or_default() += 1;
        }
        fault
    };
    if let Some(fault) = fault {
        return canned(fault, &target);
    }
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut forward = shared.http.request(parts.method.clone(), format!("{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        if !matches!(name, &header::HOST | &header::CONTENT_LENGTH | &header::CONNECTION | &header::TRANSFER_ENCODING) {
            forward = forward.header(name, value);
        }
    }
    let upstream = match forward.body(body).send().await {
        Ok(r) => r,
        Err(e) => return bad_gateway(format!("forwarding to the emulator: {e}")),
    };
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let bytes = match upstream.bytes().await {
        Ok(b) => b,
        Err(e) => return bad_gateway(format!("reading the emulator's response: {e}")),
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    for (name, value) in &headers {
        if !matches!(name, &header::CONTENT_LENGTH | &header::CONNECTION | &header::TRANSFER_ENCODING) {
            resp.headers_mut().append(name, value.clone());
        }
    }
    resp
}
