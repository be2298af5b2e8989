//! A fault-injecting HTTP proxy between `keysrv server --backend aws` and
//! the emulator: point the server's `AWS_ENDPOINT_URL` at `FaultProxy::url`.
//!
//! Every request is forwarded unchanged (method, path, query, headers, body;
//! the emulator does not check SigV4 signatures, so the changed `Host` does
//! not matter) and counted by its operation, the "target": its
//! `X-Amz-Target` (e.g. `DynamoDB_20120810.BatchGetItem`,
//! `TrentService.Decrypt`), or for S3, whose REST requests have none,
//! `S3.<Operation>` (e.g. `S3.DeleteObjects`, `S3.PutObject`) read from the
//! method, path and query of a request signed for the `s3` service (by its
//! `Authorization` header, or by the `X-Amz-Credential` of a presigned URL:
//! a presigned URL signed for the proxy's address comes through it as well).
//! A rule set for a target answers every matching request with a canned AWS
//! error instead (XML for S3, JSON otherwise), until the rules are cleared:
//! the SDK retries (3 attempts), so a one-shot fault would be hidden.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use serde_json::{Value, json};

/// The prefix of the targets of S3 requests (`S3.PutObject`, ...).
pub const S3: &str = "S3.";

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

/// Runs once, in the middle of a read (see `FaultProxy::interleave`).
pub type Action = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send>;

/// A write to run inside the next DynamoDB read of an item with this sort key.
struct Interleave {
    sk: String,
    action: Action,
}

#[derive(Default)]
struct Inner {
    rules: BTreeMap<String, Fault>,
    interleave: Option<Interleave>,
    /// How the last interleaved read went: `split` (a `BatchGetItem`, read
    /// item by item around the action) or `atomic` (a `TransactGetItems`,
    /// the action after it).
    interleaved: Vec<&'static str>,
    /// Requests per target (forwarded or faulted).
    calls: BTreeMap<String, usize>,
    /// Requests answered with a fault, per target.
    faulted: BTreeMap<String, usize>,
    /// Every request, in arrival order: its target and its body.
    requests: Vec<(String, Vec<u8>)>,
    /// The same requests, in full.
    recorded: Vec<Recorded>,
}

/// One request the proxy saw, as it arrived.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `X-Amz-Target`, or `S3.<Operation>` (empty if neither).
    pub target: String,
    pub method: Method,
    /// Path and query, e.g. `/bucket/key?X-Amz-Algorithm=...`.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
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

    /// Runs `action` inside the next DynamoDB read of an item whose sort key
    /// is `sk`, the way DynamoDB may interleave a write with that read: a
    /// `BatchGetItem` is isolated only per item, so it is read in two parts,
    /// the matching item first, then (after the action) the others; a
    /// `TransactGetItems` is serializable, so it is read whole and the
    /// action runs after it.
    pub fn interleave(&self, sk: &str, action: Action) {
        self.shared.lock().interleave = Some(Interleave { sk: sk.to_owned(), action });
    }

    /// How the interleaved reads went, in order (`split` or `atomic`).
    pub fn interleaved(&self) -> Vec<&'static str> {
        self.shared.lock().interleaved.clone()
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

    /// Every request since the last `reset_counts`, in arrival order, with
    /// its method, path, query and headers (e.g. an S3 request's object key,
    /// or the headers a presigned upload was sent with).
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.lock().recorded.clone()
    }

    pub fn reset_counts(&self) {
        let mut inner = self.shared.lock();
        inner.calls.clear();
        inner.faulted.clear();
        inner.requests.clear();
        inner.recorded.clear();
    }

    /// Requests since the last `reset_counts` whose target starts with `prefix`
    /// (`DynamoDB_20120810.`, `TrentService.`, `S3.`).
    pub fn calls_with_prefix(&self, prefix: &str) -> usize {
        self.shared.lock().calls.iter().filter(|(t, _)| t.starts_with(prefix)).map(|(_, n)| n).sum()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// S3's errors are XML: `ServiceUnavailable` and `SlowDown` (its throttling)
/// are both HTTP 503; a failed precondition is 412.
fn canned_s3(fault: Fault, method: &Method) -> Response {
    let (status, code, message) = match fault {
        Fault::Throttling => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "Please reduce your request rate."),
        Fault::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "Service is unable to handle request.")
        }
        Fault::ConditionalCheckFailed => (
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        ),
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>keysrv-tests-fault-proxy</RequestId><HostId>keysrv-tests</HostId></Error>"
    );
    // A HEAD answer has no body (the SDK reads the status alone).
    let body = if *method == Method::HEAD { Body::empty() } else { Body::from(xml) };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    resp.headers_mut().insert("x-amz-request-id", HeaderValue::from_static("keysrv-tests-fault-proxy"));
    resp
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
    let target = target_of(&parts.method, &parts.uri, &parts.headers);
    let fault = {
        let mut inner = shared.lock();
        *inner.calls.entry(target.clone()).or_default() += 1;
        inner.requests.push((target.clone(), body.to_vec()));
        inner.recorded.push(Recorded {
            target: target.clone(),
            method: parts.method.clone(),
            path_and_query: parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned(),
            headers: parts.headers.clone(),
            body: body.to_vec(),
        });
        let fault = inner.rules.get(&target).copied();
        if fault.is_some() {
            *inner.faulted.entry(target.clone()).or_default() += 1;
        }
        fault
    };
    if let Some(fault) = fault {
        return if target.starts_with(S3) { canned_s3(fault, &parts.method) } else { canned(fault, &target) };
    }
    if let Some(resp) = interleaved(&shared, &parts, &target, &body).await {
        return resp;
    }
    forward(&shared, &parts, body).await
}

