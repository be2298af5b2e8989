//! `docs/test-vectors.json`: every vector checked both ways against this
//! implementation, and the file checked to be exactly what the generator
//! below writes.
//!
//! Regenerate after a deliberate change to the format:
//!
//! ```sh
//! KEYSRV_WRITE_TEST_VECTORS=1 cargo test -p keysrv-client --test client vectors::file_is
//! ```

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use keysrv_client::chat::{self, ChatKind};
use keysrv_client::stanza::ReceivedMessage;
use keysrv_client::wire::{self, EncryptedElement};
use keysrv_client::{Content, Envelope, FileRef, Key, WireError, open, open_raw, path_segment, seal_with_nonce};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Serialize, Deserialize)]
struct Vectors {
    description: Vec<String>,
    positive: Vec<Positive>,
    negative: Vec<Negative>,
    lenient: Vec<Lenient>,
    conversation_checks: Vec<ConversationCheck>,
    wrappers: Vec<WrapperCheck>,
    url_path_segments: Vec<PathSegment>,
    jid_normalization: JidVectors,
}

/// The normalization vectors (docs/PROTOCOL.md, 6.9), written by hand: the
/// expected canonical forms are not computed by the implementation they check.
#[derive(Serialize, Deserialize)]
struct JidVectors {
    /// A user's bare JID from any spelling (`keysrv_jid::BareJid::normalize`).
    user: Vec<JidVector>,
    /// The bare JID of any JID, as a stanza's `from`/`to` (`BareJid::bare_of`).
    bare_of: Vec<JidVector>,
    /// A claim of identity: accepted only if already canonical (`BareJid::canonical`).
    canonical: Vec<JidVector>,
}

