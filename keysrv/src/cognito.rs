//! `keysrv token --backend aws`: real access tokens from a Cognito user pool
//! (in practice the local emulator's). The user is created on first use; a
//! fresh random password is set and used to sign in each time, so no
//! password is ever stored.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{AuthFlowType, MessageActionType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
#[error("cognito: {0}")]
pub struct CognitoError(String);

fn err(what: &str, e: impl std::error::Error) -> CognitoError {
    CognitoError(format!("{what}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e)))
}

pub struct UserPool {
    client: Client,
    pool_id: String,
    client_id: String,
}

impl UserPool {
    /// Only against an emulator (`AWS_ENDPOINT_URL` set): on a real user pool
    /// this would reset a user's password.
    pub async fn from_env() -> Result<Self, CognitoError> {
        let var = |n: &str| std::env::var(n).map_err(|_| CognitoError(format!("{n} must be set")));
        var("AWS_ENDPOINT_URL").map_err(|_| {
            CognitoError("keysrv token --backend aws is for a local emulator (AWS_ENDPOINT_URL); on a real user pool it would reset the user's password".into())
        })?;
        let sdk = aws_config::load_from_env().await;
        Ok(Self {
            client: Client::new(&sdk),
            pool_id: var("KEYSRV_COGNITO_USER_POOL_ID")?,
            client_id: var("KEYSRV_COGNITO_CLIENT_ID")?,
        })
    }

    pub async fn access_token(&self, username: &str) -> Result<String, CognitoError> {
        let random: [u8; 24] = keysrv_shared::ids::random_bytes().map_err(|e| CognitoError(e.to_string()))?;
        // Satisfies any sensible password policy: upper, lower, digit, symbol.
        let password = Zeroizing::new(format!("Ks1!{}", URL_SAFE_NO_PAD.encode(random)));
        let exists = self.client.admin_get_user().user_pool_id(&self.pool_id).username(username).send().await.is_ok();
        if !exists {
            self.client
                .admin_create_user()
                .user_pool_id(&self.pool_id)
                .username(username)
                .message_action(MessageActionType::Suppress)
                .send()
                .await
                .map_err(|e| err("AdminCreateUser", e))?;
        }
        self.client
            .admin_set_user_password()
            .user_pool_id(&self.pool_id)
            .username(username)
            .password(password.as_str())
            .permanent(true)
            .send()
            .await
            .map_err(|e| err("AdminSetUserPassword", e))?;
        let out = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password.as_str())
            .send()
            .await
            .map_err(|e| err("InitiateAuth", e))?;
        out.authentication_result
            .and_then(|r| r.access_token)
            .ok_or_else(|| CognitoError("InitiateAuth returned no access token".into()))
    }
}
