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

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::format::{self, WireError};
use crate::xml::{self, Element, Node};

/// XEP-0420 Stanza Content Encryption.
pub const SCE_NS: &str = "urn:xmpp:sce:1";
/// The namespace of the message body inside `<content>`.
pub const CLIENT_NS: &str = "jabber:client";
/// The namespace of file references inside `<content>`.
pub const FILE_NS: &str = "jabber:encrypted:file";
/// XEP-0300 hashes (the optional `<hash algo='sha-256'>` of a file).
pub const HASHES_NS: &str = "urn:xmpp:hashes:2";

/// The longest random padding a sender adds (characters), and the longest
/// a receiver accepts.
pub const MAX_RPAD: usize = 200;
/// The largest file `size` (2^63 − 1: what a signed 64-bit integer holds,
/// the widest integer every platform has).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Bytes in a SHA-256 digest.
const SHA256_LEN: usize = 32;

fn is_rpad_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

/// Whether `s` is valid `<rpad>` text: at most [`MAX_RPAD`] characters of
/// the base64 alphabet.
fn is_rpad(s: &str) -> bool {
    s.len() <= MAX_RPAD && s.chars().all(is_rpad_char)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Fails if `e` holds character data other than whitespace directly (text
/// where the profile has only elements: it would carry meaning one
/// implementation shows and another drops).
fn no_stray_text(e: &Element) -> Result<(), WireError> {
    let stray = e.children.iter().any(|n| matches!(n, Node::Text(t) if !t.chars().all(is_xml_space)));
    if stray {
        return Err(WireError::InvalidEnvelope(format!("text directly inside <{}>", e.name)));
    }
    Ok(())
}

/// A file `size`: decimal digits without sign or leading zero, at most
/// [`MAX_FILE_SIZE`].
fn parse_size(s: &str) -> Option<u64> {
    let canonical = s == "0" || (!s.starts_with('0') && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    s.parse::<u64>().ok().filter(|n| canonical && *n <= MAX_FILE_SIZE)
}

/// Whether `s` is a SHA-256 digest in padded standard base64.
fn is_sha256_base64(s: &str) -> bool {
    STANDARD.decode(s.as_bytes()).is_ok_and(|d| d.len() == SHA256_LEN)
}

/// A `<time stamp>`: the XEP-0082 DateTime profile of RFC 3339, exactly
/// `YYYY-MM-DDThh:mm:ss[.s{1,9}](Z|±hh:mm)` with an upper-case `T` and `Z`,
/// and no leap second (`:60`): one spelling every platform parses alike.
pub(crate) fn parse_stamp(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let date_time = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19);
    if !date_time || b.get(17..19) == Some(b"60") {
        return None;
    }
    let mut i = 19;
    if at(i, b'.') {
        let n = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return None;
        }
        i += 1 + n;
    }
    let zone = match b.get(i..) {
        Some(b"Z") => true,
        Some(z) if z.len() == 6 => {
            matches!(z[0], b'+' | b'-') && digits(i + 1..i + 3) && z[3] == b':' && digits(i + 4..i + 6)
        }
        _ => false,
    };
    if !zone {
        return None;
    }
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// An envelope's `<from jid>` or `<to jid>`: a bare JID (a resource makes
/// the envelope invalid; another spelling of the JID is compared after
/// normalization).
fn envelope_jid<'a>(e: Option<&'a Element>, name: &str) -> Result<&'a str, WireError> {
    let bad = |m: String| WireError::InvalidEnvelope(m);
    let e = e.ok_or_else(|| bad(format!("no <{name} jid='…'/>")))?;
    no_stray_text(e)?;
    if e.has_child_elements() {
        return Err(bad(format!("<{name}> holds elements")));
    }
    let jid = e.attr("jid").ok_or_else(|| bad(format!("no <{name} jid='…'/>")))?;
    if jid.contains('/') || format::bare_jid(jid).is_err() {
        return Err(bad(format!("<{name} jid> {jid:?} is not a bare JID")));
    }
    Ok(jid)
}

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

    fn to_element(&self) -> Result<Element, WireError> {
        let bad = |m: &str| WireError::InvalidContent(format!("file {:?}: {m}", self.id));
        if !format::is_objectid(&self.id) {
            return Err(bad("the id is not 1 to 64 visible ASCII characters"));
        }
        if self.size.is_some_and(|n| n > MAX_FILE_SIZE) {
            return Err(bad("the size is over 2^63 - 1"));
        }
        if self.sha256.as_deref().is_some_and(|h| !is_sha256_base64(h)) {
            return Err(bad("the SHA-256 is not 32 bytes in padded standard base64"));
        }
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
        Ok(e)
    }

    fn from_element(e: &Element) -> Result<Self, WireError> {
        let bad = |m: &str| WireError::InvalidEnvelope(format!("<file>: {m}"));
        let id = e.attr("id").ok_or_else(|| bad("no id"))?;
        // The id goes into a URL path like an objectid, and has its shape.
        if !format::is_objectid(id) {
            return Err(bad("the id is not 1 to 64 visible ASCII characters"));
        }
        let size =
            match e.attr("size") {
                None => None,
                Some(s) => Some(parse_size(s).ok_or_else(|| {
                    bad("size is not a decimal integer from 0 to 2^63 - 1 without sign or leading zero")
                })?),
            };
        let mut hashes = e.elements().filter(|h| h.is(HASHES_NS, "hash") && h.attr("algo") == Some("sha-256"));
        let sha256 = match (hashes.next(), hashes.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => return Err(bad("more than one SHA-256 <hash>")),
            (Some(h), None) => {
                let text = h.text();
                let b64 = text.trim_matches(is_xml_space);
                if h.has_child_elements() || !is_sha256_base64(b64) {
                    return Err(bad("the SHA-256 <hash> is not 32 bytes in padded standard base64"));
                }
                Some(b64.to_owned())
            }
        };
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
    /// The text. An empty body is no body (`docs/PROTOCOL.md` 6.4): sealing
    /// omits `Some("")`, and opening never gives it.
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
        if let Some(body) = self.body.as_deref().filter(|b| !b.is_empty()) {
            content = content.with_child(Element::new(CLIENT_NS, "body").with_text(body));
        }
        for f in &self.files {
            content = content.with_child(f.to_element()?);
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
        no_stray_text(e)?;
        let mut out = Self::default();
        let mut body_seen = false;
        for child in e.elements() {
            if child.is(CLIENT_NS, "body") && !body_seen {
                body_seen = true;
                if child.has_child_elements() {
                    return Err(WireError::InvalidEnvelope("<body> holds elements".into()));
                }
                out.body = Some(child.text()).filter(|t| !t.is_empty());
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
        if !is_rpad(&self.rpad) {
            return Err(WireError::InvalidContent(format!(
                "rpad: at most {MAX_RPAD} characters of the base64 alphabet"
            )));
        }
        for jid in [&self.from, &self.to] {
            if jid.contains('/') || format::bare_jid(jid).is_err() {
                return Err(WireError::InvalidJid(jid.clone()));
            }
        }
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

    /// Parses a decrypted envelope (`docs/PROTOCOL.md` 6.4): restricted XML
    /// (no XML declaration, comment, processing instruction or document
    /// type declaration); `<content>`, `<from jid>`, `<to jid>` and
    /// `<time stamp>` exactly once, `<rpad>` at most once; no text directly
    /// inside `<envelope>` or `<content>`; bare JIDs; an XEP-0082 time
    /// stamp; `<rpad>` of at most 200 base64-alphabet characters; valid file
    /// references. Other children are ignored.
    pub fn parse(xml_text: &str) -> Result<Self, WireError> {
        let bad = |m: &str| WireError::InvalidEnvelope(m.to_owned());
        let root = xml::parse_restricted(xml_text).map_err(|e| WireError::InvalidEnvelope(e.0))?;
        if !root.is(SCE_NS, "envelope") {
            return Err(bad("the root is not <envelope xmlns='urn:xmpp:sce:1'>"));
        }
        no_stray_text(&root)?;
        let one = |name: &str| -> Result<Option<&Element>, WireError> {
            let mut it = root.elements().filter(|e| e.is(SCE_NS, name));
            let first = it.next();
            if it.next().is_some() {
                return Err(WireError::InvalidEnvelope(format!("more than one <{name}>")));
            }
            Ok(first)
        };
        let content = one("content")?.ok_or_else(|| bad("no <content>"))?;
        let rpad = match one("rpad")? {
            None => String::new(),
            Some(e) if e.has_child_elements() => return Err(bad("<rpad> holds elements")),
            Some(e) => e.text(),
        };
        if !is_rpad(&rpad) {
            return Err(bad("<rpad> is not at most 200 characters of the base64 alphabet"));
        }
        let from = envelope_jid(one("from")?, "from")?;
        let to = envelope_jid(one("to")?, "to")?;
        let time_el = one("time")?.ok_or_else(|| bad("no <time stamp='…'/>"))?;
        no_stray_text(time_el)?;
        if time_el.has_child_elements() {
            return Err(bad("<time> holds elements"));
        }
        let stamp = time_el.attr("stamp").ok_or_else(|| bad("no <time stamp='…'/>"))?;
        let time = parse_stamp(stamp)
            .ok_or_else(|| bad("<time stamp> is not an XEP-0082 DateTime (YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm))"))?;
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
        let xml = "\n<s:envelope xmlns:s='urn:xmpp:sce:1'>\n  <s:time stamp='2025-01-31T10:30:00+01:00'/>\n  \
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
            (ok.replace("size='1234'", "size='01234'"), "leading zero"),
            (ok.replace("size='1234'", "size='9223372036854775808'"), "size over 2^63 - 1"),
            (ok.replace("47DEQpj8", "47DEQpj"), "hash not base64 of 32 bytes"),
            (ok.replace(" id='f1'", &format!(" id='{}'", "f".repeat(65))), "file id too long"),
            (format!("<?xml version='1.0'?>{ok}"), "XML declaration"),
            (ok.replace("<content>", "<!--c--><content>"), "comment"),
            (ok.replace("<content>", "<content><?pi?>"), "processing instruction"),
            (ok.replace("<content>", "x<content>"), "text in the envelope"),
            (ok.replace("<content>", "<content>x"), "text in the content"),
            (ok.replace("abc+/", "abc-_"), "rpad alphabet"),
            (ok.replace("abc+/", &"a".repeat(201)), "rpad length"),
            (ok.replace("<rpad>abc+/", "<rpad><x xmlns='u'/>"), "rpad holds an element"),
            (ok.replace("juliet@capulet.lit'", "juliet@capulet.lit/balcony'"), "a full JID"),
            (ok.replace("juliet@capulet.lit'", "juliet@'"), "not a JID"),
            (ok.replace("09:30:00Z", "09:30:00z"), "lower-case z"),
            (ok.replace("T09:30:00Z", " 09:30:00Z"), "space separator"),
            (ok.replace("2025-01-31T09:30:00Z", "2016-12-31T23:59:60Z"), "leap second"),
            (ok.replace("09:30:00Z", "09:30:00.1234567890Z"), "ten fraction digits"),
            (ok.replace("09:30:00Z", "09:30:00+0100"), "offset without colon"),
            (
                ok.replace("<time stamp='2025-01-31T09:30:00Z'/>", "<time stamp='2025-01-31T09:30:00Z'>x</time>"),
                "text in time",
            ),
        ] {
            assert!(matches!(Envelope::parse(&bad), Err(WireError::InvalidEnvelope(_))), "{why}: {bad}");
        }
    }

    #[test]
    fn time_stamps_follow_xep_0082() {
        for ok in
            ["2025-01-31T09:30:00Z", "2025-01-31T10:30:00+01:00", "2025-01-31T09:30:00-00:00", "2025-01-31T09:30:00.5Z"]
        {
            assert!(parse_stamp(ok).is_some(), "{ok}");
        }
        assert_eq!(parse_stamp("2025-01-31T10:30:00+01:00"), parse_stamp("2025-01-31T09:30:00Z"));
        for bad in
            ["2025-01-31T09:30Z", "2025-01-31T09:30:00.Z", "2025-13-01T00:00:00Z", "2025-01-31T09:30:00+1:00", ""]
        {
            assert!(parse_stamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn empty_bodies_are_no_bodies() {
        let mut env = sample();
        env.content.body = Some(String::new());
        let xml = env.to_xml().unwrap();
        assert!(!xml.contains("<body"), "{xml}");
        assert_eq!(Envelope::parse(&xml).unwrap().body(), None);
        let empty = sample().to_xml().unwrap().replace(">Art thou not Romeo, &amp; a Montague? &lt;3</body>", "/>");
        assert_eq!(Envelope::parse(&empty).unwrap().body(), None);
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
        let mut env = sample();
        env.content.files[0].sha256 = Some("not a hash".into());
        assert!(matches!(env.to_xml(), Err(WireError::InvalidContent(_))));
        let mut env = sample();
        env.content.files[0].size = Some(u64::MAX);
        assert!(matches!(env.to_xml(), Err(WireError::InvalidContent(_))));
        let mut env = sample();
        env.content.files[0].id = String::new();
        assert!(matches!(env.to_xml(), Err(WireError::InvalidContent(_))));
        let mut env = sample();
        env.rpad = "not padding!".into();
        assert!(matches!(env.to_xml(), Err(WireError::InvalidContent(_))));
        let mut env = sample();
        env.from = "juliet@capulet.lit/balcony".into();
        assert!(matches!(env.to_xml(), Err(WireError::InvalidJid(_))));
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