#[derive(Serialize, Deserialize)]
struct JidVector {
    comment: String,
    input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    canonical: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

enum JidOutcome {
    Ok(&'static str),
    Err(&'static str),
}

fn jv(input: &str, outcome: JidOutcome, comment: &str) -> JidVector {
    let (canonical, error) = match outcome {
        JidOutcome::Ok(c) => (Some(c.to_owned()), None),
        JidOutcome::Err(e) => (None, Some(e.to_owned())),
    };
    JidVector { comment: comment.to_owned(), input: input.to_owned(), canonical, error }
}

fn jid_vectors() -> JidVectors {
    use JidOutcome::{Err as err, Ok as ok};
    let user = [
        jv("juliet@capulet.lit", ok("juliet@capulet.lit"), "already canonical"),
        jv("Juliet@Capulet.LIT", ok("juliet@capulet.lit"), "localpart case-folded (Nodeprep), domain lowercased"),
        jv("JULIET@capulet.lit", ok("juliet@capulet.lit"), "upper-case localpart"),
        jv("\u{ff2a}ULIET@capulet.lit", ok("juliet@capulet.lit"), "fullwidth J (U+FF2A): NFKC in Nodeprep"),
        jv("juliet@\u{ff43}apulet.lit", ok("juliet@capulet.lit"), "fullwidth c in the domain: UTS #46 mapping"),
        jv("nurse@capulet.lit.", ok("nurse@capulet.lit"), "one trailing dot in the domain is removed (RFC 7622 3.2)"),
        jv("NURSE@Capulet.Lit.", ok("nurse@capulet.lit"), "case and trailing dot together"),
        jv(
            "r\u{e9}n\u{e9}@caf\u{e9}.example",
            ok("r\u{e9}n\u{e9}@xn--caf-dma.example"),
            "internationalized domain: compared as A-labels",
        ),
        jv(
            "r\u{e9}n\u{e9}@xn--caf-dma.example",
            ok("r\u{e9}n\u{e9}@xn--caf-dma.example"),
            "the A-label spelling of the same domain",
        ),
        jv("r\u{e9}n\u{e9}@XN--CAF-DMA.example", ok("r\u{e9}n\u{e9}@xn--caf-dma.example"), "upper-case A-label"),
        jv(
            "re\u{301}ne\u{301}@caf\u{e9}.example",
            ok("r\u{e9}n\u{e9}@xn--caf-dma.example"),
            "decomposed e + combining acute in the localpart: NFKC composes it",
        ),
        jv(
            "R\u{c9}N\u{c9}@CAF\u{c9}.EXAMPLE",
            ok("r\u{e9}n\u{e9}@xn--caf-dma.example"),
            "upper-case non-ASCII in both parts",
        ),
        jv(
            "stra\u{df}e@m\u{fc}nchen.example",
            ok("strasse@xn--mnchen-3ya.example"),
            "sharp s in a localpart: Nodeprep case folding maps it to ss",
        ),
        jv(
            "user@fa\u{df}.example",
            ok("user@xn--fa-hia.example"),
            "sharp s in a domain label: non-transitional UTS #46 keeps it (IDNA2008)",
        ),
        jv("user@127.0.0.1", ok("user@127.0.0.1"), "IPv4 literal domain"),
        jv("user@[2001:DB8::0:1]", ok("user@[2001:db8::1]"), "IPv6 literal domain, RFC 5952 form"),
        jv("user@localhost", ok("user@localhost"), "single-label domain"),
        jv(
            "\u{3f9}@capulet.lit",
            err("localpart"),
            "U+03F9 (added in Unicode 4.0) is unassigned in Unicode 3.2, the version of stringprep: refused (RFC 3454 7), \
             else NFKC would make it an upper-case sigma that a second normalization folds again",
        ),
        jv(
            "juliet\u{1f600}@capulet.lit",
            err("localpart"),
            "an emoji is unassigned in Unicode 3.2: refused in a localpart",
        ),
        jv(
            "juliet@x\u{558}y.example",
            ok("juliet@xn--xy-vcd.example"),
            "U+0558, a recent Armenian letter, in a domain: accepted by UTS #46 with current Unicode tables; \
             an IDNA library with older tables refuses it (a JID is in every message's authenticated data, so \
             implementations must agree)",
        ),
        jv(
            "juliet@\u{5d0}\u{1b3a}\u{5d0}.example",
            err("domain"),
            "a Balinese vowel sign (U+1B3A) between Hebrew letters: refused by UTS #46 with current Unicode \
             tables; an IDNA library with older tables accepts it",
        ),
        jv(
            "jul\u{ad}iet@capulet.lit",
            err("invisible"),
            "soft hyphen (U+00AD): stringprep would drop it; keysrv refuses it",
        ),
        jv("jul\u{200b}iet@capulet.lit", err("invisible"), "zero-width space (U+200B)"),
        jv("jul\u{200d}iet@capulet.lit", err("invisible"), "zero-width joiner (U+200D)"),
        jv("jul\u{200c}iet@capulet.lit", err("invisible"), "zero-width non-joiner (U+200C)"),
        jv("juliet@capu\u{ad}let.lit", err("invisible"), "soft hyphen in the domain"),
        jv("\u{feff}juliet@capulet.lit", err("invisible"), "byte order mark"),
        jv("juliet@capulet.lit/balcony", err("has-resource"), "a full JID is not a user's bare JID"),
        jv("capulet.lit", err("no-localpart"), "a domain is not a user"),
        jv("@capulet.lit", err("localpart"), "empty localpart"),
        jv("juliet@", err("domain"), "empty domain"),
        jv("juliet@capulet.lit..", err("domain"), "only one trailing dot is removed"),
        jv("juliet@.", err("domain"), "a domain of only the root dot"),
        jv("", err("empty"), "empty string"),
        jv("a b@capulet.lit", err("localpart"), "space is prohibited by Nodeprep"),
        jv("ju\"liet@capulet.lit", err("localpart"), "quotation mark is prohibited by Nodeprep"),
        jv("a@b@capulet.lit", err("domain"), "a second @ lands in the domain, where it is not allowed"),
        jv("juliet@capulet_lit", err("domain"), "underscore: not a host name (STD3 rules)"),
        jv("juliet@-capulet.lit", err("domain"), "leading hyphen in a label"),
        jv("juliet@xn--a.example", err("domain"), "invalid Punycode"),
        jv(&format!("{}@capulet.lit", "a".repeat(520)), err("too-long"), "longer than 512 bytes"),
    ];
    let bare_of = [
        jv("Juliet@Capulet.lit/Balcony", ok("juliet@capulet.lit"), "resource dropped"),
        jv("juliet@capulet.lit./balcony", ok("juliet@capulet.lit"), "trailing dot before the resource"),
        jv(
            "Room@Conference.Capulet.lit/Nurse",
            ok("room@conference.capulet.lit"),
            "a room's occupant JID: the room's bare JID",
        ),
        jv("capulet.lit", ok("capulet.lit"), "a server's JID has no localpart"),
        jv("juliet@capulet.lit/a/b@c", ok("juliet@capulet.lit"), "everything after the first slash is the resource"),
        jv("juliet@capulet.lit/", err("empty-resource"), "an empty resource"),
        jv("jul\u{200b}iet@capulet.lit/x", err("invisible"), "invisible characters count in the bare part"),
    ];
    let canonical = [
        jv("juliet@capulet.lit", ok("juliet@capulet.lit"), "an access token's username must already be canonical"),
        jv(
            "r\u{e9}n\u{e9}@xn--caf-dma.example",
            ok("r\u{e9}n\u{e9}@xn--caf-dma.example"),
            "canonical with a non-ASCII localpart",
        ),
        jv("Juliet@capulet.lit", err("not-canonical"), "another spelling of juliet@capulet.lit is another identity"),
        jv("\u{ff2a}ULIET@capulet.lit", err("not-canonical"), "fullwidth"),
        jv("juliet@\u{ff43}apulet.lit", err("not-canonical"), "fullwidth in the domain"),
        jv("juliet@capulet.lit.", err("not-canonical"), "trailing dot"),
        jv("r\u{e9}n\u{e9}@caf\u{e9}.example", err("not-canonical"), "U-label domain"),
        jv("re\u{301}ne\u{301}@xn--caf-dma.example", err("not-canonical"), "decomposed localpart"),
        jv("jul\u{ad}iet@capulet.lit", err("invisible"), "soft hyphen"),
        jv("juliet@capulet.lit/x", err("has-resource"), "a full JID"),
    ];
    JidVectors { user: user.into(), bare_of: bare_of.into(), canonical: canonical.into() }
}

#[derive(Serialize, Deserialize)]
struct Positive {
    name: String,
    comment: String,
    /// 32 bytes, padded standard base64 (as keysrv's API returns keys).
    key: String,
    objectid: String,
    /// As the stanza gives it (may be full or unnormalized).
    sender: String,
    recipient: String,
    nonce_hex: String,
    aad_hex: String,
    /// The exact envelope bytes that are encrypted (UTF-8).
    plaintext: String,
    body: Option<String>,
    element: String,
}

#[derive(Serialize, Deserialize)]
struct Negative {
    name: String,
    reason: String,
    key: String,
    objectid: String,
    sender: String,
    recipient: String,
    element: String,
    /// The error kind (`WireError::kind`).
    error: String,
}

/// An element that MUST open although sealing would not produce it (its
/// envelope is not in the canonical form): what the receiver reads.
#[derive(Serialize, Deserialize)]
struct Lenient {
    name: String,
    comment: String,
    key: String,
    objectid: String,
    sender: String,
    recipient: String,
    /// The exact envelope bytes inside `element`.
    plaintext: String,
    element: String,
    /// The body read (null: no body).
    body: Option<String>,
    /// The `<time/>` read, in UTC.
    time: String,
}

/// PROTOCOL 5, rules 11–12: the key's conversation against the chat.
#[derive(Serialize, Deserialize)]
struct ConversationCheck {
    name: String,
    comment: String,
    /// The message's `type`.
    #[serde(rename = "type")]
    message_type: String,
    sender: String,
    recipient: String,
    /// The key's `conversation_id`.
    conversation_id: String,
    /// That conversation's members (`GET /v1/conversations/{id}`).
    members: Vec<String>,
    /// For a room: the conversation the room is bound to (null: unbound).
    room_bound_to: Option<String>,
    /// null: the message is accepted.
    error: Option<String>,
}

/// PROTOCOL 5, rule 15: carbons and archive results come from where they
/// must, and what sender and recipient they give.
#[derive(Serialize, Deserialize)]
struct WrapperCheck {
    name: String,
    comment: String,
    stanza: String,
    /// The receiving account.
    own_jid: String,
    /// For an archive result: the `queryid` of the receiver's query.
    queryid: Option<String>,
    /// For an archive result: the JID the query went to (null: the
    /// account's own archive).
    archive: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    error: Option<String>,
}

/// PROTOCOL 9.8: an id as one URL path segment.
#[derive(Serialize, Deserialize)]
struct PathSegment {
    input: String,
    /// null: it cannot be put in a URL; not found without a request.
    segment: Option<String>,
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors.json")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn key(b64: &str) -> Key {
    Key::from_base64(b64).expect("vector key")
}

// ---------------------------------------------------------------------------
// The checks: what another implementation's test would do with the file.

#[test]
fn every_vector_holds() {
    let text = std::fs::read_to_string(vectors_path()).expect("reading docs/test-vectors.json");
    let v: Vectors = serde_json::from_str(&text).expect("parsing docs/test-vectors.json");
    assert!(v.positive.len() >= 5, "too few positive vectors");
    assert!(v.negative.len() >= 15, "too few negative vectors");
    for p in &v.positive {
        let k = key(&p.key);
        let nonce: [u8; 12] = unhex(&p.nonce_hex).try_into().expect("12-byte nonce");
        // Seal with the given nonce: exactly the element.
        let sealed = seal_with_nonce(&k, &p.objectid, &p.sender, &p.recipient, p.plaintext.as_bytes(), &nonce)
            .unwrap_or_else(|e| panic!("{}: seal: {e}", p.name));
        assert_eq!(sealed, p.element, "{}: sealed element", p.name);
        // The AAD as documented.
        let sender = wire::bare_jid(&p.sender).unwrap();
        let recipient = wire::bare_jid(&p.recipient).unwrap();
        assert_eq!(hex(&wire::aad(&p.objectid, &sender, &recipient)), p.aad_hex, "{}: aad", p.name);
        // The payload layout: version, nonce, ciphertext, tag.
        let payload = EncryptedElement::parse(&p.element).unwrap().payload;
        assert_eq!(payload[0], 0x01, "{}", p.name);
        assert_eq!(payload[1..13], nonce, "{}", p.name);
        assert_eq!(payload.len(), 1 + 12 + p.plaintext.len() + 16, "{}", p.name);
        // Open: the exact plaintext, and the envelope it parses to.
        let raw = open_raw(&k, &p.objectid, &p.sender, &p.recipient, &p.element)
            .unwrap_or_else(|e| panic!("{}: open_raw: {e}", p.name));
        assert_eq!(*raw, p.plaintext.as_bytes(), "{}: plaintext", p.name);
        let env = open(&k, &p.objectid, &p.sender, &p.recipient, &p.element)
            .unwrap_or_else(|e| panic!("{}: open: {e}", p.name));
        assert_eq!(env.body(), p.body.as_deref(), "{}: body", p.name);
        assert_eq!(env.from, sender, "{}", p.name);
        assert_eq!(env.to, recipient, "{}", p.name);
        // The plaintext is in the canonical form this implementation writes.
        assert_eq!(env.to_xml().unwrap(), p.plaintext, "{}: canonical form", p.name);
    }
    for n in &v.negative {
        let r = open(&key(&n.key), &n.objectid, &n.sender, &n.recipient, &n.element);
        match r {
            Ok(env) => panic!("{}: opened ({:?}) but must fail with {}", n.name, env.body(), n.error),
            Err(e) => assert_eq!(e.kind(), n.error, "{}: {e}", n.name),
        }
    }
}

fn read_vectors() -> Vectors {
    let text = std::fs::read_to_string(vectors_path()).expect("reading docs/test-vectors.json");
    serde_json::from_str(&text).expect("parsing docs/test-vectors.json")
}

#[test]
fn lenient_elements_open_to_what_they_say() {
    let v = read_vectors();
    assert!(v.lenient.len() >= 8, "too few lenient vectors");
    for l in &v.lenient {
        let k = key(&l.key);
        let raw = open_raw(&k, &l.objectid, &l.sender, &l.recipient, &l.element).unwrap();
        assert_eq!(*raw, l.plaintext.as_bytes(), "{}: plaintext", l.name);
        let env = open(&k, &l.objectid, &l.sender, &l.recipient, &l.element)
            .unwrap_or_else(|e| panic!("{}: must open: {e}", l.name));
        assert_eq!(env.body(), l.body.as_deref(), "{}: body", l.name);
        assert_eq!(env.time, at(&l.time), "{}: time", l.name);
    }
}

#[test]
fn conversation_checks_hold() {
    let v = read_vectors();
    assert!(v.conversation_checks.len() >= 10, "too few conversation checks");
    for c in &v.conversation_checks {
        let got = chat::check_conversation(
            ChatKind::of_type(&c.message_type),
            &c.sender,
            &c.recipient,
            &c.conversation_id,
            &c.members,
            c.room_bound_to.as_deref(),
        );
        assert_eq!(got.as_ref().err().map(WireError::kind), c.error.as_deref(), "{}: {got:?}", c.name);
    }
}

#[test]
fn wrapper_checks_hold() {
    let v = read_vectors();
    assert!(v.wrappers.len() >= 8, "too few wrapper checks");
    for w in &v.wrappers {
        let m = ReceivedMessage::parse(&w.stanza).unwrap_or_else(|e| panic!("{}: {e}", w.name));
        let checked = m.check_carbon(&w.own_jid).and_then(|()| match &w.queryid {
            Some(q) => m.check_archive(&w.own_jid, q, w.archive.as_deref()),
            None => Ok(()),
        });
        match (&w.error, checked) {
            (Some(e), Err(got)) => assert_eq!(got.kind(), e, "{}", w.name),
            (Some(e), Ok(())) => panic!("{}: accepted, but must fail with {e}", w.name),
            (None, Err(got)) => panic!("{}: {got}", w.name),
            (None, Ok(())) => {
                let (sender, recipient) = m.parties().unwrap_or_else(|e| panic!("{}: {e}", w.name));
                assert_eq!((Some(sender), Some(recipient)), (w.sender.clone(), w.recipient.clone()), "{}", w.name);
            }
        }
    }
}

#[test]
fn url_path_segments_hold() {
    let v = read_vectors();
    for p in &v.url_path_segments {
        assert_eq!(path_segment(&p.input), p.segment, "{:?}", p.input);
    }
}

/// Every rule the spec states about bytes has its vector (by name), so a
/// rule cannot lose its vector unnoticed.
#[test]
fn the_vectors_pin_every_rule() {
    let v = generate();
    let names: std::collections::HashSet<&str> =
        v.negative.iter().map(|n| n.name.as_str()).chain(v.lenient.iter().map(|l| l.name.as_str())).collect();
    for name in [
        "nonzero-padding-bits",
        "envelope-xml-declaration",
        "envelope-declared-encoding",
        "envelope-processing-instruction",
        "envelope-comment",
        "envelope-byte-order-mark",
        "envelope-stray-text",
        "content-stray-text",
        "rpad-too-long",
        "rpad-outside-alphabet",
        "body-with-element",
        "file-size-over-2^63-1",
        "file-size-leading-zero",
        "file-size-signed",
        "file-hash-wrong-length",
        "file-hash-twice",
        "file-id-too-long",
        "time-lower-case",
        "time-space-separator",
        "time-leap-second",
        "time-without-offset",
        "time-ten-fraction-digits",
        "envelope-from-full-jid",
        "envelope-from-invalid-jid",
        "envelope-to-invalid-jid",
        "empty-body-element",
        "empty-body-start-end",
        "whitespace-body",
        "time-with-offset",
        "time-minus-zero",
        "time-fraction",
        "unnormalized-envelope-jids",
        "pretty-printed-and-prefixed",
    ] {
        assert!(names.contains(name), "no vector {name}");
    }
    let kinds: std::collections::HashSet<&str> =
        v.conversation_checks.iter().filter_map(|c| c.error.as_deref()).collect();
    assert_eq!(kinds, ["sender-not-member", "conversation-mismatch"].into_iter().collect());
    assert!(v.conversation_checks.iter().any(|c| c.error.is_none() && c.message_type == "groupchat"));
    assert!(v.wrappers.iter().any(|w| w.error.as_deref() == Some("untrusted-wrapper") && w.queryid.is_some()));
    assert!(v.url_path_segments.iter().any(|p| p.segment.is_none()));
}

/// File ids in the vectors have the form 4.8 describes: the conversation id,
/// a dot and 22 base64url characters, 45 in all.
#[test]
fn file_ids_in_the_vectors_have_the_documented_form() {
    let v = read_vectors();
    let mut seen = 0;
    for p in &v.positive {
        let env = Envelope::parse(&p.plaintext).unwrap();
        let conversation = p.objectid.split('.').next().unwrap();
        for f in &env.content.files {
            let random = f.id.strip_prefix(&format!("{conversation}.")).unwrap_or_default();
            let base64url = random.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            assert!(f.id.len() == 45 && random.len() == 22 && base64url, "{}: file id {:?}", p.name, f.id);
            seen += 1;
        }
    }
    assert!(seen >= 2);
}

// ---------------------------------------------------------------------------
// The generator.

const KEY_A: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12,
    0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];
const OID_A: &str = "Yq3hV8dK2mTzR0pLxW7bNg.c9Fh2LqP0sVxB4mKzT1aRw";
/// The next key of the same conversation.
const OID_A2: &str = "Yq3hV8dK2mTzR0pLxW7bNg.Qm9taW9hbmRKdWxpZXQxMg";
/// A key of another conversation.
const OID_B: &str = "V2VyZSB0aGV5IHN0YXIteA.8dLkq2Xv0Pz7RmTc4NwYbA";
const ROMEO: &str = "romeo@montague.lit";
const JULIET: &str = "juliet@capulet.lit";
const ROOM: &str = "verona@conference.montague.lit";

fn key_b() -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = 0xff - u8::try_from(i).unwrap() * 3;
    }
    k
}

