//! `docs/test-vectors.json`: every vector checked both ways against this
//! implementation, and the file checked to be exactly what the generator
//! below writes.
//!
//! Regenerate after a deliberate change to the format:
//!
//! ```sh
//! KEYSRV_WRITE_TEST_VECTORS=1 cargo test -p keysrv-client --test vectors
//! ```

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use keysrv_client::wire::{self, EncryptedElement};
use keysrv_client::{Content, Envelope, FileRef, Key, WireError, open, open_raw, seal_with_nonce};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Serialize, Deserialize)]
struct Vectors {
    description: Vec<String>,
    positive: Vec<Positive>,
    negative: Vec<Negative>,
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
                    id: "fMh1qL0sVxB4mKzT1aRwYq".into(),
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
            Content::default().with_file(FileRef::new("Zm9vYmFyYmF6cXV4cXV1eA")),
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
    let negative = vec![
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
             invalid-envelope, envelope-mismatch."
                .into(),
        ],
        positive: vec![p1, p2, p3, p4, p5],
        negative,
    }
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
