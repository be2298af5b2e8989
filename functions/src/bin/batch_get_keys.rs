//! Lambda entrypoint for the `batch_get_keys` route.

use keysrv_shared::http::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keysrv_functions::run(Route::BatchGetKeys).await
}
