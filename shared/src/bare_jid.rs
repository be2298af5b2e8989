//! Bare JIDs as keysrv uses them: a user's address (`local@domain`), in the
//! normalized form the `jid` crate's stringprep produces (localpart
//! case-folded, domain lowercased), so two spellings of one user are one
//! member.

use std::fmt;

use crate::error::Error;

const MAX_LEN: usize = 512;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BareJid(String);

impl BareJid {
    /// Parses and normalizes a user's bare JID. A resource, a missing
    /// localpart or anything stringprep rejects is an error.
    pub fn parse(s: &str) -> Result<Self, Error> {
        // RFC 7622 allows up to 3071 bytes; storage keys (a DynamoDB sort key
        // holds at most 1024 bytes) and real addresses need far fewer.
        if s.len() > MAX_LEN {
            return Err(Error::BadRequest(format!("a JID is at most {MAX_LEN} bytes")));
        }
        let jid = jid::Jid::new(s).map_err(|e| Error::BadRequest(format!("invalid JID {s:?}: {e}")))?;
        if jid.resource().is_some() {
            return Err(Error::BadRequest(format!("{s:?} is a full JID; a bare JID (user@domain) is required")));
        }
        if jid.node().is_none() {
            return Err(Error::BadRequest(format!(
                "{s:?} has no localpart; a user's bare JID (user@domain) is required"
            )));
        }
        Ok(Self(jid.to_string()))
    }

    /// Rebuilds a JID that was normalized before it was stored.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case() {
        assert_eq!(BareJid::parse("Juliet@Capulet.LIT").unwrap().as_str(), "juliet@capulet.lit");
    }

    #[test]
    fn rejects_full_domain_only_and_invalid() {
        let long = format!("{}@capulet.lit", "a".repeat(600));
        for bad in ["juliet@capulet.lit/balcony", "capulet.lit", "", "@capulet.lit", "a b@c.d", "juliet@", &long] {
            assert!(matches!(BareJid::parse(bad), Err(Error::BadRequest(_))), "{bad} accepted");
        }
    }
}
