//! A small namespace-aware XML tree on top of quick-xml: enough to read an
//! `<encrypted>` element, an SCE envelope and a received `<message/>`, and to
//! write them back in one canonical form.
//!
//! Parsing resolves every prefix to its namespace, so `<e:encrypted
//! xmlns:e='jabber:encrypted'>` and `<encrypted xmlns='jabber:encrypted'>`
//! read the same. Serialization declares each element's namespace as a
//! default namespace wherever it differs from its parent's, so every element
//! written is self-contained and can be cut out and embedded elsewhere.
//!
//! Document type declarations are refused (XMPP forbids them and they are the
//! way to entity-expansion attacks); only the five predefined entities and
//! character references are understood; nesting is limited to
//! [`MAX_DEPTH`] levels.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

/// The namespace the `xml:` prefix is bound to.
pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// How deep elements may nest in anything this crate parses.
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: impl Into<String>) -> XmlError {
    XmlError(msg.into())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attr {
    /// The attribute's namespace; empty for an unprefixed attribute.
    pub ns: String,
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Element(Element),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Element {
    /// The element's namespace; empty when it is in no namespace.
    pub ns: String,
    /// The local name.
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn new(ns: &str, name: &str) -> Self {
        Self { ns: ns.to_owned(), name: name.to_owned(), attrs: Vec::new(), children: Vec::new() }
    }

    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The value of an unprefixed attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.ns.is_empty() && a.name == name).map(|a| a.value.as_str())
    }

    pub fn with_attr(mut self, name: &str, value: &str) -> Self {
        self.attrs.push(Attr { ns: String::new(), name: name.to_owned(), value: value.to_owned() });
        self
    }

    pub fn with_text(mut self, text: &str) -> Self {
        self.children.push(Node::Text(text.to_owned()));
        self
    }

    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this namespace and name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, name))
    }

    /// The concatenated text of the direct text children.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    pub fn has_child_elements(&self) -> bool {
        self.elements().next().is_some()
    }

    /// Serializes the element as a self-contained fragment (its namespace
    /// declared on it). Fails if a name, attribute value or text contains a
    /// character XML 1.0 cannot carry.
    pub fn to_xml(&self) -> Result<String, XmlError> {
        let mut out = String::new();
        self.write(&mut out, None, 0)?;
        Ok(out)
    }

    fn write(&self, out: &mut String, parent_ns: Option<&str>, depth: usize) -> Result<(), XmlError> {
        if depth >= MAX_DEPTH {
            return Err(err("elements nest too deeply"));
        }
        check_name(&self.name)?;
        out.push('<');
        out.push_str(&self.name);
        if parent_ns != Some(self.ns.as_str()) {
            out.push_str(" xmlns='");
            escape_attr_into(out, &self.ns)?;
            out.push('\'');
        }
        let mut prefixes = 0usize;
        for a in &self.attrs {
            check_name(&a.name)?;
            out.push(' ');
            if a.ns.is_empty() {
                out.push_str(&a.name);
            } else if a.ns == XML_NS {
                out.push_str("xml:");
                out.push_str(&a.name);
            } else {
                let prefix = format!("ns{prefixes}");
                prefixes += 1;
                out.push_str("xmlns:");
                out.push_str(&prefix);
                out.push_str("='");
                escape_attr_into(out, &a.ns)?;
                out.push_str("' ");
                out.push_str(&prefix);
                out.push(':');
                out.push_str(&a.name);
            }
            out.push_str("='");
            escape_attr_into(out, &a.value)?;
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return Ok(());
        }
        out.push('>');
        for n in &self.children {
            match n {
                Node::Element(e) => e.write(out, Some(&self.ns), depth + 1)?,
                Node::Text(t) => escape_text_into(out, t)?,
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
        Ok(())
    }
}

/// Whether XML 1.0 can carry this character at all (even as a reference).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn check_name(name: &str) -> Result<(), XmlError> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if ok { Ok(()) } else { Err(err(format!("{name:?} is not a name this crate writes"))) }
}

fn bad_char(c: char) -> XmlError {
    err(format!("U+{:04X} cannot be carried in XML", u32::from(c)))
}

fn escape_text_into(out: &mut String, s: &str) -> Result<(), XmlError> {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            c => return Err(bad_char(c)),
        }
    }
    Ok(())
}

fn escape_attr_into(out: &mut String, s: &str) -> Result<(), XmlError> {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            c => return Err(bad_char(c)),
        }
    }
    Ok(())
}

/// Escapes a string for a single-quoted attribute value.
pub(crate) fn escape_attr(s: &str) -> Result<String, XmlError> {
    let mut out = String::with_capacity(s.len());
    escape_attr_into(&mut out, s)?;
    Ok(out)
}

