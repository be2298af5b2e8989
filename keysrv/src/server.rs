//! `keysrv server`: every route in one process, served by the same handlers
//! the Lambda functions run. This module only adapts axum to them and plays
//! API Gateway's part: it verifies the bearer token before a handler runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use http::{StatusCode, header};
use keysrv_shared::App;
use keysrv_shared::http::problem;
use keysrv_shared::http::request::too_large;
use keysrv_shared::http::{ApiRequest, MAX_BODY_BYTES, Route};
use tokio::net::TcpListener;

use crate::jwt::Verifier;

pub struct Server {
    pub app: App,
    pub verifier: Verifier,
}

/// The router: one entry per row of the shared route table.
pub fn router(server: Arc<Server>) -> Router {
    let mut router = Router::new();
    for route in Route::ALL {
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
        .merge(crate::blobs::routes())
        .fallback(|| async { to_axum(problem::problem(StatusCode::NOT_FOUND, "no such route")) })
        .method_not_allowed_fallback(|| async {
            to_axum(problem::problem(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route"))
        })
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
            return to_axum(problem::from_error(&keysrv_shared::Error::Unauthorized(e.to_string())));
        }
    };
    let Ok(Path(params)) = params else {
        return to_axum(problem::problem(
            StatusCode::BAD_REQUEST,
            "path parameters must be valid percent-encoded UTF-8",
        ));
    };
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return too_large_response();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return too_large_response(),
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
/// it from there), and serves until SIGINT or SIGTERM.
pub async fn run(server: Server, addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    if let Some(files) = &server.app.local_files {
        // Unless KEYSRV_PUBLIC_URL said otherwise, file URLs point here.
        files.set_base_url(format!("http://{local}"));
    }
    println!("keysrv listening on http://{local}");
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(%local, "listening");
    axum::serve(listener, router(Arc::new(server))).with_graceful_shutdown(shutdown_signal()).await
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
