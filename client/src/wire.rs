//! The `jabber:encrypted` wire format: sealing an envelope into an
//! `<encrypted>` element and opening it again. `docs/PROTOCOL.md` is the
//! specification; `docs/test-vectors.json` pins it.
//!
//! ```text
//! <encrypted xmlns='jabber:encrypted' objectid='OBJECTID'>BASE64</encrypted>
//!
//! BASE64 = base64(0x01 ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes))
//! AAD    = "jabber:encrypted:1" ‖ 0x00 ‖ objectid ‖ 0x00 ‖ sender bare JID ‖ 0x00 ‖ recipient bare JID
//! ```

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::envelope::{Content, Envelope, random_rpad};
use crate::secret::Key;
use crate::xml::{self, Element};

use crate::format::check_objectid;
pub use crate::format::{
    AAD_LABEL, MAX_ELEMENT_BYTES, MAX_OBJECTID_LEN, MIN_PAYLOAD_LEN, NONCE_LEN, NS, TAG_LEN, VERSION_AES_256_GCM,
    WireError, aad, bare_jid, element_len,
};

/// A parsed `<encrypted xmlns='jabber:encrypted'>` element: the key's
/// objectid and the decoded payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedElement {
    pub objectid: String,
    pub payload: Vec<u8>,
}

impl EncryptedElement {
    /// Parses the element's XML text (any prefix or quoting; whitespace in
    /// the base64 is ignored).
    pub fn parse(element: &str) -> Result<Self, WireError> {
        let e = xml::parse(element).map_err(|e| WireError::Malformed(e.0))?;
        Self::from_element(&e)
    }

    pub(crate) fn from_element(e: &Element) -> Result<Self, WireError> {
        if !e.is(NS, "encrypted") {
            return Err(WireError::Malformed(format!(
                "<{}> in namespace {:?}, not <encrypted xmlns='{NS}'>",
                e.name, e.ns
            )));
        }
        let objectid = e.attr("objectid").ok_or_else(|| WireError::Malformed("no objectid attribute".into()))?;
        check_objectid(objectid).map_err(|m| WireError::Malformed(format!("objectid: {m}")))?;
        if e.has_child_elements() {
            return Err(WireError::Malformed("the element holds elements, not base64 text".into()));
        }
        let mut b64 = e.text();
        b64.retain(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'));
        let payload = STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| WireError::Malformed("the content is not padded standard base64".into()))?;
        if payload.is_empty() {
            return Err(WireError::Malformed("empty payload".into()));
        }
        Ok(Self { objectid: objectid.to_owned(), payload })
    }

    /// The nonce of a version-1 payload: with the objectid it identifies the
    /// message, so a receiver can discard the copy it gets twice (offline
    /// delivery and MAM) or a replay.
    pub fn nonce(&self) -> Option<[u8; NONCE_LEN]> {
        match self.payload.first() {
            Some(&VERSION_AES_256_GCM) => self.payload.get(1..1 + NONCE_LEN)?.try_into().ok(),
            _ => None,
        }
    }

    /// The canonical element text. (An objectid with characters XML cannot
    /// carry has them replaced by U+FFFD; such an element never opens.)
    pub fn to_xml(&self) -> String {
        let carried: String =
            self.objectid.chars().map(|c| if xml::is_xml_char(c) { c } else { char::REPLACEMENT_CHARACTER }).collect();
        let objectid = xml::escape_attr(&carried).unwrap_or_default();
        format!("<encrypted xmlns='{NS}' objectid='{objectid}'>{}</encrypted>", STANDARD.encode(&self.payload))
    }
}

fn cipher(key: &Key) -> Result<Aes256Gcm, WireError> {
    Aes256Gcm::new_from_slice(key.expose()).map_err(|_| WireError::InvalidKey("not 32 bytes".into()))
}

fn random_nonce() -> Result<[u8; NONCE_LEN], WireError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| WireError::Random)?;
    Ok(nonce)
}

