//! Lambda entrypoint of the routes that move or delete file bytes, and of
//! the scheduled sweep of the files bucket; the function's `KEYSRV_ROUTE`
//! (template.yaml) says which.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keysrv_functions::main_with_files().await
}
