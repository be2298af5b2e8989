//! Bearer tokens as `keysrv server` checks them: `Verifier::dev(&issuer)`
//! of `keysrv/src/jwt.rs` (compiled into this crate, see `src/lib.rs`), then
//! `Claims::caller` of keysrv-shared.
//!
//! Properties:
//! - `verify` never panics, and refuses every token not signed by the
//!   issuer's key: arbitrary text, tokens signed by another RSA key, unsigned
//!   (`alg: none`), HS256 keyed with the issuer's public key, and any
//!   single-bit change of a token it accepts;
//! - a token with fuzzed header and claims JSON, signed with the issuer's
//!   key, is accepted exactly when the header is RS256 with the issuer's
//!   `kid` and the claims are well-typed and valid: integer `exp` not past
//!   (5 s leeway), `nbf` not ahead, integer `iat`/`auth_time`, string
//!   `iss` = the issuer, string `sub`/`client_id`/`token_use`/`username`/
//!   `jti`/`scope`, `aud` a string or strings, the audience in `client_id`
//!   (or in `aud` without one), and none of the claims `jsonwebtoken`
//!   validates (`exp`, `nbf`, `iss`, `aud`, `sub`) given twice. Within 2 s of
//!   a time limit either answer is allowed (the clock moves).

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use keysrv_fuzz::keysrv_jwt::{DEV_CLIENT_ID, DEV_ISSUER, DevIssuer, Verifier, now_secs};
use keysrv_fuzz::{flip_bit, pick, scratch_dir};
use keysrv_shared::http::Claims;
use libfuzzer_sys::fuzz_target;
use serde::de::{MapAccess, Visitor};
use serde_json::{Map, Value};

/// The `kid` of dev tokens (private in jwt.rs; checked at start-up).
const DEV_KID: &str = "keysrv-dev-1";
const LEEWAY: u64 = 5;
const SLACK: u64 = 2;

struct Fixture {
    verifier: Verifier,
    dev: EncodingKey,
    foreign: EncodingKey,
    /// HS256 keyed with the public key: the classic algorithm confusion.
    confused: EncodingKey,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let load = |name: &str| {
            let dir = scratch_dir(name);
            let issuer = DevIssuer::load_or_create(&dir).expect("dev issuer");
            let pem = std::fs::read(dir.join("jwt-signing-key.pem")).expect("dev key file");
            std::fs::remove_dir_all(&dir).expect("removing the scratch directory");
            (issuer, pem)
        };
        let (issuer, pem) = load("jwt");
        let (_, foreign_pem) = load("jwt-foreign");
        let body: String = std::str::from_utf8(&pem).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).expect("PEM body");
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).expect("PKCS#8");
        let public = aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref().to_vec();
        let verifier = Verifier::dev(&issuer);
        // The issuer's own tokens carry the kid this target assumes.
        let token = issuer.access_token("romeo@montague.lit", 60).expect("token");
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(), Some(DEV_KID));
        assert!(verifier.verify(&token).is_ok());
        Fixture {
            verifier,
            dev: EncodingKey::from_rsa_pem(&pem).expect("dev key"),
            foreign: EncodingKey::from_rsa_pem(&foreign_pem).expect("foreign key"),
            confused: EncodingKey::from_secret(&public),
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any token text.
    Raw(String),
    /// Any `Authorization` header value.
    Header(String),
    /// A token built from fuzzed header and claims.
    Signed(Box<Token>),
}

#[derive(Arbitrary, Debug)]
struct Token {
    alg: Alg,
    kid: Kid,
    typ: Option<Val>,
    header_extra: Vec<(Name, Val)>,
    /// Replaces the generated header JSON.
    raw_header: Option<String>,
    /// Start from the claims of a dev access token (`access_claims`), with
    /// these members left out, before `claims`; else from nothing.
    template: Option<Vec<u8>>,
    claims: Vec<(Name, Val)>,
    /// Replaces the generated claims JSON.
    raw_claims: Option<String>,
    signer: Signer,
    flip: Option<u32>,
}

