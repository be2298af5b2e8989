//! The Cognito pre sign-up trigger: a user's username is its bare JID, and
//! only the canonical spelling can be created. Every other spelling
//! (`JULIET@capulet.lit`, a fullwidth letter, a trailing dot, a soft hyphen)
//! would be a second account that keysrv refuses as a caller — or, worse,
//! one an attacker registers to look like a member. The check is the one
//! the API applies to every token (`keysrv_jid::BareJid::canonical`).

use keysrv_shared::bare_jid::BareJid;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::Value;

/// Accepts or refuses one pre sign-up event (any trigger source: sign-up,
/// `AdminCreateUser`, external provider). The event is returned unchanged to
/// accept; an error refuses, and Cognito reports its message to the caller.
pub fn check_pre_sign_up(event: &Value) -> Result<(), String> {
    let username = event["userName"].as_str().ok_or("the event has no userName")?;
    BareJid::canonical(username).map(|_| ()).map_err(|e| {
        format!("usernames are bare JIDs in canonical form (lower case, A-label domain, no trailing dot): {e}")
    })
}

/// Runs the trigger as a Lambda function.
pub async fn run_pre_sign_up() -> Result<(), lambda_runtime::Error> {
    crate::init_logging();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let (payload, _context) = event.into_parts();
        match check_pre_sign_up(&payload) {
            Ok(()) => Ok(payload),
            Err(why) => {
                tracing::info!(target: "audit", action = "sign_up", outcome = "denied", trigger = payload["triggerSource"].as_str().unwrap_or(""));
                Err(lambda_runtime::Error::from(why))
            }
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(username: &str) -> Value {
        // The shape Cognito sends (documented "Pre sign-up Lambda trigger" event).
        json!({
            "version": "1",
            "region": "eu-west-1",
            "userPoolId": "eu-west-1_example",
            "userName": username,
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "client"},
            "triggerSource": "PreSignUp_AdminCreateUser",
            "request": {"userAttributes": {}, "validationData": null},
            "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
        })
    }

    #[test]
    fn only_canonical_jids_can_be_created() {
        assert_eq!(check_pre_sign_up(&event("juliet@capulet.lit")), Ok(()));
        assert_eq!(check_pre_sign_up(&event("ren\u{e9}@xn--caf-dma.example")), Ok(()));
        for other in [
            "JULIET@capulet.lit",
            "\u{ff2a}uliet@capulet.lit",
            "jul\u{ad}iet@capulet.lit",
            "jul\u{200b}iet@capulet.lit",
            "juliet@\u{ff43}apulet.lit",
            "juliet@capulet.lit.",
            "ren\u{e9}@caf\u{e9}.example",
            "juliet@capulet.lit/balcony",
            "juliet",
            "",
        ] {
            let refused = check_pre_sign_up(&event(other));
            assert!(refused.is_err(), "{other:?} could be created");
        }
        assert!(check_pre_sign_up(&json!({"triggerSource": "PreSignUp_SignUp"})).is_err());
    }
}
