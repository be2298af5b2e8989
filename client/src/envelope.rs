//! The plaintext of a sealed message: an XEP-0420 (Stanza Content
//! Encryption) envelope.
//!
//! ```xml
//! <envelope xmlns='urn:xmpp:sce:1'>
//!   <content>
//!     <body xmlns='jabber:client'>text</body>
//!     <file xmlns='jabber:encrypted:file' id='…' name='…' media-type='…' size='…'/>
//!     …any other namespaced element…
//!   </content>
//!   <rpad>random padding</rpad>
//!   <from jid='sender bare JID'/>
//!   <to jid='recipient bare JID'/>
//!   <time stamp='2025-01-31T09:30:00Z'/>
//! </envelope>
//! ```
//!
//! [`Envelope::to_xml`] writes exactly this shape with no whitespace between
//! elements (the canonical form the test vectors pin); [`Envelope::parse`]
//! accepts any equivalent XML.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::wire::WireError;
use crate::xml::{self, Element};

/// XEP-0420 Stanza Content Encryption.
pub const SCE_NS: &str = "urn:xmpp:sce:1";
/// The namespace of the message body inside `<content>`.
pub const CLIENT_NS: &str = "jabber:client";
/// The namespace of file references inside `<content>`.
pub const FILE_NS: &str = "jabber:encrypted:file";
/// XEP-0300 hashes (the optional `<hash algo='sha-256'>` of a file).
pub const HASHES_NS: &str = "urn:xmpp:hashes:2";

/// The longest random padding a sender adds (characters).
pub const MAX_RPAD: usize = 200;

/// A reference to a file stored by keysrv: the id from
/// `POST /v1/conversations/{id}/files`; members fetch a download URL with
/// `GET /v1/files/{file_id}`. It only ever travels inside a sealed envelope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileRef {
    pub id: String,
    /// The file name to show and to save under (never a path).
    pub name: Option<String>,
    /// The MIME type, e.g. `image/jpeg`.
    pub media_type: Option<String>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// SHA-256 of the file's bytes, padded standard base64, so the receiver
    /// can check what it downloaded.
    pub sha256: Option<String>,
}

impl FileRef {
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), ..Self::default() }
    }

    fn to_element(&self) -> Element {
        let mut e = Element::new(FILE_NS, "file").with_attr("id", &self.id);
        if let Some(name) = &self.name {
            e = e.with_attr("name", name);
        }
        if let Some(t) = &self.media_type {
            e = e.with_attr("media-type", t);
        }
        if let Some(size) = self.size {
            e = e.with_attr("size", &size.to_string());
        }
        if let Some(h) = &self.sha256 {
            e = e.with_child(Element::new(HASHES_NS, "hash").with_attr("algo", "sha-256").with_text(h));
        }
        e
    }

    fn from_element(e: &Element) -> Result<Self, WireError> {
        let bad = |m: &str| WireError::InvalidEnvelope(format!("<file>: {m}"));
        let id = e.attr("id").filter(|id| !id.is_empty()).ok_or_else(|| bad("no id"))?;
        let size = match e.attr("size") {
            None => None,
            Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                Some(s.parse::<u64>().map_err(|_| bad("size out of range"))?)
            }
            Some(_) => return Err(bad("size is not a decimal number")),
        };
        let sha256 = e
            .elements()
            .find(|h| h.is(HASHES_NS, "hash") && h.attr("algo") == Some("sha-256"))
            .map(|h| h.text().trim().to_owned());
        Ok(Self {
            id: id.to_owned(),
            name: e.attr("name").map(str::to_owned),
            media_type: e.attr("media-type").map(str::to_owned),
            size,
            sha256,
        })
    }
}

/// What a message carries: the body text, file references, and any other
/// payload elements (each a self-contained XML element with its own
/// `xmlns`, e.g. a XEP-0461 reply or a XEP-0085 chat state).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Content {
    pub body: Option<String>,
    pub files: Vec<FileRef>,
    /// Other payload elements, as XML text. When sealing each must be one
    /// well-formed element with a namespace; after opening each is in the
    /// canonical form this crate writes.
    pub extra: Vec<String>,
}

impl Content {
    /// Content with just a body.
    pub fn text(body: impl Into<String>) -> Self {
        Self { body: Some(body.into()), ..Self::default() }
    }

    pub fn with_file(mut self, file: FileRef) -> Self {
        self.files.push(file);
        self
    }

    pub fn with_element(mut self, xml: impl Into<String>) -> Self {
        self.extra.push(xml.into());
        self
    }

