//! Lambda entrypoint for the `get_current_key` route.

use keysrv_shared::http::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keysrv_functions::run(Route::GetCurrentKey).await
}
