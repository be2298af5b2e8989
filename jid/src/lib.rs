//! keysrv's one normalization of JIDs. The server (members, the caller of
//! every request), the client SDK (the AAD of every sealed message) and the
//! CLI all turn a JID into bytes through this crate, so two spellings of one
//! address can never be two members, and a message sealed for one spelling
//! opens under any other.
//!
//! The canonical form of a bare JID (docs/PROTOCOL.md 6.9):
//!
//! - **localpart**: Nodeprep (RFC 6122, RFC 3920 appendix A): case-folded,
//!   NFKC, prohibited characters and code points unassigned in Unicode 3.2
//!   refused;
//! - **domainpart**: one trailing dot removed (RFC 7622 §3.2), then IDNA
//!   (UTS #46, non-transitional, STD3 rules, hyphen and DNS length checks)
//!   to **A-labels**: lowercase ASCII, `xn--` for internationalized labels.
//!   Domains are compared as A-labels, so `café.example` and
//!   `xn--caf-dma.example` are one domain. IPv4 literals stay as they are;
//!   IPv6 literals are kept in brackets in RFC 5952 form;
//! - **refused, never dropped**: every code point that stringprep silently
//!   maps to nothing (RFC 3454 table B.1: soft hyphen, zero-width space and
//!   joiners, variation selectors, byte order mark, …). A JID that renders
//!   like another must not quietly become it.
//!
//! Normalizing is for addresses people type or servers route; a *claim* of
//! identity (the username in an access token) must already be canonical
//! (`BareJid::canonical`): an identity provider treats `JULIET@capulet.lit`
//! and `juliet@capulet.lit` as two users, and so must keysrv.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// The longest canonical bare JID keysrv accepts, in bytes. RFC 7622 allows
/// 3071; storage keys (a DynamoDB sort key holds at most 1024 bytes) and real
/// addresses need far fewer.
pub const MAX_LEN: usize = 512;

/// RFC 7622's limit for each part, in bytes.
const MAX_PART: usize = 1023;

/// Why a string is not a (canonical) JID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JidError {
    #[error("the JID is empty")]
    Empty,
    #[error("a bare JID is at most {max} bytes in canonical form")]
    TooLong { max: usize },
    #[error("a full JID (with a resource) where a bare JID (user@domain) is required")]
    HasResource,
    #[error("the resource is empty")]
    EmptyResource,
    #[error("no localpart: a user's bare JID (user@domain) is required")]
    NoLocalpart,
    #[error("the localpart is empty or fails Nodeprep")]
    Localpart,
    #[error("the domain is empty or not a valid domain name")]
    Domain,
    #[error("U+{code_point:04X} is an invisible character that would be silently dropped")]
    Invisible { code_point: u32 },
    #[error("the JID is not in canonical form (which would be {canonical:?})")]
    NotCanonical { canonical: String },
}

impl JidError {
    /// A stable name for the kind of error (the `error` field of the
    /// normalization test vectors).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong { .. } => "too-long",
            Self::HasResource => "has-resource",
            Self::EmptyResource => "empty-resource",
            Self::NoLocalpart => "no-localpart",
            Self::Localpart => "localpart",
            Self::Domain => "domain",
            Self::Invisible { .. } => "invisible",
            Self::NotCanonical { .. } => "not-canonical",
        }
    }
}

/// A bare JID in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BareJid(String);

impl BareJid {
    /// A user's bare JID (`local@domain`, no resource), from any spelling of
    /// it.
    pub fn normalize(s: &str) -> Result<Self, JidError> {
        let parts = split(s)?;
        if parts.resource.is_some() {
            return Err(JidError::HasResource);
        }
        if parts.local.is_none() {
            return Err(JidError::NoLocalpart);
        }
        build(parts)
    }

    /// The bare JID of any JID: the resource dropped, the localpart optional
    /// (a room, a server). What a stanza's `from` and `to` become.
    pub fn bare_of(s: &str) -> Result<Self, JidError> {
        build(split(s)?)
    }

    /// `s` if it already is a user's bare JID in canonical form, byte for
    /// byte; any other spelling of it is `NotCanonical`.
    pub fn canonical(s: &str) -> Result<Self, JidError> {
        let jid = Self::normalize(s)?;
        if jid.0 == s { Ok(jid) } else { Err(JidError::NotCanonical { canonical: jid.0 }) }
    }

    /// Rebuilds a JID that was canonical when it was stored.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The localpart, if any.
    pub fn localpart(&self) -> Option<&str> {
        self.0.split_once('@').map(|(l, _)| l)
    }

    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(_, d)| d)
    }
}

impl fmt::Display for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for BareJid {
    type Err = JidError;
    fn from_str(s: &str) -> Result<Self, JidError> {
        Self::normalize(s)
    }
}

struct Parts<'a> {
    local: Option<&'a str>,
    domain: &'a str,
    resource: Option<&'a str>,
}

/// RFC 7622 §3.1: the resource is everything after the first `/`; the
/// localpart everything before the first `@` that precedes it.
fn split(s: &str) -> Result<Parts<'_>, JidError> {
    if s.is_empty() {
        return Err(JidError::Empty);
    }
    let (bare, resource) = match s.split_once('/') {
        Some((_, "")) => return Err(JidError::EmptyResource),
        Some((b, r)) => (b, Some(r)),
        None => (s, None),
    };
    if let Some(c) = bare.chars().find(|&c| stringprep::tables::commonly_mapped_to_nothing(c)) {
        return Err(JidError::Invisible { code_point: u32::from(c) });
    }
    let (local, domain) = match bare.split_once('@') {
        Some((l, d)) => (Some(l), d),
        None => (None, bare),
    };
    Ok(Parts { local, domain, resource })
}

