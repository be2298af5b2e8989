//! The `jabber:encrypted` wire format end to end: `seal`, `seal_with_nonce`,
//! `open`, `open_raw`, starting from the published test vectors and from
//! fuzzed envelopes.
//!
//! Properties:
//! - `open(seal(x)) == x`: an envelope whose canonical form can be written
//!   opens to exactly that envelope (`Envelope::parse` of the plaintext,
//!   which equals `x` itself when `x` is in canonical form);
//! - any single-bit change to a sealed element (its XML text or its decoded
//!   payload) fails to open, and so does any change of key, objectid, sender
//!   or recipient (up to another spelling of the same JID);
//! - every negative test vector fails with its documented error.

#![no_main]

use arbitrary::Arbitrary;
use keysrv_client::envelope::FileRef;
use keysrv_client::wire::{EncryptedElement, WireError, bare_jid, open_raw};
use keysrv_client::{Content, Envelope, Key, open, seal, seal_with_nonce};
use keysrv_fuzz::{flip_bit, pick, unhex, vectors};
use libfuzzer_sys::fuzz_target;
use time::{OffsetDateTime, UtcOffset};

#[derive(Arbitrary, Debug)]
enum Input {
    /// A positive test vector as published, then tampered with.
    Vector { index: u8, text_bit: u32, payload_bit: u32, key_bit: u16 },
    /// A negative test vector: it fails, with its documented error.
    Negative { index: u8 },
    /// A fuzzed envelope sealed with a chosen nonce.
    Sealed(Box<Message>),
    /// Fuzzed content through `seal` (random nonce and padding, time now).
    Random(Box<Message>),
}

#[derive(Arbitrary, Debug)]
struct Message {
    key: [u8; 32],
    objectid: Text,
    sender: Text,
    recipient: Text,
    /// The envelope's `<from>`, when it is not the sender as given.
    envelope_from: Option<Text>,
    body: Option<String>,
    files: Vec<File>,
    extra: Vec<Extra>,
    rpad: Rpad,
    unix_secs: i64,
    nanos: u32,
    offset_minutes: i16,
    nonce: [u8; 12],
    text_bit: u32,
    payload_bit: u32,
    key_bit: u16,
    other_objectid: Text,
}

/// A string from the test vectors or any string.
#[derive(Arbitrary, Debug)]
enum Text {
    Vector(u8),
    Any(String),
}

/// Random padding: of the base64 alphabet, as `seal` draws it, or any text.
#[derive(Arbitrary, Debug)]
enum Rpad {
    Alphabet(Vec<u8>),
    Any(String),
}

#[derive(Arbitrary, Debug)]
struct File {
    id: Text,
    name: Option<String>,
    media_type: Option<String>,
    size: Option<u64>,
    sha256: Option<Sha>,
}

