//! The Lambda side of the HTTP glue: turn an API Gateway HTTP API (payload
//! v2) event into the shared `ApiRequest`, run the route's handler, and turn
//! the response back. Every binary in `src/bin` is one route and calls `run`.
//!
//! API Gateway's JWT authorizer has already verified the token; its claims
//! arrive in `requestContext.authorizer.jwt.claims`.

pub mod cognito;
pub mod sweep;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use keysrv_shared::App;
use keysrv_shared::http::problem;
use keysrv_shared::http::request::too_large;
use keysrv_shared::http::{ApiRequest, Claims, MAX_BODY_BYTES, Route};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};

/// Runs `route` as a Lambda function. Configuration, backends and clients
/// are built once per container, before the first invocation. For routes
/// that touch no file bytes: the binary links no S3 client.
pub async fn run(route: Route) -> Result<(), lambda_http::Error> {
    init_logging();
    serve(route, App::from_env_without_files().await?).await
}

/// `run`, for the routes that move or delete file bytes
/// (`Route::touches_file_bytes`): with the S3 client.
pub async fn run_with_files(route: Route) -> Result<(), lambda_http::Error> {
    init_logging();
    serve(route, App::from_env().await?).await
}

async fn serve(route: Route, app: App) -> Result<(), lambda_http::Error> {
    let app = Arc::new(app);
    app.keys.warm_up().await;
    lambda_http::run(service_fn(move |event: Request| {
        let app = Arc::clone(&app);
        async move {
            let response = handle(&app, route, event).await;
            // CloudWatch reads the metrics from this log line (EMF): no
            // PutMetricData call.
            println!("{}", emf_line(route.name()));
            Ok::<_, std::convert::Infallible>(response)
        }
    }))
    .await
}

/// The counters since the previous call, as one CloudWatch Embedded Metric
/// Format line with the function as its dimension.
pub fn emf_line(function: &str) -> String {
    use keysrv_shared::metrics::{METRICS, Snapshot};
    static LAST: std::sync::Mutex<Option<Snapshot>> = std::sync::Mutex::new(None);
    let now = METRICS.snapshot();
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let delta = now.since(last.as_ref().unwrap_or(&Snapshot::default()));
    *last = Some(now);
    delta.emf(function, keysrv_shared::timestamp::Timestamp::now().millis()).to_string()
}

/// Serves one API Gateway event.
pub async fn handle(app: &App, route: Route, event: Request) -> Response<Body> {
    let claims = authorizer_claims(&event);
    let params: BTreeMap<String, String> =
        event.path_parameters().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let (parts, body) = event.into_parts();
    let body = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(s) => bytes::Bytes::from(s),
        Body::Binary(b) => bytes::Bytes::from(b),
        _ => bytes::Bytes::new(),
    };
    let response = if body.len() > MAX_BODY_BYTES {
        problem::from_error(&too_large())
    } else {
        keysrv_shared::http::handle(app, route, ApiRequest { claims, params, headers: parts.headers, body }).await
    };
    let (parts, bytes) = response.into_parts();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => Body::Text(s),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    Response::from_parts(parts, body)
}

fn authorizer_claims(event: &Request) -> Claims {
    match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| Claims(jwt.claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
            .unwrap_or_default(),
        _ => Claims::default(),
    }
}

/// JSON logs, as CloudWatch Logs Insights reads them. `KEYSRV_LOG` is a
/// level (`error` … `trace`, default `info`).
pub(crate) fn init_logging() {
    let level = std::env::var("KEYSRV_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let _ = tracing_subscriber::fmt().json().with_max_level(level).without_time().with_current_span(false).try_init();
}