fn ns_of(res: ResolveResult<'_>) -> Result<String, XmlError> {
    match res {
        ResolveResult::Unbound => Ok(String::new()),
        // quick-xml hands over the declaration's value as written: its
        // references must be resolved like any attribute value's, or
        // `urn:a&amp;b` would not be `urn:a&b` and would be escaped again on
        // every write.
        ResolveResult::Bound(ns) => {
            let raw = std::str::from_utf8(ns.into_inner()).map_err(|_| err("a namespace is not UTF-8"))?;
            let ns = quick_xml::escape::unescape(raw).map_err(|e| err(format!("bad namespace name: {e}")))?;
            if let Some(c) = ns.chars().find(|c| !is_xml_char(*c)) {
                return Err(bad_char(c));
            }
            Ok(ns.into_owned())
        }
        ResolveResult::Unknown(prefix) => {
            Err(err(format!("the prefix {:?} is not declared", String::from_utf8_lossy(&prefix))))
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<String, XmlError> {
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| err("a name is not UTF-8"))
}

fn start(reader: &NsReader<&[u8]>, ns: String, e: &BytesStart<'_>) -> Result<Element, XmlError> {
    let name = utf8(e.local_name().into_inner())?;
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| err(format!("bad attribute: {e}")))?;
        if a.key.as_namespace_binding().is_some() {
            continue;
        }
        let (res, local) = reader.resolve_attribute(a.key);
        let ans = ns_of(res)?;
        let value = a.unescape_value().map_err(|e| err(format!("bad attribute value: {e}")))?.into_owned();
        attrs.push(Attr { ns: ans, name: utf8(local.into_inner())?, value });
    }
    Ok(Element { ns, name, attrs, children: Vec::new() })
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    if let Some(c) = text.chars().find(|c| !is_xml_char(*c)) {
        return Err(bad_char(c));
    }
    match stack.last_mut() {
        Some(parent) => {
            if let Some(Node::Text(t)) = parent.children.last_mut() {
                t.push_str(text);
            } else {
                parent.children.push(Node::Text(text.to_owned()));
            }
            Ok(())
        }
        None if text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) => Ok(()),
        None => Err(err("text outside the root element")),
    }
}

/// Parses one XML document (or fragment) holding exactly one root element.
/// An XML declaration, comments and processing instructions are skipped:
/// what an app hands over as a stanza may come from any XML library.
pub(crate) fn parse(input: &str) -> Result<Element, XmlError> {
    parse_with(input, false)
}

/// Parses a sealed envelope: like [`parse`], but an XML declaration, a
/// comment or a processing instruction is an error. The envelope is
/// restricted XML as RFC 6120 11.1 defines it for stanzas, so that every
/// implementation reads the same bytes the same way (an `encoding` other
/// than UTF-8, or a processing instruction only some parsers act on, cannot
/// change what one receiver sees).
pub(crate) fn parse_restricted(input: &str) -> Result<Element, XmlError> {
    // quick-xml skips a byte order mark; the envelope has none.
    if input.starts_with('\u{feff}') {
        return Err(err("a byte order mark is not allowed here"));
    }
    parse_with(input, true)
}

