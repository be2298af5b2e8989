//! `keysrv server`: every route in one process, served by the same handlers
//! the Lambda functions run. This module only adapts axum to them and plays
//! API Gateway's part: it verifies the bearer token before a handler runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use http::header;
use keysrv_shared::App;
use keysrv_shared::error::{Error, Invalid, Timeout, Unauthorized};
use keysrv_shared::http::problem;
use keysrv_shared::http::request::too_large;
use keysrv_shared::http::{ApiRequest, MAX_BODY_BYTES, Route};
use tokio::net::TcpListener;

use crate::jwt::Verifier;
use crate::listener::ConnectionLimits;

pub struct Server {
    pub app: Arc<App>,
    pub verifier: Verifier,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
}

/// The router: one entry per row of the shared route table.
pub fn router(server: Arc<Server>) -> Router {
    let mut router = Router::new();
    for &route in Route::ALL {
        let filter = MethodFilter::try_from(route.method()).unwrap_or(MethodFilter::GET);
        router = router.route(
            route.path(),
            on(
                filter,
                move |state: State<Arc<Server>>,
                      params: Result<Path<BTreeMap<String, String>>, PathRejection>,
                      req: Request| { serve(state, route, params, req) },
            ),
        );
    }
    router
        .merge(crate::blobs::routes(Arc::clone(&server.app)))
        .fallback(|| async { to_axum(problem::from_error(&Error::NoRoute)) })
        .method_not_allowed_fallback(|| async { to_axum(problem::from_error(&Error::MethodNotAllowed)) })
        .with_state(server)
}

async fn serve(
    State(server): State<Arc<Server>>,
    route: Route,
    params: Result<Path<BTreeMap<String, String>>, PathRejection>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let response = authenticate_and_handle(&server, route, params, req).await;
    tracing::debug!(
        route = route.name(),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn authenticate_and_handle(
    server: &Server,
    route: Route,
    params: Result<Path<BTreeMap<String, String>>, PathRejection>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let auth = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let claims = match server.verifier.verify_header(auth) {
        Ok(c) => c,
        Err(e) => {
            return to_axum(problem::from_error(&Unauthorized::Token(e.to_string()).into()));
        }
    };
    let Ok(Path(params)) = params else {
        return to_axum(problem::from_error(&Invalid::PathParameter.into()));
    };
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return too_large_response();
    }
    let body = match tokio::time::timeout(server.body_timeout, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return too_large_response(),
        Err(_) => {
            let mut resp = problem::from_error(&Timeout::Body.into());
            resp.headers_mut().insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            return to_axum(resp);
        }
    };
    let api = ApiRequest { claims, params, headers: parts.headers, body };
    to_axum(keysrv_shared::http::handle(&server.app, route, api).await)
}

/// The rest of an oversized body is never read, so the connection cannot
/// carry another request: say so, or a keep-alive client sends its next
/// request into a closing socket.
fn too_large_response() -> Response {
    let mut resp = problem::from_error(&too_large());
    resp.headers_mut().insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    to_axum(resp)
}

fn to_axum(resp: http::Response<bytes::Bytes>) -> Response {
    resp.map(Body::from).into_response()
}

/// Binds `addr`, reports the bound address on stdout (scripts and tests read
/// it from there), and serves until SIGINT or SIGTERM. Stored bytes that no
/// file row names are swept at start and every `sweep_interval`.
pub async fn run(
    server: Server,
    addr: SocketAddr,
    limits: ConnectionLimits,
    sweep_interval: Duration,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    if let Some(files) = &server.app.local_files {
        // Unless KEYSRV_PUBLIC_URL said otherwise, file URLs point here.
        files.set_base_url(format!("http://{local}"));
    }
    let server = Arc::new(server);
    if !sweep_interval.is_zero() {
        tokio::spawn(sweep(server.clone(), sweep_interval));
    }
    println!("keysrv listening on http://{local}");
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(%local, max_connections = limits.max_connections, "listening");
    crate::listener::serve(listener, router(server), limits, shutdown_signal()).await
}

/// Serves the metrics (Prometheus text format) at `GET /metrics` on a
/// listener of their own, so the API's address never exposes them.
pub async fn serve_metrics(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let router = Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            let mut resp = keysrv_shared::metrics::METRICS.snapshot().prometheus().into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; version=0.0.4"));
            resp
        }),
    );
    tracing::info!(%local, "metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(local)
}

/// Deletes stored bytes without a file row (left by a crash or an
/// interrupted deletion), now and then every `interval`.
async fn sweep(server: Arc<Server>, interval: Duration) {
    loop {
        if let Err(e) = server.app.keys.sweep_unregistered_bytes().await {
            tracing::warn!(error = %e, "sweep of unregistered file bytes failed");
        }
        tokio::time::sleep(interval).await;
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
