//! The Lambda side of the HTTP glue: turn an API Gateway HTTP API (payload
//! v2) event into the shared `ApiRequest`, run the route's handler, and turn
//! the response back.
//!
//! Three binaries serve every function of template.yaml (`src/bin`):
//! `keysrv_api` the routes that touch no file bytes, `keysrv_files` those
//! that do plus the scheduled sweep of the files bucket, and `pre_sign_up`
//! Cognito's trigger. Each function names what it serves in `KEYSRV_ROUTE`
//! (template.yaml) and keeps its own IAM role; a binary refuses to start as
//! anything it does not serve. Fewer, shared binaries: one fat-LTO link per
//! binary instead of per function (`make package`), and one build per binary
//! in `sam build`, which builds functions with identical build properties
//! once. Only `keysrv_files` links S3 code.
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
use tracing_subscriber::filter::Targets;

/// The environment variable that names a function's route (template.yaml).
pub const ROUTE_VAR: &str = "KEYSRV_ROUTE";

/// What one Lambda function does: a route of the API, or the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Route(Route),
    /// The scheduled sweep of the files bucket (`sweep.rs`).
    SweepFiles,
}

impl Function {
    pub fn from_name(name: &str) -> Option<Function> {
        match name {
            "sweep_files" => Some(Function::SweepFiles),
            _ => Route::from_name(name).map(Function::Route),
        }
    }

    /// Whether it needs S3, and so runs as `keysrv_files`; everything else
    /// runs as `keysrv_api`, which links no S3 code.
    pub fn needs_s3(self) -> bool {
        match self {
            Function::Route(route) => route.touches_file_bytes(),
            Function::SweepFiles => true,
        }
    }

    /// The binary that serves it.
    pub fn binary(self) -> &'static str {
        if self.needs_s3() { "keysrv_files" } else { "keysrv_api" }
    }
}

/// The function `KEYSRV_ROUTE` names, if `binary` serves it.
pub fn function_from_env(binary: &str) -> Result<Function, String> {
    select(binary, std::env::var(ROUTE_VAR).ok().as_deref())
}

/// The function `name` (`KEYSRV_ROUTE`'s value) names, if `binary` serves
/// it. A mismatch stops the start: a function that came up as another
/// route would run under the wrong role, or without the S3 its route needs.
pub fn select(binary: &str, name: Option<&str>) -> Result<Function, String> {
    let name = name.ok_or_else(|| format!("{ROUTE_VAR} is not set (template.yaml sets it)"))?;
    let function = Function::from_name(name).ok_or_else(|| format!("{ROUTE_VAR}={name:?} names no route"))?;
    if function.binary() == binary {
        Ok(function)
    } else {
        Err(format!("{ROUTE_VAR}={name}: served by {}, not {binary}", function.binary()))
    }
}

/// `keysrv_api`: a route that touches no file bytes. The app is built
/// without S3 (`App::from_env_without_files`), so this binary links none.
/// Configuration, backends and clients are built once per container,
/// before the first invocation.
pub async fn main_without_files() -> Result<(), lambda_http::Error> {
    init_logging();
    match function_from_env("keysrv_api")? {
        Function::Route(route) => serve(route, App::from_env_without_files().await?).await,
        Function::SweepFiles => Err("the sweep runs as keysrv_files".into()),
    }
}

/// `keysrv_files`: a route that moves or deletes file bytes
/// (`Route::touches_file_bytes`), or the sweep; with S3.
pub async fn main_with_files() -> Result<(), lambda_http::Error> {
    init_logging();
    match function_from_env("keysrv_files")? {
        Function::Route(route) => serve(route, App::from_env().await?).await,
        Function::SweepFiles => sweep::run_sweep().await,
    }
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

/// JSON logs, as CloudWatch Logs Insights reads them. `KEYSRV_LOG` has the
/// one syntax of `keysrv server` (a level, or `warn,audit=info`), parsed by
/// the same function. Logging starts before the configuration is built so
/// that its errors are logged; an invalid `KEYSRV_LOG` logs at `info` until
/// `Config::from_env` refuses it, naming the variable.
pub(crate) fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("KEYSRV_LOG")
        .ok()
        .and_then(|spec| keysrv_shared::config::parse_log_filter(&spec).ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json().without_time().with_current_span(false))
        .with(filter)
        .try_init();
}