    fn to_element(&self) -> Result<Element, WireError> {
        let mut content = Element::new(SCE_NS, "content");
        if let Some(body) = &self.body {
            content = content.with_child(Element::new(CLIENT_NS, "body").with_text(body));
        }
        for f in &self.files {
            content = content.with_child(f.to_element());
        }
        for (i, x) in self.extra.iter().enumerate() {
            let bad = |m: String| WireError::InvalidContent(format!("extra[{i}]: {m}"));
            let e = xml::parse(x).map_err(|e| bad(e.0))?;
            if e.ns.is_empty() {
                return Err(bad("the element has no namespace".into()));
            }
            if e.is(CLIENT_NS, "body") || e.is(FILE_NS, "file") {
                return Err(bad(format!(
                    "put <{}> in Content::{}",
                    e.name,
                    if e.name == "body" { "body" } else { "files" }
                )));
            }
            content = content.with_child(e);
        }
        Ok(content)
    }

    fn from_element(e: &Element) -> Result<Self, WireError> {
        let mut out = Self::default();
        for child in e.elements() {
            if child.is(CLIENT_NS, "body") && out.body.is_none() {
                if child.has_child_elements() {
                    return Err(WireError::InvalidEnvelope("<body> holds elements".into()));
                }
                out.body = Some(child.text());
            } else if child.is(FILE_NS, "file") {
                out.files.push(FileRef::from_element(child)?);
            } else {
                out.extra.push(child.to_xml().map_err(|e| WireError::InvalidEnvelope(e.0))?);
            }
        }
        Ok(out)
    }
}

/// A decrypted message: its content and the affix elements that bind it to
/// its sender, recipient and time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub content: Content,
    /// Random padding; carries no meaning.
    pub rpad: String,
    /// The sender's bare JID as the sender wrote it.
    pub from: String,
    /// The recipient's bare JID (the peer, or the room in a group chat).
    pub to: String,
    /// When the sender sealed it (by the sender's clock).
    pub time: OffsetDateTime,
}

impl Envelope {
    pub fn body(&self) -> Option<&str> {
        self.content.body.as_deref()
    }

    /// The canonical serialization: the exact bytes that get encrypted.
    pub fn to_xml(&self) -> Result<String, WireError> {
        let stamp = self.time.format(&Rfc3339).map_err(|e| WireError::InvalidContent(format!("time: {e}")))?;
        let mut env = Element::new(SCE_NS, "envelope").with_child(self.content.to_element()?);
        if !self.rpad.is_empty() {
            env = env.with_child(Element::new(SCE_NS, "rpad").with_text(&self.rpad));
        }
        env = env
            .with_child(Element::new(SCE_NS, "from").with_attr("jid", &self.from))
            .with_child(Element::new(SCE_NS, "to").with_attr("jid", &self.to))
            .with_child(Element::new(SCE_NS, "time").with_attr("stamp", &stamp));
        env.to_xml().map_err(|e| WireError::InvalidContent(e.0))
    }

    /// Parses a decrypted envelope. `<content>`, `<from jid>`, `<to jid>` and
    /// `<time stamp>` are required exactly once, `<rpad>` at most once;
    /// other children are ignored.
    pub fn parse(xml_text: &str) -> Result<Self, WireError> {
        let bad = |m: &str| WireError::InvalidEnvelope(m.to_owned());
        let root = xml::parse(xml_text).map_err(|e| WireError::InvalidEnvelope(e.0))?;
        if !root.is(SCE_NS, "envelope") {
            return Err(bad("the root is not <envelope xmlns='urn:xmpp:sce:1'>"));
        }
        let one = |name: &str| -> Result<Option<&Element>, WireError> {
            let mut it = root.elements().filter(|e| e.is(SCE_NS, name));
            let first = it.next();
            if it.next().is_some() {
                return Err(WireError::InvalidEnvelope(format!("more than one <{name}>")));
            }
            Ok(first)
        };
        let content = one("content")?.ok_or_else(|| bad("no <content>"))?;
        let rpad = one("rpad")?.map(Element::text).unwrap_or_default();
        let from = one("from")?.and_then(|e| e.attr("jid")).ok_or_else(|| bad("no <from jid='…'/>"))?;
        let to = one("to")?.and_then(|e| e.attr("jid")).ok_or_else(|| bad("no <to jid='…'/>"))?;
        let stamp = one("time")?.and_then(|e| e.attr("stamp")).ok_or_else(|| bad("no <time stamp='…'/>"))?;
        let time = OffsetDateTime::parse(stamp, &Rfc3339).map_err(|_| bad("<time stamp> is not RFC 3339"))?;
        Ok(Self { content: Content::from_element(content)?, rpad, from: from.to_owned(), to: to.to_owned(), time })
    }
}

