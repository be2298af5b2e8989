//! A file's declared media type (`Content-Type`). It is signed into upload
//! URLs and sent back as a response header, so it must be a well-formed
//! header value: `type/subtype` of RFC 9110 tokens, optionally followed by
//! `; name=value` parameters, no control characters, at most 255 bytes.

use std::fmt;

use crate::error::{Error, Invalid};

const MAX_LEN: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType(String);

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

impl MediaType {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::from(Invalid::MediaType);
        if s.len() > MAX_LEN || !s.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(bad());
        }
        let mut parts = s.split(';');
        let essence = parts.next().unwrap_or_default();
        match essence.split_once('/') {
            Some((t, sub)) if is_token(t) && is_token(sub) => {}
            _ => return Err(bad()),
        }
        for param in parts {
            match param.trim_start().split_once('=') {
                Some((name, value)) if is_token(name) && (is_token(value) || is_quoted(value)) => {}
                _ => return Err(bad()),
            }
        }
        // Case-insensitive by RFC, but signed byte for byte: keep it as sent.
        Ok(Self(s.to_owned()))
    }

    /// For values read back from storage, which were parsed when stored.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_quoted(s: &str) -> bool {
    s.len() >= 2 && s.starts_with('"') && s.ends_with('"') && !s[1..s.len() - 1].contains(['"', '\\'])
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_media_types_with_parameters() {
        for ok in ["image/png", "application/vnd.api+json", "text/plain; charset=utf-8", "text/x;a=\"b c\""] {
            assert_eq!(MediaType::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_what_is_not_a_header_safe_media_type() {
        for bad in ["", "png", "/png", "image/", "image/png\r\nx: y", "image/p ng", "a/b; c", "a/b;=d", "é/x"] {
            assert!(matches!(MediaType::parse(bad), Err(Error::Invalid(_))), "{bad:?}");
        }
        assert!(MediaType::parse(&format!("a/{}", "b".repeat(300))).is_err());
    }
}