fn parse_with(input: &str, restricted: bool) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(input);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (res, event) = reader.read_resolved_event().map_err(|e| err(format!("not well-formed XML: {e}")))?;
        let ns = match &event {
            Event::Start(_) | Event::Empty(_) => Some(ns_of(res)?),
            _ => None,
        };
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(err("more than one root element"));
            }
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err("elements nest too deeply"));
                }
                let el = start(&reader, ns.unwrap_or_default(), &e)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err("elements nest too deeply"));
                }
                let el = start(&reader, ns.unwrap_or_default(), &e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| err("unexpected end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| err(format!("bad text: {e}")))?;
                push_text(&mut stack, &text)?;
            }
            Event::CData(t) => {
                let text = t.decode().map_err(|e| err(format!("bad CDATA: {e}")))?;
                push_text(&mut stack, &text)?;
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| err(format!("bad character reference: {e}")))?
                } else {
                    match r.decode().map_err(|e| err(format!("bad entity reference: {e}")))?.as_ref() {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        other => return Err(err(format!("unknown entity &{other};"))),
                    }
                };
                let c = c.ok_or_else(|| err("bad character reference"))?;
                push_text(&mut stack, c.encode_utf8(&mut [0u8; 4]))?;
            }
            Event::DocType(_) => return Err(err("document type declarations are not allowed")),
            Event::Decl(_) if restricted => return Err(err("an XML declaration is not allowed here")),
            Event::Comment(_) if restricted => return Err(err("a comment is not allowed here")),
            Event::PI(_) if restricted => return Err(err("a processing instruction is not allowed here")),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(err("unexpected end of input"));
                }
                return root.ok_or_else(|| err("no root element"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_prefixes_and_entities() {
        let e =
            parse("<e:a xmlns:e='urn:x' b='1 &amp; 2'>x &lt; y&#33;<![CDATA[<z>]]><c xmlns='urn:y'/></e:a>").unwrap();
        assert!(e.is("urn:x", "a"));
        assert_eq!(e.attr("b"), Some("1 & 2"));
        assert_eq!(e.text(), "x < y!<z>");
        assert!(e.child("urn:y", "c").is_some());
        assert_eq!(e.to_xml().unwrap(), "<a xmlns='urn:x' b='1 &amp; 2'>x &lt; y!&lt;z&gt;<c xmlns='urn:y'/></a>");
    }

    #[test]
    fn default_namespace_is_inherited() {
        let e = parse("<a xmlns='urn:x'><b/><c xmlns=''/></a>").unwrap();
        let kids: Vec<_> = e.elements().collect();
        assert!(kids[0].is("urn:x", "b"));
        assert!(kids[1].is("", "c"));
        assert_eq!(e.to_xml().unwrap(), "<a xmlns='urn:x'><b/><c xmlns=''/></a>");
    }

    #[test]
    fn xml_lang_and_foreign_attributes_round_trip() {
        let e = parse("<a xmlns='urn:x' xml:lang='en' xmlns:p='urn:p' p:q='v'/>").unwrap();
        assert_eq!(e.attrs[0].ns, XML_NS);
        assert_eq!(e.to_xml().unwrap(), "<a xmlns='urn:x' xml:lang='en' xmlns:ns0='urn:p' ns0:q='v'/>");
        assert_eq!(parse(&e.to_xml().unwrap()).unwrap(), e);
    }

    /// Found by fuzzing (fuzz/regressions/stanza/namespace-with-reference):
    /// namespace names were taken raw from the declaration, so `&amp;` stayed
    /// in the name, was escaped again on every write and grew without end,
    /// and a namespace written with a character reference was not the
    /// namespace it names.
    #[test]
    fn namespace_names_are_unescaped() {
        let e = parse("<x xmlns='urn:a&amp;b'><y xmlns:p='urn:&#x70;' p:q='v'/></x>").unwrap();
        assert_eq!(e.ns, "urn:a&b");
        assert_eq!(e.elements().next().unwrap().attrs[0].ns, "urn:p");
        let xml = e.to_xml().unwrap();
        assert_eq!(xml, "<x xmlns='urn:a&amp;b'><y xmlns:ns0='urn:p' ns0:q='v'/></x>");
        assert_eq!(parse(&xml).unwrap(), e);
        let enc = parse("<e:encrypted xmlns:e='jabber&#58;encrypted' objectid='c.k'>AQID</e:encrypted>").unwrap();
        assert!(enc.is("jabber:encrypted", "encrypted"));
        for bad in ["<x xmlns='urn:&bogus;'/>", "<x xmlns='urn:&#1;'/>", "<x xmlns='urn:&#xD800;'/>"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn refuses_dangerous_or_broken_input() {
        for bad in [
            "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
            "<a>&x;</a>",
            "<a><b></a>",
            "<a/><b/>",
            "text<a/>",
            "<p:a/>",
            "",
            "<a>&#0;</a>",
            "<a>\u{1}</a>",
            "<a b='1' b='2'/>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn restricted_xml_refuses_declarations_comments_and_instructions() {
        for bad in [
            "<?xml version='1.0'?><a/>",
            "<?xml version='1.0' encoding='ISO-8859-1'?><a/>",
            "<a><!-- c --></a>",
            "<a><?pi x?></a>",
            "<a/><?pi x?>",
            "\u{feff}<a/>",
        ] {
            assert!(parse(bad).is_ok(), "{bad:?} refused by the lenient parser");
            assert!(parse_restricted(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_restricted("\n<a xmlns='u'><![CDATA[x]]></a>\n").is_ok());
    }

    #[test]
    fn escapes_what_must_be_escaped() {
        let e = Element::new("urn:x", "a").with_attr("v", "'\"<&\t\n\r").with_text("a\rb<&>");
        let xml = e.to_xml().unwrap();
        assert_eq!(xml, "<a xmlns='urn:x' v='&apos;&quot;&lt;&amp;&#9;&#10;&#13;'>a&#13;b&lt;&amp;&gt;</a>");
        assert_eq!(parse(&xml).unwrap(), e);
        assert!(Element::new("urn:x", "a").with_text("\u{0}").to_xml().is_err());
        assert!(Element::new("urn:x", "a b").to_xml().is_err());
    }
}