fn key_a2() -> [u8; 32] {
    [0x5a; 32]
}

fn at(stamp: &str) -> OffsetDateTime {
    OffsetDateTime::parse(stamp, &Rfc3339).unwrap()
}

fn envelope(content: Content, rpad: &str, from: &str, to: &str, stamp: &str) -> Envelope {
    Envelope { content, rpad: rpad.into(), from: from.into(), to: to.into(), time: at(stamp) }
}

#[allow(clippy::too_many_arguments)]
fn positive(
    name: &str,
    comment: &str,
    key: [u8; 32],
    objectid: &str,
    sender: &str,
    recipient: &str,
    nonce: [u8; 12],
    env: &Envelope,
) -> Positive {
    let k = Key::from_bytes(key);
    let plaintext = env.to_xml().unwrap();
    let element = seal_with_nonce(&k, objectid, sender, recipient, plaintext.as_bytes(), &nonce).unwrap();
    let aad = wire::aad(objectid, &wire::bare_jid(sender).unwrap(), &wire::bare_jid(recipient).unwrap());
    Positive {
        name: name.into(),
        comment: comment.into(),
        key: STANDARD.encode(key),
        objectid: objectid.into(),
        sender: sender.into(),
        recipient: recipient.into(),
        nonce_hex: hex(&nonce),
        aad_hex: hex(&aad),
        plaintext,
        body: env.body().map(str::to_owned),
        element,
    }
}

