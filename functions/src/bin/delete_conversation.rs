//! Lambda entrypoint for the `delete_conversation` route.

use keysrv_shared::http::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keysrv_functions::run_with_files(Route::DeleteConversation).await
}
