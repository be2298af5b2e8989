//! Rules of `docs/PROTOCOL.md` that an independent implementation found
//! ambiguous, each checked against this implementation (the byte-level ones
//! are also test vectors, see `vectors.rs`): the size limits and the 9.9
//! arithmetic, URL path encoding, carbon and archive wrappers, empty bodies.

use std::path::PathBuf;

use keysrv_client::stanza::{MAX_STANZA_BYTES, MessageType, ReceivedMessage, message_stanza};
use keysrv_client::wire::{self, MAX_ELEMENT_BYTES};
use keysrv_client::{Client, Content, Envelope, Error, Key, WireError, path_segment};
use time::OffsetDateTime;

use crate::support::Canned;

const ROMEO: &str = "romeo@montague.lit";
const JULIET: &str = "juliet@capulet.lit";
/// An objectid of the length keysrv issues (45 characters).
const OID: &str = "Yq3hV8dK2mTzR0pLxW7bNg.c9Fh2LqP0sVxB4mKzT1aRw";

fn key() -> Key {
    Key::from_bytes([0x42; 32])
}

fn spec() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md");
    std::fs::read_to_string(path).expect("reading docs/PROTOCOL.md")
}

/// `n` with thousands separators, as the spec writes numbers.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn envelope_len(body: &str, rpad: usize) -> usize {
    Envelope {
        content: Content::text(body),
        rpad: "A".repeat(rpad),
        from: JULIET.into(),
        to: ROMEO.into(),
        time: OffsetDateTime::from_unix_timestamp(1_738_315_800).unwrap(),
    }
    .to_xml()
    .unwrap()
    .len()
}

/// The largest body (ASCII, nothing to escape) `seal` takes between the
/// example JIDs under a 45-character objectid, by the arithmetic of 9.9.
fn max_body() -> usize {
    // (An empty body is omitted: measure around one byte.)
    let fixed = envelope_len("x", 200) - 1;
    (0..MAX_ELEMENT_BYTES).rev().find(|b| wire::element_len(OID.len(), fixed + b) <= MAX_ELEMENT_BYTES).unwrap()
}

#[test]
fn a_60_kb_body_is_refused_before_it_makes_an_82_kb_stanza() {
    let r = wire::seal(&key(), OID, JULIET, ROMEO, &Content::text("a".repeat(60_000)));
    let Err(e @ WireError::TooLarge { bytes, max }) = r else { panic!("sealed: {r:?}") };
    assert_eq!((e.kind(), max), ("too-large", MAX_ELEMENT_BYTES));
    assert!(bytes > 80_000, "{bytes}");
    // The error is typed through the API client's error too.
    assert!(matches!(Error::from(e), Error::Wire(WireError::TooLarge { .. })));
}

#[test]
fn the_largest_body_always_seals_and_one_byte_more_never_does() {
    let max = max_body();
    let body = "a".repeat(max);
    for _ in 0..20 {
        // Whatever padding is drawn.
        let element = wire::seal(&key(), OID, JULIET, ROMEO, &Content::text(body.clone())).unwrap();
        assert!(element.len() <= MAX_ELEMENT_BYTES, "{}", element.len());
        let stanza = message_stanza("romeo@montague.lit", MessageType::Chat, "an-id-of-some-length", &element).unwrap();
        assert!(stanza.len() <= MAX_STANZA_BYTES);
        let over = wire::seal(&key(), OID, JULIET, ROMEO, &Content::text(format!("{body}a")));
        assert!(matches!(over, Err(WireError::TooLarge { .. })), "{over:?}");
    }
    // Escaping counts: `&` is five bytes in the envelope.
    let escaped = wire::seal(&key(), OID, JULIET, ROMEO, &Content::text("&".repeat(max / 5 + 1)));
    assert!(matches!(escaped, Err(WireError::TooLarge { .. })), "{escaped:?}");
}

#[test]
fn message_stanza_refuses_what_a_server_would_refuse() {
    let element = wire::seal(&key(), OID, JULIET, ROMEO, &Content::text("hi")).unwrap();
    let long_id = "i".repeat(MAX_STANZA_BYTES);
    let r = message_stanza(ROMEO, MessageType::Chat, &long_id, &element);
    assert!(matches!(r, Err(WireError::TooLarge { max: MAX_STANZA_BYTES, .. })), "{r:?}");
    // The largest element leaves room for the other children, `to` and `id`.
    let overhead = message_stanza("", MessageType::GroupChat, "", "").unwrap().len();
    assert!(MAX_ELEMENT_BYTES + overhead + 3_071 + 64 <= MAX_STANZA_BYTES, "{overhead}");
    const { assert!(MAX_STANZA_BYTES < 64 * 1024) };
}