fn element_with(objectid: &str, payload: &[u8]) -> String {
    EncryptedElement { objectid: objectid.into(), payload: payload.to_vec() }.to_xml()
}

fn generate() -> Vectors {
    let p1_env = envelope(
        Content::text("O Romeo, Romeo! wherefore art thou Romeo?"),
        "Zm9yc3dlYXIgdGh5IG5hbWU",
        JULIET,
        ROMEO,
        "2025-01-31T09:30:00Z",
    );
    let p1 = positive(
        "chat-body",
        "1:1 chat, a body and padding.",
        KEY_A,
        OID_A,
        "juliet@capulet.lit/balcony",
        "romeo@montague.lit/orchard",
        [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab],
        &p1_env,
    );
    let p2 = positive(
        "chat-escaping-no-rpad",
        "XML special characters, a line break, non-ASCII text; no <rpad> (zero-length padding is omitted).",
        key_a2(),
        OID_A2,
        ROMEO,
        JULIET,
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        &envelope(
            Content::text("It is the east, & Juliet is the sun <3\n— «Soft!» ☀️"),
            "",
            ROMEO,
            JULIET,
            "2025-01-31T21:05:09Z",
        ),
    );
    let p3 = positive(
        "jid-normalization",
        "The stanza's JIDs are full and not normalized; the envelope and the AAD use the normalized bare JIDs.",
        KEY_A,
        OID_A,
        "Romeo@Montague.LIT/Orchard",
        "JULIET@capulet.lit/balcony",
        [0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67],
        &envelope(
            Content::text("By a name I know not how to tell thee who I am."),
            "q",
            ROMEO,
            JULIET,
            "2025-02-01T00:00:00Z",
        ),
    );
    let p4 = positive(
        "groupchat-file-and-reply",
        "Group chat: the recipient is the room's bare JID; the content holds a body, a file reference with its \
         SHA-256 and another payload element (a XEP-0461 reply).",
        key_b(),
        OID_B,
        "romeo@montague.lit/orchard",
        "verona@conference.montague.lit/Romeo",
        [0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44],
        &envelope(
            Content::text("The map of the orchard wall.")
                .with_file(FileRef {
                    id: "V2VyZSB0aGV5IHN0YXIteA.fMh1qL0sVxB4mKzT1aRwYq".into(),
                    name: Some("orchard map.png".into()),
                    media_type: Some("image/png".into()),
                    size: Some(48213),
                    sha256: Some("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=".into()),
                })
                .with_element(
                    "<reply xmlns='urn:xmpp:reply:0' to='verona@conference.montague.lit/Mercutio' id='msg-41'/>",
                ),
            "c3RhcnMK/+",
            ROMEO,
            ROOM,
            "2025-02-14T18:00:00Z",
        ),
    );
    let p5 = positive(
        "file-only",
        "No body at all: only a file reference (with no optional attributes).",
        key_b(),
        OID_B,
        JULIET,
        ROOM,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        &envelope(
            Content::default().with_file(FileRef::new("V2VyZSB0aGV5IHN0YXIteA.Zm9vYmFyYmF6cXV4cXV1eA")),
            "AAAA",
            JULIET,
            ROOM,
            "2025-02-14T18:00:01Z",
        ),
    );

    // Negative vectors, mostly derived from p1 (Juliet to Romeo under key A).
    let ka = STANDARD.encode(KEY_A);
    let p1_payload = EncryptedElement::parse(&p1.element).unwrap().payload;
    let flip = |i: usize| {
        let mut p = p1_payload.clone();
        p[i] ^= 0x01;
        element_with(OID_A, &p)
    };
    let with_version = |v: u8| {
        let mut p = p1_payload.clone();
        p[0] = v;
        element_with(OID_A, &p)
    };
    let crafted = |plaintext: &str| {
        seal_with_nonce(&Key::from_bytes(KEY_A), OID_A, JULIET, ROMEO, plaintext.as_bytes(), &[0x0c; 12]).unwrap()
    };
    let neg = |name: &str,
               reason: &str,
               key: &str,
               objectid: &str,
               sender: &str,
               recipient: &str,
               element: String,
               error: &str| {
        Negative {
            name: name.into(),
            reason: reason.into(),
            key: key.into(),
            objectid: objectid.into(),
            sender: sender.into(),
            recipient: recipient.into(),
            element,
            error: error.into(),
        }
    };
    let last = p1_payload.len() - 1;
    let mut unpadded = p1_payload.clone();
    if unpadded.len().is_multiple_of(3) {
        unpadded.pop();
    }
    let p1_el = p1.element.clone();
    let mut negative = vec![
        neg(
            "wrong-objectid",
            "The objectid attribute was changed to another key id of the same conversation, and the \
             receiver holds the same key bytes under it: the AAD binds the objectid.",
            &ka,
            OID_A2,
            JULIET,
            ROMEO,
            p1_el.replace(OID_A, OID_A2),
            "decrypt",
        ),
        neg(
            "moved-to-another-conversation",
            "The ciphertext was relabelled with a key of another conversation and \
             opened with that key.",
            &STANDARD.encode(key_b()),
            OID_B,
            JULIET,
            ROMEO,
            p1_el.replace(OID_A, OID_B),
            "decrypt",
        ),
        neg(
            "wrong-sender",
            "Delivered as if Mercutio had sent it.",
            &ka,
            OID_A,
            "mercutio@montague.lit/street",
            ROMEO,
            p1_el.clone(),
            "decrypt",
        ),
        neg(
            "wrong-recipient",
            "Delivered to someone else than the recipient it was sealed for.",
            &ka,
            OID_A,
            JULIET,
            "nurse@capulet.lit",
            p1_el.clone(),
            "decrypt",
        ),
        neg(
            "reflected",
            "Sender and recipient swapped (the message reflected back to its sender).",
            &ka,
            OID_A,
            ROMEO,
            JULIET,
            p1_el.clone(),
            "decrypt",
        ),
        neg(
            "wrong-key",
            "The right objectid, another key.",
            &STANDARD.encode(key_a2()),
            OID_A,
            JULIET,
            ROMEO,
            p1_el.clone(),
            "decrypt",
        ),
        neg(
            "tampered-ciphertext",
            "One bit of the first ciphertext byte flipped.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            flip(13),
            "decrypt",
        ),
        neg(
            "tampered-tag",
            "One bit of the tag's last byte flipped.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            flip(last),
            "decrypt",
        ),
        neg("tampered-nonce", "One bit of the nonce flipped.", &ka, OID_A, JULIET, ROMEO, flip(1), "decrypt"),
        neg(
            "truncated-tag",
            "The last byte of the tag removed.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            element_with(OID_A, &p1_payload[..last]),
            "decrypt",
        ),
        neg(
            "truncated-below-minimum",
            "28 bytes: shorter than version + nonce + tag (29).",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            element_with(OID_A, &p1_payload[..28]),
            "malformed",
        ),
        neg(
            "unknown-version",
            "Version/algorithm byte 0x02 is not defined.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            with_version(0x02),
            "unsupported-version",
        ),
        neg(
            "version-zero",
            "Version/algorithm byte 0x00 is not defined.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            with_version(0x00),
            "unsupported-version",
        ),
        neg(
            "bad-base64",
            "Characters outside the base64 alphabet.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            p1_el.replacen("'>", "'>!*", 1),
            "malformed",
        ),
        neg(
            "unpadded-base64",
            "Base64 without its padding: only padded standard base64 is accepted.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            format!(
                "<encrypted xmlns='jabber:encrypted' objectid='{OID_A}'>{}</encrypted>",
                STANDARD_NO_PAD.encode(&unpadded)
            ),
            "malformed",
        ),
        neg(
            "empty",
            "No payload at all.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            format!("<encrypted xmlns='jabber:encrypted' objectid='{OID_A}'/>"),
            "malformed",
        ),
        neg(
            "wrong-namespace",
            "The element is not in the jabber:encrypted namespace.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            p1_el.replace("xmlns='jabber:encrypted'", "xmlns='jabber:encrypted:2'"),
            "malformed",
        ),
        neg(
            "missing-objectid",
            "No objectid attribute.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            p1_el.replace(&format!(" objectid='{OID_A}'"), ""),
            "malformed",
        ),
        neg(
            "objectid-mismatch",
            "The element names another objectid than the key the receiver opens it with.",
            &ka,
            OID_A2,
            JULIET,
            ROMEO,
            p1_el.clone(),
            "objectid-mismatch",
        ),
        neg(
            "envelope-from-mismatch",
            "Authentic ciphertext (AAD Juliet to Romeo) whose envelope claims another sender.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            crafted(
                &envelope(Content::text("x"), "", "mercutio@montague.lit", ROMEO, "2025-01-31T09:30:00Z")
                    .to_xml()
                    .unwrap(),
            ),
            "envelope-mismatch",
        ),
        neg(
            "envelope-to-mismatch",
            "Authentic ciphertext whose envelope names another recipient.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            crafted(
                &envelope(Content::text("x"), "", JULIET, "nurse@capulet.lit", "2025-01-31T09:30:00Z")
                    .to_xml()
                    .unwrap(),
            ),
            "envelope-mismatch",
        ),
        neg(
            "not-an-envelope",
            "Authentic ciphertext of plain text instead of an envelope.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            crafted("O Romeo, Romeo!"),
            "invalid-envelope",
        ),
        neg(
            "envelope-without-time",
            "Authentic ciphertext of an envelope that lacks the required <time/>.",
            &ka,
            OID_A,
            JULIET,
            ROMEO,
            crafted(
                "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>x</body></content><from \
                     jid='juliet@capulet.lit'/><to jid='romeo@montague.lit'/></envelope>",
            ),
            "invalid-envelope",
        ),
    ];
    negative.push(neg(
        "nonzero-padding-bits",
        "Base64 whose last character before the padding has a bit set that the padding drops: only the canonical \
         encoding is accepted (RFC 4648 3.5).",
        &ka,
        OID_A,
        JULIET,
        ROMEO,
        nonzero_padding_bits(&p1_payload),
        "malformed",
    ));
    negative.extend(envelope_negatives());
    Vectors {
        description: vec![
            "Test vectors for the jabber:encrypted wire format, version 1 (docs/PROTOCOL.md).".into(),
            "key: 32 bytes, padded standard base64. nonce_hex: the 12-byte nonce. aad_hex: the AAD, \
             \"jabber:encrypted:1\" 0x00 objectid 0x00 sender-bare-JID 0x00 recipient-bare-JID, JIDs normalized."
                .into(),
            "positive: sealing `plaintext` (its UTF-8 bytes) with key, objectid, sender, recipient and the nonce \
             must give `element` exactly; opening `element` must give `plaintext` and an envelope with `body`."
                .into(),
            "negative: opening `element` with key, objectid, sender and recipient must fail with `error`: \
             malformed (the element or its base64 is invalid, or the payload is under 29 bytes), \
             unsupported-version, objectid-mismatch, decrypt (authentication failed: indistinguishable on purpose), \
             invalid-envelope (docs/PROTOCOL.md 6.4: restricted XML, rpad, body, file, time and JID rules), \
             envelope-mismatch."
                .into(),
            "lenient: elements whose envelope is not in the canonical form but valid: opening `element` must give \
             `plaintext`, the body `body` (null: no body; an empty <body/> is no body) and the time `time`."
                .into(),
            "conversation_checks: the key's conversation against the chat (docs/PROTOCOL.md 5, rules 11-12): for a \
             message of `type` from `sender` to `recipient` under a key of `conversation_id`, whose members are \
             `members`, and (groupchat) the room bound to `room_bound_to` (null: unbound), the receiver must refuse \
             with `error` (sender-not-member, conversation-mismatch) or accept (null)."
                .into(),
            "wrappers: a received `stanza` at `own_jid` (archive results: in answer to the query `queryid` sent to \
             `archive`, null for the account's own archive) must be refused with `error` (untrusted-wrapper) or give \
             `sender` and `recipient` (docs/PROTOCOL.md 5, rule 15, and 6.6)."
                .into(),
            "url_path_segments: an id (objectid, conversation id, file id, JID) as one URL path segment \
             (docs/PROTOCOL.md 9.8); null: it cannot be requested and is not found without a request."
                .into(),
            "jid_normalization: the one JID normalization (docs/PROTOCOL.md 6.9). user: a user's bare JID from \
             any spelling; bare_of: the bare JID of any JID (a stanza's from or to); canonical: a claim of \
             identity (an access token's username), accepted only if already canonical. Each vector gives the \
             canonical form or the kind of error: empty, too-long, has-resource, empty-resource, no-localpart, \
             localpart, domain, invisible, not-canonical."
                .into(),
        ],
        positive: vec![p1, p2, p3, p4, p5],
        negative,
        lenient: lenient_vectors(),
        conversation_checks: conversation_checks(),
        wrappers: wrapper_checks(),
        url_path_segments: url_path_segments(),
        jid_normalization: jid_vectors(),
    }
}

