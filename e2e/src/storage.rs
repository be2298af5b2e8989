//! Reading Prosody's internal (file) storage for the leak scan: every file
//! under the data directory, raw, and decoded as far as a secret could hide.
//!
//! Prosody writes Lua: `accounts/USER.dat` is `return { ... };` and each
//! archive or offline store `*.list` is a sequence of `item({ ... });`, where
//! a stored stanza is a table `{ ["name"] = ..., ["attr"] = {...}, child,
//! "text", ... }` with strings escaped as Lua literals. Paths are
//! percent-encoded (`capulet%2elit`). The scan looks at the raw bytes, the
//! bytes with Lua escapes undone, and the stored stanzas turned back into
//! XML (attributes sorted, `xmlns` first, so an `<encrypted>` element comes
//! out exactly in the form the SDK sends).

use std::path::{Path, PathBuf};

pub struct StoredFile {
    /// Relative to the data directory, percent-decoded (`capulet.lit/offline/juliet.list`).
    pub name: String,
    /// Every stanza stored in the file, as XML.
    pub stanzas: Vec<String>,
    /// The name, the raw bytes, the bytes with Lua and XML escapes undone,
    /// and the stanzas' XML, one byte per char: std's substring search is
    /// optimized even in a debug build, a byte-window loop is far too slow
    /// for a thousand needles.
    haystacks: Vec<String>,
}

/// Bytes as chars U+0000–U+00FF, so string search matches byte sequences.
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

impl StoredFile {
    pub fn contains(&self, needle: &[u8]) -> bool {
        let needle = latin1(needle);
        !needle.is_empty() && self.haystacks.iter().any(|h| h.contains(&needle))
    }

    /// How many of the stored stanzas' XML contain `needle`.
    pub fn stanzas_with(&self, needle: &str) -> usize {
        self.stanzas.iter().filter(|s| s.contains(needle)).count()
    }
}