/// The numbers in 9.9 are what sealing produces.
#[test]
fn the_size_arithmetic_of_the_spec_is_what_sealing_produces() {
    let body = "b".repeat(256);
    let bare = envelope_len(&body, 0);
    let (padded_min, padded_max) = (envelope_len(&body, 1), envelope_len(&body, 200));
    assert_eq!(padded_min, bare + 14);
    assert_eq!(padded_max, bare + 213);
    let (element_min, element_max) = (wire::element_len(OID.len(), bare), wire::element_len(OID.len(), padded_max));
    // element_len is the element's real length.
    let env = Envelope {
        content: Content::text(body.clone()),
        rpad: "A".repeat(200),
        from: JULIET.into(),
        to: ROMEO.into(),
        time: OffsetDateTime::UNIX_EPOCH,
    };
    assert_eq!(wire::seal_envelope(&key(), OID, &env).unwrap().len(), element_max);
    let fixed = envelope_len("x", 0) - 1 - JULIET.len() - ROMEO.len();
    let max_envelope =
        (0..MAX_ELEMENT_BYTES).rev().find(|e| wire::element_len(OID.len(), *e) <= MAX_ELEMENT_BYTES).unwrap();
    let overhead = message_stanza("", MessageType::GroupChat, "", "").unwrap().len();
    assert_eq!(MAX_STANZA_BYTES - MAX_ELEMENT_BYTES, 4_000);
    // The issue's example: a 60,000-byte body.
    let big = envelope_len(&"b".repeat(60_000), 0);
    let (big_min, big_max) = (wire::element_len(OID.len(), big), wire::element_len(OID.len(), big + 213));
    let spec = spec();
    let sizes = &spec[spec.find("### 9.9 Sizes").expect("9.9")..];
    let sizes = &sizes[..sizes.find("## 10.").expect("10")];
    let flat = sizes.split_whitespace().collect::<Vec<_>>().join(" ");
    for phrase in [
        format!("the envelope is {fixed} bytes plus"),
        format!("an envelope of {bare} bytes without padding and {padded_min} to {padded_max} bytes with it"),
        format!("the element is {element_min} to {} bytes", thousands(element_max)),
        format!("at most {} bytes of envelope", thousands(max_envelope)),
        format!("a body of at most {} bytes", thousands(max_body())),
        format!("{} bytes", thousands(MAX_ELEMENT_BYTES)),
        format!("{} bytes", thousands(MAX_STANZA_BYTES)),
        format!(
            "({overhead} bytes with `to` and `id` empty) and {} bytes for `to` and `id`",
            thousands(4_000 - overhead)
        ),
        format!("an element of {} to {} bytes", thousands(big_min), thousands(big_max)),
    ] {
        assert!(flat.contains(&phrase), "9.9 does not say {phrase:?}:\n{flat}");
    }
}

#[test]
fn path_segments_are_percent_encoded_and_dot_segments_never_sent() {
    assert_eq!(path_segment("Yq3hV8dK2mTzR0pLxW7bNg.c9Fh2LqP0sVxB4mKzT1aRw").as_deref(), Some(OID));
    assert_eq!(path_segment("a+b/c?d#e%f").as_deref(), Some("a%2Bb%2Fc%3Fd%23e%25f"));
    assert_eq!(path_segment("juliet@capulet.lit").as_deref(), Some("juliet%40capulet.lit"));
    assert_eq!(path_segment("~-._").as_deref(), Some("~-._"));
    for bad in ["", ".", ".."] {
        assert_eq!(path_segment(bad), None, "{bad:?}");
    }
    assert_eq!(path_segment("...").as_deref(), Some("..."));
}