#[derive(Arbitrary, Debug)]
enum Sha {
    Digest([u8; 32]),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Extra {
    /// An element written exactly in the canonical form the crate writes.
    Canonical(Elem),
    /// Any text: sealing must refuse it or canonicalize it stably.
    Any(String),
}

#[derive(Arbitrary, Debug)]
struct Elem {
    name: Name,
    ns: String,
    attrs: Vec<(Name, String)>,
    children: Vec<Child>,
}

#[derive(Arbitrary, Debug)]
enum Child {
    Text(String),
    Elem(Elem),
}

#[derive(Arbitrary, Debug)]
struct Name(u8, Vec<u8>);

fuzz_target!(|input: Input| match input {
    Input::Vector { index, text_bit, payload_bit, key_bit } => vector(index, text_bit, payload_bit, key_bit),
    Input::Negative { index } => negative(index),
    Input::Sealed(m) => sealed(&m),
    Input::Random(m) => random(&m),
});

fn vector(index: u8, text_bit: u32, payload_bit: u32, key_bit: u16) {
    let lenient = &vectors().lenient;
    if usize::from(index) % (lenient.len() + 1) < lenient.len() && index & 0x80 != 0 {
        let v = pick(lenient, index);
        let key = Key::from_base64(&v.key).expect("vector key");
        let env = open(&key, &v.objectid, &v.sender, &v.recipient, &v.element)
            .unwrap_or_else(|e| panic!("lenient vector {} does not open: {e}", v.name));
        assert_eq!(env.body(), v.body.as_deref(), "{}", v.name);
        assert_eq!(env, Envelope::parse(&v.plaintext).expect("vector plaintext"));
        tampering_fails(&key, &v.objectid, &v.sender, &v.recipient, &v.element, text_bit, payload_bit, key_bit);
        return;
    }
    let v = pick(&vectors().positive, index);
    let key = Key::from_base64(&v.key).expect("vector key");
    let env = open(&key, &v.objectid, &v.sender, &v.recipient, &v.element)
        .unwrap_or_else(|e| panic!("positive vector {} does not open: {e}", v.name));
    assert_eq!(env.body(), v.body.as_deref(), "{}", v.name);
    assert_eq!(env, Envelope::parse(&v.plaintext).expect("vector plaintext"));
    let raw = open_raw(&key, &v.objectid, &v.sender, &v.recipient, &v.element).expect("open_raw");
    assert_eq!(raw.as_slice(), v.plaintext.as_bytes());
    let nonce: [u8; 12] = unhex(&v.nonce_hex).try_into().expect("12-byte nonce");
    let again = seal_with_nonce(&key, &v.objectid, &v.sender, &v.recipient, v.plaintext.as_bytes(), &nonce);
    assert_eq!(again.as_deref(), Ok(v.element.as_str()), "{}: sealing is not deterministic", v.name);
    tampering_fails(&key, &v.objectid, &v.sender, &v.recipient, &v.element, text_bit, payload_bit, key_bit);
}

fn negative(index: u8) {
    let v = pick(&vectors().negative, index);
    let key = Key::from_base64(&v.key).expect("vector key");
    match open(&key, &v.objectid, &v.sender, &v.recipient, &v.element) {
        Ok(_) => panic!("negative vector {} opens", v.name),
        Err(e) => assert_eq!(e.kind(), v.error, "{}: {e}", v.name),
    }
}

fn text(t: &Text, pool: &[String]) -> String {
    match t {
        Text::Vector(i) => pick(pool, *i).clone(),
        Text::Any(s) => s.clone(),
    }
}

fn objectids() -> Vec<String> {
    vectors().positive.iter().map(|p| p.objectid.clone()).collect()
}

fn content(m: &Message) -> Content {
    let files = m
        .files
        .iter()
        .map(|f| FileRef {
            id: text(&f.id, &objectids()),
            name: f.name.clone(),
            media_type: f.media_type.clone(),
            size: f.size,
            sha256: f.sha256.as_ref().map(|s| match s {
                Sha::Digest(d) => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.encode(d)
                }
                Sha::Any(s) => s.clone(),
            }),
        })
        .collect();
    let extra = m
        .extra
        .iter()
        .map(|e| match e {
            Extra::Canonical(e) => canonical(e, None, 0),
            Extra::Any(s) => s.clone(),
        })
        .collect();
    Content { body: m.body.clone(), files, extra }
}