/// Every file under `dir`, recursively.
pub fn read_all(dir: &Path) -> Vec<StoredFile> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path: PathBuf = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.is_file() {
                let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let rel = path.strip_prefix(dir).expect("under dir").to_string_lossy();
                let decoded = unescape_xml(&unescape_lua(&raw));
                let stanzas: Vec<String> = lua::tables(&raw)
                    .unwrap_or_else(|e| panic!("{}: not Prosody's format? {e}", path.display()))
                    .iter()
                    .filter_map(lua::stanza_xml)
                    .collect();
                let name = percent_decode(&rel);
                let haystacks = vec![
                    latin1(name.as_bytes()),
                    latin1(&raw),
                    latin1(&decoded),
                    latin1(stanzas.join("\n").as_bytes()),
                ];
                out.push(StoredFile { name, stanzas, haystacks });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Prosody encodes every byte outside `[A-Za-z0-9_-]`-ish in path segments
/// as `%xx` (e.g. `.` → `%2e`).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Undoes Lua string-literal escapes: `\"`, `\\`, `\n`, `\r`, `\t`, `\` +
/// newline, `\ddd` (decimal) and `\xHH`.
fn unescape_lua(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'n' | b'\n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0'..=b'9' => {
                let start = i - 1;
                let mut end = start;
                while end < b.len() && end < start + 3 && b[end].is_ascii_digit() {
                    end += 1;
                }
                let v: u32 = std::str::from_utf8(&b[start..end]).expect("digits").parse().expect("number");
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i = end;
            }
            b'x' if i + 2 <= b.len() => {
                match std::str::from_utf8(&b[i..i + 2]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.extend_from_slice(b"\\x"),
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Undoes the five predefined XML entities and numeric character references.
fn unescape_xml(b: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(b);
    let mut out = String::with_capacity(s.len());
    let mut rest = &*s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            "quot" => Some('"'),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into_bytes()
}

/// Just enough of Lua's table constructor syntax for what Prosody's
/// `util.serialization` writes.
mod lua {
    #[derive(Debug)]
    pub enum Value {
        Str(Vec<u8>),
        /// Numbers, booleans, nil: nothing a stanza is made of.
        Atom,
        Table(Table),
    }

    #[derive(Debug, Default)]
    pub struct Table {
        pub items: Vec<Value>,
        pub fields: Vec<(Value, Value)>,
    }

    impl Table {
        fn field(&self, name: &str) -> Option<&Value> {
            self.fields.iter().find(|(k, _)| matches!(k, Value::Str(s) if s == name.as_bytes())).map(|(_, v)| v)
        }
    }

    struct Parser<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn skip_space(&mut self) {
            while self.i < self.b.len() {
                if self.b[self.i].is_ascii_whitespace() {
                    self.i += 1;
                } else if self.b[self.i..].starts_with(b"--") {
                    while self.i < self.b.len() && self.b[self.i] != b'\n' {
                        self.i += 1;
                    }
                } else {
                    break;
                }
            }
        }

        fn peek(&mut self) -> Option<u8> {
            self.skip_space();
            self.b.get(self.i).copied()
        }

        fn expect(&mut self, c: u8) -> Result<(), String> {
            match self.peek() {
                Some(x) if x == c => {
                    self.i += 1;
                    Ok(())
                }
                other => Err(format!("expected {:?} at byte {}, found {:?}", c as char, self.i, other.map(char::from))),
            }
        }

        fn value(&mut self) -> Result<Value, String> {
            match self.peek() {
                Some(b'{') => self.table().map(Value::Table),
                Some(b'"') => self.string().map(Value::Str),
                Some(_) => {
                    let start = self.i;
                    while self.i < self.b.len()
                        && !b",;}]=".contains(&self.b[self.i])
                        && !self.b[self.i].is_ascii_whitespace()
                    {
                        self.i += 1;
                    }
                    if start == self.i {
                        return Err(format!("unexpected {:?} at byte {}", self.b[self.i] as char, self.i));
                    }
                    Ok(Value::Atom)
                }
                None => Err("unexpected end".into()),
            }
        }

        fn string(&mut self) -> Result<Vec<u8>, String> {
            self.expect(b'"')?;
            let start = self.i;
            while self.i < self.b.len() && self.b[self.i] != b'"' {
                self.i += if self.b[self.i] == b'\\' { 2 } else { 1 };
            }
            let lit = self.b.get(start..self.i).ok_or("unterminated string")?;
            self.i += 1;
            Ok(super::unescape_lua(lit))
        }

        fn table(&mut self) -> Result<Table, String> {
            self.expect(b'{')?;
            let mut t = Table::default();
            loop {
                match self.peek() {
                    Some(b'}') => {
                        self.i += 1;
                        return Ok(t);
                    }
                    Some(b'[') => {
                        self.i += 1;
                        let k = self.value()?;
                        self.expect(b']')?;
                        self.expect(b'=')?;
                        t.fields.push((k, self.value()?));
                    }
                    _ => t.items.push(self.value()?),
                }
                if matches!(self.peek(), Some(b';' | b',')) {
                    self.i += 1;
                }
            }
        }
    }

    /// Every top-level table in the file (`return {...}`, `item({...})`).
    pub fn tables(b: &[u8]) -> Result<Vec<Table>, String> {
        let mut p = Parser { b, i: 0 };
        let mut out = Vec::new();
        while let Some(c) = p.peek() {
            match c {
                b'{' => out.push(p.table()?),
                b'"' => drop(p.string()?),
                _ => p.i += 1,
            }
        }
        Ok(out)
    }

    fn esc(s: &[u8], attr: bool) -> String {
        let mut out = String::new();
        for c in String::from_utf8_lossy(s).chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\'' if attr => out.push_str("&apos;"),
                c => out.push(c),
            }
        }
        out
    }

    /// A stored stanza (a table with a string `name` and a table `attr`) as
    /// XML; None for any other table.
    pub fn stanza_xml(t: &Table) -> Option<String> {
        let (Some(Value::Str(name)), Some(Value::Table(attr))) = (t.field("name"), t.field("attr")) else {
            return None;
        };
        let mut attrs: Vec<(String, String)> = attr
            .fields
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Str(v)) => Some((esc(k, true), esc(v, true))),
                _ => None,
            })
            .collect();
        attrs.sort_by(|a, b| (a.0 != "xmlns", &a.0).cmp(&(b.0 != "xmlns", &b.0)));
        let name = esc(name, false);
        let mut xml = format!("<{name}");
        for (k, v) in attrs {
            xml.push_str(&format!(" {k}='{v}'"));
        }
        xml.push('>');
        for child in &t.items {
            match child {
                Value::Str(text) => xml.push_str(&esc(text, false)),
                Value::Table(c) => xml.push_str(&stanza_xml(c).unwrap_or_default()),
                Value::Atom => {}
            }
        }
        xml.push_str(&format!("</{name}>"));
        Some(xml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_prosody_writes() {
        assert_eq!(percent_decode("capulet%2elit/offline/juliet.list"), "capulet.lit/offline/juliet.list");
        assert_eq!(unescape_lua(br#"a\"b\\c\10d\x41"#), b"a\"b\\c\nd\x41".to_vec());
        assert_eq!(unescape_lua(b"\\65\\066x"), b"ABx".to_vec());
        assert_eq!(
            unescape_xml(b"O &apos;tis &lt;b&gt; &#82;&#x6f;meo &amp; more"),
            b"O 'tis <b> Romeo & more".to_vec()
        );
    }

    #[test]
    fn stored_stanzas_come_back_as_xml() {
        let list = br#"item({
	{
		"AQID";
		["name"] = "encrypted";
		["attr"] = {
			["objectid"] = "c.k";
			["xmlns"] = "jabber:encrypted";
		};
	};
	{ "a \"q\" & <b>\10"; ["attr"] = {}; ["name"] = "body"; };
	["when"] = 1795856696;
	["attr"] = { ["to"] = "juliet@capulet.lit"; ["type"] = "chat"; };
	["name"] = "message";
});
item({ ["name"] = "message"; ["attr"] = { ["id"] = "it's"; }; });
"#;
        let tables = lua::tables(list).unwrap();
        let xml: Vec<String> = tables.iter().filter_map(lua::stanza_xml).collect();
        assert_eq!(
            xml,
            [
                "<message to='juliet@capulet.lit' type='chat'><encrypted xmlns='jabber:encrypted' \
                 objectid='c.k'>AQID</encrypted><body>a \"q\" &amp; &lt;b&gt;\n</body></message>",
                "<message id='it&apos;s'></message>",
            ]
        );
        assert!(lua::tables(b"return { [\"salt\"] = \"x\"; [\"iteration_count\"] = 10000; };").unwrap().len() == 1);
    }
}
