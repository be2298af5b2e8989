//! Lambda entrypoint for the Cognito pre sign-up trigger (not a route):
//! only canonical bare JIDs become usernames.

#[tokio::main]
async fn main() -> Result<(), lambda_http::lambda_runtime::Error> {
    keysrv_functions::cognito::run_pre_sign_up().await
}