/// `payload` as base64 whose last character before the padding carries a
/// bit the padding discards.
fn nonzero_padding_bits(payload: &[u8]) -> String {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut p = payload.to_vec();
    if p.len().is_multiple_of(3) {
        p.pop();
    }
    let mut b64 = STANDARD.encode(&p).into_bytes();
    let pad = b64.iter().filter(|&&b| b == b'=').count();
    let i = b64.len() - pad - 1;
    let value = ALPHABET.bytes().position(|c| c == b64[i]).unwrap();
    // The lowest bit of the last character is always one the padding drops.
    b64[i] = ALPHABET.as_bytes()[value ^ 1];
    let text = String::from_utf8(b64).unwrap();
    assert!(STANDARD.decode(&text).is_err(), "still canonical");
    format!("<encrypted xmlns='jabber:encrypted' objectid='{OID_A}'>{text}</encrypted>")
}

/// A valid envelope (Juliet to Romeo) the envelope vectors change one thing in.
const ENVELOPE: &str = "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>x</body></content><from \
                        jid='juliet@capulet.lit'/><to jid='romeo@montague.lit'/><time \
                        stamp='2025-01-31T09:30:00Z'/></envelope>";
const FILE_REF: &str = "<file xmlns='jabber:encrypted:file' id='Yq3hV8dK2mTzR0pLxW7bNg.fMh1qL0sVxB4mKzT1aRwYq' \
                        size='48213'><hash xmlns='urn:xmpp:hashes:2' \
                        algo='sha-256'>n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=</hash></file>";

