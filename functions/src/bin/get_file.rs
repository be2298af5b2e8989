//! Lambda entrypoint for the `get_file` route.

use keysrv_shared::http::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keysrv_functions::run_with_files(Route::GetFile).await
}
