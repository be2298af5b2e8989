//! Lambda entrypoint of every route that touches no file bytes; the
//! function's `KEYSRV_ROUTE` (template.yaml) says which. Links no S3 code.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keysrv_functions::main_without_files().await
}
