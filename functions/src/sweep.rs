//! The scheduled sweep of the files bucket: deletes objects that no file
//! row names — left by an interrupted deletion, or stored by an upload that
//! outlived its tombstone (S3 does not bound how long an upload started
//! under a valid URL may run). Storage keys are random and named by one row
//! only, written before the upload URL exists, so an object without a row
//! can never gain one. The rules are the domain's
//! (`KeyService::sweep_unregistered_bytes`); this is only the Lambda shell.

use keysrv_shared::App;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// Runs the sweep as a Lambda function (an EventBridge schedule invokes it).
pub(crate) async fn run_sweep() -> Result<(), lambda_runtime::Error> {
    let app = std::sync::Arc::new(App::from_env().await?);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let report = app.keys.sweep_unregistered_bytes().await?;
            tracing::info!(scanned = report.scanned, deleted = report.deleted, "sweep of the files bucket");
            Ok::<_, lambda_runtime::Error>(json!({"scanned": report.scanned, "deleted": report.deleted}))
        }
    }))
    .await
}
