//! The JSON request bodies of the v1 API and the strings inside them, as
//! the handlers read them: `ApiRequest::json::<T>()` for every DTO, then
//! `bare_jid::parse`, `MediaType::parse`, the id parsers, and the
//! `Idempotency-Key` header.
//!
//! Properties: nothing panics; every refusal is a 400 (or 413 past the
//! body limit); only JSON objects are accepted; an accepted body, written
//! back as JSON, parses to the same value; an accepted id, media type or
//! key has exactly the documented shape (and a media type is a valid HTTP
//! header value, as S3 and the blob server send it back in one).

#![no_main]

use bytes::Bytes;
use http::HeaderValue;
use keysrv_shared::Error;
use keysrv_shared::http::ApiRequest;
use keysrv_shared::http::dto::{BatchGetKeysRequest, CreateConversationRequest, CreateFileRequest, PutMemberRequest};
use keysrv_shared::http::problem::status_of;
use keysrv_shared::ids::{ConversationId, FileId, ObjectId};
use keysrv_shared::media_type::MediaType;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    // `\xffBIG` + text: the text repeated past the body limit (libFuzzer's
    // inputs stay far below 64 KiB).
    let big;
    let data = match data.strip_prefix(b"\xffBIG") {
        Some(rest) if !rest.is_empty() => {
            big = rest.repeat(keysrv_shared::http::MAX_BODY_BYTES / rest.len() + 1);
            &big[..]
        }
        _ => data,
    };
    let req = ApiRequest { body: Bytes::copy_from_slice(data), ..Default::default() };
    let is_object = data.len() <= keysrv_shared::http::MAX_BODY_BYTES
        && data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');

    if let Some(r) = accepted(&req, is_object, ApiRequest::json::<CreateConversationRequest>) {
        let back = body(&json!({"members": r.members, "history": r.history}))
            .json::<CreateConversationRequest>()
            .expect("a re-serialized CreateConversationRequest parses");
        assert_eq!((back.members, back.history), (r.members.clone(), r.history));
        for m in &r.members {
            jid(m);
        }
    }
    if let Some(r) = accepted(&req, is_object, ApiRequest::json::<BatchGetKeysRequest>) {
        let back = body(&json!({"objectids": r.objectids})).json::<BatchGetKeysRequest>().expect("re-serialized");
        assert_eq!(back.objectids, r.objectids);
        for o in &r.objectids {
            object_id(o);
        }
    }
    if let Some(r) = accepted(&req, is_object, ApiRequest::json::<CreateFileRequest>) {
        let back = body(&json!({"content_type": r.content_type, "size": r.size}))
            .json::<CreateFileRequest>()
            .expect("re-serialized");
        assert_eq!((back.content_type.as_str(), back.size), (r.content_type.as_str(), r.size));
        media_type(&r.content_type);
    }
    if let Some(r) = accepted(&req, is_object, ApiRequest::json::<PutMemberRequest>) {
        let back = body(&json!({"role": r.role})).json::<PutMemberRequest>().expect("re-serialized");
        assert_eq!(back.role, r.role);
    }

    // The same strings as path parameters and fields.
    let s = keysrv_fuzz::text(data);
    jid(&s);
    object_id(&s);
    media_type(&s);
    if let Ok(c) = ConversationId::parse(&s) {
        assert_eq!(c.as_str(), s);
        assert!(random_id(&s), "{s:?}");
    }

    // Idempotency-Key: 1 to 255 visible ASCII characters, else a 400.
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let mut req = ApiRequest::default();
        req.headers.insert("idempotency-key", v);
        match req.idempotency_key() {
            Ok(Some(k)) => {
                assert_eq!(k.as_bytes(), data);
                assert!(!k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()));
            }
            Ok(None) => panic!("the header was set"),
            Err(e) => assert_eq!(status_of(&e), 400, "{e:?}"),
        }
    }
});

fn body(v: &serde_json::Value) -> ApiRequest {
    ApiRequest { body: Bytes::from(serde_json::to_vec(v).expect("serializes")), ..Default::default() }
}

/// The parse result, after checking that a refusal is a 400/413 and that
/// only objects are accepted.
fn accepted<T>(req: &ApiRequest, is_object: bool, parse: impl Fn(&ApiRequest) -> Result<T, Error>) -> Option<T> {
    match parse(req) {
        Ok(v) => {
            assert!(is_object, "a body that is not a JSON object was accepted");
            Some(v)
        }
        Err(e) if status_of(&e) == 400 => None,
        Err(e) if status_of(&e) == 413 && req.body.len() > keysrv_shared::http::MAX_BODY_BYTES => None,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

fn jid(s: &str) {
    match keysrv_shared::bare_jid::parse(s) {
        Ok(j) => assert_eq!(keysrv_shared::bare_jid::parse(j.as_str()).ok().as_ref(), Some(&j)),
        Err(e) => assert_eq!(status_of(&e), 400, "{e:?}"),
    }
}

fn random_id(s: &str) -> bool {
    s.len() == 22 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn object_id(s: &str) {
    match ObjectId::parse(s) {
        Ok(o) => {
            assert_eq!(o.as_str(), s);
            assert!(s.len() == 45 && random_id(&s[..22]) && &s[22..23] == "." && random_id(&s[23..]), "{s:?}");
            assert_eq!(o.conversation_id().as_str(), &s[..22]);
            assert_eq!(o.local_part(), &s[23..]);
            assert_eq!(ConversationId::parse(&s[..22]).map(|c| c == o.conversation_id()).ok(), Some(true));
        }
        Err(e) => assert_eq!(status_of(&e), 404, "{e:?}"),
    }
    match FileId::parse(s) {
        Ok(f) => {
            assert_eq!(f.as_str(), s);
            assert_eq!(f.conversation_id().as_str(), &s[..22]);
            assert_eq!(f.local_part(), &s[23..]);
        }
        Err(e) => assert_eq!(status_of(&e), 404, "{e:?}"),
    }
}

fn media_type(s: &str) {
    match MediaType::parse(s) {
        Ok(m) => {
            assert_eq!(m.as_str(), s);
            assert!(s.len() <= 255 && s.contains('/'), "{s:?}");
            assert!(HeaderValue::from_str(s).is_ok(), "{s:?} is not a valid header value");
            assert!(!s.starts_with(' ') && !s.ends_with(' '), "{s:?}: header values are trimmed in transit");
        }
        Err(e) => assert_eq!(status_of(&e), 400, "{e:?}"),
    }
}
