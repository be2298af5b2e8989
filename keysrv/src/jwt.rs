//! Bearer tokens for `keysrv server`, checked the way API Gateway's JWT
//! authorizer checks them in production: RS256 signature, `iss`, audience
//! (`client_id` on Cognito access tokens, `aud` otherwise) and `exp`. The
//! shared request code then insists on `token_use` = `access`.
//!
//! Dev mode signs with an RSA key generated in the data directory; Cognito
//! mode verifies against a user pool's JWKS.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keysrv_shared::http::Claims;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use zeroize::Zeroizing;

pub const DEV_ISSUER: &str = "keysrv-dev";
pub const DEV_CLIENT_ID: &str = "keysrv-dev-client";
const DEV_KID: &str = "keysrv-dev-1";
const KEY_FILE: &str = "jwt-signing-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Setup(String),
}

/// The dev-mode token issuer: an RSA-2048 key kept (0600) in the data directory.
pub struct DevIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl DevIssuer {
    pub fn load_or_create(data_dir: &Path) -> Result<Self, JwtError> {
        let setup = |e: String| JwtError::Setup(e);
        let path = data_dir.join(KEY_FILE);
        let pem = match fs::read(&path) {
            Ok(p) => Zeroizing::new(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(data_dir)
                    .map_err(|e| setup(format!("creating {}: {e}", data_dir.display())))?;
                let pair =
                    KeyPair::generate(KeySize::Rsa2048).map_err(|_| setup("RSA key generation failed".into()))?;
                let der = pair.as_der().map_err(|_| setup("RSA key encoding failed".into()))?;
                let pem = Zeroizing::new(pem_encode("PRIVATE KEY", der.as_ref()).into_bytes());
                match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
                    Ok(mut f) => {
                        f.write_all(&pem).map_err(|e| setup(format!("writing {}: {e}", path.display())))?;
                        pem
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Zeroizing::new(fs::read(&path).map_err(|e| setup(format!("reading {}: {e}", path.display())))?)
                    }
                    Err(e) => return Err(setup(format!("creating {}: {e}", path.display()))),
                }
            }
            Err(e) => return Err(setup(format!("reading {}: {e}", path.display()))),
        };
        // This key mints tokens for any JID: refuse it if others can read it.
        let mode = fs::metadata(&path).map_err(|e| setup(format!("{}: {e}", path.display())))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(setup(format!(
                "{} is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            )));
        }
        let encoding = EncodingKey::from_rsa_pem(&pem).map_err(|e| setup(format!("dev signing key: {e}")))?;
        let der = pem_decode(&pem).ok_or_else(|| setup("dev signing key is not PEM".into()))?;
        let pair = KeyPair::from_pkcs8(&der).map_err(|e| setup(format!("dev signing key: {e}")))?;
        let public = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let decoding = DecodingKey::from_rsa_raw_components(&public.n, &public.e);
        Ok(Self { encoding, decoding })
    }

    /// An access token for `jid`, shaped like a Cognito access token.
    pub fn access_token(&self, jid: &str, ttl_secs: u64) -> Result<String, JwtError> {
        if now_secs().checked_add(ttl_secs).is_none_or(|exp| exp > i64::MAX as u64) {
            return Err(JwtError::Setup(format!("a lifetime of {ttl_secs} s is out of range")));
        }
        self.sign(&access_claims(jid, ttl_secs))
    }

    /// Signs arbitrary claims (tests use this for deliberately bad tokens).
    pub fn sign(&self, claims: &Value) -> Result<String, JwtError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(DEV_KID.into());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| JwtError::Setup(e.to_string()))
    }
}

/// The claims of a dev access token for `jid`, valid from now for `ttl_secs`.
pub fn access_claims(jid: &str, ttl_secs: u64) -> Value {
    let now = now_secs();
    json!({
        "iss": DEV_ISSUER,
        "sub": jid,
        "username": jid,
        "client_id": DEV_CLIENT_ID,
        "token_use": "access",
        "scope": "keysrv/api",
        "iat": now,
        "exp": now.saturating_add(ttl_secs),
    })
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(pem: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).ok().map(Zeroizing::new)
}

/// Verifies bearer tokens and returns their claims.
pub struct Verifier {
    /// Keys by `kid`; `None` matches tokens without one (dev mode).
    keys: HashMap<Option<String>, DecodingKey>,
    validation: Validation,
    audience: String,
    /// Tokens already verified, by SHA-256 of the token, until they expire.
    /// A mobile client sends the same token for up to an hour; an RSA
    /// verification per request would be most of the server's CPU.
    verified: Mutex<HashMap<[u8; 32], (Claims, u64)>>,
}

/// Cached verifications; the cache is emptied when it reaches this size.
const VERIFIED_CACHE_ENTRIES: usize = 16_384;

impl Verifier {
    pub fn dev(issuer: &DevIssuer) -> Self {
        let mut keys = HashMap::new();
        keys.insert(Some(DEV_KID.to_owned()), issuer.decoding.clone());
        Self::new(keys, DEV_ISSUER, DEV_CLIENT_ID)
    }