/// The sort keys a `BatchGetItem` or `TransactGetItems` body asks for.
fn read_sort_keys(target: &str, body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match target {
        "DynamoDB_20120810.BatchGetItem" => {
            for t in body["RequestItems"].as_object().into_iter().flat_map(|m| m.values()) {
                for k in t["Keys"].as_array().into_iter().flatten() {
                    out.extend(k["sk"]["S"].as_str().map(str::to_owned));
                }
            }
        }
        "DynamoDB_20120810.TransactGetItems" => {
            for item in body["TransactItems"].as_array().into_iter().flatten() {
                out.extend(item["Get"]["Key"]["sk"]["S"].as_str().map(str::to_owned));
            }
        }
        _ => {}
    }
    out
}

/// Carries out an `interleave` rule on this request, if it matches.
async fn interleaved(
    shared: &Arc<Shared>,
    parts: &http::request::Parts,
    target: &str,
    body: &[u8],
) -> Option<Response> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let rule = {
        let mut inner = shared.lock();
        let wanted = inner.interleave.as_ref()?.sk.clone();
        if !read_sort_keys(target, &json).contains(&wanted) {
            return None;
        }
        inner.interleave.take()?
    };
    if target.ends_with(".TransactGetItems") {
        let resp = forward(shared, parts, axum::body::Bytes::copy_from_slice(body)).await;
        (rule.action)().await;
        shared.lock().interleaved.push("atomic");
        return Some(resp);
    }
    // BatchGetItem: the matching key alone, the action, then the rest.
    let (mut first, mut rest) = (json.clone(), json.clone());
    for (req, keep_match) in [(&mut first, true), (&mut rest, false)] {
        for t in req["RequestItems"].as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
            if let Some(keys) = t["Keys"].as_array_mut() {
                keys.retain(|k| (k["sk"]["S"].as_str() == Some(rule.sk.as_str())) == keep_match);
            }
        }
    }
    let read = |req: &Value| {
        let body = axum::body::Bytes::from(serde_json::to_vec(req).unwrap_or_default());
        forward(shared, parts, body)
    };
    let one = read(&first).await;
    (rule.action)().await;
    let two = read(&rest).await;
    let (status, headers) = (two.status(), two.headers().clone());
    let body_of = |r: Response| async move {
        let bytes = axum::body::to_bytes(r.into_body(), 64 << 20).await.unwrap_or_default();
        serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)
    };
    let (mut merged, extra) = (body_of(one).await, body_of(two).await);
    for (table, items) in extra["Responses"].as_object().into_iter().flatten() {
        let all = merged["Responses"][table].as_array().cloned().unwrap_or_default();
        merged["Responses"][table] =
            Value::Array(all.into_iter().chain(items.as_array().cloned().unwrap_or_default()).collect());
    }
    shared.lock().interleaved.push("split");
    let mut resp = Response::new(Body::from(serde_json::to_vec(&merged).unwrap_or_default()));
    *resp.status_mut() = status;
    for (name, value) in &headers {
        // The checksum was of another body.
        if name.as_str() != "x-amz-crc32" {
            resp.headers_mut().append(name, value.clone());
        }
    }
    Some(resp)
}