fn build(parts: Parts<'_>) -> Result<BareJid, JidError> {
    let domain = domain(parts.domain)?;
    let jid = match parts.local {
        Some(local) => format!("{}@{domain}", localpart(local)?),
        None => domain.into_owned(),
    };
    if jid.len() > MAX_LEN {
        return Err(JidError::TooLong { max: MAX_LEN });
    }
    Ok(BareJid(jid))
}

fn localpart(local: &str) -> Result<Cow<'_, str>, JidError> {
    // `stringprep::nodeprep` checks for unassigned code points only after
    // NFKC, which uses today's Unicode while the case folding uses 3.2's: a
    // character added since 3.2 is never folded, and NFKC can then turn it
    // into an assigned upper-case letter (U+03F9 into `Σ`). The result would
    // not be a fixed point, and `canonical` would refuse it. RFC 3454 §7
    // forbids unassigned code points in stored strings, so check the input.
    if local.chars().any(stringprep::tables::unassigned_code_point) {
        return Err(JidError::Localpart);
    }
    let prepped = stringprep::nodeprep(local).map_err(|_| JidError::Localpart)?;
    if prepped.is_empty() || prepped.len() > MAX_PART {
        return Err(JidError::Localpart);
    }
    Ok(prepped)
}

fn domain(domain: &str) -> Result<Cow<'_, str>, JidError> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() || domain.len() > MAX_PART {
        return Err(JidError::Domain);
    }
    if let Ok(v4) = domain.parse::<Ipv4Addr>() {
        return Ok(Cow::Owned(v4.to_string()));
    }
    if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().map(|v6| Cow::Owned(format!("[{v6}]"))).map_err(|_| JidError::Domain);
    }
    Uts46::new()
        .to_ascii(domain.as_bytes(), AsciiDenyList::STD3, Hyphens::Check, DnsLength::Verify)
        .map(|d| Cow::Owned(d.into_owned()))
        .map_err(|_| JidError::Domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every normalization vector of docs/test-vectors.json.
    #[test]
    fn test_vectors() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/test-vectors.json")).expect("test-vectors.json parses");
        let groups = &doc["jid_normalization"];
        let mut checked = 0;
        for (group, f) in [
            ("user", BareJid::normalize as fn(&str) -> Result<BareJid, JidError>),
            ("bare_of", BareJid::bare_of),
            ("canonical", BareJid::canonical),
        ] {
            let vectors = groups[group].as_array().unwrap_or_else(|| panic!("jid_normalization.{group} is a list"));
            assert!(!vectors.is_empty(), "jid_normalization.{group} is empty");
            for v in vectors {
                let input = v["input"].as_str().expect("input");
                let got = f(input);
                match (v["canonical"].as_str(), v["error"].as_str()) {
                    (Some(want), None) => {
                        assert_eq!(got.as_ref().map(BareJid::as_str), Ok(want), "{group}: {input:?}")
                    }
                    (None, Some(kind)) => {
                        assert_eq!(got.as_ref().map_err(JidError::kind), Err(kind), "{group}: {input:?}")
                    }
                    _ => panic!("vector {v} needs exactly one of canonical and error"),
                }
                checked += 1;
            }
        }
        assert!(checked >= 30, "only {checked} vectors");
    }

    #[test]
    fn canonical_output_is_a_fixed_point() {
        for s in ["Juliet@Capulet.LIT", "nurse@capulet.lit.", "ＪULIET@ｃapulet.lit", "réné@café.example", "a@[::1]"]
        {
            let once = BareJid::normalize(s).unwrap();
            assert_eq!(BareJid::normalize(once.as_str()).unwrap(), once, "{s}");
            assert_eq!(BareJid::canonical(once.as_str()).unwrap(), once, "{s}");
        }
    }

    /// Found by fuzzing (fuzz/regressions/jid/nodeprep-unassigned-lunate-sigma).
    /// `stringprep::nodeprep` case-folds with Unicode 3.2's tables but NFKCs
    /// with today's Unicode, so a code point unassigned in 3.2 escapes the
    /// folding: U+03F9 (added in 4.0) became `Σ`, upper case, and that
    /// normalized again to `σ`. Nodeprep forbids unassigned code points in
    /// stored strings (RFC 3454 §7, RFC 6122 appendix A.5), and a member
    /// list is stored.
    #[test]
    fn unassigned_in_unicode_3_2_is_refused() {
        for s in ["\u{3f9}@a", "x\u{1f600}@capulet.lit", "\u{3f9}@a/r"] {
            let bare = s.split_once('/').map_or(s, |(b, _)| b);
            assert_eq!(BareJid::normalize(bare), Err(JidError::Localpart), "{s:?}");
            assert_eq!(BareJid::canonical(bare), Err(JidError::Localpart), "{s:?}");
            assert_eq!(BareJid::bare_of(s), Err(JidError::Localpart), "{s:?}");
        }
        // Assigned in 3.2 (upper case, compatibility forms): still folded.
        assert_eq!(BareJid::normalize("\u{3a3}\u{ff21}@a").unwrap().as_str(), "\u{3c3}a@a");
    }

    #[test]
    fn parts() {
        let j = BareJid::normalize("Juliet@Capulet.lit").unwrap();
        assert_eq!((j.localpart(), j.domain()), (Some("juliet"), "capulet.lit"));
        let room = BareJid::bare_of("Room@Conference.Capulet.lit/Nick").unwrap();
        assert_eq!((room.localpart(), room.domain()), (Some("room"), "conference.capulet.lit"));
        let server = BareJid::bare_of("capulet.lit").unwrap();
        assert_eq!((server.localpart(), server.domain()), (None, "capulet.lit"));
    }
}
