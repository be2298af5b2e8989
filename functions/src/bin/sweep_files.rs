//! Lambda entrypoint for the scheduled sweep of the files bucket (not a
//! route): deletes stored bytes that no file row names.

#[tokio::main]
async fn main() -> Result<(), lambda_http::lambda_runtime::Error> {
    keysrv_functions::sweep::run_sweep().await
}