fn with_file(file: &str) -> String {
    ENVELOPE.replace("</content>", &format!("{file}</content>"))
}

/// `plaintext` sealed under key A from Juliet to Romeo, each vector with a
/// nonce of its own.
fn sealed_envelope(n: u8, plaintext: &str) -> String {
    let nonce = [0x0e, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0e];
    seal_with_nonce(&Key::from_bytes(KEY_A), OID_A, JULIET, ROMEO, plaintext.as_bytes(), &nonce).unwrap()
}

/// Authentic ciphertexts of envelopes that break one rule of 6.4 each.
fn envelope_negatives() -> Vec<Negative> {
    // The base is valid: each vector fails for its one change only.
    assert_eq!(envelope(Content::text("x"), "", JULIET, ROMEO, "2025-01-31T09:30:00Z").to_xml().unwrap(), ENVELOPE);
    assert!(Envelope::parse(&with_file(FILE_REF)).is_ok());
    let time = |stamp: &str| ENVELOPE.replace("2025-01-31T09:30:00Z", stamp);
    let file = |from: &str, to: &str| with_file(&FILE_REF.replace(from, to));
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "envelope-xml-declaration",
            "An XML declaration before the envelope: the envelope is restricted XML (no declaration, comment or \
             processing instruction).",
            format!("<?xml version='1.0' encoding='UTF-8'?>{ENVELOPE}"),
        ),
        (
            "envelope-declared-encoding",
            "An XML declaration naming another encoding: the envelope is UTF-8 and declares nothing.",
            format!("<?xml version='1.0' encoding='ISO-8859-1'?>{ENVELOPE}"),
        ),
        (
            "envelope-processing-instruction",
            "A processing instruction inside <content/>.",
            ENVELOPE.replace("<content>", "<content><?keysrv show-as='html'?>"),
        ),
        ("envelope-comment", "A comment inside the envelope.", ENVELOPE.replace("<content>", "<!-- x --><content>")),
        ("envelope-byte-order-mark", "A byte order mark before the envelope.", format!("\u{feff}{ENVELOPE}")),
        (
            "envelope-stray-text",
            "Text directly inside <envelope/> (only whitespace may stand between its elements).",
            ENVELOPE.replace("<content>", "Hello<content>"),
        ),
        (
            "content-stray-text",
            "Text directly inside <content/>, outside any payload element.",
            ENVELOPE.replace("<content>", "<content>Hello"),
        ),
        (
            "rpad-too-long",
            "201 characters of padding: at most 200.",
            ENVELOPE.replace("</content>", &format!("</content><rpad>{}</rpad>", "A".repeat(201))),
        ),
        (
            "rpad-outside-alphabet",
            "Padding with characters outside the base64 alphabet (A-Z a-z 0-9 + /).",
            ENVELOPE.replace("</content>", "</content><rpad>Zm9v-_==</rpad>"),
        ),
        (
            "body-with-element",
            "A <body/> holding an element: the body is text only.",
            ENVELOPE.replace(">x</body>", ">x <b xmlns='urn:example'>y</b></body>"),
        ),
        ("file-size-over-2^63-1", "size 2^63: sizes go up to 2^63 - 1.", file("48213", "9223372036854775808")),
        ("file-size-leading-zero", "size with a leading zero.", file("'48213'", "'048213'")),
        ("file-size-signed", "size with a sign.", file("'48213'", "'+48213'")),
        (
            "file-hash-wrong-length",
            "A sha-256 <hash/> of 31 bytes.",
            file("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", &STANDARD.encode([7u8; 31])),
        ),
        (
            "file-hash-twice",
            "Two sha-256 <hash/> elements: which one to check would be ambiguous.",
            file(
                "</file>",
                "<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</hash></file>",
            ),
        ),
        (
            "file-id-too-long",
            "A file id of 65 characters: ids are 1 to 64 visible ASCII characters, like objectids.",
            file("Yq3hV8dK2mTzR0pLxW7bNg.fMh1qL0sVxB4mKzT1aRwYq", &"f".repeat(65)),
        ),
        ("time-lower-case", "Lower-case t and z (XEP-0082 uses upper case).", time("2025-01-31t09:30:00z")),
        ("time-space-separator", "A space instead of T.", time("2025-01-31 09:30:00Z")),
        ("time-leap-second", "A leap second (:60).", time("2016-12-31T23:59:60Z")),
        ("time-without-offset", "No time zone.", time("2025-01-31T09:30:00")),
        ("time-ten-fraction-digits", "More than 9 fraction digits.", time("2025-01-31T09:30:00.1234567890Z")),
        (
            "envelope-from-full-jid",
            "<from jid/> with a resource: the envelope holds bare JIDs.",
            ENVELOPE.replace("jid='juliet@capulet.lit'", "jid='juliet@capulet.lit/balcony'"),
        ),
        (
            "envelope-from-invalid-jid",
            "<from jid/> is not a JID: invalid-envelope, before any comparison with the sender.",
            ENVELOPE.replace("jid='juliet@capulet.lit'", "jid='juliet@'"),
        ),
        (
            "envelope-to-invalid-jid",
            "<to jid/> is not a JID (two trailing dots).",
            ENVELOPE.replace("jid='romeo@montague.lit'", "jid='romeo@montague.lit..'"),
        ),
    ];
    let ka = STANDARD.encode(KEY_A);
    cases
        .into_iter()
        .enumerate()
        .map(|(i, (name, reason, plaintext))| {
            assert_ne!(plaintext, ENVELOPE, "{name} changes nothing");
            Negative {
                name: name.into(),
                reason: reason.into(),
                key: ka.clone(),
                objectid: OID_A.into(),
                sender: JULIET.into(),
                recipient: ROMEO.into(),
                element: sealed_envelope(u8::try_from(i).unwrap(), &plaintext),
                error: "invalid-envelope".into(),
            }
        })
        .collect()
}

