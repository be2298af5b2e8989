//! Lambda entrypoint for the `put_member` route.

use keysrv_shared::http::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keysrv_functions::run(Route::PutMember).await
}