fn sealed(m: &Message) {
    let jids = vectors().jids();
    let (sender, recipient) = (text(&m.sender, jids), text(&m.recipient, jids));
    let objectid = text(&m.objectid, &objectids());
    let key = Key::from_bytes(m.key);
    let offset = UtcOffset::from_whole_seconds(i32::from(m.offset_minutes % (24 * 60)) * 60).expect("offset");
    let Some(time) = OffsetDateTime::from_unix_timestamp(m.unix_secs % 400_000_000_000)
        .and_then(|t| t.replace_nanosecond(m.nanos % 1_000_000_000))
        .ok()
        .and_then(|t| t.checked_to_offset(offset))
    else {
        return;
    };
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let rpad = match &m.rpad {
        Rpad::Alphabet(b) => b.iter().take(200).map(|&b| char::from(*pick(ALPHABET, b))).collect(),
        Rpad::Any(s) => s.clone(),
    };
    // The envelope names the parties by their bare JIDs, as `seal` writes them.
    let bare_or_raw = |j: &str| bare_jid(j).unwrap_or_else(|_| j.to_owned());
    let env = Envelope {
        content: content(m),
        rpad,
        from: m.envelope_from.as_ref().map_or_else(|| bare_or_raw(&sender), |f| text(f, jids)),
        to: bare_or_raw(&recipient),
        time,
    };
    let Ok(plaintext) = env.to_xml() else { return };
    let element = match seal_with_nonce(&key, &objectid, &sender, &recipient, plaintext.as_bytes(), &m.nonce) {
        Ok(e) => e,
        Err(e) => {
            match e.kind() {
                "invalid-jid" => assert!(bare_jid(&sender).is_err() || bare_jid(&recipient).is_err()),
                "invalid-objectid" => assert!(!valid_objectid(&objectid)),
                "too-large" => assert!(plaintext.len() > 40_000, "{} bytes are too large", plaintext.len()),
                _ => panic!("seal_with_nonce fails with {e:?}"),
            }
            return;
        }
    };
    assert_eq!(*open_raw(&key, &objectid, &sender, &recipient, &element).expect("open_raw"), plaintext.as_bytes());
    let parsed = Envelope::parse(&plaintext);
    let opened = open(&key, &objectid, &sender, &recipient, &element);
    let same_party = |a: &str, b: &str| bare_jid(a).ok() == bare_jid(b).ok();
    match (&parsed, &opened) {
        (Ok(p), Ok(o)) => {
            assert_eq!(p, o);
            assert!(same_party(&env.from, &sender) && same_party(&env.to, &recipient));
            canonical_fields_survive(&env, o, canonical_extras(m));
        }
        (Ok(_), Err(WireError::EnvelopeMismatch("from"))) => assert!(!same_party(&env.from, &sender)),
        (Ok(_), Err(WireError::InvalidEnvelope(_))) => assert!(bare_jid(&env.from).is_err()),
        (Err(WireError::InvalidEnvelope(why)), _) => {
            panic!("the canonical envelope {plaintext:?} does not parse: {why}")
        }
        (p, o) => panic!("parse {p:?}, open {o:?}"),
    }
    if opened.is_ok() {
        tampering_fails(&key, &objectid, &sender, &recipient, &element, m.text_bit, m.payload_bit, m.key_bit);
        let other = text(&m.other_objectid, &objectids());
        if other != objectid && valid_objectid(&other) {
            assert!(matches!(
                open(&key, &other, &sender, &recipient, &element),
                Err(WireError::ObjectIdMismatch { .. })
            ));
            let payload = EncryptedElement::parse(&element).expect("sealed element parses").payload;
            let relabelled = EncryptedElement { objectid: other.clone(), payload }.to_xml();
            assert_eq!(open(&key, &other, &sender, &recipient, &relabelled), Err(WireError::Decrypt));
        }
    }
}

fn canonical_extras(m: &Message) -> bool {
    m.extra.iter().all(|e| matches!(e, Extra::Canonical(_)))
}

/// Fields written in canonical form come back exactly (the SHA-256 text is
/// trimmed); extra elements not written in canonical form come back
/// canonicalized, and stay so.
fn canonical_fields_survive(sent: &Envelope, got: &Envelope, extras_canonical: bool) {
    // An empty body may be no body (docs/PROTOCOL.md 6.4).
    let body_ok = got.content.body == sent.content.body || (sent.body() == Some("") && got.body().is_none());
    assert!(body_ok, "body {:?} opens as {:?}", sent.content.body, got.content.body);
    assert_eq!((&got.rpad, &got.from, &got.to, got.time), (&sent.rpad, &sent.from, &sent.to, sent.time));
    assert_eq!(got.content.files.len(), sent.content.files.len());
    for (g, s) in got.content.files.iter().zip(&sent.content.files) {
        let trimmed = s.sha256.as_deref().map(str::trim);
        assert_eq!((&g.id, &g.name, &g.media_type, g.size), (&s.id, &s.name, &s.media_type, s.size));
        assert_eq!(g.sha256.as_deref(), trimmed);
    }
    if extras_canonical {
        assert_eq!(got.content.extra, sent.content.extra, "extra elements change");
    } else {
        let resealed = Envelope { content: got.content.clone(), ..got.clone() };
        let xml = resealed.to_xml().expect("an opened envelope can be written again");
        assert_eq!(Envelope::parse(&xml).as_ref(), Ok(got), "opened extras are not canonical");
    }
}