fn lenient_vectors() -> Vec<Lenient> {
    let time = |stamp: &str| ENVELOPE.replace("2025-01-31T09:30:00Z", stamp);
    let body = |b: &str| ENVELOPE.replace("<body xmlns='jabber:client'>x</body>", b);
    let cases: Vec<(&str, &str, String, Option<&str>, &str)> = vec![
        (
            "empty-body-element",
            "An empty <body/> is no body.",
            body("<body xmlns='jabber:client'/>"),
            None,
            "2025-01-31T09:30:00Z",
        ),
        (
            "empty-body-start-end",
            "<body></body> is no body either.",
            body("<body xmlns='jabber:client'></body>"),
            None,
            "2025-01-31T09:30:00Z",
        ),
        (
            "whitespace-body",
            "A body of one space is a body (only zero characters is no body).",
            body("<body xmlns='jabber:client'> </body>"),
            Some(" "),
            "2025-01-31T09:30:00Z",
        ),
        (
            "cdata-body",
            "CDATA is text.",
            body("<body xmlns='jabber:client'><![CDATA[<3 & more]]></body>"),
            Some("<3 & more"),
            "2025-01-31T09:30:00Z",
        ),
        (
            "time-with-offset",
            "A time with an offset: the same instant as 09:30:00Z.",
            time("2025-01-31T10:30:00+01:00"),
            Some("x"),
            "2025-01-31T09:30:00Z",
        ),
        ("time-minus-zero", "-00:00 is UTC.", time("2025-01-31T09:30:00-00:00"), Some("x"), "2025-01-31T09:30:00Z"),
        ("time-fraction", "Fractional seconds.", time("2025-01-31T09:30:00.25Z"), Some("x"), "2025-01-31T09:30:00.25Z"),
        (
            "unnormalized-envelope-jids",
            "Other spellings of the same bare JIDs: compared after normalization (6.9).",
            ENVELOPE
                .replace("jid='juliet@capulet.lit'", "jid='Juliet@Capulet.LIT'")
                .replace("jid='romeo@montague.lit'", "jid='romeo@montague.lit.'"),
            Some("x"),
            "2025-01-31T09:30:00Z",
        ),
        (
            "empty-rpad",
            "An empty <rpad/> (senders omit it).",
            ENVELOPE.replace("</content>", "</content><rpad/>"),
            Some("x"),
            "2025-01-31T09:30:00Z",
        ),
        (
            "pretty-printed-and-prefixed",
            "Whitespace between elements, a prefix for the envelope's namespace, double quotes, another order, an \
             unknown affix element and an unknown payload element.",
            "<s:envelope xmlns:s=\"urn:xmpp:sce:1\">\n  <s:time stamp=\"2025-01-31T09:30:00Z\"/>\n  <s:to \
             jid=\"romeo@montague.lit\"/>\n  <s:from jid=\"juliet@capulet.lit\"/>\n  <s:content>\n    <body \
             xmlns=\"jabber:client\">x</body>\n    <active xmlns=\"http://jabber.org/protocol/chatstates\"/>\n  \
             </s:content>\n  <s:future xmlns:s=\"urn:example\"/>\n</s:envelope>\n"
                .to_owned(),
            Some("x"),
            "2025-01-31T09:30:00Z",
        ),
    ];
    let ka = STANDARD.encode(KEY_A);
    cases
        .into_iter()
        .enumerate()
        .map(|(i, (name, comment, plaintext, body, time))| Lenient {
            name: name.into(),
            comment: comment.into(),
            key: ka.clone(),
            objectid: OID_A.into(),
            sender: JULIET.into(),
            recipient: ROMEO.into(),
            element: sealed_envelope(0x80 + u8::try_from(i).unwrap(), &plaintext),
            plaintext,
            body: body.map(str::to_owned),
            time: time.into(),
        })
        .collect()
}