/// Sends the request on to the emulator and its answer back.
async fn forward(shared: &Arc<Shared>, parts: &http::request::Parts, body: axum::body::Bytes) -> Response {
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

/// A request's target: its `X-Amz-Target`; else, for a request signed for
/// S3, `S3.<Operation>`; else empty.
pub fn target_of(method: &Method, uri: &Uri, headers: &HeaderMap) -> String {
    if let Some(t) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return t.to_owned();
    }
    if signing_service(uri, headers).as_deref() == Some("s3") {
        return format!("{S3}{}", s3_operation(method, uri.path(), uri.query().unwrap_or_default(), headers));
    }
    String::new()
}

/// The service in a SigV4 credential scope (`AKID/date/region/service/aws4_request`),
/// from the `Authorization` header or a presigned URL's `X-Amz-Credential`.
fn signing_service(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let scope = match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(auth) => {
            let (_, rest) = auth.split_once("Credential=")?;
            rest.split([',', ' ']).next()?.to_owned()
        }
        None => query_params(uri.query().unwrap_or_default())
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("X-Amz-Credential"))
            .map(|(_, v)| v)?,
    };
    let parts: Vec<&str> = scope.split('/').collect();
    (parts.len() == 5 && parts[4] == "aws4_request").then(|| parts[3].to_owned())
}

/// A query string's parameters, percent-decoded (`+` is left alone: SigV4
/// encodes a space as `%20`).
fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The S3 REST operation of a path-style request (`/<bucket>[/<key>]`; the
/// servers address the emulator by IP, so the SDK does not put the bucket in
/// the host name). An unrecognised request is `Unknown(<METHOD> <bucket or
/// object>?<parameter names>)`, so that whoever counts operations sees it.
pub fn s3_operation(method: &Method, path: &str, query: &str, headers: &HeaderMap) -> String {
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').map_or((path, ""), |(b, k)| (b, k));
    // The SDK's `x-id=<Operation>` and a presigned URL's `X-Amz-*` say nothing
    // about the operation's shape.
    let params: Vec<(String, String)> = query_params(query)
        .into_iter()
        .filter(|(k, _)| k != "x-id" && !k.to_ascii_lowercase().starts_with("x-amz-"))
        .collect();
    let has = |name: &str| params.iter().any(|(k, _)| k == name);
    let list_type = params.iter().find(|(k, _)| k == "list-type").map(|(_, v)| v.as_str());
    let op = if bucket.is_empty() {
        match *method {
            Method::GET => Some("ListBuckets"),
            _ => None,
        }
    } else if key.is_empty() {
        match *method {
            Method::POST if has("delete") => Some("DeleteObjects"),
            Method::GET if list_type == Some("2") => Some("ListObjectsV2"),
            Method::GET if has("versions") => Some("ListObjectVersions"),
            Method::GET if has("uploads") => Some("ListMultipartUploads"),
            Method::GET if has("location") => Some("GetBucketLocation"),
            Method::GET
                if params.iter().all(|(k, _)| {
                    ["prefix", "delimiter", "marker", "max-keys", "encoding-type"].contains(&k.as_str())
                }) =>
            {
                Some("ListObjects")
            }
            Method::HEAD if params.is_empty() => Some("HeadBucket"),
            Method::PUT if params.is_empty() => Some("CreateBucket"),
            Method::DELETE if params.is_empty() => Some("DeleteBucket"),
            _ => None,
        }
    } else {
        match *method {
            Method::PUT if has("partNumber") && has("uploadId") => {
                Some(if headers.contains_key("x-amz-copy-source") { "UploadPartCopy" } else { "UploadPart" })
            }
            Method::PUT if headers.contains_key("x-amz-copy-source") => Some("CopyObject"),
            Method::PUT if has("tagging") => Some("PutObjectTagging"),
            Method::PUT if has("acl") => Some("PutObjectAcl"),
            Method::PUT => Some("PutObject"),
            Method::GET if has("tagging") => Some("GetObjectTagging"),
            Method::GET if has("acl") => Some("GetObjectAcl"),
            Method::GET if has("uploadId") => Some("ListParts"),
            Method::GET => Some("GetObject"),
            Method::HEAD => Some("HeadObject"),
            Method::DELETE if has("uploadId") => Some("AbortMultipartUpload"),
            Method::DELETE if has("tagging") => Some("DeleteObjectTagging"),
            Method::DELETE => Some("DeleteObject"),
            Method::POST if has("uploads") => Some("CreateMultipartUpload"),
            Method::POST if has("uploadId") => Some("CompleteMultipartUpload"),
            _ => None,
        }
    };
    match op {
        Some(op) => op.to_owned(),
        None => {
            let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
            let what = if key.is_empty() { "bucket" } else { "object" };
            format!("Unknown({method} {what}?{})", names.join("&"))
        }
    }
}