fn random(m: &Message) {
    let jids = vectors().jids();
    let (sender, recipient) = (text(&m.sender, jids), text(&m.recipient, jids));
    let objectid = text(&m.objectid, &objectids());
    let key = Key::from_bytes(m.key);
    let content = content(m);
    let before = OffsetDateTime::now_utc().unix_timestamp();
    let Ok(element) = seal(&key, &objectid, &sender, &recipient, &content) else { return };
    let env = open(&key, &objectid, &sender, &recipient, &element).expect("a sealed message opens");
    assert_eq!(Some(&env.from), bare_jid(&sender).ok().as_ref());
    assert_eq!(Some(&env.to), bare_jid(&recipient).ok().as_ref());
    assert!(env.rpad.len() <= 200 && env.rpad.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
    let t = env.time.unix_timestamp();
    assert!(t >= before && t <= OffsetDateTime::now_utc().unix_timestamp(), "time {t}");
    let expected =
        Envelope { content, rpad: env.rpad.clone(), from: env.from.clone(), to: env.to.clone(), time: env.time };
    canonical_fields_survive(&expected, &env, canonical_extras(m));
}

#[allow(clippy::too_many_arguments)]
fn tampering_fails(
    key: &Key,
    objectid: &str,
    sender: &str,
    recipient: &str,
    element: &str,
    text_bit: u32,
    payload_bit: u32,
    key_bit: u16,
) {
    // One bit of the XML text.
    let mut bytes = element.as_bytes().to_vec();
    flip_bit(&mut bytes, text_bit.into());
    if let Ok(t) = std::str::from_utf8(&bytes) {
        let r = open(key, objectid, sender, recipient, t);
        assert!(r.is_err(), "a one-bit change of the text opens: {t:?}");
        assert!(open_raw(key, objectid, sender, recipient, t).is_err());
    }
    // One bit of the decoded payload (version, nonce, ciphertext or tag).
    let parsed = EncryptedElement::parse(element).expect("sealed element parses");
    let mut payload = parsed.payload.clone();
    flip_bit(&mut payload, payload_bit.into());
    let t = EncryptedElement { objectid: parsed.objectid.clone(), payload }.to_xml();
    match open(key, objectid, sender, recipient, &t) {
        Err(WireError::Decrypt | WireError::UnsupportedVersion(_)) => {}
        r => panic!("a one-bit change of the payload gives {r:?}"),
    }
    // One bit of the key.
    let mut k = *key.expose();
    flip_bit(&mut k, key_bit.into());
    assert_eq!(open(&Key::from_bytes(k), objectid, sender, recipient, element), Err(WireError::Decrypt));
    // Sender and recipient swapped.
    if bare_jid(sender).ok() != bare_jid(recipient).ok() {
        assert_eq!(open(key, objectid, recipient, sender, element), Err(WireError::Decrypt));
    }
}

fn valid_objectid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The canonical text of an element (the writer's rules in
/// client/src/xml.rs): namespace declared where it differs from the
/// parent's, attributes single-quoted and escaped, no empty or adjacent text
/// nodes, `<x/>` when there are no children.
fn canonical(e: &Elem, parent_ns: Option<&str>, depth: usize) -> String {
    // Only characters XML can carry; a namespace that would be empty is "urn:x".
    let ns: String = e.ns.chars().filter(|&c| is_xml_char(c)).collect();
    let ns = if ns.is_empty() { "urn:x" } else { ns.as_str() };
    let tag = name(&e.name);
    let mut out = format!("<{tag}");
    if parent_ns != Some(ns) {
        out.push_str(&format!(" xmlns='{}'", escape(ns, true)));
    }
    let mut seen = std::collections::HashSet::new();
    for (n, v) in &e.attrs {
        let n = name(n);
        if n != "xmlns" && seen.insert(n.clone()) {
            out.push_str(&format!(" {n}='{}'", escape(v, true)));
        }
    }
    let mut children = String::new();
    let mut last_was_text = false;
    for c in &e.children {
        match c {
            Child::Text(t) if !last_was_text && !escape(t, false).is_empty() => {
                children.push_str(&escape(t, false));
                last_was_text = true;
            }
            Child::Elem(c) if depth < 4 => {
                children.push_str(&canonical(c, Some(ns), depth + 1));
                last_was_text = false;
            }
            _ => {}
        }
    }
    if children.is_empty() {
        out.push_str("/>");
    } else {
        out.push_str(&format!(">{children}</{tag}>"));
    }
    out
}

fn name(n: &Name) -> String {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
    const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789.-";
    let mut s = String::from(char::from(*pick(FIRST, n.0)));
    s.extend(n.1.iter().take(16).map(|&b| char::from(*pick(REST, b))));
    // Not the elements Content keeps apart (body, file).
    if s == "body" || s == "file" { format!("{s}_") } else { s }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Escaped as the crate writes it; characters XML cannot carry are dropped.
fn escape(s: &str, attr: bool) -> String {
    let mut out = String::new();
    for c in s.chars().filter(|&c| is_xml_char(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\'' if attr => out.push_str("&apos;"),
            '"' if attr => out.push_str("&quot;"),
            '\t' if attr => out.push_str("&#9;"),
            '\n' if attr => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}