    /// Verifies against a JWKS (a Cognito user pool's, or the local AWS
    /// emulator's), fetched once at start.
    pub async fn from_jwks_url(jwks_url: &str, issuer: &str, audience: &str) -> Result<Self, JwtError> {
        let setup = |e: String| JwtError::Setup(format!("JWKS {jwks_url}: {e}"));
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let set: JwkSet = http
            .get(jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| setup(e.to_string()))?
            .json()
            .await
            .map_err(|e| setup(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let key = DecodingKey::from_jwk(jwk).map_err(|e| setup(e.to_string()))?;
            keys.insert(jwk.common.key_id.clone(), key);
        }
        if keys.is_empty() {
            return Err(setup("no keys".into()));
        }
        Ok(Self::new(keys, issuer, audience))
    }

    fn new(keys: HashMap<Option<String>, DecodingKey>, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.leeway = 5;
        validation.validate_nbf = true;
        // Cognito access tokens carry the app client in `client_id`, not `aud`;
        // `verify` checks whichever is present.
        validation.validate_aud = false;
        Self { keys, validation, audience: audience.to_owned(), verified: Mutex::new(HashMap::new()) }
    }

    /// Checks an `Authorization` header value and returns the token's claims.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Claims, JwtError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| JwtError::Invalid("a bearer token is required".into()))?;
        self.verify(token)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now_secs();
        if let Some((claims, exp)) = self.cache().get(&digest)
            && *exp > now
        {
            return Ok(claims.clone());
        }
        let claims = self.verify_uncached(token)?;
        let exp = claims.get("exp").and_then(|e| e.parse::<u64>().ok()).unwrap_or(0);
        let mut cache = self.cache();
        if cache.len() >= VERIFIED_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(digest, (claims.clone(), exp));
        Ok(claims)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Claims, u64)>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn verify_uncached(&self, token: &str) -> Result<Claims, JwtError> {
        let invalid = |why: &str| JwtError::Invalid(format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        let key = self.keys.get(&header.kid).ok_or_else(|| invalid("unknown signing key"))?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => invalid("expired"),
                ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                ErrorKind::InvalidSignature => invalid("bad signature"),
                ErrorKind::InvalidAlgorithm => invalid("algorithm not allowed"),
                _ => invalid("rejected"),
            }
        })?;
        let claims = data.claims;
        check_claim_types(&claims).map_err(|why| invalid(&why))?;
        let audience_ok = match (claims.get("client_id"), claims.get("aud")) {
            (Some(Value::String(c)), _) => c == &self.audience,
            (None, Some(Value::String(a))) => a == &self.audience,
            (None, Some(Value::Array(a))) => a.iter().any(|v| v.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(invalid("wrong audience"));
        }
        Ok(to_claims(claims))
    }
}

/// Registered claims have exactly one JSON type (RFC 7519; Cognito's access
/// tokens follow it): times are integer seconds, the issuer and the other
/// identifying claims are strings. `jsonwebtoken` also accepts an `iss`
/// array and fractional times; a token shaped like that was not minted by the
/// issuer keysrv trusts the way it claims.
fn check_claim_types(claims: &Map<String, Value>) -> Result<(), String> {
    for name in ["exp", "nbf", "iat", "auth_time"] {
        if let Some(v) = claims.get(name)
            && v.as_u64().is_none()
        {
            return Err(format!("{name} must be an integer number of seconds"));
        }
    }
    for name in ["iss", "sub", "client_id", "token_use", "username", "jti", "scope"] {
        if let Some(v) = claims.get(name)
            && !v.is_string()
        {
            return Err(format!("{name} must be a string"));
        }
    }
    match claims.get("aud") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err("aud must be a string or an array of strings".into()),
    }
}

/// Flattens claims to strings as API Gateway does for Lambda: arrays become
/// `[a b]`.
fn to_claims(map: Map<String, Value>) -> Claims {
    let flat = map
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string()))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (k, s)
        })
        .collect();
    Claims(flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_issuer() -> (std::path::PathBuf, DevIssuer) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("keysrv-jwt-{}-{n}", std::process::id()));
        let issuer = DevIssuer::load_or_create(&dir).unwrap();
        (dir, issuer)
    }

    #[test]
    fn dev_tokens_verify_and_survive_reload() {
        let (dir, issuer) = fresh_issuer();
        let token = issuer.access_token("romeo@montague.lit", 60).unwrap();
        let reloaded = DevIssuer::load_or_create(&dir).unwrap();
        let claims = Verifier::dev(&reloaded).verify(&token).unwrap();
        assert_eq!(claims.get("username"), Some("romeo@montague.lit"));
        assert_eq!(claims.get("token_use"), Some("access"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rejects_expired_wrong_audience_and_foreign_keys() {
        let (dir, issuer) = fresh_issuer();
        let verifier = Verifier::dev(&issuer);
        let now = now_secs();
        let base = json!({"iss": DEV_ISSUER, "client_id": DEV_CLIENT_ID, "token_use": "access", "username": "a@b.c", "exp": now + 60});
        let mut expired = base.clone();
        expired["exp"] = json!(now - 3600);
        let mut wrong_aud = base.clone();
        wrong_aud["client_id"] = json!("someone-else");
        let mut wrong_iss = base.clone();
        wrong_iss["iss"] = json!("https://evil.example");
        for claims in [expired, wrong_aud, wrong_iss] {
            assert!(verifier.verify(&issuer.sign(&claims).unwrap()).is_err(), "{claims}");
        }
        let (dir2, other) = fresh_issuer();
        assert!(verifier.verify(&other.sign(&base).unwrap()).is_err());
        assert!(verifier.verify(&issuer.sign(&base).unwrap()).is_ok());
        assert!(verifier.verify_header(None).is_err());
        assert!(verifier.verify_header(Some("Basic abc")).is_err());
        fs::remove_dir_all(dir).unwrap();
        fs::remove_dir_all(dir2).unwrap();
    }
}