#[derive(Arbitrary, Debug)]
enum Alg {
    Rs256,
    Named(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Kid {
    Dev,
    Absent,
    Value(Val),
}

#[derive(Arbitrary, Debug)]
enum Signer {
    Dev,
    Foreign,
    Confused,
    Unsigned,
    Garbage(Vec<u8>),
}

/// A claim name, possibly written with a JSON escape.
#[derive(Arbitrary, Debug)]
struct Name {
    which: u8,
    other: String,
    escaped: bool,
}

#[derive(Arbitrary, Debug)]
enum Val {
    /// Now plus some seconds, as an integer.
    Now(i16),
    /// Now plus some seconds and a half.
    NowFraction(i16),
    U64(u64),
    I64(i64),
    F64(f64),
    Known(u8),
    Str(String),
    Null,
    Bool(bool),
    Array(Vec<Val>),
    Object(Vec<(String, Val)>),
}

const NAMES: &[&str] =
    &["exp", "nbf", "iat", "auth_time", "iss", "sub", "client_id", "aud", "token_use", "username", "jti", "scope"];
const KNOWN: &[&str] = &[
    DEV_ISSUER,
    DEV_CLIENT_ID,
    "access",
    "id",
    "romeo@montague.lit",
    "Romeo@Montague.lit",
    "romeo@montague.lit/phone",
    "https://cognito-idp.us-east-1.amazonaws.com/pool",
    "keysrv/api",
    "",
    DEV_KID,
    "RS256",
];
const ALGS: &[&str] = &["RS256", "RS384", "RS512", "PS256", "HS256", "ES256", "EdDSA", "none", "rs256", "RS256 "];

fn name(n: &Name) -> String {
    if n.which as usize % (NAMES.len() + 1) == NAMES.len() { n.other.clone() } else { pick(NAMES, n.which).to_string() }
}

fn name_json(n: &Name) -> String {
    let s = name(n);
    match s.chars().next() {
        Some(c) if n.escaped && (c as u32) < 0x10000 => {
            format!("\"\\u{:04x}{}", c as u32, &serde_json::to_string(&s).unwrap()[1 + c.len_utf8()..])
        }
        _ => serde_json::to_string(&s).unwrap(),
    }
}

fn val_json(v: &Val, now: u64, depth: usize) -> String {
    match v {
        Val::Now(d) => (now as i64 + i64::from(*d)).to_string(),
        Val::NowFraction(d) => format!("{}.5", now as i64 + i64::from(*d)),
        Val::U64(n) => n.to_string(),
        Val::I64(n) => n.to_string(),
        Val::F64(f) => serde_json::to_string(&Value::from(*f)).unwrap(),
        Val::Known(i) => serde_json::to_string(pick(KNOWN, *i)).unwrap(),
        Val::Str(s) => serde_json::to_string(s).unwrap(),
        Val::Null => "null".into(),
        Val::Bool(b) => b.to_string(),
        Val::Array(items) if depth < 4 => {
            format!("[{}]", items.iter().map(|i| val_json(i, now, depth + 1)).collect::<Vec<_>>().join(","))
        }
        Val::Object(items) if depth < 4 => format!(
            "{{{}}}",
            items
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), val_json(v, now, depth + 1)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Val::Array(_) | Val::Object(_) => "[]".into(),
    }
}

fuzz_target!(|input: Input| {
    let f = fixture();
    match input {
        Input::Raw(token) => {
            assert!(f.verifier.verify(&token).is_err(), "an arbitrary token was accepted: {token:?}");
        }
        Input::Header(h) => {
            assert!(f.verifier.verify_header(Some(&h)).is_err(), "an arbitrary header was accepted: {h:?}");
        }
        Input::Signed(t) => signed(f, &t),
    }
});

fn signed(f: &Fixture, t: &Token) {
    let now = now_secs();
    let header = match &t.raw_header {
        Some(raw) => raw.clone(),
        None => {
            let mut fields = vec![format!(
                "\"alg\":{}",
                match &t.alg {
                    Alg::Rs256 => "\"RS256\"".into(),
                    Alg::Named(i) => serde_json::to_string(pick(ALGS, *i)).unwrap(),
                    Alg::Any(s) => serde_json::to_string(s).unwrap(),
                }
            )];
            match &t.kid {
                Kid::Dev => fields.push(format!("\"kid\":\"{DEV_KID}\"")),
                Kid::Absent => {}
                Kid::Value(v) => fields.push(format!("\"kid\":{}", val_json(v, now, 0))),
            }
            if let Some(typ) = &t.typ {
                fields.push(format!("\"typ\":{}", val_json(typ, now, 0)));
            }
            for (n, v) in t.header_extra.iter().take(4) {
                fields.push(format!("{}:{}", name_json(n), val_json(v, now, 0)));
            }
            format!("{{{}}}", fields.join(","))
        }
    };
    let claims = match &t.raw_claims {
        Some(raw) => raw.clone(),
        None => format!(
            "{{{}}}",
            template(t.template.as_deref())
                .into_iter()
                .chain(t.claims.iter().map(|(n, v)| format!("{}:{}", name_json(n), val_json(v, now, 0))))
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(&header), URL_SAFE_NO_PAD.encode(&claims));
    let signature = match &t.signer {
        Signer::Dev => jsonwebtoken::crypto::sign(message.as_bytes(), &f.dev, Algorithm::RS256).expect("signing"),
        Signer::Foreign => {
            jsonwebtoken::crypto::sign(message.as_bytes(), &f.foreign, Algorithm::RS256).expect("signing")
        }
        Signer::Confused => {
            jsonwebtoken::crypto::sign(message.as_bytes(), &f.confused, Algorithm::HS256).expect("signing")
        }
        Signer::Unsigned => String::new(),
        Signer::Garbage(b) => URL_SAFE_NO_PAD.encode(b),
    };
    let token = format!("{message}.{signature}");
    let result = f.verifier.verify(&token);
    let verdict = if matches!(t.signer, Signer::Dev) {
        header_ok(&header).and(claims_verdict(&claims, now))
    } else {
        Verdict::Reject
    };
    match (&result, verdict) {
        (Ok(c), Verdict::Accept | Verdict::DontCare) => accepted(c, &token),
        (Err(_), Verdict::Reject | Verdict::DontCare) => {}
        (Ok(c), Verdict::Reject) => panic!("accepted {header} . {claims} as {c:?}"),
        (Err(e), Verdict::Accept) => panic!("refused {header} . {claims}: {e}"),
    }
    // The same answer again (the verifier caches what it accepted).
    if verdict != Verdict::DontCare {
        assert_eq!(f.verifier.verify(&token).is_ok(), result.is_ok(), "a second verification differs");
    }
    if let (Ok(_), Some(bit)) = (&result, t.flip) {
        let mut bytes = token.clone().into_bytes();
        flip_bit(&mut bytes, bit.into());
        if let Ok(tampered) = String::from_utf8(bytes) {
            assert!(f.verifier.verify(&tampered).is_err(), "a one-bit change was accepted: {tampered}");
        }
    }
}

/// The members of a dev access token's claims, as `DevIssuer::access_token`
/// writes them, but for the indices in `skip`.
fn template(skip: Option<&[u8]>) -> Vec<String> {
    let Some(skip) = skip else { return Vec::new() };
    let claims = keysrv_fuzz::keysrv_jwt::access_claims("romeo@montague.lit", 900);
    let Value::Object(map) = claims else { unreachable!("claims are an object") };
    map.iter()
        .enumerate()
        .filter(|(i, _)| !skip.iter().any(|s| usize::from(*s) % map.len() == *i))
        .map(|(_, (k, v))| format!("{}:{v}", serde_json::to_string(k).unwrap()))
        .collect()
}

/// Checks of an accepted token that do not rely on `jsonwebtoken`.
fn accepted(c: &Claims, token: &str) {
    static TRACE: OnceLock<bool> = OnceLock::new();
    if *TRACE.get_or_init(|| std::env::var_os("KEYSRV_FUZZ_TRACE").is_some()) {
        eprintln!("accepted: {c:?}");
    }
    assert_eq!(c.get("iss"), Some(DEV_ISSUER));
    let exp: u64 = c.get("exp").and_then(|e| e.parse().ok()).expect("an integer exp");
    assert!(exp + LEEWAY + SLACK >= now_secs(), "expired token accepted: {token}");
    let mut parts = token.split('.');
    let header: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).expect("header JSON");
    assert_eq!(header.get("alg").and_then(Value::as_str), Some("RS256"));
    assert_eq!(header.get("kid").and_then(Value::as_str), Some(DEV_KID));
    match c.caller("username") {
        Ok(jid) => {
            assert_eq!(c.get("token_use"), Some("access"));
            assert_eq!(c.get("username"), Some(jid.as_str()));
        }
        Err(e) => assert_eq!(keysrv_shared::http::problem::status_of(&e), 401, "{e:?}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    /// Within `SLACK` seconds of a time limit: either answer.
    DontCare,
    Reject,
}

impl Verdict {
    fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Reject, _) | (_, Verdict::Reject) => Verdict::Reject,
            (Verdict::DontCare, _) | (_, Verdict::DontCare) => Verdict::DontCare,
            _ => Verdict::Accept,
        }
    }
}

fn header_ok(header: &str) -> Verdict {
    match jsonwebtoken::decode_header(format!("{}.e30.", URL_SAFE_NO_PAD.encode(header))) {
        Ok(h) if h.alg == Algorithm::RS256 && h.kid.as_deref() == Some(DEV_KID) => Verdict::Accept,
        _ => Verdict::Reject,
    }
}

/// The top-level members of a JSON object in order, duplicates kept.
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = map.next_entry::<String, Value>()? {
                    out.push(kv);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// What keysrv must answer for these claims (signature and header good).
fn claims_verdict(claims: &str, now: u64) -> Verdict {
    let Ok(Members(members)) = serde_json::from_str::<Members>(claims) else { return Verdict::Reject };
    let mut map = BTreeMap::new();
    for (k, v) in members {
        if map.insert(k.clone(), v).is_some() && ["exp", "nbf", "iss", "aud", "sub"].contains(&k.as_str()) {
            return Verdict::Reject;
        }
    }
    let integer = |n: &str| map.get(n).map(|v: &Value| v.as_u64().ok_or(()));
    for n in ["iat", "auth_time"] {
        if let Some(Err(())) = integer(n) {
            return Verdict::Reject;
        }
    }
    for n in ["iss", "sub", "client_id", "token_use", "username", "jti", "scope"] {
        if map.get(n).is_some_and(|v| !v.is_string()) {
            return Verdict::Reject;
        }
    }
    match map.get("aud") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
        Some(_) => return Verdict::Reject,
    }
    if map.get("iss").and_then(Value::as_str) != Some(DEV_ISSUER) {
        return Verdict::Reject;
    }
    let audience_ok = match (map.get("client_id"), map.get("aud")) {
        (Some(c), _) => c.as_str() == Some(DEV_CLIENT_ID),
        (None, Some(Value::String(a))) => a == DEV_CLIENT_ID,
        (None, Some(Value::Array(a))) => a.iter().any(|v| v.as_str() == Some(DEV_CLIENT_ID)),
        (None, _) => false,
    };
    if !audience_ok {
        return Verdict::Reject;
    }
    let mut verdict = Verdict::Accept;
    // exp is required; accepted iff exp >= now - leeway.
    match integer("exp") {
        Some(Ok(exp)) => {
            let limit = now.saturating_sub(LEEWAY);
            if exp + SLACK < limit {
                return Verdict::Reject;
            }
            if exp < limit + SLACK {
                verdict = Verdict::DontCare;
            }
        }
        _ => return Verdict::Reject,
    }
    // nbf: accepted iff nbf <= now + leeway.
    match integer("nbf") {
        None => {}
        Some(Ok(nbf)) => {
            let limit = now + LEEWAY;
            if nbf > limit + SLACK {
                return Verdict::Reject;
            }
            if nbf + SLACK > limit {
                verdict = Verdict::DontCare;
            }
        }
        Some(Err(())) => return Verdict::Reject,
    }
    verdict
}
