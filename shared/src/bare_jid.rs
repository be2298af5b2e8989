//! Bare JIDs as keysrv uses them: the one normalization of `keysrv-jid`
//! (shared with the client SDK and the CLI), with its failures as the
//! library's errors.

pub use keysrv_jid::{BareJid, JidError, MAX_LEN};

use crate::error::{Error, Invalid};

/// A user's bare JID as a request names it (a member to add or remove): any
/// spelling, normalized. Anything else is a 400 that says why (the input
/// echoed only while short: a refused body may be 64 KiB).
pub fn parse(s: &str) -> Result<BareJid, Error> {
    BareJid::normalize(s).map_err(|reason| Invalid::jid(s, reason).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case() {
        assert_eq!(parse("Juliet@Capulet.LIT").unwrap().as_str(), "juliet@capulet.lit");
    }

    #[test]
    fn rejects_full_domain_only_and_invalid() {
        let long = format!("{}@capulet.lit", "a".repeat(600));
        for bad in ["juliet@capulet.lit/balcony", "capulet.lit", "", "@capulet.lit", "a b@c.d", "juliet@", &long] {
            assert!(matches!(parse(bad), Err(Error::Invalid(Invalid::Jid { .. }))), "{bad} accepted");
        }
        assert!(!parse(&long).unwrap_err().to_string().contains("aaaa"), "a long input is not echoed");
    }
}
