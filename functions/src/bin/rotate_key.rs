//! Lambda entrypoint for the `rotate_key` route.

use keysrv_shared::http::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keysrv_functions::run(Route::RotateKey).await
}