fn seal_bytes(
    key: &Key,
    objectid: &str,
    sender: &str,
    recipient: &str,
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Result<String, WireError> {
    check_objectid(objectid).map_err(WireError::InvalidObjectId)?;
    check_size(element_len(objectid.len(), plaintext.len()))?;
    let aad = aad(objectid, sender, recipient);
    let ct = cipher(key)?
        .encrypt(&Nonce::from(*nonce), Payload { msg: plaintext, aad: &aad })
        .map_err(|_| WireError::InvalidContent("too long for AES-GCM".into()))?;
    let mut payload = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    payload.push(VERSION_AES_256_GCM);
    payload.extend_from_slice(nonce);
    payload.extend_from_slice(&ct);
    Ok(EncryptedElement { objectid: objectid.to_owned(), payload }.to_xml())
}

fn check_size(bytes: usize) -> Result<(), WireError> {
    if bytes > MAX_ELEMENT_BYTES {
        return Err(WireError::TooLarge { bytes, max: MAX_ELEMENT_BYTES });
    }
    Ok(())
}

/// The envelope `seal` encrypts: `content` from `sender` to `recipient`
/// (normalized bare JIDs), stamped now (UTC, whole seconds), with fresh
/// random padding.
pub fn envelope_for(sender: &str, recipient: &str, content: &Content) -> Result<Envelope, WireError> {
    let now = OffsetDateTime::now_utc();
    Ok(Envelope {
        content: content.clone(),
        rpad: random_rpad()?,
        from: bare_jid(sender)?,
        to: bare_jid(recipient)?,
        time: now.replace_nanosecond(0).unwrap_or(now),
    })
}

/// Seals `content` from `sender` to `recipient` under `key`/`objectid`,
/// returning the `<encrypted>` element text. JIDs may be full or bare; their
/// normalized bare forms go into the envelope and the AAD. In a group chat
/// the recipient is the room's bare JID. The nonce comes from the operating
/// system's CSPRNG.
///
/// Fails with [`WireError::TooLarge`] when the element could exceed
/// [`MAX_ELEMENT_BYTES`] with the largest padding: the outcome depends on
/// the content only, never on the padding drawn.
pub fn seal(key: &Key, objectid: &str, sender: &str, recipient: &str, content: &Content) -> Result<String, WireError> {
    let envelope = envelope_for(sender, recipient, content)?;
    let plaintext = Zeroizing::new(envelope.to_xml()?);
    // The padding is base64-alphabet text: it takes its length in bytes.
    let rpad = if envelope.rpad.is_empty() { 0 } else { "<rpad></rpad>".len() + envelope.rpad.len() };
    check_size(element_len(objectid.len(), plaintext.len() - rpad + MAX_RPAD_ELEMENT))?;
    // envelope_for has normalized both JIDs.
    seal_bytes(key, objectid, &envelope.from, &envelope.to, plaintext.as_bytes(), &random_nonce()?)
}

/// The bytes the largest `<rpad>` adds to an envelope.
const MAX_RPAD_ELEMENT: usize = "<rpad></rpad>".len() + crate::envelope::MAX_RPAD;

/// Seals a complete envelope (its `from` and `to` are the AAD's sender and
/// recipient) with a random nonce.
pub fn seal_envelope(key: &Key, objectid: &str, envelope: &Envelope) -> Result<String, WireError> {
    let sender = bare_jid(&envelope.from)?;
    let recipient = bare_jid(&envelope.to)?;
    let plaintext = Zeroizing::new(envelope.to_xml()?);
    seal_bytes(key, objectid, &sender, &recipient, plaintext.as_bytes(), &random_nonce()?)
}

/// Seals exact plaintext bytes with a caller-chosen nonce. **For test
/// vectors only**: reusing a nonce under a key destroys AES-GCM's security.
#[doc(hidden)]
pub fn seal_with_nonce(
    key: &Key,
    objectid: &str,
    sender: &str,
    recipient: &str,
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Result<String, WireError> {
    seal_bytes(key, objectid, &bare_jid(sender)?, &bare_jid(recipient)?, plaintext, nonce)
}

fn decrypt(
    key: &Key,
    objectid: &str,
    sender: &str,
    recipient: &str,
    element: &EncryptedElement,
) -> Result<Zeroizing<Vec<u8>>, WireError> {
    check_objectid(objectid).map_err(WireError::InvalidObjectId)?;
    if element.objectid != objectid {
        return Err(WireError::ObjectIdMismatch { expected: objectid.to_owned(), found: element.objectid.clone() });
    }
    let p = &element.payload;
    match p.first() {
        None => return Err(WireError::Malformed("empty payload".into())),
        Some(&VERSION_AES_256_GCM) => {}
        Some(&v) => return Err(WireError::UnsupportedVersion(v)),
    }
    if p.len() < MIN_PAYLOAD_LEN {
        return Err(WireError::Malformed(format!("payload of {} bytes; at least {MIN_PAYLOAD_LEN}", p.len())));
    }
    let nonce = Nonce::try_from(&p[1..1 + NONCE_LEN]).map_err(|_| WireError::Malformed("nonce".into()))?;
    let aad = aad(objectid, sender, recipient);
    let plaintext = cipher(key)?
        .decrypt(&nonce, Payload { msg: &p[1 + NONCE_LEN..], aad: &aad })
        .map_err(|_| WireError::Decrypt)?;
    Ok(Zeroizing::new(plaintext))
}

/// Decrypts an `<encrypted>` element to its plaintext bytes without
/// interpreting them (no envelope checks). Prefer [`open`].
pub fn open_raw(
    key: &Key,
    objectid: &str,
    sender: &str,
    recipient: &str,
    element: &str,
) -> Result<Zeroizing<Vec<u8>>, WireError> {
    let parsed = EncryptedElement::parse(element)?;
    decrypt(key, objectid, &bare_jid(sender)?, &bare_jid(recipient)?, &parsed)
}

/// Opens an `<encrypted>` element: `objectid` is the key's (it must be the
/// one the element names), `sender` and `recipient` come from the stanza
/// (see `docs/PROTOCOL.md`, "Determining the sender and recipient"). Checks
/// the envelope's `<from>`/`<to>` against them.
pub fn open(key: &Key, objectid: &str, sender: &str, recipient: &str, element: &str) -> Result<Envelope, WireError> {
    open_element(key, objectid, sender, recipient, &EncryptedElement::parse(element)?)
}

/// Like [`open`], for an element already parsed (e.g. by
/// [`crate::stanza::ReceivedMessage::parse`]).
pub fn open_element(
    key: &Key,
    objectid: &str,
    sender: &str,
    recipient: &str,
    element: &EncryptedElement,
) -> Result<Envelope, WireError> {
    let sender = bare_jid(sender)?;
    let recipient = bare_jid(recipient)?;
    let plaintext = decrypt(key, objectid, &sender, &recipient, element)?;
    let text = std::str::from_utf8(&plaintext).map_err(|_| WireError::InvalidEnvelope("not UTF-8".into()))?;
    let envelope = Envelope::parse(text)?;
    let bare = |j: &str| bare_jid(j).map_err(|_| WireError::InvalidEnvelope(format!("{j:?} is not a JID")));
    if bare(&envelope.from)? != sender {
        return Err(WireError::EnvelopeMismatch("from"));
    }
    if bare(&envelope.to)? != recipient {
        return Err(WireError::EnvelopeMismatch("to"));
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::KEY_LEN;

    const ROMEO: &str = "romeo@montague.lit";
    const JULIET: &str = "juliet@capulet.lit";
    const OID: &str = "Yq3hV8dK2mTzR0pLxW7bNg.c9Fh2LqP0sVxB4mKzT1aRw";

    fn key() -> Key {
        Key::from_bytes([0x42; KEY_LEN])
    }

    fn sealed() -> String {
        seal(&key(), OID, ROMEO, JULIET, &Content::text("Wherefore art thou?")).unwrap()
    }

    fn payload_of(element: &str) -> Vec<u8> {
        EncryptedElement::parse(element).unwrap().payload
    }

    fn with_payload(payload: &[u8]) -> String {
        EncryptedElement { objectid: OID.into(), payload: payload.to_vec() }.to_xml()
    }

    #[test]
    fn round_trip() {
        let el = sealed();
        assert!(el.starts_with(&format!("<encrypted xmlns='jabber:encrypted' objectid='{OID}'>")));
        let env = open(&key(), OID, ROMEO, JULIET, &el).unwrap();
        assert_eq!(env.body(), Some("Wherefore art thou?"));
        assert_eq!(env.from, ROMEO);
        assert_eq!(env.to, JULIET);
        assert!((OffsetDateTime::now_utc() - env.time).whole_seconds().abs() < 5);
        let p = payload_of(&el);
        assert_eq!(p[0], VERSION_AES_256_GCM);
        let parsed = EncryptedElement::parse(&el).unwrap();
        assert_eq!(parsed.nonce().unwrap(), p[1..13]);
        assert_eq!(EncryptedElement { objectid: OID.into(), payload: vec![2; 40] }.nonce(), None);
    }

    #[test]
    fn full_and_unnormalized_jids_are_the_same_party() {
        let el =
            seal(&key(), OID, "Romeo@Montague.LIT/orchard", "juliet@capulet.lit/balcony", &Content::text("x")).unwrap();
        let env = open(&key(), OID, "romeo@montague.lit/phone", "JULIET@capulet.lit", &el).unwrap();
        assert_eq!(env.from, ROMEO);
    }

    #[test]
    fn nonces_and_lengths_vary() {
        let a = payload_of(&sealed());
        let b = payload_of(&sealed());
        assert_ne!(a[1..13], b[1..13], "nonce repeated");
        let lens: std::collections::HashSet<usize> = (0..32).map(|_| payload_of(&sealed()).len()).collect();
        assert!(lens.len() > 5, "padding does not vary the length");
    }

    #[test]
    fn every_context_change_fails_to_open() {
        let el = sealed();
        let other_oid = "Yq3hV8dK2mTzR0pLxW7bNg.AAAAAAAAAAAAAAAAAAAAAA";
        let relabelled = el.replace(OID, other_oid);
        assert_eq!(open(&key(), other_oid, ROMEO, JULIET, &relabelled), Err(WireError::Decrypt));
        assert_eq!(open(&key(), OID, "mercutio@montague.lit", JULIET, &el), Err(WireError::Decrypt));
        assert_eq!(open(&key(), OID, ROMEO, "nurse@capulet.lit", &el), Err(WireError::Decrypt));
        assert_eq!(open(&key(), OID, JULIET, ROMEO, &el), Err(WireError::Decrypt));
        assert_eq!(open(&Key::from_bytes([0x43; KEY_LEN]), OID, ROMEO, JULIET, &el), Err(WireError::Decrypt));
        assert!(matches!(open(&key(), other_oid, ROMEO, JULIET, &el), Err(WireError::ObjectIdMismatch { .. })));
    }

    #[test]
    fn tampering_fails_to_open() {
        let p = payload_of(&sealed());
        for i in [1, 12, 13, p.len() - 17, p.len() - 1] {
            let mut t = p.clone();
            t[i] ^= 0x01;
            assert_eq!(open(&key(), OID, ROMEO, JULIET, &with_payload(&t)), Err(WireError::Decrypt), "byte {i}");
        }
        assert_eq!(open(&key(), OID, ROMEO, JULIET, &with_payload(&p[..p.len() - 1])), Err(WireError::Decrypt));
        assert!(matches!(
            open(&key(), OID, ROMEO, JULIET, &with_payload(&p[..MIN_PAYLOAD_LEN - 1])),
            Err(WireError::Malformed(_))
        ));
        for v in [0x00, 0x02, 0xff] {
            let mut t = p.clone();
            t[0] = v;
            assert_eq!(open(&key(), OID, ROMEO, JULIET, &with_payload(&t)), Err(WireError::UnsupportedVersion(v)));
        }
    }

    #[test]
    fn malformed_elements() {
        let el = sealed();
        let mut p = payload_of(&el);
        if p.len().is_multiple_of(3) {
            p.pop();
        }
        let unpadded = format!(
            "<encrypted xmlns='{NS}' objectid='{OID}'>{}</encrypted>",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&p)
        );
        for bad in [
            unpadded,
            el.replace("jabber:encrypted", "jabber:encrypted:0"),
            el.replace(&format!(" objectid='{OID}'"), ""),
            el.replace(OID, ""),
            el.replace(OID, &"a".repeat(65)),
            el.replace(OID, "a b"),
            el.replace("'>", "'>!!"),
            el.replace("</encrypted>", "<x/></encrypted>"),
            format!("<encrypted xmlns='{NS}' objectid='{OID}'></encrypted>"),
            "not xml".into(),
        ] {
            let r = open(&key(), OID, ROMEO, JULIET, &bad);
            assert!(matches!(r, Err(WireError::Malformed(_))), "{bad}: {r:?}");
        }
    }

    #[test]
    fn liberal_in_what_it_accepts() {
        let el = sealed();
        let b64 = el.split('>').nth(1).unwrap().trim_end_matches("</encrypted");
        let spaced: String =
            b64.as_bytes().chunks(16).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n  ");
        let other =
            format!("<e:encrypted xmlns:e=\"jabber:encrypted\" objectid=\"{OID}\">\n  {spaced}\n</e:encrypted>");
        assert!(open(&key(), OID, ROMEO, JULIET, &other).is_ok());
    }

    #[test]
    fn envelope_must_match_the_stanza() {
        let env = Envelope {
            content: Content::text("forged"),
            rpad: String::new(),
            from: "mercutio@montague.lit".into(),
            to: JULIET.into(),
            time: OffsetDateTime::UNIX_EPOCH,
        };
        let pt = env.to_xml().unwrap();
        let el = seal_with_nonce(&key(), OID, ROMEO, JULIET, pt.as_bytes(), &[0; 12]).unwrap();
        assert_eq!(open(&key(), OID, ROMEO, JULIET, &el), Err(WireError::EnvelopeMismatch("from")));
        assert_eq!(*open_raw(&key(), OID, ROMEO, JULIET, &el).unwrap(), pt.as_bytes());
        let el = seal_with_nonce(&key(), OID, ROMEO, JULIET, b"hello", &[0; 12]).unwrap();
        assert!(matches!(open(&key(), OID, ROMEO, JULIET, &el), Err(WireError::InvalidEnvelope(_))));
    }

    #[test]
    fn seal_validates_its_inputs() {
        let c = Content::text("x");
        assert!(matches!(seal(&key(), OID, "not a jid@", JULIET, &c), Err(WireError::InvalidJid(_))));
        assert!(matches!(seal(&key(), "", ROMEO, JULIET, &c), Err(WireError::InvalidObjectId(_))));
        assert!(matches!(seal(&key(), "a\u{0}b", ROMEO, JULIET, &c), Err(WireError::InvalidObjectId(_))));
        assert!(matches!(seal(&key(), OID, ROMEO, JULIET, &Content::text("\u{1}")), Err(WireError::InvalidContent(_))));
    }

    #[test]
    fn aad_layout() {
        assert_eq!(aad("o", "a@b", "c@d"), b"jabber:encrypted:1\0o\0a@b\0c@d");
    }
}