/// Random padding: a uniformly random length from 0 to [`MAX_RPAD`], of
/// random characters of the base64 alphabet.
pub(crate) fn random_rpad() -> Result<String, WireError> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let len = loop {
        let mut b = [0u8; 1];
        getrandom::fill(&mut b).map_err(|_| WireError::Random)?;
        if usize::from(b[0]) <= MAX_RPAD {
            break usize::from(b[0]);
        }
    };
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|_| WireError::Random)?;
    Ok(bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 63)])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            content: Content::text("Art thou not Romeo, & a Montague? <3")
                .with_file(FileRef {
                    id: "f1".into(),
                    name: Some("balcony.jpg".into()),
                    media_type: Some("image/jpeg".into()),
                    size: Some(1234),
                    sha256: Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into()),
                })
                .with_element("<reply xmlns='urn:xmpp:reply:0' to='romeo@montague.lit/orchard' id='m1'/>"),
            rpad: "abc+/".into(),
            from: "juliet@capulet.lit".into(),
            to: "romeo@montague.lit".into(),
            time: OffsetDateTime::from_unix_timestamp(1_738_315_800).unwrap(),
        }
    }

    #[test]
    fn canonical_form_round_trips() {
        let env = sample();
        let xml = env.to_xml().unwrap();
        assert_eq!(
            xml,
            "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>Art thou not Romeo, &amp; a \
             Montague? &lt;3</body><file xmlns='jabber:encrypted:file' id='f1' name='balcony.jpg' \
             media-type='image/jpeg' size='1234'><hash xmlns='urn:xmpp:hashes:2' \
             algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></file><reply xmlns='urn:xmpp:reply:0' \
             to='romeo@montague.lit/orchard' id='m1'/></content><rpad>abc+/</rpad><from \
             jid='juliet@capulet.lit'/><to jid='romeo@montague.lit'/><time stamp='2025-01-31T09:30:00Z'/></envelope>"
        );
        assert_eq!(Envelope::parse(&xml).unwrap(), env);
    }

    #[test]
    fn parses_equivalent_xml() {
        let xml = "<?xml version='1.0'?>\n<s:envelope xmlns:s='urn:xmpp:sce:1'>\n  <s:time stamp='2025-01-31T10:30:00+01:00'/>\n  \
                   <s:to jid='romeo@montague.lit'/><s:from jid='juliet@capulet.lit'/>\n  <s:content>\n    <body \
                   xmlns='jabber:client'>hi</body>\n  </s:content><extra xmlns='urn:x'/>\n</s:envelope>";
        let env = Envelope::parse(xml).unwrap();
        assert_eq!(env.body(), Some("hi"));
        assert_eq!(env.rpad, "");
        assert_eq!(env.time, OffsetDateTime::from_unix_timestamp(1_738_315_800).unwrap());
    }

    #[test]
    fn rejects_bad_envelopes() {
        let ok = sample().to_xml().unwrap();
        for (bad, why) in [
            ("hello".to_owned(), "not XML"),
            (ok.replace("urn:xmpp:sce:1", "urn:xmpp:sce:0"), "namespace"),
            (ok.replace("<from jid='juliet@capulet.lit'/>", ""), "no from"),
            (ok.replace("<to jid='romeo@montague.lit'/>", ""), "no to"),
            (ok.replace("<time stamp='2025-01-31T09:30:00Z'/>", ""), "no time"),
            (ok.replace("2025-01-31T09:30:00Z", "yesterday"), "bad time"),
            (ok.replace("<rpad>", "<from jid='x@y'/><rpad>"), "two froms"),
            (ok.replace(" id='f1'", ""), "file without id"),
            (ok.replace("size='1234'", "size='-1'"), "bad size"),
        ] {
            assert!(matches!(Envelope::parse(&bad), Err(WireError::InvalidEnvelope(_))), "{why}: {bad}");
        }
    }

    #[test]
    fn refuses_unsealable_content() {
        let mut env = sample();
        env.content.body = Some("bell \u{7}".into());
        assert!(matches!(env.to_xml(), Err(WireError::InvalidContent(_))));
        for extra in ["<a/>", "not xml", "<body xmlns='jabber:client'>x</body>", "<a xmlns='u'/><b xmlns='u'/>"] {
            let mut env = sample();
            env.content.extra = vec![extra.into()];
            assert!(matches!(env.to_xml(), Err(WireError::InvalidContent(_))), "{extra}");
        }
    }

    #[test]
    fn rpad_is_bounded_and_varies() {
        let pads: Vec<String> = (0..64).map(|_| random_rpad().unwrap()).collect();
        assert!(pads.iter().all(|p| p.len() <= MAX_RPAD));
        assert!(pads.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')));
        let mut lens: Vec<usize> = pads.iter().map(String::len).collect();
        lens.sort_unstable();
        lens.dedup();
        assert!(lens.len() > 10, "lengths do not vary: {lens:?}");
    }
}