fn conversation_checks() -> Vec<ConversationCheck> {
    const MERCUTIO: &str = "mercutio@montague.lit";
    const CHAT: &str = "Yq3hV8dK2mTzR0pLxW7bNg";
    const ROOM_CONV: &str = "V2VyZSB0aGV5IHN0YXIteA";
    let c = |name: &str,
             comment: &str,
             message_type: &str,
             (sender, recipient): (&str, &str),
             conversation_id: &str,
             members: &[&str],
             room_bound_to: Option<&str>,
             error: Option<&str>| ConversationCheck {
        name: name.into(),
        comment: comment.into(),
        message_type: message_type.into(),
        sender: sender.into(),
        recipient: recipient.into(),
        conversation_id: conversation_id.into(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        room_bound_to: room_bound_to.map(str::to_owned),
        error: error.map(str::to_owned),
    };
    let two = [ROMEO, JULIET];
    let three = [ROMEO, JULIET, MERCUTIO];
    vec![
        c(
            "chat-of-the-two",
            "A one-to-one conversation of exactly the two parties.",
            "chat",
            (ROMEO, JULIET),
            CHAT,
            &two,
            None,
            None,
        ),
        c("normal-of-the-two", "type normal is one-to-one too.", "normal", (JULIET, ROMEO), CHAT, &two, None, None),
        c(
            "chat-member-spellings",
            "Members are compared normalized.",
            "chat",
            ("romeo@montague.lit/orchard", JULIET),
            CHAT,
            &["Romeo@Montague.lit", JULIET],
            None,
            None,
        ),
        c("note-to-self", "A conversation of one, to oneself.", "chat", (ROMEO, ROMEO), CHAT, &[ROMEO], None, None),
        c(
            "chat-sender-not-member",
            "Someone holding the key seals as a sender who is not in the conversation.",
            "chat",
            (MERCUTIO, JULIET),
            CHAT,
            &two,
            None,
            Some("sender-not-member"),
        ),
        c(
            "chat-under-a-room-key",
            "A room member seals a one-to-one message with the room's key: a reply under it would reach the room.",
            "chat",
            (MERCUTIO, JULIET),
            ROOM_CONV,
            &three,
            None,
            Some("conversation-mismatch"),
        ),
        c(
            "chat-peer-left",
            "The conversation has only one of the two parties left.",
            "chat",
            (JULIET, ROMEO),
            CHAT,
            &[JULIET],
            None,
            Some("conversation-mismatch"),
        ),
        c(
            "chat-recipient-not-member",
            "The recipient is not in the conversation.",
            "chat",
            (ROMEO, "nurse@capulet.lit"),
            CHAT,
            &two,
            None,
            Some("conversation-mismatch"),
        ),
        c(
            "room-unbound",
            "The first room message that passes binds the room to its conversation.",
            "groupchat",
            (ROMEO, ROOM),
            ROOM_CONV,
            &three,
            None,
            None,
        ),
        c(
            "room-bound",
            "The room's own conversation.",
            "groupchat",
            (MERCUTIO, ROOM),
            ROOM_CONV,
            &three,
            Some(ROOM_CONV),
            None,
        ),
        c(
            "room-of-two",
            "A room's conversation may have two members.",
            "groupchat",
            (ROMEO, ROOM),
            CHAT,
            &two,
            Some(CHAT),
            None,
        ),
        c(
            "room-under-another-conversation",
            "A room message under another conversation than the room's.",
            "groupchat",
            (ROMEO, ROOM),
            CHAT,
            &two,
            Some(ROOM_CONV),
            Some("conversation-mismatch"),
        ),
        c(
            "room-sender-not-member",
            "The occupant's real JID is not a member; checked before the binding.",
            "groupchat",
            ("tybalt@capulet.lit", ROOM),
            CHAT,
            &two,
            Some(ROOM_CONV),
            Some("sender-not-member"),
        ),
    ]
}

fn wrapper_checks() -> Vec<WrapperCheck> {
    const EL: &str =
        "<encrypted xmlns='jabber:encrypted' objectid='Yq3hV8dK2mTzR0pLxW7bNg.c9Fh2LqP0sVxB4mKzT1aRw'>AQID</encrypted>";
    let original = format!(
        "<message xmlns='jabber:client' from='juliet@capulet.lit/balcony' to='romeo@montague.lit' type='chat'>{EL}</message>"
    );
    let carbon = |from: &str| {
        format!(
            "<message xmlns='jabber:client' from='{from}' to='juliet@capulet.lit/phone' type='chat'><sent \
             xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>{original}</forwarded></sent></message>"
        )
    };
    let mam = |from: Option<&str>, forwarded: &str| {
        let from = from.map(|f| format!(" from='{f}'")).unwrap_or_default();
        format!(
            "<message xmlns='jabber:client'{from} to='romeo@montague.lit/tablet'><result xmlns='urn:xmpp:mam:2' \
             queryid='q1' id='28482-98726-73623'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' \
             stamp='2025-01-31T09:30:00Z'/>{forwarded}</forwarded></result></message>"
        )
    };
    let room_message = format!(
        "<message xmlns='jabber:client' from='{ROOM}/Juliet' type='groupchat'>{EL}<x \
         xmlns='http://jabber.org/protocol/muc#user'><item jid='juliet@capulet.lit/balcony'/></x></message>"
    );
    let w = |name: &str,
             comment: &str,
             stanza: String,
             own_jid: &str,
             query: Option<(&str, Option<&str>)>,
             outcome: Result<(&str, &str), &str>| WrapperCheck {
        name: name.into(),
        comment: comment.into(),
        stanza,
        own_jid: own_jid.into(),
        queryid: query.map(|(q, _)| q.to_owned()),
        archive: query.and_then(|(_, a)| a.map(str::to_owned)),
        sender: outcome.ok().map(|(s, _)| s.to_owned()),
        recipient: outcome.ok().map(|(_, r)| r.to_owned()),
        error: outcome.err().map(str::to_owned),
    };
    let juliet_to_romeo = Ok((JULIET, ROMEO));
    vec![
        w("direct", "A message received directly.", original.clone(), ROMEO, None, juliet_to_romeo),
        w(
            "carbon-from-own-account",
            "A carbon from the account's bare JID: the original's from and to.",
            carbon(JULIET),
            "juliet@capulet.lit/phone",
            None,
            juliet_to_romeo,
        ),
        w(
            "carbon-from-another-account",
            "A carbon from anyone else is forged.",
            carbon("tybalt@capulet.lit"),
            JULIET,
            None,
            Err("untrusted-wrapper"),
        ),
        w(
            "carbon-from-a-full-jid",
            "A carbon from a full JID of the account is a client's, not the server's: refused.",
            carbon("juliet@capulet.lit/laptop"),
            JULIET,
            None,
            Err("untrusted-wrapper"),
        ),
        w(
            "archive-result-without-from",
            "A result of the account's own archive may come without from.",
            mam(None, &original),
            ROMEO,
            Some(("q1", None)),
            juliet_to_romeo,
        ),
        w(
            "archive-result-from-own-account",
            "A result of the account's own archive from its bare JID.",
            mam(Some(ROMEO), &original),
            "romeo@montague.lit/tablet",
            Some(("q1", None)),
            juliet_to_romeo,
        ),
        w(
            "archive-result-from-a-foreign-account",
            "A result from another account than the one queried: forged.",
            mam(Some("tybalt@capulet.lit"), &original),
            ROMEO,
            Some(("q1", None)),
            Err("untrusted-wrapper"),
        ),
        w(
            "archive-result-for-another-query",
            "A result whose queryid is not the query's.",
            mam(Some(ROMEO), &original),
            ROMEO,
            Some(("q2", None)),
            Err("untrusted-wrapper"),
        ),
        w(
            "room-archive-result",
            "A result of the room's archive, from the room queried: the occupant's real JID and the room.",
            mam(Some(ROOM), &room_message),
            ROMEO,
            Some(("q1", Some(ROOM))),
            Ok((JULIET, ROOM)),
        ),
        w(
            "room-archive-result-from-the-account",
            "A result claiming to be of the room's archive but from the account: not where the query went.",
            mam(None, &room_message),
            ROMEO,
            Some(("q1", Some(ROOM))),
            Err("untrusted-wrapper"),
        ),
    ]
}

fn url_path_segments() -> Vec<PathSegment> {
    let p =
        |input: &str, segment: Option<&str>| PathSegment { input: input.into(), segment: segment.map(str::to_owned) };
    vec![
        p(OID_A, Some(OID_A)),
        p("a+b", Some("a%2Bb")),
        p("a/b", Some("a%2Fb")),
        p("a?b#c", Some("a%3Fb%23c")),
        p("100%", Some("100%25")),
        p("%2e%2e", Some("%252e%252e")),
        p("...", Some("...")),
        p("~-._", Some("~-._")),
        p("juliet@capulet.lit", Some("juliet%40capulet.lit")),
        p("r\u{e9}n\u{e9}@xn--caf-dma.example", Some("r%C3%A9n%C3%A9%40xn--caf-dma.example")),
        p(".", None),
        p("..", None),
        p("", None),
    ]
}

fn render(v: &Vectors) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

#[test]
fn file_is_what_the_generator_writes() {
    let want = render(&generate());
    if std::env::var_os("KEYSRV_WRITE_TEST_VECTORS").is_some() {
        std::fs::write(vectors_path(), &want).expect("writing docs/test-vectors.json");
        return;
    }
    let have = std::fs::read_to_string(vectors_path()).unwrap_or_default();
    assert!(
        have == want,
        "docs/test-vectors.json is not what the generator writes; after a deliberate change run \
         KEYSRV_WRITE_TEST_VECTORS=1 cargo test -p keysrv-client --test vectors"
    );
}

#[test]
fn negative_kinds_cover_every_open_error() {
    let kinds: std::collections::HashSet<String> = generate().negative.into_iter().map(|n| n.error).collect();
    for e in [
        WireError::Malformed(String::new()),
        WireError::UnsupportedVersion(2),
        WireError::ObjectIdMismatch { expected: String::new(), found: String::new() },
        WireError::Decrypt,
        WireError::InvalidEnvelope(String::new()),
        WireError::EnvelopeMismatch("from"),
    ] {
        assert!(kinds.contains(e.kind()), "no negative vector of kind {}", e.kind());
    }
}

/// The AAD's JIDs go through the one normalization: every `bare_of` vector,
/// and every user spelling that normalizes, through the function that
/// sealing and opening use.
#[test]
fn aad_jids_follow_the_normalization_vectors() {
    let v = generate().jid_normalization;
    let mut checked = 0;
    for j in v.bare_of.iter().chain(v.user.iter().filter(|j| j.canonical.is_some())) {
        let got = wire::bare_jid(&j.input);
        match &j.canonical {
            Some(want) => assert_eq!(got.as_deref(), Ok(want.as_str()), "{:?}: {}", j.input, j.comment),
            None => assert!(matches!(got, Err(WireError::InvalidJid(_))), "{:?} ({}) gave {got:?}", j.input, j.comment),
        }
        checked += 1;
    }
    assert!(checked > 20);
}

/// One person, one JID: a message sealed for one spelling of an address
/// opens under every other spelling of it (a server that routes
/// `nurse@capulet.lit.` delivers it as `nurse@capulet.lit`).
#[test]
fn every_spelling_of_an_address_opens_the_same_message() {
    let key = Key::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let objectid = "Yq3hV8dK2mTzR0pLxW7bNg.Qm9taW9hbmRKdWxpZXQxMg";
    for (sealed_as, opened_as) in [
        ("nurse@capulet.lit.", "nurse@capulet.lit"),
        ("nurse@capulet.lit", "Nurse@Capulet.lit./phone"),
        ("r\u{e9}n\u{e9}@caf\u{e9}.example", "r\u{e9}n\u{e9}@xn--caf-dma.example"),
        ("r\u{e9}n\u{e9}@xn--caf-dma.example", "R\u{c9}N\u{c9}@CAF\u{c9}.example/tablet"),
    ] {
        let element = wire::seal(&key, objectid, "romeo@montague.lit", sealed_as, &Content::text("hi")).unwrap();
        let opened = open(&key, objectid, "romeo@montague.lit/orchard", opened_as, &element)
            .unwrap_or_else(|e| panic!("sealed for {sealed_as:?}, opened as {opened_as:?}: {e}"));
        assert_eq!(opened.body(), Some("hi"));
        let back = wire::seal(&key, objectid, opened_as, "romeo@montague.lit.", &Content::text("hi")).unwrap();
        open(&key, objectid, sealed_as, "Romeo@Montague.lit", &back)
            .unwrap_or_else(|e| panic!("sealed by {opened_as:?}, opened as from {sealed_as:?}: {e}"));
    }
}