const NOT_FOUND: &str = r#"{"type":"urn:keysrv:problem:not-found","title":"Not Found","status":404}"#;
const PROBLEM: &str = "content-type: application/problem+json\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_ids_as_one_encoded_segment() {
    let canned =
        Canned::start(vec![(404, PROBLEM, NOT_FOUND), (404, PROBLEM, NOT_FOUND), (404, PROBLEM, NOT_FOUND)]).await;
    let c = Client::with_token(format!("{}/stage/", canned.url), "tok").unwrap();
    // An objectid from a stanza cannot pick another route…
    assert!(matches!(c.key("a+b/../c?x").await, Err(Error::NotFound(_))));
    // …nor, as `.` or `..`, be dropped from the path: not asked at all.
    for dots in [".", ".."] {
        assert!(matches!(c.key(dots).await, Err(Error::NotFound(_))), "{dots}");
        assert!(matches!(c.conversation(dots).await, Err(Error::NotFound(_))), "{dots}");
        assert!(matches!(c.keys_batch([dots]).await.map(|b| b.missing), Ok(m) if m == [dots]));
    }
    assert!(matches!(c.remove_member("c", "juliet@capulet.lit").await, Err(Error::NotFound(_))));
    assert!(matches!(c.conversation("r\u{e9}").await, Err(Error::NotFound(_))));
    let lines: Vec<String> = canned.requests.lock().unwrap().iter().map(|r| r.line().to_owned()).collect();
    assert_eq!(
        lines,
        [
            "GET /stage/v1/keys/a%2Bb%2F..%2Fc%3Fx HTTP/1.1",
            "DELETE /stage/v1/conversations/c/members/juliet%40capulet.lit HTTP/1.1",
            "GET /stage/v1/conversations/r%C3%A9 HTTP/1.1",
        ]
    );
}

fn carbon(wrapper_from: &str) -> ReceivedMessage {
    ReceivedMessage::parse(&format!(
        "<message xmlns='jabber:client' from='{wrapper_from}' to='romeo@montague.lit/phone'><sent \
         xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' \
         from='romeo@montague.lit/laptop' to='juliet@capulet.lit' type='chat'><encrypted xmlns='jabber:encrypted' \
         objectid='c.k'>AQID</encrypted></message></forwarded></sent></message>"
    ))
    .unwrap()
}

fn mam(wrapper_from: Option<&str>, queryid: &str) -> ReceivedMessage {
    let from = wrapper_from.map(|f| format!(" from='{f}'")).unwrap_or_default();
    ReceivedMessage::parse(&format!(
        "<message xmlns='jabber:client'{from} to='juliet@capulet.lit/tablet'><result xmlns='urn:xmpp:mam:2' \
         queryid='{queryid}' id='a1'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' \
         from='romeo@montague.lit/orchard' to='juliet@capulet.lit' type='chat'><encrypted \
         xmlns='jabber:encrypted' objectid='c.k'>AQID</encrypted></message></forwarded></result></message>"
    ))
    .unwrap()
}

#[test]
fn carbons_come_from_the_account_itself_only() {
    assert_eq!(carbon("romeo@montague.lit").check_carbon("romeo@montague.lit/phone"), Ok(()));
    assert_eq!(carbon("Romeo@Montague.lit").check_carbon(ROMEO), Ok(()));
    for forged in ["tybalt@capulet.lit", "romeo@montague.lit/laptop", "montague.lit"] {
        let r = carbon(forged).check_carbon(ROMEO);
        assert!(matches!(r, Err(WireError::UntrustedWrapper(_))), "{forged}: {r:?}");
    }
}

#[test]
fn archive_results_come_from_the_archive_queried_only() {
    assert_eq!(mam(None, "q1").check_archive(JULIET, "q1", None), Ok(()));
    assert_eq!(mam(Some(JULIET), "q1").check_archive("juliet@capulet.lit/tablet", "q1", None), Ok(()));
    let room = "verona@conference.montague.lit";
    assert_eq!(mam(Some(room), "q2").check_archive(JULIET, "q2", Some(room)), Ok(()));
    for (m, queryid, queried, why) in [
        (mam(Some("tybalt@capulet.lit"), "q1"), "q1", None, "a foreign account"),
        (mam(Some("juliet@capulet.lit/laptop"), "q1"), "q1", None, "a full JID"),
        (mam(Some(JULIET), "q9"), "q1", None, "an answer to another query"),
        (mam(None, "q2"), "q2", Some(room), "no from, for a room archive"),
        (mam(Some("other@conference.montague.lit"), "q2"), "q2", Some(room), "another room"),
        (mam(Some(JULIET), "q2"), "q2", Some(room), "the account, for a room query"),
    ] {
        let r = m.check_archive(JULIET, queryid, queried);
        assert!(matches!(r, Err(WireError::UntrustedWrapper(_))), "{why}: {r:?}");
    }
    // Other deliveries are not archive results.
    assert_eq!(carbon(ROMEO).check_archive(JULIET, "q1", None), Ok(()));
}

#[test]
fn an_empty_body_is_no_body() {
    let element = wire::seal(&key(), OID, JULIET, ROMEO, &Content::text("")).unwrap();
    let raw = wire::open_raw(&key(), OID, JULIET, ROMEO, &element).unwrap();
    let text = std::str::from_utf8(&raw).unwrap();
    assert!(!text.contains("<body"), "{text}");
    assert_eq!(wire::open(&key(), OID, JULIET, ROMEO, &element).unwrap().body(), None);
}
