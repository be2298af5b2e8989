//! The framework-neutral request every handler takes. The local server and
//! the Lambda entrypoints each build one: claims from a token they verified
//! (or API Gateway's authorizer verified), path parameters from their router.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::HeaderMap;
use serde::de::DeserializeOwned;

use crate::bare_jid::BareJid;
use crate::error::{Error, Invalid, Result, TooLarge, Unauthorized};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Verified token claims, as strings (the form API Gateway passes them in).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims(pub BTreeMap<String, String>);

impl Claims {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The caller's bare JID. Only access tokens are accepted: API Gateway's
    /// JWT authorizer does not look at `token_use`, so an ID token from the
    /// same user pool would otherwise pass.
    pub fn caller(&self, jid_claim: &str) -> Result<BareJid> {
        if self.get("token_use") != Some("access") {
            return Err(Unauthorized::NotAccessToken.into());
        }
        let raw = self.get(jid_claim).ok_or_else(|| Unauthorized::NoCallerClaim { claim: jid_claim.to_owned() })?;
        // A claim of identity must already be canonical: the identity
        // provider keeps `JULIET@capulet.lit` and `juliet@capulet.lit` apart
        // as two users, so keysrv may not fold one into the other.
        BareJid::canonical(raw)
            .map_err(|reason| Unauthorized::NonCanonical { claim: jid_claim.to_owned(), reason }.into())
    }
}

#[derive(Clone, Default)]
pub struct ApiRequest {
    pub claims: Claims,
    pub params: BTreeMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Leaves out the headers (the bearer token) and the body.
impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest").field("params", &self.params).finish_non_exhaustive()
    }
}

impl ApiRequest {
    pub fn param(&self, name: &str) -> Result<&str> {
        self.params.get(name).map(String::as_str).ok_or(Error::NotFound)
    }

    /// Parses the body as JSON into `T`; every failure is a 400 that says why.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        if self.body.is_empty() {
            return Err(Invalid::BodyMissing.into());
        }
        // serde also fills a struct from an array of its fields; the API
        // speaks only objects.
        if self.body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Invalid::BodyNotObject.into());
        }
        serde_json::from_slice(&self.body).map_err(|e| Invalid::Body(e.to_string()).into())
    }

    /// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
    pub fn idempotency_key(&self) -> Result<Option<&str>> {
        let Some(v) = self.headers.get("idempotency-key") else { return Ok(None) };
        match v.to_str() {
            Ok(s) if !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(s)),
            _ => Err(Invalid::IdempotencyKey.into()),
        }
    }
}

pub fn too_large() -> Error {
    TooLarge::Body { max_bytes: MAX_BODY_BYTES }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(username: &str) -> Claims {
        Claims(BTreeMap::from([
            ("token_use".to_owned(), "access".to_owned()),
            ("username".to_owned(), username.to_owned()),
        ]))
    }

    /// In the identity provider each of these is a user of its own; none of
    /// them may act as juliet@capulet.lit.
    #[test]
    fn only_canonical_usernames_are_callers() {
        assert_eq!(claims("juliet@capulet.lit").caller("username").unwrap().as_str(), "juliet@capulet.lit");
        for other in [
            "\u{ff2a}ULIET@capulet.lit",
            "JULIET@capulet.lit",
            "Juliet@capulet.lit",
            "jul\u{ad}iet@capulet.lit",
            "jul\u{200b}iet@capulet.lit",
            "jul\u{200d}iet@capulet.lit",
            "juliet@\u{ff43}apulet.lit",
            "juliet@Capulet.lit",
            "juliet@capulet.lit.",
            "juliet@capulet.lit/balcony",
        ] {
            match claims(other).caller("username") {
                Err(Error::Unauthorized(u @ Unauthorized::NonCanonical { .. })) => {
                    assert!(u.to_string().contains("canonical"), "{other:?}: {u}")
                }
                got => panic!("{other:?} was accepted as {got:?}"),
            }
        }
    }
}
